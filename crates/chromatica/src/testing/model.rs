//! The workload of the crash, kill and corruption tests: a small
//! configuration, clustered vectors, a reference model of the live state
//! after a sequence of acknowledged writes, random valid writes over it, and
//! checks of what a directory should hold.

use super::Rng;
use crate::format::manifest::Manifest;
use crate::format::{parse_manifest_name, parse_numbered_name};
use crate::storage::Storage;
use crate::{Config, Index, Metric, SearchParams};
use std::collections::{BTreeMap, BTreeSet};

/// Dimension of the workload's vectors.
pub const DIM: usize = 16;
/// Inverted lists of the workload's configuration.
pub const NLIST: usize = 4;

/// A count from the environment (for longer sweeps), or `default`.
pub fn env_count(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("{var}={v:?} is not a count")),
        Err(_) => default,
    }
}

/// The small configuration every test here uses: dim 16, nlist 4, m 4.
pub fn config(nbits: usize) -> Config {
    let mut c = Config::default();
    (c.dim, c.nlist, c.m, c.nbits, c.nprobe, c.metric) = (DIM, NLIST, 4, nbits, 2, Metric::L2);
    c
}

/// Search parameters: `k` results, `nprobe` lists, everything else default.
pub fn params(k: usize, nprobe: usize) -> SearchParams {
    let mut p = SearchParams::new(k);
    p.nprobe = Some(nprobe);
    p
}

/// `n` vectors (n × DIM) around 8 fixed cluster centres.
pub fn vectors(rng: &mut Rng, n: usize) -> Vec<f32> {
    let mut c = Rng::mixed(7);
    let centres: Vec<f64> = (0..8 * DIM).map(|_| c.normal() * 3.0).collect();
    let mut out = Vec::with_capacity(n * DIM);
    for _ in 0..n {
        let k = rng.below(8);
        for j in 0..DIM {
            out.push((centres[k * DIM + j] + rng.normal() * 0.7) as f32);
        }
    }
    out
}

/// One write the workloads perform.
#[derive(Clone, Debug)]
pub enum Op {
    /// `ids: None` takes default ids (continuing from `next_id`).
    Add {
        /// n × [`DIM`] values.
        data: Vec<f32>,
        /// Explicit ids, one per vector.
        ids: Option<Vec<u64>>,
    },
    /// Deletes these ids.
    Delete(Vec<u64>),
    /// Merges every segment into one.
    Compact,
}

impl Op {
    /// A short name for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Add { ids: None, .. } => "add(default ids)",
            Op::Add { ids: Some(_), .. } => "add(explicit ids)",
            Op::Delete(_) => "delete",
            Op::Compact => "compact",
        }
    }
}

/// The reference model: what the index should hold after a sequence of
/// acknowledged operations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Model {
    /// Live id → its vector.
    pub live: BTreeMap<u64, Vec<f32>>,
    /// One past the largest id ever added.
    pub next_id: u64,
    /// Ids added once and deleted since (they may be added again).
    pub deleted: BTreeSet<u64>,
}

impl Model {
    /// The live ids, ascending.
    pub fn live_ids(&self) -> Vec<u64> {
        self.live.keys().copied().collect()
    }

    /// The ids `op` adds (empty for other ops).
    pub fn ids_added(&self, op: &Op) -> Vec<u64> {
        match op {
            Op::Add { ids: Some(ids), .. } => ids.clone(),
            Op::Add { data, ids: None } => (self.next_id..self.next_id + (data.len() / DIM) as u64).collect(),
            _ => vec![],
        }
    }

    /// The model after `op`.
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::Add { data, .. } => {
                let ids = self.ids_added(op);
                for (id, v) in ids.iter().zip(data.chunks_exact(DIM)) {
                    assert!(self.live.insert(*id, v.to_vec()).is_none(), "model: id {id} added twice");
                    self.deleted.remove(id);
                    self.next_id = self.next_id.max(id + 1);
                }
            }
            Op::Delete(ids) => {
                for id in ids {
                    assert!(self.live.remove(id).is_some(), "model: id {id} deleted but not live");
                    self.deleted.insert(*id);
                }
            }
            Op::Compact => {}
        }
    }

    /// A copy of the model after `op`.
    pub fn after(&self, op: &Op) -> Model {
        let mut m = self.clone();
        m.apply(op);
        m
    }

    /// A random valid operation for the current state: adds of 1–50 vectors
    /// (default ids, fresh explicit ids — sometimes above 2^32 — or ids
    /// deleted earlier), deletes of one or many live ids, compactions, and
    /// runs of small adds that make the merge policy fire.
    pub fn random_op(&self, rng: &mut Rng) -> Op {
        let r = rng.below(100);
        if self.live.is_empty() || r < 45 {
            let n = if rng.percent(40) { rng.range(1, 4) } else { rng.range(1, 50) };
            let data = vectors(rng, n);
            let ids = match rng.below(10) {
                0..=3 => None,
                4..=6 => {
                    let base = if rng.percent(8) { self.next_id.max(1 << 32) } else { self.next_id };
                    let mut id = base + rng.below(20) as u64;
                    let mut ids = Vec::with_capacity(n);
                    for _ in 0..n {
                        ids.push(id);
                        id += 1 + rng.below(3) as u64;
                    }
                    let k = ids.len();
                    Some(rng.sample(&ids, k))
                }
                _ => {
                    let old: Vec<u64> = self.deleted.iter().copied().collect();
                    let mut ids = rng.sample(&old, n);
                    let mut fresh = self.next_id + rng.below(5) as u64;
                    while ids.len() < n {
                        ids.push(fresh);
                        fresh += 1;
                    }
                    Some(ids)
                }
            };
            Op::Add { data, ids }
        } else if r < 80 {
            let live = self.live_ids();
            let k = if rng.percent(40) { 1 } else { rng.range(1, live.len().div_ceil(2)) };
            Op::Delete(rng.sample(&live, k))
        } else {
            Op::Compact
        }
    }
}

/// What an operation returned, reduced to what the tests decide on.
pub enum Outcome {
    /// Acknowledged; for an add, `merge_error` is the automatic merge's failure.
    Done {
        /// The automatic merge's failure, if it failed.
        merge_error: Option<String>,
        /// Whether an automatic merge ran.
        merged: bool,
    },
    /// The operation returned this error.
    Failed(crate::Error),
}

/// Runs `op` on `index`; checks an add's reported ids against `model`.
pub fn exec(index: &Index, model: &Model, op: &Op) -> Outcome {
    match op {
        Op::Add { data, ids } => match index.add(data, ids.as_deref()) {
            Ok(r) => {
                let want = model.ids_added(op);
                let lo = *want.iter().min().unwrap();
                let hi = *want.iter().max().unwrap();
                assert_eq!(r.ids, lo..hi + 1, "add reported the wrong ids");
                Outcome::Done { merged: r.merged.is_some(), merge_error: r.merge_error }
            }
            Err(e) => Outcome::Failed(e),
        },
        Op::Delete(ids) => match index.delete(ids) {
            Ok(r) => {
                assert_eq!(r.deleted, ids.len());
                Outcome::Done { merge_error: None, merged: false }
            }
            Err(e) => Outcome::Failed(e),
        },
        Op::Compact => match index.compact() {
            Ok(_) => Outcome::Done { merge_error: None, merged: false },
            Err(e) => Outcome::Failed(e),
        },
    }
}

/// Live ids of an open index.
pub fn live_ids(index: &Index) -> Vec<u64> {
    index.snapshot().live_ids().expect("live ids")
}

/// Checks that `names` (a directory listing) holds exactly the current
/// manifest and the files it names, apart from `LOCK` and foreign names.
pub fn assert_no_leftovers(names: &[String], m: &Manifest, context: &str) {
    let mut manifests = 0;
    let mut numbered = BTreeSet::new();
    for n in names {
        assert!(!n.ends_with(".tmp"), "{context}: temporary file {n} left behind");
        if let Some(g) = parse_manifest_name(n) {
            assert_eq!(g, m.generation, "{context}: stale manifest {n} left behind");
            manifests += 1;
        }
        if let Some((num, _)) = parse_numbered_name(n) {
            numbered.insert(num);
        }
    }
    assert_eq!(manifests, 1, "{context}: {manifests} manifests in {names:?}");
    let named: BTreeSet<u64> = m.file_numbers().into_iter().collect();
    assert_eq!(numbered, named, "{context}: numbered files {names:?} differ from those the manifest names");
}

/// Runs verify over `storage`, which must pass and report no leftovers.
pub fn verify_clean(storage: &dyn Storage, context: &str) -> crate::verify::VerifyReport {
    let r = crate::verify::verify(storage).unwrap_or_else(|e| panic!("{context}: verify failed: {e}"));
    assert!(r.leftovers.is_empty(), "{context}: verify reports leftovers {:?}", r.leftovers);
    r
}

/// The corruption suite's index in `dir`: quantizers (nbits 4), a segment
/// with 4-byte ids, a segment with 8-byte ids, a tombstone file hiding ids
/// of both, and the manifest. Returns its files (name, bytes), sorted by
/// name, LOCK excluded.
pub fn corruption_suite_index(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::mixed(31);
    let index = crate::Index::create(dir, config(4)).unwrap();
    index.train(&vectors(&mut rng, 600), &crate::TrainOptions::default(), &mut |_| ()).unwrap();
    index.add(&vectors(&mut rng, 120), None).unwrap();
    let wide: Vec<u64> = (0..100).map(|i| (1u64 << 33) + 3 * i).collect();
    index.add(&vectors(&mut rng, 100), Some(&wide)).unwrap();
    let mut dead: Vec<u64> = (0..120).step_by(7).collect();
    dead.extend(wide.iter().step_by(9));
    index.delete(&dead).unwrap();
    drop(index);
    super::files::dir_contents(dir).into_iter().filter(|(n, _)| n != "LOCK").collect()
}
