//! `brainloop run` end to end on the real-robot path: the binary, its console, the integrator's
//! motor stage and the serial link to the real firmware running on the emulated board behind a
//! pty. Teleop drives the wheels, the console e-stop stops them, and the run ends with a summary.

mod hil_common;
use brainloop::link::bench::BoardProcess;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn wait_for(board: &mut BoardProcess, what: &str, f: impl Fn([f64; 2]) -> bool) -> [f64; 2] {
    let end = Instant::now() + Duration::from_secs(6);
    let mut last = [0.0; 2];
    while Instant::now() < end {
        if let Ok(s) = board.status() {
            last = s.wheel;
            if f(s.wheel) {
                return last;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: wheels at {last:?}");
}

#[test]
fn run_on_the_emulated_board_obeys_teleop_and_estop() {
    hil_common::build_board();
    let dir = hil_common::firmware_dir().join("build");
    let mut board =
        BoardProcess::start(&dir.join("board-sim"), &dir.join("brainloop-fw.elf")).expect("board");
    let mut child = Command::new(env!("CARGO_BIN_EXE_brainloop"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--body", "serial", "--seconds", "20", "--port"])
        .arg(&board.link)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn brainloop run");
    let mut stdin = child.stdin.take().expect("stdin");
    // Hand driving: 0.2 m/s straight = 6.06 rad/s per wheel (r = 0.033 m). Keep it fresh.
    let drive_until = Instant::now() + Duration::from_secs(8);
    let mut moving = None;
    while Instant::now() < drive_until && moving.is_none() {
        writeln!(stdin, "/drive 0.2 0").expect("console");
        if let Ok(s) = board.status() {
            if s.wheel[0] > 5.0 && s.wheel[1] > 5.0 {
                moving = Some(s.wheel);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let moving = moving.expect("teleop never moved the wheels");
    assert!(
        moving[0] < 7.0 && moving[1] < 7.0,
        "over the commanded speed: {moving:?}"
    );
    // E-stop from the console wins over fresh teleop commands.
    writeln!(stdin, "/stop").expect("console");
    for _ in 0..5 {
        writeln!(stdin, "/drive 0.2 0").expect("console");
    }
    wait_for(&mut board, "e-stop", |w| {
        w[0].abs() < 0.3 && w[1].abs() < 0.3
    });
    writeln!(stdin, "/quit").expect("console");
    let out = child.wait_with_output().expect("brainloop run exits");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("summary JSON");
    // The loop held its rate for the whole run (50 Hz in config/default.toml).
    let ticks = summary["ticks"].as_u64().unwrap() as f64;
    let wall = summary["wall_s"].as_f64().unwrap();
    assert!(ticks >= 5.0 && ticks >= 0.8 * wall * 50.0, "{summary}");
    assert_eq!(summary["missed"].as_u64(), Some(0), "{summary}");
    assert!(
        summary["body"].as_str().unwrap().starts_with("serial"),
        "{summary}"
    );
    // The link's counters reach the summary: frames both ways, and the error counters.
    let link = &summary["link"];
    assert!(link["frames_rx"].as_u64().unwrap_or(0) > 0, "{summary}");
    assert!(link["frames_tx"].as_u64().unwrap_or(0) > 0, "{summary}");
    for k in ["crc_errors", "decode_errors", "seq_gaps", "board_rx_errors"] {
        assert!(link[k].is_u64(), "{k}: {summary}");
    }
}
