#!/usr/bin/env python3
"""A ROS 2 Jazzy user, on Eclipse Cyclone DDS (PyPI `cyclonedds`), against a running brainloop.

It uses only the standard ROS 2 message types (as IDL, the way rmw_cyclonedds puts them on the
wire: `rt/<topic>`, `<pkg>::msg::dds_::<Type>_`, XCDR1) against `brainloop run --dds`, and
checks the Jazzy contract the way a user on a real robot would see it:

  1. drive: TwistStamped teleop on /brainloop/teleop/cmd_vel (stamped now, frame base_link) at
     20 Hz; /cmd_vel (TwistStamped) follows it and /odom moves;
  2. bad input: a non-finite twist, a wrong frame, a stale, a future and a zero stamp; none of
     them may move the robot (/cmd_vel stays zero once the last good command has lapsed) and
     each is counted on /diagnostics;
  3. e-stop: true on /brainloop/estop while good teleop keeps coming: /cmd_vel goes to zero and
     stays there; a `false` afterwards clears nothing;
  4. stall: it prints `STALL` and the test that drives it freezes the brain (SIGSTOP) and tells
     it `RESUMED <t_stop> <t_cont> <token>` (CLOCK_MONOTONIC seconds, and a fresh e-stop reset
     signed with the operator key); it reports what /cmd_vel did in that window;
  5. reset: it publishes the token on /brainloop/estop_reset and drives again.

Meanwhile it reads /odom, /tf, /joint_states, /diagnostics, /battery_state and
/brainloop/drowsiness, then prints `RESULT <json>`. The checks themselves are the test's
(tests/dds_interop.rs); this script only observes and reports.
"""
import argparse
import json
import math
import os
import select
import sys
import time
from dataclasses import dataclass

from cyclonedds.domain import DomainParticipant
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import array, float32, float64, int32, sequence, uint8, uint32
from cyclonedds.internal import InvalidSample
from cyclonedds.pub import DataWriter
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration


@dataclass
class Time_(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: int32
    nanosec: uint32


@dataclass
class Header_(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Time_
    frame_id: str


@dataclass
class Vector3_(IdlStruct, typename="geometry_msgs::msg::dds_::Vector3_"):
    x: float64
    y: float64
    z: float64


@dataclass
class Twist_(IdlStruct, typename="geometry_msgs::msg::dds_::Twist_"):
    linear: Vector3_
    angular: Vector3_


@dataclass
class TwistStamped_(IdlStruct, typename="geometry_msgs::msg::dds_::TwistStamped_"):
    header: Header_
    twist: Twist_


@dataclass
class Point_(IdlStruct, typename="geometry_msgs::msg::dds_::Point_"):
    x: float64
    y: float64
    z: float64


@dataclass
class Quaternion_(IdlStruct, typename="geometry_msgs::msg::dds_::Quaternion_"):
    x: float64
    y: float64
    z: float64
    w: float64


@dataclass
class Pose_(IdlStruct, typename="geometry_msgs::msg::dds_::Pose_"):
    position: Point_
    orientation: Quaternion_


@dataclass
class PoseWithCovariance_(IdlStruct, typename="geometry_msgs::msg::dds_::PoseWithCovariance_"):
    pose: Pose_
    covariance: array[float64, 36]


@dataclass
class TwistWithCovariance_(IdlStruct,
                           typename="geometry_msgs::msg::dds_::TwistWithCovariance_"):
    twist: Twist_
    covariance: array[float64, 36]


@dataclass
class Odometry_(IdlStruct, typename="nav_msgs::msg::dds_::Odometry_"):
    header: Header_
    child_frame_id: str
    pose: PoseWithCovariance_
    twist: TwistWithCovariance_


@dataclass
class Transform_(IdlStruct, typename="geometry_msgs::msg::dds_::Transform_"):
    translation: Vector3_
    rotation: Quaternion_


@dataclass
class TransformStamped_(IdlStruct, typename="geometry_msgs::msg::dds_::TransformStamped_"):
    header: Header_
    child_frame_id: str
    transform: Transform_


@dataclass
class TFMessage_(IdlStruct, typename="tf2_msgs::msg::dds_::TFMessage_"):
    transforms: sequence[TransformStamped_]


@dataclass
class JointState_(IdlStruct, typename="sensor_msgs::msg::dds_::JointState_"):
    header: Header_
    name: sequence[str]
    position: sequence[float64]
    velocity: sequence[float64]
    effort: sequence[float64]


@dataclass
class KeyValue_(IdlStruct, typename="diagnostic_msgs::msg::dds_::KeyValue_"):
    key: str
    value: str


@dataclass
class DiagnosticStatus_(IdlStruct, typename="diagnostic_msgs::msg::dds_::DiagnosticStatus_"):
    level: uint8
    name: str
    message: str
    hardware_id: str
    values: sequence[KeyValue_]


@dataclass
class DiagnosticArray_(IdlStruct, typename="diagnostic_msgs::msg::dds_::DiagnosticArray_"):
    header: Header_
    status: sequence[DiagnosticStatus_]


@dataclass
class BatteryState_(IdlStruct, typename="sensor_msgs::msg::dds_::BatteryState_"):
    header: Header_
    voltage: float32
    temperature: float32
    current: float32
    charge: float32
    capacity: float32
    design_capacity: float32
    percentage: float32
    power_supply_status: uint8
    power_supply_health: uint8
    power_supply_technology: uint8
    present: bool
    cell_voltage: sequence[float32]
    cell_temperature: sequence[float32]
    location: str
    serial_number: str


@dataclass
class Bool_(IdlStruct, typename="std_msgs::msg::dds_::Bool_"):
    data: bool


@dataclass
class String_(IdlStruct, typename="std_msgs::msg::dds_::String_"):
    data: str


@dataclass
class Float32_(IdlStruct, typename="std_msgs::msg::dds_::Float32_"):
    data: float32


# rclcpp's default profile (and the bridge's for these topics): RELIABLE, VOLATILE, KEEP_LAST 10.
ROS_QOS = Qos(
    Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=100)),
    Policy.Durability.Volatile,
    Policy.History.KeepLast(depth=10),
)


def stamp(offset_s: float = 0.0) -> Time_:
    ns = time.time_ns() + int(offset_s * 1e9)
    return Time_(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def twist(v: float, w: float, frame: str = "base_link", offset_s: float = 0.0,
          zero_stamp: bool = False) -> TwistStamped_:
    t = Time_(sec=0, nanosec=0) if zero_stamp else stamp(offset_s)
    return TwistStamped_(header=Header_(stamp=t, frame_id=frame),
                         twist=Twist_(linear=Vector3_(v, 0.0, 0.0), angular=Vector3_(0.0, 0.0, w)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domain", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", "0")))
    ap.add_argument("--node", default="/brainloop", help="the brain's node, /ns/name")
    ap.add_argument("--match-timeout", type=float, default=20.0)
    args = ap.parse_args()
    start = time.monotonic()
    node = args.node.rstrip("/")

    dp = DomainParticipant(args.domain)

    def reader(name, t):
        return DataReader(dp, Topic(dp, "rt" + name, t), qos=ROS_QOS)

    def writer(name, t):
        return DataWriter(dp, Topic(dp, "rt" + name, t), qos=ROS_QOS)

    readers = {
        "cmd_vel": reader("/cmd_vel", TwistStamped_),
        "odom": reader("/odom", Odometry_),
        "tf": reader("/tf", TFMessage_),
        "joint_states": reader("/joint_states", JointState_),
        "diagnostics": reader("/diagnostics", DiagnosticArray_),
        "battery_state": reader("/battery_state", BatteryState_),
        "drowsiness": reader(node + "/drowsiness", Float32_),
    }
    teleop = writer(node + "/teleop/cmd_vel", TwistStamped_)
    estop = writer(node + "/estop", Bool_)
    reset = writer(node + "/estop_reset", String_)

    phase = ["wait"]
    cmd = []  # (monotonic s, phase, linear.x, angular.z, frame)
    odom = []  # (monotonic s, x, y, frame, child)
    tf_children = set()
    joint_names = set()
    joints_n = [0]
    diag = {"count": 0, "names": set(), "bridge": {}}
    battery = {"count": 0, "voltage": None}
    drowsy = []

    def read_all() -> None:
        now = time.monotonic()
        for s in readers["cmd_vel"].take(N=64):
            if not isinstance(s, InvalidSample):
                cmd.append((now, phase[0], s.twist.linear.x, s.twist.angular.z, s.header.frame_id))
        for s in readers["odom"].take(N=64):
            if not isinstance(s, InvalidSample):
                p = s.pose.pose.position
                odom.append((now, p.x, p.y, s.header.frame_id, s.child_frame_id))
        for s in readers["tf"].take(N=64):
            if not isinstance(s, InvalidSample):
                for t in s.transforms:
                    tf_children.add(t.header.frame_id + "->" + t.child_frame_id)
        for s in readers["joint_states"].take(N=64):
            if not isinstance(s, InvalidSample):
                joints_n[0] += 1
                joint_names.update(s.name)
        for s in readers["diagnostics"].take(N=16):
            if not isinstance(s, InvalidSample):
                diag["count"] += 1
                for st in s.status:
                    diag["names"].add(st.name)
                    if st.name.endswith("ros bridge"):
                        diag["bridge"] = {kv.key: kv.value for kv in st.values}
        for s in readers["battery_state"].take(N=16):
            if not isinstance(s, InvalidSample):
                battery["count"] += 1
                battery["voltage"] = float(s.voltage)
        for s in readers["drowsiness"].take(N=64):
            if not isinstance(s, InvalidSample):
                drowsy.append(float(s.data))

    def run_for(seconds: float, send=None, rate: float = 20.0) -> None:
        end = time.monotonic() + seconds
        nxt = time.monotonic()
        while time.monotonic() < end:
            if send is not None and time.monotonic() >= nxt:
                send()
                nxt += 1.0 / rate
            read_all()
            time.sleep(0.002)

    def matched() -> dict:
        m = {k: r.get_subscription_matched_status().current_count for k, r in readers.items()}
        m["teleop"] = teleop.get_publication_matched_status().current_count
        m["estop"] = estop.get_publication_matched_status().current_count
        m["estop_reset"] = reset.get_publication_matched_status().current_count
        return m

    m = matched()
    while min(m.values()) < 1 and time.monotonic() < start + args.match_timeout:
        time.sleep(0.02)
        m = matched()
    print("READY " + json.dumps({"matched": m, "after_s": round(time.monotonic() - start, 3)}),
          flush=True)
    marks = {}

    # 1. drive
    phase[0] = "drive"
    marks["drive"] = time.monotonic()
    run_for(2.0, lambda: teleop.write(twist(0.3, 0.0)))
    # 2. bad input (after the good command's 500 ms timeout has passed, nothing may move)
    phase[0] = "lapse"
    run_for(0.8)
    phase[0] = "bad"
    marks["bad"] = time.monotonic()
    bad = [twist(float("nan"), 0.0), twist(0.3, float("inf")), twist(0.3, 0.0, frame="odom"),
           twist(0.3, 0.0, offset_s=-5.0), twist(0.3, 0.0, offset_s=5.0),
           twist(0.3, 0.0, zero_stamp=True)]
    k = [0]

    def send_bad():
        teleop.write(bad[k[0] % len(bad)])
        k[0] += 1
    run_for(1.5, send_bad, rate=40.0)
    # 3. e-stop, while good teleop keeps coming; then a `false` that must clear nothing
    phase[0] = "estop"
    estop.write(Bool_(data=True))
    marks["estop"] = time.monotonic()
    run_for(1.0, lambda: teleop.write(twist(0.3, 0.0)))
    estop.write(Bool_(data=False))
    phase[0] = "estop_false"
    run_for(1.0, lambda: teleop.write(twist(0.3, 0.0)))
    # 4. stall: the test freezes the brain and says when
    phase[0] = "stall"
    print("STALL", flush=True)
    stall, token = None, ""
    end = time.monotonic() + 20.0
    while stall is None and time.monotonic() < end:
        read_all()
        r, _, _ = select.select([sys.stdin], [], [], 0.005)
        if r:
            line = sys.stdin.readline().split()
            if line and line[0] == "RESUMED":
                stall = (float(line[1]), float(line[2]))
                token = line[3] if len(line) > 3 else ""
    phase[0] = "after"
    run_for(0.3)
    # 5. reset with the signed token, then drive again
    reset.write(String_(data=token))
    phase[0] = "reset"
    marks["reset"] = time.monotonic()
    run_for(1.5, lambda: teleop.write(twist(0.3, 0.0)))

    def in_phase(p, after=0.0):
        t0 = marks.get(p, 0.0) + after
        return [c for c in cmd if c[1] == p and c[0] >= t0]

    drive_cmd = in_phase("drive", 0.5)
    bad_cmd = in_phase("bad")
    estop_cmd = in_phase("estop", 0.3) + in_phase("estop_false")
    stalled = [c for c in cmd if stall and stall[0] + 0.05 <= c[0] <= stall[1]]
    drive_odom = [o for o in odom if marks["drive"] <= o[0] <= marks["bad"]]
    result = {
        "matched": m,
        "cmd_vel": {
            "count": len(cmd),
            "phases": {p: sum(1 for c in cmd if c[1] == p) for p in sorted({c[1] for c in cmd})},
            "frames": sorted({c[4] for c in cmd}),
            "drive": {"count": len(drive_cmd), "max_v": max((c[2] for c in drive_cmd), default=0.0)},
            "bad": {"count": len(bad_cmd), "max_abs_v": max((abs(c[2]) for c in bad_cmd), default=0.0),
                    "finite": all(math.isfinite(c[2]) and math.isfinite(c[3]) for c in bad_cmd)},
            "estop": {"count": len(estop_cmd),
                      "max_abs_v": max((abs(c[2]) for c in estop_cmd), default=0.0)},
            "stall": {"window_s": (stall[1] - stall[0]) if stall else None, "count": len(stalled)},
            "after": len(in_phase("after")),
            "reset": {"count": len(in_phase("reset", 0.5)),
                      "max_v": max((c[2] for c in in_phase("reset", 0.5)), default=0.0)},
        },
        "odom": {
            "count": len(odom),
            "drive_dx": (drive_odom[-1][1] - drive_odom[0][1]) if len(drive_odom) > 1 else 0.0,
            "frames": sorted({o[3] + "->" + o[4] for o in odom}),
        },
        "tf": sorted(tf_children),
        "joint_states": {"count": joints_n[0], "names": sorted(joint_names)},
        "diagnostics": {"count": diag["count"], "names": sorted(diag["names"]),
                        "bridge": diag["bridge"]},
        "battery_state": battery,
        "drowsiness": {"count": len(drowsy), "max": max(drowsy, default=None)},
    }
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
