//! The brain on rmw_zenoh's wire layout, checked against an independent zenoh peer: PyPI
//! `eclipse-zenoh` with rosbags for CDR and type hashes (`scripts/ros2/zenoh_peer.py`), as a
//! ROS 2 tool on rmw_zenoh (Jazzy) would see it. Both directions, values compared:
//! * out: `/cmd_vel`, `/brainloop/health` and a region's `/brainloop/<region>/embedding` decode
//!   with rosbags on keys whose type hash is the one rosbags computes, every sample with a
//!   well-formed attachment; liveliness tokens name the brain's nodes and publishers;
//! * in: a `std_msgs/String` on `/brainloop/instruction` published by the peer reaches the
//!   language region's process (it logs the text it was given).
//!
//! TCP loopback only, multicast scouting off on both sides: nothing leaves this machine.

use std::io::BufRead;
use std::process::{Command, Stdio};

mod up_common;
use std::time::{Duration, Instant};
use up_common::{free_port, Up};

const BIN: &str = env!("CARGO_BIN_EXE_brainloop");

fn root() -> &'static str {
    env!("CARGO_MANIFEST_DIR")
}

fn python() -> std::path::PathBuf {
    std::path::Path::new(root()).join(".cache/venv/bin/python")
}

fn peer(args: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(python())
        .arg(format!("{}/scripts/ros2/zenoh_peer.py", root()))
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run zenoh_peer.py (make bootstrap installs eclipse-zenoh)");
    assert!(out.status.success(), "zenoh_peer.py {args:?} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn ros2_tools_on_rmw_zenoh_see_the_brain_and_can_instruct_it() {
    if !python().exists() {
        panic!("no {} (run make bootstrap)", python().display());
    }
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut up = Up(Command::new(BIN)
        .args(["up", "--body", "kinematic", "--ros-compat", "--listen", &ep])
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap());
    let _ = &mut up;

    // Out: what the brain publishes, decoded by rosbags.
    let samples = peer(&[
        "listen",
        "--connect",
        &ep,
        "--seconds",
        "8",
        "--keys",
        "0/**",
    ]);
    let on = |topic: &str| -> Vec<&serde_json::Value> {
        samples.iter().filter(|s| s["topic"] == topic).collect()
    };
    for (topic, ty) in [
        ("/cmd_vel", "geometry_msgs/msg/Twist"),
        ("/brainloop/health", "brainloop_msgs/msg/LoopHealth"),
        (
            "/brainloop/proprioception/embedding",
            "brainloop_msgs/msg/Embedding",
        ),
    ] {
        let got = on(topic);
        let topics: std::collections::BTreeSet<_> =
            samples.iter().map(|s| s["topic"].to_string()).collect();
        assert!(
            got.len() >= 3,
            "{topic}: {} samples (saw {topics:?})",
            got.len()
        );
        let mut last_seq = 0;
        for s in &got {
            assert_eq!(s["ros_type"], ty, "{s}");
            assert_eq!(
                s["hash_ok"], true,
                "{topic}: type hash differs from rosbags'"
            );
            assert!(
                s.get("fields").is_some(),
                "{topic}: rosbags could not decode: {s}"
            );
            let a = &s["attachment"];
            let seq = a["sequence_number"].as_i64().unwrap_or(-1);
            assert!(
                seq > last_seq,
                "{topic}: sequence {seq} after {last_seq}: {a}"
            );
            last_seq = seq;
        }
    }
    let emb = &on("/brainloop/proprioception/embedding")[0]["fields"];
    assert_eq!(emb["region"], "proprioception");
    assert_eq!(emb["header"]["frame_id"], "proprioception");
    assert_eq!(emb["schema_version"], 1);
    let n = emb["data"].as_array().unwrap().len();
    assert_eq!(emb["shape"][0].as_u64(), Some(n as u64), "{emb}");
    assert!(emb["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v.as_f64().is_some_and(f64::is_finite)));
    let health = &on("/brainloop/health").last().unwrap()["fields"];
    assert!(
        (health["rate_hz"].as_f64().unwrap() - 50.0).abs() < 5.0,
        "{health}"
    );
    let regions: Vec<_> = health["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["region"].as_str().unwrap().to_string())
        .collect();
    assert!(
        regions.contains(&"proprioception".to_string()),
        "{regions:?}"
    );
    let twist = &on("/cmd_vel")[0]["fields"];
    assert!(twist["linear"]["x"].as_f64().is_some_and(f64::is_finite));

    // The ROS 2 graph: nodes and the /cmd_vel publisher, as rmw_zenoh's graph cache parses them.
    // A fresh peer first reaches only the endpoint's session (peers do not forward for one
    // another); it meets the brain's other processes through gossip within a few seconds, so
    // it watches for tokens as they appear, and asks again if the first look was too early.
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens = peer(&[
            "liveliness",
            "--connect",
            &ep,
            "--timeout",
            "2",
            "--seconds",
            "3",
        ]);
        if tokens
            .iter()
            .any(|t| t["parsed"]["node_name"] == "brainloop_integrator")
        {
            break;
        }
    }
    let parsed: Vec<&serde_json::Value> = tokens.iter().map(|t| &t["parsed"]).collect();
    assert!(
        parsed
            .iter()
            .any(|p| p["kind"] == "node" && p["node_name"] == "brainloop_integrator"),
        "{tokens:?}"
    );
    assert!(
        parsed
            .iter()
            .any(|p| p["kind"] == "publisher" && p["topic"] == "/cmd_vel"),
        "{tokens:?}"
    );

    // In: an instruction from the ROS side reaches the language region's process.
    peer(&[
        "publish",
        "--connect",
        &ep,
        "--topic",
        "/brainloop/instruction",
        "--type",
        "std_msgs/msg/String",
        "--json",
        r#"{"data": "find the blue cube"}"#,
        "--count",
        "10",
        "--rate",
        "5",
        "--attachment",
        // Time to meet the language node through gossip (see the liveliness check above).
        "--wait",
        "3",
    ]);
    let end = Instant::now() + Duration::from_secs(5);
    let mut seen = false;
    while Instant::now() < end && !seen {
        let f = std::fs::File::open(log.path()).unwrap();
        seen = std::io::BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.starts_with("[language]") && l.contains("find the blue cube"));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen, "the language node never got the instruction");
}
