//! Speed settings tch does not expose, through a small C++ shim (shim.cpp, built by build.rs against the
//! libtorch headers torch-sys uses): TF32, cuDNN benchmark, autocast to bf16, channels-last (NHWC).
//! All of them also work on CPU (autocast to bf16 and NHWC convolutions exist there), so they are tested
//! everywhere; only their speed needs a GPU. `fused`: libtorch's fused Adam kernels; `graph`: CUDA graphs.

pub mod fused;
pub mod graph;

use anyhow::{Result, bail};
use std::os::raw::c_int;
use tch::nn::VarStore;
use tch::{Device, Tensor};
use torch_sys::C_tensor;

unsafe extern "C" {
    fn medxfer_set_tf32(on: c_int) -> c_int;
    fn medxfer_tf32() -> c_int;
    fn medxfer_set_cudnn_benchmark(on: c_int) -> c_int;
    fn medxfer_cudnn_benchmark() -> c_int;
    fn medxfer_autocast_enter(cuda: c_int, fp16: c_int) -> c_int;
    fn medxfer_autocast_exit(cuda: c_int) -> c_int;
    fn medxfer_autocast_enabled(cuda: c_int) -> c_int;
    fn medxfer_make_channels_last(t: *mut C_tensor) -> c_int;
    fn medxfer_channels_last(t: *const C_tensor) -> *mut C_tensor;
    fn medxfer_is_channels_last(t: *const C_tensor) -> c_int;
}

/// The arithmetic a run trains in (`device.precision` in spec.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// IEEE float32 everywhere.
    Fp32,
    /// float32 tensors, TF32 tensor-core matmuls and convolutions (CUDA only; the same as fp32 on CPU).
    Tf32,
    /// Autocast: matmuls and convolutions in bfloat16, reductions and the loss in float32.
    Bf16,
}

impl Precision {
    pub fn parse(s: &str) -> Result<Precision> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "tf32" => Ok(Precision::Tf32),
            "bf16" => Ok(Precision::Bf16),
            other => bail!("precision {other:?} is not one of fp32, tf32, bf16"),
        }
    }
}

/// How image and weight tensors are laid out (`device.memory_format` in spec.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryFormat {
    Nchw,
    /// Channels-last: what tensor cores want for convolutions.
    Nhwc,
}

impl MemoryFormat {
    pub fn parse(s: &str) -> Result<MemoryFormat> {
        match s {
            "nchw" => Ok(MemoryFormat::Nchw),
            "nhwc" => Ok(MemoryFormat::Nhwc),
            other => bail!("memory format {other:?} is not one of nchw, nhwc"),
        }
    }
}

fn check(code: c_int, what: &str) -> Result<()> {
    if code != 0 {
        bail!("libtorch refused to {what}");
    }
    Ok(())
}

pub fn set_tf32(on: bool) -> Result<()> {
    // SAFETY: plain flag setters on libtorch's global context; exceptions are caught in the shim.
    check(unsafe { medxfer_set_tf32(c_int::from(on)) }, "set TF32")
}

pub fn tf32() -> bool {
    // SAFETY: a getter on libtorch's global context.
    unsafe { medxfer_tf32() == 1 }
}

pub fn set_cudnn_benchmark(on: bool) -> Result<()> {
    // SAFETY: a flag setter on libtorch's global context.
    check(unsafe { medxfer_set_cudnn_benchmark(c_int::from(on)) }, "set cuDNN benchmark")
}

pub fn cudnn_benchmark() -> bool {
    // SAFETY: a getter on libtorch's global context.
    unsafe { medxfer_cudnn_benchmark() == 1 }
}

/// Sets the process-wide flags a precision needs (TF32 on only for `tf32`) and cuDNN benchmark.
pub fn configure(precision: Precision, device: Device) -> Result<()> {
    set_tf32(precision == Precision::Tf32)?;
    set_cudnn_benchmark(device.is_cuda())
}

/// Autocast to bfloat16 on `device` while alive (this thread).
#[derive(Debug)]
pub struct Autocast {
    cuda: c_int,
}

impl Autocast {
    /// `None` unless `precision` is bf16.
    pub fn enter(precision: Precision, device: Device) -> Result<Option<Autocast>> {
        if precision != Precision::Bf16 {
            return Ok(None);
        }
        let cuda = c_int::from(device.is_cuda());
        // SAFETY: thread-local autocast state in libtorch; paired with the exit in Drop.
        check(unsafe { medxfer_autocast_enter(cuda, 0) }, "enter autocast")?;
        Ok(Some(Autocast { cuda }))
    }

    pub fn enabled(device: Device) -> bool {
        // SAFETY: a getter of thread-local autocast state.
        unsafe { medxfer_autocast_enabled(c_int::from(device.is_cuda())) == 1 }
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        // SAFETY: undoes the enter of this guard.
        unsafe { medxfer_autocast_exit(self.cuda) };
    }
}

/// Re-lays every 4-d weight of `vs` out channels-last, in place.
pub fn make_channels_last(vs: &VarStore) -> Result<()> {
    for (name, mut t) in vs.variables() {
        // SAFETY: `t` shares its TensorImpl with the VarStore's tensor; set_data keeps shape and values.
        check(unsafe { medxfer_make_channels_last(t.as_mut_ptr()) }, &format!("make {name} channels-last"))?;
    }
    Ok(())
}

/// `t`'s values in a channels-last layout (4-d tensors).
pub fn channels_last(t: &Tensor) -> Result<Tensor> {
    // SAFETY: the shim returns a new heap at::Tensor (owned by the returned Tensor) or null.
    let ptr = unsafe { medxfer_channels_last(t.as_ptr()) };
    if ptr.is_null() {
        bail!("libtorch cannot lay out a tensor of shape {:?} channels-last", t.size());
    }
    // SAFETY: a valid, uniquely owned at::Tensor*.
    Ok(unsafe { Tensor::from_ptr(ptr) })
}

pub fn is_channels_last(t: &Tensor) -> bool {
    // SAFETY: a read-only query on a live tensor.
    unsafe { medxfer_is_channels_last(t.as_ptr()) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::ModuleT;
    use tch::{Kind, kind::FLOAT_CPU};

    #[test]
    fn flags_round_trip() {
        set_tf32(true).unwrap();
        assert!(tf32());
        set_tf32(false).unwrap();
        assert!(!tf32());
        set_cudnn_benchmark(true).unwrap();
        assert!(cudnn_benchmark());
        set_cudnn_benchmark(false).unwrap();
        assert!(!cudnn_benchmark());
    }

    #[test]
    fn channels_last_keeps_values_and_the_network_output() {
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let net = crate::model::resnet50(vs.root(), Some(3), crate::model::Padding::Torch);
        let x = Tensor::randn([2, 3, 64, 64], FLOAT_CPU);
        let reference = net.forward_t(&x, false);
        make_channels_last(&vs).unwrap();
        let conv1 = vs.variables()["conv1.weight"].shallow_clone();
        assert!(is_channels_last(&conv1) && !is_channels_last(&x));
        let xl = channels_last(&x).unwrap();
        assert!(is_channels_last(&xl));
        assert_eq!(f64::try_from((&xl - &x).abs().max()).unwrap(), 0.0);
        let out = net.forward_t(&xl, false);
        let diff = f64::try_from((&out - &reference).abs().max()).unwrap();
        assert!(diff < 1e-4, "NHWC output differs by {diff}");
    }

    #[test]
    fn bf16_autocast_runs_convolutions_in_bfloat16_and_ends_with_its_guard() {
        let x = Tensor::randn([1, 3, 16, 16], FLOAT_CPU);
        let w = Tensor::randn([4, 3, 3, 3], FLOAT_CPU);
        assert!(Autocast::enter(Precision::Fp32, Device::Cpu).unwrap().is_none());
        let full = x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
        {
            let _guard = Autocast::enter(Precision::Bf16, Device::Cpu).unwrap();
            assert!(Autocast::enabled(Device::Cpu));
            let half = x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
            assert_eq!(half.kind(), Kind::BFloat16);
            let rel = f64::try_from((half.to_kind(Kind::Float) - &full).abs().max()).unwrap()
                / f64::try_from(full.abs().max()).unwrap();
            assert!(rel < 0.02, "bf16 relative error {rel}");
        }
        assert!(!Autocast::enabled(Device::Cpu));
        assert_eq!(x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1).kind(), Kind::Float);
    }

    #[test]
    fn names_parse_and_bad_ones_are_named() {
        assert_eq!(Precision::parse("bf16").unwrap(), Precision::Bf16);
        assert_eq!(MemoryFormat::parse("nhwc").unwrap(), MemoryFormat::Nhwc);
        assert!(Precision::parse("fp8").unwrap_err().to_string().contains("\"fp8\""));
    }
}
