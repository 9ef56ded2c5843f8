//! The MuJoCo robot: a diff-drive body with velocity-controlled wheel motors, wheel encoders,
//! an IMU (gyro and accelerometer) and a fan of range rays (`mj_ray`), in an arena generated from
//! a scenario layout. It implements [`SimulatedBody`], so the brain drives it exactly as it drives
//! the serial link to the real board; the ground truth it keeps (pose, contacts) is for scoring
//! only and never reaches the brain.

use crate::body::{RobotParams, SimulatedBody};
use crate::msg::{BodyState, RANGE_RAYS_MAX};
use crate::sim::mjcf::{self, CHASSIS, OBJECT_PREFIX, RANGE_SITE, TIMESTEP};
use crate::sim::parts::{
    ray_angles, valid_step, Contacts, Every, MotorDriven, WheelMotors, RANGE_PERIOD,
};
use crate::world::Layout;
use mujoco_rs::prelude::*;
use std::sync::Arc;

pub use crate::sim::parts::COLLISION_GAP_S;

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
    motors: WheelMotors,
    range: [f32; RANGE_RAYS_MAX],
    range_count: u8,
    range_dirs: Vec<(f64, f64)>,
    range_update: Every,
    contacts: Contacts,
}

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
        let range_dirs: Vec<(f64, f64)> = ray_angles(&params).map(f64::sin_cos).collect();
        let mut data = MjData::new(model.clone());
        data.forward();
        let mut body = Self {
            motors: WheelMotors::new(&params),
            params,
            model,
            data,
            ids,
            range: [0.0; RANGE_RAYS_MAX],
            range_count: range_dirs.len() as u8,
            range_dirs,
            range_update: Every::new(RANGE_PERIOD),
            contacts: Contacts::default(),
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
        self.contacts.collisions()
    }

    /// Whether the robot touches anything but the floor now.
    pub fn in_contact(&self) -> bool {
        self.contacts.in_contact()
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
        self.contacts.update(touching, self.data.time());
    }
}

impl MotorDriven for MujocoBody {
    const NAME: &'static str = "mujoco";

    fn motors_mut(&mut self) -> &mut WheelMotors {
        &mut self.motors
    }

    fn read_state(&self) -> BodyState {
        let qpos = self.data.qpos();
        let sd = self.data.sensordata();
        let (wheel, speed, a) = (
            self.ids.qpos_wheel,
            self.ids.sensor_speed,
            self.ids.sensor_accel,
        );
        let stamp_ns = (self.data.time() * 1e9).round() as u64;
        BodyState {
            gyro_z: sd[self.ids.sensor_gyro + 2],
            accel: [sd[a], sd[a + 1]],
            range: self.range,
            range_count: self.range_count,
            ..self.motors.state(
                stamp_ns,
                [qpos[wheel[0]], qpos[wheel[1]]],
                [sd[speed[0]], sd[speed[1]]],
            )
        }
    }
}

impl SimulatedBody for MujocoBody {
    fn advance(&mut self, dt: f64) {
        if !valid_step(dt) {
            return;
        }
        let steps = ((dt / TIMESTEP).round() as usize).max(1);
        for _ in 0..steps {
            self.data.ctrl_mut()[..2].copy_from_slice(&self.motors.target());
            self.data.step();
            self.update_contacts();
            if self.range_update.elapse(TIMESTEP) {
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
    use crate::body::Body;
    use crate::sim::testing::{drive, open_arena};

    #[test]
    fn drives_like_the_kinematics_say() {
        let p = RobotParams::load_default();
        let mut b = MujocoBody::new(p.clone(), &open_arena([-1.0, 0.0, 0.0], [1.5, 1.5])).unwrap();
        drive(&mut b, &p, (0.2, 0.0), 1, 2.0);
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
        drive(&mut b, &p, (0.0, 1.0), 1, 1.0);
        assert!(
            (b.state().gyro_z - 1.0).abs() < 0.15,
            "{}",
            b.state().gyro_z
        );
    }

    #[test]
    fn wall_ahead_is_ranged_and_bumping_counts_a_collision() {
        let p = RobotParams::load_default();
        let mut b = MujocoBody::new(p.clone(), &open_arena([-1.0, 0.0, 0.0], [1.5, 1.5])).unwrap();
        drive(&mut b, &p, (0.0, 0.0), 1, 0.1);
        // Facing +x from x=-1: the wall face is at x=2, sensor at x=-1+0.105.
        let mid = b.state().range[(p.range_rays / 2) as usize];
        assert!((mid as f64 - p.range_max.min(2.895)).abs() < 0.05, "{mid}");
        drive(&mut b, &p, (0.5, 0.0), 1, 8.0);
        assert!(b.collisions() >= 1);
        assert!(b.ground_truth_pose().0 < 2.0);
    }
}
