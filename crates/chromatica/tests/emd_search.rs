//! Search by exact EMD, the default of an image index with the refine
//! store: on a trained IVF-PQ index of synthetic colour histograms, the
//! results of colour and histogram queries are the exact-EMD top k found by
//! brute force (every stored histogram solved), also with a fuzz, excluded
//! colours and deletions; fast mode is stage 1 only; a time limit cuts the
//! scan short and says so; bad options are one-line errors.

use chromatica::color::{bin_centers_lab, emd_lab, hellinger, histogram_of_pixels, srgb_to_lab, Excluded};
use chromatica::images::{ImageIndex, Query, SearchOptions};
use chromatica::testing::color::Transport;
use chromatica::testing::reference::as_stored;
use chromatica::testing::Rng;
use chromatica::{Config, Index, Rerank, TrainOptions};
use std::path::Path;
use std::time::Duration;

const N: usize = 3000;
const K: usize = 10;

type Points = Vec<([f64; 3], f64)>;

/// Histograms of synthetic images: 1–4 random colours, each pixel jittered.
fn histograms(seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed);
    (0..N)
        .map(|_| {
            let k = 1 + rng.below(4);
            let colours: Vec<[u8; 3]> = (0..k).map(|_| [0, 0, 0].map(|_: u8| rng.below(256) as u8)).collect();
            let mut px = Vec::new();
            for _ in 0..48 {
                let c = colours[rng.below(k)];
                px.push(c.map(|v| (v as i64 + rng.below(13) as i64 - 6).clamp(0, 255) as u8));
            }
            // The histogram whose Hellinger vector the refine store keeps
            // unchanged, so that brute force solves what the engine solves.
            let mut h = histogram_of_pixels(px.into_iter());
            hellinger(&mut h);
            as_stored(&h).into_iter().map(|v| v * v).collect()
        })
        .collect()
}

fn masses(h: &[f32]) -> Points {
    let c = bin_centers_lab();
    h.iter().zip(c).filter(|(m, _)| **m > 0.0).map(|(&m, c)| (c, f64::from(m))).collect()
}

/// A trained index (nlist 16, PQ 48 × 6 bits) holding every histogram,
/// id = row.
fn build(dir: &Path, hists: &[Vec<f32>]) -> ImageIndex {
    let config =
        Config { dim: 1152, nlist: 16, m: 48, nbits: 6, nprobe: 4, refine: true, ..chromatica::images::image_config() };
    let ix = Index::create(dir, config).unwrap();
    let data: Vec<f32> = hists
        .iter()
        .flat_map(|h| {
            let mut v = h.clone();
            hellinger(&mut v);
            v
        })
        .collect();
    ix.train(&data, &TrainOptions::default(), &mut |_| ()).unwrap();
    ix.add(&data, Some(&(0..N as u64).collect::<Vec<_>>())).unwrap();
    drop(ix);
    ImageIndex::open_or_create(dir).unwrap()
}

/// The exact EMD from `query` to every histogram, by the general solver
/// on the full problem, sorted (distance, id).
fn brute(query: &Points, hists: &[Vec<f32>], cost: impl Fn(f64) -> f64) -> Vec<(f64, u64)> {
    let mut t = Transport::default();
    let mut out: Vec<(f64, u64)> = hists
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let b = masses(h);
            let c: Vec<f64> = query
                .iter()
                .flat_map(|&(p, _)| b.iter().map(move |&(q, _)| (p, q)))
                .map(|(p, q)| cost((0..3).map(|d| (p[d] - q[d]).powi(2)).sum::<f64>().sqrt()))
                .collect();
            let wa: Vec<f64> = query.iter().map(|p| p.1).collect();
            let wb: Vec<f64> = b.iter().map(|p| p.1).collect();
            (t.emd(&wa, &wb, &c).unwrap(), i as u64)
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    out
}

/// The hits are a true top k: each hit's distance is its exact EMD, and
/// they are the k smallest (ties may swap).
fn assert_top_k(hits: &[chromatica::images::Hit], truth: &[(f64, u64)], what: &str) {
    assert_eq!(hits.len(), K, "{what}");
    let dist: std::collections::HashMap<u64, f64> = truth.iter().map(|&(d, i)| (i, d)).collect();
    let kth = truth[K - 1].0;
    for (r, h) in hits.iter().enumerate() {
        let d = dist[&h.id];
        assert!((f64::from(h.distance) - d).abs() < 1e-3 * d.max(1.0), "{what}: hit {r} says {} is {d}", h.distance);
        assert!(d <= kth + 1e-6, "{what}: hit {r} (id {}, EMD {d}) is not in the top {K} (10th {kth})", h.id);
    }
    assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance), "{what}: sorted");
}

fn colour_points(spec: &str) -> Points {
    let q = chromatica::color::parse_color_query(spec).unwrap();
    q.colors.iter().map(|&(rgb, w)| (srgb_to_lab(rgb), f64::from(w))).collect()
}

#[test]
fn colour_and_image_queries_return_the_exact_emd_top_k() {
    let tmp = tempfile::tempdir().unwrap();
    let hists = histograms(7);
    let index = build(&tmp.path().join("idx"), &hists);
    assert!(index.index().is_trained());
    for spec in ["ff4500:0.3,000000:0.7", "1e90ff,ffffff", "808000", "e6194b:0.2,4363d8:0.5,ffe119:0.3"] {
        let found = index.search(&Query::colors(spec).unwrap(), &SearchOptions::default().k(K)).unwrap();
        assert_eq!(found.rerank, Rerank::ExactEmd, "the default");
        assert!(found.solves.is_some_and(|s| s > 0 && s < N), "{spec}: {:?} solves", found.solves);
        assert_top_k(&found.hits, &brute(&colour_points(spec), &hists, |d| d), spec);
    }
    for row in [0usize, 17, 2999] {
        let found = index.search(&Query::Histogram(hists[row].clone()), &SearchOptions::default().k(K)).unwrap();
        assert_eq!(found.hits[0].id, row as u64, "the query image first");
        assert_top_k(&found.hits, &brute(&masses(&hists[row]), &hists, |d| d), &format!("row {row}"));
    }
    // emd_lab (the public exact EMD) agrees with the solver used above.
    let q = colour_points("1e90ff,ffffff");
    let d = emd_lab(&q, &masses(&hists[5])).unwrap();
    assert!((d - brute(&q, &hists[5..6], |d| d)[0].0).abs() < 1e-9);
}

#[test]
fn fuzz_exclusions_deletions_and_fast_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let hists = histograms(11);
    let index = build(&tmp.path().join("idx"), &hists);
    let spec = "ff4500:0.3,000000:0.7";
    let q = colour_points(spec);

    // Fuzz: the ground distance max(0, ΔE − fuzz).
    let fuzzed = index.search(&Query::colors(spec).unwrap(), &SearchOptions::default().k(K).fuzz(12.0)).unwrap();
    assert_top_k(&fuzzed.hits, &brute(&q, &hists, |d| (d - 12.0).max(0.0)), "fuzz 12");

    // Excluded colours: no result holds more than the share within the
    // radius, and the top k is the exact one among those that qualify.
    let x = Excluded { rgb: [0, 0, 0], max_share: 0.05, radius: 25.0 };
    let black = srgb_to_lab([0, 0, 0]);
    let share = |h: &[f32]| -> f64 {
        masses(h)
            .iter()
            .filter(|(c, _)| ((0..3).map(|d| (c[d] - black[d]).powi(2)).sum::<f64>()).sqrt() <= 25.0)
            .map(|p| p.1)
            .sum::<f64>()
    };
    let found = index.search(&Query::colors(spec).unwrap(), &SearchOptions::default().k(K).exclude(vec![x])).unwrap();
    let allowed: Vec<(f64, u64)> =
        brute(&q, &hists, |d| d).into_iter().filter(|&(_, i)| share(&hists[i as usize]) <= 0.05 + 1e-6).collect();
    assert!(allowed.len() < N - K, "the exclusion drops some images");
    assert_top_k(&found.hits, &allowed, "not black");
    for h in &found.hits {
        assert!(share(&hists[h.id as usize]) <= 0.05 + 1e-6);
    }

    // Deleted images never come back, and the next ones move up.
    let before = index.search(&Query::colors(spec).unwrap(), &SearchOptions::default().k(K)).unwrap();
    let gone: Vec<u64> = before.hits[..3].iter().map(|h| h.id).collect();
    index.index().delete(&gone).unwrap();
    let after = index.search(&Query::colors(spec).unwrap(), &SearchOptions::default().k(K)).unwrap();
    let truth: Vec<(f64, u64)> = brute(&q, &hists, |d| d).into_iter().filter(|(_, i)| !gone.contains(i)).collect();
    assert_top_k(&after.hits, &truth, "after deleting the top 3");

    // Fast mode: stage 1 only.
    let fast = index.search(&Query::colors(spec).unwrap(), &SearchOptions::default().k(K).fast(true)).unwrap();
    assert_eq!(fast.rerank, Rerank::Off);
    assert_eq!(fast.solves, None);
    assert_eq!(fast.hits.len(), K);
}

#[test]
fn a_time_limit_cuts_the_scan_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let hists = histograms(13);
    let index = build(&tmp.path().join("idx"), &hists);
    let spec = "1e90ff:0.6,ffe119:0.4";
    let truth = brute(&colour_points(spec), &hists, |d| d);
    let q = Query::colors(spec).unwrap();
    let exact = index.search(&q, &SearchOptions::default().k(K)).unwrap();
    assert!(!exact.timed_out, "no limit: the scan runs to the end");
    // A limit it never reaches changes nothing.
    let roomy = index.search(&q, &SearchOptions::default().k(K).time_limit(Duration::from_secs(600))).unwrap();
    assert!(!roomy.timed_out);
    assert_eq!(
        roomy.hits.iter().map(|h| h.id).collect::<Vec<_>>(),
        exact.hits.iter().map(|h| h.id).collect::<Vec<_>>()
    );
    // A zero limit: the candidates only, exactly solved, and flagged.
    let cut = index.search(&q, &SearchOptions::default().k(K).candidates(30).time_limit(Duration::ZERO)).unwrap();
    assert!(cut.timed_out);
    assert!(cut.solves.is_some_and(|s| s <= 30), "{:?} solves", cut.solves);
    assert_eq!(cut.hits.len(), K);
    let by_id: std::collections::HashMap<u64, f64> = truth.iter().map(|&(d, i)| (i, d)).collect();
    for (h, t) in cut.hits.iter().zip(&truth) {
        assert!((f64::from(h.distance) - by_id[&h.id]).abs() < 1e-3, "id {}: an exact distance", h.id);
        assert!(f64::from(h.distance) >= t.0 - 1e-3, "never nearer than the exact top k");
    }
    assert!(cut.hits.windows(2).all(|w| w[0].distance <= w[1].distance));
    // Every vector a candidate: a zero limit still gives the exact top k.
    let all = SearchOptions::default().k(K).nprobe(16).candidates(N).time_limit(Duration::ZERO);
    assert_top_k(&index.search(&q, &all).unwrap().hits, &truth, "all candidates, zero limit");
}

#[test]
fn bad_options_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let index = ImageIndex::open_or_create(tmp.path().join("idx")).unwrap();
    let q = Query::colors("ff0000").unwrap();
    let ok = Excluded { rgb: [0, 0, 255], max_share: 0.1, radius: 20.0 };
    for (options, want) in [
        (SearchOptions::default().fuzz(-1.0), "fuzz must be between 0 and 100"),
        (SearchOptions::default().fuzz(f32::NAN), "fuzz must be between"),
        (SearchOptions::default().fuzz(101.0), "fuzz must be between"),
        (
            SearchOptions::default().exclude(vec![Excluded { max_share: 1.0, ..ok }]),
            "share must be at least 0 and below 1",
        ),
        (SearchOptions::default().exclude(vec![Excluded { max_share: -0.1, ..ok }]), "share must be"),
        (SearchOptions::default().exclude(vec![Excluded { radius: 0.0, ..ok }]), "radius must be above 0"),
        (SearchOptions::default().exclude(vec![Excluded { radius: f32::INFINITY, ..ok }]), "radius must be"),
        (SearchOptions::default().exclude(vec![ok; 17]), "at most 16 excluded colours"),
        (SearchOptions::default().fast(true).rerank(Rerank::L2), "fast mode skips re-ranking"),
        (SearchOptions::default().fast(true).fuzz(5.0), "need the exact EMD re-rank"),
        (SearchOptions::default().rerank(Rerank::L2).exclude(vec![ok]), "need the exact EMD re-rank"),
    ] {
        let e = index.search(&q, &options).unwrap_err().to_string();
        assert!(e.contains(want) && !e.contains('\n'), "{e:?} lacks {want:?}");
    }
    for (spec, want) in [
        ("", "empty excluded colours"),
        ("ff0000:x", "is not a number"),
        ("ff0000:1.5", "share must be"),
        ("zz0000", "bad colour"),
        ("ff0000,,00ff00", "empty entry"),
    ] {
        let e = chromatica::color::parse_excluded(spec, 20.0).unwrap_err().to_string();
        assert!(e.contains(want) && !e.contains('\n'), "{spec:?}: {e:?} lacks {want:?}");
    }
    let e = chromatica::color::parse_excluded("ff0000", 0.0).unwrap_err().to_string();
    assert!(e.contains("radius"), "{e}");
}

/// `ImageIndex::explain` follows the search it explains: its final rank is
/// the search's, its EMD the brute-force one, its scan bound never above
/// its EMD, and its sentence names the step that decided (a PQ candidate
/// solved, the scan's bounds letting it through, or skipping it unsolved).
#[test]
fn explain_follows_the_exact_emd_scan() {
    use chromatica::images::ImageLimits;
    let tmp = tempfile::tempdir().unwrap();
    let hists = histograms(11);
    let index = build(&tmp.path().join("idx"), &hists);
    let spec = "1e90ff,ffffff";
    let truth = brute(&colour_points(spec), &hists, |d| d);
    let query = Query::colors(spec).unwrap().prepare(&ImageLimits::default(), 5).unwrap();
    // Few PQ candidates, so that some of the top k come from the scan.
    let options = SearchOptions::default().k(K).candidates(3);
    let hits = index.search_prepared(&query, &options).unwrap().hits;
    let emd: std::collections::HashMap<u64, f64> = truth.iter().map(|&(d, i)| (i, d)).collect();
    let (mut by_scan, mut skipped) = (0, 0);
    let ids: Vec<u64> =
        hits.iter().map(|h| h.id).chain(truth[K..K + 20].iter().map(|t| t.1)).chain([2999, 1234, 7]).collect();
    for id in ids {
        let e = index.explain(&query, id, &options).unwrap();
        let rank = hits.iter().position(|h| h.id == id);
        assert_eq!(e.returned, rank.is_some(), "id {id}: {e:?}");
        assert_eq!(e.final_rank, rank.map(|r| r + 1), "id {id}");
        assert_eq!(e.rerank, "exact");
        assert!(e.scanned && !e.excluded);
        let d = emd[&id];
        assert!((f64::from(e.emd.unwrap()) - d).abs() < 1e-3 * d.max(1.0), "id {id}: EMD {:?} vs {d}", e.emd);
        assert!((f64::from(e.kth_distance.unwrap()) - truth[K - 1].0).abs() < 1e-3, "the k-th EMD");
        if let Some(b) = e.emd_bound {
            assert!(f64::from(b) <= d + 1e-4, "id {id}: bound {b} above its EMD {d}");
        }
        if e.returned && !e.in_candidates {
            by_scan += 1;
            assert!(e.reason.contains("the scan's bounds let it through"), "{}", e.reason);
        }
        if e.reason.contains("skipped it unsolved") {
            skipped += 1;
            assert!(!e.returned && e.emd_bound.unwrap() > e.kth_distance.unwrap());
        }
        if e.returned && e.in_candidates {
            assert!(e.reason.contains("solved as a candidate"), "{}", e.reason);
        }
    }
    assert!(by_scan > 0 && skipped > 0, "both paths seen: {by_scan} through the scan, {skipped} skipped");
    // Not live: said so.
    index.index().delete(&[hits[0].id]).unwrap();
    let e = index.explain(&query, hits[0].id, &options).unwrap();
    assert!(!e.live && !e.returned && e.reason.contains("no live copy"), "{e:?}");
    // Another re-rank is explained as the plain search explains it.
    let e = index.explain(&query, hits[1].id, &options.clone().rerank(Rerank::L2)).unwrap();
    assert_eq!(e.rerank, "l2");
    assert!(e.emd.is_none());
}

/// `ImageIndex::tune`: against the exact EMD, every exact-EMD setting
/// reaches recall 1 (the scan makes the top k exact whatever nprobe and
/// candidates are), the fast path is measured beside them with its own
/// recall, and the choice is an exact setting, stored for colour searches.
#[test]
fn tune_by_exact_emd() {
    let tmp = tempfile::tempdir().unwrap();
    let hists = histograms(13);
    let index = build(&tmp.path().join("idx"), &hists);
    let r = index.tune(1.0, 20, 5).unwrap();
    assert_eq!(r.truth, "exact EMD");
    assert_eq!(r.queries, 20);
    let exact: Vec<_> = r.points.iter().filter(|p| p.rerank == "exact").collect();
    let fast: Vec<_> = r.points.iter().filter(|p| p.rerank == "none").collect();
    assert_eq!(exact.len(), 3 * fast.len(), "three candidate counts per nprobe");
    assert!(exact.iter().all(|p| p.recall_at_10 == 1.0 && p.meets_target && p.solves_per_query.unwrap() > 0.0));
    assert!(fast.iter().all(|p| p.candidates == 0 && p.solves_per_query.is_none() && p.recall_at_10 <= 1.0));
    assert!(fast.iter().any(|p| p.recall_at_10 < 1.0), "stage 1 alone misses some: {fast:?}");
    let chosen = r.chosen.clone().unwrap();
    assert_eq!((chosen.rerank.as_str(), r.rerank()), ("exact", Rerank::ExactEmd));
    // Storing it sets colour searches' defaults, not vector searches'.
    let vector_defaults = index.index().snapshot().search_defaults(Rerank::L2);
    index.index().set_search_defaults(r.rerank(), chosen.nprobe, chosen.candidates).unwrap();
    let snap = index.index().snapshot();
    assert_eq!(snap.search_defaults(Rerank::ExactEmd), (chosen.nprobe, chosen.candidates));
    assert_eq!(snap.search_defaults(Rerank::L2), vector_defaults);
    let q = Query::colors("ff0000:0.5,0000ff:0.5").unwrap();
    let found = index.search(&q, &SearchOptions::default()).unwrap();
    assert_eq!((found.nprobe, found.candidates), (chosen.nprobe, chosen.candidates));
    // Bad targets, and an index that is not a trained colour index.
    assert!(index.tune(0.0, 20, 5).is_err() && index.tune(1.5, 20, 5).is_err() && index.tune(0.9, 0, 5).is_err());
    let small = ImageIndex::open_or_create(tmp.path().join("empty")).unwrap();
    assert!(small.tune(0.9, 10, 1).unwrap_err().to_string().contains("trained colour index"));
}
