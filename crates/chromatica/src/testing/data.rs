//! Deterministic test inputs: clustered vectors (structured like real
//! descriptors, so nearest neighbours mean something) and configurations.

use super::Rng;
use crate::{Config, Metric};

/// A mixture of clusters, each a Gaussian spread along its own random
/// low-dimensional subspace plus a little isotropic noise: close to how real
/// descriptors (colour histograms) sit on low-dimensional manifolds, so that
/// nearest neighbours are meaningful and IVF recall depends on nprobe.
pub struct Clusters {
    /// Dimension of every point.
    pub dim: usize,
    /// Dimension of each cluster's subspace.
    pub latent: usize,
    /// count × dim.
    pub centers: Vec<f32>,
    /// count × dim × latent.
    pub bases: Vec<f32>,
    /// Deviation of the isotropic noise.
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

    /// Number of clusters.
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

/// An L2 configuration of the given shape: no refine store, no automatic
/// training, no fast-scan.
pub fn config(dim: usize, nlist: usize, m: usize, nbits: usize, nprobe: usize) -> Config {
    Config { dim, nlist, m, nbits, nprobe, metric: Metric::L2, refine: false, auto_train: false, fast_scan: false }
}
