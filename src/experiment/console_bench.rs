//! `brainloop bench console`: what the teleop console costs the brain and how fast it drives
//! it, across processes on TCP loopback, in one run.
//!
//! A child `brainloop run --body kinematic --listen tcp/127.0.0.1:<free port>` (multicast
//! scouting off, its operator key made in a private temporary directory through
//! `$BRAINLOOP_OPERATOR_KEY`) is watched by a light observer: one zenoh session in this
//! process subscribed to the brain's `LoopHealth` and its `cmd_vel` (no status, no commands),
//! there in every phase. After a warm-up, three phases of `--seconds` each:
//! - **A**: no console attached.
//! - **B**: a console attached and busy as an operator's: a [`Client`] holding the operator key,
//!   the TUI model drawn into ratatui's `TestBackend` (140x40) at 10 Hz as `tui::run` draws it,
//!   [`Controls`] polled every 10 ms, and seeded key presses through the TUI's own key handling
//!   ([`Ui::key`]): a drive key (w / s / a / d) held 80-500 ms with a terminal's autorepeat (a
//!   new key event every 40 ms from 250 ms on), then let go either as a terminal that reports
//!   key releases does (an explicit `Release`) or as one that does not (the deadman lapses
//!   300 ms after the last key event and the console sends the release); the next press comes
//!   50-300 ms after the release (quick taps) for half the holds, and 0.45-0.7 s after it for
//!   the other half, chosen at random, so the robot comes to rest and the release to stop of
//!   those is measured (an unbiased half, not only the quick stops).
//! - **C**: the console detached (its session closed), as A.
//!
//! Per phase, from the health reports (each covers the last 1 s of ticks; only reports whose
//! window lies inside the phase, one a second so the windows do not overlap): the jitter
//! (tick start lateness) p99 as the median and the worst of the windows, the worst window's
//! maximum, the compute p99, and the missed-tick counter's increase over the phase (to the
//! 100 ms of the reports at its ends). Key to wheel is the brain's own figure (operator key
//! event to the tick that first applied it, from its `BrainStatus`, over the last 30 s of new
//! key events), read at the end of B; the bench also watches `cmd_vel` (published every
//! 20 ms) for key press to first moving command (presses from standstill) and release to the
//! first zero command, so those two have about 20 ms resolution. A teleop source that lets go
//! stops the robot at once (the motor stage does not ramp a release down).
//!
//! The targets: key press to wheel command <= 50 ms p99, release to stop <= 300 ms,
//! and no missed tick from the console's refresh. The bench reports whether this run met them;
//! it asserts nothing.

use crate::bus::wire::LoopHealthMsg;
use crate::bus::zenoh::{net_topics, wall_ns, ZenohBus, ZenohOptions};
use crate::config::Config;
use crate::console::tui::{self, Key, Ui};
use crate::console::{lock, Client, Controls, DEADMAN};
use crate::msg::{OperatorCommand, Twist};
use crate::teleop::auth::OperatorKey;
use crate::util::{monotonic_ns, SplitMix};
use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Target: operator key event to wheel command, p99, ms.
pub const TARGET_KEY_TO_WHEEL_P99_MS: f64 = 50.0;
/// Target: release to stop, ms (every release).
pub const TARGET_RELEASE_TO_STOP_MS: f64 = 300.0;

/// Health windows are this long (the brain's `LoopHealth` covers the last 1 s of ticks).
const WINDOW: Duration = Duration::from_secs(1);
/// A health report counts for a phase when it arrived this long after the phase began (its
/// whole window inside the phase, with a margin for the report's own lag).
const WINDOW_IN: Duration = Duration::from_millis(1050);
/// How long the brain may take to start and report.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the console may take to see the brain after attaching.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(15);
/// SIGINT, then this long for the brain to stop before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// The console's poll period (as `tui::run`, which polls the terminal for 10 ms).
const POLL: Duration = Duration::from_millis(10);
/// A terminal's autorepeat: first repeat after this long...
const AUTOREPEAT_DELAY: Duration = Duration::from_millis(250);
/// ...then one every this long.
const AUTOREPEAT_EVERY: Duration = Duration::from_millis(40);
/// After the last key of phase B the console stays this long (the last stop, a status that
/// covers the last key event).
const TAIL: Duration = Duration::from_millis(600);
/// Release to next press, s, for quick successive taps (half the holds)...
const TAP_GAP: (f64, f64) = (0.05, 0.3);
/// ...and for the other half, where the robot comes to rest before the next press and release
/// to stop is measured.
const SETTLE_GAP: (f64, f64) = (0.45, 0.7);
/// A key is held this long, s.
const HOLD: (f64, f64) = (0.08, 0.5);
/// TestBackend size.
const TERM_COLS: u16 = 140;
/// TestBackend size.
const TERM_ROWS: u16 = 40;

/// Options of `bench console`.
#[derive(Debug, Clone)]
pub struct ConsoleBenchOptions {
    /// Seconds per phase.
    pub seconds: f64,
    /// Seconds between the brain's first report and phase A.
    pub warmup_s: f64,
    /// The brain's configuration file (also the bus, the limits and the operator key here).
    pub config: PathBuf,
    /// Seed of the key presses.
    pub seed: u64,
    /// The brainloop executable to run as the brain.
    pub exe: PathBuf,
}

impl Default for ConsoleBenchOptions {
    fn default() -> Self {
        Self {
            seconds: 10.0,
            warmup_s: 2.0,
            config: PathBuf::from("config/default.toml"),
            seed: 1,
            exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("brainloop")),
        }
    }
}

/// Median and worst of per-window values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MedianWorst {
    /// Median over the windows.
    pub median: f64,
    /// Worst (largest) window.
    pub worst: f64,
}

/// One phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// `A`, `B` or `C`.
    pub name: String,
    /// Whether the console was attached.
    pub console: bool,
    /// Wall seconds of the phase.
    pub seconds: f64,
    /// Non-overlapping 1 s health windows inside the phase.
    pub windows: usize,
    /// Tick start lateness p99 of the windows, us.
    pub jitter_p99_us: MedianWorst,
    /// Largest tick start lateness of any window, us.
    pub jitter_max_us: f64,
    /// Tick compute time p99 of the windows, us.
    pub compute_p99_us: MedianWorst,
    /// Ticks missed during the phase.
    pub missed: u64,
    /// Ticks run during the phase.
    pub ticks: u64,
    /// Median tick rate of the windows, Hz.
    pub rate_hz: f64,
}

/// Latency percentiles, ms (all 0 when `n` = 0, as the brain's `LatencySummary`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Smallest.
    pub min: f64,
    /// Samples.
    pub n: u64,
}

impl LatencyMs {
    fn of(v: &[f64]) -> Self {
        let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return Self::default();
        }
        Self {
            p50: pct(&v, 0.5),
            p99: pct(&v, 0.99),
            max: v[v.len() - 1],
            min: v[0],
            n: v.len() as u64,
        }
    }
}

/// Nearest-rank percentile of sorted `v` (as the brain's status does).
fn pct(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Jitter p99 with and without the console.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct JitterCompare {
    /// Mean of phases A and C (the windows' medians), us.
    pub without: f64,
    /// Phase B (the windows' median), us.
    pub with: f64,
    /// `with / without`.
    pub ratio: f64,
    /// Worst window of A and C, us.
    pub worst_without: f64,
    /// Worst window of B, us.
    pub worst_with: f64,
}

/// Missed ticks with and without the console.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct MissedCompare {
    /// Phases A and C together.
    pub without: u64,
    /// Phase B.
    pub with: u64,
    /// Seconds of A and C.
    pub without_seconds: f64,
    /// Seconds of B.
    pub with_seconds: f64,
}

/// Compute p99 with and without the console (the windows' medians), us.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ComputeCompare {
    /// Mean of phases A and C.
    pub without: f64,
    /// Phase B.
    pub with: f64,
}

/// The brain's own key-to-wheel figure, read at the end of phase B.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeyToWheel {
    /// Median, ms.
    pub p50: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Largest, ms.
    pub max: f64,
    /// Key events that reached the wheels.
    pub n: u64,
    /// What it is.
    pub source: String,
}

/// Release (the console sends `Release`) to the first zero `cmd_vel`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReleaseToStop {
    /// Median, ms.
    pub p50: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Largest, ms.
    pub max: f64,
    /// Smallest, ms (negative: the brain stopped before the release was sent, on its own
    /// operator timeout from the key event).
    pub min: f64,
    /// Releases measured.
    pub n: u64,
    /// Releases the terminal reported (an explicit `Release`).
    pub explicit: LatencyMs,
    /// Releases after the deadman lapsed (300 ms after the last key event).
    pub deadman: LatencyMs,
    /// Releases followed by a long gap but not measured: no moving command seen during the
    /// hold, or no zero command before the next press.
    pub unmeasured: u64,
    /// Releases followed by a quick next press (50-300 ms, often before the robot stopped):
    /// not measured, so that the measured ones are a random half, not the quick stops.
    pub short_gap_skipped: u64,
}

/// What the console did in phase B.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConsoleActivity {
    /// Milliseconds from `Client::connect` to the first health report in its model.
    pub attach_ms: f64,
    /// Milliseconds to drop the client (close its session).
    pub detach_ms: f64,
    /// Key presses (holds).
    pub presses: u64,
    /// Key events (presses and autorepeats).
    pub key_events: u64,
    /// Releases the terminal reported.
    pub explicit_releases: u64,
    /// Releases after the deadman lapsed.
    pub deadman_releases: u64,
    /// Frames drawn into the TestBackend.
    pub frames: u64,
    /// Model clone plus draw, ms.
    pub frame_ms: LatencyMs,
    /// Commands sent.
    pub sent: u64,
    /// Commands zenoh refused to send.
    pub send_failures: u64,
    /// Commands the brain accepted (its status at the end of B).
    pub brain_accepted: u64,
    /// Commands the brain refused.
    pub brain_refused: u64,
}

/// Whether this run met the targets.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Targets {
    /// Key to wheel p99 target, ms.
    pub key_to_wheel_p99_ms: f64,
    /// Release to stop target, ms.
    pub release_to_stop_ms: f64,
    /// The brain's key to wheel p99 <= the target.
    pub key_to_wheel_met: bool,
    /// Every measured release stopped within the target (and none unmeasured).
    pub release_to_stop_met: bool,
    /// No tick missed while the console was attached.
    pub no_missed_tick_met: bool,
}

/// The report of `bench console`.
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleBenchReport {
    /// Seconds per phase asked for.
    pub seconds: f64,
    /// Warm-up before phase A, s.
    pub warmup_s: f64,
    /// Seed of the key presses.
    pub seed: u64,
    /// The brain's endpoint.
    pub endpoint: String,
    /// The brain's command line.
    pub brain_command: String,
    /// The child brain's pid (gone when the report is made).
    pub brain_pid: u32,
    /// The brain's configured tick rate, Hz.
    pub brain_rate_hz: f64,
    /// The summary the brain printed when it stopped (null if it did not stop cleanly).
    pub brain_summary: serde_json::Value,
    /// How the brain stopped.
    pub brain_exit: String,
    /// The observer present in every phase.
    pub observer: String,
    /// Phases A, B, C.
    pub phases: Vec<PhaseReport>,
    /// Jitter p99 with and without the console.
    pub jitter_p99_us: JitterCompare,
    /// Missed ticks with and without the console.
    pub missed: MissedCompare,
    /// Compute p99 with and without the console.
    pub compute_p99_us: ComputeCompare,
    /// The brain's key to wheel figure.
    pub key_to_wheel_ms: KeyToWheel,
    /// Key press (from standstill) to the first moving `cmd_vel` seen on the bus.
    pub key_to_cmd_vel_ms: LatencyMs,
    /// Release to the first zero `cmd_vel`.
    pub release_to_stop_ms: ReleaseToStop,
    /// What the console did.
    pub console: ConsoleActivity,
    /// The targets.
    pub targets: Targets,
    /// 1-minute load average at the start and the end.
    pub load_avg_1m: [Option<f64>; 2],
    /// Logical CPUs.
    pub cpus: usize,
    /// How to read the numbers.
    pub notes: Vec<String>,
}

// ------------------------------------------------------------------ the child brain

/// The child brain and its private directory (operator key, logs): stopped (SIGINT, then
/// SIGKILL after [`STOP_GRACE`], to its own pid only) and removed when dropped.
struct Brain {
    child: std::process::Child,
    dir: PathBuf,
    exit: Option<std::process::ExitStatus>,
}

impl Brain {
    fn start(exe: &Path, config: &Path, endpoint: &str, dir: &Path) -> Result<Self> {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(dir.join("brain.out")).context("brain stdout file")?;
        let err = std::fs::File::create(dir.join("brain.log")).context("brain log file")?;
        let mut cmd = std::process::Command::new(exe);
        cmd.args([
            "run",
            "--body",
            "kinematic",
            "--listen",
            endpoint,
            "--config",
        ])
        .arg(config)
        .env("BRAINLOOP_OPERATOR_KEY", dir.join("operator.key"))
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the child when
        // the thread that started it dies, so no brain outlives a killed bench.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        crate::util::children::track(child.id());
        Ok(Self {
            child,
            dir: dir.to_path_buf(),
            exit: None,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it exited (reaped), and how.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        if self.exit.is_none() {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.exit = Some(s);
            }
        }
        self.exit
    }

    /// SIGINT, then SIGKILL after [`STOP_GRACE`]; reaps it. Returns how it ended.
    fn stop(&mut self) -> String {
        if let Some(s) = self.exited() {
            return format!("had exited ({s})");
        }
        // The pid is still our unreaped child, so it names this process and no other.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        let end = Instant::now() + STOP_GRACE;
        while Instant::now() < end {
            if let Some(s) = self.exited() {
                return format!("stopped on SIGINT ({s})");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let s = self.child.wait().ok();
        self.exit = s;
        format!(
            "killed (SIGKILL) {} s after SIGINT{}",
            STOP_GRACE.as_secs(),
            s.map(|s| format!(" ({s})")).unwrap_or_default()
        )
    }

    /// The last `n` lines of its log.
    fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("brain.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The summary it printed on stdout when it stopped.
    fn summary(&self) -> serde_json::Value {
        std::fs::read_to_string(self.dir.join("brain.out"))
            .ok()
            .and_then(|s| {
                let i = s.find('{')?;
                serde_json::Deserializer::from_str(&s[i..])
                    .into_iter::<serde_json::Value>()
                    .next()?
                    .ok()
            })
            .unwrap_or(serde_json::Value::Null)
    }
}

impl Drop for Brain {
    fn drop(&mut self) {
        crate::util::children::untrack(self.child.id());
        self.stop();
    }
}

/// A private temporary directory, removed when dropped (after the brain in it stopped).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = wall_ns();
        let p = std::env::temp_dir().join(format!(
            "brainloop-console-bench-{}-{nanos}",
            std::process::id()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&p)
            .with_context(|| format!("cannot create {}", p.display()))?;
        Ok(Self(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free TCP port on loopback (bound and released; the brain binds it right after).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(l.local_addr()?.port())
}

// ------------------------------------------------------------------ the observer

type Samples<T> = Arc<Mutex<Vec<(Instant, T)>>>;

/// The observer in every phase: the brain's health and `cmd_vel`, with their arrival times.
struct Observer {
    health: Samples<LoopHealthMsg>,
    cmd_vel: Samples<Twist>,
    _bus: ZenohBus,
}

impl Observer {
    fn open(opts: &ZenohOptions) -> Result<Self> {
        let bus = ZenohBus::open(opts, "bench-observer", monotonic_ns)
            .map_err(|e| anyhow::anyhow!("observer: {e}"))?;
        let health: Samples<LoopHealthMsg> = Default::default();
        let cmd_vel: Samples<Twist> = Default::default();
        let h = health.clone();
        bus.subscribe_raw(net_topics::HEALTH, move |b| {
            let now = Instant::now();
            if let Ok(m) = LoopHealthMsg::from_cdr(b) {
                h.lock().unwrap_or_else(|e| e.into_inner()).push((now, m));
            }
        })
        .map_err(|e| anyhow::anyhow!("observer: {e}"))?;
        let c = cmd_vel.clone();
        bus.subscribe_with(net_topics::CMD_VEL, move |t: Twist| {
            let now = Instant::now();
            c.lock().unwrap_or_else(|e| e.into_inner()).push((now, t));
        })
        .map_err(|e| anyhow::anyhow!("observer: {e}"))?;
        Ok(Self {
            health,
            cmd_vel,
            _bus: bus,
        })
    }

    fn health_count(&self) -> usize {
        self.health.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn health(&self) -> Vec<(Instant, LoopHealthMsg)> {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn cmd_vel(&self) -> Vec<(Instant, Twist)> {
        self.cmd_vel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

// ------------------------------------------------------------------ the phases

#[derive(Debug, Clone, Copy)]
struct Phase {
    name: &'static str,
    console: bool,
    start: Instant,
    end: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReleaseKind {
    Explicit,
    Deadman,
}

/// One key hold of phase B.
#[derive(Debug, Clone, Copy)]
struct Hold {
    press: Instant,
    /// Followed by a long gap (the robot comes to rest before the next press): its release
    /// to stop is measured.
    settle: bool,
    release: Option<(Instant, ReleaseKind)>,
}

/// What phase B recorded.
#[derive(Debug, Default)]
struct Operated {
    holds: Vec<Hold>,
    activity: ConsoleActivity,
    key_to_wheel: KeyToWheel,
}

#[derive(Debug, Clone, Copy)]
enum KeyState {
    /// Nothing held; the next press at.
    Idle(Instant),
    /// A key held until `until`, autorepeating from `next_repeat`; `gap` from the release to
    /// the next press.
    Held {
        key: char,
        until: Instant,
        next_repeat: Instant,
        explicit: bool,
        gap: Duration,
    },
    /// Let go without a release report: waiting for the deadman, then `gap`.
    Lapsing(Duration),
}

fn send(client: &mut Client, c: (OperatorCommand, i64)) {
    client.send(c.0, c.1);
}

fn is_zero(t: &Twist) -> bool {
    t.linear == 0.0 && t.angular == 0.0
}

/// Phase B's console: attached, drawn at 10 Hz, pressing keys for `seconds`.
fn operate(
    opts: &ZenohOptions,
    key: OperatorKey,
    limits: &crate::config::LimitsConfig,
    seconds: f64,
    seed: u64,
) -> Result<Operated> {
    use ratatui::backend::TestBackend;
    let mut out = Operated::default();
    let t_connect = Instant::now();
    let mut client = Client::connect(opts, Some(key), "bench operator key".into(), monotonic_ns)
        .map_err(|e| anyhow::anyhow!("console: {e}"))?;
    let model = client.model();
    while !lock(&model).connected(Instant::now()) {
        if t_connect.elapsed() > ATTACH_TIMEOUT {
            bail!(
                "the console saw no health report within {} s of attaching",
                ATTACH_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    out.activity.attach_ms = t_connect.elapsed().as_secs_f64() * 1e3;
    let mut terminal =
        ratatui::Terminal::new(TestBackend::new(TERM_COLS, TERM_ROWS)).context("test terminal")?;
    let mut ui = Ui::default();
    let mut controls = Controls::new(DEADMAN);
    let mut rng = SplitMix::new(seed);
    let mut frame_ms = Vec::new();
    let mut last_draw: Option<Instant> = None;
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(seconds);
    let mut state = KeyState::Idle(t0 + Duration::from_secs_f64(rng.range(TAP_GAP.0, TAP_GAP.1)));
    let mut next_poll = t0;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        // Keys.
        match state {
            KeyState::Idle(at) if now >= at => {
                let key = match rng.below(5) {
                    0 | 1 => 'w',
                    2 => 's',
                    3 => 'a',
                    _ => 'd',
                };
                let hold = Duration::from_secs_f64(rng.range(HOLD.0, HOLD.1));
                let explicit = rng.uniform() < 0.5;
                let settle = rng.uniform() < 0.5;
                let gap = Duration::from_secs_f64(if settle {
                    rng.range(SETTLE_GAP.0, SETTLE_GAP.1)
                } else {
                    rng.range(TAP_GAP.0, TAP_GAP.1)
                });
                let cmds = {
                    let mut m = lock(&model);
                    ui.key(
                        Key::Char(key),
                        &mut m,
                        &mut controls,
                        limits,
                        now,
                        wall_ns(),
                    )
                };
                for c in cmds {
                    send(&mut client, c);
                }
                out.activity.presses += 1;
                out.activity.key_events += 1;
                out.holds.push(Hold {
                    press: now,
                    settle,
                    release: None,
                });
                state = KeyState::Held {
                    key,
                    until: now + hold,
                    next_repeat: now + AUTOREPEAT_DELAY,
                    explicit,
                    gap,
                };
            }
            KeyState::Held {
                key,
                until,
                next_repeat,
                explicit,
                gap,
            } => {
                if now >= until {
                    if explicit {
                        if let Some(c) = controls.release(wall_ns()) {
                            send(&mut client, c);
                            out.activity.explicit_releases += 1;
                            if let Some(h) = out.holds.last_mut() {
                                h.release = Some((now, ReleaseKind::Explicit));
                            }
                        }
                        state = KeyState::Idle(now + gap);
                    } else {
                        state = KeyState::Lapsing(gap);
                    }
                } else if now >= next_repeat {
                    let cmds = {
                        let mut m = lock(&model);
                        ui.key(
                            Key::Char(key),
                            &mut m,
                            &mut controls,
                            limits,
                            now,
                            wall_ns(),
                        )
                    };
                    for c in cmds {
                        send(&mut client, c);
                    }
                    out.activity.key_events += 1;
                    state = KeyState::Held {
                        key,
                        until,
                        next_repeat: next_repeat + AUTOREPEAT_EVERY,
                        explicit,
                        gap,
                    };
                }
            }
            KeyState::Lapsing(gap) if controls.held().is_none() => {
                state = KeyState::Idle(now + gap);
            }
            _ => {}
        }
        // The deadman and the repeats, as tui::run polls them.
        if now >= next_poll {
            next_poll = now + POLL;
            if let Some(c) = controls.poll(now, wall_ns()) {
                let release = c.0 == OperatorCommand::Release;
                send(&mut client, c);
                if release {
                    out.activity.deadman_releases += 1;
                    if let Some(h) = out.holds.last_mut() {
                        h.release = Some((now, ReleaseKind::Deadman));
                    }
                    if let KeyState::Lapsing(gap) = state {
                        state = KeyState::Idle(now + gap);
                    }
                }
            }
        }
        // The 10 Hz redraw, as tui::run draws.
        if last_draw.is_none_or(|t| now.duration_since(t) >= tui::REDRAW) {
            last_draw = Some(now);
            let f0 = Instant::now();
            let mut m = lock(&model).clone();
            m.held = controls.held();
            terminal
                .draw(|f| tui::draw(f, &m, &ui, now))
                .context("draw")?;
            frame_ms.push(f0.elapsed().as_secs_f64() * 1e3);
        }
        // Sleep to the next thing to do.
        let mut wake = next_poll
            .min(last_draw.unwrap_or(now) + tui::REDRAW)
            .min(end);
        match state {
            KeyState::Idle(at) => wake = wake.min(at),
            KeyState::Held {
                until, next_repeat, ..
            } => wake = wake.min(until).min(next_repeat),
            KeyState::Lapsing(_) => {}
        }
        let now = Instant::now();
        if wake > now {
            std::thread::sleep(wake - now);
        }
    }
    // Let go of whatever is held, as quitting does.
    let now = Instant::now();
    if let Some(c) = controls.release(wall_ns()) {
        send(&mut client, c);
        out.activity.explicit_releases += 1;
        if let Some(h) = out.holds.last_mut() {
            h.release = Some((now, ReleaseKind::Explicit));
        }
    }
    // Stay for the last stop and a status that covers the last key event.
    let last_key = Instant::now();
    let tail_end = last_key + TAIL;
    while Instant::now() < tail_end {
        if let Some(c) = controls.poll(Instant::now(), wall_ns()) {
            send(&mut client, c);
        }
        std::thread::sleep(POLL);
    }
    let status_by = Instant::now() + Duration::from_secs(1);
    loop {
        let fresh = lock(&model)
            .status
            .as_ref()
            .is_some_and(|s| s.1 > last_key + Duration::from_millis(150));
        if fresh || Instant::now() > status_by {
            break;
        }
        std::thread::sleep(POLL);
    }
    {
        let m = lock(&model);
        out.activity.sent = m.sent;
        out.activity.send_failures = m.send_failures;
        if let Some((s, _)) = &m.status {
            let k = s.key_to_wheel_ms;
            out.key_to_wheel = KeyToWheel {
                p50: k.p50,
                p99: k.p99,
                max: k.max,
                n: k.n,
                source: "the brain's BrainStatus.key_to_wheel_ms: operator key event (console wall clock, mapped onto the brain's) to the first tick that applied it, over the last 30 s of new key events; read at the end of phase B".into(),
            };
            out.activity.brain_accepted = s.commands_accepted;
            out.activity.brain_refused = s.commands_refused;
        } else {
            out.key_to_wheel.source = "no BrainStatus received".into();
        }
    }
    out.activity.frames = frame_ms.len() as u64;
    out.activity.frame_ms = LatencyMs::of(&frame_ms);
    let t_drop = Instant::now();
    drop(terminal);
    drop(client);
    out.activity.detach_ms = t_drop.elapsed().as_secs_f64() * 1e3;
    Ok(out)
}

/// The phase's report from the health reports.
fn phase_report(p: &Phase, health: &[(Instant, LoopHealthMsg)]) -> PhaseReport {
    let mut windows: Vec<&LoopHealthMsg> = Vec::new();
    let mut last: Option<Instant> = None;
    for (t, h) in health {
        if *t < p.start + WINDOW_IN || *t > p.end {
            continue;
        }
        if last.is_none_or(|l| t.duration_since(l) >= WINDOW - Duration::from_millis(50)) {
            windows.push(h);
            last = Some(*t);
        }
    }
    let med_worst = |f: &dyn Fn(&LoopHealthMsg) -> f64| {
        let mut v: Vec<f64> = windows.iter().map(|h| f(h)).collect();
        v.sort_by(f64::total_cmp);
        MedianWorst {
            median: median(&v),
            worst: v.last().copied().unwrap_or(0.0),
        }
    };
    // The counters at the phase's ends: the last report before each (the first at all if
    // none came before the start).
    let at = |t: Instant| {
        health
            .iter()
            .rev()
            .find(|(a, _)| *a <= t)
            .or(health.first())
            .map(|(_, h)| (h.missed, h.ticks))
            .unwrap_or((0, 0))
    };
    let (m0, t0) = at(p.start);
    let (m1, t1) = at(p.end);
    PhaseReport {
        name: p.name.into(),
        console: p.console,
        seconds: p.end.duration_since(p.start).as_secs_f64(),
        windows: windows.len(),
        jitter_p99_us: med_worst(&|h| h.jitter_p99_us),
        jitter_max_us: med_worst(&|h| h.jitter_max_us).worst,
        compute_p99_us: med_worst(&|h| h.compute_p99_us),
        missed: m1.saturating_sub(m0),
        ticks: t1.saturating_sub(t0),
        rate_hz: med_worst(&|h| h.rate_hz).median,
    }
}

fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]),
    }
}

/// Key press (from standstill) to first moving `cmd_vel`, and release to first zero `cmd_vel`.
fn from_cmd_vel(
    holds: &[Hold],
    cmd_vel: &[(Instant, Twist)],
    b_end: Instant,
) -> (LatencyMs, ReleaseToStop) {
    let ms = |a: Instant, b: Instant| {
        if b >= a {
            b.duration_since(a).as_secs_f64() * 1e3
        } else {
            -(a.duration_since(b).as_secs_f64() * 1e3)
        }
    };
    let mut press = Vec::new();
    let (mut all, mut explicit, mut deadman) = (Vec::new(), Vec::new(), Vec::new());
    let (mut unmeasured, mut short_gap) = (0u64, 0u64);
    for (i, h) in holds.iter().enumerate() {
        let next = holds.get(i + 1).map_or(b_end, |n| n.press);
        // Press: only from standstill (the last command before the press was zero).
        let before = cmd_vel.iter().rev().find(|(t, _)| *t <= h.press);
        if before.is_some_and(|(_, tw)| is_zero(tw)) {
            if let Some((t, _)) = cmd_vel
                .iter()
                .find(|(t, tw)| *t > h.press && *t < next && !is_zero(tw))
            {
                press.push(ms(h.press, *t));
            }
        }
        let Some((r, kind)) = h.release else {
            unmeasured += 1;
            continue;
        };
        if !h.settle {
            short_gap += 1;
            continue;
        }
        // Release: the first zero command after the hold's last moving one.
        let within: Vec<&(Instant, Twist)> = cmd_vel
            .iter()
            .filter(|(t, _)| *t > h.press && *t < next)
            .collect();
        let Some(last_moving) = within.iter().rposition(|(_, tw)| !is_zero(tw)) else {
            unmeasured += 1;
            continue;
        };
        let Some((stop, _)) = within[last_moving..].iter().find(|(_, tw)| is_zero(tw)) else {
            unmeasured += 1;
            continue;
        };
        let d = ms(r, *stop);
        all.push(d);
        match kind {
            ReleaseKind::Explicit => explicit.push(d),
            ReleaseKind::Deadman => deadman.push(d),
        }
    }
    let a = LatencyMs::of(&all);
    (
        LatencyMs::of(&press),
        ReleaseToStop {
            p50: a.p50,
            p99: a.p99,
            max: a.max,
            min: a.min,
            n: a.n,
            explicit: LatencyMs::of(&explicit),
            deadman: LatencyMs::of(&deadman),
            unmeasured,
            short_gap_skipped: short_gap,
        },
    )
}

/// The 1-minute load average (`/proc/loadavg`).
fn load_avg_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Run the bench: the brain as a child, phases A, B, C, the report. The brain is stopped
/// (SIGINT, then SIGKILL) on every path out of here.
pub fn run(opts: &ConsoleBenchOptions) -> Result<ConsoleBenchReport> {
    if !(opts.seconds.is_finite() && (2.0..=3600.0).contains(&opts.seconds)) {
        bail!("--seconds {}: expected 2..=3600", opts.seconds);
    }
    if !(opts.warmup_s.is_finite() && (0.0..=60.0).contains(&opts.warmup_s)) {
        bail!("warm-up {} s: expected 0..=60", opts.warmup_s);
    }
    let cfg = Config::load(&opts.config)
        .map_err(|e| anyhow::anyhow!("{}: {e}", opts.config.display()))?;
    if cfg.bus.multicast || !cfg.bus.connect.is_empty() {
        bail!(
            "{}: bench console keeps the bus on loopback: [bus].multicast must be false and [bus].connect empty",
            opts.config.display()
        );
    }
    let load_start = load_avg_1m();
    let dir = TempDir::new()?;
    let key_path = if cfg.teleop.operator_key.trim().is_empty() {
        dir.0.join("operator.key")
    } else {
        PathBuf::from(cfg.teleop.operator_key.trim())
    };

    // The brain, and the observer once it reports (a new port if the brain could not start).
    let mut started = None;
    let mut last_err = None;
    for _ in 0..3 {
        let endpoint = format!("tcp/127.0.0.1:{}", free_port()?);
        let mut brain = Brain::start(&opts.exe, &opts.config, &endpoint, &dir.0)?;
        let args = crate::nodes::NetArgs {
            listen: Vec::new(),
            connect: vec![endpoint.clone()],
            ros_compat: false,
        };
        let mut zo = crate::nodes::bus_options(&cfg, &args)?;
        zo.listen.clear();
        zo.multicast = false;
        let observer = Observer::open(&zo)?;
        let t = Instant::now();
        let ok = loop {
            if observer.health_count() > 0 {
                break Ok(());
            }
            if let Some(s) = brain.exited() {
                break Err(anyhow::anyhow!(
                    "the brain exited before reporting ({s}); its log:\n{}",
                    brain.log_tail(20)
                ));
            }
            if t.elapsed() > START_TIMEOUT {
                break Err(anyhow::anyhow!(
                    "no health report from the brain within {} s; its log:\n{}",
                    START_TIMEOUT.as_secs(),
                    brain.log_tail(20)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        match ok {
            Ok(()) => {
                started = Some((brain, observer, endpoint, zo));
                break;
            }
            Err(e) => {
                let exited = brain.exited().is_some();
                drop(observer);
                drop(brain);
                if !exited {
                    return Err(e);
                }
                last_err = Some(e);
            }
        }
    }
    let Some((mut brain, observer, endpoint, zo)) = started else {
        return Err(last_err.unwrap_or_else(|| anyhow::anyhow!("the brain did not start")));
    };
    let result = (|| -> Result<_> {
        let key = OperatorKey::load(&key_path)
            .map_err(|e| anyhow::anyhow!("the brain's operator key: {e}"))?;
        std::thread::sleep(Duration::from_secs_f64(opts.warmup_s));
        let s = Duration::from_secs_f64(opts.seconds);
        let alive = |brain: &mut Brain| match brain.exited() {
            Some(st) => Err(anyhow::anyhow!(
                "the brain exited during the bench ({st}); its log:\n{}",
                brain.log_tail(20)
            )),
            None => Ok(()),
        };
        let a0 = Instant::now();
        std::thread::sleep(s);
        let a = Phase {
            name: "A",
            console: false,
            start: a0,
            end: Instant::now(),
        };
        alive(&mut brain)?;
        let b0 = Instant::now();
        let operated = operate(&zo, key, &cfg.limits, opts.seconds, opts.seed)?;
        let b = Phase {
            name: "B",
            console: true,
            start: b0,
            end: Instant::now(),
        };
        alive(&mut brain)?;
        let c0 = Instant::now();
        std::thread::sleep(s);
        let c = Phase {
            name: "C",
            console: false,
            start: c0,
            end: Instant::now(),
        };
        alive(&mut brain)?;
        Ok(([a, b, c], operated))
    })();
    let health = observer.health();
    let cmd_vel = observer.cmd_vel();
    drop(observer);
    let pid = brain.pid();
    let exit = brain.stop();
    let summary = brain.summary();
    let (phases, operated) = result?;
    drop(brain);
    drop(dir);

    let reports: Vec<PhaseReport> = phases.iter().map(|p| phase_report(p, &health)).collect();
    let (pa, pb, pc) = (&reports[0], &reports[1], &reports[2]);
    let without = 0.5 * (pa.jitter_p99_us.median + pc.jitter_p99_us.median);
    let jitter = JitterCompare {
        without,
        with: pb.jitter_p99_us.median,
        ratio: if without > 0.0 {
            pb.jitter_p99_us.median / without
        } else if pb.jitter_p99_us.median == 0.0 {
            1.0
        } else {
            f64::INFINITY
        },
        worst_without: pa.jitter_p99_us.worst.max(pc.jitter_p99_us.worst),
        worst_with: pb.jitter_p99_us.worst,
    };
    let missed = MissedCompare {
        without: pa.missed + pc.missed,
        with: pb.missed,
        without_seconds: pa.seconds + pc.seconds,
        with_seconds: pb.seconds,
    };
    let compute = ComputeCompare {
        without: 0.5 * (pa.compute_p99_us.median + pc.compute_p99_us.median),
        with: pb.compute_p99_us.median,
    };
    let (key_to_cmd_vel, release_to_stop) = from_cmd_vel(&operated.holds, &cmd_vel, phases[1].end);
    let targets = Targets {
        key_to_wheel_p99_ms: TARGET_KEY_TO_WHEEL_P99_MS,
        release_to_stop_ms: TARGET_RELEASE_TO_STOP_MS,
        key_to_wheel_met: operated.key_to_wheel.n > 0
            && operated.key_to_wheel.p99 <= TARGET_KEY_TO_WHEEL_P99_MS,
        release_to_stop_met: release_to_stop.n > 0
            && release_to_stop.unmeasured == 0
            && release_to_stop.max <= TARGET_RELEASE_TO_STOP_MS,
        no_missed_tick_met: missed.with == 0,
    };
    let mut notes = vec![
        "the observer (one zenoh session in this process: LoopHealth and cmd_vel, no status, no commands) is attached in all three phases; only the console differs between them".to_string(),
        "jitter = tick start lateness; each health report covers the last 1 s of ticks: per phase, non-overlapping windows wholly inside it (one report a second)".to_string(),
        "missed ticks per phase from the brain's cumulative counter in the reports at the phase's ends (100 ms resolution at the boundaries)".to_string(),
        format!("phase B is the console's whole life: Client::connect (the attach), the keys for --seconds, a {:.1} s tail, and closing its session", TAIL.as_secs_f64()),
        "key_to_cmd_vel and release_to_stop are seen on cmd_vel, which the brain publishes every 20 ms from its supervisor (drained every 10 ms): about 20 ms resolution; stop = linear and angular both zero".to_string(),
        "deadman releases coincide with the brain's own operator timeout (300 ms from the key event), so the brain may start stopping before the console's release is sent".to_string(),
        "release to stop: a teleop source that lets go stops the robot at once (no ramp); measured on the half of the releases followed by a 0.45-0.7 s pause (chosen at random), the others are quick taps whose next press may come before the stop".to_string(),
        "the brain's process and this one (console, observer) share the machine's CPUs".to_string(),
    ];
    if jitter.without.max(jitter.with) < 1.0 {
        notes.push(format!(
            "the jitter p99s are below 1 us ([integrator].wait = {}), so their ratio compares noise; the worst windows and the missed ticks say more",
            serde_json::to_value(cfg.integrator.wait)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        ));
    }
    if opts.seconds > 30.0 {
        notes.push(
            "key_to_wheel_ms covers only the last 30 s of phase B (the brain's window)".into(),
        );
    }
    let realtime = summary.get("realtime").and_then(|v| v.as_bool());
    notes.push(match realtime {
        Some(true) => "the brain's integrator ran SCHED_FIFO".into(),
        Some(false) => "the brain's integrator ran without SCHED_FIFO (not permitted here)".into(),
        None => "the brain's summary was not read: real-time scheduling unknown".into(),
    });
    Ok(ConsoleBenchReport {
        seconds: opts.seconds,
        warmup_s: opts.warmup_s,
        seed: opts.seed,
        endpoint: endpoint.clone(),
        brain_command: format!(
            "{} run --body kinematic --listen {endpoint} --config {}",
            opts.exe.display(),
            opts.config.display()
        ),
        brain_pid: pid,
        brain_rate_hz: cfg.integrator.rate_hz,
        brain_summary: summary,
        brain_exit: exit,
        observer:
            "one zenoh session in this process subscribed to LoopHealth and cmd_vel, in every phase"
                .into(),
        phases: reports,
        jitter_p99_us: jitter,
        missed,
        compute_p99_us: compute,
        key_to_wheel_ms: operated.key_to_wheel,
        key_to_cmd_vel_ms: key_to_cmd_vel,
        release_to_stop_ms: release_to_stop,
        console: operated.activity,
        targets,
        load_avg_1m: [load_start, load_avg_1m()],
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        notes,
    })
}

fn met(b: bool) -> &'static str {
    if b {
        "met"
    } else {
        "NOT met"
    }
}

/// The report as a table.
pub fn format_report(r: &ConsoleBenchReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let realtime = match r.brain_summary.get("realtime").and_then(|v| v.as_bool()) {
        Some(true) => "SCHED_FIFO",
        Some(false) => "no SCHED_FIFO",
        None => "scheduling unknown",
    };
    let _ = writeln!(
        s,
        "bench console: brain pid {} (`run --body kinematic`, {} Hz, {realtime}) on {}, multicast off; {} s per phase after a {} s warm-up; {} CPUs",
        r.brain_pid, r.brain_rate_hz, r.endpoint, r.seconds, r.warmup_s, r.cpus
    );
    let _ = writeln!(s, "observer: {}", r.observer);
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<16} {:>7} {:>7} {:>20} {:>13} {:>20} {:>7} {:>7}",
        "phase",
        "seconds",
        "windows",
        "jitter p99 us",
        "jitter max us",
        "compute p99 us",
        "missed",
        "ticks"
    );
    let _ = writeln!(
        s,
        "{:<16} {:>7} {:>7} {:>20} {:>13} {:>20} {:>7} {:>7}",
        "", "", "", "median / worst", "worst", "median / worst", "", ""
    );
    for p in &r.phases {
        let name = format!(
            "{}: {}",
            p.name,
            if p.console { "console" } else { "no console" }
        );
        let _ = writeln!(
            s,
            "{:<16} {:>7.1} {:>7} {:>20} {:>13.2} {:>20} {:>7} {:>7}",
            name,
            p.seconds,
            p.windows,
            format!(
                "{:.2} / {:.2}",
                p.jitter_p99_us.median, p.jitter_p99_us.worst
            ),
            p.jitter_max_us,
            format!(
                "{:.0} / {:.0}",
                p.compute_p99_us.median, p.compute_p99_us.worst
            ),
            p.missed,
            p.ticks
        );
    }
    let _ = writeln!(s);
    let j = &r.jitter_p99_us;
    let _ = writeln!(
        s,
        "jitter p99 with / without the console: {:.2}x (B {:.2} us vs mean of A and C {:.2} us; worst window {:.2} vs {:.2} us)",
        j.ratio, j.with, j.without, j.worst_with, j.worst_without
    );
    let m = &r.missed;
    let _ = writeln!(
        s,
        "missed ticks: {} with the console (B, {:.1} s), {} without (A + C, {:.1} s)   [no missed tick from the console: {}]",
        m.with,
        m.with_seconds,
        m.without,
        m.without_seconds,
        met(r.targets.no_missed_tick_met)
    );
    let _ = writeln!(
        s,
        "compute p99: {:.0} us with, {:.0} us without",
        r.compute_p99_us.with, r.compute_p99_us.without
    );
    let k = &r.key_to_wheel_ms;
    let _ = writeln!(
        s,
        "key to wheel (the brain's own measure): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, n = {}   [p99 <= {:.0} ms: {}]",
        k.p50,
        k.p99,
        k.max,
        k.n,
        r.targets.key_to_wheel_p99_ms,
        met(r.targets.key_to_wheel_met)
    );
    let c = &r.key_to_cmd_vel_ms;
    let _ = writeln!(
        s,
        "key press to moving cmd_vel (seen on the bus, ~20 ms resolution, presses from standstill): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, n = {}",
        c.p50, c.p99, c.max, c.n
    );
    let t = &r.release_to_stop_ms;
    let _ = writeln!(
        s,
        "release to stop (Release sent -> first zero cmd_vel, ~20 ms resolution): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, min {:.1} ms, n = {} ({} explicit, {} deadman; {} unmeasured, {} quick taps not measured)   [<= {:.0} ms: {}]",
        t.p50,
        t.p99,
        t.max,
        t.min,
        t.n,
        t.explicit.n,
        t.deadman.n,
        t.unmeasured,
        t.short_gap_skipped,
        r.targets.release_to_stop_ms,
        met(r.targets.release_to_stop_met)
    );
    let _ = writeln!(
        s,
        "  explicit releases: p50 {:.1} ms, max {:.1} ms; deadman lapses: p50 {:.1} ms, max {:.1} ms",
        t.explicit.p50, t.explicit.max, t.deadman.p50, t.deadman.max
    );
    let a = &r.console;
    let _ = writeln!(
        s,
        "console: attached in {:.0} ms, detached in {:.0} ms; {} presses, {} key events, {} explicit releases, {} deadman lapses; {} frames {}x{} (clone + draw p50 {:.2} ms, max {:.2} ms); {} commands sent ({} failed), brain accepted {}, refused {}",
        a.attach_ms,
        a.detach_ms,
        a.presses,
        a.key_events,
        a.explicit_releases,
        a.deadman_releases,
        a.frames,
        TERM_COLS,
        TERM_ROWS,
        a.frame_ms.p50,
        a.frame_ms.max,
        a.sent,
        a.send_failures,
        a.brain_accepted,
        a.brain_refused
    );
    let la = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
    let _ = writeln!(
        s,
        "load average (1 min): {} at the start, {} at the end; brain {}",
        la(r.load_avg_1m[0]),
        la(r.load_avg_1m[1]),
        r.brain_exit
    );
    let _ = writeln!(s, "notes:");
    for n in &r.notes {
        let _ = writeln!(s, "  - {n}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tw(l: f64) -> Twist {
        Twist {
            linear: l,
            angular: 0.0,
        }
    }

    #[test]
    fn release_to_stop_is_the_first_zero_after_the_last_moving_command() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let holds = [
            Hold {
                press: at(100),
                settle: true,
                release: Some((at(300), ReleaseKind::Explicit)),
            },
            Hold {
                press: at(500),
                settle: true,
                release: Some((at(800), ReleaseKind::Deadman)),
            },
            Hold {
                press: at(900),
                settle: false,
                release: Some((at(950), ReleaseKind::Explicit)),
            },
        ];
        let mut cv = Vec::new();
        for ms in (0..1000).step_by(20) {
            let moving = (120..=320).contains(&ms) || (540..=780).contains(&ms);
            cv.push((at(ms), tw(if moving { 0.25 } else { 0.0 })));
        }
        let (press, stop) = from_cmd_vel(&holds, &cv, at(1000));
        assert_eq!(press.n, 2);
        assert!((press.p50 - 20.0).abs() < 1e-6 || (press.p50 - 40.0).abs() < 1e-6);
        assert_eq!(stop.n, 2);
        assert_eq!(stop.unmeasured, 0);
        assert_eq!(stop.short_gap_skipped, 1);
        // 300 -> 340 (first zero after 320) and 800 -> 800 (first zero after 780).
        assert!((stop.explicit.p50 - 40.0).abs() < 1e-6, "{stop:?}");
        assert!(stop.deadman.p50.abs() < 1e-6, "{stop:?}");
    }

    #[test]
    fn windows_inside_the_phase_do_not_overlap() {
        let t0 = Instant::now();
        let mut health = Vec::new();
        for i in 0..50u64 {
            let h = LoopHealthMsg {
                jitter_p99_us: i as f64,
                missed: i / 10,
                ticks: i * 5,
                ..Default::default()
            };
            health.push((t0 + Duration::from_millis(100 * i), h));
        }
        let p = Phase {
            name: "A",
            console: false,
            start: t0 + Duration::from_millis(50),
            end: t0 + Duration::from_millis(4050),
        };
        let r = phase_report(&p, &health);
        // Reports at 1.1, 2.1, 3.1 s (4.1 s is after the end).
        assert_eq!(r.windows, 3, "{r:?}");
        assert_eq!(r.jitter_p99_us.median, 21.0);
        assert_eq!(r.jitter_p99_us.worst, 31.0);
        assert_eq!(r.missed, 4);
        assert_eq!(r.ticks, 200);
    }
}
