#!/usr/bin/env python3
"""A zenoh peer that speaks rmw_zenoh's (ROS 2 Jazzy) wire layout, for interop tests.

It decodes and encodes CDR with rosbags (ROS 2 Jazzy type store, plus brainloop_msgs registered
from ros/brainloop_msgs/msg/*.msg) and the 33-byte rmw_zenoh attachment with zenoh's own
serializer, so it is independent of brainloop's Rust code (src/bus/wire.rs, src/bus/rmw_zenoh.rs).
Every session is a peer with multicast scouting off and no listening endpoint unless --listen
is given: it connects only where it is told.

  zenoh_peer.py listen --connect ENDPOINT --seconds S [--keys KEYEXPR ...] [--count N]
      One JSON line per sample: key, kind, the ROS type, whether the key's type hash is the
      one rosbags computes, the decoded fields (when the key's type segment names a type the
      type store knows), and the attachment decoded (or its raw hex and the error).
  zenoh_peer.py publish --connect ENDPOINT (--key K | --topic /T [--domain D]) --type ROS_TYPE
                        --json FIELDS --count N --rate HZ [--attachment] [--token TOKEN ...]
      Publishes N rosbags-encoded messages (FIELDS: JSON object, missing fields are zero/empty;
      nested messages are objects, arrays are lists). --attachment adds rmw_zenoh's attachment
      (sequence number from 1, system time, --gid or a random GID). --token declares
      liveliness tokens while publishing. One JSON line per sample sent.
  zenoh_peer.py liveliness --connect ENDPOINT [--seconds S] [--domain D]
      The liveliness tokens it sees (`liveliness().get("@ros2_lv/**")`), one JSON line each
      with the fields parsed as rmw_zenoh's graph cache parses them; with --seconds, it also
      watches for S seconds and prints tokens appearing ("put") and leaving ("delete").

Any subcommand takes --listen ENDPOINT instead of (or beside) --connect, so two of these can
talk to each other (one listens, the other connects).
"""
import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import zenoh
import zenoh.ext as zx
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.interfaces import Nodetype

ROOT = Path(__file__).resolve().parents[2]
MSG_DIR = ROOT / "ros" / "brainloop_msgs" / "msg"
ADMIN_SPACE = "@ros2_lv"
GID_LEN = 16
ATTACHMENT_LEN = 8 + 8 + 1 + GID_LEN

NUMPY = {
    "bool": np.bool_, "byte": np.uint8, "char": np.uint8, "int8": np.int8, "uint8": np.uint8,
    "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32,
    "int64": np.int64, "uint64": np.uint64, "float32": np.float32, "float64": np.float64,
}


def typestore():
    ts = get_typestore(Stores.ROS2_JAZZY)
    types = {}
    for p in sorted(MSG_DIR.glob("*.msg")):
        types.update(get_types_from_msg(p.read_text(), f"brainloop_msgs/msg/{p.stem}"))
    ts.register(types)
    return ts


TS = typestore()


# ------------------------------------------------------------------ rmw_zenoh layout

def dds_type(ros_type):
    """geometry_msgs/msg/Twist -> geometry_msgs::msg::dds_::Twist_ (type_support_common.cpp)."""
    pkg, kind, name = ros_type.split("/")
    return f"{pkg}::{kind}::dds_::{name}_"


def ros_type(dds):
    """The inverse (graph_cache.cpp, _demangle_if_ros_type); None if not a ROS type."""
    if not dds.endswith("_") or "dds_::" not in dds:
        return None
    ns, name = dds[:-1].split("dds_::", 1)
    return ns.replace("::", "/") + name if name else None


def topic_key(domain, topic, typename):
    """<domain>/<topic without leading/trailing slash>/<dds type>/<RIHS01 hash>."""
    t = topic[1:] if topic.startswith("/") else topic
    t = t[:-1] if t.endswith("/") else t
    return f"{domain}/{t}/{dds_type(typename)}/{TS.hash_rihs01(typename)}"


def split_topic_key(key):
    """(domain, topic, ros type, hash) of an rmw_zenoh topic key, or None."""
    parts = key.split("/")
    if len(parts) < 4 or not parts[-1].startswith("RIHS01_"):
        return None
    rt = ros_type(parts[-2])
    if rt is None:
        return None
    return parts[0], "/" + "/".join(parts[1:-2]), rt, parts[-1]


def encode_attachment(seq, stamp_ns, gid):
    """rmw_zenoh's attachment, through zenoh's serializer as rmw_zenoh_cpp's zenoh-cpp does:
    int64, int64, then the GID as a sequence (LEB128 length 16, 16 bytes)."""
    return zx.z_serialize((zx.Int64(seq), zx.Int64(stamp_ns), bytes(gid))).to_bytes()


def decode_attachment(raw):
    if len(raw) != ATTACHMENT_LEN:
        return {"error": f"length {len(raw)}, expected {ATTACHMENT_LEN}", "hex": raw.hex()}
    try:
        seq, stamp, gid = zx.z_deserialize(tuple[zx.Int64, zx.Int64, bytes], zenoh.ZBytes(raw))
    except Exception as e:  # noqa: BLE001 - report, don't die, on a peer's bad bytes
        return {"error": str(e), "hex": raw.hex()}
    if len(gid) != GID_LEN:
        return {"error": f"GID of {len(gid)} bytes", "hex": raw.hex()}
    return {"sequence_number": int(seq), "source_timestamp": int(stamp), "gid": gid.hex()}


def demangle(s):
    return s.replace("%", "/")


def parse_qos(s):
    """keyexpr_to_qos (liveliness_utils.cpp): empty components are rmw_zenoh's defaults."""
    p = s.split(":")
    if len(p) < 6:
        raise ValueError(f"bad QoS string {s!r}")
    hist, dl, ls, lv = (p[2].split(","), p[3].split(","), p[4].split(","), p[5].split(","))
    if len(hist) < 2 or len(dl) < 2 or len(ls) < 2 or len(lv) < 3:
        raise ValueError(f"bad QoS string {s!r}")
    num = lambda t, d: int(t) if t else d  # noqa: E731
    inf_s, inf_ns = 9223372036, 854775807
    return {
        "reliability": num(p[0], 1), "durability": num(p[1], 2),
        "history": num(hist[0], 1), "depth": num(hist[1], 42),
        "deadline": [num(dl[0], inf_s), num(dl[1], inf_ns)],
        "lifespan": [num(ls[0], inf_s), num(ls[1], inf_ns)],
        "liveliness": num(lv[0], 1),
        "liveliness_lease": [num(lv[1], inf_s), num(lv[2], inf_ns)],
    }


def parse_token(key):
    """Entity::make(keyexpr) (liveliness_utils.cpp); raises ValueError on a malformed one."""
    p = key.split("/")
    if p[0] != ADMIN_SPACE or len(p) < 9 or any(c == "" for c in p):
        raise ValueError(f"malformed token {key!r}")
    kinds = {"NN": "node", "MP": "publisher", "MS": "subscription",
             "SS": "service_server", "SC": "service_client"}
    if p[5] not in kinds:
        raise ValueError(f"unknown entity kind {p[5]!r}")
    t = {"domain_id": int(p[1]), "zid": p[2], "node_id": int(p[3]), "entity_id": int(p[4]),
         "kind": kinds[p[5]], "enclave": demangle(p[6]), "namespace": demangle(p[7]),
         "node_name": demangle(p[8])}
    if p[5] != "NN":
        if len(p) < 13:
            raise ValueError(f"token without its topic: {key!r}")
        t.update({"topic": demangle(p[9]), "dds_type": demangle(p[10]),
                  "ros_type": ros_type(demangle(p[10])), "type_hash": demangle(p[11]),
                  "qos": parse_qos(p[12]), "qos_string": p[12]})
    return t


# ------------------------------------------------------------------ JSON <-> rosbags

def jsonable(v):
    if hasattr(v, "__dataclass_fields__"):
        return {k: jsonable(getattr(v, k)) for k in v.__dataclass_fields__
                if k != "__msgtype__" and not k.isupper()}
    if isinstance(v, np.ndarray):
        return [jsonable(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        return jsonable(v.item())
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # "nan", "inf", "-inf": strict JSON has no such numbers
    return v


def zero(kind, spec):
    if kind == Nodetype.BASE:
        name = spec[0]
        return "" if name in ("string", "wstring") else (False if name == "bool" else 0)
    return None


def build(typename, fields):
    """A rosbags message of `typename` from a JSON object (missing fields zero or empty)."""
    fields = fields or {}
    unknown = set(fields) - {n for n, _ in TS.fielddefs[typename][1]}
    if unknown:
        raise ValueError(f"{typename} has no field(s) {sorted(unknown)}")
    args = {}
    for name, (kind, spec) in TS.fielddefs[typename][1]:
        args[name] = value(kind, spec, fields.get(name))
    return TS.types[typename](**args)


def value(kind, spec, v):
    if kind == Nodetype.BASE:
        return zero(kind, spec) if v is None else v
    if kind == Nodetype.NAME:
        return build(spec, v)
    (sub_kind, sub_spec), n = spec
    items = [] if v is None else list(v)
    if kind == Nodetype.ARRAY and v is None:
        items = [None] * n
    if sub_kind == Nodetype.BASE and sub_spec[0] in NUMPY:
        return np.array([0 if x is None else x for x in items], dtype=NUMPY[sub_spec[0]])
    return [value(sub_kind, sub_spec, x) for x in items]


# ------------------------------------------------------------------ commands

def out(obj):
    sys.stdout.write(json.dumps(obj, allow_nan=False) + "\n")
    sys.stdout.flush()


def open_session(args):
    conf = zenoh.Config()
    conf.insert_json5("mode", '"peer"')
    conf.insert_json5("scouting/multicast/enabled", "false")
    conf.insert_json5("connect/endpoints", json.dumps(args.connect or []))
    conf.insert_json5("listen/endpoints", json.dumps(args.listen or []))
    return zenoh.open(conf)


def describe(sample):
    key = str(sample.key_expr)
    rec = {"key": key, "kind": str(sample.kind).rsplit(".", 1)[-1].lower()}
    payload = sample.payload.to_bytes()
    parts = split_topic_key(key)
    if parts is not None:
        domain, topic, rt, h = parts
        rec.update({"domain_id": domain, "topic": topic, "ros_type": rt, "type_hash": h})
        if rt in TS.types:
            rec["hash_ok"] = TS.hash_rihs01(rt) == h
            try:
                rec["fields"] = jsonable(TS.deserialize_cdr(payload, rt))
            except Exception as e:  # noqa: BLE001
                rec["decode_error"] = str(e)
    if "fields" not in rec:
        rec["payload_hex"] = payload.hex()
    att = sample.attachment
    rec["attachment"] = None if att is None else decode_attachment(att.to_bytes())
    return rec


def cmd_listen(args):
    with open_session(args) as s:
        subs = [s.declare_subscriber(k) for k in args.keys]
        end = time.monotonic() + args.seconds
        n = 0
        while time.monotonic() < end and (args.count is None or n < args.count):
            got = False
            for sub in subs:
                sample = sub.try_recv()
                while sample is not None:
                    out(describe(sample))
                    n += 1
                    got = True
                    if args.count is not None and n >= args.count:
                        break
                    sample = sub.try_recv()
            if not got:
                time.sleep(0.002)
        for sub in subs:
            sub.undeclare()


def cmd_publish(args):
    if args.type not in TS.types:
        sys.exit(f"unknown ROS type {args.type}")
    key = args.key or topic_key(args.domain, args.topic, args.type)
    payload = bytes(TS.serialize_cdr(build(args.type, json.loads(args.json)), args.type))
    gid = bytes.fromhex(args.gid) if args.gid else os.urandom(GID_LEN)
    if len(gid) != GID_LEN:
        sys.exit("--gid takes 16 bytes of hex")
    with open_session(args) as s:
        tokens = [s.liveliness().declare_token(t) for t in args.token]
        pub = s.declare_publisher(key)
        time.sleep(args.wait)  # let the subscriber's interest reach us
        period = 1.0 / args.rate if args.rate > 0 else 0.0
        start = time.monotonic()
        for i in range(args.count):
            seq = i + 1
            att = encode_attachment(seq, time.time_ns(), gid) if args.attachment else None
            pub.put(payload, attachment=att)
            out({"key": key, "sequence_number": seq, "bytes": len(payload),
                 "attachment": att.hex() if att else None})
            delay = start + (i + 1) * period - time.monotonic()
            if delay > 0 and i + 1 < args.count:
                time.sleep(delay)
        time.sleep(args.linger)
        pub.undeclare()
        for t in tokens:
            t.undeclare()


def token_record(key, kind):
    rec = {"token": key, "kind": kind}
    try:
        rec["parsed"] = parse_token(key)
    except ValueError as e:
        rec["error"] = str(e)
    return rec


def cmd_liveliness(args):
    sel = f"{ADMIN_SPACE}/**" if args.domain is None else f"{ADMIN_SPACE}/{args.domain}/**"
    with open_session(args) as s:
        watch = None
        if args.seconds > 0:
            watch = s.liveliness().declare_subscriber(sel)
        seen = set()
        for reply in s.liveliness().get(sel, timeout=args.timeout):
            if reply.ok is not None:
                key = str(reply.ok.key_expr)
                seen.add(key)
                out(token_record(key, "alive"))
        if watch is not None:
            end = time.monotonic() + args.seconds
            while time.monotonic() < end:
                sample = watch.try_recv()
                if sample is None:
                    time.sleep(0.005)
                    continue
                key = str(sample.key_expr)
                kind = str(sample.kind).rsplit(".", 1)[-1].lower()
                if kind == "put" and key in seen:
                    continue
                seen.add(key)
                out(token_record(key, kind))
            watch.undeclare()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--connect", action="append", metavar="ENDPOINT",
                        help="endpoint to connect to (repeatable), e.g. tcp/127.0.0.1:7447")
    common.add_argument("--listen", action="append", metavar="ENDPOINT",
                        help="endpoint to listen on (repeatable; none by default)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("listen", parents=[common], help="print samples as JSON lines")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--keys", nargs="+", default=["**"], metavar="KEYEXPR")
    p.add_argument("--count", type=int, help="stop after this many samples")
    p.set_defaults(func=cmd_listen)

    p = sub.add_parser("publish", parents=[common], help="publish rosbags-encoded CDR")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--key", help="key expression to put on")
    g.add_argument("--topic", help="ROS topic; the key is rmw_zenoh's for --type and --domain")
    p.add_argument("--domain", type=int, default=0)
    p.add_argument("--type", required=True, help="ROS type, e.g. geometry_msgs/msg/Twist")
    p.add_argument("--json", default="{}", help="the message's fields as a JSON object")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--rate", type=float, default=10.0, help="Hz")
    p.add_argument("--attachment", action="store_true", help="add rmw_zenoh's attachment")
    p.add_argument("--gid", help="GID for the attachment (32 hex digits; random by default)")
    p.add_argument("--token", action="append", default=[], metavar="KEYEXPR",
                   help="liveliness token to declare while publishing (repeatable)")
    p.add_argument("--wait", type=float, default=0.5,
                   help="seconds between declaring and the first sample")
    p.add_argument("--linger", type=float, default=0.2,
                   help="seconds to stay after the last sample")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("liveliness", parents=[common], help="print liveliness tokens")
    p.add_argument("--seconds", type=float, default=0.0, help="also watch this long")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds the get waits")
    p.add_argument("--domain", type=int, help="only this ROS domain")
    p.set_defaults(func=cmd_liveliness)

    args = ap.parse_args()
    if not args.connect and not args.listen:
        ap.error("give --connect and/or --listen")
    args.func(args)


if __name__ == "__main__":
    main()
