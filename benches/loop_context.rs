//! Tick cost versus context length (seed 001): the integrator's working-memory attention makes
//! each tick cost more as the day's context grows. Runs the real `Integrator::tick` with a full
//! working memory of 64 .. 4096 entries at widths 64 and 256 and prints p50/p99 per point and
//! the ratio to the 64-entry point, measured side by side in one run.
//!
//! `cargo bench --bench loop_context` (add `-- --quick` for fewer ticks).

use brainloop::body::{RobotParams, SimulatedBody};
use brainloop::config::Config;
use brainloop::integrator::health::LatencyHistogram;
use brainloop::integrator::{EmbeddingRef, Integrator};
use brainloop::msg::RegionId;
use brainloop::sim::kinematic::KinematicBody;
use std::time::Instant;

fn measure(width: usize, context: usize, ticks: usize) -> (f64, f64) {
    let mut cfg = Config::default();
    cfg.integrator.rate_hz = 100.0;
    cfg.integrator.width = width;
    cfg.integrator.context_capacity = context;
    cfg.drowsiness.feedback = false; // keep the memory full: no sleep
    let params = RobotParams::load_default();
    let mut integ = Integrator::new(&cfg, &params).expect("valid config");
    let slots = integ.slots();
    let writers: Vec<_> = RegionId::ALL
        .iter()
        .filter_map(|&r| slots.writer(r))
        .collect();
    let dims = [1280usize, 384, 64, 16];
    let mut v = vec![0f32; 1280];
    let mut body = KinematicBody::new(params);
    let mut hist = LatencyHistogram::new();
    let period = 10_000_000u64;
    for k in 0..(context + ticks) as u64 {
        let now = k * period;
        for (i, x) in v.iter_mut().enumerate() {
            *x = ((i as u64 + k) as f32 * 0.013).sin();
        }
        for w in &writers {
            let r = w.region();
            let _ = w.publish(&EmbeddingRef {
                seq: k,
                stamp_ns: now,
                model_id: 1,
                vector: &v[..dims[r.index()]],
                grid: [0; 3],
                spatial: &[],
            });
        }
        let t = Instant::now();
        integ.tick(now, &mut body);
        let ns = t.elapsed().as_nanos() as u64;
        if k as usize >= context {
            hist.record(ns);
        }
        body.advance(0.01);
    }
    let p = hist.percentiles_us();
    (p.p50, p.p99)
}

fn main() {
    // Measure like the real loop runs: SCHED_FIFO and locked memory when permitted, so the
    // numbers are the tick's compute, not another process's time slice.
    let rt = brainloop::integrator::rt::make_realtime(&brainloop::integrator::rt::RtOptions {
        wait: brainloop::config::WaitStrategy::Sleep,
        spin_margin_ns: 0,
        priority: 50,
        lock_memory: true,
    });
    println!(
        "SCHED_FIFO: {:?}, memory locked: {}",
        rt.fifo_priority, rt.memory_locked
    );
    let quick = std::env::args().any(|a| a == "--quick");
    let ticks = if quick { 300 } else { 2000 };
    println!("tick cost vs context (full working memory), {ticks} ticks per point");
    println!(
        "{:>6} {:>8} {:>10} {:>10} {:>8}",
        "width", "context", "p50 us", "p99 us", "x p50@64"
    );
    for width in [64, 256] {
        let mut base = None;
        for context in [64, 128, 256, 512, 1024, 2048, 4096] {
            let (p50, p99) = measure(width, context, ticks);
            let b = *base.get_or_insert(p50);
            println!(
                "{width:>6} {context:>8} {p50:>10.1} {p99:>10.1} {:>8.2}",
                p50 / b.max(1e-9)
            );
        }
    }
}
