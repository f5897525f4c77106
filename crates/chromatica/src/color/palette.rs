//! Turning histograms back into colours a person can look at: the one
//! palette algorithm that the terminal, JSON and HTML output all show.

use super::histogram::{bin_centers_lab, HIST_DIM};
use super::lab::lab_to_srgb;

/// `"#rrggbb"`, lower case.
pub fn to_hex(rgb: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
}

/// One colour of a palette and the share of the histogram's mass it stands
/// for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DominantColor {
    /// sRGB, 8 bits per channel.
    pub rgb: [u8; 3],
    /// Fraction of the histogram's mass, in `(0, 1]`.
    pub share: f64,
}

impl DominantColor {
    /// `"#rrggbb"`.
    pub fn hex(&self) -> String {
        to_hex(self.rgb)
    }
}

/// Radius (CIE76 ΔE) of one palette colour. Soft assignment spreads a
/// colour over the 2 × 2 × 2 bins around it, at most one bin step apart on
/// each axis (12.5 L*, 15.3 a*, 16.9 b*: 26 along the diagonal).
pub const PALETTE_RADIUS: f64 = 27.0;

/// Palette colours holding less of the histogram than this are left out
/// (the first colour is always kept).
pub const PALETTE_MIN_SHARE: f64 = 0.02;

fn bin_centers() -> &'static [[f64; 3]] {
    static CENTERS: std::sync::OnceLock<Vec<[f64; 3]>> = std::sync::OnceLock::new();
    CENTERS.get_or_init(bin_centers_lab)
}

/// Up to `n` colours of an L1 histogram (as `image_histogram` gives,
/// before the Hellinger transform) with their shares, largest first.
///
/// The heaviest bin not yet taken gathers every untaken bin within
/// [`PALETTE_RADIUS`]; the colour is the mass-weighted mean of their Lab
/// centres ([`bin_centers_lab`]), which gives a single colour back exactly
/// (the inverse of the soft assignment) instead of once per bin it spreads
/// over. Colours under [`PALETTE_MIN_SHARE`] are dropped, except the
/// first; colours equal after conversion to sRGB are merged. Bins that are
/// zero, negative or NaN, and entries past [`HIST_DIM`], are ignored; a
/// histogram without mass gives no colours.
///
/// ```
/// use chromatica::color::{dominant_colors, histogram_of_pixels};
/// // Three quarters red, one quarter blue.
/// let pixels = [[230, 25, 75]; 3].into_iter().chain([[67, 99, 216]]);
/// let palette = dominant_colors(&histogram_of_pixels(pixels), 5);
/// assert_eq!(palette.len(), 2);
/// assert_eq!(palette[0].rgb, [230, 25, 75]);
/// assert!((palette[0].share - 0.75).abs() < 1e-6);
/// ```
pub fn dominant_colors(hist: &[f32], n: usize) -> Vec<DominantColor> {
    let centers = bin_centers();
    let mut bins: Vec<(usize, f64)> =
        hist.iter().take(HIST_DIM).enumerate().map(|(i, &v)| (i, f64::from(v))).filter(|&(_, w)| w > 0.0).collect();
    let total: f64 = bins.iter().map(|b| b.1).sum();
    if total <= 0.0 || !total.is_finite() {
        return Vec::new();
    }
    bins.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut taken = vec![false; bins.len()];
    let mut clusters: Vec<([f64; 3], f64)> = Vec::new();
    for s in 0..bins.len() {
        if taken[s] {
            continue;
        }
        let seed = centers[bins[s].0];
        let (mut sum, mut w) = ([0.0f64; 3], 0.0);
        for (j, &(k, wk)) in bins.iter().enumerate().skip(s) {
            let c = centers[k];
            if !taken[j] && (0..3).map(|i| (c[i] - seed[i]).powi(2)).sum::<f64>() <= PALETTE_RADIUS.powi(2) {
                taken[j] = true;
                (0..3).for_each(|i| sum[i] += wk * c[i]);
                w += wk;
            }
        }
        clusters.push((sum.map(|x| x / w), w / total));
    }
    clusters.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut out: Vec<DominantColor> = Vec::with_capacity(n);
    for (lab, share) in clusters {
        if out.len() >= n || (!out.is_empty() && share < PALETTE_MIN_SHARE) {
            break;
        }
        let rgb = lab_to_srgb(lab);
        match out.iter_mut().find(|c| c.rgb == rgb) {
            Some(o) => o.share += share,
            None => out.push(DominantColor { rgb, share }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::color::histogram_of_pixels;

    #[test]
    fn hex() {
        assert_eq!(to_hex([0xea, 0x6a, 0x01]), "#ea6a01");
        assert_eq!(to_hex([0, 0, 0]), "#000000");
        assert_eq!(to_hex([255, 255, 255]), "#ffffff");
    }

    #[test]
    fn a_single_colour_comes_back_exactly_once() {
        for rgb in [[230u8, 25, 75], [67, 99, 216], [128, 128, 128], [0, 206, 209]] {
            let got = dominant_colors(&histogram_of_pixels(std::iter::repeat_n(rgb, 10)), 5);
            assert_eq!(got.len(), 1, "{rgb:?}: {got:?}");
            assert_eq!(got[0].rgb, rgb);
            assert!((got[0].share - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn limits_small_shares_and_bad_bins() {
        let pixels = [[230u8, 25, 75]; 99].into_iter().chain([[67, 99, 216]]);
        let mut h = histogram_of_pixels(pixels);
        // 1% blue is under PALETTE_MIN_SHARE.
        assert_eq!(dominant_colors(&h, 5).len(), 1);
        h[0] = f32::NAN;
        h[1] = -1.0;
        assert_eq!(dominant_colors(&h, 5).len(), 1);
        assert!(dominant_colors(&h, 0).is_empty());
        assert!(dominant_colors(&[], 3).is_empty());
        assert!(dominant_colors(&[0.0; HIST_DIM], 3).is_empty());
        // Shares never exceed 1 in total.
        let all = dominant_colors(&[1.0; HIST_DIM], HIST_DIM);
        let total: f64 = all.iter().map(|c| c.share).sum();
        assert!(total <= 1.0 + 1e-9 && !all.is_empty());
    }
}
