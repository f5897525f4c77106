//! Promise: nothing the engine writes goes through a symlink planted in the
//! index directory or beside an output file (issue 10, item 4). Each case
//! plants a link to a file outside the index and checks that its target is
//! untouched (not written, not created), while the operation either
//! succeeds safely or fails with a one-line error naming the file.
#![cfg(unix)]

use chromatica::testing::SnapshotInternals;
use chromatica::{Config, Index};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

const DIM: usize = 8;

fn config() -> Config {
    // Untrained with a refine store: `add` works without training.
    Config { dim: DIM, nlist: 2, m: 2, nbits: 4, nprobe: 1, refine: true, ..Config::default() }
}

fn rows(n: usize, seed: usize) -> Vec<f32> {
    (0..n * DIM).map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0).collect()
}

/// A file outside the index, with contents that must survive.
fn precious(dir: &Path) -> PathBuf {
    let p = dir.join("precious.txt");
    std::fs::write(&p, b"do not overwrite me").unwrap();
    p
}

fn assert_untouched(p: &Path) {
    assert_eq!(std::fs::read(p).unwrap(), b"do not overwrite me", "{} was written through a link", p.display());
}

fn generation(dir: &Path) -> u64 {
    Index::open_read_only(dir).unwrap().snapshot().manifest().generation
}

fn next_file(dir: &Path) -> u64 {
    Index::open_read_only(dir).unwrap().snapshot().manifest().next_file
}

#[test]
fn a_link_named_like_the_next_manifest_temp_file_is_not_written_through() {
    let t = tempfile::tempdir().unwrap();
    let target = precious(t.path());
    let dir = t.path().join("idx");
    let index = Index::create(&dir, config()).unwrap();
    let tmp = format!("MANIFEST-{:016x}.tmp", generation(&dir) + 1);
    symlink(&target, dir.join(&tmp)).unwrap();
    index.add(&rows(10, 1), None).unwrap();
    assert_untouched(&target);
    assert_eq!(index.len(), 10);
    drop(index);
    assert_eq!(Index::open_read_only(&dir).unwrap().len(), 10);
    assert_untouched(&target);
}

#[test]
fn a_link_named_like_the_next_segment_is_skipped_not_written_through() {
    let t = tempfile::tempdir().unwrap();
    let target = precious(t.path());
    let dir = t.path().join("idx");
    let index = Index::create(&dir, config()).unwrap();
    let n = next_file(&dir);
    // Planted after the writer opened (an open removes such leftovers).
    symlink(&target, dir.join(format!("{n:016x}.seg"))).unwrap();
    // A directory in the way of the number after it: skipped as well.
    std::fs::create_dir(dir.join(format!("{:016x}.seg", n + 1))).unwrap();
    let r = index.add(&rows(10, 2), None).unwrap();
    assert_untouched(&target);
    assert!(r.segments[0] > n + 1, "segment number {} reused a taken name", r.segments[0]);
    drop(index);
    let again = Index::open(&dir).unwrap();
    assert_eq!(again.len(), 10);
    assert_untouched(&target);
    // The writer open removed the planted link (never its target) and left
    // the directory alone.
    assert!(std::fs::symlink_metadata(dir.join(format!("{n:016x}.seg"))).is_err());
    assert!(dir.join(format!("{:016x}.seg", n + 1)).is_dir());
}

#[test]
fn a_lock_file_that_is_a_link_is_refused_without_creating_its_target() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("idx");
    drop(Index::create(&dir, config()).unwrap());
    std::fs::remove_file(dir.join("LOCK")).unwrap();
    let outside = t.path().join("created-through-link");
    symlink(&outside, dir.join("LOCK")).unwrap();
    let e = Index::open(&dir).err().expect("a writer open through a LOCK link must fail").to_string();
    assert!(!e.contains('\n'), "{e:?}");
    assert!(e.contains("LOCK"), "{e}");
    assert!(!outside.exists(), "the lock was opened through the link and created its target");
    // Readers take no lock and still work.
    assert_eq!(Index::open_read_only(&dir).unwrap().len(), 0);
}

#[test]
fn create_refuses_a_lock_link_in_an_empty_directory() {
    let t = tempfile::tempdir().unwrap();
    let target = precious(t.path());
    let dir = t.path().join("idx");
    std::fs::create_dir(&dir).unwrap();
    symlink(&target, dir.join("LOCK")).unwrap();
    assert!(Index::create(&dir, config()).is_err());
    assert_untouched(&target);
}

#[test]
fn atomic_output_writes_replace_a_link_and_never_write_its_target() {
    let t = tempfile::tempdir().unwrap();
    let target = precious(t.path());
    let out = t.path().join("out.fvecs");
    symlink(&target, &out).unwrap();
    // A link at the temp name the writer used to use, too.
    symlink(&target, t.path().join("out.fvecs.tmp")).unwrap();
    chromatica::vecio::write_fvecs(&out, &rows(3, 3), DIM).unwrap();
    assert_untouched(&target);
    assert!(!std::fs::symlink_metadata(&out).unwrap().file_type().is_symlink(), "the link itself is replaced");
    assert_eq!(chromatica::vecio::VectorFile::open(&out).unwrap().read_all().unwrap(), rows(3, 3));
}
