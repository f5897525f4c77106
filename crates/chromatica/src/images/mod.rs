//! The colour workflow: an index of image files that keeps itself in step
//! with folders on disk, searched by colours, by an example image or by a
//! histogram.
//!
//! [`ImageIndex`] wraps an [`Index`] made for images: the memory preset
//! with the refine store (exact re-ranking and re-training), a record of
//! the file each vector came from, and automatic training once it holds
//! [`AUTO_TRAIN_MIN`](crate::AUTO_TRAIN_MIN) images (until then search is
//! exact). The Hellinger transform, the palette a person sees
//! ([`dominant_colors`]) and the record look-ups happen inside; an
//! application deals in paths, colours and distances.
//!
//! ```
//! use chromatica::images::{ImageIndex, Query, SearchOptions, SyncOptions};
//! # let tmp = tempfile::tempdir().unwrap();
//! # let photos = tmp.path().join("photos");
//! # std::fs::create_dir(&photos).unwrap();
//! # for (name, rgb) in [("red.png", [230, 25, 75]), ("blue.png", [67, 99, 216])] {
//! #     image::RgbImage::from_pixel(8, 8, image::Rgb(rgb)).save(photos.join(name)).unwrap();
//! # }
//! let index = ImageIndex::open_or_create(tmp.path().join("photos.idx"))?;
//! let summary = index.sync(&[&photos], &SyncOptions::default(), &|_| {})?;
//! assert_eq!(summary.added, 2);
//!
//! let results = index.search(&Query::colors("e6194b")?, &SearchOptions::default().k(1))?;
//! let best = &results.hits[0];
//! assert!(best.path.as_ref().unwrap().ends_with("red.png"));
//! assert_eq!(best.colors[0].rgb, [230, 25, 75]);
//! # Ok::<(), chromatica::Error>(())
//! ```

mod explain;
mod search;
mod sync;
mod tune;
mod walk;

pub use crate::color::{dominant_colors, DominantColor, ImageLimits, DEFAULT_MAX_PIXELS};
pub use search::{Hit, PreparedQuery, Query, SearchOptions, SearchResults, DEFAULT_K, PALETTE_SIZE};
pub use sync::{SyncEvent, SyncOptions, SyncProblem, SyncSummary, ADD_BATCH, IMAGE_EXTENSIONS};

use crate::color::{image_histogram_with, HIST_DIM};
use crate::{Config, Error, Index, Preset, Result};
use std::path::Path;

/// The configuration of an index that [`ImageIndex::open_or_create`]
/// creates: the memory preset with the refine store, training itself once
/// it holds enough images.
pub fn image_config() -> Config {
    Config { refine: true, auto_train: true, ..Config::preset(Preset::Memory) }
}

/// The L1-normalised colour histogram of an image file under the default
/// [`ImageLimits`] (before the Hellinger transform, which search applies
/// itself). Its palette is [`dominant_colors`]`(&histogram, n)`.
///
/// ```
/// # let tmp = tempfile::tempdir().unwrap();
/// # let path = tmp.path().join("teal.png");
/// # image::RgbImage::from_pixel(4, 4, image::Rgb([0, 128, 128])).save(&path).unwrap();
/// let h = chromatica::images::histogram(&path)?;
/// assert!((h.iter().sum::<f32>() - 1.0).abs() < 1e-5);
/// assert_eq!(chromatica::images::dominant_colors(&h, 5)[0].rgb, [0, 128, 128]);
/// # Ok::<(), chromatica::Error>(())
/// ```
pub fn histogram(path: impl AsRef<Path>) -> Result<Vec<f32>> {
    image_histogram_with(path.as_ref(), &ImageLimits::default())
}

/// An index of image files (see the [module documentation](self)).
pub struct ImageIndex {
    index: Index,
    created: bool,
}

impl ImageIndex {
    /// Opens the image index in `dir` for writing, creating it (with
    /// [`image_config`]) when `dir` is missing or empty. A non-empty
    /// directory that is not an index is refused (it is probably the photo
    /// folder given in the wrong place), as is an index whose vectors are
    /// not colour histograms.
    pub fn open_or_create(dir: impl AsRef<Path>) -> Result<ImageIndex> {
        let dir = dir.as_ref();
        let (index, created) = match Index::open(dir) {
            Ok(index) => (index, false),
            Err(Error::NotAnIndex(_)) if crate::index::is_remote(dir) => (Index::create(dir, image_config())?, true),
            Err(Error::NotAnIndex(_)) => {
                let empty = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.next().is_none();
                if !empty {
                    return Err(Error::DirectoryNotEmpty(dir.to_owned()));
                }
                (Index::create(dir, image_config())?, true)
            }
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                (Index::create(dir, image_config())?, true)
            }
            Err(e) => return Err(e),
        };
        ImageIndex::wrap(index, created)
    }

    /// Opens an existing image index for searching only (no writer lock).
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<ImageIndex> {
        ImageIndex::wrap(Index::open_read_only(dir)?, false)
    }

    fn wrap(index: Index, created: bool) -> Result<ImageIndex> {
        let dim = index.config().dim;
        if dim != HIST_DIM {
            return Err(Error::InvalidInput(format!(
                "{}: the index holds {dim}-dimension vectors; image histograms have {HIST_DIM}",
                index.path().display()
            )));
        }
        Ok(ImageIndex { index, created })
    }

    /// Whether [`open_or_create`](Self::open_or_create) created the index.
    pub fn created(&self) -> bool {
        self.created
    }

    /// The engine underneath, for maintenance (compact, verify, inspect).
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Images (live vectors) in the index.
    pub fn len(&self) -> u64 {
        self.index.len()
    }

    /// Whether the index holds no image.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}
