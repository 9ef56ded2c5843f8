//! The MuJoCo robot: a diff-drive body with velocity-controlled wheel motors, wheel encoders,
//! an IMU (gyro and accelerometer) and a fan of range rays (`mj_ray`), in an arena generated from
//! a scenario layout. It implements [`SimulatedBody`], so the brain drives it exactly as it drives
//! the serial link to the real board; the ground truth it keeps (pose, contacts) is for scoring
//! only and never reaches the brain.

use crate::body::{Body, BodyError, RobotParams, SimulatedBody};
use crate::msg::{BodyState, WheelSpeeds, RANGE_RAYS_MAX};
use crate::sim::mjcf::{self, CHASSIS, OBJECT_PREFIX, RANGE_SITE, TIMESTEP};
use crate::world::Layout;
use mujoco_rs::prelude::*;
use std::sync::Arc;

/// Errors building the MuJoCo body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MujocoError {
    /// MuJoCo refused the generated model.
    #[error("MuJoCo could not compile the generated model: {0}")]
    Model(String),
    /// A name the body relies on is missing from the model.
    #[error("generated model lacks `{0}`")]
    Missing(&'static str),
}

/// Model indices the body reads every step, looked up once.
#[derive(Debug, Clone)]
struct Ids {
    chassis: usize,
    qpos_wheel: [usize; 2],
    sensor_speed: [usize; 2],
    sensor_gyro: usize,
    sensor_accel: usize,
    range_site: usize,
    floor_geom: usize,
    /// Per geom: is it part of the robot.
    robot_geom: Vec<bool>,
    /// Per geom: layout object index, if it is an object.
    object_of_geom: Vec<Option<usize>>,
}

/// The simulated robot and its world.
pub struct MujocoBody {
    params: RobotParams,
    model: Arc<MjModel>,
    data: MjData<Arc<MjModel>>,
    ids: Ids,
    estop: bool,
    setpoint: [f64; 2],
    range: [f32; RANGE_RAYS_MAX],
    range_count: u8,
    range_dirs: Vec<(f64, f64)>,
    since_range: f64,
    in_contact: bool,
    last_touch: f64,
    collisions: u32,
}

/// Contacts separated by less than this are one collision, s.
pub const COLLISION_GAP_S: f64 = 0.5;

impl std::fmt::Debug for MujocoBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MujocoBody")
            .field("time", &self.data.time())
            .finish()
    }
}

impl MujocoBody {
    /// Build the robot in `layout` from the robot parameters.
    pub fn new(params: RobotParams, layout: &Layout) -> Result<Self, MujocoError> {
        let xml = mjcf::mjcf(&params, layout);
        let model = Arc::new(
            MjModel::from_xml_string(&xml).map_err(|e| MujocoError::Model(e.to_string()))?,
        );
        let id = |t: MjtObjBase, name: &'static str| {
            model.name_to_id(t, name).ok_or(MujocoError::Missing(name))
        };
        let chassis = id(MjtObjBase::mjOBJ_BODY, CHASSIS)?;
        let jl = id(MjtObjBase::mjOBJ_JOINT, "left_wheel_joint")?;
        let jr = id(MjtObjBase::mjOBJ_JOINT, "right_wheel_joint")?;
        let sensor = |name: &'static str| -> Result<usize, MujocoError> {
            let s = id(MjtObjBase::mjOBJ_SENSOR, name)?;
            Ok(model.sensor_adr()[s] as usize)
        };
        let ngeom = model.ffi().ngeom as usize;
        let root = model.body_rootid();
        let geom_body = model.geom_bodyid();
        let robot_root = root[chassis];
        let robot_geom = (0..ngeom)
            .map(|g| root[geom_body[g] as usize] == robot_root)
            .collect();
        let object_of_geom = (0..ngeom)
            .map(|g| {
                model
                    .id_to_name(MjtObjBase::mjOBJ_GEOM, g)
                    .and_then(|n| n.strip_prefix(OBJECT_PREFIX))
                    .and_then(|rest| rest.split(':').next())
                    .and_then(|i| i.parse().ok())
            })
            .collect();
        let ids = Ids {
            chassis,
            qpos_wheel: [
                model.jnt_qposadr()[jl] as usize,
                model.jnt_qposadr()[jr] as usize,
            ],
            sensor_speed: [sensor("left_speed")?, sensor("right_speed")?],
            sensor_gyro: sensor("gyro")?,
            sensor_accel: sensor("accel")?,
            range_site: id(MjtObjBase::mjOBJ_SITE, RANGE_SITE)?,
            floor_geom: id(MjtObjBase::mjOBJ_GEOM, "floor")?,
            robot_geom,
            object_of_geom,
        };
        let n = (params.range_rays as usize).min(RANGE_RAYS_MAX);
        let fov = params.range_fov_deg.to_radians();
        let range_dirs = (0..n)
            .map(|i| {
                let a = if n > 1 {
                    -fov / 2.0 + fov * i as f64 / (n - 1) as f64
                } else {
                    0.0
                };
                a.sin_cos()
            })
            .collect();
        let mut data = MjData::new(model.clone());
        data.forward();
        let mut body = Self {
            params,
            model,
            data,
            ids,
            estop: false,
            setpoint: [0.0; 2],
            range: [0.0; RANGE_RAYS_MAX],
            range_count: n as u8,
            range_dirs,
            since_range: 0.0,
            in_contact: false,
            last_touch: f64::NEG_INFINITY,
            collisions: 0,
        };
        body.update_range();
        Ok(body)
    }

    /// The compiled model.
    pub fn model(&self) -> &Arc<MjModel> {
        &self.model
    }

    /// The simulation state (for rendering).
    pub fn data_mut(&mut self) -> &mut MjData<Arc<MjModel>> {
        &mut self.data
    }

    /// Simulated time, s.
    pub fn time(&self) -> f64 {
        self.data.time()
    }

    /// Number of contact onsets between the robot and anything but the floor so far.
    pub fn collisions(&self) -> u32 {
        self.collisions
    }

    /// Whether the robot touches anything but the floor now.
    pub fn in_contact(&self) -> bool {
        self.in_contact
    }

    /// Layout object index of a model geom, if that geom is one of the coloured objects.
    pub fn object_of_geom(&self, geom: usize) -> Option<usize> {
        self.ids.object_of_geom.get(geom).copied().flatten()
    }

    fn update_range(&mut self) {
        let origin = self.data.site_xpos()[self.ids.range_site];
        let (_, _, yaw) = self.ground_truth_pose();
        let max = self.params.range_max;
        for i in 0..self.range_dirs.len() {
            let (s, c) = self.range_dirs[i];
            // Body-frame direction (cos a, sin a) rotated by yaw.
            let (sy, cy) = yaw.sin_cos();
            let dir = [c * cy - s * sy, c * sy + s * cy, 0.0];
            let (_, d) = self
                .data
                .ray(&origin, &dir, None, true, Some(self.ids.chassis), None);
            self.range[i] = if d < 0.0 || d > max { max } else { d } as f32;
        }
        self.since_range = 0.0;
    }

    fn update_contacts(&mut self) {
        let mut touching = false;
        for c in self.data.contact() {
            let (g1, g2) = (c.geom[0] as usize, c.geom[1] as usize);
            let r1 = self.ids.robot_geom.get(g1).copied().unwrap_or(false);
            let r2 = self.ids.robot_geom.get(g2).copied().unwrap_or(false);
            let floor = g1 == self.ids.floor_geom || g2 == self.ids.floor_geom;
            if r1 != r2 && !floor && c.dist < 0.002 {
                touching = true;
                break;
            }
        }
        // One collision per contact episode: touching again within COLLISION_GAP_S of the last
        // touch (pushing along a wall, bouncing) is the same collision.
        let t = self.data.time();
        if touching {
            if !self.in_contact && t - self.last_touch > COLLISION_GAP_S {
                self.collisions += 1;
            }
            self.last_touch = t;
        }
        self.in_contact = touching;
    }
}

impl Body for MujocoBody {
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
        let qpos = self.data.qpos();
        let sd = self.data.sensordata();
        let ticks = |a: f64| (a / std::f64::consts::TAU * p.ticks_per_rev as f64).floor() as i64;
        let a = self.ids.sensor_accel;
        BodyState {
            stamp_ns: (self.data.time() * 1e9).round() as u64,
            encoder_ticks: [
                ticks(qpos[self.ids.qpos_wheel[0]]),
                ticks(qpos[self.ids.qpos_wheel[1]]),
            ],
            wheel_speed: [sd[self.ids.sensor_speed[0]], sd[self.ids.sensor_speed[1]]],
            gyro_z: sd[self.ids.sensor_gyro + 2],
            accel: [sd[a], sd[a + 1]],
            battery_v: 7.4,
            faults: 0,
            estop: self.estop,
            range: self.range,
            range_count: self.range_count,
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
        "mujoco".into()
    }
}

impl SimulatedBody for MujocoBody {
    fn advance(&mut self, dt: f64) {
        if !(dt.is_finite() && dt > 0.0) {
            return;
        }
        let steps = ((dt / TIMESTEP).round() as usize).max(1);
        for _ in 0..steps {
            let sp = if self.estop { [0.0; 2] } else { self.setpoint };
            self.data.ctrl_mut()[..2].copy_from_slice(&sp);
            self.data.step();
            self.update_contacts();
            self.since_range += TIMESTEP;
            if self.since_range >= 0.02 - 1e-9 {
                self.update_range();
            }
        }
    }

    fn ground_truth_pose(&self) -> (f64, f64, f64) {
        let p = self.data.xpos()[self.ids.chassis];
        let q = self.data.xquat()[self.ids.chassis];
        let yaw =
            (2.0 * (q[0] * q[3] + q[1] * q[2])).atan2(1.0 - 2.0 * (q[2] * q[2] + q[3] * q[3]));
        (p[0], p[1], yaw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Twist;
    use crate::sim::scenario::Scenario;

    fn open_arena() -> Layout {
        Scenario::parse(
            "instruction = \"go\"\ntime_limit_s = 10\n[goal]\nobject = \"red ball\"\n[arena]\nstart = [-1.0, 0.0, 0.0]\ngoal_at = [1.5, 1.5]\n",
            "t",
            "t",
        )
        .unwrap()
        .layout(1)
        .unwrap()
    }

    #[test]
    fn drives_like_the_kinematics_say() {
        let p = RobotParams::load_default();
        let mut b = MujocoBody::new(p.clone(), &open_arena()).unwrap();
        b.command(p.twist_to_wheels(Twist {
            linear: 0.2,
            angular: 0.0,
        }))
        .unwrap();
        b.advance(2.0);
        let (x, y, yaw) = b.ground_truth_pose();
        assert!((x - (-1.0 + 0.4)).abs() < 0.05, "x={x}");
        assert!(y.abs() < 0.02 && yaw.abs() < 0.05, "y={y} yaw={yaw}");
        let s = b.state();
        let travelled = s.encoder_ticks[0] as f64 / p.ticks_per_rev as f64
            * std::f64::consts::TAU
            * p.wheel_radius;
        assert!((travelled - 0.4).abs() < 0.05, "{travelled}");
        // Range rays see the far wall, straight ahead at about 2 m - 0.1 m (capped at range_max).
        assert_eq!(s.range_count as u32, p.range_rays);
        assert!(s
            .range
            .iter()
            .take(s.range_count as usize)
            .all(|r| *r > 0.0));
        // Turning in place: gyro reports the yaw rate.
        b.command(p.twist_to_wheels(Twist {
            linear: 0.0,
            angular: 1.0,
        }))
        .unwrap();
        b.advance(1.0);
        assert!(
            (b.state().gyro_z - 1.0).abs() < 0.15,
            "{}",
            b.state().gyro_z
        );
    }

    #[test]
    fn wall_ahead_is_ranged_and_bumping_counts_a_collision() {
        let p = RobotParams::load_default();
        let mut b = MujocoBody::new(p.clone(), &open_arena()).unwrap();
        b.command(p.twist_to_wheels(Twist {
            linear: 0.0,
            angular: 0.0,
        }))
        .unwrap();
        b.advance(0.1);
        // Facing +x from x=-1: the wall face is at x=2, sensor at x=-1+0.105.
        let mid = b.state().range[(p.range_rays / 2) as usize];
        assert!((mid as f64 - p.range_max.min(2.895)).abs() < 0.05, "{mid}");
        b.command(p.twist_to_wheels(Twist {
            linear: 0.5,
            angular: 0.0,
        }))
        .unwrap();
        b.advance(8.0);
        assert!(b.collisions() >= 1);
        assert!(b.ground_truth_pose().0 < 2.0);
    }
}
