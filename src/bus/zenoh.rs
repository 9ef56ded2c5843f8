//! The networked bus: zenoh (1.x, peer mode, no router needed) between the brain's processes,
//! the console and ROS 2 tools on rmw_zenoh.
//!
//! One [`ZenohBus`] per process. It joins the bus as a peer with the configured endpoints
//! (multicast scouting off unless asked: traffic goes only where the endpoints point), and
//! moves messages between this process's in-process [`LocalBus`] and the network with
//! directional routes ([`ZenohBus::route_out`], [`ZenohBus::route_in`]): a process forwards what
//! it produces and subscribes to what it reads, so nothing echoes. Embeddings bypass the local
//! bus: a region process publishes them with an [`EmbeddingPublisher`], and the integrator's
//! process feeds each remote region's lock-free slot straight from the subscriber
//! ([`ZenohBus::feed_slot`]), so the tick reads remote embeddings exactly as local ones.
//!
//! zenoh runs its own tokio runtimes; nothing here ever runs on the integrator's real-time
//! thread. Publishing is non-blocking for the caller's purposes (congestion control `Drop`:
//! a slow link loses the newest sample, it never stalls a region).
//!
//! Key layout (`R` = `[bus].robot`):
//!
//! | key | payload | from |
//! |---|---|---|
//! | `brainloop/R/embedding/<region>` | `brainloop_msgs/msg/Embedding` (CDR) + attachment | region |
//! | `brainloop/R/health` | `brainloop_msgs/msg/LoopHealth` (CDR) | integrator |
//! | `brainloop/R/cmd_vel` | `geometry_msgs/msg/Twist` (CDR) | integrator |
//! | `brainloop/R/drowsiness` | `std_msgs/msg/Float32` (CDR) | integrator |
//! | `brainloop/R/body/state` | body state (JSON) | integrator |
//! | `brainloop/R/instruction` | `std_msgs/msg/String` (CDR) | console, ROS 2 |
//! | `brainloop/R/teleop/<source>` | teleop command (JSON) | console, ROS 2 |
//! | `brainloop/R/alive/<node>` | liveliness token | every node |
//!
//! Every sample carries rmw_zenoh's 33-byte attachment (sequence number, source timestamp,
//! publisher GID). With `ros_compat`, the ROS-typed keys become rmw_zenoh's
//! (`<domain>/<topic>/<dds type>/<type hash>`) and every node declares rmw_zenoh liveliness
//! tokens, so `ros2 topic list` on rmw_zenoh sees `/brainloop/<region>/embedding`,
//! `/brainloop/health`, `/cmd_vel`, ...
//!
//! Bad input from the network (a wrong schema, dimensions, non-finite values, a huge length
//! prefix, a replayed sequence number, a late sample) is dropped and counted per source; it is
//! never fused and never panics.

use super::cdr::{RosFloat32, RosMessage, RosString};
use super::rmw_zenoh::{self, Attachment, Gid, LivelinessToken, Qos};
use super::slots::{EmbeddingRef, SlotWriter};
use super::wire::EmbeddingMsg;
use super::{Bus, LocalBus, Message, Topic};
use crate::msg::{BodyState, Instruction, RegionId, TeleopCommand, Twist, WheelSpeeds};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zenoh::Wait;

/// How a process joins the bus.
#[derive(Debug, Clone, PartialEq)]
pub struct ZenohOptions {
    /// Robot name: `brainloop/<robot>/...`.
    pub robot: String,
    /// Endpoints to listen on.
    pub listen: Vec<String>,
    /// Endpoints to connect to.
    pub connect: Vec<String>,
    /// Multicast scouting.
    pub multicast: bool,
    /// rmw_zenoh key expressions and liveliness tokens.
    pub ros_compat: bool,
    /// ROS 2 domain id for `ros_compat`.
    pub domain_id: u32,
    /// A sample later than the fastest seen from its publisher by more than this is dropped.
    pub max_delay_ns: u64,
    /// User/password authentication and the access-control list.
    pub auth: Option<Auth>,
    /// TLS.
    pub tls: Option<Tls>,
}

impl Default for ZenohOptions {
    fn default() -> Self {
        Self {
            robot: "robot".into(),
            listen: Vec::new(),
            connect: Vec::new(),
            multicast: false,
            ros_compat: false,
            domain_id: 0,
            max_delay_ns: 250_000_000,
            auth: None,
            tls: None,
        }
    }
}

/// zenoh user/password authentication.
#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    /// This process's user.
    pub user: String,
    /// Its password.
    pub password: String,
    /// `user:password` lines accepted from peers.
    pub dictionary_file: PathBuf,
    /// Users that may publish on the drive, e-stop and instruction keys.
    pub operators: Vec<String>,
}

/// TLS certificates.
#[derive(Debug, Clone, PartialEq)]
pub struct Tls {
    /// CA (PEM).
    pub root_ca_certificate: PathBuf,
    /// This process's certificate (PEM).
    pub listen_certificate: PathBuf,
    /// Its key (PEM).
    pub listen_private_key: PathBuf,
}

/// Errors joining or using the bus.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZenohError {
    /// zenoh refused the configuration or could not open the session.
    #[error("zenoh: {0}")]
    Zenoh(String),
    /// A file named by the configuration could not be read.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

fn zerr(e: impl std::fmt::Display) -> ZenohError {
    ZenohError::Zenoh(e.to_string())
}

// ------------------------------------------------------------------ keys

/// A topic that crosses processes: its bus topic, its key below `brainloop/<robot>/` and, for
/// ROS-typed payloads, its ROS 2 name and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetTopic {
    /// Key below `brainloop/<robot>/`.
    pub key: &'static str,
    /// ROS 2 topic and type (`/cmd_vel`, `geometry_msgs/msg/Twist`) when the payload is a
    /// ROS 2 message.
    pub ros: Option<(&'static str, &'static str)>,
}

/// The brain's keys, as a layout for one robot.
#[derive(Debug, Clone)]
pub struct Keys {
    robot: String,
    ros_compat: bool,
    domain_id: u32,
}

impl Keys {
    /// The layout of `opts`.
    pub fn new(opts: &ZenohOptions) -> Self {
        Self {
            robot: opts.robot.clone(),
            ros_compat: opts.ros_compat,
            domain_id: opts.domain_id,
        }
    }
    /// `brainloop/<robot>`.
    pub fn prefix(&self) -> String {
        format!("brainloop/{}", self.robot)
    }
    /// The key of `t`.
    pub fn key(&self, t: &NetTopic) -> String {
        match t.ros {
            Some((topic, ty)) if self.ros_compat => {
                rmw_zenoh::topic_key(self.domain_id, topic, ty).unwrap_or_else(|| {
                    // A type without a known hash cannot be on rmw_zenoh's keys: keep it on ours.
                    format!("{}/{}", self.prefix(), t.key)
                })
            }
            _ => format!("{}/{}", self.prefix(), t.key),
        }
    }
    /// The key of `region`'s embeddings.
    pub fn embedding(&self, region: RegionId) -> String {
        self.key(&embedding_topic(region))
    }
    /// The liveliness key of node `name`.
    pub fn alive(&self, node: &str) -> String {
        format!("{}/alive/{node}", self.prefix())
    }
}

/// The net topic of a region's embeddings.
pub fn embedding_topic(region: RegionId) -> NetTopic {
    let (key, ros) = match region {
        RegionId::Vision => ("embedding/vision", "/brainloop/vision/embedding"),
        RegionId::Language => ("embedding/language", "/brainloop/language/embedding"),
        RegionId::Audition => ("embedding/audition", "/brainloop/audition/embedding"),
        RegionId::Proprioception => (
            "embedding/proprioception",
            "/brainloop/proprioception/embedding",
        ),
    };
    NetTopic {
        key,
        ros: Some((ros, "brainloop_msgs/msg/Embedding")),
    }
}

/// Net topics of the bus topics that cross processes.
pub mod net_topics {
    use super::NetTopic;
    /// Loop health.
    pub const HEALTH: NetTopic = NetTopic {
        key: "health",
        ros: Some(("/brainloop/health", "brainloop_msgs/msg/LoopHealth")),
    };
    /// Validated velocity commands.
    pub const CMD_VEL: NetTopic = NetTopic {
        key: "cmd_vel",
        ros: Some(("/cmd_vel", "geometry_msgs/msg/Twist")),
    };
    /// Drowsiness.
    pub const DROWSINESS: NetTopic = NetTopic {
        key: "drowsiness",
        ros: Some(("/brainloop/drowsiness", "std_msgs/msg/Float32")),
    };
    /// Instructions.
    pub const INSTRUCTION: NetTopic = NetTopic {
        key: "instruction",
        ros: Some(("/brainloop/instruction", "std_msgs/msg/String")),
    };
    /// Body state.
    pub const BODY_STATE: NetTopic = NetTopic {
        key: "body/state",
        ros: None,
    };
    /// Teleop of the mux's `console` source.
    pub const TELEOP_CONSOLE: NetTopic = NetTopic {
        key: "teleop/console",
        ros: None,
    };
    /// Teleop of the mux's `remote` source.
    pub const TELEOP_REMOTE: NetTopic = NetTopic {
        key: "teleop/remote",
        ros: None,
    };
    /// Wheel setpoints to a body in another process (the simulated body's node).
    pub const WHEELS: NetTopic = NetTopic {
        key: "body/wheels",
        ros: None,
    };
    /// Camera frames of the simulated body (`sensor_msgs/msg/Image`, rgb8).
    pub const CAMERA: NetTopic = NetTopic {
        key: "camera/image",
        ros: Some(("/brainloop/camera/image_raw", "sensor_msgs/msg/Image")),
    };
    /// Signed commands of the teleop console (`teleop::auth`): only those signed with the
    /// operator key are executed.
    pub const OPERATOR: NetTopic = NetTopic {
        key: "teleop/operator",
        ros: None,
    };
    /// The public e-stop: any sample latches the e-stop (no key needed; clearing needs one).
    pub const ESTOP: NetTopic = NetTopic {
        key: "estop",
        ros: None,
    };
    /// Who drives, the body and the instruction (`msg::BrainStatus`, JSON, 10 Hz).
    pub const STATUS: NetTopic = NetTopic {
        key: "status",
        ros: None,
    };
    /// Keys only operators may publish on (the access-control list denies them to others).
    pub const PROTECTED: [&str; 3] = ["teleop/**", "instruction", "body/wheels"];
}

// ------------------------------------------------------------------ payloads

/// Why a sample from the network was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The payload did not decode (or failed validation).
    #[error("bad payload: {0}")]
    Payload(String),
    /// No attachment, or not 33 bytes.
    #[error("missing or malformed attachment")]
    Attachment,
    /// A sequence number already seen from this publisher.
    #[error("replayed sequence number {0}")]
    Replayed(i64),
    /// Later than its publisher's fastest delivery by more than `max_delay`.
    #[error("late by {0} ms")]
    Late(u64),
    /// The sample's region is not the one this key carries.
    #[error("region {0} on another region's key")]
    WrongRegion(String),
    /// The slot refused it (dimensions, non-finite values).
    #[error("slot: {0}")]
    Slot(String),
}

/// A bus message that crosses processes: how it is encoded.
pub trait Wire: Message {
    /// Encode into `out` (cleared first).
    fn encode(&self, out: &mut Vec<u8>);
    /// Decode one payload.
    fn decode(bytes: &[u8]) -> Result<Self, Rejection>;
    /// Stamp a received message with the receiver's clock: across processes, receive time
    /// decides staleness, never the sender's clock.
    fn received(&mut self, _now_ns: u64) {}
}

fn cdr<T: RosMessage>(v: &T, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&v.to_cdr());
}

impl Wire for Twist {
    fn encode(&self, out: &mut Vec<u8>) {
        cdr(self, out)
    }
    fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        let t = Twist::from_cdr(bytes).map_err(|e| Rejection::Payload(e.to_string()))?;
        if !(t.linear.is_finite() && t.angular.is_finite()) {
            return Err(Rejection::Payload("non-finite twist".into()));
        }
        Ok(t)
    }
}

impl Wire for f32 {
    fn encode(&self, out: &mut Vec<u8>) {
        cdr(&RosFloat32(*self), out)
    }
    fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        let v = RosFloat32::from_cdr(bytes)
            .map_err(|e| Rejection::Payload(e.to_string()))?
            .0;
        if !v.is_finite() {
            return Err(Rejection::Payload("non-finite value".into()));
        }
        Ok(v)
    }
}

/// Longest instruction accepted from the network, bytes.
pub const MAX_INSTRUCTION_BYTES: usize = super::ros_map::MAX_INSTRUCTION_BYTES;

impl Wire for Instruction {
    fn encode(&self, out: &mut Vec<u8>) {
        cdr(&RosString(self.text.clone()), out)
    }
    fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        if bytes.len() > MAX_INSTRUCTION_BYTES + 16 {
            return Err(Rejection::Payload(format!(
                "instruction longer than {MAX_INSTRUCTION_BYTES} bytes"
            )));
        }
        let text = RosString::from_cdr(bytes)
            .map_err(|e| Rejection::Payload(e.to_string()))?
            .0;
        if text.trim().is_empty() {
            return Err(Rejection::Payload("empty instruction".into()));
        }
        Ok(Instruction { stamp_ns: 0, text })
    }
    fn received(&mut self, now_ns: u64) {
        self.stamp_ns = now_ns;
    }
}

fn json<T: serde::Serialize>(v: &T, out: &mut Vec<u8>) {
    out.clear();
    // Serialising these plain structs cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Rejection> {
    if bytes.len() > 4096 {
        return Err(Rejection::Payload("longer than 4096 bytes".into()));
    }
    serde_json::from_slice(bytes).map_err(|e| Rejection::Payload(e.to_string()))
}

impl Wire for TeleopCommand {
    fn encode(&self, out: &mut Vec<u8>) {
        json(self, out)
    }
    fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        let c: TeleopCommand = from_json(bytes)?;
        if let TeleopCommand::Drive(t) = c {
            if !(t.linear.is_finite() && t.angular.is_finite()) {
                return Err(Rejection::Payload("non-finite drive command".into()));
            }
        }
        Ok(c)
    }
}

impl Wire for WheelSpeeds {
    fn encode(&self, out: &mut Vec<u8>) {
        json(self, out)
    }
    fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        let w: WheelSpeeds = from_json(bytes)?;
        if !(w.left.is_finite() && w.right.is_finite()) {
            return Err(Rejection::Payload("non-finite wheel speeds".into()));
        }
        Ok(w)
    }
}

impl Wire for crate::msg::BrainStatus {
    fn encode(&self, out: &mut Vec<u8>) {
        json(self, out)
    }
    fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        if bytes.len() > 16384 {
            return Err(Rejection::Payload("longer than 16384 bytes".into()));
        }
        serde_json::from_slice(bytes).map_err(|e| Rejection::Payload(e.to_string()))
    }
}

impl Wire for BodyState {
    fn encode(&self, out: &mut Vec<u8>) {
        json(self, out)
    }
    fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        let s: BodyState = from_json(bytes)?;
        let finite = s.wheel_speed.iter().chain(&s.accel).all(|v| v.is_finite())
            && s.gyro_z.is_finite()
            && s.battery_v.is_finite()
            && s.range.iter().all(|v| v.is_finite())
            && (s.range_count as usize) <= s.range.len();
        if !finite {
            return Err(Rejection::Payload("non-finite body state".into()));
        }
        Ok(s)
    }
    fn received(&mut self, now_ns: u64) {
        self.stamp_ns = now_ns;
    }
}

// ------------------------------------------------------------------ per-source accounting

/// What arrived from one source (a key), counted.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Samples accepted.
    pub received: AtomicU64,
    /// Samples dropped (any [`Rejection`]).
    pub rejected: AtomicU64,
    /// Sequence numbers skipped (samples lost on the way).
    pub gaps: AtomicU64,
    /// Of the rejected: late ones.
    pub late: AtomicU64,
    /// Of the rejected: replayed ones.
    pub replayed: AtomicU64,
    /// Publishers seen after the first (a restarted process rejoining).
    pub rejoins: AtomicU64,
    /// Receive time of the last accepted sample, monotonic ns (0: none yet).
    pub last_ns: AtomicU64,
    /// Pub-to-sub latency of the last accepted embedding, ns (wall clock: exact on one host).
    pub last_delay_ns: AtomicU64,
}

impl SourceStats {
    /// A plain copy of the counters.
    pub fn snapshot(&self) -> SourceSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SourceSnapshot {
            received: l(&self.received),
            rejected: l(&self.rejected),
            gaps: l(&self.gaps),
            late: l(&self.late),
            replayed: l(&self.replayed),
            rejoins: l(&self.rejoins),
            last_ns: l(&self.last_ns),
            last_delay_ns: l(&self.last_delay_ns),
        }
    }
}

/// A copy of [`SourceStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceSnapshot {
    /// Accepted.
    pub received: u64,
    /// Dropped.
    pub rejected: u64,
    /// Sequence gaps.
    pub gaps: u64,
    /// Late.
    pub late: u64,
    /// Replayed.
    pub replayed: u64,
    /// Rejoins.
    pub rejoins: u64,
    /// Last accepted, monotonic ns.
    pub last_ns: u64,
    /// Last delay, ns.
    pub last_delay_ns: u64,
}

/// Order and timing checks of one source: replays and late samples are rejected, gaps
/// counted. A new publisher GID (a restarted process) starts a new sequence.
#[derive(Debug)]
pub struct SequenceCheck {
    gid: Option<Gid>,
    last_seq: i64,
    /// Smallest (receive - source) clock offset seen from this publisher, ns.
    min_offset: i128,
    max_delay_ns: u64,
}

impl SequenceCheck {
    /// A check with `max_delay_ns`.
    pub fn new(max_delay_ns: u64) -> Self {
        Self {
            gid: None,
            last_seq: -1,
            min_offset: i128::MAX,
            max_delay_ns,
        }
    }

    /// Check one sample's attachment received at wall-clock time `wall_now_ns` (the clock of
    /// the attachment's source timestamp; the two clocks need not agree, only their offset
    /// must not grow); on acceptance, counts gaps into `stats` and returns the estimated
    /// pub-to-sub delay beyond the fastest one, ns.
    pub fn accept(
        &mut self,
        att: &Attachment,
        wall_now_ns: i64,
        stats: &SourceStats,
    ) -> Result<u64, Rejection> {
        if self.gid != Some(att.gid) {
            if self.gid.is_some() {
                stats.rejoins.fetch_add(1, Ordering::Relaxed);
            }
            self.gid = Some(att.gid);
            self.last_seq = att.sequence_number - 1;
            self.min_offset = i128::MAX;
        }
        if att.sequence_number <= self.last_seq {
            stats.replayed.fetch_add(1, Ordering::Relaxed);
            return Err(Rejection::Replayed(att.sequence_number));
        }
        let offset = wall_now_ns as i128 - att.source_timestamp as i128;
        self.min_offset = self.min_offset.min(offset);
        let delay = (offset - self.min_offset).max(0) as u64;
        if delay > self.max_delay_ns {
            stats.late.fetch_add(1, Ordering::Relaxed);
            return Err(Rejection::Late(delay / 1_000_000));
        }
        let gap = att.sequence_number - self.last_seq - 1;
        if gap > 0 {
            stats.gaps.fetch_add(gap as u64, Ordering::Relaxed);
        }
        self.last_seq = att.sequence_number;
        Ok(delay)
    }
}

// ------------------------------------------------------------------ the bus

/// This process on the zenoh bus.
pub struct ZenohBus {
    session: zenoh::Session,
    keys: Keys,
    opts: ZenohOptions,
    node: String,
    clock: fn() -> u64,
    gid_seed: u64,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    held: Mutex<Vec<Box<dyn std::any::Any + Send>>>,
    sources: Mutex<HashMap<String, Arc<SourceStats>>>,
    /// The last entity id handed out (publishers and subscriptions; the node is 0).
    entities: AtomicU64,
}

impl std::fmt::Debug for ZenohBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZenohBus")
            .field("node", &self.node)
            .field("zid", &self.session.zid().to_string())
            .finish()
    }
}

/// The zenoh configuration for `opts` (peer mode; multicast scouting per `opts`; endpoints;
/// authentication and access control).
pub fn zenoh_config(opts: &ZenohOptions) -> Result<zenoh::Config, ZenohError> {
    let mut c = zenoh::Config::default();
    let set = |c: &mut zenoh::Config, k: &str, v: String| c.insert_json5(k, &v).map_err(zerr);
    let list = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    set(&mut c, "mode", "\"peer\"".into())?;
    set(
        &mut c,
        "scouting/multicast/enabled",
        opts.multicast.to_string(),
    )?;
    set(&mut c, "listen/endpoints", list(&opts.listen))?;
    set(&mut c, "connect/endpoints", list(&opts.connect))?;
    // Keep trying the connect endpoints: a node may start before the peer it connects to.
    set(&mut c, "connect/timeout_ms", "-1".into())?;
    set(&mut c, "connect/exit_on_failure", "false".into())?;
    if let Some(a) = &opts.auth {
        let s = |v: &str| serde_json::to_string(v).unwrap_or_default();
        set(&mut c, "transport/auth/usrpwd/user", s(&a.user))?;
        set(&mut c, "transport/auth/usrpwd/password", s(&a.password))?;
        set(
            &mut c,
            "transport/auth/usrpwd/dictionary_file",
            s(&a.dictionary_file.to_string_lossy()),
        )?;
        set(&mut c, "access_control", acl_json(opts, a)?)?;
    }
    if let Some(t) = &opts.tls {
        let s = |v: &PathBuf| serde_json::to_string(&v.to_string_lossy()).unwrap_or_default();
        set(
            &mut c,
            "transport/link/tls/root_ca_certificate",
            s(&t.root_ca_certificate),
        )?;
        set(
            &mut c,
            "transport/link/tls/listen_certificate",
            s(&t.listen_certificate),
        )?;
        set(
            &mut c,
            "transport/link/tls/listen_private_key",
            s(&t.listen_private_key),
        )?;
        set(&mut c, "transport/link/tls/enable_mtls", "false".into())?;
    }
    Ok(c)
}

/// The access-control list: every authenticated user that is not an operator is denied
/// publishing on the protected keys (drive, e-stop clear, instruction); everything else is
/// allowed. Peers without valid credentials cannot connect at all.
fn acl_json(opts: &ZenohOptions, a: &Auth) -> Result<String, ZenohError> {
    let dict = std::fs::read_to_string(&a.dictionary_file).map_err(|source| ZenohError::File {
        path: a.dictionary_file.clone(),
        source,
    })?;
    let others: Vec<String> = dict
        .lines()
        .filter_map(|l| l.split_once(':').map(|(u, _)| u.trim().to_string()))
        .filter(|u| !u.is_empty() && !a.operators.contains(u))
        .collect();
    let keys = Keys::new(opts);
    let mut protected: Vec<String> = net_topics::PROTECTED
        .iter()
        .map(|k| format!("{}/{k}", keys.prefix()))
        .collect();
    if let Some(k) = rmw_zenoh::topic_key(
        opts.domain_id,
        "/brainloop/instruction",
        "std_msgs/msg/String",
    ) {
        protected.push(k);
    }
    if others.is_empty() {
        return Ok(r#"{ enabled: false }"#.into());
    }
    let v = serde_json::json!({
        "enabled": true,
        "default_permission": "allow",
        "rules": [{
            "id": "protected",
            "messages": ["put", "delete"],
            "flows": ["ingress"],
            "permission": "deny",
            "key_exprs": protected,
        }],
        "subjects": [{ "id": "not_operators", "usernames": others }],
        "policies": [{ "rules": ["protected"], "subjects": ["not_operators"] }],
    });
    Ok(v.to_string())
}

impl ZenohBus {
    /// Join the bus as node `node` (declares its liveliness token).
    pub fn open(opts: &ZenohOptions, node: &str, clock: fn() -> u64) -> Result<Self, ZenohError> {
        let session = zenoh::open(zenoh_config(opts)?).wait().map_err(zerr)?;
        let zid = session.zid().to_string();
        let gid_seed = zid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        }) ^ clock();
        let bus = Self {
            keys: Keys::new(opts),
            opts: opts.clone(),
            node: node.to_string(),
            clock,
            gid_seed,
            stop: Arc::new(AtomicBool::new(false)),
            threads: Mutex::new(Vec::new()),
            held: Mutex::new(Vec::new()),
            sources: Mutex::new(HashMap::new()),
            entities: AtomicU64::new(0),
            session,
        };
        let token = bus
            .session
            .liveliness()
            .declare_token(bus.keys.alive(node))
            .wait()
            .map_err(zerr)?;
        bus.hold(token);
        if opts.ros_compat {
            let token = bus
                .session
                .liveliness()
                .declare_token(bus.node_token().keyexpr())
                .wait()
                .map_err(zerr)?;
            bus.hold(token);
        }
        tracing::info!(node, zid = %bus.session.zid(), listen = ?opts.listen, connect = ?opts.connect, "on the zenoh bus");
        Ok(bus)
    }

    fn hold<T: Send + 'static>(&self, v: T) {
        if let Ok(mut h) = self.held.lock() {
            h.push(Box::new(v));
        }
    }

    /// The key layout.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The zenoh session (for tools and tests).
    pub fn session(&self) -> &zenoh::Session {
        &self.session
    }

    /// The counters of source `key` (created on first use).
    pub fn source(&self, key: &str) -> Arc<SourceStats> {
        let mut m = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key.to_string()).or_default().clone()
    }

    /// Counters of every source seen, by key.
    pub fn sources(&self) -> Vec<(String, SourceSnapshot)> {
        let m = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = m.iter().map(|(k, s)| (k.clone(), s.snapshot())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// A fresh entity id of this session (unique per publisher and subscription, as rmw_zenoh
    /// requires of the liveliness tokens and GIDs).
    fn next_entity(&self) -> u64 {
        self.entities.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// This process's rmw_zenoh node, at the root namespace, named `brainloop_<node>` so that
    /// `ros2 node list` tells the brain's processes apart.
    fn node_token(&self) -> LivelinessToken {
        LivelinessToken::node(
            self.opts.domain_id,
            &self.session.zid().to_string(),
            0,
            "/",
            "/",
            &format!("brainloop_{}", self.node.replace('-', "_")),
        )
    }

    /// Liveliness tokens of a publisher / subscriber on a ROS-typed topic (`ros_compat`).
    fn declare_entity(&self, t: &NetTopic, publisher: bool, id: u64) -> Result<(), ZenohError> {
        let (Some((topic, ty)), true) = (t.ros, self.opts.ros_compat) else {
            return Ok(());
        };
        let node = self.node_token();
        let qos = Qos::keep_last(10);
        let token = if publisher {
            LivelinessToken::publisher(&node, id, topic, ty, qos)
        } else {
            LivelinessToken::subscription(&node, id, topic, ty, qos)
        };
        let Some(token) = token else {
            return Ok(());
        };
        let token = self
            .session
            .liveliness()
            .declare_token(token.keyexpr())
            .wait()
            .map_err(zerr)?;
        self.hold(token);
        Ok(())
    }

    /// A publisher of raw payloads on `t` with the attachment on every sample.
    pub fn publisher(&self, t: &NetTopic) -> Result<NetPublisher, ZenohError> {
        let id = self.next_entity();
        let key = self.keys.key(t);
        let publisher = self
            .session
            .declare_publisher(key.clone())
            .congestion_control(zenoh::qos::CongestionControl::Drop)
            .express(true)
            .wait()
            .map_err(zerr)?;
        self.declare_entity(t, true, id)?;
        Ok(NetPublisher {
            publisher,
            key,
            gid: Gid::from_seed(self.gid_seed.wrapping_add(id.wrapping_mul(0x9e37_79b9))),
            seq: 0,
        })
    }

    /// A publisher of `region`'s embeddings.
    pub fn embedding_publisher(&self, region: RegionId) -> Result<EmbeddingPublisher, ZenohError> {
        Ok(EmbeddingPublisher {
            net: self.publisher(&embedding_topic(region))?,
            region,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Forward every message of local `topic` to the network as `t` (from a thread: the local
    /// bus is never read on the integrator's thread).
    pub fn route_out<T: Wire>(
        &self,
        local: &LocalBus,
        topic: Topic<T>,
        t: NetTopic,
    ) -> Result<(), ZenohError> {
        let sub = local.subscribe(topic, 64);
        let mut publisher = self.publisher(&t)?;
        let stop = self.stop.clone();
        let h = std::thread::Builder::new()
            .name(format!("zenoh-out-{}", t.key.replace('/', "-")))
            .spawn(move || {
                let mut buf = Vec::with_capacity(256);
                while !stop.load(Ordering::Relaxed) {
                    if let Some(m) = sub.recv_timeout(Duration::from_millis(20)) {
                        m.encode(&mut buf);
                        publisher.put(&buf);
                    }
                }
            })
            .map_err(zerr)?;
        if let Ok(mut t) = self.threads.lock() {
            t.push(h);
        }
        Ok(())
    }

    /// Publish every sample of `t` from the network on local `topic`, after decoding and the
    /// order checks; bad samples are dropped and counted on the key's [`SourceStats`].
    pub fn route_in<T: Wire>(
        &self,
        local: &LocalBus,
        topic: Topic<T>,
        t: NetTopic,
    ) -> Result<Arc<SourceStats>, ZenohError> {
        let local = local.clone();
        self.subscribe_with(t, move |m: T| {
            local.publish(topic, &m);
        })
    }

    /// Call `f` with every sample of `t` from the network that decodes and passes the order
    /// checks (on zenoh's thread: `f` must be quick and must not block); bad samples are dropped
    /// and counted on the key's [`SourceStats`].
    pub fn subscribe_with<T: Wire, F: Fn(T) + Send + Sync + 'static>(
        &self,
        t: NetTopic,
        f: F,
    ) -> Result<Arc<SourceStats>, ZenohError> {
        let key = self.keys.key(&t);
        let stats = self.source(&key);
        let (st, clock) = (stats.clone(), self.clock);
        let checks = Mutex::new(HashMap::<Gid, SequenceCheck>::new());
        let max_delay = self.opts.max_delay_ns;
        let k2 = key.clone();
        let sub = self
            .session
            .declare_subscriber(key.clone())
            .allowed_origin(zenoh::sample::Locality::Remote)
            .callback(move |sample| {
                let now = clock();
                let r = (|| {
                    let att = attachment(&sample)?;
                    let mut m = T::decode(&sample.payload().to_bytes())?;
                    let mut checks = checks.lock().unwrap_or_else(|e| e.into_inner());
                    // Per publisher: several sources may publish on one key (two consoles).
                    if checks.len() > 64 {
                        checks.clear();
                    }
                    let c = checks
                        .entry(att.gid)
                        .or_insert_with(|| SequenceCheck::new(max_delay));
                    c.accept(&att, wall_ns(), &st)?;
                    m.received(now);
                    Ok::<T, Rejection>(m)
                })();
                match r {
                    Ok(m) => {
                        st.received.fetch_add(1, Ordering::Relaxed);
                        st.last_ns.store(now, Ordering::Relaxed);
                        f(m);
                    }
                    Err(e) => reject(&st, &k2, &e),
                }
            })
            .wait()
            .map_err(zerr)?;
        self.declare_entity(&t, false, self.next_entity())?;
        self.hold(sub);
        Ok(stats)
    }

    /// Call `f` with the raw payload of every sample on `t` from another process, attachment
    /// or not (on zenoh's thread: `f` must be quick). For payloads that carry their own checks
    /// (signed commands) or need none (the public e-stop); counted as received on the key.
    pub fn subscribe_raw<F: Fn(&[u8]) + Send + Sync + 'static>(
        &self,
        t: NetTopic,
        f: F,
    ) -> Result<Arc<SourceStats>, ZenohError> {
        let key = self.keys.key(&t);
        let stats = self.source(&key);
        let (st, clock) = (stats.clone(), self.clock);
        let sub = self
            .session
            .declare_subscriber(key)
            .allowed_origin(zenoh::sample::Locality::Remote)
            .callback(move |sample| {
                let bytes = sample.payload().to_bytes();
                st.received.fetch_add(1, Ordering::Relaxed);
                st.last_ns.store(clock(), Ordering::Relaxed);
                f(&bytes);
            })
            .wait()
            .map_err(zerr)?;
        self.hold(sub);
        Ok(stats)
    }

    /// Feed `region`'s slot from the network: each embedding is decoded, checked (schema,
    /// dimensions, finite values, order, delay) and published into the same lock-free slot a
    /// local region would write, stamped with its receive time, so the integrator's staleness
    /// timeout applies unchanged. Returns the key's counters.
    pub fn feed_slot(
        &self,
        region: RegionId,
        writer: SlotWriter,
    ) -> Result<Arc<SourceStats>, ZenohError> {
        let key = self.keys.embedding(region);
        let stats = self.source(&key);
        let (st, clock) = (stats.clone(), self.clock);
        let check = Mutex::new(SequenceCheck::new(self.opts.max_delay_ns));
        // The slot has one writer; zenoh may call back from several threads, so it is behind
        // a mutex here (never taken by the tick, which only reads the slot).
        let writer = Mutex::new(writer);
        let k2 = key.clone();
        let sub = self
            .session
            .declare_subscriber(key.clone())
            .allowed_origin(zenoh::sample::Locality::Remote)
            .callback(move |sample| {
                let now = clock();
                let r = (|| {
                    let att = attachment(&sample)?;
                    let bytes = sample.payload().to_bytes();
                    let msg = EmbeddingMsg::from_cdr(&bytes)
                        .map_err(|e| Rejection::Payload(e.to_string()))?;
                    if msg.region != region.name() {
                        return Err(Rejection::WrongRegion(msg.region.clone()));
                    }
                    let wall = wall_ns();
                    check
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .accept(&att, wall, &st)?;
                    // Pub-to-sub latency on the wall clock (exact on one host; across hosts
                    // as good as their clock sync, where only the delay check matters).
                    let latency = wall.saturating_sub(att.source_timestamp).max(0) as u64;
                    let mut e: EmbeddingRef<'_> = msg.embedding_ref();
                    e.stamp_ns = now;
                    writer
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .publish(&e)
                        .map_err(|e| Rejection::Slot(e.to_string()))?;
                    Ok(latency)
                })();
                match r {
                    Ok(latency) => {
                        st.received.fetch_add(1, Ordering::Relaxed);
                        st.last_ns.store(now, Ordering::Relaxed);
                        st.last_delay_ns.store(latency, Ordering::Relaxed);
                    }
                    Err(e) => reject(&st, &k2, &e),
                }
            })
            .wait()
            .map_err(zerr)?;
        self.declare_entity(&embedding_topic(region), false, self.next_entity())?;
        self.hold(sub);
        Ok(stats)
    }

    /// Stop the forwarder threads and leave the bus.
    pub fn close(self) {
        drop(self)
    }
}

impl Drop for ZenohBus {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(mut t) = self.threads.lock() {
            for h in t.drain(..) {
                let _ = h.join();
            }
        }
        if let Ok(mut h) = self.held.lock() {
            h.clear();
        }
        let _ = self.session.close().wait();
    }
}

/// Wall-clock time, ns since the Unix epoch: what rmw_zenoh puts in the attachment's source
/// timestamp. Used only for the attachment and the delay checks, never for staleness.
pub fn wall_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn attachment(sample: &zenoh::sample::Sample) -> Result<Attachment, Rejection> {
    let a = sample.attachment().ok_or(Rejection::Attachment)?;
    Attachment::decode(&a.to_bytes()).map_err(|_| Rejection::Attachment)
}

fn reject(st: &SourceStats, key: &str, e: &Rejection) {
    let n = st.rejected.fetch_add(1, Ordering::Relaxed);
    // Said once, then every 100th: a flood of bad samples must not flood the log.
    if n % 100 == 0 {
        tracing::warn!(key, rejected = n + 1, "dropped a sample from the bus: {e}");
    }
}

/// A publisher with rmw_zenoh's attachment (sequence, timestamp, GID) on every sample.
pub struct NetPublisher {
    publisher: zenoh::pubsub::Publisher<'static>,
    key: String,
    gid: Gid,
    seq: i64,
}

impl std::fmt::Debug for NetPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetPublisher")
            .field("key", &self.key)
            .finish()
    }
}

impl NetPublisher {
    /// Publish one payload; returns false if zenoh refused it.
    pub fn put(&mut self, payload: &[u8]) -> bool {
        self.seq += 1;
        let att = Attachment {
            sequence_number: self.seq,
            source_timestamp: wall_ns(),
            gid: self.gid,
        };
        self.publisher
            .put(payload.to_vec())
            .attachment(att.encode().to_vec())
            .wait()
            .is_ok()
    }
    /// The key it publishes on.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// Publishes one region's embeddings (`brainloop_msgs/msg/Embedding`, CDR).
#[derive(Debug)]
pub struct EmbeddingPublisher {
    net: NetPublisher,
    region: RegionId,
    buf: Vec<u8>,
}

impl EmbeddingPublisher {
    /// Encode and publish `e`.
    pub fn publish(&mut self, e: &EmbeddingRef<'_>) -> bool {
        EmbeddingMsg::encode_ref_into(self.region.name(), e, &mut self.buf);
        self.net.put(&self.buf)
    }
    /// The key it publishes on.
    pub fn key(&self) -> &str {
        self.net.key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn att(seq: i64, ts: i64, g: u8) -> Attachment {
        Attachment {
            sequence_number: seq,
            source_timestamp: ts,
            gid: Gid([g; 16]),
        }
    }

    #[test]
    fn sequence_check_counts_gaps_rejects_replays_and_late_samples_and_restarts() {
        let st = SourceStats::default();
        let mut c = SequenceCheck::new(100);
        assert_eq!(c.accept(&att(1, 1000, 1), 1010, &st), Ok(0));
        assert_eq!(c.accept(&att(2, 1100, 1), 1115, &st), Ok(5));
        assert_eq!(
            c.accept(&att(2, 1100, 1), 1200, &st),
            Err(Rejection::Replayed(2))
        );
        // seq 5 after 2: two lost.
        assert!(c.accept(&att(5, 1300, 1), 1310, &st).is_ok());
        assert_eq!(st.gaps.load(Ordering::Relaxed), 2);
        // Held back 500 ns beyond the fastest delivery (10 ns): late.
        assert_eq!(
            c.accept(&att(6, 1400, 1), 1910, &st),
            Err(Rejection::Late(0))
        );
        assert_eq!(st.late.load(Ordering::Relaxed), 1);
        // A restarted publisher (new GID) starts again at 1.
        assert!(c.accept(&att(1, 5000, 2), 5010, &st).is_ok());
        assert_eq!(st.rejoins.load(Ordering::Relaxed), 1);
        assert_eq!(st.replayed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn keys_follow_the_layout_and_ros_compat_uses_rmw_zenoh_keys() {
        let mut o = ZenohOptions {
            robot: "r1".into(),
            ..Default::default()
        };
        let k = Keys::new(&o);
        assert_eq!(
            k.embedding(RegionId::Vision),
            "brainloop/r1/embedding/vision"
        );
        assert_eq!(k.key(&net_topics::CMD_VEL), "brainloop/r1/cmd_vel");
        assert_eq!(
            k.key(&net_topics::TELEOP_CONSOLE),
            "brainloop/r1/teleop/console"
        );
        assert_eq!(k.alive("vision"), "brainloop/r1/alive/vision");
        o.ros_compat = true;
        let k = Keys::new(&o);
        let cmd = k.key(&net_topics::CMD_VEL);
        assert!(
            cmd.starts_with("0/cmd_vel/geometry_msgs::msg::dds_::Twist_/RIHS01_"),
            "{cmd}"
        );
        let v = k.embedding(RegionId::Vision);
        assert!(
            v.starts_with(
                "0/brainloop/vision/embedding/brainloop_msgs::msg::dds_::Embedding_/RIHS01_"
            ),
            "{v}"
        );
        // Internal topics stay on brainloop's keys.
        assert_eq!(k.key(&net_topics::BODY_STATE), "brainloop/r1/body/state");
    }

    #[test]
    fn payloads_reject_bad_input() {
        assert!(Twist::decode(&[0, 1, 0, 0, 1]).is_err());
        let mut buf = Vec::new();
        Twist {
            linear: f64::NAN,
            angular: 0.0,
        }
        .encode(&mut buf);
        assert!(Twist::decode(&buf).is_err());
        f32::INFINITY.encode(&mut buf);
        assert!(f32::decode(&buf).is_err());
        assert!(TeleopCommand::decode(b"{\"Drive\":{\"linear\":1e999,\"angular\":0}}").is_err());
        assert!(TeleopCommand::decode(&vec![b' '; 5000]).is_err());
        Instruction {
            stamp_ns: 5,
            text: "  ".into(),
        }
        .encode(&mut buf);
        assert!(Instruction::decode(&buf).is_err());
        TeleopCommand::Estop.encode(&mut buf);
        assert_eq!(TeleopCommand::decode(&buf), Ok(TeleopCommand::Estop));
        let mut i = Instruction::decode(&{
            Instruction {
                stamp_ns: 5,
                text: "go".into(),
            }
            .encode(&mut buf);
            buf.clone()
        })
        .unwrap();
        i.received(77);
        assert_eq!(i.stamp_ns, 77);
    }
}
