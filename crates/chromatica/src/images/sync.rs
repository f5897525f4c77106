//! Keeping an image index in step with folders on disk.

use super::walk::walk;
use super::ImageIndex;
use crate::color::{hellinger, image_histogram_with, ImageLimits, HIST_DIM};
use crate::{Error, Record, Result, Snapshot};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// File extensions (lower case; matched in any case) that a sync picks up
/// inside folders. Files given by name are tried whatever their extension.
pub const IMAGE_EXTENSIONS: [&str; 8] = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif"];

/// Images decoded and committed together (one segment each): bounds the
/// memory of a sync, whatever the number of files.
pub const ADD_BATCH: usize = 2_000;

/// How [`ImageIndex::sync`] works.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Follow symbolic links inside folders, also to files and folders
    /// outside them (default `true`). Inputs named in the call are always
    /// followed. A link that loops back to a folder being walked is
    /// reported and skipped.
    pub follow_links: bool,
    /// What one image may cost to decode.
    pub limits: ImageLimits,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions { follow_links: true, limits: ImageLimits::default() }
    }
}

impl SyncOptions {
    /// Sets [`follow_links`](Self::follow_links).
    pub fn follow_links(mut self, follow: bool) -> Self {
        self.follow_links = follow;
        self
    }

    /// Sets [`limits`](Self::limits).
    pub fn limits(mut self, limits: ImageLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// A file or folder a sync could not use, and why.
#[derive(Debug)]
#[non_exhaustive]
pub struct SyncProblem {
    /// The file or folder.
    pub path: PathBuf,
    /// Why; its message names the path.
    pub error: Error,
}

impl std::fmt::Display for SyncProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

/// What a sync is doing, for a progress display. Called from the worker
/// threads that decode, so it must be `Sync`.
#[non_exhaustive]
#[derive(Debug)]
pub enum SyncEvent<'a> {
    /// The folders are walked: this many files must be decoded.
    Planned {
        /// Files new or changed since the last sync.
        to_decode: usize,
    },
    /// One more of the planned files was decoded (or failed to).
    Decoded,
    /// A file or folder could not be used (it is in the summary too).
    Problem(&'a SyncProblem),
}

/// What one sync did.
#[non_exhaustive]
#[derive(Debug, Default)]
pub struct SyncSummary {
    /// Files new to the index.
    pub added: usize,
    /// Changed files (size or mtime) whose old vector was replaced.
    pub updated: usize,
    /// Files skipped because their size and mtime are as recorded.
    pub unchanged: usize,
    /// Recorded files under the synced folders that are gone from disk;
    /// their vectors were deleted.
    pub removed: Vec<PathBuf>,
    /// Files that could not be indexed (unreadable, not an image, over the
    /// pixel limit, …), with the reason. They are tried again next time.
    pub failed: Vec<SyncProblem>,
    /// Problems that are not a file failing: folders that cannot be read,
    /// broken links, link loops, a step after a commit (a merge) failing.
    pub warnings: Vec<SyncProblem>,
    /// Automatic training happened during this sync.
    pub trained_now: bool,
    /// Wall time of the whole sync.
    pub seconds: f64,
    /// Files decoded (added + updated + failed to decode) per second.
    pub images_per_second: f64,
}

pub(super) fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// What the index holds for one path.
struct Known {
    /// Every live id recorded with the path (more than one only after an
    /// interrupted update).
    ids: Vec<u64>,
    /// Size and mtime recorded with the newest id.
    size: u64,
    mtime_ns: i64,
    newest: u64,
}

/// Path → what the index holds for it, over every live record.
fn existing_records(snap: &Snapshot) -> Result<HashMap<PathBuf, Known>> {
    let mut map: HashMap<PathBuf, Known> = HashMap::new();
    let mut err = None;
    snap.for_each_live(|si, p, id| {
        if err.is_some() {
            return;
        }
        match snap.segments[si].record(p) {
            Ok(Some(r)) => {
                let k = map.entry(r.path.to_owned()).or_insert_with(|| Known {
                    ids: Vec::new(),
                    size: r.size,
                    mtime_ns: r.mtime_ns,
                    newest: id,
                });
                k.ids.push(id);
                if id >= k.newest {
                    (k.size, k.mtime_ns, k.newest) = (r.size, r.mtime_ns, id);
                }
            }
            Ok(None) => {}
            Err(e) => err = Some(e),
        }
    })?;
    match err {
        Some(e) => Err(e),
        None => Ok(map),
    }
}

/// One image file to decode.
struct Todo {
    path: PathBuf,
    size: u64,
    mtime_ns: i64,
    /// Ids this path has in the index now (deleted when it changed).
    old_ids: Vec<u64>,
}

/// Whether a recorded path is gone from disk (not merely unreadable).
fn is_gone(path: &Path) -> bool {
    match std::fs::metadata(path) {
        Ok(_) => false,
        Err(e) => matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory),
    }
}

impl ImageIndex {
    /// Brings the index in step with `inputs`: folders (walked recursively
    /// for files with an [`IMAGE_EXTENSIONS`] extension) and image files.
    /// New files are added; changed files (size or mtime) re-indexed and
    /// their old vector deleted; unchanged files skipped; recorded files
    /// under the given folders that are gone from disk removed from the
    /// index. Files that cannot be indexed are reported in the summary
    /// (with `progress` told as they happen) and do not stop the sync.
    ///
    /// Paths are recorded canonical (links resolved), so a file reached
    /// twice is indexed once. Memory is bounded: files are decoded and
    /// committed [`ADD_BATCH`] at a time, in parallel on the current rayon
    /// pool, each decode under `options.limits`. An input that does not
    /// exist is an error before anything changes.
    pub fn sync<P: AsRef<Path>>(
        &self,
        inputs: &[P],
        options: &SyncOptions,
        progress: &(dyn Fn(SyncEvent<'_>) + Sync),
    ) -> Result<SyncSummary> {
        let t0 = Instant::now();
        let inputs: Vec<PathBuf> = inputs.iter().map(|p| p.as_ref().to_owned()).collect();
        if inputs.is_empty() {
            return Err(Error::invalid_argument("inputs", "give at least one folder or image to index"));
        }
        let mut summary = SyncSummary::default();
        let found = walk(&inputs, options.follow_links)?;
        for (problem, is_file) in found.problems.into_iter().zip(found.problem_is_file) {
            progress(SyncEvent::Problem(&problem));
            if is_file {
                summary.failed.push(problem);
            } else {
                summary.warnings.push(problem);
            }
        }
        let index = &self.index;
        let mut known = existing_records(&index.snapshot())?;
        let mut todo = Vec::new();
        let fail = |summary: &mut SyncSummary, path: &Path, error: Error| {
            let problem = SyncProblem { path: path.to_owned(), error };
            progress(SyncEvent::Problem(&problem));
            summary.failed.push(problem);
        };
        for path in found.files {
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    fail(&mut summary, &path, Error::io(&path, e));
                    continue;
                }
            };
            let (size, mtime) = (meta.len(), Record::modified_ns(&meta));
            let old_ids = match known.remove(&path) {
                Some(k) if k.size == size && k.mtime_ns == mtime && k.ids.len() == 1 => {
                    summary.unchanged += 1;
                    continue;
                }
                Some(k) => k.ids,
                None => Vec::new(),
            };
            todo.push(Todo { path, size, mtime_ns: mtime, old_ids });
        }
        // What is left of `known` was not found: removed if it lies under
        // a walked folder and no longer exists.
        let mut gone: Vec<(PathBuf, Vec<u64>)> = known
            .into_iter()
            .map(|(path, k)| (path, k.ids))
            .filter(|(path, _)| found.roots.iter().any(|r| path.starts_with(r)) && is_gone(path))
            .collect();
        gone.sort();

        progress(SyncEvent::Planned { to_decode: todo.len() });
        let t_decode = Instant::now();
        let decoded = AtomicUsize::new(0);
        for chunk in todo.chunks(ADD_BATCH) {
            let vectors: Vec<Result<Vec<f32>>> = chunk
                .par_iter()
                .map(|f| {
                    let v = image_histogram_with(&f.path, &options.limits).map(|mut h| {
                        hellinger(&mut h);
                        h
                    });
                    decoded.fetch_add(1, Ordering::Relaxed);
                    progress(SyncEvent::Decoded);
                    v
                })
                .collect();
            let mut data = Vec::with_capacity(chunk.len() * HIST_DIM);
            let mut records = Vec::with_capacity(chunk.len());
            let mut stale = Vec::new();
            for (f, v) in chunk.iter().zip(vectors) {
                // A changed file's old vector goes whether or not it still decodes.
                stale.extend_from_slice(&f.old_ids);
                match v {
                    Ok(v) => {
                        data.extend_from_slice(&v);
                        records.push(Record { path: f.path.clone(), size: f.size, mtime_ns: f.mtime_ns });
                        if f.old_ids.is_empty() {
                            summary.added += 1;
                        } else {
                            summary.updated += 1;
                        }
                    }
                    Err(e) => fail(&mut summary, &f.path, e),
                }
            }
            // Add before deleting: an interruption in between leaves the file
            // twice, which the next sync repairs, rather than not at all.
            if !records.is_empty() {
                let report = index.add_records(&data, None, &records)?;
                if let Some(e) = report.merge_error {
                    let what = format!("the batch is committed, but a step after it failed: {e}");
                    let problem =
                        SyncProblem { path: index.path().to_owned(), error: Error::bad_file(index.path(), what) };
                    progress(SyncEvent::Problem(&problem));
                    summary.warnings.push(problem);
                }
                summary.trained_now |= report.trained.is_some();
            }
            if !stale.is_empty() {
                index.delete(&stale)?;
            }
        }
        let ids: HashSet<u64> = gone.iter().flat_map(|(_, ids)| ids.iter().copied()).collect();
        let ids: Vec<u64> = ids.into_iter().collect();
        if !ids.is_empty() {
            index.delete(&ids)?;
        }
        summary.removed = gone.into_iter().map(|(p, _)| p).collect();
        let n = decoded.into_inner();
        let secs = t_decode.elapsed().as_secs_f64();
        summary.images_per_second = if n > 0 && secs > 0.0 { n as f64 / secs } else { 0.0 };
        summary.seconds = t0.elapsed().as_secs_f64();
        Ok(summary)
    }
}
