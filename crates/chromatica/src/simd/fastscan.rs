//! The 4-bit fast-scan block kernel: for each block of 32 codes
//! (`crate::quantizer::blocks`), the 32 sums of one quantized table entry
//! per sub-quantizer, in u16, and a bit per vector whose sum is within a
//! limit. `crate::read::fastscan` quantizes the table and decides what the
//! sums filter; both kernels compute the same sums and masks, bit for bit.

use super::Cpu;
use crate::quantizer::blocks::BLOCK;

/// For every block of `codes`: the quantized sum of each of its 32 vectors
/// into `sums` (vector order), and into `masks` a bit per vector whose sum is
/// at most `limit`.
pub fn block_sums(cpu: Cpu, codes: &[u8], slots: usize, qlut: &[u8], limit: u16, sums: &mut [u16], masks: &mut [u32]) {
    let block_len = 16 * slots;
    assert!(
        qlut.len() == block_len && codes.len() == masks.len() * block_len && sums.len() == masks.len() * BLOCK,
        "fast-scan buffers disagree"
    );
    #[cfg(target_arch = "x86_64")]
    if cpu.avx2_fma {
        // SAFETY: a `Cpu` says AVX2 only when the CPU has it, and the lengths
        // the kernel's loads rely on were asserted above.
        return unsafe { x86::block_sums(codes, slots, qlut, limit, sums, masks) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = cpu;
    block_sums_portable(codes, slots, qlut, limit, sums, masks)
}

fn block_sums_portable(codes: &[u8], slots: usize, qlut: &[u8], limit: u16, sums: &mut [u16], masks: &mut [u32]) {
    for ((block, out), mask) in codes.chunks_exact(16 * slots).zip(sums.chunks_exact_mut(BLOCK)).zip(masks) {
        let mut acc = [0u16; BLOCK];
        for (run, row) in block.chunks_exact(16).zip(qlut.chunks_exact(16)) {
            for (i, &byte) in run.iter().enumerate() {
                // Byte i holds vector i/2 + 8·(i mod 2) low, that + 16 high.
                let v = i / 2 + 8 * (i % 2);
                acc[v] += row[(byte & 15) as usize] as u16;
                acc[v + 16] += row[(byte >> 4) as usize] as u16;
            }
        }
        out.copy_from_slice(&acc);
        *mask = acc.iter().enumerate().fold(0, |m, (v, &s)| m | u32::from(s <= limit) << v);
    }
}

/// Per pair of sub-quantizers: one 32-byte load of codes, low and high
/// nibbles looked up in the pair's two 16-byte tables (one per 128-bit
/// lane), and the looked-up bytes added as u16 — even and odd bytes into
/// separate accumulators. Folding the lanes adds the pair's two
/// sub-quantizers; the block layout makes the four accumulators hold
/// vectors 0–7, 8–15, 16–23 and 24–31. No sum can wrap: each entry is at
/// most 65535 / slots.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::BLOCK;
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2")]
    fn fold(a: __m256i) -> __m128i {
        _mm_add_epi16(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1))
    }

    /// 0xffff in each lane where `s ≤ limit` (unsigned).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn at_most(s: __m128i, limit: __m128i) -> __m128i {
        _mm_cmpeq_epi16(_mm_min_epu16(s, limit), s)
    }

    /// Callers guarantee `codes.len() == masks.len() · 16 · slots`,
    /// `qlut.len() == 16 · slots`, `sums.len() == masks.len() · 32` and an
    /// even `slots`.
    #[target_feature(enable = "avx2")]
    pub fn block_sums(codes: &[u8], slots: usize, qlut: &[u8], limit: u16, sums: &mut [u16], masks: &mut [u32]) {
        let block_len = 16 * slots;
        let nibble = _mm256_set1_epi8(0x0f);
        let even = _mm256_set1_epi16(0x00ff);
        let lim = _mm_set1_epi16(limit as i16);
        for (b, mask) in masks.iter_mut().enumerate() {
            let (mut a0, mut a1, mut a2, mut a3) =
                (_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256());
            for p in 0..slots / 2 {
                // SAFETY: bytes b·block_len + 32p .. + 32 lie in `codes` and
                // 32p .. 32p + 32 in `qlut` (p < slots / 2, the caller's
                // lengths); unaligned loads need no alignment.
                let (c, t) = unsafe {
                    (
                        _mm256_loadu_si256(codes.as_ptr().add(b * block_len + 32 * p) as *const __m256i),
                        _mm256_loadu_si256(qlut.as_ptr().add(32 * p) as *const __m256i),
                    )
                };
                let lo = _mm256_shuffle_epi8(t, _mm256_and_si256(c, nibble));
                let hi = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), nibble));
                a0 = _mm256_add_epi16(a0, _mm256_and_si256(lo, even));
                a1 = _mm256_add_epi16(a1, _mm256_srli_epi16(lo, 8));
                a2 = _mm256_add_epi16(a2, _mm256_and_si256(hi, even));
                a3 = _mm256_add_epi16(a3, _mm256_srli_epi16(hi, 8));
            }
            let (s0, s1, s2, s3) = (fold(a0), fold(a1), fold(a2), fold(a3));
            let out = sums[b * BLOCK..(b + 1) * BLOCK].as_mut_ptr() as *mut __m128i;
            // SAFETY: `out` points at 32 u16 (64 bytes) of `sums`: four
            // unaligned 16-byte stores.
            unsafe {
                _mm_storeu_si128(out, s0);
                _mm_storeu_si128(out.add(1), s1);
                _mm_storeu_si128(out.add(2), s2);
                _mm_storeu_si128(out.add(3), s3);
            }
            let m01 = _mm_movemask_epi8(_mm_packs_epi16(at_most(s0, lim), at_most(s1, lim))) as u32 & 0xffff;
            let m23 = _mm_movemask_epi8(_mm_packs_epi16(at_most(s2, lim), at_most(s3, lim))) as u32 & 0xffff;
            *mask = m01 | m23 << 16;
        }
    }
}
