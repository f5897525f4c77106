//! Small file writers and readers the tests check the command line with,
//! written independently of the engine's own (`vecio`).

use std::collections::BTreeMap;
use std::path::Path;

/// Writes a 1-D little-endian int64 `.npy` file (NumPy format 1.0).
pub fn write_npy_i64(path: &Path, ids: &[i64]) {
    write_npy_1d(path, "<i8", ids.iter().map(|id| id.to_le_bytes()));
}

/// Writes a 1-D `.npy` file (NumPy format 1.0) of 8-byte items of dtype
/// `descr` (`<i8`, `<u8`), as NumPy lays it out.
pub fn write_npy_1d(path: &Path, descr: &str, items: impl ExactSizeIterator<Item = [u8; 8]>) {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({},), }}", items.len());
    let total = (10 + dict.len() + 1).div_ceil(64) * 64;
    let mut b = Vec::with_capacity(total + items.len() * 8);
    b.extend_from_slice(b"\x93NUMPY\x01\x00");
    b.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    b.extend_from_slice(dict.as_bytes());
    b.resize(total - 1, b' ');
    b.push(b'\n');
    items.for_each(|item| b.extend_from_slice(&item));
    std::fs::write(path, b).unwrap();
}

/// Parses an `.ivecs` file of rows of equal width: (rows, width, values).
pub fn read_ivecs(path: &Path) -> (usize, usize, Vec<i32>) {
    let b = std::fs::read(path).unwrap();
    let mut vals = Vec::new();
    let mut rest = &b[..];
    let mut width = None;
    let mut rows = 0;
    while !rest.is_empty() {
        let w = i32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        assert_eq!(*width.get_or_insert(w), w, "ragged .ivecs");
        for c in rest[4..4 + 4 * w].chunks_exact(4) {
            vals.push(i32::from_le_bytes(c.try_into().unwrap()));
        }
        rest = &rest[4 + 4 * w..];
        rows += 1;
    }
    (rows, width.unwrap_or(0), vals)
}

/// Names and contents of the files directly inside `dir`.
pub fn dir_contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let bytes = if e.path().is_file() { std::fs::read(e.path()).unwrap() } else { Vec::new() };
            (name, bytes)
        })
        .collect()
}
