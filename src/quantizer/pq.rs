//! Product quantizer: the vector is cut into `m` sub-vectors of `dsub`
//! dimensions, and each is replaced by the index of its nearest centroid in a
//! per-sub-space codebook of `ksub = 2^nbits` centroids.

use super::codes;
use crate::config::Config;
use crate::error::Result;
use crate::kmeans::{self, KMeansParams};
use rayon::prelude::*;

#[derive(Clone, Debug, PartialEq)]
pub struct ProductQuantizer {
    pub m: usize,
    pub nbits: usize,
    pub dsub: usize,
    pub ksub: usize,
    /// m × ksub × dsub: centroid k of sub-space j starts at (j·ksub + k)·dsub.
    pub centroids: Vec<f32>,
}

impl ProductQuantizer {
    pub fn from_parts(c: &Config, centroids: Vec<f32>) -> ProductQuantizer {
        debug_assert_eq!(centroids.len(), c.m * c.ksub() * c.dsub());
        ProductQuantizer { m: c.m, nbits: c.nbits, dsub: c.dsub(), ksub: c.ksub(), centroids }
    }

    /// Codebook of sub-space `j` (ksub × dsub).
    pub fn codebook(&self, j: usize) -> &[f32] {
        let s = self.ksub * self.dsub;
        &self.centroids[j * s..(j + 1) * s]
    }

    /// One k-means per sub-space over `data` (n × m·dsub), as faiss does.
    pub fn train(
        c: &Config,
        data: &[f32],
        params: &KMeansParams,
        progress: &mut dyn FnMut(usize),
    ) -> Result<ProductQuantizer> {
        let (d, dsub) = (c.dim, c.dsub());
        let mut centroids = Vec::with_capacity(c.m * c.ksub() * dsub);
        for j in 0..c.m {
            let sub = slice_subspace(data, d, j * dsub, dsub);
            let p = KMeansParams { seed: params.seed.wrapping_add(1 + j as u64), ..params.clone() };
            let out = kmeans::kmeans(&sub, dsub, c.ksub(), &p, &mut |_| ())?;
            centroids.extend_from_slice(&out.centroids);
            progress(j + 1);
        }
        Ok(ProductQuantizer::from_parts(c, centroids))
    }

    /// Encodes `data` (n × m·dsub) into `codes` (n × code_size).
    pub fn encode_batch(&self, data: &[f32], codes: &mut [u8]) {
        let d = self.m * self.dsub;
        let n = data.len() / d;
        let code_size = (self.m * self.nbits).div_ceil(8);
        // labels[j][i]: the sub-code of vector i in sub-space j.
        let labels: Vec<Vec<u32>> = (0..self.m)
            .into_par_iter()
            .map(|j| {
                let sub = slice_subspace(data, d, j * self.dsub, self.dsub);
                let mut lab = vec![0u32; n];
                let mut dist = vec![0f32; n];
                kmeans::assign(&sub, self.dsub, self.codebook(j), &mut lab, &mut dist);
                lab
            })
            .collect();
        codes.par_chunks_mut(code_size).enumerate().for_each(|(i, code)| {
            let idx: Vec<u32> = labels.iter().map(|l| l[i]).collect();
            codes::pack(&idx, self.nbits, code);
        });
    }

    /// Reconstruction of one code: the concatenated sub-space centroids.
    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        let mut idx = vec![0u32; self.m];
        codes::unpack(code, self.nbits, &mut idx);
        for (j, &k) in idx.iter().enumerate() {
            let c = &self.codebook(j)[k as usize * self.dsub..(k as usize + 1) * self.dsub];
            out[j * self.dsub..(j + 1) * self.dsub].copy_from_slice(c);
        }
    }

    /// `table[j·ksub + k] = ⟨x_j, q_jk⟩` for one vector x: the per-query part
    /// of the asymmetric distance.
    pub fn inner_product_table(&self, x: &[f32], table: &mut [f32]) {
        for j in 0..self.m {
            let xj = &x[j * self.dsub..(j + 1) * self.dsub];
            let book = self.codebook(j);
            for (k, t) in table[j * self.ksub..(j + 1) * self.ksub].iter_mut().enumerate() {
                *t = crate::distance::dot(xj, &book[k * self.dsub..(k + 1) * self.dsub]);
            }
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
