//! CUDA graphs: a recorded train step replayed with one launch, and the rules for when to record one.
//! The graph itself is libtorch's at::cuda::CUDAGraph, reached through the shim (cuda_graph.cpp) without
//! linking libtorch_cuda.so; `CapturePolicy` is plain bookkeeping, the same on every device.

use anyhow::{Result, bail};
use std::os::raw::{c_char, c_int, c_void};
use tch::Device;

unsafe extern "C" {
    fn medxfer_graph_supported(reason: *mut c_char, len: usize) -> c_int;
    fn medxfer_graph_new(device: c_int) -> *mut c_void;
    fn medxfer_graph_begin(graph: *mut c_void) -> c_int;
    fn medxfer_graph_end(graph: *mut c_void) -> c_int;
    fn medxfer_graph_replay(graph: *mut c_void) -> c_int;
    fn medxfer_graph_free(graph: *mut c_void);
    fn medxfer_graph_last_error() -> *const c_char;
}

/// Why CUDA graphs cannot be used on `device`, or None when they can.
pub fn unsupported(device: Device) -> Option<String> {
    let Device::Cuda(_) = device else {
        return Some(format!("CUDA graphs need a CUDA device (the device is {device:?})"));
    };
    api_missing()
}

/// Why libtorch's CUDA-graph functions cannot be called (not built in, libtorch_cuda.so not loaded).
pub fn api_missing() -> Option<String> {
    let mut reason = vec![0u8; 512];
    // SAFETY: the shim writes at most `len` bytes, NUL-terminated, into the buffer.
    let ok = unsafe { medxfer_graph_supported(reason.as_mut_ptr().cast(), reason.len()) };
    if ok == 1 {
        return None;
    }
    let end = reason.iter().position(|&b| b == 0).unwrap_or(reason.len());
    Some(String::from_utf8_lossy(&reason[..end]).into_owned())
}

/// One recorded CUDA graph (its memory pool included); freed on drop.
#[derive(Debug)]
pub struct Graph {
    handle: *mut c_void,
}

impl Graph {
    /// An empty graph on `device`, which must be a CUDA device for which `unsupported` said None.
    pub fn new(device: Device) -> Result<Graph> {
        if let Some(reason) = unsupported(device) {
            bail!("{reason}");
        }
        let Device::Cuda(index) = device else { unreachable!("checked by unsupported") };
        // SAFETY: the shim returns a new handle or null (with the reason kept for graph_error).
        let handle = unsafe { medxfer_graph_new(index as c_int) };
        if handle.is_null() {
            bail!("libtorch cannot create a CUDA graph: {}", graph_error());
        }
        Ok(Graph { handle })
    }

    /// Records `work` (everything it queues on this thread's CUDA stream) instead of running it.
    pub fn capture<T>(&mut self, work: impl FnOnce() -> Result<T>) -> Result<T> {
        // SAFETY: a live handle; begin and end are paired below whatever `work` does.
        if unsafe { medxfer_graph_begin(self.handle) } != 0 {
            bail!("CUDA graph capture could not start: {}", graph_error());
        }
        let out = work();
        // SAFETY: ends the capture begun above.
        let ended = unsafe { medxfer_graph_end(self.handle) };
        let out = out?;
        if ended != 0 {
            bail!("CUDA graph capture failed: {}", graph_error());
        }
        Ok(out)
    }

    /// Runs the recorded work once more, on this thread's current CUDA stream.
    pub fn replay(&mut self) -> Result<()> {
        // SAFETY: a live handle whose capture ended (the shim reports a replay before that as an error).
        if unsafe { medxfer_graph_replay(self.handle) } != 0 {
            bail!("CUDA graph replay failed: {}", graph_error());
        }
        Ok(())
    }
}

impl Drop for Graph {
    fn drop(&mut self) {
        // SAFETY: the handle came from medxfer_graph_new and is freed once.
        unsafe { medxfer_graph_free(self.handle) };
    }
}

fn graph_error() -> String {
    // SAFETY: a NUL-terminated thread-local string owned by the shim, copied at once.
    let text = unsafe { std::ffi::CStr::from_ptr(medxfer_graph_last_error()) }.to_string_lossy().into_owned();
    text.lines().next().unwrap_or("").to_string()
}

/// What to do with the next train step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run it as usual.
    Eager,
    /// Record it into a new graph (dropping any older one), then replay that graph to run it.
    Capture,
    /// Copy its inputs into the graph's and replay the graph.
    Replay,
}

/// When a step is recorded, replayed or run eagerly. A graph fixes every shape, so it serves only steps
/// whose inputs have the shape it was recorded with. A shape is recorded after `warmup` eager steps of it in
/// a row (cuDNN's autotuning and the optimizer's lazily made state happen there, outside the graph); other
/// shapes (the partial last batch of an epoch) run eagerly beside it. A shape other than the recorded one
/// seen `warmup` times in a row replaces it: it is recorded at its next step.
#[derive(Debug, Clone, PartialEq)]
pub struct CapturePolicy {
    warmup: u32,
    state: PolicyState,
}

#[derive(Debug, Clone, PartialEq)]
enum PolicyState {
    Off(String),
    Warming { shape: Vec<i64>, seen: u32 },
    Recorded { shape: Vec<i64>, other: Option<(Vec<i64>, u32)> },
}

impl CapturePolicy {
    /// `warmup` is at least 1: the first step of a shape always runs eagerly.
    pub fn new(warmup: u32) -> CapturePolicy {
        CapturePolicy { warmup: warmup.max(1), state: PolicyState::Warming { shape: vec![], seen: 0 } }
    }

    /// A policy that runs every step eagerly, for `reason`.
    pub fn off(reason: impl Into<String>) -> CapturePolicy {
        CapturePolicy { warmup: 1, state: PolicyState::Off(reason.into()) }
    }

    /// Why graphs are off, when they are.
    pub fn off_reason(&self) -> Option<&str> {
        match &self.state {
            PolicyState::Off(reason) => Some(reason),
            _ => None,
        }
    }

    /// Turns graphs off for the rest of the run (a capture failed).
    pub fn disable(&mut self, reason: impl Into<String>) {
        self.state = PolicyState::Off(reason.into());
    }

    /// The recorded graph no longer matches what a step does (the optimizer's state or the weights were
    /// replaced): the next steps warm up and record again.
    pub fn invalidate(&mut self) {
        if !matches!(self.state, PolicyState::Off(_)) {
            self.state = PolicyState::Warming { shape: vec![], seen: 0 };
        }
    }

    /// The decision for a step whose inputs have `shape` (all input shapes, concatenated with separators).
    pub fn decide(&mut self, shape: &[i64]) -> Decision {
        let warmup = self.warmup;
        match &mut self.state {
            PolicyState::Off(_) => Decision::Eager,
            PolicyState::Warming { shape: s, seen } if s.as_slice() == shape => {
                if *seen >= warmup {
                    self.state = PolicyState::Recorded { shape: shape.to_vec(), other: None };
                    Decision::Capture
                } else {
                    *seen += 1;
                    Decision::Eager
                }
            }
            PolicyState::Warming { .. } => {
                self.state = PolicyState::Warming { shape: shape.to_vec(), seen: 1 };
                Decision::Eager
            }
            PolicyState::Recorded { shape: s, other } if s.as_slice() == shape => {
                *other = None;
                Decision::Replay
            }
            PolicyState::Recorded { other, .. } => {
                let seen = match other {
                    Some((o, n)) if o.as_slice() == shape => *n + 1,
                    _ => 1,
                };
                if seen >= warmup {
                    self.state = PolicyState::Warming { shape: shape.to_vec(), seen };
                } else {
                    *other = Some((shape.to_vec(), seen));
                }
                Decision::Eager
            }
        }
    }
}

/// The shapes of a step's inputs as one key for `CapturePolicy::decide`.
pub fn shape_key(inputs: &[&tch::Tensor]) -> Vec<i64> {
    let mut key = vec![];
    for t in inputs {
        key.extend(t.size());
        key.push(-1 - t.kind() as i64);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use Decision::*;

    fn run(policy: &mut CapturePolicy, shapes: &[i64]) -> Vec<Decision> {
        shapes.iter().map(|&b| policy.decide(&[b, 3, 224, 224])).collect()
    }

    #[test]
    fn records_after_warmup_replays_the_same_shape_and_runs_a_partial_batch_eagerly() {
        let mut p = CapturePolicy::new(3);
        // 3 warm-up steps, record, replay; the partial last batch (7) is eager and keeps the graph.
        assert_eq!(
            run(&mut p, &[32, 32, 32, 32, 32, 7, 32, 32]),
            [Eager, Eager, Eager, Capture, Replay, Eager, Replay, Replay]
        );
    }

    #[test]
    fn a_shape_change_during_warmup_restarts_it() {
        let mut p = CapturePolicy::new(2);
        assert_eq!(run(&mut p, &[32, 7, 32, 32, 32]), [Eager, Eager, Eager, Eager, Capture]);
    }

    #[test]
    fn a_new_steady_shape_replaces_the_recorded_one_but_an_occasional_one_does_not() {
        let mut p = CapturePolicy::new(2);
        assert_eq!(run(&mut p, &[8, 8, 8, 8]), [Eager, Eager, Capture, Replay]);
        // one odd batch per epoch never replaces the graph
        assert_eq!(run(&mut p, &[5, 8, 5, 8]), [Eager, Replay, Eager, Replay]);
        // 16 twice in a row (its warm-up): recorded at its third step; 8 then warms up anew
        assert_eq!(run(&mut p, &[16, 16, 16, 16, 8]), [Eager, Eager, Capture, Replay, Eager]);
    }

    #[test]
    fn invalidation_records_again_and_off_stays_off() {
        let mut p = CapturePolicy::new(1);
        assert_eq!(run(&mut p, &[4, 4, 4]), [Eager, Capture, Replay]);
        p.invalidate();
        assert_eq!(run(&mut p, &[4, 4, 4]), [Eager, Capture, Replay]);
        p.disable("capture failed");
        assert_eq!(run(&mut p, &[4, 4]), [Eager, Eager]);
        p.invalidate();
        assert_eq!(run(&mut p, &[4]), [Eager]);
        assert_eq!(p.off_reason(), Some("capture failed"));
        // warm-up 0 is taken as 1: a shape's first step is never recorded
        assert_eq!(run(&mut CapturePolicy::new(0), &[4, 4]), [Eager, Capture]);
    }

    #[test]
    fn cpu_has_no_graphs_and_says_why() {
        let reason = unsupported(Device::Cpu).unwrap();
        assert!(reason.contains("CUDA device") && reason.contains("Cpu"), "{reason}");
        assert!(Graph::new(Device::Cpu).unwrap_err().to_string().contains("CUDA device"));
    }

    #[test]
    fn the_graph_api_resolves_in_libtorch_cuda_once_it_is_loaded() {
        // This machine's pip torch ships libtorch_cuda.so and the CUDA headers build.rs looks for; loading
        // the library needs no GPU. A CPU-only libtorch has no libtorch_cuda.so: then the reason says so.
        match crate::torch_runtime::load_cuda() {
            Ok(path) => assert_eq!(
                api_missing(),
                None,
                "{} loads but the graph API is missing (without the CUDA headers, pip install nvidia-cuda-crt==13.0.88 \
                 or set CUDA_HOME, then rebuild)",
                path.display()
            ),
            Err(why) => assert!(api_missing().is_some_and(|r| r.contains("CUDA")), "{why}"),
        }
    }

    #[test]
    fn shape_keys_differ_by_shape_and_dtype() {
        let a = tch::Tensor::zeros([2, 3], tch::kind::FLOAT_CPU);
        let b = tch::Tensor::zeros([2, 3], (tch::Kind::Double, Device::Cpu));
        let c = tch::Tensor::zeros([3, 2], tch::kind::FLOAT_CPU);
        assert_eq!(shape_key(&[&a, &c]), shape_key(&[&a.copy(), &c]));
        assert_ne!(shape_key(&[&a]), shape_key(&[&b]));
        assert_ne!(shape_key(&[&a, &c]), shape_key(&[&c, &a]));
    }
}
