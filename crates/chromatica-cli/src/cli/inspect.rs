//! `chromatica inspect`: a human summary, or the same facts as JSON.

use chromatica::Result;
use std::path::Path;

fn mib(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64)
    } else {
        format!("{b} B")
    }
}

pub fn run(dir: &Path, json: bool) -> Result<()> {
    let index = super::open_read_only(dir)?;
    let i = index.inspect();
    if json {
        println!("{}", serde_json::to_string_pretty(&i).expect("plain data serialises"));
        return Ok(());
    }
    let c = &i.config;
    println!("index       {}", dir.display());
    println!("format      version {}, manifest generation {}", i.format_version, i.generation);
    println!(
        "config      dim {}, nlist {}, m {}, nbits {} ({} bytes per code), nprobe {}, metric L2{}",
        c.dim,
        c.nlist,
        c.m,
        c.nbits,
        i.code_size,
        c.nprobe,
        if c.fast_scan { ", fast-scan (codes in blocks of 32)" } else { "" }
    );
    let trained = match (i.trained, i.train_points) {
        (false, _) => "no".into(),
        // Training needs at least nlist points: none means imported quantizers.
        (true, 0) => "yes (imported quantizers)".into(),
        (true, n) => format!("yes, on {n} vectors"),
    };
    println!("trained     {trained}");
    println!("vectors     {} live, {} deleted, next id {}", i.vectors, i.deleted, i.next_id);
    println!("segments    {}", i.segments.len());
    for s in &i.segments {
        println!(
            "  {}  {:>10} vectors ({} deleted)  {:>12}  generation {}  {}-byte ids",
            s.file,
            s.vectors,
            s.deleted,
            mib(s.bytes),
            s.generation,
            s.id_width
        );
    }
    println!("tombstones  {}", i.tombstones.len());
    for t in &i.tombstones {
        println!("  {}  {:>10} ids  generation {} (hides them in older segments)", t.file, t.ids, t.generation);
    }
    let l = &i.lists;
    println!(
        "lists       {} lists, {} empty; sizes min {} / p50 {} / p90 {} / p99 {} / max {}, mean {:.1}, imbalance {:.3}",
        l.nlist, l.empty, l.min, l.p50, l.p90, l.p99, l.max, l.mean, l.imbalance
    );
    let m = &i.memory;
    println!("memory      (everything counted, not just codes)");
    println!("  codes                 {:>12}  ({:.1} B/vector)", mib(m.code_bytes), m.code_bytes_per_vector);
    println!("  ids                   {:>12}", mib(m.id_bytes));
    println!("  quantizers            {:>12}  (coarse centroids + PQ codebooks)", mib(m.quantizer_bytes));
    println!("  precomputed table     {:>12}", mib(m.precomputed_table_bytes));
    println!("  refine store          {:>12}  (exact vectors for re-ranking)", mib(m.refine_bytes));
    println!("  records               {:>12}  (paths, sizes, modification times)", mib(m.record_bytes));
    println!(
        "  metadata              {:>12}  (headers, list directories, padding, tombstones, manifest)",
        mib(m.metadata_bytes)
    );
    println!("  on disk               {:>12}  ({:.1} B/vector)", mib(m.disk_bytes), m.disk_bytes_per_vector);
    println!(
        "  resident heap         {:>12}  ({:.1} B/vector; codes and ids are mapped, {} more as pages are read)",
        mib(m.resident_heap_bytes),
        m.resident_bytes_per_vector,
        mib(m.mapped_bytes)
    );
    println!("  flat float32          {:>12}", mib(m.flat_f32_bytes));
    println!(
        "  compression           {:.0}× counting codes only, {:.1}× counting everything on disk",
        m.compression_codes_only, m.compression_total
    );
    let d = &i.disk_bytes;
    println!(
        "disk_bytes  codes {} + ids {} + quantizers {} + refine {} + records {} + metadata {} = {}",
        d.codes, d.ids, d.quantizers, d.refine, d.records, d.metadata, d.total
    );
    Ok(())
}
