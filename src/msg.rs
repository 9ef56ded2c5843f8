//! Plain, serialisable messages exchanged between regions, the integrator, the body and the
//! teleop console. They carry no transport details: today they travel in process (the bus) and
//! to and from ROS 2 through the bridges (`bus::ros_map` maps them); a networked transport
//! (zenoh, for a region in its own process) is the next one and would carry them unchanged.

use serde::{Deserialize, Serialize};

/// Identifier of a sensory region. The order is the order of the integrator's input slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionId {
    /// Camera -> image embedding.
    Vision,
    /// Instruction text -> sentence embedding.
    Language,
    /// Microphone -> speech activity and acoustic embedding.
    Audition,
    /// Wheel encoders, IMU, battery -> body-state embedding.
    Proprioception,
}

impl RegionId {
    /// All regions in slot order.
    pub const ALL: [RegionId; 4] = [
        RegionId::Vision,
        RegionId::Language,
        RegionId::Audition,
        RegionId::Proprioception,
    ];
    /// Number of regions.
    pub const COUNT: usize = 4;

    /// Slot index of this region.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Name as used in the configuration file.
    pub fn name(self) -> &'static str {
        match self {
            RegionId::Vision => "vision",
            RegionId::Language => "language",
            RegionId::Audition => "audition",
            RegionId::Proprioception => "proprioception",
        }
    }

    /// Parse a configuration name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// An embedding published by a region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    /// Which region produced it.
    pub region: RegionId,
    /// Per-region sequence number, starting at 0.
    pub seq: u64,
    /// Capture time of the input, monotonic nanoseconds.
    pub stamp_ns: u64,
    /// Identifier of the model that produced it (manifest name and sha prefix).
    pub model: String,
    /// The embedding vector (pooled / sentence / acoustic / body-state).
    pub vector: Vec<f32>,
    /// Optional spatial token grid `[rows, cols, channels]` (vision's feature map, possibly
    /// already projected by a connector); `[0, 0, 0]` when absent.
    pub grid: [u32; 3],
    /// Row-major spatial tokens, `rows * cols * channels` values (empty when `grid` is zero).
    pub spatial: Vec<f32>,
}

/// A velocity command for a diff-drive base (REP 103: x forward, z up).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Twist {
    /// Linear velocity, m/s.
    pub linear: f64,
    /// Angular velocity, rad/s (counter-clockwise positive).
    pub angular: f64,
}

impl Twist {
    /// Zero velocity.
    pub const ZERO: Twist = Twist {
        linear: 0.0,
        angular: 0.0,
    };

    /// Whether both components are finite numbers.
    pub fn is_finite(&self) -> bool {
        self.linear.is_finite() && self.angular.is_finite()
    }
}

/// Wheel angular-speed setpoints in rad/s, left then right.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct WheelSpeeds {
    /// Left wheel, rad/s.
    pub left: f64,
    /// Right wheel, rad/s.
    pub right: f64,
}

/// The latest state reported by a body (real, emulated or simulated).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BodyState {
    /// Time of the measurement, monotonic (or simulated) nanoseconds.
    pub stamp_ns: u64,
    /// Encoder counts, left and right.
    pub encoder_ticks: [i64; 2],
    /// Measured wheel angular speeds, rad/s.
    pub wheel_speed: [f64; 2],
    /// Yaw rate from the IMU gyro, rad/s.
    pub gyro_z: f64,
    /// Body-frame linear acceleration from the IMU (x, y), m/s^2.
    pub accel: [f64; 2],
    /// Battery voltage, V.
    pub battery_v: f64,
    /// Fault flags (see `firmware/PROTOCOL.md`); 0 is healthy.
    pub faults: u16,
    /// Whether the body's e-stop is latched.
    pub estop: bool,
    /// Range-sensor distances in metres, rays ordered right to left across the front
    /// (`range_count` valid entries; the rest 0). Bodies without a range sensor report 0 rays.
    pub range: [f32; RANGE_RAYS_MAX],
    /// Number of valid entries in `range`.
    pub range_count: u8,
}

/// Maximum number of range rays a body can report.
pub const RANGE_RAYS_MAX: usize = 16;

/// Discrete behaviour mode chosen by the decision stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// No instruction or nothing to do: stand still.
    #[default]
    Idle,
    /// Looking for the target.
    Search,
    /// Driving towards the target.
    Approach,
    /// Steering around an obstacle.
    Avoid,
    /// Arrived at the target.
    Arrived,
    /// Sleeping (consolidating working memory); motors held at zero.
    Sleep,
    /// Stopped for safety (e-stop, stale body, failed region).
    Stopped,
}

/// What the decision stage wants the body to do.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct MotorIntent {
    /// Desired velocity before validation and limits.
    pub twist: Twist,
    /// Discrete mode.
    pub mode: Mode,
}

/// Who is in control of the motors in a given tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlSource {
    /// The brain.
    #[default]
    Autonomy,
    /// A fresh teleop command.
    Teleop,
    /// The e-stop (always wins).
    Estop,
}

/// A command from the teleop override console.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum TeleopCommand {
    /// Drive with this twist (overrides autonomy while fresh).
    Drive(Twist),
    /// Latch the e-stop.
    Estop,
    /// Clear a latched e-stop.
    ClearEstop,
    /// Hand control back to autonomy.
    Release,
}

/// A natural-language instruction for the brain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction {
    /// Monotonic nanoseconds when it was given.
    pub stamp_ns: u64,
    /// The text, e.g. "go to the red ball".
    pub text: String,
}

/// How the operator wants the brain to drive (the teleop console's `m` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorMode {
    /// The brain drives; a fresh teleop command overrides it.
    #[default]
    Autonomous,
    /// The operator steers and the brain's obstacle margins still apply: forward speed is
    /// capped by the free distance ahead; autonomy does not move the robot.
    Assist,
    /// Only teleop moves the robot; autonomy's commands are held at zero.
    Manual,
}

impl OperatorMode {
    /// All modes in the order the console cycles through them.
    pub const ALL: [OperatorMode; 3] = [
        OperatorMode::Autonomous,
        OperatorMode::Assist,
        OperatorMode::Manual,
    ];
    /// Stable index (the lock-free cell stores it).
    pub fn index(self) -> u8 {
        self as u8
    }
    /// From [`OperatorMode::index`]; anything else is `Autonomous`.
    pub fn from_index(i: u8) -> Self {
        Self::ALL
            .get(i as usize)
            .copied()
            .unwrap_or(OperatorMode::Autonomous)
    }
    /// The next mode (`m`).
    pub fn next(self) -> Self {
        Self::from_index((self.index() + 1) % 3)
    }
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            OperatorMode::Autonomous => "autonomous",
            OperatorMode::Assist => "assist",
            OperatorMode::Manual => "manual",
        }
    }
}

/// A command from an operator's teleop console (`brainloop console`). It travels signed with
/// the operator key (`teleop::auth`); an unsigned or badly signed one is dropped and counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorCommand {
    /// Drive at this twist (a deadman: it lapses after the source's timeout).
    Drive(Twist),
    /// Hand control back now.
    Release,
    /// Latch the e-stop.
    Estop,
    /// Clear the e-stop this console's source latched.
    Reset,
    /// A new instruction.
    Instruction(String),
    /// Ask the brain to sleep.
    Sleep,
    /// Change how the brain drives.
    Mode(OperatorMode),
}

/// What the brain understood of the current instruction (from its policy), per tick.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Understood {
    /// Whether an instruction is being followed.
    pub instruction: bool,
    /// Whether it is about something the brain can see (else it stays idle).
    pub about_object: bool,
    /// The most likely target concept (index into the policy's concept names).
    pub concept: u16,
    /// Its posterior probability.
    pub probability: f32,
    /// Confidence that the target is in view now, 0..1.
    pub seen: f32,
    /// Why the policy does what it does (`Policy::reason_text` of this code).
    pub reason: u8,
}

/// Who moves the robot, what it understood and how its body is: what the brain's process
/// publishes at 10 Hz for the teleop console beside the loop's health (JSON on the bus).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BrainStatus {
    /// Wall-clock time of this status, ns since the epoch.
    pub wall_ns: i64,
    /// Who drives: `autonomy`, `teleop:<source>` or `estop`.
    pub source: String,
    /// Whether the e-stop is on.
    pub estop: bool,
    /// Who holds it (`teleop:<source>`, or `body` for the firmware's own), if on.
    pub estop_reason: Option<String>,
    /// The operator's mode.
    pub operator_mode: OperatorMode,
    /// The brain's behaviour mode.
    pub mode: Mode,
    /// The command sent to the wheels, after every check.
    pub twist: Twist,
    /// Measured wheel speeds, rad/s (left, right).
    pub wheels: [f64; 2],
    /// Dead-reckoned pose from the encoders and gyro, odometry frame.
    pub odom: Odom,
    /// Battery voltage, V (0: not reported).
    pub battery_v: f64,
    /// Body driven.
    pub body: String,
    /// Whether the body's state is stale (the motor stage writes zero).
    pub body_stale: bool,
    /// The serial link, when the body is on one.
    pub link: Option<LinkStatus>,
    /// The current instruction and what the brain understood of it.
    pub instruction: Option<InstructionStatus>,
    /// Sleep.
    pub sleep: SleepStatus,
    /// Assist mode's forward speed cap, 0..1.
    pub assist_cap: f32,
    /// Signed operator commands accepted.
    pub commands_accepted: u64,
    /// Operator commands refused (bad signature, replayed, stale, malformed).
    pub commands_refused: u64,
    /// E-stops received on the public e-stop key.
    pub public_estops: u64,
    /// Operator key event to wheel command, ms, over the last 30 s of new commands.
    pub key_to_wheel_ms: LatencySummary,
}

/// A pose in the odometry frame.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Odom {
    /// m.
    pub x: f64,
    /// m.
    pub y: f64,
    /// Heading, rad.
    pub theta: f64,
}

/// The serial link's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LinkStatus {
    /// Port open.
    pub connected: bool,
    /// Frames received.
    pub frames_rx: u64,
    /// Frames sent.
    pub frames_tx: u64,
    /// CRC errors.
    pub crc_errors: u64,
    /// Other decode errors.
    pub decode_errors: u64,
    /// Reconnections after the first connection.
    pub reconnects: u64,
    /// Board frames lost (gaps in its sequence numbers).
    #[serde(default)]
    pub seq_gaps: u64,
    /// Host frames the board rejected.
    #[serde(default)]
    pub board_rx_errors: u64,
    /// Telemetry frames refused as physically implausible.
    #[serde(default)]
    pub implausible_telemetry: u64,
}

/// The instruction being followed and what the brain made of it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InstructionStatus {
    /// The text.
    pub text: String,
    /// Whether it is about something the brain can see.
    pub about_object: bool,
    /// The concept it took as the target.
    pub target: Option<String>,
    /// Its probability.
    pub probability: f32,
    /// How well the target is seen now, 0..1.
    pub seen: f32,
    /// Why the brain does what it does.
    pub reason: String,
}

/// Sleep state and what brings the next request.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SleepStatus {
    /// Sleeping now.
    pub sleeping: bool,
    /// A sleep is requested (drowsy for long enough, memory full or the operator).
    pub requested: bool,
    /// Sleeps completed.
    pub sleeps: u64,
    /// Working-memory entries.
    pub context_len: u32,
    /// Working-memory capacity (a full memory asks for sleep).
    pub context_capacity: u32,
}

/// Percentiles of a latency, ms.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples.
    pub n: u64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// The robot's motion for the ROS 2 bridges (`/odom`, `/tf`, `/joint_states`): the
/// dead-reckoned pose in the odometry frame and the wheels, from the run's supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RobotFeed {
    /// Monotonic time of the body state it comes from, ns.
    pub stamp_ns: u64,
    /// Position in the odometry frame, m.
    pub x: f64,
    /// Position in the odometry frame, m.
    pub y: f64,
    /// Heading in the odometry frame, rad (counter-clockwise from x).
    pub yaw: f64,
    /// Forward speed, m/s.
    pub linear: f64,
    /// Yaw rate, rad/s.
    pub angular: f64,
    /// Wheel angles, left and right, rad (from the encoders).
    pub wheel_pos: [f64; 2],
    /// Wheel speeds, left and right, rad/s.
    pub wheel_vel: [f64; 2],
}

/// One region's freshness in a [`DiagFeed`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RegionFresh {
    /// Region name.
    pub name: String,
    /// Whether the integrator's last tick found its embedding fresh.
    pub fresh: bool,
    /// Ticks on which it was stale, since the start.
    pub stale_ticks: u64,
}

/// The serial link's counters in a [`DiagFeed`].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LinkFeed {
    /// Whether the port is open.
    pub connected: bool,
    /// Frames that failed their CRC.
    pub crc_errors: u64,
    /// Frames that did not decode.
    pub decode_errors: u64,
    /// Times the port was (re)opened.
    pub connects: u64,
    /// Board frames lost (gaps in its sequence numbers).
    #[serde(default)]
    pub seq_gaps: u64,
    /// Host frames the board rejected.
    #[serde(default)]
    pub board_rx_errors: u64,
    /// Telemetry frames refused as physically implausible.
    #[serde(default)]
    pub implausible_telemetry: u64,
}

/// The brain's health for `/diagnostics` and `BatteryState`, from the run's supervisor
/// (1 Hz).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DiagFeed {
    /// Monotonic time of the report, ns.
    pub stamp_ns: u64,
    /// Configured tick rate, Hz.
    pub rate_hz: f64,
    /// Measured tick rate over the last second, Hz.
    pub measured_hz: f64,
    /// Start lateness p99 over the last second, us.
    pub jitter_p99_us: f64,
    /// Compute p99 over the last second, us.
    pub compute_p99_us: f64,
    /// Ticks since the start.
    pub ticks: u64,
    /// Missed deadlines since the start.
    pub missed: u64,
    /// Drowsiness, 0..=1.
    pub drowsiness: f32,
    /// Completed sleeps.
    pub sleeps: u32,
    /// Behaviour mode.
    pub mode: String,
    /// Whether the e-stop is latched.
    pub estop: bool,
    /// Each region that runs.
    pub regions: Vec<RegionFresh>,
    /// The serial link, when the body is one.
    pub link: Option<LinkFeed>,
    /// Battery voltage, V (0: unknown).
    pub battery_v: f64,
}

/// A camera frame from a ROS 2 bridge (`sensor_msgs/Image` or `CompressedImage`, decoded):
/// RGB8, row-major.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RgbImage {
    /// Monotonic receive time, ns.
    pub stamp_ns: u64,
    /// Width, px.
    pub width: u32,
    /// Height, px.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub data: Vec<u8>,
}
