//! The motor stage: nothing non-finite reaches the body, limits and acceleration limits hold,
//! e-stop beats teleop beats autonomy, stale teleop falls back, stale body state gives zero.

use brainloop::body::{Body, BodyError, RobotParams};
use brainloop::config::Config;
use brainloop::integrator::{MotorStage, StopReason};
use brainloop::msg::{
    BodyState, ControlSource, Mode, MotorIntent, TeleopCommand, Twist, WheelSpeeds,
};
use brainloop::teleop::TeleopInput;

const DT: u64 = 20_000_000;

/// A body that records every command and checks it is finite.
#[derive(Default)]
struct Probe {
    sent: Vec<WheelSpeeds>,
    estop: bool,
    estops: u32,
    clears: u32,
    stamp_ns: u64,
}

impl Body for Probe {
    fn command(&mut self, w: WheelSpeeds) -> Result<(), BodyError> {
        assert!(w.left.is_finite() && w.right.is_finite(), "{w:?}");
        self.sent.push(w);
        Ok(())
    }
    fn state(&self) -> BodyState {
        BodyState {
            stamp_ns: self.stamp_ns,
            estop: self.estop,
            ..Default::default()
        }
    }
    fn estop(&mut self) {
        self.estop = true;
        self.estops += 1;
    }
    fn clear_estop(&mut self) {
        self.estop = false;
        self.clears += 1;
    }
    fn name(&self) -> String {
        "probe".into()
    }
}

fn stage() -> (MotorStage, Config, RobotParams) {
    let c = Config::default();
    let p = RobotParams::load_default();
    let m = MotorStage::new(&c.limits, &c.teleop, c.body.stale_after_ms, &p, 0.02);
    (m, c, p)
}

fn intent(linear: f64, angular: f64) -> MotorIntent {
    MotorIntent {
        twist: Twist { linear, angular },
        mode: Mode::Search,
    }
}

fn step(
    m: &mut MotorStage,
    b: &mut Probe,
    now: u64,
    i: MotorIntent,
) -> brainloop::integrator::MotorOutput {
    b.stamp_ns = now;
    let s = b.state();
    m.step(
        now,
        &i,
        1.0,
        false,
        brainloop::msg::OperatorMode::Autonomous,
        &s,
        b,
    )
}

/// `n` ticks of autonomy cruising at 0.3 m/s; the last output and the time after them.
fn cruise(
    m: &mut MotorStage,
    b: &mut Probe,
    now: &mut u64,
    n: u64,
) -> (brainloop::integrator::MotorOutput, u64) {
    let mut o = None;
    for _ in 0..n {
        *now += DT;
        o = Some(step(m, b, *now, intent(0.3, 0.0)));
    }
    (o.expect("at least one tick"), *now)
}

#[test]
fn non_finite_never_reaches_the_body() {
    let (mut m, _, _) = stage();
    let mut b = Probe::default();
    let bad = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e308, -1e308];
    let mut now = 0;
    for &x in &bad {
        for &y in &bad {
            now += DT;
            let o = step(&mut m, &mut b, now, intent(x, y));
            assert!(o.twist.is_finite());
        }
    }
    assert!(m.rejected() >= 16);
    // A NaN speed scale does not leak either.
    let s = b.state();
    let o = m.step(
        now + DT,
        &intent(0.2, 0.0),
        f64::NAN,
        false,
        brainloop::msg::OperatorMode::Autonomous,
        &s,
        &mut b,
    );
    assert!(o.twist.is_finite());
}

#[test]
fn clamps_to_limits_and_limits_acceleration() {
    let (mut m, c, p) = stage();
    let mut b = Probe::default();
    let mut prev = Twist::ZERO;
    for k in 1..200u64 {
        let o = step(&mut m, &mut b, k * DT, intent(10.0, -50.0));
        let dv = (o.twist.linear - prev.linear).abs();
        let dw = (o.twist.angular - prev.angular).abs();
        assert!(dv <= c.limits.max_linear_accel * 0.02 + 1e-12, "dv {dv}");
        assert!(dw <= c.limits.max_angular_accel * 0.02 + 1e-12, "dw {dw}");
        assert!(o.twist.linear <= c.limits.max_linear_mps + 1e-12);
        assert!(o.twist.angular >= -c.limits.max_angular_rps - 1e-12);
        prev = o.twist;
    }
    assert!((prev.linear - c.limits.max_linear_mps).abs() < 1e-9);
    assert!((prev.angular + c.limits.max_angular_rps).abs() < 1e-9);
    // What reached the wheels is exactly the clamped twist.
    let w = *b.sent.last().unwrap();
    let back = p.wheels_to_twist(w);
    assert!((back.linear - prev.linear).abs() < 1e-9);
}

#[test]
fn estop_beats_teleop_beats_autonomy_and_stale_teleop_falls_back() {
    let (mut m, c, _) = stage();
    let t = TeleopInput::new();
    m.set_teleop(t.clone());
    let mut b = Probe::default();
    let mut now = 0;
    let mut run = |m: &mut MotorStage, b: &mut Probe, n: u64| cruise(m, b, &mut now, n);
    let (o, now1) = run(&mut m, &mut b, 50);
    assert_eq!(o.source, ControlSource::Autonomy);
    assert!((o.twist.linear - 0.3).abs() < 1e-9);

    t.send(
        TeleopCommand::Drive(Twist {
            linear: -0.2,
            angular: 0.5,
        }),
        now1,
    );
    let (o, _) = run(&mut m, &mut b, 1);
    assert_eq!(o.source, ControlSource::Teleop);
    // Teleop is still acceleration-limited.
    assert!((o.twist.linear - (0.3 - c.limits.max_linear_accel * 0.02)).abs() < 1e-9);

    t.send(TeleopCommand::Estop, now1 + DT);
    let (o, _) = run(&mut m, &mut b, 1);
    assert_eq!(o.source, ControlSource::Estop);
    assert_eq!(o.stop, StopReason::Estop);
    assert_eq!(o.twist, Twist::ZERO, "e-stop is immediate, not ramped");
    assert_eq!(b.estops, 1);
    // Latched: fresh teleop and autonomy both stay at zero.
    t.send(
        TeleopCommand::Drive(Twist {
            linear: 0.4,
            angular: 0.0,
        }),
        now1 + 3 * DT,
    );
    let (o, now2) = run(&mut m, &mut b, 5);
    assert_eq!((o.source, o.twist), (ControlSource::Estop, Twist::ZERO));

    t.send(TeleopCommand::ClearEstop, now2);
    t.send(
        TeleopCommand::Drive(Twist {
            linear: 0.4,
            angular: 0.0,
        }),
        now2,
    );
    // The body reports its e-stop cleared from the next state on.
    let (o, _) = run(&mut m, &mut b, 2);
    assert_eq!(b.clears, 1);
    assert_eq!(o.source, ControlSource::Teleop);
    // Teleop goes quiet: after timeout_ms it no longer overrides autonomy.
    // `set_teleop` connects the highest-priority source: its own timeout.
    let timeout_ns = m.sources().next().unwrap().2;
    let ticks = timeout_ns / DT;
    let (o, _) = run(&mut m, &mut b, ticks - 2);
    assert_eq!(
        o.source,
        ControlSource::Teleop,
        "exactly timeout_ms old: still fresh"
    );
    let (o, _) = run(&mut m, &mut b, 1);
    assert_eq!(o.source, ControlSource::Autonomy);
    // Release hands back at once.
    let (_, n) = run(&mut m, &mut b, 1);
    t.send(
        TeleopCommand::Drive(Twist {
            linear: 0.1,
            angular: 0.0,
        }),
        n,
    );
    assert_eq!(run(&mut m, &mut b, 1).0.source, ControlSource::Teleop);
    t.send(TeleopCommand::Release, n);
    assert_eq!(run(&mut m, &mut b, 1).0.source, ControlSource::Autonomy);
}

#[test]
fn body_estop_and_stale_body_state_give_zero() {
    let (mut m, c, _) = stage();
    let mut b = Probe::default();
    for k in 1..50 {
        step(&mut m, &mut b, k * DT, intent(0.3, 1.0));
    }
    // The body stops reporting: its last state is older than stale_after_ms.
    let s = BodyState {
        stamp_ns: 49 * DT,
        ..Default::default()
    };
    let late = 49 * DT + c.body.stale_after_ms * 1_000_000 + 1;
    let o = m.step(
        late,
        &intent(0.3, 1.0),
        1.0,
        false,
        brainloop::msg::OperatorMode::Autonomous,
        &s,
        &mut b,
    );
    assert_eq!(o.stop, StopReason::StaleBody);
    assert_eq!(o.twist, Twist::ZERO);
    assert_eq!(
        *b.sent.last().unwrap(),
        WheelSpeeds {
            left: 0.0,
            right: 0.0
        }
    );
    // A body reporting its own e-stop: zero too.
    b.estop = true;
    let o = step(&mut m, &mut b, late + DT, intent(0.3, 1.0));
    assert_eq!((o.source, o.twist), (ControlSource::Estop, Twist::ZERO));
    // Forced stop (sleep, failed region) ramps down within the acceleration limit.
    b.estop = false;
    for k in 0..50 {
        step(&mut m, &mut b, late + (2 + k) * DT, intent(0.3, 0.0));
    }
    b.stamp_ns = late + 52 * DT;
    let s = b.state();
    let o = m.step(
        late + 52 * DT,
        &intent(0.3, 0.0),
        1.0,
        true,
        brainloop::msg::OperatorMode::Autonomous,
        &s,
        &mut b,
    );
    assert_eq!(o.stop, StopReason::Forced);
    assert!((o.twist.linear - (0.3 - c.limits.max_linear_accel * 0.02)).abs() < 1e-9);
}

#[test]
fn drowsiness_scale_slows_autonomy_only() {
    let (mut m, c, _) = stage();
    let mut b = Probe::default();
    let mut o = None;
    for k in 1..100 {
        b.stamp_ns = k * DT;
        let s = b.state();
        o = Some(m.step(
            k * DT,
            &intent(0.4, 0.0),
            0.5,
            false,
            brainloop::msg::OperatorMode::Autonomous,
            &s,
            &mut b,
        ));
    }
    // Scale 0.5 halves the 0.5 m/s limit: cruising at 0.4 is capped at 0.25.
    let max = c.limits.max_linear_mps;
    assert!((o.unwrap().twist.linear - 0.5 * max).abs() < 1e-9);
    // A slow manoeuvre under the lowered limit (backing off a wall) passes unchanged.
    for k in 100..200 {
        b.stamp_ns = k * DT;
        let s = b.state();
        o = Some(m.step(
            k * DT,
            &intent(-0.06, 0.0),
            0.5,
            false,
            brainloop::msg::OperatorMode::Autonomous,
            &s,
            &mut b,
        ));
    }
    assert!((o.unwrap().twist.linear + 0.06).abs() < 1e-9);
    // A turn over the lowered limit slows the whole command: same curvature.
    for k in 200..300 {
        b.stamp_ns = k * DT;
        let s = b.state();
        o = Some(m.step(
            k * DT,
            &intent(0.1, 2.0),
            0.5,
            false,
            brainloop::msg::OperatorMode::Autonomous,
            &s,
            &mut b,
        ));
    }
    let t = o.unwrap().twist;
    let wmax = 0.5 * c.limits.max_angular_rps;
    assert!((t.angular - wmax).abs() < 1e-9, "{t:?}");
    assert!((t.linear / t.angular - 0.05).abs() < 1e-9, "{t:?}");
}

#[test]
fn the_mux_from_config_ranks_sources_and_each_source_keeps_its_own_e_stop() {
    // Three sources from the config: `operator` (the teleop console, priority 220, 300 ms),
    // `console` (200) and `remote` (150), 500 ms each.
    let (mut m, c, _) = stage();
    let names: Vec<&str> = m.sources().map(|s| s.0).collect();
    assert_eq!(names, ["operator", "console", "remote"]);
    let console = m.teleop_input("console").unwrap();
    let remote = m.teleop_input("remote").unwrap();
    let mut b = Probe::default();
    let drive = |linear: f64| {
        TeleopCommand::Drive(Twist {
            linear,
            angular: 0.0,
        })
    };
    let mut now = 0;
    let mut run = |m: &mut MotorStage, b: &mut Probe, n: u64| cruise(m, b, &mut now, n);
    let (_, t) = run(&mut m, &mut b, 5);
    // The remote source drives while fresh...
    remote.send(drive(0.1), t);
    let (o, t) = run(&mut m, &mut b, 10);
    assert_eq!(
        (o.source, o.teleop_source),
        (ControlSource::Teleop, Some(2))
    );
    assert!((o.twist.linear - 0.1).abs() < 1e-9);
    // ...the console outranks it...
    console.send(drive(-0.1), t);
    remote.send(drive(0.1), t);
    let (o, _) = run(&mut m, &mut b, 20);
    assert_eq!(o.teleop_source, Some(1));
    assert!((o.twist.linear + 0.1).abs() < 1e-9);
    // ...and once both are stale (past their own timeout) autonomy drives again.
    let ticks = c.teleop.timeout_ms * 1_000_000 / DT + 2;
    let (o, t) = run(&mut m, &mut b, ticks + 30);
    assert_eq!((o.source, o.teleop_source), (ControlSource::Autonomy, None));
    // An e-stop latched by the console is not cleared by the remote source.
    console.send(TeleopCommand::Estop, t);
    let (o, t) = run(&mut m, &mut b, 2);
    assert_eq!(o.stop, StopReason::Estop);
    remote.send(TeleopCommand::ClearEstop, t);
    let (o, t) = run(&mut m, &mut b, 5);
    assert_eq!(o.stop, StopReason::Estop);
    assert_eq!(o.twist, Twist::ZERO);
    console.send(TeleopCommand::ClearEstop, t);
    let (o, _) = run(&mut m, &mut b, 5);
    assert_eq!(o.stop, StopReason::None);
}

/// Run the stage for `ticks` ticks from tick `k0` in `mode`, teleop `tele` fresh each tick,
/// the body's range rays all reading `range` m; the last output.
fn run_mode(
    m: &mut MotorStage,
    b: &mut Probe,
    k0: u64,
    ticks: u64,
    mode: brainloop::msg::OperatorMode,
    tele: Option<(&TeleopInput, Twist)>,
    range: f32,
) -> brainloop::integrator::MotorOutput {
    let mut o = None;
    for k in k0..k0 + ticks {
        let now = k * DT;
        b.stamp_ns = now;
        if let Some((t, tw)) = tele {
            t.send(TeleopCommand::Drive(tw), now);
        }
        let mut s = b.state();
        s.range_count = 9;
        for r in s.range.iter_mut().take(9) {
            *r = range;
        }
        o = Some(m.step(now, &intent(0.4, 0.0), 1.0, false, mode, &s, b));
    }
    o.unwrap()
}

#[test]
fn manual_holds_autonomy_and_assist_keeps_the_obstacle_margins() {
    use brainloop::msg::OperatorMode::{Assist, Autonomous, Manual};
    let (mut m, c, _) = stage();
    let mut b = Probe::default();
    let t = TeleopInput::new();
    assert!(m.attach("operator", t.clone()));
    let fwd = Twist {
        linear: 0.4,
        angular: 0.0,
    };
    // Autonomous: the brain's 0.4 m/s goes out; manual: autonomy does not move the robot.
    let o = run_mode(&mut m, &mut b, 1, 50, Autonomous, None, 3.0);
    assert!((o.twist.linear - 0.4).abs() < 1e-9, "{o:?}");
    let o = run_mode(&mut m, &mut b, 51, 50, Manual, None, 3.0);
    assert_eq!(o.twist, Twist::ZERO);
    assert_eq!(o.source, ControlSource::Autonomy);
    // Manual: teleop drives as asked, whatever is ahead.
    let o = run_mode(&mut m, &mut b, 101, 50, Manual, Some((&t, fwd)), 0.3);
    assert!((o.twist.linear - 0.4).abs() < 1e-9, "{o:?}");
    assert_eq!(o.source, ControlSource::Teleop);
    // Assist: open space, full speed; 0.3 m ahead (between the 0.15 stop and 0.45 slow
    // margins) half the limit; at the stop margin no forward motion, but turning and backing
    // off still work.
    let o = run_mode(&mut m, &mut b, 151, 50, Assist, Some((&t, fwd)), 3.0);
    assert!((o.twist.linear - 0.4).abs() < 1e-9, "{o:?}");
    assert_eq!(o.assist_cap, 1.0);
    let o = run_mode(&mut m, &mut b, 201, 50, Assist, Some((&t, fwd)), 0.3);
    let half = 0.5 * c.limits.max_linear_mps;
    assert!((o.twist.linear - half).abs() < 0.02, "{o:?}");
    let o = run_mode(&mut m, &mut b, 251, 50, Assist, Some((&t, fwd)), 0.12);
    assert_eq!(o.twist.linear, 0.0, "{o:?}");
    let back_turn = Twist {
        linear: -0.1,
        angular: 1.0,
    };
    let o = run_mode(&mut m, &mut b, 301, 50, Assist, Some((&t, back_turn)), 0.12);
    assert!((o.twist.linear + 0.1).abs() < 1e-9 && (o.twist.angular - 1.0).abs() < 1e-9);
    // Assist without teleop: autonomy is held too.
    let o = run_mode(&mut m, &mut b, 351, 50, Assist, None, 3.0);
    assert_eq!(o.twist, Twist::ZERO);
}

#[test]
fn the_estop_names_the_source_that_holds_it() {
    let (mut m, _, _) = stage();
    let mut b = Probe::default();
    let t = TeleopInput::new();
    assert!(m.attach("operator", t.clone()));
    let names: Vec<String> = m.sources().map(|s| s.0.to_string()).collect();
    t.send(TeleopCommand::Estop, DT);
    let o = step(&mut m, &mut b, DT, intent(0.2, 0.0));
    assert_eq!(o.stop, StopReason::Estop);
    assert_eq!(names[o.estop_source.unwrap() as usize], "operator");
    t.send(TeleopCommand::ClearEstop, 2 * DT);
    // The body reports its own latch cleared from the next state on.
    let o = step(&mut m, &mut b, 2 * DT, intent(0.2, 0.0));
    assert_eq!(o.estop_source, None);
    let o = step(&mut m, &mut b, 3 * DT, intent(0.2, 0.0));
    assert_eq!((o.stop, o.estop_source), (StopReason::None, None));
}

#[test]
fn a_teleop_source_that_lets_go_stops_the_robot_at_once() {
    let (mut m, c, _) = stage();
    let mut b = Probe::default();
    let t = TeleopInput::new();
    assert!(m.attach("operator", t.clone()));
    let fwd = Twist {
        linear: 0.3,
        angular: 0.5,
    };
    let o = run_mode(
        &mut m,
        &mut b,
        1,
        50,
        brainloop::msg::OperatorMode::Autonomous,
        Some((&t, fwd)),
        3.0,
    );
    assert_eq!((o.source, o.twist), (ControlSource::Teleop, fwd));
    // Released: zero in the very next tick (no deceleration ramp); autonomy then ramps up.
    t.send(TeleopCommand::Release, 51 * DT);
    let o = step(&mut m, &mut b, 51 * DT, intent(0.4, 0.0));
    assert_eq!((o.source, o.twist), (ControlSource::Autonomy, Twist::ZERO));
    let o = step(&mut m, &mut b, 52 * DT, intent(0.4, 0.0));
    assert!(
        (o.twist.linear - c.limits.max_linear_accel * 0.02).abs() < 1e-9,
        "{o:?}"
    );
    // Lapsed past the source's timeout (the deadman): the same.
    let last = 60 * DT;
    t.send(TeleopCommand::Drive(fwd), last);
    let timeout = m.sources().next().unwrap().2;
    let mut k = 60;
    let o = loop {
        let o = step(&mut m, &mut b, k * DT, intent(0.0, 0.0));
        if o.source != ControlSource::Teleop {
            break o;
        }
        k += 1;
    };
    assert!(k * DT - last > timeout && k * DT - last <= timeout + DT);
    assert_eq!(o.twist, Twist::ZERO);
}

/// A body state stamped in the future (its clock stepped forward) is stale too: a frozen
/// body would otherwise look fresh until the clocks met again.
#[test]
fn a_body_state_from_a_clock_that_stepped_forward_is_stale() {
    let (mut m, c, _) = stage();
    let mut b = Probe::default();
    for k in 1..50 {
        step(&mut m, &mut b, k * DT, intent(0.3, 0.0));
    }
    let now = 50 * DT;
    let ahead = BodyState {
        stamp_ns: now + c.body.stale_after_ms * 1_000_000 + 5_000_000_000,
        ..Default::default()
    };
    assert!(m.body_stale(now, &ahead));
    let o = m.step(
        now,
        &intent(0.3, 0.0),
        1.0,
        false,
        brainloop::msg::OperatorMode::Autonomous,
        &ahead,
        &mut b,
    );
    assert_eq!((o.stop, o.twist), (StopReason::StaleBody, Twist::ZERO));
    // A little ahead (within the staleness timeout) is still fresh.
    let near = BodyState {
        stamp_ns: now + 1_000_000,
        ..Default::default()
    };
    assert!(!m.body_stale(now, &near));
}
