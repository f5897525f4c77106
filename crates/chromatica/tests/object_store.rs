//! The commit protocol on object storage (feature `object-store`), over a
//! model of an object store that fails on demand (`testing::faulty_store`):
//! at every mutating call (put, delete) of random workloads, each of a
//! failed call, a lost response after the call took effect, a repeated call
//! (a retry of a call that had landed), and a crash before or after the
//! call; a reader opening at every step of a commit; writers racing for one
//! generation; the cache's CRC check and size bound.
//!
//! The contract checked: an acknowledged operation is there for every later
//! reader; a failed one left the index as it was; an operation interrupted by
//! a crash is applied in full or not at all; a writer that opens afterwards
//! removes what was left behind; every state verifies clean.
//!
//! `CHROMATICA_OBJECT_ITERS` sets the number of random workloads (default 3).

use chromatica::testing::faulty_store::{Fault, FaultyStore};
use chromatica::testing::model::*;
use chromatica::testing::storage::Storage;
use chromatica::testing::{Rng, SnapshotInternals};
use chromatica::{CacheOptions, Error, Index, MergePolicy, ObjectStorage, TrainOptions};
use std::path::Path;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

const PREFIX: &str = "idx";
const OPS: usize = 5;

fn backend(store: &FaultyStore, cache: &Path, grace: Duration) -> ObjectStorage {
    let o = CacheOptions { dir: cache.to_owned(), max_bytes: 1 << 30 };
    ObjectStorage::new(Arc::new(store.clone()), PREFIX, "mem://idx", o).unwrap().with_orphan_grace(grace)
}

fn policy() -> MergePolicy {
    MergePolicy { enabled: true, merge_factor: 3, min_level: 10, level_log_size: 0.75 }
}

fn open(store: &FaultyStore, cache: &Path, writable: bool) -> chromatica::Result<Index> {
    let index = Index::open_object("mem://idx", backend(store, cache, Duration::ZERO), writable)?;
    if writable {
        index.set_merge_policy(policy())?;
    }
    Ok(index)
}

/// Object names under the prefix.
fn names(store: &FaultyStore) -> Vec<String> {
    store.names().into_iter().map(|n| n.strip_prefix("idx/").expect("under the prefix").to_owned()).collect()
}

/// Opens the state a new process finds: a reader's live ids must be one of
/// `allowed` (returns the indices of those they equal; a compaction's two
/// states have the same ids); then a writer opens, after which only the
/// manifest and its files remain and everything verifies.
fn check_state(store: &FaultyStore, allowed: &[&Model], context: &str) -> Vec<usize> {
    let view = store.view();
    let dir = tempfile::tempdir().unwrap();
    let reader = open(&view, &dir.path().join("r"), false).unwrap_or_else(|e| panic!("{context}: reader open: {e}"));
    let live = live_ids(&reader);
    let which: Vec<usize> = (0..allowed.len()).filter(|&i| allowed[i].live_ids() == live).collect();
    assert!(!which.is_empty(), "{context}: live ids {live:?} match no allowed state");
    drop(reader);
    let writer = open(&view, &dir.path().join("w"), true).unwrap_or_else(|e| panic!("{context}: writer open: {e}"));
    assert_eq!(live_ids(&writer), live, "{context}: the writer sees another state");
    assert_no_leftovers(&names(&view), writer.snapshot().manifest(), context);
    drop(writer);
    let s = backend(&view, &dir.path().join("v"), Duration::ZERO);
    verify_clean(&s as &dyn Storage, context);
    which
}

/// A trained, empty index in a fresh store, and a random workload of
/// `OPS` operations with the store and model before each.
fn workload(seed: u64) -> (Vec<(FaultyStore, Model)>, Vec<Op>) {
    let store = FaultyStore::new();
    let dir = tempfile::tempdir().unwrap();
    let o = CacheOptions { dir: dir.path().to_owned(), max_bytes: 1 << 30 };
    let s = ObjectStorage::new(Arc::new(store.clone()), PREFIX, "mem://idx", o).unwrap();
    let index = Index::create_object("mem://idx", s, config(8)).unwrap();
    let mut rng = Rng::mixed(seed);
    index.train(&vectors(&mut rng, 600), &TrainOptions::default(), &mut |_| ()).unwrap();
    drop(index);
    let mut states = vec![(store, Model::default())];
    let mut ops = Vec::new();
    for i in 0..OPS {
        let (store, model) = states.last().unwrap();
        let op = model.random_op(&mut rng);
        let next = store.deep_copy();
        let index = open(&next, &dir.path().join(format!("o{i}")), true).unwrap();
        match exec(&index, model, &op) {
            Outcome::Done { .. } => {}
            Outcome::Failed(e) => panic!("seed {seed}: {} without faults failed: {e}", op.kind()),
        }
        drop(index);
        let after = model.after(&op);
        states.push((next, after));
        ops.push(op);
    }
    (states, ops)
}

/// Mutating calls `op` makes on `store` (from an open writer).
fn calls_of(store: &FaultyStore, model: &Model, op: &Op) -> u64 {
    let copy = store.deep_copy();
    let dir = tempfile::tempdir().unwrap();
    let index = open(&copy, dir.path(), true).unwrap();
    let before = copy.ops();
    assert!(matches!(exec(&index, model, op), Outcome::Done { .. }));
    copy.ops() - before
}

#[test]
fn every_fault_at_every_call_keeps_the_commit_atomic() {
    let iters = env_count("CHROMATICA_OBJECT_ITERS", 3) as u64;
    let mut cases = 0;
    let mut outcomes = [0usize; 4]; // ok, err, crash-before-state, crash-after-state
    for seed in 0..iters {
        let (states, ops) = workload(100 + seed);
        for (i, op) in ops.iter().enumerate() {
            let (store, before) = &states[i];
            let after = &states[i + 1].1;
            let calls = calls_of(store, before, op);
            // A compaction with nothing to merge commits nothing.
            assert!(calls >= 2 || matches!(op, Op::Compact), "{} made {calls} mutating calls", op.kind());
            for k in 0..calls {
                for fault in Fault::ALL {
                    let context = format!("seed {seed} op {i} ({}) call {k}/{calls} {fault:?}", op.kind());
                    let s = store.deep_copy();
                    let dir = tempfile::tempdir().unwrap();
                    let index = open(&s, dir.path(), true).unwrap();
                    s.fault_at(Some((k, fault)));
                    let outcome = exec(&index, before, op);
                    drop(index);
                    let which = check_state(&s, &[before, after], &context);
                    if fault.crashes() {
                        assert!(s.is_dead(), "{context}: the crash did not happen");
                        if which.len() == 1 {
                            outcomes[2 + which[0]] += 1;
                        }
                    } else {
                        match outcome {
                            Outcome::Done { .. } => {
                                assert!(which.contains(&1), "{context}: acknowledged but not there");
                                outcomes[0] += 1;
                            }
                            Outcome::Failed(e) => {
                                assert!(which.contains(&0), "{context}: failed ({e}) but applied");
                                outcomes[1] += 1;
                            }
                        }
                    }
                    cases += 1;
                }
            }
        }
    }
    eprintln!(
        "{cases} cases: ok {}, failed {}, crash→before {}, crash→after {}",
        outcomes[0], outcomes[1], outcomes[2], outcomes[3]
    );
    // Both outcomes of a crash occur (before and after the manifest put),
    // and some faults are absorbed (lost responses, repeats) while others fail.
    assert!(outcomes.iter().all(|&n| n > 0), "{outcomes:?}");
}

#[test]
fn a_lost_or_repeated_manifest_put_is_still_acknowledged() {
    let (states, ops) = workload(7);
    let (store, before) = &states[1];
    let op = &ops[1];
    let calls = calls_of(store, before, op);
    // The manifest put is the last put of a commit: find it by trying each
    // call and looking at what took effect.
    for fault in [Fault::LoseResponse, Fault::Repeat] {
        for k in 0..calls {
            let s = store.deep_copy();
            let dir = tempfile::tempdir().unwrap();
            let index = open(&s, dir.path(), true).unwrap();
            s.fault_at(Some((k, fault)));
            let outcome = exec(&index, before, op);
            assert!(
                matches!(outcome, Outcome::Done { .. }),
                "{fault:?} at call {k}: the call took effect, so the operation must succeed"
            );
            drop(index);
            assert!(check_state(&s, &[before, &states[2].1], "lost").contains(&1));
        }
    }
}

#[test]
fn a_reader_opening_at_every_step_of_a_commit_sees_one_whole_state() {
    let (states, ops) = workload(11);
    let checks = Arc::new(Mutex::new(0usize));
    for (i, op) in ops.iter().enumerate() {
        let (store, before) = &states[i];
        let after = states[i + 1].1.clone();
        let s = store.deep_copy();
        let view = s.view();
        let allowed = (before.live_ids(), after.live_ids());
        let dir = tempfile::tempdir().unwrap();
        let reader_cache = dir.path().join("reader");
        let checks2 = checks.clone();
        s.set_hook(Some(Arc::new(move |path| {
            let index = open(&view, &reader_cache, false)
                .unwrap_or_else(|e| panic!("op {i}: a reader after {path} could not open: {e}"));
            let live = live_ids(&index);
            assert!(live == allowed.0 || live == allowed.1, "op {i}: a reader after {path} saw {live:?}");
            *checks2.lock().unwrap() += 1;
        })));
        let index = open(&s, &dir.path().join("writer"), true).unwrap();
        assert!(matches!(exec(&index, before, op), Outcome::Done { .. }));
        s.set_hook(None);
    }
    let checks = *checks.lock().unwrap();
    eprintln!("{checks} reader opens during commits");
    assert!(checks >= 2 * OPS);
}

#[test]
fn writers_racing_for_one_generation_exactly_one_wins() {
    let (states, _) = workload(3);
    let (store, model) = &states[2];
    const WRITERS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    // All open at the same generation, then add at once.
    let writers: Vec<Index> = (0..WRITERS)
        .map(|w| {
            let s = backend(store, &dir.path().join(format!("w{w}")), chromatica::DEFAULT_ORPHAN_GRACE);
            Index::open_object("mem://idx", s, true).unwrap()
        })
        .collect();
    let barrier = Barrier::new(WRITERS);
    let base = model.next_id + 1000;
    let results: Vec<chromatica::Result<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(w, index)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let data = vectors(&mut Rng::mixed(w as u64), 5);
                    let ids: Vec<u64> = (0..5).map(|j| base + (w * 10 + j) as u64).collect();
                    barrier.wait();
                    index.add(&data, Some(&ids)).map(|_| w as u64)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<u64> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
    assert_eq!(winners.len(), 1, "exactly one writer wins: {results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, Error::Conflict(_)), "a loser gets a conflict, not {e:?}");
            assert!(e.to_string().contains("another writer"), "{e}");
        }
    }
    drop(writers);
    // The state holds the winner's vectors and nothing of the losers'.
    let w = winners[0] as usize;
    let mut want = model.live_ids();
    want.extend((0..5).map(|j| base + (w * 10 + j) as u64));
    want.sort();
    let reader = open(&store.view(), &dir.path().join("r"), false).unwrap();
    assert_eq!(live_ids(&reader), want);
    // The losers removed what they had uploaded.
    assert_no_leftovers(&names(store), reader.snapshot().manifest(), "after the race");
    // The losers' handles work again after a reopen: their retry lands.
    let retry = open(&store.view(), &dir.path().join("retry"), true).unwrap();
    let loser = (0..WRITERS).find(|&l| l != w).unwrap();
    let ids: Vec<u64> = (0..5).map(|j| base + (loser * 10 + j) as u64).collect();
    retry.add(&vectors(&mut Rng::mixed(loser as u64), 5), Some(&ids)).unwrap();
    assert_eq!(live_ids(&retry).len(), want.len() + 5);
}

#[test]
fn a_writer_keeps_recent_unreferenced_files_a_concurrent_writer_may_own() {
    let (states, ops) = workload(5);
    let (store, before) = &states[1];
    // A writer dies after uploading its segment, before its manifest.
    let s = store.deep_copy();
    let dir = tempfile::tempdir().unwrap();
    let index = open(&s, &dir.path().join("a"), true).unwrap();
    s.fault_at(Some((0, Fault::CrashAfter)));
    let _ = exec(&index, before, &ops[1]);
    drop(index);
    let view = s.view();
    let orphans = names(&view).len();
    // With the default grace the orphan may be a live writer's: kept.
    let b = backend(&view, &dir.path().join("b"), chromatica::DEFAULT_ORPHAN_GRACE);
    let kept = Index::open_object("mem://idx", b, true).unwrap();
    assert_eq!(names(&view).len(), orphans, "a recent file at or above next_file was removed");
    drop(kept);
    // Past the grace it is a crashed writer's: removed.
    let c = open(&view, &dir.path().join("c"), true).unwrap();
    assert_no_leftovers(&names(&view), c.snapshot().manifest(), "after the grace");
}

#[test]
fn downloads_are_checked_by_crc_and_the_cache_is_bounded() {
    let (states, _) = workload(9);
    let (store, model) = states.last().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Damage at rest in the store: the download is refused, naming the file.
    let damaged = store.deep_copy();
    let seg = names(&damaged).into_iter().find(|n| n.ends_with(".seg")).unwrap();
    damaged.tamper(&format!("idx/{seg}"), |b| {
        let last = b.len() - 1;
        b[last] ^= 1;
    });
    let Err(e) = open(&damaged, &dir.path().join("d"), false) else { panic!("a damaged download was accepted") };
    assert!(e.to_string().contains(&seg) && e.to_string().contains("CRC"), "{e}");
    // A tiny bound: every file beyond the newest is evicted, and searches
    // still work from the maps already made.
    let o = CacheOptions { dir: dir.path().join("small"), max_bytes: 1 };
    let s = ObjectStorage::new(Arc::new(store.view()), PREFIX, "mem://idx", o).unwrap();
    let index = Index::open_object("mem://idx", s, false).unwrap();
    assert_eq!(live_ids(&index), model.live_ids());
    let q = vectors(&mut Rng::mixed(1), 3);
    let hits = index.search(&q, &params(5, 4)).unwrap();
    assert!(hits.iter().all(|h| h.len() == 5.min(model.live.len())));
    let cached: Vec<_> = std::fs::read_dir(dir.path().join("small"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .collect();
    assert!(cached.len() <= 1, "the cache keeps {} files over a 1-byte bound", cached.len());
    // A second open from the same cache reuses what is there: nothing more
    // is downloaded for a file already cached (a large bound).
    let big = dir.path().join("big");
    let o = CacheOptions { dir: big.clone(), max_bytes: 1 << 30 };
    drop(
        Index::open_object(
            "mem://idx",
            ObjectStorage::new(Arc::new(store.view()), PREFIX, "m", o.clone()).unwrap(),
            false,
        )
        .unwrap(),
    );
    let first: Vec<_> = std::fs::read_dir(&big)
        .unwrap()
        .flatten()
        .map(|e| (e.file_name(), e.metadata().unwrap().modified().unwrap()))
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    let again = ObjectStorage::new(Arc::new(store.view()), PREFIX, "m", o).unwrap();
    let reopened = Index::open_object("mem://idx", again, false).unwrap();
    assert_eq!(live_ids(&reopened), model.live_ids());
    let second: Vec<_> = std::fs::read_dir(&big)
        .unwrap()
        .flatten()
        .map(|e| (e.file_name(), e.metadata().unwrap().modified().unwrap()))
        .collect();
    assert_eq!(first, second, "cached files were downloaded again");
}
