//! The simulator's command-line entry points (`brainloop sim`, `eval`, `replay`) as plain library
//! functions over plain argument structs, so `main.rs` only parses and wires, and whole runs can
//! be tested without a process.

use crate::body::RobotParams;
use crate::config::Config;
use crate::experiment::episode::{
    run_episode, run_eval, BrainKind, EpisodeOptions, EvalReport, Progress,
};
use crate::report::mcap::{replay, ReplayOptions};
use crate::report::Summary;
use crate::sim::scenario::{self, Scenario};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The scenario `brainloop sim` runs when none is named (what `make run` shows).
pub const DEFAULT_SCENARIO: &str = "01-red-ball";
/// Where scenarios live.
pub const SCENARIO_DIR: &str = "scenarios";

/// Errors of the simulator commands (each one line).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Configuration file problem.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigErrors),
    /// Simulation problem.
    #[error(transparent)]
    Sim(#[from] crate::experiment::episode::SimError),
    /// Scenario problem.
    #[error(transparent)]
    Scenario(#[from] crate::sim::scenario::ScenarioError),
    /// Replay problem.
    #[error(transparent)]
    Record(#[from] crate::report::mcap::RecordError),
    /// Options that do not go together.
    #[error("{0}")]
    Options(String),
}

/// Arguments shared by `sim` and `eval`.
#[derive(Debug, Clone, Default)]
pub struct CommonArgs {
    /// Configuration file (None: `config/default.toml` when present, else built-in defaults).
    pub config: Option<PathBuf>,
    /// Run without the camera (faster; a camera-less brain is blind).
    pub no_camera: bool,
    /// Pace by the wall clock.
    pub realtime: bool,
    /// Simulated extra compute per tick, ms.
    pub stress_ms: f64,
    /// Modelled CPU contention (burner threads).
    pub stress_level: u32,
    /// Turn drowsiness feedback off (ablation).
    pub no_drowsiness_feedback: bool,
    /// Edges to cut (ablation): a node name cuts every edge out of it (`memory`: recall no
    /// longer reaches the decision; `emotion`: arousal no longer makes it careful), `a->b` one.
    pub cut: Vec<String>,
    /// Which brain drives.
    pub brain: BrainKind,
    /// The integrator's decision policy.
    pub policy: crate::experiment::brain::PolicyKind,
    /// The robot model: MuJoCo, or kinematic (no MuJoCo, no camera: vision is blind).
    pub physics: crate::sim::bodies::Physics,
    /// Hardware in the loop: the real firmware on the emulated board instead of the simulated
    /// board (needs `make -C firmware all sim`).
    pub hil: bool,
    /// A learned state (`brainloop day --state FILE`) to run with instead of the shipped
    /// connector.
    pub state: Option<PathBuf>,
}

/// `brainloop sim` arguments.
#[derive(Debug, Clone, Default)]
pub struct SimArgs {
    /// Shared options.
    pub common: CommonArgs,
    /// Scenario name (in `scenarios/`) or path to a `.toml`.
    pub scenario: Option<String>,
    /// Override the instruction.
    pub instruction: Option<String>,
    /// Layout seed.
    pub seed: Option<u64>,
    /// Simulated seconds.
    pub seconds: Option<f64>,
    /// Report directory (None: `reports/<scenario>-seed<seed>`).
    pub report: Option<PathBuf>,
    /// Replace a report already in `report` (otherwise that is refused).
    pub overwrite: bool,
    /// Join the zenoh bus (`--listen` / `--connect`; needs `--realtime`) so that the teleop
    /// console can attach.
    pub bus: Option<crate::nodes::NetArgs>,
    /// Set by SIGINT / SIGTERM: the episode ends early and writes its report.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// `brainloop eval` arguments.
#[derive(Debug, Clone, Default)]
pub struct EvalArgs {
    /// Shared options.
    pub common: CommonArgs,
    /// Scenario directory.
    pub scenarios: PathBuf,
    /// Seeds per scenario.
    pub episodes: usize,
    /// Set by SIGINT / SIGTERM: the episode under way stops the robot and is left out, and the
    /// report covers the episodes that finished (`interrupted: true`).
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// The configuration `sim` and `eval` would use for `common` (for other commands that run
/// episodes, e.g. `brainloop day`).
pub fn load_config_for(common: &CommonArgs) -> Result<Config, CommandError> {
    load_config(common)
}

fn load_config(common: &CommonArgs) -> Result<Config, CommandError> {
    let mut config = match &common.config {
        Some(p) => Config::load(p)?,
        None => {
            let p = Path::new("config/default.toml");
            if p.is_file() {
                Config::load(p)?
            } else {
                Config::default()
            }
        }
    };
    if common.no_drowsiness_feedback {
        config.drowsiness.feedback = false;
    }
    for c in &common.cut {
        cut_edges(&mut config, c)?;
    }
    Ok(config)
}

/// Remove the edges `cut` names from `config`: `NODE` (every edge out of it) or `FROM->TO`.
pub fn cut_edges(config: &mut Config, cut: &str) -> Result<usize, CommandError> {
    let (from, to) = match cut.split_once("->") {
        Some((a, b)) => (a.trim(), Some(b.trim())),
        None => (cut.trim(), None),
    };
    let before = config.edges.len();
    config
        .edges
        .retain(|e| !(e.from == from && to.is_none_or(|t| e.to == t)));
    let n = before - config.edges.len();
    if n == 0 {
        let known: Vec<String> = config
            .edges
            .iter()
            .map(|e| format!("{}->{}", e.from, e.to))
            .collect();
        return Err(CommandError::Options(format!(
            "--cut {cut}: no such edge in the configuration (edges: {})",
            known.join(", ")
        )));
    }
    Ok(n)
}

/// The connector of `--state FILE`, checked (None without the option).
pub fn load_state(
    common: &CommonArgs,
) -> Result<Option<std::sync::Arc<crate::grounding::AlignConnector>>, CommandError> {
    match &common.state {
        None => Ok(None),
        Some(p) => {
            let s = crate::sleep::BrainState::load(p)
                .map_err(|e| CommandError::Options(e.to_string()))?;
            tracing::info!(
                "state {}: {} learned concept(s) ({}), {} night(s)",
                p.display(),
                s.header.concepts.len(),
                s.header.concepts.join(", "),
                s.header.nights.len()
            );
            Ok(Some(std::sync::Arc::new(s.connector)))
        }
    }
}

fn episode_options(common: &CommonArgs) -> EpisodeOptions {
    EpisodeOptions {
        camera: !common.no_camera,
        realtime: common.realtime,
        stress_ms: common.stress_ms,
        stress_level: common.stress_level,
        brain: common.brain,
        policy: common.policy,
        physics: common.physics,
        board: if common.hil {
            crate::sim::bodies::Board::Firmware(None)
        } else {
            crate::sim::bodies::Board::Simulated
        },
        ..Default::default()
    }
}

/// Run `brainloop sim`: one episode with a progress bar on a terminal, a report directory, and
/// a short summary on stdout. A failed task is a result (Ok), not an error.
pub fn sim(args: &SimArgs) -> Result<(Summary, PathBuf), CommandError> {
    let config = load_config(&args.common)?;
    let params = RobotParams::load_default();
    let name = args.scenario.as_deref().unwrap_or(DEFAULT_SCENARIO);
    let scenario = Scenario::find(Path::new(SCENARIO_DIR), name)?;
    let seed = args.seed.unwrap_or(scenario.seed);
    let report = args
        .report
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(format!("{}-seed{seed}", scenario.name)));
    let bus = match &args.bus {
        Some(net) => {
            if !args.common.realtime {
                return Err(CommandError::Options(
                    "--listen / --connect put the brain on the bus for the teleop console: add --realtime (a lockstep run is not on the wall clock)".into(),
                ));
            }
            Some(
                crate::nodes::bus_options(&config, net)
                    .map_err(|e| CommandError::Options(format!("{e:#}")))?,
            )
        }
        None => None,
    };
    let opts = EpisodeOptions {
        seed: Some(seed),
        seconds: args.seconds,
        instruction: args.instruction.clone(),
        report_dir: Some(report.clone()),
        bus,
        stop: args.stop.clone(),
        connector: load_state(&args.common)?,
        ..episode_options(&args.common)
    };
    claim_report_dir(&report, args.report.is_some(), args.overwrite)
        .map_err(CommandError::Options)?;
    let bar = progress_bar(opts.seconds.unwrap_or(scenario.time_limit_s));
    let summary = run_episode(&config, &params, &scenario, &opts, &mut |p: &Progress| {
        if let Some(b) = &bar {
            b.set_position((p.sim_s * 10.0) as u64);
            b.set_message(format!(
                "goal {:5.2} m | ticks {} missed {} | drowsiness {:.2} | {:?}",
                p.distance_to_goal, p.ticks, p.missed, p.drowsiness, p.mode
            ));
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok((summary, report))
}

/// Whether a run may write its report into `dir`. A directory that already holds a report
/// (a `summary.json` or an `.mcap` recording) is refused when it was named explicitly, unless
/// `overwrite`: two runs given the same `--report` must not silently destroy the first one's
/// recording. The default directory (`reports/<name>-seed<seed>`) is the latest run's, and is
/// replaced with a warning.
pub fn claim_report_dir(dir: &Path, explicit: bool, overwrite: bool) -> Result<(), String> {
    let holds_report = dir.join("summary.json").is_file()
        || std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.path().extension().is_some_and(|x| x == "mcap"))
            })
            .unwrap_or(false);
    if !holds_report {
        return Ok(());
    }
    if explicit && !overwrite {
        return Err(format!(
            "{}: a report is already there (summary.json or a recording); give another --report DIR, or add --overwrite to replace it",
            dir.display()
        ));
    }
    tracing::warn!(
        "{}: a report is already there; this run replaces it{}",
        dir.display(),
        if explicit {
            " (--overwrite)"
        } else {
            " (give --report DIR to keep both)"
        }
    );
    Ok(())
}

fn progress_bar(limit_s: f64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new((limit_s * 10.0).ceil() as u64);
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} sim {prefix} [{bar:30}] {pos:>5}/{len} ds  {msg}",
    )
    .map(|s| s.progress_chars("=> "));
    if let Ok(s) = style {
        bar.set_style(s);
    }
    Some(bar)
}

/// The human summary `brainloop sim` prints at the end.
pub fn summary_text(s: &Summary, report: &Path) -> String {
    let outcome = match s.time_to_goal_s {
        Some(t) => format!("SUCCESS: reached the goal in {t:.1} s"),
        None => format!(
            "FAILED: goal not reached in {:.1} s (ended {:.2} m away)",
            s.sim_time_s, s.final_distance_to_goal_m
        ),
    };
    let blind = if s.camera_frames == 0 {
        "\n  vision: BLIND, no camera frames (--no-camera or --body kinematic): the brain steers by range rays and odometry only"
    } else {
        ""
    };
    format!(
        "scenario {} (seed {}): \"{}\"\n  {outcome}\n  path {:.2} m (shortest {:.2} m, SPL {:.2}), collisions {}, min obstacle distance {:.2} m\n  ticks {} (missed {}), drowsiness max {:.2} mean {:.2}, sleeps {}, camera frames {}, link frames {}/{}\n  brain {} on {} ({}), {:.1}x real time ({:.1} s wall)\n  report: {}{blind}",
        s.scenario,
        s.seed,
        s.instruction,
        s.path_length_m,
        s.shortest_path_m,
        s.spl,
        s.collisions,
        s.min_obstacle_distance_m,
        s.ticks,
        s.missed_ticks,
        s.drowsiness_max,
        s.drowsiness_mean,
        s.sleeps,
        s.camera_frames,
        s.link_frames_sent,
        s.link_frames_received,
        s.brain,
        s.body,
        s.clock,
        s.realtime_factor,
        s.wall_time_s,
        report.display()
    )
}

/// Run `brainloop eval`; progress lines go to stderr when it is a terminal.
pub fn eval(args: &EvalArgs) -> Result<EvalReport, CommandError> {
    let config = load_config(&args.common)?;
    let params = RobotParams::load_default();
    let scenarios = scenario::load_dir(&args.scenarios)?;
    let tty = std::io::stderr().is_terminal();
    let opts = EpisodeOptions {
        connector: load_state(&args.common)?,
        stop: args.stop.clone(),
        ..episode_options(&args.common)
    };
    let report = run_eval(
        &config,
        &params,
        &scenarios,
        args.episodes,
        &opts,
        &mut |name, k, s| {
            if tty {
                eprintln!(
                    "{name} #{k}: {} in {:.1} s, collisions {}",
                    s.outcome, s.sim_time_s, s.collisions
                );
            }
        },
    )?;
    Ok(report)
}

/// Run `brainloop replay`: print the recording's messages (or counts) to `out`.
pub fn replay_file(
    file: &Path,
    opts: &ReplayOptions,
    out: &mut dyn std::io::Write,
) -> Result<std::collections::BTreeMap<String, u64>, CommandError> {
    Ok(replay(file, opts, out)?)
}

/// `eval` results as a small table for people.
pub fn eval_table(r: &EvalReport) -> String {
    let mut out = format!(
        "{:<34} {:>8} {:>8} {:>10} {:>11} {:>6}\n",
        "scenario", "episodes", "success", "collisions", "mean_time_s", "spl"
    );
    let row = |name: &str, s: &crate::experiment::episode::EvalStats| {
        format!(
            "{:<34} {:>8} {:>8.2} {:>10.2} {:>11} {:>6.2}\n",
            name,
            s.episodes,
            s.success_rate,
            s.collisions,
            s.mean_time_s
                .map(|t| format!("{t:.1}"))
                .unwrap_or_else(|| "-".into()),
            s.spl
        )
    };
    for (name, s) in &r.scenarios {
        out.push_str(&row(name, s));
    }
    out.push_str(&row("overall", &r.overall));
    out.push_str(&format!("brain: {}", r.brain));
    if r.interrupted {
        out.push_str("\ninterrupted: the figures cover only the episodes that finished");
    }
    out
}

/// One configuration measured by `brainloop bench sim`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimBenchRow {
    /// What ran.
    pub config: String,
    /// Simulated seconds.
    pub sim_s: f64,
    /// Wall-clock seconds (including model loading and set-up).
    pub wall_s: f64,
    /// Simulated seconds per wall-clock second.
    pub realtime_factor: f64,
    /// Camera frames rendered.
    pub camera_frames: u64,
}

/// `brainloop bench sim`: lockstep real-time factors of the simulator, measured side by side in
/// one run on the same scenario and seed: physics and link only, the regions without vision,
/// camera with the pilot, and the whole brain with the camera.
pub fn bench_sim(scenario_name: &str, seconds: f64) -> Result<Vec<SimBenchRow>, CommandError> {
    let config = load_config(&CommonArgs::default())?;
    let params = RobotParams::load_default();
    let scenario = Scenario::find(Path::new(SCENARIO_DIR), scenario_name)?;
    let runs = [
        ("physics+board, pilot, no camera", BrainKind::Pilot, false),
        (
            "integrator+language/audition/proprioception, no camera",
            BrainKind::Integrator,
            false,
        ),
        ("camera 10 Hz + pilot", BrainKind::Pilot, true),
        (
            "camera + all four regions + integrator (whole brain)",
            BrainKind::Integrator,
            true,
        ),
    ];
    let mut rows = Vec::new();
    for (name, brain, camera) in runs {
        let opts = EpisodeOptions {
            seconds: Some(seconds),
            camera,
            brain,
            stop_on_success: false,
            ..Default::default()
        };
        let s = run_episode(&config, &params, &scenario, &opts, &mut |_| {})?;
        rows.push(SimBenchRow {
            config: name.into(),
            sim_s: s.sim_time_s,
            wall_s: s.wall_time_s,
            realtime_factor: s.realtime_factor,
            camera_frames: s.camera_frames,
        });
    }
    Ok(rows)
}
