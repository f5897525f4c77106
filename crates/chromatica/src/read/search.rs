//! Search over a snapshot, in two stages.
//!
//! Stage 1 ranks PQ codes by asymmetric distance (the L2 decomposition into
//! three terms is stated once, in `crate::quantizer`). Stage 2, when the
//! index keeps exact vectors (the refine store), re-ranks stage 1's best
//! `candidates` by exact L2 or by Sinkhorn EMD. An index that is not trained
//! yet is searched exactly over the refine store.

use super::topk::{Entry, TopK};
use super::{Hider, Snapshot};
use crate::color::emd::{sinkhorn_distance, Sinkhorn};
use crate::error::{Error, Result};
use crate::format::segment::{Ids, RefineRef};
use crate::quantizer::{codes, Quantizers};
use rayon::prelude::*;
use serde::Serialize;

/// Where a result is stored, within the snapshot that returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// Index into `Snapshot::segments`.
    pub segment: u32,
    /// Position of the vector within that segment.
    pub position: u32,
}

impl Location {
    pub(crate) fn pack(self) -> u64 {
        (self.segment as u64) << 32 | self.position as u64
    }
    pub(crate) fn unpack(v: u64) -> Location {
        Location { segment: (v >> 32) as u32, position: v as u32 }
    }
}

/// One result.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Neighbor {
    /// The vector's id.
    pub id: u64,
    /// Squared L2 (estimated from the PQ code, or exact after re-ranking),
    /// or the EMD when re-ranking by EMD.
    pub distance: f32,
    /// Where the vector is stored; valid for the snapshot that returned it
    /// (see [`Snapshot::record`]).
    #[serde(skip)]
    pub location: Location,
}

/// How stage 2 re-ranks stage 1's candidates.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Rerank {
    /// Stage 1 only: distances estimated from the PQ codes.
    Off,
    /// Exact squared L2 on the stored vectors.
    L2,
    /// Sinkhorn-approximated Earth Mover's Distance between the colour
    /// distributions (the squares of Hellinger vectors), with squared Lab
    /// distances between bin centres as the ground cost.
    Emd(Sinkhorn),
    /// The exact Earth Mover's Distance between the colour distributions
    /// (ΔE76 between bin centres as the ground distance), by the
    /// transportation simplex, with lower bounds skipping candidates that
    /// cannot enter the top k. What an image index re-ranks by unless told
    /// otherwise.
    ExactEmd,
}

impl Rerank {
    /// Its name in the CLI, the JSON reports and the Python package:
    /// "none", "l2", "emd" (Sinkhorn) or "exact".
    pub fn name(&self) -> &'static str {
        match self {
            Rerank::Off => "none",
            Rerank::L2 => "l2",
            Rerank::Emd(_) => "emd",
            Rerank::ExactEmd => "exact",
        }
    }

    /// The re-rank a name stands for ([`name`](Self::name)'s, or "off" for
    /// none); "emd" is Sinkhorn with its default settings. `None` for any
    /// other text (callers name the argument in their error).
    pub fn from_name(name: &str) -> Option<Rerank> {
        match name {
            "none" | "off" => Some(Rerank::Off),
            "l2" => Some(Rerank::L2),
            "emd" => Some(Rerank::Emd(Sinkhorn::default())),
            "exact" => Some(Rerank::ExactEmd),
            _ => None,
        }
    }
}

/// Candidates stage 1 hands to stage 2 unless told otherwise.
pub const DEFAULT_CANDIDATES: usize = 200;

/// Per-call search options: `SearchParams::new(k)`, then the setters for
/// what differs from the index's defaults (more options may be added, so
/// the struct cannot be built literally outside the crate).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct SearchParams {
    /// Results per query (at least 1). Fewer come back if the index holds
    /// fewer: k is capped at the live vectors, so any k is safe (the
    /// buffers it sizes are bounded by the index, never by k).
    pub k: usize,
    /// Lists to probe; `None` uses the index default.
    pub nprobe: Option<usize>,
    /// `None`: exact L2 when the index has a refine store, else off.
    pub rerank: Option<Rerank>,
    /// Stage 1 candidates for stage 2 (default 200); at least k are used,
    /// at most the live vectors.
    pub candidates: Option<usize>,
}

impl SearchParams {
    /// `k` results per query, everything else the index's default.
    pub fn new(k: usize) -> SearchParams {
        SearchParams { k, nprobe: None, rerank: None, candidates: None }
    }

    /// Probes `nprobe` lists instead of the index's default (1..=nlist).
    pub fn nprobe(mut self, nprobe: usize) -> SearchParams {
        self.nprobe = Some(nprobe);
        self
    }

    /// Re-ranks the candidates this way instead of the index's default.
    pub fn rerank(mut self, rerank: Rerank) -> SearchParams {
        self.rerank = Some(rerank);
        self
    }

    /// Hands `candidates` from the approximate stage to re-ranking
    /// (default [`DEFAULT_CANDIDATES`]).
    pub fn candidates(mut self, candidates: usize) -> SearchParams {
        self.candidates = Some(candidates);
        self
    }
}

/// Queries whose tables are computed together (see
/// `Quantizers::query_tables`): enough to amortise reading the centroids,
/// few enough that the batches spread over threads.
const QUERY_BATCH: usize = 128;

/// Buffers reused across the queries one thread runs.
#[derive(Default)]
struct Scratch {
    /// Per query of the batch, ‖x − c_l‖² for every list (nq × nlist).
    term1: Vec<f32>,
    /// Per query of the batch, ⟨x_j, q_jk⟩ (nq × m × ksub).
    ip: Vec<f32>,
    /// A query's non-zero coordinates.
    nonzeros: Vec<(u32, f32)>,
    work: Work,
}

/// Buffers of the scan of one query.
#[derive(Default)]
struct Work {
    /// The probed lists, as `list_key`s.
    coarse: Vec<u64>,
    /// Look-up table for the current list: term 2 + term 3.
    lut: Vec<f32>,
    unpacked: Vec<u32>,
    /// The quantized table and buffers of a fast-scan index.
    fast: Option<super::fastscan::FastScan>,
}

/// What becomes of one query's stage-1 candidates (query, candidates):
/// stage 2 and the results, or the candidates themselves.
pub(crate) type Finish<'a, T> = dyn Fn(&[f32], Vec<Entry>) -> Result<T> + Sync + 'a;

/// What one search call does, resolved and checked once for all queries.
pub(crate) struct Plan {
    k: usize,
    pub(crate) nprobe: usize,
    pub(crate) rerank: Rerank,
    /// Candidates for stage 2 as asked or defaulted (before the cap at the
    /// live vectors), for callers that report the settings used; only the
    /// image layer reports them, so a build without it never reads this.
    #[cfg_attr(not(feature = "images"), allow(dead_code))]
    pub(crate) candidates: usize,
    /// How many results stage 1 keeps.
    keep: usize,
}

impl Snapshot {
    /// Searches each row of `queries` (n × dim). Queries run in parallel on
    /// the current rayon pool; results are nearest first.
    pub fn search(&self, queries: &[f32], params: &SearchParams) -> Result<Vec<Vec<Neighbor>>> {
        let plan = self.plan(params)?;
        self.search_planned(queries, &plan)
    }

    /// Checks `params` against this index and resolves its defaults: the
    /// one place search settings are validated.
    pub(crate) fn plan(&self, params: &SearchParams) -> Result<Plan> {
        let c = self.manifest.config;
        if params.k == 0 {
            return Err(Error::invalid_argument("k", "k must be at least 1"));
        }
        let rerank = params.rerank.unwrap_or(if c.refine { Rerank::L2 } else { Rerank::Off });
        // Unset settings: the defaults stored for this kind of re-rank.
        let (default_nprobe, default_candidates) = self.search_defaults(rerank);
        let nprobe = params.nprobe.unwrap_or(default_nprobe);
        if nprobe == 0 || nprobe > c.nlist {
            return Err(Error::invalid_argument(
                "nprobe",
                format!("nprobe must be between 1 and nlist ({}), got {nprobe}", c.nlist),
            ));
        }
        if !c.refine && rerank != Rerank::Off {
            return Err(Error::invalid_argument(
                "rerank",
                "re-ranking needs the refine store (create the index with --refine)",
            ));
        }
        if self.quantizers.is_none() && !c.refine {
            return Err(Error::NotTrained);
        }
        if let Rerank::Emd(_) | Rerank::ExactEmd = rerank {
            if let Rerank::Emd(s) = rerank {
                s.validate()?;
            }
            // The ground cost is between the 1152 colour bins.
            if c.dim != crate::color::HIST_DIM {
                return Err(Error::invalid_argument(
                    "rerank",
                    format!(
                        "EMD re-ranking compares colour histograms of {} bins; this index has dimension {}",
                        crate::color::HIST_DIM,
                        c.dim
                    ),
                ));
            }
        }
        let candidates = params.candidates.unwrap_or(default_candidates);
        if candidates == 0 {
            return Err(Error::invalid_argument("candidates", "candidates must be at least 1"));
        }
        // No search returns more than the live vectors: capping k and the
        // candidates there bounds every buffer they size by the index.
        let live = usize::try_from(self.vectors()).unwrap_or(usize::MAX).max(1);
        let k = params.k.min(live);
        let keep = if rerank == Rerank::Off { k } else { k.max(candidates.min(live)) };
        Ok(Plan { k, nprobe, rerank, candidates, keep })
    }

    /// [`search`](Self::search) with settings already checked by [`plan`](Self::plan).
    pub(crate) fn search_planned(&self, queries: &[f32], plan: &Plan) -> Result<Vec<Vec<Neighbor>>> {
        self.run_planned(queries, plan, &|x, stage1| self.finish(x, stage1, plan))
    }

    /// Stage 1 for each query, then `finish` on its candidates (stage 2
    /// and the results, or for a part of an index the candidates
    /// themselves): queries in batches on the current rayon pool.
    pub(crate) fn run_planned<T: Send>(&self, queries: &[f32], plan: &Plan, finish: &Finish<'_, T>) -> Result<Vec<T>> {
        let c = self.manifest.config;
        crate::input::check_vectors(queries, c.dim, "queries")?;
        let d = c.dim;
        if queries.len() == d {
            return self.search_batch(queries, plan, &mut Scratch::default(), finish);
        }
        let batches: Vec<Vec<T>> = queries
            .par_chunks(QUERY_BATCH * d)
            .map_init(Scratch::default, |s, xs| self.search_batch(xs, plan, s, finish))
            .collect::<Result<_>>()?;
        Ok(batches.into_iter().flatten().collect())
    }

    /// Searches a batch of queries (nq × dim): a dense batch shares one
    /// table computation (matrix products read each centroid once); sparse
    /// queries, whose tables are built one query at a time either way, get
    /// theirs just before their scan, so that the 8 KB table is still in
    /// the nearest cache when it is read (measured: a batch of 128 tables
    /// built first, 1 MB, made batched search no faster than one query per
    /// call).
    fn search_batch<T>(&self, xs: &[f32], plan: &Plan, s: &mut Scratch, finish: &Finish<'_, T>) -> Result<Vec<T>> {
        let c = &self.manifest.config;
        let one_by_one = xs.len() == c.dim || crate::quantizer::is_sparse(xs);
        if let Some(q) = self.quantizers.as_deref().filter(|_| !one_by_one) {
            q.query_tables(xs, &mut s.nonzeros, &mut s.term1, &mut s.ip);
        }
        let (nlist, tsize) = (c.nlist, c.m * c.ksub());
        let mut out = Vec::with_capacity(xs.len() / c.dim);
        for (i, x) in xs.chunks_exact(c.dim).enumerate() {
            let stage1 = match self.quantizers.as_deref() {
                Some(q) => {
                    let i = if one_by_one {
                        q.query_tables(x, &mut s.nonzeros, &mut s.term1, &mut s.ip);
                        0
                    } else {
                        i
                    };
                    let term1 = &s.term1[i * nlist..(i + 1) * nlist];
                    let ip = &s.ip[i * tsize..(i + 1) * tsize];
                    self.scan_codes(q, term1, ip, plan, &mut s.work)?
                }
                None => self.scan_exact(x, plan.keep)?,
            };
            out.push(finish(x, stage1)?);
        }
        Ok(out)
    }

    /// Stage 2 (if any), then the k best as results.
    fn finish(&self, x: &[f32], stage1: Vec<Entry>, plan: &Plan) -> Result<Vec<Neighbor>> {
        let ranked = match plan.rerank {
            Rerank::Off => stage1,
            Rerank::L2 if self.quantizers.is_none() => stage1, // already exact
            Rerank::L2 => {
                let mut nz = Vec::new();
                crate::distance::nonzeros(x, &mut nz);
                self.rerank(stage1, |r| Ok(exact_l2(&nz, r)))?
            }
            Rerank::Emd(params) => {
                let query = distribution(x.iter().enumerate().map(|(i, &v)| (i, v)));
                self.rerank(stage1, |r| Ok(sinkhorn_distance(&query, &distribution(r.iter()), &params)))?
            }
            Rerank::ExactEmd => self.exact_emd_rerank(x, stage1, plan.k)?,
        };
        Ok(ranked
            .into_iter()
            .take(plan.k)
            .map(|(distance, id, loc)| Neighbor { id, distance, location: Location::unpack(loc) })
            .collect())
    }

    /// Stage 1 over PQ codes: the `plan.keep` best by asymmetric distance,
    /// given the query's term 1 for every list and its inner-product table.
    fn scan_codes(&self, q: &Quantizers, term1: &[f32], ip: &[f32], plan: &Plan, s: &mut Work) -> Result<Vec<Entry>> {
        let c = &q.config;
        let (m, ksub) = (c.m, c.ksub());
        // Keep the nprobe nearest lists, ordered by (distance, list): each
        // as one u64 whose integer order is that order, so that selecting
        // and sorting compare integers.
        s.coarse.clear();
        s.coarse.extend(term1.iter().enumerate().map(|(l, &d)| list_key(d, l as u32)));
        if plan.nprobe < s.coarse.len() {
            s.coarse.select_nth_unstable(plan.nprobe - 1);
            s.coarse.truncate(plan.nprobe);
        }
        // Nearest list first: its codes fill the top-k with good candidates,
        // so the threshold tightens early and fewer codes enter it later.
        s.coarse.sort_unstable();
        s.lut.resize(m * ksub, 0.0);
        s.unpacked.resize(m, 0);
        if c.fast_scan && s.fast.is_none() {
            s.fast = Some(super::fastscan::FastScan::new(m));
        }
        let mut top = TopK::new(plan.keep);
        let cpu = crate::simd::Cpu::get();
        for &key in &s.coarse {
            let l = key as u32 as usize;
            let term1 = term1[l];
            let term2 = &q.term2[l * m * ksub..(l + 1) * m * ksub];
            crate::simd::float::minus_2(cpu, term2, ip, &mut s.lut);
            if let Some(f) = &mut s.fast {
                f.prepare(&s.lut);
            }
            for (si, seg) in self.segments.iter().enumerate() {
                if seg.list_len(l) == 0 {
                    continue;
                }
                let (codes, ids) = seg.list(l)?;
                let list = List {
                    codes,
                    ids,
                    hide: self.hider(si),
                    base: Location { segment: si as u32, position: seg.list_start(l) as u32 }.pack(),
                };
                match &mut s.fast {
                    Some(f) => f.scan(codes, list.ids.len(), term1, &s.lut, &mut top, |i, d, t| list.offer(i, d, t)),
                    None => scan(&list, term1, &s.lut, c.m, c.nbits, &mut s.unpacked, &mut top),
                }
            }
        }
        Ok(top.into_sorted())
    }

    /// Exact L2 over every live vector of the refine store (untrained index).
    fn scan_exact(&self, x: &[f32], keep: usize) -> Result<Vec<Entry>> {
        let mut top = TopK::new(keep);
        let mut err = None;
        let mut nz = Vec::new();
        crate::distance::nonzeros(x, &mut nz);
        self.for_each_live(|si, p, id| {
            if err.is_some() {
                return;
            }
            match self.segments[si].refine(p) {
                Ok(r) => {
                    let d = exact_l2(&nz, r);
                    if d <= top.threshold() {
                        top.push(d, id, Location { segment: si as u32, position: p as u32 }.pack());
                    }
                }
                Err(e) => err = Some(e),
            }
        })?;
        match err {
            Some(e) => Err(e),
            None => Ok(top.into_sorted()),
        }
    }

    /// Stage 2: recomputes each candidate's distance from its stored exact
    /// vector and sorts again.
    fn rerank(&self, candidates: Vec<Entry>, mut dist: impl FnMut(RefineRef<'_>) -> Result<f32>) -> Result<Vec<Entry>> {
        // Two passes of hints (offsets, then the data they point to) so the
        // candidates' cache misses overlap; then the distances.
        for offsets_only in [true, false] {
            for &(_, _, loc) in &candidates {
                let l = Location::unpack(loc);
                if let Some(seg) = self.segments.get(l.segment as usize) {
                    seg.prefetch_refine(l.position as usize, offsets_only);
                }
            }
        }
        let mut out = Vec::with_capacity(candidates.len());
        for (_, id, loc) in candidates {
            let l = Location::unpack(loc);
            let r = self.segments[l.segment as usize].refine(l.position as usize)?;
            out.push((dist(r)?, id, loc));
        }
        out.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        Ok(out)
    }

    /// Stage 2 by exact EMD from the histogram behind `x` (a Hellinger
    /// vector): candidates in stage 1's order, each solved only if its lower
    /// bounds let it enter the k best found so far.
    fn exact_emd_rerank(&self, x: &[f32], candidates: Vec<Entry>, k: usize) -> Result<Vec<Entry>> {
        if x.iter().all(|&v| v == 0.0) {
            return Ok(candidates);
        }
        let mut q = crate::color::transport::EmdQuery::from_hellinger(x)?;
        let mut best: Vec<Entry> = Vec::with_capacity(k + 1);
        for (_, id, loc) in candidates {
            let l = Location::unpack(loc);
            let r = self.segments[l.segment as usize].refine(l.position as usize)?;
            let limit = if best.len() == k { f64::from(best[k - 1].0) } else { f64::INFINITY };
            if let Some(d) = q.distance_within(r.iter(), limit) {
                let d = d as f32;
                let at = best.partition_point(|b| (b.0, b.1) < (d, id));
                if at < k {
                    best.insert(at, (d, id, loc));
                    best.truncate(k);
                }
            }
        }
        Ok(best)
    }

    /// The record (path, size, mtime) of a result, if its segment has records.
    pub fn record(&self, at: Location) -> Result<Option<crate::format::segment::Record>> {
        let seg = self.segments.get(at.segment as usize).ok_or_else(|| {
            Error::invalid_argument("at", format!("location {at:?} does not belong to this snapshot"))
        })?;
        Ok(seg.record(at.position as usize)?.map(|r| r.to_record()))
    }

    /// The exact stored vector of a result (refine store), dense.
    pub fn vector(&self, at: Location) -> Result<Vec<f32>> {
        let seg = self.segments.get(at.segment as usize).ok_or_else(|| {
            Error::invalid_argument("at", format!("location {at:?} does not belong to this snapshot"))
        })?;
        let mut v = vec![0f32; self.manifest.config.dim];
        for (k, x) in seg.refine(at.position as usize)?.iter() {
            v[k] = x;
        }
        Ok(v)
    }
}

/// ‖x − y‖² for x and y both sparse (coordinates ascending), summed over
/// the union of their non-zeros: colour histograms have ~65 non-zeros of
/// 1152, so this costs a twentieth of a dense pass. Each term is a square of
/// a difference, never an expansion like ‖x‖² + ‖y‖² − 2⟨x, y⟩, so equal
/// vectors are at distance exactly 0.
pub(crate) fn exact_l2(x: &[(u32, f32)], y: RefineRef<'_>) -> f32 {
    let mut sum = 0f64;
    let mut i = 0;
    for (k, v) in y.iter() {
        while i < x.len() && (x[i].0 as usize) < k {
            sum += (x[i].1 as f64).powi(2);
            i += 1;
        }
        let diff = if i < x.len() && x[i].0 as usize == k {
            i += 1;
            x[i - 1].1 - v
        } else {
            v
        };
        sum += (diff as f64).powi(2);
    }
    sum += x[i..].iter().map(|&(_, v)| (v as f64).powi(2)).sum::<f64>();
    sum as f32
}

/// The colour distribution behind a Hellinger vector: its squares, sparse.
fn distribution(v: impl Iterator<Item = (usize, f32)>) -> Vec<(u16, f32)> {
    v.filter(|(_, x)| *x != 0.0).map(|(k, x)| (k as u16, x * x)).collect()
}

/// One inverted list of one segment.
struct List<'a> {
    codes: &'a [u8],
    ids: Ids<'a>,
    hide: Hider<'a>,
    /// Location of the list's first vector, packed.
    base: u64,
}

impl List<'_> {
    /// Offers vector `i` at distance `d`; deleted vectors are checked only
    /// when they would enter the top-k, which keeps the scan loop tight.
    #[inline(never)]
    fn offer(&self, i: usize, d: f32, top: &mut TopK) {
        if d <= top.threshold() {
            let id = self.ids.get(i);
            if !self.hide.hides(id) {
                top.push(d, id, self.base + i as u64);
            }
        }
    }

    /// Offers the vectors `first + i` of a block whose bit i is set in
    /// `mask` (their distance was within the threshold when the block
    /// started; `offer` checks again): vector compares found them, so this
    /// loop runs only for the few that may enter.
    #[inline]
    fn offer_block(&self, first: usize, dist: &[f32], mut mask: u32, top: &mut TopK) {
        while mask != 0 {
            let i = mask.trailing_zeros() as usize;
            self.offer(first + i, dist[i], top);
            mask &= mask - 1;
        }
    }
}

/// A list's place in the probe order as one integer: the distance's bits
/// mapped so that unsigned order is `f32::total_cmp`'s (sign bit flipped
/// for positives, every bit for negatives), then the list number, which
/// breaks ties as `(distance, list)` order does.
#[inline]
fn list_key(d: f32, list: u32) -> u64 {
    let b = d.to_bits();
    let ordered = if b >> 31 == 1 { !b } else { b | 1 << 31 };
    (u64::from(ordered) << 32) | u64::from(list)
}

/// Adds each code's table entries to `base` and offers the sum to `top`.
fn scan(list: &List<'_>, base: f32, lut: &[f32], m: usize, nbits: usize, unpacked: &mut [u32], top: &mut TopK) {
    if nbits == 8 {
        let (lut, _) = lut.as_chunks::<256>();
        match m {
            4 => return scan_u8::<4>(list, base, lut, top),
            8 => return scan_u8x8(list, base, lut.try_into().expect("table has 8 rows"), top),
            16 => return scan_u8::<16>(list, base, lut, top),
            32 => return scan_u8::<32>(list, base, lut, top),
            _ => {}
        }
    }
    let ksub = 1 << nbits;
    let code_size = (m * nbits).div_ceil(8);
    for (i, code) in list.codes.chunks_exact(code_size).enumerate() {
        codes::unpack(code, nbits, unpacked);
        let mut d = base;
        for (j, &k) in unpacked.iter().enumerate() {
            d += lut[j * ksub + k as usize];
        }
        list.offer(i, d, top);
    }
}

/// The byte-per-sub-code fast path, with `M` known at compile time so the
/// inner loop unrolls and needs no bounds checks (a u8 always indexes 256).
/// Distances are computed a block at a time and only then compared with the
/// top-k's threshold: the arithmetic loop has no branch, and the rare vector
/// that may enter the top-k takes the slow path.
#[inline]
fn scan_u8<const M: usize>(list: &List<'_>, base: f32, lut: &[[f32; 256]], top: &mut TopK) {
    const BLOCK: usize = 32;
    let cpu = crate::simd::Cpu::get();
    let lut: &[[f32; 256]; M] = lut.try_into().expect("table has m rows");
    let (codes, _) = list.codes.as_chunks::<M>();
    let mut dist = [0f32; BLOCK];
    for (b, block) in codes.chunks(BLOCK).enumerate() {
        for (d, code) in dist.iter_mut().zip(block) {
            // Four independent partial sums: a single running sum would make
            // every add wait for the previous one.
            let mut acc = [0f32; 4];
            if M.is_multiple_of(8) {
                // One 8-byte load per eight sub-codes instead of eight loads:
                // the loads are what the loop runs out of first.
                for w in 0..M / 8 {
                    let word = u64::from_le_bytes(code[8 * w..8 * w + 8].try_into().expect("8 bytes"));
                    for b in 0..8 {
                        acc[b % 4] += lut[8 * w + b][(word >> (8 * b)) as u8 as usize];
                    }
                }
            } else {
                for j in 0..M {
                    acc[j % 4] += lut[j][code[j] as usize];
                }
            }
            *d = base + ((acc[0] + acc[1]) + (acc[2] + acc[3]));
        }
        let dist = &dist[..block.len()];
        let mask = crate::simd::float::le_mask(cpu, dist, top.threshold());
        list.offer_block(b * BLOCK, dist, mask, top);
    }
}

/// `scan_u8` for m 8, the default shape: the sums and their threshold mask
/// come from `simd::adc::sums8` (AVX2 gathers where the CPU has them, the
/// same bits as the portable loop).
fn scan_u8x8(list: &List<'_>, base: f32, lut: &[[f32; 256]; 8], top: &mut TopK) {
    const BLOCK: usize = 32;
    let cpu = crate::simd::Cpu::get();
    let (codes, _) = list.codes.as_chunks::<8>();
    let mut dist = [0f32; BLOCK];
    for (b, block) in codes.chunks(BLOCK).enumerate() {
        let dist = &mut dist[..block.len()];
        let mask = crate::simd::adc::sums8(cpu, block, lut, base, top.threshold(), dist);
        list.offer_block(b * BLOCK, dist, mask, top);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::little_endian::{F32, U16};

    /// `list_key`'s integer order is `(total_cmp of the distance, list)`,
    /// signed zeros, infinities and NaN included.
    #[test]
    fn list_keys_sort_as_distance_then_list() {
        let ds = [0.0, -0.0, 1.5, -2.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e-40, 1.5, 3.0e38];
        let mut pairs: Vec<(f32, u32)> = ds.iter().enumerate().map(|(i, &d)| (d, (i * 7 % 10) as u32)).collect();
        let mut keys: Vec<u64> = pairs.iter().map(|&(d, l)| list_key(d, l)).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        keys.sort_unstable();
        let back: Vec<(u32, u32)> = keys.iter().map(|&k| ((k >> 32) as u32, k as u32)).collect();
        let want: Vec<(u32, u32)> = pairs.iter().map(|&(d, l)| ((list_key(d, l) >> 32) as u32, l)).collect();
        assert_eq!(back, want);
        assert!(list_key(1.0, 5) < list_key(1.0, 6) && list_key(1.0, 6) < list_key(1.5, 0));
        assert!(list_key(-0.0, 9) < list_key(0.0, 0));
    }

    #[test]
    fn sparse_exact_l2_matches_dense() {
        let dim = 40;
        let mut seed = 7u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as u32
        };
        for _ in 0..200 {
            let mut x = vec![0f32; dim];
            let mut y = vec![0f32; dim];
            for p in 0..dim {
                if next() % 3 == 0 {
                    x[p] = (next() % 100) as f32 / 50.0;
                }
                if next() % 3 == 0 {
                    y[p] = (next() % 100) as f32 / 50.0;
                }
            }
            let mut nz = Vec::new();
            crate::distance::nonzeros(&x, &mut nz);
            let (dims, values): (Vec<U16>, Vec<F32>) =
                (0..dim).filter(|&p| y[p] != 0.0).map(|p| (U16::new(p as u16), F32::new(y[p]))).unzip();
            let want: f64 = x.iter().zip(&y).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum();
            let got = exact_l2(&nz, RefineRef::from_f32(&dims, &values));
            assert!((got as f64 - want).abs() < 1e-5, "{got} vs {want}");
            // A vector is at distance exactly 0 from itself.
            let (dims, values): (Vec<U16>, Vec<F32>) =
                nz.iter().map(|&(p, v)| (U16::new(p as u16), F32::new(v))).unzip();
            assert_eq!(exact_l2(&nz, RefineRef::from_f32(&dims, &values)), 0.0);
        }
    }
}
