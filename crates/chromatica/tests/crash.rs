//! Crash safety, in process, over `MemStorage` (which keeps apart what was
//! written from what is durable): a simulated power cut at every sync point
//! of random workloads, an injected I/O error at every write and sync call,
//! search results after recovery, and readers that outlive a compaction.
//!
//! The contract checked: an acknowledged operation (it returned `Ok`)
//! survives any later crash; an operation interrupted by a crash is applied
//! in full or not at all; a writer that reopens after a crash removes what
//! the interrupted operation left behind.
//!
//! `CHROMATICA_CRASH_ITERS` sets the number of random workloads (default 50).

use chromatica::testing::model::*;
use chromatica::testing::storage::{write_file, Storage};
use chromatica::testing::{IndexInternals, SnapshotInternals};
use chromatica::testing::{MemStorage, Rng};
use chromatica::{Error, Index, MergePolicy, Neighbor, SearchParams, TrainOptions};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// Operations per random workload.
const OPS: usize = 12;

fn path() -> PathBuf {
    PathBuf::from("mem-index")
}

fn seeds() -> u64 {
    env_count("CHROMATICA_CRASH_ITERS", 50) as u64
}

/// Merges fire after every third small add.
fn policy() -> MergePolicy {
    MergePolicy { enabled: true, merge_factor: 3, min_level: 10, level_log_size: 0.75 }
}

fn nbits_of(seed: u64) -> usize {
    if seed.is_multiple_of(2) {
        8
    } else {
        4
    }
}

/// A trained, empty index (per nbits), trained once for the whole file.
fn template(nbits: usize) -> &'static MemStorage {
    static T4: OnceLock<MemStorage> = OnceLock::new();
    static T8: OnceLock<MemStorage> = OnceLock::new();
    let cell = if nbits == 4 { &T4 } else { &T8 };
    cell.get_or_init(|| {
        let m = MemStorage::new();
        let index = Index::create_in(path(), Arc::new(m.clone()), config(nbits)).unwrap();
        let data = vectors(&mut Rng::mixed(1000 + nbits as u64), 600);
        index.train(&data, &TrainOptions::default(), &mut |_| ()).unwrap();
        drop(index);
        m
    })
}

/// A new storage holding a durable copy of `t`.
fn copy_of(t: &MemStorage) -> MemStorage {
    let m = MemStorage::new();
    for name in t.list().unwrap() {
        write_file(&m, &name, &t.contents(&name).unwrap()).unwrap();
    }
    m.sync_dir().unwrap();
    m
}

fn open(m: &MemStorage) -> Index {
    let index = Index::open_in(path(), Arc::new(m.clone()), true).unwrap();
    index.set_merge_policy(policy()).unwrap();
    index
}

/// A workload run once without faults.
struct Plain {
    ops: Vec<Op>,
    /// Sync calls the workload made: its crash points.
    syncs: u64,
    /// Write and sync calls it made: its I/O error points.
    calls: u64,
    merges: usize,
}

fn fault_free(seed: u64) -> Plain {
    let m = copy_of(template(nbits_of(seed)));
    let index = open(&m);
    let (s0, c0) = (m.syncs(), m.ops());
    let mut model = Model::default();
    let mut rng = Rng::mixed(seed);
    let mut ops = Vec::new();
    let mut merges = 0;
    for i in 0..OPS {
        let op = model.random_op(&mut rng);
        match exec(&index, &model, &op) {
            Outcome::Done { merge_error: None, merged } => merges += usize::from(merged),
            Outcome::Done { merge_error: Some(e), .. } => {
                panic!("seed {seed}, op {i}: merge failed without a fault: {e}")
            }
            Outcome::Failed(e) => panic!("seed {seed}, op {i} ({}) failed without a fault: {e}", op.kind()),
        }
        model.apply(&op);
        assert_eq!(live_ids(&index), model.live_ids(), "seed {seed}, op {i}: live ids differ from the model");
        ops.push(op);
    }
    let plain = Plain { ops, syncs: m.syncs() - s0, calls: m.ops() - c0, merges };
    verify_clean(&m, &format!("seed {seed}, fault-free"));
    plain
}

/// Reopens `m` as a writer after a crash and checks the state against the
/// model of the acknowledged operations (`acked`) or, if the interrupted
/// operation turns out durable, the model after it (`inflight`). A second
/// power cut is first injected at the open's own leftover cleanup. Returns
/// the reopened index and the model it matches.
fn reopen_after_crash(m: &MemStorage, acked: &Model, inflight: Option<&Model>, ctx: &str) -> (Index, Model) {
    m.revive();
    m.crash_at_sync(Some(0));
    match Index::open_in(path(), Arc::new(m.clone()), true) {
        Ok(index) => drop(index),
        Err(e) => assert!(m.is_dead(), "{ctx}: reopen failed: {e}"),
    }
    m.revive();
    let index = Index::open_in(path(), Arc::new(m.clone()), true)
        .unwrap_or_else(|e| panic!("{ctx}: reopen after the crash failed: {e}"));
    let live = live_ids(&index);
    let model = if live == acked.live_ids() {
        acked.clone()
    } else {
        match inflight {
            Some(f) if live == f.live_ids() => f.clone(),
            _ => panic!(
                "{ctx}: after the crash the index holds {} live ids, neither the {} acknowledged nor the {} of the \
                 interrupted operation (first differences: {:?})",
                live.len(),
                acked.live.len(),
                inflight.map_or(0, |f| f.live.len()),
                live.iter().zip(acked.live_ids()).find(|(a, b)| **a != *b)
            ),
        }
    };
    let snap = index.snapshot();
    assert_eq!(snap.manifest().next_id, model.next_id, "{ctx}: next_id after the crash");
    assert_eq!(snap.vectors(), model.live.len() as u64, "{ctx}: live count after the crash");
    verify_clean(m, ctx);
    assert_no_leftovers(&m.list().unwrap(), snap.manifest(), ctx);
    (index, model)
}

fn sorted_hits(hits: &[Neighbor]) -> Vec<(u64, u32)> {
    let mut v: Vec<(u64, u32)> = hits.iter().map(|n| (n.id, n.distance.to_bits())).collect();
    v.sort_unstable();
    v
}

/// Searches `index` and an index freshly built from `model` (same
/// quantizers, the live vectors added in one batch) with k = everything, and
/// requires the same (id, distance) sets, probing 1 list and all lists.
fn assert_same_search(index: &Index, model: &Model, nbits: usize, ctx: &str) {
    let fresh = copy_of(template(nbits));
    let reference = open(&fresh);
    reference.set_merge_policy(MergePolicy { enabled: false, ..policy() }).unwrap();
    if !model.live.is_empty() {
        let data: Vec<f32> = model.live.values().flatten().copied().collect();
        reference.add(&data, Some(&model.live_ids())).unwrap();
    }
    let queries = vectors(&mut Rng::mixed(99), 6);
    let k = model.live.len().max(1);
    for nprobe in [1, NLIST] {
        let p = params(k, nprobe);
        let got = index.search(&queries, &p).unwrap_or_else(|e| panic!("{ctx}: search failed: {e}"));
        let want = reference.search(&queries, &p).unwrap();
        for (q, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(sorted_hits(g), sorted_hits(w), "{ctx}: query {q}, nprobe {nprobe}: results differ");
            if nprobe == NLIST {
                let mut ids: Vec<u64> = g.iter().map(|n| n.id).collect();
                ids.sort_unstable();
                assert_eq!(ids, model.live_ids(), "{ctx}: query {q} over all lists does not return every live id");
            }
        }
    }
}

/// The reopened index keeps working: an add with default ids continues
/// from next_id, and a delete of some of them works.
fn keeps_working(index: &Index, model: &mut Model, ctx: &str) {
    let op = Op::Add { data: vectors(&mut Rng::mixed(5), 3), ids: None };
    match exec(index, model, &op) {
        Outcome::Done { merge_error: None, .. } => model.apply(&op),
        Outcome::Done { merge_error: Some(e), .. } => panic!("{ctx}: merge after recovery failed: {e}"),
        Outcome::Failed(e) => panic!("{ctx}: add after recovery failed: {e}"),
    }
    let del = Op::Delete(vec![model.next_id - 1]);
    match exec(index, model, &del) {
        Outcome::Done { .. } => model.apply(&del),
        Outcome::Failed(e) => panic!("{ctx}: delete after recovery failed: {e}"),
    }
    assert_eq!(live_ids(index), model.live_ids(), "{ctx}: after recovery");
}

/// A power cut at every sync point of every workload: the state
/// after recovery is that of the acknowledged operations (or includes the
/// interrupted one, in full), verify passes, leftovers are gone, searches
/// match a fresh index of the same state, and the index keeps working.
#[test]
fn crash_at_every_sync_point() {
    let start = std::time::Instant::now();
    let (mut points, mut applied, mut in_merge, mut merges, mut ops) = (0u64, 0u64, 0u64, 0usize, 0usize);
    for seed in 0..seeds() {
        let nbits = nbits_of(seed);
        let plain = fault_free(seed);
        merges += plain.merges;
        ops += plain.ops.len();
        for k in 0..plain.syncs {
            let ctx = format!("seed {seed}, crash at sync {k} of {}", plain.syncs);
            let m = copy_of(template(nbits));
            let index = open(&m);
            m.crash_at_sync(Some(k));
            let mut model = Model::default();
            let mut inflight = None;
            for (i, op) in plain.ops.iter().enumerate() {
                match exec(&index, &model, op) {
                    Outcome::Done { merge_error, .. } => {
                        // Acknowledged: it must survive.
                        model.apply(op);
                        if let Some(e) = merge_error {
                            assert!(e.contains("simulated crash"), "{ctx}: op {i}: unexpected merge error {e}");
                            in_merge += 1;
                        }
                        if m.is_dead() {
                            assert!(matches!(op, Op::Add { .. }), "{ctx}: op {i} ({}) hid a crash", op.kind());
                            break;
                        }
                    }
                    Outcome::Failed(e) => {
                        assert!(m.is_dead(), "{ctx}: op {i} ({}) failed before the crash: {e}", op.kind());
                        assert!(e.to_string().contains("simulated crash"), "{ctx}: op {i}: unexpected error {e}");
                        inflight = Some(model.after(op));
                        break;
                    }
                }
            }
            assert!(m.is_dead(), "{ctx}: the crash point was never reached");
            drop(index);
            let (index, mut model2) = reopen_after_crash(&m, &model, inflight.as_ref(), &ctx);
            if model2 != model {
                applied += 1;
            }
            assert_same_search(&index, &model2, nbits, &ctx);
            keeps_working(&index, &mut model2, &ctx);
            points += 1;
        }
    }
    assert!(merges > 0, "no workload triggered an automatic merge");
    eprintln!(
        "crash test: {points} crash points over {} workloads ({ops} operations, {merges} automatic merges); \
         {applied} interrupted operations found applied in full, the rest not at all; {in_merge} crashes inside an \
         automatic merge after an acknowledged add; all states consistent ({:.1}s)",
        seeds(),
        start.elapsed().as_secs_f64()
    );
}

/// An I/O error at every write and sync call of every workload, on a
/// handle that then goes on. What the code guarantees, and what is checked:
/// - an operation that returns `Err` changed nothing, in memory or on disk
///   (the files it wrote are removed; a published manifest whose directory
///   sync failed is withdrawn);
/// - an add whose automatic merge failed returns `Ok` with `merge_error`:
///   the add is committed, the merge is not (it is retried after later adds);
/// - a failure in a best-effort step after the commit point (removing the
///   replaced manifest, or the files a merge retired) is absorbed: the
///   operation returns `Ok` and the files are leftovers the next writer open
///   removes.
///
/// After the workload, a crash and reopen must show the same state.
#[test]
fn io_error_at_every_write_and_sync() {
    let start = std::time::Instant::now();
    let (mut points, mut errs, mut merge_errs, mut absorbed, mut leftovers) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for seed in 0..seeds() {
        let nbits = nbits_of(seed);
        let plain = fault_free(seed);
        for k in 0..plain.calls {
            let ctx = format!("seed {seed}, I/O error at call {k} of {}", plain.calls);
            let m = copy_of(template(nbits));
            let index = open(&m);
            let c0 = m.ops();
            m.fail_at(Some(k));
            let mut model = Model::default();
            let mut rng = Rng::mixed(seed);
            let mut hit = false;
            for i in 0..OPS {
                // Generated from the actual state: after a failed op the
                // workload goes on from where the index really is.
                let op = model.random_op(&mut rng);
                match exec(&index, &model, &op) {
                    Outcome::Done { merge_error: None, .. } => model.apply(&op),
                    Outcome::Done { merge_error: Some(e), .. } => {
                        assert!(e.contains("injected I/O error"), "{ctx}: op {i}: unexpected merge error {e}");
                        assert!(!hit, "{ctx}: a second failure");
                        hit = true;
                        merge_errs += 1;
                        model.apply(&op);
                        m.fail_at(None);
                    }
                    Outcome::Failed(e) => {
                        assert!(
                            !matches!(e, Error::Poisoned(_)),
                            "{ctx}: op {i}: one I/O error poisoned the index: {e}"
                        );
                        assert!(e.to_string().contains("injected I/O error"), "{ctx}: op {i}: unexpected error {e}");
                        assert!(!hit, "{ctx}: a second failure");
                        hit = true;
                        errs += 1;
                        m.fail_at(None);
                    }
                }
                assert_eq!(live_ids(&index), model.live_ids(), "{ctx}: after op {i} ({})", op.kind());
                assert_eq!(index.snapshot().manifest().next_id, model.next_id, "{ctx}: next_id after op {i}");
            }
            m.fail_at(None);
            if !hit {
                assert!(m.ops() - c0 > k, "{ctx}: the failure point was never reached");
                absorbed += 1;
            }
            // The running index is sound; an absorbed failure may leave files
            // for the next writer open to remove.
            let r = chromatica::testing::verify::verify(&m)
                .unwrap_or_else(|e| panic!("{ctx}: verify before the crash: {e}"));
            leftovers += u64::from(!r.leftovers.is_empty());
            drop(index);
            m.crash();
            let (index, model2) = reopen_after_crash(&m, &model, None, &ctx);
            assert_eq!(model2, model);
            if k % 4 == 0 {
                assert_same_search(&index, &model, nbits, &ctx);
            }
            points += 1;
        }
    }
    eprintln!(
        "I/O error test: {points} injected I/O errors over {} workloads: {errs} returned Err and changed nothing, \
         {merge_errs} failed an automatic merge after a committed add, {absorbed} hit a best-effort step and were \
         absorbed ({leftovers} of those runs left leftovers for the next open); all states consistent after \
         crash and reopen ({:.1}s)",
        seeds(),
        start.elapsed().as_secs_f64()
    );
}

/// A power cut at every sync point of `create` and `train`, and an I/O error
/// at every write and sync call of `train`: afterwards the directory holds
/// no index (create interrupted: creating again works), an untrained index
/// (training again works) or the trained one; never anything in between.
#[test]
fn crash_during_create_and_train() {
    let data = vectors(&mut Rng::mixed(1004), 600);
    let train = |index: &Index| index.train(&data, &TrainOptions::default(), &mut |_| ()).map(drop);
    let probe = MemStorage::new();
    let index = Index::create_in(path(), Arc::new(probe.clone()), config(4)).unwrap();
    let create_syncs = probe.syncs();
    let c0 = probe.ops();
    train(&index).unwrap();
    let (total, train_calls) = (probe.syncs(), probe.ops() - c0);
    drop(index);
    let (mut untrained, mut trained, mut absent) = (0, 0, 0);
    for k in 0..total {
        let ctx = format!("crash at sync {k} of create+train ({total})");
        let m = MemStorage::new();
        m.crash_at_sync(Some(k));
        let created = Index::create_in(path(), Arc::new(m.clone()), config(4));
        let r = created.as_ref().map_err(|e| e.to_string()).and_then(|i| train(i).map_err(|e| e.to_string()));
        assert!(m.is_dead(), "{ctx}: no crash");
        assert!(r.unwrap_err().contains("simulated crash"), "{ctx}");
        drop(created);
        m.revive();
        let index = match Index::open_in(path(), Arc::new(m.clone()), true) {
            Err(Error::NotAnIndex(_)) => {
                assert!(k < create_syncs, "{ctx}: the created index vanished");
                absent += 1;
                Index::create_in(path(), Arc::new(m.clone()), config(4)).unwrap()
            }
            Err(e) => panic!("{ctx}: reopen failed: {e}"),
            Ok(index) => index,
        };
        if index.is_trained() {
            trained += 1;
        } else {
            untrained += usize::from(k >= create_syncs);
            train(&index).unwrap_or_else(|e| panic!("{ctx}: training again failed: {e}"));
        }
        verify_clean(&m, &ctx);
        assert_no_leftovers(&m.list().unwrap(), index.snapshot().manifest(), &ctx);
        index.add(&data[..DIM * 10], None).unwrap();
        assert_eq!(live_ids(&index), (0..10).collect::<Vec<u64>>());
    }
    for k in 0..train_calls {
        let ctx = format!("I/O error at call {k} of train");
        let m = MemStorage::new();
        let index = Index::create_in(path(), Arc::new(m.clone()), config(4)).unwrap();
        m.fail_at(Some(k));
        let r = train(&index);
        m.fail_at(None);
        match r {
            Ok(()) => assert!(index.is_trained()),
            Err(e) => {
                assert!(e.to_string().contains("injected I/O error"), "{ctx}: {e}");
                assert!(!index.is_trained(), "{ctx}: failed but trained");
                train(&index).unwrap_or_else(|e| panic!("{ctx}: training again failed: {e}"));
            }
        }
        drop(index);
        m.crash();
        let index = Index::open_in(path(), Arc::new(m.clone()), true).unwrap();
        assert!(index.is_trained(), "{ctx}: training lost in the crash");
        verify_clean(&m, &ctx);
        assert_no_leftovers(&m.list().unwrap(), index.snapshot().manifest(), &ctx);
    }
    eprintln!(
        "create/train crash test: {total} crash points ({absent} left no index, {untrained} an untrained one, \
         {trained} the trained one) and {train_calls} I/O error points, all consistent"
    );
}

/// Rejected operations write nothing: deleting an unknown id, adding a live
/// id, and the same after a re-add.
#[test]
fn rejected_operations_write_nothing() {
    let m = copy_of(template(8));
    let index = open(&m);
    let mut model = Model::default();
    let mut rng = Rng::mixed(3);
    let add = Op::Add { data: vectors(&mut rng, 20), ids: None };
    assert!(matches!(exec(&index, &model, &add), Outcome::Done { .. }));
    model.apply(&add);
    let rejected = |what: &str, f: &dyn Fn() -> chromatica::Result<()>| {
        let (c0, names) = (m.ops(), m.list().unwrap());
        let e = f().expect_err(what);
        assert!(matches!(e, Error::InvalidInput(_)), "{what}: {e}");
        assert_eq!(m.ops(), c0, "{what}: wrote something");
        assert_eq!(m.list().unwrap(), names, "{what}: changed the directory");
    };
    rejected("delete of an unknown id", &|| index.delete(&[5, 1000]).map(drop));
    rejected("add of a live id", &|| index.add(&vectors(&mut Rng::mixed(4), 2), Some(&[100u64, 7][..])).map(drop));
    let del = Op::Delete(vec![7]);
    assert!(matches!(exec(&index, &model, &del), Outcome::Done { .. }));
    model.apply(&del);
    rejected("delete of a deleted id", &|| index.delete(&[7]).map(drop));
    let readd = Op::Add { data: vectors(&mut rng, 1), ids: Some(vec![7]) };
    assert!(matches!(exec(&index, &model, &readd), Outcome::Done { .. }));
    model.apply(&readd);
    rejected("add of a re-added id", &|| index.add(&vectors(&mut Rng::mixed(4), 1), Some(&[7u64][..])).map(drop));
    assert_eq!(live_ids(&index), model.live_ids());
    drop(index);
    m.crash();
    let (index, _) = reopen_after_crash(&m, &model, None, "rejected ops");
    assert_same_search(&index, &model, 8, "rejected ops");
}

/// An index with several segments and tombstones, plus its model.
fn busy_index(index: &Index, seed: u64) -> Model {
    index.set_merge_policy(MergePolicy { enabled: false, ..policy() }).unwrap();
    let mut model = Model::default();
    let mut rng = Rng::mixed(seed);
    for i in 0..6 {
        let add = Op::Add { data: vectors(&mut rng, 40), ids: None };
        assert!(matches!(exec(index, &model, &add), Outcome::Done { .. }));
        model.apply(&add);
        let del = Op::Delete(rng.sample(&model.live_ids(), 5 + i));
        assert!(matches!(exec(index, &model, &del), Outcome::Done { .. }));
        model.apply(&del);
    }
    model
}

fn all_hits(search: impl Fn(&[f32], &SearchParams) -> chromatica::Result<Vec<Vec<Neighbor>>>) -> Vec<Vec<(u64, u32)>> {
    let queries = vectors(&mut Rng::mixed(77), 5);
    let p = params(10_000, NLIST);
    search(&queries, &p).expect("search").iter().map(|h| sorted_hits(h)).collect()
}

/// A snapshot taken before `compact` keeps searching with its old
/// results after the compaction removed the files it reads. (`MemStorage`
/// hands out owned copies from `map`, so this part shows the snapshot logic;
/// the filesystem test below shows it over real memory maps of unlinked
/// files.)
#[test]
fn snapshot_outlives_compaction_in_memory() {
    let m = copy_of(template(8));
    let index = open(&m);
    let model = busy_index(&index, 11);
    let snap = index.snapshot();
    let before = all_hits(|q, p| snap.search(q, p));
    let old: Vec<String> =
        m.list().unwrap().into_iter().filter(|n| n.ends_with(".seg") || n.ends_with(".del")).collect();
    let r = index.compact().unwrap();
    assert_eq!(r.segments_after, 1);
    let names = m.list().unwrap();
    assert!(old.iter().all(|n| !names.contains(n)), "compaction left old files: {names:?}");
    assert_eq!(all_hits(|q, p| snap.search(q, p)), before, "the old snapshot's results changed");
    // The compacted index finds exactly the same (id, distance) pairs: codes
    // are copied as they are, and only deleted vectors are dropped.
    assert_eq!(all_hits(|q, p| index.search(q, p)), before);
    assert_eq!(live_ids(&index), model.live_ids());
    assert_no_leftovers(&names, index.snapshot().manifest(), "after compact");
}

/// On the filesystem: a read-only handle opened before a compaction
/// keeps searching its memory maps of the removed segment files, and
/// `refresh` moves it to the compacted state.
#[test]
fn reader_outlives_compaction_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let writer = Index::create(&dir, config(8)).unwrap();
    writer.train(&vectors(&mut Rng::mixed(1008), 600), &TrainOptions::default(), &mut |_| ()).unwrap();
    let model = busy_index(&writer, 12);
    let reader = Index::open_read_only(&dir).unwrap();
    let before = all_hits(|q, p| reader.search(q, p));
    let gen = reader.snapshot().manifest().generation;
    let segs = |d: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".seg"))
            .collect()
    };
    let old = segs(&dir);
    assert_eq!(old.len(), 6);
    writer.compact().unwrap();
    let now = segs(&dir);
    assert_eq!(now.len(), 1);
    assert!(!old.contains(&now[0]));
    // Still searching the unlinked files, with the old results.
    assert_eq!(all_hits(|q, p| reader.search(q, p)), before);
    assert_eq!(reader.snapshot().manifest().generation, gen);
    reader.refresh().unwrap();
    assert!(reader.snapshot().manifest().generation > gen);
    assert_eq!(reader.snapshot().segments().len(), 1);
    assert_eq!(live_ids(&reader), model.live_ids());
    assert_eq!(all_hits(|q, p| reader.search(q, p)), all_hits(|q, p| writer.search(q, p)));
    assert_eq!(all_hits(|q, p| reader.search(q, p)), before);
    let r = Index::verify(&dir).unwrap();
    assert!(r.leftovers.is_empty(), "{:?}", r.leftovers);
}

/// A storage that pauses after listing the directory: it widens, for the
/// handle that uses it, the window between `list` and the `map` calls that
/// follow, which the OS scheduler may open at any time anyway.
#[derive(Debug)]
struct SlowList<S: Storage> {
    inner: S,
    pause: std::time::Duration,
}

impl<S: Storage> Storage for SlowList<S> {
    fn create(&self, name: &str) -> chromatica::Result<Box<dyn chromatica::testing::storage::StorageFile>> {
        self.inner.create(name)
    }
    fn map(&self, name: &str) -> chromatica::Result<chromatica::testing::storage::Bytes> {
        self.inner.map(name)
    }
    fn rename(&self, from: &str, to: &str) -> chromatica::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, name: &str) -> chromatica::Result<()> {
        self.inner.remove(name)
    }
    fn list(&self) -> chromatica::Result<Vec<String>> {
        let names = self.inner.list();
        std::thread::sleep(self.pause);
        names
    }
    fn sync_dir(&self) -> chromatica::Result<()> {
        self.inner.sync_dir()
    }
    fn lock_writer(&self) -> chromatica::Result<Box<dyn Send + Sync>> {
        self.inner.lock_writer()
    }
    fn describe(&self, name: &str) -> String {
        self.inner.describe(name)
    }
}

/// Readers racing a writer (adds, deletes, automatic merges, compactions):
/// every read-only open and every `refresh` must succeed and show one of
/// the committed states, and a refreshed handle never goes back in time.
fn readers_race_a_writer(writer_storage: Arc<dyn Storage>, reader_storage: Arc<dyn Storage>, ops: usize, ctx: &str) {
    let writer = Index::open_in(path(), writer_storage, true).unwrap();
    writer.set_merge_policy(policy()).unwrap();
    // The workload and every state it passes through, computed up front.
    let mut model = Model::default();
    let mut rng = Rng::mixed(4242);
    let mut plan = Vec::new();
    let mut states = vec![model.live_ids()];
    for _ in 0..ops {
        let op = if rng.percent(15) { Op::Compact } else { model.random_op(&mut rng) };
        model.apply(&op);
        states.push(model.live_ids());
        plan.push(op);
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    let (mut opens, mut refreshes, mut failures) = (0u64, 0u64, Vec::new());
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut m = Model::default();
            for op in &plan {
                match exec(&writer, &m, op) {
                    Outcome::Done { merge_error: None, .. } => m.apply(op),
                    Outcome::Done { merge_error: Some(e), .. } => panic!("{ctx}: merge failed: {e}"),
                    Outcome::Failed(e) => panic!("{ctx}: {} failed: {e}", op.kind()),
                }
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        // Position in `states` of what a handle shows, at or after `from`.
        let position = |index: &Index, from: usize| -> Result<usize, String> {
            let live = index.snapshot().live_ids().map_err(|e| format!("live ids: {e}"))?;
            states[from..]
                .iter()
                .position(|s| *s == live)
                .map(|p| from + p)
                .ok_or_else(|| format!("{} live ids: not a committed state at or after state {from}", live.len()))
        };
        let mut handle: Option<(Index, usize, u64)> = None;
        let mut round = 0u64;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            round += 1;
            let step = match handle.take() {
                Some((index, at, gen)) if !round.is_multiple_of(8) => {
                    refreshes += 1;
                    index.refresh().map_err(|e| format!("refresh: {e}")).and_then(|()| {
                        let g = index.snapshot().manifest().generation;
                        if g < gen {
                            return Err(format!("refresh went back from generation {gen} to {g}"));
                        }
                        let at = position(&index, at)?;
                        Ok((index, at, g))
                    })
                }
                _ => {
                    opens += 1;
                    Index::open_in(path(), reader_storage.clone(), false)
                        .map_err(|e| format!("open_read_only: {e}"))
                        .and_then(|index| {
                            let at = position(&index, 0)?;
                            let g = index.snapshot().manifest().generation;
                            Ok((index, at, g))
                        })
                }
            };
            match step {
                Ok(h) => handle = Some(h),
                Err(e) => failures.push(e),
            }
        }
    });
    eprintln!("{ctx}: {opens} read-only opens and {refreshes} refreshes raced {ops} writes; {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{ctx}: readers failed while a writer committed: {:?}",
        &failures[..failures.len().min(5)]
    );
    assert_eq!(live_ids(&Index::open_in(path(), reader_storage, false).unwrap()), model.live_ids());
}

#[test]
fn readers_race_a_writer_in_memory() {
    let m = copy_of(template(4));
    // No pause here: in memory a commit takes microseconds, and the natural
    // race is frequent enough.
    let slow = SlowList { inner: m.clone(), pause: std::time::Duration::ZERO };
    readers_race_a_writer(Arc::new(m), Arc::new(slow), 400, "in memory");
}

/// On disk a commit takes milliseconds (four fsyncs); the readers pause
/// 0.3 ms after listing the directory, as a busy scheduler may make them.
#[test]
fn readers_race_a_writer_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let index = Index::create(&dir, config(4)).unwrap();
    index.train(&vectors(&mut Rng::mixed(1004), 600), &TrainOptions::default(), &mut |_| ()).unwrap();
    drop(index);
    let fs = chromatica::testing::storage::FsStorage::new(&dir);
    let slow = SlowList {
        inner: chromatica::testing::storage::FsStorage::new(&dir),
        pause: std::time::Duration::from_micros(300),
    };
    readers_race_a_writer(Arc::new(fs), Arc::new(slow), 150, "on disk");
}
