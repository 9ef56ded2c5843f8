//! The MuJoCo model of the robot and its world, generated at run time from the one robot
//! description ([`RobotParams`], i.e. `urdf/robot.toml`) and a scenario [`Layout`]. The URDF
//! (`urdf/brainloop.urdf.xacro`) reads the same parameters through [`params_yaml`], so the
//! simulated robot, the odometry constants and the URDF cannot disagree (tests/sim_urdf.rs checks).

use crate::body::RobotParams;
use crate::world::{Layout, Shape};
use std::fmt::Write;

/// Physics time step, s.
pub const TIMESTEP: f64 = 0.002;
/// Name of the chassis body in the MJCF.
pub const CHASSIS: &str = "base_link";
/// Name of the camera in the MJCF.
pub const CAMERA: &str = "front_camera";
/// Name of the range-sensor site.
pub const RANGE_SITE: &str = "range_origin";
/// Prefix of every object geom (`object:<index>:<colour>_<shape>`).
pub const OBJECT_PREFIX: &str = "object:";
/// Prefix of every obstacle or wall geom.
pub const OBSTACLE_PREFIX: &str = "obstacle:";

/// Height of the chassis box's centre above the wheel axle, m.
pub fn chassis_z(p: &RobotParams) -> f64 {
    p.chassis_height / 2.0
}

/// The robot parameters as flat YAML, the form `xacro.load_yaml` reads in the URDF.
pub fn params_yaml(p: &RobotParams) -> String {
    let v = toml::Value::try_from(p).unwrap_or(toml::Value::Table(Default::default()));
    let mut out = String::from(
        "# Generated from urdf/robot.toml by brainloop (sim::mjcf::params_yaml); do not edit.\n",
    );
    if let toml::Value::Table(t) = v {
        let mut keys: Vec<_> = t.keys().cloned().collect();
        keys.sort();
        for k in keys {
            let _ = writeln!(out, "{k}: {}", t[&k]);
        }
    }
    out
}

fn rgba(c: [f64; 3]) -> String {
    format!("{:.3} {:.3} {:.3} 1", c[0], c[1], c[2])
}

/// The robot's `<body>` (chassis, two driven wheels, caster, camera, IMU and range sites) at
/// pose `(x, y, yaw)`.
pub fn robot_body(p: &RobotParams, pose: (f64, f64, f64)) -> String {
    let (x, y, yaw) = pose;
    let r = p.wheel_radius;
    let half_sep = p.wheel_separation / 2.0;
    let (sp, cp) = p.camera_pitch.sin_cos();
    let caster_z = p.caster_radius - r;
    let wheel_density = p.wheel_mass / (std::f64::consts::PI * r * r * p.wheel_width).max(1e-9);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"    <body name="{CHASSIS}" pos="{x} {y} {r}" euler="0 0 {yaw}">
      <freejoint name="root"/>
      <geom name="chassis" type="box" size="{hl} {hw} {hh}" pos="0 0 {cz}" mass="{cm}" rgba="0.25 0.28 0.32 1"/>
      <geom name="caster" type="sphere" size="{cr}" pos="{co} 0 {caster_z}" mass="0.01" friction="0.01 0.005 0.0001" rgba="0.1 0.1 0.1 1"/>
      <site name="imu" pos="0 0 {cz}" size="0.005"/>
      <site name="{RANGE_SITE}" pos="{rx} 0 {cz}" size="0.005"/>
      <camera name="{CAMERA}" pos="{camx} 0 {camz}" xyaxes="0 -1 0 {sp} 0 {cp}" fovy="{fovy}"/>
"#,
        hl = p.chassis_length / 2.0,
        hw = p.chassis_width / 2.0 - 0.0,
        hh = p.chassis_height / 2.0,
        cz = chassis_z(p),
        cm = p.chassis_mass,
        cr = p.caster_radius,
        co = p.caster_offset,
        rx = p.chassis_length / 2.0 + 0.005,
        camx = p.camera_x,
        camz = p.camera_z,
        fovy = p.camera_fovy_deg,
    );
    for (side, sign) in [("left", 1.0), ("right", -1.0)] {
        let _ = write!(
            s,
            r#"      <body name="{side}_wheel" pos="0 {wy} 0">
        <joint name="{side}_wheel_joint" type="hinge" axis="0 1 0" damping="0.0005"/>
        <geom name="{side}_wheel" type="cylinder" size="{r} {hw}" euler="90 0 0" density="{wheel_density}" friction="1.2 0.01 0.001" rgba="0.05 0.05 0.05 1"/>
      </body>
"#,
            wy = sign * half_sep,
            hw = p.wheel_width / 2.0,
        );
    }
    s.push_str("    </body>\n");
    s
}

/// The whole MJCF document: world (floor, walls, obstacles, objects), robot, actuators, sensors.
pub fn mjcf(p: &RobotParams, layout: &Layout) -> String {
    let half = layout.size_m / 2.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<mujoco model="brainloop_arena">
  <compiler angle="degree" autolimits="true"/>
  <option timestep="{TIMESTEP}" integrator="implicitfast"/>
  <visual>
    <quality shadowsize="0" offsamples="0"/>
    <global offwidth="{w}" offheight="{h}"/>
    <headlight ambient="0.45 0.45 0.45" diffuse="0.5 0.5 0.5" specular="0 0 0"/>
  </visual>
  <default>
    <geom solref="0.004 1" friction="0.9 0.01 0.001"/>
  </default>
  <worldbody>
    <light name="sun" pos="0 0 4" dir="0 0 -1" directional="true" diffuse="0.4 0.4 0.4"/>
    <geom name="floor" type="plane" size="{fs} {fs} 0.05" rgba="0.55 0.55 0.52 1"/>
"#,
        w = p.camera_width.max(64),
        h = p.camera_height.max(64),
        fs = half + 0.5,
    );
    for (i, b) in layout.boxes.iter().enumerate() {
        let (hz, colour) = if b.boundary {
            (0.15, "0.8 0.8 0.78 1")
        } else {
            (0.12, "0.45 0.42 0.4 1")
        };
        let _ = writeln!(
            s,
            r#"    <geom name="{OBSTACLE_PREFIX}{i}" type="box" size="{} {} {hz}" pos="{} {} {hz}" rgba="{colour}"/>"#,
            b.hx, b.hy, b.x, b.y
        );
    }
    for (i, o) in layout.objects.iter().enumerate() {
        let name = format!("{OBJECT_PREFIX}{i}:{}_{}", o.colour.name(), o.shape.name());
        let c = rgba(o.colour.rgb());
        let geom = match o.shape {
            Shape::Ball => format!(r#"type="sphere" size="0.08" pos="{} {} 0.08""#, o.x, o.y),
            Shape::Cube => format!(
                r#"type="box" size="0.07 0.07 0.07" pos="{} {} 0.07""#,
                o.x, o.y
            ),
            Shape::Cylinder => {
                format!(
                    r#"type="cylinder" size="0.07 0.1" pos="{} {} 0.1""#,
                    o.x, o.y
                )
            }
            Shape::Capsule => {
                let (r, h) = (
                    crate::world::CAPSULE_RADIUS,
                    crate::world::CAPSULE_HALF_LENGTH,
                );
                format!(
                    r#"type="capsule" size="{r} {h}" pos="{} {} {}""#,
                    o.x,
                    o.y,
                    r + h
                )
            }
        };
        let _ = writeln!(s, r#"    <geom name="{name}" {geom} rgba="{c}"/>"#);
    }
    s.push_str(&robot_body(p, layout.start));
    let _ = write!(
        s,
        r#"  </worldbody>
  <actuator>
    <velocity name="left_motor" joint="left_wheel_joint" kv="0.3" ctrlrange="-{m} {m}" forcerange="-0.6 0.6"/>
    <velocity name="right_motor" joint="right_wheel_joint" kv="0.3" ctrlrange="-{m} {m}" forcerange="-0.6 0.6"/>
  </actuator>
  <sensor>
    <jointpos name="left_encoder" joint="left_wheel_joint"/>
    <jointpos name="right_encoder" joint="right_wheel_joint"/>
    <jointvel name="left_speed" joint="left_wheel_joint"/>
    <jointvel name="right_speed" joint="right_wheel_joint"/>
    <gyro name="gyro" site="imu"/>
    <accelerometer name="accel" site="imu"/>
  </sensor>
</mujoco>
"#,
        m = p.max_wheel_speed,
    );
    s
}
