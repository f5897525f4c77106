//! Segments round-trip, and every flipped byte is caught by open or verify.

use super::*;
use crate::error::Result;
use crate::format::{self, write_checked_header};
use crate::quantizer::blocks;
use crate::storage::Bytes;
use std::sync::Arc;

fn expect(refine: bool) -> Expect {
    Expect { nlist: 3, dim: 8, code_size: 3, quantizer_file: 9, refine, fast_scan: false }
}

fn build(ids: &[u64], extras: bool) -> Vec<u8> {
    build_as(ids, extras, false)
}

fn build_as(ids: &[u64], extras: bool, fast_scan: bool) -> Vec<u8> {
    // 3 lists holding 2, 0 and the rest of the vectors; code size 3.
    let n = ids.len();
    let codes: Vec<u8> = (0..n * 3).map(|i| i as u8).collect();
    let refine: Vec<Sparse> = (0..n).map(|i| (0..(i % 3) as u16).map(|d| (d * 2, i as f32 + 0.5)).collect()).collect();
    let records: Vec<Record> = (0..n)
        .map(|i| Record { path: format!("img/{i}.jpg").into(), size: 100 + i as u64, mtime_ns: -(i as i64) })
        .collect();
    encode(&SegmentInput {
        code_size: 3,
        quantizer_file: 9,
        counts: &[2, 0, (n - 2) as u32],
        codes: &codes,
        ids,
        refine: extras.then_some(&refine[..]),
        records: extras.then_some(&records[..]),
        fast_scan,
    })
}

fn open(b: Vec<u8>, refine: bool) -> Result<SegmentView> {
    SegmentView::open(Bytes::Owned(Arc::new(b)), "s".into(), expect(refine))
}

#[test]
fn lists_are_contiguous_and_ids_narrow_when_they_fit() {
    let v = open(build(&[10, 11, 12, 13, 14], false), false).unwrap();
    assert_eq!(v.id_width(), 4);
    let (codes, ids) = v.list(0).unwrap();
    assert_eq!(codes, &[0, 1, 2, 3, 4, 5]);
    assert_eq!(ids.iter().collect::<Vec<_>>(), vec![10, 11]);
    assert!(v.list(1).unwrap().1.is_empty());
    assert_eq!(v.list(2).unwrap().1.iter().collect::<Vec<_>>(), vec![12, 13, 14]);
    assert!(v.record(0).unwrap().is_none());
    v.verify().unwrap();
    let w = open(build(&[1, 2, u32::MAX as u64 + 1], false), false).unwrap();
    assert_eq!(w.id_width(), 8);
    assert_eq!(w.list(2).unwrap().1.get(0), u32::MAX as u64 + 1);
}

#[test]
fn refine_values_and_records_round_trip() {
    let v = open(build(&[5, 6, 7, 8], true), true).unwrap();
    v.verify().unwrap();
    for p in 0..4 {
        let r = v.refine(p).unwrap().to_sparse();
        assert_eq!(r, (0..(p % 3) as u16).map(|d| (d * 2, p as f32 + 0.5)).collect::<Sparse>());
        let rec = v.record(p).unwrap().unwrap();
        assert_eq!(
            (rec.path, rec.size, rec.mtime_ns),
            (std::path::Path::new(&format!("img/{p}.jpg")), 100 + p as u64, -(p as i64))
        );
        assert_eq!(v.id(p).unwrap(), 5 + p as u64);
    }
    assert!(v.refine_bytes() > 0 && v.record_bytes() > 0);
    assert!(open(build(&[5, 6, 7], true), false).is_err(), "refine flag must match the index");
}

#[test]
fn every_flipped_byte_is_caught_by_open_or_verify() {
    for extras in [false, true] {
        let b = build(&[1, 2, 3, 4, 5, 6], extras);
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x40;
            let caught = match open(c, extras) {
                Err(_) => true,
                Ok(v) => v.verify().is_err() && (0..3).any(|l| v.list(l).is_err()),
            };
            assert!(caught, "flip at byte {i} not caught (extras {extras})");
        }
    }
}

fn open_fast(b: Vec<u8>, extras: bool) -> Result<SegmentView> {
    let e = Expect { fast_scan: true, ..expect(extras) };
    SegmentView::open(Bytes::Owned(Arc::new(b)), "s".into(), e)
}

#[test]
fn fast_scan_lists_are_padded_blocks_that_give_back_the_plain_codes() {
    let ids: Vec<u64> = (0..40).collect();
    // Lists of 2, 0 and 38 vectors: 1 + 0 + 2 blocks of 32 × 3 bytes.
    let v = open_fast(build_as(&ids, true, true), true).unwrap();
    v.verify().unwrap();
    assert!(v.fast_scan());
    assert_eq!(v.code_bytes(), 3 * 32 * 3);
    let plain = open(build(&ids, true), true).unwrap();
    for l in 0..3 {
        let (codes, list_ids) = v.list(l).unwrap();
        assert_eq!(codes.len(), blocks::list_bytes(list_ids.len(), 3));
        assert_eq!(v.plain_codes(l).unwrap(), plain.list(l).unwrap().0);
        assert_eq!(list_ids.iter().collect::<Vec<_>>(), plain.list(l).unwrap().1.iter().collect::<Vec<_>>());
    }
    for p in 0..40 {
        assert_eq!(v.refine(p).unwrap().to_sparse(), plain.refine(p).unwrap().to_sparse());
    }
    // The flag must match the index, both ways.
    assert!(open(build_as(&ids, false, true), false).unwrap_err().to_string().contains("do not match"));
    assert!(open_fast(build(&ids, false), false).unwrap_err().to_string().contains("do not match"));
}

#[test]
fn fast_scan_flips_are_caught_by_open_or_verify_and_padding_must_be_zero() {
    let ids: Vec<u64> = (0..7).collect();
    for extras in [false, true] {
        let b = build_as(&ids, extras, true);
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x08;
            let caught = match open_fast(c, extras) {
                Err(_) => true,
                Ok(v) => v.verify().is_err() && (0..3).any(|l| v.list(l).is_err()),
            };
            assert!(caught, "flip at byte {i} not caught (extras {extras})");
        }
    }
    // Non-zero padding with every checksum repaired: still refused.
    let b = build_as(&ids, false, true);
    let v = open_fast(b.clone(), false).unwrap();
    let h = SegmentHeader::read_from_prefix(&b).unwrap().0;
    let codes = h.codes_offset.get() as usize;
    // List 2 holds vectors 2..7 (5 of them) in the block after list 0's.
    let at = codes + 32 * 3 + blocks::locate(20, 1).0;
    let mut c = b.clone();
    c[at] |= 0x10;
    let (s, n, _, slot) = v.lists[2];
    let crc = v.layout.list_crc(&c, s, n, slot, "s").unwrap();
    let entry = h.lists_offset.get() as usize + 2 * 16 + 12;
    c[entry..entry + 4].copy_from_slice(&crc.to_le_bytes());
    let lists = h.lists_offset.get() as usize..h.lists_offset.get() as usize + 3 * 16;
    let mut h2 = h;
    h2.lists_crc = U32::new(format::crc(&c[lists]));
    h2.codes_crc = U32::new(format::crc(&c[codes..codes + v.code_bytes()]));
    let mut head = Vec::new();
    write_checked_header(&h2, &mut head);
    c[..HEADER].copy_from_slice(&head);
    let v = open_fast(c, false).unwrap();
    let e = v.list(2).err().expect("non-zero padding refused").to_string();
    assert!(e.contains("non-zero padding") && e.contains(&format!("byte {at}")), "{e}");
    assert!(v.verify().is_err());
    v.list(0).unwrap();
}

#[test]
fn mismatched_shape_is_refused() {
    let b = build(&[1, 2, 3], false);
    let e = SegmentView::open(Bytes::Owned(Arc::new(b)), "s".into(), Expect { nlist: 4, ..expect(false) }).unwrap_err();
    assert!(e.to_string().contains("nlist"));
}

#[test]
fn refine_values_are_scaled_integers_within_half_a_step() {
    // Values of mixed sign and magnitude that no power of two divides, and
    // a vector of zeros.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut rows: Vec<Sparse> =
        (0..4).map(|i| (0..8u16).map(|d| (d, ((next() - 0.3) * 10f64.powi(i * 3 - 4)) as f32)).collect()).collect();
    // A largest value that rounds up (29103.8 steps of 2^35): kept at or
    // below itself, as the input limit 1e15 needs.
    rows[3][0].1 = 1e15;
    rows.push(vec![(3, 0.0)]);
    let codes = vec![0u8; 5 * 3];
    let b = encode(&SegmentInput {
        code_size: 3,
        quantizer_file: 9,
        counts: &[2, 0, 3],
        codes: &codes,
        ids: &[0, 1, 2, 3, 4],
        refine: Some(&rows),
        records: None,
        fast_scan: false,
    });
    assert_eq!(u32::from_le_bytes(b[12..16].try_into().unwrap()), 2, "segments are written as version 2");
    let v = open(b, true).unwrap();
    v.verify().unwrap();
    for (p, want) in rows.iter().enumerate() {
        let got = v.refine(p).unwrap().to_sparse();
        let max = want.iter().fold(0f32, |m, &(_, x)| m.max(x.abs()));
        assert_eq!(got.len(), want.len());
        for (&(d, x), &(e, y)) in want.iter().zip(&got) {
            assert_eq!(d, e);
            assert!((x - y).abs() <= 2.0 * max / 32767.0, "vector {p} dim {d}: {x} stored as {y} (max {max})");
            assert!(y.abs() <= max, "vector {p} dim {d}: {x} stored as {y}, above the largest {max}");
        }
        // The scale is a power of two (or 0 for zeros), the smallest that
        // keeps every value within ±32767 steps; storing again changes nothing.
        let (scale, q) = quantize(got.iter().map(|&(_, y)| y));
        if max == 0.0 {
            assert_eq!(scale, 0.0);
        } else {
            assert_eq!(scale.to_bits() & 0x007f_ffff, 0, "vector {p}: scale {scale} is not a power of two");
            assert!(max / scale <= 32767.0 && max / scale > 32767.0 / 2.0, "vector {p}: scale {scale}, max {max}");
        }
        let again: Vec<f32> = q.iter().map(|&q| f32::from(q) * scale).collect();
        assert_eq!(again, got.iter().map(|&(_, y)| y).collect::<Vec<_>>(), "vector {p}: not idempotent");
    }
}

#[test]
fn a_negative_or_non_finite_refine_scale_is_refused_with_valid_checksums() {
    let b = build(&[1, 2, 3, 4], true);
    let v = open(b.clone(), true).unwrap();
    let scales = v.layout.refine.unwrap().scales.expect("version 2 has scales");
    let h = SegmentHeader::read_from_prefix(&b).unwrap().0;
    // Vector 3 is the second of list 2 (lists of 2, 0 and 2 vectors).
    let at = scales + 4 * 3;
    for bad in [-0.5f32, f32::NAN, f32::INFINITY] {
        let mut c = b.clone();
        c[at..at + 4].copy_from_slice(&bad.to_le_bytes());
        let (s, n, _, slot) = v.lists[2];
        let crc = v.layout.list_crc(&c, s, n, slot, "s").unwrap();
        let entry = h.lists_offset.get() as usize + 2 * 16 + 12;
        c[entry..entry + 4].copy_from_slice(&crc.to_le_bytes());
        let lists = h.lists_offset.get() as usize..h.lists_offset.get() as usize + 3 * 16;
        let refine = h.refine_offset.get() as usize..(h.refine_offset.get() + h.refine_len.get()) as usize;
        let mut h2 = h;
        h2.lists_crc = U32::new(format::crc(&c[lists]));
        h2.refine_crc = U32::new(format::crc(&c[refine]));
        let mut head = Vec::new();
        write_checked_header(&h2, &mut head);
        c[..HEADER].copy_from_slice(&head);
        let w = open(c, true).unwrap();
        w.refine(2).unwrap();
        let e = w.refine(3).err().expect("bad scale refused").to_string();
        assert!(e.contains("refine scale") && e.contains(&format!("byte {at}")), "{bad}: {e}");
        assert!(w.verify().is_err());
    }
}
