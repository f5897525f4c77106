//! One error type for the whole crate. Every message is one line that names
//! what was wrong and, where there is one, the file or row.

use std::path::PathBuf;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, one variant per kind a caller may want to
/// tell apart (match the variant, not the message). New kinds may be added,
/// hence `#[non_exhaustive]`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range (`m` does not divide `dim`, …).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// Caller-supplied data is unusable: vectors of the wrong dimension,
    /// non-finite or too-large values, duplicate or unknown ids, a colour
    /// query that does not parse.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A parameter is out of its range (`k = 0`, `nprobe` beyond `nlist`,
    /// no folders given, …). `name` is the parameter as the caller spelled
    /// it (`"k"`, `"nprobe"`, or a command-line flag such as `"--threads"`);
    /// the message is a sentence that names it.
    #[error("invalid argument: {what}")]
    InvalidArgument {
        /// The parameter that was out of range.
        name: &'static str,
        /// What was wrong with it, naming it: "k must be at least 1".
        what: String,
    },

    /// A write (`add`, `delete`, `train`, `compact`, …) on a handle opened
    /// with `Index::open_read_only`. Open it with `Index::open` to write.
    #[error("{0}: index is open read-only")]
    ReadOnly(PathBuf),

    /// A new index was asked for in a directory that already holds other
    /// files (and no index): nothing is written into a user's folder.
    #[error(
        "{0}: exists and is not empty (and is not a chromatica index); give a new or empty directory for the index"
    )]
    DirectoryNotEmpty(PathBuf),

    /// A file in a format, or a variant of one, that this build does not
    /// read: an unknown file extension, a `.npy` dtype or version, an image
    /// format that is not recognised.
    #[error("{path}: {what}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is not supported.
        what: String,
    },

    /// `add` or `search` before `train`.
    #[error("the index is not trained yet: run `train` first")]
    NotTrained,

    /// `train` on an index that already has quantizers.
    #[error("the index is already trained")]
    AlreadyTrained,

    /// The directory holds no index.
    #[error("{0}: not a chromatica index (no manifest found)")]
    NotAnIndex(PathBuf),

    /// `create` on a directory that already holds an index.
    #[error("{0}: an index already exists here")]
    AlreadyExists(PathBuf),

    /// Another process holds the writer lock.
    #[error("{0}: locked by another writer")]
    Locked(PathBuf),

    /// A file of the index fails a checksum or a structural check.
    #[error("{file}: corrupt at byte {offset}: {what}")]
    Corrupt {
        /// The file, as the storage describes it (its path on disk).
        file: String,
        /// Where in the file the check failed.
        offset: u64,
        /// Which check failed.
        what: String,
    },

    /// The newest manifest is damaged (a renamed manifest is complete by the
    /// commit protocol, so this is corruption, not a torn write). Writers
    /// refuse: committing on the older state would lose the newer one for
    /// good. `Index::recover` rolls back explicitly.
    #[error(
        "{file}: the newest manifest is damaged ({cause}); writing is refused so that nothing more is lost. \
         `chromatica recover` rolls back to generation {good} and keeps the damaged files aside"
    )]
    DamagedManifest {
        /// The damaged manifest.
        file: String,
        /// Why it does not load.
        cause: String,
        /// The newest generation that loads, which `recover` rolls back to.
        good: u64,
    },

    /// An input file (vectors, ids) is malformed.
    #[error("{path}: {what}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (and the row, where there is one).
        what: String,
    },

    /// A sync failed after a commit became visible, and withdrawing it failed
    /// too: the durable state is unknown until the index is reopened. Every
    /// later write on this handle fails with this error; searches go on.
    #[error("a commit's outcome is unknown after a failed sync ({0}); reopen the index")]
    Poisoned(String),

    /// Another writer committed the generation this commit was for (object
    /// storage, where writers take no lock and the manifest is published by
    /// a conditional put): nothing was committed; reopen and retry.
    #[error("{0}")]
    Conflict(String),

    /// A commit was refused because the state it would publish fails the
    /// checks open makes (e.g. quantizers with non-finite values): nothing
    /// was committed, the index is as it was.
    #[error("nothing was committed: the new state would not open: {0}")]
    WouldNotOpen(Box<Error>),

    /// An operating-system I/O error, with the path it concerns.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// An [`Error::Io`] on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// An [`Error::Corrupt`] at `offset` of `file`.
    pub fn corrupt(file: impl Into<String>, offset: u64, what: impl Into<String>) -> Self {
        Error::Corrupt { file: file.into(), offset, what: what.into() }
    }

    /// An [`Error::BadFile`]: `path` is malformed, as `what` says.
    pub fn bad_file(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::BadFile { path: path.into(), what: what.into() }
    }

    /// An [`Error::InvalidArgument`]: `what` is a sentence naming `name`.
    pub fn invalid_argument(name: &'static str, what: impl Into<String>) -> Self {
        Error::InvalidArgument { name, what: what.into() }
    }

    /// An [`Error::Unsupported`]: `path` is in a form this build does not read.
    pub fn unsupported(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::Unsupported { path: path.into(), what: what.into() }
    }
}
