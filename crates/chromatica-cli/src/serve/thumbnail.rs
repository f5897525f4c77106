//! `GET /thumbnail/{id}?size=256`: a JPEG of the recorded file (opened as
//! `files.rs` does) whose longer side is at most `size`, decoded by the
//! library (pixel limit, bounded memory, DCT-scaled large JPEGs) and kept
//! in a cache bounded in bytes.

use super::error::{ApiError, ApiResult};
use super::files::open_recorded;
use super::params::{parse_id, Params};
use super::state::Shared;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Bytes of JPEG the cache holds at most.
pub const CACHE_BYTES: usize = 64 << 20;
/// Thumbnails made at once (each decode may hold a large image).
const MAKERS: usize = 2;
/// JPEG quality of thumbnails.
const QUALITY: u8 = 82;

type Key = (u64, u32);

#[derive(Default)]
struct Inner {
    map: HashMap<Key, Arc<Vec<u8>>>,
    /// Oldest first, for eviction.
    order: VecDeque<Key>,
    bytes: usize,
}

/// The thumbnails made so far, oldest evicted first.
pub struct ThumbCache {
    inner: Mutex<Inner>,
    makers: tokio::sync::Semaphore,
}

impl Default for ThumbCache {
    fn default() -> Self {
        ThumbCache { inner: Mutex::default(), makers: tokio::sync::Semaphore::new(MAKERS) }
    }
}

impl ThumbCache {
    fn get(&self, key: Key) -> Option<Arc<Vec<u8>>> {
        self.inner.lock().expect("no panic holds this lock").map.get(&key).cloned()
    }

    fn put(&self, key: Key, jpeg: Arc<Vec<u8>>) {
        let mut c = self.inner.lock().expect("no panic holds this lock");
        if jpeg.len() > CACHE_BYTES || c.map.contains_key(&key) {
            return;
        }
        while c.bytes + jpeg.len() > CACHE_BYTES {
            let Some(old) = c.order.pop_front() else { break };
            if let Some(v) = c.map.remove(&old) {
                c.bytes -= v.len();
            }
        }
        c.bytes += jpeg.len();
        c.order.push_back(key);
        c.map.insert(key, jpeg);
    }

    /// Thumbnails and bytes held.
    pub fn usage(&self) -> (usize, usize) {
        let c = self.inner.lock().expect("no panic holds this lock");
        (c.map.len(), c.bytes)
    }
}

/// Makes the JPEG (blocking: runs off the I/O threads).
fn make(st: &Shared, id: u64, size: u32) -> ApiResult<Vec<u8>> {
    let (file, rec) = open_recorded(st, id)?;
    let unusable = |e: chromatica::Error| {
        // The message names a /proc path; the client knows the image by id.
        let why = e.to_string();
        let why = why.rsplit(": ").next().unwrap_or("cannot decode").to_owned();
        ApiError::bad_request(format!("image {id} cannot be shown: {why}"))
    };
    #[cfg(target_os = "linux")]
    let img = {
        use std::os::fd::AsRawFd;
        // The checked open file itself, never the path again.
        let fd_path = std::path::PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        let img = chromatica::color::load_image_with(&fd_path, &st.limits, size).map_err(unusable)?;
        drop(file);
        img
    };
    #[cfg(not(target_os = "linux"))]
    let img = {
        use std::io::Read;
        let mut bytes = Vec::new();
        file.take(rec.size).read_to_end(&mut bytes).map_err(|e| ApiError::internal(e))?;
        let full = chromatica::color::decode_rgb(&rec.path, &bytes).map_err(unusable)?;
        let (w, h) = (full.width(), full.height());
        let s = f64::from(size) / f64::from(w.max(h));
        if s < 1.0 {
            image::imageops::thumbnail(&full, ((f64::from(w) * s) as u32).max(1), ((f64::from(h) * s) as u32).max(1))
        } else {
            full
        }
    };
    let _ = rec;
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY)
        .encode_image(&img)
        .map_err(|e| ApiError::internal(format!("cannot encode the thumbnail: {e}")))?;
    Ok(out)
}

/// `GET /thumbnail/{id}?size=N`.
pub async fn thumbnail(
    State(st): State<Shared>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let size = Params::parse(raw.as_deref())?.size()?;
    let jpeg = match st.thumbs.get((id, size)) {
        Some(j) => j,
        None => {
            let _slot = st.thumbs.makers.acquire().await.map_err(|_| ApiError::internal("shutting down"))?;
            // Another request may have made it while this one waited.
            match st.thumbs.get((id, size)) {
                Some(j) => j,
                None => {
                    let st2 = st.clone();
                    let j = tokio::task::spawn_blocking(move || make(&st2, id, size))
                        .await
                        .map_err(|_| ApiError::internal("the thumbnail worker stopped"))??;
                    let j = Arc::new(j);
                    st.thumbs.put((id, size), j.clone());
                    j
                }
            }
        }
    };
    Ok((
        [(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "private, max-age=3600")],
        jpeg.as_ref().clone(),
    )
        .into_response())
}
