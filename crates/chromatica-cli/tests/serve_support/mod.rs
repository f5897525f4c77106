//! For `serve.rs`: a `chromatica serve` process on 127.0.0.1 port 0
//! (killed when dropped), a raw HTTP/1.1 client that sends exactly the
//! bytes a test writes (no path normalisation, malformed requests
//! possible), and small test images.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest any single exchange may take before the test fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    stderr: Option<std::process::ChildStderr>,
}

impl Server {
    /// Starts `chromatica serve DIR --bind 127.0.0.1:0 ARGS…` and waits for
    /// its "listening on" line.
    pub fn start(dir: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chromatica"))
            .arg("serve")
            .arg(dir)
            .args(["--bind", "127.0.0.1:0", "--threads", "2"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromatica serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read the listening line");
        let Some(addr) = line.trim().strip_prefix("listening on http://") else {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("serve did not start: {line:?} {err}");
        };
        let addr = addr.parse().expect("an address");
        let stderr = child.stderr.take();
        Server { child, addr, stderr }
    }

    /// Sends SIGTERM and waits (bounded) for the exit; returns whether it
    /// exited successfully and its stderr.
    pub fn terminate(mut self) -> (bool, String) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let t = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "serve did not stop within 20 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (status.success(), err)
    }

    /// Sends raw request bytes and reads the whole answer.
    pub fn raw(&self, request: &[u8]) -> Response {
        let mut s = self.connect();
        s.write_all(request).expect("send");
        read_response(&mut s)
    }

    /// A connection with read and write timeouts.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    }

    /// `GET target`.
    pub fn get(&self, target: &str) -> Response {
        self.raw(format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
    }

    /// `POST target` with an empty body.
    pub fn post(&self, target: &str) -> Response {
        self.raw(
            format!("POST {target} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    }

    /// `POST target` with a multipart body of one field `name` holding `data`.
    pub fn upload(&self, target: &str, name: &str, data: &[u8]) -> Response {
        let body = multipart(name, data);
        let mut req = format!(
            "POST {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&body);
        self.raw(&req)
    }

    /// GETs `/health` until `done(index_size)` (at most 30 s).
    pub fn wait_for_size(&self, done: impl Fn(u64) -> bool) -> u64 {
        let t = Instant::now();
        loop {
            let n = self.get("/health").json()["index_size"].as_u64().expect("index_size");
            if done(n) {
                return n;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "the index stayed at {n} images");
            std::thread::sleep(Duration::from_millis(30));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The multipart boundary of [`multipart`].
pub const BOUNDARY: &str = "XtestBOUNDARYx";

/// A multipart/form-data body with one file field.
pub fn multipart(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"x.png\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    b.extend_from_slice(data);
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    b
}

/// An answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text()))
    }

    /// Asserts a `{"error": "one line"}` answer with `status`; its message.
    pub fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{}", self.text());
        assert!(self.header("content-type").is_some_and(|c| c.starts_with("application/json")), "{:?}", self.headers);
        let v = self.json();
        let msg = v["error"].as_str().unwrap_or_else(|| panic!("no error field: {v}")).to_owned();
        assert!(!msg.is_empty() && !msg.contains('\n'), "{msg:?}");
        assert_eq!(v.as_object().map(|o| o.len()), Some(1), "{v}");
        msg
    }
}

/// Reads one answer to the end of the connection (requests say close).
pub fn read_response(s: &mut TcpStream) -> Response {
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    parse_response(&all)
}

fn parse_response(all: &[u8]) -> Response {
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end: {:?}", String::from_utf8_lossy(all)));
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &all[end + 4..];
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_vec() };
    Response { status, headers, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

/// Writes a `w`×`h` image of one colour (format from the extension).
pub fn solid(path: &Path, rgb: [u8; 3], w: u32, h: u32) {
    image::RgbImage::from_pixel(w, h, image::Rgb(rgb)).save(path).expect("write a test image");
}

/// The bytes of a PNG of one colour.
pub fn png_bytes(rgb: [u8; 3]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(16, 16, image::Rgb(rgb)).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A decompression bomb's header: a 24-bit BMP claiming `w`×`h` pixels,
/// with hardly any pixel data behind it.
pub fn bmp_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"BM");
    b.extend_from_slice(&(54u32 + 64).to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&54u32.to_le_bytes());
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&w.to_le_bytes());
    b.extend_from_slice(&h.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&24u16.to_le_bytes());
    b.extend_from_slice(&[0; 24]);
    b.extend_from_slice(&[0x7f; 64]);
    b
}
