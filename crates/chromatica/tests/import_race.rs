//! Promise: an import never removes an index it did not create (issue 10,
//! item 3). The race is made deterministic by feeding the import its faiss
//! file through a FIFO: the import blocks reading it, past its first
//! directory check, while the test creates an index in the same place (or
//! lets a second import finish there); only then are the bytes written.
#![cfg(unix)]

use chromatica::faiss_import;
use chromatica::{Config, Index};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

fn fixture() -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/faiss/ivfpq_m4_nbits8.faiss");
    std::fs::read(p).unwrap()
}

fn mkfifo(p: &Path) {
    let ok = std::process::Command::new("mkfifo").arg(p).status().expect("run mkfifo").success();
    assert!(ok, "mkfifo {}", p.display());
}

/// An import of the FIFO `fifo` into `dir`, started on a thread. Returns once
/// the import has opened the FIFO (its directory check is behind it) and
/// the writing end, through which the test releases it.
fn blocked_import(fifo: &Path, dir: &Path) -> (JoinHandle<Result<u64, String>>, std::fs::File) {
    mkfifo(fifo);
    let (f, d) = (fifo.to_owned(), dir.to_owned());
    let handle = std::thread::spawn(move || {
        faiss_import::import(&f, &d).map(|(index, _)| index.len()).map_err(|e| e.to_string())
    });
    // Opening a FIFO for writing blocks until its reader has opened it.
    let writer = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
    (handle, writer)
}

fn release(mut writer: std::fs::File) {
    writer.write_all(&fixture()).unwrap();
}

fn config() -> Config {
    Config { dim: 8, nlist: 2, m: 2, nbits: 4, nprobe: 1, refine: true, ..Config::default() }
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("V");
    (t, dir)
}

#[test]
fn an_import_racing_a_create_leaves_the_created_index_alone() {
    for round in 0..3 {
        let (t, dir) = setup();
        let (import, writer) = blocked_import(&t.path().join("in.faiss"), &dir);
        // `create V` while the import parses.
        let created = Index::create(&dir, config()).unwrap();
        created.add(&[0.5; 8], None).unwrap();
        drop(created);
        let before = files(&dir);
        release(writer);
        let e = import.join().unwrap().expect_err("the import must fail: an index exists now");
        assert!(e.contains("already exists"), "round {round}: {e}");
        assert_eq!(files(&dir), before, "round {round}: the import changed the created index");
        let index = Index::open_read_only(&dir).unwrap();
        assert_eq!((index.len(), index.config().dim), (1, 8), "round {round}");
        chromatica::Index::verify(&dir).unwrap();
    }
}

#[test]
fn of_two_imports_into_one_new_directory_one_wins_and_its_index_stays() {
    for round in 0..5 {
        let (t, dir) = setup();
        let (first, first_writer) = blocked_import(&t.path().join("a.faiss"), &dir);
        let (second, second_writer) = blocked_import(&t.path().join("b.faiss"), &dir);
        release(second_writer);
        let n = second.join().unwrap().unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(n > 0);
        release(first_writer);
        let e = first.join().unwrap().expect_err("the second import into the directory must fail");
        assert!(e.contains("already exists"), "round {round}: {e}");
        assert!(dir.is_dir(), "round {round}: the losing import removed the directory");
        let index = Index::open_read_only(&dir).unwrap();
        assert_eq!(index.len(), n, "round {round}");
        chromatica::Index::verify(&dir).unwrap();
    }
}
