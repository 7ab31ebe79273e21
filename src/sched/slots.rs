//! Execution slots: `cpu_slots` concurrent runs on the CPU, `gpu_slots_per_device` per NVML GPU,
//! a GPU admitted only with `min_free_gpu_mib` free.

use crate::gpu::Gpu;
use std::collections::BTreeMap;

pub use crate::runs::agent_record::Slot;

/// Slot capacity and what is in use.
#[derive(Debug, Clone)]
pub struct Slots {
    pub cpu_slots: usize,
    pub per_gpu: usize,
    pub min_free_gpu_mib: u64,
    pub gpu_count: u32,
    used: BTreeMap<Slot, usize>,
}

impl Slots {
    pub fn new(cpu_slots: usize, per_gpu: usize, min_free_gpu_mib: u64, gpu_count: u32) -> Slots {
        Slots { cpu_slots, per_gpu, min_free_gpu_mib, gpu_count, used: BTreeMap::new() }
    }

    /// Marks a slot as taken (also for re-adopted runs, even beyond today's capacity).
    pub fn take(&mut self, slot: Slot) {
        *self.used.entry(slot).or_default() += 1;
    }

    pub fn release(&mut self, slot: Slot) {
        if let Some(n) = self.used.get_mut(&slot) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.used.remove(&slot);
            }
        }
    }

    pub fn in_use(&self) -> usize {
        self.used.values().sum()
    }

    /// A free CPU slot, if any.
    pub fn free_cpu(&self) -> Option<Slot> {
        (0..self.cpu_slots).map(Slot::Cpu).find(|s| !self.used.contains_key(s))
    }

    /// The least-loaded GPU with a free slot and enough free memory; only GPU `only` when given.
    pub fn free_gpu(&self, gpus: &[Gpu], only: Option<u32>) -> Option<Slot> {
        gpus.iter()
            .filter(|g| only.is_none_or(|i| g.index == i))
            .filter(|g| g.memory_free_mib >= self.min_free_gpu_mib)
            .map(|g| (self.used.get(&Slot::Gpu(g.index)).copied().unwrap_or(0), g.index))
            .filter(|(n, _)| *n < self.per_gpu)
            .min()
            .map(|(_, i)| Slot::Gpu(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(index: u32, memory_free_mib: u64) -> Gpu {
        Gpu { index, name: format!("gpu{index}"), memory_total_mib: 80_000, memory_free_mib }
    }

    #[test]
    fn cpu_slots_are_bounded_and_reusable() {
        let mut s = Slots::new(2, 2, 0, 0);
        let a = s.free_cpu().unwrap();
        s.take(a);
        let b = s.free_cpu().unwrap();
        assert_ne!(a, b);
        s.take(b);
        assert_eq!(s.free_cpu(), None);
        s.release(a);
        assert_eq!(s.free_cpu(), Some(a));
    }

    #[test]
    fn gpus_fill_least_loaded_first_and_respect_free_memory() {
        let mut s = Slots::new(1, 2, 4096, 2);
        let gpus = [gpu(0, 10_000), gpu(1, 10_000)];
        s.take(s.free_gpu(&gpus, None).unwrap());
        assert_eq!(s.free_gpu(&gpus, None), Some(Slot::Gpu(1)));
        assert_eq!(s.free_gpu(&gpus, Some(0)), Some(Slot::Gpu(0)), "cuda:0 waits for GPU 0 only");
        for _ in 0..3 {
            s.take(s.free_gpu(&gpus, None).unwrap());
        }
        assert_eq!(s.free_gpu(&gpus, None), None, "2 runs per GPU");
        let low = [gpu(0, 100)];
        assert_eq!(Slots::new(1, 2, 4096, 1).free_gpu(&low, None), None);
    }

    #[test]
    fn slot_json_is_readable() {
        assert_eq!(serde_json::to_string(&Slot::Gpu(1)).unwrap(), r#"{"kind":"gpu","index":1}"#);
    }
}
