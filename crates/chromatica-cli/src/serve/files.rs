//! `GET /image/{id}`: the original file of an indexed image. Nothing from
//! the request reaches the file system but a number: the path is the one
//! recorded in the index, opened without following a link at its last
//! component (`O_NOFOLLOW`), and the open file must be the one indexed —
//! a regular file of the recorded size and mtime whose real path (from
//! `/proc/self/fd`) is the recorded, canonical path, so a symbolic link
//! swapped in anywhere along the path after indexing is refused.

use super::error::{ApiError, ApiResult};
use super::params::parse_id;
use super::state::Shared;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chromatica::Record;
use std::fs::File;

/// The recorded file of image `id`, opened and checked (see the module
/// documentation), with its record.
pub fn open_recorded(st: &Shared, id: u64) -> ApiResult<(File, Record)> {
    let snap = st.index.index().snapshot();
    let at = st.locate(&snap, id)?;
    let rec = snap
        .record(at)?
        .ok_or_else(|| ApiError::not_found(format!("image {id} has no file (it was added as a bare vector)")))?;
    let gone = |why: &str| ApiError::not_found(format!("the file of image {id} is not available: {why}"));
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // No link followed at the last component; a FIFO does not block.
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(&rec.path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            gone("it is now a symbolic link")
        } else {
            gone(&e.kind().to_string())
        }
    })?;
    let meta = file.metadata().map_err(|e| gone(&e.kind().to_string()))?;
    if !meta.is_file() {
        return Err(gone("it is no longer a regular file"));
    }
    if !rec.matches(&meta) {
        return Err(gone("it changed since it was indexed"));
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(|e| gone(&e.kind().to_string()))?;
        if real != rec.path {
            return Err(gone("its path now leads through a symbolic link"));
        }
    }
    Ok((file, rec))
}

/// The content type for a recorded file, by its extension.
fn content_type(rec: &Record) -> &'static str {
    let ext = rec.path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("bmp") => "image/bmp",
        Some("tif" | "tiff") => "image/tiff",
        _ => "application/octet-stream",
    }
}

/// `GET /image/{id}`, streamed from the checked file.
pub async fn image(State(st): State<Shared>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let st2 = st.clone();
    let (file, rec) = tokio::task::spawn_blocking(move || open_recorded(&st2, id))
        .await
        .map_err(|_| ApiError::internal("the file worker stopped"))??;
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    Ok((
        [
            (header::CONTENT_TYPE, content_type(&rec).to_owned()),
            (header::CONTENT_LENGTH, rec.size.to_string()),
            (header::CACHE_CONTROL, "private, max-age=60".to_owned()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
