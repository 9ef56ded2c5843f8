//! A gamepad for the console (gilrs, feature `gamepad`, on by default), mapped as
//! teleop_twist_joy does: the left bumper is the enable button (the deadman: nothing drives
//! unless it is held), the left stick's vertical axis is the forward speed and its horizontal
//! axis the turn rate, the right bumper is turbo (full speed instead of the console's speed
//! scale), and East (B / circle) is the e-stop. Releasing the enable button, or the pad
//! disconnecting, lets go at once.

use crate::msg::Twist;

/// Stick values below this are zero.
pub const DEADZONE: f32 = 0.12;

/// What the pad shows now.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PadState {
    /// Enable (deadman) button held.
    pub enable: bool,
    /// Turbo held.
    pub turbo: bool,
    /// Left stick vertical, -1..1 (up positive).
    pub forward: f32,
    /// Left stick horizontal, -1..1 (left positive).
    pub turn: f32,
}

/// What a pad event means for the console.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PadEvent {
    /// The pad's state changed.
    State(PadState),
    /// The e-stop button was pressed.
    Estop,
    /// The pad went away (treated as letting go).
    Disconnected,
}

fn dead(v: f32) -> f64 {
    if !v.is_finite() || v.abs() < DEADZONE {
        0.0
    } else {
        // Rescale so motion starts at zero just past the dead zone.
        (v.signum() * (v.abs() - DEADZONE) / (1.0 - DEADZONE)).clamp(-1.0, 1.0) as f64
    }
}

/// The drive command of `s` at speed `scale` (turbo: 1), or `None` when the enable button is
/// not held.
pub fn twist_of(s: &PadState, scale: f64, limits: &crate::config::LimitsConfig) -> Option<Twist> {
    if !s.enable {
        return None;
    }
    let k = if s.turbo { 1.0 } else { scale };
    Some(super::twist_of(dead(s.forward), dead(s.turn), k, limits))
}

/// Start reading gamepads on a thread; events arrive on the returned channel. `None` (with
/// the reason) where gilrs cannot start (no udev, no permission): the console works without.
#[cfg(feature = "gamepad")]
pub fn spawn() -> Result<crossbeam_channel::Receiver<PadEvent>, String> {
    use gilrs::{Axis, Button, EventType, Gilrs};
    let (tx, rx) = crossbeam_channel::bounded(256);
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("gamepad".into())
        .spawn(move || {
            let mut g = match Gilrs::new() {
                Ok(g) => {
                    let _ = ready_tx.send(Ok(()));
                    g
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let mut s = PadState::default();
            loop {
                let Some(ev) = g.next_event_blocking(Some(std::time::Duration::from_millis(100)))
                else {
                    continue;
                };
                let out = match ev.event {
                    EventType::ButtonPressed(Button::East, _) => Some(PadEvent::Estop),
                    EventType::ButtonPressed(Button::LeftTrigger, _) => {
                        s.enable = true;
                        Some(PadEvent::State(s))
                    }
                    EventType::ButtonReleased(Button::LeftTrigger, _) => {
                        s.enable = false;
                        Some(PadEvent::State(s))
                    }
                    EventType::ButtonPressed(Button::RightTrigger, _) => {
                        s.turbo = true;
                        Some(PadEvent::State(s))
                    }
                    EventType::ButtonReleased(Button::RightTrigger, _) => {
                        s.turbo = false;
                        Some(PadEvent::State(s))
                    }
                    EventType::AxisChanged(Axis::LeftStickY, v, _) => {
                        s.forward = v;
                        Some(PadEvent::State(s))
                    }
                    EventType::AxisChanged(Axis::LeftStickX, v, _) => {
                        // gilrs: right is positive; a turn to the left is positive here.
                        s.turn = -v;
                        Some(PadEvent::State(s))
                    }
                    EventType::Disconnected => {
                        s = PadState::default();
                        Some(PadEvent::Disconnected)
                    }
                    _ => None,
                };
                if let Some(e) = out {
                    if tx.send(e).is_err() {
                        return;
                    }
                }
            }
        })
        .map_err(|e| e.to_string())?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(rx),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("the gamepad thread ended".into()),
    }
}

/// Without the `gamepad` feature there is no pad.
#[cfg(not(feature = "gamepad"))]
pub fn spawn() -> Result<crossbeam_channel::Receiver<PadEvent>, String> {
    Err("built without the `gamepad` feature".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_enable_button_drives_and_the_dead_zone_is_still() {
        let l = crate::config::LimitsConfig::default();
        let mut s = PadState {
            forward: 1.0,
            turn: 0.0,
            ..Default::default()
        };
        assert_eq!(twist_of(&s, 0.5, &l), None, "no enable, no motion");
        s.enable = true;
        let t = twist_of(&s, 0.5, &l).unwrap();
        assert!((t.linear - 0.5 * l.max_linear_mps).abs() < 1e-9);
        s.turbo = true;
        assert!((twist_of(&s, 0.5, &l).unwrap().linear - l.max_linear_mps).abs() < 1e-9);
        let still = PadState {
            enable: true,
            forward: 0.1,
            turn: -0.05,
            turbo: false,
        };
        assert_eq!(twist_of(&still, 1.0, &l).unwrap(), Twist::ZERO);
        let nan = PadState {
            enable: true,
            forward: f32::NAN,
            turn: 1.0,
            turbo: false,
        };
        let t = twist_of(&nan, 1.0, &l).unwrap();
        assert!(t.is_finite() && t.linear == 0.0 && t.angular > 0.0);
    }
}
