#!/usr/bin/env python3
"""A ROS 2 base driver on Eclipse Cyclone DDS (PyPI `cyclonedds`), for `brainloop run --dds
--body ros2`: what Gazebo's diff drive plus its bridge, or a vendor base, looks like on the wire.

It reads /cmd_vel (geometry_msgs/TwistStamped), integrates it as a differential drive (wheel
radius and separation from the arguments) and publishes /joint_states (the URDF's wheel joints),
/imu and /scan (sensor-data QoS: BEST_EFFORT, KEEP_LAST 5) at 50 Hz, while it drives the brain by
TwistStamped teleop. Phases:
  1. drive: teleop 0.3 m/s for 2 s; the base moves;
  2. silent: the base stops publishing for 1.2 s (a crashed driver) while teleop keeps coming:
     the brain must see its body go stale and command zero;
  3. back: the base publishes again; the brain drives again.
Prints `READY <json>` once matched and `RESULT <json>` at the end.
"""
import argparse
import json
import math
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
class Quaternion_(IdlStruct, typename="geometry_msgs::msg::dds_::Quaternion_"):
    x: float64
    y: float64
    z: float64
    w: float64


@dataclass
class Twist_(IdlStruct, typename="geometry_msgs::msg::dds_::Twist_"):
    linear: Vector3_
    angular: Vector3_


@dataclass
class TwistStamped_(IdlStruct, typename="geometry_msgs::msg::dds_::TwistStamped_"):
    header: Header_
    twist: Twist_


@dataclass
class JointState_(IdlStruct, typename="sensor_msgs::msg::dds_::JointState_"):
    header: Header_
    name: sequence[str]
    position: sequence[float64]
    velocity: sequence[float64]
    effort: sequence[float64]


@dataclass
class Imu_(IdlStruct, typename="sensor_msgs::msg::dds_::Imu_"):
    header: Header_
    orientation: Quaternion_
    orientation_covariance: array[float64, 9]
    angular_velocity: Vector3_
    angular_velocity_covariance: array[float64, 9]
    linear_acceleration: Vector3_
    linear_acceleration_covariance: array[float64, 9]


@dataclass
class LaserScan_(IdlStruct, typename="sensor_msgs::msg::dds_::LaserScan_"):
    header: Header_
    angle_min: float32
    angle_max: float32
    angle_increment: float32
    time_increment: float32
    scan_time: float32
    range_min: float32
    range_max: float32
    ranges: sequence[float32]
    intensities: sequence[float32]


@dataclass
class Image_(IdlStruct, typename="sensor_msgs::msg::dds_::Image_"):
    header: Header_
    height: uint32
    width: uint32
    encoding: str
    is_bigendian: uint8
    step: uint32
    data: sequence[uint8]


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


RELIABLE = Qos(Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=100)),
               Policy.Durability.Volatile, Policy.History.KeepLast(depth=10))
SENSOR = Qos(Policy.Reliability.BestEffort, Policy.Durability.Volatile,
             Policy.History.KeepLast(depth=5))


def stamp() -> Time_:
    ns = time.time_ns()
    return Time_(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domain", type=int, default=0)
    ap.add_argument("--wheel-radius", type=float, required=True)
    ap.add_argument("--wheel-separation", type=float, required=True)
    ap.add_argument("--match-timeout", type=float, default=20.0)
    args = ap.parse_args()
    dp = DomainParticipant(args.domain)
    cmd_r = DataReader(dp, Topic(dp, "rt/cmd_vel", TwistStamped_), qos=RELIABLE)
    teleop = DataWriter(dp, Topic(dp, "rt/brainloop/teleop/cmd_vel", TwistStamped_), qos=RELIABLE)
    js_w = DataWriter(dp, Topic(dp, "rt/joint_states", JointState_), qos=SENSOR)
    imu_w = DataWriter(dp, Topic(dp, "rt/imu", Imu_), qos=SENSOR)
    scan_w = DataWriter(dp, Topic(dp, "rt/scan", LaserScan_), qos=SENSOR)
    cam_w = DataWriter(dp, Topic(dp, "rt/camera/image_raw", Image_), qos=SENSOR)
    diag_r = DataReader(dp, Topic(dp, "rt/diagnostics", DiagnosticArray_), qos=RELIABLE)
    start = time.monotonic()

    def matched():
        return {"cmd_vel": cmd_r.get_subscription_matched_status().current_count,
                "teleop": teleop.get_publication_matched_status().current_count,
                "joint_states": js_w.get_publication_matched_status().current_count,
                "imu": imu_w.get_publication_matched_status().current_count,
                "scan": scan_w.get_publication_matched_status().current_count,
                "camera": cam_w.get_publication_matched_status().current_count,
                "diagnostics": diag_r.get_subscription_matched_status().current_count}

    m = matched()
    while min(m.values()) < 1 and time.monotonic() < start + args.match_timeout:
        time.sleep(0.02)
        m = matched()
    print("READY " + json.dumps({"matched": m}), flush=True)

    r, sep = args.wheel_radius, args.wheel_separation
    wheel = [0.0, 0.0]
    cmd = {"v": 0.0, "w": 0.0}
    seen = []  # (phase, linear.x)
    travelled = {"drive": 0.0, "silent": 0.0, "back": 0.0}
    phase = ["drive"]
    vision = {}  # phase -> last level of "region vision" on /diagnostics (0 OK, 3 stale)
    frame = [0]

    def step(dt: float, publish: bool) -> None:
        for s in cmd_r.take(N=64):
            if not isinstance(s, InvalidSample):
                cmd["v"], cmd["w"] = s.twist.linear.x, s.twist.angular.z
                seen.append((phase[0], s.twist.linear.x))
        wl = (cmd["v"] - cmd["w"] * sep / 2) / r
        wr = (cmd["v"] + cmd["w"] * sep / 2) / r
        wheel[0] += wl * dt
        wheel[1] += wr * dt
        travelled[phase[0]] += abs(cmd["v"]) * dt
        for d in diag_r.take(N=8):
            if not isinstance(d, InvalidSample):
                for st in d.status:
                    if st.name.endswith("region vision"):
                        vision[phase[0]] = int(st.level)
        if not publish:
            return
        frame[0] += 1
        if frame[0] % 5 == 0:  # 10 Hz, a 64 x 48 rgb8 frame of a red ball on grey
            w, hh = 64, 48
            px = bytearray()
            for y in range(hh):
                for x in range(w):
                    red = (x - 32) ** 2 + (y - 24) ** 2 < 100
                    px += bytes((200, 30, 30) if red else (120, 120, 120))
            cam_w.write(Image_(header=Header_(stamp=stamp(), frame_id="camera_optical_frame"),
                               height=hh, width=w, encoding="rgb8", is_bigendian=0, step=3 * w,
                               data=list(px)))
        h = Header_(stamp=stamp(), frame_id="")
        js_w.write(JointState_(header=h, name=["left_wheel_joint", "right_wheel_joint"],
                               position=list(wheel), velocity=[wl, wr], effort=[]))
        z9 = [0.0] * 9
        imu_w.write(Imu_(header=Header_(stamp=h.stamp, frame_id="imu_link"),
                         orientation=Quaternion_(0.0, 0.0, 0.0, 1.0), orientation_covariance=z9,
                         angular_velocity=Vector3_(0.0, 0.0, cmd["w"]),
                         angular_velocity_covariance=z9,
                         linear_acceleration=Vector3_(0.0, 0.0, 9.81),
                         linear_acceleration_covariance=z9))
        n = 61
        scan_w.write(LaserScan_(header=Header_(stamp=h.stamp, frame_id="range_link"),
                                angle_min=-1.2, angle_max=1.2, angle_increment=2.4 / (n - 1),
                                time_increment=0.0, scan_time=0.02, range_min=0.05, range_max=8.0,
                                ranges=[1.5] * n, intensities=[]))

    def run(p: str, seconds: float, publish: bool) -> None:
        phase[0] = p
        end = time.monotonic() + seconds
        nxt = time.monotonic()
        last = time.monotonic()
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= nxt:
                teleop.write(TwistStamped_(header=Header_(stamp=stamp(), frame_id="base_link"),
                                           twist=Twist_(linear=Vector3_(0.3, 0.0, 0.0),
                                                        angular=Vector3_(0.0, 0.0, 0.0))))
                step(now - last, publish)
                last = now
                nxt += 0.02
            time.sleep(0.002)

    run("drive", 2.0, True)
    run("silent", 1.2, False)
    run("back", 2.0, True)

    def stats(p, skip):
        v = [x for q, x in seen if q == p][skip:]
        return {"count": len(v), "max_v": max(v, default=0.0), "last_v": v[-1] if v else None}

    print("RESULT " + json.dumps({
        "matched": m,
        # the first ~0.4 s of "silent": the body's stale timeout and a command or two in flight
        "drive": stats("drive", 25), "silent": stats("silent", 20), "back": stats("back", 40),
        "travelled": travelled, "vision_level": vision}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
