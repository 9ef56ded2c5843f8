//! The motor stage: the last thing between a decision and a wheel.
//!
//! Every tick it validates the intent (a non-finite value becomes zero and is counted), lowers
//! autonomy's speed limits by the drowsiness speed scale (a cap that keeps the path's
//! curvature: cruising slows, the slow manoeuvres a policy makes near obstacles, backing off or
//! creeping, pass unchanged), applies the override mux built from `[teleop]` (twist_mux style:
//! e-stop from any source, latched, beats everything; then the highest-priority teleop source
//! whose last command is fresher than its own timeout; then autonomy), clamps
//! to `[limits]`, limits acceleration, converts the twist to wheel speeds and writes the body.
//! A stale body state, an e-stop, a teleop source letting go (release or timeout) writes zero
//! at once; a forced stop ramps down.

use crate::body::{Body, RobotParams};
use crate::config::{LimitsConfig, TeleopConfig};
use crate::msg::{BodyState, ControlSource, MotorIntent, OperatorMode, Twist, WheelSpeeds};
use crate::navigation::rays::RangeScan;
use crate::teleop::{TeleopInput, TeleopSnapshot};
use std::sync::Arc;

/// Why the motor stage wrote zero this tick (if it did).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StopReason {
    /// Not stopped by the stage.
    #[default]
    None,
    /// E-stop latched (teleop or body).
    Estop,
    /// Body state older than `[body].stale_after_ms`.
    StaleBody,
    /// The integrator asked for a stop (sleep, failed region).
    Forced,
}

/// What the stage did in one tick.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MotorOutput {
    /// The twist sent (after everything).
    pub twist: Twist,
    /// The wheel speeds sent.
    pub wheels: WheelSpeeds,
    /// Who was in control.
    pub source: ControlSource,
    /// Why zero was forced, if it was.
    pub stop: StopReason,
    /// Whether the body refused the command.
    pub refused: bool,
    /// Which teleop source drove (index into [`MotorStage::sources`]), if one did.
    pub teleop_source: Option<u8>,
    /// The stamp of the teleop command that drove (its key-event time), 0 if none did.
    pub teleop_stamp_ns: u64,
    /// Which teleop source holds the e-stop (index into [`MotorStage::sources`]); `None`
    /// with the e-stop on is the body's own (firmware fault, watchdog, its button).
    pub estop_source: Option<u8>,
    /// In assist mode, the fraction of the forward speed limit the free distance ahead
    /// allowed this tick (1 elsewhere).
    pub assist_cap: f32,
}

/// One teleop input of the override mux.
struct MuxInput {
    name: String,
    priority: u8,
    timeout_ns: u64,
    input: Arc<TeleopInput>,
    snap: TeleopSnapshot,
    seen_estop_events: u64,
}

/// The motor stage (state: last command, e-stop latch, teleop snapshot).
pub struct MotorStage {
    limits: LimitsConfig,
    params: RobotParams,
    body_stale_ns: u64,
    period_s: f64,
    /// Teleop sources, highest priority first.
    mux: Vec<MuxInput>,
    estop_latched: bool,
    last: Twist,
    last_now: Option<u64>,
    rejected: u64,
    assist: (f32, f32),
    teleop_drove: bool,
}

impl std::fmt::Debug for MotorStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotorStage")
            .field("last", &self.last)
            .field("estop_latched", &self.estop_latched)
            .finish_non_exhaustive()
    }
}

impl MotorStage {
    /// A stage with these limits; `period_s` is the tick period (first-tick acceleration step).
    pub fn new(
        limits: &LimitsConfig,
        teleop: &TeleopConfig,
        body_stale_after_ms: u64,
        params: &RobotParams,
        period_s: f64,
    ) -> Self {
        Self {
            limits: limits.clone(),
            params: params.clone(),
            body_stale_ns: body_stale_after_ms * 1_000_000,
            period_s,
            mux: teleop
                .resolved_sources()
                .into_iter()
                .map(|(name, src)| MuxInput {
                    name,
                    priority: src.priority,
                    timeout_ns: src.timeout_ms * 1_000_000,
                    input: TeleopInput::new(),
                    snap: TeleopSnapshot::default(),
                    seen_estop_events: 0,
                })
                .collect(),
            estop_latched: false,
            last: Twist::ZERO,
            last_now: None,
            rejected: 0,
            assist: (teleop.assist_stop_m as f32, teleop.assist_slow_m as f32),
            teleop_drove: false,
        }
    }

    /// Assist mode: the fraction of the forward speed limit that the free distance ahead
    /// allows (0 at `[teleop].assist_stop_m`, 1 beyond `assist_slow_m`), the brain's obstacle
    /// margins over the robot's width; 0.5 on a body without a range sensor.
    fn assist_cap(&self, state: &BodyState) -> f32 {
        let p = &self.params;
        let scan = RangeScan::new(
            state,
            (p.range_fov_deg as f32).to_radians(),
            p.range_max as f32,
        );
        if scan.is_empty() {
            return 0.5;
        }
        let half_width = (p.wheel_separation as f32) / 2.0 + 0.03;
        let free = scan.corridor_free(0.0, half_width, None);
        let (stop, slow) = self.assist;
        ((free - stop) / (slow - stop).max(1e-3)).clamp(0.0, 1.0)
    }

    /// Connect `t` as the highest-priority teleop source (the console by default).
    pub fn set_teleop(&mut self, t: Arc<TeleopInput>) {
        if let Some(m) = self.mux.first_mut() {
            m.seen_estop_events = t.snapshot().map(|s| s.estop_events).unwrap_or(0);
            m.input = t;
        }
    }

    /// Replace the input of the teleop source `name`; false if the mux has no such source.
    pub fn attach(&mut self, name: &str, t: Arc<TeleopInput>) -> bool {
        match self.mux.iter_mut().find(|m| m.name == name) {
            Some(m) => {
                m.seen_estop_events = t.snapshot().map(|s| s.estop_events).unwrap_or(0);
                m.input = t;
                true
            }
            None => false,
        }
    }

    /// The input of the teleop source `name` (`[teleop.sources.<name>]`): what a console, a
    /// joystick or a ROS 2 topic sends into.
    pub fn teleop_input(&self, name: &str) -> Option<Arc<TeleopInput>> {
        self.mux
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.input.clone())
    }

    /// The teleop sources, highest priority first: `(name, priority, timeout ns)`.
    pub fn sources(&self) -> impl Iterator<Item = (&str, u8, u64)> {
        self.mux
            .iter()
            .map(|m| (m.name.as_str(), m.priority, m.timeout_ns))
    }

    /// Commands rejected as non-finite so far.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Whether the body state is stale at `now_ns`: older than `[body].stale_after_ms`, or
    /// stamped further in the future than that (a clock that stepped forward would otherwise
    /// keep a frozen state fresh until the clocks met again).
    pub fn body_stale(&self, now_ns: u64, s: &BodyState) -> bool {
        now_ns.saturating_sub(s.stamp_ns) > self.body_stale_ns
            || s.stamp_ns > now_ns.saturating_add(self.body_stale_ns)
    }

    fn validate(&mut self, t: Twist) -> Twist {
        if t.is_finite() {
            t
        } else {
            self.rejected += 1;
            Twist::ZERO
        }
    }

    /// Run the stage for one tick and write the body. `mode` is the operator's
    /// ([`OperatorMode`]): in assist and manual autonomy does not move the robot, and in assist
    /// the forward speed of teleop is capped by the free distance ahead.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        now_ns: u64,
        intent: &MotorIntent,
        speed_scale: f64,
        force_stop: bool,
        mode: OperatorMode,
        state: &BodyState,
        body: &mut dyn Body,
    ) -> MotorOutput {
        // E-stop: any source's latch or a press since the last tick, on any source.
        let mut want_estop = false;
        let mut estop_source = None;
        for (i, m) in self.mux.iter_mut().enumerate() {
            if let Some(snap) = m.input.snapshot() {
                m.snap = snap;
            }
            let new_press = m.snap.estop_events != m.seen_estop_events;
            m.seen_estop_events = m.snap.estop_events;
            if m.snap.estop || new_press {
                want_estop = true;
                estop_source.get_or_insert(i as u8);
            }
        }
        if want_estop && !self.estop_latched {
            body.estop();
        } else if !want_estop && self.estop_latched {
            body.clear_estop();
        }
        self.estop_latched = want_estop;

        let dt = match self.last_now {
            Some(p) if now_ns > p => ((now_ns - p) as f64 * 1e-9).min(1.0),
            _ => self.period_s,
        };
        self.last_now = Some(now_ns);

        let mut out = MotorOutput::default();
        // The highest-priority source with a fresh command drives.
        let fresh = self.mux.iter().position(|m| match m.snap.drive {
            Some((_, stamp)) => now_ns >= stamp && now_ns - stamp <= m.timeout_ns,
            None => false,
        });
        out.teleop_source = fresh.map(|i| i as u8);
        out.estop_source = estop_source;
        out.assist_cap = 1.0;
        let (target, source, stop) = if want_estop || state.estop {
            (Twist::ZERO, ControlSource::Estop, StopReason::Estop)
        } else if self.body_stale(now_ns, state) {
            let src = if fresh.is_some() {
                ControlSource::Teleop
            } else {
                ControlSource::Autonomy
            };
            (Twist::ZERO, src, StopReason::StaleBody)
        } else if let Some(i) = fresh {
            let (t, stamp) = self.mux[i].snap.drive.unwrap_or((Twist::ZERO, 0));
            out.teleop_stamp_ns = stamp;
            let mut t = self.validate(t);
            if mode == OperatorMode::Assist && t.linear > 0.0 {
                let cap = self.assist_cap(state);
                out.assist_cap = cap;
                t.linear = t.linear.min(self.limits.max_linear_mps * cap as f64);
            }
            (t, ControlSource::Teleop, StopReason::None)
        } else if mode != OperatorMode::Autonomous {
            // The operator holds the robot: autonomy decides but does not move it.
            (Twist::ZERO, ControlSource::Autonomy, StopReason::None)
        } else if force_stop {
            (Twist::ZERO, ControlSource::Autonomy, StopReason::Forced)
        } else {
            let t = self.validate(intent.twist);
            let k = if speed_scale.is_finite() {
                speed_scale.clamp(0.0, 1.0)
            } else {
                0.0
            };
            // Drowsiness lowers the speed limits rather than scaling every command: a scaled
            // back-off of 6 cm/s is no back-off at all when the robot is drowsy and near a wall.
            // A command over a lowered limit is scaled down as a whole, just enough, so the
            // path keeps its curvature (capping the turn alone would steer into what it avoids).
            let l = &self.limits;
            let (vmax, wmax) = (l.max_linear_mps * k, l.max_angular_rps * k);
            let ratio = |x: f64, max: f64| if x.abs() > max { max / x.abs() } else { 1.0 };
            let t = Twist {
                linear: t.linear.clamp(-l.max_linear_mps, l.max_linear_mps),
                angular: t.angular.clamp(-l.max_angular_rps, l.max_angular_rps),
            };
            let r = ratio(t.linear, vmax).min(ratio(t.angular, wmax));
            (
                Twist {
                    linear: t.linear * r,
                    angular: t.angular * r,
                },
                ControlSource::Autonomy,
                StopReason::None,
            )
        };
        let l = &self.limits;
        let clamped = Twist {
            linear: target.linear.clamp(-l.max_linear_mps, l.max_linear_mps),
            angular: target.angular.clamp(-l.max_angular_rps, l.max_angular_rps),
        };
        // A teleop source that let go (released, or lapsed past its timeout: the operator's
        // deadman) stops the robot at once, as a released key does in teleop_twist_keyboard;
        // autonomy then ramps up from rest.
        let let_go = self.teleop_drove && source != ControlSource::Teleop;
        self.teleop_drove = source == ControlSource::Teleop;
        if let_go {
            self.last = Twist::ZERO;
        }
        let twist = if stop == StopReason::Estop || stop == StopReason::StaleBody || let_go {
            Twist::ZERO
        } else {
            let step = |from: f64, to: f64, a: f64| from + (to - from).clamp(-a * dt, a * dt);
            Twist {
                linear: step(self.last.linear, clamped.linear, l.max_linear_accel),
                angular: step(self.last.angular, clamped.angular, l.max_angular_accel),
            }
        };
        let twist = if twist.is_finite() {
            twist
        } else {
            Twist::ZERO
        };
        self.last = twist;
        let wheels = self.params.twist_to_wheels(twist);
        out.refused = body.command(wheels).is_err();
        out.twist = twist;
        out.wheels = wheels;
        out.source = source;
        out.stop = stop;
        out
    }
}
