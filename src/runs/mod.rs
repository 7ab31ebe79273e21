//! Runs: the run folder records shared by the trainer (writer), the scheduler, the leaderboard and the
//! TUI (readers). See ARCHITECTURE.md for the contract.

pub mod export;
pub mod leaderboard;
pub mod mlflow;
pub mod record;
pub mod stats;
pub mod store;
pub mod tensorboard;
