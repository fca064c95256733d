//! Learning-rate schedules: the rate of each epoch, computed on the host (a pure function of
//! the epoch, so a resumed run uses the same rates) and written into the optimizer's uniform
//! before the epoch's steps; no readback.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The shape of the schedule after the warmup.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ScheduleKind {
    /// The base rate throughout.
    #[default]
    Constant,
    /// The base rate times `gamma` every `every` epochs (PyTorch's `StepLR`).
    Step {
        /// Epochs per step.
        every: usize,
        /// Factor per step, in (0, 1].
        gamma: f32,
    },
    /// Half a cosine from the base rate down to 0 over the epochs after the warmup
    /// (PyTorch's `CosineAnnealingLR` with `eta_min` 0, stepped per epoch).
    Cosine,
}

impl fmt::Display for ScheduleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleKind::Constant => f.write_str("constant"),
            ScheduleKind::Step { every, gamma } => write!(f, "step:{every}:{gamma}"),
            ScheduleKind::Cosine => f.write_str("cosine"),
        }
    }
}

impl FromStr for ScheduleKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::config(
                "--lr-schedule",
                format!(
                    "{s:?}: {why}; choose constant, step:EVERY:GAMMA (e.g. step:10:0.5) or cosine"
                ),
            )
        };
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "constant" => return Ok(ScheduleKind::Constant),
            "cosine" => return Ok(ScheduleKind::Cosine),
            _ => {}
        }
        let parts: Vec<&str> = t.split(':').collect();
        match parts.as_slice() {
            ["step", every, gamma] => {
                let every: usize = every
                    .parse()
                    .ok()
                    .filter(|&e| e >= 1)
                    .ok_or_else(|| bad("EVERY must be a whole number of epochs, at least 1"))?;
                let gamma: f32 = gamma
                    .parse()
                    .ok()
                    .filter(|g: &f32| *g > 0.0 && *g <= 1.0)
                    .ok_or_else(|| bad("GAMMA must be a factor in (0, 1]"))?;
                Ok(ScheduleKind::Step { every, gamma })
            }
            _ => Err(bad("unknown schedule")),
        }
    }
}

/// A schedule with its linear warmup, over a run of `epochs` epochs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LrSchedule {
    /// What follows the warmup.
    pub kind: ScheduleKind,
    /// Epochs of linear warmup: epoch e ≤ warmup runs at base · e / (warmup + 1).
    pub warmup: usize,
    /// Total epochs of the run (the cosine's span ends there).
    pub epochs: usize,
}

impl LrSchedule {
    /// Checks that the warmup leaves epochs at the full rate.
    pub fn validate(&self) -> Result<()> {
        if self.warmup > 0 && self.warmup >= self.epochs {
            return Err(Error::config(
                "--warmup",
                format!(
                    "{} warmup epochs of {} leave none after the warmup; use fewer (or more --epochs)",
                    self.warmup, self.epochs
                ),
            ));
        }
        Ok(())
    }

    /// True for a constant rate with no warmup (nothing to store or print).
    pub fn is_constant(&self) -> bool {
        self.kind == ScheduleKind::Constant && self.warmup == 0
    }

    /// The learning rate of `epoch` (1-based) for base rate `base`, computed in f64.
    pub fn lr(&self, base: f32, epoch: usize) -> f32 {
        let base = f64::from(base);
        let e = epoch.max(1);
        if e <= self.warmup {
            return (base * e as f64 / (self.warmup + 1) as f64) as f32;
        }
        let t = e - 1 - self.warmup; // epochs since the warmup ended, from 0
        let rate = match self.kind {
            ScheduleKind::Constant => base,
            ScheduleKind::Step { every, gamma } => {
                base * f64::from(gamma).powi((t / every.max(1)) as i32)
            }
            ScheduleKind::Cosine => {
                let span = self.epochs.saturating_sub(self.warmup).max(1) as f64;
                0.5 * base * (1.0 + (std::f64::consts::PI * t as f64 / span).cos())
            }
        };
        rate as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lrs(s: LrSchedule, n: usize) -> Vec<f32> {
        (1..=n).map(|e| s.lr(0.1, e)).collect()
    }

    #[test]
    fn rates_match_hand_computed_values() {
        let constant = LrSchedule {
            epochs: 3,
            ..Default::default()
        };
        assert_eq!(lrs(constant, 3), vec![0.1; 3]);
        // step:2:0.5 with no warmup: 0.1, 0.1, 0.05, 0.05, 0.025
        let step = LrSchedule {
            kind: ScheduleKind::Step {
                every: 2,
                gamma: 0.5,
            },
            warmup: 0,
            epochs: 5,
        };
        assert_eq!(lrs(step, 5), vec![0.1, 0.1, 0.05, 0.05, 0.025]);
        // cosine over 4 epochs after a warmup of 1: 0.05 (= 0.1·1/2), then
        // 0.05·(1 + cos(π·t/4)) for t = 0..3: 0.1, 0.0853553, 0.05, 0.0146447
        let cos = LrSchedule {
            kind: ScheduleKind::Cosine,
            warmup: 1,
            epochs: 5,
        };
        let want = [0.05, 0.1, 0.085_355_34, 0.05, 0.014_644_66];
        for (g, w) in lrs(cos, 5).iter().zip(want) {
            assert!((g - w).abs() < 1e-7, "{g} vs {w}");
        }
    }

    #[test]
    fn parse_round_trips_and_rejects_bad_values() {
        for text in ["constant", "cosine", "step:10:0.5"] {
            let k: ScheduleKind = text.parse().unwrap();
            assert_eq!(k.to_string(), text);
        }
        for bad in [
            "linear",
            "step:0:0.5",
            "step:3:0",
            "step:3:1.5",
            "step:3",
            "step:x:0.5",
        ] {
            let e = bad.parse::<ScheduleKind>().unwrap_err().to_string();
            assert!(e.contains("--lr-schedule"), "{bad}: {e}");
        }
        let s = LrSchedule {
            kind: ScheduleKind::Cosine,
            warmup: 5,
            epochs: 5,
        };
        assert!(s.validate().unwrap_err().to_string().contains("--warmup"));
    }
}
