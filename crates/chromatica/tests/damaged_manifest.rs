//! Promise: a damaged newest manifest never silently rolls the index back
//! (issue 10, item 7). With two manifests present (a writer killed between
//! its commit and the cleanup leaves both), every byte flip of the newer one
//! makes writers refuse with an error naming it, read-only opens show the
//! older state with a warning, and only an explicit `recover` rolls back,
//! keeping the damaged files aside; the lost generation's file numbers are
//! never reused.

use chromatica::testing::storage::{MemStorage, Storage};
use chromatica::testing::{IndexInternals, SnapshotInternals};
use chromatica::{Config, Error, Index};
use std::path::PathBuf;
use std::sync::Arc;

const DIM: usize = 8;

fn config() -> Config {
    Config { dim: DIM, nlist: 2, m: 2, nbits: 4, nprobe: 1, refine: true, ..Config::default() }
}

fn rows(n: usize, seed: usize) -> Vec<f32> {
    (0..n * DIM).map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0).collect()
}

fn manifest(g: u64) -> String {
    format!("MANIFEST-{g:016x}")
}

/// An index at generation G+1 whose retired manifest G is still present,
/// as a writer killed right after its commit leaves it. Returns the storage
/// and G+1.
fn two_manifests() -> (MemStorage, u64) {
    let m = MemStorage::new();
    let index = Index::create_in(PathBuf::from("mem"), Arc::new(m.clone()), config()).unwrap();
    index.add(&rows(5, 1), None).unwrap();
    let older = m.contents(&manifest(index.snapshot().manifest().generation)).unwrap();
    let old_gen = index.snapshot().manifest().generation;
    index.add(&rows(7, 2), None).unwrap(); // the acknowledged add
    let g = index.snapshot().manifest().generation;
    drop(index);
    assert_eq!(g, old_gen + 1);
    // Put the retired manifest back, as if the cleanup never ran.
    chromatica::testing::storage::write_file(&m, &manifest(old_gen), &older).unwrap();
    m.sync_dir().unwrap();
    (m, g)
}

fn open(m: &MemStorage, writable: bool) -> chromatica::Result<Index> {
    Index::open_in(PathBuf::from("mem"), Arc::new(m.clone()), writable)
}

#[test]
fn every_flip_of_the_newest_manifest_refuses_writers_and_warns_readers() {
    let (pristine, g) = two_manifests();
    let len = pristine.contents(&manifest(g)).unwrap().len();
    let mut cases = 0;
    for byte in 0..len {
        let m = MemStorage::new();
        for name in pristine.list().unwrap() {
            chromatica::testing::storage::write_file(&m, &name, &pristine.contents(&name).unwrap()).unwrap();
        }
        m.sync_dir().unwrap();
        m.flip_bit(&manifest(g), byte, (byte % 8) as u8);
        let before: Vec<(String, Vec<u8>)> =
            m.list().unwrap().into_iter().map(|n| (n.clone(), m.contents(&n).unwrap())).collect();

        let e = open(&m, true).err().unwrap_or_else(|| panic!("byte {byte}: a writer opened over a damaged manifest"));
        assert!(matches!(e, Error::DamagedManifest { .. }), "byte {byte}: {e}");
        let msg = e.to_string();
        assert!(!msg.contains('\n') && msg.contains(&manifest(g)) && msg.contains("recover"), "byte {byte}: {msg}");
        let after: Vec<(String, Vec<u8>)> =
            m.list().unwrap().into_iter().map(|n| (n.clone(), m.contents(&n).unwrap())).collect();
        assert_eq!(before, after, "byte {byte}: the refused writer open changed the directory");

        let reader = open(&m, false).unwrap();
        assert_eq!(reader.len(), 5, "byte {byte}: readers show the older state");
        let w = reader.warnings();
        assert_eq!(w.len(), 1, "byte {byte}: {w:?}");
        assert!(w[0].contains(&manifest(g)) && w[0].contains("recover") && !w[0].contains('\n'), "{}", w[0]);
        cases += 1;
    }
    assert_eq!(cases, len);
}

#[test]
fn recover_rolls_back_explicitly_and_keeps_the_damaged_files_aside() {
    let (m, g) = two_manifests();
    let newest = m.contents(&manifest(g)).unwrap();
    let seg_of_lost = {
        let r = open(&m, false).unwrap();
        r.snapshot().manifest().segments.last().unwrap().file
    };
    m.flip_bit(&manifest(g), 30, 0);
    let report = Index::recover_in(&m).unwrap();
    // The older state, committed anew past the lost generation.
    assert_eq!(report.generation, g + 1);
    let moved: Vec<&str> = report.moved_aside.iter().map(|(from, _)| from.as_str()).collect();
    assert!(moved.contains(&manifest(g).as_str()), "{moved:?}");
    let seg = format!("{seg_of_lost:016x}.seg");
    assert!(moved.contains(&seg.as_str()), "the lost generation's segment was not kept aside: {moved:?}");
    // Kept, byte for byte (the flip included), under the new names.
    let mut damaged = newest.clone();
    damaged[30] ^= 1;
    assert_eq!(m.contents(&format!("{}.damaged", manifest(g))).unwrap(), damaged);
    assert!(m.contents(&format!("{seg}.damaged")).is_some());

    // Now writers work again, on the older state, and never reuse the
    // lost generation's file numbers.
    let index = open(&m, true).unwrap();
    assert!(index.warnings().is_empty());
    assert_eq!(index.len(), 5);
    let r = index.add(&rows(3, 3), None).unwrap();
    assert_ne!(r.segments[0], seg_of_lost);
    assert!(m.contents(&format!("{seg}.damaged")).is_some(), "the writer open removed a kept file");
    drop(index);
    assert_eq!(open(&m, true).unwrap().len(), 8);
    // Nothing damaged any more: recover changes nothing.
    assert!(Index::recover_in(&m).unwrap().moved_aside.is_empty());
}

#[test]
fn recover_on_disk_and_verify_say_the_same() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("idx");
    let index = Index::create(&dir, config()).unwrap();
    index.add(&rows(5, 1), None).unwrap();
    let old = index.snapshot().manifest().generation;
    let older = std::fs::read(dir.join(manifest(old))).unwrap();
    index.add(&rows(7, 2), None).unwrap();
    let g = index.snapshot().manifest().generation;
    drop(index);
    std::fs::write(dir.join(manifest(old)), older).unwrap();
    let mut bytes = std::fs::read(dir.join(manifest(g))).unwrap();
    bytes[60] ^= 4;
    std::fs::write(dir.join(manifest(g)), bytes).unwrap();
    let e = Index::verify(&dir).unwrap_err().to_string();
    assert!(e.contains(&manifest(g)), "{e}");
    assert!(matches!(Index::open(&dir), Err(Error::DamagedManifest { .. })));
    Index::recover(&dir).unwrap();
    Index::verify(&dir).unwrap();
    assert_eq!(Index::open(&dir).unwrap().len(), 5);
    assert!(dir.join(format!("{}.damaged", manifest(g))).exists());
}
