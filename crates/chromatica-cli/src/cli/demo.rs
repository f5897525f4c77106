//! `chromatica demo`: the image workflow on data it makes itself. It paints
//! ten thousand small PNGs from known palettes (stripes and blocks of 1–4
//! named colours, with a little noise) — more than
//! [`AUTO_TRAIN_MIN`](chromatica::AUTO_TRAIN_MIN), so the index trains
//! itself and searches by IVF-PQ, the refine store and the exact EMD
//! re-rank — indexes them exactly as `chromatica index` does, prints what
//! an image costs in memory and on disk, runs colour queries and an image
//! query, shows the results with swatches, and checks them against the
//! palettes it painted and against the exact EMD of every image (brute
//! force over the histograms it painted).

use super::images::{self, state_line, swatches};
use chromatica::images::{Hit, Query, SearchOptions, SyncOptions};
use chromatica::{Error, Result};
use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

const IMAGES: usize = 10_240;
const WIDTH: u32 = 32;
const HEIGHT: u32 = 24;
/// Side of a block of the block layout.
const BLOCK: u32 = 4;
/// Images painted around each colour query, so that every query has more
/// than ten right answers.
const PER_QUERY: usize = 14;
const K: usize = 10;

const NAMED: [(&str, [u8; 3]); 12] = [
    ("coral", [0xff, 0x7f, 0x50]),
    ("mustard", [0xe1, 0xad, 0x01]),
    ("teal", [0x00, 0x80, 0x80]),
    ("navy", [0x00, 0x00, 0x80]),
    ("forest", [0x22, 0x8b, 0x22]),
    ("sand", [0xc2, 0xb2, 0x80]),
    ("rose", [0xe0, 0x60, 0x7e]),
    ("lavender", [0xb5, 0x7e, 0xdc]),
    ("sky", [0x87, 0xce, 0xeb]),
    ("charcoal", [0x36, 0x45, 0x4f]),
    ("cream", [0xff, 0xfd, 0xd0]),
    ("brick", [0x9c, 0x3d, 0x2c]),
];

/// Colour queries: a title and the named colours searched for (equal shares).
const QUERIES: [(&str, &[&str]); 5] = [
    ("coral and mustard", &["coral", "mustard"]),
    ("teal and sand", &["teal", "sand"]),
    ("navy and cream", &["navy", "cream"]),
    ("forest, brick and sky", &["forest", "brick", "sky"]),
    ("rose", &["rose"]),
];

fn named(name: &str) -> usize {
    NAMED.iter().position(|(n, _)| *n == name).expect("colour in NAMED")
}

/// An image's palette: indices into NAMED with their shares of the pixels.
type Palette = Vec<(usize, f32)>;

/// `wanted` colours taking most of the image, or 1–4 random colours.
fn make_palette(rng: &mut ChaCha8Rng, wanted: &[usize]) -> Palette {
    let mut colours: Vec<usize> = wanted.to_vec();
    let total =
        if wanted.is_empty() { rng.random_range(1..=4) } else { (wanted.len() + rng.random_range(0..=2)).min(4) };
    while colours.len() < total {
        let c = rng.random_range(0..NAMED.len());
        if !colours.contains(&c) {
            colours.push(c);
        }
    }
    let w: Vec<f32> = (0..colours.len())
        .map(|i| match (wanted.is_empty(), i < wanted.len()) {
            (true, _) => rng.random_range(0.2..1.0),
            (false, true) => rng.random_range(0.8..1.2),
            (false, false) => rng.random_range(0.1..0.35),
        })
        .collect();
    let s: f32 = w.iter().sum();
    colours.into_iter().zip(w.into_iter().map(|x| x / s)).collect()
}

/// Stripes (vertical or horizontal, widths by share) or a grid of blocks,
/// with ±6 of noise on every channel.
fn paint(p: &Palette, rng: &mut ChaCha8Rng) -> RgbImage {
    let layout = rng.random_range(0..3);
    let pick = |t: f32| {
        let mut acc = 0.0;
        for &(c, w) in p {
            acc += w;
            if t < acc {
                return c;
            }
        }
        p[p.len() - 1].0
    };
    let (bw, bh) = (WIDTH / BLOCK, HEIGHT / BLOCK);
    let blocks: Vec<usize> = (0..bw * bh).map(|_| pick(rng.random())).collect();
    let mut img = RgbImage::new(WIDTH, HEIGHT);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let c = match layout {
            0 => pick((x as f32 + 0.5) / WIDTH as f32),
            1 => pick((y as f32 + 0.5) / HEIGHT as f32),
            _ => blocks[(y / BLOCK * bw + x / BLOCK) as usize],
        };
        let rgb = NAMED[c].1;
        *px = Rgb(rgb.map(|v| (v as i32 + rng.random_range(-6..=6)).clamp(0, 255) as u8));
    }
    img
}

fn palette_names(p: &Palette) -> String {
    p.iter().map(|&(c, w)| format!("{} {:.0}%", NAMED[c].0, w * 100.0)).collect::<Vec<_>>().join(", ")
}

/// A painted image: its file, palette, and colour histogram (the one the
/// index computes from the file: PNG is lossless and no side needs
/// downscaling) as Lab points with their masses.
struct Painted {
    path: PathBuf,
    palette: Palette,
    masses: Vec<([f64; 3], f64)>,
}

/// Paints the collection into `folder`.
fn generate(folder: &Path) -> Result<Vec<Painted>> {
    let centres = chromatica::color::bin_centers_lab();
    std::fs::create_dir_all(folder).map_err(|e| Error::io(folder, e))?;
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let mut out = Vec::with_capacity(IMAGES);
    for i in 0..IMAGES {
        let wanted: Vec<usize> = match QUERIES.get(i / PER_QUERY) {
            Some((_, names)) => names.iter().map(|n| named(n)).collect(),
            None => Vec::new(),
        };
        let p = make_palette(&mut rng, &wanted);
        let img = paint(&p, &mut rng);
        let names: Vec<&str> = p.iter().map(|&(c, _)| NAMED[c].0).collect();
        let path = folder.join(format!("{i:03}-{}.png", names.join("+")));
        img.save(&path).map_err(|e| Error::bad_file(&path, format!("cannot write image: {e}")))?;
        let h = chromatica::color::histogram_of_pixels(img.pixels().map(|p| p.0));
        let masses = h.iter().zip(&centres).filter(|(m, _)| **m > 0.0).map(|(&m, &c)| (c, f64::from(m))).collect();
        out.push(Painted { path, palette: p, masses });
    }
    Ok(out)
}

/// A temporary directory removed when dropped, also when a panic unwinds
/// (such as printing to a closed pipe).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run() -> Result<()> {
    let root = TempDir(std::env::temp_dir().join(format!("chromatica-demo-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&root.0);
    run_in(&root.0)
}

fn run_in(root: &Path) -> Result<()> {
    let tty = std::io::stdout().is_terminal();
    let t0 = Instant::now();
    let folder = root.join("images");
    let dir = root.join("index");
    let painted = generate(&folder)?;
    let paint_s = t0.elapsed().as_secs_f64();
    println!(
        "Chromatica demo: painted {IMAGES} PNGs ({WIDTH}x{HEIGHT}, stripes and blocks of 1-4 of {} named colours, \
         with noise) in {paint_s:.2}s",
        NAMED.len(),
    );
    println!(
        "  {}",
        NAMED.iter().map(|(n, c)| format!("{n} {}", images::swatch(*c, tty))).collect::<Vec<_>>().join("  ")
    );

    // The same code path as `chromatica index DIR FOLDER`.
    let t = Instant::now();
    let (index, s) = images::sync(&dir, std::slice::from_ref(&folder), &SyncOptions::default())?;
    println!("\nindex: {} (with training: {:.2}s)", images::summary_line(&s), t.elapsed().as_secs_f64());
    println!("index state: {}", state_line(&index, &s));
    if !index.index().is_trained() {
        return Err(Error::InvalidInput(format!(
            "demo self-check failed: {IMAGES} images did not train the index (it trains at {})",
            chromatica::AUTO_TRAIN_MIN
        )));
    }

    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    let palette_of: std::collections::HashMap<PathBuf, &Palette> =
        painted.iter().filter_map(|p| canonical(&p.path).map(|c| (c, &p.palette))).collect();
    let row_of: std::collections::HashMap<PathBuf, usize> =
        painted.iter().enumerate().filter_map(|(i, p)| canonical(&p.path).map(|c| (c, i))).collect();
    // The exact EMD of every painted image to a query, by brute force
    // (independently of the index: from the histograms painted): the true
    // top 10 and its 10th distance, which the results are judged against.
    let truth = |query: &[([f64; 3], f64)]| -> Result<Vec<f64>> {
        let mut d: Vec<f64> =
            painted.iter().map(|p| chromatica::color::emd_lab(query, &p.masses)).collect::<Result<_>>()?;
        d.sort_by(f64::total_cmp);
        Ok(d[..K].to_vec())
    };
    let judge = |query: &[([f64; 3], f64)], hits: &[Hit]| -> Result<(usize, f64)> {
        let want = truth(query)?;
        let mut got = Vec::new();
        for h in hits {
            let row = h.path.as_ref().and_then(|p| row_of.get(p)).ok_or_else(|| {
                Error::InvalidInput(format!("demo self-check failed: result {} is not a painted image", h.id))
            })?;
            got.push(chromatica::color::emd_lab(query, &painted[*row].masses)?);
        }
        let kth = want[K - 1];
        let hits = got.iter().filter(|&&d| d <= kth * (1.0 + 1e-6) + 1e-9).count();
        Ok((hits, got.iter().sum::<f64>() / want.iter().sum::<f64>().max(1e-12)))
    };
    let name_of =
        |path: &Option<PathBuf>| path.as_deref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
    let show = |hits: &[Hit]| {
        for (i, h) in hits.iter().enumerate() {
            let what = h.path.as_ref().and_then(|p| palette_of.get(p)).map(|p| palette_names(p)).unwrap_or_default();
            println!(
                "  {:>2}. {:.4}  {:<32} {}  ({what})",
                i + 1,
                h.distance,
                name_of(&h.path).unwrap_or_default(),
                swatches(&h.colors, tty)
            );
        }
    };

    let options = SearchOptions::default().k(K);
    let mut fractions = Vec::new();
    let mut emd_hits = Vec::new();
    for (title, names) in QUERIES {
        let wanted: Vec<usize> = names.iter().map(|n| named(n)).collect();
        let spec = wanted.iter().map(|&c| chromatica::color::to_hex(NAMED[c].1)[1..].to_owned()).collect::<Vec<_>>();
        let spec = spec.join(",");
        let t = Instant::now();
        let found = index.search(&Query::colors(&spec)?, &options)?;
        let hits = found.hits;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        println!("\nquery \"{title}\" = --colors {spec}  {}  ({ms:.1} ms)", swatches(&found.query_colors, tty));
        show(&hits);
        let contains = |p: &Palette| wanted.iter().all(|w| p.iter().any(|(c, _)| c == w));
        let right = hits
            .iter()
            .filter(|h| h.path.as_ref().and_then(|p| palette_of.get(p)).is_some_and(|p| contains(p)))
            .count();
        let exist = painted.iter().filter(|p| contains(&p.palette)).count();
        let fraction = right as f64 / hits.len().max(1) as f64;
        fractions.push(fraction);
        println!(
            "  check: {right}/{} of the top {K} were painted with {} ({exist} of the {IMAGES} images were)",
            hits.len(),
            names.join(" + ")
        );
        let points: Vec<([f64; 3], f64)> =
            found.query_colors.iter().map(|c| (chromatica::color::srgb_to_lab(c.rgb), c.share)).collect();
        let (within, ratio) = judge(&points, &hits)?;
        emd_hits.push(within);
        println!(
            "  check: {within}/{K} are among the {K} nearest of all {IMAGES} by exact EMD (brute force); \
             EMD of these over the true top {K}: {ratio:.3}"
        );
    }

    // An image query: the first painted image looks for images like it.
    let (example, example_palette) = (&painted[0].path, &painted[0].palette);
    let found = index.search(&Query::Image(example.clone()), &options)?;
    let hits = found.hits;
    println!(
        "\nquery by image {} ({})  {}",
        example.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        palette_names(example_palette),
        swatches(&found.query_colors, tty)
    );
    show(&hits);
    let itself = hits.first().is_some_and(|h| h.path == canonical(example));
    println!("  check: the nearest image is the query image itself: {}", if itself { "yes" } else { "NO" });
    let (within, ratio) = judge(&painted[0].masses, &hits)?;
    emd_hits.push(within);
    println!(
        "  check: {within}/{K} are among the {K} nearest of all {IMAGES} by exact EMD (brute force); \
         EMD of these over the true top {K}: {ratio:.3}"
    );

    let m = index.index().memory_estimate();
    let per = |b: u64| b as f64 / m.vectors.max(1) as f64;
    let flat = per(m.flat_f32_bytes);
    let resident = per(m.resident_heap_bytes + m.code_bytes + m.id_bytes + m.refine_bytes);
    println!(
        "\nbytes per image: {resident:.0} resident while searching (heap {:.0} incl. Lab means {:.0}, PQ codes {:.0}, \
         ids {:.0}, refine store {:.0}, which the exact EMD reads), {:.0} on disk (records {:.0}), against {flat:.0} \
         as flat float32 ({:.1}x and {:.1}x smaller)",
        per(m.resident_heap_bytes),
        per(m.lab_mean_bytes),
        per(m.code_bytes),
        per(m.id_bytes),
        per(m.refine_bytes),
        per(m.disk_bytes),
        per(m.record_bytes),
        flat / resident.max(1.0),
        flat / per(m.disk_bytes).max(1.0),
    );

    let mean = fractions.iter().sum::<f64>() / fractions.len() as f64;
    println!(
        "\nsummary: colour queries put {:.0}% of their top {K} on images painted with the queried colours \
         ({}); index: {}; demo took {:.2}s",
        mean * 100.0,
        fractions.iter().map(|f| format!("{:.1}", f)).collect::<Vec<_>>().join(" "),
        state_line(&index, &s),
        t0.elapsed().as_secs_f64()
    );
    println!("try it on your photos: chromatica index my.idx ~/Pictures && chromatica search my.idx --colors ff7f50,e1ad01 --html sheet.html");
    let emd_recall = emd_hits.iter().sum::<usize>() as f64 / (emd_hits.len() * K) as f64;
    println!("exact EMD: {:.0}% of all top-{K} results are among the true {K} nearest", emd_recall * 100.0);
    if !itself || mean < 0.8 || emd_recall < 0.9 {
        return Err(Error::InvalidInput(format!(
            "demo self-check failed: {:.0}% of colour-query results match (want at least 80%), {:.0}% are in the \
             exact-EMD top {K} (want at least 90%), image query finds itself: {itself}",
            mean * 100.0,
            emd_recall * 100.0
        )));
    }
    Ok(())
}
