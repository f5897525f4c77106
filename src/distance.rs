//! Inner-product and squared-L2 kernels: the only floating-point loops that
//! dominate run time. An AVX2+FMA version is chosen at run time when the CPU
//! has it; the portable version is the reference and the fallback, and a test
//! checks that both agree.

/// `⟨a, b⟩`. Panics if the lengths differ (a caller bug, never input-driven).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above), and the
        // kernel reads only within the two equal-length slices.
        return unsafe { x86::dot_avx2(a, b) };
    }
    portable::dot(a, b)
}

/// `‖a − b‖²`. Panics if the lengths differ.
#[inline]
pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: as in `dot`.
        return unsafe { x86::l2sq_avx2(a, b) };
    }
    portable::l2sq(a, b)
}

/// `‖a‖²`.
#[inline]
pub fn norm_sq(a: &[f32]) -> f32 {
    dot(a, a)
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

#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2_fma() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0 = unknown, 1 = no, 2 = yes. Detection is cheap but not free; cache it.
    static CACHE: AtomicU8 = AtomicU8::new(0);
    match CACHE.load(Ordering::Relaxed) {
        2 => true,
        1 => false,
        _ => {
            let yes = std::env::var_os("CHROMATICA_NO_SIMD").is_none()
                && is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma");
            CACHE.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
    }
}

/// Plain Rust kernels. Eight independent accumulators let the compiler use
/// SIMD registers without reassociating a single sum.
pub mod portable {
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0f32; 8];
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for i in 0..8 {
                acc[i] += x[i] * y[i];
            }
        }
        let mut s = acc.iter().sum::<f32>();
        for (x, y) in ra.iter().zip(rb) {
            s += x * y;
        }
        s
    }

    pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0f32; 8];
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for i in 0..8 {
                let t = x[i] - y[i];
                acc[i] += t * t;
            }
        }
        let mut s = acc.iter().sum::<f32>();
        for (x, y) in ra.iter().zip(rb) {
            s += (x - y) * (x - y);
        }
        s
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// Two 8-lane accumulators hide FMA latency at 16 floats per step.
    #[target_feature(enable = "avx2,fma")]
    pub fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        let mut s0 = _mm256_setzero_ps();
        let mut s1 = _mm256_setzero_ps();
        // SAFETY (all loads below): i + 16 <= n, resp. i + 8 <= n, and both
        // slices hold at least n floats; unaligned loads need no alignment.
        unsafe {
            while i + 16 <= n {
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
                s1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)), s1);
                i += 16;
            }
            if i + 8 <= n {
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
                i += 8;
            }
        }
        let mut s = hsum(_mm256_add_ps(s0, s1));
        for j in i..n {
            s += a[j] * b[j];
        }
        s
    }

    #[target_feature(enable = "avx2,fma")]
    pub fn l2sq_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        let mut s0 = _mm256_setzero_ps();
        let mut s1 = _mm256_setzero_ps();
        // SAFETY: as in `dot_avx2`.
        unsafe {
            while i + 16 <= n {
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                let d1 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)));
                s0 = _mm256_fmadd_ps(d0, d0, s0);
                s1 = _mm256_fmadd_ps(d1, d1, s1);
                i += 16;
            }
            if i + 8 <= n {
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                s0 = _mm256_fmadd_ps(d0, d0, s0);
                i += 8;
            }
        }
        let mut s = hsum(_mm256_add_ps(s0, s1));
        for j in i..n {
            s += (a[j] - b[j]) * (a[j] - b[j]);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn simd_and_portable_agree(v in proptest::collection::vec((-4f32..4f32, -4f32..4f32), 0..300)) {
            let (a, b): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
            let exact_dot: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            let exact_l2: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum();
            let tol = 1e-4 * (1.0 + a.len() as f64);
            prop_assert!((dot(&a, &b) as f64 - exact_dot).abs() < tol);
            prop_assert!((portable::dot(&a, &b) as f64 - exact_dot).abs() < tol);
            prop_assert!((l2sq(&a, &b) as f64 - exact_l2).abs() < tol);
            prop_assert!((portable::l2sq(&a, &b) as f64 - exact_l2).abs() < tol);
        }
    }

    #[test]
    fn argmin_prefers_first_of_ties() {
        assert_eq!(argmin(&[3.0, 1.0, 1.0, 2.0]), (1, 1.0));
        assert_eq!(argmin(&[]).0, 0);
    }
}
