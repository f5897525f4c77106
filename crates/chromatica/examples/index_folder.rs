//! Index a folder of images and search it by colour:
//!
//! ```text
//! cargo run --release --example index_folder -p chromatica -- [FOLDER [COLOURS [INDEX_DIR]]]
//! ```
//!
//! Without a folder it paints a few small images into a temporary folder
//! first, so it runs on a fresh machine. COLOURS is a colour query such as
//! `ff7f50,e1ad01` or `e6194b:0.7,4363d8:0.3` (default `e6194b`).

use chromatica::images::{ImageIndex, Query, SearchOptions, SyncEvent, SyncOptions};
use std::path::PathBuf;

fn main() -> chromatica::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let folder = match args.first() {
        Some(f) => PathBuf::from(f),
        None => paint_examples(&tmp.path().join("photos")),
    };
    let colours = args.get(1).map_or("e6194b", String::as_str);
    let index_dir = args.get(2).map_or_else(|| tmp.path().join("index"), PathBuf::from);

    // Open (or create) the index and bring it in step with the folder.
    let index = ImageIndex::open_or_create(&index_dir)?;
    let summary = index.sync(&[&folder], &SyncOptions::default(), &|event| {
        if let SyncEvent::Problem(problem) = event {
            eprintln!("skipped: {problem}");
        }
    })?;
    println!(
        "{}: added {}, updated {}, unchanged {}, removed {}, failed {}",
        folder.display(),
        summary.added,
        summary.updated,
        summary.unchanged,
        summary.removed.len(),
        summary.failed.len()
    );

    // Search by colour: each hit has its path, distance and palette.
    let found = index.search(&Query::colors(colours)?, &SearchOptions::default().k(5))?;
    println!("images most like {colours}:");
    for hit in &found.hits {
        let palette: Vec<String> = hit.colors.iter().map(|c| format!("{} {:.0}%", c.hex(), c.share * 100.0)).collect();
        let path = hit.path.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
        println!("  {:.4}  {path}  {}", hit.distance, palette.join(" "));
    }
    Ok(())
}

/// Twelve 48 × 32 PNGs of one or two stripes of named colours.
fn paint_examples(folder: &std::path::Path) -> PathBuf {
    const COLOURS: [[u8; 3]; 4] = [[230, 25, 75], [67, 99, 216], [60, 180, 75], [255, 225, 25]];
    std::fs::create_dir_all(folder).expect("create the example folder");
    for i in 0..12 {
        let (a, b) = (COLOURS[i % 4], COLOURS[(i / 4 + i) % 4]);
        let img = image::RgbImage::from_fn(48, 32, |x, _| image::Rgb(if x < 24 + i as u32 { a } else { b }));
        img.save(folder.join(format!("example-{i:02}.png"))).expect("write an example image");
    }
    folder.to_owned()
}
