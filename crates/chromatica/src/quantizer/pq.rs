//! Product quantizer: the vector is cut into `m` sub-vectors of `dsub`
//! dimensions, and each is replaced by the index of its nearest centroid in a
//! per-sub-space codebook of `ksub = 2^nbits` centroids.

use super::codes;
use super::kmeans::{self, KMeansParams, SparseRows};
use crate::config::Config;
use crate::error::Result;

/// What PQ training rows are residuals of: row i is
/// `x_i − coarse[lists[i]]` (coarse nlist × dim), with the points x_i given
/// sparse when they are.
pub struct Residuals<'a> {
    pub points: Option<&'a SparseRows>,
    pub lists: &'a [u32],
    pub coarse: &'a [f32],
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProductQuantizer {
    pub m: usize,
    pub nbits: usize,
    pub dsub: usize,
    pub ksub: usize,
    /// m × dsub × ksub, each codebook transposed: coordinate p of centroid k
    /// of sub-space j is at (j·dsub + p)·ksub + k. The look-up tables are
    /// built from this layout a row (one coordinate, all ksub centroids) at a
    /// time, so a query's zero coordinates cost nothing.
    pub centroids_t: Vec<f32>,
}

impl ProductQuantizer {
    /// From centroids laid out m × ksub × dsub (as k-means and the
    /// quantizer file give them).
    pub fn from_parts(c: &Config, centroids: Vec<f32>) -> ProductQuantizer {
        let (m, ksub, dsub) = (c.m, c.ksub(), c.dsub());
        debug_assert_eq!(centroids.len(), m * ksub * dsub);
        let mut t = vec![0f32; centroids.len()];
        for j in 0..m {
            for k in 0..ksub {
                for p in 0..dsub {
                    t[(j * dsub + p) * ksub + k] = centroids[(j * ksub + k) * dsub + p];
                }
            }
        }
        ProductQuantizer { m, nbits: c.nbits, dsub, ksub, centroids_t: t }
    }

    /// The centroids laid out m × ksub × dsub, as stored on disk.
    pub fn centroids(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.centroids_t.len()];
        for j in 0..self.m {
            for k in 0..self.ksub {
                let row = &mut out[(j * self.ksub + k) * self.dsub..][..self.dsub];
                for (p, v) in row.iter_mut().enumerate() {
                    *v = self.centroids_t[(j * self.dsub + p) * self.ksub + k];
                }
            }
        }
        out
    }

    /// ‖q_jk‖² for every sub-space j and centroid k (m × ksub).
    pub fn centroid_norms(&self) -> Vec<f32> {
        let mut norms = vec![0f32; self.m * self.ksub];
        for (j, n) in norms.chunks_exact_mut(self.ksub).enumerate() {
            for row in self.codebook_t(j).chunks_exact(self.ksub) {
                for (n, &v) in n.iter_mut().zip(row) {
                    *n += v * v;
                }
            }
        }
        norms
    }

    /// Transposed codebook of sub-space `j` (dsub × ksub).
    pub fn codebook_t(&self, j: usize) -> &[f32] {
        let s = self.ksub * self.dsub;
        &self.centroids_t[j * s..(j + 1) * s]
    }

    /// One k-means per sub-space over `residuals` (n × m·dsub), as faiss
    /// does. Where the points behind the residuals are sparse (in that
    /// sub-space too), its k-means assigns through their non-zeros
    /// ([`kmeans::kmeans_sparse`]).
    pub fn train(
        c: &Config,
        residuals: &[f32],
        source: &Residuals<'_>,
        params: &KMeansParams,
        progress: &mut dyn FnMut(usize),
    ) -> Result<ProductQuantizer> {
        let (d, dsub) = (c.dim, c.dsub());
        let mut centroids = Vec::with_capacity(c.m * c.ksub() * dsub);
        for j in 0..c.m {
            let sub = slice_subspace(residuals, d, j * dsub, dsub);
            let p = KMeansParams { seed: params.seed.wrapping_add(1 + j as u64), ..params.clone() };
            let sparse = source
                .points
                .map(|x| x.columns(j * dsub, dsub, source.lists, source.coarse))
                .filter(|s| s.density() < super::SPARSE_DENSITY);
            let out = match &sparse {
                Some(s) => kmeans::kmeans_sparse(&sub, s, c.ksub(), &p, &mut |_| ())?,
                None => kmeans::kmeans(&sub, dsub, c.ksub(), &p, &mut |_| ())?,
            };
            centroids.extend_from_slice(&out.centroids);
            progress(j + 1);
        }
        Ok(ProductQuantizer::from_parts(c, centroids))
    }

    /// Reconstruction of one code: the concatenated sub-space centroids.
    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        let mut idx = vec![0u32; self.m];
        codes::unpack(code, self.nbits, &mut idx);
        for (j, &k) in idx.iter().enumerate() {
            let book = self.codebook_t(j);
            for (p, o) in out[j * self.dsub..(j + 1) * self.dsub].iter_mut().enumerate() {
                *o = book[p * self.ksub + k as usize];
            }
        }
    }

    /// `table[j·ksub + k] = ⟨x_j, q_jk⟩` for one vector x, given as its
    /// non-zero coordinates (ascending): the per-query part of the
    /// asymmetric distance.
    pub fn inner_product_table(&self, nonzeros: &[(u32, f32)], table: &mut [f32]) {
        table.fill(0.0);
        let mut rest = nonzeros;
        for (j, t) in table.chunks_exact_mut(self.ksub).enumerate() {
            let end = rest.partition_point(|&(p, _)| (p as usize) < (j + 1) * self.dsub);
            let (mine, later) = rest.split_at(end);
            crate::distance::axpy_rows(mine, (j * self.dsub) as u32, self.codebook_t(j), t);
            rest = later;
        }
    }
}

/// Copies columns `start..start + w` of an n × d matrix into an n × w one.
fn slice_subspace(data: &[f32], d: usize, start: usize, w: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(data.len() / d * w);
    for row in data.chunks_exact(d) {
        out.extend_from_slice(&row[start..start + w]);
    }
    out
}
