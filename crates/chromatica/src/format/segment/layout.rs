//! Where each section of a segment lies, and which bytes belong to a list
//! (the ranges its checksum covers): derived from the header and checked
//! against the file's length, for the writer and the view alike.

use super::{SegmentHeader, FAST_SCAN, HAS_RECORDS, HAS_REFINE};
use crate::error::{Error, Result};
use crate::format::section;
use crate::quantizer::blocks;
use std::ops::Range;

/// Byte layout of the variable sections, as offsets into the file.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub(super) n: usize,
    pub(super) code_size: usize,
    pub(super) id_width: usize,
    /// Codes are in fast-scan blocks: a list of c vectors has
    /// `blocks::slots(c)` code slots instead of c.
    pub(super) fast_scan: bool,
    /// Code slots in the codes section (n without fast-scan).
    pub(super) slots: usize,
    pub(super) codes: usize,
    pub(super) ids: usize,
    pub(super) refine: Option<Refine>,
    /// (start of `starts`, sizes, mtimes, blob, blob length).
    pub(super) records: Option<(usize, usize, usize, usize, usize)>,
}

/// Where the refine section's arrays lie (FORMAT.md, "Refine store"):
/// `starts` (n + 1 u64), in version 2 `scales` (n f32), `dims` (nnz u16),
/// then `values`: f32 in version 1 (after padding to 4 bytes), i16 in
/// version 2, where value = q × scale.
#[derive(Clone, Copy, Debug)]
pub(super) struct Refine {
    pub(super) starts: usize,
    /// Version 2's per-vector scales; `None` in version 1.
    pub(super) scales: Option<usize>,
    pub(super) dims: usize,
    pub(super) values: usize,
    pub(super) nnz: usize,
    /// Bytes per value: 4 (f32, version 1) or 2 (i16, version 2).
    pub(super) value_size: usize,
}

impl Refine {
    /// The arrays of a refine section at `off` holding `n` vectors and
    /// `nnz` values in all, as segment format `version` lays them out.
    pub(super) fn of(off: usize, n: usize, nnz: usize, version: u32) -> Refine {
        let after_starts = off + 8 * (n + 1);
        if version == 1 {
            let values = (after_starts + 2 * nnz).div_ceil(4) * 4;
            Refine { starts: off, scales: None, dims: after_starts, values, nnz, value_size: 4 }
        } else {
            let dims = after_starts + 4 * n;
            Refine { starts: off, scales: Some(after_starts), dims, values: dims + 2 * nnz, nnz, value_size: 2 }
        }
    }

    /// One past the section's last byte.
    pub(super) fn end(&self) -> usize {
        self.values + self.value_size * self.nnz
    }
}

fn records_parts(off: usize, n: usize, blob: usize) -> (usize, usize, usize, usize) {
    let sizes = off + 8 * (n + 1);
    let mtimes = sizes + 8 * n;
    let blob_at = mtimes + 8 * n;
    (blob_at + blob - off, sizes, mtimes, blob_at)
}

pub(super) fn u64_at(bytes: &[u8], at: usize, file: &str) -> Result<u64> {
    bytes
        .get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .ok_or_else(|| Error::corrupt(file, at as u64, "offset past the end of the file"))
}

impl Layout {
    /// Derives and bounds-checks the section layout from a header and the
    /// number of code slots (the vector count, or with fast-scan blocks the
    /// padded list lengths summed).
    pub(super) fn of(bytes: &[u8], h: &SegmentHeader, file: &str, slots: u64) -> Result<Layout> {
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
            let refine = Refine::of(r.start, n, nnz.min(bytes.len()), h.file.version.get());
            if refine.end() != r.end {
                return Err(Error::corrupt(file, r.start as u64, "refine store length disagrees with its offsets"));
            }
            Some(refine)
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
    pub(super) fn code_slots(&self, c: usize) -> usize {
        if self.fast_scan {
            blocks::slots(c)
        } else {
            c
        }
    }

    /// The section ranges, in file order, for the padding check.
    pub(super) fn sections(&self, h: &SegmentHeader) -> Vec<Range<usize>> {
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
    pub(super) fn start(bytes: &[u8], at: usize, p: usize, limit: usize, file: &str) -> Result<usize> {
        let v = u64_at(bytes, at + 8 * p, file)?;
        if v > limit as u64 {
            return Err(Error::corrupt(file, (at + 8 * p) as u64, format!("offset {v} is beyond {limit}")));
        }
        Ok(v as usize)
    }

    /// Every byte range that belongs to vectors `s .. s + c`, whose codes
    /// start at code slot `slot`: codes (with fast-scan, their blocks, padding
    /// included), ids, and (when present) their refine values (with their
    /// scales) and records.
    fn ranges(&self, bytes: &[u8], s: usize, c: usize, slot: usize, file: &str) -> Result<Vec<Range<usize>>> {
        let mut v = vec![
            self.codes + slot * self.code_size..self.codes + (slot + self.code_slots(c)) * self.code_size,
            self.ids + s * self.id_width..self.ids + (s + c) * self.id_width,
        ];
        if let Some(r) = self.refine {
            let (a, b) =
                (Self::start(bytes, r.starts, s, r.nnz, file)?, Self::start(bytes, r.starts, s + c, r.nnz, file)?);
            if a > b {
                return Err(Error::corrupt(file, (r.starts + 8 * s) as u64, "refine offsets decrease"));
            }
            v.push(r.starts + 8 * s..r.starts + 8 * (s + c + 1));
            if let Some(scales) = r.scales {
                v.push(scales + 4 * s..scales + 4 * (s + c));
            }
            v.extend([r.dims + 2 * a..r.dims + 2 * b, r.values + r.value_size * a..r.values + r.value_size * b]);
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

    pub(super) fn list_crc(&self, bytes: &[u8], s: usize, c: usize, slot: usize, file: &str) -> Result<u32> {
        let mut h = crc32fast::Hasher::new();
        for r in self.ranges(bytes, s, c, slot, file)? {
            h.update(&bytes[r]);
        }
        Ok(h.finalize())
    }
}
