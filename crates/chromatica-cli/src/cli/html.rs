//! `search --html`: a self-contained contact sheet. The query's palette,
//! then a grid of results, each with its thumbnail embedded as a `data:` URI
//! (PNG, at most 256 px), its palette, rank, distance and path.

use chromatica::color::{load_image_with, to_hex, ImageLimits};
use chromatica::{Error, Result};
use rayon::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Longest side of an embedded thumbnail.
pub const THUMB_SIDE: u32 = 256;

/// One result on the sheet.
pub struct SheetEntry {
    pub rank: usize,
    pub id: u64,
    pub distance: f32,
    pub path: Option<PathBuf>,
    pub palette: Vec<[u8; 3]>,
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Text made safe for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A PNG thumbnail of an image file as a `data:` URI. The file is read
/// as an index image is (regular files only, under `limits`), so a path
/// replaced by a FIFO or a bomb since it was indexed cannot hang or exhaust
/// the sheet.
pub fn thumbnail_uri(path: &Path, limits: &ImageLimits) -> Result<String> {
    let img = load_image_with(path, limits, THUMB_SIDE)?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::bad_file(path, format!("cannot encode thumbnail: {e}")))?;
    Ok(format!("data:image/png;base64,{}", base64(&png)))
}

fn palette_html(palette: &[[u8; 3]]) -> String {
    let mut s = String::from("<div class=\"palette\">");
    for &c in palette {
        let hex = to_hex(c);
        let _ = write!(s, "<span class=\"sw\" style=\"background:{hex}\" title=\"{hex}\"></span><code>{hex}</code>");
    }
    s.push_str("</div>");
    s
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}\
h1{font-size:1.3em}\
.palette{display:flex;flex-wrap:wrap;align-items:center;gap:.25em .5em;margin:.4em 0}\
.sw{display:inline-block;width:1.6em;height:1.6em;border:1px solid #0003;border-radius:3px}\
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:1em}\
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em}\
.card img{display:block;max-width:256px;max-height:256px;margin:0 auto .4em}\
.path{font-size:.8em;word-break:break-all;color:#555}\
.missing{padding:2em 0;text-align:center;color:#a00;font-size:.85em}\
code{font-size:.8em}";

/// The whole page.
pub fn render(
    title: &str,
    query_image: Option<&Path>,
    query_palette: &[[u8; 3]],
    entries: &[SheetEntry],
    limits: &ImageLimits,
) -> String {
    let thumbs: Vec<Option<Result<String>>> =
        entries.par_iter().map(|e| e.path.as_deref().map(|p| thumbnail_uri(p, limits))).collect();
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Chromatica: {t}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<h1>Chromatica search: {t}</h1>\n",
        t = escape(title)
    );
    s.push_str("<section class=\"query\"><h2>Query palette</h2>\n");
    if let Some(img) = query_image {
        if let Ok(uri) = thumbnail_uri(img, limits) {
            let _ = writeln!(s, "<img src=\"{uri}\" alt=\"query image\" style=\"max-width:256px\">");
        }
    }
    s.push_str(&palette_html(query_palette));
    let _ = writeln!(s, "</section>\n<h2>{} results</h2>\n<div class=\"grid\">", entries.len());
    for (e, thumb) in entries.iter().zip(thumbs) {
        s.push_str("<div class=\"card\">");
        match thumb {
            Some(Ok(uri)) => {
                let alt = escape(&e.path.as_deref().map(|p| p.to_string_lossy()).unwrap_or_default());
                let _ = write!(s, "<img src=\"{uri}\" alt=\"{alt}\">");
            }
            Some(Err(err)) => {
                let _ = write!(s, "<div class=\"missing\">{}</div>", escape(&err.to_string()));
            }
            None => s.push_str("<div class=\"missing\">no record of the file</div>"),
        }
        let _ = write!(s, "<div><b>#{}</b> distance {:.4} <code>id {}</code></div>", e.rank, e.distance, e.id);
        s.push_str(&palette_html(&e.palette));
        if let Some(p) = &e.path {
            let _ = write!(s, "<div class=\"path\">{}</div>", escape(&p.to_string_lossy()));
        }
        s.push_str("</div>\n");
    }
    s.push_str("</div>\n</body>\n</html>\n");
    s
}

pub fn write_contact_sheet(
    out: &Path,
    title: &str,
    query_image: Option<&Path>,
    query_palette: &[[u8; 3]],
    entries: &[SheetEntry],
    limits: &ImageLimits,
) -> Result<()> {
    chromatica::write_atomic_bytes(out, render(title, query_image, query_palette, entries, limits).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
        for (plain, want) in cases {
            assert_eq!(base64(plain.as_bytes()), want);
        }
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    }
}
