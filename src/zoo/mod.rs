//! The model zoo: the embedded catalog, resumable verified downloads into `<cache>/zoo/<id>/`,
//! the zoo.lock pins, per-model locks and states.

pub mod cache;
pub mod catalog;
pub mod download;
pub mod lock;
pub mod pins;
pub mod progress;
pub mod pull;
pub mod report;
pub mod source;
pub mod verify;

pub use cache::{ModelPaths, ModelState, state_of};
pub use catalog::{Catalog, Entry};
pub use progress::Event;
pub use pull::{Outcome, convert_after_download, import, pull_many, pull_one, remove};
pub use source::PullOptions;
