//! An in-memory model of a directory that keeps apart what was written from
//! what is durable, so tests can crash it at any point and fail any call.

use super::{Bytes, Storage, StorageFile};
use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One file's contents: everything written, and the prefix made durable.
#[derive(Default, Debug)]
struct Inode {
    written: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Default, Debug)]
struct State {
    inodes: Vec<Inode>,
    /// Names as the running process sees them.
    names: BTreeMap<String, usize>,
    /// Names as they would be found after a crash.
    durable_names: BTreeMap<String, usize>,
    /// Counts write and sync calls; see [`MemStorage::fail_at`].
    ops: u64,
    fail_at: Option<u64>,
    /// Counts sync calls (file and directory); see [`MemStorage::crash_at_sync`].
    syncs: u64,
    crash_at_sync: Option<u64>,
    /// Set by a simulated crash: every call fails until `revive`.
    dead: bool,
    locked: bool,
}

/// In-memory [`Storage`] with crash simulation and injected I/O errors.
#[derive(Clone, Default, Debug)]
pub struct MemStorage {
    state: Arc<Mutex<State>>,
}

impl MemStorage {
    /// An empty directory.
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// Forgets everything that was not durable, as a power cut would: file
    /// bytes beyond their last sync, and names created, renamed or removed
    /// since the last directory sync.
    pub fn crash(&self) {
        lose_undurable(&mut self.state.lock());
    }

    /// Simulates a power cut at the `n`-th sync call from now on (0-based,
    /// file and directory syncs alike): that sync does not happen, everything
    /// not yet durable is lost as with [`MemStorage::crash`], and every later
    /// call fails until [`MemStorage::revive`] — the process is "dead".
    pub fn crash_at_sync(&self, n: Option<u64>) {
        let mut s = self.state.lock();
        s.crash_at_sync = n.map(|n| s.syncs + n);
    }

    /// Number of sync calls so far: the crash points of a workload.
    pub fn syncs(&self) -> u64 {
        self.state.lock().syncs
    }

    /// Whether a simulated crash has happened and not been revived.
    pub fn is_dead(&self) -> bool {
        self.state.lock().dead
    }

    /// Starts a "new process" after a simulated crash: calls work again.
    pub fn revive(&self) {
        let mut s = self.state.lock();
        s.dead = false;
        s.crash_at_sync = None;
    }

    /// Makes the `n`-th write or sync call from now on (0-based) fail with an
    /// I/O error; `None` turns injection off.
    pub fn fail_at(&self, n: Option<u64>) {
        let mut s = self.state.lock();
        s.fail_at = n.map(|n| s.ops + n);
    }

    /// Number of write and sync calls made so far.
    pub fn ops(&self) -> u64 {
        self.state.lock().ops
    }

    /// Flips one bit of a file (for corruption tests).
    pub fn flip_bit(&self, name: &str, byte: usize, bit: u8) {
        let mut s = self.state.lock();
        let id = s.names[name];
        let inode = &mut s.inodes[id];
        inode.written[byte] ^= 1 << bit;
        inode.durable = inode.written.clone();
    }

    /// Current contents of a file, if it exists.
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        let s = self.state.lock();
        s.names.get(name).map(|&id| s.inodes[id].written.clone())
    }
}

fn lose_undurable(s: &mut State) {
    s.names = s.durable_names.clone();
    for inode in &mut s.inodes {
        inode.written = inode.durable.clone();
    }
    s.locked = false;
}

fn dead(what: &str) -> Error {
    Error::io(format!("mem:{what}"), std::io::Error::other("simulated crash: the process is dead"))
}

/// Counts a sync; at the chosen one, crashes instead.
fn sync_point(s: &mut State, what: &str) -> Result<()> {
    tick(s, what)?;
    let n = s.syncs;
    s.syncs += 1;
    if s.crash_at_sync == Some(n) {
        lose_undurable(s);
        s.dead = true;
        return Err(dead(what));
    }
    Ok(())
}

fn tick(s: &mut State, what: &str) -> Result<()> {
    if s.dead {
        return Err(dead(what));
    }
    let n = s.ops;
    s.ops += 1;
    if s.fail_at == Some(n) {
        return Err(Error::io(
            format!("mem:{what}"),
            std::io::Error::other(format!("injected I/O error at operation {n}")),
        ));
    }
    Ok(())
}

struct MemFile {
    state: Arc<Mutex<State>>,
    inode: usize,
    name: String,
}

impl StorageFile for MemFile {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        let mut s = self.state.lock();
        tick(&mut s, &self.name)?;
        s.inodes[self.inode].written.extend_from_slice(buf);
        Ok(())
    }
    fn sync(&mut self) -> Result<()> {
        let mut s = self.state.lock();
        sync_point(&mut s, &self.name)?;
        let inode = &mut s.inodes[self.inode];
        inode.durable = inode.written.clone();
        Ok(())
    }
}

fn not_found(name: &str) -> Error {
    Error::io(format!("mem:{name}"), std::io::ErrorKind::NotFound.into())
}

impl Storage for MemStorage {
    fn create(&self, name: &str) -> Result<Box<dyn StorageFile>> {
        let mut s = self.state.lock();
        tick(&mut s, name)?;
        if s.names.contains_key(name) {
            return Err(Error::io(format!("mem:{name}"), std::io::ErrorKind::AlreadyExists.into()));
        }
        s.inodes.push(Inode::default());
        let inode = s.inodes.len() - 1;
        s.names.insert(name.to_owned(), inode);
        Ok(Box::new(MemFile { state: self.state.clone(), inode, name: name.to_owned() }))
    }

    fn map(&self, name: &str) -> Result<Bytes> {
        let s = self.state.lock();
        if s.dead {
            return Err(dead(name));
        }
        let id = *s.names.get(name).ok_or_else(|| not_found(name))?;
        Ok(Bytes::Owned(Arc::new(s.inodes[id].written.clone())))
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let mut s = self.state.lock();
        tick(&mut s, from)?;
        let id = s.names.remove(from).ok_or_else(|| not_found(from))?;
        s.names.insert(to.to_owned(), id);
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<()> {
        let mut s = self.state.lock();
        tick(&mut s, name)?;
        s.names.remove(name).map(|_| ()).ok_or_else(|| not_found(name))
    }

    fn list(&self) -> Result<Vec<String>> {
        Ok(self.state.lock().names.keys().cloned().collect())
    }

    fn sync_dir(&self) -> Result<()> {
        let mut s = self.state.lock();
        sync_point(&mut s, "dir")?;
        s.durable_names = s.names.clone();
        Ok(())
    }

    fn lock_writer(&self) -> Result<Box<dyn Send + Sync>> {
        let mut s = self.state.lock();
        if s.locked {
            return Err(Error::Locked("mem:".into()));
        }
        s.locked = true;
        Ok(Box::new(MemLock(self.state.clone())))
    }

    fn describe(&self, name: &str) -> String {
        format!("mem:{name}")
    }
}

struct MemLock(Arc<Mutex<State>>);

impl Drop for MemLock {
    fn drop(&mut self) {
        self.0.lock().locked = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::write_file;

    #[test]
    fn crash_keeps_only_durable_state() {
        let m = MemStorage::new();
        write_file(&m, "a", b"hello").unwrap();
        m.sync_dir().unwrap();
        let mut f = m.create("b").unwrap();
        f.write_all(b"lost").unwrap(); // never synced, name never synced
        let mut g = m.create("a.tmp").unwrap();
        g.write_all(b"new").unwrap();
        g.sync().unwrap();
        m.rename("a.tmp", "a").unwrap(); // rename not made durable
        m.crash();
        assert_eq!(m.contents("a").unwrap(), b"hello");
        assert!(m.contents("b").is_none());
        assert!(m.contents("a.tmp").is_none());
    }

    #[test]
    fn unsynced_bytes_are_lost_but_names_survive_dir_sync() {
        let m = MemStorage::new();
        let mut f = m.create("x").unwrap();
        f.write_all(b"abc").unwrap();
        f.sync().unwrap();
        f.write_all(b"def").unwrap();
        m.sync_dir().unwrap();
        m.crash();
        assert_eq!(m.contents("x").unwrap(), b"abc");
    }

    #[test]
    fn injected_failure_hits_the_chosen_call() {
        let m = MemStorage::new();
        m.fail_at(Some(1));
        let mut f = m.create("x").unwrap(); // op 0
        assert!(f.write_all(b"a").unwrap_err().to_string().contains("injected"));
        f.write_all(b"b").unwrap();
    }

    #[test]
    fn crash_at_sync_loses_the_unsynced_and_kills_the_process() {
        let m = MemStorage::new();
        write_file(&m, "a", b"durable").unwrap(); // sync 0
        m.sync_dir().unwrap(); // sync 1
        m.crash_at_sync(Some(1));
        let mut f = m.create("b").unwrap();
        f.write_all(b"x").unwrap();
        f.sync().unwrap(); // sync 2: happens
        assert!(m.sync_dir().unwrap_err().to_string().contains("simulated crash")); // sync 3: crash
        assert!(m.is_dead());
        assert!(m.create("c").is_err());
        m.revive();
        assert_eq!(m.contents("a").unwrap(), b"durable");
        assert!(m.contents("b").is_none(), "b's name was never made durable");
        assert_eq!(m.syncs(), 4);
    }

    #[test]
    fn writer_lock_is_exclusive() {
        let m = MemStorage::new();
        let g = m.lock_writer().unwrap();
        assert!(matches!(m.lock_writer(), Err(Error::Locked(_))));
        drop(g);
        m.lock_writer().unwrap();
    }
}
