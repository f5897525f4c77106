//! One error type for the whole crate. Every message is one line that names
//! what was wrong and, where there is one, the file or row.

use std::path::PathBuf;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range (`m` does not divide `dim`, …).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// Caller-supplied data is unusable (wrong dimension, NaN, k = 0, …).
    #[error("invalid input: {0}")]
    InvalidInput(String),

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
    Corrupt { file: String, offset: u64, what: String },

    /// The newest manifest is damaged (a renamed manifest is complete by the
    /// commit protocol, so this is corruption, not a torn write). Writers
    /// refuse: committing on the older state would lose the newer one for
    /// good. `Index::recover` rolls back explicitly.
    #[error(
        "{file}: the newest manifest is damaged ({cause}); writing is refused so that nothing more is lost. \
         `chromatica recover` rolls back to generation {good} and keeps the damaged files aside"
    )]
    DamagedManifest { file: String, cause: String, good: u64 },

    /// An input file (vectors, ids) is malformed.
    #[error("{path}: {what}")]
    BadFile { path: PathBuf, what: String },

    /// A sync failed after a commit became visible, and withdrawing it failed
    /// too: the durable state is unknown until the index is reopened. Every
    /// later write on this handle fails with this error; searches go on.
    #[error("a commit's outcome is unknown after a failed sync ({0}); reopen the index")]
    Poisoned(String),

    /// A commit was refused because the state it would publish fails the
    /// checks open makes (e.g. quantizers with non-finite values): nothing
    /// was committed, the index is as it was.
    #[error("nothing was committed: the new state would not open: {0}")]
    WouldNotOpen(Box<Error>),

    /// An operating-system I/O error, with the path it concerns.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub fn corrupt(file: impl Into<String>, offset: u64, what: impl Into<String>) -> Self {
        Error::Corrupt { file: file.into(), offset, what: what.into() }
    }

    pub fn bad_file(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::BadFile { path: path.into(), what: what.into() }
    }
}
