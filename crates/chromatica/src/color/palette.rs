//! Turning histograms back into colours a person can look at.

use super::histogram::{bin_centers_lab, HIST_DIM};
use super::lab::lab_to_srgb;

/// `"#rrggbb"`, lower case.
pub fn to_hex(rgb: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
}

/// Up to `n` distinct colours for the heaviest bins of `hist` (a histogram,
/// Hellinger-transformed or not: the order is the same), heaviest first.
/// Each is the bin's centre ([`bin_centers_lab`]) converted to sRGB and
/// clamped into gamut; a bin whose colour equals one already listed is
/// skipped, as are bins that are zero, negative or NaN, and entries past
/// index [`HIST_DIM`]. Ties go to the lower bin index. So fewer than `n`
/// colours come back when the histogram has fewer distinct non-empty bins.
pub fn dominant_colors(hist: &[f32], n: usize) -> Vec<[u8; 3]> {
    let mut bins: Vec<(usize, f32)> =
        hist.iter().copied().enumerate().take(HIST_DIM).filter(|&(_, v)| v > 0.0).collect();
    bins.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let centers = bin_centers_lab();
    let mut out: Vec<[u8; 3]> = Vec::with_capacity(n.min(bins.len()));
    for (k, _) in bins {
        if out.len() >= n {
            break;
        }
        let rgb = lab_to_srgb(centers[k]);
        if !out.contains(&rgb) {
            out.push(rgb);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex() {
        assert_eq!(to_hex([0xea, 0x6a, 0x01]), "#ea6a01");
        assert_eq!(to_hex([0, 0, 0]), "#000000");
        assert_eq!(to_hex([255, 255, 255]), "#ffffff");
    }

    #[test]
    fn order_ties_and_limits() {
        let mut h = vec![0.0f32; HIST_DIM];
        let c = bin_centers_lab();
        // Three bins with distinct in-gamut greys (a = b = 0 is not a node,
        // so pick bins whose centres convert to different colours).
        let grey = |l: usize| l * 144 + 5 * 12 + 6;
        h[grey(2)] = 0.2;
        h[grey(5)] = 0.5;
        h[grey(3)] = 0.2;
        h[7] = f32::NAN;
        let got = dominant_colors(&h, 10);
        assert_eq!(got, vec![lab_to_srgb(c[grey(5)]), lab_to_srgb(c[grey(2)]), lab_to_srgb(c[grey(3)])]);
        assert_eq!(dominant_colors(&h, 1), vec![lab_to_srgb(c[grey(5)])]);
        assert!(dominant_colors(&h, 0).is_empty());
        assert!(dominant_colors(&[], 3).is_empty());
    }

    #[test]
    fn duplicates_after_gamut_clamping_are_skipped() {
        // Every bin at L = 0 with a and b at their minimum maps to black or
        // near it; with all bins equal the result must still be distinct.
        let h = vec![1.0f32; HIST_DIM];
        let got = dominant_colors(&h, HIST_DIM);
        let mut sorted = got.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), got.len());
        assert!(got.len() < HIST_DIM, "clamping must merge some bins");
    }
}
