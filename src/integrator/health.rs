//! Deadline accounting: per-tick lateness and compute time into histograms, overrun and missed
//! cycle counters, per-region late and stale counts. The histograms are preallocated with fixed
//! bounds, so recording never allocates.

use crate::msg::RegionId;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Percentiles of a latency distribution, microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// A nanosecond histogram (1 ns .. 100 s, 3 significant digits) that never allocates to record.
#[derive(Debug, Clone)]
pub struct LatencyHistogram(Histogram<u64>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// Empty histogram.
    pub fn new() -> Self {
        match Histogram::new_with_bounds(1, 100_000_000_000, 3) {
            Ok(h) => Self(h),
            Err(_) => unreachable!("constant bounds are valid"),
        }
    }
    /// Record nanoseconds (saturating at the bounds).
    pub fn record(&mut self, ns: u64) {
        self.0.saturating_record(ns.max(1));
    }
    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.0.len()
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Percentiles in microseconds.
    pub fn percentiles_us(&self) -> Percentiles {
        if self.0.is_empty() {
            return Percentiles::default();
        }
        let us = |v: u64| v as f64 / 1000.0;
        Percentiles {
            p50: us(self.0.value_at_quantile(0.5)),
            p90: us(self.0.value_at_quantile(0.9)),
            p99: us(self.0.value_at_quantile(0.99)),
            max: us(self.0.max()),
            mean: self.0.mean() / 1000.0,
        }
    }
    /// Forget all samples.
    pub fn reset(&mut self) {
        self.0.reset();
    }
}

/// Running health of the loop.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// Start lateness per tick.
    pub lateness: LatencyHistogram,
    /// Compute time per tick.
    pub compute: LatencyHistogram,
    /// Ticks run.
    pub ticks: u64,
    /// Ticks whose lateness plus compute exceeded the period.
    pub overruns: u64,
    /// Deadlines missed in total.
    pub missed: u64,
    /// Per region: ticks in which its latest output was older than 1.5 of its periods.
    pub region_late: [u64; RegionId::COUNT],
    /// Per region: ticks in which it was stale.
    pub region_stale: [u64; RegionId::COUNT],
    /// Ticks with a stale body state.
    pub body_stale: u64,
    /// Completed sleeps.
    pub sleeps: u64,
}

/// A serialisable summary of [`Health`].
#[derive(Debug, Clone, Serialize)]
pub struct HealthSummary {
    /// Ticks run.
    pub ticks: u64,
    /// Overrun ticks.
    pub overruns: u64,
    /// Missed deadlines.
    pub missed: u64,
    /// Start lateness, us.
    pub lateness_us: Percentiles,
    /// Compute time, us.
    pub compute_us: Percentiles,
    /// Per-region late counts (slot order).
    pub region_late: [u64; RegionId::COUNT],
    /// Per-region stale counts (slot order).
    pub region_stale: [u64; RegionId::COUNT],
    /// Ticks with a stale body.
    pub body_stale: u64,
    /// Completed sleeps.
    pub sleeps: u64,
}

impl Health {
    /// Summarise.
    pub fn summary(&self) -> HealthSummary {
        HealthSummary {
            ticks: self.ticks,
            overruns: self.overruns,
            missed: self.missed,
            lateness_us: self.lateness.percentiles_us(),
            compute_us: self.compute.percentiles_us(),
            region_late: self.region_late,
            region_stale: self.region_stale,
            body_stale: self.body_stale,
            sleeps: self.sleeps,
        }
    }
}

/// Topic of the per-tick health record.
pub const HEALTH_TOPIC: crate::bus::Topic<super::TickRecord> =
    crate::bus::Topic::new("/brain/health");

/// Watches tick records off the real-time thread: keeps the run's histograms, logs a summary
/// (p50/p90/p99/max of lateness and compute, misses, drowsiness) once per second of ticks and a
/// line per sleep with the tick cost before and after it, and optionally publishes every
/// record on a bus.
#[derive(Debug, Clone)]
pub struct HealthMonitor {
    /// Whole-run lateness.
    pub lateness: LatencyHistogram,
    /// Whole-run compute.
    pub compute: LatencyHistogram,
    window_lateness: LatencyHistogram,
    window_compute: LatencyHistogram,
    window_start_ns: Option<u64>,
    window_missed: u64,
    window_dmax: f32,
    recent_compute: [u64; 100],
    recent_len: usize,
    recent_head: usize,
    pending_sleep: Option<(u64, f64, u32)>,
    after_count: usize,
    after_sum: u64,
    /// Completed sleeps seen.
    pub sleeps: u64,
}

impl Default for HealthMonitor {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthMonitor {
    /// A fresh monitor.
    pub fn new() -> Self {
        Self {
            lateness: LatencyHistogram::new(),
            compute: LatencyHistogram::new(),
            window_lateness: LatencyHistogram::new(),
            window_compute: LatencyHistogram::new(),
            window_start_ns: None,
            window_missed: 0,
            window_dmax: 0.0,
            recent_compute: [0; 100],
            recent_len: 0,
            recent_head: 0,
            pending_sleep: None,
            after_count: 0,
            after_sum: 0,
            sleeps: 0,
        }
    }

    /// Take one record (and publish it on `bus` if given).
    pub fn observe<B: crate::bus::Bus>(&mut self, r: &super::TickRecord, bus: Option<&B>) {
        if let Some(b) = bus {
            b.publish(HEALTH_TOPIC, r);
        }
        self.lateness.record(r.lateness_ns);
        self.compute.record(r.compute_ns);
        self.window_lateness.record(r.lateness_ns);
        self.window_compute.record(r.compute_ns);
        self.window_missed += r.missed;
        self.window_dmax = self.window_dmax.max(r.drowsiness);
        if !r.sleeping && !r.slept {
            self.recent_compute[self.recent_head] = r.compute_ns;
            self.recent_head = (self.recent_head + 1) % self.recent_compute.len();
            self.recent_len = (self.recent_len + 1).min(self.recent_compute.len());
        }
        if r.slept {
            self.sleeps += 1;
            let before = self.recent_compute[..self.recent_len].iter().sum::<u64>() as f64
                / self.recent_len.max(1) as f64;
            self.pending_sleep = Some((r.now_ns, before / 1000.0, r.consolidated));
            self.after_count = 0;
            self.after_sum = 0;
            self.recent_len = 0;
        } else if let Some((_, before_us, n)) = self.pending_sleep {
            self.after_count += 1;
            self.after_sum += r.compute_ns;
            if self.after_count == 100 {
                tracing::info!(
                    consolidated = n,
                    compute_us_before = before_us,
                    compute_us_after = self.after_sum as f64 / 100_000.0,
                    "slept: working memory consolidated, tick cost before -> after"
                );
                self.pending_sleep = None;
            }
        }
        let start = *self.window_start_ns.get_or_insert(r.now_ns);
        if r.now_ns.saturating_sub(start) >= 1_000_000_000 {
            let l = self.window_lateness.percentiles_us();
            let c = self.window_compute.percentiles_us();
            tracing::info!(
                lateness_p50_us = l.p50,
                lateness_p99_us = l.p99,
                lateness_max_us = l.max,
                compute_p50_us = c.p50,
                compute_p90_us = c.p90,
                compute_p99_us = c.p99,
                compute_max_us = c.max,
                missed = self.window_missed,
                drowsiness_max = self.window_dmax,
                context = r.context_len,
                "integrator health (last second)"
            );
            self.window_lateness.reset();
            self.window_compute.reset();
            self.window_missed = 0;
            self.window_dmax = 0.0;
            self.window_start_ns = Some(r.now_ns);
        }
    }
}
