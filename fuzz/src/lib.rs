//! What only the fuzz targets need: the mode byte that asks the harness to
//! repair a mutated file, and a single-threaded engine. Everything else
//! comes from the engine's `testing` feature and is re-exported here, so
//! the targets and `examples/make_seeds.rs` say `use chromatica_fuzz::*`:
//! the file layouts and checksum repair (`chromatica::testing::layout`,
//! `repair`) and the genuine tiny indexes (`chromatica::testing::tiny`).
//!
//! Every chromatica file is guarded by CRC32s, so a fuzzer mutating raw bytes
//! almost never gets past the header checksum and never reaches the semantic
//! checks behind it. The file-kind targets therefore take a *mode* byte before
//! the file: its bits ask the harness to repair the file before decoding it
//! ([`MODE_FIX_CRC`], [`MODE_FIX_HEADER`], [`MODE_FIX_SHAPE`]). Mode 0 feeds
//! the bytes exactly as given, so checksum and header handling is fuzzed too.

pub use chromatica::testing::layout::*;
pub use chromatica::testing::repair::*;
pub use chromatica::testing::tiny::*;

/// Recompute every checksum (header, sections, per-list) from the bytes.
pub const MODE_FIX_CRC: u8 = 1;
/// Write a correct magic, kind and version into the 16-byte file header.
pub const MODE_FIX_HEADER: u8 = 2;
/// Write the shape the caller expects into the header (quantizer, segment).
pub const MODE_FIX_SHAPE: u8 = 4;

/// Limits rayon to one thread: the engine parallelises encoding and search,
/// which only adds overhead (and noise) to a fuzzer's tiny inputs.
pub fn single_threaded() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rayon::ThreadPoolBuilder::new().num_threads(1).build_global();
    });
}

/// A coordinate around the input limit `chromatica::MAX_ABS_VALUE`, by
/// `choice`: the limit itself (accepted), the next float beyond it, the
/// issue's 5e19 and 1e20 (which used to brick an index), f32::MAX,
/// infinity and NaN; each of either sign. Values beyond the limit (and NaN)
/// must be refused with nothing written.
pub fn huge_value(choice: u8) -> f32 {
    let limit = chromatica::MAX_ABS_VALUE;
    let values = [limit, limit.next_up(), 5e19, 1e20, f32::MAX, f32::INFINITY, f32::NAN];
    let v = values[(choice / 2) as usize % values.len()];
    if choice % 2 == 1 {
        -v
    } else {
        v
    }
}
