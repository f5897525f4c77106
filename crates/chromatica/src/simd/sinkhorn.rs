//! The Sinkhorn kernels: `s = K v` and `t = Kᵀ u` on a dense row-major
//! kernel matrix, the two products that dominate an iteration of
//! `crate::color::emd`. [`run`] hands the best [`Kernels`] a [`Cpu`] allows
//! to code that is generic over them, compiled for AVX2 as a whole when
//! they are the AVX2 ones.

use super::Cpu;

/// Work generic over the kernels (a whole Sinkhorn solve): [`run`] calls
/// [`WithKernels::run`] once, with the kernels to use. Mark the
/// implementation `#[inline(always)]`, so that it is compiled inside the
/// AVX2 copy.
pub trait WithKernels {
    /// What the work returns.
    type Output;
    /// Does the work with `kernels`.
    fn run<K: Kernels>(self, kernels: K) -> Self::Output;
}

/// Runs `work` with the kernels `cpu` allows.
#[inline]
pub fn run<W: WithKernels>(cpu: Cpu, work: W) -> W::Output {
    #[cfg(target_arch = "x86_64")]
    if cpu.avx2_fma {
        // SAFETY: a `Cpu` says AVX2 and FMA only when the CPU has them.
        return unsafe { x86::run(work) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = cpu;
    work.run(Portable)
}

/// The two matrix–vector products of a Sinkhorn iteration, for one
/// instruction set.
pub trait Kernels: Copy {
    /// Whether `a · b + c` may be fused (the CPU has FMA).
    const FMA: bool;
    /// `s = K v`, `K` row-major `s.len() × v.len()`, `s.len()` a multiple of
    /// 4 and `v.len()` of 8.
    fn mat_vec(self, k: &[f32], v: &[f32], s: &mut [f32]);
    /// `t = Kᵀ u`, `K` row-major `u.len() × t.len()`, same multiples.
    fn vec_mat(self, k: &[f32], u: &[f32], t: &mut [f32]);
}

/// The portable kernels: the reference.
#[derive(Clone, Copy)]
pub struct Portable;

impl Kernels for Portable {
    const FMA: bool = false;
    #[inline(always)]
    fn mat_vec(self, k: &[f32], v: &[f32], s: &mut [f32]) {
        for (si, row) in s.iter_mut().zip(k.chunks_exact(v.len())) {
            // Eight lanes let the compiler vectorise without reassociating.
            let mut acc = [0f32; 8];
            for (x, y) in row.chunks_exact(8).zip(v.chunks_exact(8)) {
                for l in 0..8 {
                    acc[l] += x[l] * y[l];
                }
            }
            *si = acc.iter().sum();
        }
    }

    #[inline(always)]
    fn vec_mat(self, k: &[f32], u: &[f32], t: &mut [f32]) {
        t.fill(0.0);
        for (&ui, row) in u.iter().zip(k.chunks_exact(t.len())) {
            for (tj, &x) in t.iter_mut().zip(row) {
                *tj += ui * x;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Kernels, WithKernels};

    /// The AVX2+FMA kernels. Only [`super::run`] makes one, for a `Cpu`
    /// that says the CPU has both.
    #[derive(Clone, Copy)]
    pub struct Avx2Fma(pub(super) ());

    /// `work`, compiled for AVX2 and FMA as a whole, so that its plain-Rust
    /// loops (kernel rebuilds, checks, cost) vectorise eight lanes wide too.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn run<W: WithKernels>(work: W) -> W::Output {
        work.run(Avx2Fma(()))
    }

    impl Kernels for Avx2Fma {
        const FMA: bool = true;
        #[inline(always)]
        fn mat_vec(self, k: &[f32], v: &[f32], s: &mut [f32]) {
            let (nr, ns) = (s.len(), v.len());
            assert!(nr % 4 == 0 && ns % 8 == 0 && k.len() == nr * ns);
            // SAFETY: an `Avx2Fma` exists only on a CPU with AVX2 and FMA
            // (see `super::run`); the sizes were checked.
            unsafe { mat_vec(k, v, s) }
        }

        #[inline(always)]
        fn vec_mat(self, k: &[f32], u: &[f32], t: &mut [f32]) {
            let (nr, ns) = (u.len(), t.len());
            assert!(nr % 4 == 0 && ns % 8 == 0 && k.len() == nr * ns);
            // SAFETY: as in `mat_vec`.
            unsafe { vec_mat(k, u, t) }
        }
    }

    /// Horizontal sums of four vectors: `[Σa, Σb, Σc, Σd]`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum4(a: __m256, b: __m256, c: __m256, d: __m256) -> __m128 {
        let ab = _mm256_hadd_ps(a, b);
        let cd = _mm256_hadd_ps(c, d);
        let abcd = _mm256_hadd_ps(ab, cd);
        _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1))
    }

    /// `s = K v`: four rows at a time, each with two accumulators (eight
    /// independent FMA chains), `v` loaded once per four rows.
    ///
    /// # Safety
    /// `s.len() % 4 == 0`, `v.len() % 8 == 0`,
    /// `k.len() == s.len() · v.len()`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn mat_vec(k: &[f32], v: &[f32], s: &mut [f32]) {
        let ns = v.len();
        let (pk, pv) = (k.as_ptr(), v.as_ptr());
        for (i, out) in s.chunks_exact_mut(4).enumerate() {
            // SAFETY: every load reads rows 4i..4i+4, which exist, at columns
            // below j + 8 ≤ ns.
            unsafe {
                let r0 = pk.add(4 * i * ns);
                let r = [r0, r0.add(ns), r0.add(2 * ns), r0.add(3 * ns)];
                let mut lo = [_mm256_setzero_ps(); 4];
                let mut hi = [_mm256_setzero_ps(); 4];
                let mut j = 0;
                while j + 16 <= ns {
                    let (x0, x1) = (_mm256_loadu_ps(pv.add(j)), _mm256_loadu_ps(pv.add(j + 8)));
                    for d in 0..4 {
                        lo[d] = _mm256_fmadd_ps(_mm256_loadu_ps(r[d].add(j)), x0, lo[d]);
                        hi[d] = _mm256_fmadd_ps(_mm256_loadu_ps(r[d].add(j + 8)), x1, hi[d]);
                    }
                    j += 16;
                }
                if j < ns {
                    let x0 = _mm256_loadu_ps(pv.add(j));
                    for d in 0..4 {
                        lo[d] = _mm256_fmadd_ps(_mm256_loadu_ps(r[d].add(j)), x0, lo[d]);
                    }
                }
                let sums = hsum4(
                    _mm256_add_ps(lo[0], hi[0]),
                    _mm256_add_ps(lo[1], hi[1]),
                    _mm256_add_ps(lo[2], hi[2]),
                    _mm256_add_ps(lo[3], hi[3]),
                );
                _mm_storeu_ps(out.as_mut_ptr(), sums);
            }
        }
    }

    /// `t = Kᵀ u`: column blocks of 64 held in eight accumulators across all
    /// rows, so `t` is written once; the last < 64 columns go eight at a
    /// time with four accumulators over interleaved rows.
    ///
    /// # Safety
    /// `u.len() % 4 == 0`, `t.len() % 8 == 0`,
    /// `k.len() == u.len() · t.len()`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn vec_mat(k: &[f32], u: &[f32], t: &mut [f32]) {
        let (nr, ns) = (u.len(), t.len());
        let (pk, pt) = (k.as_ptr(), t.as_mut_ptr());
        let mut j = 0;
        // SAFETY: every load and store is at row i < nr and columns below
        // j + 64 ≤ ns, resp. j + 8 ≤ ns, on rows of ns floats.
        unsafe {
            while j + 64 <= ns {
                let mut acc = [_mm256_setzero_ps(); 8];
                for (i, &ui) in u.iter().enumerate() {
                    let w = _mm256_set1_ps(ui);
                    let row = pk.add(i * ns + j);
                    for (l, a) in acc.iter_mut().enumerate() {
                        *a = _mm256_fmadd_ps(w, _mm256_loadu_ps(row.add(8 * l)), *a);
                    }
                }
                for (l, a) in acc.iter().enumerate() {
                    _mm256_storeu_ps(pt.add(j + 8 * l), *a);
                }
                j += 64;
            }
            while j < ns {
                let mut acc = [_mm256_setzero_ps(); 4];
                for i in (0..nr).step_by(4) {
                    for (d, a) in acc.iter_mut().enumerate() {
                        let w = _mm256_set1_ps(u[i + d]);
                        *a = _mm256_fmadd_ps(w, _mm256_loadu_ps(pk.add((i + d) * ns + j)), *a);
                    }
                }
                let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
                _mm256_storeu_ps(pt.add(j), sum);
                j += 8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_a_naive_product() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        // Column counts cover the AVX2 kernels' 64-, 16- and 8-wide paths.
        for (nr, ns) in [(4, 8), (4, 16), (8, 24), (12, 64), (68, 72), (20, 136), (264, 264)] {
            let k: Vec<f32> = (0..nr * ns).map(|_| next()).collect();
            let v: Vec<f32> = (0..ns).map(|_| next()).collect();
            let u: Vec<f32> = (0..nr).map(|_| next()).collect();
            let want_s: Vec<f64> = (0..nr).map(|i| (0..ns).map(|j| k[i * ns + j] as f64 * v[j] as f64).sum()).collect();
            let want_t: Vec<f64> = (0..ns).map(|j| (0..nr).map(|i| k[i * ns + j] as f64 * u[i] as f64).sum()).collect();
            let check = |s: &[f32], t: &[f32], what: &str| {
                for (got, want) in s.iter().zip(&want_s).chain(t.iter().zip(&want_t)) {
                    assert!((*got as f64 - want).abs() <= 1e-5 * want.max(1.0), "{what} {nr}×{ns}: {got} vs {want}");
                }
            };
            let (mut s, mut t) = (vec![f32::NAN; nr], vec![f32::NAN; ns]);
            Portable.mat_vec(&k, &v, &mut s);
            Portable.vec_mat(&k, &u, &mut t);
            check(&s, &t, "portable");
            #[cfg(target_arch = "x86_64")]
            if Cpu::available().iter().any(|c| c.avx2_fma) {
                let avx2 = x86::Avx2Fma(());
                let (mut s, mut t) = (vec![f32::NAN; nr], vec![f32::NAN; ns]);
                avx2.mat_vec(&k, &v, &mut s);
                avx2.vec_mat(&k, &u, &mut t);
                check(&s, &t, "avx2");
            }
        }
    }
}
