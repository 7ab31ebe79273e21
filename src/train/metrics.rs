//! Evaluation metrics with the study's conventions: AUROC equal to scikit-learn's roc_auc_score
//! (ties share their average rank), Dice and IoU at threshold 0.5 with an empty ground truth and an
//! empty prediction scored 1.0, and the soft Dice loss used for training.

use std::collections::BTreeMap;
use tch::{Kind, Tensor};

/// Area under the ROC curve; None when `labels` holds only one class (undefined, as scikit-learn says).
pub fn auroc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let n_pos = labels.iter().filter(|&&l| l).count();
    let n_neg = labels.len() - n_pos;
    if n_pos == 0 || n_neg == 0 || scores.len() != labels.len() {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Mann-Whitney U with average ranks for ties equals the trapezoidal ROC area.
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_pos += average_rank * order[i..=j].iter().filter(|&&k| labels[k]).count() as f64;
        i = j + 1;
    }
    let (p, n) = (n_pos as f64, n_neg as f64);
    Some((rank_sum_pos - p * (p + 1.0) / 2.0) / (p * n))
}

/// One trial's classification score: AUROC per class and their arithmetic mean (the study's per-trial mean,
/// engine.py:152-163).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassAurocs {
    pub per_class: BTreeMap<String, f64>,
    /// The mean over the classes with a defined AUROC; NaN when there is none.
    pub mean: f64,
    /// Classes whose labels hold one value only. scikit-learn (and so the study) raises there; medxfer leaves
    /// them out of `per_class` and the mean and names them (result.json's `auroc_undefined` convention).
    pub undefined: Vec<String>,
}

/// AUROC of the classes `which` (indices into `names`, `probs` and `labels`, one vector per class).
pub fn class_aurocs(names: &[String], which: &[usize], probs: &[Vec<f64>], labels: &[Vec<bool>]) -> ClassAurocs {
    let (mut per_class, mut undefined) = (BTreeMap::new(), Vec::new());
    for &c in which {
        let (Some(name), Some(p), Some(l)) = (names.get(c), probs.get(c), labels.get(c)) else { continue };
        match auroc(p, l) {
            Some(a) => {
                per_class.insert(name.clone(), a);
            }
            None => undefined.push(name.clone()),
        }
    }
    let mean = if per_class.is_empty() { f64::NAN } else { per_class.values().sum::<f64>() / per_class.len() as f64 };
    ClassAurocs { per_class, mean, undefined }
}

/// Dice and IoU over a test set, fed one image at a time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegScores {
    intersection: f64,
    predicted: f64,
    truth: f64,
    dice_sum: f64,
    iou_sum: f64,
    images: usize,
}

/// The binarization threshold applied to predicted probabilities.
pub const THRESHOLD: f64 = 0.5;
/// Score of an image with empty ground truth and empty prediction (the study's convention).
pub const EMPTY_MASK_SCORE: f64 = 1.0;

fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 { EMPTY_MASK_SCORE } else { num / den }
}

impl SegScores {
    /// Adds one image: predicted probabilities and its ground-truth mask (> 0.5 is foreground).
    pub fn add_image(&mut self, probs: &[f32], truth: &[f32]) {
        let (mut inter, mut pred, mut gt) = (0.0, 0.0, 0.0);
        for (&p, &g) in probs.iter().zip(truth) {
            let p = f64::from(p) > THRESHOLD;
            let g = f64::from(g) > THRESHOLD;
            inter += f64::from(u8::from(p && g));
            pred += f64::from(u8::from(p));
            gt += f64::from(u8::from(g));
        }
        self.intersection += inter;
        self.predicted += pred;
        self.truth += gt;
        self.dice_sum += ratio(2.0 * inter, pred + gt);
        self.iou_sum += ratio(inter, pred + gt - inter);
        self.images += 1;
    }

    /// Adds a batch of shape [N, ...] of probabilities and masks.
    pub fn add_batch(&mut self, probs: &Tensor, truth: &Tensor) {
        let n = probs.size().first().copied().unwrap_or(0);
        for i in 0..n {
            let p = Vec::<f32>::try_from(probs.get(i).flatten(0, -1).to_kind(Kind::Float)).unwrap_or_default();
            let g = Vec::<f32>::try_from(truth.get(i).flatten(0, -1).to_kind(Kind::Float)).unwrap_or_default();
            self.add_image(&p, &g);
        }
    }

    /// Dice over all pixels of all images pooled together.
    pub fn dice_global(&self) -> f64 {
        ratio(2.0 * self.intersection, self.predicted + self.truth)
    }

    /// The mean of per-image Dice.
    pub fn dice_per_image(&self) -> f64 {
        if self.images == 0 { f64::NAN } else { self.dice_sum / self.images as f64 }
    }

    /// IoU over all pixels pooled together.
    pub fn iou_global(&self) -> f64 {
        ratio(self.intersection, self.predicted + self.truth - self.intersection)
    }

    /// The mean of per-image IoU.
    pub fn iou_per_image(&self) -> f64 {
        if self.images == 0 { f64::NAN } else { self.iou_sum / self.images as f64 }
    }
}

/// The study's soft Dice loss on probabilities: 1 - (2·Σpg + 1) / (Σp + Σg + 1) over the whole batch.
pub fn dice_loss(probs: &Tensor, truth: &Tensor) -> Tensor {
    let p = probs.flatten(0, -1);
    let g = truth.flatten(0, -1).to_kind(p.kind());
    let inter = (&p * &g).sum(Kind::Float);
    let den = p.sum(Kind::Float) + g.sum(Kind::Float) + 1.0;
    1.0 - (inter * 2.0 + 1.0) / den
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_small_cases() {
        assert_eq!(auroc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]), Some(0.75));
        // All scores tied: 0.5.
        assert_eq!(auroc(&[0.3; 4], &[false, true, false, true]), Some(0.5));
        assert_eq!(auroc(&[0.1, 0.2], &[true, true]), None);
    }

    #[test]
    fn dice_conventions() {
        let mut s = SegScores::default();
        s.add_image(&[0.0, 0.0], &[0.0, 0.0]); // empty + empty = 1.0
        s.add_image(&[0.9, 0.6, 0.2, 0.0], &[1.0, 0.0, 1.0, 0.0]); // inter 1, pred 2, gt 2 -> 0.5
        assert_eq!(s.dice_per_image(), 0.75);
        assert_eq!(s.dice_global(), 0.5);
        assert!((s.iou_global() - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.iou_per_image() - (1.0 + 1.0 / 3.0) / 2.0).abs() < 1e-12);
        let mut empty_pred = SegScores::default();
        empty_pred.add_image(&[0.1, 0.1], &[1.0, 0.0]);
        assert_eq!(empty_pred.dice_global(), 0.0);
    }

    #[test]
    fn dice_loss_is_small_for_a_match_and_large_for_a_miss() {
        let g = Tensor::from_slice(&[1.0f32, 1.0, 0.0, 0.0]);
        let hit = dice_loss(&g, &g).double_value(&[]);
        let miss = dice_loss(&(1.0 - &g), &g).double_value(&[]);
        assert!(hit.abs() < 1e-6 && (miss - 0.8).abs() < 1e-6, "{hit} {miss}");
    }
}
