//! `/health`, `/stats` (the inspect JSON and memory report) and `/metrics`
//! (Prometheus text: requests and latency histograms by route, index
//! vectors, segments, bytes), and the counting behind them.

use super::state::Shared;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Requests by (route, status) and latency by route.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

impl Metrics {
    fn record(&self, route: &str, status: u16, seconds: f64) {
        *self.requests.lock().expect("no panic holds this lock").entry((route.to_owned(), status)).or_default() += 1;
        let mut l = self.latency.lock().expect("no panic holds this lock");
        let h = l.entry(route.to_owned()).or_default();
        for (c, &b) in h.counts.iter_mut().zip(&BUCKETS) {
            if seconds <= b {
                *c += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }
}

/// Middleware: counts every request under its route pattern (never the raw
/// path, so the label set stays bounded).
pub async fn track(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let t = Instant::now();
    let resp = next.run(req).await;
    st.metrics.record(&route, resp.status().as_u16(), t.elapsed().as_secs_f64());
    resp
}

/// `GET /health`.
pub async fn health(State(st): State<Shared>) -> Json<Value> {
    let snap = st.index.index().snapshot();
    Json(json!({
        "status": "healthy",
        "index_size": snap.vectors(),
        "trained": st.index.index().is_trained(),
        "generation": snap.generation(),
        "writable": st.writable,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// `GET /stats`: `chromatica inspect --json`, with the memory report, the
/// server's settings and its caches.
pub async fn stats(State(st): State<Shared>) -> Json<Value> {
    let st2 = st.clone();
    let inspection = tokio::task::spawn_blocking(move || st2.index.index().inspect()).await.ok();
    let (thumbs, thumb_bytes) = st.thumbs.usage();
    Json(json!({
        "index": inspection.map(|i| serde_json::to_value(&i).unwrap_or(Value::Null)),
        "server": {
            "uptime_seconds": st.started.elapsed().as_secs_f64(),
            "search_threads": st.search_threads,
            "max_upload_bytes": st.max_upload,
            "max_pixels": st.limits.max_pixels,
            "thumbnails_cached": thumbs,
            "thumbnail_cache_bytes": thumb_bytes,
            "resident_bytes": resident_bytes(),
        },
    }))
}

/// This process's resident set (Linux), for `/stats` and `/metrics`.
pub fn resident_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// `GET /metrics`.
pub async fn metrics(State(st): State<Shared>) -> impl IntoResponse {
    let mut out = String::new();
    out.push_str("# HELP chromatica_http_requests_total Requests answered, by route and status.\n");
    out.push_str("# TYPE chromatica_http_requests_total counter\n");
    for ((route, status), n) in st.metrics.requests.lock().expect("no panic holds this lock").iter() {
        let _ = writeln!(out, "chromatica_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}", label(route));
    }
    out.push_str("# HELP chromatica_http_request_duration_seconds Time to answer, by route.\n");
    out.push_str("# TYPE chromatica_http_request_duration_seconds histogram\n");
    let latency = st.metrics.latency.lock().expect("no panic holds this lock").clone();
    for (route, h) in &latency {
        let r = label(route);
        for (c, b) in h.counts.iter().zip(BUCKETS) {
            let _ = writeln!(out, "chromatica_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {c}");
        }
        let _ =
            writeln!(out, "chromatica_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "chromatica_http_request_duration_seconds_sum{{route=\"{r}\"}} {}", h.sum);
        let _ = writeln!(out, "chromatica_http_request_duration_seconds_count{{route=\"{r}\"}} {}", h.count);
    }
    let snap = st.index.index().snapshot();
    let st2 = st.clone();
    let disk = tokio::task::spawn_blocking(move || st2.index.index().memory_estimate().disk_bytes).await.unwrap_or(0);
    let gauges: [(&str, &str, u64); 5] = [
        ("chromatica_index_vectors", "Live vectors (images) in the index.", snap.vectors()),
        ("chromatica_index_segments", "Segment files of the current state.", snap.segment_count() as u64),
        ("chromatica_index_generation", "Manifest generation of the current state.", snap.generation()),
        ("chromatica_index_disk_bytes", "Bytes of the index's files on disk.", disk),
        ("chromatica_process_resident_bytes", "Resident memory of the server.", resident_bytes().unwrap_or(0)),
    ];
    for (name, help, v) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
    let running = u64::from(st.sync_running());
    let _ = writeln!(out, "# HELP chromatica_sync_running Whether a sync is running.\n# TYPE chromatica_sync_running gauge\nchromatica_sync_running {running}");
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out)
}

/// A Prometheus label value, escaped.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
