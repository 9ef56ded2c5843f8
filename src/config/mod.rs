//! The one configuration file that describes the whole brain: regions, integrator, drowsiness,
//! the edges between regions with their feedback gains, the body link, motion limits and teleop.
//! May depend on msg only; [`graph`] resolves it into the brain graph everything is built from.
//!
//! The file is parsed once at start-up and validated as a whole: unknown keys, wrong types,
//! out-of-range values and edges that name a missing node are all collected and reported
//! together, each with its key path and what is allowed.

pub mod graph;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path, e.g. `regions.vision.rate_hz`.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a configuration file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrors {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// File that was being read.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path}: not valid TOML: {message}")]
    Syntax {
        /// File that was being parsed.
        path: String,
        /// Parser message (with line and column).
        message: String,
    },
    /// The file parsed but breaks one or more rules.
    #[error("{} error(s) in config:\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigError>),
}

/// The whole brain's configuration.
///
/// A file that names no `[regions.*]` gets the default regions; a region section fills its
/// missing keys from that region's defaults; a file with no `[[edges]]` gets the default
/// wiring of the nodes it has. The defaults are [`DEFAULT_CONFIG`] (`config/default.toml`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The fixed-rate integrator (integration/reasoning region).
    #[serde(default)]
    pub integrator: IntegratorConfig,
    /// The drowsiness signal and sleep.
    #[serde(default)]
    pub drowsiness: DrowsinessConfig,
    /// Sensory regions by name (`vision`, `language`, `audition`, `proprioception`).
    #[serde(default)]
    pub regions: BTreeMap<String, RegionConfig>,
    /// Directed edges of the brain graph with their feedback gains (seed 000).
    #[serde(default)]
    pub edges: Vec<EdgeConfig>,
    /// The body: simulator, kinematic model or serial link to the motor controller.
    #[serde(default)]
    pub body: BodyConfig,
    /// Motion limits applied by the motor stage before anything reaches a motor.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The override mux: teleop sources and autonomy, with priorities and timeouts.
    #[serde(default)]
    pub teleop: TeleopConfig,
    /// The networked bus between the brain's processes (zenoh).
    #[serde(default)]
    pub bus: BusConfig,
}

/// The default configuration file, `config/default.toml`, compiled in: the one place the
/// default regions and edges are written.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

/// How the integrator waits for its next absolute deadline.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WaitStrategy {
    /// `clock_nanosleep(TIMER_ABSTIME)` only: cheapest, up to milliseconds late on a VM.
    Sleep,
    /// Sleep until `deadline - spin_margin`, then spin on the monotonic clock.
    SleepSpin,
    /// Spin for the whole period (one core fully used).
    Spin,
}

/// Configuration of the fixed-rate integrator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IntegratorConfig {
    /// Tick rate in Hz (10..=1000).
    pub rate_hz: f64,
    /// Working-memory capacity in ticks (16..=65536).
    pub context_capacity: usize,
    /// Width of the common token space every region is projected into (8..=1024).
    pub width: usize,
    /// Wait strategy for the absolute deadline.
    pub wait: WaitStrategy,
    /// Spin margin before the deadline in microseconds (0..=20000), for `sleep_spin`.
    pub spin_margin_us: u64,
    /// SCHED_FIFO priority (1..=99) when permitted; 0 disables real-time scheduling.
    pub realtime_priority: u32,
    /// Lock memory (`mlockall`) when permitted.
    pub lock_memory: bool,
    /// Seed of the fixed initialisation of connector weights until learned ones exist.
    pub seed: u64,
}

impl Default for IntegratorConfig {
    fn default() -> Self {
        Self {
            rate_hz: 50.0,
            context_capacity: 1024,
            width: 64,
            wait: WaitStrategy::SleepSpin,
            spin_margin_us: 2000,
            realtime_priority: 50,
            lock_memory: true,
            seed: 1,
        }
    }
}

/// Drowsiness: a leaky integrator of missed deadlines and staleness, fed back into the loop.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DrowsinessConfig {
    /// Time constant of the leaky integrator in seconds (0.05..=600).
    pub time_constant_s: f64,
    /// Weight of one missed tick deadline (0..=10).
    pub miss_weight: f64,
    /// Weight of a stale region per tick (0..=10).
    pub stale_weight: f64,
    /// Above this, speed is scaled down (0..=1).
    pub slow_threshold: f64,
    /// Above this, heavy regions are told to shed load (0..=1).
    pub shed_threshold: f64,
    /// Above this for `sleep_after_s`, the brain asks for sleep (0..=1).
    pub sleep_threshold: f64,
    /// How long drowsiness must stay above `sleep_threshold` before sleep is requested (0..=600 s).
    pub sleep_after_s: f64,
    /// Speed scale at full drowsiness (0..=1).
    pub min_speed_scale: f64,
    /// Whether drowsiness is fed back at all (an ablation switch).
    pub feedback: bool,
}

impl Default for DrowsinessConfig {
    fn default() -> Self {
        Self {
            time_constant_s: 1.0,
            miss_weight: 1.0,
            stale_weight: 0.3,
            slow_threshold: 0.2,
            shed_threshold: 0.4,
            sleep_threshold: 0.6,
            sleep_after_s: 1.0,
            min_speed_scale: 0.2,
            feedback: true,
        }
    }
}

/// What a region does when its model fails at run time.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Go on without this region (it is treated as stale).
    Continue,
    /// Stop the robot.
    Stop,
}

/// One sensory region.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RegionConfig {
    /// Whether the region runs.
    pub enabled: bool,
    /// Model name in `models/manifest.toml` (empty for model-free regions).
    pub model: String,
    /// Rate in Hz (0.1..=1000).
    pub rate_hz: f64,
    /// ONNX Runtime intra-op threads (1..=64).
    pub threads: usize,
    /// The region's output is stale after this many milliseconds (1..=60000).
    pub stale_after_ms: u64,
    /// What to do when the region fails.
    pub on_failure: OnFailure,
    /// Where it runs: `auto` (a thread of the brain's process under `run` and `sim`, its own
    /// `brainloop node` process under `up`), `thread` (always in the integrator's process) or
    /// `process` (always its own process: `run` then reads it from the bus).
    pub placement: RegionPlacement,
}

/// Where a region runs (see [`RegionConfig::placement`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RegionPlacement {
    /// A thread in one process under `run` / `sim`, its own process under `up`.
    #[default]
    Auto,
    /// Always a thread of the integrator's process.
    Thread,
    /// Always its own process (`brainloop node NAME`), on the bus.
    Process,
}

impl RegionPlacement {
    /// Whether the region runs as its own process, under `up` (`true`) or `run`/`sim`.
    pub fn own_process(self, under_up: bool) -> bool {
        match self {
            RegionPlacement::Auto => under_up,
            RegionPlacement::Thread => false,
            RegionPlacement::Process => true,
        }
    }
}

/// The networked bus (zenoh): how the brain's processes, the console and ROS 2 tools on
/// rmw_zenoh reach each other. Peer mode, no router needed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// Robot name: the first segment of every key after `brainloop/` (`brainloop/<robot>/...`),
    /// and the ROS 2 namespace. Letters, digits, `_` and `-`.
    pub robot: String,
    /// Endpoints to listen on (`tcp/127.0.0.1:7447`). Empty: `run` and `sim` do not join
    /// the bus unless a region runs elsewhere; `up` listens on `tcp/127.0.0.1:7447`.
    pub listen: Vec<String>,
    /// Endpoints to connect to.
    pub connect: Vec<String>,
    /// zenoh multicast scouting (off: endpoints only, traffic stays where they point; on for
    /// multi-host discovery).
    pub multicast: bool,
    /// Use rmw_zenoh's key expressions, attachments and liveliness tokens so that ROS 2 tools
    /// on rmw_zenoh (Jazzy) see the brain's topics.
    pub ros_compat: bool,
    /// ROS 2 domain id for `ros_compat` keys (0..=232).
    pub domain_id: u32,
    /// A message whose receive-time delay exceeds the fastest one seen from its publisher
    /// by more than this is dropped as late (a partition that heals never delivers old data
    /// as fresh), ms (1..=60000).
    pub max_delay_ms: u64,
    /// zenoh user/password authentication (and the access-control list that lets only the
    /// listed users publish on the drive, e-stop and instruction keys).
    pub auth: Option<BusAuthConfig>,
    /// TLS for the links (`tls/host:port` endpoints).
    pub tls: Option<BusTlsConfig>,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            robot: "robot".into(),
            listen: Vec::new(),
            connect: Vec::new(),
            multicast: false,
            ros_compat: false,
            domain_id: 0,
            max_delay_ms: 250,
            auth: None,
            tls: None,
        }
    }
}

/// zenoh user/password authentication of the bus.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BusAuthConfig {
    /// This process's user name (`brain` for the brain's own nodes).
    pub user: String,
    /// File holding this user's password (one line).
    pub password_file: PathBuf,
    /// The `user:password` lines this process accepts from peers (zenoh's dictionary file).
    pub dictionary_file: PathBuf,
    /// Users allowed to publish on the drive, e-stop-clear and instruction keys (operators
    /// and the brain itself); any other authenticated user is denied those keys.
    #[serde(default = "default_operators")]
    pub operators: Vec<String>,
}

fn default_operators() -> Vec<String> {
    vec!["brain".into(), "operator".into()]
}

/// TLS for the bus's links.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BusTlsConfig {
    /// CA certificate (PEM) that signs the peers' certificates.
    pub root_ca_certificate: PathBuf,
    /// This process's certificate (PEM).
    pub listen_certificate: PathBuf,
    /// This process's private key (PEM).
    pub listen_private_key: PathBuf,
}

impl Default for RegionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            model: String::new(),
            rate_hz: 10.0,
            threads: 1,
            stale_after_ms: 500,
            on_failure: OnFailure::Continue,
            placement: RegionPlacement::Auto,
        }
    }
}

/// One directed edge of the brain graph.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Source node: a region name, `integrator`, `memory` or `emotion`.
    pub from: String,
    /// Destination node, same names as `from`.
    pub to: String,
    /// Feedback gain (0..=4): how strongly this edge contributes.
    #[serde(default = "one")]
    pub gain: f64,
}

fn one() -> f64 {
    1.0
}

/// Which body the brain drives.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BodyKind {
    /// The embedded simulator (MuJoCo when available, else the kinematic model).
    Sim,
    /// The pure-Rust kinematic diff-drive model.
    Kinematic,
    /// A real motor controller over a serial port.
    Serial,
}

/// The body link.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BodyConfig {
    /// Which body.
    pub kind: BodyKind,
    /// Serial port of the motor controller.
    pub port: String,
    /// Baud rate (9600..=2000000).
    pub baud: u32,
    /// Serial read timeout in milliseconds (1..=1000).
    pub read_timeout_ms: u64,
    /// Telemetry older than this is stale and the robot stops (1..=10000 ms).
    pub stale_after_ms: u64,
}

impl Default for BodyConfig {
    fn default() -> Self {
        Self {
            kind: BodyKind::Sim,
            port: "/dev/ttyACM0".into(),
            baud: 115_200,
            read_timeout_ms: 10,
            stale_after_ms: 200,
        }
    }
}

/// Motion limits enforced by the motor stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Maximum linear speed in m/s (0..=5).
    pub max_linear_mps: f64,
    /// Maximum angular speed in rad/s (0..=20).
    pub max_angular_rps: f64,
    /// Maximum linear acceleration in m/s^2 (0.01..=20).
    pub max_linear_accel: f64,
    /// Maximum angular acceleration in rad/s^2 (0.01..=100).
    pub max_angular_accel: f64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_linear_mps: 0.5,
            max_angular_rps: 2.0,
            max_linear_accel: 1.0,
            max_angular_accel: 6.0,
        }
    }
}

/// One teleop source of the override mux (twist_mux style).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TeleopSourceConfig {
    /// Priority (0..=255, higher wins; must be above `autonomy_priority`). Default:
    /// `[teleop].priority`.
    pub priority: Option<u8>,
    /// A command older than this no longer overrides (10..=10000 ms). Default:
    /// `[teleop].timeout_ms`.
    pub timeout_ms: Option<u64>,
}

/// A teleop source with its defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeleopSource {
    /// Priority, higher wins.
    pub priority: u8,
    /// Timeout, ms.
    pub timeout_ms: u64,
}

/// The override mux: e-stop (always wins, latched) > the freshest-highest teleop source >
/// autonomy. Each teleop source has a priority and a timeout.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TeleopConfig {
    /// Default timeout of a teleop source (10..=10000 ms).
    pub timeout_ms: u64,
    /// Default priority of a teleop source (0..=255, above `autonomy_priority`).
    pub priority: u8,
    /// Priority of the brain's own commands (0..=255).
    pub autonomy_priority: u8,
    /// Named teleop sources (`operator`: the teleop console, `brainloop console`; `console`:
    /// the run's stdin console; `remote`: `/brainloop/teleop/cmd_vel` over ROS 2 / DDS). At
    /// least one: e-stop comes through them.
    pub sources: BTreeMap<String, TeleopSourceConfig>,
    /// Assist mode stops forward teleop motion at this free distance ahead, m.
    pub assist_stop_m: f64,
    /// ... and slows it linearly from this distance, m.
    pub assist_slow_m: f64,
    /// The operator key file: commands of `brainloop console` are signed with it, and only
    /// signed ones drive (empty: `$BRAINLOOP_OPERATOR_KEY`, else
    /// `~/.config/brainloop/operator.key`, created by the brain on first use).
    pub operator_key: String,
}

impl Default for TeleopConfig {
    fn default() -> Self {
        let src = |priority: Option<u8>| TeleopSourceConfig {
            priority,
            timeout_ms: None,
        };
        Self {
            timeout_ms: 500,
            priority: 200,
            autonomy_priority: 100,
            sources: BTreeMap::from([
                (
                    "operator".to_string(),
                    TeleopSourceConfig {
                        priority: Some(220),
                        timeout_ms: Some(300),
                    },
                ),
                ("console".to_string(), src(None)),
                ("remote".to_string(), src(Some(150))),
            ]),
            assist_stop_m: 0.15,
            assist_slow_m: 0.45,
            operator_key: String::new(),
        }
    }
}

impl TeleopConfig {
    /// The sources with their defaults applied, highest priority first (ties by name).
    pub fn resolved_sources(&self) -> Vec<(String, TeleopSource)> {
        let mut v: Vec<(String, TeleopSource)> = self
            .sources
            .iter()
            .map(|(n, s)| {
                (
                    n.clone(),
                    TeleopSource {
                        priority: s.priority.unwrap_or(self.priority),
                        timeout_ms: s.timeout_ms.unwrap_or(self.timeout_ms),
                    },
                )
            })
            .collect();
        v.sort_by(|a, b| b.1.priority.cmp(&a.1.priority).then(a.0.cmp(&b.0)));
        v
    }
}

impl Default for Config {
    /// The defaults: `config/default.toml`.
    fn default() -> Self {
        static DEFAULT: std::sync::OnceLock<Config> = std::sync::OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                Config::parse(DEFAULT_CONFIG)
                    .unwrap_or_else(|e| panic!("config/default.toml (compiled in) is invalid: {e}"))
            })
            .clone()
    }
}

/// Fill what a file leaves out from the default file: the default regions when it names none,
/// each known region's missing keys from its default section, and the default edges between
/// the nodes present when it has no `[[edges]]`.
fn apply_defaults(value: &mut toml::Value) {
    let Ok(toml::Value::Table(defaults)) = toml::from_str::<toml::Value>(DEFAULT_CONFIG) else {
        return;
    };
    let toml::Value::Table(root) = value else {
        return;
    };
    let default_regions = defaults
        .get("regions")
        .and_then(|r| r.as_table())
        .cloned()
        .unwrap_or_default();
    match root.get_mut("regions") {
        None => {
            root.insert(
                "regions".into(),
                toml::Value::Table(default_regions.clone()),
            );
        }
        Some(toml::Value::Table(regions)) => {
            for (name, section) in regions.iter_mut() {
                if let (Some(toml::Value::Table(d)), toml::Value::Table(t)) =
                    (default_regions.get(name), section)
                {
                    for (k, v) in d {
                        t.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
        }
        Some(_) => {}
    }
    if !root.contains_key("edges") {
        let present: Vec<String> = root
            .get("regions")
            .and_then(|r| r.as_table())
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        let keep =
            |n: &str| present.iter().any(|p| p == n) || !graph::region_kinds().any(|k| k.name == n);
        let edges: Vec<toml::Value> = defaults
            .get("edges")
            .and_then(|e| e.as_array())
            .map(|a| {
                a.iter()
                    .filter(|e| {
                        let end = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("");
                        keep(end("from")) && keep(end("to"))
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        root.insert("edges".into(), toml::Value::Array(edges));
    }
}

/// Whether `ep` is a zenoh endpoint this build speaks (`tcp/host:port`, `tls/host:port`).
pub fn valid_endpoint(ep: &str) -> bool {
    let Some((proto, addr)) = ep.split_once('/') else {
        return false;
    };
    let addr = addr.split('#').next().unwrap_or("");
    let Some((host, port)) = addr.rsplit_once(':') else {
        return false;
    };
    matches!(proto, "tcp" | "tls") && !host.is_empty() && port.parse::<u16>().is_ok()
}

impl Config {
    /// Read, parse and validate a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigErrors::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigErrors::Syntax { message, .. } => ConfigErrors::Syntax {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parse and validate configuration text, collecting every error.
    pub fn parse(text: &str) -> Result<Self, ConfigErrors> {
        let mut value: toml::Value = toml::from_str(text).map_err(|e| ConfigErrors::Syntax {
            path: "<text>".into(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        apply_defaults(&mut value);
        let mut errors = Vec::new();
        // Deserialize; on each error, record it, remove the offending key (its default then
        // applies) and try again, so that every unknown key and bad type is reported at once.
        let config = loop {
            let result: Result<Config, _> = serde_path_to_error::deserialize(value.clone());
            match result {
                Ok(c) => break Some(c),
                Err(err) => {
                    let inner = err
                        .inner()
                        .to_string()
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("invalid value")
                        .trim()
                        .to_string();
                    let mut segments: Vec<String> = err
                        .path()
                        .iter()
                        .map(|s| s.to_string())
                        .filter(|s| s != "?")
                        .collect();
                    let unknown = parse_unknown_field(&inner);
                    if let Some(field) = &unknown {
                        if segments.last() != Some(field) {
                            segments.push(field.clone());
                        }
                    }
                    let path = if segments.is_empty() {
                        "<root>".to_string()
                    } else {
                        segments.join(".")
                    };
                    let message = match &unknown {
                        Some(_) => inner
                            .replacen("unknown field", "unknown key", 1)
                            .replace("expected one of", "allowed keys are")
                            .replace("expected", "allowed"),
                        None => inner.clone(),
                    };
                    errors.push(ConfigError {
                        path: path.clone(),
                        message,
                    });
                    if errors.len() > 64 || !remove_path(&mut value, &segments) {
                        break None;
                    }
                }
            }
        };
        if let Some(c) = &config {
            errors.extend(c.validate());
        }
        match config {
            Some(c) if errors.is_empty() => Ok(c),
            _ => Err(ConfigErrors::Invalid(errors)),
        }
    }

    /// Check ranges and graph consistency; returns every problem found.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errs = Vec::new();
        let mut range = |path: String, v: f64, lo: f64, hi: f64| {
            if !(v.is_finite() && v >= lo && v <= hi) {
                errs.push(ConfigError {
                    path,
                    message: format!("{v} is out of range (allowed {lo}..={hi})"),
                });
            }
        };
        let i = &self.integrator;
        range("integrator.rate_hz".into(), i.rate_hz, 10.0, 1000.0);
        range(
            "integrator.context_capacity".into(),
            i.context_capacity as f64,
            16.0,
            65536.0,
        );
        range("integrator.width".into(), i.width as f64, 8.0, 1024.0);
        range(
            "integrator.spin_margin_us".into(),
            i.spin_margin_us as f64,
            0.0,
            20000.0,
        );
        range(
            "integrator.realtime_priority".into(),
            i.realtime_priority as f64,
            0.0,
            99.0,
        );
        let d = &self.drowsiness;
        range(
            "drowsiness.time_constant_s".into(),
            d.time_constant_s,
            0.05,
            600.0,
        );
        range("drowsiness.miss_weight".into(), d.miss_weight, 0.0, 10.0);
        range("drowsiness.stale_weight".into(), d.stale_weight, 0.0, 10.0);
        range(
            "drowsiness.slow_threshold".into(),
            d.slow_threshold,
            0.0,
            1.0,
        );
        range(
            "drowsiness.shed_threshold".into(),
            d.shed_threshold,
            0.0,
            1.0,
        );
        range(
            "drowsiness.sleep_threshold".into(),
            d.sleep_threshold,
            0.0,
            1.0,
        );
        range(
            "drowsiness.sleep_after_s".into(),
            d.sleep_after_s,
            0.0,
            600.0,
        );
        range(
            "drowsiness.min_speed_scale".into(),
            d.min_speed_scale,
            0.0,
            1.0,
        );
        for (name, r) in &self.regions {
            let p = |k: &str| format!("regions.{name}.{k}");
            range(p("rate_hz"), r.rate_hz, 0.1, 1000.0);
            range(p("threads"), r.threads as f64, 1.0, 64.0);
            range(p("stale_after_ms"), r.stale_after_ms as f64, 1.0, 60000.0);
        }
        let b = &self.body;
        range("body.baud".into(), b.baud as f64, 9600.0, 2_000_000.0);
        range(
            "body.read_timeout_ms".into(),
            b.read_timeout_ms as f64,
            1.0,
            1000.0,
        );
        range(
            "body.stale_after_ms".into(),
            b.stale_after_ms as f64,
            1.0,
            10000.0,
        );
        let l = &self.limits;
        range("limits.max_linear_mps".into(), l.max_linear_mps, 0.0, 5.0);
        range(
            "limits.max_angular_rps".into(),
            l.max_angular_rps,
            0.0,
            20.0,
        );
        range(
            "limits.max_linear_accel".into(),
            l.max_linear_accel,
            0.01,
            20.0,
        );
        range(
            "limits.max_angular_accel".into(),
            l.max_angular_accel,
            0.01,
            100.0,
        );
        range(
            "teleop.timeout_ms".into(),
            self.teleop.timeout_ms as f64,
            10.0,
            10000.0,
        );
        for (k, e) in self.edges.iter().enumerate() {
            range(format!("edges[{k}].gain"), e.gain, 0.0, 4.0);
        }
        let bus = &self.bus;
        range("bus.domain_id".into(), bus.domain_id as f64, 0.0, 232.0);
        range(
            "bus.max_delay_ms".into(),
            bus.max_delay_ms as f64,
            1.0,
            60000.0,
        );
        let mut bus_errs = Vec::new();
        if bus.robot.is_empty()
            || bus.robot.len() > 64
            || !bus
                .robot
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bus_errs.push(ConfigError {
                path: "bus.robot".into(),
                message: format!(
                    "{:?}: 1..=64 letters, digits, `_` or `-` (it is a key segment and a ROS 2 namespace)",
                    bus.robot
                ),
            });
        }
        for (k, ep) in bus.listen.iter().chain(&bus.connect).enumerate() {
            if !valid_endpoint(ep) {
                bus_errs.push(ConfigError {
                    path: if k < bus.listen.len() {
                        format!("bus.listen[{k}]")
                    } else {
                        format!("bus.connect[{}]", k - bus.listen.len())
                    },
                    message: format!(
                        "{ep:?} is not a zenoh endpoint (`tcp/HOST:PORT` or `tls/HOST:PORT`)"
                    ),
                });
            }
        }
        let sources = self.teleop.resolved_sources();
        for (name, src) in &sources {
            range(
                format!("teleop.sources.{name}.timeout_ms"),
                src.timeout_ms as f64,
                10.0,
                10000.0,
            );
        }
        range(
            "teleop.assist_stop_m".into(),
            self.teleop.assist_stop_m,
            0.0,
            5.0,
        );
        range(
            "teleop.assist_slow_m".into(),
            self.teleop.assist_slow_m,
            0.0,
            10.0,
        );
        errs.extend(bus_errs);
        if self.teleop.assist_slow_m <= self.teleop.assist_stop_m {
            errs.push(ConfigError {
                path: "teleop.assist_slow_m".into(),
                message: format!(
                    "{} is not beyond assist_stop_m {}: assist would stop without slowing first",
                    self.teleop.assist_slow_m, self.teleop.assist_stop_m
                ),
            });
        }
        if sources.is_empty() {
            errs.push(ConfigError {
                path: "teleop.sources".into(),
                message: "at least one teleop source is needed (e.g. [teleop.sources.console]): the e-stop comes through it".into(),
            });
        }
        for (name, src) in &sources {
            if src.priority <= self.teleop.autonomy_priority {
                errs.push(ConfigError {
                    path: format!("teleop.sources.{name}.priority"),
                    message: format!(
                        "{} is not above autonomy_priority {}: an operator must always be able to take over",
                        src.priority, self.teleop.autonomy_priority
                    ),
                });
            }
        }
        self.check_relations(&mut errs);
        graph::check(self, &mut errs);
        if b.kind == BodyKind::Serial && b.port.trim().is_empty() {
            errs.push(ConfigError {
                path: "body.port".into(),
                message: "a serial body needs a port (e.g. /dev/ttyACM0)".into(),
            });
        }
        errs
    }

    /// Relations between keys that are each in range but together make a brain that cannot
    /// work: every message says what to change.
    fn check_relations(&self, errs: &mut Vec<ConfigError>) {
        let d = &self.drowsiness;
        let finite = [d.slow_threshold, d.shed_threshold, d.sleep_threshold]
            .iter()
            .all(|v| v.is_finite());
        if finite && d.sleep_threshold <= d.slow_threshold {
            errs.push(ConfigError {
                path: "drowsiness.sleep_threshold".into(),
                message: format!(
                    "{} is not above slow_threshold {}: the brain would sleep before it ever slows down; raise sleep_threshold above {} (default 0.6)",
                    d.sleep_threshold, d.slow_threshold, d.slow_threshold
                ),
            });
        }
        if finite && d.shed_threshold < d.slow_threshold {
            errs.push(ConfigError {
                path: "drowsiness.shed_threshold".into(),
                message: format!(
                    "{} is below slow_threshold {}: heavy regions would shed frames before the robot slows down; set shed_threshold between slow_threshold and sleep_threshold (default 0.4)",
                    d.shed_threshold, d.slow_threshold
                ),
            });
        }
        if finite && d.shed_threshold > d.sleep_threshold {
            errs.push(ConfigError {
                path: "drowsiness.shed_threshold".into(),
                message: format!(
                    "{} is above sleep_threshold {}: the brain would sleep before shedding any load; set shed_threshold between slow_threshold and sleep_threshold (default 0.4)",
                    d.shed_threshold, d.sleep_threshold
                ),
            });
        }
        // A spin margin at or above the period is not an error: the runner caps it at a fifth
        // of the period (`integrator::rt`), so the loop still sleeps; `rate_hz` alone may change.
        let known = model_names();
        for (name, r) in &self.regions {
            let m = r.model.trim();
            if m.is_empty() || known.iter().any(|k| k == m) {
                continue;
            }
            let listed: Vec<&str> = known
                .iter()
                .map(String::as_str)
                .filter(|n| !n.ends_with("-tokenizer"))
                .collect();
            errs.push(ConfigError {
                path: format!("regions.{name}.model"),
                message: format!(
                    "{m:?} is not a model of models/manifest.toml (a name, not a path: model files live in the models folder, checked by sha256); use one of {}",
                    listed.join(", ")
                ),
            });
        }
    }

    /// The brain graph this configuration describes (see [`graph::Graph`]).
    pub fn graph(&self) -> graph::Graph {
        graph::Graph::from_config(self)
    }

    /// The one tick period of the integrator, ns.
    pub fn tick_period_ns(&self) -> u64 {
        graph::period_ns(self.integrator.rate_hz)
    }
}

/// The largest spin margin, as a fraction of the period: a thread that spins through its
/// whole period never sleeps, and under SCHED_FIFO the kernel's RT throttling then parks it
/// for ~50 ms every second (measured at 1 kHz with a 2 ms margin: 731 of 15,000 ticks missed).
pub const MAX_SPIN_FRACTION: u64 = 5;

/// The model names of `models/manifest.toml` (the file the regions verify models against).
fn model_names() -> Vec<String> {
    let text = include_str!("../../models/manifest.toml");
    let v: toml::Value = toml::from_str(text).unwrap_or(toml::Value::Table(Default::default()));
    v.get("model")
        .and_then(|m| m.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|e| e.get("name").and_then(|n| n.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn parse_unknown_field(msg: &str) -> Option<String> {
    let rest = msg.split("unknown field `").nth(1)?;
    Some(rest.split('`').next()?.to_string())
}

/// Remove the value at a dotted path (segments; `[k]` indexes arrays). Returns false if nothing
/// could be removed (so the caller stops retrying).
fn remove_path(value: &mut toml::Value, segments: &[String]) -> bool {
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut cur = value;
    for seg in parents {
        cur = match (cur, seg.parse::<usize>()) {
            (toml::Value::Array(a), Ok(i)) if i < a.len() => &mut a[i],
            (toml::Value::Table(t), _) => match t.get_mut(seg.as_str()) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (cur, last.parse::<usize>()) {
        (toml::Value::Array(a), Ok(i)) if i < a.len() => {
            a.remove(i);
            true
        }
        (toml::Value::Table(t), _) => t.remove(last.as_str()).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_is_valid() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"))
                .unwrap();
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.validate(), vec![]);
    }

    #[test]
    fn all_three_errors_reported_with_paths() {
        let text = r#"
[integrator]
rate_hz = 5000
rat_hz = 50
[[edges]]
from = "vision"
to = "integrator"
[[edges]]
from = "smell"
to = "integrator"
"#;
        let err = Config::parse(text).unwrap_err().to_string();
        assert!(err.contains("integrator.rat_hz"), "{err}");
        assert!(err.contains("integrator.rate_hz"), "{err}");
        assert!(err.contains("edges[1].from"), "{err}");
        assert!(err.contains("smell"), "{err}");
        assert!(err.contains("allowed"), "{err}");
    }

    #[test]
    fn unknown_top_level_key_named() {
        let err = Config::parse("bogus_top_key = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bogus_top_key"), "{err}");
    }

    #[test]
    fn wrong_type_reported_and_others_still_found() {
        let text = "[integrator]\nrate_hz = \"fast\"\n[limits]\nmax_linear_mps = 99.0\n";
        let err = Config::parse(text).unwrap_err().to_string();
        assert!(err.contains("integrator.rate_hz"), "{err}");
        assert!(err.contains("limits.max_linear_mps"), "{err}");
    }

    #[test]
    fn syntax_error_is_one_line() {
        let err = Config::parse("[integrator\nrate_hz = 1")
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\n'), "{err}");
    }

    /// Keys each in range that together make a brain that cannot work are errors that say
    /// what to change.
    #[test]
    fn relations_between_keys_are_checked() {
        let err = Config::parse(
            "[drowsiness]\nslow_threshold = 0.5\nshed_threshold = 0.3\nsleep_threshold = 0.4\n\
             [integrator]\nrate_hz = 1000\nspin_margin_us = 1500\n\
             [regions.vision]\nmodel = \"../../etc/model.onnx\"\n\
             [teleop]\nautonomy_priority = 210\n",
        )
        .unwrap_err()
        .to_string();
        for want in [
            "drowsiness.sleep_threshold",
            "raise sleep_threshold above 0.5",
            "drowsiness.shed_threshold",
            "regions.vision.model",
            "not a model of models/manifest.toml",
            "teleop.sources.console.priority",
        ] {
            assert!(err.contains(want), "{want}: {err}");
        }
        // The same keys in order are fine.
        Config::parse("[drowsiness]\nslow_threshold = 0.3\nshed_threshold = 0.3\nsleep_threshold = 0.5\n[integrator]\nrate_hz = 1000\nspin_margin_us = 200\n").unwrap();
        // The default spin margin at 1 kHz: the runner caps it at a fifth of the period.
        Config::parse("[integrator]\nrate_hz = 1000\nspin_margin_us = 2000\n").unwrap();
    }

    #[test]
    fn gain_of_missing_edge_is_zero() {
        let g = Config::default().graph();
        assert_eq!(g.gain("vision", "integrator"), 1.0);
        assert_eq!(g.gain("vision", "memory"), 0.0);
    }

    #[test]
    fn the_default_file_holds_the_per_key_defaults() {
        // The file and the per-key defaults in code must agree: an empty file is the defaults.
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn teleop_below_autonomy_is_refused() {
        let err = Config::parse("[teleop]\npriority = 50\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("teleop.sources.console.priority"), "{err}");
        let c = Config::parse(
            "[teleop.sources.joy]\npriority = 180\ntimeout_ms = 300\n[teleop.sources.console]\n",
        )
        .unwrap();
        // Naming sources replaces the default set.
        assert_eq!(c.teleop.resolved_sources().len(), 2);
        let s = c.teleop.resolved_sources();
        assert_eq!(s[0].0, "console");
        assert_eq!(s[1].1.timeout_ms, 300);
    }
}
