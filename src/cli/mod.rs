//! Command-line interface: argument definitions and dispatch.

mod bench;
mod demo;
mod inspect;
mod maintain;
mod progress;
mod vectors;

use chromatica::{Preset, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "chromatica", version, about = "Embedded IVF-PQ storage engine for colour search")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Index 20,000 synthetic colour photos and run colour queries: the
    /// whole engine on data it makes itself.
    Demo,
    /// Create an empty, untrained index in DIR.
    Create {
        dir: PathBuf,
        /// Start from a preset of the design note (default: memory).
        #[arg(long, value_enum)]
        preset: Option<Preset>,
        #[arg(long)]
        dim: Option<usize>,
        #[arg(long)]
        nlist: Option<usize>,
        #[arg(long)]
        m: Option<usize>,
        #[arg(long)]
        nbits: Option<usize>,
        #[arg(long)]
        nprobe: Option<usize>,
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
    /// Search for the k nearest neighbours of each query vector.
    Search {
        dir: PathBuf,
        #[arg(long)]
        vectors: PathBuf,
        #[arg(long)]
        k: usize,
        #[arg(long)]
        nprobe: Option<usize>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Result ids, one row per query, -1 where fewer than k exist.
        #[arg(long)]
        out: PathBuf,
        /// Result distances (squared L2), +inf where fewer than k exist.
        #[arg(long)]
        distances: Option<PathBuf>,
    },
    /// Measure train, add, search, recall and open time on a data set
    /// directory (base.fvecs, query.fvecs, gt.ivecs), as bench/faiss_ivfpq.py
    /// measures faiss; bench/compare.py runs both and prints the ratios.
    Bench {
        /// Directory holding base.fvecs, query.fvecs and gt.ivecs.
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 100)]
        nlist: usize,
        #[arg(long, default_value_t = 8)]
        m: usize,
        #[arg(long, default_value_t = 8)]
        nbits: usize,
        #[arg(long, default_value_t = 10)]
        nprobe: usize,
        /// Train on the first N base vectors.
        #[arg(long, default_value_t = 20_000)]
        train_n: usize,
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// k of the batched search (recall@100 needs 100).
        #[arg(long, default_value_t = 100)]
        k: usize,
        /// k of the one-query-per-call timing.
        #[arg(long, default_value_t = 10)]
        single_k: usize,
        /// Search timings are the best of this many runs.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Also time search after this many appends of 100 vectors (with
        /// automatic merges) against the same index fully compacted; 0 skips.
        #[arg(long, default_value_t = 1000)]
        appends: usize,
        #[arg(long)]
        json: bool,
    },
    /// Delete vectors by id (all must be in the index; else nothing changes).
    Delete {
        dir: PathBuf,
        /// .npy integer 1-D or .ivecs with one id per row.
        #[arg(long)]
        ids: PathBuf,
    },
    /// Merge all segments into one and drop deleted vectors.
    Compact { dir: PathBuf },
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
        Command::Create { dir, preset, dim, nlist, m, nbits, nprobe } => {
            vectors::create(&dir, preset, dim, nlist, m, nbits, nprobe)
        }
        Command::Train { dir, vectors, sample, seed } => vectors::train(&dir, &vectors, sample, seed),
        Command::Add { dir, vectors, ids } => vectors::add(&dir, &vectors, ids.as_deref()),
        Command::Search { dir, vectors, k, nprobe, threads, out, distances } => {
            vectors::search(&dir, &vectors, k, nprobe, threads, &out, distances.as_deref())
        }
        Command::Demo => demo::run(),
        Command::Delete { dir, ids } => maintain::delete(&dir, &ids),
        Command::Compact { dir } => maintain::compact(&dir),
        Command::Verify { dir, json } => maintain::verify(&dir, json),
        Command::Inspect { dir, json } => inspect::run(&dir, json),
        Command::Bench { data, nlist, m, nbits, nprobe, train_n, threads, k, single_k, repeat, appends, json } => {
            let config = chromatica::Config { nlist, m, nbits, nprobe, ..Default::default() };
            if threads == 0 || repeat == 0 {
                return Err(chromatica::Error::InvalidInput("--threads and --repeat must be at least 1".into()));
            }
            bench::run(bench::BenchArgs { data: &data, config, train_n, threads, k, single_k, repeat, appends, json })
        }
    }
}
