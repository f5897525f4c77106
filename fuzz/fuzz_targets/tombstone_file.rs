//! Tombstone decoding on arbitrary bytes: never panics; what decodes is
//! strictly ascending and re-encodes to the very same bytes.
//!
//! Input: one mode byte (see `chromatica_fuzz::MODE_*`), then the file.
#![no_main]

use chromatica::testing::format::{tombstone_file, FileKind};
use chromatica_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, file)) = data.split_first() else { return };
    let mut file = file.to_vec();
    if mode & MODE_FIX_HEADER != 0 {
        fix_file_header(&mut file, FileKind::Tombstones);
    }
    if mode & MODE_FIX_CRC != 0 {
        fix_tombstone_crcs(&mut file);
    }
    let Ok(ids) = tombstone_file::decode(&file, "fuzz") else { return };
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "decoded ids are not strictly ascending");
    let again = tombstone_file::encode(&ids);
    assert!(again == file, "a tombstone file that decodes must be the canonical encoding of its ids");
    assert_eq!(tombstone_file::decode(&again, "fuzz").expect("re-decode"), ids);
});
