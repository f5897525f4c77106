//! The faiss IndexIVFPQ reader (`chromatica::faiss_import`) on arbitrary
//! bytes: never panics, never allocates much more than the input (libFuzzer's
//! -rss_limit_mb and -malloc_limit_mb catch that), and what it accepts is
//! consistent: one list per vector, whole codes, unique ids, the shape's
//! array lengths; the quantizers it makes from it (term 2 included) have
//! the lengths the index format expects.
//!
//! Input: the file itself, no mode byte (faiss files carry no checksums).
//! Seeds: the fixtures of crates/chromatica/tests/fixtures/faiss/, written
//! into corpus-seeds/ by make_seeds when run.sh starts.
#![no_main]

use chromatica::faiss_import::FaissIvfPq;
use chromatica::testing::FaissInternals;
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = FaissIvfPq::parse(data, Path::new("fuzz")) else { return };
    let c = f.config();
    c.validate().expect("an accepted file has a valid shape");
    assert_eq!(f.coarse.len(), c.nlist * c.dim);
    assert_eq!(f.codebooks.len(), c.dim << c.nbits);
    assert_eq!(f.list_sizes.len(), c.nlist);
    assert_eq!(f.list_sizes.iter().sum::<usize>(), f.ids.len());
    assert_eq!(f.codes.len(), f.ids.len() * c.code_size());
    assert_eq!(f.ids.iter().collect::<HashSet<_>>().len(), f.ids.len(), "duplicate ids accepted");
    assert!(f.ids.iter().all(|&id| id <= i64::MAX as u64));
    let lists = f.lists();
    assert_eq!(lists.len(), f.ids.len());
    assert!(lists.windows(2).all(|w| w[0] <= w[1]) && lists.iter().all(|&l| (l as usize) < c.nlist));
    // Term 2 is nlist × m × 2^nbits floats: build it only when that is small
    // next to the input, as a hostile file could otherwise ask for up to
    // faiss_import::MAX_TABLE_BYTES legitimately.
    if (c.nlist * c.m) << c.nbits <= (1 << 16).max(data.len()) {
        let (q, enc) = f.into_parts().expect("finite centroids of the right lengths");
        assert_eq!(q.term2.len(), (c.nlist * c.m) << c.nbits);
        assert_eq!(enc.lists, lists);
    }
});
