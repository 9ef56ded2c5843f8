//! Hardware-in-the-loop over a real pty: the serial driver thread (`SerialLink`, the `Body` the
//! brain drives) against the firmware on the emulated board paced at wall-clock time. Closing
//! the pty must stop the wheels (firmware watchdog) and the host must reconnect when it returns.
//! Timings are asserted in the board's emulated time, so a loaded machine does not fail them.

mod hil_common;
use brainloop::body::{Body, RobotParams};
use brainloop::link::bench::BoardProcess;
use brainloop::link::{SerialConfig, SerialLink};
use brainloop::msg::WheelSpeeds;
use std::time::{Duration, Instant};

/// SCHED_FIFO for the board, the link thread and the commanding test thread when permitted, so
/// other load on the machine does not starve the paced emulation (falls back silently).
const RT: u32 = 20;

fn start(board: &BoardProcess) -> SerialLink {
    brainloop::link::serial::set_realtime(RT);
    let mut cfg = SerialConfig::new(board.link.to_string_lossy(), RobotParams::load_default());
    cfg.backoff_max_ms = 200;
    cfg.realtime_priority = RT;
    let link = SerialLink::open(cfg).expect("link");
    assert!(
        link.wait_ready(Duration::from_secs(5)),
        "no telemetry over the pty"
    );
    link
}

/// Drive at `w` until the board's true wheel speeds are within 10 % (up to 3 s).
fn drive_until_moving(link: &mut SerialLink, board: &mut BoardProcess, w: f64) {
    let end = Instant::now() + Duration::from_secs(3);
    let mut last = None;
    while Instant::now() < end {
        drive_for(link, w, Duration::from_millis(100));
        let s = board.status().expect("status");
        if (s.wheel[0] - w).abs() < 0.1 * w && (s.wheel[1] - w).abs() < 0.1 * w {
            return;
        }
        last = Some(s);
    }
    panic!("not driving: {last:?}");
}

fn drive_for(link: &mut SerialLink, w: f64, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        let _ = link.command(WheelSpeeds { left: w, right: w });
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn closing_the_pty_stops_the_wheels_and_the_host_reconnects() {
    hil_common::build_board();
    let dir = hil_common::firmware_dir().join("build");
    let mut board =
        BoardProcess::start_with(&dir.join("board-sim"), &dir.join("brainloop-fw.elf"), RT)
            .expect("board");
    let mut link = start(&board);
    assert_eq!(link.health().stats.connects, 1);

    drive_until_moving(&mut link, &mut board, 5.0);
    // The host's view lags the board by a telemetry frame or two: keep commanding until the
    // telemetry reports the speed too (up to 1 s), then check it.
    let seen = Instant::now();
    let mut st = link.state();
    while (st.wheel_speed[0] - 5.0).abs() >= 0.6 && seen.elapsed() < Duration::from_secs(1) {
        drive_for(&mut link, 5.0, Duration::from_millis(40));
        st = link.state();
    }
    assert!((st.wheel_speed[0] - 5.0).abs() < 0.6, "telemetry: {st:?}");

    // Cut the wire. The host keeps commanding; nothing reaches the board.
    board.command("close").expect("close");
    board
        .expect("closed", Duration::from_secs(2))
        .expect("closed");
    let t_close = board.status().expect("status").time_s;
    let cut = Instant::now();
    let mut seen_down = None;
    let mut pwm_zero_at = None;
    let mut stopped = None;
    while cut.elapsed() < Duration::from_secs(5) && stopped.is_none() {
        let _ = link.command(WheelSpeeds {
            left: 5.0,
            right: 5.0,
        });
        if seen_down.is_none() && !link.health().connected {
            seen_down = Some(cut.elapsed());
        }
        let s = board.status().expect("status");
        if pwm_zero_at.is_none() && s.pwm == [0, 0] {
            pwm_zero_at = Some(s.time_s - t_close);
        }
        if s.pwm == [0, 0] && s.wheel[0].abs() < 0.01 && s.wheel[1].abs() < 0.01 {
            stopped = Some(s.time_s - t_close);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "pty closed: host saw the link down after {seen_down:?}; firmware cut PWM {:?} s and the wheels stood still {:?} s after the close (emulated time)",
        pwm_zero_at, stopped
    );
    assert!(seen_down.is_some(), "host did not notice the port vanish");
    let pwm_zero_at = pwm_zero_at.expect("firmware watchdog did not stop the motors");
    assert!(
        pwm_zero_at <= 0.30,
        "PWM cut {pwm_zero_at} s after the close"
    );
    assert!(stopped.expect("wheels never stopped") <= 1.0);
    assert!(
        link.command(WheelSpeeds::default()).is_err(),
        "command must report the link down"
    );

    // The port comes back: the driver reconnects by itself.
    board.command("open").expect("open");
    board
        .expect("pty ", Duration::from_secs(2))
        .expect("reopened");
    let back = Instant::now();
    while back.elapsed() < Duration::from_secs(10) {
        let h = link.health();
        if h.connected && h.stats.connects >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let h = link.health();
    println!(
        "reconnected after {:?} (connects = {})",
        back.elapsed(),
        h.stats.connects
    );
    assert!(h.connected && h.stats.connects >= 2, "no reconnect: {h:?}");
    let t_back = h.last_rx_ns;
    drive_until_moving(&mut link, &mut board, 5.0);
    assert!(
        link.health().last_rx_ns > t_back,
        "no telemetry after reconnect"
    );
    let _ = link.command(WheelSpeeds::default());
}

#[test]
fn a_brain_that_stops_commanding_stops_the_wheels() {
    hil_common::build_board();
    let dir = hil_common::firmware_dir().join("build");
    let mut board =
        BoardProcess::start_with(&dir.join("board-sim"), &dir.join("brainloop-fw.elf"), RT)
            .expect("board");
    let mut link = start(&board);
    drive_until_moving(&mut link, &mut board, 5.0);
    let t_last = board.status().expect("status").time_s;
    // No more commands; the link thread stays up and connected.
    let start = Instant::now();
    let mut zero_at = None;
    while start.elapsed() < Duration::from_secs(3) && zero_at.is_none() {
        let s = board.status().expect("status");
        if s.pwm == [0, 0] {
            zero_at = Some(s.time_s - t_last);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let zero_at = zero_at.expect("the wheels kept being driven by a stale command");
    println!("stale command: PWM zero {zero_at:.3} s (emulated) after the last command");
    // Command timeout 200 ms (then a zero setpoint), firmware watchdog 250 ms as the backstop.
    assert!(zero_at <= 0.50, "took {zero_at} s");
    assert!(link.health().connected);
}
