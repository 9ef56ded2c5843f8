//! The robot description has one source (`urdf/robot.toml` -> `RobotParams`): the URDF expanded
//! with xacro (PyPI `xacro` in `.cache/venv`), the MuJoCo model generated at run time and the
//! odometry constants must all agree.

use brainloop::body::RobotParams;
use brainloop::sim::mjcf;
use brainloop::sim::scenario::Scenario;
use mujoco_rs::prelude::*;
use std::path::Path;
use std::process::Command;

const TOL: f64 = 1e-9;

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-6, "{what}: {a} != {b}");
}

#[test]
fn committed_yaml_is_generated_from_robot_toml() {
    let p = RobotParams::load_default();
    let want = mjcf::params_yaml(&p);
    let have = std::fs::read_to_string("urdf/robot.yaml").expect("urdf/robot.yaml");
    assert_eq!(
        have, want,
        "urdf/robot.yaml is out of date with urdf/robot.toml; replace it with:\n{want}"
    );
}

/// Expand the xacro with the parameters in `yaml` and read the quantities that matter.
fn urdf_facts(yaml: &Path) -> serde_json::Value {
    let py = Path::new(".cache/venv/bin/python");
    assert!(
        py.exists(),
        "{} missing: run scripts/bootstrap.sh first",
        py.display()
    );
    let script = r#"
import json, sys, subprocess, math
import xml.etree.ElementTree as ET
import os
xml = subprocess.run([os.path.join(os.path.dirname(sys.executable), "xacro"), "urdf/brainloop.urdf.xacro", "params:=" + sys.argv[1]],
                     check=True, capture_output=True, text=True).stdout
r = ET.fromstring(xml)
j = {e.get("name"): e for e in r.findall("joint")}
l = {e.get("name"): e for e in r.findall("link")}
f = lambda s: [float(x) for x in s.split()]
def origin(e, key="xyz"):
    o = e.find("origin")
    return f(o.get(key, "0 0 0")) if o is not None else [0, 0, 0]
cyl = l["left_wheel"].find("collision/geometry/cylinder")
out = {
  "left_wheel": origin(j["left_wheel_joint"]), "right_wheel": origin(j["right_wheel_joint"]),
  "left_axis": f(j["left_wheel_joint"].find("axis").get("xyz")),
  "wheel_radius": float(cyl.get("radius")), "wheel_length": float(cyl.get("length")),
  "base_z": origin(j["base_joint"])[2],
  "chassis_size": f(l["base_link"].find("collision/geometry/box").get("size")),
  "chassis_origin": origin(l["base_link"].find("collision")),
  "chassis_mass": float(l["base_link"].find("inertial/mass").get("value")),
  "caster": origin(j["caster_joint"]),
  "caster_radius": float(l["caster"].find("collision/geometry/sphere").get("radius")),
  "camera": origin(j["camera_joint"]), "camera_rpy": origin(j["camera_joint"], "rpy"),
  "hfov": float(r.find("gazebo/sensor/camera/horizontal_fov").text),
  "image": [int(r.find("gazebo/sensor/camera/image/width").text), int(r.find("gazebo/sensor/camera/image/height").text)],
  "range": origin(j["range_joint"]),
  "rays": int(r.find("gazebo/sensor/lidar/scan/horizontal/samples").text),
  "range_max": float(r.find("gazebo/sensor/lidar/range/max").text),
  "joint_parents_ok": all(
      jj.find("parent").get("link") in l and jj.find("child").get("link") in l for jj in j.values()),
}
print(json.dumps(out))
"#;
    // xacro resolves a relative parameter path against the xacro file's folder: pass it absolute.
    let yaml = std::fs::canonicalize(yaml).expect("parameter file");
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .arg(&yaml)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "xacro expansion failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn v(j: &serde_json::Value, k: &str) -> Vec<f64> {
    j[k].as_array()
        .unwrap_or_else(|| panic!("{k}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN))
        .collect()
}

fn check_urdf(p: &RobotParams, u: &serde_json::Value) {
    let half = p.wheel_separation / 2.0;
    assert_eq!(v(u, "left_wheel"), vec![0.0, half, 0.0]);
    assert_eq!(v(u, "right_wheel"), vec![0.0, -half, 0.0]);
    assert_eq!(v(u, "left_axis"), vec![0.0, 1.0, 0.0]);
    close(
        u["wheel_radius"].as_f64().unwrap(),
        p.wheel_radius,
        "wheel radius",
    );
    close(
        u["wheel_length"].as_f64().unwrap(),
        p.wheel_width,
        "wheel width",
    );
    close(u["base_z"].as_f64().unwrap(), p.wheel_radius, "axle height");
    assert_eq!(
        v(u, "chassis_size"),
        vec![p.chassis_length, p.chassis_width, p.chassis_height]
    );
    close(v(u, "chassis_origin")[2], mjcf::chassis_z(p), "chassis z");
    close(u["chassis_mass"].as_f64().unwrap(), p.chassis_mass, "mass");
    let c = v(u, "caster");
    close(c[0], p.caster_offset, "caster x");
    close(c[2], p.caster_radius - p.wheel_radius, "caster z");
    close(
        u["caster_radius"].as_f64().unwrap(),
        p.caster_radius,
        "caster r",
    );
    let cam = v(u, "camera");
    close(cam[0], p.camera_x, "camera x");
    close(cam[2], p.camera_z, "camera z");
    close(v(u, "camera_rpy")[1], p.camera_pitch, "camera pitch");
    close(
        u["hfov"].as_f64().unwrap(),
        brainloop::experiment::brain::camera_hfov(p),
        "hfov",
    );
    assert_eq!(u["image"][0].as_u64(), Some(p.camera_width as u64));
    assert_eq!(u["image"][1].as_u64(), Some(p.camera_height as u64));
    close(v(u, "range")[0], p.chassis_length / 2.0 + 0.005, "range x");
    assert_eq!(u["rays"].as_u64(), Some(p.range_rays as u64));
    close(u["range_max"].as_f64().unwrap(), p.range_max, "range max");
    assert_eq!(u["joint_parents_ok"], serde_json::Value::Bool(true));
}

fn check_mjcf(p: &RobotParams) {
    let layout = Scenario::parse(
        "instruction = \"x\"\ntime_limit_s = 5\n[goal]\nobject = \"red ball\"\n",
        "t",
        "t",
    )
    .unwrap()
    .layout(3)
    .unwrap();
    let m = MjModel::from_xml_string(&mjcf::mjcf(p, &layout)).expect("mjcf compiles");
    let body = |n: &str| m.name_to_id(MjtObjBase::mjOBJ_BODY, n).unwrap();
    let geom = |n: &str| m.name_to_id(MjtObjBase::mjOBJ_GEOM, n).unwrap();
    let half = p.wheel_separation / 2.0;
    let lw = m.body_pos()[body("left_wheel")];
    let rw = m.body_pos()[body("right_wheel")];
    assert!((lw[1] - half).abs() < TOL && (rw[1] + half).abs() < TOL);
    let ws = m.geom_size()[geom("left_wheel")];
    close(ws[0], p.wheel_radius, "mjcf wheel radius");
    close(ws[1] * 2.0, p.wheel_width, "mjcf wheel width");
    let cs = m.geom_size()[geom("chassis")];
    close(cs[0] * 2.0, p.chassis_length, "mjcf chassis length");
    close(cs[1] * 2.0, p.chassis_width, "mjcf chassis width");
    close(cs[2] * 2.0, p.chassis_height, "mjcf chassis height");
    close(
        m.geom_pos()[geom("chassis")][2],
        mjcf::chassis_z(p),
        "mjcf chassis z",
    );
    let caster = m.geom_pos()[geom("caster")];
    close(caster[0], p.caster_offset, "mjcf caster x");
    close(caster[2], p.caster_radius - p.wheel_radius, "mjcf caster z");
    close(
        m.geom_size()[geom("caster")][0],
        p.caster_radius,
        "mjcf caster r",
    );
    // Chassis body starts at axle height.
    close(
        m.body_pos()[body(mjcf::CHASSIS)][2],
        p.wheel_radius,
        "mjcf axle height",
    );
    let cam = m
        .name_to_id(MjtObjBase::mjOBJ_CAMERA, mjcf::CAMERA)
        .unwrap();
    let cp = m.cam_pos()[cam];
    close(cp[0], p.camera_x, "mjcf camera x");
    close(cp[2], p.camera_z, "mjcf camera z");
    close(m.cam_fovy()[cam], p.camera_fovy_deg, "mjcf fovy");
    // The camera looks along its -z axis: rotate (0, 0, -1) by the camera quaternion.
    let q = m.cam_quat()[cam];
    let (w, x, y, z) = (q[0], q[1], q[2], q[3]);
    let fwd = [
        -(2.0 * (x * z + w * y)),
        -(2.0 * (y * z - w * x)),
        -(1.0 - 2.0 * (x * x + y * y)),
    ];
    close(fwd[0], p.camera_pitch.cos(), "camera forward x");
    close(fwd[1], 0.0, "camera forward y");
    close(fwd[2], -p.camera_pitch.sin(), "camera forward z");
}

#[test]
fn urdf_mjcf_and_robot_params_agree() {
    let p = RobotParams::load_default();
    // The committed parameters, and a perturbed robot to show the three really follow the source.
    check_urdf(&p, &urdf_facts(Path::new("urdf/robot.yaml")));
    check_mjcf(&p);
    let mut q = p.clone();
    q.wheel_radius = 0.041;
    q.wheel_separation = 0.22;
    q.camera_pitch = 0.3;
    q.camera_x = 0.07;
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("robot.yaml");
    std::fs::write(&yaml, mjcf::params_yaml(&q)).unwrap();
    check_urdf(&q, &urdf_facts(&yaml));
    check_mjcf(&q);
}
