//! `medxfer bench ...` (hidden): in-process throughput probes that scripts/bench sets beside their
//! Python references. Prints one JSON object on stdout.

use crate::bench;
use crate::data::{Mode, lists};
use crate::perf::{MemoryFormat, Precision};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// ResNet50 train steps on random inputs.
    TrainStep {
        /// Images per step.
        #[arg(long, default_value_t = 16)]
        batch: usize,
        /// Image side in pixels.
        #[arg(long, default_value_t = 224)]
        size: usize,
        /// Untimed steps first.
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// Timed steps.
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// Intra-op threads (0: libtorch's default).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// cpu | cuda | cuda:N
        #[arg(long, default_value = "cpu")]
        device: String,
        /// fp32 | tf32 | bf16
        #[arg(long, default_value = "fp32")]
        precision: String,
        /// nchw | nhwc
        #[arg(long, default_value = "nchw")]
        memory_format: String,
        /// fused | plain: Adam through libtorch's fused kernel or per parameter.
        #[arg(long, default_value = "fused")]
        optimizer: String,
        /// Record the step into a CUDA graph after warm-up and replay it (falls back to eager, saying why).
        #[arg(long)]
        cuda_graph: bool,
    },
    /// Adam steps alone over ResNet50's parameters with fixed gradients.
    OptimStep {
        /// fused | plain
        #[arg(long, default_value = "fused")]
        optimizer: String,
        /// Untimed steps first.
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// Timed steps.
        #[arg(long, default_value_t = 20)]
        steps: usize,
        /// Intra-op threads (0: libtorch's default).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// cpu | cuda | cuda:N
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// One pass of the classification loader over a ChestX-ray14-format list.
    Loader {
        /// Lines "IMAGE LABEL..." (14 labels).
        #[arg(long)]
        list: PathBuf,
        /// The folder holding the images.
        #[arg(long)]
        images: PathBuf,
        /// train | val
        #[arg(long, default_value = "val")]
        mode: String,
        /// Image side in pixels.
        #[arg(long, default_value_t = 224)]
        size: usize,
        /// Images per batch.
        #[arg(long, default_value_t = 16)]
        batch: usize,
        /// Decoding threads.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Passes over the list (timed together).
        #[arg(long, default_value_t = 1)]
        epochs: usize,
        /// Build the decoded-image cache in this folder first (not timed) and read through it.
        #[arg(long)]
        cache: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> Result<i32> {
    let rate = match args.command {
        BenchCommand::TrainStep {
            batch,
            size,
            warmup,
            steps,
            threads,
            device,
            precision,
            memory_format,
            optimizer,
            cuda_graph,
        } => {
            let device = crate::train::setup::device(&device, threads)?;
            let how = bench::Speed {
                precision: Precision::parse(&precision)?,
                memory_format: MemoryFormat::parse(&memory_format)?,
                fused_optimizer: fused(&optimizer)?,
                cuda_graph,
            };
            bench::train_steps(device, batch, size, warmup, steps, how)?
        }
        BenchCommand::OptimStep { optimizer, warmup, steps, threads, device } => {
            let device = crate::train::setup::device(&device, threads)?;
            let rate = bench::optim_steps(device, fused(&optimizer)?, warmup, steps)?;
            println!("{}", serde_json::to_string(&rate)?);
            return Ok(0);
        }
        BenchCommand::Loader { list, images, mode, size, batch, workers, epochs, cache } => {
            let mode = match mode.as_str() {
                "train" => Mode::Train,
                "val" => Mode::Val,
                other => anyhow::bail!("--mode {other:?} is not train or val"),
            };
            let items = lists::read_chestxray14(&list, &images, 14)?;
            bench::loader_epochs(items, mode, (size, batch, workers, epochs.max(1)), cache.as_deref())?
        }
    };
    println!("{}", serde_json::to_string(&rate)?);
    Ok(0)
}

fn fused(optimizer: &str) -> Result<bool> {
    match optimizer {
        "fused" => Ok(true),
        "plain" => Ok(false),
        other => anyhow::bail!("--optimizer {other:?} is not fused or plain"),
    }
}
