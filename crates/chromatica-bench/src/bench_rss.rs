//! `chromatica bench-rss` (hidden): the resident memory of a fresh process
//! that opens an index and searches it, as bench/faiss_ivfpq.py `--rss-only`
//! measures faiss. bench/compare.py and `bench-scale` run it as a child
//! process so that the numbers are that process's own.
//!
//! Order: load the queries, start the one search thread, read the baseline;
//! open the index, read again; run the queries one per call, read again.
//! The baseline is the empty process (binary, allocator, queries); the
//! interesting figures are the two increases over it.

use chromatica::vecio::VectorFile;
use chromatica::{Error, Index, Result, SearchParams};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

/// Resident memory of this process, in bytes, from /proc/self/status.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rss {
    /// VmRSS: everything resident (anonymous, file-backed, shared).
    pub total: u64,
    /// RssAnon: heap and stacks.
    pub anon: u64,
    /// RssFile: resident pages of mapped files (our codes, ids, refine store).
    pub file: u64,
    /// VmHWM: the peak of VmRSS so far.
    pub peak: u64,
}

/// The value of `key` (e.g. "VmRSS") in /proc/PID/status text, in bytes.
/// The kernel prints these as `VmRSS:     1234 kB`.
pub fn status_bytes(status: &str, key: &str) -> Option<u64> {
    let rest = status.lines().find_map(|l| l.split_once(':').filter(|(k, _)| *k == key))?.1;
    let mut words = rest.split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => value.checked_mul(1024),
        _ => None,
    }
}

/// Parses the four figures of [`Rss`] out of /proc/PID/status text.
pub fn parse_rss(status: &str) -> Option<Rss> {
    Some(Rss {
        total: status_bytes(status, "VmRSS")?,
        anon: status_bytes(status, "RssAnon")?,
        file: status_bytes(status, "RssFile")?,
        peak: status_bytes(status, "VmHWM")?,
    })
}

pub fn read_rss() -> Result<Rss> {
    let path = Path::new("/proc/self/status");
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_rss(&text).ok_or_else(|| Error::InvalidInput("/proc/self/status: no VmRSS/RssAnon/RssFile/VmHWM".into()))
}

pub struct RssArgs<'a> {
    pub index: &'a Path,
    pub queries: &'a Path,
    pub count: usize,
    pub k: usize,
}

pub fn run(a: RssArgs<'_>) -> Result<()> {
    let file = VectorFile::open(a.queries)?;
    let queries = file.read_all()?;
    let d = file.dim();
    if a.count == 0 || a.k == 0 {
        return Err(Error::invalid_argument("--count", "--count and --k must be at least 1"));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| Error::InvalidInput(format!("cannot start a search thread: {e}")))?;
    let res = pool.install(|| -> Result<serde_json::Value> {
        let base = read_rss()?;
        let t = Instant::now();
        let index = Index::open_read_only(a.index)?;
        let open_ms = t.elapsed().as_secs_f64() * 1e3;
        let opened = read_rss()?;
        let params = SearchParams::new(a.k);
        for q in queries.chunks_exact(d).cycle().take(a.count) {
            std::hint::black_box(index.search(q, &params)?);
        }
        let searched = read_rss()?;
        Ok(json!({
            "engine": "chromatica",
            "queries": a.count, "k": a.k, "open_ms": open_ms,
            "baseline_rss": base.total, "baseline_anon": base.anon,
            "open_rss": opened.total, "open_anon": opened.anon, "open_file": opened.file,
            "queries_rss": searched.total, "queries_anon": searched.anon, "queries_file": searched.file,
            "peak_rss": searched.peak,
        }))
    })?;
    println!("{}", serde_json::to_string_pretty(&res).expect("plain data"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tchromatica\nVmPeak:\t  20000 kB\nVmHWM:\t    9000 kB\nVmRSS:\t    8000 kB\n\
                          RssAnon:\t    5000 kB\nRssFile:\t    2900 kB\nRssShmem:\t     100 kB\nThreads:\t2\n";

    #[test]
    fn reads_kilobyte_fields_as_bytes() {
        let r = parse_rss(STATUS).unwrap();
        assert_eq!(r, Rss { total: 8000 * 1024, anon: 5000 * 1024, file: 2900 * 1024, peak: 9000 * 1024 });
        // A key is matched whole, not as a prefix of another key.
        assert_eq!(status_bytes(STATUS, "Rss"), None);
        assert_eq!(status_bytes(STATUS, "RssShmem"), Some(100 * 1024));
    }

    #[test]
    fn rejects_missing_or_malformed_fields() {
        assert_eq!(status_bytes(STATUS, "Threads"), None); // no unit
        assert_eq!(status_bytes("VmRSS:\tlots kB\n", "VmRSS"), None);
        assert_eq!(status_bytes("VmRSS:\t12 MB\n", "VmRSS"), None);
        assert_eq!(status_bytes("VmRSS\n", "VmRSS"), None);
        assert_eq!(parse_rss("VmRSS:\t12 kB\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let r = read_rss().unwrap();
        assert!(r.total > 0 && r.anon > 0 && r.peak >= r.total, "{r:?}");
    }
}
