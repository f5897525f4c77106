//! `chromatica bench`: measures train, add, search, recall and open time on
//! a data set directory (base.fvecs, query.fvecs, gt.ivecs, as written by
//! ../shared/tools/make_dataset.py), exactly as bench/faiss_ivfpq.py measures
//! faiss, so that bench/compare.py can put the two side by side.

use chromatica::emd::Sinkhorn;
use chromatica::vecio::{self, VectorFile};
use chromatica::{distance, Config, Error, Index, Rerank, Result, SearchParams, TrainOptions};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

pub struct BenchArgs<'a> {
    pub data: &'a Path,
    pub config: Config,
    pub train_n: usize,
    pub threads: usize,
    pub k: usize,
    pub single_k: usize,
    pub repeat: usize,
    /// Appends of 100 vectors for the merge-policy measurement (0: skip).
    pub appends: usize,
    pub json: bool,
}

/// Mean over queries of |found[..r] ∩ truth[..r]| / r (set intersection).
fn recall_at(found: &[Vec<u64>], gt: &[i32], gt_k: usize, r: usize) -> f64 {
    let mut hits = 0usize;
    for (q, row) in found.iter().enumerate() {
        let truth = &gt[q * gt_k..q * gt_k + r];
        hits += row.iter().take(r).filter(|&&id| truth.contains(&(id as i32))).count();
    }
    hits as f64 / (r * found.len()) as f64
}

/// Like `recall_at`, but a returned id also counts if its exact distance is
/// within 1e-6 of the true r-th distance: the data set holds exact duplicate
/// vectors, among which the ground truth picked arbitrarily.
fn tie_recall_at(found: &[Vec<u64>], gt: &[i32], gt_k: usize, r: usize, base: &[f32], query: &[f32], d: usize) -> f64 {
    let row = |m: &[f32], i: usize| m[i * d..(i + 1) * d].to_vec();
    let mut hits = 0usize;
    for (q, ids) in found.iter().enumerate() {
        let x = row(query, q);
        let thr = distance::l2sq(&x, &row(base, gt[q * gt_k + r - 1] as usize)) + 1e-6;
        hits += ids.iter().take(r).filter(|&&id| distance::l2sq(&x, &row(base, id as usize)) <= thr).count();
    }
    hits as f64 / (r * found.len()) as f64
}

fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        total += e.metadata().map_err(|err| Error::io(e.path(), err))?.len();
    }
    Ok(total)
}

pub fn run(a: BenchArgs<'_>) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()
        .map_err(|e| Error::InvalidInput(format!("cannot start {} threads: {e}", a.threads)))?;
    pool.install(|| run_in_pool(&a))
}

fn run_in_pool(a: &BenchArgs<'_>) -> Result<()> {
    let base_f = VectorFile::open(&a.data.join("base.fvecs"))?;
    let query_f = VectorFile::open(&a.data.join("query.fvecs"))?;
    let gt_f = a.data.join("gt.ivecs");
    let d = base_f.dim();
    // With the refine store, so that both stages can be measured; stage 1
    // alone (rerank off) is the IndexIVFPQ comparison.
    let config = Config { dim: d, refine: true, ..a.config };
    config.validate()?;
    let base = base_f.read_all()?;
    let query = query_f.read_all()?;
    let (n, nq) = (base_f.len(), query_f.len());
    let gt = vecio::read_ivecs_matrix(&gt_f)?;
    let gt_k = gt.len() / nq;
    if a.k > gt_k || a.k < 100 {
        return Err(Error::InvalidInput(format!("--k must be between 100 and the ground truth's {gt_k}")));
    }
    let dir = std::env::temp_dir().join(format!("chromatica-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result = measure(a, &dir, config, &base, n, &query, nq, &gt, gt_k);
    let _ = std::fs::remove_dir_all(&dir);
    let res = result?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&res).expect("plain data"));
    } else {
        for (k, v) in res.as_object().expect("object") {
            println!("{k:<24} {v}");
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn measure(
    a: &BenchArgs<'_>,
    dir: &Path,
    config: Config,
    base: &[f32],
    n: usize,
    query: &[f32],
    nq: usize,
    gt: &[i32],
    gt_k: usize,
) -> Result<serde_json::Value> {
    let d = config.dim;
    let train_n = a.train_n.min(n);
    let index = Index::create(dir, config)?;
    let t = Instant::now();
    let report = index.train(&base[..train_n * d], &TrainOptions::default(), &mut |_| ())?;
    let train_s = t.elapsed().as_secs_f64();
    // A trained, empty copy for the appends measurement: index files are
    // immutable, so copying them clones the index.
    let appended_dir = dir.with_extension("appends");
    copy_index(dir, &appended_dir)?;
    let t = Instant::now();
    index.add(base, None)?;
    let add_s = t.elapsed().as_secs_f64();
    drop(index);

    let t = Instant::now();
    let index = Index::open_read_only(dir)?;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;

    // Batched: all queries in one call; best of `repeat`.
    let params = SearchParams { rerank: Some(Rerank::Off), ..SearchParams::new(a.k) };
    let mut batch_s = f64::INFINITY;
    let mut found = Vec::new();
    for _ in 0..a.repeat {
        let t = Instant::now();
        let r = index.search(query, &params)?;
        batch_s = batch_s.min(t.elapsed().as_secs_f64());
        found = r;
    }
    let found: Vec<Vec<u64>> = found.into_iter().map(|r| r.into_iter().map(|nb| nb.id).collect()).collect();
    // One query per call; best of `repeat`.
    let single = SearchParams { rerank: Some(Rerank::Off), ..SearchParams::new(a.single_k) };
    let mut single_s = f64::INFINITY;
    for _ in 0..a.repeat {
        let t = Instant::now();
        for q in query.chunks_exact(d) {
            std::hint::black_box(index.search(q, &single)?);
        }
        single_s = single_s.min(t.elapsed().as_secs_f64());
    }

    // Quantization error over the base: mean ‖x − (c + r)‖².
    let snap = index.snapshot();
    let q = snap.quantizers.as_ref().expect("trained");
    let (lists, codes) = q.encode(base);
    let cs = config.code_size();
    let mut y = vec![0f32; d];
    let mut se = 0f64;
    for i in 0..n {
        q.decode(lists[i] as usize, &codes[i * cs..(i + 1) * cs], &mut y);
        se += distance::l2sq(&base[i * d..(i + 1) * d], &y) as f64;
    }
    let memory = index.memory_estimate();
    let refine_bytes: u64 = index.snapshot().segments.iter().map(|s| s.refine_bytes() as u64).sum();
    let disk = dir_bytes(dir)? - refine_bytes;
    // Two stages: 200 candidates from the codes, re-ranked exactly.
    let mut two_stage = serde_json::Map::new();
    for (name, rerank, nq_used) in [("refine", Rerank::L2, nq), ("emd", Rerank::Emd(Sinkhorn::default()), nq.min(20))] {
        let p = SearchParams { rerank: Some(rerank), candidates: Some(200), ..SearchParams::new(10) };
        let qs = &query[..nq_used * d];
        let mut best = f64::INFINITY;
        let mut got = Vec::new();
        // EMD is costly per candidate: one timed pass is enough.
        let repeat = if name == "emd" { 1 } else { a.repeat };
        for _ in 0..repeat {
            let t = Instant::now();
            got = index.search(qs, &p)?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        let ids: Vec<Vec<u64>> = got.into_iter().map(|r| r.into_iter().map(|nb| nb.id).collect()).collect();
        two_stage.insert(format!("{name}_queries"), json!(nq_used));
        two_stage.insert(format!("{name}_qps"), json!(nq_used as f64 / best));
        two_stage.insert(format!("{name}_recall_at_10"), json!(recall_at(&ids, gt, gt_k, 10)));
        two_stage.insert(format!("{name}_tie_recall_at_10"), json!(tie_recall_at(&ids, gt, gt_k, 10, base, query, d)));
    }
    let appends = if a.appends > 0 {
        let r = measure_appends(a, &appended_dir, base, query, d);
        let _ = std::fs::remove_dir_all(&appended_dir);
        Some(r?)
    } else {
        None
    };
    let mut res = json!({
        "engine": "chromatica",
        "n": n, "nq": nq, "d": d, "nlist": config.nlist, "m": config.m, "nbits": config.nbits, "fast_scan": config.fast_scan,
        "nprobe": config.nprobe, "train_n": train_n, "threads": a.threads, "k": a.k, "single_k": a.single_k,
        "train_s": train_s,
        "add_s": add_s,
        "search_batch_qps": nq as f64 / batch_s,
        "search_single_qps": nq as f64 / single_s,
        "recall_at_1": recall_at(&found, gt, gt_k, 1),
        "recall_at_10": recall_at(&found, gt, gt_k, 10),
        "recall_at_100": recall_at(&found, gt, gt_k, 100),
        "tie_recall_at_1": tie_recall_at(&found, gt, gt_k, 1, base, query, d),
        "tie_recall_at_10": tie_recall_at(&found, gt, gt_k, 10, base, query, d),
        "tie_recall_at_100": tie_recall_at(&found, gt, gt_k, 100, base, query, d),
        "coarse_objective": report.coarse_mse,
        "pq_mse": se / n as f64,
        "open_ms": open_ms,
        "disk_bytes": disk,
        "disk_bytes_per_vector": disk as f64 / n as f64,
        "refine_bytes_per_vector": refine_bytes as f64 / n as f64,
        "resident_bytes_per_vector": memory.resident_bytes_per_vector,
    });
    res.as_object_mut().expect("object").extend(two_stage);
    if let Some(extra) = appends {
        res.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
    }
    Ok(res)
}

fn copy_index(from: &Path, to: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    for e in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let e = e.map_err(|e| Error::io(from, e))?;
        if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), to.join(e.file_name())).map_err(|err| Error::io(e.path(), err))?;
        }
    }
    Ok(())
}

/// Best-of-`repeat` batched search time.
fn time_search(index: &Index, query: &[f32], k: usize, repeat: usize) -> Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..repeat {
        let t = Instant::now();
        std::hint::black_box(index.search(query, &SearchParams::new(k))?);
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// The merge policy's promise: after many small appends, search stays close
/// to a fully compacted index.
fn measure_appends(a: &BenchArgs<'_>, dir: &Path, base: &[f32], query: &[f32], d: usize) -> Result<serde_json::Value> {
    let batch = 100;
    let n = (a.appends * batch).min(base.len() / d);
    let index = Index::open(dir)?;
    let t = Instant::now();
    for chunk in base[..n * d].chunks(batch * d) {
        index.add(chunk, None)?;
    }
    let append_s = t.elapsed().as_secs_f64();
    let segments = index.snapshot().segments.len();
    let appended = time_search(&index, query, 10, a.repeat)?;
    index.compact()?;
    let compacted = time_search(&index, query, 10, a.repeat)?;
    Ok(json!({
        "appends": n / batch,
        "append_batch": batch,
        "appends_s": append_s,
        "segments_after_appends": segments,
        "appended_search_s": appended,
        "compacted_search_s": compacted,
        "appended_over_compacted": appended / compacted,
    }))
}
