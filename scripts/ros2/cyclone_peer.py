#!/usr/bin/env python3
"""A ROS 2 peer on Eclipse Cyclone DDS (PyPI `cyclonedds`), for checking brainloop's DDS bridge.

It sees the graph exactly as a node on rmw_cyclonedds does: DDS topics `rt/<ros topic>`, IDL
types `<pkg>::msg::dds_::<Type>_`, XCDR1 payloads, RELIABLE / VOLATILE / KEEP_LAST 10. No ROS 2
installation is involved, and it never touches Cyclone's built-in discovery topics (reading them
segfaults cyclonedds-python 11.0.1 in take()).

Protocol with the test that drives it (tests/dds_interop.rs), line based:
  * it creates its readers and writers, waits (bounded) until each is matched with the bridge's
    endpoints, then prints `READY <json>`;
  * it publishes --instructions strings `instruction <i>` on /brainloop/instruction, --teleop
    twists on /brainloop/teleop/cmd_vel (linear.x = (i+1)/1000, angular.z = -2 linear.x), then
    e-stop true, false on /brainloop/estop, at --rate Hz, while reading /cmd_vel and
    /brainloop/drowsiness;
  * when `DONE` arrives on stdin (or --timeout passes) it reads for --linger seconds more and
    prints `RESULT <json>` with what it received, including the ROS 2 nodes announced on
    `ros_discovery_info` (what `ros2 node list` shows) with their reader / writer counts.
"""
import argparse
import importlib.metadata
import json
import math
import os
import select
import sys
import time
from dataclasses import dataclass

from cyclonedds.internal import InvalidSample
from cyclonedds.domain import DomainParticipant
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import array, float32, float64, int32, sequence, uint8, uint32
from cyclonedds.pub import DataWriter
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration


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
class Time_(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: int32
    nanosec: uint32


@dataclass
class Header_(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Time_
    frame_id: str


@dataclass
class TwistStamped_(IdlStruct, typename="geometry_msgs::msg::dds_::TwistStamped_"):
    header: Header_
    twist: Twist_


def now_stamp() -> Time_:
    ns = time.time_ns()
    return Time_(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


@dataclass
class String_(IdlStruct, typename="std_msgs::msg::dds_::String_"):
    data: str


@dataclass
class Bool_(IdlStruct, typename="std_msgs::msg::dds_::Bool_"):
    data: bool


@dataclass
class Float32_(IdlStruct, typename="std_msgs::msg::dds_::Float32_"):
    data: float32


# ROS 2 graph introspection (what `ros2 node list` reads): rmw_dds_common, 16-byte GIDs from Iron on.
@dataclass
class Gid_(IdlStruct, typename="rmw_dds_common::msg::dds_::Gid_"):
    data: array[uint8, 16]


@dataclass
class NodeEntitiesInfo_(IdlStruct, typename="rmw_dds_common::msg::dds_::NodeEntitiesInfo_"):
    node_namespace: str
    node_name: str
    reader_gid_seq: sequence[Gid_]
    writer_gid_seq: sequence[Gid_]


@dataclass
class ParticipantEntitiesInfo_(IdlStruct,
                               typename="rmw_dds_common::msg::dds_::ParticipantEntitiesInfo_"):
    gid: Gid_
    node_entities_info_seq: sequence[NodeEntitiesInfo_]


DISCOVERY_QOS = Qos(
    Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=100)),
    Policy.Durability.TransientLocal,
    Policy.History.KeepLast(depth=1),
)

# rclcpp's default publisher/subscription profile (and the bridge's): RELIABLE, VOLATILE,
# KEEP_LAST 10.
ROS_QOS = Qos(
    Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=100)),
    Policy.Durability.Volatile,
    Policy.History.KeepLast(depth=10),
)


def rt(ros_topic: str) -> str:
    """ROS 2 topic name -> DDS topic name (rmw prefix `rt`)."""
    return "rt" + ros_topic


def stdin_says_done() -> bool:
    ready, _, _ = select.select([sys.stdin], [], [], 0)
    if not ready:
        return False
    line = sys.stdin.readline()
    return line == "" or line.strip() == "DONE"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domain", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", "0")))
    ap.add_argument("--instructions", type=int, default=100)
    ap.add_argument("--teleop", type=int, default=20)
    ap.add_argument("--rate", type=float, default=100.0, help="publish rate, Hz")
    ap.add_argument("--match-timeout", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=30.0, help="overall bound, s")
    ap.add_argument("--linger", type=float, default=1.0)
    ap.add_argument("--stamped", action="store_true",
                    help="TwistStamped on /cmd_vel and teleop (the Jazzy contract)")
    args = ap.parse_args()
    start = time.monotonic()
    deadline = start + args.timeout

    dp = DomainParticipant(args.domain)
    twist_t = TwistStamped_ if args.stamped else Twist_
    cmd_reader = DataReader(dp, Topic(dp, rt("/cmd_vel"), twist_t), qos=ROS_QOS)
    drowsy_reader = DataReader(dp, Topic(dp, rt("/brainloop/drowsiness"), Float32_), qos=ROS_QOS)
    graph_reader = DataReader(dp, Topic(dp, "ros_discovery_info", ParticipantEntitiesInfo_),
                              qos=DISCOVERY_QOS)
    instr_writer = DataWriter(dp, Topic(dp, rt("/brainloop/instruction"), String_), qos=ROS_QOS)
    teleop_writer = DataWriter(dp, Topic(dp, rt("/brainloop/teleop/cmd_vel"), twist_t),
                               qos=ROS_QOS)
    estop_writer = DataWriter(dp, Topic(dp, rt("/brainloop/estop"), Bool_), qos=ROS_QOS)

    cmd = {"count": 0, "seqs": [], "bad": 0, "zero": 0}
    drowsy = {"count": 0, "values": []}
    nodes = {}  # "/ns/name" -> {"readers": n, "writers": n}, latest announcement wins

    def read_all() -> None:
        for s in cmd_reader.take(N=64):
            if isinstance(s, InvalidSample):  # the writer went away (dispose/unregister)
                continue
            t = s.twist if args.stamped else s
            if args.stamped and s.header.frame_id != "base_footprint":
                cmd["bad"] += 1
                continue
            lin, ang = t.linear, t.angular
            if lin.x == 0.0 and ang.z == 0.0 and lin.y == 0.0 and ang.x == 0.0:
                cmd["zero"] += 1
                continue
            k = round(lin.x * 1000.0)
            ok = (k >= 1 and math.isclose(lin.x, k / 1000.0, abs_tol=1e-12)
                  and math.isclose(ang.z, -2.0 * lin.x, abs_tol=1e-12)
                  and lin.y == lin.z == ang.x == ang.y == 0.0)
            if ok:
                cmd["count"] += 1
                cmd["seqs"].append(k - 1)
            else:
                cmd["bad"] += 1
        for s in drowsy_reader.take(N=64):
            if isinstance(s, InvalidSample):
                continue
            drowsy["count"] += 1
            drowsy["values"].append(round(float(s.data), 6))
        for s in graph_reader.take(N=16):
            if isinstance(s, InvalidSample):
                continue
            for n in s.node_entities_info_seq:
                name = n.node_namespace.rstrip("/") + "/" + n.node_name
                nodes[name] = {"readers": len(n.reader_gid_seq), "writers": len(n.writer_gid_seq)}

    # Wait (bounded) until every endpoint is matched with the bridge's.
    def matched() -> dict:
        return {
            "cmd_vel": cmd_reader.get_subscription_matched_status().current_count,
            "drowsiness": drowsy_reader.get_subscription_matched_status().current_count,
            "instruction": instr_writer.get_publication_matched_status().current_count,
            "teleop": teleop_writer.get_publication_matched_status().current_count,
            "estop": estop_writer.get_publication_matched_status().current_count,
        }

    m = matched()
    while min(m.values()) < 1 and time.monotonic() < start + args.match_timeout:
        time.sleep(0.01)
        m = matched()
    print("READY " + json.dumps({"matched": m, "after_s": round(time.monotonic() - start, 3)}),
          flush=True)

    period = 1.0 / args.rate
    plan = ([("instruction", i) for i in range(args.instructions)]
            + [("teleop", i) for i in range(args.teleop)]
            + [("estop", True), ("estop", False)])
    sent = {"instruction": 0, "teleop": 0, "estop": 0}
    next_t = time.monotonic()
    done = False
    for kind, v in plan:
        while time.monotonic() < next_t:
            read_all()
            time.sleep(0.001)
        next_t += period
        if kind == "instruction":
            instr_writer.write(String_(data=f"instruction {v}"))
        elif kind == "teleop":
            x = (v + 1) / 1000.0
            tw = Twist_(linear=Vector3_(x, 0.0, 0.0), angular=Vector3_(0.0, 0.0, -2.0 * x))
            if args.stamped:
                tw = TwistStamped_(header=Header_(stamp=now_stamp(), frame_id=""), twist=tw)
            teleop_writer.write(tw)
        else:
            estop_writer.write(Bool_(data=v))
        sent[kind] += 1
        read_all()
        if time.monotonic() > deadline:
            break

    while not done and time.monotonic() < deadline:
        read_all()
        done = stdin_says_done()
        time.sleep(0.002)
    linger_end = min(time.monotonic() + args.linger, deadline + args.linger)
    while time.monotonic() < linger_end:
        read_all()
        time.sleep(0.005)

    result = {
        "cyclonedds": importlib.metadata.version("cyclonedds"),
        "sent": sent,
        "matched_at_ready": m,
        "cmd_vel": cmd,
        "drowsiness": {"count": drowsy["count"], "distinct": sorted(set(drowsy["values"]))},
        "nodes": nodes,
        "timed_out": not done,
    }
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
