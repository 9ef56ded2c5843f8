//! Exploration memory: the [`VisitedMap`] of where the robot has been, so exploring prefers new
//! ground, and the [`HeadingBins`] of which headings a scan has looked at and how open each was,
//! from which [`HeadingBins::most_open_heading`] picks the next leg. Headings are in the
//! odometry frame.

use crate::navigation::wrap;
use std::f32::consts::{PI, TAU};

/// Heading bins of the search memory.
pub const HEADING_BINS: usize = 12;
/// Cells per side of the visited map (odometry frame, centred on the start: 16 m across, so a
/// start in the corner of an 8 m arena still has all of it on the map).
pub const VISIT_CELLS: usize = 32;
/// Side of one visited-map cell, m.
pub const VISIT_CELL_M: f32 = 0.5;

/// The heading bin `h` falls in.
pub fn bin_of(h: f32) -> usize {
    let b = ((wrap(h) + PI) / TAU * HEADING_BINS as f32).floor() as isize;
    b.clamp(0, HEADING_BINS as isize - 1) as usize
}

/// The centre heading of bin `b`, rad.
pub fn bin_heading(b: usize) -> f32 {
    wrap((b as f32 + 0.5) / HEADING_BINS as f32 * TAU - PI)
}

/// Where the robot has been: a coarse map of cells around the start.
#[derive(Debug, Clone)]
pub struct VisitedMap {
    visited: [bool; VISIT_CELLS * VISIT_CELLS],
}

impl Default for VisitedMap {
    fn default() -> Self {
        Self::new()
    }
}

impl VisitedMap {
    /// Nothing visited.
    pub fn new() -> Self {
        Self {
            visited: [false; VISIT_CELLS * VISIT_CELLS],
        }
    }

    /// The cell index of point `(x, y)`, if it is on the map.
    pub fn cell(x: f32, y: f32) -> Option<usize> {
        let half = VISIT_CELLS as f32 / 2.0;
        let i = (x / VISIT_CELL_M + half).floor();
        let j = (y / VISIT_CELL_M + half).floor();
        let n = VISIT_CELLS as f32;
        ((0.0..n).contains(&i) && (0.0..n).contains(&j))
            .then(|| j as usize * VISIT_CELLS + i as usize)
    }

    /// Mark the cell of `pos` visited (nothing if it is off the map).
    pub fn mark(&mut self, pos: (f32, f32)) {
        if let Some(c) = Self::cell(pos.0, pos.1) {
            self.visited[c] = true;
        }
    }

    /// Whether the cell of `(x, y)` has been visited (off the map: no).
    pub fn visited(&self, x: f32, y: f32) -> bool {
        Self::cell(x, y).is_some_and(|i| self.visited[i])
    }

    /// Unvisited ground along heading `h` from `pos`: the points every half metre out to 4 m
    /// that fall in cells not yet visited, those within reach (free distance `free`) counting
    /// fully and those beyond (behind something, or past the sensor's range) a third.
    pub fn novelty(&self, pos: (f32, f32), h: f32, free: f32) -> f32 {
        let (s, c) = h.sin_cos();
        (1..=8)
            .map(|k| k as f32 * 0.5)
            .filter(|&d| Self::cell(pos.0 + d * c, pos.1 + d * s).is_some_and(|i| !self.visited[i]))
            .map(|d| if d <= free + 0.5 { 1.0 } else { 0.33 })
            .sum()
    }
}

/// Which headings a scan has looked at, and the free range seen straight ahead in each.
#[derive(Debug, Clone, Default)]
pub struct HeadingBins {
    looked: [bool; HEADING_BINS],
    free: [f32; HEADING_BINS],
}

impl HeadingBins {
    /// Nothing looked at.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget the scan (a new search).
    pub fn clear(&mut self) {
        self.looked = [false; HEADING_BINS];
        self.free = [0.0; HEADING_BINS];
    }

    /// A view from `heading` with horizontal field of view `2 * half_fov`: the bins whose
    /// centres it covers are looked at, and `centre_free` (free range straight ahead) is the
    /// bin of `heading`'s free range if it is more than that bin had.
    pub fn look(&mut self, heading: f32, half_fov: f32, centre_free: f32) {
        for b in 0..HEADING_BINS {
            let off = wrap(bin_heading(b) - heading).abs();
            if off <= half_fov {
                self.looked[b] = true;
            }
        }
        let b = bin_of(heading);
        self.free[b] = self.free[b].max(centre_free);
    }

    /// Whether every heading has been looked at.
    pub fn all_looked(&self) -> bool {
        self.looked.iter().all(|&l| l)
    }

    /// Whether bin `b` has been looked at.
    pub fn looked(&self, b: usize) -> bool {
        self.looked[b]
    }

    /// The free range seen in bin `b`, m (0 if not seen).
    pub fn free(&self, b: usize) -> f32 {
        self.free[b]
    }

    /// The most open heading seen that leads to new ground (per `visited`, from `pos`),
    /// avoiding `came_from` (within 1 rad of it costs 1 m of free range); the bin of `heading`
    /// if nothing scores.
    pub fn most_open_heading(
        &self,
        heading: f32,
        pos: (f32, f32),
        came_from: Option<f32>,
        visited: &VisitedMap,
    ) -> f32 {
        let mut best = (bin_of(heading), f32::NEG_INFINITY);
        for b in 0..HEADING_BINS {
            let mut score = self.free[b] + 0.8 * visited.novelty(pos, bin_heading(b), self.free[b]);
            if came_from.is_some_and(|back| wrap(bin_heading(b) - back).abs() < 1.0) {
                score -= 1.0;
            }
            if score > best.1 {
                best = (b, score);
            }
        }
        bin_heading(best.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_the_circle_and_round_trip() {
        for b in 0..HEADING_BINS {
            assert_eq!(bin_of(bin_heading(b)), b);
        }
        assert_eq!(bin_of(-PI), 0);
        assert_eq!(bin_of(PI - 1e-4), HEADING_BINS - 1);
        assert_eq!(bin_of(0.01), HEADING_BINS / 2);
        assert_eq!(bin_of(0.01 + TAU), HEADING_BINS / 2);
    }

    #[test]
    fn cells_are_half_a_metre_around_the_start() {
        let mid = VISIT_CELLS / 2;
        assert_eq!(VisitedMap::cell(0.1, 0.1), Some(mid * VISIT_CELLS + mid));
        assert_eq!(
            VisitedMap::cell(0.6, 0.1),
            Some(mid * VISIT_CELLS + mid + 1)
        );
        assert_eq!(
            VisitedMap::cell(-0.1, 0.6),
            Some((mid + 1) * VISIT_CELLS + mid - 1)
        );
        assert_eq!(VisitedMap::cell(7.9, -7.9), Some(VISIT_CELLS - 1));
        assert_eq!(VisitedMap::cell(8.0, 0.0), None);
        assert_eq!(VisitedMap::cell(0.0, -8.1), None);
        assert_eq!(VisitedMap::cell(f32::NAN, 0.0), None);
    }

    #[test]
    fn novelty_falls_where_the_robot_has_been() {
        let mut map = VisitedMap::new();
        // All eight points out to 4 m are new and within reach.
        assert_eq!(map.novelty((0.1, 0.1), 0.0, 4.0), 8.0);
        // Beyond the free range (plus half a metre) they count a third.
        assert!((map.novelty((0.1, 0.1), 0.0, 1.0) - (3.0 + 5.0 * 0.33)).abs() < 1e-5);
        // Drive the first two metres along +x: those points are old ground now.
        for k in 0..=20 {
            map.mark((0.1 * k as f32, 0.1));
        }
        assert!(map.visited(1.0, 0.1) && !map.visited(1.0, 1.0));
        assert_eq!(map.novelty((0.1, 0.1), 0.0, 4.0), 4.0);
        // Straight up (+y) is all new still; back along -x too.
        assert_eq!(map.novelty((0.1, 0.1), PI / 2.0, 4.0), 8.0);
        assert_eq!(map.novelty((0.1, 0.1), PI, 4.0), 8.0);
        // Off the map is not new ground.
        assert_eq!(map.novelty((7.6, 0.1), 0.0, 4.0), 0.0);
        // Marking off the map does nothing.
        map.mark((100.0, 0.0));
    }

    #[test]
    fn a_view_marks_the_bins_it_covers() {
        let mut bins = HeadingBins::new();
        // Bins are 30° wide: a 70° view centred on a bin's centre covers it and its neighbours.
        let h = bin_heading(6);
        bins.look(h, 35f32.to_radians(), 1.5);
        let looked: Vec<usize> = (0..HEADING_BINS).filter(|&b| bins.looked(b)).collect();
        assert_eq!(looked, [5, 6, 7]);
        assert_eq!(bins.free(6), 1.5);
        assert_eq!(bins.free(5), 0.0);
        bins.look(h, 35f32.to_radians(), 0.5);
        assert_eq!(bins.free(6), 1.5, "keeps the most open view");
        assert!(!bins.all_looked());
        for b in 0..HEADING_BINS {
            bins.look(bin_heading(b), 0.1, 1.0);
        }
        assert!(bins.all_looked());
        bins.clear();
        assert!(!bins.looked(6) && bins.free(6) == 0.0);
    }

    #[test]
    fn most_open_heading_prefers_open_new_ground_away_from_where_it_came() {
        let map = VisitedMap::new();
        let mut bins = HeadingBins::new();
        for b in 0..HEADING_BINS {
            bins.look(bin_heading(b), 0.3, 0.5);
        }
        bins.look(bin_heading(2), 0.3, 2.0);
        bins.look(bin_heading(8), 0.3, 1.9);
        assert_eq!(
            bins.most_open_heading(0.0, (0.1, 0.1), None, &map),
            bin_heading(2)
        );
        // Coming from bin 2's way, bin 8 wins.
        let back = Some(bin_heading(2));
        assert_eq!(
            bins.most_open_heading(0.0, (0.1, 0.1), back, &map),
            bin_heading(8)
        );
        // Having been along bin 2's way, bin 8 wins too.
        let mut been = VisitedMap::new();
        let (s, c) = bin_heading(2).sin_cos();
        for k in 1..=40 {
            let d = 0.1 * k as f32;
            been.mark((0.1 + d * c, 0.1 + d * s));
        }
        assert_eq!(
            bins.most_open_heading(0.0, (0.1, 0.1), None, &been),
            bin_heading(8)
        );
        // Nothing to score (all NaN): the current heading's bin.
        let mut nan = HeadingBins::new();
        nan.free = [f32::NAN; HEADING_BINS];
        assert_eq!(
            nan.most_open_heading(1.0, (0.0, 0.0), None, &map),
            bin_heading(bin_of(1.0))
        );
    }
}
