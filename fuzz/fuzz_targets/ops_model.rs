//! Random operation sequences against an in-memory reference model.
//!
//! Each input starts from an empty tiny index (dim 8, nlist 2, m 2, nbits
//! 4), trained or not, with or without the refine store, with plain or
//! fast-scan codes, as its first bytes choose (the files of each start are
//! made once per process and restored
//! into a fresh `MemStorage`), with a small merge policy (merge factor 3,
//! min level 4) so automatic merges happen.
//!
//! The model is the map of live ids (to the row of the generated data and
//! the record each was added with), the next default id, and whether the
//! index is trained. For every operation the engine's Ok/Err must be the
//! model's prediction; after it, `live_ids`, `next_id`, `is_trained`, an
//! exhaustive search, every live vector's stored exact values and record,
//! and `verify` must agree with the model. `Crash` loses everything not
//! durable and reopens: every acknowledged operation must survive.
#![no_main]

use arbitrary::Arbitrary;
use chromatica::testing::{IndexInternals, SnapshotInternals};
use chromatica::SearchParams;
use chromatica::testing::reference::as_stored;
use chromatica::testing::storage::MemStorage;
use chromatica::Index;
use chromatica_fuzz::*;
use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Arbitrary, Debug)]
enum Op {
    /// `n` vectors with default ids, or with `explicit_ids` (see
    /// `explicit_id`); with a record per vector if `records`; with one
    /// coordinate (at position `huge.1`) set to `huge_value(huge.0)`.
    Add {
        n: u8,
        explicit_ids: Option<Vec<u16>>,
        records: bool,
        huge: Option<(u8, u8)>,
    },
    /// Ids to delete (see `delete_id`).
    Delete(Vec<u16>),
    Compact,
    /// Re-train from the refine store (needs refine and 16 live vectors).
    Retrain,
    Crash,
    Reopen,
}

#[derive(Arbitrary, Debug)]
struct Input {
    refine: bool,
    trained: bool,
    /// 4-bit fast-scan: codes in blocks of 32.
    fast_scan: bool,
    ops: Vec<Op>,
}

/// Explicit ids: mostly small (0..300, so they collide with live and
/// deleted ids), and from 0xC000 up above 2^32 (8-byte ids in segments).
fn explicit_id(v: u16) -> u64 {
    if v >= 0xC000 {
        (1u64 << 32) + (v & 0xff) as u64
    } else {
        v as u64 % 300
    }
}

/// Ids to delete: below 0x8000 a live id picked by position (so deletes
/// usually succeed), from 0x8000 up a raw small id (often unknown).
fn delete_id(v: u16, live: &[u64]) -> u64 {
    if v < 0x8000 && !live.is_empty() {
        live[v as usize % live.len()]
    } else {
        (v & 0x7fff) as u64 % 400
    }
}

/// What the model knows of a live vector.
#[derive(Clone, Copy, Debug)]
struct Vector {
    /// Row of `vectors()` it was made from.
    row: u64,
    /// Whether it was added with `record(row)`.
    record: bool,
    /// A coordinate (column, value) that replaced the generated one.
    huge: Option<(usize, f32)>,
}

/// The exact values a vector was added with.
fn values(v: &Vector) -> Vec<f32> {
    let mut x = vectors(v.row, 1, DIM);
    if let Some((col, value)) = v.huge {
        x[col] = value;
    }
    x
}

struct Model {
    live: BTreeMap<u64, Vector>,
    next_id: u64,
    trained: bool,
    refine: bool,
    fast_scan: bool,
}

const DIM: usize = 8;
/// 2^nbits: training needs at least this many vectors.
const KSUB: usize = 16;

fn open(storage: &MemStorage) -> Index {
    let index = Index::open_in(PathBuf::from("fuzz"), Arc::new(storage.clone()), true)
        .unwrap_or_else(|e| panic!("reopening a sound index failed: {e}"));
    index.set_merge_policy(small_merge_policy()).expect("writable");
    index
}

fn check(index: &Index, storage: &MemStorage, model: &Model, at: &str) {
    let snap = index.snapshot();
    let live = snap.live_ids().unwrap_or_else(|e| panic!("{at}: live_ids failed: {e}"));
    let want: Vec<u64> = model.live.keys().copied().collect();
    assert_eq!(live, want, "{at}: live ids differ from the model");
    assert_eq!(snap.vectors(), want.len() as u64, "{at}: vector count differs from the model");
    assert_eq!(snap.manifest().next_id, model.next_id, "{at}: next_id differs from the model");
    assert_eq!(index.is_trained(), model.trained, "{at}: training state differs from the model");
    assert_eq!(snap.manifest().config.fast_scan, model.fast_scan, "{at}: the fast-scan flag changed");
    assert!(snap.segments().iter().all(|s| s.fast_scan() == model.fast_scan), "{at}: a segment's code layout differs");
    if let Err(e) = chromatica::testing::verify::verify(storage) {
        panic!("{at}: verify failed: {e}");
    }
    // Every live vector's exact values (as the refine store keeps them) and
    // record are the ones it was added with.
    let mut seen = 0;
    snap.for_each_live(|si, p, id| {
        let v = model.live[&id];
        let seg = &snap.segments()[si];
        if model.refine {
            let mut dense = vec![0f32; DIM];
            for (d, x) in seg.refine(p).unwrap_or_else(|e| panic!("{at}: refine({p}) of id {id}: {e}")).iter() {
                dense[d] = x;
            }
            assert_eq!(dense, as_stored(&values(&v)), "{at}: stored exact values of id {id} changed");
        }
        let rec = seg.record(p).unwrap_or_else(|e| panic!("{at}: record({p}) of id {id}: {e}"));
        let path = rec.map(|r| r.path.to_owned()).unwrap_or_default();
        let want = if v.record { record(v.row).path } else { Default::default() };
        assert_eq!(path, want, "{at}: record of id {id}");
        seen += 1;
    })
    .unwrap_or_else(|e| panic!("{at}: for_each_live failed: {e}"));
    assert_eq!(seen, want.len());
    if want.is_empty() {
        return;
    }
    let c = snap.manifest().config;
    let k = want.len();
    let params = SearchParams::new(k).nprobe(c.nlist).candidates(k);
    let hits = index.search(&vectors(77, 1, c.dim), &params).unwrap_or_else(|e| panic!("{at}: search failed: {e}"));
    let mut found: Vec<u64> = hits[0].iter().map(|n| n.id).collect();
    found.sort_unstable();
    assert_eq!(found, want, "{at}: an exhaustive search does not return exactly the live ids");
}

fuzz_target!(|data: &[u8]| {
    single_threaded();
    let Ok(input) = Input::arbitrary_take_rest(arbitrary::Unstructured::new(data)) else { return };
    let storage = storage_with(empty_index_files(input.refine, input.trained, input.fast_scan));
    let mut index = open(&storage);
    let mut model = Model {
        live: BTreeMap::new(),
        next_id: 0,
        trained: input.trained,
        refine: input.refine,
        fast_scan: input.fast_scan,
    };
    let mut row = 0u64;
    for (step, op) in input.ops.into_iter().take(32).enumerate() {
        let at = format!(
            "step {step} ({op:?}; refine {}, trained {}, fast-scan {})",
            model.refine, model.trained, model.fast_scan
        );
        match op {
            Op::Add { n, explicit_ids, records, huge } => {
                let (count, ids) = match explicit_ids {
                    // High bit of n: a vector count that need not match.
                    Some(v) => {
                        let ids: Vec<u64> = v.iter().map(|&x| explicit_id(x)).collect();
                        let count = if n & 0x80 != 0 { (n & 0x7f) as usize % 8 } else { ids.len() };
                        (count, Some(ids))
                    }
                    None => (n as usize % 64, None),
                };
                let first_row = row;
                row += count as u64;
                let mut data = vectors(first_row, count, DIM);
                // (position in `data`, value) of the huge coordinate.
                let huge = huge.filter(|_| count > 0).map(|(v, at)| (at as usize % data.len(), huge_value(v)));
                if let Some((i, v)) = huge {
                    data[i] = v;
                }
                let expect_ok = (model.trained || model.refine)
                    && count > 0
                    && huge.is_none_or(|(_, v)| v.abs() <= chromatica::MAX_ABS_VALUE)
                    && match &ids {
                        None => true,
                        Some(ids) => {
                            ids.len() == count
                                && ids.iter().collect::<HashSet<_>>().len() == ids.len()
                                && !ids.iter().any(|i| model.live.contains_key(i))
                        }
                    };
                let got = if records {
                    let recs: Vec<_> = (first_row..first_row + count as u64).map(record).collect();
                    index.add_records(&data, ids.as_deref(), &recs)
                } else {
                    index.add(&data, ids.as_deref())
                };
                match (&got, expect_ok) {
                    (Ok(report), true) => {
                        let ids: Vec<u64> =
                            ids.unwrap_or_else(|| (model.next_id..model.next_id + count as u64).collect());
                        if let Some(e) = &report.merge_error {
                            panic!("{at}: automatic merge failed: {e}");
                        }
                        let (lo, hi) = (*ids.iter().min().unwrap(), *ids.iter().max().unwrap());
                        assert_eq!(report.ids, lo..hi + 1, "{at}: reported id range");
                        for (k, &id) in ids.iter().enumerate() {
                            let huge = huge.filter(|&(i, _)| i / DIM == k).map(|(i, v)| (i % DIM, v));
                            model.live.insert(id, Vector { row: first_row + k as u64, record: records, huge });
                        }
                        model.next_id = model.next_id.max(hi + 1);
                    }
                    (Err(_), false) => {}
                    (Ok(_), false) => panic!("{at}: add succeeded, the model expected an error"),
                    (Err(e), true) => panic!("{at}: add failed, the model expected success: {e}"),
                }
            }
            Op::Delete(v) => {
                let live: Vec<u64> = model.live.keys().copied().collect();
                let ids: Vec<u64> = v.iter().map(|&x| delete_id(x, &live)).collect();
                let expect_ok = !ids.is_empty()
                    && ids.iter().collect::<HashSet<_>>().len() == ids.len()
                    && ids.iter().all(|i| model.live.contains_key(i));
                match (index.delete(&ids), expect_ok) {
                    (Ok(r), true) => {
                        assert_eq!(r.deleted, ids.len());
                        for i in &ids {
                            model.live.remove(i);
                        }
                    }
                    (Err(_), false) => {}
                    (Ok(_), false) => panic!("{at} {ids:?}: delete succeeded, the model expected an error"),
                    (Err(e), true) => panic!("{at} {ids:?}: delete failed, the model expected success: {e}"),
                }
            }
            Op::Compact => {
                let r = index.compact().unwrap_or_else(|e| panic!("{at}: compact failed: {e}"));
                assert!(r.segments_after <= 1, "{at}: compact left {} segments", r.segments_after);
                let snap = index.snapshot();
                assert!(snap.manifest().tombstones.is_empty(), "{at}: compact kept tombstone files");
                assert_eq!(snap.manifest().deleted_vectors(), 0, "{at}: compact kept deleted vectors");
            }
            Op::Retrain => {
                let expect_ok = model.refine && model.live.len() >= KSUB;
                match (index.retrain(&quick_training()), expect_ok) {
                    (Ok(_), true) => model.trained = true,
                    (Err(_), false) => {}
                    (Ok(_), false) => panic!("{at}: retrain succeeded, the model expected an error"),
                    (Err(e), true) => panic!("{at}: retrain failed, the model expected success: {e}"),
                }
            }
            Op::Crash => {
                storage.crash();
                drop(index);
                index = open(&storage);
            }
            Op::Reopen => {
                drop(index);
                index = open(&storage);
            }
        }
        check(&index, &storage, &model, &at);
    }
});
