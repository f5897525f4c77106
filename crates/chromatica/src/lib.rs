//! Chromatica: an embedded IVF-PQ storage engine for colour search.
//!
//! Vectors (colour histograms, or any float vectors) are compressed to PQ
//! codes stored in immutable, memory-mapped segment files grouped by inverted
//! list; a manifest, replaced atomically, names the live files. See
//! ARCHITECTURE.md for the map of the code and FORMAT.md for every byte.
//!
//! # Colour search in an application
//!
//! `images::ImageIndex` (feature `images`, on by default) is the colour
//! workflow: it keeps an index in step with folders of images (new files
//! added, changed ones re-indexed, deleted ones removed) and searches it by colours, by an example image or
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

// Every public item is documented. With `testing` on, the engine's inside
// becomes reachable too; it is not held to that (it is not the stable API).
#![cfg_attr(not(feature = "testing"), warn(missing_docs))]

// The public surface: the colour workflow (`images`, `color`), the vector
// and id files (`vecio`), the faiss import, and the root re-exports below.
// Everything else is the engine's inside; what tests and fuzz targets need
// of it is re-exported by `testing` (off by default), not from here.
pub mod color;
pub(crate) mod config;
pub(crate) mod distance;
pub(crate) mod error;
pub mod faiss_import;
pub(crate) mod format;
pub(crate) mod fsutil;
pub(crate) mod health;
#[cfg(feature = "images")]
pub mod images;
mod index;
pub(crate) mod input;
pub(crate) mod quantizer;
pub(crate) mod read;
mod recovery;
pub(crate) mod report;
mod simd;
pub(crate) mod storage;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vecio;
pub(crate) mod verify;
pub(crate) mod write;

pub use config::{Config, Metric, Preset};
pub use error::{Error, Result};
pub use format::quantizer_file::TrainBaseline;
pub use format::segment::Record;
pub use fsutil::write_atomic_bytes;
pub use health::{
    thresholds, Advice, HealthOptions, HealthReport, IdReport, ListHealth, ListInSegment, ListReport, NearList,
    QueryExplanation, RecallPoint, SegmentReport, StoredCopy, TunePoint, TuneReport,
};
pub use index::{AddReport, CompactReport, DeleteReport, Index, StagedSegment, AUTO_TRAIN_MIN};
pub use input::{check_dim, check_vectors, Rows, VectorSource, MAX_ABS_VALUE};
/// The `object_store` crate the object-storage backend is built on, for
/// callers that construct their own store ([`ObjectStorage::new`]).
#[cfg(feature = "object-store")]
pub use object_store;
pub use quantizer::kmeans::KMeansBackend;
pub use quantizer::{TrainOptions, TrainReport, TrainStep};
pub use read::{merge_candidates, Candidate, Location, Neighbor, Rerank, SearchParams, Snapshot, DEFAULT_CANDIDATES};
pub use recovery::RecoverReport;
pub use report::{DiskBytes, Inspection, ListStats, MemoryReport, SegmentInfo, TombstoneInfo};
#[cfg(feature = "object-store")]
pub use storage::object::{parse_s3_uri, CacheOptions, ObjectStorage, DEFAULT_CACHE_BYTES, DEFAULT_ORPHAN_GRACE};
pub use verify::{DamageReport, Problem, SegmentDamage, VerifyReport, MAX_LISTED_PROBLEMS};
pub use write::MergePolicy;
