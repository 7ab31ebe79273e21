//! The allow-list: which GLOBALs a checkpoint may name, and what "calling" each one means
//! (always building an inert value; nothing from the file is ever executed).

use super::dtype::DType;
use super::value::{StorageRef, TensorRef, Value};
use anyhow::{Result, anyhow, bail};

/// Classes kept as opaque metadata objects.
const INERT_CLASSES: &[&str] = &[
    "argparse.Namespace",
    "numpy.dtype",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "torch.Tensor",
    "torch.nn.parameter.Parameter",
    "torch.device",
];

const FUNCTIONS: &[&str] = &[
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._tensor._rebuild_from_type_v2",
    "collections.OrderedDict",
    "_codecs.encode",
];

/// Which extra GLOBALs a pickle may name besides PyTorch's: chosen by the recipe, never by the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// torch.save files: the lists above only.
    Torch,
    /// BYOL's dill pickle: also dill's namedtuple constructor, numpy array reconstruction, haiku's
    /// mappings and optax state types (all as inert values).
    Byol,
}

/// BYOL only: calls that build inert values (see `call`).
const BYOL_FUNCTIONS: &[&str] = &[
    "dill._dill._create_namedtuple",
    "dill._dill._create_array",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "haiku._src.data_structures.FlatMapping",
    "haiku._src.data_structures.frozendict",
];

/// BYOL only: classes kept as opaque objects.
const BYOL_INERT: &[&str] = &["numpy.ndarray"];

/// BYOL only: optax's optimizer-state namedtuples (opt_state is never read; kept as opaque objects).
fn is_optax_state(global: &str) -> bool {
    global.strip_prefix("optax._src.").is_some_and(|rest| {
        let name = rest.rsplit('.').next().unwrap_or("");
        rest.split('.').all(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
            && (name.ends_with("State") || name == "MaskedNode")
    })
}

/// Whether `module.name` may appear in a GLOBAL / STACK_GLOBAL under `policy`.
pub fn is_allowed(global: &str, policy: Policy) -> bool {
    FUNCTIONS.contains(&global)
        || INERT_CLASSES.contains(&global)
        || storage_dtype(global).is_some()
        || (policy == Policy::Byol
            && (BYOL_FUNCTIONS.contains(&global) || BYOL_INERT.contains(&global) || is_optax_state(global)))
}

/// The namedtuple class that `dill._dill._create_namedtuple(name, fields, module[, defaults])` made.
pub const NAMEDTUPLE: &str = "dill._dill._create_namedtuple";

/// Calling a namedtuple class made by dill: a dict of its fields (extra or missing fields refused).
pub fn new_namedtuple(class_args: &[Value], args: Vec<Value>) -> Result<Value> {
    let name = match class_args.first() {
        Some(Value::Str(s)) => s.clone(),
        _ => bail!("{NAMEDTUPLE} without a string name"),
    };
    let fields: Vec<String> = match class_args.get(1) {
        Some(Value::Tuple(f)) | Some(Value::List(f)) => f
            .iter()
            .map(|x| match x {
                Value::Str(s) => Ok(s.clone()),
                _ => Err(anyhow!("namedtuple {name} has a field name that is not a string")),
            })
            .collect::<Result<_>>()?,
        _ => bail!("namedtuple {name} without a tuple of field names"),
    };
    if fields.len() != args.len() {
        bail!("namedtuple {name} has {} fields but is built from {} values", fields.len(), args.len());
    }
    Ok(Value::Dict(fields.into_iter().map(Value::Str).zip(args).collect()))
}

/// The dtype of a `torch.XStorage` global.
pub fn storage_dtype(global: &str) -> Option<DType> {
    global.strip_prefix("torch.").and_then(DType::from_storage_class)
}

/// REDUCE / NEWOBJ of `global` with `args`.
pub fn call(global: &str, args: Vec<Value>) -> Result<Value> {
    match global {
        "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => rebuild_tensor(args),
        "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => match args.first() {
            Some(Value::Tensor(_)) if global.ends_with("_with_state") => {
                refuse_attributes(global, args.get(3))?;
                call("torch._utils._rebuild_parameter", args)
            }
            Some(Value::Tensor(t)) => Ok(Value::Tensor(t.clone())),
            other => bail!("{global} expects a tensor first, got {}", other.map_or("nothing", Value::kind)),
        },
        "torch._tensor._rebuild_from_type_v2" => {
            let mut it = args.into_iter();
            let (func, class, inner) = (it.next(), it.next(), it.next());
            refuse_attributes(global, it.next().as_ref())?;
            match (func, class, inner) {
                (Some(Value::Global(f)), Some(Value::Global(c)), Some(Value::Tuple(inner)))
                    if (c == "torch.Tensor" || c == "torch.nn.parameter.Parameter")
                        && f.starts_with("torch._utils._rebuild_") =>
                {
                    call(&f, inner)
                }
                _ => bail!("{global} with arguments other than (rebuild function, torch.Tensor, args)"),
            }
        }
        "collections.OrderedDict" => match args.as_slice() {
            [] => Ok(Value::Dict(Vec::new())),
            [Value::List(pairs)] | [Value::Tuple(pairs)] => pairs
                .iter()
                .map(|p| match p {
                    Value::Tuple(kv) | Value::List(kv) if kv.len() == 2 => Ok((kv[0].clone(), kv[1].clone())),
                    _ => Err(anyhow!("collections.OrderedDict item is not a (key, value) pair")),
                })
                .collect::<Result<Vec<_>>>()
                .map(Value::Dict),
            _ => bail!("collections.OrderedDict with unexpected arguments"),
        },
        "_codecs.encode" => match args.as_slice() {
            [Value::Str(s), Value::Str(enc)] if enc == "latin1" || enc == "latin-1" => s
                .chars()
                .map(|c| u8::try_from(c as u32).map_err(|_| anyhow!("_codecs.encode: character {c:?} is not latin1")))
                .collect::<Result<Vec<u8>>>()
                .map(Value::Bytes),
            _ => bail!("_codecs.encode with arguments other than (str, 'latin1')"),
        },
        NAMEDTUPLE => match args.as_slice() {
            [Value::Str(_), Value::Tuple(_) | Value::List(_), Value::Str(_)]
            | [Value::Str(_), Value::Tuple(_) | Value::List(_), Value::Str(_), _] => {
                Ok(Value::Object { class: NAMEDTUPLE.to_string(), args, state: None })
            }
            _ => bail!("{NAMEDTUPLE} with arguments other than (name, fields, module[, defaults])"),
        },
        // dill's ndarray: _create_array(_reconstruct, args, state, npdict) = _reconstruct(*args) + BUILD(state).
        "dill._dill._create_array" => {
            let mut it = args.into_iter();
            match (it.next(), it.next(), it.next(), it.next()) {
                (Some(Value::Global(f)), Some(Value::Tuple(a)), Some(state), None | Some(Value::None))
                    if f.ends_with("multiarray._reconstruct") =>
                {
                    match call(&f, a)? {
                        Value::Object { class, args, .. } => {
                            Ok(Value::Object { class, args, state: Some(Box::new(state)) })
                        }
                        other => bail!("{global}: {f} built a {}", other.kind()),
                    }
                }
                _ => bail!("{global} with arguments other than (_reconstruct, args, state, None)"),
            }
        }
        "numpy.core.multiarray._reconstruct" | "numpy._core.multiarray._reconstruct" => match args.first() {
            Some(Value::Global(c)) if c == "numpy.ndarray" => {
                Ok(Value::Object { class: "numpy.ndarray".to_string(), args: Vec::new(), state: None })
            }
            _ => bail!("{global} of something other than numpy.ndarray"),
        },
        "haiku._src.data_structures.FlatMapping" | "haiku._src.data_structures.frozendict" => match args.as_slice() {
            [Value::Dict(d)] => Ok(Value::Dict(d.clone())),
            [] => Ok(Value::Dict(Vec::new())),
            _ => bail!("{global} with arguments other than one dict"),
        },
        class if INERT_CLASSES.contains(&class) || BYOL_INERT.contains(&class) || is_optax_state(class) => {
            Ok(Value::Object { class: class.to_string(), args, state: None })
        }
        other => bail!("refusing to call {other}: it is not callable under the allow-list"),
    }
}

/// `persistent_load` for `('storage', torch.XStorage, key, location, numel[, view_metadata])`.
pub fn persistent_storage(pid: Value) -> Result<Value> {
    let Value::Tuple(items) = pid else {
        bail!("persistent id is a {}, not a ('storage', ...) tuple", pid.kind());
    };
    match items.first() {
        Some(Value::Str(s)) if s == "storage" => {}
        Some(Value::Str(s)) => bail!("refusing persistent id type {s:?} (only 'storage' is allowed)"),
        _ => bail!("refusing a persistent id that does not start with 'storage'"),
    }
    let dtype = match items.get(1) {
        Some(Value::Global(g)) => storage_dtype(g).ok_or_else(|| anyhow!("persistent id names {g}, not a storage"))?,
        _ => bail!("persistent id without a storage class"),
    };
    let key = match items.get(2) {
        Some(Value::Str(k)) => k.clone(),
        _ => bail!("persistent id without a string storage key"),
    };
    let numel = match items.get(4) {
        Some(Value::Int(n)) if *n >= 0 => *n as u64,
        _ => bail!("persistent id for storage {key:?} without a non-negative element count"),
    };
    let mut storage = StorageRef { key, dtype, numel, elem_offset: 0 };
    match items.get(5) {
        None | Some(Value::None) => {}
        Some(Value::Tuple(view)) => match view.as_slice() {
            [Value::Str(_), Value::Int(off), Value::Int(size)] if *off >= 0 && *size >= 0 => {
                storage.elem_offset = *off as u64;
                storage.numel = *size as u64;
            }
            _ => bail!("storage {:?} has a malformed view (key, offset, size)", storage.key),
        },
        Some(other) => bail!("storage {:?} has view metadata of type {}", storage.key, other.kind()),
    }
    if items.len() > 6 {
        bail!("persistent id for storage {:?} has {} fields", storage.key, items.len());
    }
    Ok(Value::Storage(storage))
}

fn int_list(v: Option<&Value>, what: &str) -> Result<Vec<i64>> {
    match v {
        Some(Value::Tuple(xs)) | Some(Value::List(xs)) => xs
            .iter()
            .map(|x| match x {
                Value::Int(i) => Ok(*i),
                _ => Err(anyhow!("tensor {what} holds a {}", x.kind())),
            })
            .collect(),
        _ => bail!("tensor {what} is not a tuple of ints"),
    }
}

fn rebuild_tensor(args: Vec<Value>) -> Result<Value> {
    let storage = match args.first() {
        Some(Value::Storage(s)) => s.clone(),
        other => bail!("tensor rebuilt from a {}, not a storage", other.map_or("nothing", Value::kind)),
    };
    let offset = match args.get(1) {
        Some(Value::Int(o)) => *o,
        _ => bail!("tensor on storage {:?} without an integer offset", storage.key),
    };
    let shape = int_list(args.get(2), "size")?;
    let stride = int_list(args.get(3), "stride")?;
    Ok(Value::Tensor(TensorRef { storage, offset, shape, stride }))
}

/// torch's `_set_obj_state` sets each entry of a tensor's state as an attribute, and an attribute
/// such as `data` replaces the weights: only empty states are accepted.
fn refuse_attributes(global: &str, state: Option<&Value>) -> Result<()> {
    let empty = |v: &Value| match v {
        Value::None => true,
        Value::Dict(items) => items.is_empty(),
        _ => false,
    };
    let fine = match state {
        None => true,
        Some(Value::Tuple(parts)) if parts.len() == 2 => parts.iter().all(empty),
        Some(v) => empty(v),
    };
    if !fine {
        bail!("{global} sets tensor attributes from its state, which medxfer does not apply");
    }
    Ok(())
}
