//! The integrator under a mock clock: a schedule of region outputs and injected compute delays
//! gives exactly the expected counters, drowsiness values and sleep events, and the same run
//! twice gives the same records.

use brainloop::body::{RobotParams, SimulatedBody};
use brainloop::config::Config;
use brainloop::integrator::{EmbeddingRef, Integrator, PublishError, ScheduledTimer, TickRecord};
use brainloop::msg::{Mode, RegionId, TeleopCommand, Twist};
use brainloop::sim::kinematic::KinematicBody;
use brainloop::teleop::TeleopInput;

const PERIOD: u64 = 20_000_000; // 50 Hz

fn config(capacity: usize) -> Config {
    let mut c = Config::default();
    c.integrator.rate_hz = 50.0;
    c.integrator.width = 32;
    c.integrator.context_capacity = capacity;
    c
}

struct Schedule {
    /// Compute time injected for tick k.
    delay: fn(u64) -> u64,
    /// Regions stop publishing at these ticks (None: never).
    vision_stops: Option<u64>,
    proprio_stops: Option<u64>,
    instruction: bool,
}

fn run(cfg: &Config, s: &Schedule, ticks: u64) -> (Vec<TickRecord>, Integrator) {
    let params = RobotParams::load_default();
    let mut integ = Integrator::new(cfg, &params).unwrap();
    let delay = s.delay;
    integ.set_compute_timer(Box::new(ScheduledTimer(move |k, _| delay(k))));
    let slots = integ.slots();
    let w: Vec<_> = RegionId::ALL
        .iter()
        .map(|&r| slots.writer(r).unwrap())
        .collect();
    let mut body = KinematicBody::new(params);
    let mut out = Vec::new();
    let mut v = vec![0f32; 1280];
    for k in 0..ticks {
        let now = k * PERIOD;
        let publish = |r: RegionId, dim: usize, v: &[f32]| {
            w[r.index()]
                .publish(&EmbeddingRef {
                    seq: k,
                    stamp_ns: now,
                    model_id: 1,
                    vector: &v[..dim],
                    grid: [0; 3],
                    spatial: &[],
                })
                .unwrap();
        };
        for (i, x) in v.iter_mut().enumerate() {
            *x = ((i as f64 * 0.1 + k as f64 * 0.05).sin()) as f32;
        }
        if k % 5 == 0 && s.vision_stops.is_none_or(|t| k < t) {
            publish(RegionId::Vision, 1280, &v);
        }
        if k % 10 == 0 && s.instruction {
            publish(RegionId::Language, 384, &v[7..]);
        }
        if k % 2 == 0 {
            publish(RegionId::Audition, 64, &v[3..]);
        }
        if s.proprio_stops.is_none_or(|t| k < t) {
            publish(RegionId::Proprioception, 16, &v[1..]);
        }
        out.push(*integ.tick(now, &mut body));
        body.advance(PERIOD as f64 * 1e-9);
    }
    (out, integ)
}

fn overloaded(k: u64) -> u64 {
    if (50..150).contains(&k) {
        30_000_000 // 1.5 periods: one missed deadline per tick
    } else {
        1_000_000
    }
}

#[test]
fn injected_overruns_give_exact_counters_drowsiness_and_one_sleep() {
    let cfg = config(4096);
    let s = Schedule {
        delay: overloaded,
        vision_stops: None,
        proprio_stops: None,
        instruction: true,
    };
    let (rec, integ) = run(&cfg, &s, 400);
    // Deterministic: the same schedule gives the same records.
    let (again, _) = run(&cfg, &s, 400);
    assert_eq!(rec, again);

    let h = integ.health();
    assert_eq!(h.missed, 100);
    assert_eq!(h.overruns, 100);
    assert_eq!(rec.iter().filter(|r| r.missed == 1).count(), 100);
    assert!(rec.iter().all(|r| r.lateness_ns == 0));
    assert_eq!(rec[0].stale_mask, 0);

    // Drowsiness integrates the previous tick's misses: 100 ticks of input 1 by tick 150.
    let a = 1.0 - (-0.02f64 / cfg.drowsiness.time_constant_s).exp();
    let mut d = 0.0f64;
    for r in &rec[..=150] {
        let input = if (51..=150).contains(&r.tick) {
            1.0
        } else {
            0.0
        };
        d += a * (input - d);
        assert!(
            (r.drowsiness as f64 - d).abs() < 1e-5,
            "tick {}: {} vs {d}",
            r.tick,
            r.drowsiness
        );
    }
    // Above the sleep threshold for sleep_after_s (50 ticks) -> sleep requested, exactly.
    let above = rec
        .iter()
        .position(|r| r.drowsiness as f64 > cfg.drowsiness.sleep_threshold)
        .unwrap();
    let requested = rec.iter().position(|r| r.sleep_requested).unwrap();
    assert_eq!(requested, above + 50);
    assert!(rec[requested].speed_scale < 1.0);
    assert!(rec[requested].shed_level >= 1);
    // The robot stops, sleeps, and wakes alert with an empty context.
    let slept: Vec<_> = rec.iter().filter(|r| r.slept).collect();
    assert_eq!(slept.len(), 1);
    assert_eq!(h.sleeps, 1);
    let woke = slept[0].tick as usize;
    assert!(rec[requested..woke].iter().all(|r| r.mode == Mode::Sleep));
    assert!(slept[0].consolidated > 100);
    assert_eq!(rec[woke + 1].drowsiness, 0.0);
    assert_eq!(rec[woke].context_len, 0);
    assert!(integ.long_term_len() > 0);
    // Awake again: driving, no more misses, drowsiness stays 0.
    assert!(rec[woke + 1..]
        .iter()
        .all(|r| r.drowsiness == 0.0 && r.missed == 0));
    assert!(rec[399].mode == Mode::Search && rec[399].twist.linear > 0.0);
}

#[test]
fn stale_vision_makes_drowsy_and_slow_stale_proprioception_stops() {
    let cfg = config(4096);
    let s = Schedule {
        delay: |_| 1_000_000,
        vision_stops: Some(100),
        proprio_stops: None,
        instruction: true,
    };
    let (rec, _) = run(&cfg, &s, 600);
    // Last vision frame at tick 95; stale once older than 500 ms (25 ticks).
    let first_stale = rec.iter().position(|r| r.stale_mask & 1 != 0).unwrap();
    assert_eq!(first_stale, 95 + 26);
    let end = rec.last().unwrap();
    assert!((end.drowsiness as f64 - cfg.drowsiness.stale_weight).abs() < 1e-3);
    assert!(end.speed_scale < 1.0 && end.speed_scale > 0.0);
    assert!(end.twist.linear > 0.0, "slowed, not stopped");

    let s = Schedule {
        delay: |_| 1_000_000,
        vision_stops: None,
        proprio_stops: Some(100),
        instruction: true,
    };
    let (rec, _) = run(&cfg, &s, 300);
    assert!(rec[90].twist.linear > 0.0);
    // Proprioception (on_failure = stop) stale after 200 ms: the robot is stopped.
    let stop = rec.iter().position(|r| r.mode == Mode::Stopped).unwrap();
    assert_eq!(stop, 99 + 11);
    assert!(rec[stop + 30..].iter().all(|r| r.twist == Twist::ZERO));
}

#[test]
fn no_instruction_means_idle_and_bad_embeddings_are_rejected() {
    let cfg = config(256);
    let params = RobotParams::load_default();
    let mut integ = Integrator::new(&cfg, &params).unwrap();
    let slots = integ.slots();
    let w = slots.writer(RegionId::Vision).unwrap();
    let ok = [0.5f32; 1280];
    let mut bad = [0.5f32; 1280];
    bad[3] = f32::NAN;
    let e = |v: &'static [f32], seq| EmbeddingRef {
        seq,
        stamp_ns: 0,
        model_id: 1,
        vector: v,
        grid: [0; 3],
        spatial: &[],
    };
    let ok: &'static [f32] = Box::leak(Box::new(ok));
    let bad: &'static [f32] = Box::leak(Box::new(bad));
    w.publish(&e(ok, 0)).unwrap();
    assert_eq!(w.publish(&e(bad, 1)), Err(PublishError::NonFinite));
    assert!(matches!(
        w.publish(&e(&ok[..100], 2)),
        Err(PublishError::WrongDim { .. })
    ));
    assert_eq!(slots.stats(RegionId::Vision).rejected, 2);
    let mut body = KinematicBody::new(params);
    let r = *integ.tick(0, &mut body);
    assert_eq!(r.mode, Mode::Idle);
    assert_eq!(r.twist, Twist::ZERO);
    assert!(integ.fused().iter().all(|x| x.is_finite()));
}

#[test]
fn full_memory_requests_sleep_and_consolidates_into_long_term() {
    let cfg = config(64);
    let s = Schedule {
        delay: |_| 1_000_000,
        vision_stops: None,
        proprio_stops: None,
        instruction: false,
    };
    let (rec, integ) = run(&cfg, &s, 200);
    let req = rec.iter().position(|r| r.sleep_requested).unwrap();
    assert_eq!(req, 63, "memory holds 64 entries after tick 63");
    let woke = rec.iter().position(|r| r.slept).unwrap();
    assert_eq!(rec[woke].consolidated, 64);
    assert!(integ.long_term_len() > 1 && integ.long_term_len() <= 16);
    assert_eq!(
        integ.health().sleeps,
        2,
        "a second day filled up and slept too"
    );
}

#[test]
fn sleep_refits_the_forward_model_and_tomorrow_is_less_surprising() {
    let mut cfg = config(8192);
    for r in ["vision", "audition"] {
        if let Some(rc) = cfg.regions.get_mut(r) {
            rc.enabled = false;
        }
    }
    let params = RobotParams::load_default();
    let mut integ = Integrator::new(&cfg, &params).unwrap();
    let teleop = TeleopInput::new();
    integ.set_teleop(teleop.clone());
    let slots = integ.slots();
    let w = slots.writer(RegionId::Proprioception).unwrap();
    let mut body = KinematicBody::new(params);
    let mut k = 0u64;
    let mut day = |integ: &mut Integrator, body: &mut KinematicBody, ticks: u64, drive: bool| {
        for _ in 0..ticks {
            let now = k * PERIOD;
            let t = k as f64 * 0.02;
            let v = [(t * 0.7).sin() as f32; 16];
            w.publish(&EmbeddingRef {
                seq: k,
                stamp_ns: now,
                model_id: 1,
                vector: &v,
                grid: [0; 3],
                spatial: &[],
            })
            .unwrap();
            let cmd = if drive {
                TeleopCommand::Drive(Twist {
                    linear: 0.3 * (t * 0.9).sin(),
                    angular: 1.5 * (t * 0.43).cos(),
                })
            } else {
                TeleopCommand::Release
            };
            teleop.send(cmd, now);
            integ.tick(now, body);
            body.advance(0.02);
            k += 1;
        }
    };
    day(&mut integ, &mut body, 1500, true);
    let (day1, _) = integ.forward_errors();
    day(&mut integ, &mut body, 50, false);
    integ.sleep_now();
    day(&mut integ, &mut body, 40, false);
    assert_eq!(integ.health().sleeps, 1);
    day(&mut integ, &mut body, 1500, true);
    let (after, before) = integ.forward_errors();
    eprintln!("forward model, next day's mean squared prediction error: {after:.3e} after sleep vs {before:.3e} before (day 1 online: {day1:.3e})");
    assert!(
        after < 0.5 * before,
        "prediction error on the next day: {after} after sleep vs {before} before (day 1: {day1})"
    );
}

/// Seed 001's cycle, deterministic under the simulated clock: with a compute cost that grows
/// with the context, the loop starts missing deadlines once the day is long enough, grows
/// drowsy, sleeps before its memory is even full, and wakes up on time again.
#[test]
fn growing_context_misses_then_sleep_restores_the_deadline() {
    let mut cfg = config(4096);
    cfg.regions.values_mut().for_each(|r| r.enabled = false);
    let params = RobotParams::load_default();
    let mut integ = Integrator::new(&cfg, &params).unwrap();
    integ.set_compute_timer(Box::new(brainloop::integrator::ModeledTimer {
        base_ns: 1_000_000,
        per_entry_ns: 10_000,
    }));
    let mut body = KinematicBody::new(params);
    let mut rec = Vec::new();
    for k in 0..3000u64 {
        rec.push(*integ.tick(k * PERIOD, &mut body));
        body.advance(0.02);
    }
    // 1 ms + 10 us per entry exceeds the 20 ms period from 1901 entries on.
    let first_miss = rec.iter().position(|r| r.missed > 0).unwrap();
    assert_eq!(rec[first_miss].context_len, 1901);
    let woke = rec.iter().position(|r| r.slept).unwrap();
    assert!(
        rec[woke].consolidated < 4096,
        "slept from drowsiness, not a full memory"
    );
    let per_s = |rs: &[TickRecord]| {
        rs.iter().map(|r| r.missed).sum::<u64>() as f64 / (rs.len() as f64 * 0.02)
    };
    let before = per_s(&rec[first_miss..woke]);
    let after = per_s(&rec[woke + 1..]);
    eprintln!(
        "seed 001 cycle: first miss at tick {first_miss}, sleep done at tick {woke} \
         ({} entries), missed/s {before:.1} -> {after:.1}",
        rec[woke].consolidated
    );
    assert!(before >= 40.0 && after == 0.0);
    assert!(rec[woke + 1..].iter().all(|r| r.drowsiness == 0.0));
}

/// A tick that starts late counts the deadlines that passed before it could start at once,
/// over the interval in which they were missed; the one its own compute ran past counts on the
/// next tick.
#[test]
fn late_start_counts_its_missed_deadlines_at_once() {
    let mut cfg = config(256);
    cfg.regions.values_mut().for_each(|r| r.enabled = false);
    let params = RobotParams::load_default();
    let mut integ = Integrator::new(&cfg, &params).unwrap();
    integ.set_compute_timer(Box::new(ScheduledTimer(|_, _| 15_000)));
    let mut body = KinematicBody::new(params);
    integ.tick(0, &mut body);
    // Scheduled at 20 ms, starts at 100 ms: deadlines 40, 60 and 80 ms have passed, and the
    // compute runs past 100 ms too.
    let r = *integ.tick(100_000_000, &mut body);
    assert_eq!(r.lateness_ns, 80_000_000);
    assert_eq!(r.missed, 4);
    let a = 1.0 - (-0.1f64 / cfg.drowsiness.time_constant_s).exp();
    assert!(
        (r.drowsiness as f64 - (a * 3.0).min(1.0)).abs() < 1e-6,
        "{}",
        r.drowsiness
    );
    assert_eq!(integ.next_deadline(), Some(120_000_000));
    let r2 = *integ.tick(120_000_000, &mut body);
    assert_eq!((r2.lateness_ns, r2.missed), (0, 0));
    let a2 = 1.0 - (-0.02f64 / cfg.drowsiness.time_constant_s).exp();
    let expect = r.drowsiness as f64 + a2 * (1.0 - r.drowsiness as f64);
    assert!((r2.drowsiness as f64 - expect).abs() < 1e-6);
}

/// Records the largest drowsiness the decision was given.
struct Spy(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl brainloop::integrator::Policy for Spy {
    fn decide(
        &mut self,
        ctx: &brainloop::integrator::DecisionContext<'_>,
    ) -> brainloop::msg::MotorIntent {
        self.0.fetch_max(
            ctx.feedback.held.to_bits(),
            std::sync::atomic::Ordering::Relaxed,
        );
        brainloop::msg::MotorIntent {
            twist: Twist::ZERO,
            mode: Mode::Idle,
        }
    }
    fn reset(&mut self) {}
}

#[test]
fn feedback_off_hides_drowsiness_from_the_decision_too() {
    for feedback in [true, false] {
        let mut cfg = config(4096);
        cfg.drowsiness.feedback = feedback;
        let params = RobotParams::load_default();
        let mut integ = Integrator::new(&cfg, &params).unwrap();
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        integ.set_policy(Box::new(Spy(seen.clone())));
        integ.set_compute_timer(Box::new(ScheduledTimer(|k, _| overloaded(k))));
        let mut body = KinematicBody::new(params);
        let mut max_record = 0f32;
        for k in 0..200 {
            let r = *integ.tick(k * PERIOD, &mut body);
            max_record = max_record.max(r.drowsiness);
            body.advance(PERIOD as f64 * 1e-9);
        }
        // Non-negative f32 bits order like the values.
        let max_seen = f64::from_bits(seen.load(std::sync::atomic::Ordering::Relaxed));
        assert!(
            max_record > 0.3,
            "overload must make it drowsy: {max_record}"
        );
        if feedback {
            assert!(max_seen > 0.3, "{max_seen}");
        } else {
            assert_eq!(
                max_seen, 0.0,
                "the ablation must cut drowsiness out of the decision"
            );
        }
    }
}

/// A region whose clock stepped forward stamps its embeddings in the future: they are stale
/// (for proprioception, `on_failure = stop`: the robot stops), and a frozen one stays stale
/// when the integrator's clock reaches its stamp (it has not changed for longer than the
/// staleness timeout), instead of looking fresh for a while.
#[test]
fn embeddings_from_a_clock_that_stepped_forward_are_stale() {
    let cfg = config(256);
    let params = RobotParams::load_default();
    let mut integ = Integrator::new(&cfg, &params).unwrap();
    let slots = integ.slots();
    let w = slots.writer(RegionId::Proprioception).unwrap();
    let mut body = KinematicBody::new(params);
    let v = [0.25f32; 16];
    let mut rec = Vec::new();
    for k in 0..200u64 {
        let now = k * PERIOD;
        let stamp = match k {
            0..50 => Some(now),
            50..60 => Some(now + 10_000_000_000),
            // Frozen after one more sample 1 s ahead: the clocks meet 50 ticks later.
            60 => Some(now + 1_000_000_000),
            _ => None,
        };
        if let Some(stamp_ns) = stamp {
            w.publish(&EmbeddingRef {
                seq: k,
                stamp_ns,
                model_id: 1,
                vector: &v,
                grid: [0; 3],
                spatial: &[],
            })
            .unwrap();
        }
        rec.push(*integ.tick(now, &mut body));
        body.advance(PERIOD as f64 * 1e-9);
    }
    let bit = 1 << RegionId::Proprioception.index();
    assert!(rec[10..50].iter().all(|r| r.stale_mask & bit == 0));
    let fresh: Vec<usize> = (50..200)
        .filter(|&k| rec[k].stale_mask & bit == 0)
        .collect();
    assert!(fresh.is_empty(), "fresh at ticks {fresh:?}");
    assert_eq!(rec[199].mode, Mode::Stopped);
}
