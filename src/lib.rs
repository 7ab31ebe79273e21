//! medxfer: a terminal experiment manager for transfer-learning benchmarks in medical imaging.
//!
//! Module map and on-disk layout: see ARCHITECTURE.md.

pub mod atomic;
pub mod bench;
pub mod ckpt;
pub mod cli;
pub mod config;
pub mod data;
pub mod doctor;
pub mod error;
pub mod gpu;
pub mod home;
pub mod host;
pub mod logging;
pub mod model;
pub mod perf;
pub mod plot;
pub mod process;
pub mod runs;
pub mod sched;
pub mod torch_bin;
pub mod torch_runtime;
pub mod train;
pub mod tui;
pub mod zoo;

/// medxfer's version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit the binary was built from ("unknown" outside a git checkout).
pub const GIT_COMMIT: &str = env!("MEDXFER_GIT_COMMIT");
