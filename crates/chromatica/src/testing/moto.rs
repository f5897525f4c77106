//! A real S3 API for the object-storage tests: moto's server mode
//! (`pip install 'moto[server]'`), started on a free loopback port and
//! killed on drop. Without `moto_server` on the PATH, [`Moto::start`] says
//! so and gives `None` (the test then passes; `.ci/run` installs it).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A moto server on 127.0.0.1, killed when dropped.
pub struct Moto {
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts a server and waits (up to 60 s) until it listens; `None`,
    /// with a SKIPPED line on stderr, when moto is not installed.
    pub fn start() -> Option<Moto> {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let spawned = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                eprintln!(
                    "SKIPPED: moto_server is not installed ({e}); pip install 'moto[server]' to run the S3 tests"
                );
                return None;
            }
        };
        let m = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start listening on port {port} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(m)
    }

    /// Creates a bucket with a plain HTTP request (moto needs no
    /// signature), retried for up to 60 s: a server that has just started
    /// listening may still refuse or drop a first connection.
    pub fn make_bucket(&self, bucket: &str) {
        let port = self.port;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let sent = write!(
                    s,
                    "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let mut reply = String::new();
                if sent.is_ok() && s.read_to_string(&mut reply).is_ok() && reply.starts_with("HTTP/1.1 200") {
                    return;
                }
                last = reply;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("creating bucket {bucket} on moto at port {port}: no 200 within 60 s (last reply: {last:?})");
    }
}
