//! A whole index directory, mutated: starting from a genuine tiny index
//! (quantizers, three segments of both id widths, a tombstone file; with or
//! without the refine store and records, with plain or fast-scan codes, as
//! the input chooses), the
//! input overwrites, truncates, flips, patches, copies and removes files,
//! optionally repairing their checksums so damage reaches the semantic
//! checks. Then:
//! - read-only open, `live_ids`, a search probing every list and
//!   `chromatica::testing::verify::verify` must not panic;
//! - when verify passes: live ids are distinct, as many as the snapshot
//!   says, and (quantizer values being moderate) an exhaustive search
//!   returns exactly them;
//! - optionally a writable open, then add (maybe with a coordinate around
//!   the input limit), delete, compact and retrain: no panic, an add with a
//!   value beyond the limit fails, every write that succeeded leaves a
//!   state that opens, and an index that verified before still verifies
//!   after it.
#![no_main]

use arbitrary::Arbitrary;
use chromatica::testing::{IndexInternals, SnapshotInternals};
use chromatica::SearchParams;
use chromatica::testing::storage::{MemStorage, Storage};
use chromatica::Index;
use chromatica_fuzz::*;
use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

/// Names a file edit can target besides the genuine index's own: older and
/// newer manifests, numbered files it does not name, temporaries and a
/// stranger.
const EXTRA_NAMES: &[&str] = &[
    "MANIFEST-0000000000000001",
    "MANIFEST-0000000000000002",
    "MANIFEST-0000000000000003",
    "MANIFEST-0000000000000007",
    "MANIFEST-0000000000000010",
    "MANIFEST-ffffffffffffffff",
    "0000000000000001.qnt",
    "0000000000000002.seg",
    "0000000000000002.del",
    "0000000000000006.seg",
    "0000000000000006.del",
    "0000000000000007.qnt",
    "0000000000000008.seg",
    "MANIFEST-0000000000000007.tmp",
    "0000000000000008.seg.tmp",
    "notes.txt",
];

/// The genuine files' names first (so small choices hit them), then the rest.
fn names() -> &'static [String] {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let mut v: Vec<String> = populated_files(true, false).iter().map(|(n, _)| n.clone()).collect();
        for (rich, fast_scan) in [(false, false), (true, true), (false, true)] {
            for (n, _) in populated_files(rich, fast_scan) {
                if !v.contains(n) {
                    v.push(n.clone());
                }
            }
        }
        for n in EXTRA_NAMES {
            if !v.iter().any(|x| x == n) {
                v.push(n.to_string());
            }
        }
        v
    })
}

#[derive(Arbitrary, Debug)]
enum Edit {
    /// Replaces (or creates) a file.
    Replace {
        file: u8,
        bytes: Vec<u8>,
        fix: bool,
    },
    Truncate {
        file: u8,
        len: u16,
    },
    Flip {
        file: u8,
        at: u16,
        bit: u8,
        fix: bool,
    },
    /// Writes a little-endian u32 / u64 at `at` (wrapped into the file).
    SetU32 {
        file: u8,
        at: u16,
        value: u32,
        fix: bool,
    },
    SetU64 {
        file: u8,
        at: u16,
        value: u64,
        fix: bool,
    },
    /// Appends bytes.
    Extend {
        file: u8,
        bytes: Vec<u8>,
        fix: bool,
    },
    Remove {
        file: u8,
    },
    Copy {
        from: u8,
        to: u8,
        fix: bool,
    },
    /// Repairs checksums (and the file header) of a file.
    Fix {
        file: u8,
    },
    /// Moves a counter of the newest manifest to 2^64 − 1 − `below_max`
    /// (generation, renaming the file to match, or next_file), checksums
    /// repaired: writes must then refuse, never wrap.
    HighCounter {
        next_file: bool,
        below_max: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Start from the index with refine store and records, or the plain one.
    rich: bool,
    /// ... with its codes in fast-scan blocks.
    fast_scan: bool,
    edits: Vec<Edit>,
    /// Also open for writing and add, delete, compact.
    write: bool,
    /// One coordinate of the added vectors (at position `.1`) set to
    /// `huge_value(.0)`.
    huge: Option<(u8, u8)>,
}

fn name(i: u8) -> &'static str {
    let names = names();
    &names[i as usize % names.len()]
}

fn apply(files: &mut BTreeMap<String, Vec<u8>>, e: Edit) {
    let fix = |files: &mut BTreeMap<String, Vec<u8>>, n: &str, yes: bool| {
        if let Some(b) = files.get_mut(n).filter(|_| yes) {
            fix_by_name(n, b, true);
        }
    };
    match e {
        Edit::Replace { file, bytes, fix: f } => {
            files.insert(name(file).into(), bytes);
            fix(files, name(file), f);
        }
        Edit::Truncate { file, len } => {
            if let Some(b) = files.get_mut(name(file)) {
                b.truncate(len as usize);
            }
        }
        Edit::Flip { file, at, bit, fix: f } => {
            if let Some(b) = files.get_mut(name(file)).filter(|b| !b.is_empty()) {
                let at = at as usize % b.len();
                b[at] ^= 1 << (bit % 8);
            }
            fix(files, name(file), f);
        }
        Edit::SetU32 { file, at, value, fix: f } => {
            if let Some(b) = files.get_mut(name(file)).filter(|b| b.len() >= 4) {
                let at = at as usize % (b.len() - 3);
                put_u32(b, at, value);
            }
            fix(files, name(file), f);
        }
        Edit::SetU64 { file, at, value, fix: f } => {
            if let Some(b) = files.get_mut(name(file)).filter(|b| b.len() >= 8) {
                let at = at as usize % (b.len() - 7);
                put_u64(b, at, value);
            }
            fix(files, name(file), f);
        }
        Edit::Extend { file, bytes, fix: f } => {
            if let Some(b) = files.get_mut(name(file)) {
                b.extend_from_slice(&bytes);
            }
            fix(files, name(file), f);
        }
        Edit::Remove { file } => {
            files.remove(name(file));
        }
        Edit::Copy { from, to, fix: f } => {
            if let Some(b) = files.get(name(from)).cloned() {
                files.insert(name(to).into(), b);
            }
            fix(files, name(to), f);
        }
        Edit::Fix { file } => fix(files, name(file), true),
        Edit::HighCounter { next_file, below_max } => {
            let newest = files.keys().filter_map(|n| chromatica::testing::format::parse_manifest_name(n)).max();
            let Some(g) = newest else { return };
            let mut b = files.remove(&chromatica::testing::format::manifest_name(g)).expect("listed");
            let value = u64::MAX - u64::from(below_max);
            let (at, g) = if next_file { (64, g) } else { (16, value) };
            if b.len() >= at + 8 {
                put_u64(&mut b, at, value);
            }
            let n = chromatica::testing::format::manifest_name(g);
            fix_by_name(&n, &mut b, true);
            files.insert(n, b);
        }
    }
}

fn open(storage: &MemStorage, writable: bool) -> chromatica::Result<Index> {
    Index::open_in(PathBuf::from("fuzz"), Arc::new(storage.clone()), writable)
}

/// Whether `verify` passes on the storage as it is.
fn verifies(storage: &MemStorage) -> bool {
    chromatica::testing::verify::verify(storage).is_ok()
}

fn read_checks(index: &Index, verified: bool) {
    let snap = index.snapshot();
    let c = snap.manifest().config;
    let live = snap.live_ids();
    let query = vec![0.25f32; c.dim];
    let k = live.as_ref().map_or(10, |l| l.len().max(1));
    let params = SearchParams::new(k).nprobe(c.nlist).candidates(k);
    let hits = index.search(&query, &params);
    if !verified {
        return;
    }
    let live = live.expect("verify passed, so every list must read");
    let distinct: BTreeSet<u64> = live.iter().copied().collect();
    assert_eq!(distinct.len(), live.len(), "verify passed but a live id is stored twice");
    assert_eq!(live.len() as u64, snap.vectors(), "verify passed but live ids and the manifest's count differ");
    if snap.quantizers().is_none() && !c.refine {
        assert!(live.is_empty(), "an untrained index without refine store holds vectors");
        return;
    }
    // Huge (finite) quantizer values can make estimated distances NaN.
    let moderate = snap.quantizers().is_none_or(|q| q.coarse.iter().chain(&q.pq.centroids_t).chain(&q.term2).all(|x| x.abs() < 1e8));
    let hits = hits.expect("verify passed, so a search must succeed");
    assert_eq!(hits.len(), 1);
    if moderate {
        let found: Vec<u64> = hits[0].iter().map(|n| n.id).collect();
        let found_set: BTreeSet<u64> = found.iter().copied().collect();
        assert_eq!(found_set.len(), found.len(), "a search returned an id twice");
        assert_eq!(found_set, distinct, "an exhaustive search must return exactly the live ids");
    }
}

fn write_checks(storage: &MemStorage, verified: bool, huge: Option<(u8, u8)>) {
    let Ok(index) = open(storage, true) else { return };
    let still = |what: &str| {
        // No command may commit a state that open would reject.
        if let Err(e) = open(storage, false) {
            panic!("{what} committed a state that open rejects: {e}");
        }
        if verified {
            if let Err(e) = chromatica::testing::verify::verify(storage) {
                panic!("the index verified before, and no longer does after {what}: {e}");
            }
        }
    };
    let dim = index.config().dim;
    let mut data = vectors(5_000, 3, dim);
    if let Some((v, at)) = huge {
        let i = at as usize % data.len();
        data[i] = huge_value(v);
    }
    if index.add(&data, None).is_ok() {
        let beyond = data.iter().find(|x| !x.is_finite() || x.abs() > chromatica::MAX_ABS_VALUE);
        assert!(beyond.is_none(), "add accepted {beyond:?}, beyond the input limit (or not finite)");
        still("add");
    }
    let first = index.snapshot().live_ids().ok().and_then(|l| l.first().copied());
    if let Some(id) = first {
        if index.delete(&[id]).is_ok() {
            still("delete");
        }
    }
    if index.compact().is_ok() {
        still("compact");
    }
    if index.retrain(&quick_training()).is_ok() {
        still("retrain");
    }
    let _ = index.snapshot().live_ids();
}

fuzz_target!(|data: &[u8]| {
    single_threaded();
    let Ok(input) = Input::arbitrary_take_rest(arbitrary::Unstructured::new(data)) else { return };
    let mut files: BTreeMap<String, Vec<u8>> = populated_files(input.rich, input.fast_scan).iter().cloned().collect();
    for e in input.edits.into_iter().take(16) {
        apply(&mut files, e);
    }
    let files: Vec<(String, Vec<u8>)> = files.into_iter().collect();
    let storage = storage_with(&files);
    let verified = verifies(&storage);
    if let Ok(index) = open(&storage, false) {
        read_checks(&index, verified);
    } else {
        assert!(!verified, "verify passed but a read-only open failed");
    }
    if input.write {
        write_checks(&storage, verified, input.huge);
    }
    // Verification of whatever is left must not panic either.
    let _ = storage.list().map(|_| chromatica::testing::verify::verify(&storage));
});
