//! sRGB (8-bit) ⇄ CIE L\*a\*b\* (D65 white, 2° observer), with the constants
//! and formulas of scikit-image's `rgb2lab` / `lab2rgb`, computed in f64.
//!
//! Forward: 8-bit value / 255 → linear light by the sRGB transfer function
//! (`c/12.92` up to 0.04045, else `((c+0.055)/1.055)^2.4`) → XYZ with
//! scikit-image's `xyz_from_rgb` matrix → Lab relative to the D65 white
//! (0.95047, 1, 1.08883), with `f(t) = cbrt(t)` above 0.008856 and
//! `7.787 t + 16/116` below.

use std::sync::OnceLock;

/// scikit-image's `xyz_from_rgb` (sRGB primaries, D65).
const XYZ_FROM_RGB: [[f64; 3]; 3] =
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]];

/// Its exact inverse, as scikit-image's `rgb_from_xyz = linalg.inv(xyz_from_rgb)`.
const RGB_FROM_XYZ: [[f64; 3]; 3] = invert3(XYZ_FROM_RGB);

/// Reference white: D65, 2° observer.
const WHITE: [f64; 3] = [0.95047, 1.0, 1.08883];

const fn invert3(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let c00 = m[1][1] * m[2][2] - m[1][2] * m[2][1];
    let c01 = m[1][2] * m[2][0] - m[1][0] * m[2][2];
    let c02 = m[1][0] * m[2][1] - m[1][1] * m[2][0];
    let det = m[0][0] * c00 + m[0][1] * c01 + m[0][2] * c02;
    let inv = 1.0 / det;
    [
        [c00 * inv, (m[0][2] * m[2][1] - m[0][1] * m[2][2]) * inv, (m[0][1] * m[1][2] - m[0][2] * m[1][1]) * inv],
        [c01 * inv, (m[0][0] * m[2][2] - m[0][2] * m[2][0]) * inv, (m[0][2] * m[1][0] - m[0][0] * m[1][2]) * inv],
        [c02 * inv, (m[0][1] * m[2][0] - m[0][0] * m[2][1]) * inv, (m[0][0] * m[1][1] - m[0][1] * m[1][0]) * inv],
    ]
}

/// The sRGB transfer function (decoding), for a value in [0, 1].
fn srgb_to_linear(c: f64) -> f64 {
    if c > 0.04045 {
        ((c + 0.055) / 1.055).powf(2.4)
    } else {
        c / 12.92
    }
}

/// The sRGB transfer function (encoding), for linear light in [0, 1].
fn linear_to_srgb(c: f64) -> f64 {
    if c > 0.0031308 {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    } else {
        c * 12.92
    }
}

/// Linear light of every 8-bit sRGB value, computed once.
fn linear_lut() -> &'static [f64; 256] {
    static LUT: OnceLock<[f64; 256]> = OnceLock::new();
    LUT.get_or_init(|| std::array::from_fn(|v| srgb_to_linear(v as f64 / 255.0)))
}

fn lab_f(t: f64) -> f64 {
    if t > 0.008856 {
        t.cbrt()
    } else {
        7.787 * t + 16.0 / 116.0
    }
}

fn lab_f_inv(t: f64) -> f64 {
    if t > 0.2068966 {
        t * t * t
    } else {
        (t - 16.0 / 116.0) / 7.787
    }
}

/// CIE L\*a\*b\* (D65, 2°) of an 8-bit sRGB colour, as `skimage.color.rgb2lab`.
pub fn srgb_to_lab(rgb: [u8; 3]) -> [f64; 3] {
    let lut = linear_lut();
    let lin = rgb.map(|v| lut[v as usize]);
    let xyz: [f64; 3] = std::array::from_fn(|row| {
        let m = XYZ_FROM_RGB[row];
        (m[0] * lin[0] + m[1] * lin[1] + m[2] * lin[2]) / WHITE[row]
    });
    let [fx, fy, fz] = xyz.map(lab_f);
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// The 8-bit sRGB colour of a Lab triple, as `skimage.color.lab2rgb`
/// followed by rounding: a negative `fz` is clamped to 0 (as scikit-image
/// does) and out-of-gamut linear values are clipped to [0, 1] per channel,
/// so every input, even a non-finite one, yields some colour.
pub fn lab_to_srgb(lab: [f64; 3]) -> [u8; 3] {
    let [l, a, b] = lab;
    let fy = (l + 16.0) / 116.0;
    let fx = a / 500.0 + fy;
    let fz = (fy - b / 200.0).max(0.0);
    let f = [fx, fy, fz];
    let xyz: [f64; 3] = std::array::from_fn(|i| lab_f_inv(f[i]) * WHITE[i]);
    std::array::from_fn(|row| {
        let m = RGB_FROM_XYZ[row];
        let lin = m[0] * xyz[0] + m[1] * xyz[1] + m[2] * xyz[2];
        let v = linear_to_srgb(lin).clamp(0.0, 1.0);
        // `as u8` saturates and maps NaN to 0.
        (v * 255.0).round() as u8
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_black_and_grey() {
        let w = srgb_to_lab([255, 255, 255]);
        assert!((w[0] - 100.0).abs() < 1e-3, "{w:?}");
        assert!(w[1].abs() < 1e-2 && w[2].abs() < 1e-2, "{w:?}");
        assert_eq!(srgb_to_lab([0, 0, 0]), [0.0, 0.0, 0.0]);
        // Greys are neutral: a and b vanish up to the matrix's rounding.
        let g = srgb_to_lab([119, 119, 119]);
        assert!((g[0] - 50.0).abs() < 0.1 && g[1].abs() < 0.01 && g[2].abs() < 0.01, "{g:?}");
    }

    #[test]
    fn matrix_inverse_is_exact_enough() {
        for (i, row) in RGB_FROM_XYZ.iter().enumerate() {
            for j in 0..3 {
                let s: f64 = row.iter().zip(&XYZ_FROM_RGB).map(|(r, m)| r * m[j]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((s - want).abs() < 1e-12, "({i},{j}) = {s}");
            }
        }
    }

    #[test]
    fn round_trip_is_exact_on_a_dense_grid() {
        for r in (0..=255u8).step_by(3) {
            for g in (0..=255u8).step_by(3) {
                for b in (0..=255u8).step_by(3) {
                    assert_eq!(lab_to_srgb(srgb_to_lab([r, g, b])), [r, g, b]);
                }
            }
        }
    }

    #[test]
    fn out_of_gamut_and_non_finite_lab_is_clamped() {
        assert_eq!(lab_to_srgb([150.0, 0.0, 0.0]), [255, 255, 255]);
        assert_eq!(lab_to_srgb([-20.0, 0.0, 0.0]), [0, 0, 0]);
        // Far outside the gamut in both chroma directions: still some colour.
        let _ = lab_to_srgb([50.0, -200.0, 300.0]);
        let _ = lab_to_srgb([f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
    }
}
