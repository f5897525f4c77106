//! NumPy's `.npy`: a magic string, a version, a header that is a Python
//! dict literal (`descr`, `fortran_order`, `shape`; parsed by
//! [`super::py_literal`]), then the array's bytes.

use super::py_literal::{DictParser, PyValue};
use super::{format_shape, negative_id, quoted, shape_error};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use std::io::Write;
use std::path::Path;

/// The `.npy` magic string.
pub(super) const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// A NumPy dtype string such as `'<f4'`, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Dtype {
    pub(super) little_endian: bool,
    /// `b'f'`, `b'i'`, `b'u'`, …
    pub(super) kind: u8,
    pub(super) size: usize,
}

/// Decodes `<f4`, `>i8`, `|u1`, `=i2`, `u8`, …; `None` for anything else.
/// `=`, `|` and no prefix mean the host's byte order.
pub(super) fn parse_descr(descr: &str) -> Option<Dtype> {
    let native = cfg!(target_endian = "little");
    let (little_endian, rest) = match descr.as_bytes().first()? {
        b'<' => (true, &descr[1..]),
        b'>' => (false, &descr[1..]),
        b'=' | b'|' => (native, &descr[1..]),
        _ => (native, descr),
    };
    let (&kind, digits) = rest.as_bytes().split_first()?;
    if digits.is_empty() || digits.len() > 2 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = digits.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
    Some(Dtype { little_endian, kind, size })
}

#[derive(Debug)]
pub(super) struct NpyHeader {
    pub(super) descr: String,
    pub(super) fortran_order: bool,
    pub(super) shape: Vec<usize>,
    pub(super) data_offset: usize,
}

impl NpyHeader {
    pub(super) fn check_c_order(&self, path: &Path) -> Result<()> {
        if self.fortran_order {
            return Err(Error::unsupported(
                path,
                "Fortran-order arrays (fortran_order: True) are not supported; save the array in C order",
            ));
        }
        Ok(())
    }

    /// The data bytes, checked to be exactly what the shape needs.
    pub(super) fn data<'a>(&self, path: &Path, bytes: &'a [u8], itemsize: usize) -> Result<&'a [u8]> {
        let needed = self.shape.iter().try_fold(itemsize, |n, &d| n.checked_mul(d)).ok_or_else(|| {
            Error::bad_file(path, format!("shape {} is too large to address", format_shape(&self.shape)))
        })?;
        // parse_npy_header checked data_offset <= bytes.len().
        let data = &bytes[self.data_offset..];
        if data.len() != needed {
            return Err(Error::bad_file(
                path,
                format!(
                    "data is {} bytes but shape {} of {} needs {} bytes",
                    data.len(),
                    format_shape(&self.shape),
                    quoted(&self.descr),
                    needed
                ),
            ));
        }
        Ok(data)
    }
}

pub(super) fn parse_npy_header(path: &Path, bytes: &[u8]) -> Result<NpyHeader> {
    let magic_len = bytes.len().min(NPY_MAGIC.len());
    if bytes[..magic_len] != NPY_MAGIC[..magic_len] {
        return Err(Error::bad_file(path, "not an .npy file (bad magic bytes: expected \\x93NUMPY)"));
    }
    let truncated = || Error::bad_file(path, format!("truncated .npy header: the file is only {} bytes", bytes.len()));
    let (major, minor) = match bytes.get(6..8) {
        Some(v) => (v[0], v[1]),
        None => return Err(truncated()),
    };
    let (header_start, header_len): (usize, usize) = match (major, minor) {
        (1, 0) => {
            let b = bytes.get(8..10).ok_or_else(truncated)?;
            (10, usize::from(u16::from_le_bytes([b[0], b[1]])))
        }
        (2, 0) | (3, 0) => {
            let b = bytes.get(8..12).ok_or_else(truncated)?;
            let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            (12, usize::try_from(len).unwrap_or(usize::MAX))
        }
        _ => {
            return Err(Error::unsupported(
                path,
                format!("unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)"),
            ))
        }
    };
    let data_offset = header_start.checked_add(header_len).filter(|&end| end <= bytes.len()).ok_or_else(|| {
        Error::bad_file(
            path,
            format!("truncated .npy header: it claims {header_len} bytes but the file is only {} bytes", bytes.len()),
        )
    })?;
    let text = &bytes[header_start..data_offset];
    let bad = |what: String| Error::bad_file(path, format!("bad .npy header: {what}"));
    let dict = DictParser::parse(text).map_err(bad)?;

    let mut descr = None;
    let mut fortran_order = None;
    let mut shape = None;
    for (key, value) in dict {
        let slot_taken = match key.as_str() {
            "descr" => descr.replace(value).is_some(),
            "fortran_order" => fortran_order.replace(value).is_some(),
            "shape" => shape.replace(value).is_some(),
            _ => return Err(bad(format!("unexpected key {}", quoted(&key)))),
        };
        if slot_taken {
            return Err(bad(format!("duplicate key {}", quoted(&key))));
        }
    }
    let missing = |key: &str| bad(format!("missing key '{key}'"));
    let descr = match descr.ok_or_else(|| missing("descr"))? {
        PyValue::Str(s) => s,
        _ => return Err(Error::unsupported(path, "unsupported dtype: structured (record) arrays are not supported")),
    };
    let fortran_order = match fortran_order.ok_or_else(|| missing("fortran_order"))? {
        PyValue::Bool(b) => b,
        _ => return Err(bad("'fortran_order' is not True or False".to_string())),
    };
    let shape = match shape.ok_or_else(|| missing("shape"))? {
        PyValue::Tuple(items) => items
            .into_iter()
            .map(|v| match v {
                PyValue::Int(n) => usize::try_from(n).ok(),
                _ => None,
            })
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| bad("'shape' must be a tuple of non-negative integers".to_string()))?,
        _ => return Err(bad("'shape' is not a tuple".to_string())),
    };
    Ok(NpyHeader { descr, fortran_order, shape, data_offset })
}

/// Ids from a 1-D `.npy` array of any integer dtype.
pub(super) fn read_ids(path: &Path, bytes: &[u8]) -> Result<Vec<u64>> {
    let header = parse_npy_header(path, bytes)?;
    let dtype = match parse_descr(&header.descr) {
        Some(d) if matches!(d.kind, b'i' | b'u') && matches!(d.size, 1 | 2 | 4 | 8) => d,
        _ => {
            return Err(Error::unsupported(
                path,
                format!(
                    "unsupported dtype: expected an integer dtype (i1, i2, i4, i8, u1, u2, u4, u8), got {}",
                    quoted(&header.descr)
                ),
            ))
        }
    };
    header.check_c_order(path)?;
    if header.shape.len() != 1 {
        return Err(Error::bad_file(
            path,
            format!("expected a 1-D array of ids, got shape {}", format_shape(&header.shape)),
        ));
    }
    let data = header.data(path, bytes, dtype.size)?;
    let size = dtype.size;
    let mut ids = Vec::with_capacity(header.shape[0]);
    for (row, chunk) in data.chunks_exact(size).enumerate() {
        let mut le = [0u8; 8];
        le[..size].copy_from_slice(chunk);
        if !dtype.little_endian {
            le[..size].reverse();
        }
        let raw = u64::from_le_bytes(le);
        if dtype.kind == b'i' && le[size - 1] & 0x80 != 0 {
            let shift = 64 - 8 * size as u32;
            let value = ((raw << shift) as i64) >> shift;
            return Err(negative_id(path, row, value));
        }
        ids.push(raw);
    }
    Ok(ids)
}

/// Writes `data` (n × dim, row-major) as a 2-D `'<f4'` `.npy` (format
/// version 1.0, the header exactly as NumPy writes it), atomically like
/// [`super::write_ivecs`].
pub fn write_npy_f32(path: &Path, data: &[f32], dim: usize) -> Result<()> {
    write_npy_2d(path, data, dim, "<f4", |v| v.to_le_bytes())
}

/// Writes `data` (n × k, row-major) as a 2-D `'<i8'` `.npy`, atomically:
/// result ids of `search --vectors`, where ids need all of 64 bits.
pub fn write_npy_i64(path: &Path, data: &[i64], k: usize) -> Result<()> {
    write_npy_2d(path, data, k, "<i8", |v| v.to_le_bytes())
}

fn write_npy_2d<T: Copy, const N: usize>(
    path: &Path,
    data: &[T],
    dim: usize,
    descr: &str,
    le: fn(T) -> [u8; N],
) -> Result<()> {
    if dim == 0 || !data.len().is_multiple_of(dim) {
        return Err(shape_error(path, data.len(), dim, "dim"));
    }
    let rows = data.len() / dim;
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
    // Magic (6) + version (2) + header length (2) + dict + padding + '\n',
    // padded to a multiple of 64 bytes as NumPy does.
    let unpadded = 10 + dict.len() + 1;
    let total = unpadded.div_ceil(64) * 64;
    let header_len = u16::try_from(total - 10)
        .map_err(|_| Error::InvalidInput(format!("{}: .npy header too long", path.display())))?;
    let mut header = Vec::with_capacity(total);
    header.extend_from_slice(NPY_MAGIC);
    header.extend_from_slice(&[1, 0]);
    header.extend_from_slice(&header_len.to_le_bytes());
    header.extend_from_slice(dict.as_bytes());
    header.resize(total - 1, b' ');
    header.push(b'\n');
    write_atomic(path, |w| {
        w.write_all(&header)?;
        let mut buf = Vec::with_capacity(N * dim);
        for row in data.chunks_exact(dim) {
            buf.clear();
            for &v in row {
                buf.extend_from_slice(&le(v));
            }
            w.write_all(&buf)?;
        }
        Ok(())
    })
}
