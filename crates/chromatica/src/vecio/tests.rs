use super::fvecs::MAX_FVECS_DIM;
use super::npy::{parse_descr, parse_npy_header, Dtype, NPY_MAGIC};
use super::*;
use proptest::prelude::*;
use std::fs;
use std::path::PathBuf;
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
        let bytes = npy_bytes(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", &f32_bytes(&data));
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
    let path =
        file(&d, "d.npy", &npy_bytes(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", &[0; 4]));
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
    let path = file(&d, "f.npy", &npy_bytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", &[0; 16]));
    assert_contains(&message(VectorFile::open(&path), &path), "Fortran-order arrays");
    let path = file(&d, "ids.npy", &npy_bytes(1, "{'descr': '<i8', 'fortran_order': True, 'shape': (2,), }", &[0; 16]));
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
        (ivecs_bytes(&[&[4], &[5]])[..12].to_vec(), "truncated: 12 bytes is not a whole number of rows of dimension 1"),
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
