//! Hostile or careless input on the command line and by signal: every numeric option is finite
//! and bounded where it is read, with an error naming the option; an empty instruction is
//! refused; `sim` (lockstep and `--realtime`) stops on SIGINT / SIGTERM with its summary written
//! and its recording closed, `eval` with the figures of the episodes that finished, a benchmark
//! with its helper processes stopped; `replay` fails on a corrupted recording.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn brainloop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brainloop"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run brainloop")
}

/// `args` fail (without starting anything) with an error that names `option`.
fn refused(args: &[&str], option: &str) {
    let out = brainloop(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} was accepted: {err}");
    assert!(
        err.contains(option),
        "{args:?}: the error does not name {option}: {err}"
    );
}

#[test]
fn non_finite_and_out_of_range_numbers_are_refused_naming_the_option() {
    for v in ["nan", "NaN", "inf", "-inf", "1e999"] {
        let o = |name: &str| format!("{name}={v}");
        refused(
            &["run", "--body", "kinematic", &o("--seconds")],
            "--seconds",
        );
        refused(&["sim", &o("--seconds")], "--seconds");
        refused(&["sim", &o("--extra-compute-ms")], "--extra-compute-ms");
        refused(&["bench", "loop", &o("--seconds")], "--seconds");
        refused(&["bench", "loop", &o("--rate")], "--rate");
        refused(&["console", &o("--rate")], "--rate");
        refused(&["replay", "x.mcap", &o("--speed")], "--speed");
        refused(&["soak", &o("--minutes")], "--minutes");
    }
    refused(&["run", "--body", "kinematic", "--seconds=-1"], "--seconds");
    refused(&["sim", "--extra-compute-ms=-5"], "--extra-compute-ms");
    refused(&["sim", "--stress", "100000"], "--stress");
    refused(&["bench", "loop", "--stress", "64"], "--stress");
}

#[test]
fn an_empty_instruction_is_refused_on_the_command_line() {
    for v in ["", "   ", "\t"] {
        refused(
            &["run", "--body", "kinematic", "--instruction", v],
            "--instruction",
        );
        refused(&["sim", "--instruction", v], "--instruction");
    }
}

/// The library refuses a non-finite extra compute naming the option the user typed.
#[test]
fn the_episode_names_extra_compute_ms_for_a_bad_extra_compute() {
    use brainloop::experiment::episode::{run_episode, EpisodeOptions};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let scenario = brainloop::sim::scenario::Scenario::find(&dir, "01-red-ball").unwrap();
    let opts = EpisodeOptions {
        stress_ms: f64::NAN,
        physics: brainloop::sim::bodies::Physics::Kinematic,
        ..Default::default()
    };
    let e = run_episode(
        &brainloop::config::Config::default(),
        &brainloop::body::RobotParams::load_default(),
        &scenario,
        &opts,
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("--extra-compute-ms") && !e.contains("--stress"),
        "{e}"
    );
}

/// Start `sim` with `extra`, wait until it is recording, send `signal` to exactly that
/// process, and check the run ended cleanly: exit 0, a summary that says it was interrupted, a
/// finished recording that plays back.
fn sim_stops_cleanly_on(signal: i32, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r");
    let mut args = vec![
        "sim",
        "--body",
        "kinematic",
        "--seconds",
        "3000",
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let child = Command::new(env!("CARGO_BIN_EXE_brainloop"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn brainloop sim");
    let pid = child.id() as i32;
    // Running once the recording has its first chunk on disk (or a minute has passed).
    let mcap = report.join("run.mcap");
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end && std::fs::metadata(&mcap).map_or(true, |m| m.len() == 0) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: plain syscall on the pid of the child this test started.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    let out = child.wait_with_output().expect("sim exits");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {err}", out.status);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("summary.json")).expect("summary.json"))
            .expect("summary.json parses");
    assert_eq!(summary["outcome"], "interrupted", "{summary}");
    let r = brainloop::report::mcap::read_recoverable(&mcap).expect("run.mcap reads");
    assert!(r.truncated.is_none(), "run.mcap was not finished: {r:?}");
    assert!(
        r.counts.get("/brain/tick").copied().unwrap_or(0) > 0,
        "{r:?}"
    );
}

#[test]
fn sim_stops_on_sigint_with_its_summary_and_a_finished_recording() {
    sim_stops_cleanly_on(libc::SIGINT, &[]);
}

#[test]
fn sim_realtime_stops_on_sigterm_with_its_summary_and_a_finished_recording() {
    sim_stops_cleanly_on(libc::SIGTERM, &["--realtime"]);
}

/// `replay` of a recording with a flipped payload byte exits non-zero with a clear message
/// instead of printing `"msg": null` and exiting 0.
#[test]
fn replay_fails_on_a_corrupted_recording() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.mcap");
    let mut r = brainloop::report::mcap::Recorder::create(&p).unwrap();
    for i in 0..20u64 {
        r.record(
            "/a",
            i,
            &serde_json::json!({"value": i, "pad": "0123456789"}),
        )
        .unwrap();
    }
    r.finish().unwrap();
    let mut bytes = std::fs::read(&p).unwrap();
    let at = bytes.windows(10).position(|w| w == b"0123456789").unwrap();
    bytes[at] = b'}';
    std::fs::write(&p, &bytes).unwrap();
    let out = brainloop(&["replay", p.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err.contains("corrupted"), "{err}");
}

#[test]
fn a_second_run_into_the_same_report_is_refused_unless_overwrite() {
    let dir = std::env::temp_dir().join(format!("brainloop-report-twice-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().expect("utf-8 temp dir");
    let sim = |extra: &[&str]| {
        let mut a = vec![
            "sim",
            "--body",
            "kinematic",
            "--seconds",
            "0.5",
            "--report",
            d,
        ];
        a.extend_from_slice(extra);
        brainloop(&a)
    };
    let first = sim(&[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let summary = std::fs::read(dir.join("summary.json")).expect("the first run's summary");
    let second = sim(&[]);
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second run was accepted");
    assert!(
        err.contains("--overwrite"),
        "the error does not say what to do: {err}"
    );
    assert_eq!(
        std::fs::read(dir.join("summary.json")).expect("summary kept"),
        summary,
        "the refused run touched the first report"
    );
    let third = sim(&["--overwrite"]);
    assert!(
        third.status.success(),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Start `brainloop args`, wait until `ready(pid)` (at most a minute), send SIGTERM to exactly that process; returns its output
/// and the pids of its children at the moment of the signal.
fn terminate_after(args: &[&str], ready: impl Fn(i32) -> bool) -> (Output, Vec<i32>) {
    let child = Command::new(env!("CARGO_BIN_EXE_brainloop"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn brainloop");
    let pid = child.id() as i32;
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end && !ready(pid) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let kids = children_of(pid);
    // SAFETY: plain syscall on the pid of the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let t = Instant::now();
    let out = child.wait_with_output().expect("exits");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "{args:?} took {:?} to stop after SIGTERM",
        t.elapsed()
    );
    (out, kids)
}

/// The pids of `pid`'s children (every thread's).
fn children_of(pid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
    {
        let Ok(t) = t else { continue };
        let s = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        v.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
    }
    v
}

/// `eval` on SIGTERM stops the episode under way, leaves it out, and prints the figures of the
/// episodes that finished, marked `interrupted` (before, the whole table was lost).
#[test]
fn eval_stops_on_sigterm_with_the_figures_of_the_finished_episodes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/01-red-ball.toml"),
        dir.path().join("01-red-ball.toml"),
    )
    .unwrap();
    let started = Instant::now();
    let (out, _) = terminate_after(
        &[
            "eval",
            "--scenarios",
            dir.path().to_str().unwrap(),
            "--episodes",
            "100000",
            "--body",
            "kinematic",
            "--json",
        ],
        |_| started.elapsed() > Duration::from_secs(4),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {err}", out.status);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
    assert_eq!(r["interrupted"], true, "{r}");
    let rows = r["episodes"].as_array().expect("episodes").len();
    assert!(rows < 100000);
    assert_eq!(r["overall"]["episodes"], rows, "{r}");
    for e in r["episodes"].as_array().unwrap() {
        assert_ne!(
            e["outcome"], "interrupted",
            "a cut-short episode was counted: {e}"
        );
    }
}

/// A benchmark on SIGTERM stops its helper processes (here the Python worker of `bench
/// regions`) by pid, says it gave no figures, and exits 130; none is left behind.
#[test]
fn bench_stops_its_helper_processes_on_sigterm() {
    let (out, kids) = terminate_after(&["bench", "regions", "--iters", "1000000"], |pid| {
        !children_of(pid).is_empty()
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(!kids.is_empty(), "no helper process was started: {err}");
    let end = Instant::now() + Duration::from_secs(5);
    for k in kids {
        // Reaped by brainloop or, once it exited, by init: either way it is gone.
        while Instant::now() < end && Path::new(&format!("/proc/{k}")).exists() {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            !Path::new(&format!("/proc/{k}")).exists(),
            "helper {k} outlived the bench"
        );
    }
}
