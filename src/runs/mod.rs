//! Runs: the run folder records shared by the trainer, the scheduler, the leaderboard and the TUI.
//! `lifecycle` is the only writer of status.json, `store` the only reader that lists run folders.
//! See ARCHITECTURE.md for the contract.

pub mod agent_record;
pub mod export;
pub mod leaderboard;
pub mod lifecycle;
pub mod mlflow;
pub mod record;
pub mod stats;
pub mod store;
pub mod tensorboard;
