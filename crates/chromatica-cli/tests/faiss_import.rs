//! `import-faiss` against files written by faiss itself
//! (`tests/fixtures/faiss/make_fixtures.py`, faiss-cpu 1.15.1): the imported
//! index holds faiss's centroids, lists, ids and codes, decodes codes as
//! faiss does, and searches to faiss's recorded neighbours and distances.
//! Every other index type and every file we cannot represent is refused with
//! one line and nothing written; truncated or damaged files never panic.

mod common;

use chromatica::faiss_import::{self, DirectMap, FaissIvfPq, SizeEncoding};
use chromatica::testing::data::clustered;
use chromatica::testing::files::{dir_contents, read_ivecs};
use chromatica::testing::layout::{get_u64, put_u64};
use chromatica::testing::{FaissInternals, SnapshotInternals};
use chromatica::vecio::{write_fvecs, VectorFile};
use chromatica::{Index, Neighbor, SearchParams};
// `run` names the faiss runs of a fixture here.
use common::run as chromatica;
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../chromatica/tests/fixtures/faiss").join(name)
}

/// The IndexIVFPQ fixtures, each with what faiss said about it.
const IMPORTABLE: [&str; 6] = [
    "ivfpq_m4_nbits8",
    "ivfpq_m4_nbits4",
    "ivfpq_m4_nbits6",
    "ivfpq_m8_nbits5_hashmap",
    "ivfpq_m4_nbits4_arraymap",
    "ivfpq_m4_nbits4_sparse",
];

fn description(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(&format!("{name}.json"))).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn usize_of(v: &Value, key: &str) -> usize {
    v[key].as_u64().unwrap() as usize
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// Our results for one query against faiss's (ids, distances; faiss pads
/// with id -1 where fewer than k exist). Distances must agree rank by rank
/// within `tol`; ids must agree as sets, except within the group of
/// neighbours whose distance ties (within `tol`) with the last one, which
/// faiss and we may cut at different members.
fn assert_same_neighbours(ours: &[(u64, f32)], ids: &[i64], dists: &[f32], tol: f32, what: &str) {
    let n = ids.iter().position(|&i| i < 0).unwrap_or(ids.len());
    let (ids, dists) = (&ids[..n], &dists[..n]);
    assert_eq!(ours.len(), n, "{what}: {} results, faiss has {n}", ours.len());
    for (r, ((_, o), d)) in ours.iter().zip(dists).enumerate() {
        assert!((o - d).abs() <= tol, "{what}: rank {r}: distance {o} vs faiss {d}");
    }
    let Some(last) = dists.last() else { return };
    let ours_ids: HashSet<u64> = ours.iter().map(|o| o.0).collect();
    let faiss_ids: HashSet<u64> = ids.iter().map(|&i| i as u64).collect();
    for (r, (&id, d)) in ids.iter().zip(dists).enumerate() {
        if (d - last).abs() > tol {
            assert!(ours_ids.contains(&(id as u64)), "{what}: faiss's rank {r} (id {id}, {d}) missing from {ours:?}");
        }
    }
    for o in ours {
        if (o.1 - last).abs() > tol {
            assert!(faiss_ids.contains(&o.0), "{what}: our {o:?} is not among faiss's {ids:?}");
        }
    }
}

fn check_searches(index: &Index, desc: &Value, name: &str) {
    let dim = usize_of(desc, "d");
    let queries: Vec<f32> = desc["queries"].as_array().unwrap().iter().flat_map(floats).collect();
    let mut compared = 0;
    for run in desc["results"].as_array().unwrap() {
        let (nprobe, k) = (usize_of(run, "nprobe"), usize_of(run, "k"));
        let params = SearchParams::new(k).nprobe(nprobe);
        let ours = index.search(&queries, &params).unwrap();
        assert_eq!(ours.len(), queries.len() / dim);
        for (qi, row) in ours.iter().enumerate() {
            let ids: Vec<i64> = run["ids"][qi].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
            let dists = floats(&run["distances"][qi]);
            let row: Vec<(u64, f32)> = row.iter().map(|n: &Neighbor| (n.id, n.distance)).collect();
            assert_same_neighbours(&row, &ids, &dists, 1e-4, &format!("{name}, nprobe {nprobe}, query {qi}"));
            compared += row.len();
        }
    }
    assert!(compared > 0, "{name}: nothing compared");
}

#[test]
fn every_fixture_imports_with_faiss_centroids_lists_ids_and_codes() {
    for name in IMPORTABLE {
        let desc = description(name);
        let f = FaissIvfPq::read(&fixture(&format!("{name}.faiss"))).unwrap();
        let (dim, nlist) = (usize_of(&desc, "d"), usize_of(&desc, "nlist"));
        assert_eq!((f.dim, f.nlist, f.m, f.nbits), (dim, nlist, usize_of(&desc, "m"), usize_of(&desc, "nbits")));
        assert_eq!(f.code_size(), usize_of(&desc, "code_size"), "{name}");
        assert_eq!(f.ids.len(), usize_of(&desc, "ntotal"), "{name}");
        assert_eq!(f.coarse, floats(&desc["coarse"]), "{name}: coarse centroids");
        let expect_sizes = if name.ends_with("sparse") { SizeEncoding::Sparse } else { SizeEncoding::Full };
        assert_eq!(f.sizes, expect_sizes, "{name}");
        let expect_map = match name {
            n if n.ends_with("hashmap") => DirectMap::Hashtable,
            n if n.ends_with("arraymap") => DirectMap::Array,
            _ => DirectMap::None,
        };
        assert_eq!(f.direct_map, expect_map, "{name}");

        // Lists, ids and codes as faiss lists them, in faiss's order.
        let lists = desc["lists"].as_array().unwrap();
        let mut at = 0;
        for (l, list) in lists.iter().enumerate() {
            let ids: Vec<u64> = list["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
            assert_eq!(f.list_sizes[l], ids.len(), "{name}: list {l} size");
            assert_eq!(f.ids[at..at + ids.len()], ids[..], "{name}: list {l} ids");
            let cs = f.code_size();
            for (row, code) in list["codes"].as_array().unwrap().iter().enumerate() {
                let i = at + row;
                assert_eq!(
                    f.codes[i * cs..(i + 1) * cs],
                    hex(code.as_str().unwrap())[..],
                    "{name}: list {l} row {row}"
                );
            }
            at += ids.len();
        }
        assert_eq!(at, f.ids.len());
        let lists_of = f.lists();

        // The imported index holds the same lists, ids and codes, and
        // decodes the codes to faiss's own decoding (packing is faiss's).
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("idx");
        let (index, report) = faiss_import::import(&fixture(&format!("{name}.faiss")), &dir).unwrap();
        assert_eq!(report.vectors, f.ids.len());
        assert_eq!(index.len(), f.ids.len() as u64);
        let snap = index.snapshot();
        let q = snap.quantizers().expect("imported quantizers");
        assert_eq!(q.coarse, f.coarse);
        assert_eq!(q.pq.centroids(), f.codebooks);
        assert_eq!(snap.segments().len(), 1);
        let seg = &snap.segments()[0];
        let cs = f.code_size();
        for l in 0..nlist {
            let (codes, ids) = seg.list(l).unwrap();
            let want: Vec<usize> = (0..f.ids.len()).filter(|&i| lists_of[i] as usize == l).collect();
            assert_eq!(ids.iter().collect::<Vec<_>>(), want.iter().map(|&i| f.ids[i]).collect::<Vec<_>>());
            let want_codes: Vec<u8> = want.iter().flat_map(|&i| f.codes[i * cs..(i + 1) * cs].to_vec()).collect();
            assert_eq!(codes, &want_codes[..], "{name}: list {l} codes in the index");
        }
        for dec in desc["decoded"].as_array().unwrap() {
            let (l, row) = (usize_of(dec, "list"), usize_of(dec, "row"));
            let (codes, _) = seg.list(l).unwrap();
            let mut residual = vec![0f32; dim];
            q.pq.decode(&codes[row * cs..(row + 1) * cs], &mut residual);
            assert_eq!(residual, floats(&dec["residual"]), "{name}: list {l} row {row} decodes differently");
        }
        assert_eq!(snap.manifest().next_id, f.ids.iter().max().unwrap() + 1);
        check_searches(&index, &desc, name);

        // Reopened from disk, the index verifies and searches the same.
        drop(index);
        Index::verify(&dir).unwrap();
        check_searches(&Index::open_read_only(&dir).unwrap(), &desc, name);
    }
}

#[test]
fn ids_above_four_billion_survive() {
    let f = FaissIvfPq::read(&fixture("ivfpq_m4_nbits8.faiss")).unwrap();
    assert!(f.ids.iter().any(|&i| i > u32::MAX as u64) && f.ids.iter().any(|&i| i < 1000));
    let tmp = tempfile::tempdir().unwrap();
    let (index, _) = faiss_import::import(&fixture("ivfpq_m4_nbits8.faiss"), &tmp.path().join("i")).unwrap();
    let mut live = index.snapshot().live_ids().unwrap();
    live.sort_unstable();
    let mut want = f.ids.clone();
    want.sort_unstable();
    assert_eq!(live, want);
    // The imported index is an ordinary one: it takes deletes and adds.
    index.delete(&want[..3]).unwrap();
    let added = index.add(&[0.5f32; 16], None).unwrap();
    assert_eq!(added.ids.start, want.last().unwrap() + 1);
    Index::verify(index.path()).unwrap();
}

#[test]
fn an_empty_trained_index_imports_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let (index, report) = faiss_import::import(&fixture("ivfpq_empty.faiss"), &tmp.path().join("e")).unwrap();
    assert_eq!((report.vectors, report.sizes), (0, SizeEncoding::Sparse));
    assert!(index.is_trained() && index.is_empty());
    assert_eq!(index.snapshot().segments().len(), 0);
    let hits = index.search(&[0.0; 16], &SearchParams::new(5)).unwrap();
    assert!(hits[0].is_empty());
    index.add(&[0.25; 32], None).unwrap();
    assert_eq!(index.search(&[0.25; 16], &SearchParams::new(5)).unwrap()[0].len(), 2);
}

/// The refused fixtures and what the one-line error must say.
const REFUSED: [(&str, &str); 11] = [
    ("refuse_flat", r#"not an IndexIVFPQ: found fourcc "IxF2" (IndexFlatL2)"#),
    ("refuse_ivfflat", r#"not an IndexIVFPQ: found fourcc "IwFl" (IndexIVFFlat)"#),
    ("refuse_ivfpqr", r#"not an IndexIVFPQ: found fourcc "IwQR" (IndexIVFPQR)"#),
    ("refuse_ivfpq_fastscan", r#"not an IndexIVFPQ: found fourcc "IwPf" (IndexIVFPQFastScan)"#),
    ("refuse_idmap", r#"not an IndexIVFPQ: found fourcc "IxMp" (IndexIDMap)"#),
    ("refuse_hnsw_quantizer", r#"the coarse quantizer is not an IndexFlatL2: found fourcc "IHNf" (IndexHNSWFlat)"#),
    ("refuse_inner_product", "the index uses METRIC_INNER_PRODUCT (0); only METRIC_L2 (1) can be imported"),
    ("refuse_no_residual", "by_residual is false"),
    ("refuse_untrained", "the index is not trained"),
    ("refuse_negative_ids", "is negative"),
    ("refuse_duplicate_ids", "appears twice (lists"),
];

/// Imports `bytes` (written to a file) into a directory that does not
/// exist, then into an empty one: both must fail with `want` in one line
/// and leave the directory as it was. Returns the message.
fn refused(bytes: &[u8], want: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("in.faiss");
    std::fs::write(&file, bytes).unwrap();
    let absent = tmp.path().join("absent");
    let msg = faiss_import::import(&file, &absent).map(|_| ()).unwrap_err().to_string();
    assert!(msg.contains(want), "{msg:?} does not contain {want:?}");
    assert!(!msg.contains('\n'), "{msg:?} is not one line");
    assert!(msg.contains("in.faiss"), "{msg:?} does not name the file");
    assert!(!absent.exists(), "a refused import created {}", absent.display());
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(faiss_import::import(&file, &empty).map(|_| ()).unwrap_err().to_string(), msg);
    assert!(dir_contents(&empty).is_empty(), "a refused import wrote into an empty directory");
    msg
}

#[test]
fn other_index_types_and_unrepresentable_files_are_refused() {
    for (name, want) in REFUSED {
        refused(&std::fs::read(fixture(&format!("{name}.faiss"))).unwrap(), want);
    }
}

/// Byte offsets of the fields after the coarse centroids in a fixture with
/// no direct map, from the layout in `src/faiss_import.rs`: the index
/// header (37 bytes with the fourcc), nlist and nprobe (16), the quantizer's
/// fourcc and header (37), its centroid count (8) and centroids.
struct Offsets {
    direct_map: usize,
    by_residual: usize,
    code_size: usize,
    pq_m: usize,
    pq_nbits: usize,
    pq_centroids: usize,
    invlists: usize,
}

fn offsets(nlist: usize, dim: usize, nbits: usize) -> Offsets {
    let direct_map = 37 + 16 + 37 + 8 + nlist * dim * 4;
    let by_residual = direct_map + 1 + 8;
    let code_size = by_residual + 1;
    let pq_m = code_size + 8 + 8;
    let pq_nbits = pq_m + 8;
    let pq_centroids = pq_nbits + 8;
    let invlists = pq_centroids + 8 + (dim << nbits) * 4;
    Offsets { direct_map, by_residual, code_size, pq_m, pq_nbits, pq_centroids, invlists }
}

#[test]
fn damaged_headers_are_refused_with_what_is_wrong() {
    let good = std::fs::read(fixture("ivfpq_m4_nbits8.faiss")).unwrap();
    let o = offsets(8, 16, 8);
    // The offsets are right: these fields hold what faiss wrote.
    assert_eq!(good[o.direct_map], 0);
    assert_eq!(good[o.by_residual], 1);
    assert_eq!(get_u64(&good, o.code_size), 4);
    assert_eq!(get_u64(&good, o.pq_m), 4);
    assert_eq!(get_u64(&good, o.pq_nbits), 8);
    assert_eq!(get_u64(&good, o.pq_centroids), 16 << 8);
    assert_eq!(&good[o.invlists..o.invlists + 4], b"ilar");
    assert_eq!(&good[o.invlists + 20..o.invlists + 24], b"full");

    let patched = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        b
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (patched(&|b| put_u64(b, o.pq_nbits, 17)), "nbits at byte"),
        (patched(&|b| put_u64(b, o.pq_nbits, 0)), "chromatica takes 1 to 16 bits per sub-code"),
        (patched(&|b| put_u64(b, o.pq_m, 3)), "does not divide d = 16"),
        (patched(&|b| put_u64(b, o.code_size, 5)), "code_size at byte"),
        (patched(&|b| b[o.by_residual] = 0), "by_residual is false"),
        (patched(&|b| b[o.by_residual] = 7), "not a bool"),
        (patched(&|b| b[o.direct_map] = 3), "the direct map type at byte"),
        (patched(&|b| b[o.direct_map] = 1), "the direct map array at byte"),
        (patched(&|b| put_u64(b, o.pq_centroids, 1 << 50)), "claims 1125899906842624 elements"),
        (patched(&|b| b[o.invlists..o.invlists + 4].copy_from_slice(b"il00")), "holds no inverted lists"),
        (patched(&|b| b[o.invlists..o.invlists + 4].copy_from_slice(b"ilmm")), r#"fourcc "ilmm" cannot be imported"#),
        (patched(&|b| b[o.invlists + 20..o.invlists + 24].copy_from_slice(b"zzzz")), "unknown list sizes type"),
        // The first list's size: the lists no longer add up to ntotal.
        (patched(&|b| put_u64(b, o.invlists + 32, 10)), "the index header says ntotal = 300"),
        (patched(&|b| b.push(0)), "1 unexpected bytes after the inverted lists"),
        // metric_type (after the fourcc, d, ntotal, the dummies and is_trained) set to L1.
        (patched(&|b| b[33..37].copy_from_slice(&2i32.to_le_bytes())), "METRIC_L1 (2)"),
        (patched(&|b| b[4..8].copy_from_slice(&(-5i32).to_le_bytes())), "dimension d at byte 4 is -5"),
        (patched(&|b| put_u64(b, 37, 0)), "nlist at byte 37 is 0"),
        // A NaN coarse centroid.
        (patched(&|b| b[98..102].copy_from_slice(&f32::NAN.to_le_bytes())), "not finite"),
        (b"IwP".to_vec(), "truncated at byte 0"),
        (Vec::new(), "empty file"),
        (b"\x00\x01IQ".to_vec(), r#"found fourcc "\x00\x01IQ" (not a known faiss index type)"#),
    ];
    for (bytes, want) in cases {
        refused(&bytes, want);
    }

    // A term-2 table over faiss's 2 GiB limit (nlist 4096 × m 16 × 2^16
    // floats = 16 GiB): refused before the PQ centroids are even read.
    let big = header_up_to_pq(4096, 16, 16, 16);
    let e = FaissIvfPq::parse(&big, Path::new("big")).unwrap_err().to_string();
    assert!(e.contains("the term-2 table (nlist × M × 2^nbits floats) would take 17179869184 bytes"), "{e}");
    // The same shape with nlist 8 fits, and then wants its centroids.
    let e = FaissIvfPq::parse(&header_up_to_pq(8, 16, 16, 16), Path::new("ok")).unwrap_err().to_string();
    assert!(e.contains("truncated at byte") && e.contains("the length of the PQ centroids"), "{e}");
}

/// An IndexIVFPQ file written by hand up to (not including) the PQ
/// centroids, with zero coarse centroids and no direct map.
fn header_up_to_pq(nlist: usize, dim: usize, m: usize, nbits: usize) -> Vec<u8> {
    fn index_header(b: &mut Vec<u8>, d: usize, ntotal: usize) {
        b.extend_from_slice(&(d as i32).to_le_bytes());
        b.extend_from_slice(&(ntotal as i64).to_le_bytes());
        b.extend_from_slice(&[0u8; 16]);
        b.push(1); // is_trained
        b.extend_from_slice(&1i32.to_le_bytes()); // METRIC_L2
    }
    let mut b = b"IwPQ".to_vec();
    index_header(&mut b, dim, 0);
    b.extend_from_slice(&(nlist as u64).to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(b"IxF2");
    index_header(&mut b, dim, nlist);
    b.extend_from_slice(&((nlist * dim) as u64).to_le_bytes());
    b.resize(b.len() + nlist * dim * 4, 0);
    b.push(0); // no direct map
    b.extend_from_slice(&0u64.to_le_bytes());
    b.push(1); // by_residual
    for v in [(m * nbits).div_ceil(8), dim, m, nbits] {
        b.extend_from_slice(&(v as u64).to_le_bytes());
    }
    b
}

#[test]
fn sparse_sizes_with_a_repeated_or_out_of_range_list_are_refused() {
    let good = std::fs::read(fixture("ivfpq_m4_nbits4_sparse.faiss")).unwrap();
    let o = offsets(8, 16, 4);
    let sizes = o.invlists + 20;
    assert_eq!(&good[sizes..sizes + 4], b"sprs");
    assert_eq!(get_u64(&good, sizes + 4), 4, "two (list, size) pairs");
    let (first, second) = (get_u64(&good, sizes + 12), get_u64(&good, sizes + 28));
    assert!(first < second && second < 8);
    let mut b = good.clone();
    put_u64(&mut b, sizes + 28, first);
    refused(&b, &format!("list {first} appears twice in the sparse list sizes"));
    let mut b = good.clone();
    put_u64(&mut b, sizes + 28, 8);
    refused(&b, "list 8 at byte");
    let mut b = good;
    put_u64(&mut b, sizes + 4, 3);
    refused(&b, "not (list, size) pairs");
}

#[test]
fn every_truncation_of_every_fixture_errors_cleanly() {
    let mut cases = 0;
    for name in IMPORTABLE.iter().copied().chain(["ivfpq_empty"]) {
        let bytes = std::fs::read(fixture(&format!("{name}.faiss"))).unwrap();
        FaissIvfPq::parse(&bytes, Path::new(name)).unwrap();
        for len in 0..bytes.len() {
            let e = FaissIvfPq::parse(&bytes[..len], Path::new(name)).expect_err("a truncated file parsed");
            let e = e.to_string();
            assert!(!e.contains('\n') && e.starts_with(name), "{name}[..{len}]: {e:?}");
            cases += 1;
        }
    }
    assert!(cases > 50_000, "{cases} truncations");
}

/// Every byte of a fixture replaced by each of a few values: parsing never
/// panics, and a file that still parses still imports (or fails cleanly).
#[test]
fn damaged_bytes_never_panic() {
    let good = std::fs::read(fixture("ivfpq_m4_nbits4_sparse.faiss")).unwrap();
    let (mut parsed, mut refused) = (0, 0);
    for at in 0..good.len() {
        for v in [0x00u8, 0x01, 0x7f, 0x80, 0xff, good[at] ^ 0x10] {
            let mut b = good.clone();
            b[at] = v;
            match FaissIvfPq::parse(&b, Path::new("x")) {
                Ok(f) => {
                    parsed += 1;
                    assert_eq!(f.codes.len(), f.ids.len() * f.code_size());
                    assert_eq!(f.list_sizes.iter().sum::<usize>(), f.ids.len());
                    let _ = f.into_parts();
                }
                Err(e) => {
                    refused += 1;
                    assert!(!e.to_string().contains('\n'));
                }
            }
        }
    }
    assert!(parsed > 0 && refused > 0, "{parsed} parsed, {refused} refused");
}

#[test]
fn a_non_empty_directory_or_a_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("x"), b"keep me").unwrap();
    let e = faiss_import::import(&fixture("ivfpq_m4_nbits4.faiss"), &full).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("exists and is not empty"), "{e}");
    assert_eq!(std::fs::read(full.join("x")).unwrap(), b"keep me");
    let file = tmp.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let e = faiss_import::import(&fixture("ivfpq_m4_nbits4.faiss"), &file).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("is not a directory"), "{e}");
    let e = faiss_import::import(&tmp.path().join("missing.faiss"), &tmp.path().join("d"))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.faiss"), "{e}");
    assert!(!tmp.path().join("d").exists());
}

// ---- the command line

#[test]
fn cli_import_then_search_verify_inspect() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("imported");
    // Sequential ids (0..120), so results fit an .ivecs file.
    let name = "ivfpq_m4_nbits4_arraymap";
    let file = fixture(&format!("{name}.faiss"));
    let out = chromatica(&["import-faiss".as_ref(), file.as_os_str(), dir.as_os_str()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("120 vectors, dim 16, nlist 8, m 4, nbits 4 (2 bytes per code), nprobe 1"), "{stdout}");

    let desc = description(name);
    let queries: Vec<f32> = desc["queries"].as_array().unwrap().iter().flat_map(floats).collect();
    let qfile = tmp.path().join("q.fvecs");
    write_fvecs(&qfile, &queries, 16).unwrap();
    for run in desc["results"].as_array().unwrap() {
        let (nprobe, k) = (run["nprobe"].to_string(), run["k"].to_string());
        let (ids_out, d_out) = (tmp.path().join("ids.ivecs"), tmp.path().join("d.fvecs"));
        let out = chromatica(&[
            "search".as_ref(),
            dir.as_os_str(),
            "--vectors".as_ref(),
            qfile.as_os_str(),
            "--k".as_ref(),
            k.as_ref(),
            "--nprobe".as_ref(),
            nprobe.as_ref(),
            "--out".as_ref(),
            ids_out.as_os_str(),
            "--distances".as_ref(),
            d_out.as_os_str(),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (rows, width, ids) = read_ivecs(&ids_out);
        let k: usize = k.parse().unwrap();
        assert_eq!((rows, width), (queries.len() / 16, k));
        let dists = VectorFile::open(&d_out).unwrap().read_all().unwrap();
        for q in 0..rows {
            let ours: Vec<(u64, f32)> =
                (0..k).filter(|&j| ids[q * k + j] >= 0).map(|j| (ids[q * k + j] as u64, dists[q * k + j])).collect();
            let f_ids: Vec<i64> = run["ids"][q].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
            assert_same_neighbours(
                &ours,
                &f_ids,
                &floats(&run["distances"][q]),
                1e-4,
                &format!("cli, nprobe {nprobe}"),
            );
        }
    }
    let out = chromatica(&["verify".as_ref(), dir.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = chromatica(&["inspect".as_ref(), dir.as_os_str()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("yes (imported quantizers)"));

    // Importing again into the now non-empty directory is refused.
    let out = chromatica(&["import-faiss".as_ref(), file.as_os_str(), dir.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists and is not empty"));
}

#[test]
fn cli_refusals_are_one_line_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, want) in REFUSED {
        let dir = tmp.path().join(name);
        let file = fixture(&format!("{name}.faiss"));
        let out = chromatica(&["import-faiss".as_ref(), file.as_os_str(), dir.as_os_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr:?}");
        assert!(stderr.starts_with("error: ") && stderr.contains(want), "{name}: {stderr:?}");
        assert!(!dir.exists(), "{name}: the refused import created its directory");
    }
}

/// `train --kmeans faiss` trains with faiss in a build with the `faiss`
/// feature, and is one clear error that changes nothing in a build without.
#[test]
fn cli_train_kmeans_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let vectors = tmp.path().join("train.fvecs");
    write_fvecs(&vectors, &clustered(1_000, 16, 5), 16).unwrap();
    for kmeans in ["native", "faiss"] {
        let dir = tmp.path().join(kmeans);
        let create = chromatica(&[
            "create".as_ref(),
            dir.as_os_str(),
            "--dim=16".as_ref(),
            "--nlist=4".as_ref(),
            "--m=4".as_ref(),
            "--nbits=4".as_ref(),
            "--nprobe=2".as_ref(),
        ]);
        assert!(create.status.success(), "{}", String::from_utf8_lossy(&create.stderr));
        let before = dir_contents(&dir);
        let out = chromatica(&[
            "train".as_ref(),
            dir.as_os_str(),
            "--vectors".as_ref(),
            vectors.as_os_str(),
            "--kmeans".as_ref(),
            kmeans.as_ref(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if kmeans == "faiss" && !cfg!(feature = "faiss") {
            assert_eq!(out.status.code(), Some(1));
            assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
            assert!(stderr.contains("this build lacks the faiss feature"), "{stderr:?}");
            assert_eq!(dir_contents(&dir), before, "a refused train changed the index");
        } else {
            assert!(out.status.success(), "{kmeans}: {stderr}");
            assert!(String::from_utf8_lossy(&out.stdout).contains("trained on 1000 vectors"));
            assert!(Index::open_read_only(&dir).unwrap().is_trained());
        }
    }
}
