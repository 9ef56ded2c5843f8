//! Recall: "where did I last see something matching this instruction?", asked of working memory.
//!
//! Each working-memory entry the policy tagged keeps a sighting (odometry pose, time, odometer,
//! odometry jumps) and a compact tag of the frame (see [`tag_width`]): per image column, the
//! concept posterior of its cells and the free range along the column's bearing. Recall is
//! attention over those entries and the long-term places: an entry's logit is its best column's
//! match with the instruction (scaled by `sharpness`) plus the log of its trust (decaying with
//! the time since, the distance driven since, and each odometry jump since). The attended
//! entries' bearing rays (and ranges, where the range rays saw something along them) are
//! combined by weighted least squares into one remembered position in the odometry frame, with a
//! confidence: the attention-weighted match times trust. The work is one pass over every slot,
//! `O(entries x columns x concepts)`, with a streaming softmax: nothing is allocated.

use crate::grounding::query::column_bearing;
use crate::integrator::{Sighting, Sightings};

/// Most image columns a tag keeps (the vision region's grid is 7 wide).
pub const TAG_COLS: usize = 8;

/// Tag layout for `concepts` concepts: `[columns, then per column: concepts posteriors, range]`.
pub fn tag_width(concepts: usize) -> usize {
    1 + TAG_COLS * (concepts + 1)
}

/// How recall weighs what it finds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecallParams {
    /// A column must match the instruction at least this well to be evidence.
    pub min_match: f32,
    /// Attention sharpness (logit per unit of match).
    pub sharpness: f32,
    /// Trust halves every `half_life_s` seconds.
    pub half_life_s: f32,
    /// Trust halves every `drift_half_m` metres driven since (odometry drift).
    pub drift_half_m: f32,
    /// Trust is multiplied by this for every odometry jump since.
    pub jump_factor: f32,
    /// Range readings at or beyond this saw nothing, m.
    pub range_max: f32,
    /// Distance assumed along a bearing when no range and no second view fix it, m.
    pub default_distance: f32,
    /// Camera horizontal field of view, rad.
    pub hfov: f32,
}

/// The result of a recall.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recalled {
    /// Remembered position of the target, odometry frame, m.
    pub x: f32,
    /// Remembered position of the target, odometry frame, m.
    pub y: f32,
    /// Attention-weighted match times trust, 0..1.
    pub confidence: f32,
    /// Whether only a direction is known (no range, no second view): `x, y` lie
    /// `default_distance` along it.
    pub bearing_only: bool,
    /// Entries that were evidence.
    pub evidence: u32,
    /// Capture time of the newest evidence, ns.
    pub newest_ns: u64,
}

/// Where and how the robot is now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Now {
    /// Time, ns.
    pub ns: u64,
    /// Odometer, m.
    pub odometer: f32,
    /// Odometry jumps so far.
    pub jumps: u32,
    /// Ignore sightings captured before this (a recall that was followed and found nothing).
    pub floor_ns: u64,
}

#[derive(Default)]
struct Acc {
    max: f32,
    z: f32,
    a: [f32; 3],
    b: [f32; 2],
    conf: f32,
    n: u32,
    newest: u64,
    best: Option<(f32, [f32; 4])>,
}

impl Acc {
    fn add(&mut self, logit: f32, m: f32, trust: f32, o: (f32, f32), th: f32, range: Option<f32>) {
        if self.n == 0 || logit > self.max {
            let scale = if self.n == 0 {
                0.0
            } else {
                (self.max - logit).exp()
            };
            self.z *= scale;
            self.a.iter_mut().for_each(|v| *v *= scale);
            self.b.iter_mut().for_each(|v| *v *= scale);
            self.conf *= scale;
            self.max = logit;
        }
        let w = (logit - self.max).exp();
        let (dx, dy) = (th.cos(), th.sin());
        let lam = if range.is_some() { 1.0 } else { 0.0 };
        // (I - d d^T) + lam d d^T
        let a11 = 1.0 - dx * dx + lam * dx * dx;
        let a12 = -dx * dy + lam * dx * dy;
        let a22 = 1.0 - dy * dy + lam * dy * dy;
        let dot_o = dx * o.0 + dy * o.1;
        let r = range.unwrap_or(0.0);
        let b1 = o.0 - dx * dot_o + lam * dx * (dot_o + r);
        let b2 = o.1 - dy * dot_o + lam * dy * (dot_o + r);
        self.z += w;
        self.a[0] += w * a11;
        self.a[1] += w * a12;
        self.a[2] += w * a22;
        self.b[0] += w * b1;
        self.b[1] += w * b2;
        self.conf += w * m * trust;
        self.n += 1;
        if self.best.is_none_or(|(l, _)| logit >= l) {
            self.best = Some((logit, [o.0, o.1, th, range.unwrap_or(f32::NAN)]));
        }
    }
}

fn trust(s: &Sighting, now: &Now, p: &RecallParams) -> f32 {
    let age = now.ns.saturating_sub(s.stamp_ns) as f32 * 1e-9;
    let driven = (now.odometer - s.odometer).max(0.0);
    let jumps = now.jumps.saturating_sub(s.jumps).min(16) as i32;
    (-(age / p.half_life_s.max(1e-3)) * std::f32::consts::LN_2).exp()
        * (-(driven / p.drift_half_m.max(1e-3)) * std::f32::consts::LN_2).exp()
        * p.jump_factor.powi(jumps)
}

/// Offer every sighting of `store` to the accumulator. `score(column posterior) -> match`.
fn scan_store(
    acc: &mut Acc,
    store: &Sightings,
    concepts: usize,
    score: &dyn Fn(&[f32]) -> f32,
    now: &Now,
    p: &RecallParams,
) {
    let stride = concepts + 1;
    for i in 0..store.capacity() {
        let Some((s, tag)) = store.get(i) else {
            continue;
        };
        if s.stamp_ns < now.floor_ns || tag.len() != tag_width(concepts) {
            continue;
        }
        let cols = tag[0] as usize;
        if cols == 0 || cols > TAG_COLS {
            continue;
        }
        let mut best = (0usize, 0.0f32);
        for c in 0..cols {
            let m = score(&tag[1 + c * stride..1 + c * stride + concepts]);
            if m > best.1 {
                best = (c, m);
            }
        }
        if best.1 < p.min_match {
            continue;
        }
        let t = trust(s, now, p);
        if t.is_nan() || t <= 1e-6 {
            continue;
        }
        let c = best.0;
        let th = s.heading + column_bearing(c as f32 + 0.5, cols, p.hfov);
        let r = tag[1 + c * stride + concepts];
        let range = (r.is_finite() && r > 0.05 && r < p.range_max - 0.05).then_some(r);
        acc.add(
            p.sharpness * best.1 + t.ln(),
            best.1,
            t,
            (s.x, s.y),
            th,
            range,
        );
        acc.newest = acc.newest.max(s.stamp_ns);
    }
}

/// Attention over the sightings of working memory and the long-term places. `score` gives a
/// column posterior's match with the current instruction. `None`: nothing matched.
pub fn recall(
    working: &Sightings,
    places: &Sightings,
    concepts: usize,
    score: &dyn Fn(&[f32]) -> f32,
    now: &Now,
    p: &RecallParams,
) -> Option<Recalled> {
    let mut acc = Acc::default();
    scan_store(&mut acc, working, concepts, score, now, p);
    scan_store(&mut acc, places, concepts, score, now, p);
    if acc.n == 0 || acc.z <= 0.0 {
        return None;
    }
    let inv = 1.0 / acc.z;
    let (a11, a12, a22) = (acc.a[0] * inv, acc.a[1] * inv, acc.a[2] * inv);
    let (b1, b2) = (acc.b[0] * inv, acc.b[1] * inv);
    let det_data = a11 * a22 - a12 * a12;
    let (_, [ox, oy, th, r]) = acc.best?;
    // A weak prior along the strongest ray keeps the system solvable when every ray is
    // parallel and none has a range (then only the direction is known).
    let prior_d = if r.is_finite() { r } else { p.default_distance };
    let (px, py) = (ox + prior_d * th.cos(), oy + prior_d * th.sin());
    let eps = 0.02;
    let (m11, m12, m22) = (a11 + eps, a12, a22 + eps);
    let (c1, c2) = (b1 + eps * px, b2 + eps * py);
    let det = m11 * m22 - m12 * m12;
    if det.is_nan() || det.abs() <= 1e-9 {
        return None;
    }
    let x = (m22 * c1 - m12 * c2) / det;
    let y = (m11 * c2 - m12 * c1) / det;
    let confidence = (acc.conf * inv).clamp(0.0, 1.0);
    (x.is_finite() && y.is_finite()).then_some(Recalled {
        x,
        y,
        confidence,
        bearing_only: det_data < 0.05,
        evidence: acc.n,
        newest_ns: acc.newest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrator::{LongTermMemory, WorkingMemory};

    const K: usize = 3;

    fn params() -> RecallParams {
        RecallParams {
            min_match: 0.3,
            sharpness: 8.0,
            half_life_s: 60.0,
            drift_half_m: 20.0,
            jump_factor: 0.3,
            range_max: 2.0,
            default_distance: 2.0,
            hfov: 1.0,
        }
    }

    /// A tag with concept `k` in the middle column of 7 (bearing 0) at `range`.
    fn tag(k: Option<usize>, range: f32) -> Vec<f32> {
        let mut t = vec![0.0; tag_width(K)];
        t[0] = 7.0;
        for c in 0..7 {
            let base = 1 + c * (K + 1);
            t[base + K] = 2.0;
            if c == 3 {
                if let Some(k) = k {
                    t[base + k] = 0.9;
                }
                t[base + K] = range;
            }
        }
        t
    }

    fn seen(t: u64, x: f32, y: f32, heading: f32) -> Sighting {
        Sighting {
            stamp_ns: t * 1_000_000_000,
            x,
            y,
            heading,
            odometer: 0.0,
            jumps: 0,
            salience: 0.9,
        }
    }

    #[test]
    fn two_views_triangulate_and_only_the_asked_concept_counts() {
        let mut wm = WorkingMemory::new(64, 4);
        wm.set_tag_width(tag_width(K));
        let ltm = {
            let mut l = LongTermMemory::new(4);
            l.set_tag_width(tag_width(K));
            l
        };
        // Concept 0 at (2, 2): seen from the origin heading 45 deg and from (2, 0) heading 90.
        for (t, s) in [
            (1, seen(1, 0.0, 0.0, std::f32::consts::FRAC_PI_4)),
            (2, seen(2, 2.0, 0.0, std::f32::consts::FRAC_PI_2)),
        ] {
            wm.push(&[0.0; 4], 1.0);
            assert!(wm.attach(&s, &tag(Some(0), 2.0)));
            let _ = t;
        }
        // Concept 1 somewhere else, seen later.
        wm.push(&[0.0; 4], 1.0);
        assert!(wm.attach(&seen(3, 0.0, 0.0, -1.0), &tag(Some(1), 1.0)));
        // Non-finite sightings are never stored.
        wm.push(&[0.0; 4], 1.0);
        assert!(!wm.attach(&seen(4, f32::NAN, 0.0, 0.0), &tag(Some(0), 1.0)));
        let q0 = [1.0, 0.0, 0.0];
        let score = |post: &[f32]| post.iter().zip(&q0).map(|(a, b)| a * b).sum::<f32>();
        let now = Now {
            ns: 5_000_000_000,
            odometer: 0.0,
            jumps: 0,
            floor_ns: 0,
        };
        let r = recall(wm.sightings(), ltm.places(), K, &score, &now, &params()).unwrap();
        assert!((r.x - 2.0).abs() < 0.1 && (r.y - 2.0).abs() < 0.1, "{r:?}");
        assert!(!r.bearing_only);
        assert_eq!(r.evidence, 2);
        assert!(r.confidence > 0.8, "{r:?}");
        // Nothing matches concept 2.
        let q2 = [0.0, 0.0, 1.0];
        let score2 = |post: &[f32]| post.iter().zip(&q2).map(|(a, b)| a * b).sum::<f32>();
        assert!(recall(wm.sightings(), ltm.places(), K, &score2, &now, &params()).is_none());
        // A jump since lowers the confidence; much later, it has faded.
        let jumped = Now { jumps: 1, ..now };
        let rj = recall(wm.sightings(), ltm.places(), K, &score, &jumped, &params()).unwrap();
        assert!(rj.confidence < 0.5 * r.confidence, "{rj:?} vs {r:?}");
        let late = Now {
            ns: 600_000_000_000,
            ..now
        };
        let rl = recall(wm.sightings(), ltm.places(), K, &score, &late, &params()).unwrap();
        assert!(rl.confidence < 0.01, "{rl:?}");
        // A floor after the sightings hides them.
        let floored = Now {
            floor_ns: 3_000_000_000,
            ..now
        };
        assert!(recall(wm.sightings(), ltm.places(), K, &score, &floored, &params()).is_none());
    }

    #[test]
    fn one_view_with_a_range_fixes_the_distance_and_places_survive_a_clear() {
        let mut wm = WorkingMemory::new(16, 4);
        wm.set_tag_width(tag_width(K));
        let mut ltm = LongTermMemory::new(4);
        ltm.set_tag_width(tag_width(K));
        wm.push(&[1.0, 0.0, 0.0, 0.0], 1.0);
        assert!(wm.attach(&seen(1, 1.0, 1.0, 0.0), &tag(Some(2), 1.5)));
        let q = [0.0, 0.0, 1.0];
        let score = |post: &[f32]| post.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>();
        let now = Now {
            ns: 2_000_000_000,
            odometer: 0.0,
            jumps: 0,
            floor_ns: 0,
        };
        let r = recall(wm.sightings(), ltm.places(), K, &score, &now, &params()).unwrap();
        assert!((r.x - 2.5).abs() < 0.1 && (r.y - 1.0).abs() < 0.1, "{r:?}");
        // Without a range: only the direction, `default_distance` along it.
        wm.push(&[1.0, 0.0, 0.0, 0.0], 1.0);
        wm.attach(&seen(1, 1.0, 1.0, 0.0), &tag(Some(2), 2.0));
        // Sleep: consolidation keeps the sighting as a place; working memory is cleared.
        let mut c = crate::integrator::memory::Consolidator::new(4);
        c.begin(&wm, &ltm);
        while !c.step(&wm, &mut ltm) {}
        wm.clear();
        assert!(ltm.places_len() >= 1);
        let r2 = recall(wm.sightings(), ltm.places(), K, &score, &now, &params()).unwrap();
        assert!((r2.y - 1.0).abs() < 0.1 && r2.x > 2.0, "{r2:?}");
    }
}
