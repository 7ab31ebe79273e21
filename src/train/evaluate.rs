//! Losses and evaluation passes: validation loss and metrics each epoch, and the test pass with the
//! best weights (ten-crop averaging for classification; Dice/IoU at 0.5 for segmentation).

use super::metrics::{ClassAurocs, SegScores, class_aurocs, dice_loss};
use crate::data::Loader;
use crate::model::Net;
use anyhow::Result;
use std::collections::BTreeMap;
use tch::nn::ModuleT;
use tch::{Device, Kind, Reduction, Tensor};

/// The training loss of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    /// Sigmoid + binary cross-entropy (classification, and DRIVE segmentation).
    Bce,
    /// Soft Dice on sigmoid probabilities (segmentation).
    Dice,
}

impl LossKind {
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Bce => "bce",
            LossKind::Dice => "dice",
        }
    }

    pub fn compute(self, logits: &Tensor, targets: &Tensor) -> Tensor {
        let targets = targets.to_kind(logits.kind());
        match self {
            LossKind::Bce => logits.binary_cross_entropy_with_logits::<Tensor>(&targets, None, None, Reduction::Mean),
            LossKind::Dice => dice_loss(&logits.sigmoid(), &targets),
        }
    }
}

/// Validation: the mean loss over batches and the task's metrics.
pub struct Validation {
    pub loss: f64,
    pub metrics: BTreeMap<String, f64>,
}

pub fn validate(net: &Net, loader: &Loader, device: Device, loss: LossKind, labels: &[String]) -> Result<Validation> {
    // The study's val loss: batch losses weighted by batch size, Σ n_b·L_b / Σ n_b.
    let mut total = 0.0;
    let mut samples = 0usize;
    let mut scores = Scores::new(labels.len());
    let mut seg = SegScores::default();
    let segmentation = matches!(net, Net::Unet(_));
    for batch in loader.epoch(0) {
        let batch = batch?;
        let (images, targets) = (batch.images_on(device), batch.targets.to_device(device));
        let logits = tch::no_grad(|| net.forward_t(&images, false));
        total += loss.compute(&logits, &targets).double_value(&[]) * batch.indices.len() as f64;
        samples += batch.indices.len();
        let probs = logits.sigmoid().to_device(Device::Cpu);
        if segmentation {
            seg.add_batch(&probs, &batch.targets);
        } else {
            scores.add(&probs, &batch.targets)?;
        }
    }
    let mut metrics = BTreeMap::new();
    if segmentation {
        metrics.insert("dice".into(), seg.dice_per_image());
        metrics.insert("dice_global".into(), seg.dice_global());
    } else {
        let all: Vec<usize> = (0..labels.len()).collect();
        let ClassAurocs { per_class, mean, .. } = scores.aurocs(labels, &all);
        metrics.extend(per_class.into_iter().map(|(k, v)| (format!("auc.{k}"), v)));
        metrics.insert("auc_mean".into(), mean);
    }
    Ok(Validation { loss: total / samples.max(1) as f64, metrics })
}

/// Per-class predicted probabilities and labels, gathered over batches.
struct Scores {
    probs: Vec<Vec<f64>>,
    labels: Vec<Vec<bool>>,
}

impl Scores {
    fn new(classes: usize) -> Scores {
        Scores { probs: vec![vec![]; classes], labels: vec![vec![]; classes] }
    }

    fn add(&mut self, probs: &Tensor, targets: &Tensor) -> Result<()> {
        let p = Vec::<Vec<f64>>::try_from(probs.to_kind(Kind::Double))?;
        let t = Vec::<Vec<f64>>::try_from(targets.to_kind(Kind::Double))?;
        for (row_p, row_t) in p.iter().zip(&t) {
            for c in 0..self.probs.len().min(row_p.len()) {
                self.probs[c].push(row_p[c]);
                self.labels[c].push(row_t[c] > 0.5);
            }
        }
        Ok(())
    }

    /// AUROC of each class in `which` and their mean (`metrics::class_aurocs`).
    fn aurocs(&self, names: &[String], which: &[usize]) -> ClassAurocs {
        class_aurocs(names, which, &self.probs, &self.labels)
    }
}

/// Test metrics: per class (classification) and the headline mean, plus extras.
pub struct TestScores {
    pub per_class: BTreeMap<String, f64>,
    pub mean: f64,
    pub extra: BTreeMap<String, f64>,
    /// Classification: test classes with one label value, whose AUROC is undefined (`ClassAurocs::undefined`).
    pub undefined: Vec<String>,
}

/// Index of the centre crop among torchvision's ten crops.
const CENTRE_CROP: i64 = 4;

/// Classification test: batches of ten crops [N,10,3,S,S]; predictions are averaged over the crops
/// (or the centre crop alone without `tta`); AUROC per test class and their mean.
pub fn test_classification(
    net: &Net,
    loader: &Loader,
    device: Device,
    labels: &[String],
    test_classes: &[usize],
    tta: bool,
) -> Result<TestScores> {
    let mut scores = Scores::new(labels.len());
    for batch in loader.epoch(0) {
        let batch = batch?;
        let size = batch.images.size();
        let (n, crops) = (size[0], size[1]);
        let images = batch.images_on(device);
        let probs = tch::no_grad(|| {
            if tta {
                let flat = images.flatten(0, 1);
                net.forward_t(&flat, false).sigmoid().view([n, crops, -1]).mean_dim(1, false, Kind::Float)
            } else {
                net.forward_t(&images.select(1, CENTRE_CROP), false).sigmoid()
            }
        });
        scores.add(&probs.to_device(Device::Cpu), &batch.targets)?;
    }
    let ClassAurocs { per_class, mean, undefined } = scores.aurocs(labels, test_classes);
    Ok(TestScores { per_class, mean, extra: BTreeMap::new(), undefined })
}

/// Segmentation test: Dice (mean per image, the headline) and global, IoU global and per image.
pub fn test_segmentation(net: &Net, loader: &Loader, device: Device) -> Result<TestScores> {
    let mut seg = SegScores::default();
    for batch in loader.epoch(0) {
        let batch = batch?;
        let images = batch.images_on(device);
        let probs = tch::no_grad(|| net.forward_t(&images, false).sigmoid());
        seg.add_batch(&probs.to_device(Device::Cpu), &batch.targets);
    }
    let extra = BTreeMap::from([
        ("dice_global".to_string(), seg.dice_global()),
        ("dice_per_image".to_string(), seg.dice_per_image()),
        ("iou".to_string(), seg.iou_global()),
        ("iou_per_image".to_string(), seg.iou_per_image()),
    ]);
    Ok(TestScores { per_class: BTreeMap::new(), mean: seg.dice_per_image(), extra, undefined: vec![] })
}
