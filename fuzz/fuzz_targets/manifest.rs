//! Manifest decoding on arbitrary bytes: never panics, and whatever decodes
//! re-encodes to the same bytes (a version-1 manifest: to this build's
//! version) and decodes to an equal manifest.
//!
//! Input: one mode byte (see `chromatica_fuzz::MODE_*`; bit 7 moves the
//! generation and next_file counters to near 2^64), then the file. The
//! successor a commit would write must decode too, or be refused: counters
//! never wrap.
#![no_main]

use chromatica::testing::format::manifest::Manifest;
use chromatica::testing::format::FileKind;
use chromatica_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, file)) = data.split_first() else { return };
    let mut file = file.to_vec();
    if mode & MODE_FIX_HEADER != 0 {
        fix_file_header(&mut file, FileKind::Manifest);
    }
    if mode & 0x80 != 0 && file.len() >= 72 {
        // The top bytes of generation (16..24) and next_file (64..72).
        file[21..24].fill(0xff);
        file[69..72].fill(0xff);
    }
    if mode & MODE_FIX_CRC != 0 {
        fix_manifest_crcs(&mut file);
    }
    let Ok(m) = Manifest::decode(&file, "fuzz") else { return };
    let again = m.encode();
    let mut back = Manifest::decode(&again, "fuzz").expect("an encoded manifest must decode");
    // An older version decodes to the same manifest and re-encodes as the
    // version this build writes (what the next commit does).
    assert_eq!(back.version, FileKind::Manifest.version(), "the encoder writes an old version");
    back.version = m.version;
    assert_eq!(back, m, "decode(encode(m)) != m");
    if m.version == FileKind::Manifest.version() {
        assert!(again == file, "a manifest that decodes must be the canonical encoding of what it decodes to");
    }
    if let Ok(next) = m.successor() {
        let again = Manifest::decode(&next.encode(), "fuzz").expect("the next commit's manifest must decode");
        assert_eq!(again.generation, m.generation + 1);
    }
    // Helpers on a decoded manifest must not panic either.
    let _ = m.file_numbers();
    let names = ["MANIFEST-0000000000000001", "0000000000000002.seg", "x.tmp", "LOCK"];
    let _ = m.leftovers(names.map(String::from));
});
