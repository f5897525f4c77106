//! The image workflow on the command line: `index` (folders of images into
//! an auto-training index, incrementally), `search` by colours or by
//! example image, and `histogram` of one image. The work is done by
//! `chromatica::images`; this file parses, calls and prints.

use super::html::{self, SheetEntry};
use super::progress::bar;
use super::terminal;
use chromatica::color::Sinkhorn;
use chromatica::color::{image_histogram_with, to_hex, HIST_DIM};
use chromatica::images::{
    dominant_colors, DominantColor, ImageIndex, ImageLimits, Query, SearchOptions, SearchResults, SyncEvent,
    SyncOptions, SyncSummary, PALETTE_SIZE,
};
use chromatica::{Error, Rerank, Result, AUTO_TRAIN_MIN};
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `--max-pixels` as decoding limits.
pub fn limits(max_pixels: Option<u64>) -> Result<ImageLimits> {
    match max_pixels {
        Some(0) => Err(Error::invalid_argument("--max-pixels", "--max-pixels must be at least 1")),
        Some(n) => Ok(ImageLimits::with_max_pixels(n)),
        None => Ok(ImageLimits::default()),
    }
}

// ---------------------------------------------------------------- index

/// One line on the index's state: exact search or trained, and its size.
pub fn state_line(index: &ImageIndex, summary: &SyncSummary) -> String {
    let i = index.index();
    if i.is_trained() {
        format!(
            "{} vectors, trained{} (IVF-PQ, nlist {}), approximate search re-ranked by exact EMD",
            i.len(),
            if summary.trained_now { " during this run" } else { "" },
            i.config().nlist
        )
    } else {
        format!("{} vectors, exact search (untrained; trains itself at {} vectors)", i.len(), AUTO_TRAIN_MIN)
    }
}

/// "added …, updated …, unchanged …, removed …, failed … in …s (… images/s)".
pub fn summary_line(s: &SyncSummary) -> String {
    let rate =
        if s.images_per_second > 0.0 { format!(" ({:.0} images/s)", s.images_per_second) } else { String::new() };
    format!(
        "added {}, updated {}, unchanged {}, removed {}, failed {} in {:.2}s{rate}",
        s.added,
        s.updated,
        s.unchanged,
        s.removed.len(),
        s.failed.len(),
        s.seconds
    )
}

/// Syncs `inputs` into the index in `dir` with a progress bar on stderr
/// (drawn only on a terminal) and each problem as a warning line there.
pub fn sync(dir: &Path, inputs: &[PathBuf], options: &SyncOptions) -> Result<(ImageIndex, SyncSummary)> {
    if inputs.is_empty() {
        return Err(Error::invalid_argument("INPUTS", "give at least one folder or image to index"));
    }
    // A missing input must not create the index.
    for input in inputs {
        std::fs::metadata(input).map_err(|e| Error::io(input, e))?;
    }
    let index = ImageIndex::open_or_create(dir)?;
    let pb = bar(0, "images");
    let summary = index.sync(inputs, options, &|event| match event {
        SyncEvent::Planned { to_decode } => pb.set_length(to_decode as u64),
        SyncEvent::Decoded => pb.inc(1),
        SyncEvent::Problem(p) => pb.suspend(|| eprintln!("warning: {}", terminal::safe(&p.to_string()))),
        _ => {}
    });
    pb.finish_and_clear();
    Ok((index, summary?))
}

pub fn index(dir: &Path, inputs: &[PathBuf], no_follow: bool, max_pixels: Option<u64>) -> Result<()> {
    let options = SyncOptions::default().follow_links(!no_follow).limits(limits(max_pixels)?);
    let (index, s) = sync(dir, inputs, &options)?;
    if index.created() {
        println!("created index {}", terminal::path(dir));
    }
    for path in &s.removed {
        println!("removed {} (deleted from disk)", terminal::path(path));
    }
    println!("{}", summary_line(&s));
    println!("index {}: {}", terminal::path(dir), state_line(&index, &s));
    Ok(())
}

// ---------------------------------------------------------------- search

/// A colour as a true-colour swatch and its hex code on a terminal, the hex
/// code alone otherwise.
pub fn swatch(rgb: [u8; 3], tty: bool) -> String {
    if tty {
        format!("\x1b[48;2;{};{};{}m  \x1b[0m {}", rgb[0], rgb[1], rgb[2], to_hex(rgb))
    } else {
        to_hex(rgb)
    }
}

pub fn swatches(colors: &[DominantColor], tty: bool) -> String {
    colors.iter().map(|c| swatch(c.rgb, tty)).collect::<Vec<_>>().join(" ")
}

fn hexes(colors: &[DominantColor]) -> Vec<String> {
    colors.iter().map(DominantColor::hex).collect()
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
        let rerank = match self.rerank.map(str::to_ascii_lowercase) {
            None if emd_options => Some(Rerank::Emd(Sinkhorn::default())),
            None => None,
            Some(other) => Some(Rerank::from_name(&other).ok_or_else(|| {
                Error::invalid_argument("--rerank", format!("--rerank {other:?}: expected exact, l2, emd or none"))
            })?),
        };
        match rerank {
            Some(Rerank::Emd(d)) => {
                let s = Sinkhorn {
                    epsilon: self.emd_epsilon.unwrap_or(d.epsilon),
                    iterations: self.emd_iterations.unwrap_or(d.iterations),
                };
                s.validate()?;
                Ok(Some(Rerank::Emd(s)))
            }
            _ if emd_options => {
                Err(Error::invalid_argument("--emd-epsilon", "--emd-epsilon and --emd-iterations need --rerank emd"))
            }
            other => Ok(other),
        }
    }
}

/// `search --colors` / `search --image`.
pub struct SearchArgs<'a> {
    pub dir: &'a Path,
    /// The colour spec or the image path.
    pub colors: Option<String>,
    pub image: Option<PathBuf>,
    pub k: usize,
    pub nprobe: Option<usize>,
    pub rerank: RerankArgs<'a>,
    pub fuzz: Option<f32>,
    pub fast: bool,
    pub exclude: Option<&'a str>,
    pub exclude_radius: Option<f32>,
    pub candidates: Option<usize>,
    pub threads: Option<usize>,
    pub max_pixels: Option<u64>,
    pub json: bool,
    pub html: Option<&'a Path>,
}

pub fn search(a: SearchArgs<'_>) -> Result<()> {
    let t0 = Instant::now();
    if a.k == 0 {
        return Err(Error::invalid_argument("--k", "--k must be at least 1"));
    }
    if a.candidates == Some(0) {
        return Err(Error::invalid_argument("--candidates", "--candidates must be at least 1"));
    }
    let pool = super::thread_pool(a.threads)?;
    let mut options = SearchOptions::default().k(a.k).limits(limits(a.max_pixels)?);
    options.nprobe = a.nprobe;
    options.candidates = a.candidates;
    options.rerank = a.rerank.resolve()?;
    options.fast = a.fast;
    if let Some(f) = a.fuzz {
        if !(f.is_finite() && (0.0..=chromatica::color::MAX_FUZZ as f32).contains(&f)) {
            return Err(Error::invalid_argument(
                "--fuzz",
                format!("--fuzz must be between 0 and {} ΔE, got {f}", chromatica::color::MAX_FUZZ),
            ));
        }
        options.fuzz = f;
    }
    if let Some(spec) = a.exclude {
        let radius = a.exclude_radius.unwrap_or(chromatica::color::DEFAULT_EXCLUDE_RADIUS);
        options.exclude = chromatica::color::parse_excluded(spec, radius)?;
    }
    if (a.fast || matches!(options.rerank, Some(r) if r != Rerank::ExactEmd))
        && (options.fuzz != 0.0 || !options.exclude.is_empty())
    {
        return Err(Error::invalid_argument(
            "--fuzz",
            "--fuzz and --exclude need the exact EMD re-rank (not --fast nor --rerank l2/emd/none)",
        ));
    }
    let index = ImageIndex::open_read_only(a.dir).map_err(|e| match e {
        Error::InvalidInput(m) if m.contains("image histograms have") => {
            Error::InvalidInput(format!("{m} (use --vectors)"))
        }
        e => e,
    })?;
    for w in index.index().warnings() {
        eprintln!("warning: {w}");
    }
    let (query, kind, value) = match (&a.colors, &a.image) {
        (Some(spec), None) => (Query::colors(spec)?, "colors", spec.clone()),
        (None, Some(path)) => (Query::Image(path.clone()), "image", path.to_string_lossy().into_owned()),
        _ => unreachable!("clap: exactly one of --colors, --image"),
    };
    let t = Instant::now();
    let prepared = query.prepare(&options.limits, options.colors)?;
    let histogram_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let found = pool.install(|| index.search_prepared(&prepared, &options))?;
    let search_ms = t.elapsed().as_secs_f64() * 1e3;

    if let Some(out) = a.html {
        let entries: Vec<SheetEntry> = found
            .hits
            .iter()
            .enumerate()
            .map(|(i, h)| SheetEntry {
                rank: i + 1,
                id: h.id,
                distance: h.distance,
                path: h.path.clone(),
                palette: h.colors.iter().map(|c| c.rgb).collect(),
            })
            .collect();
        let title = format!("{kind} {value}");
        let palette: Vec<[u8; 3]> = found.query_colors.iter().map(|c| c.rgb).collect();
        html::write_contact_sheet(out, &title, a.image.as_deref(), &palette, &entries, &options.limits)?;
    }
    let total_ms = t0.elapsed().as_secs_f64() * 1e3;
    if a.json {
        print_json(&found, kind, &value, a.k, [histogram_ms, search_ms, total_ms]);
    } else {
        let tty = std::io::stdout().is_terminal();
        println!("query  {kind} {}  {}", terminal::safe(&value), swatches(&found.query_colors, tty));
        print_hits(&found, tty);
        let how = if found.exact {
            match found.solves {
                Some(n) => format!("exact EMD search, {n} solves"),
                None => "exact search".to_owned(),
            }
        } else {
            match found.solves {
                Some(n) => {
                    format!("nprobe {}, exact EMD, {} candidates, {n} solves", found.nprobe, found.candidates)
                }
                None => format!(
                    "nprobe {}, rerank {} of {} candidates",
                    found.nprobe,
                    found.rerank.name(),
                    found.candidates
                ),
            }
        };
        println!(
            "{} results in {total_ms:.1} ms ({how}; {} threads; histogram {histogram_ms:.1} ms, search {search_ms:.1} ms)",
            found.hits.len(),
            pool.current_num_threads()
        );
    }
    if let Some(out) = a.html {
        eprintln!("wrote {}", terminal::path(out));
    }
    Ok(())
}

fn print_json(found: &SearchResults, kind: &str, value: &str, k: usize, [histogram, search, total]: [f64; 3]) {
    let results: Vec<_> = found
        .hits
        .iter()
        .enumerate()
        .map(|(i, h)| {
            json!({
                "rank": i + 1,
                "id": h.id,
                "path": h.path.as_ref().map(|p| p.to_string_lossy()),
                "distance": h.distance,
                "dominant_colors": hexes(&h.colors),
            })
        })
        .collect();
    let mut query = serde_json::Map::new();
    query.insert(kind.into(), json!(value));
    query.insert("palette".into(), json!(hexes(&found.query_colors)));
    query.insert("k".into(), json!(k));
    query.insert("rerank".into(), json!(found.rerank.name()));
    query.insert("nprobe".into(), json!(found.nprobe));
    query.insert("candidates".into(), json!(found.candidates));
    let doc = json!({
        "query": query,
        "results": results,
        "timings_ms": { "histogram": histogram, "search": search, "total": total },
    });
    println!("{}", serde_json::to_string_pretty(&doc).expect("plain data serialises"));
}

/// Rank, distance, path and palette of each hit, one line each.
pub fn print_hits(found: &SearchResults, tty: bool) {
    for (i, h) in found.hits.iter().enumerate() {
        let path = h.path.as_deref().map(terminal::path).unwrap_or_else(|| format!("(id {}, no record)", h.id));
        println!("{:>3}  {:.4}  {}  {}", i + 1, h.distance, path, swatches(&h.colors, tty));
    }
}

// ---------------------------------------------------------------- histogram

pub fn histogram(image: &Path, json: bool, max_pixels: Option<u64>) -> Result<()> {
    let hist = image_histogram_with(image, &limits(max_pixels)?)?;
    let palette = dominant_colors(&hist, PALETTE_SIZE);
    if json {
        let doc = json!({ "histogram": hist, "dominant_colors": hexes(&palette) });
        println!("{}", serde_json::to_string(&doc).expect("plain data serialises"));
        return Ok(());
    }
    let tty = std::io::stdout().is_terminal();
    let nonzero = hist.iter().filter(|&&v| v > 0.0).count();
    println!("{}: {nonzero} of {HIST_DIM} bins non-zero (8 L* x 12 a* x 12 b*)", terminal::path(image));
    println!(
        "dominant colours (share of the histogram's mass within {} ΔE of each):",
        chromatica::color::PALETTE_RADIUS
    );
    for c in palette {
        println!("  {}  {:>5.1}%", swatch(c.rgb, tty), c.share * 100.0);
    }
    Ok(())
}
