//! `chromatica … s3://bucket/prefix` through the binary, against moto's S3
//! server on loopback (started here, stopped at the end; without
//! `moto_server` on the PATH the test says so and passes — `.ci/run`
//! installs it). Configured as the AWS SDKs are: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`.
//!
//! The same commands on a local directory and on S3 give the same search
//! results byte for byte; every read and write command works on S3; a bad
//! address is a one-line error.

mod common;

use chromatica::testing::data::clustered;
use chromatica::testing::moto::Moto;
use chromatica::vecio::write_fvecs;
use common::*;
use std::ffi::OsStr;
use std::path::Path;

/// Runs the binary with the S3 environment; must succeed.
fn s3_ok<S: AsRef<OsStr>>(port: u16, cache: &Path, args: &[S]) -> String {
    let out = command(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("CHROMATICA_CACHE_DIR", cache)
        .output()
        .unwrap();
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{:?} failed: {so} {se}", argv(args));
    so
}

#[test]
fn every_command_works_on_s3_and_matches_a_local_index() {
    let Some(m) = Moto::start() else { return };
    m.make_bucket("bucket");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (train, base, more, q) =
        (root.join("t.fvecs"), root.join("b.fvecs"), root.join("m.fvecs"), root.join("q.fvecs"));
    write_fvecs(&train, &clustered(2000, 16, 1), 16).unwrap();
    write_fvecs(&base, &clustered(1000, 16, 2), 16).unwrap();
    write_fvecs(&more, &clustered(200, 16, 3), 16).unwrap();
    write_fvecs(&q, &clustered(20, 16, 4), 16).unwrap();
    let ids = root.join("del.ivecs");
    chromatica::vecio::write_ivecs(&ids, &[1, 2, 3, 500], 1).unwrap();
    let local = root.join("local-idx");
    let remote = "s3://bucket/indexes/demo".to_owned();
    let cache = root.join("cache");
    let mut results = Vec::new();
    for (n, dir) in [p(&local).to_owned(), remote.clone()].iter().enumerate() {
        let run = |args: &[&str]| s3_ok(m.port, &cache, args);
        run(&["create", dir, "--dim", "16", "--nlist", "8", "--m", "4", "--nbits", "8", "--nprobe", "4", "--refine"]);
        run(&["train", dir, "--vectors", p(&train), "--seed", "3"]);
        run(&["add", dir, "--vectors", p(&base)]);
        run(&["add", dir, "--vectors", p(&more)]);
        run(&["delete", dir, "--ids", p(&ids)]);
        run(&["compact", dir]);
        let verify = run(&["verify", dir]);
        assert!(verify.starts_with("ok: generation") && verify.contains(" 1196 live vectors"), "{verify}");
        assert!(!verify.contains("leftover"), "{verify}");
        let inspect: serde_json::Value = serde_json::from_str(&run(&["inspect", dir, "--json"])).unwrap();
        assert_eq!(inspect["vectors"], 1196, "{inspect}");
        let out = root.join(format!("res{n}.ivecs"));
        run(&["search", dir, "--vectors", p(&q), "--k", "10", "--out", p(&out)]);
        run(&["recover", dir]);
        run(&["retrain", dir]);
        let out2 = root.join(format!("res{n}-after-retrain.ivecs"));
        run(&["search", dir, "--vectors", p(&q), "--k", "10", "--out", p(&out2)]);
        results.push((std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap()));
    }
    assert_eq!(results[0], results[1], "S3 and the local directory gave different results");
    // The cache holds what the S3 commands downloaded or uploaded.
    assert!(std::fs::read_dir(cache.join("bucket")).unwrap().count() > 0);
    // A second create on the same prefix is refused.
    let out = command(&["create", &remote, "--dim", "16", "--nlist", "8", "--m", "4", "--nprobe", "4"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", m.port))
        .env("CHROMATICA_CACHE_DIR", &cache)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let se = text(&out.stderr);
    assert!(se.contains("already exists") && se.lines().count() == 1, "{se}");
}

#[test]
fn a_bad_s3_address_is_one_line() {
    let line = fails(&["inspect", "s3://Bad_Bucket/x"]);
    assert!(line.contains("not a valid bucket name"), "{line}");
}
