//! Shared helpers of the integration tests: deterministic data (no external
//! RNG crate), exact search, recall, and small file writers.

#![allow(dead_code)]

use chromatica::{Config, Metric, Neighbor};
use std::path::Path;

mod rng;
pub use rng::Rng;

/// A mixture of clusters, each a Gaussian spread along its own random
/// low-dimensional subspace plus a little isotropic noise: close to how real
/// descriptors (colour histograms) sit on low-dimensional manifolds, so that
/// nearest neighbours are meaningful and IVF recall depends on nprobe.
pub struct Clusters {
    pub dim: usize,
    pub latent: usize,
    /// count × dim.
    pub centers: Vec<f32>,
    /// count × dim × latent.
    pub bases: Vec<f32>,
    pub noise: f64,
}

impl Clusters {
    /// `count` centres with coordinates from N(0, 1); each cluster spreads
    /// with standard deviation about `spread` along a random `latent`-
    /// dimensional subspace, plus isotropic noise of deviation `noise`.
    pub fn new(dim: usize, count: usize, latent: usize, spread: f64, noise: f64, seed: u64) -> Clusters {
        let mut rng = Rng::new(seed);
        let centers = (0..dim * count).map(|_| rng.normal() as f32).collect();
        let scale = spread / (latent as f64).sqrt();
        let bases = (0..dim * count * latent).map(|_| (rng.normal() * scale) as f32).collect();
        Clusters { dim, latent, centers, bases, noise }
    }

    pub fn count(&self) -> usize {
        self.centers.len() / self.dim
    }

    /// `n` points (n × dim, row-major), each from a random cluster.
    pub fn sample(&self, n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let mut out = Vec::with_capacity(n * self.dim);
        let mut z = vec![0f64; self.latent];
        for _ in 0..n {
            let c = rng.below(self.count());
            z.iter_mut().for_each(|v| *v = rng.normal());
            for j in 0..self.dim {
                let b = &self.bases[(c * self.dim + j) * self.latent..][..self.latent];
                let along: f64 = b.iter().zip(&z).map(|(b, z)| *b as f64 * z).sum();
                out.push((self.centers[c * self.dim + j] as f64 + along + self.noise * rng.normal()) as f32);
            }
        }
        out
    }
}

/// The default test data: `n` points from 40 clusters of latent dimension 4
/// (the structure depends only on `dim`; `seed` picks the points).
pub fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    Clusters::new(dim, 40, 4.min(dim), 1.0, 0.05, 1000 + dim as u64).sample(n, seed)
}

pub fn config(dim: usize, nlist: usize, m: usize, nbits: usize, nprobe: usize) -> Config {
    Config { dim, nlist, m, nbits, nprobe, metric: Metric::L2, refine: false, auto_train: false, fast_scan: false }
}

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

/// Writes a 1-D little-endian int64 `.npy` file (NumPy format 1.0).
pub fn write_npy_i64(path: &Path, ids: &[i64]) {
    let dict = format!("{{'descr': '<i8', 'fortran_order': False, 'shape': ({},), }}", ids.len());
    let total = (10 + dict.len() + 1).div_ceil(64) * 64;
    let mut b = Vec::with_capacity(total + ids.len() * 8);
    b.extend_from_slice(b"\x93NUMPY\x01\x00");
    b.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    b.extend_from_slice(dict.as_bytes());
    b.resize(total - 1, b' ');
    b.push(b'\n');
    for id in ids {
        b.extend_from_slice(&id.to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

/// Parses an `.ivecs` file of rows of equal width: (rows, width, values).
pub fn read_ivecs(path: &Path) -> (usize, usize, Vec<i32>) {
    let b = std::fs::read(path).unwrap();
    let mut vals = Vec::new();
    let mut rest = &b[..];
    let mut width = None;
    let mut rows = 0;
    while !rest.is_empty() {
        let w = i32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        assert_eq!(*width.get_or_insert(w), w, "ragged .ivecs");
        for c in rest[4..4 + 4 * w].chunks_exact(4) {
            vals.push(i32::from_le_bytes(c.try_into().unwrap()));
        }
        rest = &rest[4 + 4 * w..];
        rows += 1;
    }
    (rows, width.unwrap_or(0), vals)
}

/// Names and contents of the files directly inside `dir`.
pub fn dir_contents(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let bytes = if e.path().is_file() { std::fs::read(e.path()).unwrap() } else { Vec::new() };
            (name, bytes)
        })
        .collect()
}

/// The `nprobe` lists search probes for x: (‖x − c_l‖², l), nearest first,
/// ties by list.
pub fn probed_lists(q: &chromatica::quantizer::Quantizers, x: &[f32], nprobe: usize) -> Vec<(f32, usize)> {
    let mut d: Vec<(f32, usize)> =
        (0..q.config.nlist).map(|l| (chromatica::distance::l2sq(x, q.centroid(l)), l)).collect();
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
