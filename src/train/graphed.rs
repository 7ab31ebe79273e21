//! The train step run as it is, or recorded once into a CUDA graph and replayed: a replay launches the
//! whole step (forward, loss, backward, fused optimizer) at once instead of one kernel at a time from the
//! host. perf::graph's `CapturePolicy` decides which; on CPU, or when anything stops a recording, every
//! step runs eagerly and `off_reason` says why.

use super::optim::Optimizer;
use crate::perf::graph::{self, CapturePolicy, Decision, Graph};
use anyhow::Result;
use tch::{Device, Tensor};

/// Eager steps before a batch shape is recorded (cuDNN autotuning and lazily made state happen there).
pub const WARMUP_STEPS: u32 = 3;

/// One train step on a batch: zero the gradients, forward, loss, backward, optimizer update; returns the
/// loss. It must not read values back to the host (`double_value`, `if` on a tensor): a recording cannot.
pub type StepFn<'a> = dyn FnMut(&Tensor, &Tensor, &mut Optimizer) -> Result<Tensor> + 'a;

pub struct StepRunner {
    policy: CapturePolicy,
    recorded: Option<Recorded>,
}

/// A recorded step with the inputs it reads and the loss it writes.
struct Recorded {
    graph: Graph,
    images: Tensor,
    targets: Tensor,
    loss: Tensor,
}

impl StepRunner {
    /// CUDA graphs when `wanted` and `device` allows them, recording after `warmup` eager steps.
    pub fn new(device: Device, wanted: bool, warmup: u32) -> StepRunner {
        let policy = match (wanted, graph::unsupported(device)) {
            (false, _) => CapturePolicy::off("CUDA graphs were not asked for"),
            (true, Some(reason)) => CapturePolicy::off(reason),
            (true, None) => CapturePolicy::new(warmup),
        };
        StepRunner { policy, recorded: None }
    }

    /// Why steps run eagerly, when graphs are off.
    pub fn off_reason(&self) -> Option<&str> {
        self.policy.off_reason()
    }

    /// The weights or the optimizer's state were replaced: record again.
    pub fn invalidate(&mut self) {
        self.policy.invalidate();
        self.recorded = None;
    }

    /// One step on (`images`, `targets`): the loss and how the step ran.
    pub fn run(
        &mut self,
        images: &Tensor,
        targets: &Tensor,
        optimizer: &mut Optimizer,
        step: &mut StepFn,
    ) -> Result<(Tensor, Decision)> {
        let mut decision = self.policy.decide(&graph::shape_key(&[images, targets]));
        if decision == Decision::Capture
            && let Some(why) = optimizer.graph_unsafe()
        {
            self.policy.disable(format!("CUDA graphs are off: {why}"));
            decision = Decision::Eager;
        }
        match decision {
            Decision::Eager => Ok((step(images, targets, optimizer)?, decision)),
            Decision::Capture => {
                self.recorded = None;
                let steps_before = optimizer.steps();
                match record(images, targets, optimizer, step) {
                    Ok(mut recorded) => {
                        // The recording ran nothing: this step's work is its first replay.
                        recorded.graph.replay()?;
                        let loss = recorded.loss.shallow_clone();
                        self.recorded = Some(recorded);
                        Ok((loss, decision))
                    }
                    Err(e) => {
                        optimizer.rewind_steps(steps_before);
                        self.policy.disable(format!("CUDA graph capture failed, steps run eagerly: {e:#}"));
                        Ok((step(images, targets, optimizer)?, Decision::Eager))
                    }
                }
            }
            Decision::Replay => {
                let r = self.recorded.as_mut().expect("the policy replays only after a recording");
                r.images.copy_(images);
                r.targets.copy_(targets);
                optimizer.before_replay();
                r.graph.replay()?;
                Ok((r.loss.shallow_clone(), decision))
            }
        }
    }
}

fn record(images: &Tensor, targets: &Tensor, optimizer: &mut Optimizer, step: &mut StepFn) -> Result<Recorded> {
    let device = images.device();
    // Inputs the graph reads, refilled before each replay (copies keep the layout: channels-last stays).
    let (images, targets) = (images.copy(), targets.copy());
    let mut graph = Graph::new(device)?;
    let loss = graph.capture(|| step(&images, &targets, optimizer))?;
    Ok(Recorded { graph, images, targets, loss })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::optim::{OptimConfig, OptimKind};
    use tch::Kind;

    fn params() -> Vec<(String, Tensor)> {
        // fixed values, not the global RNG, which tests on other threads reseed
        let w = (Tensor::arange(18, tch::kind::FLOAT_CPU) * 0.7).sin().reshape([6, 3]);
        vec![("w".into(), w.set_requires_grad(true))]
    }

    fn run_steps(
        runner: &mut StepRunner,
        params: &[(String, Tensor)],
        opt: &mut Optimizer,
        batches: &[i64],
    ) -> Vec<Decision> {
        let mut step = |x: &Tensor, y: &Tensor, o: &mut Optimizer| -> Result<Tensor> {
            Optimizer::zero_grad(params);
            let loss = (x.matmul(&params[0].1) - y).square().mean(Kind::Float);
            loss.backward();
            o.step(params)?;
            Ok(loss)
        };
        let mut how = vec![];
        for (k, &b) in batches.iter().enumerate() {
            let x = Tensor::ones([b, 6], tch::kind::FLOAT_CPU) * (k as f64 + 1.0);
            let y = Tensor::zeros([b, 3], tch::kind::FLOAT_CPU);
            let (loss, decision) = runner.run(&x, &y, opt, &mut step).unwrap();
            assert!(loss.double_value(&[]).is_finite());
            how.push(decision);
        }
        how
    }

    #[test]
    fn on_cpu_every_step_is_eager_with_the_reason_and_equals_plain_steps() {
        let fused = OptimConfig::new(OptimKind::Adam, 1e-2, 0.0, 0.0).with_fused(true);
        let (a, b) = (params(), params());
        let mut runner = StepRunner::new(Device::Cpu, true, 1);
        let reason = runner.off_reason().unwrap().to_string();
        assert!(reason.contains("CUDA device"), "{reason}");
        let mut opt = Optimizer::new(fused.clone());
        let how = run_steps(&mut runner, &a, &mut opt, &[4, 4, 4, 2, 4]);
        assert_eq!(how, [Decision::Eager; 5]);
        assert_eq!(opt.steps(), 5);
        let mut plain = StepRunner::new(Device::Cpu, false, 1);
        assert_eq!(plain.off_reason(), Some("CUDA graphs were not asked for"));
        let mut plain_opt = Optimizer::new(OptimConfig::new(OptimKind::Adam, 1e-2, 0.0, 0.0));
        run_steps(&mut plain, &b, &mut plain_opt, &[4, 4, 4, 2, 4]);
        let diff = (&a[0].1 - &b[0].1).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "runner steps differ from plain steps by {diff}");
    }
}
