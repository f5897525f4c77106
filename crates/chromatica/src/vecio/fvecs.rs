//! `.fvecs` and `.ivecs`: rows of an `int32` LE width, then that many 4-byte
//! LE values (`float32` or `int32`).

use super::{negative_id, shape_error};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use std::io::Write;
use std::path::Path;

/// Largest dimension accepted in an `.fvecs` row header. Anything larger is
/// far more likely to be a file of some other format than a real dimension.
pub(super) const MAX_FVECS_DIM: usize = 1_000_000;

/// Ids from an `.ivecs` file with exactly one value per row.
pub(super) fn read_ids(path: &Path, bytes: &[u8]) -> Result<Vec<u64>> {
    if bytes.len() < 4 {
        return Err(Error::bad_file(
            path,
            format!("truncated: {} bytes is shorter than the 4-byte dimension header of row 0", bytes.len()),
        ));
    }
    let mut ids = Vec::with_capacity(bytes.len() / 8);
    let mut rest = bytes;
    let mut row = 0usize;
    while !rest.is_empty() {
        let Some((header, tail)) = rest.split_first_chunk::<4>() else {
            return Err(ivecs_truncated(path, bytes.len()));
        };
        let count = i32::from_le_bytes(*header);
        if count != 1 {
            let what = if count <= 0 {
                format!(
                    "row {row}: dimension header is {count}; an .ivecs ids file must have exactly one value per row"
                )
            } else {
                format!("row {row} has {count} values; an .ivecs ids file must have exactly one value per row")
            };
            return Err(Error::bad_file(path, what));
        }
        let Some((value, tail)) = tail.split_first_chunk::<4>() else {
            return Err(ivecs_truncated(path, bytes.len()));
        };
        let value = i32::from_le_bytes(*value);
        if value < 0 {
            return Err(negative_id(path, row, i64::from(value)));
        }
        ids.push(value as u64);
        rest = tail;
        row += 1;
    }
    Ok(ids)
}

fn ivecs_truncated(path: &Path, len: usize) -> Error {
    Error::bad_file(
        path,
        format!("truncated: {len} bytes is not a whole number of rows of dimension 1 (8 bytes per row)"),
    )
}

/// Reads a whole `.ivecs` matrix (e.g. ground-truth neighbours), row-major.
/// `.ivecs` has the `.fvecs` layout with int32 values, so the same checks
/// apply: every row's header must equal the first.
pub fn read_ivecs_matrix(path: &Path) -> Result<Vec<i32>> {
    let bytes = crate::fsutil::map_file(path)?;
    if bytes.is_empty() {
        return Err(Error::bad_file(path, "empty file"));
    }
    let (rows, dim) = fvecs_layout(path, &bytes)?;
    let mut out = Vec::with_capacity(rows * dim);
    for (row, chunk) in bytes.chunks_exact(4 + 4 * dim).enumerate() {
        let header = i32::from_le_bytes(chunk[..4].try_into().expect("4 bytes"));
        if header as usize != dim {
            return Err(Error::bad_file(path, format!("row {row}: dimension header is {header}, row 0 says {dim}")));
        }
        out.extend(chunk[4..].chunks_exact(4).map(|v| i32::from_le_bytes(v.try_into().expect("4 bytes"))));
    }
    Ok(out)
}

/// Writes `rows` (n × k, row-major) as `.ivecs`. Atomically: writes
/// `<path>.tmp`, then renames it over `path`, so a failure leaves nothing
/// behind.
pub fn write_ivecs(path: &Path, rows: &[i32], k: usize) -> Result<()> {
    let header = row_header(path, rows.len(), k, "k", i32::MAX as usize)?;
    write_rows(path, rows, k, header, i32::to_le_bytes)
}

/// Writes `data` (n × dim, row-major) as `.fvecs`, atomically like
/// [`write_ivecs`]. Note that zero rows make a zero-byte file, which
/// [`VectorFile::open`](crate::vecio::VectorFile::open) rejects as empty.
pub fn write_fvecs(path: &Path, data: &[f32], dim: usize) -> Result<()> {
    let header = row_header(path, data.len(), dim, "dim", MAX_FVECS_DIM)?;
    write_rows(path, data, dim, header, f32::to_le_bytes)
}

/// The `.ivecs`/`.fvecs` layout: each row is its int32 width, then its
/// 4-byte little-endian values.
fn write_rows<T: Copy>(path: &Path, values: &[T], width: usize, header: [u8; 4], le: fn(T) -> [u8; 4]) -> Result<()> {
    write_atomic(path, |w| {
        let mut buf = Vec::with_capacity(4 + 4 * width);
        for row in values.chunks_exact(width) {
            buf.clear();
            buf.extend_from_slice(&header);
            for &v in row {
                buf.extend_from_slice(&le(v));
            }
            w.write_all(&buf)?;
        }
        Ok(())
    })
}

/// Validates `len = n × width` for a writer and returns the row header.
fn row_header(path: &Path, len: usize, width: usize, name: &'static str, max: usize) -> Result<[u8; 4]> {
    if width == 0 || !len.is_multiple_of(width) {
        return Err(shape_error(path, len, width, name));
    }
    if width > max {
        return Err(Error::invalid_argument(
            name,
            format!("{}: {name} = {width} exceeds the limit of {max}", path.display()),
        ));
    }
    // width <= max <= i32::MAX.
    Ok((width as i32).to_le_bytes())
}

/// `(rows, dim)` of an `.fvecs` file, from row 0's header and the size.
pub(super) fn fvecs_layout(path: &Path, bytes: &[u8]) -> Result<(usize, usize)> {
    let Some(first) = bytes.first_chunk::<4>() else {
        return Err(Error::bad_file(
            path,
            format!("truncated: {} bytes is shorter than the 4-byte dimension header of row 0", bytes.len()),
        ));
    };
    let header = i32::from_le_bytes(*first);
    if header <= 0 {
        return Err(Error::bad_file(path, format!("row 0: dimension header is {header}; it must be positive")));
    }
    let dim = header as usize;
    if dim > MAX_FVECS_DIM {
        return Err(Error::bad_file(
            path,
            format!(
                "row 0: dimension header {dim} exceeds the limit of {MAX_FVECS_DIM}; is this really an .fvecs file?"
            ),
        ));
    }
    let stride = 4 + 4 * dim;
    if !bytes.len().is_multiple_of(stride) {
        return Err(Error::bad_file(
            path,
            format!(
                "truncated: {} bytes is not a whole number of rows of dimension {dim} ({stride} bytes per row)",
                bytes.len()
            ),
        ));
    }
    Ok((bytes.len() / stride, dim))
}
