//! ROS 2 seam (cargo feature `ros2`, through `r2r`); may depend on `bus`, `body`, `msg` and
//! `util` only. It needs a sourced ROS 2 installation to build, so the default build and CI do
//! not compile it. Kept deliberately thin: it moves messages between r2r and brainloop's
//! in-process [`Bus`], and every mapping (topic names, types, the e-stop edge rule, non-finite
//! rejection) is `bus::ros_map`'s, shared with the DDS bridge (`bus::dds`, which is built and
//! tested here).
//!
//! * [`Ros2Bridge`] is a bridge between the bus and the ROS 2 graph: `/brainloop/instruction`
//!   (`std_msgs/String`) goes to the bus's `topics::INSTRUCTION`; `/brainloop/teleop/cmd_vel`
//!   (`geometry_msgs/Twist`) and `/brainloop/estop` (`std_msgs/Bool`) go to
//!   `topics::TELEOP_REMOTE` (the override mux's `remote` source); the bus's
//!   `topics::DROWSINESS` goes out on `/brainloop/drowsiness` (`std_msgs/Float32`) at 10 Hz,
//!   and its `topics::CMD_VEL` on `/cmd_vel` unless a [`Ros2Body`] drives it.
//! * [`Ros2Body`] is a [`Body`] for robots whose base is already a ROS 2 driver (Gazebo's
//!   diff-drive plugin, a vendor base): validated wheel speeds go out as `/cmd_vel`, state comes
//!   back from `/joint_states` and `/imu`. `/cmd_vel` then has this one writer.
//!
//! The node runs on its own thread (it spins with a short timeout and never blocks the
//! integrator); the body crosses to the integrator through a lock-free cell and a bounded
//! channel, everything else through the bus.

use crate::body::{Body, BodyError, RobotParams};
use crate::bus::ros_map::{self, Inbound, Outbound, Outcome};
use crate::bus::Bus;
use crate::msg::{BodyState, Twist, WheelSpeeds};
use crossbeam_channel::{bounded, Sender};
use crossbeam_utils::atomic::AtomicCell;
use futures::{FutureExt, StreamExt};
use r2r::QosProfile;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Errors starting the ROS 2 node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Ros2Error {
    /// rcl/r2r refused (no ROS 2 environment sourced, bad topic name, ...).
    #[error("ROS 2: {0}")]
    R2r(#[from] r2r::Error),
    /// The node thread could not be spawned.
    #[error("cannot start the ROS 2 node thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Handles to a running ROS 2 node thread.
pub struct Ros2Bridge {
    /// Wheel commands to publish as `/cmd_vel` (only used with [`Ros2Body`]).
    cmd_tx: Sender<Twist>,
    /// Set once a [`Ros2Body`] exists: `/cmd_vel` is then the body's, not the bus's.
    body_attached: Arc<AtomicBool>,
    /// Body state received from `/joint_states` and `/imu`.
    state: Arc<AtomicCell<BodyState>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

use crate::util::monotonic_ns as now_ns;

/// r2r's `geometry_msgs/Twist` in `ros_map`'s layout (the same fields).
fn twist_in(m: &r2r::geometry_msgs::msg::Twist) -> ros_map::TwistMsg {
    let v = |v: &r2r::geometry_msgs::msg::Vector3| ros_map::Vector3 {
        x: v.x,
        y: v.y,
        z: v.z,
    };
    ros_map::TwistMsg {
        linear: v(&m.linear),
        angular: v(&m.angular),
    }
}

/// `ros_map`'s `geometry_msgs/Twist` as r2r's.
fn twist_out(m: &ros_map::TwistMsg) -> r2r::geometry_msgs::msg::Twist {
    let v = |v: &ros_map::Vector3| r2r::geometry_msgs::msg::Vector3 {
        x: v.x,
        y: v.y,
        z: v.z,
    };
    r2r::geometry_msgs::msg::Twist {
        linear: v(&m.linear),
        angular: v(&m.angular),
    }
}

/// Log a refused incoming message (the first, then one per 100).
fn note(topic: &str, o: Outcome, rejected: &mut u64) {
    if let Outcome::Rejected(why) = o {
        if *rejected % 100 == 0 {
            tracing::warn!(
                "ros2 node: rejected a message on {topic}: {why} ({} so far)",
                *rejected + 1
            );
        }
        *rejected += 1;
    }
}

impl Ros2Bridge {
    /// Create the node `name` as a bridge to `bus` and start its thread. Subscribe to the bus's
    /// topics first, or the first messages find nobody.
    pub fn start<B: Bus + 'static>(
        name: &str,
        robot: RobotParams,
        bus: B,
    ) -> Result<Self, Ros2Error> {
        let ctx = r2r::Context::create()?;
        let mut node = r2r::Node::create(ctx, name, "")?;
        let qos = QosProfile::default;
        let mut instr =
            node.subscribe::<r2r::std_msgs::msg::String>(ros_map::INSTRUCTION.name, qos())?;
        let mut teleop =
            node.subscribe::<r2r::geometry_msgs::msg::Twist>(ros_map::TELEOP_CMD_VEL.name, qos())?;
        let mut estop = node.subscribe::<r2r::std_msgs::msg::Bool>(ros_map::ESTOP.name, qos())?;
        let mut joints =
            node.subscribe::<r2r::sensor_msgs::msg::JointState>("/joint_states", qos())?;
        let mut imu = node.subscribe::<r2r::sensor_msgs::msg::Imu>("/imu", qos())?;
        let drowsy_pub =
            node.create_publisher::<r2r::std_msgs::msg::Float32>(ros_map::DROWSINESS.name, qos())?;
        let cmd_pub =
            node.create_publisher::<r2r::geometry_msgs::msg::Twist>(ros_map::CMD_VEL.name, qos())?;

        let outbound = Outbound::new(&bus, 16);
        let mut inbound = Inbound::new(bus, ros_map::MAX_INSTRUCTION_BYTES, now_ns);
        let (cmd_tx, cmd_rx) = bounded::<Twist>(4);
        let state = Arc::new(AtomicCell::new(BodyState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let body_attached = Arc::new(AtomicBool::new(false));
        let (s, st, attached) = (state.clone(), stop.clone(), body_attached.clone());
        let thread = std::thread::Builder::new()
            .name("ros2-node".into())
            .spawn(move || {
                let mut last_pub = 0u64;
                let mut drowsiness = 0.0f32;
                let mut rejected = 0u64;
                while !st.load(Ordering::Relaxed) {
                    node.spin_once(Duration::from_millis(5));
                    while let Some(Some(m)) = instr.next().now_or_never() {
                        let o = inbound.instruction(ros_map::StringMsg { data: m.data });
                        note(ros_map::INSTRUCTION.name, o, &mut rejected);
                    }
                    while let Some(Some(m)) = teleop.next().now_or_never() {
                        let o = inbound.teleop(&twist_in(&m));
                        note(ros_map::TELEOP_CMD_VEL.name, o, &mut rejected);
                    }
                    while let Some(Some(m)) = estop.next().now_or_never() {
                        let o = inbound.estop(ros_map::BoolMsg { data: m.data });
                        note(ros_map::ESTOP.name, o, &mut rejected);
                    }
                    while let Some(Some(m)) = joints.next().now_or_never() {
                        let mut b = s.load();
                        let tick = |a: f64| {
                            (a / std::f64::consts::TAU * robot.ticks_per_rev as f64) as i64
                        };
                        for (i, name) in
                            ["left_wheel_joint", "right_wheel_joint"].iter().enumerate()
                        {
                            if let Some(k) = m.name.iter().position(|n| n == name) {
                                if let Some(p) = m.position.get(k) {
                                    b.encoder_ticks[i] = tick(*p);
                                }
                                if let Some(v) = m.velocity.get(k) {
                                    b.wheel_speed[i] = *v;
                                }
                            }
                        }
                        b.stamp_ns = now_ns();
                        s.store(b);
                    }
                    while let Some(Some(m)) = imu.next().now_or_never() {
                        let mut b = s.load();
                        b.gyro_z = m.angular_velocity.z;
                        b.accel = [m.linear_acceleration.x, m.linear_acceleration.y];
                        s.store(b);
                    }
                    // `/cmd_vel` has one writer: the body when a ROS 2 driver is the base,
                    // otherwise the brain's command from the bus (as the DDS bridge does).
                    let body_drives = attached.load(Ordering::Relaxed);
                    while let Ok(t) = cmd_rx.try_recv() {
                        if let Some(m) = ros_map::cmd_vel(t) {
                            let _ = cmd_pub.publish(&twist_out(&m));
                        }
                    }
                    while let Some(m) = outbound.next_cmd_vel() {
                        if let (false, Ok(m)) = (body_drives, m) {
                            let _ = cmd_pub.publish(&twist_out(&m));
                        }
                    }
                    if let Some(d) = outbound.latest_drowsiness() {
                        drowsiness = d.data;
                    }
                    let now = now_ns();
                    if now.saturating_sub(last_pub) >= 100_000_000 {
                        last_pub = now;
                        let msg = r2r::std_msgs::msg::Float32 { data: drowsiness };
                        let _ = drowsy_pub.publish(&msg);
                    }
                }
                // Deactivating writes zero.
                let _ = cmd_pub.publish(&r2r::geometry_msgs::msg::Twist::default());
            })?;
        Ok(Self {
            cmd_tx,
            body_attached,
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// A body driven through `/cmd_vel` and read from `/joint_states` + `/imu`. From then on
    /// `/cmd_vel` carries this body's commands only.
    pub fn body(&self, robot: RobotParams) -> Ros2Body {
        self.body_attached.store(true, Ordering::Relaxed);
        Ros2Body {
            robot,
            cmd_tx: self.cmd_tx.clone(),
            state: self.state.clone(),
            estop: false,
        }
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

/// A [`Body`] whose base is a ROS 2 driver (e.g. Gazebo's diff-drive plugin).
pub struct Ros2Body {
    robot: RobotParams,
    cmd_tx: Sender<Twist>,
    state: Arc<AtomicCell<BodyState>>,
    estop: bool,
}

impl Body for Ros2Body {
    fn command(&mut self, wheels: WheelSpeeds) -> Result<(), BodyError> {
        let t = if self.estop {
            Twist::ZERO
        } else {
            self.robot.wheels_to_twist(wheels)
        };
        // Never block the integrator: a full queue means the node thread is behind; the next
        // tick sends a fresher command anyway.
        let _ = self.cmd_tx.try_send(t);
        if self.estop {
            return Err(BodyError::Refused("e-stop latched".into()));
        }
        Ok(())
    }
    fn state(&self) -> BodyState {
        let mut s = self.state.load();
        s.estop = self.estop;
        s
    }
    fn estop(&mut self) {
        self.estop = true;
        let _ = self.cmd_tx.try_send(Twist::ZERO);
    }
    fn clear_estop(&mut self) {
        self.estop = false;
    }
    fn name(&self) -> String {
        "ros2:/cmd_vel".into()
    }
}
