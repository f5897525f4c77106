//! The stage-1 distance sums for byte-wide codes of 8 sub-codes (m 8,
//! nbits 8, the default shape): `d_i = base + Σ_j lut[j][code_i[j]]`, for a
//! block of codes of one list (see `crate::read::search::scan_u8`).
//!
//! The portable kernel is the reference and fixes the order of the adds,
//! four partial sums `a_r = (0 + l_r) + l_{r+4}` then
//! `base + ((a_0 + a_1) + (a_2 + a_3))`, so that every kernel returns the
//! same bits. The AVX2 kernel gathers the eight table entries of one code
//! in one instruction, in the lane order `l_0 l_4 l_1 l_5 l_2 l_6 l_3 l_7`,
//! so that two rounds of horizontal adds over eight codes form exactly
//! those partial sums, and a third adds the halves: eight distances from
//! eight gathers, where the portable loop makes 64 loads.

use super::Cpu;

/// Sub-codes per code.
pub const M: usize = 8;

/// `out[i] = base + Σ_j lut[j][codes[i][j]]` in the order stated above,
/// for a block of at most 32 codes (`out.len() == codes.len()`); returns
/// the mask of the sums within `threshold` (bit i set where `out[i] <=
/// threshold`, never for NaN): the few codes that may enter the top-k,
/// found by one compare per eight sums while they are still in registers.
#[inline]
pub fn sums8(cpu: Cpu, codes: &[[u8; M]], lut: &[[f32; 256]; M], base: f32, threshold: f32, out: &mut [f32]) -> u32 {
    assert!(codes.len() == out.len() && codes.len() <= 32, "a block of at most 32 codes");
    #[cfg(target_arch = "x86_64")]
    if cpu.avx2_fma {
        let whole = codes.len() / 8 * 8;
        // SAFETY: a `Cpu` says AVX2 only when the CPU has it.
        let mask = unsafe { x86::sums8(&codes[..whole], lut, base, threshold, &mut out[..whole]) };
        return mask | (portable(&codes[whole..], lut, base, threshold, &mut out[whole..]) << whole);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = cpu;
    portable(codes, lut, base, threshold, out)
}

/// The reference.
#[inline]
fn portable(codes: &[[u8; M]], lut: &[[f32; 256]; M], base: f32, threshold: f32, out: &mut [f32]) -> u32 {
    let mut mask = 0;
    for (i, (d, code)) in out.iter_mut().zip(codes).enumerate() {
        // Four independent partial sums: a single running sum would make
        // every add wait for the previous one.
        let mut acc = [0f32; 4];
        // One 8-byte load instead of eight: the loads are what the loop
        // runs out of first.
        let word = u64::from_le_bytes(*code);
        for (j, row) in lut.iter().enumerate() {
            acc[j % 4] += row[(word >> (8 * j)) as u8 as usize];
        }
        *d = base + ((acc[0] + acc[1]) + (acc[2] + acc[3]));
        mask |= u32::from(*d <= threshold) << i;
    }
    mask
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::M;
    use std::arch::x86_64::*;

    /// The eight table entries of one code, in the lane order
    /// `l_0 l_4 l_1 l_5 l_2 l_6 l_3 l_7`, each as `0 + l` (the portable
    /// sums start from 0, which turns −0 into +0).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn gather(code: &[u8; M], lut: &[[f32; 256]; M]) -> __m256 {
        // Lane p holds sub-code [0, 4, 1, 5, 2, 6, 3, 7][p], whose row starts
        // at that times 256.
        let order = _mm_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, -1, -1, -1, -1, -1, -1, -1, -1);
        let rows = _mm256_setr_epi32(0, 4 * 256, 256, 5 * 256, 2 * 256, 6 * 256, 3 * 256, 7 * 256);
        // SAFETY: `code` is 8 readable bytes (an unaligned 8-byte load);
        // each index is a byte (< 256) plus a row start (≤ 7 × 256), so
        // every gathered float lies inside the 8 × 256 of `lut`.
        let entries = unsafe {
            let bytes = _mm_shuffle_epi8(_mm_loadl_epi64(code.as_ptr().cast()), order);
            let idx = _mm256_add_epi32(_mm256_cvtepu8_epi32(bytes), rows);
            _mm256_i32gather_ps::<4>(lut.as_ptr().cast::<f32>(), idx)
        };
        _mm256_add_ps(_mm256_setzero_ps(), entries)
    }

    /// Eight codes at a time; `codes.len()` a multiple of 8, at most 32,
    /// and equal to `out.len()`.
    #[target_feature(enable = "avx2")]
    pub fn sums8(codes: &[[u8; M]], lut: &[[f32; 256]; M], base: f32, threshold: f32, out: &mut [f32]) -> u32 {
        let base = _mm256_set1_ps(base);
        let threshold = _mm256_set1_ps(threshold);
        let mut mask = 0u32;
        for (c, (codes, out)) in codes.chunks_exact(8).zip(out.chunks_exact_mut(8)).enumerate() {
            let mut v = [_mm256_setzero_ps(); 8];
            for (v, code) in v.iter_mut().zip(codes) {
                *v = gather(code, lut);
            }
            // [a0 a1 of v0, a0 a1 of v1 | a2 a3 of v0, a2 a3 of v1], … with
            // a_r = l_r + l_{r+4}.
            let h01 = _mm256_hadd_ps(v[0], v[1]);
            let h23 = _mm256_hadd_ps(v[2], v[3]);
            let h45 = _mm256_hadd_ps(v[4], v[5]);
            let h67 = _mm256_hadd_ps(v[6], v[7]);
            // [a0+a1 of v0..v3 | a2+a3 of v0..v3], and the same of v4..v7.
            let lo = _mm256_hadd_ps(h01, h23);
            let hi = _mm256_hadd_ps(h45, h67);
            let first = _mm256_permute2f128_ps::<0x20>(lo, hi);
            let second = _mm256_permute2f128_ps::<0x31>(lo, hi);
            let d = _mm256_add_ps(base, _mm256_add_ps(first, second));
            // SAFETY: `out` is 8 floats (chunks_exact_mut); an unaligned store.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), d) };
            // Ordered and non-signalling: NaN is never within.
            mask |= (_mm256_movemask_ps(_mm256_cmp_ps(d, threshold, _CMP_LE_OQ)) as u32) << (8 * c);
        }
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel this CPU runs gives the portable kernel's bits, on
    /// random tables (signed zeros, negative and large entries included) and
    /// every block length up to 32, and the masks for thresholds of ±∞, NaN
    /// and one inside the sums' range.
    #[test]
    fn kernels_agree_bit_for_bit() {
        let mut seed = 11u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as u32
        };
        for round in 0..50 {
            let mut lut = [[0f32; 256]; M];
            for row in lut.iter_mut() {
                for v in row.iter_mut() {
                    *v = match next() % 7 {
                        0 => -0.0,
                        1 => 0.0,
                        2 => (next() as f32) * 1e-3,
                        _ => (next() as f32 / u32::MAX as f32 - 0.5) * 8.0,
                    };
                }
            }
            let n = round % 33;
            let codes: Vec<[u8; M]> = (0..n).map(|_| std::array::from_fn(|_| next() as u8)).collect();
            let base = if round % 3 == 0 { -0.0 } else { next() as f32 * 1e-6 - 2.0 };
            let mut want = vec![0f32; n];
            let threshold = [f32::INFINITY, f32::NAN, f32::NEG_INFINITY, base][round % 4];
            let want_mask = portable(&codes, &lut, base, threshold, &mut want);
            // The mask is the plain compare of each sum.
            let plain = want.iter().enumerate().filter(|(_, d)| **d <= threshold).fold(0u32, |m, (i, _)| m | 1 << i);
            assert_eq!(want_mask, plain, "{n} codes");
            for cpu in Cpu::available() {
                let mut got = vec![f32::NAN; n];
                let mask = sums8(cpu, &codes, &lut, base, threshold, &mut got);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{cpu:?}, {n} codes");
                assert_eq!(mask, want_mask, "{cpu:?}, {n} codes");
            }
        }
    }
}
