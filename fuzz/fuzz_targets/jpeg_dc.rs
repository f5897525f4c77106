//! The 1/8-scale DC decoder on arbitrary bytes: never panics, allocates
//! only within its pixel limit, and never reads past what it needs: an
//! image it decodes from a file is the image it decodes from that file with
//! any bytes appended.
//!
//! Input: one byte `n`, then the file; its last `n` bytes (at most the
//! whole) are the appended suffix.
#![no_main]

use chromatica::testing::color::decode_eighth;
use libfuzzer_sys::fuzz_target;

/// 4 megapixels: a 256 × 256 block grid at most, so each input is fast.
const MAX_PIXELS: u64 = 1 << 22;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let file = &rest[..rest.len() - usize::from(n).min(rest.len())];
    let Some(img) = decode_eighth(file, MAX_PIXELS) else { return };
    assert!(img.width() >= 1 && img.height() >= 1);
    // A frame of W × H gives ceil(W / 8) × ceil(H / 8), so W >= 8w - 7.
    let (w, h) = (u64::from(img.width()), u64::from(img.height()));
    assert!((8 * w - 7) * (8 * h - 7) <= MAX_PIXELS, "{w} x {h} from a frame over the limit");
    assert!(decode_eighth(rest, MAX_PIXELS).as_ref() == Some(&img), "appending bytes changed a decoded image");
});
