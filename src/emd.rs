//! Sinkhorn-approximated Earth Mover's Distance between colour histograms.
//! (Interim implementation with the agreed API; the tested module replaces it.)

use crate::error::{Error, Result};
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sinkhorn {
    pub epsilon: f32,
    pub iterations: usize,
}

impl Default for Sinkhorn {
    fn default() -> Self {
        Sinkhorn { epsilon: 0.05, iterations: 50 }
    }
}

impl Sinkhorn {
    pub fn validate(&self) -> Result<()> {
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(Error::InvalidInput(format!("EMD epsilon must be positive, got {}", self.epsilon)));
        }
        if !(1..=10_000).contains(&self.iterations) {
            return Err(Error::InvalidInput(format!("EMD iterations must be 1 to 10000, got {}", self.iterations)));
        }
        Ok(())
    }
}

/// Squared Lab distances between bin centres, scaled to [0, 1].
pub fn ground_cost() -> &'static [f32] {
    static COST: OnceLock<Vec<f32>> = OnceLock::new();
    COST.get_or_init(|| {
        let c = crate::color::bin_centers_lab();
        let n = c.len();
        let mut m = vec![0f32; n * n];
        for i in 0..n {
            for j in 0..n {
                m[i * n + j] = (0..3).map(|k| (c[i][k] - c[j][k]).powi(2)).sum::<f64>() as f32;
            }
        }
        let max = m.iter().cloned().fold(0f32, f32::max);
        m.iter_mut().for_each(|v| *v /= max);
        m
    })
}

/// Transport cost of the Sinkhorn plan between two sparse distributions.
/// Infinite if either side has no mass.
pub fn sinkhorn_distance(a: &[(u16, f32)], b: &[(u16, f32)], params: &Sinkhorn) -> f32 {
    let (sa, sb) = (a.iter().map(|x| x.1).sum::<f32>(), b.iter().map(|x| x.1).sum::<f32>());
    if sa <= 0.0 || sb <= 0.0 {
        return f32::INFINITY;
    }
    let cost = ground_cost();
    let n = crate::color::HIST_DIM;
    let (na, nb) = (a.len(), b.len());
    let c: Vec<f32> =
        a.iter().flat_map(|&(i, _)| b.iter().map(move |&(j, _)| cost[i as usize * n + j as usize])).collect();
    // Log-domain updates keep small epsilons finite.
    let eps = params.epsilon;
    let la: Vec<f32> = a.iter().map(|x| (x.1 / sa).max(1e-30).ln()).collect();
    let lb: Vec<f32> = b.iter().map(|x| (x.1 / sb).max(1e-30).ln()).collect();
    let (mut f, mut g) = (vec![0f32; na], vec![0f32; nb]);
    let lse = |it: &mut dyn Iterator<Item = f32>| {
        let v: Vec<f32> = it.collect();
        let m = v.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        m + v.iter().map(|x| (x - m).exp()).sum::<f32>().ln()
    };
    for _ in 0..params.iterations {
        for i in 0..na {
            f[i] = eps * la[i] - eps * lse(&mut (0..nb).map(|j| (g[j] - c[i * nb + j]) / eps));
        }
        for j in 0..nb {
            g[j] = eps * lb[j] - eps * lse(&mut (0..na).map(|i| (f[i] - c[i * nb + j]) / eps));
        }
    }
    let mut total = 0f32;
    for i in 0..na {
        for j in 0..nb {
            total += ((f[i] + g[j] - c[i * nb + j]) / eps).exp() * c[i * nb + j];
        }
    }
    total
}
