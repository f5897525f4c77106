//! Conformance of `chromatica::color` with the shared reference data
//! (scikit-image Lab values, reference histograms of synthetic PNGs) and
//! with the behaviour the rest of the engine relies on.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use chromatica::testing::color::{
    bin_centers_lab, decode_rgb, dominant_colors, fit_within, hellinger, histogram_of_pixels, image_histogram,
    lab_to_srgb, load_image, parse_color_query, query_histogram, srgb_to_lab, to_hex, ColorQuery, A_BINS, B_BINS,
    DEFAULT_SHARPEN, HIST_DIM, L_BINS, MAX_QUERY_COLORS,
};
use image::{ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use proptest::prelude::*;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata");

fn testdata(name: &str) -> PathBuf {
    Path::new(TESTDATA).join(name)
}

fn l1(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs()).sum()
}

fn sum(h: &[f32]) -> f64 {
    h.iter().map(|&v| f64::from(v)).sum()
}

fn assert_valid_hist(h: &[f32]) {
    assert_eq!(h.len(), HIST_DIM);
    assert!(h.iter().all(|v| v.is_finite() && *v >= 0.0));
    assert!((sum(h) - 1.0).abs() < 1e-5, "sum {}", sum(h));
}

fn one_pixel_hist(rgb: [u8; 3]) -> Vec<f32> {
    histogram_of_pixels(std::iter::once(rgb))
}

fn save(img: &RgbImage, dir: &Path, name: &str, format: ImageFormat) -> PathBuf {
    let path = dir.join(name);
    img.save_with_format(&path, format).unwrap();
    path
}

fn noisy_image(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let v = x.wrapping_mul(2654435761).wrapping_add(y.wrapping_mul(40503));
        Rgb([(v >> 3) as u8, (v >> 11) as u8, (x * 7 + y * 3) as u8])
    })
}

// ---------------------------------------------------------------- Lab

#[test]
fn lab_matches_scikit_image_on_every_csv_row() {
    let text = std::fs::read_to_string(testdata("srgb_to_lab.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap().trim(), "r,g,b,L,a,b_star");
    let (mut rows, mut worst) = (0, 0.0f64);
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<f64> = line.split(',').map(|s| s.trim().parse().unwrap()).collect();
        assert_eq!(f.len(), 6, "{line}");
        let rgb = [f[0] as u8, f[1] as u8, f[2] as u8];
        let lab = srgb_to_lab(rgb);
        for k in 0..3 {
            let d = (lab[k] - f[3 + k]).abs();
            worst = worst.max(d);
            assert!(d <= 0.01, "{rgb:?}: ours {lab:?}, scikit-image {:?}", &f[3..]);
        }
        rows += 1;
    }
    assert!(rows >= 2000, "only {rows} rows");
    eprintln!("srgb_to_lab.csv: {rows} rows, max |ΔLab| = {worst:.3e}");
}

#[test]
fn lab_round_trips_on_a_grid() {
    for r in (0..=255u8).step_by(15) {
        for g in (0..=255u8).step_by(15) {
            for b in (0..=255u8).step_by(15) {
                let back = lab_to_srgb(srgb_to_lab([r, g, b]));
                for (x, y) in back.iter().zip([r, g, b]) {
                    assert!(x.abs_diff(y) <= 1, "{:?} -> {back:?}", [r, g, b]);
                }
            }
        }
    }
}

// ----------------------------------------------------------- histograms

#[test]
fn synthetic_pngs_match_reference_histograms() {
    let text = std::fs::read_to_string(testdata("histograms.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["bins"], serde_json::json!([L_BINS, A_BINS, B_BINS]));
    let cases = doc["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    let mut worst = 0.0f64;
    for case in cases {
        let name = case["image"].as_str().unwrap();
        let mut want = vec![0.0f32; HIST_DIM];
        for (k, v) in case["histogram_nonzero"].as_object().unwrap() {
            want[k.parse::<usize>().unwrap()] = v.as_f64().unwrap() as f32;
        }
        let img = load_image(&testdata(name)).unwrap();
        assert_eq!(
            (u64::from(img.width()), u64::from(img.height())),
            (case["width"].as_u64().unwrap(), case["height"].as_u64().unwrap())
        );
        let got = image_histogram(&testdata(name)).unwrap();
        assert_valid_hist(&got);
        let d = l1(&got, &want);
        worst = worst.max(d);
        assert!(d <= 1e-4, "{name}: L1 distance {d:e}");
    }
    eprintln!("histograms.json: {} images, max L1 = {worst:.3e}", cases.len());
}

/// Total mass in a-bin `a` (over every L and b bin).
fn mass_in_a_bin(h: &[f32], a: usize) -> f64 {
    (0..HIST_DIM).filter(|i| (i / B_BINS) % A_BINS == a).map(|i| f64::from(h[i])).sum()
}

#[test]
fn saturated_colours_are_clamped_into_valid_histograms() {
    for rgb in [[0, 255, 0], [255, 0, 255], [0, 0, 255], [255, 255, 0], [255, 255, 255], [0, 0, 0]] {
        assert_valid_hist(&one_pixel_hist(rgb));
    }
    // Green's a* (about -86.18) lies below the range: clamped to -86, all of
    // its mass lands in a-bin 0, none is lost.
    assert!(srgb_to_lab([0, 255, 0])[1] < -86.0);
    let a0 = mass_in_a_bin(&one_pixel_hist([0, 255, 0]), 0);
    assert!((a0 - 1.0).abs() < 1e-6, "{a0}");
    // Magenta's a* (about 98.23) lies above it: all in the last a-bin.
    assert!(srgb_to_lab([255, 0, 255])[1] > 98.0);
    let a_last = mass_in_a_bin(&one_pixel_hist([255, 0, 255]), A_BINS - 1);
    assert!((a_last - 1.0).abs() < 1e-6, "{a_last}");
}

#[test]
fn histogram_is_order_independent_and_weights_pixels_equally() {
    let px = [[10u8, 20, 30], [200, 100, 50], [10, 20, 30]];
    let h1 = histogram_of_pixels(px.into_iter());
    let h2 = histogram_of_pixels(px.into_iter().rev());
    assert!(l1(&h1, &h2) < 1e-6);
    // Two of three pixels are the first colour: 2/3 of its single-pixel mass.
    let single = one_pixel_hist(px[0]);
    let other = one_pixel_hist(px[1]);
    for k in 0..HIST_DIM {
        let want = (2.0 * f64::from(single[k]) + f64::from(other[k])) / 3.0;
        assert!((f64::from(h1[k]) - want).abs() < 1e-6);
    }
}

#[test]
fn hellinger_takes_square_roots() {
    let mut h = one_pixel_hist([120, 40, 200]);
    let plain = h.clone();
    hellinger(&mut h);
    for (s, p) in h.iter().zip(&plain) {
        assert!((s * s - p).abs() < 1e-6);
    }
    let norm2: f64 = h.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    assert!((norm2 - 1.0).abs() < 1e-5);
}

#[test]
fn bin_centres_are_the_nodes_of_the_soft_assignment() {
    let c = bin_centers_lab();
    assert_eq!(c.len(), HIST_DIM);
    assert_eq!(c[0], [0.0, -86.0, -108.0]);
    let last = c[HIST_DIM - 1];
    assert!((last[0] - 87.5).abs() < 1e-12);
    assert!((last[1] - (98.0 - 184.0 / 12.0)).abs() < 1e-12);
    assert!((last[2] - (95.0 - 203.0 / 12.0)).abs() < 1e-12);
    // Flat index l*144 + a*12 + b.
    assert_eq!(c[144 * 3 + 12 * 4 + 5][0], 37.5);
    assert!((c[144 * 3 + 12 * 4 + 5][1] - (-86.0 + 4.0 * 184.0 / 12.0)).abs() < 1e-12);
}

// ------------------------------------------------------------ downscale

#[test]
fn large_image_is_downscaled_to_256_on_the_long_side() {
    let dir = tempfile::tempdir().unwrap();
    let img = noisy_image(600, 300);
    let path = save(&img, dir.path(), "wide.png", ImageFormat::Png);
    let loaded = load_image(&path).unwrap();
    assert_eq!(loaded.dimensions(), (256, 128));
    // The histogram is the one of the downscaled pixels, not of the original.
    let got = image_histogram(&path).unwrap();
    let of_small = histogram_of_pixels(loaded.pixels().map(|p| p.0));
    let of_big = histogram_of_pixels(img.pixels().map(|p| p.0));
    assert_eq!(got, of_small);
    assert!(l1(&got, &of_big) > 1e-3, "noise must average out visibly");

    let tall = save(&noisy_image(100, 1000), dir.path(), "tall.png", ImageFormat::Png);
    assert_eq!(load_image(&tall).unwrap().dimensions(), (26, 256));
    let small = save(&noisy_image(256, 200), dir.path(), "small.png", ImageFormat::Png);
    assert_eq!(load_image(&small).unwrap(), noisy_image(256, 200));
}

#[test]
fn downscaling_averages_areas() {
    let dir = tempfile::tempdir().unwrap();
    // 512 × 512 black/white checkerboard of single pixels -> every 2 × 2 block
    // averages to 127.5 -> 128 (halves round up).
    let board =
        RgbImage::from_fn(512, 512, |x, y| if (x + y) % 2 == 0 { Rgb([0, 0, 0]) } else { Rgb([255, 255, 255]) });
    let path = save(&board, dir.path(), "board.png", ImageFormat::Png);
    let small = load_image(&path).unwrap();
    assert_eq!(small.dimensions(), (256, 256));
    assert!(small.pixels().all(|p| p.0 == [128, 128, 128]));
    assert_eq!(image_histogram(&path).unwrap(), one_pixel_hist([128, 128, 128]));
}

#[test]
fn solid_large_image_matches_one_pixel() {
    let dir = tempfile::tempdir().unwrap();
    for (rgb, (w, h)) in [([234u8, 106, 129], (1000u32, 700u32)), ([3, 250, 17], (301, 2000))] {
        let path = save(&RgbImage::from_pixel(w, h, Rgb(rgb)), dir.path(), "solid.png", ImageFormat::Png);
        let got = image_histogram(&path).unwrap();
        assert_eq!(got, one_pixel_hist(rgb), "{rgb:?}");
    }
}

// ------------------------------------------------------------- formats

#[test]
fn bmp_tiff_webp_lossless_and_png_decode_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let img = noisy_image(97, 61);
    let want = histogram_of_pixels(img.pixels().map(|p| p.0));
    for (name, format) in [("a.bmp", ImageFormat::Bmp), ("a.tiff", ImageFormat::Tiff), ("a.png", ImageFormat::Png)] {
        let path = save(&img, dir.path(), name, format);
        assert_eq!(load_image(&path).unwrap(), img, "{name}");
        assert_eq!(image_histogram(&path).unwrap(), want, "{name}");
    }
    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .encode(img.as_raw(), img.width(), img.height(), image::ExtendedColorType::Rgb8)
        .unwrap();
    let path = dir.path().join("a.webp");
    std::fs::write(&path, &webp).unwrap();
    assert_eq!(load_image(&path).unwrap(), img);
    assert_eq!(image_histogram(&path).unwrap(), want);
}

#[test]
fn jpeg_decodes_close_to_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let img = RgbImage::from_pixel(64, 48, Rgb([200, 60, 90]));
    let path = save(&img, dir.path(), "a.jpg", ImageFormat::Jpeg);
    let got = load_image(&path).unwrap();
    assert_eq!(got.dimensions(), (64, 48));
    for p in got.pixels() {
        for (x, y) in p.0.iter().zip([200u8, 60, 90]) {
            assert!(x.abs_diff(y) <= 4, "{:?}", p.0);
        }
    }
}

#[test]
fn gif_gives_its_first_frame() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anim.gif");
    {
        let file = std::fs::File::create(&path).unwrap();
        let mut enc = GifEncoder::new(file);
        for rgb in [[255u8, 0, 0], [0, 0, 255]] {
            let frame = RgbaImage::from_pixel(8, 5, Rgba([rgb[0], rgb[1], rgb[2], 255]));
            enc.encode_frame(Frame::from_parts(frame, 0, 0, Delay::from_numer_denom_ms(100, 1))).unwrap();
        }
    }
    let img = load_image(&path).unwrap();
    assert_eq!(img.dimensions(), (8, 5));
    assert!(img.pixels().all(|p| p.0 == [255, 0, 0]), "{:?}", img.get_pixel(0, 0));
    assert_eq!(image_histogram(&path).unwrap(), one_pixel_hist([255, 0, 0]));
}

#[test]
fn alpha_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let rgba = RgbaImage::from_fn(10, 10, |x, _| Rgba([30, 160, 90, if x < 5 { 0 } else { 255 }]));
    let path = dir.path().join("alpha.png");
    rgba.save_with_format(&path, ImageFormat::Png).unwrap();
    assert_eq!(image_histogram(&path).unwrap(), one_pixel_hist([30, 160, 90]));
}

#[test]
fn sixteen_bit_png_is_reduced_to_eight_bits() {
    let dir = tempfile::tempdir().unwrap();
    let img: image::ImageBuffer<Rgb<u16>, Vec<u16>> = image::ImageBuffer::from_pixel(4, 4, Rgb([65535, 0, 257 * 100]));
    let path = dir.path().join("deep.png");
    img.save_with_format(&path, ImageFormat::Png).unwrap();
    assert_eq!(image_histogram(&path).unwrap(), one_pixel_hist([255, 0, 100]));
}

#[test]
fn unreadable_images_are_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.jpg");
    std::fs::write(&garbage, b"this is not a jpeg at all, just some words").unwrap();
    let missing = dir.path().join("missing.png");
    let truncated = dir.path().join("truncated.png");
    let mut png = Vec::new();
    noisy_image(40, 40).write_to(&mut Cursor::new(&mut png), ImageFormat::Png).unwrap();
    std::fs::write(&truncated, &png[..png.len() / 2]).unwrap();
    let empty = dir.path().join("empty.webp");
    std::fs::write(&empty, b"").unwrap();
    let unknown = dir.path().join("notes.txt");
    std::fs::write(&unknown, b"hello").unwrap();
    for path in [&garbage, &missing, &truncated, &empty, &unknown] {
        let err = image_histogram(path).expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        if path == &unknown {
            // Not an image format at all: a kind of file, not a broken one.
            assert!(matches!(err, chromatica::Error::Unsupported { .. }), "{msg}");
        } else {
            assert!(matches!(err, chromatica::Error::BadFile { .. }), "{msg}");
        }
    }
}

/// Everything after decoding, checked on whatever a fuzzed file decodes to.
fn histogram_if_decodes(path: &Path, bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(img) = decode_rgb(path, bytes) {
        prop_assert!(img.width() > 0 && img.height() > 0);
        let small = fit_within(img, 256);
        prop_assert!(small.width() <= 256 && small.height() <= 256);
        let h = histogram_of_pixels(small.pixels().map(|p| p.0));
        prop_assert!((sum(&h) - 1.0).abs() < 1e-5);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        ext in prop::sample::select(vec!["jpg", "png", "webp", "bmp", "tif", "gif", "bin"]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("fuzz.{ext}"));
        std::fs::write(&path, &bytes).unwrap();
        match image_histogram(&path) {
            Ok(h) => prop_assert!((sum(&h) - 1.0).abs() < 1e-5),
            Err(e) => prop_assert!(e.to_string().contains(&path.display().to_string())),
        }
        histogram_if_decodes(&path, &bytes)?;
    }

    #[test]
    fn bytes_behind_a_real_magic_never_panic(
        magic in prop::sample::select(vec![
            &b"\xff\xd8\xff\xe0"[..], &b"\x89PNG\r\n\x1a\n"[..], &b"RIFF\x10\x00\x00\x00WEBPVP8L"[..],
            &b"BM"[..], &b"II*\x00"[..], &b"MM\x00*"[..], &b"GIF89a"[..],
        ]),
        tail in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&tail);
        histogram_if_decodes(Path::new("fuzz"), &bytes)?;
    }

    #[test]
    fn mutated_real_images_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        format in prop::sample::select(vec![ImageFormat::Png, ImageFormat::Bmp, ImageFormat::Tiff,
                                            ImageFormat::Gif, ImageFormat::Jpeg]),
    ) {
        let mut bytes = Vec::new();
        noisy_image(9, 7).write_to(&mut Cursor::new(&mut bytes), format).unwrap();
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        histogram_if_decodes(Path::new("mutated"), &bytes)?;
    }
}

#[test]
fn arbitrary_file_through_the_public_path_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = 0x2545F4914F6CDD1Du64;
    for i in 0..64 {
        let len = (i * 37) % 700;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let path = dir.path().join(format!("f{i}.jpg"));
        std::fs::write(&path, &bytes).unwrap();
        assert!(image_histogram(&path).is_err());
    }
}

// -------------------------------------------------------------- queries

fn query_err(spec: &str) -> String {
    let err = parse_color_query(spec).expect_err(spec);
    assert!(matches!(err, chromatica::Error::InvalidInput(_)), "{err:?}");
    let msg = err.to_string();
    assert!(!msg.contains('\n') && !msg.ends_with('.'), "{msg:?}");
    msg
}

#[test]
fn query_parses_weights_hex_forms_and_whitespace() {
    let q = parse_color_query("ea6a81:0.49,f6d727:0.51").unwrap();
    assert_eq!(q, ColorQuery { colors: vec![([0xea, 0x6a, 0x81], 0.49), ([0xf6, 0xd7, 0x27], 0.51)] });

    let q = parse_color_query("  #F0c , #00FF7f ,abc ").unwrap();
    let third = 1.0f32 / 3.0;
    assert_eq!(q.colors, vec![([0xff, 0x00, 0xcc], third), ([0x00, 0xff, 0x7f], third), ([0xaa, 0xbb, 0xcc], third)]);

    // Weights are normalised.
    let q = parse_color_query("000:2, fff : 6").unwrap();
    assert_eq!(q.colors, vec![([0, 0, 0], 0.25), ([255, 255, 255], 0.75)]);
    let q = parse_color_query("#123456").unwrap();
    assert_eq!(q.colors, vec![([0x12, 0x34, 0x56], 1.0)]);

    let sixteen = vec!["fff"; MAX_QUERY_COLORS].join(",");
    assert_eq!(parse_color_query(&sixteen).unwrap().colors.len(), 16);
}

#[test]
fn query_errors_are_one_clear_line() {
    assert!(query_err("").contains("empty colour query"));
    assert!(query_err("   ").contains("empty colour query"));
    assert!(query_err("ff0000,").contains("empty entry"));
    assert!(query_err("ff0000,,00ff00").contains("empty entry"));
    for bad in ["ff00", "gg0000", "#ff00001", "red", "##fff", "ff 000"] {
        let msg = query_err(bad);
        assert!(msg.contains(&format!("{bad:?}")) && msg.contains("hex"), "{msg}");
    }
    assert!(query_err("ff0000:abc").contains("not a number"));
    assert!(query_err("ff0000:").contains("not a number"));
    assert!(query_err("ff0000:-0.5").contains("negative"));
    assert!(query_err("ff0000:0,00ff00:0").contains("sum to zero"));
    assert!(query_err("ff0000:inf").contains("not finite"));
    assert!(query_err("ff0000:NaN").contains("not finite"));
    assert!(query_err("ff0000:0.5,00ff00").contains("some colours but not all"));
    assert!(query_err(&vec!["fff"; MAX_QUERY_COLORS + 1].join(",")).contains("at most 16"));
}

#[test]
fn query_histogram_sums_to_one_and_sharpening_concentrates() {
    let q = parse_color_query("ea6a81:0.49,f6d727:0.51").unwrap();
    let plain = query_histogram(&q, 1.0);
    let sharp = query_histogram(&q, DEFAULT_SHARPEN);
    assert_valid_hist(&plain);
    assert_valid_hist(&sharp);
    // Exponent 1 is exactly the pixel histogram with the colours as weights.
    let mut want = [0.0f64; HIST_DIM];
    for (rgb, w) in &q.colors {
        for (k, v) in one_pixel_hist(*rgb).iter().enumerate() {
            want[k] += f64::from(*w) * f64::from(*v);
        }
    }
    let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    assert!(l1(&plain, &want) < 1e-5);
    // Same support, more mass on the heaviest bin, more mass in fewer bins.
    let support = |h: &[f32]| h.iter().filter(|&&v| v > 0.0).count();
    assert_eq!(support(&plain), support(&sharp));
    let max = |h: &[f32]| h.iter().copied().fold(0.0f32, f32::max);
    assert!(max(&sharp) > max(&plain) + 0.01, "{} vs {}", max(&sharp), max(&plain));
    let sq = |h: &[f32]| h.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
    assert!(sq(&sharp) > sq(&plain));
    // Stronger sharpening, stronger concentration.
    assert!(max(&query_histogram(&q, 4.0)) > max(&sharp));
}

#[test]
fn single_colour_query_matches_its_pixel_up_to_sharpening() {
    let q = parse_color_query("#3366cc").unwrap();
    let h = query_histogram(&q, 1.0);
    assert!(l1(&h, &one_pixel_hist([0x33, 0x66, 0xcc])) < 1e-6);
}

// -------------------------------------------------------------- palette

#[test]
fn dominant_colours_and_hex() {
    assert_eq!(to_hex([0xea, 0x6a, 0x81]), "#ea6a81");
    // A picture that is 3/4 one bin centre and 1/4 another: those two, in order.
    let centres = bin_centers_lab();
    let (big, small) = (4 * 144 + 6 * 12 + 7, 6 * 144 + 3 * 12 + 8);
    let c_big = lab_to_srgb(centres[big]);
    let c_small = lab_to_srgb(centres[small]);
    let mut pixels = vec![c_big; 300];
    pixels.extend(vec![c_small; 100]);
    let h = histogram_of_pixels(pixels.into_iter());
    let top: Vec<[u8; 3]> = dominant_colors(&h, 2).iter().map(|c| c.rgb).collect();
    assert_eq!(top, vec![c_big, c_small]);
    let shares: Vec<f64> = dominant_colors(&h, 2).iter().map(|c| c.share).collect();
    assert!((shares[0] - 0.75).abs() < 1e-6 && (shares[1] - 0.25).abs() < 1e-6, "{shares:?}");
    // Distinct, and no more than asked.
    let many: Vec<[u8; 3]> = dominant_colors(&h, 50).iter().map(|c| c.rgb).collect();
    assert!(many.len() <= 50);
    let mut d = many.clone();
    d.sort();
    d.dedup();
    assert_eq!(d.len(), many.len());
    assert!(to_hex(top[0]).len() == 7 && to_hex(top[0]).starts_with('#'));
}
