//! One fine-tuning run end to end: optimizers with named state, schedules, metrics, checkpoints,
//! the epoch loop (`trainer`) and the command around it (`run`).

pub mod checkpoint;
pub mod eval;
pub mod evaluate;
pub mod files;
pub mod graphed;
pub mod lock;
pub mod metrics;
pub mod optim;
pub mod run;
pub mod schedule;
pub mod setup;
pub mod trainer;
