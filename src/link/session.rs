//! The host side of the protocol as a state machine without I/O ("sans-I/O"): it numbers and
//! encodes outgoing frames, decodes incoming bytes, keeps the latest telemetry, unwraps encoder
//! counts, and accounts for every error, lost frame and round-trip time. The serial driver
//! thread and the in-process hardware-in-the-loop tests run exactly this code; only where the
//! bytes go differs. Time is passed in (`now_ns`), so it runs on a mock clock too.

use super::codec::{
    self, fault, CodecError, Frame, FrameDecoder, Info, Message, NackReason, Telemetry, MAX_FRAME,
};
use crate::body::RobotParams;
use crate::msg::{BodyState, WheelSpeeds};
use hdrhistogram::Histogram;

/// Counters and round-trip statistics of one link (since it was created; reconnects included).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct LinkStats {
    /// Frames sent.
    pub frames_tx: u64,
    /// Valid frames received.
    pub frames_rx: u64,
    /// Telemetry frames received.
    pub telemetry_rx: u64,
    /// Bytes received.
    pub bytes_rx: u64,
    /// Received frames rejected for a CRC mismatch.
    pub crc_errors: u64,
    /// Received frames rejected for any other reason (COBS, length, version, type).
    pub decode_errors: u64,
    /// Board frames lost, from gaps in the board's sequence numbers.
    pub seq_gaps: u64,
    /// NACKs received from the board.
    pub nacks: u64,
    /// Frames the board says it rejected (its `rx_errors`, accumulated across wraps and resets).
    pub board_rx_errors: u64,
    /// Successful (re)connections.
    pub connects: u64,
    /// Round-trip samples recorded.
    pub rtt_samples: u64,
    /// Command-to-telemetry round trip, median, µs.
    pub rtt_p50_us: f64,
    /// Command-to-telemetry round trip, 99th percentile, µs.
    pub rtt_p99_us: f64,
    /// Command-to-telemetry round trip, maximum, µs.
    pub rtt_max_us: f64,
    /// Telemetry frames refused as physically implausible: an encoder jump or a wheel speed
    /// the motors cannot reach ([`Plausibility`]). Their motion is not applied; the fault
    /// bits they carry are.
    pub implausible_telemetry: u64,
}

/// What the wheels can physically do, for telling a wild telemetry frame (a fake or broken
/// board, an encoder glitch) from motion. Bounds are generous (encoder steps at twice the
/// motors' top speed, reported speeds up to 1.5 times it): they catch jumps, not noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plausibility {
    /// Encoder counts per second a wheel can turn at most (with margin).
    pub max_ticks_per_s: f64,
    /// Encoder counts always allowed between two frames (quantisation, a frame in flight).
    pub slack_ticks: f64,
    /// Longest interval credited to one encoder step, s: a longer gap cannot excuse a jump.
    pub max_dt_s: f64,
    /// Largest wheel speed a frame may report, rad/s.
    pub max_speed_rad_s: f64,
}

impl Plausibility {
    /// Bounds for this robot, from its motors' top speed.
    pub fn for_robot(robot: &RobotParams) -> Self {
        let top = robot.max_wheel_speed.abs().max(1e-3);
        Self {
            max_ticks_per_s: 2.0 * top * robot.ticks_per_rev as f64 / std::f64::consts::TAU,
            slack_ticks: 16.0,
            max_dt_s: 0.5,
            max_speed_rad_s: 1.5 * top,
        }
    }

    /// Whether an encoder step of `delta` counts over `dt_s` seconds is one a wheel can make.
    pub fn encoder_step(&self, delta: i64, dt_s: f64) -> bool {
        let dt = dt_s.clamp(0.0, self.max_dt_s);
        (delta.unsigned_abs() as f64) <= self.max_ticks_per_s * dt + self.slack_ticks
    }
}

const PENDING: usize = 64;

/// Host-side protocol state.
pub struct Session {
    tx_seq: u16,
    decoder: FrameDecoder,
    last_board_seq: Option<u16>,
    last_board_rx_errors: Option<u16>,
    pending: [(u16, u64); PENDING],
    pending_len: usize,
    rtt: Histogram<u64>,
    stats: LinkStats,
    telemetry: Option<Telemetry>,
    telemetry_ns: u64,
    enc: [i64; 2],
    last_enc: Option<[i32; 2]>,
    info: Option<Info>,
    last_nack: Option<(u16, NackReason)>,
    limits: Plausibility,
    logged_implausible: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("stats", &self.stats)
            .field("telemetry", &self.telemetry)
            .field("enc", &self.enc)
            .finish_non_exhaustive()
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    /// A fresh session for the default robot (allocates its histogram once, here).
    pub fn new() -> Self {
        Self::for_robot(&RobotParams::load_default())
    }

    /// A fresh session whose telemetry plausibility follows `robot`'s wheels.
    pub fn for_robot(robot: &RobotParams) -> Self {
        Self {
            tx_seq: 1,
            decoder: FrameDecoder::new(),
            last_board_seq: None,
            last_board_rx_errors: None,
            pending: [(0, 0); PENDING],
            pending_len: 0,
            // 1 µs .. 100 s, 3 significant digits; fixed size, no allocation when recording.
            rtt: Histogram::new_with_bounds(1_000, 100_000_000_000, 3)
                .expect("constant histogram bounds are valid"),
            stats: LinkStats::default(),
            telemetry: None,
            telemetry_ns: 0,
            enc: [0; 2],
            last_enc: None,
            info: None,
            last_nack: None,
            limits: Plausibility::for_robot(robot),
            logged_implausible: 0,
        }
    }

    /// Encode `msg` as the next frame into `out` (returns its length) and remember its send
    /// time for the round-trip measurement. Call it when the bytes actually go on the wire.
    pub fn encode(&mut self, now_ns: u64, msg: &Message, out: &mut [u8; MAX_FRAME]) -> usize {
        let seq = self.tx_seq;
        self.tx_seq = self.tx_seq.wrapping_add(1);
        let n = codec::encode_frame(seq, msg, out);
        if self.pending_len == PENDING {
            self.pending.copy_within(1.., 0);
            self.pending_len -= 1;
        }
        self.pending[self.pending_len] = (seq, now_ns);
        self.pending_len += 1;
        self.stats.frames_tx += 1;
        n
    }

    /// Sequence number the next frame will carry.
    pub fn next_seq(&self) -> u16 {
        self.tx_seq
    }

    /// Feed received bytes; returns how many valid frames they completed.
    pub fn receive(&mut self, now_ns: u64, bytes: &[u8]) -> usize {
        self.stats.bytes_rx += bytes.len() as u64;
        let mut n = 0;
        for &b in bytes {
            if let Some(r) = self.decoder.push(b) {
                if self.on_frame(now_ns, r) {
                    n += 1;
                }
            }
        }
        n
    }

    fn on_frame(&mut self, now_ns: u64, r: Result<Frame, CodecError>) -> bool {
        let frame = match r {
            Ok(f) => f,
            Err(e) => {
                if e.is_crc() {
                    self.stats.crc_errors += 1;
                } else {
                    self.stats.decode_errors += 1;
                }
                return false;
            }
        };
        self.stats.frames_rx += 1;
        if let Some(prev) = self.last_board_seq {
            let gap = frame.seq.wrapping_sub(prev).wrapping_sub(1);
            // A large "gap" is a board reset or reordering, not loss: do not count it.
            if gap > 0 && gap < 1000 {
                self.stats.seq_gaps += gap as u64;
            }
        }
        self.last_board_seq = Some(frame.seq);
        match frame.msg {
            Message::Telemetry(t) => self.on_telemetry(now_ns, t),
            Message::Info(i) => self.info = Some(i),
            Message::Nack { seq, reason } => {
                self.stats.nacks += 1;
                self.last_nack = Some((seq, reason));
            }
            // Host-to-board types coming back are valid frames but carry nothing for us.
            _ => {}
        }
        true
    }

    /// Whether `t` describes motion the wheels can make since the previous frame: each encoder
    /// step within what the motors can turn in the elapsed time (the longer of the host's and
    /// the board's clocks, capped), and wheel speeds within reach.
    fn plausible(&self, now_ns: u64, t: &Telemetry) -> bool {
        let lim = &self.limits;
        let speed_ok = t
            .speed
            .iter()
            .all(|&v| codec::wire_to_rad_s(v).abs() <= lim.max_speed_rad_s);
        let (Some(last), Some(prev)) = (self.last_enc, self.telemetry) else {
            return speed_ok;
        };
        let host_dt = now_ns.saturating_sub(self.telemetry_ns) as f64 * 1e-9;
        let board_dt = t.time_ms.wrapping_sub(prev.time_ms) as f64 * 1e-3;
        let dt = host_dt.max(board_dt);
        speed_ok
            && t.enc
                .iter()
                .zip(last.iter())
                .all(|(&now, &before)| lim.encoder_step(now.wrapping_sub(before) as i64, dt))
    }

    fn on_telemetry(&mut self, now_ns: u64, t: Telemetry) {
        self.stats.telemetry_rx += 1;
        if !self.plausible(now_ns, &t) {
            // A jump no wheel can make: a broken encoder, a glitching or fake board. Its motion
            // is not applied (odometry and the wheel speeds stay as they were, and the state
            // goes stale if nothing plausible follows, which stops the robot), but a fault it
            // reports (e-stop, watchdog) is kept: the safe direction is always believed. The
            // next frame's encoder step is measured from this one's counts.
            self.stats.implausible_telemetry += 1;
            if self.logged_implausible == 0 || self.stats.implausible_telemetry % 100 == 0 {
                tracing::warn!(
                    enc = ?t.enc,
                    speed = ?t.speed,
                    count = self.stats.implausible_telemetry,
                    "link: telemetry refused as implausible (encoder jump or wheel speed out of reach)"
                );
            }
            self.logged_implausible = self.stats.implausible_telemetry;
            self.last_enc = Some(t.enc);
            if let Some(prev) = self.telemetry.as_mut() {
                prev.faults |= t.faults;
                prev.time_ms = t.time_ms;
            }
            self.last_board_rx_errors = Some(t.rx_errors);
            return;
        }
        if let Some(last) = self.last_enc {
            for (i, (&now, &before)) in t.enc.iter().zip(last.iter()).enumerate() {
                self.enc[i] += now.wrapping_sub(before) as i64;
            }
        } else {
            self.enc = [t.enc[0] as i64, t.enc[1] as i64];
        }
        self.last_enc = Some(t.enc);
        if let Some(prev) = self.last_board_rx_errors {
            self.stats.board_rx_errors += t.rx_errors.wrapping_sub(prev) as u64;
        } else {
            self.stats.board_rx_errors += t.rx_errors as u64;
        }
        self.last_board_rx_errors = Some(t.rx_errors);
        // Round trip: every pending frame with seq <= last_seq (wrap-aware) has now been seen.
        let mut keep = 0;
        for k in 0..self.pending_len {
            let (seq, sent) = self.pending[k];
            let behind = t.last_seq.wrapping_sub(seq) as i16;
            if behind >= 0 {
                // First telemetry acknowledging this frame (or a later one): its round trip.
                let _ = self.rtt.record(now_ns.saturating_sub(sent).max(1));
                self.stats.rtt_samples += 1;
            } else {
                self.pending[keep] = self.pending[k];
                keep += 1;
            }
        }
        self.pending_len = keep;
        self.telemetry = Some(t);
        self.telemetry_ns = now_ns;
    }

    /// Drop partial input and per-connection state after a reconnect (statistics are kept).
    pub fn reset_connection(&mut self) {
        self.decoder.reset();
        self.last_board_seq = None;
        self.last_board_rx_errors = None;
        self.pending_len = 0;
        self.last_enc = None;
        self.stats.connects += 1;
    }

    /// Statistics so far, with round-trip percentiles.
    pub fn stats(&self) -> LinkStats {
        let mut s = self.stats;
        if !self.rtt.is_empty() {
            s.rtt_p50_us = self.rtt.value_at_quantile(0.50) as f64 / 1e3;
            s.rtt_p99_us = self.rtt.value_at_quantile(0.99) as f64 / 1e3;
            s.rtt_max_us = self.rtt.max() as f64 / 1e3;
        }
        s
    }

    /// Clear the round-trip histogram (e.g. after a warm-up).
    pub fn reset_rtt(&mut self) {
        self.rtt.reset();
        self.stats.rtt_samples = 0;
    }

    /// Latest telemetry and when it arrived.
    pub fn telemetry(&self) -> Option<(Telemetry, u64)> {
        self.telemetry.map(|t| (t, self.telemetry_ns))
    }

    /// Firmware information, once an INFO frame arrived.
    pub fn info(&self) -> Option<Info> {
        self.info
    }

    /// The last NACK: the rejected frame's seq and why.
    pub fn last_nack(&self) -> Option<(u16, NackReason)> {
        self.last_nack
    }

    /// The latest telemetry as a [`BodyState`] (default state before any telemetry).
    pub fn body_state(&self, robot: &RobotParams) -> BodyState {
        let Some(t) = self.telemetry else {
            return BodyState::default();
        };
        let w = [
            codec::wire_to_rad_s(t.speed[0]),
            codec::wire_to_rad_s(t.speed[1]),
        ];
        let twist = robot.wheels_to_twist(WheelSpeeds {
            left: w[0],
            right: w[1],
        });
        BodyState {
            stamp_ns: self.telemetry_ns,
            encoder_ticks: self.enc,
            wheel_speed: w,
            // The board has no IMU: yaw rate from wheel odometry.
            gyro_z: twist.angular,
            accel: [0.0; 2],
            battery_v: t.battery_mv as f64 / 1000.0,
            faults: t.faults,
            estop: t.faults & fault::ESTOP != 0,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::codec::encode_frame_vec;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig {
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x5e55_1011),
            ..ProptestConfig::default()
        })]
        /// Any byte stream: no panic, every delimiter-ended chunk is either a frame or an error.
        #[test]
        fn garbage_never_panics(chunks in proptest::collection::vec(
            proptest::collection::vec(1u8..=255, 0..80), 0..20)) {
            let mut s = Session::new();
            let mut wire = Vec::new();
            let mut nonempty = 0u64;
            for c in &chunks {
                nonempty += u64::from(!c.is_empty());
                wire.extend_from_slice(c);
                wire.push(0);
            }
            for (i, part) in wire.chunks(7).enumerate() {
                s.receive(i as u64 * 1000, part);
            }
            let st = s.stats();
            prop_assert_eq!(st.frames_rx + st.crc_errors + st.decode_errors, nonempty);
            let _ = s.body_state(&RobotParams::load_default());
        }
    }

    fn tlm(last_seq: u16, enc: [i32; 2], rx_errors: u16) -> Message {
        Message::Telemetry(Telemetry {
            last_seq,
            enc,
            rx_errors,
            speed: [1000, -1000],
            battery_mv: 7400,
            ..Default::default()
        })
    }

    #[test]
    fn rtt_gaps_errors_and_encoder_unwrap() {
        let mut s = Session::new();
        let mut out = [0u8; MAX_FRAME];
        let seq = s.next_seq();
        s.encode(1_000_000, &Message::Heartbeat, &mut out);
        s.receive(
            4_000_000,
            &encode_frame_vec(10, &tlm(seq, [i32::MAX - 5, 0], 0)),
        );
        let st = s.stats();
        assert_eq!(st.rtt_samples, 1);
        assert!((st.rtt_p50_us - 3000.0).abs() < 5.0, "{st:?}");
        // Board seq 11, 12 lost; 13 arrives. Encoder wraps past i32::MAX.
        s.receive(
            5_000_000,
            &encode_frame_vec(13, &tlm(seq, [i32::MIN + 4, 0], 3)),
        );
        let st = s.stats();
        assert_eq!(st.seq_gaps, 2);
        assert_eq!(st.board_rx_errors, 3);
        assert_eq!(
            s.body_state(&RobotParams::load_default()).encoder_ticks[0],
            i32::MAX as i64 + 5
        );
        // Corrupted frame: one CRC error; garbage: one decode error.
        let mut bad = encode_frame_vec(14, &tlm(seq, [0, 0], 3));
        bad[3] ^= 0x20;
        s.receive(6_000_000, &bad);
        s.receive(6_000_000, &[0x05, 0x01, 0x00]);
        let st = s.stats();
        assert_eq!((st.crc_errors, st.decode_errors), (1, 1));
        assert_eq!(st.frames_rx, 2);
        let b = s.body_state(&RobotParams::load_default());
        assert_eq!(b.wheel_speed, [1.0, -1.0]);
        assert_eq!(b.stamp_ns, 5_000_000);
    }

    #[test]
    fn an_encoder_jump_or_an_unreachable_speed_is_refused_and_counted() {
        let robot = RobotParams::load_default();
        let mut s = Session::for_robot(&robot);
        let at = |ms: u32, enc: [i32; 2], speed: [i16; 2], faults: u16| {
            Message::Telemetry(Telemetry {
                time_ms: ms,
                enc,
                speed,
                faults,
                battery_mv: 7400,
                ..Default::default()
            })
        };
        // 20 ms at full speed (20 rad/s, 1440 counts/rev): about 92 counts a frame.
        s.receive(0, &encode_frame_vec(1, &at(0, [0, 0], [20_000, 20_000], 0)));
        s.receive(
            20_000_000,
            &encode_frame_vec(2, &at(20, [92, 92], [20_000, 20_000], 0)),
        );
        assert_eq!(s.body_state(&robot).encoder_ticks, [92, 92]);
        // A wild jump on one wheel: refused, odometry and speed unchanged, counted.
        s.receive(
            40_000_000,
            &encode_frame_vec(3, &at(40, [1_000_000, 184], [-3000, 1000], 0)),
        );
        let b = s.body_state(&robot);
        assert_eq!(b.encoder_ticks, [92, 92]);
        assert_eq!(b.wheel_speed, [20.0, 20.0]);
        assert_eq!(
            b.stamp_ns, 20_000_000,
            "an implausible frame does not refresh the state"
        );
        assert_eq!(s.stats().implausible_telemetry, 1);
        // The next step is measured from the refused frame's counts: motion resumes.
        s.receive(
            60_000_000,
            &encode_frame_vec(4, &at(60, [1_000_050, 234], [10_000, 10_000], 0)),
        );
        assert_eq!(s.body_state(&robot).encoder_ticks, [142, 142]);
        // A wheel speed no motor reaches (32.8 rad/s, over 1.5 x the 20 rad/s top speed):
        // refused, yet its e-stop bit is believed.
        s.receive(
            80_000_000,
            &encode_frame_vec(5, &at(80, [1_000_050, 234], [32_767, 0], fault::ESTOP)),
        );
        let b = s.body_state(&robot);
        assert!(b.estop, "the safe direction is always believed");
        assert_eq!(b.wheel_speed, [10.0, 10.0]);
        assert_eq!(s.stats().implausible_telemetry, 2);
        // A long silence does not excuse a jump: the credited interval is capped.
        s.receive(
            10_000_000_000,
            &encode_frame_vec(6, &at(10_000, [1_000_050 + 50_000, 234], [0, 0], 0)),
        );
        assert_eq!(s.stats().implausible_telemetry, 3);
        assert_eq!(s.body_state(&robot).encoder_ticks[0], 142);
    }
}
