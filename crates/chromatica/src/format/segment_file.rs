//! Segment files: immutable PQ codes and ids — and optionally each vector's
//! exact values (the refine store) and its record (path, size, mtime) —
//! grouped by inverted list, so that a probed list is one contiguous range of
//! each. A segment without codes (`quantizer_file` 0) belongs to an index
//! that is not trained yet and is searched exactly through its refine store.

use super::{check_crc, crc, pad, read_checked_header, section, write_checked_header, FileHeader, FileKind};
use crate::error::{Error, Result};
use crate::quantizer::blocks;
use crate::storage::Bytes;
use serde::Serialize;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use zerocopy::byteorder::little_endian::{F32, I64, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Segment flag: the refine section is present.
pub const HAS_REFINE: u32 = 1;
/// Segment flag: the records section is present.
pub const HAS_RECORDS: u32 = 2;
/// Segment flag: codes are stored in fast-scan blocks of 32 vectors per
/// list (`crate::quantizer::blocks`); must match the manifest's fast-scan bit.
pub const FAST_SCAN: u32 = 4;

/// Fixed part of a segment file (128 bytes).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
pub struct SegmentHeader {
    pub file: FileHeader,
    pub nlist: U32,
    pub code_size: U32,
    pub id_width: U32,
    pub flags: U32,
    pub vectors: U64,
    pub quantizer_file: U64,
    pub lists_offset: U64,
    pub lists_crc: U32,
    pub codes_offset: U64,
    pub codes_crc: U32,
    pub ids_offset: U64,
    pub ids_crc: U32,
    pub refine_offset: U64,
    pub refine_len: U64,
    pub refine_crc: U32,
    pub records_offset: U64,
    pub records_len: U64,
    pub records_crc: U32,
    pub header_crc: U32,
}

const HEADER: usize = std::mem::size_of::<SegmentHeader>();

/// Where one inverted list sits in the segment (16 bytes).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
pub struct ListEntry {
    /// Index of the list's first vector within the segment.
    pub start: U64,
    pub count: U32,
    /// CRC32 of every byte that belongs to the list's vectors (see
    /// [`SegmentView::list_ranges`]).
    pub crc: U32,
}

/// What an image (or any vector) was made from: kept beside its code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Record {
    pub path: String,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
}

/// A vector's exact values, sparse: (dimension, value), dimensions ascending.
pub type Sparse = Vec<(u16, f32)>;

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

/// Byte layout of the variable sections, as offsets into the file.
#[derive(Clone, Debug)]
struct Layout {
    n: usize,
    code_size: usize,
    id_width: usize,
    /// Codes are in fast-scan blocks: a list of c vectors has
    /// `blocks::slots(c)` code slots instead of c.
    fast_scan: bool,
    /// Code slots in the codes section (n without fast-scan).
    slots: usize,
    codes: usize,
    ids: usize,
    /// (start of `starts`, start of bins, start of values, total nnz).
    refine: Option<(usize, usize, usize, usize)>,
    /// (start of `starts`, sizes, mtimes, blob, blob length).
    records: Option<(usize, usize, usize, usize, usize)>,
}

fn refine_parts(off: usize, n: usize, nnz: usize) -> (usize, usize, usize, usize) {
    let bins = off + 8 * (n + 1);
    let values = (bins + 2 * nnz).div_ceil(4) * 4;
    (values + 4 * nnz - off, bins, values, nnz)
}

fn records_parts(off: usize, n: usize, blob: usize) -> (usize, usize, usize, usize) {
    let sizes = off + 8 * (n + 1);
    let mtimes = sizes + 8 * n;
    let blob_at = mtimes + 8 * n;
    (blob_at + blob - off, sizes, mtimes, blob_at)
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
        rows.iter().flatten().for_each(|(b, _)| out.extend_from_slice(&b.to_le_bytes()));
        out.resize(out.len().div_ceil(4) * 4, 0);
        rows.iter().flatten().for_each(|(_, v)| out.extend_from_slice(&v.to_le_bytes()));
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
            at += r.path.len() as u64;
            out.extend_from_slice(&at.to_le_bytes());
        }
        recs.iter().for_each(|r| out.extend_from_slice(&r.size.to_le_bytes()));
        recs.iter().for_each(|r| out.extend_from_slice(&r.mtime_ns.to_le_bytes()));
        recs.iter().for_each(|r| out.extend_from_slice(r.path.as_bytes()));
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

fn u64_at(bytes: &[u8], at: usize, file: &str) -> Result<u64> {
    bytes
        .get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .ok_or_else(|| Error::corrupt(file, at as u64, "offset past the end of the file"))
}

impl Layout {
    /// Derives and bounds-checks the section layout from a header and the
    /// number of code slots (the vector count, or with fast-scan blocks the
    /// padded list lengths summed).
    fn of(bytes: &[u8], h: &SegmentHeader, file: &str, slots: u64) -> Result<Layout> {
        let n64 = h.vectors.get();
        let code_size = h.code_size.get() as usize;
        let id_width = h.id_width.get() as usize;
        let too_big = || Error::corrupt(file, 32, format!("vector count {n64} does not fit the file"));
        let codes_len = slots.checked_mul(code_size as u64).ok_or_else(too_big)?;
        let ids_len = n64.checked_mul(id_width as u64).ok_or_else(too_big)?;
        let c = section(bytes, h.codes_offset.get(), codes_len, file, "codes")?;
        let i = section(bytes, h.ids_offset.get(), ids_len, file, "ids")?;
        let n = n64 as usize;
        let flags = h.flags.get();
        // An absent optional section has offset, length and CRC all zero.
        for (bit, at, off, len, crc) in [
            (HAS_REFINE, 84, h.refine_offset.get(), h.refine_len.get(), h.refine_crc.get()),
            (HAS_RECORDS, 104, h.records_offset.get(), h.records_len.get(), h.records_crc.get()),
        ] {
            if flags & bit == 0 && (off, len, crc) != (0, 0, 0) {
                return Err(Error::corrupt(file, at, "an absent section has a non-zero offset, length or checksum"));
            }
        }
        let refine = if flags & HAS_REFINE != 0 {
            let r = section(bytes, h.refine_offset.get(), h.refine_len.get(), file, "refine store")?;
            let starts_len = n.checked_add(1).and_then(|k| k.checked_mul(8)).ok_or_else(too_big)?;
            if r.len() < starts_len {
                return Err(Error::corrupt(file, r.start as u64, "refine store shorter than its offsets"));
            }
            let nnz = u64_at(bytes, r.start + 8 * n, file)? as usize;
            let (len, bins, values, nnz) = refine_parts(r.start, n, nnz.min(bytes.len()));
            if len != r.len() {
                return Err(Error::corrupt(file, r.start as u64, "refine store length disagrees with its offsets"));
            }
            Some((r.start, bins, values, nnz))
        } else {
            None
        };
        let records = if flags & HAS_RECORDS != 0 {
            let r = section(bytes, h.records_offset.get(), h.records_len.get(), file, "records")?;
            let fixed = n.checked_mul(24).and_then(|k| k.checked_add(8)).ok_or_else(too_big)?;
            if r.len() < fixed {
                return Err(Error::corrupt(file, r.start as u64, "records shorter than their offsets"));
            }
            let blob = u64_at(bytes, r.start + 8 * n, file)? as usize;
            let (len, sizes, mtimes, blob_at) = records_parts(r.start, n, blob.min(bytes.len()));
            if len != r.len() {
                return Err(Error::corrupt(file, r.start as u64, "records length disagrees with their offsets"));
            }
            Some((r.start, sizes, mtimes, blob_at, blob))
        } else {
            None
        };
        let fast_scan = flags & FAST_SCAN != 0;
        Ok(Layout {
            n,
            code_size,
            id_width,
            fast_scan,
            slots: slots as usize,
            codes: c.start,
            ids: i.start,
            refine,
            records,
        })
    }

    /// Code slots of a list of `c` vectors.
    fn code_slots(&self, c: usize) -> usize {
        if self.fast_scan {
            blocks::slots(c)
        } else {
            c
        }
    }

    /// The section ranges, in file order, for the padding check.
    fn sections(&self, h: &SegmentHeader) -> Vec<Range<usize>> {
        let mut v =
            vec![self.codes..self.codes + self.slots * self.code_size, self.ids..self.ids + self.n * self.id_width];
        if self.refine.is_some() {
            let o = h.refine_offset.get() as usize;
            v.push(o..o + h.refine_len.get() as usize);
        }
        if self.records.is_some() {
            let o = h.records_offset.get() as usize;
            v.push(o..o + h.records_len.get() as usize);
        }
        v
    }

    /// `starts[p]` of a starts array at `at`, checked against `limit`.
    fn start(bytes: &[u8], at: usize, p: usize, limit: usize, file: &str) -> Result<usize> {
        let v = u64_at(bytes, at + 8 * p, file)?;
        if v > limit as u64 {
            return Err(Error::corrupt(file, (at + 8 * p) as u64, format!("offset {v} is beyond {limit}")));
        }
        Ok(v as usize)
    }

    /// Every byte range that belongs to vectors `s .. s + c`, whose codes
    /// start at code slot `slot`: codes (with fast-scan, their blocks, padding
    /// included), ids, and (when present) their refine values and records.
    fn ranges(&self, bytes: &[u8], s: usize, c: usize, slot: usize, file: &str) -> Result<Vec<Range<usize>>> {
        let mut v = vec![
            self.codes + slot * self.code_size..self.codes + (slot + self.code_slots(c)) * self.code_size,
            self.ids + s * self.id_width..self.ids + (s + c) * self.id_width,
        ];
        if let Some((starts, bins, values, nnz)) = self.refine {
            let (a, b) = (Self::start(bytes, starts, s, nnz, file)?, Self::start(bytes, starts, s + c, nnz, file)?);
            if a > b {
                return Err(Error::corrupt(file, (starts + 8 * s) as u64, "refine offsets decrease"));
            }
            v.extend([
                starts + 8 * s..starts + 8 * (s + c + 1),
                bins + 2 * a..bins + 2 * b,
                values + 4 * a..values + 4 * b,
            ]);
        }
        if let Some((starts, sizes, mtimes, blob_at, blob)) = self.records {
            let (a, b) = (Self::start(bytes, starts, s, blob, file)?, Self::start(bytes, starts, s + c, blob, file)?);
            if a > b {
                return Err(Error::corrupt(file, (starts + 8 * s) as u64, "record offsets decrease"));
            }
            v.extend([
                starts + 8 * s..starts + 8 * (s + c + 1),
                sizes + 8 * s..sizes + 8 * (s + c),
                mtimes + 8 * s..mtimes + 8 * (s + c),
                blob_at + a..blob_at + b,
            ]);
        }
        Ok(v)
    }

    fn list_crc(&self, bytes: &[u8], s: usize, c: usize, slot: usize, file: &str) -> Result<u32> {
        let mut h = crc32fast::Hasher::new();
        for r in self.ranges(bytes, s, c, slot, file)? {
            h.update(&bytes[r]);
        }
        Ok(h.finalize())
    }
}

/// The ids of one list, as stored (4 or 8 bytes each).
#[derive(Clone, Copy)]
pub enum Ids<'a> {
    Narrow(&'a [U32]),
    Wide(&'a [U64]),
}

impl Ids<'_> {
    #[inline]
    pub fn get(&self, i: usize) -> u64 {
        match self {
            Ids::Narrow(v) => v[i].get() as u64,
            Ids::Wide(v) => v[i].get(),
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Ids::Narrow(v) => v.len(),
            Ids::Wide(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// One vector's exact values, as stored.
#[derive(Clone, Copy)]
pub struct RefineRef<'a> {
    pub dims: &'a [U16],
    pub values: &'a [F32],
}

impl RefineRef<'_> {
    pub fn iter(&self) -> impl Iterator<Item = (usize, f32)> + '_ {
        self.dims.iter().zip(self.values).map(|(d, v)| (d.get() as usize, v.get()))
    }
    pub fn to_sparse(&self) -> Sparse {
        self.dims.iter().zip(self.values).map(|(d, v)| (d.get(), v.get())).collect()
    }
}

/// One vector's record, as stored.
#[derive(Clone, Copy, Debug)]
pub struct RecordRef<'a> {
    pub path: &'a str,
    pub size: u64,
    pub mtime_ns: i64,
}

impl RecordRef<'_> {
    pub fn to_record(&self) -> Record {
        Record { path: self.path.to_owned(), size: self.size, mtime_ns: self.mtime_ns }
    }
}

/// A validated, read-only view of a segment file. Opening checks the header,
/// the list directory and the padding: O(nlist), independent of the number of
/// vectors. Each list's checksum is checked the first time it is read.
#[derive(Debug)]
pub struct SegmentView {
    bytes: Bytes,
    name: String,
    dim: usize,
    layout: Layout,
    has_codes: bool,
    codes_crc: u32,
    ids_crc: u32,
    section_crcs: Vec<(Range<usize>, u32, &'static str)>,
    /// (start, count, crc, first code slot) per list.
    lists: Vec<(usize, usize, u32, usize)>,
    verified: Vec<AtomicBool>,
}

/// What the manifest says a segment must look like.
#[derive(Clone, Copy, Debug)]
pub struct Expect {
    pub nlist: usize,
    pub dim: usize,
    pub code_size: usize,
    /// The index's quantizer file, or 0 for a segment without codes.
    pub quantizer_file: u64,
    pub refine: bool,
    /// Codes in fast-scan blocks (the manifest's fast-scan bit).
    pub fast_scan: bool,
}

impl SegmentView {
    pub fn open(bytes: Bytes, name: String, expect: Expect) -> Result<SegmentView> {
        let file = name.as_str();
        FileHeader::check(&bytes, FileKind::Segment, file)?;
        let h: SegmentHeader = read_checked_header(&bytes, file)?;
        let nlist = expect.nlist;
        if h.nlist.get() as usize != nlist {
            return Err(Error::corrupt(
                file,
                16,
                format!("segment has nlist {}, the index has {nlist}", h.nlist.get()),
            ));
        }
        let qf = h.quantizer_file.get();
        let has_codes = qf != 0;
        let want_code_size = if has_codes { expect.code_size } else { 0 };
        if h.code_size.get() as usize != want_code_size {
            return Err(Error::corrupt(
                file,
                20,
                format!("code size {} where {want_code_size} is expected", h.code_size.get()),
            ));
        }
        if has_codes && qf != expect.quantizer_file {
            return Err(Error::corrupt(file, 40, "segment was encoded with other quantizers"));
        }
        let id_width = h.id_width.get() as usize;
        if id_width != 4 && id_width != 8 {
            return Err(Error::corrupt(file, 24, format!("id width {id_width} (must be 4 or 8)")));
        }
        let flags = h.flags.get();
        if flags > (HAS_REFINE | HAS_RECORDS | FAST_SCAN)
            || (flags & HAS_REFINE != 0) != expect.refine
            || (flags & FAST_SCAN != 0) != expect.fast_scan
        {
            return Err(Error::corrupt(file, 28, format!("flags {flags} do not match the index")));
        }
        if !has_codes && !expect.refine {
            return Err(Error::corrupt(file, 40, "segment has neither codes nor exact vectors"));
        }
        let l = section(&bytes, h.lists_offset.get(), nlist as u64 * 16, file, "list directory")?;
        let entries = <[ListEntry]>::ref_from_bytes(&bytes[l.clone()]).expect("length checked, alignment 1");
        // With fast-scan blocks the codes section's length follows from the
        // list lengths, so the directory is checked before it is used.
        let slots = if expect.fast_scan {
            check_crc(&bytes, l.clone(), h.lists_crc.get(), file, "list directory")?;
            entries.iter().map(|e| blocks::slots(e.count.get() as usize) as u64).sum()
        } else {
            h.vectors.get()
        };
        let layout = Layout::of(&bytes, &h, file, slots)?;
        let mut sections = vec![l.clone()];
        sections.extend(layout.sections(&h));
        super::check_layout(&bytes, HEADER, &sections, file)?;
        check_crc(&bytes, l.clone(), h.lists_crc.get(), file, "list directory")?;
        let mut lists = Vec::with_capacity(nlist);
        let (mut next, mut slot) = (0u64, 0usize);
        for (k, e) in entries.iter().enumerate() {
            if e.start.get() != next {
                return Err(Error::corrupt(
                    file,
                    (l.start + k * 16) as u64,
                    format!("list {k} starts at vector {}, expected {next}", e.start.get()),
                ));
            }
            next += e.count.get() as u64;
            let count = e.count.get() as usize;
            lists.push((e.start.get() as usize, count, e.crc.get(), slot));
            slot += layout.code_slots(count);
        }
        if next != layout.n as u64 {
            return Err(Error::corrupt(
                file,
                l.start as u64,
                format!("lists hold {next} vectors, header says {}", layout.n),
            ));
        }
        let mut section_crcs = Vec::new();
        let secs = layout.sections(&h);
        for (k, (crc, what)) in
            [(h.refine_crc.get(), "refine store"), (h.records_crc.get(), "records")].into_iter().enumerate()
        {
            let present = [layout.refine.is_some(), layout.records.is_some()][k];
            if present {
                let idx = 2 + usize::from(k == 1 && layout.refine.is_some());
                section_crcs.push((secs[idx].clone(), crc, what));
            }
        }
        Ok(SegmentView {
            name,
            dim: expect.dim,
            has_codes,
            codes_crc: h.codes_crc.get(),
            ids_crc: h.ids_crc.get(),
            section_crcs,
            verified: (0..nlist).map(|_| AtomicBool::new(false)).collect(),
            lists,
            layout,
            bytes,
        })
    }

    pub fn vectors(&self) -> u64 {
        self.layout.n as u64
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn id_width(&self) -> usize {
        self.layout.id_width
    }
    pub fn file_bytes(&self) -> usize {
        self.bytes.len()
    }
    pub fn has_codes(&self) -> bool {
        self.has_codes
    }
    pub fn has_records(&self) -> bool {
        self.layout.records.is_some()
    }
    /// Codes are stored in fast-scan blocks.
    pub fn fast_scan(&self) -> bool {
        self.layout.fast_scan
    }
    /// Bytes of the codes section (with fast-scan, block padding included).
    pub fn code_bytes(&self) -> usize {
        self.layout.slots * self.layout.code_size
    }
    /// Bytes of the refine section (0 without one).
    pub fn refine_bytes(&self) -> usize {
        self.layout.refine.map_or(0, |(s, _, v, nnz)| v + 4 * nnz - s)
    }
    /// Bytes of the records section (0 without one).
    pub fn record_bytes(&self) -> usize {
        self.layout.records.map_or(0, |(s, _, _, b, len)| b + len - s)
    }
    /// Number of vectors in list `l`.
    pub fn list_len(&self, l: usize) -> usize {
        self.lists[l].1
    }
    /// Position (within the segment) of list `l`'s first vector.
    pub fn list_start(&self, l: usize) -> usize {
        self.lists[l].0
    }

    /// Checks list `l`'s checksum, once per open file.
    fn check_list(&self, l: usize) -> Result<()> {
        if !self.verified[l].load(Ordering::Relaxed) {
            let (s, c, want, slot) = self.lists[l];
            let at = self.layout.codes + slot * self.layout.code_size;
            if self.layout.list_crc(&self.bytes, s, c, slot, &self.name)? != want {
                return Err(Error::corrupt(&self.name, at as u64, format!("list {l} checksum mismatch")));
            }
            if self.layout.fast_scan {
                let codes = &self.bytes[at..at + blocks::list_bytes(c, self.layout.code_size)];
                if let Some(k) = blocks::padding_error(codes, c, self.layout.code_size) {
                    return Err(Error::corrupt(
                        &self.name,
                        (at + k) as u64,
                        format!("list {l}: non-zero padding in its last code block"),
                    ));
                }
            }
            self.verified[l].store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Codes and ids of list `l`, after checking its checksum. With
    /// fast-scan the codes are the list's blocks (`blocks::list_bytes`
    /// long); [`SegmentView::plain_codes`] gives them one after another.
    pub fn list(&self, l: usize) -> Result<(&[u8], Ids<'_>)> {
        self.check_list(l)?;
        let (s, c, _, slot) = self.lists[l];
        let (cs, iw) = (self.layout.code_size, self.layout.id_width);
        let codes =
            &self.bytes[self.layout.codes + slot * cs..self.layout.codes + (slot + self.layout.code_slots(c)) * cs];
        let ids = &self.bytes[self.layout.ids + s * iw..self.layout.ids + (s + c) * iw];
        let ids = if iw == 4 {
            Ids::Narrow(<[U32]>::ref_from_bytes(ids).expect("alignment 1, length checked"))
        } else {
            Ids::Wide(<[U64]>::ref_from_bytes(ids).expect("alignment 1, length checked"))
        };
        Ok((codes, ids))
    }

    /// The plain codes of list `l` (code_size bytes per vector, in list
    /// order), whatever the stored layout; checked like [`SegmentView::list`].
    pub fn plain_codes(&self, l: usize) -> Result<std::borrow::Cow<'_, [u8]>> {
        let (codes, ids) = self.list(l)?;
        Ok(if self.layout.fast_scan {
            std::borrow::Cow::Owned(blocks::from_blocks(codes, ids.len(), self.layout.code_size))
        } else {
            std::borrow::Cow::Borrowed(codes)
        })
    }

    /// The list holding position `p`, checked.
    fn check_position(&self, p: usize) -> Result<()> {
        if p >= self.layout.n {
            return Err(Error::InvalidInput(format!("position {p} is beyond segment {}", self.name)));
        }
        let l = self.lists.partition_point(|&(s, c, _, _)| s + c <= p);
        self.check_list(l)
    }

    /// Byte offset in the file of the id at position `p` (for messages).
    pub fn id_offset(&self, p: usize) -> u64 {
        (self.layout.ids + p * self.layout.id_width) as u64
    }

    /// The id at position `p`.
    pub fn id(&self, p: usize) -> Result<u64> {
        self.check_position(p)?;
        let at = self.layout.ids + p * self.layout.id_width;
        let b = &self.bytes[at..at + self.layout.id_width];
        Ok(if self.layout.id_width == 4 {
            u32::from_le_bytes(b.try_into().expect("4")) as u64
        } else {
            u64::from_le_bytes(b.try_into().expect("8"))
        })
    }

    /// Exact values of the vector at position `p` (refine store).
    /// Asks the CPU to start loading what [`Self::refine`] will read for
    /// the vector at `p`: with `offsets_only`, its entry of the offsets
    /// array, else its dimensions and values (which needs the offsets). A
    /// re-rank fetches a few hundred vectors scattered over the refine
    /// store; hinting them all first lets their cache misses overlap instead
    /// of queueing one after another. Out-of-range positions are ignored.
    pub fn prefetch_refine(&self, p: usize, offsets_only: bool) {
        let Some((starts, bins, values, nnz)) = self.layout.refine else { return };
        if p >= self.layout.n {
            return;
        }
        if offsets_only {
            return crate::distance::prefetch(self.bytes.get(starts + 8 * p..starts + 8 * p + 16).unwrap_or(&[]));
        }
        let (Ok(a), Ok(b)) = (
            Layout::start(&self.bytes, starts, p, nnz, &self.name),
            Layout::start(&self.bytes, starts, p + 1, nnz, &self.name),
        ) else {
            return;
        };
        if a <= b {
            crate::distance::prefetch(self.bytes.get(bins + 2 * a..bins + 2 * b).unwrap_or(&[]));
            crate::distance::prefetch(self.bytes.get(values + 4 * a..values + 4 * b).unwrap_or(&[]));
        }
    }

    pub fn refine(&self, p: usize) -> Result<RefineRef<'_>> {
        let (starts, bins, values, nnz) =
            self.layout.refine.ok_or_else(|| Error::InvalidInput(format!("{}: no refine store", self.name)))?;
        self.check_position(p)?;
        let a = Layout::start(&self.bytes, starts, p, nnz, &self.name)?;
        let b = Layout::start(&self.bytes, starts, p + 1, nnz, &self.name)?;
        if a > b {
            return Err(Error::corrupt(&self.name, (starts + 8 * p) as u64, "refine offsets decrease"));
        }
        let dims = <[U16]>::ref_from_bytes(&self.bytes[bins + 2 * a..bins + 2 * b]).expect("alignment 1");
        let vals = <[F32]>::ref_from_bytes(&self.bytes[values + 4 * a..values + 4 * b]).expect("alignment 1");
        if let Some(k) = dims.iter().position(|d| d.get() as usize >= self.dim) {
            return Err(Error::corrupt(&self.name, (bins + 2 * (a + k)) as u64, "refine dimension out of range"));
        }
        Ok(RefineRef { dims, values: vals })
    }

    /// The record of the vector at position `p`, if the segment has records.
    pub fn record(&self, p: usize) -> Result<Option<RecordRef<'_>>> {
        let Some((starts, sizes, mtimes, blob_at, blob)) = self.layout.records else {
            return Ok(None);
        };
        self.check_position(p)?;
        let a = Layout::start(&self.bytes, starts, p, blob, &self.name)?;
        let b = Layout::start(&self.bytes, starts, p + 1, blob, &self.name)?;
        if a > b {
            return Err(Error::corrupt(&self.name, (starts + 8 * p) as u64, "record offsets decrease"));
        }
        let path = std::str::from_utf8(&self.bytes[blob_at + a..blob_at + b])
            .map_err(|_| Error::corrupt(&self.name, (blob_at + a) as u64, "record path is not UTF-8"))?;
        let size = u64_at(&self.bytes, sizes + 8 * p, &self.name)?;
        let mtime = I64::read_from_bytes(&self.bytes[mtimes + 8 * p..mtimes + 8 * p + 8]).expect("8 bytes").get();
        Ok(Some(RecordRef { path, size, mtime_ns: mtime }))
    }

    /// Full check: section checksums, every list checksum, and every
    /// vector's refine values and record.
    pub fn verify(&self) -> Result<()> {
        let n = self.layout.n;
        let c = self.layout.codes..self.layout.codes + self.code_bytes();
        let i = self.layout.ids..self.layout.ids + n * self.layout.id_width;
        check_crc(&self.bytes, c, self.codes_crc, &self.name, "codes")?;
        check_crc(&self.bytes, i, self.ids_crc, &self.name, "ids")?;
        for (r, crc, what) in &self.section_crcs {
            check_crc(&self.bytes, r.clone(), *crc, &self.name, what)?;
        }
        for l in 0..self.lists.len() {
            self.check_list(l)?;
        }
        for p in 0..n {
            if self.layout.refine.is_some() {
                let r = self.refine(p)?;
                if let Some(k) = r.values.iter().position(|v| !v.get().is_finite()) {
                    // Byte offset of the bad value: where its slice sits in the file.
                    let at = r.values.as_ptr() as usize - self.bytes.as_ptr() as usize + 4 * k;
                    return Err(Error::corrupt(&self.name, at as u64, "non-finite refine value"));
                }
                if r.dims.windows(2).any(|w| w[0].get() >= w[1].get()) {
                    return Err(Error::corrupt(
                        &self.name,
                        0,
                        format!("refine dimensions of vector {p} not ascending"),
                    ));
                }
            }
            self.record(p)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let refine: Vec<Sparse> =
            (0..n).map(|i| (0..(i % 3) as u16).map(|d| (d * 2, i as f32 + 0.5)).collect()).collect();
        let records: Vec<Record> = (0..n)
            .map(|i| Record { path: format!("img/{i}.jpg"), size: 100 + i as u64, mtime_ns: -(i as i64) })
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
                (format!("img/{p}.jpg").as_str(), 100 + p as u64, -(p as i64))
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
        h2.lists_crc = U32::new(super::crc(&c[lists]));
        h2.codes_crc = U32::new(super::crc(&c[codes..codes + v.code_bytes()]));
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
        let e =
            SegmentView::open(Bytes::Owned(Arc::new(b)), "s".into(), Expect { nlist: 4, ..expect(false) }).unwrap_err();
        assert!(e.to_string().contains("nlist"));
    }
}
