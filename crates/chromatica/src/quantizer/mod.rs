//! The trained part of an index: the coarse quantizer (nlist centroids that
//! define the inverted lists) and the product quantizer that encodes each
//! vector's residual from its list centroid.
//!
//! # The distance search computes
//!
//! A stored vector y in list l is approximated by c + r, where c is the list
//! centroid and r = (q_1,k1, …, q_m,km) the concatenation of its PQ centroids.
//! For a query x,
//!
//! ```text
//! ‖x − c − r‖² = ‖x − c‖²  +  (‖r‖² + 2⟨c, r⟩)  −  2⟨x, r⟩
//!                 term 1        term 2              term 3
//! ```
//!
//! and because the sub-spaces are disjoint, terms 2 and 3 split into sums over
//! sub-quantizers j of per-centroid values:
//! - term 1 comes free from coarse quantization (the distance to each centroid);
//! - term 2, `‖q_jk‖² + 2⟨c_j, q_jk⟩`, depends on (list, j, k) only, not on the
//!   query: it is computed once at training time ([`Quantizers::term2`]) and
//!   stored in the quantizer file;
//! - term 3, `−2⟨x_j, q_jk⟩`, depends on (query, j, k) only: one table per query.
//!
//! So probing a list costs one table addition (m·ksub adds) instead of a table
//! built from scratch, and scanning a code is m look-ups and adds.
//! `crate::read::search` is the code that relies on this.

pub mod blocks;
pub mod codes;
pub mod kmeans;
pub mod pq;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::format::quantizer_file::{QuantizerData, TrainBaseline};
use kmeans::{KMeansBackend, KMeansParams, SparseRows};
use pq::ProductQuantizer;
use rayon::prelude::*;

/// Points per centroid below which faiss warns that training is poor.
pub const MIN_POINTS_PER_CENTROID: usize = 39;

/// Vectors encoded per batch (see [`Quantizers::query_tables`]).
const ENCODE_BATCH: usize = 128;

/// Below this fraction of non-zero coordinates, queries are searched and
/// training data clustered through their non-zeros.
const SPARSE_DENSITY: f64 = 0.25;

/// Whether `v` has few enough non-zero coordinates for the sparse paths.
pub(crate) fn is_sparse(v: &[f32]) -> bool {
    (v.iter().filter(|&&x| x != 0.0).count() as f64) < SPARSE_DENSITY * v.len() as f64
}

/// faiss's iteration count for the coarse quantizer of an IVF index.
pub const COARSE_NITER: usize = 10;

/// Training parameters; the defaults are faiss's.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Seeds every random choice: the same seed gives the same bits.
    pub seed: u64,
    /// Lloyd iterations of the coarse quantizer: 10, as faiss's IndexIVF
    /// (`Level1Quantizer` sets `cp.niter = 10`).
    pub coarse_niter: usize,
    /// Lloyd iterations of each PQ sub-quantizer: 25, faiss `Clustering`'s default.
    pub niter: usize,
    /// Cap on the training points sampled per centroid (faiss uses 256).
    pub max_points_per_centroid: usize,
    /// The k-means that trains the coarse quantizer and every PQ
    /// sub-quantizer.
    pub kmeans: KMeansBackend,
}

impl Default for TrainOptions {
    fn default() -> Self {
        let k = KMeansParams::default();
        TrainOptions {
            seed: k.seed,
            coarse_niter: COARSE_NITER,
            niter: k.niter,
            max_points_per_centroid: k.max_points_per_centroid,
            kmeans: k.backend,
        }
    }
}

/// What training reports besides the quantizers.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct TrainReport {
    /// Warnings about thin training data, one line each.
    pub warnings: Vec<String>,
    /// Training points actually used after sampling.
    pub train_points: usize,
    /// Mean squared distance of a training point to its coarse centroid.
    pub coarse_mse: f64,
    /// Mean squared distance of a training point to its reconstruction.
    pub reconstruction_mse: f64,
}

/// Steps of training, for progress display.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum TrainStep {
    /// Coarse k-means iteration `i` of `of` done.
    Coarse {
        /// Iterations done.
        i: usize,
        /// Iterations in all.
        of: usize,
    },
    /// Sub-quantizer `j` of `of` trained.
    Pq {
        /// Sub-quantizers done.
        j: usize,
        /// Sub-quantizers in all (`m`).
        of: usize,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Quantizers {
    pub config: Config,
    /// nlist × dim.
    pub coarse: Vec<f32>,
    pub pq: ProductQuantizer,
    /// nlist × m × ksub: term 2 of the decomposition above.
    pub term2: Vec<f32>,
    /// ‖c_l‖² per list, for term 1 by ‖x‖² + ‖c‖² − 2⟨x, c⟩.
    coarse_norms: Vec<f32>,
    /// The centroids transposed (dim × nlist), for ⟨x, c_l⟩ of a sparse x;
    /// made by the first search that needs it, so that open stays cheap.
    coarse_t: std::sync::OnceLock<Vec<f32>>,
    pub train_points: u64,
    pub seed: u64,
    /// How well they fitted their training points (stored with them).
    pub baseline: Option<TrainBaseline>,
}

impl Quantizers {
    /// Trains both quantizers on `data` (n × dim, already validated).
    pub fn train(
        config: &Config,
        data: &[f32],
        opts: &TrainOptions,
        progress: &mut dyn FnMut(TrainStep),
    ) -> Result<(Quantizers, TrainReport)> {
        let d = config.dim;
        let n = data.len() / d;
        let (nlist, ksub) = (config.nlist, config.ksub());
        for (k, what) in [(nlist, "coarse centroids (nlist)"), (ksub, "PQ centroids (2^nbits)")] {
            if n < k {
                return Err(Error::InvalidInput(format!(
                    "training needs at least as many points as {what}: {n} points for {k} centroids"
                )));
            }
        }
        let mut warnings = Vec::new();
        for (k, what) in [(nlist, "the coarse quantizer (nlist"), (ksub, "the product quantizer (2^nbits")] {
            let want = k * MIN_POINTS_PER_CENTROID;
            if n < want {
                warnings.push(format!(
                    "{n} training points are few for {what} = {k}): {want} ({MIN_POINTS_PER_CENTROID} per centroid) are recommended"
                ));
            }
        }
        let params = KMeansParams {
            niter: opts.niter,
            max_points_per_centroid: opts.max_points_per_centroid,
            seed: opts.seed,
            backend: opts.kmeans,
        };
        let coarse_params = KMeansParams { niter: opts.coarse_niter, ..params.clone() };
        let mut coarse_progress = |i| progress(TrainStep::Coarse { i, of: opts.coarse_niter });
        // The training points' non-zeros, found once for both quantizers.
        let points = is_sparse(data).then(|| SparseRows::of_points(data, d));
        let coarse = match &points {
            Some(p) => kmeans::kmeans_sparse(data, p, nlist, &coarse_params, &mut coarse_progress)?,
            None => kmeans::kmeans(data, d, nlist, &coarse_params, &mut coarse_progress)?,
        }
        .centroids;
        let (labels, dists) = assign(data, d, &coarse);
        let coarse_mse = dists.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let residuals = residuals(data, d, &coarse, &labels);
        let source = pq::Residuals { points: points.as_ref(), lists: &labels, coarse: &coarse };
        let pq = ProductQuantizer::train(config, &residuals, &source, &params, &mut |j| {
            progress(TrainStep::Pq { j, of: config.m })
        })?;
        let term2 = term2_table(config, &coarse, &pq);
        let mut q = Quantizers::new(*config, coarse, pq, term2, n as u64, opts.seed);
        // Reconstruction error, as faiss reports it: mean ‖x − (c + r)‖²,
        // with each point encoded exactly as `add` would encode it.
        let (lists, codes) = q.encode(data);
        let cs = config.code_size();
        let reconstruction_mse = (0..n)
            .into_par_iter()
            .map(|i| {
                let mut y = vec![0f32; d];
                q.decode(lists[i] as usize, &codes[i * cs..(i + 1) * cs], &mut y);
                crate::distance::l2sq(&data[i * d..(i + 1) * d], &y) as f64
            })
            .sum::<f64>()
            / n as f64;
        // The baseline health compares today's vectors with: the same
        // means, the scale of the data and how evenly the lists filled.
        let mean_norm = data.par_chunks(d).map(|x| crate::distance::norm_sq(x) as f64).sum::<f64>() / n as f64;
        q.baseline = Some(TrainBaseline {
            points: n as u64,
            coarse_error: coarse_mse,
            reconstruction_error: reconstruction_mse,
            mean_norm,
            imbalance: crate::report::imbalance_factor(&labels.iter().fold(vec![0u64; nlist], |mut n, &l| {
                n[l as usize] += 1;
                n
            })),
        });
        let report = TrainReport { warnings, train_points: n, coarse_mse, reconstruction_mse };
        Ok((q, report))
    }

    /// Quantizers made elsewhere (an import): `coarse` is nlist × dim,
    /// `codebooks` m × ksub × dsub; term 2 is computed here. Lengths and
    /// finiteness are checked.
    pub fn from_parts(
        config: &Config,
        coarse: Vec<f32>,
        codebooks: Vec<f32>,
        train_points: u64,
        seed: u64,
    ) -> Result<Quantizers> {
        config.validate()?;
        for (v, want, what) in [
            (&coarse, config.nlist * config.dim, "coarse centroids"),
            (&codebooks, config.ksub() * config.dim, "PQ centroids"),
        ] {
            if v.len() != want {
                return Err(Error::InvalidInput(format!("{} {what} values, expected {want}", v.len())));
            }
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(Error::InvalidInput(format!("{what}: value {i} is {}, not finite", v[i])));
            }
        }
        let pq = ProductQuantizer::from_parts(config, codebooks);
        let term2 = term2_table(config, &coarse, &pq);
        Ok(Quantizers::new(*config, coarse, pq, term2, train_points, seed))
    }

    /// Inverted list and PQ code of each vector of `data` (n × dim).
    ///
    /// The list is the one with the smallest term 1. With r = x − c the
    /// residual, ‖r_j − q_jk‖² = ‖r_j‖² + ‖q_jk‖² + 2⟨c_j, q_jk⟩ − 2⟨x_j, q_jk⟩
    /// = ‖r_j‖² + term 2 + term 3, and ‖r_j‖² does not depend on k: so the
    /// nearest PQ centroid in sub-space j is the smallest entry of row j of
    /// the very look-up table search builds for x and that list. Encoding
    /// thus needs no residuals and costs what a query's tables cost.
    pub fn encode(&self, data: &[f32]) -> (Vec<u32>, Vec<u8>) {
        let c = &self.config;
        let (d, nlist, m, ksub, cs) = (c.dim, c.nlist, c.m, c.ksub(), c.code_size());
        let n = data.len() / d;
        let (mut lists, mut codes) = (vec![0u32; n], vec![0u8; n * cs]);
        let init = || (Vec::new(), Vec::new(), Vec::new(), vec![0u32; m]);
        data.par_chunks(ENCODE_BATCH * d)
            .zip(lists.par_chunks_mut(ENCODE_BATCH))
            .zip(codes.par_chunks_mut(ENCODE_BATCH * cs))
            .for_each_init(init, |(nz, term1, ip, idx), ((xs, lists), codes)| {
                self.query_tables(xs, nz, term1, ip);
                for (i, (list, code)) in lists.iter_mut().zip(codes.chunks_exact_mut(cs)).enumerate() {
                    let l = crate::distance::argmin(&term1[i * nlist..(i + 1) * nlist]).0;
                    *list = l as u32;
                    let term2 = &self.term2[l * m * ksub..(l + 1) * m * ksub];
                    let ip = &ip[i * m * ksub..(i + 1) * m * ksub];
                    for (j, k) in idx.iter_mut().enumerate() {
                        let row = j * ksub..(j + 1) * ksub;
                        *k = crate::distance::argmin_minus_2(&term2[row.clone()], &ip[row]).0 as u32;
                    }
                    codes::pack(idx, c.nbits, code);
                }
            });
        (lists, codes)
    }

    /// The vector a (list, code) pair stands for: c_list + r.
    pub fn decode(&self, list: usize, code: &[u8], out: &mut [f32]) {
        let d = self.config.dim;
        self.pq.decode(code, out);
        for (o, c) in out.iter_mut().zip(&self.coarse[list * d..(list + 1) * d]) {
            *o += c;
        }
    }

    /// Centroid of list `l`.
    pub fn centroid(&self, l: usize) -> &[f32] {
        let d = self.config.dim;
        &self.coarse[l * d..(l + 1) * d]
    }

    /// The coarse centroids transposed (dim × nlist), made on first use.
    fn coarse_t(&self) -> &[f32] {
        self.coarse_t.get_or_init(|| {
            let (d, nlist) = (self.config.dim, self.config.nlist);
            let mut t = vec![0f32; self.coarse.len()];
            for (l, c) in self.coarse.chunks_exact(d).enumerate() {
                for (p, &v) in c.iter().enumerate() {
                    t[p * nlist + l] = v;
                }
            }
            t
        })
    }

    pub fn to_data(&self) -> QuantizerData {
        let c = &self.config;
        QuantizerData {
            dim: c.dim,
            nlist: c.nlist,
            m: c.m,
            nbits: c.nbits,
            train_points: self.train_points,
            seed: self.seed,
            coarse: self.coarse.clone(),
            codebooks: self.pq.centroids(),
            table: self.term2.clone(),
            baseline: self.baseline,
        }
    }

    pub fn from_data(config: &Config, q: QuantizerData) -> Quantizers {
        let pq = ProductQuantizer::from_parts(config, q.codebooks);
        let mut out = Quantizers::new(*config, q.coarse, pq, q.table, q.train_points, q.seed);
        out.baseline = q.baseline;
        out
    }

    fn new(
        config: Config,
        coarse: Vec<f32>,
        pq: ProductQuantizer,
        term2: Vec<f32>,
        train_points: u64,
        seed: u64,
    ) -> Self {
        let d = config.dim;
        let coarse_norms = coarse.chunks_exact(d).map(crate::distance::norm_sq).collect();
        Quantizers {
            config,
            coarse,
            coarse_t: Default::default(),
            pq,
            term2,
            coarse_norms,
            train_points,
            seed,
            baseline: None,
        }
    }

    /// The per-query parts of the decomposition for each row x of `queries`
    /// (nq × dim): term 1, ‖x − c_l‖² for every list, into `term1` (nq × nlist),
    /// and ⟨x_j, q_jk⟩ (term 3 without its factor −2) into `ip`
    /// (nq × m × ksub). Term 1 is computed as ‖x‖² + ‖c_l‖² − 2⟨x, c_l⟩.
    ///
    /// Sparse queries (colour histograms are about 94% zeros) go one at a
    /// time through the transposed centroids, one row per non-zero
    /// coordinate (`nz` is scratch). A dense batch goes through matrix
    /// products instead, so that each centroid is read from memory once per
    /// batch rather than once per query (the inputs, 1.6 MB at the default
    /// configuration, do not fit in a core's cache).
    pub fn query_tables(&self, queries: &[f32], nz: &mut Vec<(u32, f32)>, term1: &mut Vec<f32>, ip: &mut Vec<f32>) {
        let c = &self.config;
        let (d, nlist, m, ksub, dsub) = (c.dim, c.nlist, c.m, c.ksub(), c.dsub());
        let nq = queries.len() / d;
        term1.resize(nq * nlist, 0.0);
        ip.resize(nq * m * ksub, 0.0);
        if nq == 1 || is_sparse(queries) {
            for ((x, t1), ip) in
                queries.chunks_exact(d).zip(term1.chunks_exact_mut(nlist)).zip(ip.chunks_exact_mut(m * ksub))
            {
                crate::distance::nonzeros(x, nz);
                t1.fill(0.0);
                crate::distance::axpy_rows(nz, 0, self.coarse_t(), t1);
                let xn: f32 = nz.iter().map(|&(_, v)| v * v).sum();
                for (t, cn) in t1.iter_mut().zip(&self.coarse_norms) {
                    *t = (xn + cn - 2.0 * *t).max(0.0);
                }
                self.pq.inner_product_table(nz, ip);
            }
            return;
        }
        crate::distance::matmul_abt(queries, d, nq, d, &self.coarse, nlist, term1, nlist);
        for (x, row) in queries.chunks_exact(d).zip(term1.chunks_exact_mut(nlist)) {
            let xn = crate::distance::norm_sq(x);
            for (t, cn) in row.iter_mut().zip(&self.coarse_norms) {
                *t = (xn + cn - 2.0 * *t).max(0.0);
            }
        }
        for j in 0..m {
            crate::distance::matmul_atb(
                &queries[j * dsub..],
                d,
                nq,
                dsub,
                self.pq.codebook_t(j),
                ksub,
                &mut ip[j * ksub..],
                m * ksub,
            );
        }
    }

    /// Bytes of what the quantizer file stores, as held in memory:
    /// (centroids and codebooks, term 2).
    pub fn stored_bytes(&self) -> (usize, usize) {
        ((self.coarse.len() + self.pq.centroids_t.len()) * 4, self.term2.len() * 4)
    }

    /// Bytes held in memory only, derived from the file: the coarse
    /// centroids' norms and their transposed copy, counted whether or not a
    /// search has made it yet (a searching index holds it).
    pub fn derived_bytes(&self) -> usize {
        (self.coarse.len() + self.coarse_norms.len()) * 4
    }
}

/// Nearest coarse centroid of each row, and the squared distance to it.
fn assign(data: &[f32], d: usize, centroids: &[f32]) -> (Vec<u32>, Vec<f32>) {
    let n = data.len() / d;
    let (mut labels, mut dists) = (vec![0u32; n], vec![0f32; n]);
    kmeans::assign(data, d, centroids, &mut labels, &mut dists);
    (labels, dists)
}

/// x − c_label for each row.
fn residuals(data: &[f32], d: usize, centroids: &[f32], labels: &[u32]) -> Vec<f32> {
    let mut r = data.to_vec();
    r.par_chunks_mut(d).zip(labels.par_iter()).for_each(|(row, &l)| {
        let c = &centroids[l as usize * d..(l as usize + 1) * d];
        for (x, y) in row.iter_mut().zip(c) {
            *x -= y;
        }
    });
    r
}

/// Term 2 for every (list, j, k): ‖q_jk‖² + 2⟨c_l,j, q_jk⟩.
fn term2_table(config: &Config, coarse: &[f32], pq: &ProductQuantizer) -> Vec<f32> {
    let (d, m, ksub) = (config.dim, config.m, config.ksub());
    let norms = pq.centroid_norms();
    let mut table = vec![0f32; config.nlist * m * ksub];
    table.par_chunks_mut(m * ksub).enumerate().for_each(|(l, t)| {
        let mut nz = Vec::new();
        crate::distance::nonzeros(&coarse[l * d..(l + 1) * d], &mut nz);
        pq.inner_product_table(&nz, t);
        for (v, n) in t.iter_mut().zip(&norms) {
            *v = n + 2.0 * *v;
        }
    });
    table
}
