//! `chromatica serve` through HTTP: every route, every bad parameter,
//! path traversal, symlink swaps, upload limits and bombs, concurrency,
//! timeouts, CORS and shutdown. Each test starts its own server on
//! 127.0.0.1 port 0 over its own photo folder; every wait is bounded.

mod serve_support;

use serde_json::Value;
use serve_support::{bmp_bomb, png_bytes, solid, Server};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The photos every test starts from: name and colour.
const PHOTOS: [(&str, [u8; 3]); 6] = [
    ("red.png", [230, 25, 75]),
    ("green.png", [60, 180, 75]),
    ("yellow.jpg", [255, 225, 25]),
    ("blue.png", [67, 99, 216]),
    ("sub/orange.png", [245, 130, 48]),
    ("sub/purple.jpg", [145, 30, 180]),
];

struct Fixture {
    _tmp: tempfile::TempDir,
    photos: PathBuf,
    index: PathBuf,
    server: Server,
}

/// A photo folder, and a server that has indexed it.
fn fixture(extra: &[&str]) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(photos.join("sub")).unwrap();
    for (name, rgb) in PHOTOS {
        solid(&photos.join(name), rgb, 40, 30);
    }
    let index = tmp.path().join("idx");
    let photos_arg = photos.to_str().unwrap().to_owned();
    let mut args = vec!["--watch", &photos_arg, "--watch-interval", "0"];
    args.extend_from_slice(extra);
    let server = Server::start(&index, &args);
    server.wait_for_size(|n| n == PHOTOS.len() as u64);
    wait_idle(&server);
    Fixture { _tmp: tmp, photos, index, server }
}

/// Waits (bounded) until no sync runs.
fn wait_idle(s: &Server) -> Value {
    let t = Instant::now();
    loop {
        let st = s.get("/index/status").json();
        if st["running"] == false && st["runs"].as_u64() > Some(0) {
            return st;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the sync did not finish: {st}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn file_name(hit: &Value) -> String {
    Path::new(hit["file_path"].as_str().expect("a file path")).file_name().unwrap().to_string_lossy().into_owned()
}

/// The id of the indexed photo `name`, found by searching its colour.
fn id_of(s: &Server, name: &str) -> String {
    let rgb = PHOTOS.iter().find(|p| p.0 == name).unwrap().1;
    let r = s.get(&format!("/search?colors={:02x}{:02x}{:02x}&k=1", rgb[0], rgb[1], rgb[2])).json();
    let hit = &r["results"][0];
    assert_eq!(file_name(hit), Path::new(name).file_name().unwrap().to_string_lossy());
    hit["image_id"].as_str().unwrap().to_owned()
}

#[test]
fn search_by_colours_answers_the_original_shape() {
    let f = fixture(&[]);
    let r = f.server.get("/search?colors=ea6a81,f6d727&weights=0.49,0.51&k=3&fast_mode=false");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(v["query_id"].as_str().is_some_and(|q| q.len() == 36));
    assert_eq!(v["query"]["colors"], serde_json::json!(["ea6a81", "f6d727"]));
    assert_eq!(v["query"]["weights"], serde_json::json!([0.49, 0.51]));
    assert_eq!(v["query"]["k"], 3);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(v["results_count"], 3);
    for (i, hit) in results.iter().enumerate() {
        assert!(hit["image_id"].as_str().unwrap().parse::<u64>().is_ok(), "{hit}");
        assert_eq!(hit["rank"], i + 1);
        assert!(hit["distance"].as_f64().unwrap() >= 0.0);
        let colors = hit["dominant_colors"].as_array().unwrap();
        assert!(!colors.is_empty() && colors.iter().all(|c| c.as_str().unwrap().len() == 7), "{hit}");
        assert!(Path::new(hit["file_path"].as_str().unwrap()).is_absolute());
    }
    let d: Vec<f64> = results.iter().map(|h| h["distance"].as_f64().unwrap()).collect();
    assert!(d.windows(2).all(|w| w[0] <= w[1]), "{d:?}");
    let m = &v["metadata"];
    for key in ["ann_time_ms", "total_time_ms"] {
        assert!(m[key].as_f64().unwrap() >= 0.0, "{m}");
    }
    assert!(m.get("rerank_time_ms").is_some());
    assert_eq!(m["index_size"], PHOTOS.len());
    assert_eq!(m["rerank"], "exact");
    assert!(m["solves"].as_u64().is_some_and(|n| n >= 3), "{m}");
    assert_eq!(m["timed_out"], false, "six photos: well within the default time limit");

    // Each photo's own colour finds it first; weights move the answer.
    for (name, rgb) in PHOTOS {
        let r = f.server.get(&format!("/search?colors=%23{:02x}{:02x}{:02x}&k=1", rgb[0], rgb[1], rgb[2])).json();
        assert_eq!(file_name(&r["results"][0]), Path::new(name).file_name().unwrap().to_string_lossy());
    }
    let red = f.server.get("/search?colors=e6194b,4363d8&weights=0.9,0.1&k=1").json();
    let blue = f.server.get("/search?colors=e6194b,4363d8&weights=0.1,0.9&k=1").json();
    assert_eq!(
        (file_name(&red["results"][0]).as_str(), file_name(&blue["results"][0]).as_str()),
        ("red.png", "blue.png")
    );
    // Without weights the shares are equal; k defaults to 50 (all 6 here).
    let eq = f.server.get("/search?colors=e6194b,4363d8").json();
    assert_eq!(eq["query"]["weights"], serde_json::json!([0.5, 0.5]));
    assert_eq!(eq["query"]["k"], 50);
    assert_eq!(eq["results"].as_array().unwrap().len(), PHOTOS.len());
    // fast_mode is stage 1 only (before training the search is exact anyway).
    let fast = f.server.get("/search?colors=e6194b&fast_mode=true&k=2").json();
    assert_eq!(fast["metadata"]["rerank"], "off");
    // fuzz=0 is no spreading; a fuzz forgives colour distance, so the
    // nearest is never farther than without it.
    assert_eq!(f.server.get("/search?colors=e6194b&fuzz=0").status, 200);
    let near = |q: &str| f.server.get(q).json()["results"][0]["distance"].as_f64().unwrap();
    assert!(near("/search?colors=e6194b&fuzz=30&k=1") < near("/search?colors=e6194b&k=1"));
}

#[test]
fn every_bad_search_parameter_is_a_one_line_400() {
    let f = fixture(&[]);
    let s = &f.server;
    let many = vec!["ff0000"; 17].join(",");
    let cases: Vec<(String, &str)> = vec![
        ("/search".into(), "colors is required"),
        ("/search?weights=1".into(), "colors is required"),
        ("/search?colors=".into(), "colour"),
        ("/search?colors=zzzzzz".into(), "bad colour"),
        ("/search?colors=ff00".into(), "bad colour"),
        ("/search?colors=ff0000,,00ff00".into(), "empty entry"),
        (format!("/search?colors={many}"), "at most 16"),
        ("/search?colors=ff0000:1".into(), "weights="),
        ("/search?colors=ff0000,00ff00&weights=1".into(), "one weight per colour"),
        ("/search?colors=ff0000&weights=0".into(), "positive"),
        ("/search?colors=ff0000&weights=-1".into(), "positive"),
        ("/search?colors=ff0000&weights=nan".into(), "positive"),
        ("/search?colors=ff0000&weights=inf".into(), "positive"),
        ("/search?colors=ff0000&weights=abc".into(), "positive"),
        ("/search?colors=ff0000&k=0".into(), "k must be"),
        ("/search?colors=ff0000&k=201".into(), "k must be"),
        ("/search?colors=ff0000&k=-3".into(), "k must be"),
        ("/search?colors=ff0000&k=1.5".into(), "k must be"),
        ("/search?colors=ff0000&k=99999999999999999999999".into(), "k must be"),
        ("/search?colors=ff0000&n_results=0".into(), "n_results must be"),
        ("/search?colors=ff0000&fast_mode=maybe".into(), "fast_mode"),
        ("/search?colors=ff0000&fuzz=abc".into(), "fuzz must be"),
        ("/search?colors=ff0000&fuzz=-1".into(), "fuzz must be"),
        ("/search?colors=ff0000&fuzz=101".into(), "fuzz must be"),
        ("/search?colors=ff0000&fuzz=NaN".into(), "fuzz must be"),
        ("/search?colors=ff0000&fuzz=2.5&fast_mode=true".into(), "fast"),
        ("/search?colors=%ff%fe".into(), "colour"),
    ];
    for (target, expect) in cases {
        let msg = s.get(&target).error(400);
        assert!(msg.contains(expect), "{target}: {msg:?} does not say {expect:?}");
    }
    // A colour echoed back in an error is JSON-escaped, never raw.
    let r = s.get("/search?colors=%3Cscript%3E");
    r.error(400);
    assert!(!r.text().contains("<script>") || r.json()["error"].as_str().unwrap().contains("<script>"));
}

#[test]
fn search_by_image_upload_or_id() {
    let f = fixture(&[]);
    let s = &f.server;
    let blue = id_of(s, "blue.png");
    let r = s.post(&format!("/search/image?id={blue}&k=2"));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["results"][0]["image_id"], blue.as_str());
    assert!(v["results"][0]["distance"].as_f64().unwrap() < 1e-4);
    assert_eq!(v["query"]["image_id"], blue.as_str());
    assert_eq!(v["query"]["colors"][0], "4363d8");
    assert_eq!(v["results"].as_array().unwrap().len(), 2);

    let r = s.upload("/search/image?k=1", "file", &png_bytes([60, 180, 75]));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(file_name(&r.json()["results"][0]), "green.png");
    let r = s.upload("/search/image?k=1&fast_mode=true", "file", &png_bytes([255, 225, 25]));
    assert_eq!(file_name(&r.json()["results"][0]), "yellow.jpg");

    assert!(s.post("/search/image?id=999999").error(404).contains("999999"));
    for bad in ["abc", "-1", "1.0", "18446744073709551616"] {
        assert!(s.post(&format!("/search/image?id={bad}")).error(400).contains("image id"), "{bad}");
    }
    assert!(s.post("/search/image?id=0&k=0").error(400).contains("k must be"));
    assert!(s.post("/search/image").error(400).contains("multipart"));
    assert!(s.upload("/search/image", "other", &png_bytes([1, 2, 3])).error(400).contains("field file"));
    assert!(s.upload("/search/image", "file", b"").error(400).contains("empty"));
    let not_image = s.upload("/search/image", "file", b"this is not an image at all");
    assert!(not_image.error(400).contains("image"));
    // The message never shows the server's temporary file.
    assert!(!not_image.text().contains("upload-"), "{}", not_image.text());
    let truncated = &png_bytes([9, 9, 9])[..40];
    s.upload("/search/image", "file", truncated).error(400);
}

#[test]
fn uploads_over_the_size_limit_or_pixel_limit_are_refused_before_decoding() {
    let f = fixture(&["--max-upload", "100000"]);
    let s = &f.server;
    let big = vec![0u8; 150_000];
    assert!(s.upload("/search/image", "file", &big).error(413).contains("limit"));
    assert!(s.upload("/extract_colors", "file", &big).error(413).contains("limit"));
    // A body over the limit announced by Content-Length is refused too.
    let r = s.raw(
        format!(
            "POST /extract_colors HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n",
            50_000_000
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 413, "{}", r.text());
    // Decompression bombs: headers claiming 3.6 and 0.4 gigapixels.
    for (w, h) in [(60_000, 60_000), (20_000, 20_000)] {
        let bomb = bmp_bomb(w, h);
        let t = Instant::now();
        let msg = s.upload("/search/image", "file", &bomb).error(400);
        assert!(msg.contains("pixel"), "{msg}");
        assert!(s.upload("/extract_colors", "file", &bomb).error(400).contains("pixel"));
        // Refused from the header: nothing near a gigapixel was decoded.
        assert!(t.elapsed() < Duration::from_secs(20));
    }
    let rss = s.get("/stats").json()["server"]["resident_bytes"].as_u64().unwrap();
    assert!(rss < 1 << 30, "resident {rss} bytes after the bombs");
    // --max-pixels lowers the limit.
    drop(f);
    // (The photos have 1,200 pixels, so the sync keeps them.)
    let f = fixture(&["--max-pixels", "1200"]);
    let mut big = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(40, 40, image::Rgb([1, 2, 3])).write_to(&mut big, image::ImageFormat::Png).unwrap();
    assert!(f.server.upload("/extract_colors", "file", big.get_ref()).error(400).contains("pixel"));
    assert_eq!(f.server.upload("/extract_colors", "file", &png_bytes([1, 2, 3])).status, 200);
}

#[test]
fn extract_colors_gives_dominant_colours_with_shares() {
    let f = fixture(&[]);
    let s = &f.server;
    let r = s.upload("/extract_colors", "file", &png_bytes([230, 25, 75]));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["colors"][0], "#e6194b");
    assert!((v["weights"][0].as_f64().unwrap() - 1.0).abs() < 1e-3, "{v}");
    assert_eq!(v["num_colors"], 1);
    assert_eq!(v["status"], "ok");
    // The original's field name works too.
    assert_eq!(s.upload("/extract_colors?num_colors=10", "image", &png_bytes([1, 200, 3])).status, 200);
    for bad in ["0", "11", "x", "-1"] {
        assert!(s
            .upload(&format!("/extract_colors?num_colors={bad}"), "file", &png_bytes([1, 2, 3]))
            .error(400)
            .contains("num_colors"));
    }
    s.post("/extract_colors").error(400);
    s.upload("/extract_colors", "file", b"GIF89a nonsense").error(400);
}

#[test]
fn image_and_thumbnail_serve_recorded_files() {
    let f = fixture(&[]);
    let s = &f.server;
    let red = id_of(s, "red.png");
    let r = s.get(&format!("/image/{red}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(r.body, std::fs::read(f.photos.join("red.png")).unwrap());
    let yellow = id_of(s, "yellow.jpg");
    assert_eq!(s.get(&format!("/image/{yellow}")).header("content-type"), Some("image/jpeg"));

    let t = s.get(&format!("/thumbnail/{red}?size=16"));
    assert_eq!(t.status, 200, "{}", t.text());
    assert_eq!(t.header("content-type"), Some("image/jpeg"));
    let img = image::load_from_memory(&t.body).unwrap().to_rgb8();
    assert_eq!((img.width(), img.height()), (16, 12));
    let p = img.get_pixel(8, 6).0;
    assert!(p.iter().zip([230, 25, 75]).all(|(a, b)| (i32::from(*a) - b).abs() < 12), "{p:?}");
    // Default 256: not upscaled past the original 40 × 30.
    let t = s.get(&format!("/thumbnail/{red}"));
    assert_eq!(image::load_from_memory(&t.body).unwrap().width(), 40);
    let stats = s.get("/stats").json();
    assert_eq!(stats["server"]["thumbnails_cached"], 2);
    // Cached: served again identically without reading the file.
    let again = s.get(&format!("/thumbnail/{red}"));
    assert_eq!(again.body, t.body);
    assert_eq!(s.get("/stats").json()["server"]["thumbnails_cached"], 2);

    for bad in ["8", "1025", "abc", "-1"] {
        assert!(s.get(&format!("/thumbnail/{red}?size={bad}")).error(400).contains("size"), "{bad}");
    }
    s.get("/image/999999").error(404);
    s.get("/thumbnail/999999").error(404);
    s.get("/image/abc").error(400);
    s.get("/thumbnail/1e3").error(400);
}

#[test]
fn no_request_path_reaches_the_file_system() {
    let f = fixture(&[]);
    let s = &f.server;
    let secret = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let targets = [
        "/image/../../../../etc/passwd",
        "/image/..%2f..%2f..%2fetc%2fpasswd",
        "/image/%2e%2e/%2e%2e/etc/passwd",
        "/image//etc/passwd",
        "/image/1/../../../etc/passwd",
        "/image/0%00",
        "/thumbnail/..%2F..%2Fetc%2Fhostname",
        "/thumbnail/../../etc/hostname",
        "/../../../../etc/passwd",
        "/static/../../etc/passwd",
        "/image/%252e%252e%252fetc%252fpasswd",
        "/image/C:%5Cwindows%5Cwin.ini",
    ];
    for t in targets {
        let r = s.get(t);
        assert!(r.status == 400 || r.status == 404, "{t}: {} {}", r.status, r.text());
        r.error(r.status);
        let body = r.text();
        assert!(!body.contains("root:") && (secret.trim().is_empty() || !body.contains(secret.trim())), "{t}: {body}");
    }
}

#[test]
fn swapped_links_and_changed_files_are_not_served() {
    let f = fixture(&[]);
    let s = &f.server;
    let red = id_of(s, "red.png");
    let orange = id_of(s, "sub/orange.png");
    let purple = id_of(s, "sub/purple.jpg");
    let green = id_of(s, "green.png");
    assert_eq!(s.get(&format!("/image/{orange}")).status, 200);
    let secret = f.photos.parent().unwrap().join("secret.png");
    std::fs::write(&secret, std::fs::read(f.photos.join("red.png")).unwrap()).unwrap();

    // The file itself replaced by a link (to a file of the same bytes).
    std::fs::remove_file(f.photos.join("red.png")).unwrap();
    std::os::unix::fs::symlink(&secret, f.photos.join("red.png")).unwrap();
    assert!(s.get(&format!("/image/{red}")).error(404).contains("symbolic link"));
    s.get(&format!("/thumbnail/{red}?size=20")).error(404);

    // A folder on the path replaced by a link: same inode, size and mtime.
    std::fs::rename(f.photos.join("sub"), f.photos.join("moved")).unwrap();
    std::os::unix::fs::symlink(f.photos.join("moved"), f.photos.join("sub")).unwrap();
    assert!(s.get(&format!("/image/{orange}")).error(404).contains("symbolic link"));
    s.get(&format!("/thumbnail/{purple}")).error(404);

    // Changed after indexing (size differs), and gone.
    let mut bytes = std::fs::read(f.photos.join("green.png")).unwrap();
    bytes.extend_from_slice(b"tail");
    std::fs::write(f.photos.join("green.png"), bytes).unwrap();
    assert!(s.get(&format!("/image/{green}")).error(404).contains("changed"));
    let blue = id_of(s, "blue.png");
    std::fs::remove_file(f.photos.join("blue.png")).unwrap();
    s.get(&format!("/image/{blue}")).error(404);
    // A FIFO in a file's place does not hang the server.
    let yellow = id_of(s, "yellow.jpg");
    std::fs::remove_file(f.photos.join("yellow.jpg")).unwrap();
    let c = std::ffi::CString::new(f.photos.join("yellow.jpg").to_str().unwrap()).unwrap();
    // SAFETY: a valid C string path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    s.get(&format!("/image/{yellow}")).error(404);
    assert_eq!(s.get("/health").status, 200);
}

#[test]
fn health_stats_metrics_and_openapi() {
    let f = fixture(&[]);
    let s = &f.server;
    let h = s.get("/health").json();
    assert_eq!(h["status"], "healthy");
    assert_eq!(h["index_size"], PHOTOS.len());
    let st = s.get("/stats").json();
    assert_eq!(st["index"]["vectors"], PHOTOS.len());
    assert!(st["index"]["memory"]["disk_bytes"].as_u64().unwrap() > 0, "{st}");
    assert_eq!(st["server"]["search_threads"], 2);
    s.get("/search?colors=ff0000");
    s.get("/search?colors=zz");
    let m = s.get("/metrics");
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let text = m.text();
    for want in [
        "chromatica_http_requests_total{route=\"/search\",status=\"200\"} 1",
        "chromatica_http_requests_total{route=\"/search\",status=\"400\"} 1",
        "chromatica_http_request_duration_seconds_bucket{route=\"/search\",le=\"+Inf\"} 2",
        "chromatica_http_request_duration_seconds_count{route=\"/search\"} 2",
        &format!("chromatica_index_vectors {}", PHOTOS.len()),
        "chromatica_index_segments ",
        "chromatica_index_disk_bytes ",
        "# TYPE chromatica_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    // Every route of the router, with its parameters, is in the document.
    let doc = s.get("/openapi.json").json();
    assert_eq!(doc["openapi"], "3.0.3");
    let routes = [
        ("/", "get", vec![]),
        ("/search", "get", vec!["colors", "weights", "k", "fuzz", "fast_mode"]),
        ("/search/image", "post", vec!["id", "k", "fuzz", "fast_mode"]),
        ("/extract_colors", "post", vec!["num_colors"]),
        ("/image/{id}", "get", vec!["id"]),
        ("/thumbnail/{id}", "get", vec!["id", "size"]),
        ("/health", "get", vec![]),
        ("/stats", "get", vec![]),
        ("/metrics", "get", vec![]),
        ("/index", "post", vec![]),
        ("/index/status", "get", vec![]),
        ("/openapi.json", "get", vec![]),
    ];
    assert_eq!(doc["paths"].as_object().unwrap().len(), routes.len());
    for (path, method, params) in routes {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{path} {method} missing");
        let names: Vec<&str> = op["parameters"]
            .as_array()
            .map(|a| a.iter().map(|p| p["name"].as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(names, params, "{path}");
        // Each route answers (no 404 for a documented path).
        let target = path.replace("{id}", "0");
        let r = if method == "get" { s.get(&target) } else { s.post(&target) };
        assert_ne!(r.status, 404, "{path}: {}", r.text());
        assert!(r.status < 500, "{path}: {}", r.text());
    }
    s.get("/nope").error(404);
    s.raw(b"DELETE /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").error(405);
    s.post("/search").error(405);
}

#[test]
fn the_page_is_embedded_and_escapes_text() {
    let f = fixture(&[]);
    let s = &f.server;
    let page = s.get("/");
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let html = page.text();
    assert!(html.contains("src=\"/app.js\"") && html.contains("href=\"/style.css\""));
    assert!(!html.contains("http://") && !html.contains("https://"), "no external asset");
    let js = s.get("/app.js");
    assert!(js.header("content-type").unwrap().starts_with("text/javascript"));
    let js = js.text();
    assert!(
        js.contains("textContent")
            && !js.contains("innerHTML")
            && !js.contains("insertAdjacentHTML")
            && !js.contains("document.write")
    );
    assert!(!js.contains("http://") && !js.contains("https://"));
    assert!(s.get("/style.css").header("content-type").unwrap().starts_with("text/css"));
}

#[test]
fn post_index_syncs_in_the_background_while_searches_answer() {
    let f = fixture(&[]);
    let s = &f.server;
    // Enough new photos that the sync takes a while on one thread.
    let n_new = 300u64;
    for i in 0..n_new {
        solid(&f.photos.join(format!("new{i:03}.jpg")), [(i % 250) as u8, 90, 200 - (i % 200) as u8], 400, 300);
    }
    let r = s.post("/index");
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["started"], true);
    let total = PHOTOS.len() as u64 + n_new;
    let mut during = 0;
    let mut sizes = Vec::new();
    let t = Instant::now();
    loop {
        let running = s.get("/index/status").json()["running"] == true;
        let v = s.get("/search?colors=e6194b&k=1").json();
        let size = v["metadata"]["index_size"].as_u64().unwrap();
        assert_eq!(file_name(&v["results"][0]), "red.png");
        sizes.push(size);
        if running && size < total {
            during += 1;
        }
        if !running && size == total {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "sync did not finish");
    }
    assert!(during > 0, "no search answered while the sync ran: {sizes:?}");
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
    let st = wait_idle(s);
    assert_eq!(st["last"]["summary"]["added"], n_new);
    assert_eq!(st["progress"]["decoded"], n_new);
    // A second request while none runs starts another (nothing new).
    assert_eq!(s.post("/index").status, 202);
    let st = wait_idle(s);
    assert_eq!(st["last"]["summary"]["unchanged"], total);
}

#[test]
fn post_index_without_watched_folders_is_a_400() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start(&tmp.path().join("idx"), &[]);
    assert!(s.post("/index").error(400).contains("--watch"));
    let r = s.get("/search?colors=ff0000").json();
    assert_eq!(r["results"].as_array().unwrap().len(), 0);
    assert_eq!(s.get("/index/status").json()["runs"], 0);
}

#[test]
fn beyond_max_concurrent_requests_get_503() {
    let f = fixture(&["--max-concurrent", "1"]);
    let s = &f.server;
    // One request holds the only slot: its body never finishes.
    let mut slow = s.connect();
    use std::io::Write;
    slow.write_all(
        format!(
            "POST /extract_colors HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary={}\r\nContent-Length: 100000\r\n\r\n--{}\r\n",
            serve_support::BOUNDARY,
            serve_support::BOUNDARY
        )
        .as_bytes(),
    )
    .unwrap();
    let t = Instant::now();
    let busy = loop {
        let r = s.get("/health");
        if r.status == 503 {
            break r;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "never refused");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(busy.error(503).contains("too many"));
    drop(slow);
    let t = Instant::now();
    while s.get("/health").status != 200 {
        assert!(t.elapsed() < Duration::from_secs(10), "the slot was not given back");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn slow_headers_and_slow_bodies_time_out() {
    let f = fixture(&["--read-timeout", "1", "--request-timeout", "2"]);
    let s = &f.server;
    use std::io::{Read, Write};
    // Headers never finished: the connection is closed.
    let mut c = s.connect();
    c.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n").unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    assert!(t.elapsed() < Duration::from_secs(15));
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"), "{:?}", String::from_utf8_lossy(&buf));
    // A body that stops coming: 408.
    let mut c = s.connect();
    c.write_all(b"POST /extract_colors HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 5000\r\n\r\n--b\r\n").unwrap();
    let r = serve_support::read_response(&mut c);
    assert!(r.error(408).contains("took over"));
}

#[test]
fn cors_only_when_asked() {
    let f = fixture(&[]);
    let req = b"GET /health HTTP/1.1\r\nHost: t\r\nOrigin: http://elsewhere.test\r\nConnection: close\r\n\r\n";
    let r = f.server.raw(req);
    assert_eq!(r.status, 200);
    assert!(r.headers.iter().all(|(k, _)| !k.starts_with("access-control-")), "{:?}", r.headers);
    drop(f);
    let f = fixture(&["--cors", "http://elsewhere.test"]);
    let r = f.server.raw(req);
    assert_eq!(r.header("access-control-allow-origin"), Some("http://elsewhere.test"));
}

#[test]
fn sigterm_stops_gracefully_and_the_index_reopens() {
    let f = fixture(&[]);
    let Fixture { _tmp, index, server, .. } = f;
    assert_eq!(server.get("/health").status, 200);
    let (ok, stderr) = server.terminate();
    assert!(ok, "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    let again = Server::start(&index, &[]);
    assert_eq!(again.get("/health").json()["index_size"], PHOTOS.len());
}

#[test]
fn a_second_server_on_the_same_index_serves_it_read_only() {
    let f = fixture(&[]);
    let reader = Server::start(&f.index, &["--watch-interval", "1"]);
    assert_eq!(reader.get("/health").json()["writable"], false);
    assert!(reader.post("/index").error(409).contains("writer lock"));
    // The writer adds a photo; the reader sees it after a refresh.
    solid(&f.photos.join("late.png"), [1, 2, 250], 20, 20);
    assert_eq!(f.server.post("/index").status, 202);
    reader.wait_for_size(|n| n == PHOTOS.len() as u64 + 1);
    assert_eq!(
        reader.get("/search?colors=0102fa&k=1").json()["results"][0]["file_path"]
            .as_str()
            .map(|p| p.ends_with("late.png")),
        Some(true)
    );
}

#[test]
fn a_search_time_limit_cuts_the_exact_scan_and_says_so() {
    let f = fixture(&["--search-time-limit", "0"]);
    let v = f.server.get("/search?colors=e6194b,4363d8&k=3").json();
    let m = &v["metadata"];
    // Never fewer than k: the first k solved are kept, then the limit stops it.
    assert_eq!(v["results"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(m["timed_out"], true, "{m}");
    assert_eq!(m["solves"], 3, "{m}");
    let f = fixture(&["--search-time-limit", "none"]);
    let m = f.server.get("/search?colors=e6194b,4363d8&k=3").json()["metadata"].clone();
    assert_eq!(m["timed_out"], false, "{m}");
}

#[test]
fn bad_command_lines_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    for args in [
        vec!["--threads", "0"],
        vec!["--max-concurrent", "0"],
        vec!["--read-timeout", "0"],
        vec!["--bind", "nonsense"],
        vec!["--search-time-limit", "soon"],
        vec!["--search-time-limit", "-1"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chromatica"))
            .arg("serve")
            .arg(&idx)
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).trim().is_empty());
    }
    // A photo folder given as the index is refused (not overwritten).
    let photos = tmp.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    solid(&photos.join("a.png"), [1, 2, 3], 4, 4);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chromatica"))
        .arg("serve")
        .arg(&photos)
        .args(["--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("error:"));
}
