//! `brainloop soak`: the brain in real time, working through the scenarios on a simulated body,
//! while seeded, scripted faults are injected into its real code paths; what every fault did is
//! checked at the motors by an oracle that knows the schedule.
//!
//! The brain is the one [`crate::brain::build`] makes (regions on their own threads, the
//! integrator on the real-time runner [`run_realtime`], the motor stage and the override mux),
//! driving a kinematic or MuJoCo body behind the in-process simulated board, so every setpoint
//! and every telemetry frame crosses the real serial protocol. Between the board and the wheels
//! sits the audit ([`Audited`]): every setpoint that reaches a motor is checked there.
//!
//! Fault classes (one at a time, in a seeded order, each followed by a recovery window):
//! - `cpu_burst`: two real busy threads (one per core) for 2-3 s;
//! - `region_crash` / `region_hang` / `region_nan`: the proprioception region (`on_failure =
//!   "stop"`) panics (its thread dies; the supervisor restarts it after the fault), blocks in its
//!   step, or publishes non-finite embeddings;
//! - `estop_storm`: 10-30 e-stop presses and clears 5-80 ms apart on the console's mux input,
//!   ending with a clear;
//! - `teleop_flap`: drive commands (some over the limits, some non-finite) and releases 10-60 ms
//!   apart on the console's mux input, ending with a release;
//! - `clock_step`: the clock the body's telemetry and the regions are stamped with steps 3-10 s
//!   forward or back for 1.5 s;
//! - `serial_garbage`: every byte on the serial line (both directions) replaced by a random one
//!   for 1-2 s; `bit_flips`: each bit on the line flipped with probability 2e-4 for 3 s;
//! - `encoder_glitch`: the board sends wild encoder counts (valid frames, CRC intact) for 1-2 s,
//!   as a broken encoder or a fake board would; the host must refuse them (counted as
//!   implausible telemetry), its body state go stale and the brain command zero;
//! - `model_vanish`: the language model file disappears from the models directory (a private
//!   copy); the region is rebuilt from it (as a supervisor restarting it would), which must fail
//!   with a clear error while the running brain goes on; the file comes back and the rebuild
//!   must succeed;
//! - `node_kill` / `bus_partition`: the proprioception slot is switched to the same region running
//!   as its own process on a zenoh bus on loopback ([`crate::experiment::soak_bus`]), which is
//!   then killed with SIGKILL (and restarted after 1-2 s, as `up`'s supervisor would), or cut off
//!   for 2-3 s by a relay that holds every byte and then lets the backlog through.
//!
//! Per class: injected, detected (the brain's own records or counters show it), time to a safe
//! state (injection to the first moment the setpoint at the motors is zero, seen on a command or
//! at the next physics step, for the faults that must stop the robot and for teleop releases), wrong commands (a setpoint at a motor that is non-finite, over
//! the limits' wheel speed, not one the host sent (a corrupted frame accepted), or non-zero past
//! the fault's stop deadline, or a motor still turning past it), recordings lost (the run's MCAP
//! recording, flushed after the fault, reads back fewer messages than were written, or the
//! checkpointed summary does not parse) and recovered (a healthy tick, driven by autonomy with
//! fresh body and regions, within 5 s of the fault's end, without restarting the process).

use crate::body::{Body, BodyError, RobotParams, SimulatedBody};
use crate::brain::Sources;
use crate::config::Config;
use crate::experiment::soak_bus::{NodeFeed, ProprioSwitch};
use crate::integrator::rt::{monotonic_ns, run_realtime, RecordRing, RtOptions};
use crate::integrator::{IntegratorOptions, TickRecord};
use crate::msg::{
    BodyState, ControlSource, Instruction, RegionId, TeleopCommand, Twist, WheelSpeeds,
};
use crate::regions::language::InstructionInbox;
use crate::regions::{EmbeddingRef, Region, RegionCore, RegionError, RegionHandle};
use crate::report::mcap::Recorder;
use crate::sim::board::{LineNoise, LinkErrors, SimBoard};
use crate::sim::bodies::{ArenaBody, Physics};
use crate::sim::kinematic::KinematicWorld;
use crate::sim::mjcf::TIMESTEP;
use crate::sim::mujoco::MujocoBody;
use crate::sim::scenario::Layout;
use crate::util::SplitMix;
use anyhow::{bail, Context, Result};
use crossbeam_utils::atomic::AtomicCell;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The fault classes, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultClass {
    /// Two busy threads, one per core.
    CpuBurst,
    /// The proprioception region panics.
    RegionCrash,
    /// The proprioception region blocks in its step.
    RegionHang,
    /// The proprioception region publishes non-finite embeddings.
    RegionNan,
    /// E-stop presses and clears in quick succession.
    EstopStorm,
    /// Teleop drive and release in quick succession, some commands out of bounds.
    TeleopFlap,
    /// The telemetry and region clock steps forward or back.
    ClockStep,
    /// Random bytes on the serial line.
    SerialGarbage,
    /// Bit flips on the serial line.
    BitFlips,
    /// The board sends wild encoder counts (CRC intact): a broken encoder or a fake board.
    EncoderGlitch,
    /// The language model file vanishes.
    ModelVanish,
    /// The proprioception region's node process is killed (SIGKILL) and restarted.
    NodeKill,
    /// The bus between the proprioception node and the brain holds every byte, then heals.
    BusPartition,
}

impl FaultClass {
    /// Every class.
    pub const ALL: [FaultClass; 13] = [
        FaultClass::CpuBurst,
        FaultClass::RegionCrash,
        FaultClass::RegionHang,
        FaultClass::RegionNan,
        FaultClass::EstopStorm,
        FaultClass::TeleopFlap,
        FaultClass::ClockStep,
        FaultClass::SerialGarbage,
        FaultClass::BitFlips,
        FaultClass::EncoderGlitch,
        FaultClass::ModelVanish,
        FaultClass::NodeKill,
        FaultClass::BusPartition,
    ];

    /// Name in the report.
    pub fn name(self) -> &'static str {
        match self {
            FaultClass::CpuBurst => "cpu_burst",
            FaultClass::RegionCrash => "region_crash",
            FaultClass::RegionHang => "region_hang",
            FaultClass::RegionNan => "region_nan",
            FaultClass::EstopStorm => "estop_storm",
            FaultClass::TeleopFlap => "teleop_flap",
            FaultClass::ClockStep => "clock_step",
            FaultClass::SerialGarbage => "serial_garbage",
            FaultClass::BitFlips => "bit_flips",
            FaultClass::EncoderGlitch => "encoder_glitch",
            FaultClass::ModelVanish => "model_vanish",
            FaultClass::NodeKill => "node_kill",
            FaultClass::BusPartition => "bus_partition",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }
}

/// Index of the "no fault" bucket in the oracle's counters.
const BASELINE: usize = FaultClass::ALL.len();

/// What `brainloop soak` was asked to do.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Configuration file.
    pub config: PathBuf,
    /// Minutes of soak (wall clock).
    pub minutes: f64,
    /// The body's physics.
    pub physics: Physics,
    /// Seed of the fault schedule and the scenario layouts.
    pub seed: u64,
    /// Scenario directory.
    pub scenarios: PathBuf,
    /// Report directory (run.mcap, summary.json, soak.json, the private models copy).
    pub report_dir: PathBuf,
}

/// Time to a safe state over a class's samples, ms.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SafeMs {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

impl SafeMs {
    fn of(samples: &[f64]) -> Self {
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        let pct = |q: f64| {
            if v.is_empty() {
                0.0
            } else {
                let i = ((v.len() - 1) as f64 * q).round() as usize;
                (v[i] * 1000.0).round() / 1000.0
            }
        };
        Self {
            n: v.len(),
            p50: pct(0.5),
            p99: pct(0.99),
            max: pct(1.0),
        }
    }
}

/// One class's figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ClassReport {
    /// Faults injected.
    pub injected: u64,
    /// Faults the brain's records or counters showed.
    pub detected: u64,
    /// Injection to the first zero setpoint at the motors.
    pub time_to_safe_ms: SafeMs,
    /// Setpoints at a motor that should not have reached it.
    pub wrong_commands: u64,
    /// Faults after which the recording or the checkpointed summary did not read back whole.
    pub recordings_lost: u64,
    /// Faults after which the brain was healthy again within 5 s, without a restart.
    pub recovered: u64,
}

/// Wrong commands by kind.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct WrongKinds {
    /// Non-finite setpoints.
    pub wrong_commands_nonfinite: u64,
    /// Setpoints over the wheel speed the limits allow.
    pub wrong_commands_over_limit: u64,
    /// Non-zero setpoints past a stop deadline (e-stop, stale body, failed region, dead link).
    pub wrong_commands_while_stopped: u64,
    /// A motor still turning past a stop deadline.
    pub wrong_commands_held: u64,
    /// Setpoints the host never sent (a corrupted frame accepted).
    pub wrong_commands_corrupted: u64,
}

/// What a soak did.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// Minutes asked for.
    pub minutes: f64,
    /// Wall time, s.
    pub wall_s: f64,
    /// Body.
    pub body: String,
    /// Seed.
    pub seed: u64,
    /// Regions that ran.
    pub regions: Vec<&'static str>,
    /// Scenarios driven (switched every 30 s or on arrival).
    pub scenarios: Vec<String>,
    /// Goals reached.
    pub goals_reached: u64,
    /// Integrator ticks.
    pub ticks: u64,
    /// Missed deadlines.
    pub missed: u64,
    /// Start lateness p99, us.
    pub lateness_p99_us: f64,
    /// Whether SCHED_FIFO was granted.
    pub realtime: bool,
    /// Per class.
    pub faults: BTreeMap<&'static str, ClassReport>,
    /// Wrong commands outside any fault.
    pub wrong_commands_baseline: u64,
    /// Wrong commands in all.
    pub wrong_commands_total: u64,
    /// Wrong commands by kind.
    pub wrong_kinds: WrongKinds,
    /// Faults whose recording did not read back, in all.
    pub recordings_lost_total: u64,
    /// 1 when the finished run.mcap or summary.json does not read back whole.
    pub recordings_lost_final: u64,
    /// Messages written to run.mcap / read back from it.
    pub recorded_messages: u64,
    /// Messages read back from the finished run.mcap.
    pub replayed_messages: u64,
    /// Faults injected / recovered, in all.
    pub injected_total: u64,
    /// Faults recovered, in all.
    pub recovered_total: u64,
    /// The simulated link's rejected frames over the run (every arena).
    pub link_errors: LinkErrors,
    /// Commands the motor stage rejected as non-finite.
    pub rejected_commands: u64,
    /// Stopped early by a signal.
    pub interrupted: bool,
    /// The report directory.
    pub report_dir: String,
}

/// The oracle: what the soak knows about the faults, and what the motors saw.
struct Oracle {
    /// Setpoints reaching a motor at or after this time must be zero (u64::MAX: none).
    stop_after_ns: AtomicU64,
    /// The class of the fault in progress ([`BASELINE`] for none).
    class: AtomicU8,
    /// A time-to-safe sample in progress: its start (0: none) and its end (0: not yet).
    sample_from: AtomicU64,
    sample_safe: AtomicU64,
    /// A motor still turning past the deadline was already counted for this fault.
    held_counted: AtomicBool,
    wrong: [AtomicU64; FaultClass::ALL.len() + 1],
    kinds: [AtomicU64; 5],
    /// The host's last two setpoints (what a board may apply), as on the wire.
    sent: AtomicCell<[WheelSpeeds; 2]>,
    max_wheel: f64,
    /// Offset of the telemetry and region clocks (a clock step), ns.
    clock_offset_ns: AtomicI64,
    /// Line noise: 0 none, 1 bit flips, 2 garbage, 3 wild encoder counts; and its seed.
    noise: AtomicU8,
    noise_seed: AtomicU64,
    /// Region fault mode of the proprioception region: 0 none, 1 crash, 2 hang, 3 NaN.
    region_mode: AtomicU8,
    /// The simulated link's error counters, as of the last tick.
    link_errors: AtomicCell<LinkErrors>,
    /// Ground-truth distance to the goal, m, as of the last tick.
    goal_distance: AtomicCell<f64>,
}

impl Oracle {
    fn new(max_wheel: f64) -> Self {
        Self {
            stop_after_ns: AtomicU64::new(u64::MAX),
            class: AtomicU8::new(BASELINE as u8),
            sample_from: AtomicU64::new(0),
            sample_safe: AtomicU64::new(0),
            held_counted: AtomicBool::new(false),
            wrong: Default::default(),
            kinds: Default::default(),
            sent: AtomicCell::new([WheelSpeeds::default(); 2]),
            max_wheel,
            clock_offset_ns: AtomicI64::new(0),
            noise: AtomicU8::new(0),
            noise_seed: AtomicU64::new(0),
            region_mode: AtomicU8::new(0),
            link_errors: AtomicCell::new(LinkErrors::default()),
            goal_distance: AtomicCell::new(f64::INFINITY),
        }
    }

    fn wrong(&self, kind: usize) {
        let c = (self.class.load(Ordering::Relaxed) as usize).min(BASELINE);
        self.wrong[c].fetch_add(1, Ordering::Relaxed);
        self.kinds[kind].fetch_add(1, Ordering::Relaxed);
    }

    /// Start a time-to-safe sample now (unless one is in progress).
    fn start_sample(&self, now: u64) {
        if self.sample_from.load(Ordering::Acquire) == 0 {
            self.sample_safe.store(0, Ordering::Release);
            self.sample_from.store(now, Ordering::Release);
        }
    }

    /// A finished sample, ms (and clear it).
    fn take_sample(&self) -> Option<f64> {
        let from = self.sample_from.load(Ordering::Acquire);
        let safe = self.sample_safe.load(Ordering::Acquire);
        if from != 0 && safe != 0 {
            self.sample_from.store(0, Ordering::Release);
            Some(safe.saturating_sub(from) as f64 * 1e-6)
        } else {
            None
        }
    }

    fn set_deadline(&self, t: u64) {
        self.held_counted.store(false, Ordering::Relaxed);
        self.stop_after_ns.store(t, Ordering::Release);
    }

    fn clear_deadline(&self) {
        self.stop_after_ns.store(u64::MAX, Ordering::Release);
    }
}

const K_NONFINITE: usize = 0;
const K_OVER: usize = 1;
const K_STOPPED: usize = 2;
const K_HELD: usize = 3;
const K_CORRUPT: usize = 4;

fn is_zero(w: &WheelSpeeds) -> bool {
    w.left.abs() < 1e-3 && w.right.abs() < 1e-3
}

fn same(a: &WheelSpeeds, b: &WheelSpeeds) -> bool {
    (a.left - b.left).abs() < 1.5e-3 && (a.right - b.right).abs() < 1.5e-3
}

/// The arena body with the audit in front of its motors: every setpoint the board applies is
/// checked here.
struct Audited {
    inner: Box<dyn ArenaBody>,
    oracle: Arc<Oracle>,
    applied: WheelSpeeds,
}

impl Body for Audited {
    fn command(&mut self, w: WheelSpeeds) -> Result<(), BodyError> {
        let o = &self.oracle;
        let now = monotonic_ns();
        if !(w.left.is_finite() && w.right.is_finite()) {
            o.wrong(K_NONFINITE);
        } else if w.left.abs() > o.max_wheel + 1.5e-3 || w.right.abs() > o.max_wheel + 1.5e-3 {
            o.wrong(K_OVER);
        } else if !is_zero(&w) {
            if now >= o.stop_after_ns.load(Ordering::Acquire) {
                o.wrong(K_STOPPED);
            }
            let sent = o.sent.load();
            if !same(&w, &sent[0]) && !same(&w, &sent[1]) {
                o.wrong(K_CORRUPT);
            }
        }
        if is_zero(&w) && o.sample_from.load(Ordering::Acquire) != 0 {
            let _ =
                o.sample_safe
                    .compare_exchange(0, now.max(1), Ordering::AcqRel, Ordering::Acquire);
        }
        self.applied = w;
        self.inner.command(w)
    }
    fn state(&self) -> BodyState {
        self.inner.state()
    }
    fn estop(&mut self) {
        self.inner.estop()
    }
    fn clear_estop(&mut self) {
        self.inner.clear_estop()
    }
    fn name(&self) -> String {
        self.inner.name()
    }
}

impl SimulatedBody for Audited {
    fn advance(&mut self, dt: f64) {
        let o = &self.oracle;
        // A motor already at zero is safe as soon as the fault starts (no command may come).
        if is_zero(&self.applied) && o.sample_from.load(Ordering::Acquire) != 0 {
            let _ = o.sample_safe.compare_exchange(
                0,
                monotonic_ns().max(1),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        if !is_zero(&self.applied)
            && monotonic_ns() >= o.stop_after_ns.load(Ordering::Acquire)
            && !o.held_counted.swap(true, Ordering::Relaxed)
        {
            o.wrong(K_HELD);
        }
        self.inner.advance(dt)
    }
    fn ground_truth_pose(&self) -> (f64, f64, f64) {
        self.inner.ground_truth_pose()
    }
}

/// A scenario laid out, ready to drive.
struct Arena {
    board: SimBoard<Audited>,
    goal: (f64, f64, f64),
    /// Monotonic time the body's clock started at.
    epoch_ns: u64,
}

/// The body the integrator drives: the board in front of the audited arena body, restamped
/// onto the monotonic clock (plus a clock step when one is injected).
struct SoakBody {
    arena: Arena,
    oracle: Arc<Oracle>,
    last_ns: u64,
    acc_s: f64,
    noise: u8,
    next: crossbeam_channel::Receiver<Arena>,
    /// Link errors of the arenas driven before this one.
    errors_before: LinkErrors,
}

impl Body for SoakBody {
    fn command(&mut self, w: WheelSpeeds) -> Result<(), BodyError> {
        let wire = |v: f64| crate::link::codec::wire_to_rad_s(crate::link::codec::rad_s_to_wire(v));
        let q = WheelSpeeds {
            left: wire(w.left),
            right: wire(w.right),
        };
        let s = self.oracle.sent.load();
        self.oracle.sent.store([q, s[0]]);
        self.arena.board.command(w)
    }
    fn state(&self) -> BodyState {
        let mut s = self.arena.board.state();
        let off = self.oracle.clock_offset_ns.load(Ordering::Relaxed);
        let t = (self.arena.epoch_ns + s.stamp_ns) as i64 + off;
        s.stamp_ns = t.max(1) as u64;
        s
    }
    fn estop(&mut self) {
        self.arena.board.estop()
    }
    fn clear_estop(&mut self) {
        self.arena.board.clear_estop()
    }
    fn name(&self) -> String {
        self.arena.board.name()
    }
}

impl SoakBody {
    /// Advance the arena to `now` (in physics steps), take a new arena if one is waiting, and
    /// apply the line noise the oracle asks for.
    fn pre_tick(&mut self, now: u64) {
        if let Ok(a) = self.next.try_recv() {
            let e = self.arena.board.link_errors();
            let t = &mut self.errors_before;
            t.host_crc_errors += e.host_crc_errors;
            t.host_decode_errors += e.host_decode_errors;
            t.board_rx_errors += e.board_rx_errors;
            t.host_implausible += e.host_implausible;
            self.arena = a;
            self.noise = 0;
            self.last_ns = now;
        }
        let want = self.oracle.noise.load(Ordering::Relaxed);
        if want != self.noise {
            self.noise = want;
            let seed = self.oracle.noise_seed.load(Ordering::Relaxed);
            let link = self.arena.board.link_mut();
            link.set_noise(match want {
                1 => Some(LineNoise::new(seed, 2e-4, false)),
                2 => Some(LineNoise::new(seed, 0.0, true)),
                _ => None,
            });
            link.set_encoder_glitch((want == 3).then_some(seed));
        }
        let dt = (now.saturating_sub(self.last_ns) as f64 * 1e-9).min(0.1);
        self.last_ns = now;
        self.acc_s += dt;
        while self.acc_s >= TIMESTEP {
            self.arena.board.advance(TIMESTEP);
            self.acc_s -= TIMESTEP;
        }
        let (e, t) = (self.arena.board.link_errors(), self.errors_before);
        self.oracle.link_errors.store(LinkErrors {
            host_crc_errors: t.host_crc_errors + e.host_crc_errors,
            host_decode_errors: t.host_decode_errors + e.host_decode_errors,
            board_rx_errors: t.board_rx_errors + e.board_rx_errors,
            host_implausible: t.host_implausible + e.host_implausible,
        });
        let (x, y, _) = self.arena.board.ground_truth_pose();
        let g = self.arena.goal;
        self.oracle
            .goal_distance
            .store((x - g.0).hypot(y - g.1) - g.2);
    }
}

/// The proprioception region with a fault switch in front of its step.
struct FaultyRegion {
    inner: Box<dyn Region>,
    mode: Arc<Oracle>,
    buf: Vec<f32>,
}

impl Region for FaultyRegion {
    fn core(&self) -> &RegionCore {
        self.inner.core()
    }
    fn step(&mut self, now_ns: u64) -> Result<Option<EmbeddingRef<'_>>, RegionError> {
        match self.mode.region_mode.load(Ordering::Acquire) {
            1 => panic!("soak: injected region crash"),
            2 => {
                while self.mode.region_mode.load(Ordering::Acquire) == 2 {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return Ok(None);
            }
            3 => {
                let Some(e) = self.inner.step(now_ns)? else {
                    return Ok(None);
                };
                let (seq, stamp_ns, model_id) = (e.seq, e.stamp_ns, e.model_id);
                self.buf.clear();
                self.buf.extend(e.vector.iter().map(|_| f32::NAN));
                return Ok(Some(EmbeddingRef {
                    seq,
                    stamp_ns,
                    model_id,
                    vector: &self.buf,
                    grid: [0; 3],
                    spatial: &[],
                }));
            }
            _ => {}
        }
        self.inner.step(now_ns)
    }
}

/// Body states for the proprioception region, written each tick (lock-free).
#[derive(Clone, Default)]
struct StateCell(Arc<AtomicCell<Option<BodyState>>>);

impl crate::regions::sources::BodyStateSource for StateCell {
    fn latest(&mut self, _now_ns: u64) -> Option<BodyState> {
        self.0.load()
    }
}

fn arena(
    physics: Physics,
    params: &RobotParams,
    layout: &Layout,
    oracle: &Arc<Oracle>,
) -> Result<Arena> {
    let inner: Box<dyn ArenaBody> = match physics {
        Physics::Kinematic => Box::new(KinematicWorld::new(params.clone(), layout)),
        Physics::Mujoco => Box::new(MujocoBody::new(params.clone(), layout)?),
    };
    let g = layout.goal();
    Ok(Arena {
        board: SimBoard::new(Audited {
            inner,
            oracle: oracle.clone(),
            applied: WheelSpeeds::default(),
        }),
        goal: (g.x, g.y, layout.within_m),
        epoch_ns: monotonic_ns(),
    })
}

/// A private copy of the models directory (hard links where possible), so a vanishing model
/// file never touches the real one.
fn private_models(dir: &Path) -> Result<PathBuf> {
    let src = crate::regions::models::models_dir();
    let dst = dir.join("models");
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).with_context(|| format!("creating {}", dst.display()))?;
    for e in std::fs::read_dir(&src).with_context(|| format!("reading {}", src.display()))? {
        let e = e?;
        if !e.file_type()?.is_file() {
            continue;
        }
        let to = dst.join(e.file_name());
        if std::fs::hard_link(e.path(), &to).is_err() {
            std::fs::copy(e.path(), &to)
                .with_context(|| format!("copying {} to {}", e.path().display(), to.display()))?;
        }
    }
    Ok(dst)
}

/// One fault as scheduled.
struct Planned {
    class: FaultClass,
    duration_s: f64,
}

fn plan(rng: &mut SplitMix) -> Vec<Planned> {
    // Every class once per round, in a seeded order.
    let mut order: Vec<FaultClass> = FaultClass::ALL.to_vec();
    for i in (1..order.len()).rev() {
        let j = rng.below(i + 1);
        order.swap(i, j);
    }
    order
        .into_iter()
        .map(|class| Planned {
            class,
            duration_s: match class {
                FaultClass::CpuBurst => rng.range(2.0, 3.0),
                FaultClass::RegionCrash | FaultClass::RegionHang | FaultClass::RegionNan => {
                    rng.range(1.0, 2.0)
                }
                FaultClass::ClockStep => 1.5,
                FaultClass::SerialGarbage => rng.range(1.0, 2.0),
                FaultClass::BitFlips => 3.0,
                FaultClass::EncoderGlitch => rng.range(1.0, 2.0),
                // Storms and flaps end when their script does.
                FaultClass::EstopStorm | FaultClass::TeleopFlap => 0.0,
                FaultClass::ModelVanish => 0.5,
                FaultClass::NodeKill => rng.range(1.0, 2.0),
                FaultClass::BusPartition => rng.range(2.0, 3.0),
            },
        })
        .collect()
}

/// Read `path` (an MCAP being written) and count the messages that read back.
fn readable_messages(path: &Path) -> u64 {
    crate::report::mcap::read_recoverable(path)
        .map(|r| r.messages)
        .unwrap_or(0)
}

fn write_json_atomic<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(v)? + "\n")
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn json_reads_back(path: &Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some()
}

/// Drain tick records into the recording and `last`; `see` sees every one.
fn drain(
    ring: &RecordRing,
    recorder: &mut Recorder,
    recorded: &mut u64,
    last: &mut TickRecord,
    see: &mut dyn FnMut(&TickRecord),
) -> Result<()> {
    while let Some(r) = ring.pop() {
        recorder.record("/brain/tick", r.now_ns, &r)?;
        *recorded += 1;
        see(&r);
        *last = r;
    }
    Ok(())
}

/// Per-fault bookkeeping while it runs and recovers.
#[derive(Default)]
struct Window {
    detected: bool,
    healthy_at: Option<u64>,
}

/// Run the soak.
pub fn run(opts: &SoakOptions, stop: Arc<AtomicBool>) -> Result<SoakReport> {
    if !(opts.minutes.is_finite() && opts.minutes > 0.0 && opts.minutes <= 24.0 * 60.0) {
        bail!("--minutes {}: expected a number in (0, 1440]", opts.minutes);
    }
    let cfg = Config::load(&opts.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let params = RobotParams::load_default();
    std::fs::create_dir_all(&opts.report_dir)
        .with_context(|| format!("creating {}", opts.report_dir.display()))?;
    let models = private_models(&opts.report_dir)?;
    // Before any thread starts: the regions, and the rebuilds of `model_vanish`, read this copy.
    std::env::set_var("BRAINLOOP_MODELS", &models);
    let scenarios =
        crate::sim::scenario::load_dir(&opts.scenarios).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut rng = SplitMix::new(opts.seed ^ 0x50a6_50a6);

    let l = &cfg.limits;
    let max_wheel = {
        let w = params.twist_to_wheels(Twist {
            linear: l.max_linear_mps,
            angular: l.max_angular_rps,
        });
        w.left.abs().max(w.right.abs())
    };
    let oracle = Arc::new(Oracle::new(max_wheel));
    let period_ns = cfg.tick_period_ns();
    // A command decided before an e-stop may still be written by the tick in flight.
    let grace_ns = 2 * period_ns + 10_000_000;
    let proprio = cfg
        .regions
        .get("proprioception")
        .filter(|r| r.enabled)
        .context("the soak needs [regions.proprioception] (its faults must stop the robot)")?;
    let proprio_stale_ns = proprio.stale_after_ms * 1_000_000;
    let ramp_ns = ((l.max_linear_mps / l.max_linear_accel.max(1e-3))
        .max(l.max_angular_rps / l.max_angular_accel.max(1e-3))
        * 1e9) as u64;
    let body_stale_ns = cfg.body.stale_after_ms * 1_000_000;
    let watchdog_ns = crate::link::codec::Params::DEFAULT.watchdog_ms as u64 * 1_000_000;

    // The brain, from the one builder.
    let inbox = InstructionInbox::new();
    let cell = StateCell::default();
    let sources = Sources {
        frames: None,
        instructions: inbox.clone(),
        audio: None,
        body: Some(Box::new(cell.clone())),
        remote: Vec::new(),
    };
    let mut brain = crate::brain::build(&cfg, &params, IntegratorOptions::default(), sources)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let policy = crate::grounding::load_policy(&params).map_err(|e| {
        anyhow::anyhow!("{e} (train it with `brainloop align`, or run `make bootstrap`)")
    })?;
    brain.integrator.set_policy(Box::new(policy));
    let console = brain
        .integrator
        .teleop_input("console")
        .context("the soak drives the override mux as `console`: [teleop.sources.console]")?;
    let shed = crate::regions::ShedLevel::from_atomic(brain.integrator.shed_level());
    let region_names = brain.region_names();
    let mut regions = Vec::new();
    let mut proprio_region = None;
    for r in std::mem::take(&mut brain.regions) {
        if r.id == RegionId::Proprioception {
            proprio_region = Some(r);
        } else {
            regions.push(r);
        }
    }
    let proprio_region = proprio_region.context("the soak needs the proprioception region")?;
    // Its slot's writer is shared with the node's forwarder (for `node_kill`/`bus_partition`).
    let switch = ProprioSwitch::new(proprio_region.writer);
    let o2 = oracle.clone();
    let clock: Arc<dyn Fn() -> u64 + Send + Sync> = Arc::new(move || {
        let t = monotonic_ns() as i64 + o2.clock_offset_ns.load(Ordering::Relaxed);
        t.max(1) as u64
    });
    let mut handles: Vec<(RegionId, RegionHandle)> =
        crate::brain::spawn_regions(regions, clock.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let spawn_proprio = |region: Box<dyn Region>| -> Result<RegionHandle> {
        let region: Box<dyn Region> = Box::new(FaultyRegion {
            inner: region,
            mode: oracle.clone(),
            buf: Vec::new(),
        });
        let sw = switch.clone();
        Ok(crate::regions::spawn(region, clock.clone(), move |e| {
            sw.local(e)
        })?)
    };
    handles.push((
        RegionId::Proprioception,
        spawn_proprio(proprio_region.region)?,
    ));
    // The same region as its own process on the bus, for the node faults.
    let c3 = cell.clone();
    let mut feed = NodeFeed::start(
        &cfg,
        &opts.config,
        switch.clone(),
        Arc::new(move || c3.0.load()),
        opts.report_dir.join("node-proprioception.log"),
    )
    .context("soak: the proprioception node on the bus")?;

    // The recording.
    let mcap_path = opts.report_dir.join("run.mcap");
    let mut recorder = Recorder::create(&mcap_path)?;
    let mut recorded = 0u64;

    // The first scenario.
    let mut sc_i = 0usize;
    let mut scenario_names = Vec::new();
    let first = &scenarios[sc_i % scenarios.len()];
    let layout = first.layout(opts.seed.wrapping_add(first.seed))?;
    scenario_names.push(first.name.clone());
    inbox.set(Instruction {
        stamp_ns: monotonic_ns(),
        text: first.instruction.clone(),
    });
    recorder.record("/scenario/layout", monotonic_ns(), &layout)?;
    recorded += 1;
    let (next_tx, next_rx) = crossbeam_channel::bounded(1);
    let body = SoakBody {
        arena: arena(opts.physics, &params, &layout, &oracle)?,
        oracle: oracle.clone(),
        last_ns: monotonic_ns(),
        acc_s: 0.0,
        noise: 0,
        next: next_rx,
        errors_before: LinkErrors::default(),
    };
    let body_name = body.name();

    // The integrator on the real-time runner.
    let ring = RecordRing::new(8192);
    let loop_stop = Arc::new(AtomicBool::new(false));
    let c2 = cell.clone();
    let join = run_realtime(
        brain.integrator,
        body,
        RtOptions::from(&cfg.integrator),
        loop_stop.clone(),
        ring.clone(),
        move |now, b: &mut SoakBody| {
            b.pre_tick(now);
            c2.0.store(Some(b.state()));
        },
    )
    .context("cannot start the integrator thread")?;

    // Quiet the injected crash's panic message (every other panic still prints).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let injected = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|s| s.starts_with("soak: injected"));
        if !injected {
            default_hook(info);
        }
    }));

    let t0 = monotonic_ns();
    let end_ns = t0 + (opts.minutes * 60e9) as u64;
    let mut faults: BTreeMap<&'static str, ClassReport> = FaultClass::ALL
        .iter()
        .map(|c| (c.name(), ClassReport::default()))
        .collect();
    let mut safe_samples: Vec<Vec<f64>> = vec![Vec::new(); FaultClass::ALL.len()];
    let mut last = TickRecord::default();
    let mut goals = 0u64;
    let mut scenario_since = t0;
    let proprio_bit = 1u8 << RegionId::Proprioception.index();
    let lang_bit = 1u8 << RegionId::Language.index();
    let mut queue: Vec<Planned> = Vec::new();

    let healthy = |r: &TickRecord| {
        !r.estop
            && !r.body_stale
            && r.stale_mask & !lang_bit == 0
            && r.source == ControlSource::Autonomy
    };

    // Warm-up: the regions publish, the loop settles.
    let warm = monotonic_ns() + 2_000_000_000;
    while monotonic_ns() < warm && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(10));
        drain(&ring, &mut recorder, &mut recorded, &mut last, &mut |_| {})?;
    }

    let mut interrupted = false;
    'soak: while monotonic_ns() < end_ns {
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        if queue.is_empty() {
            queue = plan(&mut rng);
            queue.reverse();
        }
        // A new scenario every 30 s or on arrival, between faults.
        let now = monotonic_ns();
        let arrived = oracle.goal_distance.load() <= 0.0;
        if arrived || now.saturating_sub(scenario_since) > 30_000_000_000 {
            goals += arrived as u64;
            sc_i += 1;
            let s = &scenarios[sc_i % scenarios.len()];
            let seed = opts.seed.wrapping_add(s.seed).wrapping_add(sc_i as u64);
            let layout = s.layout(seed)?;
            recorder.record("/scenario/layout", now, &layout)?;
            recorded += 1;
            let a = arena(opts.physics, &params, &layout, &oracle)?;
            oracle.goal_distance.store(f64::INFINITY);
            let _ = next_tx.send(a);
            inbox.set(Instruction {
                stamp_ns: clock(),
                text: s.instruction.clone(),
            });
            scenario_names.push(format!("{} (seed {seed})", s.name));
            scenario_since = now;
            std::thread::sleep(Duration::from_millis(500));
        }
        let Some(p) = queue.pop() else { continue };
        let ci = p.class.index();
        let node_fault = matches!(p.class, FaultClass::NodeKill | FaultClass::BusPartition);
        let mut node_ready = true;
        if node_fault {
            // The brain's proprioception comes from the node for this fault: switch, and wait
            // (at most 10 s) until its embeddings keep the brain healthy.
            if !feed.node_running() {
                feed.spawn_node()?;
            }
            feed.use_node(true);
            let (from, t) = (feed.forwarded(), monotonic_ns());
            let mut fresh_at = None;
            loop {
                let mut see = |r: &TickRecord| {
                    if healthy(r) && fresh_at.is_none() && feed.forwarded() >= from + 5 {
                        fresh_at = Some(r.now_ns);
                    }
                };
                drain(&ring, &mut recorder, &mut recorded, &mut last, &mut see)?;
                if fresh_at.is_some_and(|f| monotonic_ns() > f + 300_000_000) {
                    break;
                }
                if monotonic_ns() > t + 10_000_000_000 || stop.load(Ordering::SeqCst) {
                    node_ready = false;
                    tracing::error!(
                        class = p.class.name(),
                        forwarded = feed.forwarded() - from,
                        "soak: the proprioception node never fed the brain"
                    );
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let inj = monotonic_ns();
        recorder.record(
            "/soak/fault",
            inj,
            &serde_json::json!({"class": p.class.name(), "event": "inject"}),
        )?;
        recorded += 1;
        oracle.class.store(ci as u8, Ordering::Release);
        let mut w = Window::default();
        let mut detected_model = false;
        let mut rebuild_ok = true;
        let errors0 = oracle.link_errors.load();
        let mut burners = Vec::new();
        let mut script: Vec<(u64, TeleopCommand)> = Vec::new();
        let fault_end;
        match p.class {
            FaultClass::CpuBurst => {
                let bs = Arc::new(AtomicBool::new(false));
                for _ in 0..2 {
                    burners.push((
                        bs.clone(),
                        crate::experiment::loop_bench::spawn_burner(bs.clone(), false)?,
                    ));
                }
                fault_end = inj + (p.duration_s * 1e9) as u64;
            }
            FaultClass::RegionCrash | FaultClass::RegionHang | FaultClass::RegionNan => {
                let mode = match p.class {
                    FaultClass::RegionCrash => 1,
                    FaultClass::RegionHang => 2,
                    _ => 3,
                };
                oracle.start_sample(inj);
                oracle.set_deadline(inj + proprio_stale_ns + ramp_ns + grace_ns);
                oracle.region_mode.store(mode, Ordering::Release);
                fault_end = inj + (p.duration_s * 1e9) as u64;
            }
            FaultClass::EstopStorm | FaultClass::TeleopFlap => {
                let n = 10 + rng.below(21);
                let mut t = inj;
                for k in 0..n {
                    let storm = p.class == FaultClass::EstopStorm;
                    let gap = if storm {
                        rng.range(5e6, 80e6)
                    } else {
                        rng.range(10e6, 60e6)
                    };
                    t += gap as u64;
                    let cmd = if storm {
                        if k % 2 == 0 {
                            TeleopCommand::Estop
                        } else {
                            TeleopCommand::ClearEstop
                        }
                    } else {
                        match rng.below(5) {
                            0 => TeleopCommand::Release,
                            1 => TeleopCommand::Drive(Twist {
                                linear: f64::NAN,
                                angular: rng.range(-1.0, 1.0),
                            }),
                            2 => TeleopCommand::Drive(Twist {
                                linear: rng.range(-3.0, 3.0) * l.max_linear_mps,
                                angular: rng.range(-3.0, 3.0) * l.max_angular_rps,
                            }),
                            _ => TeleopCommand::Drive(Twist {
                                linear: rng.range(-1.0, 1.0) * l.max_linear_mps,
                                angular: rng.range(-1.0, 1.0) * l.max_angular_rps,
                            }),
                        }
                    };
                    script.push((t, cmd));
                }
                t += 20_000_000;
                script.push((
                    t,
                    if p.class == FaultClass::EstopStorm {
                        TeleopCommand::ClearEstop
                    } else {
                        TeleopCommand::Release
                    },
                ));
                script.reverse();
                fault_end = t;
            }
            FaultClass::ClockStep => {
                let step = rng.range(3.0, 10.0) * if rng.below(2) == 0 { 1.0 } else { -1.0 };
                oracle.start_sample(inj);
                oracle.set_deadline(inj + grace_ns + 20_000_000);
                oracle
                    .clock_offset_ns
                    .store((step * 1e9) as i64, Ordering::Release);
                fault_end = inj + (p.duration_s * 1e9) as u64;
            }
            FaultClass::SerialGarbage | FaultClass::BitFlips => {
                oracle.noise_seed.store(rng.next_u64(), Ordering::Relaxed);
                if p.class == FaultClass::SerialGarbage {
                    oracle.start_sample(inj);
                    // The board holds the last setpoint until its command watchdog trips.
                    oracle.set_deadline(inj + watchdog_ns.max(body_stale_ns) + grace_ns);
                    oracle.noise.store(2, Ordering::Release);
                } else {
                    oracle.noise.store(1, Ordering::Release);
                }
                fault_end = inj + (p.duration_s * 1e9) as u64;
            }
            FaultClass::EncoderGlitch => {
                oracle.noise_seed.store(rng.next_u64(), Ordering::Relaxed);
                oracle.start_sample(inj);
                // Commands still reach the board: the host refuses the wild telemetry, its body
                // state goes stale, and the brain must command zero within the staleness
                // timeout (plus a telemetry period for the first wild frame).
                oracle.set_deadline(inj + body_stale_ns + 20_000_000 + grace_ns);
                oracle.noise.store(3, Ordering::Release);
                fault_end = inj + (p.duration_s * 1e9) as u64;
            }
            FaultClass::NodeKill | FaultClass::BusPartition => {
                // The node's embeddings stop reaching the slot: proprioception goes stale and
                // the brain must stop the robot within its staleness timeout.
                oracle.start_sample(inj);
                oracle.set_deadline(inj + proprio_stale_ns + ramp_ns + grace_ns);
                if p.class == FaultClass::NodeKill {
                    feed.kill_node();
                } else {
                    feed.partition(true);
                }
                fault_end = inj + (p.duration_s * 1e9) as u64;
            }
            FaultClass::ModelVanish => {
                let f = models.join("language.onnx");
                let gone = models.join("language.onnx.vanished");
                std::fs::rename(&f, &gone).context("model_vanish: hiding language.onnx")?;
                let r = crate::brain::build_region(
                    &cfg,
                    RegionId::Language,
                    &params,
                    Sources::default(),
                    shed.clone(),
                );
                match r {
                    Err(e) => {
                        detected_model = e.to_string().contains("missing");
                        tracing::info!("soak: model_vanish: the rebuild refused: {e}");
                    }
                    Ok(_) => {
                        tracing::error!("soak: model_vanish: a region built without its model file")
                    }
                }
                std::fs::rename(&gone, &f).context("model_vanish: restoring language.onnx")?;
                fault_end = inj + (p.duration_s * 1e9) as u64;
            }
        }

        // The fault runs: scripts play, records are watched.
        let mut teleop_driving = false;
        loop {
            let now = monotonic_ns();
            while script.last().is_some_and(|(t, _)| *t <= now) {
                let (_, cmd) = script.pop().unwrap_or((0, TeleopCommand::Release));
                let t = monotonic_ns();
                match cmd {
                    TeleopCommand::Estop => {
                        oracle.start_sample(t);
                        oracle.set_deadline(t + grace_ns);
                    }
                    TeleopCommand::ClearEstop => oracle.clear_deadline(),
                    TeleopCommand::Release if teleop_driving => oracle.start_sample(t),
                    _ => {}
                }
                teleop_driving = matches!(cmd, TeleopCommand::Drive(_));
                console.send(cmd, monotonic_ns());
            }
            let class = p.class;
            let mut see = |r: &TickRecord| {
                let d = match class {
                    FaultClass::CpuBurst => {
                        r.missed > 0 || r.late_mask != 0 || r.lateness_ns > period_ns / 4
                    }
                    FaultClass::RegionCrash
                    | FaultClass::RegionHang
                    | FaultClass::RegionNan
                    | FaultClass::NodeKill
                    | FaultClass::BusPartition => r.stale_mask & proprio_bit != 0,
                    FaultClass::EstopStorm => r.estop,
                    FaultClass::TeleopFlap => r.source == ControlSource::Teleop,
                    FaultClass::ClockStep
                    | FaultClass::SerialGarbage
                    | FaultClass::EncoderGlitch => r.body_stale,
                    _ => false,
                };
                w.detected |= d;
            };
            drain(&ring, &mut recorder, &mut recorded, &mut last, &mut see)?;
            if let Some(s) = oracle.take_sample() {
                safe_samples[ci].push(s);
            }
            if now >= fault_end && script.is_empty() {
                break;
            }
            if stop.load(Ordering::SeqCst) && script.is_empty() && now + 50_000_000 >= fault_end {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }

        // The fault ends: undo it (a crashed region is restarted by the supervisor).
        oracle.clear_deadline();
        match p.class {
            FaultClass::CpuBurst => {
                for (s, h) in burners.drain(..) {
                    s.store(true, Ordering::Relaxed);
                    let _ = h.join();
                }
            }
            FaultClass::RegionCrash | FaultClass::RegionHang | FaultClass::RegionNan => {
                oracle.region_mode.store(0, Ordering::Release);
                if p.class == FaultClass::RegionCrash {
                    if let Some(i) = handles.iter().position(|h| h.0 == RegionId::Proprioception) {
                        let (_, old) = handles.remove(i);
                        // The thread died in its panic: joining it returns nothing.
                        let _ = old.stop();
                        let rc = Sources {
                            body: Some(Box::new(cell.clone())),
                            ..Sources::default()
                        };
                        let region = crate::brain::build_region(
                            &cfg,
                            RegionId::Proprioception,
                            &params,
                            rc,
                            shed.clone(),
                        )
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                        handles.push((RegionId::Proprioception, spawn_proprio(region)?));
                        tracing::info!(
                            "soak: the supervisor restarted the crashed proprioception region"
                        );
                    }
                }
            }
            FaultClass::ClockStep => oracle.clock_offset_ns.store(0, Ordering::Release),
            // The supervisor restarts the killed node; the bus heals.
            FaultClass::NodeKill => feed.spawn_node()?,
            FaultClass::BusPartition => feed.partition(false),
            FaultClass::EncoderGlitch => {
                oracle.noise.store(0, Ordering::Release);
                std::thread::sleep(Duration::from_millis(2 * period_ns / 1_000_000));
                w.detected &= oracle.link_errors.load().host_implausible > errors0.host_implausible;
            }
            FaultClass::SerialGarbage | FaultClass::BitFlips => {
                oracle.noise.store(0, Ordering::Release);
                // Give the pre-tick a tick to take the noise off before reading the counters.
                std::thread::sleep(Duration::from_millis(2 * period_ns / 1_000_000));
                let e = oracle.link_errors.load();
                w.detected |= e.host_crc_errors + e.host_decode_errors + e.board_rx_errors
                    > errors0.host_crc_errors
                        + errors0.host_decode_errors
                        + errors0.board_rx_errors;
            }
            FaultClass::ModelVanish => {
                let r = crate::brain::build_region(
                    &cfg,
                    RegionId::Language,
                    &params,
                    Sources::default(),
                    shed.clone(),
                );
                if let Err(e) = &r {
                    tracing::error!(
                        "soak: model_vanish: the rebuild still fails after the file came back: {e}"
                    );
                }
                w.detected = detected_model;
                rebuild_ok = r.is_ok();
            }
            _ => {}
        }
        let ended = monotonic_ns();
        recorder.record(
            "/soak/fault",
            ended,
            &serde_json::json!({"class": p.class.name(), "event": "end"}),
        )?;
        recorded += 1;

        // Recovery: a healthy tick within 5 s.
        let recover_by = ended + 5_000_000_000;
        loop {
            let mut see = |r: &TickRecord| {
                if r.now_ns >= ended && healthy(r) && w.healthy_at.is_none() {
                    w.healthy_at = Some(r.now_ns);
                }
            };
            drain(&ring, &mut recorder, &mut recorded, &mut last, &mut see)?;
            if let Some(s) = oracle.take_sample() {
                safe_samples[ci].push(s);
            }
            let now = monotonic_ns();
            if w.healthy_at.is_some_and(|h| now > h + 1_000_000_000) || now > recover_by {
                break;
            }
            if stop.load(Ordering::SeqCst) {
                interrupted = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if node_fault {
            feed.use_node(false);
            tracing::info!(
                class = p.class.name(),
                refused_late = feed.refused(),
                "soak: proprioception back in process"
            );
        }
        // A sample still open when the fault is over is dropped (e.g. a press cleared before
        // any tick, or a robot already standing still that no tick commanded again).
        oracle.sample_from.store(0, Ordering::Release);
        oracle.class.store(BASELINE as u8, Ordering::Release);

        // The recording survives the fault: flushed, it reads back whole; and so does the
        // checkpointed summary.
        recorder.flush()?;
        let readable = readable_messages(&mcap_path);
        let rep = faults
            .get_mut(p.class.name())
            .expect("every class has a row");
        rep.injected += 1;
        rep.detected += w.detected as u64;
        rep.recovered += (w.healthy_at.is_some() && rebuild_ok && node_ready) as u64;
        let checkpoint = opts.report_dir.join("summary.json");
        write_json_atomic(
            &checkpoint,
            &serde_json::json!({"checkpoint": true, "faults": &faults, "ticks": last.tick}),
        )?;
        let lost = readable < recorded || !json_reads_back(&checkpoint);
        if lost {
            tracing::error!(
                class = p.class.name(),
                readable,
                recorded,
                "soak: the recording did not read back whole after the fault"
            );
        }
        let rep = faults
            .get_mut(p.class.name())
            .expect("every class has a row");
        rep.recordings_lost += lost as u64;
        tracing::info!(
            class = p.class.name(),
            detected = w.detected,
            recovered = w.healthy_at.is_some() && rebuild_ok,
            "soak: fault done"
        );
        if interrupted {
            break 'soak;
        }
        std::thread::sleep(Duration::from_millis(300 + rng.below(700) as u64));
    }

    // Stop: the loop, the regions; zero to the motors.
    loop_stop.store(true, Ordering::SeqCst);
    let mut outcome = join
        .join()
        .map_err(|_| anyhow::anyhow!("the integrator thread panicked"))?;
    let _ = outcome.body.command(WheelSpeeds::default());
    oracle.region_mode.store(0, Ordering::Release);
    for (_, h) in handles {
        let _ = h.stop();
    }
    let _ = std::panic::take_hook();
    drain(&ring, &mut recorder, &mut recorded, &mut last, &mut |_| {})?;
    let h = outcome.integrator.health().summary();
    let wall_s = (monotonic_ns() - t0) as f64 * 1e-9;

    for (i, c) in FaultClass::ALL.iter().enumerate() {
        let rep = faults.get_mut(c.name()).expect("every class has a row");
        rep.time_to_safe_ms = SafeMs::of(&safe_samples[i]);
        rep.wrong_commands = oracle.wrong[i].load(Ordering::Relaxed);
    }
    let k = |i: usize| oracle.kinds[i].load(Ordering::Relaxed);
    let wrong_kinds = WrongKinds {
        wrong_commands_nonfinite: k(K_NONFINITE),
        wrong_commands_over_limit: k(K_OVER),
        wrong_commands_while_stopped: k(K_STOPPED),
        wrong_commands_held: k(K_HELD),
        wrong_commands_corrupted: k(K_CORRUPT),
    };
    recorder.finish()?;
    let replayed = crate::report::mcap::read_recoverable(&mcap_path)
        .ok()
        .filter(|r| r.truncated.is_none())
        .map(|r| r.messages)
        .unwrap_or(0);
    let mut report = SoakReport {
        minutes: opts.minutes,
        wall_s: (wall_s * 1000.0).round() / 1000.0,
        body: body_name,
        seed: opts.seed,
        regions: region_names,
        scenarios: scenario_names,
        goals_reached: goals,
        ticks: h.ticks,
        missed: h.missed,
        lateness_p99_us: h.lateness_us.p99,
        realtime: outcome.status.fifo_priority.is_some(),
        wrong_commands_baseline: oracle.wrong[BASELINE].load(Ordering::Relaxed),
        wrong_commands_total: oracle.wrong.iter().map(|w| w.load(Ordering::Relaxed)).sum(),
        wrong_kinds,
        recordings_lost_total: faults.values().map(|f| f.recordings_lost).sum(),
        recordings_lost_final: 0,
        recorded_messages: recorded,
        replayed_messages: replayed,
        injected_total: faults.values().map(|f| f.injected).sum(),
        recovered_total: faults.values().map(|f| f.recovered).sum(),
        faults,
        link_errors: oracle.link_errors.load(),
        rejected_commands: outcome.integrator.rejected_commands(),
        interrupted,
        report_dir: opts.report_dir.display().to_string(),
    };
    let summary = opts.report_dir.join("summary.json");
    write_json_atomic(&summary, &report)?;
    report.recordings_lost_final = (replayed != recorded || !json_reads_back(&summary)) as u64;
    write_json_atomic(&summary, &report)?;
    let _ = std::fs::remove_dir_all(&models);
    Ok(report)
}

/// The report as a table.
pub fn format_report(r: &SoakReport) -> String {
    let mut s = format!(
        "soak: {:.1} min on {} (seed {}), {} ticks, {} missed, lateness p99 {:.0} us, SCHED_FIFO {}\n",
        r.wall_s / 60.0,
        r.body,
        r.seed,
        r.ticks,
        r.missed,
        r.lateness_p99_us,
        if r.realtime { "yes" } else { "no" }
    );
    s += &format!(
        "{:<15} {:>8} {:>8} {:>9} {:>9} {:>9} {:>7} {:>6} {:>9}\n",
        "fault",
        "injected",
        "detected",
        "safe p50",
        "safe p99",
        "safe max",
        "wrong",
        "lost",
        "recovered"
    );
    for (name, c) in &r.faults {
        let t = &c.time_to_safe_ms;
        let ms = |v: f64| {
            if t.n == 0 {
                "-".to_string()
            } else {
                format!("{v:.0} ms")
            }
        };
        s += &format!(
            "{:<15} {:>8} {:>8} {:>9} {:>9} {:>9} {:>7} {:>6} {:>9}\n",
            name,
            c.injected,
            c.detected,
            ms(t.p50),
            ms(t.p99),
            ms(t.max),
            c.wrong_commands,
            c.recordings_lost,
            c.recovered
        );
    }
    s += &format!(
        "wrong commands {} (outside faults {}), recordings lost {} (final {}), {} of {} faults recovered; {} messages recorded, {} read back; report {}\n",
        r.wrong_commands_total,
        r.wrong_commands_baseline,
        r.recordings_lost_total,
        r.recordings_lost_final,
        r.recovered_total,
        r.injected_total,
        r.recorded_messages,
        r.replayed_messages,
        r.report_dir
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_samples() {
        let s = SafeMs::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.n, s.p50, s.max), (3, 2.0, 3.0));
        assert_eq!(SafeMs::of(&[]), SafeMs::default());
    }

    #[test]
    fn the_plan_holds_every_class_once_per_round_in_a_seeded_order() {
        let a: Vec<_> = plan(&mut SplitMix::new(7))
            .iter()
            .map(|p| p.class)
            .collect();
        let b: Vec<_> = plan(&mut SplitMix::new(7))
            .iter()
            .map(|p| p.class)
            .collect();
        assert_eq!(a, b);
        for c in FaultClass::ALL {
            assert_eq!(a.iter().filter(|x| **x == c).count(), 1);
        }
    }

    /// The audit at the motors: a setpoint past a stop deadline, over the limit, non-finite or
    /// never sent is counted against the fault in progress.
    #[test]
    fn the_audit_counts_what_should_not_reach_a_motor() {
        let p = RobotParams::load_default();
        let o = Arc::new(Oracle::new(10.0));
        let layout = crate::sim::scenario::Scenario::find(
            Path::new(crate::experiment::commands::SCENARIO_DIR),
            "01-red-ball",
        )
        .unwrap()
        .layout(1)
        .unwrap();
        let mut a = Audited {
            inner: Box::new(KinematicWorld::new(p, &layout)),
            oracle: o.clone(),
            applied: WheelSpeeds::default(),
        };
        let w = WheelSpeeds {
            left: 1.0,
            right: 1.0,
        };
        o.sent.store([w, WheelSpeeds::default()]);
        a.command(w).unwrap();
        assert_eq!(o.wrong[BASELINE].load(Ordering::Relaxed), 0);
        o.class
            .store(FaultClass::EstopStorm.index() as u8, Ordering::Relaxed);
        o.set_deadline(0);
        a.command(w).unwrap();
        a.advance(0.002);
        a.advance(0.002);
        a.command(WheelSpeeds {
            left: f64::NAN,
            right: 0.0,
        })
        .unwrap();
        a.command(WheelSpeeds {
            left: 11.0,
            right: 0.0,
        })
        .unwrap();
        o.clear_deadline();
        a.command(WheelSpeeds {
            left: 2.0,
            right: 2.0,
        })
        .unwrap();
        let k = |i: usize| o.kinds[i].load(Ordering::Relaxed);
        assert_eq!(
            [
                k(K_NONFINITE),
                k(K_OVER),
                k(K_STOPPED),
                k(K_HELD),
                k(K_CORRUPT)
            ],
            [1, 1, 1, 1, 1]
        );
        assert_eq!(
            o.wrong[FaultClass::EstopStorm.index()].load(Ordering::Relaxed),
            5
        );
        // A zero setpoint ends a time-to-safe sample.
        o.start_sample(monotonic_ns());
        a.command(WheelSpeeds::default()).unwrap();
        assert!(o.take_sample().is_some());
    }
}
