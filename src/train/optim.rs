//! Adam, AdamW and SGD(momentum) with their state held as named tensors, so a checkpoint can save and
//! restore it; each step matches torch.optim's single-tensor algorithm, or (Adam and AdamW with `fused`)
//! is one call of libtorch's fused kernel, torch.optim's `fused=True`, over the same state.

use crate::perf::fused::{self, AdamHyper, AdamTensors};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use tch::{Kind as DType, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimKind {
    Adam,
    AdamW,
    Sgd,
}

impl OptimKind {
    pub fn parse(name: &str) -> Result<OptimKind> {
        match name {
            "adam" => Ok(OptimKind::Adam),
            "adamw" => Ok(OptimKind::AdamW),
            "sgd" => Ok(OptimKind::Sgd),
            _ => bail!("optimizer {name:?} is not one of adam, adamw, sgd"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OptimConfig {
    pub kind: OptimKind,
    pub lr: f64,
    pub weight_decay: f64,
    /// SGD only (no dampening, no Nesterov).
    pub momentum: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    /// Adam and AdamW through libtorch's fused kernel (one call for all parameters, and CUDA-graph safe);
    /// the same update as the per-parameter ops within float rounding, and the same saved state.
    pub fused: bool,
}

impl OptimConfig {
    /// torch.optim's defaults for everything but the learning rate, weight decay and momentum.
    pub fn new(kind: OptimKind, lr: f64, weight_decay: f64, momentum: f64) -> OptimConfig {
        OptimConfig { kind, lr, weight_decay, momentum, betas: (0.9, 0.999), eps: 1e-8, fused: false }
    }

    /// The same optimizer, through the fused kernel or not.
    pub fn with_fused(self, fused: bool) -> OptimConfig {
        OptimConfig { fused, ..self }
    }

    /// Whether steps go through the fused kernel (SGD has none here).
    pub fn uses_fused(&self) -> bool {
        self.fused && self.kind != OptimKind::Sgd
    }
}

/// An optimizer over named parameters; `lr` may be changed between steps by a schedule.
pub struct Optimizer {
    pub config: OptimConfig,
    pub lr: f64,
    steps: u64,
    state: BTreeMap<String, Tensor>,
    device_scalars: Option<DeviceScalars>,
}

/// The fused kernel reads the step count from a tensor on the parameters' device, and on CUDA the lr too,
/// so that a recorded CUDA graph sees them change; both mirror `steps` and `lr`.
struct DeviceScalars {
    step: Tensor,
    lr: Option<(Tensor, f64)>,
}

const PREFIX: &str = "optim.";

impl Optimizer {
    pub fn new(config: OptimConfig) -> Optimizer {
        Optimizer { lr: config.lr, config, steps: 0, state: BTreeMap::new(), device_scalars: None }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    pub fn zero_grad(params: &[(String, Tensor)]) {
        for (_, p) in params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// One update of every parameter that has a gradient.
    pub fn step(&mut self, params: &[(String, Tensor)]) -> Result<()> {
        if self.config.uses_fused() {
            return self.step_fused(params);
        }
        self.steps += 1;
        let c = self.config.clone();
        let lr = self.lr;
        let t = self.steps as f64;
        tch::no_grad(|| {
            for (name, p) in params {
                let grad = p.grad();
                if !grad.defined() {
                    continue;
                }
                let mut p = p.shallow_clone();
                match c.kind {
                    OptimKind::Adam | OptimKind::AdamW => {
                        let grad = if c.kind == OptimKind::Adam && c.weight_decay != 0.0 {
                            &grad + &p * c.weight_decay
                        } else {
                            grad
                        };
                        if c.kind == OptimKind::AdamW && c.weight_decay != 0.0 {
                            let _ = p.g_mul_scalar_(1.0 - lr * c.weight_decay);
                        }
                        let mut m = self.slot("exp_avg", name, &p);
                        let mut v = self.slot("exp_avg_sq", name, &p);
                        let _ = m.lerp_(&grad, 1.0 - c.betas.0);
                        let _ = v.g_mul_scalar_(c.betas.1);
                        let _ = v.g_add_(&(&grad * &grad * (1.0 - c.betas.1)));
                        let step_size = lr / (1.0 - c.betas.0.powf(t));
                        let bias2_sqrt = (1.0 - c.betas.1.powf(t)).sqrt();
                        let denom = v.sqrt() / bias2_sqrt + c.eps;
                        let _ = p.g_sub_(&(&m / &denom * step_size));
                    }
                    OptimKind::Sgd => {
                        let mut grad = if c.weight_decay != 0.0 { &grad + &p * c.weight_decay } else { grad };
                        if c.momentum != 0.0 {
                            let key = format!("{PREFIX}momentum_buffer.{name}");
                            let buf = match self.state.get_mut(&key) {
                                Some(buf) => {
                                    let _ = buf.g_mul_scalar_(c.momentum);
                                    let _ = buf.g_add_(&grad);
                                    buf.shallow_clone()
                                }
                                None => {
                                    let buf = grad.detach().copy();
                                    self.state.insert(key, buf.shallow_clone());
                                    buf
                                }
                            };
                            grad = buf;
                        }
                        let _ = p.g_sub_(&(grad * lr));
                    }
                }
            }
        });
        Ok(())
    }

    /// Adam or AdamW over every parameter with a gradient in one kernel call.
    fn step_fused(&mut self, params: &[(String, Tensor)]) -> Result<()> {
        let with_grad: Vec<(&String, &Tensor, Tensor)> =
            params.iter().filter_map(|(n, p)| Some((n, p, p.grad())).filter(|(_, _, g)| g.defined())).collect();
        let Some(device) = with_grad.first().map(|(_, p, _)| p.device()) else {
            self.steps += 1;
            return Ok(());
        };
        let n = with_grad.len();
        let (mut ps, mut gs, mut ms, mut vs) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for (name, p, g) in with_grad {
            ms.push(self.slot_laid_out_like("exp_avg", name, p));
            vs.push(self.slot_laid_out_like("exp_avg_sq", name, p));
            ps.push(p.shallow_clone());
            gs.push(laid_out_like(g, p));
        }
        self.sync_device_scalars(device);
        let scalars = self.device_scalars.as_mut().expect("made by sync_device_scalars");
        self.steps += 1;
        let c = &self.config;
        tch::no_grad(|| {
            let _ = scalars.step.g_add_scalar_(1.0);
            let tensors = AdamTensors { params: &ps, grads: &gs, exp_avgs: &ms, exp_avg_sqs: &vs, step: &scalars.step };
            let hyper = AdamHyper {
                lr: self.lr,
                lr_tensor: scalars.lr.as_ref().map(|(t, _)| t),
                betas: c.betas,
                weight_decay: c.weight_decay,
                eps: c.eps,
                decoupled: c.kind == OptimKind::AdamW,
            };
            fused::adam(&tensors, &hyper)
        })
    }

    /// Makes the device copies of the step count and lr (the step count as it was before this update).
    /// Under CUDA-graph capture they exist already and lr is unchanged, so nothing here is recorded.
    fn sync_device_scalars(&mut self, device: tch::Device) {
        let steps = self.steps as f64;
        let scalars = self.device_scalars.get_or_insert_with(|| DeviceScalars {
            step: Tensor::full([], steps, (DType::Float, device)),
            lr: device.is_cuda().then(|| (Tensor::full([], f64::NAN, (DType::Float, device)), f64::NAN)),
        });
        if let Some((t, value)) = &mut scalars.lr
            && *value != self.lr
        {
            let _ = t.fill_(self.lr);
            *value = self.lr;
        }
    }

    /// Undoes the count of steps that never ran (a CUDA-graph recording that failed).
    pub fn rewind_steps(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// Before replaying a recorded step: that step counts, and the lr it reads is the current one.
    pub fn before_replay(&mut self) {
        if let Some(device) = self.device_scalars.as_ref().map(|s| s.step.device()) {
            self.sync_device_scalars(device);
        }
        self.steps += 1;
    }

    /// Why a step of this optimizer cannot be recorded in a CUDA graph, if it cannot: its learning rate
    /// and step count must live on the GPU, which only the fused path does.
    pub fn graph_unsafe(&self) -> Option<String> {
        if !self.config.uses_fused() {
            return Some(format!("the {:?} optimizer is not fused", self.config.kind));
        }
        match &self.device_scalars {
            Some(DeviceScalars { lr: Some(_), .. }) => None,
            Some(_) => Some("the optimizer's parameters are not on a CUDA device".into()),
            None => Some("the optimizer has not stepped yet".into()),
        }
    }

    fn slot(&mut self, what: &str, name: &str, like: &Tensor) -> Tensor {
        self.state.entry(format!("{PREFIX}{what}.{name}")).or_insert_with(|| Tensor::zeros_like(like)).shallow_clone()
    }

    /// The kernel walks every tensor of a parameter as one flat array, so its state must share the
    /// parameter's strides (state restored from last.ckpt is contiguous; a channels-last weight is not).
    fn slot_laid_out_like(&mut self, what: &str, name: &str, p: &Tensor) -> Tensor {
        let slot = self.slot(what, name, p);
        if slot.stride() == p.stride() {
            return slot;
        }
        let relaid = laid_out_like(slot, p);
        self.state.insert(format!("{PREFIX}{what}.{name}"), relaid.shallow_clone());
        relaid
    }

    /// The state as named tensors (all names start with "optim."), including the step count and lr.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self.state.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect();
        out.push((format!("{PREFIX}steps"), Tensor::from_slice(&[self.steps as i64])));
        out.push((format!("{PREFIX}lr"), Tensor::from_slice(&[self.lr])));
        out
    }

    /// Restores what `state_tensors` gave, moving each tensor to `device`; other names are ignored.
    pub fn load_state(&mut self, named: &[(String, Tensor)], device: tch::Device) -> Result<()> {
        self.state.clear();
        self.device_scalars = None;
        let mut found_steps = false;
        for (name, t) in named {
            let Some(rest) = name.strip_prefix(PREFIX) else { continue };
            match rest {
                "steps" => {
                    self.steps = scalar_i64(t).with_context(|| format!("optimizer state {name}"))? as u64;
                    found_steps = true;
                }
                "lr" => self.lr = scalar_f64(t).with_context(|| format!("optimizer state {name}"))?,
                _ => {
                    self.state.insert(name.clone(), t.to_device(device));
                }
            }
        }
        if !found_steps {
            bail!("the checkpoint holds no optimizer state (tensor {PREFIX}steps is missing)");
        }
        Ok(())
    }
}

/// `t`'s values with `like`'s strides.
fn laid_out_like(t: Tensor, like: &Tensor) -> Tensor {
    if t.stride() == like.stride() {
        return t;
    }
    let mut out = like.empty_like();
    out.copy_(&t);
    out
}

pub(crate) fn scalar_f64(t: &Tensor) -> Result<f64> {
    if t.numel() != 1 {
        bail!("expected one value, found shape {:?}", t.size());
    }
    Ok(t.to_kind(DType::Double).double_value(&[0]))
}

pub(crate) fn scalar_i64(t: &Tensor) -> Result<i64> {
    if t.numel() != 1 {
        bail!("expected one value, found shape {:?}", t.size());
    }
    Ok(t.to_kind(DType::Int64).int64_value(&[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(values: &[f32]) -> Tensor {
        Tensor::from_slice(values).set_requires_grad(true)
    }

    #[test]
    fn sgd_with_momentum_accumulates() {
        let p = param(&[1.0, 2.0]);
        let params = vec![("w".to_string(), p.shallow_clone())];
        let mut opt = Optimizer::new(OptimConfig::new(OptimKind::Sgd, 0.1, 0.0, 0.9));
        for _ in 0..2 {
            Optimizer::zero_grad(&params);
            (&p * &p).sum(DType::Float).backward();
            opt.step(&params).unwrap();
        }
        // step 1: g=(2,4), p=(0.8,1.6); step 2: g=(1.6,3.2), buf=0.9*(2,4)+g=(3.4,6.8), p=(0.46,0.92)
        let got = Vec::<f32>::try_from(&p.detach()).unwrap();
        assert!((got[0] - 0.46).abs() < 1e-6 && (got[1] - 0.92).abs() < 1e-6, "{got:?}");
    }

    #[test]
    fn state_round_trips() {
        let p = param(&[1.0, -1.0, 0.5]);
        let params = vec![("layer.weight".to_string(), p.shallow_clone())];
        let mut opt = Optimizer::new(OptimConfig::new(OptimKind::Adam, 0.01, 0.0, 0.0));
        (&p * &p).sum(DType::Float).backward();
        opt.step(&params).unwrap();
        opt.lr = 0.005;
        let saved = opt.state_tensors();
        let names: Vec<&str> = saved.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"optim.exp_avg.layer.weight"), "{names:?}");
        let mut restored = Optimizer::new(OptimConfig::new(OptimKind::Adam, 0.01, 0.0, 0.0));
        restored.load_state(&saved, tch::Device::Cpu).unwrap();
        assert_eq!((restored.steps(), restored.lr), (1, 0.005));
        let mut empty = Optimizer::new(OptimConfig::new(OptimKind::Adam, 0.01, 0.0, 0.0));
        assert!(empty.load_state(&[], tch::Device::Cpu).unwrap_err().to_string().contains("optim.steps"));
    }

    /// A conv weight laid out channels-last, a bias, and a parameter that never gets a gradient.
    fn model() -> Vec<(String, Tensor)> {
        // fixed values, not the global RNG, which tests on other threads reseed
        let values = |n: i64, f: f64| (Tensor::arange(n, tch::kind::FLOAT_CPU) * f).sin();
        let conv = values(108, 0.37).reshape([4, 3, 3, 3]);
        let conv = crate::perf::channels_last(&conv).unwrap().set_requires_grad(true);
        let bias = values(4, 1.3).set_requires_grad(true);
        let frozen = values(2, 0.5).set_requires_grad(true);
        vec![("conv.weight".into(), conv), ("conv.bias".into(), bias), ("frozen".into(), frozen)]
    }

    fn copy(params: &[(String, Tensor)]) -> Vec<(String, Tensor)> {
        let copied = |p: &Tensor| {
            let c = p.detach().copy();
            c.set_requires_grad(true)
        };
        params.iter().map(|(n, p)| (n.clone(), copied(p))).collect()
    }

    /// `steps` updates with the gradients of a fixed loss of step k (the same for every run).
    fn train(opt: &mut Optimizer, params: &[(String, Tensor)], from: u64, steps: u64) {
        for k in from..from + steps {
            Optimizer::zero_grad(params);
            let scale = 1.0 + k as f64 * 0.5;
            let loss = (&params[0].1 * &params[0].1 * scale).sum(DType::Float) + params[1].1.sin().sum(DType::Float);
            loss.backward();
            opt.step(params).unwrap();
        }
    }

    fn max_diff(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> f64 {
        a.iter().zip(b).map(|((_, x), (_, y))| (x - y).abs().max().double_value(&[])).fold(0.0, f64::max)
    }

    #[test]
    fn fused_steps_equal_the_plain_ones() {
        for config in [
            OptimConfig::new(OptimKind::Adam, 2e-3, 0.0, 0.0),
            OptimConfig::new(OptimKind::Adam, 1e-2, 0.1, 0.0),
            OptimConfig::new(OptimKind::AdamW, 1e-2, 0.1, 0.0),
        ] {
            let plain_params = model();
            let fused_params = copy(&plain_params);
            let mut plain = Optimizer::new(config.clone());
            let mut fused = Optimizer::new(config.clone().with_fused(true));
            train(&mut plain, &plain_params, 0, 5);
            plain.lr *= 0.5;
            train(&mut plain, &plain_params, 5, 5);
            train(&mut fused, &fused_params, 0, 5);
            fused.lr *= 0.5;
            train(&mut fused, &fused_params, 5, 5);
            let moved = max_diff(&plain_params, &model());
            let diff = max_diff(&plain_params, &fused_params);
            assert!(moved > 1e-2 && diff < 1e-6, "{config:?}: moved {moved}, fused differs by {diff}");
            assert!(crate::perf::is_channels_last(&fused_params[0].1), "the fused step kept the layout");
            let names = |o: &Optimizer| o.state_tensors().into_iter().map(|(n, _)| n).collect::<Vec<_>>();
            assert_eq!(names(&plain), names(&fused));
            assert!(!names(&fused).iter().any(|n| n.ends_with("frozen")), "no state for a parameter without gradient");
            assert_eq!(
                (fused.steps(), fused.graph_unsafe().unwrap()),
                (10, "the optimizer's parameters are not on a CUDA device".into())
            );
        }
    }

    #[test]
    fn a_fused_run_resumes_a_plain_one_from_last_ckpt_and_back() {
        let config = OptimConfig::new(OptimKind::Adam, 5e-3, 0.0, 0.0);
        let reference = model();
        train(&mut Optimizer::new(config.clone()), &reference, 0, 8);
        for (first, then) in [(false, true), (true, false)] {
            let params = model();
            let mut before = Optimizer::new(config.clone().with_fused(first));
            train(&mut before, &params, 0, 4);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("last.ckpt");
            let mut tensors = copy(&params);
            tensors.extend(before.state_tensors());
            crate::train::checkpoint::save(&path, &tensors, &BTreeMap::new()).unwrap();
            let loaded = crate::train::checkpoint::load(&path).unwrap().tensors;
            let resumed: Vec<(String, Tensor)> = params
                .iter()
                .map(|(n, _)| {
                    let t = &loaded.iter().find(|(m, _)| m == n).unwrap().1;
                    let t = if t.dim() == 4 { crate::perf::channels_last(t).unwrap() } else { t.copy() };
                    (n.clone(), t.set_requires_grad(true))
                })
                .collect();
            let mut after = Optimizer::new(config.clone().with_fused(then));
            after.load_state(&loaded, tch::Device::Cpu).unwrap();
            train(&mut after, &resumed, 4, 4);
            let diff = max_diff(&reference, &resumed);
            assert!(diff < 1e-6, "fused {first} then {then}: differs from 8 plain steps by {diff}");
            assert_eq!(after.steps(), 8);
        }
    }
}
