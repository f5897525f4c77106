//! `GET /search` (colours) and `POST /search/image` (an upload or an indexed
//! image), answering in the original service's shape.

use super::error::{ApiError, ApiResult};
use super::params::{hex_list, Params};
use super::state::Shared;
use super::upload;
use axum::extract::{FromRequest, RawQuery, Request, State};
use axum::Json;
use chromatica::images::{PreparedQuery, Query, SearchOptions, PALETTE_SIZE};
use chromatica::Rerank;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// What a search request asked for besides its query.
struct Ask {
    k: usize,
    fast_mode: bool,
    fuzz: Option<f32>,
}

/// Reads `k`, `fast_mode` and `fuzz` (shared by both routes).
fn ask(p: &Params) -> ApiResult<Ask> {
    let k = p.k()?;
    let fast_mode = p.fast_mode()?;
    // Checked in range there; the library refuses fuzz with fast_mode.
    let fuzz = p.fuzz()?.map(|f| f as f32);
    Ok(Ask { k, fast_mode, fuzz })
}

/// The library options of a request: `fast_mode` is stage 1 only (PQ
/// distances, no re-rank); `fuzz` forgives that much colour distance in
/// the exact EMD re-rank.
fn options(ask: &Ask, st: &Shared) -> SearchOptions {
    let mut o = SearchOptions::default().k(ask.k).colors(PALETTE_SIZE).limits(st.limits).fast(ask.fast_mode);
    o.time_limit = st.time_limit;
    match ask.fuzz {
        Some(f) => o.fuzz(f),
        None => o,
    }
}

/// `GET /search?colors=ea6a81,f6d727&weights=0.49,0.51&k=50&fast_mode=false`.
pub async fn by_colors(State(st): State<Shared>, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    let started = Instant::now();
    let p = Params::parse(raw.as_deref())?;
    let q = p.color_query()?;
    let ask = ask(&p)?;
    let (colors, weights) = hex_list(&q);
    let query = json!({ "colors": colors, "weights": weights, "k": ask.k });
    let limits = st.limits;
    run(&st, ask, query, started, move || Query::Colors(q).prepare(&limits, PALETTE_SIZE).map_err(ApiError::from)).await
}

/// `POST /search/image?id=N` (an indexed image) or with a multipart upload
/// in the field `file`.
pub async fn by_image(State(st): State<Shared>, req: Request) -> ApiResult<Json<Value>> {
    let started = Instant::now();
    let p = Params::parse(req.uri().query())?;
    let ask = ask(&p)?;
    let is_upload =
        req.headers().get(axum::http::header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"multipart/"));
    let prepared = match p.id()? {
        Some(_) if is_upload => return Err(ApiError::bad_request("give ?id= or an upload, not both")),
        Some(id) => {
            st.on_search_pool(move |s| {
                let snap = s.index.index().snapshot();
                let at = s.locate(&snap, id)?;
                // Stored vectors are Hellinger-transformed: squares give
                // back the histogram.
                let mut h = snap.vector(at)?;
                h.iter_mut().for_each(|v| *v *= *v);
                Query::Histogram(h).prepare(&s.limits, PALETTE_SIZE).map_err(ApiError::from)
            })
            .await?
        }
        None => {
            let multipart = axum::extract::Multipart::from_request(req, &()).await.map_err(|e| {
                ApiError::bad_request(format!("give ?id= or a multipart upload in the field file: {}", e.body_text()))
            })?;
            let file = upload::receive(&st, multipart).await?;
            let limits = st.limits;
            tokio::task::spawn_blocking(move || {
                Query::Image(file.path().to_owned())
                    .prepare(&limits, PALETTE_SIZE)
                    .map_err(|e| upload::decode_error(file.path(), e))
            })
            .await
            .map_err(|_| ApiError::internal("the decoder stopped"))??
        }
    };
    let (colors, weights): (Vec<String>, Vec<f64>) = prepared
        .colors
        .iter()
        .map(|c| (c.hex().trim_start_matches('#').to_owned(), super::params::round6(c.share)))
        .unzip();
    let query = json!({ "colors": colors, "weights": weights, "k": ask.k, "image_id": p.id()?.map(|i| i.to_string()) });
    run(&st, ask, query, started, move || Ok(prepared)).await
}

/// Prepares (on the search pool unless already done), searches one
/// snapshot, and shapes the answer.
async fn run(
    st: &Shared,
    ask: Ask,
    query: Value,
    started: Instant,
    prepare: impl FnOnce() -> ApiResult<PreparedQuery> + Send + 'static,
) -> ApiResult<Json<Value>> {
    let options = options(&ask, st);
    let answer = st
        .on_search_pool(move |s| {
            let prepared = prepare()?;
            let t = Instant::now();
            let found = s.index.search_prepared(&prepared, &options)?;
            Ok((found, t.elapsed(), s.index.len()))
        })
        .await?;
    let (found, engine, index_size) = answer;
    let results: Vec<Value> = found
        .hits
        .iter()
        .enumerate()
        .map(|(rank, h)| {
            json!({
                "image_id": h.id.to_string(),
                "rank": rank + 1,
                "distance": h.distance,
                "dominant_colors": h.colors.iter().map(|c| c.hex()).collect::<Vec<_>>(),
                "dominant_shares": h.colors.iter().map(|c| super::params::round6(c.share)).collect::<Vec<_>>(),
                "file_path": h.path.as_ref().map(|p| p.to_string_lossy().into_owned()),
            })
        })
        .collect();
    let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    Ok(Json(json!({
        "query_id": query_id(),
        "query": query,
        "results_count": results.len(),
        "results": results,
        "metadata": {
            // The public API times a search as one step: the PQ scan, its
            // re-rank and the resolution of records and palettes.
            "ann_time_ms": ms(engine),
            "rerank_time_ms": Value::Null,
            "total_time_ms": ms(started.elapsed()),
            "index_size": index_size,
            "rerank": rerank_name(found.rerank),
            "exact": found.exact,
            "nprobe": found.nprobe,
            // Exact transport problems solved, and whether the time limit
            // (`--search-time-limit`) cut the exact EMD scan short.
            "solves": found.solves,
            "timed_out": found.timed_out,
        },
    })))
}

/// The re-rank as the original's API names it ("off" for stage 1 only).
fn rerank_name(r: Rerank) -> &'static str {
    if r == Rerank::Off {
        "off"
    } else {
        r.name()
    }
}

/// A UUID-shaped id unique within the process and across restarts.
fn query_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        t ^ (u64::from(std::process::id()) << 40)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let v = (u128::from(start) << 64) | u128::from(n);
    let h = format!("{v:032x}");
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}
