//! Which manifest is the state of a directory, what else of ours in it is
//! left over, and how to roll back past a damaged newest manifest (FORMAT.md,
//! "Opening" and "Damage and recovery"). The write path only commits; this is
//! what every open, `verify` and `recover` decide from what the disk holds.
//!
//! The rule: a `MANIFEST-<gen>` gets its name by a rename after its bytes
//! were synced, so a torn manifest can only be a `.tmp`. A named manifest
//! that fails its checks is therefore damage, not an interrupted write.
//! Readers fall back to the newest manifest that passes and say so
//! ([`Found::damaged`]); writers refuse ([`Error::DamagedManifest`]) because
//! committing on top of the older state would reuse the lost generation's
//! file numbers; [`recover`] rolls back explicitly and keeps the damaged
//! files aside.

use crate::error::{Error, Result};
use crate::format::manifest::Manifest;
use crate::format::{manifest_name, parse_manifest_name, parse_numbered_name};
use crate::storage::Storage;

/// Suffix of the names [`recover`] moves damaged files to: no longer a name
/// the format owns, so nothing reads or removes them.
pub const DAMAGED_SUFFIX: &str = ".damaged";

/// What [`find_manifest`] found.
pub(crate) struct Found {
    pub manifest: Manifest,
    /// Newer manifests that failed their checks, newest first: each file
    /// (as the storage describes it: its path) and why it failed.
    pub damaged: Vec<(String, Error)>,
}

impl Found {
    /// The warning a read-only open gives for a damaged newer manifest.
    pub fn warnings(&self, dir: &str) -> Vec<String> {
        self.damaged
            .iter()
            .map(|(_, e)| {
                format!(
                    "{e}; showing the older generation {} instead (`chromatica recover {dir}` rolls back for good, \
                     keeping the damaged files aside)",
                    self.manifest.generation
                )
            })
            .collect()
    }

    /// The error a writer open gives for a damaged newer manifest.
    pub fn refuse_writers(&self) -> Result<()> {
        match self.damaged.first() {
            None => Ok(()),
            Some((file, e)) => Err(Error::DamagedManifest {
                file: file.clone(),
                cause: match e {
                    Error::Corrupt { offset, what, .. } => format!("corrupt at byte {offset}: {what}"),
                    other => other.to_string(),
                },
                good: self.manifest.generation,
            }),
        }
    }
}

/// The newest manifest that decodes, or `None` if there is no manifest at
/// all; if none decodes, the newest one's error.
pub(crate) fn latest_manifest(storage: &dyn Storage) -> Result<Option<Manifest>> {
    Ok(find_manifest(storage)?.map(|f| f.manifest))
}

/// Decodes manifests newest generation first; the first that passes every
/// check is the state, and the newer ones that failed are reported as
/// damaged. A manifest that vanishes between listing and reading was retired
/// by a writer that just published a newer one: the directory is listed
/// again.
pub(crate) fn find_manifest(storage: &dyn Storage) -> Result<Option<Found>> {
    let mut attempt = 0;
    'list: loop {
        let mut gens: Vec<u64> = storage.list()?.iter().filter_map(|n| parse_manifest_name(n)).collect();
        gens.sort_unstable_by(|a, b| b.cmp(a));
        let mut damaged: Vec<(String, Error)> = Vec::new();
        for g in gens {
            let name = manifest_name(g);
            let decoded = storage.map(&name).and_then(|b| Manifest::decode(&b, &storage.describe(&name)));
            match decoded {
                Ok(m) if m.generation == g => return Ok(Some(Found { manifest: m, damaged })),
                Ok(_) => damaged.push((
                    storage.describe(&name),
                    Error::corrupt(storage.describe(&name), 16, "generation differs from file name"),
                )),
                Err(e) if is_not_found(&e) && attempt < 100 => {
                    attempt += 1;
                    continue 'list;
                }
                Err(e) => damaged.push((storage.describe(&name), e)),
            }
        }
        return match damaged.into_iter().next() {
            None => Ok(None),
            Some((_, e)) => Err(e),
        };
    }
}

/// Whether `e` is a file that is not there (any more).
pub(crate) fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

/// Removes what a crash may have left behind: manifest temporary files,
/// manifests other than `current`, and numbered files `current` does not
/// name. Names the format does not own (user files, directories, any other
/// `*.tmp`) are never touched. Returns what it removed.
pub(crate) fn remove_leftovers(storage: &dyn Storage, current: &Manifest) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in current.leftovers(storage.list()?) {
        if !storage.may_remove_leftover(&name, current) {
            continue;
        }
        storage.remove(&name)?;
        removed.push(name);
    }
    if !removed.is_empty() {
        storage.sync_dir()?;
    }
    Ok(removed)
}

/// What [`Index::recover`](crate::Index::recover) did.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[non_exhaustive]
pub struct RecoverReport {
    /// The generation the index now opens at: the kept state, committed
    /// anew one past the newest generation that was moved aside.
    pub generation: u64,
    /// Each damaged manifest, and every file newer than the state it rolled
    /// back to, as moved aside: `(old name, new name)`.
    pub moved_aside: Vec<(String, String)>,
}

/// Rolls back past damaged newest manifests (the writer lock must be held):
/// every newer manifest that fails its checks, and every numbered file from
/// a generation after the state kept (number ≥ its `next_file`: only a
/// later commit can have written it), is renamed to `<name>.damaged`, out of
/// the format's names, so nothing reads, reuses or removes it. With no
/// damage, nothing changes. The kept state is then committed again under a
/// new generation, with `next_file` past every number moved aside.
pub(crate) fn recover(storage: &dyn Storage) -> Result<RecoverReport> {
    let Some(found) = find_manifest(storage)? else {
        return Err(Error::NotAnIndex(storage.describe("").into()));
    };
    let good = &found.manifest;
    let mut report = RecoverReport { generation: good.generation, moved_aside: vec![] };
    if found.damaged.is_empty() {
        return Ok(report);
    }
    let names = storage.list()?;
    let newer = names.iter().filter(|n| match (parse_manifest_name(n), parse_numbered_name(n)) {
        (Some(g), _) => g > good.generation,
        (_, Some((number, _))) => number >= good.next_file,
        _ => false,
    });
    let (mut last_gen, mut last_number) = (good.generation, good.next_file.saturating_sub(1));
    for name in newer {
        if let Some(g) = parse_manifest_name(name) {
            last_gen = last_gen.max(g);
        }
        if let Some((n, _)) = parse_numbered_name(name) {
            last_number = last_number.max(n);
        }
        let aside = aside_name(&names, name);
        storage.rename(name, &aside)?;
        report.moved_aside.push((name.clone(), aside));
    }
    storage.sync_dir()?;
    // Commit the kept state anew, past every generation and file number the
    // lost ones used: neither is ever reused, so nothing kept aside can be
    // confused with what is written next.
    let mut next = good.clone();
    next.generation = last_gen.checked_add(1).ok_or_else(|| Error::InvalidInput("generations exhausted".into()))?;
    next.next_file = last_number.checked_add(1).ok_or_else(|| Error::InvalidInput("file numbers exhausted".into()))?;
    crate::write::commit(storage, &next, Some(good.generation))?;
    report.generation = next.generation;
    Ok(report)
}

/// `<name>.damaged`, or `<name>.damaged.<k>` if that is taken (an earlier
/// recovery).
fn aside_name(names: &[String], name: &str) -> String {
    let base = format!("{name}{DAMAGED_SUFFIX}");
    (1..)
        .map(|k| if k == 1 { base.clone() } else { format!("{base}.{k}") })
        .find(|n| !names.contains(n))
        .expect("unbounded")
}
