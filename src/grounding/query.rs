//! The query-based connector: the instruction's language embedding attends over the vision
//! region's spatial tokens (projected into the language space by the [`AlignConnector`]) and gives
//! a target heat map over the image columns, a bearing and a confidence.
//!
//! Both sides go through the connector's concept bank: the instruction becomes a posterior over
//! the concepts the robot has learned to see (softmax of centred cosines), each spatial token
//! becomes one too, and a cell's match is the probability that both name the same thing. Nothing
//! here reads the instruction's words: only its embedding.
//!
//! All buffers are allocated at construction; [`QueryConnector::attend`] allocates nothing.

use crate::grounding::connector::AlignConnector;
use std::sync::Arc;

/// Most columns a heat map can have.
pub const MAX_COLS: usize = 16;
/// Most cells a spatial map can have.
pub const MAX_CELLS: usize = 256;

/// How the instruction relates to what the robot knows how to see.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InstructionInfo {
    /// Whether the instruction is about something the connector can see (else: stay idle).
    pub meaningful: bool,
    /// How much the instruction is about an object: the instruction head's objectness score
    /// (older connectors: the largest raw cosine to an object concept); compared with the
    /// connector's threshold to give `meaningful`.
    pub similarity: f32,
    /// Most likely concept (index into the connector's bank; for logs).
    pub best_concept: usize,
    /// Its posterior probability.
    pub best_probability: f32,
}

/// What the query connector sees in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percept {
    /// Capture time of the frame.
    pub stamp_ns: u64,
    /// Per image column (left to right), the best cell match in that column, 0..1.
    pub heat: [f32; MAX_COLS],
    /// Valid entries of `heat`.
    pub cols: usize,
    /// Bearing of the target from the camera axis, rad, counter-clockwise (left) positive.
    pub bearing: f32,
    /// Best cell match, 0..1.
    pub confidence: f32,
    /// Row of the best cell (0 = top of the image).
    pub peak_row: usize,
    /// Number of cells whose match is at least half the best and above 0.3.
    pub cells: usize,
}

impl Default for Percept {
    fn default() -> Self {
        Self {
            stamp_ns: 0,
            heat: [0.0; MAX_COLS],
            cols: 0,
            bearing: 0.0,
            confidence: 0.0,
            peak_row: 0,
            cells: 0,
        }
    }
}

/// Instruction-conditioned attention over spatial tokens.
#[derive(Debug, Clone)]
pub struct QueryConnector {
    connector: Arc<AlignConnector>,
    hfov: f32,
    tokens: Vec<f32>,
    sims: Vec<f32>,
    query_post: Vec<f32>,
    cell_match: Vec<f32>,
    /// Per image column of the last attended frame, the largest posterior of each concept over
    /// the column's cells (`MAX_COLS x concepts`): what working memory keeps of a frame.
    col_post: Vec<f32>,
    col_count: usize,
    info: Option<InstructionInfo>,
}

/// In-place softmax of `v / tau`.
fn softmax(v: &mut [f32], tau: f32) {
    let m = v.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    if !m.is_finite() {
        v.iter_mut().for_each(|x| *x = 0.0);
        return;
    }
    let mut z = 0.0;
    for x in v.iter_mut() {
        *x = if x.is_finite() {
            ((*x - m) / tau).exp()
        } else {
            0.0
        };
        z += *x;
    }
    if z > 0.0 {
        v.iter_mut().for_each(|x| *x /= z);
    }
}

impl QueryConnector {
    /// A query connector for a camera with horizontal field of view `hfov_rad`.
    pub fn new(connector: Arc<AlignConnector>, hfov_rad: f32) -> Self {
        let k = connector.concepts().len();
        let out = connector.out_dim();
        Self {
            tokens: vec![0.0; MAX_CELLS * out],
            sims: vec![0.0; k],
            query_post: vec![0.0; k],
            cell_match: vec![0.0; MAX_CELLS],
            col_post: vec![0.0; MAX_COLS * k],
            col_count: 0,
            connector,
            hfov: hfov_rad,
            info: None,
        }
    }

    /// The alignment connector in use.
    pub fn connector(&self) -> &AlignConnector {
        &self.connector
    }

    /// Horizontal field of view, rad.
    pub fn hfov(&self) -> f32 {
        self.hfov
    }

    /// Set the instruction embedding (the language region's output). Allocation-free.
    pub fn set_instruction(&mut self, q: &[f32]) -> InstructionInfo {
        let c = &self.connector;
        let valid = q.len() == c.out_dim() && q.iter().all(|x| x.is_finite());
        let head = c.instruction_head.as_ref();
        let similarity = match (valid, head) {
            (false, _) => f32::NEG_INFINITY,
            (true, Some(h)) => h.objectness(q),
            (true, None) => c.max_object_similarity(q),
        };
        let meaningful = similarity >= head.map_or(c.min_query_similarity, |h| h.min_objectness);
        if meaningful {
            if let Some(h) = head {
                h.posterior(q, &mut self.query_post);
            } else {
                // Targets are objects: the backgrounds only absorb what is not one.
                c.concept_similarities(q, &mut self.query_post);
                for (p, k) in self.query_post.iter_mut().zip(c.concepts()) {
                    if k.background {
                        *p = f32::NEG_INFINITY;
                    }
                }
                softmax(&mut self.query_post, c.tau_query);
            }
        } else {
            self.query_post.iter_mut().for_each(|x| *x = 0.0);
        }
        let (best_concept, best_probability) = self
            .query_post
            .iter()
            .cloned()
            .enumerate()
            .fold((0, 0.0f32), |b, (i, p)| if p > b.1 { (i, p) } else { b });
        let info = InstructionInfo {
            meaningful,
            similarity,
            best_concept,
            best_probability,
        };
        self.info = Some(info);
        info
    }

    /// The instruction's posterior over the concepts (zeros without a meaningful instruction).
    pub fn query_posterior(&self) -> &[f32] {
        &self.query_post
    }

    /// The last attended frame's per-column concept posteriors (`columns x concepts`, the
    /// largest over each column's cells), and the number of columns.
    pub fn column_posteriors(&self) -> (&[f32], usize) {
        let k = self.sims.len();
        (&self.col_post[..self.col_count * k], self.col_count)
    }

    /// How well a concept posterior `post` (one column of [`Self::column_posteriors`]) matches
    /// the instruction: the probability that both name the same thing, 0..1.
    pub fn match_posterior(&self, post: &[f32]) -> f32 {
        let m: f32 = post.iter().zip(&self.query_post).map(|(a, b)| a * b).sum();
        if m.is_finite() {
            m.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// Forget the instruction.
    pub fn clear_instruction(&mut self) {
        self.info = None;
    }

    /// The current instruction's relation to the bank, if one is set.
    pub fn instruction(&self) -> Option<InstructionInfo> {
        self.info
    }

    /// Attend over one frame's spatial map (`grid = [rows, cols, channels]`, row-major; channels
    /// either the raw vision width, projected here, or already the language width). Returns
    /// `None` when there is no meaningful instruction or the shape is unusable. Allocation-free.
    pub fn attend(&mut self, grid: [u32; 3], spatial: &[f32], stamp_ns: u64) -> Option<Percept> {
        if !self.info.is_some_and(|i| i.meaningful) {
            return None;
        }
        let (rows, cols, ch) = (grid[0] as usize, grid[1] as usize, grid[2] as usize);
        let cells = rows * cols;
        let c = &self.connector;
        let out = c.out_dim();
        if cells == 0 || cells > MAX_CELLS || cols > MAX_COLS || spatial.len() != cells * ch {
            return None;
        }
        if ch == c.in_dim() {
            c.project_into(spatial, &mut self.tokens[..cells * out]);
        } else if ch == out {
            self.tokens[..cells * out].copy_from_slice(spatial);
        } else {
            return None;
        }
        let mut p = Percept {
            stamp_ns,
            cols,
            ..Default::default()
        };
        let mut best = (0usize, -1.0f32);
        let k = self.sims.len();
        self.col_post[..cols * k].iter_mut().for_each(|x| *x = 0.0);
        self.col_count = cols;
        for i in 0..cells {
            c.token_similarities(&self.tokens[i * out..(i + 1) * out], &mut self.sims);
            softmax(&mut self.sims, c.tau_token);
            let col = i % cols;
            for (cp, s) in self.col_post[col * k..(col + 1) * k]
                .iter_mut()
                .zip(&self.sims)
            {
                if s.is_finite() && *s > *cp {
                    *cp = *s;
                }
            }
            let m: f32 = self
                .sims
                .iter()
                .zip(&self.query_post)
                .map(|(a, b)| a * b)
                .sum();
            let m = if m.is_finite() {
                m.clamp(0.0, 1.0)
            } else {
                0.0
            };
            self.cell_match[i] = m;
            p.heat[col] = p.heat[col].max(m);
            if m > best.1 {
                best = (i, m);
            }
        }
        p.confidence = best.1.max(0.0);
        p.peak_row = best.0 / cols;
        p.cells = self.cell_match[..cells]
            .iter()
            .filter(|&&m| m >= 0.3 && m >= 0.5 * p.confidence)
            .count();
        // Sub-column bearing: heat-weighted centre of the peak column and its neighbours.
        let pc = best.0 % cols;
        let (mut wsum, mut xsum) = (0.0f32, 0.0f32);
        for col in pc.saturating_sub(1)..(pc + 2).min(cols) {
            let w = p.heat[col];
            wsum += w;
            xsum += w * (col as f32 + 0.5);
        }
        let x = if wsum > 0.0 {
            xsum / wsum
        } else {
            pc as f32 + 0.5
        };
        p.bearing = column_bearing(x, cols, self.hfov);
        Some(p)
    }
}

/// Bearing (rad, left positive) of horizontal image position `x` (in columns from the left edge)
/// for an image `cols` columns wide with horizontal field of view `hfov` (pinhole camera).
pub fn column_bearing(x: f32, cols: usize, hfov: f32) -> f32 {
    let u = (x / cols.max(1) as f32) * 2.0 - 1.0; // -1 left edge .. 1 right edge
    (-u * (hfov / 2.0).tan()).atan()
}

/// Horizontal field of view of a pinhole camera from its vertical one and its aspect ratio.
pub fn horizontal_fov(vfov_rad: f64, width: u32, height: u32) -> f64 {
    let aspect = width as f64 / height.max(1) as f64;
    2.0 * ((vfov_rad / 2.0).tan() * aspect).atan()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::grounding::connector::{normalize, Concept};

    /// A toy connector in a 8-d language space with 4 concepts and identity "vision" (in = out).
    pub(crate) fn toy() -> Arc<AlignConnector> {
        let d = 8;
        let protos: Vec<Vec<f32>> = (0..4)
            .map(|k| {
                let mut p = vec![0.2f32; d];
                p[k] = 1.0;
                normalize(&mut p);
                p
            })
            .collect();
        let concepts = protos
            .iter()
            .enumerate()
            .map(|(k, p)| Concept {
                name: format!("c{k}"),
                background: k == 3,
                prototype: p.clone(),
            })
            .collect();
        let mut w = vec![0.0f32; d * d];
        for i in 0..d {
            w[i * d + i] = 1.0;
        }
        let mut c = AlignConnector::from_parts(
            d,
            d,
            vec![0.0; d],
            vec![1.0; d],
            w,
            vec![0.0; d],
            concepts,
            0.0,
        )
        .unwrap();
        c.tau_token = 0.05;
        c.tau_query = 0.05;
        c.min_query_similarity = 0.5;
        Arc::new(c)
    }

    fn proto(c: &AlignConnector, k: usize) -> Vec<f32> {
        c.concepts()[k].prototype.clone()
    }

    #[test]
    fn target_in_one_column_gives_its_bearing() {
        let c = toy();
        let mut q = QueryConnector::new(c.clone(), 60f32.to_radians());
        assert!(q.set_instruction(&proto(&c, 1)).meaningful);
        let (rows, cols, d) = (7usize, 7usize, 8usize);
        let mut map = Vec::new();
        for _ in 0..rows {
            for col in 0..cols {
                let k = if col == 1 {
                    1
                } else if col == 5 {
                    0
                } else {
                    3
                };
                map.extend(proto(&c, k));
            }
        }
        let p = q.attend([7, 7, d as u32], &map, 5).unwrap();
        assert!(p.confidence > 0.9, "{p:?}");
        assert!(p.heat[1] > 0.9 && p.heat[5] < 0.1 && p.heat[3] < 0.1);
        // Column 1 of 7 is left of centre: positive bearing, about 17 degrees for 60 deg FOV.
        let want = column_bearing(1.5, 7, 60f32.to_radians());
        assert!((p.bearing - want).abs() < 0.05, "{} vs {want}", p.bearing);
        assert!(p.bearing > 0.2);
        assert_eq!(p.cells, 7);
    }

    #[test]
    fn absent_target_gives_low_confidence() {
        let c = toy();
        let mut q = QueryConnector::new(c.clone(), 1.0);
        q.set_instruction(&proto(&c, 2));
        let map: Vec<f32> = (0..49)
            .flat_map(|i| proto(&c, if i % 2 == 0 { 0 } else { 3 }))
            .collect();
        let p = q.attend([7, 7, 8], &map, 0).unwrap();
        assert!(p.confidence < 0.1, "{p:?}");
    }

    #[test]
    fn meaningless_instruction_attends_to_nothing() {
        let c = toy();
        let mut q = QueryConnector::new(c, 1.0);
        let mut junk = vec![0.0f32; 8];
        junk[7] = -1.0;
        let info = q.set_instruction(&junk);
        assert!(!info.meaningful);
        assert!(q.attend([1, 1, 8], &[0.0; 8], 0).is_none());
        // Wrong width or NaN: not meaningful either, no panic.
        assert!(!q.set_instruction(&[1.0; 3]).meaningful);
        assert!(!q.set_instruction(&[f32::NAN; 8]).meaningful);
    }

    #[test]
    fn bad_shapes_are_rejected() {
        let c = toy();
        let mut q = QueryConnector::new(c.clone(), 1.0);
        q.set_instruction(&proto(&c, 0));
        assert!(q.attend([7, 7, 8], &[0.0; 10], 0).is_none());
        assert!(q.attend([7, 7, 5], &[0.0; 245], 0).is_none());
        assert!(q.attend([0, 0, 8], &[], 0).is_none());
    }

    #[test]
    fn fov_helpers() {
        let h = horizontal_fov(60f64.to_radians(), 224, 224);
        assert!((h - 60f64.to_radians()).abs() < 1e-9);
        assert!((column_bearing(3.5, 7, 1.0)).abs() < 1e-6);
        assert!((column_bearing(0.0, 7, 1.0) - 0.5).abs() < 1e-6);
    }
}
