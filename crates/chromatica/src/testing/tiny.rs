//! Genuine tiny indexes built in a [`MemStorage`] (dim 8, nlist 2, m 2,
//! nbits 4, so one-byte codes and 16 PQ centroids), their deterministic
//! data, and copies of their files: starting points that are cheap to make
//! and restore, for fuzz targets and for tests that damage files.

use super::MemStorage;
use crate::storage::Storage;
use crate::{Config, Index, MergePolicy, Record, TrainOptions};
use std::path::PathBuf;
use std::sync::Arc;

/// dim 8, nlist 2, m 2, nbits 4: one-byte codes, 16 PQ centroids; with or
/// without the refine store (exact vectors kept beside the codes).
pub fn tiny_config(refine: bool) -> Config {
    Config { dim: 8, nlist: 2, m: 2, nbits: 4, nprobe: 1, refine, ..Config::default() }
}

/// [`tiny_config`], optionally with 4-bit fast-scan (codes in blocks of 32).
pub fn tiny_config_as(refine: bool, fast_scan: bool) -> Config {
    Config { fast_scan, ..tiny_config(refine) }
}

/// Training options that keep training to a few milliseconds.
pub fn quick_training() -> TrainOptions {
    TrainOptions { niter: 4, ..TrainOptions::default() }
}

/// Deterministic vectors in (0, 1): row `i` of a fixed pseudo-random stream.
pub fn vectors(first_row: u64, rows: usize, dim: usize) -> Vec<f32> {
    (0..rows * dim)
        .map(|k| {
            let mut x = (first_row * dim as u64 + k as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
            x ^= x >> 33;
            x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            x ^= x >> 33;
            ((x >> 40) as f32 + 0.5) / (1u64 << 24) as f32
        })
        .collect()
}

/// A record for row `row` (path, size, mtime), distinct per row.
pub fn record(row: u64) -> Record {
    Record { path: format!("img/{row}.jpg").into(), size: 1000 + row, mtime_ns: -(row as i64) }
}

/// The small merge policy the ops model uses, so automatic merges happen.
pub fn small_merge_policy() -> MergePolicy {
    MergePolicy { enabled: true, merge_factor: 3, min_level: 4, level_log_size: 0.75 }
}

/// Every file of a storage, sorted by name (written bytes, not only durable).
pub fn files_of(s: &MemStorage) -> Vec<(String, Vec<u8>)> {
    let mut names = s.list().expect("list");
    names.sort();
    names.into_iter().filter_map(|n| s.contents(&n).map(|b| (n, b))).collect()
}

/// A new storage holding `files`, all durable.
pub fn storage_with(files: &[(String, Vec<u8>)]) -> MemStorage {
    let s = MemStorage::new();
    for (name, bytes) in files {
        let mut f = s.create(name).expect("create");
        f.write_all(bytes).expect("write");
        f.sync().expect("sync");
    }
    s.sync_dir().expect("sync_dir");
    s
}

/// A created, empty tiny index; trained on 40 vectors if `trained`.
pub fn tiny_index(refine: bool, trained: bool) -> (MemStorage, Index) {
    tiny_index_as(refine, trained, false)
}

/// [`tiny_index`], optionally with fast-scan.
pub fn tiny_index_as(refine: bool, trained: bool, fast_scan: bool) -> (MemStorage, Index) {
    let s = MemStorage::new();
    let config = tiny_config_as(refine, fast_scan);
    let index = Index::create_in(PathBuf::from("fuzz"), Arc::new(s.clone()), config).expect("create");
    if trained {
        index.train(&vectors(1_000_000, 40, 8), &quick_training(), &mut |_| ()).expect("train");
    }
    (s, index)
}

/// The files of an empty tiny index (a manifest, and a `.qnt` if trained),
/// made once per process: restoring them is much cheaper than training.
pub fn empty_index_files(refine: bool, trained: bool, fast_scan: bool) -> &'static [(String, Vec<u8>)] {
    type Files = std::sync::OnceLock<Vec<(String, Vec<u8>)>>;
    static FILES: [Files; 8] = [const { Files::new() }; 8];
    FILES[usize::from(fast_scan) * 4 + usize::from(refine) * 2 + usize::from(trained)].get_or_init(|| {
        let (s, index) = tiny_index_as(refine, trained, fast_scan);
        drop(index);
        files_of(&s)
    })
}

/// A tiny index with every kind of file: quantizers, three segments (ids
/// 0..10, 100..105, and 7000 with one id above 2^32, so both id widths),
/// and one tombstone file deleting two ids. `rich` adds the refine store to
/// every segment and records to the second. Calls `seen` after every
/// commit, so seed generation can keep intermediate files. `fast_scan`
/// stores the codes in fast-scan blocks.
pub fn populated_tiny_index(rich: bool, fast_scan: bool, mut seen: impl FnMut(&MemStorage)) -> (MemStorage, Index) {
    let (s, index) = tiny_index_as(rich, true, fast_scan);
    seen(&s);
    index.add(&vectors(0, 10, 8), None).expect("add");
    seen(&s);
    let ids: Vec<u64> = (100..105).collect();
    if rich {
        let records: Vec<Record> = (100..105).map(record).collect();
        index.add_records(&vectors(100, 5, 8), Some(&ids), &records).expect("add records");
    } else {
        index.add(&vectors(100, 5, 8), Some(&ids)).expect("add ids");
    }
    seen(&s);
    index.add(&vectors(200, 2, 8), Some(&[1 << 33, 7_000])).expect("add wide ids");
    seen(&s);
    index.delete(&[3, 101]).expect("delete");
    seen(&s);
    (s, index)
}

/// The files of [`populated_tiny_index`], built once per process.
pub fn populated_files(rich: bool, fast_scan: bool) -> &'static [(String, Vec<u8>)] {
    type Files = std::sync::OnceLock<Vec<(String, Vec<u8>)>>;
    static FILES: [Files; 4] = [const { Files::new() }; 4];
    FILES[usize::from(fast_scan) * 2 + usize::from(rich)].get_or_init(|| {
        let (s, index) = populated_tiny_index(rich, fast_scan, |_| ());
        drop(index);
        files_of(&s)
    })
}
