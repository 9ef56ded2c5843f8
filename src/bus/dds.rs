//! ROS 2 over DDS without a ROS 2 installation (cargo feature `dds`).
//!
//! [`DdsBridge`] is a bridge between brainloop's in-process [`Bus`] and a real ROS 2 graph,
//! using the pure-Rust `ros2-client` / `rustdds` stack: it speaks RTPS with the same topic names
//! (`rt/...`), type names (`geometry_msgs::msg::dds_::Twist_`, ...) and CDR payloads as a node on
//! `rmw_cyclonedds` or `rmw_fastrtps`, and it announces itself on `ros_discovery_info`, so
//! `ros2 topic echo`, `teleop_twist_keyboard` or a Gazebo bridge talk to it directly. It is the
//! buildable-here twin of the r2r node in `src/ros2` (which needs a sourced ROS 2 installation);
//! both translate with the one mapping in [`ros_map`] (topics, types, rules):
//!
//! * in: `/brainloop/instruction` -> [`INSTRUCTION`]; `/brainloop/teleop/cmd_vel` and
//!   `/brainloop/estop` -> [`TELEOP_REMOTE`] (the override mux's `remote` source; a non-finite
//!   twist is rejected, and only a `true -> false` edge of the e-stop clears);
//! * out: [`CMD_VEL`] -> `/cmd_vel` (RELIABLE, VOLATILE, KEEP_LAST 10), and the latest
//!   [`DROWSINESS`] -> `/brainloop/drowsiness` at a fixed period.
//!
//! [`INSTRUCTION`]: crate::bus::topics::INSTRUCTION
//! [`TELEOP_REMOTE`]: crate::bus::topics::TELEOP_REMOTE
//! [`CMD_VEL`]: crate::bus::topics::CMD_VEL
//! [`DROWSINESS`]: crate::bus::topics::DROWSINESS
//!
//! The bridge does not know who listens on the bus: in `brainloop run`, teleop forwarders hand
//! the remote commands to the motor stage's lock-free input and the instructions to the language
//! region, and the supervisor publishes the integrator's `/cmd_vel` and drowsiness.
//!
//! Checked here without ROS 2: the payload bytes equal our CDR encoder's (itself checked against
//! rosbags), and `tests/dds_interop.rs` exchanges traffic both ways with Eclipse Cyclone DDS
//! (what a node on `rmw_cyclonedds` sees) inside a private network namespace.
//!
//! Real time: everything DDS and everything bus happens on the bridge's own thread (it checks
//! the bus every 5 ms). For a caller on the integrator thread there is also [`DdsOutlet`]: it
//! only stores into an atomic cell or `try_send`s into a bounded channel and pokes an eventfd
//! ([`DdsOutlet::cmd_vel`]): no lock, no allocation, never blocks. On shutdown the bridge
//! publishes a zero twist (deactivating writes zero).

use crate::bus::ros_map::{
    self, BoolMsg, Float32Msg, Inbound, Outbound, Outcome, StringMsg, TwistMsg,
};
use crate::bus::Bus;
use crate::msg::Twist;
use crossbeam_channel::{bounded, Receiver, Sender};
use crossbeam_utils::atomic::AtomicCell;
use ros2_client::dds::rustdds::mio1::{Events, Interest, Poll, Token, Waker};
use ros2_client::dds::{Context, ContextOptions, Node, Publisher, Subscription};
use ros2_client::qos::{Durability, History, WhenFull};
use ros2_client::{MessageTypeName, Name, NodeName, NodeOptions, QosProfile};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ public API

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
    /// Outgoing `/cmd_vel` queue depth, of the outlet and of the bus subscription (commands
    /// beyond it are dropped and counted).
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
            max_instruction_bytes: ros_map::MAX_INSTRUCTION_BYTES,
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
    /// Instructions delivered on the bus.
    pub instructions: u64,
    /// Teleop twists delivered on the bus.
    pub teleop: u64,
    /// E-stop / clear commands delivered on the bus.
    pub estop: u64,
    /// Incoming messages rejected (undecodable, non-finite, too long).
    pub rejected: u64,
    /// Incoming messages dropped on the bus (nobody subscribes, or a full queue).
    pub dropped_in: u64,
    /// `/cmd_vel` messages published.
    pub cmd_vel_published: u64,
    /// `/cmd_vel` commands dropped before publishing (outlet queue full, or non-finite).
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

/// A direct way into the outgoing topics besides the bus, for a caller that must not take the
/// bus's lock (the integrator tick): cheap to clone, no lock, no allocation, never blocks.
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
        if !t.is_finite() {
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

/// A running DDS node bridging a [`Bus`]: see the module docs. Dropping it stops the thread
/// (after publishing a zero twist on `/cmd_vel`).
pub struct DdsBridge {
    outlet: DdsOutlet,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DdsBridge {
    /// Start the node as a bridge to `bus`: what arrives from ROS 2 is published on the bus
    /// (see the module docs), and the bus's `topics::CMD_VEL` and `topics::DROWSINESS` are
    /// published on ROS 2. Subscribe to the bus's topics before starting, or the first messages
    /// find nobody ([`DdsStats::dropped_in`]). Returns once the participant, node and all
    /// endpoints exist (or failed).
    pub fn start<B: Bus + 'static>(cfg: DdsConfig, bus: B) -> Result<Self, DdsError> {
        if cfg.domain_id > 232 {
            return Err(DdsError::Config(format!(
                "domain_id must be 0..=232, got {}",
                cfg.domain_id
            )));
        }
        if cfg.drowsiness_period.is_zero() {
            return Err(DdsError::Config("drowsiness_period must be > 0".into()));
        }
        let outbound = Outbound::new(&bus, cfg.cmd_queue.max(1));
        let inbound = Inbound::new(bus, cfg.max_instruction_bytes, cfg.clock);
        Self::start_inner(cfg, inbound, outbound)
    }

    /// The handle the brain publishes through.
    pub fn outlet(&self) -> DdsOutlet {
        self.outlet.clone()
    }

    /// Current counters.
    pub fn stats(&self) -> DdsStats {
        self.counters.snapshot()
    }

    fn start_inner<B: Bus + 'static>(
        cfg: DdsConfig,
        inbound: Inbound<B>,
        outbound: Outbound,
    ) -> Result<Self, DdsError> {
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
                    inbound,
                    outbound,
                    cmd_rx,
                    drowsiness,
                    counters: c2,
                    stop: s2,
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
        let topic = |t: ros_map::RosTopic| {
            let ty = MessageTypeName::new(t.package, t.type_name);
            node.create_topic(&topic_name(t.name)?, ty, &qos)
                .map_err(|e| create_err(t.name)(e.to_string()))
        };
        let t_instr = topic(ros_map::INSTRUCTION)?;
        let t_teleop = topic(ros_map::TELEOP_CMD_VEL)?;
        let t_estop = topic(ros_map::ESTOP)?;
        let t_cmd = topic(ros_map::CMD_VEL)?;
        let t_drowsy = topic(ros_map::DROWSINESS)?;
        let e =
            |what: &'static str| move |e: ros2_client::CreateError| create_err(what)(e.to_string());
        Ok(Self {
            instr: node
                .create_subscription(&t_instr, None)
                .map_err(e(ros_map::INSTRUCTION.name))?,
            teleop: node
                .create_subscription(&t_teleop, None)
                .map_err(e(ros_map::TELEOP_CMD_VEL.name))?,
            estop: node
                .create_subscription(&t_estop, None)
                .map_err(e(ros_map::ESTOP.name))?,
            cmd_vel: node
                .create_publisher(&t_cmd, None)
                .map_err(e(ros_map::CMD_VEL.name))?,
            drowsy: node
                .create_publisher(&t_drowsy, None)
                .map_err(e(ros_map::DROWSINESS.name))?,
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

struct Loop<B> {
    cfg: DdsConfig,
    poll: Poll,
    inbound: Inbound<B>,
    outbound: Outbound,
    cmd_rx: Receiver<Twist>,
    drowsiness: Arc<AtomicCell<f32>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

/// Longest wait between two looks at the bus.
const BUS_POLL: Duration = Duration::from_millis(5);

impl<B: Bus> Loop<B> {
    fn run(&mut self, ep: &mut Endpoints) {
        let mut events = Events::with_capacity(16);
        let period = self.cfg.drowsiness_period;
        let mut next_drowsy = Instant::now() + period;
        while !self.stop.load(Ordering::Relaxed) {
            let timeout = next_drowsy
                .saturating_duration_since(Instant::now())
                .min(BUS_POLL);
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
            if let Some(d) = self.outbound.latest_drowsiness() {
                self.drowsiness.store(d.data);
            }
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

    /// Account for what became of an incoming message on `topic`.
    fn count_in(&self, topic: &str, o: Outcome, delivered: impl Fn(&Counters) -> &AtomicU64) {
        match o {
            Outcome::Delivered => bump(delivered(&self.counters)),
            Outcome::Dropped => bump(&self.counters.dropped_in),
            Outcome::Ignored => {}
            Outcome::Rejected(why) => self.reject(topic, &why),
        }
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
        let topic = ros_map::INSTRUCTION.name;
        for _ in 0..MAX_TAKE {
            match ep.instr.take() {
                Ok(Some((m, _))) => {
                    let o = self.inbound.instruction(m);
                    self.count_in(topic, o, |c| &c.instructions);
                }
                Ok(None) => break,
                Err(e) => self.reject(topic, &e),
            }
        }
    }

    fn drain_teleop(&mut self, ep: &Endpoints) {
        let topic = ros_map::TELEOP_CMD_VEL.name;
        for _ in 0..MAX_TAKE {
            match ep.teleop.take() {
                Ok(Some((m, _))) => {
                    let o = self.inbound.teleop(&m);
                    self.count_in(topic, o, |c| &c.teleop);
                }
                Ok(None) => break,
                Err(e) => self.reject(topic, &e),
            }
        }
    }

    fn drain_estop(&mut self, ep: &Endpoints) {
        let topic = ros_map::ESTOP.name;
        for _ in 0..MAX_TAKE {
            match ep.estop.take() {
                Ok(Some((m, _))) => {
                    let o = self.inbound.estop(m);
                    self.count_in(topic, o, |c| &c.estop);
                }
                Ok(None) => break,
                Err(e) => self.reject(topic, &e),
            }
        }
    }

    /// Publish the outlet's and the bus's twists on `/cmd_vel`, oldest first per source.
    fn publish_commands(&mut self, ep: &Endpoints) {
        for _ in 0..MAX_TAKE {
            let outlet = self
                .cmd_rx
                .try_recv()
                .ok()
                .map(|t| ros_map::cmd_vel(t).ok_or(ros_map::Rejected::NonFinite));
            let bus = self.outbound.next_cmd_vel();
            if outlet.is_none() && bus.is_none() {
                break;
            }
            for m in [outlet, bus].into_iter().flatten() {
                match m {
                    Ok(msg) => {
                        let ok = ep.cmd_vel.publish(msg).is_ok();
                        self.count_publish(ok, |c| &c.cmd_vel_published);
                    }
                    Err(_) => bump(&self.counters.cmd_vel_dropped),
                }
            }
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
pub use crate::util::monotonic_ns;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::cdr::{RosBool, RosFloat32, RosMessage, RosString};
    use crate::bus::LocalBus;
    use ros2_client::dds::rustdds::serialization::{
        deserialize_from_cdr_with_rep_id, to_writer_with_rep_id,
    };
    use ros2_client::dds::rustdds::RepresentationIdentifier;
    use serde::{Deserialize, Serialize};

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

    /// The bytes the DDS stack puts on the wire for `ros_map`'s message layouts are the bytes
    /// of our own CDR encoder, which is checked against rosbags (tests/cdr.rs): three encoders
    /// agree.
    #[test]
    fn wire_bytes_match_our_cdr_encoder() {
        let t = Twist {
            linear: 0.25,
            angular: -1.5,
        };
        let msg = ros_map::cmd_vel(t).unwrap();
        assert_eq!(rustdds_bytes(&msg), t.to_cdr());
        assert_eq!(Twist::from_cdr(&rustdds_bytes(&msg)).unwrap(), t);
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
            rustdds_bytes(&ros_map::drowsiness(0.75).unwrap()),
            RosFloat32(0.75).to_cdr()
        );
        let back: TwistMsg = rustdds_decode(&t.to_cdr());
        assert_eq!(ros_map::planar_twist(&back), Some(t));
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
    fn topic_names_split_into_namespace_and_base() {
        for t in ros_map::ALL {
            assert_eq!(topic_name(t.name).unwrap().to_string(), t.name);
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
            DdsBridge::start(cfg, LocalBus::new()),
            Err(DdsError::Config(_))
        ));
        let cfg = DdsConfig {
            drowsiness_period: Duration::ZERO,
            ..DdsConfig::default()
        };
        assert!(matches!(
            DdsBridge::start(cfg, LocalBus::new()),
            Err(DdsError::Config(_))
        ));
    }
}
