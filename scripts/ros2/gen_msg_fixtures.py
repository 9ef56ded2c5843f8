#!/usr/bin/env python3
"""Write test vectors for the brain's own messages with independent encoders.

* CDR of brainloop_msgs/msg/{Embedding,RegionFreshness,LoopHealth}: PyPI `rosbags`, with the
  three types registered from the text of ros/brainloop_msgs/msg/*.msg;
* the REP 2016 type hash (RIHS01) of every type the brain puts on the wire (rosbags'
  `hash_rihs01`, ROS 2 Jazzy type store);
* rmw_zenoh sample attachments: PyPI `eclipse-zenoh`'s `zenoh.ext.z_serialize` of
  (int64 sequence number, int64 timestamp, 16 GID bytes), the serializer rmw_zenoh_cpp uses
  through zenoh-cpp.

src/bus/wire.rs and src/bus/rmw_zenoh.rs must reproduce exactly these bytes and hashes; the
Rust test `tests/wire.rs` reads the file, and `make check-ros2` regenerates it and diffs.
Usage: gen_msg_fixtures.py OUT.json
"""
import json
import sys
from pathlib import Path

import numpy as np
import zenoh.ext as zx
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

ROOT = Path(__file__).resolve().parents[2]
MSG_DIR = ROOT / "ros" / "brainloop_msgs" / "msg"
NAMES = ["RegionFreshness", "Embedding", "LoopHealth"]

ts = get_typestore(Stores.ROS2_JAZZY)
types = {}
for name in NAMES:
    types.update(get_types_from_msg((MSG_DIR / f"{name}.msg").read_text(),
                                    f"brainloop_msgs/msg/{name}"))
ts.register(types)
T = ts.types
Time = T["builtin_interfaces/msg/Time"]
Header = T["std_msgs/msg/Header"]
Embedding = T["brainloop_msgs/msg/Embedding"]
Freshness = T["brainloop_msgs/msg/RegionFreshness"]
LoopHealth = T["brainloop_msgs/msg/LoopHealth"]

HASHED = [
    "brainloop_msgs/msg/Embedding",
    "brainloop_msgs/msg/RegionFreshness",
    "brainloop_msgs/msg/LoopHealth",
    "geometry_msgs/msg/Twist",
    "geometry_msgs/msg/TwistStamped",
    "std_msgs/msg/String",
    "std_msgs/msg/Bool",
    "std_msgs/msg/Float32",
    "sensor_msgs/msg/Image",
    "nav_msgs/msg/Odometry",
]


def f32(values):
    """Values as float32, and the same values as JSON numbers (exact as f32 in Rust)."""
    a = np.asarray(values, dtype=np.float32)
    return a, [float(x) for x in a]


cases = []


def add(name, typename, msg, fields):
    raw = ts.serialize_cdr(msg, typename)
    back = ts.deserialize_cdr(raw, typename)
    assert ts.serialize_cdr(back, typename) == raw, name
    cases.append({"name": name, "type": typename, "fields": fields, "hex": raw.hex()})


def embedding(name, region, sec, nanosec, model_id, seq, vector, spatial_shape, spatial):
    data, data_j = f32(vector)
    sp, sp_j = f32(spatial)
    msg = Embedding(
        header=Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=region),
        schema_version=Embedding.SCHEMA_VERSION,
        region=region,
        model_id=model_id,
        sequence=seq,
        shape=np.array([len(data)], dtype=np.uint32),
        data=data,
        spatial_shape=np.array(spatial_shape, dtype=np.uint32),
        spatial=sp,
    )
    add(name, "brainloop_msgs/msg/Embedding", msg, {
        "header": {"stamp_sec": sec, "stamp_nanosec": nanosec, "frame_id": region},
        "schema_version": Embedding.SCHEMA_VERSION,
        "region": region, "model_id": model_id, "sequence": seq,
        "shape": [len(data)], "data": data_j,
        "spatial_shape": list(spatial_shape), "spatial": sp_j,
    })


# A vision-like embedding with a 2 x 2 x 3 spatial grid.
embedding("vision_grid_2x2x3", "vision", 12, 345_678_901, 0x1A2B3C4D, 7,
          [0.5, -1.25, 3.0, 0.1, -0.2, 1e-3, 42.0, -7.5],
          [2, 2, 3], [i / 12.0 - 0.5 for i in range(12)])
# No spatial grid: empty spatial_shape and spatial.
embedding("language_no_spatial", "language", 0, 0, 0, 0, [0.25, 0.5, 0.75, 1.0, -1.0], [], [])
# Odd string lengths and a one-value vector exercise the alignment after each field.
embedding("audition_dim1", "audition", 2_000_000_000, 999_999_999, 1, 2**33 + 5, [-0.0], [], [])
embedding("proprioception_big_seq", "proprioception", 1_700_000_000, 5, 0xFFFFFFFF,
          2**64 - 1, [1.0, 2.0, 3.0], [1, 1, 2], [0.125, -0.125])


def freshness(region, fresh, age, rate, latency, received, gaps, rejected, restarts):
    msg = Freshness(region=region, fresh=fresh, age_ms=age, rate_hz=rate, latency_ms=latency,
                    received=received, gaps=gaps, rejected=rejected, restarts=restarts)
    fields = {"region": region, "fresh": fresh, "age_ms": age, "rate_hz": rate,
              "latency_ms": latency, "received": received, "gaps": gaps,
              "rejected": rejected, "restarts": restarts}
    return msg, fields


fr = [
    freshness("vision", True, 33.3, 29.97, 12.5, 9000, 3, 1, 0),
    freshness("proprioception", False, 1500.25, 0.0, 0.0, 2**40, 0, 0, 4),
    freshness("language", True, 0.0, 1.0, 250.0, 1, 0, 0, 1),
]
add("freshness_vision", "brainloop_msgs/msg/RegionFreshness", fr[0][0], fr[0][1])
add("freshness_stale", "brainloop_msgs/msg/RegionFreshness", fr[1][0], fr[1][1])


def health(name, sec, nanosec, mode, entries, **kw):
    d = dict(rate_hz=100.0, period_us=10_000.0, jitter_p50_us=11.5, jitter_p99_us=85.25,
             jitter_max_us=912.0, compute_p99_us=432.125, ticks=123_456, missed=2,
             drowsiness=0.25, speed_scale=0.75, shed_level=1, sleeps=3)
    d.update(kw)
    msg = LoopHealth(header=Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=""),
                     schema_version=LoopHealth.SCHEMA_VERSION, mode=mode,
                     regions=[e[0] for e in entries], **d)
    fields = {"header": {"stamp_sec": sec, "stamp_nanosec": nanosec, "frame_id": ""},
              "schema_version": LoopHealth.SCHEMA_VERSION, "mode": mode,
              "regions": [e[1] for e in entries]}
    fields.update({k: (float(np.float32(v)) if k in ("drowsiness", "speed_scale") else v)
                   for k, v in d.items()})
    add(name, "brainloop_msgs/msg/LoopHealth", msg, fields)


health("loop_health_three_regions", 1_700_000_123, 456, "approach", fr)
health("loop_health_no_regions", 0, 1, "idle", [], drowsiness=0.1, speed_scale=1.0,
       shed_level=255, ticks=0, missed=0, sleeps=0)

attachments = []
for seq, stamp, gid in [
    (1, 1_700_000_000_123_456_789, bytes(range(16))),
    (2**40 + 3, 0, bytes([0xFF] * 16)),
    (-1, -5, bytes(range(0xF0, 0x100))),
]:
    raw = zx.z_serialize((zx.Int64(seq), zx.Int64(stamp), gid)).to_bytes()
    attachments.append({"sequence_number": seq, "source_timestamp_ns": stamp,
                        "gid": gid.hex(), "hex": raw.hex()})

out = {
    "generator": "rosbags 0.11.9 (ROS2_JAZZY typestore + ros/brainloop_msgs), "
                 "eclipse-zenoh 1.10.2 (zenoh.ext.z_serialize)",
    "schema_version": Embedding.SCHEMA_VERSION,
    "type_hashes": {t: ts.hash_rihs01(t) for t in HASHED},
    "cases": cases,
    "attachments": attachments,
}
with open(sys.argv[1], "w") as fh:
    json.dump(out, fh, indent=1, ensure_ascii=False)
    fh.write("\n")
