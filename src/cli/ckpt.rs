//! `medxfer ckpt inspect FILE [--json]` and `medxfer ckpt convert --origin|--recipe ID|auto IN OUT.safetensors`.

use crate::ckpt;
use crate::zoo::catalog::Catalog;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Show a checkpoint's format, root folder, GLOBALs, and its keys with dtypes and shapes.
    Inspect {
        /// A torch.save file (zip or legacy format); read without running any of its code.
        file: PathBuf,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Convert a ResNet50 checkpoint to torchvision-named float32 safetensors (without fc).
    Convert {
        /// Origin: a zoo id (moco-v2, pirl, chestxray14, ...: its catalog recipe), a recipe (torchvision,
        /// moco, pcl, swav, barlowtwins, pycontrast, zenodo-module, simclr-v1, simclr-v2, byol) or auto.
        /// For simclr-v1/v2 INPUT is a TensorFlow .index, a folder holding one checkpoint, or a zip of one.
        #[arg(long, visible_alias = "recipe")]
        origin: String,
        /// The checkpoint to convert.
        input: PathBuf,
        /// The .safetensors to write (atomically: nothing is left half-written).
        output: PathBuf,
    },
}

pub fn run(args: Args) -> Result<i32> {
    match args.command {
        Sub::Inspect { file, json } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let loaded = ckpt::load(&bytes).with_context(|| format!("refusing {}", file.display()))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&ckpt::inspect::report(&file.display().to_string(), &loaded))?
                );
            } else {
                println!("file: {}", file.display());
                println!("format: {:?}", loaded.format);
                println!("root: {}", loaded.root.as_deref().unwrap_or("-"));
                println!("byteorder: {}", if loaded.big_endian { "big" } else { "little" });
                println!("globals:");
                for g in &loaded.globals {
                    println!("  {g}");
                }
                println!("keys:");
                let mut lines = Vec::new();
                ckpt::inspect::text_lines(&loaded.value, 1, &mut lines);
                lines.iter().for_each(|l| println!("{l}"));
            }
            Ok(0)
        }
        Sub::Convert { origin, input, output } => {
            let recipe = recipe_of_origin(&origin)?;
            let prov = ckpt::convert_file(&recipe, &input, &output)?;
            if let Some(why) = &prov.guessed_because {
                eprintln!("guessed origin {}: {why}", prov.recipe);
            }
            eprintln!(
                "wrote {} ({} tensors, {} keys dropped) and {}",
                output.display(),
                prov.tensors,
                prov.dropped.len(),
                ckpt::provenance_path(&output).display()
            );
            Ok(0)
        }
    }
}

/// The recipe `origin` names: itself for a recipe or "auto", the embedded catalog's recipe for a zoo id.
fn recipe_of_origin(origin: &str) -> Result<String> {
    if origin == "auto" || ckpt::RECIPES.contains(&origin) {
        return Ok(origin.to_string());
    }
    let catalog = Catalog::embedded()?;
    match catalog.get(origin) {
        Some(e) if e.recipe == "none" => bail!("zoo id {origin:?} has no checkpoint to convert"),
        Some(e) => Ok(e.recipe.clone()),
        None => {
            let ids: Vec<&str> = catalog.entries.iter().filter(|e| e.recipe != "none").map(|e| e.id.as_str()).collect();
            bail!(
                "unknown origin {origin:?}; use a zoo id ({}), a recipe ({}) or auto",
                ids.join(", "),
                ckpt::RECIPES.join(", ")
            )
        }
    }
}
