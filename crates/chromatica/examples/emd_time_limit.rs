//! What `SearchOptions::time_limit` costs and buys on a real index: random
//! 1–3 colour palettes with random weights (as `serve/search.lua` sends),
//! k 50, one at a time; latency percentiles and solves, and, with a limit,
//! recall@50 and the summed EMD of the 50 against the exact search's.
//!
//! ```text
//! cargo run --release -p chromatica --example emd_time_limit -- INDEX_DIR [QUERIES [LIMIT_MS]]
//! ```

use chromatica::images::{ImageIndex, Query, SearchOptions};
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn main() -> chromatica::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: emd_time_limit INDEX_DIR [QUERIES [LIMIT_MS]]");
        std::process::exit(2);
    };
    let n: usize = args.get(1).map_or(Ok(300), |s| s.parse()).expect("QUERIES: a count");
    let limit = args.get(2).map(|s| Duration::from_secs_f64(s.parse::<f64>().expect("LIMIT_MS: a number") / 1e3));
    let index = ImageIndex::open_read_only(dir)?;
    let mut rng = chromatica::testing::Rng::new(12345);
    let (mut times, mut solves, mut cut, mut recall, mut ratio) = (Vec::new(), Vec::new(), 0, Vec::new(), Vec::new());
    for _ in 0..n {
        let spec: Vec<String> = (0..1 + rng.below(3))
            .map(|_| format!("{:06x}:{:.2}", rng.below(0x100_0000), 0.05 + rng.below(95) as f64 / 100.0))
            .collect();
        let q = Query::colors(&spec.join(","))?;
        let mut options = SearchOptions::default().k(50);
        options.time_limit = limit;
        let t = Instant::now();
        let found = index.search(&q, &options)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        solves.push(found.solves.unwrap_or(0));
        if limit.is_some() {
            cut += usize::from(found.timed_out);
            let exact = index.search(&q, &SearchOptions::default().k(50))?;
            let ids: HashSet<u64> = exact.hits.iter().map(|h| h.id).collect();
            recall.push(found.hits.iter().filter(|h| ids.contains(&h.id)).count() as f64 / exact.hits.len() as f64);
            let sum = |hits: &[chromatica::images::Hit]| hits.iter().map(|h| f64::from(h.distance)).sum::<f64>();
            ratio.push(sum(&found.hits) / sum(&exact.hits));
        }
    }
    times.sort_by(f64::total_cmp);
    solves.sort_unstable();
    let at = |q: f64| ((n - 1) as f64 * q) as usize;
    println!(
        "{n} queries: p50 {:.2} p90 {:.2} p99 {:.2} max {:.2} ms; solves p50 {} p99 {}",
        times[at(0.5)],
        times[at(0.9)],
        times[at(0.99)],
        times[n - 1],
        solves[at(0.5)],
        solves[at(0.99)]
    );
    if limit.is_some() {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "cut short {cut}; recall@50 vs exact {:.4}; EMD of the 50 / exact's {:.4}",
            mean(&recall),
            mean(&ratio)
        );
    }
    Ok(())
}
