//! Integration tests of the `chromatica` binary: the whole vector workflow,
//! presets, and every error path (one line on stderr, non-zero exit, nothing
//! written). The golden index of format version 1 is `compat_v1.rs`.

mod common;

use chromatica::testing::{data::*, files::*, reference::*};
use chromatica::vecio::{write_fvecs, write_npy_f32, VectorFile};
use chromatica::{Index, SearchParams};
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const D: usize = 16;

fn inspect_json(dir: &Path) -> Value {
    let (so, _) = ok(&["inspect", p(dir), "--json"]);
    serde_json::from_str(&so).unwrap_or_else(|e| panic!("inspect --json is not JSON ({e}): {so}"))
}

/// An index created and trained through the CLI in `root/idx`, with 1000
/// vectors added (ids 0..1000). dim 16, nlist 8, m 4, nbits 8, nprobe 4.
fn trained_index(root: &Path) -> PathBuf {
    let idx = root.join("idx");
    let train = root.join("train.fvecs");
    write_fvecs(&train, &clustered(2000, D, 1), D).unwrap();
    ok(&["create", p(&idx), "--dim", "16", "--nlist", "8", "--m", "4", "--nbits", "8", "--nprobe", "4"]);
    ok(&["train", p(&idx), "--vectors", p(&train), "--seed", "3"]);
    let base = root.join("base.npy");
    write_npy_f32(&base, &clustered(1000, D, 2), D).unwrap();
    ok(&["add", p(&idx), "--vectors", p(&base)]);
    idx
}

// ---------------------------------------------------------------- workflow

#[test]
fn full_workflow() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let idx = root.join("idx");
    let (so, _) = ok(&["create", p(&idx), "--dim", "16", "--nlist", "8", "--m", "4", "--nbits", "8", "--nprobe", "4"]);
    assert!(so.contains("nlist 8, m 4, nbits 8 (4 bytes per code), nprobe 4"), "{so}");
    let untrained = inspect_json(&idx);
    assert_eq!(untrained["trained"], json!(false));
    assert_eq!(untrained["vectors"], json!(0));

    let train = root.join("train.fvecs");
    write_fvecs(&train, &clustered(2000, D, 1), D).unwrap();
    let (so, se) = ok(&["train", p(&idx), "--vectors", p(&train), "--seed", "3"]);
    assert!(so.contains("trained on 2000 vectors"), "{so}");
    // 2000 points are few for 2^8 PQ centroids: 256 × 39 = 9984 recommended.
    assert!(se.lines().all(|l| l.starts_with("warning: ")), "{se}");
    assert!(se.contains("9984"), "{se}");

    let base = root.join("base.npy");
    let base_data = clustered(1500, D, 2);
    write_npy_f32(&base, &base_data, D).unwrap();
    let (so, _) = ok(&["add", p(&idx), "--vectors", p(&base)]);
    assert!(so.contains("added 1500 vectors (ids 0..1500)"), "{so}");

    let more = root.join("more.npy");
    write_npy_f32(&more, &clustered(300, D, 3), D).unwrap();
    let ids = root.join("ids.npy");
    write_npy_i64(&ids, &(5000..5300).rev().collect::<Vec<i64>>());
    let (so, _) = ok(&["add", p(&idx), "--vectors", p(&more), "--ids", p(&ids)]);
    assert!(so.contains("added 300 vectors (ids 5000..5300)") && so.contains("index holds 1800"), "{so}");

    // Search: shapes, sorted distances, and the same answers as the library.
    let nq = 25;
    let queries = root.join("q.fvecs");
    let qdata = clustered(nq, D, 4);
    write_fvecs(&queries, &qdata, D).unwrap();
    let (res, dist) = (root.join("res.ivecs"), root.join("d.fvecs"));
    ok(&["search", p(&idx), "--vectors", p(&queries), "--k", "10", "--out", p(&res), "--distances", p(&dist)]);
    let (rows, k, got_ids) = read_ivecs(&res);
    assert_eq!((rows, k), (nq, 10));
    let dfile = VectorFile::open(&dist).unwrap();
    assert_eq!((dfile.len(), dfile.dim()), (nq, 10));
    let got_d = dfile.read_all().unwrap();
    let lib = Index::open_read_only(&idx).unwrap();
    let want = lib.search(&qdata, &SearchParams::new(10)).unwrap();
    for (q, w) in want.iter().enumerate() {
        let ids: Vec<i32> = w.iter().map(|n| n.id as i32).collect();
        let ds: Vec<f32> = w.iter().map(|n| n.distance).collect();
        assert_eq!(&got_ids[q * 10..(q + 1) * 10], &ids[..], "query {q}");
        assert_eq!(&got_d[q * 10..(q + 1) * 10], &ds[..], "query {q}");
        assert!(ds.windows(2).all(|w| w[0] <= w[1]));
    }
    for &id in &got_ids {
        assert!((0..1500).contains(&id) || (5000..5300).contains(&id), "unknown id {id}");
    }
    // Recall of the CLI's answers is that of the engine.
    let mut truth_base = base_data.clone();
    truth_base.extend_from_slice(&clustered(300, D, 3));
    let truth = exact_knn(&truth_base, &qdata, D, 10);
    let truth: Vec<Vec<u64>> = truth
        .into_iter()
        .map(|r| r.into_iter().map(|i| if i < 1500 { i } else { 5000 + 299 - (i - 1500) }).collect())
        .collect();
    let r = recall(&want, &truth, 10);
    eprintln!("recall@10 (dim 16, m 4, nbits 8, nprobe 4 of 8): {r:.3}");
    // Measured 0.840.
    assert!(r >= 0.7, "recall@10 through the CLI data path is {r}");

    // k beyond the index: every vector.
    let (res2, dist2) = (root.join("all.ivecs"), root.join("all.fvecs"));
    ok(&[
        "search",
        p(&idx),
        "--vectors",
        p(&queries),
        "--k",
        "1810",
        "--nprobe",
        "8",
        "--threads",
        "2",
        "--out",
        p(&res2),
        "--distances",
        p(&dist2),
    ]);
    let (rows, k, all_ids) = read_ivecs(&res2);
    // k is capped at the 1800 live vectors: one column each.
    assert_eq!((rows, k), (nq, 1800));
    let all_d = VectorFile::open(&dist2).unwrap().read_all().unwrap();
    for q in 0..nq {
        let row = &all_ids[q * k..(q + 1) * k];
        let drow = &all_d[q * k..(q + 1) * k];
        assert!(row.iter().all(|&i| i >= 0), "query {q}");
        assert!(drow.iter().all(|d| d.is_finite()));
        assert!(drow[..1800].windows(2).all(|w| w[0] <= w[1]), "query {q}: not sorted");
        let mut sorted = row[..1800].to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 1800, "query {q}: repeated ids");
    }

    // inspect --json.
    let j = inspect_json(&idx);
    assert_eq!(j["vectors"], json!(1800));
    assert_eq!(j["deleted"], json!(0));
    assert_eq!(j["trained"], json!(true));
    let segs = j["segments"].as_array().expect("segments is an array");
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[0]["vectors"], json!(1500));
    assert_eq!(segs[1]["vectors"], json!(300));
    let mut seg_bytes = 0;
    for s in segs {
        assert!(s["bytes"].as_u64().unwrap() > 0);
        seg_bytes += s["bytes"].as_u64().unwrap();
    }
    assert!(j["lists"].is_object());
    assert_eq!(j["lists"]["nlist"], json!(8));
    assert!(j["memory"].is_object());
    assert_eq!(j["memory"]["code_bytes"], json!(1800 * 4));
    let disk = &j["disk_bytes"];
    for key in ["codes", "ids", "quantizers", "refine", "metadata"] {
        assert!(disk[key].is_u64(), "disk_bytes.{key} missing: {disk}");
    }
    let parts: u64 =
        ["codes", "ids", "quantizers", "refine", "metadata"].iter().map(|k| disk[*k].as_u64().unwrap()).sum();
    assert_eq!(disk["total"].as_u64().unwrap(), parts);
    assert_eq!(disk["codes"], json!(1800 * 4));
    assert_eq!(disk["ids"], json!(1800 * 4));
    assert!(parts > seg_bytes);
    let files: u64 = std::fs::read_dir(&idx)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "LOCK")
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert_eq!(parts, files, "disk_bytes total is not the size of the index files");
    let (human, _) = ok(&["inspect", p(&idx)]);
    assert!(human.contains("1800 live"), "{human}");
}

#[test]
fn ivecs_ids_and_nprobe_override() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = trained_index(tmp.path());
    // Ids from an .ivecs file (one per row).
    let ids = tmp.path().join("ids.ivecs");
    chromatica::vecio::write_ivecs(&ids, &[700_000, 1003, 2_000_000], 1).unwrap();
    let v = tmp.path().join("three.fvecs");
    let three = clustered(3, D, 9);
    write_fvecs(&v, &three, D).unwrap();
    ok(&["add", p(&idx), "--vectors", p(&v), "--ids", p(&ids)]);
    let j = inspect_json(&idx);
    assert_eq!(j["vectors"], json!(1003));
    assert_eq!(j["next_id"], json!(2_000_001));
    // Each added vector finds itself with every list probed.
    let out = tmp.path().join("r.ivecs");
    ok(&["search", p(&idx), "--vectors", p(&v), "--k", "1", "--nprobe", "8", "--out", p(&out)]);
    let (_, _, got) = read_ivecs(&out);
    assert_eq!(got, vec![700_000, 1003, 2_000_000]);
    // And a default-id add continues from the largest.
    let (so, _) = ok(&["add", p(&idx), "--vectors", p(&v)]);
    assert!(so.contains("ids 2000001..2000004"), "{so}");
}

#[test]
fn presets() {
    let tmp = tempfile::tempdir().unwrap();
    let speed = tmp.path().join("speed");
    ok(&["create", p(&speed), "--preset", "speed"]);
    let c = &inspect_json(&speed)["config"];
    assert_eq!((c["m"].clone(), c["nbits"].clone(), c["nlist"].clone()), (json!(4), json!(6), json!(50)));
    assert_eq!((c["nprobe"].clone(), c["dim"].clone()), (json!(5), json!(1152)));
    assert_eq!(inspect_json(&speed)["code_size"], json!(3));

    let accuracy = tmp.path().join("accuracy");
    ok(&["create", p(&accuracy), "--preset", "accuracy", "--dim", "64"]);
    let c = &inspect_json(&accuracy)["config"];
    assert_eq!((c["m"].clone(), c["nbits"].clone(), c["nlist"].clone()), (json!(16), json!(8), json!(200)));
    assert_eq!(c["dim"], json!(64));

    let default = tmp.path().join("default");
    ok(&["create", p(&default)]);
    let c = &inspect_json(&default)["config"];
    assert_eq!((c["m"].clone(), c["nbits"].clone(), c["nlist"].clone()), (json!(8), json!(8), json!(100)));
    // Flags override the preset.
    let mixed = tmp.path().join("mixed");
    ok(&["create", p(&mixed), "--preset", "speed", "--nlist", "10", "--nprobe", "10"]);
    let c = &inspect_json(&mixed)["config"];
    assert_eq!((c["m"].clone(), c["nlist"].clone(), c["nprobe"].clone()), (json!(4), json!(10), json!(10)));
    // A preset's nprobe above a smaller nlist is refused as a config error.
    fails_with(&["create", p(&tmp.path().join("bad")), "--preset", "speed", "--nlist", "4"], "nprobe");
    assert!(!tmp.path().join("bad").exists());
}

// ------------------------------------------------------------------ errors

/// `args` must fail (one line, "error:"), contain `want`, and leave `dir`
/// exactly as it was; `outputs` must not exist afterwards.
fn fails_cleanly(args: &[&str], want: &str, dir: &Path, outputs: &[&Path]) {
    let before = dir_contents(dir);
    let line = fails_with(args, want);
    assert_eq!(dir_contents(dir), before, "{args:?} ({line}) changed {}", dir.display());
    for o in outputs {
        assert!(!o.exists(), "{args:?} ({line}) wrote {}", o.display());
        let mut tmp = o.as_os_str().to_owned();
        tmp.push(".tmp");
        assert!(!Path::new(&tmp).exists(), "{args:?} left a temporary output");
    }
}

#[test]
fn bad_inputs_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let idx = trained_index(root);
    let i = p(&idx);
    let vectors_before = inspect_json(&idx)["vectors"].clone();
    assert_eq!(vectors_before, json!(1000));
    let good = root.join("good.fvecs");
    write_fvecs(&good, &clustered(50, D, 5), D).unwrap();
    let out = root.join("out.ivecs");
    let dist = root.join("out.fvecs");
    let o = [out.as_path(), dist.as_path()];
    let (o_s, d_s) = (p(&out), p(&dist));
    let search = |v: &Path, extra: &[&str]| -> Vec<String> {
        let mut a = vec!["search", i, "--vectors", p(v), "--out", o_s, "--distances", d_s];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect()
    };
    let add = |v: &Path, extra: &[&str]| -> Vec<String> {
        let mut a = vec!["add", i, "--vectors", p(v)];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect()
    };
    let check = |args: Vec<String>, want: &str| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_cleanly(&a, want, &idx, &o);
    };

    // Wrong dimension (add, search, train).
    let dim8 = root.join("dim8.fvecs");
    write_fvecs(&dim8, &clustered(20, 8, 6), 8).unwrap();
    check(add(&dim8, &[]), "dimension 8");
    check(search(&dim8, &["--k", "5"]), "dimension 8, the index has dimension 16");
    // NaN in one row of the add file: nothing added.
    let mut nan = clustered(300, D, 7);
    nan[277 * D + 4] = f32::NAN;
    let nan_npy = root.join("nan.npy");
    write_npy_f32(&nan_npy, &nan, D).unwrap();
    check(add(&nan_npy, &[]), "row 277");
    assert_eq!(inspect_json(&idx)["vectors"], vectors_before);
    let nan_q = root.join("nanq.fvecs");
    write_fvecs(&nan_q, &nan[270 * D..280 * D], D).unwrap();
    check(search(&nan_q, &["--k", "5"]), "row 7");
    // Truncated .fvecs.
    let trunc = root.join("trunc.fvecs");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&trunc, &bytes[..bytes.len() - 10]).unwrap();
    check(add(&trunc, &[]), "trunc.fvecs");
    check(search(&trunc, &["--k", "5"]), "trunc.fvecs");
    // Empty files.
    let empty = root.join("empty.fvecs");
    std::fs::write(&empty, b"").unwrap();
    check(add(&empty, &[]), "empty file");
    let empty_npy = root.join("empty.npy");
    std::fs::write(&empty_npy, b"").unwrap();
    check(search(&empty_npy, &["--k", "5"]), "empty file");
    // Malformed .npy.
    let bad_npy = root.join("bad.npy");
    std::fs::write(&bad_npy, b"\x93NUMPY\x01\x00\x20\x00{'descr': '<f4', 'shape': (((, }\n").unwrap();
    check(add(&bad_npy, &[]), "bad.npy");
    let not_npy = root.join("text.npy");
    std::fs::write(&not_npy, b"just some text, not numpy at all\n").unwrap();
    check(search(&not_npy, &["--k", "5"]), "text.npy");
    // Unknown extension.
    let csv = root.join("v.csv");
    std::fs::write(&csv, b"1,2,3\n").unwrap();
    check(add(&csv, &[]), ".fvecs or .npy");
    // k 0, nprobe 0, nprobe > nlist, threads 0.
    check(search(&good, &["--k", "0"]), "k must be at least 1");
    check(search(&good, &["--k", "5", "--nprobe", "0"]), "nprobe must be between 1 and nlist (8), got 0");
    check(search(&good, &["--k", "5", "--nprobe", "9"]), "got 9");
    check(search(&good, &["--k", "5", "--threads", "0"]), "threads");
    // Ids: duplicates, count mismatch, negative.
    let dup = root.join("dup.npy");
    let mut dup_ids: Vec<i64> = (0..50).map(|x| 9000 + x).collect();
    dup_ids[31] = 9004;
    write_npy_i64(&dup, &dup_ids);
    let add_ids = |ids: &Path| add(&good, &["--ids", p(ids)]);
    check(add_ids(&dup), "id 9004 appears twice");
    let short = root.join("short.npy");
    write_npy_i64(&short, &(0..49).collect::<Vec<i64>>());
    check(add_ids(&short), "49 ids for 50 vectors");
    let neg = root.join("neg.npy");
    let mut neg_ids: Vec<i64> = (0..50).collect();
    neg_ids[12] = -3;
    write_npy_i64(&neg, &neg_ids);
    check(add_ids(&neg), "row 12: negative id -3");
    // An id already in the index (ids 0..1000 are).
    let live = root.join("live.npy");
    write_npy_i64(&live, &(990..1040).collect::<Vec<i64>>());
    check(add_ids(&live), "id 990 is already in the index");
    // A second train.
    let train = root.join("train.fvecs");
    check(vec!["train".into(), i.into(), "--vectors".into(), p(&train).into()], "already trained");
    assert_eq!(inspect_json(&idx)["vectors"], vectors_before);
    assert_eq!(inspect_json(&idx)["segments"].as_array().unwrap().len(), 1);

    // The index still works, and the outputs can now be written.
    ok(&["search", i, "--vectors", p(&good), "--k", "5", "--out", p(&out), "--distances", p(&dist)]);
    assert_eq!(read_ivecs(&out).0, 50);
}

#[test]
fn missing_or_unready_index_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let v = root.join("v.fvecs");
    write_fvecs(&v, &clustered(600, D, 8), D).unwrap();
    let out = root.join("out.ivecs");
    let missing = root.join("missing");
    let m = p(&missing);
    let search = ["search", m, "--vectors", p(&v), "--k", "3", "--out", p(&out)];
    // Missing directory: train before create, add, search, inspect.
    for args in [
        &["train", m, "--vectors", p(&v)][..],
        &["add", m, "--vectors", p(&v)][..],
        &search[..],
        &["inspect", m][..],
        &["inspect", m, "--json"][..],
    ] {
        fails_with(args, m);
        assert!(!missing.exists(), "{args:?} created the missing directory");
        assert!(!out.exists());
    }
    // Search before train, add before train.
    let idx = root.join("idx");
    let i = p(&idx);
    ok(&["create", i, "--dim", "16", "--nlist", "4", "--m", "4", "--nbits", "4", "--nprobe", "2"]);
    fails_cleanly(&["search", i, "--vectors", p(&v), "--k", "3", "--out", p(&out)], "not trained", &idx, &[&out]);
    fails_cleanly(&["add", i, "--vectors", p(&v)], "not trained", &idx, &[]);
    // Create on an existing index.
    fails_cleanly(
        &["create", i, "--dim", "16", "--nlist", "4", "--m", "4", "--nprobe", "2"],
        "an index already exists here",
        &idx,
        &[],
    );
    // Training data that cannot train: fewer points than 2^nbits.
    let few = root.join("few.fvecs");
    write_fvecs(&few, &clustered(10, D, 9), D).unwrap();
    fails_cleanly(&["train", i, "--vectors", p(&few)], "10 points for 16 centroids", &idx, &[]);
    // Bad configurations.
    for (flags, want) in [
        (&["--dim", "16", "--m", "5"][..], "m (5) must divide dim (16)"),
        (&["--dim", "16", "--m", "4", "--nbits", "0"][..], "nbits must be between 1 and 16"),
        (&["--dim", "16", "--m", "4", "--nbits", "17"][..], "nbits must be between 1 and 16"),
        (&["--dim", "16", "--m", "4", "--nlist", "0"][..], "nlist must be"),
        (&["--dim", "16", "--m", "4", "--nlist", "4", "--nprobe", "5"][..], "nprobe must be between 1 and nlist (4)"),
    ] {
        let dir = root.join("cfg");
        let mut args = vec!["create", p(&dir)];
        args.extend_from_slice(flags);
        fails_with(&args, want);
        assert!(!dir.exists(), "{args:?} created the directory");
    }
}

/// Every command on a directory that holds no index must fail and leave it
/// as it was. `train` and `add` open for writing and today create a `LOCK`
/// file there before finding that there is no manifest.
#[test]
fn commands_on_a_non_index_directory_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let v = root.join("v.fvecs");
    write_fvecs(&v, &clustered(600, D, 8), D).unwrap();
    let out = root.join("out.ivecs");
    let dir = root.join("photos");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("holiday.jpg"), b"not really a jpeg").unwrap();
    let d = p(&dir);
    let mut changed = Vec::new();
    for args in [
        &["inspect", d][..],
        &["search", d, "--vectors", p(&v), "--k", "3", "--out", p(&out)][..],
        &["train", d, "--vectors", p(&v)][..],
        &["add", d, "--vectors", p(&v)][..],
    ] {
        let before = dir_contents(&dir);
        fails_with(args, "not a chromatica index");
        assert!(!out.exists());
        let after = dir_contents(&dir);
        if after != before {
            changed.push(format!("{} left {:?}", args[0], after.keys().collect::<Vec<_>>()));
            std::fs::remove_file(dir.join("LOCK")).ok();
        }
    }
    assert!(changed.is_empty(), "commands wrote into a non-index directory: {changed:?}");
}

/// A trained refine index (dim 16, nlist 4, PQ 4 × 4 bits) made through
/// the binary, holding 400 vectors (ids = rows), and those vectors.
fn refine_index(root: &Path) -> (PathBuf, Vec<f32>) {
    let dir = root.join("r");
    ok(&["create", p(&dir), "--dim", "16", "--nlist", "4", "--m", "4", "--nbits", "4", "--nprobe", "4", "--refine"]);
    // As the refine store keeps them, so that each is found at distance 0.
    let data = stored_rows(&(0..400 * 16).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect::<Vec<_>>(), 16);
    let vf = root.join("v.fvecs");
    write_fvecs(&vf, &data, 16).unwrap();
    ok(&["train", p(&dir), "--vectors", p(&vf)]);
    ok(&["add", p(&dir), "--vectors", p(&vf)]);
    (dir, data)
}

#[test]
fn create_with_refine_keeps_exact_vectors_and_can_retrain() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, data) = refine_index(tmp.path());
    ok(&["retrain", p(&dir), "--seed", "9"]);
    let index = Index::open_read_only(&dir).unwrap();
    assert!(index.config().refine);
    assert_eq!(index.len(), 400);
    // Re-ranked exactly: a stored vector is found at distance 0.
    let hit = index.search(&data[16 * 5..16 * 6], &SearchParams::new(1)).unwrap();
    assert_eq!(hit[0][0].distance, 0.0);
}

#[test]
fn vector_search_takes_rerank_and_candidates() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, data) = refine_index(tmp.path());
    let queries = tmp.path().join("q.fvecs");
    write_fvecs(&queries, &data[..20 * 16], 16).unwrap();
    let search = |extra: &[&str]| -> (Vec<i32>, Vec<f32>) {
        let (out, dist) = (tmp.path().join("o.ivecs"), tmp.path().join("d.fvecs"));
        let mut args =
            vec!["search", p(&dir), "--vectors", p(&queries), "--k", "3", "--out", p(&out), "--distances", p(&dist)];
        args.extend_from_slice(extra);
        ok(&args);
        (read_ivecs(&out).2, VectorFile::open(&dist).unwrap().read_all().unwrap())
    };
    // Exact L2 over every vector as a candidate: each stored vector is its own nearest, at 0.
    let (ids, d) = search(&["--rerank", "l2", "--candidates", "400"]);
    for q in 0..20 {
        assert_eq!((ids[q * 3], d[q * 3]), (q as i32, 0.0), "query {q}");
    }
    // The same as the library's search with those parameters.
    let lib = Index::open_read_only(&dir).unwrap();
    let mut params = SearchParams::new(3);
    params.candidates = Some(5);
    let want = lib.search(&data[..20 * 16], &params).unwrap();
    let (ids5, _) = search(&["--candidates", "5"]);
    let want_ids: Vec<i32> = want.iter().flat_map(|r| r.iter().map(|n| n.id as i32)).collect();
    assert_eq!(ids5, want_ids, "--candidates 5 as the library");
    // No re-rank: PQ estimates, not the exact zero.
    let (_, d) = search(&["--rerank", "none"]);
    assert!((0..20).any(|q| d[q * 3] > 0.0), "PQ distances, not exact");
    // Bad values: one line, nothing written.
    let out = tmp.path().join("never.ivecs");
    for (flag, value) in [("--rerank", "exact"), ("--rerank", "emd"), ("--rerank", "bogus"), ("--candidates", "0")] {
        let msg = fails(&["search", p(&dir), "--vectors", p(&queries), "--out", p(&out), flag, value]);
        assert_eq!(msg.trim().lines().count(), 1, "{msg}");
        assert!(!out.exists(), "{flag} {value}: nothing written");
    }
}
