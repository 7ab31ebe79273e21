//! `medxfer model eval`: an eval-mode CPU forward of a saved network on a saved input, for tests and for
//! users who doubt a conversion.

use crate::model::{self, Net, Padding};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor, nn::ModuleT, nn::VarStore};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Eval-mode forward of the tensor `input` of --input; writes `output` (and `features`) to --output.
    Eval(EvalArgs),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Arch {
    Resnet50,
    Unet,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum PaddingArg {
    Torch,
    Same,
}

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The network: resnet50 (torchvision) or unet (smp's Unet with a ResNet50 encoder).
    #[arg(long, value_enum)]
    pub arch: Arch,
    /// A full state_dict with torchvision (resnet50) or smp (unet) names; the head's size comes from it.
    #[arg(long)]
    pub weights: PathBuf,
    /// A .safetensors holding a float tensor named `input`, [batch, 1 or 3, H, W].
    #[arg(long)]
    pub input: PathBuf,
    /// The .safetensors written: `output` (and `features` with --features).
    #[arg(long)]
    pub output: PathBuf,
    /// Also write `features`: the pooled 2048-wide layer4 features.
    #[arg(long)]
    pub features: bool,
    /// torchvision padding, or TF/haiku SAME padding (BYOL).
    #[arg(long, value_enum, default_value = "torch")]
    pub padding: PaddingArg,
}

pub fn run(args: Args) -> Result<i32> {
    match args.command {
        Sub::Eval(a) => eval(a),
    }
}

fn eval(args: EvalArgs) -> Result<i32> {
    let padding = match args.padding {
        PaddingArg::Torch => Padding::Torch,
        PaddingArg::Same => Padding::Same,
    };
    let input = read_input(&args.input, matches!(args.arch, Arch::Unet))?;
    let weights = model::read_tensors(&args.weights)?;
    let head_rows = |name: &str| weights.get(name).and_then(|t| t.size().first().copied());
    let mut vs = VarStore::new(Device::Cpu);
    let net = match args.arch {
        Arch::Resnet50 => Net::ResNet50(model::resnet50(vs.root(), head_rows("fc.weight"), padding)),
        Arch::Unet => {
            let Some(classes) = head_rows("segmentation_head.0.weight") else {
                bail!(
                    "{}: no tensor segmentation_head.0.weight, so this is not an smp U-Net state_dict",
                    args.weights.display()
                );
            };
            Net::Unet(model::unet(vs.root(), classes, padding))
        }
    };
    drop(weights);
    let report = model::load_all(&mut vs, &args.weights)?;
    if !report.unused.is_empty() {
        eprintln!(
            "{}: ignored {} tensors the network does not have: {}",
            args.weights.display(),
            report.unused.len(),
            report.unused.join(", ")
        );
    }
    let mut outputs = Vec::new();
    tch::no_grad(|| {
        outputs.push(("output", net.forward_t(&input, false)));
        if args.features {
            outputs.push(("features", net.pooled_t(&input, false)));
        }
    });
    write_tensors(&args.output, &outputs)?;
    Ok(0)
}

fn read_input(path: &Path, needs_multiple_of_32: bool) -> Result<Tensor> {
    let mut tensors = model::read_tensors(path)?;
    let Some(input) = tensors.remove("input") else {
        bail!("{}: no tensor named `input`", path.display());
    };
    let size = input.size();
    if size.len() != 4 || !(size[1] == 1 || size[1] == 3) {
        bail!("{}: tensor `input` has shape {size:?}, expected [batch, 1 or 3, H, W]", path.display());
    }
    if needs_multiple_of_32 && (size[2] % 32 != 0 || size[3] % 32 != 0) {
        bail!("{}: tensor `input` is {}×{}, the U-Net needs H and W multiples of 32", path.display(), size[2], size[3]);
    }
    Ok(input.to_kind(Kind::Float))
}

/// Writes named tensors as a .safetensors file atomically (temp file, fsync, rename).
fn write_tensors(path: &Path, tensors: &[(&str, Tensor)]) -> Result<()> {
    let tmp = crate::atomic::temp_path(path);
    let result = (|| -> Result<()> {
        Tensor::write_safetensors(tensors, &tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::File::open(&tmp)?.sync_all()?;
        crate::atomic::commit(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
