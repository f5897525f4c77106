//! The image workflow: `index` (folders of images into an auto-training
//! index, incrementally), `search` by colours or by example image, and
//! `histogram` of one image. `demo` uses the same functions.

use super::html::{self, SheetEntry};
use super::progress::bar;
use chromatica::color::emd::Sinkhorn;
use chromatica::color::{
    self, hellinger, image_histogram, parse_color_query, query_histogram, to_hex, DEFAULT_SHARPEN, HIST_DIM,
};
use chromatica::read::DEFAULT_CANDIDATES;
use chromatica::{
    Config, Error, Index, Location, Preset, Record, Rerank, Result, SearchParams, Snapshot, AUTO_TRAIN_MIN,
};
use rayon::prelude::*;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};

/// File extensions (lower case) that `index` picks up inside folders.
pub const IMAGE_EXTENSIONS: [&str; 8] = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif"];

/// Images decoded and committed per `add` call (one segment each).
pub const ADD_BATCH: usize = 2_000;

/// Colours shown per image.
pub const PALETTE_SIZE: usize = 5;

/// The configuration of an index that `index` creates: the memory preset
/// with the refine store, training itself once it holds enough images.
pub fn image_config() -> Config {
    Config { refine: true, auto_train: true, ..Config::preset(Preset::Memory) }
}

// ---------------------------------------------------------------- index

/// What one `index` run did.
#[derive(Clone, Debug, Default)]
pub struct IndexSummary {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub failed: usize,
    /// Wall time of the whole run.
    pub seconds: f64,
    /// Images decoded (added + updated + failed to decode) per second.
    pub images_per_second: f64,
    pub created: bool,
    /// Live vectors after the run.
    pub vectors: u64,
    pub trained: bool,
    /// `nlist` of the trained index.
    pub nlist: usize,
    /// Automatic training happened during this run.
    pub trained_now: bool,
}

/// One image file found on disk.
struct Found {
    path: PathBuf,
    /// `path` as stored (UTF-8, canonical).
    text: String,
    size: u64,
    mtime_ns: i64,
    /// Ids this path has in the index now (deleted when it changed).
    old_ids: Vec<u64>,
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    match meta.modified() {
        Ok(t) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
        },
        Err(_) => 0,
    }
}

/// Opens the index in `dir`, creating it when `dir` is missing or empty.
/// A non-empty directory that is not an index is refused: it is probably
/// the photo folder given in the wrong place.
fn open_or_create(dir: &Path) -> Result<(Index, bool)> {
    match Index::open(dir) {
        Ok(index) => Ok((index, false)),
        Err(Error::NotAnIndex(_)) => {
            let empty = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.next().is_none();
            if !empty {
                return Err(Error::InvalidInput(format!(
                    "{}: is not a chromatica index and is not empty; give a new or empty directory for the index",
                    dir.display()
                )));
            }
            Ok((Index::create(dir, image_config())?, true))
        }
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok((Index::create(dir, image_config())?, true))
        }
        Err(e) => Err(e),
    }
}

/// Every image file under `inputs` (folders recursively, files as given),
/// canonical, each once, in a stable order. Problems with single entries are
/// warnings (`warn(message, is_a_file)`); an input that does not exist is an
/// error.
fn collect_files(inputs: &[PathBuf], warn: &mut dyn FnMut(String, bool)) -> Result<Vec<PathBuf>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| Error::io(input, e))?;
        let mut push = |p: &Path, warn: &mut dyn FnMut(String, bool)| match std::fs::canonicalize(p) {
            Ok(c) => {
                if seen.insert(c.clone()) {
                    out.push(c);
                }
            }
            Err(e) => warn(format!("{}: {e}", p.display()), true),
        };
        if meta.is_dir() {
            let mut files = Vec::new();
            // Following links reaches linked folders; walkdir reports a link
            // that loops back to an ancestor as an error (a warning here).
            for entry in walkdir::WalkDir::new(input).follow_links(true).sort_by_file_name() {
                match entry {
                    Ok(e) if e.file_type().is_file() && has_image_extension(e.path()) => files.push(e.into_path()),
                    Ok(_) => {}
                    Err(e) => {
                        let at =
                            e.path().map(|p| p.display().to_string()).unwrap_or_else(|| input.display().to_string());
                        let why = e.io_error().map(|io| io.to_string()).unwrap_or_else(|| e.to_string());
                        let why =
                            if e.loop_ancestor().is_some() { "symbolic link loop, skipped".to_owned() } else { why };
                        // A folder that cannot be read or a link loop: no
                        // image failed, but the user should know.
                        let is_file = e.path().is_some_and(|p| p.is_file());
                        warn(format!("{at}: {why}"), is_file);
                    }
                }
            }
            for f in files {
                push(&f, warn);
            }
        } else {
            push(input, warn);
        }
    }
    Ok(out)
}

/// What the index holds for one path.
struct Known {
    /// Every live id recorded with the path (more than one only after an
    /// interrupted update).
    ids: Vec<u64>,
    /// Size and mtime recorded with the newest id.
    size: u64,
    mtime_ns: i64,
    newest: u64,
}

/// Path → what the index holds for it, over every live record.
fn existing_records(snap: &Snapshot) -> Result<HashMap<String, Known>> {
    let mut map: HashMap<String, Known> = HashMap::new();
    let mut err = None;
    snap.for_each_live(|si, p, id| {
        if err.is_some() {
            return;
        }
        match snap.segments[si].record(p) {
            Ok(Some(r)) => {
                let k = map.entry(r.path.to_owned()).or_insert_with(|| Known {
                    ids: Vec::new(),
                    size: r.size,
                    mtime_ns: r.mtime_ns,
                    newest: id,
                });
                k.ids.push(id);
                if id >= k.newest {
                    (k.size, k.mtime_ns, k.newest) = (r.size, r.mtime_ns, id);
                }
            }
            Ok(None) => {}
            Err(e) => err = Some(e),
        }
    })?;
    match err {
        Some(e) => Err(e),
        None => Ok(map),
    }
}

/// Hellinger-transformed histogram of an image file.
fn image_vector(path: &Path) -> Result<Vec<f32>> {
    let mut h = image_histogram(path)?;
    hellinger(&mut h);
    Ok(h)
}

/// Indexes the images under `inputs` into the index in `dir` (created if
/// needed): new files are added, changed files (size or mtime) replaced,
/// unchanged files skipped. Unreadable images are warnings on stderr.
pub fn index_images(dir: &Path, inputs: &[PathBuf]) -> Result<IndexSummary> {
    let t0 = Instant::now();
    if inputs.is_empty() {
        return Err(Error::InvalidInput("give at least one folder or image to index".into()));
    }
    for input in inputs {
        std::fs::metadata(input).map_err(|e| Error::io(input, e))?;
    }
    let (index, created) = open_or_create(dir)?;
    let config = index.config();
    if config.dim != HIST_DIM {
        return Err(Error::InvalidInput(format!(
            "{}: the index holds {}-dimension vectors; image histograms have {HIST_DIM}",
            dir.display(),
            config.dim
        )));
    }
    let mut summary = IndexSummary { created, ..Default::default() };
    let warn = |msg: String| eprintln!("warning: {msg}");
    let mut failed_early = 0;
    let files = collect_files(inputs, &mut |m, is_file| {
        failed_early += usize::from(is_file);
        warn(m)
    })?;
    summary.failed += failed_early;
    let mut known = existing_records(&index.snapshot())?;
    let mut todo = Vec::new();
    for path in files {
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                warn(format!("{}: {e}", path.display()));
                summary.failed += 1;
                continue;
            }
        };
        let Some(text) = path.to_str().map(str::to_owned) else {
            warn(format!("{}: path is not valid UTF-8, skipped", path.display()));
            summary.failed += 1;
            continue;
        };
        let (size, mtime) = (meta.len(), mtime_ns(&meta));
        let old_ids = match known.remove(&text) {
            Some(k) if k.size == size && k.mtime_ns == mtime && k.ids.len() == 1 => {
                summary.unchanged += 1;
                continue;
            }
            Some(k) => k.ids,
            None => Vec::new(),
        };
        todo.push(Found { path, text, size, mtime_ns: mtime, old_ids });
    }

    let pb = bar(todo.len() as u64, "images");
    let t_decode = Instant::now();
    for chunk in todo.chunks(ADD_BATCH) {
        let vectors: Vec<Result<Vec<f32>>> = chunk
            .par_iter()
            .map(|f| {
                let v = image_vector(&f.path);
                if let Err(e) = &v {
                    pb.suspend(|| warn(e.to_string()));
                }
                pb.inc(1);
                v
            })
            .collect();
        let mut data = Vec::with_capacity(chunk.len() * HIST_DIM);
        let mut records = Vec::with_capacity(chunk.len());
        let mut stale = Vec::new();
        for (f, v) in chunk.iter().zip(vectors) {
            // A changed file's old vector goes whether or not it still decodes.
            stale.extend_from_slice(&f.old_ids);
            match v {
                Ok(v) => {
                    data.extend_from_slice(&v);
                    records.push(Record { path: f.text.clone(), size: f.size, mtime_ns: f.mtime_ns });
                    if f.old_ids.is_empty() {
                        summary.added += 1;
                    } else {
                        summary.updated += 1;
                    }
                }
                Err(_) => summary.failed += 1,
            }
        }
        // Add before deleting: an interruption in between leaves the file
        // twice, which the next run repairs, rather than not at all.
        if !records.is_empty() {
            let report = index.add_records(&data, None, &records)?;
            if let Some(e) = &report.merge_error {
                pb.suspend(|| warn(format!("the batch is committed, but a step after it failed: {e}")));
            }
            summary.trained_now |= report.trained.is_some();
        }
        if !stale.is_empty() {
            index.delete(&stale)?;
        }
    }
    pb.finish_and_clear();
    let decoded = todo.len();
    let secs = t_decode.elapsed().as_secs_f64();
    summary.images_per_second = if decoded > 0 && secs > 0.0 { decoded as f64 / secs } else { 0.0 };
    summary.vectors = index.len();
    summary.trained = index.is_trained();
    summary.nlist = index.config().nlist;
    summary.seconds = t0.elapsed().as_secs_f64();
    Ok(summary)
}

/// One line on the index's state: exact search or trained, and its size.
pub fn state_line(s: &IndexSummary) -> String {
    if s.trained {
        format!(
            "{} vectors, trained{} (IVF-PQ, nlist {}), approximate search re-ranked exactly",
            s.vectors,
            if s.trained_now { " during this run" } else { "" },
            s.nlist
        )
    } else {
        format!("{} vectors, exact search (untrained; trains itself at {} vectors)", s.vectors, AUTO_TRAIN_MIN)
    }
}

/// "added …, updated …, unchanged …, failed … in …s (… images/s)".
pub fn summary_line(s: &IndexSummary) -> String {
    let rate =
        if s.images_per_second > 0.0 { format!(" ({:.0} images/s)", s.images_per_second) } else { String::new() };
    format!(
        "added {}, updated {}, unchanged {}, failed {} in {:.2}s{rate}",
        s.added, s.updated, s.unchanged, s.failed, s.seconds
    )
}

pub fn index(dir: &Path, inputs: &[PathBuf]) -> Result<()> {
    let s = index_images(dir, inputs)?;
    if s.created {
        println!("created index {}", dir.display());
    }
    println!("{}", summary_line(&s));
    println!("index {}: {}", dir.display(), state_line(&s));
    Ok(())
}

// ---------------------------------------------------------------- search

/// What a colour search looks for.
#[derive(Clone, Debug)]
pub enum Query {
    /// A colour query such as `ff7f50,e1ad01` or `ea6a81:0.3,f6d727:0.7`.
    Colors(String),
    /// An example image.
    Image(PathBuf),
}

/// A query turned into its vector and palette.
pub struct PreparedQuery {
    pub vector: Vec<f32>,
    /// Colours to show for the query: the colours asked for, or the image's
    /// dominant colours.
    pub palette: Vec<[u8; 3]>,
}

impl Query {
    pub fn prepare(&self) -> Result<PreparedQuery> {
        match self {
            Query::Colors(spec) => {
                let q = parse_color_query(spec)?;
                let mut vector = query_histogram(&q, DEFAULT_SHARPEN);
                hellinger(&mut vector);
                let mut palette: Vec<[u8; 3]> = Vec::new();
                for (c, _) in &q.colors {
                    if !palette.contains(c) {
                        palette.push(*c);
                    }
                }
                Ok(PreparedQuery { vector, palette })
            }
            Query::Image(path) => {
                let mut vector = image_histogram(path)?;
                let palette = palette(&vector, false, PALETTE_SIZE);
                hellinger(&mut vector);
                Ok(PreparedQuery { vector, palette })
            }
        }
    }
}

/// One result, resolved.
#[derive(Clone, Debug)]
pub struct Hit {
    pub id: u64,
    pub distance: f32,
    /// `None` for a vector added without a record (`add --vectors`).
    pub path: Option<String>,
    pub palette: Vec<[u8; 3]>,
}

/// Radius (CIE76 ΔE) of one palette colour. Soft assignment spreads a
/// colour over the 2 × 2 × 2 bins around it, at most one bin step apart on
/// each axis (12.5 L*, 15.3 a*, 16.9 b*: 26 along the diagonal).
pub const PALETTE_RADIUS: f64 = 27.0;

/// Palette colours holding less of the image than this are left out.
pub const PALETTE_MIN_SHARE: f64 = 0.02;

fn bin_centers() -> &'static [[f64; 3]] {
    static CENTERS: std::sync::OnceLock<Vec<[f64; 3]>> = std::sync::OnceLock::new();
    CENTERS.get_or_init(color::bin_centers_lab)
}

/// Up to `n` colours of a histogram (or a Hellinger vector, squared here)
/// with their shares, largest first. The heaviest bin not yet taken gathers
/// every untaken bin within [`PALETTE_RADIUS`]; the colour is the
/// mass-weighted mean of their Lab centres, which gives back a single
/// colour exactly (the inverse of the soft assignment), where
/// [`color::dominant_colors`] would list the same colour once per bin it spreads
/// over. Colours under [`PALETTE_MIN_SHARE`] are dropped, except the first.
pub fn palette_with_shares(hist: &[f32], hellinger: bool, n: usize) -> Vec<([u8; 3], f64)> {
    let mass = |v: f32| if hellinger { f64::from(v) * f64::from(v) } else { f64::from(v) };
    let centers = bin_centers();
    let mut bins: Vec<(usize, f64)> =
        hist.iter().take(HIST_DIM).enumerate().map(|(i, &v)| (i, mass(v))).filter(|&(_, w)| w > 0.0).collect();
    let total: f64 = bins.iter().map(|b| b.1).sum();
    if total <= 0.0 || !total.is_finite() {
        return Vec::new();
    }
    bins.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut taken = vec![false; bins.len()];
    let mut clusters: Vec<([f64; 3], f64)> = Vec::new();
    for s in 0..bins.len() {
        if taken[s] {
            continue;
        }
        let seed = centers[bins[s].0];
        let (mut sum, mut w) = ([0.0f64; 3], 0.0);
        for (j, &(k, wk)) in bins.iter().enumerate().skip(s) {
            let c = centers[k];
            if !taken[j] && (0..3).map(|i| (c[i] - seed[i]).powi(2)).sum::<f64>() <= PALETTE_RADIUS.powi(2) {
                taken[j] = true;
                (0..3).for_each(|i| sum[i] += wk * c[i]);
                w += wk;
            }
        }
        clusters.push((sum.map(|x| x / w), w / total));
    }
    clusters.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut out: Vec<([u8; 3], f64)> = Vec::with_capacity(n);
    for (lab, share) in clusters {
        if out.len() >= n || (!out.is_empty() && share < PALETTE_MIN_SHARE) {
            break;
        }
        let rgb = color::lab_to_srgb(lab);
        match out.iter_mut().find(|(c, _)| *c == rgb) {
            Some(o) => o.1 += share,
            None => out.push((rgb, share)),
        }
    }
    out
}

/// The colours of [`palette_with_shares`].
pub fn palette(hist: &[f32], hellinger: bool, n: usize) -> Vec<[u8; 3]> {
    palette_with_shares(hist, hellinger, n).into_iter().map(|(c, _)| c).collect()
}

/// The dominant colours of a stored vector (empty without a refine store).
pub fn stored_palette(snap: &Snapshot, at: Location) -> Result<Vec<[u8; 3]>> {
    if !snap.manifest.config.refine {
        return Ok(Vec::new());
    }
    Ok(palette(&snap.vector(at)?, true, PALETTE_SIZE))
}

/// Searches `snap` for one Hellinger vector and resolves each result's
/// record and palette.
pub fn search_snapshot(snap: &Snapshot, vector: &[f32], params: &SearchParams) -> Result<Vec<Hit>> {
    let found = snap.search(vector, params)?;
    let mut hits = Vec::new();
    for nb in found.into_iter().next().unwrap_or_default() {
        let path = snap.record(nb.location)?.map(|r| r.path);
        let palette = stored_palette(snap, nb.location)?;
        hits.push(Hit { id: nb.id, distance: nb.distance, path, palette });
    }
    Ok(hits)
}

/// A colour as a true-colour swatch and its hex code on a terminal, the hex
/// code alone otherwise.
pub fn swatch(rgb: [u8; 3], tty: bool) -> String {
    if tty {
        format!("\x1b[48;2;{};{};{}m  \x1b[0m {}", rgb[0], rgb[1], rgb[2], to_hex(rgb))
    } else {
        to_hex(rgb)
    }
}

pub fn swatches(colors: &[[u8; 3]], tty: bool) -> String {
    colors.iter().map(|&c| swatch(c, tty)).collect::<Vec<_>>().join(" ")
}

/// How `--rerank` and the EMD options were given.
#[derive(Clone, Copy, Debug)]
pub struct RerankArgs<'a> {
    pub rerank: Option<&'a str>,
    pub emd_epsilon: Option<f32>,
    pub emd_iterations: Option<usize>,
}

impl RerankArgs<'_> {
    fn resolve(&self) -> Result<Option<Rerank>> {
        let emd_options = self.emd_epsilon.is_some() || self.emd_iterations.is_some();
        let rerank = match self.rerank.map(str::to_ascii_lowercase).as_deref() {
            None if emd_options => Some("emd"),
            None => None,
            Some("l2") => Some("l2"),
            Some("emd") => Some("emd"),
            Some("none") | Some("off") => Some("none"),
            Some(other) => {
                return Err(Error::InvalidInput(format!("--rerank {other:?}: expected l2, emd or none")));
            }
        };
        if emd_options && rerank != Some("emd") {
            return Err(Error::InvalidInput("--emd-epsilon and --emd-iterations need --rerank emd".into()));
        }
        Ok(match rerank {
            None => None,
            Some("l2") => Some(Rerank::L2),
            Some("none") => Some(Rerank::Off),
            _ => {
                let d = Sinkhorn::default();
                let s = Sinkhorn {
                    epsilon: self.emd_epsilon.unwrap_or(d.epsilon),
                    iterations: self.emd_iterations.unwrap_or(d.iterations),
                };
                s.validate()?;
                Some(Rerank::Emd(s))
            }
        })
    }
}

fn rerank_name(r: Rerank) -> &'static str {
    match r {
        Rerank::Off => "none",
        Rerank::L2 => "l2",
        Rerank::Emd(_) => "emd",
    }
}

/// `search --colors` / `search --image`.
pub struct SearchArgs<'a> {
    pub dir: &'a Path,
    pub query: Query,
    pub k: usize,
    pub nprobe: Option<usize>,
    pub rerank: RerankArgs<'a>,
    pub candidates: Option<usize>,
    pub threads: Option<usize>,
    pub json: bool,
    pub html: Option<&'a Path>,
}

pub fn search(a: SearchArgs<'_>) -> Result<()> {
    let t0 = Instant::now();
    if a.k == 0 {
        return Err(Error::InvalidInput("--k must be at least 1".into()));
    }
    if a.candidates == Some(0) {
        return Err(Error::InvalidInput("--candidates must be at least 1".into()));
    }
    let pool = super::thread_pool(a.threads)?;
    let rerank = a.rerank.resolve()?;
    let index = super::open_read_only(a.dir)?;
    let snap = index.snapshot();
    let c = snap.manifest.config;
    if c.dim != HIST_DIM {
        return Err(Error::InvalidInput(format!(
            "{}: the index holds {}-dimension vectors; colour and image queries need {HIST_DIM} (use --vectors)",
            a.dir.display(),
            c.dim
        )));
    }
    if let Some(p) = a.nprobe {
        c.check_nprobe(p)?;
    }
    let t = Instant::now();
    let prepared = a.query.prepare()?;
    let histogram_ms = t.elapsed().as_secs_f64() * 1e3;
    let params = SearchParams { k: a.k, nprobe: a.nprobe, rerank, candidates: a.candidates };
    let t = Instant::now();
    let hits = pool.install(|| search_snapshot(&snap, &prepared.vector, &params))?;
    let search_ms = t.elapsed().as_secs_f64() * 1e3;

    let effective_rerank = rerank.unwrap_or(if c.refine { Rerank::L2 } else { Rerank::Off });
    let nprobe = a.nprobe.unwrap_or(c.nprobe);
    let candidates = a.candidates.unwrap_or(DEFAULT_CANDIDATES);
    let (kind, value) = match &a.query {
        Query::Colors(spec) => ("colors", spec.clone()),
        Query::Image(p) => ("image", p.display().to_string()),
    };

    if let Some(out) = a.html {
        let entries: Vec<SheetEntry> = hits
            .iter()
            .enumerate()
            .map(|(i, h)| SheetEntry {
                rank: i + 1,
                id: h.id,
                distance: h.distance,
                path: h.path.clone(),
                palette: h.palette.clone(),
            })
            .collect();
        let title = format!("{kind} {value}");
        let image = match &a.query {
            Query::Image(p) => Some(p.as_path()),
            Query::Colors(_) => None,
        };
        html::write_contact_sheet(out, &title, image, &prepared.palette, &entries)?;
    }
    let total_ms = t0.elapsed().as_secs_f64() * 1e3;

    if a.json {
        let hex = |p: &[[u8; 3]]| p.iter().map(|&c| to_hex(c)).collect::<Vec<_>>();
        let results: Vec<_> = hits
            .iter()
            .enumerate()
            .map(|(i, h)| {
                json!({
                    "rank": i + 1,
                    "id": h.id,
                    "path": h.path,
                    "distance": h.distance,
                    "dominant_colors": hex(&h.palette),
                })
            })
            .collect();
        let mut query = serde_json::Map::new();
        query.insert(kind.into(), json!(value));
        query.insert("palette".into(), json!(hex(&prepared.palette)));
        query.insert("k".into(), json!(a.k));
        query.insert("rerank".into(), json!(rerank_name(effective_rerank)));
        query.insert("nprobe".into(), json!(nprobe));
        query.insert("candidates".into(), json!(candidates));
        let doc = json!({
            "query": query,
            "results": results,
            "timings_ms": { "histogram": histogram_ms, "search": search_ms, "total": total_ms },
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("plain data serialises"));
    } else {
        let tty = std::io::stdout().is_terminal();
        println!("query  {kind} {value}  {}", swatches(&prepared.palette, tty));
        print_hits(&hits, tty);
        let how = match (snap.quantizers.is_some(), effective_rerank) {
            (false, _) => "exact search".to_owned(),
            (true, r) => format!("nprobe {nprobe}, rerank {} of {candidates} candidates", rerank_name(r)),
        };
        println!(
            "{} results in {:.1} ms ({how}; {} threads; histogram {:.1} ms, search {:.1} ms)",
            hits.len(),
            total_ms,
            pool.current_num_threads(),
            histogram_ms,
            search_ms
        );
    }
    if let Some(out) = a.html {
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

/// Rank, distance, path and palette of each hit, one line each.
pub fn print_hits(hits: &[Hit], tty: bool) {
    for (i, h) in hits.iter().enumerate() {
        let path = h.path.clone().unwrap_or_else(|| format!("(id {}, no record)", h.id));
        println!("{:>3}  {:.4}  {}  {}", i + 1, h.distance, path, swatches(&h.palette, tty));
    }
}

// ---------------------------------------------------------------- histogram

pub fn histogram(image: &Path, json: bool) -> Result<()> {
    let hist = image_histogram(image)?;
    let palette = palette_with_shares(&hist, false, PALETTE_SIZE);
    if json {
        let doc = json!({
            "histogram": hist,
            "dominant_colors": palette.iter().map(|&(c, _)| to_hex(c)).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string(&doc).expect("plain data serialises"));
        return Ok(());
    }
    let tty = std::io::stdout().is_terminal();
    let nonzero = hist.iter().filter(|&&v| v > 0.0).count();
    println!("{}: {nonzero} of {HIST_DIM} bins non-zero (8 L* x 12 a* x 12 b*)", image.display());
    println!("dominant colours (share of the histogram's mass within {PALETTE_RADIUS} ΔE of each):");
    for (c, share) in palette {
        println!("  {}  {:>5.1}%", swatch(c, tty), share * 100.0);
    }
    Ok(())
}
