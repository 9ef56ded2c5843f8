//! `brainloop bench link`: the real serial driver against the real firmware running on the
//! emulated board (`firmware/build/board-sim`, simavr paced to wall-clock time, UART on a pty).
//! Measures the command-to-telemetry round trip, frame rates and errors, and sets the measured
//! round trip beside what the wire alone costs at the configured baud rate.

use super::codec::{self, Message, Telemetry, MAX_FRAME};
use super::serial::{SerialConfig, SerialLink};
use crate::body::{Body, RobotParams};
use crate::msg::WheelSpeeds;
use serde::Serialize;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Errors of the link bench.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkBenchError {
    /// The emulated board could not be built or started.
    #[error("emulated board: {0}")]
    Board(String),
    /// The link did not come up or measured nothing.
    #[error("link: {0}")]
    Link(String),
    /// Operating-system error.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// Bench options.
#[derive(Debug, Clone)]
pub struct LinkBenchOptions {
    /// The firmware directory (holds the Makefile; `build/` gets the .elf and board-sim).
    pub firmware_dir: PathBuf,
    /// Measurement time, s.
    pub duration_s: f64,
    /// New setpoints per second.
    pub command_rate_hz: f64,
    /// SCHED_FIFO priority for the emulated board and the link thread when permitted (0: off).
    pub realtime_priority: u32,
}

impl Default for LinkBenchOptions {
    fn default() -> Self {
        Self {
            firmware_dir: PathBuf::from("firmware"),
            duration_s: 3.0,
            command_rate_hz: 50.0,
            realtime_priority: 20,
        }
    }
}

/// Round-trip figures, µs.
#[derive(Debug, Clone, Serialize)]
pub struct RttFigures {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
    /// Samples.
    pub samples: u64,
}

/// Frame rates, per second.
#[derive(Debug, Clone, Serialize)]
pub struct Rates {
    /// Frames sent by the host.
    pub tx: f64,
    /// Valid frames received.
    pub rx: f64,
    /// Telemetry frames received.
    pub telemetry: f64,
}

/// Error counts during the run.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorCounts {
    /// CRC errors seen by the host.
    pub crc: u64,
    /// Other decode errors seen by the host.
    pub decode: u64,
    /// Board frames lost (sequence gaps).
    pub seq_gaps: u64,
    /// NACKs from the board.
    pub nacks: u64,
    /// Frames the board rejected.
    pub board_rx_errors: u64,
}

/// What the wire alone costs, µs, at the bench's baud rate (10 bits per byte).
#[derive(Debug, Clone, Serialize)]
pub struct WireFigures {
    /// Baud rate.
    pub baud: u32,
    /// A SET_WHEELS frame on the wire.
    pub command_frame_us: f64,
    /// A TELEMETRY frame on the wire.
    pub telemetry_frame_us: f64,
    /// Expected median round trip: command frame + half a telemetry period + telemetry frame.
    pub expected_p50_us: f64,
}

/// The bench result (`--json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct LinkBenchReport {
    /// What was measured.
    pub transport: String,
    /// Firmware build id reported by the board (INFO).
    pub firmware_build_id: Option<String>,
    /// Measurement time, s.
    pub duration_s: f64,
    /// Command-to-telemetry round trip, µs.
    pub rtt_us: RttFigures,
    /// Frame rates.
    pub frames_per_s: Rates,
    /// Errors.
    pub errors: ErrorCounts,
    /// The wire's own cost for comparison.
    pub wire: WireFigures,
    /// Measured median round trip / expected median from the wire alone (same run).
    pub ratio_p50_to_wire: f64,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LinkBenchError {
    let what = what.into();
    move |source| LinkBenchError::Io { what, source }
}

/// Build the firmware and the emulated board if needed (`make -C firmware sim`).
pub fn ensure_board_built(firmware_dir: &Path) -> Result<(PathBuf, PathBuf), LinkBenchError> {
    let out = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(firmware_dir)
        .arg("sim")
        .output()
        .map_err(io_err(format!(
            "running make -C {} sim",
            firmware_dir.display()
        )))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(LinkBenchError::Board(format!(
            "make -C {} sim failed: {}",
            firmware_dir.display(),
            err.lines().last().unwrap_or("")
        )));
    }
    let build = firmware_dir.join("build");
    Ok((build.join("board-sim"), build.join("brainloop-fw.elf")))
}

/// A running `board-sim` process (killed on drop).
pub struct BoardProcess {
    child: Child,
    stdout: std::sync::mpsc::Receiver<String>,
    /// The stable path (symlink) to the board's pty.
    pub link: PathBuf,
    dir: PathBuf,
}

impl BoardProcess {
    /// Start the emulated board paced at 1x and wait for its pty.
    pub fn start(board_sim: &Path, elf: &Path) -> Result<Self, LinkBenchError> {
        Self::start_with(board_sim, elf, 0)
    }

    /// As [`BoardProcess::start`], with the pacing loop under SCHED_FIFO `realtime_priority`
    /// when permitted (0: ordinary scheduling).
    pub fn start_with(
        board_sim: &Path,
        elf: &Path,
        realtime_priority: u32,
    ) -> Result<Self, LinkBenchError> {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("brainloop-board-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let link = dir.join("board.tty");
        let mut cmd = Command::new(board_sim);
        crate::util::children::tracked(&mut cmd);
        let mut child = cmd
            .arg(elf)
            .arg("--link")
            .arg(&link)
            .arg("--realtime")
            .arg(realtime_priority.min(99).to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io_err(format!("starting {}", board_sim.display())))?;
        crate::util::children::track(child.id());
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| LinkBenchError::Board("no stdout".into()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = Self {
            child,
            stdout: rx,
            link,
            dir,
        };
        p.expect("pty ", Duration::from_secs(5))?;
        Ok(p)
    }

    /// Wait for an output line starting with `prefix`.
    pub fn expect(&mut self, prefix: &str, timeout: Duration) -> Result<String, LinkBenchError> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(_) => continue,
                Err(_) => {
                    return Err(LinkBenchError::Board(format!(
                        "no `{prefix}` line from board-sim within {timeout:?}"
                    )))
                }
            }
        }
    }

    /// Send a control command (`status`, `close`, `open`).
    pub fn command(&mut self, cmd: &str) -> Result<(), LinkBenchError> {
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or_else(|| LinkBenchError::Board("stdin closed".into()))?;
        writeln!(stdin, "{cmd}").map_err(io_err("writing to board-sim"))?;
        stdin.flush().map_err(io_err("writing to board-sim"))
    }

    /// The board's true state, from a `status` command.
    pub fn status(&mut self) -> Result<BoardStatus, LinkBenchError> {
        self.command("status")?;
        let line = self.expect("status ", Duration::from_secs(2))?;
        let field = |k: &str| -> f64 {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(k))
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN)
        };
        Ok(BoardStatus {
            time_s: field("t="),
            wheel: [field("w0="), field("w1=")],
            pwm: [field("pwm0=") as i32, field("pwm1=") as i32],
        })
    }
}

/// The emulated board's true state (`board-sim` `status`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoardStatus {
    /// Emulated time since reset, s.
    pub time_s: f64,
    /// True wheel speeds from the motor models, rad/s.
    pub wheel: [f64; 2],
    /// PWM the firmware applies, -255..=255.
    pub pwm: [i32; 2],
}

impl Drop for BoardProcess {
    fn drop(&mut self) {
        // Forgotten before it is reaped, so a signal never targets a reused pid.
        crate::util::children::untrack(self.child.id());
        let _ = self.command("quit");
        let end = Instant::now() + Duration::from_millis(500);
        let mut exited = false;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn frame_len(msg: &Message) -> usize {
    codec::encode_frame_vec(0, msg).len()
}

/// Run the bench.
pub fn run(opts: &LinkBenchOptions) -> Result<LinkBenchReport, LinkBenchError> {
    if !(opts.duration_s.is_finite() && opts.duration_s > 0.0 && opts.duration_s <= 3600.0) {
        return Err(LinkBenchError::Link(format!(
            "duration must be in (0, 3600] s, got {}",
            opts.duration_s
        )));
    }
    if !(opts.command_rate_hz.is_finite() && (1.0..=1000.0).contains(&opts.command_rate_hz)) {
        return Err(LinkBenchError::Link(format!(
            "command rate must be in [1, 1000] Hz, got {}",
            opts.command_rate_hz
        )));
    }
    let (board_sim, elf) = ensure_board_built(&opts.firmware_dir)?;
    let board = BoardProcess::start_with(&board_sim, &elf, opts.realtime_priority)?;
    let mut cfg = SerialConfig::new(board.link.to_string_lossy(), RobotParams::load_default());
    cfg.realtime_priority = opts.realtime_priority;
    let baud = cfg.baud;
    let mut link = SerialLink::open(cfg).map_err(io_err("starting the link thread"))?;
    if !link.wait_ready(Duration::from_secs(5)) {
        return Err(LinkBenchError::Link(
            "no telemetry from the emulated board within 5 s".into(),
        ));
    }
    // The commanding "brain" runs on its own thread, under SCHED_FIFO when permitted, so other
    // load on the machine does not thin out the commands being timed.
    let rt = opts.realtime_priority;
    let duration_s = opts.duration_s;
    let period = Duration::from_secs_f64(1.0 / opts.command_rate_hz);
    let brain = std::thread::Builder::new()
        .name("bench-brain".into())
        .spawn(move || {
            super::serial::set_realtime(rt);
            let drive = |link: &mut SerialLink, k: u64| {
                let v = if (k / 25) % 2 == 0 { 6.0 } else { -6.0 };
                let _ = link.command(WheelSpeeds { left: v, right: -v });
            };
            // Warm up for 0.3 s, then measure.
            let warm = Instant::now();
            let mut k = 0u64;
            while warm.elapsed() < Duration::from_millis(300) {
                drive(&mut link, k);
                k += 1;
                std::thread::sleep(period);
            }
            link.reset_rtt();
            std::thread::sleep(Duration::from_millis(20));
            let before = link.health().stats;
            let start = Instant::now();
            let mut next = start;
            // Jitter each interval (±25 %, fixed-seed xorshift) so command times sample every
            // phase of the board's 10 ms telemetry cycle instead of locking to one.
            let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
            while start.elapsed().as_secs_f64() < duration_s {
                drive(&mut link, k);
                k += 1;
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let u = (rng >> 11) as f64 / (1u64 << 53) as f64;
                next += period.mul_f64(0.75 + 0.5 * u);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            let elapsed = start.elapsed().as_secs_f64();
            let health = link.health();
            let _ = link.command(WheelSpeeds::default());
            std::thread::sleep(Duration::from_millis(30));
            (before, health, elapsed)
        })
        .map_err(io_err("starting the bench thread"))?;
    let (before, health, elapsed) = brain
        .join()
        .map_err(|_| LinkBenchError::Link("bench thread panicked".into()))?;
    drop(board);
    let s = health.stats;
    if s.rtt_samples == 0 {
        return Err(LinkBenchError::Link("no round trip was measured".into()));
    }
    let byte_us = 10.0 * 1e6 / baud as f64;
    let cmd_us = frame_len(&Message::SetWheels { left: 0, right: 0 }) as f64 * byte_us;
    let tlm_us = frame_len(&Message::Telemetry(Telemetry::default())) as f64 * byte_us;
    let _ = MAX_FRAME;
    let expected = cmd_us + 10_000.0 / 2.0 + tlm_us;
    let rate = |a: u64, b: u64| (a - b) as f64 / elapsed;
    Ok(LinkBenchReport {
        transport:
            "serial driver -> pty -> firmware .elf on simavr (ATmega328P @ 16 MHz, paced 1x)".into(),
        firmware_build_id: health.info.map(|i| format!("{:08x}", i.build_id)),
        duration_s: elapsed,
        rtt_us: RttFigures {
            p50: s.rtt_p50_us,
            p99: s.rtt_p99_us,
            max: s.rtt_max_us,
            samples: s.rtt_samples,
        },
        frames_per_s: Rates {
            tx: rate(s.frames_tx, before.frames_tx),
            rx: rate(s.frames_rx, before.frames_rx),
            telemetry: rate(s.telemetry_rx, before.telemetry_rx),
        },
        errors: ErrorCounts {
            crc: s.crc_errors - before.crc_errors,
            decode: s.decode_errors - before.decode_errors,
            seq_gaps: s.seq_gaps - before.seq_gaps,
            nacks: s.nacks - before.nacks,
            board_rx_errors: s.board_rx_errors - before.board_rx_errors,
        },
        wire: WireFigures {
            baud,
            command_frame_us: cmd_us,
            telemetry_frame_us: tlm_us,
            expected_p50_us: expected,
        },
        ratio_p50_to_wire: s.rtt_p50_us / expected,
    })
}

impl LinkBenchReport {
    /// Human-readable summary.
    pub fn text(&self) -> String {
        format!(
            "link bench: {}\n  round trip p50 {:.0} us, p99 {:.0} us, max {:.0} us ({} samples)\n  \
             wire alone: command {:.0} us + half telemetry period 5000 us + telemetry {:.0} us = {:.0} us; measured p50 / expected = {:.2}\n  \
             frames/s: tx {:.1}, rx {:.1} (telemetry {:.1})\n  \
             errors: crc {}, decode {}, seq gaps {}, nacks {}, board rx errors {}",
            self.transport,
            self.rtt_us.p50,
            self.rtt_us.p99,
            self.rtt_us.max,
            self.rtt_us.samples,
            self.wire.command_frame_us,
            self.wire.telemetry_frame_us,
            self.wire.expected_p50_us,
            self.ratio_p50_to_wire,
            self.frames_per_s.tx,
            self.frames_per_s.rx,
            self.frames_per_s.telemetry,
            self.errors.crc,
            self.errors.decode,
            self.errors.seq_gaps,
            self.errors.nacks,
            self.errors.board_rx_errors,
        )
    }
}
