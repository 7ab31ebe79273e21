//! One fine-tuning run end to end: optimizers with named state, schedules, metrics, checkpoints.

pub mod checkpoint;
pub mod metrics;
pub mod optim;
pub mod schedule;
