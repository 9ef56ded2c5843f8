//! Dead reckoning: heading from the gyro (from the wheel encoders when the gyro reads nothing),
//! position and distance travelled from the encoders, in the odometry frame (the start pose is
//! the origin, heading 0 along +x).

use crate::msg::BodyState;
use crate::navigation::wrap;
use std::f32::consts::TAU;

/// The pose estimate, updated from each body state.
#[derive(Debug, Clone)]
pub struct DeadReckoning {
    wheel_radius: f32,
    wheel_separation: f32,
    ticks_per_rev: u32,
    last_ns: Option<u64>,
    last_ticks: Option<[i64; 2]>,
    heading: f32,
    odometer: f32,
    pos: (f32, f32),
    pitch_accel: f32,
}

impl DeadReckoning {
    /// At the origin, for wheels of this radius (m), separation (m) and encoder resolution
    /// (counts per revolution).
    pub fn new(wheel_radius: f32, wheel_separation: f32, ticks_per_rev: u32) -> Self {
        Self {
            wheel_radius,
            wheel_separation,
            ticks_per_rev,
            last_ns: None,
            last_ticks: None,
            heading: 0.0,
            odometer: 0.0,
            pos: (0.0, 0.0),
            pitch_accel: 0.0,
        }
    }

    /// Integrate one body state measured at `now_ns`. Returns whether the encoders moved the
    /// position (a plausible step since the previous state: not the first, not a jump of a metre
    /// or more).
    ///
    /// The gyro is integrated over the time since the previous update (at most 0.5 s); the
    /// encoders give the distance, and the turn when the gyro reads exactly 0 or non-finite.
    pub fn update(&mut self, now_ns: u64, body: &BodyState) -> bool {
        let dt = match self.last_ns {
            Some(t) if now_ns > t => ((now_ns - t) as f64 * 1e-9).min(0.5) as f32,
            _ => 0.0,
        };
        self.last_ns = Some(now_ns);
        let mut moved = false;
        let mut enc_turn = 0.0;
        if let Some(prev) = self.last_ticks {
            let per_tick = TAU * self.wheel_radius / self.ticks_per_rev.max(1) as f32;
            let dl = (body.encoder_ticks[0] - prev[0]) as f32 * per_tick;
            let dr = (body.encoder_ticks[1] - prev[1]) as f32 * per_tick;
            if dl.is_finite() && dr.is_finite() && dl.abs() < 1.0 && dr.abs() < 1.0 {
                self.odometer += (dl + dr).abs() / 2.0;
                let d = (dl + dr) / 2.0;
                self.pos.0 += d * self.heading.cos();
                self.pos.1 += d * self.heading.sin();
                moved = true;
                enc_turn = (dr - dl) / self.wheel_separation.max(1e-3);
            }
        }
        self.last_ticks = Some(body.encoder_ticks);
        let ax = body.accel[0] as f32;
        if ax.is_finite() && dt > 0.0 {
            let a = (dt / 0.3).min(1.0);
            self.pitch_accel += a * (ax.clamp(-20.0, 20.0) - self.pitch_accel);
        }
        let gyro = body.gyro_z as f32;
        let turn = if gyro.is_finite() && gyro != 0.0 {
            gyro * dt
        } else {
            enc_turn
        };
        self.heading = wrap(self.heading + turn);
        moved
    }

    /// After a pause: the next update integrates no gyro time (the encoder step is kept).
    pub fn restart_clock(&mut self) {
        self.last_ns = None;
    }

    /// Heading, rad in `[-π, π)`.
    pub fn heading(&self) -> f32 {
        self.heading
    }

    /// Position, m.
    pub fn pos(&self) -> (f32, f32) {
        self.pos
    }

    /// Distance driven (forwards or backwards), m.
    pub fn odometer(&self) -> f32 {
        self.odometer
    }

    /// Forward accelerometer reading low-passed over about 0.3 s, m/s^2 (gravity shows here
    /// when the body pitches: strongly negative when it tips onto its nose).
    pub fn pitch_accel(&self) -> f32 {
        self.pitch_accel
    }

    /// Time of the last update, ns (`None` before the first or after [`Self::restart_clock`]).
    pub fn last_ns(&self) -> Option<u64> {
        self.last_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::PI;

    const R: f32 = 0.05;
    const SEP: f32 = 0.2;
    const TICKS: u32 = 1000;
    const DT_NS: u64 = 10_000_000;

    /// Drive a wheel-speed sequence (rad/s, left and right, each for `steps` of 10 ms) through
    /// the dead reckoning, integrating the encoders exactly; `gyro` reports the true yaw rate.
    fn drive(seq: &[(f64, f64, usize)], gyro: bool) -> DeadReckoning {
        let mut odo = DeadReckoning::new(R, SEP, TICKS);
        let mut body = BodyState::default();
        let mut angle = [0.0f64; 2];
        let mut now = 0;
        odo.update(now, &body);
        for &(l, r, steps) in seq {
            for _ in 0..steps {
                now += DT_NS;
                angle[0] += l * DT_NS as f64 * 1e-9;
                angle[1] += r * DT_NS as f64 * 1e-9;
                body.wheel_speed = [l, r];
                body.encoder_ticks =
                    angle.map(|a| (a / std::f64::consts::TAU * TICKS as f64).round() as i64);
                body.gyro_z = if gyro {
                    (r - l) * R as f64 / SEP as f64
                } else {
                    0.0
                };
                assert!(odo.update(now, &body));
            }
        }
        odo
    }

    #[test]
    fn straight_line_at_known_wheel_speeds() {
        // 10 rad/s on 5 cm wheels for 2 s: 1 m along +x.
        for gyro in [false, true] {
            let odo = drive(&[(10.0, 10.0, 200)], gyro);
            assert!((odo.pos().0 - 1.0).abs() < 1e-3, "{:?}", odo.pos());
            assert!(odo.pos().1.abs() < 1e-4);
            assert!(odo.heading().abs() < 1e-4);
            assert!((odo.odometer() - 1.0).abs() < 1e-3);
        }
        // Backwards: the odometer still counts up.
        let odo = drive(&[(-10.0, -10.0, 100)], false);
        assert!((odo.pos().0 + 0.5).abs() < 1e-3);
        assert!((odo.odometer() - 0.5).abs() < 1e-3);
    }

    #[test]
    fn turn_in_place_then_drive() {
        // Wheels at ∓5 rad/s: the body turns at 2 * 5 * 0.05 / 0.2 = 2.5 rad/s; 0.628 s is a
        // quarter turn to the left (counter-clockwise), without moving or adding to the odometer.
        let quarter = (PI / 2.0 / 2.5 / 0.01).round() as usize;
        for gyro in [false, true] {
            let odo = drive(&[(-5.0, 5.0, quarter)], gyro);
            assert!((odo.heading() - PI / 2.0).abs() < 0.02, "{}", odo.heading());
            assert!(odo.pos().0.abs() < 1e-4 && odo.pos().1.abs() < 1e-4);
            assert!(odo.odometer() < 1e-4);
            // Then half a metre straight: along +y.
            let odo = drive(&[(-5.0, 5.0, quarter), (10.0, 10.0, 100)], gyro);
            assert!(odo.pos().0.abs() < 0.02, "{:?}", odo.pos());
            assert!((odo.pos().1 - 0.5).abs() < 1e-3, "{:?}", odo.pos());
        }
        // A full turn to the right wraps back to heading 0.
        let odo = drive(&[(5.0, -5.0, 4 * quarter)], true);
        assert!(odo.heading().abs() < 0.05, "{}", odo.heading());
    }

    #[test]
    fn first_update_and_jumps_do_not_move() {
        let mut odo = DeadReckoning::new(R, SEP, TICKS);
        let mut body = BodyState {
            encoder_ticks: [5000, 5000],
            ..Default::default()
        };
        assert!(!odo.update(0, &body));
        // Five revolutions in 10 ms: 1.57 m, not plausible.
        body.encoder_ticks = [10_000, 10_000];
        assert!(!odo.update(DT_NS, &body));
        assert_eq!(odo.pos(), (0.0, 0.0));
        body.encoder_ticks = [10_100, 10_100];
        assert!(odo.update(2 * DT_NS, &body));
        assert!(odo.pos().0 > 0.0);
    }

    #[test]
    fn gyro_time_restarts_after_a_pause() {
        let mut odo = DeadReckoning::new(R, SEP, TICKS);
        let mut body = BodyState {
            gyro_z: 1.0,
            ..Default::default()
        };
        odo.update(0, &body);
        odo.update(100_000_000, &body);
        assert!((odo.heading() - 0.1).abs() < 1e-6);
        odo.restart_clock();
        assert_eq!(odo.last_ns(), None);
        // Ten seconds later: no gyro time integrated over the pause.
        odo.update(10_100_000_000, &body);
        assert!((odo.heading() - 0.1).abs() < 1e-6);
        // A long gap without a restart counts at most 0.5 s.
        body.gyro_z = 0.1;
        odo.update(20_000_000_000, &body);
        assert!((odo.heading() - 0.15).abs() < 1e-6);
    }

    #[test]
    fn pitch_follows_the_forward_accelerometer() {
        let mut odo = DeadReckoning::new(R, SEP, TICKS);
        let mut body = BodyState {
            accel: [-3.0, 0.0],
            ..Default::default()
        };
        let mut now = 0;
        for _ in 0..300 {
            odo.update(now, &body);
            now += DT_NS;
        }
        assert!(
            (odo.pitch_accel() + 3.0).abs() < 0.01,
            "{}",
            odo.pitch_accel()
        );
        body.accel = [f64::NAN, 0.0];
        odo.update(now, &body);
        assert!((odo.pitch_accel() + 3.0).abs() < 0.01);
    }
}
