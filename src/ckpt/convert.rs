//! Conversion: checkpoint -> validated torchvision resnet50 backbone (float32 safetensors) + provenance JSON.

use super::container::{self, Checkpoint};
use super::layout::Tensor32;
use super::recipe::{self, Dropped, Selected};
use super::{byol, resnet50, simclr};
use anyhow::{Context, Result, anyhow, bail};
use safetensors::{Dtype, View};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// What a conversion read, chose and left out; written beside the output.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Provenance {
    pub source_file: String,
    pub source_sha256: String,
    pub source_format: String,
    pub recipe: String,
    /// Why "auto" chose `recipe` (None when the recipe was named).
    pub guessed_because: Option<String>,
    pub state_dict_at: String,
    pub tensors: usize,
    pub dropped: Vec<Dropped>,
    pub ignored_top_level_keys: Vec<String>,
    pub medxfer_version: String,
    /// "same" when the source model used TF/haiku SAME padding (BYOL): load into the SAME-padding ResNet50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<String>,
    /// "none" when the source model expects inputs without mean/std normalisation (SimCLR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_normalization: Option<String>,
}

/// safetensors metadata keys that carry the provenance's conventions to whoever loads the weights.
pub const META_PADDING: &str = "medxfer_padding";
pub const META_INPUT_NORMALIZATION: &str = "medxfer_input_normalization";

/// What a recipe that does not read a torch pickle (BYOL, SimCLR) produced: float32 tensors by
/// torchvision name, what it left out, and the conventions the weights expect.
pub struct Converted {
    pub tensors: BTreeMap<String, Tensor32>,
    pub dropped: Vec<Dropped>,
    pub ignored: Vec<String>,
    pub state_dict_at: String,
    pub source_format: &'static str,
    pub padding: Option<&'static str>,
    pub input_normalization: Option<&'static str>,
}

/// `<output stem>.provenance.json` beside `output`.
pub fn provenance_path(output: &Path) -> PathBuf {
    let stem = output.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    output.with_file_name(format!("{stem}.provenance.json"))
}

struct F32Tensor<'a> {
    shape: Vec<usize>,
    data: Cow<'a, [u8]>,
}

impl View for &F32Tensor<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Checks the selection is exactly resnet50 minus fc; the error lists every offending name.
pub fn validate(sel: &Selected) -> Result<()> {
    let got: Vec<(&str, Vec<usize>)> = sel.tensors.iter().map(|(n, t)| (n.as_str(), t.shape_usize())).collect();
    let non_float: Vec<String> = sel
        .tensors
        .iter()
        .filter(|(_, t)| !t.storage.dtype.is_float())
        .map(|(n, t)| format!("{n} is {}", t.storage.dtype.name()))
        .collect();
    validate_shapes(&got, non_float)
}

/// Checks (name, shape) pairs are exactly resnet50 minus fc; `non_float` lists tensors of other dtypes.
pub fn validate_shapes(got: &[(&str, Vec<usize>)], non_float: Vec<String>) -> Result<()> {
    validate_width(got, non_float, resnet50::WIDTH)
}

fn validate_width(got: &[(&str, Vec<usize>)], non_float: Vec<String>, width: usize) -> Result<()> {
    let want: HashMap<String, Vec<usize>> = resnet50::backbone_of_width(width).into_iter().collect();
    let got: HashMap<&str, Vec<usize>> = got.iter().cloned().collect();
    let mut missing: Vec<&str> = want.keys().filter(|n| !got.contains_key(n.as_str())).map(String::as_str).collect();
    let mut extra: Vec<&str> = got.keys().filter(|n| !want.contains_key(**n)).copied().collect();
    let mut misshapen: Vec<String> = got
        .iter()
        .filter_map(|(n, s)| want.get(*n).filter(|w| *w != s).map(|w| format!("{n} is {s:?}, expected {w:?}")))
        .collect();
    missing.sort();
    extra.sort();
    misshapen.sort();
    let mut problems = Vec::new();
    let list = |v: Vec<String>| {
        let n = v.len();
        let mut s = v.into_iter().take(20).collect::<Vec<_>>().join(", ");
        if n > 20 {
            s.push_str(&format!(" and {} more", n - 20));
        }
        s
    };
    if !missing.is_empty() {
        problems.push(format!("missing {}: {}", missing.len(), list(missing.iter().map(|s| s.to_string()).collect())));
    }
    if !extra.is_empty() {
        problems.push(format!("extra {}: {}", extra.len(), list(extra.iter().map(|s| s.to_string()).collect())));
    }
    if !misshapen.is_empty() {
        problems.push(format!("misshapen {}: {}", misshapen.len(), list(misshapen)));
    }
    if !non_float.is_empty() {
        problems.push(format!("not floating point: {}", list(non_float)));
    }
    if !problems.is_empty() {
        bail!("the result is not torchvision resnet50 without fc ({})", problems.join("; "));
    }
    Ok(())
}

/// The recipe used, why it was guessed, the selection, and the float32 tensors by name.
type Prepared<'a> = (&'static recipe::Recipe, Option<String>, Selected, BTreeMap<String, F32Tensor<'a>>);

/// Loads `bytes`, applies `recipe_id` ("auto" guesses) and validates; returns the tensors to write.
fn prepare<'a>(ckpt: &'a Checkpoint<'a>, recipe_id: &str) -> Result<Prepared<'a>> {
    let (recipe, because) = if recipe_id == "auto" {
        let (id, why) = recipe::guess(&ckpt.value)?;
        (recipe::find(id)?, Some(why))
    } else {
        (recipe::find(recipe_id)?, None)
    };
    let sel = recipe::select(recipe, &ckpt.value)?;
    validate(&sel).with_context(|| format!("origin {:?}", recipe.id))?;
    let mut out = BTreeMap::new();
    for (name, t) in &sel.tensors {
        let data = ckpt.tensor_f32(t).with_context(|| format!("tensor {name}"))?;
        out.insert(name.clone(), F32Tensor { shape: t.shape_usize(), data });
    }
    Ok((recipe, because, sel, out))
}

/// Converts `input` with recipe `recipe_id` (or "auto") into `output` (safetensors) and
/// `<output stem>.provenance.json`, both written atomically; nothing is written on failure.
/// For `simclr-v1`/`simclr-v2`, `input` is a TensorFlow `.index`, a folder holding one checkpoint, or a zip.
pub fn convert_file(recipe_id: &str, input: &Path, output: &Path) -> Result<Provenance> {
    convert_file_for(recipe_id, input, output, resnet50::WIDTH)
}

/// `convert_file` validating against a ResNet50 of base width `width` (torchvision's is 64). Other
/// widths are for the SimCLR and BYOL readers' tests, whose fixtures from TensorFlow and dill are a
/// width-2 ResNet50 to stay small; torch.save recipes always validate at 64.
pub fn convert_file_for(recipe_id: &str, input: &Path, output: &Path, width: usize) -> Result<Provenance> {
    match recipe_id {
        "byol" | "simclr-v1" | "simclr-v2" => convert_other(recipe_id, input, output, width),
        _ if width != resnet50::WIDTH => bail!("origin {recipe_id:?} converts torchvision-width ResNet50s only"),
        _ => convert_torch(recipe_id, input, output),
    }
}

fn source_file(input: &Path) -> String {
    input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn convert_torch(recipe_id: &str, input: &Path, output: &Path) -> Result<Provenance> {
    let shown = input.display();
    let bytes = std::fs::read(input).with_context(|| format!("cannot read {shown}"))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let ckpt = container::load(&bytes).with_context(|| format!("refusing {shown}"))?;
    let (recipe, because, sel, tensors) =
        prepare(&ckpt, recipe_id).with_context(|| format!("cannot convert {shown}"))?;
    let prov = Provenance {
        source_file: source_file(input),
        source_sha256: sha,
        source_format: format!("{:?}", ckpt.format).to_lowercase(),
        recipe: recipe.id.to_string(),
        guessed_because: because,
        state_dict_at: if sel.container.is_empty() { "top level".into() } else { sel.container.to_string() },
        tensors: tensors.len(),
        dropped: sel.dropped,
        ignored_top_level_keys: sel.ignored,
        medxfer_version: crate::VERSION.to_string(),
        padding: None,
        input_normalization: None,
    };
    write(&tensors, &prov, output)?;
    Ok(prov)
}

fn convert_other(recipe_id: &str, input: &Path, output: &Path, width: usize) -> Result<Provenance> {
    let shown = input.display();
    let (converted, sha) = if recipe_id == "byol" {
        let bytes = std::fs::read(input).with_context(|| format!("cannot read {shown}"))?;
        let sha = hex::encode(Sha256::digest(&bytes));
        (byol::convert(&bytes).with_context(|| format!("refusing {shown}"))?, sha)
    } else {
        let files = simclr::load_files(input).with_context(|| format!("refusing {shown}"))?;
        (simclr::convert(recipe_id, &files).with_context(|| format!("refusing {shown}"))?, files.sha256.clone())
    };
    let shapes: Vec<(&str, Vec<usize>)> =
        converted.tensors.iter().map(|(n, t)| (n.as_str(), t.shape.clone())).collect();
    validate_width(&shapes, Vec::new(), width)
        .with_context(|| format!("origin {recipe_id:?}"))
        .with_context(|| format!("cannot convert {shown}"))?;
    let tensors: BTreeMap<String, F32Tensor> = converted
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), F32Tensor { shape: t.shape.clone(), data: Cow::Borrowed(&t.data) }))
        .collect();
    let prov = Provenance {
        source_file: source_file(input),
        source_sha256: sha,
        source_format: converted.source_format.to_string(),
        recipe: recipe_id.to_string(),
        guessed_because: None,
        state_dict_at: converted.state_dict_at.clone(),
        tensors: tensors.len(),
        dropped: converted.dropped,
        ignored_top_level_keys: converted.ignored,
        medxfer_version: crate::VERSION.to_string(),
        padding: converted.padding.map(String::from),
        input_normalization: converted.input_normalization.map(String::from),
    };
    write(&tensors, &prov, output)?;
    Ok(prov)
}

/// Writes the safetensors (with the recipe, source digest and conventions as metadata) and the provenance.
fn write(tensors: &BTreeMap<String, F32Tensor>, prov: &Provenance, output: &Path) -> Result<()> {
    let mut meta: HashMap<String, String> = [
        ("format".to_string(), "pt".to_string()),
        ("medxfer_recipe".to_string(), prov.recipe.clone()),
        ("source_sha256".to_string(), prov.source_sha256.clone()),
    ]
    .into();
    if let Some(p) = &prov.padding {
        meta.insert(META_PADDING.to_string(), p.clone());
    }
    if let Some(n) = &prov.input_normalization {
        meta.insert(META_INPUT_NORMALIZATION.to_string(), n.clone());
    }
    let tmp = crate::atomic::temp_path(output);
    let written = (|| -> Result<()> {
        safetensors::serialize_to_file(tensors.iter(), Some(meta), &tmp)
            .map_err(|e| anyhow!("cannot write {}: {e}", tmp.display()))?;
        std::fs::File::open(&tmp)?.sync_all()?;
        let json = serde_json::to_vec_pretty(prov)?;
        crate::atomic::write(&provenance_path(output), &json)?;
        crate::atomic::commit(&tmp, output)?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!("cannot write {}", output.display())));
    }
    Ok(())
}
