//! Chromatica: an embedded IVF-PQ storage engine for colour search.
//!
//! Vectors (colour histograms, or any float vectors) are compressed to PQ
//! codes stored in immutable, memory-mapped segment files grouped by inverted
//! list; a manifest, replaced atomically, names the live files. See
//! ARCHITECTURE.md for the map of the code and FORMAT.md for every byte.
//!
//! # Colour search in an application
//!
//! An index made for images keeps each histogram's exact values beside its
//! code (`refine`) and a record of the file it came from, trains itself once
//! the collection is large enough (`auto_train`; until then search is
//! exact), and re-ranks candidates exactly.
//!
//! ```
//! use chromatica::color::{hellinger, histogram_of_pixels, parse_color_query, query_histogram, DEFAULT_SHARPEN};
//! use chromatica::{Config, Index, Record, Rerank, SearchParams};
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("photos.idx");
//! let config = Config { refine: true, auto_train: true, ..Config::default() };
//! let index = Index::create(&path, config)?;
//!
//! // Two "photos": one red, one blue (an application would use
//! // `chromatica::color::image_histogram(path)` on real files).
//! let mut vectors = Vec::new();
//! for rgb in [[230, 30, 40], [20, 40, 220]] {
//!     let mut h = histogram_of_pixels(std::iter::repeat_n(rgb, 100));
//!     hellinger(&mut h);
//!     vectors.extend(h);
//! }
//! let records = vec![
//!     Record { path: "/photos/red.jpg".into(), size: 1234, mtime_ns: 0 },
//!     Record { path: "/photos/blue.jpg".into(), size: 5678, mtime_ns: 0 },
//! ];
//! index.add_records(&vectors, None, &records)?;
//!
//! // "Something crimson": a colour query, sharpened and Hellinger-transformed.
//! let query = parse_color_query("dc143c")?;
//! let mut q = query_histogram(&query, DEFAULT_SHARPEN);
//! hellinger(&mut q);
//! let snapshot = index.snapshot();
//! let params = SearchParams { rerank: Some(Rerank::L2), ..SearchParams::new(1) };
//! let best = &snapshot.search(&q, &params)?[0][0];
//! assert_eq!(snapshot.record(best.location)?.unwrap().path, "/photos/red.jpg");
//! # Ok::<(), chromatica::Error>(())
//! ```

pub mod color;
pub mod config;
pub mod distance;
pub mod error;
pub mod faiss_import;
pub mod format;
pub mod fsutil;
mod index;
pub mod input;
pub mod quantizer;
pub mod read;
mod recovery;
pub mod report;
mod simd;
pub mod storage;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vecio;
pub mod verify;
pub mod write;

pub use config::{Config, Metric, Preset};
pub use error::{Error, Result};
pub use format::segment::Record;
pub use index::{
    adaptive_nlist, AddReport, CompactReport, DeleteReport, Encoded, Index, AUTO_TRAIN_MIN, RETRAIN_GROWTH,
};
pub use input::{Rows, VectorSource, MAX_ABS_VALUE};
pub use quantizer::kmeans::KMeansBackend;
pub use quantizer::{TrainOptions, TrainReport, TrainStep};
pub use read::{Location, Neighbor, Rerank, SearchParams, Snapshot};
pub use recovery::RecoverReport;
pub use report::{Inspection, MemoryReport};
pub use write::MergePolicy;
