//! `chromatica-bench serve-load`: an open-loop HTTP load generator for
//! `chromatica serve`'s `/search`. Each of `connections` keep-alive
//! connections sends its share of `rate` requests per second on a fixed
//! schedule, and a request's latency runs from the moment it was *due*, not
//! when it was sent, so a server that falls behind is charged for the wait
//! (no coordinated omission). `rate 0` is closed-loop: as fast as the
//! connections go (the saturation throughput). Queries are random 1–3
//! colour palettes with random weights (seeded).

use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `serve-load` was told.
pub struct LoadArgs {
    pub addr: SocketAddr,
    pub rate: f64,
    pub seconds: f64,
    pub connections: usize,
    pub k: usize,
    pub seed: u64,
}

/// What one run measured.
#[derive(Serialize, Debug)]
pub struct LoadReport {
    pub rate_asked: f64,
    pub connections: usize,
    pub seconds: f64,
    pub requests: usize,
    pub ok: usize,
    /// Non-200 answers and failed connections.
    pub errors: usize,
    pub throughput: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Request targets: `/search?colors=…&weights=…&k=…`.
fn targets(seed: u64, k: usize, n: usize) -> Vec<String> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let count = rng.random_range(1..=3usize);
            let colors: Vec<String> =
                (0..count).map(|_| format!("{:06x}", rng.random_range(0..0x100_0000u32))).collect();
            let weights: Vec<String> = (0..count).map(|_| format!("{:.2}", rng.random_range(0.05..1.0f64))).collect();
            format!("/search?colors={}&weights={}&k={k}", colors.join("%2C"), weights.join("%2C"))
        })
        .collect()
}

/// One keep-alive exchange; whether the answer was a 200.
fn exchange(conn: &mut Option<BufReader<TcpStream>>, addr: SocketAddr, target: &str) -> std::io::Result<bool> {
    if conn.is_none() {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        *conn = Some(BufReader::new(s));
    }
    let r = conn.as_mut().expect("connected");
    r.get_mut().write_all(format!("GET {target} HTTP/1.1\r\nHost: bench\r\n\r\n").as_bytes())?;
    let mut line = String::new();
    r.read_line(&mut line)?;
    let ok = line.split(' ').nth(1) == Some("200");
    let mut length = 0usize;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    r.read_exact(&mut body)?;
    Ok(ok)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs the load and reports.
pub fn measure(a: &LoadArgs) -> LoadReport {
    let targets = Arc::new(targets(a.seed, a.k, 8192));
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + Duration::from_secs_f64(a.seconds);
    let handles: Vec<_> = (0..a.connections)
        .map(|c| {
            let targets = targets.clone();
            let (addr, rate, conns) = (a.addr, a.rate, a.connections);
            std::thread::spawn(move || {
                let mut conn = None;
                let mut lat = Vec::new();
                let (mut ok, mut errors) = (0usize, 0usize);
                let mut n = 0usize;
                loop {
                    let due = if rate > 0.0 {
                        start + Duration::from_secs_f64((n * conns + c) as f64 / rate)
                    } else {
                        Instant::now().max(start)
                    };
                    if due >= end {
                        break;
                    }
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let target = &targets[(n * conns + c) % targets.len()];
                    match exchange(&mut conn, addr, target) {
                        Ok(true) => ok += 1,
                        Ok(false) => errors += 1,
                        Err(_) => {
                            errors += 1;
                            conn = None;
                        }
                    }
                    lat.push(due.elapsed().as_secs_f64() * 1e3);
                    n += 1;
                }
                (lat, ok, errors)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let (mut ok, mut errors) = (0, 0);
    for h in handles {
        let (l, o, e) = h.join().expect("a load thread panicked");
        lat.extend(l);
        ok += o;
        errors += e;
    }
    let seconds = a.seconds;
    lat.sort_by(f64::total_cmp);
    LoadReport {
        rate_asked: a.rate,
        connections: a.connections,
        seconds,
        requests: lat.len(),
        ok,
        errors,
        throughput: lat.len() as f64 / seconds,
        p50_ms: percentile(&lat, 0.50),
        p90_ms: percentile(&lat, 0.90),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().copied().unwrap_or(f64::NAN),
    }
}

/// `serve-load`: prints the report as one JSON line.
pub fn run(a: &LoadArgs) -> chromatica::Result<()> {
    if a.connections == 0 || a.seconds.is_nan() || a.seconds <= 0.0 || a.rate.is_nan() || a.rate < 0.0 || a.k == 0 {
        return Err(chromatica::Error::InvalidInput(
            "--connections and --k must be at least 1, --seconds positive, --rate at least 0".into(),
        ));
    }
    let r = measure(a);
    println!("{}", serde_json::to_string(&r).expect("plain data serialises"));
    Ok(())
}
