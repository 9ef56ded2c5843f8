//! Range-ray geometry over one body state: the rays spread evenly across the sensor's field of
//! view, right to left (robot frame, counter-clockwise positive); a reading <= 0 or non-finite,
//! or beyond the sensor's range, counts as the range.

use crate::msg::BodyState;
use std::f32::consts::PI;

/// Range rays to be ignored (not taken as an obstacle): those within `half` of direction `dir`
/// that read no nearer than `min_range` — e.g. the echo of the target being approached, with
/// anything nearer than it along its bearing still an obstacle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Echo {
    /// Direction, robot frame, rad.
    pub dir: f32,
    /// Half-width of the ignored sector, rad.
    pub half: f32,
    /// Readings nearer than this are never ignored, m.
    pub min_range: f32,
}

impl Echo {
    /// Whether a ray at `angle` reading `range` is part of the echo.
    pub fn covers(&self, angle: f32, range: f32) -> bool {
        (angle - self.dir).abs() <= self.half && range >= self.min_range
    }
}

/// One body state's range rays, with the sensor's field of view and range.
#[derive(Debug, Clone, Copy)]
pub struct RangeScan<'a> {
    body: &'a BodyState,
    fov: f32,
    max: f32,
}

impl<'a> RangeScan<'a> {
    /// The rays of `body` from a sensor with field of view `fov` (rad) and range `max` (m).
    pub fn new(body: &'a BodyState, fov: f32, max: f32) -> Self {
        Self { body, fov, max }
    }

    /// Field of view, rad.
    pub fn fov(&self) -> f32 {
        self.fov
    }

    /// Range, m.
    pub fn max(&self) -> f32 {
        self.max
    }

    /// Number of valid rays.
    pub fn len(&self) -> usize {
        (self.body.range_count as usize).min(self.body.range.len())
    }

    /// Whether there are no rays (a body without a range sensor).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Angle of ray `k` of `n` (right to left), rad.
    pub fn ray_angle(&self, k: usize, n: usize) -> f32 {
        if n <= 1 {
            return 0.0;
        }
        -self.fov / 2.0 + self.fov * k as f32 / (n - 1) as f32
    }

    /// Reading of ray `k`, m (within `(0, max]`).
    pub fn ray(&self, k: usize) -> f32 {
        let r = self.body.range[k];
        if r.is_finite() && r > 0.0 {
            r.min(self.max)
        } else {
            self.max
        }
    }

    /// Free distance along direction `a` (robot frame): the nearest reading of the rays that
    /// fall inside a corridor of half-width `half_width` along `a`, skipping `ignore`.
    pub fn corridor_free(&self, a: f32, half_width: f32, ignore: Option<Echo>) -> f32 {
        let n = self.len();
        let mut free = self.max;
        for k in 0..n {
            let ak = self.ray_angle(k, n);
            let r = self.ray(k);
            if ignore.is_some_and(|e| e.covers(ak, r)) {
                continue;
            }
            let off = (ak - a).abs();
            if off >= PI / 2.0 {
                continue;
            }
            // Lateral offset of the echo from the corridor's centre line.
            let lateral = r * off.sin();
            if lateral <= half_width {
                free = free.min(r * off.cos());
            }
        }
        free
    }

    /// Nearest reading in the front sector (±35°), skipping `ignore`.
    pub fn front_min(&self, ignore: Option<Echo>) -> f32 {
        let n = self.len();
        let mut m = self.max;
        for k in 0..n {
            let ak = self.ray_angle(k, n);
            let r = self.ray(k);
            if ignore.is_some_and(|e| e.covers(ak, r)) {
                continue;
            }
            if ak.abs() <= 35f32.to_radians() {
                m = m.min(r);
            }
        }
        m
    }

    /// Angle and distance of the nearest reading (`(0, max)` without rays).
    pub fn nearest_ray(&self) -> (f32, f32) {
        let n = self.len();
        (0..n)
            .map(|k| (self.ray_angle(k, n), self.ray(k)))
            .fold((0.0, self.max), |b, x| if x.1 < b.1 { x } else { b })
    }

    /// Range along a bearing: the nearest of the rays within 12° of it (`None` if no ray is).
    pub fn range_at(&self, bearing: f32) -> Option<f32> {
        let n = self.len();
        (0..n)
            .filter(|&k| (self.ray_angle(k, n) - bearing).abs() <= 12f32.to_radians())
            .map(|k| self.ray(k))
            .reduce(f32::min)
    }

    /// Summed readings of the rays to the left (angle > 0) and to the right (the rest).
    pub fn side_sums(&self) -> (f32, f32) {
        let n = self.len();
        let (mut left, mut right) = (0.0, 0.0);
        for k in 0..n {
            if self.ray_angle(k, n) > 0.0 {
                left += self.ray(k);
            } else {
                right += self.ray(k);
            }
        }
        (left, right)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOV: f32 = PI / 2.0;
    const MAX: f32 = 2.0;

    /// A body with these readings, right to left.
    fn body(range: &[f32]) -> BodyState {
        let mut b = BodyState::default();
        b.range[..range.len()].copy_from_slice(range);
        b.range_count = range.len() as u8;
        b
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-5
    }

    #[test]
    fn rays_spread_right_to_left_across_the_field_of_view() {
        let b = body(&[1.0; 5]);
        let s = RangeScan::new(&b, FOV, MAX);
        assert_eq!(s.len(), 5);
        let angles: Vec<f32> = (0..5).map(|k| s.ray_angle(k, 5)).collect();
        for (a, want) in angles
            .iter()
            .zip([-FOV / 2.0, -FOV / 4.0, 0.0, FOV / 4.0, FOV / 2.0])
        {
            assert!(close(*a, want), "{angles:?}");
        }
        assert_eq!(s.ray_angle(0, 1), 0.0);
    }

    #[test]
    fn bad_or_far_readings_count_as_the_range() {
        let b = body(&[0.0, -1.0, f32::NAN, f32::INFINITY, 5.0, 0.5]);
        let s = RangeScan::new(&b, FOV, MAX);
        assert_eq!(
            (0..6).map(|k| s.ray(k)).collect::<Vec<_>>(),
            [2.0, 2.0, 2.0, 2.0, 2.0, 0.5]
        );
    }

    #[test]
    fn range_count_beyond_the_array_is_clamped() {
        let mut b = body(&[1.0; 3]);
        b.range_count = 200;
        assert_eq!(RangeScan::new(&b, FOV, MAX).len(), b.range.len());
        assert!(RangeScan::new(&BodyState::default(), FOV, MAX).is_empty());
    }

    #[test]
    fn corridor_sees_only_what_is_within_its_width() {
        // An obstacle 0.5 m away, 22.5° to the right.
        let b = body(&[2.0, 0.5, 2.0, 2.0, 2.0]);
        let s = RangeScan::new(&b, FOV, MAX);
        // Straight ahead its lateral offset is 0.5 sin 22.5° = 0.19 m: outside a 0.13 m
        // half-width corridor, inside a 0.25 m one, where it is 0.5 cos 22.5° ahead.
        assert_eq!(s.corridor_free(0.0, 0.13, None), 2.0);
        assert!(close(
            s.corridor_free(0.0, 0.25, None),
            0.5 * (FOV / 4.0).cos()
        ));
        // Along its own direction it is right in the way; to the left it is not.
        assert!(close(s.corridor_free(-FOV / 4.0, 0.13, None), 0.5));
        assert_eq!(s.corridor_free(FOV / 4.0, 0.13, None), 2.0);
        // Rays 90° or more off the corridor never count.
        let b = body(&[0.3, 2.0, 2.0]);
        let s = RangeScan::new(&b, PI, MAX);
        assert!(close(s.corridor_free(PI / 2.0, 0.13, None), 2.0));
    }

    #[test]
    fn front_min_nearest_ray_and_range_at() {
        // Something near on the far left (outside ±35°) and something farther dead ahead.
        let b = body(&[1.5, 2.0, 0.8, 2.0, 0.4]);
        let s = RangeScan::new(&b, FOV, MAX);
        assert_eq!(s.front_min(None), 0.8);
        let (a, r) = s.nearest_ray();
        assert!(close(a, FOV / 2.0) && r == 0.4);
        assert_eq!(s.range_at(0.0), Some(0.8));
        assert_eq!(s.range_at(-FOV / 2.0), Some(1.5));
        // No ray within 12° of 60°, beyond the field of view.
        assert_eq!(s.range_at(60f32.to_radians()), None);
        let none = BodyState::default();
        let s = RangeScan::new(&none, FOV, MAX);
        assert_eq!(s.nearest_ray(), (0.0, MAX));
        assert_eq!(s.front_min(None), MAX);
        assert_eq!(s.range_at(0.0), None);
    }

    #[test]
    fn an_echo_hides_its_rays_but_not_nearer_ones() {
        // The target 0.6 m dead ahead, something else nearer just to its right.
        let b = body(&[2.0, 0.3, 0.6, 2.0, 2.0]);
        let s = RangeScan::new(&b, FOV, MAX);
        let echo = Echo {
            dir: 0.0,
            half: 32f32.to_radians(),
            min_range: 0.6 - 0.04,
        };
        assert!(echo.covers(0.0, 0.6) && !echo.covers(0.0, 0.5) && !echo.covers(0.6, 2.0));
        // The nearer thing is still in the corridor (0.3 sin 22.5° = 0.11 m off its centre line).
        assert!(close(
            s.corridor_free(0.0, 0.13, Some(echo)),
            0.3 * (FOV / 4.0).cos()
        ));
        assert_eq!(s.front_min(Some(echo)), 0.3);
        let b = body(&[2.0, 2.0, 0.6, 2.0, 2.0]);
        let s = RangeScan::new(&b, FOV, MAX);
        assert_eq!(s.front_min(None), 0.6);
        assert_eq!(s.front_min(Some(echo)), 2.0);
        assert_eq!(s.corridor_free(0.0, 0.13, Some(echo)), 2.0);
    }

    #[test]
    fn side_sums_split_at_straight_ahead() {
        let b = body(&[1.0, 0.5, 0.25, 2.0, 1.5]);
        let s = RangeScan::new(&b, FOV, MAX);
        // The centre ray (angle 0) counts to the right.
        assert_eq!(s.side_sums(), (3.5, 1.75));
    }
}
