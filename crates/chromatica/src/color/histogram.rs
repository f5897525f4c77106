//! The 8 × 12 × 12 CIE Lab colour histogram with tri-linear soft assignment.
//!
//! Per axis, with that axis's range `[min, max]` and `BINS` bins: `v` is
//! clamped to the range, `c = (v − min)/(max − min) · BINS`,
//! `i = min(floor(c), BINS − 2)`, `f = clamp(c − i, 0, 1)`; bin `i` gets
//! `1 − f` and bin `i + 1` gets `f`. The eight corner weights of a colour are
//! the products over the three axes; the flat index is `l·144 + a·12 + b`.
//! Out-of-range values are clamped, never rejected. This is `soft_hist` of
//! `shared/tools/make_dataset.py` exactly.

use super::lab::srgb_to_lab;

/// Bins along L\*.
pub const L_BINS: usize = 8;
/// Bins along a\*.
pub const A_BINS: usize = 12;
/// Bins along b\*.
pub const B_BINS: usize = 12;
/// Length of a histogram: `L_BINS · A_BINS · B_BINS`.
pub const HIST_DIM: usize = L_BINS * A_BINS * B_BINS;

/// L\* range of the histogram.
pub const L_RANGE: [f64; 2] = [0.0, 100.0];
/// a\* range of the histogram.
pub const A_RANGE: [f64; 2] = [-86.0, 98.0];
/// b\* range of the histogram.
pub const B_RANGE: [f64; 2] = [-108.0, 95.0];

const AXES: [([f64; 2], usize); 3] = [(L_RANGE, L_BINS), (A_RANGE, A_BINS), (B_RANGE, B_BINS)];

/// Lower bin and the fraction that goes to the bin above it, for one axis.
fn axis_split(v: f64, [min, max]: [f64; 2], bins: usize) -> (usize, f64) {
    // NaN (never produced from 8-bit sRGB) is treated as the range minimum.
    let v = if v.is_nan() { min } else { v.clamp(min, max) };
    let c = (v - min) / (max - min) * bins as f64;
    let i = (c.floor() as usize).min(bins - 2);
    let f = (c - i as f64).clamp(0.0, 1.0);
    (i, f)
}

/// Adds `weight` for one Lab colour, spread over its 8 neighbouring bins.
pub(crate) fn soft_assign(hist: &mut [f64; HIST_DIM], lab: [f64; 3], weight: f64) {
    let (il, fl) = axis_split(lab[0], AXES[0].0, AXES[0].1);
    let (ia, fa) = axis_split(lab[1], AXES[1].0, AXES[1].1);
    let (ib, fb) = axis_split(lab[2], AXES[2].0, AXES[2].1);
    for (dl, wl) in [(0, 1.0 - fl), (1, fl)] {
        for (da, wa) in [(0, 1.0 - fa), (1, fa)] {
            let row = (il + dl) * (A_BINS * B_BINS) + (ia + da) * B_BINS + ib;
            let w = weight * wl * wa;
            hist[row] += w * (1.0 - fb);
            hist[row + 1] += w * fb;
        }
    }
}

/// Divides by the sum so the histogram sums to 1; all zeros stay all zeros.
pub(crate) fn l1_normalised(hist: &[f64; HIST_DIM]) -> Vec<f32> {
    let sum: f64 = hist.iter().sum();
    if sum > 0.0 {
        hist.iter().map(|&v| (v / sum) as f32).collect()
    } else {
        vec![0.0; HIST_DIM]
    }
}

/// The L1-normalised 1152-bin soft histogram of 8-bit sRGB pixels (before
/// the Hellinger square root). An empty iterator gives all zeros, the only
/// case where the result does not sum to 1; `image_histogram` rejects
/// images without pixels before it gets here.
pub fn histogram_of_pixels(pixels: impl Iterator<Item = [u8; 3]>) -> Vec<f32> {
    let mut hist = [0.0f64; HIST_DIM];
    for rgb in pixels {
        soft_assign(&mut hist, srgb_to_lab(rgb), 1.0);
    }
    l1_normalised(&hist)
}

/// The Hellinger transform in place: every element becomes its square root,
/// so that L2 distance between transformed histograms is the Hellinger
/// distance. Negative or NaN elements, which no histogram holds, become 0.
pub fn hellinger(h: &mut [f32]) {
    for x in h {
        *x = x.max(0.0).sqrt();
    }
}

/// The Lab position each of the 1152 bins stands for, in flat-index order.
///
/// Along each axis, bin `i` sits at `min + i·(max − min)/BINS`: the one value
/// that soft assignment gives wholly to that bin, and the positions for which
/// the weighted mean of a single colour's bins gives back the colour (for
/// values below `max − (max − min)/BINS`; values above it all go to the last
/// bin). So L\* runs 0, 12.5, …, 87.5.
pub fn bin_centers_lab() -> Vec<[f64; 3]> {
    let node = |axis: usize, i: usize| {
        let ([min, max], bins) = AXES[axis];
        min + i as f64 * (max - min) / bins as f64
    };
    let mut out = Vec::with_capacity(HIST_DIM);
    for l in 0..L_BINS {
        for a in 0..A_BINS {
            for b in 0..B_BINS {
                out.push([node(0, l), node(1, a), node(2, b)]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(lab: [f64; 3]) -> [f64; HIST_DIM] {
        let mut h = [0.0; HIST_DIM];
        soft_assign(&mut h, lab, 1.0);
        h
    }

    #[test]
    fn axis_split_follows_the_definition() {
        // c = 0 -> bin 0 entirely; c = 3.25 -> bins 3/4 with 0.75/0.25.
        assert_eq!(axis_split(0.0, L_RANGE, 8), (0, 0.0));
        assert_eq!(axis_split(40.625, L_RANGE, 8), (3, 0.25));
        // The top of the range and beyond go wholly to the last bin.
        assert_eq!(axis_split(100.0, L_RANGE, 8), (6, 1.0));
        assert_eq!(axis_split(130.0, L_RANGE, 8), (6, 1.0));
        assert_eq!(axis_split(95.0, L_RANGE, 8), (6, 1.0));
        // Below the range: clamped to the minimum.
        assert_eq!(axis_split(-500.0, A_RANGE, 12), (0, 0.0));
        assert_eq!(axis_split(f64::NAN, B_RANGE, 12), (0, 0.0));
    }

    #[test]
    fn weights_are_products_and_sum_to_the_weight() {
        let lab = [40.625, -86.0 + 184.0 * 5.5 / 12.0, -108.0 + 203.0 * 0.1 / 12.0];
        let h = single(lab);
        let total: f64 = h.iter().sum();
        assert!((total - 1.0).abs() < 1e-12);
        let idx = |l: usize, a: usize, b: usize| l * 144 + a * 12 + b;
        assert!((h[idx(3, 5, 0)] - 0.75 * 0.5 * 0.9).abs() < 1e-9);
        assert!((h[idx(4, 6, 1)] - 0.25 * 0.5 * 0.1).abs() < 1e-9);
        assert_eq!(h.iter().filter(|&&v| v > 0.0).count(), 8);
    }

    #[test]
    fn bin_center_maps_wholly_to_its_bin() {
        for (k, c) in bin_centers_lab().into_iter().enumerate() {
            let h = single(c);
            assert!((h[k] - 1.0).abs() < 1e-9, "bin {k} at {c:?} got {}", h[k]);
        }
    }

    #[test]
    fn histogram_sums_to_one_and_empty_is_zero() {
        let h = histogram_of_pixels([[1, 2, 3], [200, 10, 90], [0, 255, 0]].into_iter());
        assert_eq!(h.len(), HIST_DIM);
        assert!((h.iter().map(|&v| v as f64).sum::<f64>() - 1.0).abs() < 1e-6);
        let e = histogram_of_pixels(std::iter::empty());
        assert!(e.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn hellinger_is_sqrt() {
        let mut h = vec![0.25, 0.0, 1.0, -1.0, f32::NAN];
        hellinger(&mut h);
        assert_eq!(h, vec![0.5, 0.0, 1.0, 0.0, 0.0]);
    }
}
