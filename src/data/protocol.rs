//! The study-protocol settings of a run (`[data.protocol]` in spec.toml), resolved at plan time. Every
//! default is the study's (docs: /work/shared/reference/study-protocol.md §2-§4); any other value is a medxfer
//! option set with `--set key=value`, recorded in spec.toml and shown as a convention on the leaderboard.

use super::spec::{DatasetSpec, ListFormat, UncertainPolicy};
use crate::runs::record::Task;
use anyhow::{Result, bail};
use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which splits `anno_percent` subsets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnnoScope {
    /// Train, val and test, each with `random.Random(99)` (the study, for CheXpert and Shenzhen).
    #[default]
    AllSplits,
    /// Only the training split.
    TrainOnly,
}

/// How the classification head (Linear 2048 → classes) starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadInit {
    /// Weight ~ N(0, 0.01²), bias 0 (the study).
    #[default]
    #[serde(rename = "normal-0.01")]
    Normal001,
    /// torch.nn.Linear's default: U(±1/√2048) for weight and bias.
    TorchDefault,
}

/// Convolution padding of the ResNet50.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConvPadding {
    /// torchvision's symmetric padding (the study, also for BYOL's weights).
    #[default]
    Torch,
    /// TF/haiku SAME padding, as BYOL was trained with.
    Same,
}

/// The training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// BCELoss on sigmoid outputs, mean over batch × classes (classification, DRIVE).
    Bce,
    /// Soft Dice, smooth 1, over the whole batch (Montgomery, SIIM).
    Dice,
}

/// How images are resized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Interpolation {
    /// PIL's antialiased bilinear (classification: RandomResizedCrop, Resize 256²).
    PilBilinear,
}

/// The training augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Augmentation {
    /// RandomResizedCrop 224 → horizontal flip p 0.5 → rotation ±7° (classification); val resize 256² +
    /// centre crop, test ten-crop.
    CropFlipRotate,
}

/// What training does with a batch of a single image (a split of n·batch_size + 1 images ends with one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SingleImageBatch {
    /// Trained on like every other batch (the study: drop_last=False).
    #[default]
    Keep,
    /// Classification below `SINGLE_IMAGE_MIN_SIZE` px: skipped. ResNet50's last map is 1x1 there, so
    /// BatchNorm would see one value per channel (PyTorch refuses it; libtorch gives NaN running statistics).
    #[serde(rename = "skip-single-below-64px")]
    SkipSingleBelow64px,
}

/// The image size below which ResNet50's last feature map is 1x1.
pub const SINGLE_IMAGE_MIN_SIZE: u32 = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Protocol {
    /// CheXpert only: what an uncertain (-1) label becomes.
    pub uncertain_policy: Option<UncertainPolicy>,
    /// CheXpert only: the value of a blank label cell (-1 makes it uncertain).
    pub unknown_label: Option<i8>,
    pub anno_scope: AnnoScope,
    pub head_init: HeadInit,
    pub padding: ConvPadding,
    /// None in a spec written before these were resolved: the dataset's (`Protocol::resolve`).
    pub loss: Option<Loss>,
    pub interpolation: Option<Interpolation>,
    pub augmentation: Option<Augmentation>,
    /// None in a spec written before it was resolved: `resolve` decides by task and image size.
    pub single_image_batch: Option<SingleImageBatch>,
}

/// The `--set` keys of `Protocol`.
pub const KEYS: &[&str] =
    &["uncertain_policy", "unknown_label", "anno_scope", "head_init", "padding", "loss", "single_image_batch"];

fn typed<T: DeserializeOwned>(key: &str, value: &str) -> Result<T> {
    T::deserialize(value.into_deserializer())
        .map_err(|e: serde::de::value::Error| anyhow::anyhow!("--set {key}={value}: {e}"))
}

impl Protocol {
    /// Applies one `--set key=value` for a key of `KEYS`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "uncertain_policy" => self.uncertain_policy = Some(typed(key, value)?),
            "unknown_label" => match value {
                "-1" | "0" | "1" => self.unknown_label = value.parse().ok(),
                _ => bail!("--set unknown_label={value}: expected -1, 0 or 1"),
            },
            "anno_scope" => self.anno_scope = typed(key, value)?,
            "head_init" => self.head_init = typed(key, value)?,
            "padding" => self.padding = typed(key, value)?,
            "loss" => self.loss = Some(typed(key, value)?),
            "single_image_batch" => self.single_image_batch = Some(typed(key, value)?),
            _ => bail!("--set {key}={value}: unknown key {key:?}"),
        }
        Ok(())
    }

    /// Fills what the dataset and the image size decide (label policy, loss, resize, augmentation, single-image
    /// batches) and refuses settings that do not apply to the dataset, in one sentence.
    pub fn resolve(&mut self, spec: &DatasetSpec, image_size: u32) -> Result<()> {
        // Skipping only happens where a single image gives a 1x1 map; elsewhere every batch is kept, and the
        // spec records that. Below 64 px the default is to skip: keeping such a batch cannot train.
        let one_by_one = spec.task == Task::Classification && image_size < SINGLE_IMAGE_MIN_SIZE;
        self.single_image_batch = Some(match self.single_image_batch {
            _ if !one_by_one => SingleImageBatch::Keep,
            Some(chosen) => chosen,
            None => SingleImageBatch::SkipSingleBelow64px,
        });
        if spec.list_format == ListFormat::Chexpert {
            self.uncertain_policy = self.uncertain_policy.or(spec.uncertain_policy).or(Some(UncertainPolicy::LsrOnes));
            self.unknown_label = self.unknown_label.or(Some(0));
        } else if self.uncertain_policy.is_some() || self.unknown_label.is_some() {
            bail!("uncertain_policy and unknown_label apply to CheXpert lists only, not to dataset {}", spec.name);
        }
        let study_loss = study_loss(spec);
        self.loss = self.loss.or(Some(study_loss));
        if spec.task == Task::Classification {
            if self.loss != Some(Loss::Bce) {
                bail!("dataset {} is classification: its loss is bce, not dice", spec.name);
            }
            self.interpolation = self.interpolation.or(Some(Interpolation::PilBilinear));
            self.augmentation = self.augmentation.or(Some(Augmentation::CropFlipRotate));
        }
        Ok(())
    }

    /// The loss, for a spec resolved or not.
    pub fn loss_for(&self, spec: &DatasetSpec) -> Loss {
        self.loss.unwrap_or_else(|| study_loss(spec))
    }

    /// Each setting where this run differs from the study, as leaderboard conventions.
    pub fn differences(&self, spec: &DatasetSpec, anno_percent: u32) -> BTreeMap<String, serde_json::Value> {
        let mut out = BTreeMap::new();
        let mut differs = |key: &str, value: serde_json::Value| {
            out.insert(key.to_string(), value);
        };
        if self.anno_scope != AnnoScope::default() {
            differs("anno_scope", serde_json::json!(self.anno_scope));
        }
        if anno_percent < 100 && spec.name == "chestxray14" {
            differs(
                "anno_percent_applied",
                "the study ignored anno_percent for chestxray14; medxfer applies it".into(),
            );
        }
        if self.head_init != HeadInit::default() {
            differs("head_init", serde_json::json!(self.head_init));
        }
        if self.padding != ConvPadding::default() {
            differs("padding", serde_json::json!(self.padding));
        }
        if self.single_image_batch.is_some_and(|b| b != SingleImageBatch::Keep) {
            differs("single_image_batch", serde_json::json!(self.single_image_batch));
        }
        if self.loss.is_some_and(|l| l != study_loss(spec)) {
            differs("loss", serde_json::json!(self.loss));
        }
        if spec.list_format == ListFormat::Chexpert {
            if self.uncertain_policy.is_some_and(|p| p != UncertainPolicy::LsrOnes) {
                differs("uncertain_policy", serde_json::json!(self.uncertain_policy));
            }
            if self.unknown_label.is_some_and(|u| u != 0) {
                differs("unknown_label", serde_json::json!(self.unknown_label));
            }
        }
        out
    }
}

/// The study's loss for a dataset: BCE for classification and DRIVE, soft Dice for other segmentation sets.
fn study_loss(spec: &DatasetSpec) -> Loss {
    match spec.task {
        Task::Classification => Loss::Bce,
        Task::Segmentation if spec.name == "drive" => Loss::Bce,
        Task::Segmentation => Loss::Dice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_study_and_options_are_typed_checked_and_reported() {
        let chexpert = DatasetSpec::load("chexpert").unwrap();
        let mut p = Protocol::default();
        p.resolve(&chexpert, 224).unwrap();
        assert_eq!((p.uncertain_policy, p.unknown_label), (Some(UncertainPolicy::LsrOnes), Some(0)));
        assert_eq!((p.loss, p.head_init, p.padding), (Some(Loss::Bce), HeadInit::Normal001, ConvPadding::Torch));
        assert!(p.differences(&chexpert, 100).is_empty());
        p.set("uncertain_policy", "zeros").unwrap();
        p.set("head_init", "torch-default").unwrap();
        p.set("padding", "same").unwrap();
        let d = p.differences(&chexpert, 100);
        assert_eq!(d.keys().collect::<Vec<_>>(), ["head_init", "padding", "uncertain_policy"]);
        assert_eq!(d["uncertain_policy"], "zeros");
        let err = p.set("padding", "valid").unwrap_err().to_string();
        assert!(err.contains("padding=valid") && err.contains("same"), "{err}");
        assert!(p.set("unknown_label", "2").is_err());
        let shenzhen = DatasetSpec::load("shenzhen").unwrap();
        let err = p.resolve(&shenzhen, 224).unwrap_err().to_string();
        assert!(err.contains("CheXpert lists only"), "{err}");
        let cx = DatasetSpec::load("chestxray14").unwrap();
        assert!(Protocol::default().differences(&cx, 10).contains_key("anno_percent_applied"));
        let toml = toml::to_string(&p).unwrap();
        assert!(toml.contains("head_init = \"torch-default\"") && toml.contains("uncertain_policy = \"zeros\""));
        assert_eq!(toml::from_str::<Protocol>(&toml).unwrap(), p);
    }

    #[test]
    fn single_image_batches_are_kept_as_the_study_unless_a_1x1_map_makes_them_untrainable() {
        let shenzhen = DatasetSpec::load("shenzhen").unwrap();
        let resolved = |set: Option<&str>, spec: &DatasetSpec, size: u32| {
            let mut p = Protocol::default();
            if let Some(value) = set {
                p.set("single_image_batch", value).unwrap();
            }
            p.resolve(spec, size).unwrap();
            p
        };
        let study = resolved(None, &shenzhen, 224);
        assert_eq!(study.single_image_batch, Some(SingleImageBatch::Keep));
        assert!(study.differences(&shenzhen, 100).is_empty());
        let small = resolved(None, &shenzhen, 32);
        assert_eq!(small.single_image_batch, Some(SingleImageBatch::SkipSingleBelow64px));
        assert_eq!(small.differences(&shenzhen, 100)["single_image_batch"], "skip-single-below-64px");
        assert_eq!(resolved(Some("keep"), &shenzhen, 32).single_image_batch, Some(SingleImageBatch::Keep));
        let no_effect = resolved(Some("skip-single-below-64px"), &shenzhen, 64);
        assert_eq!(no_effect.single_image_batch, Some(SingleImageBatch::Keep), "at 64 px nothing is skipped");
        let seg = DatasetSpec::load("montgomery").unwrap();
        assert_eq!(resolved(None, &seg, 32).single_image_batch, Some(SingleImageBatch::Keep));
        let err = Protocol::default().set("single_image_batch", "drop").unwrap_err().to_string();
        assert!(err.contains("single_image_batch=drop") && err.contains("skip-single-below-64px"), "{err}");
        assert!(toml::to_string(&small).unwrap().contains("single_image_batch = \"skip-single-below-64px\""));
    }
}
