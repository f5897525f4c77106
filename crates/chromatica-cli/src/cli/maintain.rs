//! Maintenance: delete, compact, retrain, verify, recover.

use chromatica::{vecio, Index, Result};
use std::path::Path;
use std::time::Instant;

pub fn delete(dir: &Path, ids: &Path) -> Result<()> {
    let index = Index::open(dir)?;
    let ids = vecio::read_ids(ids)?;
    let r = index.delete(&ids)?;
    println!("deleted {} vectors; index holds {}", r.deleted, index.len());
    Ok(())
}

pub fn compact(dir: &Path) -> Result<()> {
    let index = Index::open(dir)?;
    let t = Instant::now();
    let r = index.compact()?;
    println!(
        "compacted {} segment(s) into {}, dropped {} deleted vectors in {:.2}s; index holds {}",
        r.segments_before,
        r.segments_after,
        r.dropped,
        t.elapsed().as_secs_f64(),
        index.len()
    );
    Ok(())
}

pub fn retrain(dir: &Path, seed: u64) -> Result<()> {
    let index = Index::open(dir)?;
    let t = Instant::now();
    let r = index.retrain(&chromatica::TrainOptions { seed, ..Default::default() })?;
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    let c = index.config();
    println!(
        "retrained on {} vectors in {:.2}s (nlist {}, coarse MSE {:.6}, reconstruction MSE {:.6}); re-encoded {} vectors",
        r.train_points,
        t.elapsed().as_secs_f64(),
        c.nlist,
        r.coarse_mse,
        r.reconstruction_mse,
        index.len()
    );
    Ok(())
}

pub fn verify(dir: &Path, json: bool) -> Result<()> {
    let r = Index::verify(dir)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r).expect("plain data"));
        return Ok(());
    }
    println!(
        "ok: generation {}, {} files and {} bytes checked, {} live vectors, {} deleted",
        r.generation, r.files, r.bytes, r.vectors, r.deleted
    );
    for l in &r.leftovers {
        println!("leftover (removed at the next writer open): {l}");
    }
    Ok(())
}

pub fn recover(dir: &Path) -> Result<()> {
    let r = Index::recover(dir)?;
    if r.moved_aside.is_empty() {
        println!("nothing to recover: the newest manifest is sound (generation {})", r.generation);
        return Ok(());
    }
    for (from, to) in &r.moved_aside {
        println!("kept aside: {from} -> {to}");
    }
    println!("recovered: the index opens at generation {} (the last good state, committed anew)", r.generation);
    Ok(())
}
