//! The brain as processes: `brainloop node NAME` runs one node of the graph as its own process
//! on the zenoh bus, and `brainloop up` starts the whole graph as such processes from the one
//! config and supervises them. May depend on config, brain, bus, regions, robot (the
//! integrator's node is `robot::run_with` with its remote regions fed from the bus) and msg.
//!
//! Which regions get their own process is the config's choice (`[regions.X].placement`:
//! `auto` means its own process under `up`, a thread under `run` / `sim`). The integrator's
//! node carries the integrator, the motor stage and the body (serial link or kinematic model)
//! and every region placed as a thread. A region's node builds the region with the same
//! builder as the one-process brain (`brain::build_region`) and publishes its embeddings; its
//! inputs come from the bus (instructions, body state) or its own devices (images, WAV).
//!
//! The supervisor (`up`) joins the bus as the hub every node connects to (it listens on
//! `--listen`, default `tcp/127.0.0.1:7447`), restarts a node that exits with exponential
//! backoff (0.25 s doubling to 8 s; back to 0.25 s after 30 s up), counts and logs each
//! restart, and on Ctrl-C / SIGTERM stops every node it started (SIGTERM, then SIGKILL after
//! 3 s), by process id. Each node is started with a parent-death signal, so killing the
//! supervisor with SIGKILL still stops them.

use crate::body::RobotParams;
use crate::brain::Sources;
use crate::bus::zenoh::{net_topics as nt, Auth, Tls, ZenohBus, ZenohOptions};
use crate::bus::{topics, Bus, LocalBus, Subscription};
use crate::config::{BodyKind, Config};
use crate::msg::{BodyState, Instruction, RegionId};
use crate::regions::language::InstructionInbox;
use crate::regions::sources::{BodyStateSource, Frame, ImageFiles, WavFile};
use crate::regions::ShedLevel;
use crate::util::monotonic_ns;
use anyhow::{bail, Context, Result};

pub mod body;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The default endpoint `up` listens on (zenoh's default port, loopback only).
pub const DEFAULT_LISTEN: &str = "tcp/127.0.0.1:7447";

/// Bus options from the command line, over `[bus]`.
#[derive(Debug, Clone, Default)]
pub struct NetArgs {
    /// `--listen` endpoints (replace `[bus].listen`).
    pub listen: Vec<String>,
    /// `--connect` endpoints (replace `[bus].connect`).
    pub connect: Vec<String>,
    /// `--ros-compat` (or `[bus].ros_compat`).
    pub ros_compat: bool,
}

impl NetArgs {
    /// Whether any endpoint was given on the command line.
    pub fn any(&self) -> bool {
        !self.listen.is_empty() || !self.connect.is_empty()
    }
}

/// The zenoh options of `cfg` with `args` applied; every endpoint is checked and the password
/// file read here, with an error naming the option.
pub fn bus_options(cfg: &Config, args: &NetArgs) -> Result<ZenohOptions> {
    let b = &cfg.bus;
    for ep in args.listen.iter().chain(&args.connect) {
        if !crate::config::valid_endpoint(ep) {
            bail!(
                "--listen/--connect {ep:?}: not a zenoh endpoint (tcp/HOST:PORT or tls/HOST:PORT)"
            );
        }
    }
    let pick = |cli: &Vec<String>, cfg: &Vec<String>| {
        if cli.is_empty() {
            cfg.clone()
        } else {
            cli.clone()
        }
    };
    let auth = match &b.auth {
        None => None,
        Some(a) => {
            let password = std::fs::read_to_string(&a.password_file)
                .with_context(|| format!("[bus.auth].password_file {}", a.password_file.display()))?
                .trim()
                .to_string();
            if password.is_empty() {
                bail!(
                    "[bus.auth].password_file {}: empty",
                    a.password_file.display()
                );
            }
            Some(Auth {
                user: a.user.clone(),
                password,
                dictionary_file: a.dictionary_file.clone(),
                operators: a.operators.clone(),
            })
        }
    };
    let listen = pick(&args.listen, &b.listen);
    let connect = pick(&args.connect, &b.connect);
    // Across hosts the bus is authenticated: only loopback use may stay open.
    if auth.is_none() {
        if let Some(ep) = listen
            .iter()
            .chain(&connect)
            .find(|ep| !loopback_endpoint(ep))
        {
            bail!("{ep}: the bus beyond this machine needs [bus.auth] (user/password and the operators list; see the README's \"Across machines\")");
        }
        if b.multicast {
            bail!("[bus].multicast = true reaches other machines: it needs [bus.auth]");
        }
    }
    Ok(ZenohOptions {
        robot: b.robot.clone(),
        listen,
        connect,
        multicast: b.multicast,
        ros_compat: b.ros_compat || args.ros_compat,
        domain_id: b.domain_id,
        max_delay_ns: b.max_delay_ms * 1_000_000,
        auth,
        tls: b.tls.as_ref().map(|t| Tls {
            root_ca_certificate: t.root_ca_certificate.clone(),
            listen_certificate: t.listen_certificate.clone(),
            listen_private_key: t.listen_private_key.clone(),
        }),
    })
}

/// Whether `ep` only reaches this machine (`127.0.0.0/8`, `localhost`, `[::1]`).
pub fn loopback_endpoint(ep: &str) -> bool {
    let addr = ep.split_once('/').map(|x| x.1).unwrap_or(ep);
    let host = addr.rsplit_once(':').map(|x| x.0).unwrap_or(addr);
    host.starts_with("127.") || host == "localhost" || host == "[::1]"
}

// ------------------------------------------------------------------ a region's node

/// What `brainloop node REGION` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct RegionNodeOptions {
    /// Configuration file.
    pub config: PathBuf,
    /// The region.
    pub region: Option<RegionId>,
    /// How to join the bus.
    pub net: NetArgs,
    /// First instruction (language).
    pub instruction: Option<String>,
    /// Camera frames from image files (vision).
    pub images: Vec<PathBuf>,
    /// Microphone from a WAV file (audition).
    pub wav: Option<PathBuf>,
    /// Stop after this many seconds.
    pub seconds: Option<f64>,
}

/// What a region's node did.
#[derive(Debug, Clone, Serialize)]
pub struct RegionNodeSummary {
    /// Region.
    pub region: &'static str,
    /// The key it published on.
    pub key: String,
    /// Embeddings published.
    pub published: u64,
    /// Inferences run.
    pub inferences: u64,
    /// Wall time, s.
    pub wall_s: f64,
}

/// The latest body state from the bus.
struct BusBodyState {
    sub: Subscription<BodyState>,
    last: Option<BodyState>,
}

impl BodyStateSource for BusBodyState {
    fn latest(&mut self, _now_ns: u64) -> Option<BodyState> {
        if let Some(s) = self.sub.latest() {
            self.last = Some(s);
        }
        self.last
    }
}

/// The newest camera frame from the bus (taken once).
struct BusFrames(Arc<std::sync::Mutex<Option<Frame>>>);

impl crate::regions::sources::FrameSource for BusFrames {
    fn latest(&mut self, _now_ns: u64) -> Option<Frame> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Run one region as its own process until `stop` (or `seconds`).
pub fn run_region_node(
    opts: &RegionNodeOptions,
    stop: Arc<AtomicBool>,
) -> Result<RegionNodeSummary> {
    let cfg = Config::load(&opts.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let id = opts.region.context("no region given")?;
    let name = id.name();
    match cfg.regions.get(name) {
        Some(rc) if rc.enabled => {}
        _ => bail!(
            "region {name} is not in {} (or enabled = false)",
            opts.config.display()
        ),
    }
    let net = ZenohBus::open(&bus_options(&cfg, &opts.net)?, name, monotonic_ns)
        .map_err(|e| anyhow::anyhow!("cannot join the zenoh bus: {e}"))?;
    let local = LocalBus::new();
    let inbox = InstructionInbox::new();
    let mut sources = Sources {
        instructions: inbox.clone(),
        ..Default::default()
    };
    let e = |e: crate::bus::zenoh::ZenohError| anyhow::anyhow!("zenoh bus: {e}");
    let mut forwarder = None;
    let mut camera_sub = None;
    match id {
        RegionId::Vision if opts.images.is_empty() => {
            // The camera of a body in another process (`node body`): its frames from the bus.
            let latest: Arc<std::sync::Mutex<Option<Frame>>> = Arc::default();
            let l2 = latest.clone();
            let key = net.keys().key(&nt::CAMERA);
            let sub = {
                use zenoh::Wait;
                net.session()
                    .declare_subscriber(key.clone())
                    .callback(move |sample| {
                        match crate::bus::wire::ImageMsg::from_cdr(&sample.payload().to_bytes()) {
                            Ok(m) => {
                                let f = Frame {
                                    width: m.width,
                                    height: m.height,
                                    stamp_ns: monotonic_ns(),
                                    data: m.data,
                                };
                                *l2.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
                            }
                            Err(e) => tracing::warn!("dropped a camera frame: {e}"),
                        }
                    })
                    .wait()
                    .map_err(|e| anyhow::anyhow!("zenoh bus: {e}"))?
            };
            tracing::info!(key = %key, "vision: camera frames from the bus");
            camera_sub = Some(sub);
            sources.frames = Some(Box::new(BusFrames(latest)));
        }
        RegionId::Vision => {
            let rate = cfg.regions[name].rate_hz;
            sources.frames = Some(Box::new(
                ImageFiles::open(&opts.images, rate).map_err(|e| anyhow::anyhow!("{e}"))?,
            ));
        }
        RegionId::Language => {
            let sub = local.subscribe(topics::INSTRUCTION, 16);
            net.route_in(&local, topics::INSTRUCTION, nt::INSTRUCTION)
                .map_err(e)?;
            if let Some(t) = &opts.instruction {
                inbox.set(Instruction {
                    stamp_ns: monotonic_ns(),
                    text: t.clone(),
                });
            }
            let (inbox, st) = (inbox.clone(), stop.clone());
            forwarder = Some(
                std::thread::Builder::new()
                    .name("instruction-bridge".into())
                    .spawn(move || {
                        while !st.load(Ordering::Relaxed) {
                            if let Some(i) = sub.recv_timeout(Duration::from_millis(20)) {
                                tracing::info!(text = %i.text, "instruction");
                                inbox.set(i);
                            }
                        }
                    })?,
            );
        }
        RegionId::Audition => {
            let wav = opts
                .wav
                .as_ref()
                .context("the audition node needs a microphone: --wav FILE")?;
            sources.audio = Some(Box::new(
                WavFile::open(wav, true).map_err(|e| anyhow::anyhow!("{e}"))?,
            ));
        }
        RegionId::Proprioception => {
            let sub = local.subscribe(topics::BODY_STATE, 4);
            net.route_in(&local, topics::BODY_STATE, nt::BODY_STATE)
                .map_err(e)?;
            sources.body = Some(Box::new(BusBodyState { sub, last: None }));
        }
    }
    // Load shedding follows the integrator's drowsiness, from its health on the bus (until
    // the first health message arrives, the region sheds nothing).
    let shed = ShedLevel::new();
    let health = health_subscriber(&net, shed.clone()).map_err(e)?;
    let robot = RobotParams::load_default();
    let region = crate::brain::build_region(&cfg, id, &robot, sources, shed)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut publisher = net.embedding_publisher(id).map_err(e)?;
    let key = publisher.key().to_string();
    let clock: Arc<dyn Fn() -> u64 + Send + Sync> = Arc::new(monotonic_ns);
    let handle = crate::regions::spawn(region, clock, move |emb| {
        publisher.publish(emb);
    })?;
    tracing::info!(region = name, key = %key, "region node running");
    let t0 = monotonic_ns();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
        if let Some(s) = opts.seconds {
            if (monotonic_ns() - t0) as f64 * 1e-9 >= s {
                break;
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    let status = handle.status();
    let (inferences, published) = (
        status.inferences.load(Ordering::Relaxed),
        status.published.load(Ordering::Relaxed),
    );
    let _ = handle.stop();
    drop(health);
    drop(camera_sub);
    if let Some(f) = forwarder {
        let _ = f.join();
    }
    drop(net);
    Ok(RegionNodeSummary {
        region: name,
        key,
        published,
        inferences,
        wall_s: (monotonic_ns() - t0) as f64 * 1e-9,
    })
}

/// Follow the integrator's health: its shed level drives this region's load shedding.
fn health_subscriber(
    net: &ZenohBus,
    shed: ShedLevel,
) -> Result<zenoh::pubsub::Subscriber<()>, crate::bus::zenoh::ZenohError> {
    use zenoh::Wait;
    let key = net.keys().key(&nt::HEALTH);
    net.session()
        .declare_subscriber(key)
        .callback(move |sample| {
            if let Ok(h) = crate::bus::wire::LoopHealthMsg::from_cdr(&sample.payload().to_bytes()) {
                shed.set(u32::from(h.shed_level));
            }
        })
        .wait()
        .map_err(|e| crate::bus::zenoh::ZenohError::Zenoh(e.to_string()))
}

// ------------------------------------------------------------------ the supervisor

/// What `brainloop up` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Configuration file.
    pub config: PathBuf,
    /// Override of `[body].kind` (`serial` or `kinematic`).
    pub body: Option<BodyKind>,
    /// Override of `[body].port`.
    pub port: Option<String>,
    /// First instruction.
    pub instruction: Option<String>,
    /// Camera frames for vision (image files).
    pub images: Vec<PathBuf>,
    /// Microphone for audition (WAV).
    pub wav: Option<PathBuf>,
    /// Stop after this many seconds.
    pub seconds: Option<f64>,
    /// How to join the bus.
    pub net: NetArgs,
    /// (`--body sim`) The scenario the simulated body's node runs.
    pub scenario: Option<String>,
    /// (`--body sim`) Its layout seed.
    pub seed: Option<u64>,
}

/// One node the supervisor runs.
#[derive(Debug, Clone, Serialize)]
pub struct NodeSpec {
    /// Node name (`integrator`, `vision`, ...).
    pub name: String,
    /// Arguments after the executable.
    pub args: Vec<String>,
}

/// What `up` did.
#[derive(Debug, Clone, Serialize)]
pub struct UpSummary {
    /// The endpoint every node connected to.
    pub endpoint: String,
    /// Nodes and their restarts.
    pub nodes: Vec<NodeRecord>,
    /// Wall time, s.
    pub wall_s: f64,
}

/// One node's record.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRecord {
    /// Node name.
    pub name: String,
    /// Times it was restarted after exiting.
    pub restarts: u32,
    /// Its last exit status (`None` while it ran to the end).
    pub last_exit: Option<String>,
}

/// The endpoint a node connects to for the supervisor's listen endpoint `listen`
/// (`0.0.0.0` / `[::]` become loopback).
fn connect_endpoint(listen: &str) -> String {
    listen
        .replace("/0.0.0.0:", "/127.0.0.1:")
        .replace("/[::]:", "/127.0.0.1:")
}

/// The nodes of the graph for `opts`: one process per region the config places in its own
/// process under `up` (and whose input this run has), and the integrator's node with the rest.
pub fn plan(cfg: &Config, opts: &UpOptions, endpoint: &str) -> Result<Vec<NodeSpec>> {
    let graph = cfg.graph();
    // With the simulated body, the scenario's instruction unless one is given.
    let scenario = match (&opts.body, &opts.scenario) {
        (Some(BodyKind::Sim), s) => {
            let name = s.clone().unwrap_or_else(|| "01-red-ball".into());
            Some(
                crate::sim::scenario::Scenario::find(std::path::Path::new("scenarios"), &name)
                    .with_context(|| format!("--scenario {name}"))?,
            )
        }
        _ => None,
    };
    let instruction = opts
        .instruction
        .clone()
        .or_else(|| scenario.as_ref().map(|s| s.instruction.clone()));
    let mut remote = Vec::new();
    let mut nodes = Vec::new();
    let sim = opts.body == Some(BodyKind::Sim);
    let common = |name: &str| {
        let mut a = vec![
            "node".to_string(),
            name.to_string(),
            "--config".into(),
            opts.config.display().to_string(),
            "--connect".into(),
            endpoint.to_string(),
            // Every node listens too (loopback, any port): the peers gossip these and connect
            // to each other directly, so the supervisor is not on the data path.
            "--listen".into(),
            "tcp/127.0.0.1:0".into(),
        ];
        if opts.net.ros_compat {
            a.push("--ros-compat".into());
        }
        a
    };
    for id in RegionId::ALL {
        let name = id.name();
        let Some(rc) = cfg.regions.get(name) else {
            continue;
        };
        if !graph.runs(name) || !rc.placement.own_process(true) {
            continue;
        }
        let mut args = common(name);
        match id {
            // The simulated body's camera, over the bus.
            RegionId::Vision if sim => {}
            RegionId::Vision if opts.images.is_empty() => {
                tracing::warn!("vision: no camera (--images): region off");
                continue;
            }
            RegionId::Vision => {
                args.push("--images".into());
                args.extend(opts.images.iter().map(|p| p.display().to_string()));
            }
            RegionId::Audition => match &opts.wav {
                None => {
                    tracing::warn!("audition: no microphone (--wav): region off");
                    continue;
                }
                Some(w) => args.extend(["--wav".into(), w.display().to_string()]),
            },
            RegionId::Language => {
                if let Some(t) = &instruction {
                    args.extend(["--instruction".into(), t.clone()]);
                }
            }
            RegionId::Proprioception => {}
        }
        remote.push(name);
        nodes.push(NodeSpec {
            name: name.into(),
            args,
        });
    }
    if let Some(sc) = &scenario {
        let mut args = common("body");
        args.extend(["--scenario".into(), sc.name.clone()]);
        if let Some(seed) = opts.seed {
            args.extend(["--seed".into(), seed.to_string()]);
        }
        if let Some(s) = opts.seconds {
            args.extend(["--seconds".into(), s.to_string()]);
        }
        nodes.push(NodeSpec {
            name: "body".into(),
            args,
        });
    }
    let mut args = common("integrator");
    if !remote.is_empty() {
        args.extend(["--remote".into(), remote.join(",")]);
    }
    if let Some(b) = opts.body {
        let b = match b {
            BodyKind::Serial => "serial",
            BodyKind::Kinematic => "kinematic",
            BodyKind::Sim => "sim",
        };
        args.extend(["--body".into(), b.into()]);
    }
    if let Some(p) = &opts.port {
        args.extend(["--port".into(), p.clone()]);
    }
    if !remote.contains(&"language") {
        if let Some(t) = &instruction {
            args.extend(["--instruction".into(), t.clone()]);
        }
    }
    for p in &opts.images {
        if !remote.contains(&"vision") {
            args.extend(["--images".into(), p.display().to_string()]);
        }
    }
    if let (Some(w), false) = (&opts.wav, remote.contains(&"audition")) {
        args.extend(["--wav".into(), w.display().to_string()]);
    }
    args.push("--no-console".into());
    nodes.push(NodeSpec {
        name: "integrator".into(),
        args,
    });
    Ok(nodes)
}

/// First restart delay.
pub const BACKOFF_MIN: Duration = Duration::from_millis(250);
/// Longest restart delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// A node up this long has its backoff reset.
pub const BACKOFF_RESET: Duration = Duration::from_secs(30);

/// Start the graph as processes and supervise them until `stop` (or `seconds`).
pub fn up(opts: &UpOptions, stop: Arc<AtomicBool>) -> Result<UpSummary> {
    let cfg = Config::load(&opts.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut bus = bus_options(&cfg, &opts.net)?;
    if bus.listen.is_empty() {
        bus.listen = vec![DEFAULT_LISTEN.to_string()];
    }
    let endpoint = connect_endpoint(&bus.listen[0]);
    let nodes = plan(&cfg, opts, &endpoint)?;
    let exe = std::env::current_exe().context("cannot find the brainloop executable")?;
    // The supervisor is a peer like the others: the hub every node connects to.
    let hub = ZenohBus::open(&bus, "up", monotonic_ns)
        .map_err(|e| anyhow::anyhow!("cannot listen on {:?}: {e}", bus.listen))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("up")
        .enable_all()
        .build()
        .context("cannot start the supervisor's runtime")?;
    tracing::info!(endpoint = %endpoint, nodes = ?nodes.iter().map(|n| &n.name).collect::<Vec<_>>(), "up");
    let t0 = std::time::Instant::now();
    let records = rt.block_on(supervise(exe, nodes, stop, opts.seconds));
    drop(hub);
    Ok(UpSummary {
        endpoint,
        nodes: records,
        wall_s: t0.elapsed().as_secs_f64(),
    })
}

async fn supervise(
    exe: PathBuf,
    nodes: Vec<NodeSpec>,
    stop: Arc<AtomicBool>,
    seconds: Option<f64>,
) -> Vec<NodeRecord> {
    let (quit_tx, quit_rx) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = nodes
        .into_iter()
        .map(|n| tokio::spawn(keep_running(exe.clone(), n, quit_rx.clone())))
        .collect();
    let t0 = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let timed_out = seconds.is_some_and(|s| t0.elapsed().as_secs_f64() >= s);
        if stop.load(Ordering::SeqCst) || timed_out {
            break;
        }
    }
    tracing::info!("up: stopping every node");
    let _ = quit_tx.send(true);
    let mut out = Vec::new();
    for t in tasks {
        if let Ok(r) = t.await {
            out.push(r);
        }
    }
    out
}

/// Run one node, restarting it with backoff whenever it exits, until `quit`.
async fn keep_running(
    exe: PathBuf,
    node: NodeSpec,
    mut quit: tokio::sync::watch::Receiver<bool>,
) -> NodeRecord {
    let mut rec = NodeRecord {
        name: node.name.clone(),
        restarts: 0,
        last_exit: None,
    };
    let mut backoff = BACKOFF_MIN;
    loop {
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.args(&node.args)
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.env("BRAINLOOP_NODE", &node.name);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to send SIGTERM to the
        // child when this process dies, so no node outlives a killed supervisor.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let started = std::time::Instant::now();
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(node = %node.name, "cannot start: {e}");
                rec.last_exit = Some(format!("cannot start: {e}"));
                return rec;
            }
        };
        let pid = child.id();
        tracing::info!(node = %node.name, pid, "node started");
        // Every line a node prints, prefixed with its name.
        if let Some(out) = child.stdout.take() {
            tokio::spawn(prefix_lines(out, node.name.clone(), false));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(prefix_lines(err, node.name.clone(), true));
        }
        tokio::select! {
            status = child.wait() => {
                let s = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                if *quit.borrow() {
                    return rec;
                }
                rec.restarts += 1;
                rec.last_exit = Some(s.clone());
                if started.elapsed() >= BACKOFF_RESET {
                    backoff = BACKOFF_MIN;
                }
                tracing::warn!(node = %node.name, pid, status = %s, restarts = rec.restarts, backoff_ms = backoff.as_millis() as u64, "node exited: restarting");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = quit.changed() => return rec,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            _ = quit.changed() => {
                stop_child(&mut child, &node.name).await;
                return rec;
            }
        }
    }
}

async fn prefix_lines<R: tokio::io::AsyncRead + Unpin>(r: R, name: String, stderr: bool) {
    use tokio::io::AsyncBufReadExt;
    let mut r = tokio::io::BufReader::new(r);
    let mut buf = Vec::new();
    // Bytes that are not UTF-8 are printed lossily: a bad line never ends the node's log.
    while let Ok(n) = r.read_until(b'\n', &mut buf).await {
        if n == 0 {
            break;
        }
        let l = String::from_utf8_lossy(&buf);
        let l = l.trim_end_matches(['\n', '\r']);
        if stderr {
            eprintln!("[{name}] {l}");
        } else {
            println!("[{name}] {l}");
        }
        buf.clear();
    }
}

/// SIGTERM, then SIGKILL after 3 s: the node finishes its summary and zeroes its motors.
async fn stop_child(child: &mut tokio::process::Child, name: &str) {
    if let Some(pid) = child.id() {
        // SAFETY: sending a signal to our own child's pid.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    match tokio::time::timeout(Duration::from_secs(3), child.wait()).await {
        Ok(_) => tracing::info!(node = name, "node stopped"),
        Err(_) => {
            tracing::warn!(node = name, "node did not stop within 3 s: killed");
            let _ = child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_runs_each_region_that_has_an_input_as_a_node_and_the_integrator_with_the_rest() {
        let cfg = Config::default();
        let opts = UpOptions {
            config: "config/default.toml".into(),
            body: Some(BodyKind::Kinematic),
            instruction: Some("go to the red ball".into()),
            ..Default::default()
        };
        let nodes = plan(&cfg, &opts, "tcp/127.0.0.1:7447").unwrap();
        let names: Vec<_> = nodes.iter().map(|n| n.name.as_str()).collect();
        // No camera, no microphone: vision and audition do not run.
        assert_eq!(names, ["language", "proprioception", "integrator"]);
        let lang = &nodes[0].args;
        assert!(lang
            .windows(2)
            .any(|w| w == ["--instruction", "go to the red ball"]));
        let integ = &nodes[2].args;
        assert!(integ
            .windows(2)
            .any(|w| w == ["--remote", "language,proprioception"]));
        assert!(integ
            .windows(2)
            .any(|w| w == ["--connect", "tcp/127.0.0.1:7447"]));
        assert!(!integ.contains(&"--instruction".to_string()));
        // A region placed as a thread stays in the integrator's process.
        let mut cfg2 = cfg.clone();
        cfg2.regions.get_mut("language").unwrap().placement =
            crate::config::RegionPlacement::Thread;
        let nodes = plan(&cfg2, &opts, "tcp/127.0.0.1:7447").unwrap();
        let names: Vec<_> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["proprioception", "integrator"]);
        assert!(nodes[1]
            .args
            .windows(2)
            .any(|w| w == ["--instruction", "go to the red ball"]));
    }

    #[test]
    fn beyond_loopback_the_bus_needs_authentication() {
        let cfg = Config::default();
        let net = |ep: &str| NetArgs {
            listen: vec![ep.into()],
            ..Default::default()
        };
        assert!(bus_options(&cfg, &net("tcp/127.0.0.1:7447")).is_ok());
        assert!(bus_options(&cfg, &net("tcp/localhost:7447")).is_ok());
        let err = bus_options(&cfg, &net("tcp/0.0.0.0:7447"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[bus.auth]"), "{err}");
        let mut multi = cfg.clone();
        multi.bus.multicast = true;
        assert!(bus_options(&multi, &NetArgs::default()).is_err());
    }

    #[test]
    fn listen_on_any_address_connects_on_loopback() {
        assert_eq!(connect_endpoint("tcp/0.0.0.0:7447"), "tcp/127.0.0.1:7447");
        assert_eq!(connect_endpoint("tcp/[::]:7447"), "tcp/127.0.0.1:7447");
        assert_eq!(connect_endpoint("tcp/10.0.0.2:7447"), "tcp/10.0.0.2:7447");
    }

    #[test]
    fn bad_endpoints_are_refused_with_the_option_named() {
        let cfg = Config::default();
        let err = bus_options(
            &cfg,
            &NetArgs {
                connect: vec!["127.0.0.1:7447".into()],
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("--listen/--connect"), "{err}");
    }
}
