//! `brainloop bench regions`: per-region inference latency (p50/p99) and throughput in Rust,
//! measured side by side in the same run with Python onnxruntime on the same model files, inputs
//! and thread count (`scripts/models/bench_regions.py`, run from `.cache/venv`). Rust and Python
//! alternate in rounds so that load from other processes hits both sides alike. The reported
//! `ratio_p50` is Rust's median latency over Python's (below 1.0: Rust is faster).

use super::audition::AuditionModel;
use super::language::LanguageModel;
use super::models;
use super::proprioception;
use super::sources::Frame;
use super::vision::VisionModel;
use super::RegionError;
use crate::body::RobotParams;
use crate::msg::BodyState;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

/// The sentence both sides embed.
pub const SENTENCE: &str = "go to the red ball next to the blue box and stop there";

/// Benchmark settings.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Timed iterations per region and side.
    pub iters: usize,
    /// Untimed warm-up iterations per region and side.
    pub warmup: usize,
    /// Iterations per side before switching to the other side (short alternating blocks, so
    /// load from other processes hits both sides alike).
    pub block: usize,
    /// Intra-op threads on both sides.
    pub threads: usize,
    /// Whether to run the Python side.
    pub python: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            iters: 200,
            warmup: 10,
            block: 5,
            threads: 1,
            python: true,
        }
    }
}

/// Latency summary of one side: wall-clock percentiles, throughput, thread-CPU median.
fn summary(s: &Samples) -> Value {
    let mut cpu = s.cpu.clone();
    cpu.sort_unstable();
    let cpu_p50 = cpu.get(cpu.len() / 2).copied().unwrap_or(0) as f64 / 1e3;
    let mut v = wall_summary(&mut s.wall.clone());
    v["cpu_p50_us"] = json!(round3(cpu_p50));
    v
}

fn wall_summary(ns: &mut [u64]) -> Value {
    ns.sort_unstable();
    let q = |p: f64| -> f64 {
        if ns.is_empty() {
            return 0.0;
        }
        let i = ((ns.len() - 1) as f64 * p).round() as usize;
        ns[i] as f64 / 1e3
    };
    let mean = if ns.is_empty() {
        0.0
    } else {
        ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1e3
    };
    json!({
        "n": ns.len(),
        "p50_us": round3(q(0.5)),
        "p99_us": round3(q(0.99)),
        "mean_us": round3(mean),
        "throughput_hz": round3(if mean > 0.0 { 1e6 / mean } else { 0.0 }),
    })
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

struct PyWorker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl PyWorker {
    fn start(threads: usize, cpu: Option<usize>) -> Result<Self, String> {
        let root = models::project_root();
        let py = root.join(".cache/venv/bin/python");
        let script = root.join("scripts/models/bench_regions.py");
        if !py.is_file() {
            return Err(format!(
                "{} missing: run scripts/bootstrap.sh",
                py.display()
            ));
        }
        let mut cmd = Command::new(&py);
        crate::util::children::tracked(&mut cmd);
        let mut child = cmd
            .arg(&script)
            .arg("--models")
            .arg(models::models_dir())
            .arg("--threads")
            .arg(threads.to_string())
            .arg("--cpu")
            .arg(cpu.map(|c| c.to_string()).unwrap_or_else(|| "-1".into()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", py.display()))?;
        crate::util::children::track(child.id());
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("python worker has no pipes".into());
        };
        let mut w = Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        };
        let ready = w.read_line()?;
        if ready.get("ready").is_none() {
            return Err(format!("python worker did not start: {ready}"));
        }
        Ok(w)
    }

    fn read_line(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| format!("python worker: {e}"))?;
        if line.is_empty() {
            return Err("python worker exited early (see its error above)".into());
        }
        serde_json::from_str(&line).map_err(|e| format!("python worker said {line:?}: {e}"))
    }

    fn run(&mut self, region: &str, n: usize) -> Result<Samples, String> {
        writeln!(self.stdin, "{region} {n}").map_err(|e| format!("python worker: {e}"))?;
        self.stdin
            .flush()
            .map_err(|e| format!("python worker: {e}"))?;
        let v = self.read_line()?;
        let list = |k: &str| -> Vec<u64> {
            v[k].as_array()
                .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
                .unwrap_or_default()
        };
        Ok(Samples {
            wall: list("ns"),
            cpu: list("cpu_ns"),
        })
    }
}

impl Drop for PyWorker {
    fn drop(&mut self) {
        crate::util::children::untrack(self.child.id());
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}

/// CPU time consumed by the calling thread, ns. With one intra-op thread ONNX Runtime runs the
/// whole graph on the calling thread, so this is the inference's own work, without the time the
/// thread spent preempted by other processes.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Pin the calling thread to one CPU (so both sides share a core and its caches); returns the CPU
/// or `None` when not permitted.
fn pin_to_last_cpu() -> Option<usize> {
    let n = std::thread::available_parallelism().map(|n| n.get()).ok()?;
    let cpu = n.checked_sub(1)?;
    // SAFETY: cpu_set_t is plain data; we pass its size and a valid pointer for this thread (0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 {
            Some(cpu)
        } else {
            None
        }
    }
}

/// Undo [`pin_to_last_cpu`]: allow every CPU again.
fn unpin() {
    let Ok(n) = std::thread::available_parallelism() else {
        return;
    };
    // SAFETY: as in pin_to_last_cpu.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in 0..n.get() {
            libc::CPU_SET(c, &mut set);
        }
        let _ = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Wall-clock and thread-CPU latencies of `n` calls.
#[derive(Debug, Default, Clone)]
struct Samples {
    wall: Vec<u64>,
    cpu: Vec<u64>,
}

impl Samples {
    fn extend(&mut self, o: Samples) {
        self.wall.extend(o.wall);
        self.cpu.extend(o.cpu);
    }
}

fn time_n(
    n: usize,
    mut f: impl FnMut() -> Result<(), RegionError>,
) -> Result<Samples, RegionError> {
    let mut out = Samples {
        wall: Vec::with_capacity(n),
        cpu: Vec::with_capacity(n),
    };
    for _ in 0..n {
        let c0 = thread_cpu_ns();
        let t0 = Instant::now();
        f()?;
        out.wall.push(t0.elapsed().as_nanos() as u64);
        out.cpu.push(thread_cpu_ns().saturating_sub(c0));
    }
    Ok(out)
}

/// Run the benchmark; returns the JSON report.
pub fn bench_regions(opts: &BenchOptions) -> Result<Value, RegionError> {
    let threads = opts.threads.max(1);
    let per_round = opts.block.max(1);
    let rounds = opts.iters.max(1).div_ceil(per_round);

    let mut vision = VisionModel::load("vision", threads)?;
    for (i, v) in vision.input_mut().iter_mut().enumerate() {
        *v = (i % 256) as f32;
    }
    let mut language = LanguageModel::load("language", threads)?;
    let ids = language.tokenize(SENTENCE)?;
    language.set_ids(&ids);
    let mut audition = AuditionModel::load("audition", threads)?;
    let chunk: Vec<f32> = (0..super::audition::CHUNK + super::audition::CONTEXT)
        .map(|i| (0.3 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 16000.0).sin()) as f32)
        .collect();
    audition.process(&chunk[super::audition::CONTEXT..])?;
    // The timed VAD input: the same 576 samples as the Python side.
    audition.process(&chunk[..super::audition::CHUNK])?;

    // With one thread per side, both sides run on the same core, taking turns.
    let cpu = if threads == 1 {
        pin_to_last_cpu()
    } else {
        None
    };
    let mut py = if opts.python {
        match PyWorker::start(threads, cpu) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("python side skipped: {e}");
                None
            }
        }
    } else {
        None
    };
    let mut python_error: Option<String> = None;

    let names = ["vision", "language", "audition"];
    let mut rust: Vec<Samples> = vec![Samples::default(); 3];
    let mut python: Vec<Samples> = vec![Samples::default(); 3];
    // Warm-up both sides.
    for (k, name) in names.iter().enumerate() {
        match k {
            0 => time_n(opts.warmup, || vision.run())?,
            1 => time_n(opts.warmup, || language.run())?,
            _ => time_n(opts.warmup, || audition.run_vad())?,
        };
        if let Some(w) = py.as_mut() {
            if let Err(e) = w.run(name, opts.warmup) {
                python_error = Some(e);
            }
        }
    }
    if python_error.is_some() {
        py = None;
    }
    for round in 0..rounds {
        for (k, name) in names.iter().enumerate() {
            // Alternate which side goes first, so neither always runs on a warmer cache.
            for side in 0..2 {
                if (side + round) % 2 == 0 {
                    let r = match k {
                        0 => time_n(per_round, || vision.run())?,
                        1 => time_n(per_round, || language.run())?,
                        _ => time_n(per_round, || audition.run_vad())?,
                    };
                    rust[k].extend(r);
                } else if let Some(w) = py.as_mut() {
                    match w.run(name, per_round) {
                        Ok(v) => python[k].extend(v),
                        Err(e) => python_error = Some(e),
                    }
                }
            }
        }
        if python_error.is_some() {
            py = None;
        }
    }
    drop(py);
    if cpu.is_some() {
        unpin();
    }

    // Whole region steps (pre/post-processing included), Rust only.
    let frame = Frame {
        width: 320,
        height: 240,
        stamp_ns: 0,
        data: (0..320 * 240 * 3).map(|i| (i % 251) as u8).collect(),
    };
    let step_iters = (opts.iters / 2).max(10);
    let step_vision = time_n(step_iters, || vision.run_frame(&frame))?;
    let step_language = time_n(step_iters, || language.embed(SENTENCE).map(|_| ()))?;
    let step_audition = time_n(step_iters, || {
        audition
            .process(&chunk[..super::audition::CHUNK])
            .map(|_| ())
    })?;
    let params = RobotParams::load_default();
    let state = BodyState {
        stamp_ns: 1,
        battery_v: 11.1,
        range_count: 9,
        ..Default::default()
    };
    let mut feat = vec![0.0f32; proprioception::PROPRIO_DIM];
    let step_proprio = time_n(opts.iters.max(1), || {
        proprioception::features(&params, Some(&state), &state, &mut feat);
        Ok(())
    })?;

    let mut regions = serde_json::Map::new();
    let steps = [step_vision, step_language, step_audition];
    for (k, name) in names.iter().enumerate() {
        let r = summary(&rust[k]);
        let mut entry = json!({
            "model": match k { 0 => "vision.onnx", 1 => "language.onnx", _ => "silero_vad.onnx" },
            "rust": r.clone(),
            "rust_step": summary(&steps[k]),
        });
        if !python[k].wall.is_empty() {
            let p = summary(&python[k]);
            let ratio = |key: &str| {
                round3(r[key].as_f64().unwrap_or(0.0) / p[key].as_f64().unwrap_or(1.0).max(1e-9))
            };
            entry["ratio_cpu_p50"] = json!(ratio("cpu_p50_us"));
            entry["ratio_p50"] = json!(ratio("p50_us"));
            entry["python"] = p;
        }
        regions.insert((*name).into(), entry);
    }
    regions.insert(
        "proprioception".into(),
        json!({ "model": null, "rust_step": summary(&step_proprio) }),
    );
    Ok(json!({
        "threads": threads,
        "pinned_cpu": cpu,
        "iters": per_round * rounds,
        "block": per_round,
        "python": if python_error.is_none() && opts.python { "onnxruntime 1.32.0 (.cache/venv)" } else { "skipped" },
        "python_error": python_error,
        "regions": Value::Object(regions),
    }))
}

/// Human-readable table of a report.
pub fn format_table(report: &Value) -> String {
    let mut s = format!(
        "bench regions: {} iterations, {} thread(s), Rust vs Python onnxruntime side by side\n",
        report["iters"], report["threads"]
    );
    s.push_str(&format!(
        "{:<15} {:>11} {:>11} {:>11} {:>11} {:>9} {:>13}\n",
        "region", "rust p50us", "rust p99us", "py p50us", "py p99us", "ratio", "rust step p50"
    ));
    if let Some(regions) = report["regions"].as_object() {
        for (name, r) in regions {
            let f = |v: &Value| v.as_f64().map(|x| format!("{x:.1}")).unwrap_or("-".into());
            s.push_str(&format!(
                "{:<15} {:>11} {:>11} {:>11} {:>11} {:>9} {:>13}\n",
                name,
                f(&r["rust"]["p50_us"]),
                f(&r["rust"]["p99_us"]),
                f(&r["python"]["p50_us"]),
                f(&r["python"]["p99_us"]),
                r["ratio_p50"]
                    .as_f64()
                    .map(|x| format!("{x:.3}"))
                    .unwrap_or("-".into()),
                f(&r["rust_step"]["p50_us"]),
            ));
        }
    }
    s
}
