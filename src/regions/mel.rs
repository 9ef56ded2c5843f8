//! Log-mel band energies: the audition region's compact acoustic embedding of each window.
//!
//! Definition (mirrored exactly by `scripts/models/make_fixtures.py`): a periodic Hann window
//! over `N` samples, the real FFT, the power spectrum, `bands` triangular filters spaced evenly on
//! the HTK mel scale (`2595 log10(1 + f / 700)`) from 0 Hz to the Nyquist frequency, then
//! `ln(energy + 1e-10)`. All in f64; no allocation per call.

use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

/// Floor added before the logarithm.
pub const LOG_FLOOR: f64 = 1e-10;

fn hz_to_mel(f: f64) -> f64 {
    2595.0 * (1.0 + f / 700.0).log10()
}

fn mel_to_hz(m: f64) -> f64 {
    700.0 * (10f64.powf(m / 2595.0) - 1.0)
}

/// A log-mel filterbank for windows of `n` samples at `sample_rate`.
pub struct LogMel {
    n: usize,
    bands: usize,
    window: Vec<f64>,
    weights: Vec<f64>, // bands x (n/2 + 1)
    fft: Arc<dyn RealToComplex<f64>>,
    buf: Vec<f64>,
    spec: Vec<realfft::num_complex::Complex<f64>>,
    scratch: Vec<realfft::num_complex::Complex<f64>>,
}

impl LogMel {
    /// A filterbank of `bands` bands over windows of `n` samples.
    pub fn new(n: usize, bands: usize, sample_rate: f64) -> Self {
        let n = n.max(2);
        let bins = n / 2 + 1;
        let window = (0..n)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
            .collect();
        let top = hz_to_mel(sample_rate / 2.0);
        let edges: Vec<f64> = (0..bands + 2)
            .map(|i| mel_to_hz(top * i as f64 / (bands + 1) as f64))
            .collect();
        let mut weights = vec![0.0; bands * bins];
        for b in 0..bands {
            let (lo, mid, hi) = (edges[b], edges[b + 1], edges[b + 2]);
            for k in 0..bins {
                let f = k as f64 * sample_rate / n as f64;
                let up = (f - lo) / (mid - lo);
                let down = (hi - f) / (hi - mid);
                weights[b * bins + k] = up.min(down).max(0.0);
            }
        }
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n);
        let spec = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        Self {
            n,
            bands,
            window,
            weights,
            fft,
            buf: vec![0.0; n],
            spec,
            scratch,
        }
    }

    /// Window length.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the window is empty (never: at least 2 samples).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Number of bands.
    pub fn bands(&self) -> usize {
        self.bands
    }

    /// Log-mel energies of `x` (`len()` samples) into `out` (`bands()` values).
    pub fn compute(&mut self, x: &[f32], out: &mut [f32]) {
        for (i, b) in self.buf.iter_mut().enumerate() {
            *b = f64::from(x.get(i).copied().unwrap_or(0.0)) * self.window[i];
        }
        // Lengths are fixed at construction, so the FFT cannot fail.
        let _ = self
            .fft
            .process_with_scratch(&mut self.buf, &mut self.spec, &mut self.scratch);
        let bins = self.spec.len();
        for (b, o) in out.iter_mut().enumerate().take(self.bands) {
            let w = &self.weights[b * bins..(b + 1) * bins];
            let e: f64 = self
                .spec
                .iter()
                .zip(w)
                .map(|(c, w)| w * (c.re * c.re + c.im * c.im))
                .sum();
            *o = (e + LOG_FLOOR).ln() as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_lights_the_band_that_holds_it() {
        let mut m = LogMel::new(512, 32, 16000.0);
        let tone: Vec<f32> = (0..512)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16000.0).sin())
            .collect();
        let mut out = [0.0f32; 32];
        m.compute(&tone, &mut out);
        let best = (0..32).max_by(|&a, &b| out[a].total_cmp(&out[b])).unwrap();
        // 1 kHz is mel 1000; band centres are evenly spaced up to mel(8000) = 2840.
        let centre = |b: usize| mel_to_hz(hz_to_mel(8000.0) * (b + 1) as f64 / 33.0);
        assert!((centre(best) - 1000.0).abs() < 120.0, "band {best}");
        let mut silent = [0.0f32; 32];
        m.compute(&[0.0; 512], &mut silent);
        assert!(silent
            .iter()
            .all(|&v| (v as f64 - LOG_FLOOR.ln()).abs() < 1e-3));
    }
}
