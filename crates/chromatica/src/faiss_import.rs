//! Reading a faiss `IndexIVFPQ` file (written by `faiss.write_index`) and
//! turning it into a Chromatica index without re-training or re-encoding:
//! the coarse centroids, the PQ codebooks, every list's codes and every id
//! are taken as they are. faiss packs PQ codes as Chromatica does (sub-code
//! j in bits j·nbits.., least significant bit first), and its residual
//! encoding and distance are Chromatica's, so search gives faiss's
//! neighbours and distances.
//!
//! # Byte layout
//!
//! faiss writes the fields of each C++ object in order, little-endian, with
//! no padding: `i32`/`i64`/`u64` are 4/8/8 bytes, `bool` and `char` 1 byte,
//! an enum 4 bytes; a *vector* is a `u64` element count followed by the
//! elements. A class is announced by a four-character code (fourcc). What
//! an `IndexIVFPQ` file holds (faiss `impl/index_write.cpp`, `write_index`,
//! `write_ivf_header`, `write_InvertedLists`):
//!
//! ```text
//! fourcc "IwPQ"                              IndexIVFPQ ("IwQR" is IndexIVFPQR: refused)
//! index header:
//!   i32 d, i64 ntotal, i64 dummy, i64 dummy  (dummies are 1 << 20)
//!   bool is_trained, i32 metric_type         (1 = METRIC_L2)
//!   f32 metric_arg                           only when metric_type > 1
//! u64 nlist, u64 nprobe
//! coarse quantizer, itself an index:
//!   fourcc "IxF2"                            IndexFlatL2 (anything else is refused)
//!   index header (as above; its ntotal is nlist)
//!   u64 count, count × f32                   the nlist × d centroids (count = nlist·d)
//! direct map:
//!   char type                                0 none, 1 array, 2 hashtable
//!   u64 count, count × i64                   array: one entry per vector
//!   u64 count, count × (i64, i64)            hashtable only: id → position pairs
//! bool by_residual                           must be true
//! u64 code_size                              = ceil(M·nbits / 8)
//! product quantizer:
//!   u64 d, u64 M, u64 nbits
//!   u64 count, count × f32                   centroids, M × 2^nbits × (d/M)
//! inverted lists:
//!   fourcc "ilar"                            ArrayInvertedLists ("il00": none stored)
//!   u64 nlist, u64 code_size
//!   fourcc "full": u64 count (= nlist), count × u64 list sizes
//!     or "sprs":   u64 count (even), count/2 × (u64 list, u64 size), non-empty lists only
//!   then for each non-empty list, in list order:
//!     size × code_size bytes                 the codes
//!     size × i64                             the ids
//! ```
//!
//! Nothing follows the lists. The direct map only mirrors the lists, so it
//! is checked for size and skipped. faiss does not store the table
//! `precompute_table` makes; Chromatica computes its own (term 2).
//!
//! Every count is checked against the bytes that remain before anything is
//! allocated, so a hostile file costs at most about its own size in memory
//! (plus the term-2 table of at most [`MAX_TABLE_BYTES`], built only on
//! import), and any damage is a one-line error naming the byte offset.

use crate::config::{Config, Metric};
use crate::error::{Error, Result};
use crate::index::{Encoded, Index};
use crate::quantizer::Quantizers;
use std::collections::HashMap;
use std::path::Path;

/// The largest term-2 table (nlist × M × 2^nbits floats) an import builds:
/// faiss's own default limit for its precomputed table
/// (`precomputed_table_max_bytes`). Beyond it, faiss computes the table per
/// query; Chromatica always stores it, so such an index is refused.
pub const MAX_TABLE_BYTES: u64 = 2 << 30;

/// How the file gave the list sizes (faiss picks "full" when more than half
/// of the lists are non-empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeEncoding {
    /// One size per list.
    Full,
    /// Only the non-empty lists, as (list, size) pairs.
    Sparse,
}

/// faiss's direct map (id → position), which the file may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectMap {
    /// No id look-up table.
    None,
    /// An id → position array.
    Array,
    /// An id → position hash table.
    Hashtable,
}

/// Everything an `IndexIVFPQ` file holds that Chromatica keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct FaissIvfPq {
    /// Vector dimension.
    pub dim: usize,
    /// Inverted lists.
    pub nlist: usize,
    /// Sub-quantizers per vector.
    pub m: usize,
    /// Bits per sub-quantizer code.
    pub nbits: usize,
    /// faiss's `nprobe` when the file was written.
    pub nprobe: usize,
    /// nlist × dim.
    pub coarse: Vec<f32>,
    /// m × 2^nbits × (dim / m), faiss's layout and ours.
    pub codebooks: Vec<f32>,
    /// Vectors in each list.
    pub list_sizes: Vec<usize>,
    /// code_size bytes per vector, list after list, as faiss stores them.
    pub codes: Vec<u8>,
    /// One per vector, in the order of `codes`.
    pub ids: Vec<u64>,
    /// How the file stored the list sizes.
    pub sizes: SizeEncoding,
    /// The direct map the file carried (dropped on import).
    pub direct_map: DirectMap,
}

impl FaissIvfPq {
    /// Reads and checks the file at `path`.
    pub fn read(path: &Path) -> Result<FaissIvfPq> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        FaissIvfPq::parse(&bytes, path)
    }

    /// Parses an `IndexIVFPQ` file's bytes; `path` names it in errors.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<FaissIvfPq> {
        parse(&mut Reader { b: bytes, pos: 0 }).map_err(|what| Error::bad_file(path, what))
    }

    /// The shape of the Chromatica index: faiss's, with its nprobe brought
    /// into 1..=nlist.
    pub fn config(&self) -> Config {
        Config {
            dim: self.dim,
            nlist: self.nlist,
            m: self.m,
            nbits: self.nbits,
            nprobe: self.nprobe.clamp(1, self.nlist),
            metric: Metric::L2,
            refine: false,
            auto_train: false,
            fast_scan: false,
        }
    }

    /// Bytes per PQ code: `ceil(m × nbits / 8)`.
    pub fn code_size(&self) -> usize {
        (self.m * self.nbits).div_ceil(8)
    }

    /// The inverted list of each vector, in the order of `ids`.
    pub fn lists(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.ids.len());
        for (l, &n) in self.list_sizes.iter().enumerate() {
            out.extend(std::iter::repeat_n(l as u32, n));
        }
        out
    }

    /// The quantizers (term 2 computed here) and the encoded vectors.
    pub(crate) fn into_parts(self) -> Result<(Quantizers, Encoded)> {
        let lists = self.lists();
        let config = self.config();
        let q = Quantizers::from_parts(&config, self.coarse, self.codebooks, 0, 0)?;
        Ok((q, Encoded { lists, codes: self.codes, ids: self.ids }))
    }
}

/// What [`import`] did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ImportReport {
    /// The configuration the new index got from the faiss file.
    pub config: Config,
    /// Vectors imported.
    pub vectors: usize,
    /// How the faiss file stored its list sizes.
    pub sizes: SizeEncoding,
    /// The direct map the faiss file carried (not imported).
    pub direct_map: DirectMap,
}

/// Imports the `IndexIVFPQ` file `file` as a new index in `dir`, which must
/// not exist or be an empty directory. A file that cannot be imported is
/// refused before anything is written. The directory is checked here, before
/// the (possibly long) parse, and again with the writer lock held when the
/// index is created: if another process created
/// an index there meanwhile, the import fails and removes nothing of it; if
/// writing fails, only what this import wrote is removed.
pub fn import(file: &Path, dir: &Path) -> Result<(Index, ImportReport)> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => {
            return Err(Error::invalid_argument("dir", format!("{}: exists and is not a directory", dir.display())));
        }
        Ok(_) => {
            if std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.next().is_some() {
                return Err(Error::DirectoryNotEmpty(dir.to_owned()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(dir, e)),
    }
    let faiss = FaissIvfPq::read(file)?;
    let report = ImportReport {
        config: faiss.config(),
        vectors: faiss.ids.len(),
        sizes: faiss.sizes,
        direct_map: faiss.direct_map,
    };
    let (q, encoded) = faiss.into_parts().map_err(|e| Error::bad_file(file, e.to_string()))?;
    Ok((Index::create_encoded(dir, q, encoded)?, report))
}

/// A cursor over the file; every read checks that the bytes are there.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

type Parse<T> = std::result::Result<T, String>;

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Parse<&'a [u8]> {
        if self.remaining() < n {
            return Err(format!("truncated at byte {}: {what} needs {n} bytes, {} remain", self.pos, self.remaining()));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Parse<[u8; N]> {
        Ok(self.take(N, what)?.try_into().expect("take returns N bytes"))
    }

    fn i32(&mut self, what: &str) -> Parse<i32> {
        self.array(what).map(i32::from_le_bytes)
    }

    fn i64(&mut self, what: &str) -> Parse<i64> {
        self.array(what).map(i64::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Parse<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    fn bool(&mut self, what: &str) -> Parse<bool> {
        let at = self.pos;
        match self.array::<1>(what)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(format!("{what} at byte {at} is {v}, not a bool (0 or 1)")),
        }
    }

    fn fourcc(&mut self, what: &str) -> Parse<[u8; 4]> {
        self.array(what)
    }

    /// A `u64` that must equal `want`.
    fn expect_u64(&mut self, want: u64, what: &str) -> Parse<()> {
        let at = self.pos;
        let v = self.u64(what)?;
        if v != want {
            return Err(format!("{what} at byte {at} is {v}, expected {want}"));
        }
        Ok(())
    }

    /// A vector's element count, checked against the remaining bytes for
    /// elements of `elem` bytes, before anything is allocated for it.
    fn count(&mut self, elem: usize, what: &str) -> Parse<usize> {
        let at = self.pos;
        let n = self.u64(&format!("the length of {what}"))?;
        match n.checked_mul(elem as u64) {
            Some(bytes) if bytes <= self.remaining() as u64 => Ok(n as usize),
            _ => Err(format!(
                "{what} at byte {at} claims {n} elements of {elem} bytes, more than the {} bytes that remain",
                self.remaining()
            )),
        }
    }

    fn f32s(&mut self, n: usize, what: &str) -> Parse<Vec<f32>> {
        let at = self.pos;
        let bytes = self.take(n.checked_mul(4).ok_or_else(|| format!("{what}: {n} floats overflow"))?, what)?;
        let v: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(format!("{what}: value {i} (byte {}) is {}, not finite", at + 4 * i, v[i]));
        }
        Ok(v)
    }
}

/// faiss's fourcc as text: printable ASCII as is, other bytes escaped.
fn show(code: [u8; 4]) -> String {
    code.iter()
        .map(|&b| if b.is_ascii_graphic() || b == b' ' { (b as char).to_string() } else { format!("\\x{b:02x}") })
        .collect()
}

/// The faiss class a fourcc stands for (faiss `index_write.cpp`; legacy
/// codes from `index_read.cpp`).
fn class_of(code: [u8; 4]) -> &'static str {
    match &code {
        b"IxF2" => "IndexFlatL2",
        b"IxFI" => "IndexFlatIP",
        b"IxFl" => "IndexFlat",
        b"IxHe" => "IndexLSH",
        b"IxPq" => "IndexPQ",
        b"IxPo" => "IndexPQ, legacy format",
        b"IxRq" | b"IxRQ" => "IndexResidualQuantizer",
        b"IxLS" => "IndexLocalSearchQuantizer",
        b"IxPR" => "IndexProductResidualQuantizer",
        b"IxPL" => "IndexProductLocalSearchQuantizer",
        b"ILfs" | b"IRfs" | b"IPLf" | b"IPRf" => "an additive-quantizer fast-scan index",
        b"IVLf" | b"IVRf" | b"NPLf" | b"NPRf" => "an IVF additive-quantizer fast-scan index",
        b"ImRQ" => "ResidualCoarseQuantizer",
        b"Ix2L" => "Index2Layer",
        b"IxSQ" | b"IxSq" => "IndexScalarQuantizer",
        b"IxLa" => "IndexLattice",
        b"IwFd" => "IndexIVFFlatDedup",
        b"IwFl" => "IndexIVFFlat",
        b"IvFl" | b"IvFL" => "IndexIVFFlat, legacy format",
        b"IwSq" | b"IwSQ" => "IndexIVFScalarQuantizer",
        b"IvSQ" => "IndexIVFScalarQuantizer, legacy format",
        b"IwLS" => "IndexIVFLocalSearchQuantizer",
        b"IwRQ" => "IndexIVFResidualQuantizer",
        b"IwPL" => "IndexIVFProductLocalSearchQuantizer",
        b"IwPR" => "IndexIVFProductResidualQuantizer",
        b"IwSh" => "IndexIVFSpectralHash",
        b"IwPQ" => "IndexIVFPQ",
        b"IvPQ" => "IndexIVFPQ, legacy format",
        b"IwQR" => "IndexIVFPQR",
        b"IvQR" => "IndexIVFPQR, legacy format",
        b"IwIQ" => "IndexIVFIndependentQuantizer",
        b"IxPT" => "IndexPreTransform",
        b"Imiq" => "MultiIndexQuantizer",
        b"IxRF" => "IndexRefine",
        b"IxMp" => "IndexIDMap",
        b"IxM2" => "IndexIDMap2",
        b"IHNf" => "IndexHNSWFlat",
        b"IHNp" => "IndexHNSWPQ",
        b"IHNs" => "IndexHNSWSQ",
        b"IHN2" => "IndexHNSW2Level",
        b"IHc2" | b"IHNc" => "IndexHNSWCagra",
        b"INSf" => "IndexNSGFlat",
        b"INSp" => "IndexNSGPQ",
        b"INSs" => "IndexNSGSQ",
        b"INNf" => "IndexNNDescentFlat",
        b"IPfs" => "IndexPQFastScan",
        b"IwPf" => "IndexIVFPQFastScan",
        b"IRMf" | b"IRMh" => "IndexRowwiseMinMax",
        b"Ixrq" => "IndexRaBitQ",
        b"Iwrq" => "IndexIVFRaBitQ",
        b"IBxF" | b"IBwF" | b"IBFf" | b"IBHc" | b"IBHf" | b"IBM2" | b"IBMp" | b"IBHh" | b"IBHm" => {
            "a binary index (faiss.write_index_binary)"
        }
        b"null" => "no index",
        _ => "not a known faiss index type",
    }
}

fn metric_name(m: i32) -> String {
    let name = match m {
        0 => "METRIC_INNER_PRODUCT",
        1 => "METRIC_L2",
        2 => "METRIC_L1",
        3 => "METRIC_Linf",
        4 => "METRIC_Lp",
        20 => "METRIC_Canberra",
        21 => "METRIC_BrayCurtis",
        22 => "METRIC_JensenShannon",
        23 => "METRIC_Jaccard",
        24 => "METRIC_NaNEuclidean",
        25 => "METRIC_GOWER",
        _ => return format!("metric {m}"),
    };
    format!("{name} ({m})")
}

/// An index header (faiss `write_index_header`): returns (d, ntotal).
fn header(r: &mut Reader, what: &str) -> Parse<(usize, u64)> {
    let at = r.pos;
    let d = r.i32(&format!("{what}: d"))?;
    if d <= 0 {
        return Err(format!("{what}: dimension d at byte {at} is {d}"));
    }
    let at = r.pos;
    let ntotal = r.i64(&format!("{what}: ntotal"))?;
    if ntotal < 0 {
        return Err(format!("{what}: ntotal at byte {at} is {ntotal}"));
    }
    r.take(16, &format!("{what}: reserved fields"))?;
    let trained = r.bool(&format!("{what}: is_trained"))?;
    let metric = r.i32(&format!("{what}: metric_type"))?;
    if metric > 1 {
        r.take(4, &format!("{what}: metric_arg"))?;
    }
    if metric != 1 {
        return Err(format!("{what} uses {}; only METRIC_L2 (1) can be imported", metric_name(metric)));
    }
    if !trained {
        return Err(format!("{what} is not trained"));
    }
    Ok((d as usize, ntotal as u64))
}

fn parse(r: &mut Reader) -> Parse<FaissIvfPq> {
    if r.b.is_empty() {
        return Err("empty file, not a faiss index".into());
    }
    let code = r.fourcc("the index type (fourcc)")?;
    if &code != b"IwPQ" {
        return Err(format!("not an IndexIVFPQ: found fourcc \"{}\" ({})", show(code), class_of(code)));
    }
    let (dim, ntotal) = header(r, "the index")?;
    let at = r.pos;
    let nlist = r.u64("nlist")?;
    if nlist == 0 || nlist > 1 << 20 {
        return Err(format!("nlist at byte {at} is {nlist}; chromatica takes 1 to 1048576 lists"));
    }
    let nlist = nlist as usize;
    let nprobe = r.u64("nprobe")?.min(nlist as u64) as usize;

    // The coarse quantizer.
    let code = r.fourcc("the coarse quantizer type (fourcc)")?;
    if &code != b"IxF2" {
        return Err(format!(
            "the coarse quantizer is not an IndexFlatL2: found fourcc \"{}\" ({})",
            show(code),
            class_of(code)
        ));
    }
    let (qd, qn) = header(r, "the coarse quantizer")?;
    if qd != dim || qn != nlist as u64 {
        return Err(format!(
            "the coarse quantizer holds {qn} centroids of dimension {qd}, the index has nlist {nlist} and d {dim}"
        ));
    }
    let at = r.pos;
    let n = r.count(4, "the coarse centroids")?;
    if n as u64 != nlist as u64 * dim as u64 {
        return Err(format!("the coarse centroids at byte {at} are {n} floats, expected nlist × d = {}", nlist * dim));
    }
    let coarse = r.f32s(n, "the coarse centroids")?;

    // The direct map: redundant with the lists, so only checked for size.
    let at = r.pos;
    let direct_map = match r.array::<1>("the direct map type")?[0] {
        0 => DirectMap::None,
        1 => DirectMap::Array,
        2 => DirectMap::Hashtable,
        t => return Err(format!("the direct map type at byte {at} is {t}, not 0, 1 or 2")),
    };
    let at = r.pos;
    let n = r.count(8, "the direct map array")?;
    let want = if direct_map == DirectMap::Array { ntotal } else { 0 };
    if n as u64 != want {
        return Err(format!("the direct map array at byte {at} has {n} entries, expected {want}"));
    }
    r.take(n * 8, "the direct map array")?;
    if direct_map == DirectMap::Hashtable {
        let at = r.pos;
        let n = r.count(16, "the direct map hashtable")?;
        if n as u64 != ntotal {
            return Err(format!("the direct map hashtable at byte {at} has {n} entries, expected ntotal = {ntotal}"));
        }
        r.take(n * 16, "the direct map hashtable")?;
    }

    if !r.bool("by_residual")? {
        return Err("by_residual is false (the codes encode vectors, not their residuals from the list centroid); \
                    only residual encoding can be imported"
            .into());
    }
    let at = r.pos;
    let code_size = r.u64("code_size")?;

    // The product quantizer.
    r.expect_u64(dim as u64, "the product quantizer's d")?;
    let at_m = r.pos;
    let m = r.u64("the product quantizer's M")?;
    if m == 0 || m > dim as u64 || !(dim as u64).is_multiple_of(m) {
        return Err(format!("the product quantizer's M at byte {at_m} is {m}, which does not divide d = {dim}"));
    }
    let m = m as usize;
    let at_nbits = r.pos;
    let nbits = r.u64("the product quantizer's nbits")?;
    if !(1..=16).contains(&nbits) {
        return Err(format!("nbits at byte {at_nbits} is {nbits}; chromatica takes 1 to 16 bits per sub-code"));
    }
    let nbits = nbits as usize;
    let cs = (m * nbits).div_ceil(8);
    if code_size != cs as u64 {
        return Err(format!("code_size at byte {at} is {code_size}, expected ceil(M × nbits / 8) = {cs}"));
    }
    let config = Config {
        dim,
        nlist,
        m,
        nbits,
        nprobe: 1,
        metric: Metric::L2,
        refine: false,
        auto_train: false,
        fast_scan: false,
    };
    config.validate().map_err(|e| format!("cannot be represented: {e}"))?;
    let table = nlist as u64 * m as u64 * (4u64 << nbits);
    if table > MAX_TABLE_BYTES {
        return Err(format!(
            "the term-2 table (nlist × M × 2^nbits floats) would take {table} bytes, more than the {MAX_TABLE_BYTES} \
             chromatica builds"
        ));
    }
    let at = r.pos;
    let n = r.count(4, "the PQ centroids")?;
    if n as u64 != (dim as u64) << nbits {
        return Err(format!("the PQ centroids at byte {at} are {n} floats, expected d × 2^nbits = {}", dim << nbits));
    }
    let codebooks = r.f32s(n, "the PQ centroids")?;

    // The inverted lists.
    let code = r.fourcc("the inverted lists type (fourcc)")?;
    match &code {
        b"ilar" => {}
        b"il00" => return Err("the file holds no inverted lists (written without them)".into()),
        _ => {
            return Err(format!(
            "inverted lists of fourcc \"{}\" cannot be imported (only faiss's in-memory ArrayInvertedLists, \"ilar\")",
            show(code)
        ))
        }
    }
    r.expect_u64(nlist as u64, "the inverted lists' nlist")?;
    r.expect_u64(cs as u64, "the inverted lists' code_size")?;
    let at = r.pos;
    let kind = r.fourcc("the list sizes type (fourcc)")?;
    let mut list_sizes = vec![0u64; nlist];
    let sizes = match &kind {
        b"full" => {
            let at = r.pos;
            let n = r.count(8, "the list sizes")?;
            if n != nlist {
                return Err(format!("the list sizes at byte {at} are {n}, expected nlist = {nlist}"));
            }
            for s in list_sizes.iter_mut() {
                *s = r.u64("a list size")?;
            }
            SizeEncoding::Full
        }
        b"sprs" => {
            let at = r.pos;
            let n = r.count(8, "the sparse list sizes")?;
            if n % 2 != 0 {
                return Err(format!("the sparse list sizes at byte {at} hold {n} values, not (list, size) pairs"));
            }
            let mut seen = vec![false; nlist];
            for _ in 0..n / 2 {
                let at = r.pos;
                let l = r.u64("a list number")?;
                let size = r.u64("a list size")?;
                if l >= nlist as u64 {
                    return Err(format!("list {l} at byte {at} is beyond nlist = {nlist}"));
                }
                if std::mem::replace(&mut seen[l as usize], true) {
                    return Err(format!("list {l} appears twice in the sparse list sizes (byte {at})"));
                }
                list_sizes[l as usize] = size;
            }
            SizeEncoding::Sparse
        }
        _ => {
            return Err(format!(
                "unknown list sizes type \"{}\" at byte {at} (expected \"full\" or \"sprs\")",
                show(kind)
            ))
        }
    };
    // Every size is checked against the bytes left before any is used.
    let mut total = 0u64;
    for (l, &s) in list_sizes.iter().enumerate() {
        if s > u32::MAX as u64 {
            return Err(format!("list {l} claims {s} vectors, more than a list can hold"));
        }
        total = total.checked_add(s).ok_or("the list sizes overflow")?;
    }
    if total != ntotal {
        return Err(format!("the lists hold {total} vectors, the index header says ntotal = {ntotal}"));
    }
    let need = total.checked_mul(cs as u64 + 8).ok_or("the list sizes overflow")?;
    if need > r.remaining() as u64 {
        return Err(format!(
            "truncated at byte {}: the lists' codes and ids need {need} bytes, {} remain",
            r.pos,
            r.remaining()
        ));
    }
    let total = total as usize;
    let mut codes = Vec::with_capacity(total * cs);
    let mut ids = Vec::with_capacity(total);
    let mut first_seen: HashMap<u64, usize> = HashMap::with_capacity(total);
    for (l, &size) in list_sizes.iter().enumerate() {
        let size = size as usize;
        if size == 0 {
            continue;
        }
        codes.extend_from_slice(r.take(size * cs, "a list's codes")?);
        let at = r.pos;
        let raw = r.take(size * 8, "a list's ids")?;
        for (row, c) in raw.chunks_exact(8).enumerate() {
            let id = i64::from_le_bytes(c.try_into().expect("8 bytes"));
            if id < 0 {
                return Err(format!(
                    "id {id} (list {l}, row {row}, byte {}) is negative; chromatica ids are unsigned",
                    at + 8 * row
                ));
            }
            if let Some(other) = first_seen.insert(id as u64, l) {
                return Err(format!("id {id} appears twice (lists {other} and {l}); chromatica ids are unique"));
            }
            ids.push(id as u64);
        }
    }
    if r.remaining() > 0 {
        return Err(format!("{} unexpected bytes after the inverted lists, from byte {}", r.remaining(), r.pos));
    }
    Ok(FaissIvfPq {
        dim,
        nlist,
        m,
        nbits,
        nprobe,
        coarse,
        codebooks,
        list_sizes: list_sizes.into_iter().map(|s| s as usize).collect(),
        codes,
        ids,
        sizes,
        direct_map,
    })
}
