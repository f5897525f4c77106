//! The real backend: one directory on the local filesystem.

use super::{Bytes, Storage, StorageFile};
use crate::error::{Error, Result};
use crate::fsutil;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug)]
pub struct FsStorage {
    dir: PathBuf,
}

impl FsStorage {
    /// A backend over an existing directory.
    pub fn new(dir: impl Into<PathBuf>) -> FsStorage {
        FsStorage { dir: dir.into() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

struct FsFile {
    file: File,
    path: PathBuf,
}

impl StorageFile for FsFile {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        self.file.write_all(buf).map_err(|e| Error::io(&self.path, e))
    }
    fn sync(&mut self) -> Result<()> {
        self.file.sync_all().map_err(|e| Error::io(&self.path, e))
    }
}

use super::LOCK_FILE;

impl Storage for FsStorage {
    fn create(&self, name: &str) -> Result<Box<dyn StorageFile>> {
        let path = self.path(name);
        let file = fsutil::create_new(&path)?;
        Ok(Box::new(FsFile { file, path }))
    }

    fn map(&self, name: &str) -> Result<Bytes> {
        // Index files are immutable once written: the engine never writes
        // to a file after it is committed (see `fsutil::map_file`).
        fsutil::map_file(&self.path(name))
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        std::fs::rename(self.path(from), self.path(to)).map_err(|e| Error::io(self.path(from), e))
    }

    fn remove(&self, name: &str) -> Result<()> {
        std::fs::remove_file(self.path(name)).map_err(|e| Error::io(self.path(name), e))
    }

    fn list(&self) -> Result<Vec<String>> {
        let rd = std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let mut names = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            // Directories are never files of an index, whatever their name:
            // they are neither read nor removed. (`file_type` does not follow
            // symlinks: a link is listed, and removing it removes the link.)
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if let Some(n) = entry.file_name().to_str() {
                names.push(n.to_owned());
            }
        }
        Ok(names)
    }

    fn sync_dir(&self) -> Result<()> {
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(&self.dir, e))
    }

    fn lock_writer(&self) -> Result<Box<dyn Send + Sync>> {
        let path = self.path(LOCK_FILE);
        let file = fsutil::open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(self.dir.clone())),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }

    fn describe(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}
