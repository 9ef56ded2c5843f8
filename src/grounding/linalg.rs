//! Small dense linear algebra for fitting connectors: Gram-matrix accumulation with a blocked,
//! cache-friendly kernel (`matrixmultiply`), a Cholesky factorisation and solves. Everything is in
//! `f64` row-major storage; only training uses it, never the real-time tick.

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

/// `C += Aᵀ B` where `A` is `n x p` and `B` is `n x q` (row-major), `C` is `p x q`.
pub fn add_at_b(a: &[f64], b: &[f64], n: usize, p: usize, q: usize, c: &mut [f64]) {
    assert_eq!(a.len(), n * p, "A shape");
    assert_eq!(b.len(), n * q, "B shape");
    assert_eq!(c.len(), p * q, "C shape");
    if n == 0 {
        return;
    }
    // SAFETY: the slices have exactly the lengths the strides describe (checked above), and `c`
    // does not alias `a` or `b` (distinct borrows).
    unsafe {
        matrixmultiply::dgemm(
            p,
            n,
            q,
            1.0,
            a.as_ptr(),
            1,
            p as isize,
            b.as_ptr(),
            q as isize,
            1,
            1.0,
            c.as_mut_ptr(),
            q as isize,
            1,
        );
    }
}

/// In-place Cholesky factorisation `A = L Lᵀ` of a symmetric positive-definite `n x n` matrix;
/// the lower triangle of `a` is replaced by `L` (the upper triangle is left untouched).
pub fn cholesky(a: &mut [f64], n: usize) -> Result<(), LinalgError> {
    if a.len() != n * n {
        return Err(LinalgError::Shape(format!(
            "{} values for {n}x{n}",
            a.len()
        )));
    }
    for j in 0..n {
        let rj: Vec<f64> = a[j * n..j * n + j].to_vec();
        let d = a[j * n + j] - rj.iter().map(|x| x * x).sum::<f64>();
        if !d.is_finite() || d <= 0.0 {
            return Err(LinalgError::NotPositiveDefinite(j));
        }
        let ljj = d.sqrt();
        a[j * n + j] = ljj;
        for i in (j + 1)..n {
            let row_i = &mut a[i * n..i * n + j + 1];
            let s = row_i[j] - row_i[..j].iter().zip(&rj).map(|(x, y)| x * y).sum::<f64>();
            row_i[j] = s / ljj;
        }
    }
    Ok(())
}

/// Solve `L Lᵀ X = B` for `X` (overwriting `B`, `n x m` row-major) given the Cholesky factor in
/// the lower triangle of `l`.
pub fn cholesky_solve(l: &[f64], n: usize, b: &mut [f64], m: usize) -> Result<(), LinalgError> {
    if l.len() != n * n || b.len() != n * m {
        return Err(LinalgError::Shape(format!(
            "L has {} values, B has {} for n={n}, m={m}",
            l.len(),
            b.len()
        )));
    }
    // Forward: L Y = B, row by row (each row of B is a right-hand-side component across m).
    for i in 0..n {
        for k in 0..i {
            let lik = l[i * n + k];
            if lik != 0.0 {
                let (prev, cur) = b.split_at_mut(i * m);
                let bk = &prev[k * m..k * m + m];
                for (x, y) in cur[..m].iter_mut().zip(bk) {
                    *x -= lik * y;
                }
            }
        }
        let lii = l[i * n + i];
        for x in &mut b[i * m..i * m + m] {
            *x /= lii;
        }
    }
    // Backward: Lᵀ X = Y.
    for i in (0..n).rev() {
        for k in (i + 1)..n {
            let lki = l[k * n + i];
            if lki != 0.0 {
                let (cur, next) = b.split_at_mut(k * m);
                let bk = &next[..m];
                for (x, y) in cur[i * m..i * m + m].iter_mut().zip(bk) {
                    *x -= lki * y;
                }
            }
        }
        let lii = l[i * n + i];
        for x in &mut b[i * m..i * m + m] {
            *x /= lii;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gram_matches_naive() {
        let (n, p, q) = (7, 3, 2);
        let a: Vec<f64> = (0..n * p).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..n * q).map(|i| (i as f64 * 0.91).cos()).collect();
        let mut c = vec![1.0; p * q];
        add_at_b(&a, &b, n, p, q, &mut c);
        for i in 0..p {
            for j in 0..q {
                let want: f64 = 1.0 + (0..n).map(|r| a[r * p + i] * b[r * q + j]).sum::<f64>();
                assert!((c[i * q + j] - want).abs() < 1e-12);
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
        for i in 0..n {
            a[i * n + i] += 0.5;
        }
        let x_true: Vec<f64> = (0..n * m).map(|i| i as f64 - 3.0).collect();
        let mut b = vec![0.0; n * m];
        for i in 0..n {
            for j in 0..m {
                b[i * m + j] = (0..n).map(|k| a[i * n + k] * x_true[k * m + j]).sum();
            }
        }
        let mut l = a.clone();
        cholesky(&mut l, n).unwrap();
        cholesky_solve(&l, n, &mut b, m).unwrap();
        for (x, t) in b.iter().zip(&x_true) {
            assert!((x - t).abs() < 1e-9, "{x} vs {t}");
        }
    }

    #[test]
    fn cholesky_rejects_indefinite() {
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        assert_eq!(
            cholesky(&mut a, 2),
            Err(LinalgError::NotPositiveDefinite(1))
        );
    }
}
