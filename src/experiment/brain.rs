//! The whole brain in the simulator: the sensory regions (vision on the simulated camera,
//! language on the instruction, audition on the simulated microphone, proprioception on the
//! body) stepped at their configured rates in simulation time, publishing into the integrator's
//! input slots, and the integrator ticking at its rate with its motor stage driving the body.
//! This is the same code that runs on the robot; only the sources and the clock differ.
//!
//! The decision policy is pluggable. Until the language-grounded policy is wired in, the
//! [`PilotPolicy`] adapter lets the classical colour pilot decide inside the integrator (its
//! colour-blob sightings are computed from the same camera frames the vision region sees).

use crate::body::{Body, RobotParams};
use crate::brain::Sources;
use crate::config::Config;
use crate::experiment::pilot::{find_target, ColourPilot, Sighting};
use crate::integrator::{
    DecisionContext, Integrator, ModeledTimer, Policy, ScheduledTimer, SlotWriter, WallTimer,
};
use crate::msg::{Instruction, MotorIntent, RegionId};
use crate::regions::language::InstructionInbox;
use crate::regions::sources::{AudioSource, Frame, FrameSource, SharedBodyState, SharedFrame};
use crate::regions::{Region, RegionHandle};
use crate::report::TickSample;
use crate::sim::camera::RgbFrame;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What drives the robot in the simulator: sees camera frames when it wants them and runs one
/// whole decision-and-actuation tick at the integrator rate.
pub trait Brain {
    /// Short name for reports.
    fn name(&self) -> String;
    /// Whether it uses camera frames.
    fn wants_camera(&self) -> bool;
    /// A new camera frame.
    fn see(&mut self, frame: &RgbFrame);
    /// One tick at `now_ns`: decide and command `body`.
    fn tick(&mut self, now_ns: u64, body: &mut dyn Body) -> TickSample;
    /// Called every physics step: run whatever senses are due at `now_ns` (regions).
    fn sense(&mut self, _now_ns: u64, _body: &dyn Body) {}
    /// When the next tick is due, if the brain keeps its own schedule (the integrator's
    /// absolute deadlines, which account for overruns); `None`: every period.
    fn next_due(&self) -> Option<u64> {
        None
    }
    /// The integrator, for a brain built on one (the teleop console attaches to it).
    fn integrator(&self) -> Option<&crate::integrator::Integrator> {
        None
    }
    /// The integrator's last tick record.
    fn record(&self) -> Option<crate::integrator::TickRecord> {
        None
    }
    /// Where new instructions go, and the clock they are stamped on (the simulation clock).
    fn instructions(&self) -> Option<(InstructionInbox, Arc<AtomicU64>)> {
        None
    }
}

/// Errors building the simulated brain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrainError {
    /// The brain could not be built from the configuration.
    #[error(transparent)]
    Build(#[from] crate::brain::BuildError),
    /// The decision policy could not be built.
    #[error("policy: {0}")]
    Policy(String),
}

/// The simulated microphone: the arena is silent, so it delivers silence on time.
#[derive(Debug, Default)]
pub struct SilentMicrophone {
    next_ns: u64,
}

impl AudioSource for SilentMicrophone {
    fn read_chunk(&mut self, now_ns: u64, out: &mut [f32]) -> Option<u64> {
        let chunk_ns = out.len() as u64 * 1_000_000_000 / 16_000;
        if now_ns + 1 < self.next_ns {
            return None;
        }
        out.iter_mut().for_each(|s| *s = 0.0);
        self.next_ns = now_ns + chunk_ns;
        Some(now_ns)
    }
}

/// Shared latest colour-blob sighting (written on the simulator thread, read by the policy).
pub type SightingCell = Arc<Mutex<Option<(u64, Sighting)>>>;

/// The colour pilot as an integrator [`Policy`]: decides from the latest sighting, the range
/// rays and the gyro; the integrator's motor stage then validates, limits and scales it.
#[derive(Debug)]
pub struct PilotPolicy {
    pilot: ColourPilot,
    sightings: SightingCell,
}

impl PilotPolicy {
    /// A pilot for `instruction`, reading sightings from `sightings`.
    pub fn new(instruction: &str, hfov: f64, sightings: SightingCell) -> Self {
        Self {
            pilot: ColourPilot::new(instruction, hfov),
            sightings,
        }
    }
}

impl Policy for PilotPolicy {
    fn decide(&mut self, ctx: &DecisionContext<'_>) -> MotorIntent {
        if let Ok(g) = self.sightings.try_lock() {
            if let Some((t, s)) = *g {
                self.pilot.observe(t, s);
            }
        }
        self.pilot.decide(ctx.now_ns, ctx.body)
    }
    fn reset(&mut self) {
        self.pilot.reset();
    }
    fn name(&self) -> &'static str {
        "colour-pilot"
    }
}

struct Scheduled {
    region: Box<dyn Region>,
    writer: SlotWriter,
    period_ns: u64,
    next_ns: u64,
}

/// The integrator with its regions, stepped in simulation time.
pub struct IntegratorBrain {
    integrator: Integrator,
    regions: Vec<Scheduled>,
    frames: SharedFrame,
    body_state: SharedBodyState,
    sightings: SightingCell,
    pilot_target: Option<crate::world::ObjectKind>,
    hfov: f64,
    policy_name: &'static str,
    region_errors: u64,
    /// Real-time runs: each region on its own thread (as on the robot), on `clock`.
    threads: Vec<RegionHandle>,
    region_names: Vec<&'static str>,
    /// Simulation time, ns, as the region threads read it (set by `sense` every step).
    clock: Arc<AtomicU64>,
    /// The language region's inbox (a new instruction mid-episode: the console).
    inbox: InstructionInbox,
}

impl std::fmt::Debug for IntegratorBrain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegratorBrain")
            .field("integrator", &self.integrator)
            .field("regions", &self.regions.len())
            .finish()
    }
}

/// Which decision policy the integrator uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PolicyKind {
    /// The language-grounded policy (instruction embedding x aligned vision tokens). Without
    /// its trained connector the run stops with a line saying how to train it: a robot does not
    /// silently fall back to a different way of deciding.
    #[default]
    Grounded,
    /// The classical colour pilot (instruction words x pixel colours), a baseline.
    Pilot,
}

/// Options of the simulated brain.
#[derive(Debug, Clone, Default)]
pub struct BrainOptions {
    /// Decision policy.
    pub policy: PolicyKind,
    /// Run the vision region (needs camera frames).
    pub vision: bool,
    /// Wall-clock compute timing (real-time runs) instead of the deterministic model.
    pub wall_clock: bool,
    /// Extra compute per tick, ns (overload for ablations).
    pub stress_ns: u64,
    /// Modelled CPU contention of this many burner threads: seeded stalls (see [`stall_ns`]).
    pub stress_level: u32,
    /// Seed of the stalls.
    pub stress_seed: u64,
    /// Run each region on its own thread at its rate, as `brainloop run` does (real-time runs),
    /// instead of stepping them in the caller's thread (lockstep: deterministic).
    pub region_threads: bool,
    /// The grounded policy's connector when not the shipped one (a learned state's,
    /// `--state FILE`).
    pub connector: Option<Arc<crate::grounding::AlignConnector>>,
}

/// The modelled stall of tick `k` under the contention of `level` CPU burner threads: with
/// probability 1 % x level the integrator thread is preempted for 30 to 30 + 60 x level ms
/// (a pure function of the seed and the tick, so lockstep runs stay deterministic).
pub fn stall_ns(level: u32, seed: u64, k: u64) -> u64 {
    if level == 0 {
        return 0;
    }
    let mut r = crate::util::SplitMix::new(
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k.wrapping_mul(0xD1B5_4A32_D192_ED03),
    );
    if r.uniform() >= (0.01 * level as f64).min(1.0) {
        return 0;
    }
    let ms = 30.0 + r.uniform() * 60.0 * level as f64;
    (ms * 1e6) as u64
}

/// Camera horizontal field of view from the robot description.
pub fn camera_hfov(params: &RobotParams) -> f64 {
    let fovy = params.camera_fovy_deg.to_radians();
    let aspect = params.camera_width as f64 / params.camera_height.max(1) as f64;
    2.0 * ((fovy / 2.0).tan() * aspect).atan()
}

impl IntegratorBrain {
    /// Build the integrator and every enabled region for `instruction`.
    pub fn new(
        config: &Config,
        params: &RobotParams,
        instruction: &str,
        opts: &BrainOptions,
    ) -> Result<Self, BrainError> {
        let frames = SharedFrame::new();
        let body_state = SharedBodyState::new();
        let inbox = InstructionInbox::new();
        inbox.set(Instruction {
            stamp_ns: 0,
            text: instruction.to_string(),
        });
        let own_inbox = inbox.clone();
        let sources = Sources {
            frames: opts
                .vision
                .then(|| Box::new(frames.clone()) as Box<dyn FrameSource>),
            instructions: inbox,
            audio: Some(Box::new(SilentMicrophone::default())),
            body: Some(Box::new(body_state.clone())),
            remote: Vec::new(),
        };
        let brain = crate::brain::build(config, params, Default::default(), sources)?;
        let region_names = brain.region_names();
        let crate::brain::Brain {
            mut integrator,
            regions: built,
            ..
        } = brain;
        if opts.wall_clock {
            integrator.set_compute_timer(Box::new(WallTimer::default()));
        } else if opts.stress_ns > 0 || opts.stress_level > 0 {
            let m = ModeledTimer::default();
            let extra = opts.stress_ns;
            let (level, seed) = (opts.stress_level, opts.stress_seed);
            integrator.set_compute_timer(Box::new(ScheduledTimer(move |k, ctx: usize| {
                m.base_ns + m.per_entry_ns * ctx as u64 + extra + stall_ns(level, seed, k)
            })));
        }
        let hfov = camera_hfov(params);
        let sightings: SightingCell = Arc::new(Mutex::new(None));
        let grounded = match opts.policy {
            PolicyKind::Pilot => None,
            PolicyKind::Grounded => Some(
                match &opts.connector {
                    Some(c) => crate::grounding::policy_with(
                        c.clone(),
                        std::path::Path::new("--state"),
                        params,
                    ),
                    None => crate::grounding::load_policy(params),
                }
                .map_err(|e| {
                    BrainError::Policy(format!(
                        "{e} (train it with `brainloop align`, or use `--policy pilot`)"
                    ))
                })?,
            ),
        };
        let (pilot_target, policy_name) = match grounded {
            None => {
                let policy = PilotPolicy::new(instruction, hfov, sightings.clone());
                let target = policy.pilot.target();
                let name = policy.name();
                integrator.set_policy(Box::new(policy));
                (target, name)
            }
            Some(policy) => {
                let name = Policy::name(&policy);
                integrator.set_policy(Box::new(policy));
                (None, name)
            }
        };
        let clock = Arc::new(AtomicU64::new(0));
        let (regions, threads) = if opts.region_threads {
            // The regions' clock is the simulation clock (which a real-time run keeps on the
            // wall clock), so their stamps and the integrator's staleness checks agree.
            let c = clock.clone();
            let now: Arc<dyn Fn() -> u64 + Send + Sync> =
                Arc::new(move || c.load(Ordering::Acquire));
            let handles = crate::brain::spawn_regions(built, now)?;
            (Vec::new(), handles.into_iter().map(|(_, h)| h).collect())
        } else {
            let scheduled = built
                .into_iter()
                .map(|r| Scheduled {
                    period_ns: r.period_ns,
                    region: r.region,
                    writer: r.writer,
                    next_ns: 0,
                })
                .collect();
            (scheduled, Vec::new())
        };
        Ok(Self {
            integrator,
            regions,
            threads,
            region_names,
            clock,
            frames,
            body_state,
            inbox: own_inbox,
            sightings,
            pilot_target,
            hfov,
            policy_name,
            region_errors: 0,
        })
    }

    /// The integrator (health, drowsiness, memory).
    pub fn integrator(&self) -> &Integrator {
        &self.integrator
    }

    /// Region step errors so far (a failed region goes stale; the integrator copes).
    pub fn region_errors(&self) -> u64 {
        self.region_errors
    }
}

impl Brain for IntegratorBrain {
    fn integrator(&self) -> Option<&crate::integrator::Integrator> {
        Some(&self.integrator)
    }

    fn record(&self) -> Option<crate::integrator::TickRecord> {
        Some(*self.integrator.last_record())
    }

    fn instructions(&self) -> Option<(InstructionInbox, Arc<AtomicU64>)> {
        Some((self.inbox.clone(), self.clock.clone()))
    }

    fn name(&self) -> String {
        format!(
            "integrator[{}]+{}",
            self.region_names.join(","),
            self.policy_name
        )
    }

    fn wants_camera(&self) -> bool {
        true
    }

    fn see(&mut self, frame: &RgbFrame) {
        if let Some(kind) = self.pilot_target {
            if let Some(s) = find_target(kind, frame.width, frame.height, &frame.data, self.hfov) {
                if let Ok(mut g) = self.sightings.lock() {
                    *g = Some((frame.stamp_ns, s));
                }
            }
        }
        if self.region_names.contains(&RegionId::Vision.name()) {
            self.frames.put(Frame {
                width: frame.width,
                height: frame.height,
                stamp_ns: frame.stamp_ns,
                data: frame.data.clone(),
            });
        }
    }

    fn sense(&mut self, now_ns: u64, body: &dyn Body) {
        if !self.threads.is_empty() {
            // The region threads run on their own; they read the body and the clock from here.
            self.body_state.put(body.state());
            self.clock.store(now_ns, Ordering::Release);
            return;
        }
        let mut body_put = false;
        for r in &mut self.regions {
            if now_ns < r.next_ns {
                continue;
            }
            r.next_ns = now_ns + r.period_ns;
            if r.region.id() == RegionId::Proprioception && !body_put {
                self.body_state.put(body.state());
                body_put = true;
            }
            match r.region.step(now_ns) {
                Ok(Some(e)) => {
                    let _ = r.writer.publish(&crate::integrator::EmbeddingRef {
                        seq: e.seq,
                        stamp_ns: e.stamp_ns,
                        model_id: e.model_id,
                        vector: e.vector,
                        grid: e.grid,
                        spatial: e.spatial,
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    self.region_errors += 1;
                    tracing::warn!("region {} failed: {e}", r.region.id().name());
                }
            }
        }
    }

    fn next_due(&self) -> Option<u64> {
        self.integrator.next_deadline()
    }

    fn tick(&mut self, now_ns: u64, body: &mut dyn Body) -> TickSample {
        let r = *self.integrator.tick(now_ns, body);
        TickSample {
            now_ns,
            compute_ns: r.compute_ns,
            wall_ns: 0,
            drowsiness: r.drowsiness as f64,
            missed: r.missed as u32,
            linear: r.twist.linear,
            angular: r.twist.angular,
            mode: r.mode,
            sleeping: r.sleeping,
            period_ns: self.integrator.period_ns(),
            lateness_ns: r.lateness_ns,
            wall_lateness_ns: None,
            speed_scale: r.speed_scale as f64,
            stale_mask: r.stale_mask,
            late_mask: r.late_mask,
            body_stale: r.body_stale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stall_ns;

    #[test]
    fn stalls_are_seeded_and_scale_with_the_load() {
        assert!((0..10_000).all(|k| stall_ns(0, 7, k) == 0));
        let a: Vec<u64> = (0..10_000).map(|k| stall_ns(2, 7, k)).collect();
        let b: Vec<u64> = (0..10_000).map(|k| stall_ns(2, 7, k)).collect();
        assert_eq!(a, b, "same seed, same stalls");
        let c: Vec<u64> = (0..10_000).map(|k| stall_ns(2, 8, k)).collect();
        assert_ne!(a, c, "another seed, other stalls");
        let n2 = a.iter().filter(|&&s| s > 0).count();
        let n1 = (0..10_000).filter(|&k| stall_ns(1, 7, k) > 0).count();
        // 2 % and 1 % of 10,000 ticks.
        assert!((150..=250).contains(&n2), "{n2}");
        assert!((60..=140).contains(&n1), "{n1}");
        assert!(a
            .iter()
            .filter(|&&s| s > 0)
            .all(|&s| (30_000_000..=150_000_000).contains(&s)));
    }
}
