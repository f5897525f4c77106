//! Promise: on the command line, a damaged newest manifest is never a
//! silent rollback (issue 10, item 7): read-only commands print one warning
//! line naming it, writers fail with one error line naming it, and
//! `chromatica recover` rolls back explicitly, keeping the damaged files.

use chromatica::vecio::write_fvecs;
use std::path::Path;
use std::process::{Command, Output};

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chromatica")).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> (String, String) {
    let o = run(args);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn inspect_warns_add_refuses_and_recover_rolls_back() {
    let t = tempfile::tempdir().unwrap();
    let idx = t.path().join("idx");
    let vecs = t.path().join("v.fvecs");
    write_fvecs(&vecs, &(0..40).map(|i| i as f32).collect::<Vec<_>>(), 8).unwrap();
    ok(&["create", p(&idx), "--dim", "8", "--nlist", "1", "--m", "2", "--nbits", "2", "--nprobe", "1", "--refine"]);
    ok(&["train", p(&idx), "--vectors", p(&vecs)]);
    ok(&["add", p(&idx), "--vectors", p(&vecs)]);
    let manifests = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("MANIFEST-"))
            .collect();
        v.sort();
        v
    };
    let older = manifests(&idx).pop().unwrap();
    let older_bytes = std::fs::read(idx.join(&older)).unwrap();
    ok(&["add", p(&idx), "--vectors", p(&vecs)]); // acknowledged: 10 vectors
    let newest = manifests(&idx).pop().unwrap();
    std::fs::write(idx.join(&older), older_bytes).unwrap(); // the cleanup "never ran"
    let mut b = std::fs::read(idx.join(&newest)).unwrap();
    b[40] ^= 1;
    std::fs::write(idx.join(&newest), b).unwrap();

    let (_, warn) = ok(&["inspect", p(&idx)]);
    assert_eq!(warn.lines().count(), 1, "{warn:?}");
    assert!(warn.starts_with("warning: ") && warn.contains(&newest) && warn.contains("recover"), "{warn}");

    let o = run(&["add", p(&idx), "--vectors", p(&vecs)]);
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(e.lines().count(), 1, "{e:?}");
    assert!(e.contains(&newest) && e.contains("damaged") && e.contains("recover"), "{e}");
    assert!(!run(&["verify", p(&idx)]).status.success());

    let (out, _) = ok(&["recover", p(&idx)]);
    assert!(out.contains(&format!("{newest} -> {newest}.damaged")), "{out}");
    assert!(idx.join(format!("{newest}.damaged")).exists());
    ok(&["verify", p(&idx)]);
    let (_, warn) = ok(&["inspect", p(&idx)]);
    assert!(warn.is_empty(), "{warn}");
    ok(&["add", p(&idx), "--vectors", p(&vecs)]);
    let (out, _) = ok(&["recover", p(&idx)]);
    assert!(out.contains("nothing to recover"), "{out}");
}
