//! Segment files: immutable PQ codes and ids — and optionally each vector's
//! exact values (the refine store) and its record (path, size, mtime) —
//! grouped by inverted list, so that a probed list is one contiguous range of
//! each. A segment without codes (`quantizer_file` 0) belongs to an index
//! that is not trained yet and is searched exactly through its refine store.
//!
//! One file per question: this one holds the fixed structs and flags;
//! `layout.rs` where every section and every list's bytes lie; `writer.rs`
//! how a segment is encoded; `stream.rs` the same bytes written a list at a
//! time (merges); `view.rs` the checked view that verifies each
//! list's checksum on first read; `refine_records.rs` how a vector's exact
//! values and record are read back.

mod layout;
mod refine_records;
pub mod stream;
#[cfg(test)]
mod tests;
mod view;
mod writer;

pub use refine_records::{quantize, RecordRef, RefineRef};
pub use view::{Expect, Ids, SegmentView};
pub use writer::{encode, SegmentInput};

use super::FileHeader;
use serde::Serialize;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use zerocopy::byteorder::little_endian::{U32, U64};
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
    /// CRC32 of every byte that belongs to the list's vectors (the ranges
    /// `layout.rs` computes; FORMAT.md lists them).
    pub crc: U32,
}

/// What an image (or any vector) was made from: kept beside its code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Stored losslessly: on Unix as the path's raw bytes, so names that
    /// are not UTF-8 survive (FORMAT.md, "Records").
    pub path: PathBuf,
    /// File size in bytes when it was indexed.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
}

impl Record {
    /// A file's modification time as records keep it: nanoseconds since the
    /// Unix epoch (negative before it, 0 when the system cannot tell).
    pub fn modified_ns(meta: &std::fs::Metadata) -> i64 {
        match meta.modified() {
            Ok(t) => match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
                Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
            },
            Err(_) => 0,
        }
    }

    /// Whether a file still has the size and modification time recorded
    /// (what `sync` takes for "unchanged").
    pub fn matches(&self, meta: &std::fs::Metadata) -> bool {
        meta.len() == self.size && Record::modified_ns(meta) == self.mtime_ns
    }
}

/// A vector's exact values, sparse: (dimension, value), dimensions ascending.
pub type Sparse = Vec<(u16, f32)>;

/// The bytes a record path is stored as: the OS's bytes on Unix (any byte
/// string, UTF-8 or not), UTF-8 elsewhere (where paths that are not
/// Unicode are written lossily).
pub(crate) fn path_bytes(path: &Path) -> Cow<'_, [u8]> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Cow::Borrowed(path.as_os_str().as_bytes())
    }
    #[cfg(not(unix))]
    match path.to_string_lossy() {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

/// A stored record path: any bytes on Unix; elsewhere `None` unless UTF-8.
pub(crate) fn path_from_bytes(bytes: &[u8]) -> Option<&Path> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Some(Path::new(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    std::str::from_utf8(bytes).ok().map(Path::new)
}
