//! Hardware-in-the-loop rig: the real firmware .elf on the emulated board
//! (`firmware/build/libboardsim.so`, simavr, unpaced) talking to the real Rust link session,
//! everything on one simulated clock, so the tests are deterministic.
#![allow(dead_code)]

use brainloop::link::codec::{Message, MAX_FRAME};
use brainloop::link::Session;
use brainloop::sim::hil::EmulatedBoard;
use std::path::PathBuf;
use std::sync::Once;

static BUILD: Once = Once::new();

/// `firmware/` in this checkout.
pub fn firmware_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("firmware")
}

/// Build the firmware and the emulated board once per test process.
pub fn build_board() {
    BUILD.call_once(|| {
        let out = std::process::Command::new("make")
            .args(["-s", "-C"])
            .arg(firmware_dir())
            .arg("sim")
            .output()
            .expect("run make");
        assert!(
            out.status.success(),
            "make -C firmware sim failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// The emulated board, loaded in-process: the library's [`EmulatedBoard`] with the rig's
/// conventions (built on first use, signed wheel indices, received bytes as a `Vec`).
pub struct Board(EmulatedBoard);

impl Board {
    /// Load the library and the firmware.
    pub fn new() -> Self {
        build_board();
        Self(EmulatedBoard::load(&firmware_dir().join("build")).expect("load the emulated board"))
    }
    /// Advance emulated time.
    pub fn run_ns(&mut self, ns: u64) {
        self.0.run_ns(ns)
    }
    /// Bytes into the board's UART.
    pub fn send(&mut self, b: &[u8]) {
        self.0.send(b)
    }
    /// Bytes the board sent.
    pub fn recv(&mut self) -> Vec<u8> {
        let mut buf = vec![0u8; 8192];
        let n = self.0.recv(&mut buf);
        buf.truncate(n);
        buf
    }
    /// True wheel speed, rad/s.
    pub fn wheel(&self, i: i32) -> f64 {
        self.0.wheel_speed(i as usize)
    }
    /// Applied PWM.
    pub fn pwm(&self, i: i32) -> i32 {
        self.0.pwm(i as usize)
    }
    /// Whether the emulated CPU stopped.
    pub fn crashed(&self) -> bool {
        self.0.crashed()
    }
}

/// Rewrites a complete frame from the board before the host sees it (fault injection).
pub type FrameFilter = Box<dyn FnMut(&mut Vec<u8>)>;

/// Board + host session on one simulated clock.
pub struct Rig {
    pub board: Board,
    pub session: Session,
    pub t_ns: u64,
    /// Applied to every complete frame from the board before the session sees it.
    pub downlink_filter: Option<FrameFilter>,
    partial: Vec<u8>,
}

impl Rig {
    pub fn new() -> Self {
        let mut r = Self {
            board: Board::new(),
            session: Session::new(),
            t_ns: 0,
            downlink_filter: None,
            partial: Vec::new(),
        };
        r.step_ms(20); // boot
        r
    }

    /// Send a message through the session (its seq is returned).
    pub fn send(&mut self, msg: Message) -> u16 {
        let seq = self.session.next_seq();
        let mut out = [0u8; MAX_FRAME];
        let n = self.session.encode(self.t_ns, &msg, &mut out);
        self.board.send(&out[..n]);
        seq
    }

    /// Raw bytes onto the wire.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.board.send(bytes);
    }

    /// Advance 1 ms at a time, delivering the board's output to the session.
    pub fn step_ms(&mut self, ms: u64) {
        for _ in 0..ms {
            self.board.run_ns(1_000_000);
            self.t_ns += 1_000_000;
            let bytes = self.board.recv();
            for b in bytes {
                self.partial.push(b);
                if b == 0 {
                    let mut frame = std::mem::take(&mut self.partial);
                    if let Some(f) = self.downlink_filter.as_mut() {
                        f(&mut frame);
                    }
                    self.session.receive(self.t_ns, &frame);
                }
            }
            assert!(!self.board.crashed(), "emulated CPU stopped");
        }
    }

    /// Wheel setpoints in rad/s.
    pub fn wheels(&mut self, l: f64, r: f64) -> u16 {
        self.send(Message::SetWheels {
            left: (l * 1000.0).round() as i16,
            right: (r * 1000.0).round() as i16,
        })
    }

    /// Latest telemetry.
    pub fn tlm(&self) -> brainloop::link::codec::Telemetry {
        self.session.telemetry().expect("telemetry").0
    }
}

/// Small deterministic PRNG (xorshift64*).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Flip one bit of a frame (not the delimiter) so that no byte becomes 0x00: the frame stays
/// one frame, and is corrupt.
pub fn flip_one_bit(frame: &mut [u8], rng: &mut Rng) {
    let body = frame.len() - 1;
    loop {
        let i = rng.below(body as u64) as usize;
        let bit = rng.below(8) as u8;
        let v = frame[i] ^ (1 << bit);
        if v != 0 {
            frame[i] = v;
            return;
        }
    }
}
