//! Chromatica: an embedded IVF-PQ storage engine for colour search.
//!
//! Vectors (colour histograms, or any float vectors) are compressed to PQ
//! codes stored in immutable, memory-mapped segment files grouped by inverted
//! list; a manifest, replaced atomically, names the live files. See
//! ARCHITECTURE.md for the map of the code and FORMAT.md for every byte.
//!
//! # Colour search in an application
//!
//! [`images::ImageIndex`] is the colour workflow: it keeps an index in
//! step with folders of images (new files added, changed ones re-indexed,
//! deleted ones removed) and searches it by colours, by an example image or
//! by a histogram, each result carrying its file, distance and dominant
//! colours. The index trains itself once it is large enough (until then
//! search is exact) and re-ranks candidates exactly.
//!
//! ```
//! use chromatica::images::{ImageIndex, Query, SearchOptions, SyncOptions};
//! # let tmp = tempfile::tempdir().unwrap();
//! # let photos = tmp.path().join("photos");
//! # std::fs::create_dir(&photos).unwrap();
//! // Two "photos": one red, one blue.
//! for (name, rgb) in [("red.png", [230, 30, 40]), ("blue.png", [20, 40, 220])] {
//!     image::RgbImage::from_pixel(16, 16, image::Rgb(rgb)).save(photos.join(name)).unwrap();
//! }
//! let index = ImageIndex::open_or_create(tmp.path().join("photos.idx"))?;
//! let summary = index.sync(&[&photos], &SyncOptions::default(), &|_| {})?;
//! assert_eq!((summary.added, summary.failed.len()), (2, 0));
//!
//! // "Something crimson".
//! let found = index.search(&Query::colors("dc143c")?, &SearchOptions::default().k(1))?;
//! let best = &found.hits[0];
//! assert_eq!(best.path.as_deref(), Some(photos.join("red.png").canonicalize().unwrap().as_path()));
//! println!("{:.3} {:?} {}", best.distance, best.path, best.colors[0].hex());
//! # Ok::<(), chromatica::Error>(())
//! ```
//!
//! Vectors of any other kind go through [`Index`] directly: create, train,
//! add, search, delete, compact.

pub mod color;
pub mod config;
pub mod distance;
pub mod error;
pub mod faiss_import;
pub mod format;
pub mod fsutil;
#[cfg(feature = "images")]
pub mod images;
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
