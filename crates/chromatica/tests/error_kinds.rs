//! Each distinct failure has its own `Error` variant, so callers match
//! kinds, not messages. Every case goes through the public API only.

use chromatica::{Config, Error, Index, SearchParams, TrainOptions};

/// A small trainable index: 16 dimensions, 4 lists, 4 sub-quantizers.
fn config() -> Config {
    Config { dim: 16, nlist: 4, m: 4, nbits: 4, nprobe: 2, ..Config::preset(chromatica::Preset::Memory) }
}

fn data(n: usize) -> Vec<f32> {
    (0..n * 16).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect()
}

fn trained(dir: &std::path::Path) -> Index {
    let index = Index::create(dir, Config { refine: false, auto_train: false, ..config() }).unwrap();
    index.train(&data(400), &TrainOptions::default(), &mut |_| ()).unwrap();
    index.add(&data(50), None).unwrap();
    index
}

#[test]
fn writing_through_a_read_only_handle_is_read_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    drop(trained(&dir));
    let ro = Index::open_read_only(&dir).unwrap();
    let e = ro.add(&data(1), None).unwrap_err();
    assert!(matches!(&e, Error::ReadOnly(p) if p == &dir), "{e:?}");
    let e = ro.delete(&[0]).unwrap_err();
    assert!(matches!(e, Error::ReadOnly(_)), "{e:?}");
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn creating_in_a_folder_with_files_is_directory_not_empty() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("holiday.jpg"), b"not mine to touch").unwrap();
    let Err(e) = Index::create(tmp.path(), config()) else { panic!("created an index in a folder with files") };
    assert!(matches!(&e, Error::DirectoryNotEmpty(p) if p == tmp.path()), "{e:?}");
    // Nothing was written beside the user's file.
    let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["holiday.jpg"]);
}

#[test]
fn a_vector_file_of_an_unknown_kind_is_unsupported() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("vectors.csv");
    std::fs::write(&path, b"1,2,3\n").unwrap();
    let e = chromatica::vecio::VectorFile::open(&path).unwrap_err();
    assert!(matches!(&e, Error::Unsupported { path: p, .. } if p == &path), "{e:?}");
    let e = chromatica::vecio::read_ids(&path).unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
}

#[test]
fn searching_an_untrained_index_without_refine_is_not_trained() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(tmp.path().join("idx"), Config { refine: false, auto_train: false, ..config() }).unwrap();
    let e = index.search(&data(1), &SearchParams::new(3)).unwrap_err();
    assert!(matches!(e, Error::NotTrained), "{e:?}");
    let e = index.add(&data(1), None).unwrap_err();
    assert!(matches!(e, Error::NotTrained), "{e:?}");
}

#[test]
fn out_of_range_search_parameters_are_invalid_arguments_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let index = trained(&tmp.path().join("idx"));
    let name = |params: SearchParams| match index.search(&data(1), &params) {
        Err(Error::InvalidArgument { name, what }) => {
            assert!(what.contains(name), "{what:?} does not name {name}");
            name
        }
        other => panic!("expected an invalid argument, got {other:?}"),
    };
    assert_eq!(name(SearchParams::new(0)), "k");
    assert_eq!(name(SearchParams::new(3).nprobe(0)), "nprobe");
    assert_eq!(name(SearchParams::new(3).nprobe(5)), "nprobe");
    assert_eq!(name(SearchParams::new(3).candidates(0)), "candidates");
    // Within range, the same search succeeds.
    assert_eq!(index.search(&data(1), &SearchParams::new(3).nprobe(4)).unwrap()[0].len(), 3);
}

#[test]
fn bad_vectors_stay_invalid_input() {
    let tmp = tempfile::tempdir().unwrap();
    let index = trained(&tmp.path().join("idx"));
    let mut v = data(1);
    v[3] = f32::NAN;
    let e = index.add(&v, None).unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    let e = index.add(&data(1)[..15], None).unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
}

/// Without the `object-store` feature an `s3://` address is `Unsupported`,
/// naming the feature; with it, a malformed one is `InvalidArgument`.
#[test]
fn an_s3_address_is_unsupported_without_the_feature_and_checked_with_it() {
    let e = Index::open_read_only("s3://Not_A_Bucket/x").err().expect("must fail");
    if cfg!(feature = "object-store") {
        assert!(matches!(&e, Error::InvalidArgument { name: "uri", .. }), "{e:?}");
        assert!(e.to_string().contains("not a valid bucket name"), "{e}");
    } else {
        assert!(matches!(&e, Error::Unsupported { .. }), "{e:?}");
        assert!(e.to_string().contains("`object-store` feature"), "{e}");
    }
    let Err(e) = Index::create("s3://b/x", config()) else { panic!("create on a 1-letter bucket") };
    assert!(matches!(e, Error::InvalidArgument { .. } | Error::Unsupported { .. }), "{e:?}");
}
