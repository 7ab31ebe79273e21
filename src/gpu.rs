//! The machine's GPUs as NVML numbers and sees them: one type for doctor's report, the agent's admission
//! check and the TUI's GPUs view; and what a run's `device` asks of them (`Wanted`, `cuda_index`).

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

/// What a run's `device` asks of the machine's GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    Cpu,
    /// `cuda`: whichever GPU has a free slot.
    AnyGpu,
    /// `cuda:N`: NVML GPU N.
    Gpu(u32),
}

impl Wanted {
    /// Reads a device name: cpu, cuda or cuda:N.
    pub fn parse(device: &str) -> Result<Wanted, String> {
        match device.trim() {
            "cpu" => Ok(Wanted::Cpu),
            "cuda" => Ok(Wanted::AnyGpu),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Wanted::Gpu)
                .ok_or_else(|| format!("device {other:?} is not one of cpu, cuda, cuda:N")),
        }
    }

    /// Why a machine with `count` GPUs cannot run this device, in one sentence; None when it can.
    pub fn refusal(self, count: u32) -> Option<String> {
        match self {
            Wanted::Cpu => None,
            Wanted::AnyGpu | Wanted::Gpu(_) if count == 0 => Some(format!(
                "device {} needs a GPU but NVML reports none on this machine; use --set device=cpu (or --executor slurm)",
                self.name()
            )),
            Wanted::Gpu(n) if n >= count => Some(format!(
                "device cuda:{n} is not on this machine: NVML reports {count} GPU(s), cuda:0 to cuda:{}",
                count - 1
            )),
            _ => None,
        }
    }

    fn name(self) -> String {
        match self {
            Wanted::Cpu => "cpu".into(),
            Wanted::AnyGpu => "cuda".into(),
            Wanted::Gpu(n) => format!("cuda:{n}"),
        }
    }
}

/// The CUDA index, inside this process, of the GPU `cuda:N` names. PyTorch's meaning (the Nth visible GPU)
/// wherever it names one; past the visible ones, N is read as the machine's GPU N and found at its place in
/// CUDA_VISIBLE_DEVICES: a run the agent placed on GPU N alone sees it as its only GPU.
pub fn cuda_index(n: usize, visible: usize, cuda_visible_devices: Option<&str>) -> Option<usize> {
    if n < visible {
        return Some(n);
    }
    let listed = cuda_visible_devices?.split(',').map(|s| s.trim().parse::<usize>().ok());
    listed.take(visible).position(|index| index == Some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_are_read_and_checked_against_the_machine() {
        assert_eq!(Wanted::parse("cpu"), Ok(Wanted::Cpu));
        assert_eq!(Wanted::parse("cuda"), Ok(Wanted::AnyGpu));
        assert_eq!(Wanted::parse("cuda:3"), Ok(Wanted::Gpu(3)));
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", ""] {
            assert!(Wanted::parse(bad).unwrap_err().contains("not one of cpu, cuda, cuda:N"), "{bad:?}");
        }
        assert_eq!(Wanted::Cpu.refusal(0), None);
        assert!(Wanted::AnyGpu.refusal(0).unwrap().contains("device cuda needs a GPU but NVML reports none"));
        assert_eq!(Wanted::AnyGpu.refusal(1), None);
        assert_eq!(Wanted::Gpu(1).refusal(2), None);
        assert_eq!(
            Wanted::Gpu(2).refusal(2).unwrap(),
            "device cuda:2 is not on this machine: NVML reports 2 GPU(s), cuda:0 to cuda:1"
        );
    }

    #[test]
    fn cuda_n_is_pytorchs_index_where_it_names_one_else_the_machines_gpu_n() {
        assert_eq!(cuda_index(1, 4, None), Some(1));
        assert_eq!(cuda_index(1, 2, Some("2,3")), Some(1), "PyTorch's meaning: the second visible GPU");
        assert_eq!(cuda_index(3, 1, Some("3")), Some(0), "the agent placed the run on GPU 3 alone");
        assert_eq!(cuda_index(3, 2, Some("1, 3")), Some(1));
        assert_eq!(cuda_index(3, 1, Some("2")), None);
        assert_eq!(cuda_index(1, 1, None), None);
        assert_eq!(cuda_index(0, 0, Some("")), None);
    }
}
