#!/usr/bin/env bash
# zenoh_peer.py against itself, in a private network namespace (root: `unshare -n`), so nothing
# leaves this machine: a publisher that listens on loopback and holds two liveliness tokens, a
# listener and a liveliness watcher that connect to it. Checks that the samples arrive decoded,
# with rmw_zenoh's attachment and the key's type hash rosbags computes, and that the tokens are
# seen alive, then leaving. Usage: scripts/ros2/zenoh_peer_selftest.sh (from anywhere).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${ZENOH_PEER_NETNS:-}" != 1 ]; then
  exec env ZENOH_PEER_NETNS=1 unshare -n "$0" "$@"
fi
ip link set lo up
PY=.cache/venv/bin/python
P=scripts/ros2/zenoh_peer.py
EP=tcp/127.0.0.1:7447
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
ZID=0123456789abcdef0123456789abcdef
HASH=RIHS01_8eba1637f87b6e2feecaf892f4a15b0b0003664f0dd712a8c59f414fc1a7a30e
NODE="@ros2_lv/0/$ZID/0/0/NN/%/%/brain"
PUB="@ros2_lv/0/$ZID/0/1/MP/%/%/brain/%brainloop%embedding/brainloop_msgs::msg::dds_::Embedding_/$HASH/2::,1:,:,:,,"
FIELDS='{"header":{"frame_id":"vision","stamp":{"sec":1,"nanosec":2}},"schema_version":1,
  "region":"vision","shape":[2],"data":[0.5,-1],"spatial_shape":[1,1,1],"spatial":[3]}'

timeout 30 $PY $P publish --listen $EP --topic /brainloop/embedding \
  --type brainloop_msgs/msg/Embedding --json "$FIELDS" --count 2 --rate 20 --attachment \
  --gid 000102030405060708090a0b0c0d0e0f --wait 2.5 --linger 4 \
  --token "$NODE" --token "$PUB" > "$OUT/pub.jsonl" &
PUBLISHER=$!
sleep 0.8
timeout 30 $PY $P listen --connect $EP --seconds 8 --count 2 --keys '0/**' > "$OUT/listen.jsonl" &
LISTENER=$!
timeout 30 $PY $P liveliness --connect $EP --seconds 6 > "$OUT/lv.jsonl" &
WATCHER=$!
wait $LISTENER
wait $PUBLISHER
wait $WATCHER

$PY - "$OUT" "$NODE" "$PUB" <<'PYEOF'
import json, sys
out, node, pub = sys.argv[1:]
rd = lambda n: [json.loads(l) for l in open(f"{out}/{n}.jsonl")]
samples, tokens = rd("listen"), rd("lv")
assert len(samples) == 2, samples
for i, s in enumerate(samples, 1):
    assert s["ros_type"] == "brainloop_msgs/msg/Embedding" and s["hash_ok"], s
    assert s["fields"]["region"] == "vision" and s["fields"]["data"] == [0.5, -1.0], s
    a = s["attachment"]
    assert a["sequence_number"] == i and a["gid"] == "000102030405060708090a0b0c0d0e0f", a
seen = {(t["token"], t["kind"]) for t in tokens}
for t in (node, pub):
    assert (t, "alive") in seen and (t, "delete") in seen, (t, seen)
assert all("parsed" in t for t in tokens), tokens
print("zenoh_peer selftest: 2 samples decoded with attachments, 2 tokens seen alive and leaving")
PYEOF
