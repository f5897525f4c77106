//! A vector's exact values (the refine store) and its record, read back
//! from a segment's optional sections.

use super::layout::{u64_at, Layout};
use super::{path_from_bytes, Record, SegmentView, Sparse};
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::path::Path;
use zerocopy::byteorder::little_endian::{F32, I16, I64, U16};
use zerocopy::FromBytes;

/// One vector's stored values: its non-zero dimensions (ascending) and
/// their values, f32 (segment version 1) or i16 times a per-vector scale
/// (version 2).
#[derive(Clone, Copy)]
pub struct RefineRef<'a> {
    pub dims: &'a [U16],
    values: Values<'a>,
}

#[derive(Clone, Copy)]
enum Values<'a> {
    F32(&'a [F32]),
    Scaled { scale: f32, q: &'a [I16] },
}

/// Largest stored magnitude of a version-2 value: |q| ≤ 32767.
const Q_MAX: f32 = i16::MAX as f32;

/// The scale version 2 stores for values whose largest magnitude is `max`:
/// the smallest power of two s with max / s ≤ 32767 (0 when max is 0), so
/// s < 2 · max / 32767. A power of two makes x / s and q × s exact in f32,
/// so the stored value is x rounded to a multiple of s: within s / 2 of it,
/// except that a magnitude is never rounded above `max` (then within s), so
/// stored values stay inside the input limits they were checked against.
/// Quantizing stored values again gives them back unchanged: their scale
/// divides s, and none of them exceeds their own largest magnitude.
fn scale_for(max: f32) -> f32 {
    let t = max / Q_MAX;
    if t.is_nan() || t <= 0.0 {
        return 0.0;
    }
    // The power of two at or below t (t's exponent bits alone), or, for
    // subnormal t, the smallest positive f32.
    let mut s = f32::from_bits(t.to_bits() & 0x7f80_0000).max(f32::from_bits(1));
    while s < t {
        s *= 2.0;
    }
    s
}

/// Version 2's encoding of a vector's values: (scale, q) with value =
/// q × scale (see [`scale_for`]). Values must be finite (input checks make
/// them so).
pub fn quantize(values: impl Iterator<Item = f32> + Clone) -> (f32, Vec<i16>) {
    let max = values.clone().fold(0f32, |m, v| m.max(v.abs()));
    let scale = scale_for(max);
    if scale == 0.0 {
        return (0.0, values.map(|_| 0).collect());
    }
    let q = values
        .map(|v| {
            let q = (v / scale).round();
            // Rounding up past the largest magnitude: one step back.
            let q = if (q * scale).abs() > max { q - q.signum() } else { q };
            q as i16
        })
        .collect();
    (scale, q)
}

impl<'a> RefineRef<'a> {
    /// Stored f32 values (version 1), for tests of the distance code.
    #[cfg(test)]
    pub(crate) fn from_f32(dims: &'a [U16], values: &'a [F32]) -> RefineRef<'a> {
        RefineRef { dims, values: Values::F32(values) }
    }

    /// (dimension, value) pairs, dimensions ascending.
    pub fn iter(&self) -> impl Iterator<Item = (usize, f32)> + Clone + '_ {
        let values = self.values;
        self.dims.iter().enumerate().map(move |(i, d)| {
            let v = match values {
                Values::F32(v) => v[i].get(),
                Values::Scaled { scale, q } => f32::from(q[i].get()) * scale,
            };
            (d.get() as usize, v)
        })
    }

    pub fn to_sparse(self) -> Sparse {
        self.iter().map(|(d, v)| (d as u16, v)).collect()
    }

    /// The values in version 2's encoding: as stored when they come from
    /// a version-2 segment, else quantized now (merges copy them so).
    pub(crate) fn scaled(&self) -> (f32, Cow<'a, [I16]>) {
        match self.values {
            Values::Scaled { scale, q } => (scale, Cow::Borrowed(q)),
            Values::F32(v) => {
                let (scale, q) = quantize(v.iter().map(|x| x.get()));
                (scale, Cow::Owned(q.into_iter().map(I16::new).collect()))
            }
        }
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
        let Some(r) = self.layout.refine else { return };
        if p >= self.layout.n {
            return;
        }
        if offsets_only {
            return crate::simd::prefetch(self.bytes.get(r.starts + 8 * p..r.starts + 8 * p + 16).unwrap_or(&[]));
        }
        let (Ok(a), Ok(b)) = (
            Layout::start(&self.bytes, r.starts, p, r.nnz, &self.name),
            Layout::start(&self.bytes, r.starts, p + 1, r.nnz, &self.name),
        ) else {
            return;
        };
        if a <= b {
            if let Some(scales) = r.scales {
                crate::simd::prefetch(self.bytes.get(scales + 4 * p..scales + 4 * p + 4).unwrap_or(&[]));
            }
            crate::simd::prefetch(self.bytes.get(r.dims + 2 * a..r.dims + 2 * b).unwrap_or(&[]));
            let w = r.value_size;
            crate::simd::prefetch(self.bytes.get(r.values + w * a..r.values + w * b).unwrap_or(&[]));
        }
    }

    /// Stored values of the vector at position `p` (refine store), after
    /// its list's checksum and, in version 2, its scale (finite, ≥ 0).
    pub fn refine(&self, p: usize) -> Result<RefineRef<'_>> {
        let r = self.layout.refine.ok_or_else(|| Error::InvalidInput(format!("{}: no refine store", self.name)))?;
        self.check_position(p)?;
        let a = Layout::start(&self.bytes, r.starts, p, r.nnz, &self.name)?;
        let b = Layout::start(&self.bytes, r.starts, p + 1, r.nnz, &self.name)?;
        if a > b {
            return Err(Error::corrupt(&self.name, (r.starts + 8 * p) as u64, "refine offsets decrease"));
        }
        let dims = <[U16]>::ref_from_bytes(&self.bytes[r.dims + 2 * a..r.dims + 2 * b]).expect("alignment 1");
        if let Some(k) = dims.iter().position(|d| d.get() as usize >= self.dim) {
            return Err(Error::corrupt(&self.name, (r.dims + 2 * (a + k)) as u64, "refine dimension out of range"));
        }
        let w = r.value_size;
        let bytes = &self.bytes[r.values + w * a..r.values + w * b];
        let values = match r.scales {
            None => Values::F32(<[F32]>::ref_from_bytes(bytes).expect("alignment 1")),
            Some(scales) => {
                let scale = F32::read_from_bytes(&self.bytes[scales + 4 * p..scales + 4 * p + 4]).expect("4").get();
                if !(scale.is_finite() && scale >= 0.0) {
                    return Err(Error::corrupt(
                        &self.name,
                        (scales + 4 * p) as u64,
                        format!("refine scale {scale} of vector {p} (must be finite and not negative)"),
                    ));
                }
                Values::Scaled { scale, q: <[I16]>::ref_from_bytes(bytes).expect("alignment 1") }
            }
        };
        Ok(RefineRef { dims, values })
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
