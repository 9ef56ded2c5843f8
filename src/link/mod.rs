//! The link to the body: the serial protocol to the motor-controller firmware.
//! May depend on body, config, msg and util.
//!
//! * [`codec`]: the pure wire format (COBS + CRC-16 frames, no I/O), shared by the serial
//!   driver, the in-process simulated board and the tests; `firmware/PROTOCOL.md` specifies it
//!   byte by byte.
//! * [`session`]: the host side of the protocol without I/O: sequence numbers, telemetry,
//!   error and round-trip accounting.
//! * [`serial`]: the driver thread on a serial port (or pty) with read timeouts and reconnect
//!   with backoff; [`serial::SerialLink`] implements [`crate::body::Body`].
//! * [`bench`]: `brainloop bench link`, round trips over the emulated board.

pub mod bench;
pub mod codec;
pub mod serial;
pub mod session;

pub use serial::{LinkHealth, SerialConfig, SerialLink};
pub use session::{LinkStats, Session};

/// Monotonic clock (`CLOCK_MONOTONIC`) in nanoseconds: the time base of every `now_ns`.
pub use crate::util::monotonic_ns;
