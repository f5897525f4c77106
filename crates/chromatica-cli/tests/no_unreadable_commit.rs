//! Issue 10, item 1, through the command line: the two commands
//! that bricked an index now fail with one line, and the index opens,
//! verifies and re-trains afterwards.

mod common;

use chromatica::testing::Rng;
use chromatica::vecio::write_npy_f32;
use common::*;
use std::path::Path;

fn scaled(n: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n * 16).map(|_| rng.uniform() as f32 * scale).collect()
}

fn shape(dir: &Path, refine: bool) {
    let mut args = vec!["create", p(dir), "--dim", "16", "--nlist", "8", "--m", "4", "--nbits", "8", "--nprobe", "2"];
    if refine {
        args.push("--refine");
    }
    ok(&args);
}

#[test]
fn adding_rand_times_1e20_then_retrain_leaves_a_sound_index() {
    let tmp = tempfile::tempdir().unwrap();
    let (x, a, b) = (tmp.path().join("X"), tmp.path().join("a.npy"), tmp.path().join("b.npy"));
    write_npy_f32(&a, &scaled(2000, 1.0, 1), 16).unwrap();
    write_npy_f32(&b, &scaled(2000, 1e20, 2), 16).unwrap();
    shape(&x, true);
    ok(&["train", p(&x), "--vectors", p(&a)]);
    ok(&["add", p(&x), "--vectors", p(&a)]);
    fails_with(&["add", p(&x), "--vectors", p(&b)], "beyond the limit of ±1e15 at column");
    ok(&["retrain", p(&x)]);
    let (so, _) = ok(&["verify", p(&x)]);
    assert!(so.contains("2000 live vectors"), "{so}");
}

#[test]
fn training_on_one_coordinate_of_5e19_leaves_a_sound_index() {
    let tmp = tempfile::tempdir().unwrap();
    let (y, c) = (tmp.path().join("Y"), tmp.path().join("c.npy"));
    let mut data = scaled(300, 1.0, 3);
    data[3] = 5e19;
    write_npy_f32(&c, &data, 16).unwrap();
    shape(&y, false);
    fails_with(&["train", p(&y), "--vectors", p(&c)], "row 0 has a value (5e19) beyond the limit");
    ok(&["verify", p(&y)]);
    data[3] = 0.5;
    write_npy_f32(&c, &data, 16).unwrap();
    ok(&["train", p(&y), "--vectors", p(&c)]);
    ok(&["verify", p(&y)]);
}
