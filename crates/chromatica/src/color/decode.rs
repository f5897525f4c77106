//! Reading an image file into the pixels that are histogrammed.

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use image::{ImageReader, RgbImage};

use super::downscale::{fit_within, MAX_SIDE};
use super::histogram::histogram_of_pixels;
use crate::error::{Error, Result};

/// One-line form of a library's error message.
fn one_line(msg: impl std::fmt::Display) -> String {
    msg.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decodes an image held in memory: the format is recognised from the bytes
/// (JPEG, PNG, WebP, BMP, TIFF, GIF), falling back to `path`'s extension;
/// GIF gives its first frame; alpha is dropped (colours are kept as stored,
/// not composited); 16-bit and float images are converted to 8 bits.
/// `path` only names the file in errors and supplies the extension.
///
/// Decoding runs under the `image` crate's default limits (512 MiB per
/// allocation). A decoder panic on hostile input is caught and reported as
/// an error, so one bad file cannot bring down a bulk ingest.
pub fn decode_rgb(path: &Path, bytes: &[u8]) -> Result<RgbImage> {
    let mut reader = ImageReader::new(Cursor::new(bytes));
    if let Ok(format) = image::ImageFormat::from_path(path) {
        reader.set_format(format);
    }
    let reader = reader
        .with_guessed_format()
        .map_err(|e| Error::bad_file(path, format!("cannot read image: {}", one_line(e))))?;
    let decoded = catch_unwind(AssertUnwindSafe(|| reader.decode()))
        .map_err(|_| Error::bad_file(path, "cannot decode image: the decoder failed on malformed data"))?;
    let img = decoded.map_err(|e| Error::bad_file(path, format!("cannot decode image: {}", one_line(e))))?;
    let rgb = img.into_rgb8();
    if rgb.width() == 0 || rgb.height() == 0 {
        return Err(Error::bad_file(path, "image has no pixels"));
    }
    Ok(rgb)
}

/// Reads and decodes an image file (see [`decode_rgb`]) and shrinks it so
/// that its longer side is at most [`MAX_SIDE`] (see
/// [`fit_within`](super::fit_within)): exactly the pixels
/// [`image_histogram`] counts.
pub fn load_image(path: &Path) -> Result<RgbImage> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::bad_file(path, format!("cannot read image: {}", one_line(e))))?;
    Ok(fit_within(decode_rgb(path, &bytes)?, MAX_SIDE))
}

/// The L1-normalised colour histogram of an image file (before the
/// Hellinger transform). Errors name the path and never panic.
pub fn image_histogram(path: &Path) -> Result<Vec<f32>> {
    let img = load_image(path)?;
    Ok(histogram_of_pixels(img.pixels().map(|p| p.0)))
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
        img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        let got = decode_rgb(Path::new("x.jpg"), &png).unwrap();
        assert_eq!(got, img);
    }

    #[test]
    fn empty_bytes_are_an_error_naming_the_path() {
        let e = decode_rgb(Path::new("dir/empty.png"), &[]).unwrap_err().to_string();
        assert!(e.starts_with("dir/empty.png: "), "{e}");
        assert!(!e.contains('\n'));
    }
}
