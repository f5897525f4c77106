//! The float operations everything else calls: inner products, squared L2,
//! sparse rows times a transposed matrix, the nearest-centroid argmin, and
//! matrix products (through `matrixmultiply`). This file checks shapes and
//! states what is computed; the loops that dominate run time are SIMD
//! kernels in `crate::simd::float`, chosen once per process
//! (`crate::simd::Cpu`).

use crate::simd::{self, Cpu};

/// `⟨a, b⟩`. Panics if the lengths differ (a caller bug, never input-driven).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    simd::float::dot(Cpu::get(), a, b)
}

/// `‖a − b‖²`. Panics if the lengths differ.
#[inline]
pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    simd::float::l2sq(Cpu::get(), a, b)
}

/// `‖a‖²`.
#[inline]
pub fn norm_sq(a: &[f32]) -> f32 {
    dot(a, a)
}

/// The non-zero coordinates of `x`, ascending, into `out`.
pub fn nonzeros(x: &[f32], out: &mut Vec<(u32, f32)>) {
    out.clear();
    out.extend(x.iter().enumerate().filter(|(_, &v)| v != 0.0).map(|(p, &v)| (p as u32, v)));
}

/// `out[c] += Σ v · mt[(p − offset)·cols + c]` over the `(p, v)` of `x`,
/// where `cols = out.len()` and `mt` is a rows × cols matrix: the products of
/// a sparse vector with the columns of a transposed matrix, one row of `mt`
/// per non-zero coordinate. Search and encoding build their tables with
/// this; colour histograms have about 6% non-zero coordinates, so the tables
/// cost that fraction of a dense product. Panics if a coordinate falls
/// outside `mt` (a caller bug).
pub fn axpy_rows(x: &[(u32, f32)], offset: u32, mt: &[f32], out: &mut [f32]) {
    let cols = out.len();
    if cols == 0 {
        return;
    }
    let rows = mt.len() / cols;
    assert!(
        x.iter().all(|&(p, _)| p >= offset && ((p - offset) as usize) < rows),
        "axpy_rows: coordinate outside the matrix"
    );
    simd::float::axpy_rows(Cpu::get(), x, offset, mt, out)
}

/// `out[i·ldo + r] = ⟨row i of A, row r of B⟩`: A is n × w with row stride
/// `lda` (so A may be a column range of a wider matrix), B is k × w
/// contiguous, and `out` is n × k with row stride `ldo`. One
/// `matrixmultiply::sgemm` call: k-means assignment and batched search
/// compute their inner products with it. Panics if a slice is too short.
#[allow(clippy::too_many_arguments)]
pub fn matmul_abt(a: &[f32], lda: usize, n: usize, w: usize, b: &[f32], k: usize, out: &mut [f32], ldo: usize) {
    matmul(a, lda, n, w, b, (1, w), k, out, ldo)
}

/// As [`matmul_abt`], but B is given transposed: w × k contiguous.
#[allow(clippy::too_many_arguments)]
pub fn matmul_atb(a: &[f32], lda: usize, n: usize, w: usize, b: &[f32], k: usize, out: &mut [f32], ldo: usize) {
    matmul(a, lda, n, w, b, (k, 1), k, out, ldo)
}

/// out (n × k) = A (n × w) · B (w × k), B's element (p, r) at
/// p·rsb + r·csb, where (rsb, csb) is (1, w) or (k, 1).
#[allow(clippy::too_many_arguments)]
fn matmul(
    a: &[f32],
    lda: usize,
    n: usize,
    w: usize,
    b: &[f32],
    (rsb, csb): (usize, usize),
    k: usize,
    out: &mut [f32],
    ldo: usize,
) {
    if n == 0 || k == 0 {
        return;
    }
    assert!(w <= lda && a.len() >= (n - 1) * lda + w, "matmul: A too short");
    assert!(b.len() >= k * w && ((rsb, csb) == (1, w) || (rsb, csb) == (k, 1)), "matmul: B too short");
    assert!(k <= ldo && out.len() >= (n - 1) * ldo + k, "matmul: out too short");
    if w == 0 {
        for row in out.chunks_mut(ldo).take(n) {
            row[..k].fill(0.0);
        }
        return;
    }
    // SAFETY: A is n × w with row stride lda and column stride 1: its last
    // element (n − 1)·lda + w − 1 is in bounds (asserted). B's last element,
    // (w − 1)·rsb + (k − 1)·csb, is k·w − 1 for either layout: in bounds. C
    // is n × k with row stride ldo ≥ k and column stride 1: distinct
    // elements, the last in bounds; `out` is exclusively borrowed, so C
    // aliases neither A nor B. Every dimension indexes an existing slice, so
    // it fits in isize.
    unsafe {
        matrixmultiply::sgemm(
            n,
            w,
            k,
            1.0,
            a.as_ptr(),
            lda as isize,
            1,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            0.0,
            out.as_mut_ptr(),
            ldo as isize,
            1,
        );
    }
}

/// Index and value of the smallest element; ties go to the lowest index.
pub fn argmin(v: &[f32]) -> (usize, f32) {
    let mut best = (0, f32::INFINITY);
    for (i, &x) in v.iter().enumerate() {
        if x < best.1 {
            best = (i, x);
        }
    }
    best
}

/// Index and value of the smallest `a[i] − 2·b[i]`; ties go to the lowest
/// index, and NaN never wins. This is the nearest-centroid step of k-means
/// and of encoding: ‖x − c‖² − ‖x‖² = ‖c‖² − 2⟨x, c⟩.
pub fn argmin_minus_2(a: &[f32], b: &[f32]) -> (usize, f32) {
    assert_eq!(a.len(), b.len());
    simd::float::argmin_minus_2(Cpu::get(), a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn argmin_is_the_first_smallest(v in proptest::collection::vec(prop_oneof![0u8..6, Just(255u8)], 0..60)) {
            let v: Vec<f32> = v.into_iter().map(|x| if x == 255 { f32::NAN } else { x as f32 }).collect();
            let mut want = (0, f32::INFINITY);
            for (i, &x) in v.iter().enumerate() {
                if x < want.1 {
                    want = (i, x);
                }
            }
            prop_assert_eq!(argmin(&v), want);
            let half: Vec<f32> = v.iter().map(|x| -x / 2.0).collect();
            let zero = vec![0f32; v.len()];
            prop_assert_eq!(argmin_minus_2(&zero, &half), want);
        }
    }

    #[test]
    fn argmin_prefers_first_of_ties() {
        assert_eq!(argmin(&[3.0, 1.0, 1.0, 2.0]), (1, 1.0));
        assert_eq!(argmin(&[]).0, 0);
    }
}
