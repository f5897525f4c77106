//! Float kernels: `⟨a, b⟩`, `‖a − b‖²`, sparse rows times a transposed
//! matrix (`axpy_rows`), the index of the smallest `a[i] − 2·b[i]`, the
//! vector `a − 2·b` (`minus_2`) and the bit mask of a block's values within
//! a threshold (`le_mask`). The shapes are checked by the callers
//! (`crate::distance`, `crate::read::search`); these functions choose the
//! kernel for a [`Cpu`] and run it.

use super::Cpu;

/// `⟨a, b⟩` over the common length.
#[inline]
pub fn dot(cpu: Cpu, a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if cpu.avx2_fma {
        // SAFETY: a `Cpu` says AVX2 and FMA only when the CPU has them; the
        // kernel reads only within the two slices.
        return unsafe { x86::dot_avx2(a, b) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = cpu;
    portable::dot(a, b)
}

/// `‖a − b‖²` over the common length.
#[inline]
pub fn l2sq(cpu: Cpu, a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if cpu.avx2_fma {
        // SAFETY: as in `dot`.
        return unsafe { x86::l2sq_avx2(a, b) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = cpu;
    portable::l2sq(a, b)
}

/// `out[c] += Σ v · mt[(p − offset)·cols + c]` over the `(p, v)` of `x`,
/// `cols = out.len()`. The caller guarantees that every row `p − offset`
/// lies inside `mt`.
#[inline]
pub fn axpy_rows(cpu: Cpu, x: &[(u32, f32)], offset: u32, mt: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if cpu.avx2_fma {
        // SAFETY: the CPU has AVX2 and FMA (`cpu` says so); every row index
        // p − offset is below mt.len() / cols (the caller's guarantee).
        return unsafe { x86::axpy_rows_avx2(x, offset, mt, out) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = cpu;
    portable::axpy_rows(x, offset, mt, out)
}

/// Index and value of the smallest `a[i] − 2·b[i]` over the common length;
/// ties go to the lowest index, and NaN never wins.
#[inline]
pub fn argmin_minus_2(cpu: Cpu, a: &[f32], b: &[f32]) -> (usize, f32) {
    #[cfg(target_arch = "x86_64")]
    if cpu.avx2_fma {
        // SAFETY: the CPU has AVX2 (`cpu` says so); the kernel reads only
        // within the two slices.
        return unsafe { x86::argmin_minus_2_avx2(a, b) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = cpu;
    portable::argmin_minus_2(a, b)
}

/// `out[i] = a[i] − 2·b[i]` for every `i < out.len()` (`a` and `b` at least
/// as long): stage 1's table for a probed list, its stored term 2 minus
/// twice the query's inner products. `2·b[i]` is exact, so every kernel
/// rounds once, in the same place, and gives the same bits.
#[inline]
pub fn minus_2(cpu: Cpu, a: &[f32], b: &[f32], out: &mut [f32]) {
    let (a, b) = (&a[..out.len()], &b[..out.len()]);
    #[cfg(target_arch = "x86_64")]
    if cpu.avx2_fma {
        // SAFETY: the CPU has AVX2 (`cpu` says so); the three slices have
        // the same length, and the kernel stays inside them.
        return unsafe { x86::minus_2_avx2(a, b, out) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = cpu;
    portable::minus_2(a, b, out)
}

/// Bit `i` set where `v[i] <= t` (never for NaN), for a block of at most
/// 32 values: which of a block's stage-1 distances may enter the top-k, in
/// one compare per eight instead of a branch per value.
#[inline]
pub fn le_mask(cpu: Cpu, v: &[f32], t: f32) -> u32 {
    assert!(v.len() <= 32, "a block of at most 32 values");
    #[cfg(target_arch = "x86_64")]
    if cpu.avx2_fma {
        // SAFETY: the CPU has AVX2 (`cpu` says so); the kernel reads only
        // within `v`.
        return unsafe { x86::le_mask_avx2(v, t) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = cpu;
    portable::le_mask(v, t)
}

/// Merges per-lane minima (ties to the lowest index, infinities never
/// chosen over index 0), then scans the tail `ra − 2·rb` starting at `body`.
fn merge_lanes(bv: &[f32; 8], bi: &[u32; 8], body: usize, ra: &[f32], rb: &[f32]) -> (usize, f32) {
    let mut best = (0usize, f32::INFINITY);
    for t in 0..8 {
        if bv[t] < best.1 || (bv[t] == best.1 && bv[t] != f32::INFINITY && (bi[t] as usize) < best.0) {
            best = (bi[t] as usize, bv[t]);
        }
    }
    for (i, (&x, &y)) in ra.iter().zip(rb).enumerate() {
        let v = x - 2.0 * y;
        if v < best.1 {
            best = (body + i, v);
        }
    }
    best
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

    /// Eight independent running minima, merged at the end, so that the
    /// compiler can use vector compares instead of a chain of branches.
    pub fn argmin_minus_2(a: &[f32], b: &[f32]) -> (usize, f32) {
        const L: usize = 8;
        let mut bv = [f32::INFINITY; L];
        let mut bi = [0u32; L];
        let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (c, (xa, xb)) in ca.zip(cb).enumerate() {
            for t in 0..L {
                let v = xa[t] - 2.0 * xb[t];
                let better = v < bv[t];
                bv[t] = if better { v } else { bv[t] };
                bi[t] = if better { (c * L + t) as u32 } else { bi[t] };
            }
        }
        super::merge_lanes(&bv, &bi, a.len() - ra.len(), ra, rb)
    }

    pub fn minus_2(a: &[f32], b: &[f32], out: &mut [f32]) {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = x - 2.0 * y;
        }
    }

    pub fn le_mask(v: &[f32], t: f32) -> u32 {
        v.iter().enumerate().fold(0, |mask, (i, &x)| mask | (u32::from(x <= t) << i))
    }

    pub fn axpy_rows(x: &[(u32, f32)], offset: u32, mt: &[f32], out: &mut [f32]) {
        let cols = out.len();
        for &(p, v) in x {
            let row = &mt[(p - offset) as usize * cols..][..cols];
            for (o, r) in out.iter_mut().zip(row) {
                *o += v * r;
            }
        }
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
        // SAFETY: every load below is at i + 16 <= n, resp. i + 8 <= n, and
        // both slices hold at least n floats; unaligned loads need no alignment.
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

    /// Columns in tiles of 64 (eight registers), then of 8, then one by
    /// one: each tile stays in registers across all of x's coordinates.
    #[target_feature(enable = "avx2,fma")]
    pub fn axpy_rows_avx2(x: &[(u32, f32)], offset: u32, mt: &[f32], out: &mut [f32]) {
        let cols = out.len();
        let mut c0 = 0;
        while c0 + 64 <= cols {
            // SAFETY: c0 + 64 <= cols = out.len(), and each row
            // (p − offset)·cols .. + cols lies inside `mt` (checked by the caller).
            unsafe {
                let o = out.as_mut_ptr().add(c0);
                let mut acc = [_mm256_setzero_ps(); 8];
                for (t, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_loadu_ps(o.add(8 * t));
                }
                for &(p, v) in x {
                    let row = mt.as_ptr().add((p - offset) as usize * cols + c0);
                    let b = _mm256_set1_ps(v);
                    for (t, a) in acc.iter_mut().enumerate() {
                        *a = _mm256_fmadd_ps(b, _mm256_loadu_ps(row.add(8 * t)), *a);
                    }
                }
                for (t, a) in acc.iter().enumerate() {
                    _mm256_storeu_ps(o.add(8 * t), *a);
                }
            }
            c0 += 64;
        }
        while c0 + 8 <= cols {
            // SAFETY: as above, for a tile of 8.
            unsafe {
                let o = out.as_mut_ptr().add(c0);
                let mut a = _mm256_loadu_ps(o);
                for &(p, v) in x {
                    let row = mt.as_ptr().add((p - offset) as usize * cols + c0);
                    a = _mm256_fmadd_ps(_mm256_set1_ps(v), _mm256_loadu_ps(row), a);
                }
                _mm256_storeu_ps(o, a);
            }
            c0 += 8;
        }
        for c in c0..cols {
            for &(p, v) in x {
                out[c] += v * mt[(p - offset) as usize * cols + c];
            }
        }
    }
    /// Eight values a step; `a`, `b` and `out` of one length.
    #[target_feature(enable = "avx2,fma")]
    pub fn minus_2_avx2(a: &[f32], b: &[f32], out: &mut [f32]) {
        let n = out.len();
        let body = n / 8 * 8;
        let mut i = 0;
        // SAFETY: i + 8 <= body <= n, and the three slices hold n floats;
        // unaligned loads and stores.
        unsafe {
            while i < body {
                let y = _mm256_loadu_ps(b.as_ptr().add(i));
                let v = _mm256_sub_ps(_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_add_ps(y, y));
                _mm256_storeu_ps(out.as_mut_ptr().add(i), v);
                i += 8;
            }
        }
        super::portable::minus_2(&a[body..], &b[body..], &mut out[body..]);
    }

    /// One ordered, non-signalling compare and one movemask per eight.
    #[target_feature(enable = "avx2,fma")]
    pub fn le_mask_avx2(v: &[f32], t: f32) -> u32 {
        let body = v.len() / 8 * 8;
        let tv = _mm256_set1_ps(t);
        let mut mask = 0u32;
        for (c, chunk) in v[..body].chunks_exact(8).enumerate() {
            // SAFETY: `chunk` is 8 floats; an unaligned load.
            let x = unsafe { _mm256_loadu_ps(chunk.as_ptr()) };
            let le = _mm256_movemask_ps(_mm256_cmp_ps(x, tv, _CMP_LE_OQ)) as u32;
            mask |= le << (8 * c);
        }
        mask | (super::portable::le_mask(&v[body..], t) << body)
    }

    /// Eight lanes of running minima and their indices, in registers.
    #[target_feature(enable = "avx2,fma")]
    pub fn argmin_minus_2_avx2(a: &[f32], b: &[f32]) -> (usize, f32) {
        let n = a.len().min(b.len());
        let body = n / 8 * 8;
        let mut bv = _mm256_set1_ps(f32::INFINITY);
        let mut bi = _mm256_setzero_si256();
        let mut idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let (two, eight) = (_mm256_set1_ps(2.0), _mm256_set1_epi32(8));
        let mut i = 0;
        // SAFETY: i + 8 <= body <= n, both slices hold n floats; unaligned loads.
        unsafe {
            while i < body {
                let v = _mm256_fnmadd_ps(two, _mm256_loadu_ps(b.as_ptr().add(i)), _mm256_loadu_ps(a.as_ptr().add(i)));
                let lt = _mm256_cmp_ps(v, bv, _CMP_LT_OQ);
                bv = _mm256_blendv_ps(bv, v, lt);
                bi = _mm256_blendv_epi8(bi, idx, _mm256_castps_si256(lt));
                idx = _mm256_add_epi32(idx, eight);
                i += 8;
            }
        }
        let (mut lv, mut li) = ([0f32; 8], [0u32; 8]);
        // SAFETY: both arrays hold 8 lanes of 4 bytes.
        unsafe {
            _mm256_storeu_ps(lv.as_mut_ptr(), bv);
            _mm256_storeu_si256(li.as_mut_ptr().cast(), bi);
        }
        super::merge_lanes(&lv, &li, body, &a[body..n], &b[body..n])
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
            for cpu in Cpu::available() {
                prop_assert!((dot(cpu, &a, &b) as f64 - exact_dot).abs() < tol, "{:?}", cpu);
                prop_assert!((l2sq(cpu, &a, &b) as f64 - exact_l2).abs() < tol, "{:?}", cpu);
            }
        }
    }

    proptest! {
        #[test]
        fn axpy_kernels_agree(rows in 1usize..40, cols in 0usize..150, seed in 0u64..1000, density in 0u32..5) {
            let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let mut next = || {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            };
            let mt: Vec<f32> = (0..rows * cols).map(|_| next()).collect();
            // density/4 of the coordinates non-zero, roughly.
            let x: Vec<f32> = (0..rows).map(|_| { let v = next(); if (v + 2.0) < density as f32 { v } else { 0.0 } }).collect();
            let mut nz = Vec::new();
            crate::distance::nonzeros(&x, &mut nz);
            prop_assert!(nz.iter().all(|&(p, v)| x[p as usize] == v && v != 0.0));
            prop_assert_eq!(nz.len(), x.iter().filter(|&&v| v != 0.0).count());
            let start: Vec<f32> = (0..cols).map(|_| next()).collect();
            for cpu in Cpu::available() {
                let mut got = start.clone();
                axpy_rows(cpu, &nz, 0, &mt, &mut got);
                for c in 0..cols {
                    let exact: f64 = start[c] as f64 + (0..rows).map(|p| x[p] as f64 * mt[p * cols + c] as f64).sum::<f64>();
                    prop_assert!((got[c] as f64 - exact).abs() < 1e-4 * (1.0 + rows as f64), "{:?}", cpu);
                }
            }
        }
    }

    proptest! {
        /// Same bits from every kernel, NaN and infinities included, at
        /// every length up to 40 (body and tail).
        #[test]
        fn minus_2_and_le_mask_kernels_agree(v in proptest::collection::vec((prop_oneof![-4f32..4f32, Just(f32::NAN), Just(f32::INFINITY), Just(-0.0f32)], -4f32..4f32), 0..40), t in prop_oneof![-4f32..4f32, Just(f32::NAN), Just(f32::INFINITY)]) {
            let (a, b): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
            let want: Vec<u32> = a.iter().zip(&b).map(|(x, y)| (x - 2.0 * y).to_bits()).collect();
            let block = &a[..a.len().min(32)];
            let want_mask = block.iter().enumerate().filter(|(_, x)| **x <= t).fold(0u32, |m, (i, _)| m | 1 << i);
            for cpu in Cpu::available() {
                let mut got = vec![f32::NAN; a.len()];
                minus_2(cpu, &a, &b, &mut got);
                prop_assert_eq!(got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), want.clone(), "{:?}", cpu);
                prop_assert_eq!(le_mask(cpu, block, t), want_mask, "{:?}", cpu);
            }
        }
    }

    proptest! {
        #[test]
        fn argmin_minus_2_kernels_find_the_first_smallest(v in proptest::collection::vec(prop_oneof![0u8..6, Just(255u8)], 0..60)) {
            let v: Vec<f32> = v.into_iter().map(|x| if x == 255 { f32::NAN } else { x as f32 }).collect();
            // The first smallest, NaN never winning (checked against a plain
            // loop in `crate::distance`).
            let want = crate::distance::argmin(&v);
            let half: Vec<f32> = v.iter().map(|x| -x / 2.0).collect();
            let zero = vec![0f32; v.len()];
            for cpu in Cpu::available() {
                prop_assert_eq!(argmin_minus_2(cpu, &zero, &half), want, "{:?}", cpu);
            }
        }
    }
}
