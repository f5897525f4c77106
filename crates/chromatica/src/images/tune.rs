//! Which nprobe and candidates make colour search fastest at a recall
//! target, when the truth is the exact EMD? (`chromatica tune` on an image
//! index.)
//!
//! Why it differs from the L2 tune (`crate::health`): the default colour
//! search solves its PQ candidates exactly and then checks every live image
//! by EMD bounds, so its top k is exact whatever nprobe and candidates are:
//! they change only how soon the k-th EMD tightens, hence the solves and
//! the time. So the exact-EMD points all reach recall 1 (measured, not
//! assumed) and the choice is the fastest; the fast path (stage 1 alone,
//! `fast_mode`) is measured beside them, its recall against the exact EMD
//! top 10 showing what the speed would cost. What it picks is stored for
//! EMD re-ranking only: a vector search of the same index keeps its own.

use super::search::{emd_query, exact_emd, PreparedQuery, Query, SearchOptions};
use super::ImageIndex;
use crate::color::{dominant_colors, ImageLimits, HIST_DIM};
use crate::error::{Error, Result};
use crate::health::{TunePoint, TuneReport};
use crate::{Rerank, Snapshot};
use std::time::Instant;

/// Candidates tried with each nprobe (the default among them).
const CANDIDATES: [usize; 3] = [50, crate::read::DEFAULT_CANDIDATES, 800];

impl ImageIndex {
    /// Measures colour search over a grid of nprobe × candidates, and the
    /// fast path at each nprobe, on `queries` colour palettes (the three
    /// dominant colours of stored images drawn at random, seeded): recall@10
    /// against the exact EMD top 10 (an image no farther than the true 10th
    /// counts, as ties), µs and exact solves per query, one query at a
    /// time. Picks the cheapest exact-EMD setting meeting `target` (see
    /// [`TuneReport::chosen`]). Changes nothing; store it with
    /// [`crate::Index::set_search_defaults`] for [`Rerank::ExactEmd`],
    /// where it governs colour searches only.
    pub fn tune(&self, target: f64, queries: usize, seed: u64) -> Result<TuneReport> {
        crate::health::check_target(target)?;
        if queries == 0 {
            return Err(Error::invalid_argument("queries", "queries must be at least 1"));
        }
        let snap = self.index.snapshot();
        let c = snap.manifest.config;
        if snap.quantizers.is_none() || !c.refine || c.dim != HIST_DIM {
            return Err(Error::InvalidInput(
                "tuning by exact EMD needs a trained colour index with a refine store (chromatica index, or create --refine with dimension 1152)".into(),
            ));
        }
        if snap.vectors() <= 10 {
            return Err(Error::InvalidInput(format!(
                "tuning needs more than 10 live images, the index holds {}",
                snap.vectors()
            )));
        }
        let qs = palettes(&snap, queries, seed)?;
        let exact = |q: &PreparedQuery, nprobe: usize, candidates: usize| {
            let o = SearchOptions::default().k(10).nprobe(nprobe).candidates(candidates);
            exact_emd(&snap, q, &o, candidates, Instant::now(), None)
        };
        // The truth: the exact search at the index's settings (exact at any).
        let truth: Vec<f32> = qs
            .iter()
            .map(|q| {
                Ok(exact(q, c.nprobe, crate::read::DEFAULT_CANDIDATES)?.0.last().map_or(f32::INFINITY, |n| n.distance))
            })
            .collect::<Result<_>>()?;
        let counts =
            |found: &[f32], kth: f32| found.iter().filter(|&&d| d <= kth + 1e-4 * kth.abs().max(1.0)).count().min(10);
        let probes = crate::health::tune_probes(&c);
        let mut points = Vec::new();
        for &np in &probes {
            for cand in CANDIDATES {
                let (mut hit, mut solves) = (0usize, 0usize);
                let t = Instant::now();
                for (q, &kth) in qs.iter().zip(&truth) {
                    let (found, stats) = exact(q, np, cand)?;
                    solves += stats.solves;
                    hit += counts(&found.iter().map(|n| n.distance).collect::<Vec<_>>(), kth);
                }
                points.push(point(np, cand, "exact", hit, qs.len(), t, Some(solves), target));
            }
            // The fast path: stage 1 alone, its results' exact EMD checked.
            let params = crate::SearchParams::new(10).nprobe(np).rerank(Rerank::Off);
            let plan = snap.plan(&params)?;
            let (mut hit, mut micros) = (0usize, 0f64);
            for (q, &kth) in qs.iter().zip(&truth) {
                let t = Instant::now();
                let found = snap.search_planned(&q.vector, &plan)?.swap_remove(0);
                micros += t.elapsed().as_secs_f64() * 1e6;
                let mut emd = emd_query(q, &SearchOptions::default())?;
                let mut d = Vec::with_capacity(found.len());
                for n in &found {
                    let r = snap.segments[n.location.segment as usize].refine(n.location.position as usize)?;
                    d.push(emd.distance(r.iter()) as f32);
                }
                hit += counts(&d, kth);
            }
            let recall = hit as f64 / (10 * qs.len()) as f64;
            points.push(TunePoint {
                nprobe: np,
                candidates: 0,
                recall_at_10: recall,
                micros_per_query: micros / qs.len() as f64,
                meets_target: recall >= target,
                rerank: "none".into(),
                solves_per_query: None,
            });
        }
        Ok(TuneReport::new(&snap, Rerank::ExactEmd, target, qs.len(), points, "exact EMD"))
    }
}

#[allow(clippy::too_many_arguments)]
fn point(
    nprobe: usize,
    candidates: usize,
    rerank: &str,
    hit: usize,
    queries: usize,
    t: Instant,
    solves: Option<usize>,
    target: f64,
) -> TunePoint {
    let recall = hit as f64 / (10 * queries) as f64;
    TunePoint {
        nprobe,
        candidates,
        recall_at_10: recall,
        micros_per_query: t.elapsed().as_secs_f64() * 1e6 / queries as f64,
        meets_target: recall >= target,
        rerank: rerank.into(),
        solves_per_query: solves.map(|s| s as f64 / queries as f64),
    }
}

/// `n` colour queries: the three dominant colours (with their shares) of
/// stored images drawn at random (seeded), as a person picks a palette
/// from a photo.
fn palettes(snap: &Snapshot, n: usize, seed: u64) -> Result<Vec<PreparedQuery>> {
    use rand::SeedableRng;
    let mut at = Vec::new();
    snap.for_each_live(|si, p, _| at.push((si, p)))?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let pick = rand::seq::index::sample(&mut rng, at.len(), n.min(at.len())).into_vec();
    let mut out = Vec::with_capacity(pick.len());
    for i in pick {
        let (si, p) = at[i];
        let mut h = vec![0f32; HIST_DIM];
        for (j, v) in snap.segments[si].refine(p)?.iter() {
            h[j] = v * v;
        }
        let spec: Vec<String> =
            dominant_colors(&h, 3).iter().map(|d| format!("{}:{:.4}", &d.hex()[1..], d.share.max(1e-4))).collect();
        out.push(Query::colors(&spec.join(","))?.prepare(&ImageLimits::default(), 5)?);
    }
    Ok(out)
}
