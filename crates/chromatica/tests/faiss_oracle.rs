//! faiss as an oracle (`cargo test --release --features faiss`): an
//! IndexIVFPQ built, trained and filled by faiss itself, written with
//! `faiss::write_index`, imported by `chromatica::faiss_import`, must search
//! to the same neighbours and distances as faiss; and faiss's k-means as a
//! training backend must reach about the quantization error of ours.
#![cfg(feature = "faiss")]

use chromatica::faiss_import;
use chromatica::testing::Rng;
use chromatica::{Index, KMeansBackend, SearchParams, TrainOptions};
use faiss::index::autotune::ParameterSpace;
use faiss::{index_factory, Idx, Index as _, MetricType};
use std::collections::HashSet;

const D: usize = 64;

/// Colour-histogram-like vectors: each is a mix of one to three of 40
/// "palettes" (sparse distributions over the D bins) plus a little noise,
/// L1-normalised, then Hellinger-transformed (element-wise square root), as
/// chromatica's image histograms are. Many near-duplicates, many zeros.
fn histograms(n: usize, seed: u64) -> Vec<f32> {
    let mut p = Rng::new(7);
    let palettes: Vec<Vec<f64>> = (0..40)
        .map(|_| {
            let mut h = vec![0f64; D];
            for _ in 0..p.range(3, 9) {
                h[p.below(D)] += p.uniform() + 0.1;
            }
            h
        })
        .collect();
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n * D);
    for _ in 0..n {
        let mut h = vec![0f64; D];
        for _ in 0..rng.range(1, 4) {
            let w = rng.uniform();
            for (x, y) in h.iter_mut().zip(&palettes[rng.below(palettes.len())]) {
                *x += w * y;
            }
        }
        for _ in 0..4 {
            h[rng.below(D)] += 0.05 * rng.uniform();
        }
        let sum: f64 = h.iter().sum();
        out.extend(h.iter().map(|x| (x / sum).sqrt() as f32));
    }
    out
}

/// Rank by rank, distances within `tol`; as sets, the same ids, except
/// inside the group of neighbours tied (within `tol`) with the last one,
/// where faiss and we may cut at different members. Returns the number of
/// ids compared outside such a group.
fn compare(ours: &[(u64, f32)], theirs: &[(i64, f32)], tol: f32, what: &str) -> usize {
    let theirs: Vec<(i64, f32)> = theirs.iter().copied().take_while(|&(id, _)| id >= 0).collect();
    assert_eq!(ours.len(), theirs.len(), "{what}: {} results, faiss {}", ours.len(), theirs.len());
    for (r, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        assert!((o.1 - t.1).abs() <= tol, "{what}: rank {r}: distance {} vs faiss {}", o.1, t.1);
    }
    let Some(&(_, last)) = theirs.last() else { return 0 };
    let ours_ids: HashSet<u64> = ours.iter().map(|o| o.0).collect();
    let their_ids: HashSet<u64> = theirs.iter().map(|t| t.0 as u64).collect();
    let mut checked = 0;
    for &(id, d) in &theirs {
        if (d - last).abs() > tol {
            assert!(ours_ids.contains(&(id as u64)), "{what}: faiss's id {id} ({d}) missing: {ours:?} vs {theirs:?}");
            checked += 1;
        }
    }
    for &(id, d) in ours {
        if (d - last).abs() > tol {
            assert!(their_ids.contains(&id), "{what}: our id {id} ({d}) not in faiss's: {ours:?} vs {theirs:?}");
        }
    }
    checked
}

#[test]
fn an_index_built_by_faiss_searches_the_same_after_import() {
    let (n, nq, k) = (20_000, 2_000, 10);
    let base = histograms(n, 1);
    let queries = histograms(nq, 2);
    // Custom ids: spread out, unsorted, some above 2^32.
    let ids: Vec<u64> = (0..n as u64).map(|i| if i % 3 == 0 { (1 << 33) + 5 * i } else { 7 * i + 11 }).collect();

    // "np": no polysemous training, which only permutes the PQ centroids
    // (for Hamming filtering, unused here) and takes half a minute.
    let mut index = index_factory(D as u32, "IVF100,PQ8np", MetricType::L2).unwrap();
    index.train(&base).unwrap();
    let faiss_ids: Vec<Idx> = ids.iter().map(|&i| Idx::new(i)).collect();
    index.add_with_ids(&base, &faiss_ids).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("ivfpq.faiss");
    faiss::write_index(&index, file.to_str().unwrap()).unwrap();

    let (ours, report) = faiss_import::import(&file, &tmp.path().join("imported")).unwrap();
    assert_eq!(report.vectors, n);
    let c = ours.config();
    assert_eq!((c.dim, c.nlist, c.m, c.nbits), (D, 100, 8, 8));
    let mut live = ours.snapshot().live_ids().unwrap();
    live.sort_unstable();
    let mut want = ids.clone();
    want.sort_unstable();
    assert_eq!(live, want);

    let space = ParameterSpace::new().unwrap();
    let mut checked = 0;
    for nprobe in [1, 10, 100] {
        space.set_index_parameter(&index, "nprobe", nprobe as f64).unwrap();
        let theirs = index.search(&queries, k).unwrap();
        let params = SearchParams::new(k).nprobe(nprobe);
        let hits = ours.search(&queries, &params).unwrap();
        for (q, row) in hits.iter().enumerate() {
            let mine: Vec<(u64, f32)> = row.iter().map(|h| (h.id, h.distance)).collect();
            let t: Vec<(i64, f32)> = (q * k..(q + 1) * k)
                .map(|i| (theirs.labels[i].get().map_or(-1, |v| v as i64), theirs.distances[i]))
                .collect();
            checked += compare(&mine, &t, 1e-4, &format!("nprobe {nprobe}, query {q}"));
        }
    }
    // Nearly every id is compared outside a tie at the cut-off.
    assert!(checked > 3 * nq * (k - 2), "only {checked} ids compared");

    // The imported index reopens, verifies and searches the same.
    drop(ours);
    let dir = tmp.path().join("imported");
    Index::verify(&dir).unwrap();
    let again = Index::open_read_only(&dir).unwrap();
    let hits = again.search(&queries[..100 * D], &SearchParams::new(k).nprobe(10)).unwrap();
    space.set_index_parameter(&index, "nprobe", 10f64).unwrap();
    let theirs = index.search(&queries[..100 * D], k).unwrap();
    for (q, row) in hits.iter().enumerate() {
        let mine: Vec<(u64, f32)> = row.iter().map(|h| (h.id, h.distance)).collect();
        let t: Vec<(i64, f32)> = (q * k..(q + 1) * k)
            .map(|i| (theirs.labels[i].get().map_or(-1, |v| v as i64), theirs.distances[i]))
            .collect();
        compare(&mine, &t, 1e-4, &format!("reopened, query {q}"));
    }
}

#[test]
fn faiss_kmeans_trains_to_about_the_native_quantization_error() {
    let data = histograms(20_000, 3);
    let config = chromatica::testing::data::config(D, 64, 8, 8, 8);
    // Summed over three seeds: one seed's ratio varies by a few % either way.
    let mut sums = [[0f64; 2]; 2];
    for seed in [1, 2, 3] {
        for (b, kmeans) in [KMeansBackend::Native, KMeansBackend::Faiss].into_iter().enumerate() {
            let tmp = tempfile::tempdir().unwrap();
            let index = Index::create(tmp.path().join("i"), config).unwrap();
            let opts = TrainOptions { kmeans, seed, ..TrainOptions::default() };
            let mut steps = 0;
            let report = index.train(&data, &opts, &mut |_| steps += 1).unwrap();
            assert!(steps > 0, "{kmeans:?}: no progress reported");
            assert!(report.coarse_mse > 0.0 && report.reconstruction_mse > 0.0);
            eprintln!(
                "seed {seed} {kmeans:?}: coarse MSE {:.6}, reconstruction MSE {:.6}",
                report.coarse_mse, report.reconstruction_mse
            );
            sums[b][0] += report.coarse_mse;
            sums[b][1] += report.reconstruction_mse;
            if kmeans == KMeansBackend::Faiss && seed == 1 {
                // A faiss-trained index is an ordinary one.
                index.add(&data[..2_000 * D], None).unwrap();
                let hits = index.search(&data[..100 * D], &SearchParams::new(5)).unwrap();
                assert!(hits.iter().all(|h| h.len() == 5));
                Index::verify(index.path()).unwrap();
            }
        }
    }
    for (i, what) in ["coarse", "reconstruction"].into_iter().enumerate() {
        let ratio = sums[1][i] / sums[0][i];
        assert!((ratio - 1.0).abs() <= 0.05, "{what} MSE: faiss / native = {ratio}");
    }
    // Different implementations: other centroids, not a copy of ours.
    assert_ne!(sums[0], sums[1]);
}
