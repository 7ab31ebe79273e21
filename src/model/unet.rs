//! U-Net with a ResNet50 encoder, exactly smp 0.6 `Unet("resnet50", encoder_weights=None, classes=N)`:
//! encoder depth 5, decoder channels (256, 128, 64, 32, 16), no centre block, no attention, nearest
//! upsampling to the skip's size, batch-norm Conv3×3-BN-ReLU pairs, a Conv3×3 head without activation.
//! Parameter names follow smp's state_dict: `encoder.*`, `decoder.blocks.N.conv1.0.weight`,
//! `segmentation_head.0.weight`.

use super::layers::{Conv, KAIMING_UNIFORM_FAN_IN, Padding, batch_norm, xavier_uniform};
use super::resnet::{ResNet50, STAGE_CHANNELS, resnet50};
use tch::{Tensor, nn, nn::ModuleT};

/// smp's default decoder widths.
pub const DECODER_CHANNELS: [i64; 5] = [256, 128, 64, 32, 16];

/// smp's `Conv2dReLU` with batch norm: `N.0` conv without bias, `N.1` BatchNorm, ReLU.
#[derive(Debug)]
struct ConvBnRelu {
    conv: Conv,
    bn: nn::BatchNorm,
}

impl ConvBnRelu {
    fn new(p: nn::Path, c_in: i64, c_out: i64) -> ConvBnRelu {
        let conv = Conv::new(&p / "0", [c_in, c_out, 3], 1, Padding::Torch, KAIMING_UNIFORM_FAN_IN, None);
        ConvBnRelu { conv, bn: batch_norm(&p / "1", c_out) }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.conv.forward(xs).apply_t(&self.bn, train).relu()
    }
}

#[derive(Debug)]
struct DecoderBlock {
    conv1: ConvBnRelu,
    conv2: ConvBnRelu,
}

impl DecoderBlock {
    /// Nearest resize to the skip's size (or `size` for the last block), concat the skip, two convs.
    fn forward_t(&self, xs: &Tensor, skip: Option<&Tensor>, size: [i64; 2], train: bool) -> Tensor {
        let up = xs.upsample_nearest2d(size, None, None);
        let joined = match skip {
            Some(skip) => Tensor::cat(&[&up, skip], 1),
            None => up,
        };
        self.conv2.forward_t(&self.conv1.forward_t(&joined, train), train)
    }
}

/// smp's `Unet("resnet50")`.
#[derive(Debug)]
pub struct Unet {
    encoder: ResNet50,
    blocks: Vec<DecoderBlock>,
    head: Conv,
}

/// Builds the U-Net under `p` with smp's init: encoder as torchvision's constructor, decoder convs
/// kaiming-uniform fan-in, decoder BN weight 1 / bias 0, head xavier-uniform with zero bias.
pub fn unet(p: nn::Path, classes: i64, padding: Padding) -> Unet {
    let encoder = resnet50(&p / "encoder", None, padding);
    let decoder = &p / "decoder" / "blocks";
    // Deepest stage first; the last block has no skip (the input itself is not a skip in smp).
    let skips = [STAGE_CHANNELS[3], STAGE_CHANNELS[2], STAGE_CHANNELS[1], STAGE_CHANNELS[0], 0];
    let mut c_in = STAGE_CHANNELS[4];
    let mut blocks = Vec::new();
    for (i, (&skip, &c_out)) in skips.iter().zip(DECODER_CHANNELS.iter()).enumerate() {
        let bp = &decoder / i;
        blocks.push(DecoderBlock {
            conv1: ConvBnRelu::new(&bp / "conv1", c_in + skip, c_out),
            conv2: ConvBnRelu::new(&bp / "conv2", c_out, c_out),
        });
        c_in = c_out;
    }
    let last = DECODER_CHANNELS[4];
    let init = xavier_uniform(last * 9, classes * 9);
    let head = Conv::new(
        &p / "segmentation_head" / "0",
        [last, classes, 3],
        1,
        Padding::Torch,
        init,
        Some(nn::Init::Const(0.0)),
    );
    Unet { encoder, blocks, head }
}

impl Unet {
    /// The ResNet50 encoder (for pooled features or stage outputs).
    pub fn encoder(&self) -> &ResNet50 {
        &self.encoder
    }
}

fn spatial(xs: &Tensor) -> [i64; 2] {
    let s = xs.size();
    [s[s.len() - 2], s[s.len() - 1]]
}

impl ModuleT for Unet {
    /// Logits `[batch, classes, H, W]` at the input's size (H and W multiples of 32, as smp requires).
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let stages = self.encoder.stages_t(xs, train);
        let [l1, l2, l3, l4] = &stages.layers;
        let skips = [Some(l3), Some(l2), Some(l1), Some(&stages.stem), None];
        let mut x = l4.shallow_clone();
        for (block, skip) in self.blocks.iter().zip(skips) {
            let size = skip.map(spatial).unwrap_or_else(|| spatial(xs));
            x = block.forward_t(&x, skip, size, train);
        }
        self.head.forward(&x)
    }
}
