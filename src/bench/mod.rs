//! Throughput probes for `make bench` (`medxfer bench ...`): the same work as the trainer's inner loop
//! and data loader, timed in-process so that process start and libtorch loading are not counted.
//! scripts/bench runs each next to its Python reference and reports the ratios.

use crate::data::cache::{self, CacheView, ImageCache, Resize};
use crate::data::{Item, Loader, LoaderConfig, Mode, Normalization};
use crate::perf::{self, MemoryFormat, Precision};
use crate::runs::record::Task;
use crate::train::evaluate::LossKind;
use crate::train::graphed::{self, StepRunner};
use crate::train::optim::{OptimConfig, OptimKind, Optimizer};
use crate::train::setup;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

/// A measured rate with what produced it.
#[derive(Debug, Serialize)]
pub struct Rate {
    pub what: String,
    pub images: usize,
    pub seconds: f64,
    pub images_per_s: f64,
}

impl Rate {
    fn new(what: String, images: usize, seconds: f64) -> Rate {
        Rate { what, images, seconds, images_per_s: images as f64 / seconds.max(1e-12) }
    }
}

/// ResNet50 (14 classes) train steps on random inputs: forward, BCE-with-logits, backward, Adam; run as
/// the trainer runs them (`graphed::StepRunner`: recorded into a CUDA graph when `how.cuda_graph`).
pub fn train_steps(device: Device, batch: usize, size: usize, warmup: usize, steps: usize, how: Speed) -> Result<Rate> {
    tch::manual_seed(0);
    perf::configure(how.precision, device)?;
    let vs = VarStore::new(device);
    let net = setup::build(&vs, Task::Classification, 14, crate::model::Padding::Torch);
    if how.memory_format == MemoryFormat::Nhwc {
        perf::make_channels_last(&vs)?;
    }
    let params = setup::trainable(&vs);
    let config = OptimConfig::new(OptimKind::Adam, 2e-4, 0.0, 0.9).with_fused(how.fused_optimizer);
    let mut optimizer = Optimizer::new(config);
    let x = Tensor::randn([batch as i64, 3, size as i64, size as i64], (Kind::Float, device));
    let x = if how.memory_format == MemoryFormat::Nhwc { perf::channels_last(&x)? } else { x };
    let y = Tensor::rand([batch as i64, 14], (Kind::Float, device)).round();
    let mut runner = StepRunner::new(device, how.cuda_graph, graphed::WARMUP_STEPS);
    let mut train_step = |x: &Tensor, y: &Tensor, optimizer: &mut Optimizer| -> Result<Tensor> {
        Optimizer::zero_grad(&params);
        let logits = {
            let _autocast = perf::Autocast::enter(how.precision, device)?;
            net.forward_t(x, true)
        };
        let loss = LossKind::Bce.compute(&logits.to_kind(Kind::Float), y);
        loss.backward();
        optimizer.step(&params)?;
        Ok(loss)
    };
    let mut step = || -> Result<f64> {
        let (loss, _) = runner.run(&x, &y, &mut optimizer, &mut train_step)?;
        Ok(loss.double_value(&[]))
    };
    // A graph is recorded after the runner's own warm-up: those steps count as warm-up here too.
    let warmup = if how.cuda_graph { warmup.max(graphed::WARMUP_STEPS as usize + 1) } else { warmup };
    for _ in 0..warmup {
        step()?;
    }
    if device.is_cuda() {
        tch::Cuda::synchronize(device_index(device));
    }
    let started = Instant::now();
    for _ in 0..steps {
        step()?;
    }
    // double_value already waited for each step's loss; the optimizer's last kernels may still be queued.
    if device.is_cuda() {
        tch::Cuda::synchronize(device_index(device));
    }
    let graph = match runner.off_reason() {
        None => "CUDA graph".to_string(),
        Some(reason) if how.cuda_graph => format!("eager ({reason})"),
        Some(_) => "eager".to_string(),
    };
    let optim = if how.fused_optimizer { "fused Adam" } else { "Adam" };
    let what = format!(
        "resnet50 train step, batch {batch}, {size}px, {device:?}, {:?} {:?}, {optim}, {graph}",
        how.precision, how.memory_format
    );
    Ok(Rate::new(what, batch * steps, started.elapsed().as_secs_f64()))
}

/// How a train step runs: precision, layout, optimizer kernel, CUDA graph.
#[derive(Debug, Clone, Copy)]
pub struct Speed {
    pub precision: Precision,
    pub memory_format: MemoryFormat,
    pub fused_optimizer: bool,
    pub cuda_graph: bool,
}

/// Optimizer steps per second.
#[derive(Debug, Serialize)]
pub struct StepRate {
    pub what: String,
    pub steps: usize,
    pub seconds: f64,
    pub steps_per_s: f64,
}

/// Adam updates of ResNet50's parameters (14-class head, 161 tensors) with fixed random gradients: the
/// optimizer alone, through the fused kernel or per parameter.
pub fn optim_steps(device: Device, fused: bool, warmup: usize, steps: usize) -> Result<StepRate> {
    tch::manual_seed(0);
    let vs = VarStore::new(device);
    let _net = setup::build(&vs, Task::Classification, 14, crate::model::Padding::Torch);
    let params = setup::trainable(&vs);
    for (_, p) in &params {
        let mut g = p.grad();
        if !g.defined() {
            // a gradient the size of the parameter, set as autograd would (sum(p * r) has gradient r)
            (p * Tensor::randn_like(p)).sum(Kind::Float).backward();
            g = p.grad();
        }
        anyhow::ensure!(g.defined(), "no gradient for a parameter");
    }
    let mut optimizer = Optimizer::new(OptimConfig::new(OptimKind::Adam, 2e-4, 0.0, 0.9).with_fused(fused));
    for _ in 0..warmup {
        optimizer.step(&params)?;
    }
    if device.is_cuda() {
        tch::Cuda::synchronize(device_index(device));
    }
    let started = Instant::now();
    for _ in 0..steps {
        optimizer.step(&params)?;
    }
    if device.is_cuda() {
        tch::Cuda::synchronize(device_index(device));
    }
    let seconds = started.elapsed().as_secs_f64();
    let what = format!(
        "Adam step over resnet50's {} parameters, {device:?}, {}",
        params.len(),
        if fused { "fused" } else { "per parameter" }
    );
    Ok(StepRate { what, steps, seconds, steps_per_s: steps as f64 / seconds.max(1e-12) })
}

fn device_index(device: Device) -> i64 {
    match device {
        Device::Cuda(i) => i as i64,
        _ => 0,
    }
}

/// Every image of `items` `epochs` times through the classification loader (`mode` transforms, `workers`
/// threads). With `cache_dir`, the decoded-image cache for `mode` is built there first (not timed) and the
/// loader reads it.
pub fn loader_epochs(
    items: Vec<Item>,
    mode: Mode,
    (size, batch, workers, epochs): (usize, usize, usize, usize),
    cache_dir: Option<&Path>,
) -> Result<Rate> {
    let count = items.len();
    // per core: libtorch's intra-op threads (batch tensors) must not spin on the other cores
    tch::set_num_threads(1);
    let mut config = LoaderConfig::for_split(Task::Classification, mode, batch, size, Normalization::Imagenet);
    (config.workers, config.shuffle, config.drop_last) = (workers, false, false);
    let mut loader = Loader::new(items, config);
    if let Some(dir) = cache_dir {
        let sources: Vec<_> = loader.items().iter().map(|i| (i.image.clone(), cache::Kind::Image)).collect();
        let resize = Resize::for_mode(mode, size);
        let report = cache::build(dir, "bench", &sources, resize, workers, &|_, _| {})?;
        let opened = ImageCache::open(&report.file)?.context("the cache just built is missing")?;
        let view = CacheView::new(Arc::new(opened), loader.items());
        anyhow::ensure!(view.hits() == count, "the cache holds {} of {count} images", view.hits());
        loader = loader.with_cache(view);
    }
    let started = Instant::now();
    let mut seen = 0;
    for epoch in 1..=epochs as u64 {
        for b in loader.epoch(epoch) {
            seen += b.context("the loader failed")?.indices.len();
        }
    }
    anyhow::ensure!(seen == count * epochs, "the loader gave {seen} of {} images", count * epochs);
    let cached = if cache_dir.is_some() { "cached" } else { "uncached" };
    let what = format!("loader {mode:?}, {size}px, {workers} workers, {epochs} epoch(s), {cached}");
    Ok(Rate::new(what, seen, started.elapsed().as_secs_f64()))
}
