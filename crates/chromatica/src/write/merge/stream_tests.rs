//! The streamed merge and re-encode write exactly the bytes the in-memory
//! path wrote (kept here as the oracle): every live vector gathered into one
//! batch, then `segment::encode`.

use super::*;
use crate::config::Config;
use crate::format::segment::{self, SegmentInput};
use crate::storage::{Bytes, MemStorage, StorageFile};
use crate::testing::tiny::{quick_training, record, vectors};
use crate::{Index, TrainOptions};
use std::path::PathBuf;
use std::sync::Arc;

/// The replaced in-memory path: the live vectors of `segments`, list by
/// list, as stored.
fn live_batch(snap: &Snapshot, segments: &[usize]) -> Batch {
    let c = snap.manifest.config;
    let cs = if snap.quantizers.is_some() { c.code_size() } else { 0 };
    let mut b = Batch {
        refine: c.refine.then(Vec::new),
        records: segments.iter().any(|&si| snap.segments[si].has_records()).then(Vec::new),
        ..Batch::default()
    };
    for l in 0..c.nlist {
        for &si in segments {
            let seg = &snap.segments[si];
            let hide = snap.hider(si);
            let (_, list_ids) = seg.list(l).unwrap();
            let list_codes = seg.plain_codes(l).unwrap();
            for (i, id) in list_ids.iter().enumerate() {
                if hide.hides(id) {
                    continue;
                }
                let p = seg.list_start(l) + i;
                b.lists.push(l as u32);
                b.codes.extend_from_slice(&list_codes[i * cs..(i + 1) * cs]);
                b.ids.push(id);
                if let Some(r) = &mut b.refine {
                    r.push(seg.refine(p).unwrap().to_sparse());
                }
                if let Some(r) = &mut b.records {
                    r.push(seg.record(p).unwrap().map(|r| r.to_record()).unwrap_or_else(empty_record));
                }
            }
        }
    }
    b
}

/// `segment::encode` of a batch, as `write_segment` encodes it for `c`.
fn encode_batch(c: &Config, quantizer_file: u64, batch: Batch) -> Vec<u8> {
    let (counts, b) = batch.grouped(c.nlist);
    segment::encode(&SegmentInput {
        code_size: if quantizer_file != 0 { c.code_size() } else { 0 },
        quantizer_file,
        counts: &counts,
        codes: &b.codes,
        ids: &b.ids,
        refine: b.refine.as_deref(),
        records: b.records.as_deref(),
        fast_scan: c.fast_scan,
    })
}

fn config(fast_scan: bool, refine: bool) -> Config {
    let nbits = if fast_scan { 4 } else { 8 };
    Config { dim: 16, nlist: 8, m: 4, nbits, nprobe: 2, refine, fast_scan, ..Config::default() }
}

/// An index of five segments (records in some, not others; ids past 2^32
/// when `wide`), with every seventh id deleted.
fn index(c: Config, trained: bool, wide: bool) -> (MemStorage, Index) {
    let s = MemStorage::new();
    let index = Index::create_in(PathBuf::from("mem"), Arc::new(s.clone()), c).unwrap();
    index.set_merge_policy(MergePolicy { enabled: false, ..MergePolicy::default() }).unwrap();
    if trained {
        index.train(&vectors(0, 600, c.dim), &quick_training(), &mut |_| ()).unwrap();
    }
    let base = if wide { u32::MAX as u64 - 200 } else { 0 };
    let mut deleted = Vec::new();
    for b in 0..5u64 {
        let rows = 90 + 13 * b as usize;
        let first = 1000 + 200 * b;
        let ids: Vec<u64> = (0..rows as u64).map(|i| base + first + i).collect();
        let data = vectors(first, rows, c.dim);
        if b % 2 == 0 {
            let recs: Vec<_> = ids.iter().map(|&i| record(i)).collect();
            index.add_records(&data, Some(&ids), &recs).unwrap();
        } else {
            index.add(&data, Some(&ids)).unwrap();
        }
        deleted.extend(ids.iter().copied().filter(|i| i % 7 == 0));
    }
    index.delete(&deleted).unwrap();
    (s, index)
}

fn only_segment(s: &MemStorage, state: &Snapshot) -> Vec<u8> {
    assert_eq!(state.segments.len(), 1);
    s.contents(&segment_name(state.manifest.segments[0].file)).unwrap()
}

#[test]
fn streamed_compact_writes_the_in_memory_bytes() {
    let mut cases = 0;
    for fast_scan in [false, true] {
        for (trained, refine) in [(true, false), (true, true), (false, true)] {
            for wide in [false, true] {
                let c = config(fast_scan, refine);
                let (s, index) = index(c, trained, wide);
                let snap = index.snapshot();
                let all: Vec<usize> = (0..snap.segments.len()).collect();
                let want = encode_batch(&c, snap.manifest.quantizer_file.unwrap_or(0), live_batch(&snap, &all));
                let state = commit_merge(&s, &snap, &all).unwrap();
                assert_eq!(only_segment(&s, &state), want, "fast_scan {fast_scan} trained {trained} wide {wide}");
                assert_eq!(state.vectors(), snap.vectors());
                // Merging a part keeps the others and is the same bytes too.
                let (s, index) = self::index(c, trained, wide);
                let snap = index.snapshot();
                let want = encode_batch(&c, snap.manifest.quantizer_file.unwrap_or(0), live_batch(&snap, &[1, 3]));
                let state = commit_merge(&s, &snap, &[1, 3]).unwrap();
                let merged = state.manifest.segments.last().unwrap().file;
                assert_eq!(s.contents(&segment_name(merged)).unwrap(), want);
                assert_eq!(state.segments.len(), 4);
                cases += 2;
            }
        }
    }
    assert_eq!(cases, 24);
}

#[test]
fn streamed_retrain_writes_the_in_memory_bytes() {
    for fast_scan in [false, true] {
        for (trained, wide, nlist, batch_rows) in [(true, false, 8, 64), (false, true, 4, 100), (true, true, 3, 10_000)]
        {
            let c = config(fast_scan, true);
            let (s, index) = index(c, trained, wide);
            let snap = index.snapshot();
            let next = Config { nlist, ..c };
            let sample = snap.sample_live(1000, 7).unwrap();
            let (q, _) =
                Quantizers::train(&next, &sample, &TrainOptions { niter: 3, ..TrainOptions::default() }, &mut |_| ())
                    .unwrap();
            let all: Vec<usize> = (0..snap.segments.len()).collect();
            let mut b = live_batch(&snap, &all);
            (b.lists, b.codes) = q.encode(&densify(b.refine.as_deref().unwrap(), c.dim));
            let before = s.list().unwrap().len();
            let state = retrain_in_batches(&s, &snap, &q, batch_rows).unwrap();
            let qf = state.manifest.quantizer_file.unwrap();
            let ctx = format!("fast_scan {fast_scan} trained {trained} nlist {nlist} batch {batch_rows}");
            assert_eq!(only_segment(&s, &state), encode_batch(&next, qf, b), "{ctx}");
            assert_eq!(state.vectors(), snap.vectors(), "{ctx}");
            // The scratch segments are gone: a manifest, a quantizer file and
            // the segment remain (the old files are retired).
            assert!(s.list().unwrap().len() <= before.min(3), "{ctx}: {:?}", s.list().unwrap());
            crate::verify::verify(&s).unwrap();
        }
    }
}

/// A file that collects what is written.
struct VecFile(Vec<u8>);

impl StorageFile for VecFile {
    fn write_all(&mut self, buf: &[u8]) -> crate::Result<()> {
        self.0.extend_from_slice(buf);
        Ok(())
    }
    fn sync(&mut self) -> crate::Result<()> {
        Ok(())
    }
}

/// A segment streamed from a view of itself is itself: empty lists, a list
/// with no records, refine rows without values, wide ids, fast-scan lists
/// longer than a block.
#[test]
fn a_segment_streams_to_its_own_bytes() {
    let mut checked = 0;
    for fast_scan in [false, true] {
        for (refine, records) in [(false, false), (true, false), (true, true), (false, true)] {
            for wide in [false, true] {
                let counts = [0u32, 70, 0, 0, 1, 33, 0];
                let n: usize = counts.iter().map(|&c| c as usize).sum();
                let codes: Vec<u8> = (0..n * 2).map(|i| (i * 37 % 251) as u8).collect();
                let ids: Vec<u64> = (0..n as u64).map(|i| if wide && i == 5 { 1 << 40 } else { i * 3 }).collect();
                let rows: Vec<Sparse> =
                    (0..n).map(|i| (0..(i % 4) as u16).map(|d| (d * 3, i as f32 - 0.5)).collect()).collect();
                let recs: Vec<Record> =
                    (0..n).map(|i| crate::testing::tiny::record(i as u64 * (i as u64 % 3))).collect();
                let bytes = segment::encode(&SegmentInput {
                    code_size: 2,
                    quantizer_file: 4,
                    counts: &counts,
                    codes: &codes,
                    ids: &ids,
                    refine: refine.then_some(&rows[..]),
                    records: records.then_some(&recs[..]),
                    fast_scan,
                });
                let expect = Expect { nlist: 7, dim: 12, code_size: 2, quantizer_file: 4, refine, fast_scan };
                let view = SegmentView::open(Bytes::Owned(Arc::new(bytes.clone())), "s".into(), expect).unwrap();
                let src = ViewRows { parts: vec![(&view, None)], code_size: 2 };
                let spec = StreamSpec { nlist: 7, code_size: 2, quantizer_file: 4, refine, records, fast_scan };
                let plan = stream::plan(spec, &src).unwrap();
                assert_eq!((plan.vectors(), plan.file_bytes()), (n as u64, bytes.len() as u64));
                let mut f = VecFile(Vec::new());
                stream::write(&plan, &src, &mut f).unwrap();
                assert!(f.0 == bytes, "fast_scan {fast_scan} refine {refine} records {records} wide {wide}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 16);
}
