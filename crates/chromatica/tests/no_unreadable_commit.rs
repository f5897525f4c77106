//! No command may commit a state that open would reject (issue 10, item 1).
//!
//! Two defences: values beyond `MAX_ABS_VALUE` are refused where they enter
//! (train, add, search), so quantizers trained on accepted data are finite;
//! and every commit decodes the state it is about to publish with open's
//! decoders before its manifest gets a name, so whatever slips past the
//! first (here: quantizers made elsewhere) is refused with nothing written.

use chromatica::testing::Encoded;
use chromatica::testing::{data::config, files::dir_contents, Rng};
use chromatica::testing::{IndexInternals, SnapshotInternals};
use chromatica::{Config, Error, Index, SearchParams, TrainOptions, MAX_ABS_VALUE};

/// The shape: dim 16, nlist 8, m 4, nbits 8, nprobe 2.
fn shape(refine: bool) -> Config {
    Config { refine, ..config(16, 8, 4, 8, 2) }
}

/// rand × scale, from the test generator.
fn scaled(n: usize, dim: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n * dim).map(|_| rng.uniform() as f32 * scale).collect()
}

/// The first case: 2,000 rows of rand × 1e20 added, then `retrain`.
/// The add is refused (naming row and column) and changes nothing; retrain
/// then succeeds and the index reopens and verifies.
#[test]
fn rows_of_rand_times_1e20_are_refused_and_retrain_still_opens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("x");
    let index = Index::create(&dir, shape(true)).unwrap();
    let data = scaled(2000, 16, 1.0, 1);
    index.train(&data, &TrainOptions::default(), &mut |_| ()).unwrap();
    index.add(&data, None).unwrap();
    let (generation, before) = (index.snapshot().manifest().generation, dir_contents(&dir));
    let e = index.add(&scaled(2000, 16, 1e20, 2), None).unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    let m = e.to_string();
    assert!(m.contains("row 0") && m.contains("column 0") && m.contains("limit of ±1e15"), "{m}");
    assert_eq!(index.snapshot().manifest().generation, generation, "the refused add committed");
    assert_eq!(dir_contents(&dir), before, "the refused add wrote a file");
    assert_eq!(index.len(), 2000);
    index.retrain(&TrainOptions::default()).unwrap();
    drop(index);
    let index = Index::open(&dir).unwrap();
    assert_eq!(index.len(), 2000);
    Index::verify(&dir).unwrap();
    let hits = index.search(&data[..16], &SearchParams::new(1)).unwrap();
    assert_eq!(hits[0][0].id, 0);
}

/// The second case: a fresh `train` on one row with a coordinate
/// of 5e19 is refused; the index stays untrained and opens.
#[test]
fn training_on_a_coordinate_of_5e19_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("y");
    let index = Index::create(&dir, shape(false)).unwrap();
    let mut data = scaled(300, 16, 1.0, 3);
    data[16 * 7 + 3] = 5e19;
    let m = index.train(&data, &TrainOptions::default(), &mut |_| ()).unwrap_err().to_string();
    assert!(m.contains("row 7") && m.contains("column 3") && m.contains("5e19"), "{m}");
    drop(index);
    let index = Index::open(&dir).unwrap();
    assert!(!index.is_trained());
    Index::verify(&dir).unwrap();
    // Queries are held to the same limit.
    data[16 * 7 + 3] = 0.5;
    index.train(&data, &TrainOptions::default(), &mut |_| ()).unwrap();
    let mut q = data[..16].to_vec();
    q[2] = -1e20;
    let m = index.search(&q, &SearchParams::new(1)).unwrap_err().to_string();
    assert!(m.contains("limit"), "{m}");
}

/// The limit is sound at its worst: coordinates of ±MAX_ABS_VALUE at the
/// largest dimension (65,536) train, add, re-train, reopen and search with
/// finite distances.
#[test]
fn values_at_the_limit_in_the_largest_dimension_stay_finite() {
    let dim = 65_536;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("z");
    let c = Config { refine: true, ..config(dim, 2, 1, 1, 2) };
    let index = Index::create(&dir, c).unwrap();
    let b = MAX_ABS_VALUE;
    // Four rows: all +b, all −b, and two alternating: every residual and
    // cross term takes its largest magnitude.
    let mut data = Vec::with_capacity(4 * dim);
    data.extend(std::iter::repeat_n(b, dim));
    data.extend(std::iter::repeat_n(-b, dim));
    data.extend((0..dim).map(|i| if i % 2 == 0 { b } else { -b }));
    data.extend((0..dim).map(|i| if i % 2 == 0 { -b } else { b }));
    index.train(&data, &TrainOptions::default(), &mut |_| ()).unwrap();
    index.add(&data, None).unwrap();
    index.retrain(&TrainOptions::default()).unwrap();
    drop(index);
    let index = Index::open(&dir).unwrap();
    Index::verify(&dir).unwrap();
    let rerank = Some(chromatica::Rerank::Off);
    for params in [SearchParams::new(4), {
        let mut p = SearchParams::new(4);
        p.rerank = rerank;
        p
    }] {
        let hits = index.search(&data[..dim], &params).unwrap();
        assert_eq!(hits[0].len(), 4);
        assert!(hits[0].iter().all(|h| h.distance.is_finite()), "{:?}", hits[0]);
    }
}

/// The backstop: quantizers made elsewhere whose precomputed table
/// overflows (codebook values of 1e30, finite, so the import's own check
/// passes) would be a `.qnt` that open rejects. The commit is refused before
/// its manifest is renamed and every file the import made is removed.
#[test]
fn a_commit_whose_files_open_would_reject_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let c = config(16, 2, 4, 2, 2);
    let coarse = vec![0.5; 2 * 16];
    let codebooks = vec![1e30; 4 * 16];
    let q = chromatica::testing::quantizer::Quantizers::from_parts(&c, coarse, codebooks, 10, 1).unwrap();
    let vectors = Encoded { lists: vec![0, 1], codes: vec![0; 2], ids: vec![3, 4] };
    let e = Index::create_encoded(&dir, q, vectors).err().expect("the commit must be refused");
    assert!(matches!(e, Error::WouldNotOpen(_)), "{e}");
    let m = e.to_string();
    assert!(m.contains("nothing was committed") && m.contains(".qnt") && m.contains("non-finite"), "{m}");
    // The import made the directory, so a refused import removes it again
    // (it never held anything but this call's files).
    assert!(!dir.exists(), "the refused import left {:?}", dir_contents(&dir));
    // Into an empty folder the caller made: the folder stays, holding only
    // the lock file (removing a lock another process may be waiting on is
    // not safe), and an index can still be made in it.
    std::fs::create_dir(&dir).unwrap();
    let q = chromatica::testing::quantizer::Quantizers::from_parts(&c, vec![0.5; 2 * 16], vec![1e30; 4 * 16], 10, 1)
        .unwrap();
    let vectors = Encoded { lists: vec![0, 1], codes: vec![0; 2], ids: vec![3, 4] };
    let e = Index::create_encoded(&dir, q, vectors).err().expect("the commit must be refused");
    assert!(matches!(e, Error::WouldNotOpen(_)), "{e}");
    assert!(dir.is_dir());
    let left: Vec<String> = dir_contents(&dir).into_keys().collect();
    assert_eq!(left, ["LOCK"], "the refused import left {left:?}");
    Index::create(&dir, c).unwrap();
}
