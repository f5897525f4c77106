//! 4-bit fast-scan against the 8-bit default on a data set directory
//! (base.fvecs, query.fvecs, gt.ivecs, as `chromatica bench` reads them):
//! one thread, one query per call, k = 10; stage 1 alone (PQ distances) and
//! two stages (200 candidates re-ranked by exact L2 from the refine store).
//! The variants are built once and timed in turns, best of 3, so that their
//! ratios come from one run.
//!
//! ```sh
//! cargo run --release --example fastscan -- /tmp/chromatica-data/100k
//! ```

use chromatica::vecio::{self, VectorFile};
use chromatica::{Config, Index, Rerank, Result, SearchParams, TrainOptions};
use std::path::Path;
use std::time::Instant;

const TRAIN_N: usize = 20_000;
const ROUNDS: usize = 3;
const NPROBES: [usize; 3] = [10, 20, 40];

fn main() -> Result<()> {
    let data = std::env::args().nth(1).unwrap_or_else(|| "/tmp/chromatica-data/100k".into());
    let data = Path::new(&data);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("one thread");
    pool.install(|| run(data))
}

fn run(data: &Path) -> Result<()> {
    let base_f = VectorFile::open(&data.join("base.fvecs"))?;
    let (d, n) = (base_f.dim(), base_f.len());
    let base = base_f.read_all()?;
    let query = VectorFile::open(&data.join("query.fvecs"))?.read_all()?;
    let nq = query.len() / d;
    let gt = vecio::read_ivecs_matrix(&data.join("gt.ivecs"))?;
    let gt_k = gt.len() / nq;
    let tmp = std::env::temp_dir().join(format!("chromatica-fastscan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let variants: [(&str, usize, usize, bool); 4] = [
        ("8-bit m=8 (default)", 8, 8, false),
        ("4-bit m=16, fast-scan", 16, 4, true),
        ("4-bit m=16, plain scan", 16, 4, false),
        ("4-bit m=8, fast-scan", 8, 4, true),
    ];
    let mut indexes = Vec::new();
    for (i, &(name, m, nbits, fast_scan)) in variants.iter().enumerate() {
        let config = Config { dim: d, m, nbits, fast_scan, refine: true, ..Config::default() };
        let index = Index::create(tmp.join(i.to_string()), config)?;
        let t = Instant::now();
        index.train(&base[..TRAIN_N.min(n) * d], &TrainOptions::default(), &mut |_| ())?;
        let train_s = t.elapsed().as_secs_f64();
        index.add(&base, None)?;
        let mem = index.memory_estimate();
        eprintln!("{name}: trained in {train_s:.1}s, {:.2} code bytes per vector", mem.code_bytes_per_vector);
        indexes.push((name, index, mem.code_bytes_per_vector));
    }
    // [variant][nprobe][stage]: the fastest pass over all queries, recall@10.
    let mut best = vec![[[f64::INFINITY; 2]; NPROBES.len()]; indexes.len()];
    let mut recall = vec![[[0f64; 2]; NPROBES.len()]; indexes.len()];
    for _ in 0..ROUNDS {
        for (v, (_, index, _)) in indexes.iter().enumerate() {
            for (p, &nprobe) in NPROBES.iter().enumerate() {
                for (stage, rerank) in [Rerank::Off, Rerank::L2].into_iter().enumerate() {
                    let params = SearchParams::new(10).nprobe(nprobe).rerank(rerank).candidates(200);
                    let mut hits = 0usize;
                    let t = Instant::now();
                    for (qi, x) in query.chunks_exact(d).enumerate() {
                        let r = index.search(x, &params)?;
                        let truth = &gt[qi * gt_k..qi * gt_k + 10];
                        hits += r[0].iter().filter(|nb| truth.contains(&(nb.id as i32))).count();
                    }
                    best[v][p][stage] = best[v][p][stage].min(t.elapsed().as_secs_f64());
                    recall[v][p][stage] = hits as f64 / (10 * nq) as f64;
                }
            }
        }
    }
    println!("data {}: n {n}, queries {nq}, d {d}; nlist 100, 1 thread, one query per call, k 10", data.display());
    println!();
    println!("| variant | code bytes/vector | nprobe | q/s | recall@10 | q/s vs 8-bit nprobe 10 | two-stage q/s | two-stage recall@10 |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let reference = nq as f64 / best[0][0][0];
    for (v, (name, _, bytes)) in indexes.iter().enumerate() {
        for (p, &nprobe) in NPROBES.iter().enumerate() {
            let [one, two] = best[v][p].map(|s| nq as f64 / s);
            let [r1, r2] = recall[v][p];
            println!(
                "| {name} | {bytes:.2} | {nprobe} | {one:.0} | {r1:.4} | {:.2}× | {two:.0} | {r2:.4} |",
                one / reference
            );
        }
    }
    drop(indexes);
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
