#!/usr/bin/env python3
"""Write ROS 2 CDR test vectors with an independent encoder (PyPI `rosbags`).

brainloop's own CDR encoder (src/bus/cdr.rs) must produce exactly these bytes; the Rust test
`cdr_matches_rosbags` reads the file, and `make check-ros2` regenerates it and diffs.
Usage: gen_cdr_fixtures.py OUT.json
"""
import json
import sys

from rosbags.typesys import Stores, get_typestore

ts = get_typestore(Stores.ROS2_JAZZY)
T = ts.types
cases = []


def add(name, typename, msg, fields):
    cases.append({"name": name, "type": typename, "fields": fields,
                  "hex": ts.serialize_cdr(msg, typename).hex()})


V = T["geometry_msgs/msg/Vector3"]
for i, (lx, az) in enumerate([(0.0, 0.0), (0.25, -1.5), (-0.5, 2.0), (1e-9, 3.14159)]):
    add(f"twist{i}", "geometry_msgs/msg/Twist",
        T["geometry_msgs/msg/Twist"](linear=V(x=lx, y=0.0, z=0.0), angular=V(x=0.0, y=0.0, z=az)),
        {"linear": [lx, 0.0, 0.0], "angular": [0.0, 0.0, az]})
for i, s in enumerate(["", "go to the red ball", "find the blue cube, then stop", "héllo ünïcode"]):
    add(f"string{i}", "std_msgs/msg/String", T["std_msgs/msg/String"](data=s), {"data": s})
for b in (True, False):
    add(f"bool_{b}", "std_msgs/msg/Bool", T["std_msgs/msg/Bool"](data=b), {"data": b})
for i, f in enumerate([0.0, 0.5, 0.123456]):
    add(f"float32_{i}", "std_msgs/msg/Float32", T["std_msgs/msg/Float32"](data=f), {"data": f})

with open(sys.argv[1], "w") as fh:
    json.dump({"generator": "rosbags 0.11.9 (ROS2_JAZZY typestore)", "cases": cases}, fh, indent=1,
              ensure_ascii=False)
    fh.write("\n")
