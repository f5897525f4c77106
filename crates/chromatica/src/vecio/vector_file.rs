//! [`VectorFile`]: a float32 matrix file (`.fvecs` or `.npy`), memory-mapped
//! and read by row ranges.

use super::fvecs::fvecs_layout;
use super::npy::{parse_descr, parse_npy_header};
use super::{describe_extension, extend_f32_le, format_shape, lower_extension, quoted};
use crate::error::{Error, Result};
use crate::storage::Bytes;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Fvecs,
    Npy,
}

/// A float32 matrix file opened for reading, memory-mapped (it may be larger
/// than RAM: 10M × 1152).
///
/// Formats by extension: `.fvecs` (each row: `int32` LE dim, then dim
/// `float32` LE) and `.npy` (format versions 1.0, 2.0 and 3.0; dtype `'<f4'`,
/// or `'=f4'`/`'f4'` meaning little-endian on little-endian hosts; 2-D shape;
/// C order). Any other extension is an error naming the accepted ones.
///
/// A file that validly holds zero rows (an `.npy` of shape `(0, d)`) opens
/// with `len() == 0`; rejecting empty input is the caller's business. A
/// zero-byte file is an error ("empty file").
#[derive(Debug)]
pub struct VectorFile {
    path: PathBuf,
    map: Bytes,
    kind: Kind,
    /// Byte offset of the first row (after the `.npy` header; 0 for fvecs).
    data_offset: usize,
    rows: usize,
    dim: usize,
}

impl VectorFile {
    /// Opens and validates the file's structure: the header, the dimension
    /// and that the size is a whole number of rows. The per-row dimension
    /// headers of an `.fvecs` file are checked as rows are read.
    pub fn open(path: &Path) -> Result<VectorFile> {
        let kind = match lower_extension(path).as_deref() {
            Some("fvecs") => Kind::Fvecs,
            Some("npy") => Kind::Npy,
            other => {
                return Err(Error::unsupported(
                    path,
                    format!("{}: vector files must be .fvecs or .npy", describe_extension(other)),
                ))
            }
        };
        // The crate's one memory map: refuses FIFOs and devices without
        // blocking; an input file must not be truncated while it is read.
        let map = crate::fsutil::map_file(path)?;
        map.advise_sequential();
        let bytes: &[u8] = &map;
        if bytes.is_empty() {
            return Err(Error::bad_file(path, "empty file"));
        }
        let (data_offset, rows, dim) = match kind {
            Kind::Fvecs => {
                let (rows, dim) = fvecs_layout(path, bytes)?;
                (0, rows, dim)
            }
            Kind::Npy => {
                let header = parse_npy_header(path, bytes)?;
                let dtype = parse_descr(&header.descr);
                if !dtype.is_some_and(|d| d.kind == b'f' && d.size == 4 && d.little_endian) {
                    return Err(Error::unsupported(
                        path,
                        format!("unsupported dtype: expected float32 ('<f4'), got {}", quoted(&header.descr)),
                    ));
                }
                header.check_c_order(path)?;
                if header.shape.len() != 2 {
                    return Err(Error::bad_file(
                        path,
                        format!("expected a 2-D array of shape (rows, dim), got shape {}", format_shape(&header.shape)),
                    ));
                }
                let (rows, dim) = (header.shape[0], header.shape[1]);
                if dim == 0 {
                    return Err(Error::bad_file(
                        path,
                        format!(
                            "shape {} has zero columns: vectors need a dimension of at least 1",
                            format_shape(&header.shape)
                        ),
                    ));
                }
                header.data(path, bytes, 4)?;
                (header.data_offset, rows, dim)
            }
        };
        Ok(VectorFile { path: path.to_path_buf(), map, kind, data_offset, rows, dim })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True if the file holds no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends rows `start..start + count` to `out` as f32.
    ///
    /// For `.fvecs`, checks that each row's dimension header equals `dim()`
    /// (the error names the row). Errors if the range goes beyond `len()`.
    /// On error `out` is left as it was.
    pub fn read_rows(&self, start: usize, count: usize, out: &mut Vec<f32>) -> Result<()> {
        let end = match start.checked_add(count) {
            Some(end) if end <= self.rows => end,
            _ => {
                return Err(Error::invalid_argument(
                    "count",
                    format!(
                        "{}: rows {}..{} requested but the file has {} rows",
                        self.path.display(),
                        start,
                        start.saturating_add(count),
                        self.rows
                    ),
                ))
            }
        };
        // `open` established data_offset + rows * stride == map.len(), so
        // these slices are in bounds.
        let data = &self.map[self.data_offset..];
        let original_len = out.len();
        out.reserve(count * self.dim);
        match self.kind {
            Kind::Npy => {
                let stride = 4 * self.dim;
                extend_f32_le(out, &data[start * stride..end * stride]);
            }
            Kind::Fvecs => {
                let stride = 4 + 4 * self.dim;
                let block = &data[start * stride..end * stride];
                for (i, row) in block.chunks_exact(stride).enumerate() {
                    let header = i32::from_le_bytes([row[0], row[1], row[2], row[3]]);
                    if usize::try_from(header).ok() != Some(self.dim) {
                        out.truncate(original_len);
                        return Err(Error::bad_file(
                            &self.path,
                            format!(
                                "row {}: dimension header is {}, but the file's dimension is {} (from row 0)",
                                start + i,
                                header,
                                self.dim
                            ),
                        ));
                    }
                    extend_f32_le(out, &row[4..]);
                }
            }
        }
        Ok(())
    }

    /// Reads every row: `len() × dim()` floats, row-major.
    pub fn read_all(&self) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.read_rows(0, self.rows, &mut out)?;
        Ok(out)
    }
}
