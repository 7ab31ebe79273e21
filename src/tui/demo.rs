//! The demo sweep that the demo_sweep key enqueues (from Zoo, Launch and Runs).

use super::state::State;
use crate::sched::sweep::SweepRequest;

/// The demo sweep that the demo_sweep key enqueues: `random` plus up to DEMO_MAX_PULLED zoo models whose
/// checkpoints are already converted, two trials each (so that even a fresh home has runs that can run at
/// once), with settings small enough for a CPU (minutes).
pub const DEMO_DATASET: &str = "demo-cls";
pub const DEMO_MAX_PULLED: usize = 3;
pub const DEMO_TRIALS: u32 = 2;
/// threads=1 as in tests/sched.rs: one intra-op thread per run, so that a run does not oversubscribe a busy
/// or shared CPU.
pub const DEMO_SETS: [(&str, &str); 4] =
    [("epochs", "3"), ("image_size", "32"), ("batch_size", "16"), ("threads", "1")];

/// The models the demo sweep would use now: `random` and the first converted zoo models (Zoo view order).
pub fn demo_models(s: &State) -> Vec<String> {
    let pulled = s.zoo.iter().filter(|m| m.is_converted()).map(|m| m.entry.id.clone()).take(DEMO_MAX_PULLED);
    std::iter::once("random".to_string()).chain(pulled).collect()
}

/// How many runs can train at once, as far as the TUI knows the agent's slots.
pub fn concurrency(s: &State) -> String {
    match s.host.as_ref().and_then(|h| h.agent.as_ref()) {
        Some(a) if a.gpus > 0 => format!("up to {} at once on the GPUs", a.gpus as usize * a.gpu_slots_per_device),
        Some(a) => format!("up to {} at once (scheduler.cpu_slots)", a.cpu_slots),
        None => "as many at once as the agent's slots allow".into(),
    }
}

/// The demo sweep as it would be enqueued now.
pub fn request(s: &State) -> SweepRequest {
    SweepRequest {
        dataset: DEMO_DATASET.into(),
        models: demo_models(s),
        trials: DEMO_TRIALS,
        overrides: DEMO_SETS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..SweepRequest::default()
    }
}
