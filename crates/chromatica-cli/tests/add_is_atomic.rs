//! Issue 10, item 2, through the command line: `add` of a file one row
//! longer than its 131,072-row batch, whose last id is live, fails and
//! changes no byte; with good ids it is one commit of two segments.

mod common;

use chromatica::testing::SnapshotInternals;
use chromatica::testing::{data::clustered, files::dir_contents};
use chromatica::vecio::{write_ivecs, write_npy_f32};
use chromatica::Index;
use common::*;

const N: usize = 131_073;

#[test]
fn a_bad_last_id_changes_nothing_and_a_good_file_is_one_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let idx = root.join("idx");
    let (train, big, ids) = (root.join("train.npy"), root.join("big.npy"), root.join("ids.ivecs"));
    write_npy_f32(&train, &clustered(1000, 4, 1), 4).unwrap();
    write_npy_f32(&big, &clustered(N, 4, 2), 4).unwrap();
    ok(&["create", p(&idx), "--dim", "4", "--nlist", "4", "--m", "2", "--nbits", "4", "--nprobe", "4"]);
    ok(&["train", p(&idx), "--vectors", p(&train)]);
    ok(&["add", p(&idx), "--vectors", p(&train)]); // ids 0..1000
    let before = dir_contents(&idx);
    let mut bad: Vec<i32> = (5000..5000 + N as i32).collect();
    bad[N - 1] = 7;
    write_ivecs(&ids, &bad, 1).unwrap();
    fails_with(&["add", p(&idx), "--vectors", p(&big), "--ids", p(&ids)], "id 7 is already in the index");
    assert_eq!(dir_contents(&idx), before, "the refused add changed the index");
    let generation = Index::open_read_only(&idx).unwrap().snapshot().manifest().generation;

    bad[N - 1] = 4999;
    write_ivecs(&ids, &bad, 1).unwrap();
    let (so, _) = ok(&["add", p(&idx), "--vectors", p(&big), "--ids", p(&ids)]);
    assert!(so.contains("in 2 segment(s)") && so.contains(&format!("index holds {}", 1000 + N)), "{so}");
    let snap = Index::open_read_only(&idx).unwrap().snapshot();
    assert_eq!(snap.manifest().generation, generation + 1, "two batches, one commit");
    ok(&["verify", p(&idx)]);
}
