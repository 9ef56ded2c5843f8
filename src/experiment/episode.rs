//! One simulated run of the brain on a scenario: the lockstep loop of the contract (each physics
//! step: camera at the vision rate, brain tick at the integrator rate, then advance the body),
//! scoring against ground truth, the MCAP recording and the report directory; and `eval`, which
//! runs every scenario over several seeds and aggregates success rate, collisions, time and SPL.
//!
//! In lockstep the only clock is simulation time, so a run is a pure function of the scenario,
//! seed and options. With `realtime` the loop is paced by the wall clock and missed deadlines are
//! real.

use crate::body::{Body, RobotParams};
use crate::config::{Config, LimitsConfig};
use crate::experiment::brain::{Brain, BrainOptions, IntegratorBrain, PolicyKind};
use crate::experiment::pilot::ColourPilot;
use crate::msg::{Instruction, Mode, Twist};
use crate::report::{self, mcap::Recorder, r6, StepResult, Summary, TickSample};
use crate::sim::bodies::{self, Board, Physics};
use crate::sim::camera::{RgbFrame, SimCamera};
use crate::sim::mjcf::TIMESTEP;
use crate::sim::scenario::{
    Layout, ObjectKind, Scenario, ScenarioError, ROBOT_RADIUS, STEP_SLEEP_LIMIT_S,
};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Errors running an episode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Scenario problem (unknown, malformed, unreachable).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The body could not be built (MuJoCo, emulated board).
    #[error(transparent)]
    Body(#[from] crate::sim::bodies::BodyBuildError),
    /// The body failed during the run (e.g. the emulated board's CPU stopped).
    #[error("the body failed at t = {at_s:.3} s: {message}")]
    BodyFailed {
        /// Simulated time, s.
        at_s: f64,
        /// What failed.
        message: String,
    },
    /// Camera problem.
    #[error("{0} (or run without MuJoCo rendering: `--body kinematic`)")]
    Camera(#[from] crate::sim::camera::CameraError),
    /// Recording problem.
    #[error(transparent)]
    Record(#[from] crate::report::mcap::RecordError),
    /// Report file problem.
    #[error("writing the report to {path}: {message}")]
    Report {
        /// Path.
        path: String,
        /// Cause.
        message: String,
    },
    /// Bad option.
    #[error("{0}")]
    Options(String),
    /// The brain could not be built.
    #[error(transparent)]
    Brain(#[from] crate::experiment::brain::BrainError),
}

/// How to run an episode.
#[derive(Debug, Clone)]
pub struct EpisodeOptions {
    /// Layout seed (None: the scenario's own).
    pub seed: Option<u64>,
    /// Simulated seconds (None: the scenario's time limit).
    pub seconds: Option<f64>,
    /// Instruction (None: the scenario's).
    pub instruction: Option<String>,
    /// Render the camera for the vision side of the brain.
    pub camera: bool,
    /// Pace by the wall clock instead of lockstep.
    pub realtime: bool,
    /// Extra simulated compute time per tick, ms (deterministic overload for ablations).
    pub stress_ms: f64,
    /// Modelled CPU contention of this many burner threads: seeded stalls of the integrator.
    pub stress_level: u32,
    /// Write a report directory here.
    pub report_dir: Option<PathBuf>,
    /// Which brain drives.
    pub brain: BrainKind,
    /// End the episode when the goal is reached (benchmarks keep running).
    pub stop_on_success: bool,
    /// The integrator's decision policy.
    pub policy: PolicyKind,
    /// The robot model: MuJoCo, or kinematic (no MuJoCo, no camera).
    pub physics: Physics,
    /// What sits between the brain and the wheels: the simulated board, or the real firmware on
    /// the emulated board (`--hil`).
    pub board: Board,
    /// Join the zenoh bus (real time only): health and status out, the teleop console and
    /// instructions in.
    pub bus: Option<crate::bus::zenoh::ZenohOptions>,
    /// Set (by SIGINT / SIGTERM) to end the episode early: it stops the robot, scores what it
    /// did (outcome `interrupted`), writes the report and closes the recording cleanly.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// The grounded policy's connector when not the shipped one (a learned state's).
    pub connector: Option<std::sync::Arc<crate::grounding::AlignConnector>>,
}

impl Default for EpisodeOptions {
    fn default() -> Self {
        Self {
            seed: None,
            seconds: None,
            instruction: None,
            camera: true,
            realtime: false,
            stress_ms: 0.0,
            stress_level: 0,
            report_dir: None,
            brain: BrainKind::Integrator,
            stop_on_success: true,
            policy: PolicyKind::Grounded,
            physics: Physics::Mujoco,
            board: Board::Simulated,
            bus: None,
            stop: None,
            connector: None,
        }
    }
}

/// Live progress, reported once per simulated 100 ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Simulated time, s.
    pub sim_s: f64,
    /// Time limit, s.
    pub limit_s: f64,
    /// Distance to the goal object, m.
    pub distance_to_goal: f64,
    /// Ticks so far.
    pub ticks: u64,
    /// Missed ticks so far.
    pub missed: u64,
    /// Current drowsiness.
    pub drowsiness: f64,
    /// Current mode.
    pub mode: Mode,
}

/// Which brain drives the simulated robot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BrainKind {
    /// The integrator with every enabled region, deciding with the pilot policy.
    #[default]
    Integrator,
    /// The classical colour pilot alone, with a minimal motor stage (a baseline).
    Pilot,
}

/// The classical baseline brain: the colour pilot plus a motor stage that validates, clamps and
/// acceleration-limits every command before it reaches the body.
#[derive(Debug)]
pub struct PilotBrain {
    pilot: ColourPilot,
    params: RobotParams,
    limits: LimitsConfig,
    last: Twist,
    last_ns: Option<u64>,
}

impl PilotBrain {
    /// A pilot for `instruction`.
    pub fn new(config: &Config, params: &RobotParams, instruction: &str) -> Self {
        let fovy = params.camera_fovy_deg.to_radians();
        let aspect = params.camera_width as f64 / params.camera_height.max(1) as f64;
        let hfov = 2.0 * ((fovy / 2.0).tan() * aspect).atan();
        Self {
            pilot: ColourPilot::new(instruction, hfov),
            params: params.clone(),
            limits: config.limits.clone(),
            last: Twist::ZERO,
            last_ns: None,
        }
    }
}

impl Brain for PilotBrain {
    fn name(&self) -> String {
        "baseline-colour-pilot".into()
    }
    fn wants_camera(&self) -> bool {
        true
    }
    fn see(&mut self, frame: &RgbFrame) {
        self.pilot
            .see(frame.stamp_ns, frame.width, frame.height, &frame.data);
    }
    fn tick(&mut self, now_ns: u64, body: &mut dyn Body) -> TickSample {
        let state = body.state();
        let intent = self.pilot.decide(now_ns, &state);
        let dt = self
            .last_ns
            .map(|t| now_ns.saturating_sub(t) as f64 * 1e-9)
            .unwrap_or(0.0);
        self.last_ns = Some(now_ns);
        let l = &self.limits;
        let want = if intent.twist.is_finite() {
            intent.twist
        } else {
            Twist::ZERO
        };
        let step = |cur: f64, want: f64, max: f64, acc: f64| {
            let want = want.clamp(-max, max);
            cur + (want - cur).clamp(-acc * dt, acc * dt)
        };
        let t = Twist {
            linear: step(
                self.last.linear,
                want.linear,
                l.max_linear_mps,
                l.max_linear_accel,
            ),
            angular: step(
                self.last.angular,
                want.angular,
                l.max_angular_rps,
                l.max_angular_accel,
            ),
        };
        self.last = t;
        let _ = body.command(self.params.twist_to_wheels(t));
        TickSample {
            now_ns,
            compute_ns: 0,
            wall_ns: 0,
            drowsiness: 0.0,
            missed: 0,
            linear: t.linear,
            angular: t.angular,
            mode: intent.mode,
            sleeping: false,
            speed_scale: 1.0,
            ..TickSample::default()
        }
    }
}

#[derive(Serialize)]
struct Pose {
    x: f64,
    y: f64,
    yaw: f64,
}

/// Build the brain for an episode.
pub fn make_brain(
    config: &Config,
    params: &RobotParams,
    instruction: &str,
    opts: &EpisodeOptions,
) -> Result<Box<dyn Brain>, SimError> {
    Ok(match opts.brain {
        BrainKind::Pilot => Box::new(PilotBrain::new(config, params, instruction)),
        BrainKind::Integrator => Box::new(IntegratorBrain::new(
            config,
            params,
            instruction,
            &BrainOptions {
                policy: opts.policy,
                vision: opts.camera,
                wall_clock: opts.realtime,
                stress_ns: (opts.stress_ms * 1e6) as u64,
                stress_level: opts.stress_level,
                stress_seed: opts.seed.unwrap_or(0),
                region_threads: opts.realtime,
                connector: opts.connector.clone(),
            },
        )?),
    })
}

/// A real-time episode on the zenoh bus: the reporter, the console's bridge, the instruction
/// forwarder (dropped with the episode).
struct OnBus {
    ring: std::sync::Arc<crate::integrator::rt::RecordRing>,
    state: std::sync::Arc<crossbeam_utils::atomic::AtomicCell<Option<crate::msg::BodyState>>>,
    _reporter: crate::robot::Reporter,
    _stop: StopOnDrop,
    _net: std::sync::Arc<crate::bus::zenoh::ZenohBus>,
}

struct StopOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn join_bus(
    config: &Config,
    params: &RobotParams,
    o: &crate::bus::zenoh::ZenohOptions,
    brain: &dyn Brain,
    instruction: &str,
    body: String,
) -> anyhow::Result<OnBus> {
    use crate::bus::{topics, Bus, LocalBus};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (Some(integrator), Some((inbox, clock))) = (brain.integrator(), brain.instructions())
    else {
        anyhow::bail!("only the integrator's brain joins the bus (not --brain pilot)");
    };
    let net = Arc::new(
        crate::bus::zenoh::ZenohBus::open(o, "integrator", crate::integrator::rt::monotonic_ns)
            .map_err(|e| anyhow::anyhow!("cannot join the zenoh bus: {e}"))?,
    );
    let local = LocalBus::new();
    net.route_in(
        &local,
        topics::INSTRUCTION,
        crate::bus::zenoh::net_topics::INSTRUCTION,
    )
    .map_err(|e| anyhow::anyhow!("zenoh bus: {e}"))?;
    // New instructions (console, bus) into the language region, on the simulation clock.
    let stop = Arc::new(AtomicBool::new(false));
    let sub = local.subscribe(topics::INSTRUCTION, 16);
    let (st, c) = (stop.clone(), clock.clone());
    std::thread::Builder::new()
        .name("instruction-bridge".into())
        .spawn(move || {
            while !st.load(Ordering::Relaxed) {
                if let Some(mut i) = sub.recv_timeout(std::time::Duration::from_millis(20)) {
                    i.stamp_ns = c.load(Ordering::Acquire);
                    inbox.set(i);
                }
            }
        })?;
    let c = clock.clone();
    let sim_clock: Arc<dyn Fn() -> u64 + Send + Sync> = Arc::new(move || c.load(Ordering::Acquire));
    let auth = crate::robot::serve_console(config, &net, integrator, &local, sim_clock)?;
    let ring = crate::integrator::rt::RecordRing::new(4096);
    let state = Arc::new(crossbeam_utils::atomic::AtomicCell::new(None));
    let regions: Vec<&'static str> = crate::msg::RegionId::ALL
        .into_iter()
        .map(|r| r.name())
        .filter(|n| config.regions.get(*n).is_some_and(|r| r.enabled))
        .collect();
    let reporter = crate::robot::spawn_reporter(
        config,
        params,
        integrator,
        net.clone(),
        &local,
        regions,
        body,
        Some(instruction.to_string()),
        auth,
        ring.clone(),
        state.clone(),
    )?;
    tracing::info!("on the zenoh bus: `brainloop console` can attach");
    Ok(OnBus {
        ring,
        state,
        _reporter: reporter,
        _stop: StopOnDrop(stop),
        _net: net,
    })
}

/// Run one episode of `scenario`.
pub fn run_episode(
    config: &Config,
    params: &RobotParams,
    scenario: &Scenario,
    opts: &EpisodeOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Summary, SimError> {
    let seed = opts.seed.unwrap_or(scenario.seed);
    let layout = scenario.layout(seed)?;
    let limit_s = opts.seconds.unwrap_or(scenario.time_limit_s);
    if !(limit_s.is_finite() && limit_s > 0.0 && limit_s <= 86_400.0) {
        return Err(SimError::Options(format!(
            "--seconds must be within (0, 86400], got {limit_s}"
        )));
    }
    if !(opts.stress_ms.is_finite() && (0.0..=10_000.0).contains(&opts.stress_ms)) {
        return Err(SimError::Options(format!(
            "--extra-compute-ms must be within 0..=10000 ms, got {}",
            opts.stress_ms
        )));
    }
    if opts.stress_level > 16 {
        return Err(SimError::Options(format!(
            "--stress must be within 0..=16 burners, got {}",
            opts.stress_level
        )));
    }
    if opts
        .instruction
        .as_deref()
        .is_some_and(|i| i.trim().is_empty())
    {
        return Err(SimError::Options(
            "--instruction: an instruction needs words (e.g. \"go to the red ball\")".into(),
        ));
    }
    let instruction = opts
        .instruction
        .clone()
        .unwrap_or_else(|| scenario.instruction.clone());
    // The kinematic body has nothing to render: the vision region is blind, and says so.
    let blind = opts.camera && opts.physics == Physics::Kinematic;
    if blind {
        tracing::warn!(
            "--body kinematic: no camera rendering, the vision region is off (blind); range rays come from the layout geometry"
        );
    }
    let opts = &EpisodeOptions {
        camera: opts.camera && !blind,
        ..opts.clone()
    };
    let mut brain = make_brain(config, params, &instruction, opts)?;
    let mut body = bodies::build(opts.physics, &opts.board, params, &layout)?;
    let on_bus = match &opts.bus {
        Some(o) => Some(
            join_bus(
                config,
                params,
                o,
                brain.as_ref(),
                &instruction,
                body.as_body().name(),
            )
            .map_err(|e| SimError::Options(format!("{e:#}")))?,
        ),
        None => None,
    };
    let mut camera = match body.mujoco_mut() {
        Some(m) if opts.camera && brain.wants_camera() => Some(SimCamera::new(
            m,
            params.camera_width,
            params.camera_height,
        )?),
        _ => None,
    };
    let mut recorder = match &opts.report_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| SimError::Report {
                path: dir.display().to_string(),
                message: e.to_string(),
            })?;
            Some(Recorder::create(&dir.join("run.mcap"))?)
        }
        None => None,
    };
    if let Some(r) = recorder.as_mut() {
        r.record(
            "/instruction",
            0,
            &Instruction {
                stamp_ns: 0,
                text: instruction.clone(),
            },
        )?;
        r.record("/scenario/layout", 0, &layout)?;
    }

    // The one tick period (the integrator's deadlines use the same); ticks land on physics
    // steps, so the baseline brain's schedule is that period in whole steps.
    let period_ns = config.tick_period_ns();
    let step_ns = (TIMESTEP * 1e9).round() as u64;
    let steps_per_tick = (period_ns as f64 / step_ns as f64).round().max(1.0) as u64;
    let vision_rate = config
        .regions
        .get("vision")
        .filter(|r| r.enabled)
        .map(|r| r.rate_hz)
        .unwrap_or(10.0)
        .clamp(0.1, 1000.0);
    let steps_per_frame = ((1.0 / vision_rate) / TIMESTEP).round().max(1.0) as u64;
    let stress_steps = (opts.stress_ms * 1e-3 / TIMESTEP).ceil() as u64;
    let total_steps = (limit_s / TIMESTEP).ceil() as u64;
    let snapshot_every = (total_steps / 4).max(1);

    let goal = *layout.goal();
    // The tasks in order, each with where its object stands.
    let tasks = scenario.tasks();
    let multi = tasks.len() > 1;
    let mut task_goals = Vec::with_capacity(tasks.len());
    for (i, t) in tasks.iter().enumerate() {
        let kind = ObjectKind::parse(&t.goal.object);
        let place = if i == 0 {
            Some((goal.x, goal.y))
        } else {
            layout
                .objects
                .iter()
                .find(|o| Some(o.kind()) == kind)
                .map(|o| (o.x, o.y))
        };
        let (x, y) = place.ok_or_else(|| {
            SimError::Options(format!(
                "step {}: no {} in the layout",
                i + 1,
                t.goal.object
            ))
        })?;
        task_goals.push((
            x,
            y,
            if i == 0 {
                layout.within_m
            } else {
                t.goal.within_m
            },
        ));
    }
    if multi && (brain.instructions().is_none() || opts.instruction.is_some()) {
        return Err(SimError::Options(
            "a scenario with [[steps]] needs the integrator's brain and its own instructions"
                .into(),
        ));
    }
    let mut step_i = 0usize;
    let mut step_start_s = 0.0f64;
    let mut step_path0 = 0.0f64;
    let mut waking: Option<(f64, bool)> = None;
    let mut step_results: Vec<StepResult> = Vec::new();
    let mut ticks: Vec<TickSample> =
        Vec::with_capacity((total_steps / steps_per_tick) as usize + 2);
    let mut track: Vec<(f64, f64)> = vec![(layout.start.0, layout.start.1)];
    let mut frames_saved: Vec<RgbFrame> = Vec::new();
    let mut camera_frames = 0u64;
    let mut path_length = 0.0;
    let mut min_clear = f64::INFINITY;
    let mut next_tick = 0u64;
    let mut pending_missed = 0u64;
    let mut missed_total = 0u64;
    let mut success_at: Option<f64> = None;
    let mut last_progress = u64::MAX;
    let wall0 = Instant::now();
    let mut step = 0u64;
    let mut last_pose = layout.start;
    let mut drowsy_sum = 0.0;
    let mut drowsy_max: f64 = 0.0;
    let mut sleeps = 0u32;
    let mut was_sleeping = false;

    let mut interrupted = false;
    while step <= total_steps {
        if opts
            .stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
        {
            interrupted = true;
            // Stop the robot before scoring and writing the report.
            let _ = body
                .as_body_mut()
                .command(crate::msg::WheelSpeeds::default());
            tracing::warn!("interrupted: stopping the episode and writing the report");
            break;
        }
        let now_ns = step * (TIMESTEP * 1e9).round() as u64;
        if let (Some(cam), Some(m)) = (camera.as_mut(), body.mujoco_mut()) {
            if step % steps_per_frame == 0 {
                let frame = cam.render_rgb(m)?;
                camera_frames += 1;
                brain.see(&frame);
                if let Some(r) = recorder.as_mut() {
                    if step % (steps_per_frame * 10) == 0 {
                        r.record_image(now_ns, frame.width, frame.height, &frame.data)?;
                    }
                }
                if step % snapshot_every == 0 && frames_saved.len() < 5 {
                    frames_saved.push(frame);
                }
            }
        }
        brain.sense(now_ns, body.as_body());
        let due = match brain.next_due() {
            Some(t) => now_ns >= t,
            None => step >= next_tick,
        };
        if due {
            if opts.realtime {
                let due = std::time::Duration::from_nanos(now_ns);
                if let Some(wait) = due.checked_sub(wall0.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            let wall_late_ns = opts
                .realtime
                .then(|| (wall0.elapsed().as_nanos() as u64).saturating_sub(now_ns));
            let late_cycles = wall_late_ns.unwrap_or(0) / period_ns;
            let t0 = Instant::now();
            let mut sample = brain.tick(now_ns, body.as_body_mut());
            if let (Some(b), Some(r)) = (&on_bus, brain.record()) {
                b.ring.push(&r);
                b.state.store(Some(body.as_body().state()));
            }
            sample.wall_ns = t0.elapsed().as_nanos() as u64;
            sample.wall_lateness_ns = wall_late_ns;
            if sample.compute_ns == 0 {
                sample.compute_ns = sample.wall_ns;
            }
            // Overload: cycles skipped because the previous tick ran long (simulated stress)
            // or because the wall clock is behind (real time).
            sample.missed = sample.missed.max((pending_missed + late_cycles) as u32);
            missed_total += sample.missed as u64;
            drowsy_sum += sample.drowsiness;
            drowsy_max = drowsy_max.max(sample.drowsiness);
            if sample.sleeping && !was_sleeping {
                sleeps += 1;
            }
            was_sleeping = sample.sleeping;
            let (x, y, yaw) = body.ground_truth_pose();
            path_length += (x - last_pose.0).hypot(y - last_pose.1);
            last_pose = (x, y, yaw);
            track.push((x, y));
            min_clear = min_clear.min((layout.clearance(x, y) - ROBOT_RADIUS).max(0.0));
            if let Some(r) = recorder.as_mut() {
                r.record("/body/state", now_ns, &body.state())?;
                r.record("/brain/tick", now_ns, &sample)?;
                r.record("/ground_truth/pose", now_ns, &Pose { x, y, yaw })?;
            }
            ticks.push(sample);
            let dist = (x - goal.x).hypot(y - goal.y);
            if !multi && dist <= layout.within_m && success_at.is_none() {
                success_at = Some(now_ns as f64 * 1e-9);
            }
            if multi && step_i < tasks.len() {
                let now_s = now_ns as f64 * 1e-9;
                let mut start_next = false;
                if let Some((asked_at, saw)) = waking {
                    // A sleep between steps: the next instruction once it is over.
                    let saw = saw || sample.sleeping;
                    waking = Some((asked_at, saw));
                    if (saw && !sample.sleeping) || now_s - asked_at > STEP_SLEEP_LIMIT_S {
                        waking = None;
                        start_next = true;
                    }
                } else {
                    let (gx, gy, within) = task_goals[step_i];
                    let reached = (x - gx).hypot(y - gy) <= within;
                    let elapsed = now_s - step_start_s;
                    if reached || elapsed >= tasks[step_i].time_limit_s {
                        let t = &tasks[step_i];
                        step_results.push(StepResult {
                            instruction: t.instruction.clone(),
                            object: t.goal.object.clone(),
                            success: reached,
                            time_s: reached.then(|| r6(elapsed)),
                            path_length_m: r6(path_length - step_path0),
                            slept_before: t.sleep_before,
                        });
                        step_i += 1;
                        if step_i < tasks.len() {
                            if tasks[step_i].sleep_before {
                                if let Some(i) = brain.integrator() {
                                    i.operator_controls().request_sleep();
                                }
                                waking = Some((now_s, false));
                            } else {
                                start_next = true;
                            }
                        } else if step_results.iter().all(|r| r.success) {
                            success_at = Some(now_s);
                        }
                    }
                }
                if start_next {
                    let text = tasks[step_i].instruction.clone();
                    if let Some((inbox, _)) = brain.instructions() {
                        inbox.set(Instruction {
                            stamp_ns: now_ns,
                            text: text.clone(),
                        });
                    }
                    if let Some(r) = recorder.as_mut() {
                        r.record(
                            "/instruction",
                            now_ns,
                            &Instruction {
                                stamp_ns: now_ns,
                                text,
                            },
                        )?;
                    }
                    step_start_s = now_s;
                    step_path0 = path_length;
                }
            }
            let hundred_ms = now_ns / 100_000_000;
            if hundred_ms != last_progress {
                last_progress = hundred_ms;
                progress(&Progress {
                    sim_s: now_ns as f64 * 1e-9,
                    limit_s,
                    distance_to_goal: dist,
                    ticks: ticks.len() as u64,
                    missed: missed_total,
                    drowsiness: sample.drowsiness,
                    mode: sample.mode,
                });
            }
            if (success_at.is_some() || (multi && step_i >= tasks.len())) && opts.stop_on_success {
                break;
            }
            // The next tick starts when this one's (simulated) compute is done, on the period grid.
            let intended = step + steps_per_tick;
            next_tick =
                (step + steps_per_tick.max(stress_steps)).div_ceil(steps_per_tick) * steps_per_tick;
            pending_missed = (next_tick - intended) / steps_per_tick;
        }
        body.advance(TIMESTEP);
        if let Some(message) = body.failure() {
            return Err(SimError::BodyFailed {
                at_s: now_ns as f64 * 1e-9,
                message,
            });
        }
        step += 1;
    }
    let wall = wall0.elapsed().as_secs_f64();
    let sim_time = (step.min(total_steps)) as f64 * TIMESTEP;
    let (x, y, _) = body.ground_truth_pose();
    let final_dist = (x - goal.x).hypot(y - goal.y);
    let success = success_at.is_some();
    let spl = if success {
        layout.shortest_path_m / path_length.max(layout.shortest_path_m).max(1e-9)
    } else {
        0.0
    };
    let (sent, received) = body.frames();
    let link_errors = body.link_errors();
    let summary = Summary {
        scenario: scenario.name.clone(),
        instruction,
        seed,
        brain: brain.name(),
        body: body.name(),
        clock: if opts.realtime {
            "realtime"
        } else {
            "lockstep"
        }
        .into(),
        success,
        outcome: if success {
            "reached"
        } else if interrupted {
            "interrupted"
        } else {
            "timeout"
        }
        .into(),
        // With steps: the time spent on the tasks (sleeps between them not counted).
        time_to_goal_s: if multi {
            success.then(|| r6(step_results.iter().filter_map(|r| r.time_s).sum::<f64>()))
        } else {
            success_at.map(r6)
        },
        sim_time_s: r6(sim_time),
        path_length_m: r6(path_length),
        shortest_path_m: r6(layout.shortest_path_m),
        spl: r6(spl),
        collisions: body.collisions(),
        min_obstacle_distance_m: r6(if min_clear.is_finite() {
            min_clear
        } else {
            0.0
        }),
        final_distance_to_goal_m: r6(final_dist),
        ticks: ticks.len() as u64,
        missed_ticks: missed_total,
        drowsiness_max: r6(drowsy_max),
        drowsiness_mean: r6(drowsy_sum / ticks.len().max(1) as f64),
        sleeps,
        camera_frames,
        link_frames_sent: sent,
        link_frames_received: received,
        // The board counts every rejected command frame as one rx error (CRC or not).
        link_crc_errors: link_errors.host_crc_errors + link_errors.board_rx_errors,
        link_decode_errors: link_errors.host_decode_errors,
        link_implausible_telemetry: link_errors.host_implausible,
        wall_time_s: r6(wall),
        realtime_factor: r6(sim_time / wall.max(1e-9)),
        steps: step_results,
    };
    if let Some(dir) = &opts.report_dir {
        if let (Some(cam), Some(m)) = (camera.as_mut(), body.mujoco_mut()) {
            frames_saved.push(cam.render_rgb(m)?);
        }
        if let Some(r) = recorder.take() {
            r.finish()?;
        }
        write_report(
            dir,
            &summary,
            &layout,
            &track,
            &ticks,
            period_ns,
            &frames_saved,
        )?;
    }
    Ok(summary)
}

fn write_report(
    dir: &Path,
    summary: &Summary,
    layout: &Layout,
    track: &[(f64, f64)],
    ticks: &[TickSample],
    period_ns: u64,
    frames: &[RgbFrame],
) -> Result<(), SimError> {
    let err = |path: &Path, e: &dyn std::fmt::Display| SimError::Report {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let p = dir.join("summary.json");
    let text = serde_json::to_string_pretty(summary).map_err(|e| err(&p, &e))?;
    std::fs::write(&p, text + "\n").map_err(|e| err(&p, &e))?;
    let p = dir.join("trajectory.png");
    let title = format!(
        "{} seed {}: {} ({})",
        summary.scenario, summary.seed, summary.outcome, summary.instruction
    );
    report::trajectory_png(&p, layout, track, &title).map_err(|e| err(&p, &e))?;
    let p = dir.join("loop.png");
    report::loop_png(&p, ticks, period_ns).map_err(|e| err(&p, &e))?;
    for (i, f) in frames.iter().enumerate() {
        let p = dir.join(format!(
            "camera_{i:02}_t{:.1}s.png",
            f.stamp_ns as f64 * 1e-9
        ));
        report::save_rgb_png(&p, f.width, f.height, &f.data).map_err(|e| err(&p, &e))?;
    }
    let mut lat: Vec<u64> = ticks.iter().map(|t| t.wall_ns).collect();
    lat.sort_unstable();
    let pct = |q: f64| {
        lat.get(((lat.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0) as f64
            * 1e-3
    };
    let timing = serde_json::json!({
        "wall_time_s": summary.wall_time_s,
        "realtime_factor": summary.realtime_factor,
        "tick_wall_us": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
    });
    let p = dir.join("timing.json");
    std::fs::write(&p, format!("{timing:#}\n")).map_err(|e| err(&p, &e))?;
    Ok(())
}

/// Aggregate results of one scenario (or all) in `eval`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalStats {
    /// Episodes run.
    pub episodes: usize,
    /// Fraction that reached the goal.
    pub success_rate: f64,
    /// Mean contact onsets per episode.
    pub collisions: f64,
    /// Mean time to goal over successful episodes, s (None when none succeeded).
    pub mean_time_s: Option<f64>,
    /// Mean success weighted by path length.
    pub spl: f64,
    /// Tasks scored: one per episode, or one per step of a scenario with `[[steps]]` (success
    /// rate and mean time are over tasks).
    pub tasks: usize,
    /// Mean smallest distance between the robot's footprint and an obstacle, m.
    pub min_obstacle_distance_m: f64,
    /// Per step of a scenario with `[[steps]]`: success rate and mean time of step k.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepStats>,
}

/// Aggregate of one step over episodes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepStats {
    /// The step's object.
    pub object: String,
    /// Fraction of episodes that reached it.
    pub success_rate: f64,
    /// Mean time to reach it over those that did, s.
    pub mean_time_s: Option<f64>,
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| r6(v.iter().sum::<f64>() / v.len() as f64))
}

impl EvalStats {
    /// Aggregate summaries: each step of an episode with steps is one task, scored on its own.
    pub fn of(runs: &[&Summary]) -> Self {
        let n = runs.len().max(1) as f64;
        let mut tasks: Vec<(bool, Option<f64>)> = Vec::new();
        for s in runs {
            if s.steps.is_empty() {
                tasks.push((s.success, s.time_to_goal_s));
            } else {
                tasks.extend(s.steps.iter().map(|t| (t.success, t.time_s)));
            }
        }
        let ok: Vec<f64> = tasks.iter().filter_map(|t| t.1).collect();
        let depth = runs.iter().map(|s| s.steps.len()).max().unwrap_or(0);
        let steps = (0..depth)
            .map(|k| {
                let at: Vec<&StepResult> = runs.iter().filter_map(|s| s.steps.get(k)).collect();
                let times: Vec<f64> = at.iter().filter_map(|t| t.time_s).collect();
                StepStats {
                    object: at.first().map(|t| t.object.clone()).unwrap_or_default(),
                    success_rate: r6(at.iter().filter(|t| t.success).count() as f64 / n),
                    mean_time_s: mean(&times),
                }
            })
            .collect();
        Self {
            episodes: runs.len(),
            success_rate: r6(
                tasks.iter().filter(|t| t.0).count() as f64 / tasks.len().max(1) as f64
            ),
            collisions: r6(runs.iter().map(|s| s.collisions as f64).sum::<f64>() / n),
            mean_time_s: mean(&ok),
            spl: r6(runs.iter().map(|s| s.spl).sum::<f64>() / n),
            tasks: tasks.len(),
            min_obstacle_distance_m: r6(runs
                .iter()
                .map(|s| s.min_obstacle_distance_m)
                .sum::<f64>()
                / n),
            steps,
        }
    }
}

/// Results of `eval`: per scenario and overall.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Per scenario name.
    pub scenarios: std::collections::BTreeMap<String, EvalStats>,
    /// Over all episodes.
    pub overall: EvalStats,
    /// Seeds used per scenario: the scenario's seed + 0..episodes.
    pub episodes_per_scenario: usize,
    /// Which brain drove.
    pub brain: String,
    /// Whether drowsiness was fed back.
    pub drowsiness_feedback: bool,
    /// Simulated compute overload per tick, ms.
    pub stress_ms: f64,
    /// Modelled CPU contention (burner threads).
    pub stress_level: u32,
    /// Set when SIGINT / SIGTERM ended the evaluation early: the figures cover only the
    /// episodes that finished (the one cut short is left out).
    pub interrupted: bool,
    /// Every episode, in the order run.
    pub episodes: Vec<EpisodeRow>,
}

fn stopped(opts: &EpisodeOptions) -> bool {
    opts.stop
        .as_ref()
        .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
}

/// One episode of `eval`, for finding the failures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpisodeRow {
    /// Scenario name.
    pub scenario: String,
    /// Layout seed.
    pub seed: u64,
    /// "reached", "timeout" or "stopped".
    pub outcome: String,
    /// Simulated time run, s.
    pub sim_time_s: f64,
    /// Distance from the robot to the goal object at the end, m.
    pub final_distance_to_goal_m: f64,
    /// Contact onsets.
    pub collisions: u32,
}

/// Run every scenario over `episodes` seeds (scenario seed + k).
pub fn run_eval(
    config: &Config,
    params: &RobotParams,
    scenarios: &[Scenario],
    episodes: usize,
    opts: &EpisodeOptions,
    progress: &mut dyn FnMut(&str, usize, &Summary),
) -> Result<EvalReport, SimError> {
    if episodes == 0 {
        return Err(SimError::Options("--episodes must be at least 1".into()));
    }
    let mut all: Vec<(String, Summary)> = Vec::new();
    let mut brain = String::new();
    let mut interrupted = false;
    'scenarios: for s in scenarios {
        for k in 0..episodes {
            let o = EpisodeOptions {
                seed: Some(s.seed.wrapping_add(k as u64)),
                report_dir: None,
                ..opts.clone()
            };
            let summary = run_episode(config, params, s, &o, &mut |_| {})?;
            if stopped(opts) {
                // Cut short by SIGINT / SIGTERM: it is not a measurement, so it is left out.
                interrupted = true;
                break 'scenarios;
            }
            progress(&s.name, k, &summary);
            brain = summary.brain.clone();
            all.push((s.name.clone(), summary));
        }
    }
    let mut per = std::collections::BTreeMap::new();
    for s in scenarios {
        if interrupted && !all.iter().any(|(n, _)| *n == s.name) {
            continue;
        }
        let runs: Vec<&Summary> = all
            .iter()
            .filter(|(n, _)| *n == s.name)
            .map(|(_, r)| r)
            .collect();
        per.insert(s.name.clone(), EvalStats::of(&runs));
    }
    let every: Vec<&Summary> = all.iter().map(|(_, r)| r).collect();
    Ok(EvalReport {
        scenarios: per,
        overall: EvalStats::of(&every),
        episodes_per_scenario: episodes,
        brain,
        drowsiness_feedback: config.drowsiness.feedback,
        stress_ms: opts.stress_ms,
        stress_level: opts.stress_level,
        interrupted,
        episodes: all
            .iter()
            .map(|(name, r)| EpisodeRow {
                scenario: name.clone(),
                seed: r.seed,
                outcome: r.outcome.clone(),
                sim_time_s: r.sim_time_s,
                final_distance_to_goal_m: r.final_distance_to_goal_m,
                collisions: r.collisions,
            })
            .collect(),
    })
}
