//! The measuring commands end to end on small inputs: `bench` on a
//! generated data set (with `--keep`), `bench-rss` on the kept index, and
//! `bench-scale` (streamed synthetic histograms, kept with `--dir`). The
//! figures themselves are timings; what is checked is that every reported
//! quantity is there and consistent, and that recall is meaningful.

use chromatica::testing::{data::*, reference::*};
use chromatica::vecio::{write_fvecs, write_ivecs};
use chromatica::Index;
use serde_json::Value;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn run<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chromatica-bench")).args(args).output().expect("run the chromatica-bench binary")
}

fn json_of<S: AsRef<OsStr>>(args: &[S]) -> Value {
    let out = run(args);
    let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "failed: {se}\n{so}");
    serde_json::from_str(&so).unwrap_or_else(|e| panic!("not JSON ({e}): {so}"))
}

fn fails_with<S: AsRef<OsStr>>(args: &[S], want: &str) {
    let out = run(args);
    let se = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {se}");
    assert_eq!(se.lines().count(), 1, "stderr is not one line: {se:?}");
    assert!(se.starts_with("error: ") && se.contains(want), "{se:?} does not contain {want:?}");
}

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} missing or not a number in {v}"))
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// A data set directory: `n` base vectors, `nq` queries, exact top 100.
fn dataset(dir: &Path, n: usize, nq: usize, d: usize) {
    let base = clustered(n, d, 1);
    let query = clustered(nq, d, 2);
    let gt: Vec<i32> = exact_knn(&base, &query, d, 100).into_iter().flatten().map(|i| i as i32).collect();
    write_fvecs(&dir.join("base.fvecs"), &base, d).unwrap();
    write_fvecs(&dir.join("query.fvecs"), &query, d).unwrap();
    write_ivecs(&dir.join("gt.ivecs"), &gt, 100).unwrap();
}

#[test]
fn bench_measures_both_indexes_and_keeps_the_plain_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    dataset(&data, 2000, 20, 16);
    let keep = tmp.path().join("kept");
    let common = ["--nlist", "10", "--m", "4", "--nbits", "4", "--nprobe", "10", "--train-n", "1000"];
    let r = json_of(
        &[
            &["bench", "--data", p(&data), "--threads", "1,2", "--appends", "3", "--repeat", "1", "--opens", "3"][..],
            &common,
            &["--keep", p(&keep), "--json"],
        ]
        .concat(),
    );
    for t in [1, 2] {
        for key in ["search_batch_qps", "search_single_qps", "refine_qps"] {
            assert!(num(&r, &format!("{key}_t{t}")) > 0.0, "{key}_t{t}");
        }
    }
    // nprobe = nlist: stage 1 scans everything, so only PQ error limits
    // recall; the exact re-rank of 200 candidates of 2000 finds the top 10.
    assert!(num(&r, "recall_at_100") > 0.5, "{r}");
    assert!(num(&r, "refine_recall_at_10") > 0.95, "{r}");
    assert_eq!(num(&r, "recall_at_10"), num(&r, "single_recall_at_10"));
    for key in ["recall_at_1", "recall_at_10", "recall_at_100"] {
        assert!(num(&r, &format!("tie_{key}")) >= num(&r, key), "{key}");
    }
    assert_eq!(r["open_ms_all"].as_array().unwrap().len(), 3);
    assert!(num(&r, "pq_mse") > 0.0 && num(&r, "pq_mse_base") > 0.0 && num(&r, "coarse_mse") > 0.0);
    assert_eq!(num(&r, "appends"), 3.0);
    assert!(r.get("emd_qps").is_none(), "EMD needs 1152-d colour histograms");
    // The kept index is the plain one (no refine store) with every vector.
    let index = Index::open_read_only(&keep).unwrap();
    assert_eq!(index.len(), 2000);
    assert!(!index.config().refine);
    assert_eq!(
        num(&r, "disk_bytes") as u64,
        std::fs::read_dir(&keep).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum::<u64>()
    );
    drop(index);
    // A second run refuses to overwrite it.
    fails_with(&[&["bench", "--data", p(&data), "--keep", p(&keep)][..], &common].concat(), "already exists");

    // --serve: passes on request, then the same final report.
    let mut child = Command::new(env!("CARGO_BIN_EXE_chromatica-bench"))
        .args([&["bench", "--data", p(&data), "--appends", "0", "--json", "--serve"][..], &common].concat())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut input = child.stdin.take().unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    for (cmd, key) in [("single 2", "search_single_qps"), ("refine 1", "refine_qps")] {
        writeln!(input, "{cmd}").unwrap();
        line.clear();
        out.read_line(&mut line).unwrap();
        let reply: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(reply["pass"], key);
        assert!(num(&reply, "s") > 0.0);
    }
    writeln!(input, "end").unwrap();
    drop(input);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    let served: Value = serde_json::from_str(&rest).unwrap();
    // Exactly the passes asked for were timed; recall comes from the warm-up.
    assert!(num(&served, "search_single_qps_t2") > 0.0 && num(&served, "refine_qps_t1") > 0.0);
    assert!(served.get("search_batch_qps_t1").is_none() && served.get("search_single_qps_t1").is_none());
    assert_eq!(served["recall_at_10"], r["recall_at_10"]);

    let rss = json_of(&["bench-rss", "--index", p(&keep), "--queries", p(&data.join("query.fvecs")), "--count", "50"]);
    assert_eq!(num(&rss, "queries"), 50.0);
    let base = num(&rss, "baseline_rss");
    assert!(base > 0.0 && num(&rss, "open_rss") > 0.0 && num(&rss, "queries_rss") > 0.0);
    assert!(num(&rss, "peak_rss") >= num(&rss, "queries_rss"));
    fails_with(
        &["bench-rss", "--index", p(&tmp.path().join("none")), "--queries", p(&data.join("query.fvecs"))],
        "none",
    );
}

#[test]
fn bench_scale_streams_builds_and_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("scale");
    let args = [
        "bench-scale",
        "--n",
        "3000",
        "--batch",
        "700",
        "--nlist",
        "8",
        "--m",
        "8",
        "--nbits",
        "4",
        "--nprobe",
        "8",
        "--train-n",
        "1500",
        "--queries",
        "40",
        "--recall-queries",
        "20",
        "--opens",
        "3",
        "--small",
        "500",
        "--threads",
        "1,2",
        "--build-threads",
        "1",
        "--repeat",
        "1",
        "--seed",
        "9",
        "--dir",
        p(&dir),
        "--json",
    ];
    let r = json_of(&args);
    assert_eq!(num(&r, "n"), 3000.0);
    assert_eq!(num(&r, "d"), 1152.0);
    assert_eq!(num(&r, "recall_queries"), 20.0);
    // All lists probed: recall is limited by the 4-bit PQ only, and the
    // generator's clusters make the true neighbours stand out.
    assert!(num(&r, "recall_at_100") > 0.5, "{r}");
    for t in [1, 2] {
        assert!(num(&r, &format!("search_batch_qps_t{t}")) > 0.0);
        assert!(num(&r, &format!("search_single_qps_t{t}")) > 0.0);
    }
    assert!(num(&r, "rss_after_queries") > 0.0 && num(&r, "rss_baseline") > 0.0);
    assert!(num(&r, "small_open_ms") > 0.0 && num(&r, "open_ms") > 0.0);
    assert!(num(&r, "build_peak_rss") > 0.0);
    // The index is kept, whole, and verifies; 3000 vectors in batches of 700.
    let index = Index::open_read_only(&dir).unwrap();
    assert_eq!(index.len(), 3000);
    assert!(num(&r, "segments") >= 1.0);
    assert_eq!(
        num(&r, "disk_bytes") as u64,
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum::<u64>()
    );
    drop(index);
    Index::verify(&dir).unwrap();
    // The same seed gives the same index: the same codes, bit for bit.
    let again = tmp.path().join("again");
    let args2: Vec<&str> = args.iter().map(|&a| if a == p(&dir) { p(&again) } else { a }).collect();
    json_of(&args2);
    let seg = |d: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|f| f.extension().is_some_and(|e| e == "seg"))
            .collect();
        v.sort();
        v.into_iter().map(|f| std::fs::read(f).unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(seg(&dir), seg(&again));
    // Refusals: an existing folder, zero vectors.
    fails_with(&args, "already exists");
    fails_with(&["bench-scale", "--n", "0"], "--n must be at least 1");
}

/// `bench-write-rss`: thin, compact and re-train a kept refine index, each
/// in its own process, reporting peak memory and disk bytes; the index
/// stays whole and verifies.
#[test]
fn bench_write_rss_reports_compact_and_retrain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    #[rustfmt::skip]
    let build = [
        "bench-scale", "--n", "2000", "--batch", "500", "--nlist", "8", "--m", "8", "--nbits", "4", "--nprobe", "4",
        "--train-n", "1000", "--queries", "10", "--recall-queries", "10", "--opens", "1", "--small", "0",
        "--threads", "1", "--build-threads", "1", "--repeat", "1", "--refine", "--dir", p(&dir), "--json",
    ];
    // With the refine store the run is two-stage, and measures stage 1 beside it.
    let r = json_of(&build);
    assert!(num(&r, "stage1_search_single_qps_t1") > 0.0, "{r}");
    assert!(num(&r, "recall_at_10") > num(&r, "stage1_recall_at_10"), "{r}");
    assert!(num(&r, "recall_at_10") >= 0.9, "{r}");
    let thin = json_of(&["bench-write-rss", "--index", p(&dir), "--op", "thin"]);
    assert_eq!(num(&thin, "vectors"), 2000.0);
    assert_eq!(Index::open_read_only(&dir).unwrap().len(), 1980);
    let compact = json_of(&["bench-write-rss", "--index", p(&dir), "--op", "compact"]);
    assert_eq!((num(&compact, "vectors"), num(&compact, "segments_after")), (1980.0, 1.0));
    assert!(num(&compact, "disk_after") < num(&compact, "disk_before"), "{compact}");
    assert!(num(&compact, "peak_rss") >= num(&compact, "peak_anon") && num(&compact, "peak_anon") > 0.0);
    let retrain = json_of(&["bench-write-rss", "--index", p(&dir), "--op", "retrain"]);
    assert_eq!((num(&retrain, "vectors"), num(&retrain, "segments_after")), (1980.0, 1.0));
    assert!(num(&retrain, "peak_rss") > 0.0);
    Index::verify(&dir).unwrap();
    assert_eq!(Index::open_read_only(&dir).unwrap().len(), 1980);
    fails_with(&["bench-write-rss", "--index", p(&dir), "--op", "merge"], "must be compact, retrain or thin");
}
