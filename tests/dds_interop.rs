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
            .args([
                "--rate",
                "200",
                "--timeout",
                "30",
                "--linger",
                "0.5",
                "--stamped",
            ])
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
    // Cyclone -> brainloop: wait (bounded) for the peer's e-stop (its `false` after it must
    // never clear anything).
    let end = Instant::now() + Duration::from_secs(15);
    while !remote.contains(&TeleopCommand::Estop) && Instant::now() < end {
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
        [&TeleopCommand::Estop],
        "e-stop latched; the `false` after it cleared nothing"
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
        (instr.len() as u64, N_TELEOP as u64, 1)
    );

    println!(
        "DDS interop (Cyclone DDS {}): /cmd_vel {}/{N_CMD} at Cyclone, /brainloop/drowsiness {} \
         at Cyclone, /brainloop/instruction {}/{N_INSTR} at brainloop, teleop {}/{N_TELEOP}, \
         e-stop {}/1, shutdown zero twist seen {}, in {:.1} s",
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
        N_TELEOP + 1
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
    assert_eq!(
        teleop,
        N_TELEOP + 1,
        "teleop + the e-stop (its `false` is ignored) on bus"
    );
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

/// The Jazzy contract of the real executable, checked the way a ROS 2 user sees it: `brainloop
/// run --body kinematic --dds --ros-args -r __node:=brainloop` (what launch_ros starts), driven
/// by `scripts/ros2/jazzy_peer.py` on Cyclone DDS with the standard types only. TwistStamped
/// teleop moves `/odom`; `/tf`, `/joint_states` (the URDF's joint names), `/diagnostics`,
/// `/battery_state` and `~/drowsiness` arrive; bad teleop (non-finite, wrong frame, stale,
/// future, zero stamp) moves nothing and is counted per reason on `/diagnostics`; `/cmd_vel`
/// goes to zero on e-stop, stays there after a `false`, and is not published while the brain
/// is frozen; a reset signed with the operator key lets it drive again.
#[test]
fn jazzy_contract_of_the_running_brain() {
    if !inside_private_netns("jazzy_contract_of_the_running_brain") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("brainloop-jazzy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_path = dir.join("operator.key");
    let key = brainloop::teleop::auth::OperatorKey::load_or_create(&key_path).expect("key");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut brain = Command::new(env!("CARGO_BIN_EXE_brainloop"))
        .current_dir(root)
        .args([
            "run",
            "--body",
            "kinematic",
            "--dds",
            "--no-console",
            "--seconds",
            "60",
        ])
        .args([
            "--ros-args",
            "-r",
            "__node:=brainloop",
            "-p",
            "use_sim_time:=false",
        ])
        .env("BRAINLOOP_OPERATOR_KEY", &key_path)
        .env("BRAINLOOP_LOG", "info,rustdds=off")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("brain.log")).unwrap())
        .spawn()
        .expect("start brainloop run");
    let pid = brain.id() as i32;
    let mut peer = Command::new(python())
        .arg(root.join("scripts/ros2/jazzy_peer.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start jazzy_peer.py");
    let out = peer.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let next = |prefix: &str, within: Duration| -> String {
        let end = Instant::now() + within;
        loop {
            let l = lines
                .recv_timeout(end.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| {
                    let log = std::fs::read_to_string(dir.join("brain.log")).unwrap_or_default();
                    panic!("jazzy peer: no {prefix} line within {within:?}; brain log:\n{log}")
                });
            if let Some(rest) = l.strip_prefix(prefix) {
                return rest.trim().to_string();
            }
            eprintln!("peer: {l}");
        }
    };
    let ready: serde_json::Value =
        serde_json::from_str(&next("READY", Duration::from_secs(40))).unwrap();
    eprintln!("peer ready: {ready}");
    next("STALL", Duration::from_secs(30));
    // Freeze the whole brain for a second, as a hung process would be.
    let mono = brainloop::util::monotonic_ns;
    let t_stop = mono() as f64 * 1e-9;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    std::thread::sleep(Duration::from_millis(1000));
    let t_cont = mono() as f64 * 1e-9;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    let now = brainloop::util::wall_ns();
    let token = brainloop::teleop::auth::Signer::new(key).sign(
        brainloop::msg::OperatorCommand::Reset,
        now,
        now,
    );
    let stdin = peer.stdin.as_mut().unwrap();
    writeln!(
        stdin,
        "RESUMED {t_stop:.6} {t_cont:.6} {}",
        brainloop::robot::to_hex(&token)
    )
    .unwrap();
    stdin.flush().unwrap();
    let r: serde_json::Value =
        serde_json::from_str(&next("RESULT", Duration::from_secs(30))).unwrap();
    let _ = peer.wait();
    // Stop exactly the brain we started, by its id, and let it finish cleanly.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let status = brain.wait().unwrap();
    let log = std::fs::read_to_string(dir.join("brain.log")).unwrap_or_default();
    eprintln!("jazzy contract: {r}");
    let _ = std::fs::remove_dir_all(&dir);
    let m = &r["matched"];
    for k in m.as_object().unwrap().keys() {
        assert!(m[k].as_u64() >= Some(1), "{k} not matched: {m}\n{log}");
    }
    let c = &r["cmd_vel"];
    assert_eq!(c["frames"], serde_json::json!(["base_footprint"]), "{r}");
    assert!(c["drive"]["count"].as_u64() > Some(10), "{r}");
    assert!(
        c["drive"]["max_v"].as_f64() > Some(0.2),
        "teleop drove: {r}"
    );
    assert!(
        r["odom"]["drive_dx"].as_f64() > Some(0.2),
        "/odom moved: {r}"
    );
    assert_eq!(
        r["odom"]["frames"],
        serde_json::json!(["odom->base_footprint"])
    );
    assert!(
        r["tf"]
            .as_array()
            .unwrap()
            .contains(&"odom->base_footprint".into()),
        "{r}"
    );
    assert_eq!(
        r["joint_states"]["names"],
        serde_json::json!(["left_wheel_joint", "right_wheel_joint"])
    );
    // Bad input moves nothing and is counted, per reason.
    assert!(c["bad"]["count"].as_u64() > Some(5), "{r}");
    assert_eq!(c["bad"]["finite"], true);
    assert!(
        c["bad"]["max_abs_v"].as_f64() < Some(1e-9),
        "bad teleop moved the robot: {r}"
    );
    let b = &r["diagnostics"]["bridge"];
    for reason in [
        "non_finite",
        "wrong_frame",
        "stale_stamp",
        "future_stamp",
        "unstamped",
    ] {
        let n: u64 = b[format!("rejected_{reason}")]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(n >= 1, "rejected_{reason} not counted on /diagnostics: {b}");
    }
    let names = r["diagnostics"]["names"].as_array().unwrap();
    for n in [
        "brainloop: integrator",
        "brainloop: battery",
        "brainloop: ros bridge",
    ] {
        assert!(
            names.contains(&n.into()),
            "{n} missing from /diagnostics: {names:?}"
        );
    }
    // E-stop wins over teleop, and a `false` clears nothing.
    assert!(c["estop"]["count"].as_u64() > Some(5), "{r}");
    assert_eq!(
        c["estop"]["max_abs_v"].as_f64(),
        Some(0.0),
        "moved while e-stopped: {r}"
    );
    // A frozen brain goes quiet (the base's own timeout stops it), and speaks again after.
    assert!(c["stall"]["window_s"].as_f64() > Some(0.9), "{r}");
    assert_eq!(
        c["stall"]["count"], 0,
        "/cmd_vel published while frozen: {r}"
    );
    assert!(c["after"].as_u64() > Some(0), "{r}");
    // The signed reset clears the latch.
    assert!(
        c["reset"]["max_v"].as_f64() > Some(0.2),
        "drove after the signed reset: {r}\n{log}"
    );
    assert!(r["battery_state"]["count"].as_u64() >= Some(1), "{r}");
    assert!(r["drowsiness"]["count"].as_u64() >= Some(1), "{r}");
    assert!(
        status.success(),
        "brainloop run after SIGINT: {status}\n{log}"
    );
    println!(
        "Jazzy contract: /cmd_vel {} TwistStamped (drive max {:.2} m/s), /odom dx {:.2} m, \
         bad teleop max |v| {}, e-stop max |v| {}, stall {:.2} s with {} /cmd_vel, rejected {b}",
        c["count"],
        c["drive"]["max_v"].as_f64().unwrap_or(0.0),
        r["odom"]["drive_dx"].as_f64().unwrap_or(0.0),
        c["bad"]["max_abs_v"],
        c["estop"]["max_abs_v"],
        c["stall"]["window_s"].as_f64().unwrap_or(0.0),
        c["stall"]["count"]
    );
}

/// `brainloop run --dds --body ros2` on a ROS 2 base driver (`scripts/ros2/base_peer.py`, a
/// diff drive on Cyclone DDS publishing `/joint_states`, `/imu` and `/scan` with sensor-data
/// QoS and following `/cmd_vel`): TwistStamped teleop drives it; when the driver goes silent
/// the brain's body goes stale and `/cmd_vel` is zero; when it comes back the brain drives again.
#[test]
fn a_ros2_base_driver_is_the_body_and_a_silent_one_stops_the_robot() {
    if !inside_private_netns("a_ros2_base_driver_is_the_body_and_a_silent_one_stops_the_robot") {
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let robot = brainloop::body::RobotParams::load_default();
    let log = std::env::temp_dir().join(format!("brainloop-base-{}.log", std::process::id()));
    let mut brain = Command::new(env!("CARGO_BIN_EXE_brainloop"))
        .current_dir(root)
        .args([
            "run",
            "--dds",
            "--body",
            "ros2",
            "--no-console",
            "--seconds",
            "40",
        ])
        .args(["--ros-args", "-r", "__node:=brainloop"])
        .env("BRAINLOOP_LOG", "info,rustdds=off")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start brainloop run --body ros2");
    let out = Command::new(python())
        .arg(root.join("scripts/ros2/base_peer.py"))
        .args(["--wheel-radius", &robot.wheel_radius.to_string()])
        .args(["--wheel-separation", &robot.wheel_separation.to_string()])
        .output()
        .expect("run base_peer.py");
    unsafe { libc::kill(brain.id() as i32, libc::SIGINT) };
    let status = brain.wait().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let brain_log = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let r: serde_json::Value = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_else(|| panic!("base peer: no RESULT: {text}\n{brain_log}"));
    eprintln!("base driver: {r}");
    for (k, v) in r["matched"].as_object().unwrap() {
        assert!(v.as_u64() >= Some(1), "{k} not matched: {r}\n{brain_log}");
    }
    assert!(
        r["drive"]["max_v"].as_f64() > Some(0.2),
        "teleop drove the base: {r}\n{brain_log}"
    );
    assert!(r["travelled"]["drive"].as_f64() > Some(0.2), "{r}");
    assert!(r["silent"]["count"].as_u64() > Some(5), "{r}");
    assert_eq!(
        r["silent"]["max_v"].as_f64(),
        Some(0.0),
        "drove on a silent base driver: {r}"
    );
    assert!(
        r["back"]["max_v"].as_f64() > Some(0.2),
        "drove again: {r}\n{brain_log}"
    );
    // The vision region runs on the base's camera topic, and is fresh while frames come.
    assert_eq!(
        r["vision_level"]["back"], 0,
        "vision on /camera/image_raw: {r}\n{brain_log}"
    );
    assert!(status.success(), "{status}\n{brain_log}");
    println!(
        "ROS 2 base driver: drive max {:.2} m/s, silent driver: {} commands all zero, back: max {:.2} m/s",
        r["drive"]["max_v"].as_f64().unwrap_or(0.0),
        r["silent"]["count"],
        r["back"]["max_v"].as_f64().unwrap_or(0.0)
    );
}
