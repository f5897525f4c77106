//! Encoding a segment from rows streamed list by list (merges, re-training):
//! byte for byte what [`super::encode`] makes of the same rows, but written a
//! buffer at a time, so memory is bounded by one list of one source and an
//! O(nlist) directory, never by the segment's size.
//!
//! The header at the front holds every section's checksum and a
//! [`StorageFile`] only appends, so the rows are streamed twice: [`plan`]
//! computes lengths and checksums without writing, [`write`] writes the
//! header it made and then the sections, checking that the rows gave the same
//! bytes again. Each list's checksum covers ranges in several sections, in
//! file order (layout.rs), so one running hasher per list suffices.

use super::{path_bytes, ListEntry, RecordRef, RefineRef, SegmentHeader, FAST_SCAN, HAS_RECORDS, HAS_REFINE, HEADER};
use crate::error::{Error, Result};
use crate::format::{align_up, write_checked_header, FileHeader, FileKind, ALIGN};
use crate::quantizer::blocks;
use crate::storage::StorageFile;
use std::ops::Range;
use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::IntoBytes;

/// Which part of each row a sweep needs (a source fills only that part).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Codes,
    Ids,
    Refine,
    Records,
}

/// One row of a list. Fields the sweep's [`Part`] does not need may be left
/// empty (`code` `&[]`, `refine`/`record` `None`).
pub struct Row<'a> {
    /// Plain code (`code_size` bytes).
    pub code: &'a [u8],
    pub id: u64,
    pub refine: Option<RefineRef<'a>>,
    /// `None` stores an empty record (path "", size 0, mtime 0).
    pub record: Option<RecordRef<'a>>,
}

/// Rows grouped by list. Every call must give the same rows, in the same
/// order (the sources are immutable files).
pub trait RowSource {
    fn list_rows(&self, list: usize, part: Part, f: &mut dyn FnMut(&Row<'_>) -> Result<()>) -> Result<()>;
}

/// The shape of the segment to write.
#[derive(Clone, Copy, Debug)]
pub struct StreamSpec {
    pub nlist: usize,
    /// 0 for a segment without codes.
    pub code_size: usize,
    /// 0 for a segment without codes.
    pub quantizer_file: u64,
    pub refine: bool,
    pub records: bool,
    pub fast_scan: bool,
}

/// What one pass over the rows produced: enough to build the header, and to
/// check that the second pass saw the same rows.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sweep {
    counts: Vec<u32>,
    id_width: usize,
    /// (offset, length, checksum) of codes, ids, refine, records.
    sections: [(u64, u64, u32); 4],
    list_crcs: Vec<u32>,
    len: u64,
}

/// A segment ready to be written: its header and list directory.
pub struct Plan {
    spec: StreamSpec,
    sweep: Sweep,
    /// Header, padding and list directory: the file's first bytes.
    prefix: Vec<u8>,
}

impl Plan {
    pub fn vectors(&self) -> u64 {
        self.sweep.counts.iter().map(|&c| c as u64).sum()
    }
    pub fn file_bytes(&self) -> u64 {
        self.sweep.len
    }
}

/// Bytes buffered before each append to the file.
const FLUSH: usize = 1 << 20;
/// Rows of plain codes turned into fast-scan blocks at a time (whole blocks).
const BLOCK_ROWS: usize = 32 * blocks::BLOCK;

/// Where the streamed bytes go: nowhere (counting and hashing only) or a file.
struct Sink<'f> {
    file: Option<&'f mut dyn StorageFile>,
    buf: Vec<u8>,
    pos: u64,
    section: crc32fast::Hasher,
    lists: Vec<crc32fast::Hasher>,
}

impl Sink<'_> {
    /// Bytes of a section that belong to `lists` (their checksums cover them).
    fn put(&mut self, bytes: &[u8], lists: Range<usize>) -> Result<()> {
        self.section.update(bytes);
        for h in &mut self.lists[lists] {
            h.update(bytes);
        }
        self.raw(bytes)
    }

    fn raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.pos += bytes.len() as u64;
        if let Some(f) = &mut self.file {
            self.buf.extend_from_slice(bytes);
            if self.buf.len() >= FLUSH {
                f.write_all(&self.buf)?;
                self.buf.clear();
            }
        }
        Ok(())
    }

    /// Starts a section at the next aligned offset; returns the offset.
    fn begin(&mut self) -> Result<u64> {
        // Zero bytes between sections, in no checksum.
        let n = (self.pos.div_ceil(ALIGN as u64) * ALIGN as u64 - self.pos) as usize;
        self.raw(&[0u8; ALIGN][..n])?;
        self.section = crc32fast::Hasher::new();
        Ok(self.pos)
    }

    fn end(&mut self, start: u64) -> (u64, u64, u32) {
        (start, self.pos - start, std::mem::take(&mut self.section).finalize())
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(f) = &mut self.file {
            f.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// The first pass: lengths and checksums, nothing written.
pub fn plan(spec: StreamSpec, src: &dyn RowSource) -> Result<Plan> {
    let mut sink = sink(None, spec.nlist);
    let sweep = sweep(&spec, src, &vec![0u8; prefix_len(spec.nlist)], &mut sink)?;
    let prefix = prefix(&spec, &sweep);
    Ok(Plan { spec, sweep, prefix })
}

/// The second pass: writes the planned segment to `file` (not synced).
pub fn write(plan: &Plan, src: &dyn RowSource, file: &mut dyn StorageFile) -> Result<()> {
    let mut sink = sink(Some(file), plan.spec.nlist);
    let again = sweep(&plan.spec, src, &plan.prefix, &mut sink)?;
    if again != plan.sweep {
        return Err(Error::InvalidInput("the rows of a merge changed between its two passes".into()));
    }
    sink.flush()
}

fn sink(file: Option<&mut dyn StorageFile>, nlist: usize) -> Sink<'_> {
    let buf = if file.is_some() { Vec::with_capacity(FLUSH + 64 * 1024) } else { Vec::new() };
    Sink { file, buf, pos: 0, section: crc32fast::Hasher::new(), lists: vec![crc32fast::Hasher::new(); nlist] }
}

fn prefix_len(nlist: usize) -> usize {
    align_up(HEADER) + nlist * 16
}

/// Header, padding and directory for what a sweep found.
fn prefix(spec: &StreamSpec, s: &Sweep) -> Vec<u8> {
    let mut out = vec![0u8; align_up(HEADER)];
    let lists_off = out.len();
    let mut start = 0u64;
    for (&count, &c) in s.counts.iter().zip(&s.list_crcs) {
        let e = ListEntry { start: U64::new(start), count: U32::new(count), crc: U32::new(c) };
        out.extend_from_slice(e.as_bytes());
        start += count as u64;
    }
    let mut flags = if spec.fast_scan { FAST_SCAN } else { 0 };
    if spec.refine {
        flags |= HAS_REFINE;
    }
    if spec.records {
        flags |= HAS_RECORDS;
    }
    let [codes, ids, refine, records] = s.sections;
    let h = SegmentHeader {
        file: FileHeader::new(FileKind::Segment),
        nlist: U32::new(spec.nlist as u32),
        code_size: U32::new(spec.code_size as u32),
        id_width: U32::new(s.id_width as u32),
        flags: U32::new(flags),
        vectors: U64::new(start),
        quantizer_file: U64::new(spec.quantizer_file),
        lists_offset: U64::new(lists_off as u64),
        lists_crc: U32::new(crate::format::crc(&out[lists_off..])),
        codes_offset: U64::new(codes.0),
        codes_crc: U32::new(codes.2),
        ids_offset: U64::new(ids.0),
        ids_crc: U32::new(ids.2),
        refine_offset: U64::new(refine.0),
        refine_len: U64::new(refine.1),
        refine_crc: U32::new(refine.2),
        records_offset: U64::new(records.0),
        records_len: U64::new(records.1),
        records_crc: U32::new(records.2),
        header_crc: U32::new(0),
    };
    let mut head = Vec::with_capacity(HEADER);
    write_checked_header(&h, &mut head);
    out[..HEADER].copy_from_slice(&head);
    out
}

/// Streams the whole file: `prefix`, then every section in file order.
fn sweep(spec: &StreamSpec, src: &dyn RowSource, prefix: &[u8], sink: &mut Sink<'_>) -> Result<Sweep> {
    let (nlist, cs) = (spec.nlist, spec.code_size);
    sink.raw(prefix)?;
    let mut sections = [(0u64, 0u64, 0u32); 4];
    let mut counts = vec![0u32; nlist];
    let mut max_id = 0u64;
    let start = sink.begin()?;
    let mut plain: Vec<u8> = Vec::new();
    let mut blocked: Vec<u8> = Vec::new();
    for (l, count) in counts.iter_mut().enumerate() {
        let mut rows = 0usize;
        src.list_rows(l, Part::Codes, &mut |r| {
            if r.code.len() != cs {
                return Err(Error::InvalidInput(format!("a merged code has {} bytes, not {cs}", r.code.len())));
            }
            rows += 1;
            max_id = max_id.max(r.id);
            if !spec.fast_scan {
                return sink.put(r.code, l..l + 1);
            }
            plain.extend_from_slice(r.code);
            if plain.len() == BLOCK_ROWS * cs.max(1) {
                to_blocks(&mut plain, &mut blocked, cs, sink, l)?;
            }
            Ok(())
        })?;
        if spec.fast_scan {
            to_blocks(&mut plain, &mut blocked, cs, sink, l)?;
        }
        *count = u32::try_from(rows).map_err(|_| Error::InvalidInput(format!("list {l} exceeds 2^32 vectors")))?;
    }
    sections[0] = sink.end(start);
    let id_width = if max_id <= u32::MAX as u64 { 4 } else { 8 };
    let start = sink.begin()?;
    for (l, &count) in counts.iter().enumerate() {
        let mut rows = 0u32;
        src.list_rows(l, Part::Ids, &mut |r| {
            rows += 1;
            if id_width == 4 {
                sink.put(&(r.id as u32).to_le_bytes(), l..l + 1)
            } else {
                sink.put(&r.id.to_le_bytes(), l..l + 1)
            }
        })?;
        if rows != count {
            return Err(Error::InvalidInput(format!("list {l} gave {rows} rows, then {count}")));
        }
    }
    sections[1] = sink.end(start);
    if spec.refine {
        let start = sink.begin()?;
        // Version 2's arrays (layout.rs): starts, scales, dims, values.
        starts(src, Part::Refine, nlist, sink, |r| Ok(refine_of(r)?.dims.len() as u64))?;
        for l in 0..nlist {
            src.list_rows(l, Part::Refine, &mut |r| sink.put(&refine_of(r)?.scaled().0.to_le_bytes(), l..l + 1))?;
        }
        for l in 0..nlist {
            src.list_rows(l, Part::Refine, &mut |r| sink.put(refine_of(r)?.dims.as_bytes(), l..l + 1))?;
        }
        for l in 0..nlist {
            src.list_rows(l, Part::Refine, &mut |r| sink.put(refine_of(r)?.scaled().1.as_bytes(), l..l + 1))?;
        }
        sections[2] = sink.end(start);
    }
    if spec.records {
        let start = sink.begin()?;
        let path = |r: &Row<'_>| r.record.map(|x| path_bytes(x.path).len()).unwrap_or(0) as u64;
        starts(src, Part::Records, nlist, sink, |r| Ok(path(r)))?;
        let field = |r: &Row<'_>, mtime: bool| match r.record {
            Some(x) if mtime => x.mtime_ns.to_le_bytes(),
            Some(x) => x.size.to_le_bytes(),
            None => [0; 8],
        };
        for mtime in [false, true] {
            for l in 0..nlist {
                src.list_rows(l, Part::Records, &mut |r| sink.put(&field(r, mtime), l..l + 1))?;
            }
        }
        for l in 0..nlist {
            src.list_rows(l, Part::Records, &mut |r| match r.record {
                Some(x) => sink.put(&path_bytes(x.path), l..l + 1),
                None => Ok(()),
            })?;
        }
        sections[3] = sink.end(start);
    }
    let list_crcs = std::mem::take(&mut sink.lists).into_iter().map(|h| h.finalize()).collect();
    Ok(Sweep { counts, id_width, sections, list_crcs, len: sink.pos })
}

fn refine_of<'r>(r: &Row<'r>) -> Result<RefineRef<'r>> {
    r.refine.ok_or_else(|| Error::InvalidInput("a merged vector has no refine values".into()))
}

/// Appends the plain codes in `plain` as fast-scan blocks of list `l`.
fn to_blocks(plain: &mut Vec<u8>, blocked: &mut Vec<u8>, cs: usize, sink: &mut Sink<'_>, l: usize) -> Result<()> {
    blocked.clear();
    blocks::to_blocks(plain, cs, blocked);
    plain.clear();
    sink.put(blocked, l..l + 1)
}

/// An offsets array (`starts`, n + 1 entries of u64) whose row p spans
/// `len(row)` units. Entry p belongs to every list holding p as its start or
/// its end: the list p starts, and the lists (one non-empty, then any empty
/// ones) that end at p.
fn starts(
    src: &dyn RowSource,
    part: Part,
    nlist: usize,
    sink: &mut Sink<'_>,
    len: impl Fn(&Row<'_>) -> Result<u64>,
) -> Result<()> {
    let (mut at, mut open_from) = (0u64, 0usize);
    for l in 0..nlist {
        let mut first = true;
        src.list_rows(l, part, &mut |r| {
            let lists = if first { open_from..l + 1 } else { l..l + 1 };
            if first {
                (first, open_from) = (false, l);
            }
            sink.put(&at.to_le_bytes(), lists)?;
            at += len(r)?;
            Ok(())
        })?;
    }
    sink.put(&at.to_le_bytes(), open_from..nlist)
}
