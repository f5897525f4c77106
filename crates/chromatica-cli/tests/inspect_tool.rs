//! The offline inspection tool (issue 14): its numbers against brute-force
//! computation on small indexes, its advice on constructed cases (a skewed
//! index, one that grew after training, heavy deletes, too small an nprobe),
//! the damage report (`verify --all`) against bit flips of every file of
//! the corruption suite's index, `inspect --id/--list/--segment`, `explain`,
//! and the CLI's text, JSON and HTML.

mod common;

use chromatica::testing::layout::{get_u32, get_u64};
use chromatica::testing::reference::{exact_knn, stored_rows};
use chromatica::testing::Rng;
use chromatica::testing::SnapshotInternals;
use chromatica::{Config, HealthOptions, Index, Metric, Rerank, SearchParams, TrainOptions};
use common::*;
use std::path::Path;

const DIM: usize = 16;

fn cfg(nlist: usize, nprobe: usize) -> Config {
    let mut c = Config::default();
    (c.dim, c.nlist, c.m, c.nbits, c.nprobe, c.metric, c.refine) = (DIM, nlist, 4, 6, nprobe, Metric::L2, true);
    c
}

/// `n` vectors around `clusters` centres (all of them around centre 0 when
/// `skew`), spread 0.7.
fn data(seed: u64, n: usize, clusters: usize, skew: bool) -> Vec<f32> {
    let mut c = Rng::mixed(99);
    let centres: Vec<f64> = (0..clusters * DIM).map(|_| c.normal() * 4.0).collect();
    let mut rng = Rng::mixed(seed);
    let mut out = Vec::with_capacity(n * DIM);
    for i in 0..n {
        let k = if skew { 0 } else { i % clusters };
        for j in 0..DIM {
            out.push((centres[k * DIM + j] + rng.normal() * 0.7) as f32);
        }
    }
    // As the refine store keeps them: brute force over these is what the
    // engine computes from its stored values.
    stored_rows(&out, DIM)
}

fn opts(sample: usize, queries: usize) -> HealthOptions {
    let mut o = HealthOptions::default();
    o.sample = sample;
    o.queries = queries;
    o
}

fn trained(dir: &Path, c: Config, train: &[f32]) -> Index {
    let index = Index::create(dir, c).unwrap();
    index.train(train, &TrainOptions::default(), &mut |_| ()).unwrap();
    index
}

fn actions(h: &chromatica::HealthReport) -> Vec<&str> {
    h.advice.iter().map(|a| a.action.as_str()).collect()
}

/// With every stored vector sampled (and every one a query), the health
/// report's errors and recall are exactly what brute force computes.
#[test]
fn health_numbers_match_brute_force() {
    let tmp = tempfile::tempdir().unwrap();
    let base = data(1, 400, 10, false);
    let index = trained(&tmp.path().join("i"), cfg(8, 2), &base);
    index.add(&base, None).unwrap();
    let h = index.health(&opts(400, 400)).unwrap();
    assert_eq!((h.vectors, h.sample, h.recall_queries), (400, 400, 400));

    // Reconstruction and coarse errors: decode each stored code by hand.
    let snap = index.snapshot();
    let q = snap.quantizers().unwrap();
    let (mut rec, mut coarse, mut norm) = (0f64, 0f64, 0f64);
    for id in 0..400u64 {
        let x = &base[id as usize * DIM..(id as usize + 1) * DIM];
        let e = index.explain_id(id).unwrap();
        assert!(e.live && e.copies.len() == 1);
        let c = &e.copies[0];
        let code: Vec<u8> =
            (0..c.code.len() / 2).map(|i| u8::from_str_radix(&c.code[2 * i..2 * i + 2], 16).unwrap()).collect();
        let mut y = vec![0f32; DIM];
        q.decode(c.list, &code, &mut y);
        let r: f64 = x.iter().zip(&y).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
        let ce: f64 = x.iter().zip(q.centroid(c.list)).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
        assert!((r - c.reconstruction_error.unwrap() as f64).abs() < 1e-4 * (1.0 + r), "id {id}");
        assert!((ce - c.coarse_error.unwrap() as f64).abs() < 1e-4 * (1.0 + ce), "id {id}");
        rec += r;
        coarse += ce;
        norm += x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
    }
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 * (1.0 + b.abs());
    assert!(close(h.reconstruction_error.unwrap(), rec / 400.0), "{:?} vs {}", h.reconstruction_error, rec / 400.0);
    assert!(close(h.coarse_error.unwrap(), coarse / 400.0));
    assert!(close(h.mean_norm.unwrap(), norm / 400.0));

    // Recall: exact 10 nearest of each vector among the others, against
    // stage 1 (no re-rank) and the re-ranked search, both excluding self.
    let truth: Vec<Vec<u64>> = exact_knn(&base, &base, DIM, 11)
        .into_iter()
        .enumerate()
        .map(|(i, t)| t.into_iter().filter(|&j| j != i as u64).take(10).collect())
        .collect();
    assert_eq!(h.recall.iter().map(|p| p.nprobe).collect::<Vec<_>>(), vec![2, 4, 8]);
    for p in &h.recall {
        for (rerank, got) in [(Rerank::Off, p.recall_at_10), (Rerank::L2, p.reranked_recall_at_10.unwrap())] {
            let res = index.search(&base, &SearchParams::new(11).nprobe(p.nprobe).rerank(rerank)).unwrap();
            let mut hit = 0;
            for (i, (r, t)) in res.iter().zip(&truth).enumerate() {
                let r: Vec<u64> = r.iter().map(|n| n.id).filter(|&j| j != i as u64).take(10).collect();
                hit += t.iter().filter(|j| r.contains(j)).count();
            }
            let want = hit as f64 / 4000.0;
            assert!((got - want).abs() <= 0.005, "nprobe {} {rerank:?}: {got} vs brute force {want}", p.nprobe);
        }
    }
    // Probing every list and re-ranking exactly finds the exact neighbours.
    assert!(h.recall.last().unwrap().reranked_recall_at_10.unwrap() > 0.99);

    // Imbalance and per-list sizes against a count by hand.
    let mut sizes = vec![0f64; 8];
    for id in 0..400u64 {
        sizes[index.explain_id(id).unwrap().copies[0].list] += 1.0;
    }
    let want = 8.0 * sizes.iter().map(|s| s * s).sum::<f64>() / 400f64.powi(2);
    assert!((h.imbalance - want).abs() < 1e-9);
    assert_eq!(h.lists.iter().map(|l| l.live as f64).collect::<Vec<_>>(), sizes);
    for l in &h.lists {
        let me = q.centroid(l.list);
        let next = (0..8)
            .filter(|&o| o != l.list)
            .map(|o| me.iter().zip(q.centroid(o)).map(|(a, b)| (a - b) * (a - b)).sum::<f32>())
            .fold(f32::INFINITY, f32::min);
        assert!((l.next_centroid_distance.unwrap() - next).abs() <= 1e-4 * (1.0 + next));
    }
    // A healthy index: balanced enough, not grown, nothing deleted.
    assert!(!actions(&h).contains(&"compact"), "{:?}", h.advice);
}

/// The training baseline: stored with the quantizers (read back after
/// reopening), what training reported and brute force on the training
/// points; unseen vectors of the training distribution measure near it (no
/// advice), shifted ones grow both errors past 1.25× and the advice names
/// the growth with its numbers, and a retrain measures a new baseline. The
/// CLI prints the comparison, as text, JSON and in the HTML report.
#[test]
fn drift_against_the_training_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let train = data(21, 1500, 8, false);
    let index = Index::create(&dir, cfg(8, 8)).unwrap();
    let report = index.train(&train, &TrainOptions::default(), &mut |_| ()).unwrap();
    index.add(&data(22, 1500, 8, false), None).unwrap();
    drop(index);
    let index = Index::open(&dir).unwrap();
    let h = index.health(&opts(1500, 10)).unwrap();
    let b = h.baseline.expect("trained by this build: a baseline");
    assert_eq!(b.points, 1500);
    assert_eq!((b.coarse_error, b.reconstruction_error), (report.coarse_mse, report.reconstruction_mse));
    let norm: f64 = train.chunks(DIM).map(|x| x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>()).sum::<f64>() / 1500.0;
    assert!((b.mean_norm - norm).abs() <= 1e-4 * norm, "{} vs {norm}", b.mean_norm);
    assert!(b.imbalance >= 1.0 && b.imbalance < 2.0, "{}", b.imbalance);
    let g = h.reconstruction_growth.unwrap();
    assert_eq!(g, h.reconstruction_error.unwrap() / b.reconstruction_error);
    assert_eq!(h.coarse_growth.unwrap(), h.coarse_error.unwrap() / b.coarse_error);
    assert!((0.8..1.25).contains(&g), "unseen vectors of the same distribution: {g}");
    assert!(!h.advice.iter().any(|a| a.message.contains("grew")), "{:?}", h.advice);

    // Shifted: 1,500 more vectors 1.5 away on every coordinate.
    let shifted: Vec<f32> = data(23, 1500, 8, false).iter().map(|v| v + 1.5).collect();
    index.add(&shifted, None).unwrap();
    let h = index.health(&opts(3000, 10)).unwrap();
    for what in ["reconstruction", "coarse"] {
        let a = h
            .advice
            .iter()
            .find(|a| a.action == "retrain" && a.message.starts_with(&format!("retrain: {what} error grew")))
            .unwrap_or_else(|| panic!("no {what} advice: {:?}", h.advice));
        assert_eq!(a.threshold, chromatica::thresholds::ERROR_GROWTH);
        let growth = if what == "coarse" { h.coarse_growth } else { h.reconstruction_growth }.unwrap();
        assert!(a.value == growth && growth >= 1.25, "{growth}");
        assert!(a.message.contains(&format!("{:.0}%", 100.0 * (growth - 1.0))), "{}", a.message);
        assert!(a.message.contains("1500 training points"), "{}", a.message);
    }
    let d = p(&dir);
    let (s, _) = ok(&["inspect", d, "--health", "--sample", "3000", "--queries", "10"]);
    assert!(s.contains("drift       since training (1500 points)") && s.contains("error grew"), "{s}");
    let (s, _) = ok(&["inspect", d, "--health", "--json", "--queries", "10"]);
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["baseline"]["points"].as_u64(), Some(1500));
    assert!(v["reconstruction_growth"].as_f64().unwrap() >= 1.25);
    let html = tmp.path().join("r.html");
    ok(&["inspect", d, "--html", p(&html), "--queries", "10"]);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Drift since training") && page.contains("at training (1500 points)"));

    // A retrain measures the baseline on what is stored now.
    index.retrain(&TrainOptions::default()).unwrap();
    let h = index.health(&opts(3000, 10)).unwrap();
    let b = h.baseline.unwrap();
    assert!(b.points > 1500, "{b:?}");
    assert!(h.reconstruction_growth.unwrap() < 1.25, "{h:?}");
    assert!(!h.advice.iter().any(|a| a.message.contains("grew")), "{:?}", h.advice);
}

#[test]
fn advice_on_constructed_cases() {
    let tmp = tempfile::tempdir().unwrap();
    // Skewed: trained on ten clusters, then every vector added near one.
    let index = trained(&tmp.path().join("skew"), cfg(16, 16), &data(2, 800, 16, false));
    index.add(&data(3, 600, 16, true), None).unwrap();
    let h = index.health(&opts(200, 20)).unwrap();
    assert!(h.imbalance > 2.0, "{}", h.imbalance);
    let a = h.advice.iter().find(|a| a.action == "retrain" && a.threshold == 2.0 && a.value == h.imbalance);
    assert!(a.is_some_and(|a| a.message.contains("imbalance")), "{:?}", h.advice);
    assert!(!actions(&h).contains(&"compact"));

    // Grown: 300 vectors when trained (retrain re-trains on what is
    // stored), then 700 more.
    let index = Index::create(tmp.path().join("grow"), cfg(8, 8)).unwrap();
    let all = data(4, 1000, 8, false);
    index.add(&all[..300 * DIM], None).unwrap();
    index.retrain(&TrainOptions::default()).unwrap();
    let before = index.health(&opts(100, 10)).unwrap();
    assert_eq!(before.trained_vectors, 300);
    assert!(!before.advice.iter().any(|a| a.message.contains("when trained")), "{:?}", before.advice);
    index.add(&all[300 * DIM..], None).unwrap();
    let h = index.health(&opts(100, 10)).unwrap();
    assert!((h.growth_since_training - 1000.0 / 300.0).abs() < 1e-9);
    let a =
        h.advice.iter().find(|a| a.action == "retrain" && a.message.contains("when trained")).expect("growth advice");
    assert!(a.message.contains("1000") && a.message.contains("300"), "{}", a.message);

    // Heavy deletes: 40% of the stored vectors, then a compaction clears it.
    let dead: Vec<u64> = (0..1000).filter(|i| i % 5 < 2).collect();
    index.delete(&dead).unwrap();
    let h = index.health(&opts(100, 10)).unwrap();
    assert!((h.deleted_fraction - 0.4).abs() < 1e-9);
    let a = h.advice.iter().find(|a| a.action == "compact").expect("compact advice");
    assert!(a.message.contains("40%"), "{}", a.message);
    index.compact().unwrap();
    assert!(!actions(&index.health(&opts(100, 10)).unwrap()).contains(&"compact"));

    // nprobe 1 of 32 lists over overlapping clusters: a larger nprobe helps.
    let base = data(6, 2000, 4, false);
    let index = trained(&tmp.path().join("probe"), cfg(32, 1), &base);
    index.add(&base, None).unwrap();
    let h = index.health(&opts(300, 100)).unwrap();
    let now = h.recall[0].recall_at_10;
    let a =
        h.advice.iter().find(|a| a.action == "nprobe").unwrap_or_else(|| panic!("no nprobe advice: {:?}", h.recall));
    let better = h.recall.iter().find(|p| p.nprobe as f64 == a.value).unwrap();
    assert!(now < 0.9 && better.recall_at_10 >= now + 0.05);
    assert!(a.message.contains(&format!("from {now:.2} to {:.2}", better.recall_at_10)), "{}", a.message);
}

#[test]
fn id_list_segment_and_explain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("i");
    let base = data(7, 600, 8, false);
    let index = trained(&dir, cfg(8, 2), &base);
    index.add(&base[..300 * DIM], None).unwrap();
    index.add(&base[300 * DIM..], None).unwrap();
    index.delete(&[5, 400]).unwrap();
    let del: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".del"))
        .collect();
    assert_eq!(del.len(), 1);
    let r = index.explain_id(5).unwrap();
    assert!(!r.live && r.copies.len() == 1 && r.copies[0].deleted);
    assert_eq!(r.copies[0].deleted_by.as_deref(), Some(del[0].as_str()));
    // Re-added: a live copy in a newer segment besides the hidden one.
    index.add(&base[5 * DIM..6 * DIM], Some(&[5])).unwrap();
    let r = index.explain_id(5).unwrap();
    assert!(r.live && r.copies.len() == 2 && r.copies[0].deleted && !r.copies[1].deleted);
    assert!(index.explain_id(123_456).unwrap().copies.is_empty());

    // Lists: sizes add up to the live vectors; sampled ids are in the list.
    let mut live = 0;
    for l in 0..8 {
        let lr = index.explain_list(l).unwrap();
        assert_eq!(lr.live, lr.segments.iter().map(|s| s.live).sum::<u64>());
        live += lr.live;
        for &id in &lr.sample_ids {
            assert!(index.explain_id(id).unwrap().copies.iter().any(|c| c.list == l && !c.deleted));
        }
        assert_eq!(lr.nearest_lists.len(), 5);
        assert!(lr.nearest_lists.windows(2).all(|w| w[0].distance <= w[1].distance));
        assert!(lr.nearest_lists.iter().all(|n| n.list != l));
    }
    assert_eq!(live, index.len());
    assert!(index.explain_list(8).unwrap_err().to_string().contains("below nlist (8)"));

    // Segments: the second holds id 400, hidden by the tombstone.
    let s = index.explain_segment(1).unwrap();
    assert_eq!((s.vectors, s.deleted, s.hidden_by.clone()), (300, 1, vec![(del[0].clone(), 1)]));
    assert_eq!(s.largest_lists.iter().map(|l| l.1).sum::<u64>(), 300);
    assert!(index.explain_segment(3).unwrap_err().to_string().contains("below the segment count (3)"));

    // Explain: a stored vector as its own query comes back first.
    let x = &base[10 * DIM..11 * DIM];
    let e = index.explain_query(x, 10, &SearchParams::new(5)).unwrap();
    assert!(e.live && e.list_probed && e.returned && e.final_rank == Some(1) && e.final_distance == Some(0.0), "{e:?}");
    // With nprobe 1 and a query at another list's centroid, id 10's list is not probed.
    let snap = index.snapshot();
    let q = snap.quantizers().unwrap();
    let own = e.list.unwrap();
    let other = (0..8).find(|&l| l != own).unwrap();
    let e = index.explain_query(q.centroid(other), 10, &SearchParams::new(5).nprobe(1)).unwrap();
    assert!(!e.list_probed && !e.returned && e.stage1_rank.is_none() && e.stage1_rank_all_lists.is_some(), "{e:?}");
    assert!(e.list_rank.unwrap() > 1 && e.reason.contains("only 1 lists were probed"), "{}", e.reason);
    // Its rank without re-ranking equals its position in a stage-1 search.
    let e = index.explain_query(x, 77, &SearchParams::new(600).nprobe(8).rerank(Rerank::Off)).unwrap();
    let all = index.search(x, &SearchParams::new(600).nprobe(8).rerank(Rerank::Off)).unwrap();
    let pos = all[0].iter().position(|n| n.id == 77).unwrap() + 1;
    assert_eq!((e.stage1_rank, e.final_rank), (Some(pos), Some(pos)));
    // A deleted id: explained as such.
    let e = index.explain_query(x, 400, &SearchParams::new(5)).unwrap();
    assert!(!e.live && e.reason.contains("no live copy"));
    assert!(index.explain_query(&x[..4], 10, &SearchParams::new(5)).is_err());
}

/// The list of a segment whose codes or ids hold byte `at` (FORMAT.md's offsets).
fn list_of_byte(seg: &[u8], at: usize, nlist: usize) -> Option<usize> {
    let (code_size, id_width, n) = (get_u32(seg, 20) as usize, get_u32(seg, 24) as usize, get_u64(seg, 32) as usize);
    let (lists, codes, ids) = (get_u64(seg, 48) as usize, get_u64(seg, 60) as usize, get_u64(seg, 72) as usize);
    let vector = if (codes..codes + n * code_size).contains(&at) {
        (at - codes) / code_size
    } else if (ids..ids + n * id_width).contains(&at) {
        (at - ids) / id_width
    } else {
        return None;
    };
    (0..nlist).find(|&l| {
        let (start, count) = (get_u64(seg, lists + 16 * l) as usize, get_u32(seg, lists + 16 * l + 8) as usize);
        (start..start + count).contains(&vector)
    })
}

/// Every file, a bit flipped in every 3rd byte (and every byte of segment
/// codes and ids): the damage report is never sound, names the file with
/// an offset inside it, and a flipped code/id byte marks exactly its list
/// damaged while the rest stays readable. Two damaged files: both reported.
#[test]
fn damage_report_on_the_corruption_suite() {
    use chromatica::testing::model::NLIST;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let files = chromatica::testing::model::corruption_suite_index(&dir);
    let intact = Index::verify_all(&dir).unwrap();
    assert!(intact.sound && intact.problems.is_empty(), "{intact:?}");
    let live = Index::open_read_only(&dir).unwrap().len();
    assert_eq!((intact.vectors_readable, intact.vectors_unreadable, intact.lists_readable), (live, 0, NLIST));
    let (mut flips, mut list_flips) = (0, 0);
    for (name, orig) in &files {
        let path = dir.join(name);
        for at in 0..orig.len() {
            let list = if name.ends_with(".seg") { list_of_byte(orig, at, NLIST) } else { None };
            if at % 3 != 0 && list.is_none() {
                continue;
            }
            let mut bad = orig.clone();
            bad[at] ^= 1 << (at % 8);
            std::fs::write(&path, &bad).unwrap();
            let ctx = format!("{name} byte {at}");
            let r = Index::verify_all(&dir).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert!(!r.sound && !r.problems.is_empty(), "{ctx}: sound");
            let p = r
                .problems
                .iter()
                .find(|p| p.file.ends_with(name.as_str()))
                .unwrap_or_else(|| panic!("{ctx}: {:?}", r.problems));
            if let Some(o) = p.offset {
                assert!(o < orig.len() as u64, "{ctx}: offset {o}");
            }
            if let Some(l) = list {
                let seg = r.segments.iter().find(|s| &s.file == name).unwrap();
                assert_eq!(seg.damaged_lists, vec![l], "{ctx}: {:?}", r.problems);
                assert_eq!(r.damaged_lists, vec![l]);
                assert!(r.vectors_readable < live && r.vectors_readable > 0, "{ctx}");
                let lost: u64 = r.segments.iter().map(|s| s.unreadable).sum();
                assert_eq!(lost, r.vectors_unreadable);
                list_flips += 1;
            }
            flips += 1;
        }
        std::fs::write(&path, orig).unwrap();
    }
    assert!(flips > 500 && list_flips > 100, "{flips} {list_flips}");
    // Two files damaged at once: both are listed (verify stops at one).
    let segs: Vec<&(String, Vec<u8>)> = files.iter().filter(|(n, _)| n.ends_with(".seg")).collect();
    for (n, b) in &segs {
        let mut bad = b.clone();
        let at = get_u64(b, 60) as usize; // first code byte
        bad[at] ^= 1;
        std::fs::write(dir.join(n), &bad).unwrap();
    }
    let r = Index::verify_all(&dir).unwrap();
    for (n, _) in &segs {
        assert!(r.problems.iter().any(|p| p.file.ends_with(n.as_str())), "{n}: {:?}", r.problems);
    }
    assert!(Index::verify(&dir).is_err());
    // The CLI: exit 1, every problem with its file and byte, JSON parses.
    let (out, err) = (run(&["verify", p(&dir), "--all"]), text(&run(&["verify", p(&dir), "--all"]).stderr));
    assert!(!out.status.success());
    let stdout = text(&out.stdout);
    for (n, _) in &segs {
        assert!(
            stdout.lines().any(|l| l.starts_with("problem") && l.contains(n.as_str()) && l.contains("byte ")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("live vectors readable") && err.contains("more problem(s)"), "{stdout}\n{err}");
    let out = run(&["verify", p(&dir), "--all", "--json"]);
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sound"], false);
    assert!(v["problems"].as_array().unwrap().len() >= 2 && v["problems"][0]["offset"].is_u64());
    for (n, b) in &segs {
        std::fs::write(dir.join(n), b).unwrap();
    }
    let (stdout, _) = ok(&["verify", p(&dir), "--all"]);
    assert!(stdout.contains("ok: no problem found"), "{stdout}");
}

#[test]
fn cli_text_json_and_html() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("i");
    let base = data(8, 500, 8, false);
    let index = trained(&dir, cfg(8, 2), &base);
    index.add(&base, None).unwrap();
    index.delete(&[3]).unwrap();
    drop(index);
    let vf = tmp.path().join("v.fvecs");
    chromatica::vecio::write_fvecs(&vf, &base, DIM).unwrap();
    let d = p(&dir);
    let (s, _) = ok(&["inspect", d, "--health", "--sample", "200", "--queries", "20"]);
    assert!(s.contains("imbalance") && s.contains("estimated recall@10"), "{s}");
    let (s, _) = ok(&["inspect", d, "--health", "--json", "--sample", "200", "--queries", "20"]);
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    for f in ["vectors", "imbalance", "reconstruction_error", "recall", "advice", "lists", "deleted_fraction"] {
        assert!(v.get(f).is_some(), "{f} missing: {s}");
    }
    assert_eq!(v["sample"], 200);
    let (s, _) = ok(&["inspect", d, "--id", "3", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!((v["live"].as_bool(), v["copies"][0]["deleted"].as_bool()), (Some(false), Some(true)));
    let (s, _) = ok(&["inspect", d, "--id", "4"]);
    assert!(s.contains("id 4: live") && s.contains("reconstruction error"), "{s}");
    let (s, _) = ok(&["inspect", d, "--list", "0", "--json"]);
    assert!(serde_json::from_str::<serde_json::Value>(&s).unwrap()["nearest_lists"].is_array());
    let (s, _) = ok(&["inspect", d, "--segment", "0"]);
    assert!(s.contains("500 stored, 1 deleted"), "{s}");
    let (s, _) = ok(&["explain", d, "--id", "9", "--vectors", p(&vf), "--row", "9"]);
    assert!(s.contains("id 9: returned") && s.contains("why"), "{s}");
    let (s, _) = ok(&["explain", d, "--id", "9", "--vectors", p(&vf), "--row", "9", "--json", "--rerank", "none"]);
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!((v["rerank"].as_str(), v["final_rank"].as_u64()), (Some("none"), Some(1)));
    let html = tmp.path().join("r.html");
    ok(&["inspect", d, "--html", p(&html), "--sample", "200", "--queries", "20"]);
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg").count(), 4);
    assert!(!page.contains("<script") && !page.contains("http://") && !page.contains("https://"));
    assert!(page.contains("imbalance factor"));
    // Bad input: one line, nothing written.
    fails_with(&["inspect", d, "--list", "99"], "below nlist");
    fails_with(&["inspect", d, "--segment", "5"], "segment count");
    fails_with(&["explain", d, "--id", "1", "--vectors", p(&vf), "--row", "500"], "--row 500");
    fails_with(&["inspect", d, "--health", "--sample", "0"], "--sample");
    usage_error(&["inspect", d, "--id", "1", "--list", "2"]);
    let missing = tmp.path().join("none.html");
    fails(&["inspect", p(&tmp.path().join("nope")), "--html", p(&missing)]);
    assert!(!missing.exists());
}

/// Read-only on a live index: health, --id, --list and explain while
/// another handle adds and commits.
#[test]
fn works_while_a_writer_adds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("i");
    let base = data(9, 3000, 8, false);
    let index = trained(&dir, cfg(8, 2), &base);
    index.add(&base[..500 * DIM], None).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for k in 1..6 {
                index.add(&base[k * 500 * DIM..(k + 1) * 500 * DIM], None).unwrap();
            }
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let reader = Index::open_read_only(&dir).unwrap();
        let mut rounds = 0;
        while rounds < 3 || !stop.load(std::sync::atomic::Ordering::SeqCst) {
            reader.refresh().unwrap();
            let h = reader.health(&opts(100, 10)).unwrap();
            assert!(h.vectors >= 500 && !h.recall.is_empty());
            assert!(reader.explain_id(7).unwrap().live);
            reader.explain_list(1).unwrap();
            reader.explain_query(&base[7 * DIM..8 * DIM], 7, &SearchParams::new(5)).unwrap();
            let r = Index::verify_all(&dir).unwrap();
            assert!(r.sound, "{:?}", r.problems);
            rounds += 1;
            assert!(rounds < 10_000);
        }
    });
}

/// `tune`: the chosen setting is the cheapest meeting the target (of the
/// settings within 10% of the fastest, the fewest lists, then candidates),
/// it holds on held-back queries, and storing it is one commit of nprobe
/// and candidates that later searches use; `--dry-run` stores nothing.
#[test]
fn tune_chooses_stores_and_holds_on_held_back_queries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("i");
    let base = data(11, 3000, 6, false);
    let index = trained(&dir, cfg(32, 32), &base);
    index.add(&base, None).unwrap();
    let r = index.tune(0.9, 200, 5).unwrap();
    assert_eq!((r.nprobe_before, r.candidates_before, r.rerank()), (32, chromatica::DEFAULT_CANDIDATES, Rerank::L2));
    let chosen = r.chosen.clone().expect("0.9 is reachable");
    assert!(chosen.meets_target && chosen.recall_at_10 >= 0.9 && chosen.rerank == "l2");
    let meeting: Vec<_> = r.points.iter().filter(|p| p.meets_target).collect();
    let fastest = meeting.iter().map(|p| p.micros_per_query).fold(f64::INFINITY, f64::min);
    assert!(chosen.micros_per_query <= fastest * 1.1, "{chosen:?} is not within 10% of {fastest}");
    for p in meeting.iter().filter(|p| p.micros_per_query <= fastest * 1.1) {
        assert!((p.nprobe, p.candidates) >= (chosen.nprobe, chosen.candidates), "{p:?} is cheaper than {chosen:?}");
    }
    assert!(r.points.iter().all(|p| p.meets_target == (p.recall_at_10 >= 0.9)));
    // Held-back queries (not stored), brute force: the choice holds.
    let held = data(12, 300, 6, false);
    let truth = exact_knn(&base, &held, DIM, 10);
    let recall_at = |index: &Index, params: &SearchParams| {
        let got = index.search(&held, params).unwrap();
        let hit: usize =
            got.iter().zip(&truth).map(|(g, t)| t.iter().filter(|i| g.iter().any(|n| n.id == **i)).count()).sum();
        hit as f64 / 3000.0
    };
    let held_recall = recall_at(&index, &SearchParams::new(10).nprobe(chosen.nprobe).candidates(chosen.candidates));
    assert!(held_recall >= 0.88, "held-back recall {held_recall} at {chosen:?}");
    drop(index);

    let d = p(&dir);
    let before = Index::open_read_only(&dir).unwrap().snapshot().generation();
    let (s, _) = ok(&["tune", d, "--recall", "0.9", "--seed", "5", "--dry-run"]);
    assert!(s.contains("not stored (--dry-run)"), "{s}");
    assert_eq!(Index::open_read_only(&dir).unwrap().snapshot().generation(), before);
    let (s, _) = ok(&["tune", d, "--recall", "0.9", "--seed", "5", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["stored"].as_bool(), Some(true));
    let (nprobe, candidates) =
        (v["chosen"]["nprobe"].as_u64().unwrap() as usize, v["chosen"]["candidates"].as_u64().unwrap() as usize);
    assert_eq!((v["nprobe_before"].as_u64(), v["candidates_before"].as_u64()), (Some(32), Some(200)));
    let after = Index::open_read_only(&dir).unwrap();
    assert_eq!((after.snapshot().generation(), after.config().nprobe), (before + 1, nprobe));
    assert_eq!(after.inspect().default_candidates, candidates);
    // Search without --nprobe or --candidates uses the stored defaults.
    let dflt = after.search(&held, &SearchParams::new(10)).unwrap();
    assert_eq!(dflt, after.search(&held, &SearchParams::new(10).nprobe(nprobe).candidates(candidates)).unwrap());
    assert!(recall_at(&after, &SearchParams::new(10)) >= 0.88);
    let (s, _) = ok(&["inspect", d]);
    assert!(s.contains(&format!("vector search: nprobe {nprobe}, {candidates} candidates")), "{s}");
    assert!(after.set_search_defaults(Rerank::L2, 2, 10).is_err(), "a read-only handle stored");
    drop(after);
    // Another writer holds the lock: the measurements are printed, nothing
    // is stored, the command fails naming the lock.
    let writer = Index::open(&dir).unwrap();
    let generation = writer.snapshot().generation();
    let out = run(&["tune", d, "--recall", "0.9", "--seed", "5", "--queries", "20"]);
    assert!(!out.status.success());
    assert!(text(&out.stdout).contains("not stored: ") && text(&out.stdout).contains("recall@10 against"));
    assert!(text(&out.stderr).contains("locked by another writer"), "{}", text(&out.stderr));
    drop(writer);
    assert_eq!(Index::open_read_only(&dir).unwrap().snapshot().generation(), generation);
    fails_with(&["tune", d, "--recall", "1.5"], "--recall");
    fails_with(&["tune", d, "--recall", "0.9", "--queries", "0"], "--queries");
    // An index without a refine store has no truth to tune against.
    let mut c = cfg(8, 2);
    c.refine = false;
    let plain = trained(&tmp.path().join("plain"), c, &base);
    plain.add(&base, None).unwrap();
    assert!(plain.tune(0.9, 50, 1).unwrap_err().to_string().contains("refine store"));
}
