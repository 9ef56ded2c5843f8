//! The obstacle-avoiding steering controller: from a desired direction and the range rays to a
//! twist. It drives along the free heading (a corridor of the robot's width with enough
//! clearance) nearest the desired one, slows and stops as the front closes in, turns on the spot
//! towards directions the sensor cannot see, and turns towards the more open side when boxed in.

use crate::msg::Twist;
use crate::navigation::rays::{Echo, RangeScan};

/// Tunables of [`steer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SteerParams {
    /// Free distance a heading needs to be driven along, m.
    pub clearance: f32,
    /// Anything closer than this in the front sector stops forward motion, m.
    pub stop_distance: f32,
    /// Half-width of the driving corridor checked along a heading, m.
    pub corridor_half_width: f32,
    /// Fastest turn, rad/s.
    pub max_angular: f32,
}

/// What [`steer`] commands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Steering {
    /// The twist.
    pub twist: Twist,
    /// Whether the way towards the desired direction was blocked (the robot steers off it, or
    /// is boxed in).
    pub blocked: bool,
}

/// Steer towards `desired` (robot frame, rad) at up to `speed` (m/s), around the obstacles in
/// `scan`, skipping the echo `ignore`. `caution` (>= 1) scales the distance at which an
/// obstacle ahead stops forward motion.
pub fn steer(
    scan: &RangeScan<'_>,
    desired: f32,
    speed: f32,
    ignore: Option<Echo>,
    caution: f32,
    p: &SteerParams,
) -> Steering {
    let fov = scan.fov();
    let half_fov = fov / 2.0;
    // Drowsiness makes the robot stop earlier and drive slower, not choose other ways:
    // widening the corridor it needs boxes it in where it can still pass, and turning on
    // the spot beside a corner is where it scrapes.
    let clearance = p.clearance;
    if desired.abs() > half_fov.min(1.0) || scan.is_empty() {
        // Turn on the spot first (nothing known about that way yet).
        let w = (2.0 * desired).clamp(-p.max_angular, p.max_angular);
        return Steering {
            twist: Twist {
                linear: 0.0,
                angular: w as f64,
            },
            blocked: false,
        };
    }
    // Candidate headings every 5° across the sensor's view: take the free one nearest the
    // desired direction.
    let mut best: Option<(f32, f32)> = None;
    let steps = (fov / 5f32.to_radians()).round() as i32;
    for i in 0..=steps {
        let a = -half_fov + fov * i as f32 / steps.max(1) as f32;
        let free = scan.corridor_free(a, p.corridor_half_width, ignore);
        if free >= clearance {
            let cost = (a - desired).abs();
            if best.is_none_or(|(_, c)| cost < c) {
                best = Some((a, cost));
            }
        }
    }
    let front = scan.front_min(ignore);
    match best {
        Some((a, _)) => {
            let w = (2.5 * a).clamp(-p.max_angular, p.max_angular);
            let align = a.cos().max(0.0).powi(4);
            let slow = ((front - p.stop_distance) / 0.4).clamp(0.0, 1.0);
            let v = if a.abs() > 0.6 {
                0.0
            } else {
                speed * align * (0.3 + 0.7 * slow)
            };
            let v = if front < p.stop_distance * caution {
                0.0
            } else {
                v
            };
            Steering {
                twist: Twist {
                    linear: v as f64,
                    angular: w as f64,
                },
                blocked: (a - desired).abs() > 0.15,
            }
        }
        None => {
            // Boxed in ahead: turn towards the more open side.
            let (left, right) = scan.side_sums();
            let dir = if desired.abs() > 0.3 {
                desired.signum()
            } else if left >= right {
                1.0
            } else {
                -1.0
            };
            let back = if front < p.stop_distance * 0.7 {
                -0.05
            } else {
                0.0
            };
            Steering {
                twist: Twist {
                    linear: back,
                    angular: (dir * p.max_angular * 0.7) as f64,
                },
                blocked: true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::BodyState;
    use std::f32::consts::PI;

    const FOV: f32 = 2.0 * PI / 3.0;
    const MAX: f32 = 2.0;
    const P: SteerParams = SteerParams {
        clearance: 0.4,
        stop_distance: 0.14,
        corridor_half_width: 0.13,
        max_angular: 1.6,
    };

    /// Nine rays 15° apart across 120°, right to left, all reading `far` but for `near`
    /// `(ray, range)` readings.
    fn body(far: f32, near: &[(usize, f32)]) -> BodyState {
        let mut b = BodyState {
            range_count: 9,
            ..Default::default()
        };
        b.range[..9].fill(far);
        for &(k, r) in near {
            b.range[k] = r;
        }
        b
    }

    fn go(b: &BodyState, desired: f32, caution: f32) -> Steering {
        steer(
            &RangeScan::new(b, FOV, MAX),
            desired,
            0.5,
            None,
            caution,
            &P,
        )
    }

    #[test]
    fn drives_straight_at_full_speed_when_the_way_is_open() {
        let s = go(&body(2.0, &[]), 0.0, 1.0);
        assert!(!s.blocked);
        assert!((s.twist.linear - 0.5).abs() < 1e-6, "{s:?}");
        assert!(s.twist.angular.abs() < 1e-6);
    }

    #[test]
    fn steers_away_from_a_near_obstacle_ahead() {
        // Something 0.35 m dead ahead and 15° to its right: the way ahead is not clear, the
        // nearest free heading is to the left.
        let b = body(2.0, &[(3, 0.35), (4, 0.35)]);
        let s = go(&b, 0.0, 1.0);
        assert!(s.blocked, "{s:?}");
        assert!(s.twist.angular > 0.0, "turns left, away from it: {s:?}");
        assert!(s.twist.linear < 0.5);
        // Mirrored: it turns right.
        let b = body(2.0, &[(4, 0.35), (5, 0.35)]);
        let s = go(&b, 0.0, 1.0);
        assert!(s.blocked && s.twist.angular < 0.0, "{s:?}");
    }

    #[test]
    fn stops_forward_motion_when_something_is_very_close_ahead() {
        // An obstacle 0.18 m away, 30° to the left (inside the ±35° front sector): the
        // corridor 20° to the right of it is free, and the robot creeps along it.
        let b = body(2.0, &[(6, 0.18)]);
        let s = go(&b, 0.0, 1.0);
        assert!(s.blocked && s.twist.angular < 0.0, "{s:?}");
        assert!(s.twist.linear > 0.0 && s.twist.linear < 0.25, "{s:?}");
        // With caution it stops earlier.
        let s = go(&b, 0.0, 1.5);
        assert_eq!(s.twist.linear, 0.0, "{s:?}");
    }

    #[test]
    fn turns_on_the_spot_towards_a_way_it_cannot_see() {
        let s = go(&body(2.0, &[]), 2.0, 1.0);
        assert!(!s.blocked);
        assert_eq!(s.twist.linear, 0.0);
        assert_eq!(s.twist.angular, 1.6f32 as f64);
        // Without range rays, too.
        let none = BodyState::default();
        let s = steer(&RangeScan::new(&none, FOV, MAX), -0.2, 0.5, None, 1.0, &P);
        assert_eq!(s.twist.linear, 0.0);
        assert!((s.twist.angular + 0.4).abs() < 1e-6);
    }

    #[test]
    fn boxed_in_it_turns_to_the_more_open_side_and_backs_off() {
        // Everything within 0.3 m, the left a little more open; very close ahead.
        let b = body(0.3, &[(4, 0.08), (7, 0.35), (8, 0.35)]);
        let s = go(&b, 0.0, 1.0);
        assert!(s.blocked);
        assert!(s.twist.angular > 0.0, "{s:?}");
        assert_eq!(s.twist.linear, -0.05);
        // Asked to go right, it turns right anyway.
        let s = go(&b, -0.5, 1.0);
        assert!(s.twist.angular < 0.0, "{s:?}");
    }

    #[test]
    fn an_echo_is_driven_into() {
        // The target 0.3 m ahead, taken as its own echo: the way ahead stays open.
        let b = body(2.0, &[(4, 0.3)]);
        let echo = Echo {
            dir: 0.0,
            half: 32f32.to_radians(),
            min_range: 0.26,
        };
        let s = steer(&RangeScan::new(&b, FOV, MAX), 0.0, 0.5, Some(echo), 1.0, &P);
        assert!(
            !s.blocked && s.twist.linear > 0.0 && s.twist.angular.abs() < 1e-6,
            "{s:?}"
        );
        assert!(go(&b, 0.0, 1.0).blocked);
    }
}
