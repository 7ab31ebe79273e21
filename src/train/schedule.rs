//! Learning-rate schedules (ReduceLROnPlateau on val loss, per-epoch cosine annealing) and early
//! stopping, each with its state as named scalars so a resumed run continues exactly.

use anyhow::{Result, bail};
use std::collections::BTreeMap;

/// What decides the learning rate for the next epoch.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// torch's ReduceLROnPlateau: mode min, relative threshold, no cooldown, min_lr 0.
    Plateau {
        factor: f64,
        patience: u32,
        threshold: f64,
        best: f64,
        bad_epochs: u32,
    },
    /// The study's segmentation cosine: after epoch t (0-based), lr = base/2·(1 + cos(π·(t mod T)/T)), so
    /// epochs 0 and 1 both run at the base lr and the lr never reaches 0 (utils.py:127-135, engine.py:214).
    Cosine {
        base_lr: f64,
        t_max: u32,
        epoch: u32,
    },
    Constant,
}

impl Schedule {
    pub fn plateau(patience: u32) -> Schedule {
        Schedule::Plateau { factor: 0.5, patience, threshold: 1e-4, best: f64::INFINITY, bad_epochs: 0 }
    }

    pub fn cosine(base_lr: f64, t_max: u32) -> Schedule {
        Schedule::Cosine { base_lr, t_max: t_max.max(1), epoch: 0 }
    }

    /// The run's schedule by name (plateau | cosine | none), with the study's plateau patience of half
    /// the early-stopping patience.
    pub fn from_name(name: &str, lr: f64, epochs: u32, patience: u32) -> Result<Schedule> {
        match name {
            "plateau" => Ok(Schedule::plateau(patience / 2)),
            "cosine" => Ok(Schedule::cosine(lr, epochs)),
            "none" => Ok(Schedule::Constant),
            _ => bail!("scheduler {name:?} is not one of plateau, cosine, none"),
        }
    }

    /// Called at the end of an epoch with its val loss; returns the learning rate for the next epoch.
    pub fn step(&mut self, lr: f64, val_loss: f64) -> f64 {
        match self {
            Schedule::Plateau { factor, patience, threshold, best, bad_epochs } => {
                if val_loss < *best * (1.0 - *threshold) {
                    *best = val_loss;
                    *bad_epochs = 0;
                } else {
                    *bad_epochs += 1;
                }
                if *bad_epochs > *patience {
                    *bad_epochs = 0;
                    let reduced = lr * *factor;
                    if lr - reduced > 1e-8 {
                        return reduced;
                    }
                }
                lr
            }
            Schedule::Cosine { base_lr, t_max, epoch } => {
                let finished = *epoch % *t_max;
                *epoch += 1;
                let progress = f64::from(finished) / f64::from(*t_max);
                *base_lr * (1.0 + (std::f64::consts::PI * progress).cos()) / 2.0
            }
            Schedule::Constant => lr,
        }
    }

    /// Named scalars to save ("sched.*").
    pub fn state(&self) -> BTreeMap<String, f64> {
        let mut s = BTreeMap::new();
        match self {
            Schedule::Plateau { best, bad_epochs, .. } => {
                s.insert("sched.best".into(), *best);
                s.insert("sched.bad_epochs".into(), f64::from(*bad_epochs));
            }
            Schedule::Cosine { epoch, .. } => {
                s.insert("sched.epoch".into(), f64::from(*epoch));
            }
            Schedule::Constant => {}
        }
        s
    }

    pub fn load_state(&mut self, state: &BTreeMap<String, f64>) -> Result<()> {
        let get = |k: &str| state.get(k).copied().ok_or_else(|| anyhow::anyhow!("scheduler state {k} is missing"));
        match self {
            Schedule::Plateau { best, bad_epochs, .. } => {
                *best = get("sched.best")?;
                *bad_epochs = get("sched.bad_epochs")? as u32;
            }
            Schedule::Cosine { epoch, .. } => *epoch = get("sched.epoch")? as u32,
            Schedule::Constant => {}
        }
        Ok(())
    }
}

/// Stops when val loss has not improved for more than `patience` epochs in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStop {
    pub patience: u32,
    pub best: f64,
    pub best_epoch: Option<u32>,
    pub bad_epochs: u32,
}

impl EarlyStop {
    pub fn new(patience: u32) -> EarlyStop {
        EarlyStop { patience, best: f64::INFINITY, best_epoch: None, bad_epochs: 0 }
    }

    /// Records an epoch's val loss; returns true when it is a new best.
    pub fn observe(&mut self, epoch: u32, val_loss: f64) -> bool {
        if val_loss < self.best {
            self.best = val_loss;
            self.best_epoch = Some(epoch);
            self.bad_epochs = 0;
            true
        } else {
            self.bad_epochs += 1;
            false
        }
    }

    pub fn should_stop(&self) -> bool {
        self.bad_epochs > self.patience
    }

    pub fn state(&self) -> BTreeMap<String, f64> {
        BTreeMap::from([
            ("stop.best".into(), self.best),
            ("stop.best_epoch".into(), self.best_epoch.map_or(-1.0, f64::from)),
            ("stop.bad_epochs".into(), f64::from(self.bad_epochs)),
        ])
    }

    pub fn load_state(&mut self, state: &BTreeMap<String, f64>) -> Result<()> {
        let get = |k: &str| state.get(k).copied().ok_or_else(|| anyhow::anyhow!("early-stop state {k} is missing"));
        self.best = get("stop.best")?;
        let e = get("stop.best_epoch")?;
        self.best_epoch = (e >= 0.0).then_some(e as u32);
        self.bad_epochs = get("stop.bad_epochs")? as u32;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plateau_halves_after_patience_bad_epochs_like_torch() {
        // torch: ReduceLROnPlateau(opt, factor=0.5, patience=1) stepped with these losses gives these
        // lrs (a gain below the 1e-4 relative threshold counts as a bad epoch).
        let mut s = Schedule::plateau(1);
        let mut lr = 1.0;
        let mut seen = vec![];
        for loss in [1.0, 0.99999, 0.99998, 0.5, 0.6, 0.7] {
            lr = s.step(lr, loss);
            seen.push(lr);
        }
        assert_eq!(seen, vec![1.0, 1.0, 0.5, 0.5, 0.5, 0.25]);
    }

    #[test]
    fn cosine_is_set_after_each_epoch_never_reaches_zero_and_resumes() {
        let mut s = Schedule::cosine(1e-3, 4);
        let lrs: Vec<f64> = (0..5).map(|_| s.step(0.0, 0.0)).collect();
        // lr for epochs 1..=5: t = 0, 1, 2, 3, then t mod 4 = 0 again
        assert_eq!(lrs[0], 1e-3);
        assert!((lrs[2] - 5e-4).abs() < 1e-15 && lrs[3] > 1e-4 && lrs[4] == 1e-3, "{lrs:?}");
        let mut resumed = Schedule::cosine(1e-3, 4);
        let mut half = Schedule::cosine(1e-3, 4);
        half.step(0.0, 0.0);
        resumed.load_state(&half.state()).unwrap();
        assert_eq!(resumed.step(0.0, 0.0), lrs[1]);
    }

    #[test]
    fn early_stop_counts_epochs_without_improvement() {
        let mut e = EarlyStop::new(2);
        assert!(e.observe(1, 1.0));
        assert!(!e.observe(2, 1.0));
        assert!(!e.observe(3, 1.5));
        assert!(!e.should_stop());
        assert!(!e.observe(4, 1.2));
        assert!(e.should_stop());
        let mut r = EarlyStop::new(2);
        r.load_state(&e.state()).unwrap();
        assert_eq!(r, e);
    }
}
