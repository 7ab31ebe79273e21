//! ResNet50 (torchvision's v1.5: stride on the 3×3 conv) with torchvision's parameter names, a
//! features API for the U-Net encoder, and the TF/haiku SAME-padding variant.

use super::layers::{Conv, KAIMING_NORMAL_FAN_OUT, Padding, batch_norm, max_pool};
use tch::{Tensor, nn, nn::ModuleT};

/// Output channels of the stem and of layer1..layer4.
pub const STAGE_CHANNELS: [i64; 5] = [64, 256, 512, 1024, 2048];
/// Width of the pooled features fed to `fc`.
pub const FEATURES: i64 = 2048;
const BLOCKS: [i64; 4] = [3, 4, 6, 3];
/// The study's head weight init (models.py:42-44).
pub const HEAD_WEIGHT: nn::Init = nn::Init::Randn { mean: 0.0, stdev: 0.01 };

/// The stage outputs, smp's encoder features without the input itself.
#[derive(Debug)]
pub struct Stages {
    /// After conv1-bn1-relu, before the max-pool (stride 2).
    pub stem: Tensor,
    /// layer1..layer4 outputs (strides 4, 8, 16, 32).
    pub layers: [Tensor; 4],
}

#[derive(Debug)]
struct Bottleneck {
    conv1: Conv,
    bn1: nn::BatchNorm,
    conv2: Conv,
    bn2: nn::BatchNorm,
    conv3: Conv,
    bn3: nn::BatchNorm,
    downsample: Option<(Conv, nn::BatchNorm)>,
}

impl Bottleneck {
    fn new(p: nn::Path, c_in: i64, width: i64, stride: i64, padding: Padding) -> Bottleneck {
        let c_out = 4 * width;
        let conv = |name: &str, shape: [i64; 3], stride: i64| {
            Conv::new(&p / name, shape, stride, padding, KAIMING_NORMAL_FAN_OUT, None)
        };
        let downsample = (stride != 1 || c_in != c_out).then(|| {
            let ds = &p / "downsample";
            let conv = Conv::new(&ds / "0", [c_in, c_out, 1], stride, padding, KAIMING_NORMAL_FAN_OUT, None);
            (conv, batch_norm(&ds / "1", c_out))
        });
        Bottleneck {
            conv1: conv("conv1", [c_in, width, 1], 1),
            bn1: batch_norm(&p / "bn1", width),
            conv2: conv("conv2", [width, width, 3], stride),
            bn2: batch_norm(&p / "bn2", width),
            conv3: conv("conv3", [width, c_out, 1], 1),
            bn3: batch_norm(&p / "bn3", c_out),
            downsample,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = self.conv1.forward(xs).apply_t(&self.bn1, train).relu();
        let ys = self.conv2.forward(&ys).apply_t(&self.bn2, train).relu();
        let ys = self.conv3.forward(&ys).apply_t(&self.bn3, train);
        let identity = match &self.downsample {
            Some((conv, bn)) => conv.forward(xs).apply_t(bn, train),
            None => xs.shallow_clone(),
        };
        (ys + identity).relu()
    }
}

/// torchvision's `resnet50()`; `fc` present only when built with a class count.
#[derive(Debug)]
pub struct ResNet50 {
    conv1: Conv,
    bn1: nn::BatchNorm,
    layers: Vec<Vec<Bottleneck>>,
    fc: Option<nn::Linear>,
    padding: Padding,
}

/// Builds a ResNet50 under `p` (names `conv1.weight`, `layer1.0.downsample.0.weight`, `fc.bias`, ...)
/// with torchvision's random init: convs kaiming-normal fan-out, BN weight 1 / bias 0, no zero-init of the
/// last BN of each block (torchvision's default); `fc` as the study's head: weight N(0, 0.01²), bias 0.
pub fn resnet50(p: nn::Path, classes: Option<i64>, padding: Padding) -> ResNet50 {
    let conv1 = Conv::new(&p / "conv1", [3, 64, 7], 2, padding, KAIMING_NORMAL_FAN_OUT, None);
    let bn1 = batch_norm(&p / "bn1", 64);
    let mut c_in = 64;
    let mut layers = Vec::new();
    for (i, (&count, width)) in BLOCKS.iter().zip([64, 128, 256, 512]).enumerate() {
        let lp = &p / format!("layer{}", i + 1);
        let stride = if i == 0 { 1 } else { 2 };
        let mut blocks = Vec::new();
        for b in 0..count {
            blocks.push(Bottleneck::new(&lp / b, c_in, width, if b == 0 { stride } else { 1 }, padding));
            c_in = 4 * width;
        }
        layers.push(blocks);
    }
    let fc = classes.map(|n| {
        let config = nn::LinearConfig { ws_init: HEAD_WEIGHT, bs_init: Some(nn::Init::Const(0.0)), bias: true };
        nn::linear(&p / "fc", FEATURES, n, config)
    });
    ResNet50 { conv1, bn1, layers, fc, padding }
}

impl ResNet50 {
    /// Stem and layer1..layer4 outputs. A one-channel input runs through conv1 with its weight summed
    /// over the input channels: the same result as the image repeated to three channels.
    pub fn stages_t(&self, xs: &Tensor, train: bool) -> Stages {
        let in_channels = xs.size().get(1).copied().unwrap_or(0);
        let stem = if in_channels == 1 && self.conv1.weight.size()[1] != 1 {
            let folded = self.conv1.weight.sum_dim_intlist(1, true, None);
            self.conv1.forward_with(xs, &folded)
        } else {
            self.conv1.forward(xs)
        };
        let stem = stem.apply_t(&self.bn1, train).relu();
        let mut x = max_pool(&stem, self.padding);
        let mut outs = Vec::with_capacity(4);
        for blocks in &self.layers {
            for block in blocks {
                x = block.forward_t(&x, train);
            }
            outs.push(x.shallow_clone());
        }
        let layers = [outs.remove(0), outs.remove(0), outs.remove(0), outs.remove(0)];
        Stages { stem, layers }
    }

    /// Global-average-pooled layer4 output, `[batch, 2048]`.
    pub fn pooled_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let [_, _, _, layer4] = self.stages_t(xs, train).layers;
        pool(&layer4)
    }

    /// Redraws `fc` as torch.nn.Linear's default: weight and bias U(±1/√2048) (medxfer's `head_init =
    /// torch-default`).
    pub fn init_head_torch_default(&self) {
        let Some(fc) = &self.fc else { return };
        let bound = 1.0 / (FEATURES as f64).sqrt();
        tch::no_grad(|| {
            let _ = fc.ws.shallow_clone().uniform_(-bound, bound);
            if let Some(bs) = &fc.bs {
                let _ = bs.shallow_clone().uniform_(-bound, bound);
            }
        });
    }

    /// `fc` applied to pooled features (shape `[batch, classes]`), or the pooled features without `fc`.
    pub fn head(&self, pooled: &Tensor) -> Tensor {
        match &self.fc {
            Some(fc) => pooled.apply(fc),
            None => pooled.shallow_clone(),
        }
    }
}

/// `adaptive_avg_pool2d(1)` + flatten.
pub fn pool(xs: &Tensor) -> Tensor {
    xs.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
}

impl ModuleT for ResNet50 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.head(&self.pooled_t(xs, train))
    }
}
