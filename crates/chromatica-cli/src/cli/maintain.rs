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

/// `verify --all`: the damage report, then a non-zero exit naming the first
/// problem when anything is damaged.
pub fn verify_all(dir: &Path, json: bool) -> Result<()> {
    let r = Index::verify_all(dir)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r).expect("plain data"));
    } else {
        match r.generation {
            Some(g) => println!("manifest generation {g}: {} files read", r.files_checked),
            None => println!("no manifest decodes: nothing of the index can be read"),
        }
        for p in &r.problems {
            let at = p.offset.map_or("-".to_string(), |o| o.to_string());
            println!("problem  {}  byte {at}  {}", super::safe(&p.file), super::safe(&p.what));
        }
        if r.problems_not_listed > 0 {
            println!("problem  ... and {} more not listed", r.problems_not_listed);
        }
        if r.generation.is_some() {
            println!(
                "quantizers {}, tombstones {}",
                if r.quantizers_readable { "readable" } else { "DAMAGED (codes cannot be searched)" },
                if r.tombstones_readable { "readable" } else { "DAMAGED (some deleted vectors may count as live)" }
            );
            for s in &r.segments {
                let state = if !s.opened {
                    "DOES NOT OPEN".to_string()
                } else if s.damaged_lists.is_empty() {
                    "ok".to_string()
                } else {
                    format!("{} damaged list(s): {}", s.damaged_lists.len(), list_ids(&s.damaged_lists))
                };
                println!(
                    "segment  {}  {} vectors: {} live readable, {} unreadable; {} problem(s); {state}",
                    s.file, s.vectors, s.live_readable, s.unreadable, s.problems
                );
            }
            println!(
                "readable {} of {} lists in every segment; {} live vectors readable, {} unreadable",
                r.lists_readable, r.nlist, r.vectors_readable, r.vectors_unreadable
            );
        }
        for l in &r.leftovers {
            println!("leftover (removed at the next writer open): {l}");
        }
        if r.sound {
            println!("ok: no problem found");
        }
    }
    match r.problems.first() {
        None => Ok(()),
        Some(p) => {
            let more = r.problems.len() as u64 - 1 + r.problems_not_listed;
            Err(chromatica::Error::corrupt(
                p.file.clone(),
                p.offset.unwrap_or(0),
                format!("{} (and {more} more problem(s); damage report above)", p.what),
            ))
        }
    }
}

/// Up to 20 list numbers, comma-separated.
fn list_ids(lists: &[usize]) -> String {
    let shown: Vec<String> = lists.iter().take(20).map(|l| l.to_string()).collect();
    let more = lists.len().saturating_sub(20);
    if more > 0 {
        format!("{} … ({more} more)", shown.join(","))
    } else {
        shown.join(",")
    }
}
