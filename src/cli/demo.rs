//! `chromatica demo`: the whole engine on data it makes itself. It invents
//! photos from known palettes (pixels drawn from 1–4 colours with jitter),
//! turns each into its Lab histogram, indexes them with the memory preset,
//! runs colour queries, and measures recall against exact search.

use chromatica::color::{self, hellinger, histogram_of_pixels, parse_color_query, query_histogram, to_hex};
use chromatica::{distance, Config, Index, Result, SearchParams, TrainOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::io::IsTerminal;
use std::time::Instant;

const PHOTOS: usize = 20_000;
const PIXELS: usize = 768;
const QUERIES: [(&str, &str); 4] = [
    ("coral and mustard", "ff7f50:0.5,e1ad01:0.5"),
    ("ocean blues", "006994,7fcdff"),
    ("forest", "228b22:0.7,8b4513:0.3"),
    ("sunset", "ff4500,ff8c00,8b008b"),
];

/// A photo's palette: colours and their shares of the pixels.
type Palette = Vec<([u8; 3], f32)>;

fn palette(rng: &mut ChaCha8Rng) -> Palette {
    let n = rng.random_range(1..=4);
    let mut w: Vec<f32> = (0..n).map(|_| rng.random_range(0.2..1.0)).collect();
    let s: f32 = w.iter().sum();
    w.iter_mut().for_each(|x| *x /= s);
    w.into_iter().map(|w| ([rng.random(), rng.random(), rng.random()], w)).collect()
}

fn photo_histogram(p: &Palette, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pixels: Vec<[u8; 3]> = (0..PIXELS)
        .map(|_| {
            let mut r: f32 = rng.random();
            let c = p.iter().find(|(_, w)| {
                r -= w;
                r <= 0.0
            });
            let c = c.unwrap_or(&p[p.len() - 1]).0;
            c.map(|v| (v as i32 + rng.random_range(-10..=10)).clamp(0, 255) as u8)
        })
        .collect();
    let mut h = histogram_of_pixels(pixels.into_iter());
    hellinger(&mut h);
    h
}

fn swatch(rgb: [u8; 3], tty: bool) -> String {
    if tty {
        format!("\x1b[48;2;{};{};{}m    \x1b[0m {}", rgb[0], rgb[1], rgb[2], to_hex(rgb))
    } else {
        to_hex(rgb)
    }
}

pub fn run() -> Result<()> {
    let tty = std::io::stdout().is_terminal();
    let dir = std::env::temp_dir().join(format!("chromatica-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result = run_in(&dir, tty);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(dir: &std::path::Path, tty: bool) -> Result<()> {
    let d = color::HIST_DIM;
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let palettes: Vec<Palette> = (0..PHOTOS + 200).map(|_| palette(&mut rng)).collect();
    println!("Chromatica demo: {PHOTOS} synthetic photos, each {PIXELS} pixels from a palette of 1-4 colours.\n");
    let t = Instant::now();
    let hists: Vec<f32> =
        palettes.par_iter().enumerate().flat_map_iter(|(i, p)| photo_histogram(p, i as u64)).collect();
    let (base, held_out) = hists.split_at(PHOTOS * d);
    println!(
        "histograms   {:.2}s  (sRGB -> CIE Lab -> 8x12x12 soft histogram -> Hellinger)",
        t.elapsed().as_secs_f64()
    );

    let config = Config::default();
    let index = Index::create(dir, config)?;
    let t = Instant::now();
    let report = index.train(base, &TrainOptions::default(), &mut |_| ())?;
    println!(
        "train        {:.2}s  (nlist {}, m {}, nbits {}; {} training vectors)",
        t.elapsed().as_secs_f64(),
        config.nlist,
        config.m,
        config.nbits,
        report.train_points
    );
    let t = Instant::now();
    index.add(base, None)?;
    println!("add          {:.2}s  ({PHOTOS} vectors, one durable segment)", t.elapsed().as_secs_f64());
    let m = index.memory_estimate();
    println!(
        "memory       {:.1} bytes/vector on disk, all counted ({} B codes + {:.0} B ids + quantizers); flat float32 would be {} B",
        m.disk_bytes_per_vector, config.code_size(), m.id_bytes as f64 / m.vectors as f64, d * 4
    );

    for (name, spec) in QUERIES {
        let q = parse_color_query(spec)?;
        let mut h = query_histogram(&q, color::DEFAULT_SHARPEN);
        hellinger(&mut h);
        let hits = index.search(&h, &SearchParams::new(5))?;
        let wanted: Vec<String> = q.colors.iter().map(|(c, _)| swatch(*c, tty)).collect();
        println!("\nquery \"{name}\"  {}", wanted.join("  "));
        for (rank, nb) in hits[0].iter().enumerate() {
            let p = &palettes[nb.id as usize];
            let colours: Vec<String> =
                p.iter().map(|(c, w)| format!("{} {:>3.0}%", swatch(*c, tty), w * 100.0)).collect();
            println!("  {}. photo {:>5}  distance {:.3}  {}", rank + 1, nb.id, nb.distance, colours.join("  "));
        }
    }

    // Recall of the compressed index against exact search, on held-out photos.
    let nq = held_out.len() / d;
    let t = Instant::now();
    let found = index.search(held_out, &SearchParams::new(10))?;
    let secs = t.elapsed().as_secs_f64();
    let mut hits = 0;
    for (qi, x) in held_out.chunks_exact(d).enumerate() {
        let mut exact: Vec<(f32, usize)> = base.chunks_exact(d).map(|y| distance::l2sq(x, y)).zip(0..).collect();
        exact.select_nth_unstable_by(9, |a, b| a.0.total_cmp(&b.0));
        let truth: Vec<u64> = exact[..10].iter().map(|e| e.1 as u64).collect();
        hits += found[qi].iter().filter(|nb| truth.contains(&nb.id)).count();
    }
    println!(
        "\nrecall@10    {:.3} against exact search ({nq} held-out photos, nprobe {}); {:.0} queries/s",
        hits as f64 / (10 * nq) as f64,
        config.nprobe,
        nq as f64 / secs
    );
    Ok(())
}
