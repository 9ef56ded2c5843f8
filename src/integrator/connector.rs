//! Projection connectors (seed 002): a linear map from a region's embedding space into the
//! integrator's common token width. Weights are loaded from `models/connectors/` when a learned
//! file exists, else come from a fixed seeded initialisation, so runs are reproducible.
//!
//! File format (`.blcn`, little endian): magic `BLCN`, u32 version 1, u32 input dim, u32 output
//! dim, then `out * in` f32 weights row-major `[out][in]`, then `out` f32 biases.

use std::io::Read;
use std::path::Path;

pub use crate::util::rng::SplitMix;

/// Errors loading a connector file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectorError {
    /// The file could not be read.
    #[error("cannot read connector {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not a valid connector.
    #[error("bad connector file {path}: {message}")]
    Format {
        /// File.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// A linear projection `out = W x + b` into the common width, followed by RMS normalisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Connector {
    in_dim: usize,
    out_dim: usize,
    weights: Vec<f32>,
    bias: Vec<f32>,
    learned: bool,
}

impl Connector {
    /// Fixed seeded initialisation: Gaussian weights scaled by `1/sqrt(in_dim)`, zero bias.
    pub fn seeded(in_dim: usize, out_dim: usize, seed: u64) -> Self {
        let mut rng = SplitMix::new(seed);
        let s = 1.0 / (in_dim.max(1) as f64).sqrt();
        let weights = (0..in_dim * out_dim)
            .map(|_| (rng.normal() * s) as f32)
            .collect();
        Self {
            in_dim,
            out_dim,
            weights,
            bias: vec![0.0; out_dim],
            learned: false,
        }
    }

    /// Load learned weights; `out_dim` must match the integrator's width.
    pub fn load(path: &Path, out_dim: usize) -> Result<Self, ConnectorError> {
        let p = path.display().to_string();
        let fmt = |m: String| ConnectorError::Format {
            path: p.clone(),
            message: m,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|source| ConnectorError::Io {
                path: p.clone(),
                source,
            })?;
        if bytes.len() < 16 || &bytes[..4] != b"BLCN" {
            return Err(fmt("missing BLCN header".into()));
        }
        let u = |k: usize| u32::from_le_bytes([bytes[k], bytes[k + 1], bytes[k + 2], bytes[k + 3]]);
        if u(4) != 1 {
            return Err(fmt(format!("unsupported version {}", u(4))));
        }
        let (i, o) = (u(8) as usize, u(12) as usize);
        if o != out_dim {
            return Err(fmt(format!(
                "output dim {o} does not match integrator width {out_dim}"
            )));
        }
        if i == 0 || i > crate::bus::slots::MAX_VECTOR {
            return Err(fmt(format!("input dim {i} out of range 1..=1536")));
        }
        let n = i * o + o;
        if bytes.len() != 16 + 4 * n {
            return Err(fmt(format!(
                "expected {} bytes for {i}x{o}, found {}",
                16 + 4 * n,
                bytes.len()
            )));
        }
        let vals: Vec<f32> = bytes[16..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if !vals.iter().all(|v| v.is_finite()) {
            return Err(fmt("non-finite weight".into()));
        }
        Ok(Self {
            in_dim: i,
            out_dim: o,
            weights: vals[..i * o].to_vec(),
            bias: vals[i * o..].to_vec(),
            learned: true,
        })
    }

    /// Write the connector in the `.blcn` format.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut b = Vec::with_capacity(16 + 4 * (self.weights.len() + self.bias.len()));
        b.extend_from_slice(b"BLCN");
        for v in [1u32, self.in_dim as u32, self.out_dim as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for v in self.weights.iter().chain(&self.bias) {
            b.extend_from_slice(&v.to_le_bytes());
        }
        std::fs::write(path, b)
    }

    /// Input dimension.
    pub fn in_dim(&self) -> usize {
        self.in_dim
    }

    /// Whether the weights were loaded from a learned file.
    pub fn is_learned(&self) -> bool {
        self.learned
    }

    /// Project `x` (its first `min(len, in_dim)` values) into `out` and RMS-normalise.
    /// Allocation-free.
    pub fn project(&self, x: &[f32], out: &mut [f32]) {
        let n = x.len().min(self.in_dim);
        for (o, y) in out.iter_mut().enumerate().take(self.out_dim) {
            let row = &self.weights[o * self.in_dim..o * self.in_dim + n];
            *y = self.bias[o] + dot(row, &x[..n]);
        }
        rms_normalise(out);
    }
}

/// Dot product (auto-vectorised: four independent accumulators).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        let (x, y) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for k in chunks * 8..n {
        s += a[k] * b[k];
    }
    s
}

/// Scale a vector to unit root-mean-square (zero stays zero).
pub fn rms_normalise(v: &mut [f32]) {
    if v.is_empty() {
        return;
    }
    let ms = v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32;
    if ms > 1e-12 && ms.is_finite() {
        let s = 1.0 / ms.sqrt();
        v.iter_mut().for_each(|x| *x *= s);
    } else {
        v.iter_mut().for_each(|x| *x = 0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_reproducible_and_file_round_trips() {
        let a = Connector::seeded(10, 8, 3);
        assert_eq!(a, Connector::seeded(10, 8, 3));
        assert_ne!(a, Connector::seeded(10, 8, 4));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.blcn");
        a.save(&p).unwrap();
        let b = Connector::load(&p, 8).unwrap();
        assert!(b.is_learned());
        assert_eq!(a.weights, b.weights);
        assert!(Connector::load(&p, 9).is_err());
        std::fs::write(&p, b"nope").unwrap();
        assert!(Connector::load(&p, 8).is_err());
        let mut out = [0f32; 8];
        a.project(&[1.0; 10], &mut out);
        let rms = (out.iter().map(|x| x * x).sum::<f32>() / 8.0).sqrt();
        assert!((rms - 1.0).abs() < 1e-4);
    }
}
