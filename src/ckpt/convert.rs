//! Conversion: checkpoint -> validated torchvision resnet50 backbone (float32 safetensors) + provenance JSON.

use super::container::{self, Checkpoint};
use super::recipe::{self, Dropped, Selected};
use super::resnet50;
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
    let want: HashMap<String, Vec<usize>> = resnet50::backbone().into_iter().collect();
    let got: HashMap<&str, Vec<usize>> = sel.tensors.iter().map(|(n, t)| (n.as_str(), t.shape_usize())).collect();
    let mut missing: Vec<&str> = want.keys().filter(|n| !got.contains_key(n.as_str())).map(String::as_str).collect();
    let mut extra: Vec<&str> = got.keys().filter(|n| !want.contains_key(**n)).copied().collect();
    let mut misshapen: Vec<String> = got
        .iter()
        .filter_map(|(n, s)| want.get(*n).filter(|w| *w != s).map(|w| format!("{n} is {s:?}, expected {w:?}")))
        .collect();
    let non_float: Vec<String> = sel
        .tensors
        .iter()
        .filter(|(_, t)| !t.storage.dtype.is_float())
        .map(|(n, t)| format!("{n} is {}", t.storage.dtype.name()))
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
pub fn convert_file(recipe_id: &str, input: &Path, output: &Path) -> Result<Provenance> {
    let shown = input.display();
    let bytes = std::fs::read(input).with_context(|| format!("cannot read {shown}"))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let ckpt = container::load(&bytes).with_context(|| format!("refusing {shown}"))?;
    let (recipe, because, sel, tensors) =
        prepare(&ckpt, recipe_id).with_context(|| format!("cannot convert {shown}"))?;
    let prov = Provenance {
        source_file: input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        source_sha256: sha.clone(),
        source_format: format!("{:?}", ckpt.format).to_lowercase(),
        recipe: recipe.id.to_string(),
        guessed_because: because,
        state_dict_at: if sel.container.is_empty() { "top level".into() } else { sel.container.to_string() },
        tensors: tensors.len(),
        dropped: sel.dropped,
        ignored_top_level_keys: sel.ignored,
        medxfer_version: crate::VERSION.to_string(),
    };
    let meta: HashMap<String, String> = [
        ("format".to_string(), "pt".to_string()),
        ("medxfer_recipe".to_string(), recipe.id.to_string()),
        ("source_sha256".to_string(), sha),
    ]
    .into();
    let tmp = crate::atomic::temp_path(output);
    let written = (|| -> Result<()> {
        safetensors::serialize_to_file(tensors.iter(), Some(meta), &tmp)
            .map_err(|e| anyhow!("cannot write {}: {e}", tmp.display()))?;
        std::fs::File::open(&tmp)?.sync_all()?;
        let json = serde_json::to_vec_pretty(&prov)?;
        crate::atomic::write(&provenance_path(output), &json)?;
        crate::atomic::commit(&tmp, output)?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!("cannot write {}", output.display())));
    }
    Ok(prov)
}
