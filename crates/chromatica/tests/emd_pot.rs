//! The exact EMD solver against POT's `ot.emd2` on committed fixtures
//! (`tests/fixtures/emd/make_fixtures.py` made them): colour queries against
//! histograms, histograms against histograms, tied masses.

use chromatica::testing::color::{centroid_bound, emd_lab, EmdQuery};
use serde_json::Value;

type Points = Vec<([f64; 3], f64)>;

fn cases() -> Vec<(Points, Points, f64)> {
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
    v["cases"].as_array().unwrap().iter().map(|c| (side(&c["a"]), side(&c["b"]), c["emd"].as_f64().unwrap())).collect()
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
