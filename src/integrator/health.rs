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
