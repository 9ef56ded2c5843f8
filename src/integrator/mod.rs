//! The integrator: the brain's fixed-rate heart (seed 001).
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
pub use drowsiness::Drowsiness;
pub use forward::ForwardModel;
pub use health::{Health, HealthSummary};
pub use memory::{LongTermMemory, WorkingMemory};
pub use motor::{MotorOutput, MotorStage, StopReason};
pub use policy::{DecisionContext, Policy, ReactivePolicy};

use crate::body::{Body, RobotParams};
use crate::config::{Config, OnFailure};
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

/// The fixed-rate integrator.
pub struct Integrator {
    width: usize,
    period_ns: u64,
    slots: Arc<InputSlots>,
    reader: slots::SlotReader,
    enabled: [bool; RegionId::COUNT],
    stop_on_stale: [bool; RegionId::COUNT],
    stale_ns: [u64; RegionId::COUNT],
    region_period_ns: [u64; RegionId::COUNT],
    token_gain: [f32; TOKENS],
    memory_write_gain: f32,
    emotion_write_gain: f32,
    connectors: Vec<Connector>,
    body_connector: Connector,
    emotion_connector: Connector,
    drowsy_dir: Vec<f32>,
    projected_seq: [Option<u64>; RegionId::COUNT],
    tokens: Vec<f32>,
    present: [bool; TOKENS],
    logits: [f32; TOKENS],
    fused: Vec<f32>,
    fused_prev: Vec<f32>,
    query: Vec<f32>,
    wm: WorkingMemory,
    ltm: LongTermMemory,
    consolidator: Consolidator,
    forward: ForwardModel,
    fx: Vec<f32>,
    fx_prev: Vec<f32>,
    fy: Vec<f32>,
    fscratch: Vec<f32>,
    have_prev: bool,
    proprio: [f32; PROPRIO_FEATURES],
    emotion: [f32; 3],
    drowsiness: Drowsiness,
    shed: Arc<AtomicU32>,
    policy: Box<dyn Policy + Send>,
    motor: MotorStage,
    timer: Box<dyn ComputeTimer>,
    health: Health,
    record: TickRecord,
    tick_index: u64,
    next_deadline: Option<u64>,
    last_now: Option<u64>,
    start_ns: Option<u64>,
    pending_missed: u64,
    phase: SleepPhase,
    sleep_forced: bool,
    sleep_entries: u32,
    sleep_while_moving: bool,
    max_speed: (f64, f64),
    max_wheel: f64,
    range_max: f64,
}

impl std::fmt::Debug for Integrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integrator")
            .field("width", &self.width)
            .field("period_ns", &self.period_ns)
            .field("tick", &self.tick_index)
            .field("context", &self.wm.len())
            .finish_non_exhaustive()
    }
}

fn seeded_unit(width: usize, seed: u64) -> Vec<f32> {
    let mut r = connector::SplitMix::new(seed);
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
        let ic = &cfg.integrator;
        let width = ic.width;
        let period_ns = (1e9 / ic.rate_hz).round() as u64;
        let slots = InputSlots::new(opts.region_dims);
        let reader = slots
            .reader()
            .ok_or_else(|| IntegratorError::Config("input slots already read".into()))?;
        let mut enabled = [false; RegionId::COUNT];
        let mut stop_on_stale = [false; RegionId::COUNT];
        let mut stale_ns = [u64::MAX; RegionId::COUNT];
        let mut region_period_ns = [u64::MAX; RegionId::COUNT];
        let mut token_gain = [0f32; TOKENS];
        let mut connectors = Vec::with_capacity(RegionId::COUNT);
        for r in RegionId::ALL {
            let i = r.index();
            if let Some(rc) = cfg.regions.get(r.name()) {
                enabled[i] = rc.enabled;
                stop_on_stale[i] = rc.enabled && rc.on_failure == OnFailure::Stop;
                stale_ns[i] = rc.stale_after_ms * 1_000_000;
                region_period_ns[i] = (1e9 / rc.rate_hz) as u64;
            }
            token_gain[i] = cfg.gain(r.name(), "integrator") as f32;
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
        token_gain[TOK_MEMORY] = cfg.gain("memory", "integrator") as f32;
        token_gain[TOK_EMOTION] = cfg.gain("emotion", "integrator") as f32;
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
            width,
            period_ns,
            slots,
            reader,
            enabled,
            stop_on_stale,
            stale_ns,
            region_period_ns,
            token_gain,
            memory_write_gain: cfg.gain("integrator", "memory") as f32,
            emotion_write_gain: cfg.gain("integrator", "emotion") as f32,
            connectors,
            body_connector: Connector::seeded(PROPRIO_FEATURES, width, ic.seed * 1000 + 10),
            emotion_connector: Connector::seeded(3, width, ic.seed * 1000 + 11),
            drowsy_dir: seeded_unit(width, ic.seed * 1000 + 12),
            projected_seq: [None; RegionId::COUNT],
            tokens: vec![0.0; TOKENS * width],
            present: [false; TOKENS],
            logits: [0.0; TOKENS],
            fused: vec![0.0; width],
            fused_prev: vec![0.0; width],
            query: vec![0.0; width],
            wm: WorkingMemory::new(ic.context_capacity, width),
            ltm: LongTermMemory::new(width),
            consolidator: Consolidator::new(width),
            forward,
            fx: vec![0.0; di],
            fx_prev: vec![0.0; di],
            fy: vec![0.0; dout],
            fscratch: vec![0.0; dout],
            have_prev: false,
            proprio: [0.0; PROPRIO_FEATURES],
            emotion: [0.0; 3],
            drowsiness: Drowsiness::new(&cfg.drowsiness),
            shed: Arc::new(AtomicU32::new(0)),
            policy: Box::new(ReactivePolicy::new()),
            motor,
            timer: Box::new(ModeledTimer::for_width(width)),
            health: Health::default(),
            record: TickRecord::default(),
            tick_index: 0,
            next_deadline: None,
            last_now: None,
            start_ns: None,
            pending_missed: 0,
            phase: SleepPhase::Awake,
            sleep_forced: false,
            sleep_entries: 0,
            sleep_while_moving: opts.sleep_while_moving,
            max_speed: (cfg.limits.max_linear_mps, cfg.limits.max_angular_rps),
            max_wheel: params.max_wheel_speed,
            range_max: params.range_max,
        })
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
        self.policy = policy;
    }

    /// Connect the teleop override input.
    pub fn set_teleop(&mut self, teleop: Arc<TeleopInput>) {
        self.motor.set_teleop(teleop);
    }

    /// Replace the compute-time source (default: [`ModeledTimer`], deterministic;
    /// [`rt::run_realtime`] installs [`WallTimer`]).
    pub fn set_compute_timer(&mut self, timer: Box<dyn ComputeTimer>) {
        self.timer = timer;
    }

    /// Tick period, ns.
    pub fn period_ns(&self) -> u64 {
        self.period_ns
    }

    /// The absolute deadline of the next tick (None before the first tick).
    pub fn next_deadline(&self) -> Option<u64> {
        self.next_deadline
    }

    /// Set the first deadline (the real-time runner starts the schedule here).
    pub fn start_at(&mut self, deadline_ns: u64) {
        self.next_deadline = Some(deadline_ns);
    }

    /// Running health counters and histograms.
    pub fn health(&self) -> &Health {
        &self.health
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
        self.wm.len()
    }

    /// Long-term memory slots in use.
    pub fn long_term_len(&self) -> usize {
        self.ltm.len()
    }

    /// Forward-model error since the last sleep: (current model, model before the last sleep),
    /// measured on the same transitions.
    pub fn forward_errors(&self) -> (f64, f64) {
        self.forward.errors()
    }

    /// The fused state of the last tick.
    pub fn fused(&self) -> &[f32] {
        &self.fused
    }

    /// Ask for sleep now (it starts once the robot is stopped).
    pub fn sleep_now(&mut self) {
        self.sleep_forced = true;
    }

    /// Whether sleeping.
    pub fn sleeping(&self) -> bool {
        self.phase != SleepPhase::Awake
    }

    /// Run one whole tick at `now_ns`: read slots, project, fuse, remember, account, decide,
    /// run the motor stage and write the body. Allocation-free.
    pub fn tick(&mut self, now_ns: u64, body: &mut dyn Body) -> &TickRecord {
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
        let uptime = now_ns - start;
        let w = self.width;

        // Inputs.
        let state = body.state();
        let body_stale = self.motor.body_stale(now_ns, &state);
        let mut stale_mask = 0u8;
        let mut late_mask = 0u8;
        let mut stale_count = 0u32;
        let mut stop_for_region = false;
        for r in RegionId::ALL {
            let i = r.index();
            self.reader.update(r);
            let v = self.reader.view(r, false);
            let age = now_ns.saturating_sub(v.stamp_ns);
            let fresh = v.valid && age <= self.stale_ns[i];
            let stale = self.enabled[i]
                && if v.valid {
                    !fresh
                } else {
                    // No instruction yet is a normal state for language, not a failure.
                    r != RegionId::Language && uptime > self.stale_ns[i]
                };
            if stale {
                stale_mask |= 1 << i;
                stale_count += 1;
                self.health.region_stale[i] += 1;
                stop_for_region |= self.stop_on_stale[i];
            }
            if fresh && age > self.region_period_ns[i].saturating_mul(3) / 2 {
                late_mask |= 1 << i;
                self.health.region_late[i] += 1;
            }
            self.present[i] = fresh && self.token_gain[i] > 0.0;
            if self.present[i] && self.projected_seq[i] != Some(v.seq) {
                self.connectors[i].project(v.vector, &mut self.tokens[i * w..(i + 1) * w]);
                self.projected_seq[i] = Some(v.seq);
            }
        }
        if body_stale {
            self.health.body_stale += 1;
            stale_count += 1;
        }

        // Drowsiness (facts on the brain's clock only): deadlines that passed before this tick
        // could start count now, over the interval in which they were missed; deadlines missed
        // by the previous tick's compute count now too (they were known only when it ended);
        // plus this tick's staleness.
        let late_missed = lateness.saturating_sub(1) / period;
        let d =
            self.drowsiness
                .update(now_ns, dt_s, self.pending_missed + late_missed, stale_count);
        let feedback = self.drowsiness.feedback();
        let shed = self.drowsiness.shed_level();
        self.shed.store(shed, Ordering::Relaxed);

        // Body token.
        self.proprio_features(&state);
        self.present[TOK_BODY] = !body_stale;
        self.body_connector.project(
            &self.proprio,
            &mut self.tokens[TOK_BODY * w..(TOK_BODY + 1) * w],
        );

        // Working-memory readout (attention over the whole context: cost grows with it).
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
            && self.wm.read(&self.query, &self.ltm, &mut rest[..w]);

        // Emotion and drowsiness tokens.
        self.emotion_connector.project(
            &self.emotion,
            &mut self.tokens[TOK_EMOTION * w..(TOK_EMOTION + 1) * w],
        );
        self.present[TOK_EMOTION] = self.token_gain[TOK_EMOTION] > 0.0;
        for (t, u) in self.tokens[TOK_DROWSY * w..(TOK_DROWSY + 1) * w]
            .iter_mut()
            .zip(&self.drowsy_dir)
        {
            *t = d as f32 * u;
        }
        self.present[TOK_DROWSY] = feedback && d > 0.0;

        // Fusion: attention of the previous state over the tokens, gains scale each edge.
        self.fuse();

        // Working memory: the day's context (not written while asleep).
        if self.phase == SleepPhase::Awake && self.memory_write_gain > 0.0 {
            self.wm.push(&self.fused, self.memory_write_gain);
        }

        // Forward model: learn from last tick's prediction; surprise feeds emotion.
        let mut surprise = 0.0;
        if self.have_prev && self.phase == SleepPhase::Awake {
            self.fy[..w].copy_from_slice(&self.fused);
            self.fy[w..].copy_from_slice(&self.proprio);
            surprise = self
                .forward
                .observe(&self.fx_prev, &self.fy, &mut self.fscratch);
        }
        let s = surprise / (1.0 + surprise);
        let a = 0.05 * self.emotion_write_gain;
        self.emotion[1] += a * (s - self.emotion[1]);
        self.emotion[0] += a * ((1.0 - 2.0 * s - d as f32) - self.emotion[0]);
        self.emotion[2] = s;

        // Sleep request and the sleep state machine.
        let requested = feedback
            && (self.drowsiness.wants_sleep(now_ns) || self.wm.is_full() || self.sleep_forced);
        let requested = requested || self.sleep_forced;
        let mut slept = false;
        let mut consolidated = 0;
        match self.phase {
            SleepPhase::Awake if requested => self.phase = SleepPhase::Settling,
            SleepPhase::Settling => {
                let still = state.wheel_speed.iter().all(|s| s.abs() < 0.05);
                if still || self.sleep_while_moving {
                    self.sleep_entries = self.wm.len() as u32;
                    self.consolidator.begin(&self.wm, &self.ltm);
                    self.phase = SleepPhase::Consolidating;
                }
            }
            SleepPhase::Consolidating => {
                if self.consolidator.step(&self.wm, &mut self.ltm) {
                    self.phase = SleepPhase::Refit;
                }
            }
            SleepPhase::Refit => {
                self.forward.refit();
                self.wm.clear();
                self.drowsiness.reset();
                self.policy.reset();
                self.sleep_forced = false;
                self.have_prev = false;
                self.health.sleeps += 1;
                slept = true;
                consolidated = self.sleep_entries;
                self.phase = SleepPhase::Awake;
            }
            SleepPhase::Awake => {}
        }
        let sleeping = self.phase != SleepPhase::Awake;

        // Decide.
        let lang = RegionId::Language.index();
        let intent = {
            let views = [
                self.reader.view(RegionId::Vision, stale_mask & 1 != 0),
                self.reader.view(RegionId::Language, stale_mask & 2 != 0),
                self.reader.view(RegionId::Audition, stale_mask & 4 != 0),
                self.reader
                    .view(RegionId::Proprioception, stale_mask & 8 != 0),
            ];
            // Language silence is "no instruction"; a stale instruction is dropped too.
            let instruction =
                (views[lang].valid && stale_mask & (1 << lang) == 0).then_some(views[lang].vector);
            let t = &self.tokens;
            let ctx = DecisionContext {
                now_ns,
                regions: views,
                region_tokens: [&t[..w], &t[w..2 * w], &t[2 * w..3 * w], &t[3 * w..4 * w]],
                fused: &self.fused,
                memory: &t[TOK_MEMORY * w..(TOK_MEMORY + 1) * w],
                context_len: self.wm.len(),
                // The ablation switch cuts every path back into the loop, the decision's too.
                drowsiness: if feedback { d } else { 0.0 },
                emotion: self.emotion,
                body: &state,
                body_stale,
                instruction,
                max_speed: self.max_speed,
                range_max: self.range_max,
            };
            self.policy.decide(&ctx)
        };
        let force_stop = sleeping || stop_for_region;
        let speed_scale = self.drowsiness.speed_scale();
        let out = self
            .motor
            .step(now_ns, &intent, speed_scale, force_stop, &state, body);
        let mode = match out.stop {
            StopReason::Estop | StopReason::StaleBody => Mode::Stopped,
            _ if out.source == ControlSource::Teleop => intent.mode,
            _ if sleeping => Mode::Sleep,
            _ if stop_for_region => Mode::Stopped,
            _ => intent.mode,
        };

        // Forward-model input for the next tick: this state and the command actually sent.
        self.forward.features(
            &self.fused,
            &self.proprio,
            [
                (out.twist.linear / self.max_speed.0.max(1e-6)) as f32,
                (out.twist.angular / self.max_speed.1.max(1e-6)) as f32,
            ],
            &mut self.fx,
        );
        std::mem::swap(&mut self.fx, &mut self.fx_prev);
        self.have_prev = true;
        self.fused_prev.copy_from_slice(&self.fused);

        // Deadline accounting.
        let compute = self.timer.stop(k, self.wm.len());
        let span = lateness + compute;
        // Finishing exactly on the next deadline misses nothing; each deadline strictly passed
        // is one missed cycle.
        let overrun = span > period;
        let missed = if overrun { (span - 1) / period } else { 0 };
        self.pending_missed = missed.saturating_sub(late_missed);
        self.next_deadline = Some(sched + (missed + 1) * period);
        self.health.ticks += 1;
        self.health.lateness.record(lateness);
        self.health.compute.record(compute);
        self.health.overruns += overrun as u64;
        self.health.missed += missed;
        self.tick_index += 1;
        self.record = TickRecord {
            tick: k,
            now_ns,
            lateness_ns: lateness,
            compute_ns: compute,
            overrun,
            missed,
            stale_mask,
            late_mask,
            body_stale,
            drowsiness: d as f32,
            speed_scale: speed_scale as f32,
            shed_level: shed,
            sleep_requested: requested,
            sleeping,
            slept,
            consolidated,
            mode,
            twist: out.twist,
            source: out.source,
            context_len: self.wm.len() as u32,
            surprise,
        };
        tracing::trace!(tick = k, lateness, compute, missed, drowsiness = d, "tick");
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
        for (p, v) in self.proprio.iter_mut().zip(f) {
            *p = if v.is_finite() {
                v.clamp(-4.0, 4.0) as f32
            } else {
                0.0
            };
        }
    }

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
