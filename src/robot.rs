//! Running the brain on a robot in real time (`brainloop run`): the same regions, integrator,
//! motor stage and policy as in the simulator, on the wall clock, with each region on its own
//! thread at its own rate, the integrator on a dedicated real-time thread, and the body behind
//! the [`Body`] seam (the serial link to the motor-controller firmware, or the kinematic model).
//!
//! A console on standard input can take over at any time: a plain line is a new instruction;
//! `/stop` latches the e-stop, `/clear` clears it, `/drive V W` drives by hand (teleop, fresh for
//! `[teleop].timeout_ms`), `/release` hands control back, `/quit` stops the run.
//!
//! Commands travel over the in-process bus ([`LocalBus`], [`RunInputs::bus`]): the console
//! publishes instructions on `topics::INSTRUCTION` and teleop on `topics::TELEOP_CONSOLE`, the
//! ROS 2 bridges (DDS with `--dds`, or the r2r node) on `topics::INSTRUCTION` and
//! `topics::TELEOP_REMOTE`. Forwarder threads hand them to the language region's inbox and to
//! the override mux's `console` and `remote` inputs, which the integrator reads lock-free each
//! tick; the bus itself is never touched on the integrator thread. The supervisor publishes the
//! integrator's `topics::CMD_VEL` and `topics::DROWSINESS` on the bus for the bridges.

use crate::body::{Body, BodyError, RobotParams, SimulatedBody};
use crate::brain::Sources;
use crate::bus::{publish_teleop, topics, Bus, LocalBus};
use crate::config::{BodyKind, Config};
use crate::integrator::rt::{monotonic_ns, run_realtime, RecordRing, RtOptions};
use crate::integrator::IntegratorOptions;
use crate::integrator::{Integrator, TickRecord};
use crate::link::serial::{SerialConfig, SerialLink};
use crate::msg::{BodyState, Instruction, Mode, TeleopCommand, Twist, WheelSpeeds};
use crate::regions::language::InstructionInbox;
use crate::regions::sources::{BodyStateSource, ImageFiles, WavFile};
use crate::sim::kinematic::KinematicBody;
use crate::teleop::TeleopInput;
use anyhow::{bail, Context, Result};
use crossbeam_utils::atomic::AtomicCell;
use serde::Serialize;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What `brainloop run` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Configuration file.
    pub config: PathBuf,
    /// Override of `[body].kind`.
    pub body: Option<BodyKind>,
    /// Override of `[body].port`.
    pub port: Option<String>,
    /// First instruction (more can be typed on standard input).
    pub instruction: Option<String>,
    /// Camera input for the vision region: image files played in a loop at the region's rate.
    pub images: Vec<PathBuf>,
    /// A live camera (device index or path) or a video file through OpenCV (feature `camera`).
    #[cfg(feature = "camera")]
    pub camera: Option<String>,
    /// Microphone input for the audition region: a 16 kHz mono WAV file, looped.
    pub wav: Option<PathBuf>,
    /// Stop after this many seconds (default: until `/quit` or Ctrl-C).
    pub seconds: Option<f64>,
    /// Read console commands from standard input.
    pub console: bool,
    /// Join the ROS 2 graph over DDS (feature `dds`): instructions, teleop and e-stop from
    /// `/brainloop/*` topics; `/cmd_vel` and `/brainloop/drowsiness` published.
    #[cfg(feature = "dds")]
    pub dds: bool,
    /// Join the zenoh bus (`--listen` / `--connect`, or `[bus]` endpoints, or a region that
    /// runs in its own process): instructions and teleop in, `/cmd_vel`, drowsiness, body
    /// state and health out, remote regions' embeddings into their slots.
    pub bus: Option<crate::bus::zenoh::ZenohOptions>,
    /// Regions that run in their own processes (`brainloop node NAME`, started by `up`).
    pub remote: Vec<crate::msg::RegionId>,
    /// The ROS 2 node's `--ros-args` (name, namespace, remaps, parameters) for `--dds`.
    pub ros: crate::bus::ros_args::RosArgs,
    /// `--body ros2` with `--dds`: the base is a ROS 2 driver (Gazebo's diff drive, a vendor
    /// base): commands go out on `cmd_vel`, the state comes from its `joint_states`, `imu`
    /// and `scan`.
    pub ros_base: bool,
}

/// What a run did, printed at the end.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Body driven.
    pub body: String,
    /// Regions that ran.
    pub regions: Vec<&'static str>,
    /// Wall time, s.
    pub wall_s: f64,
    /// Integrator ticks.
    pub ticks: u64,
    /// Missed deadlines.
    pub missed: u64,
    /// Start lateness p99, us.
    pub lateness_p99_us: f64,
    /// Compute p99, us.
    pub compute_p99_us: f64,
    /// Maximum drowsiness.
    pub drowsiness_max: f64,
    /// Completed sleeps.
    pub sleeps: u64,
    /// Last mode.
    pub final_mode: Mode,
    /// Whether SCHED_FIFO was granted.
    pub realtime: bool,
    /// What arrived over the zenoh bus, per key (accepted, rejected, gaps, late, replayed,
    /// rejoins); empty when the run was not on the bus.
    pub bus: Vec<(String, crate::bus::zenoh::SourceSnapshot)>,
    /// The serial link's counters (frames, CRC and decode errors, sequence gaps, NACKs, the
    /// board's rx errors, reconnects); absent without a serial link.
    pub link: Option<crate::link::session::LinkStats>,
    /// Commands the motor stage rejected as non-finite.
    pub rejected_commands: u64,
}

/// Latest body state, shared lock-free between the integrator thread (writer) and the
/// proprioception thread (reader): the tick never waits on a slower thread.
#[derive(Clone, Default)]
struct BodyCell(Arc<AtomicCell<Option<BodyState>>>);

impl BodyStateSource for BodyCell {
    fn latest(&mut self, _now_ns: u64) -> Option<BodyState> {
        self.0.load()
    }
}

/// A body for the real-time loop: the serial link, or the kinematic model advanced by the wall
/// clock.
enum RunBody {
    /// A body supplied by the caller (e.g. a ROS 2 base driver).
    External(Box<dyn Body>),
    Serial(SerialLink),
    Kinematic {
        body: Box<KinematicBody>,
        last_ns: u64,
    },
    /// A body in another process on the bus (`brainloop node body`, the simulated robot).
    Remote(RemoteBody),
}

/// A body in another process: setpoints go out through a lock-free queue to a forwarder
/// thread that publishes them (the tick never touches the network); the latest body state
/// arrives in a lock-free cell, stamped with its receive time, so a silent body goes stale.
struct RemoteBody {
    tx: crossbeam_channel::Sender<WheelSpeeds>,
    state: Arc<AtomicCell<Option<BodyState>>>,
}

impl Body for RemoteBody {
    fn command(&mut self, wheels: WheelSpeeds) -> Result<(), BodyError> {
        // A full queue drops this setpoint; the next tick's supersedes it anyway.
        let _ = self.tx.try_send(wheels);
        Ok(())
    }
    fn state(&self) -> BodyState {
        // None yet: stamp 0, which the integrator treats as stale.
        self.state.load().unwrap_or_default()
    }
    fn estop(&mut self) {
        let _ = self.tx.try_send(WheelSpeeds::default());
    }
    fn clear_estop(&mut self) {}
    fn name(&self) -> String {
        "sim (node body, over the bus)".into()
    }
}

impl Body for RunBody {
    fn command(&mut self, wheels: WheelSpeeds) -> Result<(), BodyError> {
        match self {
            RunBody::External(b) => b.command(wheels),
            RunBody::Serial(b) => b.command(wheels),
            RunBody::Kinematic { body, .. } => body.command(wheels),
            RunBody::Remote(b) => b.command(wheels),
        }
    }
    fn state(&self) -> BodyState {
        match self {
            RunBody::External(b) => b.state(),
            RunBody::Serial(b) => b.state(),
            RunBody::Kinematic { body, last_ns } => BodyState {
                stamp_ns: *last_ns,
                ..body.state()
            },
            RunBody::Remote(b) => b.state(),
        }
    }
    fn estop(&mut self) {
        match self {
            RunBody::External(b) => b.estop(),
            RunBody::Serial(b) => b.estop(),
            RunBody::Kinematic { body, .. } => body.estop(),
            RunBody::Remote(b) => b.estop(),
        }
    }
    fn clear_estop(&mut self) {
        match self {
            RunBody::External(b) => b.clear_estop(),
            RunBody::Serial(b) => b.clear_estop(),
            RunBody::Kinematic { body, .. } => body.clear_estop(),
            RunBody::Remote(b) => b.clear_estop(),
        }
    }
    fn name(&self) -> String {
        match self {
            RunBody::External(b) => b.name(),
            RunBody::Serial(b) => b.name(),
            RunBody::Kinematic { body, .. } => body.name(),
            RunBody::Remote(b) => b.name(),
        }
    }
}

fn open_body(cfg: &Config, robot: &RobotParams, kind: BodyKind) -> Result<RunBody> {
    match kind {
        BodyKind::Serial => {
            let port = &cfg.body.port;
            // One clear line for an absent or unreadable port, before anything starts.
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(port)
                .with_context(|| format!("cannot open serial port {port} ([body].port)"))?;
            let link = SerialLink::open(SerialConfig::from_config(&cfg.body, robot.clone()))
                .with_context(|| format!("cannot start the link thread for {port}"))?;
            if !link.wait_ready(Duration::from_secs(3)) {
                bail!("no telemetry from the motor controller on {port} within 3 s (is the brainloop firmware flashed? `make -C firmware flash PORT={port}`)");
            }
            Ok(RunBody::Serial(link))
        }
        BodyKind::Kinematic => Ok(RunBody::Kinematic {
            body: Box::new(KinematicBody::new(robot.clone())),
            last_ns: monotonic_ns(),
        }),
        BodyKind::Sim => bail!(
            "[body].kind = \"sim\" is the embedded simulator: use `brainloop sim` (or `--body kinematic|serial` here)"
        ),
    }
}

/// The vision region's frames: a live camera / video (feature `camera`) or image files; `None`
/// when the run has no camera (vision then does not run).
fn vision_source(
    opts: &RunOptions,
    rate_hz: f64,
    bus: &LocalBus,
) -> Result<Option<Box<dyn crate::regions::sources::FrameSource>>> {
    #[cfg(feature = "camera")]
    if let Some(spec) = &opts.camera {
        use crate::regions::camera::{CameraSpec, OpenCvCamera};
        use crate::regions::sources::ReconnectingCamera;
        let cam = OpenCvCamera::new(CameraSpec::parse(spec));
        return Ok(Some(Box::new(ReconnectingCamera::new(cam))));
    }
    if opts.images.is_empty() {
        return Ok(ros_camera(opts, bus)?
            .map(|f| Box::new(f) as Box<dyn crate::regions::sources::FrameSource>));
    }
    let src = ImageFiles::open(&opts.images, rate_hz)
        .map_err(|e| anyhow::anyhow!("vision input: {e}"))?;
    Ok(Some(Box::new(src)))
}

/// The camera of the ROS 2 graph (`camera/image_raw` or its compressed topic, through the DDS
/// bridge) when the run joins it and has no other camera: a latest-frame mailbox fed by a
/// forwarder thread off the bus (it ends when the vision region lets go of the mailbox).
#[allow(unused_variables)]
fn ros_camera(
    opts: &RunOptions,
    bus: &LocalBus,
) -> Result<Option<crate::regions::sources::SharedFrame>> {
    #[cfg(feature = "dds")]
    if opts.dds {
        let node = if opts.ros_base {
            crate::bus::ros_map::RosNode::for_base_driver(opts.ros.clone(), "brainloop")
        } else {
            crate::bus::ros_map::RosNode::new(opts.ros.clone(), "brainloop")
        };
        let camera = node
            .map(|n| n.settings.camera)
            .unwrap_or(crate::bus::ros_map::CameraIn::None);
        if camera == crate::bus::ros_map::CameraIn::None {
            return Ok(None);
        }
        let mailbox = crate::regions::sources::SharedFrame::new();
        let (sub, m) = (bus.subscribe(topics::CAMERA, 2), mailbox.clone());
        std::thread::Builder::new()
            .name("ros-camera-in".into())
            .spawn(move || {
                while m.is_shared() {
                    if let Some(f) = sub.recv_timeout(Duration::from_millis(100)) {
                        m.put(crate::regions::sources::Frame {
                            width: f.width,
                            height: f.height,
                            stamp_ns: f.stamp_ns,
                            data: f.data,
                        });
                    }
                }
            })
            .context("cannot start the ROS camera forwarder")?;
        tracing::info!("vision: frames from the ROS 2 camera topic");
        return Ok(Some(mailbox));
    }
    Ok(None)
}

/// This run's inputs for the regions.
fn sources(
    cfg: &Config,
    opts: &RunOptions,
    inbox: &InstructionInbox,
    body: &BodyCell,
    bus: &LocalBus,
) -> Result<Sources> {
    let vision_rate = cfg.regions.get("vision").map(|r| r.rate_hz).unwrap_or(10.0);
    let audio: Option<Box<dyn crate::regions::sources::AudioSource>> = match &opts.wav {
        Some(wav) => Some(Box::new(
            WavFile::open(wav, true).map_err(|e| anyhow::anyhow!("audition input: {e}"))?,
        )),
        None => None,
    };
    Ok(Sources {
        frames: vision_source(opts, vision_rate, bus)?,
        instructions: inbox.clone(),
        audio,
        body: Some(Box::new(body.clone())),
        remote: opts.remote.clone(),
    })
}

/// Apply one console line, publishing it on `bus` as the console; returns false on `/quit`.
fn console_line<B: Bus>(line: &str, bus: &B) -> bool {
    let line = line.trim();
    let teleop = |c| {
        if !publish_teleop(bus, topics::TELEOP_CONSOLE, c).complete() {
            eprintln!("console: command {c:?} not delivered");
        }
    };
    let mut words = line.split_whitespace();
    match words.next() {
        Some("/quit") => return false,
        Some("/stop") => teleop(TeleopCommand::Estop),
        Some("/clear") => teleop(TeleopCommand::ClearEstop),
        Some("/release") => teleop(TeleopCommand::Release),
        Some("/drive") => {
            let v: Option<f64> = words.next().and_then(|s| s.parse().ok());
            let w: Option<f64> = words.next().and_then(|s| s.parse().ok());
            match (v, w) {
                (Some(linear), Some(angular)) if linear.is_finite() && angular.is_finite() => {
                    teleop(TeleopCommand::Drive(Twist { linear, angular }))
                }
                _ => eprintln!("console: usage: /drive LINEAR_M_S ANGULAR_RAD_S (finite numbers)"),
            }
        }
        Some(cmd) if cmd.starts_with('/') => {
            eprintln!("console: unknown command {cmd} (/stop /clear /drive V W /release /quit)")
        }
        _ => {
            let i = Instruction {
                stamp_ns: monotonic_ns(),
                text: line.to_string(),
            };
            if !bus.publish(topics::INSTRUCTION, &i).complete() {
                eprintln!("console: instruction not delivered");
            }
        }
    }
    true
}

/// Why the console stopped reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConsoleEnd {
    /// `/quit`: the run ends.
    Quit,
    /// End of input (or the input could not be read any more): the run goes on.
    Eof,
}

/// The longest console line read; a longer one is reported and skipped.
const MAX_CONSOLE_LINE: usize = 4096;

/// Read console lines from `input` until `/quit` or the end of input. A line that is not valid
/// UTF-8 or is too long is reported and skipped, never the end of the console: a later `/stop`
/// or `/quit` still works.
fn console_loop<R: BufRead, B: Bus>(mut input: R, bus: &B) -> ConsoleEnd {
    let mut buf = Vec::with_capacity(256);
    let mut n = 0u64;
    loop {
        buf.clear();
        // At most one line plus one byte: a longer line is read in pieces and skipped.
        match std::io::Read::take(&mut input, MAX_CONSOLE_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
        {
            Ok(0) => return ConsoleEnd::Eof,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("console: cannot read standard input any more ({e}); the run goes on (Ctrl-C stops it)");
                return ConsoleEnd::Eof;
            }
        }
        n += 1;
        if !buf.ends_with(b"\n") && buf.len() > MAX_CONSOLE_LINE {
            eprintln!("console: line {n} is longer than {MAX_CONSOLE_LINE} bytes: skipped");
            // Skip the rest of it.
            loop {
                buf.clear();
                match std::io::Read::take(&mut input, 64 * 1024).read_until(b'\n', &mut buf) {
                    Ok(0) => return ConsoleEnd::Eof,
                    Ok(_) if buf.ends_with(b"\n") => break,
                    Ok(_) => {}
                    Err(_) => return ConsoleEnd::Eof,
                }
            }
            continue;
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            eprintln!("console: line {n} is not valid UTF-8: skipped");
            continue;
        };
        if !console_line(line, bus) {
            return ConsoleEnd::Quit;
        }
    }
}

/// Inputs from outside the process (a ROS 2 node, ...) that the run should obey.
#[derive(Clone, Default)]
pub struct RunInputs {
    /// The run's in-process bus. Instructions on `topics::INSTRUCTION` reach the language
    /// region; teleop on `topics::TELEOP_CONSOLE` / `topics::TELEOP_REMOTE` reaches the override
    /// mux's `console` / `remote` source (a ROS 2 bridge publishes as `remote`). The run
    /// publishes `topics::CMD_VEL` and `topics::DROWSINESS` on it (every 20 ms).
    pub bus: LocalBus,
}

/// The forwarder threads from the bus into the run's inputs; dropping it stops and joins them
/// (within 20 ms).
struct BusInputs {
    stop: Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for BusInputs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Forwarders from the bus into the run's lock-free inputs: instructions into `inbox`, each
/// teleop topic into its own mux input (none for a source the mux lacks).
fn spawn_bus_inputs<B: Bus>(
    bus: &B,
    inbox: &InstructionInbox,
    teleop: [(crate::bus::Topic<TeleopCommand>, Option<Arc<TeleopInput>>); 2],
) -> std::io::Result<BusInputs> {
    let mut f = BusInputs {
        stop: Arc::new(AtomicBool::new(false)),
        handles: Vec::new(),
    };
    let sub = bus.subscribe(topics::INSTRUCTION, 16);
    let (inbox, st) = (inbox.clone(), f.stop.clone());
    f.handles.push(
        std::thread::Builder::new()
            .name("instruction-bridge".into())
            .spawn(move || {
                while !st.load(Ordering::Relaxed) {
                    if let Some(i) = sub.recv_timeout(Duration::from_millis(20)) {
                        inbox.set(i);
                    }
                }
            })?,
    );
    for (topic, input) in teleop {
        if let Some(input) = input {
            f.handles.push(crate::teleop::spawn_bus_bridge(
                bus,
                topic,
                input,
                monotonic_ns,
                f.stop.clone(),
            )?);
        }
    }
    Ok(f)
}

/// The mux input `name`, or the highest-priority source's when the config has no `name`.
fn mux_input(integrator: &Integrator, name: &str) -> Arc<TeleopInput> {
    integrator.teleop_input(name).unwrap_or_else(|| {
        let first = integrator
            .graph()
            .mux
            .iter()
            .find(|m| m.2.is_some())
            .map(|m| m.0.clone());
        match first.and_then(|n| integrator.teleop_input(&n)) {
            Some(t) => {
                tracing::warn!(
                    "[teleop.sources] has no `{name}`: it drives as the highest-priority source"
                );
                t
            }
            None => TeleopInput::new(),
        }
    })
}

/// Run the brain in real time until the time limit, `/quit` or Ctrl-C.
pub fn run(opts: &RunOptions, stop: Arc<AtomicBool>) -> Result<RunSummary> {
    run_with(opts, stop, RunInputs::default(), None)
}

/// [`run`] with inputs shared with the caller and, optionally, a body the caller built (e.g.
/// `ros2::Ros2Body`); without one, the body comes from the configuration.
pub fn run_with(
    opts: &RunOptions,
    stop: Arc<AtomicBool>,
    inputs: RunInputs,
    external_body: Option<Box<dyn Body>>,
) -> Result<RunSummary> {
    let mut cfg = Config::load(&opts.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(p) = &opts.port {
        cfg.body.port = p.clone();
    }
    let kind = opts.body.unwrap_or(cfg.body.kind);
    let robot = RobotParams::load_default();
    let mut remote_body = None;
    let mut base_forwarder = None;
    let external_body = match external_body {
        None if opts.ros_base => {
            let state = Arc::new(AtomicCell::new(None));
            let sub = inputs.bus.subscribe(topics::BASE_STATE, 16);
            let (st, cell) = (Arc::new(AtomicBool::new(false)), state.clone());
            let st2 = st.clone();
            let h = std::thread::Builder::new()
                .name("ros-base-in".into())
                .spawn(move || {
                    while !st2.load(Ordering::Relaxed) {
                        if let Some(s) = sub.recv_timeout(Duration::from_millis(20)) {
                            cell.store(Some(s));
                        }
                    }
                })
                .context("cannot start the ROS base forwarder")?;
            base_forwarder = Some((st, h));
            Some(Box::new(crate::body::RosBaseBody::new(
                state,
                "ros2 base driver (cmd_vel out; joint_states, imu, scan in)",
            )) as Box<dyn Body>)
        }
        b => b,
    };
    let body = match external_body {
        Some(b) => RunBody::External(b),
        None if kind == BodyKind::Sim && opts.bus.is_some() => {
            let (tx, rx) = crossbeam_channel::bounded(8);
            let state = Arc::new(AtomicCell::new(None));
            remote_body = Some((rx, state.clone()));
            RunBody::Remote(RemoteBody { tx, state })
        }
        None => open_body(&cfg, &robot, kind)?,
    };
    type LinkReader = Box<dyn Fn() -> crate::link::serial::LinkHealth + Send + Sync>;
    let link_health: Option<LinkReader> = match &body {
        RunBody::Serial(l) => Some(Box::new(l.health_reader())),
        _ => None,
    };
    let link_final: Option<LinkReader> = match &body {
        RunBody::Serial(l) => Some(Box::new(l.health_reader())),
        _ => None,
    };
    let RunInputs { bus } = inputs;
    let inbox = InstructionInbox::new();
    let body_cell = BodyCell::default();
    // One builder: the graph, the integrator and every region that has an input in this run
    // (one without does not run, and the integrator neither waits for it nor grows drowsy).
    let mut brain = crate::brain::build(
        &cfg,
        &robot,
        IntegratorOptions::default(),
        sources(&cfg, opts, &inbox, &body_cell, &bus)?,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let policy = crate::grounding::load_policy(&robot).map_err(|e| {
        anyhow::anyhow!("{e} (train it with `brainloop align`, or run `make bootstrap`)")
    })?;
    brain.integrator.set_policy(Box::new(policy));
    // The override mux: the console drives as `console`, ROS 2 / DDS teleop as `remote`, each
    // from its own bus topic.
    let console = mux_input(&brain.integrator, "console");
    let remote = brain.integrator.teleop_input("remote");
    if remote.is_none() {
        tracing::warn!("[teleop.sources] has no `remote`: ROS 2 / DDS teleop is ignored");
    }
    let forwarders = spawn_bus_inputs(
        &bus,
        &inbox,
        [
            (topics::TELEOP_CONSOLE, Some(console)),
            (topics::TELEOP_REMOTE, remote),
        ],
    )
    .context("cannot start the bus forwarders")?;
    let body_name = body.name();
    let region_names = brain.region_names();
    let mut status = StatusWindow::new(
        &cfg,
        &robot,
        &brain.integrator,
        body_name.clone(),
        link_health,
        opts.instruction.clone(),
        bus.subscribe(topics::INSTRUCTION, 16),
    );
    let mut auth = None;
    let net = match &opts.bus {
        Some(o) => {
            let net = join_bus(o, &bus, std::mem::take(&mut brain.remote))?;
            auth = serve_console(&cfg, &net, &brain.integrator, &bus, Arc::new(monotonic_ns))?;
            Some(net)
        }
        None if !brain.remote.is_empty() => {
            bail!("regions {:?} run in their own processes but this run is not on the bus (give --listen / --connect or [bus] endpoints)", opts.remote)
        }
        None => None,
    };
    let body_forwarder = match (&net, remote_body) {
        (Some(n), Some((rx, state))) => Some(remote_body_link(n, rx, state)?),
        _ => None,
    };

    if let Some(text) = &opts.instruction {
        inbox.set(Instruction {
            stamp_ns: monotonic_ns(),
            text: text.clone(),
        });
    }
    let clock: Arc<dyn Fn() -> u64 + Send + Sync> = Arc::new(monotonic_ns);
    let handles =
        crate::brain::spawn_regions(brain.regions, clock).map_err(|e| anyhow::anyhow!("{e}"))?;
    let integrator = brain.integrator;
    tracing::info!(body = %body_name, regions = ?region_names, rate_hz = cfg.integrator.rate_hz, "brain running");

    let ring = RecordRing::new(4096);
    let cell = body_cell.clone();
    let rt = RtOptions::from(&cfg.integrator);
    let loop_stop = Arc::new(AtomicBool::new(false));
    let join = run_realtime(
        integrator,
        body,
        rt,
        loop_stop.clone(),
        ring.clone(),
        move |now, body: &mut RunBody| {
            if let RunBody::Kinematic { body, last_ns } = body {
                let dt = now.saturating_sub(*last_ns) as f64 * 1e-9;
                body.advance(dt);
                *last_ns = now;
            }
            cell.0.store(Some(body.state()));
        },
    )
    .context("cannot start the integrator thread")?;

    if opts.console {
        let (bus2, stop2) = (bus.clone(), stop.clone());
        std::thread::Builder::new()
            .name("console".into())
            .spawn(move || {
                // End of input just ends the console; `/quit` ends the run.
                if console_loop(std::io::stdin().lock(), &bus2) == ConsoleEnd::Quit {
                    stop2.store(true, Ordering::SeqCst);
                }
            })
            .context("cannot start the console thread")?;
    }

    #[cfg(feature = "dds")]
    let _dds = if opts.dds {
        let node = if opts.ros_base {
            crate::bus::ros_map::RosNode::for_base_driver(opts.ros.clone(), "brainloop")
        } else {
            crate::bus::ros_map::RosNode::new(opts.ros.clone(), "brainloop")
        }
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let fq = if node.namespace == "/" {
            format!("/{}", node.name)
        } else {
            format!("{}/{}", node.namespace, node.name)
        };
        let mut cfg =
            crate::bus::dds::DdsConfig::from_env(node).map_err(|e| anyhow::anyhow!("{e}"))?;
        if opts.ros_base {
            cfg.base = Some(crate::bus::dds::BaseDriver {
                ticks_per_rev: robot.ticks_per_rev,
                rays: robot.ray_angles(),
                range_max: robot.range_max as f32,
            });
        }
        let bridge = crate::bus::dds::DdsBridge::start(cfg, bus.clone())
            .map_err(|e| anyhow::anyhow!("cannot join the ROS 2 graph over DDS: {e}"))?;
        tracing::info!("on the ROS 2 graph over DDS as {fq}");
        Some(bridge)
    } else {
        None
    };

    let t0 = monotonic_ns();
    let mut last = TickRecord::default();
    let mut drowsiness_max = 0.0f64;
    let mut last_log = 0u64;
    let mut records_seen = 0u64;
    let mut cmd_gate = Gate::new(20_000_000);
    let mut feed_gate = Gate::new(20_000_000);
    let mut last_diag = 0u64;
    let resets = bus.subscribe(topics::ESTOP_RESET, 8);
    let auth_stats = crate::teleop::auth::AuthStats::default();
    let mut verifier = ros_reset_verifier(&cfg);
    let mut last_health = 0u64;
    let mut window = HealthWindow::new(&cfg);
    let mut health_pub = match &net {
        Some(n) => Some(
            n.publisher(&crate::bus::zenoh::net_topics::HEALTH)
                .map_err(|e| anyhow::anyhow!("zenoh bus: {e}"))?,
        ),
        None => None,
    };
    let mut status_pub = match &net {
        Some(n) => Some(
            n.publisher(&crate::bus::zenoh::net_topics::STATUS)
                .map_err(|e| anyhow::anyhow!("zenoh bus: {e}"))?,
        ),
        None => None,
    };
    let mut status_buf = Vec::with_capacity(2048);
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(10));
        while let Some(r) = ring.pop() {
            records_seen += 1;
            drowsiness_max = drowsiness_max.max(r.drowsiness as f64);
            window.push(&r);
            status.push(&r);
            last = r;
        }
        let state = body_cell.0.load();
        if let Some(s) = &state {
            status.body_state(s);
        }
        if let (Some(n), Some(p)) = (&net, health_pub.as_mut()) {
            let now = monotonic_ns();
            if now.saturating_sub(last_health) >= 100_000_000 {
                last_health = now;
                p.put(&window.message(&last, &region_names, n, now).to_cdr());
                if let Some(sp) = status_pub.as_mut() {
                    use crate::bus::zenoh::Wire;
                    status
                        .message(&last, state, auth.as_deref())
                        .encode(&mut status_buf);
                    sp.put(&status_buf);
                }
            }
        }
        // Body state at 100 Hz for a proprioception region in another process (a remote body
        // publishes its own).
        if net.is_some() && body_forwarder.is_none() {
            if let Some(s) = body_cell.0.load() {
                bus.publish(topics::BODY_STATE, &s);
            }
        }
        // For the ROS 2 bridges (off the integrator thread; a no-op without subscribers):
        // a command only for ticks that ran since the last one, so a stalled loop goes quiet
        // and the base's own command timeout stops the robot.
        let now = monotonic_ns();
        if cmd_gate.due(records_seen, now) {
            bus.publish(topics::CMD_VEL, &last.twist);
            bus.publish(topics::DROWSINESS, &last.drowsiness);
        }
        if let Some(s) = &state {
            if feed_gate.due(s.stamp_ns, now) {
                bus.publish(topics::ROBOT_FEED, &status.feed(s, &robot));
            }
        }
        if now.saturating_sub(last_diag) >= 1_000_000_000 {
            last_diag = now;
            let d = window.diag(&last, &region_names, status.link_feed(), state, now);
            bus.publish(topics::DIAG_FEED, &d);
        }
        for token in std::iter::from_fn(|| resets.try_recv()) {
            reset_from_ros(
                &token,
                verifier.as_mut().map_err(|e| &*e),
                &auth_stats,
                &bus,
            );
        }
        let now = monotonic_ns();
        if now - last_log > 1_000_000_000 {
            last_log = now;
            tracing::info!(
                tick = last.tick,
                mode = ?last.mode,
                drowsiness = format!("{:.2}", last.drowsiness),
                linear = format!("{:.2}", last.twist.linear),
                angular = format!("{:.2}", last.twist.angular),
                "brain"
            );
        }
        if let Some(s) = opts.seconds {
            if (now - t0) as f64 * 1e-9 >= s {
                break;
            }
        }
    }
    loop_stop.store(true, Ordering::SeqCst);
    let mut outcome = join
        .join()
        .map_err(|_| anyhow::anyhow!("the integrator thread panicked"))?;
    // Deactivating writes zero.
    let _ = outcome.body.command(WheelSpeeds::default());
    for (_, h) in handles {
        let _ = h.stop();
    }
    drop(forwarders);
    if let Some((st, h)) = base_forwarder {
        st.store(true, Ordering::Relaxed);
        let _ = h.join();
    }
    while let Some(r) = ring.pop() {
        drowsiness_max = drowsiness_max.max(r.drowsiness as f64);
        last = r;
    }
    let h = outcome.integrator.health().summary();
    let rejected_commands = outcome.integrator.rejected_commands();
    let link = link_final.map(|r| r().stats);
    if let Some(l) = &link {
        if l.crc_errors + l.decode_errors + l.seq_gaps + l.board_rx_errors + l.implausible_telemetry
            > 0
        {
            tracing::warn!(
                crc_errors = l.crc_errors,
                decode_errors = l.decode_errors,
                seq_gaps = l.seq_gaps,
                board_rx_errors = l.board_rx_errors,
                implausible_telemetry = l.implausible_telemetry,
                "the serial link lost or rejected frames"
            );
        }
    }
    // Dropping the body closes the setpoint queue: the forwarder sends the zero above, then ends.
    drop(outcome.body);
    if let Some((_stop, h)) = body_forwarder {
        let _ = h.join();
    }
    let net_sources = net.as_ref().map(|n| n.sources()).unwrap_or_default();
    drop(net);
    Ok(RunSummary {
        body: body_name,
        regions: region_names,
        wall_s: outcome.wall_ns as f64 * 1e-9,
        ticks: h.ticks,
        missed: h.missed,
        lateness_p99_us: h.lateness_us.p99,
        compute_p99_us: h.compute_us.p99,
        drowsiness_max,
        sleeps: h.sleeps,
        final_mode: last.mode,
        realtime: outcome.status.fifo_priority.is_some(),
        bus: net_sources,
        link,
        rejected_commands,
    })
}

/// Publish at most every `period_ns`, and only when `key` (records seen, a body-state stamp)
/// moved since the last time: what is republished must be new.
struct Gate {
    last_key: Option<u64>,
    last_ns: u64,
    period_ns: u64,
}

impl Gate {
    fn new(period_ns: u64) -> Self {
        Self {
            last_key: None,
            last_ns: 0,
            period_ns,
        }
    }

    /// Whether to publish `key` now (0 means nothing yet).
    fn due(&mut self, key: u64, now_ns: u64) -> bool {
        if key == 0 || self.last_key == Some(key) {
            return false;
        }
        if self.last_key.is_some() && now_ns.saturating_sub(self.last_ns) < self.period_ns {
            return false;
        }
        self.last_key = Some(key);
        self.last_ns = now_ns;
        true
    }
}

/// The verifier of e-stop resets from ROS 2 (`~/estop_reset`): the operator key, or why
/// there is none (then every reset is refused, saying why). The run never creates a key.
fn ros_reset_verifier(cfg: &Config) -> Result<crate::teleop::auth::Verifier, String> {
    let path = crate::teleop::auth::key_path(&cfg.teleop.operator_key);
    crate::teleop::auth::OperatorKey::load(&path)
        .map(crate::teleop::auth::Verifier::new)
        .map_err(|e| e.to_string())
}

/// Decode lowercase or uppercase hex; `None` for anything else.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Hex of `b`.
pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A token from `~/estop_reset`: clears the `remote` e-stop latch only when it is a `Reset`
/// signed with the operator key, fresh and not replayed. Returns whether it cleared.
fn reset_from_ros(
    token: &str,
    verifier: Result<&mut crate::teleop::auth::Verifier, &String>,
    stats: &crate::teleop::auth::AuthStats,
    bus: &LocalBus,
) -> bool {
    let v = match verifier {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("ROS 2 e-stop reset refused: {e}");
            return false;
        }
    };
    let Some(sample) = from_hex(token) else {
        tracing::warn!("ROS 2 e-stop reset refused: not a hex token (make one with `brainloop ros reset-token`)");
        return false;
    };
    match v.verify(&sample, crate::util::wall_ns(), stats) {
        Ok(b) if b.cmd == crate::msg::OperatorCommand::Reset => {
            tracing::info!("e-stop reset from ROS 2, signed by the operator");
            publish_teleop(bus, topics::TELEOP_REMOTE, TeleopCommand::ClearEstop).complete()
        }
        Ok(_) => {
            tracing::warn!("ROS 2 e-stop reset refused: the signed command is not a reset");
            false
        }
        Err(e) => {
            tracing::warn!("ROS 2 e-stop reset refused: {e}");
            false
        }
    }
}

/// The loop's health over the last second of tick records, as `brainloop_msgs/LoopHealth`
/// (published at 10 Hz on the bus by the integrator's process, off its thread).
struct HealthWindow {
    lateness: crate::integrator::health::LatencyHistogram,
    compute: crate::integrator::health::LatencyHistogram,
    window: std::collections::VecDeque<(u64, u64, u64)>,
    ticks: u64,
    missed: u64,
    sleeps: u32,
    was_sleeping: bool,
    period_us: f64,
    rates: [f64; crate::msg::RegionId::COUNT],
    stale_ticks: [u64; crate::msg::RegionId::COUNT],
    rate_hz: f64,
}

impl HealthWindow {
    fn new(cfg: &Config) -> Self {
        let mut rates = [0.0; crate::msg::RegionId::COUNT];
        for id in crate::msg::RegionId::ALL {
            rates[id.index()] = cfg.regions.get(id.name()).map_or(0.0, |r| r.rate_hz);
        }
        Self {
            lateness: Default::default(),
            compute: Default::default(),
            window: Default::default(),
            ticks: 0,
            missed: 0,
            sleeps: 0,
            was_sleeping: false,
            period_us: cfg.tick_period_ns() as f64 * 1e-3,
            rates,
            stale_ticks: [0; crate::msg::RegionId::COUNT],
            rate_hz: cfg.integrator.rate_hz,
        }
    }

    fn push(&mut self, r: &TickRecord) {
        self.ticks += 1;
        self.missed += r.missed;
        if r.sleeping && !self.was_sleeping {
            self.sleeps += 1;
        }
        self.was_sleeping = r.sleeping;
        for (i, n) in self.stale_ticks.iter_mut().enumerate() {
            if r.stale_mask & (1 << i) != 0 {
                *n += 1;
            }
        }
        self.window
            .push_back((r.now_ns, r.lateness_ns, r.compute_ns));
        while self
            .window
            .front()
            .is_some_and(|w| r.now_ns.saturating_sub(w.0) > 1_000_000_000)
        {
            self.window.pop_front();
        }
    }

    /// The last second's loop figures: rate, lateness and compute percentiles (us).
    fn figures(
        &mut self,
    ) -> (
        f64,
        crate::integrator::health::Percentiles,
        crate::integrator::health::Percentiles,
    ) {
        self.lateness.reset();
        self.compute.reset();
        for &(_, l, c) in &self.window {
            self.lateness.record(l);
            self.compute.record(c);
        }
        let span_s = match (self.window.front(), self.window.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => (b.0 - a.0) as f64 * 1e-9,
            _ => 0.0,
        };
        let rate = if span_s > 0.0 {
            (self.window.len() - 1) as f64 / span_s
        } else {
            0.0
        };
        (
            rate,
            self.lateness.percentiles_us(),
            self.compute.percentiles_us(),
        )
    }

    /// The health feed for the ROS 2 bridges' `/diagnostics` and `BatteryState`.
    fn diag(
        &mut self,
        last: &TickRecord,
        regions: &[&'static str],
        link: Option<crate::msg::LinkFeed>,
        state: Option<BodyState>,
        now_ns: u64,
    ) -> crate::msg::DiagFeed {
        let (measured_hz, lp, cp) = self.figures();
        let (jitter_p99_us, compute_p99_us) = (lp.p99, cp.p99);
        crate::msg::DiagFeed {
            stamp_ns: now_ns,
            rate_hz: self.rate_hz,
            measured_hz,
            jitter_p99_us,
            compute_p99_us,
            ticks: self.ticks,
            missed: self.missed,
            drowsiness: last.drowsiness,
            sleeps: self.sleeps,
            mode: format!("{:?}", last.mode).to_lowercase(),
            estop: last.estop,
            regions: crate::msg::RegionId::ALL
                .into_iter()
                .filter(|id| regions.contains(&id.name()))
                .map(|id| crate::msg::RegionFresh {
                    name: id.name().into(),
                    fresh: last.stale_mask & (1 << id.index()) == 0,
                    stale_ticks: self.stale_ticks[id.index()],
                })
                .collect(),
            link,
            battery_v: state.map_or(0.0, |s| s.battery_v),
        }
    }

    fn message(
        &mut self,
        last: &TickRecord,
        regions: &[&'static str],
        net: &crate::bus::zenoh::ZenohBus,
        now_ns: u64,
    ) -> crate::bus::wire::LoopHealthMsg {
        use crate::bus::wire::{Header, LoopHealthMsg, RegionFreshnessMsg};
        let (rate_hz, lp, cp) = self.figures();
        let sources = net.sources();
        let regions = crate::msg::RegionId::ALL
            .into_iter()
            .filter(|id| regions.contains(&id.name()))
            .map(|id| {
                let key = net.keys().embedding(id);
                let s = sources
                    .iter()
                    .find(|s| s.0 == key)
                    .map(|s| s.1)
                    .unwrap_or_default();
                RegionFreshnessMsg {
                    region: id.name().into(),
                    fresh: last.stale_mask & (1 << id.index()) == 0,
                    age_ms: if s.last_ns > 0 {
                        now_ns.saturating_sub(s.last_ns) as f64 * 1e-6
                    } else {
                        0.0
                    },
                    rate_hz: self.rates[id.index()],
                    latency_ms: s.last_delay_ns as f64 * 1e-6,
                    received: s.received,
                    gaps: s.gaps,
                    rejected: s.rejected,
                    restarts: s.rejoins as u32,
                }
            })
            .collect();
        LoopHealthMsg {
            header: Header {
                stamp_sec: (now_ns / 1_000_000_000) as i32,
                stamp_nanosec: (now_ns % 1_000_000_000) as u32,
                frame_id: "integrator".into(),
            },
            schema_version: 1,
            rate_hz,
            period_us: self.period_us,
            jitter_p50_us: lp.p50,
            jitter_p99_us: lp.p99,
            jitter_max_us: lp.max,
            compute_p99_us: cp.p99,
            ticks: self.ticks,
            missed: self.missed,
            drowsiness: last.drowsiness,
            speed_scale: last.speed_scale,
            shed_level: last.shed_level.min(255) as u8,
            sleeps: self.sleeps,
            mode: format!("{:?}", last.mode).to_lowercase(),
            regions,
        }
    }
}

/// The bus side of a [`RemoteBody`]: its state from the body's node into the cell, and a
/// forwarder thread publishing the setpoints the tick queued.
fn remote_body_link(
    net: &crate::bus::zenoh::ZenohBus,
    rx: crossbeam_channel::Receiver<WheelSpeeds>,
    state: Arc<AtomicCell<Option<BodyState>>>,
) -> Result<(Arc<AtomicBool>, std::thread::JoinHandle<()>)> {
    use crate::bus::zenoh::{net_topics as nt, Wire};
    let e = |e: crate::bus::zenoh::ZenohError| anyhow::anyhow!("zenoh bus: {e}");
    net.subscribe_with(nt::BODY_STATE, move |s: BodyState| state.store(Some(s)))
        .map_err(e)?;
    let mut p = net.publisher(&nt::WHEELS).map_err(e)?;
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let h = std::thread::Builder::new()
        .name("wheels-out".into())
        .spawn(move || {
            let mut buf = Vec::with_capacity(64);
            while !st.load(Ordering::Relaxed) {
                match rx.recv_timeout(Duration::from_millis(20)) {
                    Ok(w) => {
                        w.encode(&mut buf);
                        p.put(&buf);
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                }
            }
        })
        .context("cannot start the wheel forwarder")?;
    Ok((stop, h))
}

/// Join the zenoh bus as the integrator's node: remote regions' embeddings into their slots,
/// instructions and teleop from the network onto the run's bus, and what the run reports out.
fn join_bus(
    o: &crate::bus::zenoh::ZenohOptions,
    bus: &LocalBus,
    remote: Vec<(crate::msg::RegionId, crate::integrator::SlotWriter)>,
) -> Result<crate::bus::zenoh::ZenohBus> {
    use crate::bus::zenoh::{net_topics as nt, ZenohBus};
    let net = ZenohBus::open(o, "integrator", monotonic_ns)
        .map_err(|e| anyhow::anyhow!("cannot join the zenoh bus: {e}"))?;
    let e = |e: crate::bus::zenoh::ZenohError| anyhow::anyhow!("zenoh bus: {e}");
    let language_remote = remote.iter().any(|r| r.0 == crate::msg::RegionId::Language);
    for (id, writer) in remote {
        net.feed_slot(id, writer).map_err(e)?;
        tracing::info!(region = id.name(), key = %net.keys().embedding(id), "region in its own process");
    }
    // Instructions go where the language region is: out to its node (this run's console and
    // ROS 2 bridges publish them here), or in from the network into this process.
    if language_remote {
        net.route_out(bus, topics::INSTRUCTION, nt::INSTRUCTION)
            .map_err(e)?;
    } else {
        net.route_in(bus, topics::INSTRUCTION, nt::INSTRUCTION)
            .map_err(e)?;
    }
    // Teleop from the network: the teleop console's signed commands (`teleop::operator`, set
    // up by the caller). Plain teleop samples on `teleop/remote` drive only where the bus
    // authenticates its peers and its access-control list keeps non-operators off that key.
    if o.auth.is_some() {
        net.route_in(bus, topics::TELEOP_REMOTE, nt::TELEOP_REMOTE)
            .map_err(e)?;
    }
    net.route_out(bus, topics::CMD_VEL, nt::CMD_VEL)
        .map_err(e)?;
    net.route_out(bus, topics::DROWSINESS, nt::DROWSINESS)
        .map_err(e)?;
    net.route_out(bus, topics::BODY_STATE, nt::BODY_STATE)
        .map_err(e)?;
    Ok(net)
}

/// Who drives, the body and the instruction, assembled from tick records and body states in
/// the supervisor (off the integrator's thread) and published as `msg::BrainStatus` at 10 Hz
/// for the teleop console.
struct StatusWindow {
    odo: crate::navigation::odometry::DeadReckoning,
    last_state_ns: u64,
    teleop_sources: Vec<String>,
    concepts: Vec<String>,
    capacity: u32,
    body: String,
    link: Option<Box<dyn Fn() -> crate::link::serial::LinkHealth + Send + Sync>>,
    instruction: Option<String>,
    instructions: crate::bus::Subscription<Instruction>,
    last_stamp: u64,
    key_to_wheel: std::collections::VecDeque<(u64, u64)>,
    sleeps: u64,
}

impl StatusWindow {
    /// A window for `integrator`'s records; `instructions` tells it the instruction text.
    #[allow(clippy::too_many_arguments)]
    fn new(
        cfg: &Config,
        robot: &RobotParams,
        integrator: &Integrator,
        body: String,
        link: Option<Box<dyn Fn() -> crate::link::serial::LinkHealth + Send + Sync>>,
        instruction: Option<String>,
        instructions: crate::bus::Subscription<Instruction>,
    ) -> Self {
        Self {
            odo: crate::navigation::odometry::DeadReckoning::new(
                robot.wheel_radius as f32,
                robot.wheel_separation as f32,
                robot.ticks_per_rev,
            ),
            last_state_ns: 0,
            teleop_sources: integrator.teleop_sources(),
            concepts: integrator.concept_names(),
            capacity: cfg.integrator.context_capacity as u32,
            body,
            link,
            instruction,
            instructions,
            last_stamp: 0,
            key_to_wheel: Default::default(),
            sleeps: 0,
        }
    }

    fn push(&mut self, r: &TickRecord) {
        // A new key event reached the wheels: key-to-wheel latency.
        if r.teleop_stamp_ns != 0 && r.teleop_stamp_ns != self.last_stamp {
            self.last_stamp = r.teleop_stamp_ns;
            self.key_to_wheel
                .push_back((r.now_ns, r.now_ns.saturating_sub(r.teleop_stamp_ns)));
        }
        while self
            .key_to_wheel
            .front()
            .is_some_and(|k| r.now_ns.saturating_sub(k.0) > 30_000_000_000)
        {
            self.key_to_wheel.pop_front();
        }
        if r.slept {
            self.sleeps += 1;
        }
    }

    /// The motion feed for the ROS 2 bridges: the dead-reckoned pose and the wheels of `s`.
    fn feed(&self, s: &BodyState, robot: &RobotParams) -> crate::msg::RobotFeed {
        let (x, y) = self.odo.pos();
        let r = robot.wheel_radius;
        let rad_per_tick = std::f64::consts::TAU / robot.ticks_per_rev.max(1) as f64;
        let [wl, wr] = s.wheel_speed;
        crate::msg::RobotFeed {
            stamp_ns: s.stamp_ns,
            x: x as f64,
            y: y as f64,
            yaw: self.odo.heading() as f64,
            linear: r * (wl + wr) / 2.0,
            angular: r * (wr - wl) / robot.wheel_separation,
            wheel_pos: s.encoder_ticks.map(|t| t as f64 * rad_per_tick),
            wheel_vel: s.wheel_speed,
        }
    }

    /// The serial link's counters, when the body is one.
    fn link_feed(&self) -> Option<crate::msg::LinkFeed> {
        self.link.as_ref().map(|h| {
            let h = h();
            crate::msg::LinkFeed {
                connected: h.connected,
                crc_errors: h.stats.crc_errors,
                decode_errors: h.stats.decode_errors,
                connects: h.stats.connects,
                seq_gaps: h.stats.seq_gaps,
                board_rx_errors: h.stats.board_rx_errors,
                implausible_telemetry: h.stats.implausible_telemetry,
            }
        })
    }

    fn body_state(&mut self, s: &BodyState) {
        if s.stamp_ns > self.last_state_ns {
            self.last_state_ns = s.stamp_ns;
            self.odo.update(s.stamp_ns, s);
        }
    }

    fn source_name(&self, i: Option<u8>) -> String {
        i.and_then(|i| self.teleop_sources.get(i as usize))
            .map_or("teleop".into(), |n| format!("teleop:{n}"))
    }

    fn message(
        &mut self,
        last: &TickRecord,
        state: Option<BodyState>,
        auth: Option<&crate::teleop::auth::AuthStats>,
    ) -> crate::msg::BrainStatus {
        use crate::msg::{
            BrainStatus, ControlSource, InstructionStatus, LatencySummary, LinkStatus, Odom,
            SleepStatus,
        };
        while let Some(i) = self.instructions.try_recv() {
            self.instruction = Some(i.text);
        }
        let source = match last.source {
            ControlSource::Autonomy => "autonomy".to_string(),
            ControlSource::Teleop => self.source_name(last.teleop_source),
            ControlSource::Estop => "estop".to_string(),
        };
        let estop_reason = last.estop.then(|| match last.estop_source {
            Some(i) => self.source_name(Some(i)),
            None => "body".to_string(),
        });
        let mut lat: Vec<f64> = self
            .key_to_wheel
            .iter()
            .map(|k| k.1 as f64 * 1e-6)
            .collect();
        lat.sort_by(|a, b| a.total_cmp(b));
        let pct = |q: f64| {
            if lat.is_empty() {
                0.0
            } else {
                lat[((lat.len() - 1) as f64 * q).round() as usize]
            }
        };
        let u = last.understood;
        let instruction = self.instruction.clone().map(|text| InstructionStatus {
            text,
            about_object: u.about_object,
            target: (u.instruction && u.about_object)
                .then(|| self.concepts.get(u.concept as usize).cloned())
                .flatten(),
            probability: u.probability,
            seen: u.seen,
            reason: crate::grounding::Reason::from_code(u.reason)
                .describe()
                .to_string(),
        });
        let link = self.link.as_ref().map(|h| {
            let h = h();
            LinkStatus {
                connected: h.connected,
                frames_rx: h.stats.frames_rx,
                frames_tx: h.stats.frames_tx,
                crc_errors: h.stats.crc_errors,
                decode_errors: h.stats.decode_errors,
                reconnects: h.stats.connects.saturating_sub(1),
                seq_gaps: h.stats.seq_gaps,
                board_rx_errors: h.stats.board_rx_errors,
                implausible_telemetry: h.stats.implausible_telemetry,
            }
        });
        let state = state.unwrap_or_default();
        let (x, y) = self.odo.pos();
        let a = auth.map(|a| a.snapshot()).unwrap_or_default();
        BrainStatus {
            wall_ns: crate::bus::zenoh::wall_ns(),
            source,
            estop: last.estop,
            estop_reason,
            operator_mode: last.operator_mode,
            mode: last.mode,
            twist: last.twist,
            wheels: state.wheel_speed,
            odom: Odom {
                x: x as f64,
                y: y as f64,
                theta: self.odo.heading() as f64,
            },
            battery_v: state.battery_v,
            body: self.body.clone(),
            body_stale: last.body_stale,
            link,
            instruction,
            sleep: SleepStatus {
                sleeping: last.sleeping,
                requested: last.sleep_requested,
                sleeps: self.sleeps,
                context_len: last.context_len,
                context_capacity: self.capacity,
            },
            assist_cap: last.assist_cap,
            commands_accepted: a.accepted,
            commands_refused: a.refused(),
            public_estops: a.public_estops,
            key_to_wheel_ms: LatencySummary {
                n: lat.len() as u64,
                p50: pct(0.5),
                p99: pct(0.99),
                max: lat.last().copied().unwrap_or(0.0),
            },
        }
    }
}

/// The brain's reports on the bus for a loop that is not `run`'s (the real-time simulator):
/// `LoopHealth` and `BrainStatus` at 10 Hz from the records the loop pushes into `ring` and
/// the body state it stores in `state`, published from this thread (never the loop's).
pub struct Reporter {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

/// Serve the teleop console for `integrator` on `net`: its `operator` source, controls and the
/// instruction topic of `local`, with commands stamped on `clock` (the loop's clock). Returns
/// the verifier's counters (`None` without an `operator` source).
pub fn serve_console(
    cfg: &Config,
    net: &crate::bus::zenoh::ZenohBus,
    integrator: &Integrator,
    local: &LocalBus,
    clock: Arc<dyn Fn() -> u64 + Send + Sync>,
) -> Result<Option<Arc<crate::teleop::auth::AuthStats>>> {
    let Some(input) = integrator.teleop_input("operator") else {
        tracing::warn!(
            "[teleop.sources] has no `operator`: the teleop console can watch but not drive"
        );
        return Ok(None);
    };
    let t = crate::teleop::operator::OperatorTargets {
        input,
        controls: integrator.operator_controls(),
        local: local.clone(),
    };
    let path = crate::teleop::auth::key_path(&cfg.teleop.operator_key);
    // Without a usable key the brain still runs, and any console can still stop it; nothing
    // drives it from the bus.
    let key = match crate::teleop::auth::OperatorKey::load_or_create(&path) {
        Ok(k) => {
            tracing::info!(key = %path.display(), "teleop console: commands signed with this operator key drive");
            Some(k)
        }
        Err(e) => {
            tracing::error!("{e}: the teleop console can watch and e-stop but not drive (fix the file, or set [teleop].operator_key / $BRAINLOOP_OPERATOR_KEY)");
            None
        }
    };
    let stats = crate::teleop::operator::serve(net, t, key, clock)
        .map_err(|e| anyhow::anyhow!("zenoh bus: {e}"))?;
    Ok(Some(stats))
}

/// Start a [`Reporter`] for `integrator` (built but not yet running) on `net`.
#[allow(clippy::too_many_arguments)]
pub fn spawn_reporter(
    cfg: &Config,
    robot: &RobotParams,
    integrator: &Integrator,
    net: Arc<crate::bus::zenoh::ZenohBus>,
    local: &LocalBus,
    regions: Vec<&'static str>,
    body: String,
    instruction: Option<String>,
    auth: Option<Arc<crate::teleop::auth::AuthStats>>,
    ring: Arc<RecordRing>,
    state: Arc<AtomicCell<Option<BodyState>>>,
) -> Result<Reporter> {
    let mut window = HealthWindow::new(cfg);
    let mut status = StatusWindow::new(
        cfg,
        robot,
        integrator,
        body,
        None,
        instruction,
        local.subscribe(topics::INSTRUCTION, 16),
    );
    let e = |e: crate::bus::zenoh::ZenohError| anyhow::anyhow!("zenoh bus: {e}");
    let mut health_pub = net
        .publisher(&crate::bus::zenoh::net_topics::HEALTH)
        .map_err(e)?;
    let mut status_pub = net
        .publisher(&crate::bus::zenoh::net_topics::STATUS)
        .map_err(e)?;
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let thread = std::thread::Builder::new()
        .name("bus-reporter".into())
        .spawn(move || {
            use crate::bus::zenoh::Wire;
            let mut last = TickRecord::default();
            let mut buf = Vec::with_capacity(2048);
            let mut next = std::time::Instant::now();
            while !st.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
                while let Some(r) = ring.pop() {
                    window.push(&r);
                    status.push(&r);
                    last = r;
                }
                let s = state.load();
                if let Some(s) = &s {
                    status.body_state(s);
                }
                if std::time::Instant::now() >= next {
                    next += Duration::from_millis(100);
                    health_pub.put(&window.message(&last, &regions, &net, last.now_ns).to_cdr());
                    status.message(&last, s, auth.as_deref()).encode(&mut buf);
                    status_pub.put(&buf);
                }
            }
        })
        .context("cannot start the bus reporter")?;
    Ok(Reporter {
        stop,
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::ros_map::{BoolMsg, Inbound, TwistMsg};

    /// The run's wiring: the console and a ROS 2 bridge share one bus but reach different mux
    /// inputs; ROS 2's `false` on `~/estop` clears nothing, a reset signed with the operator key
    /// clears only ROS 2's own latch, and an unsigned or replayed one nothing.
    #[test]
    fn console_and_ros2_reach_their_own_mux_inputs_over_the_bus() {
        use crate::bus::ros_map::{RosClock, RosSettings};
        use crate::teleop::auth::{AuthStats, OperatorKey, Signer, Verifier};
        let bus = LocalBus::new();
        let inbox = InstructionInbox::new();
        let (console, remote) = (TeleopInput::new(), TeleopInput::new());
        let forwarders = spawn_bus_inputs(
            &bus,
            &inbox,
            [
                (topics::TELEOP_CONSOLE, Some(console.clone())),
                (topics::TELEOP_REMOTE, Some(remote.clone())),
            ],
        )
        .unwrap();
        assert_eq!(forwarders.handles.len(), 3);
        assert!(console_line("/stop", &bus));
        assert!(console_line("  go to the red ball ", &bus));
        // What a ROS 2 bridge does with `true`, `false` on ~/estop and then a twist.
        let settings = RosSettings {
            teleop_stamped: false,
            ..RosSettings::default()
        };
        let mut ros = Inbound::new(
            bus.clone(),
            settings,
            Arc::new(RosClock::new(false)),
            monotonic_ns,
        );
        ros.estop(BoolMsg { data: true });
        ros.estop(BoolMsg { data: false });
        let tw = Twist {
            linear: 0.1,
            angular: 0.0,
        };
        ros.teleop(&TwistMsg::from(tw));
        let wait = |f: &dyn Fn() -> bool| {
            let end = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < end && !f() {
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        wait(&|| {
            console.snapshot().unwrap().estop
                && remote.snapshot().unwrap().drive.is_some()
                && inbox.get().is_some()
        });
        let r = remote.snapshot().unwrap();
        assert!(r.estop, "a false on ~/estop never clears: {r:?}");
        // Resets: one not signed with the key, then a good one, then its replay.
        let key = OperatorKey::from_bytes([7; 32]);
        let mut verifier: Result<Verifier, String> = Ok(Verifier::new(key.clone()));
        let stats = AuthStats::default();
        let now = crate::util::wall_ns();
        let forged = Signer::new(OperatorKey::from_bytes([8; 32])).sign(
            crate::msg::OperatorCommand::Reset,
            now,
            now,
        );
        assert!(!reset_from_ros(
            &to_hex(&forged),
            verifier.as_mut().map_err(|e| &*e),
            &stats,
            &bus
        ));
        assert!(!reset_from_ros(
            "not hex",
            verifier.as_mut().map_err(|e| &*e),
            &stats,
            &bus
        ));
        let good = to_hex(&Signer::new(key).sign(crate::msg::OperatorCommand::Reset, now, now));
        assert!(reset_from_ros(
            &good,
            verifier.as_mut().map_err(|e| &*e),
            &stats,
            &bus
        ));
        assert!(
            !reset_from_ros(&good, verifier.as_mut().map_err(|e| &*e), &stats, &bus),
            "replay"
        );
        let no_key = "operator key /x: not found".to_string();
        assert!(!reset_from_ros(&good, Err(&no_key), &stats, &bus));
        wait(&|| !remote.snapshot().unwrap().estop);
        assert!(!console_line("/quit", &bus));
        drop(forwarders);
        let (c, r) = (console.snapshot().unwrap(), remote.snapshot().unwrap());
        assert!(c.estop, "the console's e-stop survives ROS 2's reset");
        assert_eq!(c.drive, None);
        assert!(!r.estop && r.estop_events == 1, "{r:?}");
        assert_eq!(r.drive.map(|d| d.0), Some(tw));
        assert_eq!(inbox.get().unwrap().text, "go to the red ball");
    }

    /// What goes to the ROS 2 bridges is only what is new: no command before the first tick,
    /// none while no tick runs (a stalled loop goes quiet), at most one per period.
    #[test]
    fn the_gate_passes_only_new_records_at_most_once_a_period() {
        let mut g = Gate::new(20);
        assert!(!g.due(0, 100), "nothing before the first record");
        assert!(g.due(1, 100));
        assert!(!g.due(1, 200), "no new record: a stall publishes nothing");
        assert!(!g.due(2, 110), "within the period");
        assert!(g.due(3, 120));
        for t in 121..1000 {
            assert!(!g.due(3, t));
        }
        assert!(g.due(4, 1000));
        assert_eq!(
            from_hex(&to_hex(&[0, 1, 0xab, 0xff])),
            Some(vec![0, 1, 0xab, 0xff])
        );
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
    }

    /// A line that is not UTF-8 (or too long) is skipped: the console goes on, and the `/stop`
    /// and `/quit` after it still work.
    #[test]
    fn a_bad_console_line_is_skipped_not_the_end_of_the_console() {
        let bus = LocalBus::new();
        let sub = bus.subscribe(topics::TELEOP_CONSOLE, 16);
        let mut input = b"/drive 0.1 0\n\xff\xfe garbage \xc3\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_CONSOLE_LINE + 10));
        input.extend(b"\n/stop\n/quit\n/clear\n");
        let end = console_loop(std::io::Cursor::new(input), &bus);
        assert_eq!(end, ConsoleEnd::Quit);
        let mut got = Vec::new();
        while let Some(c) = sub.try_recv() {
            got.push(c);
        }
        assert_eq!(
            got,
            vec![
                TeleopCommand::Drive(Twist {
                    linear: 0.1,
                    angular: 0.0
                }),
                TeleopCommand::Estop
            ]
        );
        assert_eq!(
            console_loop(std::io::Cursor::new(b"\xff\n".to_vec()), &bus),
            ConsoleEnd::Eof
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: std::env::var("FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256),
            ..Default::default()
        })]

        /// Whatever was typed before it (bytes that are not UTF-8, control characters, very
        /// long lines, commands with bad numbers), a `/stop` line reaches the mux as an e-stop.
        #[test]
        fn a_stop_after_any_console_input_is_an_estop(
            lines in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), 0..30),
            long in proptest::prelude::any::<bool>(),
        ) {
            let bus = LocalBus::new();
            let sub = bus.subscribe(topics::TELEOP_CONSOLE, 4096);
            let mut input = Vec::new();
            for mut l in lines {
                l.retain(|&b| b != b'\n');
                let quits = String::from_utf8_lossy(&l)
                    .split_whitespace()
                    .next()
                    .is_some_and(|w| w == "/quit");
                if quits {
                    continue;
                }
                input.extend_from_slice(&l);
                input.push(b'\n');
            }
            if long {
                input.extend(std::iter::repeat_n(0xffu8, MAX_CONSOLE_LINE * 2));
                input.push(b'\n');
            }
            input.extend_from_slice(b"/stop\n");
            proptest::prop_assert_eq!(console_loop(std::io::Cursor::new(input), &bus), ConsoleEnd::Eof);
            let mut last = None;
            while let Some(c) = sub.try_recv() {
                last = Some(c);
            }
            proptest::prop_assert_eq!(last, Some(TeleopCommand::Estop));
        }
    }
}
