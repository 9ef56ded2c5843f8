#!/usr/bin/env python3
"""The Gazebo side of brainloop, checked with Gazebo's own parser (libsdformat) and no Gazebo.

  check_gazebo.py --bin target/release/brainloop --sdf-check .cache/bin/sdf_check

1. The robot: urdf/brainloop.urdf.xacro, expanded with xacro and loaded by libsdformat the way
   Gazebo loads a spawned URDF, has the diff drive (the URDF's wheel joints, wheel separation
   and radius from urdf/robot.yaml, cmd_vel/odom/tf topics, odom -> base_footprint), the joint
   state publisher, an IMU, the camera (size and field of view from robot.yaml) and the
   gpu_lidar (rays, field of view, range), each with its topic and a frame id that is a link of
   the URDF, and a slippery caster. The only element outside SDF 1.9 is gz-sensors'
   <gz_frame_id>.
2. The worlds: every scenarios/*.toml, at its own seed and at extra seeds, exported with
   `brainloop scenario export` and loaded with no error and no unknown element, has the world
   systems (physics, user commands, scene broadcaster, sensors on ogre2, IMU), a 1 ms step, a
   sun, and exactly the layout's models (ground, walls, obstacles, objects) at the layout's
   poses with the MuJoCo model's sizes and colours, all static. Same seed, same bytes. Unknown
   scenarios, unwritable files and bad seeds fail with a message and a non-zero exit.
3. The bridge: config/ros_gz_bridge.yaml bridges exactly the robot's and the world's gz topics,
   each with a (ROS type, gz type) pair Jazzy's ros_gz_bridge converts, in the right direction;
   and every robot topic of the brain (`brainloop ros topics --json`, when the binary has it)
   is bridged with the same type and direction.
4. The launch: launch/gazebo.launch.py, run with stand-ins for the ROS 2 launch API (which cannot
   be installed here), exports the scenario it is given and spawns the robot at the start pose
   `brainloop scenario export --print-start` prints, in that world, with the bridge's YAML.

Prints one line per problem and exits 1 if there is any.
"""
import argparse
import concurrent.futures
import json
import math
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import types
import xml.etree.ElementTree as ET

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXTRA_SEEDS = [2, 17]
WORLD_SYSTEMS = {
    "gz-sim-physics-system": "gz::sim::systems::Physics",
    "gz-sim-user-commands-system": "gz::sim::systems::UserCommands",
    "gz-sim-scene-broadcaster-system": "gz::sim::systems::SceneBroadcaster",
    "gz-sim-sensors-system": "gz::sim::systems::Sensors",
    "gz-sim-imu-system": "gz::sim::systems::Imu",
}
# Object sizes and heights of src/sim/mjcf.rs (sim::sdf's unit tests hold the writer to them).
OBJECT_GEOMETRY = {
    "ball": ({"type": "sphere", "radius": 0.08}, 0.08),
    "cube": ({"type": "box", "size": [0.14, 0.14, 0.14]}, 0.07),
    "cylinder": ({"type": "cylinder", "radius": 0.07, "length": 0.2}, 0.1),
}
# (ROS 2 type, gz type) pairs that Jazzy's ros_gz_bridge (1.0.x) converts, from its
# ros_gz_bridge/mappings.py; TwistStamped <-> gz.msgs.Twist was added in 1.0.0 (ros_gz#468).
JAZZY_MAPPINGS = {
    ("geometry_msgs/msg/Twist", "gz.msgs.Twist"),
    ("geometry_msgs/msg/TwistStamped", "gz.msgs.Twist"),
    ("nav_msgs/msg/Odometry", "gz.msgs.Odometry"),
    ("tf2_msgs/msg/TFMessage", "gz.msgs.Pose_V"),
    ("sensor_msgs/msg/JointState", "gz.msgs.Model"),
    ("sensor_msgs/msg/Imu", "gz.msgs.IMU"),
    ("sensor_msgs/msg/LaserScan", "gz.msgs.LaserScan"),
    ("sensor_msgs/msg/Image", "gz.msgs.Image"),
    ("sensor_msgs/msg/CameraInfo", "gz.msgs.CameraInfo"),
    ("rosgraph_msgs/msg/Clock", "gz.msgs.Clock"),
}
BRIDGE_KEYS = {"ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name", "direction"}
# Elements outside SDF 1.9 that Gazebo reads and we use on purpose: (element, parent).
ALLOWED_UNKNOWN = {("gz_frame_id", "sensor")}

problems = []


def problem(msg):
    problems.append(msg)
    print(msg)


def norm(topic):
    """gz-transport names: a relative topic is absolute from the root namespace."""
    return "/" + topic.lstrip("/")


def close(a, b, tol=1e-9):
    return a is not None and b is not None and abs(a - b) <= tol


def sdf_load(tool, path, what):
    done = subprocess.run([tool, str(path), "--strict"], capture_output=True, text=True)
    try:
        out = json.loads(done.stdout)
    except json.JSONDecodeError:
        problem(f"{what}: sdf_check printed no JSON (exit {done.returncode}): {done.stderr.strip()}")
        return None
    for e in out["errors"]:
        problem(f"{what}: libsdformat error: {e.strip()}")
    if (done.returncode == 0) != (not out["errors"]):
        problem(f"{what}: sdf_check exit {done.returncode} disagrees with its error list")
    return out


def unknown_elements(strict, what, allowed):
    for msg in strict:
        m = re.search(r"XML Element\[(\w+)\], child of element\[(\w+)\]", msg)
        if not (m and (m.group(1), m.group(2)) in allowed):
            problem(f"{what}: not SDF 1.9: {msg.strip()}")


def plugin(plugins, filename, what):
    found = [p for p in plugins if p["filename"] == filename]
    if len(found) != 1:
        problem(f"{what}: {len(found)} plugins {filename} (want 1)")
        return None
    p = found[0]
    return p, {k: v for k, v in p["elements"]}, [k for k, _ in p["elements"]], p["elements"]


# ---------------------------------------------------------------- 1. the robot
def check_robot(tool, tmp):
    params = yaml.safe_load((ROOT / "urdf" / "robot.yaml").read_text())
    xacro = pathlib.Path(sys.executable).parent / "xacro"
    urdf = subprocess.run([str(xacro), str(ROOT / "urdf" / "brainloop.urdf.xacro")],
                          capture_output=True, text=True)
    if urdf.returncode != 0:
        problem(f"xacro failed: {urdf.stderr.strip()}")
        return {}
    path = tmp / "brainloop.urdf"
    path.write_text(urdf.stdout)
    tree = ET.fromstring(urdf.stdout)
    urdf_links = {e.get("name") for e in tree.findall("link")}
    wheel_joints = {j.find("child").get("link"): j.get("name") for j in tree.findall("joint")
                    if j.get("type") == "continuous"}
    what = "urdf/brainloop.urdf.xacro"
    out = sdf_load(tool, path, what)
    if out is None:
        return {}
    unknown_elements(out.get("strict", []), what, ALLOWED_UNKNOWN)
    if len(out["models"]) != 1:
        problem(f"{what}: {len(out['models'])} models (want 1)")
        return {}
    model = out["models"][0]
    topics = {}

    dd = plugin(model["plugins"], "gz-sim-diff-drive-system", what)
    if dd:
        p, el, _, _ = dd
        want = {
            "left_joint": wheel_joints.get("left_wheel"),
            "right_joint": wheel_joints.get("right_wheel"),
            "topic": "cmd_vel", "odom_topic": "odom", "tf_topic": "tf",
            "frame_id": "odom", "child_frame_id": "base_footprint",
        }
        if p["name"] != "gz::sim::systems::DiffDrive":
            problem(f"{what}: diff drive class {p['name']}")
        for k, v in want.items():
            if el.get(k) != v:
                problem(f"{what}: diff drive <{k}> is {el.get(k)!r}, want {v!r}")
        for k in ("wheel_separation", "wheel_radius"):
            if not close(float(el.get(k, "nan")), params[k]):
                problem(f"{what}: diff drive <{k}> {el.get(k)} != robot.yaml {params[k]}")
        if not float(el.get("odom_publish_frequency", "0")) > 0:
            problem(f"{what}: diff drive has no odom_publish_frequency")
        topics["cmd_vel"] = ("diff drive", el.get("topic"))
        topics["odom"] = ("diff drive", el.get("odom_topic"))
        topics["tf"] = ("diff drive", el.get("tf_topic"))

    jsp = plugin(model["plugins"], "gz-sim-joint-state-publisher-system", what)
    if jsp:
        p, el, _, elements = jsp
        if p["name"] != "gz::sim::systems::JointStatePublisher":
            problem(f"{what}: joint state publisher class {p['name']}")
        if el.get("topic") != "joint_states":
            problem(f"{what}: joint state publisher topic {el.get('topic')!r}")
        listed = {v for k, v in elements if k == "joint_name"}
        if listed and listed != set(wheel_joints.values()):
            problem(f"{what}: joint state publisher joints {sorted(listed)} != {sorted(wheel_joints.values())}")
        topics["joint_states"] = ("joint state publisher", el.get("topic"))

    sensors = {s["type"]: s for link in model["links"] for s in link["sensors"]}
    for kind in ("imu", "camera", "gpu_lidar"):
        n = sum(s["type"] == kind for link in model["links"] for s in link["sensors"])
        if n != 1:
            problem(f"{what}: {n} {kind} sensors (want 1)")
    for kind, topic, frame in (("imu", "imu", "imu_link"),
                               ("camera", "camera/image_raw", "camera_optical_frame"),
                               ("gpu_lidar", "scan", None)):
        s = sensors.get(kind)
        if not s:
            continue
        if s["topic"] != topic:
            problem(f"{what}: {kind} topic {s['topic']!r}, want {topic!r}")
        if s["gz_frame_id"] not in urdf_links or (frame and s["gz_frame_id"] != frame):
            problem(f"{what}: {kind} frame id {s['gz_frame_id']!r} is not {frame or 'a URDF link'}")
        if not s["update_rate"] > 0:
            problem(f"{what}: {kind} has no update rate")
        topics[kind] = (f"{kind} sensor", s["topic"])
    cam = sensors.get("camera", {}).get("camera")
    if cam:
        w, h = params["camera_width"], params["camera_height"]
        fovy = math.radians(params["camera_fovy_deg"])
        hfov = 2 * math.atan(math.tan(fovy / 2) * w / h)
        if (cam["width"], cam["height"]) != (w, h) or not close(cam["horizontal_fov"], hfov, 1e-6):
            problem(f"{what}: camera {cam} != robot.yaml {w}x{h}, hfov {hfov}")
        # gz-sensors publishes camera_info beside the image: <image topic's parent>/camera_info.
        parent = sensors["camera"]["topic"].rsplit("/", 1)[0] if "/" in sensors["camera"]["topic"] else ""
        topics["camera_info"] = ("camera sensor", f"{parent}/camera_info".lstrip("/"))
    lidar = sensors.get("gpu_lidar", {}).get("lidar")
    if lidar:
        half = math.radians(params["range_fov_deg"]) / 2
        if (lidar["samples"] != params["range_rays"] or not close(lidar["min_angle"], -half)
                or not close(lidar["max_angle"], half) or not close(lidar["range_max"], params["range_max"])):
            problem(f"{what}: gpu_lidar {lidar} != robot.yaml rays {params['range_rays']}, "
                    f"fov {params['range_fov_deg']} deg, max {params['range_max']}")
    caster = [c for link in model["links"] for c in link["collisions"] if "caster" in c["name"]]
    if len(caster) != 1 or caster[0]["mu"] is None or caster[0]["mu"] > 0.05 or (caster[0]["mu2"] or 1) > 0.05:
        problem(f"{what}: the caster's friction is not ~0: {caster}")
    return topics


# ---------------------------------------------------------------- 2. the worlds
def colours():
    """Colour::rgb() from src/world/mod.rs, the table MuJoCo renders with."""
    text = (ROOT / "src" / "world" / "mod.rs").read_text()
    body = text[text.index("pub fn rgb(self)"):]
    body = body[:body.index("\n    }\n")]
    table = {m.group(1).lower(): [float(v) for v in m.group(2).split(",")]
             for m in re.finditer(r"Colour::(\w+) => \[([^\]]+)\]", body)}
    if len(table) < 6:
        problem(f"src/world/mod.rs: read {len(table)} colours from Colour::rgb()")
    return table


def export(bin_, scenario, seed, out, *extra):
    cmd = [bin_, "scenario", "export", str(scenario), "--sdf", str(out), *extra]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


def geometry_ok(got, want):
    if not got or got["type"] != want["type"]:
        return False
    return all(close(got[k], v) if not isinstance(v, list)
               else len(got[k]) == len(v) and all(close(a, b) for a, b in zip(got[k], v))
               for k, v in want.items() if k != "type")


def check_world(tool, bin_, scenario, seed, tmp, rgb):
    tag = f"{scenario.name} seed {seed if seed is not None else 'default'}"
    a, b = tmp / f"{scenario.stem}-{seed}-a.sdf", tmp / f"{scenario.stem}-{seed}-b.sdf"
    done = export(bin_, scenario.relative_to(ROOT), seed, a, "--json")
    if done.returncode != 0:
        problem(f"{tag}: export failed: {done.stderr.strip()}")
        return
    info = json.loads(done.stdout)
    start = export(bin_, scenario.stem, seed, b, "--print-start")
    if start.returncode != 0 or [float(v) for v in start.stdout.split()] != info["start"]:
        problem(f"{tag}: --print-start {start.stdout.strip()!r} != --json start {info['start']}")
    if a.read_bytes() != b.read_bytes():
        problem(f"{tag}: two exports of the same seed differ (path vs name)")
    out = sdf_load(tool, a, tag)
    if out is None:
        return
    unknown_elements(out.get("strict", []), tag, set())
    if out["version"] != "1.9" or len(out["worlds"]) != 1:
        problem(f"{tag}: SDF {out['version']}, {len(out['worlds'])} worlds (want 1.9, 1)")
        return
    w = out["worlds"][0]
    if w["name"] != info["world"]:
        problem(f"{tag}: world {w['name']!r} != export's {info['world']!r}")
    plugins = {p["filename"]: p for p in w["plugins"]}
    for f, cls in WORLD_SYSTEMS.items():
        if f not in plugins or plugins[f]["name"] != cls:
            problem(f"{tag}: world system {f} ({cls}) missing")
    sensors = plugins.get("gz-sim-sensors-system")
    if sensors and ["render_engine", "ogre2"] not in sensors["elements"]:
        problem(f"{tag}: the sensors system does not render with ogre2")
    if [p["max_step_size"] for p in w["physics"]] != [0.001]:
        problem(f"{tag}: physics {w['physics']} (want one, 1 ms step)")
    if not any(l["name"] == "sun" and l["type"] == "directional" for l in w["lights"]):
        problem(f"{tag}: no directional sun")
    layout = info["layout"]
    models = {m["name"]: m for m in w["models"]}
    want_n = 1 + len(layout["boxes"]) + len(layout["objects"])
    if len(w["models"]) != want_n or sorted(models) != sorted(info["models"]):
        problem(f"{tag}: {len(w['models'])} models, layout has {want_n}")
    for m in w["models"]:
        if not m["static"]:
            problem(f"{tag}: model {m['name']} is not static (MuJoCo's world geoms are)")
        if sum(len(l["collisions"]) for l in m["links"]) != 1 or sum(len(l["visuals"]) for l in m["links"]) != 1:
            problem(f"{tag}: model {m['name']} needs one collision and one visual")
    ground = models.get("ground_plane")
    if not ground or ground["links"][0]["collisions"][0]["geometry"]["type"] != "plane":
        problem(f"{tag}: no ground plane")
    for i, bx in enumerate(layout["boxes"]):
        name = f"{'wall' if bx['boundary'] else 'obstacle'}_{i}"
        m = models.get(name)
        if not m:
            problem(f"{tag}: layout box {i} has no model {name}")
            continue
        g = m["links"][0]["collisions"][0]["geometry"]
        if not (close(m["pose"][0], bx["x"]) and close(m["pose"][1], bx["y"])
                and g["type"] == "box" and close(g["size"][0], 2 * bx["hx"]) and close(g["size"][1], 2 * bx["hy"])
                and close(m["pose"][2], g["size"][2] / 2)):
            problem(f"{tag}: {name} pose {m['pose']} / {g} != layout {bx}")
    for i, o in enumerate(layout["objects"]):
        name = f"object_{i}_{o['colour']}_{o['shape']}"
        m = models.get(name)
        if not m:
            problem(f"{tag}: layout object {i} has no model {name}")
            continue
        geom, z = OBJECT_GEOMETRY[o["shape"]]
        link = m["links"][0]
        if not (close(m["pose"][0], o["x"]) and close(m["pose"][1], o["y"]) and close(m["pose"][2], z)):
            problem(f"{tag}: {name} pose {m['pose']} != layout ({o['x']}, {o['y']}, {z})")
        if not (geometry_ok(link["collisions"][0]["geometry"], geom) and geometry_ok(link["visuals"][0]["geometry"], geom)):
            problem(f"{tag}: {name} geometry != MuJoCo's {geom}")
        d = link["visuals"][0]["diffuse"]
        if not d or any(not close(a, b, 1e-6) for a, b in zip(d, rgb.get(o["colour"], []) + [1.0])):
            problem(f"{tag}: {name} colour {d} != Colour::rgb {rgb.get(o['colour'])}")
    return len(w["models"])


def check_bad_input(bin_, tmp):
    for what, args in (("unknown scenario", ["no-such-scenario", "--sdf", str(tmp / "x.sdf")]),
                       ("missing file", ["scenarios/missing.toml", "--sdf", str(tmp / "x.sdf")]),
                       ("unwritable file", ["01-red-ball", "--sdf", str(tmp / "no" / "dir" / "x.sdf")]),
                       ("bad seed", ["01-red-ball", "--seed", "-3", "--sdf", str(tmp / "x.sdf")]),
                       ("bad seed", ["01-red-ball", "--seed", "many", "--sdf", str(tmp / "x.sdf")])):
        done = subprocess.run([bin_, "scenario", "export", *args], capture_output=True, text=True, cwd=ROOT)
        if done.returncode == 0 or not done.stderr.strip():
            problem(f"scenario export with a {what} exited {done.returncode} with no message")


# ---------------------------------------------------------------- 3. the bridge
def check_bridge(bin_, robot_topics):
    path = ROOT / "config" / "ros_gz_bridge.yaml"
    entries = yaml.safe_load(path.read_text())
    what = "config/ros_gz_bridge.yaml"
    if not isinstance(entries, list):
        problem(f"{what}: not a YAML list of bridges")
        return
    bridged = {}
    for e in entries:
        if set(e) != BRIDGE_KEYS:
            problem(f"{what}: entry {e} needs exactly {sorted(BRIDGE_KEYS)}")
            continue
        if (e["ros_type_name"], e["gz_type_name"]) not in JAZZY_MAPPINGS:
            problem(f"{what}: Jazzy's ros_gz_bridge has no {e['ros_type_name']} <-> {e['gz_type_name']}")
        want_dir = "ROS_TO_GZ" if e["gz_topic_name"] == "cmd_vel" else "GZ_TO_ROS"
        if e["direction"] != want_dir:
            problem(f"{what}: {e['ros_topic_name']} direction {e['direction']}, want {want_dir}")
        if e["ros_topic_name"] in bridged:
            problem(f"{what}: {e['ros_topic_name']} bridged twice")
        bridged[e["ros_topic_name"]] = e
    gz_have = {norm(e["gz_topic_name"]) for e in bridged.values()}
    gz_want = {norm(t) for _, t in robot_topics.values() if t} | {"/clock"}
    for t in sorted(gz_want - gz_have):
        problem(f"{what}: gz topic {t} is published or read in Gazebo but not bridged")
    for t in sorted(gz_have - gz_want):
        problem(f"{what}: bridges gz topic {t}, which neither the robot nor the world has")
    for e in bridged.values():
        if norm(e["gz_topic_name"]) != e["ros_topic_name"]:
            problem(f"{what}: ROS {e['ros_topic_name']} <- gz {e['gz_topic_name']}: names differ")

    # The brain's side, from the binary itself when it can say.
    # As launch/gazebo.launch.py starts it: the base is Gazebo's diff drive, on sim time.
    done = subprocess.run([bin_, "ros", "topics", "--json", "--body", "ros2",
                           "--ros-args", "-r", "__node:=brainloop", "-p", "use_sim_time:=true"],
                          capture_output=True, text=True, cwd=ROOT)
    try:
        brain = json.loads(done.stdout) if done.returncode == 0 else None
    except json.JSONDecodeError:
        brain = None
    if not isinstance(brain, list):
        print("check-gazebo: notice: `brainloop ros topics --json` is not available in this binary; "
              "skipped comparing the bridge with the brain's topic list")
        return
    used = set()
    for t in brain:
        name, typ, direction = t.get("name", ""), t.get("type", ""), str(t.get("direction", "")).lower()
        name = norm(name)
        if name.startswith("/brainloop/"):
            continue  # the brain's own interface, not the robot's
        e = bridged.get(name)
        if not e:
            # What the brain reads must come from Gazebo, and its commands must reach it; its
            # other outputs (/diagnostics, battery_state) are for ROS 2 tools, not Gazebo.
            if direction == "in" or name == "/cmd_vel":
                problem(f"brain topic {name} ({typ}, {direction}) is not bridged from Gazebo")
            continue
        used.add(name)
        if typ and typ != e["ros_type_name"]:
            problem(f"brain topic {name} is {typ}, the bridge carries {e['ros_type_name']}")
        brain_out = direction in {"out", "pub", "publish", "publisher", "tx", "ros_to_gz"}
        brain_in = direction in {"in", "sub", "subscribe", "subscriber", "rx", "gz_to_ros"}
        if (brain_out and e["direction"] != "ROS_TO_GZ") or (brain_in and e["direction"] != "GZ_TO_ROS"):
            problem(f"brain topic {name} goes {direction}, the bridge {e['direction']}")
    unused = sorted(set(bridged) - used)
    print(f"check-gazebo: brain uses {len(used)} of {len(bridged)} bridged topics"
          + (f" (not used by the brain: {', '.join(unused)})" if unused else ""))


# ---------------------------------------------------------------- 4. the launch file
class _Record:
    """Stands in for a launch action or substitution: keeps its arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration(_Record):
    def perform(self, context):
        return context.launch_configurations[self.args[0]]


def run_launch(bin_, overrides):
    """generate_launch_description() and its OpaqueFunction, on stand-in launch modules."""
    class Exe(_Record):
        def perform(self, context):
            assert self.kwargs["package"] == "brainloop" == self.kwargs["executable"]
            return bin_

    share = lambda pkg: str(ROOT) if pkg == "brainloop" else f"/opt/ros/jazzy/share/{pkg}"
    names = {
        "launch": {"LaunchDescription": lambda actions: actions},
        "launch.actions": {n: type(n, (_Record,), {}) for n in
                           ("DeclareLaunchArgument", "IncludeLaunchDescription", "OpaqueFunction")},
        "launch.launch_description_sources": {"PythonLaunchDescriptionSource": _Record},
        "launch.substitutions": {"Command": _Record, "LaunchConfiguration": _LaunchConfiguration},
        "launch_ros": {}, "launch_ros.actions": {"Node": type("Node", (_Record,), {})},
        "launch_ros.parameter_descriptions": {"ParameterValue": _Record},
        "launch_ros.substitutions": {"ExecutableInPackage": Exe},
        "ament_index_python": {}, "ament_index_python.packages": {"get_package_share_directory": share},
    }
    saved = {m: sys.modules.get(m) for m in names}
    try:
        for m, attrs in names.items():
            sys.modules[m] = types.ModuleType(m)
            sys.modules[m].__dict__.update(attrs)
        code = compile((ROOT / "launch" / "gazebo.launch.py").read_text(), "gazebo.launch.py", "exec")
        scope = {"__name__": "gazebo_launch"}
        exec(code, scope)
        actions = scope["generate_launch_description"]()
        cfg = {a.args[0]: a.kwargs.get("default_value", "") for a in actions
               if type(a).__name__ == "DeclareLaunchArgument"}
        cfg.update(overrides)
        context = types.SimpleNamespace(launch_configurations=cfg)
        out = []
        for a in actions:
            if type(a).__name__ == "OpaqueFunction":
                out += a.kwargs["function"](context)
        return out
    finally:
        for m, mod in saved.items():
            if mod is None:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = mod


def check_launch(bin_, tmp):
    what = "launch/gazebo.launch.py"
    for overrides, scenario, seed in (({}, "01-red-ball", None),
                                      ({"scenario": "03-green-cylinder-obstacles", "seed": "7"},
                                       "03-green-cylinder-obstacles", 7)):
        try:
            actions = run_launch(bin_, overrides)
        except Exception as e:  # noqa: BLE001 - any failure of the launch code is the finding
            problem(f"{what} {overrides}: the launch setup failed: {type(e).__name__}: {e}")
            continue
        want = export(bin_, scenario, seed, tmp / "launch-check.sdf", "--json")
        info = json.loads(want.stdout)
        nodes = {(a.kwargs.get("package"), a.kwargs.get("executable")): a for a in actions
                 if type(a).__name__ == "Node"}
        create = nodes.get(("ros_gz_sim", "create"))
        if not create:
            problem(f"{what} {overrides}: no ros_gz_sim create")
            continue
        args = create.kwargs["arguments"]
        opt = {args[i]: args[i + 1] for i in range(0, len(args) - 1, 2)}
        got = [float(opt.get(k, "nan")) for k in ("-x", "-y", "-Y")]
        if got != info["start"] or opt.get("-world") != info["world"] or opt.get("-topic") != "robot_description":
            problem(f"{what} {overrides}: spawns at {got} in {opt.get('-world')}, "
                    f"the export says {info['start']} in {info['world']}")
        gz = [a for a in actions if type(a).__name__ == "IncludeLaunchDescription"]
        gz_args = dict(gz[0].kwargs["launch_arguments"]).get("gz_args", "") if gz else ""
        sdf = pathlib.Path(gz_args.split()[-1]) if gz_args else None
        if not (gz and gz[0].args[0].args[0].endswith("ros_gz_sim/launch/gz_sim.launch.py")
                and sdf and sdf.is_file() and sdf.read_bytes() == (tmp / "launch-check.sdf").read_bytes()):
            problem(f"{what} {overrides}: gz sim does not get the exported world ({gz_args!r})")
        if sdf and sdf.is_file():
            sdf.unlink()
        bridge = nodes.get(("ros_gz_bridge", "parameter_bridge"))
        params = bridge.kwargs.get("parameters", [{}])[0] if bridge else {}
        if params.get("config_file") != str(ROOT / "config" / "ros_gz_bridge.yaml") or params.get("use_sim_time") is not True:
            problem(f"{what} {overrides}: the bridge's parameters are {params}")
        brain = nodes.get(("brainloop", "brainloop"))
        bargs = brain.kwargs.get("arguments", []) if brain else []
        sub = [a for a in bargs if isinstance(a, str) and a.startswith("--")]
        if not brain or bargs[:2] != ["run", "--dds"] or "--body" not in sub \
                or bargs[bargs.index("--body") + 1] != "ros2" or bargs[-1] != info["instruction"] \
                or brain.kwargs.get("parameters") != [{"use_sim_time": True}]:
            problem(f"{what} {overrides}: the brain runs with {bargs}")
        rsp = nodes.get(("robot_state_publisher", "robot_state_publisher"))
        if not rsp or rsp.kwargs["parameters"][0].get("use_sim_time") is not True:
            problem(f"{what} {overrides}: robot_state_publisher is not on sim time")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="the brainloop binary")
    ap.add_argument("--sdf-check", required=True, help="the sdf_check tool")
    a = ap.parse_args()
    bin_, tool = str(pathlib.Path(a.bin).resolve()), str(pathlib.Path(a.sdf_check).resolve())
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="brainloop-gazebo-") as d:
        tmp = pathlib.Path(d)
        robot_topics = check_robot(tool, tmp)
        rgb = colours()
        scenarios = sorted((ROOT / "scenarios").glob("*.toml"))
        if not scenarios:
            problem("scenarios/: no *.toml")
        # Two at a time: libsdformat takes about 0.1 s per file, most of it reading its spec.
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            jobs = [pool.submit(check_world, tool, bin_, s, seed, tmp, rgb)
                    for s in scenarios for seed in [None] + EXTRA_SEEDS]
            worlds = sum(j.result() is not None for j in jobs)
        check_bad_input(bin_, tmp)
        check_bridge(bin_, robot_topics)
        check_launch(bin_, tmp)
    print(f"check-gazebo: robot + {worlds} worlds ({len(scenarios)} scenarios x "
          f"{1 + len(EXTRA_SEEDS)} seeds) loaded by libsdformat, bridge {len(robot_topics) + 1} topics, "
          f"launch run twice; "
          f"{len(problems)} problems in {time.monotonic() - t0:.1f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
