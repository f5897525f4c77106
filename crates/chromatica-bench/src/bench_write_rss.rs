//! `chromatica-bench bench-write-rss` (hidden): the peak resident memory of
//! a fresh process that opens an index and runs one `compact` or `retrain`
//! on it (issue 10: both used to hold every live vector in memory); `thin`
//! first deletes every 100th live id, so a merged index has work to compact.
//!
//! Two peaks are printed: VmHWM from /proc/self/status (everything
//! resident, including the pages of the mapped segments the merge reads,
//! which are clean page cache the kernel can drop), and the peak of RssAnon
//! (heap and stacks: what the process itself allocates), sampled every
//! millisecond by a helper thread.

use crate::bench::dir_bytes;
use crate::bench_rss::read_rss;
use chromatica::{Error, Index, Result, TrainOptions};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Ids deleted by `--op thin`: every this-many-th live id, so that a
/// compaction of a fully merged index has tombstones to apply.
const THIN_EVERY: usize = 100;

pub fn run(index: &Path, op: &str) -> Result<()> {
    if !["compact", "retrain", "thin"].contains(&op) {
        return Err(Error::InvalidInput(format!("--op {op}: must be compact, retrain or thin")));
    }
    let disk_before = dir_bytes(index)?;
    let base = read_rss()?;
    let (stop, peak_anon) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(base.anon)));
    let sampler = {
        let (stop, peak_anon) = (stop.clone(), peak_anon.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = read_rss() {
                    peak_anon.fetch_max(r.anon, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let t = Instant::now();
    let idx = Index::open(index)?;
    let (vectors, segments_before) = (idx.len(), idx.snapshot().segment_count());
    let result = match op {
        "compact" => idx.compact().map(|_| ()),
        "retrain" => idx.retrain(&TrainOptions::default()).map(|_| ()),
        _ => idx.snapshot().live_ids().and_then(|ids| {
            let doomed: Vec<u64> = ids.into_iter().step_by(THIN_EVERY).collect();
            idx.delete(&doomed).map(|_| ())
        }),
    };
    let seconds = t.elapsed().as_secs_f64();
    let end = read_rss()?;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    result?;
    let res = json!({
        "op": op, "vectors": vectors, "segments_before": segments_before,
        "segments_after": idx.snapshot().segment_count(), "seconds": seconds,
        "disk_before": disk_before, "disk_after": dir_bytes(index)?,
        "baseline_rss": base.total, "peak_rss": end.peak,
        "peak_anon": peak_anon.load(Ordering::Relaxed).max(end.anon),
    });
    println!("{}", serde_json::to_string_pretty(&res).expect("plain data"));
    Ok(())
}
