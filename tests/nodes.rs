//! `brainloop up` as a user runs it: the graph as processes on the zenoh bus (TCP loopback,
//! multicast off: nothing leaves this machine). A region killed mid-run is restarted by the
//! supervisor and is back on the bus within 3 s; Ctrl-C stops every process it started.

use brainloop::bus::rmw_zenoh::Attachment;
use brainloop::bus::zenoh::{ZenohBus, ZenohOptions};
use brainloop::msg::RegionId;
use brainloop::util::monotonic_ns;
use std::process::{Command, Stdio};

mod up_common;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use up_common::{children, free_port, Up};
use zenoh::Wait;

const BIN: &str = env!("CARGO_BIN_EXE_brainloop");

/// A zenoh peer connected to `ep`, as any tool watching the brain would be.
fn watch(ep: &str) -> ZenohBus {
    let o = ZenohOptions {
        connect: vec![ep.to_string()],
        ..Default::default()
    };
    ZenohBus::open(&o, "test", monotonic_ns).unwrap()
}

#[test]
fn a_killed_region_is_restarted_and_back_on_the_bus_within_3_s() {
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let up = Up(Command::new(BIN)
        .args(["up", "--body", "kinematic", "--listen", &ep])
        .args(["--instruction", "go to the red ball"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    // Watch the proprioception region's embeddings as any zenoh peer would.
    let watcher = watch(&ep);
    let seen: Arc<Mutex<Vec<(u64, brainloop::bus::rmw_zenoh::Gid)>>> = Arc::default();
    let s2 = seen.clone();
    let _sub = watcher
        .session()
        .declare_subscriber(watcher.keys().embedding(RegionId::Proprioception))
        .callback(move |sample| {
            if let Some(a) = sample.attachment() {
                if let Ok(a) = Attachment::decode(&a.to_bytes()) {
                    s2.lock().unwrap().push((monotonic_ns(), a.gid));
                }
            }
        })
        .wait()
        .unwrap();
    let wait_for = |n: usize, secs: u64| {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end && seen.lock().unwrap().len() < n {
            std::thread::sleep(Duration::from_millis(20));
        }
        seen.lock().unwrap().len() >= n
    };
    assert!(wait_for(20, 60), "no proprioception embeddings on the bus");
    let kids = children(up.0.id());
    let names: Vec<_> = kids.iter().map(|k| k.1.clone()).collect();
    assert!(
        kids.len() >= 3 && kids.iter().all(|k| k.1.contains(" node ")),
        "{names:?}"
    );
    let (pid, _) = kids
        .iter()
        .find(|k| k.1.contains("node proprioception"))
        .unwrap()
        .clone();
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    let killed_at = monotonic_ns();
    let old_gid = seen.lock().unwrap().last().unwrap().1;
    // Back: a new publisher (new GID) on the same key.
    let end = Instant::now() + Duration::from_secs(10);
    let mut back = None;
    while Instant::now() < end && back.is_none() {
        back = seen
            .lock()
            .unwrap()
            .iter()
            .find(|(t, g)| *t > killed_at && *g != old_gid)
            .map(|(t, _)| *t);
        std::thread::sleep(Duration::from_millis(10));
    }
    let back = back.expect("the region did not come back within 10 s");
    let gap_s = (back - killed_at) as f64 * 1e-9;
    println!("proprioception back on the bus {gap_s:.2} s after SIGKILL");
    assert!(gap_s < 3.0, "back after {gap_s:.2} s");
    // The other nodes were not restarted.
    let after = children(up.0.id());
    for (p, cmd) in &kids {
        if *p != pid {
            assert!(after.iter().any(|a| a.0 == *p), "{cmd} was restarted");
        }
    }
    // Ctrl-C stops exactly what up started.
    let all: Vec<u32> = after.iter().map(|a| a.0).collect();
    drop(up);
    std::thread::sleep(Duration::from_millis(200));
    for p in all {
        let alive = std::fs::metadata(format!("/proc/{p}")).is_ok()
            && !std::fs::read_to_string(format!("/proc/{p}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "node {p} outlived up");
    }
}

/// `up --body sim`: the simulated robot, vision, language and proprioception each in its own
/// process. Vision is killed while the robot searches; it is restarted and fresh again in the
/// integrator's health within 3 s, and the robot still reaches the red ball.
#[test]
fn up_with_the_simulated_body_reaches_the_goal_through_a_vision_restart() {
    use brainloop::bus::wire::LoopHealthMsg;
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let out = tempfile::NamedTempFile::new().unwrap();
    let up = Up(Command::new(BIN)
        .args([
            "up",
            "--body",
            "sim",
            "--scenario",
            "01-red-ball",
            "--seconds",
            "40",
        ])
        .args(["--listen", &ep])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(out.reopen().unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let watcher = watch(&ep);
    // (receive time, vision fresh?) from every health message.
    let health: Arc<Mutex<Vec<(u64, bool)>>> = Arc::default();
    let h2 = health.clone();
    let _sub = watcher
        .session()
        .declare_subscriber(
            watcher
                .keys()
                .key(&brainloop::bus::zenoh::net_topics::HEALTH),
        )
        .callback(move |s| {
            if let Ok(m) = LoopHealthMsg::from_cdr(&s.payload().to_bytes()) {
                if let Some(v) = m.regions.iter().find(|r| r.region == "vision") {
                    h2.lock().unwrap().push((monotonic_ns(), v.fresh));
                }
            }
        })
        .wait()
        .unwrap();
    let fresh_since = |t: u64| {
        health
            .lock()
            .unwrap()
            .iter()
            .find(|(at, fresh)| *at > t && *fresh)
            .map(|x| x.0)
    };
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end && fresh_since(0).is_none() {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(fresh_since(0).is_some(), "vision never fresh in the health");
    let kids = children(up.0.id());
    let (pid, _) = kids
        .iter()
        .find(|k| k.1.contains("node vision"))
        .expect("a vision node")
        .clone();
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    let killed = monotonic_ns();
    // Restarted (a new vision process), then fresh again in the integrator's health. Whether a
    // stale report falls in between depends on how the restart compares with vision's 500 ms
    // timeout: a region back within its timeout is rightly never stale.
    let end = Instant::now() + Duration::from_secs(10);
    let mut restarted = None;
    while Instant::now() < end && restarted.is_none() {
        restarted = children(up.0.id())
            .iter()
            .find(|k| k.1.contains("node vision") && k.0 != pid)
            .map(|_| monotonic_ns());
        std::thread::sleep(Duration::from_millis(20));
    }
    let restarted = restarted.expect("vision was not restarted within 10 s");
    let end = Instant::now() + Duration::from_secs(10);
    let mut back_at = None;
    while Instant::now() < end && back_at.is_none() {
        back_at = fresh_since(restarted);
        std::thread::sleep(Duration::from_millis(50));
    }
    let stale_at = health
        .lock()
        .unwrap()
        .iter()
        .find(|(t, f)| *t > killed && !*f)
        .map(|x| x.0);
    let back = back_at.expect("vision not fresh again within 10 s of its restart") - killed;
    match stale_at {
        Some(t) => println!(
            "vision stale {:.2} s after SIGKILL, restarted after {:.2} s, fresh again after {:.2} s",
            (t - killed) as f64 * 1e-9,
            (restarted - killed) as f64 * 1e-9,
            back as f64 * 1e-9
        ),
        None => println!(
            "vision restarted {:.2} s after SIGKILL, fresh again {:.2} s after it, never stale",
            (restarted - killed) as f64 * 1e-9,
            back as f64 * 1e-9
        ),
    }
    assert!(back < 3_000_000_000, "fresh again after {back} ns");
    // The run goes on to its end; the body node's summary says whether the goal was reached.
    let mut up = up;
    let end = Instant::now() + Duration::from_secs(90);
    while Instant::now() < end {
        if let Ok(Some(_)) = up.0.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = std::fs::read_to_string(out.path()).unwrap();
    let body = text
        .lines()
        .find_map(|l| l.strip_prefix("[body] "))
        .expect("the body node's summary");
    let s: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(s["success"], true, "{s}");
    assert_eq!(s["collisions"], 0, "{s}");
}

/// The simulated body's node stops the wheels by itself when setpoints stop coming (a killed
/// integrator): the simulated board's 250 ms watchdog, as the firmware's.
#[test]
fn the_body_node_stops_the_wheels_when_setpoints_stop() {
    use brainloop::bus::zenoh::{net_topics, Wire};
    use brainloop::msg::{BodyState, WheelSpeeds};
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let brain = ZenohBus::open(
        &ZenohOptions {
            listen: vec![ep.clone()],
            ..Default::default()
        },
        "integrator",
        monotonic_ns,
    )
    .unwrap();
    let body = Up(Command::new(BIN)
        .args([
            "node",
            "body",
            "--scenario",
            "01-red-ball",
            "--seconds",
            "30",
        ])
        .args(["--connect", &ep])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let states: Arc<Mutex<Vec<(u64, BodyState)>>> = Arc::default();
    let s2 = states.clone();
    brain
        .subscribe_with(net_topics::BODY_STATE, move |s: BodyState| {
            s2.lock().unwrap().push((monotonic_ns(), s))
        })
        .unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end && states.lock().unwrap().is_empty() {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !states.lock().unwrap().is_empty(),
        "no body state from the body node"
    );
    let mut wheels = brain.publisher(&net_topics::WHEELS).unwrap();
    let mut buf = Vec::new();
    WheelSpeeds {
        left: 8.0,
        right: 8.0,
    }
    .encode(&mut buf);
    for _ in 0..100 {
        wheels.put(&buf);
        std::thread::sleep(Duration::from_millis(20));
    }
    let last = monotonic_ns();
    std::thread::sleep(Duration::from_millis(800));
    let st = states.lock().unwrap().clone();
    let speed = |s: &BodyState| s.wheel_speed[0].abs().max(s.wheel_speed[1].abs());
    let driving = st.iter().filter(|(t, _)| *t < last).map(|x| speed(&x.1));
    assert!(
        driving.fold(0.0, f64::max) > 5.0,
        "the setpoints never drove the wheels"
    );
    let stopped = st
        .iter()
        .find(|(t, s)| *t > last && speed(s) < 0.1)
        .map(|x| (x.0 - last) as f64 * 1e-9)
        .expect("the wheels did not stop after the setpoints stopped");
    println!("wheels stopped {stopped:.2} s after the last setpoint");
    assert!(stopped < 0.5, "stopped after {stopped:.2} s");
    drop(body);
}
