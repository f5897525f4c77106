//! Promise: the engine removes only names the format owns, never a user's
//! file or any directory, and `create` refuses a folder that holds anything
//! (issue 10, item 10).

use chromatica::testing::SnapshotInternals;
use chromatica::{Config, Index};
use std::path::{Path, PathBuf};

fn config() -> Config {
    Config { dim: 8, nlist: 2, m: 2, nbits: 4, nprobe: 1, refine: true, ..Config::default() }
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("V");
    (t, dir)
}

#[test]
fn writers_remove_only_the_formats_leftovers_and_skip_directories() {
    let (_t, dir) = setup();
    let index = Index::create(&dir, config()).unwrap();
    index.add(&[0.5; 8], None).unwrap();
    drop(index);
    let g = Index::open_read_only(&dir).unwrap().snapshot().manifest().generation;
    // A user's files, and directories with names of ours.
    std::fs::write(dir.join("notes.tmp"), b"mine").unwrap();
    std::fs::write(dir.join("0000000000000001.seg.tmp"), b"mine too").unwrap();
    std::fs::create_dir(dir.join("x.tmp")).unwrap();
    std::fs::create_dir(dir.join(format!("MANIFEST-{:016x}.tmp", g + 1))).unwrap();
    std::fs::create_dir(dir.join(format!("{:016x}.seg", 77))).unwrap();
    std::fs::create_dir(dir.join(format!("MANIFEST-{:016x}", g + 5))).unwrap();
    // Real leftovers of ours: removed.
    std::fs::write(dir.join(format!("MANIFEST-{:016x}.tmp", g)), b"torn").unwrap();
    std::fs::write(dir.join(format!("{:016x}.del", 78)), b"orphan").unwrap();
    let index = Index::open(&dir).unwrap();
    index.add(&[0.25; 8], None).unwrap();
    assert_eq!(index.len(), 2);
    let now = files(&dir);
    for kept in ["notes.tmp", "0000000000000001.seg.tmp", "x.tmp"] {
        assert!(now.iter().any(|n| n == kept), "{kept} was removed: {now:?}");
    }
    assert!(dir.join(format!("{:016x}.seg", 77)).is_dir());
    assert!(dir.join(format!("MANIFEST-{:016x}", g + 5)).is_dir());
    assert!(!now.iter().any(|n| n == &format!("{:016x}.del", 78)), "a leftover of ours stayed: {now:?}");
    drop(index);
    Index::verify(&dir).unwrap();
}

#[test]
fn create_refuses_a_non_empty_folder_that_is_not_an_index() {
    let (_t, dir) = setup();
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("holiday.jpg"), b"photo").unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    let e = Index::create(&dir, config()).err().expect("create in a user's folder must fail").to_string();
    assert!(e.contains("not empty"), "{e}");
    assert_eq!(files(&dir), ["holiday.jpg", "sub"], "create wrote into the folder");
    // Only a subdirectory is as much "not empty".
    std::fs::remove_file(dir.join("holiday.jpg")).unwrap();
    assert!(Index::create(&dir, config()).is_err());
    assert_eq!(files(&dir), ["sub"]);
}
