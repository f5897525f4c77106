//! k-means clustering in the style of faiss `Clustering` (default settings):
//! optional subsampling to `k × max_points_per_centroid` points, random
//! initialisation from `k` distinct training points, Lloyd iterations, and
//! faiss's empty-cluster splitting.
//!
//! Everything is pure Rust. The hot loop, [`assign`], computes inner products
//! for blocks of rows with one `sgemm` ([`crate::distance::matmul_abt`]) and runs the blocks in
//! parallel with rayon. Results are bit-for-bit reproducible for a given seed
//! and input, whatever the number of threads: row blocks have a fixed size,
//! every centroid is accumulated in `f64` in increasing point order, and all
//! randomness comes from seeded ChaCha8 streams consumed sequentially.

use std::borrow::Cow;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::distance::norm_sq;
use crate::error::{Error, Result};

/// Rows per `sgemm` call and per rayon task in [`assign`]. Fixed, so the
/// arithmetic done for every row does not depend on the thread count.
const ASSIGN_BLOCK: usize = 256;

/// Relative perturbation applied when splitting a cluster (as faiss).
const SPLIT_EPS: f32 = 1.0 / 1024.0;

/// Which k-means implementation training runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KMeansBackend {
    /// This module's pure-Rust k-means: bit-for-bit reproducible.
    #[default]
    Native,
    /// faiss's `Clustering` (BLAS-backed, OpenMP threads) with the same
    /// niter, max_points_per_centroid and seed (its low 32 bits): its own
    /// subsampling, initialisation and splitting, so other centroids of a
    /// similar quality. Only with the `faiss` cargo feature.
    #[cfg(feature = "faiss")]
    Faiss,
}

/// Settings of [`kmeans`]. The defaults are those of faiss `Clustering`.
#[derive(Clone, Debug)]
pub struct KMeansParams {
    /// Number of Lloyd iterations.
    pub niter: usize,
    /// If there are more than `k × max_points_per_centroid` training points,
    /// a random subset of that many is used. Must be at least 1.
    pub max_points_per_centroid: usize,
    /// Seed of every random choice (subsampling, initialisation, splitting).
    pub seed: u64,
    pub backend: KMeansBackend,
}

impl Default for KMeansParams {
    /// `niter` 25, `max_points_per_centroid` 256, `seed` 1234 (faiss
    /// defaults), the native backend.
    fn default() -> Self {
        KMeansParams { niter: 25, max_points_per_centroid: 256, seed: 1234, backend: KMeansBackend::Native }
    }
}

/// Result of [`kmeans`]. The objective and the points used are for the
/// tests and benchmarks; training reads only the centroids.
#[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))]
pub struct KMeansOutput {
    /// `k × d` centroids, row-major: those after the last update.
    pub centroids: Vec<f32>,
    /// Per iteration: the sum over training points of the squared distance to
    /// the centroid they were assigned to at the start of that iteration.
    pub objective: Vec<f64>,
    /// Training points actually used after subsampling.
    pub n_used: usize,
}

/// Clusters `data` (n × d row-major) into k centroids.
///
/// Errors (`Error::InvalidInput` with a one-line message): `d == 0`,
/// `data.len()` not a multiple of `d`, `k == 0`, `n < k`
/// ("k-means needs at least {k} points, got {n}"), and
/// `params.max_points_per_centroid == 0`.
///
/// `progress(iteration_done)` is called after each iteration (1..=niter).
pub fn kmeans(
    data: &[f32],
    d: usize,
    k: usize,
    params: &KMeansParams,
    progress: &mut dyn FnMut(usize),
) -> Result<KMeansOutput> {
    run(data, d, k, params, progress, None)
}

/// [`kmeans`] over rows that are sparse vectors minus dense offsets
/// (`data` holds the same rows dense, as [`kmeans`] takes them): the
/// result is the same clustering, up to rounding, but the assignment step
/// costs the non-zeros of each row instead of its dimension.
pub fn kmeans_sparse(
    data: &[f32],
    sparse: &SparseRows,
    k: usize,
    params: &KMeansParams,
    progress: &mut dyn FnMut(usize),
) -> Result<KMeansOutput> {
    if sparse.lists.len() * sparse.d != data.len() || sparse.start.len() != sparse.lists.len() + 1 {
        return Err(Error::InvalidInput("k-means: the sparse rows do not match the data".into()));
    }
    run(data, sparse.d, k, params, progress, Some(sparse))
}

/// Rows of the form x_i − o_{g_i}: a sparse x_i (its non-zero coordinates
/// `nonzeros[start[i]..start[i + 1]]`) minus one of a few dense offsets
/// (`offsets`, groups × d, the one of row i being `lists[i]`). PQ training
/// rows are like this: each is a colour histogram (about 94% zeros) minus
/// its list's centroid; coarse training rows are the special case of one
/// offset, zero.
///
/// For a centroid q, ‖x − o − q‖² = ‖x − o‖² + (‖q‖² + 2⟨o, q⟩) − 2⟨x, q⟩:
/// the middle term is one small table per iteration (groups × k), and only
/// the last depends on the row, through x's non-zeros.
pub struct SparseRows {
    pub d: usize,
    pub nonzeros: Vec<(u32, f32)>,
    pub start: Vec<usize>,
    pub lists: Vec<u32>,
    pub offsets: Vec<f32>,
}

impl SparseRows {
    /// The rows of `data` (n × d) as they are: one group, offset zero.
    pub fn of_points(data: &[f32], d: usize) -> SparseRows {
        let mut nonzeros = Vec::new();
        let mut start = Vec::with_capacity(data.len() / d.max(1) + 1);
        start.push(0);
        for row in data.chunks_exact(d.max(1)) {
            nonzeros.extend(row.iter().enumerate().filter(|(_, &v)| v != 0.0).map(|(p, &v)| (p as u32, v)));
            start.push(nonzeros.len());
        }
        let n = start.len() - 1;
        SparseRows { d, nonzeros, start, lists: vec![0; n], offsets: vec![0.0; d] }
    }

    /// Columns `first..first + w` of these rows, each minus columns
    /// `first..first + w` of its list's row of `offsets` (groups × d): what
    /// PQ sub-space training clusters, read off the non-zeros already found
    /// rather than off the dense data again.
    pub fn columns(&self, first: usize, w: usize, lists: &[u32], offsets: &[f32]) -> SparseRows {
        let mut nonzeros = Vec::new();
        let mut start = Vec::with_capacity(self.start.len());
        start.push(0);
        for r in self.start.windows(2) {
            let row = &self.nonzeros[r[0]..r[1]];
            let a = row.partition_point(|&(p, _)| (p as usize) < first);
            let b = row.partition_point(|&(p, _)| (p as usize) < first + w);
            nonzeros.extend(row[a..b].iter().map(|&(p, v)| (p - first as u32, v)));
            start.push(nonzeros.len());
        }
        let offsets = offsets.chunks_exact(self.d).flat_map(|o| o[first..first + w].iter().copied()).collect();
        SparseRows { d: w, nonzeros, start, lists: lists.to_vec(), offsets }
    }

    /// Fraction of coordinates that are non-zero.
    pub fn density(&self) -> f64 {
        self.nonzeros.len() as f64 / (self.lists.len() * self.d).max(1) as f64
    }
}

fn run(
    data: &[f32],
    d: usize,
    k: usize,
    params: &KMeansParams,
    progress: &mut dyn FnMut(usize),
    sparse: Option<&SparseRows>,
) -> Result<KMeansOutput> {
    if d == 0 {
        return Err(Error::invalid_argument("d", "k-means: the dimension must be at least 1"));
    }
    if !data.len().is_multiple_of(d) {
        return Err(Error::InvalidInput(format!(
            "k-means: data length {} is not a multiple of the dimension {d}",
            data.len()
        )));
    }
    if k == 0 {
        return Err(Error::invalid_argument("k", "k-means: k must be at least 1"));
    }
    let n = data.len() / d;
    if n < k {
        return Err(Error::InvalidInput(format!("k-means needs at least {k} points, got {n}")));
    }
    if k > u32::MAX as usize {
        return Err(Error::invalid_argument("k", format!("k-means: k = {k} does not fit in 32 bits")));
    }
    if params.max_points_per_centroid == 0 {
        return Err(Error::invalid_argument(
            "max_points_per_centroid",
            "k-means: max_points_per_centroid must be at least 1",
        ));
    }

    #[cfg(feature = "faiss")]
    if params.backend == KMeansBackend::Faiss {
        return faiss_kmeans(data, d, k, params, progress);
    }

    // Subsample as faiss does: a random permutation, keep the first points,
    // in permutation order.
    let max_points = k.saturating_mul(params.max_points_per_centroid);
    let (x, rows): (Cow<'_, [f32]>, Option<Vec<usize>>) = if n > max_points {
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let perm = partial_permutation(n, max_points, &mut rng);
        let mut sub = Vec::with_capacity(max_points * d);
        for &i in &perm {
            sub.extend_from_slice(&data[i * d..(i + 1) * d]);
        }
        (Cow::Owned(sub), Some(perm))
    } else {
        (Cow::Borrowed(data), None)
    };
    let x = &*x;
    let n = x.len() / d;

    // Initialisation: k distinct training points (faiss seeds this with seed + 1).
    let mut centroids = {
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed.wrapping_add(1));
        let perm = partial_permutation(n, k, &mut rng);
        let mut c = Vec::with_capacity(k * d);
        for &i in &perm {
            c.extend_from_slice(&x[i * d..(i + 1) * d]);
        }
        c
    };

    // faiss uses a fixed seed for splitting; we derive it from the seed so
    // that `seed` governs every random choice.
    let mut split_rng = ChaCha8Rng::seed_from_u64(params.seed.wrapping_add(2));
    let mut labels = vec![0u32; n];
    let mut dists = vec![0f32; n];
    let mut objective = Vec::with_capacity(params.niter);
    let mut counts = vec![0f64; k];

    // ‖row‖² of each training row, for the sparse assignment's distances.
    let norms: Vec<f32> = if sparse.is_some() { x.chunks_exact(d).map(norm_sq).collect() } else { Vec::new() };
    for iter in 0..params.niter {
        match sparse {
            Some(sp) => assign_sparse(&norms, sp, rows.as_deref(), &centroids, &mut labels, &mut dists),
            None => assign(x, d, &centroids, &mut labels, &mut dists),
        }
        objective.push(dists.iter().map(|&v| v as f64).sum());
        compute_centroids(x, d, k, &labels, &mut centroids, &mut counts, sparse.map(|sp| (sp, rows.as_deref())));
        split_clusters(d, k, n, &mut centroids, &mut counts, &mut split_rng);
        progress(iter + 1);
    }

    Ok(KMeansOutput { centroids, objective, n_used: n })
}

/// [`kmeans`] by faiss's `Clustering` (arguments already checked).
#[cfg(feature = "faiss")]
fn faiss_kmeans(
    data: &[f32],
    d: usize,
    k: usize,
    params: &KMeansParams,
    progress: &mut dyn FnMut(usize),
) -> Result<KMeansOutput> {
    use faiss::cluster::{Clustering, ClusteringParameters};
    let fail = |e: faiss::error::Error| Error::InvalidInput(format!("faiss k-means: {e}"));
    let too_big = || Error::InvalidInput(format!("faiss k-means: d = {d} or k = {k} does not fit faiss's int"));
    let (d32, k32) = (u32::try_from(d).map_err(|_| too_big())?, u32::try_from(k).map_err(|_| too_big())?);
    if d32 > i32::MAX as u32 || k32 > i32::MAX as u32 {
        return Err(too_big());
    }
    let mut p = ClusteringParameters::new();
    p.set_niter(params.niter.min(i32::MAX as usize) as u32);
    p.set_max_points_per_centroid(params.max_points_per_centroid.min(i32::MAX as usize) as u32);
    p.set_seed(params.seed as u32);
    p.set_verbose(false);
    // faiss prints its own thin-data warning to stderr; training reports
    // ours (`TrainReport::warnings`) whatever the backend.
    p.set_min_points_per_centroid(1);
    let mut clustering = Clustering::new_with_params(d32, k32, &p).map_err(fail)?;
    let mut index = faiss::index::flat::FlatIndexImpl::new_l2(d32).map_err(fail)?;
    clustering.train(data, &mut index).map_err(fail)?;
    let centroids: Vec<f32> = clustering.centroids().map_err(fail)?.concat();
    if centroids.len() != k * d {
        return Err(Error::InvalidInput(format!("faiss k-means returned {} values for {k} × {d}", centroids.len())));
    }
    let objective = clustering.iteration_stats().iter().map(|s| s.obj() as f64).collect();
    progress(params.niter);
    let n = data.len() / d;
    Ok(KMeansOutput { centroids, objective, n_used: n.min(k.saturating_mul(params.max_points_per_centroid)) })
}

/// Nearest centroid (squared L2) of every row of `data`: writes the centroid
/// index to `labels` and the squared distance to `dists` (both of length n).
/// Ties go to the lowest index.
///
/// Multi-threaded over fixed-size blocks of rows; the result never depends on
/// the thread count. Uses `‖x−c‖² = ‖x‖² + ‖c‖² − 2⟨x,c⟩` with the inner
/// products of a block of rows against all centroids from one `sgemm`;
/// distances are clamped at 0. Panics if the lengths are inconsistent or if
/// there are no centroids (caller bugs).
pub fn assign(data: &[f32], d: usize, centroids: &[f32], labels: &mut [u32], dists: &mut [f32]) {
    assert!(d > 0, "assign: d must be positive");
    let n = labels.len();
    assert_eq!(data.len(), n * d, "assign: data length is not n × d");
    assert_eq!(dists.len(), n, "assign: dists length differs from labels length");
    assert!(
        !centroids.is_empty() && centroids.len().is_multiple_of(d),
        "assign: centroids length is not a positive multiple of d"
    );
    let k = centroids.len() / d;
    assert!(k <= u32::MAX as usize, "assign: too many centroids");
    if n == 0 {
        return;
    }
    let c_norms: Vec<f32> = centroids.chunks_exact(d).map(norm_sq).collect();

    data.par_chunks(ASSIGN_BLOCK * d)
        .zip(labels.par_chunks_mut(ASSIGN_BLOCK))
        .zip(dists.par_chunks_mut(ASSIGN_BLOCK))
        .for_each_init(
            || vec![0f32; ASSIGN_BLOCK * k],
            |ip, ((x, lab), dis)| {
                let m = lab.len();
                debug_assert_eq!(x.len(), m * d);
                debug_assert_eq!(dis.len(), m);
                let ip = &mut ip[..m * k];
                crate::distance::matmul_abt(x, d, m, d, centroids, k, ip, k);
                for (((row, ipr), l), out) in
                    x.chunks_exact(d).zip(ip.chunks_exact(k)).zip(lab.iter_mut()).zip(dis.iter_mut())
                {
                    // ‖x‖² is the same for every centroid: leave it out of the
                    // comparison (better precision) and add it at the end.
                    let (best, best_v) = crate::distance::argmin_minus_2(&c_norms, ipr);
                    *l = best as u32;
                    *out = (norm_sq(row) + best_v).max(0.0);
                }
            },
        );
}

/// [`assign`] for rows given as [`SparseRows`], with their squared norms
/// (`norms`; `rows` maps training rows to sparse rows after subsampling).
/// Same fixed blocks, so the result does not depend on the thread count
/// either.
fn assign_sparse(
    norms: &[f32],
    sp: &SparseRows,
    rows: Option<&[usize]>,
    centroids: &[f32],
    labels: &mut [u32],
    dists: &mut [f32],
) {
    let d = sp.d;
    let k = centroids.len() / d;
    let groups = sp.offsets.len() / d;
    // table[g][c] = ‖q_c‖² + 2⟨o_g, q_c⟩.
    let mut table = vec![0f32; groups * k];
    crate::distance::matmul_abt(&sp.offsets, d, groups, d, centroids, k, &mut table, k);
    let c_norms: Vec<f32> = centroids.chunks_exact(d).map(norm_sq).collect();
    for row in table.chunks_exact_mut(k) {
        for (t, cn) in row.iter_mut().zip(&c_norms) {
            *t = cn + 2.0 * *t;
        }
    }
    let mut transposed = vec![0f32; centroids.len()];
    for (c, q) in centroids.chunks_exact(d).enumerate() {
        for (p, &v) in q.iter().enumerate() {
            transposed[p * k + c] = v;
        }
    }
    norms
        .par_chunks(ASSIGN_BLOCK)
        .zip(labels.par_chunks_mut(ASSIGN_BLOCK))
        .zip(dists.par_chunks_mut(ASSIGN_BLOCK))
        .enumerate()
        .for_each_init(
            || vec![0f32; k],
            |ip, (b, ((norms, lab), dis))| {
                for (r, ((norm, l), out)) in norms.iter().zip(lab.iter_mut()).zip(dis.iter_mut()).enumerate() {
                    let i = b * ASSIGN_BLOCK + r;
                    let i = rows.map_or(i, |rows| rows[i]);
                    ip.fill(0.0);
                    crate::distance::axpy_rows(&sp.nonzeros[sp.start[i]..sp.start[i + 1]], 0, &transposed, ip);
                    let g = sp.lists[i] as usize;
                    let (best, best_v) = crate::distance::argmin_minus_2(&table[g * k..(g + 1) * k], ip);
                    *l = best as u32;
                    *out = (norm + best_v).max(0.0);
                }
            },
        );
}

/// Sets every non-empty centroid to the mean of its points and `counts[c]`
/// to its number of points. Empty centroids are left unchanged (they are
/// replaced by [`split_clusters`]). Each centroid is accumulated in `f64` in
/// increasing point order, so the result does not depend on the threads.
///
/// With `sparse`, a member's row is added as its non-zeros minus its offset,
/// and the offsets are added once per (centroid, group) with their counts:
/// the sum is the same, at the cost of the non-zeros.
fn compute_centroids(
    x: &[f32],
    d: usize,
    k: usize,
    labels: &[u32],
    centroids: &mut [f32],
    counts: &mut [f64],
    sparse: Option<(&SparseRows, Option<&[usize]>)>,
) {
    // Counting sort of the point indices by label (stable).
    let mut start = vec![0usize; k + 1];
    for &l in labels {
        start[l as usize + 1] += 1;
    }
    for c in 0..k {
        start[c + 1] += start[c];
    }
    let mut fill = start.clone();
    let mut order = vec![0usize; labels.len()];
    for (i, &l) in labels.iter().enumerate() {
        order[fill[l as usize]] = i;
        fill[l as usize] += 1;
    }
    for (c, cnt) in counts.iter_mut().enumerate() {
        *cnt = (start[c + 1] - start[c]) as f64;
    }

    centroids.par_chunks_mut(d).enumerate().for_each_init(
        || vec![0f64; d],
        |acc, (c, cent)| {
            let members = &order[start[c]..start[c + 1]];
            if members.is_empty() {
                return;
            }
            acc.fill(0.0);
            match sparse {
                None => {
                    for &i in members {
                        for (a, &v) in acc.iter_mut().zip(&x[i * d..(i + 1) * d]) {
                            *a += v as f64;
                        }
                    }
                }
                Some((sp, rows)) => {
                    let mut groups: Vec<u32> = Vec::with_capacity(members.len());
                    for &i in members {
                        let i = rows.map_or(i, |rows| rows[i]);
                        for &(p, v) in &sp.nonzeros[sp.start[i]..sp.start[i + 1]] {
                            acc[p as usize] += v as f64;
                        }
                        groups.push(sp.lists[i]);
                    }
                    groups.sort_unstable();
                    for run in groups.chunk_by(|a, b| a == b) {
                        let o = &sp.offsets[run[0] as usize * d..(run[0] as usize + 1) * d];
                        let times = run.len() as f64;
                        for (a, &v) in acc.iter_mut().zip(o) {
                            *a -= times * v as f64;
                        }
                    }
                }
            }
            let inv = 1.0 / members.len() as f64;
            for (o, &a) in cent.iter_mut().zip(acc.iter()) {
                *o = (a * inv) as f32;
            }
        },
    );
}

/// faiss `split_clusters`: every empty cluster `ci` takes over half of a
/// cluster `cj` picked with probability ∝ (size − 1) / (n − k), found by
/// walking cj = 0, 1, 2, … (mod k) and drawing a uniform float for each until
/// one is accepted. Both centroids are perturbed symmetrically by
/// `SPLIT_EPS`. Returns the number of splits.
fn split_clusters(
    d: usize,
    k: usize,
    n: usize,
    centroids: &mut [f32],
    counts: &mut [f64],
    rng: &mut ChaCha8Rng,
) -> usize {
    let mut nsplit = 0;
    for ci in 0..k {
        if counts[ci] != 0.0 {
            continue;
        }
        // Terminates: the other clusters hold n ≥ k points among at most
        // k − 1 of them, so one has more than one point and p > 0 (p = +∞
        // when n == k).
        let denom = (n - k) as f32;
        let mut cj = 0;
        loop {
            let p = (counts[cj] as f32 - 1.0) / denom;
            let r = rand_float(rng);
            if r < p {
                break;
            }
            cj = (cj + 1) % k;
        }
        let src = centroids[cj * d..(cj + 1) * d].to_vec();
        centroids[ci * d..(ci + 1) * d].copy_from_slice(&src);
        for j in 0..d {
            let (fi, fj) =
                if j % 2 == 0 { (1.0 + SPLIT_EPS, 1.0 - SPLIT_EPS) } else { (1.0 - SPLIT_EPS, 1.0 + SPLIT_EPS) };
            centroids[ci * d + j] *= fi;
            centroids[cj * d + j] *= fj;
        }
        counts[ci] = counts[cj] / 2.0;
        counts[cj] -= counts[ci];
        nsplit += 1;
    }
    nsplit
}

/// First `m` entries of a random permutation of `0..n` (forward
/// Fisher–Yates, as faiss `rand_perm`, stopped after `m` steps).
fn partial_permutation(n: usize, m: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let m = m.min(n);
    let mut perm: Vec<usize> = (0..n).collect();
    for i in 0..m {
        let j = i + rand_below(rng, n - i);
        perm.swap(i, j);
    }
    perm.truncate(m);
    perm
}

/// Uniform integer in `0..bound` (`bound > 0`) by multiply-shift of a 64-bit
/// draw; the bias (< bound / 2⁶⁴) is negligible. Written out so that the
/// stream depends only on ChaCha8, not on `rand`'s sampling algorithms.
fn rand_below(rng: &mut ChaCha8Rng, bound: usize) -> usize {
    ((rng.next_u64() as u128 * bound as u128) >> 64) as usize
}

/// Uniform float in `[0, 1)` with 24 random bits.
fn rand_float(rng: &mut ChaCha8Rng) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::l2sq;

    /// Reproducible test data: uniform in [-1, 1).
    fn random_data(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * d).map(|_| rand_float(&mut rng) * 2.0 - 1.0).collect()
    }

    /// Approximately standard normal (sum of 12 uniforms − 6).
    fn gauss(rng: &mut ChaCha8Rng) -> f32 {
        (0..12).map(|_| rand_float(rng)).sum::<f32>() - 6.0
    }

    fn run(data: &[f32], d: usize, k: usize, params: &KMeansParams) -> KMeansOutput {
        kmeans(data, d, k, params, &mut |_| {}).unwrap()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn separated_blobs_are_recovered() {
        let (nb, per, d) = (8usize, 100usize, 16usize);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        // Means far apart (spread 20 per coordinate), points with σ = 0.1.
        let means: Vec<f32> = (0..nb * d).map(|_| rand_float(&mut rng) * 40.0 - 20.0).collect();
        let mut data = Vec::with_capacity(nb * per * d);
        for b in 0..nb {
            for _ in 0..per {
                for j in 0..d {
                    data.push(means[b * d + j] + 0.1 * gauss(&mut rng));
                }
            }
        }
        let blob_of = |i: usize| i / per;
        // Plain Lloyd from a random start (faiss's method) stays in a local
        // minimum when two initial centroids fall in one blob. Pick the first
        // seed whose initial points hit all blobs, using the same stream as
        // `kmeans`, and check that the iterations then find the blobs.
        let seed = (0u64..20_000)
            .find(|&s| {
                let mut r = ChaCha8Rng::seed_from_u64(s.wrapping_add(1));
                let mut hit = [false; 8];
                for i in partial_permutation(nb * per, nb, &mut r) {
                    hit[blob_of(i)] = true;
                }
                hit.iter().all(|&h| h)
            })
            .expect("no seed in 0..20000 starts in every blob (about 1 in 400 should)");
        let params = KMeansParams { seed, ..Default::default() };
        let out = run(&data, d, nb, &params);
        assert_eq!(out.n_used, nb * per);
        assert_eq!(out.objective.len(), 25);

        let mut labels = vec![0u32; nb * per];
        let mut dists = vec![0f32; nb * per];
        assign(&data, d, &out.centroids, &mut labels, &mut dists);
        let mut cluster_of_blob = vec![u32::MAX; nb];
        for (i, &l) in labels.iter().enumerate() {
            let b = blob_of(i);
            if cluster_of_blob[b] == u32::MAX {
                cluster_of_blob[b] = l;
            }
            assert_eq!(cluster_of_blob[b], l, "blob {b} is split across clusters");
        }
        let mut seen = cluster_of_blob.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), nb, "two blobs share a cluster");
        for b in 0..nb {
            let c = cluster_of_blob[b] as usize;
            let dist = l2sq(&out.centroids[c * d..(c + 1) * d], &means[b * d..(b + 1) * d]).sqrt();
            // The sample mean of 100 points with σ = 0.1 in 16-d is ≈ 0.04 away.
            assert!(dist < 0.1, "centroid of blob {b} is {dist} from the true mean");
        }
    }

    #[test]
    fn assign_matches_brute_force() {
        // n not a multiple of the block size, d not a multiple of 8.
        for &(n, d, k) in &[(700usize, 37usize, 13usize), (300, 8, 1), (5, 3, 40)] {
            let data = random_data(n, d, 11);
            let cents = random_data(k, d, 12);
            let mut labels = vec![0u32; n];
            let mut dists = vec![0f32; n];
            assign(&data, d, &cents, &mut labels, &mut dists);
            for i in 0..n {
                let x = &data[i * d..(i + 1) * d];
                let all: Vec<f32> = cents.chunks_exact(d).map(|c| l2sq(x, c)).collect();
                let (bl, bd) = crate::distance::argmin(&all);
                let got = all[labels[i] as usize];
                if labels[i] as usize != bl {
                    // Only a (near-)tie may pick a different centroid.
                    assert!(
                        (got - bd).abs() <= 1e-5 * (1.0 + bd),
                        "row {i}: label {} ({got}) vs brute force {bl} ({bd})",
                        labels[i]
                    );
                }
                assert!(
                    (dists[i] - bd).abs() <= 1e-3 * bd.max(1e-3),
                    "row {i}: distance {} vs brute force {bd}",
                    dists[i]
                );
            }
        }
    }

    #[test]
    fn assign_ties_go_to_lowest_index() {
        let d = 4;
        let cents = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let data = [0.0f32; 4];
        let (mut l, mut dist) = ([9u32], [9f32]);
        assign(&data, d, &cents, &mut l, &mut dist);
        assert_eq!((l[0], dist[0]), (2, 0.0));
        let data = [1.0f32, 0.0, 0.0, 0.0];
        assign(&data, d, &cents, &mut l, &mut dist);
        assert_eq!((l[0], dist[0]), (0, 0.0));
    }

    #[test]
    fn objective_does_not_increase() {
        let (n, d, k) = (2000, 8, 16);
        let data = random_data(n, d, 3);
        let mut calls = Vec::new();
        let out = kmeans(&data, d, k, &KMeansParams::default(), &mut |i| calls.push(i)).unwrap();
        assert_eq!(calls, (1..=25).collect::<Vec<_>>());
        assert_eq!(out.objective.len(), 25);
        assert!(out.objective[24] < out.objective[0]);
        for w in out.objective.windows(2) {
            assert!(w[1] <= w[0] * (1.0 + 1e-6), "objective went up: {} -> {}", w[0], w[1]);
        }
        // One more Lloyd step cannot make things worse: the final centroids
        // (updated after the last recorded objective) do at least as well.
        let mut labels = vec![0u32; n];
        let mut dists = vec![0f32; n];
        assign(&data, d, &out.centroids, &mut labels, &mut dists);
        let final_obj: f64 = dists.iter().map(|&v| v as f64).sum();
        assert!(final_obj <= out.objective[24] * (1.0 + 1e-6));
    }

    #[test]
    fn deterministic_for_a_seed_and_thread_count() {
        let (n, d, k) = (1500, 20, 24);
        let data = random_data(n, d, 5);
        let params = KMeansParams { niter: 10, ..Default::default() };
        let a = run(&data, d, k, &params);
        let b = run(&data, d, k, &params);
        assert_eq!(bits(&a.centroids), bits(&b.centroids));
        assert_eq!(a.objective, b.objective);

        let in_pool = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| run(&data, d, k, &params))
        };
        let one = in_pool(1);
        let two = in_pool(2);
        assert_eq!(bits(&one.centroids), bits(&two.centroids));
        assert_eq!(bits(&one.centroids), bits(&a.centroids));
        assert_eq!(one.objective, two.objective);

        let other = run(&data, d, k, &KMeansParams { seed: 99, ..params.clone() });
        assert_ne!(bits(&other.centroids), bits(&a.centroids));
    }

    #[test]
    fn subsampling_limits_training_points() {
        let (n, d, k) = (100, 3, 5);
        let data = random_data(n, d, 8);
        let params = KMeansParams { max_points_per_centroid: 4, niter: 5, ..Default::default() };
        let out = run(&data, d, k, &params);
        assert_eq!(out.n_used, 20);
        assert_eq!(out.centroids.len(), k * d);
        // No subsampling at exactly the limit.
        let out = run(&data[..20 * d], d, k, &params);
        assert_eq!(out.n_used, 20);
        assert_eq!(run(&data, d, k, &KMeansParams::default()).n_used, n);
    }

    #[test]
    fn empty_clusters_are_split() {
        let d = 4;
        let points = [[1.0f32, 2.0, 3.0, 4.0], [-5.0, 0.5, 2.0, 1.0], [10.0, 10.0, -10.0, 3.0]];
        let mut data = Vec::new();
        for _ in 0..50 {
            for p in &points {
                data.extend_from_slice(p);
            }
        }
        let k = 5;
        let out = run(&data, d, k, &KMeansParams::default());
        assert_eq!(out.centroids.len(), k * d);
        assert!(out.centroids.iter().all(|v| v.is_finite()), "{:?}", out.centroids);
        // Every distinct point is (nearly) a centroid.
        for p in &points {
            let best = out.centroids.chunks_exact(d).map(|c| l2sq(c, p)).fold(f32::INFINITY, f32::min);
            assert!(best < 1e-2, "point {p:?} is {best} from the nearest centroid");
        }
        // And the clusters really are split: no two centroids are identical.
        for a in 0..k {
            for b in a + 1..k {
                assert!(out.centroids[a * d..(a + 1) * d] != out.centroids[b * d..(b + 1) * d]);
            }
        }
    }

    #[test]
    fn split_takes_half_of_a_large_cluster() {
        let d = 2;
        let mut cents = vec![1.0f32, 2.0, 0.0, 0.0, 3.0, 4.0];
        let mut counts = vec![10.0f64, 0.0, 1.0];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        // Cluster 2 (size 1) has probability 0: only cluster 0 can be split.
        assert_eq!(split_clusters(d, 3, 11, &mut cents, &mut counts, &mut rng), 1);
        assert_eq!(counts, vec![5.0, 5.0, 1.0]);
        let e = SPLIT_EPS;
        assert_eq!(&cents[..4], &[1.0 * (1.0 - e), 2.0 * (1.0 + e), 1.0 * (1.0 + e), 2.0 * (1.0 - e)]);
        assert_eq!(&cents[4..], &[3.0, 4.0]);
    }

    #[test]
    fn invalid_inputs_are_rejected() {
        let p = KMeansParams::default();
        let msg = |r: Result<KMeansOutput>| match r {
            Err(Error::InvalidInput(m)) => m,
            Err(Error::InvalidArgument { what, .. }) => what,
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("expected an error"),
        };
        let data = [0f32; 12];
        let arg = |r: Result<KMeansOutput>| match r {
            Err(Error::InvalidArgument { name, .. }) => name,
            other => panic!("expected an invalid argument, got {:?}", other.err()),
        };
        assert_eq!(arg(kmeans(&data, 0, 2, &p, &mut |_| {})), "d");
        assert_eq!(arg(kmeans(&data, 3, 0, &p, &mut |_| {})), "k");
        assert!(msg(kmeans(&data, 0, 2, &p, &mut |_| {})).contains("dimension must be at least 1"));
        assert!(
            msg(kmeans(&data, 5, 2, &p, &mut |_| {})).contains("data length 12 is not a multiple of the dimension 5")
        );
        assert!(msg(kmeans(&data, 3, 0, &p, &mut |_| {})).contains("k must be at least 1"));
        assert_eq!(msg(kmeans(&data, 3, 5, &p, &mut |_| {})), "k-means needs at least 5 points, got 4");
        assert_eq!(msg(kmeans(&[], 3, 1, &p, &mut |_| {})), "k-means needs at least 1 points, got 0");
        let p0 = KMeansParams { max_points_per_centroid: 0, ..Default::default() };
        assert!(msg(kmeans(&data, 3, 2, &p0, &mut |_| {})).contains("max_points_per_centroid"));
        // The Display form is one line.
        let e = kmeans(&data, 3, 5, &p, &mut |_| {}).err().unwrap().to_string();
        assert_eq!(e, "invalid input: k-means needs at least 5 points, got 4");
    }

    /// Throwaway timing at realistic sizes:
    /// `cargo test --release -- --ignored --nocapture timing`.
    #[test]
    #[ignore]
    fn timing() {
        for &(n, d, k) in &[(20_000usize, 1152usize, 100usize), (20_000, 144, 256)] {
            let data = random_data(n, d, 1);
            let t = std::time::Instant::now();
            let out = run(&data, d, k, &KMeansParams::default());
            eprintln!(
                "kmeans n={n} d={d} k={k} threads={}: {:.2} s (objective {:.1} -> {:.1})",
                rayon::current_num_threads(),
                t.elapsed().as_secs_f64(),
                out.objective[0],
                out.objective[24]
            );
            let mut labels = vec![0u32; n];
            let mut dists = vec![0f32; n];
            let t = std::time::Instant::now();
            for _ in 0..25 {
                assign(&data, d, &out.centroids, &mut labels, &mut dists);
            }
            eprintln!("  25 × assign alone: {:.2} s", t.elapsed().as_secs_f64());
        }
    }
}
