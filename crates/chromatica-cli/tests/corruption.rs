//! Damaged files: every single-bit flip in every byte of every file of an
//! index, and truncations and extensions of every file, are caught by
//! `verify` with an error naming the file; opening and searching a damaged
//! index returns errors but never panics, and a flipped code or id byte
//! fails any search that probes its list (the per-list checksum). Things
//! that are not indexes give clear errors.
//!
//! `CHROMATICA_CORRUPT_BITS=8` flips every bit of every byte instead of one
//! bit per byte (the bit position rotating with the byte offset).

mod common;

use chromatica::testing::layout::{get_u32, get_u64};
use chromatica::testing::model::*;
use chromatica::testing::SnapshotInternals;
use chromatica::{Error, Index};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// A small index on disk: quantizers (nbits 4), a segment with 4-byte ids,
/// a segment with 8-byte ids, a tombstone file hiding ids of both, and the
/// manifest. Returns its files (name, bytes), LOCK excluded.
fn build(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let files = corruption_suite_index(dir);
    let ext = |e: &str| files.iter().filter(|(n, _)| n.ends_with(e)).count();
    assert_eq!((ext(".qnt"), ext(".seg"), ext(".del")), (1, 2, 1), "{:?}", names(&files));
    assert_eq!(files.iter().filter(|(n, _)| n.starts_with("MANIFEST-")).count(), 1);
    files
}

fn names(files: &[(String, Vec<u8>)]) -> Vec<&str> {
    files.iter().map(|(n, _)| n.as_str()).collect()
}

/// For a segment file: the list whose codes or ids hold byte `at`, if any
/// (offsets as FORMAT.md declares them).
fn list_of_byte(seg: &[u8], at: usize) -> Option<usize> {
    let (code_size, id_width, n) = (get_u32(seg, 20) as usize, get_u32(seg, 24) as usize, get_u64(seg, 32) as usize);
    let (lists, codes, ids) = (get_u64(seg, 48) as usize, get_u64(seg, 60) as usize, get_u64(seg, 72) as usize);
    let vector = if (codes..codes + n * code_size).contains(&at) {
        (at - codes) / code_size
    } else if (ids..ids + n * id_width).contains(&at) {
        (at - ids) / id_width
    } else {
        return None;
    };
    (0..NLIST).find(|&l| {
        let (start, count) = (get_u64(seg, lists + 16 * l) as usize, get_u32(seg, lists + 16 * l + 8) as usize);
        (start..start + count).contains(&vector)
    })
}

/// The queries: for each list its centroid (nearest to that list alone),
/// read from the intact index.
fn centroids(dir: &Path) -> Vec<Vec<f32>> {
    let index = Index::open_read_only(dir).unwrap();
    let snap = index.snapshot();
    let q = snap.quantizers().unwrap();
    (0..NLIST).map(|l| q.centroid(l).to_vec()).collect()
}

/// Opens `dir` read-only and runs every search we have: all lists with
/// every centroid query, each list alone, and the live ids. Any panic fails
/// the test; errors are returned (the first one).
fn read_everything(dir: &Path, queries: &[Vec<f32>], ctx: &str) -> Result<(), Error> {
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(), Error> {
        let index = Index::open_read_only(dir)?;
        let all: Vec<f32> = queries.concat();
        let mut first = None;
        let mut note = |r: Result<(), Error>| {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        };
        note(index.search(&all, &params(1000, NLIST)).map(drop));
        for q in queries {
            note(index.search(q, &params(5, 1)).map(drop));
        }
        note(index.snapshot().live_ids().map(drop));
        first.map_or(Ok(()), Err)
    }));
    outcome.unwrap_or_else(|_| panic!("{ctx}: opening or searching panicked"))
}

/// With a code or id byte of list `l` of segment `file` damaged: a search
/// probing list `l` alone must fail with that list's checksum error.
fn probing_list_fails(dir: &Path, queries: &[Vec<f32>], file: &str, l: usize, ctx: &str) {
    let index = Index::open_read_only(dir).unwrap_or_else(|e| panic!("{ctx}: a code/id flip broke open: {e}"));
    let e = index.search(&queries[l], &params(5, 1)).expect_err(&format!("{ctx}: a search probing list {l} succeeded"));
    let m = e.to_string();
    assert!(m.contains(file) && m.contains(&format!("list {l} checksum")), "{ctx}: wrong error: {m}");
    let e = index.search(&queries.concat(), &params(5, NLIST)).expect_err(ctx);
    assert!(e.to_string().contains(file), "{ctx}: wrong error: {e}");
}

/// `Index::verify` must fail naming `file`.
fn verify_names(dir: &Path, file: &str, ctx: &str) {
    match Index::verify(dir) {
        Ok(r) => panic!("{ctx}: verify passed: {r:?}"),
        Err(e) => {
            let m = e.to_string();
            assert!(m.contains(file), "{ctx}: verify error does not name {file}: {m}");
        }
    }
}

#[test]
fn every_bit_flip_is_caught() {
    let start = std::time::Instant::now();
    let bits = env_count("CHROMATICA_CORRUPT_BITS", 1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let files = build(&dir);
    let queries = centroids(&dir);
    Index::verify(&dir).unwrap();
    read_everything(&dir, &queries, "intact").unwrap();
    let (mut flips, mut list_flips, mut read_errors) = (0u64, 0u64, 0u64);
    let mut per_file = Vec::new();
    for (name, orig) in &files {
        let path = dir.join(name);
        let mut file_flips = 0;
        for at in 0..orig.len() {
            for b in 0..bits {
                let bit = (at + b) % 8;
                let ctx = format!("{name}: bit {bit} of byte {at}");
                let mut bad = orig.clone();
                bad[at] ^= 1 << bit;
                std::fs::write(&path, &bad).unwrap();
                verify_names(&dir, name, &ctx);
                if read_everything(&dir, &queries, &ctx).is_err() {
                    read_errors += 1;
                }
                if name.ends_with(".seg") {
                    if let Some(l) = list_of_byte(orig, at) {
                        probing_list_fails(&dir, &queries, name, l, &ctx);
                        list_flips += 1;
                    }
                }
                flips += 1;
                file_flips += 1;
            }
        }
        std::fs::write(&path, orig).unwrap();
        per_file.push(format!("{name} {} bytes", orig.len()));
        assert!(file_flips > 0);
    }
    Index::verify(&dir).unwrap();
    assert!(list_flips > 0);
    eprintln!(
        "corruption: {flips} single-bit flips, all caught by verify ({}; {list_flips} in segment codes/ids, each \
         failing a search that probes its list; {read_errors} made open or search fail, none panicked; {:.1}s)",
        per_file.join(", "),
        start.elapsed().as_secs_f64()
    );
}

/// Lengths to cut a file of `len` bytes to: every length in the headers,
/// then a sample, and the last few.
fn cut_lengths(len: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..len.min(160)).collect();
    v.extend((160..len).step_by(13));
    v.extend(len.saturating_sub(4)..len);
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn truncation_and_extension_are_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let files = build(&dir);
    let queries = centroids(&dir);
    let mut cuts = 0;
    for (name, orig) in &files {
        let path = dir.join(name);
        for len in cut_lengths(orig.len()) {
            let ctx = format!("{name} cut to {len} of {} bytes", orig.len());
            std::fs::write(&path, &orig[..len]).unwrap();
            verify_names(&dir, name, &ctx);
            assert!(read_everything(&dir, &queries, &ctx).is_err(), "{ctx}: open and search did not notice");
            cuts += 1;
        }
        for extra in [vec![0u8], vec![0u8; 64], vec![0xFF; 3]] {
            let ctx = format!("{name} extended by {} bytes", extra.len());
            std::fs::write(&path, [orig.as_slice(), &extra].concat()).unwrap();
            verify_names(&dir, name, &ctx);
            let _ = read_everything(&dir, &queries, &ctx);
            cuts += 1;
        }
        std::fs::write(&path, orig).unwrap();
    }
    Index::verify(&dir).unwrap();
    eprintln!("corruption: {cuts} truncations and extensions, all caught by verify, none panicked");
}

/// A file of another index shape, or a file moved in from elsewhere, is
/// caught too: here a segment is swapped for the other one (each is intact
/// in itself).
#[test]
fn swapped_files_are_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let files = build(&dir);
    let queries = centroids(&dir);
    let segs: Vec<&(String, Vec<u8>)> = files.iter().filter(|(n, _)| n.ends_with(".seg")).collect();
    std::fs::write(dir.join(&segs[0].0), &segs[1].1).unwrap();
    verify_names(&dir, &segs[0].0, "swapped segment");
    assert!(read_everything(&dir, &queries, "swapped segment").is_err());
}

fn message(r: chromatica::Result<impl std::fmt::Debug>) -> String {
    let e = r.expect_err("expected an error");
    let m = e.to_string();
    assert!(!m.contains('\n'), "multi-line message: {m:?}");
    m
}

fn assert_not_an_index(path: &Path, what: &str) {
    for (op, m) in [
        ("open", message(Index::open(path).map(drop))),
        ("open_read_only", message(Index::open_read_only(path).map(drop))),
        ("verify", message(Index::verify(path))),
    ] {
        assert!(m.contains("not a chromatica index"), "{what}: {op}: unclear error: {m}");
        assert!(m.contains(path.file_name().unwrap().to_str().unwrap()), "{what}: {op}: path not named: {m}");
    }
    let out = common::run(&["verify".as_ref(), path.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "{what}: chromatica verify");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: ") && err.contains("not a chromatica index"), "{what}: {err}");
}

#[test]
fn things_that_are_not_indexes_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();

    let file = root.join("plain-file");
    std::fs::write(&file, b"hello, I am not an index").unwrap();
    assert_not_an_index(&file, "a regular file");

    let empty = root.join("empty-dir");
    std::fs::create_dir(&empty).unwrap();
    assert_not_an_index(&empty, "an empty directory");
    let left: Vec<PathBuf> = std::fs::read_dir(&empty).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "opening an empty directory created {left:?}");

    let locked = root.join("lock-only");
    std::fs::create_dir(&locked).unwrap();
    std::fs::write(locked.join("LOCK"), b"").unwrap();
    assert_not_an_index(&locked, "a directory holding only LOCK");

    let foreign = root.join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), b"x").unwrap();
    std::fs::write(foreign.join("0000000000000001.seg.tmp"), b"x").unwrap();
    assert_not_an_index(&foreign, "a directory of foreign files");
    assert!(foreign.join("notes.txt").exists());

    let missing = root.join("missing");
    for m in [message(Index::open(&missing).map(drop)), message(Index::verify(&missing))] {
        assert!(m.contains("missing"), "missing directory: {m}");
    }
    assert!(!missing.exists(), "opening a missing path created it");

    // A manifest that is garbage: the error names it and says it is corrupt.
    let junk = root.join("junk-manifest");
    std::fs::create_dir(&junk).unwrap();
    std::fs::write(junk.join("MANIFEST-0000000000000001"), b"this is not a manifest at all").unwrap();
    for m in [message(Index::open_read_only(&junk).map(drop)), message(Index::verify(&junk))] {
        assert!(m.contains("MANIFEST-0000000000000001") && m.contains("corrupt"), "garbage manifest: {m}");
    }

    // An index can still be created in the directories opening refused.
    for d in [&empty, &locked] {
        let index = Index::create(d, config(4)).unwrap();
        drop(index);
        Index::verify(d).unwrap();
    }
    assert!(matches!(Index::create(&empty, config(4)), Err(Error::AlreadyExists(_))));
}
