//! `GET /openapi.json`: the API described by hand, every route, parameter
//! and answer (the API tests check that each route of the router is in it,
//! and schemathesis fuzzes the server from it).

use super::params::{
    DEFAULT_K, DEFAULT_NUM_COLORS, DEFAULT_THUMB, MAX_FUZZ, MAX_K, MAX_NUM_COLORS, MAX_THUMB, MIN_THUMB,
};
use axum::Json;
use serde_json::{json, Value};

fn error_responses() -> Value {
    json!({ "default": { "description": "An error: 4xx for the request's fault", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } } })
}

fn with_errors(mut ok: Value) -> Value {
    if let (Some(o), Value::Object(e)) = (ok.as_object_mut(), error_responses()) {
        o.extend(e);
    }
    ok
}

fn search_params() -> Value {
    json!([
        { "name": "k", "in": "query", "required": false, "description": "Results wanted (the original's alias n_results is accepted too).",
          "schema": { "type": "integer", "minimum": 1, "maximum": MAX_K, "default": DEFAULT_K } },
        { "name": "fuzz", "in": "query", "required": false,
          "description": format!("How far each query colour may stray at no cost (ΔE76, 0 to {MAX_FUZZ}): the exact EMD's ground distance becomes max(0, ΔE − fuzz). Not with fast_mode."),
          "schema": { "type": "number", "minimum": 0, "maximum": MAX_FUZZ } },
        { "name": "fast_mode", "in": "query", "required": false, "description": "Stage 1 only: PQ distances, no exact re-rank.",
          "schema": { "type": "boolean", "default": false } }
    ])
}

fn search_ok() -> Value {
    json!({ "200": { "description": "Results, nearest first", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SearchResponse" } } } } })
}

fn image_id_param() -> Value {
    json!({ "name": "id", "in": "path", "required": true, "description": "An image id from a search result.",
            "schema": { "type": "integer", "format": "int64", "minimum": 0 } })
}

fn upload_body(required: bool) -> Value {
    json!({ "required": required, "content": { "multipart/form-data": { "schema": {
        "type": "object", "required": ["file"],
        "properties": { "file": { "type": "string", "format": "binary", "minLength": 1, "description": "An image (JPEG, PNG, WebP, GIF, BMP, TIFF), at most the upload limit (default 20 MB)." } } } } } })
}

/// The OpenAPI 3.0 document.
pub fn spec() -> Value {
    let hex = "^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})(,#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})){0,15}$";
    let mut colour_params = vec![
        json!({ "name": "colors", "in": "query", "required": true, "description": "Comma-separated hex colours (3 or 6 digits, # optional), at most 16.",
                "schema": { "type": "string", "pattern": hex }, "example": "ea6a81,f6d727" }),
        json!({ "name": "weights", "in": "query", "required": false, "description": "One positive weight per colour (normalised); equal when absent.",
                "schema": { "type": "string" }, "example": "0.49,0.51" }),
    ];
    colour_params.extend(search_params().as_array().cloned().unwrap_or_default());
    let mut image_params = vec![
        json!({ "name": "id", "in": "query", "required": false, "description": "Search by this indexed image instead of an upload.",
        "schema": { "type": "integer", "format": "int64", "minimum": 0 } }),
    ];
    image_params.extend(search_params().as_array().cloned().unwrap_or_default());
    let plain = |desc: &str, schema: Value| json!({ "200": { "description": desc, "content": { "application/json": { "schema": schema } } } });
    json!({
        "openapi": "3.0.3",
        "info": { "title": "Chromatica", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Colour search over an image index: the original Chromatica service's API, served by `chromatica serve`." },
        "paths": {
            "/": { "get": { "summary": "The web page", "operationId": "page",
                "responses": { "200": { "description": "HTML", "content": { "text/html": { "schema": { "type": "string" } } } } } } },
            "/search": { "get": { "summary": "Search by colours", "operationId": "search", "parameters": colour_params, "responses": with_errors(search_ok()) } },
            "/search/image": { "post": { "summary": "Search by an uploaded image (field file) or an indexed one (?id=)", "operationId": "searchImage",
                "parameters": image_params, "requestBody": upload_body(false), "responses": with_errors(search_ok()) } },
            "/extract_colors": { "post": { "summary": "Dominant colours of an uploaded image", "operationId": "extractColors",
                "parameters": [ { "name": "num_colors", "in": "query", "required": false,
                    "schema": { "type": "integer", "minimum": 1, "maximum": MAX_NUM_COLORS, "default": DEFAULT_NUM_COLORS } } ],
                "requestBody": upload_body(true),
                "responses": with_errors(plain("Colours with their shares", json!({ "$ref": "#/components/schemas/Extracted" }))) } },
            "/image/{id}": { "get": { "summary": "The original file of an indexed image", "operationId": "image", "parameters": [image_id_param()],
                "responses": with_errors(json!({ "200": { "description": "The file", "content": { "image/*": { "schema": { "type": "string", "format": "binary" } },
                    "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } } })) } },
            "/thumbnail/{id}": { "get": { "summary": "A JPEG thumbnail of an indexed image (cached)", "operationId": "thumbnail",
                "parameters": [image_id_param(), { "name": "size", "in": "query", "required": false, "description": "Longer side in pixels.",
                    "schema": { "type": "integer", "minimum": MIN_THUMB, "maximum": MAX_THUMB, "default": DEFAULT_THUMB } }],
                "responses": with_errors(json!({ "200": { "description": "JPEG", "content": { "image/jpeg": { "schema": { "type": "string", "format": "binary" } } } } })) } },
            "/health": { "get": { "summary": "Liveness and index size", "operationId": "health",
                "responses": plain("Healthy", json!({ "type": "object", "required": ["status", "index_size"],
                    "properties": { "status": { "type": "string" }, "index_size": { "type": "integer" }, "trained": { "type": "boolean" },
                                    "generation": { "type": "integer" }, "writable": { "type": "boolean" }, "version": { "type": "string" } } })) } },
            "/stats": { "get": { "summary": "The index's inspect report (configuration, segments, lists, memory, disk) and the server's settings", "operationId": "stats",
                "responses": plain("Statistics", json!({ "type": "object", "required": ["index", "server"],
                    "properties": { "index": { "type": "object", "nullable": true }, "server": { "type": "object" } } })) } },
            "/metrics": { "get": { "summary": "Prometheus metrics", "operationId": "metrics",
                "responses": { "200": { "description": "Prometheus text format 0.0.4", "content": { "text/plain": { "schema": { "type": "string" } } } } } } },
            "/index": { "post": { "summary": "Start a sync of the watched folders in the background", "operationId": "startIndex",
                "responses": with_errors(json!({ "202": { "description": "Started, or already running (started false)",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/IndexStatus" } } } } })) } },
            "/index/status": { "get": { "summary": "Progress of the background sync", "operationId": "indexStatus",
                "responses": plain("Status", json!({ "$ref": "#/components/schemas/IndexStatus" })) } },
            "/openapi.json": { "get": { "summary": "This document", "operationId": "openapi",
                "responses": plain("OpenAPI 3.0", json!({ "type": "object" })) } }
        },
        "components": { "schemas": {
            "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "string", "description": "One line." } } },
            "SearchResponse": { "type": "object", "required": ["query_id", "query", "results", "metadata"], "properties": {
                "query_id": { "type": "string" },
                "query": { "type": "object", "required": ["colors", "weights", "k"], "properties": {
                    "colors": { "type": "array", "items": { "type": "string" } },
                    "weights": { "type": "array", "items": { "type": "number" } },
                    "k": { "type": "integer" },
                    "image_id": { "type": "string", "nullable": true } } },
                "results_count": { "type": "integer" },
                "results": { "type": "array", "items": { "type": "object", "required": ["image_id", "distance", "dominant_colors", "file_path"], "properties": {
                    "image_id": { "type": "string" }, "rank": { "type": "integer" }, "distance": { "type": "number" },
                    "dominant_colors": { "type": "array", "items": { "type": "string" } },
                    "dominant_shares": { "type": "array", "items": { "type": "number" } },
                    "file_path": { "type": "string", "nullable": true } } } },
                "metadata": { "type": "object", "required": ["ann_time_ms", "rerank_time_ms", "total_time_ms", "index_size"], "properties": {
                    "ann_time_ms": { "type": "number", "description": "The engine's search: PQ scan, re-rank and resolving records and palettes (one step in the public API)." },
                    "rerank_time_ms": { "type": "number", "nullable": true, "description": "Not measured apart: included in ann_time_ms." },
                    "total_time_ms": { "type": "number" }, "index_size": { "type": "integer" },
                    "rerank": { "type": "string" }, "exact": { "type": "boolean" }, "nprobe": { "type": "integer" },
                    "solves": { "type": "integer", "nullable": true }, "timed_out": { "type": "boolean" } } } } },
            "Extracted": { "type": "object", "required": ["colors", "weights", "num_colors", "status"], "properties": {
                "colors": { "type": "array", "items": { "type": "string" } }, "weights": { "type": "array", "items": { "type": "number" } },
                "num_colors": { "type": "integer" }, "status": { "type": "string" } } },
            "IndexStatus": { "type": "object", "required": ["running", "runs", "watched", "progress", "index_size"], "properties": {
                "running": { "type": "boolean" }, "runs": { "type": "integer" }, "started": { "type": "boolean" },
                "watched": { "type": "array", "items": { "type": "string" } }, "writable": { "type": "boolean" },
                "progress": { "type": "object", "properties": { "to_decode": { "type": "integer" }, "decoded": { "type": "integer" } } },
                "last": { "type": "object", "nullable": true }, "index_size": { "type": "integer" } } }
        } }
    })
}

/// `GET /openapi.json`.
pub async fn document() -> Json<Value> {
    Json(spec())
}
