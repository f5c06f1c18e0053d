//! The reference's learning-rate schedule (§2.8): timm's `CosineLRScheduler` with linear warm-up,
//! driven as the training loops drive it: in epoch 0 `step(i // 100)` at iterations i = 0, 100, …
//! ≤ 100·W (a staircase warm-up, then the base rate for the rest of epoch 0); in epoch e ≥ 1
//! `step(e + W)`. And the distillation weight's warm-up: α·min(1, i / iterations per epoch) in
//! epoch 0.

use super::config::ScheduleConfig;

/// The schedule of one base learning rate.
#[derive(Debug, Clone, PartialEq)]
pub struct CosineSchedule {
    /// Cosine length in scheduler steps (`t_initial` = epochs).
    pub epochs: u64,
    /// Warm-up steps W.
    pub warmup: u64,
    /// Warm-up start.
    pub warmup_lr: f64,
    /// Floor.
    pub min_lr: f64,
    /// Iterations per warm-up step in epoch 0.
    pub warmup_step_iters: u64,
}

impl CosineSchedule {
    /// From the YAML `schedular:` section.
    pub fn new(cfg: &ScheduleConfig, warmup_step_iters: u64) -> Self {
        CosineSchedule {
            epochs: cfg.epochs,
            warmup: cfg.warmup_epochs,
            warmup_lr: cfg.warmup_lr,
            min_lr: cfg.min_lr,
            warmup_step_iters: warmup_step_iters.max(1),
        }
    }

    /// timm's lr at scheduler step `t` for base rate `base`.
    pub fn at_step(&self, base: f64, t: u64) -> f64 {
        let w = self.warmup;
        if t < w {
            return self.warmup_lr + t as f64 * (base - self.warmup_lr) / w as f64;
        }
        if t < w + self.epochs {
            let frac = (t - w) as f64 / self.epochs as f64;
            return self.min_lr
                + 0.5 * (base - self.min_lr) * (1.0 + (std::f64::consts::PI * frac).cos());
        }
        self.min_lr
    }

    /// The lr the reference loop uses at iteration `iter` of `epoch`.
    pub fn at(&self, base: f64, epoch: u64, iter: u64) -> f64 {
        let t = if epoch == 0 {
            (iter / self.warmup_step_iters).min(self.warmup)
        } else {
            epoch + self.warmup
        };
        self.at_step(base, t)
    }
}

/// Distillation weight at `iter` of `epoch`: ramped over epoch 0 when `warm_up` (reference §2.1).
pub fn alpha_at(alpha: f64, warm_up: bool, epoch: u64, iter: u64, iters_per_epoch: u64) -> f64 {
    if warm_up && epoch == 0 {
        alpha * (iter as f64 / iters_per_epoch.max(1) as f64).min(1.0)
    } else {
        alpha
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched() -> CosineSchedule {
        CosineSchedule {
            epochs: 30,
            warmup: 20,
            warmup_lr: 1e-6,
            min_lr: 1e-6,
            warmup_step_iters: 100,
        }
    }

    #[test]
    fn warmup_is_a_staircase_then_base_then_cosine_by_epoch() {
        let s = sched();
        let base = 1e-4;
        // Iterations 0..99 use step 0: warmup_lr.
        assert_eq!(s.at(base, 0, 0), 1e-6);
        assert_eq!(s.at(base, 0, 99), 1e-6);
        // Iteration 150 uses step 1: 1e-6 + (1e-4 - 1e-6) / 20.
        assert!((s.at(base, 0, 150) - (1e-6 + 99e-6 / 20.0)).abs() < 1e-18);
        // Past 100·W: step W, the cosine's start = base.
        assert!((s.at(base, 0, 5000) - base).abs() < 1e-18);
        // Epoch 1: cos(π/30).
        let want = 1e-6 + 0.5 * 99e-6 * (1.0 + (std::f64::consts::PI / 30.0).cos());
        assert!((s.at(base, 1, 0) - want).abs() < 1e-18);
        // Past the cosine: the floor.
        assert_eq!(s.at(base, 31, 0), 1e-6);
        // Warm-up goes down when warmup_lr exceeds the base (the visual lr2 case).
        let v = CosineSchedule {
            warmup_lr: 1e-5,
            ..sched()
        };
        assert!(v.at(5e-6, 0, 100) < 1e-5);
    }

    #[test]
    fn alpha_ramps_over_epoch_zero_only() {
        assert_eq!(alpha_at(0.4, true, 0, 0, 10), 0.0);
        assert!((alpha_at(0.4, true, 0, 5, 10) - 0.2).abs() < 1e-12);
        assert_eq!(alpha_at(0.4, true, 1, 0, 10), 0.4);
        assert_eq!(alpha_at(0.4, false, 0, 0, 10), 0.4);
    }
}
