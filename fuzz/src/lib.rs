//! Helpers shared by the fuzz targets and by `examples/make_seeds.rs`.
//!
//! Every chromatica file is guarded by CRC32s, so a fuzzer mutating raw bytes
//! almost never gets past the header checksum and never reaches the semantic
//! checks behind it. The file-kind targets therefore take a *mode* byte before
//! the file: its bits ask the harness to repair the file before decoding it
//! ([`MODE_FIX_CRC`], [`MODE_FIX_HEADER`], [`MODE_FIX_SHAPE`]). Mode 0 feeds
//! the bytes exactly as given, so checksum and header handling is fuzzed too.
//!
//! Field offsets come from the engine's own header structs (`offset_of!`),
//! so a reordered header is followed automatically; a new checksummed
//! section needs a line here, and `layout_matches_the_engine` (run by
//! `make_seeds`) fails until it has one.

use chromatica::format::{crc, FileKind, FORMAT_VERSION, MAGIC};
use chromatica::storage::{MemStorage, Storage};
use chromatica::{Config, Index, MergePolicy, Record, TrainOptions};
use std::path::PathBuf;
use std::sync::Arc;

/// Recompute every checksum (header, sections, per-list) from the bytes.
pub const MODE_FIX_CRC: u8 = 1;
/// Write a correct magic, kind and version into the 16-byte file header.
pub const MODE_FIX_HEADER: u8 = 2;
/// Write the shape the caller expects into the header (quantizer, segment).
pub const MODE_FIX_SHAPE: u8 = 4;

use chromatica::format::manifest::ManifestHeader;
use chromatica::format::quantizer_file::QuantizerHeader;
use chromatica::format::segment::{ListEntry, SegmentHeader, FAST_SCAN, HAS_RECORDS, HAS_REFINE};
use chromatica::format::tombstone_file::TombstoneHeader;
use chromatica::quantizer::blocks;
use std::mem::{offset_of, size_of};

pub const MANIFEST_HEADER: usize = size_of::<ManifestHeader>();
pub const QUANTIZER_HEADER: usize = size_of::<QuantizerHeader>();
pub const SEGMENT_HEADER: usize = size_of::<SegmentHeader>();
pub const TOMBSTONE_HEADER: usize = size_of::<TombstoneHeader>();

pub fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
pub fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Writes a valid magic, kind and version (if the file is long enough).
pub fn fix_file_header(b: &mut [u8], kind: FileKind) {
    if b.len() >= 16 {
        b[..8].copy_from_slice(&MAGIC);
        put_u32(b, 8, kind as u32);
        put_u32(b, 12, FORMAT_VERSION);
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
    if b.len() < MANIFEST_HEADER {
        return;
    }
    let t = crc(&b[MANIFEST_HEADER..]);
    put_u32(b, offset_of!(ManifestHeader, table_crc), t);
    fix_header_crc(b, MANIFEST_HEADER);
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
    type H = QuantizerHeader;
    if b.len() < QUANTIZER_HEADER {
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
    fix_header_crc(b, QUANTIZER_HEADER);
}

/// Byte ranges of the vectors `s .. s + c` of a segment, whose codes start
/// at code slot `slot`, as the engine's list checksum covers them (codes —
/// with fast-scan the list's blocks, `blocks::slots(c)` code slots —, ids,
/// and when present their refine offsets, dimensions and values, and their
/// record offsets, sizes, mtimes and path bytes): a re-statement of
/// `Layout::ranges` in `src/format/segment/layout.rs`, kept honest by
/// `layout_matches_the_engine`. `None` where the file does not hold them.
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
        let bins = starts.checked_add(n1.checked_mul(8)?)?;
        let values = bins.checked_add(nnz.checked_mul(2)?)?.div_ceil(4).checked_mul(4)?;
        let lo = u64_at(starts.checked_add(s.checked_mul(8)?)?)?;
        let hi = u64_at(starts.checked_add(s.checked_add(c)?.checked_mul(8)?)?)?;
        if lo > hi || hi > nnz {
            return None;
        }
        v.push(at(starts, 8, s, c.checked_add(1)?)?);
        v.push(at(bins, 2, lo, hi - lo)?);
        v.push(at(values, 4, lo, hi - lo)?);
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

// ---------------------------------------------------------------------------
// A genuine tiny index.

/// dim 8, nlist 2, m 2, nbits 4: one-byte codes, 16 PQ centroids; with or
/// without the refine store (exact vectors kept beside the codes).
pub fn tiny_config(refine: bool) -> Config {
    Config { dim: 8, nlist: 2, m: 2, nbits: 4, nprobe: 1, refine, ..Config::default() }
}

/// [`tiny_config`], optionally with 4-bit fast-scan (codes in blocks of 32).
pub fn tiny_config_as(refine: bool, fast_scan: bool) -> Config {
    Config { fast_scan, ..tiny_config(refine) }
}

/// Training options that keep training to a few milliseconds.
pub fn quick_training() -> TrainOptions {
    TrainOptions { niter: 4, ..TrainOptions::default() }
}

/// Deterministic vectors in (0, 1): row `i` of a fixed pseudo-random stream.
pub fn vectors(first_row: u64, rows: usize, dim: usize) -> Vec<f32> {
    (0..rows * dim)
        .map(|k| {
            let mut x = (first_row * dim as u64 + k as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
            x ^= x >> 33;
            x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            x ^= x >> 33;
            ((x >> 40) as f32 + 0.5) / (1u64 << 24) as f32
        })
        .collect()
}

/// A record for row `row` (path, size, mtime), distinct per row.
pub fn record(row: u64) -> Record {
    Record { path: format!("img/{row}.jpg").into(), size: 1000 + row, mtime_ns: -(row as i64) }
}

/// The small merge policy the ops model uses, so automatic merges happen.
pub fn small_merge_policy() -> MergePolicy {
    MergePolicy { enabled: true, merge_factor: 3, min_level: 4, level_log_size: 0.75 }
}

/// Every file of a storage, sorted by name (written bytes, not only durable).
pub fn files_of(s: &MemStorage) -> Vec<(String, Vec<u8>)> {
    let mut names = s.list().expect("list");
    names.sort();
    names.into_iter().filter_map(|n| s.contents(&n).map(|b| (n, b))).collect()
}

/// A new storage holding `files`, all durable.
pub fn storage_with(files: &[(String, Vec<u8>)]) -> MemStorage {
    let s = MemStorage::new();
    for (name, bytes) in files {
        let mut f = s.create(name).expect("create");
        f.write_all(bytes).expect("write");
        f.sync().expect("sync");
    }
    s.sync_dir().expect("sync_dir");
    s
}

/// A created, empty tiny index; trained on 40 vectors if `trained`.
pub fn tiny_index(refine: bool, trained: bool) -> (MemStorage, Index) {
    tiny_index_as(refine, trained, false)
}

/// [`tiny_index`], optionally with fast-scan.
pub fn tiny_index_as(refine: bool, trained: bool, fast_scan: bool) -> (MemStorage, Index) {
    let s = MemStorage::new();
    let config = tiny_config_as(refine, fast_scan);
    let index = Index::create_in(PathBuf::from("fuzz"), Arc::new(s.clone()), config).expect("create");
    if trained {
        index.train(&vectors(1_000_000, 40, 8), &quick_training(), &mut |_| ()).expect("train");
    }
    (s, index)
}

/// The files of an empty tiny index (a manifest, and a `.qnt` if trained),
/// made once per process: restoring them is much cheaper than training.
pub fn empty_index_files(refine: bool, trained: bool, fast_scan: bool) -> &'static [(String, Vec<u8>)] {
    type Files = std::sync::OnceLock<Vec<(String, Vec<u8>)>>;
    static FILES: [Files; 8] = [const { Files::new() }; 8];
    FILES[usize::from(fast_scan) * 4 + usize::from(refine) * 2 + usize::from(trained)].get_or_init(|| {
        let (s, index) = tiny_index_as(refine, trained, fast_scan);
        drop(index);
        files_of(&s)
    })
}

/// A tiny index with every kind of file: quantizers, three segments (ids
/// 0..10, 100..105, and 7000 with one id above 2^32, so both id widths),
/// and one tombstone file deleting two ids. `rich` adds the refine store to
/// every segment and records to the second. Calls `seen` after every
/// commit, so seed generation can keep intermediate files. `fast_scan`
/// stores the codes in fast-scan blocks.
pub fn populated_tiny_index(rich: bool, fast_scan: bool, mut seen: impl FnMut(&MemStorage)) -> (MemStorage, Index) {
    let (s, index) = tiny_index_as(rich, true, fast_scan);
    seen(&s);
    index.add(&vectors(0, 10, 8), None).expect("add");
    seen(&s);
    let ids: Vec<u64> = (100..105).collect();
    if rich {
        let records: Vec<Record> = (100..105).map(record).collect();
        index.add_records(&vectors(100, 5, 8), Some(&ids), &records).expect("add records");
    } else {
        index.add(&vectors(100, 5, 8), Some(&ids)).expect("add ids");
    }
    seen(&s);
    index.add(&vectors(200, 2, 8), Some(&[1 << 33, 7_000])).expect("add wide ids");
    seen(&s);
    index.delete(&[3, 101]).expect("delete");
    seen(&s);
    (s, index)
}

/// The files of [`populated_tiny_index`], built once per process.
pub fn populated_files(rich: bool, fast_scan: bool) -> &'static [(String, Vec<u8>)] {
    type Files = std::sync::OnceLock<Vec<(String, Vec<u8>)>>;
    static FILES: [Files; 4] = [const { Files::new() }; 4];
    FILES[usize::from(fast_scan) * 2 + usize::from(rich)].get_or_init(|| {
        let (s, index) = populated_tiny_index(rich, fast_scan, |_| ());
        drop(index);
        files_of(&s)
    })
}

/// Limits rayon to one thread: the engine parallelises encoding and search,
/// which only adds overhead (and noise) to a fuzzer's tiny inputs.
pub fn single_threaded() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rayon::ThreadPoolBuilder::new().num_threads(1).build_global();
    });
}

/// Asserts that repairing genuine files changes nothing, i.e. that the
/// repairs cover every checksum the engine writes.
pub fn layout_matches_the_engine() {
    // Repairing a genuine file must leave it unchanged.
    let all = [(false, false), (true, false), (false, true), (true, true)];
    for (name, bytes) in all.into_iter().flat_map(|(rich, fast)| populated_files(rich, fast)) {
        let mut b = bytes.clone();
        fix_by_name(name, &mut b, true);
        assert_eq!(&b, bytes, "repairing {name} changed it: the offsets in fuzz/src/lib.rs are stale");
    }
}
