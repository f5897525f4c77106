//! Command-line interface: argument definitions and dispatch.

mod demo;
mod faiss;
mod html;
mod images;
mod inspect;
mod maintain;
mod progress;
mod report_html;
mod terminal;
mod vectors;

use chromatica::{Error, Preset, Result};
use clap::{ArgGroup, Parser, Subcommand};
use std::path::PathBuf;

pub use terminal::safe;

#[derive(Parser, Debug)]
#[command(name = "chromatica", version, about = "Embedded IVF-PQ storage engine for colour search")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The shape of a new vector index.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Start from a preset of the design note: memory (default), accuracy or speed.
    #[arg(long, value_name = "memory|accuracy|speed")]
    pub preset: Option<Preset>,
    #[arg(long)]
    pub dim: Option<usize>,
    #[arg(long)]
    pub nlist: Option<usize>,
    #[arg(long)]
    pub m: Option<usize>,
    #[arg(long)]
    pub nbits: Option<usize>,
    #[arg(long)]
    pub nprobe: Option<usize>,
    /// Keep each vector's values (the refine store: 16 bits each with a
    /// per-vector scale) for exact re-ranking and `retrain`.
    #[arg(long)]
    pub refine: bool,
    /// 4-bit fast-scan (needs --nbits 4): codes stored in blocks of 32 and
    /// scanned with in-register table look-ups.
    #[arg(long)]
    pub fast_scan: bool,
}

/// `train --kmeans`: offered in every build, so that a build without the
/// `faiss` feature can say why it cannot use faiss.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum KMeans {
    Native,
    Faiss,
}

// Parsed once per run: the size of the largest variant (search) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Paint 10,240 images of known palettes, index them (the index trains
    /// itself), run colour and image queries and check the answers against
    /// the exact EMD.
    ///
    /// The whole image workflow on data it makes itself, in temporary
    /// folders that are removed afterwards.
    Demo,
    /// Index the images in folders (recursively) and files into DIR.
    ///
    /// Folders contribute every jpg, jpeg, png, webp, bmp, tif, tiff and gif
    /// file (any case). DIR is created, as a self-training index, when it is
    /// new or empty. Unchanged files (same size and mtime) are skipped,
    /// changed ones replaced, files under the folders that were deleted from
    /// disk removed from the index; unreadable images are warnings. Symbolic
    /// links inside the folders are followed, also out of them, unless
    /// --no-follow.
    Index {
        dir: PathBuf,
        /// Folders (searched recursively) and image files.
        #[arg(required = true, value_name = "FOLDER_OR_IMAGE")]
        inputs: Vec<PathBuf>,
        /// Do not follow symbolic links inside the folders (links named on
        /// the command line are still followed).
        #[arg(long)]
        no_follow: bool,
        /// Refuse images of more pixels than this, read from the header
        /// before decoding (default 100000000).
        #[arg(long, value_name = "N")]
        max_pixels: Option<u64>,
    },
    /// Show an image's dominant colours, or (--json) its 1152-bin histogram.
    ///
    /// The histogram is L1-normalised, before the Hellinger transform.
    Histogram {
        image: PathBuf,
        #[arg(long)]
        json: bool,
        /// Refuse images of more pixels than this (default 100000000).
        #[arg(long, value_name = "N")]
        max_pixels: Option<u64>,
    },
    /// Create an empty, untrained index in DIR.
    Create {
        dir: PathBuf,
        #[command(flatten)]
        shape: CreateArgs,
    },
    /// Train the coarse and product quantizers on vectors from a file.
    Train {
        dir: PathBuf,
        /// .fvecs or .npy (float32, 2-D).
        #[arg(long)]
        vectors: PathBuf,
        /// Train on N rows drawn at random (default: all rows, up to
        /// 256 × max(nlist, 2^nbits), beyond which k-means subsamples anyway).
        #[arg(long)]
        sample: Option<usize>,
        #[arg(long, default_value_t = 1234)]
        seed: u64,
        /// The k-means implementation: this crate's, or faiss's (only in a
        /// build with the `faiss` cargo feature).
        #[arg(long, value_enum, default_value_t = KMeans::Native)]
        kmeans: KMeans,
    },
    /// Append vectors from a file as new segments.
    Add {
        dir: PathBuf,
        #[arg(long)]
        vectors: PathBuf,
        /// .npy integer 1-D or .ivecs with one id per row (default: ids
        /// continue from one past the largest so far).
        #[arg(long)]
        ids: Option<PathBuf>,
    },
    /// Search by colours (--colors), by example image (--image), or by vectors.
    ///
    /// With --vectors, the k nearest neighbours of each vector in the file
    /// are written to --out (and --distances).
    #[command(group(ArgGroup::new("query").required(true).args(["colors", "image", "vectors"])))]
    Search {
        dir: PathBuf,
        /// Colours wanted, e.g. "ff7f50,e1ad01" or "ea6a81:0.3,f6d727:0.7".
        #[arg(long, value_name = "SPEC")]
        colors: Option<String>,
        /// An example image: find images with similar colours.
        #[arg(long, value_name = "FILE")]
        image: Option<PathBuf>,
        /// Query vectors (.fvecs or .npy); results go to --out.
        #[arg(long, value_name = "FILE", requires = "out", conflicts_with_all = ["json", "html", "emd_epsilon", "emd_iterations", "fuzz", "fast", "exclude", "exclude_radius"])]
        vectors: Option<PathBuf>,
        /// Results per query, at most the index's live vectors (a larger k is
        /// capped there; with --vectors the output has that many columns).
        #[arg(long, default_value_t = 10)]
        k: usize,
        #[arg(long)]
        nprobe: Option<usize>,
        /// Re-rank by the exact Earth Mover's Distance in CIE Lab (the
        /// default with a refine store: colour queries get the exact EMD top
        /// k), by exact L2, by Sinkhorn EMD, or not at all. With --vectors:
        /// l2 (the default with a refine store) or none.
        #[arg(long, value_name = "exact|l2|emd|none")]
        rerank: Option<String>,
        /// How far (ΔE) a colour may stray at no cost (default 0).
        #[arg(long, value_name = "DELTA_E")]
        fuzz: Option<f32>,
        /// Fast mode: stage 1 only (the PQ scan's order, no re-ranking).
        #[arg(long, conflicts_with = "rerank")]
        fast: bool,
        /// Colours the results must not hold much of ("not red"), e.g.
        /// "ff0000" or "ff0000:0.1,00ff00": an image with more than the
        /// share (default 0.05) within --exclude-radius of one drops out.
        #[arg(long, value_name = "SPEC")]
        exclude: Option<String>,
        /// ΔE around an excluded colour that counts as it (default 20).
        #[arg(long, value_name = "DELTA_E", requires = "exclude")]
        exclude_radius: Option<f32>,
        /// Candidates the PQ scan hands to the re-ranking (default 200; at
        /// most the live vectors).
        #[arg(long)]
        candidates: Option<usize>,
        /// Entropic regularisation of the Sinkhorn EMD (implies --rerank emd).
        #[arg(long)]
        emd_epsilon: Option<f32>,
        /// Sinkhorn iterations (implies --rerank emd).
        #[arg(long)]
        emd_iterations: Option<usize>,
        /// Worker threads (default: all cores; at most 4 per core, a larger
        /// number is capped).
        #[arg(long)]
        threads: Option<usize>,
        /// Refuse a --image query, and leave out of --html thumbnails,
        /// images of more pixels than this (default 100000000).
        #[arg(long, value_name = "N", conflicts_with = "vectors")]
        max_pixels: Option<u64>,
        /// Print the query, results and timings as JSON.
        #[arg(long)]
        json: bool,
        /// Also write a self-contained HTML contact sheet of the results.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// With --vectors: result ids, one row per query, -1 where fewer than
        /// k exist: FILE.ivecs (int32) or FILE.npy (int64, for ids ≥ 2^31).
        #[arg(long, requires = "vectors", conflicts_with_all = ["colors", "image"])]
        out: Option<PathBuf>,
        /// With --vectors: result distances (squared L2), +inf where fewer than k exist.
        #[arg(long, requires = "out")]
        distances: Option<PathBuf>,
    },
    /// Import a faiss IndexIVFPQ file (faiss.write_index) as a new index in
    /// DIR, keeping its quantizers, codes and ids as they are.
    ///
    /// Only IndexIVFPQ with an IndexFlatL2 coarse quantizer, the L2 metric,
    /// residual encoding and 1 to 16 bits per sub-code; anything else is
    /// refused with the reason. DIR must be new or empty.
    ImportFaiss { file: PathBuf, dir: PathBuf },
    /// Delete vectors by id (all must be in the index; else nothing changes).
    Delete {
        dir: PathBuf,
        /// .npy integer 1-D or .ivecs with one id per row.
        #[arg(long)]
        ids: PathBuf,
    },
    /// Merge all segments into one and drop deleted vectors.
    Compact { dir: PathBuf },
    /// Train the quantizers again on the stored vectors and re-encode every
    /// vector from the refine store, in one crash-safe commit.
    Retrain {
        dir: PathBuf,
        #[arg(long, default_value_t = 1234)]
        seed: u64,
    },
    /// Check every checksum and invariant; exit non-zero naming the file and
    /// byte offset of the first problem.
    ///
    /// With --all, goes on past problems: lists every problem in every file
    /// (file and byte offset) and what remains readable (lists, vectors per
    /// segment); exits non-zero when anything is damaged.
    Verify {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
        /// Report every problem and what remains readable (a damage report).
        #[arg(long)]
        all: bool,
    },
    /// Roll back past a damaged newest manifest, which writers refuse to
    /// commit on: the damaged manifest and every file newer than the last
    /// good generation are renamed to NAME.damaged (kept, not deleted) and
    /// the last good state is committed again. With nothing damaged, changes
    /// nothing.
    Recover { dir: PathBuf },
    /// Show configuration, counts, segments, list sizes, memory and disk use.
    ///
    /// Or one thing in detail: --id (every stored copy of an id), --list,
    /// --segment; or --health (drift since training, sampled errors,
    /// estimated recall, advice); --html writes a self-contained report
    /// page. Read-only: works while another process writes.
    #[command(group(ArgGroup::new("what").args(["id", "list", "segment", "health"])))]
    Inspect {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
        /// Explain one id: segment, list, code, errors, record, deletion.
        #[arg(long, value_name = "ID")]
        id: Option<u64>,
        /// Explain one inverted list.
        #[arg(long, value_name = "L")]
        list: Option<usize>,
        /// Explain one segment (its number in manifest order, from 0).
        #[arg(long, value_name = "N")]
        segment: Option<usize>,
        /// Drift, sampled errors, estimated recall@10 and advice.
        #[arg(long)]
        health: bool,
        /// Write the health report as one self-contained HTML page (inline SVG).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["id", "list", "segment"])]
        html: Option<PathBuf>,
        /// Stored vectors sampled for --health / --html (default 2000).
        #[arg(long, value_name = "N")]
        sample: Option<usize>,
        /// Of those, queries for the recall estimate (default 100).
        #[arg(long, value_name = "N")]
        queries: Option<usize>,
    },
    /// Measure recall@10 and speed over a grid of nprobe × candidates on a
    /// sample of stored vectors (exact search over the refine store is the
    /// truth; on a colour index the exact EMD, with colour palettes of
    /// stored images as queries), print the curve, and store the nprobe
    /// and candidates of the cheapest setting that meets --recall as the
    /// index's defaults for that re-rank (one commit; `search` uses them
    /// unless given --nprobe or --candidates).
    Tune {
        dir: PathBuf,
        /// Recall@10 to reach, in (0, 1].
        #[arg(long)]
        recall: f64,
        /// Stored vectors used as queries (default 200; with --vectors, the
        /// first this many rows).
        #[arg(long, default_value_t = 200)]
        queries: usize,
        /// Query vectors (.fvecs or .npy) to tune on instead of stored
        /// vectors, e.g. real queries kept for this.
        #[arg(long, value_name = "FILE")]
        vectors: Option<PathBuf>,
        #[arg(long, default_value_t = 1234)]
        seed: u64,
        /// Measure and print only; store nothing.
        #[arg(long)]
        dry_run: bool,
        /// What recall is measured against: `emd` (the exact EMD: colour
        /// search), `l2` (exact L2 over the refine store), or `auto`: emd
        /// on a colour index (dimension 1152 with a refine store) unless
        /// --vectors is given, else l2.
        #[arg(long, default_value = "auto", value_parser = ["auto", "l2", "emd"])]
        truth: String,
        #[arg(long)]
        json: bool,
    },
    /// Explain where an id ranked for a query, and why: whether its list was
    /// probed, its rank by code distance (stage 1), and after re-ranking.
    #[command(group(ArgGroup::new("query").required(true).args(["colors", "image", "vectors"])))]
    Explain {
        dir: PathBuf,
        /// The id to explain.
        #[arg(long)]
        id: u64,
        /// Colours wanted, as for `search --colors`.
        #[arg(long, value_name = "SPEC")]
        colors: Option<String>,
        /// An example image, as for `search --image`.
        #[arg(long, value_name = "FILE")]
        image: Option<PathBuf>,
        /// A vector file (.fvecs or .npy); the query is its row --row.
        #[arg(long, value_name = "FILE", requires = "row")]
        vectors: Option<PathBuf>,
        /// Row of --vectors (from 0).
        #[arg(long)]
        row: Option<usize>,
        #[arg(long, default_value_t = 10)]
        k: usize,
        #[arg(long)]
        nprobe: Option<usize>,
        /// exact (EMD of the candidates), l2, emd or none (default: l2 with
        /// a refine store, else none).
        #[arg(long, value_name = "exact|l2|emd|none")]
        rerank: Option<String>,
        #[arg(long)]
        candidates: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Serve the original service's HTTP API and a colour-picker web page
    /// over an image index (loopback only unless --bind says otherwise).
    Serve(crate::serve::ServeArgs),
}

/// Opens an index read-only and prints what the open passed over (a
/// damaged newest manifest) as warnings on stderr.
pub(crate) fn open_read_only(dir: &std::path::Path) -> Result<chromatica::Index> {
    let index = chromatica::Index::open_read_only(dir)?;
    for w in index.warnings() {
        eprintln!("warning: {w}");
    }
    Ok(index)
}

/// Worker threads per available core at most: a search is CPU-bound, so
/// more threads only add start-up time (100,000 took minutes to start).
const THREADS_PER_CORE: usize = 4;

/// The pool for `--threads`: all cores by default, at least 1, capped at
/// [`THREADS_PER_CORE`] per available core.
fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool> {
    if threads == Some(0) {
        return Err(Error::invalid_argument("--threads", "--threads must be at least 1"));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = threads.map_or(0, |t| t.min(THREADS_PER_CORE * cores));
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map_err(|e| Error::invalid_argument("--threads", format!("cannot start {n} threads: {e}")))
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Create { dir, shape } => vectors::create(&dir, &shape),
        Command::Train { dir, vectors, sample, seed, kmeans } => vectors::train(&dir, &vectors, sample, seed, kmeans),
        Command::Add { dir, vectors, ids } => vectors::add(&dir, &vectors, ids.as_deref()),
        Command::Search {
            dir,
            colors,
            image,
            vectors,
            k,
            nprobe,
            rerank,
            candidates,
            emd_epsilon,
            emd_iterations,
            fuzz,
            fast,
            exclude,
            exclude_radius,
            threads,
            max_pixels,
            json,
            html,
            out,
            distances,
        } => {
            if let Some(vectors) = vectors {
                let out = out.expect("clap: --vectors requires --out");
                let params = vectors::search_params(k, nprobe, rerank.as_deref(), candidates)?;
                return vectors::search(&dir, &vectors, params, threads, &out, distances.as_deref());
            }
            images::search(images::SearchArgs {
                dir: &dir,
                colors,
                image,
                k,
                nprobe,
                rerank: images::RerankArgs { rerank: rerank.as_deref(), emd_epsilon, emd_iterations },
                fuzz,
                fast,
                exclude: exclude.as_deref(),
                exclude_radius,
                candidates,
                threads,
                max_pixels,
                json,
                html: html.as_deref(),
            })
        }
        Command::Index { dir, inputs, no_follow, max_pixels } => images::index(&dir, &inputs, no_follow, max_pixels),
        Command::Histogram { image, json, max_pixels } => images::histogram(&image, json, max_pixels),
        Command::Demo => demo::run(),
        Command::ImportFaiss { file, dir } => faiss::import(&file, &dir),
        Command::Delete { dir, ids } => maintain::delete(&dir, &ids),
        Command::Compact { dir } => maintain::compact(&dir),
        Command::Retrain { dir, seed } => maintain::retrain(&dir, seed),
        Command::Verify { dir, json, all } => {
            if all {
                maintain::verify_all(&dir, json)
            } else {
                maintain::verify(&dir, json)
            }
        }
        Command::Recover { dir } => maintain::recover(&dir),
        Command::Inspect { dir, json, id, list, segment, health, html, sample, queries } => {
            let opts = inspect::health_options(sample, queries)?;
            match (id, list, segment) {
                (Some(id), _, _) => inspect::id(&dir, id, json),
                (_, Some(l), _) => inspect::list(&dir, l, json),
                (_, _, Some(n)) => inspect::segment(&dir, n, json),
                _ if health || html.is_some() => inspect::health(&dir, &opts, json, html.as_deref()),
                _ => inspect::run(&dir, json),
            }
        }
        Command::Tune { dir, recall, queries, vectors, seed, dry_run, truth, json } => {
            inspect::tune(inspect::TuneArgs {
                dir: &dir,
                target: recall,
                queries,
                vectors: vectors.as_deref(),
                seed,
                dry_run,
                truth: &truth,
                json,
            })
        }
        Command::Explain { dir, id, colors, image, vectors, row, k, nprobe, rerank, candidates, json } => {
            inspect::explain(inspect::ExplainArgs {
                dir: &dir,
                id,
                colors,
                image,
                vectors,
                row,
                k,
                nprobe,
                rerank,
                candidates,
                json,
            })
        }
        Command::Serve(args) => crate::serve::run(args),
    }
}
