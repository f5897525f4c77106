//! Stored search defaults (what `chromatica tune` stores): one commit, read
//! back after reopening, used by every search that does not say otherwise,
//! kept apart per kind of re-rank (an exact-EMD tune never changes a vector
//! search), refused with nothing written when out of range, and followed by
//! a sharded search's merge.

use chromatica::testing::data::{clustered, config};
use chromatica::{merge_candidates, Config, Error, Index, Rerank, SearchParams, TrainOptions, DEFAULT_CANDIDATES};

const D: usize = 24;

fn refine_index(dir: &std::path::Path) -> Index {
    let c = Config { refine: true, ..config(D, 16, 4, 6, 4) };
    let index = Index::create(dir, c).unwrap();
    index.train(&clustered(2000, D, 1), &TrainOptions::default(), &mut |_| ()).unwrap();
    index.add(&clustered(1500, D, 2), None).unwrap();
    index.add(&clustered(1500, D, 3), None).unwrap();
    index
}

#[test]
fn stored_defaults_govern_searches_of_their_rerank_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("i");
    let index = refine_index(&dir);
    let queries = clustered(30, D, 9);
    let snap = index.snapshot();
    assert_eq!(snap.search_defaults(Rerank::L2), (4, DEFAULT_CANDIDATES));
    assert_eq!(snap.search_defaults(Rerank::ExactEmd), (4, DEFAULT_CANDIDATES));
    let generation = snap.generation();
    drop(snap);

    // L2: the index's nprobe and the L2 candidates, in one commit.
    index.set_search_defaults(Rerank::L2, 7, 15).unwrap();
    assert_eq!(index.snapshot().generation(), generation + 1);
    drop(index);
    let index = Index::open_read_only(&dir).unwrap();
    let snap = index.snapshot();
    assert_eq!(snap.search_defaults(Rerank::L2), (7, 15));
    assert_eq!(snap.search_defaults(Rerank::Off).0, 7);
    // EMD re-ranking keeps its own (unset: the configuration's nprobe).
    assert_eq!(snap.search_defaults(Rerank::ExactEmd), (7, DEFAULT_CANDIDATES));
    let info = index.inspect();
    assert_eq!((info.config.nprobe, info.default_candidates, info.emd_candidates), (7, 15, DEFAULT_CANDIDATES));
    assert_eq!(info.format_version, 2);
    // A search that does not say is the search with the stored values, and
    // differs from the built-in 200 candidates (15 candidates miss some).
    let stored = index.search(&queries, &SearchParams::new(10)).unwrap();
    assert_eq!(stored, index.search(&queries, &SearchParams::new(10).nprobe(7).candidates(15)).unwrap());
    let builtin = index.search(&queries, &SearchParams::new(10).nprobe(7).candidates(DEFAULT_CANDIDATES)).unwrap();
    assert_ne!(stored, builtin, "15 candidates should change some answer");
    // What a search says wins.
    assert_eq!(index.search(&queries, &SearchParams::new(10).candidates(DEFAULT_CANDIDATES)).unwrap(), builtin);
    drop(index);

    // EMD: only the EMD pair changes; vector searches answer as before.
    let index = Index::open(&dir).unwrap();
    index.set_search_defaults(Rerank::ExactEmd, 3, 50).unwrap();
    let snap = index.snapshot();
    assert_eq!(snap.search_defaults(Rerank::ExactEmd), (3, 50));
    assert_eq!(snap.search_defaults(Rerank::L2), (7, 15));
    assert_eq!(index.search(&queries, &SearchParams::new(10)).unwrap(), stored);
    drop(snap);
    drop(index);
    let info = Index::open_read_only(&dir).unwrap().inspect();
    assert_eq!((info.emd_nprobe, info.emd_candidates, info.default_candidates), (3, 50, 15));
}

#[test]
fn out_of_range_defaults_are_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("i");
    let index = refine_index(&dir);
    let before = std::fs::read_dir(&dir).unwrap().count();
    let generation = index.snapshot().generation();
    for (rerank, nprobe, candidates, what) in [
        (Rerank::L2, 0, 10, "nprobe"),
        (Rerank::L2, 17, 10, "nprobe"),
        (Rerank::ExactEmd, 17, 10, "nprobe"),
        (Rerank::L2, 4, 0, "candidates"),
        (Rerank::ExactEmd, 4, 0, "candidates"),
    ] {
        match index.set_search_defaults(rerank, nprobe, candidates) {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, what),
            other => panic!("{rerank:?} {nprobe} {candidates}: {other:?}"),
        }
    }
    assert_eq!(index.snapshot().generation(), generation);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), before);
    drop(index);
    let ro = Index::open_read_only(&dir).unwrap();
    assert!(matches!(ro.set_search_defaults(Rerank::L2, 2, 10), Err(Error::ReadOnly(_))));
}

/// A sharded search leaves `candidates` unset on the parts (each resolves
/// the stored default); the merge is given the same number from
/// `search_defaults`, and the answer is the whole index's, bit for bit.
#[test]
fn a_sharded_merge_follows_the_stored_candidates() {
    let tmp = tempfile::tempdir().unwrap();
    let index = refine_index(&tmp.path().join("i"));
    index.set_search_defaults(Rerank::L2, 4, 12).unwrap();
    let snap = index.snapshot();
    let queries = clustered(25, D, 5);
    let params = SearchParams::new(10);
    let files: Vec<u64> = snap.segment_files().iter().map(|s| s.0).collect();
    assert!(files.len() >= 2, "{files:?}");
    let parts: Vec<_> =
        files.iter().map(|&f| snap.subset(&[f]).unwrap().search_candidates(&queries, &params).unwrap()).collect();
    let (_, candidates) = snap.search_defaults(Rerank::L2);
    let merged = merge_candidates(&parts, &params.candidates(candidates)).unwrap();
    let whole = snap.search(&queries, &params).unwrap();
    for (m, w) in merged.iter().zip(&whole) {
        let w: Vec<(u64, f32)> = w.iter().map(|n| (n.id, n.distance)).collect();
        assert_eq!(*m, w);
    }
}
