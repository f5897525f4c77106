//! The exact EMD solver against POT's `ot.emd2` on committed fixtures
//! (`tests/fixtures/emd/make_fixtures.py` made them): colour queries against
//! histograms, histograms against histograms, tied masses.

use chromatica::testing::color::{centroid_bound, delta_e, emd_lab, EmdQuery, Transport};
use serde_json::Value;

type Points = Vec<([f64; 3], f64)>;

/// The cases without a fuzz.
fn cases() -> Vec<(Points, Points, f64)> {
    all_cases().into_iter().filter(|c| c.3 == 0.0).map(|(a, b, d, _)| (a, b, d)).collect()
}

/// Every case: sides, POT's EMD, and the fuzz (0 for plain ΔE76).
fn all_cases() -> Vec<(Points, Points, f64, f64)> {
    let text = include_str!("fixtures/emd/pot_fixtures.json");
    let v: Value = serde_json::from_str(text).unwrap();
    let side = |s: &Value| -> Points {
        s.as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let f = |i: usize| p[i].as_f64().unwrap();
                ([f(0), f(1), f(2)], f(3))
            })
            .collect()
    };
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (side(&c["a"]), side(&c["b"]), c["emd"].as_f64().unwrap(), c["fuzz"].as_f64().unwrap_or(0.0)))
        .collect()
}

#[test]
fn agrees_with_pot_to_1e5() {
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for (k, (a, b, want)) in cases.iter().enumerate() {
        let got = emd_lab(a, b).unwrap();
        assert!((got - want).abs() < 1e-5, "case {k} ({}x{}): ours {got}, POT {want}", a.len(), b.len());
        let back = emd_lab(b, a).unwrap();
        assert!((back - want).abs() < 1e-5, "case {k} transposed: ours {back}, POT {want}");
        assert!(centroid_bound(a, b) <= want + 1e-9, "case {k}: centroid bound above the EMD");
    }
}

/// A side on the grid nodes as a stored (Hellinger) vector.
fn on_grid(p: &Points) -> Option<Vec<f32>> {
    let centres = chromatica::color::bin_centers_lab();
    let mut v = vec![0f32; centres.len()];
    let t: f64 = p.iter().map(|x| x.1).sum();
    for &(x, m) in p {
        let j = centres.iter().position(|c| (0..3).all(|d| (c[d] - x[d]).abs() < 1e-3))?;
        v[j] = ((m / t) as f32).sqrt();
    }
    Some(v)
}

fn nonzeros(h: &[f32]) -> impl Iterator<Item = (usize, f32)> + Clone + '_ {
    h.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(j, &v)| (j, v))
}

#[test]
fn histogram_queries_cancel_shared_mass_and_agree_with_pot() {
    // Histogram against histogram, many sharing most of their mass: the
    // search path solves only the difference.
    let mut checked = 0;
    for (a, b, want) in cases() {
        let (Some(ha), Some(hb)) = (on_grid(&a), on_grid(&b)) else { continue };
        let mut q = EmdQuery::from_hellinger(&ha).unwrap();
        let got = q.distance_within(nonzeros(&hb), f64::INFINITY).unwrap();
        assert!((got - want).abs() < 1e-4 * want.max(1.0), "ours {got}, POT {want}");
        let back = EmdQuery::from_hellinger(&hb).unwrap().distance_within(nonzeros(&ha), f64::INFINITY).unwrap();
        assert!((back - want).abs() < 1e-4 * want.max(1.0), "transposed: ours {back}, POT {want}");
        checked += 1;
    }
    assert!(checked >= 14, "{checked}");
}

#[test]
fn fuzzed_ground_distance_agrees_with_pot_to_1e5() {
    let mut checked = 0;
    for (a, b, want, fuzz) in all_cases() {
        if fuzz == 0.0 {
            continue;
        }
        // The general solver on max(0, ΔE − fuzz), in f64: to 1e-5.
        let cost: Vec<f64> =
            a.iter().flat_map(|&(p, _)| b.iter().map(move |&(q, _)| (delta_e(p, q) - fuzz).max(0.0))).collect();
        let wa: Vec<f64> = a.iter().map(|p| p.1).collect();
        let wb: Vec<f64> = b.iter().map(|p| p.1).collect();
        let got = Transport::default().emd(&wa, &wb, &cost).unwrap();
        assert!((got - want).abs() < 1e-5, "fuzz {fuzz}: ours {got}, POT {want}");
        // The search path: a query with a fuzz against the stored histogram.
        let h = on_grid(&b).expect("fuzz cases have grid histograms");
        let mut q = EmdQuery::from_points(&a).unwrap().with_fuzz(fuzz).unwrap();
        let d = q.distance(nonzeros(&h));
        assert!((d - want).abs() < 1e-4 * want.max(1.0), "fuzz {fuzz}: search path {d}, POT {want}");
        assert!(q.lower_bound(nonzeros(&h)) <= d + 1e-9);
        checked += 1;
    }
    assert!(checked >= 10, "{checked}");
}

#[test]
fn query_against_grid_histograms_agrees_with_pot() {
    // The fixtures' histogram sides sit on the grid nodes: as stored
    // (Hellinger) vectors they go through EmdQuery, the re-rank's path.
    let centres = chromatica::color::bin_centers_lab();
    let on_grid = |p: &Points| -> Option<Vec<f32>> {
        let mut v = vec![0f32; centres.len()];
        let t: f64 = p.iter().map(|x| x.1).sum();
        for &(x, m) in p {
            let j = centres.iter().position(|c| (0..3).all(|d| (c[d] - x[d]).abs() < 1e-3))?;
            v[j] = ((m / t) as f32).sqrt();
        }
        Some(v)
    };
    let mut checked = 0;
    for (a, b, want) in cases() {
        let Some(h) = on_grid(&b) else { continue };
        let mut q = EmdQuery::from_points(&a).unwrap();
        let nz = || h.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(j, &v)| (j, v));
        let got = q.distance(nz());
        // f32 storage of the masses: agreement to 1e-4 relative.
        assert!((got - want).abs() < 1e-4 * want.max(1.0), "ours {got}, POT {want}");
        assert!(q.lower_bound(nz()) <= got + 1e-9);
        checked += 1;
    }
    assert!(checked >= 30, "{checked}");
}
