//! What the simulated bodies share, written once: the wheel motors (clamped setpoints, the e-stop
//! latch, encoders) and the [`Body`] side of a body driven through them, the fan of range rays,
//! contact episodes and updates at a fixed period of simulated time.

use crate::body::{Body, BodyError, RobotParams};
use crate::msg::{BodyState, WheelSpeeds};

/// Contacts separated by less than this are one collision, s.
pub const COLLISION_GAP_S: f64 = 0.5;

/// Period of the range rays, s.
pub const RANGE_PERIOD: f64 = 0.02;

/// Whether a body can advance by `dt` (finite and positive); anything else leaves it as it is.
pub fn valid_step(dt: f64) -> bool {
    dt.is_finite() && dt > 0.0
}

/// The simulated wheel motors: setpoints clamped to the maximum wheel speed (a non-finite one is
/// 0), the e-stop latch that zeroes them and refuses commands, and quantised encoders.
#[derive(Debug, Clone)]
pub struct WheelMotors {
    max_wheel_speed: f64,
    ticks_per_rev: u32,
    setpoint: [f64; 2],
    estop: bool,
}

impl WheelMotors {
    /// Stopped motors of the robot `params` describes.
    pub fn new(params: &RobotParams) -> Self {
        Self {
            max_wheel_speed: params.max_wheel_speed,
            ticks_per_rev: params.ticks_per_rev,
            setpoint: [0.0; 2],
            estop: false,
        }
    }

    /// New setpoints (the body's [`Body::command`](crate::body::Body::command)).
    pub fn command(&mut self, w: WheelSpeeds) -> Result<(), BodyError> {
        if self.estop {
            self.setpoint = [0.0; 2];
            return Err(BodyError::Refused("e-stop latched".into()));
        }
        let m = self.max_wheel_speed;
        let clamp = |v: f64| if v.is_finite() { v.clamp(-m, m) } else { 0.0 };
        self.setpoint = [clamp(w.left), clamp(w.right)];
        Ok(())
    }

    /// Latch the e-stop: setpoints to zero until cleared.
    pub fn estop(&mut self) {
        self.estop = true;
        self.setpoint = [0.0; 2];
    }

    /// Clear the e-stop latch.
    pub fn clear_estop(&mut self) {
        self.estop = false;
    }

    /// The wheel speeds the motors drive towards now: zero while the e-stop is latched.
    pub fn target(&self) -> [f64; 2] {
        if self.estop {
            [0.0; 2]
        } else {
            self.setpoint
        }
    }

    /// What the motors and their encoders report at `stamp_ns` for these wheel angles (rad) and
    /// speeds (rad/s): encoder ticks, a healthy 7.4 V battery, no faults, the e-stop latch. The
    /// body adds what its other sensors read (IMU, range rays).
    pub fn state(&self, stamp_ns: u64, wheel_angle: [f64; 2], wheel_speed: [f64; 2]) -> BodyState {
        let per_rev = self.ticks_per_rev as f64;
        let ticks = |a: f64| (a / std::f64::consts::TAU * per_rev).floor() as i64;
        BodyState {
            stamp_ns,
            encoder_ticks: [ticks(wheel_angle[0]), ticks(wheel_angle[1])],
            wheel_speed,
            battery_v: 7.4,
            faults: 0,
            estop: self.estop,
            ..Default::default()
        }
    }
}

/// A simulated robot driven through its [`WheelMotors`]: its [`Body`] side is the motors'
/// (commands, e-stop) and what [`MotorDriven::read_state`] reads.
pub trait MotorDriven: Send {
    /// Short name for logs.
    const NAME: &'static str;
    /// The wheel motors.
    fn motors_mut(&mut self) -> &mut WheelMotors;
    /// The state now: [`WheelMotors::state`] and the other sensors.
    fn read_state(&self) -> BodyState;
}

impl<T: MotorDriven> Body for T {
    fn command(&mut self, w: WheelSpeeds) -> Result<(), BodyError> {
        self.motors_mut().command(w)
    }
    fn state(&self) -> BodyState {
        self.read_state()
    }
    fn estop(&mut self) {
        self.motors_mut().estop()
    }
    fn clear_estop(&mut self) {
        self.motors_mut().clear_estop()
    }
    fn name(&self) -> String {
        T::NAME.into()
    }
}

/// Directions of the range rays in the body frame, rad: `range_rays` (at most
/// [`crate::msg::RANGE_RAYS_MAX`]) spread evenly across `range_fov_deg`, right to left; one ray looks ahead.
pub fn ray_angles(params: &RobotParams) -> impl Iterator<Item = f64> {
    params.ray_angles().into_iter()
}

/// Collisions as contact episodes: touching again within [`COLLISION_GAP_S`] of the last touch
/// (pushing along a wall, bouncing) is the same collision.
#[derive(Debug, Clone)]
pub struct Contacts {
    in_contact: bool,
    last_touch: f64,
    collisions: u32,
}

impl Default for Contacts {
    fn default() -> Self {
        Self {
            in_contact: false,
            last_touch: f64::NEG_INFINITY,
            collisions: 0,
        }
    }
}

impl Contacts {
    /// Whether the robot touches something at simulated time `t`, s.
    pub fn update(&mut self, touching: bool, t: f64) {
        if touching {
            if !self.in_contact && t - self.last_touch > COLLISION_GAP_S {
                self.collisions += 1;
            }
            self.last_touch = t;
        }
        self.in_contact = touching;
    }

    /// Contact onsets so far.
    pub fn collisions(&self) -> u32 {
        self.collisions
    }

    /// Whether the robot touched something at the last update.
    pub fn in_contact(&self) -> bool {
        self.in_contact
    }
}

/// Something done every `period` seconds of simulated time (range rays, telemetry).
#[derive(Debug, Clone)]
pub struct Every {
    period: f64,
    since: f64,
}

impl Every {
    /// Due first one `period` from now.
    pub fn new(period: f64) -> Self {
        Self { period, since: 0.0 }
    }

    /// Let `dt` pass: true when it is due (the next period starts now).
    pub fn elapse(&mut self, dt: f64) -> bool {
        self.since += dt;
        if self.since >= self.period - 1e-9 {
            self.since = 0.0;
            true
        } else {
            false
        }
    }
}
