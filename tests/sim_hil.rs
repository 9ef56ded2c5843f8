//! `brainloop sim --hil`: the real firmware on the emulated ATmega328P between the brain and the
//! MuJoCo wheels. Lockstep episodes run through it deterministically with frames exchanged both
//! ways and the wheels turning; the firmware's own watchdog and e-stop stop the simulated robot.
//! Skipped (with the reason printed) only when the firmware build is missing; `make test` builds
//! it first (`make -C firmware all sim`).

use brainloop::body::{Body, RobotParams, SimulatedBody};
use brainloop::config::Config;
use brainloop::experiment::episode::{run_episode, BrainKind, EpisodeOptions};
use brainloop::link::codec::fault;
use brainloop::msg::Twist;
use brainloop::report::mcap::{replay, ReplayOptions};
use brainloop::report::Summary;
use brainloop::sim::bodies::Board;
use brainloop::sim::hil::{HilBoard, BOARD_LIB, FIRMWARE_ELF};
use brainloop::sim::mujoco::MujocoBody;
use brainloop::sim::scenario::Scenario;
use std::path::{Path, PathBuf};

fn firmware() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware/build");
    if dir.join(BOARD_LIB).is_file() && dir.join(FIRMWARE_ELF).is_file() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} lacks {BOARD_LIB} / {FIRMWARE_ELF}: build them with `make -C firmware all sim`",
            dir.display()
        );
        None
    }
}

fn episode(dir: &Path, report: &Path) -> Summary {
    let s = Scenario::find(Path::new("scenarios"), "01-red-ball").unwrap();
    let opts = EpisodeOptions {
        seed: Some(2),
        seconds: Some(3.0),
        camera: false,
        brain: BrainKind::Pilot,
        board: Board::Firmware(Some(dir.to_path_buf())),
        report_dir: Some(report.to_path_buf()),
        ..Default::default()
    };
    run_episode(
        &Config::default(),
        &RobotParams::load_default(),
        &s,
        &opts,
        &mut |_| {},
    )
    .unwrap()
}

#[test]
fn lockstep_episode_through_the_real_firmware() {
    let Some(dir) = firmware() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let a = episode(&dir, &tmp.path().join("a"));
    let b = episode(&dir, &tmp.path().join("b"));
    let strip = |s: &Summary| Summary {
        wall_time_s: 0.0,
        realtime_factor: 0.0,
        ..s.clone()
    };
    assert_eq!(strip(&a), strip(&b), "lockstep HIL is deterministic");
    assert!(a.body.contains("firmware"), "{}", a.body);
    // Every tick's command went to the firmware; its telemetry (100 Hz) came back.
    assert_eq!(a.link_frames_sent, a.ticks);
    assert!(a.link_frames_received >= 290, "{a:?}");
    // The wheels turned: the encoder counts the brain last saw (from the firmware's telemetry)
    // are far from zero (the blind pilot spins in place searching).
    let mut out = Vec::new();
    replay(
        &tmp.path().join("a/run.mcap"),
        &ReplayOptions {
            topics: vec!["/body/state".into()],
            speed: 0.0,
            summary_only: false,
        },
        &mut out,
    )
    .unwrap();
    let last = String::from_utf8(out).unwrap();
    let last = last.lines().last().unwrap().to_string();
    let v: serde_json::Value = serde_json::from_str(&last).unwrap();
    let state = v["msg"].clone();
    let enc = state["encoder_ticks"].as_array().expect(&last);
    let (l, r) = (enc[0].as_i64().unwrap(), enc[1].as_i64().unwrap());
    assert!(
        l.abs() > 500 && r.abs() > 500 && l.signum() != r.signum(),
        "{last}"
    );
}

#[test]
fn firmware_watchdog_and_estop_stop_the_simulated_wheels() {
    let Some(dir) = firmware() else { return };
    let p = RobotParams::load_default();
    let s = Scenario::find(Path::new("scenarios"), "01-red-ball").unwrap();
    let layout = s.layout(s.seed).unwrap();
    let mut b = HilBoard::new(
        MujocoBody::new(p.clone(), &layout).unwrap(),
        p.clone(),
        &dir,
    )
    .unwrap();
    let forward = p.twist_to_wheels(Twist {
        linear: 0.2,
        angular: 0.0,
    });
    // Commanded at 50 Hz for 1 s: the wheels reach the setpoint.
    for k in 0..500 {
        if k % 10 == 0 {
            b.command(forward).unwrap();
        }
        b.advance(0.002);
    }
    let st = b.state();
    assert!((st.wheel_speed[0] - forward.left).abs() < 0.5, "{st:?}");
    assert_eq!(st.faults & fault::CMD_TIMEOUT, 0);
    let moving = b.inner().state().wheel_speed;
    assert!(
        moving[0] > 4.0 && moving[1] > 4.0,
        "MuJoCo wheels {moving:?}"
    );
    // Commands stop: the firmware's 250 ms watchdog zeroes its PWM and the wheels stop.
    for _ in 0..300 {
        b.advance(0.002);
    }
    let st = b.state();
    assert_ne!(st.faults & fault::CMD_TIMEOUT, 0, "{st:?}");
    assert!(
        b.board().wheel_speed(0).abs() < 0.05,
        "{}",
        b.board().wheel_speed(0)
    );
    let (x0, _, _) = b.ground_truth_pose();
    for _ in 0..250 {
        b.advance(0.002);
    }
    assert!(
        (b.ground_truth_pose().0 - x0).abs() < 0.005,
        "robot still rolling"
    );
    assert!(b.inner().state().wheel_speed[0].abs() < 0.2);
    // Moving again, then the e-stop: latched by the firmware, commands refused, wheels stop.
    for k in 0..250 {
        if k % 10 == 0 {
            b.command(forward).unwrap();
        }
        b.advance(0.002);
    }
    assert!(b.board().wheel_speed(0) > 4.0);
    b.estop();
    for k in 0..250 {
        if k % 10 == 0 {
            let _ = b.command(forward);
        }
        b.advance(0.002);
    }
    let st = b.state();
    assert!(st.estop && st.faults & fault::ESTOP != 0, "{st:?}");
    assert!(b.command(forward).is_err());
    assert!(b.board().wheel_speed(0).abs() < 0.05);
    assert!(!b.crashed());
    let stats = b.link_stats();
    assert_eq!(stats.crc_errors + stats.decode_errors, 0, "{stats:?}");
}
