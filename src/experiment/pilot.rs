//! A classical baseline pilot for the simulator: colour-blob visual servoing with range-ray
//! obstacle avoidance. It reads only what the robot senses (camera frames, range rays, gyro) and
//! the instruction text, never the simulator's ground truth, so its success rate is an honest
//! floor that the learned, language-grounded policy has to beat.

use crate::msg::{BodyState, Mode, MotorIntent, Twist};
use crate::world::{Colour, ObjectKind, Shape};

/// What the pilot sees of its target in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sighting {
    /// Bearing of the blob centre, rad (left positive).
    pub bearing: f64,
    /// Blob area as a fraction of the image.
    pub area: f64,
    /// Bottom row of the blob as a fraction of the image height (1 = bottom).
    pub bottom: f64,
}

/// Find the target in an RGB8 frame (rows top to bottom): the connected blob of the target's
/// colour whose shape best matches, if any.
pub fn find_target(
    kind: ObjectKind,
    width: u32,
    height: u32,
    rgb: &[u8],
    hfov: f64,
) -> Option<Sighting> {
    let (w, h) = (width as usize, height as usize);
    if rgb.len() < w * h * 3 || w == 0 || h == 0 {
        return None;
    }
    let target_hue = hue(kind.colour.rgb().map(|c| c as f32)).0;
    let mut mask = vec![false; w * h];
    for (i, px) in rgb.chunks_exact(3).take(w * h).enumerate() {
        let (hu, s, v) = hue([px[0] as f32, px[1] as f32, px[2] as f32].map(|c| c / 255.0));
        let d = (hu - target_hue).abs();
        let d = d.min(360.0 - d);
        mask[i] = s > 0.45 && v > 0.12 && d < 13.0;
    }
    // Connected components (4-neighbour flood fill).
    let mut seen = vec![false; w * h];
    let mut best: Option<(f64, Sighting)> = None;
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut n, mut sx, mut x0, mut x1, mut y0, mut y1) = (0usize, 0usize, w, 0, h, 0);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            n += 1;
            sx += x;
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
            let mut visit = |j: usize| {
                if mask[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w);
            }
            if y + 1 < h {
                visit(i + w);
            }
        }
        if n < 12 {
            continue;
        }
        let bw = (x1 - x0 + 1) as f64;
        let bh = (y1 - y0 + 1) as f64;
        let fill = n as f64 / (bw * bh);
        let cut = x0 == 0 || x1 + 1 == w || y1 + 1 == h;
        let guess = if bh / bw > 1.2 {
            Shape::Cylinder
        } else if fill < 0.86 {
            Shape::Ball
        } else {
            Shape::Cube
        };
        // Prefer the right shape; a blob cut by the border cannot be judged, so it is neutral.
        let shape_score = if cut {
            0.5
        } else if guess == kind.shape {
            1.0
        } else {
            0.0
        };
        let score = shape_score + (n as f64).ln() * 0.05;
        let cx = sx as f64 / n as f64;
        let s = Sighting {
            bearing: -(cx / w as f64 - 0.5) * hfov,
            area: n as f64 / (w * h) as f64,
            bottom: (y1 + 1) as f64 / h as f64,
        };
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, s));
        }
    }
    best.filter(|(score, _)| *score >= 0.4).map(|(_, s)| s)
}

fn hue(c: [f32; 3]) -> (f32, f32, f32) {
    let max = c[0].max(c[1]).max(c[2]);
    let min = c[0].min(c[1]).min(c[2]);
    let d = max - min;
    let s = if max > 0.0 { d / max } else { 0.0 };
    if d <= 1e-6 {
        return (0.0, s, max);
    }
    let h = if max == c[0] {
        60.0 * (((c[1] - c[2]) / d).rem_euclid(6.0))
    } else if max == c[1] {
        60.0 * ((c[2] - c[0]) / d + 2.0)
    } else {
        60.0 * ((c[0] - c[1]) / d + 4.0)
    };
    (h, s, max)
}

/// The baseline pilot's state.
#[derive(Debug, Clone)]
pub struct ColourPilot {
    target: Option<ObjectKind>,
    hfov: f64,
    last_seen: Option<(u64, Sighting)>,
    search_turned: f64,
    wander_until_ns: u64,
    last_ns: u64,
    turn_sign: f64,
    arrived: bool,
}

impl ColourPilot {
    /// A pilot for `instruction` (it understands "<colour> <shape>" in it), with a camera of
    /// horizontal field of view `hfov` radians.
    pub fn new(instruction: &str, hfov: f64) -> Self {
        Self {
            target: ObjectKind::parse(instruction).or_else(|| {
                // Colour alone: any shape of that colour.
                instruction
                    .to_lowercase()
                    .split(|c: char| !c.is_alphanumeric())
                    .find_map(Colour::from_word)
                    .map(|colour| ObjectKind {
                        colour,
                        shape: Shape::Ball,
                    })
            }),
            hfov,
            last_seen: None,
            search_turned: 0.0,
            wander_until_ns: 0,
            last_ns: 0,
            turn_sign: 1.0,
            arrived: false,
        }
    }

    /// What it looks for (None: the instruction names no colour).
    pub fn target(&self) -> Option<ObjectKind> {
        self.target
    }

    /// Horizontal field of view it assumes, rad.
    pub fn hfov(&self) -> f64 {
        self.hfov
    }

    /// Take a sighting made elsewhere (e.g. on the simulator thread) at `now_ns`.
    pub fn observe(&mut self, now_ns: u64, s: Sighting) {
        if self.last_seen.is_none_or(|(t, _)| now_ns >= t) {
            self.last_seen = Some((now_ns, s));
        }
    }

    /// Forget sightings and arrival (after sleep or an e-stop).
    pub fn reset(&mut self) {
        self.last_seen = None;
        self.search_turned = 0.0;
        self.wander_until_ns = 0;
        self.arrived = false;
    }

    /// Look at a camera frame.
    pub fn see(&mut self, now_ns: u64, width: u32, height: u32, rgb: &[u8]) {
        if let Some(kind) = self.target {
            if let Some(s) = find_target(kind, width, height, rgb, self.hfov) {
                self.last_seen = Some((now_ns, s));
            }
        }
    }

    /// Decide the next motion from the body state.
    pub fn decide(&mut self, now_ns: u64, body: &BodyState) -> MotorIntent {
        let dt = now_ns.saturating_sub(self.last_ns) as f64 * 1e-9;
        self.last_ns = now_ns;
        if self.target.is_none() {
            return MotorIntent {
                twist: Twist::ZERO,
                mode: Mode::Idle,
            };
        }
        let n = body.range_count as usize;
        let ranges = &body.range[..n];
        let front = if n >= 3 {
            ranges[n / 2 - 1..=n / 2 + 1]
                .iter()
                .fold(f32::INFINITY, |a, &b| a.min(b)) as f64
        } else {
            f64::INFINITY
        };
        let right: f64 = ranges[..n / 2].iter().map(|&r| r as f64).sum();
        let left: f64 = ranges[n.div_ceil(2)..].iter().map(|&r| r as f64).sum();
        let fresh = self
            .last_seen
            .filter(|(t, _)| now_ns.saturating_sub(*t) < 1_000_000_000);
        if self.arrived {
            return MotorIntent {
                twist: Twist::ZERO,
                mode: Mode::Arrived,
            };
        }
        if let Some((_, s)) = fresh {
            self.search_turned = 0.0;
            // Close to a centred target: the range ray hits it.
            if s.bearing.abs() < 0.2 && front < 0.22 && (s.area > 0.02 || s.bottom > 0.8) {
                self.arrived = true;
                return MotorIntent {
                    twist: Twist::ZERO,
                    mode: Mode::Arrived,
                };
            }
            let target_ahead = s.bearing.abs() < 0.25 && s.area > 0.03;
            if front < 0.3 && !target_ahead {
                return self.avoid(left, right);
            }
            let linear = 0.3 * (1.0 - s.bearing.abs() / 0.5).clamp(0.0, 1.0);
            let linear = if front < 0.5 {
                linear.min(0.12)
            } else {
                linear
            };
            return MotorIntent {
                twist: Twist {
                    linear,
                    angular: (2.0 * s.bearing).clamp(-1.5, 1.5),
                },
                mode: Mode::Approach,
            };
        }
        if now_ns < self.wander_until_ns {
            if front < 0.35 {
                return self.avoid(left, right);
            }
            return MotorIntent {
                twist: Twist {
                    linear: 0.25,
                    angular: 0.15 * self.turn_sign,
                },
                mode: Mode::Search,
            };
        }
        // Spin in place looking for it; after a full turn, wander somewhere else.
        self.search_turned += body.gyro_z.abs() * dt;
        if self.search_turned > std::f64::consts::TAU {
            self.search_turned = 0.0;
            self.wander_until_ns = now_ns + 3_000_000_000;
            self.turn_sign = -self.turn_sign;
        }
        MotorIntent {
            twist: Twist {
                linear: 0.0,
                angular: 0.9 * self.turn_sign,
            },
            mode: Mode::Search,
        }
    }

    fn avoid(&mut self, left: f64, right: f64) -> MotorIntent {
        let sign = if left >= right { 1.0 } else { -1.0 };
        MotorIntent {
            twist: Twist {
                linear: 0.0,
                angular: 1.2 * sign,
            },
            mode: Mode::Avoid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_red_ball_left_of_centre_and_ignores_blue() {
        let (w, h) = (64u32, 48u32);
        let mut rgb = vec![128u8; (w * h * 3) as usize];
        let mut paint = |cx: f64, cy: f64, r: f64, c: [u8; 3]| {
            for y in 0..h {
                for x in 0..w {
                    if (x as f64 - cx).hypot(y as f64 - cy) <= r {
                        let i = ((y * w + x) * 3) as usize;
                        rgb[i..i + 3].copy_from_slice(&c);
                    }
                }
            }
        };
        paint(16.0, 24.0, 6.0, [200, 20, 20]);
        paint(48.0, 24.0, 6.0, [20, 40, 200]);
        let kind = ObjectKind::parse("red ball").unwrap();
        let s = find_target(kind, w, h, &rgb, 1.0).unwrap();
        assert!(s.bearing > 0.2, "{s:?}");
        assert!(find_target(ObjectKind::parse("green ball").unwrap(), w, h, &rgb, 1.0).is_none());
    }

    #[test]
    fn no_target_in_instruction_stays_idle() {
        let mut p = ColourPilot::new("hello there", 1.0);
        let i = p.decide(1, &BodyState::default());
        assert_eq!(i.mode, Mode::Idle);
        assert_eq!(i.twist, Twist::ZERO);
    }
}
