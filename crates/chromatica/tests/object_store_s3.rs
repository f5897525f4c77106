//! The object-storage backend against a real S3 API: moto's server mode
//! (`pip install 'moto[server]'`), started by the test on 127.0.0.1 and
//! stopped when it ends. Without `moto_server` on the PATH the tests say
//! so and pass (`.ci/run` installs it, so CI runs them).
//!
//! Checked: create, train, add, delete, compact and search through S3 and
//! the local cache; a second process's view (another cache) matches;
//! writers racing for one generation over HTTP (exactly one wins, the
//! others get `Error::Conflict` and nothing of theirs is committed or left).

use chromatica::object_store::aws::AmazonS3Builder;
use chromatica::testing::model::*;
use chromatica::testing::moto::Moto;
use chromatica::testing::{Rng, SnapshotInternals};
use chromatica::{CacheOptions, Error, Index, ObjectStorage, TrainOptions};
use std::sync::{Arc, Barrier};

fn backend(port: u16, bucket: &str, prefix: &str, cache: &std::path::Path) -> ObjectStorage {
    let store = AmazonS3Builder::new()
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_allow_http(true)
        .with_bucket_name(bucket)
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .build()
        .unwrap();
    let o = CacheOptions { dir: cache.to_owned(), max_bytes: 1 << 30 };
    ObjectStorage::new(Arc::new(store), prefix, &format!("s3://{bucket}/{prefix}"), o).unwrap()
}

#[test]
fn an_index_on_s3_commits_searches_and_races() {
    let Some(m) = Moto::start() else { return };
    m.make_bucket("chromatica-test");
    let dir = tempfile::tempdir().unwrap();
    let label = "s3://chromatica-test/photos/idx";
    let index =
        Index::create_object(label, backend(m.port, "chromatica-test", "photos/idx", &dir.path().join("a")), config(8))
            .unwrap();
    let mut rng = Rng::mixed(1);
    index.train(&vectors(&mut rng, 600), &TrainOptions::default(), &mut |_| ()).unwrap();
    let data = vectors(&mut rng, 300);
    index.add(&data, None).unwrap();
    index.add(&vectors(&mut rng, 50), None).unwrap();
    index.delete(&[3, 5, 7]).unwrap();
    index.compact().unwrap();
    let q = vectors(&mut Rng::mixed(2), 4);
    let here = index.search(&q, &params(10, 4)).unwrap();
    assert_eq!(index.len(), 347);

    // Another process (its own cache) sees the same state and results.
    let other =
        Index::open_object(label, backend(m.port, "chromatica-test", "photos/idx", &dir.path().join("b")), false)
            .unwrap();
    assert_eq!(live_ids(&other), live_ids(&index));
    assert_eq!(other.search(&q, &params(10, 4)).unwrap(), here);
    let report =
        chromatica::testing::verify::verify(&backend(m.port, "chromatica-test", "photos/idx", &dir.path().join("v")))
            .unwrap();
    assert!(report.leftovers.is_empty(), "{:?}", report.leftovers);
    drop(index);

    // Writers racing for one generation over HTTP.
    const WRITERS: usize = 3;
    let writers: Vec<Index> = (0..WRITERS)
        .map(|w| {
            let s = backend(m.port, "chromatica-test", "photos/idx", &dir.path().join(format!("w{w}")));
            Index::open_object(label, s, true).unwrap()
        })
        .collect();
    let gen = writers[0].snapshot().manifest().generation;
    let barrier = Barrier::new(WRITERS);
    let results: Vec<chromatica::Result<usize>> = std::thread::scope(|scope| {
        let hs: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(w, index)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let ids: Vec<u64> = (0..4).map(|j| 10_000 + (w * 10 + j) as u64).collect();
                    let data = vectors(&mut Rng::mixed(50 + w as u64), 4);
                    barrier.wait();
                    index.add(&data, Some(&ids)).map(|_| w)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<usize> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
    assert_eq!(winners.len(), 1, "exactly one writer wins: {results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, Error::Conflict(_)), "the loser gets a clear conflict: {e:?}");
        }
    }
    drop(writers);
    other.refresh().unwrap();
    assert_eq!(other.snapshot().manifest().generation, gen + 1);
    let ids = live_ids(&other);
    let w = winners[0];
    for l in 0..WRITERS {
        let has = ids.contains(&(10_000 + (l * 10) as u64));
        assert_eq!(has, l == w, "writer {l}'s vectors committed: {has}");
    }
    let names = chromatica::testing::storage::Storage::list(&backend(
        m.port,
        "chromatica-test",
        "photos/idx",
        &dir.path().join("l"),
    ))
    .unwrap();
    assert_no_leftovers(&names, other.snapshot().manifest(), "after the race over S3");
}
