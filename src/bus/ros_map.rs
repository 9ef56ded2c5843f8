//! The one mapping between ROS 2 messages and brainloop messages, used by every ROS 2 bridge:
//! the DDS bridge ([`super::dds`], feature `dds`) and the r2r node (`crate::ros2`, feature
//! `ros2`). A bridge only moves messages between its transport and this module: what it takes
//! from ROS 2 it hands to an [`Inbound`], which maps it and publishes the brainloop message on
//! the in-process [`Bus`]; what it publishes on ROS 2 it takes from an [`Outbound`], which
//! reads the bus. No transport code is needed here, so all of it is tested in the default build.
//!
//! | ROS 2 topic | ROS 2 type | | bus topic |
//! |---|---|---|---|
//! | `/brainloop/instruction` | `std_msgs/msg/String` | in | [`topics::INSTRUCTION`] |
//! | `/brainloop/teleop/cmd_vel` | `geometry_msgs/msg/Twist` | in | [`topics::TELEOP_REMOTE`] |
//! | `/brainloop/estop` | `std_msgs/msg/Bool` | in | [`topics::TELEOP_REMOTE`] |
//! | `/cmd_vel` | `geometry_msgs/msg/Twist` | out | [`topics::CMD_VEL`] |
//! | `/brainloop/drowsiness` | `std_msgs/msg/Float32` | out | [`topics::DROWSINESS`] |
//!
//! The rules:
//! * an instruction longer than the bridge's limit ([`MAX_INSTRUCTION_BYTES`] by default) is
//!   rejected; an accepted one is stamped with the bridge's clock on arrival;
//! * a teleop twist becomes [`TeleopCommand::Drive`] with `linear.x` and `angular.z` (the other
//!   components are ignored: the base is planar); a non-finite one is rejected (the motor stage
//!   still clamps and rate-limits what passes);
//! * `/brainloop/estop`: every `true` is [`TeleopCommand::Estop`]; a `false` is
//!   [`TeleopCommand::ClearEstop`] only on a `true -> false` edge of this topic ([`EstopEdge`]),
//!   so a publisher repeating `false` as a heartbeat cannot clear an e-stop;
//! * all ROS 2 teleop goes to the override mux's `remote` source, never the console's, so a
//!   ROS 2 clear can only clear the latch ROS 2 set;
//! * out: a non-finite twist or drowsiness is never published.

use super::{publish_teleop, topics, Bus, Delivery, Subscription};
use crate::msg::{Instruction, TeleopCommand, Twist};
use serde::{Deserialize, Serialize};

// ------------------------------------------------------------------ topics and types

/// A ROS 2 topic the bridges use: its name and its message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RosTopic {
    /// Topic name (`/brainloop/estop`).
    pub name: &'static str,
    /// Package of the message type (`std_msgs`).
    pub package: &'static str,
    /// Message type within the package (`Bool`).
    pub type_name: &'static str,
}

impl RosTopic {
    /// The ROS 2 type name, `std_msgs/msg/Bool`.
    pub fn ros_type(&self) -> String {
        format!("{}/msg/{}", self.package, self.type_name)
    }
    /// The DDS type name on the wire, `std_msgs::msg::dds_::Bool_`.
    pub fn dds_type(&self) -> String {
        format!("{}::msg::dds_::{}_", self.package, self.type_name)
    }
}

/// Instructions in (`std_msgs/msg/String`).
pub const INSTRUCTION: RosTopic = RosTopic {
    name: "/brainloop/instruction",
    package: "std_msgs",
    type_name: "String",
};
/// Teleop twists in (`geometry_msgs/msg/Twist`).
pub const TELEOP_CMD_VEL: RosTopic = RosTopic {
    name: "/brainloop/teleop/cmd_vel",
    package: "geometry_msgs",
    type_name: "Twist",
};
/// E-stop in (`std_msgs/msg/Bool`).
pub const ESTOP: RosTopic = RosTopic {
    name: "/brainloop/estop",
    package: "std_msgs",
    type_name: "Bool",
};
/// Velocity commands out (`geometry_msgs/msg/Twist`).
pub const CMD_VEL: RosTopic = RosTopic {
    name: "/cmd_vel",
    package: "geometry_msgs",
    type_name: "Twist",
};
/// Drowsiness out (`std_msgs/msg/Float32`).
pub const DROWSINESS: RosTopic = RosTopic {
    name: "/brainloop/drowsiness",
    package: "std_msgs",
    type_name: "Float32",
};
/// Every topic, the incoming ones first.
pub const ALL: [RosTopic; 5] = [INSTRUCTION, TELEOP_CMD_VEL, ESTOP, CMD_VEL, DROWSINESS];

/// Longest instruction accepted by default, in bytes.
pub const MAX_INSTRUCTION_BYTES: usize = 1024;

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

// ------------------------------------------------------------------ the mapping

/// Why an incoming message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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

/// `geometry_msgs/Twist` on `/brainloop/teleop/cmd_vel` -> [`TeleopCommand::Drive`].
pub fn teleop_drive(m: &TwistMsg) -> Result<TeleopCommand, Rejected> {
    planar_twist(m)
        .map(TeleopCommand::Drive)
        .ok_or(Rejected::NonFinite)
}

/// The e-stop rule of one `/brainloop/estop` subscription: every `true` latches, only a
/// `true -> false` edge clears.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EstopEdge {
    seen: bool,
}

impl EstopEdge {
    /// The command for the value just received, if any.
    pub fn command(&mut self, value: bool) -> Option<TeleopCommand> {
        let was = std::mem::replace(&mut self.seen, value);
        match (was, value) {
            (_, true) => Some(TeleopCommand::Estop),
            (true, false) => Some(TeleopCommand::ClearEstop),
            (false, false) => None,
        }
    }
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

/// brainloop [`Twist`] -> `geometry_msgs/Twist` for `/cmd_vel`; `None` when not finite.
pub fn cmd_vel(t: Twist) -> Option<TwistMsg> {
    t.is_finite().then(|| TwistMsg::from(t))
}

/// Drowsiness -> `std_msgs/Float32`; `None` when not finite.
pub fn drowsiness(d: f32) -> Option<Float32Msg> {
    d.is_finite().then_some(Float32Msg { data: d })
}

// ------------------------------------------------------------------ onto and off the bus

/// What became of one incoming ROS 2 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Mapped and queued by every subscriber on the bus.
    Delivered,
    /// Mapped, but nobody on the bus subscribes or a full queue dropped it.
    Dropped,
    /// Valid, but it means nothing now (a repeated `false` on `/brainloop/estop`).
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

/// The incoming side of one ROS 2 bridge: maps what arrives and publishes it on the bus
/// (instructions on [`topics::INSTRUCTION`], teleop and e-stop on [`topics::TELEOP_REMOTE`]).
/// One per bridge: it holds the e-stop edge state of its `/brainloop/estop` subscription.
pub struct Inbound<B> {
    bus: B,
    estop: EstopEdge,
    max_instruction_bytes: usize,
    clock: fn() -> u64,
}

impl<B: Bus> Inbound<B> {
    /// Publish onto `bus`; instructions are stamped with `clock()` (nanoseconds).
    pub fn new(bus: B, max_instruction_bytes: usize, clock: fn() -> u64) -> Self {
        Self {
            bus,
            estop: EstopEdge::default(),
            max_instruction_bytes,
            clock,
        }
    }

    /// A message from `/brainloop/instruction`.
    pub fn instruction(&mut self, m: StringMsg) -> Outcome {
        match instruction(m, (self.clock)(), self.max_instruction_bytes) {
            Ok(i) => self.bus.publish(topics::INSTRUCTION, &i).into(),
            Err(r) => Outcome::Rejected(r),
        }
    }

    /// A message from `/brainloop/teleop/cmd_vel`.
    pub fn teleop(&mut self, m: &TwistMsg) -> Outcome {
        match teleop_drive(m) {
            Ok(c) => publish_teleop(&self.bus, topics::TELEOP_REMOTE, c).into(),
            Err(r) => Outcome::Rejected(r),
        }
    }

    /// A message from `/brainloop/estop`.
    pub fn estop(&mut self, m: BoolMsg) -> Outcome {
        match self.estop.command(m.data) {
            Some(c) => publish_teleop(&self.bus, topics::TELEOP_REMOTE, c).into(),
            None => Outcome::Ignored,
        }
    }
}

/// The outgoing side of one ROS 2 bridge: what the brain publishes on the bus
/// ([`topics::CMD_VEL`], [`topics::DROWSINESS`]), as ROS 2 messages.
pub struct Outbound {
    cmd_vel: Subscription<Twist>,
    drowsiness: Subscription<f32>,
}

impl Outbound {
    /// Subscribe to the outgoing topics on `bus` (`cmd_depth` twists are queued).
    pub fn new<B: Bus>(bus: &B, cmd_depth: usize) -> Self {
        Self {
            cmd_vel: bus.subscribe(topics::CMD_VEL, cmd_depth),
            drowsiness: bus.subscribe(topics::DROWSINESS, 4),
        }
    }

    /// The next twist for `/cmd_vel`, oldest first; `Some(Err)` for one that is not finite
    /// (never published; the bridge counts it).
    pub fn next_cmd_vel(&self) -> Option<Result<TwistMsg, Rejected>> {
        self.cmd_vel
            .try_recv()
            .map(|t| cmd_vel(t).ok_or(Rejected::NonFinite))
    }

    /// The latest finite drowsiness published since the last call.
    pub fn latest_drowsiness(&self) -> Option<Float32Msg> {
        std::iter::from_fn(|| self.drowsiness.try_recv())
            .filter_map(drowsiness)
            .last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::cdr::{RosBool, RosFloat32, RosMessage, RosString};
    use crate::bus::LocalBus;

    #[test]
    fn topic_types_are_the_cdr_encoders_types() {
        assert_eq!(INSTRUCTION.ros_type(), RosString::TYPE_NAME);
        assert_eq!(INSTRUCTION.dds_type(), RosString::DDS_TYPE_NAME);
        assert_eq!(ESTOP.ros_type(), RosBool::TYPE_NAME);
        assert_eq!(ESTOP.dds_type(), RosBool::DDS_TYPE_NAME);
        assert_eq!(DROWSINESS.ros_type(), RosFloat32::TYPE_NAME);
        assert_eq!(DROWSINESS.dds_type(), RosFloat32::DDS_TYPE_NAME);
        for t in [TELEOP_CMD_VEL, CMD_VEL] {
            assert_eq!(t.ros_type(), Twist::TYPE_NAME);
            assert_eq!(t.dds_type(), Twist::DDS_TYPE_NAME);
        }
        let names: Vec<&str> = ALL.iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            [
                "/brainloop/instruction",
                "/brainloop/teleop/cmd_vel",
                "/brainloop/estop",
                "/cmd_vel",
                "/brainloop/drowsiness"
            ]
        );
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
        assert_eq!(instruction(m("abcd"), 0, 4).unwrap().text, "abcd");
        assert_eq!(
            instruction(m("abcde"), 0, 4),
            Err(Rejected::TooLong { len: 5, max: 4 })
        );
        // The limit counts bytes, not characters.
        assert!(instruction(m("ünï"), 0, 4).is_err());
    }

    #[test]
    fn teleop_twists_are_planar_and_finite() {
        let mut m = TwistMsg::default();
        m.linear.x = 0.1;
        m.linear.y = 7.0; // ignored, like linear.z and angular.x/y
        m.angular.z = 0.2;
        m.angular.x = f64::NAN; // unused, so not a reason to refuse
        assert_eq!(
            teleop_drive(&m),
            Ok(TeleopCommand::Drive(Twist {
                linear: 0.1,
                angular: 0.2
            }))
        );
        m.linear.x = f64::NAN;
        assert_eq!(teleop_drive(&m), Err(Rejected::NonFinite));
        m.linear.x = 0.1;
        m.angular.z = f64::INFINITY;
        assert_eq!(teleop_drive(&m), Err(Rejected::NonFinite));
        m.angular.z = f64::NEG_INFINITY;
        assert_eq!(planar_twist(&m), None);
    }

    #[test]
    fn estop_false_heartbeat_never_clears_but_an_edge_does() {
        let mut e = EstopEdge::default();
        assert_eq!(e.command(false), None);
        assert_eq!(e.command(false), None);
        assert_eq!(e.command(true), Some(TeleopCommand::Estop));
        assert_eq!(e.command(true), Some(TeleopCommand::Estop));
        assert_eq!(e.command(false), Some(TeleopCommand::ClearEstop));
        assert_eq!(e.command(false), None);
    }

    #[test]
    fn outgoing_twist_and_drowsiness() {
        let t = Twist {
            linear: 0.25,
            angular: -1.5,
        };
        let m = cmd_vel(t).unwrap();
        assert_eq!((m.linear.x, m.angular.z), (0.25, -1.5));
        assert_eq!(
            (m.linear.y, m.linear.z, m.angular.x, m.angular.y),
            (0.0, 0.0, 0.0, 0.0)
        );
        assert_eq!(planar_twist(&m), Some(t));
        for bad in [f64::NAN, f64::INFINITY] {
            assert_eq!(
                cmd_vel(Twist {
                    linear: bad,
                    angular: 0.0
                }),
                None
            );
            assert_eq!(
                cmd_vel(Twist {
                    linear: 0.0,
                    angular: bad
                }),
                None
            );
        }
        assert_eq!(drowsiness(0.5), Some(Float32Msg { data: 0.5 }));
        assert_eq!(drowsiness(f32::NAN), None);
        assert_eq!(drowsiness(f32::INFINITY), None);
    }

    fn clock() -> u64 {
        9_000
    }

    #[test]
    fn inbound_publishes_on_the_bus_remote_teleop_only() {
        let bus = LocalBus::new();
        let instr = bus.subscribe(topics::INSTRUCTION, 4);
        let remote = bus.subscribe(topics::TELEOP_REMOTE, 8);
        let console = bus.subscribe(topics::TELEOP_CONSOLE, 8);
        let mut inb = Inbound::new(bus.clone(), 8, clock);

        assert_eq!(
            inb.instruction(StringMsg { data: "go".into() }),
            Outcome::Delivered
        );
        assert_eq!(
            instr.try_recv(),
            Some(Instruction {
                stamp_ns: 9_000,
                text: "go".into()
            })
        );
        assert_eq!(
            inb.instruction(StringMsg {
                data: "much too long".into()
            }),
            Outcome::Rejected(Rejected::TooLong { len: 13, max: 8 })
        );

        let mut tw = TwistMsg::from(Twist {
            linear: 0.2,
            angular: 0.0,
        });
        assert_eq!(inb.teleop(&tw), Outcome::Delivered);
        tw.angular.z = f64::NAN;
        assert_eq!(inb.teleop(&tw), Outcome::Rejected(Rejected::NonFinite));
        assert_eq!(inb.estop(BoolMsg { data: false }), Outcome::Ignored);
        assert_eq!(inb.estop(BoolMsg { data: true }), Outcome::Delivered);
        assert_eq!(inb.estop(BoolMsg { data: false }), Outcome::Delivered);
        assert_eq!(inb.estop(BoolMsg { data: false }), Outcome::Ignored);

        let got: Vec<_> = std::iter::from_fn(|| remote.try_recv()).collect();
        assert_eq!(
            got,
            [
                TeleopCommand::Drive(Twist {
                    linear: 0.2,
                    angular: 0.0
                }),
                TeleopCommand::Estop,
                TeleopCommand::ClearEstop
            ]
        );
        assert_eq!(
            console.try_recv(),
            None,
            "ROS 2 never speaks as the console"
        );
    }

    #[test]
    fn inbound_reports_what_nobody_took() {
        let bus = LocalBus::new();
        let mut inb = Inbound::new(bus.clone(), 64, clock);
        assert_eq!(inb.instruction(StringMsg::default()), Outcome::Dropped);
        let _q = bus.subscribe(topics::INSTRUCTION, 1);
        assert_eq!(inb.instruction(StringMsg::default()), Outcome::Delivered);
        assert_eq!(inb.instruction(StringMsg::default()), Outcome::Dropped);
    }

    #[test]
    fn outbound_reads_the_bus_and_never_emits_non_finite() {
        let bus = LocalBus::new();
        let out = Outbound::new(&bus, 8);
        assert_eq!(out.next_cmd_vel(), None);
        assert_eq!(out.latest_drowsiness(), None);
        let a = Twist {
            linear: 0.1,
            angular: 0.0,
        };
        let b = Twist {
            linear: 0.2,
            angular: -0.1,
        };
        bus.publish(topics::CMD_VEL, &a);
        bus.publish(
            topics::CMD_VEL,
            &Twist {
                linear: f64::NAN,
                angular: 0.0,
            },
        );
        bus.publish(topics::CMD_VEL, &b);
        assert_eq!(out.next_cmd_vel(), Some(Ok(TwistMsg::from(a))));
        assert_eq!(out.next_cmd_vel(), Some(Err(Rejected::NonFinite)));
        assert_eq!(out.next_cmd_vel(), Some(Ok(TwistMsg::from(b))));
        assert_eq!(out.next_cmd_vel(), None);
        bus.publish(topics::DROWSINESS, &0.25);
        bus.publish(topics::DROWSINESS, &0.5);
        bus.publish(topics::DROWSINESS, &f32::NAN);
        assert_eq!(out.latest_drowsiness(), Some(Float32Msg { data: 0.5 }));
        assert_eq!(out.latest_drowsiness(), None);
    }
}
