//! Colour queries: `"ea6a81:0.49,f6d727:0.51"` and the histogram searched for.

use super::histogram::{l1_normalised, soft_assign, HIST_DIM};
use super::lab::srgb_to_lab;
use crate::error::{Error, Result};

/// Default exponent of [`query_histogram`]'s sharpening.
pub const DEFAULT_SHARPEN: f32 = 2.2;

/// Most colours one query may name.
pub const MAX_QUERY_COLORS: usize = 16;

/// Colours wanted in an image, each with its share; from
/// [`parse_color_query`] the shares are non-negative and sum to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct ColorQuery {
    /// Each colour as sRGB bytes with its share.
    pub colors: Vec<([u8; 3], f32)>,
}

fn invalid(msg: String) -> Error {
    Error::InvalidInput(msg)
}

/// `rrggbb` or `rgb` (each digit doubled), case-insensitive, optional `#`.
fn parse_hex(entry: &str, hex: &str) -> Result<[u8; 3]> {
    let digits = hex.strip_prefix('#').unwrap_or(hex);
    let bad =
        || invalid(format!("bad colour {entry:?} in colour query: expected 3 or 6 hex digits, like ea6a81 or #f0c"));
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let nibble = |i: usize| u8::from_str_radix(&digits[i..i + 1], 16).expect("checked hex digit");
    match digits.len() {
        3 => Ok(std::array::from_fn(|i| nibble(i) * 17)),
        6 => Ok(std::array::from_fn(|i| nibble(2 * i) * 16 + nibble(2 * i + 1))),
        _ => Err(bad()),
    }
}

fn parse_weight(entry: &str, text: &str) -> Result<f64> {
    let w: f64 =
        text.parse().map_err(|_| invalid(format!("weight {text:?} of {entry:?} in colour query is not a number")))?;
    if !w.is_finite() {
        return Err(invalid(format!("weight of {entry:?} in colour query is not finite")));
    }
    if w < 0.0 {
        return Err(invalid(format!("weight of {entry:?} in colour query is negative")));
    }
    Ok(w)
}

/// Parses a colour query: comma-separated entries, each a 3- or 6-digit hex
/// colour (case-insensitive, optional leading `#`) with an optional
/// `:weight`; whitespace around entries, colours and weights is ignored.
/// Either every entry has a weight or none has (then all are equal); the
/// weights are non-negative, finite, not all zero, and are normalised to sum
/// to 1. At most [`MAX_QUERY_COLORS`] entries. A colour may repeat.
///
/// ```
/// let q = chromatica::color::parse_color_query("ea6a81:0.49, #F6D727:0.51").unwrap();
/// assert_eq!(q.colors[1].0, [0xf6, 0xd7, 0x27]);
/// ```
pub fn parse_color_query(spec: &str) -> Result<ColorQuery> {
    if spec.trim().is_empty() {
        return Err(invalid("empty colour query: give colours like ea6a81:0.5,f6d727:0.5".into()));
    }
    let entries: Vec<&str> = spec.split(',').map(str::trim).collect();
    if entries.len() > MAX_QUERY_COLORS {
        return Err(invalid(format!(
            "colour query has {} colours, at most {MAX_QUERY_COLORS} are allowed",
            entries.len()
        )));
    }
    let mut parsed = Vec::with_capacity(entries.len());
    for (k, &entry) in entries.iter().enumerate() {
        if entry.is_empty() {
            return Err(invalid(format!("colour query has an empty entry (number {})", k + 1)));
        }
        let (hex, weight) = match entry.split_once(':') {
            Some((hex, w)) => (hex.trim(), Some(parse_weight(entry, w.trim())?)),
            None => (entry, None),
        };
        parsed.push((parse_hex(entry, hex)?, weight));
    }
    let weighted = parsed.iter().filter(|(_, w)| w.is_some()).count();
    if weighted != 0 && weighted != parsed.len() {
        return Err(invalid("colour query gives weights for some colours but not all: give all or none".into()));
    }
    let weights: Vec<f64> = parsed.iter().map(|(_, w)| w.unwrap_or(1.0)).collect();
    let total: f64 = weights.iter().sum();
    if !total.is_finite() {
        return Err(invalid("colour query weights are too large to add up".into()));
    }
    if total <= 0.0 {
        return Err(invalid("colour query weights sum to zero".into()));
    }
    let colors = parsed.iter().zip(&weights).map(|((rgb, _), &w)| (*rgb, (w / total) as f32)).collect();
    Ok(ColorQuery { colors })
}

/// ΔE around an excluded colour that counts as that colour unless told
/// otherwise (see [`Excluded`]).
pub const DEFAULT_EXCLUDE_RADIUS: f32 = 20.0;

/// Share of an image within the radius of an excluded colour above which
/// it drops out, unless told otherwise (see [`Excluded`]).
pub const DEFAULT_EXCLUDE_SHARE: f32 = 0.05;

/// A colour the results must not hold much of ("not red"): an image with
/// more than `max_share` of its colour distribution within `radius` ΔE76 of
/// `rgb` drops out of the results.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Excluded {
    /// The colour, as sRGB bytes.
    pub rgb: [u8; 3],
    /// Largest share (0 ≤ share < 1) of an image within `radius` that it
    /// may hold and stay in the results.
    pub max_share: f32,
    /// ΔE76 around the colour (> 0, at most 100) that counts as it.
    pub radius: f32,
}

impl Excluded {
    /// Checks the share and radius; the error is one line.
    pub fn validate(&self) -> Result<()> {
        if !(self.max_share.is_finite() && (0.0..1.0).contains(&self.max_share)) {
            return Err(invalid(format!(
                "excluded colour {}: its share must be at least 0 and below 1, got {}",
                super::palette::to_hex(self.rgb),
                self.max_share
            )));
        }
        if !(self.radius.is_finite() && self.radius > 0.0 && self.radius <= 100.0) {
            return Err(invalid(format!(
                "excluded colour {}: its radius must be above 0 and at most 100 ΔE, got {}",
                super::palette::to_hex(self.rgb),
                self.radius
            )));
        }
        Ok(())
    }

    /// Per bin of the histogram, whether its centre lies within the radius.
    #[cfg_attr(not(feature = "images"), allow(dead_code))]
    pub(crate) fn mask(&self) -> Vec<bool> {
        let lab = srgb_to_lab(self.rgb);
        super::histogram::bin_centers_lab()
            .iter()
            .map(|c| ((0..3).map(|d| (c[d] - lab[d]).powi(2)).sum::<f64>()).sqrt() <= f64::from(self.radius))
            .collect()
    }
}

/// Parses excluded colours: comma-separated entries, each a hex colour (as
/// in [`parse_color_query`]) with an optional `:max_share` (default
/// [`DEFAULT_EXCLUDE_SHARE`]), all within `radius` ΔE. At most
/// [`MAX_QUERY_COLORS`] entries.
///
/// ```
/// let x = chromatica::color::parse_excluded("ff0000, 00f:0.2", 15.0).unwrap();
/// assert_eq!(x[1].rgb, [0, 0, 255]);
/// assert_eq!(x[1].max_share, 0.2);
/// ```
pub fn parse_excluded(spec: &str, radius: f32) -> Result<Vec<Excluded>> {
    if spec.trim().is_empty() {
        return Err(invalid("empty excluded colours: give colours like ff0000 or ff0000:0.1".into()));
    }
    let entries: Vec<&str> = spec.split(',').map(str::trim).collect();
    if entries.len() > MAX_QUERY_COLORS {
        return Err(invalid(format!("{} excluded colours, at most {MAX_QUERY_COLORS} are allowed", entries.len())));
    }
    let mut out = Vec::with_capacity(entries.len());
    for (k, &entry) in entries.iter().enumerate() {
        if entry.is_empty() {
            return Err(invalid(format!("excluded colours have an empty entry (number {})", k + 1)));
        }
        let (hex, share) = match entry.split_once(':') {
            Some((hex, s)) => {
                let s: f32 = s.trim().parse().map_err(|_| {
                    invalid(format!("share {:?} of excluded colour {entry:?} is not a number", s.trim()))
                })?;
                (hex.trim(), s)
            }
            None => (entry, DEFAULT_EXCLUDE_SHARE),
        };
        let x = Excluded { rgb: parse_hex(entry, hex)?, max_share: share, radius };
        x.validate()?;
        out.push(x);
    }
    Ok(out)
}

/// The histogram a query searches for (not yet Hellinger-transformed): each
/// colour is soft-assigned like a pixel, its bins raised to `exponent`
/// ([`DEFAULT_SHARPEN`] by default) and renormalised to the colour's weight;
/// the colours are then summed, so every colour keeps its share. An exponent above 1 concentrates the mass on the
/// bins nearest the colours, below 1 spreads it. An exponent that is not
/// finite and positive is taken as 1 (no sharpening). Colours with a
/// weight that is not finite and positive are skipped; a query with none
/// left gives all zeros.
pub fn query_histogram(q: &ColorQuery, exponent: f32) -> Vec<f32> {
    let exponent = if exponent.is_finite() && exponent > 0.0 { f64::from(exponent) } else { 1.0 };
    let mut hist = [0.0f64; HIST_DIM];
    // Each colour is sharpened on its own and keeps its weight: sharpening
    // the sum would favour a colour that falls near a bin centre (one heavy
    // bin) over one spread across eight bins.
    for &(rgb, w) in &q.colors {
        if w.is_finite() && w > 0.0 {
            let mut one = [0.0f64; HIST_DIM];
            soft_assign(&mut one, srgb_to_lab(rgb), 1.0);
            // Scale first so that large exponents cannot underflow.
            let max = one.iter().copied().fold(0.0, f64::max);
            for v in one.iter_mut() {
                *v = (*v / max).powf(exponent);
            }
            let sum: f64 = one.iter().sum();
            for (h, v) in hist.iter_mut().zip(one) {
                *h += f64::from(w) * v / sum;
            }
        }
    }
    l1_normalised(&hist)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharpening_keeps_each_colours_weight() {
        // Red sits near bin centres differently from blue; equal weights
        // must stay equal after sharpening.
        let q = parse_color_query("e6194b,4363d8").unwrap();
        let h = query_histogram(&q, DEFAULT_SHARPEN);
        let red = query_histogram(&parse_color_query("e6194b").unwrap(), DEFAULT_SHARPEN);
        let red_share: f32 = h.iter().zip(&red).filter(|(_, r)| **r > 0.0).map(|(v, _)| v).sum();
        assert!((red_share - 0.5).abs() < 0.05, "red keeps half the mass, got {red_share}");
    }

    #[test]
    fn hex_forms() {
        assert_eq!(parse_hex("e", "ea6A81").unwrap(), [0xea, 0x6a, 0x81]);
        assert_eq!(parse_hex("e", "#f0C").unwrap(), [0xff, 0x00, 0xcc]);
        for bad in ["", "#", "ff", "ffff", "fffff", "fffffff", "gg0000", "##fff", "+ff", "ff ff"] {
            assert!(parse_hex("e", bad).is_err(), "{bad:?}");
        }
        // Non-ASCII must not panic on slicing.
        assert!(parse_hex("e", "éa6").is_err());
        assert!(parse_hex("e", "a€").is_err());
    }

    #[test]
    fn weights() {
        assert_eq!(parse_weight("e", "0.25").unwrap(), 0.25);
        assert_eq!(parse_weight("e", "0").unwrap(), 0.0);
        assert!(parse_weight("e", "").is_err());
        assert!(parse_weight("e", "x").is_err());
        assert!(parse_weight("e", "-1").is_err());
        assert!(parse_weight("e", "inf").is_err());
        assert!(parse_weight("e", "NaN").is_err());
    }

    #[test]
    fn huge_weights_cannot_overflow_the_sum() {
        let e = parse_color_query("fff:1e308,000:1e308").unwrap_err().to_string();
        assert!(e.contains("too large"), "{e}");
    }

    #[test]
    fn zero_weight_colour_contributes_nothing() {
        let q = parse_color_query("ff0000:1,0000ff:0").unwrap();
        let h = query_histogram(&q, 1.0);
        let red = query_histogram(&parse_color_query("ff0000").unwrap(), 1.0);
        assert_eq!(h, red);
    }

    #[test]
    fn bad_exponent_means_no_sharpening() {
        let q = parse_color_query("ea6a81:0.3,f6d727:0.7").unwrap();
        let plain = query_histogram(&q, 1.0);
        for e in [0.0, -2.0, f32::NAN, f32::INFINITY] {
            assert_eq!(query_histogram(&q, e), plain, "{e}");
        }
    }

    #[test]
    fn large_exponent_keeps_the_heaviest_bin() {
        let q = parse_color_query("ea6a81:0.3,f6d727:0.7").unwrap();
        let h = query_histogram(&q, 1000.0);
        let s: f32 = h.iter().sum();
        assert!((s - 1.0).abs() < 1e-5, "{s}");
        assert!(h.iter().all(|v| v.is_finite()));
    }
}
