//! The committed golden index of format version 1
//! (`crates/chromatica/tests/golden/`): it must keep opening, verifying and
//! searching with the same results, through the library and the `chromatica`
//! binary, whatever the format gains later.

mod common;

use chromatica::testing::data::{config, Clusters};
use chromatica::testing::files::{dir_contents, read_ivecs};
use chromatica::testing::layout::get_u32;
use chromatica::vecio::{write_fvecs, VectorFile};
use chromatica::{Config, HealthOptions, Index, Rerank, SearchParams, TrainOptions};
use common::{ok, p};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../chromatica/tests/golden")
}

const GOLDEN_NPROBES: [usize; 2] = [2, 4];
const GOLDEN_K: usize = 10;

/// With the refine store, so that every section of the format is pinned.
fn golden_config() -> Config {
    Config { refine: true, ..config(16, 4, 4, 8, 2) }
}

/// Rebuilds tests/golden/v1, queries.fvecs and v1-expected.json. Run once
/// with `cargo test --release -p chromatica-cli --test compat_v1 -- --ignored regenerate_golden`;
/// only when the format version changes should a new vN be added instead.
#[test]
#[ignore]
fn regenerate_golden() {
    let golden = golden_dir();
    let v1 = golden.join("v1");
    if v1.exists() {
        std::fs::remove_dir_all(&v1).unwrap();
    }
    std::fs::create_dir_all(&golden).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("idx");
    let data = Clusters::new(16, 8, 3, 1.0, 0.05, 7).sample(600, 7);
    let index = Index::create(&path, golden_config()).unwrap();
    let opts = TrainOptions { seed: 7, ..TrainOptions::default() };
    index.train(&data, &opts, &mut |_| ()).unwrap();
    // Two segments: default ids 0..400, explicit ids 1000..1200.
    // The first segment carries records too.
    let records: Vec<chromatica::Record> = (0..400)
        .map(|i| chromatica::Record {
            path: format!("/golden/{i}.png").into(),
            size: 100 + i,
            mtime_ns: 1_700_000_000_000_000_000 + i as i64,
        })
        .collect();
    index.add_records(&data[..400 * 16], None, &records).unwrap();
    index.add(&data[400 * 16..], Some(&(1000..1200).collect::<Vec<u64>>())).unwrap();
    // And one tombstone file, so that its format is pinned too.
    index.delete(&GOLDEN_DELETED).unwrap();
    let queries = Clusters::new(16, 8, 3, 1.0, 0.05, 7).sample(6, 8);
    write_fvecs(&golden.join("queries.fvecs"), &queries, 16).unwrap();
    let searches: Vec<Value> = GOLDEN_NPROBES
        .iter()
        .map(|&nprobe| {
            let res = index.search(&queries, &SearchParams::new(GOLDEN_K).nprobe(nprobe)).unwrap();
            let results: Vec<Value> = res
                .iter()
                .map(|r| {
                    json!({
                        "ids": r.iter().map(|n| n.id).collect::<Vec<_>>(),
                        "distances": r.iter().map(|n| n.distance as f64).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({ "k": GOLDEN_K, "nprobe": nprobe, "results": results })
        })
        .collect();
    let info = index.inspect();
    let expected = json!({
        "format_version": info.format_version,
        "generation": info.generation,
        "vectors": info.vectors,
        "next_id": info.next_id,
        "config": info.config,
        "segments": info.segments.iter().map(|s| json!({"file": s.file, "vectors": s.vectors, "bytes": s.bytes})).collect::<Vec<_>>(),
        "searches": searches,
    });
    drop(index);
    std::fs::create_dir_all(&v1).unwrap();
    for e in std::fs::read_dir(&path).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), v1.join(e.file_name())).unwrap();
        }
    }
    std::fs::write(golden.join("v1-expected.json"), serde_json::to_string_pretty(&expected).unwrap() + "\n").unwrap();
}

fn copy_golden(to: &Path) -> Vec<String> {
    std::fs::create_dir_all(to).unwrap();
    let mut names = Vec::new();
    for e in std::fs::read_dir(golden_dir().join("v1")).expect("tests/golden/v1 exists (see regenerate_golden)") {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    names
}

fn check_golden(index: &Index, expected: &Value, queries: &[f32]) {
    let info = index.inspect();
    assert_eq!(json!(info.format_version), expected["format_version"]);
    assert_eq!(json!(info.generation), expected["generation"]);
    assert_eq!(json!(info.vectors), expected["vectors"]);
    assert_eq!(json!(info.next_id), expected["next_id"]);
    // Config fields added after v1 was written (fast_scan) are absent from
    // its JSON; the comparison with `golden_config` below pins them.
    let mut config = json!(info.config);
    config.as_object_mut().unwrap().retain(|k, _| expected["config"].get(k).is_some());
    assert_eq!(config, expected["config"]);
    assert_eq!(info.config, golden_config());
    let segs = expected["segments"].as_array().unwrap();
    assert_eq!(info.segments.len(), segs.len());
    for (s, e) in info.segments.iter().zip(segs) {
        assert_eq!(json!({"file": s.file, "vectors": s.vectors, "bytes": s.bytes}), *e);
    }
    for search in expected["searches"].as_array().unwrap() {
        let k = search["k"].as_u64().unwrap() as usize;
        let nprobe = search["nprobe"].as_u64().unwrap() as usize;
        let got = index.search(queries, &SearchParams::new(k).nprobe(nprobe)).unwrap();
        let want = search["results"].as_array().unwrap();
        assert_eq!(got.len(), want.len());
        for (q, (g, w)) in got.iter().zip(want).enumerate() {
            let ids: Vec<u64> = w["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
            let ds: Vec<f64> = w["distances"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            assert_eq!(g.iter().map(|n| n.id).collect::<Vec<_>>(), ids, "nprobe {nprobe} query {q}: ids");
            for (n, d) in g.iter().zip(&ds) {
                let diff = (n.distance as f64 - d).abs();
                assert!(diff <= 1e-5 * d.abs().max(1.0), "nprobe {nprobe} query {q}: distance {} vs {d}", n.distance);
            }
        }
    }
}

/// Ids the golden index deletes (two from each segment).
const GOLDEN_DELETED: [u64; 4] = [3, 7, 1001, 1100];

#[test]
fn golden_index_v1_still_opens_and_searches() {
    let golden = golden_dir();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(golden.join("v1-expected.json")).unwrap()).unwrap();
    let qf = VectorFile::open(&golden.join("queries.fvecs")).unwrap();
    assert_eq!(qf.dim(), 16);
    let queries = qf.read_all().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v1");
    let names = copy_golden(&dir);
    assert!(!names.iter().any(|n| n == "LOCK" || n.ends_with(".tmp")), "{names:?}");
    assert_eq!(names.iter().filter(|n| n.starts_with("MANIFEST-")).count(), 1, "{names:?}");
    assert_eq!(names.iter().filter(|n| n.ends_with(".qnt")).count(), 1, "{names:?}");
    assert_eq!(names.iter().filter(|n| n.ends_with(".seg")).count(), 2, "{names:?}");
    assert_eq!(names.iter().filter(|n| n.ends_with(".del")).count(), 1, "{names:?}");
    assert_eq!(expected["vectors"], json!(596));
    let report = Index::verify(&dir).unwrap();
    assert_eq!((report.vectors, report.deleted), (596, 4));
    assert_eq!(expected["format_version"], json!(1));

    let ro = Index::open_read_only(&dir).unwrap();
    check_golden(&ro, &expected, &queries);
    drop(ro);
    let rw = Index::open(&dir).unwrap();
    check_golden(&rw, &expected, &queries);
    // Opening for writing removed none of the files.
    let mut now: Vec<String> = dir_contents(&dir).into_keys().filter(|n| n != "LOCK").collect();
    now.sort();
    assert_eq!(now, names);
    // The old index takes new writes; old answers with k 10 still hold for
    // the ids that were there (a far-away vector does not enter them).
    let far = vec![1e3f32; 16];
    let r = rw.add(&far, None).unwrap();
    assert_eq!(r.ids.start, expected["next_id"].as_u64().unwrap());
    assert_eq!(rw.len(), 597);
    drop(rw);
    // The add wrote a version-2 segment (16-bit scaled refine values)
    // beside the golden version-1 ones, which stay as they were.
    let mut versions: Vec<(bool, u32)> = dir_contents(&dir)
        .into_iter()
        .filter(|(n, _)| n.ends_with(".seg"))
        .map(|(n, b)| (names.contains(&n), get_u32(&b, 12)))
        .collect();
    versions.sort();
    assert_eq!(versions, [(false, 2), (true, 1), (true, 1)]);

    // The CLI reads it too.
    let out = tmp.path().join("r.ivecs");
    ok(&[
        "search",
        p(&dir),
        "--vectors",
        p(&golden.join("queries.fvecs")),
        "--k",
        "10",
        "--nprobe",
        "4",
        "--out",
        p(&out),
    ]);
    let (rows, k, got) = read_ivecs(&out);
    assert_eq!((rows, k), (6, 10));
    let want: Vec<i32> = expected["searches"][1]["results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["ids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as i32).collect::<Vec<_>>())
        .collect();
    assert_eq!(expected["searches"][1]["nprobe"], json!(4));
    assert_eq!(got, want);

    // The add committed a version-2 manifest beside the version-1 files;
    // the quantizer file stays version 1, without a training baseline,
    // which the health report says.
    let qnt = names.iter().find(|n| n.ends_with(".qnt")).unwrap();
    assert_eq!(get_u32(&std::fs::read(dir.join(qnt)).unwrap(), 12), 1);
    let rw = Index::open(&dir).unwrap();
    assert_eq!(rw.inspect().format_version, 2);
    let h = rw.health(&HealthOptions::default()).unwrap();
    assert!(h.baseline.is_none() && h.reconstruction_growth.is_none() && h.train_points > 0, "{h:?}");
    let (s, _) = ok(&["inspect", p(&dir), "--health"]);
    assert!(s.contains("no training baseline stored") && s.contains("retrain to record one"), "{s}");
    // Search defaults are stored in the new manifest; a retrain writes a
    // version-2 quantizer file with its baseline; the mixed index verifies.
    rw.set_search_defaults(Rerank::L2, 4, 50).unwrap();
    rw.retrain(&TrainOptions { seed: 7, ..TrainOptions::default() }).unwrap();
    let h = rw.health(&HealthOptions::default()).unwrap();
    assert!(h.baseline.is_some_and(|b| b.points >= 256), "{:?}", h.baseline);
    drop(rw);
    let ro = Index::open_read_only(&dir).unwrap();
    assert_eq!(ro.snapshot().search_defaults(Rerank::L2), (4, 50));
    assert_eq!(Index::verify(&dir).unwrap().vectors, 597);
    ok(&["verify", p(&dir)]);
}
