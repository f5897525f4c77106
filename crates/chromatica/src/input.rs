//! Checks on caller-supplied vectors, shared by train, add and search.

use crate::error::{Error, Result};
use crate::vecio::VectorFile;

/// The largest magnitude a coordinate may have: |x| ≤ 1e15. Training and
/// search compute squared norms and distances in f32, sums of up to
/// 16 · dim · x² with dim ≤ 65,536 (‖x‖², ‖c‖², the residuals' codebooks
/// and the cross terms of the L2 decomposition): at this bound they stay
/// below 1.1e36, a factor of 300 under f32's largest value, so quantizers
/// trained on accepted data are finite. Larger values (1e20, 5e19) are
/// refused, naming the row and column; no real descriptor comes near.
pub const MAX_ABS_VALUE: f32 = 1e15;

/// Number of rows of `data` as `dim`-dimensional vectors, after checking
/// that it is non-empty, whole rows, finite and within [`MAX_ABS_VALUE`].
/// `what` names the input.
pub fn check_vectors(data: &[f32], dim: usize, what: &str) -> Result<usize> {
    check_rows(data, dim, what, 0)
}

/// [`check_vectors`] for rows that start at row `first_row` of a larger
/// input: errors name the row of the whole input.
pub fn check_rows(data: &[f32], dim: usize, what: &str, first_row: usize) -> Result<usize> {
    check_shape(data.len(), dim, what)?;
    // One pass for NaN, ±inf and huge values alike, folded without a branch
    // (`|`, not `||`) over chunks so that it runs as vector compares; a
    // chunk that fails is searched for its first bad value. Queries pass
    // through here on every search.
    let bad = |x: &f32| !x.is_finite() | (x.abs() > MAX_ABS_VALUE);
    let first_bad = data.chunks(256).enumerate().find(|(_, c)| c.iter().fold(false, |b, x| b | bad(x)));
    if let Some(i) = first_bad.and_then(|(n, c)| Some(n * 256 + c.iter().position(bad)?)) {
        let (row, col, x) = (first_row + i / dim, i % dim, data[i]);
        let why = if x.is_finite() {
            format!("a value ({x:e}) beyond the limit of ±{MAX_ABS_VALUE:e}")
        } else {
            format!("a non-finite value ({x})")
        };
        return Err(Error::InvalidInput(format!("{what}: row {row} has {why} at column {col}")));
    }
    Ok(data.len() / dim)
}

/// Vectors that [`crate::Index::add_from`] reads a batch of rows at a time,
/// so that an input larger than memory can be checked and added in one
/// commit: a slice ([`Rows`]) or a vector file.
pub trait VectorSource {
    /// Values per row.
    fn dim(&self) -> usize;
    /// Rows available.
    fn rows(&self) -> usize;
    /// Rows `start .. start + count`, row-major: borrowed from the source,
    /// or read into `buf` (cleared first).
    fn read<'a>(&'a self, start: usize, count: usize, buf: &'a mut Vec<f32>) -> Result<&'a [f32]>;
}

/// A row-major slice as a [`VectorSource`].
pub struct Rows<'a> {
    /// The rows, `rows × dim` values.
    pub data: &'a [f32],
    /// Values per row.
    pub dim: usize,
}

impl VectorSource for Rows<'_> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn rows(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }
    fn read<'a>(&'a self, start: usize, count: usize, _: &'a mut Vec<f32>) -> Result<&'a [f32]> {
        Ok(&self.data[start * self.dim..(start + count) * self.dim])
    }
}

impl VectorSource for VectorFile {
    fn dim(&self) -> usize {
        VectorFile::dim(self)
    }
    fn rows(&self) -> usize {
        self.len()
    }
    fn read<'a>(&'a self, start: usize, count: usize, buf: &'a mut Vec<f32>) -> Result<&'a [f32]> {
        buf.clear();
        self.read_rows(start, count, buf)?;
        Ok(buf)
    }
}

/// That `len` floats are a non-empty whole number of rows of `dim`.
pub fn check_shape(len: usize, dim: usize, what: &str) -> Result<()> {
    if len == 0 {
        return Err(Error::InvalidInput(format!("no {what} given")));
    }
    if !len.is_multiple_of(dim) {
        return Err(Error::InvalidInput(format!(
            "{what}: {len} floats is not a whole number of vectors of dimension {dim}"
        )));
    }
    Ok(())
}

/// `check_vectors` for a matrix whose dimension the caller states, e.g. from
/// a file header: a different dimension is named as such.
pub fn check_dim(file_dim: usize, index_dim: usize, what: &str) -> Result<()> {
    if file_dim != index_dim {
        return Err(Error::InvalidInput(format!(
            "{what} have dimension {file_dim}, the index has dimension {index_dim}"
        )));
    }
    Ok(())
}

/// Ids must not repeat within one batch: an id names exactly one vector.
pub fn check_unique_ids(ids: &[u64]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    for (row, &id) in ids.iter().enumerate() {
        if id == u64::MAX {
            return Err(Error::InvalidInput(format!("id at row {row} is {id}, the largest id is {}", u64::MAX - 1)));
        }
        if !seen.insert(id) {
            return Err(Error::InvalidInput(format!("id {id} appears twice in the batch (again at row {row})")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_row_and_column() {
        let mut v = vec![0.0; 12];
        v[7] = f32::NAN;
        let e = check_vectors(&v, 4, "vectors").unwrap_err().to_string();
        assert!(e.contains("row 1") && e.contains("column 3") && e.contains("NaN"), "{e}");
        v[7] = f32::INFINITY;
        assert!(check_vectors(&v, 4, "vectors").unwrap_err().to_string().contains("inf"));
        assert!(check_vectors(&v[..5], 4, "q").unwrap_err().to_string().contains("whole number"));
        assert!(check_vectors(&[], 4, "queries").unwrap_err().to_string().contains("no queries"));
        assert_eq!(check_vectors(&[1.0; 8], 4, "v").unwrap(), 2);
    }

    #[test]
    fn huge_values_are_refused_at_the_limit() {
        let mut v = vec![0.5; 8];
        v[5] = MAX_ABS_VALUE;
        assert_eq!(check_vectors(&v, 4, "v").unwrap(), 2);
        v[5] = -MAX_ABS_VALUE;
        assert_eq!(check_vectors(&v, 4, "v").unwrap(), 2);
        for huge in [MAX_ABS_VALUE * 1.01, 5e19, -1e20, f32::MAX] {
            v[5] = huge;
            let e = check_rows(&v, 4, "v", 10).unwrap_err().to_string();
            assert!(e.contains("row 11") && e.contains("column 1") && e.contains("limit"), "{e}");
        }
    }

    /// The chunked scan names the first bad value wherever it lies: in the
    /// first or a later chunk, at a chunk's first or last value, with later
    /// bad values after it.
    #[test]
    fn the_first_bad_value_is_named_across_chunks() {
        let dim = 100;
        for first in [0, 1, 255, 256, 257, 511, 1023, 1099] {
            let mut v = vec![0.25f32; 1100];
            v[first] = f32::NEG_INFINITY;
            for later in [first + 1, first + 256, 1099] {
                if later < v.len() && later != first {
                    v[later] = f32::NAN;
                }
            }
            let e = check_vectors(&v, dim, "v").unwrap_err().to_string();
            let want = format!("row {} has a non-finite value (-inf) at column {}", first / dim, first % dim);
            assert!(e.contains(&want), "{e} (want {want})");
        }
    }
}
