//! Local navigation without language or vision: range rays, dead reckoning, exploring, steering.
//! Depends on `msg`, the body's parameters and `util` only; never on grounding, integrator or sim.
//!
//! * [`rays`]: a [`RangeScan`] over one [`BodyState`](crate::msg::BodyState)'s range rays:
//!   ray angles, the free distance along a corridor, the nearest reading ahead or anywhere, and
//!   the [`Echo`] of something to be ignored (the target being approached).
//! * [`odometry`]: [`DeadReckoning`], the pose from the gyro and the wheel encoders.
//! * [`explore`]: the [`VisitedMap`] of where the robot has been (novelty of a heading) and the
//!   [`HeadingBins`] of where it has looked during a scan and how open each heading was.
//! * [`steer`]: the obstacle-avoiding steering controller, from a range scan to a twist.
//!
//! Everything here is fixed-size and allocation-free on the decision path.

pub mod explore;
pub mod odometry;
pub mod rays;
pub mod steer;

pub use explore::{HeadingBins, VisitedMap};
pub use odometry::DeadReckoning;
pub use rays::{Echo, RangeScan};
pub use steer::{steer, SteerParams, Steering};

use std::f32::consts::{PI, TAU};

/// An angle wrapped into `[-π, π)`, rad.
pub fn wrap(a: f32) -> f32 {
    let mut a = (a + PI) % TAU;
    if a < 0.0 {
        a += TAU;
    }
    a - PI
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_angles_in_range_and_equivalent() {
        for &a in &[0.0f32, 1.0, -1.0, 3.0, -3.0, 7.0, -7.0, 100.0, -100.0] {
            let w = wrap(a);
            assert!((-PI..PI).contains(&w), "{a} -> {w}");
            assert!(((a - w) / TAU - ((a - w) / TAU).round()).abs() < 1e-4);
        }
        assert_eq!(wrap(0.5), 0.5);
        assert!((wrap(PI + 0.25) - (-PI + 0.25)).abs() < 1e-6);
    }
}
