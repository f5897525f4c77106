//! Segment files: immutable PQ codes and ids, grouped by inverted list so that
//! a probed list is one contiguous range of codes and one of ids.

use super::{
    align_up, check_crc, check_padding, crc, pad, read_checked_header, section, write_checked_header, FileHeader,
    FileKind,
};
use crate::error::{Error, Result};
use crate::storage::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Fixed part of a segment file (88 bytes).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
pub struct SegmentHeader {
    pub file: FileHeader,
    pub nlist: U32,
    pub code_size: U32,
    pub id_width: U32,
    pub reserved: U32,
    pub vectors: U64,
    pub quantizer_file: U64,
    pub lists_offset: U64,
    pub lists_crc: U32,
    pub codes_offset: U64,
    pub codes_crc: U32,
    pub ids_offset: U64,
    pub ids_crc: U32,
    pub header_crc: U32,
}

/// Where one inverted list sits in the segment (16 bytes).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
pub struct ListEntry {
    /// Index of the list's first vector within the segment.
    pub start: U64,
    pub count: U32,
    /// CRC32 of the list's code bytes followed by its id bytes.
    pub crc: U32,
}

/// Builds a segment file. `codes` (n × code_size) and `ids` (n) are already
/// grouped by list: list `l` holds the next `counts[l]` entries.
pub fn encode(code_size: usize, quantizer_file: u64, counts: &[u32], codes: &[u8], ids: &[u64]) -> Vec<u8> {
    let n = ids.len();
    debug_assert_eq!(codes.len(), n * code_size);
    debug_assert_eq!(counts.iter().map(|&c| c as usize).sum::<usize>(), n);
    let id_width = if ids.iter().all(|&i| i <= u32::MAX as u64) { 4 } else { 8 };
    let id_bytes: Vec<u8> = if id_width == 4 {
        ids.iter().flat_map(|&i| (i as u32).to_le_bytes()).collect()
    } else {
        ids.iter().flat_map(|&i| i.to_le_bytes()).collect()
    };
    let mut lists = Vec::with_capacity(counts.len() * 16);
    let mut start = 0usize;
    for &count in counts {
        let c = count as usize;
        let mut h = crc32fast::Hasher::new();
        h.update(&codes[start * code_size..(start + c) * code_size]);
        h.update(&id_bytes[start * id_width..(start + c) * id_width]);
        let e = ListEntry { start: U64::new(start as u64), count: U32::new(count), crc: U32::new(h.finalize()) };
        lists.extend_from_slice(e.as_bytes());
        start += c;
    }
    let hs = std::mem::size_of::<SegmentHeader>();
    let lists_off = align_up(hs);
    let codes_off = align_up(lists_off + lists.len());
    let ids_off = align_up(codes_off + codes.len());
    let h = SegmentHeader {
        file: FileHeader::new(FileKind::Segment),
        nlist: U32::new(counts.len() as u32),
        code_size: U32::new(code_size as u32),
        id_width: U32::new(id_width as u32),
        reserved: U32::new(0),
        vectors: U64::new(n as u64),
        quantizer_file: U64::new(quantizer_file),
        lists_offset: U64::new(lists_off as u64),
        lists_crc: U32::new(crc(&lists)),
        codes_offset: U64::new(codes_off as u64),
        codes_crc: U32::new(crc(codes)),
        ids_offset: U64::new(ids_off as u64),
        ids_crc: U32::new(crc(&id_bytes)),
        header_crc: U32::new(0),
    };
    let mut out = Vec::with_capacity(ids_off + id_bytes.len());
    write_checked_header(&h, &mut out);
    pad(&mut out);
    out.extend_from_slice(&lists);
    pad(&mut out);
    out.extend_from_slice(codes);
    pad(&mut out);
    out.extend_from_slice(&id_bytes);
    out
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

/// A validated, read-only view of a segment file. Opening checks the header,
/// the list directory and the padding: O(nlist), independent of the number of
/// vectors. Each list's checksum is checked the first time it is read.
#[derive(Debug)]
pub struct SegmentView {
    bytes: Bytes,
    name: String,
    code_size: usize,
    id_width: usize,
    vectors: u64,
    codes_offset: usize,
    ids_offset: usize,
    codes_crc: u32,
    ids_crc: u32,
    /// (start, count, crc) per list.
    lists: Vec<(usize, usize, u32)>,
    verified: Vec<AtomicBool>,
}

impl SegmentView {
    /// `expect` is (nlist, code_size, quantizer file) from the manifest.
    pub fn open(bytes: Bytes, name: String, expect: (usize, usize, u64)) -> Result<SegmentView> {
        let file = name.as_str();
        FileHeader::check(&bytes, FileKind::Segment, file)?;
        let h: SegmentHeader = read_checked_header(&bytes, file)?;
        let (nlist, code_size, qf) = expect;
        if h.nlist.get() as usize != nlist || h.code_size.get() as usize != code_size {
            return Err(Error::corrupt(
                file,
                16,
                format!(
                    "segment has nlist {} and code size {}, the index has {nlist} and {code_size}",
                    h.nlist.get(),
                    h.code_size.get()
                ),
            ));
        }
        if h.quantizer_file.get() != qf {
            return Err(Error::corrupt(file, 40, "segment was encoded with other quantizers"));
        }
        let id_width = h.id_width.get() as usize;
        if id_width != 4 && id_width != 8 {
            return Err(Error::corrupt(file, 24, format!("id width {id_width} (must be 4 or 8)")));
        }
        if h.reserved.get() != 0 {
            return Err(Error::corrupt(file, 28, "reserved field is not zero"));
        }
        let n = h.vectors.get();
        let too_big = |what| Error::corrupt(file, 32, format!("vector count {n} is too large for the {what}"));
        let codes_len = n.checked_mul(code_size as u64).ok_or_else(|| too_big("codes"))?;
        let ids_len = n.checked_mul(id_width as u64).ok_or_else(|| too_big("ids"))?;
        let l = section(&bytes, h.lists_offset.get(), nlist as u64 * 16, file, "list directory")?;
        let c = section(&bytes, h.codes_offset.get(), codes_len, file, "codes")?;
        let i = section(&bytes, h.ids_offset.get(), ids_len, file, "ids")?;
        check_padding(&bytes, std::mem::size_of::<SegmentHeader>(), &[l.clone(), c.clone(), i.clone()], file)?;
        check_crc(&bytes, l.clone(), h.lists_crc.get(), file, "list directory")?;
        let entries = <[ListEntry]>::ref_from_bytes(&bytes[l.clone()]).expect("length checked, alignment 1");
        let mut lists = Vec::with_capacity(nlist);
        let mut next = 0u64;
        for (k, e) in entries.iter().enumerate() {
            if e.start.get() != next {
                return Err(Error::corrupt(
                    file,
                    (l.start + k * 16) as u64,
                    format!("list {k} starts at vector {}, expected {next}", e.start.get()),
                ));
            }
            next += e.count.get() as u64;
            lists.push((e.start.get() as usize, e.count.get() as usize, e.crc.get()));
        }
        if next != n {
            return Err(Error::corrupt(file, l.start as u64, format!("lists hold {next} vectors, header says {n}")));
        }
        Ok(SegmentView {
            name,
            code_size,
            id_width,
            vectors: n,
            codes_offset: c.start,
            ids_offset: i.start,
            codes_crc: h.codes_crc.get(),
            ids_crc: h.ids_crc.get(),
            verified: (0..nlist).map(|_| AtomicBool::new(false)).collect(),
            lists,
            bytes,
        })
    }

    pub fn vectors(&self) -> u64 {
        self.vectors
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn id_width(&self) -> usize {
        self.id_width
    }
    pub fn file_bytes(&self) -> usize {
        self.bytes.len()
    }
    /// Number of vectors in list `l`.
    pub fn list_len(&self, l: usize) -> usize {
        self.lists[l].1
    }

    fn ranges(&self, l: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let (start, count, _) = self.lists[l];
        let c = self.codes_offset + start * self.code_size;
        let i = self.ids_offset + start * self.id_width;
        (c..c + count * self.code_size, i..i + count * self.id_width)
    }

    /// Byte offset in the file of the id of vector `i` of list `l`.
    pub fn id_offset(&self, l: usize, i: usize) -> u64 {
        (self.ids_offset + (self.lists[l].0 + i) * self.id_width) as u64
    }

    /// Codes and ids of list `l`, after checking its checksum (once per open).
    pub fn list(&self, l: usize) -> Result<(&[u8], Ids<'_>)> {
        let (c, i) = self.ranges(l);
        if !self.verified[l].load(Ordering::Relaxed) {
            let mut h = crc32fast::Hasher::new();
            h.update(&self.bytes[c.clone()]);
            h.update(&self.bytes[i.clone()]);
            if h.finalize() != self.lists[l].2 {
                return Err(Error::corrupt(&self.name, c.start as u64, format!("list {l} checksum mismatch")));
            }
            self.verified[l].store(true, Ordering::Relaxed);
        }
        let ids = &self.bytes[i];
        let ids = if self.id_width == 4 {
            Ids::Narrow(<[U32]>::ref_from_bytes(ids).expect("alignment 1, length checked"))
        } else {
            Ids::Wide(<[U64]>::ref_from_bytes(ids).expect("alignment 1, length checked"))
        };
        Ok((&self.bytes[c], ids))
    }

    /// Full check: section checksums and every list checksum.
    pub fn verify(&self) -> Result<()> {
        let n = self.vectors as usize;
        let c = self.codes_offset..self.codes_offset + n * self.code_size;
        let i = self.ids_offset..self.ids_offset + n * self.id_width;
        check_crc(&self.bytes, c, self.codes_crc, &self.name, "codes")?;
        check_crc(&self.bytes, i, self.ids_crc, &self.name, "ids")?;
        for l in 0..self.lists.len() {
            self.list(l)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn build(ids: &[u64]) -> Vec<u8> {
        // 3 lists holding 2, 0 and the rest of the vectors; code size 3.
        let n = ids.len();
        let codes: Vec<u8> = (0..n * 3).map(|i| i as u8).collect();
        encode(3, 9, &[2, 0, (n - 2) as u32], &codes, ids)
    }

    fn open(b: Vec<u8>) -> Result<SegmentView> {
        SegmentView::open(Bytes::Owned(Arc::new(b)), "s".into(), (3, 3, 9))
    }

    #[test]
    fn lists_are_contiguous_and_ids_narrow_when_they_fit() {
        let v = open(build(&[10, 11, 12, 13, 14])).unwrap();
        assert_eq!(v.id_width(), 4);
        let (codes, ids) = v.list(0).unwrap();
        assert_eq!(codes, &[0, 1, 2, 3, 4, 5]);
        assert_eq!(ids.iter().collect::<Vec<_>>(), vec![10, 11]);
        assert!(v.list(1).unwrap().1.is_empty());
        assert_eq!(v.list(2).unwrap().1.iter().collect::<Vec<_>>(), vec![12, 13, 14]);
        v.verify().unwrap();
        let w = open(build(&[1, 2, u32::MAX as u64 + 1])).unwrap();
        assert_eq!(w.id_width(), 8);
        assert_eq!(w.list(2).unwrap().1.get(0), u32::MAX as u64 + 1);
    }

    #[test]
    fn every_flipped_byte_is_caught_by_open_or_verify() {
        let b = build(&[1, 2, 3, 4, 5, 6]);
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x40;
            let caught = match open(c) {
                Err(_) => true,
                Ok(v) => v.verify().is_err() && (0..3).any(|l| v.list(l).is_err()),
            };
            assert!(caught, "flip at byte {i} not caught");
        }
    }

    #[test]
    fn mismatched_shape_is_refused() {
        let b = build(&[1, 2, 3]);
        let e = SegmentView::open(Bytes::Owned(Arc::new(b)), "s".into(), (4, 3, 9)).unwrap_err();
        assert!(e.to_string().contains("nlist"));
    }
}
