//! The command-line tool's vector and id files: `.fvecs`, `.ivecs` and `.npy`,
//! one file per format.
//!
//! These files are user input. Every malformed file gives a one-line error
//! that names the path and the problem (and the row, where there is one);
//! nothing here panics or reads out of bounds, whatever the bytes are.
//! Files are read through the crate's one memory map (which also refuses
//! FIFOs and devices) and written atomically, like
//! [`write_atomic_bytes`](crate::write_atomic_bytes).
//!
//! Formats:
//! - `.fvecs`: each row is an `int32` LE dimension, then that many `float32` LE.
//! - `.ivecs`: the same with `int32` LE values.
//! - `.npy`: NumPy's format, versions 1.0, 2.0 and 3.0, C order.

mod fvecs;
mod npy;
mod py_literal;
mod vector_file;

pub use fvecs::{read_ivecs_matrix, write_fvecs, write_ivecs};
pub use npy::{write_npy_f32, write_npy_i64};
pub use vector_file::VectorFile;

use crate::error::{Error, Result};
use std::path::Path;

/// Reads ids: an `.npy` 1-D array of any integer dtype (`i1`, `i2`, `i4`,
/// `i8`, `u1`, `u2`, `u4`, `u8`, either byte order) or an `.ivecs` file with
/// exactly one value per row. A negative id is an error naming the row.
pub fn read_ids(path: &Path) -> Result<Vec<u64>> {
    let kind = lower_extension(path);
    if !matches!(kind.as_deref(), Some("npy") | Some("ivecs")) {
        return Err(Error::unsupported(
            path,
            format!("{}: id files must be .npy or .ivecs", describe_extension(kind.as_deref())),
        ));
    }
    let bytes = crate::fsutil::map_file(path)?;
    if bytes.is_empty() {
        return Err(Error::bad_file(path, "empty file"));
    }
    if kind.as_deref() == Some("npy") {
        npy::read_ids(path, &bytes)
    } else {
        fvecs::read_ids(path, &bytes)
    }
}

fn negative_id(path: &Path, row: usize, value: i64) -> Error {
    Error::bad_file(path, format!("row {row}: negative id {value}; ids must be non-negative"))
}

/// Appends little-endian f32s. `bytes.len()` is a multiple of 4 here.
fn extend_f32_le(out: &mut Vec<f32>, bytes: &[u8]) {
    out.extend(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
}

fn lower_extension(path: &Path) -> Option<String> {
    path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase())
}

fn describe_extension(ext: Option<&str>) -> String {
    match ext {
        Some(e) => format!("unsupported file extension '.{}'", printable(e)),
        None => "no file extension".to_string(),
    }
}

/// Makes untrusted text safe for a one-line message: control characters
/// escaped, length capped.
pub(crate) fn printable(s: &str) -> String {
    const LIMIT: usize = 40;
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == LIMIT {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn quoted(s: &str) -> String {
    format!("'{}'", printable(s))
}

/// Python's tuple notation: `()`, `(5,)`, `(3, 4)`.
fn format_shape(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

fn shape_error(path: &Path, len: usize, width: usize, name: &'static str) -> Error {
    Error::invalid_argument(name, format!("{}: cannot write {len} values as rows of {name} = {width}", path.display()))
}

#[cfg(test)]
mod tests;
