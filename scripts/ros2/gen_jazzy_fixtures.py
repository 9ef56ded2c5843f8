#!/usr/bin/env python3
"""CDR test vectors of the Jazzy contract's standard messages, from an independent encoder
(PyPI `rosbags`, ROS2_JAZZY typestore), with their RIHS01 type hashes.

The DDS bridge's message layouts (src/bus/ros_map.rs, serialised by RustDDS) must give exactly
these bytes: `bus::dds::tests::jazzy_messages_match_rosbags` builds the same messages from the
same literal values and compares. `make check-ros2` regenerates this file and diffs.
Usage: gen_jazzy_fixtures.py OUT.json
"""
import json
import sys

from rosbags.typesys import Stores, get_typestore

ts = get_typestore(Stores.ROS2_JAZZY)
T = ts.types
nan = float("nan")
cases = []


def add(name, typename, msg):
    h = ts.hash_rihs01(typename) if hasattr(ts, "hash_rihs01") else ""
    cases.append({"name": name, "type": typename, "rihs01": h,
                  "hex": ts.serialize_cdr(msg, typename).hex()})


Time = T["builtin_interfaces/msg/Time"]
Header = T["std_msgs/msg/Header"]
V3 = T["geometry_msgs/msg/Vector3"]
Tw = T["geometry_msgs/msg/Twist"]
Q = T["geometry_msgs/msg/Quaternion"]
P = T["geometry_msgs/msg/Point"]
import numpy as np  # rosbags' arrays are numpy

hdr = Header(stamp=Time(sec=12, nanosec=345), frame_id="base_footprint")
tw = Tw(linear=V3(x=0.25, y=0.0, z=0.0), angular=V3(x=0.0, y=0.0, z=-1.5))
add("twist_stamped", "geometry_msgs/msg/TwistStamped",
    T["geometry_msgs/msg/TwistStamped"](header=hdr, twist=tw))
cov = np.array([float(i) / 8.0 for i in range(36)], dtype=np.float64)
add("odometry", "nav_msgs/msg/Odometry", T["nav_msgs/msg/Odometry"](
    header=Header(stamp=Time(sec=3, nanosec=4), frame_id="odom"),
    child_frame_id="base_footprint",
    pose=T["geometry_msgs/msg/PoseWithCovariance"](
        pose=T["geometry_msgs/msg/Pose"](position=P(x=1.0, y=2.0, z=0.0),
                                         orientation=Q(x=0.0, y=0.0, z=0.5, w=0.75)),
        covariance=cov),
    twist=T["geometry_msgs/msg/TwistWithCovariance"](twist=tw, covariance=cov[::-1].copy())))
TS = T["geometry_msgs/msg/TransformStamped"]
Tr = T["geometry_msgs/msg/Transform"]
add("tf", "tf2_msgs/msg/TFMessage", T["tf2_msgs/msg/TFMessage"](transforms=[
    TS(header=Header(stamp=Time(sec=1, nanosec=2), frame_id="odom"), child_frame_id="base_footprint",
       transform=Tr(translation=V3(x=1.0, y=-2.0, z=0.0), rotation=Q(x=0.0, y=0.0, z=0.25, w=0.5))),
    TS(header=Header(stamp=Time(sec=1, nanosec=3), frame_id="map"), child_frame_id="odom",
       transform=Tr(translation=V3(x=0.0, y=0.0, z=0.0), rotation=Q(x=0.0, y=0.0, z=0.0, w=1.0))),
]))
add("joint_state", "sensor_msgs/msg/JointState", T["sensor_msgs/msg/JointState"](
    header=Header(stamp=Time(sec=5, nanosec=6), frame_id=""),
    name=["left_wheel_joint", "right_wheel_joint"],
    position=np.array([1.5, -0.5], dtype=np.float64),
    velocity=np.array([3.0, 4.0], dtype=np.float64),
    effort=np.array([], dtype=np.float64)))
KV = T["diagnostic_msgs/msg/KeyValue"]
DS = T["diagnostic_msgs/msg/DiagnosticStatus"]
add("diagnostics", "diagnostic_msgs/msg/DiagnosticArray", T["diagnostic_msgs/msg/DiagnosticArray"](
    header=Header(stamp=Time(sec=7, nanosec=8), frame_id=""),
    status=[DS(level=0, name="brainloop: integrator", message="search",
               hardware_id="brainloop", values=[KV(key="rate_hz", value="100.0"),
                                                KV(key="missed_ticks", value="3")]),
            DS(level=2, name="brainloop: serial link", message="disconnected",
               hardware_id="brainloop", values=[])]))
add("battery", "sensor_msgs/msg/BatteryState", T["sensor_msgs/msg/BatteryState"](
    header=Header(stamp=Time(sec=9, nanosec=10), frame_id="base_footprint"),
    voltage=11.5, temperature=nan, current=nan, charge=nan, capacity=nan, design_capacity=nan,
    percentage=0.75, power_supply_status=0, power_supply_health=0, power_supply_technology=3,
    present=True, cell_voltage=np.array([], dtype=np.float32),
    cell_temperature=np.array([], dtype=np.float32), location="base", serial_number=""))
add("clock", "rosgraph_msgs/msg/Clock", T["rosgraph_msgs/msg/Clock"](clock=Time(sec=42, nanosec=7)))

with open(sys.argv[1], "w") as fh:
    json.dump({"generator": "rosbags (ROS2_JAZZY typestore)", "cases": cases}, fh, indent=1)
    fh.write("\n")
