//! Interoperability of the DDS bridge with Eclipse Cyclone DDS, i.e. with what a ROS 2 node on
//! `rmw_cyclonedds` sees (cargo feature `dds`; `make check-dds`).
//!
//! The peer is `scripts/ros2/cyclone_peer.py` on PyPI `cyclonedds` (from `.cache/venv`). Both
//! directions are checked with real RTPS traffic: brainloop's `/cmd_vel` and
//! `/brainloop/drowsiness` arrive at Cyclone readers of `rt/cmd_vel` /
//! `geometry_msgs::msg::dds_::Twist_`, whether they come from the bridge's outlet or from the
//! in-process bus; Cyclone's instructions, teleop twists and e-stops arrive on the bus as
//! `Instruction` / `TeleopCommand` on the `remote` teleop topic (never the console's).
//!
//! DDS discovery multicasts, so the test re-runs itself in a private network namespace that has
//! only loopback (`unshare -n`, needs root): no packet leaves this machine.
#![cfg(feature = "dds")]

use brainloop::bus::dds::{DdsBridge, DdsConfig};
use brainloop::bus::{topics, Bus, LocalBus};
use brainloop::msg::{TeleopCommand, Twist};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const NETNS_ENV: &str = "BRAINLOOP_DDS_NETNS";
/// Messages sent each way.
const N_CMD: usize = 100;
const N_INSTR: usize = 100;
const N_TELEOP: usize = 20;
/// Samples a VOLATILE writer may send before discovery has matched the remote reader.
const STARTUP_TOLERANCE: usize = 5;

/// Re-run test `name` of this binary inside `unshare -n` with loopback (multicast) only.
/// Returns true when the caller is already inside and should do the work.
fn inside_private_netns(name: &str) -> bool {
    if std::env::var_os(NETNS_ENV).is_some() {
        return true;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let setup = "ip link set lo up && ip link set lo multicast on && \
                 ip route add 224.0.0.0/4 dev lo && exec \"$0\" \"$@\"";
    let status = Command::new("unshare")
        .args(["-n", "sh", "-c", setup])
        .arg(&exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(NETNS_ENV, "1")
        .status()
        .expect("cannot run `unshare` (util-linux)");
    assert!(
        status.success(),
        "{name} failed inside the private network namespace (or `unshare -n` was refused: \
         this test needs root / CAP_SYS_ADMIN): {status}"
    );
    false
}

fn python() -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/venv/bin/python");
    assert!(
        p.exists(),
        "{} missing: run `make bootstrap` (it installs cyclonedds)",
        p.display()
    );
    p
}

struct Peer {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Peer {
    fn spawn() -> Peer {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ros2/cyclone_peer.py");
        let mut child = Command::new(python())
            .arg(script)
            .args(["--instructions", &N_INSTR.to_string()])
            .args(["--teleop", &N_TELEOP.to_string()])
            .args(["--rate", "200", "--timeout", "30", "--linger", "0.5"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start cyclone_peer.py");
        let out = child.stdout.take().expect("peer stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Peer { child, lines }
    }

    /// The JSON after `prefix` on the next line starting with it.
    fn expect(&self, prefix: &str, timeout: Duration) -> serde_json::Value {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("cyclone peer: no {prefix} line within {timeout:?}"));
            if let Some(rest) = line.strip_prefix(prefix) {
                return serde_json::from_str(rest.trim()).expect("peer JSON");
            }
            eprintln!("peer: {line}");
        }
    }

    fn done(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("peer stdin");
        stdin.write_all(b"DONE\n").expect("tell peer DONE");
        stdin.flush().expect("flush");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn as_usize(v: &serde_json::Value) -> usize {
    v.as_u64().expect("count") as usize
}

#[test]
fn cyclone_dds_interop_both_directions() {
    if !inside_private_netns("cyclone_dds_interop_both_directions") {
        return;
    }
    let t0 = Instant::now();
    let cfg = DdsConfig {
        drowsiness_period: Duration::from_millis(50),
        ..DdsConfig::default()
    };
    let bus = LocalBus::new();
    let instr_sub = bus.subscribe(topics::INSTRUCTION, 1024);
    let remote_sub = bus.subscribe(topics::TELEOP_REMOTE, 1024);
    let console_sub = bus.subscribe(topics::TELEOP_CONSOLE, 16);
    let bridge = DdsBridge::start(cfg, bus.clone()).expect("start DDS bridge");
    let out = bridge.outlet();
    out.set_drowsiness(0.375);

    let mut peer = Peer::spawn();
    let ready = peer.expect("READY", Duration::from_secs(20));
    eprintln!("peer ready: {ready}");

    // brainloop -> Cyclone: 100 twists at 100 Hz through the outlet, while the peer publishes
    // its side onto the bus.
    let mut instr: Vec<String> = Vec::new();
    let mut remote: Vec<TeleopCommand> = Vec::new();
    let drain = |instr: &mut Vec<String>, remote: &mut Vec<TeleopCommand>| {
        while let Some(i) = instr_sub.try_recv() {
            instr.push(i.text);
        }
        while let Some(c) = remote_sub.try_recv() {
            remote.push(c);
        }
    };
    let mut next = Instant::now();
    for i in 0..N_CMD {
        let x = (i + 1) as f64 / 1000.0;
        assert!(out.cmd_vel(Twist {
            linear: x,
            angular: -2.0 * x
        }));
        next += Duration::from_millis(10);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        drain(&mut instr, &mut remote);
    }
    // Cyclone -> brainloop: wait (bounded) for the peer's last message, the e-stop clear.
    let end = Instant::now() + Duration::from_secs(15);
    while remote.last() != Some(&TeleopCommand::ClearEstop) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
        drain(&mut instr, &mut remote);
    }
    drain(&mut instr, &mut remote);
    let stats = bridge.stats();
    drop(bridge); // publishes the zero twist
    peer.done();
    let result = peer.expect("RESULT", Duration::from_secs(20));
    eprintln!("peer result: {result}");

    // --- what Cyclone received from brainloop
    let cmd = &result["cmd_vel"];
    let seqs: Vec<usize> = cmd["seqs"]
        .as_array()
        .expect("seqs")
        .iter()
        .map(as_usize)
        .collect();
    assert_eq!(as_usize(&cmd["bad"]), 0, "malformed twists at Cyclone");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "twists out of order or duplicated: {seqs:?}"
    );
    assert!(
        seqs.len() >= N_CMD - STARTUP_TOLERANCE,
        "Cyclone got {} of {N_CMD} twists",
        seqs.len()
    );
    // Whatever was missed was missed at the start (before discovery), never later.
    if let Some(first) = seqs.first() {
        assert_eq!(
            seqs.len(),
            N_CMD - first,
            "a gap after the first twist: {seqs:?}"
        );
    }
    let drowsy = &result["drowsiness"];
    assert!(as_usize(&drowsy["count"]) >= 5, "drowsiness: {drowsy}");
    assert!(
        drowsy["distinct"]
            .as_array()
            .expect("distinct")
            .iter()
            .any(|v| v.as_f64() == Some(0.375)),
        "drowsiness value not seen: {drowsy}"
    );

    // --- the node as ROS 2's graph tools see it (ros_discovery_info, read by `ros2 node list`)
    let node = &result["nodes"]["/brainloop"];
    assert!(
        node["readers"].as_u64() >= Some(3) && node["writers"].as_u64() >= Some(2),
        "node /brainloop not announced with its 3 readers and 2+ writers: {}",
        result["nodes"]
    );

    // --- what brainloop received from Cyclone, on the bus
    let expected: Vec<String> = (N_INSTR - instr.len()..N_INSTR)
        .map(|i| format!("instruction {i}"))
        .collect();
    assert_eq!(
        instr, expected,
        "instructions missing in the middle or reordered"
    );
    assert!(
        instr.len() >= N_INSTR - STARTUP_TOLERANCE,
        "brainloop got {} of {N_INSTR} instructions",
        instr.len()
    );
    let teleop: Vec<Twist> = remote
        .iter()
        .filter_map(|m| match m {
            TeleopCommand::Drive(t) => Some(*t),
            _ => None,
        })
        .collect();
    assert_eq!(teleop.len(), N_TELEOP, "teleop twists");
    for (i, t) in teleop.iter().enumerate() {
        let x = (i + 1) as f64 / 1000.0;
        assert_eq!(
            *t,
            Twist {
                linear: x,
                angular: -2.0 * x
            }
        );
    }
    let estops: Vec<&TeleopCommand> = remote
        .iter()
        .filter(|c| matches!(c, TeleopCommand::Estop | TeleopCommand::ClearEstop))
        .collect();
    assert_eq!(
        estops,
        [&TeleopCommand::Estop, &TeleopCommand::ClearEstop],
        "e-stop then clear"
    );
    assert_eq!(
        console_sub.try_recv(),
        None,
        "ROS 2 teleop reached the console's topic"
    );
    assert_eq!(stats.rejected, 0);
    assert_eq!(stats.dropped_in, 0);
    assert_eq!(
        (stats.instructions, stats.teleop, stats.estop),
        (instr.len() as u64, N_TELEOP as u64, 2)
    );

    println!(
        "DDS interop (Cyclone DDS {}): /cmd_vel {}/{N_CMD} at Cyclone, /brainloop/drowsiness {} \
         at Cyclone, /brainloop/instruction {}/{N_INSTR} at brainloop, teleop {}/{N_TELEOP}, \
         e-stop {}/2, shutdown zero twist seen {}, in {:.1} s",
        result["cyclonedds"].as_str().unwrap_or("?"),
        seqs.len(),
        as_usize(&drowsy["count"]),
        instr.len(),
        teleop.len(),
        estops.len(),
        as_usize(&cmd["zero"]),
        t0.elapsed().as_secs_f64()
    );
}

/// What the brain publishes on the bus goes out: twists on the bus's `topics::CMD_VEL` and
/// drowsiness on `topics::DROWSINESS` reach Cyclone (as in `brainloop run`, where the supervisor
/// publishes them), while Cyclone's traffic lands on the bus.
#[test]
fn cyclone_dds_from_the_bus() {
    if !inside_private_netns("cyclone_dds_from_the_bus") {
        return;
    }
    let bus = LocalBus::new();
    let instr_sub = bus.subscribe(topics::INSTRUCTION, 256);
    let teleop_sub = bus.subscribe(topics::TELEOP_REMOTE, 256);
    let cfg = DdsConfig {
        drowsiness_period: Duration::from_millis(50),
        ..DdsConfig::default()
    };
    let bridge = DdsBridge::start(cfg, bus.clone()).expect("bridge");
    let mut peer = Peer::spawn();
    peer.expect("READY", Duration::from_secs(20));
    let mut instr = 0;
    let mut teleop = 0;
    let mut next = Instant::now();
    let end = Instant::now() + Duration::from_secs(15);
    let mut i = 0;
    while (i < N_CMD || instr < N_INSTR || teleop < N_TELEOP + 2) && Instant::now() < end {
        if i < N_CMD {
            let x = (i + 1) as f64 / 1000.0;
            bus.publish(
                topics::CMD_VEL,
                &Twist {
                    linear: x,
                    angular: -2.0 * x,
                },
            );
            bus.publish(topics::DROWSINESS, &0.625f32);
            i += 1;
        }
        next += Duration::from_millis(10);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        while instr_sub.try_recv().is_some() {
            instr += 1;
        }
        while teleop_sub.try_recv().is_some() {
            teleop += 1;
        }
    }
    drop(bridge);
    peer.done();
    let result = peer.expect("RESULT", Duration::from_secs(20));
    let at_cyclone = as_usize(&result["cmd_vel"]["count"]);
    let drowsy = &result["drowsiness"];
    println!(
        "DDS from the bus: bus /cmd_vel {at_cyclone}/{i} at Cyclone, bus drowsiness {} at \
         Cyclone, instructions {instr}/{N_INSTR} and teleop+estop {teleop}/{} on the bus",
        as_usize(&drowsy["count"]),
        N_TELEOP + 2
    );
    assert!(
        drowsy["distinct"]
            .as_array()
            .expect("distinct")
            .iter()
            .any(|v| v.as_f64() == Some(0.625)),
        "the bus's drowsiness not seen: {drowsy}"
    );
    assert!(
        instr >= N_INSTR - STARTUP_TOLERANCE,
        "instructions on bus: {instr}"
    );
    assert_eq!(teleop, N_TELEOP + 2, "teleop + e-stop commands on bus");
    assert!(
        at_cyclone >= N_CMD - STARTUP_TOLERANCE,
        "twists at Cyclone: {at_cyclone}"
    );
}

/// The integrator's side never waits: a burst far beyond the queue returns at once, every
/// command is either published or counted as dropped, and non-finite twists never go out.
#[test]
fn outlet_never_blocks_and_accounts_for_every_command() {
    if !inside_private_netns("outlet_never_blocks_and_accounts_for_every_command") {
        return;
    }
    let cfg = DdsConfig {
        cmd_queue: 4,
        ..DdsConfig::default()
    };
    let bridge = DdsBridge::start(cfg, LocalBus::new()).expect("bridge");
    let out = bridge.outlet();
    const BURST: u64 = 10_000;
    let mut accepted = 0u64;
    for i in 0..BURST {
        if out.cmd_vel(Twist {
            linear: i as f64 * 1e-6,
            angular: 0.0,
        }) {
            accepted += 1;
        }
    }
    assert!(!out.cmd_vel(Twist {
        linear: f64::NAN,
        angular: 0.0
    }));
    assert!(!out.cmd_vel(Twist {
        linear: 0.0,
        angular: f64::INFINITY
    }));
    out.set_drowsiness(f32::NAN); // ignored, not published
    let end = Instant::now() + Duration::from_secs(10);
    let mut s = bridge.stats();
    while s.cmd_vel_published < accepted && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
        s = bridge.stats();
    }
    println!(
        "outlet burst of {BURST}: {accepted} accepted and published, {} dropped (queue 4)",
        s.cmd_vel_dropped
    );
    assert!(accepted >= 4, "the queue accepted at least its depth");
    assert_eq!(s.cmd_vel_published, accepted);
    assert_eq!(s.cmd_vel_dropped, BURST - accepted + 2);
    assert_eq!(s.publish_errors, 0);
}
