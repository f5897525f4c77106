//! Spreading colours over neighbouring bins before the PQ scan (the Python
//! original's `fuzz`).
//!
//! Stage 1 ranks by L2 between Hellinger vectors, i.e. by the Bhattacharyya
//! overlap `Σ √(q_j h_j)`: a colour that falls in the bin next to the
//! query's scores as badly as one across the colour space, while the Earth
//! Mover's Distance scores it as near. Spreading each query mass over the
//! bins around it, with weights `exp(−ΔE² / 2σ²)`, makes the overlap grow
//! with Lab proximity, so the EMD-nearest images become candidates.

use super::histogram::{bin_centers_lab, l1_normalised, HIST_DIM};

/// Bins farther than this many σ get nothing (their weight is < 1.2e-4 of
/// the nearest's).
const CUTOFF_SIGMAS: f64 = 4.2;

/// The L1-normalised histogram of weighted Lab points, each point's weight
/// spread over the bin centres with Gaussian weights of standard deviation
/// `sigma` ΔE (normalised per point, so each keeps its share). A `sigma`
/// that is not finite and positive puts each point wholly on its nearest
/// bin centre. Points with a weight that is not finite and positive are
/// skipped; if none is left the result is all zeros.
pub fn spread_points(points: &[([f64; 3], f64)], sigma: f64) -> Vec<f32> {
    let centres = bin_centers_lab();
    let mut hist = [0.0f64; HIST_DIM];
    let mut one = [0.0f64; HIST_DIM];
    for &(x, w) in points {
        if !(w.is_finite() && w > 0.0) {
            continue;
        }
        let d2 = |c: &[f64; 3]| (0..3).map(|k| (c[k] - x[k]).powi(2)).sum::<f64>();
        if !(sigma.is_finite() && sigma > 0.0) {
            let near = (0..HIST_DIM).min_by(|&a, &b| d2(&centres[a]).total_cmp(&d2(&centres[b]))).expect("bins");
            hist[near] += w;
            continue;
        }
        let limit = (CUTOFF_SIGMAS * sigma).powi(2);
        let mut sum = 0.0;
        for (o, c) in one.iter_mut().zip(&centres) {
            let d = d2(c);
            *o = if d <= limit { (-d / (2.0 * sigma * sigma)).exp() } else { 0.0 };
            sum += *o;
        }
        if sum > 0.0 {
            for (h, o) in hist.iter_mut().zip(&one) {
                *h += w * o / sum;
            }
        } else {
            // Farther than the cut-off from every bin (far outside Lab).
            let near = (0..HIST_DIM).min_by(|&a, &b| d2(&centres[a]).total_cmp(&d2(&centres[b]))).expect("bins");
            hist[near] += w;
        }
    }
    l1_normalised(&hist)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_points_share_and_spreads_with_sigma() {
        let c = bin_centers_lab();
        let pts = [(c[500], 0.25), (c[900], 0.75)];
        let narrow = spread_points(&pts, 1.0);
        assert!((narrow[500] - 0.25).abs() < 1e-3 && (narrow[900] - 0.75).abs() < 1e-3);
        let wide = spread_points(&pts, 15.0);
        assert!((wide.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(wide[500] < 0.25 && wide[501] > 0.0, "{} {}", wide[500], wide[501]);
        let nearest = spread_points(&pts, 0.0);
        assert_eq!((nearest[500], nearest[900]), (0.25, 0.75));
        assert!(spread_points(&[(c[0], f64::NAN)], 5.0).iter().all(|&v| v == 0.0));
    }
}
