//! Hardware-in-the-loop tests: the real firmware binary (firmware/build/brainloop-fw.elf) on the
//! emulated ATmega328P with two DC motor models, driven through the real Rust link session.
//! Unpaced and deterministic (one simulated clock). Each test prints its measured figure.

mod hil_common;
use brainloop::link::codec::{fault, Message, NackReason};
use hil_common::{flip_one_bit, Rig, Rng};
use std::cell::Cell;
use std::rc::Rc;

#[test]
fn wheel_speed_step_reaches_setpoint_within_10_percent_in_half_a_second() {
    let mut rig = Rig::new();
    for _ in 0..10 {
        rig.send(Message::Heartbeat);
        rig.step_ms(20);
    }
    assert_eq!((rig.board.pwm(0), rig.board.pwm(1)), (0, 0));
    let target = [8.0, -5.0];
    let t0 = rig.t_ns;
    let mut settled: [Option<u64>; 2] = [None; 2];
    let mut reported: [Option<u64>; 2] = [None; 2];
    for ms in 0..1000u64 {
        if ms % 50 == 0 {
            rig.wheels(target[0], target[1]);
        }
        rig.step_ms(1);
        for i in 0..2 {
            let w = rig.board.wheel(i as i32);
            let ok = (w - target[i]).abs() <= 0.1 * target[i].abs();
            if ok && settled[i].is_none() {
                settled[i] = Some(rig.t_ns - t0);
            }
            if ms >= 500 {
                assert!(ok, "wheel {i} left the 10 % band at {ms} ms: {w:.3} rad/s");
            }
            let rep = rig.tlm().speed[i] as f64 / 1000.0;
            if (rep - target[i]).abs() <= 0.1 * target[i].abs() && reported[i].is_none() {
                reported[i] = Some(rig.t_ns - t0);
            }
        }
    }
    let st = rig.session.stats();
    println!(
        "round trip in emulated time (no OS, no pacing): p50 {:.0} us, p99 {:.0} us over {} commands",
        st.rtt_p50_us, st.rtt_p99_us, st.rtt_samples
    );
    assert!(st.rtt_samples >= 19 && st.rtt_p99_us < 20_000.0, "{st:?}");
    for i in 0..2 {
        let t = settled[i].expect("wheel never reached the setpoint") as f64 / 1e6;
        let r = reported[i].expect("telemetry never reported the setpoint") as f64 / 1e6;
        println!(
            "wheel {i}: within 10 % of {} rad/s after {t:.1} ms (telemetry: {r:.1} ms)",
            target[i]
        );
        assert!(t < 500.0, "wheel {i} took {t} ms");
        assert!(r < 500.0, "telemetry for wheel {i} took {r} ms");
    }
}

#[test]
fn watchdog_stops_motors_within_260_ms_of_the_last_frame() {
    let mut rig = Rig::new();
    for ms in 0..600u64 {
        if ms % 50 == 0 {
            rig.wheels(8.0, 8.0);
        }
        rig.step_ms(1);
    }
    assert!(rig.board.pwm(0) > 0 && rig.board.wheel(0) > 7.0);
    // The last frame: its final byte reaches the board about 1 ms after it is queued.
    rig.wheels(8.0, 8.0);
    let t_last = rig.t_ns;
    let mut stop = None;
    for _ in 0..400 {
        rig.step_ms(1);
        if stop.is_none() && rig.board.pwm(0) == 0 && rig.board.pwm(1) == 0 {
            stop = Some(rig.t_ns - t_last);
        }
        if let Some(s) = stop {
            assert!(
                rig.board.pwm(0) == 0 && rig.board.pwm(1) == 0,
                "motors restarted after stopping at {s} ns"
            );
        }
    }
    let stop_ms = stop.expect("watchdog never stopped the motors") as f64 / 1e6;
    println!("watchdog: PWM zero {stop_ms:.1} ms after the last frame was sent");
    assert!(stop_ms <= 260.0, "watchdog took {stop_ms} ms");
    assert!(stop_ms >= 245.0, "watchdog tripped early, {stop_ms} ms");
    assert!(rig.tlm().faults & fault::CMD_TIMEOUT != 0);
    // A heartbeat re-arms the link but does not restart the wheels.
    rig.send(Message::Heartbeat);
    rig.step_ms(100);
    assert_eq!(rig.board.pwm(0), 0);
    assert!(rig.tlm().faults & fault::CMD_TIMEOUT == 0);
    assert!(
        rig.board.wheel(0).abs() < 0.5,
        "wheel still turning after 350 ms"
    );
}

#[test]
fn estop_stays_latched_until_cleared() {
    let mut rig = Rig::new();
    for ms in 0..400u64 {
        if ms % 50 == 0 {
            rig.wheels(6.0, 6.0);
        }
        rig.step_ms(1);
    }
    assert!(rig.board.wheel(0) > 5.0);
    rig.send(Message::Estop);
    rig.step_ms(3);
    assert_eq!(
        (rig.board.pwm(0), rig.board.pwm(1)),
        (0, 0),
        "e-stop did not cut PWM at once"
    );
    // Setpoints while latched are refused (NACK) and never move the wheels.
    let mut nacked = 0;
    for _ in 0..20 {
        let seq = rig.wheels(6.0, 6.0);
        rig.step_ms(25);
        assert_eq!((rig.board.pwm(0), rig.board.pwm(1)), (0, 0));
        if rig.session.last_nack() == Some((seq, NackReason::EstopLatched)) {
            nacked += 1;
        }
        assert!(rig.tlm().faults & fault::ESTOP != 0);
    }
    assert_eq!(nacked, 20, "every setpoint while latched is NACKed");
    assert!(
        rig.board.wheel(0).abs() < 0.05,
        "wheels stopped under e-stop"
    );
    // Clearing does not restart motion by itself...
    rig.send(Message::ClearEstop);
    for _ in 0..4 {
        rig.step_ms(40);
        rig.send(Message::Heartbeat);
    }
    assert_eq!((rig.board.pwm(0), rig.board.pwm(1)), (0, 0));
    assert!(rig.tlm().faults & fault::ESTOP == 0);
    // ...a new setpoint does.
    for ms in 0..400u64 {
        if ms % 50 == 0 {
            rig.wheels(6.0, 6.0);
        }
        rig.step_ms(1);
    }
    assert!(rig.board.wheel(0) > 5.0);
    println!("e-stop: latched through 20 refused setpoints over 500 ms, cleared only by CLEAR_ESTOP + new setpoint");
}

#[test]
fn corrupted_traffic_executes_no_wrong_command_and_every_bad_frame_is_counted() {
    let mut rig = Rig::new();
    let mut rng = Rng(0x6c69_6e6b_2d68_696c);
    // Downlink (board -> host): flip one bit in about one frame in ten.
    let corrupted_down = Rc::new(Cell::new(0u64));
    let counter = corrupted_down.clone();
    let mut down_rng = Rng(0x0123_4567_89ab_cdef);
    rig.downlink_filter = Some(Box::new(move |frame: &mut Vec<u8>| {
        if frame.len() > 1 && down_rng.below(10) == 0 {
            flip_one_bit(frame, &mut down_rng);
            counter.set(counter.get() + 1);
        }
    }));
    let good = (4.0, 4.0);
    let mut good_seqs = std::collections::HashSet::new();
    let mut bad_seqs = std::collections::HashSet::new();
    let (mut flipped, mut bursts) = (0u64, 0u64);
    let mut last_seen_seq = None;
    for slot in 0..400u64 {
        let kind = if slot % 4 == 0 { 0 } else { rng.below(10) };
        match kind {
            0..=4 => {
                good_seqs.insert(rig.wheels(good.0, good.1));
            }
            5..=7 => {
                // A dangerous command, corrupted on the wire: must never be executed.
                let seq = rig.session.next_seq();
                let mut out = [0u8; brainloop::link::codec::MAX_FRAME];
                let n = rig.session.encode(
                    rig.t_ns,
                    &Message::SetWheels {
                        left: -20_000,
                        right: 20_000,
                    },
                    &mut out,
                );
                let mut frame = out[..n].to_vec();
                flip_one_bit(&mut frame, &mut rng);
                rig.send_raw(&frame);
                bad_seqs.insert(seq);
                flipped += 1;
            }
            _ => {
                // A burst of line noise, ended by a delimiter: one bad frame.
                let len = 1 + rng.below(80) as usize;
                let mut burst: Vec<u8> = (0..len).map(|_| 1 + rng.below(255) as u8).collect();
                burst.push(0);
                rig.send_raw(&burst);
                bursts += 1;
            }
        }
        for _ in 0..20 {
            rig.step_ms(1);
            assert!(
                rig.board.wheel(0) > -0.2,
                "left wheel reversed: a corrupted command ran"
            );
            assert!(
                rig.board.wheel(1) < 5.0,
                "right wheel overspeed: a corrupted command ran"
            );
            let t = rig.tlm();
            if last_seen_seq != Some(t.last_seq) {
                assert!(
                    !bad_seqs.contains(&t.last_seq),
                    "board accepted corrupted frame seq {}",
                    t.last_seq
                );
                last_seen_seq = Some(t.last_seq);
            }
        }
    }
    rig.step_ms(50);
    let s = rig.session.stats();
    let injected_up = flipped + bursts;
    println!(
        "corruption: uplink {flipped} bit-flipped + {bursts} garbage bursts = {injected_up} bad frames, board counted {}; \
         downlink {} corrupted telemetry/NACK frames, host counted {} CRC + {} decode errors, {} sequence gaps",
        s.board_rx_errors,
        corrupted_down.get(),
        s.crc_errors,
        s.decode_errors,
        s.seq_gaps
    );
    assert!(flipped > 50 && bursts > 20);
    assert_eq!(
        s.board_rx_errors, injected_up,
        "board counts every bad frame"
    );
    assert_eq!(
        s.crc_errors + s.decode_errors,
        corrupted_down.get(),
        "host counts every bad frame"
    );
    assert_eq!(
        s.seq_gaps,
        corrupted_down.get(),
        "each lost board frame is a sequence gap"
    );
    assert!(
        (rig.board.wheel(0) - good.0).abs() < 0.4,
        "good commands still drive the wheels"
    );
}

#[test]
fn info_and_parameters_round_trip_through_the_firmware() {
    let mut rig = Rig::new();
    rig.send(Message::InfoRequest);
    rig.step_ms(20);
    let info = rig.session.info().expect("INFO frame");
    assert_eq!(info.proto, brainloop::link::codec::VERSION);
    assert_eq!(info.fw, [1, 0, 0]);
    println!(
        "info: fw {:?} build {:08x} reset cause {:#04x}",
        info.fw, info.build_id, info.reset_cause
    );
    // A PWM limit of 60 caps the drive; an out-of-range watchdog period is refused.
    let mut p = brainloop::link::codec::Params::DEFAULT;
    p.pwm_limit = 60;
    rig.send(Message::SetParams(p));
    for ms in 0..400u64 {
        if ms % 50 == 0 {
            rig.wheels(15.0, 15.0);
        }
        rig.step_ms(1);
        assert!(rig.board.pwm(0) <= 60 && rig.board.pwm(1) <= 60);
    }
    assert_eq!(rig.board.pwm(0), 60, "saturated at the new limit");
    assert!(rig.tlm().faults & fault::PWM_SATURATED != 0);
    p.watchdog_ms = 5;
    let seq = rig.send(Message::SetParams(p));
    rig.step_ms(20);
    assert_eq!(rig.session.last_nack(), Some((seq, NackReason::OutOfRange)));
}
