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
