//! Command-line interface: argument definitions and dispatch.

mod bench;
mod bench_rss;
mod bench_scale;
mod demo;
mod faiss;
mod html;
mod images;
mod inspect;
mod maintain;
mod progress;
mod synth;
mod vectors;

use chromatica::{Preset, Result};
use clap::{ArgGroup, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "chromatica", version, about = "Embedded IVF-PQ storage engine for colour search")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The shape of a new vector index.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Start from a preset of the design note (default: memory).
    #[arg(long, value_enum)]
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
    /// Keep each vector's exact values (the refine store) for exact
    /// re-ranking and `retrain`.
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

/// The index shape of the benchmark commands (issue 5's defaults).
#[derive(clap::Args, Debug)]
pub struct BenchShape {
    #[arg(long, default_value_t = 100)]
    nlist: usize,
    #[arg(long, default_value_t = 8)]
    m: usize,
    #[arg(long, default_value_t = 8)]
    nbits: usize,
    #[arg(long, default_value_t = 10)]
    nprobe: usize,
}

impl BenchShape {
    fn config(&self) -> chromatica::Config {
        let BenchShape { nlist, m, nbits, nprobe } = *self;
        chromatica::Config { nlist, m, nbits, nprobe, ..Default::default() }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Paint 300 images of known palettes, index them, run colour and image
    /// queries and check the answers.
    ///
    /// The whole image workflow on data it makes itself, in temporary
    /// folders that are removed afterwards.
    Demo,
    /// Index the images in folders (recursively) and files into DIR.
    ///
    /// Folders contribute every jpg, jpeg, png, webp, bmp, tif, tiff and gif
    /// file (any case). DIR is created, as a self-training index, when it is
    /// new or empty. Unchanged files (same size and mtime) are skipped,
    /// changed ones replaced; unreadable images are warnings.
    Index {
        dir: PathBuf,
        /// Folders (searched recursively) and image files.
        #[arg(required = true, value_name = "FOLDER_OR_IMAGE")]
        inputs: Vec<PathBuf>,
    },
    /// Show an image's dominant colours, or (--json) its 1152-bin histogram.
    ///
    /// The histogram is L1-normalised, before the Hellinger transform.
    Histogram {
        image: PathBuf,
        #[arg(long)]
        json: bool,
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
        #[arg(long, value_name = "FILE", requires = "out", conflicts_with_all = ["json", "html", "rerank", "candidates", "emd_epsilon", "emd_iterations"])]
        vectors: Option<PathBuf>,
        #[arg(long, default_value_t = 10)]
        k: usize,
        #[arg(long)]
        nprobe: Option<usize>,
        /// Re-rank the candidates by exact L2 (the default with a refine
        /// store), by Sinkhorn EMD, or not at all.
        #[arg(long, value_name = "l2|emd|none")]
        rerank: Option<String>,
        /// Candidates the PQ scan hands to the re-ranking (default 200).
        #[arg(long)]
        candidates: Option<usize>,
        /// Entropic regularisation of the Sinkhorn EMD (implies --rerank emd).
        #[arg(long)]
        emd_epsilon: Option<f32>,
        /// Sinkhorn iterations (implies --rerank emd).
        #[arg(long)]
        emd_iterations: Option<usize>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Print the query, results and timings as JSON.
        #[arg(long)]
        json: bool,
        /// Also write a self-contained HTML contact sheet of the results.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// With --vectors: result ids, one row per query, -1 where fewer than k exist.
        #[arg(long, requires = "vectors", conflicts_with_all = ["colors", "image"])]
        out: Option<PathBuf>,
        /// With --vectors: result distances (squared L2), +inf where fewer than k exist.
        #[arg(long, requires = "out")]
        distances: Option<PathBuf>,
    },
    /// Measure train, add, search, recall and open time on a data set
    /// directory (base.fvecs, query.fvecs, gt.ivecs), as bench/faiss_ivfpq.py
    /// measures faiss; bench/compare.py runs both and prints the ratios.
    Bench {
        /// Directory holding base.fvecs, query.fvecs and gt.ivecs.
        #[arg(long)]
        data: PathBuf,
        #[command(flatten)]
        shape: BenchShape,
        /// 4-bit fast-scan (needs --nbits 4).
        #[arg(long)]
        fast_scan: bool,
        /// Train on the first N base vectors.
        #[arg(long, default_value_t = 20_000)]
        train_n: usize,
        /// Thread counts of the search passes, e.g. 1,2; the build runs on the first.
        #[arg(long, value_delimiter = ',', default_value = "1")]
        threads: Vec<usize>,
        /// k of the batched and two-stage searches (recall@100 needs 100).
        #[arg(long, default_value_t = 100)]
        k: usize,
        /// k of the one-query-per-call timing.
        #[arg(long, default_value_t = 10)]
        single_k: usize,
        /// Candidates of the two-stage search (stage 1), re-ranked exactly.
        #[arg(long, default_value_t = 200)]
        candidates: usize,
        /// Search timings are the best of this many runs.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Open time is the median of this many opens.
        #[arg(long, default_value_t = 7)]
        opens: usize,
        /// Also time search after this many appends of 100 vectors (with
        /// automatic merges) against the same index fully compacted; 0 skips.
        #[arg(long, default_value_t = 1000)]
        appends: usize,
        /// Build the plain (no refine store) index in this new folder and keep it.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
        /// After the build print "ready", then time the passes standard input
        /// asks for, one "batch|single|refine THREADS" a line, until "end"
        /// (bench/compare.py uses this to alternate with faiss).
        #[arg(long)]
        serve: bool,
        #[arg(long)]
        json: bool,
    },
    /// Resident memory of a fresh process that opens DIR and runs queries
    /// one per call (JSON; used by bench/compare.py and bench-scale).
    #[command(hide = true)]
    BenchRss {
        #[arg(long)]
        index: PathBuf,
        /// Query vectors (.fvecs or .npy), cycled through.
        #[arg(long)]
        queries: PathBuf,
        #[arg(long, default_value_t = 1000)]
        count: usize,
        #[arg(long, default_value_t = 10)]
        k: usize,
    },
    /// The scale run: build an index of N synthetic colour histograms,
    /// generated and added in batches, and measure build time, disk use,
    /// open time, resident memory, search speed and recall.
    BenchScale {
        /// Vectors to generate and add.
        #[arg(long, default_value_t = 1_000_000)]
        n: usize,
        /// Build the index in this new folder and keep it (default: a
        /// temporary folder, removed at the end).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[command(flatten)]
        shape: BenchShape,
        /// Also keep each vector's exact values (the refine store).
        #[arg(long)]
        refine: bool,
        /// Train on the first N generated vectors.
        #[arg(long, default_value_t = 20_000)]
        train_n: usize,
        /// Vectors generated and added per batch (each batch is one segment).
        #[arg(long, default_value_t = 10_000)]
        batch: usize,
        #[arg(long, default_value_t = 1234)]
        seed: u64,
        /// Queries for the speed and memory measurements.
        #[arg(long, default_value_t = 1000)]
        queries: usize,
        /// Queries whose exact top 100 is computed while adding, for recall.
        #[arg(long, default_value_t = 100)]
        recall_queries: usize,
        /// Open time is the median of this many opens.
        #[arg(long, default_value_t = 9)]
        opens: usize,
        /// Also build an index of this many vectors and time its open; 0 skips.
        #[arg(long, default_value_t = 10_000)]
        small: usize,
        /// Thread counts of the search passes.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        threads: Vec<usize>,
        /// Threads for generating, training and adding (default: all cores).
        #[arg(long)]
        build_threads: Option<usize>,
        /// Search timings are the best of this many runs.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        #[arg(long)]
        json: bool,
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
    Verify {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Show configuration, counts, segments, list sizes, memory and disk use.
    Inspect {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
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
            threads,
            json,
            html,
            out,
            distances,
        } => {
            let query = match (colors, image, vectors) {
                (Some(spec), None, None) => images::Query::Colors(spec),
                (None, Some(path), None) => images::Query::Image(path),
                (None, None, Some(vectors)) => {
                    let out = out.expect("clap: --vectors requires --out");
                    return vectors::search(&dir, &vectors, k, nprobe, threads, &out, distances.as_deref());
                }
                _ => unreachable!("clap: exactly one of --colors, --image, --vectors"),
            };
            images::search(images::SearchArgs {
                dir: &dir,
                query,
                k,
                nprobe,
                rerank: images::RerankArgs { rerank: rerank.as_deref(), emd_epsilon, emd_iterations },
                candidates,
                threads,
                json,
                html: html.as_deref(),
            })
        }
        Command::Index { dir, inputs } => images::index(&dir, &inputs),
        Command::Histogram { image, json } => images::histogram(&image, json),
        Command::Demo => demo::run(),
        Command::ImportFaiss { file, dir } => faiss::import(&file, &dir),
        Command::Delete { dir, ids } => maintain::delete(&dir, &ids),
        Command::Compact { dir } => maintain::compact(&dir),
        Command::Retrain { dir, seed } => maintain::retrain(&dir, seed),
        Command::Verify { dir, json } => maintain::verify(&dir, json),
        Command::Inspect { dir, json } => inspect::run(&dir, json),
        Command::Bench {
            data,
            shape,
            fast_scan,
            train_n,
            threads,
            k,
            single_k,
            candidates,
            repeat,
            opens,
            appends,
            keep,
            serve,
            json,
        } => {
            let config = chromatica::Config { fast_scan, ..shape.config() };
            bench::run(bench::BenchArgs {
                data: &data,
                config,
                train_n,
                threads: &threads,
                k,
                single_k,
                candidates,
                repeat,
                opens,
                appends,
                keep: keep.as_deref(),
                serve,
                json,
            })
        }
        Command::BenchRss { index, queries, count, k } => {
            bench_rss::run(bench_rss::RssArgs { index: &index, queries: &queries, count, k })
        }
        Command::BenchScale {
            n,
            dir,
            shape,
            refine,
            train_n,
            batch,
            seed,
            queries,
            recall_queries,
            opens,
            small,
            threads,
            build_threads,
            repeat,
            json,
        } => {
            let config = chromatica::Config { refine, ..shape.config() };
            let build_threads = build_threads.unwrap_or_else(rayon::current_num_threads);
            bench_scale::run(bench_scale::ScaleArgs {
                n,
                dir: dir.as_deref(),
                config,
                train_n,
                batch,
                seed,
                queries,
                recall_queries,
                opens,
                small,
                threads: &threads,
                build_threads,
                repeat,
                json,
            })
        }
    }
}
