//! Crash safety against real process death: the release binary runs an
//! add, delete or compact on an index directory and is killed with SIGKILL
//! after a random delay (0–30 ms, adapting so that most kills land while
//! the operation runs). After every kill, `chromatica verify` must pass and
//! the live ids must be those before the operation or those after it, in
//! full. (A killed process loses nothing the kernel already has, so this is
//! the interrupted-process half of crash safety; `tests/crash.rs` covers
//! power cuts.)
//!
//! `CHROMATICA_KILL_ITERS` sets the number of kills (default 500).

mod common;

use chromatica::testing::model::*;
use chromatica::testing::Rng;
use chromatica::{vecio, Index};
use common::{command, ok, p};
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn write_ids(path: &Path, ids: &[u64]) {
    let rows: Vec<i32> = ids.iter().map(|&i| i32::try_from(i).unwrap()).collect();
    vecio::write_ivecs(path, &rows, 1).unwrap();
}

/// Live ids read with the library, and a check that a search over every
/// list returns exactly them.
fn read_state(dir: &Path, ctx: &str) -> BTreeSet<u64> {
    let index = Index::open_read_only(dir).unwrap_or_else(|e| panic!("{ctx}: open_read_only: {e}"));
    let live: BTreeSet<u64> = index.snapshot().live_ids().unwrap().into_iter().collect();
    let queries = vectors(&mut Rng::mixed(9), 2);
    let p = params(live.len().max(1), NLIST);
    for hits in index.search(&queries, &p).unwrap_or_else(|e| panic!("{ctx}: search: {e}")) {
        let found: BTreeSet<u64> = hits.iter().map(|n| n.id).collect();
        assert_eq!(found.len(), hits.len(), "{ctx}: an id is returned twice");
        assert_eq!(found, live, "{ctx}: a search over every list does not return exactly the live ids");
    }
    live
}

#[test]
fn sigkill_at_random_points_leaves_a_consistent_index() {
    let iters = env_count("CHROMATICA_KILL_ITERS", 500);
    let start = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let (batch, ids_file) = (tmp.path().join("batch.fvecs"), tmp.path().join("ids.ivecs"));
    let mut rng = Rng::mixed(2024);
    ok(&["create", p(&dir), "--dim", "16", "--nlist", "4", "--m", "4", "--nbits", "8", "--nprobe", "4"]);
    let train = tmp.path().join("train.fvecs");
    vecio::write_fvecs(&train, &vectors(&mut rng, 1000), DIM).unwrap();
    ok(&["train", p(&dir), "--vectors", p(&train)]);

    let mut live: BTreeSet<u64> = BTreeSet::new();
    let mut next_id = 0u64;
    let (mut mid, mut mid_applied, mut mid_undone, mut finished) = (0, 0, 0, 0);
    let (mut leftovers_seen, mut writer_opens) = (0, 0);
    let mut kinds = [0usize; 3];
    let mut window = [30_000usize; 3]; // µs
    for i in 0..iters {
        let r = rng.below(100);
        let (kind, args, after): (usize, Vec<String>, BTreeSet<u64>) = if live.is_empty() || r < 50 {
            let ids: Vec<u64> = (next_id..next_id + 200).collect();
            next_id += 200;
            vecio::write_fvecs(&batch, &vectors(&mut rng, 200), DIM).unwrap();
            write_ids(&ids_file, &ids);
            let after = live.iter().copied().chain(ids).collect();
            let args = ["add", p(&dir), "--vectors", p(&batch), "--ids", p(&ids_file)];
            (0, args.map(String::from).to_vec(), after)
        } else if r < 80 {
            let all: Vec<u64> = live.iter().copied().collect();
            let k = rng.range(1, all.len().min(300));
            let ids = rng.sample(&all, k);
            write_ids(&ids_file, &ids);
            let gone: BTreeSet<u64> = ids.into_iter().collect();
            let after = live.difference(&gone).copied().collect();
            (1, ["delete", p(&dir), "--ids", p(&ids_file)].map(String::from).to_vec(), after)
        } else {
            (2, ["compact", p(&dir)].map(String::from).to_vec(), live.clone())
        };
        kinds[kind] += 1;
        let ctx = format!("kill {i} ({})", args[0]);
        let mut child = command(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        // A random delay in 0..window, the window (at most 30 ms) adapting
        // per kind of operation so that most kills land while it runs.
        std::thread::sleep(Duration::from_micros(rng.below(window[kind] + 1) as u64));
        let running = child.try_wait().unwrap().is_none();
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        let killed = status.signal() == Some(9);
        assert!(killed || status.success(), "{ctx}: the operation failed on its own: {status}");
        assert!(!killed || running, "{ctx}: killed after try_wait saw it exit");
        let out = ok(&["verify", p(&dir)]).0;
        leftovers_seen += usize::from(out.contains("leftover"));
        let got = read_state(&dir, &ctx);
        if got == after {
            mid_applied += usize::from(killed && kind != 2);
        } else {
            assert!(killed, "{ctx}: the operation completed but its effect is missing");
            assert_eq!(got, live, "{ctx}: the state is neither the one before nor the one after the operation");
            mid_undone += 1;
        }
        if killed {
            mid += 1;
            window[kind] = (window[kind] * 11 / 10).min(30_000);
        } else {
            finished += 1;
            window[kind] = (window[kind] * 4 / 5).max(500);
        }
        live = got;
        // A writer open removes what the killed process left behind.
        if rng.percent(15) || i + 1 == iters {
            drop(Index::open(&dir).unwrap_or_else(|e| panic!("{ctx}: writer open: {e}")));
            writer_opens += 1;
            let r = Index::verify(&dir).unwrap();
            assert!(r.leftovers.is_empty(), "{ctx}: leftovers after a writer open: {:?}", r.leftovers);
            assert_eq!(read_state(&dir, &ctx), live);
        }
    }
    eprintln!(
        "kill test: {iters} kills, {mid} mid-operation, all states consistent ({} adds, {} deletes, {} compactions; \
         {finished} kills after the process finished; {mid_applied} killed adds/deletes found applied in full, the \
         other {mid_undone} not at all; leftovers seen by verify after {leftovers_seen} kills; {writer_opens} writer opens \
         left none; {} live ids at the end; {:.1}s)",
        kinds[0],
        kinds[1],
        kinds[2],
        live.len(),
        start.elapsed().as_secs_f64()
    );
}
