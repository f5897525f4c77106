//! Colour: sRGB → CIE Lab, the 1152-bin Lab histogram that Chromatica
//! indexes (8 L\* × 12 a\* × 12 b\* bins, tri-linear soft assignment,
//! L1-normalised; [`hellinger`] turns it into the stored vector), image
//! decoding with downscaling to at most 256 px, colour queries, and
//! dominant colours for swatches.
//!
//! The definition is `shared/testdata/histograms.json` (its `note`) and
//! `soft_hist` in `shared/tools/make_dataset.py`; Lab is scikit-image's
//! `rgb2lab` (D65, 2°), checked against `shared/testdata/srgb_to_lab.csv`.

#[cfg(feature = "images")]
pub(crate) mod decode;
#[cfg(feature = "images")]
pub(crate) mod downscale;
pub(crate) mod emd;
pub(crate) mod histogram;
#[cfg(feature = "images")]
pub(crate) mod jpeg_dc;
mod lab;
pub(crate) mod palette;
pub(crate) mod query;
// The swatch layout serves the benchmarks and the tests, not the product.
#[cfg(any(test, feature = "testing"))]
pub(crate) mod spread;
pub(crate) mod transport;

#[cfg(feature = "images")]
pub use decode::{
    decode_rgb, image_histogram, image_histogram_with, load_image, load_image_with, ImageLimits, DECODE_BUDGET_BYTES,
    DEFAULT_MAX_PIXELS, MAX_DECODE_BYTES,
};
#[cfg(feature = "images")]
pub use downscale::MAX_SIDE;
pub use emd::{Sinkhorn, MIN_EPSILON};
pub use histogram::{bin_centers_lab, hellinger, histogram_of_pixels, HIST_DIM};
pub use lab::{lab_to_srgb, srgb_to_lab};
pub use palette::{dominant_colors, to_hex, DominantColor, PALETTE_MIN_SHARE, PALETTE_RADIUS};
pub use query::{
    parse_color_query, parse_excluded, query_histogram, ColorQuery, Excluded, DEFAULT_EXCLUDE_RADIUS,
    DEFAULT_EXCLUDE_SHARE, DEFAULT_SHARPEN, MAX_QUERY_COLORS,
};
pub use transport::{emd_lab, MAX_FUZZ};
