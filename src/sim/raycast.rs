//! A small 2-D ray caster over a scenario [`Layout`]: the range rays of the kinematic body,
//! which has no physics engine to ask. Walls and obstacles are axis-aligned boxes; objects are
//! their footprints as MuJoCo builds them (balls and cylinders as circles, cubes as axis-aligned
//! squares).

use crate::world::{Layout, Shape};

/// Distance along the ray from `(ox, oy)` in direction `angle` (rad, world frame) to the first
/// wall, obstacle or object, or `max` when nothing is nearer. A ray starting inside something
/// reads 0.
pub fn cast(layout: &Layout, ox: f64, oy: f64, angle: f64, max: f64) -> f64 {
    let (dy, dx) = angle.sin_cos();
    let mut best = max;
    for b in &layout.boxes {
        if let Some(t) = ray_box(ox, oy, dx, dy, b.x, b.y, b.hx, b.hy) {
            best = best.min(t);
        }
    }
    for o in &layout.objects {
        let t = match o.shape {
            Shape::Cube => ray_box(ox, oy, dx, dy, o.x, o.y, 0.07, 0.07),
            Shape::Ball => ray_circle(ox, oy, dx, dy, o.x, o.y, 0.08),
            Shape::Cylinder => ray_circle(ox, oy, dx, dy, o.x, o.y, 0.07),
            Shape::Capsule => ray_circle(ox, oy, dx, dy, o.x, o.y, crate::world::CAPSULE_RADIUS),
        };
        if let Some(t) = t {
            best = best.min(t);
        }
    }
    best.max(0.0)
}

/// Distance from a point to the nearest surface of anything in the layout (walls, obstacles and
/// every object, the goal included: the kinematic body cannot drive through it either).
pub fn clearance_all(layout: &Layout, x: f64, y: f64) -> f64 {
    let b = layout
        .boxes
        .iter()
        .map(|b| b.distance(x, y))
        .fold(f64::INFINITY, f64::min);
    let o = layout
        .objects
        .iter()
        .map(|o| match o.shape {
            Shape::Cube => {
                let dx = ((x - o.x).abs() - 0.07).max(0.0);
                let dy = ((y - o.y).abs() - 0.07).max(0.0);
                dx.hypot(dy)
            }
            Shape::Ball => ((x - o.x).hypot(y - o.y) - 0.08).max(0.0),
            Shape::Cylinder => ((x - o.x).hypot(y - o.y) - 0.07).max(0.0),
            Shape::Capsule => ((x - o.x).hypot(y - o.y) - crate::world::CAPSULE_RADIUS).max(0.0),
        })
        .fold(f64::INFINITY, f64::min);
    b.min(o)
}

/// Slab test: entry distance of the ray into the box `(cx, cy) ± (hx, hy)`; 0 from inside.
#[allow(clippy::too_many_arguments)]
fn ray_box(ox: f64, oy: f64, dx: f64, dy: f64, cx: f64, cy: f64, hx: f64, hy: f64) -> Option<f64> {
    let mut t0 = f64::NEG_INFINITY;
    let mut t1 = f64::INFINITY;
    for (o, d, lo, hi) in [(ox, dx, cx - hx, cx + hx), (oy, dy, cy - hy, cy + hy)] {
        if d.abs() < 1e-12 {
            if o < lo || o > hi {
                return None;
            }
        } else {
            let (a, b) = ((lo - o) / d, (hi - o) / d);
            t0 = t0.max(a.min(b));
            t1 = t1.min(a.max(b));
        }
    }
    (t1 >= t0.max(0.0)).then_some(t0.max(0.0))
}

/// Entry distance of the ray into the circle of radius `r` at `(cx, cy)`; 0 from inside.
fn ray_circle(ox: f64, oy: f64, dx: f64, dy: f64, cx: f64, cy: f64, r: f64) -> Option<f64> {
    let (fx, fy) = (ox - cx, oy - cy);
    let c = fx * fx + fy * fy - r * r;
    if c <= 0.0 {
        return Some(0.0);
    }
    let b = fx * dx + fy * dy;
    let disc = b * b - c;
    if b > 0.0 || disc < 0.0 {
        return None;
    }
    Some(-b - disc.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{BoxObstacle, Colour, PlacedObject};

    fn layout() -> Layout {
        Layout {
            size_m: 4.0,
            boxes: vec![BoxObstacle {
                x: 2.025,
                y: 0.0,
                hx: 0.025,
                hy: 2.0,
                boundary: true,
            }],
            objects: vec![PlacedObject {
                colour: Colour::Red,
                shape: Shape::Ball,
                x: 0.0,
                y: 1.0,
                goal: true,
            }],
            start: (0.0, 0.0, 0.0),
            goal_index: 0,
            within_m: 0.3,
            shortest_path_m: 1.0,
        }
    }

    #[test]
    fn rays_hit_boxes_and_circles_at_their_surfaces() {
        let l = layout();
        assert!((cast(&l, 0.0, 0.0, 0.0, 5.0) - 2.0).abs() < 1e-9);
        // 30 degrees off the wall's normal: 2 / cos 30.
        let a = 30f64.to_radians();
        assert!((cast(&l, 0.0, 0.0, a, 5.0) - 2.0 / a.cos()).abs() < 1e-9);
        // 60 degrees: passes beside the 4 m wall (y = 3.46 at x = 2).
        assert_eq!(cast(&l, 0.0, 0.0, 60f64.to_radians(), 5.0), 5.0);
        assert!((cast(&l, 0.0, 0.0, std::f64::consts::FRAC_PI_2, 5.0) - 0.92).abs() < 1e-9);
        // Nothing behind: max range; capped below the wall.
        assert_eq!(cast(&l, 0.0, 0.0, std::f64::consts::PI, 5.0), 5.0);
        assert_eq!(cast(&l, 0.0, 0.0, 0.0, 1.5), 1.5);
        // From inside the wall: 0.
        assert_eq!(cast(&l, 2.02, 0.0, 0.0, 5.0), 0.0);
        assert!((clearance_all(&l, 0.0, 0.5) - 0.42).abs() < 1e-9);
    }
}
