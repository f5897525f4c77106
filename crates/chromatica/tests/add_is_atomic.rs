//! An add is all or nothing, however large (issue 10, item 2): every row
//! and id of the input is checked before anything is written, and an input
//! of several batches is committed by one manifest naming all its
//! segments. Checked with an input one row longer than a batch of the
//! command line (131,072 rows), at a small dimension to stay fast, and under
//! an injected I/O error at every write and sync of a multi-batch add.

use chromatica::testing::storage::{write_file, Storage};
use chromatica::testing::{data::*, files::dir_contents, MemStorage};
use chromatica::testing::{IndexInternals, SnapshotInternals};
use chromatica::{Config, Index, Rows, SearchParams, TrainOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const BATCH: usize = 131_072;
const N: usize = BATCH + 1;
const DIM: usize = 4;

fn shape() -> Config {
    config(DIM, 4, 2, 4, 4)
}

/// A trained index holding ids 0..10.
fn index(dir: &Path) -> Index {
    let index = Index::create(dir, shape()).unwrap();
    index.train(&clustered(1000, DIM, 1), &TrainOptions::default(), &mut |_| ()).unwrap();
    index.add(&clustered(10, DIM, 2), None).unwrap();
    index
}

/// Runs a bad add of N rows (in batches of BATCH) and checks that it
/// failed with `want` and left every byte of the index as it was.
fn refused(data: &[f32], ids: Option<&[u64]>, want: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let index = index(&dir);
    let before = dir_contents(&dir);
    let e = index.add_from(&Rows { data, dim: DIM }, ids, BATCH).unwrap_err().to_string();
    assert!(e.contains(want), "error {e:?} does not contain {want:?}");
    assert_eq!(index.len(), 10);
    drop(index);
    assert_eq!(dir_contents(&dir), before, "a refused add changed the index");
    assert_eq!(Index::open(&dir).unwrap().len(), 10);
}

#[test]
fn a_live_id_in_the_last_batch_changes_nothing() {
    let data = clustered(N, DIM, 3);
    let mut ids: Vec<u64> = (1000..1000 + N as u64).collect();
    ids[N - 1] = 5;
    refused(&data, Some(&ids), "id 5 is already in the index");
}

#[test]
fn an_id_repeated_across_batches_changes_nothing() {
    let data = clustered(N, DIM, 3);
    let mut ids: Vec<u64> = (1000..1000 + N as u64).collect();
    ids[N - 1] = ids[0];
    refused(&data, Some(&ids), &format!("id 1000 appears twice in the batch (again at row {})", N - 1));
}

#[test]
fn a_bad_row_in_the_last_batch_changes_nothing() {
    let mut data = clustered(N, DIM, 3);
    data[(N - 1) * DIM + 2] = f32::NAN;
    refused(&data, None, &format!("row {} has a non-finite value (NaN) at column 2", N - 1));
    data[(N - 1) * DIM + 2] = 1e20;
    refused(&data, None, &format!("row {} has a value (1e20) beyond the limit", N - 1));
}

#[test]
fn a_multi_batch_add_is_one_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let index = index(&dir);
    let generation = index.snapshot().manifest().generation;
    let data = clustered(N, DIM, 4);
    let report = index.add_from(&Rows { data: &data, dim: DIM }, None, BATCH).unwrap();
    assert_eq!(report.ids, 10..10 + N as u64);
    assert_eq!(report.segments.len(), 2);
    let snap = index.snapshot();
    assert_eq!(snap.manifest().generation, generation + 1, "one commit for both batches");
    let counts: Vec<u64> = snap.manifest().segments.iter().map(|s| s.vectors).collect();
    assert_eq!(counts, [10, BATCH as u64, 1]);
    drop(index);
    let index = Index::open(&dir).unwrap();
    assert_eq!(index.len(), 10 + N as u64);
    Index::verify(&dir).unwrap();
    let hits = index.search(&data[(N - 1) * DIM..], &SearchParams::new(1)).unwrap();
    assert!(hits[0][0].distance < 0.5, "{:?}", hits[0]);
}

/// An I/O error at every write and sync of a three-batch add: the add fails
/// and the index reopens holding none of it, or it succeeds and holds all.
#[test]
fn an_io_error_anywhere_in_a_multi_batch_add_leaves_none_or_all() {
    let path = PathBuf::from("mem");
    let template = MemStorage::new();
    let index = Index::create_in(path.clone(), Arc::new(template.clone()), shape()).unwrap();
    index.train(&clustered(1000, DIM, 1), &TrainOptions::default(), &mut |_| ()).unwrap();
    drop(index);
    let data = clustered(250, DIM, 5);
    let mut failures = 0;
    for k in 0.. {
        let m = MemStorage::new();
        for name in template.list().unwrap() {
            write_file(&m, &name, &template.contents(&name).unwrap()).unwrap();
        }
        m.sync_dir().unwrap();
        let index = Index::open_in(path.clone(), Arc::new(m.clone()), true).unwrap();
        m.fail_at(Some(k));
        let r = index.add_from(&Rows { data: &data, dim: DIM }, None, 100);
        m.fail_at(None);
        drop(index);
        let reopened = Index::open_in(path.clone(), Arc::new(m.clone()), true).unwrap();
        match r {
            Ok(report) => {
                assert_eq!(report.segments.len(), 3);
                assert_eq!(reopened.len(), 250, "fail at {k}");
                break;
            }
            Err(e) => {
                assert!(e.to_string().contains("injected"), "fail at {k}: {e}");
                assert_eq!(reopened.len(), 0, "fail at {k}: a failed add left vectors");
                failures += 1;
            }
        }
        chromatica::testing::verify::verify(&m).unwrap();
    }
    assert!(failures >= 6, "only {failures} failure points: three segments and a manifest");
}
