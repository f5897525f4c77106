//! `chromatica bench`: measures train, add, search, recall, quantization
//! error, open time and disk use on a data set directory (base.fvecs,
//! query.fvecs, gt.ivecs, as written by ../shared/tools/make_dataset.py),
//! exactly as bench/faiss_ivfpq.py measures faiss, so that bench/compare.py
//! can put the two side by side.
//!
//! Two indexes are built from the same training vectors (training is seeded,
//! so both get the same quantizers): a plain one (codes and ids, like
//! IndexIVFPQ) for train, add, search, open and disk figures, and one with
//! the refine store for the two-stage search (like IndexIVFPQ +
//! IndexRefineFlat). Only the plain index's training and adding are the
//! timed build, which runs on the first of `--threads`.
//!
//! Searches come in three kinds of pass over all queries ([`Pass`]). One
//! untimed pass of each warms the caches and gives the results recall is
//! computed from; then each kind is timed `--repeat` times per thread
//! count, or, with `--serve`, as standard input asks, so that
//! bench/compare.py can alternate our passes with faiss's. The fastest pass
//! of each kind and thread count is reported.

use chromatica::color::Sinkhorn;
use chromatica::testing::distance;
use chromatica::testing::quantizer::Quantizers;
use chromatica::testing::SnapshotInternals;
use chromatica::vecio::{self, VectorFile};
use chromatica::{Config, Error, Index, Rerank, Result, SearchParams, TrainOptions};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct BenchArgs<'a> {
    pub data: &'a Path,
    pub config: Config,
    pub train_n: usize,
    /// Thread counts of the search passes; the build runs on the first.
    pub threads: &'a [usize],
    pub k: usize,
    pub single_k: usize,
    /// Stage-1 candidates of the two-stage search.
    pub candidates: usize,
    pub repeat: usize,
    /// Open time is the median of this many opens.
    pub opens: usize,
    /// Appends of 100 vectors for the merge-policy measurement (0: skip).
    pub appends: usize,
    /// Build the plain index here and leave it (for `bench-rss`).
    pub keep: Option<&'a Path>,
    /// After the build, print "ready" and time the passes that standard
    /// input asks for (see [`parse_command`]) until "end".
    pub serve: bool,
    pub json: bool,
}

/// Mean over queries of |found[..r] ∩ truth[..r]| / r (set intersection);
/// `gt` is row-major with `gt_k` ids per query.
pub fn recall_at(found: &[Vec<u64>], gt: &[i32], gt_k: usize, r: usize) -> f64 {
    let mut hits = 0usize;
    for (q, row) in found.iter().enumerate() {
        let truth = &gt[q * gt_k..q * gt_k + r];
        hits += row.iter().take(r).filter(|&&id| truth.iter().any(|&t| t as u64 == id)).count();
    }
    hits as f64 / (r * found.len()) as f64
}

/// Like [`recall_at`], but a returned id also counts if its exact distance
/// is within 1e-6 of the true r-th distance: the data set holds exact
/// duplicate vectors, among which the ground truth picked arbitrarily.
/// Every id in `found` and `gt` must be a row of `base`.
pub fn tie_recall_at(found: &[Vec<u64>], gt: &[i32], gt_k: usize, r: usize, base: &[f32], query: &[f32]) -> f64 {
    if found.is_empty() {
        return f64::NAN;
    }
    let d = query.len() / found.len();
    fn row(m: &[f32], i: usize, d: usize) -> &[f32] {
        &m[i * d..(i + 1) * d]
    }
    let mut hits = 0usize;
    for (q, ids) in found.iter().enumerate() {
        let x = row(query, q, d);
        let thr = distance::l2sq(x, row(base, gt[q * gt_k + r - 1] as usize, d)) + 1e-6;
        hits += ids.iter().take(r).filter(|&&id| distance::l2sq(x, row(base, id as usize, d)) <= thr).count();
    }
    hits as f64 / (r * found.len()) as f64
}

/// The median of `v` (the mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// Mean ‖x − (c + r)‖² over the rows of `data`: what IndexIVFPQ
/// reconstructs, as faiss's sa_encode/sa_decode computes it.
pub fn quantization_mse(q: &Quantizers, data: &[f32]) -> f64 {
    let d = q.config.dim;
    let cs = q.config.code_size();
    let n = data.len() / d;
    let (lists, codes) = q.encode(data);
    let mut y = vec![0f32; d];
    let mut se = 0f64;
    for i in 0..n {
        q.decode(lists[i] as usize, &codes[i * cs..(i + 1) * cs], &mut y);
        se += distance::l2sq(&data[i * d..(i + 1) * d], &y) as f64;
    }
    se / n as f64
}

pub fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        total += e.metadata().map_err(|err| Error::io(e.path(), err))?.len();
    }
    Ok(total)
}

pub fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::InvalidInput(format!("cannot start {threads} threads: {e}")))
}

/// Median time of `opens` read-only opens, in ms, and the last handle.
pub fn time_opens(dir: &Path, opens: usize) -> Result<(f64, Vec<f64>, Index)> {
    let mut times = Vec::with_capacity(opens);
    let mut last = None;
    for _ in 0..opens.max(1) {
        drop(last.take());
        let t = Instant::now();
        let index = Index::open_read_only(dir)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        last = Some(index);
    }
    Ok((median(&times), times, last.expect("at least one open")))
}

/// The best of `repeat` timed runs of `f`, in seconds, and the last result.
pub fn best_of<T>(repeat: usize, mut f: impl FnMut() -> Result<T>) -> Result<(f64, T)> {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let r = f()?;
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    Ok((best, out.expect("at least one run")))
}

fn ids_of(results: Vec<Vec<chromatica::Neighbor>>) -> Vec<Vec<u64>> {
    results.into_iter().map(|r| r.into_iter().map(|nb| nb.id).collect()).collect()
}

/// The timed search passes, each over all queries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pass {
    /// Stage 1 only, all queries in one call, k = `--k`.
    Batch,
    /// Stage 1 only, one query per call, k = `--single-k`.
    Single,
    /// Two stages on the refine index: `--candidates`, exact L2 re-rank.
    Refine,
}

impl Pass {
    /// The result key's stem (the key is `{stem}_t{threads}`, in q/s).
    pub fn key(self) -> &'static str {
        match self {
            Pass::Batch => "search_batch_qps",
            Pass::Single => "search_single_qps",
            Pass::Refine => "refine_qps",
        }
    }
}

/// A `--serve` command: "batch|single|refine THREADS".
pub fn parse_command(line: &str) -> Result<(Pass, usize)> {
    let bad =
        || Error::InvalidInput(format!("bench --serve: {line:?} is not \"batch|single|refine THREADS\" or \"end\""));
    let mut words = line.split_whitespace();
    let kind = match words.next() {
        Some("batch") => Pass::Batch,
        Some("single") => Pass::Single,
        Some("refine") => Pass::Refine,
        _ => return Err(bad()),
    };
    let t: usize = words.next().and_then(|w| w.parse().ok()).filter(|&t| t > 0).ok_or_else(bad)?;
    if words.next().is_some() {
        return Err(bad());
    }
    Ok((kind, t))
}

struct Data {
    base: Vec<f32>,
    query: Vec<f32>,
    gt: Vec<i32>,
    gt_k: usize,
    n: usize,
    nq: usize,
    d: usize,
}

fn load(a: &BenchArgs<'_>) -> Result<Data> {
    let base_f = VectorFile::open(&a.data.join("base.fvecs"))?;
    let query_f = VectorFile::open(&a.data.join("query.fvecs"))?;
    let gt_path = a.data.join("gt.ivecs");
    let d = base_f.dim();
    if query_f.dim() != d {
        return Err(Error::InvalidInput(format!("query.fvecs has dimension {}, base.fvecs {d}", query_f.dim())));
    }
    let (n, nq) = (base_f.len(), query_f.len());
    let gt = vecio::read_ivecs_matrix(&gt_path)?;
    if !gt.len().is_multiple_of(nq) {
        return Err(Error::InvalidInput(format!("{}: not one row per query", gt_path.display())));
    }
    if let Some(bad) = gt.iter().find(|&&id| id < 0 || id as usize >= n) {
        return Err(Error::InvalidInput(format!("{}: id {bad} is not a row of base.fvecs", gt_path.display())));
    }
    let gt_k = gt.len() / nq;
    if a.k > gt_k || a.k < 100 {
        return Err(Error::invalid_argument("--k", format!("--k must be between 100 and the ground truth's {gt_k}")));
    }
    Ok(Data { base: base_f.read_all()?, query: query_f.read_all()?, gt, gt_k, n, nq, d })
}

pub fn run(a: BenchArgs<'_>) -> Result<()> {
    if a.threads.is_empty() || a.threads.contains(&0) || a.repeat == 0 || a.opens == 0 {
        return Err(Error::invalid_argument("--threads", "--threads, --repeat and --opens must be at least 1"));
    }
    if let Some(keep) = a.keep.filter(|p| p.exists()) {
        return Err(Error::invalid_argument("--keep", format!("{}: already exists", keep.display())));
    }
    let data = load(&a)?;
    let work = std::env::temp_dir().join(format!("chromatica-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let result = measure(&a, &work, &data);
    let _ = std::fs::remove_dir_all(&work);
    if result.is_err() {
        if let Some(keep) = a.keep {
            let _ = std::fs::remove_dir_all(keep);
        }
    }
    let res = result?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&res).expect("plain data"));
    } else {
        for (k, v) in res.as_object().expect("object") {
            println!("{k:<28} {v}");
        }
    }
    Ok(())
}

fn measure(a: &BenchArgs<'_>, work: &Path, x: &Data) -> Result<Value> {
    let Data { base, query, gt, gt_k, n, nq, d } = x;
    let (n, nq, d, gt_k) = (*n, *nq, *d, *gt_k);
    let plain = Config { dim: d, refine: false, ..a.config };
    plain.validate()?;
    let train_n = a.train_n.min(n);
    let train = &base[..train_n * d];
    let plain_dir: PathBuf = a.keep.map(Path::to_owned).unwrap_or_else(|| work.join("plain"));
    let refine_dir = work.join("refine");
    let appends_dir = work.join("appends");
    std::fs::create_dir_all(work).map_err(|e| Error::io(work, e))?;

    let build = pool(a.threads[0])?;
    let (train_s, report, add_s, add_refine_s) = build.install(|| -> Result<_> {
        let index = Index::create(&plain_dir, plain)?;
        let t = Instant::now();
        let report = index.train(train, &TrainOptions::default(), &mut |_| ())?;
        let train_s = t.elapsed().as_secs_f64();
        if a.appends > 0 {
            // A trained, empty copy for the appends measurement: index files
            // are immutable, so copying them clones the index.
            copy_index(&plain_dir, &appends_dir)?;
        }
        let t = Instant::now();
        index.add(base, None)?;
        let add_s = t.elapsed().as_secs_f64();
        let refined = Index::create(&refine_dir, Config { refine: true, ..plain })?;
        refined.train(train, &TrainOptions::default(), &mut |_| ())?;
        let t = Instant::now();
        refined.add(base, None)?;
        Ok((train_s, report, add_s, t.elapsed().as_secs_f64()))
    })?;

    let (open_ms, open_all, index) = time_opens(&plain_dir, a.opens)?;
    let refined = Index::open_read_only(&refine_dir)?;

    let stage1 = SearchParams::new(a.k).rerank(Rerank::Off);
    let single = SearchParams::new(a.single_k).rerank(Rerank::Off);
    let two_stage = SearchParams::new(a.k).rerank(Rerank::L2).candidates(a.candidates);
    // One pass of one kind over all queries, returning the ids found.
    let pass = |kind: Pass| -> Result<Vec<Vec<u64>>> {
        Ok(match kind {
            Pass::Batch => ids_of(index.search(query, &stage1)?),
            Pass::Single => query
                .chunks_exact(d)
                .map(|q| Ok(ids_of(index.search(q, &single)?).into_iter().flatten().collect()))
                .collect::<Result<_>>()?,
            Pass::Refine => ids_of(refined.search(query, &two_stage)?),
        })
    };
    let mut pools = HashMap::new();
    let mut timed = |kind: Pass, t: usize| -> Result<f64> {
        if let std::collections::hash_map::Entry::Vacant(e) = pools.entry(t) {
            e.insert(pool(t)?);
        }
        pools[&t].install(|| {
            let start = Instant::now();
            std::hint::black_box(pass(kind)?);
            Ok(start.elapsed().as_secs_f64())
        })
    };
    // An untimed first pass of each kind warms caches and gives the results
    // that recall is computed from.
    let [found, found_single, found_refine] =
        build.install(|| -> Result<_> { Ok([pass(Pass::Batch)?, pass(Pass::Single)?, pass(Pass::Refine)?]) })?;
    let mut best: BTreeMap<(usize, &str), f64> = BTreeMap::new();
    let mut note = |kind: Pass, t: usize, secs: f64| {
        let b = best.entry((t, kind.key())).or_insert(f64::INFINITY);
        *b = b.min(secs);
    };
    if a.serve {
        // bench/compare.py drives the passes, alternating with faiss.
        println!("ready");
        for line in std::io::stdin().lines() {
            let line = line.map_err(|e| Error::io("standard input", e))?;
            if line.trim() == "end" {
                break;
            }
            let (kind, t) = parse_command(&line)?;
            let secs = timed(kind, t)?;
            note(kind, t, secs);
            println!("{}", json!({ "pass": kind.key(), "threads": t, "s": secs }));
        }
    } else {
        for &t in a.threads {
            for kind in [Pass::Batch, Pass::Single, Pass::Refine] {
                for _ in 0..a.repeat {
                    let secs = timed(kind, t)?;
                    note(kind, t, secs);
                }
            }
        }
    }
    let mut res = Map::new();
    for ((t, key), secs) in best {
        res.insert(format!("{key}_t{t}"), json!(nq as f64 / secs));
    }
    for r in [1, 10, 100] {
        res.insert(format!("recall_at_{r}"), json!(recall_at(&found, gt, gt_k, r)));
        res.insert(format!("tie_recall_at_{r}"), json!(tie_recall_at(&found, gt, gt_k, r, base, query)));
    }
    if a.single_k >= 10 {
        res.insert("single_recall_at_10".into(), json!(recall_at(&found_single, gt, gt_k, 10)));
    }
    res.insert("refine_recall_at_10".into(), json!(recall_at(&found_refine, gt, gt_k, 10)));
    res.insert("refine_tie_recall_at_10".into(), json!(tie_recall_at(&found_refine, gt, gt_k, 10, base, query)));

    let snap = index.snapshot();
    let q = snap.quantizers().expect("trained");
    let memory = index.memory_estimate();
    let refine_bytes: u64 = refined.snapshot().segments().iter().map(|s| s.refine_bytes() as u64).sum();
    let disk = dir_bytes(&plain_dir)?;

    // Sinkhorn EMD re-ranking (colour histograms only) costs ~20 µs per
    // candidate: 20 queries, once.
    if d == chromatica::color::HIST_DIM {
        let emd_nq = nq.min(20);
        let emd = SearchParams::new(10).rerank(Rerank::Emd(Sinkhorn::default())).candidates(a.candidates);
        let (emd_s, r) = build.install(|| best_of(1, || refined.search(&query[..emd_nq * d], &emd)))?;
        res.insert("emd_queries".into(), json!(emd_nq));
        res.insert("emd_qps".into(), json!(emd_nq as f64 / emd_s));
        res.insert("emd_recall_at_10".into(), json!(recall_at(&ids_of(r), gt, gt_k, 10)));
    }

    if a.appends > 0 {
        let extra = build.install(|| measure_appends(a, &appends_dir, base, query, d))?;
        res.extend(extra.as_object().expect("object").clone());
    }
    let mut out = json!({
        "engine": "chromatica",
        "n": n, "nq": nq, "d": d, "nlist": plain.nlist, "m": plain.m, "nbits": plain.nbits, "fast_scan": plain.fast_scan,
        "nprobe": plain.nprobe, "train_n": train_n, "threads": a.threads, "k": a.k, "single_k": a.single_k,
        "candidates": a.candidates, "repeat": a.repeat,
        "train_s": train_s,
        "add_s": add_s,
        "add_vps": n as f64 / add_s,
        "add_refine_s": add_refine_s,
        "coarse_mse": report.coarse_mse,
        "pq_mse": quantization_mse(q, train),
        "pq_mse_base": quantization_mse(q, base),
        "open_ms": open_ms,
        "open_ms_all": open_all,
        "disk_bytes": disk,
        "disk_bytes_per_vector": disk as f64 / n as f64,
        "refine_bytes_per_vector": refine_bytes as f64 / n as f64,
        "resident_bytes_per_vector": memory.resident_bytes_per_vector,
    });
    out.as_object_mut().expect("object").extend(res);
    Ok(out)
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

/// The merge policy's promise: after many small appends, search stays close
/// to a fully compacted index.
fn measure_appends(a: &BenchArgs<'_>, dir: &Path, base: &[f32], query: &[f32], d: usize) -> Result<Value> {
    let batch = 100;
    let n = (a.appends * batch).min(base.len() / d);
    let index = Index::open(dir)?;
    let t = Instant::now();
    for chunk in base[..n * d].chunks(batch * d) {
        index.add(chunk, None)?;
    }
    let append_s = t.elapsed().as_secs_f64();
    let segments = index.snapshot().segments().len();
    let params = SearchParams::new(10);
    let (appended, _) = best_of(a.repeat, || index.search(query, &params))?;
    index.compact()?;
    let (compacted, _) = best_of(a.repeat, || index.search(query, &params))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_is_set_intersection_over_r() {
        // Two queries, ground truth 3 wide.
        let gt = [5, 6, 7, 1, 2, 3];
        let found = vec![vec![6, 5, 9], vec![3, 8, 1]];
        // @1: query 0's first (6) is not 5; query 1's first (3) is not 1.
        assert_eq!(recall_at(&found, &gt, 3, 1), 0.0);
        // @2: {6,5} ∩ {5,6} = 2; {3,8} ∩ {1,2} = 0.
        assert_eq!(recall_at(&found, &gt, 3, 2), 0.5);
        // @3: 2 + 2 of 6.
        assert!((recall_at(&found, &gt, 3, 3) - 4.0 / 6.0).abs() < 1e-12);
        // Short result lists count their missing entries as misses.
        assert_eq!(recall_at(&[vec![5]], &gt[..3], 3, 2), 0.5);
    }

    #[test]
    fn tie_recall_counts_duplicates_of_the_truth() {
        // 1-d base: rows 0 and 1 are duplicates at 0.0, row 2 is at 5.0.
        let base = [0.0, 0.0, 5.0];
        let query = [0.1];
        let gt = [0, 1, 2];
        // Returning the duplicate instead of the true nearest: a miss for
        // set recall, a hit when ties count.
        let found = vec![vec![1]];
        assert_eq!(recall_at(&found, &gt, 3, 1), 0.0);
        assert_eq!(tie_recall_at(&found, &gt, 3, 1, &base, &query), 1.0);
        // A farther vector is no tie.
        assert_eq!(tie_recall_at(&[vec![2]], &gt, 3, 1, &base, &query), 0.0);
    }

    #[test]
    fn serve_commands() {
        assert_eq!(parse_command("batch 1").unwrap(), (Pass::Batch, 1));
        assert_eq!(parse_command(" single\t2 ").unwrap(), (Pass::Single, 2));
        assert_eq!(parse_command("refine 16").unwrap(), (Pass::Refine, 16));
        for bad in ["", "batch", "batch 0", "batch -1", "batch x", "batch 1 2", "flat 1", "end"] {
            assert!(parse_command(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn median_of_odd_even_and_unsorted() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
