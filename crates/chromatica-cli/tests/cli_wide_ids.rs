//! Promise: `search --vectors` writes every id it can find (issue 10, item
//! 12): `--out ids.npy` holds int64 ids, ids ≥ 2^31 included; `--out
//! ids.ivecs` (int32) refuses an id that does not fit with a one-line error
//! and writes nothing; any other extension is refused before searching.

use chromatica::vecio::write_fvecs;
use std::path::Path;
use std::process::{Command, Output};

const D: usize = 8;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chromatica")).args(args).output().expect("run the chromatica binary")
}

fn ok(args: &[&str]) {
    let o = run(args);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

fn fails(args: &[&str]) -> String {
    let o = run(args);
    assert_eq!(o.status.code(), Some(1), "{args:?} did not fail cleanly");
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(e.lines().count(), 1, "{e:?}");
    e
}

/// A 1-D `<u8` `.npy` of ids, as NumPy writes it.
fn write_ids_npy(path: &Path, ids: &[u64]) {
    chromatica::testing::files::write_npy_1d(path, "<u8", ids.iter().map(|id| id.to_le_bytes()));
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn ids_above_int32_go_to_npy_and_are_refused_by_ivecs() {
    let t = tempfile::tempdir().unwrap();
    let idx = t.path().join("idx");
    let vecs = t.path().join("v.fvecs");
    let data: Vec<f32> = (0..4 * D).map(|i| (i / D) as f32 * 10.0 + (i % D) as f32 * 0.01).collect();
    write_fvecs(&vecs, &data, D).unwrap();
    let ids = t.path().join("ids.npy");
    let wide = [5u64, 1 << 31, (1 << 40) + 7, u64::MAX >> 2];
    write_ids_npy(&ids, &wide);
    ok(&["create", p(&idx), "--dim", "8", "--nlist", "1", "--m", "2", "--nbits", "2", "--nprobe", "1", "--refine"]);
    ok(&["train", p(&idx), "--vectors", p(&vecs)]);
    ok(&["add", p(&idx), "--vectors", p(&vecs), "--ids", p(&ids)]);

    let out = t.path().join("res.npy");
    ok(&["search", p(&idx), "--vectors", p(&vecs), "--k", "1", "--out", p(&out)]);
    let b = std::fs::read(&out).unwrap();
    let end = 10 + u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = String::from_utf8_lossy(&b[10..end]).into_owned();
    assert!(header.contains("'descr': '<i8'") && header.contains("'shape': (4, 1)"), "{header}");
    let got: Vec<u64> = b[end..].chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(got, wide, "each query's nearest neighbour is itself");

    let ivecs = t.path().join("res.ivecs");
    let e = fails(&["search", p(&idx), "--vectors", p(&vecs), "--k", "1", "--out", p(&ivecs)]);
    assert!(e.contains("does not fit") && e.contains(".npy"), "{e}");
    assert!(!ivecs.exists(), "a refused .ivecs was written");

    let e = fails(&["search", p(&idx), "--vectors", p(&vecs), "--k", "1", "--out", p(&t.path().join("r.txt"))]);
    assert!(e.contains(".ivecs") && e.contains(".npy"), "{e}");
    let names: Vec<_> = std::fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!names.iter().any(|n| n.to_string_lossy().contains(".tmp")), "{names:?}");
}
