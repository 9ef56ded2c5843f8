//! The wire protocol between the brain and the motor-controller firmware, as a pure codec: no
//! I/O, no clock, no allocation on the decode path. `firmware/PROTOCOL.md` is the specification;
//! `firmware/test_vectors.txt` holds byte-exact vectors that both these Rust tests and the C
//! firmware tests check.
//!
//! A frame on the wire is `COBS(payload ‖ crc16_le(payload)) 0x00`, where
//! `payload = version u8 ‖ type u8 ‖ seq u16 ‖ body`, all little endian, and the payload is at
//! most [`MAX_PAYLOAD`] bytes. The CRC is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF).
//!
//! ```
//! use brainloop::link::codec::{encode_frame, FrameDecoder, Message, MAX_FRAME};
//! let mut wire = [0u8; MAX_FRAME];
//! let n = encode_frame(7, &Message::SetWheels { left: 1500, right: -1500 }, &mut wire);
//! let mut dec = FrameDecoder::new();
//! let mut got = None;
//! for &b in &wire[..n] {
//!     if let Some(r) = dec.push(b) { got = Some(r); }
//! }
//! let frame = got.unwrap().unwrap();
//! assert_eq!(frame.seq, 7);
//! assert_eq!(frame.msg, Message::SetWheels { left: 1500, right: -1500 });
//! ```

/// Protocol version carried in every payload.
pub const VERSION: u8 = 1;
/// Largest payload (version, type, seq, body), bytes.
pub const MAX_PAYLOAD: usize = 48;
/// Largest encoded frame on the wire including the CRC, COBS overhead and the 0x00 delimiter.
pub const MAX_FRAME: usize = MAX_PAYLOAD + 2 + 1 + 1;
/// Payload header length (version, type, seq).
pub const HEADER_LEN: usize = 4;

/// Message type codes (payload byte 1).
pub mod msg_type {
    /// Host → board: wheel speed setpoints.
    pub const SET_WHEELS: u8 = 0x01;
    /// Host → board: keep-alive (feeds the command watchdog, changes nothing).
    pub const HEARTBEAT: u8 = 0x02;
    /// Host → board: latch the e-stop.
    pub const ESTOP: u8 = 0x03;
    /// Host → board: clear a latched e-stop.
    pub const CLEAR_ESTOP: u8 = 0x04;
    /// Host → board: controller parameters.
    pub const SET_PARAMS: u8 = 0x05;
    /// Host → board: ask for an `INFO` frame.
    pub const INFO_REQUEST: u8 = 0x06;
    /// Board → host: periodic telemetry.
    pub const TELEMETRY: u8 = 0x81;
    /// Board → host: firmware information.
    pub const INFO: u8 = 0x82;
    /// Board → host: negative acknowledgement.
    pub const NACK: u8 = 0x83;
}

/// Fault flag bits reported in [`Telemetry::faults`].
pub mod fault {
    /// No valid frame for the watchdog period: motors are held at zero.
    pub const CMD_TIMEOUT: u16 = 1 << 0;
    /// The e-stop is latched.
    pub const ESTOP: u16 = 1 << 1;
    /// The last reset was caused by the hardware watchdog (a hung main loop).
    pub const HW_WATCHDOG_RESET: u16 = 1 << 2;
    /// Battery below the low-voltage threshold.
    pub const UNDERVOLTAGE: u16 = 1 << 3;
    /// The receive ring buffer overflowed; bytes were lost.
    pub const RX_OVERFLOW: u16 = 1 << 4;
    /// A PWM output is saturated at the PWM limit.
    pub const PWM_SATURATED: u16 = 1 << 5;
}

/// Why the board rejected a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NackReason {
    /// CRC mismatch.
    BadCrc,
    /// Unsupported protocol version.
    BadVersion,
    /// Unknown message type.
    UnknownType,
    /// Body length does not match the message type.
    BadLength,
    /// A value is out of its allowed range.
    OutOfRange,
    /// Refused because the e-stop is latched.
    EstopLatched,
    /// Frame longer than the maximum, or malformed COBS.
    Malformed,
    /// A reason code this version does not know.
    Other(u8),
}

impl NackReason {
    /// Wire code.
    pub fn code(self) -> u8 {
        match self {
            NackReason::BadCrc => 1,
            NackReason::BadVersion => 2,
            NackReason::UnknownType => 3,
            NackReason::BadLength => 4,
            NackReason::OutOfRange => 5,
            NackReason::EstopLatched => 6,
            NackReason::Malformed => 7,
            NackReason::Other(c) => c,
        }
    }

    /// From a wire code.
    pub fn from_code(c: u8) -> Self {
        match c {
            1 => NackReason::BadCrc,
            2 => NackReason::BadVersion,
            3 => NackReason::UnknownType,
            4 => NackReason::BadLength,
            5 => NackReason::OutOfRange,
            6 => NackReason::EstopLatched,
            7 => NackReason::Malformed,
            c => NackReason::Other(c),
        }
    }
}

/// Controller parameters (`SET_PARAMS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Params {
    /// Proportional gain, PWM counts per rad/s, ×100.
    pub kp: u16,
    /// Integral gain, PWM counts per rad, ×100.
    pub ki: u16,
    /// Derivative gain, PWM counts per rad/s², ×100.
    pub kd: u16,
    /// Feed-forward gain, PWM counts per rad/s, ×100.
    pub kf: u16,
    /// PWM magnitude limit, 0..=255.
    pub pwm_limit: u8,
    /// Command watchdog period, ms (50..=2000).
    pub watchdog_ms: u16,
}

impl Params {
    /// The firmware's defaults.
    pub const DEFAULT: Params = Params {
        kp: 1200,
        ki: 6000,
        kd: 0,
        kf: 1275,
        pwm_limit: 255,
        watchdog_ms: 250,
    };
}

/// Periodic telemetry from the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Telemetry {
    /// Board time, ms since reset (wraps).
    pub time_ms: u32,
    /// Encoder counts, left and right (wrap).
    pub enc: [i32; 2],
    /// Measured wheel speeds, mrad/s.
    pub speed: [i16; 2],
    /// Applied PWM, -255..=255.
    pub pwm: [i16; 2],
    /// Battery voltage, mV.
    pub battery_mv: u16,
    /// Fault flags ([`fault`]).
    pub faults: u16,
    /// Sequence number of the last valid host frame.
    pub last_seq: u16,
    /// Frames the board rejected since reset (wraps).
    pub rx_errors: u16,
}

/// Firmware information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Info {
    /// Protocol version the firmware speaks.
    pub proto: u8,
    /// Firmware version major, minor, patch.
    pub fw: [u8; 3],
    /// Build identifier.
    pub build_id: u32,
    /// Reset cause: the AVR `MCUSR` bits at start-up (1 power-on, 2 external, 4 brown-out,
    /// 8 watchdog).
    pub reset_cause: u8,
}

/// A protocol message (the payload body with its type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    /// Wheel angular-speed setpoints, mrad/s (each within ±[`MAX_WHEEL_MRAD_S`]).
    SetWheels {
        /// Left wheel, mrad/s.
        left: i16,
        /// Right wheel, mrad/s.
        right: i16,
    },
    /// Keep-alive.
    Heartbeat,
    /// Latch the e-stop.
    Estop,
    /// Clear the e-stop.
    ClearEstop,
    /// Controller parameters.
    SetParams(Params),
    /// Ask for firmware information.
    InfoRequest,
    /// Telemetry (board → host).
    Telemetry(Telemetry),
    /// Firmware information (board → host).
    Info(Info),
    /// Negative acknowledgement (board → host).
    Nack {
        /// Sequence number of the rejected frame (0 when it could not be read).
        seq: u16,
        /// Why.
        reason: NackReason,
    },
}

/// Largest wheel setpoint magnitude the firmware accepts, mrad/s.
pub const MAX_WHEEL_MRAD_S: i16 = 30_000;

impl Message {
    /// Wire type code.
    pub fn type_code(&self) -> u8 {
        use msg_type::*;
        match self {
            Message::SetWheels { .. } => SET_WHEELS,
            Message::Heartbeat => HEARTBEAT,
            Message::Estop => ESTOP,
            Message::ClearEstop => CLEAR_ESTOP,
            Message::SetParams(_) => SET_PARAMS,
            Message::InfoRequest => INFO_REQUEST,
            Message::Telemetry(_) => TELEMETRY,
            Message::Info(_) => INFO,
            Message::Nack { .. } => NACK,
        }
    }

    /// Body length in bytes for a type code (None for unknown codes).
    pub fn body_len(type_code: u8) -> Option<usize> {
        use msg_type::*;
        Some(match type_code {
            SET_WHEELS => 4,
            HEARTBEAT | ESTOP | CLEAR_ESTOP | INFO_REQUEST => 0,
            SET_PARAMS => 11,
            TELEMETRY => 28,
            INFO => 9,
            NACK => 3,
            _ => return None,
        })
    }

    /// Write the body into `out` (at least [`MAX_PAYLOAD`] - [`HEADER_LEN`] bytes); returns its
    /// length.
    fn write_body(&self, out: &mut [u8]) -> usize {
        let mut w = Writer { buf: out, pos: 0 };
        match *self {
            Message::SetWheels { left, right } => {
                w.i16(left);
                w.i16(right);
            }
            Message::Heartbeat | Message::Estop | Message::ClearEstop | Message::InfoRequest => {}
            Message::SetParams(p) => {
                w.u16(p.kp);
                w.u16(p.ki);
                w.u16(p.kd);
                w.u16(p.kf);
                w.u8(p.pwm_limit);
                w.u16(p.watchdog_ms);
            }
            Message::Telemetry(t) => {
                w.u32(t.time_ms);
                w.i32(t.enc[0]);
                w.i32(t.enc[1]);
                w.i16(t.speed[0]);
                w.i16(t.speed[1]);
                w.i16(t.pwm[0]);
                w.i16(t.pwm[1]);
                w.u16(t.battery_mv);
                w.u16(t.faults);
                w.u16(t.last_seq);
                w.u16(t.rx_errors);
            }
            Message::Info(i) => {
                w.u8(i.proto);
                w.u8(i.fw[0]);
                w.u8(i.fw[1]);
                w.u8(i.fw[2]);
                w.u32(i.build_id);
                w.u8(i.reset_cause);
            }
            Message::Nack { seq, reason } => {
                w.u16(seq);
                w.u8(reason.code());
            }
        }
        w.pos
    }

    /// Parse a body of the given type (length already checked).
    fn read_body(type_code: u8, body: &[u8]) -> Result<Message, CodecError> {
        use msg_type::*;
        let mut r = Reader { buf: body, pos: 0 };
        Ok(match type_code {
            SET_WHEELS => Message::SetWheels {
                left: r.i16(),
                right: r.i16(),
            },
            HEARTBEAT => Message::Heartbeat,
            ESTOP => Message::Estop,
            CLEAR_ESTOP => Message::ClearEstop,
            INFO_REQUEST => Message::InfoRequest,
            SET_PARAMS => Message::SetParams(Params {
                kp: r.u16(),
                ki: r.u16(),
                kd: r.u16(),
                kf: r.u16(),
                pwm_limit: r.u8(),
                watchdog_ms: r.u16(),
            }),
            TELEMETRY => Message::Telemetry(Telemetry {
                time_ms: r.u32(),
                enc: [r.i32(), r.i32()],
                speed: [r.i16(), r.i16()],
                pwm: [r.i16(), r.i16()],
                battery_mv: r.u16(),
                faults: r.u16(),
                last_seq: r.u16(),
                rx_errors: r.u16(),
            }),
            INFO => Message::Info(Info {
                proto: r.u8(),
                fw: [r.u8(), r.u8(), r.u8()],
                build_id: r.u32(),
                reset_cause: r.u8(),
            }),
            NACK => Message::Nack {
                seq: r.u16(),
                reason: NackReason::from_code(r.u8()),
            },
            t => return Err(CodecError::UnknownType(t)),
        })
    }
}

/// A decoded frame: sequence number and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Sender's sequence number (wraps at 65536).
    pub seq: u16,
    /// The message.
    pub msg: Message,
}

/// Why a frame was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// CRC mismatch.
    #[error("CRC mismatch (got {got:#06x}, computed {computed:#06x})")]
    BadCrc {
        /// CRC carried in the frame.
        got: u16,
        /// CRC computed over the payload.
        computed: u16,
    },
    /// Malformed COBS (a code byte pointing past the end, or a zero inside).
    #[error("malformed COBS encoding")]
    BadCobs,
    /// More bytes than [`MAX_FRAME`] before a delimiter.
    #[error("frame longer than {MAX_FRAME} bytes")]
    TooLong,
    /// Fewer bytes than a header and a CRC.
    #[error("frame too short ({0} bytes)")]
    TooShort(usize),
    /// Unsupported protocol version.
    #[error("unsupported protocol version {0}")]
    BadVersion(u8),
    /// Unknown message type.
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    /// Body length wrong for the type.
    #[error("bad body length {len} for message type {type_code:#04x}")]
    BadLength {
        /// Type code.
        type_code: u8,
        /// Body length received.
        len: usize,
    },
}

impl CodecError {
    /// Whether this is a CRC error (counted separately from other decode errors).
    pub fn is_crc(&self) -> bool {
        matches!(self, CodecError::BadCrc { .. })
    }

    /// The NACK reason the board would send for this error.
    pub fn nack_reason(&self) -> NackReason {
        match self {
            CodecError::BadCrc { .. } => NackReason::BadCrc,
            CodecError::BadVersion(_) => NackReason::BadVersion,
            CodecError::UnknownType(_) => NackReason::UnknownType,
            CodecError::BadLength { .. } | CodecError::TooShort(_) => NackReason::BadLength,
            CodecError::BadCobs | CodecError::TooLong => NackReason::Malformed,
        }
    }
}

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor).
/// Check value: `crc16(b"123456789") == 0x29B1`.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// COBS-encode `src` into `dst` (no trailing delimiter); returns the encoded length.
/// `dst` must hold `src.len() + src.len() / 254 + 1` bytes.
///
/// # Panics
/// If `dst` is too small (a programming error, never input-dependent for frames built here).
pub fn cobs_encode(src: &[u8], dst: &mut [u8]) -> usize {
    let mut code_pos = 0;
    let mut out = 1;
    let mut code: u8 = 1;
    for &b in src {
        if b == 0 {
            dst[code_pos] = code;
            code_pos = out;
            out += 1;
            code = 1;
        } else {
            dst[out] = b;
            out += 1;
            code += 1;
            if code == 0xFF {
                dst[code_pos] = code;
                code_pos = out;
                out += 1;
                code = 1;
            }
        }
    }
    dst[code_pos] = code;
    out
}

/// COBS-decode `src` (without the delimiter) into `dst`; returns the decoded length.
pub fn cobs_decode(src: &[u8], dst: &mut [u8]) -> Result<usize, CodecError> {
    let mut i = 0;
    let mut out = 0;
    while i < src.len() {
        let code = src[i] as usize;
        if code == 0 {
            return Err(CodecError::BadCobs);
        }
        i += 1;
        let end = i + code - 1;
        if end > src.len() {
            return Err(CodecError::BadCobs);
        }
        for &b in &src[i..end] {
            if b == 0 {
                return Err(CodecError::BadCobs);
            }
            if out >= dst.len() {
                return Err(CodecError::TooLong);
            }
            dst[out] = b;
            out += 1;
        }
        i = end;
        if code < 0xFF && i < src.len() {
            if out >= dst.len() {
                return Err(CodecError::TooLong);
            }
            dst[out] = 0;
            out += 1;
        }
    }
    Ok(out)
}

/// Build the payload (header and body) for a message; returns its length.
pub fn encode_payload(seq: u16, msg: &Message, out: &mut [u8; MAX_PAYLOAD]) -> usize {
    out[0] = VERSION;
    out[1] = msg.type_code();
    out[2..4].copy_from_slice(&seq.to_le_bytes());
    HEADER_LEN + msg.write_body(&mut out[HEADER_LEN..])
}

/// Parse a payload (header and body, CRC already checked and removed).
pub fn decode_payload(payload: &[u8]) -> Result<Frame, CodecError> {
    if payload.len() < HEADER_LEN {
        return Err(CodecError::TooShort(payload.len()));
    }
    if payload[0] != VERSION {
        return Err(CodecError::BadVersion(payload[0]));
    }
    let type_code = payload[1];
    let seq = u16::from_le_bytes([payload[2], payload[3]]);
    let body = &payload[HEADER_LEN..];
    let want = Message::body_len(type_code).ok_or(CodecError::UnknownType(type_code))?;
    if body.len() != want {
        return Err(CodecError::BadLength {
            type_code,
            len: body.len(),
        });
    }
    Ok(Frame {
        seq,
        msg: Message::read_body(type_code, body)?,
    })
}

/// Encode a whole frame, ready for the wire (ends with the 0x00 delimiter); returns its length.
pub fn encode_frame(seq: u16, msg: &Message, out: &mut [u8; MAX_FRAME]) -> usize {
    let mut raw = [0u8; MAX_PAYLOAD + 2];
    let mut payload = [0u8; MAX_PAYLOAD];
    let n = encode_payload(seq, msg, &mut payload);
    raw[..n].copy_from_slice(&payload[..n]);
    raw[n..n + 2].copy_from_slice(&crc16(&payload[..n]).to_le_bytes());
    let m = cobs_encode(&raw[..n + 2], &mut out[..]);
    out[m] = 0;
    m + 1
}

/// Encode a whole frame into a new vector (convenience for tests and tools).
pub fn encode_frame_vec(seq: u16, msg: &Message) -> Vec<u8> {
    let mut out = [0u8; MAX_FRAME];
    let n = encode_frame(seq, msg, &mut out);
    out[..n].to_vec()
}

/// Decode one frame's bytes (without the delimiter): COBS, CRC, header, body.
pub fn decode_frame(encoded: &[u8]) -> Result<Frame, CodecError> {
    if encoded.len() > MAX_FRAME - 1 {
        return Err(CodecError::TooLong);
    }
    let mut raw = [0u8; MAX_FRAME];
    let n = cobs_decode(encoded, &mut raw)?;
    if n < HEADER_LEN + 2 {
        return Err(CodecError::TooShort(n));
    }
    let (payload, crc) = raw[..n].split_at(n - 2);
    let got = u16::from_le_bytes([crc[0], crc[1]]);
    let computed = crc16(payload);
    if got != computed {
        return Err(CodecError::BadCrc { got, computed });
    }
    decode_payload(payload)
}

/// Incremental frame decoder: feed received bytes one at a time; it yields a result at each
/// delimiter. Bounded memory, never panics, resynchronises on the next 0x00 after any error.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: [u8; MAX_FRAME],
    len: usize,
    overflow: bool,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// An empty decoder.
    pub const fn new() -> Self {
        Self {
            buf: [0; MAX_FRAME],
            len: 0,
            overflow: false,
        }
    }

    /// Feed one byte; at a delimiter returns the decoded frame or why it was rejected. Empty
    /// frames (consecutive delimiters) are ignored.
    pub fn push(&mut self, byte: u8) -> Option<Result<Frame, CodecError>> {
        if byte != 0 {
            if self.len < self.buf.len() {
                self.buf[self.len] = byte;
                self.len += 1;
            } else {
                self.overflow = true;
            }
            return None;
        }
        let len = std::mem::replace(&mut self.len, 0);
        if std::mem::replace(&mut self.overflow, false) {
            return Some(Err(CodecError::TooLong));
        }
        if len == 0 {
            return None;
        }
        Some(decode_frame(&self.buf[..len]))
    }

    /// Feed a slice, calling `f` for each frame result.
    pub fn feed(&mut self, bytes: &[u8], mut f: impl FnMut(Result<Frame, CodecError>)) {
        for &b in bytes {
            if let Some(r) = self.push(b) {
                f(r);
            }
        }
    }

    /// Drop any partial frame (e.g. after a reconnect).
    pub fn reset(&mut self) {
        self.len = 0;
        self.overflow = false;
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }
    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }
    fn i16(&mut self, v: i16) {
        self.put(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.put(&v.to_le_bytes());
    }
}

/// Reads fixed-size fields; the caller checked the length, so reads past the end yield zeros
/// rather than panicking.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(s) = self.buf.get(self.pos..self.pos + N) {
            out.copy_from_slice(s);
        }
        self.pos += N;
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn i16(&mut self) -> i16 {
        i16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.take())
    }
}

/// Wheel speed in rad/s to the wire's mrad/s, clamped to ±[`MAX_WHEEL_MRAD_S`]; non-finite → 0.
pub fn rad_s_to_wire(v: f64) -> i16 {
    if !v.is_finite() {
        return 0;
    }
    let m = MAX_WHEEL_MRAD_S as f64;
    (v * 1000.0).round().clamp(-m, m) as i16
}

/// Wire mrad/s to rad/s.
pub fn wire_to_rad_s(v: i16) -> f64 {
    v as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc16(b"123456789"), 0x29B1);
    }

    #[test]
    fn cobs_known() {
        let mut out = [0u8; 16];
        let n = cobs_encode(&[0x11, 0x22, 0x00, 0x33], &mut out);
        assert_eq!(&out[..n], &[0x03, 0x11, 0x22, 0x02, 0x33]);
        let n = cobs_encode(&[0x00], &mut out);
        assert_eq!(&out[..n], &[0x01, 0x01]);
        let mut back = [0u8; 16];
        let m = cobs_decode(&[0x03, 0x11, 0x22, 0x02, 0x33], &mut back).unwrap();
        assert_eq!(&back[..m], &[0x11, 0x22, 0x00, 0x33]);
    }

    #[test]
    fn every_message_fits() {
        for t in 0..=255u8 {
            if let Some(n) = Message::body_len(t) {
                assert!(HEADER_LEN + n <= MAX_PAYLOAD);
            }
        }
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (any::<i16>(), any::<i16>())
                .prop_map(|(left, right)| Message::SetWheels { left, right }),
            Just(Message::Heartbeat),
            Just(Message::Estop),
            Just(Message::ClearEstop),
            Just(Message::InfoRequest),
            (any::<[u16; 4]>(), any::<u8>(), any::<u16>()).prop_map(
                |(g, pwm_limit, watchdog_ms)| {
                    Message::SetParams(Params {
                        kp: g[0],
                        ki: g[1],
                        kd: g[2],
                        kf: g[3],
                        pwm_limit,
                        watchdog_ms,
                    })
                }
            ),
            (
                any::<u32>(),
                any::<[i32; 2]>(),
                any::<[i16; 2]>(),
                any::<[i16; 2]>(),
                any::<[u16; 4]>()
            )
                .prop_map(|(time_ms, enc, speed, pwm, w)| Message::Telemetry(
                    Telemetry {
                        time_ms,
                        enc,
                        speed,
                        pwm,
                        battery_mv: w[0],
                        faults: w[1],
                        last_seq: w[2],
                        rx_errors: w[3],
                    }
                )),
            (any::<u8>(), any::<[u8; 3]>(), any::<u32>(), any::<u8>()).prop_map(
                |(proto, fw, build_id, reset_cause)| Message::Info(Info {
                    proto,
                    fw,
                    build_id,
                    reset_cause
                })
            ),
            (any::<u16>(), 1u8..=7).prop_map(|(seq, c)| Message::Nack {
                seq,
                reason: NackReason::from_code(c)
            }),
        ]
    }

    proptest! {
        // Fixed seed: the same cases on every run.
        #![proptest_config(ProptestConfig {
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x6272_6169_6e6c_6f6f),
            ..ProptestConfig::default()
        })]

        #[test]
        fn round_trip(seq in any::<u16>(), msg in arb_message()) {
            let wire = encode_frame_vec(seq, &msg);
            prop_assert!(wire.len() <= MAX_FRAME);
            prop_assert_eq!(*wire.last().unwrap(), 0);
            prop_assert!(wire[..wire.len() - 1].iter().all(|&b| b != 0));
            let mut dec = FrameDecoder::new();
            let mut got = Vec::new();
            dec.feed(&wire, |r| got.push(r));
            prop_assert_eq!(got, vec![Ok(Frame { seq, msg })]);
        }

        #[test]
        fn cobs_round_trip(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut enc = vec![0u8; data.len() + data.len() / 254 + 1];
            let n = cobs_encode(&data, &mut enc);
            prop_assert!(enc[..n].iter().all(|&b| b != 0));
            let mut dec = vec![0u8; data.len()];
            let m = cobs_decode(&enc[..n], &mut dec).unwrap();
            prop_assert_eq!(&dec[..m], &data[..]);
        }

        #[test]
        fn garbage_never_panics_and_resyncs(garbage in proptest::collection::vec(any::<u8>(), 0..400),
                                            seq in any::<u16>(), msg in arb_message()) {
            let mut dec = FrameDecoder::new();
            dec.feed(&garbage, |_| {});
            // After any garbage, one delimiter then a good frame decodes.
            let mut wire = vec![0u8];
            wire.extend(encode_frame_vec(seq, &msg));
            let mut last = None;
            dec.feed(&wire, |r| last = Some(r));
            prop_assert_eq!(last, Some(Ok(Frame { seq, msg })));
        }

        #[test]
        fn single_bit_flip_is_detected(seq in any::<u16>(), msg in arb_message(), bit in 0usize..400) {
            let mut wire = encode_frame_vec(seq, &msg);
            let body = wire.len() - 1;
            let bit = bit % (body * 8);
            wire[bit / 8] ^= 1 << (bit % 8);
            let mut dec = FrameDecoder::new();
            let mut results = Vec::new();
            dec.feed(&wire, |r| results.push(r));
            dec.feed(&[0], |r| results.push(r));
            // A flip can split the frame (it made a zero) but never yields a valid wrong frame.
            prop_assert!(
                results.iter().all(|r| r.is_err()),
                "bit flip went undetected: {:?}",
                results
            );
        }
    }
}
