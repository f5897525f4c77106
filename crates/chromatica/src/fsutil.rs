//! How this crate touches the filesystem outside the [`Storage`] trait's
//! model, in one place: creating a file never follows a link or reuses an
//! existing name, reading never opens anything but a regular file, and a
//! user's output file is replaced atomically. The index's [`FsStorage`], the
//! vector-file readers and writers and the command line's output files all
//! go through these functions.
//!
//! Why: a directory can hold names planted by someone else. `open(O_CREAT)`
//! on a planted symlink writes through it to the link's target, anywhere the
//! user can write; `open` of a FIFO blocks forever. Creating with
//! `O_CREAT | O_EXCL | O_NOFOLLOW` fails on any existing name, links
//! included, and reading with `O_NONBLOCK` then `fstat` refuses what is not
//! a regular file without waiting on it.
//!
//! [`Storage`]: crate::storage::Storage
//! [`FsStorage`]: crate::storage::FsStorage

use crate::error::{Error, Result};
use crate::storage::Bytes;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;

/// Flags that keep `open` from following a final symlink and from blocking
/// on a FIFO or device.
#[cfg(unix)]
const NO_FOLLOW: i32 = libc::O_NOFOLLOW;
#[cfg(unix)]
const NO_BLOCK: i32 = libc::O_NONBLOCK;

/// Creates `path` for writing; fails if any entry of that name exists,
/// a symlink (dangling or not) included. The error is the OS's
/// `AlreadyExists` (or `ELOOP` on some systems for a link), naming the path.
pub fn create_new(path: &Path) -> Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    o.custom_flags(NO_FOLLOW);
    o.open(path).map_err(|e| Error::io(path, e))
}

/// Opens `path` for reading if it is a regular file. A FIFO, device,
/// socket or directory is refused with "not a regular file" without
/// blocking; symlinks to regular files are followed (reading through them
/// is harmless).
pub fn open_regular(path: &Path) -> Result<File> {
    let mut o = OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    o.custom_flags(NO_BLOCK);
    let file = o.open(path).map_err(|e| Error::io(path, e))?;
    check_regular(&file, path)?;
    // O_NONBLOCK has no effect on a regular file's reads: nothing to undo.
    Ok(file)
}

/// Opens (creating if missing, never truncating) the lock file `path`
/// without following a symlink or blocking on a FIFO; refuses anything but a
/// regular file.
pub fn open_lock_file(path: &Path) -> Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    o.custom_flags(NO_FOLLOW | NO_BLOCK);
    let file = o.open(path).map_err(|e| Error::io(path, e))?;
    check_regular(&file, path)?;
    Ok(file)
}

fn check_regular(file: &File, path: &Path) -> Result<()> {
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::bad_file(path, "not a regular file"));
    }
    Ok(())
}

/// A read-only view of the regular file `path`: memory-mapped, or an empty
/// buffer for an empty file (mmap of length 0 fails on Linux).
///
/// The one memory-mapping function of the crate. Callers read the bytes
/// only through bounds-checked slices and decode values with
/// `from_le_bytes` or zerocopy's unaligned types, so the view is sound as
/// long as nobody truncates the file while it is mapped: index files are
/// immutable once written (the engine only creates and removes them), and
/// input files must not be truncated while a command reads them. A process
/// that truncates a mapped file anyway can raise SIGBUS — the documented
/// contract of memory-mapped stores.
pub fn map_file(path: &Path) -> Result<Bytes> {
    let file = open_regular(path)?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Ok(Bytes::Owned(Default::default()));
    }
    // SAFETY: a read-only map of a regular file that nothing truncates while
    // it is mapped (see above); its bytes are only read through checked slices.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    Ok(Bytes::Mapped(map))
}

/// Makes temporary names unique within the process; the process id makes
/// them unique between processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary name beside `path`: `.<name>.<pid>-<n>.tmp`.
fn temp_beside(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid_argument("path", format!("{}: not a file name", path.display())))?;
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(path.with_file_name(format!(".{}.{}-{n}.tmp", name.to_string_lossy(), std::process::id())))
}

/// Writes `path` atomically: `fill` writes a new temporary file beside it
/// (created with [`create_new`], so never through a planted link), which is
/// synced and renamed over `path`. Renaming replaces a symlink at `path`
/// itself, never its target. On any failure the temporary file is removed
/// and `path` is untouched.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>) -> Result<()> {
    let tmp = temp_beside(path)?;
    // Errors name the file the caller asked for, not the temporary one.
    let file = create_new(&tmp).map_err(|e| match e {
        Error::Io { source, .. } => Error::io(path, source),
        other => other,
    })?;
    let written = (|| {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    })();
    let result = written.and_then(|()| std::fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Writes `contents` to `path` atomically: into a new temporary file beside
/// it, made durable, then renamed over `path`, so that a reader (or a
/// crash) sees the old file or the new one, never part of one. A symbolic
/// link at `path` is replaced, not followed.
pub fn write_atomic_bytes(path: &Path, contents: &[u8]) -> Result<()> {
    write_atomic(path, |w| w.write_all(contents))
}

/// Whether `e` says that a name already exists (how [`create_new`] fails on
/// a planted entry; `ELOOP` is how some systems report a final symlink
/// under `O_NOFOLLOW` even with `O_EXCL`).
pub fn is_already_exists(e: &Error) -> bool {
    match e {
        Error::Io { source, .. } => {
            source.kind() == std::io::ErrorKind::AlreadyExists || {
                #[cfg(unix)]
                {
                    source.raw_os_error() == Some(libc::ELOOP)
                }
                #[cfg(not(unix))]
                {
                    false
                }
            }
        }
        _ => false,
    }
}
