//! `brainloop bench loop`: the real integrator loop on its real-time thread, driving the
//! kinematic body against the wall clock, fed by stand-in region threads that publish through
//! the real input slots at their configured rates and spend their model's CPU cost per frame,
//! optionally beside CPU burner threads (`--stress N`). Prints one JSON object with jitter,
//! compute time, misses, drowsiness and sleeps, and the seed-001 cycle as numbers (misses,
//! staleness and tick cost before and after the first sleep).

use crate::body::{Body, BodyError, RobotParams, SimulatedBody};
use crate::bus::slots::EmbeddingRef;
use crate::config::Config;
use crate::integrator::rt::{self, monotonic_ns, RecordRing, RtOptions};
use crate::integrator::{health::LatencyHistogram, Integrator, TickRecord};
use crate::msg::{BodyState, RegionId, WheelSpeeds};
use crate::sim::kinematic::KinematicBody;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How the `--stress` burners are scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StressClass {
    /// Ordinary threads (nice 0).
    Normal,
    /// SCHED_FIFO priority 1: below the integrator, above every ordinary thread (regions,
    /// logging). Falls back to `Normal` when real-time scheduling is not permitted.
    Realtime,
}

/// Arguments of `bench loop`.
#[derive(Debug, Clone)]
pub struct LoopBenchArgs {
    /// Run time, s.
    pub seconds: f64,
    /// Tick rate, Hz (overrides the config's `integrator.rate_hz`; `None`: the config's).
    pub rate_hz: Option<f64>,
    /// CPU burner threads.
    pub stress: usize,
    /// How burners are scheduled.
    pub stress_class: StressClass,
    /// Feed drowsiness back (false: `--no-drowsiness-feedback`).
    pub feedback: bool,
    /// Working-memory capacity override.
    pub context: Option<usize>,
    /// Token width override.
    pub width: Option<usize>,
    /// Stand-in region threads (false: the loop alone, all inputs absent).
    pub regions: bool,
}

impl Default for LoopBenchArgs {
    fn default() -> Self {
        Self {
            seconds: 10.0,
            rate_hz: None,
            stress: 0,
            stress_class: StressClass::Realtime,
            feedback: true,
            context: None,
            width: None,
            regions: true,
        }
    }
}

/// One sleep seen by the bench.
#[derive(Debug, Clone, Serialize)]
pub struct SleepReport {
    /// Time since start, s.
    pub t_s: f64,
    /// Working-memory entries consolidated.
    pub consolidated: u32,
    /// Mean tick compute over the 100 awake ticks before the sleep started, us.
    pub compute_us_before: f64,
    /// Mean tick compute over the 100 ticks after it ended, us.
    pub compute_us_after: f64,
}

/// Seed 001's cycle around the first sleep.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cycle {
    /// Missed deadlines per second before the first sleep.
    pub missed_per_s_before: f64,
    /// Missed deadlines per second after it.
    pub missed_per_s_after: f64,
    /// Stale inputs per tick before the first sleep.
    pub stale_per_tick_before: f64,
    /// Stale inputs per tick after it.
    pub stale_per_tick_after: f64,
}

/// The bench's JSON result.
#[derive(Debug, Clone, Serialize)]
pub struct LoopBenchReport {
    /// Tick rate, Hz.
    pub rate_hz: f64,
    /// Run time, s.
    pub seconds: f64,
    /// Ticks run.
    pub ticks: u64,
    /// Deadlines missed.
    pub missed: u64,
    /// Ticks that overran their period.
    pub overruns: u64,
    /// Wake-up lateness against the absolute deadline, us.
    pub jitter_us: crate::integrator::health::Percentiles,
    /// Tick compute time, us.
    pub compute_us: crate::integrator::health::Percentiles,
    /// Fraction of one CPU spent spinning before deadlines.
    pub spin_cpu_fraction: f64,
    /// Maximum drowsiness.
    pub drowsiness_max: f64,
    /// Mean drowsiness.
    pub drowsiness_mean: f64,
    /// Completed sleeps.
    pub sleeps: u64,
    /// Each sleep.
    pub sleep_events: Vec<SleepReport>,
    /// Seed 001's cycle around the first sleep (absent without a sleep).
    pub cycle: Option<Cycle>,
    /// Highest load-shedding level.
    pub shed_level_max: u32,
    /// Lowest speed scale.
    pub speed_scale_min: f64,
    /// Largest working memory seen.
    pub context_max: u32,
    /// Working-memory capacity.
    pub context_capacity: usize,
    /// Token width.
    pub width: usize,
    /// Drowsiness fed back.
    pub feedback: bool,
    /// Burner threads.
    pub stress: usize,
    /// Burner scheduling actually used (absent without burners).
    pub stress_class: Option<StressClass>,
    /// Ticks per region in which it was stale (slot order: vision, language, audition,
    /// proprioception).
    pub region_stale_ticks: [u64; RegionId::COUNT],
    /// Embeddings published per region.
    pub region_published: [u64; RegionId::COUNT],
    /// Forward-model error (current model, model before the last sleep) since the last sleep.
    pub forward_error: (f64, f64),
    /// Real-time facilities in effect.
    pub rt: rt::RtStatus,
    /// Records the bench thread could not keep up with.
    pub dropped_records: u64,
}

/// The kinematic body on the wall clock: its state is stamped on `CLOCK_MONOTONIC`.
struct WallBody {
    inner: KinematicBody,
    t0: u64,
}

impl Body for WallBody {
    fn command(&mut self, w: WheelSpeeds) -> Result<(), BodyError> {
        self.inner.command(w)
    }
    fn state(&self) -> BodyState {
        let mut s = self.inner.state();
        s.stamp_ns += self.t0;
        s
    }
    fn estop(&mut self) {
        self.inner.estop()
    }
    fn clear_estop(&mut self) {
        self.inner.clear_estop()
    }
    fn name(&self) -> String {
        "kinematic (wall clock)".into()
    }
}

/// Burn CPU for `ns` of this thread's CPU time (a stand-in for a model's inference cost: under
/// contention it takes longer on the wall clock, as inference would).
fn burn_cpu(ns: u64, acc: &mut f32) {
    let cpu = || {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid pointer; the thread CPU clock always exists.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    };
    let end = cpu() + ns;
    while cpu() < end {
        for i in 0..2000 {
            *acc = (*acc * 1.000_01 + i as f32).sin();
        }
    }
}

struct StandIn {
    region: RegionId,
    rate_hz: f64,
    dim: usize,
    grid: [u32; 3],
    cost_ns: u64,
    heavy: bool,
    once: bool,
}

fn stand_ins(cfg: &Config) -> Vec<StandIn> {
    // CPU cost per frame of the real models on this class of machine (one thread):
    // EfficientNet-Lite0 12 ms, MiniLM 2.3 ms per sentence (cached), silero VAD 0.12 ms.
    let mut v = Vec::new();
    for r in RegionId::ALL {
        let Some(rc) = cfg.regions.get(r.name()).filter(|rc| rc.enabled) else {
            continue;
        };
        let (dim, grid, cost_ns, heavy, once) = match r {
            RegionId::Vision => (1280, [7, 7, 32], 12_000_000, true, false),
            RegionId::Language => (384, [0; 3], 2_300_000, false, true),
            RegionId::Audition => (64, [0; 3], 120_000, false, false),
            RegionId::Proprioception => (16, [0; 3], 20_000, false, false),
        };
        v.push(StandIn {
            region: r,
            rate_hz: rc.rate_hz,
            dim,
            grid,
            cost_ns,
            heavy,
            once,
        });
    }
    v
}

fn spawn_stand_in(
    s: StandIn,
    integ: &Integrator,
    stop: Arc<AtomicBool>,
    shed: Arc<AtomicU32>,
) -> Option<std::thread::JoinHandle<()>> {
    let writer = integ.slots().writer(s.region)?;
    std::thread::Builder::new()
        .name(format!("standin-{}", s.region.name()))
        .spawn(move || {
            let period = crate::config::graph::period_ns(s.rate_hz);
            let mut vector = vec![0f32; s.dim];
            let n_sp = s.grid.iter().map(|&g| g as usize).product::<usize>();
            let mut spatial = vec![0f32; n_sp];
            let mut rng = crate::util::SplitMix::new(s.region.index() as u64 + 99);
            let mut acc = 0f32;
            let mut next = monotonic_ns();
            let mut seq = 0u64;
            let mut frame = 0u64;
            let mut embedded = false;
            while !stop.load(Ordering::Relaxed) {
                next += period;
                rt::sleep_until_ns(next);
                let now = monotonic_ns();
                if now > next + period {
                    next = now; // fell behind: do not burst to catch up
                }
                frame += 1;
                let level = shed.load(Ordering::Relaxed) as u64;
                if s.heavy && level > 0 && frame % (level + 1) != 0 {
                    continue;
                }
                let stamp = monotonic_ns();
                if !(s.once && embedded) {
                    burn_cpu(s.cost_ns, &mut acc);
                    embedded = true;
                    // A slowly drifting embedding (a scene that changes).
                    for (i, x) in vector.iter_mut().enumerate() {
                        *x = 0.9 * *x
                            + 0.1
                                * ((i as f64 * 0.37 + seq as f64 * 0.01).sin() + 0.3 * rng.normal())
                                    as f32;
                    }
                    for x in spatial.iter_mut() {
                        *x = rng.normal() as f32 * 0.5;
                    }
                }
                let e = EmbeddingRef {
                    seq,
                    stamp_ns: stamp,
                    model_id: 1,
                    vector: &vector,
                    grid: s.grid,
                    spatial: &spatial,
                };
                if writer.publish(&e).is_ok() {
                    seq += 1;
                }
                if acc.is_nan() {
                    acc = 0.0;
                }
            }
        })
        .ok()
}

/// A busy thread until `stop` (SCHED_FIFO 1 with `realtime` when permitted; returns whether it
/// got it).
pub(crate) fn spawn_burner(
    stop: Arc<AtomicBool>,
    realtime: bool,
) -> std::io::Result<std::thread::JoinHandle<bool>> {
    std::thread::Builder::new()
        .name("burner".into())
        .spawn(move || {
            let mut got_rt = false;
            if realtime {
                let p = libc::sched_param { sched_priority: 1 };
                // SAFETY: plain syscall on this thread.
                got_rt = unsafe {
                    libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &p)
                } == 0;
            }
            let mut x = 1.0f64;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..10_000 {
                    x = (x * 1.000_000_1).sqrt() + 1e-9;
                }
            }
            std::hint::black_box(x);
            got_rt
        })
}

/// Run the loop bench.
pub fn run_loop_bench(cfg: &Config, args: &LoopBenchArgs) -> anyhow::Result<LoopBenchReport> {
    use anyhow::Context;
    let mut cfg = cfg.clone();
    if let Some(r) = args.rate_hz {
        cfg.integrator.rate_hz = r;
    }
    let rate_hz = cfg.integrator.rate_hz;
    if let Some(c) = args.context {
        cfg.integrator.context_capacity = c;
    }
    if let Some(w) = args.width {
        cfg.integrator.width = w;
    }
    cfg.drowsiness.feedback = args.feedback;
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 3600.0) {
        anyhow::bail!("--seconds must be in (0, 3600], got {}", args.seconds);
    }
    if args.stress > 64 {
        anyhow::bail!("--stress must be at most 64, got {}", args.stress);
    }
    let errs = cfg.validate();
    if let Some(e) = errs.first() {
        anyhow::bail!("{e}");
    }
    let params = RobotParams::load_default();
    let integ = Integrator::new(&cfg, &params).context("building the integrator")?;
    let slots = integ.slots();
    let shed = integ.shed_level();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_loop = Arc::new(AtomicBool::new(false));
    let ring = RecordRing::new(1 << 16);
    let mut opts = RtOptions::from(&cfg.integrator);
    if opts.wait == crate::config::WaitStrategy::SleepSpin && opts.spin_margin_ns == 0 {
        opts.spin_margin_ns = 2_000_000;
    }

    let mut burners = Vec::new();
    for _ in 0..args.stress {
        burners.push(
            spawn_burner(
                Arc::clone(&stop),
                args.stress_class == StressClass::Realtime,
            )
            .context("spawning a burner")?,
        );
    }
    let mut standins = Vec::new();
    if args.regions {
        for s in stand_ins(&cfg) {
            if let Some(h) = spawn_stand_in(s, &integ, Arc::clone(&stop), Arc::clone(&shed)) {
                standins.push(h);
            }
        }
    }

    let t0 = monotonic_ns();
    let body = WallBody {
        inner: KinematicBody::new(params),
        t0,
    };
    let mut last = t0;
    let handle = rt::run_realtime(
        integ,
        body,
        opts,
        Arc::clone(&stop_loop),
        Arc::clone(&ring),
        move |now, b: &mut WallBody| {
            if now > last {
                b.inner.advance((now - last) as f64 * 1e-9);
                last = now;
            }
        },
    )
    .context("spawning the integrator thread")?;

    let mut records: Vec<TickRecord> = Vec::with_capacity((args.seconds * rate_hz) as usize + 1024);
    let end = t0 + (args.seconds * 1e9) as u64;
    let mut monitor = crate::integrator::health::HealthMonitor::new();
    let no_bus: Option<&crate::bus::LocalBus> = None;
    while monotonic_ns() < end {
        std::thread::sleep(Duration::from_millis(20));
        while let Some(r) = ring.pop() {
            monitor.observe(&r, no_bus);
            records.push(r);
        }
    }
    stop_loop.store(true, Ordering::Relaxed);
    let outcome = handle
        .join()
        .map_err(|_| anyhow::anyhow!("the integrator thread panicked"))?;
    stop.store(true, Ordering::Relaxed);
    let mut stress_rt = !burners.is_empty();
    for b in burners {
        stress_rt &= b.join().unwrap_or(false);
    }
    for h in standins {
        let _ = h.join();
    }
    while let Some(r) = ring.pop() {
        records.push(r);
    }
    // A loop starved of the CPU has no tick to report: its "0 missed, drowsiness 0" would look
    // perfect.
    if records.len() < 2 {
        anyhow::bail!(
            "the loop ran {} tick(s) in {} s: it was starved of the CPU (fewer --stress burners, or let it run at SCHED_FIFO)",
            records.len(),
            args.seconds
        );
    }
    Ok(summarise(
        &records,
        args,
        &cfg,
        &outcome,
        &slots,
        match (args.stress, stress_rt) {
            (0, _) => None,
            (_, true) => Some(StressClass::Realtime),
            (_, false) => Some(StressClass::Normal),
        },
        ring.dropped(),
    ))
}

fn summarise(
    records: &[TickRecord],
    args: &LoopBenchArgs,
    cfg: &Config,
    outcome: &rt::RtOutcome<WallBody>,
    slots: &crate::integrator::InputSlots,
    stress_class: Option<StressClass>,
    dropped: u64,
) -> LoopBenchReport {
    let mut jitter = LatencyHistogram::new();
    let mut compute = LatencyHistogram::new();
    let (mut dmax, mut dsum) = (0f64, 0f64);
    let mut shed_max = 0;
    let mut scale_min = 1f64;
    let mut ctx_max = 0;
    let mut sleeps = Vec::new();
    let period = cfg.tick_period_ns() as f64;
    let t_start = records.first().map(|r| r.now_ns).unwrap_or(0);
    let mut sleep_started: Option<usize> = None;
    for (i, r) in records.iter().enumerate() {
        jitter.record(r.lateness_ns);
        compute.record(r.compute_ns);
        dmax = dmax.max(r.drowsiness as f64);
        dsum += r.drowsiness as f64;
        shed_max = shed_max.max(r.shed_level);
        scale_min = scale_min.min(r.speed_scale as f64);
        ctx_max = ctx_max.max(r.context_len);
        if r.sleeping && sleep_started.is_none() {
            sleep_started = Some(i);
        }
        if r.slept {
            let s = sleep_started.take().unwrap_or(i);
            let mean = |rs: &[TickRecord]| {
                if rs.is_empty() {
                    0.0
                } else {
                    rs.iter().map(|r| r.compute_ns as f64).sum::<f64>() / rs.len() as f64 / 1000.0
                }
            };
            let before = &records[s.saturating_sub(100)..s];
            let after = &records[(i + 1).min(records.len())..(i + 101).min(records.len())];
            sleeps.push((
                i,
                s,
                SleepReport {
                    t_s: (r.now_ns - t_start) as f64 * 1e-9,
                    consolidated: r.consolidated,
                    compute_us_before: mean(before),
                    compute_us_after: mean(after),
                },
            ));
        }
    }
    let cycle = sleeps.first().map(|(end, start, _)| {
        let rate = |rs: &[TickRecord]| {
            let missed: u64 = rs.iter().map(|r| r.missed).sum();
            let secs = rs.len() as f64 * period * 1e-9;
            let stale: u64 = rs.iter().map(|r| r.stale_mask.count_ones() as u64).sum();
            (
                if secs > 0.0 {
                    missed as f64 / secs
                } else {
                    0.0
                },
                stale as f64 / rs.len().max(1) as f64,
            )
        };
        let (mb, sb) = rate(&records[..*start]);
        let (ma, sa) = rate(&records[(*end + 1).min(records.len())..]);
        Cycle {
            missed_per_s_before: mb,
            missed_per_s_after: ma,
            stale_per_tick_before: sb,
            stale_per_tick_after: sa,
        }
    });
    let h = outcome.integrator.health();
    let mut published = [0; RegionId::COUNT];
    for r in RegionId::ALL {
        published[r.index()] = slots.stats(r).published;
    }
    LoopBenchReport {
        rate_hz: cfg.integrator.rate_hz,
        seconds: args.seconds,
        ticks: records.len() as u64,
        missed: records.iter().map(|r| r.missed).sum(),
        overruns: records.iter().filter(|r| r.overrun).count() as u64,
        jitter_us: jitter.percentiles_us(),
        compute_us: compute.percentiles_us(),
        spin_cpu_fraction: outcome.spin_ns as f64 / outcome.wall_ns.max(1) as f64,
        drowsiness_max: dmax,
        drowsiness_mean: dsum / records.len().max(1) as f64,
        sleeps: records.iter().filter(|r| r.slept).count() as u64,
        sleep_events: sleeps.into_iter().map(|(_, _, s)| s).collect(),
        cycle,
        shed_level_max: shed_max,
        speed_scale_min: scale_min,
        context_max: ctx_max,
        context_capacity: cfg.integrator.context_capacity,
        width: cfg.integrator.width,
        feedback: args.feedback,
        stress: args.stress,
        stress_class,
        region_stale_ticks: h.region_stale,
        region_published: published,
        forward_error: outcome.integrator.forward_errors(),
        rt: outcome.status.clone(),
        dropped_records: dropped,
    }
}

/// A human-readable summary of a loop bench.
pub fn format_loop_report(r: &LoopBenchReport) -> String {
    let mut s = String::new();
    let p = |x: &crate::integrator::health::Percentiles| {
        format!(
            "p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1} us",
            x.p50, x.p90, x.p99, x.max
        )
    };
    s += &format!(
        "loop {:.0} Hz for {:.1} s: {} ticks, {} missed, {} overruns\n",
        r.rate_hz, r.seconds, r.ticks, r.missed, r.overruns
    );
    s += &format!("  jitter   {}\n", p(&r.jitter_us));
    s += &format!("  compute  {}\n", p(&r.compute_us));
    s += &format!(
        "  spin CPU {:.1} %   SCHED_FIFO {:?}   mlock {}\n",
        r.spin_cpu_fraction * 100.0,
        r.rt.fifo_priority,
        r.rt.memory_locked
    );
    s += &format!(
        "  drowsiness max {:.3} mean {:.3}; shed max {}; speed scale min {:.2}; sleeps {}\n",
        r.drowsiness_max, r.drowsiness_mean, r.shed_level_max, r.speed_scale_min, r.sleeps
    );
    for e in &r.sleep_events {
        s += &format!(
            "  sleep at {:.2} s: {} entries consolidated, tick compute {:.1} -> {:.1} us\n",
            e.t_s, e.consolidated, e.compute_us_before, e.compute_us_after
        );
    }
    if let Some(c) = &r.cycle {
        s += &format!(
            "  around the first sleep: missed/s {:.2} -> {:.2}, stale inputs/tick {:.2} -> {:.2}\n",
            c.missed_per_s_before,
            c.missed_per_s_after,
            c.stale_per_tick_before,
            c.stale_per_tick_after
        );
    }
    s
}
