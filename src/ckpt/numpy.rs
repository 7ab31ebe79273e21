//! numpy arrays as pickled (`_reconstruct(ndarray, ...)` then BUILD with
//! `(version, shape, dtype, is_fortran, raw bytes)`), read back as float32 without running numpy.

use super::dtype::{self, DType};
use super::layout::Tensor32;
use super::value::Value;
use anyhow::{Result, anyhow, bail};

/// A float array's shape, dtype and raw little-endian bytes (C order).
pub struct Array {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: Vec<u8>,
}

/// Whether `v` is a reconstructed ndarray.
pub fn is_array(v: &Value) -> bool {
    matches!(v, Value::Object { class, .. } if class == "numpy.ndarray")
}

/// (dtype, big endian) of a pickled `numpy.dtype(code, False, True)` with BUILD state `(3, order, ...)`.
fn dtype_of(v: &Value) -> Result<(DType, bool)> {
    let Value::Object { class, args, state } = v else { bail!("array dtype is a {}, not a numpy.dtype", v.kind()) };
    if class != "numpy.dtype" {
        bail!("array dtype is a {class}, not a numpy.dtype");
    }
    let code = match args.first() {
        Some(Value::Str(s)) => s.as_str(),
        _ => bail!("numpy.dtype without a type code"),
    };
    let order = match state.as_deref() {
        Some(Value::Tuple(s)) => match s.get(1) {
            Some(Value::Str(o)) => o.as_str(),
            _ => "|",
        },
        _ => "|",
    };
    let dt = match code {
        "f4" => DType::F32,
        "f8" => DType::F64,
        "f2" => DType::F16,
        "i4" => DType::I32,
        "i8" => DType::I64,
        "u1" => DType::U8,
        "b1" => DType::Bool,
        other => bail!("numpy dtype {other:?} is not supported"),
    };
    Ok((dt, order == ">"))
}

/// Decodes a reconstructed ndarray.
pub fn array(v: &Value) -> Result<Array> {
    let Value::Object { class, state, .. } = v else { bail!("expected a numpy array, found a {}", v.kind()) };
    if class != "numpy.ndarray" {
        bail!("expected a numpy array, found a {class}");
    }
    let Some(Value::Tuple(st)) = state.as_deref() else {
        bail!("numpy array without its state (shared through the pickle memo before it was filled?)");
    };
    let [_, Value::Tuple(shape), dt, Value::Bool(fortran), data] = st.as_slice() else {
        bail!("numpy array state is not (version, shape, dtype, is_fortran, data)");
    };
    let shape = shape
        .iter()
        .map(|d| match d {
            Value::Int(n) if *n >= 0 => Ok(*n as usize),
            _ => Err(anyhow!("numpy array shape holds a {}", d.kind())),
        })
        .collect::<Result<Vec<_>>>()?;
    let (dtype, big) = dtype_of(dt)?;
    let Value::Bytes(raw) = data else { bail!("numpy array data is a {}, not bytes", data.kind()) };
    let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or_else(|| anyhow!("shape overflows"))?;
    if numel.checked_mul(dtype.size()) != Some(raw.len()) {
        bail!("numpy array of shape {shape:?} and {} holds {} bytes", dtype.name(), raw.len());
    }
    if *fortran && shape.iter().filter(|&&d| d > 1).count() > 1 {
        bail!("numpy array of shape {shape:?} is in Fortran order, which is not supported");
    }
    let data =
        if big { raw.chunks_exact(dtype.size()).flat_map(|c| c.iter().rev().copied()).collect() } else { raw.clone() };
    Ok(Array { shape, dtype, data })
}

impl Array {
    pub fn describe(&self) -> String {
        format!("{}{:?}", self.dtype.name(), self.shape)
    }

    pub fn to_f32(self) -> Result<Tensor32> {
        if !self.dtype.is_float() {
            bail!("a {} array cannot become float32 weights", self.describe());
        }
        Tensor32::new(self.shape, dtype::to_f32_bytes(self.dtype, &self.data)?)
    }
}
