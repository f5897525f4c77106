//! How is a part of an index searched so that the parts, merged elsewhere,
//! answer exactly as the whole would? `chromatica.ray.ShardedSearcher`
//! gives each Ray actor a group of one state's segments
//! ([`Snapshot::subset`]); each returns its stage-1 candidates with their
//! exact distances ([`Snapshot::search_candidates`]); the caller merges
//! them ([`merge_candidates`]).
//!
//! Why the merge is exact, not approximate. A search keeps stage 1's
//! `G = max(k, candidates)` best codes by (PQ distance, id) — a total
//! order, independent of scan order (`topk.rs`) — and re-ranks them by
//! (exact distance, id). A code's PQ distance depends only on the query and
//! that code, never on which other segments are scanned, so the whole
//! index's G best are the G best of the union of each part's G best. Each
//! part computes the exact distance of its own candidates (it holds their
//! refine store) with the same function stage 2 uses, and the merge sorts
//! with the same orders: the result is the whole index's, bit for bit.

use super::search::{exact_l2, Location, SearchParams};
use super::topk::Entry;
use super::Snapshot;
use crate::error::{Error, Result};
use crate::read::Rerank;

/// One stage-1 candidate of a part of an index (see the module
/// documentation of [`merge_candidates`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// The vector's id.
    pub id: u64,
    /// Stage 1's distance: squared L2 estimated from the PQ code (exact
    /// before training, when stage 1 scans the refine store).
    pub approx: f32,
    /// Exact squared L2 from the refine store, when the search re-ranks.
    pub exact: Option<f32>,
}

impl Snapshot {
    /// This state with only the segments whose file numbers are in `files`
    /// (deletions still apply): a part of the index to search apart. Every
    /// number must name a segment of this state (else the caller planned
    /// the parts on another generation: refresh and plan again).
    pub fn subset(&self, files: &[u64]) -> Result<Snapshot> {
        for f in files {
            if !self.manifest.segments.iter().any(|s| s.file == *f) {
                return Err(Error::invalid_argument(
                    "segments",
                    format!("segment {f:016x} is not part of generation {}", self.manifest.generation),
                ));
            }
        }
        let keep: Vec<usize> =
            (0..self.segments.len()).filter(|&i| files.contains(&self.manifest.segments[i].file)).collect();
        let mut manifest = self.manifest.clone();
        manifest.segments = keep.iter().map(|&i| self.manifest.segments[i]).collect();
        Ok(Snapshot {
            manifest,
            quantizers: self.quantizers.clone(),
            segments: keep.iter().map(|&i| self.segments[i].clone()).collect(),
            deleted: self.deleted.clone(),
        })
    }

    /// Stage 1 of [`search`](Self::search) for each query: its
    /// `max(k, candidates)` best (k alone without re-ranking) by PQ
    /// distance, nearest first, each with its exact distance when the
    /// search re-ranks by L2 (the default with a refine store). `params`
    /// as for `search`; only L2 re-ranking or none.
    pub fn search_candidates(&self, queries: &[f32], params: &SearchParams) -> Result<Vec<Vec<Candidate>>> {
        let plan = self.plan(params)?;
        if !matches!(plan.rerank, Rerank::L2 | Rerank::Off) {
            return Err(Error::invalid_argument(
                "rerank",
                "a part of an index re-ranks by exact L2 or not at all (\"l2\" or \"none\")",
            ));
        }
        let exact = plan.rerank == Rerank::L2;
        self.run_planned(queries, &plan, &|x, stage1: Vec<Entry>| {
            let mut nz = Vec::new();
            if exact {
                crate::distance::nonzeros(x, &mut nz);
            }
            stage1
                .into_iter()
                .map(|(approx, id, loc)| {
                    let exact = match (exact, &self.quantizers) {
                        (false, _) => None,
                        (true, None) => Some(approx), // stage 1 was exact
                        (true, Some(_)) => {
                            let l = Location::unpack(loc);
                            Some(exact_l2(&nz, self.segments[l.segment as usize].refine(l.position as usize)?))
                        }
                    };
                    Ok(Candidate { id, approx, exact })
                })
                .collect()
        })
    }
}

/// Merges, query by query, the candidates that
/// [`Snapshot::search_candidates`] returned with the same `params` for
/// disjoint parts of one state (`parts[p][q]`: part p, query q) into
/// `(id, distance)` results, nearest first: what [`Snapshot::search`] on
/// the whole state returns (see the module documentation for why they are
/// the same). The merge sees no snapshot: when the parts' `params` left
/// `candidates` unset, pass the state's default here
/// ([`Snapshot::search_defaults`]); unset here means [`DEFAULT_CANDIDATES`](super::DEFAULT_CANDIDATES).
pub fn merge_candidates(parts: &[Vec<Vec<Candidate>>], params: &SearchParams) -> Result<Vec<Vec<(u64, f32)>>> {
    if params.k == 0 {
        return Err(Error::invalid_argument("k", "k must be at least 1"));
    }
    let queries = parts.first().map_or(0, Vec::len);
    if parts.iter().any(|p| p.len() != queries) {
        return Err(Error::InvalidInput("the parts answered different numbers of queries".into()));
    }
    let reranked = parts.iter().flatten().flatten().next().is_some_and(|c| c.exact.is_some());
    let keep = if reranked { params.k.max(params.candidates.unwrap_or(super::DEFAULT_CANDIDATES)) } else { params.k };
    let approx_order = |a: &Candidate, b: &Candidate| a.approx.total_cmp(&b.approx).then(a.id.cmp(&b.id));
    (0..queries)
        .map(|q| {
            let mut all: Vec<Candidate> = parts.iter().flat_map(|p| p[q].iter().copied()).collect();
            if all.iter().any(|c| c.exact.is_some() != reranked) {
                return Err(Error::InvalidInput("some parts re-ranked and others did not".into()));
            }
            all.sort_unstable_by(approx_order);
            all.truncate(keep);
            let mut out: Vec<(u64, f32)> = all.iter().map(|c| (c.id, c.exact.unwrap_or(c.approx))).collect();
            out.sort_unstable_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            out.truncate(params.k);
            Ok(out)
        })
        .collect()
}
