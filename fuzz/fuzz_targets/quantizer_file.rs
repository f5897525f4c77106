//! Quantizer-file decoding on arbitrary bytes, for a small expected shape:
//! never panics; what decodes re-encodes to identical bytes (a version-1
//! file: to the same quantizers in this build's version).
//!
//! Input: one mode byte (see `chromatica_fuzz::MODE_*`), four shape bytes
//! (dim 1..=16, nlist 1..=8, m 1..=8, nbits 1..=16: the largest sections
//! are then 16 × 2^16 × 4 bytes, never allocated unless the input holds
//! them), then the file. The seeds' shape bytes are 7, 1, 1, 3 (dim 8,
//! nlist 2, m 2, nbits 4: the tiny indexes) and 15, 3, 3, 7 (dim 16,
//! nlist 4, m 4, nbits 8: the golden v1 index).
//!
//! Set CHROMATICA_FUZZ_LENIENT=1 to skip the byte-identity check (keeping
//! decode(encode(q)) == q): see README.md, "Findings".
#![no_main]

use chromatica::testing::format::quantizer_file::{QuantizerData, QuantizerHeader};
use chromatica::testing::format::FileKind;
use chromatica_fuzz::*;
use libfuzzer_sys::fuzz_target;
use std::mem::offset_of;

fn lenient() -> bool {
    static L: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *L.get_or_init(|| std::env::var_os("CHROMATICA_FUZZ_LENIENT").is_some_and(|v| v != "0"))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let mode = data[0];
    let shape =
        (1 + data[1] as usize % 16, 1 + data[2] as usize % 8, 1 + data[3] as usize % 8, 1 + data[4] as usize % 16);
    let mut file = data[5..].to_vec();
    if mode & MODE_FIX_HEADER != 0 {
        fix_file_header(&mut file, FileKind::Quantizers);
    }
    if mode & MODE_FIX_SHAPE != 0 && file.len() >= QUANTIZER_HEADER {
        type H = QuantizerHeader;
        let fields = [(offset_of!(H, dim), shape.0), (offset_of!(H, nlist), shape.1), (offset_of!(H, m), shape.2)];
        for (at, v) in fields.into_iter().chain([(offset_of!(H, nbits), shape.3)]) {
            put_u32(&mut file, at, v as u32);
        }
    }
    if mode & MODE_FIX_CRC != 0 {
        fix_quantizer_crcs(&mut file);
    }
    let Ok(q) = QuantizerData::decode(&file, "fuzz", shape) else { return };
    let ksub = 1usize << shape.3;
    assert_eq!(q.coarse.len(), shape.1 * shape.0);
    assert_eq!(q.codebooks.len(), ksub * shape.0);
    assert_eq!(q.table.len(), shape.1 * shape.2 * ksub);
    let again = q.encode();
    let back = QuantizerData::decode(&again, "fuzz", shape).expect("an encoded quantizer file must decode");
    assert!(back == q, "decode(encode(q)) != q");
    // A version-1 file re-encodes as this build's version: the same
    // quantizers, other header bytes.
    if !lenient() && get_u32(&file, 12) == FileKind::Quantizers.version() {
        let offsets = |b: &[u8]| {
            type H = QuantizerHeader;
            [offset_of!(H, coarse_offset), offset_of!(H, codebooks_offset), offset_of!(H, table_offset)]
                .map(|at| get_u64(b, at))
        };
        assert!(
            again == file,
            "a quantizer file that decodes must be the canonical encoding of what it decodes to \
             (section offsets {:?}, canonical {:?}; {} bytes, canonical {})",
            offsets(&file),
            offsets(&again),
            file.len(),
            again.len(),
        );
    }
});
