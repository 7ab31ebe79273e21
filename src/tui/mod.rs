//! The terminal UI: state, actions, keymap, `update` (no I/O), pure views, and the app loop that
//! tails run folders and performs effects through medxfer's own command line.

pub mod action;
pub mod app;
pub mod board;
pub mod curve;
pub mod demo;
pub mod effect;
pub mod env;
pub mod keymap;
pub mod launch;
pub mod path_complete;
pub mod state;
pub mod update;
pub mod views;

/// The TUI reads run folders through the run store's incremental scan.
pub use crate::runs::store::scan as store;
pub use app::run;

#[cfg(test)]
mod tests;
