//! The simulated motor-controller board, in-process: every wheel command the brain sends and
//! every telemetry frame it receives crosses the real serial protocol (`link::codec`: COBS +
//! CRC-16 frames) as bytes, with the firmware's command watchdog and e-stop latch modelled, so the
//! simulator exercises the same wire format and the same failure behaviour as the robot.
//! Sensors that are not on the board (IMU, range rays) come straight from the simulated body.

use crate::body::{Body, BodyError, RobotParams, SimulatedBody};
use crate::link::codec::{
    self, fault, rad_s_to_wire, wire_to_rad_s, FrameDecoder, Message, Telemetry, MAX_FRAME,
};
use crate::link::session::Session;
use crate::msg::{BodyState, WheelSpeeds};
use crate::sim::parts::{valid_step, Every};

/// Telemetry period of the simulated board, s.
pub const TELEMETRY_PERIOD: f64 = 0.02;

/// A motor-controller board between the brain and a simulated body, with the host side of its
/// link: the in-process model of the firmware ([`SimLink`]) or the real firmware on the
/// emulated board ([`HilLink`](super::hil::HilLink)). [`Boarded`] turns one into a [`Body`].
pub trait BoardLink: Send {
    /// What the board adds to the body's name.
    const NAME: &'static str;
    /// Send `msg` host -> board; a board that acts on it at once drives `body`.
    fn send<B: SimulatedBody>(&mut self, msg: Message, body: &mut B);
    /// Why a wheel command cannot be sent now (link down, e-stop latched as the host last heard),
    /// if it cannot.
    fn refusal(&self) -> Option<BodyError>;
    /// The body's state as the host knows it from the board, with the sensors that are not on the
    /// board (IMU, range rays) from `body`.
    fn state<B: SimulatedBody>(&self, body: &B) -> BodyState;
    /// Advance the board and `body` by `dt` (finite and positive) seconds.
    fn advance<B: SimulatedBody>(&mut self, dt: f64, body: &mut B);
    /// Frames host -> board and telemetry frames board -> host so far.
    fn frames(&self) -> (u64, u64);
    /// Why the board cannot go on, if it cannot.
    fn failure(&self) -> Option<String> {
        None
    }
    /// Frames rejected at either end of the link so far.
    fn errors(&self) -> LinkErrors {
        LinkErrors::default()
    }
}

/// `board`'s view of the body with the sensors that are not on the board (IMU, range rays)
/// straight from the body's own state `body`.
pub fn with_off_board_sensors(board: BodyState, body: &BodyState) -> BodyState {
    BodyState {
        gyro_z: body.gyro_z,
        accel: body.accel,
        range: body.range,
        range_count: body.range_count,
        ..board
    }
}

/// A simulated body behind a board: every command, e-stop and telemetry frame crosses the
/// board's link.
#[derive(Debug)]
pub struct Boarded<L: BoardLink, B: SimulatedBody> {
    inner: B,
    link: L,
}

/// A simulated body behind the in-process simulated board.
pub type SimBoard<B> = Boarded<SimLink, B>;

impl<L: BoardLink, B: SimulatedBody> Boarded<L, B> {
    /// Put `inner` behind the board `link`.
    pub fn behind(link: L, inner: B) -> Self {
        Self { inner, link }
    }

    /// The body behind the board.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The body behind the board, mutably (rendering, scoring).
    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    /// The board and the host side of its link.
    pub fn link(&self) -> &L {
        &self.link
    }

    /// Frames host -> board and telemetry frames board -> host so far.
    pub fn frames(&self) -> (u64, u64) {
        self.link.frames()
    }

    /// Frames rejected at either end of the link so far.
    pub fn link_errors(&self) -> LinkErrors {
        self.link.errors()
    }
}

impl<B: SimulatedBody> SimBoard<B> {
    /// Put `inner` behind a simulated board with the firmware's default 250 ms watchdog.
    pub fn new(inner: B) -> Self {
        Self::behind(SimLink::new(&inner), inner)
    }
}

impl<L: BoardLink, B: SimulatedBody> Body for Boarded<L, B> {
    fn command(&mut self, w: WheelSpeeds) -> Result<(), BodyError> {
        if let Some(e) = self.link.refusal() {
            return Err(e);
        }
        let msg = Message::SetWheels {
            left: rad_s_to_wire(w.left),
            right: rad_s_to_wire(w.right),
        };
        self.link.send(msg, &mut self.inner);
        Ok(())
    }

    fn state(&self) -> BodyState {
        self.link.state(&self.inner)
    }

    fn estop(&mut self) {
        self.link.send(Message::Estop, &mut self.inner);
    }

    fn clear_estop(&mut self) {
        self.link.send(Message::ClearEstop, &mut self.inner);
    }

    fn name(&self) -> String {
        format!("{}+{}", self.inner.name(), L::NAME)
    }
}

impl<L: BoardLink, B: SimulatedBody> SimulatedBody for Boarded<L, B> {
    fn advance(&mut self, dt: f64) {
        if valid_step(dt) {
            self.link.advance(dt, &mut self.inner);
        }
    }

    fn ground_truth_pose(&self) -> (f64, f64, f64) {
        self.inner.ground_truth_pose()
    }

    fn failure(&self) -> Option<String> {
        self.link.failure().or_else(|| self.inner.failure())
    }
}

/// The in-process simulated board and the host side of its link.
#[derive(Debug)]
pub struct SimLink {
    // Host side: the same protocol session the serial driver runs (decoding, encoder unwrap,
    // plausibility, counters).
    host_seq: u16,
    host: Session,
    robot: RobotParams,
    state: BodyState,
    // Board side.
    board_rx: FrameDecoder,
    board_seq: u16,
    last_valid_seq: u16,
    rx_errors: u16,
    watchdog_s: f64,
    since_command: f64,
    telemetry: Every,
    estop: bool,
    setpoint: [f64; 2],
    frames_sent: u64,
    wire: Vec<u8>,
    // The line between them.
    noise: Option<LineNoise>,
    board_rx_errors: u64,
    // A broken or fake board: telemetry encoder counts replaced by wild values.
    encoder_glitch: Option<crate::util::SplitMix>,
}

/// Frames the two ends of a simulated link rejected (CRC mismatch, or any other decode error:
/// COBS, length, version, type).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkErrors {
    /// Telemetry frames the host rejected for a CRC mismatch.
    pub host_crc_errors: u64,
    /// Telemetry frames the host rejected for another decode error.
    pub host_decode_errors: u64,
    /// Command frames the board rejected (its `rx_errors`, not wrapped).
    pub board_rx_errors: u64,
    /// Telemetry frames the host refused as physically implausible.
    pub host_implausible: u64,
}

/// Noise on a simulated serial line, both directions, seeded: each byte has its bits flipped
/// with probability `flip_p` per bit, and with `garbage` every byte is replaced by a random one
/// (a line full of garbage; one in eight a zero, the frame delimiter, so the decoders see
/// frames of garbage rather than one endless frame).
#[derive(Debug, Clone)]
pub struct LineNoise {
    rng: crate::util::SplitMix,
    /// Probability of each bit flipping.
    pub flip_p: f64,
    /// Replace every byte by a random one.
    pub garbage: bool,
}

impl LineNoise {
    /// Noise with this seed.
    pub fn new(seed: u64, flip_p: f64, garbage: bool) -> Self {
        Self {
            rng: crate::util::SplitMix::new(seed),
            flip_p: if flip_p.is_finite() {
                flip_p.clamp(0.0, 1.0)
            } else {
                0.0
            },
            garbage,
        }
    }

    fn corrupt(&mut self, b: u8) -> u8 {
        if self.garbage {
            let r = self.rng.next_u64();
            return if r % 8 == 0 { 0 } else { (r >> 8) as u8 };
        }
        let mut b = b;
        if self.flip_p > 0.0 {
            for bit in 0..8 {
                if self.rng.uniform() < self.flip_p {
                    b ^= 1 << bit;
                }
            }
        }
        b
    }
}

impl SimLink {
    /// A board in front of `body` that has sent its first telemetry frame.
    fn new<B: SimulatedBody>(body: &B) -> Self {
        let mut b = Self {
            host_seq: 0,
            host: Session::new(),
            robot: RobotParams::load_default(),
            state: BodyState::default(),
            board_rx: FrameDecoder::new(),
            board_seq: 0,
            last_valid_seq: 0,
            rx_errors: 0,
            watchdog_s: codec::Params::DEFAULT.watchdog_ms as f64 / 1000.0,
            since_command: f64::INFINITY,
            telemetry: Every::new(TELEMETRY_PERIOD),
            estop: false,
            setpoint: [0.0; 2],
            frames_sent: 0,
            wire: Vec::with_capacity(MAX_FRAME),
            noise: None,
            board_rx_errors: 0,
            encoder_glitch: None,
        };
        b.send_telemetry(body);
        b
    }

    fn board_handle<B: SimulatedBody>(
        &mut self,
        r: Result<codec::Frame, codec::CodecError>,
        body: &mut B,
    ) {
        let frame = match r {
            Ok(f) => f,
            Err(_) => {
                self.rx_errors = self.rx_errors.wrapping_add(1);
                self.board_rx_errors += 1;
                return;
            }
        };
        self.last_valid_seq = frame.seq;
        self.since_command = 0.0;
        // As the firmware does (firmware/src/ctrl.c): the e-stop and its clear both zero the
        // setpoint, a setpoint is refused while the e-stop is latched, and motion resumes only
        // on a new setpoint (a cleared e-stop never resumes the speed from before it).
        match frame.msg {
            Message::SetWheels { left, right } if !self.estop => {
                self.setpoint = [wire_to_rad_s(left), wire_to_rad_s(right)];
            }
            Message::Estop => {
                self.estop = true;
                self.setpoint = [0.0; 2];
            }
            Message::ClearEstop => {
                self.estop = false;
                self.setpoint = [0.0; 2];
            }
            _ => {}
        }
        self.apply(body);
    }

    fn apply<B: SimulatedBody>(&mut self, body: &mut B) {
        let hold = self.estop || self.since_command > self.watchdog_s;
        let sp = if hold { [0.0; 2] } else { self.setpoint };
        let _ = body.command(WheelSpeeds {
            left: sp[0],
            right: sp[1],
        });
    }

    fn send_telemetry<B: SimulatedBody>(&mut self, body: &B) {
        let s = body.state();
        let mut faults = 0;
        if self.estop {
            faults |= fault::ESTOP;
        }
        if self.since_command > self.watchdog_s {
            faults |= fault::CMD_TIMEOUT;
        }
        let mut enc = [s.encoder_ticks[0] as i32, s.encoder_ticks[1] as i32];
        if let Some(g) = self.encoder_glitch.as_mut() {
            // Wild counts, as a broken encoder or a fake board sends them (CRC intact).
            enc = [g.next_u64() as i32, g.next_u64() as i32];
        }
        let t = Telemetry {
            time_ms: (s.stamp_ns / 1_000_000) as u32,
            enc,
            speed: [
                rad_s_to_wire(s.wheel_speed[0]),
                rad_s_to_wire(s.wheel_speed[1]),
            ],
            pwm: [0; 2],
            battery_mv: (s.battery_v * 1000.0) as u16,
            faults,
            last_seq: self.last_valid_seq,
            rx_errors: self.rx_errors,
        };
        self.board_seq = self.board_seq.wrapping_add(1);
        let mut buf = [0u8; MAX_FRAME];
        let n = codec::encode_frame(self.board_seq, &Message::Telemetry(t), &mut buf);
        self.wire.clear();
        self.wire.extend_from_slice(&buf[..n]);
        if let Some(n) = self.noise.as_mut() {
            for b in self.wire.iter_mut() {
                *b = n.corrupt(*b);
            }
        }
        let before = self.host.stats().telemetry_rx;
        self.host.receive(s.stamp_ns, &self.wire);
        if self.host.stats().telemetry_rx == before {
            return;
        }
        match self.host.telemetry() {
            // Accepted now: the host's view of the body, with the off-board sensors.
            Some((_, ns)) if ns == s.stamp_ns => {
                let board = BodyState {
                    stamp_ns: s.stamp_ns,
                    ..self.host.body_state(&self.robot)
                };
                self.state = with_off_board_sensors(board, &s);
            }
            // Refused as implausible: the state keeps its stamp (and goes stale), but a fault
            // the frame reported is believed.
            Some((t, _)) => {
                self.state.faults |= t.faults;
                self.state.estop |= t.faults & fault::ESTOP != 0;
            }
            None => {}
        }
    }
}

impl SimLink {
    /// Make the board send wild encoder counts (seeded), as a broken encoder or a fake board
    /// would, or stop with `None`.
    pub fn set_encoder_glitch(&mut self, seed: Option<u64>) {
        self.encoder_glitch = seed.map(crate::util::SplitMix::new);
    }

    /// Put noise on the line (both directions), or take it off with `None`.
    pub fn set_noise(&mut self, noise: Option<LineNoise>) {
        self.noise = noise;
    }
}

impl<B: SimulatedBody> SimBoard<B> {
    /// The simulated board's link, mutably (to put noise on the line).
    pub fn link_mut(&mut self) -> &mut SimLink {
        &mut self.link
    }
}

impl BoardLink for SimLink {
    const NAME: &'static str = "board";

    fn send<B: SimulatedBody>(&mut self, msg: Message, body: &mut B) {
        let mut buf = [0u8; MAX_FRAME];
        self.host_seq = self.host_seq.wrapping_add(1);
        let n = codec::encode_frame(self.host_seq, &msg, &mut buf);
        self.frames_sent += 1;
        for &byte in &buf[..n] {
            let byte = match self.noise.as_mut() {
                Some(noise) => noise.corrupt(byte),
                None => byte,
            };
            if let Some(r) = self.board_rx.push(byte) {
                self.board_handle(r, body);
            }
        }
    }

    fn refusal(&self) -> Option<BodyError> {
        self.state
            .estop
            .then(|| BodyError::Refused("e-stop latched".into()))
    }

    fn state<B: SimulatedBody>(&self, _body: &B) -> BodyState {
        self.state
    }

    fn advance<B: SimulatedBody>(&mut self, dt: f64, body: &mut B) {
        body.advance(dt);
        let was_holding = self.since_command > self.watchdog_s;
        self.since_command += dt;
        if !was_holding && self.since_command > self.watchdog_s {
            self.apply(body);
        }
        if self.telemetry.elapse(dt) {
            self.send_telemetry(body);
        }
    }

    fn frames(&self) -> (u64, u64) {
        (self.frames_sent, self.host.stats().telemetry_rx)
    }

    fn errors(&self) -> LinkErrors {
        let h = self.host.stats();
        LinkErrors {
            host_crc_errors: h.crc_errors,
            host_decode_errors: h.decode_errors,
            board_rx_errors: self.board_rx_errors,
            host_implausible: h.implausible_telemetry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::RobotParams;
    use crate::sim::kinematic::KinematicBody;
    use crate::sim::testing::drive;

    #[test]
    fn commands_cross_the_wire_and_the_watchdog_stops_the_wheels() {
        let p = RobotParams::load_default();
        let mut b = SimBoard::new(KinematicBody::new(p.clone()));
        drive(&mut b, &p, (0.2, 0.0), 50, 0.002);
        let s = b.state();
        assert!(s.wheel_speed[0] > 5.0, "{s:?}");
        assert!(s.encoder_ticks[0] > 0);
        assert_eq!(s.faults, 0);
        // No more commands: after 250 ms the board holds the wheels at zero and says why.
        for _ in 0..400 {
            b.advance(0.002);
        }
        let s = b.state();
        assert!(s.wheel_speed[0].abs() < 0.01, "{s:?}");
        assert_ne!(s.faults & fault::CMD_TIMEOUT, 0);
        let (sent, received) = b.frames();
        assert_eq!(sent, 1);
        assert!(received >= 40);
        // E-stop crosses the wire too and wins over commands.
        b.estop();
        b.advance(0.02);
        assert!(b.state().estop);
        assert!(b
            .command(WheelSpeeds {
                left: 5.0,
                right: 5.0
            })
            .is_err());
    }

    /// As the firmware: a cleared e-stop never resumes the setpoint from before it; motion
    /// resumes only on a new setpoint.
    #[test]
    fn a_cleared_estop_does_not_resume_the_old_setpoint() {
        let p = RobotParams::load_default();
        let mut b = SimBoard::new(KinematicBody::new(p.clone()));
        drive(&mut b, &p, (0.2, 0.0), 50, 0.002);
        assert!(b.state().wheel_speed[0] > 5.0);
        b.estop();
        b.clear_estop();
        // 200 ms: before the 250 ms command watchdog would stop the wheels anyway.
        for _ in 0..100 {
            b.advance(0.002);
        }
        let s = b.state();
        assert!(!s.estop);
        assert!(s.wheel_speed[0].abs() < 0.5, "{s:?}");
    }

    /// Noise on the line is rejected by the CRC at both ends and counted, and the host's
    /// view of the body goes stale instead of taking a corrupted frame.
    #[test]
    fn wild_encoder_counts_are_refused_and_the_state_goes_stale() {
        let p = RobotParams::load_default();
        let mut b = SimBoard::new(KinematicBody::new(p.clone()));
        drive(&mut b, &p, (0.2, 0.0), 50, 0.002);
        let before = b.state();
        assert!(before.encoder_ticks[0] > 0);
        b.link_mut().set_encoder_glitch(Some(9));
        drive(&mut b, &p, (0.2, 0.0), 100, 0.002);
        let e = b.link_errors();
        assert!(e.host_implausible >= 9, "{e:?}");
        let during = b.state();
        assert_eq!(
            during.stamp_ns, before.stamp_ns,
            "wild telemetry refreshed the state"
        );
        assert_eq!(
            during.encoder_ticks, before.encoder_ticks,
            "a jump reached odometry"
        );
        b.link_mut().set_encoder_glitch(None);
        drive(&mut b, &p, (0.2, 0.0), 50, 0.002);
        let after = b.state();
        assert!(after.stamp_ns > before.stamp_ns);
        // Odometry resumes from where it was: the jumps never entered it.
        let step = after.encoder_ticks[0] - before.encoder_ticks[0];
        assert!((0..400).contains(&step), "{step}");
    }

    #[test]
    fn line_noise_is_rejected_and_counted() {
        let p = RobotParams::load_default();
        let mut b = SimBoard::new(KinematicBody::new(p.clone()));
        drive(&mut b, &p, (0.1, 0.0), 20, 0.002);
        assert_eq!(b.link_errors(), LinkErrors::default());
        b.link_mut().set_noise(Some(LineNoise::new(3, 0.0, true)));
        let before = b.state();
        drive(&mut b, &p, (0.3, 0.0), 100, 0.002);
        let e = b.link_errors();
        assert!(e.host_crc_errors + e.host_decode_errors > 0, "{e:?}");
        assert!(e.board_rx_errors > 0, "{e:?}");
        assert_eq!(
            b.state().stamp_ns,
            before.stamp_ns,
            "no telemetry got through"
        );
        b.link_mut().set_noise(Some(LineNoise::new(4, 2e-3, false)));
        drive(&mut b, &p, (0.1, 0.0), 200, 0.002);
        assert!(b.link_errors().host_crc_errors > e.host_crc_errors);
        b.link_mut().set_noise(None);
        drive(&mut b, &p, (0.1, 0.0), 20, 0.002);
        assert!(b.state().stamp_ns > before.stamp_ns);
    }
}
