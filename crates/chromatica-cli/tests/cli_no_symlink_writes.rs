//! Promise: `search --out` never writes through a symlink planted beside
//! its output (issue 10, item 4): the old fixed temporary name `<out>.tmp`
//! as a link to a file elsewhere leaves that file untouched, and an output
//! path that is itself a link is replaced, not written through. (`--html`
//! writes through the same `chromatica::testing::fsutil::write_atomic`.)
#![cfg(unix)]

use chromatica::vecio::write_fvecs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn ok(args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_chromatica")).args(args).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn search_out_replaces_links_and_never_writes_their_targets() {
    let t = tempfile::tempdir().unwrap();
    let precious = t.path().join("precious");
    std::fs::write(&precious, b"keep").unwrap();
    let idx = t.path().join("idx");
    let vecs = t.path().join("v.fvecs");
    write_fvecs(&vecs, &(0..40).map(|i| i as f32).collect::<Vec<_>>(), 8).unwrap();
    ok(&["create", p(&idx), "--dim", "8", "--nlist", "1", "--m", "2", "--nbits", "2", "--nprobe", "1", "--refine"]);
    ok(&["train", p(&idx), "--vectors", p(&vecs)]);
    ok(&["add", p(&idx), "--vectors", p(&vecs)]);
    let out = t.path().join("ids.ivecs");
    let dist = t.path().join("d.fvecs");
    symlink(&precious, t.path().join("ids.ivecs.tmp")).unwrap();
    symlink(&precious, t.path().join("d.fvecs.tmp")).unwrap();
    symlink(&precious, &dist).unwrap();
    ok(&["search", p(&idx), "--vectors", p(&vecs), "--k", "2", "--out", p(&out), "--distances", p(&dist)]);
    assert_eq!(std::fs::read(&precious).unwrap(), b"keep");
    assert_eq!(std::fs::read(&out).unwrap().len(), 5 * 12);
    assert!(!std::fs::symlink_metadata(&dist).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(&dist).unwrap().len(), 5 * 12);
}
