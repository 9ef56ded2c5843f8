//! The body seam: what the brain drives. The serial link to the motor-controller firmware, the
//! embedded simulator and the pure-Rust kinematic model all implement [`Body`], so the regions,
//! integrator, motor stage and limits run unchanged on each of them.

use crate::msg::{BodyState, Twist, WheelSpeeds};
use serde::{Deserialize, Serialize};

/// Errors a body can report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is not reachable (port closed, link down).
    #[error("body link down: {0}")]
    Disconnected(String),
    /// The command was refused (e.g. e-stop latched).
    #[error("command refused: {0}")]
    Refused(String),
}

/// Something that moves: takes wheel-speed setpoints, reports its state.
///
/// Implementations must not block: `command` queues the setpoint for the body's own I/O thread
/// (or applies it directly in a simulator) and returns at once.
pub trait Body: Send {
    /// Send wheel angular-speed setpoints (already validated and limited by the motor stage).
    fn command(&mut self, wheels: WheelSpeeds) -> Result<(), BodyError>;
    /// The latest state (never blocks; may be stale: check `stamp_ns`).
    fn state(&self) -> BodyState;
    /// Latch the body's e-stop: motors to zero until cleared.
    fn estop(&mut self);
    /// Clear a latched e-stop.
    fn clear_estop(&mut self);
    /// Short name for logs ("kinematic", "mujoco", "serial:/dev/ttyACM0").
    fn name(&self) -> String;
}

/// A body whose time advances under our control (simulators), for lockstep runs.
pub trait SimulatedBody: Body {
    /// Advance the simulation by `dt` seconds.
    fn advance(&mut self, dt: f64);
    /// Ground-truth planar pose (x, y, yaw) for scoring only; never fed to the brain.
    fn ground_truth_pose(&self) -> (f64, f64, f64);
    /// Why the body cannot go on (e.g. an emulated board whose CPU stopped), if it cannot: the
    /// episode ends with this as its error.
    fn failure(&self) -> Option<String> {
        None
    }
}

/// Geometry of the robot: loaded from `urdf/robot.toml`, the one source the URDF and the MuJoCo
/// model are generated from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobotParams {
    /// Wheel radius, m.
    pub wheel_radius: f64,
    /// Distance between the wheels' contact points, m.
    pub wheel_separation: f64,
    /// Wheel width, m.
    pub wheel_width: f64,
    /// Chassis length, m.
    pub chassis_length: f64,
    /// Chassis width, m.
    pub chassis_width: f64,
    /// Chassis height, m.
    pub chassis_height: f64,
    /// Chassis mass, kg.
    pub chassis_mass: f64,
    /// Wheel mass, kg.
    pub wheel_mass: f64,
    /// Caster radius, m.
    pub caster_radius: f64,
    /// Caster x offset from base_link, m.
    pub caster_offset: f64,
    /// Encoder counts per wheel revolution.
    pub ticks_per_rev: u32,
    /// Wheel speed at full PWM, rad/s.
    pub max_wheel_speed: f64,
    /// Camera x in base_link, m.
    pub camera_x: f64,
    /// Camera z in base_link, m.
    pub camera_z: f64,
    /// Camera pitch (down positive), rad.
    pub camera_pitch: f64,
    /// Camera image width, px.
    pub camera_width: u32,
    /// Camera image height, px.
    pub camera_height: u32,
    /// Camera vertical field of view, degrees.
    pub camera_fovy_deg: f64,
    /// Number of range rays.
    pub range_rays: u32,
    /// Range sensor field of view, degrees.
    pub range_fov_deg: f64,
    /// Range sensor maximum distance, m.
    pub range_max: f64,
}

/// The robot parameter file's text, compiled in so the binary always knows its robot.
pub const ROBOT_TOML: &str = include_str!("../urdf/robot.toml");

impl RobotParams {
    /// The robot described by `urdf/robot.toml`.
    pub fn load_default() -> Self {
        toml::from_str(ROBOT_TOML).expect("urdf/robot.toml is checked by tests")
    }

    /// Wheel speeds for a body twist (inverse kinematics of a diff drive).
    pub fn twist_to_wheels(&self, t: Twist) -> WheelSpeeds {
        let half = self.wheel_separation / 2.0;
        WheelSpeeds {
            left: (t.linear - t.angular * half) / self.wheel_radius,
            right: (t.linear + t.angular * half) / self.wheel_radius,
        }
    }

    /// Directions of the range rays in the body frame, rad: `range_rays` (at most
    /// `RANGE_RAYS_MAX`) spread evenly across `range_fov_deg`, right to left; one ray looks
    /// ahead.
    pub fn ray_angles(&self) -> Vec<f64> {
        let n = (self.range_rays as usize).min(crate::msg::RANGE_RAYS_MAX);
        let fov = self.range_fov_deg.to_radians();
        (0..n)
            .map(|i| {
                if n > 1 {
                    -fov / 2.0 + fov * i as f64 / (n - 1) as f64
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Body twist from wheel speeds (forward kinematics).
    pub fn wheels_to_twist(&self, w: WheelSpeeds) -> Twist {
        Twist {
            linear: self.wheel_radius * (w.left + w.right) / 2.0,
            angular: self.wheel_radius * (w.right - w.left) / self.wheel_separation,
        }
    }
}

/// A ROS 2 base driver as the body (`--body ros2`, over DDS or r2r). The tick's commands reach
/// the base as `cmd_vel` from the tick records (the bridge publishes each new tick's twist, zero
/// when stopped); its state arrives from the bridge (`joint_states`, `imu`, `scan`) in a
/// lock-free cell, stamped on arrival, so a silent driver goes stale and the brain stops it.
pub struct RosBaseBody {
    state: std::sync::Arc<crossbeam_utils::atomic::AtomicCell<Option<BodyState>>>,
    estop: bool,
    name: &'static str,
}

impl RosBaseBody {
    /// A body reading `state` (written by the bridge), called `name`.
    pub fn new(
        state: std::sync::Arc<crossbeam_utils::atomic::AtomicCell<Option<BodyState>>>,
        name: &'static str,
    ) -> Self {
        Self {
            state,
            estop: false,
            name,
        }
    }
}

impl Body for RosBaseBody {
    fn command(&mut self, _wheels: WheelSpeeds) -> Result<(), BodyError> {
        if self.estop {
            return Err(BodyError::Refused("e-stop latched".into()));
        }
        Ok(())
    }
    fn state(&self) -> BodyState {
        // None yet: stamp 0, which the integrator treats as stale.
        let mut s = self.state.load().unwrap_or_default();
        s.estop = self.estop;
        s
    }
    fn estop(&mut self) {
        self.estop = true;
    }
    fn clear_estop(&mut self) {
        self.estop = false;
    }
    fn name(&self) -> String {
        self.name.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robot_file_parses_and_kinematics_round_trip() {
        let p = RobotParams::load_default();
        let t = Twist {
            linear: 0.3,
            angular: -1.1,
        };
        let back = p.wheels_to_twist(p.twist_to_wheels(t));
        assert!((back.linear - t.linear).abs() < 1e-12);
        assert!((back.angular - t.angular).abs() < 1e-12);
    }
}
