//! The serial driver: one I/O thread per port that owns the [`Session`], writes setpoints and
//! heartbeats, reads with a timeout, and reconnects with exponential backoff when the port
//! disappears. The brain talks to it through [`SerialLink`], which implements [`Body`] without
//! ever blocking: setpoints and e-stop go through atomics, state comes back through a seqlock
//! cell (`AtomicCell`), so the integrator's tick never waits for serial I/O.

use super::codec::{self, Info, Message, Params, MAX_FRAME};
use super::monotonic_ns;
use super::session::{LinkStats, Session};
use crate::body::{Body, BodyError, RobotParams};
use crate::msg::{BodyState, WheelSpeeds};
use crossbeam_utils::atomic::AtomicCell;
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How to reach the board.
#[derive(Debug, Clone)]
pub struct SerialConfig {
    /// Serial device (or pty) path.
    pub port: String,
    /// Baud rate.
    pub baud: u32,
    /// Read timeout, ms: the longest a read waits before the thread looks at new setpoints.
    pub read_timeout_ms: u64,
    /// Setpoints (or a heartbeat) are re-sent at least this often, ms; must be well below the
    /// firmware's 250 ms watchdog.
    pub heartbeat_ms: u64,
    /// A setpoint older than this (ms) is not re-sent: the board gets one zero setpoint and then
    /// nothing, so its own watchdog stops the wheels if the brain stops commanding.
    pub command_timeout_ms: u64,
    /// First reconnect delay, ms (doubles up to `backoff_max_ms`).
    pub backoff_min_ms: u64,
    /// Longest reconnect delay, ms.
    pub backoff_max_ms: u64,
    /// Controller parameters sent after every connect (None keeps the firmware's).
    pub params: Option<Params>,
    /// Robot geometry, for odometry in [`BodyState`].
    pub robot: RobotParams,
    /// SCHED_FIFO priority for the I/O thread when permitted (0: ordinary scheduling).
    pub realtime_priority: u32,
}

impl SerialConfig {
    /// Defaults for a port: 115200 baud, 5 ms read timeout, 50 ms heartbeat, 200 ms command
    /// timeout, 50 ms..2 s backoff.
    pub fn new(port: impl Into<String>, robot: RobotParams) -> Self {
        Self {
            port: port.into(),
            baud: 115_200,
            read_timeout_ms: 5,
            heartbeat_ms: 50,
            command_timeout_ms: 200,
            backoff_min_ms: 50,
            backoff_max_ms: 2_000,
            params: None,
            robot,
            realtime_priority: 0,
        }
    }

    /// From the `[body]` section of the configuration file.
    pub fn from_config(body: &crate::config::BodyConfig, robot: RobotParams) -> Self {
        let mut c = Self::new(body.port.clone(), robot);
        c.baud = body.baud;
        c.read_timeout_ms = body.read_timeout_ms.clamp(1, 1000);
        c.command_timeout_ms = body.stale_after_ms.clamp(20, 10_000);
        c
    }
}

/// Link health for the integrator and the console.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkHealth {
    /// Whether the port is open.
    pub connected: bool,
    /// Monotonic time of the last valid frame from the board, ns (0: never).
    pub last_rx_ns: u64,
    /// Counters and round-trip statistics.
    pub stats: LinkStats,
    /// Firmware information, once received.
    pub info: Option<Info>,
}

#[derive(Clone, Copy, Default)]
struct Snapshot {
    body: BodyState,
    health: LinkHealth,
}

struct Shared {
    /// Latest setpoint: left and right mrad/s packed as two i16.
    setpoint: AtomicU32,
    /// Incremented on every new setpoint.
    setpoint_version: AtomicU64,
    /// Monotonic time of the last `Body::command`, ns.
    last_command_ns: AtomicU64,
    estop: AtomicBool,
    info_request: AtomicBool,
    reset_rtt: AtomicBool,
    stop: AtomicBool,
    snapshot: AtomicCell<Snapshot>,
}

/// A body on the other end of a serial port, driven by its own I/O thread.
pub struct SerialLink {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    port: String,
}

fn pack(l: i16, r: i16) -> u32 {
    (l as u16 as u32) | ((r as u16 as u32) << 16)
}

fn unpack(v: u32) -> (i16, i16) {
    (v as u16 as i16, (v >> 16) as u16 as i16)
}

impl SerialLink {
    /// Start the I/O thread. It connects in the background (and keeps reconnecting), so this
    /// never fails on a missing port; watch [`SerialLink::health`].
    pub fn open(cfg: SerialConfig) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            setpoint: AtomicU32::new(0),
            setpoint_version: AtomicU64::new(0),
            last_command_ns: AtomicU64::new(0),
            estop: AtomicBool::new(false),
            info_request: AtomicBool::new(true),
            reset_rtt: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            snapshot: AtomicCell::new(Snapshot::default()),
        });
        let port = cfg.port.clone();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("link:{}", cfg.port))
            .spawn(move || io_thread(cfg, s))?;
        Ok(Self {
            shared,
            thread: Some(thread),
            port,
        })
    }

    /// Connection state, counters and round-trip statistics.
    pub fn health(&self) -> LinkHealth {
        self.shared.snapshot.load().health
    }

    /// A reader of [`SerialLink::health`] that outlives moving the link (for a supervisor
    /// thread while the link is the integrator's body).
    pub fn health_reader(&self) -> impl Fn() -> LinkHealth + Send + Sync + 'static {
        let s = self.shared.clone();
        move || s.snapshot.load().health
    }

    /// Ask the board for its firmware information (arrives in [`LinkHealth::info`]).
    pub fn request_info(&self) {
        self.shared.info_request.store(true, Ordering::Release);
    }

    /// Forget the round-trip samples so far (after a warm-up).
    pub fn reset_rtt(&self) {
        self.shared.reset_rtt.store(true, Ordering::Release);
    }

    /// Wait until the link is connected and telemetry flows, up to `timeout`.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let end = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < end {
            let h = self.health();
            if h.connected && h.stats.telemetry_rx > 0 && self.state().stamp_ns > 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }
}

impl Drop for SerialLink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Body for SerialLink {
    fn command(&mut self, w: WheelSpeeds) -> Result<(), BodyError> {
        if self.shared.estop.load(Ordering::Acquire) {
            return Err(BodyError::Refused("e-stop latched".into()));
        }
        let (l, r) = if w.left.is_finite() && w.right.is_finite() {
            (codec::rad_s_to_wire(w.left), codec::rad_s_to_wire(w.right))
        } else {
            (0, 0) // non-finite: stop, never pass it on
        };
        self.shared.setpoint.store(pack(l, r), Ordering::Release);
        self.shared
            .last_command_ns
            .store(monotonic_ns(), Ordering::Release);
        self.shared.setpoint_version.fetch_add(1, Ordering::AcqRel);
        if !self.health().connected {
            return Err(BodyError::Disconnected(self.port.clone()));
        }
        Ok(())
    }

    fn state(&self) -> BodyState {
        let mut s = self.shared.snapshot.load().body;
        s.estop |= self.shared.estop.load(Ordering::Acquire);
        s
    }

    fn estop(&mut self) {
        self.shared.setpoint.store(0, Ordering::Release);
        self.shared.estop.store(true, Ordering::Release);
        self.shared.setpoint_version.fetch_add(1, Ordering::AcqRel);
    }

    fn clear_estop(&mut self) {
        self.shared.setpoint.store(0, Ordering::Release);
        self.shared.estop.store(false, Ordering::Release);
        self.shared.setpoint_version.fetch_add(1, Ordering::AcqRel);
    }

    fn name(&self) -> String {
        format!("serial:{}", self.port)
    }
}

fn sleep_unless_stopped(shared: &Shared, ms: u64) {
    let end = std::time::Instant::now() + Duration::from_millis(ms);
    while !shared.stop.load(Ordering::Acquire) && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn publish(shared: &Shared, session: &Session, cfg: &SerialConfig, connected: bool, last_rx: u64) {
    shared.snapshot.store(Snapshot {
        body: session.body_state(&cfg.robot),
        health: LinkHealth {
            connected,
            last_rx_ns: last_rx,
            stats: session.stats(),
            info: session.info(),
        },
    });
}

/// Try SCHED_FIFO for the calling thread; returns whether it was granted (needs
/// CAP_SYS_NICE or an rtprio limit).
pub fn set_realtime(priority: u32) -> bool {
    if priority == 0 {
        return false;
    }
    let param = libc::sched_param {
        sched_priority: priority.min(99) as libc::c_int,
    };
    // SAFETY: plain syscall on the current thread with a valid sched_param.
    unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) == 0 }
}

fn io_thread(cfg: SerialConfig, shared: Arc<Shared>) {
    if cfg.realtime_priority > 0 && !set_realtime(cfg.realtime_priority) {
        tracing::info!(
            port = %cfg.port,
            "link: SCHED_FIFO not permitted; the I/O thread runs with ordinary priority"
        );
    }
    let mut session = Session::for_robot(&cfg.robot);
    let mut backoff = cfg.backoff_min_ms.max(1);
    let mut last_rx = 0u64;
    let mut logged_down = false;
    while !shared.stop.load(Ordering::Acquire) {
        let port = serialport::new(&cfg.port, cfg.baud)
            .timeout(Duration::from_millis(cfg.read_timeout_ms.max(1)))
            .open_native();
        let mut port = match port {
            Ok(p) => p,
            Err(e) => {
                if !logged_down {
                    tracing::warn!(port = %cfg.port, error = %e, "link: cannot open port; retrying with backoff");
                    logged_down = true;
                }
                publish(&shared, &session, &cfg, false, last_rx);
                sleep_unless_stopped(&shared, backoff);
                backoff = (backoff * 2).min(cfg.backoff_max_ms.max(1));
                continue;
            }
        };
        tracing::info!(port = %cfg.port, "link: connected");
        logged_down = false;
        backoff = cfg.backoff_min_ms.max(1);
        session.reset_connection();
        shared.info_request.store(true, Ordering::Release);
        if let Err(e) = run_connection(&cfg, &shared, &mut session, &mut port, &mut last_rx) {
            tracing::warn!(port = %cfg.port, error = %e, "link: connection lost; reconnecting");
        }
        publish(&shared, &session, &cfg, false, last_rx);
    }
}

fn write_msg(port: &mut impl Write, session: &mut Session, msg: &Message) -> std::io::Result<()> {
    let mut out = [0u8; MAX_FRAME];
    let n = session.encode(monotonic_ns(), msg, &mut out);
    port.write_all(&out[..n])
}

fn run_connection(
    cfg: &SerialConfig,
    shared: &Shared,
    session: &mut Session,
    port: &mut (impl Read + Write),
    last_rx: &mut u64,
) -> std::io::Result<()> {
    let heartbeat_ns = cfg.heartbeat_ms.max(1) * 1_000_000;
    let command_timeout_ns = cfg.command_timeout_ms.max(1) * 1_000_000;
    let mut sent_stale_zero = false;
    let mut sent_version = u64::MAX;
    // On connect, only a host-side latch is (re)sent; a board latch is never cleared implicitly.
    let mut sent_estop: Option<bool> = if shared.estop.load(Ordering::Acquire) {
        None
    } else {
        Some(false)
    };
    let mut last_tx = 0u64;
    let mut buf = [0u8; 512];
    if let Some(p) = cfg.params {
        write_msg(port, session, &Message::SetParams(p))?;
    }
    publish(shared, session, cfg, true, *last_rx);
    while !shared.stop.load(Ordering::Acquire) {
        let now = monotonic_ns();
        if shared.reset_rtt.swap(false, Ordering::AcqRel) {
            session.reset_rtt();
        }
        if shared.info_request.swap(false, Ordering::AcqRel) {
            write_msg(port, session, &Message::InfoRequest)?;
        }
        let estop = shared.estop.load(Ordering::Acquire);
        let version = shared.setpoint_version.load(Ordering::Acquire);
        if sent_estop != Some(estop) {
            let msg = if estop {
                Message::Estop
            } else {
                Message::ClearEstop
            };
            write_msg(port, session, &msg)?;
            sent_estop = Some(estop);
            last_tx = now;
        } else if estop {
            // While latched, keep re-sending ESTOP (never a setpoint).
            if now.saturating_sub(last_tx) >= heartbeat_ns {
                write_msg(port, session, &Message::Estop)?;
                last_tx = now;
            }
        } else {
            let last_cmd = shared.last_command_ns.load(Ordering::Acquire);
            let fresh = last_cmd > 0 && now.saturating_sub(last_cmd) <= command_timeout_ns;
            if fresh && (version != sent_version || now.saturating_sub(last_tx) >= heartbeat_ns) {
                let (left, right) = unpack(shared.setpoint.load(Ordering::Acquire));
                write_msg(port, session, &Message::SetWheels { left, right })?;
                sent_version = version;
                last_tx = now;
                sent_stale_zero = false;
            } else if !fresh && !sent_stale_zero {
                // The brain stopped commanding: stop now, then go quiet so the firmware's
                // watchdog trips too. Never keep a stale setpoint alive.
                write_msg(port, session, &Message::SetWheels { left: 0, right: 0 })?;
                sent_stale_zero = true;
                last_tx = now;
            }
        }
        match port.read(&mut buf) {
            Ok(0) => return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "port closed")),
            Ok(n) => {
                let now = monotonic_ns();
                if session.receive(now, &buf[..n]) > 0 {
                    *last_rx = now;
                }
                publish(shared, session, cfg, true, *last_rx);
            }
            Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
