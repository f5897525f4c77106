//! The offline inspection tool's numbers: one id, one list or one segment
//! explained, and the index's health (drift since training, an estimated
//! recall of stage 1 measured on a sample of stored vectors, and advice
//! with the numbers behind it). Read-only: everything is computed from one
//! [`Snapshot`], so a writer may commit meanwhile.

use crate::error::{Error, Result};
use crate::format::quantizer_file::TrainBaseline;
use crate::format::{segment_name, tombstone_name};
use crate::read::topk::TopK;
use crate::read::{Rerank, SearchParams, Snapshot};
use rayon::prelude::*;
use serde::Serialize;

/// One stored copy of an id (`inspect --id`): an id re-added after a
/// delete has an older, hidden copy besides the live one.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct StoredCopy {
    /// Segment file holding it.
    pub segment: String,
    /// Manifest generation that added that segment.
    pub segment_generation: u64,
    /// Inverted list it is filed under.
    pub list: usize,
    /// Position within the segment.
    pub position: usize,
    /// Its PQ code, as hex (empty for an untrained index).
    pub code: String,
    /// ‖x − decode(list, code)‖², when both the exact vector (refine store)
    /// and a code exist.
    pub reconstruction_error: Option<f32>,
    /// ‖x − centroid(list)‖², the coarse quantization error, when the
    /// exact vector and quantizers exist.
    pub coarse_error: Option<f32>,
    /// The record: the indexed file's path, when the segment keeps records.
    pub record: Option<String>,
    /// Hidden by a tombstone.
    pub deleted: bool,
    /// The tombstone file that hides it.
    pub deleted_by: Option<String>,
}

/// Everything stored under one id (`inspect --id`).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct IdReport {
    /// The id asked about.
    pub id: u64,
    /// Whether a live (not deleted) copy exists.
    pub live: bool,
    /// Every stored copy, in manifest order.
    pub copies: Vec<StoredCopy>,
}

/// One segment's share of a list.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct ListInSegment {
    /// Segment file.
    pub segment: String,
    /// Vectors of the list stored in it, deleted ones included.
    pub stored: u64,
    /// Of those, live.
    pub live: u64,
}

/// A neighbouring list, by centroid distance.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct NearList {
    /// The list.
    pub list: usize,
    /// Squared L2 between the two centroids.
    pub distance: f32,
}

/// One inverted list explained (`inspect --list`).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct ListReport {
    /// The list.
    pub list: usize,
    /// Live vectors in it, over all segments.
    pub live: u64,
    /// Per segment, in manifest order.
    pub segments: Vec<ListInSegment>,
    /// The 5 lists with the nearest centroids, nearest first (empty when
    /// untrained).
    pub nearest_lists: Vec<NearList>,
    /// Up to 20 live ids of the list, in storage order.
    pub sample_ids: Vec<u64>,
    /// Mean ‖x − decode‖² over up to 200 of its live vectors (needs the
    /// refine store and quantizers).
    pub mean_reconstruction_error: Option<f64>,
}

/// One segment explained (`inspect --segment`).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct SegmentReport {
    /// Index of the segment in manifest order (what `--segment` takes).
    pub index: usize,
    /// File name.
    pub file: String,
    /// Manifest generation that added it.
    pub generation: u64,
    /// Vectors stored, deleted ones included.
    pub vectors: u64,
    /// Of those, hidden by tombstones.
    pub deleted: u64,
    /// File size.
    pub bytes: u64,
    /// Bytes per stored id.
    pub id_width: usize,
    /// Bytes of PQ codes.
    pub code_bytes: u64,
    /// Bytes of the refine store.
    pub refine_bytes: u64,
    /// Bytes of records.
    pub record_bytes: u64,
    /// Lists holding at least one vector of this segment.
    pub nonempty_lists: usize,
    /// The 10 largest lists of this segment: (list, stored vectors).
    pub largest_lists: Vec<(usize, u64)>,
    /// Tombstone files that hide vectors of this segment: (file, how many).
    pub hidden_by: Vec<(String, u64)>,
}

/// Stage-1 recall at one nprobe, estimated on stored vectors.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct RecallPoint {
    /// Lists probed.
    pub nprobe: usize,
    /// Mean fraction of the exact 10 nearest (the query itself excluded)
    /// that stage 1 (PQ codes, no re-ranking) returns in its 10; a result
    /// at a distance no larger than the true 10th counts (ties).
    pub recall_at_10: f64,
    /// The same after the index's default re-ranking (exact L2 over the
    /// default candidates; `None` without a refine store).
    pub reranked_recall_at_10: Option<f64>,
}

/// Per-list health numbers (the HTML report's per-list plot).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct ListHealth {
    /// The list.
    pub list: usize,
    /// Live vectors.
    pub live: u64,
    /// Mean ‖x − decode‖² over the sampled vectors of this list (`None`
    /// when none was sampled or no exact vectors are kept).
    pub mean_reconstruction_error: Option<f64>,
    /// Squared L2 from its centroid to the nearest other centroid (`None`
    /// when untrained or nlist > 2048, where this costs too much).
    pub next_centroid_distance: Option<f32>,
}

/// One piece of advice, with the numbers behind it.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct Advice {
    /// What to do: `"retrain"`, `"compact"` or `"nprobe"`.
    pub action: String,
    /// The measured value that triggered it.
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// A sentence with the numbers.
    pub message: String,
}

/// How [`Index::health`](crate::Index::health) samples.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct HealthOptions {
    /// Stored vectors sampled for reconstruction and coarse errors.
    pub sample: usize,
    /// Of those, how many serve as queries for the recall estimate (each
    /// costs one exact scan of the index).
    pub queries: usize,
    /// Seed of the sample.
    pub seed: u64,
}

impl Default for HealthOptions {
    fn default() -> HealthOptions {
        HealthOptions { sample: 2000, queries: 100, seed: 1234 }
    }
}

/// Advice thresholds, stated once.
pub mod thresholds {
    /// Retrain when the live vectors grew this many times since training.
    pub const GROWTH: f64 = 2.0;
    /// Retrain when the imbalance factor exceeds this.
    pub const IMBALANCE: f64 = 2.0;
    /// Retrain when the mean reconstruction or coarse error of stored
    /// vectors is this many times the training baseline's. Vectors from
    /// the training distribution that were not trained on measure about
    /// 1.1× (in-sample errors are lower); a shift in the data, far more.
    pub const ERROR_GROWTH: f64 = 1.25;
    /// Compact when this fraction of stored vectors are deleted.
    pub const DELETED: f64 = 0.2;
    /// Suggest a larger nprobe when the estimated recall is below this …
    pub const RECALL: f64 = 0.9;
    /// … and the larger nprobe raises it by at least this much.
    pub const RECALL_GAIN: f64 = 0.05;
}

/// The index's health: drift since training, errors of a sample, estimated
/// stage-1 recall, and advice (`inspect --health`).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct HealthReport {
    /// Manifest generation measured.
    pub generation: u64,
    /// Live vectors now.
    pub vectors: u64,
    /// Live vectors when the quantizers were trained (0: untrained).
    pub trained_vectors: u64,
    /// `vectors / trained_vectors` (0 when untrained).
    pub growth_since_training: f64,
    /// Vectors the quantizers were trained on.
    pub train_points: u64,
    /// Stored vectors hidden by tombstones.
    pub deleted: u64,
    /// `deleted / stored`: roughly the fraction of segment bytes a compaction frees.
    pub deleted_fraction: f64,
    /// Segment bytes held by deleted vectors (their share of each segment's size).
    pub deleted_bytes: u64,
    /// faiss's imbalance factor nlist·Σn²/(Σn)².
    pub imbalance: f64,
    /// Stored vectors sampled.
    pub sample: usize,
    /// Mean ‖x − decode(code)‖² over the sample (needs refine store and quantizers).
    pub reconstruction_error: Option<f64>,
    /// Mean ‖x − nearest centroid‖² over the sample, the coarse error.
    pub coarse_error: Option<f64>,
    /// Mean ‖x‖² over the sample, to put the errors in proportion.
    pub mean_norm: Option<f64>,
    /// The same numbers measured on the training points when the
    /// quantizers were trained (`None`: imported quantizers, or trained by
    /// a build that wrote quantizer files of version 1).
    pub baseline: Option<TrainBaseline>,
    /// `reconstruction_error / baseline.reconstruction_error`.
    pub reconstruction_growth: Option<f64>,
    /// `coarse_error / baseline.coarse_error`.
    pub coarse_growth: Option<f64>,
    /// `imbalance / baseline.imbalance` (the live vectors' lists against
    /// the training points').
    pub imbalance_growth: Option<f64>,
    /// The index's default nprobe.
    pub nprobe: usize,
    /// Estimated stage-1 recall@10 at the default nprobe and a few larger
    /// ones, ascending nprobe (empty when untrained or no exact vectors).
    pub recall: Vec<RecallPoint>,
    /// Queries the recall was estimated on.
    pub recall_queries: usize,
    /// Per list, in list order.
    pub lists: Vec<ListHealth>,
    /// What to do, with the numbers.
    pub advice: Vec<Advice>,
}

/// Why one id did or did not come back for one query (`chromatica explain`).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct QueryExplanation {
    /// The id explained.
    pub id: u64,
    /// Whether a live copy of it exists (if not, no search returns it).
    pub live: bool,
    /// The list its live copy is filed under (`None` when not live).
    pub list: Option<usize>,
    /// 1-based rank of that list by centroid distance to the query.
    pub list_rank: Option<usize>,
    /// Lists probed (the index default unless given).
    pub nprobe: usize,
    /// Whether its list was among those probed.
    pub list_probed: bool,
    /// 1-based rank by code distance among the vectors of the probed lists
    /// (stage 1); `None` when its list was not probed.
    pub stage1_rank: Option<usize>,
    /// 1-based rank by code distance had every list been probed.
    pub stage1_rank_all_lists: Option<usize>,
    /// Its code distance to the query (squared L2 estimated from the code).
    pub stage1_distance: Option<f32>,
    /// Candidates stage 1 hands to re-ranking (0 without re-ranking).
    pub candidates: usize,
    /// Whether it was among them.
    pub in_candidates: bool,
    /// Re-ranking used: `"none"`, `"l2"` or `"emd"`.
    pub rerank: String,
    /// 1-based rank in the final order (after re-ranking); `None` when it
    /// did not reach it.
    pub final_rank: Option<usize>,
    /// Its distance in the final order.
    pub final_distance: Option<f32>,
    /// Results asked for.
    pub k: usize,
    /// Whether it is among the k results.
    pub returned: bool,
    /// The k-th result's distance: what it had to beat.
    pub kth_distance: Option<f32>,
    /// Exact-EMD searches (image indexes): its exact EMD to the query.
    pub emd: Option<f32>,
    /// Exact-EMD searches: the scan's lower bound on its EMD (the larger of
    /// the Lab-mean and nearest-mass bounds), when the scan looked at it;
    /// a bound above the k-th EMD skips it without a solve.
    pub emd_bound: Option<f32>,
    /// Exact-EMD searches: whether every live image was checked by bounds
    /// after the PQ candidates (colour and image queries), so that being no
    /// PQ candidate does not keep it out.
    pub scanned: bool,
    /// An excluded colour dropped it.
    pub excluded: bool,
    /// The explanation, as a sentence.
    pub reason: String,
}

/// Dense copy of a sparse refine vector.
fn dense(r: crate::format::segment::RefineRef<'_>, d: usize) -> Vec<f32> {
    let mut x = vec![0f32; d];
    for (k, v) in r.iter() {
        x[k] = v;
    }
    x
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Snapshot {
    /// The tombstone file whose generation is `g`.
    fn tombstone_of(&self, g: u64) -> Option<String> {
        self.manifest.tombstones.iter().find(|t| t.generation == g).map(|t| tombstone_name(t.file))
    }

    /// The plain code of position `p` in list `l` of segment `si`.
    fn code_at(&self, si: usize, l: usize, i: usize) -> Result<Vec<u8>> {
        let cs = self.manifest.config.code_size();
        let codes = self.segments[si].plain_codes(l)?;
        Ok(codes[i * cs..(i + 1) * cs].to_vec())
    }

    /// (reconstruction error, coarse error) of the vector at (si, l, i).
    fn errors(&self, si: usize, l: usize, i: usize) -> Result<(Option<f32>, Option<f32>)> {
        let c = self.manifest.config;
        let (Some(q), true) = (&self.quantizers, c.refine) else { return Ok((None, None)) };
        let seg = &self.segments[si];
        let x = dense(seg.refine(seg.list_start(l) + i)?, c.dim);
        let code = self.code_at(si, l, i)?;
        let mut y = vec![0f32; c.dim];
        q.decode(l, &code, &mut y);
        let cen = &q.coarse[l * c.dim..(l + 1) * c.dim];
        Ok((Some(crate::distance::l2sq(&x, &y)), Some(crate::distance::l2sq(&x, cen))))
    }

    /// Every stored copy of `id`.
    pub(crate) fn explain_id(&self, id: u64) -> Result<IdReport> {
        let mut copies = Vec::new();
        for (si, seg) in self.segments.iter().enumerate() {
            let hide = self.hider(si);
            for l in 0..self.manifest.config.nlist {
                let (_, ids) = seg.list(l)?;
                for i in 0..ids.len() {
                    if ids.get(i) != id {
                        continue;
                    }
                    let p = seg.list_start(l) + i;
                    let deleted = hide.hides(id);
                    let (reconstruction_error, coarse_error) = self.errors(si, l, i)?;
                    copies.push(StoredCopy {
                        segment: segment_name(self.manifest.segments[si].file),
                        segment_generation: self.manifest.segments[si].generation,
                        list: l,
                        position: p,
                        code: if seg.has_codes() { hex(&self.code_at(si, l, i)?) } else { String::new() },
                        reconstruction_error,
                        coarse_error,
                        record: seg.record(p)?.map(|r| r.to_record().path.display().to_string()),
                        deleted,
                        deleted_by: if deleted {
                            self.deleted.get(&id).and_then(|&g| self.tombstone_of(g))
                        } else {
                            None
                        },
                    });
                }
            }
        }
        Ok(IdReport { id, live: copies.iter().any(|c| !c.deleted), copies })
    }

    /// List `l` explained.
    pub(crate) fn explain_list(&self, l: usize) -> Result<ListReport> {
        let c = self.manifest.config;
        if l >= c.nlist {
            return Err(Error::invalid_argument("list", format!("list must be below nlist ({}), got {l}", c.nlist)));
        }
        let mut segments = Vec::new();
        let mut sample_ids = Vec::new();
        let (mut err_sum, mut err_n) = (0f64, 0usize);
        let mut live_total = 0;
        for (si, seg) in self.segments.iter().enumerate() {
            let hide = self.hider(si);
            let (_, ids) = seg.list(l)?;
            let mut live = 0;
            for (i, id) in ids.iter().enumerate() {
                if hide.hides(id) {
                    continue;
                }
                live += 1;
                if sample_ids.len() < 20 {
                    sample_ids.push(id);
                }
                if err_n < 200 {
                    if let (Some(e), _) = self.errors(si, l, i)? {
                        err_sum += e as f64;
                        err_n += 1;
                    }
                }
            }
            live_total += live;
            segments.push(ListInSegment {
                segment: segment_name(self.manifest.segments[si].file),
                stored: ids.len() as u64,
                live,
            });
        }
        let nearest_lists = match &self.quantizers {
            None => Vec::new(),
            Some(q) => {
                let d = c.dim;
                let me = &q.coarse[l * d..(l + 1) * d];
                let mut near: Vec<NearList> = (0..c.nlist)
                    .filter(|&o| o != l)
                    .map(|o| NearList { list: o, distance: crate::distance::l2sq(me, &q.coarse[o * d..(o + 1) * d]) })
                    .collect();
                near.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.list.cmp(&b.list)));
                near.truncate(5);
                near
            }
        };
        Ok(ListReport {
            list: l,
            live: live_total,
            segments,
            nearest_lists,
            sample_ids,
            mean_reconstruction_error: (err_n > 0).then(|| err_sum / err_n as f64),
        })
    }

    /// Segment `si` (manifest order) explained.
    pub(crate) fn explain_segment(&self, si: usize) -> Result<SegmentReport> {
        let Some(seg) = self.segments.get(si) else {
            return Err(Error::invalid_argument(
                "segment",
                format!("segment must be below the segment count ({}), got {si}", self.segments.len()),
            ));
        };
        let meta = &self.manifest.segments[si];
        let nlist = self.manifest.config.nlist;
        let mut sizes: Vec<(usize, u64)> = (0..nlist).map(|l| (l, seg.list_len(l) as u64)).collect();
        let nonempty_lists = sizes.iter().filter(|s| s.1 > 0).count();
        sizes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        sizes.truncate(10);
        let mut hidden: std::collections::BTreeMap<u64, u64> = Default::default();
        let hide = self.hider(si);
        for l in 0..nlist {
            let (_, ids) = seg.list(l)?;
            for id in ids.iter() {
                if hide.hides(id) {
                    *hidden.entry(self.deleted[&id]).or_default() += 1;
                }
            }
        }
        Ok(SegmentReport {
            index: si,
            file: segment_name(meta.file),
            generation: meta.generation,
            vectors: meta.vectors,
            deleted: meta.deleted,
            bytes: meta.bytes,
            id_width: seg.id_width(),
            code_bytes: seg.code_bytes() as u64,
            refine_bytes: seg.refine_bytes() as u64,
            record_bytes: seg.record_bytes() as u64,
            nonempty_lists,
            largest_lists: sizes,
            hidden_by: hidden
                .into_iter()
                .map(|(g, n)| (self.tombstone_of(g).unwrap_or_else(|| format!("generation {g}")), n))
                .collect(),
        })
    }

    /// Drift, sampled errors, estimated recall and advice.
    pub(crate) fn health(&self, opts: &HealthOptions) -> Result<HealthReport> {
        use rand::SeedableRng;
        let c = self.manifest.config;
        let d = c.dim;
        let stats = self.list_stats();
        let stored = self.manifest.stored_vectors();
        let deleted = self.manifest.deleted_vectors();
        let deleted_bytes: u64 = self
            .manifest
            .segments
            .iter()
            .map(|s| if s.vectors == 0 { 0 } else { (s.bytes as u128 * s.deleted as u128 / s.vectors as u128) as u64 })
            .sum();
        // Live positions: (segment, list, index in list, id).
        let mut at: Vec<(u32, u32, u32, u64)> = Vec::with_capacity(self.vectors() as usize);
        for (si, seg) in self.segments.iter().enumerate() {
            let hide = self.hider(si);
            for l in 0..c.nlist {
                let (_, ids) = seg.list(l)?;
                for (i, id) in ids.iter().enumerate() {
                    if !hide.hides(id) {
                        at.push((si as u32, l as u32, i as u32, id));
                    }
                }
            }
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
        let pick = rand::seq::index::sample(&mut rng, at.len(), opts.sample.min(at.len())).into_vec();
        let mut per_list = vec![(0f64, 0usize); c.nlist];
        let (mut rec, mut coarse, mut norm, mut n) = (0f64, 0f64, 0f64, 0usize);
        let can_measure = self.quantizers.is_some() && c.refine;
        if can_measure {
            for &k in &pick {
                let (si, l, i, _) = at[k];
                let (si, l, i) = (si as usize, l as usize, i as usize);
                if let (Some(e), Some(ce)) = self.errors(si, l, i)? {
                    let seg = &self.segments[si];
                    let x = dense(seg.refine(seg.list_start(l) + i)?, d);
                    rec += e as f64;
                    coarse += ce as f64;
                    norm += crate::distance::norm_sq(&x) as f64;
                    n += 1;
                    per_list[l].0 += e as f64;
                    per_list[l].1 += 1;
                }
            }
        }
        let next_centroid: Vec<Option<f32>> = match &self.quantizers {
            Some(q) if c.nlist <= 2048 && c.nlist > 1 => (0..c.nlist)
                .into_par_iter()
                .map(|l| {
                    let me = &q.coarse[l * d..(l + 1) * d];
                    (0..c.nlist)
                        .filter(|&o| o != l)
                        .map(|o| crate::distance::l2sq(me, &q.coarse[o * d..(o + 1) * d]))
                        .min_by(f32::total_cmp)
                })
                .collect(),
            _ => vec![None; c.nlist],
        };
        let mut live_per_list = vec![0u64; c.nlist];
        for &(_, l, _, _) in &at {
            live_per_list[l as usize] += 1;
        }
        let lists = (0..c.nlist)
            .map(|l| ListHealth {
                list: l,
                live: live_per_list[l],
                mean_reconstruction_error: (per_list[l].1 > 0).then(|| per_list[l].0 / per_list[l].1 as f64),
                next_centroid_distance: next_centroid[l],
            })
            .collect();
        // Recall: the first `queries` of the sample against exact search
        // over every live vector (the refine store), the query itself excluded.
        let mut recall = Vec::new();
        let nq = opts.queries.min(pick.len());
        if can_measure && nq > 0 && at.len() > 10 {
            let mut qs = vec![0f32; nq * d];
            let mut qids = Vec::with_capacity(nq);
            for (row, &k) in qs.chunks_exact_mut(d).zip(&pick[..nq]) {
                let (si, l, i, id) = at[k];
                let seg = &self.segments[si as usize];
                row.copy_from_slice(&dense(seg.refine(seg.list_start(l as usize) + i as usize)?, d));
                qids.push(id);
            }
            let truth = self.exact_top(&qs, &qids, 10)?;
            let mut probes = vec![c.nprobe];
            for f in [2, 4, 8] {
                let p = (c.nprobe * f).min(c.nlist);
                if !probes.contains(&p) {
                    probes.push(p);
                }
            }
            let measure = |params: SearchParams| -> Result<f64> {
                let got = self.search(&qs, &params)?;
                self.recall_of(&qs, &qids, &truth, &got)
            };
            for np in probes {
                recall.push(RecallPoint {
                    nprobe: np,
                    recall_at_10: measure(SearchParams::new(11).nprobe(np).rerank(Rerank::Off))?,
                    reranked_recall_at_10: Some(measure(SearchParams::new(11).nprobe(np).rerank(Rerank::L2))?),
                });
            }
        }
        let mean = |s: f64| (n > 0).then(|| s / n as f64);
        let growth = if self.manifest.trained_vectors == 0 {
            0.0
        } else {
            self.vectors() as f64 / self.manifest.trained_vectors as f64
        };
        let deleted_fraction = if stored == 0 { 0.0 } else { deleted as f64 / stored as f64 };
        let baseline = self.quantizers.as_ref().and_then(|q| q.baseline);
        let ratio = |now: Option<f64>, then: f64| now.filter(|_| then > 0.0).map(|v| v / then);
        let reconstruction_growth = baseline.and_then(|b| ratio(mean(rec), b.reconstruction_error));
        let coarse_growth = baseline.and_then(|b| ratio(mean(coarse), b.coarse_error));
        let imbalance_growth = baseline.and_then(|b| ratio(Some(stats.imbalance).filter(|&v| v > 0.0), b.imbalance));
        let mut advice = Vec::new();
        if let Some(b) = baseline {
            for (what, growth, now, then) in [
                ("reconstruction", reconstruction_growth, mean(rec), b.reconstruction_error),
                ("coarse", coarse_growth, mean(coarse), b.coarse_error),
            ] {
                if let (Some(g), Some(now)) = (growth, now) {
                    if g >= thresholds::ERROR_GROWTH {
                        advice.push(Advice {
                            action: "retrain".into(),
                            value: g,
                            threshold: thresholds::ERROR_GROWTH,
                            message: format!(
                                "retrain: {what} error grew {:.0}% since training ({now:.4} on {n} stored vectors, {then:.4} on the {} training points)",
                                100.0 * (g - 1.0),
                                b.points
                            ),
                        });
                    }
                }
            }
        }
        if growth >= thresholds::GROWTH {
            advice.push(Advice {
                action: "retrain".into(),
                value: growth,
                threshold: thresholds::GROWTH,
                message: format!(
                    "retrain: the index holds {} live vectors, {growth:.1}× the {} it held when trained",
                    self.vectors(),
                    self.manifest.trained_vectors
                ),
            });
        }
        if self.quantizers.is_some() && stats.imbalance > thresholds::IMBALANCE {
            advice.push(Advice {
                action: "retrain".into(),
                value: stats.imbalance,
                threshold: thresholds::IMBALANCE,
                message: format!(
                    "retrain: lists are uneven (imbalance factor {:.2} > {}{}; the largest list holds {}, the mean is {:.0})",
                    stats.imbalance,
                    thresholds::IMBALANCE,
                    baseline.map_or(String::new(), |b| format!(", {:.2} at training", b.imbalance)),
                    stats.max,
                    stats.mean
                ),
            });
        }
        if deleted_fraction >= thresholds::DELETED {
            let seg_bytes: u64 = self.manifest.segments.iter().map(|s| s.bytes).sum();
            advice.push(Advice {
                action: "compact".into(),
                value: deleted_fraction,
                threshold: thresholds::DELETED,
                message: format!(
                    "compact: {:.0}% of stored vectors are deleted ({} of {}; about {} of {} segment bytes)",
                    100.0 * deleted_fraction,
                    deleted,
                    stored,
                    deleted_bytes,
                    seg_bytes
                ),
            });
        }
        if let Some(now) = recall.first() {
            if now.recall_at_10 < thresholds::RECALL {
                if let Some(better) =
                    recall.iter().skip(1).find(|p| p.recall_at_10 - now.recall_at_10 >= thresholds::RECALL_GAIN)
                {
                    advice.push(Advice {
                        action: "nprobe".into(),
                        value: better.nprobe as f64,
                        threshold: thresholds::RECALL,
                        message: format!(
                            "nprobe {} would raise estimated stage-1 recall@10 from {:.2} to {:.2} (now nprobe {})",
                            better.nprobe, now.recall_at_10, better.recall_at_10, now.nprobe
                        ),
                    });
                }
            }
        }
        Ok(HealthReport {
            generation: self.manifest.generation,
            vectors: self.vectors(),
            trained_vectors: self.manifest.trained_vectors,
            growth_since_training: growth,
            train_points: self.quantizers.as_ref().map_or(0, |q| q.train_points),
            deleted,
            deleted_fraction,
            deleted_bytes,
            imbalance: stats.imbalance,
            sample: n,
            reconstruction_error: mean(rec),
            coarse_error: mean(coarse),
            mean_norm: mean(norm),
            baseline,
            reconstruction_growth,
            coarse_growth,
            imbalance_growth,
            nprobe: c.nprobe,
            recall,
            recall_queries: if can_measure { nq } else { 0 },
            lists,
            advice,
        })
    }

    /// Why `id` did or did not come back for `query` searched with `params`.
    pub(crate) fn explain_query(&self, query: &[f32], id: u64, params: &SearchParams) -> Result<QueryExplanation> {
        let c = self.manifest.config;
        if query.len() != c.dim {
            return Err(Error::InvalidInput(format!(
                "the query has dimension {}, the index has dimension {}",
                query.len(),
                c.dim
            )));
        }
        let plan = self.plan(params)?;
        let live_n = usize::try_from(self.vectors()).unwrap_or(usize::MAX).max(1);
        let copy = self.explain_id(id)?.copies.into_iter().find(|c| !c.deleted);
        let rerank = plan.rerank.name();
        let rank_of =
            |found: &[crate::read::Neighbor]| found.iter().position(|n| n.id == id).map(|r| (r + 1, found[r].distance));
        let (list, list_rank) = match (&self.quantizers, &copy) {
            (Some(q), Some(cp)) => {
                let d = c.dim;
                let mine = crate::distance::l2sq(query, &q.coarse[cp.list * d..(cp.list + 1) * d]);
                let closer = (0..c.nlist)
                    .filter(|&o| {
                        let e = crate::distance::l2sq(query, &q.coarse[o * d..(o + 1) * d]);
                        e < mine || (e == mine && o < cp.list)
                    })
                    .count();
                (Some(cp.list), Some(closer + 1))
            }
            (None, Some(_)) => (None, Some(1)),
            _ => (None, None),
        };
        let list_probed = self.quantizers.is_none() || list_rank.is_some_and(|r| r <= plan.nprobe);
        // Stage 1 alone, everything the probed lists hold, ranked.
        let all = SearchParams::new(live_n).nprobe(plan.nprobe).rerank(Rerank::Off);
        let stage1 = if copy.is_some() { rank_of(&self.search(query, &all)?[0]) } else { None };
        let stage1_all = if copy.is_none() {
            None
        } else if list_probed {
            stage1
        } else {
            rank_of(&self.search(query, &SearchParams::new(live_n).nprobe(c.nlist).rerank(Rerank::Off))?[0])
        };
        let reranks = plan.rerank != Rerank::Off;
        let candidates = if reranks { plan.candidates.min(live_n).max(params.k.min(live_n)) } else { 0 };
        let in_candidates = reranks && stage1.is_some_and(|(r, _)| r <= candidates);
        let mut fin = *params;
        fin.k = if reranks { candidates } else { params.k.min(live_n) };
        let finals = self.search(query, &fin)?.swap_remove(0);
        let final_hit = if copy.is_some() { rank_of(&finals) } else { None };
        let k = params.k.min(live_n);
        let kth_distance = finals.get(k - 1).map(|n| n.distance);
        let returned = final_hit.is_some_and(|(r, _)| r <= k);
        let reason = if copy.is_none() {
            format!("id {id} has no live copy (never added, or deleted)")
        } else if !list_probed {
            format!(
                "its list {} ranks {} by centroid distance and only {} lists were probed; probing all, its code distance would rank it {}",
                list.unwrap_or(0),
                list_rank.unwrap_or(0),
                plan.nprobe,
                stage1_all.map_or("-".into(), |r| r.0.to_string())
            )
        } else {
            let s1 = stage1.map_or(0, |r| r.0);
            match (reranks, in_candidates, final_hit) {
                (false, _, _) if returned => format!("its list was probed and its code distance ranked it {s1} of {k} returned"),
                (false, _, _) => format!("its list was probed but its code distance ranked it {s1}, outside the {k} returned"),
                (true, false, _) => format!(
                    "its list was probed but its code distance ranked it {s1}, outside the {candidates} candidates re-ranked"
                ),
                (true, true, Some((r, _))) if returned => {
                    let how = if r == s1 { "kept it at" } else { "moved it to" };
                    format!("its code distance ranked it {s1}; the {rerank} re-rank {how} {r} (of {k} returned)")
                }
                (true, true, Some((r, _))) => {
                    format!("its code distance ranked it {s1}; the {rerank} re-rank put it at {r}, outside the {k} returned")
                }
                (true, true, None) => format!("its code distance ranked it {s1}; the re-rank left it out"),
            }
        };
        Ok(QueryExplanation {
            id,
            live: copy.is_some(),
            list,
            list_rank,
            nprobe: plan.nprobe,
            list_probed,
            stage1_rank: if list_probed { stage1.map(|r| r.0) } else { None },
            stage1_rank_all_lists: stage1_all.map(|r| r.0),
            stage1_distance: stage1.or(stage1_all).map(|r| r.1),
            candidates,
            in_candidates,
            rerank: rerank.into(),
            final_rank: final_hit.map(|r| r.0),
            final_distance: final_hit.map(|r| r.1),
            k,
            returned,
            kth_distance,
            emd: None,
            emd_bound: None,
            scanned: false,
            excluded: false,
            reason,
        })
    }

    /// Recall@10 of `got` against `truth` (from [`Snapshot::exact_top`]),
    /// `skip[i]` left out of query i's results. Tie-aware: a result counts
    /// when it is one of the true 10 or its exact distance is no larger than
    /// the true 10th (data with duplicates has many equal distances, and
    /// which of them make the 10 is arbitrary).
    fn recall_of(
        &self,
        qs: &[f32],
        skip: &[u64],
        truth: &[Vec<(f32, u64)>],
        got: &[Vec<crate::read::Neighbor>],
    ) -> Result<f64> {
        let d = self.manifest.config.dim;
        let (mut hit, mut total) = (0usize, 0usize);
        for (qi, (g, t)) in got.iter().zip(truth).enumerate() {
            let Some(&(kth, _)) = t.last() else { continue };
            let q = &qs[qi * d..(qi + 1) * d];
            let qn = crate::distance::norm_sq(q);
            let mut h = 0;
            for n in g.iter().filter(|n| n.id != skip[qi]).take(10) {
                let found = t.iter().any(|&(_, id)| id == n.id) || {
                    let r = self.segments[n.location.segment as usize].refine(n.location.position as usize)?;
                    let xn: f32 = r.iter().map(|(_, v)| v * v).sum();
                    let dot: f32 = r.iter().map(|(j, v)| q[j] * v).sum();
                    qn + xn - 2.0 * dot <= kth + 1e-6 * kth.abs().max(1e-6)
                };
                h += usize::from(found);
            }
            hit += h.min(t.len());
            total += t.len();
        }
        Ok(if total == 0 { 0.0 } else { hit as f64 / total as f64 })
    }

    /// The exact `k` nearest live ids of each query (rows of `qs`) by
    /// squared L2 over the refine store, `skip[i]` excluded for query i.
    fn exact_top(&self, qs: &[f32], skip: &[u64], k: usize) -> Result<Vec<Vec<(f32, u64)>>> {
        let d = self.manifest.config.dim;
        let nq = skip.len();
        let qn: Vec<f32> = qs.chunks_exact(d).map(crate::distance::norm_sq).collect();
        let nlist = self.manifest.config.nlist;
        // One task per (segment, list); each keeps its own top-k per query.
        let tasks: Vec<(usize, usize)> =
            (0..self.segments.len()).flat_map(|s| (0..nlist).map(move |l| (s, l))).collect();
        let partial: Vec<Vec<TopK>> = tasks
            .par_iter()
            .map(|&(si, l)| -> Result<Vec<TopK>> {
                let seg = &self.segments[si];
                let hide = self.hider(si);
                let mut tops: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
                let (_, ids) = seg.list(l)?;
                for (i, id) in ids.iter().enumerate() {
                    if hide.hides(id) {
                        continue;
                    }
                    let r = seg.refine(seg.list_start(l) + i)?;
                    let xn: f32 = r.iter().map(|(_, v)| v * v).sum();
                    for (qi, top) in tops.iter_mut().enumerate() {
                        if id == skip[qi] {
                            continue;
                        }
                        let q = &qs[qi * d..(qi + 1) * d];
                        let dot: f32 = r.iter().map(|(j, v)| q[j] * v).sum();
                        top.push(qn[qi] + xn - 2.0 * dot, id, 0);
                    }
                }
                Ok(tops)
            })
            .collect::<Result<_>>()?;
        let mut merged: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
        for p in partial {
            for (top, part) in merged.iter_mut().zip(p) {
                for (dist, id, _) in part.into_sorted() {
                    top.push(dist, id, 0);
                }
            }
        }
        Ok(merged.into_iter().map(|t| t.into_sorted().into_iter().map(|e| (e.0, e.1)).collect()).collect())
    }
}

impl crate::Index {
    /// Every stored copy of `id`: segment, list, code, errors, record, and
    /// whether (and by which tombstone) it is deleted. Reads one snapshot.
    pub fn explain_id(&self, id: u64) -> Result<IdReport> {
        self.snapshot().explain_id(id)
    }

    /// List `l`: its size per segment, its centroid's nearest lists, a
    /// sample of ids and the mean reconstruction error of a sample.
    pub fn explain_list(&self, l: usize) -> Result<ListReport> {
        self.snapshot().explain_list(l)
    }

    /// Segment `i` (manifest order, as [`Index::inspect`](crate::Index::inspect) lists them).
    pub fn explain_segment(&self, i: usize) -> Result<SegmentReport> {
        self.snapshot().explain_segment(i)
    }

    /// Why `id` did or did not come back for `query` (one vector of the
    /// index's dimension) searched with `params`: whether its list was
    /// probed, where its code distance ranked it (stage 1), and where the
    /// re-rank put it.
    pub fn explain_query(&self, query: &[f32], id: u64, params: &SearchParams) -> Result<QueryExplanation> {
        self.snapshot().explain_query(query, id, params)
    }

    /// Drift since training, errors of a sample of stored vectors, an
    /// estimated stage-1 recall@10 against exact search on stored vectors
    /// (the refine store is the truth), and advice with its numbers.
    pub fn health(&self, opts: &HealthOptions) -> Result<HealthReport> {
        self.snapshot().health(opts)
    }
}

/// One setting of the tuning grid, measured.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct TunePoint {
    /// Lists probed.
    pub nprobe: usize,
    /// Candidates re-ranked (0: no re-ranking, the index has no refine store).
    pub candidates: usize,
    /// Recall@10 against exact search (the query itself excluded; a result
    /// no farther than the true 10th counts, as ties).
    pub recall_at_10: f64,
    /// Measured search time per query, microseconds (all queries in one call).
    pub micros_per_query: f64,
    /// Whether it meets the target.
    pub meets_target: bool,
    /// The re-rank measured: `"l2"`, `"exact"` (EMD, colour indexes) or
    /// `"none"` (the fast path: stage 1 alone).
    pub rerank: String,
    /// Exact EMD problems solved per query (exact-EMD points).
    pub solves_per_query: Option<f64>,
}

/// What [`Index::tune`](crate::Index::tune) measured and chose.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct TuneReport {
    /// The recall@10 asked for.
    pub target: f64,
    /// Stored vectors used as queries.
    pub queries: usize,
    /// Every setting measured, ascending nprobe then candidates.
    pub points: Vec<TunePoint>,
    /// The cheapest setting of the tuned re-rank meeting the target over
    /// the whole grid (of those within 10% of the fastest, the fewest
    /// lists, then the fewest candidates: one timing pass is noisy, and
    /// fewer never cost more): what
    /// [`Index::set_search_defaults`](crate::Index::set_search_defaults)
    /// stores for that re-rank ([`TuneReport::rerank`]). `None` when
    /// nothing meets the target.
    pub chosen: Option<TunePoint>,
    /// The fastest setting meeting the target over every point measured,
    /// the fast path (`rerank` `"none"`, stage 1 alone) included: shown,
    /// not stored.
    pub fastest: Option<TunePoint>,
    /// The nprobe that re-rank used by default before tuning.
    pub nprobe_before: usize,
    /// The candidates that re-rank used by default before tuning.
    pub candidates_before: usize,
    /// What recall is measured against: `"exact L2"` (the refine store) or
    /// `"exact EMD"` (colour indexes, `ImageIndex::tune`).
    pub truth: String,
    /// The re-rank tuned, whose defaults `chosen` is for.
    #[serde(skip)]
    pub(crate) rerank: Rerank,
}

impl TuneReport {
    /// Picks `chosen` among the points of the tuned re-rank and `fastest`
    /// among all, and notes what the defaults were.
    pub(crate) fn new(
        snap: &Snapshot,
        rerank: Rerank,
        target: f64,
        queries: usize,
        points: Vec<TunePoint>,
        truth: &str,
    ) -> TuneReport {
        let tuned = match rerank {
            Rerank::L2 => "l2",
            _ => "exact",
        };
        let chosen = cheapest(points.iter().filter(|p| p.rerank == tuned));
        let fastest = points
            .iter()
            .filter(|p| p.meets_target)
            .min_by(|a, b| a.micros_per_query.total_cmp(&b.micros_per_query))
            .cloned();
        let (nprobe_before, candidates_before) = snap.search_defaults(rerank);
        TuneReport {
            target,
            queries,
            points,
            chosen,
            fastest,
            nprobe_before,
            candidates_before,
            truth: truth.into(),
            rerank,
        }
    }

    /// The re-rank whose defaults `chosen` is for: [`Rerank::L2`] after
    /// an exact-L2 tune, [`Rerank::ExactEmd`] after an exact-EMD one (pass
    /// it to [`Index::set_search_defaults`](crate::Index::set_search_defaults)).
    pub fn rerank(&self) -> Rerank {
        self.rerank
    }
}

/// Of the points meeting the target within 10% of the fastest of them, the
/// one with the fewest lists, then the fewest candidates.
fn cheapest<'a>(points: impl Iterator<Item = &'a TunePoint>) -> Option<TunePoint> {
    let meeting: Vec<&TunePoint> = points.filter(|p| p.meets_target).collect();
    let best = meeting.iter().map(|p| p.micros_per_query).fold(f64::INFINITY, f64::min);
    meeting.into_iter().filter(|p| p.micros_per_query <= best * 1.1).min_by_key(|p| (p.nprobe, p.candidates)).cloned()
}

impl Snapshot {
    /// Measures recall and speed over a grid of nprobe × candidates on up
    /// to `queries` stored vectors (seeded sample), against exact search
    /// over the refine store.
    pub(crate) fn tune(&self, target: f64, queries: usize, seed: u64) -> Result<TuneReport> {
        use rand::SeedableRng;
        let c = self.manifest.config;
        check_target(target)?;
        if self.quantizers.is_none() || !c.refine {
            return Err(Error::InvalidInput(
                "tuning needs a trained index with a refine store (the exact vectors are the truth)".into(),
            ));
        }
        if queries == 0 {
            return Err(Error::invalid_argument("queries", "queries must be at least 1"));
        }
        let d = c.dim;
        let mut at: Vec<(usize, usize, u64)> = Vec::new();
        self.for_each_live(|si, p, id| at.push((si, p, id)))?;
        if at.len() <= 10 {
            return Err(Error::InvalidInput(format!(
                "tuning needs more than 10 live vectors, the index holds {}",
                at.len()
            )));
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let pick = rand::seq::index::sample(&mut rng, at.len(), queries.min(at.len())).into_vec();
        let mut qs = vec![0f32; pick.len() * d];
        let mut qids = Vec::with_capacity(pick.len());
        for (row, &k) in qs.chunks_exact_mut(d).zip(&pick) {
            let (si, p, id) = at[k];
            row.copy_from_slice(&dense(self.segments[si].refine(p)?, d));
            qids.push(id);
        }
        drop(at);
        self.tune_on(target, &qs, &qids)
    }

    /// [`Snapshot::tune`] on given queries (rows of `qs`); `skip[i]` is
    /// left out of query i's truth and results (the query itself when it
    /// is a stored vector; `u64::MAX` for none).
    pub(crate) fn tune_on(&self, target: f64, qs: &[f32], qids: &[u64]) -> Result<TuneReport> {
        let c = self.manifest.config;
        check_target(target)?;
        if self.quantizers.is_none() || !c.refine {
            return Err(Error::InvalidInput(
                "tuning needs a trained index with a refine store (the exact vectors are the truth)".into(),
            ));
        }
        if qids.is_empty() || qs.len() != qids.len() * c.dim {
            return Err(Error::InvalidInput(format!("tuning needs queries of dimension {}", c.dim)));
        }
        let truth = self.exact_top(qs, qids, 10)?;
        let probes = tune_probes(&c);
        let mut points = Vec::new();
        for &np in &probes {
            for cand in [10usize, 50, 100, crate::read::DEFAULT_CANDIDATES, 400, 800] {
                let params = SearchParams::new(11).nprobe(np).rerank(Rerank::L2).candidates(cand);
                let t = std::time::Instant::now();
                let got = self.search(qs, &params)?;
                let micros = t.elapsed().as_secs_f64() * 1e6 / qids.len() as f64;
                let recall = self.recall_of(qs, qids, &truth, &got)?;
                points.push(TunePoint {
                    nprobe: np,
                    candidates: cand,
                    recall_at_10: recall,
                    micros_per_query: micros,
                    meets_target: recall >= target,
                    rerank: "l2".into(),
                    solves_per_query: None,
                });
            }
        }
        Ok(TuneReport::new(self, Rerank::L2, target, qids.len(), points, "exact L2"))
    }
}

/// The nprobe values a tune measures: 1, 2, 4, … below nlist, nlist, and
/// the index's default.
pub(crate) fn tune_probes(c: &crate::Config) -> Vec<usize> {
    let mut probes: Vec<usize> =
        std::iter::successors(Some(1usize), |p| Some(p * 2)).take_while(|&p| p < c.nlist).collect();
    probes.push(c.nlist);
    if !probes.contains(&c.nprobe) {
        probes.push(c.nprobe);
        probes.sort_unstable();
    }
    probes
}

/// A recall target is in (0, 1].
pub(crate) fn check_target(target: f64) -> Result<()> {
    if target > 0.0 && target <= 1.0 {
        Ok(())
    } else {
        Err(Error::invalid_argument("recall", format!("the recall target must be in (0, 1], got {target}")))
    }
}

impl crate::Index {
    /// Measures recall@10 (against exact search over the refine store, on
    /// `queries` stored vectors) and speed over a grid of nprobe ×
    /// candidates, and picks the cheapest setting meeting `target`. Changes
    /// nothing; store the choice with
    /// [`Index::set_search_defaults`](crate::Index::set_search_defaults).
    pub fn tune(&self, target: f64, queries: usize, seed: u64) -> Result<TuneReport> {
        self.snapshot().tune(target, queries, seed)
    }

    /// [`Index::tune`](crate::Index::tune) on given query vectors (rows of `queries`, e.g. a
    /// set of real queries kept for this) instead of stored vectors: exact
    /// search over the refine store is still the truth.
    pub fn tune_with_queries(&self, target: f64, queries: &[f32]) -> Result<TuneReport> {
        let d = self.config().dim;
        if queries.is_empty() || !queries.len().is_multiple_of(d) {
            return Err(Error::InvalidInput(format!("query vectors must be whole rows of dimension {d}")));
        }
        let skip = vec![u64::MAX; queries.len() / d];
        self.snapshot().tune_on(target, queries, &skip)
    }
}
