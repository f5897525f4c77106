//! The checked, read-only view of a segment file: opening checks the header,
//! the list directory and the layout; each list's checksum is checked the
//! first time the list is read, once per open file.

use super::layout::Layout;
use super::{ListEntry, SegmentHeader, FAST_SCAN, HAS_RECORDS, HAS_REFINE, HEADER};
use crate::error::{Error, Result};
use crate::format::{check_crc, check_layout, read_checked_header, section, FileHeader, FileKind};
use crate::quantizer::blocks;
use crate::storage::Bytes;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::FromBytes;

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
    // Only the tests and benchmarks ask this.
    #[cfg(any(test, feature = "testing"))]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// A validated, read-only view of a segment file. Opening checks the header,
/// the list directory and the padding: O(nlist), independent of the number of
/// vectors. Each list's checksum is checked the first time it is read.
#[derive(Debug)]
pub struct SegmentView {
    pub(super) bytes: Bytes,
    pub(super) name: String,
    pub(super) dim: usize,
    pub(super) layout: Layout,
    has_codes: bool,
    codes_crc: u32,
    ids_crc: u32,
    section_crcs: Vec<(Range<usize>, u32, &'static str)>,
    /// (start, count, crc, first code slot) per list.
    pub(super) lists: Vec<(usize, usize, u32, usize)>,
    verified: Vec<AtomicBool>,
    /// Per position, the Lab mean of the colour distribution behind the
    /// refine store's vector (squares of a Hellinger vector), derived on the
    /// first EMD search and kept while the segment is open (12 bytes a
    /// vector; nothing stored on disk).
    pub(super) lab_means: std::sync::OnceLock<Vec<[f32; 3]>>,
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
        check_layout(&bytes, HEADER, &sections, file)?;
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
            lab_means: std::sync::OnceLock::new(),
            lists,
            layout,
            bytes,
        })
    }

    /// See [`Bytes::release_pages`] (merges, after each list they copy).
    pub fn release_pages(&self) {
        self.bytes.release_pages();
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
    // Only the tests and benchmarks ask this.
    #[cfg(any(test, feature = "testing"))]
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
        self.layout.refine.map_or(0, |r| r.end() - r.starts)
    }
    /// Heap bytes of the Lab means kept for EMD search (0 until the first).
    pub fn lab_mean_bytes(&self) -> usize {
        self.lab_means.get().map_or(0, |m| m.len() * std::mem::size_of::<[f32; 3]>())
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
    pub(super) fn check_position(&self, p: usize) -> Result<()> {
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

    #[cfg(any(test, feature = "testing"))]
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

    /// Like [`SegmentView::verify`], but goes on past a problem: every
    /// problem found (section checksums, then each list and each of its
    /// vectors' refine values and records), and per list whether it reads
    /// in full (its checksum holds and every vector in it decodes).
    pub fn verify_all(&self) -> (Vec<Error>, Vec<bool>) {
        let mut problems = Vec::new();
        let n = self.layout.n;
        let c = self.layout.codes..self.layout.codes + self.code_bytes();
        let i = self.layout.ids..self.layout.ids + n * self.layout.id_width;
        problems.extend(check_crc(&self.bytes, c, self.codes_crc, &self.name, "codes").err());
        problems.extend(check_crc(&self.bytes, i, self.ids_crc, &self.name, "ids").err());
        for (r, crc, what) in &self.section_crcs {
            problems.extend(check_crc(&self.bytes, r.clone(), *crc, &self.name, what).err());
        }
        let mut readable = vec![true; self.lists.len()];
        for (l, ok) in readable.iter_mut().enumerate() {
            if let Err(e) = self.check_list(l) {
                problems.push(e);
                *ok = false;
                continue;
            }
            let (s, count, _, _) = self.lists[l];
            for p in s..s + count {
                if let Err(e) = self.check_vector(p) {
                    problems.push(e);
                    *ok = false;
                }
            }
        }
        (problems, readable)
    }

    /// The per-vector checks of [`SegmentView::verify`] for position `p`:
    /// its refine values (finite, dimensions ascending) and its record.
    fn check_vector(&self, p: usize) -> Result<()> {
        if let Some(layout) = self.layout.refine {
            let r = self.refine(p)?;
            let first = || r.dims.as_ptr() as usize - self.bytes.as_ptr() as usize - layout.dims;
            if let Some(k) = r.iter().position(|(_, v)| !v.is_finite()) {
                // Byte offset of the bad value: the vector's first value's
                // index (its first dimension's) plus k.
                let at = layout.values + layout.value_size * (first() / 2 + k);
                return Err(Error::corrupt(&self.name, at as u64, format!("non-finite refine value of vector {p}")));
            }
            if r.dims.windows(2).any(|w| w[0].get() >= w[1].get()) {
                return Err(Error::corrupt(
                    &self.name,
                    (layout.dims + first()) as u64,
                    format!("refine dimensions of vector {p} not ascending"),
                ));
            }
        }
        self.record(p)?;
        Ok(())
    }

    /// Checks every checksum (sections and lists) and every vector's
    /// refine values and record; stops at the first problem.
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
            self.check_vector(p)?;
        }
        Ok(())
    }
}
