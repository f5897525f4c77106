//! `chromatica serve`: the original service's HTTP API and a colour-picker
//! web page over a live image index. One file per question:
//!
//! | file | the question it answers |
//! |---|---|
//! | `mod.rs` | What does the command take, and how does the server start and stop? |
//! | `listen.rs` | How are connections accepted (header timeout, bounded connections, graceful shutdown)? |
//! | `routes.rs` | Which URL runs which handler, behind which limits (body size, timeouts, concurrency, CORS)? |
//! | `state.rs` | What do the handlers share (the index, the search pool, the id → location table)? |
//! | `params.rs` | Is this query parameter valid? Every parameter parsed in one place, one-line errors. |
//! | `error.rs` | How does a failure become `{"error": "…"}` with a 4xx status? |
//! | `search.rs` | `/search` and `/search/image`: the original's response shape. |
//! | `upload.rs` | How does an uploaded image reach the decoder (size limit, temporary file), and `/extract_colors`? |
//! | `files.rs` | `/image/{id}`: opening only a recorded file, never a swapped symlink. |
//! | `thumbnail.rs` | `/thumbnail/{id}`: a bounded cache of JPEG thumbnails. |
//! | `indexing.rs` | `POST /index`, `/index/status` and `--watch`: syncs in the background. |
//! | `metrics.rs` | `/health`, `/stats` and `/metrics` (Prometheus text). |
//! | `openapi.rs` | `/openapi.json`: every route and parameter described. |
//! | `page.rs` | `/`: the web page, its assets embedded in the binary (`page/`). |

mod error;
mod files;
mod indexing;
mod listen;
mod metrics;
mod openapi;
mod page;
mod params;
mod routes;
mod search;
mod state;
mod thumbnail;
mod upload;

use chromatica::{Error, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `chromatica serve` was told.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// The image index (created when missing or empty).
    pub dir: PathBuf,
    /// Address to listen on. Anything but loopback prints a warning: the
    /// server has no authentication.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Folders kept in step with the index: synced at start, every
    /// --watch-interval seconds and on `POST /index`. Repeatable.
    #[arg(long, value_name = "FOLDER")]
    pub watch: Vec<PathBuf>,
    /// Seconds between re-syncs of the watched folders (0: only at start
    /// and on `POST /index`).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub watch_interval: u64,
    /// Threads that run searches (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Threads that accept connections and parse requests (default: as
    /// many as --threads).
    #[arg(long, value_name = "N")]
    pub io_threads: Option<usize>,
    /// Threads that decode images during a sync.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub index_threads: usize,
    /// How long a search's exact EMD scan may run, in milliseconds, or
    /// "none". A palette far from every image can cost a scan of every
    /// stored histogram and thousands of exact solves (hundreds of ms on a
    /// 100k index); past the limit the search answers with the best found
    /// so far, solved in increasing lower bound, and `"timed_out": true`.
    #[arg(long, default_value = "20", value_name = "MS|none", value_parser = TimeLimit::parse)]
    pub search_time_limit: TimeLimit,
    /// Requests handled at once; more get 503.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_concurrent: usize,
    /// Largest upload in bytes (default 20 MB).
    #[arg(long, default_value_t = 20_000_000, value_name = "BYTES")]
    pub max_upload: usize,
    /// Refuse images of more pixels than this (header checked before decoding).
    #[arg(long, default_value_t = chromatica::images::DEFAULT_MAX_PIXELS, value_name = "N")]
    pub max_pixels: u64,
    /// Seconds a client has to send the request headers.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub read_timeout: u64,
    /// Seconds a request may take, reading its body included (then 408).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub request_timeout: u64,
    /// Allow cross-origin requests from this origin (none by default).
    #[arg(long, value_name = "ORIGIN")]
    pub cors: Option<String>,
}

/// `--search-time-limit`: milliseconds, or none.
#[derive(Clone, Copy, Debug)]
pub struct TimeLimit(pub Option<std::time::Duration>);

impl TimeLimit {
    fn parse(s: &str) -> std::result::Result<TimeLimit, String> {
        if s == "none" {
            return Ok(TimeLimit(None));
        }
        match s.parse::<u64>() {
            Ok(ms) if ms <= 3_600_000 => Ok(TimeLimit(Some(std::time::Duration::from_millis(ms)))),
            _ => Err(format!("expected milliseconds (0 to 3600000) or none, got {s:?}")),
        }
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> Result<()> {
    if args.threads == Some(0) || args.io_threads == Some(0) || args.index_threads == 0 || args.max_concurrent == 0 {
        return Err(Error::invalid_argument(
            "--threads",
            "--threads, --io-threads, --index-threads and --max-concurrent must be at least 1",
        ));
    }
    if args.read_timeout == 0 || args.request_timeout == 0 {
        return Err(Error::invalid_argument(
            "--read-timeout",
            "--read-timeout and --request-timeout must be at least 1 second",
        ));
    }
    if let Some(origin) = &args.cors {
        if axum::http::HeaderValue::from_str(origin).is_err() || origin.trim().is_empty() {
            return Err(Error::invalid_argument("--cors", format!("--cors {origin:?} is not a usable origin")));
        }
    }
    if !args.bind.ip().is_loopback() {
        eprintln!(
            "warning: listening on {}, reachable from other machines: the server has no authentication",
            args.bind
        );
    }
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.io_threads.unwrap_or(threads))
        .thread_name("serve-io")
        .enable_all()
        .build()
        .map_err(|e| Error::invalid_argument("--threads", format!("cannot start the runtime: {e}")))?;
    let state = state::AppState::open(&args, threads)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .map_err(|e| Error::invalid_argument("--bind", format!("cannot listen on {}: {e}", args.bind)))?;
        let local = listener.local_addr().map_err(|e| Error::invalid_argument("--bind", e.to_string()))?;
        // The test harness and scripts read this line for the port.
        println!("listening on http://{local}");
        indexing::start_watch(&state);
        let app = routes::router(state.clone(), &args);
        listen::serve(listener, app, Duration::from_secs(args.read_timeout)).await;
        state.stop_indexing();
        eprintln!("stopped");
        Ok(())
    })
}
