//! Recomputes the checksums of a file after bytes were changed on purpose,
//! so that a corruption or a fuzzer's mutation reaches the checks behind the
//! checksums instead of stopping at the first one. A new checksummed field
//! needs a line here; `repairs_leave_genuine_files_unchanged` (a unit test,
//! also run by the fuzz crate's `make_seeds`) fails until it has one.

use super::layout::*;
use super::tiny::populated_files;
use crate::quantizer::blocks;
use std::mem::{offset_of, size_of};

/// Writes a valid magic, kind and version (if the file is long enough): a
/// version the kind has is kept (an old file stays old), any other becomes
/// the one this build writes.
pub fn fix_file_header(b: &mut [u8], kind: FileKind) {
    if b.len() >= 16 {
        b[..8].copy_from_slice(&MAGIC);
        put_u32(b, 8, kind as u32);
        if !(1..=kind.version()).contains(&get_u32(b, 12)) {
            put_u32(b, 12, kind.version());
        }
    }
}

/// `b[off..off + len]` if it lies inside `b`.
fn range(b: &[u8], off: u64, len: u64) -> Option<std::ops::Range<usize>> {
    let end = off.checked_add(len)?;
    (end <= b.len() as u64).then_some(off as usize..end as usize)
}

/// Sets the CRC that ends a fixed header (the CRC of every byte before it).
fn fix_header_crc(b: &mut [u8], header_len: usize) {
    let h = crc(&b[..header_len - 4]);
    put_u32(b, header_len - 4, h);
}

/// Manifest: the table CRC (over everything after the fixed part), then the
/// header CRC.
pub fn fix_manifest_crcs(b: &mut [u8]) {
    // Both versions put the table CRC at the same offset.
    let len = manifest_header_len(b);
    if b.len() < len {
        return;
    }
    let t = crc(&b[len..]);
    put_u32(b, offset_of!(ManifestHeader, table_crc), t);
    fix_header_crc(b, len);
}

/// Tombstones: the ids CRC (over everything after the fixed part), then the
/// header CRC.
pub fn fix_tombstone_crcs(b: &mut [u8]) {
    if b.len() < TOMBSTONE_HEADER {
        return;
    }
    let i = crc(&b[TOMBSTONE_HEADER..]);
    put_u32(b, offset_of!(TombstoneHeader, ids_crc), i);
    fix_header_crc(b, TOMBSTONE_HEADER);
}

/// Quantizers: the three section CRCs (where the sections the header
/// describes lie inside the file), then the header CRC.
pub fn fix_quantizer_crcs(b: &mut [u8]) {
    // Both versions put the shape and sections at the same offsets.
    type H = QuantizerHeader;
    let len = quantizer_header_len(b);
    if b.len() < len {
        return;
    }
    let dim = get_u32(b, offset_of!(H, dim)) as u64;
    let nlist = get_u32(b, offset_of!(H, nlist)) as u64;
    let m = get_u32(b, offset_of!(H, m)) as u64;
    let nbits = get_u32(b, offset_of!(H, nbits)) as u64;
    if nbits < 40 {
        let ksub = 1u64 << nbits;
        let lens = [
            nlist.checked_mul(dim).and_then(|x| x.checked_mul(4)),
            ksub.checked_mul(dim).and_then(|x| x.checked_mul(4)),
            nlist.checked_mul(m).and_then(|x| x.checked_mul(ksub)).and_then(|x| x.checked_mul(4)),
        ];
        let at = [
            (offset_of!(H, coarse_offset), offset_of!(H, coarse_crc)),
            (offset_of!(H, codebooks_offset), offset_of!(H, codebooks_crc)),
            (offset_of!(H, table_offset), offset_of!(H, table_crc)),
        ];
        for ((off_at, crc_at), len) in at.into_iter().zip(lens) {
            if let Some(r) = len.and_then(|len| range(b, get_u64(b, off_at), len)) {
                let c = crc(&b[r]);
                put_u32(b, crc_at, c);
            }
        }
    }
    fix_header_crc(b, len);
}

/// Byte ranges of the vectors `s .. s + c` of a segment, whose codes start
/// at code slot `slot`, as the engine's list checksum covers them (codes —
/// with fast-scan the list's blocks, `blocks::slots(c)` code slots —, ids,
/// and when present their refine offsets, scales (version 2), dimensions and
/// values, and their
/// record offsets, sizes, mtimes and path bytes): a re-statement of
/// `Layout::ranges` in `src/format/segment/layout.rs`, kept honest by
/// [`repairs_leave_genuine_files_unchanged`]. `None` where the file does not hold them.
fn segment_list_ranges(b: &[u8], s: u64, c: u64, slot: u64) -> Option<Vec<std::ops::Range<usize>>> {
    type H = SegmentHeader;
    let code_size = get_u32(b, offset_of!(H, code_size)) as u64;
    let id_width = get_u32(b, offset_of!(H, id_width)) as u64;
    let n = get_u64(b, offset_of!(H, vectors));
    let flags = get_u32(b, offset_of!(H, flags));
    let at = |off: u64, unit: u64, first: u64, count: u64| -> Option<std::ops::Range<usize>> {
        range(b, off.checked_add(first.checked_mul(unit)?)?, count.checked_mul(unit)?)
    };
    let u64_at = |off: u64| -> Option<u64> { at(off, 1, 0, 8).map(|r| get_u64(b, r.start)) };
    let code_slots = if flags & FAST_SCAN != 0 { blocks::slots(usize::try_from(c).ok()?) as u64 } else { c };
    let mut v = vec![
        at(get_u64(b, offset_of!(H, codes_offset)), code_size, slot, code_slots)?,
        at(get_u64(b, offset_of!(H, ids_offset)), id_width, s, c)?,
    ];
    let n1 = n.checked_add(1)?;
    if flags & HAS_REFINE != 0 {
        let starts = get_u64(b, offset_of!(H, refine_offset));
        let nnz = u64_at(starts.checked_add(n.checked_mul(8)?)?)?.min(b.len() as u64);
        let after_starts = starts.checked_add(n1.checked_mul(8)?)?;
        // Version 1: dims, padding to 4, f32 values. Version 2: per-vector
        // f32 scales, dims, i16 values.
        let version = get_u32(b, offset_of!(H, file) + 12);
        let (scales, bins) = match version {
            1 => (None, after_starts),
            _ => (Some(after_starts), after_starts.checked_add(n.checked_mul(4)?)?),
        };
        let (values, width) = match scales {
            None => (bins.checked_add(nnz.checked_mul(2)?)?.div_ceil(4).checked_mul(4)?, 4),
            Some(_) => (bins.checked_add(nnz.checked_mul(2)?)?, 2),
        };
        let lo = u64_at(starts.checked_add(s.checked_mul(8)?)?)?;
        let hi = u64_at(starts.checked_add(s.checked_add(c)?.checked_mul(8)?)?)?;
        if lo > hi || hi > nnz {
            return None;
        }
        v.push(at(starts, 8, s, c.checked_add(1)?)?);
        if let Some(scales) = scales {
            v.push(at(scales, 4, s, c)?);
        }
        v.push(at(bins, 2, lo, hi - lo)?);
        v.push(at(values, width, lo, hi - lo)?);
    }
    if flags & HAS_RECORDS != 0 {
        let starts = get_u64(b, offset_of!(H, records_offset));
        let blob = u64_at(starts.checked_add(n.checked_mul(8)?)?)?.min(b.len() as u64);
        let sizes = starts.checked_add(n1.checked_mul(8)?)?;
        let mtimes = sizes.checked_add(n.checked_mul(8)?)?;
        let blob_at = mtimes.checked_add(n.checked_mul(8)?)?;
        let lo = u64_at(starts.checked_add(s.checked_mul(8)?)?)?;
        let hi = u64_at(starts.checked_add(s.checked_add(c)?.checked_mul(8)?)?)?;
        if lo > hi || hi > blob {
            return None;
        }
        v.push(at(starts, 8, s, c.checked_add(1)?)?);
        v.push(at(sizes, 8, s, c)?);
        v.push(at(mtimes, 8, s, c)?);
        v.push(at(blob_at, 1, lo, hi - lo)?);
    }
    Some(v)
}

/// Segments: every list's CRC, the list directory, the codes, ids, refine
/// and records CRCs, then the header CRC — each where it is computable.
pub fn fix_segment_crcs(b: &mut [u8]) {
    type H = SegmentHeader;
    if b.len() < SEGMENT_HEADER {
        return;
    }
    let nlist = get_u32(b, offset_of!(H, nlist)) as u64;
    let code_size = get_u32(b, offset_of!(H, code_size)) as u64;
    let id_width = get_u32(b, offset_of!(H, id_width)) as u64;
    let n = get_u64(b, offset_of!(H, vectors));
    let lists_off = get_u64(b, offset_of!(H, lists_offset));
    let fast_scan = get_u32(b, offset_of!(H, flags)) & FAST_SCAN != 0;
    let entry = size_of::<ListEntry>();
    // Code slots: the vector count, or with fast-scan the list lengths
    // rounded up to blocks (None where the directory is not in the file).
    let mut slots = (!fast_scan).then_some(n);
    if let Some(l) = nlist.checked_mul(entry as u64).and_then(|len| range(b, lists_off, len)) {
        let mut slot = 0u64;
        for k in 0..nlist as usize {
            let e = l.start + k * entry;
            let start = get_u64(b, e + offset_of!(ListEntry, start));
            let count = get_u32(b, e + offset_of!(ListEntry, count)) as u64;
            let first_slot = if fast_scan { slot } else { start };
            if let Some(ranges) = segment_list_ranges(b, start, count, first_slot) {
                let mut stream = Vec::new();
                for r in ranges {
                    stream.extend_from_slice(&b[r]);
                }
                put_u32(b, e + offset_of!(ListEntry, crc), crc(&stream));
            }
            slot += blocks::slots(count as usize) as u64;
        }
        let lc = crc(&b[l]);
        put_u32(b, offset_of!(H, lists_crc), lc);
        if fast_scan {
            slots = Some(slot);
        }
    }
    let sections = [
        (offset_of!(H, codes_offset), slots.and_then(|s| s.checked_mul(code_size)), offset_of!(H, codes_crc)),
        (offset_of!(H, ids_offset), n.checked_mul(id_width), offset_of!(H, ids_crc)),
        (offset_of!(H, refine_offset), Some(get_u64(b, offset_of!(H, refine_len))), offset_of!(H, refine_crc)),
        (offset_of!(H, records_offset), Some(get_u64(b, offset_of!(H, records_len))), offset_of!(H, records_crc)),
    ];
    for (off_at, len, crc_at) in sections {
        if let Some(r) = len.and_then(|len| range(b, get_u64(b, off_at), len)) {
            let c = crc(&b[r]);
            put_u32(b, crc_at, c);
        }
    }
    fix_header_crc(b, SEGMENT_HEADER);
}

/// Repairs the checksums of a file according to its name; names the engine
/// does not use are left alone.
pub fn fix_by_name(name: &str, b: &mut [u8], header_too: bool) {
    let kind = if name.starts_with("MANIFEST-") && !name.ends_with(".tmp") {
        FileKind::Manifest
    } else if name.ends_with(".qnt") {
        FileKind::Quantizers
    } else if name.ends_with(".seg") {
        FileKind::Segment
    } else if name.ends_with(".del") {
        FileKind::Tombstones
    } else {
        return;
    };
    if header_too {
        fix_file_header(b, kind);
    }
    match kind {
        FileKind::Manifest => fix_manifest_crcs(b),
        FileKind::Quantizers => fix_quantizer_crcs(b),
        FileKind::Segment => fix_segment_crcs(b),
        FileKind::Tombstones => fix_tombstone_crcs(b),
    }
}

/// Asserts that repairing genuine files changes nothing, i.e. that the
/// repairs cover every checksum the engine writes.
pub fn repairs_leave_genuine_files_unchanged() {
    // Repairing a genuine file must leave it unchanged.
    let all = [(false, false), (true, false), (false, true), (true, true)];
    for (name, bytes) in all.into_iter().flat_map(|(rich, fast)| populated_files(rich, fast)) {
        let mut b = bytes.clone();
        fix_by_name(name, &mut b, true);
        assert_eq!(&b, bytes, "repairing {name} changed it: the offsets in src/testing/repair.rs are stale");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn repairs_leave_genuine_files_unchanged() {
        super::repairs_leave_genuine_files_unchanged();
    }

    /// The golden v1 index has sections the tiny indexes lack (8-bit codes,
    /// four lists, records in a larger segment).
    #[test]
    fn repairs_leave_the_golden_index_unchanged() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            let mut b = bytes.clone();
            super::fix_by_name(&name, &mut b, true);
            assert!(b == bytes, "repairing golden {name} changed it");
            seen += 1;
        }
        assert_eq!(seen, 5, "the golden index has a manifest, quantizers, two segments and tombstones");
    }
}
