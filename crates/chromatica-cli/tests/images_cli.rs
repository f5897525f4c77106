//! Integration tests of the image commands of the `chromatica` binary:
//! `index` (incremental, tolerant of bad files), `search --colors/--image`
//! (text, JSON, HTML contact sheet, re-ranking), `histogram`, and their
//! error paths.

mod common;

use common::*;
use image::{Rgb, RgbImage};
use serde_json::Value;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

const RED: [u8; 3] = [0xe6, 0x19, 0x4b];
const BLUE: [u8; 3] = [0x43, 0x63, 0xd8];
const GREEN: [u8; 3] = [0x3c, 0xb4, 0x4b];
const YELLOW: [u8; 3] = [0xff, 0xe1, 0x19];
const ORANGE: [u8; 3] = [0xf5, 0x82, 0x31];
const PURPLE: [u8; 3] = [0x91, 0x1e, 0xb4];
/// In no generated image until a test paints one with it.
const CYAN: [u8; 3] = [0x00, 0xce, 0xd1];
const IMAGES: usize = 60;
/// Images painted red and blue; no other image has both.
const RED_BLUE: usize = 8;

fn hex(c: [u8; 3]) -> String {
    format!("{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// A 64×48 PNG of vertical stripes, one per colour, with a little
/// deterministic noise.
fn paint(path: &Path, colours: &[[u8; 3]], seed: u32) {
    let mut img = RgbImage::new(64, 48);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let c = colours[(x as usize * colours.len()) / 64];
        let n = (x.wrapping_mul(31) ^ y.wrapping_mul(17) ^ seed.wrapping_mul(101)) % 9;
        *px = Rgb(c.map(|v| (v as i32 + n as i32 - 4).clamp(0, 255) as u8));
    }
    img.save(path).unwrap();
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    folder: PathBuf,
    idx: PathBuf,
    /// Canonical path and colours of each image.
    images: Vec<(PathBuf, Vec<[u8; 3]>)>,
}

impl Fixture {
    /// 60 images in `root/photos` (some in a sub-folder): the first 8 red
    /// and blue, the rest from green, yellow, orange and purple, with red or
    /// blue (never both) now and then. Not indexed yet.
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let folder = root.join("photos");
        std::fs::create_dir_all(folder.join("sub/deeper")).unwrap();
        let others = [GREEN, YELLOW, ORANGE, PURPLE];
        let mut images = Vec::new();
        for i in 0..IMAGES {
            let colours: Vec<[u8; 3]> = if i < RED_BLUE {
                if i % 2 == 0 {
                    vec![RED, BLUE]
                } else {
                    vec![BLUE, RED, BLUE, RED]
                }
            } else {
                let mut c = vec![others[i % 4]];
                if i % 3 == 0 {
                    c.push(others[(i / 4) % 4]);
                }
                if i % 5 == 0 {
                    c.push(if i % 2 == 0 { RED } else { BLUE });
                }
                c
            };
            let dir = match i % 3 {
                0 => folder.clone(),
                1 => folder.join("sub"),
                _ => folder.join("sub/deeper"),
            };
            let ext = ["png", "PNG", "png"][i % 3];
            let path = dir.join(format!("img{i:02}.{ext}"));
            paint(&path, &colours, i as u32);
            images.push((path, colours));
        }
        // Not images: skipped by extension.
        std::fs::write(folder.join("notes.txt"), "not an image").unwrap();
        let idx = root.join("idx");
        Fixture { _tmp: tmp, root, folder, idx, images }
    }

    /// A fixture already indexed.
    fn indexed() -> Fixture {
        let f = Fixture::new();
        let (so, se) = ok(&["index", p(&f.idx), p(&f.folder)]);
        assert!(so.contains("added 60, updated 0, unchanged 0, removed 0, failed 0"), "{so}");
        assert!(se.is_empty(), "{se}");
        f
    }

    fn colours_of(&self, path: &str) -> &[[u8; 3]] {
        &self.images.iter().find(|(q, _)| p(q) == path).unwrap_or_else(|| panic!("unknown path {path}")).1
    }

    fn search_json(&self, extra: &[&str]) -> Value {
        let mut args = vec!["search", p(&self.idx), "--json"];
        args.extend_from_slice(extra);
        let (so, _) = ok(&args);
        serde_json::from_str(&so).unwrap_or_else(|e| panic!("not JSON ({e}): {so}"))
    }
}

fn result_paths(v: &Value) -> Vec<String> {
    v["results"].as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap().to_owned()).collect()
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[test]
fn index_and_search_by_colours() {
    let f = Fixture::indexed();
    let (so, _) = ok(&["inspect", p(&f.idx)]);
    assert!(so.contains("60 live"), "{so}");
    let spec = format!("{},{}", hex(RED), hex(BLUE));
    let (so, _) = ok(&["search", p(&f.idx), "--colors", &spec, "--k", "5"]);
    assert!(!so.contains('\x1b'), "escape codes when stdout is not a terminal: {so:?}");
    let lines: Vec<&str> = so.lines().collect();
    // The query palette first, then 5 results, then a timing line.
    assert!(lines[0].starts_with("query") && lines[0].contains("#e6194b") && lines[0].contains("#4363d8"), "{so}");
    for (rank, line) in lines[1..6].iter().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0], (rank + 1).to_string(), "{line}");
        assert!(fields[1].parse::<f32>().is_ok(), "{line}");
        let colours = f.colours_of(fields[2]);
        assert!(colours.contains(&RED) && colours.contains(&BLUE), "rank {}: {line}", rank + 1);
        assert!(fields[3..].iter().all(|h| h.len() == 7 && h.starts_with('#')), "{line}");
    }
    assert_eq!(lines.len(), 7, "{so}");
}

#[test]
fn json_output_has_exactly_the_documented_keys() {
    let f = Fixture::indexed();
    let spec = format!("{},{}", hex(RED), hex(BLUE));
    let v = f.search_json(&["--colors", &spec, "--k", "3"]);
    assert_eq!(keys(&v), BTreeSet::from(["query", "results", "timings_ms"]));
    assert_eq!(keys(&v["query"]), BTreeSet::from(["colors", "palette", "k", "rerank", "nprobe", "candidates"]));
    assert_eq!(v["query"]["colors"], spec);
    assert_eq!(v["query"]["palette"], serde_json::json!(["#e6194b", "#4363d8"]));
    assert_eq!(v["query"]["k"], 3);
    assert_eq!(v["query"]["rerank"], "exact", "exact EMD is the default");
    assert_eq!(keys(&v["timings_ms"]), BTreeSet::from(["histogram", "search", "total"]));
    for t in ["histogram", "search", "total"] {
        assert!(v["timings_ms"][t].as_f64().unwrap() >= 0.0);
    }
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    let mut last = f64::NEG_INFINITY;
    for (i, r) in results.iter().enumerate() {
        assert_eq!(keys(r), BTreeSet::from(["rank", "id", "path", "distance", "dominant_colors"]));
        assert_eq!(r["rank"], i + 1);
        assert!(r["id"].as_u64().is_some());
        let d = r["distance"].as_f64().unwrap();
        assert!(d >= last, "results not nearest first");
        last = d;
        let colours = r["dominant_colors"].as_array().unwrap();
        assert!(!colours.is_empty() && colours.len() <= 5);
        for c in colours {
            let c = c.as_str().unwrap();
            assert!(c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit()), "{c}");
        }
        let got = f.colours_of(r["path"].as_str().unwrap());
        assert!(got.contains(&RED) && got.contains(&BLUE));
    }
}

#[test]
fn html_contact_sheet_embeds_thumbnails_and_escapes_paths() {
    let f = Fixture::new();
    let odd = f.folder.join("red&blue <8>.png");
    paint(&odd, &[RED, BLUE], 99);
    ok(&["index", p(&f.idx), p(&f.folder)]);
    let sheet = f.root.join("out/sheet.html");
    std::fs::create_dir_all(sheet.parent().unwrap()).unwrap();
    let spec = format!("{},{}", hex(RED), hex(BLUE));
    let (so, se) = ok(&["search", p(&f.idx), "--colors", &spec, "--k", "9", "--html", p(&sheet)]);
    assert!(so.lines().count() >= 10, "{so}");
    assert!(se.contains(p(&sheet)), "{se}");
    let html = std::fs::read_to_string(&sheet).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<img src=\"data:image/png;base64,"), "no embedded thumbnail");
    assert_eq!(html.matches("<img src=\"data:image/png;base64,").count(), 9);
    assert!(html.contains("red&amp;blue &lt;8&gt;.png"), "path not escaped");
    assert!(!html.contains("red&blue <8>"), "raw path in HTML");
    assert!(html.contains("background:#e6194b"), "query palette missing");
    // Written atomically: nothing else is left beside it.
    let left: Vec<_> = std::fs::read_dir(sheet.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![OsStr::new("sheet.html").to_owned()]);
    // JSON and HTML together: stdout stays pure JSON.
    let again = f.root.join("out/again.html");
    let v = f.search_json(&["--colors", &spec, "--html", p(&again)]);
    assert_eq!(v["results"].as_array().unwrap().len(), 10);
    assert!(again.exists());
}

#[test]
fn reindexing_skips_unchanged_and_replaces_changed_images() {
    let f = Fixture::indexed();
    let (so, se) = ok(&["index", p(&f.idx), p(&f.folder)]);
    assert!(so.contains("added 0, updated 0, unchanged 60, removed 0, failed 0"), "{so}");
    assert!(se.is_empty(), "{se}");

    let everything = f.search_json(&["--colors", &hex(GREEN), "--k", "100"]);
    assert_eq!(everything["results"].as_array().unwrap().len(), 60);
    let (target, _) = &f.images[20];
    let old_id = everything["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == p(target))
        .map(|r| r["id"].as_u64().unwrap())
        .unwrap();

    // Repaint it in a colour no other image has, with a different mtime.
    paint(target, &[CYAN], 7);
    let later = SystemTime::now() + Duration::from_secs(10);
    std::fs::File::options().write(true).open(target).unwrap().set_modified(later).unwrap();
    let (so, _) = ok(&["index", p(&f.idx), p(&f.folder)]);
    assert!(so.contains("added 0, updated 1, unchanged 59, removed 0, failed 0"), "{so}");

    let v = f.search_json(&["--colors", &hex(CYAN), "--k", "1"]);
    assert_eq!(result_paths(&v), vec![p(target).to_owned()]);
    let new_id = v["results"][0]["id"].as_u64().unwrap();
    assert_ne!(new_id, old_id);
    let all = f.search_json(&["--colors", &hex(GREEN), "--k", "100"]);
    let results = all["results"].as_array().unwrap();
    assert_eq!(results.len(), 60, "the old vector must be gone, not kept beside the new one");
    assert!(results.iter().all(|r| r["id"].as_u64() != Some(old_id)), "old id {old_id} still found");
    let paths: BTreeSet<String> = result_paths(&all).into_iter().collect();
    assert_eq!(paths.len(), 60);

    // And nothing changes the next time.
    let (so, _) = ok(&["index", p(&f.idx), p(&f.folder)]);
    assert!(so.contains("added 0, updated 0, unchanged 60, removed 0, failed 0"), "{so}");
}

#[test]
fn unreadable_images_are_reported_and_skipped() {
    let f = Fixture::new();
    let bad = f.folder.join("sub/garbage.jpg");
    std::fs::write(&bad, b"this is not a JPEG").unwrap();
    let empty = f.folder.join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let (so, se) = ok(&["index", p(&f.idx), p(&f.folder)]);
    assert!(so.contains("added 60, updated 0, unchanged 0, removed 0, failed 2"), "{so}");
    let warnings: Vec<&str> = se.lines().collect();
    assert_eq!(warnings.len(), 2, "{se}");
    for path in [&bad, &empty] {
        let prefix = format!("warning: {}: ", p(path));
        assert_eq!(warnings.iter().filter(|w| w.starts_with(&prefix)).count(), 1, "{path:?} not reported: {se}");
    }
    // A bad file is tried again next time (it is not recorded).
    let (so, _) = ok(&["index", p(&f.idx), p(&f.folder)]);
    assert!(so.contains("added 0, updated 0, unchanged 60, removed 0, failed 2"), "{so}");
    // Single files can be given too, bad or good.
    let (so, se) = ok(&["index", p(&f.idx), p(&bad), p(&f.images[0].0)]);
    assert!(so.contains("added 0, updated 0, unchanged 1, removed 0, failed 1"), "{so}");
    assert!(se.contains(p(&bad)), "{se}");
}

#[test]
fn histogram_json_sums_to_one() {
    let f = Fixture::new();
    let (img, _) = &f.images[0];
    let (so, _) = ok(&["histogram", p(img), "--json"]);
    let v: Value = serde_json::from_str(&so).unwrap();
    assert_eq!(keys(&v), BTreeSet::from(["histogram", "dominant_colors"]));
    let h: Vec<f64> = v["histogram"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(h.len(), 1152);
    assert!(h.iter().all(|&x| x >= 0.0));
    let sum: f64 = h.iter().sum();
    assert!((sum - 1.0).abs() < 1e-4, "sum {sum}");
    let colours = v["dominant_colors"].as_array().unwrap();
    assert!(!colours.is_empty() && colours.len() <= 5);
    assert!(colours.iter().all(|c| c.as_str().is_some_and(|c| c.len() == 7 && c.starts_with('#'))));

    let (so, _) = ok(&["histogram", p(img)]);
    assert!(so.contains("bins non-zero"), "{so}");
    assert!(!so.contains('\x1b'));
    fails(&["histogram", p(&f.root.join("missing.png"))]);
}

#[test]
fn search_by_example_image() {
    let f = Fixture::indexed();
    let (img, _) = &f.images[3];
    let v = f.search_json(&["--image", p(img), "--k", "5"]);
    assert_eq!(v["query"]["image"], p(img));
    assert!(v["query"].get("colors").is_none());
    assert_eq!(v["results"][0]["path"], p(img));
    // Not 0: the stored histogram is the image's rounded to 16-bit steps
    // (FORMAT.md, "Refine store"), well under 0.01 ΔE away.
    assert!(v["results"][0]["distance"].as_f64().unwrap() < 1e-2);
    for path in result_paths(&v).iter().take(RED_BLUE.min(5)) {
        let c = f.colours_of(path);
        assert!(c.contains(&RED) && c.contains(&BLUE), "{path}");
    }
    let (so, _) = ok(&["search", p(&f.idx), "--image", p(img), "--k", "2"]);
    assert!(so.contains(p(img)), "{so}");
}

#[test]
fn rerank_by_emd_and_none() {
    let f = Fixture::indexed();
    let spec = format!("{},{}", hex(RED), hex(BLUE));
    for (args, name) in [
        (vec!["--rerank", "emd", "--emd-epsilon", "0.1", "--emd-iterations", "20"], "emd"),
        (vec!["--emd-iterations", "30"], "emd"),
        (vec!["--rerank", "none"], "none"),
        (vec!["--rerank", "l2", "--candidates", "20", "--threads", "1"], "l2"),
    ] {
        let mut all = vec!["--colors", spec.as_str(), "--k", "5"];
        all.extend(args.iter().copied());
        let v = f.search_json(&all);
        assert_eq!(v["query"]["rerank"], name, "{args:?}");
        let paths = result_paths(&v);
        assert_eq!(paths.len(), 5, "{args:?}");
        assert!(paths.iter().any(|q| f.colours_of(q).contains(&RED) && f.colours_of(q).contains(&BLUE)));
        let d: Vec<f64> = v["results"].as_array().unwrap().iter().map(|r| r["distance"].as_f64().unwrap()).collect();
        assert!(d.windows(2).all(|w| w[0] <= w[1]), "{args:?}: {d:?}");
    }
    // Exact L2 and no re-ranking (exact search on a small index) put a
    // red-and-blue image first; EMD ranks an image of the example's colours
    // first (Sinkhorn's blur can tie near-identical images).
    for rerank in ["l2", "none"] {
        let v = f.search_json(&["--colors", &spec, "--k", "1", "--rerank", rerank]);
        let c = f.colours_of(v["results"][0]["path"].as_str().unwrap());
        assert!(c.contains(&RED) && c.contains(&BLUE), "{rerank}: {v}");
    }
    let (img, colours) = &f.images[5];
    let v = f.search_json(&["--image", p(img), "--k", "3", "--rerank", "emd"]);
    let top: BTreeSet<_> = f.colours_of(v["results"][0]["path"].as_str().unwrap()).iter().collect();
    assert_eq!(top, colours.iter().collect(), "{v}");
    assert_eq!(v["query"]["rerank"], "emd");
    let (so, _) = ok(&["search", p(&f.idx), "--colors", &spec, "--rerank", "emd", "--k", "3"]);
    assert_eq!(so.lines().count(), 5, "{so}");
    let idx = p(&f.idx);
    fails(&["search", idx, "--colors", &spec, "--rerank", "bogus"]);
    fails(&["search", idx, "--colors", &spec, "--rerank", "l2", "--emd-epsilon", "0.1"]);
    fails(&["search", idx, "--colors", &spec, "--rerank", "emd", "--emd-epsilon=-1"]);
    fails(&["search", idx, "--colors", &spec, "--emd-epsilon", "0"]);
    fails(&["search", idx, "--colors", &spec, "--emd-iterations", "0"]);
    fails(&["search", idx, "--colors", &spec, "--candidates", "0"]);
    fails(&["search", idx, "--colors", &spec, "--k", "0"]);
}

#[test]
fn fuzz_fast_mode_and_excluded_colours() {
    let f = Fixture::indexed();
    let spec = format!("{},{}", hex(RED), hex(BLUE));
    let dist = |v: &Value| -> Vec<f64> {
        v["results"].as_array().unwrap().iter().map(|r| r["distance"].as_f64().unwrap()).collect()
    };
    let plain = f.search_json(&["--colors", &spec, "--k", "5"]);
    assert_eq!(plain["query"]["rerank"], "exact");
    let top = f.colours_of(plain["results"][0]["path"].as_str().unwrap());
    assert!(top.contains(&RED) && top.contains(&BLUE), "{plain}");

    // "Not red": no result holds red, and there are still five.
    let not_red = f.search_json(&["--colors", &spec, "--k", "5", "--exclude", &hex(RED)]);
    let paths = result_paths(&not_red);
    assert_eq!(paths.len(), 5);
    for q in &paths {
        assert!(!f.colours_of(q).contains(&RED), "{q} holds red: {not_red}");
    }
    // A share above every image's red lets them all back.
    let lenient = f.search_json(&["--colors", &spec, "--k", "5", "--exclude", &format!("{}:0.99", hex(RED))]);
    assert_eq!(result_paths(&lenient), result_paths(&plain));

    // Fuzz: colours within it are free, so no distance grows.
    let fuzzy = f.search_json(&["--colors", &spec, "--k", "5", "--fuzz", "15"]);
    assert!(dist(&fuzzy)[0] <= dist(&plain)[0] - 1.0, "{fuzzy}");
    assert!(dist(&fuzzy).iter().zip(dist(&plain)).all(|(a, b)| *a <= b + 1e-6));

    // Fast mode: stage 1 only.
    let fast = f.search_json(&["--colors", &spec, "--k", "5", "--fast"]);
    assert_eq!(fast["query"]["rerank"], "none");
    assert_eq!(result_paths(&fast).len(), 5);

    let idx = p(&f.idx);
    for (args, want) in [
        (vec!["--fuzz=-1"], "--fuzz must be between 0 and 100"),
        (vec!["--fuzz", "NaN"], "--fuzz must be between"),
        (vec!["--fuzz", "101"], "--fuzz must be between"),
        (vec!["--exclude", "zz0000"], "bad colour"),
        (vec!["--exclude", ""], "empty excluded colours"),
        (vec!["--exclude", "ff0000:1"], "share must be at least 0 and below 1"),
        (vec!["--exclude", "ff0000:x"], "is not a number"),
        (vec!["--exclude", "ff0000", "--exclude-radius", "0"], "radius must be above 0"),
        (vec!["--fast", "--fuzz", "5"], "need the exact EMD re-rank"),
        (vec!["--rerank", "l2", "--exclude", "ff0000"], "need the exact EMD re-rank"),
    ] {
        let mut all = vec!["search", idx, "--colors", spec.as_str()];
        all.extend(args.iter().copied());
        fails_with(&all, want);
    }
    usage_error(&["search", idx, "--colors", &spec, "--fast", "--rerank", "l2"]);
    usage_error(&["search", idx, "--colors", &spec, "--exclude-radius", "5"]);
}

#[test]
fn bad_colour_specs_are_one_line_errors() {
    let f = Fixture::indexed();
    let idx = p(&f.idx);
    for spec in ["zzz", "", "ff0000:1,00ff00", "12345", "ff0000:-1"] {
        let line = fails(&["search", idx, "--colors", spec]);
        assert!(line.contains("colour query"), "{spec:?}: {line}");
    }
    fails(&["search", idx, "--image", p(&f.root.join("missing.png"))]);
    fails(&["search", p(&f.root.join("no-index")), "--colors", "ff0000"]);
}

#[test]
fn conflicting_or_missing_queries_are_usage_errors() {
    let f = Fixture::new();
    let idx = p(&f.idx);
    let (vectors, out) = (f.root.join("q.fvecs"), f.root.join("out.ivecs"));
    let (vectors, out) = (p(&vectors), p(&out));
    usage_error(&["search", idx, "--colors", "ff0000", "--vectors", vectors, "--out", out]);
    usage_error(&["search", idx, "--colors", "ff0000", "--image", vectors]);
    usage_error(&["search", idx]);
    usage_error(&["search", idx, "--vectors", vectors]);
    usage_error(&["search", idx, "--colors", "ff0000", "--out", out]);
    usage_error(&["search", idx, "--vectors", vectors, "--out", out, "--json"]);
    usage_error(&["index", idx]);
    assert!(!f.idx.exists(), "a usage error must not create anything");
}

#[test]
fn index_refuses_a_non_empty_directory_that_is_no_index() {
    let f = Fixture::new();
    // The photo folder given as the index directory by mistake.
    let line = fails(&["index", p(&f.folder), p(&f.folder)]);
    assert!(line.contains("not a chromatica index"), "{line}");
    assert!(!f.folder.join("LOCK").exists());
    fails(&["index", p(&f.idx), p(&f.root.join("missing"))]);
    assert!(!f.idx.exists(), "a missing input must not create the index");
    // A vector index of another dimension is refused too.
    let vec_idx = f.root.join("vec");
    ok(&["create", p(&vec_idx), "--dim", "16", "--nlist", "4", "--m", "4", "--nprobe", "2"]);
    let line = fails(&["index", p(&vec_idx), p(&f.folder)]);
    assert!(line.contains("1152"), "{line}");
}

#[test]
fn files_deleted_from_disk_are_removed_and_reported() {
    let f = Fixture::indexed();
    let gone = [&f.images[0].0, &f.images[7].0];
    for path in gone {
        std::fs::remove_file(path).unwrap();
    }
    let (so, se) = ok(&["index", p(&f.idx), p(&f.folder)]);
    assert!(so.contains("added 0, updated 0, unchanged 58, removed 2, failed 0"), "{so}");
    assert!(se.is_empty(), "{se}");
    for path in gone {
        assert!(so.contains(&format!("removed {} (deleted from disk)", p(path))), "{so}");
    }
    let all = f.search_json(&["--colors", &hex(GREEN), "--k", "100"]);
    let paths = result_paths(&all);
    assert_eq!(paths.len(), 58);
    assert!(gone.iter().all(|g| !paths.contains(&p(g).to_owned())));
    let (so, _) = ok(&["index", p(&f.idx), p(&f.folder)]);
    assert!(so.contains("unchanged 58, removed 0, failed 0"), "{so}");
}

#[test]
fn no_follow_leaves_links_out_of_the_folder_alone() {
    let f = Fixture::new();
    let outside = f.root.join("outside");
    std::fs::create_dir(&outside).unwrap();
    paint(&outside.join("far.png"), &[CYAN], 1);
    std::os::unix::fs::symlink(&outside, f.folder.join("link")).unwrap();
    let (so, _) = ok(&["index", p(&f.idx), p(&f.folder), "--no-follow"]);
    assert!(so.contains("added 60,"), "{so}");
    let (so, _) = ok(&["index", p(&f.idx), p(&f.folder)]);
    assert!(so.contains("added 1, updated 0, unchanged 60,"), "{so}");
    let v = f.search_json(&["--colors", &hex(CYAN), "--k", "1"]);
    assert_eq!(result_paths(&v), vec![p(&outside.join("far.png")).to_owned()]);
}

#[test]
fn control_characters_in_file_names_are_escaped_on_the_terminal() {
    let f = Fixture::new();
    let evil = f.folder.join("evil\x1b]0;pwned\x07\nname.png");
    paint(&evil, &[CYAN], 3);
    let bad = f.folder.join("bad\x1b[2J.jpg");
    std::fs::write(&bad, b"not a jpeg").unwrap();
    let (so, se) = ok(&["index", p(&f.idx), p(&f.folder)]);
    assert!(so.contains("added 61,") && so.contains("failed 1"), "{so}");
    assert!(!se.contains('\x1b'), "raw escape in a warning: {se:?}");
    assert_eq!(se.lines().count(), 1, "{se:?}");
    assert!(se.contains("bad\\x1b[2J.jpg"), "{se:?}");

    let (so, _) = ok(&["search", p(&f.idx), "--colors", &hex(CYAN), "--k", "3"]);
    assert!(!so.contains('\x1b') && !so.contains('\x07'), "raw control characters: {so:?}");
    assert_eq!(so.lines().count(), 5, "a newline in a name split a line: {so:?}");
    assert!(so.lines().nth(1).unwrap().contains("evil\\x1b]0;pwned\\x07\\nname.png"), "{so}");
    // JSON keeps the exact name (escaped the JSON way).
    let v = f.search_json(&["--colors", &hex(CYAN), "--k", "1"]);
    assert_eq!(result_paths(&v), vec![p(&evil).to_owned()]);
    // Error lines too.
    let line = fails(&["histogram", p(&bad)]);
    assert!(!line.contains('\x1b') && line.contains("bad\\x1b[2J.jpg"), "{line:?}");
}

#[test]
fn non_regular_files_and_pixel_bombs_are_one_line_errors() {
    let f = Fixture::new();
    let fifo = f.root.join("fifo.png");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for (path, kind) in [(p(&fifo), "a FIFO"), ("/dev/zero", "a character device"), (p(&f.folder), "a directory")] {
        let line = fails(&["histogram", path]);
        assert!(line.contains(kind), "{line}");
    }
    let (img, _) = &f.images[0];
    let line = fails(&["histogram", p(img), "--max-pixels", "1000"]);
    assert!(line.contains("64 x 48 = 3072 pixels, over the limit of 1000"), "{line}");
    ok(&["histogram", p(img), "--max-pixels", "3072"]);
    let (so, se) = ok(&["index", p(&f.idx), p(&f.folder), "--max-pixels", "1000"]);
    assert!(so.contains("added 0,") && so.contains("failed 60"), "{so}");
    assert_eq!(se.lines().count(), 60, "{se}");
}

#[test]
fn an_indexed_file_swapped_for_a_fifo_does_not_hang_the_contact_sheet() {
    let f = Fixture::indexed();
    let (victim, _) = &f.images[0];
    std::fs::remove_file(victim).unwrap();
    assert!(Command::new("mkfifo").arg(victim).status().unwrap().success());
    let sheet = f.root.join("sheet.html");
    let spec = format!("{},{}", hex(RED), hex(BLUE));
    let mut child = Command::new(env!("CARGO_BIN_EXE_chromatica"))
        .args(["search", p(&f.idx), "--colors", &spec, "--k", "60", "--html", p(&sheet)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("search --html hung on a FIFO");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let html = std::fs::read_to_string(&sheet).unwrap();
    assert!(html.contains("a FIFO (only regular files are read)"), "no note of the FIFO");
    assert_eq!(html.matches("<img src=\"data:image/png;base64,").count(), 59);
}

/// `explain --colors` explains the search `search --colors` runs (the exact
/// EMD by default): the first result is explained as returned first, with
/// its EMD equal to the distance search printed; an image of other colours
/// as not returned, its EMD beyond the k-th.
#[test]
fn explain_follows_the_colour_search() {
    let f = Fixture::indexed();
    let spec = format!("{},{}", hex(RED), hex(BLUE));
    let v = f.search_json(&["--colors", &spec, "--k", "5"]);
    let first = &v["results"][0];
    let id = first["id"].as_u64().unwrap().to_string();
    let (so, _) = ok(&["explain", p(&f.idx), "--id", &id, "--colors", &spec, "--k", "5", "--json"]);
    let e: Value = serde_json::from_str(&so).unwrap();
    assert_eq!(e["rerank"], "exact", "{so}");
    assert_eq!(e["returned"], true);
    assert_eq!(e["final_rank"], 1);
    let (d, emd) = (first["distance"].as_f64().unwrap(), e["emd"].as_f64().unwrap());
    assert!((d - emd).abs() < 1e-3, "search said {d}, explain {emd}");
    for key in ["emd_bound", "kth_distance", "scanned", "excluded", "reason"] {
        assert!(e.get(key).is_some(), "{key} in {so}");
    }
    // An image without red or blue: not returned, its EMD beyond the 5th.
    let other = f.images.iter().position(|(_, c)| !c.contains(&RED) && !c.contains(&BLUE)).unwrap();
    let (path, _) = &f.images[other];
    let hit = f.search_json(&["--image", p(path), "--k", "1"]);
    let other_id = hit["results"][0]["id"].as_u64().unwrap().to_string();
    let (so, _) = ok(&["explain", p(&f.idx), "--id", &other_id, "--colors", &spec, "--k", "5"]);
    assert!(so.contains("not returned") && so.contains("exact EMD"), "{so}");
    let (so, _) = ok(&["explain", p(&f.idx), "--id", &other_id, "--colors", &spec, "--k", "5", "--json"]);
    let e: Value = serde_json::from_str(&so).unwrap();
    assert!(e["emd"].as_f64().unwrap() > e["kth_distance"].as_f64().unwrap(), "{so}");
}

/// `tune` on a colour index measures against the exact EMD (and says what
/// it needs), `--truth` chooses, and `--truth emd` with `--vectors` is a
/// usage error.
#[test]
fn tune_on_a_colour_index_uses_the_exact_emd() {
    let f = Fixture::indexed();
    // 60 images: below automatic training, so no quantizers to tune.
    common::fails_with(
        &["tune", p(&f.idx), "--recall", "0.9", "--dry-run"],
        "tuning by exact EMD needs a trained colour index",
    );
    common::fails_with(&["tune", p(&f.idx), "--recall", "0.9", "--truth", "l2"], "tuning needs a trained index");
    let vf = f.root.join("q.fvecs");
    std::fs::write(&vf, []).unwrap();
    common::fails_with(&["tune", p(&f.idx), "--recall", "0.9", "--truth", "emd", "--vectors", p(&vf)], "--truth emd");
    assert!(common::usage_error(&["tune", p(&f.idx), "--recall", "0.9", "--truth", "cosine"]).contains("cosine"));
}
