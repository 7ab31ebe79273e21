//! The building blocks shared by the ResNet50 and the U-Net: a 2-D convolution with torchvision or
//! TF/haiku "SAME" padding, BatchNorm with torchvision's settings, and the stem's max-pool.

use tch::{Tensor, nn};

/// How convolutions and the stem's max-pool pad their input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// torchvision: symmetric `kernel / 2` on every side.
    #[default]
    Torch,
    /// TF/haiku "SAME": output size `ceil(in / stride)`, the odd extra pixel at the bottom/right.
    Same,
}

/// torchvision's `kaiming_normal_(mode="fan_out", nonlinearity="relu")`.
pub const KAIMING_NORMAL_FAN_OUT: nn::Init = nn::Init::Kaiming {
    dist: nn::init::NormalOrUniform::Normal,
    fan: nn::init::FanInOut::FanOut,
    non_linearity: nn::init::NonLinearity::ReLU,
};

/// PyTorch's `kaiming_uniform_(mode="fan_in", nonlinearity="relu")` (smp's decoder init).
pub const KAIMING_UNIFORM_FAN_IN: nn::Init = nn::init::DEFAULT_KAIMING_UNIFORM;

/// A square 2-D convolution whose weight is named `weight` (and `bias`) under its path.
#[derive(Debug)]
pub struct Conv {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    stride: i64,
    padding: Padding,
}

impl Conv {
    /// `bias` gets `bias_init` (None: no bias parameter).
    pub fn new(
        p: nn::Path,
        shape: [i64; 3],
        stride: i64,
        padding: Padding,
        init: nn::Init,
        bias_init: Option<nn::Init>,
    ) -> Conv {
        let [c_in, c_out, k] = shape;
        let weight = p.var("weight", &[c_out, c_in, k, k], init);
        let bias = bias_init.map(|b| p.var("bias", &[c_out], b));
        Conv { weight, bias, stride, padding }
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        self.forward_with(xs, &self.weight)
    }

    /// The convolution with another weight of the same kernel (e.g. conv1 folded to one channel).
    pub fn forward_with(&self, xs: &Tensor, weight: &Tensor) -> Tensor {
        let k = weight.size()[2];
        match self.padding {
            Padding::Torch => xs.conv2d(weight, self.bias.as_ref(), [self.stride], [k / 2], [1], 1),
            Padding::Same => {
                let padded = pad_same(xs, k, self.stride, 0.0);
                padded.conv2d(weight, self.bias.as_ref(), [self.stride], [0], [1], 1)
            }
        }
    }
}

/// Pads the last two dims so that a `k`×`k` window with `stride` gives `ceil(in / stride)` outputs.
pub fn pad_same(xs: &Tensor, k: i64, stride: i64, value: f64) -> Tensor {
    let size = xs.size();
    let split = |len: i64| {
        let out = (len + stride - 1) / stride;
        let total = ((out - 1) * stride + k - len).max(0);
        (total / 2, total - total / 2)
    };
    let (top, bottom) = split(size[size.len() - 2]);
    let (left, right) = split(size[size.len() - 1]);
    if top + bottom + left + right == 0 {
        return xs.shallow_clone();
    }
    xs.pad([left, right, top, bottom], "constant", value)
}

/// The stem's 3×3 stride-2 max-pool.
pub fn max_pool(xs: &Tensor, padding: Padding) -> Tensor {
    match padding {
        Padding::Torch => xs.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false),
        Padding::Same => pad_same(xs, 3, 2, f64::NEG_INFINITY).max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false),
    }
}

/// BatchNorm2d as torchvision and smp build it: eps 1e-5, momentum 0.1, weight 1, bias 0.
pub fn batch_norm(p: nn::Path, channels: i64) -> nn::BatchNorm {
    let config = nn::BatchNormConfig {
        eps: 1e-5,
        momentum: 0.1,
        ws_init: nn::Init::Const(1.0),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::batch_norm2d(p, channels, config)
}

/// Xavier (Glorot) uniform for a conv or linear weight of `fan_in` and `fan_out` (smp's head init).
pub fn xavier_uniform(fan_in: i64, fan_out: i64) -> nn::Init {
    let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
    nn::Init::Uniform { lo: -bound, up: bound }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pads(h: i64, w: i64, k: i64, stride: i64) -> Vec<i64> {
        let xs = Tensor::ones([1, 1, h, w], tch::kind::FLOAT_CPU);
        let padded = pad_same(&xs, k, stride, 0.0);
        // Rows/columns of zeros added on each side: top, bottom, left, right.
        let rows = padded.sum_dim_intlist(3, false, None).squeeze();
        let cols = padded.sum_dim_intlist(2, false, None).squeeze();
        let lead = |t: &Tensor| Vec::<f32>::try_from(t).unwrap().iter().take_while(|v| **v == 0.0).count() as i64;
        let trail =
            |t: &Tensor| Vec::<f32>::try_from(t).unwrap().iter().rev().take_while(|v| **v == 0.0).count() as i64;
        vec![lead(&rows), trail(&rows), lead(&cols), trail(&cols)]
    }

    #[test]
    fn same_padding_puts_the_odd_pixel_bottom_right() {
        assert_eq!(pads(224, 224, 7, 2), [2, 3, 2, 3]);
        assert_eq!(pads(56, 57, 3, 2), [0, 1, 1, 1]);
        assert_eq!(pads(14, 14, 3, 1), [1, 1, 1, 1]);
        assert_eq!(pads(14, 14, 1, 2), [0, 0, 0, 0]);
    }

    #[test]
    fn same_max_pool_ignores_padding() {
        let xs = -Tensor::ones([1, 1, 4, 4], tch::kind::FLOAT_CPU);
        let ys = max_pool(&xs, Padding::Same);
        assert_eq!(ys.size(), [1, 1, 2, 2]);
        assert_eq!(ys.max().double_value(&[]), -1.0);
    }
}
