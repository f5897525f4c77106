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
pub mod pq;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::format::quantizer_file::QuantizerData;
use crate::kmeans::{self, KMeansParams};
use pq::ProductQuantizer;
use rayon::prelude::*;

/// Points per centroid below which faiss warns that training is poor.
pub const MIN_POINTS_PER_CENTROID: usize = 39;

/// Training parameters; the defaults are faiss's.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Seeds every random choice: the same seed gives the same bits.
    pub seed: u64,
    pub niter: usize,
    pub max_points_per_centroid: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        let k = KMeansParams::default();
        TrainOptions { seed: k.seed, niter: k.niter, max_points_per_centroid: k.max_points_per_centroid }
    }
}

/// What training reports besides the quantizers.
#[derive(Clone, Debug, Default)]
pub struct TrainReport {
    /// Warnings about thin training data, one line each.
    pub warnings: Vec<String>,
    pub train_points: usize,
    /// Mean squared distance of a training point to its coarse centroid.
    pub coarse_mse: f64,
    /// Mean squared distance of a training point to its reconstruction.
    pub reconstruction_mse: f64,
}

/// Steps of training, for progress display.
#[derive(Clone, Copy, Debug)]
pub enum TrainStep {
    /// Coarse k-means iteration `i` of `of` done.
    Coarse { i: usize, of: usize },
    /// Sub-quantizer `j` of `of` trained.
    Pq { j: usize, of: usize },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Quantizers {
    pub config: Config,
    /// nlist × dim.
    pub coarse: Vec<f32>,
    pub pq: ProductQuantizer,
    /// nlist × m × ksub: term 2 of the decomposition above.
    pub term2: Vec<f32>,
    pub train_points: u64,
    pub seed: u64,
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
        let params =
            KMeansParams { niter: opts.niter, max_points_per_centroid: opts.max_points_per_centroid, seed: opts.seed };
        let coarse =
            kmeans::kmeans(data, d, nlist, &params, &mut |i| progress(TrainStep::Coarse { i, of: params.niter }))?
                .centroids;
        let (labels, dists) = assign(data, d, &coarse);
        let coarse_mse = dists.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let residuals = residuals(data, d, &coarse, &labels);
        let pq =
            ProductQuantizer::train(config, &residuals, &params, &mut |j| progress(TrainStep::Pq { j, of: config.m }))?;
        let term2 = term2_table(config, &coarse, &pq);
        let q = Quantizers { config: *config, coarse, pq, term2, train_points: n as u64, seed: opts.seed };
        // Reconstruction error, as faiss reports it: mean ‖x − (c + r)‖².
        let mut codes = vec![0u8; n * config.code_size()];
        q.pq.encode_batch(&residuals, &mut codes);
        let reconstruction_mse = (0..n)
            .into_par_iter()
            .map(|i| {
                let mut y = vec![0f32; d];
                q.decode(labels[i] as usize, &codes[i * config.code_size()..(i + 1) * config.code_size()], &mut y);
                crate::distance::l2sq(&data[i * d..(i + 1) * d], &y) as f64
            })
            .sum::<f64>()
            / n as f64;
        let report = TrainReport { warnings, train_points: n, coarse_mse, reconstruction_mse };
        Ok((q, report))
    }

    /// Inverted list and PQ code of each vector of `data` (n × dim).
    pub fn encode(&self, data: &[f32]) -> (Vec<u32>, Vec<u8>) {
        let d = self.config.dim;
        let (labels, _) = assign(data, d, &self.coarse);
        let residuals = residuals(data, d, &self.coarse, &labels);
        let mut codes = vec![0u8; labels.len() * self.config.code_size()];
        self.pq.encode_batch(&residuals, &mut codes);
        (labels, codes)
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
            codebooks: self.pq.centroids.clone(),
            table: self.term2.clone(),
        }
    }

    pub fn from_data(config: &Config, q: QuantizerData) -> Quantizers {
        Quantizers {
            config: *config,
            pq: ProductQuantizer::from_parts(config, q.codebooks),
            coarse: q.coarse,
            term2: q.table,
            train_points: q.train_points,
            seed: q.seed,
        }
    }

    /// Bytes of the quantizers kept in memory: centroids, codebooks, term 2.
    pub fn resident_bytes(&self) -> (usize, usize) {
        ((self.coarse.len() + self.pq.centroids.len()) * 4, self.term2.len() * 4)
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
    let (d, m, ksub, dsub) = (config.dim, config.m, config.ksub(), config.dsub());
    let norms: Vec<f32> = pq.centroids.chunks_exact(dsub).map(crate::distance::norm_sq).collect();
    let mut table = vec![0f32; config.nlist * m * ksub];
    table.par_chunks_mut(m * ksub).enumerate().for_each(|(l, t)| {
        let c = &coarse[l * d..(l + 1) * d];
        pq.inner_product_table(c, t);
        for (v, n) in t.iter_mut().zip(&norms) {
            *v = n + 2.0 * *v;
        }
    });
    table
}
