//! Syncs of the watched folders in the background: at start, every
//! `--watch-interval` seconds, and on `POST /index`; one at a time, on the
//! sync's own threads, so searches (each on its own snapshot) never wait
//! for them. A read-only server refreshes its handle instead.

use super::error::{ApiError, ApiResult};
use super::state::{AppState, Shared};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chromatica::images::{SyncEvent, SyncOptions, SyncSummary};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Failures listed in `/index/status` at most (all are counted).
const LISTED_FAILURES: usize = 20;

/// What the background sync is doing and last did.
#[derive(Default)]
pub struct SyncState {
    running: AtomicBool,
    stopping: AtomicBool,
    runs: AtomicU64,
    to_decode: AtomicUsize,
    decoded: AtomicUsize,
    last: Mutex<Option<Value>>,
}

fn summary_json(s: &SyncSummary) -> Value {
    json!({
        "added": s.added,
        "updated": s.updated,
        "unchanged": s.unchanged,
        "removed": s.removed.len(),
        "failed": s.failed.len(),
        "failures": s.failed.iter().take(LISTED_FAILURES).map(|p| p.to_string()).collect::<Vec<_>>(),
        "warnings": s.warnings.iter().take(LISTED_FAILURES).map(|p| p.to_string()).collect::<Vec<_>>(),
        "trained_now": s.trained_now,
        "seconds": s.seconds,
        "images_per_second": s.images_per_second,
    })
}

/// Starts a sync of the watched folders unless one is running; whether it started.
pub fn start_sync(st: &Shared) -> bool {
    let sync = &st.sync;
    if st.watch.is_empty() || !st.writable || sync.stopping.load(Ordering::SeqCst) {
        return false;
    }
    if sync.running.swap(true, Ordering::SeqCst) {
        return false;
    }
    sync.to_decode.store(0, Ordering::SeqCst);
    sync.decoded.store(0, Ordering::SeqCst);
    let st = st.clone();
    let spawned = std::thread::Builder::new().name("serve-sync".into()).spawn(move || {
        let options = SyncOptions::default().follow_links(false).limits(st.limits);
        let progress = |e: SyncEvent<'_>| match e {
            SyncEvent::Planned { to_decode } => st.sync.to_decode.store(to_decode, Ordering::Relaxed),
            SyncEvent::Decoded => {
                st.sync.decoded.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        };
        let outcome = st.index_pool.install(|| st.index.sync(&st.watch, &options, &progress));
        let report = match outcome {
            Ok(s) => json!({ "ok": true, "summary": summary_json(&s) }),
            Err(e) => {
                eprintln!("warning: sync failed: {}", crate::cli::safe(&e.to_string()));
                json!({ "ok": false, "error": e.to_string() })
            }
        };
        *st.sync.last.lock().expect("no panic holds this lock") = Some(report);
        st.sync.runs.fetch_add(1, Ordering::SeqCst);
        st.sync.running.store(false, Ordering::SeqCst);
    });
    if spawned.is_err() {
        sync.running.store(false, Ordering::SeqCst);
        return false;
    }
    true
}

impl AppState {
    /// Whether a sync is running now.
    pub fn sync_running(&self) -> bool {
        self.sync.running.load(Ordering::SeqCst)
    }

    /// No sync starts after this (one running finishes its commit; every
    /// commit is atomic, so exiting mid-sync loses nothing committed).
    pub fn stop_indexing(&self) {
        self.sync.stopping.store(true, Ordering::SeqCst);
    }
}

/// The background loop: syncs the watched folders (a writable server) or
/// refreshes the handle to see another writer's commits (a read-only one).
pub fn start_watch(st: &Shared) {
    let st = st.clone();
    tokio::spawn(async move {
        if st.writable {
            if st.watch.is_empty() {
                return;
            }
            loop {
                start_sync(&st);
                if st.watch_interval == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(st.watch_interval)).await;
            }
        } else {
            loop {
                tokio::time::sleep(Duration::from_secs(st.watch_interval.clamp(1, 5))).await;
                let s2 = st.clone();
                let r = tokio::task::spawn_blocking(move || s2.index.index().refresh()).await;
                if let Ok(Err(e)) = r {
                    eprintln!("warning: cannot refresh the index: {}", crate::cli::safe(&e.to_string()));
                }
            }
        }
    });
}

fn status_json(st: &AppState) -> Value {
    let s = &st.sync;
    json!({
        "running": s.running.load(Ordering::SeqCst),
        "runs": s.runs.load(Ordering::SeqCst),
        "watched": st.watch.iter().map(|p| p.to_string_lossy().into_owned()).collect::<Vec<_>>(),
        "writable": st.writable,
        "progress": { "to_decode": s.to_decode.load(Ordering::Relaxed), "decoded": s.decoded.load(Ordering::Relaxed) },
        "last": s.last.lock().expect("no panic holds this lock").clone(),
        "index_size": st.index.len(),
    })
}

/// `POST /index`: starts a sync (202), or says one is running (202,
/// `started: false`).
pub async fn post_index(State(st): State<Shared>) -> ApiResult<(StatusCode, Json<Value>)> {
    if !st.writable {
        return Err(ApiError::conflict("another process holds the index's writer lock: this server only reads"));
    }
    if st.watch.is_empty() {
        return Err(ApiError::bad_request("no folders to index: start the server with --watch FOLDER"));
    }
    let started = start_sync(&st);
    let mut body = status_json(&st);
    body["started"] = json!(started);
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// `GET /index/status`.
pub async fn status(State(st): State<Shared>) -> Json<Value> {
    Json(status_json(&st))
}
