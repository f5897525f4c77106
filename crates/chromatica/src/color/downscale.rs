//! Shrinking an image before it is histogrammed, by exact area averaging.
//!
//! An image whose longer side exceeds [`MAX_SIDE`] is resized so that its
//! longer side is exactly `MAX_SIDE` and its shorter side is
//! `round(short · MAX_SIDE / long)` (halves up, at least 1): 600 × 300
//! becomes 256 × 128.
//!
//! Each target pixel is the mean of the source pixels under its footprint,
//! every source pixel weighted by the fraction of its area that the footprint
//! covers (a box filter integrated exactly, the "area" resampling of OpenCV's
//! `INTER_AREA` for shrinking). It works on the 8-bit sRGB values, not on
//! linear light, uses exact integer arithmetic, and rounds the mean to the
//! nearest integer, halves up. For integer factors (512 → 256) this is
//! exactly PIL's `Image.reduce` and `resize(…, Image.BOX)`. For other
//! factors PIL's BOX filter gives each source pixel weight 1 or 0 by whether
//! its centre lies inside the footprint, where we give it its covered
//! fraction; the two differ only at footprint edges.
//!
//! A JPEG at least twice `MAX_SIDE` on its longer side reaches this step
//! already reduced by 2, 4 or 8 in the DCT domain (see
//! [`load_image_with`](super::load_image_with)), which averages each block
//! in YCbCr before colour conversion instead of in 8-bit sRGB; by 8 (from
//! 2048 px) each sample is the DC coefficient of an 8 × 8 block, with the
//! chroma upsampled by libjpeg's triangle filter (`jpeg_dc.rs`). Measured
//! against a full decode followed by this area average, on the 22 Debian
//! wallpaper JPEGs of 1 to 18 megapixels (L1 distance between the
//! histograms, of a possible 2): the 13 of 2048 px or more, at 1/8 from
//! their DC coefficients, 0.006 to 0.037 (median 0.020); the 9 smaller
//! ones, at 1/4 or 1/2 by jpeg-decoder, 0.003 to 0.055 (median 0.011).

use image::RgbImage;

/// Longest side, in pixels, that an image keeps before it is histogrammed.
pub const MAX_SIDE: u32 = 256;

/// The size an image of `width × height` is histogrammed at: unchanged if
/// neither side exceeds `max_side`, else the longer side becomes `max_side`
/// and the shorter is scaled in proportion, rounded to nearest, at least 1.
pub fn target_size(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= max_side {
        return (width, height);
    }
    let scale = |side: u32| -> u32 {
        let (s, m, l) = (u64::from(side), u64::from(max_side), u64::from(long));
        ((2 * s * m + l) / (2 * l)).max(1) as u32
    };
    (scale(width), scale(height))
}

/// `img` shrunk by [`area_resize`] to [`target_size`]`(width, height,
/// max_side)`; returned unchanged when it already fits.
pub fn fit_within(img: RgbImage, max_side: u32) -> RgbImage {
    let (w, h) = target_size(img.width(), img.height(), max_side);
    if (w, h) == img.dimensions() {
        img
    } else {
        area_resize(&img, w, h)
    }
}

/// For each target index along one axis: the first source index and the
/// integer weights of the consecutive source pixels it covers. In units
/// where a source pixel is `dst` long and a target pixel `src` long, target
/// `x` spans `[x·src, (x+1)·src)` and source `j` spans `[j·dst, (j+1)·dst)`;
/// a weight is the length of their overlap, so each target's weights sum
/// to `src`.
fn axis_weights(src: u32, dst: u32) -> Vec<(usize, Vec<u64>)> {
    let (src, dst) = (u64::from(src), u64::from(dst));
    (0..dst)
        .map(|x| {
            let (lo, hi) = (x * src, (x + 1) * src);
            let first = lo / dst;
            let last = hi.div_ceil(dst); // exclusive
            let weights = (first..last).map(|j| hi.min((j + 1) * dst) - lo.max(j * dst)).collect();
            (first as usize, weights)
        })
        .collect()
}

/// Resizes `img` to `width × height` (both ≥ 1) by exact area averaging in
/// 8-bit sRGB space, as described in the module documentation. Also valid
/// for enlarging, where it becomes nearest-neighbour with blended seams.
pub fn area_resize(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (sw, sh) = img.dimensions();
    assert!(width > 0 && height > 0, "area_resize to an empty size");
    if sw == 0 || sh == 0 {
        return RgbImage::new(width, height);
    }
    let xs = axis_weights(sw, width);
    let ys = axis_weights(sh, height);
    // Weights along x sum to sw, along y to sh.
    let denom = u128::from(sw) * u128::from(sh);
    let half = denom / 2;
    let src = img.as_raw();
    let row_len = sw as usize * 3;
    let mut out = RgbImage::new(width, height);
    let dst = out.as_mut();
    let mut column_sums = vec![0u64; row_len];
    for (y, (y0, wy)) in ys.iter().enumerate() {
        // Vertical pass: weighted sum of the covered rows, per column.
        column_sums.fill(0);
        for (k, &w) in wy.iter().enumerate() {
            let row = &src[(y0 + k) * row_len..(y0 + k + 1) * row_len];
            for (acc, &v) in column_sums.iter_mut().zip(row) {
                *acc += w * u64::from(v);
            }
        }
        // Horizontal pass over the column sums.
        let out_row = &mut dst[y * width as usize * 3..(y + 1) * width as usize * 3];
        for (x, (x0, wx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let s: u128 = wx
                    .iter()
                    .enumerate()
                    .map(|(k, &w)| u128::from(w) * u128::from(column_sums[(x0 + k) * 3 + c]))
                    .sum();
                out_row[x * 3 + c] = ((s + half) / denom) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn target_sizes() {
        assert_eq!(target_size(600, 300, 256), (256, 128));
        assert_eq!(target_size(300, 600, 256), (128, 256));
        assert_eq!(target_size(256, 10, 256), (256, 10));
        assert_eq!(target_size(257, 257, 256), (256, 256));
        // 1000 × 3 -> 256 × 0.768 -> rounded to 1.
        assert_eq!(target_size(1000, 3, 256), (256, 1));
        assert_eq!(target_size(100_000, 1, 256), (256, 1));
        // 0.5 rounds up: 512 × 1 -> 256 × 0.5 -> 1; 1000 × 502 -> 128.512 -> 129.
        assert_eq!(target_size(1000, 502, 256), (256, 129));
        assert_eq!(target_size(1000, 500, 256), (256, 128));
    }

    #[test]
    fn weights_cover_each_target_exactly() {
        for (s, d) in [(600u32, 256u32), (3, 2), (7, 3), (256, 256), (2, 5)] {
            let ws = axis_weights(s, d);
            assert_eq!(ws.len(), d as usize);
            let mut per_source = vec![0u64; s as usize];
            for (first, w) in &ws {
                assert_eq!(w.iter().sum::<u64>(), u64::from(s));
                assert!(w.iter().all(|&v| v > 0));
                for (k, &v) in w.iter().enumerate() {
                    per_source[first + k] += v;
                }
            }
            // Every source pixel is used in full, once.
            assert!(per_source.iter().all(|&v| v == u64::from(d)), "{s}->{d}");
        }
    }

    #[test]
    fn integer_factor_is_plain_mean() {
        let img = RgbImage::from_fn(4, 2, |x, y| Rgb([(x * 10 + y) as u8, 100, (x % 2) as u8]));
        let out = area_resize(&img, 2, 1);
        // Pixels (0,0)=0,(1,0)=10,(0,1)=1,(1,1)=11 -> 5.5 -> 6 (halves up).
        assert_eq!(out.get_pixel(0, 0).0, [6, 100, 1]);
        // (2..4, 0..2): 20, 30, 21, 31 -> 25.5 -> 26; blue 0,1,0,1 -> 0.5 -> 1.
        assert_eq!(out.get_pixel(1, 0).0, [26, 100, 1]);
    }

    #[test]
    fn fractional_factor_weights_by_coverage() {
        // 3 -> 2: target 0 = (p0 + p1/2) / 1.5, target 1 = (p1/2 + p2) / 1.5.
        let img = RgbImage::from_fn(3, 1, |x, _| Rgb([[0, 90, 240][x as usize], 7, 255]));
        let out = area_resize(&img, 2, 1);
        assert_eq!(out.get_pixel(0, 0).0, [30, 7, 255]);
        assert_eq!(out.get_pixel(1, 0).0, [190, 7, 255]);
    }

    #[test]
    fn solid_colour_stays_solid() {
        let img = RgbImage::from_pixel(777, 301, Rgb([13, 200, 255]));
        let out = fit_within(img, 256);
        assert_eq!(out.dimensions(), (256, 99));
        assert!(out.pixels().all(|p| p.0 == [13, 200, 255]));
    }
}
