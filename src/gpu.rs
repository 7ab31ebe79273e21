//! The machine's GPUs as NVML numbers and sees them: one type for doctor's report, the agent's admission
//! check and the TUI's GPUs view.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gpu {
    /// The index NVML gives it (also what CUDA_VISIBLE_DEVICES takes).
    pub index: u32,
    pub name: String,
    pub memory_total_mib: u64,
    pub memory_free_mib: u64,
}

/// GPUs as NVML sees them (empty when the NVIDIA driver is absent).
pub fn nvml_gpus() -> Vec<Gpu> {
    let Ok(nvml) = nvml_wrapper::Nvml::init() else { return Vec::new() };
    let count = nvml.device_count().unwrap_or(0);
    (0..count)
        .filter_map(|i| {
            let d = nvml.device_by_index(i).ok()?;
            let mem = d.memory_info().ok()?;
            Some(Gpu {
                index: i,
                name: d.name().unwrap_or_default(),
                memory_total_mib: mem.total >> 20,
                memory_free_mib: mem.free >> 20,
            })
        })
        .collect()
}
