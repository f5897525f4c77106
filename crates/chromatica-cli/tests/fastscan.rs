//! 4-bit fast-scan from the outside: search equals brute-force ADC over the
//! same codes (several m, deletes, several segments, after compaction and
//! after re-training), equals a plain 4-bit index with the same quantizers
//! bit for bit, counts its block padding in the memory report, survives
//! reopening and `verify`, catches every flipped bit of its code blocks, and
//! is refused with nbits other than 4.

mod common;

use chromatica::testing::layout::{get_u32, get_u64};
use chromatica::testing::quantizer::codes;
use chromatica::testing::SnapshotInternals;
use chromatica::testing::{data::*, reference::*};
use chromatica::{Config, Index, Neighbor, SearchParams, Snapshot, TrainOptions};
use common::run;

const DIM: usize = 64;
const NLIST: usize = 8;

fn fast(dim: usize, m: usize) -> Config {
    Config { fast_scan: true, ..config(dim, NLIST, m, 4, 3) }
}

fn params(k: usize, nprobe: usize) -> SearchParams {
    SearchParams::new(k).nprobe(nprobe)
}

/// Trains `index` on the first 2000 rows of `base` (seed 7), adds all of
/// `base` in three segments whose lists are not whole blocks, and deletes
/// every 11th id plus a run of ids: returns the deleted ids.
fn fill(index: &Index, base: &[f32]) -> Vec<u64> {
    let dim = index.config().dim;
    let n = base.len() / dim;
    index.train(&base[..2000 * dim], &TrainOptions { seed: 7, ..TrainOptions::default() }, &mut |_| ()).unwrap();
    for (a, b) in [(0, n / 3), (n / 3, n / 3 + 517), (n / 3 + 517, n)] {
        index.add(&base[a * dim..b * dim], None).unwrap();
    }
    let mut dead: Vec<u64> = (0..n as u64).step_by(11).collect();
    dead.extend(1200..1260);
    dead.sort_unstable();
    dead.dedup();
    index.delete(&dead).unwrap();
    assert_eq!(index.snapshot().segments().len(), 3);
    dead
}

/// Every live vector of the `nprobe` probed lists with its ADC distance,
/// computed in f64 from the stored (plain) codes: term 1 as search computes
/// it, plus Σ_j term2[l, j, k_j] − 2⟨x_j, q_jk_j⟩. Nearest first, ties by id.
fn brute_force_adc(snap: &Snapshot, x: &[f32], nprobe: usize) -> Vec<(f64, u64)> {
    let q = snap.quantizers().unwrap();
    let c = q.config;
    let (m, dsub) = (c.m, c.dsub());
    let mut idx = vec![0u32; m];
    let mut out = Vec::new();
    for (term1, l) in probed_lists(q, x, nprobe) {
        for (si, seg) in snap.segments().iter().enumerate() {
            assert!(seg.fast_scan());
            let hide = snap.hider(si);
            let plain = seg.plain_codes(l).unwrap();
            let (_, ids) = seg.list(l).unwrap();
            for (i, code) in plain.chunks_exact(c.code_size()).enumerate() {
                let id = ids.get(i);
                if hide.hides(id) {
                    continue;
                }
                codes::unpack(code, 4, &mut idx);
                let mut d = term1 as f64;
                for (j, &k) in idx.iter().enumerate() {
                    // Coordinate p of centroid k is row p of the transposed codebook.
                    let book = q.pq.codebook_t(j);
                    let ip: f64 = (0..dsub).map(|p| x[j * dsub + p] as f64 * book[p * 16 + k as usize] as f64).sum();
                    d += q.term2[(l * m + j) * 16 + k as usize] as f64 - 2.0 * ip;
                }
                out.push((d, id));
            }
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    out
}

const TOL: Tolerance = Tolerance { rel: 1e-5, tie: 1e-5, floor: 1.0, same_ids_by_rank: false };

fn close(a: f64, b: f64) -> bool {
    TOL.close(a, b, TOL.rel)
}

/// Search results equal brute-force ADC: same distances (within 1e-5) rank
/// by rank, and the same ids except among distances tied at the cut.
fn check(index: &Index, queries: &[f32], k: usize, nprobe: usize, ctx: &str) {
    let snap = index.snapshot();
    let dim = index.config().dim;
    let results = index.search(queries, &params(k, nprobe)).unwrap();
    for (qi, (x, got)) in queries.chunks_exact(dim).zip(&results).enumerate() {
        assert_matches_reference(got, &brute_force_adc(&snap, x, nprobe), k, &TOL, &format!("{ctx} query {qi}"));
    }
}

#[test]
fn search_equals_brute_force_adc_for_several_m_with_deletes_segments_and_compaction() {
    let base = clustered(3000, DIM, 1);
    let queries = clustered(12, DIM, 9);
    for m in [4, 8, 16, 32] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idx");
        let index = Index::create(&path, fast(DIM, m)).unwrap();
        let dead = fill(&index, &base);
        for (k, nprobe) in [(10, 1), (10, 3), (100, 3), (50, NLIST)] {
            check(&index, &queries, k, nprobe, &format!("m {m} k {k} nprobe {nprobe}"));
        }
        // Stored vectors as queries: their own code is among the nearest.
        check(&index, &base[..4 * DIM], 10, 2, &format!("m {m}, stored vectors"));
        let results = index.search(&base, &params(5, NLIST)).unwrap();
        for r in &results {
            assert!(r.iter().all(|n| dead.binary_search(&n.id).is_err()), "m {m}: a deleted id came back");
        }
        index.compact().unwrap();
        assert_eq!(index.snapshot().segments().len(), 1);
        check(&index, &queries, 20, 3, &format!("m {m} compacted"));
        drop(index);
        let report = Index::verify(&path).unwrap();
        assert_eq!(report.vectors, 3000 - dead.len() as u64);
        let reopened = Index::open_read_only(&path).unwrap();
        assert!(reopened.config().fast_scan);
        check(&reopened, &queries, 20, NLIST, &format!("m {m} reopened"));
    }
}

fn hits(r: &[Vec<Neighbor>]) -> Vec<Vec<(u64, u32)>> {
    r.iter().map(|q| q.iter().map(|n| (n.id, n.distance.to_bits())).collect()).collect()
}

#[test]
fn results_equal_a_plain_4bit_index_bit_for_bit_and_padding_is_counted() {
    // m 16 (8-byte codes) and an odd m (15 sub-codes: a padding nibble).
    for (dim, m) in [(DIM, 16), (45, 15)] {
        let base = clustered(3000, dim, 2);
        let queries = clustered(20, dim, 3);
        let dir = tempfile::tempdir().unwrap();
        let plain = Index::create(dir.path().join("plain"), config(dim, NLIST, m, 4, 3)).unwrap();
        let fs = Index::create(dir.path().join("fast"), fast(dim, m)).unwrap();
        fill(&plain, &base);
        fill(&fs, &base);
        for (k, nprobe) in [(1, 1), (10, 3), (100, 5), (3000, NLIST)] {
            let p = params(k, nprobe);
            let (a, b) = (plain.search(&queries, &p).unwrap(), fs.search(&queries, &p).unwrap());
            assert_eq!(hits(&a), hits(&b), "dim {dim} m {m} k {k} nprobe {nprobe}");
            // One query per call takes the same path.
            assert_eq!(
                hits(&plain.search(&queries[..dim], &p).unwrap()),
                hits(&fs.search(&queries[..dim], &p).unwrap())
            );
        }
        // Codes: n × code_size plain; each list of each segment rounded up
        // to blocks of 32 with fast-scan.
        let cs = fs.config().code_size() as u64;
        let snap = fs.snapshot();
        let padded: u64 = snap
            .segments()
            .iter()
            .map(|s| (0..NLIST).map(|l| (s.list_len(l) as u64).div_ceil(32) * 32 * cs).sum::<u64>())
            .sum();
        let (pm, fm) = (plain.memory_estimate(), fs.memory_estimate());
        assert_eq!(pm.code_bytes, 3000 * cs);
        assert_eq!(fm.code_bytes, padded);
        assert!(fm.code_bytes > pm.code_bytes && fm.code_bytes_per_vector > pm.code_bytes_per_vector);
        // Only the codes grow (up to the 64-byte alignment after them).
        let (grown, slack) = ((fm.disk_bytes - pm.disk_bytes) as i64, 64 * snap.segments().len() as i64);
        assert!((grown - (fm.code_bytes - pm.code_bytes) as i64).abs() < slack, "disk grew by {grown}");
        assert_eq!(fs.inspect().disk_bytes.codes, padded);
        drop((plain, fs));
        Index::verify(dir.path().join("fast")).unwrap();
    }
}

#[test]
fn retraining_re_encodes_into_blocks() {
    let base = clustered(3000, DIM, 4);
    let queries = clustered(8, DIM, 5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idx");
    let index = Index::create(&path, Config { refine: true, ..fast(DIM, 8) }).unwrap();
    fill(&index, &base);
    index.retrain(&TrainOptions { seed: 99, ..TrainOptions::default() }).unwrap();
    let snap = index.snapshot();
    assert_eq!(snap.segments().len(), 1);
    assert!(snap.segments()[0].fast_scan());
    let stage1 = params(15, 3).rerank(chromatica::Rerank::Off);
    let r = index.search(&queries, &stage1).unwrap();
    assert!(r.iter().all(|q| q.len() == 15));
    check_stage1(&index, &queries);
    drop(index);
    Index::verify(&path).unwrap();
}

/// `check` with re-ranking off (the index has a refine store).
fn check_stage1(index: &Index, queries: &[f32]) {
    let snap = index.snapshot();
    let stage1 = params(15, 3).rerank(chromatica::Rerank::Off);
    for (x, got) in queries.chunks_exact(DIM).zip(index.search(queries, &stage1).unwrap()) {
        let want = brute_force_adc(&snap, x, 3);
        for (n, w) in got.iter().zip(&want) {
            assert!(close(n.distance as f64, w.0), "after retrain: {} vs {}", n.distance, w.0);
        }
    }
}

#[test]
fn every_bit_flip_in_the_code_blocks_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idx");
    let index = Index::create(&path, Config { nprobe: 1, ..fast(16, 4) }).unwrap();
    let base = clustered(400, 16, 6);
    index.train(&base, &TrainOptions::default(), &mut |_| ()).unwrap();
    index.add(&base[..150 * 16], None).unwrap();
    let snap = index.snapshot();
    let q = snap.quantizers().unwrap();
    let centroids: Vec<Vec<f32>> = (0..NLIST).map(|l| q.centroid(l).to_vec()).collect();
    drop((snap, index));
    let seg = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let name = seg.file_name().unwrap().to_str().unwrap().to_owned();
    let orig = std::fs::read(&seg).unwrap();
    // FORMAT.md: code_size at 20, flags at 28, list directory offset at 48,
    // codes offset at 60; each list's codes are its count rounded up to 32.
    let (cs, flags, lists, codes) = (
        get_u32(&orig, 20) as usize,
        get_u32(&orig, 28) as usize,
        get_u64(&orig, 48) as usize,
        get_u64(&orig, 60) as usize,
    );
    assert_eq!((cs, flags & 4), (2, 4));
    let mut owner = Vec::new();
    for l in 0..NLIST {
        let count = get_u32(&orig, lists + 16 * l + 8) as usize;
        owner.extend(std::iter::repeat_n(l, count.div_ceil(32) * 32 * cs));
    }
    assert!(owner.len() > 150 * cs, "no padding in the blocks");
    let mut flips = 0;
    for (at, &l) in owner.iter().enumerate() {
        let at = codes + at;
        let mut bad = orig.clone();
        bad[at] ^= 1 << (at % 8);
        std::fs::write(&seg, &bad).unwrap();
        let e = Index::verify(&path).expect_err(&format!("flip at byte {at} passed verify"));
        assert!(e.to_string().contains(&name), "{e}");
        let index = Index::open_read_only(&path).unwrap();
        let e =
            index.search(&centroids[l], &params(5, 1)).expect_err(&format!("flip at {at}: probing list {l} passed"));
        assert!(e.to_string().contains(&format!("list {l} checksum")), "{e}");
        flips += 1;
    }
    std::fs::write(&seg, &orig).unwrap();
    Index::verify(&path).unwrap();
    assert_eq!(flips, owner.len());
}

#[test]
fn cli_creates_fast_scan_indexes_with_4_bits_only() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let out = run(&["create", &p("a"), "--fast-scan"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fast_scan needs nbits 4, got 8") && err.trim().lines().count() == 1, "{err}");
    let wrote = std::fs::read_dir(p("a")).map_or(0, |d| d.filter(|e| e.as_ref().unwrap().path().is_file()).count());
    assert_eq!(wrote, 0, "a refused create wrote files");
    let out = run(&["create", &p("b"), "--m", "16", "--nbits", "4", "--fast-scan"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["inspect", &p("b"), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["config"]["fast_scan"], true);
    assert_eq!(v["code_size"], 8);
    let out = run(&["inspect", &p("b")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("fast-scan"));
}
