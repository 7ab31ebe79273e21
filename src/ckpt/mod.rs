//! Safe PyTorch checkpoint reading (no libtorch, nothing executed) and per-origin conversion of
//! ResNet50 checkpoints to torchvision-named float32 safetensors with a provenance record.

pub mod allow;
pub mod container;
pub mod convert;
pub mod dtype;
pub mod inspect;
pub mod pickle;
pub mod recipe;
pub mod resnet50;
pub mod value;
pub mod zip;

pub use container::{Checkpoint, Format, load};
pub use convert::{Provenance, convert_file, provenance_path};
pub use recipe::RECIPES;
