//! Working memory (the day's context) and long-term memory (what sleep keeps of it).
//!
//! Working memory is a preallocated ring of fused states. Reading it is scaled dot-product
//! attention over every entry, so a tick's cost grows with the context, as in seed 001. Sleep
//! consolidates the day's entries (together with the existing long-term slots, weighted by how
//! many states each already stands for) into a fixed number of long-term slots with a few
//! bounded k-means passes, spread over several ticks, then clears the working memory.
//!
//! An entry also keeps what was perceived, where and when: when the decision policy attended a
//! camera frame that tick it hands back a [`Sighting`] (the odometry pose, the time, and a
//! compact *tag* of the frame: per image column, the concept posterior of its cells and the free
//! range along the column's bearing), attached to that tick's entry. The policy's recall is
//! attention over the tagged entries (and the long-term places): "where did I last see something
//! matching this instruction?". Sleep keeps the most salient sightings as long-term *places*
//! ([`PLACES`] of them, each a pose, a time and a tag), so what was seen survives the clearing of
//! working memory.

use super::connector::dot;

/// Number of long-term memory slots.
pub const LONG_TERM_SLOTS: usize = 16;

/// Long-term places (salient sightings) kept over sleep.
pub const PLACES: usize = 64;

/// Most values a sighting tag may have.
pub const MAX_TAG: usize = 1024;

/// Where and when an entry's frame was perceived (the odometry frame of the policy).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sighting {
    /// Capture time, ns.
    pub stamp_ns: u64,
    /// Position, m.
    pub x: f32,
    /// Position, m.
    pub y: f32,
    /// Heading, rad.
    pub heading: f32,
    /// Distance travelled when it was seen (odometer), m: drift grows with what was driven since.
    pub odometer: f32,
    /// Odometry jumps counted when it was seen (a later jump makes it less trustworthy).
    pub jumps: u32,
    /// How salient the frame was (largest object probability of any column), 0..1.
    pub salience: f32,
}

impl Sighting {
    fn finite(&self) -> bool {
        [self.x, self.y, self.heading, self.odometer, self.salience]
            .iter()
            .all(|v| v.is_finite())
    }
}

/// Sightings with their tags: the per-entry side of working memory, and the long-term places.
#[derive(Debug, Clone)]
pub struct Sightings {
    tag_width: usize,
    capacity: usize,
    meta: Vec<Option<Sighting>>,
    tags: Vec<f32>,
}

impl Sightings {
    fn new(capacity: usize, tag_width: usize) -> Self {
        Self {
            tag_width,
            capacity,
            meta: vec![None; capacity],
            tags: vec![0.0; capacity * tag_width],
        }
    }

    fn set_tag_width(&mut self, tag_width: usize) {
        *self = Self::new(self.capacity, tag_width.min(MAX_TAG));
    }

    /// Values per tag.
    pub fn tag_width(&self) -> usize {
        self.tag_width
    }

    /// Slots (entries or places).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The sighting at slot `i`, with its tag.
    pub fn get(&self, i: usize) -> Option<(&Sighting, &[f32])> {
        let w = self.tag_width;
        self.meta
            .get(i)?
            .as_ref()
            .map(|m| (m, &self.tags[i * w..(i + 1) * w]))
    }

    fn put(&mut self, i: usize, s: Option<(Sighting, &[f32])>) {
        let w = self.tag_width;
        match s {
            Some((m, tag)) if w > 0 && tag.len() == w => {
                self.meta[i] = Some(m);
                self.tags[i * w..(i + 1) * w].copy_from_slice(tag);
            }
            _ => self.meta[i] = None,
        }
    }
}

/// The run's context: a ring of fused states with a fixed capacity.
#[derive(Debug, Clone)]
pub struct WorkingMemory {
    width: usize,
    capacity: usize,
    data: Vec<f32>,
    len: usize,
    head: usize,
    scores: Vec<f32>,
    sightings: Sightings,
}

impl WorkingMemory {
    /// Empty memory of `capacity` entries of `width` values (allocated once, here).
    pub fn new(capacity: usize, width: usize) -> Self {
        Self {
            width,
            capacity,
            data: vec![0.0; capacity * width],
            len: 0,
            head: 0,
            scores: vec![0.0; capacity + LONG_TERM_SLOTS],
            sightings: Sightings::new(capacity, 0),
        }
    }

    /// Size the per-entry sighting tags (at construction, when the policy is set: allocates).
    pub fn set_tag_width(&mut self, tag_width: usize) {
        self.sightings.set_tag_width(tag_width);
    }

    /// Attach a sighting and its tag to the newest entry. A sighting with non-finite values, a
    /// tag of the wrong width or an empty memory stores nothing; returns whether it was stored.
    pub fn attach(&mut self, s: &Sighting, tag: &[f32]) -> bool {
        if self.len == 0
            || tag.len() != self.sightings.tag_width
            || !s.finite()
            || !tag.iter().all(|v| v.is_finite())
        {
            return false;
        }
        let i = (self.head + self.capacity - 1) % self.capacity;
        self.sightings.put(i, Some((*s, tag)));
        true
    }

    /// The entries' sightings (slot order; empty slots and untagged entries are `None`).
    pub fn sightings(&self) -> &Sightings {
        &self.sightings
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Capacity in entries.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether it is full (new entries now overwrite the oldest).
    pub fn is_full(&self) -> bool {
        self.len == self.capacity
    }

    /// Append a state scaled by `gain` (overwrites the oldest when full).
    pub fn push(&mut self, state: &[f32], gain: f32) {
        let w = self.width;
        let dst = &mut self.data[self.head * w..self.head * w + w];
        for (d, s) in dst.iter_mut().zip(state) {
            *d = s * gain;
        }
        self.sightings.put(self.head, None);
        self.head = (self.head + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
    }

    /// Entry `i` (any order; all entries are used together).
    pub fn entry(&self, i: usize) -> &[f32] {
        &self.data[i * self.width..(i + 1) * self.width]
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        self.len = 0;
        self.head = 0;
        self.sightings.meta.iter_mut().for_each(|m| *m = None);
    }

    /// Attention readout over all entries and the long-term slots into `out`. Cost is
    /// `O((len + slots) * width)`. Returns false (and zeroes `out`) when there is nothing.
    pub fn read(&mut self, query: &[f32], ltm: &LongTermMemory, out: &mut [f32]) -> bool {
        out.iter_mut().for_each(|x| *x = 0.0);
        let n = self.len;
        let k = ltm.len;
        if n + k == 0 {
            return false;
        }
        let scale = 1.0 / (self.width as f32).sqrt();
        let mut max = f32::NEG_INFINITY;
        for i in 0..n {
            let s = dot(query, self.entry(i)) * scale;
            self.scores[i] = s;
            max = max.max(s);
        }
        for j in 0..k {
            // A slot standing for many states is a stronger prior.
            let s = dot(query, ltm.slot(j)) * scale + (1.0 + ltm.weight[j]).ln() * 0.1;
            self.scores[n + j] = s;
            max = max.max(s);
        }
        let mut z = 0.0;
        for s in &mut self.scores[..n + k] {
            *s = (*s - max).exp();
            z += *s;
        }
        let inv = 1.0 / z;
        for i in 0..n {
            let p = self.scores[i] * inv;
            let e = &self.data[i * self.width..(i + 1) * self.width];
            for (o, v) in out.iter_mut().zip(e) {
                *o += p * v;
            }
        }
        for j in 0..k {
            let p = self.scores[n + j] * inv;
            for (o, v) in out.iter_mut().zip(ltm.slot(j)) {
                *o += p * v;
            }
        }
        true
    }
}

/// A fixed number of consolidated slots, each the centroid of many past states.
#[derive(Debug, Clone)]
pub struct LongTermMemory {
    width: usize,
    data: Vec<f32>,
    weight: Vec<f32>,
    len: usize,
    places: Sightings,
}

impl LongTermMemory {
    /// Empty long-term memory.
    pub fn new(width: usize) -> Self {
        Self {
            width,
            data: vec![0.0; LONG_TERM_SLOTS * width],
            weight: vec![0.0; LONG_TERM_SLOTS],
            len: 0,
            places: Sightings::new(PLACES, 0),
        }
    }

    /// Size the places' tags (with the working memory's; allocates).
    pub fn set_tag_width(&mut self, tag_width: usize) {
        self.places.set_tag_width(tag_width);
    }

    /// The places kept over sleep: salient sightings, at most [`PLACES`].
    pub fn places(&self) -> &Sightings {
        &self.places
    }

    /// Places in use.
    pub fn places_len(&self) -> usize {
        self.places.meta.iter().filter(|m| m.is_some()).count()
    }

    /// Offer a sighting as a place: it takes a free slot, or replaces the least salient place if
    /// it is more salient; a place seen from (almost) the same pose and heading is replaced only
    /// by a more salient one (so the places spread over the day rather than pile up on one spot).
    pub fn offer_place(&mut self, s: &Sighting, tag: &[f32]) {
        if tag.len() != self.places.tag_width || !s.finite() || s.salience <= 0.0 {
            return;
        }
        let mut free = None;
        let mut weakest = (usize::MAX, f32::INFINITY);
        for i in 0..self.places.capacity {
            match &self.places.meta[i] {
                None => {
                    free.get_or_insert(i);
                }
                Some(p) => {
                    let near = (p.x - s.x).hypot(p.y - s.y) < 0.3
                        && crate::navigation::wrap(p.heading - s.heading).abs() < 0.3;
                    if near {
                        if s.salience > p.salience {
                            self.places.put(i, Some((*s, tag)));
                        }
                        return;
                    }
                    if p.salience < weakest.1 {
                        weakest = (i, p.salience);
                    }
                }
            }
        }
        match free {
            Some(i) => self.places.put(i, Some((*s, tag))),
            None if s.salience > weakest.1 => self.places.put(weakest.0, Some((*s, tag))),
            None => {}
        }
    }
    /// Slots in use.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether no slot is in use.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Slot `j`.
    pub fn slot(&self, j: usize) -> &[f32] {
        &self.data[j * self.width..(j + 1) * self.width]
    }
    /// How many states slot `j` stands for.
    pub fn weight(&self, j: usize) -> f32 {
        self.weight[j]
    }
}

/// Incremental k-means consolidation, run a bounded chunk per sleeping tick.
#[derive(Debug, Clone)]
pub struct Consolidator {
    width: usize,
    centroids: Vec<f32>,
    sums: Vec<f32>,
    counts: Vec<f32>,
    k: usize,
    pass: usize,
    cursor: usize,
    /// Lloyd passes per sleep.
    pub passes: usize,
    /// Working-memory entries processed per tick.
    pub chunk: usize,
    /// Mean squared distance of entries to their centroid in the last pass.
    pub distortion: f64,
    dist_acc: f64,
}

impl Consolidator {
    /// Consolidator for memories of `width`.
    pub fn new(width: usize) -> Self {
        Self {
            width,
            centroids: vec![0.0; LONG_TERM_SLOTS * width],
            sums: vec![0.0; LONG_TERM_SLOTS * width],
            counts: vec![0.0; LONG_TERM_SLOTS],
            k: 0,
            pass: 0,
            cursor: 0,
            passes: 4,
            chunk: 512,
            distortion: 0.0,
            dist_acc: 0.0,
        }
    }

    /// Start a consolidation: seed centroids from the existing long-term slots and evenly
    /// spaced working-memory entries.
    pub fn begin(&mut self, wm: &WorkingMemory, ltm: &LongTermMemory) {
        let w = self.width;
        let total = wm.len() + ltm.len();
        self.k = total.min(LONG_TERM_SLOTS);
        for c in 0..self.k {
            let src = if c < ltm.len() {
                ltm.slot(c)
            } else {
                let m = self.k - ltm.len();
                let idx = (c - ltm.len()) * wm.len() / m.max(1);
                wm.entry(idx.min(wm.len().saturating_sub(1)))
            };
            self.centroids[c * w..(c + 1) * w].copy_from_slice(src);
        }
        self.pass = 0;
        self.cursor = 0;
        self.reset_acc();
    }

    fn reset_acc(&mut self) {
        self.sums.iter_mut().for_each(|x| *x = 0.0);
        self.counts.iter_mut().for_each(|x| *x = 0.0);
        self.dist_acc = 0.0;
    }

    fn assign(&mut self, v: &[f32], weight: f32) {
        let w = self.width;
        let mut best = (0, f32::INFINITY);
        for c in 0..self.k {
            let cen = &self.centroids[c * w..(c + 1) * w];
            let d: f32 = cen.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum();
            if d < best.1 {
                best = (c, d);
            }
        }
        let c = best.0;
        for (s, x) in self.sums[c * w..(c + 1) * w].iter_mut().zip(v) {
            *s += weight * x;
        }
        self.counts[c] += weight;
        self.dist_acc += (weight * best.1) as f64;
    }

    /// Do one chunk of work; returns true when consolidation is complete (then `ltm` holds
    /// the new slots). Cost per call is bounded by `chunk * LONG_TERM_SLOTS * width`.
    pub fn step(&mut self, wm: &WorkingMemory, ltm: &mut LongTermMemory) -> bool {
        if self.k == 0 {
            return true;
        }
        let w = self.width;
        let end = (self.cursor + self.chunk).min(wm.len());
        for i in self.cursor..end {
            // Split borrow: copy-free assignment through a raw slice of the entry.
            let e = wm.entry(i);
            self.assign(e, 1.0);
            if self.pass == 0 {
                if let Some((s, tag)) = wm.sightings().get(i) {
                    ltm.offer_place(s, tag);
                }
            }
        }
        self.cursor = end;
        if self.cursor < wm.len() {
            return false;
        }
        for j in 0..ltm.len() {
            let wgt = ltm.weight[j];
            self.assign(ltm.slot(j), wgt);
        }
        let mass: f32 = self.counts[..self.k].iter().sum();
        self.distortion = self.dist_acc / mass.max(1.0) as f64;
        for c in 0..self.k {
            if self.counts[c] > 0.0 {
                let inv = 1.0 / self.counts[c];
                for (cen, s) in self.centroids[c * w..(c + 1) * w]
                    .iter_mut()
                    .zip(&self.sums[c * w..(c + 1) * w])
                {
                    *cen = s * inv;
                }
            }
        }
        self.pass += 1;
        self.cursor = 0;
        if self.pass < self.passes {
            self.reset_acc();
            return false;
        }
        // Final: keep the non-empty centroids with their masses.
        let mut n = 0;
        for c in 0..self.k {
            if self.counts[c] > 0.0 {
                ltm.data[n * w..(n + 1) * w].copy_from_slice(&self.centroids[c * w..(c + 1) * w]);
                ltm.weight[n] = self.counts[c];
                n += 1;
            }
        }
        ltm.len = n;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_read_and_consolidation() {
        let w = 4;
        let mut wm = WorkingMemory::new(32, w);
        let mut ltm = LongTermMemory::new(w);
        // Two clusters.
        for i in 0..40 {
            let v = if i % 2 == 0 {
                [1.0, 0.0, 0.0, 0.0]
            } else {
                [0.0, 0.0, 0.0, 1.0]
            };
            wm.push(&v, 1.0);
        }
        assert!(wm.is_full());
        let mut out = [0f32; 4];
        assert!(wm.read(&[5.0, 0.0, 0.0, 0.0], &ltm, &mut out));
        assert!(out[0] > 0.9, "{out:?}");
        let mut c = Consolidator::new(w);
        c.chunk = 7;
        c.begin(&wm, &ltm);
        let mut steps = 0;
        while !c.step(&wm, &mut ltm) {
            steps += 1;
        }
        assert!(steps > 4);
        assert!(c.distortion < 1e-6, "{}", c.distortion);
        let total: f32 = (0..ltm.len()).map(|j| ltm.weight(j)).sum();
        assert_eq!(total, 32.0);
        wm.clear();
        assert!(wm.read(&[5.0, 0.0, 0.0, 0.0], &ltm, &mut out));
        assert!(out[0] > 0.9, "{out:?}");
    }
}
