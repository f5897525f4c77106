//! The command-line tool's vector and id files: `.fvecs`, `.ivecs` and `.npy`.
//!
//! These files are user input. Every malformed file gives a one-line error
//! that names the path and the problem (and the row, where there is one);
//! nothing here panics or reads out of bounds, whatever the bytes are.
//!
//! Formats:
//! - `.fvecs`: each row is an `int32` LE dimension, then that many `float32` LE.
//! - `.ivecs`: the same with `int32` LE values.
//! - `.npy`: NumPy's format, versions 1.0, 2.0 and 3.0, C order.

use crate::error::{Error, Result};
use memmap2::Mmap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Largest dimension accepted in an `.fvecs` row header. Anything larger is
/// far more likely to be a file of some other format than a real dimension.
const MAX_FVECS_DIM: usize = 1_000_000;

/// The `.npy` magic string.
const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Nesting limit of the `.npy` header parser, so that hostile input such as
/// `((((((…` cannot exhaust the stack.
const MAX_NESTING: usize = 16;

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
    map: Mmap,
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
                return Err(Error::bad_file(
                    path,
                    format!("{}: vector files must be .fvecs or .npy", describe_extension(other)),
                ))
            }
        };
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            return Err(Error::bad_file(path, "not a regular file"));
        }
        // A zero-length file cannot be mapped on Linux (EINVAL): catch it first.
        if meta.len() == 0 {
            return Err(Error::bad_file(path, "empty file"));
        }
        // `Mmap::map` is unsafe because the mapped bytes can change
        // underneath us if another process modifies the file. The file is
        // opened read-only and its contents are treated as untrusted bytes:
        // every read goes through `&[u8]` slices whose bounds were checked
        // against the mapping's length, and values are decoded with
        // `from_le_bytes`, never by casting to typed references, so a
        // concurrent *write* can only give us wrong numbers, not undefined
        // behaviour in our code. The standard memmap caveat remains: if
        // another process *truncates* the file while it is mapped, touching
        // the vanished pages raises SIGBUS and the process dies. Input files
        // must not be truncated while the tool runs.
        // SAFETY: a read-only map of untrusted bytes, read only through checked slices.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        #[cfg(unix)]
        {
            // Only a hint for the kernel's read-ahead; failure is harmless.
            let _ = map.advise(memmap2::Advice::Sequential);
        }
        let bytes: &[u8] = &map;
        if bytes.is_empty() {
            // The file was emptied between `metadata` and `map`.
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
                    return Err(Error::bad_file(
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
                return Err(Error::InvalidInput(format!(
                    "{}: rows {}..{} requested but the file has {} rows",
                    self.path.display(),
                    start,
                    start.saturating_add(count),
                    self.rows
                )))
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

/// Reads ids: an `.npy` 1-D array of any integer dtype (`i1`, `i2`, `i4`,
/// `i8`, `u1`, `u2`, `u4`, `u8`, either byte order) or an `.ivecs` file with
/// exactly one value per row. A negative id is an error naming the row.
pub fn read_ids(path: &Path) -> Result<Vec<u64>> {
    let kind = lower_extension(path);
    if !matches!(kind.as_deref(), Some("npy") | Some("ivecs")) {
        return Err(Error::bad_file(
            path,
            format!("{}: id files must be .npy or .ivecs", describe_extension(kind.as_deref())),
        ));
    }
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.is_empty() {
        return Err(Error::bad_file(path, "empty file"));
    }
    if kind.as_deref() == Some("npy") {
        read_ids_npy(path, &bytes)
    } else {
        read_ids_ivecs(path, &bytes)
    }
}

fn read_ids_npy(path: &Path, bytes: &[u8]) -> Result<Vec<u64>> {
    let header = parse_npy_header(path, bytes)?;
    let dtype = match parse_descr(&header.descr) {
        Some(d) if matches!(d.kind, b'i' | b'u') && matches!(d.size, 1 | 2 | 4 | 8) => d,
        _ => {
            return Err(Error::bad_file(
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

fn read_ids_ivecs(path: &Path, bytes: &[u8]) -> Result<Vec<u64>> {
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

fn negative_id(path: &Path, row: usize, value: i64) -> Error {
    Error::bad_file(path, format!("row {row}: negative id {value}; ids must be non-negative"))
}

/// Reads a whole `.ivecs` matrix (e.g. ground-truth neighbours), row-major.
/// `.ivecs` has the `.fvecs` layout with int32 values, so the same checks
/// apply: every row's header must equal the first.
pub fn read_ivecs_matrix(path: &Path) -> Result<Vec<i32>> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
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
/// [`VectorFile::open`] rejects as empty.
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

/// Writes `data` (n × dim, row-major) as a 2-D `'<f4'` `.npy` (format
/// version 1.0, the header exactly as NumPy writes it), atomically like
/// [`write_ivecs`].
pub fn write_npy_f32(path: &Path, data: &[f32], dim: usize) -> Result<()> {
    if dim == 0 || !data.len().is_multiple_of(dim) {
        return Err(shape_error(path, data.len(), dim, "dim"));
    }
    let rows = data.len() / dim;
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
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
        let mut buf = Vec::with_capacity(4 * dim);
        for row in data.chunks_exact(dim) {
            buf.clear();
            for v in row {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            w.write_all(&buf)?;
        }
        Ok(())
    })
}

/// Validates `len = n × width` for a writer and returns the row header.
fn row_header(path: &Path, len: usize, width: usize, name: &str, max: usize) -> Result<[u8; 4]> {
    if width == 0 || !len.is_multiple_of(width) {
        return Err(shape_error(path, len, width, name));
    }
    if width > max {
        return Err(Error::InvalidInput(format!("{}: {name} = {width} exceeds the limit of {max}", path.display())));
    }
    // width <= max <= i32::MAX.
    Ok((width as i32).to_le_bytes())
}

fn shape_error(path: &Path, len: usize, width: usize, name: &str) -> Error {
    Error::InvalidInput(format!("{}: cannot write {len} values as rows of {name} = {width}", path.display()))
}

/// Writes through `<path>.tmp`, synced, then renamed over `path`. On any
/// failure the temporary file is removed and `path` is untouched.
fn write_atomic(path: &Path, fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    })();
    let result = written.and_then(|()| fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Appends little-endian f32s. `bytes.len()` is a multiple of 4 here.
fn extend_f32_le(out: &mut Vec<f32>, bytes: &[u8]) {
    out.extend(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
}

/// `(rows, dim)` of an `.fvecs` file, from row 0's header and the size.
fn fvecs_layout(path: &Path, bytes: &[u8]) -> Result<(usize, usize)> {
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
fn printable(s: &str) -> String {
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

// ---------------------------------------------------------------------------
// .npy

/// A NumPy dtype string such as `'<f4'`, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Dtype {
    little_endian: bool,
    /// `b'f'`, `b'i'`, `b'u'`, …
    kind: u8,
    size: usize,
}

/// Decodes `<f4`, `>i8`, `|u1`, `=i2`, `u8`, …; `None` for anything else.
/// `=`, `|` and no prefix mean the host's byte order.
fn parse_descr(descr: &str) -> Option<Dtype> {
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
struct NpyHeader {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
    data_offset: usize,
}

impl NpyHeader {
    fn check_c_order(&self, path: &Path) -> Result<()> {
        if self.fortran_order {
            return Err(Error::bad_file(
                path,
                "Fortran-order arrays (fortran_order: True) are not supported; save the array in C order",
            ));
        }
        Ok(())
    }

    /// The data bytes, checked to be exactly what the shape needs.
    fn data<'a>(&self, path: &Path, bytes: &'a [u8], itemsize: usize) -> Result<&'a [u8]> {
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

fn parse_npy_header(path: &Path, bytes: &[u8]) -> Result<NpyHeader> {
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
            return Err(Error::bad_file(
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
        _ => return Err(Error::bad_file(path, "unsupported dtype: structured (record) arrays are not supported")),
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

/// The subset of Python literals that `.npy` headers use.
#[derive(Debug, PartialEq)]
enum PyValue {
    Str(String),
    Bool(bool),
    Int(i64),
    Tuple(Vec<PyValue>),
    List(Vec<PyValue>),
}

/// A parser for the header's Python dict literal. Errors are one-line
/// descriptions with the byte position in the header.
struct DictParser<'a> {
    s: &'a [u8],
    pos: usize,
}

type ParseResult<T> = std::result::Result<T, String>;

impl<'a> DictParser<'a> {
    fn parse(s: &'a [u8]) -> ParseResult<Vec<(String, PyValue)>> {
        let mut p = DictParser { s, pos: 0 };
        p.skip_ws();
        p.expect(b'{')?;
        let mut entries = Vec::new();
        loop {
            p.skip_ws();
            if p.eat(b'}') {
                break;
            }
            let key = match p.value(1)? {
                PyValue::Str(k) => k,
                _ => return Err(format!("dict key at byte {} is not a string", p.pos)),
            };
            p.skip_ws();
            p.expect(b':')?;
            p.skip_ws();
            let value = p.value(1)?;
            entries.push((key, value));
            p.skip_ws();
            if !p.eat(b',') {
                p.expect_close(b'}')?;
                break;
            }
        }
        p.skip_ws();
        if p.pos != p.s.len() {
            return Err(format!("unexpected {} after the dict", p.describe_here()));
        }
        Ok(entries)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> ParseResult<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' but found {}", c as char, self.describe_here()))
        }
    }

    /// The end of a dict or sequence, after an item not followed by a comma.
    fn expect_close(&mut self, close: u8) -> ParseResult<()> {
        if self.eat(close) {
            Ok(())
        } else {
            Err(format!("expected ',' or '{}' but found {}", close as char, self.describe_here()))
        }
    }

    fn describe_here(&self) -> String {
        match self.peek() {
            None => "the end of the header".to_string(),
            Some(c) if c.is_ascii_graphic() => format!("{:?} at byte {}", c as char, self.pos),
            Some(c) => format!("byte 0x{c:02x} at byte {}", self.pos),
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)) {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> ParseResult<PyValue> {
        if depth > MAX_NESTING {
            return Err(format!("nested too deeply at byte {}", self.pos));
        }
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => self.string(q),
            Some(b'(') => self.sequence(b')', depth),
            Some(b'[') => self.sequence(b']', depth),
            Some(c) if c == b'-' || c.is_ascii_digit() => self.int(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"True" => Ok(PyValue::Bool(true)),
                    b"False" => Ok(PyValue::Bool(false)),
                    word => {
                        Err(format!("unexpected name '{}' at byte {start}", printable(&String::from_utf8_lossy(word))))
                    }
                }
            }
            _ => Err(format!("expected a value but found {}", self.describe_here())),
        }
    }

    fn string(&mut self, quote: u8) -> ParseResult<PyValue> {
        let start = self.pos;
        self.pos += 1;
        let body = self.pos;
        loop {
            match self.peek() {
                None | Some(b'\n') => return Err(format!("unterminated string starting at byte {start}")),
                Some(b'\\') => {
                    return Err(format!("escape sequences in strings are not supported (byte {})", self.pos))
                }
                Some(c) if c == quote => break,
                Some(_) => self.pos += 1,
            }
        }
        let text = String::from_utf8_lossy(&self.s[body..self.pos]).into_owned();
        self.pos += 1;
        Ok(PyValue::Str(text))
    }

    fn int(&mut self) -> ParseResult<PyValue> {
        let start = self.pos;
        let negative = self.eat(b'-');
        let digits = self.pos;
        let mut n: i64 = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(i64::from(c - b'0')))
                .ok_or_else(|| format!("integer at byte {start} is too large"))?;
            self.pos += 1;
        }
        if self.pos == digits {
            return Err(format!("expected digits after '-' at byte {start}"));
        }
        // Python 2 long suffix, as in `(3L, 4L)`.
        let _ = self.eat(b'L') || self.eat(b'l');
        Ok(PyValue::Int(if negative { -n } else { n }))
    }

    /// A tuple `( … )` or list `[ … ]`. As in Python, `(x)` without a
    /// trailing comma is just `x`.
    fn sequence(&mut self, close: u8, depth: usize) -> ParseResult<PyValue> {
        self.pos += 1;
        let mut items = Vec::new();
        let mut trailing_comma = false;
        loop {
            self.skip_ws();
            if self.eat(close) {
                break;
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            trailing_comma = self.eat(b',');
            if !trailing_comma {
                self.expect_close(close)?;
                break;
            }
        }
        if close == b']' {
            return Ok(PyValue::List(items));
        }
        if items.len() == 1 && !trailing_comma {
            if let Some(only) = items.pop() {
                return Ok(only);
            }
        }
        Ok(PyValue::Tuple(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tempfile::TempDir;

    fn dir() -> TempDir {
        tempfile::tempdir().unwrap()
    }

    fn file(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    /// The error's message, checked to be one line that names the path.
    fn message<T: std::fmt::Debug>(result: Result<T>, path: &Path) -> String {
        let msg = result.unwrap_err().to_string();
        assert!(!msg.contains('\n'), "message is not one line: {msg:?}");
        assert!(msg.contains(&path.display().to_string()), "message does not name {}: {msg}", path.display());
        msg
    }

    fn assert_contains(msg: &str, needle: &str) {
        assert!(msg.contains(needle), "{msg:?} does not contain {needle:?}");
    }

    /// An `.npy` file with the given version, header dict and data, laid out
    /// the way NumPy lays it out (padded with spaces, ending in '\n', total
    /// header a multiple of 64 bytes).
    fn npy_bytes(major: u8, dict: &str, data: &[u8]) -> Vec<u8> {
        let prelude = if major == 1 { 10 } else { 12 };
        let total = (prelude + dict.len() + 1).div_ceil(64) * 64;
        let header_len = total - prelude;
        let mut out = NPY_MAGIC.to_vec();
        out.extend_from_slice(&[major, 0]);
        if major == 1 {
            out.extend_from_slice(&(header_len as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(header_len as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.resize(total - 1, b' ');
        out.push(b'\n');
        assert_eq!(out.len() % 64, 0);
        out.extend_from_slice(data);
        out
    }

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn fvecs_bytes(rows: &[&[f32]]) -> Vec<u8> {
        let mut out = Vec::new();
        for row in rows {
            out.extend_from_slice(&(row.len() as i32).to_le_bytes());
            out.extend_from_slice(&f32_bytes(row));
        }
        out
    }

    fn ivecs_bytes(rows: &[&[i32]]) -> Vec<u8> {
        let mut out = Vec::new();
        for row in rows {
            out.extend_from_slice(&(row.len() as i32).to_le_bytes());
            for v in row.iter() {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    fn matrix(rows: usize, dim: usize) -> Vec<f32> {
        (0..rows * dim).map(|i| i as f32 * 0.5 - 3.25).collect()
    }

    fn leftovers(dir: &TempDir) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    // ----- round trips ----------------------------------------------------

    #[test]
    fn fvecs_round_trip() {
        let d = dir();
        let path = d.path().join("v.fvecs");
        let data = matrix(7, 5);
        write_fvecs(&path, &data, 5).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 7 * (4 + 4 * 5));
        let f = VectorFile::open(&path).unwrap();
        assert_eq!((f.len(), f.dim(), f.is_empty()), (7, 5, false));
        assert_eq!(f.path(), path.as_path());
        assert_eq!(f.read_all().unwrap(), data);
        assert_eq!(leftovers(&d), ["v.fvecs"]);
    }

    #[test]
    fn fvecs_reads_handwritten_bytes() {
        let d = dir();
        let path = file(&d, "v.fvecs", &fvecs_bytes(&[&[1.0, -2.0], &[f32::MAX, 0.25]]));
        let f = VectorFile::open(&path).unwrap();
        assert_eq!((f.len(), f.dim()), (2, 2));
        assert_eq!(f.read_all().unwrap(), [1.0, -2.0, f32::MAX, 0.25]);
    }

    #[test]
    fn npy_round_trip() {
        let d = dir();
        let path = d.path().join("v.npy");
        let data = matrix(9, 3);
        write_npy_f32(&path, &data, 3).unwrap();
        let f = VectorFile::open(&path).unwrap();
        assert_eq!((f.len(), f.dim()), (9, 3));
        assert_eq!(f.read_all().unwrap(), data);
        assert_eq!(leftovers(&d), ["v.npy"]);
    }

    #[test]
    fn npy_writer_matches_numpy_layout() {
        let d = dir();
        let path = d.path().join("v.npy");
        let data = matrix(3, 4);
        write_npy_f32(&path, &data, 4).unwrap();
        let expected = npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", &f32_bytes(&data));
        assert_eq!(fs::read(&path).unwrap(), expected);
    }

    #[test]
    fn ivecs_round_trip() {
        let d = dir();
        let path = d.path().join("r.ivecs");
        let rows = [3, -1, 7, 0, 42, i32::MAX];
        write_ivecs(&path, &rows, 3).unwrap();
        assert_eq!(fs::read(&path).unwrap(), ivecs_bytes(&[&[3, -1, 7], &[0, 42, i32::MAX]]));
        // k = 1 is an ids file.
        let ids_path = d.path().join("ids.ivecs");
        write_ivecs(&ids_path, &[5, 0, 9], 1).unwrap();
        assert_eq!(read_ids(&ids_path).unwrap(), [5, 0, 9]);
        assert_eq!(leftovers(&d), ["ids.ivecs", "r.ivecs"]);
    }

    #[test]
    fn writers_replace_existing_files() {
        let d = dir();
        let path = file(&d, "v.fvecs", b"old contents");
        write_fvecs(&path, &[1.0, 2.0], 2).unwrap();
        assert_eq!(VectorFile::open(&path).unwrap().read_all().unwrap(), [1.0, 2.0]);
    }

    #[test]
    fn writers_reject_bad_shapes_and_leave_nothing() {
        let d = dir();
        let path = d.path().join("x.fvecs");
        let msg = message(write_fvecs(&path, &[1.0; 5], 2), &path);
        assert_contains(&msg, "cannot write 5 values as rows of dim = 2");
        assert!(write_fvecs(&path, &[], 0).is_err());
        assert!(write_fvecs(&path, &[0.0; 4], MAX_FVECS_DIM + 1).is_err());
        assert!(write_npy_f32(&d.path().join("x.npy"), &[1.0; 5], 2).is_err());
        assert!(write_ivecs(&d.path().join("x.ivecs"), &[1; 5], 0).is_err());
        assert!(write_ivecs(&d.path().join("x.ivecs"), &[1; 5], 3).is_err());
        assert!(leftovers(&d).is_empty(), "{:?}", leftovers(&d));
    }

    #[test]
    fn writer_failure_leaves_nothing_behind() {
        let d = dir();
        let path = d.path().join("missing-dir").join("r.ivecs");
        let msg = message(write_ivecs(&path, &[1, 2], 2), &path);
        assert!(!path.exists());
        assert_contains(&msg, "r.ivecs");
        // The rename fails because the target is a non-empty directory: the
        // temporary file must be cleaned up.
        let target = d.path().join("busy.fvecs");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"x").unwrap();
        assert!(write_fvecs(&target, &[1.0], 1).is_err());
        assert_eq!(leftovers(&d), ["busy.fvecs"]);
    }

    // ----- read_rows ------------------------------------------------------

    #[test]
    fn read_rows_ranges() {
        let d = dir();
        let data = matrix(10, 3);
        let fv = d.path().join("v.fvecs");
        let np = d.path().join("v.npy");
        write_fvecs(&fv, &data, 3).unwrap();
        write_npy_f32(&np, &data, 3).unwrap();
        for path in [&fv, &np] {
            let f = VectorFile::open(path).unwrap();
            let mut out = vec![99.0];
            f.read_rows(2, 3, &mut out).unwrap();
            assert_eq!(out[0], 99.0, "read_rows must append");
            assert_eq!(&out[1..], &data[6..15]);
            out.clear();
            f.read_rows(10, 0, &mut out).unwrap();
            assert!(out.is_empty());
            f.read_rows(9, 1, &mut out).unwrap();
            assert_eq!(out, &data[27..30]);

            let mut out = vec![1.0];
            let msg = message(f.read_rows(8, 3, &mut out), path);
            assert_contains(&msg, "rows 8..11 requested but the file has 10 rows");
            assert_eq!(out, [1.0]);
            let msg = message(f.read_rows(11, 0, &mut out), path);
            assert_contains(&msg, "rows 11..11");
            assert!(f.read_rows(usize::MAX, 2, &mut out).is_err());
            assert!(f.read_rows(1, usize::MAX, &mut out).is_err());
            assert_eq!(out, [1.0]);
        }
    }

    #[test]
    fn fvecs_inconsistent_row_header_names_the_row() {
        let d = dir();
        let mut bytes = fvecs_bytes(&[&[1.0f32, 2.0, 3.0][..]; 5]);
        // Row 3's header says 7 (the size still works out).
        bytes[3 * 16..3 * 16 + 4].copy_from_slice(&7i32.to_le_bytes());
        let path = file(&d, "v.fvecs", &bytes);
        let f = VectorFile::open(&path).unwrap();
        assert_eq!(f.len(), 5);
        let mut out = Vec::new();
        f.read_rows(0, 3, &mut out).unwrap();
        assert_eq!(out.len(), 9);
        let mut out = vec![0.5];
        let msg = message(f.read_rows(1, 4, &mut out), &path);
        assert_contains(&msg, "row 3: dimension header is 7, but the file's dimension is 3");
        assert_eq!(out, [0.5], "a failed read must not leave partial rows");
        let msg = message(f.read_all(), &path);
        assert_contains(&msg, "row 3:");
    }

    // ----- common errors --------------------------------------------------

    #[test]
    fn missing_file_is_an_io_error_naming_the_path() {
        let d = dir();
        for name in ["nope.fvecs", "nope.npy"] {
            let path = d.path().join(name);
            let err = VectorFile::open(&path).unwrap_err();
            assert!(matches!(&err, Error::Io { path: p, .. } if p == &path), "{err:?}");
            message(Err::<(), _>(err), &path);
        }
        for name in ["nope.ivecs", "nope.npy"] {
            let path = d.path().join(name);
            let err = read_ids(&path).unwrap_err();
            assert!(matches!(&err, Error::Io { path: p, .. } if p == &path), "{err:?}");
        }
    }

    #[test]
    fn empty_files() {
        let d = dir();
        for name in ["e.fvecs", "e.npy"] {
            let path = file(&d, name, b"");
            assert_contains(&message(VectorFile::open(&path), &path), "empty file");
        }
        for name in ["e.ivecs", "e.npy"] {
            let path = file(&d, name, b"");
            assert_contains(&message(read_ids(&path), &path), "empty file");
        }
    }

    #[test]
    fn directories_are_rejected() {
        let d = dir();
        let path = d.path().join("dir.fvecs");
        fs::create_dir(&path).unwrap();
        assert_contains(&message(VectorFile::open(&path), &path), "not a regular file");
    }

    #[test]
    fn unsupported_extensions_name_the_accepted_ones() {
        let d = dir();
        let path = file(&d, "v.bin", &fvecs_bytes(&[&[1.0]]));
        let msg = message(VectorFile::open(&path), &path);
        assert_contains(&msg, "unsupported file extension '.bin'");
        assert_contains(&msg, ".fvecs or .npy");
        let path = file(&d, "noext", b"x");
        assert_contains(&message(VectorFile::open(&path), &path), "no file extension");
        let path = file(&d, "ids.fvecs", &fvecs_bytes(&[&[1.0]]));
        assert_contains(&message(read_ids(&path), &path), ".npy or .ivecs");
        // Extensions are case-insensitive.
        let path = file(&d, "UP.FVECS", &fvecs_bytes(&[&[1.0]]));
        assert_eq!(VectorFile::open(&path).unwrap().len(), 1);
    }

    // ----- fvecs errors ---------------------------------------------------

    #[test]
    fn fvecs_truncated() {
        let d = dir();
        let mut bytes = fvecs_bytes(&[&[1.0f32, 2.0, 3.0, 4.0][..]; 3]);
        bytes.truncate(bytes.len() - 2);
        let path = file(&d, "t.fvecs", &bytes);
        let msg = message(VectorFile::open(&path), &path);
        assert_contains(&msg, "truncated: 58 bytes is not a whole number of rows of dimension 4");
        let path = file(&d, "short.fvecs", &[4, 0]);
        let msg = message(VectorFile::open(&path), &path);
        assert_contains(&msg, "truncated: 2 bytes is shorter than the 4-byte dimension header");
    }

    #[test]
    fn fvecs_bad_dimension_header() {
        let d = dir();
        for (dim, needle) in [
            (0i32, "row 0: dimension header is 0; it must be positive"),
            (-3, "row 0: dimension header is -3; it must be positive"),
            (1_000_001, "dimension header 1000001 exceeds the limit of 1000000"),
            // The bytes of 1.0f32 read as an int: a float file without headers.
            (1.0f32.to_bits() as i32, "is this really an .fvecs file?"),
        ] {
            let mut bytes = dim.to_le_bytes().to_vec();
            bytes.extend_from_slice(&[0; 16]);
            let path = file(&d, "b.fvecs", &bytes);
            assert_contains(&message(VectorFile::open(&path), &path), needle);
        }
        // The limit itself is accepted.
        let mut bytes = (MAX_FVECS_DIM as i32).to_le_bytes().to_vec();
        bytes.resize(4 + 4 * MAX_FVECS_DIM, 0);
        let path = file(&d, "big.fvecs", &bytes);
        assert_eq!(VectorFile::open(&path).unwrap().dim(), MAX_FVECS_DIM);
    }

    // ----- npy ------------------------------------------------------------

    #[test]
    fn npy_header_exactly_as_numpy_writes_it() {
        let d = dir();
        let data = matrix(3, 4);
        let bytes = npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", &f32_bytes(&data));
        // Exactly what numpy 2.4 `np.save` writes for this array: a
        // 128-byte header (numpy leaves room for the shape to grow).
        let numpy_header: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }                                                          \n";
        assert_eq!(numpy_header.len(), 128);
        assert_eq!(&bytes[..128], numpy_header);
        assert_eq!(bytes.len(), 128 + 48);
        let header = parse_npy_header(Path::new("x.npy"), &bytes).unwrap();
        assert_eq!(header.descr, "<f4");
        assert!(!header.fortran_order);
        assert_eq!(header.shape, [3, 4]);
        assert_eq!(header.data_offset, 128);
        let path = file(&d, "v.npy", &bytes);
        let f = VectorFile::open(&path).unwrap();
        assert_eq!((f.len(), f.dim()), (3, 4));
        assert_eq!(f.read_all().unwrap(), data);
    }

    #[test]
    fn npy_one_dimensional_shape() {
        let bytes = npy_bytes(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }", &[0; 40]);
        let header = parse_npy_header(Path::new("x.npy"), &bytes).unwrap();
        assert_eq!(header.shape, [5]);
        assert_eq!(format_shape(&header.shape), "(5,)");
        // Python's `(5)` is the integer 5, not a tuple.
        let bytes = npy_bytes(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (5), }", &[0; 40]);
        let err = parse_npy_header(Path::new("x.npy"), &bytes).unwrap_err();
        assert_contains(&err.to_string(), "'shape' is not a tuple");
    }

    #[test]
    fn npy_header_variants_parse() {
        for (dict, shape) in [
            // Key order, quotes, spacing and a missing trailing comma vary.
            (r#"{"shape": (2, 3), "fortran_order": False, "descr": "<f4"}"#, vec![2, 3]),
            ("{ 'descr' : 'f4' ,'fortran_order':False,'shape':( 2 , 3 , ) }", vec![2, 3]),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", vec![2, 3]),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", vec![]),
        ] {
            let bytes = npy_bytes(1, dict, &[]);
            let header = parse_npy_header(Path::new("x.npy"), &bytes).unwrap_or_else(|e| panic!("{dict}: {e}"));
            assert_eq!(header.shape, shape, "{dict}");
        }
    }

    #[test]
    fn npy_versions_2_and_3() {
        let d = dir();
        let data = matrix(2, 3);
        for major in [2u8, 3] {
            let bytes =
                npy_bytes(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", &f32_bytes(&data));
            let path = file(&d, "v.npy", &bytes);
            assert_eq!(VectorFile::open(&path).unwrap().read_all().unwrap(), data);
        }
        let mut bytes = npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", &f32_bytes(&data));
        bytes[6] = 4;
        let path = file(&d, "v.npy", &bytes);
        assert_contains(&message(VectorFile::open(&path), &path), "unsupported .npy format version 4.0");
    }

    #[test]
    fn npy_zero_rows_opens_empty() {
        let d = dir();
        let path = d.path().join("z.npy");
        write_npy_f32(&path, &[], 6).unwrap();
        let f = VectorFile::open(&path).unwrap();
        assert_eq!((f.len(), f.dim(), f.is_empty()), (0, 6, true));
        assert!(f.read_all().unwrap().is_empty());
    }

    #[test]
    fn npy_bad_magic() {
        let d = dir();
        let mut bytes = npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), }", &[0; 4]);
        bytes[1] = b'n';
        let path = file(&d, "m.npy", &bytes);
        assert_contains(&message(VectorFile::open(&path), &path), "not an .npy file (bad magic");
        let path = file(&d, "ids.npy", &bytes);
        assert_contains(&message(read_ids(&path), &path), "bad magic");
        let path = file(&d, "x.npy", b"PK");
        assert_contains(&message(VectorFile::open(&path), &path), "bad magic");
    }

    #[test]
    fn npy_truncated_header() {
        let d = dir();
        let path = file(&d, "t.npy", b"\x93NUMPY\x01");
        assert_contains(&message(VectorFile::open(&path), &path), "truncated .npy header");
        let bytes = npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), }", &[]);
        let path = file(&d, "t.npy", &bytes[..40]);
        assert_contains(
            &message(VectorFile::open(&path), &path),
            "truncated .npy header: it claims 118 bytes but the file is only 40 bytes",
        );
        // A version-2 header length near u32::MAX must not overflow.
        let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        let path = file(&d, "t.npy", &bytes);
        assert_contains(&message(VectorFile::open(&path), &path), "truncated .npy header");
    }

    #[test]
    fn npy_bad_header_dict() {
        let d = dir();
        let deep = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {}, }}", "(".repeat(10_000));
        for (dict, needle) in [
            ("not a dict", "expected '{' but found 'n' at byte 0"),
            ("{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"),
            ("{'descr': '<f4', 'shape': (1, 1)}", "missing key 'fortran_order'"),
            ("{'fortran_order': False, 'shape': (1, 1)}", "missing key 'descr'"),
            ("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1, 1)}", "duplicate key 'descr'"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), 'extra': 1}", "unexpected key 'extra'"),
            ("{'descr': '<f4, 'fortran_order': False}", "expected ',' or '}' but found 'f' at byte 17"),
            ("{'descr' '<f4'}", "expected ':' but found '\\'' at byte 9"),
            ("{'shape': (1 2)}", "expected ',' or ')' but found '2' at byte 13"),
            ("{'descr': '<f4", "unterminated string"),
            ("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1, 1)}", "unexpected name 'Maybe'"),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': (1, 1)}", "'fortran_order' is not True or False"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1, -1)}", "tuple of non-negative integers"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': [1, 1]}", "'shape' is not a tuple"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 1)}", "is too large"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1)} x", "unexpected 'x'"),
            (deep.as_str(), "nested too deeply"),
        ] {
            let path = file(&d, "h.npy", &npy_bytes(1, dict, &[0; 4]));
            let msg = message(VectorFile::open(&path), &path);
            assert_contains(&msg, "bad .npy header: ");
            assert_contains(&msg, needle);
        }
    }

    #[test]
    fn npy_unsupported_dtype() {
        let d = dir();
        for (descr, data) in [("<f8", 8), (">f4", 4), ("<i4", 4), ("S4", 4)] {
            let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (1, 1), }}");
            let path = file(&d, "d.npy", &npy_bytes(1, &dict, &vec![0; data]));
            let msg = message(VectorFile::open(&path), &path);
            assert_contains(&msg, &format!("unsupported dtype: expected float32 ('<f4'), got '{descr}'"));
        }
        let path = file(
            &d,
            "d.npy",
            &npy_bytes(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", &[0; 4]),
        );
        assert_contains(&message(VectorFile::open(&path), &path), "structured (record) arrays");
        // Control characters in the dtype stay on one line.
        let path =
            file(&d, "d.npy", &npy_bytes(1, "{'descr': '<f\r8', 'fortran_order': False, 'shape': (1, 1), }", &[0; 8]));
        assert_contains(&message(VectorFile::open(&path), &path), r"got '<f\r8'");
        // '=f4' and 'f4' are native order, little-endian on this host.
        if cfg!(target_endian = "little") {
            for descr in ["=f4", "f4"] {
                let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (1, 2), }}");
                let path = file(&d, "d.npy", &npy_bytes(1, &dict, &f32_bytes(&[1.5, -2.0])));
                assert_eq!(VectorFile::open(&path).unwrap().read_all().unwrap(), [1.5, -2.0]);
            }
        }
    }

    #[test]
    fn npy_fortran_order_rejected() {
        let d = dir();
        let path =
            file(&d, "f.npy", &npy_bytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", &[0; 16]));
        assert_contains(&message(VectorFile::open(&path), &path), "Fortran-order arrays");
        let path =
            file(&d, "ids.npy", &npy_bytes(1, "{'descr': '<i8', 'fortran_order': True, 'shape': (2,), }", &[0; 16]));
        assert_contains(&message(read_ids(&path), &path), "Fortran-order arrays");
    }

    #[test]
    fn npy_wrong_ndim() {
        let d = dir();
        for (shape, data) in [("(5,)", 20), ("(2, 2, 2)", 32), ("()", 4)] {
            let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
            let path = file(&d, "n.npy", &npy_bytes(1, &dict, &vec![0; data]));
            let msg = message(VectorFile::open(&path), &path);
            assert_contains(&msg, &format!("expected a 2-D array of shape (rows, dim), got shape {shape}"));
        }
        let path = file(&d, "n.npy", &npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 0), }", &[]));
        assert_contains(&message(VectorFile::open(&path), &path), "has zero columns");
    }

    #[test]
    fn npy_data_length_must_match_shape() {
        let d = dir();
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
        for (len, needle) in [
            (44, "data is 44 bytes but shape (3, 4) of '<f4' needs 48 bytes"),
            (52, "data is 52 bytes but shape (3, 4) of '<f4' needs 48 bytes"),
            (0, "data is 0 bytes"),
        ] {
            let path = file(&d, "l.npy", &npy_bytes(1, dict, &vec![0; len]));
            assert_contains(&message(VectorFile::open(&path), &path), needle);
        }
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904), }";
        let path = file(&d, "l.npy", &npy_bytes(1, dict, &[0; 4]));
        assert_contains(&message(VectorFile::open(&path), &path), "too large to address");
    }

    // ----- ids ------------------------------------------------------------

    #[test]
    fn ids_from_npy_of_every_integer_dtype() {
        let d = dir();
        let values: [u64; 4] = [0, 1, 100, 127];
        for kind in ['i', 'u'] {
            for size in [1usize, 2, 4, 8] {
                for order in ['<', '>', '|', '='] {
                    if order == '|' && size != 1 {
                        continue;
                    }
                    let mut data = Vec::new();
                    for v in values {
                        let le = v.to_le_bytes();
                        let mut item = le[..size].to_vec();
                        let big = order == '>' || (order == '=' && cfg!(target_endian = "big"));
                        if big {
                            item.reverse();
                        }
                        data.extend_from_slice(&item);
                    }
                    let descr = format!("{order}{kind}{size}");
                    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (4,), }}");
                    let path = file(&d, "ids.npy", &npy_bytes(1, &dict, &data));
                    assert_eq!(read_ids(&path).unwrap(), values, "{descr}");
                }
            }
        }
    }

    #[test]
    fn ids_from_npy_big_values_and_byte_order() {
        let d = dir();
        let dict = "{'descr': '>u8', 'fortran_order': False, 'shape': (2,), }";
        let mut data = u64::MAX.to_be_bytes().to_vec();
        data.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        let path = file(&d, "ids.npy", &npy_bytes(1, dict, &data));
        assert_eq!(read_ids(&path).unwrap(), [u64::MAX, 0x0102_0304_0506_0708]);
        let dict = "{'descr': '>i2', 'fortran_order': False, 'shape': (2,), }";
        let path = file(&d, "ids.npy", &npy_bytes(1, dict, &[0x01, 0x02, 0x7f, 0xff]));
        assert_eq!(read_ids(&path).unwrap(), [0x0102, 0x7fff]);
        let dict = "{'descr': '<u2', 'fortran_order': False, 'shape': (1,), }";
        let path = file(&d, "ids.npy", &npy_bytes(1, dict, &[0xff, 0xff]));
        assert_eq!(read_ids(&path).unwrap(), [65535]);
        let dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (0,), }";
        let path = file(&d, "ids.npy", &npy_bytes(1, dict, &[]));
        assert!(read_ids(&path).unwrap().is_empty());
    }

    #[test]
    fn negative_npy_id_names_the_row() {
        let d = dir();
        for (descr, data, needle) in [
            ("<i4", vec![5, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff], "row 1: negative id -2"),
            ("|i1", vec![1, 2, 3, 0x80], "row 3: negative id -128"),
            (">i2", vec![0, 1, 0xff, 0xff], "row 1: negative id -1"),
            ("<i8", i64::MIN.to_le_bytes().to_vec(), "row 0: negative id -9223372036854775808"),
        ] {
            let n = data.len() / usize::from(descr.as_bytes()[2] - b'0');
            let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({n},), }}");
            let path = file(&d, "ids.npy", &npy_bytes(1, &dict, &data));
            assert_contains(&message(read_ids(&path), &path), needle);
        }
    }

    #[test]
    fn ids_npy_errors() {
        let d = dir();
        for (dict, data, needle) in [
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                8,
                "unsupported dtype: expected an integer dtype (i1, i2, i4, i8, u1, u2, u4, u8), got '<f4'",
            ),
            ("{'descr': '<i16', 'fortran_order': False, 'shape': (1,), }", 16, "got '<i16'"),
            ("{'descr': '<i3', 'fortran_order': False, 'shape': (1,), }", 3, "got '<i3'"),
            (
                "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 1), }",
                16,
                "expected a 1-D array of ids, got shape (2, 1)",
            ),
            (
                "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
                16,
                "data is 16 bytes but shape (3,) of '<i8' needs 24 bytes",
            ),
        ] {
            let path = file(&d, "ids.npy", &npy_bytes(1, dict, &vec![0; data]));
            assert_contains(&message(read_ids(&path), &path), needle);
        }
    }

    #[test]
    fn ids_from_ivecs() {
        let d = dir();
        let path = file(&d, "ids.ivecs", &ivecs_bytes(&[&[3], &[0], &[i32::MAX]]));
        assert_eq!(read_ids(&path).unwrap(), [3, 0, i32::MAX as u64]);
    }

    #[test]
    fn ids_ivecs_errors() {
        let d = dir();
        let cases: [(Vec<u8>, &str); 6] = [
            (ivecs_bytes(&[&[1, 2, 3]]), "row 0 has 3 values; an .ivecs ids file must have exactly one value per row"),
            (ivecs_bytes(&[&[1], &[2], &[3, 4]]), "row 2 has 2 values"),
            (ivecs_bytes(&[&[1], &[]]), "row 1: dimension header is 0"),
            (ivecs_bytes(&[&[4], &[-7]]), "row 1: negative id -7"),
            (
                ivecs_bytes(&[&[4], &[5]])[..12].to_vec(),
                "truncated: 12 bytes is not a whole number of rows of dimension 1",
            ),
            (vec![1, 0], "truncated: 2 bytes is shorter than the 4-byte dimension header"),
        ];
        for (bytes, needle) in cases {
            let path = file(&d, "ids.ivecs", &bytes);
            assert_contains(&message(read_ids(&path), &path), needle);
        }
    }

    // ----- descr parsing --------------------------------------------------

    #[test]
    fn descr_parsing() {
        let native = cfg!(target_endian = "little");
        let dt = |little_endian, kind, size| Some(Dtype { little_endian, kind, size });
        assert_eq!(parse_descr("<f4"), dt(true, b'f', 4));
        assert_eq!(parse_descr(">i8"), dt(false, b'i', 8));
        assert_eq!(parse_descr("|u1"), dt(native, b'u', 1));
        assert_eq!(parse_descr("=f4"), dt(native, b'f', 4));
        assert_eq!(parse_descr("f4"), dt(native, b'f', 4));
        for bad in ["", "<", "<f", "<f4x", "<f123", "é4", "<é"] {
            assert_eq!(parse_descr(bad), None, "{bad:?}");
        }
    }

    // ----- robustness -----------------------------------------------------

    fn exercise(dir: &TempDir, bytes: &[u8]) {
        for name in ["p.fvecs", "p.npy"] {
            let path = file(dir, name, bytes);
            match VectorFile::open(&path) {
                Ok(f) => {
                    if let Ok(all) = f.read_all() {
                        assert_eq!(all.len(), f.len() * f.dim());
                    }
                    let mut out = Vec::new();
                    let _ = f.read_rows(f.len() / 2, f.len() - f.len() / 2, &mut out);
                    assert!(f.read_rows(f.len(), 1, &mut out).is_err());
                }
                Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
            }
        }
        for name in ["p.ivecs", "p.npy"] {
            let path = file(dir, name, bytes);
            if let Err(e) = read_ids(&path) {
                assert!(!e.to_string().contains('\n'), "{e}");
            }
        }
    }

    fn valid_npy() -> Vec<u8> {
        npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", &f32_bytes(&matrix(2, 3)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            exercise(&dir(), &bytes);
        }

        #[test]
        fn arbitrary_npy_headers_never_panic(
            major in 0u8..5,
            len in any::<u16>(),
            body in proptest::collection::vec(
                prop_oneof![
                    Just(b'{'), Just(b'}'), Just(b'('), Just(b')'), Just(b'['), Just(b'\''),
                    Just(b','), Just(b':'), Just(b' '), Just(b'-'), Just(b'L'), any::<u8>(),
                    (b'0'..=b'9'),
                ],
                0..200,
            ),
        ) {
            let mut bytes = NPY_MAGIC.to_vec();
            bytes.extend_from_slice(&[major, 0]);
            bytes.extend_from_slice(&len.to_le_bytes());
            if major >= 2 {
                bytes.extend_from_slice(&[0, 0]);
            }
            bytes.extend_from_slice(&body);
            exercise(&dir(), &bytes);
        }

        #[test]
        fn mutated_valid_files_never_panic(
            which in 0usize..4,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let mut bytes = match which {
                0 => valid_npy(),
                1 => fvecs_bytes(&[&[1.0f32, 2.0, 3.0][..]; 4]),
                2 => ivecs_bytes(&[&[1], &[2], &[3]]),
                _ => npy_bytes(1, "{'descr': '>i2', 'fortran_order': False, 'shape': (3,), }", &[0; 6]),
            };
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            exercise(&dir(), &bytes);
        }
    }
}
