//! The teleop override console (`brainloop console`): watch a running brain, take over, stop
//! it. May depend on msg, bus, teleop and config; it talks to the brain only over the zenoh
//! bus, so it attaches the same way to `run`, `sim --realtime`, `up` and the ROS 2 node.
//!
//! One [`Model`] holds what the brain reports (its `LoopHealth` and `BrainStatus` at 10 Hz)
//! and what the operator is doing; the terminal UI ([`tui`]) and the scriptable JSON mode
//! ([`json`]) both read it and both drive through one [`Controls`]:
//! - **Deadman**: a drive key (or a `{"drive": [v, w]}` line) holds the command for
//!   [`DEADMAN`] after the last key event; the console repeats it every [`REPEAT`] while held
//!   and sends a release when it lapses. Each command carries the key event's time, and the
//!   brain's `operator` source times out from that, so a frozen console or a dropped link
//!   stops the robot within the source's timeout too.
//! - **Only the operator drives**: commands are signed with the operator key
//!   (`teleop::auth`); without the key the console watches and can e-stop, nothing more.
//! - **Gamepad** ([`gamepad`], feature `gamepad`): the enable button is the deadman.
//! - **E-stop** goes out signed and on the public e-stop key (any console can stop the
//!   robot); clearing it needs the key.

pub mod gamepad;
pub mod json;
pub mod tui;

use crate::bus::wire::LoopHealthMsg;
use crate::bus::zenoh::{net_topics, wall_ns, NetPublisher, Wire, ZenohBus, ZenohOptions};
use crate::msg::{BrainStatus, OperatorCommand, OperatorMode, Twist};
use crate::teleop::auth::{OperatorKey, Signer};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A drive command lapses this long after the last key event.
pub const DEADMAN: Duration = Duration::from_millis(300);

/// A held drive command is repeated this often.
pub const REPEAT: Duration = Duration::from_millis(50);

/// The brain is "lost" when its health is older than this.
pub const LOST_AFTER: Duration = Duration::from_millis(1000);

/// Samples of drowsiness history kept for the sparkline (10 Hz: 12 s).
pub const HISTORY: usize = 120;

/// What the console knows: the brain's last reports and the operator's own state.
#[derive(Debug, Clone)]
pub struct Model {
    /// The robot's name on the bus.
    pub robot: String,
    /// Where the console connected.
    pub endpoint: String,
    /// Last `LoopHealth`, and when it arrived.
    pub health: Option<(LoopHealthMsg, Instant)>,
    /// Last `BrainStatus`, and when it arrived.
    pub status: Option<(BrainStatus, Instant)>,
    /// Drowsiness of the last [`HISTORY`] health reports.
    pub drowsiness: VecDeque<f32>,
    /// Health and status samples that did not decode.
    pub bad_samples: u64,
    /// Whether the console holds the operator key (may drive).
    pub authenticated: bool,
    /// Where the key came from, or why there is none.
    pub key_note: String,
    /// Commands sent.
    pub sent: u64,
    /// Commands zenoh refused to send.
    pub send_failures: u64,
    /// Input lines (JSON mode) or keys that were not commands.
    pub bad_input: u64,
    /// What the operator holds now.
    pub held: Option<Twist>,
    /// Speed scale for drive keys, 0.1..=1 of the limits.
    pub speed: f64,
    /// The mode last asked for.
    pub mode: OperatorMode,
    /// The last thing to tell the operator.
    pub message: String,
}

impl Model {
    /// An empty model.
    pub fn new(robot: &str, endpoint: &str) -> Self {
        Self {
            robot: robot.into(),
            endpoint: endpoint.into(),
            health: None,
            status: None,
            drowsiness: VecDeque::with_capacity(HISTORY),
            bad_samples: 0,
            authenticated: false,
            key_note: String::new(),
            sent: 0,
            send_failures: 0,
            bad_input: 0,
            held: None,
            speed: 0.5,
            mode: OperatorMode::Autonomous,
            message: String::new(),
        }
    }

    /// Take a `LoopHealth` sample.
    pub fn on_health(&mut self, bytes: &[u8], now: Instant) {
        match LoopHealthMsg::from_cdr(bytes) {
            Ok(h) => {
                if self.drowsiness.len() == HISTORY {
                    self.drowsiness.pop_front();
                }
                self.drowsiness.push_back(h.drowsiness);
                self.health = Some((h, now));
            }
            Err(_) => self.bad_samples += 1,
        }
    }

    /// Take a `BrainStatus` sample.
    pub fn on_status(&mut self, bytes: &[u8], now: Instant) {
        match BrainStatus::decode(bytes) {
            Ok(s) => self.status = Some((s, now)),
            Err(_) => self.bad_samples += 1,
        }
    }

    /// Whether the brain reported within [`LOST_AFTER`].
    pub fn connected(&self, now: Instant) -> bool {
        self.health
            .as_ref()
            .is_some_and(|h| now.duration_since(h.1) < LOST_AFTER)
    }

    /// Age of the last health report, ms.
    pub fn age_ms(&self, now: Instant) -> Option<f64> {
        self.health
            .as_ref()
            .map(|h| now.duration_since(h.1).as_secs_f64() * 1e3)
    }

    /// The health object of `console --json` (the TUI shows the same fields). Every field is
    /// present; what the brain has not reported yet is `null`.
    pub fn health_json(&self, now: Instant) -> Value {
        let h = self.health.as_ref().map(|h| &h.0);
        let s = self.status.as_ref().map(|s| &s.0);
        let regions: serde_json::Map<String, Value> = h
            .map(|h| {
                h.regions
                    .iter()
                    .map(|r| {
                        (
                            r.region.clone(),
                            json!({
                                "fresh": r.fresh,
                                "latency_ms": r.latency_ms,
                                "age_ms": r.age_ms,
                                "rate_hz": r.rate_hz,
                                "received": r.received,
                                "gaps": r.gaps,
                                "rejected": r.rejected,
                                "restarts": r.restarts,
                            }),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "connected": self.connected(now),
            "age_ms": self.age_ms(now),
            "robot": self.robot,
            "rate_hz": h.map(|h| h.rate_hz),
            "period_us": h.map(|h| h.period_us),
            "ticks": h.map(|h| h.ticks),
            "missed": h.map(|h| h.missed),
            "jitter_us": h.map(|h| json!({"p50": h.jitter_p50_us, "p99": h.jitter_p99_us, "max": h.jitter_max_us})),
            "compute_us": h.map(|h| json!({"p99": h.compute_p99_us})),
            "drowsiness": h.map(|h| h.drowsiness),
            "speed_scale": h.map(|h| h.speed_scale),
            "shed_level": h.map(|h| h.shed_level),
            "sleeps": h.map(|h| h.sleeps),
            "brain_mode": h.map(|h| h.mode.clone()),
            "regions": regions,
            "estop": s.map(|s| s.estop),
            "estop_reason": s.and_then(|s| s.estop_reason.clone()),
            "source": s.map(|s| s.source.clone()),
            "mode": s.map(|s| s.operator_mode.name()),
            "odom": s.map(|s| json!({"x": s.odom.x, "y": s.odom.y, "theta": s.odom.theta})),
            "twist": s.map(|s| json!({"linear": s.twist.linear, "angular": s.twist.angular})),
            "wheels": s.map(|s| s.wheels),
            "battery_v": s.map(|s| s.battery_v),
            "body": s.map(|s| s.body.clone()),
            "body_stale": s.map(|s| s.body_stale),
            "link": s.and_then(|s| s.link).map(|l| serde_json::to_value(l).unwrap_or(Value::Null)),
            "instruction": s.and_then(|s| s.instruction.as_ref().map(|i| i.text.clone())),
            "understood": s.and_then(|s| s.instruction.as_ref()).map(|i| json!({
                "about_object": i.about_object,
                "target": i.target,
                "probability": i.probability,
                "seen": i.seen,
                "reason": i.reason,
            })),
            "sleep": s.map(|s| serde_json::to_value(s.sleep).unwrap_or(Value::Null)),
            "assist_cap": s.map(|s| s.assist_cap),
            "commands_accepted": s.map(|s| s.commands_accepted),
            "commands_refused": s.map(|s| s.commands_refused),
            "key_to_wheel_ms": s.map(|s| serde_json::to_value(s.key_to_wheel_ms).unwrap_or(Value::Null)),
            "console": {
                "authenticated": self.authenticated,
                "held": self.held.map(|t| [t.linear, t.angular]),
                "speed": self.speed,
                "sent": self.sent,
                "send_failures": self.send_failures,
                "bad_input": self.bad_input,
                "bad_samples": self.bad_samples,
            },
        })
    }
}

/// The operator's drive state: the deadman, repeats and the release.
#[derive(Debug, Clone)]
pub struct Controls {
    held: Option<(Twist, Instant, i64)>,
    last_sent: Option<Instant>,
    deadman: Duration,
}

impl Default for Controls {
    fn default() -> Self {
        Self::new(DEADMAN)
    }
}

impl Controls {
    /// Controls whose drive lapses `deadman` after the last key event.
    pub fn new(deadman: Duration) -> Self {
        Self {
            held: None,
            last_sent: None,
            deadman,
        }
    }

    /// A drive key event (or a repeated `drive` line) at `now` / `now_wall`: returns the
    /// command to send at once (a key press reaches the wheels without waiting for a repeat).
    pub fn drive(&mut self, t: Twist, now: Instant, now_wall: i64) -> (OperatorCommand, i64) {
        self.held = Some((t, now, now_wall));
        self.last_sent = Some(now);
        (OperatorCommand::Drive(t), now_wall)
    }

    /// What is held now, if anything.
    pub fn held(&self) -> Option<Twist> {
        self.held.map(|h| h.0)
    }

    /// Let go (e-stop, quit): the release to send, if something was held.
    pub fn release(&mut self, now_wall: i64) -> Option<(OperatorCommand, i64)> {
        self.last_sent = None;
        self.held
            .take()
            .map(|_| (OperatorCommand::Release, now_wall))
    }

    /// Called often (every 10-20 ms): the repeat of a held command, or the release once it
    /// lapsed. Each repeat carries the time of the key event it stands for.
    pub fn poll(&mut self, now: Instant, now_wall: i64) -> Option<(OperatorCommand, i64)> {
        let (t, at, wall) = self.held?;
        if now.duration_since(at) >= self.deadman {
            return self.release(now_wall);
        }
        if self
            .last_sent
            .is_none_or(|s| now.duration_since(s) >= REPEAT)
        {
            self.last_sent = Some(now);
            return Some((OperatorCommand::Drive(t), wall));
        }
        None
    }
}

/// The console on the bus: the brain's reports into a shared [`Model`], commands out.
pub struct Client {
    net: ZenohBus,
    model: Arc<Mutex<Model>>,
    operator: Option<(NetPublisher, Signer)>,
    estop: NetPublisher,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// Errors of the console.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The bus could not be joined.
    #[error("zenoh bus: {0}")]
    Bus(#[from] crate::bus::zenoh::ZenohError),
}

impl Client {
    /// Join the bus and subscribe to the brain's reports. Without `key` the console watches
    /// and can e-stop, nothing more.
    pub fn connect(
        opts: &ZenohOptions,
        key: Option<OperatorKey>,
        key_note: String,
        clock: fn() -> u64,
    ) -> Result<Self, ConsoleError> {
        let endpoint = opts
            .connect
            .iter()
            .chain(&opts.listen)
            .next()
            .cloned()
            .unwrap_or_default();
        let mut m = Model::new(&opts.robot, &endpoint);
        m.authenticated = key.is_some();
        m.key_note = key_note;
        let model = Arc::new(Mutex::new(m));
        let net = ZenohBus::open(opts, "console", clock)?;
        let m = model.clone();
        net.subscribe_raw(net_topics::HEALTH, move |b| {
            lock(&m).on_health(b, Instant::now());
        })?;
        let m = model.clone();
        net.subscribe_raw(net_topics::STATUS, move |b| {
            lock(&m).on_status(b, Instant::now());
        })?;
        let operator = match key {
            Some(k) => Some((net.publisher(&net_topics::OPERATOR)?, Signer::new(k))),
            None => None,
        };
        let estop = net.publisher(&net_topics::ESTOP)?;
        Ok(Self {
            net,
            model,
            operator,
            estop,
        })
    }

    /// The shared model.
    pub fn model(&self) -> Arc<Mutex<Model>> {
        self.model.clone()
    }

    /// The bus session (tests, tools).
    pub fn bus(&self) -> &ZenohBus {
        &self.net
    }

    /// Send `cmd` for a key event at `key_wall_ns`. An e-stop also goes out on the public
    /// e-stop key, so it stops the robot even without the operator key. Returns whether it
    /// was sent.
    pub fn send(&mut self, cmd: OperatorCommand, key_wall_ns: i64) -> bool {
        let mut ok = true;
        if cmd == OperatorCommand::Estop {
            ok &= self.estop.put(b"true");
        }
        match self.operator.as_mut() {
            Some((p, signer)) => {
                let s = signer.sign(cmd, wall_ns(), key_wall_ns);
                ok &= p.put(&s);
            }
            None if cmd == OperatorCommand::Estop => {}
            None => {
                lock(&self.model).message =
                    "not sent: this console has no operator key (watching only; space still stops)"
                        .into();
                return false;
            }
        }
        let mut m = lock(&self.model);
        if ok {
            m.sent += 1;
        } else {
            m.send_failures += 1;
        }
        ok
    }
}

/// Lock the model, through a poisoned lock (the model is plain data).
pub fn lock(m: &Mutex<Model>) -> std::sync::MutexGuard<'_, Model> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The console's operator key: `path` if given, else where the brain keeps it
/// (`teleop::auth::key_path`). Never created here: a console without the key only watches.
pub fn load_key(path: Option<&std::path::Path>, configured: &str) -> (Option<OperatorKey>, String) {
    let p = path
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| crate::teleop::auth::key_path(configured));
    match OperatorKey::load(&p) {
        Ok(k) => (Some(k), format!("operator key {}", p.display())),
        Err(e) => (None, format!("watching only: {e}")),
    }
}

/// A drive command from a direction (`forward` -1..1, `turn` -1..1) at speed `scale` of the
/// limits.
pub fn twist_of(
    forward: f64,
    turn: f64,
    scale: f64,
    limits: &crate::config::LimitsConfig,
) -> Twist {
    let s = scale.clamp(0.05, 1.0);
    Twist {
        linear: forward.clamp(-1.0, 1.0) * s * limits.max_linear_mps,
        angular: turn.clamp(-1.0, 1.0) * s * limits.max_angular_rps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_key_repeats_then_releases_after_the_deadman() {
        let mut c = Controls::new(Duration::from_millis(300));
        let t0 = Instant::now();
        let tw = Twist {
            linear: 0.2,
            angular: 0.0,
        };
        let (cmd, wall) = c.drive(tw, t0, 1000);
        assert_eq!((cmd, wall), (OperatorCommand::Drive(tw), 1000));
        assert_eq!(c.poll(t0 + Duration::from_millis(10), 1010), None);
        // A repeat carries the key event's time, not the send time.
        assert_eq!(
            c.poll(t0 + Duration::from_millis(60), 1060),
            Some((OperatorCommand::Drive(tw), 1000))
        );
        assert_eq!(c.held(), Some(tw));
        assert_eq!(
            c.poll(t0 + Duration::from_millis(300), 1300),
            Some((OperatorCommand::Release, 1300))
        );
        assert_eq!(c.held(), None);
        assert_eq!(c.poll(t0 + Duration::from_millis(400), 1400), None);
    }

    #[test]
    fn the_health_object_has_every_named_field_before_and_after_reports() {
        let mut m = Model::new("robot", "tcp/127.0.0.1:7447");
        let now = Instant::now();
        let names = [
            "rate_hz",
            "missed",
            "jitter_us",
            "drowsiness",
            "estop",
            "source",
            "odom",
            "regions",
            "instruction",
        ];
        let j = m.health_json(now);
        for k in names {
            assert!(j.get(k).is_some(), "{k} missing before any report");
        }
        assert_eq!(j["connected"], false);
        let h = LoopHealthMsg {
            schema_version: crate::bus::wire::SCHEMA_VERSION,
            rate_hz: 50.0,
            jitter_p99_us: 12.0,
            drowsiness: 0.25,
            regions: vec![crate::bus::wire::RegionFreshnessMsg {
                region: "vision".into(),
                fresh: true,
                latency_ms: 1.5,
                ..Default::default()
            }],
            ..Default::default()
        };
        m.on_health(&h.to_cdr(), now);
        let mut s = BrainStatus {
            source: "teleop:operator".into(),
            ..Default::default()
        };
        s.odom.x = 1.25;
        let mut b = Vec::new();
        s.encode(&mut b);
        m.on_status(&b, now);
        m.on_status(b"{not json", now);
        let j = m.health_json(now);
        assert_eq!(j["connected"], true);
        assert_eq!(j["rate_hz"], 50.0);
        assert_eq!(j["jitter_us"]["p99"], 12.0);
        assert_eq!(j["regions"]["vision"]["fresh"], true);
        assert_eq!(j["regions"]["vision"]["latency_ms"], 1.5);
        assert_eq!(j["source"], "teleop:operator");
        assert_eq!(j["odom"]["x"], 1.25);
        assert_eq!(j["console"]["bad_samples"], 1);
        assert_eq!(m.drowsiness.len(), 1);
    }
}
