//! Safe PyTorch checkpoint reading (no libtorch, nothing executed) and per-origin conversion of
//! ResNet50 checkpoints to torchvision-named float32 safetensors with a provenance record. Besides
//! torch.save files: TensorFlow tensor bundles (SimCLR v1/v2) and BYOL's dill pickle.

pub mod allow;
pub mod byol;
pub mod container;
pub mod convert;
pub mod crc32c;
pub mod dtype;
pub mod inspect;
pub mod layout;
pub mod numpy;
pub mod pickle;
pub mod protobuf;
pub mod recipe;
pub mod resnet50;
pub mod simclr;
pub mod sstable;
pub mod tfbundle;
pub mod unzip;
pub mod value;
pub mod zip;

pub use container::{Checkpoint, Format, load};
pub use convert::{
    META_INPUT_NORMALIZATION, META_PADDING, Provenance, convert_file, convert_file_for, provenance_path,
};
pub use recipe::RECIPES;
