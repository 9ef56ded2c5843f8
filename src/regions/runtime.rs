//! The regions' inference runtime: finds and loads the ONNX Runtime shared library once per
//! process (no environment variables needed), builds sessions with a fixed thread count, and
//! keeps each region's latency histogram, deadline misses and health.
//!
//! Library search order: `ORT_DYLIB_PATH`, then `<checkout>/.cache/lib` (baked in at compile
//! time), then `.cache/lib` and `lib` relative to the executable.

use super::RegionError;
use crate::msg::RegionId;
use hdrhistogram::Histogram;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionInputs, SessionOutputs};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// File name of the ONNX Runtime library that `scripts/bootstrap.sh` unpacks.
pub const ORT_LIB: &str = "libonnxruntime.so.1.32.0";

static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// Candidate locations of the ONNX Runtime library, in search order.
pub fn ort_library_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        out.push(PathBuf::from(p));
    }
    out.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".cache/lib")
            .join(ORT_LIB),
    );
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            out.push(dir.join("../../.cache/lib").join(ORT_LIB));
            out.push(dir.join("lib").join(ORT_LIB));
            out.push(dir.join(ORT_LIB));
        }
    }
    out
}

/// The process-wide ONNX Runtime environment, loading the library on first use.
pub fn environment() -> Result<&'static ort::environment::Environment, RegionError> {
    let env = ENV.get_or_init(|| {
        let candidates = ort_library_candidates();
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            return Err(format!(
                "ONNX Runtime library {ORT_LIB} not found (looked in {}): run `scripts/bootstrap.sh`",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let builder = ort::init_from(path)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", path.display()))?;
        builder
            .with_name("brainloop")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("cannot create ONNX Runtime environment: {e}"))
    });
    env.as_ref().map_err(|e| RegionError::Runtime(e.clone()))
}

/// Open an inference session on `model` with `threads` intra-op threads (and one inter-op
/// thread, sequential execution), all graph optimisations on.
pub fn session(model: &Path, threads: usize) -> Result<Session, RegionError> {
    let env = environment()?;
    let what = |e: &dyn std::fmt::Display| {
        RegionError::Runtime(format!("cannot open model {}: {e}", model.display()))
    };
    Session::builder(env)
        .map_err(|e| what(&e))?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| what(&e))?
        .with_intra_threads(threads.max(1))
        .map_err(|e| what(&e))?
        .with_inter_threads(1)
        .map_err(|e| what(&e))?
        .with_parallel_execution(false)
        .map_err(|e| what(&e))?
        .commit_from_file(model)
        .map_err(|e| what(&e))
        .inspect(|_| {
            advise_huge_pages();
        })
}

/// A model's inference session, with what every model-backed region does around it: its errors
/// name the region, and after the first run (when the activation arenas exist) huge pages are
/// advised once more.
pub struct ModelSession {
    session: Session,
    region: RegionId,
    runs: u64,
}

impl ModelSession {
    /// Open the model at `path` for `region` (see [`session`]).
    pub fn open(region: RegionId, path: &Path, threads: usize) -> Result<Self, RegionError> {
        Ok(Self {
            session: session(path, threads)?,
            region,
            runs: 0,
        })
    }

    /// How this region's pre/post-processing or inference failures become errors.
    pub fn errors(&self) -> impl Fn(&dyn std::fmt::Display) -> RegionError + Copy {
        let region = self.region.name();
        move |e| RegionError::Inference {
            region,
            message: e.to_string(),
        }
    }

    /// Run the model on `inputs`.
    pub fn run<'i, 'v: 'i, const N: usize>(
        &mut self,
        inputs: impl Into<SessionInputs<'i, 'v, N>>,
    ) -> Result<SessionOutputs<'_>, RegionError> {
        let err = self.errors();
        let out = self.session.run(inputs).map_err(|e| err(&e))?;
        self.runs += 1;
        if self.runs == 1 {
            // The arenas for activations exist now: back them with huge pages too.
            advise_huge_pages();
        }
        Ok(out)
    }
}

/// Ask the kernel to back the process's large anonymous mappings (where ONNX Runtime keeps the
/// weights it just loaded, and its arenas) with 2 MB transparent huge pages, collapsing them now
/// (`MADV_COLLAPSE`, Linux 6.1+) rather than waiting for khugepaged. Inference streams tens of
/// megabytes of weights per run; with 4 KB pages most of those reads also miss the TLB. Contents
/// are unchanged; where the kernel refuses (older kernel, THP off) nothing happens. Called only
/// when a session is created and after its first run (start-up), never per frame. Returns the
/// bytes advised.
pub fn advise_huge_pages() -> u64 {
    const HUGE: u64 = 2 << 20;
    const MADV_COLLAPSE: libc::c_int = 25;
    const MIN_LEN: u64 = 4 * HUGE;
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let mut advised = 0;
    for line in maps.lines() {
        let mut it = line.split_whitespace();
        let (Some(range), Some(perms)) = (it.next(), it.next()) else {
            continue;
        };
        let path = it.nth(3).unwrap_or("");
        if !perms.starts_with("rw") || !(path.is_empty() || path == "[heap]") {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        let start = a.div_ceil(HUGE) * HUGE;
        let end = b / HUGE * HUGE;
        // Only large mappings (weights, arenas): leave thread stacks and small heaps alone.
        if end <= start || end - start < MIN_LEN {
            continue;
        }
        let len = (end - start) as usize;
        // SAFETY: madvise with MADV_HUGEPAGE / MADV_COLLAPSE only changes how already-mapped
        // anonymous memory of this process is backed; it never changes its contents or mapping.
        unsafe {
            let p = start as *mut libc::c_void;
            if libc::madvise(p, len, libc::MADV_HUGEPAGE) == 0 {
                let _ = libc::madvise(p, len, MADV_COLLAPSE);
                advised += len as u64;
            }
        }
    }
    advised
}

/// Health of a region as seen by the integrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Running normally.
    Ok,
    /// An inference (or input) error stopped the region; it publishes nothing more and the
    /// integrator treats it as stale.
    Failed(String),
}

/// Timing statistics of one region: inference latency histogram (ns), throughput counters and
/// deadline misses. Recording never allocates (the histogram's range is fixed up front).
#[derive(Debug, Clone)]
pub struct RegionStats {
    /// Steps that ran the model (or, for model-free regions, computed an embedding).
    pub inferences: u64,
    /// Embeddings published.
    pub published: u64,
    /// Frames skipped because of the shed level.
    pub shed_skips: u64,
    /// Steps whose work took longer than the region's period (it cannot keep its rate).
    pub deadline_misses: u64,
    /// Steps that found no new input.
    pub no_input: u64,
    /// Latency of the last inference, ns.
    pub last_latency_ns: u64,
    /// Inference latency histogram, ns (1 us .. 10 s, 3 significant digits).
    pub latency: Histogram<u64>,
}

impl Default for RegionStats {
    fn default() -> Self {
        Self {
            inferences: 0,
            published: 0,
            shed_skips: 0,
            deadline_misses: 0,
            no_input: 0,
            last_latency_ns: 0,
            latency: Histogram::new_with_bounds(1_000, 10_000_000_000, 3)
                .expect("static histogram bounds are valid"),
        }
    }
}

impl RegionStats {
    /// Record one inference of `ns` nanoseconds against a period of `period_ns`.
    pub fn record(&mut self, ns: u64, period_ns: u64) {
        self.inferences += 1;
        self.last_latency_ns = ns;
        let _ = self.latency.record(ns.clamp(1_000, 10_000_000_000));
        if ns > period_ns {
            self.deadline_misses += 1;
        }
    }

    /// Latency quantile in nanoseconds (0 when nothing was recorded).
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.latency.is_empty() {
            0
        } else {
            self.latency.value_at_quantile(q)
        }
    }
}
