//! The trained quantizers: coarse centroids, PQ codebooks, and the
//! precomputed per-list term table used by search (see `crate::ivfpq`).

use super::{
    align_up, bytes_to_f32s, check_crc, check_layout, crc, f32s_to_bytes, pad, read_checked_header, section,
    write_checked_header, FileHeader, FileKind,
};
use crate::error::{Error, Result};
use serde::Serialize;
use std::mem::size_of;
use zerocopy::byteorder::little_endian::{F64, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Fixed part of a quantizer file, version 2 (128 bytes): version 1's
/// fields, then the training baseline. The first section still starts at
/// byte 128 (version 1's 88 rounded up to 64), so sections lie where they
/// did.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
pub struct QuantizerHeader {
    pub file: FileHeader,
    pub dim: U32,
    pub nlist: U32,
    pub m: U32,
    pub nbits: U32,
    pub train_points: U64,
    pub seed: U64,
    pub coarse_offset: U64,
    pub coarse_crc: U32,
    pub codebooks_offset: U64,
    pub codebooks_crc: U32,
    pub table_offset: U64,
    pub table_crc: U32,
    /// Training points the baseline was measured on; 0: no baseline (the
    /// quantizers were imported), and the four values are 0.
    pub baseline_points: U64,
    pub baseline_coarse_error: F64,
    pub baseline_reconstruction_error: F64,
    pub baseline_mean_norm: F64,
    pub baseline_imbalance: F64,
    pub header_crc: U32,
}

/// Fixed part of a quantizer file, version 1 (88 bytes), still read.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
pub struct QuantizerHeaderV1 {
    pub file: FileHeader,
    pub dim: U32,
    pub nlist: U32,
    pub m: U32,
    pub nbits: U32,
    pub train_points: U64,
    pub seed: U64,
    pub coarse_offset: U64,
    pub coarse_crc: U32,
    pub codebooks_offset: U64,
    pub codebooks_crc: U32,
    pub table_offset: U64,
    pub table_crc: U32,
    pub header_crc: U32,
}

/// How well the quantizers fitted their training points, measured when
/// they were trained and stored with them (quantizer file version 2), so
/// that [`Index::health`](crate::Index::health) can tell how far the same
/// numbers on today's vectors have drifted. Errors are means over the
/// training points, as faiss reports them.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
#[non_exhaustive]
pub struct TrainBaseline {
    /// Training points measured.
    pub points: u64,
    /// Mean ‖x − nearest centroid‖².
    pub coarse_error: f64,
    /// Mean ‖x − decode(encode(x))‖².
    pub reconstruction_error: f64,
    /// Mean ‖x‖², to put the errors in proportion.
    pub mean_norm: f64,
    /// The imbalance factor nlist·Σn²/(Σn)² of the training points' lists.
    pub imbalance: f64,
}

/// The contents of a quantizer file, as plain arrays.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizerData {
    pub dim: usize,
    pub nlist: usize,
    pub m: usize,
    pub nbits: usize,
    pub train_points: u64,
    pub seed: u64,
    /// nlist × dim.
    pub coarse: Vec<f32>,
    /// m × 2^nbits × (dim / m).
    pub codebooks: Vec<f32>,
    /// nlist × m × 2^nbits: ‖q_jk‖² + 2⟨c_l,j, q_jk⟩.
    pub table: Vec<f32>,
    /// Measured at training; `None` for imported quantizers and version-1
    /// files.
    pub baseline: Option<TrainBaseline>,
}

impl QuantizerData {
    fn lens(dim: usize, nlist: usize, m: usize, nbits: usize) -> (usize, usize, usize) {
        let ksub = 1usize << nbits;
        (nlist * dim * 4, ksub * dim * 4, nlist * m * ksub * 4)
    }

    pub fn encode(&self) -> Vec<u8> {
        let (cl, bl, _) = Self::lens(self.dim, self.nlist, self.m, self.nbits);
        let hs = std::mem::size_of::<QuantizerHeader>();
        let coarse_off = align_up(hs);
        let books_off = align_up(coarse_off + cl);
        let table_off = align_up(books_off + bl);
        let mut body = Vec::new();
        let mut sections = [(0u32, 0usize); 3];
        for (i, (arr, off)) in
            [(&self.coarse, coarse_off), (&self.codebooks, books_off), (&self.table, table_off)].into_iter().enumerate()
        {
            body.resize(off - coarse_off, 0);
            let start = body.len();
            f32s_to_bytes(arr, &mut body);
            sections[i] = (crc(&body[start..]), off);
        }
        let h = QuantizerHeader {
            file: FileHeader::new(FileKind::Quantizers),
            dim: U32::new(self.dim as u32),
            nlist: U32::new(self.nlist as u32),
            m: U32::new(self.m as u32),
            nbits: U32::new(self.nbits as u32),
            train_points: U64::new(self.train_points),
            seed: U64::new(self.seed),
            coarse_offset: U64::new(sections[0].1 as u64),
            coarse_crc: U32::new(sections[0].0),
            codebooks_offset: U64::new(sections[1].1 as u64),
            codebooks_crc: U32::new(sections[1].0),
            table_offset: U64::new(sections[2].1 as u64),
            table_crc: U32::new(sections[2].0),
            baseline_points: U64::new(self.baseline.map_or(0, |b| b.points)),
            baseline_coarse_error: F64::new(self.baseline.map_or(0.0, |b| b.coarse_error)),
            baseline_reconstruction_error: F64::new(self.baseline.map_or(0.0, |b| b.reconstruction_error)),
            baseline_mean_norm: F64::new(self.baseline.map_or(0.0, |b| b.mean_norm)),
            baseline_imbalance: F64::new(self.baseline.map_or(0.0, |b| b.imbalance)),
            header_crc: U32::new(0),
        };
        let mut out = Vec::with_capacity(coarse_off + body.len());
        write_checked_header(&h, &mut out);
        pad(&mut out);
        out.extend_from_slice(&body);
        out
    }

    /// Decodes and checks every checksum. `expect` is (dim, nlist, m, nbits)
    /// from the manifest: a quantizer file of another shape is corrupt.
    pub fn decode(bytes: &[u8], file: &str, expect: (usize, usize, usize, usize)) -> Result<QuantizerData> {
        let (h, hs) = match FileHeader::check(bytes, FileKind::Quantizers, file)? {
            1 => (read_checked_header::<QuantizerHeaderV1>(bytes, file)?.upgrade(), size_of::<QuantizerHeaderV1>()),
            _ => (read_checked_header::<QuantizerHeader>(bytes, file)?, size_of::<QuantizerHeader>()),
        };
        let baseline = baseline_of(&h, file)?;
        let shape = (h.dim.get() as usize, h.nlist.get() as usize, h.m.get() as usize, h.nbits.get() as usize);
        if shape != expect {
            return Err(Error::corrupt(
                file,
                16,
                format!("quantizer shape (dim, nlist, m, nbits) = {shape:?}, manifest says {expect:?}"),
            ));
        }
        let (dim, nlist, m, nbits) = shape;
        let (cl, bl, tl) = Self::lens(dim, nlist, m, nbits);
        let c = section(bytes, h.coarse_offset.get(), cl as u64, file, "coarse centroids")?;
        let b = section(bytes, h.codebooks_offset.get(), bl as u64, file, "PQ codebooks")?;
        let t = section(bytes, h.table_offset.get(), tl as u64, file, "precomputed table")?;
        check_crc(bytes, c.clone(), h.coarse_crc.get(), file, "coarse centroids")?;
        check_crc(bytes, b.clone(), h.codebooks_crc.get(), file, "PQ codebooks")?;
        check_crc(bytes, t.clone(), h.table_crc.get(), file, "precomputed table")?;
        check_layout(bytes, hs, &[c.clone(), b.clone(), t.clone()], file)?;
        let data = QuantizerData {
            dim,
            nlist,
            m,
            nbits,
            train_points: h.train_points.get(),
            seed: h.seed.get(),
            coarse: bytes_to_f32s(&bytes[c]),
            codebooks: bytes_to_f32s(&bytes[b]),
            table: bytes_to_f32s(&bytes[t]),
            baseline,
        };
        if let Some(i) = data.coarse.iter().chain(&data.codebooks).chain(&data.table).position(|x| !x.is_finite()) {
            return Err(Error::corrupt(file, 0, format!("non-finite value at float {i} of the quantizers")));
        }
        Ok(data)
    }
}

/// The baseline a header stores: none when it names no points (then every
/// value is 0), else finite, non-negative values (an imbalance ≥ 1).
fn baseline_of(h: &QuantizerHeader, file: &str) -> Result<Option<TrainBaseline>> {
    let b = TrainBaseline {
        points: h.baseline_points.get(),
        coarse_error: h.baseline_coarse_error.get(),
        reconstruction_error: h.baseline_reconstruction_error.get(),
        mean_norm: h.baseline_mean_norm.get(),
        imbalance: h.baseline_imbalance.get(),
    };
    let values = [b.coarse_error, b.reconstruction_error, b.mean_norm, b.imbalance];
    let at = std::mem::offset_of!(QuantizerHeader, baseline_points) as u64;
    if b.points == 0 {
        return match values.iter().all(|&v| v.to_bits() == 0) {
            true => Ok(None),
            false => Err(Error::corrupt(file, at, "training baseline values without baseline points")),
        };
    }
    if values.iter().any(|v| !v.is_finite() || *v < 0.0) || b.imbalance < 1.0 {
        return Err(Error::corrupt(file, at, "training baseline values are not finite non-negative numbers"));
    }
    Ok(Some(b))
}

impl QuantizerHeaderV1 {
    /// The same fields in the version-2 layout, with no baseline.
    fn upgrade(self) -> QuantizerHeader {
        QuantizerHeader {
            file: self.file,
            dim: self.dim,
            nlist: self.nlist,
            m: self.m,
            nbits: self.nbits,
            train_points: self.train_points,
            seed: self.seed,
            coarse_offset: self.coarse_offset,
            coarse_crc: self.coarse_crc,
            codebooks_offset: self.codebooks_offset,
            codebooks_crc: self.codebooks_crc,
            table_offset: self.table_offset,
            table_crc: self.table_crc,
            baseline_points: U64::new(0),
            baseline_coarse_error: F64::new(0.0),
            baseline_reconstruction_error: F64::new(0.0),
            baseline_mean_norm: F64::new(0.0),
            baseline_imbalance: F64::new(0.0),
            header_crc: self.header_crc,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> QuantizerData {
        let (dim, nlist, m, nbits) = (8, 3, 2, 2);
        let f = |n: usize, s: f32| (0..n).map(|i| i as f32 * s).collect::<Vec<_>>();
        QuantizerData {
            dim,
            nlist,
            m,
            nbits,
            train_points: 99,
            seed: 5,
            coarse: f(nlist * dim, 0.5),
            codebooks: f(4 * dim, -0.25),
            table: f(nlist * m * 4, 2.0),
            baseline: Some(TrainBaseline {
                points: 99,
                coarse_error: 0.5,
                reconstruction_error: 0.25,
                mean_norm: 2.0,
                imbalance: 1.5,
            }),
        }
    }

    #[test]
    fn round_trips_and_catches_every_flip() {
        let q = sample();
        let b = q.encode();
        assert_eq!(size_of::<QuantizerHeader>(), 128);
        assert_eq!(size_of::<QuantizerHeaderV1>(), 88);
        assert_eq!(QuantizerData::decode(&b, "q", (8, 3, 2, 2)).unwrap(), q);
        assert!(QuantizerData::decode(&b, "q", (8, 4, 2, 2)).unwrap_err().to_string().contains("shape"));
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 1;
            assert!(QuantizerData::decode(&c, "q", (8, 3, 2, 2)).is_err(), "flip at byte {i} not caught");
        }
    }

    /// Version 1 (88-byte header, sections at the same offsets) decodes
    /// with no baseline; a version-2 file without one round-trips.
    #[test]
    fn version_1_and_no_baseline_are_read() {
        let mut q = sample();
        q.baseline = None;
        let b = q.encode();
        assert_eq!(QuantizerData::decode(&b, "q", (8, 3, 2, 2)).unwrap(), q);
        // Version 1's header is version 2's first 84 bytes, then its CRC.
        let mut c = b[..84].to_vec();
        c[12] = 1;
        c.extend_from_slice(&crc(&c).to_le_bytes());
        pad(&mut c);
        c.extend_from_slice(&b[128..]);
        assert_eq!(QuantizerData::decode(&c, "q", (8, 3, 2, 2)).unwrap(), q);
    }
}
