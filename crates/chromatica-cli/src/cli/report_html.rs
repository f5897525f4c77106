//! `inspect --html`: one self-contained page (inline SVG, no script, nothing
//! fetched) drawn from the library's [`Inspection`] and [`HealthReport`].

use chromatica::{HealthReport, Inspection};
use std::fmt::Write;

const W: f64 = 640.0;
const H: f64 = 220.0;
const PAD: f64 = 40.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn svg_open(title: &str) -> String {
    format!(
        "<figure><figcaption>{}</figcaption><svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\">\
         <rect width=\"{W}\" height=\"{H}\" fill=\"#fafafa\" stroke=\"#ccc\"/>",
        esc(title)
    )
}

fn axis_labels(out: &mut String, x: &str, y: &str, ymax: f64) {
    let _ = write!(
        out,
        "<line x1=\"{PAD}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#333\"/><line x1=\"{PAD}\" y1=\"{t}\" x2=\"{PAD}\" y2=\"{b}\" stroke=\"#333\"/>\
         <text x=\"{cx}\" y=\"{ly}\" font-size=\"11\" text-anchor=\"middle\">{x}</text>\
         <text x=\"4\" y=\"{t2}\" font-size=\"11\">{y}</text><text x=\"4\" y=\"{t3}\" font-size=\"10\">{ymax}</text>",
        b = H - PAD,
        r = W - 10.0,
        t = 10.0,
        cx = W / 2.0,
        ly = H - 8.0,
        t2 = 22.0,
        t3 = 36.0,
        x = esc(x),
        y = esc(y),
        ymax = fmt_num(ymax),
    );
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.abs() >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Sorted list sizes as bars, largest first.
fn list_sizes(h: &HealthReport, imbalance: f64) -> String {
    let mut sizes: Vec<u64> = h.lists.iter().map(|l| l.live).collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let mut s = svg_open(&format!(
        "List sizes, sorted ({} lists; imbalance factor nlist·Σn²/(Σn)² = {imbalance:.3})",
        sizes.len()
    ));
    let max = sizes.first().copied().unwrap_or(0).max(1) as f64;
    let n = sizes.len().max(1) as f64;
    let bw = (W - PAD - 10.0) / n;
    for (i, &v) in sizes.iter().enumerate() {
        let bh = (H - PAD - 40.0) * v as f64 / max;
        let _ = write!(
            s,
            "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{bh:.2}\" fill=\"#3b78c2\"/>",
            PAD + i as f64 * bw,
            H - PAD - bh,
            bw.max(0.5)
        );
    }
    let mean = sizes.iter().sum::<u64>() as f64 / n;
    let my = H - PAD - (H - PAD - 40.0) * mean / max;
    let _ = write!(
        s,
        "<line x1=\"{PAD}\" y1=\"{my:.2}\" x2=\"{}\" y2=\"{my:.2}\" stroke=\"#d33\" stroke-dasharray=\"4 3\"/>\
         <text x=\"{}\" y=\"{:.2}\" font-size=\"10\" fill=\"#d33\" text-anchor=\"end\">mean {mean:.0}</text>",
        W - 10.0,
        W - 12.0,
        my - 3.0
    );
    axis_labels(&mut s, "lists, largest first", "live vectors", max);
    s + "</svg></figure>"
}

/// Segments on a generation axis: stored (blue) and deleted (red) vectors;
/// tombstones as red ticks at their generation.
fn timeline(i: &Inspection) -> String {
    let mut s = svg_open(&format!(
        "Vectors per segment by generation ({} segments, {} tombstones; current generation {})",
        i.segments.len(),
        i.tombstones.len(),
        i.generation
    ));
    let gmax = i.generation.max(1) as f64;
    let vmax = i.segments.iter().map(|s| s.vectors).max().unwrap_or(0).max(1) as f64;
    let x = |g: u64| PAD + 30.0 + (W - PAD - 70.0) * g as f64 / gmax;
    let bw = ((W - PAD - 20.0) / (i.segments.len().max(1) as f64 * 2.0)).clamp(3.0, 40.0);
    for seg in &i.segments {
        let hs = (H - PAD - 40.0) * seg.vectors as f64 / vmax;
        let hd = (H - PAD - 40.0) * seg.deleted as f64 / vmax;
        let _ = write!(
            s,
            "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{bw:.2}\" height=\"{hs:.2}\" fill=\"#3b78c2\"><title>{} generation {}: {} vectors, {} deleted</title></rect>\
             <rect x=\"{:.2}\" y=\"{:.2}\" width=\"{bw:.2}\" height=\"{hd:.2}\" fill=\"#d33\"/>",
            x(seg.generation) - bw / 2.0,
            H - PAD - hs,
            esc(&seg.file),
            seg.generation,
            seg.vectors,
            seg.deleted,
            x(seg.generation) - bw / 2.0,
            H - PAD - hs,
        );
    }
    for t in &i.tombstones {
        let _ = write!(
            s,
            "<line x1=\"{0:.2}\" y1=\"{1}\" x2=\"{0:.2}\" y2=\"{2}\" stroke=\"#d33\" stroke-width=\"2\"><title>{3}: {4} ids</title></line>",
            x(t.generation),
            H - PAD,
            H - PAD + 10.0,
            esc(&t.file),
            t.ids
        );
    }
    axis_labels(&mut s, "manifest generation (blue: stored, red: deleted; red ticks: tombstones)", "vectors", vmax);
    s + "</svg></figure>"
}

/// Horizontal bars: disk bytes by part, and resident heap.
fn bytes(i: &Inspection) -> String {
    let d = &i.disk_bytes;
    let m = &i.memory;
    let rows = [
        ("codes", d.codes),
        ("ids", d.ids),
        ("quantizers", d.quantizers),
        ("refine store", d.refine),
        ("records", d.records),
        ("metadata", d.metadata),
        ("disk total", d.total),
        ("resident heap", m.resident_heap_bytes),
        ("mapped segments", m.mapped_bytes),
    ];
    let mut s = svg_open("Disk and resident bytes by part");
    let max = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1) as f64;
    let rh = (H - 20.0) / rows.len() as f64;
    for (k, (name, v)) in rows.iter().enumerate() {
        let y = 10.0 + k as f64 * rh;
        let w = (W - 260.0) * *v as f64 / max;
        let fill = if k >= 6 { "#6a9f3a" } else { "#3b78c2" };
        let _ = write!(
            s,
            "<text x=\"8\" y=\"{:.2}\" font-size=\"11\">{name}</text><rect x=\"120\" y=\"{y:.2}\" width=\"{w:.2}\" height=\"{:.2}\" fill=\"{fill}\"/>\
             <text x=\"{:.2}\" y=\"{:.2}\" font-size=\"10\">{} B</text>",
            y + rh * 0.7,
            rh * 0.8,
            124.0 + w,
            y + rh * 0.7,
            v
        );
    }
    s + "</svg></figure>"
}

/// Per list: mean reconstruction error of the sample (x) against the
/// squared distance to the nearest other centroid (y).
fn per_list(h: &HealthReport) -> String {
    let pts: Vec<(f64, f64, usize, u64)> = h
        .lists
        .iter()
        .filter_map(|l| Some((l.mean_reconstruction_error?, l.next_centroid_distance? as f64, l.list, l.live)))
        .collect();
    let mut s = svg_open(&format!(
        "Per list: mean reconstruction error of the sample against distance² to the next centroid ({} lists sampled)",
        pts.len()
    ));
    if pts.is_empty() {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"13\" text-anchor=\"middle\">not measured (needs quantizers and a refine store)</text>",
            W / 2.0,
            H / 2.0
        );
        return s + "</svg></figure>";
    }
    let xmax = pts.iter().map(|p| p.0).fold(0.0, f64::max).max(1e-12);
    let ymax = pts.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-12);
    for (x, y, l, n) in &pts {
        let _ = write!(
            s,
            "<circle cx=\"{:.2}\" cy=\"{:.2}\" r=\"3\" fill=\"#3b78c2\" fill-opacity=\"0.6\"><title>list {l}: {n} vectors, error {x:.4}, next centroid {y:.4}</title></circle>",
            PAD + (W - PAD - 20.0) * x / xmax,
            H - PAD - (H - PAD - 20.0) * y / ymax
        );
    }
    axis_labels(&mut s, &format!("mean reconstruction error (max {})", fmt_num(xmax)), "next centroid distance²", ymax);
    s + "</svg></figure>"
}

/// The whole page.
pub fn page(dir: &str, i: &Inspection, h: &HealthReport) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>chromatica inspect {d}</title>\
         <style>body{{font-family:sans-serif;margin:24px;color:#222;background:#fff}}figure{{margin:16px 0}}\
         figcaption{{font-weight:bold;margin-bottom:4px}}td,th{{padding:2px 10px;text-align:left}}\
         .advice{{background:#fff4d6;border-left:4px solid #e0a800;padding:6px 10px;margin:4px 0}}</style></head><body>\
         <h1>Index {d}</h1><p>generation {}, {} live vectors ({}), {} deleted ({:.1}%), \
         dim {}, nlist {}, m {}, nbits {}, nprobe {}</p>",
        i.generation,
        h.vectors,
        esc(&super::inspect::grown(h)),
        h.deleted,
        100.0 * h.deleted_fraction,
        i.config.dim,
        i.config.nlist,
        i.config.m,
        i.config.nbits,
        i.config.nprobe,
        d = esc(dir),
    );
    out.push_str("<h2>Advice</h2>");
    if h.advice.is_empty() {
        out.push_str("<p>None: nothing crosses a threshold.</p>");
    }
    for a in &h.advice {
        let _ = write!(out, "<div class=\"advice\">{}</div>", esc(&a.message));
    }
    out.push_str("<h2>Estimated recall@10</h2><table><tr><th>nprobe</th><th>stage 1</th><th>re-ranked</th></tr>");
    for p in &h.recall {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{:.3}</td><td>{}</td></tr>",
            p.nprobe,
            p.recall_at_10,
            p.reranked_recall_at_10.map_or("-".into(), |v| format!("{v:.3}"))
        );
    }
    let _ = write!(
        out,
        "</table><p>{} stored vectors as queries against exact search over the refine store (the query itself excluded). \
         Sample of {}: reconstruction error {}, coarse error {}, mean ‖x‖² {}.</p>",
        h.recall_queries,
        h.sample,
        h.reconstruction_error.map_or("-".into(), |v| format!("{v:.4}")),
        h.coarse_error.map_or("-".into(), |v| format!("{v:.4}")),
        h.mean_norm.map_or("-".into(), |v| format!("{v:.4}")),
    );
    out.push_str("<h2>Drift since training</h2>");
    match &h.baseline {
        None => {
            let _ = write!(out, "<p>{}.</p>", esc(super::inspect::no_baseline(h)));
        }
        Some(b) => {
            let _ = write!(
                out,
                "<table><tr><th>measure</th><th>now ({} stored vectors)</th><th>at training ({} points)</th><th>now / then</th></tr>",
                h.sample, b.points
            );
            let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.4}"));
            for (what, now, then, growth) in super::inspect::drift_rows(h) {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(what),
                    f(now),
                    f(then),
                    growth.map_or("-".into(), |g| format!("{g:.2}×"))
                );
            }
            out.push_str("</table>");
        }
    }
    out.push_str(&list_sizes(h, i.lists.imbalance));
    out.push_str(&timeline(i));
    out.push_str(&bytes(i));
    out.push_str(&per_list(h));
    out.push_str("</body></html>\n");
    out
}
