//! The vision-language alignment connector: a linear map (ridge regression, fitted here by
//! `brainloop align`) from the vision region's spatial features (EfficientNet-Lite0, 1504 channels
//! per 7x7 cell) into the language region's sentence-embedding space (all-MiniLM-L6-v2, 384-d),
//! together with the bank of concept prototypes (mean embeddings of the training descriptions of
//! each thing seen in training) that the query connector attends through.
//!
//! The file format is a small JSON header plus raw little-endian `f32` arrays, with a `sha256sum`
//! style checksum file beside it; loading verifies the checksum.

use crate::util::linalg::{add_at_b, solve_spd, LinalgError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Errors loading, saving or fitting a connector.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConnectorError {
    /// File I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a connector or is damaged.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The checksum file disagrees with the weights.
    #[error("{path}: sha256 mismatch (expected {expected}, found {found}); rebuild with `brainloop align`")]
    Checksum {
        /// The weights file.
        path: PathBuf,
        /// The recorded sha256.
        expected: String,
        /// The sha256 of the file.
        found: String,
    },
    /// Training data unusable.
    #[error("training data: {0}")]
    Data(String),
    /// The solver failed.
    #[error("solver: {0}")]
    Solver(#[from] LinalgError),
}

/// One thing the connector knows how to name: an object kind ("red ball") or a background
/// ("floor", "wall"), with the prototype embedding of its training descriptions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Concept {
    /// Human-readable name (for reports and logs only; never used for matching).
    pub name: String,
    /// Whether this is background (never a navigation target in itself).
    pub background: bool,
    /// Unit-norm mean of the language embeddings of the concept's training descriptions.
    #[serde(skip)]
    pub prototype: Vec<f32>,
}

/// Header of a saved connector (the JSON part of the file).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    format: String,
    in_dim: usize,
    out_dim: usize,
    concepts: Vec<Concept>,
    tau_token: f32,
    tau_query: f32,
    min_query_similarity: f32,
    lambda: f64,
    #[serde(default)]
    sqrt_features: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instruction_head: Option<crate::grounding::instruction::InstructionHead>,
}

const MAGIC: &[u8; 8] = b"BLCONN01";

/// The fitted alignment connector.
#[derive(Debug, Clone)]
pub struct AlignConnector {
    in_dim: usize,
    out_dim: usize,
    feat_mean: Vec<f32>,
    feat_scale: Vec<f32>,
    /// `in_dim x out_dim`, row-major.
    weights: Vec<f32>,
    bias: Vec<f32>,
    /// Centre of the language space (mean of the concept prototypes), removed before comparing.
    text_mean: Vec<f32>,
    concepts: Vec<Concept>,
    /// Prototypes with `text_mean` removed and renormalised, `concepts.len() x out_dim`.
    keys: Vec<f32>,
    /// Dual basis of the centred prototypes, `concepts.len() x out_dim`: `<z - mean, dual_k>`
    /// decodes a projected token into concept coefficients (1 for its concept, 0 for others
    /// when it lands exactly on a prototype), undoing the overlap of similar descriptions.
    token_keys: Vec<f32>,
    /// Softmax temperature of a token's posterior over concepts.
    pub tau_token: f32,
    /// Softmax temperature of the instruction's posterior over concepts.
    pub tau_query: f32,
    /// Below this raw cosine to every object concept, an instruction is taken as meaningless.
    pub min_query_similarity: f32,
    lambda: f64,
    /// Features pass through a signed square root before standardising (tames the heavy tail
    /// of ReLU6 activations for a linear map).
    pub sqrt_features: bool,
    /// The learned instruction head (when present it replaces the nearest-prototype rule for
    /// instructions: see [`crate::grounding::instruction`]).
    pub instruction_head: Option<crate::grounding::instruction::InstructionHead>,
}

/// The fixed feature transform before standardising.
#[inline]
fn transform(x: f32, sqrt: bool) -> f32 {
    if sqrt {
        x.signum() * x.abs().sqrt()
    } else {
        x
    }
}

/// Unit-normalise in place (zero vectors stay zero).
pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 1e-12 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Dot product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl AlignConnector {
    /// Assemble a connector from its parts (used by the fit and by tests).
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        in_dim: usize,
        out_dim: usize,
        feat_mean: Vec<f32>,
        feat_scale: Vec<f32>,
        weights: Vec<f32>,
        bias: Vec<f32>,
        concepts: Vec<Concept>,
        lambda: f64,
    ) -> Result<Self, ConnectorError> {
        let bad = |m: &str| ConnectorError::Data(m.to_string());
        if feat_mean.len() != in_dim || feat_scale.len() != in_dim {
            return Err(bad("feature normaliser length"));
        }
        if weights.len() != in_dim * out_dim || bias.len() != out_dim {
            return Err(bad("weights shape"));
        }
        if concepts.is_empty() || concepts.iter().any(|c| c.prototype.len() != out_dim) {
            return Err(bad("concept prototypes"));
        }
        if concepts.iter().all(|c| c.background) {
            return Err(bad("no object concepts"));
        }
        let mut text_mean = vec![0.0f32; out_dim];
        for c in &concepts {
            for (m, p) in text_mean.iter_mut().zip(&c.prototype) {
                *m += p / concepts.len() as f32;
            }
        }
        let mut keys = Vec::with_capacity(concepts.len() * out_dim);
        for c in &concepts {
            let mut k: Vec<f32> = c
                .prototype
                .iter()
                .zip(&text_mean)
                .map(|(p, m)| p - m)
                .collect();
            normalize(&mut k);
            keys.extend_from_slice(&k);
        }
        let token_keys = dual_basis(&concepts, &text_mean, out_dim)?;
        Ok(Self {
            token_keys,
            in_dim,
            out_dim,
            feat_mean,
            feat_scale,
            weights,
            bias,
            text_mean,
            concepts,
            keys,
            tau_token: 0.05,
            tau_query: 0.05,
            min_query_similarity: 0.35,
            lambda,
            sqrt_features: false,
            instruction_head: None,
        })
    }

    /// [`AlignConnector::from_parts`] with the feature transform chosen.
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts_with(
        sqrt_features: bool,
        in_dim: usize,
        out_dim: usize,
        feat_mean: Vec<f32>,
        feat_scale: Vec<f32>,
        weights: Vec<f32>,
        bias: Vec<f32>,
        concepts: Vec<Concept>,
        lambda: f64,
    ) -> Result<Self, ConnectorError> {
        let mut c = Self::from_parts(
            in_dim, out_dim, feat_mean, feat_scale, weights, bias, concepts, lambda,
        )?;
        c.sqrt_features = sqrt_features;
        Ok(c)
    }

    /// Input channels per spatial cell (1504 for the vision region's EfficientNet-Lite0).
    pub fn in_dim(&self) -> usize {
        self.in_dim
    }

    /// Output width (the language embedding width, 384).
    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// The concepts of the bank, in key order.
    pub fn concepts(&self) -> &[Concept] {
        &self.concepts
    }

    /// Ridge penalty the weights were fitted with.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    /// One cell's features as the linear map sees them (transformed and standardised), into
    /// `out` (`in_dim`; non-finite values become 0, as in [`AlignConnector::project_token`]).
    pub fn standardise(&self, x: &[f32], out: &mut [f64]) {
        for (i, (o, &xi)) in out.iter_mut().zip(x).enumerate().take(self.in_dim) {
            let v = (transform(xi, self.sqrt_features) - self.feat_mean[i]) * self.feat_scale[i];
            *o = if v.is_finite() { v as f64 } else { 0.0 };
        }
    }

    /// [`AlignConnector::project_token`] of features already standardised by
    /// [`AlignConnector::standardise`].
    pub fn project_standardised(&self, v: &[f32], out: &mut [f32]) {
        out.copy_from_slice(&self.bias);
        for (i, &vi) in v.iter().enumerate().take(self.in_dim) {
            if vi != 0.0 && vi.is_finite() {
                let row = &self.weights[i * self.out_dim..(i + 1) * self.out_dim];
                for (o, w) in out.iter_mut().zip(row) {
                    *o += vi * w;
                }
            }
        }
    }

    /// The mean target of the fit (the bias of the linear map), `out_dim`.
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// A copy with `delta` (`in_dim x out_dim`, row-major) added to the weights and `extra`
    /// concepts appended to the bank (keys and dual basis recomputed; temperatures, feature
    /// normaliser and instruction head kept). What a night of learning changes.
    pub fn updated(&self, delta: &[f64], extra: Vec<Concept>) -> Result<Self, ConnectorError> {
        if delta.len() != self.weights.len() {
            return Err(ConnectorError::Data("weight update shape".into()));
        }
        let weights: Vec<f32> = self
            .weights
            .iter()
            .zip(delta)
            .map(|(w, d)| (*w as f64 + d) as f32)
            .collect();
        if weights.iter().any(|w| !w.is_finite()) {
            return Err(ConnectorError::Data(
                "non-finite weight after the update".into(),
            ));
        }
        let mut concepts = self.concepts.clone();
        concepts.extend(extra);
        let mut c = Self::from_parts_with(
            self.sqrt_features,
            self.in_dim,
            self.out_dim,
            self.feat_mean.clone(),
            self.feat_scale.clone(),
            weights,
            self.bias.clone(),
            concepts,
            self.lambda,
        )?;
        c.tau_token = self.tau_token;
        c.tau_query = self.tau_query;
        c.min_query_similarity = self.min_query_similarity;
        c.instruction_head = self.instruction_head.clone();
        Ok(c)
    }

    /// Project one cell's features (`in_dim`) into the language space (`out_dim`), writing `out`.
    /// Allocation-free.
    pub fn project_token(&self, x: &[f32], out: &mut [f32]) {
        debug_assert_eq!(x.len(), self.in_dim);
        debug_assert_eq!(out.len(), self.out_dim);
        out.copy_from_slice(&self.bias);
        for (i, &xi) in x.iter().enumerate().take(self.in_dim) {
            let v = (transform(xi, self.sqrt_features) - self.feat_mean[i]) * self.feat_scale[i];
            if v != 0.0 && v.is_finite() {
                let row = &self.weights[i * self.out_dim..(i + 1) * self.out_dim];
                for (o, w) in out.iter_mut().zip(row) {
                    *o += v * w;
                }
            }
        }
    }

    /// Project a whole spatial map (`cells x in_dim`, row-major) into `out` (`cells x out_dim`).
    /// Returns the number of cells projected (0 when shapes disagree). Allocation-free.
    pub fn project_into(&self, spatial: &[f32], out: &mut [f32]) -> usize {
        if self.in_dim == 0 || spatial.len() % self.in_dim != 0 {
            return 0;
        }
        let cells = spatial.len() / self.in_dim;
        if out.len() < cells * self.out_dim {
            return 0;
        }
        for c in 0..cells {
            self.project_token(
                &spatial[c * self.in_dim..(c + 1) * self.in_dim],
                &mut out[c * self.out_dim..(c + 1) * self.out_dim],
            );
        }
        cells
    }

    /// Project a spatial map, allocating the output (the form the contract names).
    pub fn project(&self, spatial: &[f32]) -> Vec<f32> {
        let cells = spatial.len().checked_div(self.in_dim).unwrap_or(0);
        let mut out = vec![0.0; cells * self.out_dim];
        self.project_into(spatial, &mut out);
        out
    }

    /// Centred cosine of a language-space vector `v` with every concept key, into `sims`
    /// (`concepts.len()`). Allocation-free.
    pub fn concept_similarities(&self, v: &[f32], sims: &mut [f32]) {
        let mut norm = 0.0f32;
        for (x, m) in v.iter().zip(&self.text_mean) {
            norm += (x - m) * (x - m);
        }
        let norm = norm.sqrt().max(1e-12);
        for (k, s) in sims.iter_mut().enumerate().take(self.concepts.len()) {
            let key = &self.keys[k * self.out_dim..(k + 1) * self.out_dim];
            let mut d = 0.0f32;
            for ((x, m), kk) in v.iter().zip(&self.text_mean).zip(key) {
                d += (x - m) * kk;
            }
            *s = d / norm;
        }
    }

    /// Concept coefficients of a projected token `z` (dual-basis decoding), into `sims`.
    /// Allocation-free.
    pub fn token_similarities(&self, z: &[f32], sims: &mut [f32]) {
        for (k, s) in sims.iter_mut().enumerate().take(self.concepts.len()) {
            let key = &self.token_keys[k * self.out_dim..(k + 1) * self.out_dim];
            let mut d = 0.0f32;
            for ((x, m), kk) in z.iter().zip(&self.text_mean).zip(key) {
                d += (x - m) * kk;
            }
            *s = d;
        }
    }

    /// Largest raw cosine between `q` and the prototype of an object concept: how much the
    /// instruction is about anything the robot has learned to see.
    pub fn max_object_similarity(&self, q: &[f32]) -> f32 {
        let qn = dot(q, q).sqrt().max(1e-12);
        self.concepts
            .iter()
            .filter(|c| !c.background)
            .map(|c| dot(q, &c.prototype) / qn)
            .fold(f32::NEG_INFINITY, f32::max)
    }

    /// The file's bytes (what [`AlignConnector::save`] writes; [`AlignConnector::from_file_bytes`]
    /// reads them back).
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let header = Header {
            format: "brainloop-connector-1".into(),
            in_dim: self.in_dim,
            out_dim: self.out_dim,
            concepts: self.concepts.clone(),
            tau_token: self.tau_token,
            tau_query: self.tau_query,
            min_query_similarity: self.min_query_similarity,
            lambda: self.lambda,
            sqrt_features: self.sqrt_features,
            instruction_head: self.instruction_head.clone(),
        };
        let json = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&json);
        let mut put = |v: &[f32]| {
            v.iter()
                .for_each(|x| bytes.extend_from_slice(&x.to_le_bytes()))
        };
        put(&self.feat_mean);
        put(&self.feat_scale);
        put(&self.weights);
        put(&self.bias);
        for c in &self.concepts {
            put(&c.prototype);
        }
        Ok(bytes)
    }

    /// Parse the bytes of a connector file (no checksum: the caller checks its own).
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Self, String> {
        Self::from_bytes(bytes)
    }

    /// Save to `path` (weights) and `path.sha256` (checksum); returns the sha256 hex digest.
    pub fn save(&self, path: &Path) -> Result<String, ConnectorError> {
        let bytes = self.to_bytes().map_err(|message| ConnectorError::Format {
            path: path.into(),
            message,
        })?;
        let io = |e| ConnectorError::Io {
            path: path.into(),
            source: e,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(path, &bytes).map_err(io)?;
        let digest = hex(&Sha256::digest(&bytes));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        std::fs::write(checksum_path(path), format!("{digest}  {name}\n")).map_err(io)?;
        Ok(digest)
    }

    /// Load a connector saved by [`AlignConnector::save`], verifying its checksum file.
    pub fn load(path: &Path) -> Result<Self, ConnectorError> {
        let io = |e| ConnectorError::Io {
            path: path.into(),
            source: e,
        };
        let bytes = std::fs::read(path).map_err(io)?;
        let sum_path = checksum_path(path);
        let recorded = std::fs::read_to_string(&sum_path).map_err(|e| ConnectorError::Io {
            path: sum_path.clone(),
            source: e,
        })?;
        let expected = recorded.split_whitespace().next().unwrap_or("").to_string();
        let found = hex(&Sha256::digest(&bytes));
        if expected != found {
            return Err(ConnectorError::Checksum {
                path: path.into(),
                expected,
                found,
            });
        }
        Self::from_bytes(&bytes).map_err(|message| ConnectorError::Format {
            path: path.into(),
            message,
        })
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err("not a brainloop connector (bad magic)".into());
        }
        let hlen = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        let body = bytes
            .get(12..12 + hlen)
            .ok_or_else(|| "truncated header".to_string())?;
        let h: Header = serde_json::from_slice(body).map_err(|e| format!("header: {e}"))?;
        if h.in_dim == 0 || h.out_dim == 0 || h.in_dim > 1 << 16 || h.out_dim > 1 << 16 {
            return Err("implausible dimensions".into());
        }
        let mut rest = &bytes[12 + hlen..];
        let mut take = |n: usize| -> Result<Vec<f32>, String> {
            if rest.len() < n * 4 {
                return Err("truncated weights".into());
            }
            let (a, b) = rest.split_at(n * 4);
            rest = b;
            Ok(a.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        };
        let feat_mean = take(h.in_dim)?;
        let feat_scale = take(h.in_dim)?;
        let weights = take(h.in_dim * h.out_dim)?;
        let bias = take(h.out_dim)?;
        let mut concepts = h.concepts;
        for c in &mut concepts {
            c.prototype = take(h.out_dim)?;
        }
        if !rest.is_empty() {
            return Err("trailing bytes".into());
        }
        // A matching checksum says the file is what was saved, not that what was saved is
        // usable: every value must be finite.
        let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
        for (name, v) in [
            ("feature mean", &feat_mean),
            ("feature scale", &feat_scale),
            ("weights", &weights),
            ("bias", &bias),
        ] {
            if !finite(v) {
                return Err(format!(
                    "non-finite value in the {name}: rebuild with `brainloop align`"
                ));
            }
        }
        if let Some(c) = concepts.iter().find(|c| !finite(&c.prototype)) {
            return Err(format!(
                "non-finite value in the prototype of {:?}: rebuild with `brainloop align`",
                c.name
            ));
        }
        if !(h.tau_token.is_finite()
            && h.tau_query.is_finite()
            && h.min_query_similarity.is_finite()
            && h.lambda.is_finite())
        {
            return Err("non-finite value in the header (tau, similarity or lambda): rebuild with `brainloop align`".into());
        }
        let mut c = Self::from_parts(
            h.in_dim, h.out_dim, feat_mean, feat_scale, weights, bias, concepts, h.lambda,
        )
        .map_err(|e| e.to_string())?;
        c.tau_token = h.tau_token;
        c.tau_query = h.tau_query;
        c.min_query_similarity = h.min_query_similarity;
        c.sqrt_features = h.sqrt_features;
        if let Some(head) = &h.instruction_head {
            head.check(c.concepts.len(), c.out_dim)?;
        }
        c.instruction_head = h.instruction_head;
        Ok(c)
    }
}

/// Dual basis `(P Pᵀ + εI)⁻¹ P` of the centred prototypes `P` (rows).
fn dual_basis(
    concepts: &[Concept],
    mean: &[f32],
    out_dim: usize,
) -> Result<Vec<f32>, ConnectorError> {
    let k = concepts.len();
    let p: Vec<f64> = concepts
        .iter()
        .flat_map(|c| c.prototype.iter().zip(mean).map(|(a, m)| (a - m) as f64))
        .collect();
    let mut g = vec![0.0f64; k * k];
    for i in 0..k {
        for j in 0..k {
            g[i * k + j] = (0..out_dim)
                .map(|d| p[i * out_dim + d] * p[j * out_dim + d])
                .sum();
        }
    }
    let trace: f64 = (0..k).map(|i| g[i * k + i]).sum::<f64>() / k.max(1) as f64;
    let mut dual = p;
    solve_spd(&g, k, 1e-3 * trace.max(1e-9), &mut dual, out_dim)?;
    Ok(dual.into_iter().map(|x| x as f32).collect())
}

/// `<weights path>.sha256`.
pub fn checksum_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".sha256");
    PathBuf::from(s)
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Paired training data for the ridge fit: one row of features per labelled cell.
#[derive(Debug, Clone, Default)]
pub struct CellSamples {
    /// Feature width.
    pub in_dim: usize,
    /// `n x in_dim` features, row-major.
    pub features: Vec<f32>,
    /// Concept index of each row.
    pub labels: Vec<u32>,
    /// Group (view) of each row: rows of a group are held out together.
    pub groups: Vec<u32>,
}

impl CellSamples {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Append one row.
    pub fn push(&mut self, features: &[f32], label: u32, group: u32) {
        debug_assert_eq!(features.len(), self.in_dim);
        self.features.extend_from_slice(features);
        self.labels.push(label);
        self.groups.push(group);
    }

    /// Row `i`'s features.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.in_dim..(i + 1) * self.in_dim]
    }
}

/// Sufficient statistics of a ridge regression from standardised features to concept prototypes.
struct Normal {
    gram: Vec<f64>,
    cross: Vec<f64>,
    n: usize,
}

#[allow(clippy::too_many_arguments)]
fn accumulate(
    s: &CellSamples,
    sqrt: bool,
    rows: &[usize],
    mean: &[f64],
    scale: &[f64],
    targets: &[Vec<f64>],
    out_dim: usize,
) -> Normal {
    let d = s.in_dim;
    let mut gram = vec![0.0; d * d];
    let mut cross = vec![0.0; d * out_dim];
    const CHUNK: usize = 512;
    let mut xb = Vec::with_capacity(CHUNK * d);
    let mut yb = Vec::with_capacity(CHUNK * out_dim);
    for chunk in rows.chunks(CHUNK) {
        xb.clear();
        yb.clear();
        for &r in chunk {
            for (j, &x) in s.row(r).iter().enumerate() {
                xb.push((transform(x, sqrt) as f64 - mean[j]) * scale[j]);
            }
            yb.extend_from_slice(&targets[s.labels[r] as usize]);
        }
        add_at_b(&xb, &xb, chunk.len(), d, d, &mut gram);
        add_at_b(&xb, &yb, chunk.len(), d, out_dim, &mut cross);
    }
    Normal {
        gram,
        cross,
        n: rows.len(),
    }
}

/// What the fit measured.
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    /// Rows used for training / validation (final weights use both).
    pub train_rows: usize,
    /// Validation rows (held-out views).
    pub validation_rows: usize,
    /// Each tried ridge penalty (relative to the row count) with its validation top-1 cell accuracy.
    pub lambda_search: Vec<(f64, f64)>,
    /// The chosen penalty.
    pub lambda: f64,
    /// Chosen token temperature.
    pub tau_token: f32,
}

/// Solve the ridge system for one penalty. `lambda` is relative: the diagonal gets `lambda * n`.
fn solve(normal: &Normal, d: usize, out_dim: usize, lambda: f64) -> Result<Vec<f64>, LinalgError> {
    let reg = lambda * normal.n.max(1) as f64;
    let mut w = normal.cross.clone();
    solve_spd(&normal.gram, d, reg, &mut w, out_dim)?;
    Ok(w)
}

/// Fit the alignment connector by closed-form ridge regression from cell features to the
/// prototype of each cell's concept. Views in `validation_groups` are held out to choose the
/// ridge penalty and the token temperature; the final weights are refitted on everything.
pub fn fit(
    samples: &CellSamples,
    sqrt: bool,
    concepts: Vec<Concept>,
    validation_groups: &dyn Fn(u32) -> bool,
    lambdas: &[f64],
) -> Result<(AlignConnector, FitReport), ConnectorError> {
    let d = samples.in_dim;
    let n = samples.len();
    if n < 2 || d == 0 {
        return Err(ConnectorError::Data(format!("{n} rows of width {d}")));
    }
    let out_dim = concepts
        .first()
        .map(|c| c.prototype.len())
        .ok_or_else(|| ConnectorError::Data("no concepts".into()))?;
    if samples.labels.iter().any(|&l| l as usize >= concepts.len()) {
        return Err(ConnectorError::Data("label out of range".into()));
    }
    // Standardise features (mean 0, unit variance; constant channels are dropped).
    let mut mean = vec![0.0f64; d];
    let mut sq = vec![0.0f64; d];
    for i in 0..n {
        for (j, &x) in samples.row(i).iter().enumerate() {
            let x = transform(x, sqrt) as f64;
            mean[j] += x;
            sq[j] += x * x;
        }
    }
    let scale: Vec<f64> = (0..d)
        .map(|j| {
            mean[j] /= n as f64;
            let var = sq[j] / n as f64 - mean[j] * mean[j];
            if var > 1e-10 {
                1.0 / var.sqrt()
            } else {
                0.0
            }
        })
        .collect();
    // Centred targets: the bias carries the mean target.
    let mut y_mean = vec![0.0f64; out_dim];
    for &l in &samples.labels {
        for (m, p) in y_mean.iter_mut().zip(&concepts[l as usize].prototype) {
            *m += *p as f64 / n as f64;
        }
    }
    let targets: Vec<Vec<f64>> = concepts
        .iter()
        .map(|c| {
            c.prototype
                .iter()
                .zip(&y_mean)
                .map(|(p, m)| *p as f64 - m)
                .collect()
        })
        .collect();
    let (val_rows, train_rows): (Vec<usize>, Vec<usize>) =
        (0..n).partition(|&i| validation_groups(samples.groups[i]));
    if train_rows.is_empty() {
        return Err(ConnectorError::Data("no training rows".into()));
    }
    let tr = accumulate(samples, sqrt, &train_rows, &mean, &scale, &targets, out_dim);
    let make = |w: Vec<f64>, lambda: f64| {
        AlignConnector::from_parts_with(
            sqrt,
            d,
            out_dim,
            mean.iter().map(|&x| x as f32).collect(),
            scale.iter().map(|&x| x as f32).collect(),
            w.into_iter().map(|x| x as f32).collect(),
            y_mean.iter().map(|&x| x as f32).collect(),
            concepts.clone(),
            lambda,
        )
    };
    let mut search = Vec::new();
    let mut best = (lambdas.first().copied().unwrap_or(1e-2), -1.0);
    let mut tau = 0.05f32;
    if !val_rows.is_empty() {
        for &lambda in lambdas {
            let w = solve(&tr, d, out_dim, lambda)?;
            let c = make(w, lambda)?;
            let acc = cell_accuracy(&c, samples, &val_rows);
            search.push((lambda, acc));
            if acc > best.1 {
                best = (lambda, acc);
            }
        }
    }
    let lambda = best.0;
    let all = if val_rows.is_empty() {
        tr
    } else {
        let va = accumulate(samples, sqrt, &val_rows, &mean, &scale, &targets, out_dim);
        if !search.is_empty() {
            // Token temperature: maximise the held-out likelihood of the true concept.
            let w = solve(&tr, d, out_dim, lambda)?;
            let c = make(w, lambda)?;
            tau = best_temperature(&c, samples, &val_rows);
        }
        Normal {
            gram: tr.gram.iter().zip(&va.gram).map(|(a, b)| a + b).collect(),
            cross: tr.cross.iter().zip(&va.cross).map(|(a, b)| a + b).collect(),
            n: tr.n + va.n,
        }
    };
    let w = solve(&all, d, out_dim, lambda)?;
    let mut c = make(w, lambda)?;
    c.tau_token = tau;
    let report = FitReport {
        train_rows: train_rows.len(),
        validation_rows: val_rows.len(),
        lambda_search: search,
        lambda,
        tau_token: tau,
    };
    Ok((c, report))
}

/// Top-1 accuracy of the projected cells' nearest concept key over `rows`.
pub fn cell_accuracy(c: &AlignConnector, s: &CellSamples, rows: &[usize]) -> f64 {
    let mut z = vec![0.0; c.out_dim];
    let mut sims = vec![0.0; c.concepts.len()];
    let mut hits = 0usize;
    for &r in rows {
        c.project_token(s.row(r), &mut z);
        c.token_similarities(&z, &mut sims);
        if argmax(&sims) == Some(s.labels[r] as usize) {
            hits += 1;
        }
    }
    hits as f64 / rows.len().max(1) as f64
}

fn best_temperature(c: &AlignConnector, s: &CellSamples, rows: &[usize]) -> f32 {
    let mut z = vec![0.0; c.out_dim];
    let mut sims = vec![0.0; c.concepts.len()];
    let all_sims: Vec<(Vec<f32>, usize)> = rows
        .iter()
        .map(|&r| {
            c.project_token(s.row(r), &mut z);
            c.token_similarities(&z, &mut sims);
            (sims.clone(), s.labels[r] as usize)
        })
        .collect();
    let mut best = (0.05f32, f64::NEG_INFINITY);
    for tau in [0.01f32, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5] {
        let ll: f64 = all_sims
            .iter()
            .map(|(sims, l)| {
                let m = sims.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let z: f32 = sims.iter().map(|x| ((x - m) / tau).exp()).sum();
                (((sims[*l] - m) / tau) - z.ln()) as f64
            })
            .sum();
        if ll > best.1 {
            best = (tau, ll);
        }
    }
    best.0
}

/// Index of the largest value.
pub fn argmax(v: &[f32]) -> Option<usize> {
    v.iter()
        .enumerate()
        .filter(|(_, x)| x.is_finite())
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers for tests.
    pub(crate) struct Lcg(pub u64);
    impl Lcg {
        pub fn next(&mut self) -> f32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
        }
    }

    /// Synthetic world: each concept has a prototype in a 16-d "language" space and a hidden
    /// linear map renders it into 40-d "vision" features with noise.
    fn synthetic(n_per: usize, noise: f32) -> (CellSamples, Vec<Concept>) {
        let mut rng = Lcg(7);
        let (din, dout, k) = (40, 16, 6);
        let concepts: Vec<Concept> = (0..k)
            .map(|i| {
                let mut p: Vec<f32> = (0..dout).map(|_| rng.next() + 0.5).collect();
                normalize(&mut p);
                Concept {
                    name: format!("c{i}"),
                    background: i == 0,
                    prototype: p,
                }
            })
            .collect();
        let m: Vec<f32> = (0..din * dout).map(|_| rng.next()).collect();
        let mut s = CellSamples {
            in_dim: din,
            ..Default::default()
        };
        for g in 0..n_per {
            for (ci, c) in concepts.iter().enumerate() {
                let x: Vec<f32> = (0..din)
                    .map(|i| {
                        (0..dout)
                            .map(|j| m[i * dout + j] * c.prototype[j])
                            .sum::<f32>()
                            + noise * rng.next()
                            + 3.0
                    })
                    .collect();
                s.push(&x, ci as u32, g as u32);
            }
        }
        (s, concepts)
    }

    #[test]
    fn ridge_fit_recovers_concepts_on_held_out_views() {
        let (s, concepts) = synthetic(60, 0.3);
        let (c, report) = fit(&s, false, concepts, &|g| g % 5 == 0, &[1e-3, 1e-2, 1e-1]).unwrap();
        assert_eq!(report.lambda_search.len(), 3);
        let held: Vec<usize> = (0..s.len()).filter(|&i| s.groups[i] % 5 == 0).collect();
        assert!(cell_accuracy(&c, &s, &held) > 0.95);
    }

    #[test]
    fn ridge_fit_on_noise_is_near_chance() {
        let (mut s, concepts) = synthetic(60, 0.3);
        let mut rng = Lcg(99);
        s.features.iter_mut().for_each(|x| *x = rng.next());
        let (c, _) = fit(&s, false, concepts, &|g| g % 5 == 0, &[1e-2]).unwrap();
        let held: Vec<usize> = (0..s.len()).filter(|&i| s.groups[i] % 5 == 0).collect();
        assert!(cell_accuracy(&c, &s, &held) < 0.5);
    }

    #[test]
    fn save_load_round_trip_and_checksum_guard() {
        let (s, concepts) = synthetic(10, 0.1);
        let (c, _) = fit(&s, false, concepts, &|g| g == 0, &[1e-2]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        let digest = c.save(&p).unwrap();
        assert_eq!(digest.len(), 64);
        let back = AlignConnector::load(&p).unwrap();
        let x = s.row(3);
        assert_eq!(c.project(x), back.project(x));
        assert_eq!(back.concepts().len(), c.concepts().len());
        // Corrupt one byte: the checksum catches it.
        let mut bytes = std::fs::read(&p).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        assert!(matches!(
            AlignConnector::load(&p),
            Err(ConnectorError::Checksum { .. })
        ));
    }

    /// NaN weights with a checksum that matches them (a bad fit saved as it was) are refused.
    #[test]
    fn non_finite_weights_are_refused_even_with_a_matching_checksum() {
        let (s, concepts) = synthetic(10, 0.1);
        let (c, _) = fit(&s, false, concepts, &|g| g == 0, &[1e-2]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        c.save(&p).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        let hlen = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        // The first weight after the feature mean and scale.
        let at = 12 + hlen + 2 * 4 * c.in_dim;
        bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        std::fs::write(&p, &bytes).unwrap();
        let digest = hex(&Sha256::digest(&bytes));
        std::fs::write(checksum_path(&p), format!("{digest}  x.bin\n")).unwrap();
        let e = AlignConnector::load(&p).unwrap_err();
        assert!(
            matches!(&e, ConnectorError::Format { message, .. } if message.contains("non-finite value in the weights")),
            "{e}"
        );
    }

    #[test]
    fn garbage_file_is_a_format_error() {
        assert!(AlignConnector::from_bytes(b"not a connector at all").is_err());
        assert!(AlignConnector::from_bytes(b"BLCONN01\xff\xff\xff\x7f").is_err());
    }
}
