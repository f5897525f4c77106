//! A vector's exact values (the refine store) and its record, read back
//! from a segment's optional sections.

use super::layout::{u64_at, Layout};
use super::{path_from_bytes, Record, SegmentView, Sparse};
use crate::error::{Error, Result};
use std::path::Path;
use zerocopy::byteorder::little_endian::{F32, I64, U16};
use zerocopy::FromBytes;

/// One vector's exact values, as stored.
#[derive(Clone, Copy)]
pub struct RefineRef<'a> {
    pub dims: &'a [U16],
    pub values: &'a [F32],
}

impl RefineRef<'_> {
    pub fn iter(&self) -> impl Iterator<Item = (usize, f32)> + Clone + '_ {
        self.dims.iter().zip(self.values).map(|(d, v)| (d.get() as usize, v.get()))
    }
    pub fn to_sparse(self) -> Sparse {
        self.dims.iter().zip(self.values).map(|(d, v)| (d.get(), v.get())).collect()
    }
}

/// One vector's record, as stored.
#[derive(Clone, Copy, Debug)]
pub struct RecordRef<'a> {
    pub path: &'a Path,
    pub size: u64,
    pub mtime_ns: i64,
}

impl RecordRef<'_> {
    pub fn to_record(self) -> Record {
        Record { path: self.path.to_owned(), size: self.size, mtime_ns: self.mtime_ns }
    }
}

impl SegmentView {
    /// Asks the CPU to start loading what [`Self::refine`] will read for
    /// the vector at `p`: with `offsets_only`, its entry of the offsets
    /// array, else its dimensions and values (which needs the offsets). A
    /// re-rank fetches a few hundred vectors scattered over the refine
    /// store; hinting them all first lets their cache misses overlap instead
    /// of queueing one after another. Out-of-range positions are ignored.
    pub fn prefetch_refine(&self, p: usize, offsets_only: bool) {
        let Some((starts, bins, values, nnz)) = self.layout.refine else { return };
        if p >= self.layout.n {
            return;
        }
        if offsets_only {
            return crate::simd::prefetch(self.bytes.get(starts + 8 * p..starts + 8 * p + 16).unwrap_or(&[]));
        }
        let (Ok(a), Ok(b)) = (
            Layout::start(&self.bytes, starts, p, nnz, &self.name),
            Layout::start(&self.bytes, starts, p + 1, nnz, &self.name),
        ) else {
            return;
        };
        if a <= b {
            crate::simd::prefetch(self.bytes.get(bins + 2 * a..bins + 2 * b).unwrap_or(&[]));
            crate::simd::prefetch(self.bytes.get(values + 4 * a..values + 4 * b).unwrap_or(&[]));
        }
    }

    /// Exact values of the vector at position `p` (refine store).
    pub fn refine(&self, p: usize) -> Result<RefineRef<'_>> {
        let (starts, bins, values, nnz) =
            self.layout.refine.ok_or_else(|| Error::InvalidInput(format!("{}: no refine store", self.name)))?;
        self.check_position(p)?;
        let a = Layout::start(&self.bytes, starts, p, nnz, &self.name)?;
        let b = Layout::start(&self.bytes, starts, p + 1, nnz, &self.name)?;
        if a > b {
            return Err(Error::corrupt(&self.name, (starts + 8 * p) as u64, "refine offsets decrease"));
        }
        let dims = <[U16]>::ref_from_bytes(&self.bytes[bins + 2 * a..bins + 2 * b]).expect("alignment 1");
        let vals = <[F32]>::ref_from_bytes(&self.bytes[values + 4 * a..values + 4 * b]).expect("alignment 1");
        if let Some(k) = dims.iter().position(|d| d.get() as usize >= self.dim) {
            return Err(Error::corrupt(&self.name, (bins + 2 * (a + k)) as u64, "refine dimension out of range"));
        }
        Ok(RefineRef { dims, values: vals })
    }

    /// The Lab mean of every vector's colour distribution (the squares of
    /// the refine store's Hellinger values, normalised, at the bin centres
    /// `centres`), by position: computed on first use and kept. A vector
    /// without mass has mean NaN (never within any bound).
    #[cfg_attr(not(feature = "images"), allow(dead_code))]
    pub fn lab_means(&self, centres: &[[f64; 3]]) -> Result<&[[f32; 3]]> {
        if let Some(m) = self.lab_means.get() {
            return Ok(m);
        }
        let mut out = Vec::with_capacity(self.layout.n);
        for p in 0..self.layout.n {
            let (mut t, mut m) = (0f64, [0f64; 3]);
            for (j, v) in self.refine(p)?.iter() {
                let w = f64::from(v) * f64::from(v);
                let c = centres.get(j).copied().unwrap_or([f64::NAN; 3]);
                t += w;
                for d in 0..3 {
                    m[d] += w * c[d];
                }
            }
            out.push(m.map(|x| (x / t) as f32));
        }
        let _ = self.lab_means.set(out);
        Ok(self.lab_means.get().expect("set just now"))
    }

    /// The record of the vector at position `p`, if the segment has records.
    pub fn record(&self, p: usize) -> Result<Option<RecordRef<'_>>> {
        let Some((starts, sizes, mtimes, blob_at, blob)) = self.layout.records else {
            return Ok(None);
        };
        self.check_position(p)?;
        let a = Layout::start(&self.bytes, starts, p, blob, &self.name)?;
        let b = Layout::start(&self.bytes, starts, p + 1, blob, &self.name)?;
        if a > b {
            return Err(Error::corrupt(&self.name, (starts + 8 * p) as u64, "record offsets decrease"));
        }
        let path = path_from_bytes(&self.bytes[blob_at + a..blob_at + b])
            .ok_or_else(|| Error::corrupt(&self.name, (blob_at + a) as u64, "record path is not UTF-8"))?;
        let size = u64_at(&self.bytes, sizes + 8 * p, &self.name)?;
        let mtime = I64::read_from_bytes(&self.bytes[mtimes + 8 * p..mtimes + 8 * p + 8]).expect("8 bytes").get();
        Ok(Some(RecordRef { path, size, mtime_ns: mtime }))
    }
}
