//! Uploaded images: received into a temporary file under the size limit,
//! then decoded by the library (regular file, pixel limit checked from the
//! header before any pixel is decoded, bounded decode memory). And
//! `POST /extract_colors`.

use super::error::{ApiError, ApiResult};
use super::params::Params;
use super::state::Shared;
use axum::extract::{Multipart, RawQuery, State};
use axum::Json;
use chromatica::color::{dominant_colors, image_histogram_with};
use serde_json::{json, Value};
use std::io::Write;

/// The field holding the image (`image` is accepted too, as the original
/// `/extract_colors` named it).
const FIELDS: [&str; 2] = ["file", "image"];

/// Receives the first image field of `multipart` into a temporary file
/// (removed when dropped). Over `max_upload` bytes: 413; none or empty: 400.
pub async fn receive(st: &Shared, mut multipart: Multipart) -> ApiResult<tempfile::NamedTempFile> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        let text = e.body_text();
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(format!("upload over the limit of {} bytes", st.max_upload))
        } else {
            ApiError::bad_request(format!("unreadable multipart body: {text}"))
        }
    };
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        if !field.name().is_some_and(|n| FIELDS.contains(&n)) {
            continue;
        }
        let mut file = tempfile::Builder::new()
            .prefix("upload-")
            .tempfile_in(st.upload_dir.path())
            .map_err(|e| ApiError::internal(format!("cannot store the upload: {e}")))?;
        let mut size = 0usize;
        while let Some(chunk) = field.chunk().await.map_err(bad)? {
            size += chunk.len();
            if size > st.max_upload {
                return Err(ApiError::too_large(format!("upload over the limit of {} bytes", st.max_upload)));
            }
            file.write_all(&chunk).map_err(|e| ApiError::internal(format!("cannot store the upload: {e}")))?;
        }
        if size == 0 {
            return Err(ApiError::bad_request("the uploaded file is empty"));
        }
        file.flush().map_err(|e| ApiError::internal(format!("cannot store the upload: {e}")))?;
        return Ok(file);
    }
    Err(ApiError::bad_request("no image in the upload: send it in the multipart field file"))
}

/// A failure to decode an upload, for the client: the temporary file's
/// name (which means nothing to it) replaced by "upload".
pub fn decode_error(path: &std::path::Path, e: chromatica::Error) -> ApiError {
    ApiError::bad_request(e.to_string().replace(&path.display().to_string(), "upload"))
}

/// `POST /extract_colors?num_colors=5`: the upload's dominant colours and
/// their shares.
pub async fn extract_colors(
    State(st): State<Shared>,
    RawQuery(raw): RawQuery,
    multipart: Multipart,
) -> ApiResult<Json<Value>> {
    let n = Params::parse(raw.as_deref())?.num_colors()?;
    let file = receive(&st, multipart).await?;
    let limits = st.limits;
    let palette = tokio::task::spawn_blocking(move || {
        let h = image_histogram_with(file.path(), &limits).map_err(|e| decode_error(file.path(), e))?;
        Ok::<_, ApiError>(dominant_colors(&h, n))
    })
    .await
    .map_err(|_| ApiError::internal("the decoder stopped"))??;
    Ok(Json(json!({
        "colors": palette.iter().map(|c| c.hex()).collect::<Vec<_>>(),
        "weights": palette.iter().map(|c| super::params::round6(c.share)).collect::<Vec<_>>(),
        "num_colors": palette.len(),
        "status": "ok",
    })))
}
