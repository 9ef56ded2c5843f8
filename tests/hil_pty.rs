//! Hardware-in-the-loop over a real pty: the serial driver thread (`SerialLink`, the `Body` the
//! brain drives) against the firmware on the emulated board paced at wall-clock time. Closing
//! the pty must stop the wheels (firmware watchdog) and the host must reconnect when it returns.

mod hil_common;
use brainloop::body::{Body, RobotParams};
use brainloop::link::bench::BoardProcess;
use brainloop::link::{SerialConfig, SerialLink};
use brainloop::msg::WheelSpeeds;
use std::time::{Duration, Instant};

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
        BoardProcess::start(&dir.join("board-sim"), &dir.join("brainloop-fw.elf")).expect("board");
    let mut cfg = SerialConfig::new(board.link.to_string_lossy(), RobotParams::load_default());
    cfg.backoff_max_ms = 200;
    let mut link = SerialLink::open(cfg).expect("link");
    assert!(
        link.wait_ready(Duration::from_secs(5)),
        "no telemetry over the pty"
    );
    assert_eq!(link.health().stats.connects, 1);

    drive_for(&mut link, 5.0, Duration::from_millis(800));
    let (w, _) = board.status().expect("status");
    assert!(
        (w[0] - 5.0).abs() < 0.5 && (w[1] - 5.0).abs() < 0.5,
        "not driving: {w:?}"
    );
    let st = link.state();
    assert!((st.wheel_speed[0] - 5.0).abs() < 0.6, "telemetry: {st:?}");

    // Cut the wire. The host keeps commanding; nothing reaches the board.
    board.command("close").expect("close");
    board
        .expect("closed", Duration::from_secs(2))
        .expect("closed");
    let cut = Instant::now();
    let mut seen_down = None;
    while cut.elapsed() < Duration::from_millis(600) {
        let _ = link.command(WheelSpeeds {
            left: 5.0,
            right: 5.0,
        });
        if seen_down.is_none() && !link.health().connected {
            seen_down = Some(cut.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (w, pwm) = board.status().expect("status");
    println!(
        "pty closed: host saw the link down after {:?}; board 600 ms later: pwm {pwm:?}, wheels {w:?} rad/s",
        seen_down
    );
    assert!(seen_down.is_some(), "host did not notice the port vanish");
    assert_eq!(pwm, [0, 0], "firmware watchdog did not stop the motors");
    assert!(w[0].abs() < 1.0, "wheels still turning: {w:?}");
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
    while back.elapsed() < Duration::from_secs(5) {
        let h = link.health();
        if h.connected && h.stats.connects >= 2 && h.last_rx_ns > 0 {
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
    drive_for(&mut link, 5.0, Duration::from_millis(800));
    let (w, _) = board.status().expect("status");
    assert!(
        (w[0] - 5.0).abs() < 0.5,
        "not driving after reconnect: {w:?}"
    );
    let _ = link.command(WheelSpeeds::default());
}
