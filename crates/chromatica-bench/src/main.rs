//! `chromatica-bench`: everything that measures Chromatica — the data-set
//! benchmark that `python/compare.py` runs beside faiss, the resident-memory
//! probe of a fresh process, and the scale run on generated histograms. It
//! lives outside the product so that measuring code and peers' build
//! dependencies never reach an embedder or the `chromatica` binary.

mod bench;
mod bench_rss;
mod bench_scale;
mod bench_write_rss;
mod color_bench;
mod progress;
mod serve_load;
mod synth;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "chromatica-bench", version, about = "Benchmarks of the Chromatica engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    /// Load a running `chromatica serve` with `/search` colour queries:
    /// open-loop at --rate requests per second (latency from each request's
    /// due time), or closed-loop with --rate 0 (saturation). Prints JSON.
    ServeLoad {
        /// The server, e.g. 127.0.0.1:8080.
        #[arg(long)]
        addr: std::net::SocketAddr,
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
        #[arg(long, default_value_t = 15.0)]
        seconds: f64,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, default_value_t = 50)]
        k: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Measure train, add, search, recall and open time on a data set
    /// directory (base.fvecs, query.fvecs, gt.ivecs), as python/faiss_ivfpq.py
    /// measures faiss; python/compare.py runs both and prints the ratios.
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
        /// (python/compare.py uses this to alternate with faiss).
        #[arg(long)]
        serve: bool,
        #[arg(long)]
        json: bool,
    },
    /// Resident memory of a fresh process that opens DIR and runs queries
    /// one per call (JSON; used by python/compare.py and bench-scale).
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
    /// Peak memory of a fresh process that opens DIR and runs one compact
    /// or retrain on it (JSON: VmHWM, sampled peak RssAnon, disk bytes).
    #[command(hide = true)]
    BenchWriteRss {
        #[arg(long)]
        index: PathBuf,
        /// compact, retrain, or thin (delete every 100th live id).
        #[arg(long)]
        op: String,
    },
    /// Colour relevance against exact EMD: every search mode on the queries
    /// and ground truth of python/color_truth.py (recall@10, EMD ratio,
    /// latency on one thread).
    Color {
        /// Directory holding base.fvecs (from shared/tools/make_dataset.py).
        #[arg(long)]
        data: PathBuf,
        /// The queries and truth of python/color_truth.py.
        #[arg(long)]
        queries: PathBuf,
        /// The index of base.fvecs (refine store); built here if missing.
        #[arg(long)]
        index: PathBuf,
        /// Stage 1 candidates of a colour query in the spread mode.
        #[arg(long, default_value_t = 1000)]
        candidates: usize,
        /// Sharpening exponent of a colour query's stage 1.
        #[arg(long, default_value_t = 2.2)]
        sharpen: f32,
        /// Stage 1 candidates of an image query in the spread mode.
        #[arg(long, default_value_t = 200)]
        image_candidates: usize,
        #[arg(long, default_value_t = 10)]
        nprobe: usize,
        /// Train a new index on the first N base vectors.
        #[arg(long, default_value_t = 20_000)]
        train_n: usize,
        /// Also print stage 1's candidate recall for several spreads and counts.
        #[arg(long)]
        sweep: bool,
        #[arg(long)]
        json: bool,
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
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> chromatica::Result<()> {
    match cli.command {
        Command::ServeLoad { addr, rate, seconds, connections, k, seed } => {
            serve_load::run(&serve_load::LoadArgs { addr, rate, seconds, connections, k, seed })
        }
        Command::Color {
            data,
            queries,
            index,
            candidates,
            sharpen,
            image_candidates,
            nprobe,
            train_n,
            sweep,
            json,
        } => color_bench::run(color_bench::ColorArgs {
            data: &data,
            index: &index,
            queries: &queries,
            candidates,
            sharpen,
            image_candidates,
            nprobe,
            train_n,
            sweep,
            json,
        }),
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
        Command::BenchWriteRss { index, op } => bench_write_rss::run(&index, &op),
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
