//! Which image files a sync covers: folders walked recursively, files as
//! given, each file once by its canonical path.

use super::sync::{has_image_extension, SyncProblem};
use crate::{Error, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What a walk found.
#[derive(Default)]
pub(super) struct Walk {
    /// Canonical paths of the image files, each once, in walk order
    /// (inputs in the order given, folder entries by name).
    pub files: Vec<PathBuf>,
    /// Canonical folders walked from their top: the inputs, and the targets
    /// of followed links to folders outside them. A recorded file under one
    /// of these that no longer exists was deleted from disk.
    pub roots: Vec<PathBuf>,
    /// Entries that could not be used: unreadable folders, broken links,
    /// link loops, files whose canonical path cannot be found.
    pub problems: Vec<SyncProblem>,
    /// Which of `problems` are files (they count as failed).
    pub problem_is_file: Vec<bool>,
}

impl Walk {
    fn problem(&mut self, path: &Path, error: Error, is_file: bool) {
        self.problems.push(SyncProblem { path: path.to_owned(), error });
        self.problem_is_file.push(is_file);
    }
}

/// Walks `inputs` (each must exist). Inputs are followed if they are
/// links; inside folders, links are followed only with `follow_links`.
pub(super) fn walk(inputs: &[PathBuf], follow_links: bool) -> Result<Walk> {
    let mut w = Walk::default();
    let mut seen = HashSet::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| Error::io(input, e))?;
        let canonical = std::fs::canonicalize(input).map_err(|e| Error::io(input, e))?;
        if meta.is_dir() {
            add_root(&mut w.roots, &canonical);
            let mut ancestors = vec![canonical.clone()];
            walk_dir(&mut w, &mut seen, input, &mut ancestors, follow_links);
        } else if seen.insert(canonical.clone()) {
            w.files.push(canonical);
        }
    }
    Ok(w)
}

fn add_root(roots: &mut Vec<PathBuf>, dir: &Path) {
    if !roots.iter().any(|r| dir.starts_with(r)) {
        roots.retain(|r| !r.starts_with(dir));
        roots.push(dir.to_owned());
    }
}

/// `ancestors` holds the canonical folders from the input down to `dir`:
/// a link to one of them is a loop.
fn walk_dir(w: &mut Walk, seen: &mut HashSet<PathBuf>, dir: &Path, ancestors: &mut Vec<PathBuf>, follow: bool) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return w.problem(dir, Error::io(dir, e), false),
    };
    let mut names = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => names.push(e),
            Err(e) => return w.problem(dir, Error::io(dir, e), false),
        }
    }
    names.sort_by_key(|e| e.file_name());
    for entry in names {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        let (is_dir, is_file) = if kind.is_symlink() {
            if !follow {
                continue;
            }
            match std::fs::metadata(&path) {
                Ok(m) => (m.is_dir(), m.is_file()),
                Err(e) => {
                    let what = format!("broken symbolic link, skipped ({e})");
                    w.problem(&path, Error::bad_file(&path, what), false);
                    continue;
                }
            }
        } else {
            (kind.is_dir(), kind.is_file())
        };
        if is_dir {
            let canonical = match std::fs::canonicalize(&path) {
                Ok(c) => c,
                Err(e) => {
                    w.problem(&path, Error::io(&path, e), false);
                    continue;
                }
            };
            if ancestors.contains(&canonical) {
                w.problem(&path, Error::bad_file(&path, "symbolic link loop, skipped"), false);
                continue;
            }
            if kind.is_symlink() {
                add_root(&mut w.roots, &canonical);
            }
            ancestors.push(canonical);
            walk_dir(w, seen, &path, ancestors, follow);
            ancestors.pop();
        } else if is_file && has_image_extension(&path) {
            match std::fs::canonicalize(&path) {
                Ok(c) => {
                    if seen.insert(c.clone()) {
                        w.files.push(c);
                    }
                }
                Err(e) => w.problem(&path, Error::io(&path, e), true),
            }
        }
    }
}
