//! Adam, AdamW and SGD(momentum) with their state held as named tensors, so a checkpoint can save and
//! restore it; each step matches torch.optim's single-tensor algorithm.

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
}

impl OptimConfig {
    /// torch.optim's defaults for everything but the learning rate, weight decay and momentum.
    pub fn new(kind: OptimKind, lr: f64, weight_decay: f64, momentum: f64) -> OptimConfig {
        OptimConfig { kind, lr, weight_decay, momentum, betas: (0.9, 0.999), eps: 1e-8 }
    }
}

/// An optimizer over named parameters; `lr` may be changed between steps by a schedule.
pub struct Optimizer {
    pub config: OptimConfig,
    pub lr: f64,
    steps: u64,
    state: BTreeMap<String, Tensor>,
}

const PREFIX: &str = "optim.";

impl Optimizer {
    pub fn new(config: OptimConfig) -> Optimizer {
        Optimizer { lr: config.lr, config, steps: 0, state: BTreeMap::new() }
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
    pub fn step(&mut self, params: &[(String, Tensor)]) {
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
    }

    fn slot(&mut self, what: &str, name: &str, like: &Tensor) -> Tensor {
        self.state.entry(format!("{PREFIX}{what}.{name}")).or_insert_with(|| Tensor::zeros_like(like)).shallow_clone()
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
            opt.step(&params);
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
        opt.step(&params);
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
}
