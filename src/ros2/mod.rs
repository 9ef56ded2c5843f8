//! ROS 2 seam (cargo feature `ros2`, through `r2r`): needs a sourced ROS 2 installation to
//! build, so the default build and CI do not compile it. Kept deliberately thin: everything it
//! carries is a plain brainloop message that the rest of the brain already handles.
//!
//! * [`Ros2Bridge`] puts the brain on the ROS 2 graph: `/brainloop/instruction`
//!   (`std_msgs/String`) and `/brainloop/teleop/cmd_vel` (`geometry_msgs/Twist`),
//!   `/brainloop/estop` (`std_msgs/Bool`) come in; `/brainloop/drowsiness` (`std_msgs/Float32`)
//!   goes out.
//! * [`Ros2Body`] is a [`Body`] for robots whose base is already a ROS 2 driver (Gazebo's
//!   diff-drive plugin, a vendor base): validated wheel speeds go out as `/cmd_vel`, state comes
//!   back from `/joint_states` and `/imu`.
//!
//! The node runs on its own thread (it spins with a short timeout and never blocks the
//! integrator); data crosses to the brain through lock-free cells and bounded channels.

use crate::body::{Body, BodyError, RobotParams};
use crate::msg::{BodyState, Instruction, TeleopCommand, Twist, WheelSpeeds};
use crossbeam_channel::{bounded, Receiver, Sender};
use crossbeam_utils::atomic::AtomicCell;
use futures::{FutureExt, StreamExt};
use r2r::QosProfile;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the ROS 2 graph sends to the brain.
#[derive(Debug, Clone)]
pub enum FromRos {
    /// A new instruction.
    Instruction(Instruction),
    /// A teleop command (drive, e-stop, clear).
    Teleop(TeleopCommand),
}

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
    /// Messages from ROS 2 to the brain.
    pub incoming: Receiver<FromRos>,
    /// Latest drowsiness to publish (the integrator stores, the node publishes at 10 Hz).
    pub drowsiness: Arc<AtomicCell<f32>>,
    /// Wheel commands to publish as `/cmd_vel` (only used with [`Ros2Body`]).
    cmd_tx: Sender<Twist>,
    /// Body state received from `/joint_states` and `/imu`.
    state: Arc<AtomicCell<BodyState>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

use crate::util::monotonic_ns as now_ns;

impl Ros2Bridge {
    /// Create the node `name` and start its thread.
    pub fn start(name: &str, robot: RobotParams) -> Result<Self, Ros2Error> {
        let ctx = r2r::Context::create()?;
        let mut node = r2r::Node::create(ctx, name, "")?;
        let qos = QosProfile::default;
        let mut instr =
            node.subscribe::<r2r::std_msgs::msg::String>("/brainloop/instruction", qos())?;
        let mut teleop =
            node.subscribe::<r2r::geometry_msgs::msg::Twist>("/brainloop/teleop/cmd_vel", qos())?;
        let mut estop = node.subscribe::<r2r::std_msgs::msg::Bool>("/brainloop/estop", qos())?;
        let mut joints =
            node.subscribe::<r2r::sensor_msgs::msg::JointState>("/joint_states", qos())?;
        let mut imu = node.subscribe::<r2r::sensor_msgs::msg::Imu>("/imu", qos())?;
        let drowsy_pub =
            node.create_publisher::<r2r::std_msgs::msg::Float32>("/brainloop/drowsiness", qos())?;
        let cmd_pub = node.create_publisher::<r2r::geometry_msgs::msg::Twist>("/cmd_vel", qos())?;

        let (in_tx, incoming) = bounded(64);
        let (cmd_tx, cmd_rx) = bounded::<Twist>(4);
        let drowsiness = Arc::new(AtomicCell::new(0.0f32));
        let state = Arc::new(AtomicCell::new(BodyState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s, st) = (drowsiness.clone(), state.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("ros2-node".into())
            .spawn(move || {
                let mut last_pub = 0u64;
                while !st.load(Ordering::Relaxed) {
                    node.spin_once(Duration::from_millis(5));
                    while let Some(Some(m)) = instr.next().now_or_never() {
                        let _ = in_tx.try_send(FromRos::Instruction(Instruction {
                            stamp_ns: now_ns(),
                            text: m.data,
                        }));
                    }
                    while let Some(Some(m)) = teleop.next().now_or_never() {
                        let t = Twist {
                            linear: m.linear.x,
                            angular: m.angular.z,
                        };
                        let _ = in_tx.try_send(FromRos::Teleop(TeleopCommand::Drive(t)));
                    }
                    while let Some(Some(m)) = estop.next().now_or_never() {
                        let c = if m.data {
                            TeleopCommand::Estop
                        } else {
                            TeleopCommand::ClearEstop
                        };
                        let _ = in_tx.try_send(FromRos::Teleop(c));
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
                    while let Ok(t) = cmd_rx.try_recv() {
                        let mut msg = r2r::geometry_msgs::msg::Twist::default();
                        msg.linear.x = t.linear;
                        msg.angular.z = t.angular;
                        let _ = cmd_pub.publish(&msg);
                    }
                    let now = now_ns();
                    if now.saturating_sub(last_pub) >= 100_000_000 {
                        last_pub = now;
                        let _ = drowsy_pub.publish(&r2r::std_msgs::msg::Float32 { data: d.load() });
                    }
                }
                // Deactivating writes zero.
                let _ = cmd_pub.publish(&r2r::geometry_msgs::msg::Twist::default());
            })?;
        Ok(Self {
            incoming,
            drowsiness,
            cmd_tx,
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// Forward what arrives from ROS 2 into a run's inputs (on its own thread).
    pub fn forward_to(&self, inputs: crate::robot::RunInputs) -> std::io::Result<()> {
        let rx = self.incoming.clone();
        std::thread::Builder::new()
            .name("ros2-forward".into())
            .spawn(move || {
                for m in rx {
                    match m {
                        FromRos::Instruction(i) => inputs.inbox.set(i),
                        FromRos::Teleop(c) => inputs.teleop.send(c, now_ns()),
                    }
                }
            })
            .map(|_| ())
    }

    /// A body driven through `/cmd_vel` and read from `/joint_states` + `/imu`.
    pub fn body(&self, robot: RobotParams) -> Ros2Body {
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
