//! Brute-force answers to check search against: exact k nearest rows,
//! recall, the lists a query probes, and distances within a tolerance.

use crate::quantizer::Quantizers;
use crate::Neighbor;

/// A vector as the refine store gives it back: each value rounded to a
/// multiple of the vector's power-of-two scale (segment format version 2;
/// within max|x| / 32767 of the value written). Zeros stay zero.
pub fn as_stored(x: &[f32]) -> Vec<f32> {
    let (scale, q) = crate::format::segment::quantize(x.iter().copied());
    q.into_iter().map(|q| f32::from(q) * scale).collect()
}

/// Rows of `dim` values, each as the refine store keeps it
/// ([`as_stored`]): data that a refine index stores unchanged, so that a
/// stored vector searched for is at distance exactly 0.
pub fn stored_rows(data: &[f32], dim: usize) -> Vec<f32> {
    data.chunks_exact(dim).flat_map(as_stored).collect()
}

/// Squared L2 distance, summed in f64.
pub fn l2(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum()
}

/// Exact k nearest base rows (indices) of each query, ties by index.
pub fn exact_knn(base: &[f32], queries: &[f32], dim: usize, k: usize) -> Vec<Vec<u64>> {
    queries
        .chunks_exact(dim)
        .map(|q| {
            let mut d: Vec<(f64, u64)> =
                base.chunks_exact(dim).enumerate().map(|(i, x)| (l2(q, x), i as u64)).collect();
            d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            d.truncate(k);
            d.into_iter().map(|(_, i)| i).collect()
        })
        .collect()
}

/// Mean fraction of the true k nearest found among the first k results.
pub fn recall(results: &[Vec<Neighbor>], truth: &[Vec<u64>], k: usize) -> f64 {
    let mut hits = 0usize;
    for (r, t) in results.iter().zip(truth) {
        let t = &t[..k.min(t.len())];
        hits += r.iter().take(k).filter(|n| t.contains(&n.id)).count();
    }
    hits as f64 / (truth.len() * k) as f64
}

/// Results nearest first, distances finite and non-decreasing.
pub fn assert_sorted(results: &[Vec<Neighbor>]) {
    for r in results {
        for w in r.windows(2) {
            assert!(w[0].distance <= w[1].distance, "results not sorted: {:?} then {:?}", w[0], w[1]);
        }
        for n in r {
            assert!(n.distance.is_finite(), "non-finite distance {n:?}");
        }
    }
}

/// The `nprobe` lists search probes for x: (‖x − c_l‖², l), nearest first,
/// ties by list.
pub fn probed_lists(q: &Quantizers, x: &[f32], nprobe: usize) -> Vec<(f32, usize)> {
    let mut d: Vec<(f32, usize)> = (0..q.config.nlist).map(|l| (crate::distance::l2sq(x, q.centroid(l)), l)).collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    d.truncate(nprobe);
    d
}

/// How closely search must agree with a brute-force reference.
pub struct Tolerance {
    /// Relative tolerance of a returned distance against the reference.
    pub rel: f64,
    /// Relative tolerance within which two distances count as tied.
    pub tie: f64,
    /// Magnitude below which tolerances are taken relative to this instead.
    pub floor: f64,
    /// Also require the reference's id at each rank, except among ties.
    pub same_ids_by_rank: bool,
}

impl Tolerance {
    /// Whether `a` and `b` agree within `rel` (relative to the larger, or to
    /// `floor` when both are smaller).
    pub fn close(&self, a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(self.floor)
    }
}

/// One query's results against `all`, the reference distance of every
/// candidate (nearest first, ties by id): every returned id is a candidate
/// at its reference distance, rank by rank the distances are the
/// reference's k best, and the reference's k best are returned except among
/// distances tied at the cut.
pub fn assert_matches_reference(got: &[Neighbor], all: &[(f64, u64)], k: usize, tol: &Tolerance, ctx: &str) {
    let by_id: std::collections::HashMap<u64, f64> = all.iter().map(|&(d, id)| (id, d)).collect();
    assert_eq!(by_id.len(), all.len(), "{ctx}: an id is stored twice");
    let want = &all[..k.min(all.len())];
    assert_eq!(got.len(), want.len(), "{ctx}: result count");
    for (rank, n) in got.iter().enumerate() {
        let d = *by_id.get(&n.id).unwrap_or_else(|| panic!("{ctx}: id {} is not in the probed lists", n.id));
        assert!(
            tol.close(n.distance as f64, d, tol.rel),
            "{ctx} rank {rank}: id {} search says {} by hand {d}",
            n.id,
            n.distance
        );
        assert!(
            tol.close(n.distance as f64, want[rank].0, tol.rel),
            "{ctx} rank {rank}: distance {} vs {}",
            n.distance,
            want[rank].0
        );
    }
    let Some(&(kth, _)) = want.last() else { return };
    for &(d, id) in want {
        assert!(
            got.iter().any(|n| n.id == id) || tol.close(d, kth, tol.tie),
            "{ctx}: id {id} (distance {d}) missing; k-th distance {kth}"
        );
    }
    if tol.same_ids_by_rank {
        for (rank, n) in got.iter().enumerate() {
            assert!(
                n.id == want[rank].1 || tol.close(n.distance as f64, want[rank].0, tol.tie),
                "{ctx} rank {rank}: id {} vs {} without a tie",
                n.id,
                want[rank].1
            );
        }
    }
}
