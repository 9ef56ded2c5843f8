//! A pure-Rust kinematic diff-drive body: unicycle model with wheel-speed limits, a first-order
//! motor lag and quantised encoders. Deterministic, allocation-free, fast: the body for unit
//! tests and the fallback when MuJoCo is not available.

use crate::body::{RobotParams, SimulatedBody};
use crate::msg::{BodyState, WheelSpeeds, RANGE_RAYS_MAX};
use crate::sim::parts::{
    ray_angles, valid_step, Contacts, Every, MotorDriven, WheelMotors, RANGE_PERIOD,
};
use crate::sim::raycast;
use crate::world::{Layout, ROBOT_RADIUS};

/// Kinematic diff-drive robot.
#[derive(Debug, Clone)]
pub struct KinematicBody {
    params: RobotParams,
    /// Motor time constant, s (first-order lag from setpoint to wheel speed).
    pub motor_tau: f64,
    motors: WheelMotors,
    speed: [f64; 2],
    angle: [f64; 2],
    pose: (f64, f64, f64),
    time: f64,
    last_accel: [f64; 2],
}

impl KinematicBody {
    /// A robot at the origin facing +x.
    pub fn new(params: RobotParams) -> Self {
        Self {
            motors: WheelMotors::new(&params),
            params,
            motor_tau: 0.05,
            speed: [0.0; 2],
            angle: [0.0; 2],
            pose: (0.0, 0.0, 0.0),
            time: 0.0,
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

impl MotorDriven for KinematicBody {
    const NAME: &'static str = "kinematic";

    fn motors_mut(&mut self) -> &mut WheelMotors {
        &mut self.motors
    }

    fn read_state(&self) -> BodyState {
        let twist = self.params.wheels_to_twist(WheelSpeeds {
            left: self.speed[0],
            right: self.speed[1],
        });
        BodyState {
            gyro_z: twist.angular,
            accel: self.last_accel,
            ..self
                .motors
                .state((self.time * 1e9) as u64, self.angle, self.speed)
        }
    }
}

impl SimulatedBody for KinematicBody {
    fn advance(&mut self, dt: f64) {
        if !valid_step(dt) {
            return;
        }
        let before = self.params.wheels_to_twist(WheelSpeeds {
            left: self.speed[0],
            right: self.speed[1],
        });
        let a = 1.0 - (-dt / self.motor_tau).exp();
        let wheels = self.speed.iter_mut().zip(&mut self.angle);
        for ((speed, angle), target) in wheels.zip(self.motors.target()) {
            *speed += (target - *speed) * a;
            *angle += *speed * dt;
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
    range_update: Every,
    contacts: Contacts,
}

impl KinematicWorld {
    /// The robot at `layout.start`.
    pub fn new(params: RobotParams, layout: &Layout) -> Self {
        let range_dirs = ray_angles(&params).collect();
        let sensor_x = params.chassis_length / 2.0 + 0.005;
        let mut body = KinematicBody::new(params);
        body.set_pose(layout.start.0, layout.start.1, layout.start.2);
        let mut w = Self {
            body,
            layout: layout.clone(),
            sensor_x,
            range_dirs,
            range: [0.0; RANGE_RAYS_MAX],
            range_update: Every::new(RANGE_PERIOD),
            contacts: Contacts::default(),
        };
        w.update_range();
        w
    }

    /// Contact onsets with anything so far (touches closer than
    /// [`COLLISION_GAP_S`](crate::sim::parts::COLLISION_GAP_S) are one).
    pub fn collisions(&self) -> u32 {
        self.contacts.collisions()
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
    }
}

impl MotorDriven for KinematicWorld {
    const NAME: &'static str = KinematicBody::NAME;

    fn motors_mut(&mut self) -> &mut WheelMotors {
        self.body.motors_mut()
    }

    fn read_state(&self) -> BodyState {
        BodyState {
            range: self.range,
            range_count: self.range_dirs.len() as u8,
            ..self.body.read_state()
        }
    }
}

impl SimulatedBody for KinematicWorld {
    fn advance(&mut self, dt: f64) {
        if !valid_step(dt) {
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
        }
        self.contacts.update(touching, self.body.time());
        if self.range_update.elapse(dt) {
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
    use crate::body::Body;
    use crate::sim::testing::drive;

    #[test]
    fn drives_straight_and_counts_ticks() {
        let p = RobotParams::load_default();
        let mut b = KinematicBody::new(p.clone());
        drive(&mut b, &p, (0.2, 0.0), 1000, 0.002);
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
