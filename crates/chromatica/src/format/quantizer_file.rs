//! The trained quantizers: coarse centroids, PQ codebooks, and the
//! precomputed per-list term table used by search (see `crate::ivfpq`).

use super::{
    align_up, bytes_to_f32s, check_crc, check_layout, crc, f32s_to_bytes, pad, read_checked_header, section,
    write_checked_header, FileHeader, FileKind,
};
use crate::error::{Error, Result};
use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Fixed part of a quantizer file (88 bytes).
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
    pub header_crc: U32,
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
        FileHeader::check(bytes, FileKind::Quantizers, file)?;
        let h: QuantizerHeader = read_checked_header(bytes, file)?;
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
        let hs = std::mem::size_of::<QuantizerHeader>();
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
        };
        if let Some(i) = data.coarse.iter().chain(&data.codebooks).chain(&data.table).position(|x| !x.is_finite()) {
            return Err(Error::corrupt(file, 0, format!("non-finite value at float {i} of the quantizers")));
        }
        Ok(data)
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
        }
    }

    #[test]
    fn round_trips_and_catches_every_flip() {
        let q = sample();
        let b = q.encode();
        assert_eq!(std::mem::size_of::<QuantizerHeader>(), 88);
        assert_eq!(QuantizerData::decode(&b, "q", (8, 3, 2, 2)).unwrap(), q);
        assert!(QuantizerData::decode(&b, "q", (8, 4, 2, 2)).unwrap_err().to_string().contains("shape"));
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 1;
            assert!(QuantizerData::decode(&c, "q", (8, 3, 2, 2)).is_err(), "flip at byte {i} not caught");
        }
    }
}
