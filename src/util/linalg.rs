//! Dense linear algebra on nalgebra, the one implementation the crate's fits share: Gram products
//! (`C += Aᵀ B`, nalgebra's `gemm`, which hands large products to the blocked `matrixmultiply`
//! kernel) and symmetric positive-definite solves by Cholesky (`nalgebra::linalg::Cholesky`).
//! Everything is `f64`. The grounding fits pass row-major slices; the forward model's sleep refit
//! keeps an [`SpdSolver`] and its right-hand sides between refits, so refitting allocates nothing.

use nalgebra::linalg::Cholesky;
use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut, Dyn};
use thiserror::Error;

/// Errors from the dense solvers.
#[derive(Debug, Error, PartialEq)]
#[non_exhaustive]
pub enum LinalgError {
    /// The matrix is not (numerically) positive definite at this pivot.
    #[error("matrix not positive definite at pivot {0}")]
    NotPositiveDefinite(usize),
    /// Shapes do not agree.
    #[error("shape mismatch: {0}")]
    Shape(String),
}

/// `C += Aᵀ B` where `A` is `n x p` and `B` is `n x q` (row-major), `C` is `p x q` (row-major).
pub fn add_at_b(a: &[f64], b: &[f64], n: usize, p: usize, q: usize, c: &mut [f64]) {
    assert_eq!(a.len(), n * p, "A shape");
    assert_eq!(b.len(), n * q, "B shape");
    assert_eq!(c.len(), p * q, "C shape");
    if n == 0 || p == 0 || q == 0 {
        return;
    }
    // Strided views over the row-major slices: `Aᵀ` is `A`'s storage read column-major.
    let at = DMatrixView::<f64, Dyn, Dyn>::from_slice_with_strides(a, p, n, 1, p);
    let b = DMatrixView::<f64, Dyn, Dyn>::from_slice_with_strides(b, n, q, q, 1);
    let mut c = DMatrixViewMut::<f64, Dyn, Dyn>::from_slice_with_strides_mut(c, p, q, q, 1);
    c.gemm(1.0, &at, &b, 1.0);
}

/// A Cholesky factorisation `A = L Lᵀ` in a buffer kept between factorisations: after
/// [`SpdSolver::new`] neither [`SpdSolver::factor`] nor the solves allocate.
#[derive(Debug, Clone)]
pub struct SpdSolver {
    chol: Cholesky<f64, Dyn>,
}

impl SpdSolver {
    /// A solver for `n x n` systems.
    pub fn new(n: usize) -> Self {
        Self {
            chol: Cholesky::pack_dirty(DMatrix::zeros(n, n)),
        }
    }

    /// The system size.
    pub fn dim(&self) -> usize {
        self.chol.l_dirty().nrows()
    }

    /// Factor the symmetric matrix that `fill` writes into the `n x n` buffer (only its lower
    /// triangle, `(row, col)` with `row >= col`, need be written and is read; the buffer holds
    /// the previous factor when `fill` is called). A pivot (the squared diagonal entry of `L`)
    /// that is not finite or not above `min_pivot` is an error naming it, and then the solver
    /// holds no usable factor until the next successful `factor`.
    pub fn factor(
        &mut self,
        min_pivot: f64,
        fill: impl FnOnce(&mut DMatrix<f64>),
    ) -> Result<&Cholesky<f64, Dyn>, LinalgError> {
        // Move the buffer out and back: an empty `DMatrix` does not allocate.
        let empty = Cholesky::pack_dirty(DMatrix::zeros(0, 0));
        let mut a = std::mem::replace(&mut self.chol, empty).unpack_dirty();
        let n = a.nrows();
        fill(&mut a);
        assert_eq!(a.shape(), (n, n), "fill must keep the matrix's shape");
        // Unchecked: an indefinite matrix leaves a NaN, zero or tiny pivot on L's diagonal (and
        // garbage after it), found below, where `Cholesky::new` would only say "no".
        self.chol = Cholesky::new_unchecked(a);
        let l = self.chol.l_dirty();
        let floor = min_pivot.max(0.0).sqrt();
        match (0..n).find(|&j| {
            let d = l[(j, j)];
            !(d.is_finite() && d > floor)
        }) {
            Some(j) => Err(LinalgError::NotPositiveDefinite(j)),
            None => Ok(&self.chol),
        }
    }
}

/// Solve `(A + ridge I) X = B` for a symmetric positive-definite `A` (`n x n`, row-major; only
/// its lower triangle is read) and `B` (`n x m`, row-major), overwriting `B` with `X`.
/// Allocates an `n x n` and an `n x m` matrix; for repeated solves keep an [`SpdSolver`].
pub fn solve_spd(
    a: &[f64],
    n: usize,
    ridge: f64,
    b: &mut [f64],
    m: usize,
) -> Result<(), LinalgError> {
    if a.len() != n * n || b.len() != n * m {
        return Err(LinalgError::Shape(format!(
            "A has {} values, B has {} for n={n}, m={m}",
            a.len(),
            b.len()
        )));
    }
    let mut solver = SpdSolver::new(n);
    let chol = solver.factor(0.0, |g| {
        for c in 0..n {
            for r in c..n {
                g[(r, c)] = a[r * n + c];
            }
            g[(c, c)] += ridge;
        }
    })?;
    let mut x = DMatrix::from_row_slice(n, m, b);
    chol.solve_mut(&mut x);
    for i in 0..n {
        for j in 0..m {
            b[i * m + j] = x[(i, j)];
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gram_matches_naive() {
        // Small (nalgebra's own loop) and large (blocked kernel) shapes.
        for (n, p, q) in [(7, 3, 2), (40, 9, 12), (33, 16, 1)] {
            let a: Vec<f64> = (0..n * p).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..n * q).map(|i| (i as f64 * 0.91).cos()).collect();
            let mut c = vec![1.0; p * q];
            add_at_b(&a, &b, n, p, q, &mut c);
            for i in 0..p {
                for j in 0..q {
                    let want: f64 = 1.0 + (0..n).map(|r| a[r * p + i] * b[r * q + j]).sum::<f64>();
                    assert!((c[i * q + j] - want).abs() < 1e-12, "{n}x{p}x{q}");
                }
            }
        }
    }

    #[test]
    fn cholesky_solves_spd_system() {
        let n = 5;
        let m = 2;
        let r: Vec<f64> = (0..n * n)
            .map(|i| ((i * 7 % 11) as f64) / 11.0 - 0.4)
            .collect();
        let mut a = vec![0.0; n * n];
        add_at_b(&r, &r, n, n, n, &mut a);
        let ridge = 0.5;
        let x_true: Vec<f64> = (0..n * m).map(|i| i as f64 - 3.0).collect();
        let mut b = vec![0.0; n * m];
        for i in 0..n {
            for j in 0..m {
                b[i * m + j] = (0..n)
                    .map(|k| a[i * n + k] * x_true[k * m + j])
                    .sum::<f64>()
                    + ridge * x_true[i * m + j];
            }
        }
        solve_spd(&a, n, ridge, &mut b, m).unwrap();
        for (x, t) in b.iter().zip(&x_true) {
            assert!((x - t).abs() < 1e-9, "{x} vs {t}");
        }
    }

    #[test]
    fn cholesky_rejects_indefinite() {
        let a = vec![1.0, 2.0, 2.0, 1.0];
        let mut b = vec![1.0, 1.0];
        assert_eq!(
            solve_spd(&a, 2, 0.0, &mut b, 1),
            Err(LinalgError::NotPositiveDefinite(1))
        );
        // A singular matrix fails at its zero pivot, and a pivot under the floor fails too.
        let mut s = SpdSolver::new(2);
        let fill = |g: &mut DMatrix<f64>| {
            g.copy_from_slice(&[1.0, 1.0, 1.0, 1.0]);
        };
        assert_eq!(
            s.factor(0.0, fill).err(),
            Some(LinalgError::NotPositiveDefinite(1))
        );
        let fill = |g: &mut DMatrix<f64>| {
            g.copy_from_slice(&[1.0, 0.0, 0.0, 1e-13]);
        };
        assert_eq!(
            s.factor(1e-12, fill).err(),
            Some(LinalgError::NotPositiveDefinite(1))
        );
        assert!(s.factor(0.0, fill).is_ok());
        assert_eq!(
            solve_spd(&a, 3, 0.0, &mut b, 1),
            Err(LinalgError::Shape(
                "A has 4 values, B has 2 for n=3, m=1".into()
            ))
        );
    }

    #[test]
    fn solver_reuses_its_buffer() {
        let mut s = SpdSolver::new(3);
        for k in 1..4 {
            let chol = s
                .factor(0.0, |g| {
                    g.fill(0.0);
                    g.fill_diagonal(k as f64 * k as f64);
                })
                .unwrap();
            let mut x = DMatrix::from_element(3, 1, 2.0 * (k * k) as f64);
            chol.solve_mut(&mut x);
            assert!(x.iter().all(|&v| (v - 2.0).abs() < 1e-15));
        }
        assert_eq!(s.dim(), 3);
    }
}
