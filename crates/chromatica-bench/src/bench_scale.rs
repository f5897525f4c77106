//! `chromatica bench-scale`: the scale run. Generates N synthetic colour
//! histograms ([`super::synth`]) in batches, trains on the first
//! `--train-n`, adds batch by batch (automatic merges included), and reports
//! build time, disk bytes, open time, resident memory and search speed of
//! the finished index.
//!
//! Memory: only one batch of vectors exists at a time, plus the exact
//! top-100 of the recall queries, which are kept up to date as each batch
//! streams past (so recall at N needs no second pass and no base file).
//! The index itself holds the codes and ids; a merge reads the codes and ids
//! of the segments it merges (12–20 bytes per vector), never the vectors.

use crate::bench::{best_of, dir_bytes, pool, recall_at, time_opens};
use crate::bench_rss::read_rss;
use crate::progress;
use crate::synth::{Synth, QUERY_START};
use chromatica::color::HIST_DIM;
use chromatica::testing::distance;
use chromatica::testing::read::topk::TopK;
use chromatica::testing::SnapshotInternals;
use chromatica::{vecio, Config, Error, Index, Rerank, Result, SearchParams, TrainOptions};
use rayon::prelude::*;
use serde_json::{json, Map, Value};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Width of the streamed exact ground truth (recall@100 needs 100).
const GT_K: usize = 100;

pub struct ScaleArgs<'a> {
    pub n: usize,
    /// Build here and keep the index (default: a temporary folder, removed).
    pub dir: Option<&'a Path>,
    pub config: Config,
    pub train_n: usize,
    pub batch: usize,
    pub seed: u64,
    pub queries: usize,
    pub recall_queries: usize,
    pub opens: usize,
    /// Also build an index of this many vectors and time its open (0: skip).
    pub small: usize,
    /// Thread counts of the search passes.
    pub threads: &'a [usize],
    pub build_threads: usize,
    pub repeat: usize,
    pub json: bool,
}

pub fn run(a: ScaleArgs<'_>) -> Result<()> {
    let checks = [
        (a.n, "--n"),
        (a.batch, "--batch"),
        (a.queries, "--queries"),
        (a.opens, "--opens"),
        (a.build_threads, "--build-threads"),
        (a.repeat, "--repeat"),
        (a.train_n, "--train-n"),
    ];
    if let Some(&(_, name)) = checks.iter().find(|(v, _)| *v == 0) {
        return Err(Error::invalid_argument(name, format!("{name} must be at least 1")));
    }
    if a.threads.is_empty() || a.threads.contains(&0) {
        return Err(Error::invalid_argument("--threads", "--threads must be at least 1"));
    }
    if a.recall_queries > a.queries {
        return Err(Error::invalid_argument("--recall-queries", "--recall-queries cannot exceed --queries"));
    }
    let config = Config { dim: HIST_DIM, refine: a.config.refine, ..a.config };
    config.validate()?;
    if let Some(dir) = a.dir.filter(|d| d.exists()) {
        return Err(Error::invalid_argument("--dir", format!("{}: already exists", dir.display())));
    }
    let work = std::env::temp_dir().join(format!("chromatica-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    let dir = a.dir.map(Path::to_owned).unwrap_or_else(|| work.join("index"));
    let result = measure(&a, config, &dir, &work);
    let _ = std::fs::remove_dir_all(&work);
    if result.is_err() {
        if let Some(d) = a.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    let res = result?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&res).expect("plain data"));
    } else {
        print_text(&res);
    }
    Ok(())
}

/// The exact `GT_K` nearest base vectors of each query, updated batch by batch.
struct GroundTruth {
    queries: Vec<f32>,
    nearest: Vec<TopK>,
}

impl GroundTruth {
    fn new(queries: Vec<f32>) -> GroundTruth {
        let nq = queries.len() / HIST_DIM;
        GroundTruth { queries, nearest: (0..nq).map(|_| TopK::new(GT_K)).collect() }
    }

    fn update(&mut self, start: u64, batch: &[f32]) {
        let queries = &self.queries;
        self.nearest.par_iter_mut().enumerate().for_each(|(qi, top)| {
            let q = &queries[qi * HIST_DIM..(qi + 1) * HIST_DIM];
            for (j, x) in batch.chunks_exact(HIST_DIM).enumerate() {
                let d = distance::l2sq(q, x);
                if d <= top.threshold() {
                    top.push(d, start + j as u64, 0);
                }
            }
        });
    }

    /// Row-major ids, `GT_K` per query (fewer base vectors than `GT_K`
    /// cannot happen: the run checks n ≥ GT_K before asking for recall).
    fn ids(self) -> Vec<i32> {
        self.nearest.into_iter().flat_map(|t| t.into_sorted().into_iter().map(|e| e.1 as i32)).collect()
    }
}

struct Build {
    train_s: f64,
    gen_s: f64,
    gt_s: f64,
    add_s: f64,
    segments: usize,
    truth: Option<Vec<i32>>,
}

/// Trains on the first `train_n` generated vectors and adds `n` in batches
/// (`sizes`: n, train_n, batch).
fn build(dir: &Path, config: Config, synth: &Synth, sizes: [usize; 3], truth_of: Option<Vec<f32>>) -> Result<Build> {
    let [n, train_n, batch] = sizes;
    let index = Index::create(dir, config)?;
    let t = Instant::now();
    let train = synth.batch(0, train_n.min(n));
    let mut gen_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    index.train(&train, &TrainOptions::default(), &mut |_| ())?;
    let train_s = t.elapsed().as_secs_f64();
    drop(train);
    let mut truth = truth_of.map(GroundTruth::new);
    let (mut gt_s, mut add_s) = (0.0, 0.0);
    let bar = progress::bar(n as u64, "adding");
    for start in (0..n).step_by(batch) {
        let count = batch.min(n - start);
        let t = Instant::now();
        let vectors = synth.batch(start as u64, count);
        gen_s += t.elapsed().as_secs_f64();
        if let Some(gt) = truth.as_mut() {
            let t = Instant::now();
            gt.update(start as u64, &vectors);
            gt_s += t.elapsed().as_secs_f64();
        }
        let t = Instant::now();
        index.add(&vectors, None)?;
        add_s += t.elapsed().as_secs_f64();
        bar.inc(count as u64);
    }
    bar.finish_and_clear();
    let segments = index.snapshot().segments().len();
    Ok(Build { train_s, gen_s, gt_s, add_s, segments, truth: truth.map(GroundTruth::ids) })
}

/// Runs `chromatica bench-rss` on `dir` in a fresh process.
fn child_rss(dir: &Path, queries: &Path, count: usize) -> Result<Value> {
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    let out = Command::new(&exe)
        .arg("bench-rss")
        .arg("--index")
        .arg(dir)
        .arg("--queries")
        .arg(queries)
        .args(["--count", &count.to_string(), "--k", "10"])
        .output()
        .map_err(|e| Error::io(&exe, e))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::InvalidInput(format!("bench-rss failed: {}", err.trim())));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| Error::InvalidInput(format!("bench-rss printed no JSON: {e}")))
}

fn measure(a: &ScaleArgs<'_>, config: Config, dir: &Path, work: &Path) -> Result<Value> {
    let synth = Synth::new(a.seed);
    let d = HIST_DIM;
    let builder = pool(a.build_threads)?;
    let queries = builder.install(|| synth.batch(QUERY_START, a.queries));
    let recall_nq = if a.n >= GT_K { a.recall_queries } else { 0 };
    let truth_of = (recall_nq > 0).then(|| queries[..recall_nq * d].to_vec());
    let b = builder.install(|| build(dir, config, &synth, [a.n, a.train_n, a.batch], truth_of))?;
    let build_peak = read_rss()?.peak;

    let disk = dir_bytes(dir)?;
    let (open_ms, open_all, index) = time_opens(dir, a.opens)?;
    let mut res = Map::new();
    let batch = SearchParams::new(GT_K);
    // q/s of every query searched one per call (best of the repeats).
    let one_per_call = |p: &SearchParams| -> Result<f64> {
        let (s, _) = best_of(a.repeat, || {
            queries.chunks_exact(d).try_for_each(|q| index.search(q, p).map(|r| drop(std::hint::black_box(r))))
        })?;
        Ok(a.queries as f64 / s)
    };
    let single = SearchParams::new(10);
    for &t in a.threads {
        pool(t)?.install(|| -> Result<()> {
            let (batch_s, _) = best_of(a.repeat, || index.search(&queries, &batch))?;
            res.insert(format!("search_batch_qps_t{t}"), json!(a.queries as f64 / batch_s));
            res.insert(format!("search_single_qps_t{t}"), json!(one_per_call(&single)?));
            Ok(())
        })?;
    }
    // With the refine store the searches above are two-stage (the default
    // L2 re-rank of 200 candidates); stage 1 alone is measured beside them.
    if config.refine {
        let t = a.threads[0];
        let qps = pool(t)?.install(|| one_per_call(&SearchParams::new(10).rerank(Rerank::Off)))?;
        res.insert(format!("stage1_search_single_qps_t{t}"), json!(qps));
    }
    if let Some(gt) = &b.truth {
        let ids = |p: &SearchParams| -> Result<Vec<Vec<u64>>> {
            let found = pool(a.threads[0])?.install(|| index.search(&queries[..recall_nq * d], p))?;
            Ok(found.into_iter().map(|r| r.into_iter().map(|nb| nb.id).collect()).collect())
        };
        let found = ids(&batch)?;
        for r in [1, 10, 100] {
            res.insert(format!("recall_at_{r}"), json!(recall_at(&found, gt, GT_K, r)));
        }
        if config.refine {
            let found = ids(&SearchParams::new(GT_K).rerank(Rerank::Off))?;
            res.insert("stage1_recall_at_10".into(), json!(recall_at(&found, gt, GT_K, 10)));
        }
    }
    drop(index);

    let qfile = work.join("queries.fvecs");
    vecio::write_fvecs(&qfile, &queries, d)?;
    let rss = child_rss(dir, &qfile, 1000)?;

    if a.small > 0 {
        let small_dir = work.join("small");
        builder.install(|| build(&small_dir, config, &synth, [a.small, a.train_n, a.batch], None))?;
        let (small_ms, small_all, _) = time_opens(&small_dir, a.opens)?;
        res.insert("small_n".into(), json!(a.small));
        res.insert("small_open_ms".into(), json!(small_ms));
        res.insert("small_open_ms_all".into(), json!(small_all));
        let _ = std::fs::remove_dir_all(&small_dir);
    }

    let mut out = json!({
        "engine": "chromatica",
        "n": a.n, "d": d, "nlist": config.nlist, "m": config.m, "nbits": config.nbits, "nprobe": config.nprobe,
        "refine": config.refine, "train_n": a.train_n.min(a.n), "batch": a.batch, "seed": a.seed,
        "build_threads": a.build_threads, "threads": a.threads, "queries": a.queries, "recall_queries": recall_nq,
        "generate_s": b.gen_s,
        "ground_truth_s": b.gt_s,
        "train_s": b.train_s,
        "add_s": b.add_s,
        "build_s": b.train_s + b.add_s,
        "add_vps": a.n as f64 / b.add_s,
        "segments": b.segments,
        "build_peak_rss": build_peak,
        "disk_bytes": disk,
        "disk_bytes_per_vector": disk as f64 / a.n as f64,
        "open_ms": open_ms,
        "open_ms_all": open_all,
        "rss_baseline": rss["baseline_rss"],
        "rss_after_open": rss["open_rss"],
        "rss_after_queries": rss["queries_rss"],
        "rss_queries": rss["queries"],
    });
    out.as_object_mut().expect("object").extend(res);
    Ok(out)
}

fn print_text(res: &Value) {
    let f = |k: &str| res.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let mib = |k: &str| f(k) / (1024.0 * 1024.0);
    println!(
        "{} synthetic vectors, d {}, nlist {}, m {}, nbits {}, nprobe {}; {} build thread(s), batches of {}",
        res["n"], res["d"], res["nlist"], res["m"], res["nbits"], res["nprobe"], res["build_threads"], res["batch"]
    );
    println!(
        "build: train {:.2} s + add {:.2} s = {:.2} s ({:.0} vectors/s added; {} segments)",
        f("train_s"),
        f("add_s"),
        f("build_s"),
        f("add_vps"),
        res["segments"]
    );
    println!(
        "       (not counted: generating {:.2} s, exact ground truth {:.2} s)",
        f("generate_s"),
        f("ground_truth_s")
    );
    println!("build peak RSS (whole process): {:.1} MiB", mib("build_peak_rss"));
    println!("disk: {} bytes, {:.2} bytes/vector", res["disk_bytes"], f("disk_bytes_per_vector"));
    println!("open (median of {}): {:.3} ms", res["open_ms_all"].as_array().map_or(0, Vec::len), f("open_ms"));
    if res.get("small_n").is_some() {
        println!("open of a {}-vector index (median): {:.3} ms", res["small_n"], f("small_open_ms"));
    }
    println!(
        "RSS of a fresh process: {:.1} MiB empty, {:.1} MiB after open, {:.1} MiB after {} queries (k 10, one per call)",
        mib("rss_baseline"),
        mib("rss_after_open"),
        mib("rss_after_queries"),
        res["rss_queries"]
    );
    for t in res["threads"].as_array().into_iter().flatten() {
        println!(
            "search, {t} thread(s): {:.1} q/s batched (k 100), {:.1} q/s one per call (k 10)",
            f(&format!("search_batch_qps_t{t}")),
            f(&format!("search_single_qps_t{t}"))
        );
    }
    if res.get("recall_at_10").is_some() {
        println!(
            "recall over {} queries: @1 {:.4}, @10 {:.4}, @100 {:.4}",
            res["recall_queries"],
            f("recall_at_1"),
            f("recall_at_10"),
            f("recall_at_100")
        );
    }
    if res["refine"] == json!(true) {
        let t = &res["threads"][0];
        println!(
            "(two-stage above: 200 candidates re-ranked by exact L2); stage 1 alone: {:.1} q/s one per call, {t} thread(s), recall@10 {:.4}",
            f(&format!("stage1_search_single_qps_t{t}")),
            f("stage1_recall_at_10")
        );
    }
}
