//! The networks of the benchmark on tch: torchvision's ResNet50 and smp's U-Net(ResNet50), with the
//! references' parameter names so that their state_dicts load by name, and a SAME-padding variant.
//!
//! Typical use by the trainer:
//! ```no_run
//! use medxfer::model::{self, Padding};
//! use tch::{nn::{ModuleT, VarStore}, Device, Tensor};
//! let mut vs = VarStore::new(Device::Cpu);
//! let net = model::Net::ResNet50(model::resnet50(vs.root(), Some(14), Padding::Torch));
//! model::load_encoder(&mut vs, "resnet50.safetensors".as_ref(), net.encoder_prefix()).unwrap();
//! let logits = net.forward_t(&Tensor::zeros([2, 3, 224, 224], tch::kind::FLOAT_CPU), false);
//! ```
//! A one-channel input is accepted by both networks: conv1 then uses its weight summed over the
//! input channels, the same as the image repeated to RGB (as the study does) at a third of the input.

mod layers;
mod load;
mod resnet;
mod unet;

pub use layers::Padding;
pub use load::{LoadReport, load_all, load_encoder, read_tensors};
pub use resnet::{FEATURES, ResNet50, STAGE_CHANNELS, Stages, pool, resnet50};
pub use unet::{DECODER_CHANNELS, Unet, unet};

use tch::{Tensor, nn::ModuleT};

/// A network the trainer can run: `forward_t(x, train)` gives logits.
#[derive(Debug)]
pub enum Net {
    /// `[batch, classes]` logits (or pooled features when built without `fc`).
    ResNet50(ResNet50),
    /// `[batch, classes, H, W]` logits.
    Unet(Unet),
}

impl Net {
    /// Where the backbone sits in the VarStore, for [`load_encoder`].
    pub fn encoder_prefix(&self) -> &'static str {
        match self {
            Net::ResNet50(_) => "",
            Net::Unet(_) => "encoder.",
        }
    }

    /// Global-average-pooled layer4 features `[batch, 2048]` of the backbone.
    pub fn pooled_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self {
            Net::ResNet50(r) => r.pooled_t(xs, train),
            Net::Unet(u) => u.encoder().pooled_t(xs, train),
        }
    }
}

impl ModuleT for Net {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self {
            Net::ResNet50(r) => r.forward_t(xs, train),
            Net::Unet(u) => u.forward_t(xs, train),
        }
    }
}
