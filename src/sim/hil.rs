//! Hardware in the loop in the simulator: the real motor-controller firmware
//! (`firmware/build/brainloop-fw.elf`) running on the emulated ATmega328P
//! (`firmware/build/libboardsim.so`, simavr, C API in `firmware/sim/board.h`) sits between the
//! brain and the simulated wheels, in place of the in-process [`SimBoard`](super::board::SimBoard).
//!
//! Every command goes through the host side of the real link ([`Session`]: sequence numbers,
//! COBS + CRC-16) as bytes into the emulated UART; every telemetry frame the firmware sends comes
//! back as bytes and is decoded into the [`BodyState`] (encoders, wheel speeds, battery, faults).
//! The board runs unpaced on the simulation clock (`board_run_ns` by each physics step), and the
//! emulated motors' true wheel speeds (what the firmware's PWM made of them) are the velocity
//! targets of the simulated wheels. The command watchdog and the e-stop latch are therefore the
//! firmware's own. Sensors that are not on the board (IMU, range rays) come from the body.

use crate::body::{BodyError, RobotParams, SimulatedBody};
use crate::link::codec::{Message, MAX_FRAME};
use crate::link::{LinkStats, Session};
use crate::msg::{BodyState, WheelSpeeds};
use crate::sim::board::{with_off_board_sensors, BoardLink, Boarded};
use libloading::Library;
use std::ffi::{c_char, c_double, c_int, c_void, CString};
use std::path::{Path, PathBuf};

/// The command that builds what `--hil` needs.
pub const BUILD_COMMAND: &str = "make -C firmware all sim";
/// The emulated board library, in the firmware build directory.
pub const BOARD_LIB: &str = "libboardsim.so";
/// The firmware image, in the firmware build directory.
pub const FIRMWARE_ELF: &str = "brainloop-fw.elf";
/// Emulated time the firmware gets to boot before the run starts, ns.
pub const BOOT_NS: u64 = 20_000_000;

/// Errors setting up the emulated board.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HilError {
    /// The firmware image or the emulated board library has not been built.
    #[error("--hil needs {path}, which is missing: build the firmware and the emulated board with `{BUILD_COMMAND}`")]
    Missing {
        /// The missing file.
        path: String,
    },
    /// The library could not be loaded or lacks a symbol.
    #[error(
        "cannot load the emulated board {path}: {message} (rebuild it with `{BUILD_COMMAND}`)"
    )]
    Load {
        /// The library.
        path: String,
        /// What the loader said.
        message: String,
    },
    /// simavr refused the firmware image.
    #[error(
        "the emulated board could not load the firmware {0} (rebuild it with `{BUILD_COMMAND}`)"
    )]
    Firmware(String),
}

/// Where `--hil` looks for the firmware build: `firmware/build` under the working directory when
/// it exists (a checkout), else this source tree's.
pub fn default_firmware_dir() -> PathBuf {
    let local = Path::new("firmware").join("build");
    if local.is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("firmware")
            .join("build")
    }
}

type NewFn = unsafe extern "C" fn(*const c_char) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type RunFn = unsafe extern "C" fn(*mut c_void, u64);
type SendFn = unsafe extern "C" fn(*mut c_void, *const u8, usize);
type RecvFn = unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> usize;
type WheelFn = unsafe extern "C" fn(*const c_void, c_int) -> c_double;
type PwmFn = unsafe extern "C" fn(*const c_void, c_int) -> c_int;
type CrashedFn = unsafe extern "C" fn(*const c_void) -> c_int;

/// The emulated board (the real firmware on simavr), loaded in-process.
pub struct EmulatedBoard {
    ptr: *mut c_void,
    free: FreeFn,
    run: RunFn,
    send: SendFn,
    recv: RecvFn,
    wheel: WheelFn,
    pwm: PwmFn,
    crashed: CrashedFn,
    // Last: the functions above point into it.
    _lib: Library,
}

// SAFETY: the board is a plain heap object owned by this value and only touched through `&mut
// self` / `&self` methods, never from two threads at once; simavr keeps no thread-local state.
unsafe impl Send for EmulatedBoard {}

impl std::fmt::Debug for EmulatedBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatedBoard").finish_non_exhaustive()
    }
}

impl EmulatedBoard {
    /// Load `libboardsim.so` and `brainloop-fw.elf` from `dir` and reset the board.
    pub fn load(dir: &Path) -> Result<Self, HilError> {
        let lib_path = dir.join(BOARD_LIB);
        let elf_path = dir.join(FIRMWARE_ELF);
        for p in [&elf_path, &lib_path] {
            if !p.is_file() {
                return Err(HilError::Missing {
                    path: p.display().to_string(),
                });
            }
        }
        let load_err = |e: &dyn std::fmt::Display| HilError::Load {
            path: lib_path.display().to_string(),
            message: e.to_string(),
        };
        // SAFETY: our own library with a plain C API; every symbol is looked up with the C
        // signature declared in firmware/sim/board.h.
        unsafe {
            let lib = Library::new(&lib_path).map_err(|e| load_err(&e))?;
            let new: NewFn = *lib.get(b"board_new\0").map_err(|e| load_err(&e))?;
            let free: FreeFn = *lib.get(b"board_free\0").map_err(|e| load_err(&e))?;
            let run: RunFn = *lib.get(b"board_run_ns\0").map_err(|e| load_err(&e))?;
            let send: SendFn = *lib.get(b"board_uart_send\0").map_err(|e| load_err(&e))?;
            let recv: RecvFn = *lib.get(b"board_uart_recv\0").map_err(|e| load_err(&e))?;
            let wheel: WheelFn = *lib.get(b"board_wheel_speed\0").map_err(|e| load_err(&e))?;
            let pwm: PwmFn = *lib.get(b"board_pwm\0").map_err(|e| load_err(&e))?;
            let crashed: CrashedFn = *lib.get(b"board_crashed\0").map_err(|e| load_err(&e))?;
            let elf =
                CString::new(elf_path.to_string_lossy().as_bytes()).map_err(|e| load_err(&e))?;
            let ptr = new(elf.as_ptr());
            if ptr.is_null() {
                return Err(HilError::Firmware(elf_path.display().to_string()));
            }
            Ok(Self {
                ptr,
                free,
                run,
                send,
                recv,
                wheel,
                pwm,
                crashed,
                _lib: lib,
            })
        }
    }

    /// Advance emulated time by `ns`.
    pub fn run_ns(&mut self, ns: u64) {
        // SAFETY: `ptr` is the live board this value owns.
        unsafe { (self.run)(self.ptr, ns) }
    }

    /// Queue bytes for the board's UART receiver.
    pub fn send(&mut self, bytes: &[u8]) {
        // SAFETY: valid pointer and length of a live slice.
        unsafe { (self.send)(self.ptr, bytes.as_ptr(), bytes.len()) }
    }

    /// Take the bytes the board transmitted (up to `out.len()`); returns how many.
    pub fn recv(&mut self, out: &mut [u8]) -> usize {
        // SAFETY: valid pointer and capacity of a live buffer.
        unsafe { (self.recv)(self.ptr, out.as_mut_ptr(), out.len()) }
    }

    /// True wheel angular speed of the emulated motor, rad/s (0 left, 1 right).
    pub fn wheel_speed(&self, wheel: usize) -> f64 {
        // SAFETY: live board; the wheel index is masked by the C side.
        unsafe { (self.wheel)(self.ptr, wheel as c_int) }
    }

    /// PWM the firmware applies now, -255..=255.
    pub fn pwm(&self, wheel: usize) -> i32 {
        // SAFETY: as above.
        unsafe { (self.pwm)(self.ptr, wheel as c_int) }
    }

    /// Whether the emulated CPU crashed or stopped.
    pub fn crashed(&self) -> bool {
        // SAFETY: as above.
        unsafe { (self.crashed)(self.ptr) != 0 }
    }
}

impl Drop for EmulatedBoard {
    fn drop(&mut self) {
        // SAFETY: freed once, here; the library is still loaded (`_lib` drops after this).
        unsafe { (self.free)(self.ptr) }
    }
}

/// A simulated body driven through the real firmware on the emulated board.
pub type HilBoard<B> = Boarded<HilLink, B>;

/// The real firmware on the emulated board and the host side of its link ([`Session`]).
pub struct HilLink {
    board: EmulatedBoard,
    session: Session,
    robot: RobotParams,
    now_ns: u64,
    rx: Vec<u8>,
    crash_reported: bool,
}

impl std::fmt::Debug for HilLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HilLink")
            .field("board", &self.board)
            .field("now_ns", &self.now_ns)
            .field("link", &self.session.stats())
            .finish_non_exhaustive()
    }
}

impl<B: SimulatedBody> HilBoard<B> {
    /// Put `inner` behind the real firmware on the emulated board from `firmware_dir` (see
    /// [`default_firmware_dir`]); the board boots for [`BOOT_NS`] of emulated time first.
    pub fn new(inner: B, robot: RobotParams, firmware_dir: &Path) -> Result<Self, HilError> {
        Ok(Self::behind(HilLink::new(robot, firmware_dir)?, inner))
    }

    /// The emulated board.
    pub fn board(&self) -> &EmulatedBoard {
        &self.link().board
    }

    /// Link statistics of the host side (frames, errors, round trips).
    pub fn link_stats(&self) -> LinkStats {
        self.link().session.stats()
    }

    /// Whether the emulated CPU crashed or stopped.
    pub fn crashed(&self) -> bool {
        self.link().board.crashed()
    }
}

impl HilLink {
    fn new(robot: RobotParams, firmware_dir: &Path) -> Result<Self, HilError> {
        let mut board = EmulatedBoard::load(firmware_dir)?;
        board.run_ns(BOOT_NS);
        let mut b = Self {
            board,
            session: Session::for_robot(&robot),
            robot,
            now_ns: 0,
            rx: vec![0u8; 4096],
            crash_reported: false,
        };
        b.pump();
        if b.board.crashed() {
            return Err(HilError::Firmware(
                firmware_dir.join(FIRMWARE_ELF).display().to_string(),
            ));
        }
        Ok(b)
    }

    /// Deliver everything the board transmitted to the host session.
    fn pump(&mut self) {
        loop {
            let n = self.board.recv(&mut self.rx);
            if n == 0 {
                break;
            }
            self.session.receive(self.now_ns, &self.rx[..n]);
        }
    }
}

impl BoardLink for HilLink {
    const NAME: &'static str = "firmware(emulated ATmega328P)";

    fn send<B: SimulatedBody>(&mut self, msg: Message, _body: &mut B) {
        let mut buf = [0u8; MAX_FRAME];
        let n = self.session.encode(self.now_ns, &msg, &mut buf);
        self.board.send(&buf[..n]);
    }

    fn refusal(&self) -> Option<BodyError> {
        if self.board.crashed() {
            return Some(BodyError::Disconnected("emulated board stopped".into()));
        }
        self.session
            .body_state(&self.robot)
            .estop
            .then(|| BodyError::Refused("e-stop latched".into()))
    }

    fn state<B: SimulatedBody>(&self, body: &B) -> BodyState {
        with_off_board_sensors(self.session.body_state(&self.robot), &body.state())
    }

    fn advance<B: SimulatedBody>(&mut self, dt: f64, body: &mut B) {
        let ns = (dt * 1e9).round() as u64;
        self.board.run_ns(ns);
        self.now_ns += ns;
        self.pump();
        let crashed = self.board.crashed();
        if crashed && !self.crash_reported {
            self.crash_reported = true;
            tracing::error!("the emulated board's CPU stopped: the wheels are stopped");
        }
        // The simulated wheels follow the emulated motors (what the firmware's PWM made of its
        // setpoints); a stopped board drives nothing.
        let w = if crashed {
            WheelSpeeds::default()
        } else {
            WheelSpeeds {
                left: self.board.wheel_speed(0),
                right: self.board.wheel_speed(1),
            }
        };
        let _ = body.command(w);
        body.advance(dt);
    }

    fn frames(&self) -> (u64, u64) {
        let s = self.session.stats();
        (s.frames_tx, s.telemetry_rx)
    }

    fn errors(&self) -> crate::sim::board::LinkErrors {
        let s = self.session.stats();
        crate::sim::board::LinkErrors {
            host_crc_errors: s.crc_errors,
            host_decode_errors: s.decode_errors,
            board_rx_errors: s.board_rx_errors,
            host_implausible: s.implausible_telemetry,
        }
    }

    fn failure(&self) -> Option<String> {
        self.board
            .crashed()
            .then(|| "the emulated board's CPU stopped (firmware crash)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_build_is_one_line_naming_the_make_command() {
        let dir = std::env::temp_dir().join("brainloop-no-firmware-here");
        let e = EmulatedBoard::load(&dir).unwrap_err().to_string();
        assert!(e.contains(BUILD_COMMAND) && e.contains(FIRMWARE_ELF), "{e}");
        assert!(!e.contains('\n'));
    }
}
