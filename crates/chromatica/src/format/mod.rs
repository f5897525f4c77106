//! The bytes on disk. Every struct here is little-endian, unaligned
//! (zerocopy byte-order types), and documented byte for byte in FORMAT.md.
//! Encoding and decoding are pure functions over byte slices: the write path
//! (`crate::write`) and the read path (`crate::read`) both go through them.

pub mod manifest;
pub mod quantizer_file;
pub mod segment;
pub mod tombstone_file;

use crate::error::{Error, Result};
use zerocopy::byteorder::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// First 8 bytes of every file.
pub const MAGIC: [u8; 8] = *b"CHROMATI";
/// Sections start at multiples of this, so that typed views stay aligned.
pub const ALIGN: usize = 64;

/// What a file holds; stored in every file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum FileKind {
    Manifest = 1,
    Quantizers = 2,
    Segment = 3,
    Tombstones = 4,
}

impl FileKind {
    /// The version of this kind of file that this build writes (and the
    /// newest it reads; every older one is read too). The index format's
    /// version (FORMAT.md's) is the newest of them: 2, which added the
    /// search defaults to the manifest, the training baseline to the
    /// quantizer file and 16-bit scaled values to the segments' refine
    /// store; tombstone files are still version 1. So an index written by
    /// version-1 builds opens unchanged.
    pub fn version(self) -> u32 {
        match self {
            FileKind::Manifest | FileKind::Quantizers | FileKind::Segment => 2,
            FileKind::Tombstones => 1,
        }
    }
}

/// The 16 bytes that open every file.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct FileHeader {
    pub magic: [u8; 8],
    pub kind: U32,
    pub version: U32,
}

impl FileHeader {
    pub fn new(kind: FileKind) -> FileHeader {
        FileHeader { magic: MAGIC, kind: U32::new(kind as u32), version: U32::new(kind.version()) }
    }

    /// Checks magic, kind and version at the start of `bytes`; returns the
    /// version (1 up to [`FileKind::version`]).
    pub fn check(bytes: &[u8], kind: FileKind, file: &str) -> Result<u32> {
        let (h, _) = FileHeader::read_from_prefix(bytes)
            .map_err(|_| Error::corrupt(file, 0, "file shorter than its 16-byte header"))?;
        if h.magic != MAGIC {
            return Err(Error::corrupt(file, 0, "bad magic: not a chromatica file"));
        }
        if h.kind.get() != kind as u32 {
            return Err(Error::corrupt(
                file,
                8,
                format!("file kind {} where {} was expected", h.kind.get(), kind as u32),
            ));
        }
        let (version, newest) = (h.version.get(), kind.version());
        if !(1..=newest).contains(&version) {
            return Err(Error::corrupt(
                file,
                12,
                format!(
                    "format version {version} is not supported by this build (it reads versions 1 to {newest} of this file kind)"
                ),
            ));
        }
        Ok(version)
    }
}

/// CRC32 (IEEE, as crc32fast computes it) of `bytes`.
pub fn crc(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// Rounds `n` up to the next multiple of [`ALIGN`].
pub fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Appends zero bytes until `buf.len()` is a multiple of [`ALIGN`].
pub fn pad(buf: &mut Vec<u8>) {
    buf.resize(align_up(buf.len()), 0);
}

/// Reads a fixed-size header struct at the start of `bytes`, whose last 4
/// bytes are the CRC32 of all bytes before them (file header included).
pub fn read_checked_header<T: FromBytes + KnownLayout + Immutable>(bytes: &[u8], file: &str) -> Result<T> {
    let size = std::mem::size_of::<T>();
    if bytes.len() < size {
        return Err(Error::corrupt(file, bytes.len() as u64, format!("file ends inside its {size}-byte header")));
    }
    let stored = u32::from_le_bytes(bytes[size - 4..size].try_into().expect("4 bytes"));
    if crc(&bytes[..size - 4]) != stored {
        return Err(Error::corrupt(file, (size - 4) as u64, "header checksum mismatch"));
    }
    Ok(T::read_from_prefix(bytes).expect("length checked").0)
}

/// Serialises a header struct whose last field is its CRC, filling the CRC in.
pub fn write_checked_header<T: IntoBytes + Immutable>(header: &T, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(header.as_bytes());
    let end = out.len();
    let c = crc(&out[start..end - 4]);
    out[end - 4..end].copy_from_slice(&c.to_le_bytes());
}

/// The byte range `offset..offset + len` of a file, if it lies inside it.
pub fn section(bytes: &[u8], offset: u64, len: u64, file: &str, what: &str) -> Result<std::ops::Range<usize>> {
    let end = offset.checked_add(len);
    match end {
        Some(end) if end <= bytes.len() as u64 => Ok(offset as usize..end as usize),
        _ => Err(Error::corrupt(
            file,
            offset,
            format!("{what} ({len} bytes at {offset}) runs past the end of the file ({} bytes)", bytes.len()),
        )),
    }
}

/// Checks the CRC of a section.
pub fn check_crc(bytes: &[u8], range: std::ops::Range<usize>, expected: u32, file: &str, what: &str) -> Result<()> {
    if crc(&bytes[range.clone()]) != expected {
        return Err(Error::corrupt(file, range.start as u64, format!("{what} checksum mismatch")));
    }
    Ok(())
}

/// Checks that `sections` (in file order, after a header of `header_len`
/// bytes) lie exactly where the encoder puts them — each at the first
/// multiple of [`ALIGN`] after the previous one — that the padding between
/// them is zero, and that the file ends with the last one. A file's layout is
/// thus unique, and no byte of it escapes a check.
pub fn check_layout(bytes: &[u8], header_len: usize, sections: &[std::ops::Range<usize>], file: &str) -> Result<()> {
    let mut at = header_len;
    for s in sections {
        if s.start != align_up(at) {
            return Err(Error::corrupt(
                file,
                s.start as u64,
                format!("section starts at byte {}, the format puts it at {}", s.start, align_up(at)),
            ));
        }
        if let Some(i) = bytes[at..s.start].iter().position(|&b| b != 0) {
            return Err(Error::corrupt(file, (at + i) as u64, "non-zero padding byte"));
        }
        at = s.end;
    }
    if at != bytes.len() {
        return Err(Error::corrupt(file, at as u64, "unexpected bytes after the last section"));
    }
    Ok(())
}

/// Little-endian f32s to bytes.
pub fn f32s_to_bytes(v: &[f32], out: &mut Vec<u8>) {
    out.reserve(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// Bytes to little-endian f32s (length must be a multiple of 4).
pub fn bytes_to_f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect()
}

/// File names: every file but the lock is named by a 64-bit number, unique
/// within an index and never reused, printed as 16 hex digits.
pub fn segment_name(number: u64) -> String {
    format!("{number:016x}.seg")
}
pub fn quantizer_name(number: u64) -> String {
    format!("{number:016x}.qnt")
}
pub fn tombstone_name(number: u64) -> String {
    format!("{number:016x}.del")
}
pub fn manifest_name(generation: u64) -> String {
    format!("MANIFEST-{generation:016x}")
}
pub const TEMP_SUFFIX: &str = ".tmp";

/// The generation of a manifest file name, if `name` is one.
pub fn parse_manifest_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("MANIFEST-")?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok()).flatten()
}

/// A manifest's temporary file: `MANIFEST-<16 hex>.tmp`, or
/// `MANIFEST-<16 hex>.<k>.tmp` (k decimal) when that name was taken.
pub fn manifest_temp_name(generation: u64, k: u32) -> String {
    match k {
        0 => format!("{}{TEMP_SUFFIX}", manifest_name(generation)),
        k => format!("{}.{k}{TEMP_SUFFIX}", manifest_name(generation)),
    }
}

/// The generation of a manifest's temporary file name, if `name` is one
/// (see [`manifest_temp_name`]). No other `*.tmp` name belongs to the format.
pub fn parse_manifest_temp_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(TEMP_SUFFIX)?;
    let (manifest, k) = stem.split_once('.').unwrap_or((stem, "0"));
    (!k.is_empty() && k.bytes().all(|b| b.is_ascii_digit())).then(|| parse_manifest_name(manifest)).flatten()
}

/// Whether `name` is one the format owns (a manifest, its temporary file,
/// or a numbered file): the only names the engine ever removes.
pub fn is_format_name(name: &str) -> bool {
    parse_manifest_name(name).is_some()
        || parse_manifest_temp_name(name).is_some()
        || parse_numbered_name(name).is_some()
}

/// The number of a segment, quantizer or tombstone file name, if `name` is one.
pub fn parse_numbered_name(name: &str) -> Option<(u64, &str)> {
    let (hex, ext) = name.split_once('.')?;
    if hex.len() != 16 || !matches!(ext, "seg" | "qnt" | "del") {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|n| (n, ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_manifest_name(&manifest_name(42)), Some(42));
        assert_eq!(parse_numbered_name(&segment_name(7)), Some((7, "seg")));
        assert_eq!(parse_numbered_name(&quantizer_name(9)), Some((9, "qnt")));
        assert_eq!(parse_manifest_name("MANIFEST-xyz"), None);
        assert_eq!(parse_numbered_name("0000000000000001.seg.tmp"), None);
        assert_eq!(parse_manifest_temp_name(&manifest_temp_name(5, 0)), Some(5));
        assert_eq!(parse_manifest_temp_name(&manifest_temp_name(5, 3)), Some(5));
        for other in ["x.tmp", "MANIFEST-0000000000000005", "MANIFEST-0000000000000005.a.tmp", "MANIFEST-5.tmp"] {
            assert_eq!(parse_manifest_temp_name(other), None, "{other}");
        }
    }

    #[test]
    fn header_checks_magic_kind_and_version() {
        let mut b = FileHeader::new(FileKind::Tombstones).as_bytes().to_vec();
        FileHeader::check(&b, FileKind::Tombstones, "f").unwrap();
        assert!(FileHeader::check(&b, FileKind::Manifest, "f").unwrap_err().to_string().contains("kind"));
        b[12] = 2;
        assert!(FileHeader::check(&b, FileKind::Tombstones, "f").unwrap_err().to_string().contains("version 2"));
        let mut s = FileHeader::new(FileKind::Segment).as_bytes().to_vec();
        for (v, ok) in [(1u8, true), (2, true), (3, false)] {
            s[12] = v;
            assert_eq!(FileHeader::check(&s, FileKind::Segment, "f").ok(), ok.then_some(u32::from(v)), "segment {v}");
        }
        let mut m = FileHeader::new(FileKind::Manifest).as_bytes().to_vec();
        assert_eq!(FileHeader::check(&m, FileKind::Manifest, "f").unwrap(), 2);
        m[12] = 1;
        assert_eq!(FileHeader::check(&m, FileKind::Manifest, "f").unwrap(), 1);
        for v in [0u8, 3] {
            m[12] = v;
            assert!(FileHeader::check(&m, FileKind::Manifest, "f")
                .unwrap_err()
                .to_string()
                .contains("versions 1 to 2"));
        }
        b[0] = b'X';
        assert!(FileHeader::check(&b, FileKind::Tombstones, "f").unwrap_err().to_string().contains("magic"));
        assert!(FileHeader::check(&b[..5], FileKind::Tombstones, "f").is_err());
    }
}
