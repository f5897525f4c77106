//! Search by the exact Earth Mover's Distance (ΔE76 ground distance) from a
//! colour query or a histogram to the stored histograms (refine store).
//!
//! Stage 1 hands the PQ scan's best `candidates` to the exact solver, which
//! gives a first top k and with it a limit (the k-th EMD): no image farther
//! than it can enter. With `scan`, every other live vector is then checked
//! against that limit by lower bounds that cost no solve — the distance of
//! its Lab mean to the query's (kept per segment, see
//! `SegmentView::lab_means`), then the nearest-mass bound (every unit of the
//! histogram travels at least to its nearest query colour, one sparse dot
//! product with a per-query table) — a list at a time, nearest coarse
//! centroid first, each list's survivors solved in increasing bound until
//! the bound passes the k-th EMD found, which tightens the limit for the
//! next list. The top k of a scan is exact: only vectors that cannot be
//! nearer are skipped (the limit only falls, so a vector skipped against an
//! earlier limit stays beyond the final one). A deadline stops the scan
//! between lists or solves once k are held: the top k is then the best
//! solved so far, found in the likeliest lists first.

use super::search::{Location, Neighbor};
use super::Snapshot;
use crate::color::transport::EmdQuery;
use crate::color::{bin_centers_lab, Excluded, HIST_DIM};
use crate::error::Result;
use crate::format::segment::RefineRef;
use crate::{Rerank, SearchParams};
use std::time::Instant;

/// Dual bounds the scan takes from the best candidates (see
/// `EmdQuery::add_dual_bound`): each costs one more product per histogram
/// that passes the Lab-mean bound.
const DUAL_BOUNDS: usize = 3;

/// How an EMD search runs.
#[derive(Clone, Debug)]
pub(crate) struct EmdSearch<'a> {
    /// Results wanted.
    pub k: usize,
    /// Lists stage 1 probes; `None`: the index's default.
    pub nprobe: Option<usize>,
    /// Stage 1 candidates solved exactly.
    pub candidates: usize,
    /// After the candidates, every live vector by lower bounds (exact).
    pub scan: bool,
    /// Images holding too much of one of these drop out.
    pub exclude: &'a [Excluded],
    /// When the scan stops (`None`: when it is done). The candidates are
    /// always solved; a scan cut short returns the best found so far
    /// (survivors are solved in increasing lower bound) and says so in
    /// [`EmdStats::timed_out`].
    pub deadline: Option<Instant>,
    /// An id whose way through the search is recorded in
    /// [`EmdStats::trace`] (`chromatica explain`).
    pub trace: Option<u64>,
}

/// What the search did with the traced id, step by step (`None`: that step
/// never looked at it).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct EmdTrace {
    /// It was among stage 1's candidates (solved unless excluded).
    pub candidate: bool,
    /// An excluded colour dropped it.
    pub excluded: bool,
    /// The scan's Lab-mean bound (mean distance − fuzz), and the k-th EMD
    /// it was held against.
    pub mean_bound: Option<(f64, f64)>,
    /// The scan's nearest-mass (and dual) bound, and the k-th EMD then.
    pub lower_bound: Option<(f64, f64)>,
    /// Its exact EMD, when solved within the limit of the moment.
    pub solved: Option<f64>,
    /// The k-th EMD when a solve was tried (a solve that found it beyond
    /// that limit leaves `solved` at `None`).
    pub solve_limit: Option<f64>,
}

/// What an EMD search did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EmdStats {
    /// Exact transport problems solved.
    pub solves: usize,
    /// Lists probed by stage 1 (0 on an untrained index).
    pub nprobe: usize,
    /// The deadline stopped the scan before it was done: the top k is the
    /// best of the histograms solved, not necessarily the exact one.
    pub timed_out: bool,
    /// The traced id's way (see [`EmdSearch::trace`]).
    pub trace: EmdTrace,
}

impl EmdStats {
    /// Whether the scan stops here: k are held (a deadline never cuts a
    /// search short of k) and the deadline has passed (noted).
    fn expired(&mut self, best: &Best, deadline: Option<Instant>) -> bool {
        self.timed_out |= best.full() && deadline.is_some_and(|d| Instant::now() >= d);
        self.timed_out
    }
}

/// The excluded colours as bin masks with their largest share.
pub(crate) struct Exclusions(Vec<(Vec<bool>, f64)>);

impl Exclusions {
    pub(crate) fn new(x: &[Excluded]) -> Exclusions {
        Exclusions(x.iter().map(|e| (e.mask(), f64::from(e.max_share))).collect())
    }

    /// Whether a stored (Hellinger) vector holds more than an excluded
    /// colour's share within its radius.
    pub(crate) fn drops(&self, r: impl Iterator<Item = (usize, f32)> + Clone) -> bool {
        if self.0.is_empty() {
            return false;
        }
        let total: f64 = r.clone().map(|(_, v)| f64::from(v) * f64::from(v)).sum();
        self.0.iter().any(|(mask, max)| {
            let near: f64 =
                r.clone().filter(|&(j, _)| j < HIST_DIM && mask[j]).map(|(_, v)| f64::from(v) * f64::from(v)).sum();
            near > max * total
        })
    }
}

/// The k best (distance, id, packed location), sorted.
struct Best {
    k: usize,
    items: Vec<(f64, u64, u64)>,
}

impl Best {
    /// Whether k are held.
    fn full(&self) -> bool {
        self.items.len() == self.k
    }
    fn limit(&self) -> f64 {
        if self.items.len() == self.k {
            self.items[self.k - 1].0
        } else {
            f64::INFINITY
        }
    }
    fn offer(&mut self, d: f64, id: u64, loc: u64) {
        let at = self.items.partition_point(|b| (b.0, b.1) < (d, id));
        if at < self.k {
            self.items.insert(at, (d, id, loc));
            self.items.truncate(self.k);
        }
    }
}

fn centres() -> &'static [[f64; 3]] {
    static C: std::sync::OnceLock<Vec<[f64; 3]>> = std::sync::OnceLock::new();
    C.get_or_init(bin_centers_lab)
}

impl Snapshot {
    /// Every list, nearest coarse centroid to `x` first (index order when
    /// untrained: every vector is then in list 0).
    fn lists_nearest_first(&self, x: &[f32]) -> Vec<usize> {
        let nlist = self.manifest.config.nlist;
        let Some(q) = &self.quantizers else { return (0..nlist).collect() };
        let mut d: Vec<(f32, usize)> = (0..nlist).map(|l| (crate::distance::l2sq(x, q.centroid(l)), l)).collect();
        d.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        d.into_iter().map(|(_, l)| l).collect()
    }
}

fn rows<'a>(r: &'a RefineRef<'_>) -> impl Iterator<Item = (usize, f32)> + Clone + 'a {
    r.iter()
}

impl Snapshot {
    /// The k nearest live vectors to `query` by exact EMD (see the module
    /// documentation); `stage1` is the vector the PQ scan searches for.
    /// Needs the refine store and colour histograms (the caller checks).
    pub(crate) fn emd_search(
        &self,
        stage1: &[f32],
        query: &mut EmdQuery,
        s: &EmdSearch<'_>,
    ) -> Result<(Vec<Neighbor>, EmdStats)> {
        let live = usize::try_from(self.vectors()).unwrap_or(usize::MAX);
        let mut stats = EmdStats::default();
        if live == 0 {
            return Ok((Vec::new(), stats));
        }
        let exclusions = Exclusions::new(s.exclude);
        let mut best = Best { k: s.k.clamp(1, live), items: Vec::new() };
        let mut seen: Vec<u64> = Vec::new();
        let trained = self.quantizers.is_some();
        if trained {
            let params = SearchParams {
                k: s.candidates.max(s.k),
                nprobe: s.nprobe,
                rerank: Some(Rerank::Off),
                candidates: None,
            };
            let plan = self.plan(&params)?;
            stats.nprobe = plan.nprobe;
            let cands = self.search_planned(stage1, &plan)?.into_iter().next().unwrap_or_default();
            for c in &cands {
                let loc = c.location.pack();
                seen.push(loc);
                let traced = s.trace == Some(c.id);
                stats.trace.candidate |= traced;
                let r = self.segments[c.location.segment as usize].refine(c.location.position as usize)?;
                if exclusions.drops(rows(&r)) {
                    stats.trace.excluded |= traced;
                    continue;
                }
                let limit = best.limit();
                let solved = query.distance_within(rows(&r), limit);
                if traced {
                    (stats.trace.solved, stats.trace.solve_limit) = (solved, Some(limit));
                }
                if let Some(d) = solved {
                    stats.solves += 1;
                    best.offer(d, c.id, loc);
                }
            }
            seen.sort_unstable();
        }
        // Dual bounds from the best few found: tight for the histograms
        // like them, which are the ones that crowd the limit.
        if s.scan || !trained {
            for &(_, _, loc) in best.items.iter().take(DUAL_BOUNDS) {
                let at = Location::unpack(loc);
                let r = self.segments[at.segment as usize].refine(at.position as usize)?;
                query.add_dual_bound(rows(&r));
            }
        }
        if s.scan || !trained {
            let qm = query.mean();
            let fuzz = query.fuzz();
            let mut survivors: Vec<(f64, u64, u64)> = Vec::new();
            let means: Vec<_> = self.segments.iter().map(|seg| seg.lab_means(centres())).collect::<Result<_>>()?;
            let hiders: Vec<_> = (0..self.segments.len()).map(|si| self.hider(si)).collect();
            // A list at a time, nearest centroid first, its survivors solved
            // before the next list is bounded: the limit tightens early, and
            // a scan the deadline cuts short has covered the likeliest lists.
            'lists: for l in self.lists_nearest_first(stage1) {
                let limit = best.limit();
                for (si, seg) in self.segments.iter().enumerate() {
                    let (_, ids) = seg.list(l)?;
                    let start = seg.list_start(l);
                    for (i, id) in ids.iter().enumerate() {
                        let p = start + i;
                        let m = means[si][p];
                        let cb = ((0..3).map(|d| (f64::from(m[d]) - qm[d]).powi(2)).sum::<f64>()).sqrt() - fuzz;
                        let traced = s.trace == Some(id) && !hiders[si].hides(id);
                        if traced && !stats.trace.candidate {
                            stats.trace.mean_bound = Some((cb, limit));
                        }
                        // f32 means: a small relative margin; NaN (no mass) never passes.
                        if cb.is_nan() || cb * (1.0 - 1e-5) > limit || hiders[si].hides(id) {
                            continue;
                        }
                        let loc = Location { segment: si as u32, position: p as u32 }.pack();
                        if seen.binary_search(&loc).is_ok() {
                            continue;
                        }
                        let r = seg.refine(p)?;
                        let lb = query.lower_bound(rows(&r));
                        if traced {
                            stats.trace.lower_bound = Some((lb, limit));
                        }
                        if lb <= limit {
                            survivors.push((lb, id, loc));
                        }
                    }
                }
                survivors.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
                for &(lb, id, loc) in &survivors {
                    let limit = best.limit();
                    if lb > limit {
                        break;
                    }
                    if stats.expired(&best, s.deadline) {
                        break 'lists;
                    }
                    let at = Location::unpack(loc);
                    let r = self.segments[at.segment as usize].refine(at.position as usize)?;
                    let traced = s.trace == Some(id);
                    if exclusions.drops(rows(&r)) {
                        stats.trace.excluded |= traced;
                        continue;
                    }
                    let solved = query.distance_within(rows(&r), limit);
                    if traced {
                        (stats.trace.solved, stats.trace.solve_limit) = (solved, Some(limit));
                    }
                    if let Some(d) = solved {
                        stats.solves += 1;
                        best.offer(d, id, loc);
                    }
                }
                survivors.clear();
                if stats.expired(&best, s.deadline) {
                    break;
                }
            }
        }
        let out = best
            .items
            .into_iter()
            .map(|(d, id, loc)| Neighbor { id, distance: d as f32, location: Location::unpack(loc) })
            .collect();
        Ok((out, stats))
    }
}
