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
//! The block kernels (AVX2 and portable, computing the same sums and masks)
//! are in `crate::simd::fastscan`; [`FastScan::new`] takes the process's
//! `Cpu` token once, and every list it scans uses it.

use super::topk::TopK;
use crate::quantizer::blocks::{self, BLOCK};
use crate::simd::fastscan::block_sums;
use crate::simd::Cpu;

/// The quantized table of the list being probed, and scan buffers, reused
/// across the lists and queries one thread searches.
#[derive(Debug)]
pub struct FastScan {
    cpu: Cpu,
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
        FastScan::with_cpu(m, Cpu::get())
    }

    pub(crate) fn with_cpu(m: usize, cpu: Cpu) -> FastScan {
        let slots = m.div_ceil(2) * 2;
        FastScan {
            cpu,
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
        block_sums(self.cpu, codes, self.slots, &self.qlut, limit, &mut self.sums, &mut self.masks);
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
                let mut f = FastScan::with_cpu(m, Cpu::PORTABLE);
                f.prepare(&lut);
                let nb = n.div_ceil(BLOCK);
                for limit in [0, 100, 1000, u16::MAX] {
                    let outputs: Vec<_> = Cpu::available()
                        .into_iter()
                        .map(|cpu| {
                            let (mut sums, mut masks) = (vec![0; nb * BLOCK], vec![0; nb]);
                            block_sums(cpu, &bytes, f.slots, &f.qlut, limit, &mut sums, &mut masks);
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
        for cpu in Cpu::available() {
            for m in [1, 4, 7, 8, 16, 32, 64] {
                for (n, k) in [(1, 5), (31, 3), (32, 10), (33, 1), (200, 10), (500, 100), (97, 200)] {
                    for spread in [1.0, 1000.0, 1e-4] {
                        let (plain, lut) = case(&mut rng, m, n, spread);
                        let mut bytes = Vec::new();
                        blocks::to_blocks(&plain, m.div_ceil(2), &mut bytes);
                        let base = rng.unit() * spread;
                        let hidden = |i: usize| i % 7 == 3;
                        let want = reference(&plain, m, base, &lut, k, &hidden);
                        let mut f = FastScan::with_cpu(m, cpu);
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
                        assert_eq!(got, want, "{cpu:?} m {m} n {n} k {k} spread {spread}");
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
