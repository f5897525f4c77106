//! 4-bit fast-scan: the per-list scan of an index whose segments store
//! codes in blocks of 32 (`crate::quantizer::blocks`).
//!
//! For each probed list the float look-up table (term 2 + term 3, m rows of
//! 16) is quantized to bytes, as faiss does: row j loses its minimum b_j
//! (the per-row bias) and all rows share one scale s, chosen so that a sum
//! of one entry per row fits a u16 without overflow
//! (`s = min(255, 65535 / slots) / max_j span_j`). Entries are rounded
//! *down*, so for every vector the quantized sum Σ_j q_j never exceeds
//! s·(D − term 1 − Σ b_j), D its exact ADC distance. A vector can therefore
//! enter the top-k only if Σ q_j ≤ ⌊s·(threshold − term 1 − Σ b_j + ε)⌋, ε a
//! bound on float rounding: the kernel computes the 32 sums of a block with
//! two `vpshufb` look-ups per pair of sub-quantizers and u16 adds, and only
//! the vectors that pass get their exact distance computed from the float
//! table, in the same order as the plain scan. The quantization only
//! filters: results and distances are those of the plain 4-bit scan, bit
//! for bit.
//!
//! The AVX2 kernel is chosen at run time; the portable kernel computes the
//! same sums and masks (a test checks that they agree).

use super::topk::TopK;
use crate::quantizer::blocks::{self, BLOCK};

/// Which block kernel computes the quantized sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            return Kernel::Avx2;
        }
        Kernel::Portable
    }
}

/// The quantized table of the list being probed, and scan buffers, reused
/// across the lists and queries one thread searches.
#[derive(Debug)]
pub struct FastScan {
    kernel: Kernel,
    m: usize,
    /// Sub-code slots per code: m rounded up to even (2 × code size).
    slots: usize,
    /// slots × 16 quantized entries; the padding slot's row is zero.
    qlut: Vec<u8>,
    /// b_j: the minimum of each row.
    lows: Vec<f32>,
    /// Σ_j b_j.
    bias: f64,
    /// Quantized units per distance unit; 0 when the table cannot be
    /// quantized (flat or non-finite): then every vector passes.
    scale: f64,
    /// Σ_j max_k |table[j][k]|, for the rounding bound ε.
    magnitude: f64,
    sums: Vec<u16>,
    masks: Vec<u32>,
}

impl FastScan {
    pub fn new(m: usize) -> FastScan {
        FastScan::with_kernel(m, Kernel::detect())
    }

    pub fn with_kernel(m: usize, kernel: Kernel) -> FastScan {
        let slots = m.div_ceil(2) * 2;
        FastScan {
            kernel,
            m,
            slots,
            qlut: vec![0; slots * 16],
            lows: vec![0.0; m],
            bias: 0.0,
            scale: 0.0,
            magnitude: 0.0,
            sums: Vec::new(),
            masks: Vec::new(),
        }
    }

    /// Quantizes `lut` (m rows of 16 floats: the list's term 2 + term 3).
    pub fn prepare(&mut self, lut: &[f32]) {
        let rows = &lut[..self.m * 16];
        (self.bias, self.scale, self.magnitude) = (0.0, 0.0, 0.0);
        self.qlut.fill(0);
        let (mut span, mut finite) = (0f32, true);
        for (row, lo) in rows.chunks_exact(16).zip(&mut self.lows) {
            let (l, h) = row.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
            *lo = l;
            finite &= l.is_finite() && h.is_finite();
            self.bias += l as f64;
            self.magnitude += l.abs().max(h.abs()) as f64;
            span = span.max(h - l);
        }
        if !(finite && span > 0.0 && span.is_finite()) {
            (self.bias, self.magnitude) = (0.0, 0.0);
            return;
        }
        // The sum of one entry per slot stays within a u16.
        let qmax = (65_535 / self.slots).min(255) as f32;
        let scale = qmax / span;
        self.scale = scale as f64;
        for ((q, row), &lo) in self.qlut.chunks_exact_mut(16).zip(rows.chunks_exact(16)).zip(&self.lows) {
            for (q, &v) in q.iter_mut().zip(row) {
                // Non-negative, so truncation rounds down (`as` saturates).
                *q = ((v - lo) * scale).min(qmax) as u8;
            }
        }
    }

    /// The largest quantized sum that can still reach `threshold`, or
    /// `None` if no vector of the list can.
    fn limit(&self, base: f32, threshold: f32) -> Option<u16> {
        if self.scale == 0.0 || !threshold.is_finite() {
            return Some(u16::MAX);
        }
        // ε: the plain scan's f32 sum of m + 1 terms is within
        // (m + 1)·2⁻²⁴·Σ|terms| of the exact sum; doubled for safety. The
        // f32 arithmetic of `prepare` (three roundings per entry) can round an
        // entry up by qmax·3·2⁻²⁴ at most, under 0.012 units for a whole sum:
        // 0.05 units cover it.
        let eps = (self.m as f64 + 2.0) * f64::powi(2.0, -23) * (base.abs() as f64 + self.magnitude);
        let x = self.scale * (threshold as f64 - base as f64 - self.bias + eps) + 0.05;
        // NaN (an infinite term 1) filters nothing: the exact sums decide.
        if x.is_nan() || x >= u16::MAX as f64 {
            Some(u16::MAX)
        } else if x < 0.0 {
            None
        } else {
            Some(x as u16)
        }
    }

    /// Scans one list: `codes` holds the blocks of `n` vectors, `base` is
    /// term 1, `lut` the float table given to [`FastScan::prepare`]. Calls
    /// `offer(i, distance, top)` for each vector i that may enter `top`,
    /// with its exact ADC distance (the sum the plain scan computes).
    pub fn scan(
        &mut self,
        codes: &[u8],
        n: usize,
        base: f32,
        lut: &[f32],
        top: &mut TopK,
        mut offer: impl FnMut(usize, f32, &mut TopK),
    ) {
        let Some(mut limit) = self.limit(base, top.threshold()) else { return };
        let nblocks = n.div_ceil(BLOCK);
        let block_len = 16 * self.slots;
        let codes = &codes[..nblocks * block_len];
        self.sums.resize(nblocks * BLOCK, 0);
        self.masks.resize(nblocks, 0);
        block_sums(self.kernel, codes, self.slots, &self.qlut, limit, &mut self.sums, &mut self.masks);
        let lut = &lut[..self.m * 16];
        for (b, &mask) in self.masks.iter().enumerate() {
            let valid = if (b + 1) * BLOCK <= n { u32::MAX } else { (1u32 << (n % BLOCK)) - 1 };
            let mut mask = mask & valid;
            let block = &codes[b * block_len..(b + 1) * block_len];
            while mask != 0 {
                let v = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                let i = b * BLOCK + v;
                // The limit may have tightened since the kernel's mask.
                if self.sums[i] > limit {
                    continue;
                }
                let mut d = base;
                for (j, row) in lut.chunks_exact(16).enumerate() {
                    d += row[blocks::sub_code(block, v, j)];
                }
                let before = top.threshold();
                offer(i, d, top);
                if top.threshold() != before {
                    match self.limit(base, top.threshold()) {
                        Some(l) => limit = l,
                        None => return,
                    }
                }
            }
        }
    }
}

/// For every block of `codes`: the quantized sum of each of its 32 vectors
/// into `sums` (vector order), and into `masks` a bit per vector whose sum is
/// at most `limit`.
fn block_sums(
    kernel: Kernel,
    codes: &[u8],
    slots: usize,
    qlut: &[u8],
    limit: u16,
    sums: &mut [u16],
    masks: &mut [u32],
) {
    let block_len = 16 * slots;
    assert!(
        qlut.len() == block_len && codes.len() == masks.len() * block_len && sums.len() == masks.len() * BLOCK,
        "fast-scan buffers disagree"
    );
    match kernel {
        Kernel::Portable => block_sums_portable(codes, slots, qlut, limit, sums, masks),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => {
            // SAFETY: `Kernel::Avx2` exists only where the CPU has AVX2
            // (`Kernel::detect`, or a test that checked), and the lengths the
            // kernel's loads rely on were asserted above.
            unsafe { x86::block_sums(codes, slots, qlut, limit, sums, masks) }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantizer::codes;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.0 >> 11
        }
        fn unit(&mut self) -> f32 {
            (self.next() >> 29) as f32 / (1u64 << 24) as f32
        }
    }

    fn kernels() -> Vec<Kernel> {
        let mut k = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            k.push(Kernel::Avx2);
        }
        k
    }

    /// Random plain 4-bit codes of m sub-codes and a random table.
    fn case(rng: &mut Rng, m: usize, n: usize, spread: f32) -> (Vec<u8>, Vec<f32>) {
        let cs = m.div_ceil(2);
        let mut plain = vec![0u8; n * cs];
        let mut idx = vec![0u32; m];
        for code in plain.chunks_exact_mut(cs) {
            idx.iter_mut().for_each(|k| *k = (rng.next() % 16) as u32);
            codes::pack(&idx, 4, code);
        }
        let lut = (0..m * 16).map(|_| spread * (rng.unit() - 0.3)).collect();
        (plain, lut)
    }

    /// The plain scan: every vector's ADC sum offered in order.
    fn reference(
        plain: &[u8],
        m: usize,
        base: f32,
        lut: &[f32],
        k: usize,
        hidden: &dyn Fn(usize) -> bool,
    ) -> Vec<(f32, u64, u64)> {
        let mut top = TopK::new(k);
        let mut idx = vec![0u32; m];
        for (i, code) in plain.chunks_exact(m.div_ceil(2)).enumerate() {
            codes::unpack(code, 4, &mut idx);
            let mut d = base;
            for (j, &c) in idx.iter().enumerate() {
                d += lut[j * 16 + c as usize];
            }
            if d <= top.threshold() && !hidden(i) {
                top.push(d, i as u64, 0);
            }
        }
        top.into_sorted()
    }

    #[test]
    fn kernels_compute_the_same_sums_and_masks() {
        let mut rng = Rng(5);
        for m in [1, 2, 3, 8, 16, 31, 32, 64, 200, 300] {
            for n in [1, 31, 32, 33, 100] {
                let (plain, lut) = case(&mut rng, m, n, 10.0);
                let mut bytes = Vec::new();
                blocks::to_blocks(&plain, m.div_ceil(2), &mut bytes);
                let mut f = FastScan::with_kernel(m, Kernel::Portable);
                f.prepare(&lut);
                let nb = n.div_ceil(BLOCK);
                for limit in [0, 100, 1000, u16::MAX] {
                    let outputs: Vec<_> = kernels()
                        .into_iter()
                        .map(|kernel| {
                            let (mut sums, mut masks) = (vec![0; nb * BLOCK], vec![0; nb]);
                            block_sums(kernel, &bytes, f.slots, &f.qlut, limit, &mut sums, &mut masks);
                            (sums, masks)
                        })
                        .collect();
                    // Every kernel agrees, padding included...
                    assert!(outputs.iter().all(|o| o == &outputs[0]), "m {m} n {n} limit {limit}");
                    // ...and a sum is the quantized entries added up.
                    let (sums, masks) = &outputs[0];
                    for i in 0..n {
                        let block = &bytes[(i / BLOCK) * 16 * f.slots..];
                        let s: u32 =
                            (0..m).map(|j| f.qlut[16 * j + blocks::sub_code(block, i % BLOCK, j)] as u32).sum();
                        assert_eq!(sums[i] as u32, s, "m {m} n {n} vector {i}");
                        assert_eq!(masks[i / BLOCK] >> (i % BLOCK) & 1, u32::from(s <= limit as u32));
                    }
                }
            }
        }
    }

    #[test]
    fn scan_equals_the_plain_scan_bit_for_bit() {
        let mut rng = Rng(11);
        for kernel in kernels() {
            for m in [1, 4, 7, 8, 16, 32, 64] {
                for (n, k) in [(1, 5), (31, 3), (32, 10), (33, 1), (200, 10), (500, 100), (97, 200)] {
                    for spread in [1.0, 1000.0, 1e-4] {
                        let (plain, lut) = case(&mut rng, m, n, spread);
                        let mut bytes = Vec::new();
                        blocks::to_blocks(&plain, m.div_ceil(2), &mut bytes);
                        let base = rng.unit() * spread;
                        let hidden = |i: usize| i % 7 == 3;
                        let want = reference(&plain, m, base, &lut, k, &hidden);
                        let mut f = FastScan::with_kernel(m, kernel);
                        f.prepare(&lut);
                        let mut top = TopK::new(k);
                        let mut offered = 0;
                        f.scan(&bytes, n, base, &lut, &mut top, |i, d, top| {
                            offered += 1;
                            if d <= top.threshold() && !hidden(i) {
                                top.push(d, i as u64, 0);
                            }
                        });
                        let got = top.into_sorted();
                        assert_eq!(got, want, "{kernel:?} m {m} n {n} k {k} spread {spread}");
                        assert!(offered <= n);
                    }
                }
            }
        }
    }

    #[test]
    fn the_filter_skips_most_vectors_once_the_heap_is_full() {
        let mut rng = Rng(3);
        let (m, n) = (16, 4096);
        let (plain, lut) = case(&mut rng, m, n, 1.0);
        let mut bytes = Vec::new();
        blocks::to_blocks(&plain, m / 2, &mut bytes);
        let mut f = FastScan::new(m);
        f.prepare(&lut);
        let mut top = TopK::new(10);
        let mut offered = 0;
        f.scan(&bytes, n, 0.0, &lut, &mut top, |i, d, top| {
            offered += 1;
            if d <= top.threshold() {
                top.push(d, i as u64, 0);
            }
        });
        assert_eq!(top.into_sorted(), reference(&plain, m, 0.0, &lut, 10, &|_| false));
        assert!(offered < n / 4, "{offered} of {n} vectors passed the filter");
    }

    #[test]
    fn flat_and_non_finite_tables_let_everything_through() {
        for lut in [vec![0.5f32; 4 * 16], {
            let mut v = vec![1.0f32; 4 * 16];
            v[3] = f32::INFINITY;
            v
        }] {
            let mut f = FastScan::new(4);
            f.prepare(&lut);
            assert_eq!(f.limit(0.0, 1.0), Some(u16::MAX));
            assert!(f.qlut.iter().all(|&q| q == 0));
        }
        // A threshold below the smallest possible distance skips the list.
        let lut: Vec<f32> = (0..4 * 16).map(|i| (i % 16) as f32).collect();
        let mut f = FastScan::new(4);
        f.prepare(&lut);
        assert_eq!(f.limit(1.0, 0.5), None);
        assert_eq!(f.limit(1.0, 1.0), Some(0));
        assert_eq!(f.limit(0.0, f32::INFINITY), Some(u16::MAX));
        assert_eq!(f.limit(f32::INFINITY, 1.0), Some(u16::MAX));
    }
}
