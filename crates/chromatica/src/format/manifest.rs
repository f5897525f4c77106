//! The manifest: the one file that says what the index is. A commit writes a
//! new manifest under a temporary name, syncs it, renames it into place and
//! syncs the directory (see FORMAT.md, "Commit protocol").

use super::{read_checked_header, write_checked_header, FileHeader, FileKind};
use crate::config::{Config, Metric};
use crate::error::{Error, Result};
use std::mem::size_of;
use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Fixed part of a manifest file, version 2 (112 bytes): version 1's
/// fields, then the search defaults `tune` stores.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
pub struct ManifestHeader {
    pub file: FileHeader,
    pub generation: U64,
    pub dim: U32,
    pub nlist: U32,
    pub m: U32,
    pub nbits: U32,
    pub nprobe: U32,
    pub metric: U32,
    pub flags: U32,
    pub tombstone_count: U32,
    pub next_id: U64,
    pub next_file: U64,
    pub quantizer_file: U64,
    pub trained_vectors: U64,
    pub segment_count: U32,
    pub table_crc: U32,
    /// Candidates of an L2-re-ranked search; 0: `DEFAULT_CANDIDATES`.
    pub candidates: U32,
    /// nprobe of an EMD-re-ranked (colour) search; 0: `nprobe`.
    pub emd_nprobe: U32,
    /// Candidates of an EMD-re-ranked search; 0: `DEFAULT_CANDIDATES`.
    pub emd_candidates: U32,
    pub header_crc: U32,
}

/// Fixed part of a manifest file, version 1 (100 bytes), still read.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
pub struct ManifestHeaderV1 {
    pub file: FileHeader,
    pub generation: U64,
    pub dim: U32,
    pub nlist: U32,
    pub m: U32,
    pub nbits: U32,
    pub nprobe: U32,
    pub metric: U32,
    pub flags: U32,
    pub tombstone_count: U32,
    pub next_id: U64,
    pub next_file: U64,
    pub quantizer_file: U64,
    pub trained_vectors: U64,
    pub segment_count: U32,
    pub table_crc: U32,
    pub header_crc: U32,
}

/// One live segment (40 bytes).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
pub struct SegmentEntry {
    pub file: U64,
    pub vectors: U64,
    pub bytes: U64,
    pub generation: U64,
    pub deleted: U64,
}

/// One live tombstone file (24 bytes).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
pub struct TombstoneEntry {
    pub file: U64,
    pub ids: U64,
    pub generation: U64,
}

/// A live tombstone file: ids deleted at `generation`. It hides those ids in
/// segments of an older generation only, so an id may be added again later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TombstoneMeta {
    /// File number: the ids live in `{file:016x}.del`.
    pub file: u64,
    pub ids: u64,
    pub generation: u64,
}

/// A live segment as the engine sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentMeta {
    /// File number: the segment lives in `{file:016x}.seg`.
    pub file: u64,
    pub vectors: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// Manifest generation that first listed this segment.
    pub generation: u64,
    /// Vectors of this segment hidden by tombstones.
    pub deleted: u64,
}

/// Search settings stored by `tune`, one pair per kind of re-rank, since
/// each tune measures one: exact L2 (vector searches) or exact EMD (colour
/// searches). Unset (`None`, stored as 0, and all of version 1): the
/// configuration's nprobe and `DEFAULT_CANDIDATES`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredDefaults {
    /// Candidates of a search re-ranked by L2 (its nprobe is the
    /// configuration's).
    pub candidates: Option<usize>,
    /// nprobe of a search re-ranked by EMD.
    pub emd_nprobe: Option<usize>,
    /// Candidates of a search re-ranked by EMD.
    pub emd_candidates: Option<usize>,
}

/// The decoded manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The version it was read as (a new or successor manifest: the one
    /// this build writes, [`FileKind::version`]).
    pub version: u32,
    pub generation: u64,
    pub config: Config,
    /// Smallest id never handed out: default ids continue from here.
    pub next_id: u64,
    /// Next file number to allocate.
    pub next_file: u64,
    /// Number of the trained quantizer file, if trained.
    pub quantizer_file: Option<u64>,
    /// Live vectors when the quantizers were trained (0 if untrained):
    /// automatic re-training compares the collection with this.
    pub trained_vectors: u64,
    /// Search settings stored by `tune`.
    pub defaults: StoredDefaults,
    pub segments: Vec<SegmentMeta>,
    pub tombstones: Vec<TombstoneMeta>,
}

impl Manifest {
    /// The manifest of a new, untrained, empty index.
    pub fn new(config: Config) -> Manifest {
        Manifest {
            version: FileKind::Manifest.version(),
            generation: 1,
            config,
            next_id: 0,
            next_file: 1,
            quantizer_file: None,
            trained_vectors: 0,
            defaults: StoredDefaults::default(),
            segments: vec![],
            tombstones: vec![],
        }
    }

    /// The manifest the next commit starts from: a copy one generation on.
    /// Counters never wrap: a generation at 2^64 − 1 has no successor (a
    /// crafted manifest could claim one), and the commit is refused before
    /// anything is written.
    pub fn successor(&self) -> Result<Manifest> {
        let generation = self.generation.checked_add(1).ok_or_else(|| {
            Error::InvalidInput(
                "generations exhausted (the manifest's generation is 2^64 − 1); nothing was written".into(),
            )
        })?;
        Ok(Manifest { generation, version: FileKind::Manifest.version(), ..self.clone() })
    }

    /// Vectors stored in segments, deleted ones included.
    pub fn stored_vectors(&self) -> u64 {
        self.segments.iter().map(|s| s.vectors).sum()
    }

    /// Numbers of every file this manifest names.
    pub fn file_numbers(&self) -> std::collections::HashSet<u64> {
        self.segments
            .iter()
            .map(|s| s.file)
            .chain(self.tombstones.iter().map(|t| t.file))
            .chain(self.quantizer_file)
            .collect()
    }

    /// The names among `names` that are files of ours this manifest does
    /// not need: temporary files, other manifests, and numbered files it does
    /// not name (by name: a staged `5.seg` left beside a committed `5.qnt`
    /// is a leftover). Names the engine does not use are never leftovers.
    pub fn leftovers(&self, names: impl IntoIterator<Item = String>) -> Vec<String> {
        let live: std::collections::HashSet<(u64, &str)> = self
            .segments
            .iter()
            .map(|s| (s.file, "seg"))
            .chain(self.tombstones.iter().map(|t| (t.file, "del")))
            .chain(self.quantizer_file.map(|q| (q, "qnt")))
            .collect();
        names
            .into_iter()
            .filter(|name| {
                super::parse_manifest_temp_name(name).is_some()
                    || super::parse_manifest_name(name).is_some_and(|g| g != self.generation)
                    || super::parse_numbered_name(name).is_some_and(|n| !live.contains(&n))
            })
            .collect()
    }

    /// Stored vectors hidden by tombstones.
    pub fn deleted_vectors(&self) -> u64 {
        self.segments.iter().map(|s| s.deleted).sum()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut table = Vec::with_capacity(self.segments.len() * 32);
        for s in &self.segments {
            let e = SegmentEntry {
                file: U64::new(s.file),
                vectors: U64::new(s.vectors),
                bytes: U64::new(s.bytes),
                generation: U64::new(s.generation),
                deleted: U64::new(s.deleted),
            };
            table.extend_from_slice(e.as_bytes());
        }
        for t in &self.tombstones {
            let e = TombstoneEntry { file: U64::new(t.file), ids: U64::new(t.ids), generation: U64::new(t.generation) };
            table.extend_from_slice(e.as_bytes());
        }
        let c = &self.config;
        let h = ManifestHeader {
            file: FileHeader::new(FileKind::Manifest),
            generation: U64::new(self.generation),
            dim: U32::new(c.dim as u32),
            nlist: U32::new(c.nlist as u32),
            m: U32::new(c.m as u32),
            nbits: U32::new(c.nbits as u32),
            nprobe: U32::new(c.nprobe as u32),
            metric: U32::new(0),
            flags: U32::new(u32::from(c.refine) | (u32::from(c.auto_train) << 1) | (u32::from(c.fast_scan) << 2)),
            tombstone_count: U32::new(self.tombstones.len() as u32),
            next_id: U64::new(self.next_id),
            next_file: U64::new(self.next_file),
            quantizer_file: U64::new(self.quantizer_file.unwrap_or(0)),
            trained_vectors: U64::new(self.trained_vectors),
            segment_count: U32::new(self.segments.len() as u32),
            table_crc: U32::new(super::crc(&table)),
            candidates: U32::new(self.defaults.candidates.map_or(0, |n| n as u32)),
            emd_nprobe: U32::new(self.defaults.emd_nprobe.map_or(0, |n| n as u32)),
            emd_candidates: U32::new(self.defaults.emd_candidates.map_or(0, |n| n as u32)),
            header_crc: U32::new(0),
        };
        let mut out = Vec::with_capacity(std::mem::size_of::<ManifestHeader>() + table.len());
        write_checked_header(&h, &mut out);
        out.extend_from_slice(&table);
        out
    }

    pub fn decode(bytes: &[u8], file: &str) -> Result<Manifest> {
        let version = FileHeader::check(bytes, FileKind::Manifest, file)?;
        let (h, hs) = match version {
            1 => (read_checked_header::<ManifestHeaderV1>(bytes, file)?.upgrade(), size_of::<ManifestHeaderV1>()),
            _ => (read_checked_header::<ManifestHeader>(bytes, file)?, size_of::<ManifestHeader>()),
        };
        let count = h.segment_count.get() as usize;
        let tcount = h.tombstone_count.get() as usize;
        let table = &bytes[hs..];
        let want = count * 40 + tcount * 24;
        if table.len() != want {
            return Err(Error::corrupt(
                file,
                hs as u64,
                format!("tables hold {} bytes, {count} segments and {tcount} tombstone files need {want}", table.len()),
            ));
        }
        if super::crc(table) != h.table_crc.get() {
            return Err(Error::corrupt(file, hs as u64, "segment and tombstone tables checksum mismatch"));
        }
        let flags = h.flags.get();
        // Unknown flag bits are refused, never ignored: a flag may change how
        // other files are laid out (bit 2 does), so a build that does not
        // know a bit cannot read the index. Builds before bit 2 refused
        // `flags > 3` the same way.
        if h.metric.get() != 0 {
            return Err(Error::corrupt(file, 44, "unknown metric"));
        }
        if flags > 7 {
            return Err(Error::corrupt(
                file,
                48,
                format!("flags {flags:#x} include bits this build does not know (written by a newer build?)"),
            ));
        }
        let config = Config {
            dim: h.dim.get() as usize,
            nlist: h.nlist.get() as usize,
            m: h.m.get() as usize,
            nbits: h.nbits.get() as usize,
            nprobe: h.nprobe.get() as usize,
            metric: Metric::L2,
            refine: flags & 1 != 0,
            auto_train: flags & 2 != 0,
            fast_scan: flags & 4 != 0,
        };
        config.validate().map_err(|e| Error::corrupt(file, 24, e.to_string()))?;
        let (seg_table, tomb_table) = table.split_at(count * 40);
        let segments: Vec<SegmentMeta> = <[SegmentEntry]>::ref_from_bytes(seg_table)
            .expect("length checked, alignment 1")
            .iter()
            .map(|e| SegmentMeta {
                file: e.file.get(),
                vectors: e.vectors.get(),
                bytes: e.bytes.get(),
                generation: e.generation.get(),
                deleted: e.deleted.get(),
            })
            .collect();
        let tombstones: Vec<TombstoneMeta> = <[TombstoneEntry]>::ref_from_bytes(tomb_table)
            .expect("length checked, alignment 1")
            .iter()
            .map(|e| TombstoneMeta { file: e.file.get(), ids: e.ids.get(), generation: e.generation.get() })
            .collect();
        let next_file = h.next_file.get();
        let q = h.quantizer_file.get();
        let generation = h.generation.get();
        let mut numbers = std::collections::HashSet::new();
        let files =
            segments.iter().map(|s| (s.file, s.generation)).chain(tombstones.iter().map(|t| (t.file, t.generation)));
        for (i, (n, g)) in files.enumerate() {
            let at = (hs + if i < count { i * 40 } else { count * 40 + (i - count) * 24 }) as u64;
            if n == 0 || n >= next_file || n == q || !numbers.insert(n) {
                return Err(Error::corrupt(file, at, format!("file number {n} is out of range or listed twice")));
            }
            if i < count && segments[i].deleted > segments[i].vectors {
                return Err(Error::corrupt(file, at + 32, "more vectors deleted than stored"));
            }
            if g == 0 || g > generation {
                return Err(Error::corrupt(file, at, format!("generation {g} is above the manifest's {generation}")));
            }
        }
        if q >= next_file {
            return Err(Error::corrupt(file, 72, "quantizer file number out of range"));
        }
        let stored = |v: U32| (v.get() != 0).then_some(v.get() as usize);
        let defaults = StoredDefaults {
            candidates: stored(h.candidates),
            emd_nprobe: stored(h.emd_nprobe),
            emd_candidates: stored(h.emd_candidates),
        };
        if defaults.emd_nprobe.is_some_and(|n| n > config.nlist) {
            return Err(Error::corrupt(file, 100, "the stored EMD nprobe is above nlist"));
        }
        Ok(Manifest {
            version,
            generation,
            config,
            next_id: h.next_id.get(),
            next_file,
            quantizer_file: (q != 0).then_some(q),
            trained_vectors: h.trained_vectors.get(),
            defaults,
            segments,
            tombstones,
        })
    }
}

impl ManifestHeaderV1 {
    /// The same fields in the version-2 layout, with no search defaults.
    fn upgrade(self) -> ManifestHeader {
        ManifestHeader {
            file: self.file,
            generation: self.generation,
            dim: self.dim,
            nlist: self.nlist,
            m: self.m,
            nbits: self.nbits,
            nprobe: self.nprobe,
            metric: self.metric,
            flags: self.flags,
            tombstone_count: self.tombstone_count,
            next_id: self.next_id,
            next_file: self.next_file,
            quantizer_file: self.quantizer_file,
            trained_vectors: self.trained_vectors,
            segment_count: self.segment_count,
            table_crc: self.table_crc,
            candidates: U32::new(0),
            emd_nprobe: U32::new(0),
            emd_candidates: U32::new(0),
            header_crc: self.header_crc,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut m = Manifest::new(Config::default());
        m.generation = 7;
        m.next_id = 1000;
        m.next_file = 5;
        m.quantizer_file = Some(1);
        m.trained_vectors = 777;
        m.defaults = StoredDefaults { candidates: Some(50), emd_nprobe: Some(4), emd_candidates: None };
        m.config.refine = true;
        m.segments = vec![
            SegmentMeta { file: 2, vectors: 600, bytes: 9000, generation: 3, deleted: 12 },
            SegmentMeta { file: 4, vectors: 400, bytes: 7000, generation: 6, deleted: 0 },
        ];
        m
    }

    #[test]
    fn round_trips() {
        let m = sample();
        assert_eq!(size_of::<ManifestHeader>(), 112);
        assert_eq!(size_of::<ManifestHeaderV1>(), 100);
        assert_eq!(Manifest::decode(&m.encode(), "M").unwrap(), m);
    }

    /// A version-1 manifest (the same fields, no defaults, 100-byte header)
    /// decodes to the same manifest with the defaults unset.
    #[test]
    fn version_1_is_read() {
        let mut m = sample();
        m.defaults = StoredDefaults::default();
        let b = m.encode();
        m.version = 1;
        // Version 1's header is version 2's first 96 bytes, then its CRC.
        let mut c = b[..96].to_vec();
        c[12] = 1;
        c.extend_from_slice(&super::super::crc(&c).to_le_bytes());
        c.extend_from_slice(&b[112..]);
        assert_eq!(Manifest::decode(&c, "M").unwrap(), m);
        // A version-1 header followed by version 2's extra bytes is refused
        // (the tables would not add up).
        let mut c2 = c[..100].to_vec();
        c2.extend_from_slice(&b[100..]);
        assert!(Manifest::decode(&c2, "M").is_err());
    }

    /// A stored EMD nprobe above nlist, with valid checksums, is refused.
    #[test]
    fn an_emd_nprobe_above_nlist_is_refused() {
        let m = sample();
        let b = m.encode();
        let mut h = ManifestHeader::read_from_prefix(&b).unwrap().0;
        h.emd_nprobe = U32::new(m.config.nlist as u32 + 1);
        let mut c = Vec::new();
        write_checked_header(&h, &mut c);
        c.extend_from_slice(&b[112..]);
        let e = Manifest::decode(&c, "M").unwrap_err().to_string();
        assert!(e.contains("EMD nprobe is above nlist"), "{e}");
        h.emd_nprobe = U32::new(m.config.nlist as u32);
        let mut c = Vec::new();
        write_checked_header(&h, &mut c);
        c.extend_from_slice(&b[112..]);
        assert_eq!(Manifest::decode(&c, "M").unwrap().defaults.emd_nprobe, Some(m.config.nlist));
    }

    #[test]
    fn fast_scan_flag_round_trips_and_unknown_flags_are_refused() {
        let mut m = sample();
        m.config.nbits = 4;
        m.config.fast_scan = true;
        let b = m.encode();
        assert_eq!(u32::from_le_bytes(b[48..52].try_into().unwrap()), 1 | 4);
        assert_eq!(Manifest::decode(&b, "M").unwrap(), m);
        // A bit this build does not know, with valid checksums: refused.
        let mut h = ManifestHeader::read_from_prefix(&b).unwrap().0;
        h.flags = U32::new(8 | 4 | 1);
        let mut c = Vec::new();
        write_checked_header(&h, &mut c);
        c.extend_from_slice(&b[112..]);
        let e = Manifest::decode(&c, "M").unwrap_err().to_string();
        assert!(e.contains("bits this build does not know"), "{e}");
        // The fast-scan bit with nbits other than 4 is an invalid shape.
        h.flags = U32::new(4);
        h.nbits = U32::new(8);
        let mut c = Vec::new();
        write_checked_header(&h, &mut c);
        c.extend_from_slice(&b[112..]);
        assert!(Manifest::decode(&c, "M").unwrap_err().to_string().contains("fast_scan needs nbits 4"));
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let b = sample().encode();
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x10;
            assert!(Manifest::decode(&c, "M").is_err(), "flip at byte {i} not caught");
        }
    }

    #[test]
    fn truncation_is_caught() {
        let b = sample().encode();
        for n in 0..b.len() {
            assert!(Manifest::decode(&b[..n], "M").is_err());
        }
    }
}
