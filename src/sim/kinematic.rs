//! A pure-Rust kinematic diff-drive body: unicycle model with wheel-speed limits, a first-order
//! motor lag and quantised encoders. Deterministic, allocation-free, fast: the body for unit
//! tests and the fallback when MuJoCo is not available.

use crate::body::{Body, BodyError, RobotParams, SimulatedBody};
use crate::msg::{BodyState, WheelSpeeds, RANGE_RAYS_MAX};
use crate::sim::mujoco::COLLISION_GAP_S;
use crate::sim::raycast;
use crate::world::{Layout, ROBOT_RADIUS};

/// Kinematic diff-drive robot.
#[derive(Debug, Clone)]
pub struct KinematicBody {
    params: RobotParams,
    /// Motor time constant, s (first-order lag from setpoint to wheel speed).
    pub motor_tau: f64,
    setpoint: [f64; 2],
    speed: [f64; 2],
    angle: [f64; 2],
    pose: (f64, f64, f64),
    time: f64,
    estop: bool,
    last_accel: [f64; 2],
}

impl KinematicBody {
    /// A robot at the origin facing +x.
    pub fn new(params: RobotParams) -> Self {
        Self {
            params,
            motor_tau: 0.05,
            setpoint: [0.0; 2],
            speed: [0.0; 2],
            angle: [0.0; 2],
            pose: (0.0, 0.0, 0.0),
            time: 0.0,
            estop: false,
            last_accel: [0.0; 2],
        }
    }

    /// Place the robot.
    pub fn set_pose(&mut self, x: f64, y: f64, yaw: f64) {
        self.pose = (x, y, yaw);
    }

    /// Simulated time in seconds.
    pub fn time(&self) -> f64 {
        self.time
    }
}

impl Body for KinematicBody {
    fn command(&mut self, w: WheelSpeeds) -> Result<(), BodyError> {
        if self.estop {
            self.setpoint = [0.0; 2];
            return Err(BodyError::Refused("e-stop latched".into()));
        }
        let m = self.params.max_wheel_speed;
        let clamp = |v: f64| if v.is_finite() { v.clamp(-m, m) } else { 0.0 };
        self.setpoint = [clamp(w.left), clamp(w.right)];
        Ok(())
    }

    fn state(&self) -> BodyState {
        let p = &self.params;
        let ticks = |a: f64| (a / std::f64::consts::TAU * p.ticks_per_rev as f64).floor() as i64;
        let twist = p.wheels_to_twist(WheelSpeeds {
            left: self.speed[0],
            right: self.speed[1],
        });
        BodyState {
            stamp_ns: (self.time * 1e9) as u64,
            encoder_ticks: [ticks(self.angle[0]), ticks(self.angle[1])],
            wheel_speed: self.speed,
            gyro_z: twist.angular,
            accel: self.last_accel,
            battery_v: 7.4,
            faults: 0,
            estop: self.estop,
            ..Default::default()
        }
    }

    fn estop(&mut self) {
        self.estop = true;
        self.setpoint = [0.0; 2];
    }

    fn clear_estop(&mut self) {
        self.estop = false;
    }

    fn name(&self) -> String {
        "kinematic".into()
    }
}

impl SimulatedBody for KinematicBody {
    fn advance(&mut self, dt: f64) {
        if !(dt.is_finite() && dt > 0.0) {
            return;
        }
        let before = self.params.wheels_to_twist(WheelSpeeds {
            left: self.speed[0],
            right: self.speed[1],
        });
        let a = 1.0 - (-dt / self.motor_tau).exp();
        for i in 0..2 {
            let target = if self.estop { 0.0 } else { self.setpoint[i] };
            self.speed[i] += (target - self.speed[i]) * a;
            self.angle[i] += self.speed[i] * dt;
        }
        let t = self.params.wheels_to_twist(WheelSpeeds {
            left: self.speed[0],
            right: self.speed[1],
        });
        let (x, y, yaw) = self.pose;
        let mid = yaw + t.angular * dt / 2.0;
        self.pose = (
            x + t.linear * dt * mid.cos(),
            y + t.linear * dt * mid.sin(),
            yaw + t.angular * dt,
        );
        self.last_accel = [(t.linear - before.linear) / dt, t.linear * t.angular];
        self.time += dt;
    }

    fn ground_truth_pose(&self) -> (f64, f64, f64) {
        self.pose
    }
}

/// The kinematic body in a scenario arena, for `brainloop sim --body kinematic` (no MuJoCo):
/// starts at the layout's start pose, cannot drive into walls, obstacles or objects (its
/// footprint is a circle of [`ROBOT_RADIUS`]; a blocked step keeps the turn and drops the
/// translation, counting a collision like the MuJoCo body does), and its range rays are cast
/// against the layout geometry every 20 ms, from the same origin and over the same fan as the
/// MuJoCo body's.
#[derive(Debug, Clone)]
pub struct KinematicWorld {
    body: KinematicBody,
    layout: Layout,
    sensor_x: f64,
    range_dirs: Vec<f64>,
    range: [f32; RANGE_RAYS_MAX],
    since_range: f64,
    in_contact: bool,
    last_touch: f64,
    collisions: u32,
}

impl KinematicWorld {
    /// The robot at `layout.start`.
    pub fn new(params: RobotParams, layout: &Layout) -> Self {
        let n = (params.range_rays as usize).min(RANGE_RAYS_MAX);
        let fov = params.range_fov_deg.to_radians();
        let range_dirs = (0..n)
            .map(|i| {
                if n > 1 {
                    -fov / 2.0 + fov * i as f64 / (n - 1) as f64
                } else {
                    0.0
                }
            })
            .collect();
        let sensor_x = params.chassis_length / 2.0 + 0.005;
        let mut body = KinematicBody::new(params);
        body.set_pose(layout.start.0, layout.start.1, layout.start.2);
        let mut w = Self {
            body,
            layout: layout.clone(),
            sensor_x,
            range_dirs,
            range: [0.0; RANGE_RAYS_MAX],
            since_range: 0.0,
            in_contact: false,
            last_touch: f64::NEG_INFINITY,
            collisions: 0,
        };
        w.update_range();
        w
    }

    /// Contact onsets with anything so far (touches closer than [`COLLISION_GAP_S`] are one).
    pub fn collisions(&self) -> u32 {
        self.collisions
    }

    /// The kinematic body.
    pub fn body(&self) -> &KinematicBody {
        &self.body
    }

    fn update_range(&mut self) {
        let (x, y, yaw) = self.body.ground_truth_pose();
        let (ox, oy) = (x + self.sensor_x * yaw.cos(), y + self.sensor_x * yaw.sin());
        let max = self.body.params.range_max;
        for (i, a) in self.range_dirs.iter().enumerate() {
            self.range[i] = raycast::cast(&self.layout, ox, oy, yaw + a, max) as f32;
        }
        self.since_range = 0.0;
    }
}

impl Body for KinematicWorld {
    fn command(&mut self, w: WheelSpeeds) -> Result<(), BodyError> {
        self.body.command(w)
    }
    fn state(&self) -> BodyState {
        BodyState {
            range: self.range,
            range_count: self.range_dirs.len() as u8,
            ..self.body.state()
        }
    }
    fn estop(&mut self) {
        self.body.estop()
    }
    fn clear_estop(&mut self) {
        self.body.clear_estop()
    }
    fn name(&self) -> String {
        "kinematic".into()
    }
}

impl SimulatedBody for KinematicWorld {
    fn advance(&mut self, dt: f64) {
        if !(dt.is_finite() && dt > 0.0) {
            return;
        }
        let (x0, y0, _) = self.body.ground_truth_pose();
        self.body.advance(dt);
        let (x, y, yaw) = self.body.ground_truth_pose();
        let touching = raycast::clearance_all(&self.layout, x, y) < ROBOT_RADIUS;
        if touching {
            // Blocked: moving away from the surface is allowed, moving closer is not.
            let before = raycast::clearance_all(&self.layout, x0, y0);
            if raycast::clearance_all(&self.layout, x, y) < before {
                self.body.set_pose(x0, y0, yaw);
            }
            let t = self.body.time();
            if !self.in_contact && t - self.last_touch > COLLISION_GAP_S {
                self.collisions += 1;
            }
            self.last_touch = t;
        }
        self.in_contact = touching;
        self.since_range += dt;
        if self.since_range >= 0.02 - 1e-9 {
            self.update_range();
        }
    }

    fn ground_truth_pose(&self) -> (f64, f64, f64) {
        self.body.ground_truth_pose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Twist;

    #[test]
    fn drives_straight_and_counts_ticks() {
        let p = RobotParams::load_default();
        let mut b = KinematicBody::new(p.clone());
        let w = p.twist_to_wheels(Twist {
            linear: 0.2,
            angular: 0.0,
        });
        b.command(w).unwrap();
        for _ in 0..1000 {
            b.advance(0.002);
        }
        let (x, y, _) = b.ground_truth_pose();
        assert!((x - 0.2 * 2.0).abs() < 0.02, "x={x}");
        assert!(y.abs() < 1e-9);
        let s = b.state();
        let expected =
            (x / (std::f64::consts::TAU * p.wheel_radius) * p.ticks_per_rev as f64) as i64;
        assert!((s.encoder_ticks[0] - expected).abs() <= 2);
    }

    #[test]
    fn estop_wins_and_bad_numbers_do_not_move() {
        let p = RobotParams::load_default();
        let mut b = KinematicBody::new(p);
        b.command(WheelSpeeds {
            left: f64::NAN,
            right: f64::INFINITY,
        })
        .unwrap();
        b.advance(0.1);
        assert_eq!(b.ground_truth_pose().0, 0.0);
        b.estop();
        assert!(b
            .command(WheelSpeeds {
                left: 5.0,
                right: 5.0
            })
            .is_err());
        b.advance(0.5);
        assert_eq!(b.ground_truth_pose().0, 0.0);
    }
}
