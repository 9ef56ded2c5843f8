//! The integrator: the brain's fixed-rate heart (seed 001).
//! May depend on config, bus (its input slots), body, teleop, navigation (range rays), msg and
//! util; never on regions,
//! grounding or the simulator (a policy plugs in through [`Policy`]).
//!
//! Every tick it reads the latest embedding of each sensory region from lock-free
//! [`InputSlots`], projects each through its [`Connector`] into a common width, fuses the region
//! tokens with the body token, the working-memory readout, the emotion state and the drowsiness
//! token by attention (each edge scaled by its configured gain), appends the fused state to
//! working memory, lets the [`Policy`] decide, and hands the intent to the [`MotorStage`].
//! It accounts for every deadline: start lateness, compute time, overruns and missed cycles
//! feed a [`Drowsiness`] signal which is fed back as a fusion token, a speed scale, a
//! load-shedding level the regions read, and a sleep request. Sleep consolidates working memory
//! into long-term memory and refits the [`ForwardModel`] on the day's context.
//!
//! The tick is a sequence of named stages over small structs, each owning only its state:
//! **sense** ([`Senses`]: read the slots, staleness, project), **feedback** (one
//! [`drowsiness::Feedback`] value every consumer reads), **fuse** ([`Fusion`]: body, recall,
//! emotion and drowsiness tokens, attention), **remember** ([`Memory`]: working memory),
//! **feel** ([`Emotion`]: forward-model surprise), **sleep** ([`SleepCycle`]), **decide** (the
//! [`Policy`]), **act** (the [`MotorStage`] and its override mux) and **account**
//! ([`Schedule`]: absolute deadlines, missed cycles, health). The graph it is built from
//! ([`crate::config::graph::Graph`]) decides which regions are read and every edge's gain.
//!
//! [`Integrator::tick`] takes the time as an argument and allocates nothing, so the same code
//! runs under a mock clock, in lockstep with the simulator, and on the real-time thread of
//! [`rt::run_realtime`].

pub mod connector;
pub mod drowsiness;
pub mod forward;
pub mod health;
pub mod memory;
pub mod motor;
pub mod policy;
pub mod rt;

pub use crate::bus::slots::{self, EmbeddingRef, InputSlots, PublishError, SlotView, SlotWriter};
pub use connector::Connector;
pub use drowsiness::{Drowsiness, Feedback};
pub use forward::ForwardModel;
pub use health::{Health, HealthSummary};
pub use memory::{LongTermMemory, Sighting, Sightings, WorkingMemory};
pub use motor::{MotorOutput, MotorStage, StopReason};
pub use policy::{DecisionContext, Policy, ReactivePolicy};

use crate::body::{Body, RobotParams};
use crate::config::graph::Graph;
use crate::config::{self, Config, OnFailure};
use crate::msg::{BodyState, ControlSource, Mode, RegionId, Twist};
use crate::teleop::TeleopInput;
use connector::rms_normalise;
use forward::PROPRIO_FEATURES;
use memory::Consolidator;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Where a tick's compute time comes from. Injectable so that lockstep simulation and tests
/// are deterministic: only the real-time runner uses the wall clock.
pub trait ComputeTimer: Send {
    /// The tick starts.
    fn start(&mut self, tick: u64);
    /// The tick's work is done; return its compute time in nanoseconds. `context_len` is the
    /// working memory's size this tick.
    fn stop(&mut self, tick: u64, context_len: usize) -> u64;
}

/// Measures compute time on `CLOCK_MONOTONIC` (real-time runs).
#[derive(Debug, Default, Clone)]
pub struct WallTimer {
    t0: u64,
}

impl ComputeTimer for WallTimer {
    fn start(&mut self, _tick: u64) {
        self.t0 = rt::monotonic_ns();
    }
    fn stop(&mut self, _tick: u64, _context_len: usize) -> u64 {
        rt::monotonic_ns().saturating_sub(self.t0)
    }
}

/// A deterministic cost model `base + per_entry * context_len` (lockstep simulation: compute
/// time, like everything else there, is a function of the simulated run only).
#[derive(Debug, Clone, Copy)]
pub struct ModeledTimer {
    /// Fixed cost per tick, ns.
    pub base_ns: u64,
    /// Cost per working-memory entry, ns.
    pub per_entry_ns: u64,
}

impl Default for ModeledTimer {
    fn default() -> Self {
        Self::for_width(64)
    }
}

impl ModeledTimer {
    /// The cost model measured with `cargo bench --bench loop_context` on the development
    /// machine (2-core VM): about 15 us per tick plus 17 ns per working-memory entry at width
    /// 64, both growing linearly with the width.
    pub fn for_width(width: usize) -> Self {
        let w = width.max(1) as u64;
        Self {
            base_ns: 15_000 * w / 64,
            per_entry_ns: (17 * w).div_ceil(64),
        }
    }
}

impl ComputeTimer for ModeledTimer {
    fn start(&mut self, _tick: u64) {}
    fn stop(&mut self, _tick: u64, context_len: usize) -> u64 {
        self.base_ns + self.per_entry_ns * context_len as u64
    }
}

/// Compute times from a function of the tick index and context length (tests inject delays).
pub struct ScheduledTimer<F: FnMut(u64, usize) -> u64 + Send>(pub F);

impl<F: FnMut(u64, usize) -> u64 + Send> ComputeTimer for ScheduledTimer<F> {
    fn start(&mut self, _tick: u64) {}
    fn stop(&mut self, tick: u64, context_len: usize) -> u64 {
        (self.0)(tick, context_len)
    }
}

/// Options that are not part of the configuration file.
#[derive(Debug, Clone, Default)]
pub struct IntegratorOptions {
    /// Folder with learned connectors `<region>_integrator.blcn` (seeded weights otherwise).
    pub connector_dir: Option<PathBuf>,
    /// Allow sleeping while the robot moves (default: stop first).
    pub sleep_while_moving: bool,
    /// Declared vector dimension per region (0: fixed by the first accepted publish).
    pub region_dims: [usize; RegionId::COUNT],
}

/// Errors building an integrator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntegratorError {
    /// The configuration breaks its rules.
    #[error("invalid config: {0}")]
    Config(String),
    /// A learned connector could not be loaded.
    #[error(transparent)]
    Connector(#[from] connector::ConnectorError),
}

/// Everything that happened in one tick (plain and `Copy`: cheap to pass to a health thread).
/// Published on [`health::HEALTH_TOPIC`].
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct TickRecord {
    /// Tick index from 0.
    pub tick: u64,
    /// Tick start, ns.
    pub now_ns: u64,
    /// How late the tick started against its absolute deadline, ns.
    pub lateness_ns: u64,
    /// Compute time, ns.
    pub compute_ns: u64,
    /// Lateness plus compute exceeded the period.
    pub overrun: bool,
    /// Deadlines missed by this tick.
    pub missed: u64,
    /// Bit `i`: region `i` stale.
    pub stale_mask: u8,
    /// Bit `i`: region `i` late (older than 1.5 of its periods).
    pub late_mask: u8,
    /// Body state stale.
    pub body_stale: bool,
    /// Drowsiness in [0, 1].
    pub drowsiness: f32,
    /// Speed scale applied to autonomy.
    pub speed_scale: f32,
    /// Load-shedding level published to the regions.
    pub shed_level: u32,
    /// Sleep requested (drowsy for long enough, or memory full).
    pub sleep_requested: bool,
    /// The drowsiness level the policy's caution followed (held peak; 0 with feedback off).
    pub drowsiness_held: f32,
    /// Which teleop source drove (index into the mux, highest priority first), if one did.
    pub teleop_source: Option<u8>,
    /// The stamp of the teleop command that drove (its key-event time on this clock), 0 if
    /// none did: `now_ns - teleop_stamp_ns` on a new stamp is key-to-wheel latency.
    pub teleop_stamp_ns: u64,
    /// Which teleop source holds the e-stop (index into the mux); `None` with the e-stop on is
    /// the body's own.
    pub estop_source: Option<u8>,
    /// Whether the e-stop is on (any source's latch or the body's).
    pub estop: bool,
    /// The operator's mode.
    pub operator_mode: crate::msg::OperatorMode,
    /// Assist mode's forward speed cap this tick, 0..1 (1 when not assisting).
    pub assist_cap: f32,
    /// What the policy understood of the instruction.
    pub understood: crate::msg::Understood,
    /// Sleeping (settling, consolidating or refitting).
    pub sleeping: bool,
    /// A sleep completed in this tick.
    pub slept: bool,
    /// Working-memory entries consolidated by the sleep that completed (0 otherwise).
    pub consolidated: u32,
    /// Mode.
    pub mode: Mode,
    /// Twist sent to the body.
    pub twist: Twist,
    /// Who controlled the motors.
    pub source: ControlSource,
    /// Working-memory entries.
    pub context_len: u32,
    /// Forward-model prediction error (surprise).
    pub surprise: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SleepPhase {
    Awake,
    Settling,
    Consolidating,
    Refit,
}

const TOKENS: usize = RegionId::COUNT + 4;
const TOK_BODY: usize = RegionId::COUNT;
const TOK_MEMORY: usize = RegionId::COUNT + 1;
const TOK_EMOTION: usize = RegionId::COUNT + 2;
const TOK_DROWSY: usize = RegionId::COUNT + 3;

/// Account stage: the absolute schedule, the compute timer and the deadline bookkeeping.
struct Schedule {
    period_ns: u64,
    timer: Box<dyn ComputeTimer>,
    tick_index: u64,
    next_deadline: Option<u64>,
    last_now: Option<u64>,
    start_ns: Option<u64>,
    /// Deadlines missed by the previous tick's compute, counted by this tick's drowsiness.
    pending_missed: u64,
}

/// When this tick runs against its schedule.
#[derive(Debug, Clone, Copy)]
struct Timing {
    k: u64,
    sched: u64,
    lateness: u64,
    dt_s: f64,
    uptime: u64,
    /// Deadlines that passed before this tick could start.
    late_missed: u64,
}

/// How a tick ended against its deadline.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    compute: u64,
    overrun: bool,
    missed: u64,
}

impl Schedule {
    fn begin(&mut self, now_ns: u64) -> Timing {
        let k = self.tick_index;
        self.timer.start(k);
        let period = self.period_ns;
        let sched = match self.next_deadline {
            Some(d) if now_ns >= d => d,
            _ => now_ns,
        };
        let lateness = now_ns - sched;
        let dt_s = match self.last_now {
            Some(p) if now_ns > p => (now_ns - p) as f64 * 1e-9,
            _ => period as f64 * 1e-9,
        };
        self.last_now = Some(now_ns);
        let start = *self.start_ns.get_or_insert(now_ns);
        Timing {
            k,
            sched,
            lateness,
            dt_s,
            uptime: now_ns - start,
            late_missed: lateness.saturating_sub(1) / period,
        }
    }

    fn end(&mut self, t: &Timing, context_len: usize, health: &mut Health) -> Deadline {
        let period = self.period_ns;
        let compute = self.timer.stop(t.k, context_len);
        let span = t.lateness + compute;
        // Finishing exactly on the next deadline misses nothing; each deadline strictly passed
        // is one missed cycle.
        let overrun = span > period;
        let missed = if overrun { (span - 1) / period } else { 0 };
        self.pending_missed = missed.saturating_sub(t.late_missed);
        self.next_deadline = Some(t.sched + (missed + 1) * period);
        health.ticks += 1;
        health.lateness.record(t.lateness);
        health.compute.record(compute);
        health.overruns += overrun as u64;
        health.missed += missed;
        self.tick_index += 1;
        Deadline {
            compute,
            overrun,
            missed,
        }
    }
}

/// Sense stage: each region's slot, its staleness and its projection into the common width.
struct Senses {
    reader: slots::SlotReader,
    /// The region runs (in the graph and enabled).
    enabled: [bool; RegionId::COUNT],
    /// An active edge reads it (its token is fused and the policy sees it).
    read: [bool; RegionId::COUNT],
    stop_on_stale: [bool; RegionId::COUNT],
    stale_ns: [u64; RegionId::COUNT],
    region_period_ns: [u64; RegionId::COUNT],
    connectors: Vec<Connector>,
    projected_seq: [Option<u64>; RegionId::COUNT],
    /// The sequence number last seen in each slot, and when (the integrator's clock): a slot
    /// that has not changed for longer than the staleness timeout is stale whatever its stamp
    /// says (a producer whose clock stepped forward stamps frozen data in the future).
    seen_seq: [Option<u64>; RegionId::COUNT],
    seen_at_ns: [u64; RegionId::COUNT],
}

/// What the sense stage found this tick.
#[derive(Debug, Clone, Copy, Default)]
struct Sensed {
    stale_mask: u8,
    late_mask: u8,
    stale_count: u32,
    stop_for_region: bool,
}

impl Senses {
    /// Read every slot; project fresh, read regions into `fusion`'s tokens.
    fn sense(
        &mut self,
        now_ns: u64,
        uptime: u64,
        fusion: &mut Fusion,
        health: &mut Health,
    ) -> Sensed {
        let w = fusion.width;
        let mut out = Sensed::default();
        for r in RegionId::ALL {
            let i = r.index();
            self.reader.update(r);
            let v = self.reader.view(r, false);
            let age = now_ns.saturating_sub(v.stamp_ns);
            // A stamp further in the future than the staleness timeout comes from a clock
            // that stepped: it would otherwise look fresh until the clocks met again.
            let future = v.stamp_ns > now_ns.saturating_add(self.stale_ns[i]);
            if v.valid && self.seen_seq[i] != Some(v.seq) {
                self.seen_seq[i] = Some(v.seq);
                self.seen_at_ns[i] = now_ns;
            }
            let unchanged = now_ns.saturating_sub(self.seen_at_ns[i]);
            let fresh =
                v.valid && age <= self.stale_ns[i] && !future && unchanged <= self.stale_ns[i];
            let stale = self.enabled[i]
                && if v.valid {
                    !fresh
                } else {
                    // No instruction yet is a normal state for language, not a failure.
                    r != RegionId::Language && uptime > self.stale_ns[i]
                };
            if stale {
                out.stale_mask |= 1 << i;
                out.stale_count += 1;
                health.region_stale[i] += 1;
                out.stop_for_region |= self.stop_on_stale[i];
            }
            if fresh && age > self.region_period_ns[i].saturating_mul(3) / 2 {
                out.late_mask |= 1 << i;
                health.region_late[i] += 1;
            }
            fusion.present[i] = fresh && fusion.token_gain[i] > 0.0;
            if fusion.present[i] && self.projected_seq[i] != Some(v.seq) {
                self.connectors[i].project(v.vector, &mut fusion.tokens[i * w..(i + 1) * w]);
                self.projected_seq[i] = Some(v.seq);
            }
        }
        out
    }

    /// The decision's view of region `r`: empty when no edge reads it.
    fn view(&self, r: RegionId, stale: bool) -> SlotView<'_> {
        let v = self.reader.view(r, stale);
        if self.read[r.index()] {
            v
        } else {
            SlotView {
                valid: false,
                vector: &[],
                spatial: &[],
                grid: [0; 3],
                stale: true,
                ..v
            }
        }
    }
}

/// Fuse stage: the tokens (regions, body, memory recall, emotion, drowsiness), their gains
/// (the graph's edges) and the attention that fuses them.
struct Fusion {
    width: usize,
    token_gain: [f32; TOKENS],
    body_connector: Connector,
    emotion_connector: Connector,
    drowsy_dir: Vec<f32>,
    tokens: Vec<f32>,
    present: [bool; TOKENS],
    logits: [f32; TOKENS],
    fused: Vec<f32>,
    fused_prev: Vec<f32>,
    query: Vec<f32>,
}

impl Fusion {
    fn token(&self, t: usize) -> &[f32] {
        &self.tokens[t * self.width..(t + 1) * self.width]
    }

    fn body_token(&mut self, proprio: &[f32], body_stale: bool) {
        let w = self.width;
        self.present[TOK_BODY] = !body_stale;
        self.body_connector
            .project(proprio, &mut self.tokens[TOK_BODY * w..(TOK_BODY + 1) * w]);
    }

    /// The working-memory readout (attention over the whole context: cost grows with it).
    fn recall(&mut self, memory: &mut Memory) {
        let w = self.width;
        self.query.copy_from_slice(&self.fused_prev);
        for i in 0..RegionId::COUNT {
            if self.present[i] {
                for (q, t) in self.query.iter_mut().zip(&self.tokens[i * w..(i + 1) * w]) {
                    *q += t;
                }
            }
        }
        rms_normalise(&mut self.query);
        let rest = &mut self.tokens[TOK_MEMORY * w..];
        self.present[TOK_MEMORY] = self.token_gain[TOK_MEMORY] > 0.0
            && memory.wm.read(&self.query, &memory.ltm, &mut rest[..w]);
    }

    fn emotion_and_drowsiness(&mut self, emotion: &[f32; 3], fb: &Feedback) {
        let w = self.width;
        self.emotion_connector.project(
            emotion,
            &mut self.tokens[TOK_EMOTION * w..(TOK_EMOTION + 1) * w],
        );
        self.present[TOK_EMOTION] = self.token_gain[TOK_EMOTION] > 0.0;
        let d = fb.token as f32;
        for (t, u) in self.tokens[TOK_DROWSY * w..(TOK_DROWSY + 1) * w]
            .iter_mut()
            .zip(&self.drowsy_dir)
        {
            *t = d * u;
        }
        self.present[TOK_DROWSY] = fb.on && fb.token > 0.0;
    }

    /// Attention of the previous state over the tokens; gains scale each edge.
    fn fuse(&mut self) {
        let w = self.width;
        let scale = 1.0 / (w as f32).sqrt();
        let mut max = f32::NEG_INFINITY;
        for t in 0..TOKENS {
            if self.present[t] {
                let l = connector::dot(&self.fused_prev, &self.tokens[t * w..(t + 1) * w]) * scale;
                self.logits[t] = l;
                max = max.max(l);
            }
        }
        let mut z = 0.0;
        for t in 0..TOKENS {
            if self.present[t] {
                self.logits[t] = (self.logits[t] - max).exp();
                z += self.logits[t];
            }
        }
        for (f, p) in self.fused.iter_mut().zip(&self.fused_prev) {
            *f = 0.5 * p;
        }
        if z > 0.0 {
            for t in 0..TOKENS {
                if self.present[t] {
                    let a = self.logits[t] / z * self.token_gain[t];
                    for (f, v) in self.fused.iter_mut().zip(&self.tokens[t * w..(t + 1) * w]) {
                        *f += a * v;
                    }
                }
            }
        }
        rms_normalise(&mut self.fused);
    }
}

/// Remember stage: the day's context and what sleep keeps of it.
struct Memory {
    wm: WorkingMemory,
    ltm: LongTermMemory,
    consolidator: Consolidator,
    /// Edge `integrator -> memory`.
    write_gain: f32,
    /// Scratch for the policy's sighting tag (sized when the policy is set).
    tag: Vec<f32>,
}

impl Memory {
    /// Append this tick's fused state (not while asleep).
    fn remember(&mut self, fused: &[f32], awake: bool) {
        if awake && self.write_gain > 0.0 {
            self.wm.push(fused, self.write_gain);
        }
    }
}

/// Feel stage: the forward model's surprise moves valence and arousal.
struct Emotion {
    forward: ForwardModel,
    fx: Vec<f32>,
    fx_prev: Vec<f32>,
    fy: Vec<f32>,
    fscratch: Vec<f32>,
    have_prev: bool,
    proprio: [f32; PROPRIO_FEATURES],
    /// Valence, arousal, surprise.
    state: [f32; 3],
    /// Edge `integrator -> emotion`.
    write_gain: f32,
}

impl Emotion {
    /// Learn from last tick's prediction; return the surprise.
    fn feel(&mut self, fused: &[f32], awake: bool, drowsiness: f64) -> f32 {
        let w = fused.len();
        let mut surprise = 0.0;
        if self.have_prev && awake {
            self.fy[..w].copy_from_slice(fused);
            self.fy[w..].copy_from_slice(&self.proprio);
            surprise = self
                .forward
                .observe(&self.fx_prev, &self.fy, &mut self.fscratch);
        }
        let s = surprise / (1.0 + surprise);
        let a = 0.05 * self.write_gain;
        self.state[1] += a * (s - self.state[1]);
        self.state[0] += a * ((1.0 - 2.0 * s - drowsiness as f32) - self.state[0]);
        self.state[2] = s;
        surprise
    }

    /// The forward model's input for the next tick: this state and the command actually sent.
    fn prepare(&mut self, fused: &[f32], command: [f32; 2]) {
        self.forward
            .features(fused, &self.proprio, command, &mut self.fx);
        std::mem::swap(&mut self.fx, &mut self.fx_prev);
        self.have_prev = true;
    }
}

/// Sleep stage: settle, consolidate working memory over several ticks, refit, wake.
struct SleepCycle {
    phase: SleepPhase,
    forced: bool,
    entries: u32,
    while_moving: bool,
}

impl SleepCycle {
    /// Advance the cycle; returns `(slept, consolidated)` when a sleep completed this tick.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        requested: bool,
        state: &BodyState,
        memory: &mut Memory,
        emotion: &mut Emotion,
        drowsiness: &mut Drowsiness,
        policy: &mut dyn Policy,
        health: &mut Health,
    ) -> (bool, u32) {
        match self.phase {
            SleepPhase::Awake if requested => self.phase = SleepPhase::Settling,
            SleepPhase::Settling => {
                let still = state.wheel_speed.iter().all(|s| s.abs() < 0.05);
                if still || self.while_moving {
                    self.entries = memory.wm.len() as u32;
                    memory.consolidator.begin(&memory.wm, &memory.ltm);
                    self.phase = SleepPhase::Consolidating;
                }
            }
            SleepPhase::Consolidating => {
                if memory.consolidator.step(&memory.wm, &mut memory.ltm) {
                    self.phase = SleepPhase::Refit;
                }
            }
            SleepPhase::Refit => {
                emotion.forward.refit();
                memory.wm.clear();
                drowsiness.reset();
                policy.reset();
                self.forced = false;
                emotion.have_prev = false;
                health.sleeps += 1;
                self.phase = SleepPhase::Awake;
                return (true, self.entries);
            }
            SleepPhase::Awake => {}
        }
        (false, 0)
    }

    fn asleep(&self) -> bool {
        self.phase != SleepPhase::Awake
    }
}

/// The fixed-rate integrator.
pub struct Integrator {
    graph: Graph,
    senses: Senses,
    fusion: Fusion,
    memory: Memory,
    emotion: Emotion,
    sleep: SleepCycle,
    schedule: Schedule,
    slots: Arc<InputSlots>,
    drowsiness: Drowsiness,
    shed: Arc<AtomicU32>,
    policy: Box<dyn Policy + Send>,
    motor: MotorStage,
    health: Health,
    record: TickRecord,
    max_speed: (f64, f64),
    max_wheel: f64,
    range_max: f64,
    operator: Arc<crate::teleop::OperatorControls>,
    operator_sleeps_seen: u64,
}

impl std::fmt::Debug for Integrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integrator")
            .field("width", &self.fusion.width)
            .field("period_ns", &self.schedule.period_ns)
            .field("tick", &self.schedule.tick_index)
            .field("context", &self.memory.wm.len())
            .finish_non_exhaustive()
    }
}

fn seeded_unit(width: usize, seed: u64) -> Vec<f32> {
    let mut r = crate::util::SplitMix::new(seed);
    let mut v: Vec<f32> = (0..width).map(|_| r.normal() as f32).collect();
    rms_normalise(&mut v);
    v
}

impl Integrator {
    /// Build from the configuration (seeded connectors, default options).
    pub fn new(cfg: &Config, params: &RobotParams) -> Result<Self, IntegratorError> {
        Self::with_options(cfg, params, IntegratorOptions::default())
    }

    /// Build with options.
    pub fn with_options(
        cfg: &Config,
        params: &RobotParams,
        opts: IntegratorOptions,
    ) -> Result<Self, IntegratorError> {
        let errs = cfg.validate();
        if !errs.is_empty() {
            let msg: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            return Err(IntegratorError::Config(msg.join("; ")));
        }
        let graph = cfg.graph();
        let ic = &cfg.integrator;
        let width = ic.width;
        let period_ns = graph.period_ns;
        let slots = InputSlots::new(opts.region_dims);
        let reader = slots
            .reader()
            .ok_or_else(|| IntegratorError::Config("input slots already read".into()))?;
        let mut enabled = [false; RegionId::COUNT];
        let mut read = [false; RegionId::COUNT];
        let mut stop_on_stale = [false; RegionId::COUNT];
        let mut stale_ns = [u64::MAX; RegionId::COUNT];
        let mut region_period_ns = [u64::MAX; RegionId::COUNT];
        let mut token_gain = [0f32; TOKENS];
        let mut connectors = Vec::with_capacity(RegionId::COUNT);
        for r in RegionId::ALL {
            let i = r.index();
            if let Some(rc) = cfg.regions.get(r.name()).filter(|_| graph.runs(r.name())) {
                enabled[i] = true;
                stop_on_stale[i] = rc.on_failure == OnFailure::Stop;
                stale_ns[i] = rc.stale_after_ms * 1_000_000;
                region_period_ns[i] = config::graph::period_ns(rc.rate_hz);
            }
            let gain = graph.gain(r.name(), "integrator");
            read[i] = gain > 0.0;
            token_gain[i] = gain as f32;
            let learned = opts
                .connector_dir
                .as_ref()
                .map(|d| d.join(format!("{}_integrator.blcn", r.name())))
                .filter(|p| p.exists());
            connectors.push(match learned {
                Some(p) => Connector::load(&p, width)?,
                None => Connector::seeded(slots::MAX_VECTOR, width, ic.seed * 1000 + i as u64),
            });
        }
        token_gain[TOK_BODY] = 1.0;
        token_gain[TOK_MEMORY] = graph.gain("memory", "integrator") as f32;
        token_gain[TOK_EMOTION] = graph.gain("emotion", "integrator") as f32;
        token_gain[TOK_DROWSY] = if cfg.drowsiness.feedback { 1.0 } else { 0.0 };
        let forward = ForwardModel::new(width);
        let (di, dout) = (forward.input_dim(), forward.output_dim());
        let motor = MotorStage::new(
            &cfg.limits,
            &cfg.teleop,
            cfg.body.stale_after_ms,
            params,
            period_ns as f64 * 1e-9,
        );
        Ok(Self {
            senses: Senses {
                reader,
                enabled,
                read,
                stop_on_stale,
                stale_ns,
                region_period_ns,
                connectors,
                projected_seq: [None; RegionId::COUNT],
                seen_seq: [None; RegionId::COUNT],
                seen_at_ns: [0; RegionId::COUNT],
            },
            fusion: Fusion {
                width,
                token_gain,
                body_connector: Connector::seeded(PROPRIO_FEATURES, width, ic.seed * 1000 + 10),
                emotion_connector: Connector::seeded(3, width, ic.seed * 1000 + 11),
                drowsy_dir: seeded_unit(width, ic.seed * 1000 + 12),
                tokens: vec![0.0; TOKENS * width],
                present: [false; TOKENS],
                logits: [0.0; TOKENS],
                fused: vec![0.0; width],
                fused_prev: vec![0.0; width],
                query: vec![0.0; width],
            },
            memory: Memory {
                wm: WorkingMemory::new(ic.context_capacity, width),
                ltm: LongTermMemory::new(width),
                consolidator: Consolidator::new(width),
                write_gain: graph.gain("integrator", "memory") as f32,
                tag: Vec::new(),
            },
            emotion: Emotion {
                forward,
                fx: vec![0.0; di],
                fx_prev: vec![0.0; di],
                fy: vec![0.0; dout],
                fscratch: vec![0.0; dout],
                have_prev: false,
                proprio: [0.0; PROPRIO_FEATURES],
                state: [0.0; 3],
                write_gain: graph.gain("integrator", "emotion") as f32,
            },
            sleep: SleepCycle {
                phase: SleepPhase::Awake,
                forced: false,
                entries: 0,
                while_moving: opts.sleep_while_moving,
            },
            schedule: Schedule {
                period_ns,
                timer: Box::new(ModeledTimer::for_width(width)),
                tick_index: 0,
                next_deadline: None,
                last_now: None,
                start_ns: None,
                pending_missed: 0,
            },
            graph,
            slots,
            drowsiness: Drowsiness::new(&cfg.drowsiness),
            shed: Arc::new(AtomicU32::new(0)),
            policy: Box::new(ReactivePolicy::new()),
            motor,
            health: Health::default(),
            record: TickRecord::default(),
            max_speed: (cfg.limits.max_linear_mps, cfg.limits.max_angular_rps),
            max_wheel: params.max_wheel_speed,
            range_max: params.range_max,
            operator: crate::teleop::OperatorControls::new(),
            operator_sleeps_seen: 0,
        })
    }

    /// The graph this integrator was built from.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The input slots regions publish into.
    pub fn slots(&self) -> Arc<InputSlots> {
        Arc::clone(&self.slots)
    }

    /// The load-shedding level heavy regions read (a region at level `L` processes one frame
    /// in `L + 1`).
    pub fn shed_level(&self) -> Arc<AtomicU32> {
        Arc::clone(&self.shed)
    }

    /// Replace the decision policy.
    pub fn set_policy(&mut self, policy: Box<dyn Policy + Send>) {
        let w = policy.sighting_width().min(memory::MAX_TAG);
        if w != self.memory.tag.len() {
            self.memory.wm.set_tag_width(w);
            self.memory.ltm.set_tag_width(w);
            self.memory.tag = vec![0.0; w];
        }
        self.policy = policy;
    }

    /// Connect `teleop` as the highest-priority teleop source of the override mux.
    pub fn set_teleop(&mut self, teleop: Arc<TeleopInput>) {
        self.motor.set_teleop(teleop);
    }

    /// Feed the override mux's teleop source `name` from `input` (e.g. a ROS 2 bridge's);
    /// false if the config has no such source.
    pub fn attach_teleop(&mut self, name: &str, input: Arc<TeleopInput>) -> bool {
        self.motor.attach(name, input)
    }

    /// The input of the override mux's teleop source `name` (`[teleop.sources.<name>]`;
    /// `console` and `remote` by default).
    pub fn teleop_input(&self, name: &str) -> Option<Arc<TeleopInput>> {
        self.motor.teleop_input(name)
    }

    /// Replace the compute-time source (default: [`ModeledTimer`], deterministic;
    /// [`rt::run_realtime`] installs [`WallTimer`]).
    pub fn set_compute_timer(&mut self, timer: Box<dyn ComputeTimer>) {
        self.schedule.timer = timer;
    }

    /// Tick period, ns.
    pub fn period_ns(&self) -> u64 {
        self.schedule.period_ns
    }

    /// The absolute deadline of the next tick (None before the first tick).
    pub fn next_deadline(&self) -> Option<u64> {
        self.schedule.next_deadline
    }

    /// Set the first deadline (the real-time runner starts the schedule here).
    pub fn start_at(&mut self, deadline_ns: u64) {
        self.schedule.next_deadline = Some(deadline_ns);
    }

    /// Running health counters and histograms.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Commands the motor stage rejected as non-finite so far.
    pub fn rejected_commands(&self) -> u64 {
        self.motor.rejected()
    }

    /// The last tick's record.
    pub fn last_record(&self) -> &TickRecord {
        &self.record
    }

    /// Current drowsiness.
    pub fn drowsiness(&self) -> f64 {
        self.drowsiness.level()
    }

    /// Working-memory entries.
    pub fn context_len(&self) -> usize {
        self.memory.wm.len()
    }

    /// Long-term memory slots in use.
    pub fn long_term_len(&self) -> usize {
        self.memory.ltm.len()
    }

    /// Long-term places (salient sightings kept over sleep) in use.
    pub fn places_len(&self) -> usize {
        self.memory.ltm.places_len()
    }

    /// Forward-model error since the last sleep: (current model, model before the last sleep),
    /// measured on the same transitions.
    pub fn forward_errors(&self) -> (f64, f64) {
        self.emotion.forward.errors()
    }

    /// The fused state of the last tick.
    pub fn fused(&self) -> &[f32] {
        &self.fusion.fused
    }

    /// The operator's controls (mode, sleep requests), read every tick.
    pub fn operator_controls(&self) -> Arc<crate::teleop::OperatorControls> {
        self.operator.clone()
    }

    /// The override mux's teleop sources, highest priority first (what
    /// [`TickRecord::teleop_source`] and [`TickRecord::estop_source`] index).
    pub fn teleop_sources(&self) -> Vec<String> {
        self.motor.sources().map(|s| s.0.to_string()).collect()
    }

    /// Names of the concepts the policy's [`TickRecord::understood`] indexes.
    pub fn concept_names(&self) -> Vec<String> {
        self.policy.concept_names()
    }

    /// Ask for sleep now (it starts once the robot is stopped).
    pub fn sleep_now(&mut self) {
        self.sleep.forced = true;
    }

    /// Whether sleeping.
    pub fn sleeping(&self) -> bool {
        self.sleep.asleep()
    }

    /// Run one whole tick at `now_ns`: sense, feedback, fuse, remember, feel, sleep, decide,
    /// act, account. Allocation-free.
    pub fn tick(&mut self, now_ns: u64, body: &mut dyn Body) -> &TickRecord {
        let t = self.schedule.begin(now_ns);

        // Sense.
        let state = body.state();
        let body_stale = self.motor.body_stale(now_ns, &state);
        let mut sensed = self
            .senses
            .sense(now_ns, t.uptime, &mut self.fusion, &mut self.health);
        if body_stale {
            self.health.body_stale += 1;
            sensed.stale_count += 1;
        }

        // Feedback (facts on the brain's clock only): deadlines that passed before this tick
        // could start count now, over the interval in which they were missed; deadlines missed
        // by the previous tick's compute count now too (they were known only when it ended);
        // plus this tick's staleness. One value, read by every consumer below.
        let fb = self.drowsiness.update(
            now_ns,
            t.dt_s,
            self.schedule.pending_missed + t.late_missed,
            sensed.stale_count,
        );
        self.shed.store(fb.shed_level, Ordering::Relaxed);

        // Fuse.
        self.proprio_features(&state);
        self.fusion.body_token(&self.emotion.proprio, body_stale);
        self.fusion.recall(&mut self.memory);
        self.fusion.emotion_and_drowsiness(&self.emotion.state, &fb);
        self.fusion.fuse();

        // Remember, feel.
        let awake = !self.sleep.asleep();
        self.memory.remember(&self.fusion.fused, awake);
        let surprise = self.emotion.feel(&self.fusion.fused, awake, fb.level);

        // Sleep (an operator's request counts as a forced one).
        let asked = self.operator.sleep_requests();
        if asked != self.operator_sleeps_seen {
            self.operator_sleeps_seen = asked;
            self.sleep.forced = true;
        }
        let requested =
            (fb.on && (fb.sleep_wanted || self.memory.wm.is_full())) || self.sleep.forced;
        let (slept, consolidated) = self.sleep.step(
            requested,
            &state,
            &mut self.memory,
            &mut self.emotion,
            &mut self.drowsiness,
            self.policy.as_mut(),
            &mut self.health,
        );
        let sleeping = self.sleep.asleep();

        // Decide.
        let stale_mask = sensed.stale_mask;
        let lang = RegionId::Language.index();
        let intent = {
            let s = &self.senses;
            let views = [
                s.view(RegionId::Vision, stale_mask & 1 != 0),
                s.view(RegionId::Language, stale_mask & 2 != 0),
                s.view(RegionId::Audition, stale_mask & 4 != 0),
                s.view(RegionId::Proprioception, stale_mask & 8 != 0),
            ];
            // Language silence is "no instruction"; a stale instruction is dropped too.
            let instruction =
                (views[lang].valid && stale_mask & (1 << lang) == 0).then_some(views[lang].vector);
            let f = &self.fusion;
            let ctx = DecisionContext {
                now_ns,
                regions: views,
                region_tokens: [f.token(0), f.token(1), f.token(2), f.token(3)],
                fused: &f.fused,
                memory: f.token(TOK_MEMORY),
                context_len: self.memory.wm.len(),
                working: &self.memory.wm,
                long_term: &self.memory.ltm,
                recall_gain: f.token_gain[TOK_MEMORY],
                emotion_gain: f.token_gain[TOK_EMOTION],
                feedback: fb,
                emotion: self.emotion.state,
                body: &state,
                body_stale,
                instruction,
                max_speed: self.max_speed,
                range_max: self.range_max,
            };
            self.policy.decide(&ctx)
        };
        // What the policy perceived this tick, with where and when, joins this tick's entry.
        if awake && self.memory.write_gain > 0.0 {
            if let Some(s) = self.policy.sighting(&mut self.memory.tag) {
                self.memory.wm.attach(&s, &self.memory.tag);
            }
        }

        // Act.
        let force_stop = sleeping || sensed.stop_for_region;
        let mode_op = self.operator.mode();
        let out = self.motor.step(
            now_ns,
            &intent,
            fb.speed_scale,
            force_stop,
            mode_op,
            &state,
            body,
        );
        let mode = match out.stop {
            StopReason::Estop | StopReason::StaleBody => Mode::Stopped,
            _ if out.source == ControlSource::Teleop => intent.mode,
            _ if sleeping => Mode::Sleep,
            _ if sensed.stop_for_region => Mode::Stopped,
            _ => intent.mode,
        };
        self.emotion.prepare(
            &self.fusion.fused,
            [
                (out.twist.linear / self.max_speed.0.max(1e-6)) as f32,
                (out.twist.angular / self.max_speed.1.max(1e-6)) as f32,
            ],
        );
        self.fusion.fused_prev.copy_from_slice(&self.fusion.fused);

        // Account.
        let dl = self
            .schedule
            .end(&t, self.memory.wm.len(), &mut self.health);
        self.record = TickRecord {
            tick: t.k,
            now_ns,
            lateness_ns: t.lateness,
            compute_ns: dl.compute,
            overrun: dl.overrun,
            missed: dl.missed,
            stale_mask,
            late_mask: sensed.late_mask,
            body_stale,
            drowsiness: fb.level as f32,
            speed_scale: fb.speed_scale as f32,
            shed_level: fb.shed_level,
            sleep_requested: requested,
            drowsiness_held: fb.held as f32,
            teleop_source: out.teleop_source,
            teleop_stamp_ns: out.teleop_stamp_ns,
            estop_source: out.estop_source,
            estop: out.stop == StopReason::Estop,
            operator_mode: mode_op,
            assist_cap: out.assist_cap,
            understood: self.policy.understood(),
            sleeping,
            slept,
            consolidated,
            mode,
            twist: out.twist,
            source: out.source,
            context_len: self.memory.wm.len() as u32,
            surprise,
        };
        tracing::trace!(
            tick = t.k,
            lateness = t.lateness,
            compute = dl.compute,
            missed = dl.missed,
            drowsiness = fb.level,
            "tick"
        );
        &self.record
    }

    fn proprio_features(&mut self, s: &BodyState) {
        let mw = self.max_wheel.max(1e-6);
        let n = (s.range_count as usize).min(s.range.len());
        let min_range = s.range[..n]
            .iter()
            .copied()
            .filter(|r| r.is_finite())
            .fold(f32::INFINITY, f32::min);
        let near = if min_range.is_finite() {
            (min_range as f64 / self.range_max.max(1e-3)).clamp(0.0, 1.0)
        } else {
            1.0
        };
        let f = [
            s.wheel_speed[0] / mw,
            s.wheel_speed[1] / mw,
            s.gyro_z / 5.0,
            s.accel[0] / 5.0,
            s.accel[1] / 5.0,
            near,
        ];
        for (p, v) in self.emotion.proprio.iter_mut().zip(f) {
            *p = if v.is_finite() {
                v.clamp(-4.0, 4.0) as f32
            } else {
                0.0
            };
        }
    }
}
