//! The brain's senses: sensory regions that turn camera frames, instructions, sound and the
//! body's own state into embeddings for the integrator. May depend on config, bus (the slots
//! they publish into), body and msg; a region's math never knows what transport carries it.
//!
//! Each region is one struct built from its `[regions.<name>]` config section and implements the
//! small [`Region`] trait: `step(now_ns)` pulls the region's own input from a source, runs its
//! model on ONNX Runtime ([`runtime`]) and returns a borrowed [`EmbeddingRef`]. The lockstep
//! simulator calls `step` at each region's rate in simulated time; on a real robot [`spawn`]
//! runs a region on its own thread at its rate with absolute deadlines, so a slow region never
//! delays another one or the integrator. Every region measures its inference latency and
//! deadline misses, honours the integrator's shared shed level, and on an inference error marks
//! itself failed (the integrator then treats it as stale) instead of panicking.
//!
//! Regions: [`vision`] (EfficientNet-Lite0: pooled embedding and 7x7 spatial map),
//! [`language`] (all-MiniLM-L6-v2 sentence embedding of the current instruction),
//! [`audition`] (silero VAD speech probability plus log-mel band energies) and
//! [`proprioception`] (wheel speeds, odometry, IMU, battery and range rays; no model).

pub mod audition;
pub mod bench;
#[cfg(feature = "camera")]
pub mod camera;
pub mod language;
pub mod mel;
pub mod models;
pub mod proprioception;
pub mod runtime;
pub mod sources;
pub mod vision;

use crate::config::RegionConfig;
use crate::msg::{Embedding, RegionId};
pub use runtime::{Health, RegionStats};
pub use sources::{AudioSource, BodyStateSource, Camera, Frame, FrameSource, ReconnectingCamera};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// Errors of the regions. Every message is one line that says what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RegionError {
    /// A model file is missing.
    #[error("model `{name}`: file {path} is missing: run `brainloop models build`")]
    ModelMissing {
        /// Manifest name.
        name: String,
        /// Expected path.
        path: String,
    },
    /// A model file does not match the manifest.
    #[error("model `{name}`: file {path} has sha256 {got}, expected {want}: run `brainloop models build`")]
    ModelCorrupt {
        /// Manifest name.
        name: String,
        /// Path of the file.
        path: String,
        /// sha256 found.
        got: String,
        /// sha256 the manifest expects.
        want: String,
    },
    /// The ONNX Runtime library or a session could not be set up.
    #[error("{0}")]
    Runtime(String),
    /// Inference failed at run time (the region is now marked failed).
    #[error("{region} region: inference failed: {message}")]
    Inference {
        /// Region name.
        region: &'static str,
        /// What ONNX Runtime (or the pre/post-processing) said.
        message: String,
    },
    /// An input source failed (file unreadable, wrong format).
    #[error("{0}")]
    Source(String),
    /// A configuration problem.
    #[error("{0}")]
    Config(String),
}

/// An embedding borrowed from a region's preallocated output buffers: what a region hands to
/// the integrator's input slot (which copies it without allocating). It is the integrator's own
/// slot type, so `step`'s output goes straight into `SlotWriter::publish`.
pub use crate::bus::slots::EmbeddingRef;

/// The serialisable (bus/MCAP) form of a region's embedding; allocates.
pub fn to_message(region: RegionId, e: &EmbeddingRef<'_>) -> Embedding {
    Embedding {
        region,
        seq: e.seq,
        stamp_ns: e.stamp_ns,
        model: format!("{}:{:08x}", region.name(), e.model_id),
        vector: e.vector.to_vec(),
        grid: e.grid,
        spatial: e.spatial.to_vec(),
    }
}

/// The shared load-shedding level, written by the integrator from drowsiness and read by the
/// regions: 0 = run every frame; `n` = sheddable regions run one frame in `n + 1`.
#[derive(Debug, Clone, Default)]
pub struct ShedLevel(Arc<AtomicU32>);

impl ShedLevel {
    /// A new level at 0.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set the level (integrator side).
    pub fn set(&self, level: u32) {
        self.0.store(level, Ordering::Relaxed);
    }
    /// Current level.
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
    /// The shared atomic itself, for components that keep an `Arc<AtomicU32>`.
    pub fn atomic(&self) -> Arc<AtomicU32> {
        self.0.clone()
    }
    /// Wrap an existing shared atomic.
    pub fn from_atomic(a: Arc<AtomicU32>) -> Self {
        Self(a)
    }
}

/// A sensory region: built once from config, then stepped at its rate. A region implements
/// `core` and `step`; the accessors read its [`RegionCore`].
pub trait Region: Send {
    /// The region's shared bookkeeping (id, rate, statistics, health).
    fn core(&self) -> &RegionCore;
    /// Pull the latest input, run the model, return the embedding (borrowed from the region's
    /// buffers), or `None` when there is nothing to publish (no new input, shed frame, empty
    /// instruction, failed region). The first inference error is returned and marks the region
    /// failed; later calls return `Ok(None)`.
    fn step(&mut self, now_ns: u64) -> Result<Option<EmbeddingRef<'_>>, RegionError>;
    /// Which region this is.
    fn id(&self) -> RegionId {
        self.core().id
    }
    /// Configured rate, Hz.
    fn rate_hz(&self) -> f64 {
        self.core().rate_hz
    }
    /// Latency and deadline statistics.
    fn stats(&self) -> &RegionStats {
        &self.core().stats
    }
    /// Health.
    fn health(&self) -> Health {
        self.core().health.clone()
    }
}

/// Bookkeeping every region shares: period, sequence numbers, shed counter, stats, health.
#[derive(Debug)]
pub struct RegionCore {
    /// Region id.
    pub id: RegionId,
    /// Rate, Hz.
    pub rate_hz: f64,
    /// Period, ns.
    pub period_ns: u64,
    /// Model id (sha prefix) or 0.
    pub model_id: u32,
    /// Whether this region skips frames under load shedding.
    pub sheddable: bool,
    /// Shared shed level.
    pub shed: ShedLevel,
    /// Timing statistics.
    pub stats: RegionStats,
    /// Health.
    pub health: Health,
    seq: u64,
    shed_counter: u64,
}

impl RegionCore {
    /// A core for region `id` running at `cfg.rate_hz`.
    pub fn new(id: RegionId, cfg: &RegionConfig, model_id: u32, shed: ShedLevel) -> Self {
        let rate = if cfg.rate_hz.is_finite() && cfg.rate_hz > 0.0 {
            cfg.rate_hz
        } else {
            1.0
        };
        Self {
            id,
            rate_hz: rate,
            period_ns: crate::config::graph::period_ns(rate),
            model_id,
            sheddable: false,
            shed,
            stats: RegionStats::default(),
            health: Health::Ok,
            seq: 0,
            shed_counter: 0,
        }
    }

    /// Whether this step should be skipped (failed region, or shed frame).
    pub fn skip(&mut self) -> bool {
        if self.health != Health::Ok {
            return true;
        }
        let level = self.shed.get();
        if !self.sheddable || level == 0 {
            return false;
        }
        self.shed_counter += 1;
        if self.shed_counter % (u64::from(level) + 1) != 0 {
            self.stats.shed_skips += 1;
            true
        } else {
            false
        }
    }

    /// This step's input, or `None` when there is nothing to do: the step is skipped (see
    /// [`RegionCore::skip`]; `fetch` is then not called), or `fetch` has nothing new (counted as
    /// no input).
    pub fn input<T>(&mut self, fetch: impl FnOnce() -> Option<T>) -> Option<T> {
        if self.skip() {
            return None;
        }
        let input = fetch();
        if input.is_none() {
            self.stats.no_input += 1;
        }
        input
    }

    /// Run this step's inference (or feature computation), recording its latency against the
    /// period; an error marks the region failed and is returned.
    pub fn timed<T>(
        &mut self,
        run: impl FnOnce() -> Result<T, RegionError>,
    ) -> Result<T, RegionError> {
        let t0 = Instant::now();
        match run() {
            Ok(v) => {
                self.stats
                    .record(t0.elapsed().as_nanos() as u64, self.period_ns);
                Ok(v)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Mark the region failed with this error and return it.
    pub fn fail(&mut self, e: RegionError) -> RegionError {
        self.health = Health::Failed(e.to_string());
        e
    }

    /// Build an inference error for this region.
    pub fn inference_error(&self, e: impl std::fmt::Display) -> RegionError {
        RegionError::Inference {
            region: self.id.name(),
            message: e.to_string(),
        }
    }

    /// Next published embedding header: bumps the sequence number and the published count.
    pub fn embedding<'a>(
        &mut self,
        stamp_ns: u64,
        vector: &'a [f32],
        grid: [u32; 3],
        spatial: &'a [f32],
    ) -> EmbeddingRef<'a> {
        let seq = self.seq;
        self.seq += 1;
        self.stats.published += 1;
        EmbeddingRef {
            seq,
            stamp_ns,
            model_id: self.model_id,
            vector,
            grid,
            spatial,
        }
    }

    /// Next published embedding header of a plain vector (no spatial map); see
    /// [`RegionCore::embedding`].
    pub fn vector<'a>(&mut self, stamp_ns: u64, vector: &'a [f32]) -> EmbeddingRef<'a> {
        self.embedding(stamp_ns, vector, [0, 0, 0], &[])
    }
}

/// Live, lock-free status of a region running on its own thread (read by the integrator and
/// the console while the thread runs).
#[derive(Debug, Default)]
pub struct RegionStatus {
    /// Set once the region has failed.
    pub failed: AtomicBool,
    /// Inferences run.
    pub inferences: AtomicU64,
    /// Embeddings published.
    pub published: AtomicU64,
    /// Periods missed because a step (or the wake-up) ran past the next deadline.
    pub deadline_misses: AtomicU64,
    /// Latency of the last inference, ns.
    pub last_latency_ns: AtomicU64,
}

/// A region running on its own thread (see [`spawn`]).
pub struct RegionHandle {
    stop: Arc<AtomicBool>,
    status: Arc<RegionStatus>,
    join: Option<JoinHandle<Box<dyn Region>>>,
}

impl RegionHandle {
    /// Live status.
    pub fn status(&self) -> Arc<RegionStatus> {
        self.status.clone()
    }
    /// Ask the thread to stop and wait for it; returns the region (with its statistics).
    pub fn stop(mut self) -> Option<Box<dyn Region>> {
        self.stop.store(true, Ordering::Relaxed);
        self.join.take().and_then(|j| j.join().ok())
    }
}

impl Drop for RegionHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// Run `region` on its own thread at its configured rate with absolute deadlines
/// (`t0 + k * period`) on `clock` (monotonic ns). Every embedding is handed to `publish`
/// (e.g. the integrator's slot writer, which copies without allocating). A period whose wake-up
/// comes later than the next deadline counts the missed periods as deadline misses and skips
/// them rather than bunching up.
pub fn spawn<F>(
    mut region: Box<dyn Region>,
    clock: Arc<dyn Fn() -> u64 + Send + Sync>,
    mut publish: F,
) -> std::io::Result<RegionHandle>
where
    F: FnMut(&EmbeddingRef<'_>) + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let status = Arc::new(RegionStatus::default());
    let (stop2, status2) = (stop.clone(), status.clone());
    let name = format!("region-{}", region.id().name());
    let join = std::thread::Builder::new().name(name).spawn(move || {
        let period = crate::config::graph::period_ns(region.rate_hz().max(1e-3));
        let mut deadline = clock();
        let mut extra_misses = 0u64;
        let mut reported = false;
        while !stop2.load(Ordering::Relaxed) {
            let now = clock();
            match region.step(now) {
                Ok(Some(e)) => publish(&e),
                Ok(None) => {}
                Err(e) => {
                    if !reported {
                        tracing::error!("{e}");
                        reported = true;
                    }
                }
            }
            let s = region.stats();
            status2
                .failed
                .store(region.health() != Health::Ok, Ordering::Relaxed);
            status2.inferences.store(s.inferences, Ordering::Relaxed);
            status2.published.store(s.published, Ordering::Relaxed);
            status2
                .last_latency_ns
                .store(s.last_latency_ns, Ordering::Relaxed);
            deadline += period;
            let after = clock();
            if after > deadline {
                let missed = (after - deadline) / period + 1;
                extra_misses += missed;
                deadline += missed * period;
            }
            status2
                .deadline_misses
                .store(extra_misses, Ordering::Relaxed);
            // Sleep in short slices so a stop request is seen promptly.
            loop {
                let now = clock();
                if now >= deadline || stop2.load(Ordering::Relaxed) {
                    break;
                }
                // A clock that stepped back would park the thread until it caught up (seconds,
                // while the integrator goes without this sense): start the schedule again.
                if deadline > now.saturating_add(period) {
                    deadline = now + period;
                }
                let left = (deadline - now).min(50_000_000);
                std::thread::sleep(std::time::Duration::from_nanos(left));
            }
        }
        region
    })?;
    Ok(RegionHandle {
        stop,
        status,
        join: Some(join),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicI64;

    struct Counting {
        core: RegionCore,
        steps: Arc<AtomicU64>,
    }

    impl Region for Counting {
        fn core(&self) -> &RegionCore {
            &self.core
        }
        fn step(&mut self, _now_ns: u64) -> Result<Option<EmbeddingRef<'_>>, RegionError> {
            self.steps.fetch_add(1, Ordering::Relaxed);
            Ok(None)
        }
    }

    /// A region's clock that steps back (by 100 s here) does not park its thread until the
    /// clock catches up: it goes on at its rate.
    #[test]
    fn a_clock_that_steps_back_does_not_stall_a_region() {
        let cfg = RegionConfig {
            rate_hz: 100.0,
            ..RegionConfig::default()
        };
        let steps = Arc::new(AtomicU64::new(0));
        let region = Counting {
            core: RegionCore::new(RegionId::Proprioception, &cfg, 0, ShedLevel::new()),
            steps: steps.clone(),
        };
        let offset = Arc::new(AtomicI64::new(200_000_000_000));
        let o = offset.clone();
        let clock: Arc<dyn Fn() -> u64 + Send + Sync> = Arc::new(move || {
            (crate::util::clock::monotonic_ns() as i64 + o.load(Ordering::Relaxed)) as u64
        });
        let h = spawn(Box::new(region), clock, |_| {}).unwrap();
        let wait_for = |n: u64| {
            let end = Instant::now() + std::time::Duration::from_secs(20);
            while steps.load(Ordering::Relaxed) < n && Instant::now() < end {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            steps.load(Ordering::Relaxed)
        };
        assert!(wait_for(3) >= 3);
        offset.fetch_sub(100_000_000_000, Ordering::Relaxed);
        let before = steps.load(Ordering::Relaxed);
        assert!(wait_for(before + 5) >= before + 5, "the region stalled");
        drop(h);
    }
}
