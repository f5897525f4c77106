//! Searching an index in parts (`chromatica.ray.ShardedSearcher`):
//! `Snapshot::subset` + `search_candidates` on disjoint groups of segments,
//! merged by `merge_candidates`, answer exactly what `search` on the whole
//! state answers — same ids, same distances, bit for bit — with and without
//! re-ranking, with deletions, fast-scan, before training, for any k,
//! candidates, nprobe and grouping.

use chromatica::testing::data::{clustered, config};
use chromatica::{merge_candidates, Candidate, Config, Index, Rerank, SearchParams, Snapshot, TrainOptions};

const D: usize = 24;

/// An index of 12 segments (no merges) with some deletions.
fn index(dir: &std::path::Path, config: Config, train: bool) -> Index {
    let index = Index::create(dir, config).unwrap();
    index.set_merge_policy(chromatica::MergePolicy { enabled: false, ..Default::default() }).unwrap();
    if train {
        index.train(&clustered(3000, D, 1), &TrainOptions::default(), &mut |_| ()).unwrap();
    }
    for s in 0..12u64 {
        index.add(&clustered(150 + 10 * s as usize, D, 10 + s), None).unwrap();
    }
    index.delete(&(0..2000).step_by(7).collect::<Vec<u64>>()).unwrap();
    index
}

/// `groups` parts of the segments, round robin.
fn parts(snap: &Snapshot, groups: usize) -> Vec<Snapshot> {
    let files: Vec<u64> = snap.segment_files().iter().map(|s| s.0).collect();
    (0..groups)
        .map(|g| {
            let mine: Vec<u64> = files.iter().copied().skip(g).step_by(groups).collect();
            snap.subset(&mine).unwrap()
        })
        .collect()
}

fn check(index: &Index, params: SearchParams) {
    let snap = index.snapshot();
    let queries = clustered(40, D, 77);
    let whole: Vec<Vec<(u64, f32)>> = snap
        .search(&queries, &params)
        .unwrap()
        .into_iter()
        .map(|r| r.into_iter().map(|n| (n.id, n.distance)).collect())
        .collect();
    for groups in [1, 2, 5, 12] {
        let answers: Vec<Vec<Vec<Candidate>>> =
            parts(&snap, groups).iter().map(|p| p.search_candidates(&queries, &params).unwrap()).collect();
        let merged = merge_candidates(&answers, &params).unwrap();
        for (q, (m, w)) in merged.iter().zip(&whole).enumerate() {
            let bits = |r: &[(u64, f32)]| r.iter().map(|&(id, d)| (id, d.to_bits())).collect::<Vec<_>>();
            assert_eq!(bits(m), bits(w), "query {q}, {groups} groups, {params:?}");
        }
    }
}

#[test]
fn parts_merge_to_the_whole_with_re_ranking() {
    let tmp = tempfile::tempdir().unwrap();
    let index = index(tmp.path(), Config { refine: true, ..config(D, 16, 6, 8, 3) }, true);
    for (k, candidates, nprobe) in [(10, 20, 3), (1, 1, 1), (25, 200, 16), (10, 5, 2)] {
        check(&index, SearchParams::new(k).candidates(candidates).nprobe(nprobe));
    }
    check(&index, SearchParams::new(10).rerank(Rerank::Off));
}

#[test]
fn parts_merge_to_the_whole_without_a_refine_store_and_with_fast_scan() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = index(&tmp.path().join("plain"), config(D, 16, 6, 8, 4), true);
    check(&plain, SearchParams::new(10));
    check(&plain, SearchParams::new(50).nprobe(16));
    let fast =
        index(&tmp.path().join("fast"), Config { fast_scan: true, refine: true, ..config(D, 16, 6, 4, 4) }, true);
    check(&fast, SearchParams::new(10).candidates(30));
}

#[test]
fn parts_merge_to_the_whole_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let exact = index(tmp.path(), Config { refine: true, ..config(D, 16, 6, 8, 3) }, false);
    check(&exact, SearchParams::new(10).candidates(15));
}

#[test]
fn bad_parts_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let index = index(tmp.path(), Config { refine: true, ..config(D, 16, 6, 8, 3) }, true);
    let snap = index.snapshot();
    let e = snap.subset(&[0xdead]).unwrap_err().to_string();
    assert!(e.contains("000000000000dead is not part of generation"), "{e}");
    let part = snap.subset(&[snap.segment_files()[0].0, snap.segment_files()[1].0]).unwrap();
    assert_eq!(part.segment_count(), 2);
    let emd = SearchParams::new(5).rerank(Rerank::ExactEmd);
    assert!(part.search_candidates(&clustered(1, D, 1), &emd).is_err());
    let q = clustered(2, D, 1);
    let with = part.search_candidates(&q, &SearchParams::new(5)).unwrap();
    let without = part.search_candidates(&q, &SearchParams::new(5).rerank(Rerank::Off)).unwrap();
    assert!(merge_candidates(&[with.clone(), without], &SearchParams::new(5)).is_err());
    assert!(merge_candidates(&[with.clone(), with[..1].to_vec()], &SearchParams::new(5)).is_err());
    assert!(merge_candidates(&[with], &SearchParams::new(0)).is_err());
}
