//! Synthetic colour histograms for the scale run (`chromatica bench-scale`):
//! any number of 1152-d vectors, generated on demand and never all held in
//! memory.
//!
//! Each vector is a small synthetic "image": 64 pixels drawn from one of
//! [`PROTOTYPES`] palettes (1–5 sRGB colours with weights), shifted and
//! re-weighted per image, jittered per pixel, then put through the real
//! pipeline: [`histogram_of_pixels`] (tri-linear soft assignment into the
//! 8 × 12 × 12 Lab bins) and [`hellinger`]. So vectors are sparse,
//! non-negative and of unit L2 norm like the real ones, and images of one
//! palette cluster together, which gives k-means and IVF something to find.
//!
//! Vector `i` depends only on the seed and `i` (its own random stream), so a
//! batch can be generated in parallel and in any batch size, and the scale
//! run can be repeated exactly.

use chromatica::color::{hellinger, histogram_of_pixels, HIST_DIM};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Number of palettes images are drawn from.
pub const PROTOTYPES: usize = 2048;
/// Pixels per synthetic image.
const PIXELS: usize = 64;
/// Vectors at or above this index are queries: the same distribution, but
/// disjoint from any base vector (no base run comes close to 2⁶²).
pub const QUERY_START: u64 = 1 << 62;

struct Palette {
    /// sRGB colours (as f32 so that jitter can be added), their weights
    /// (summing to 1), and the per-pixel spread of this palette.
    colors: Vec<[f32; 3]>,
    weights: Vec<f32>,
    spread: f32,
}

pub struct Synth {
    seed: u64,
    palettes: Vec<Palette>,
}

/// SplitMix64: decorrelates the per-vector seeds `seed ⊕ f(i)`.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Standard normal deviates (Box–Muller; `rand` alone has no normal), both
/// of each pair used: the logarithm and cosine are most of the cost.
struct Normal {
    rng: ChaCha8Rng,
    spare: Option<f32>,
}

impl Normal {
    fn next(&mut self) -> f32 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u: f64 = 1.0 - self.rng.random::<f64>(); // (0, 1]: ln is finite
        let (s, c) = (std::f64::consts::TAU * self.rng.random::<f64>()).sin_cos();
        let r = (-2.0 * u.ln()).sqrt();
        self.spare = Some((r * s) as f32);
        (r * c) as f32
    }
}

impl Synth {
    pub fn new(seed: u64) -> Synth {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(seed));
        let palettes = (0..PROTOTYPES)
            .map(|_| {
                let count = rng.random_range(1..=5);
                let colors = (0..count).map(|_| std::array::from_fn(|_| rng.random_range(0.0..256.0f32))).collect();
                // Squared uniforms: usually one or two colours dominate.
                let raw: Vec<f32> = (0..count).map(|_| rng.random::<f32>().powi(2) + 0.02).collect();
                let sum: f32 = raw.iter().sum();
                Palette { colors, weights: raw.iter().map(|w| w / sum).collect(), spread: rng.random_range(3.0..20.0) }
            })
            .collect();
        Synth { seed, palettes }
    }

    /// Writes vector `i` into `out` (length [`HIST_DIM`]).
    pub fn vector(&self, i: u64, out: &mut [f32]) {
        let mut g = Normal { rng: ChaCha8Rng::seed_from_u64(mix(self.seed ^ mix(i))), spare: None };
        let p = &self.palettes[g.rng.random_range(0..self.palettes.len())];
        // This image's version of the palette: colours shifted, weights
        // re-balanced, as two photos of one scene differ.
        let colors: Vec<[f32; 3]> = p.colors.iter().map(|c| c.map(|v| v + 8.0 * g.next())).collect();
        let mut weights: Vec<f32> = p.weights.iter().map(|w| w * (0.4 * g.next()).exp()).collect();
        let total: f32 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        let pixels: Vec<[u8; 3]> = (0..PIXELS)
            .map(|_| {
                let mut pick: f32 = g.rng.random();
                let mut c = colors.len() - 1;
                for (j, w) in weights.iter().enumerate() {
                    if pick < *w {
                        c = j;
                        break;
                    }
                    pick -= w;
                }
                // `as u8` saturates, after the clamp it only truncates.
                colors[c].map(|v| (v + p.spread * g.next()).clamp(0.0, 255.0) as u8)
            })
            .collect();
        let mut h = histogram_of_pixels(pixels.into_iter());
        hellinger(&mut h);
        out.copy_from_slice(&h);
    }

    /// Vectors `start .. start + n` as one n × 1152 matrix, generated in
    /// parallel on the current rayon pool.
    pub fn batch(&self, start: u64, n: usize) -> Vec<f32> {
        let mut out = vec![0f32; n * HIST_DIM];
        out.par_chunks_exact_mut(HIST_DIM).enumerate().for_each(|(j, row)| self.vector(start + j as u64, row));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_depend_only_on_seed_and_index() {
        let a = Synth::new(7);
        let whole = a.batch(100, 6);
        // Another generator with the same seed, other batch boundaries.
        let b = Synth::new(7);
        let mut parts = b.batch(100, 2);
        parts.extend(b.batch(102, 4));
        assert_eq!(whole, parts);
        let mut one = vec![0f32; HIST_DIM];
        b.vector(103, &mut one);
        assert_eq!(&whole[3 * HIST_DIM..4 * HIST_DIM], &one[..]);
        // Another seed or another index gives another vector.
        Synth::new(8).vector(103, &mut one);
        assert_ne!(&whole[3 * HIST_DIM..4 * HIST_DIM], &one[..]);
        assert_ne!(&whole[..HIST_DIM], &whole[HIST_DIM..2 * HIST_DIM]);
    }

    #[test]
    fn vectors_are_sparse_non_negative_unit_histograms() {
        let s = Synth::new(1);
        for row in s.batch(0, 200).chunks_exact(HIST_DIM) {
            assert!(row.iter().all(|&x| x >= 0.0 && x.is_finite()));
            let norm: f32 = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
            // 64 pixels touch at most 8 bins each.
            let nz = row.iter().filter(|&&x| x > 0.0).count();
            assert!((8..=PIXELS * 8).contains(&nz), "{nz} non-zeros");
        }
    }

    #[test]
    fn images_of_one_palette_cluster() {
        // Many more vectors than palettes would be needed to see every
        // palette twice; instead, compare each vector's nearest neighbour
        // distance with its mean distance: clustered data has neighbours far
        // closer than average, uniform noise does not.
        let s = Synth::new(3);
        let n = 3000;
        let v = s.batch(0, n);
        let row = |i: usize| &v[i * HIST_DIM..(i + 1) * HIST_DIM];
        let d = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>();
        let (mut nearest, mut mean) = (0f64, 0f64);
        for i in 0..50 {
            let ds: Vec<f32> = (0..n).filter(|&j| j != i).map(|j| d(row(i), row(j))).collect();
            nearest += ds.iter().copied().fold(f32::INFINITY, f32::min) as f64;
            mean += ds.iter().map(|&x| x as f64).sum::<f64>() / ds.len() as f64;
        }
        assert!(nearest < 0.5 * mean, "nearest {nearest} vs mean {mean}");
    }
}
