//! The inert values a checkpoint pickle turns into: data only, nothing callable.

use super::dtype::DType;

/// A reference to a raw storage of the container (`data/<key>` in a zip, a keyed blob in the legacy format).
#[derive(Clone, Debug, PartialEq)]
pub struct StorageRef {
    pub key: String,
    pub dtype: DType,
    /// Elements this storage (or legacy view of one) holds.
    pub numel: u64,
    /// Elements to skip in the root storage (legacy storage views; 0 otherwise).
    pub elem_offset: u64,
}

/// A tensor: a strided view into a storage. Checked against its storage when the container loads.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: i64,
    pub shape: Vec<i64>,
    pub stride: Vec<i64>,
}

impl TensorRef {
    pub fn shape_usize(&self) -> Vec<usize> {
        self.shape.iter().map(|&d| d.max(0) as usize).collect()
    }
}

/// One unpickled value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too wide for i64: little-endian two's complement bytes, as pickled.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Set(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// An allowed class or function, by "module.name" (only ever called by the VM's own rules).
    Global(String),
    /// An instance of an allowed metadata class, kept as data.
    Object {
        class: String,
        args: Vec<Value>,
        state: Option<Box<Value>>,
    },
    Storage(StorageRef),
    Tensor(TensorRef),
}

impl Value {
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Set(_) => "set",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Object { .. } => "object",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }

    /// The entry for string key `key` of a dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items.iter().find(|(k, _)| matches!(k, Value::Str(s) if s == key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Children, for walks.
    pub fn children(&self) -> Vec<&Value> {
        match self {
            Value::List(v) | Value::Tuple(v) | Value::Set(v) => v.iter().collect(),
            Value::Dict(items) => items.iter().flat_map(|(k, v)| [k, v]).collect(),
            Value::Object { args, state, .. } => args.iter().chain(state.as_deref()).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether nesting is deeper than `limit` (stops early; cost bounded by the subtree).
    pub fn deeper_than(&self, limit: usize) -> bool {
        if limit == 0 {
            return true;
        }
        self.children().iter().any(|c| c.deeper_than(limit - 1))
    }

    /// Nodes and payload bytes in this value, counted up to `cap` (for bounded copies).
    pub fn weight(&self, cap: usize) -> usize {
        let own = 1 + match self {
            Value::Str(s) => s.len() / 16,
            Value::Bytes(b) | Value::BigInt(b) => b.len() / 16,
            _ => 0,
        };
        let mut total = own;
        for c in self.children() {
            if total > cap {
                break;
            }
            total += c.weight(cap - total);
        }
        total
    }
}
