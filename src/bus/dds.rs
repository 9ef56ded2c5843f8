//! ROS 2 over DDS without a ROS 2 installation (cargo feature `dds`).
//!
//! [`DdsBridge`] puts the brain on a real ROS 2 graph using the pure-Rust `ros2-client` /
//! `rustdds` stack: it speaks RTPS with the same topic names (`rt/...`), type names
//! (`geometry_msgs::msg::dds_::Twist_`, ...) and CDR payloads as a node on `rmw_cyclonedds` or
//! `rmw_fastrtps`, and it announces itself on `ros_discovery_info`, so `ros2 topic echo`,
//! `teleop_twist_keyboard` or a Gazebo bridge talk to it directly. It is the buildable-here
//! twin of the r2r bridge in `src/ros2` (which needs a sourced ROS 2 installation).
//!
//! Into the brain (ROS 2 -> brainloop), each forwarded as a plain brainloop message:
//! * `/brainloop/instruction` (`std_msgs/msg/String`) -> [`Instruction`];
//! * `/brainloop/teleop/cmd_vel` (`geometry_msgs/msg/Twist`) -> [`TeleopCommand::Drive`]
//!   (non-finite twists are rejected here; the motor stage still clamps and rate-limits);
//! * `/brainloop/estop` (`std_msgs/msg/Bool`) -> `true`: [`TeleopCommand::Estop`] (every time);
//!   `false`: [`TeleopCommand::ClearEstop`] only on a `true -> false` edge of this topic, so a
//!   publisher repeating `false` as a heartbeat cannot clear an e-stop latched elsewhere.
//!
//! Out of the brain (brainloop -> ROS 2), through the cheap, cloneable [`DdsOutlet`]:
//! * `/cmd_vel` (`geometry_msgs/msg/Twist`, RELIABLE, VOLATILE, KEEP_LAST 10);
//! * `/brainloop/drowsiness` (`std_msgs/msg/Float32`), latest value at a fixed period.
//!
//! Where incoming messages go is chosen at start: any non-blocking closure
//! ([`DdsBridge::start`]), a bounded channel ([`DdsBridge::start_channel`]), brainloop's
//! [`Bus`] topics ([`DdsBridge::start_on_bus`], which also publishes the bus's
//! [`topics::CMD_VEL`] on `/cmd_vel`), or straight into the motor stage's lock-free
//! [`TeleopInput`] ([`DdsBridge::start_with_teleop`]).
//!
//! Checked here without ROS 2: the payload bytes equal our CDR encoder's (itself checked against
//! rosbags), and `tests/dds_interop.rs` exchanges traffic both ways with Eclipse Cyclone DDS
//! (what a node on `rmw_cyclonedds` sees) inside a private network namespace.
//!
//! Real time: everything DDS happens on the bridge's own thread. The integrator side only
//! stores into an atomic cell or `try_send`s into a bounded channel and pokes an eventfd
//! ([`DdsOutlet::cmd_vel`]): no lock, no allocation, never blocks. On shutdown the bridge
//! publishes a zero twist (deactivating writes zero).

use crate::bus::{topics, Bus};
use crate::msg::{Instruction, TeleopCommand, Twist};
use crate::teleop::TeleopInput;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use crossbeam_utils::atomic::AtomicCell;
use ros2_client::dds::rustdds::mio1::{Events, Interest, Poll, Token, Waker};
use ros2_client::dds::{Context, ContextOptions, Node, Publisher, Subscription};
use ros2_client::qos::{Durability, History, WhenFull};
use ros2_client::{MessageTypeName, Name, NodeName, NodeOptions, QosProfile};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// ROS 2 topic names used by the bridge.
pub mod names {
    /// Instructions in (`std_msgs/msg/String`).
    pub const INSTRUCTION: &str = "/brainloop/instruction";
    /// Teleop twists in (`geometry_msgs/msg/Twist`).
    pub const TELEOP_CMD_VEL: &str = "/brainloop/teleop/cmd_vel";
    /// E-stop in (`std_msgs/msg/Bool`).
    pub const ESTOP: &str = "/brainloop/estop";
    /// Velocity commands out (`geometry_msgs/msg/Twist`).
    pub const CMD_VEL: &str = "/cmd_vel";
    /// Drowsiness out (`std_msgs/msg/Float32`).
    pub const DROWSINESS: &str = "/brainloop/drowsiness";
}

// ------------------------------------------------------------------ wire types (CDR via serde)

/// `geometry_msgs/msg/Vector3`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Vector3 {
    x: f64,
    y: f64,
    z: f64,
}

/// `geometry_msgs/msg/Twist`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct TwistMsg {
    linear: Vector3,
    angular: Vector3,
}

impl From<Twist> for TwistMsg {
    fn from(t: Twist) -> Self {
        TwistMsg {
            linear: Vector3 {
                x: t.linear,
                ..Vector3::default()
            },
            angular: Vector3 {
                z: t.angular,
                ..Vector3::default()
            },
        }
    }
}

/// `std_msgs/msg/String`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct StringMsg {
    data: String,
}

/// `std_msgs/msg/Bool`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct BoolMsg {
    data: bool,
}

/// `std_msgs/msg/Float32`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Float32Msg {
    data: f32,
}

// ------------------------------------------------------------------ public API

/// What the ROS 2 graph sends to the brain.
#[derive(Debug, Clone, PartialEq)]
pub enum FromRos {
    /// A new instruction.
    Instruction(Instruction),
    /// A teleop command (drive, e-stop, clear).
    Teleop(TeleopCommand),
}

/// Settings of the DDS bridge.
#[derive(Debug, Clone)]
pub struct DdsConfig {
    /// DDS domain (ROS 2's `ROS_DOMAIN_ID`), 0..=232.
    pub domain_id: u16,
    /// Node namespace, `/` or `/a/b`.
    pub namespace: String,
    /// Node name.
    pub node_name: String,
    /// Period of `/brainloop/drowsiness`.
    pub drowsiness_period: Duration,
    /// Longest instruction accepted, in bytes; longer ones are rejected.
    pub max_instruction_bytes: usize,
    /// Outgoing `/cmd_vel` queue depth (commands beyond it are dropped and counted).
    pub cmd_queue: usize,
    /// Monotonic clock stamping incoming instructions, in nanoseconds.
    pub clock: fn() -> u64,
}

impl Default for DdsConfig {
    fn default() -> Self {
        Self {
            domain_id: 0,
            namespace: "/".into(),
            node_name: "brainloop".into(),
            drowsiness_period: Duration::from_millis(100),
            max_instruction_bytes: 1024,
            cmd_queue: 16,
            clock: monotonic_ns,
        }
    }
}

impl DdsConfig {
    /// Defaults, with the domain from `ROS_DOMAIN_ID` when it is set.
    pub fn from_env() -> Result<Self, DdsError> {
        let mut c = Self::default();
        if let Ok(v) = std::env::var("ROS_DOMAIN_ID") {
            c.domain_id = parse_domain_id(&v)?;
        }
        Ok(c)
    }
}

/// Parse a `ROS_DOMAIN_ID` value (0..=232; blank means 0, as in ROS 2).
fn parse_domain_id(v: &str) -> Result<u16, DdsError> {
    if v.trim().is_empty() {
        return Ok(0);
    }
    v.trim()
        .parse::<u16>()
        .ok()
        .filter(|d| *d <= 232)
        .ok_or_else(|| {
            DdsError::Config(format!(
                "ROS_DOMAIN_ID must be an integer 0..=232, got {v:?}"
            ))
        })
}

/// Errors starting the DDS bridge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DdsError {
    /// A setting is out of range.
    #[error("DDS bridge config: {0}")]
    Config(String),
    /// The DDS participant, node, topics or endpoints could not be created.
    #[error("DDS: cannot create {what}: {reason}")]
    Create {
        /// What was being created.
        what: String,
        /// The middleware's reason.
        reason: String,
    },
    /// The bridge thread or its event loop could not be started.
    #[error("DDS bridge thread: {0}")]
    Io(#[from] std::io::Error),
}

/// Counters of a running bridge (a snapshot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DdsStats {
    /// Instructions forwarded to the brain.
    pub instructions: u64,
    /// Teleop twists forwarded.
    pub teleop: u64,
    /// E-stop / clear commands forwarded.
    pub estop: u64,
    /// Incoming messages rejected (undecodable, non-finite, too long).
    pub rejected: u64,
    /// Incoming messages dropped because the brain's queue was full.
    pub dropped_in: u64,
    /// `/cmd_vel` messages published.
    pub cmd_vel_published: u64,
    /// `/cmd_vel` commands dropped before publishing (queue full or non-finite).
    pub cmd_vel_dropped: u64,
    /// `/brainloop/drowsiness` messages published.
    pub drowsiness_published: u64,
    /// Publish calls the middleware refused.
    pub publish_errors: u64,
}

#[derive(Default)]
struct Counters {
    instructions: AtomicU64,
    teleop: AtomicU64,
    estop: AtomicU64,
    rejected: AtomicU64,
    dropped_in: AtomicU64,
    cmd_vel_published: AtomicU64,
    cmd_vel_dropped: AtomicU64,
    drowsiness_published: AtomicU64,
    publish_errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> DdsStats {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DdsStats {
            instructions: l(&self.instructions),
            teleop: l(&self.teleop),
            estop: l(&self.estop),
            rejected: l(&self.rejected),
            dropped_in: l(&self.dropped_in),
            cmd_vel_published: l(&self.cmd_vel_published),
            cmd_vel_dropped: l(&self.cmd_vel_dropped),
            drowsiness_published: l(&self.drowsiness_published),
            publish_errors: l(&self.publish_errors),
        }
    }
}

/// The brain's side of the outgoing topics: cheap to clone, safe to call from the integrator
/// tick (no lock, no allocation, never blocks).
#[derive(Clone)]
pub struct DdsOutlet {
    cmd_tx: Sender<Twist>,
    drowsiness: Arc<AtomicCell<f32>>,
    waker: Arc<Waker>,
    counters: Arc<Counters>,
}

impl DdsOutlet {
    /// Queue a velocity command for `/cmd_vel`. Returns `false` (and counts it) when the
    /// command is not finite or the queue is full; the next tick sends a fresher one anyway.
    pub fn cmd_vel(&self, t: Twist) -> bool {
        if !(t.linear.is_finite() && t.angular.is_finite()) {
            bump(&self.counters.cmd_vel_dropped);
            return false;
        }
        match self.cmd_tx.try_send(t) {
            Ok(()) => {
                // eventfd write: a non-blocking syscall; the bridge thread publishes at once.
                let _ = self.waker.wake();
                true
            }
            Err(_) => {
                bump(&self.counters.cmd_vel_dropped);
                false
            }
        }
    }

    /// Store the latest drowsiness; the bridge publishes it every `drowsiness_period`.
    /// Non-finite values are ignored.
    pub fn set_drowsiness(&self, d: f32) {
        if d.is_finite() {
            self.drowsiness.store(d);
        }
    }
}

/// A running DDS node: see the module docs. Dropping it stops the thread (after publishing a
/// zero twist on `/cmd_vel`).
pub struct DdsBridge {
    outlet: DdsOutlet,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DdsBridge {
    /// Start the node; incoming messages are handed to `sink`, which must not block and
    /// returns `false` when it had to drop the message (counted in [`DdsStats::dropped_in`]).
    /// Returns once the participant, node and all endpoints exist (or failed).
    pub fn start<F>(cfg: DdsConfig, sink: F) -> Result<Self, DdsError>
    where
        F: FnMut(FromRos) -> bool + Send + 'static,
    {
        Self::start_inner(cfg, Box::new(sink), None)
    }

    /// Start the node with a bounded channel of `depth` messages as the sink.
    pub fn start_channel(
        cfg: DdsConfig,
        depth: usize,
    ) -> Result<(Self, Receiver<FromRos>), DdsError> {
        let (tx, rx) = bounded(depth.max(1));
        let sink = move |m: FromRos| match tx.try_send(m) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        };
        Ok((Self::start(cfg, sink)?, rx))
    }

    /// Start the node on a brainloop [`Bus`]: instructions go to [`topics::INSTRUCTION`],
    /// teleop and e-stop to [`topics::TELEOP`], and every [`topics::CMD_VEL`] twist on the
    /// bus is published on `/cmd_vel` (checked every 5 ms, in addition to the outlet).
    pub fn start_on_bus<B: Bus + 'static>(cfg: DdsConfig, bus: B) -> Result<Self, DdsError> {
        let cmd_sub = bus.subscribe(topics::CMD_VEL, 16);
        let sink = move |m: FromRos| {
            match m {
                FromRos::Instruction(i) => bus.publish(topics::INSTRUCTION, &i),
                FromRos::Teleop(t) => bus.publish(topics::TELEOP, &t),
            }
            true
        };
        let pull = Box::new(move || cmd_sub.try_recv());
        Self::start_inner(cfg, Box::new(sink), Some(pull))
    }

    /// Start the node feeding the integrator directly: teleop and e-stop go into the
    /// lock-free [`TeleopInput`] the motor stage reads each tick (stamped with `cfg.clock`, so
    /// its staleness timeout applies), instructions into `instructions` (bounded; full drops).
    pub fn start_with_teleop(
        cfg: DdsConfig,
        teleop: Arc<TeleopInput>,
        instructions: Sender<Instruction>,
    ) -> Result<Self, DdsError> {
        let sink = teleop_sink(teleop, instructions, cfg.clock);
        Self::start(cfg, sink)
    }

    /// The handle the brain publishes through.
    pub fn outlet(&self) -> DdsOutlet {
        self.outlet.clone()
    }

    /// Current counters.
    pub fn stats(&self) -> DdsStats {
        self.counters.snapshot()
    }

    fn start_inner(
        cfg: DdsConfig,
        sink: Box<dyn FnMut(FromRos) -> bool + Send>,
        pull: Option<Box<dyn FnMut() -> Option<Twist> + Send>>,
    ) -> Result<Self, DdsError> {
        if cfg.domain_id > 232 {
            return Err(DdsError::Config(format!(
                "domain_id must be 0..=232, got {}",
                cfg.domain_id
            )));
        }
        if cfg.drowsiness_period.is_zero() {
            return Err(DdsError::Config("drowsiness_period must be > 0".into()));
        }
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        let (cmd_tx, cmd_rx) = bounded(cfg.cmd_queue.max(1));
        let counters = Arc::new(Counters::default());
        let drowsiness = Arc::new(AtomicCell::new(0.0f32));
        let stop = Arc::new(AtomicBool::new(false));
        let outlet = DdsOutlet {
            cmd_tx,
            drowsiness: drowsiness.clone(),
            waker: waker.clone(),
            counters: counters.clone(),
        };
        let (ready_tx, ready_rx) = bounded::<Result<(), DdsError>>(1);
        let (c2, s2) = (counters.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("dds-bridge".into())
            .spawn(move || {
                // DDS entities are created on this thread so they never cross threads.
                let mut ep = match Endpoints::create(&cfg) {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                if let Err(e) = ep.register(&poll) {
                    let _ = ready_tx.send(Err(e.into()));
                    return;
                }
                let _ = ready_tx.send(Ok(()));
                let mut io = Loop {
                    cfg,
                    poll,
                    sink,
                    pull,
                    cmd_rx,
                    drowsiness,
                    counters: c2,
                    stop: s2,
                    estop_seen: false,
                };
                io.run(&mut ep);
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                outlet,
                counters,
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(DdsError::Create {
                    what: "bridge thread".into(),
                    reason: "it exited during start-up".into(),
                })
            }
        }
    }
}

impl Drop for DdsBridge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.outlet.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ------------------------------------------------------------------ the bridge thread

const INSTR: Token = Token(0);
const TELEOP: Token = Token(1);
const ESTOP: Token = Token(2);
const WAKE: Token = Token(3);
/// Most samples taken from one reader per wake-up (bounds the work when a peer floods us).
const MAX_TAKE: usize = 256;

struct Endpoints {
    // Field order = drop order: endpoints before the node, the node before the context.
    instr: Subscription<StringMsg>,
    teleop: Subscription<TwistMsg>,
    estop: Subscription<BoolMsg>,
    cmd_vel: Publisher<TwistMsg>,
    drowsy: Publisher<Float32Msg>,
    _node: Node,
    _ctx: Context,
}

fn create_err(what: &str) -> impl FnOnce(String) -> DdsError + '_ {
    move |reason| DdsError::Create {
        what: what.to_string(),
        reason,
    }
}

/// `"/a/b/c"` -> namespace `/a/b`, base `c`.
fn topic_name(path: &str) -> Result<Name, DdsError> {
    let (ns, base) = path.rsplit_once('/').unwrap_or(("", path));
    let ns = if ns.is_empty() { "/" } else { ns };
    Name::new(ns, base).map_err(|e| create_err(path)(e.to_string()))
}

impl Endpoints {
    fn create(cfg: &DdsConfig) -> Result<Self, DdsError> {
        let ctx = Context::with_options(ContextOptions::new().domain_id(cfg.domain_id))
            .map_err(|e| create_err("DDS participant")(e.to_string()))?;
        let node_name = NodeName::new(&cfg.namespace, &cfg.node_name)
            .map_err(|e| create_err("node name")(e.to_string()))?;
        let mut node = ctx
            .new_node(node_name, NodeOptions::new().enable_rosout(false))
            .map_err(|e| create_err("node")(e.to_string()))?;
        // The profile of /cmd_vel required by the brief and used by ROS 2 drivers.
        let qos = QosProfile::publisher_default()
            .reliability_reliable(WhenFull::DEFAULT)
            .durability(Durability::Volatile)
            .history(History::KeepLast { depth: 10 });
        let topic = |path: &str, pkg: &str, ty: &str| {
            node.create_topic(&topic_name(path)?, MessageTypeName::new(pkg, ty), &qos)
                .map_err(|e| create_err(path)(e.to_string()))
        };
        let t_instr = topic(names::INSTRUCTION, "std_msgs", "String")?;
        let t_teleop = topic(names::TELEOP_CMD_VEL, "geometry_msgs", "Twist")?;
        let t_estop = topic(names::ESTOP, "std_msgs", "Bool")?;
        let t_cmd = topic(names::CMD_VEL, "geometry_msgs", "Twist")?;
        let t_drowsy = topic(names::DROWSINESS, "std_msgs", "Float32")?;
        let e =
            |what: &'static str| move |e: ros2_client::CreateError| create_err(what)(e.to_string());
        Ok(Self {
            instr: node
                .create_subscription(&t_instr, None)
                .map_err(e(names::INSTRUCTION))?,
            teleop: node
                .create_subscription(&t_teleop, None)
                .map_err(e(names::TELEOP_CMD_VEL))?,
            estop: node
                .create_subscription(&t_estop, None)
                .map_err(e(names::ESTOP))?,
            cmd_vel: node
                .create_publisher(&t_cmd, None)
                .map_err(e(names::CMD_VEL))?,
            drowsy: node
                .create_publisher(&t_drowsy, None)
                .map_err(e(names::DROWSINESS))?,
            _node: node,
            _ctx: ctx,
        })
    }

    fn register(&mut self, poll: &Poll) -> std::io::Result<()> {
        let r = poll.registry();
        r.register(&mut self.instr, INSTR, Interest::READABLE)?;
        r.register(&mut self.teleop, TELEOP, Interest::READABLE)?;
        r.register(&mut self.estop, ESTOP, Interest::READABLE)?;
        Ok(())
    }
}

struct Loop {
    cfg: DdsConfig,
    poll: Poll,
    sink: Box<dyn FnMut(FromRos) -> bool + Send>,
    pull: Option<Box<dyn FnMut() -> Option<Twist> + Send>>,
    cmd_rx: Receiver<Twist>,
    drowsiness: Arc<AtomicCell<f32>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    /// The last e-stop value received on `/brainloop/estop`.
    estop_seen: bool,
}

impl Loop {
    fn run(&mut self, ep: &mut Endpoints) {
        let mut events = Events::with_capacity(16);
        let period = self.cfg.drowsiness_period;
        let mut next_drowsy = Instant::now() + period;
        while !self.stop.load(Ordering::Relaxed) {
            let mut timeout = next_drowsy.saturating_duration_since(Instant::now());
            if self.pull.is_some() {
                timeout = timeout.min(Duration::from_millis(5));
            }
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    tracing::error!("dds bridge: poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            // Readers are edge-triggered: drain all of them on every wake-up.
            self.drain_instructions(ep);
            self.drain_teleop(ep);
            self.drain_estop(ep);
            self.publish_commands(ep);
            let now = Instant::now();
            if now >= next_drowsy {
                let msg = Float32Msg {
                    data: self.drowsiness.load(),
                };
                self.count_publish(ep.drowsy.publish(msg).is_ok(), |c| &c.drowsiness_published);
                next_drowsy += period;
                if next_drowsy <= now {
                    next_drowsy = now + period;
                }
            }
        }
        // Deactivating writes zero.
        let ok = ep.cmd_vel.publish(TwistMsg::default()).is_ok();
        self.count_publish(ok, |c| &c.cmd_vel_published);
    }

    fn count_publish(&self, ok: bool, counter: impl Fn(&Counters) -> &AtomicU64) {
        if ok {
            bump(counter(&self.counters));
        } else {
            bump(&self.counters.publish_errors);
        }
    }

    fn deliver(&mut self, m: FromRos) -> bool {
        let ok = (self.sink)(m);
        if !ok {
            bump(&self.counters.dropped_in);
        }
        ok
    }

    fn reject(&self, what: &str, why: &dyn std::fmt::Display) {
        let n = self.counters.rejected.fetch_add(1, Ordering::Relaxed);
        // One clear line, then one per 100 so a misbehaving peer cannot flood the log.
        if n % 100 == 0 {
            tracing::warn!(
                "dds bridge: rejected a message on {what}: {why} ({} so far)",
                n + 1
            );
        }
    }

    fn drain_instructions(&mut self, ep: &Endpoints) {
        for _ in 0..MAX_TAKE {
            match ep.instr.take() {
                Ok(Some((m, _))) => {
                    if m.data.len() > self.cfg.max_instruction_bytes {
                        let why = format!(
                            "instruction of {} bytes is longer than {}",
                            m.data.len(),
                            self.cfg.max_instruction_bytes
                        );
                        self.reject(names::INSTRUCTION, &why);
                        continue;
                    }
                    let i = Instruction {
                        stamp_ns: (self.cfg.clock)(),
                        text: m.data,
                    };
                    if self.deliver(FromRos::Instruction(i)) {
                        bump(&self.counters.instructions);
                    }
                }
                Ok(None) => break,
                Err(e) => self.reject(names::INSTRUCTION, &e),
            }
        }
    }

    fn drain_teleop(&mut self, ep: &Endpoints) {
        for _ in 0..MAX_TAKE {
            match ep.teleop.take() {
                Ok(Some((m, _))) => match twist_from_msg(&m) {
                    Some(t) => {
                        if self.deliver(FromRos::Teleop(TeleopCommand::Drive(t))) {
                            bump(&self.counters.teleop);
                        }
                    }
                    None => self.reject(names::TELEOP_CMD_VEL, &"non-finite twist"),
                },
                Ok(None) => break,
                Err(e) => self.reject(names::TELEOP_CMD_VEL, &e),
            }
        }
    }

    fn drain_estop(&mut self, ep: &Endpoints) {
        for _ in 0..MAX_TAKE {
            match ep.estop.take() {
                Ok(Some((m, _))) => {
                    let cmd = estop_command(&mut self.estop_seen, m.data);
                    if let Some(c) = cmd {
                        if self.deliver(FromRos::Teleop(c)) {
                            bump(&self.counters.estop);
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => self.reject(names::ESTOP, &e),
            }
        }
    }

    fn publish_commands(&mut self, ep: &Endpoints) {
        let mut pending: [Option<Twist>; 2] = [None, None];
        for _ in 0..MAX_TAKE {
            pending[0] = self.cmd_rx.try_recv().ok();
            pending[1] = self.pull.as_mut().and_then(|p| p());
            if pending.iter().all(Option::is_none) {
                break;
            }
            for t in pending.iter().flatten() {
                if !(t.linear.is_finite() && t.angular.is_finite()) {
                    bump(&self.counters.cmd_vel_dropped);
                    continue;
                }
                let ok = ep.cmd_vel.publish(TwistMsg::from(*t)).is_ok();
                self.count_publish(ok, |c| &c.cmd_vel_published);
            }
        }
    }
}

/// The sink behind [`DdsBridge::start_with_teleop`].
pub fn teleop_sink(
    teleop: Arc<TeleopInput>,
    instructions: Sender<Instruction>,
    clock: fn() -> u64,
) -> impl FnMut(FromRos) -> bool + Send + 'static {
    move |m| match m {
        FromRos::Teleop(c) => {
            teleop.send(c, clock());
            true
        }
        FromRos::Instruction(i) => instructions.try_send(i).is_ok(),
    }
}

/// Planar twist from a ROS twist; `None` when any used component is not finite.
fn twist_from_msg(m: &TwistMsg) -> Option<Twist> {
    let t = Twist {
        linear: m.linear.x,
        angular: m.angular.z,
    };
    (t.linear.is_finite() && t.angular.is_finite()).then_some(t)
}

/// E-stop semantics: every `true` latches; only a `true -> false` edge of this topic clears.
fn estop_command(seen: &mut bool, value: bool) -> Option<TeleopCommand> {
    let was = std::mem::replace(seen, value);
    match (was, value) {
        (_, true) => Some(TeleopCommand::Estop),
        (true, false) => Some(TeleopCommand::ClearEstop),
        (false, false) => None,
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
pub use crate::util::monotonic_ns;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::cdr::{RosBool, RosFloat32, RosMessage, RosString};
    use ros2_client::dds::rustdds::serialization::{
        deserialize_from_cdr_with_rep_id, to_writer_with_rep_id,
    };
    use ros2_client::dds::rustdds::RepresentationIdentifier;

    /// Encode the way the DDS writer does: 4-byte encapsulation header + CDR body.
    fn rustdds_bytes<T: Serialize>(v: &T) -> Vec<u8> {
        let mut out = vec![0x00, 0x01, 0x00, 0x00];
        to_writer_with_rep_id(&mut out, v, RepresentationIdentifier::CDR_LE).unwrap();
        out
    }

    fn rustdds_decode<T: for<'de> Deserialize<'de>>(b: &[u8]) -> T {
        deserialize_from_cdr_with_rep_id(&b[4..], RepresentationIdentifier::CDR_LE)
            .unwrap()
            .0
    }

    /// The bytes the DDS stack puts on the wire are the bytes of our own CDR encoder, which
    /// is checked against rosbags (tests/cdr.rs): three encoders agree.
    #[test]
    fn wire_bytes_match_our_cdr_encoder() {
        let t = Twist {
            linear: 0.25,
            angular: -1.5,
        };
        assert_eq!(rustdds_bytes(&TwistMsg::from(t)), t.to_cdr());
        assert_eq!(
            Twist::from_cdr(&rustdds_bytes(&TwistMsg::from(t))).unwrap(),
            t
        );
        for s in ["", "go to the red ball", "ünïcödé"] {
            let ours = RosString(s.into()).to_cdr();
            // Our encoder adds no trailing padding; the DDS one may not either.
            assert_eq!(rustdds_bytes(&StringMsg { data: s.into() }), ours);
            assert_eq!(rustdds_decode::<StringMsg>(&ours).data, s);
        }
        for b in [false, true] {
            assert_eq!(rustdds_bytes(&BoolMsg { data: b }), RosBool(b).to_cdr());
        }
        assert_eq!(
            rustdds_bytes(&Float32Msg { data: 0.75 }),
            RosFloat32(0.75).to_cdr()
        );
        let back: TwistMsg = rustdds_decode(&t.to_cdr());
        assert_eq!(twist_from_msg(&back), Some(t));
    }

    #[test]
    fn teleop_sink_drives_the_motor_stage_input() {
        fn clock() -> u64 {
            7_000
        }
        let teleop = TeleopInput::new();
        let (tx, rx) = bounded(1);
        let mut sink = teleop_sink(teleop.clone(), tx, clock);
        let t = Twist {
            linear: 0.2,
            angular: 0.1,
        };
        assert!(sink(FromRos::Teleop(TeleopCommand::Drive(t))));
        assert_eq!(teleop.snapshot().unwrap().drive, Some((t, 7_000)));
        assert!(sink(FromRos::Teleop(TeleopCommand::Estop)));
        assert!(teleop.snapshot().unwrap().estop);
        let i = Instruction {
            stamp_ns: 1,
            text: "go".into(),
        };
        assert!(sink(FromRos::Instruction(i.clone())));
        assert!(
            !sink(FromRos::Instruction(i.clone())),
            "full queue reports a drop"
        );
        assert_eq!(rx.try_recv().unwrap(), i);
    }

    #[test]
    fn domain_id_is_validated() {
        assert_eq!(parse_domain_id("").unwrap(), 0);
        assert_eq!(parse_domain_id(" 42 ").unwrap(), 42);
        assert_eq!(parse_domain_id("232").unwrap(), 232);
        for bad in ["233", "-1", "x", "1.5"] {
            let e = parse_domain_id(bad).unwrap_err().to_string();
            assert!(e.contains("ROS_DOMAIN_ID"), "{e}");
        }
    }

    #[test]
    fn non_finite_teleop_is_rejected() {
        let mut m = TwistMsg::default();
        m.linear.x = f64::NAN;
        assert_eq!(twist_from_msg(&m), None);
        m.linear.x = 0.1;
        m.angular.z = f64::INFINITY;
        assert_eq!(twist_from_msg(&m), None);
        m.angular.z = 0.2;
        assert_eq!(
            twist_from_msg(&m),
            Some(Twist {
                linear: 0.1,
                angular: 0.2
            })
        );
    }

    #[test]
    fn estop_false_heartbeat_never_clears_but_an_edge_does() {
        let mut seen = false;
        assert_eq!(estop_command(&mut seen, false), None);
        assert_eq!(estop_command(&mut seen, false), None);
        assert_eq!(estop_command(&mut seen, true), Some(TeleopCommand::Estop));
        assert_eq!(estop_command(&mut seen, true), Some(TeleopCommand::Estop));
        assert_eq!(
            estop_command(&mut seen, false),
            Some(TeleopCommand::ClearEstop)
        );
        assert_eq!(estop_command(&mut seen, false), None);
    }

    #[test]
    fn topic_names_split_into_namespace_and_base() {
        for p in [
            names::INSTRUCTION,
            names::TELEOP_CMD_VEL,
            names::ESTOP,
            names::CMD_VEL,
            names::DROWSINESS,
        ] {
            assert_eq!(topic_name(p).unwrap().to_string(), p);
        }
        assert!(topic_name("/bad name").is_err());
    }

    #[test]
    fn bad_config_is_refused_before_touching_the_network() {
        let cfg = DdsConfig {
            domain_id: 300,
            ..DdsConfig::default()
        };
        assert!(matches!(
            DdsBridge::start(cfg, |_| true),
            Err(DdsError::Config(_))
        ));
        let cfg = DdsConfig {
            drowsiness_period: Duration::ZERO,
            ..DdsConfig::default()
        };
        assert!(matches!(
            DdsBridge::start(cfg, |_| true),
            Err(DdsError::Config(_))
        ));
    }
}
