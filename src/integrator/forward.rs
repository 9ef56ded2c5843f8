//! The learned forward model: predicts the next fused state and proprioception from the current
//! fused state, proprioception and motor command. Its prediction error is the *surprise* that
//! feeds the emotion state; during the day it accumulates the normal equations of every
//! (input, outcome) pair it saw, and sleep refits it in closed form (ridge regression towards the
//! previous model, by Cholesky), which is seed 001's "fine-tune on the day's context".

use crate::util::linalg::SpdSolver;
use nalgebra::DMatrix;

/// Number of proprioceptive features the model predicts.
pub const PROPRIO_FEATURES: usize = 6;

/// A linear forward model `y = B^T x` with ridge refit from accumulated statistics.
#[derive(Debug, Clone)]
pub struct ForwardModel {
    width: usize,
    d_in: usize,
    d_out: usize,
    /// Coefficients `[d_in][d_out]`.
    b: Vec<f32>,
    /// Previous coefficients (before the last sleep), for side-by-side error.
    b_prev: Vec<f32>,
    xtx: Vec<f64>,
    xty: Vec<f64>,
    samples: u64,
    /// The refit's Cholesky factor and right-hand sides (`d_in x d_out`), kept between refits.
    solver: SpdSolver,
    rhs: DMatrix<f64>,
    /// Ridge strength towards the previous model.
    pub ridge: f64,
    err_sum: f64,
    err_prev_sum: f64,
    err_n: u64,
}

impl ForwardModel {
    /// Model for fused states of `width`; starts as persistence (the next state is predicted
    /// to equal the current one).
    pub fn new(width: usize) -> Self {
        let d_in = width + PROPRIO_FEATURES + 3;
        let d_out = width + PROPRIO_FEATURES;
        let mut b = vec![0.0; d_in * d_out];
        for k in 0..d_out {
            b[k * d_out + k] = 1.0;
        }
        Self {
            width,
            d_in,
            d_out,
            b_prev: b.clone(),
            b,
            xtx: vec![0.0; d_in * d_in],
            xty: vec![0.0; d_in * d_out],
            samples: 0,
            solver: SpdSolver::new(d_in),
            rhs: DMatrix::zeros(d_in, d_out),
            ridge: 1.0,
            err_sum: 0.0,
            err_prev_sum: 0.0,
            err_n: 0,
        }
    }

    /// Input dimension (state + proprio + 2 command values + bias).
    pub fn input_dim(&self) -> usize {
        self.d_in
    }

    /// Output dimension (state + proprio).
    pub fn output_dim(&self) -> usize {
        self.d_out
    }

    /// Build the input vector into `x` (length `input_dim`).
    pub fn features(&self, state: &[f32], proprio: &[f32], command: [f32; 2], x: &mut [f32]) {
        let w = self.width;
        x[..w].copy_from_slice(&state[..w]);
        x[w..w + PROPRIO_FEATURES].copy_from_slice(&proprio[..PROPRIO_FEATURES]);
        x[w + PROPRIO_FEATURES] = command[0];
        x[w + PROPRIO_FEATURES + 1] = command[1];
        x[w + PROPRIO_FEATURES + 2] = 1.0;
    }

    fn predict_with(b: &[f32], d_out: usize, x: &[f32], y: &mut [f32]) {
        y.iter_mut().for_each(|v| *v = 0.0);
        for (i, &xi) in x.iter().enumerate() {
            if xi == 0.0 {
                continue;
            }
            let row = &b[i * d_out..(i + 1) * d_out];
            for (o, r) in y.iter_mut().zip(row) {
                *o += xi * r;
            }
        }
    }

    /// Predict the outcome of input `x` into `y`.
    pub fn predict(&self, x: &[f32], y: &mut [f32]) {
        Self::predict_with(&self.b, self.d_out, x, y);
    }

    /// Learn from one observed transition: `x` was the input, `y` the outcome. Returns the
    /// model's mean squared prediction error on it (the surprise). `scratch` has
    /// `output_dim` values.
    pub fn observe(&mut self, x: &[f32], y: &[f32], scratch: &mut [f32]) -> f32 {
        let mse = |p: &[f32]| {
            p.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum::<f32>() / y.len() as f32
        };
        Self::predict_with(&self.b_prev, self.d_out, x, scratch);
        let e_prev = mse(scratch);
        self.predict(x, scratch);
        let e = mse(scratch);
        self.err_sum += e as f64;
        self.err_prev_sum += e_prev as f64;
        self.err_n += 1;
        let d = self.d_in;
        for i in 0..d {
            let xi = x[i] as f64;
            if xi == 0.0 {
                continue;
            }
            let row = &mut self.xtx[i * d..(i + 1) * d];
            for (r, &xj) in row[i..].iter_mut().zip(&x[i..]) {
                *r += xi * xj as f64;
            }
            let row = &mut self.xty[i * self.d_out..(i + 1) * self.d_out];
            for (r, &yj) in row.iter_mut().zip(y) {
                *r += xi * yj as f64;
            }
        }
        self.samples += 1;
        e
    }

    /// Transitions seen since the last refit.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Mean prediction error since the last refit of (the current model, the model before the
    /// last refit) on the same transitions.
    pub fn errors(&self) -> (f64, f64) {
        let n = self.err_n.max(1) as f64;
        (self.err_sum / n, self.err_prev_sum / n)
    }

    /// Refit on the day's statistics in closed form (ridge towards the current model), then
    /// clear them. Allocation-free; cost `O(d_in^3 + d_in^2 * d_out)`. Returns false (model
    /// unchanged) if there were no samples or the system was not positive definite.
    pub fn refit(&mut self) -> bool {
        if self.samples == 0 {
            return false;
        }
        let (d, d_out) = (self.d_in, self.d_out);
        let lam = self.ridge;
        // A = XtX + lam I: XtX's upper triangle, row-major, is A's lower triangle column by column.
        let xtx = &self.xtx;
        let chol = match self.solver.factor(1e-12, |a| {
            for c in 0..d {
                for r in c..d {
                    a[(r, c)] = xtx[c * d + r];
                }
                a[(c, c)] += lam;
            }
        }) {
            Ok(chol) => chol,
            Err(_) => return false,
        };
        self.b_prev.copy_from_slice(&self.b);
        // rhs = XtY + lam * B_prev, every output at once; then B = A^-1 rhs.
        for o in 0..d_out {
            for i in 0..d {
                self.rhs[(i, o)] =
                    self.xty[i * d_out + o] + lam * self.b_prev[i * d_out + o] as f64;
            }
        }
        chol.solve_mut(&mut self.rhs);
        for o in 0..d_out {
            for i in 0..d {
                self.b[i * d_out + o] = self.rhs[(i, o)] as f32;
            }
        }
        self.xtx.iter_mut().for_each(|v| *v = 0.0);
        self.xty.iter_mut().for_each(|v| *v = 0.0);
        self.samples = 0;
        self.err_sum = 0.0;
        self.err_prev_sum = 0.0;
        self.err_n = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refit_learns_a_linear_law() {
        let w = 4;
        let mut m = ForwardModel::new(w);
        let (di, dout) = (m.input_dim(), m.output_dim());
        let mut x = vec![0f32; di];
        let mut y = vec![0f32; dout];
        let mut s = vec![0f32; dout];
        let mut rng = super::super::connector::SplitMix::new(5);
        let law = |x: &[f32], y: &mut [f32]| {
            for (o, v) in y.iter_mut().enumerate() {
                *v = 0.5 * x[o] + 0.3 * x[di - 3] - 0.2 * x[di - 2];
            }
        };
        for _ in 0..500 {
            x.iter_mut().for_each(|v| *v = rng.normal() as f32);
            x[di - 1] = 1.0;
            law(&x, &mut y);
            m.observe(&x, &y, &mut s);
        }
        let (before, _) = m.errors();
        assert!(m.refit());
        for _ in 0..200 {
            x.iter_mut().for_each(|v| *v = rng.normal() as f32);
            x[di - 1] = 1.0;
            law(&x, &mut y);
            m.observe(&x, &y, &mut s);
        }
        let (after, prev) = m.errors();
        assert!(after < 0.01 * before, "{after} vs {before}");
        assert!(after < 0.01 * prev);
    }
}
