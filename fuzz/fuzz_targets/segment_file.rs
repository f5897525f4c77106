//! Segment opening on arbitrary bytes, for a small expected shape: never
//! panics or reads out of bounds. When a segment opens, every list (every
//! code and id) and every position's id, refine values and record can be
//! read or fail cleanly, and `verify` never panics. A segment that verifies
//! must read consistently (lists add up, list reads match position reads,
//! refine dimensions in range and ascending) and re-encode to a segment
//! holding the same lists, ids, refine values (quantized as version 2
//! stores them) and records.
//!
//! Input: one mode byte (see `chromatica_fuzz::MODE_*`), four expectation
//! bytes — nlist 1..=8, code size 1..=8 (and in bit 7 `fast_scan`: codes in
//! blocks of 32), quantizer file 0..=255, and a byte whose bit 0 is `refine`
//! and whose other bits give dim 1..=16 — then the file. The seeds' bytes
//! are 1, 0, 1, 14 (plain: nlist 2, code size 1, quantizer file 1, dim 8),
//! 1, 0, 1, 15 (the same with refine), the same with 0x80 in the second
//! (fast-scan), and 3, 3, 1, 31 (the golden v1 index: nlist 4, code size 4,
//! quantizer file 1, refine, dim 16).
#![no_main]

use chromatica::testing::format::segment::{self, Expect, SegmentHeader, SegmentInput, SegmentView, Sparse, FAST_SCAN};
use chromatica::testing::format::FileKind;
use chromatica::testing::quantizer::blocks;
use chromatica::testing::storage::Bytes;
use chromatica::Record;
use chromatica_fuzz::*;
use libfuzzer_sys::fuzz_target;
use std::mem::offset_of;
use std::sync::Arc;

/// Everything a segment holds, position by position (list order).
#[derive(Debug, PartialEq)]
struct Content {
    counts: Vec<u32>,
    /// Plain codes (whatever the stored layout).
    codes: Vec<u8>,
    ids: Vec<u64>,
    /// Refine values as bit patterns, so that NaN compares equal to itself.
    refine: Option<Vec<Vec<(u16, u32)>>>,
    records: Option<Vec<Record>>,
}

fn to_sparse(rows: &[Vec<(u16, u32)>]) -> Vec<Sparse> {
    rows.iter().map(|r| r.iter().map(|&(d, x)| (d, f32::from_bits(x))).collect()).collect()
}

fn open(bytes: Vec<u8>, expect: Expect) -> chromatica::Result<SegmentView> {
    SegmentView::open(Bytes::Owned(Arc::new(bytes)), "fuzz".into(), expect)
}

/// Reads every list and every position. `None` if anything fails its
/// checks; panics only on an inconsistency between successful reads.
fn read_all(v: &SegmentView, e: &Expect) -> Option<Content> {
    let mut c = Content { counts: vec![], codes: vec![], ids: vec![], refine: None, records: None };
    let mut ok = true;
    let mut next = 0usize;
    for l in 0..e.nlist {
        assert_eq!(v.list_start(l), next, "list {l} does not start where the previous one ended");
        next += v.list_len(l);
        match v.list(l) {
            Ok((codes, ids)) => {
                assert_eq!(ids.len(), v.list_len(l), "list {l}: id count");
                let want = if !v.has_codes() {
                    0
                } else if e.fast_scan {
                    blocks::list_bytes(ids.len(), e.code_size)
                } else {
                    ids.len() * e.code_size
                };
                assert_eq!(codes.len(), want, "list {l}: codes and ids disagree");
                let plain = v.plain_codes(l).expect("list(l) passed its checks");
                assert_eq!(plain.len(), if v.has_codes() { ids.len() * e.code_size } else { 0 });
                if !e.fast_scan {
                    assert_eq!(&plain[..], codes, "list {l}: plain codes of a plain segment differ");
                }
                c.counts.push(ids.len() as u32);
                c.codes.extend_from_slice(&plain);
                c.ids.extend(ids.iter());
            }
            Err(_) => ok = false,
        }
    }
    assert_eq!(next as u64, v.vectors(), "list lengths do not add up to the vector count");
    let n = v.vectors() as usize;
    let mut refine = e.refine.then(Vec::new);
    let mut records = v.has_records().then(Vec::new);
    for p in 0..n {
        let at = v.id_offset(p) as usize;
        assert!(at + v.id_width() <= v.file_bytes(), "id offset past the end");
        match v.id(p) {
            Ok(id) => {
                if ok {
                    assert_eq!(id, c.ids[p], "position {p}: id() and list() disagree");
                }
            }
            Err(_) => ok = false,
        }
        if let Some(r) = &mut refine {
            match v.refine(p) {
                Ok(x) => {
                    assert!(x.iter().all(|(d, _)| d < e.dim), "position {p}: refine dimension out of range");
                    r.push(x.to_sparse().into_iter().map(|(d, x)| (d, x.to_bits())).collect());
                }
                Err(_) => ok = false,
            }
        } else {
            assert!(v.refine(p).is_err(), "refine values in a segment without a refine store");
        }
        match (v.record(p), &mut records) {
            (Ok(Some(r)), Some(out)) => out.push(r.to_record()),
            (Ok(None), None) => {}
            (Ok(_), _) => panic!("position {p}: record presence disagrees with has_records"),
            (Err(_), _) => ok = false,
        }
    }
    assert!(v.id(n).is_err() && v.record(n).map_or(true, |r| r.is_none()) && v.refine(n).is_err());
    c.refine = refine;
    c.records = records;
    ok.then_some(c)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let mode = data[0];
    let expect = Expect {
        nlist: 1 + data[1] as usize % 8,
        code_size: 1 + data[2] as usize % 8,
        fast_scan: data[2] & 0x80 != 0,
        quantizer_file: data[3] as u64,
        refine: data[4] & 1 != 0,
        dim: 1 + (data[4] >> 1) as usize % 16,
    };
    let mut file = data[5..].to_vec();
    if mode & MODE_FIX_HEADER != 0 {
        fix_file_header(&mut file, FileKind::Segment);
    }
    if mode & MODE_FIX_SHAPE != 0 && file.len() >= SEGMENT_HEADER {
        put_u32(&mut file, offset_of!(SegmentHeader, nlist), expect.nlist as u32);
        let flags = get_u32(&file, offset_of!(SegmentHeader, flags)) & !FAST_SCAN;
        put_u32(&mut file, offset_of!(SegmentHeader, flags), flags | if expect.fast_scan { FAST_SCAN } else { 0 });
        if get_u64(&file, offset_of!(SegmentHeader, quantizer_file)) != 0 {
            put_u32(&mut file, offset_of!(SegmentHeader, code_size), expect.code_size as u32);
            put_u64(&mut file, offset_of!(SegmentHeader, quantizer_file), expect.quantizer_file);
        }
    }
    if mode & MODE_FIX_CRC != 0 {
        fix_segment_crcs(&mut file);
    }
    let Ok(view) = open(file, expect) else { return };
    let first = read_all(&view, &expect);
    // A second pass goes through the "already checked" paths.
    let second = read_all(&view, &expect);
    assert_eq!(first, second, "reading a segment twice gave different results");
    if view.verify().is_err() {
        return;
    }
    let c = first.expect("verify passed, so every list and position must read");
    if let Some(r) = &c.refine {
        for (p, row) in r.iter().enumerate() {
            assert!(row.windows(2).all(|w| w[0].0 < w[1].0), "position {p}: verify passed unsorted refine dims");
            assert!(
                row.iter().all(|x| f32::from_bits(x.1).is_finite()),
                "position {p}: verify passed a non-finite value"
            );
        }
    }
    // Re-encode: the canonical file holds the same content.
    let has_codes = view.has_codes();
    let refine = c.refine.as_deref().map(to_sparse);
    let again = segment::encode(&SegmentInput {
        code_size: if has_codes { expect.code_size } else { 0 },
        quantizer_file: if has_codes { expect.quantizer_file } else { 0 },
        counts: &c.counts,
        codes: &c.codes,
        ids: &c.ids,
        refine: refine.as_deref(),
        records: c.records.as_deref(),
        fast_scan: expect.fast_scan,
    });
    let reopened = open(again, expect).expect("an encoded segment must open");
    reopened.verify().expect("an encoded segment must verify");
    assert_eq!(reopened.has_codes(), has_codes);
    // Encoding stores each vector's values as multiples of its scale
    // (segment version 2): what came from a version-1 segment, or from a
    // version-2 one with another scale, reads back quantized.
    let mut want = c;
    for row in want.refine.iter_mut().flatten() {
        let (scale, q) = segment::quantize(row.iter().map(|x| f32::from_bits(x.1)));
        for (x, q) in row.iter_mut().zip(q) {
            x.1 = (f32::from(q) * scale).to_bits();
        }
    }
    assert_eq!(read_all(&reopened, &expect).as_ref(), Some(&want), "the re-encoded segment holds something else");
});
