//! ROS 2 seam (cargo feature `ros2`, through `r2r`); may depend on `bus`, `body`, `msg` and
//! `util` only. It needs a sourced ROS 2 installation to build, so the default build and CI do
//! not compile it. Kept deliberately thin: it moves messages between r2r and brainloop's
//! in-process [`Bus`], and every mapping (topic names, types, checks, the e-stop latch and its
//! signed reset, odometry, diagnostics) is `bus::ros_map`'s, shared with the DDS bridge
//! (`bus::dds`, which is built and tested here against Cyclone DDS and rosbags).
//!
//! r2r's generated message types and `ros_map`'s layouts have the same fields, and both are
//! serde types, so one generic conversion ([`convert`]) moves every message across; a message
//! that does not convert is counted as undecodable and dropped.
//!
//! * [`Ros2Bridge`] is the node: the contract of `ros_map::contract` (names resolved with the
//!   node's `--ros-args`), in and out.
//! * [`Ros2Body`] is a [`Body`](crate::body::Body) for robots whose base is already a ROS 2 driver (Gazebo's
//!   diff-drive plugin, a vendor base): the tick's commands go out as `cmd_vel` from the tick
//!   records (as with the DDS bridge), state comes back from `joint_states`, `imu` and `scan`
//!   through `ros_map`'s base mapping.
//!
//! The node runs on its own thread (it spins with a short timeout and never blocks the
//! integrator); the body crosses to the integrator through a lock-free cell, everything else
//! through the bus.

use crate::body::RobotParams;
use crate::bus::ros_map::{self, BridgeCounts, Inbound, Outbound, Outcome, RosClock, RosNode};
use crate::bus::{topics, Bus};
use crate::msg::BodyState;
use crossbeam_utils::atomic::AtomicCell;
use futures::{FutureExt, StreamExt};
use r2r::QosProfile;
use serde::{de::DeserializeOwned, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Errors starting the ROS 2 node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Ros2Error {
    /// rcl/r2r refused (no ROS 2 environment sourced, bad topic name, ...).
    #[error("ROS 2: {0}")]
    R2r(#[from] r2r::Error),
    /// The node's parameters are wrong.
    #[error("ROS 2 parameters: {0}")]
    Params(String),
    /// The node thread could not be spawned.
    #[error("cannot start the ROS 2 node thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Handles to a running ROS 2 node thread.
pub struct Ros2Bridge {
    /// Body state from the base driver (with `base`).
    state: Arc<AtomicCell<Option<BodyState>>>,
    rejected: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

use crate::util::monotonic_ns as now_ns;

/// One message type as another with the same fields (r2r <-> `ros_map`).
pub fn convert<A: Serialize, B: DeserializeOwned>(a: &A) -> Option<B> {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
}

fn qos(q: ros_map::Qos) -> QosProfile {
    match q {
        ros_map::Qos::Reliable => QosProfile::default(),
        ros_map::Qos::SensorData => QosProfile::sensor_data(),
    }
}

impl Ros2Bridge {
    /// Create the node for `node` (its `--ros-args`) as a bridge to `bus` and start its thread.
    /// With `base`, the body is a ROS 2 base driver: its `joint_states`, `imu` and `scan` are
    /// read into [`Ros2Bridge::body`]. Subscribe to the bus's topics first, or the first
    /// messages find nobody.
    pub fn start<B: Bus + Clone + 'static>(
        node: RosNode,
        robot: RobotParams,
        bus: B,
        base: bool,
    ) -> Result<Self, Ros2Error> {
        let ctx = r2r::Context::create()?;
        let ns = if node.namespace == "/" {
            ""
        } else {
            node.namespace.as_str()
        };
        let mut n = r2r::Node::create(ctx, &node.name, ns)?;
        let s = node.settings.clone();
        let name = |t: &ros_map::RosTopic| node.resolve(t);
        use r2r::{
            diagnostic_msgs::msg as diag, geometry_msgs::msg as geo, nav_msgs::msg as nav,
            rosgraph_msgs::msg as rg, sensor_msgs::msg as sen, std_msgs::msg as std_,
            tf2_msgs::msg as tf2,
        };
        let mut instr =
            n.subscribe::<std_::String>(&name(&ros_map::INSTRUCTION), qos(ros_map::Qos::Reliable))?;
        let mut teleop_st = if s.teleop_stamped {
            Some(n.subscribe::<geo::TwistStamped>(
                &name(&ros_map::TELEOP_CMD_VEL),
                QosProfile::default(),
            )?)
        } else {
            None
        };
        let mut teleop = if s.teleop_stamped {
            None
        } else {
            Some(n.subscribe::<geo::Twist>(
                &name(&ros_map::TELEOP_CMD_VEL_UNSTAMPED),
                QosProfile::default(),
            )?)
        };
        let mut estop = n.subscribe::<std_::Bool>(&name(&ros_map::ESTOP), QosProfile::default())?;
        let mut reset =
            n.subscribe::<std_::String>(&name(&ros_map::ESTOP_RESET), QosProfile::default())?;
        let mut clock = if s.use_sim_time {
            Some(n.subscribe::<rg::Clock>(&name(&ros_map::CLOCK), qos(ros_map::CLOCK.qos))?)
        } else {
            None
        };
        let mut joints = if base {
            Some(n.subscribe::<sen::JointState>(
                &name(&ros_map::BASE_JOINT_STATES),
                QosProfile::sensor_data(),
            )?)
        } else {
            None
        };
        let mut imu = if base {
            Some(n.subscribe::<sen::Imu>(&name(&ros_map::BASE_IMU), QosProfile::sensor_data())?)
        } else {
            None
        };
        let mut scan = if base {
            Some(n.subscribe::<sen::LaserScan>(
                &name(&ros_map::BASE_SCAN),
                QosProfile::sensor_data(),
            )?)
        } else {
            None
        };
        let q = QosProfile::default;
        let cmd_st = n.create_publisher::<geo::TwistStamped>(&name(&ros_map::CMD_VEL), q())?;
        let cmd = n.create_publisher::<geo::Twist>(&name(&ros_map::CMD_VEL_UNSTAMPED), q())?;
        let odom = n.create_publisher::<nav::Odometry>(&name(&ros_map::ODOM), q())?;
        let tf = n.create_publisher::<tf2::TFMessage>(&name(&ros_map::TF), q())?;
        let js = n.create_publisher::<sen::JointState>(&name(&ros_map::JOINT_STATES), q())?;
        let bat = n.create_publisher::<sen::BatteryState>(&name(&ros_map::BATTERY), q())?;
        let dg = n.create_publisher::<diag::DiagnosticArray>(&name(&ros_map::DIAGNOSTICS), q())?;
        let drowsy = n.create_publisher::<std_::Float32>(&name(&ros_map::DROWSINESS), q())?;

        let ros_clock = Arc::new(RosClock::new(s.use_sim_time));
        let mut outbound = Outbound::new(&bus, 16, s.clone(), ros_clock.clone(), &node.name);
        let mut inbound = Inbound::new(bus.clone(), s, ros_clock, now_ns);
        if base {
            inbound = inbound.with_base(
                robot.ticks_per_rev,
                robot.ray_angles(),
                robot.range_max as f32,
            );
        }
        let state = Arc::new(AtomicCell::new(None));
        let base_state = bus.subscribe(topics::BASE_STATE, 16);
        let stop = Arc::new(AtomicBool::new(false));
        let rejected = Arc::new(AtomicU64::new(0));
        let (st, cell, rej) = (stop.clone(), state.clone(), rejected.clone());
        let thread = std::thread::Builder::new()
            .name("ros2-node".into())
            .spawn(move || {
                let note = |topic: &str, o: Outcome| {
                    if let Outcome::Rejected(why) = o {
                        let k = rej.fetch_add(1, Ordering::Relaxed);
                        if k % 100 == 0 {
                            tracing::warn!("ros2 node: rejected a message on {topic}: {why}");
                        }
                    }
                };
                let undecodable = Outcome::Rejected(ros_map::Rejected::Undecodable(
                    "r2r message does not convert".into(),
                ));
                macro_rules! take {
                    ($sub:expr, $topic:expr, |$m:ident: $t:ty| $f:expr) => {
                        while let Some(Some(raw)) = $sub.next().now_or_never() {
                            let o = match convert::<_, $t>(&raw) {
                                Some($m) => $f,
                                None => undecodable.clone(),
                            };
                            note($topic, o);
                        }
                    };
                }
                while !st.load(Ordering::Relaxed) {
                    n.spin_once(Duration::from_millis(5));
                    take!(instr, "instruction", |m: ros_map::StringMsg| inbound
                        .instruction(m));
                    if let Some(t) = teleop_st.as_mut() {
                        take!(t, "teleop", |m: ros_map::TwistStampedMsg| inbound
                            .teleop_stamped(&m));
                    }
                    if let Some(t) = teleop.as_mut() {
                        take!(t, "teleop", |m: ros_map::TwistMsg| inbound.teleop(&m));
                    }
                    take!(estop, "estop", |m: ros_map::BoolMsg| inbound.estop(m));
                    take!(reset, "estop_reset", |m: ros_map::StringMsg| inbound
                        .estop_reset(m));
                    if let Some(c) = clock.as_mut() {
                        take!(c, "/clock", |m: ros_map::ClockMsg| inbound.clock(m));
                    }
                    if let Some(j) = joints.as_mut() {
                        take!(j, "joint_states", |m: ros_map::JointStateMsg| inbound
                            .base_joint_states(&m));
                    }
                    if let Some(i) = imu.as_mut() {
                        take!(i, "imu", |m: ros_map::ImuMsg| inbound.base_imu(&m));
                    }
                    if let Some(sc) = scan.as_mut() {
                        take!(sc, "scan", |m: ros_map::LaserScanMsg| inbound.base_scan(&m));
                    }
                    if let Some(b) = base_state.latest() {
                        cell.store(Some(b));
                    }
                    let counts = BridgeCounts::default();
                    let out = outbound.poll(now_ns(), &counts);
                    for m in &out.cmd_vel_stamped {
                        if let Some(r) = convert::<_, geo::TwistStamped>(m) {
                            let _ = cmd_st.publish(&r);
                        }
                    }
                    for m in &out.cmd_vel {
                        if let Some(r) = convert::<_, geo::Twist>(m) {
                            let _ = cmd.publish(&r);
                        }
                    }
                    macro_rules! put {
                        ($m:expr, $p:expr, $t:ty) => {
                            if let Some(r) = $m.as_ref().and_then(|m| convert::<_, $t>(m)) {
                                let _ = $p.publish(&r);
                            }
                        };
                    }
                    put!(out.odom, odom, nav::Odometry);
                    put!(out.tf, tf, tf2::TFMessage);
                    put!(out.joint_states, js, sen::JointState);
                    put!(out.battery, bat, sen::BatteryState);
                    put!(out.diagnostics, dg, diag::DiagnosticArray);
                    put!(out.drowsiness, drowsy, std_::Float32);
                }
                // Deactivating writes zero.
                let _ = cmd_st.publish(&geo::TwistStamped::default());
            })?;
        Ok(Self {
            state,
            rejected,
            stop,
            thread: Some(thread),
        })
    }

    /// A body whose base is the ROS 2 driver (start the bridge with `base`).
    pub fn body(&self) -> Ros2Body {
        Ros2Body::new(self.state.clone(), "ros2 base driver (r2r)")
    }

    /// Incoming messages refused so far.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

impl Drop for Ros2Bridge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A [`Body`](crate::body::Body) whose base is a ROS 2 driver (e.g. Gazebo's diff-drive plugin).
pub type Ros2Body = crate::body::RosBaseBody;
