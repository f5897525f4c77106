//! Asymmetric-distance search over a snapshot. The maths (the L2
//! decomposition into three terms) is stated once, in `crate::quantizer`.

use super::topk::TopK;
use super::{Hider, Snapshot};
use crate::error::{Error, Result};
use crate::format::segment_file::Ids;
use crate::quantizer::{codes, Quantizers};
use rayon::prelude::*;
use serde::Serialize;

/// One result.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Neighbor {
    pub id: u64,
    /// Squared L2 distance estimated from the PQ code.
    pub distance: f32,
}

/// Per-call search options.
#[derive(Clone, Copy, Debug)]
pub struct SearchParams {
    /// Results per query (at least 1). Fewer come back if the index holds fewer.
    pub k: usize,
    /// Lists to probe; `None` uses the index default.
    pub nprobe: Option<usize>,
}

impl SearchParams {
    pub fn new(k: usize) -> SearchParams {
        SearchParams { k, nprobe: None }
    }
}

/// Buffers reused across the queries one thread runs.
struct Scratch {
    coarse: Vec<(f32, u32)>,
    /// ⟨x_j, q_jk⟩ for the current query.
    ip: Vec<f32>,
    /// Look-up table for the current list: term 2 + term 3.
    lut: Vec<f32>,
    unpacked: Vec<u32>,
}

impl Snapshot {
    /// Searches each row of `queries` (n × dim). Queries run in parallel on
    /// the current rayon pool; results are nearest first.
    pub fn search(&self, queries: &[f32], params: &SearchParams) -> Result<Vec<Vec<Neighbor>>> {
        let c = self.manifest.config;
        let q = self.quantizers.as_deref().ok_or(Error::NotTrained)?;
        if params.k == 0 {
            return Err(Error::InvalidInput("k must be at least 1".into()));
        }
        let nprobe = params.nprobe.unwrap_or(c.nprobe);
        c.check_nprobe(nprobe)?;
        crate::input::check_vectors(queries, c.dim, "queries")?;
        let new_scratch = || Scratch {
            coarse: Vec::with_capacity(c.nlist),
            ip: vec![0.0; c.m * c.ksub()],
            lut: vec![0.0; c.m * c.ksub()],
            unpacked: vec![0; c.m],
        };
        if queries.len() == c.dim {
            return Ok(vec![self.search_one(q, queries, params.k, nprobe, &mut new_scratch())?]);
        }
        queries.par_chunks(c.dim).map_init(new_scratch, |s, x| self.search_one(q, x, params.k, nprobe, s)).collect()
    }

    fn search_one(&self, q: &Quantizers, x: &[f32], k: usize, nprobe: usize, s: &mut Scratch) -> Result<Vec<Neighbor>> {
        let c = &q.config;
        let (m, ksub) = (c.m, c.ksub());
        // Term 1 for every list; keep the nprobe nearest lists.
        s.coarse.clear();
        s.coarse.extend((0..c.nlist).map(|l| (crate::distance::l2sq(x, q.centroid(l)), l as u32)));
        let by_dist = |a: &(f32, u32), b: &(f32, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
        if nprobe < s.coarse.len() {
            s.coarse.select_nth_unstable_by(nprobe - 1, by_dist);
            s.coarse.truncate(nprobe);
        }
        // Term 3 (without its factor −2) once per query.
        q.pq.inner_product_table(x, &mut s.ip);
        let mut top = TopK::new(k);
        for &(term1, l) in &s.coarse {
            let l = l as usize;
            let term2 = &q.term2[l * m * ksub..(l + 1) * m * ksub];
            for ((t, &t2), &ip) in s.lut.iter_mut().zip(term2).zip(&s.ip) {
                *t = t2 - 2.0 * ip;
            }
            for (si, seg) in self.segments.iter().enumerate() {
                if seg.list_len(l) == 0 {
                    continue;
                }
                let (codes, ids) = seg.list(l)?;
                let list = List { codes, ids, hide: self.hider(si) };
                scan(&list, term1, &s.lut, c.m, c.nbits, &mut s.unpacked, &mut top);
            }
        }
        Ok(top.into_sorted().into_iter().map(|(distance, id)| Neighbor { id, distance }).collect())
    }
}

/// One inverted list of one segment.
struct List<'a> {
    codes: &'a [u8],
    ids: Ids<'a>,
    hide: Hider<'a>,
}

impl List<'_> {
    /// Offers vector `i` at distance `d`; deleted vectors are checked only
    /// when they would enter the heap, which keeps the scan loop tight.
    #[inline]
    fn offer(&self, i: usize, d: f32, top: &mut TopK) {
        if d <= top.threshold() {
            let id = self.ids.get(i);
            if !self.hide.hides(id) {
                top.push(d, id);
            }
        }
    }
}

/// Adds each code's table entries to `base` and offers the sum to `top`.
fn scan(list: &List<'_>, base: f32, lut: &[f32], m: usize, nbits: usize, unpacked: &mut [u32], top: &mut TopK) {
    if nbits == 8 {
        let (lut, _) = lut.as_chunks::<256>();
        match m {
            4 => return scan_u8::<4>(list, base, lut, top),
            8 => return scan_u8::<8>(list, base, lut, top),
            16 => return scan_u8::<16>(list, base, lut, top),
            32 => return scan_u8::<32>(list, base, lut, top),
            _ => {}
        }
    }
    let ksub = 1 << nbits;
    let code_size = (m * nbits).div_ceil(8);
    for (i, code) in list.codes.chunks_exact(code_size).enumerate() {
        codes::unpack(code, nbits, unpacked);
        let mut d = base;
        for (j, &k) in unpacked.iter().enumerate() {
            d += lut[j * ksub + k as usize];
        }
        list.offer(i, d, top);
    }
}

/// The byte-per-sub-code fast path, with `M` known at compile time so the
/// inner loop unrolls and needs no bounds checks (a u8 always indexes 256).
#[inline]
fn scan_u8<const M: usize>(list: &List<'_>, base: f32, lut: &[[f32; 256]], top: &mut TopK) {
    let lut: &[[f32; 256]; M] = lut.try_into().expect("table has m rows");
    let (codes, _) = list.codes.as_chunks::<M>();
    for (i, code) in codes.iter().enumerate() {
        let mut d = base;
        for j in 0..M {
            d += lut[j][code[j] as usize];
        }
        list.offer(i, d, top);
    }
}
