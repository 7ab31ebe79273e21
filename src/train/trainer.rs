//! The epoch loop of one run: resume from last.ckpt, train with the spec's optimizer and schedule,
//! validate, keep best.safetensors, early-stop, then test with the best weights and write result.json.

use super::checkpoint::{self, BEST_FILE, LAST_FILE, scalar_tensors};
use super::evaluate::{self, LossKind, TestScores};
use super::files::RunFiles;
use super::graphed::{self, StepRunner};
use super::optim::{OptimConfig, OptimKind, Optimizer};
use super::schedule::{EarlyStop, Schedule};
use super::setup;
use crate::data::protocol::{ConvPadding, HeadInit, Loss, SingleImageBatch};
use crate::data::{self, Mode, Splits};
use crate::home::Home;
use crate::model::{Net, Padding};
use crate::perf;
use crate::runs::record::{MetricLine, RunResult, RunSpec, Task};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use tch::nn::{ModuleT, VarStore};

/// How a call to `train` ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// A stop was asked for (SIGTERM/SIGINT); last.ckpt holds the state to resume from.
    Stopped,
}

/// Set to 1, CUDA runs use the fused Adam kernel and record the train step into a CUDA graph
/// (`graphed::StepRunner`); off by default until scripts/gpu-check has measured both on a GPU. On CPU, Adam
/// and AdamW are always fused: measured ~7x faster than per-parameter ops (`make bench`, optimizer row),
/// the same update within 1e-6 (tested) and the same last.ckpt.
pub const CUDA_GRAPHS_ENV: &str = "MEDXFER_CUDA_GRAPHS";

/// A metrics.jsonl step line every this many steps, or sooner when this many seconds passed since the last
/// one (a slow CPU run still shows its progress and throughput inside an epoch).
const STEP_LINE_EVERY: u64 = 10;
const STEP_LINE_SECONDS: f64 = 5.0;
const RNG_NOTE: &str = "tch manual_seed(seed) before init, manual_seed(seed + epoch) at each epoch; \
                        data order and augmentation from (seed, epoch)";

struct State {
    optimizer: Optimizer,
    schedule: Schedule,
    early: EarlyStop,
    epoch: u32,
    step: u64,
    elapsed_before: f64,
}

pub fn train(spec: &RunSpec, home: &Home, files: &mut RunFiles, stop: &AtomicBool) -> Result<Outcome> {
    let h = &spec.hyper;
    let device = setup::device(&spec.device.device, spec.device.threads)?;
    let precision = perf::Precision::parse(&spec.device.precision)?;
    let nhwc = perf::MemoryFormat::parse(&spec.device.memory_format)? == perf::MemoryFormat::Nhwc;
    perf::configure(precision, device)?;
    // The init decides padding and (unless the spec sets one) normalisation; on resume it is only
    // needed for these, so a vanished init there means the defaults.
    let resuming = files.dir.join(LAST_FILE).exists();
    let init = match setup::resolve_init(&spec.init, home) {
        Ok(init) => Some(init),
        Err(e) if resuming => {
            files.log(&format!("init {} not found on resume ({e:#}); torchvision conventions assumed", spec.init));
            None
        }
        Err(e) => return Err(e),
    };
    // The study uses torchvision padding and the dataset's normalisation whatever the init was trained with;
    // `--set padding=same` / `--set normalization=none` follow the init instead.
    let conv = init.as_ref().map(setup::conventions).transpose()?.unwrap_or_default();
    let protocol = &spec.data.protocol;
    let padding = match protocol.padding {
        ConvPadding::Torch => Padding::Torch,
        ConvPadding::Same => Padding::Same,
    };
    if conv.padding == Padding::Same && padding != Padding::Same {
        files.log(&format!(
            "init {} was trained with SAME padding; torchvision padding as the study (--set padding=same to change)",
            spec.init
        ));
    }
    if conv.no_normalization && spec.data.normalization.as_deref() != Some("none") {
        files.log(&format!("init {} was trained without mean/std normalisation; normalising as the study (--set normalization=none to change)", spec.init));
    }
    let data_spec = spec.data.clone();
    let splits = data::resolve(&spec.dataset, &data_spec, home, spec.seed)?;
    if splits.task != spec.task {
        bail!("spec.toml says task {:?} but dataset {} is {:?}", spec.task, spec.dataset, splits.task);
    }
    tch::manual_seed(spec.seed as i64);
    let mut vs = VarStore::new(device);
    let net = setup::build(&vs, spec.task, splits.labels.len(), padding);
    let seg_options = splits.segmentation(&spec.data);
    let loss = match spec.task {
        Task::Classification => match splits.protocol.loss_for(&splits.spec) {
            Loss::Bce => LossKind::Bce,
            Loss::Dice => LossKind::Dice,
        },
        Task::Segmentation if seg_options.loss == data::segaug::SegLoss::Bce => LossKind::Bce,
        Task::Segmentation => LossKind::Dice,
    };
    if spec.task == Task::Segmentation {
        files.log(&format!("segmentation data: {}", serde_json::to_string(&seg_options)?));
    }
    splits.write_lists(&files.dir.join("splits"))?;
    let mut st = State {
        optimizer: Optimizer::new(
            OptimConfig::new(OptimKind::parse(&h.optimizer)?, h.lr, h.weight_decay, h.momentum)
                .with_fused(!device.is_cuda() || cuda_graphs_wanted()),
        ),
        schedule: Schedule::from_name(&h.scheduler, h.lr, h.epochs, h.patience)?,
        early: EarlyStop::new(h.patience),
        epoch: 0,
        step: 0,
        elapsed_before: 0.0,
    };
    let last = files.dir.join(LAST_FILE);
    if last.exists() {
        let ck = checkpoint::load(&last)?;
        setup::restore(&vs, &ck.with_prefix("model."), &last)?;
        st.optimizer.load_state(&ck.tensors, device).with_context(|| last.display().to_string())?;
        st.schedule.load_state(&ck.scalars("sched")).with_context(|| last.display().to_string())?;
        st.early.load_state(&ck.scalars("stop")).with_context(|| last.display().to_string())?;
        st.epoch = ck.meta_field(&last, "epoch")?;
        st.step = ck.meta_field(&last, "step")?;
        st.elapsed_before = ck.meta_field(&last, "elapsed_s")?;
        files.log(&format!("resuming after epoch {} (step {}) from {}", st.epoch, st.step, last.display()));
    } else {
        let init = init.ok_or_else(|| anyhow::anyhow!("init {} is not resolved", spec.init))?;
        let note = setup::apply_init(&mut vs, &net, &init)?;
        if let (HeadInit::TorchDefault, Net::ResNet50(resnet)) = (splits.protocol.head_init, &net) {
            resnet.init_head_torch_default();
        }
        files.log(&format!("init {}: {note}", spec.init));
    }
    let (lines, events) = files.truncate_to_epoch(st.epoch)?;
    if lines + events > 0 {
        files.log(&format!(
            "dropped {lines} metrics.jsonl lines and {events} TensorBoard events past epoch {}",
            st.epoch
        ));
    }
    if nhwc {
        perf::make_channels_last(&vs)?;
    }
    files.status.progress(st.epoch, st.early.best_epoch, st.early.best.is_finite().then_some(st.early.best))?;

    let train_loader = splits.loader(Mode::Train, h.batch_size, &spec.data, spec.seed).pinned_for(device);
    let val_loader = splits.loader(Mode::Val, h.batch_size, &spec.data, spec.seed).pinned_for(device);
    if train_loader.batches_per_epoch() == 0 {
        bail!("the training split has {} images, fewer than batch_size {}", splits.train.len(), h.batch_size);
    }
    let params = setup::trainable(&vs);
    let best_path = files.dir.join(BEST_FILE);
    let mut runner = StepRunner::new(device, cuda_graphs_wanted(), graphed::WARMUP_STEPS);
    if device.is_cuda() {
        files.log(&match runner.off_reason() {
            Some(reason) => format!("train steps run eagerly: {reason}"),
            None => format!("train steps are recorded into a CUDA graph after {} warm-up steps", graphed::WARMUP_STEPS),
        });
    }
    // Autocast covers the forward pass only; the loss and evaluation stay in float32.
    let mut train_step = |x: &tch::Tensor, y: &tch::Tensor, optimizer: &mut Optimizer| -> Result<tch::Tensor> {
        Optimizer::zero_grad(&params);
        let logits = {
            let _autocast = perf::Autocast::enter(precision, device)?;
            net.forward_t(x, true)
        };
        let value = loss.compute(&logits.to_kind(tch::Kind::Float), y);
        value.backward();
        optimizer.step(&params)?;
        Ok(value)
    };
    // `protocol::SingleImageBatch`: resolved by task and image size, skipping only where the map is 1x1.
    let one_value_per_channel = splits.protocol.single_image_batch == Some(SingleImageBatch::SkipSingleBelow64px);
    let mut skip_logged = false;
    while st.epoch < h.epochs && !st.early.should_stop() {
        let epoch = st.epoch + 1;
        tch::manual_seed(spec.seed.wrapping_add(u64::from(epoch)) as i64);
        let started = std::time::Instant::now();
        let (mut loss_sum, mut batches, mut images) = (0.0, 0usize, 0usize);
        let mut last_step_line = started;
        for batch in train_loader.epoch(u64::from(epoch)) {
            let batch = batch.with_context(|| format!("epoch {epoch}"))?;
            if one_value_per_channel && batch.indices.len() == 1 {
                if !skip_logged {
                    files.log(&format!(
                        "epoch {epoch}: a training batch of 1 image is skipped (and in every epoch after): at image_size {} \
                         BatchNorm would see one value per channel (single_image_batch = skip-single-below-64px)",
                        spec.data.image_size
                    ));
                    skip_logged = true;
                }
                continue;
            }
            let (x, y) = (batch.images_on(device), batch.targets.to_device(device));
            let x = if nhwc { perf::channels_last(&x)? } else { x };
            let graphs_were_on = runner.off_reason().is_none();
            let (value, _) = runner.run(&x, &y, &mut st.optimizer, &mut train_step)?;
            if let (true, Some(reason)) = (graphs_were_on, runner.off_reason()) {
                files.log(&format!("epoch {epoch} step {}: {reason}", st.step + 1));
            }
            // Checked after the update (a recorded step cannot stop halfway); nothing is saved after it.
            let v = value.double_value(&[]);
            if !v.is_finite() {
                bail!("the training loss became {v} at epoch {epoch}, step {}", st.step + 1);
            }
            st.step += 1;
            (loss_sum, batches, images) = (loss_sum + v, batches + 1, images + batch.indices.len());
            if st.step.is_multiple_of(STEP_LINE_EVERY) || last_step_line.elapsed().as_secs_f64() >= STEP_LINE_SECONDS {
                last_step_line = std::time::Instant::now();
                let rate = images as f64 / started.elapsed().as_secs_f64().max(1e-9);
                let step_line = MetricLine {
                    epoch_batches: Some(train_loader.batches_per_epoch() as u64),
                    ..line(&st, files, "step", epoch, Some(v), rate)
                };
                files.append_metric(&step_line)?;
            }
            if stop.load(Ordering::SeqCst) {
                save_last(&last, &vs, &st, spec, st.elapsed_before + files.elapsed_s())?;
                files.log(&format!("stop asked at epoch {epoch} step {}: saved {}", st.step, last.display()));
                return Ok(Outcome::Stopped);
            }
        }
        let rate = images as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let val = evaluate::validate(&net, &val_loader, device, loss, &splits.labels)
            .with_context(|| format!("validation after epoch {epoch}"))?;
        if !val.loss.is_finite() {
            bail!("the validation loss became {} after epoch {epoch}, step {}", val.loss, st.step);
        }
        let lr_used = st.optimizer.lr;
        if st.early.observe(epoch, val.loss) {
            let meta = BTreeMap::from([("epoch".into(), epoch.to_string()), ("val_loss".into(), val.loss.to_string())]);
            checkpoint::save(&best_path, &setup::named_variables(&vs), &meta)?;
        }
        st.optimizer.lr = st.schedule.step(lr_used, val.loss);
        st.epoch = epoch;
        let mut m = line(&st, files, "epoch", epoch, Some(loss_sum / batches.max(1) as f64), rate);
        (m.lr, m.val_loss, m.val) = (lr_used, Some(val.loss), val.metrics);
        // The metrics line goes before last.ckpt: a crash in between redoes the epoch and drops the line.
        files.append_metric(&m)?;
        save_last(&last, &vs, &st, spec, st.elapsed_before + files.elapsed_s())?;
        files.status.progress(epoch, st.early.best_epoch, Some(st.early.best))?;
        files.log(&format!(
            "epoch {epoch}: train_loss {:.5} val_loss {:.5} lr {lr_used:.3e} {rate:.1} images/s; {}",
            loss_sum / batches.max(1) as f64,
            val.loss,
            scores_text(&m.val)
        ));
        if stop.load(Ordering::SeqCst) && st.epoch < h.epochs && !st.early.should_stop() {
            files.log(&format!("stop asked after epoch {epoch}"));
            return Ok(Outcome::Stopped);
        }
    }
    if best_path.exists() {
        crate::model::load_all(&mut vs, &best_path)?;
        let epoch = st.early.best_epoch.map_or("unknown".into(), |e| e.to_string());
        files.log(&format!("testing with {} (best epoch {epoch})", best_path.display()));
    }
    let result = test(spec, &splits, &net, device, st.early.best_epoch.unwrap_or(st.epoch), st.epoch)?;
    let details = [scores_text(&result.per_class), scores_text(&result.extra)].join(", ");
    files.log(&format!("test {}: mean {:.5}; {}", result.metric, result.mean, details.trim_matches([',', ' '])));
    files.append_result(&result)?;
    result.save(&files.dir)?;
    Ok(Outcome::Finished)
}

/// "auc.Mass 0.90333, auc_mean 0.91167": scores as train.log shows them.
fn scores_text(scores: &BTreeMap<String, f64>) -> String {
    scores.iter().map(|(k, v)| format!("{k} {v:.5}")).collect::<Vec<_>>().join(", ")
}

fn cuda_graphs_wanted() -> bool {
    std::env::var(CUDA_GRAPHS_ENV).is_ok_and(|v| v == "1")
}

fn line(st: &State, files: &RunFiles, kind: &str, epoch: u32, loss: Option<f64>, rate: f64) -> MetricLine {
    MetricLine {
        kind: kind.into(),
        epoch,
        step: st.step,
        train_loss: loss,
        val_loss: None,
        lr: st.optimizer.lr,
        images_per_s: rate,
        elapsed_s: st.elapsed_before + files.elapsed_s(),
        val: BTreeMap::new(),
        epoch_batches: None,
    }
}

fn save_last(path: &std::path::Path, vs: &VarStore, st: &State, spec: &RunSpec, elapsed_s: f64) -> Result<()> {
    let mut tensors: Vec<_> = setup::named_variables(vs).into_iter().map(|(n, t)| (format!("model.{n}"), t)).collect();
    tensors.extend(st.optimizer.state_tensors());
    tensors.extend(scalar_tensors(&st.schedule.state()));
    tensors.extend(scalar_tensors(&st.early.state()));
    let meta = BTreeMap::from([
        ("epoch".to_string(), st.epoch.to_string()),
        ("step".into(), st.step.to_string()),
        ("elapsed_s".into(), elapsed_s.to_string()),
        ("seed".into(), spec.seed.to_string()),
        ("rng".into(), RNG_NOTE.to_string()),
        ("best_epoch".into(), st.early.best_epoch.map_or("none".into(), |e| e.to_string())),
        ("best_val_loss".into(), st.early.best.to_string()),
        ("medxfer_version".into(), crate::VERSION.to_string()),
    ]);
    checkpoint::save(path, &tensors, &meta)
}

/// The test phase: the run's test split through `net` (its best weights), scored and described as result.json.
pub fn test(
    spec: &RunSpec,
    splits: &Splits,
    net: &Net,
    device: tch::Device,
    best_epoch: u32,
    epochs_run: u32,
) -> Result<RunResult> {
    let loader = splits.loader(Mode::Test, spec.hyper.test_batch_size, &spec.data, spec.seed).pinned_for(device);
    let scores: TestScores = match spec.task {
        Task::Classification => evaluate::test_classification(
            net,
            &loader,
            device,
            &splits.labels,
            &splits.test_label_indices,
            spec.hyper.tta,
        )?,
        Task::Segmentation => evaluate::test_segmentation(net, &loader, device)?,
    };
    let mut conventions: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let seg = spec.task == Task::Segmentation;
    let tta = if seg {
        "none"
    } else if spec.hyper.tta {
        "tencrop"
    } else {
        "centercrop"
    };
    conventions.insert("tta".into(), tta.into());
    conventions.insert("empty_mask_dice".into(), if seg { 1.0.into() } else { serde_json::Value::Null });
    conventions.insert("threshold".into(), if seg { 0.5.into() } else { serde_json::Value::Null });
    conventions.insert("dice".into(), if seg { "mean_per_image".into() } else { serde_json::Value::Null });
    conventions.insert("uncertain_policy".into(), serde_json::json!(splits.protocol.uncertain_policy));
    conventions.extend(splits.protocol.differences(&splits.spec, spec.data.anno_percent));
    if splits.normalization != splits.spec.normalization {
        conventions.insert("normalization".into(), format!("{:?}", splits.normalization).to_lowercase().into());
    }
    if seg {
        let options = serde_json::to_value(splits.segmentation(&spec.data))?;
        conventions.insert("segmentation".into(), options);
    }
    conventions.insert("split_hash".into(), split_hash(splits).into());
    if !seg {
        let classes: Vec<String> =
            splits.test_label_indices.iter().filter_map(|&i| splits.labels.get(i).cloned()).collect();
        conventions.insert("test_classes".into(), classes.into());
        conventions.insert("auroc".into(), "roc_auc_score, ties averaged".into());
        if !scores.undefined.is_empty() {
            conventions.insert("auroc_undefined".into(), scores.undefined.clone().into());
        }
    }
    Ok(RunResult {
        run_id: spec.id.clone(),
        dataset: spec.dataset.clone(),
        init: spec.init.clone(),
        trial: spec.trial,
        seed: spec.seed,
        anno_percent: spec.data.anno_percent,
        task: spec.task,
        metric: if seg { "dice" } else { "auc" }.into(),
        mean: scores.mean,
        per_class: scores.per_class,
        extra: scores.extra,
        best_epoch,
        epochs_run,
        conventions,
    })
}

/// sha256 over the image paths of the train, val and test splits (relative to the root), in order.
fn split_hash(splits: &Splits) -> String {
    let mut h = Sha256::new();
    for (role, items) in [("train", &splits.train), ("val", &splits.val), ("test", &splits.test)] {
        h.update(role.as_bytes());
        for item in items {
            let p = item.image.strip_prefix(&splits.root).unwrap_or(&item.image);
            h.update(p.to_string_lossy().as_bytes());
            h.update(b"\n");
        }
    }
    hex::encode(h.finalize())
}
