//! Criterion benchmarks of train, add and search at d = 1152 on generated
//! clustered data (no download needed). These track our own speed over
//! time; the side-by-side comparison with faiss is bench/compare.py.

use chromatica::{Config, Index, SearchParams, TrainOptions};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::hint::black_box;

const D: usize = 1152;

/// Non-negative, unit-norm, clustered vectors, like Hellinger histograms.
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    let centers: Vec<f32> = (0..64 * D).map(|_| next().powi(4)).collect();
    let mut out = Vec::with_capacity(n * D);
    for _ in 0..n {
        let c = (next() * 64.0) as usize % 64;
        let row: Vec<f32> = (0..D).map(|j| (centers[c * D + j] + 0.3 * next().powi(6)).max(0.0)).collect();
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        out.extend(row.iter().map(|x| x / norm));
    }
    out
}

fn bench(c: &mut Criterion) {
    let config = Config::default(); // nlist 100, m 8, nbits 8, nprobe 10
    let base = data(100_000, 1);
    let queries = data(100, 2);
    let dir = tempfile::tempdir().unwrap();
    let index = Index::create(dir.path().join("idx"), config).unwrap();
    index.train(&base[..20_000 * D], &TrainOptions::default(), &mut |_| ()).unwrap();
    index.add(&base, None).unwrap();

    let mut g = c.benchmark_group("d1152");
    g.sample_size(10);
    g.bench_function("train_10k_nlist100_m8", |b| {
        b.iter_batched(
            || (tempfile::tempdir().unwrap(), base[..10_000 * D].to_vec()),
            |(d, train)| {
                let i = Index::create(d.path().join("t"), config).unwrap();
                i.train(&train, &TrainOptions::default(), &mut |_| ()).unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("add_10k", |b| b.iter(|| index.add(black_box(&base[..10_000 * D]), None).unwrap()));
    g.finish();

    let mut g = c.benchmark_group("search_100k_nprobe10");
    let single = SearchParams::new(10);
    g.bench_function("one_query_k10", |b| {
        let mut q = queries.chunks_exact(D).cycle();
        b.iter(|| index.search(black_box(q.next().unwrap()), &single).unwrap())
    });
    g.bench_function("batch_100_queries_k100", |b| {
        b.iter(|| index.search(black_box(&queries), &SearchParams::new(100)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
