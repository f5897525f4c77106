//! Where bytes live. Everything the index reads or writes goes through the
//! small [`Storage`] trait, scoped to one directory, so that tests can swap the
//! real filesystem ([`FsStorage`]) for a model of it (`MemStorage`, in
//! `chromatica::testing` with the `testing` feature) that loses whatever was
//! not made durable when it "crashes", or fails on demand.
//!
//! Durability model (the contract both backends implement):
//! - a file's bytes are durable once [`StorageFile::sync`] returned;
//! - a name (create, rename, remove) is durable once [`Storage::sync_dir`]
//!   returned after it.

mod fs;
#[cfg(any(test, feature = "testing"))]
mod mem;
#[cfg(feature = "object-store")]
pub mod object;

pub use fs::FsStorage;
#[cfg(any(test, feature = "testing"))]
pub use mem::MemStorage;

use crate::error::Result;
use std::fmt::Debug;
use std::ops::Deref;

/// The name of the writer's lock file in an index directory.
pub const LOCK_FILE: &str = "LOCK";

/// A flat directory of named files.
pub trait Storage: Send + Sync + Debug {
    /// Creates `name` for writing. Fails if the name exists in any form
    /// (file, directory, symlink): a new file is always a new inode, and
    /// nothing is ever written through a link planted in the directory.
    fn create(&self, name: &str) -> Result<Box<dyn StorageFile>>;
    /// A read-only view of an immutable file: memory-mapped on the
    /// filesystem. Anything but a regular file (a FIFO, a device) is refused
    /// without blocking.
    fn map(&self, name: &str) -> Result<Bytes>;
    /// Atomically replaces `to` with `from`.
    fn rename(&self, from: &str, to: &str) -> Result<()>;
    fn remove(&self, name: &str) -> Result<()>;
    /// Names in the directory, in no particular order; directories are
    /// left out (no file of an index is one).
    fn list(&self) -> Result<Vec<String>>;
    /// Makes every earlier create, rename and remove durable.
    fn sync_dir(&self) -> Result<()>;
    /// Takes the single-writer lock, held until the returned guard drops.
    fn lock_writer(&self) -> Result<Box<dyn Send + Sync>>;
    /// How a file is named in messages (its path, for the filesystem).
    fn describe(&self, name: &str) -> String;
    /// Whether a writer that opened at state `current` may remove the
    /// leftover `name` (a file `current` does not name). Always, where the
    /// writer lock excludes other writers; on object storage, where several
    /// writers may work at once, not a newer manifest nor a recent file
    /// numbered at or above `current.next_file` (another writer's work in
    /// progress).
    fn may_remove_leftover(&self, _name: &str, _current: &crate::format::manifest::Manifest) -> bool {
        true
    }
}

/// A file being written.
pub trait StorageFile: Send {
    fn write_all(&mut self, buf: &[u8]) -> Result<()>;
    /// Makes every byte written so far durable.
    fn sync(&mut self) -> Result<()>;
}

/// Immutable file contents: a memory map or an owned buffer.
pub enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(std::sync::Arc<Vec<u8>>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

impl Bytes {
    /// Hints the kernel that the bytes will be read front to back (larger
    /// read-ahead). Only a hint: failure is harmless.
    pub fn advise_sequential(&self) {
        #[cfg(unix)]
        if let Bytes::Mapped(m) = self {
            let _ = m.advise(memmap2::Advice::Sequential);
        }
    }

    /// Drops this process's mappings of the pages read so far (they stay in
    /// the page cache, and a later read maps them again): a merge reads
    /// whole segments once, and without this they would all count as its
    /// resident memory. Only a hint: failure is harmless.
    pub fn release_pages(&self) {
        #[cfg(unix)]
        if let Bytes::Mapped(m) = self {
            // SAFETY: `m` is a read-only shared map of a file that is never
            // modified in place (index files are immutable once written), so
            // MADV_DONTNEED changes no byte any reference observes: the next
            // access faults the same contents back in from the file.
            let _ = unsafe { m.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }
}

impl Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.len())
    }
}

/// Writes `bytes` to `name` and makes the file durable (not yet its name).
#[cfg(any(test, feature = "testing"))]
pub fn write_file(storage: &dyn Storage, name: &str, bytes: &[u8]) -> Result<()> {
    let mut f = storage.create(name)?;
    f.write_all(bytes)?;
    f.sync()
}
