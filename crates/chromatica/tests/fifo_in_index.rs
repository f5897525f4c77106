//! Promise: a FIFO (or other non-regular file) inside an index directory
//! never hangs a command; it is refused with a one-line error naming it, and
//! `verify` reports it (issue 10, item 9). Every operation runs on a thread
//! with a deadline, so a hang fails the test instead of stalling it.
#![cfg(unix)]

use chromatica::testing::{IndexInternals, SnapshotInternals};
use chromatica::{Config, Index};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

const DIM: usize = 8;

fn config() -> Config {
    Config { dim: DIM, nlist: 2, m: 2, nbits: 4, nprobe: 1, refine: true, ..Config::default() }
}

fn mkfifo(p: &Path) {
    let ok = std::process::Command::new("mkfifo").arg(p).status().expect("run mkfifo").success();
    assert!(ok, "mkfifo {}", p.display());
}

/// Runs `f` with a deadline; a hang is a failure.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("{what} hung on a FIFO"))
}

/// An index with one segment; returns its directory and that segment's name.
fn index_with_one_segment(t: &tempfile::TempDir) -> (PathBuf, String, u64) {
    let dir = t.path().join("idx");
    let index = Index::create(&dir, config()).unwrap();
    let r = index.add(&[0.25; DIM * 3], None).unwrap();
    let g = index.snapshot().manifest().generation;
    (dir, format!("{:016x}.seg", r.segments[0]), g)
}

fn one_line(e: chromatica::Error) -> String {
    let s = e.to_string();
    assert!(!s.contains('\n'), "{s:?}");
    s
}

#[test]
fn a_fifo_named_like_the_newest_manifest_hangs_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (dir, _, g) = index_with_one_segment(&t);
    let name = format!("MANIFEST-{:016x}", g + 1);
    mkfifo(&dir.join(&name));
    let d = dir.clone();
    let e = within("a writer open", move || Index::open(&d).map(drop)).unwrap_err();
    assert!(one_line(e).contains(&name));
    let d = dir.clone();
    let reader = within("a read-only open", move || Index::open_read_only(&d).map(|i| (i.len(), i.warnings())));
    let (len, warnings) = reader.unwrap();
    assert_eq!(len, 3);
    assert!(warnings.iter().any(|w| w.contains(&name) && w.contains("not a regular file")), "{warnings:?}");
    let d = dir.clone();
    let e = within("verify", move || Index::verify(&d)).unwrap_err();
    let e = one_line(e);
    assert!(e.contains(&name) && e.contains("not a regular file"), "{e}");
}

#[test]
fn a_fifo_in_place_of_a_live_segment_is_refused_and_reported() {
    let t = tempfile::tempdir().unwrap();
    let (dir, seg, _) = index_with_one_segment(&t);
    std::fs::remove_file(dir.join(&seg)).unwrap();
    mkfifo(&dir.join(&seg));
    for writable in [true, false] {
        let d = dir.clone();
        let e = within("open", move || {
            Index::open_in(d.clone(), std::sync::Arc::new(chromatica::testing::storage::FsStorage::new(d)), writable)
                .map(drop)
        })
        .unwrap_err();
        let e = one_line(e);
        assert!(e.contains(&seg) && e.contains("not a regular file"), "{e}");
    }
    let d = dir.clone();
    let e = one_line(within("verify", move || Index::verify(&d)).unwrap_err());
    assert!(e.contains(&seg) && e.contains("not a regular file"), "{e}");
}

#[test]
fn a_fifo_named_like_a_leftover_is_listed_by_verify_and_removed_by_a_writer() {
    let t = tempfile::tempdir().unwrap();
    let (dir, _, _) = index_with_one_segment(&t);
    let name = format!("{:016x}.seg", 999);
    mkfifo(&dir.join(&name));
    let d = dir.clone();
    let report = within("verify", move || Index::verify(&d)).unwrap();
    assert_eq!(report.leftovers, std::slice::from_ref(&name));
    let d = dir.clone();
    within("a writer open", move || Index::open(&d).map(drop)).unwrap();
    assert!(std::fs::symlink_metadata(dir.join(&name)).is_err(), "the leftover FIFO stayed");
}

#[test]
fn a_fifo_lock_file_is_refused_without_hanging() {
    let t = tempfile::tempdir().unwrap();
    let (dir, _, _) = index_with_one_segment(&t);
    std::fs::remove_file(dir.join("LOCK")).unwrap();
    mkfifo(&dir.join("LOCK"));
    let d = dir.clone();
    let e = one_line(within("a writer open", move || Index::open(&d).map(drop)).unwrap_err());
    assert!(e.contains("LOCK") && e.contains("not a regular file"), "{e}");
    let d = dir.clone();
    assert_eq!(within("a read-only open", move || Index::open_read_only(&d).map(|i| i.len())).unwrap(), 3);
}
