//! Writes the seed corpora under fuzz/corpus-seeds/ (not committed: run.sh
//! runs this before fuzzing) from files the repository already has or makes:
//! genuine tiny indexes built in a `MemStorage` (one plain, one with the
//! refine store and records; each also with fast-scan codes), the golden v1
//! index of the tests (`crates/chromatica/tests/golden/v1`), and the faiss
//! fixtures of the tests (`crates/chromatica/tests/fixtures/faiss`), and the
//! progressive JPEG fixtures (`crates/chromatica/tests/testdata/jpeg`). Run
//! from fuzz/:
//!
//!     cargo run --release --example make_seeds
//!
//! Each seed is the input format of its target: a mode byte (0 = bytes as
//! they are; 7 = repair checksums, header and shape), the target's
//! expectation bytes, then a real file. Also checks that the checksum
//! repairs of `chromatica::testing::repair` leave genuine files unchanged.

use chromatica_fuzz::*;
use std::collections::BTreeMap;
use std::path::Path;

/// The main crate's test data.
fn test_data(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/chromatica/tests").join(path)
}

fn main() {
    repairs_leave_genuine_files_unchanged();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus-seeds");
    let _ = std::fs::remove_dir_all(&root);
    let mut written = (0usize, 0usize);
    for (rich, fast_scan) in [(false, false), (true, false), (false, true), (true, true)] {
        // Every distinct file the tiny index ever held, by name.
        let mut seen: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let (_s, _index) = populated_tiny_index(rich, fast_scan, |s| {
            for (name, bytes) in files_of(s) {
                seen.entry(name).or_insert(bytes);
            }
        });
        let tag = match (rich, fast_scan) {
            (false, false) => "plain",
            (true, false) => "rich",
            (false, true) => "plain-fastscan",
            (true, true) => "rich-fastscan",
        };
        for (name, bytes) in &seen {
            let (target, prefix): (&str, Vec<u8>) = if name.starts_with("MANIFEST-") {
                ("manifest", vec![])
            } else if name.ends_with(".qnt") {
                // dim 8, nlist 2, m 2, nbits 4.
                ("quantizer_file", vec![7, 1, 1, 3])
            } else if name.ends_with(".seg") {
                // nlist 2, code size 1 (+ fast-scan bit), quantizer file 1,
                // refine bit + dim 8.
                ("segment_file", vec![1, if fast_scan { 0x80 } else { 0 }, 1, 14 | u8::from(rich)])
            } else if name.ends_with(".del") {
                ("tombstone_file", vec![])
            } else {
                continue;
            };
            // The quantizers and tombstones are the same in every index.
            if (rich || fast_scan) && matches!(target, "quantizer_file" | "tombstone_file") {
                continue;
            }
            let modes: &[u8] = if target == "segment_file" { &[0, 7] } else { &[0] };
            for &mode in modes {
                let mut input = vec![mode];
                input.extend_from_slice(&prefix);
                input.extend_from_slice(bytes);
                let dir = root.join(target);
                std::fs::create_dir_all(&dir).unwrap();
                written.0 += 1;
                written.1 += input.len();
                std::fs::write(dir.join(format!("{tag}-{name}.mode{mode}")), input).unwrap();
            }
        }
    }
    // A segment without codes: an untrained index keeps exact vectors only.
    let (s, index) = tiny_index(true, false);
    index.add(&vectors(0, 6, 8), None).expect("add untrained");
    for (name, bytes) in files_of(&s).into_iter().filter(|(n, _)| n.ends_with(".seg")) {
        let mut input = vec![0, 1, 0, 1, 15];
        input.extend_from_slice(&bytes);
        written.0 += 1;
        written.1 += input.len();
        std::fs::write(root.join("segment_file").join(format!("untrained-{name}.mode0")), input).unwrap();
    }
    // The golden v1 index: dim 16, nlist 4, m 4, nbits 8, refine, with
    // records; repairing its files must leave them unchanged too.
    for entry in std::fs::read_dir(test_data("golden/v1")).expect("the golden v1 index") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let mut repaired = bytes.clone();
        fix_by_name(&name, &mut repaired, true);
        assert!(repaired == bytes, "repairing golden {name} changed it: the repairs are stale");
        let (target, prefix): (&str, &[u8]) = if name.starts_with("MANIFEST-") {
            ("manifest", &[0])
        } else if name.ends_with(".qnt") {
            // dim 16, nlist 4, m 4, nbits 8.
            ("quantizer_file", &[0, 15, 3, 3, 7])
        } else if name.ends_with(".seg") {
            // nlist 4, code size 4, quantizer file 1, refine bit + dim 16.
            ("segment_file", &[0, 3, 3, 1, 31])
        } else if name.ends_with(".del") {
            ("tombstone_file", &[0])
        } else {
            continue;
        };
        let mut input = prefix.to_vec();
        input.extend_from_slice(&bytes);
        written.0 += 1;
        written.1 += input.len();
        std::fs::write(root.join(target).join(format!("golden-v1-{name}.mode0")), input).unwrap();
    }
    // The faiss reader's seeds: the faiss-written fixtures of the main
    // crate's tests, up to 8 KiB each (the corpus stays small; the larger
    // ones hold nothing the smaller lack but more codes).
    let dir = root.join("faiss_import");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(test_data("fixtures/faiss")).expect("the faiss fixtures") {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if path.extension().is_some_and(|e| e == "faiss") && bytes.len() <= 8 << 10 {
            written.0 += 1;
            written.1 += bytes.len();
            std::fs::write(dir.join(path.file_name().unwrap()), bytes).unwrap();
        }
    }
    // The 1/8-scale JPEG decoder's seeds: libjpeg's progressive fixtures of
    // the main crate's tests, whole (suffix length 0) and with their last
    // 16 bytes as the suffix.
    let dir = root.join("jpeg_dc");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(test_data("testdata/jpeg")).expect("the JPEG fixtures") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jpg") {
            let bytes = std::fs::read(&path).unwrap();
            for suffix in [0u8, 16] {
                let input = [&[suffix][..], &bytes].concat();
                written.0 += 1;
                written.1 += input.len();
                let name = path.file_stem().unwrap().to_string_lossy();
                std::fs::write(dir.join(format!("{name}.suffix{suffix}")), input).unwrap();
            }
        }
    }
    println!("wrote {} seed files ({} bytes) under {}", written.0, written.1, root.display());
}
