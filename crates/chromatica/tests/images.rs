#![cfg(feature = "images")]
//! The colour workflow through the library API (`chromatica::images`):
//! sync (new, changed, unchanged, deleted from disk, unreadable, links),
//! search by colours, by example image and by histogram, and safe decoding
//! (non-regular files, pixel limit, large JPEGs at reduced size).

use chromatica::images::{self, ImageIndex, ImageLimits, Query, SearchOptions, SyncOptions, SyncSummary};
use chromatica::testing::color::{area_resize, decode_eighth, fit_within, histogram_of_pixels, target_size, MAX_SIDE};
use image::{Rgb, RgbImage};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

const RED: [u8; 3] = [230, 25, 75];
const BLUE: [u8; 3] = [67, 99, 216];
const GREEN: [u8; 3] = [60, 180, 75];
const YELLOW: [u8; 3] = [255, 225, 25];

fn paint(path: &Path, colours: &[[u8; 3]]) {
    let img = RgbImage::from_fn(32, 24, |x, _| Rgb(colours[x as usize * colours.len() / 32]));
    img.save(path).unwrap();
}

struct Photos {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    folder: PathBuf,
    idx: PathBuf,
}

/// red.png, blue.png, green.png and sub/yellow.png, canonical paths.
fn photos() -> Photos {
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let folder = root.join("photos");
    std::fs::create_dir_all(folder.join("sub")).unwrap();
    paint(&folder.join("red.png"), &[RED]);
    paint(&folder.join("blue.png"), &[BLUE]);
    paint(&folder.join("green.png"), &[GREEN]);
    paint(&folder.join("sub/yellow.png"), &[YELLOW]);
    std::fs::write(folder.join("notes.txt"), "not an image").unwrap();
    let idx = root.join("idx");
    Photos { _tmp: tmp, root, folder, idx }
}

fn sync(index: &ImageIndex, inputs: &[&Path], options: &SyncOptions) -> SyncSummary {
    index.sync(inputs, options, &|_| {}).unwrap()
}

fn counts(s: &SyncSummary) -> [usize; 5] {
    [s.added, s.updated, s.unchanged, s.removed.len(), s.failed.len()]
}

fn top_path(index: &ImageIndex, query: &Query) -> PathBuf {
    index.search(query, &SearchOptions::default().k(1)).unwrap().hits[0].path.clone().unwrap()
}

#[test]
fn sync_adds_skips_replaces_and_removes() {
    let p = photos();
    let index = ImageIndex::open_or_create(&p.idx).unwrap();
    assert!(index.created());
    let o = SyncOptions::default();
    let s = sync(&index, &[&p.folder], &o);
    assert_eq!(counts(&s), [4, 0, 0, 0, 0], "{s:?}");
    assert_eq!(index.len(), 4);
    assert_eq!(counts(&sync(&index, &[&p.folder], &o)), [0, 0, 4, 0, 0]);

    // Changed: repainted with a new mtime, its old vector replaced.
    let red = p.folder.join("red.png");
    paint(&red, &[GREEN]);
    let later = SystemTime::now() + Duration::from_secs(10);
    std::fs::File::options().write(true).open(&red).unwrap().set_modified(later).unwrap();
    assert_eq!(counts(&sync(&index, &[&p.folder], &o)), [0, 1, 3, 0, 0]);
    assert_eq!(index.len(), 4);
    let found = index.search(&Query::colors("e6194b").unwrap(), &SearchOptions::default().k(10)).unwrap();
    assert_eq!(found.hits.iter().filter(|h| h.path.as_deref() == Some(&red)).count(), 1);
    assert!(found.hits.iter().all(|h| h.colors[0].rgb != RED), "the old red vector is still there");

    // Deleted from disk: removed from the index, and reported.
    std::fs::remove_file(p.folder.join("blue.png")).unwrap();
    std::fs::remove_dir_all(p.folder.join("sub")).unwrap();
    let s = sync(&index, &[&p.folder], &o);
    assert_eq!(counts(&s), [0, 0, 2, 2, 0], "{s:?}");
    assert_eq!(s.removed, vec![p.folder.join("blue.png"), p.folder.join("sub/yellow.png")]);
    assert_eq!(index.len(), 2);
    assert_eq!(counts(&sync(&index, &[&p.folder], &o)), [0, 0, 2, 0, 0]);
}

#[test]
fn files_outside_the_synced_folders_are_kept() {
    let p = photos();
    let other = p.root.join("other");
    std::fs::create_dir(&other).unwrap();
    paint(&other.join("o.png"), &[RED, BLUE]);
    let index = ImageIndex::open_or_create(&p.idx).unwrap();
    let o = SyncOptions::default();
    sync(&index, &[&p.folder, &other], &o);
    assert_eq!(index.len(), 5);
    // Syncing one folder only leaves the other's images alone.
    let s = sync(&index, &[&p.folder], &o);
    assert_eq!(counts(&s), [0, 0, 4, 0, 0]);
    assert_eq!(index.len(), 5);
}

#[test]
fn unreadable_files_are_reported_with_path_and_reason() {
    let p = photos();
    std::fs::write(p.folder.join("garbage.jpg"), b"this is not a JPEG").unwrap();
    std::fs::write(p.folder.join("empty.png"), b"").unwrap();
    let index = ImageIndex::open_or_create(&p.idx).unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let s = index
        .sync(&[&p.folder], &SyncOptions::default(), &|e| {
            if let images::SyncEvent::Problem(pr) = e {
                seen.lock().unwrap().push(pr.path.clone())
            }
        })
        .unwrap();
    assert_eq!(counts(&s), [4, 0, 0, 0, 2]);
    let mut failed: Vec<&Path> = s.failed.iter().map(|f| f.path.as_path()).collect();
    failed.sort();
    assert_eq!(failed, vec![p.folder.join("empty.png"), p.folder.join("garbage.jpg")]);
    for f in &s.failed {
        let msg = f.to_string();
        assert!(msg.starts_with(&format!("{}: ", f.path.display())) && !msg.contains('\n'), "{msg}");
    }
    assert_eq!(seen.into_inner().unwrap().len(), 2, "each problem reaches the callback");
    // Not recorded: tried again next time.
    assert_eq!(counts(&sync(&index, &[&p.folder], &SyncOptions::default())), [0, 0, 4, 0, 2]);
}

#[cfg(unix)]
#[test]
fn links_are_followed_unless_told_not_to_and_loops_end() {
    let p = photos();
    let outside = p.root.join("outside");
    std::fs::create_dir(&outside).unwrap();
    paint(&outside.join("far.png"), &[RED, YELLOW]);
    std::os::unix::fs::symlink(&outside, p.folder.join("link")).unwrap();
    std::os::unix::fs::symlink(&p.folder, p.folder.join("sub/loop")).unwrap();

    let index = ImageIndex::open_or_create(p.root.join("nofollow")).unwrap();
    let s = sync(&index, &[&p.folder], &SyncOptions::default().follow_links(false));
    assert_eq!(counts(&s), [4, 0, 0, 0, 0], "{s:?}");

    let index = ImageIndex::open_or_create(&p.idx).unwrap();
    let s = sync(&index, &[&p.folder], &SyncOptions::default());
    assert_eq!(counts(&s), [5, 0, 0, 0, 0], "{s:?}");
    // Recorded by its canonical path, outside the folder.
    let far = top_path(&index, &Query::colors("e6194b,ffe119").unwrap());
    assert_eq!(far, outside.join("far.png"));
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(s.warnings[0].to_string().contains("loop"), "{}", s.warnings[0]);
    // A file deleted behind a followed link is removed too.
    std::fs::remove_file(outside.join("far.png")).unwrap();
    let s = sync(&index, &[&p.folder], &SyncOptions::default());
    assert_eq!(s.removed, vec![outside.join("far.png")]);
}

#[test]
fn search_by_colours_image_and_histogram() {
    let p = photos();
    let index = ImageIndex::open_or_create(&p.idx).unwrap();
    sync(&index, &[&p.folder], &SyncOptions::default());
    let red = p.folder.join("red.png");

    let found = index.search(&Query::colors("e6194b").unwrap(), &SearchOptions::default()).unwrap();
    assert_eq!(found.hits.len(), 4);
    assert_eq!(found.hits[0].path.as_deref(), Some(red.as_path()));
    assert_eq!(found.hits[0].colors[0].rgb, RED);
    assert!((found.hits[0].colors[0].share - 1.0).abs() < 1e-6);
    assert_eq!(found.query_colors[0].rgb, RED);
    assert!(found.exact, "four images: not trained");
    assert!(found.hits.windows(2).all(|w| w[0].distance <= w[1].distance));

    let by_image = index.search(&Query::Image(red.clone()), &SearchOptions::default().k(2)).unwrap();
    assert_eq!(by_image.hits.len(), 2);
    assert_eq!(by_image.hits[0].path.as_deref(), Some(red.as_path()));
    // Not 0: the stored histogram is the image's rounded to 16-bit steps
    // (FORMAT.md, "Refine store"), well under 0.01 ΔE away.
    assert!(by_image.hits[0].distance < 1e-2, "{}", by_image.hits[0].distance);

    // A raw histogram, at any scale: the same as the image it came from.
    let h: Vec<f32> = images::histogram(&red).unwrap().iter().map(|v| v * 7.0).collect();
    let by_hist = index.search(&Query::Histogram(h), &SearchOptions::default().k(2)).unwrap();
    assert_eq!(by_hist.hits[0].id, by_image.hits[0].id);
    assert!((by_hist.hits[1].distance - by_image.hits[1].distance).abs() < 1e-5);

    for bad in [vec![0.0; 3], vec![0.0; 1152], vec![f32::NAN; 1152], vec![-1.0; 1152]] {
        assert!(index.search(&Query::Histogram(bad), &SearchOptions::default()).is_err());
    }
    assert!(index.search(&Query::colors("e6194b").unwrap(), &SearchOptions::default().k(0)).is_err());
    // A read-only handle searches the same.
    let ro = ImageIndex::open_read_only(&p.idx).unwrap();
    assert_eq!(top_path(&ro, &Query::colors("4363d8").unwrap()), p.folder.join("blue.png"));
}

#[test]
fn an_index_of_other_vectors_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    chromatica::Index::create(&dir, chromatica::Config { dim: 16, nlist: 4, m: 4, nprobe: 2, ..Default::default() })
        .unwrap();
    let e = ImageIndex::open_or_create(&dir).err().unwrap().to_string();
    assert!(e.contains("1152"), "{e}");
    let full = tmp.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("x"), "x").unwrap();
    let e = ImageIndex::open_or_create(&full).err().unwrap().to_string();
    assert!(e.contains("not a chromatica index"), "{e}");
}

/// Runs `f` on another thread; fails the test if it has not returned
/// within 20 s (a read that blocks forever).
fn within_time<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20)).expect("hung: did not return within 20 s")
}

#[cfg(unix)]
#[test]
fn non_regular_files_are_refused_without_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("photo.png");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for (path, kind) in
        [(fifo, "a FIFO"), (PathBuf::from("/dev/zero"), "a character device"), (tmp.path().to_owned(), "a directory")]
    {
        let p = path.clone();
        let e = within_time(move || images::histogram(&p)).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: ", path.display())) && e.contains(kind), "{e}");
        assert!(!e.contains('\n'));
    }
}

/// CRC-32 (IEEE) of `bytes`, for hand-made PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

/// A PNG whose header says `w × h` RGB with a few bytes of pixel data.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]));
    png.extend(chunk(b"IEND", &[]));
    png
}

#[test]
fn the_pixel_limit_is_checked_from_the_header_before_decoding() {
    let tmp = tempfile::tempdir().unwrap();
    let bomb = tmp.path().join("bomb.png");
    std::fs::write(&bomb, png_claiming(11_500, 11_500)).unwrap();
    let e = images::histogram(&bomb).unwrap_err().to_string();
    assert!(e.contains("11500 x 11500") && e.contains("over the limit of 100000000"), "{e}");
    // Configurable: a small real image over a small limit.
    let small = tmp.path().join("small.png");
    paint(&small, &[RED]);
    let limits = ImageLimits::with_max_pixels(100);
    let e = chromatica::color::image_histogram_with(&small, &limits).unwrap_err().to_string();
    assert!(e.contains("32 x 24 = 768 pixels"), "{e}");
    assert!(chromatica::color::image_histogram_with(&small, &ImageLimits::with_max_pixels(768)).is_ok());
    // The sync reports it as a failed file, with the reason.
    let folder = tmp.path().join("f");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(&bomb, folder.join("bomb.png")).unwrap();
    let index = ImageIndex::open_or_create(tmp.path().join("idx")).unwrap();
    let s = sync(&index, &[&folder], &SyncOptions::default());
    assert_eq!(s.failed.len(), 1);
    assert!(s.failed[0].to_string().contains("over the limit"), "{}", s.failed[0]);
}

/// Smooth gradients with some texture, like a photo.
fn photo_like(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let t = ((x * 7 + y * 13) % 31) as u8;
        Rgb([(x * 255 / w) as u8 ^ (t & 3), (y * 255 / h) as u8, (((x + y) / 12) % 256) as u8])
    })
}

/// L1 distance between the histogram of `path` and the histogram of its
/// full decode area-averaged to the same size; also checks that size.
fn l1_from_full_decode(path: &Path) -> f32 {
    let full = image::open(path).unwrap().into_rgb8();
    let (tw, th) = target_size(full.width(), full.height(), MAX_SIDE);
    let want = histogram_of_pixels(area_resize(&full, tw, th).pixels().map(|p| p.0));
    assert_eq!(chromatica::color::load_image(path).unwrap().dimensions(), (tw, th));
    let got = images::histogram(path).unwrap();
    got.iter().zip(&want).map(|(a, b)| (a - b).abs()).sum()
}

#[test]
fn a_large_jpeg_decoded_at_reduced_size_histograms_like_a_full_decode() {
    // 1600 px: decoded at 1/4 scale by jpeg-decoder.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.jpg");
    photo_like(1600, 1200).save(&path).unwrap();
    let l1 = l1_from_full_decode(&path);
    assert!(l1 < 0.05, "L1 {l1} between the DCT-scaled and the full decode");
}

#[test]
fn a_jpeg_of_2048_px_or_more_histograms_from_its_dc_coefficients_like_a_full_decode() {
    // At 1/8 scale only the DC coefficients count: sequential and
    // progressive, 4:2:0 and 4:4:4, each within the same L1 of its full
    // decode as the 1/4-scale path above.
    let tmp = tempfile::tempdir().unwrap();
    let (w, h) = (2400u16, 1500u16);
    let img = photo_like(w.into(), h.into());
    for progressive in [false, true] {
        for sampling in [jpeg_encoder::SamplingFactor::R_4_2_0, jpeg_encoder::SamplingFactor::R_4_4_4] {
            let path = tmp.path().join(format!("big-{progressive}-{sampling:?}.jpg"));
            let mut e = jpeg_encoder::Encoder::new_file(&path, 90).unwrap();
            e.set_progressive(progressive);
            e.set_sampling_factor(sampling);
            e.encode(img.as_raw(), w, h, jpeg_encoder::ColorType::Rgb).unwrap();
            // These pixels come from the DC decoder, not from a fallback.
            let dc = decode_eighth(&std::fs::read(&path).unwrap(), u64::MAX).unwrap();
            assert_eq!(chromatica::color::load_image(&path).unwrap(), fit_within(dc, MAX_SIDE));
            let l1 = l1_from_full_decode(&path);
            assert!(l1 < 0.05, "progressive {progressive} {sampling:?}: L1 {l1} from the full decode");
        }
    }
}

#[cfg(unix)]
#[test]
fn file_names_that_are_not_utf8_are_indexed_and_given_back_exactly() {
    use std::os::unix::ffi::OsStrExt;
    let p = photos();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9-latin1.png");
    let odd = p.folder.join(name);
    paint(&odd, &[RED, YELLOW]);
    let index = ImageIndex::open_or_create(&p.idx).unwrap();
    let s = sync(&index, &[&p.folder], &SyncOptions::default());
    assert_eq!(counts(&s), [5, 0, 0, 0, 0], "{s:?}");
    assert_eq!(top_path(&index, &Query::colors("e6194b,ffe119").unwrap()), odd);
    // Recorded exactly: unchanged next time, removed when deleted.
    assert_eq!(counts(&sync(&index, &[&p.folder], &SyncOptions::default())), [0, 0, 5, 0, 0]);
    std::fs::remove_file(&odd).unwrap();
    let s = sync(&index, &[&p.folder], &SyncOptions::default());
    assert_eq!(s.removed, vec![odd]);
    chromatica::Index::verify(&p.idx).unwrap();
}
