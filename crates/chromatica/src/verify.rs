//! `chromatica verify`: reads every byte of an index and checks every
//! checksum and structural invariant, without changing anything. The first
//! problem is returned as an error naming the file and byte offset.

use crate::error::{Error, Result};
use crate::format::manifest::Manifest;
use crate::format::parse_manifest_name;
use crate::read::Snapshot;
use crate::recovery::{is_not_found, latest_manifest};
use crate::storage::Storage;
use serde::Serialize;
use std::collections::HashSet;

/// What [`Index::verify`](crate::Index::verify) checked, once every check passed.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The manifest generation that was checked.
    pub generation: u64,
    /// Files read in full and found sound.
    pub files: usize,
    /// Bytes of those files.
    pub bytes: u64,
    /// Live vectors.
    pub vectors: u64,
    /// Stored vectors hidden by tombstones.
    pub deleted: u64,
    /// Files an interrupted write left behind; the next writer open removes
    /// them. They are not part of the index and are not errors.
    pub leftovers: Vec<String>,
}

/// Verifies one consistent state while writers may be committing. A writer
/// removes a file only after publishing a manifest that no longer names it,
/// so a file of the state that vanished mid-check means a newer generation
/// appeared: the check starts again on it (up to 100 times), as searches
/// reload. A file that is missing while the newest generation stays the
/// same is reported.
pub fn verify(storage: &dyn Storage) -> Result<VerifyReport> {
    let mut attempt = 0;
    loop {
        let before = newest_generation(storage)?;
        match verify_once(storage) {
            Err(e) if is_not_found(&e) && attempt < 100 && newest_generation(storage)? != before => attempt += 1,
            other => return other,
        }
    }
}

fn newest_generation(storage: &dyn Storage) -> Result<Option<u64>> {
    Ok(storage.list()?.iter().filter_map(|n| parse_manifest_name(n)).max())
}

fn verify_once(storage: &dyn Storage) -> Result<VerifyReport> {
    let names = storage.list()?;
    // Every manifest present must decode, not only the newest — but one
    // that is gone by the time it is read was retired by a writer after
    // publishing a newer one.
    for name in names.iter().filter(|n| parse_manifest_name(n).is_some()) {
        match storage.map(name) {
            Ok(bytes) => drop(Manifest::decode(&bytes, &storage.describe(name))?),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
    }
    let manifest = latest_manifest(storage)?.ok_or_else(|| Error::NotAnIndex(storage.describe("").into()))?;
    let snap = Snapshot::load(storage, manifest, None)?;
    let m = &snap.manifest;
    let mut bytes = 0u64;
    let mut live = HashSet::with_capacity(snap.vectors() as usize);
    for (si, seg) in snap.segments.iter().enumerate() {
        seg.verify()?;
        bytes += seg.file_bytes() as u64;
        let hide = snap.hider(si);
        let mut hidden = 0u64;
        for l in 0..m.config.nlist {
            let (_, ids) = seg.list(l)?;
            for (i, id) in ids.iter().enumerate() {
                let at = seg.id_offset(seg.list_start(l) + i);
                if id >= m.next_id {
                    return Err(Error::corrupt(seg.name(), at, format!("id {id} is not below next_id {}", m.next_id)));
                }
                if hide.hides(id) {
                    hidden += 1;
                } else if !live.insert(id) {
                    return Err(Error::corrupt(seg.name(), at, format!("live id {id} is stored twice")));
                }
            }
        }
        if hidden != m.segments[si].deleted {
            return Err(Error::corrupt(
                seg.name(),
                0,
                format!("tombstones hide {hidden} vectors here, the manifest says {}", m.segments[si].deleted),
            ));
        }
    }
    let files = 1 + m.segments.len() + m.tombstones.len() + usize::from(m.quantizer_file.is_some());
    let mut leftovers = m.leftovers(names);
    bytes += [m.quantizer_file.map(crate::format::quantizer_name), Some(crate::format::manifest_name(m.generation))]
        .into_iter()
        .flatten()
        .chain(m.tombstones.iter().map(|t| crate::format::tombstone_name(t.file)))
        .map(|n| storage.map(&n).map(|b| b.len() as u64))
        .sum::<Result<u64>>()?;
    leftovers.sort();
    Ok(VerifyReport {
        generation: m.generation,
        files,
        bytes,
        vectors: snap.vectors(),
        deleted: m.deleted_vectors(),
        leftovers,
    })
}
