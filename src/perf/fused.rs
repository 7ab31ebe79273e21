//! libtorch's fused Adam/AdamW kernels (torch.optim's `fused=True`), which tch does not expose: one call
//! updates every parameter, on CPU and CUDA.

use anyhow::{Result, bail};
use std::os::raw::{c_char, c_double, c_int};
use tch::Tensor;
use torch_sys::C_tensor;

unsafe extern "C" {
    fn medxfer_last_error() -> *const c_char;
    #[allow(clippy::too_many_arguments)]
    fn medxfer_fused_adam(
        params: *const *mut C_tensor,
        grads: *const *mut C_tensor,
        exp_avgs: *const *mut C_tensor,
        exp_avg_sqs: *const *mut C_tensor,
        n: c_int,
        step: *mut C_tensor,
        lr_tensor: *mut C_tensor,
        lr: c_double,
        beta1: c_double,
        beta2: c_double,
        weight_decay: c_double,
        eps: c_double,
        decoupled: c_int,
    ) -> c_int;
}

/// The tensors of one fused update; the four lists are parallel.
pub struct AdamTensors<'a> {
    pub params: &'a [Tensor],
    pub grads: &'a [Tensor],
    pub exp_avgs: &'a [Tensor],
    pub exp_avg_sqs: &'a [Tensor],
    /// The step count including this update, float32, on the parameters' device.
    pub step: &'a Tensor,
}

/// The hyper-parameters of one update. `lr_tensor` (on the parameters' device) replaces `lr` when given.
pub struct AdamHyper<'a> {
    pub lr: f64,
    pub lr_tensor: Option<&'a Tensor>,
    pub betas: (f64, f64),
    pub weight_decay: f64,
    pub eps: f64,
    /// AdamW's decoupled weight decay instead of Adam's L2 term.
    pub decoupled: bool,
}

/// One Adam or AdamW update of every tensor in `t`, in place.
pub fn adam(t: &AdamTensors, h: &AdamHyper) -> Result<()> {
    let n = t.params.len();
    if [t.grads.len(), t.exp_avgs.len(), t.exp_avg_sqs.len()] != [n, n, n] {
        bail!("fused Adam needs as many gradients and moments as parameters ({n})");
    }
    let ptrs = |ts: &[Tensor]| -> Vec<*mut C_tensor> { ts.iter().map(|t| t.as_ptr() as *mut C_tensor).collect() };
    let (p, g, m, v) = (ptrs(t.params), ptrs(t.grads), ptrs(t.exp_avgs), ptrs(t.exp_avg_sqs));
    let lr_tensor = h.lr_tensor.map_or(std::ptr::null_mut(), |l| l.as_ptr() as *mut C_tensor);
    // SAFETY: every pointer is a live at::Tensor owned by the caller for the duration of the call; the shim
    // copies the handles and catches every C++ exception.
    let code = unsafe {
        medxfer_fused_adam(
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            n as c_int,
            t.step.as_ptr() as *mut C_tensor,
            lr_tensor,
            h.lr,
            h.betas.0,
            h.betas.1,
            h.weight_decay,
            h.eps,
            c_int::from(h.decoupled),
        )
    };
    if code != 0 {
        bail!("libtorch's fused Adam failed: {}", last_error());
    }
    Ok(())
}

fn last_error() -> String {
    // SAFETY: a NUL-terminated thread-local string owned by the shim, copied at once.
    unsafe { std::ffi::CStr::from_ptr(medxfer_last_error()) }.to_string_lossy().lines().next().unwrap_or("").to_string()
}
