//! Why did this image (not) come back for this colour or image query? The
//! same search as [`ImageIndex::search_prepared`], run with one id traced
//! through it: stage 1 (its list, whether probed, its rank by code
//! distance), whether it was a PQ candidate, what the exact-EMD scan's
//! bounds said against the k-th EMD of the moment, whether it was solved,
//! and its final rank.

use super::search::{exact_emd, PreparedQuery, SearchOptions};
use super::ImageIndex;
use crate::error::Result;
use crate::health::QueryExplanation;
use crate::{Rerank, SearchParams};
use std::time::Instant;

impl ImageIndex {
    /// Why image `id` did or did not come back for `query` searched with
    /// `options`, following the search step by step (for exact-EMD
    /// searches, the scan's bounds and solves; otherwise as
    /// [`crate::Index::explain_query`]). Read-only.
    pub fn explain(&self, query: &PreparedQuery, id: u64, options: &SearchOptions) -> Result<QueryExplanation> {
        options.check()?;
        let snap = self.index.snapshot();
        let config = snap.manifest.config;
        let rerank = options.resolved_rerank(&config);
        let params = SearchParams { k: options.k, nprobe: options.nprobe, rerank, candidates: options.candidates };
        let plan = snap.plan(&params)?;
        if plan.rerank != Rerank::ExactEmd {
            return snap.explain_query(&query.vector, id, &params);
        }
        // Stage 1 as the EMD search runs it: the PQ scan's best candidates.
        let stage1 = SearchParams { rerank: Some(Rerank::Off), k: plan.candidates.max(options.k), ..params };
        let mut e = snap.explain_query(&query.vector, id, &stage1)?;
        let (found, stats) = exact_emd(&snap, query, options, plan.candidates, Instant::now(), Some(id))?;
        let t = stats.trace;
        let k = options.k.min(found.len().max(1));
        let final_hit = found.iter().position(|n| n.id == id);
        let kth = found.get(k - 1).map(|n| n.distance);
        // Its exact EMD whatever the search did (one more solve).
        // Where its live copy is: one pass, no sort (live_locations sorts all).
        let mut at = None;
        snap.for_each_live(|si, p, i| {
            if i == id {
                at = Some((si, p));
            }
        })?;
        let emd = match at {
            Some((si, p)) => {
                let r = snap.segments[si].refine(p)?;
                Some(super::search::emd_query(query, options)?.distance(r.iter()) as f32)
            }
            None => None,
        };
        let scanned = query.color_query.is_some() || super::search::IMAGE_QUERY_SCAN;
        let bound = match (t.mean_bound, t.lower_bound) {
            (_, Some((lb, limit))) => Some((lb, limit)),
            (Some((mb, limit)), None) => Some((mb, limit)),
            _ => None,
        };
        let (s1, cands) = (e.stage1_rank, plan.candidates);
        let pq = match s1 {
            Some(r) if t.candidate => format!("its code distance ranked it {r}, a PQ candidate (of {cands})"),
            Some(r) => format!("its code distance ranked it {r}, not a PQ candidate (of {cands})"),
            None => "its list was not probed, so it was no PQ candidate".to_owned(),
        };
        let reason = if !e.live {
            format!("id {id} has no live copy (never added, or deleted)")
        } else if t.excluded {
            format!("{pq}; it holds too much of an excluded colour")
        } else if let Some(r) = final_hit.filter(|&r| r < k) {
            let via = if t.candidate {
                "solved as a candidate"
            } else {
                "the scan's bounds let it through and it was solved"
            };
            format!("{pq}; {via}: EMD {:.3} ranks it {} of {k}", found[r].distance, r + 1)
        } else if t.solved.is_some() || t.solve_limit.is_some() {
            format!("{pq}; solved: EMD {} is beyond the k-th EMD {}", fmt(emd), fmt(kth))
        } else if let Some((b, limit)) = bound {
            if b <= limit && stats.timed_out {
                format!(
                    "{pq}; its lower bound {b:.3} passed the k-th EMD {limit:.3}, but the search time limit stopped the scan before its solve (its EMD is {})",
                    fmt(emd)
                )
            } else if b > limit {
                format!(
                    "{pq}; the scan skipped it unsolved: its lower bound {b:.3} exceeded the k-th EMD {limit:.3} of that moment (its EMD is {})",
                    fmt(emd)
                )
            } else {
                format!(
                    "{pq}; its lower bound {b:.3} passed the k-th EMD {limit:.3} of that moment, but the limit fell to {} before its turn (its EMD is {})",
                    fmt(kth),
                    fmt(emd)
                )
            }
        } else if stats.timed_out {
            format!("{pq}; the search time limit stopped the scan before it reached it (its EMD is {})", fmt(emd))
        } else if !scanned {
            format!("{pq}; only the candidates are solved for this query (its EMD is {})", fmt(emd))
        } else {
            format!("{pq}; the scan's Lab-mean bound skipped it (its EMD is {})", fmt(emd))
        };
        e.candidates = cands;
        e.in_candidates = t.candidate;
        e.rerank = Rerank::ExactEmd.name().into();
        e.final_rank = final_hit.map(|r| r + 1);
        e.final_distance = final_hit.map(|r| found[r].distance);
        e.k = k;
        e.returned = final_hit.is_some_and(|r| r < k);
        e.kth_distance = kth;
        e.emd = emd;
        e.emd_bound = bound.map(|(b, _)| b as f32);
        e.scanned = scanned;
        e.excluded = t.excluded;
        e.reason = reason;
        Ok(e)
    }
}

fn fmt(v: Option<f32>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3}"))
}
