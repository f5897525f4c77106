//! `chromatica inspect`: a human summary, or the same facts as JSON.

use chromatica::{Error, HealthOptions, Rerank, Result, SearchParams};
use std::path::Path;

fn mib(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64)
    } else {
        format!("{b} B")
    }
}

pub fn run(dir: &Path, json: bool) -> Result<()> {
    let index = super::open_read_only(dir)?;
    let i = index.inspect();
    if json {
        println!("{}", serde_json::to_string_pretty(&i).expect("plain data serialises"));
        return Ok(());
    }
    let c = &i.config;
    println!("index       {}", dir.display());
    println!("format      version {}, manifest generation {}", i.format_version, i.generation);
    println!(
        "config      dim {}, nlist {}, m {}, nbits {} ({} bytes per code), nprobe {}, metric L2{}",
        c.dim,
        c.nlist,
        c.m,
        c.nbits,
        i.code_size,
        c.nprobe,
        if c.fast_scan { ", fast-scan (codes in blocks of 32)" } else { "" }
    );
    println!(
        "defaults    vector search: nprobe {}, {} candidates; colour search (EMD): nprobe {}, {} candidates",
        c.nprobe, i.default_candidates, i.emd_nprobe, i.emd_candidates
    );
    let trained = match (i.trained, i.train_points) {
        (false, _) => "no".into(),
        // Training needs at least nlist points: none means imported quantizers.
        (true, 0) => "yes (imported quantizers)".into(),
        (true, n) => format!("yes, on {n} vectors"),
    };
    println!("trained     {trained}");
    println!("vectors     {} live, {} deleted, next id {}", i.vectors, i.deleted, i.next_id);
    println!("segments    {}", i.segments.len());
    for s in &i.segments {
        println!(
            "  {}  {:>10} vectors ({} deleted)  {:>12}  generation {}  {}-byte ids",
            s.file,
            s.vectors,
            s.deleted,
            mib(s.bytes),
            s.generation,
            s.id_width
        );
    }
    println!("tombstones  {}", i.tombstones.len());
    for t in &i.tombstones {
        println!("  {}  {:>10} ids  generation {} (hides them in older segments)", t.file, t.ids, t.generation);
    }
    let l = &i.lists;
    println!(
        "lists       {} lists, {} empty; sizes min {} / p50 {} / p90 {} / p99 {} / max {}, mean {:.1}, imbalance {:.3}",
        l.nlist, l.empty, l.min, l.p50, l.p90, l.p99, l.max, l.mean, l.imbalance
    );
    let m = &i.memory;
    println!("memory      (everything counted, not just codes)");
    println!("  codes                 {:>12}  ({:.1} B/vector)", mib(m.code_bytes), m.code_bytes_per_vector);
    println!("  ids                   {:>12}", mib(m.id_bytes));
    println!("  quantizers            {:>12}  (coarse centroids + PQ codebooks)", mib(m.quantizer_bytes));
    println!("  precomputed table     {:>12}", mib(m.precomputed_table_bytes));
    println!("  refine store          {:>12}  (exact vectors for re-ranking)", mib(m.refine_bytes));
    println!("  records               {:>12}  (paths, sizes, modification times)", mib(m.record_bytes));
    println!(
        "  metadata              {:>12}  (headers, list directories, padding, tombstones, manifest)",
        mib(m.metadata_bytes)
    );
    println!("  on disk               {:>12}  ({:.1} B/vector)", mib(m.disk_bytes), m.disk_bytes_per_vector);
    println!(
        "  resident heap         {:>12}  ({:.1} B/vector; codes and ids are mapped, {} more as pages are read)",
        mib(m.resident_heap_bytes),
        m.resident_bytes_per_vector,
        mib(m.mapped_bytes)
    );
    println!("  flat float32          {:>12}", mib(m.flat_f32_bytes));
    println!(
        "  compression           {:.0}× counting codes only, {:.1}× counting everything on disk",
        m.compression_codes_only, m.compression_total
    );
    let d = &i.disk_bytes;
    println!(
        "disk_bytes  codes {} + ids {} + quantizers {} + refine {} + records {} + metadata {} = {}",
        d.codes, d.ids, d.quantizers, d.refine, d.records, d.metadata, d.total
    );
    Ok(())
}

fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).expect("plain data serialises"));
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn opt_f(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// `--sample` and `--queries`, checked.
pub fn health_options(sample: Option<usize>, queries: Option<usize>) -> Result<HealthOptions> {
    let mut o = HealthOptions::default();
    if let Some(s) = sample {
        if s == 0 || s > 1_000_000 {
            return Err(Error::invalid_argument("--sample", "--sample must be between 1 and 1000000"));
        }
        o.sample = s;
    }
    if let Some(q) = queries {
        if q > 10_000 {
            return Err(Error::invalid_argument("--queries", "--queries must be at most 10000"));
        }
        o.queries = q;
    }
    o.queries = o.queries.min(o.sample);
    Ok(o)
}

/// `inspect --id`.
pub fn id(dir: &Path, id: u64, json: bool) -> Result<()> {
    let index = super::open_read_only(dir)?;
    let r = index.explain_id(id)?;
    if json {
        print_json(&r);
        return Ok(());
    }
    if r.copies.is_empty() {
        println!("id {id}: not stored in this index (generation {})", index.snapshot().generation());
        return Ok(());
    }
    println!("id {id}: {}", if r.live { "live" } else { "deleted" });
    for c in &r.copies {
        println!(
            "  segment {} (generation {}), list {}, position {}",
            c.segment, c.segment_generation, c.list, c.position
        );
        if !c.code.is_empty() {
            println!("    code                  {}", c.code);
        }
        println!("    reconstruction error  {}", opt(c.reconstruction_error));
        println!("    coarse error          {}", opt(c.coarse_error));
        if let Some(p) = &c.record {
            println!("    record                {}", super::safe(p));
        }
        if c.deleted {
            println!("    deleted by            {}", opt(c.deleted_by.as_deref()));
        }
    }
    Ok(())
}

/// `inspect --list`.
pub fn list(dir: &Path, l: usize, json: bool) -> Result<()> {
    let index = super::open_read_only(dir)?;
    let r = index.explain_list(l)?;
    if json {
        print_json(&r);
        return Ok(());
    }
    println!("list {l}: {} live vectors", r.live);
    for s in &r.segments {
        println!("  {}  {:>8} stored  {:>8} live", s.segment, s.stored, s.live);
    }
    let near: Vec<String> = r.nearest_lists.iter().map(|n| format!("{} ({:.4})", n.list, n.distance)).collect();
    println!("nearest lists (centroid distance²)  {}", if near.is_empty() { "-".into() } else { near.join(", ") });
    let ids: Vec<String> = r.sample_ids.iter().map(|i| i.to_string()).collect();
    println!("sample ids  {}", if ids.is_empty() { "-".into() } else { ids.join(" ") });
    println!("mean reconstruction error  {}", opt_f(r.mean_reconstruction_error));
    Ok(())
}

/// `inspect --segment`.
pub fn segment(dir: &Path, n: usize, json: bool) -> Result<()> {
    let index = super::open_read_only(dir)?;
    let r = index.explain_segment(n)?;
    if json {
        print_json(&r);
        return Ok(());
    }
    println!("segment {n}: {} (generation {})", r.file, r.generation);
    println!("  vectors     {} stored, {} deleted", r.vectors, r.deleted);
    println!(
        "  bytes       {} total: codes {}, refine {}, records {}; {}-byte ids",
        r.bytes, r.code_bytes, r.refine_bytes, r.record_bytes, r.id_width
    );
    let big: Vec<String> = r.largest_lists.iter().map(|(l, c)| format!("{l}:{c}")).collect();
    println!("  lists       {} non-empty; largest (list:vectors) {}", r.nonempty_lists, big.join(" "));
    for (t, c) in &r.hidden_by {
        println!("  hidden by   {t}: {c} vectors");
    }
    Ok(())
}

/// One measure against the training baseline: (name, now, at training,
/// now / at training).
pub type DriftRow = (&'static str, Option<f64>, Option<f64>, Option<f64>);

/// The measures health compares with the training baseline, for the text
/// and the HTML report.
pub fn drift_rows(h: &chromatica::HealthReport) -> Vec<DriftRow> {
    let b = h.baseline;
    vec![
        ("reconstruction error", h.reconstruction_error, b.map(|b| b.reconstruction_error), h.reconstruction_growth),
        ("coarse error", h.coarse_error, b.map(|b| b.coarse_error), h.coarse_growth),
        ("mean ‖x‖²", h.mean_norm, b.map(|b| b.mean_norm), None),
        ("imbalance", Some(h.imbalance), b.map(|b| b.imbalance), h.imbalance_growth),
    ]
}

/// Why there is no baseline to compare with.
pub fn no_baseline(h: &chromatica::HealthReport) -> &'static str {
    if h.train_points == 0 {
        "no training baseline (untrained, or imported quantizers)"
    } else {
        "no training baseline stored (trained by a build before format version 2): retrain to record one"
    }
}

/// `inspect --health` and `--html`.
pub fn health(dir: &Path, opts: &HealthOptions, json: bool, html: Option<&Path>) -> Result<()> {
    let index = super::open_read_only(dir)?;
    let t = std::time::Instant::now();
    let h = index.health(opts)?;
    let seconds = t.elapsed().as_secs_f64();
    if let Some(out) = html {
        let inspection = index.inspect();
        let page = super::report_html::page(&dir.display().to_string(), &inspection, &h);
        chromatica::write_atomic_bytes(out, page.as_bytes())?;
    }
    if json {
        print_json(&h);
        return Ok(());
    }
    if let Some(out) = html {
        println!("wrote {}", out.display());
    }
    println!("generation  {}", h.generation);
    println!(
        "vectors     {} live, {}, {} deleted ({:.1}%, about {} segment bytes)",
        h.vectors,
        grown(&h),
        h.deleted,
        100.0 * h.deleted_fraction,
        h.deleted_bytes
    );
    println!("imbalance   {:.3}", h.imbalance);
    println!(
        "sample      {} vectors: reconstruction error {}, coarse error {}, mean ‖x‖² {}",
        h.sample,
        opt_f(h.reconstruction_error),
        opt_f(h.coarse_error),
        opt_f(h.mean_norm)
    );
    match &h.baseline {
        Some(b) => {
            println!("drift       since training ({} points):", b.points);
            for (what, now, then, growth) in drift_rows(&h) {
                println!(
                    "  {what:<22} now {:>10}  at training {:>10}  {}",
                    opt_f(now),
                    opt_f(then),
                    growth.map_or("-".into(), |g| format!("{g:.2}×"))
                );
            }
        }
        None => println!("drift       {}", no_baseline(&h)),
    }
    if h.recall.is_empty() {
        println!("recall      not estimated (needs quantizers and a refine store)");
    }
    for p in &h.recall {
        let mark = if p.nprobe == h.nprobe { "  (default)" } else { "" };
        println!(
            "recall      nprobe {:>5}: estimated recall@10 {:.3} stage 1, {} re-ranked, on {} stored vectors{mark}",
            p.nprobe,
            p.recall_at_10,
            opt_f(p.reranked_recall_at_10),
            h.recall_queries
        );
    }
    if h.advice.is_empty() {
        println!("advice      none: nothing crosses a threshold");
    }
    for a in &h.advice {
        println!("advice      {}", a.message);
    }
    println!("measured in {seconds:.2}s");
    Ok(())
}

/// What `chromatica explain` was given.
pub struct ExplainArgs<'a> {
    pub dir: &'a Path,
    pub id: u64,
    pub colors: Option<String>,
    pub image: Option<std::path::PathBuf>,
    pub vectors: Option<std::path::PathBuf>,
    pub row: Option<usize>,
    pub k: usize,
    pub nprobe: Option<usize>,
    pub rerank: Option<String>,
    pub candidates: Option<usize>,
    pub json: bool,
}

/// `chromatica explain`.
pub fn explain(a: ExplainArgs<'_>) -> Result<()> {
    use chromatica::images::{ImageIndex, ImageLimits, Query, SearchOptions};
    let rerank = match a.rerank.as_deref().map(str::to_ascii_lowercase) {
        None => None,
        Some(o) => Some(Rerank::from_name(&o).ok_or_else(|| {
            Error::invalid_argument("--rerank", format!("--rerank {o:?}: expected exact, l2, emd or none"))
        })?),
    };
    // A colour or image query is explained as `search --colors/--image`
    // runs it (the exact-EMD scan by default), traced step by step.
    let image_query = match (&a.colors, &a.image) {
        (Some(spec), _) => Some(Query::colors(spec)?),
        (_, Some(path)) => Some(Query::Image(path.clone())),
        _ => None,
    };
    if let Some(q) = image_query {
        let lib = ImageIndex::open_read_only(a.dir)?;
        let prepared = q.prepare(&ImageLimits::default(), 5)?;
        let mut options = SearchOptions::default().k(a.k);
        if let Some(n) = a.nprobe {
            options = options.nprobe(n);
        }
        if let Some(c) = a.candidates {
            options = options.candidates(c);
        }
        if let Some(r) = rerank {
            options = options.rerank(r);
        }
        let e = lib.explain(&prepared, a.id, &options)?;
        return print_explanation(&e, a.json);
    }
    let index = super::open_read_only(a.dir)?;
    let query = match &a.vectors {
        Some(path) => {
            let f = chromatica::vecio::VectorFile::open(path)?;
            let row = a.row.expect("clap: --vectors requires --row");
            if row >= f.len() {
                return Err(Error::invalid_argument("--row", format!("--row {row}: the file has {} rows", f.len())));
            }
            let mut out = Vec::new();
            f.read_rows(row, 1, &mut out)?;
            out
        }
        None => unreachable!("clap: one of --colors, --image, --vectors"),
    };
    let mut params = SearchParams::new(a.k);
    params.nprobe = a.nprobe;
    params.candidates = a.candidates;
    params.rerank = rerank;
    let e = index.explain_query(&query, a.id, &params)?;
    print_explanation(&e, a.json)
}

/// `explain`'s text (or JSON) for one explanation.
fn print_explanation(e: &chromatica::QueryExplanation, json: bool) -> Result<()> {
    if json {
        print_json(e);
        return Ok(());
    }
    println!("id {}: {}", e.id, if e.returned { "returned" } else { "not returned" });
    println!(
        "  list        {} (rank {} by centroid distance; {} probed: {})",
        opt(e.list),
        opt(e.list_rank),
        e.nprobe,
        if e.list_probed { "probed" } else { "NOT probed" }
    );
    println!(
        "  stage 1     rank {} by code distance {} (rank {} had every list been probed)",
        opt(e.stage1_rank),
        opt(e.stage1_distance),
        opt(e.stage1_rank_all_lists)
    );
    if e.rerank != "none" {
        println!(
            "  re-rank     {}: {} candidates, {}; final rank {} (distance {})",
            e.rerank,
            e.candidates,
            if e.in_candidates { "among them" } else { "not among them" },
            opt(e.final_rank),
            opt(e.final_distance)
        );
    }
    if e.rerank == "exact" {
        println!(
            "  exact EMD   {} (k-th {}; scan bound {}; {}{})",
            opt(e.emd),
            opt(e.kth_distance),
            opt(e.emd_bound),
            if e.scanned { "every image checked by bounds" } else { "candidates only" },
            if e.excluded { "; dropped by an excluded colour" } else { "" }
        );
    }
    println!("  why         {}", e.reason);
    Ok(())
}

/// "N when trained (G×)", or why that is not known.
pub fn grown(h: &chromatica::HealthReport) -> String {
    if h.trained_vectors == 0 {
        "live count when trained not recorded (trained before adding)".into()
    } else {
        format!("{} when trained ({:.2}×)", h.trained_vectors, h.growth_since_training)
    }
}

/// What `chromatica tune` was given.
pub struct TuneArgs<'a> {
    pub dir: &'a Path,
    pub target: f64,
    pub queries: usize,
    pub vectors: Option<&'a Path>,
    pub seed: u64,
    pub dry_run: bool,
    pub truth: &'a str,
    pub json: bool,
}

/// `chromatica tune`: measures on a read-only snapshot (by exact EMD on a
/// colour index, see `--truth`), then (unless --dry-run) takes the writer
/// lock for the one commit that stores nprobe.
pub fn tune(a: TuneArgs<'_>) -> Result<()> {
    let TuneArgs { dir, target, queries, vectors, seed, dry_run, truth, json } = a;
    if !(target > 0.0 && target <= 1.0) {
        return Err(Error::invalid_argument("--recall", format!("--recall must be in (0, 1], got {target}")));
    }
    if queries == 0 || queries > 100_000 {
        return Err(Error::invalid_argument("--queries", "--queries must be between 1 and 100000"));
    }
    let t = std::time::Instant::now();
    let index = super::open_read_only(dir)?;
    let c = index.config();
    let colour = c.refine && c.dim == chromatica::color::HIST_DIM;
    let emd = match truth {
        "emd" if vectors.is_some() => {
            return Err(Error::invalid_argument("--truth", "--truth emd tunes on colour palettes, not --vectors"))
        }
        "emd" => true,
        "l2" => false,
        _ => colour && vectors.is_none(),
    };
    let r = match vectors {
        None if emd => {
            drop(index);
            chromatica::images::ImageIndex::open_read_only(dir)?.tune(target, queries, seed)?
        }
        None => index.tune(target, queries, seed)?,
        Some(path) => {
            let f = chromatica::vecio::VectorFile::open(path)?;
            chromatica::check_dim(f.dim(), index.config().dim, "the query vectors")?;
            let mut rows = Vec::new();
            f.read_rows(0, queries.min(f.len()), &mut rows)?;
            index.tune_with_queries(target, &rows)?
        }
    };
    let seconds = t.elapsed().as_secs_f64();
    // Storing takes the writer lock for one commit; when it fails (another
    // writer holds the lock), the measurements are still printed, then the
    // error.
    let store = match (&r.chosen, dry_run) {
        (Some(c), false) => {
            chromatica::Index::open(dir).and_then(|w| w.set_search_defaults(r.rerank(), c.nprobe, c.candidates))
        }
        _ => Ok(()),
    };
    let stored = r.chosen.is_some() && !dry_run && store.is_ok();
    let searches = if emd { "colour searches (exact EMD)" } else { "vector searches (exact L2 re-rank)" };
    if json {
        let mut v = serde_json::to_value(&r).expect("plain data");
        v["stored"] = serde_json::Value::Bool(stored);
        if let Err(e) = &store {
            v["store_error"] = serde_json::json!(e.to_string());
        }
        v["seconds"] = serde_json::json!(seconds);
        print_json(&v);
    } else {
        println!(
            "recall@10 against {} on {} {} (target {}):",
            r.truth,
            r.queries,
            if vectors.is_some() {
                "query vectors"
            } else if emd {
                "colour palettes of stored images"
            } else {
                "stored vectors"
            },
            r.target
        );
        println!("  nprobe  candidates  rerank  recall@10  µs/query  solves/query");
        for p in &r.points {
            println!(
                "  {:>6}  {:>10}  {:>6}  {:>9.3}  {:>8.1}  {:>12}{}",
                p.nprobe,
                p.candidates,
                p.rerank,
                p.recall_at_10,
                p.micros_per_query,
                p.solves_per_query.map_or("-".into(), |s| format!("{s:.0}")),
                if p.meets_target { "  meets" } else { "" }
            );
        }
        if let Some(f) = &r.fastest {
            println!(
                "fastest meeting the target: nprobe {} with {} candidates, re-rank {} ({:.3}, {:.1} µs/query)",
                f.nprobe, f.candidates, f.rerank, f.recall_at_10, f.micros_per_query
            );
        }
        match &r.chosen {
            None => println!("no setting meets {}: nothing stored", r.target),
            Some(c) => println!(
                "chosen: nprobe {} with {} candidates ({:.3}, {:.1} µs/query); {}",
                c.nprobe,
                c.candidates,
                c.recall_at_10,
                c.micros_per_query,
                if stored {
                    format!(
                        "stored as the defaults of {searches} (were nprobe {}, {} candidates)",
                        r.nprobe_before, r.candidates_before
                    )
                } else if let Err(e) = &store {
                    format!("not stored: {e}")
                } else {
                    "not stored (--dry-run)".into()
                }
            ),
        }
        println!("measured in {seconds:.2}s");
    }
    store?;
    if r.chosen.is_none() {
        return Err(Error::InvalidInput(format!("no measured setting reaches recall@10 {}", r.target)));
    }
    Ok(())
}
