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

/// Problems a damage report lists in full; past this many only the count
/// goes on (a file damaged all through would otherwise list one problem per
/// vector).
pub const MAX_LISTED_PROBLEMS: usize = 1000;

/// One problem [`Index::verify_all`](crate::Index::verify_all) found.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct Problem {
    /// The file, as the storage describes it (its path on disk).
    pub file: String,
    /// Byte offset in the file where the check failed, when it is known
    /// (a file that cannot be read at all has none).
    pub offset: Option<u64>,
    /// Which check failed.
    pub what: String,
}

impl Problem {
    fn of(file: &str, e: Error) -> Problem {
        match e {
            Error::Corrupt { file, offset, what } => Problem { file, offset: Some(offset), what },
            other => Problem { file: file.to_string(), offset: None, what: other.to_string() },
        }
    }
}

/// What [`Index::verify_all`](crate::Index::verify_all) found in one segment file.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct SegmentDamage {
    /// File name inside the index directory.
    pub file: String,
    /// Vectors the manifest says it stores, deleted ones included.
    pub vectors: u64,
    /// Whether the file opened (header, list directory and layout sound);
    /// when not, none of its vectors can be read.
    pub opened: bool,
    /// Lists of this segment whose checksum fails or that hold a vector
    /// that does not decode, ascending.
    pub damaged_lists: Vec<usize>,
    /// Live vectors of this segment in lists that read in full.
    pub live_readable: u64,
    /// Live vectors of this segment that cannot be read (in damaged lists,
    /// or all of them when the file did not open; counted from the manifest
    /// then, deleted ones included).
    pub unreadable: u64,
    /// Problems found in this file.
    pub problems: usize,
}

/// Every problem in every file of an index, and what remains readable, from
/// [`Index::verify_all`](crate::Index::verify_all): for an operator deciding between `recover`, restoring a
/// backup, or re-adding what was lost.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct DamageReport {
    /// The manifest generation checked: the newest one that decodes
    /// (`None` when none does, and nothing else can be checked).
    pub generation: Option<u64>,
    /// No problem at all (the same verdict as [`Index::verify`](crate::Index::verify)).
    pub sound: bool,
    /// The problems, file by file, at most [`MAX_LISTED_PROBLEMS`].
    pub problems: Vec<Problem>,
    /// Problems found beyond those listed.
    pub problems_not_listed: u64,
    /// Files read.
    pub files_checked: usize,
    /// Whether the quantizer file reads (when not, the codes cannot be
    /// searched; the refine store, if any, still can be).
    pub quantizers_readable: bool,
    /// Whether every tombstone file reads (when not, some deleted vectors
    /// may count as live).
    pub tombstones_readable: bool,
    /// Inverted lists of the index.
    pub nlist: usize,
    /// Lists that read in full in every segment.
    pub lists_readable: usize,
    /// Lists damaged in at least one segment, ascending.
    pub damaged_lists: Vec<usize>,
    /// Live vectors that can be read.
    pub vectors_readable: u64,
    /// Vectors that cannot be read.
    pub vectors_unreadable: u64,
    /// Per segment file, in manifest order.
    pub segments: Vec<SegmentDamage>,
    /// Files an interrupted write left behind (not problems).
    pub leftovers: Vec<String>,
}

struct Problems {
    listed: Vec<Problem>,
    more: u64,
    /// A file of the state was gone when read (a writer retired it).
    vanished: bool,
}

impl Problems {
    fn err(&mut self, file: &str, e: Error) {
        self.vanished |= is_not_found(&e);
        self.push(Problem::of(file, e));
    }

    fn push(&mut self, p: Problem) {
        if self.listed.len() < MAX_LISTED_PROBLEMS {
            self.listed.push(p);
        } else {
            self.more += 1;
        }
    }
}

/// Reads every byte of the index like [`Index::verify`](crate::Index::verify) but does not stop at the
/// first problem: lists every problem of every file (file and byte offset),
/// and counts what remains readable — per segment and list, and in vectors.
/// Changes nothing. Errors only when the directory cannot be listed. Like
/// [`Index::verify`](crate::Index::verify), starts again (up to 100 times) when a file of the state
/// vanished because a writer published a newer generation meanwhile.
pub fn verify_all(storage: &dyn Storage) -> Result<DamageReport> {
    let mut attempt = 0;
    loop {
        let before = newest_generation(storage)?;
        let (report, vanished) = verify_all_once(storage)?;
        if vanished && attempt < 100 && newest_generation(storage)? != before {
            attempt += 1;
            continue;
        }
        return Ok(report);
    }
}

fn verify_all_once(storage: &dyn Storage) -> Result<(DamageReport, bool)> {
    use crate::format::segment::{Expect, SegmentView};
    use crate::format::{quantizer_name, segment_name, tombstone_file, tombstone_name};
    let mut problems = Problems { listed: Vec::new(), more: 0, vanished: false };
    let names = storage.list()?;
    let mut files_checked = 0;
    // When no manifest decodes, the loop below reports each one.
    let found = crate::recovery::find_manifest(storage).ok().flatten();
    let mut report = DamageReport {
        generation: None,
        sound: false,
        problems: Vec::new(),
        problems_not_listed: 0,
        files_checked: 0,
        quantizers_readable: false,
        tombstones_readable: false,
        nlist: 0,
        lists_readable: 0,
        damaged_lists: Vec::new(),
        vectors_readable: 0,
        vectors_unreadable: 0,
        segments: Vec::new(),
        leftovers: Vec::new(),
    };
    // Every manifest present is read: the damaged newer ones are problems.
    for name in names.iter().filter(|n| parse_manifest_name(n).is_some()) {
        files_checked += 1;
        match storage.map(name) {
            Ok(bytes) => {
                if let Err(e) = Manifest::decode(&bytes, &storage.describe(name)) {
                    problems.err(&storage.describe(name), e);
                }
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => problems.err(&storage.describe(name), e),
        }
    }
    let Some(found) = found else {
        if problems.listed.is_empty() {
            return Err(Error::NotAnIndex(storage.describe("").into()));
        }
        report.problems = problems.listed;
        report.problems_not_listed = problems.more;
        report.files_checked = files_checked;
        return Ok((report, problems.vanished));
    };
    let m = found.manifest;
    let c = m.config;
    report.generation = Some(m.generation);
    report.nlist = c.nlist;
    report.leftovers = m.leftovers(names);
    report.leftovers.sort();
    report.quantizers_readable = true;
    if let Some(q) = m.quantizer_file {
        files_checked += 1;
        let name = quantizer_name(q);
        let r = storage.map(&name).and_then(|b| {
            crate::format::quantizer_file::QuantizerData::decode(
                &b,
                &storage.describe(&name),
                (c.dim, c.nlist, c.m, c.nbits),
            )
            .map(drop)
        });
        if let Err(e) = r {
            problems.err(&storage.describe(&name), e);
            report.quantizers_readable = false;
        }
    }
    // Deleted id → newest tombstone generation, from the tombstones that read.
    let mut deleted: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    report.tombstones_readable = true;
    for t in &m.tombstones {
        files_checked += 1;
        let name = tombstone_name(t.file);
        let desc = storage.describe(&name);
        let r = storage.map(&name).and_then(|b| tombstone_file::decode(&b, &desc)).and_then(|ids| {
            if ids.len() as u64 != t.ids {
                return Err(Error::corrupt(&desc, 16, format!("holds {} ids, the manifest says {}", ids.len(), t.ids)));
            }
            Ok(ids)
        });
        match r {
            Ok(ids) => {
                for id in ids {
                    let g = deleted.entry(id).or_insert(t.generation);
                    *g = (*g).max(t.generation);
                }
            }
            Err(e) => {
                problems.err(&desc, e);
                report.tombstones_readable = false;
            }
        }
    }
    let mut damaged = vec![false; c.nlist];
    let mut live = HashSet::new();
    for s in &m.segments {
        files_checked += 1;
        let file = segment_name(s.file);
        let desc = storage.describe(&file);
        let before = problems.listed.len() as u64 + problems.more;
        let expect = Expect {
            nlist: c.nlist,
            dim: c.dim,
            code_size: c.code_size(),
            quantizer_file: m.quantizer_file.unwrap_or(0),
            refine: c.refine,
            fast_scan: c.fast_scan,
        };
        let view = storage.map(&file).and_then(|b| SegmentView::open(b, desc.clone(), expect)).and_then(|v| {
            if v.has_codes() != m.quantizer_file.is_some() {
                return Err(Error::corrupt(&desc, 40, "segment codes do not match the index's training state"));
            }
            if v.vectors() != s.vectors || v.file_bytes() as u64 != s.bytes {
                return Err(Error::corrupt(
                    &desc,
                    0,
                    format!(
                        "segment holds {} vectors in {} bytes, the manifest says {} in {}",
                        v.vectors(),
                        v.file_bytes(),
                        s.vectors,
                        s.bytes
                    ),
                ));
            }
            Ok(v)
        });
        let mut d = SegmentDamage {
            file: file.clone(),
            vectors: s.vectors,
            opened: false,
            damaged_lists: Vec::new(),
            live_readable: 0,
            unreadable: 0,
            problems: 0,
        };
        match view {
            Err(e) => {
                problems.err(&desc, e);
                d.unreadable = s.vectors;
                damaged.iter_mut().for_each(|x| *x = true);
            }
            Ok(v) => {
                d.opened = true;
                let (found, readable) = v.verify_all();
                for e in found {
                    problems.err(&desc, e);
                }
                let hides = |id: u64| deleted.get(&id).is_some_and(|&g| g > s.generation);
                let mut hidden = 0u64;
                for (l, ok) in readable.iter().enumerate() {
                    if !ok {
                        d.damaged_lists.push(l);
                        damaged[l] = true;
                        d.unreadable += v.list_len(l) as u64;
                        continue;
                    }
                    let Ok((_, ids)) = v.list(l) else { continue };
                    for (i, id) in ids.iter().enumerate() {
                        let at = v.id_offset(v.list_start(l) + i);
                        if id >= m.next_id {
                            problems.err(
                                &desc,
                                Error::corrupt(&desc, at, format!("id {id} is not below next_id {}", m.next_id)),
                            );
                        } else if hides(id) {
                            hidden += 1;
                        } else if !live.insert(id) {
                            problems.err(&desc, Error::corrupt(&desc, at, format!("live id {id} is stored twice")));
                        } else {
                            d.live_readable += 1;
                        }
                    }
                }
                if d.damaged_lists.is_empty() && report.tombstones_readable && hidden != s.deleted {
                    problems.err(
                        &desc,
                        Error::corrupt(
                            &desc,
                            0,
                            format!("tombstones hide {hidden} vectors here, the manifest says {}", s.deleted),
                        ),
                    );
                }
            }
        }
        d.problems = (problems.listed.len() as u64 + problems.more - before) as usize;
        report.vectors_readable += d.live_readable;
        report.vectors_unreadable += d.unreadable;
        report.segments.push(d);
    }
    report.damaged_lists = (0..c.nlist).filter(|&l| damaged[l]).collect();
    report.lists_readable = c.nlist - report.damaged_lists.len();
    report.files_checked = files_checked;
    report.sound = problems.listed.is_empty();
    report.problems = problems.listed;
    report.problems_not_listed = problems.more;
    Ok((report, problems.vanished))
}
