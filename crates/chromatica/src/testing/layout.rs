//! Where the checksums and shape fields of every file kind lie, from the
//! engine's own header structs, so that code changing bytes on purpose
//! (corruption tests, fuzz targets) follows a reordered header by itself.
//! FORMAT.md describes every field.

pub use crate::format::manifest::{ManifestHeader, ManifestHeaderV1};
pub use crate::format::quantizer_file::{QuantizerHeader, QuantizerHeaderV1};
pub use crate::format::segment::{ListEntry, SegmentHeader, FAST_SCAN, HAS_RECORDS, HAS_REFINE};
pub use crate::format::tombstone_file::TombstoneHeader;
pub use crate::format::{crc, FileKind, MAGIC};
use std::mem::size_of;

/// Bytes of a manifest's fixed part, as this build writes it (version 2).
pub const MANIFEST_HEADER: usize = size_of::<ManifestHeader>();
/// Bytes of a quantizer file's header, as this build writes it (version 2).
pub const QUANTIZER_HEADER: usize = size_of::<QuantizerHeader>();

/// Bytes of the fixed part of the manifest `b` by the version it states
/// (version 1's is 100 bytes; any other reads as this build's).
pub fn manifest_header_len(b: &[u8]) -> usize {
    match b.get(12..16).map(|v| u32::from_le_bytes(v.try_into().unwrap())) {
        Some(1) => size_of::<ManifestHeaderV1>(),
        _ => MANIFEST_HEADER,
    }
}

/// Bytes of the header of the quantizer file `b` by the version it states
/// (version 1's is 88 bytes).
pub fn quantizer_header_len(b: &[u8]) -> usize {
    match b.get(12..16).map(|v| u32::from_le_bytes(v.try_into().unwrap())) {
        Some(1) => size_of::<QuantizerHeaderV1>(),
        _ => QUANTIZER_HEADER,
    }
}
/// Bytes of a segment's header.
pub const SEGMENT_HEADER: usize = size_of::<SegmentHeader>();
/// Bytes of a tombstone file's header.
pub const TOMBSTONE_HEADER: usize = size_of::<TombstoneHeader>();

/// The little-endian u32 at `at`.
pub fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
/// The little-endian u64 at `at`.
pub fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
/// Writes `v` little-endian at `at`.
pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
/// Writes `v` little-endian at `at`.
pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
