//! Issue 10, items 5 and 12, through the command line: the huge
//! `--k` and `--candidates` values answer with at most the live vectors,
//! `--threads 100000` is capped at four threads per core, and no error
//! message carries a doubled prefix.

mod common;

use chromatica::testing::{data::clustered, Rng};
use chromatica::vecio::write_npy_f32;
use chromatica::{Config, Index};
use common::*;
use std::path::{Path, PathBuf};

/// The k values: 2^40, 2^62, 2^63, and the largest.
const HUGE: [&str; 4] = ["1099511627776", "4611686018427387904", "9223372036854775808", "18446744073709551615"];

fn cap() -> usize {
    4 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// dim 16, 300 vectors added through the CLI; returns (index, queries).
fn vector_index(root: &Path) -> (PathBuf, PathBuf) {
    let (idx, data) = (root.join("v"), root.join("d.npy"));
    write_npy_f32(&data, &clustered(300, 16, 1), 16).unwrap();
    ok(&["create", p(&idx), "--dim", "16", "--nlist", "4", "--m", "4", "--nbits", "8", "--nprobe", "4", "--refine"]);
    ok(&["train", p(&idx), "--vectors", p(&data)]);
    ok(&["add", p(&idx), "--vectors", p(&data)]);
    (idx, data)
}

/// A colour index (1152 bins, refine store, untrained: searched exactly)
/// holding 40 random histograms.
fn colour_index(root: &Path) -> PathBuf {
    let idx = root.join("c");
    let c = Config { refine: true, ..Config::default() };
    let index = Index::create(&idx, c).unwrap();
    let mut rng = Rng::new(4);
    let data: Vec<f32> = (0..40 * c.dim).map(|_| if rng.percent(5) { rng.uniform() as f32 } else { 0.0 }).collect();
    index.add(&data, None).unwrap();
    idx
}

#[test]
fn huge_k_and_candidates_answer_with_the_live_vectors() {
    let tmp = tempfile::tempdir().unwrap();
    let (idx, queries) = vector_index(tmp.path());
    let out = tmp.path().join("out.ivecs");
    for k in HUGE {
        ok(&["search", p(&idx), "--vectors", p(&queries), "--k", k, "--out", p(&out)]);
        // .ivecs: each row is its width (int32) then the ids.
        let bytes = std::fs::read(&out).unwrap();
        let width = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!((bytes.len() / (4 * (width + 1)), width), (300, 300), "--k {k}: one column per live vector");
    }
    let colours = colour_index(tmp.path());
    for k in HUGE {
        let (so, _) = ok(&["search", p(&colours), "--colors", "ff7f50,1e90ff", "--k", k]);
        assert!(so.contains("40 results"), "--k {k}: {so}");
        let (so, _) = ok(&["search", p(&colours), "--colors", "ff7f50", "--k", k, "--candidates", k, "--json"]);
        assert!(so.contains("\"rank\": 40"), "--k {k} --candidates {k}");
    }
}

#[test]
fn threads_are_capped_at_four_per_core() {
    let tmp = tempfile::tempdir().unwrap();
    let (idx, queries) = vector_index(tmp.path());
    let out = tmp.path().join("out.ivecs");
    let (_, se) = ok(&["search", p(&idx), "--vectors", p(&queries), "--threads", "100000", "--out", p(&out)]);
    assert!(se.contains(&format!(", {} threads)", cap())), "{se}");
    let (_, se) = ok(&["search", p(&idx), "--vectors", p(&queries), "--threads", "1", "--out", p(&out)]);
    assert!(se.contains(", 1 threads)"), "{se}");
    let colours = colour_index(tmp.path());
    let (so, _) = ok(&["search", p(&colours), "--colors", "ff7f50", "--threads", "100000"]);
    assert!(so.contains(&format!("; {} threads;", cap())), "{so}");
}

/// Error paths that used to wrap a message twice, and others: every one
/// is a single line with each prefix at most once (`fails` checks).
#[test]
fn no_error_message_has_a_doubled_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let (idx, queries) = vector_index(tmp.path());
    let bad = tmp.path().join("bad.npy");
    let mut data = clustered(200_000, 16, 5);
    data[150_000 * 16 + 3] = f32::NAN;
    write_npy_f32(&bad, &data, 16).unwrap();
    let line =
        fails_with(&["add", p(&idx), "--vectors", p(&bad)], "row 150000 has a non-finite value (NaN) at column 3");
    assert_no_doubled_prefix(&line);
    data[150_000 * 16 + 3] = 1e30;
    write_npy_f32(&bad, &data[..150_001 * 16], 16).unwrap();
    fails_with(&["add", p(&idx), "--vectors", p(&bad)], "row 150000 has a value (1e30) beyond the limit");
    fails_with(&["search", p(&idx), "--vectors", p(&bad), "--out", p(&tmp.path().join("o.ivecs"))], "limit");
    fails_with(&["train", p(&idx), "--vectors", p(&queries)], "already trained");
    fails_with(&["search", p(&idx), "--vectors", p(&queries), "--k", "0", "--out", p(&bad)], "--k must be at least 1");
    fails_with(&["search", p(&idx), "--vectors", p(&queries), "--threads", "0", "--out", p(&bad)], "--threads");
    fails_with(&["search", p(&idx), "--vectors", p(&queries), "--nprobe", "99", "--out", p(&bad)], "nprobe");
    fails_with(&["create", p(&tmp.path().join("n")), "--dim", "16", "--m", "7"], "invalid configuration");
    fails_with(&["search", p(&idx), "--colors", "ff7f50"], "image histograms have 1152 (use --vectors)");
}
