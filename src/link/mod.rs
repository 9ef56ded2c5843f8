//! The link to the body: the serial protocol to the motor-controller firmware.
//!
//! [`codec`] is the pure wire format (COBS + CRC-16 frames, no I/O), shared by the serial driver,
//! the in-process simulated board and the tests; `firmware/PROTOCOL.md` specifies it byte by byte.

pub mod codec;
