//! Drowsiness: how far behind the brain is falling, as one number in [0, 1].
//!
//! A leaky integrator (time constant `[drowsiness].time_constant_s`) of the missed tick
//! deadlines and the stale inputs of each tick, weighted by `miss_weight` and `stale_weight`.
//! Its inputs are only facts measured on the brain's clock (the tick's `now_ns`), so under a
//! simulated clock it is deterministic.
//!
//! Its one output is a [`Feedback`] value, computed once per tick by [`Drowsiness::update`]:
//! the fusion token's strength, the speed scale, the load-shedding level the heavy regions read,
//! the sleep request, and the *held* level the policy's caution follows (the peak, released
//! over [`HOLD_RELEASE_S`], so one stall makes the robot steadily careful instead of flipping
//! between cautious and bold every second). Every consumer reads that value; with
//! `feedback = false` it is all neutral, and the raw level is only recorded.

use crate::config::DrowsinessConfig;

/// How far below `sleep_threshold` drowsiness must fall to cancel a pending sleep request.
pub const SLEEP_HYSTERESIS: f64 = 0.15;

/// Highest load-shedding level (a region at level `L` processes one frame in `L + 1`).
pub const MAX_SHED_LEVEL: u32 = 3;

/// Seconds for the held level to fall from 1 to 0.
pub const HOLD_RELEASE_S: f64 = 5.0;

/// What drowsiness feeds back into the loop this tick: the one value every consumer reads.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Feedback {
    /// Drowsiness in [0, 1] (recorded even when feedback is off).
    pub level: f64,
    /// Whether it is fed back at all (the ablation switch).
    pub on: bool,
    /// Strength of the drowsiness token in fusion (0 when off).
    pub token: f64,
    /// Speed scale applied to autonomy's limits (1 when off).
    pub speed_scale: f64,
    /// Load-shedding level for the heavy regions (0 when off).
    pub shed_level: u32,
    /// Drowsy for long enough: ask for sleep (false when off).
    pub sleep_wanted: bool,
    /// The peak level, released over [`HOLD_RELEASE_S`]: the policy's caution (0 when off).
    pub held: f64,
}

/// The drowsiness state.
#[derive(Debug, Clone)]
pub struct Drowsiness {
    cfg: DrowsinessConfig,
    level: f64,
    above_since_ns: Option<u64>,
    held: f64,
}

impl Drowsiness {
    /// Alert drowsiness with the given configuration.
    pub fn new(cfg: &DrowsinessConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            level: 0.0,
            above_since_ns: None,
            held: 0.0,
        }
    }

    /// Integrate one tick (see [`Drowsiness::integrate`]) and return what is fed back.
    pub fn update(&mut self, now_ns: u64, dt_s: f64, missed: u64, stale: u32) -> Feedback {
        let level = self.integrate(now_ns, dt_s, missed, stale);
        let release = if dt_s.is_finite() && dt_s > 0.0 {
            dt_s / HOLD_RELEASE_S
        } else {
            0.0
        };
        self.held = level.max(self.held - release).clamp(0.0, 1.0);
        self.feedback(now_ns)
    }

    /// What is fed back at `now_ns`, from the current state.
    pub fn feedback(&self, now_ns: u64) -> Feedback {
        let on = self.cfg.feedback;
        Feedback {
            level: self.level,
            on,
            token: if on { self.level } else { 0.0 },
            speed_scale: self.speed_scale(),
            shed_level: self.shed_level(),
            sleep_wanted: on && self.wants_sleep(now_ns),
            held: if on { self.held } else { 0.0 },
        }
    }

    /// Current level in [0, 1].
    pub fn level(&self) -> f64 {
        self.level
    }

    /// Integrate one tick: `dt_s` since the previous tick, `missed` deadlines missed in it,
    /// `stale` stale inputs. Returns the new level.
    pub fn integrate(&mut self, now_ns: u64, dt_s: f64, missed: u64, stale: u32) -> f64 {
        let input = self.cfg.miss_weight * missed as f64 + self.cfg.stale_weight * stale as f64;
        let a = if dt_s.is_finite() && dt_s > 0.0 {
            1.0 - (-dt_s / self.cfg.time_constant_s).exp()
        } else {
            0.0
        };
        // The input is the weighted count, not clipped: a tick that missed five deadlines at
        // once weighs five times one that missed one. The level itself stays in [0, 1].
        self.level = (self.level + a * (input - self.level)).clamp(0.0, 1.0);
        // Hysteresis: a stall makes drowsiness spike and decay, so "stays above the threshold"
        // starts when the level crosses it and ends only when it has clearly recovered
        // (`SLEEP_HYSTERESIS` below it), not at the first tick that dips under.
        if self.level > self.cfg.sleep_threshold {
            self.above_since_ns.get_or_insert(now_ns);
        } else if self.level < self.cfg.sleep_threshold - SLEEP_HYSTERESIS {
            self.above_since_ns = None;
        }
        self.level
    }

    /// Speed scale: 1 up to `slow_threshold`, then linearly down to `min_speed_scale` at 1.
    pub fn speed_scale(&self) -> f64 {
        if !self.cfg.feedback || self.level <= self.cfg.slow_threshold {
            return 1.0;
        }
        let span = (1.0 - self.cfg.slow_threshold).max(1e-9);
        let x = ((self.level - self.cfg.slow_threshold) / span).clamp(0.0, 1.0);
        1.0 - x * (1.0 - self.cfg.min_speed_scale)
    }

    /// Load-shedding level for the heavy regions: 0 below `shed_threshold`, rising to
    /// [`MAX_SHED_LEVEL`] at full drowsiness.
    pub fn shed_level(&self) -> u32 {
        if !self.cfg.feedback || self.level < self.cfg.shed_threshold {
            return 0;
        }
        let span = (1.0 - self.cfg.shed_threshold).max(1e-9);
        let x = ((self.level - self.cfg.shed_threshold) / span).clamp(0.0, 1.0);
        (1 + (x * MAX_SHED_LEVEL as f64) as u32).min(MAX_SHED_LEVEL)
    }

    /// Whether drowsiness has stayed above `sleep_threshold` (with [`SLEEP_HYSTERESIS`]) for
    /// `sleep_after_s`.
    pub fn wants_sleep(&self, now_ns: u64) -> bool {
        match self.above_since_ns {
            Some(t) => now_ns.saturating_sub(t) as f64 * 1e-9 >= self.cfg.sleep_after_s,
            None => false,
        }
    }

    /// Wake up alert (after sleep). The held level keeps releasing on its own.
    pub fn reset(&mut self) {
        self.level = 0.0;
        self.above_since_ns = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spiky_drowsiness_still_requests_sleep_but_recovery_cancels() {
        let cfg = DrowsinessConfig::default();
        let mut d = Drowsiness::new(&cfg);
        let (dt, mut t) = (0.01, 0u64);
        // A stall every 5 ticks (3 missed deadlines): the level saws around the threshold.
        let mut below_once = false;
        let mut asked = false;
        for k in 0..600 {
            t += 10_000_000;
            let lvl = d.integrate(t, dt, if k % 5 == 0 { 3 } else { 0 }, 0);
            if k > 200 && lvl < cfg.sleep_threshold {
                below_once = true;
            }
            asked |= d.wants_sleep(t);
        }
        assert!(below_once, "the test should dip under the threshold");
        assert!(
            asked,
            "sawing just around the threshold is still staying drowsy"
        );
        // Clear recovery cancels the pending request.
        for _ in 0..300 {
            t += 10_000_000;
            d.integrate(t, dt, 0, 0);
        }
        assert!(!d.wants_sleep(t));
    }

    #[test]
    fn leaks_rises_and_requests_sleep() {
        let cfg = DrowsinessConfig::default();
        let mut d = Drowsiness::new(&cfg);
        let dt = 0.01;
        let mut t = 0u64;
        for _ in 0..100 {
            t += 10_000_000;
            d.integrate(t, dt, 0, 0);
        }
        assert_eq!(d.level(), 0.0);
        assert_eq!(d.speed_scale(), 1.0);
        // One missed deadline per tick for 1 s: 1 - e^-1.
        for _ in 0..100 {
            t += 10_000_000;
            d.integrate(t, dt, 1, 0);
        }
        assert!((d.level() - (1.0 - (-1.0f64).exp())).abs() < 1e-3);
        assert!(d.speed_scale() < 1.0 && d.shed_level() >= 1);
        assert!(!d.wants_sleep(t));
        for _ in 0..200 {
            t += 10_000_000;
            d.integrate(t, dt, 1, 0);
        }
        assert!(d.wants_sleep(t));
        d.reset();
        assert_eq!(d.level(), 0.0);
        // One stale region settles at stale_weight.
        for _ in 0..2000 {
            t += 10_000_000;
            d.integrate(t, dt, 0, 1);
        }
        assert!((d.level() - cfg.stale_weight).abs() < 1e-6);
    }

    #[test]
    fn feedback_holds_the_peak_and_is_neutral_when_off() {
        let cfg = DrowsinessConfig::default();
        let mut d = Drowsiness::new(&cfg);
        let (dt, mut t) = (0.02, 0u64);
        // One stall: five missed deadlines at once, then nothing.
        t += 20_000_000;
        let f = d.update(t, dt, 5, 0);
        let peak = f.level;
        assert!(peak > 0.05 && f.held == peak);
        for _ in 0..50 {
            t += 20_000_000;
            d.update(t, dt, 0, 0);
        }
        let f = d.feedback(t);
        // After 1 s the level has decayed by e^-1, the held level only by 1 s / HOLD_RELEASE_S.
        assert!(f.level < 0.5 * peak, "{f:?}");
        assert!(
            (f.held - (peak - 1.0 / HOLD_RELEASE_S).max(f.level)).abs() < 1e-9,
            "{f:?}"
        );
        let off = DrowsinessConfig {
            feedback: false,
            ..cfg
        };
        let mut d = Drowsiness::new(&off);
        let f = d.update(20_000_000, dt, 50, 3);
        assert!(f.level > 0.5);
        assert_eq!(
            (f.token, f.speed_scale, f.shed_level, f.sleep_wanted, f.held),
            (0.0, 1.0, 0, false, 0.0)
        );
    }
}
