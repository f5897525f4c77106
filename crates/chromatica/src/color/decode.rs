//! Reading an image file into the pixels that are histogrammed, safely:
//! only regular files are opened, the header (format signature and
//! dimensions) is checked against a pixel limit before any pixel is
//! decoded, each decode's memory is bounded, concurrent decodes share one
//! memory budget, and large JPEGs are decoded at reduced size in the DCT
//! domain (at 1/8, from the DC coefficients alone: `jpeg_dc.rs`).

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read, Seek};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Condvar, Mutex};

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

use super::downscale::{fit_within, target_size, MAX_SIDE};
use super::histogram::histogram_of_pixels;
use crate::error::{Error, Result};

/// Default [`ImageLimits::max_pixels`]: 100 megapixels (a 12,000 × 8,000
/// photo fits; an 11,500 × 11,500 decompression bomb does not).
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// Most bytes one decode may allocate for its decoded pixels (the image
/// crate's own default): a 100-megapixel RGBA image fits, a 100-megapixel
/// 16-bit RGBA one does not.
pub const MAX_DECODE_BYTES: u64 = 512 << 20;

/// Bytes that all decodes running at once may hold together. A decode that
/// would go over it waits for others to finish (one that needs more than
/// all of it runs alone), so indexing many huge images on many cores does
/// not multiply memory by the core count.
pub const DECODE_BUDGET_BYTES: u64 = 1 << 30;

/// What an image file may cost before it is decoded.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    /// Images with more pixels (width × height, read from the header before
    /// decoding) are refused. Default [`DEFAULT_MAX_PIXELS`].
    pub max_pixels: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits { max_pixels: DEFAULT_MAX_PIXELS }
    }
}

impl ImageLimits {
    /// Limits refusing images of more than `max_pixels` pixels.
    pub fn with_max_pixels(max_pixels: u64) -> Self {
        ImageLimits { max_pixels }
    }
}

/// One-line form of a library's error message.
fn one_line(msg: impl std::fmt::Display) -> String {
    msg.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What kind of non-regular file `t` is, for the error message.
fn kind_of(t: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

fn not_regular(path: &Path, t: std::fs::FileType) -> Error {
    Error::bad_file(path, format!("cannot read image: {} (only regular files are read)", kind_of(t)))
}

/// Opens `path` for reading only if it is a regular file (after following
/// links). Checked before opening, so a directory, FIFO or device is
/// refused without reading; the open itself does not block (a FIFO swapped
/// in between the check and the open is refused by the second check on the
/// open handle, instead of waiting for a writer).
pub(crate) fn open_regular(path: &Path) -> Result<File> {
    let cannot = |e: std::io::Error| Error::bad_file(path, format!("cannot read image: {}", one_line(e)));
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        return Err(not_regular(path, meta.file_type()));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // No effect on regular files; makes opening a FIFO return at once.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(not_regular(path, meta.file_type()));
    }
    Ok(file)
}

/// The shared budget of [`DECODE_BUDGET_BYTES`].
struct Budget {
    in_use: Mutex<u64>,
    freed: Condvar,
}

static BUDGET: Budget = Budget { in_use: Mutex::new(0), freed: Condvar::new() };

/// Bytes reserved from [`BUDGET`], given back on drop.
struct Reservation(u64);

impl Budget {
    /// Waits until `bytes` fit in the budget (or nothing else is reserved).
    fn reserve(&'static self, bytes: u64) -> Reservation {
        let mut in_use = self.in_use.lock().unwrap_or_else(|e| e.into_inner());
        while *in_use > 0 && *in_use + bytes > DECODE_BUDGET_BYTES {
            in_use = self.freed.wait(in_use).unwrap_or_else(|e| e.into_inner());
        }
        *in_use += bytes;
        Reservation(bytes)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut in_use = BUDGET.in_use.lock().unwrap_or_else(|e| e.into_inner());
        *in_use -= self.0;
        BUDGET.freed.notify_all();
    }
}

fn check_pixels(path: &Path, width: u64, height: u64, limits: &ImageLimits) -> Result<()> {
    let pixels = width * height;
    if pixels == 0 {
        return Err(Error::bad_file(path, "image has no pixels"));
    }
    if pixels > limits.max_pixels {
        return Err(Error::bad_file(
            path,
            format!(
                "image is {width} x {height} = {pixels} pixels, over the limit of {} pixels; not decoded",
                limits.max_pixels
            ),
        ));
    }
    Ok(())
}

fn too_big(path: &Path, bytes: u64) -> Error {
    Error::bad_file(
        path,
        format!("decoding the image would take {bytes} bytes, over the limit of {MAX_DECODE_BYTES}; not decoded"),
    )
}

/// Runs a decoder, turning a panic on hostile input into an error, so one
/// bad file cannot bring down a bulk ingest.
fn guarded<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|_| Error::bad_file(path, "cannot decode image: the decoder failed on malformed data"))
}

/// A JPEG at least twice as large as `fit` on its longer side, decoded
/// with the DCT scaled to the smallest of 1/8, 1/4, 1/2 that still covers
/// the target size, so the area downscale that follows starts from a few
/// times the target instead of the full image. At 1/8 the samples are the
/// blocks' DC coefficients alone ([`jpeg_dc`](super::jpeg_dc)), which skips
/// a progressive file's AC scans; a file that decoder does not take goes to
/// jpeg-decoder like the other scales. `None` when the JPEG is small or in a
/// form this path leaves to the general one (CMYK, 16-bit): the reader is
/// then rewound.
fn scaled_jpeg<R: BufRead + Seek>(
    path: &Path,
    reader: &mut R,
    limits: &ImageLimits,
    fit: u32,
) -> Result<Option<RgbImage>> {
    let bad = |e: jpeg_decoder::Error| Error::bad_file(path, format!("cannot decode image: {}", one_line(e)));
    let cannot_read = |e: std::io::Error| Error::bad_file(path, format!("cannot read image: {}", one_line(e)));
    let mut decoder = jpeg_decoder::Decoder::new(&mut *reader);
    guarded(path, || decoder.read_info())?.map_err(bad)?;
    let info = decoder.info().expect("read_info succeeded");
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    check_pixels(path, w.into(), h.into(), limits)?;
    let small = w.max(h) < 2 * fit;
    let plain = matches!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24 | jpeg_decoder::PixelFormat::L8);
    if small || !plain {
        reader.rewind().map_err(cannot_read)?;
        return Ok(None);
    }
    let (tw, th) = target_size(w, h, fit);
    let (sw, sh) = decoder.scale(tw as u16, th as u16).map_err(bad)?;
    let components = info.pixel_format.pixel_bytes() as u64;
    let out_bytes = u64::from(sw) * u64::from(sh) * components;
    // A progressive JPEG keeps every DCT coefficient (2 bytes each) until
    // its last scan, whatever the output scale.
    let progressive = info.coding_process == jpeg_decoder::CodingProcess::DctProgressive;
    let coefficients = if progressive { u64::from(w) * u64::from(h) * components * 2 } else { 0 };
    let mut need = out_bytes * 2 + coefficients;
    let eighth = (u32::from(sw), u32::from(sh)) == (w.div_ceil(8), h.div_ceil(8));
    if !eighth {
        let _reserved = reserve(path, need)?;
        return jpeg_decoder_pixels(path, decoder, info.pixel_format, sw, sh, fit).map(Some);
    }
    // The DC path holds the file and one 4-byte DC value per block (an
    // MCU's padding is at most 2 blocks per row and column of blocks), and
    // what jpeg-decoder needs should it fall back there.
    drop(decoder);
    let file_len = reader.seek(std::io::SeekFrom::End(0)).map_err(cannot_read)?;
    let blocks = (u64::from(w.div_ceil(8)) + 3) * (u64::from(h.div_ceil(8)) + 3);
    need += file_len + blocks * 4 * components;
    let _reserved = reserve(path, need)?;
    reader.rewind().map_err(cannot_read)?;
    let mut bytes = Vec::with_capacity(file_len as usize);
    reader.take(file_len).read_to_end(&mut bytes).map_err(cannot_read)?;
    if let Some(img) = guarded(path, || super::jpeg_dc::decode_eighth(&bytes, limits.max_pixels))? {
        if img.dimensions() == (u32::from(sw), u32::from(sh)) {
            return Ok(Some(fit_within(img, fit)));
        }
    }
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(&bytes));
    guarded(path, || decoder.read_info())?.map_err(bad)?;
    decoder.scale(tw as u16, th as u16).map_err(bad)?;
    jpeg_decoder_pixels(path, decoder, info.pixel_format, sw, sh, fit).map(Some)
}

/// `need` bytes of the decode budget, or the one-line error when one decode
/// may not take that much.
fn reserve(path: &Path, need: u64) -> Result<Reservation> {
    if need > MAX_DECODE_BYTES {
        return Err(too_big(path, need));
    }
    Ok(BUDGET.reserve(need))
}

/// Decodes with `decoder` (header read, scale set to give `sw × sh`), as
/// RGB (grey is repeated), shrunk to `fit`.
fn jpeg_decoder_pixels<R: std::io::Read>(
    path: &Path,
    mut decoder: jpeg_decoder::Decoder<R>,
    format: jpeg_decoder::PixelFormat,
    sw: u16,
    sh: u16,
    fit: u32,
) -> Result<RgbImage> {
    let bad = |e: jpeg_decoder::Error| Error::bad_file(path, format!("cannot decode image: {}", one_line(e)));
    decoder.set_max_decoding_buffer_size(MAX_DECODE_BYTES as usize);
    let pixels = guarded(path, || decoder.decode())?.map_err(bad)?;
    let rgb = match format {
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&v| [v, v, v]).collect(),
        _ => pixels,
    };
    let img = RgbImage::from_raw(u32::from(sw), u32::from(sh), rgb)
        .ok_or_else(|| Error::bad_file(path, "cannot decode image: the decoder returned too few pixels"))?;
    Ok(fit_within(img, fit))
}

/// Decodes an image from `reader`: the format is recognised from the bytes
/// (JPEG, PNG, WebP, BMP, TIFF, GIF), falling back to `path`'s extension;
/// GIF gives its first frame; alpha is dropped (colours are kept as stored,
/// not composited); 16-bit and float images are converted to 8 bits. With
/// `fit`, the result is shrunk to at most `fit` pixels on its longer side
/// ([`fit_within`]), and a large JPEG is decoded at reduced size first.
/// `path` only names the file in errors and supplies the extension.
fn decode<R: BufRead + Seek>(path: &Path, mut reader: R, limits: &ImageLimits, fit: Option<u32>) -> Result<RgbImage> {
    let cannot_read = |e: std::io::Error| Error::bad_file(path, format!("cannot read image: {}", one_line(e)));
    let mut probe = ImageReader::new(&mut reader);
    if let Ok(format) = ImageFormat::from_path(path) {
        probe.set_format(format);
    }
    let format = probe.with_guessed_format().map_err(cannot_read)?.format();
    let Some(format) = format else {
        return Err(Error::unsupported(path, "cannot read image: not a recognised image format"));
    };
    if let (ImageFormat::Jpeg, Some(fit)) = (format, fit) {
        if let Some(img) = scaled_jpeg(path, &mut reader, limits, fit)? {
            return Ok(img);
        }
    }
    let cannot_decode = |e: image::ImageError| Error::bad_file(path, format!("cannot decode image: {}", one_line(e)));
    let mut image_reader = ImageReader::with_format(reader, format);
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(MAX_DECODE_BYTES);
    image_reader.limits(decoder_limits);
    // Reads the header only: signature and dimensions.
    let decoder = guarded(path, || image_reader.into_decoder())?.map_err(cannot_decode)?;
    let (w, h) = decoder.dimensions();
    check_pixels(path, w.into(), h.into(), limits)?;
    let bytes = decoder.total_bytes();
    // The decoded image, and its 8-bit RGB copy when it is in another form.
    let need = bytes.saturating_add(u64::from(w) * u64::from(h) * 3);
    if bytes > MAX_DECODE_BYTES {
        return Err(too_big(path, bytes));
    }
    let _reserved = BUDGET.reserve(need);
    let img = guarded(path, || DynamicImage::from_decoder(decoder))?.map_err(cannot_decode)?;
    let rgb = img.into_rgb8();
    Ok(match fit {
        Some(side) => fit_within(rgb, side),
        None => rgb,
    })
}

/// Decodes an image held in memory at full size (see [`load_image`] for
/// the formats and conversions), under the default [`ImageLimits`].
/// `path` only names the file in errors and supplies the extension.
pub fn decode_rgb(path: &Path, bytes: &[u8]) -> Result<RgbImage> {
    decode(path, Cursor::new(bytes), &ImageLimits::default(), None)
}

/// Reads and decodes an image file and shrinks it so that its longer side
/// is at most `max_side` (the longer side scaled to `max_side`, the other in proportion). The format is recognised
/// from the bytes (JPEG, PNG, WebP, BMP, TIFF, GIF), falling back to the
/// extension; GIF gives its first frame; alpha is dropped; 16-bit and float
/// images become 8-bit.
///
/// Safe on hostile input: anything but a regular file (a directory, FIFO,
/// device) is refused before it is read; the header is checked against
/// `limits` before any pixel is decoded; one decode allocates at most
/// [`MAX_DECODE_BYTES`] and all running decodes share
/// [`DECODE_BUDGET_BYTES`]; a decoder panic is an error. A JPEG of at least
/// twice `max_side` is decoded at 1/2, 1/4 or 1/8 scale in the DCT domain
/// (the smallest that still covers the target; at 1/8 from the DC
/// coefficients alone, so a progressive file's AC scans are never read),
/// then area-averaged.
pub fn load_image_with(path: &Path, limits: &ImageLimits, max_side: u32) -> Result<RgbImage> {
    let file = open_regular(path)?;
    decode(path, BufReader::new(file), limits, Some(max_side))
}

/// [`load_image_with`] under the default limits, shrunk to [`MAX_SIDE`]:
/// exactly the pixels [`image_histogram`] counts.
pub fn load_image(path: &Path) -> Result<RgbImage> {
    load_image_with(path, &ImageLimits::default(), MAX_SIDE)
}

/// The L1-normalised colour histogram of an image file (before the
/// Hellinger transform), decoded under `limits` (see [`load_image_with`]).
/// Errors name the path, are one line, and never panic.
pub fn image_histogram_with(path: &Path, limits: &ImageLimits) -> Result<Vec<f32>> {
    let img = load_image_with(path, limits, MAX_SIDE)?;
    Ok(histogram_of_pixels(img.pixels().map(|p| p.0)))
}

/// [`image_histogram_with`] under the default [`ImageLimits`].
pub fn image_histogram(path: &Path) -> Result<Vec<f32>> {
    image_histogram_with(path, &ImageLimits::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_collapses_newlines() {
        assert_eq!(one_line("a\nb \r\n c"), "a b c");
    }

    #[test]
    fn content_beats_extension() {
        // A PNG named .jpg decodes.
        let img = RgbImage::from_pixel(3, 2, image::Rgb([1, 2, 3]));
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), ImageFormat::Png).unwrap();
        let got = decode_rgb(Path::new("x.jpg"), &png).unwrap();
        assert_eq!(got, img);
    }

    #[test]
    fn empty_bytes_are_an_error_naming_the_path() {
        let e = decode_rgb(Path::new("dir/empty.png"), &[]).unwrap_err().to_string();
        assert!(e.starts_with("dir/empty.png: "), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn budget_lets_an_oversized_reservation_run_alone() {
        // Must not wait forever: nothing else holds the budget.
        let r = BUDGET.reserve(DECODE_BUDGET_BYTES * 2);
        drop(r);
        let a = BUDGET.reserve(DECODE_BUDGET_BYTES / 2);
        let b = BUDGET.reserve(DECODE_BUDGET_BYTES / 2);
        drop((a, b));
    }
}
