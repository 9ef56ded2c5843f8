//! The one mapping between ROS 2 messages and brainloop messages, used by every ROS 2 bridge:
//! the DDS bridge ([`super::dds`], feature `dds`) and the r2r node (`crate::ros2`, feature
//! `ros2`). A bridge only moves messages between its transport and this module: what it takes
//! from ROS 2 it hands to an [`Inbound`], which checks and maps it and publishes the brainloop
//! message on the in-process [`Bus`]; what it publishes on ROS 2 it takes from an [`Outbound`],
//! which reads the bus. No transport code is here, so all of it is tested in the default build.
//!
//! The Jazzy contract (names before `--ros-args` remapping; `~` is the node, so with the node
//! `brainloop` in `/` they are `/brainloop/instruction`, `/cmd_vel`, ...):
//!
//! | topic | type | dir | QoS | bus |
//! |---|---|---|---|---|
//! | `~/instruction` | `std_msgs/msg/String` | in | reliable | [`topics::INSTRUCTION`] |
//! | `~/teleop/cmd_vel` | `geometry_msgs/msg/TwistStamped` (`Twist` with `teleop_stamped: false`) | in | reliable | [`topics::TELEOP_REMOTE`] |
//! | `~/estop` | `std_msgs/msg/Bool` | in | reliable | [`topics::TELEOP_REMOTE`] |
//! | `~/estop_reset` | `std_msgs/msg/String` | in | reliable | [`topics::ESTOP_RESET`] |
//! | `/clock` | `rosgraph_msgs/msg/Clock` | in (`use_sim_time`) | best effort | the bridge's clock |
//! | `cmd_vel` | `geometry_msgs/msg/TwistStamped` (`Twist` with `stamped: false`) | out | reliable | [`topics::CMD_VEL`] |
//! | `odom` | `nav_msgs/msg/Odometry` | out | reliable | [`topics::ROBOT_FEED`] |
//! | `/tf` | `tf2_msgs/msg/TFMessage` | out | reliable | [`topics::ROBOT_FEED`] |
//! | `joint_states` | `sensor_msgs/msg/JointState` | out | reliable | [`topics::ROBOT_FEED`] |
//! | `battery_state` | `sensor_msgs/msg/BatteryState` | out | reliable | [`topics::DIAG_FEED`] |
//! | `/diagnostics` | `diagnostic_msgs/msg/DiagnosticArray` | out | reliable | [`topics::DIAG_FEED`] |
//! | `~/drowsiness` | `std_msgs/msg/Float32` | out | reliable | [`topics::DROWSINESS`] |
//!
//! The rules (each refusal has a [`Rejected::code`], counted by the bridge):
//! * an instruction longer than `max_instruction_bytes` is refused; an accepted one is stamped
//!   with the bridge's monotonic clock on arrival (a string that is not UTF-8 never decodes);
//! * a teleop twist becomes [`TeleopCommand::Drive`] from `linear.x` and `angular.z` (the base is
//!   planar); it is refused when either is not finite, when its header's frame is not empty,
//!   `base_frame` or `base_link`, and when its stamp is zero, older than `max_stamp_age_ms` or
//!   more than `max_stamp_future_ms` ahead of the node's clock (wall time, or `/clock` with
//!   `use_sim_time`); the motor stage still clamps and rate-limits what passes;
//! * `~/estop`: `true` latches the e-stop; `false` does nothing (a heartbeat of `false`, or any
//!   publisher at all, can never clear it). It is cleared only by a message on
//!   `~/estop_reset` carrying a reset signed with the operator key (`brainloop ros
//!   reset-token`), which the run verifies (freshness, replay) before clearing;
//! * all ROS 2 teleop goes to the override mux's `remote` source, never the console's, so a
//!   ROS 2 reset can only clear the latch ROS 2 set;
//! * out: `/cmd_vel` only for what the brain's ticks produced (the run publishes a command
//!   only when new ticks ran, so a stalled brain goes quiet and the base's own timeout stops
//!   it), zero when it stops; nothing non-finite is ever published.

use super::{publish_teleop, topics, Bus, Delivery, Subscription};
use crate::bus::ros_args::ParamValue;
use crate::msg::{DiagFeed, Instruction, RobotFeed, TeleopCommand, Twist};
use crossbeam_utils::atomic::AtomicCell;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

// ------------------------------------------------------------------ topics and types

/// Which way a topic goes, seen from brainloop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// brainloop subscribes.
    In,
    /// brainloop publishes.
    Out,
}

/// The QoS profile of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Qos {
    /// RELIABLE, VOLATILE, KEEP_LAST 10 (commands, state).
    Reliable,
    /// BEST_EFFORT, VOLATILE, KEEP_LAST 5 (`rclcpp::SensorDataQoS`).
    SensorData,
}

/// A ROS 2 topic of the contract: its name (relative, before remapping), type, direction
/// and QoS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RosTopic {
    /// Topic name as the node declares it (`~/estop`, `cmd_vel`, `/tf`).
    pub name: &'static str,
    /// Package of the message type (`std_msgs`).
    pub package: &'static str,
    /// Message type within the package (`Bool`).
    pub type_name: &'static str,
    /// In or out.
    pub direction: Direction,
    /// QoS profile.
    pub qos: Qos,
}

impl RosTopic {
    const fn new(
        name: &'static str,
        package: &'static str,
        type_name: &'static str,
        direction: Direction,
        qos: Qos,
    ) -> Self {
        Self {
            name,
            package,
            type_name,
            direction,
            qos,
        }
    }
    /// The ROS 2 type name, `std_msgs/msg/Bool`.
    pub fn ros_type(&self) -> String {
        format!("{}/msg/{}", self.package, self.type_name)
    }
    /// The DDS type name on the wire, `std_msgs::msg::dds_::Bool_`.
    pub fn dds_type(&self) -> String {
        format!("{}::msg::dds_::{}_", self.package, self.type_name)
    }
}

use Direction::{In, Out};
use Qos::{Reliable, SensorData};

/// Instructions in.
pub const INSTRUCTION: RosTopic =
    RosTopic::new("~/instruction", "std_msgs", "String", In, Reliable);
/// Teleop twists in (stamped).
pub const TELEOP_CMD_VEL: RosTopic = RosTopic::new(
    "~/teleop/cmd_vel",
    "geometry_msgs",
    "TwistStamped",
    In,
    Reliable,
);
/// Teleop twists in (`teleop_stamped: false`).
pub const TELEOP_CMD_VEL_UNSTAMPED: RosTopic =
    RosTopic::new("~/teleop/cmd_vel", "geometry_msgs", "Twist", In, Reliable);
/// E-stop in.
pub const ESTOP: RosTopic = RosTopic::new("~/estop", "std_msgs", "Bool", In, Reliable);
/// Signed e-stop resets in.
pub const ESTOP_RESET: RosTopic =
    RosTopic::new("~/estop_reset", "std_msgs", "String", In, Reliable);
/// Simulated time in (`use_sim_time`).
pub const CLOCK: RosTopic = RosTopic::new("/clock", "rosgraph_msgs", "Clock", In, SensorData);
/// Camera frames in (`camera: raw`).
pub const CAMERA_IMAGE: RosTopic =
    RosTopic::new("camera/image_raw", "sensor_msgs", "Image", In, SensorData);
/// Camera frames in (`camera: compressed`, image_transport's compressed topic).
pub const CAMERA_COMPRESSED: RosTopic = RosTopic::new(
    "camera/image_raw/compressed",
    "sensor_msgs",
    "CompressedImage",
    In,
    SensorData,
);
/// Velocity commands out (stamped, what Jazzy's diff_drive_controller takes).
pub const CMD_VEL: RosTopic =
    RosTopic::new("cmd_vel", "geometry_msgs", "TwistStamped", Out, Reliable);
/// Velocity commands out (`stamped: false`, Humble-era bases).
pub const CMD_VEL_UNSTAMPED: RosTopic =
    RosTopic::new("cmd_vel", "geometry_msgs", "Twist", Out, Reliable);
/// Odometry out.
pub const ODOM: RosTopic = RosTopic::new("odom", "nav_msgs", "Odometry", Out, Reliable);
/// odom -> base transform out.
pub const TF: RosTopic = RosTopic::new("/tf", "tf2_msgs", "TFMessage", Out, Reliable);
/// Wheel joints out.
pub const JOINT_STATES: RosTopic =
    RosTopic::new("joint_states", "sensor_msgs", "JointState", Out, Reliable);
/// Battery out.
pub const BATTERY: RosTopic = RosTopic::new(
    "battery_state",
    "sensor_msgs",
    "BatteryState",
    Out,
    Reliable,
);
/// Health out.
pub const DIAGNOSTICS: RosTopic = RosTopic::new(
    "/diagnostics",
    "diagnostic_msgs",
    "DiagnosticArray",
    Out,
    Reliable,
);
/// Drowsiness out.
pub const DROWSINESS: RosTopic =
    RosTopic::new("~/drowsiness", "std_msgs", "Float32", Out, Reliable);

/// The topics a bridge with `settings` uses, the incoming ones first.
pub fn contract(s: &RosSettings) -> Vec<RosTopic> {
    let mut v = vec![
        INSTRUCTION,
        if s.teleop_stamped {
            TELEOP_CMD_VEL
        } else {
            TELEOP_CMD_VEL_UNSTAMPED
        },
        ESTOP,
        ESTOP_RESET,
    ];
    if s.use_sim_time {
        v.push(CLOCK);
    }
    match s.camera {
        CameraIn::Raw => v.push(CAMERA_IMAGE),
        CameraIn::Compressed => v.push(CAMERA_COMPRESSED),
        CameraIn::None => {}
    }
    v.push(if s.stamped {
        CMD_VEL
    } else {
        CMD_VEL_UNSTAMPED
    });
    if s.publish_odom {
        v.push(ODOM);
    }
    if s.publish_tf {
        v.push(TF);
    }
    if s.publish_joint_states {
        v.push(JOINT_STATES);
    }
    v.extend([BATTERY, DIAGNOSTICS, DROWSINESS]);
    v
}

// ------------------------------------------------------------------ settings

/// The node's ROS 2 parameters (from `--params-file` / `-p`; see [`RosSettings::from_params`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RosSettings {
    /// `stamped`: publish `cmd_vel` as `TwistStamped` (default) or `Twist`.
    pub stamped: bool,
    /// `teleop_stamped`: take `~/teleop/cmd_vel` as `TwistStamped` (default) or `Twist`
    /// (`teleop_twist_keyboard` without `stamped:=true`).
    pub teleop_stamped: bool,
    /// `publish_odom`: publish `odom` (off when a base driver owns odometry).
    pub publish_odom: bool,
    /// `publish_tf`: publish odom -> base on `/tf`.
    pub publish_tf: bool,
    /// `publish_joint_states`: publish the wheel joints.
    pub publish_joint_states: bool,
    /// `odom_frame`.
    pub odom_frame: String,
    /// `base_frame` (the URDF's root link).
    pub base_frame: String,
    /// `left_wheel_joint`, `right_wheel_joint` (the URDF's joint names).
    pub wheel_joints: [String; 2],
    /// `max_stamp_age_ms`: oldest teleop stamp accepted.
    pub max_stamp_age_ms: f64,
    /// `max_stamp_future_ms`: furthest ahead a teleop stamp may be.
    pub max_stamp_future_ms: f64,
    /// `use_sim_time`: the node's clock is `/clock`.
    pub use_sim_time: bool,
    /// `max_instruction_bytes`.
    pub max_instruction_bytes: usize,
    /// `battery_cells`: series cells of the pack (for `BatteryState.percentage`), 0 = unknown.
    pub battery_cells: u32,
    /// `camera`: `raw` (`camera/image_raw`), `compressed` or `none`: the vision region's
    /// frames when the run has no other camera. Default `none`, `raw` with a base driver.
    pub camera: CameraIn,
}

/// Where the vision region's frames come from over ROS 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraIn {
    /// `sensor_msgs/Image` on `camera/image_raw`.
    Raw,
    /// `sensor_msgs/CompressedImage` on `camera/image_raw/compressed`.
    Compressed,
    /// No camera over ROS 2.
    None,
}

/// Longest instruction accepted by default, in bytes.
pub const MAX_INSTRUCTION_BYTES: usize = 1024;

impl Default for RosSettings {
    fn default() -> Self {
        Self {
            stamped: true,
            teleop_stamped: true,
            publish_odom: true,
            publish_tf: true,
            publish_joint_states: true,
            odom_frame: "odom".into(),
            base_frame: "base_footprint".into(),
            wheel_joints: ["left_wheel_joint".into(), "right_wheel_joint".into()],
            max_stamp_age_ms: 500.0,
            max_stamp_future_ms: 200.0,
            use_sim_time: false,
            max_instruction_bytes: MAX_INSTRUCTION_BYTES,
            battery_cells: 3,
            camera: CameraIn::None,
        }
    }
}

/// Parameters the run itself reads (not the bridge's): `config`, `body`, `port`,
/// `instruction`, `seconds`.
pub const RUN_PARAMS: [&str; 5] = ["config", "body", "port", "instruction", "seconds"];

impl RosSettings {
    /// Settings when the body is a ROS 2 base driver (`--body ros2`): the driver owns `odom`,
    /// `/tf` and `joint_states`, so brainloop publishes none of them unless told to (and
    /// never `joint_states`, which it then reads).
    pub fn for_base_driver(p: &BTreeMap<String, ParamValue>) -> Result<Self, String> {
        let mut s = Self {
            publish_odom: false,
            publish_tf: false,
            publish_joint_states: false,
            camera: CameraIn::Raw,
            ..Self::default()
        };
        s.apply(p)?;
        if s.publish_joint_states {
            return Err(
                "parameter publish_joint_states: with --body ros2 the base driver's \
                        joint_states are the body's input; brainloop cannot publish them too"
                    .into(),
            );
        }
        Ok(s)
    }

    /// Settings from the node's parameters; an unknown name or a wrong type is an error
    /// naming it.
    pub fn from_params(p: &BTreeMap<String, ParamValue>) -> Result<Self, String> {
        let mut s = Self::default();
        s.apply(p)?;
        Ok(s)
    }

    fn apply(&mut self, p: &BTreeMap<String, ParamValue>) -> Result<(), String> {
        let s = self;
        for (k, v) in p {
            let b = || {
                v.as_bool()
                    .ok_or_else(|| format!("parameter {k}: expected true or false, got {v}"))
            };
            let n = |lo: f64, hi: f64| {
                v.as_f64()
                    .filter(|x| x.is_finite() && (lo..=hi).contains(x))
                    .ok_or_else(|| {
                        format!("parameter {k}: expected a number in {lo}..={hi}, got {v}")
                    })
            };
            let t = || {
                v.as_str()
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .ok_or_else(|| format!("parameter {k}: expected a non-empty string, got {v}"))
            };
            match k.as_str() {
                "stamped" => s.stamped = b()?,
                "teleop_stamped" => s.teleop_stamped = b()?,
                "publish_odom" => s.publish_odom = b()?,
                "publish_tf" => s.publish_tf = b()?,
                "publish_joint_states" => s.publish_joint_states = b()?,
                "use_sim_time" => s.use_sim_time = b()?,
                "odom_frame" => s.odom_frame = t()?,
                "base_frame" => s.base_frame = t()?,
                "left_wheel_joint" => s.wheel_joints[0] = t()?,
                "right_wheel_joint" => s.wheel_joints[1] = t()?,
                "max_stamp_age_ms" => s.max_stamp_age_ms = n(1.0, 60_000.0)?,
                "max_stamp_future_ms" => s.max_stamp_future_ms = n(0.0, 60_000.0)?,
                "max_instruction_bytes" => s.max_instruction_bytes = n(1.0, 1e6)? as usize,
                "battery_cells" => s.battery_cells = n(0.0, 64.0)? as u32,
                "camera" => {
                    s.camera = match t()?.as_str() {
                        "raw" => CameraIn::Raw,
                        "compressed" => CameraIn::Compressed,
                        "none" => CameraIn::None,
                        o => {
                            return Err(format!(
                                "parameter camera: raw, compressed or none, got {o:?}"
                            ))
                        }
                    }
                }
                k if RUN_PARAMS.contains(&k) => {}
                k if k.starts_with("qos_overrides.") => {}
                _ => {
                    return Err(format!(
                        "unknown parameter {k} (known: stamped, teleop_stamped, publish_odom, \
                         publish_tf, publish_joint_states, use_sim_time, odom_frame, base_frame, \
                         left_wheel_joint, right_wheel_joint, max_stamp_age_ms, \
                         max_stamp_future_ms, max_instruction_bytes, battery_cells, camera, {})",
                        RUN_PARAMS.join(", ")
                    ))
                }
            }
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ ROS 2 message layouts

// The fields of the ROS 2 messages, in their order (CDR has no field framing: serde over these
// structs gives the wire bytes; r2r's generated types have the same fields).

/// `geometry_msgs/msg/Vector3`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Vector3 {
    /// x
    pub x: f64,
    /// y
    pub y: f64,
    /// z
    pub z: f64,
}

/// `geometry_msgs/msg/Twist`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TwistMsg {
    /// Linear velocity, m/s.
    pub linear: Vector3,
    /// Angular velocity, rad/s.
    pub angular: Vector3,
}

/// `builtin_interfaces/msg/Time`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Time {
    /// Seconds.
    pub sec: i32,
    /// Nanoseconds, 0..1e9.
    pub nanosec: u32,
}

impl Time {
    /// From nanoseconds since the clock's epoch.
    pub fn from_ns(ns: i64) -> Self {
        Self {
            sec: ns.div_euclid(1_000_000_000) as i32,
            nanosec: ns.rem_euclid(1_000_000_000) as u32,
        }
    }
    /// Nanoseconds since the clock's epoch.
    pub fn ns(&self) -> i64 {
        self.sec as i64 * 1_000_000_000 + self.nanosec as i64
    }
}

/// `std_msgs/msg/Header`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Time of the data.
    pub stamp: Time,
    /// Coordinate frame.
    pub frame_id: String,
}

/// `geometry_msgs/msg/TwistStamped`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TwistStampedMsg {
    /// Stamp and frame.
    pub header: Header,
    /// The twist.
    pub twist: TwistMsg,
}

/// `geometry_msgs/msg/Point`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// x
    pub x: f64,
    /// y
    pub y: f64,
    /// z
    pub z: f64,
}

/// `geometry_msgs/msg/Quaternion`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quaternion {
    /// x
    pub x: f64,
    /// y
    pub y: f64,
    /// z
    pub z: f64,
    /// w
    pub w: f64,
}

impl Default for Quaternion {
    fn default() -> Self {
        Self::yaw(0.0)
    }
}

impl Quaternion {
    /// A rotation of `yaw` rad about z.
    pub fn yaw(yaw: f64) -> Self {
        Self {
            x: 0.0,
            y: 0.0,
            z: (yaw / 2.0).sin(),
            w: (yaw / 2.0).cos(),
        }
    }
}

/// `geometry_msgs/msg/Pose`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Pose {
    /// Position.
    pub position: Point,
    /// Orientation.
    pub orientation: Quaternion,
}

/// A fixed-size `float64[N]` (a covariance matrix, row-major): CDR writes it with no length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fixed<const N: usize>(pub [f64; N]);

/// `float64[36]`: a 6x6 covariance (x, y, z, roll, pitch, yaw).
pub type Covariance = Fixed<36>;

impl<const N: usize> Default for Fixed<N> {
    fn default() -> Self {
        Fixed([0.0; N])
    }
}

impl Covariance {
    /// A diagonal covariance.
    pub fn diagonal(d: [f64; 6]) -> Self {
        let mut c = [0.0; 36];
        for (i, v) in d.into_iter().enumerate() {
            c[i * 7] = v;
        }
        Fixed(c)
    }
}

impl<const N: usize> Serialize for Fixed<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(N)?;
        for v in &self.0 {
            t.serialize_element(v)?;
        }
        t.end()
    }
}

impl<'de, const N: usize> Deserialize<'de> for Fixed<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const N: usize>;
        impl<'de, const N: usize> serde::de::Visitor<'de> for V<N> {
            type Value = Fixed<N>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "{N} float64")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Fixed<N>, A::Error> {
                let mut c = [0.0; N];
                for (i, v) in c.iter_mut().enumerate() {
                    *v = a
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Fixed(c))
            }
        }
        d.deserialize_tuple(N, V::<N>)
    }
}

/// `geometry_msgs/msg/PoseWithCovariance`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PoseWithCovariance {
    /// Pose.
    pub pose: Pose,
    /// Its covariance (x, y, z, roll, pitch, yaw).
    pub covariance: Covariance,
}

/// `geometry_msgs/msg/TwistWithCovariance`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TwistWithCovariance {
    /// Twist.
    pub twist: TwistMsg,
    /// Its covariance.
    pub covariance: Covariance,
}

/// `nav_msgs/msg/Odometry`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OdometryMsg {
    /// Stamp; frame = the odometry frame.
    pub header: Header,
    /// The base frame.
    pub child_frame_id: String,
    /// Pose in the odometry frame.
    pub pose: PoseWithCovariance,
    /// Twist in the base frame.
    pub twist: TwistWithCovariance,
}

/// `geometry_msgs/msg/Transform`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Transform {
    /// Translation.
    pub translation: Vector3,
    /// Rotation.
    pub rotation: Quaternion,
}

/// `geometry_msgs/msg/TransformStamped`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TransformStamped {
    /// Stamp; frame = parent.
    pub header: Header,
    /// Child frame.
    pub child_frame_id: String,
    /// Parent -> child.
    pub transform: Transform,
}

/// `tf2_msgs/msg/TFMessage`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TfMessage {
    /// The transforms.
    pub transforms: Vec<TransformStamped>,
}

/// `sensor_msgs/msg/JointState`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JointStateMsg {
    /// Stamp.
    pub header: Header,
    /// Joint names.
    pub name: Vec<String>,
    /// Angles, rad.
    pub position: Vec<f64>,
    /// Speeds, rad/s.
    pub velocity: Vec<f64>,
    /// Efforts (empty: not measured).
    pub effort: Vec<f64>,
}

/// `diagnostic_msgs/msg/KeyValue`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// `diagnostic_msgs/msg/DiagnosticStatus`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiagnosticStatus {
    /// 0 OK, 1 WARN, 2 ERROR, 3 STALE.
    pub level: u8,
    /// `node: component`.
    pub name: String,
    /// Summary.
    pub message: String,
    /// Hardware id.
    pub hardware_id: String,
    /// Values.
    pub values: Vec<KeyValue>,
}

/// `diagnostic_msgs/msg/DiagnosticArray`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiagnosticArray {
    /// Stamp.
    pub header: Header,
    /// One per component.
    pub status: Vec<DiagnosticStatus>,
}

/// `sensor_msgs/msg/BatteryState`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatteryStateMsg {
    /// Stamp.
    pub header: Header,
    /// V.
    pub voltage: f32,
    /// degC (NaN: unknown).
    pub temperature: f32,
    /// A (NaN: unknown).
    pub current: f32,
    /// Ah (NaN: unknown).
    pub charge: f32,
    /// Ah (NaN: unknown).
    pub capacity: f32,
    /// Ah (NaN: unknown).
    pub design_capacity: f32,
    /// 0..=1 (NaN: unknown).
    pub percentage: f32,
    /// POWER_SUPPLY_STATUS_*.
    pub power_supply_status: u8,
    /// POWER_SUPPLY_HEALTH_*.
    pub power_supply_health: u8,
    /// POWER_SUPPLY_TECHNOLOGY_*.
    pub power_supply_technology: u8,
    /// Whether a battery is present.
    pub present: bool,
    /// Per cell, V.
    pub cell_voltage: Vec<f32>,
    /// Per cell, degC.
    pub cell_temperature: Vec<f32>,
    /// Where it is.
    pub location: String,
    /// Serial number.
    pub serial_number: String,
}

/// `rosgraph_msgs/msg/Clock`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ClockMsg {
    /// Simulated time.
    pub clock: Time,
}

/// `sensor_msgs/msg/Imu`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImuMsg {
    /// Stamp and frame.
    pub header: Header,
    /// Orientation.
    pub orientation: Quaternion,
    /// Its covariance.
    pub orientation_covariance: Fixed<9>,
    /// Angular velocity, rad/s.
    pub angular_velocity: Vector3,
    /// Its covariance.
    pub angular_velocity_covariance: Fixed<9>,
    /// Linear acceleration, m/s^2.
    pub linear_acceleration: Vector3,
    /// Its covariance.
    pub linear_acceleration_covariance: Fixed<9>,
}

/// `sensor_msgs/msg/LaserScan`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LaserScanMsg {
    /// Stamp and frame.
    pub header: Header,
    /// First beam's angle, rad (counter-clockwise from x).
    pub angle_min: f32,
    /// Last beam's angle, rad.
    pub angle_max: f32,
    /// Between beams, rad.
    pub angle_increment: f32,
    /// Between measurements, s.
    pub time_increment: f32,
    /// Between scans, s.
    pub scan_time: f32,
    /// Shortest valid range, m.
    pub range_min: f32,
    /// Longest valid range, m.
    pub range_max: f32,
    /// Ranges, m (NaN / out of [range_min, range_max]: no valid return; +inf: nothing in range).
    pub ranges: Vec<f32>,
    /// Intensities (may be empty).
    pub intensities: Vec<f32>,
}

/// `sensor_msgs/msg/Image`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageMsg {
    /// Stamp and frame.
    pub header: Header,
    /// Rows.
    pub height: u32,
    /// Columns.
    pub width: u32,
    /// `rgb8`, `bgr8`, `rgba8`, `bgra8`, `mono8`, ...
    pub encoding: String,
    /// Byte order of multi-byte pixels.
    pub is_bigendian: u8,
    /// Bytes per row.
    pub step: u32,
    /// The pixels.
    pub data: Vec<u8>,
}

/// `sensor_msgs/msg/CompressedImage`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompressedImageMsg {
    /// Stamp and frame.
    pub header: Header,
    /// `jpeg` or `png` (image_transport writes e.g. `rgb8; jpeg compressed bgr8`).
    pub format: String,
    /// The encoded image.
    pub data: Vec<u8>,
}

/// `std_msgs/msg/String`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StringMsg {
    /// The text.
    pub data: String,
}

/// `std_msgs/msg/Bool`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BoolMsg {
    /// The value.
    pub data: bool,
}

/// `std_msgs/msg/Float32`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Float32Msg {
    /// The value.
    pub data: f32,
}

// ------------------------------------------------------------------ the node's clock

/// The node's ROS clock: wall time (`CLOCK_REALTIME`), or the latest `/clock` with
/// `use_sim_time` (0 until the first one, as in `rclcpp`). Lock-free.
#[derive(Debug)]
pub struct RosClock {
    sim: Option<AtomicCell<i64>>,
}

impl RosClock {
    /// A clock for `use_sim_time`.
    pub fn new(use_sim_time: bool) -> Self {
        Self {
            sim: use_sim_time.then(|| AtomicCell::new(0)),
        }
    }
    /// Now, ns since the clock's epoch.
    pub fn now_ns(&self) -> i64 {
        match &self.sim {
            Some(c) => c.load(),
            None => crate::util::wall_ns(),
        }
    }
    /// A `/clock` message (ignored on a wall clock; time never runs backwards by less than a
    /// second, a bigger step is a simulator reset and is taken).
    pub fn set(&self, t: Time) {
        if let Some(c) = &self.sim {
            let (new, old) = (t.ns(), c.load());
            if new >= old || old - new > 1_000_000_000 {
                c.store(new);
            }
        }
    }
    /// The ROS time of a monotonic stamp `mono_ns`, given the monotonic time now.
    pub fn stamp(&self, mono_ns: u64, mono_now_ns: u64) -> Time {
        let age = mono_now_ns.saturating_sub(mono_ns) as i64;
        Time::from_ns(self.now_ns() - age)
    }
}

// ------------------------------------------------------------------ the mapping

/// Why an incoming message was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// An instruction over the byte limit.
    #[error("instruction of {len} bytes is longer than {max}")]
    TooLong {
        /// Its length, bytes.
        len: usize,
        /// The limit, bytes.
        max: usize,
    },
    /// A twist with a NaN or infinite component that would be used.
    #[error("non-finite twist")]
    NonFinite,
    /// A header in a frame the command does not mean.
    #[error("frame {0:?} is not the base frame (\"\", base_frame or base_link)")]
    WrongFrame(String),
    /// A header stamp of zero.
    #[error("header stamp is zero (stamp commands with the node clock)")]
    Unstamped,
    /// A header stamp too old.
    #[error("header stamp is {age_ms:.0} ms old (limit max_stamp_age_ms {max_ms:.0})")]
    Stale {
        /// Its age, ms.
        age_ms: f64,
        /// The limit, ms.
        max_ms: f64,
    },
    /// A header stamp in the future.
    #[error(
        "header stamp is {ahead_ms:.0} ms in the future (limit max_stamp_future_ms {max_ms:.0})"
    )]
    Future {
        /// How far ahead, ms.
        ahead_ms: f64,
        /// The limit, ms.
        max_ms: f64,
    },
    /// A message that does not decode as its type (wrong type, truncated, a string that is
    /// not UTF-8).
    #[error("undecodable: {0}")]
    Undecodable(String),
}

impl Rejected {
    /// A short stable name of the reason, for counters and `/diagnostics`.
    pub fn code(&self) -> &'static str {
        match self {
            Rejected::TooLong { .. } => "too_long",
            Rejected::NonFinite => "non_finite",
            Rejected::WrongFrame(_) => "wrong_frame",
            Rejected::Unstamped => "unstamped",
            Rejected::Stale { .. } => "stale_stamp",
            Rejected::Future { .. } => "future_stamp",
            Rejected::Undecodable(_) => "undecodable",
        }
    }
    /// Every code, in a fixed order.
    pub const CODES: [&'static str; 7] = [
        "too_long",
        "non_finite",
        "wrong_frame",
        "unstamped",
        "stale_stamp",
        "future_stamp",
        "undecodable",
    ];
}

/// `std_msgs/String` -> [`Instruction`] stamped `stamp_ns`; too long is rejected.
pub fn instruction(m: StringMsg, stamp_ns: u64, max_bytes: usize) -> Result<Instruction, Rejected> {
    if m.data.len() > max_bytes {
        return Err(Rejected::TooLong {
            len: m.data.len(),
            max: max_bytes,
        });
    }
    Ok(Instruction {
        stamp_ns,
        text: m.data,
    })
}

/// The planar twist of a ROS twist (`linear.x`, `angular.z`); `None` when either is not
/// finite.
pub fn planar_twist(m: &TwistMsg) -> Option<Twist> {
    let t = Twist {
        linear: m.linear.x,
        angular: m.angular.z,
    };
    t.is_finite().then_some(t)
}

/// `geometry_msgs/Twist` on `~/teleop/cmd_vel` -> [`TeleopCommand::Drive`].
pub fn teleop_drive(m: &TwistMsg) -> Result<TeleopCommand, Rejected> {
    planar_twist(m)
        .map(TeleopCommand::Drive)
        .ok_or(Rejected::NonFinite)
}

/// Check a command header against the node's clock `now_ns` and `settings`.
pub fn check_header(h: &Header, now_ns: i64, s: &RosSettings) -> Result<(), Rejected> {
    if !(h.frame_id.is_empty() || h.frame_id == s.base_frame || h.frame_id == "base_link") {
        return Err(Rejected::WrongFrame(h.frame_id.clone()));
    }
    if h.stamp == Time::default() {
        return Err(Rejected::Unstamped);
    }
    let age_ms = (now_ns - h.stamp.ns()) as f64 * 1e-6;
    if age_ms > s.max_stamp_age_ms {
        return Err(Rejected::Stale {
            age_ms,
            max_ms: s.max_stamp_age_ms,
        });
    }
    if -age_ms > s.max_stamp_future_ms {
        return Err(Rejected::Future {
            ahead_ms: -age_ms,
            max_ms: s.max_stamp_future_ms,
        });
    }
    Ok(())
}

/// `geometry_msgs/TwistStamped` on `~/teleop/cmd_vel` -> [`TeleopCommand::Drive`].
pub fn teleop_stamped(
    m: &TwistStampedMsg,
    now_ns: i64,
    s: &RosSettings,
) -> Result<TeleopCommand, Rejected> {
    check_header(&m.header, now_ns, s)?;
    teleop_drive(&m.twist)
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

/// brainloop [`Twist`] -> `geometry_msgs/Twist` for `cmd_vel`; `None` when not finite.
pub fn cmd_vel(t: Twist) -> Option<TwistMsg> {
    t.is_finite().then(|| TwistMsg::from(t))
}

/// brainloop [`Twist`] -> `geometry_msgs/TwistStamped` in `frame`; `None` when not finite.
pub fn cmd_vel_stamped(t: Twist, stamp: Time, frame: &str) -> Option<TwistStampedMsg> {
    cmd_vel(t).map(|twist| TwistStampedMsg {
        header: Header {
            stamp,
            frame_id: frame.to_string(),
        },
        twist,
    })
}

/// Drowsiness -> `std_msgs/Float32`; `None` when not finite.
pub fn drowsiness(d: f32) -> Option<Float32Msg> {
    d.is_finite().then_some(Float32Msg { data: d })
}

/// Odometry from a feed; `None` when anything is not finite. The covariance grows with the
/// distance driven (wheel odometry drifts), at 1 % of it in position and 2 deg per metre in yaw.
pub fn odometry(
    f: &RobotFeed,
    stamp: Time,
    s: &RosSettings,
    odometer_m: f64,
) -> Option<OdometryMsg> {
    let vals = [f.x, f.y, f.yaw, f.linear, f.angular, odometer_m];
    if !vals.iter().all(|v| v.is_finite()) {
        return None;
    }
    let sp = (0.01 * odometer_m).powi(2) + 1e-6;
    let sy = (2f64.to_radians() * odometer_m).powi(2) + 1e-6;
    Some(OdometryMsg {
        header: Header {
            stamp,
            frame_id: s.odom_frame.clone(),
        },
        child_frame_id: s.base_frame.clone(),
        pose: PoseWithCovariance {
            pose: Pose {
                position: Point {
                    x: f.x,
                    y: f.y,
                    z: 0.0,
                },
                orientation: Quaternion::yaw(f.yaw),
            },
            // z, roll and pitch do not move on a planar base: tiny, not unknown.
            covariance: Covariance::diagonal([sp, sp, 1e-9, 1e-9, 1e-9, sy]),
        },
        twist: TwistWithCovariance {
            twist: TwistMsg::from(Twist {
                linear: f.linear,
                angular: f.angular,
            }),
            covariance: Covariance::diagonal([1e-3, 1e-9, 1e-9, 1e-9, 1e-9, 3e-3]),
        },
    })
}

/// odom -> base on `/tf`; `None` when not finite.
pub fn tf(f: &RobotFeed, stamp: Time, s: &RosSettings) -> Option<TfMessage> {
    if !(f.x.is_finite() && f.y.is_finite() && f.yaw.is_finite()) {
        return None;
    }
    Some(TfMessage {
        transforms: vec![TransformStamped {
            header: Header {
                stamp,
                frame_id: s.odom_frame.clone(),
            },
            child_frame_id: s.base_frame.clone(),
            transform: Transform {
                translation: Vector3 {
                    x: f.x,
                    y: f.y,
                    z: 0.0,
                },
                rotation: Quaternion::yaw(f.yaw),
            },
        }],
    })
}

/// The wheel joints; `None` when not finite.
pub fn joint_states(f: &RobotFeed, stamp: Time, s: &RosSettings) -> Option<JointStateMsg> {
    if !f
        .wheel_pos
        .iter()
        .chain(&f.wheel_vel)
        .all(|v| v.is_finite())
    {
        return None;
    }
    Some(JointStateMsg {
        header: Header {
            stamp,
            frame_id: String::new(),
        },
        name: s.wheel_joints.to_vec(),
        position: f.wheel_pos.to_vec(),
        velocity: f.wheel_vel.to_vec(),
        effort: Vec::new(),
    })
}

/// `BatteryState` from the health feed (a LiPo pack of `battery_cells` cells, 3.3-4.2 V each).
pub fn battery(d: &DiagFeed, stamp: Time, s: &RosSettings) -> BatteryStateMsg {
    let known = d.battery_v.is_finite() && d.battery_v > 0.0;
    let percentage = if known && s.battery_cells > 0 {
        let cell = d.battery_v / s.battery_cells as f64;
        ((cell - 3.3) / (4.2 - 3.3)).clamp(0.0, 1.0) as f32
    } else {
        f32::NAN
    };
    BatteryStateMsg {
        header: Header {
            stamp,
            frame_id: s.base_frame.clone(),
        },
        voltage: if known { d.battery_v as f32 } else { f32::NAN },
        temperature: f32::NAN,
        current: f32::NAN,
        charge: f32::NAN,
        capacity: f32::NAN,
        design_capacity: f32::NAN,
        percentage,
        power_supply_status: 0,     // UNKNOWN
        power_supply_health: 0,     // UNKNOWN
        power_supply_technology: 3, // LIPO
        present: known,
        cell_voltage: Vec::new(),
        cell_temperature: Vec::new(),
        location: "base".into(),
        serial_number: String::new(),
    }
}

/// Largest camera frame accepted, pixels (4096 x 4096).
pub const MAX_IMAGE_PIXELS: u64 = 4096 * 4096;

/// `sensor_msgs/Image` -> RGB8, stamped `stamp_ns`: `rgb8`, `bgr8`, `rgba8`, `bgra8` and
/// `mono8` are converted; any other encoding, a `step` or `data` that does not fit the size,
/// or a frame over [`MAX_IMAGE_PIXELS`] is refused.
pub fn image(m: &ImageMsg, stamp_ns: u64) -> Result<crate::msg::RgbImage, Rejected> {
    let bad = |why: String| Err(Rejected::Undecodable(why));
    let (w, h) = (m.width as usize, m.height as usize);
    if w == 0 || h == 0 || (w as u64) * (h as u64) > MAX_IMAGE_PIXELS {
        return bad(format!("image {}x{}", m.width, m.height));
    }
    let (bpp, order): (usize, [usize; 3]) = match m.encoding.as_str() {
        "rgb8" => (3, [0, 1, 2]),
        "bgr8" => (3, [2, 1, 0]),
        "rgba8" => (4, [0, 1, 2]),
        "bgra8" => (4, [2, 1, 0]),
        "mono8" => (1, [0, 0, 0]),
        e => {
            return bad(format!(
                "image encoding {e:?} (rgb8, bgr8, rgba8, bgra8, mono8)"
            ))
        }
    };
    let step = m.step as usize;
    if step < w * bpp || m.data.len() < step * (h - 1) + w * bpp {
        return bad(format!(
            "image {}x{} {} with step {} and {} bytes",
            m.width,
            m.height,
            m.encoding,
            m.step,
            m.data.len()
        ));
    }
    let mut data = Vec::with_capacity(w * h * 3);
    for row in m.data.chunks(step).take(h) {
        for px in row[..w * bpp].chunks_exact(bpp) {
            data.extend(order.iter().map(|&i| px[i]));
        }
    }
    Ok(crate::msg::RgbImage {
        stamp_ns,
        width: m.width,
        height: m.height,
        data,
    })
}

/// `sensor_msgs/CompressedImage` (JPEG or PNG) -> RGB8, stamped `stamp_ns`; refused when it
/// does not decode or is over [`MAX_IMAGE_PIXELS`].
pub fn compressed_image(
    m: &CompressedImageMsg,
    stamp_ns: u64,
) -> Result<crate::msg::RgbImage, Rejected> {
    let r = image::ImageReader::new(std::io::Cursor::new(&m.data))
        .with_guessed_format()
        .map_err(|e| Rejected::Undecodable(format!("compressed image: {e}")))?;
    let (w, h) = r
        .into_dimensions()
        .map_err(|e| Rejected::Undecodable(format!("compressed image: {e}")))?;
    if w == 0 || h == 0 || (w as u64) * (h as u64) > MAX_IMAGE_PIXELS {
        return Err(Rejected::Undecodable(format!("compressed image {w}x{h}")));
    }
    let img = image::load_from_memory(&m.data)
        .map_err(|e| Rejected::Undecodable(format!("compressed image ({}): {e}", m.format)))?
        .to_rgb8();
    Ok(crate::msg::RgbImage {
        stamp_ns,
        width: img.width(),
        height: img.height(),
        data: img.into_raw(),
    })
}

/// What the bridge counted itself, for `/diagnostics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BridgeCounts {
    /// Refused incoming messages per [`Rejected::code`].
    pub rejected: Vec<(&'static str, u64)>,
    /// `cmd_vel` messages published.
    pub cmd_vel_published: u64,
}

/// `/diagnostics` from the health feed: the loop, each region, the link, the battery and the
/// bridge's own counters, one status each.
pub fn diagnostics(d: &DiagFeed, stamp: Time, node: &str, b: &BridgeCounts) -> DiagnosticArray {
    let kv = |k: &str, v: String| KeyValue {
        key: k.into(),
        value: v,
    };
    let st = |level: u8, name: &str, message: String, values: Vec<KeyValue>| DiagnosticStatus {
        level,
        name: format!("{node}: {name}"),
        message,
        hardware_id: node.into(),
        values,
    };
    let mut status = Vec::new();
    let slow = d.measured_hz < 0.9 * d.rate_hz;
    let loop_level = if d.estop || d.drowsiness >= 0.7 || slow {
        1
    } else {
        0
    };
    status.push(st(
        loop_level,
        "integrator",
        if d.estop {
            "e-stop latched".into()
        } else if slow {
            format!("loop at {:.0} of {:.0} Hz", d.measured_hz, d.rate_hz)
        } else {
            format!("{} (drowsiness {:.2})", d.mode, d.drowsiness)
        },
        vec![
            kv("rate_hz", format!("{:.1}", d.rate_hz)),
            kv("measured_hz", format!("{:.1}", d.measured_hz)),
            kv("jitter_p99_us", format!("{:.1}", d.jitter_p99_us)),
            kv("compute_p99_us", format!("{:.1}", d.compute_p99_us)),
            kv("ticks", d.ticks.to_string()),
            kv("missed_ticks", d.missed.to_string()),
            kv("drowsiness", format!("{:.3}", d.drowsiness)),
            kv("sleeps", d.sleeps.to_string()),
            kv("mode", d.mode.clone()),
            kv("estop", d.estop.to_string()),
        ],
    ));
    for r in &d.regions {
        status.push(st(
            if r.fresh { 0 } else { 3 },
            &format!("region {}", r.name),
            if r.fresh {
                "fresh".into()
            } else {
                "stale".into()
            },
            vec![
                kv("fresh", r.fresh.to_string()),
                kv("stale_ticks", r.stale_ticks.to_string()),
            ],
        ));
    }
    if let Some(l) = &d.link {
        status.push(st(
            if !l.connected {
                2
            } else if l.crc_errors + l.decode_errors + l.implausible_telemetry > 0 {
                1
            } else {
                0
            },
            "serial link",
            if l.connected {
                "connected".into()
            } else {
                "disconnected".into()
            },
            vec![
                kv("connected", l.connected.to_string()),
                kv("crc_errors", l.crc_errors.to_string()),
                kv("decode_errors", l.decode_errors.to_string()),
                kv("reconnects", l.connects.saturating_sub(1).to_string()),
                kv("seq_gaps", l.seq_gaps.to_string()),
                kv("board_rx_errors", l.board_rx_errors.to_string()),
                kv("implausible_telemetry", l.implausible_telemetry.to_string()),
            ],
        ));
    }
    status.push(st(
        if d.battery_v > 0.0 { 0 } else { 3 },
        "battery",
        if d.battery_v > 0.0 {
            format!("{:.2} V", d.battery_v)
        } else {
            "unknown".into()
        },
        vec![kv("voltage", format!("{:.2}", d.battery_v))],
    ));
    let total: u64 = b.rejected.iter().map(|r| r.1).sum();
    let mut values: Vec<KeyValue> = b
        .rejected
        .iter()
        .map(|(c, n)| kv(&format!("rejected_{c}"), n.to_string()))
        .collect();
    values.push(kv("cmd_vel_published", b.cmd_vel_published.to_string()));
    status.push(st(
        if total > 0 { 1 } else { 0 },
        "ros bridge",
        format!("{total} messages rejected"),
        values,
    ));
    DiagnosticArray {
        header: Header {
            stamp,
            frame_id: String::new(),
        },
        status,
    }
}

// ------------------------------------------------------------------ a ROS 2 base driver as the body

/// Topics in when the body is a ROS 2 base driver (`--body ros2`: Gazebo's diff drive, a
/// vendor base): its wheel joints, its IMU and its laser.
pub const BASE_JOINT_STATES: RosTopic =
    RosTopic::new("joint_states", "sensor_msgs", "JointState", In, SensorData);
/// The base's IMU.
pub const BASE_IMU: RosTopic = RosTopic::new("imu", "sensor_msgs", "Imu", In, SensorData);
/// The base's laser, as the range rays.
pub const BASE_SCAN: RosTopic = RosTopic::new("scan", "sensor_msgs", "LaserScan", In, SensorData);

/// The body's encoders and wheel speeds from a base driver's `JointState` (the joints named
/// `left_wheel_joint` / `right_wheel_joint` in the settings), into `b`. Refused when a wheel
/// joint is missing or not finite; `b` is then unchanged.
pub fn base_joint_states(
    m: &JointStateMsg,
    s: &RosSettings,
    ticks_per_rev: u32,
    b: &mut crate::msg::BodyState,
) -> Result<(), Rejected> {
    let mut ticks = [0i64; 2];
    let mut speed = [0f64; 2];
    for (i, joint) in s.wheel_joints.iter().enumerate() {
        let k = m
            .name
            .iter()
            .position(|n| n == joint)
            .ok_or_else(|| Rejected::Undecodable(format!("no joint {joint}")))?;
        let p = m.position.get(k).copied().unwrap_or(f64::NAN);
        let v = m.velocity.get(k).copied().unwrap_or(0.0);
        if !(p.is_finite() && v.is_finite()) {
            return Err(Rejected::NonFinite);
        }
        ticks[i] = (p / std::f64::consts::TAU * ticks_per_rev as f64).round() as i64;
        speed[i] = v;
    }
    b.encoder_ticks = ticks;
    b.wheel_speed = speed;
    Ok(())
}

/// The body's gyro and accelerometer from a base's `Imu`, into `b`; refused when not finite.
pub fn base_imu(m: &ImuMsg, b: &mut crate::msg::BodyState) -> Result<(), Rejected> {
    let (w, a) = (m.angular_velocity, m.linear_acceleration);
    if ![w.z, a.x, a.y].iter().all(|v| v.is_finite()) {
        return Err(Rejected::NonFinite);
    }
    b.gyro_z = w.z;
    b.accel = [a.x, a.y];
    Ok(())
}

/// A laser scan as the body's range rays at `rays` (directions in the base frame, rad, right
/// to left): each ray is the nearest valid return within half a ray spacing of it (a sector
/// minimum: an obstacle between two rays is not lost), `range_max` where nothing is in
/// range. Invalid beams (NaN, under `range_min`) are skipped; a sector with no valid beam
/// reads `range_max` only if the scan saw it free (+inf or over `range_max`), else 0 (blind:
/// treated as blocked). Refused when the scan's geometry is not finite or empty.
pub fn scan_rays(m: &LaserScanMsg, rays: &[f64], range_max: f32) -> Result<Vec<f32>, Rejected> {
    if !(m.angle_min.is_finite() && m.angle_increment.is_finite())
        || m.angle_increment == 0.0
        || m.ranges.is_empty()
    {
        return Err(Rejected::Undecodable(
            "laser scan with no beams or no geometry".into(),
        ));
    }
    let half = if rays.len() > 1 {
        (rays[1] - rays[0]).abs() / 2.0
    } else {
        std::f64::consts::PI
    };
    Ok(rays
        .iter()
        .map(|&a| {
            let mut best: Option<f32> = None;
            let mut free = false;
            for (i, &r) in m.ranges.iter().enumerate() {
                let beam = m.angle_min as f64 + i as f64 * m.angle_increment as f64;
                let d = (beam - a + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU)
                    - std::f64::consts::PI;
                if d.abs() > half {
                    continue;
                }
                if r.is_nan() || r < m.range_min {
                    continue;
                }
                if r.is_infinite() || r > m.range_max {
                    free = true;
                    continue;
                }
                best = Some(best.map_or(r, |b: f32| b.min(r)));
            }
            match best {
                Some(b) => b.min(range_max),
                None if free => range_max,
                None => 0.0,
            }
        })
        .collect())
}

// ------------------------------------------------------------------ onto and off the bus

/// What became of one incoming ROS 2 message.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Mapped and queued by every subscriber on the bus.
    Delivered,
    /// Mapped, but nobody on the bus subscribes or a full queue dropped it.
    Dropped,
    /// Valid, but it means nothing now (`false` on `~/estop`, `/clock` on a wall clock).
    Ignored,
    /// Refused.
    Rejected(Rejected),
}

impl From<Delivery> for Outcome {
    fn from(d: Delivery) -> Self {
        if d.complete() {
            Outcome::Delivered
        } else {
            Outcome::Dropped
        }
    }
}

/// Longest e-stop reset token accepted, bytes.
pub const MAX_RESET_BYTES: usize = 4096;

/// The incoming side of one ROS 2 bridge: checks and maps what arrives and publishes it on the
/// bus (instructions on [`topics::INSTRUCTION`], teleop and e-stop on
/// [`topics::TELEOP_REMOTE`], reset tokens on [`topics::ESTOP_RESET`]).
pub struct Inbound<B> {
    bus: B,
    settings: RosSettings,
    clock: std::sync::Arc<RosClock>,
    mono: fn() -> u64,
    base: Option<BaseIn>,
}

/// What a base driver has reported so far.
struct BaseIn {
    ticks_per_rev: u32,
    rays: Vec<f64>,
    range_max: f32,
    state: crate::msg::BodyState,
}

impl<B: Bus> Inbound<B> {
    /// Publish onto `bus`; teleop stamps are checked against `clock`, instructions stamped
    /// with `mono()` (monotonic ns).
    pub fn new(
        bus: B,
        settings: RosSettings,
        clock: std::sync::Arc<RosClock>,
        mono: fn() -> u64,
    ) -> Self {
        Self {
            bus,
            settings,
            clock,
            mono,
            base: None,
        }
    }

    /// Also take a base driver's `joint_states`, `imu` and `scan` as the body's state (on
    /// [`topics::BASE_STATE`], stamped on arrival so a silent driver goes stale): encoders
    /// of `ticks_per_rev`, range rays at `rays` (rad) up to `range_max` (m).
    pub fn with_base(mut self, ticks_per_rev: u32, rays: Vec<f64>, range_max: f32) -> Self {
        self.base = Some(BaseIn {
            ticks_per_rev,
            rays,
            range_max,
            state: crate::msg::BodyState::default(),
        });
        self
    }

    fn base_update(
        &mut self,
        f: impl FnOnce(&mut BaseIn) -> Result<(), Rejected>,
        stamp: bool,
    ) -> Outcome {
        let now = (self.mono)();
        let Some(b) = self.base.as_mut() else {
            return Outcome::Ignored;
        };
        if let Err(r) = f(b) {
            return Outcome::Rejected(r);
        }
        // The wheels are what make the body fresh: an IMU or a laser alone does not.
        if stamp {
            b.state.stamp_ns = now;
        }
        if b.state.stamp_ns == 0 {
            return Outcome::Ignored;
        }
        let s = b.state;
        self.bus.publish(topics::BASE_STATE, &s).into()
    }

    /// A base driver's `joint_states`.
    pub fn base_joint_states(&mut self, m: &JointStateMsg) -> Outcome {
        let s = self.settings.clone();
        self.base_update(
            |b| base_joint_states(m, &s, b.ticks_per_rev, &mut b.state),
            true,
        )
    }

    /// A base driver's `imu`.
    pub fn base_imu(&mut self, m: &ImuMsg) -> Outcome {
        self.base_update(|b| base_imu(m, &mut b.state), false)
    }

    /// A base driver's `scan`.
    pub fn base_scan(&mut self, m: &LaserScanMsg) -> Outcome {
        self.base_update(
            |b| {
                let r = scan_rays(m, &b.rays, b.range_max)?;
                let n = r.len().min(crate::msg::RANGE_RAYS_MAX);
                b.state.range = [0.0; crate::msg::RANGE_RAYS_MAX];
                b.state.range[..n].copy_from_slice(&r[..n]);
                b.state.range_count = n as u8;
                Ok(())
            },
            false,
        )
    }

    /// A message from `~/instruction`.
    pub fn instruction(&mut self, m: StringMsg) -> Outcome {
        match instruction(m, (self.mono)(), self.settings.max_instruction_bytes) {
            Ok(i) => self.bus.publish(topics::INSTRUCTION, &i).into(),
            Err(r) => Outcome::Rejected(r),
        }
    }

    /// A `TwistStamped` from `~/teleop/cmd_vel`.
    pub fn teleop_stamped(&mut self, m: &TwistStampedMsg) -> Outcome {
        match teleop_stamped(m, self.clock.now_ns(), &self.settings) {
            Ok(c) => publish_teleop(&self.bus, topics::TELEOP_REMOTE, c).into(),
            Err(r) => Outcome::Rejected(r),
        }
    }

    /// A `Twist` from `~/teleop/cmd_vel` (`teleop_stamped: false`).
    pub fn teleop(&mut self, m: &TwistMsg) -> Outcome {
        match teleop_drive(m) {
            Ok(c) => publish_teleop(&self.bus, topics::TELEOP_REMOTE, c).into(),
            Err(r) => Outcome::Rejected(r),
        }
    }

    /// A message from `~/estop`: `true` latches, `false` never clears.
    pub fn estop(&mut self, m: BoolMsg) -> Outcome {
        if m.data {
            publish_teleop(&self.bus, topics::TELEOP_REMOTE, TeleopCommand::Estop).into()
        } else {
            Outcome::Ignored
        }
    }

    /// A message from `~/estop_reset`: handed to the run, which verifies the signature.
    pub fn estop_reset(&mut self, m: StringMsg) -> Outcome {
        if m.data.len() > MAX_RESET_BYTES {
            return Outcome::Rejected(Rejected::TooLong {
                len: m.data.len(),
                max: MAX_RESET_BYTES,
            });
        }
        self.bus.publish(topics::ESTOP_RESET, &m.data).into()
    }

    /// A frame from `camera/image_raw`.
    pub fn camera(&mut self, m: &ImageMsg) -> Outcome {
        match image(m, (self.mono)()) {
            Ok(f) => self.bus.publish(topics::CAMERA, &f).into(),
            Err(r) => Outcome::Rejected(r),
        }
    }

    /// A frame from `camera/image_raw/compressed`.
    pub fn camera_compressed(&mut self, m: &CompressedImageMsg) -> Outcome {
        match compressed_image(m, (self.mono)()) {
            Ok(f) => self.bus.publish(topics::CAMERA, &f).into(),
            Err(r) => Outcome::Rejected(r),
        }
    }

    /// A message from `/clock`.
    pub fn clock(&mut self, m: ClockMsg) -> Outcome {
        if self.settings.use_sim_time {
            self.clock.set(m.clock);
            Outcome::Delivered
        } else {
            Outcome::Ignored
        }
    }
}

/// What the bridge should publish now, from [`Outbound::poll`].
#[derive(Debug, Default)]
pub struct OutMessages {
    /// `cmd_vel` as `TwistStamped` (with `stamped`).
    pub cmd_vel_stamped: Vec<TwistStampedMsg>,
    /// `cmd_vel` as `Twist` (without `stamped`).
    pub cmd_vel: Vec<TwistMsg>,
    /// Commands that were not finite (never published).
    pub cmd_vel_dropped: u64,
    /// `odom`.
    pub odom: Option<OdometryMsg>,
    /// `/tf`.
    pub tf: Option<TfMessage>,
    /// `joint_states`.
    pub joint_states: Option<JointStateMsg>,
    /// `battery_state`.
    pub battery: Option<BatteryStateMsg>,
    /// `/diagnostics`.
    pub diagnostics: Option<DiagnosticArray>,
    /// `~/drowsiness`.
    pub drowsiness: Option<Float32Msg>,
}

/// The outgoing side of one ROS 2 bridge: what the brain publishes on the bus
/// ([`topics::CMD_VEL`], [`topics::ROBOT_FEED`], [`topics::DIAG_FEED`],
/// [`topics::DROWSINESS`]), as ROS 2 messages.
pub struct Outbound {
    cmd_vel: Subscription<Twist>,
    feed: Subscription<RobotFeed>,
    diag: Subscription<DiagFeed>,
    drowsiness: Subscription<f32>,
    settings: RosSettings,
    clock: std::sync::Arc<RosClock>,
    node: String,
    last_feed: Option<RobotFeed>,
    odometer_m: f64,
}

impl Outbound {
    /// Subscribe to the outgoing topics on `bus` (`cmd_depth` twists are queued); `node` names
    /// the `/diagnostics` statuses.
    pub fn new<B: Bus>(
        bus: &B,
        cmd_depth: usize,
        settings: RosSettings,
        clock: std::sync::Arc<RosClock>,
        node: &str,
    ) -> Self {
        Self {
            cmd_vel: bus.subscribe(topics::CMD_VEL, cmd_depth),
            feed: bus.subscribe(topics::ROBOT_FEED, 4),
            diag: bus.subscribe(topics::DIAG_FEED, 2),
            drowsiness: bus.subscribe(topics::DROWSINESS, 4),
            settings,
            clock,
            node: node.into(),
            last_feed: None,
            odometer_m: 0.0,
        }
    }

    /// The node's clock now, ns.
    pub fn now_ns(&self) -> i64 {
        self.clock.now_ns()
    }

    /// The settings.
    pub fn settings(&self) -> &RosSettings {
        &self.settings
    }

    /// Everything to publish since the last call (commands oldest first; the latest feed,
    /// health and drowsiness), stamped with the node's clock at monotonic time `mono_now`.
    pub fn poll(&mut self, mono_now: u64, counts: &BridgeCounts) -> OutMessages {
        let mut out = OutMessages::default();
        let now = Time::from_ns(self.clock.now_ns());
        while let Some(t) = self.cmd_vel.try_recv() {
            if self.settings.stamped {
                match cmd_vel_stamped(t, now, &self.settings.base_frame) {
                    Some(m) => out.cmd_vel_stamped.push(m),
                    None => out.cmd_vel_dropped += 1,
                }
            } else {
                match cmd_vel(t) {
                    Some(m) => out.cmd_vel.push(m),
                    None => out.cmd_vel_dropped += 1,
                }
            }
        }
        if let Some(f) = self.feed.latest() {
            if let Some(p) = self.last_feed {
                let d = ((f.x - p.x).powi(2) + (f.y - p.y).powi(2)).sqrt();
                if d.is_finite() {
                    self.odometer_m += d;
                }
            }
            self.last_feed = Some(f);
            let stamp = self.clock.stamp(f.stamp_ns, mono_now);
            let s = &self.settings;
            out.odom = s
                .publish_odom
                .then(|| odometry(&f, stamp, s, self.odometer_m))
                .flatten();
            out.tf = s.publish_tf.then(|| tf(&f, stamp, s)).flatten();
            out.joint_states = s
                .publish_joint_states
                .then(|| joint_states(&f, stamp, s))
                .flatten();
        }
        if let Some(d) = self.diag.latest() {
            let stamp = self.clock.stamp(d.stamp_ns, mono_now);
            out.battery = Some(battery(&d, stamp, &self.settings));
            out.diagnostics = Some(diagnostics(&d, stamp, &self.node, counts));
        }
        out.drowsiness = std::iter::from_fn(|| self.drowsiness.try_recv())
            .filter_map(drowsiness)
            .last();
        out
    }
}

/// The `--ros-args` part of a run: the node's name and namespace and its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RosNode {
    /// Node name (`brainloop`, or `-r __node:=`).
    pub name: String,
    /// Namespace (`/`, or `-r __ns:=`).
    pub namespace: String,
    /// The bridge's settings, from the parameters.
    pub settings: RosSettings,
    /// The arguments, for resolving topic names.
    pub args: crate::bus::ros_args::RosArgs,
    /// Whether the body is a ROS 2 base driver (its `joint_states`, `imu`, `scan` are read).
    pub base: bool,
}

impl RosNode {
    /// The node for `args` (default name `default_node`).
    pub fn new(args: crate::bus::ros_args::RosArgs, default_node: &str) -> Result<Self, String> {
        Self::build(args, default_node, false)
    }

    /// The node for `args` when the body is a ROS 2 base driver
    /// ([`RosSettings::for_base_driver`]).
    pub fn for_base_driver(
        args: crate::bus::ros_args::RosArgs,
        default_node: &str,
    ) -> Result<Self, String> {
        Self::build(args, default_node, true)
    }

    fn build(
        args: crate::bus::ros_args::RosArgs,
        default_node: &str,
        base: bool,
    ) -> Result<Self, String> {
        let params = args.parameters(default_node).map_err(|e| e.to_string())?;
        Ok(Self {
            name: args.node(default_node),
            namespace: args.ns(),
            settings: if base {
                RosSettings::for_base_driver(&params)?
            } else {
                RosSettings::from_params(&params)?
            },
            args,
            base,
        })
    }
    /// The fully qualified, remapped name of `t`.
    pub fn resolve(&self, t: &RosTopic) -> String {
        self.args.resolve(t.name, &self.name)
    }
    /// Every topic of the node: [`contract`], and the base driver's with `base`.
    pub fn topics(&self) -> Vec<RosTopic> {
        let mut v = contract(&self.settings);
        if self.base {
            v.splice(0..0, [BASE_JOINT_STATES, BASE_IMU, BASE_SCAN]);
        }
        v
    }

    /// The topics with resolved names, as JSON (`brainloop ros topics --json`).
    pub fn contract_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.topics()
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "name": self.resolve(t),
                        "type": t.ros_type(),
                        "direction": t.direction,
                        "qos": t.qos,
                    })
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::cdr::{RosBool, RosFloat32, RosMessage, RosString};
    use crate::bus::LocalBus;
    use std::sync::Arc;

    #[test]
    fn topic_types_are_the_cdr_encoders_types() {
        assert_eq!(INSTRUCTION.ros_type(), RosString::TYPE_NAME);
        assert_eq!(INSTRUCTION.dds_type(), RosString::DDS_TYPE_NAME);
        assert_eq!(ESTOP.ros_type(), RosBool::TYPE_NAME);
        assert_eq!(ESTOP.dds_type(), RosBool::DDS_TYPE_NAME);
        assert_eq!(DROWSINESS.ros_type(), RosFloat32::TYPE_NAME);
        assert_eq!(DROWSINESS.dds_type(), RosFloat32::DDS_TYPE_NAME);
        for t in [TELEOP_CMD_VEL_UNSTAMPED, CMD_VEL_UNSTAMPED] {
            assert_eq!(t.ros_type(), Twist::TYPE_NAME);
            assert_eq!(t.dds_type(), Twist::DDS_TYPE_NAME);
        }
        assert_eq!(
            CMD_VEL.dds_type(),
            "geometry_msgs::msg::dds_::TwistStamped_"
        );
        assert_eq!(ODOM.ros_type(), "nav_msgs/msg/Odometry");
    }

    #[test]
    fn the_contract_follows_the_settings_and_the_remaps() {
        let node = |args: &[&str]| {
            let mut v = vec!["brainloop".into()];
            v.extend(args.iter().map(std::ffi::OsString::from));
            RosNode::new(crate::bus::ros_args::split(v).unwrap().1, "brainloop")
        };
        let n = node(&["--ros-args", "-r", "__node:=brainloop"]).unwrap();
        let names: Vec<String> = contract(&n.settings).iter().map(|t| n.resolve(t)).collect();
        assert_eq!(
            names,
            [
                "/brainloop/instruction",
                "/brainloop/teleop/cmd_vel",
                "/brainloop/estop",
                "/brainloop/estop_reset",
                "/cmd_vel",
                "/odom",
                "/tf",
                "/joint_states",
                "/battery_state",
                "/diagnostics",
                "/brainloop/drowsiness"
            ]
        );
        let j = n.contract_json();
        assert_eq!(j[4]["type"], "geometry_msgs/msg/TwistStamped");
        assert_eq!(j[4]["direction"], "out");
        let n = node(&[
            "--ros-args",
            "-r",
            "__ns:=/r1",
            "-r",
            "cmd_vel:=/base/cmd_vel",
            "-p",
            "stamped:=false",
            "-p",
            "publish_odom:=false",
            "-p",
            "publish_tf:=false",
            "-p",
            "use_sim_time:=true",
        ])
        .unwrap();
        let c = contract(&n.settings);
        assert!(c.contains(&CMD_VEL_UNSTAMPED) && c.contains(&CLOCK));
        assert!(!c.contains(&ODOM) && !c.contains(&TF));
        assert_eq!(n.resolve(&CMD_VEL_UNSTAMPED), "/base/cmd_vel");
        assert_eq!(n.resolve(&ESTOP), "/r1/brainloop/estop");
        assert_eq!(n.resolve(&JOINT_STATES), "/r1/joint_states");
        let e = node(&["--ros-args", "-p", "stamped:=1"]).unwrap_err();
        assert!(
            e.contains("parameter stamped: expected true or false"),
            "{e}"
        );
        let e = node(&["--ros-args", "-p", "max_stamp_age_ms:=nan"]).unwrap_err();
        assert!(e.contains("max_stamp_age_ms"), "{e}");
        let e = node(&["--ros-args", "-p", "stampd:=true"]).unwrap_err();
        assert!(e.contains("unknown parameter stampd"), "{e}");
    }

    #[test]
    fn instructions_are_stamped_and_bounded() {
        let m = |s: &str| StringMsg { data: s.into() };
        assert_eq!(
            instruction(m("go to the red ball"), 5, 1024),
            Ok(Instruction {
                stamp_ns: 5,
                text: "go to the red ball".into()
            })
        );
        assert_eq!(
            instruction(m("abcde"), 0, 4),
            Err(Rejected::TooLong { len: 5, max: 4 })
        );
        // The limit counts bytes, not characters.
        assert!(instruction(m("ünï"), 0, 4).is_err());
    }

    #[test]
    fn teleop_twists_are_planar_finite_in_frame_and_fresh() {
        let s = RosSettings::default();
        let now = 1_000 * 1_000_000_000i64;
        let mut m = TwistStampedMsg::default();
        m.header.stamp = Time::from_ns(now - 20_000_000);
        m.twist.linear.x = 0.1;
        m.twist.linear.y = 7.0; // ignored: the base is planar
        m.twist.angular.z = 0.2;
        m.twist.angular.x = f64::NAN; // unused, so not a reason to refuse
        let drive = TeleopCommand::Drive(Twist {
            linear: 0.1,
            angular: 0.2,
        });
        assert_eq!(teleop_stamped(&m, now, &s), Ok(drive));
        for f in ["base_footprint", "base_link"] {
            m.header.frame_id = f.into();
            assert_eq!(teleop_stamped(&m, now, &s), Ok(drive));
        }
        m.header.frame_id = "odom".into();
        assert_eq!(
            teleop_stamped(&m, now, &s).unwrap_err().code(),
            "wrong_frame"
        );
        m.header.frame_id.clear();
        m.header.stamp = Time::from_ns(now - 600_000_000);
        assert_eq!(
            teleop_stamped(&m, now, &s).unwrap_err().code(),
            "stale_stamp"
        );
        m.header.stamp = Time::from_ns(now + 300_000_000);
        assert_eq!(
            teleop_stamped(&m, now, &s).unwrap_err().code(),
            "future_stamp"
        );
        m.header.stamp = Time::default();
        assert_eq!(teleop_stamped(&m, now, &s).unwrap_err().code(), "unstamped");
        m.header.stamp = Time::from_ns(now);
        m.twist.linear.x = f64::INFINITY;
        assert_eq!(teleop_stamped(&m, now, &s), Err(Rejected::NonFinite));
        assert_eq!(planar_twist(&m.twist), None);
        for r in [
            Rejected::NonFinite,
            Rejected::Unstamped,
            Rejected::Undecodable("x".into()),
        ] {
            assert!(Rejected::CODES.contains(&r.code()));
        }
    }

    #[test]
    fn sim_time_follows_clock_and_never_steps_back_a_little() {
        let c = RosClock::new(true);
        assert_eq!(c.now_ns(), 0);
        c.set(Time { sec: 5, nanosec: 0 });
        c.set(Time {
            sec: 4,
            nanosec: 900_000_000,
        });
        assert_eq!(c.now_ns(), 5_000_000_000);
        c.set(Time { sec: 1, nanosec: 0 }); // a reset of the simulator
        assert_eq!(c.now_ns(), 1_000_000_000);
        assert_eq!(c.stamp(900, 1_000).ns(), 1_000_000_000 - 100);
        let w = RosClock::new(false);
        assert!((w.now_ns() - crate::util::wall_ns()).abs() < 1_000_000_000);
    }

    fn feed() -> RobotFeed {
        RobotFeed {
            stamp_ns: 10,
            x: 1.0,
            y: 2.0,
            yaw: std::f64::consts::FRAC_PI_2,
            linear: 0.3,
            angular: 0.1,
            wheel_pos: [1.5, -0.5],
            wheel_vel: [3.0, 4.0],
        }
    }

    #[test]
    fn odometry_tf_and_joints_from_the_feed() {
        let s = RosSettings::default();
        let t = Time { sec: 3, nanosec: 4 };
        let o = odometry(&feed(), t, &s, 2.0).unwrap();
        assert_eq!(
            (o.header.frame_id.as_str(), o.child_frame_id.as_str()),
            ("odom", "base_footprint")
        );
        assert_eq!(o.header.stamp, t);
        assert!((o.pose.pose.orientation.z - (0.5f64).sqrt()).abs() < 1e-12);
        assert!((o.pose.covariance.0[0] - (0.02f64.powi(2) + 1e-6)).abs() < 1e-12);
        assert_eq!(o.pose.covariance.0[1], 0.0);
        assert_eq!(o.twist.twist.linear.x, 0.3);
        let tf = tf(&feed(), t, &s).unwrap();
        assert_eq!(tf.transforms[0].child_frame_id, "base_footprint");
        assert_eq!(tf.transforms[0].transform.translation.y, 2.0);
        let j = joint_states(&feed(), t, &s).unwrap();
        assert_eq!(j.name, ["left_wheel_joint", "right_wheel_joint"]);
        assert_eq!(j.position, [1.5, -0.5]);
        let mut bad = feed();
        bad.yaw = f64::NAN;
        assert!(odometry(&bad, t, &s, 0.0).is_none() && self::tf(&bad, t, &s).is_none());
        bad = feed();
        bad.wheel_vel[1] = f64::INFINITY;
        assert!(joint_states(&bad, t, &s).is_none());
    }

    #[test]
    fn diagnostics_and_battery_from_the_health_feed() {
        let d = DiagFeed {
            rate_hz: 100.0,
            measured_hz: 99.5,
            drowsiness: 0.25,
            mode: "search".into(),
            regions: vec![
                crate::msg::RegionFresh {
                    name: "vision".into(),
                    fresh: true,
                    stale_ticks: 0,
                },
                crate::msg::RegionFresh {
                    name: "language".into(),
                    fresh: false,
                    stale_ticks: 12,
                },
            ],
            link: Some(crate::msg::LinkFeed {
                connected: true,
                crc_errors: 2,
                decode_errors: 0,
                connects: 3,
                ..Default::default()
            }),
            battery_v: 11.7,
            ..Default::default()
        };
        let b = BridgeCounts {
            rejected: vec![("stale_stamp", 4)],
            cmd_vel_published: 9,
        };
        let a = diagnostics(&d, Time::default(), "brainloop", &b);
        let names: Vec<&str> = a.status.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "brainloop: integrator",
                "brainloop: region vision",
                "brainloop: region language",
                "brainloop: serial link",
                "brainloop: battery",
                "brainloop: ros bridge"
            ]
        );
        let levels: Vec<u8> = a.status.iter().map(|s| s.level).collect();
        assert_eq!(levels, [0, 0, 3, 1, 0, 1]);
        let v = |i: usize, k: &str| {
            a.status[i]
                .values
                .iter()
                .find(|kv| kv.key == k)
                .map(|kv| kv.value.clone())
        };
        assert_eq!(v(3, "reconnects").as_deref(), Some("2"));
        assert_eq!(v(5, "rejected_stale_stamp").as_deref(), Some("4"));
        assert_eq!(v(0, "drowsiness").as_deref(), Some("0.250"));
        let bat = battery(&d, Time::default(), &RosSettings::default());
        assert!((bat.voltage - 11.7).abs() < 1e-6 && bat.present);
        assert!((bat.percentage - (3.9 - 3.3) as f32 / 0.9).abs() < 1e-3);
        let none = battery(
            &DiagFeed::default(),
            Time::default(),
            &RosSettings::default(),
        );
        assert!(!none.present && none.percentage.is_nan());
    }

    #[test]
    fn a_base_driver_becomes_the_body_state() {
        let bus = LocalBus::new();
        let sub = bus.subscribe(topics::BASE_STATE, 8);
        let rays: Vec<f64> = (0..3).map(|i| -0.5 + 0.5 * i as f64).collect();
        let mut inb = Inbound::new(
            bus.clone(),
            RosSettings::default(),
            Arc::new(RosClock::new(false)),
            mono,
        )
        .with_base(1000, rays.clone(), 2.0);
        let imu = ImuMsg {
            angular_velocity: Vector3 {
                x: 0.0,
                y: 0.0,
                z: 0.3,
            },
            ..Default::default()
        };
        assert_eq!(
            inb.base_imu(&imu),
            Outcome::Ignored,
            "no wheels yet: not fresh"
        );
        let js = JointStateMsg {
            name: vec![
                "caster".into(),
                "right_wheel_joint".into(),
                "left_wheel_joint".into(),
            ],
            position: vec![9.0, std::f64::consts::PI, std::f64::consts::TAU],
            velocity: vec![0.0, 2.0, 1.0],
            ..Default::default()
        };
        assert_eq!(inb.base_joint_states(&js), Outcome::Delivered);
        let b = sub.try_recv().unwrap();
        assert_eq!(
            (b.encoder_ticks, b.wheel_speed, b.gyro_z),
            ([1000, 500], [1.0, 2.0], 0.3)
        );
        assert_eq!(b.stamp_ns, 9_000);
        let mut bad = js.clone();
        bad.velocity[2] = f64::NAN;
        assert_eq!(
            inb.base_joint_states(&bad),
            Outcome::Rejected(Rejected::NonFinite)
        );
        bad.name[2] = "wheel".into();
        assert!(matches!(
            inb.base_joint_states(&bad),
            Outcome::Rejected(Rejected::Undecodable(_))
        ));
        // A scan from -0.6 to 0.6 rad in 0.1 steps: an obstacle at 0.8 m between the right and
        // middle rays, nothing ahead, one beam on the left blind (NaN) and one free (+inf).
        let mut ranges = vec![f32::INFINITY; 13];
        ranges[3] = 0.8; // -0.3 rad
        ranges[12] = f32::NAN; // +0.6: outside every sector anyway
        ranges[11] = 5.0; // +0.5, beyond range_max 3.0: free
        ranges[10] = 0.05; // under range_min: invalid
        let scan = LaserScanMsg {
            angle_min: -0.6,
            angle_max: 0.6,
            angle_increment: 0.1,
            range_min: 0.1,
            range_max: 3.0,
            ranges,
            ..Default::default()
        };
        assert_eq!(scan_rays(&scan, &rays, 2.0).unwrap(), [0.8, 2.0, 2.0]);
        assert_eq!(inb.base_scan(&scan), Outcome::Delivered);
        let b = std::iter::from_fn(|| sub.try_recv()).last().unwrap();
        assert_eq!((b.range_count, &b.range[..3]), (3, &[0.8f32, 2.0, 2.0][..]));
        let mut blind = scan.clone();
        blind.ranges = vec![f32::NAN; 13];
        assert_eq!(
            scan_rays(&blind, &rays, 2.0).unwrap(),
            [0.0, 0.0, 0.0],
            "blind is blocked"
        );
        blind.angle_increment = 0.0;
        assert!(scan_rays(&blind, &rays, 2.0).is_err());
        // Without with_base the topics mean nothing.
        let mut plain = Inbound::new(
            bus,
            RosSettings::default(),
            Arc::new(RosClock::new(false)),
            mono,
        );
        assert_eq!(plain.base_joint_states(&js), Outcome::Ignored);
    }

    #[test]
    fn camera_frames_become_rgb_and_bad_ones_are_refused() {
        let px = |enc: &str, step: u32, data: Vec<u8>| ImageMsg {
            width: 2,
            height: 2,
            encoding: enc.into(),
            step,
            data,
            ..Default::default()
        };
        let rgb: Vec<u8> = (0..12).collect();
        assert_eq!(image(&px("rgb8", 6, rgb.clone()), 5).unwrap().data, rgb);
        // bgr8 with a padded row (step 8).
        let bgr = vec![2, 1, 0, 5, 4, 3, 99, 99, 8, 7, 6, 11, 10, 9, 99, 99];
        assert_eq!(image(&px("bgr8", 8, bgr), 5).unwrap().data, rgb);
        let rgba = vec![0, 1, 2, 255, 3, 4, 5, 255, 6, 7, 8, 255, 9, 10, 11, 255];
        assert_eq!(image(&px("rgba8", 8, rgba), 5).unwrap().data, rgb);
        let mono = image(&px("mono8", 2, vec![1, 2, 3, 4]), 5).unwrap();
        assert_eq!(mono.data, [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
        assert_eq!((mono.width, mono.height, mono.stamp_ns), (2, 2, 5));
        for bad in [
            px("rgb8", 6, vec![0; 11]),
            px("rgb8", 5, vec![0; 12]),
            px("16UC1", 4, vec![0; 8]),
            ImageMsg {
                width: 100_000,
                height: 100_000,
                encoding: "mono8".into(),
                step: 100_000,
                ..Default::default()
            },
        ] {
            assert_eq!(image(&bad, 0).unwrap_err().code(), "undecodable");
        }
        // A PNG the image crate writes decodes back to the same pixels.
        let mut png = Vec::new();
        image::RgbImage::from_raw(2, 2, rgb.clone())
            .unwrap()
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let c = CompressedImageMsg {
            format: "png".into(),
            data: png,
            ..Default::default()
        };
        assert_eq!(compressed_image(&c, 1).unwrap().data, rgb);
        let junk = CompressedImageMsg {
            format: "jpeg".into(),
            data: vec![0xff, 0xd8, 1, 2, 3],
            ..Default::default()
        };
        assert!(compressed_image(&junk, 1).is_err());
    }

    fn mono() -> u64 {
        9_000
    }

    #[test]
    fn inbound_publishes_on_the_bus_remote_teleop_only_and_false_never_clears() {
        let bus = LocalBus::new();
        let instr = bus.subscribe(topics::INSTRUCTION, 4);
        let remote = bus.subscribe(topics::TELEOP_REMOTE, 8);
        let console = bus.subscribe(topics::TELEOP_CONSOLE, 8);
        let reset = bus.subscribe(topics::ESTOP_RESET, 8);
        let s = RosSettings {
            max_instruction_bytes: 8,
            ..RosSettings::default()
        };
        let clock = Arc::new(RosClock::new(false));
        let mut inb = Inbound::new(bus.clone(), s, clock.clone(), mono);

        assert_eq!(
            inb.instruction(StringMsg { data: "go".into() }),
            Outcome::Delivered
        );
        assert_eq!(instr.try_recv().unwrap().stamp_ns, 9_000);
        assert_eq!(
            inb.instruction(StringMsg {
                data: "much too long".into()
            }),
            Outcome::Rejected(Rejected::TooLong { len: 13, max: 8 })
        );
        let mut tw = TwistStampedMsg {
            header: Header {
                stamp: Time::from_ns(clock.now_ns()),
                frame_id: String::new(),
            },
            twist: TwistMsg::from(Twist {
                linear: 0.2,
                angular: 0.0,
            }),
        };
        assert_eq!(inb.teleop_stamped(&tw), Outcome::Delivered);
        tw.header.stamp = Time::from_ns(clock.now_ns() - 5_000_000_000);
        assert!(matches!(
            inb.teleop_stamped(&tw),
            Outcome::Rejected(Rejected::Stale { .. })
        ));
        assert_eq!(inb.estop(BoolMsg { data: false }), Outcome::Ignored);
        assert_eq!(inb.estop(BoolMsg { data: true }), Outcome::Delivered);
        assert_eq!(inb.estop(BoolMsg { data: false }), Outcome::Ignored);
        assert_eq!(inb.estop(BoolMsg { data: false }), Outcome::Ignored);
        assert_eq!(
            inb.estop_reset(StringMsg {
                data: "abcd".into()
            }),
            Outcome::Delivered
        );
        assert_eq!(reset.try_recv().as_deref(), Some("abcd"));
        assert_eq!(inb.clock(ClockMsg::default()), Outcome::Ignored);

        let got: Vec<_> = std::iter::from_fn(|| remote.try_recv()).collect();
        assert_eq!(
            got,
            [
                TeleopCommand::Drive(Twist {
                    linear: 0.2,
                    angular: 0.0
                }),
                TeleopCommand::Estop,
            ],
            "a false on ~/estop never clears"
        );
        assert_eq!(
            console.try_recv(),
            None,
            "ROS 2 never speaks as the console"
        );
    }

    #[test]
    fn outbound_reads_the_bus_and_never_emits_non_finite() {
        let bus = LocalBus::new();
        let clock = Arc::new(RosClock::new(true));
        clock.set(Time { sec: 7, nanosec: 0 });
        let mut out = Outbound::new(&bus, 8, RosSettings::default(), clock.clone(), "brainloop");
        let p = out.poll(100, &BridgeCounts::default());
        assert!(p.cmd_vel_stamped.is_empty() && p.odom.is_none() && p.diagnostics.is_none());
        let a = Twist {
            linear: 0.1,
            angular: 0.0,
        };
        bus.publish(topics::CMD_VEL, &a);
        bus.publish(
            topics::CMD_VEL,
            &Twist {
                linear: f64::NAN,
                angular: 0.0,
            },
        );
        bus.publish(topics::ROBOT_FEED, &RobotFeed::default());
        bus.publish(topics::ROBOT_FEED, &feed());
        bus.publish(topics::DIAG_FEED, &DiagFeed::default());
        bus.publish(topics::DROWSINESS, &0.25);
        bus.publish(topics::DROWSINESS, &f32::NAN);
        let p = out.poll(110, &BridgeCounts::default());
        assert_eq!(p.cmd_vel_stamped.len(), 1);
        assert_eq!(p.cmd_vel_dropped, 1);
        assert_eq!(p.cmd_vel_stamped[0].twist, TwistMsg::from(a));
        assert_eq!(p.cmd_vel_stamped[0].header.frame_id, "base_footprint");
        assert_eq!(
            p.cmd_vel_stamped[0].header.stamp,
            Time { sec: 7, nanosec: 0 }
        );
        let o = p.odom.unwrap();
        assert_eq!(o.pose.pose.position.x, 1.0, "the latest feed");
        assert_eq!(o.header.stamp.ns(), 7_000_000_000 - 100);
        assert!(p.tf.is_some() && p.joint_states.is_some());
        assert!(p.diagnostics.is_some() && p.battery.is_some());
        assert_eq!(p.drowsiness, Some(Float32Msg { data: 0.25 }));
        let p = out.poll(120, &BridgeCounts::default());
        assert!(p.cmd_vel_stamped.is_empty() && p.odom.is_none() && p.drowsiness.is_none());
        // Unstamped and with odometry owned by a base driver.
        let s = RosSettings {
            stamped: false,
            publish_odom: false,
            publish_tf: false,
            ..RosSettings::default()
        };
        let mut out = Outbound::new(&bus, 8, s, clock, "brainloop");
        bus.publish(topics::CMD_VEL, &a);
        bus.publish(topics::ROBOT_FEED, &feed());
        let p = out.poll(130, &BridgeCounts::default());
        assert_eq!(p.cmd_vel, [TwistMsg::from(a)]);
        assert!(p.odom.is_none() && p.tf.is_none() && p.joint_states.is_some());
    }
}
