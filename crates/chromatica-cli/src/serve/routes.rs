//! Which URL runs which handler, and the limits every request passes:
//! body size, body read timeout, bounded concurrency (503 beyond it),
//! security headers, CORS only when asked, and every error as JSON.

use super::error::ApiError;
use super::state::Shared;
use super::{files, indexing, metrics, openapi, page, search, thumbnail, upload, ServeArgs};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Bytes a multipart body may carry beyond the file itself (boundaries,
/// part headers).
const MULTIPART_OVERHEAD: usize = 64 << 10;

/// The application: routes and layers.
pub fn router(st: Shared, args: &ServeArgs) -> Router {
    let slots = Arc::new(Semaphore::new(args.max_concurrent));
    let mut app = Router::new()
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/style.css", get(page::style))
        .route("/search", get(search::by_colors))
        .route("/search/image", post(search::by_image))
        .route("/extract_colors", post(upload::extract_colors))
        .route("/image/{id}", get(files::image))
        .route("/thumbnail/{id}", get(thumbnail::thumbnail))
        .route("/health", get(metrics::health))
        .route("/stats", get(metrics::stats))
        .route("/metrics", get(metrics::metrics))
        .route("/index", post(indexing::post_index))
        .route("/index/status", get(indexing::status))
        .route("/openapi.json", get(openapi::document))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError {
                status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
                message: "method not allowed on this route".into(),
            }
        })
        .layer(DefaultBodyLimit::max(args.max_upload + MULTIPART_OVERHEAD))
        .layer(from_fn_with_state(Duration::from_secs(args.request_timeout), deadline))
        .layer(from_fn_with_state(args.max_upload + MULTIPART_OVERHEAD, announced_length))
        .layer(from_fn_with_state(slots, limit))
        .layer(from_fn(headers))
        .layer(from_fn(json_errors));
    if let Some(origin) = &args.cors {
        let origin = HeaderValue::from_str(origin).unwrap_or_else(|_| HeaderValue::from_static("null"));
        app = app.layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(origin)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::CONTENT_TYPE]),
        );
    }
    app.layer(from_fn_with_state(st.clone(), metrics::track)).with_state(st)
}

/// A body announced (Content-Length) over the limit is refused before any
/// of it is read.
async fn announced_length(State(max): State<usize>, req: Request, next: Next) -> Response {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return ApiError::too_large(format!("request body over the limit of {max} bytes")).into_response();
    }
    next.run(req).await
}

/// At most `--max-concurrent` requests in handlers; the next gets 503 at once.
async fn limit(State(slots): State<Arc<Semaphore>>, req: Request, next: Next) -> Response {
    match slots.try_acquire() {
        Ok(_permit) => next.run(req).await,
        Err(_) => ApiError::busy("too many requests at once: try again shortly").into_response(),
    }
}

/// A request (reading its body included) that takes longer than
/// `--request-timeout` is answered 408.
async fn deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError {
            status: axum::http::StatusCode::REQUEST_TIMEOUT,
            message: format!("the request took over {} s", limit.as_secs()),
        }
        .into_response(),
    }
}

/// Headers on every answer: no sniffing, no framing, no referrer; the page
/// may load only its own scripts, styles and images.
async fn headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    resp
}

/// Errors made outside the handlers (an unreadable path, a body over the
/// limit, a timed-out body, a wrong content type) come back as
/// `{"error": "…"}` too.
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).into_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let mut fixed = ApiError { status, message: text.split_whitespace().collect::<Vec<_>>().join(" ") }.into_response();
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            fixed.headers_mut().insert(k.clone(), v.clone());
        }
    }
    fixed
}
