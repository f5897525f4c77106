//! Any k and any candidate count are safe (issue 10, item 5): both are
//! capped at the live vectors with checked arithmetic, so the buffers they
//! size are bounded by the index. The values, on a trained index
//! with and without re-ranking, on a fast-scan index, and on an untrained
//! one searched exactly.

use chromatica::testing::data::*;
use chromatica::{Config, Index, Rerank, SearchParams, TrainOptions};

/// k values of the issue: 2^40 (aborted allocating), 2^62 (capacity
/// overflow), 2^63 (panicked selecting), and the largest.
const HUGE: [usize; 5] = [1 << 40, 1 << 62, 1 << 63, usize::MAX - 1, usize::MAX];

fn check(index: &Index, live: usize, what: &str) {
    let q = clustered(2, 8, 9);
    for k in HUGE {
        for rerank in [None, Some(Rerank::Off)] {
            for candidates in [None, Some(1 << 40), Some(usize::MAX)] {
                let params = {
                    let mut p = SearchParams::new(k);
                    p.rerank = rerank;
                    p.candidates = candidates;
                    p
                };
                let hits = index.search(&q, &params).unwrap_or_else(|e| panic!("{what}, k {k}: {e}"));
                assert_eq!(hits.len(), 2);
                for h in &hits {
                    assert!(h.len() <= live, "{what}: {} results from {live} vectors", h.len());
                }
                if params.nprobe.is_none() && rerank.is_none() {
                    // Exhaustive enough at this size: every live vector.
                    let all = index.search(&q, &params.nprobe(index.config().nlist)).unwrap();
                    assert_eq!(all[0].len(), live, "{what}, k {k}");
                }
            }
        }
    }
    // Candidates alone, with a small k.
    let params = SearchParams::new(3).candidates(1 << 40);
    assert_eq!(index.search(&q, &params).unwrap()[0].len(), 3.min(live));
}

#[test]
fn huge_k_and_candidates_are_capped_at_the_live_vectors() {
    for (name, c, trained) in [
        ("trained, refine", Config { refine: true, ..config(8, 4, 2, 8, 2) }, true),
        ("fast-scan, refine", Config { refine: true, fast_scan: true, ..config(8, 4, 2, 4, 2) }, true),
        ("untrained, exact", Config { refine: true, ..config(8, 4, 2, 8, 2) }, false),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let index = Index::create(tmp.path().join("i"), c).unwrap();
        if trained {
            index.train(&clustered(600, 8, 1), &TrainOptions::default(), &mut |_| ()).unwrap();
        }
        index.add(&clustered(150, 8, 2), None).unwrap();
        index.delete(&[0, 1, 2]).unwrap();
        check(&index, 147, name);
    }
}

#[test]
fn an_empty_index_returns_nothing_for_any_k() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(tmp.path().join("i"), Config { refine: true, ..config(8, 4, 2, 8, 2) }).unwrap();
    index.train(&clustered(600, 8, 1), &TrainOptions::default(), &mut |_| ()).unwrap();
    for k in HUGE {
        let hits = index.search(&clustered(1, 8, 3), &SearchParams::new(k).candidates(k));
        assert_eq!(hits.unwrap(), vec![vec![]]);
    }
}
