//! `ckpt inspect`: a checkpoint's format, root folder, GLOBALs and key tree as JSON or text.

use super::container::Checkpoint;
use super::value::Value;
use serde_json::{Value as Json, json};

const MAX_ITEMS: usize = 10_000;

/// The key tree: dicts by key, sequences by index, tensors as {dtype, shape}, scalars as values.
pub fn tree(v: &Value) -> Json {
    match v {
        Value::None => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::BigInt(b) => json!(format!("<int of {} bytes>", b.len())),
        Value::Float(f) => json!(f),
        Value::Str(s) => json!(s),
        Value::Bytes(b) => json!(format!("<{} bytes>", b.len())),
        Value::List(xs) | Value::Tuple(xs) | Value::Set(xs) => {
            Json::Array(xs.iter().take(MAX_ITEMS).map(tree).collect())
        }
        Value::Dict(items) => Json::Object(
            items
                .iter()
                .take(MAX_ITEMS)
                .map(|(k, v)| {
                    let key = match k {
                        Value::Str(s) => s.clone(),
                        Value::Int(i) => i.to_string(),
                        other => format!("<{}>", other.kind()),
                    };
                    (key, tree(v))
                })
                .collect(),
        ),
        Value::Global(g) => json!({ "global": g }),
        Value::Object { class, .. } => json!({ "object": class }),
        Value::Storage(s) => json!({ "storage": s.key, "dtype": s.dtype.name(), "numel": s.numel }),
        Value::Tensor(t) => json!({ "dtype": t.storage.dtype.name(), "shape": t.shape }),
    }
}

pub fn report(file: &str, ckpt: &Checkpoint) -> Json {
    json!({
        "file": file,
        "format": ckpt.format,
        "root": ckpt.root,
        "byteorder": if ckpt.big_endian { "big" } else { "little" },
        "globals": ckpt.globals,
        "tree": tree(&ckpt.value),
    })
}

/// Indented text lines for the key tree.
pub fn text_lines(v: &Value, indent: usize, out: &mut Vec<String>) {
    let pad = "  ".repeat(indent);
    let leaf = |v: &Value| -> Option<String> {
        match v {
            Value::Tensor(t) => Some(format!("{} {:?}", t.storage.dtype.name(), t.shape)),
            Value::Dict(_) | Value::List(_) | Value::Tuple(_) | Value::Set(_) => None,
            other => Some(tree(other).to_string()),
        }
    };
    let children: Vec<(String, &Value)> = match v {
        Value::Dict(items) => items
            .iter()
            .map(|(k, v)| (if let Value::Str(s) = k { s.clone() } else { tree(k).to_string() }, v))
            .collect(),
        Value::List(xs) | Value::Tuple(xs) | Value::Set(xs) => {
            xs.iter().enumerate().map(|(i, x)| (format!("[{i}]"), x)).collect()
        }
        _ => Vec::new(),
    };
    for (name, child) in children.into_iter().take(MAX_ITEMS) {
        match leaf(child) {
            Some(s) => out.push(format!("{pad}{name}: {s}")),
            None => {
                out.push(format!("{pad}{name}:"));
                text_lines(child, indent + 1, out);
            }
        }
    }
}
