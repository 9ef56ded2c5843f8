//! The simulated motor-controller board, in-process: every wheel command the brain sends and
//! every telemetry frame it receives crosses the real serial protocol (`link::codec`: COBS +
//! CRC-16 frames) as bytes, with the firmware's command watchdog and e-stop latch modelled, so the
//! simulator exercises the same wire format and the same failure behaviour as the robot.
//! Sensors that are not on the board (IMU, range rays) come straight from the simulated body.

use crate::body::{Body, BodyError, SimulatedBody};
use crate::link::codec::{
    self, fault, rad_s_to_wire, wire_to_rad_s, FrameDecoder, Message, Telemetry, MAX_FRAME,
};
use crate::msg::{BodyState, WheelSpeeds};

/// Telemetry period of the simulated board, s.
pub const TELEMETRY_PERIOD: f64 = 0.02;

/// A simulated body behind the in-process simulated board.
#[derive(Debug)]
pub struct SimBoard<B: SimulatedBody> {
    inner: B,
    // Host side.
    host_seq: u16,
    host_rx: FrameDecoder,
    state: BodyState,
    enc_unwrapped: [i64; 2],
    last_enc: [i32; 2],
    // Board side.
    board_rx: FrameDecoder,
    board_seq: u16,
    last_valid_seq: u16,
    rx_errors: u16,
    watchdog_s: f64,
    since_command: f64,
    since_telemetry: f64,
    estop: bool,
    setpoint: [f64; 2],
    frames_sent: u64,
    frames_received: u64,
    wire: Vec<u8>,
}

impl<B: SimulatedBody> SimBoard<B> {
    /// Put `inner` behind a simulated board with the firmware's default 250 ms watchdog.
    pub fn new(inner: B) -> Self {
        let mut b = Self {
            inner,
            host_seq: 0,
            host_rx: FrameDecoder::new(),
            state: BodyState::default(),
            enc_unwrapped: [0; 2],
            last_enc: [0; 2],
            board_rx: FrameDecoder::new(),
            board_seq: 0,
            last_valid_seq: 0,
            rx_errors: 0,
            watchdog_s: codec::Params::DEFAULT.watchdog_ms as f64 / 1000.0,
            since_command: f64::INFINITY,
            since_telemetry: 0.0,
            estop: false,
            setpoint: [0.0; 2],
            frames_sent: 0,
            frames_received: 0,
            wire: Vec::with_capacity(MAX_FRAME),
        };
        b.send_telemetry();
        b
    }

    /// The body behind the board.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The body behind the board, mutably (rendering, scoring).
    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    /// Frames host -> board and board -> host so far.
    pub fn frames(&self) -> (u64, u64) {
        (self.frames_sent, self.frames_received)
    }

    fn host_send(&mut self, msg: Message) {
        let mut buf = [0u8; MAX_FRAME];
        self.host_seq = self.host_seq.wrapping_add(1);
        let n = codec::encode_frame(self.host_seq, &msg, &mut buf);
        self.frames_sent += 1;
        for &byte in &buf[..n] {
            if let Some(r) = self.board_rx.push(byte) {
                self.board_handle(r);
            }
        }
    }

    fn board_handle(&mut self, r: Result<codec::Frame, codec::CodecError>) {
        let frame = match r {
            Ok(f) => f,
            Err(_) => {
                self.rx_errors = self.rx_errors.wrapping_add(1);
                return;
            }
        };
        self.last_valid_seq = frame.seq;
        self.since_command = 0.0;
        match frame.msg {
            Message::SetWheels { left, right } => {
                self.setpoint = [wire_to_rad_s(left), wire_to_rad_s(right)];
            }
            Message::Estop => self.estop = true,
            Message::ClearEstop => self.estop = false,
            _ => {}
        }
        self.apply();
    }

    fn apply(&mut self) {
        let hold = self.estop || self.since_command > self.watchdog_s;
        let sp = if hold { [0.0; 2] } else { self.setpoint };
        let _ = self.inner.command(WheelSpeeds {
            left: sp[0],
            right: sp[1],
        });
    }

    fn send_telemetry(&mut self) {
        let s = self.inner.state();
        let mut faults = 0;
        if self.estop {
            faults |= fault::ESTOP;
        }
        if self.since_command > self.watchdog_s {
            faults |= fault::CMD_TIMEOUT;
        }
        let t = Telemetry {
            time_ms: (s.stamp_ns / 1_000_000) as u32,
            enc: [s.encoder_ticks[0] as i32, s.encoder_ticks[1] as i32],
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
        for i in 0..self.wire.len() {
            if let Some(Ok(frame)) = self.host_rx.push(self.wire[i]) {
                if let Message::Telemetry(t) = frame.msg {
                    self.frames_received += 1;
                    self.host_update(t, &s);
                }
            }
        }
    }

    fn host_update(&mut self, t: Telemetry, sensors: &BodyState) {
        for i in 0..2 {
            self.enc_unwrapped[i] += t.enc[i].wrapping_sub(self.last_enc[i]) as i64;
            self.last_enc[i] = t.enc[i];
        }
        self.state = BodyState {
            stamp_ns: sensors.stamp_ns,
            encoder_ticks: self.enc_unwrapped,
            wheel_speed: [wire_to_rad_s(t.speed[0]), wire_to_rad_s(t.speed[1])],
            battery_v: t.battery_mv as f64 / 1000.0,
            faults: t.faults,
            estop: t.faults & fault::ESTOP != 0,
            // Off-board sensors, straight from the body.
            gyro_z: sensors.gyro_z,
            accel: sensors.accel,
            range: sensors.range,
            range_count: sensors.range_count,
        };
    }
}

impl<B: SimulatedBody> Body for SimBoard<B> {
    fn command(&mut self, w: WheelSpeeds) -> Result<(), BodyError> {
        if self.state.estop {
            return Err(BodyError::Refused("e-stop latched".into()));
        }
        self.host_send(Message::SetWheels {
            left: rad_s_to_wire(w.left),
            right: rad_s_to_wire(w.right),
        });
        Ok(())
    }

    fn state(&self) -> BodyState {
        self.state
    }

    fn estop(&mut self) {
        self.host_send(Message::Estop);
    }

    fn clear_estop(&mut self) {
        self.host_send(Message::ClearEstop);
    }

    fn name(&self) -> String {
        format!("{}+board", self.inner.name())
    }
}

impl<B: SimulatedBody> SimulatedBody for SimBoard<B> {
    fn advance(&mut self, dt: f64) {
        if !(dt.is_finite() && dt > 0.0) {
            return;
        }
        self.inner.advance(dt);
        let was_holding = self.since_command > self.watchdog_s;
        self.since_command += dt;
        if !was_holding && self.since_command > self.watchdog_s {
            self.apply();
        }
        self.since_telemetry += dt;
        if self.since_telemetry >= TELEMETRY_PERIOD - 1e-9 {
            self.since_telemetry = 0.0;
            self.send_telemetry();
        }
    }

    fn ground_truth_pose(&self) -> (f64, f64, f64) {
        self.inner.ground_truth_pose()
    }

    fn failure(&self) -> Option<String> {
        self.inner.failure()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::RobotParams;
    use crate::msg::Twist;
    use crate::sim::kinematic::KinematicBody;

    #[test]
    fn commands_cross_the_wire_and_the_watchdog_stops_the_wheels() {
        let p = RobotParams::load_default();
        let mut b = SimBoard::new(KinematicBody::new(p.clone()));
        b.command(p.twist_to_wheels(Twist {
            linear: 0.2,
            angular: 0.0,
        }))
        .unwrap();
        for _ in 0..50 {
            b.advance(0.002);
        }
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
}
