//! Promise: `verify` checks one consistent state while another handle
//! commits, and never calls a healthy index broken (issue 10, item 8).
//!
//! The race is made deterministic with a storage wrapper that lets a writer
//! commit (an add, then a compaction that retires every older file) in the
//! middle of `verify`, at its n-th file read, for every n; then a bounded
//! loop on disk with a real writer thread adding, compacting and retraining.

use chromatica::testing::storage::{Bytes, MemStorage, Storage, StorageFile};
use chromatica::testing::IndexInternals;
use chromatica::{Config, Index, TrainOptions};
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const DIM: usize = 8;

fn config() -> Config {
    Config { dim: DIM, nlist: 4, m: 2, nbits: 4, nprobe: 2, refine: true, ..Config::default() }
}

fn rows(n: usize, seed: usize) -> Vec<f32> {
    (0..n * DIM).map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0).collect()
}

type Hook = Box<dyn FnOnce() + Send>;

/// `MemStorage` that runs a hook just before its n-th `map`.
#[derive(Debug)]
struct Racing {
    inner: MemStorage,
    maps: AtomicUsize,
    at: usize,
    hook: Mutex<Option<HookBox>>,
}

struct HookBox(Hook);
impl std::fmt::Debug for HookBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("hook")
    }
}

impl Storage for Racing {
    fn create(&self, name: &str) -> chromatica::Result<Box<dyn StorageFile>> {
        self.inner.create(name)
    }
    fn map(&self, name: &str) -> chromatica::Result<Bytes> {
        if self.maps.fetch_add(1, Ordering::SeqCst) == self.at {
            if let Some(HookBox(h)) = self.hook.lock().take() {
                h();
            }
        }
        self.inner.map(name)
    }
    fn rename(&self, from: &str, to: &str) -> chromatica::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, name: &str) -> chromatica::Result<()> {
        self.inner.remove(name)
    }
    fn list(&self) -> chromatica::Result<Vec<String>> {
        self.inner.list()
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

/// A trained index of three segments and a tombstone file.
fn busy() -> MemStorage {
    let m = MemStorage::new();
    let index = Index::create_in(PathBuf::from("mem"), Arc::new(m.clone()), config()).unwrap();
    index.set_merge_policy(chromatica::MergePolicy { enabled: false, ..Default::default() }).unwrap();
    index.train(&rows(300, 0), &TrainOptions::default(), &mut |_| ()).unwrap();
    for s in 1..=3 {
        index.add(&rows(40, s), None).unwrap();
    }
    index.delete(&[3, 50]).unwrap();
    m
}

#[test]
fn verify_survives_a_commit_at_every_file_it_reads() {
    // How many files one quiet verify reads: every one is a race point.
    let probe = Racing { inner: busy(), maps: AtomicUsize::new(0), at: usize::MAX, hook: Mutex::new(None) };
    let quiet = chromatica::testing::verify::verify(&probe).unwrap();
    let points = probe.maps.load(Ordering::SeqCst);
    assert!(points >= 6, "{points}");
    for at in 0..points {
        let m = busy();
        let writer = m.clone();
        let hook: Hook = Box::new(move || {
            let index = Index::open_in(PathBuf::from("mem"), Arc::new(writer), true).unwrap();
            index.add(&rows(10, 9), None).unwrap();
            index.compact().unwrap();
        });
        let racing = Racing { inner: m, maps: AtomicUsize::new(0), at, hook: Mutex::new(Some(HookBox(hook))) };
        let r = chromatica::testing::verify::verify(&racing)
            .unwrap_or_else(|e| panic!("commit at read {at} of {points}: a healthy index was called broken: {e}"));
        assert!(racing.hook.lock().is_none(), "the hook did not run at read {at}");
        // It verified either the state before the commit or the one after.
        assert!(r.vectors == quiet.vectors || r.vectors == quiet.vectors + 10, "read {at}: {} vectors", r.vectors);
    }
}

#[test]
fn verify_in_a_loop_beside_a_writer_on_disk() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("idx");
    let index = Index::create(&dir, config()).unwrap();
    index.train(&rows(300, 0), &TrainOptions::default(), &mut |_| ()).unwrap();
    index.add(&rows(50, 1), None).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let done = done.clone();
        std::thread::spawn(move || {
            for round in 0..60 {
                index.add(&rows(20, round + 2), None).unwrap();
                match round % 3 {
                    0 => drop(index.compact().unwrap()),
                    1 => drop(index.retrain(&TrainOptions::default()).unwrap()),
                    _ => drop(index.delete(&[round as u64]).unwrap()),
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut checks = 0;
    while !done.load(Ordering::SeqCst) || checks < 50 {
        Index::verify(&dir).unwrap_or_else(|e| panic!("check {checks}: a healthy index was called broken: {e}"));
        checks += 1;
        assert!(checks < 100_000, "bounded");
    }
    writer.join().unwrap();
    eprintln!("{checks} verifies beside 60 commits of add + compact/retrain/delete");
}
