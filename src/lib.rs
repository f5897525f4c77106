//! Chromatica: an embedded IVF-PQ storage engine for colour search.
//!
//! Vectors (colour histograms, or any float vectors) are compressed to PQ
//! codes stored in immutable, memory-mapped segment files grouped by inverted
//! list; a manifest, replaced atomically, names the live files. See
//! ARCHITECTURE.md for the map of the code and FORMAT.md for every byte.

pub mod color;
pub mod config;
pub mod distance;
pub mod emd;
pub mod error;
pub mod format;
mod index;
pub mod input;
pub mod kmeans;
pub mod quantizer;
pub mod read;
pub mod report;
pub mod storage;
pub mod vecio;
pub mod verify;
pub mod write;

pub use config::{Config, Metric, Preset};
pub use error::{Error, Result};
pub use format::segment_file::Record;
pub use index::{adaptive_nlist, AddReport, CompactReport, DeleteReport, Index, AUTO_TRAIN_MIN, RETRAIN_GROWTH};
pub use quantizer::{TrainOptions, TrainReport, TrainStep};
pub use read::{Location, Neighbor, Rerank, SearchParams, Snapshot};
pub use report::{Inspection, MemoryReport};
pub use write::MergePolicy;
