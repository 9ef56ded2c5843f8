//! The simulator end to end: lockstep runs are deterministic for a seed, leave a full report
//! whose MCAP replays, the whole brain (regions + integrator) drives the MuJoCo robot, overload
//! shows up as missed ticks and drowsiness, eval aggregates, and bad input is one clear error.

use brainloop::body::RobotParams;
use brainloop::config::Config;
use brainloop::experiment::episode::{run_episode, run_eval, BrainKind, EpisodeOptions};
use brainloop::report::mcap::{replay, ReplayOptions};
use brainloop::report::Summary;
use brainloop::sim::camera::SimCamera;
use brainloop::sim::mujoco::MujocoBody;
use brainloop::sim::scenario::Scenario;
use std::path::Path;
use std::process::Command;

fn scenario(name: &str) -> Scenario {
    Scenario::find(Path::new("scenarios"), name).unwrap()
}

fn deterministic(s: &Summary) -> Summary {
    Summary {
        wall_time_s: 0.0,
        realtime_factor: 0.0,
        ..s.clone()
    }
}

fn run(s: &Scenario, opts: &EpisodeOptions) -> Summary {
    run_episode(
        &Config::default(),
        &RobotParams::load_default(),
        s,
        opts,
        &mut |_| {},
    )
    .unwrap()
}

// Every run that renders the camera lives in this one test: one OpenGL context at a time.
#[test]
fn camera_runs_are_deterministic_report_fully_and_replay() {
    let s = scenario("01-red-ball");
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let opts = |d: &Path| EpisodeOptions {
        seed: Some(7),
        seconds: Some(12.0),
        brain: BrainKind::Pilot,
        report_dir: Some(d.to_path_buf()),
        ..Default::default()
    };
    let a = run(&s, &opts(&a_dir));
    let b = run(&s, &opts(&b_dir));
    assert_eq!(deterministic(&a), deterministic(&b));
    assert!(a.camera_frames > 0 && a.ticks > 0);
    assert_eq!(
        a.link_frames_sent, a.ticks,
        "every tick's command crossed the wire"
    );
    let text = |p: &Path| std::fs::read_to_string(p).unwrap();
    let strip = |t: String| {
        t.lines()
            .filter(|l| !l.contains("wall_time_s") && !l.contains("realtime_factor"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip(text(&a_dir.join("summary.json"))),
        strip(text(&b_dir.join("summary.json")))
    );
    for f in [
        "summary.json",
        "trajectory.png",
        "loop.png",
        "run.mcap",
        "timing.json",
    ] {
        let len = std::fs::metadata(a_dir.join(f))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 0, "{f} missing or empty");
    }
    let frames = std::fs::read_dir(&a_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .map(|e| e.file_name().to_string_lossy().starts_with("camera_"))
                .unwrap_or(false)
        })
        .count();
    assert!(frames >= 2, "camera frames in the report: {frames}");
    let mut out = Vec::new();
    let counts = replay(&a_dir.join("run.mcap"), &ReplayOptions::default(), &mut out).unwrap();
    assert_eq!(counts["/brain/tick"], a.ticks);
    assert_eq!(counts["/body/state"], a.ticks);
    assert!(counts["/camera/image"] >= 1);

    // Segmentation: with the red ball straight ahead, the pixels at the image centre show it.
    let ahead = Scenario::parse(
        "instruction = \"go to the red ball\"\ntime_limit_s = 5\n[goal]\nobject = \"red ball\"\n\
         [arena]\nstart = [-1.0, 0.0, 0.0]\ngoal_at = [-0.2, 0.0]\n",
        "t",
        "t",
    )
    .unwrap()
    .layout(1)
    .unwrap();
    let p = RobotParams::load_default();
    let mut body = MujocoBody::new(p.clone(), &ahead).unwrap();
    let mut cam = SimCamera::new(&body, p.camera_width, p.camera_height).unwrap();
    let seg = cam.render_segmentation(&mut body).unwrap();
    let rgb = cam.render_rgb(&mut body).unwrap();
    let (w, h) = (seg.width as usize, seg.height as usize);
    let centre = (h / 2) * w + w / 2;
    let g = seg.geom[centre];
    assert!(g >= 0, "centre pixel shows nothing");
    assert_eq!(body.object_of_geom(g as usize), Some(ahead.goal_index));
    let px = &rgb.data[centre * 3..centre * 3 + 3];
    assert!(
        px[0] > 120 && px[1] < 80 && px[2] < 80,
        "centre pixel {px:?} is not red"
    );
    let ball_pixels = seg
        .geom
        .iter()
        .filter(|&&id| id >= 0 && body.object_of_geom(id as usize) == Some(0))
        .count();
    assert!(ball_pixels > 200 && ball_pixels < w * h, "{ball_pixels}");
    drop(cam);

    // A different seed is a different world.
    let c = run(
        &s,
        &EpisodeOptions {
            seed: Some(8),
            report_dir: None,
            ..opts(&a_dir)
        },
    );
    assert_ne!(deterministic(&a), deterministic(&c));

    // The whole brain: all four regions feed the integrator, which drives through the board.
    let whole = EpisodeOptions {
        seed: Some(7),
        seconds: Some(3.0),
        brain: BrainKind::Integrator,
        ..Default::default()
    };
    let x = run(&s, &whole);
    let y = run(&s, &whole);
    assert_eq!(deterministic(&x), deterministic(&y));
    assert!(x
        .brain
        .starts_with("integrator[vision,language,audition,proprioception]"));
    assert_eq!(x.ticks, 151, "{x:?}");
    assert_eq!(x.link_frames_sent, x.ticks, "{x:?}");
    assert!(x.camera_frames >= 30, "{x:?}");
}

#[test]
fn overload_shows_up_as_missed_ticks_and_drowsiness() {
    let s = scenario("01-red-ball");
    let base = EpisodeOptions {
        seconds: Some(4.0),
        camera: false,
        brain: BrainKind::Integrator,
        ..Default::default()
    };
    let calm = run(&s, &base);
    assert_eq!(calm.missed_ticks, 0);
    let stressed = run(
        &s,
        &EpisodeOptions {
            stress_ms: 30.0,
            ..base.clone()
        },
    );
    assert!(stressed.missed_ticks > 0, "{stressed:?}");
    assert!(
        stressed.drowsiness_max > calm.drowsiness_max,
        "{stressed:?}"
    );
    assert!(stressed.ticks < calm.ticks);
}

#[test]
fn eval_aggregates_per_scenario_and_overall() {
    let scenarios = vec![
        scenario("01-red-ball"),
        scenario("03-green-cylinder-obstacles"),
    ];
    let opts = EpisodeOptions {
        seconds: Some(3.0),
        camera: false,
        brain: BrainKind::Pilot,
        ..Default::default()
    };
    let mut n = 0;
    let r = run_eval(
        &Config::default(),
        &RobotParams::load_default(),
        &scenarios,
        2,
        &opts,
        &mut |_, _, _| n += 1,
    )
    .unwrap();
    assert_eq!(n, 4);
    let j = serde_json::to_value(&r).unwrap();
    for key in ["success_rate", "collisions", "mean_time_s", "spl"] {
        assert!(j["overall"].get(key).is_some(), "overall.{key}");
        assert!(j["scenarios"]["01-red-ball"].get(key).is_some(), "{key}");
    }
    assert_eq!(r.overall.episodes, 4);
    assert!(r.overall.success_rate >= 0.0 && r.overall.success_rate <= 1.0);
}

#[test]
fn bad_input_is_one_clear_error() {
    let e = Scenario::find(Path::new("scenarios"), "no-such-scenario")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown scenario `no-such-scenario`") && e.contains("01-red-ball"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "instruction = \"go\"\ntime_limit_s = \"soon\"\n").unwrap();
    let e = Scenario::load(&bad).unwrap_err().to_string();
    assert!(
        e.starts_with("malformed scenario") && !e.contains('\n'),
        "{e}"
    );
    let walled = dir.path().join("walled.toml");
    std::fs::write(
        &walled,
        "instruction = \"go to the red ball\"\ntime_limit_s = 10\n[goal]\nobject = \"red ball\"\n\
         [arena]\nstart = [-1.5, 0.0, 0.0]\ngoal_at = [1.5, 0.0]\nwalls = [[0.0, 0.0, 0.05, 2.0]]\n",
    )
    .unwrap();
    let e = run_episode(
        &Config::default(),
        &RobotParams::load_default(),
        &Scenario::load(&walled).unwrap(),
        &EpisodeOptions::default(),
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("unreachable goal"), "{e}");

    // Through the command line: exit 1, one line, no panic.
    let bin = env!("CARGO_BIN_EXE_brainloop");
    for args in [
        vec!["sim", "--scenario", "no-such-scenario"],
        vec!["sim", "--scenario", walled.to_str().unwrap(), "--no-camera"],
        vec!["sim", "--scenario", bad.to_str().unwrap()],
        vec!["sim", "--seconds=-3", "--no-camera", "--brain", "pilot"],
        vec!["replay", "/nonexistent.mcap"],
    ] {
        let out = Command::new(bin).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
