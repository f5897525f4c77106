//! Every query parameter, parsed and checked in one place; a bad one is a
//! 400 whose one-line message names it.

use super::error::{ApiError, ApiResult};
use chromatica::color::{to_hex, ColorQuery, MAX_QUERY_COLORS};
use chromatica::images::Query;
use std::collections::HashMap;

/// Results per search unless `k` says otherwise (the original's default).
pub const DEFAULT_K: usize = 50;
/// Most results one search returns (the original's cap).
pub const MAX_K: usize = 200;
/// Largest `fuzz` accepted (ΔE76 units), the library's.
pub const MAX_FUZZ: f64 = chromatica::color::MAX_FUZZ;
/// Thumbnail side unless `size` says otherwise, and its bounds.
pub const DEFAULT_THUMB: u32 = 256;
/// Smallest thumbnail side.
pub const MIN_THUMB: u32 = 16;
/// Largest thumbnail side.
pub const MAX_THUMB: u32 = 1024;
/// Dominant colours `/extract_colors` returns unless told otherwise, and at most.
pub const DEFAULT_NUM_COLORS: usize = 5;
/// Most colours `/extract_colors` returns.
pub const MAX_NUM_COLORS: usize = 10;

/// A query string as name → value (the last of repeated names wins).
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `a=1&b=2` (percent-decoded; `+` is a space).
    pub fn parse(raw: Option<&str>) -> ApiResult<Params> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("unreadable query string: {e}")))?;
        Ok(Params(pairs.into_iter().collect()))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// An integer parameter in `lo..=hi`, `default` when absent.
    fn int(&self, name: &str, default: u64, lo: u64, hi: u64) -> ApiResult<u64> {
        let Some(text) = self.get(name) else { return Ok(default) };
        let v: u64 = text.trim().parse().map_err(|_| {
            ApiError::bad_request(format!("{name} must be a whole number from {lo} to {hi}, not {text:?}"))
        })?;
        if !(lo..=hi).contains(&v) {
            return Err(ApiError::bad_request(format!("{name} must be from {lo} to {hi}, not {v}")));
        }
        Ok(v)
    }

    /// `k` (or the original's alias `n_results`): results wanted.
    pub fn k(&self) -> ApiResult<usize> {
        let name = if self.get("k").is_none() && self.get("n_results").is_some() { "n_results" } else { "k" };
        Ok(self.int(name, DEFAULT_K as u64, 1, MAX_K as u64)? as usize)
    }

    /// `fast_mode`: stage 1 only (PQ distances, no re-rank).
    pub fn fast_mode(&self) -> ApiResult<bool> {
        match self.get("fast_mode").map(|s| s.trim().to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if v == "true" || v == "1" => Ok(true),
            Some(v) if v == "false" || v == "0" => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!("fast_mode must be true or false, not {v:?}"))),
        }
    }

    /// `fuzz`, see [`parse_fuzz`].
    pub fn fuzz(&self) -> ApiResult<Option<f64>> {
        parse_fuzz(self.get("fuzz"))
    }

    /// `id` of an indexed image, if given.
    pub fn id(&self) -> ApiResult<Option<u64>> {
        self.get("id").map(parse_id).transpose()
    }

    /// `size` of a thumbnail (its longer side, pixels).
    pub fn size(&self) -> ApiResult<u32> {
        Ok(self.int("size", DEFAULT_THUMB.into(), MIN_THUMB.into(), MAX_THUMB.into())? as u32)
    }

    /// `num_colors` of `/extract_colors`.
    pub fn num_colors(&self) -> ApiResult<usize> {
        Ok(self.int("num_colors", DEFAULT_NUM_COLORS as u64, 1, MAX_NUM_COLORS as u64)? as usize)
    }

    /// `colors` and `weights`: the colour query (weights default to equal).
    pub fn color_query(&self) -> ApiResult<ColorQuery> {
        let colors =
            self.get("colors").ok_or_else(|| ApiError::bad_request("colors is required, like colors=ea6a81,f6d727"))?;
        parse_colors(colors, self.get("weights"))
    }
}

/// `fuzz`: how far (ΔE76, CIE Lab) each query colour may spread, a finite
/// number from 0 to [`MAX_FUZZ`]; absent is `None` (no spreading). Kept in
/// f64 so that a tiny positive value is not rounded to an f32 0.
pub fn parse_fuzz(raw: Option<&str>) -> ApiResult<Option<f64>> {
    let Some(text) = raw else { return Ok(None) };
    let bad = || {
        let shown: String = text.chars().take(40).collect();
        ApiError::bad_request(format!("fuzz must be a number from 0 to {MAX_FUZZ} (ΔE), not {shown:?}"))
    };
    // Checked in f64, so that -1e-300 is negative, not an f32 -0.
    let v: f64 = text.trim().parse().map_err(|_| bad())?;
    if !v.is_finite() || !(0.0..=MAX_FUZZ).contains(&v) {
        return Err(bad());
    }
    Ok(Some(v))
}

/// An image id in a path or query: a decimal u64.
pub fn parse_id(text: &str) -> ApiResult<u64> {
    text.parse().map_err(|_| {
        let shown: String = text.chars().take(40).collect();
        ApiError::bad_request(format!("image id must be a whole number, not {shown:?}"))
    })
}

/// `colors=ea6a81,f6d727` with `weights=0.49,0.51` (positive, as many as
/// the colours; normalised to sum to 1) or without (equal shares). Hex
/// colours of 3 or 6 digits, `#` optional; the library's parser has the
/// last word.
pub fn parse_colors(colors: &str, weights: Option<&str>) -> ApiResult<ColorQuery> {
    let hexes: Vec<&str> = colors.split(',').map(str::trim).collect();
    if hexes.len() > MAX_QUERY_COLORS {
        return Err(ApiError::bad_request(format!("at most {MAX_QUERY_COLORS} colours, not {}", hexes.len())));
    }
    if let Some(bad) = hexes.iter().find(|h| h.contains(':')) {
        return Err(ApiError::bad_request(format!("colour {bad:?} has a ':': give shares in weights=")));
    }
    let spec = match weights {
        None => hexes.join(","),
        Some(w) => {
            let ws: Vec<&str> = w.split(',').map(str::trim).collect();
            if ws.len() != hexes.len() {
                return Err(ApiError::bad_request(format!(
                    "{} colours but {} weights: give one weight per colour",
                    hexes.len(),
                    ws.len()
                )));
            }
            for w in &ws {
                match w.parse::<f64>() {
                    Ok(v) if v.is_finite() && v > 0.0 => {}
                    _ => {
                        let shown: String = w.chars().take(40).collect();
                        return Err(ApiError::bad_request(format!("weight {shown:?} must be a positive number")));
                    }
                }
            }
            hexes.iter().zip(&ws).map(|(h, w)| format!("{h}:{w}")).collect::<Vec<_>>().join(",")
        }
    };
    match Query::colors(&spec)? {
        Query::Colors(q) => Ok(q),
        _ => Err(ApiError::internal("a colour query parsed as something else")),
    }
}

/// The query's colours as the response shows them: `rrggbb`, no `#`.
pub fn hex_list(q: &ColorQuery) -> (Vec<String>, Vec<f64>) {
    q.colors.iter().map(|(rgb, w)| (to_hex(*rgb).trim_start_matches('#').to_owned(), round6(f64::from(*w)))).unzip()
}

/// A share shown to six decimals (an f32 widened shows noise digits).
pub fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_is_checked_in_one_place() {
        assert_eq!(parse_fuzz(None).unwrap(), None);
        assert_eq!(parse_fuzz(Some("2.5")).unwrap(), Some(2.5));
        assert_eq!(parse_fuzz(Some("0")).unwrap(), Some(0.0));
        for bad in ["-1", "101", "nan", "inf", "x", "", "-2.2e-308"] {
            let e = parse_fuzz(Some(bad)).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
            assert!(e.message.starts_with("fuzz must be"), "{}", e.message);
        }
    }

    #[test]
    fn colours_and_weights() {
        let q = parse_colors("ea6a81,#F6D727", Some("1,3")).unwrap();
        assert_eq!(hex_list(&q), (vec!["ea6a81".to_owned(), "f6d727".to_owned()], vec![0.25, 0.75]));
        let q = parse_colors("f0c", None).unwrap();
        assert_eq!(hex_list(&q).0, vec!["ff00cc".to_owned()]);
        for (c, w) in
            [("ea6a81", Some("1,2")), ("zzzzzz", None), ("ea6a81", Some("0")), ("ea6a81", Some("-1")), ("", None)]
        {
            assert_eq!(parse_colors(c, w).unwrap_err().status, 400, "{c} {w:?}");
        }
    }
}
