//! Encoding a segment file from vectors already grouped by list.

use super::layout::Layout;
use super::{
    path_bytes, quantize, ListEntry, Record, SegmentHeader, Sparse, FAST_SCAN, HAS_RECORDS, HAS_REFINE, HEADER,
};
use crate::format::{crc, pad, write_checked_header, FileHeader, FileKind};
use crate::quantizer::blocks;
use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::IntoBytes;

/// The vectors of a new segment, already grouped by list: list `l` holds the
/// next `counts[l]` entries of every slice.
pub struct SegmentInput<'a> {
    /// 0 for a segment without codes.
    pub code_size: usize,
    /// 0 for a segment without codes.
    pub quantizer_file: u64,
    pub counts: &'a [u32],
    pub codes: &'a [u8],
    pub ids: &'a [u64],
    pub refine: Option<&'a [Sparse]>,
    pub records: Option<&'a [Record]>,
    /// Store the codes in fast-scan blocks (`codes` stays plain here).
    pub fast_scan: bool,
}

/// Builds a segment file.
pub fn encode(input: &SegmentInput<'_>) -> Vec<u8> {
    let SegmentInput { code_size, quantizer_file, counts, codes, ids, refine, records, fast_scan } = *input;
    let n = ids.len();
    debug_assert_eq!(codes.len(), n * code_size);
    debug_assert_eq!(counts.iter().map(|&c| c as usize).sum::<usize>(), n);
    let id_width = if ids.iter().all(|&i| i <= u32::MAX as u64) { 4 } else { 8 };
    let mut out = vec![0u8; HEADER];
    pad(&mut out);
    let lists_off = out.len();
    let mut start = 0u64;
    for &count in counts {
        let e = ListEntry { start: U64::new(start), count: U32::new(count), crc: U32::new(0) };
        out.extend_from_slice(e.as_bytes());
        start += count as u64;
    }
    pad(&mut out);
    let codes_off = out.len();
    if fast_scan {
        let mut at = 0;
        for &count in counts {
            let len = count as usize * code_size;
            blocks::to_blocks(&codes[at..at + len], code_size, &mut out);
            at += len;
        }
    } else {
        out.extend_from_slice(codes);
    }
    let codes_len = out.len() - codes_off;
    pad(&mut out);
    let ids_off = out.len();
    for &i in ids {
        if id_width == 4 {
            out.extend_from_slice(&(i as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&i.to_le_bytes());
        }
    }
    // Each optional section starts aligned; nothing follows the last one.
    let mut flags = if fast_scan { FAST_SCAN } else { 0 };
    let (mut refine_off, mut refine_len) = (0, 0);
    if let Some(rows) = refine {
        flags |= HAS_REFINE;
        pad(&mut out);
        refine_off = out.len();
        let mut at = 0u64;
        out.extend_from_slice(&0u64.to_le_bytes());
        for r in rows {
            at += r.len() as u64;
            out.extend_from_slice(&at.to_le_bytes());
        }
        let scaled: Vec<(f32, Vec<i16>)> = rows.iter().map(|r| quantize(r.iter().map(|&(_, v)| v))).collect();
        scaled.iter().for_each(|(s, _)| out.extend_from_slice(&s.to_le_bytes()));
        rows.iter().flatten().for_each(|(b, _)| out.extend_from_slice(&b.to_le_bytes()));
        scaled.iter().flat_map(|(_, q)| q).for_each(|q| out.extend_from_slice(&q.to_le_bytes()));
        refine_len = out.len() - refine_off;
    }
    let (mut records_off, mut records_len) = (0, 0);
    if let Some(recs) = records {
        flags |= HAS_RECORDS;
        pad(&mut out);
        records_off = out.len();
        let mut at = 0u64;
        out.extend_from_slice(&0u64.to_le_bytes());
        for r in recs {
            at += path_bytes(&r.path).len() as u64;
            out.extend_from_slice(&at.to_le_bytes());
        }
        recs.iter().for_each(|r| out.extend_from_slice(&r.size.to_le_bytes()));
        recs.iter().for_each(|r| out.extend_from_slice(&r.mtime_ns.to_le_bytes()));
        recs.iter().for_each(|r| out.extend_from_slice(&path_bytes(&r.path)));
        records_len = out.len() - records_off;
    }
    let ids_len = n * id_width;
    let mut h = SegmentHeader {
        file: FileHeader::new(FileKind::Segment),
        nlist: U32::new(counts.len() as u32),
        code_size: U32::new(code_size as u32),
        id_width: U32::new(id_width as u32),
        flags: U32::new(flags),
        vectors: U64::new(n as u64),
        quantizer_file: U64::new(quantizer_file),
        lists_offset: U64::new(lists_off as u64),
        lists_crc: U32::new(0),
        codes_offset: U64::new(codes_off as u64),
        codes_crc: U32::new(crc(&out[codes_off..codes_off + codes_len])),
        ids_offset: U64::new(ids_off as u64),
        ids_crc: U32::new(crc(&out[ids_off..ids_off + ids_len])),
        refine_offset: U64::new(refine_off as u64),
        refine_len: U64::new(refine_len as u64),
        refine_crc: U32::new(crc(&out[refine_off..refine_off + refine_len])),
        records_offset: U64::new(records_off as u64),
        records_len: U64::new(records_len as u64),
        records_crc: U32::new(crc(&out[records_off..records_off + records_len])),
        header_crc: U32::new(0),
    };
    // List checksums cover the same ranges a reader checks: compute them
    // with the reader's own range function over the finished bytes.
    let slots = if fast_scan { counts.iter().map(|&c| blocks::slots(c as usize)).sum() } else { n };
    let layout = Layout::of(&out, &h, "new segment", slots as u64).expect("a segment we just built is well-formed");
    let (mut start, mut slot) = (0usize, 0usize);
    for (l, &count) in counts.iter().enumerate() {
        let c = layout.list_crc(&out, start, count as usize, slot, "new segment").expect("well-formed");
        let at = lists_off + l * 16 + 12;
        out[at..at + 4].copy_from_slice(&c.to_le_bytes());
        start += count as usize;
        slot += layout.code_slots(count as usize);
    }
    let lists_len = counts.len() * 16;
    h.lists_crc = U32::new(crc(&out[lists_off..lists_off + lists_len]));
    let mut head = Vec::with_capacity(HEADER);
    write_checked_header(&h, &mut head);
    out[..HEADER].copy_from_slice(&head);
    out
}
