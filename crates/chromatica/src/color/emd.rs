//! Sinkhorn-approximated Earth Mover's Distance between colour histograms,
//! used to re-rank search candidates (an alternative to exact L2).
//!
//! The histograms are sparse L1-normalised distributions over the 1152 Lab
//! bins (not the Hellinger square roots: square the stored values first),
//! given as `(bin, mass)` pairs. The ground cost between two bins is the
//! squared Lab distance between their centres, scaled into `[0, 1]`
//! ([`ground_cost`]). [`sinkhorn_distance`] restricts the transport problem
//! to the two supports, runs the Sinkhorn scaling iterations on the kernel
//! `K = exp(−C/ε)` and returns the transport cost `Σ π_ij C_ij` of the plan
//! `π = diag(u) K diag(v)` (not the entropy-regularised objective).
//!
//! Numerics: the scalings are updated in the plain domain, which is fast,
//! and every half-step checks its result. A half-step that would divide by
//! a (near-)zero sum or leave a scaling outside `[1e-10, 1e10]` is redone in
//! the log domain (a log-sum-exp over the dual potentials) and the kernel is
//! rebuilt around the new potentials ("absorption", Schmitzer 2016), so a
//! small `ε` never produces 0/0, overflow or NaN. The first half-step is
//! always a log-domain one: it builds the kernel at the cost of `exp(−C/ε)`.
//!
//! Speed: the two matrix–vector products per iteration dominate. Their
//! AVX2+FMA and portable kernels are in `crate::simd::sinkhorn`, chosen once
//! per process like every SIMD kernel (`CHROMATICA_NO_SIMD` forces the
//! portable ones); everything else is plain Rust that the compiler
//! vectorises, compiled once for AVX2 and once portably. The two copies
//! agree to float rounding (FMA rounds once), not bit for bit.

use std::cell::RefCell;
use std::sync::OnceLock;

use super::{bin_centers_lab, HIST_DIM};
use crate::error::{Error, Result};
use crate::simd::sinkhorn::{self, Kernels, WithKernels};
use crate::simd::Cpu;

/// Smallest `epsilon` [`Sinkhorn::validate`] accepts. Below it the f32 dual
/// potentials no longer resolve the kernel (an error of one ulp in a
/// potential of size ~1 becomes a relative error of ~1e-2 in `exp(·/ε)`).
pub const MIN_EPSILON: f32 = 1e-5;

/// Largest `iterations` [`Sinkhorn::validate`] accepts.
pub const MAX_ITERATIONS: usize = 10_000;

/// Masses below this fraction of a side's total are ignored: together they
/// move the cost by less than `1152 · 1e-20`, far below f32 resolution, and
/// keeping them would only force slow log-domain steps.
const MASS_FLOOR: f32 = 1e-20;

/// A plain-domain scaling outside `[1/TAU, TAU]` triggers a log-domain step.
/// Kernel entries are ≤ 1 and scalings ≤ TAU, so no sum can overflow, and an
/// entry lost to underflow (< 1e-45) stands for a plan entry < 1e-25.
const TAU: f32 = 1e10;

/// Buffers above this many floats are freed after a call rather than kept
/// for the next one on the thread (4 MB: supports of ~1000 × 1000).
const KEEP_FLOATS: usize = 1 << 20;

/// ε actually used is clamped to at most this: beyond it `exp(−C/ε)` is 1
/// in f32 anyway, and the potentials (of size ~ε·50) stay finite.
const MAX_EPSILON_USED: f32 = 1e20;

/// Sinkhorn parameters. Defaults as the Python original: epsilon 0.05, 50 iterations.
///
/// `epsilon` is in units of the ground cost, which lies in `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sinkhorn {
    /// Entropic regularisation, in units of the ground cost (smaller is closer to exact EMD, slower to converge).
    pub epsilon: f32,
    /// Sinkhorn iterations.
    pub iterations: usize,
}

impl Default for Sinkhorn {
    fn default() -> Self {
        Sinkhorn { epsilon: 0.05, iterations: 50 }
    }
}

impl Sinkhorn {
    /// Checks epsilon is finite and at least [`MIN_EPSILON`] (so > 0) and
    /// iterations in `1..=10_000`; `Error::InvalidArgument` with a one-line
    /// message otherwise.
    pub fn validate(&self) -> Result<()> {
        let eps = self.epsilon;
        if !eps.is_finite() {
            return Err(Error::invalid_argument("epsilon", format!("sinkhorn epsilon must be finite, got {eps}")));
        }
        if eps <= 0.0 {
            return Err(Error::invalid_argument("epsilon", format!("sinkhorn epsilon must be > 0, got {eps}")));
        }
        if eps < MIN_EPSILON {
            return Err(Error::invalid_argument(
                "epsilon",
                format!("sinkhorn epsilon {eps} is too small: it must be at least {MIN_EPSILON}"),
            ));
        }
        if !(1..=MAX_ITERATIONS).contains(&self.iterations) {
            return Err(Error::invalid_argument(
                "iterations",
                format!("sinkhorn iterations must be in 1..={MAX_ITERATIONS}, got {}", self.iterations),
            ));
        }
        Ok(())
    }
}

/// The ground cost: squared Lab distance between bin centres, divided by the
/// largest such value so it lies in `[0, 1]`. Computed once as a dense
/// 1152 × 1152 row-major f32 matrix (5.3 MB): entry `i · 1152 + j` is the
/// cost between bins `i` and `j`. Symmetric, zero on the diagonal, and 1
/// (to f32 rounding) between the two opposite corners of the Lab grid.
///
/// [`sinkhorn_distance`] evaluates the same formula on the fly for the
/// entries it needs (bit-identical to this matrix, and faster than gathering
/// scattered entries from 5.3 MB).
#[cfg(any(test, feature = "testing"))]
pub fn ground_cost() -> &'static [f32] {
    static COST: OnceLock<Vec<f32>> = OnceLock::new();
    COST.get_or_init(|| {
        let pts = scaled_centres();
        let mut c = Vec::with_capacity(HIST_DIM * HIST_DIM);
        for p in pts {
            c.extend(pts.iter().map(|q| pair_cost(p, q)));
        }
        c
    })
}

/// Bin centres divided by the Lab diameter of the grid (the distance
/// between its opposite corners), so squared distances lie in `[0, 1]`.
fn scaled_centres() -> &'static [[f32; 3]] {
    static PTS: OnceLock<Vec<[f32; 3]>> = OnceLock::new();
    PTS.get_or_init(|| {
        let centres = bin_centers_lab();
        let d2 = |p: &[f64; 3], q: &[f64; 3]| (0..3).map(|k| (p[k] - q[k]).powi(2)).sum::<f64>();
        // On a regular grid the farthest pair is a pair of opposite corners,
        // and one of them is bin 0 or bin 1151.
        let from = |q: &[f64; 3]| centres.iter().map(|p| d2(p, q)).fold(0.0, f64::max);
        let diameter = from(&centres[0]).max(from(&centres[HIST_DIM - 1])).sqrt();
        centres.iter().map(|p| p.map(|x| (x / diameter) as f32)).collect()
    })
}

/// The ground cost between two scaled centres, clamped to 1 against
/// rounding at the corners.
#[cfg(any(test, feature = "testing"))]
#[inline(always)]
fn pair_cost(p: &[f32; 3], q: &[f32; 3]) -> f32 {
    let (d0, d1, d2) = (p[0] - q[0], p[1] - q[1], p[2] - q[2]);
    let c = d0 * d0 + d1 * d1 + d2 * d2;
    if c > 1.0 {
        1.0
    } else {
        c
    }
}

/// [`pair_cost`] from `p` to the points `(x_j, y_j, z_j)`, into `out`: the
/// same operations, so the same bits, in a loop that vectorises.
#[inline(always)]
fn cost_row(p: &[f32; 3], x: &[f32], y: &[f32], z: &[f32], out: &mut [f32]) {
    for (((o, &qx), &qy), &qz) in out.iter_mut().zip(x).zip(y).zip(z) {
        let (d0, d1, d2) = (p[0] - qx, p[1] - qy, p[2] - qz);
        let c = d0 * d0 + d1 * d1 + d2 * d2;
        *o = if c > 1.0 { 1.0 } else { c };
    }
}

/// Entropy-regularised transport cost between `a` and `b`, each a sparse
/// distribution given as `(bin, mass)` pairs.
///
/// * Bins must be `< 1152` (panics otherwise: a caller bug). A bin may
///   repeat; its entries act as separate points at the same place, which
///   gives the same cost as merging them.
/// * Masses that are not finite and > 0 are ignored; each side is
///   renormalised to sum 1 internally (so masses need not be normalised),
///   and masses below 1e-20 of the side's total are dropped.
/// * **If either side has no positive mass, returns `f32::INFINITY`**: there
///   is no distribution to transport, and an infinite distance ranks such a
///   candidate last.
/// * `params` should pass [`Sinkhorn::validate`]. If it does not, an
///   epsilon that is NaN or below [`MIN_EPSILON`] acts as `MIN_EPSILON`,
///   one above 1e20 as 1e20, and 0 iterations as 1.
///
/// Runs `params.iterations` Sinkhorn scaling steps (`u = a ./ (K v)`, then
/// `v = b ./ (Kᵀ u)`) on the `na × nb` kernel `K = exp(−C/ε)` of the
/// [`ground_cost`] entries between the supports, and returns
/// `Σ_ij u_i K_ij v_j C_ij`, the transport cost of the plan, in `[0, 1]`.
/// The plan's column sums equal `b`; its row sums approach `a` as the
/// iterations converge. The loop stops early only at an exact fixed point
/// (an iteration that leaves `u` unchanged), where further steps could not
/// change the result.
///
/// Identical inputs give a small positive value, not 0: the entropic blur,
/// at most `ε · H(a)` once converged (`H` the Shannon entropy in nats).
///
/// Never NaN: the result is finite for every input with mass on both sides.
pub fn sinkhorn_distance(a: &[(u16, f32)], b: &[(u16, f32)], params: &Sinkhorn) -> f32 {
    thread_local! {
        /// The last call's buffers, reused so that a call allocates nothing.
        static SPARE: RefCell<Problem> = RefCell::new(Problem::default());
    }
    let run = |p: &mut Problem| {
        if !p.setup(a, b, params) {
            return f32::INFINITY;
        }
        solve(p);
        p.cost
    };
    // Nothing in a solve calls back into this function, so the cell is never
    // borrowed twice; only during thread teardown is it gone.
    SPARE
        .try_with(|cell| {
            let mut p = cell.borrow_mut();
            let cost = run(&mut p);
            p.release_if_large();
            cost
        })
        .unwrap_or_else(|_| run(&mut Problem::default()))
}

/// What a solve did; only the tests look at it.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    /// Log-domain u-steps taken after the first one.
    log_u_steps: usize,
    /// Log-domain v-steps, and how many of them followed a plain u-step
    /// (so that absorbing `u` into `f` mattered).
    log_v_steps: usize,
    log_v_after_plain_u: usize,
    /// Iterations run (fewer than asked only at an exact fixed point).
    iterations: usize,
}

/// The transport problem restricted to the two supports, with its state.
///
/// The plan is `π_ij = u_i K_ij v_j` with `K_ij = exp((f_i + g_j − C_ij)/ε)`:
/// `f`, `g` are the dual potentials absorbed into the kernel at the last
/// log-domain step, `u`, `v` the plain scalings since then.
///
/// Matrices are row-major with `ns` columns, `nb` rounded up to a multiple
/// of 8; `K` has `nr` rows, `na` rounded up to a multiple of 4, `C` `na`. The
/// padding of `K`, `C`, `u` and `v` is zero and never written, so the
/// kernels need no remainder loops and the padding adds nothing to any sum.
/// The buffers are reused from call to call (see [`sinkhorn_distance`]).
#[derive(Default)]
struct Problem {
    na: usize,
    nb: usize,
    ns: usize,
    iterations: usize,
    eps: f32,
    inv_eps: f32,
    /// Row and column bins and masses, normalised (`na` and `nb` long).
    rows: Vec<u16>,
    cols: Vec<u16>,
    a: Vec<f32>,
    b: Vec<f32>,
    /// Scaled centres of the column bins, one coordinate per vector.
    col_xyz: [Vec<f32>; 3],
    /// Cost, `na × ns`.
    c: Vec<f32>,
    /// Kernel, `nr × ns`.
    k: Vec<f32>,
    /// Potentials (`na`, `nb`) and scalings (`nr`, `ns`).
    f: Vec<f32>,
    g: Vec<f32>,
    u: Vec<f32>,
    v: Vec<f32>,
    /// `K v` (`nr`) and `Kᵀ u` (`ns`).
    s: Vec<f32>,
    t: Vec<f32>,
    cost: f32,
    stats: Stats,
}

/// The positive finite masses of one side, normalised, and their bins, into
/// `bins` and `mass`; false if there are none.
fn support(x: &[(u16, f32)], bins: &mut Vec<u16>, mass: &mut Vec<f32>) -> bool {
    let usable = |m: f32| m > 0.0 && m.is_finite();
    let mut total = 0f64;
    for &(bin, m) in x {
        assert!((bin as usize) < HIST_DIM, "sinkhorn_distance: bin {bin} is out of range (0..{HIST_DIM})");
        if usable(m) {
            total += m as f64;
        }
    }
    bins.clear();
    mass.clear();
    if total <= 0.0 {
        return false;
    }
    for &(bin, m) in x {
        if usable(m) {
            let w = (m as f64 / total) as f32;
            if w >= MASS_FLOOR {
                bins.push(bin);
                mass.push(w);
            }
        }
    }
    // The largest mass is at least 1/len of the total, so this holds for any
    // slice shorter than 1e20.
    debug_assert!(!bins.is_empty());
    true
}

/// Makes `v` `n` zeros, keeping its allocation.
fn zeros(v: &mut Vec<f32>, n: usize) {
    v.clear();
    v.resize(n, 0.0);
}

impl Problem {
    /// Sets up the problem between `a` and `b` in the existing buffers;
    /// false if either side has no mass. The cost matrix is filled in by
    /// [`solve`], where it vectorises best.
    fn setup(&mut self, a: &[(u16, f32)], b: &[(u16, f32)], params: &Sinkhorn) -> bool {
        if !support(a, &mut self.rows, &mut self.a) || !support(b, &mut self.cols, &mut self.b) {
            return false;
        }
        let (na, nb) = (self.a.len(), self.b.len());
        let (nr, ns) = (na.next_multiple_of(4), nb.next_multiple_of(8));
        (self.na, self.nb, self.ns) = (na, nb, ns);
        self.iterations = params.iterations.max(1);
        let eps = params.epsilon;
        self.eps = if eps.is_nan() { MIN_EPSILON } else { eps.clamp(MIN_EPSILON, MAX_EPSILON_USED) };
        self.inv_eps = 1.0 / self.eps;
        let pts = scaled_centres();
        for (axis, xyz) in self.col_xyz.iter_mut().enumerate() {
            xyz.clear();
            xyz.extend(self.cols.iter().map(|&q| pts[q as usize][axis]));
        }
        zeros(&mut self.c, na * ns);
        zeros(&mut self.k, nr * ns);
        zeros(&mut self.f, na);
        zeros(&mut self.g, nb);
        zeros(&mut self.u, nr);
        self.u[..na].fill(1.0);
        zeros(&mut self.v, ns);
        self.v[..nb].fill(1.0);
        zeros(&mut self.s, nr);
        zeros(&mut self.t, ns);
        self.cost = 0.0;
        self.stats = Stats::default();
        true
    }

    /// Frees the buffers if a large problem made them big.
    fn release_if_large(&mut self) {
        if self.k.capacity() > KEEP_FLOATS {
            *self = Problem::default();
        }
    }

    /// A fresh problem, set up (the tests' way in).
    #[cfg(test)]
    fn new(a: &[(u16, f32)], b: &[(u16, f32)], params: &Sinkhorn) -> Option<Problem> {
        let mut p = Problem::default();
        p.setup(a, b, params).then_some(p)
    }

    /// The plan `π_ij = u_i K_ij v_j`, `na × nb` row-major.
    #[cfg(test)]
    fn plan(&self) -> Vec<f32> {
        let mut pi = Vec::with_capacity(self.na * self.nb);
        for (row, &ui) in self.k.chunks_exact(self.ns).zip(&self.u[..self.na]) {
            pi.extend(row[..self.nb].iter().zip(&self.v).map(|(&kij, &vj)| ui * kij * vj));
        }
        pi
    }

    /// The cost matrix without padding, `na × nb` row-major.
    #[cfg(test)]
    fn cost_matrix(&self) -> Vec<f32> {
        self.c.chunks_exact(self.ns).flat_map(|row| row[..self.nb].iter().copied()).collect()
    }
}

/// Runs the iterations and stores the cost, with the kernels of the
/// process's [`Cpu`] (with AVX2, the whole solve is compiled for it).
fn solve(p: &mut Problem) {
    sinkhorn::run(Cpu::get(), Solve(p));
}

/// A solve, generic over the kernels, for [`sinkhorn::run`].
struct Solve<'a>(&'a mut Problem);

impl WithKernels for Solve<'_> {
    type Output = ();
    #[inline(always)]
    fn run<K: Kernels>(self, kernels: K) {
        solve_impl(self.0, kernels)
    }
}

#[inline(always)]
fn solve_impl<K: Kernels>(p: &mut Problem, kernels: K) {
    build_cost(p);
    // Iteration 1's u-step, in the log domain from f = g = 0, v = 1: this
    // builds the kernel with every row already scaled to its mass.
    log_u_step::<K>(p);
    // Whether the last v-step was a plain one on the current kernel.
    let mut v_plain = false;
    let mut done = p.iterations;
    for it in 0..p.iterations {
        let mut u_plain = false;
        if it > 0 {
            match plain_u_step(p, kernels) {
                Some(changed) => {
                    u_plain = true;
                    // u is what it was, and v was computed from that u on the
                    // same kernel: every later step would repeat itself.
                    if !changed && v_plain {
                        done = it;
                        break;
                    }
                }
                None => {
                    log_u_step::<K>(p);
                    p.stats.log_u_steps += 1;
                }
            }
        }
        v_plain = plain_v_step(p, kernels);
        if !v_plain {
            log_v_step::<K>(p);
            p.stats.log_v_steps += 1;
            p.stats.log_v_after_plain_u += u_plain as usize;
        }
    }
    p.stats.iterations = done;
    p.cost = transport_cost(p);
}

/// Fills the cost matrix: the [`ground_cost`] entries between the supports,
/// computed rather than gathered from its 5.3 MB.
#[inline(always)]
fn build_cost(p: &mut Problem) {
    let pts = scaled_centres();
    let [x, y, z] = &p.col_xyz;
    for (c_row, &r) in p.c.chunks_exact_mut(p.ns).zip(&p.rows) {
        cost_row(&pts[r as usize], x, y, z, &mut c_row[..p.nb]);
    }
}

/// `u = a ./ (K v)`. `None` (u left partly written) if a sum is too small or
/// a scaling leaves `[1/TAU, TAU]`; otherwise whether any `u_i` changed.
#[inline(always)]
fn plain_u_step<K: Kernels>(p: &mut Problem, kernels: K) -> Option<bool> {
    kernels.mat_vec(&p.k, &p.v, &mut p.s);
    let (ok, changed) = rescale(&mut p.u[..p.na], &p.a, &p.s[..p.na]);
    ok.then_some(changed)
}

/// `v = b ./ (Kᵀ u)`; false (v left partly written) under the same
/// conditions as [`plain_u_step`].
#[inline(always)]
fn plain_v_step<K: Kernels>(p: &mut Problem, kernels: K) -> bool {
    kernels.vec_mat(&p.k, &p.u, &mut p.t);
    rescale(&mut p.v[..p.nb], &p.b, &p.t[..p.nb]).0
}

/// `x = m ./ sums`, and whether every sum was a normal float and every
/// quotient in `[1/TAU, TAU]`, and whether any `x_i` changed. No early exit,
/// so the loop vectorises.
#[inline(always)]
fn rescale(x: &mut [f32], m: &[f32], sums: &[f32]) -> (bool, bool) {
    let (mut bad, mut changed) = (0u32, 0u32);
    for ((xi, &mi), &si) in x.iter_mut().zip(m).zip(sums) {
        let q = mi / si;
        bad += !((si >= f32::MIN_POSITIVE) & (1.0 / TAU..=TAU).contains(&q)) as u32;
        changed += (q != *xi) as u32;
        *xi = q;
    }
    (bad == 0, changed > 0)
}

/// The u-step in the log domain: absorbs `v` into `g`, sets
/// `f_i = ε ln a_i − ε LSE_j((g_j − C_ij)/ε)` and rebuilds the kernel, whose
/// rows then sum to `a` (so every entry is ≤ 1), with `u = v = 1`.
#[inline(always)]
fn log_u_step<K: Kernels>(p: &mut Problem) {
    let (eps, inv_eps, nb, ns) = (p.eps, p.inv_eps, p.nb, p.ns);
    for (gj, vj) in p.g.iter_mut().zip(&mut p.v[..nb]) {
        *gj += eps * vj.ln();
        *vj = 1.0;
    }
    let rows = p.k.chunks_exact_mut(ns).zip(p.c.chunks_exact(ns));
    for ((k_row, c_row), ((fi, ui), &ai)) in rows.zip(p.f.iter_mut().zip(&mut p.u).zip(&p.a)) {
        let k_row = &mut k_row[..nb];
        for ((kij, &cij), &gj) in k_row.iter_mut().zip(c_row).zip(&p.g) {
            *kij = (gj - cij) * inv_eps;
        }
        let m = max_of(k_row);
        for kij in k_row.iter_mut() {
            *kij = exp_nonpos(*kij - m, K::FMA);
        }
        // S ≥ 1: the largest term is exp(0).
        let s = sum_of(k_row);
        let scale = ai / s;
        for kij in k_row.iter_mut() {
            *kij *= scale;
        }
        *fi = eps * (ai.ln() - m - s.ln());
        *ui = 1.0;
    }
}

/// The v-step in the log domain: absorbs `u` into `f`, sets
/// `g_j = ε ln b_j − ε LSE_i((f_i − C_ij)/ε)` and rebuilds the kernel, whose
/// columns then sum to `b`, with `u = v = 1`.
#[inline(always)]
fn log_v_step<K: Kernels>(p: &mut Problem) {
    let (eps, inv_eps, nb, ns) = (p.eps, p.inv_eps, p.nb, p.ns);
    for (fi, ui) in p.f.iter_mut().zip(&mut p.u) {
        *fi += eps * ui.ln();
        *ui = 1.0;
    }
    // Column maxima of z_ij = (f_i − C_ij)/ε, with z stored in k (t is scratch).
    let colmax = &mut p.t[..nb];
    colmax.fill(f32::NEG_INFINITY);
    for ((k_row, c_row), &fi) in p.k.chunks_exact_mut(ns).zip(p.c.chunks_exact(ns)).zip(&p.f) {
        for ((kij, &cij), mj) in k_row[..nb].iter_mut().zip(c_row).zip(colmax.iter_mut()) {
            let z = (fi - cij) * inv_eps;
            *kij = z;
            *mj = if z > *mj { z } else { *mj };
        }
    }
    // Column sums S_j of exp(z_ij − m_j), accumulated in g (each ≥ 1).
    p.g.fill(0.0);
    for k_row in p.k.chunks_exact_mut(ns).take(p.na) {
        for ((kij, &mj), sj) in k_row[..nb].iter_mut().zip(colmax.iter()).zip(&mut p.g) {
            let e = exp_nonpos(*kij - mj, K::FMA);
            *kij = e;
            *sj += e;
        }
    }
    for ((gj, vj), (&bj, mj)) in p.g.iter_mut().zip(&mut p.v[..nb]).zip(p.b.iter().zip(colmax.iter_mut())) {
        let s = *gj;
        *gj = eps * (bj.ln() - *mj - s.ln());
        // From here colmax holds the column scale b_j / S_j.
        *mj = bj / s;
        *vj = 1.0;
    }
    for k_row in p.k.chunks_exact_mut(ns).take(p.na) {
        for (kij, &sj) in k_row[..nb].iter_mut().zip(colmax.iter()) {
            *kij *= sj;
        }
    }
}

/// `Σ_i u_i Σ_j K_ij v_j C_ij`.
#[inline(always)]
fn transport_cost(p: &Problem) -> f32 {
    let mut total = 0f64;
    for ((k_row, c_row), &ui) in p.k.chunks_exact(p.ns).zip(p.c.chunks_exact(p.ns)).zip(&p.u) {
        let mut acc = [0f32; 8];
        for ((x, y), z) in k_row.chunks_exact(8).zip(p.v.chunks_exact(8)).zip(c_row.chunks_exact(8)) {
            for l in 0..8 {
                acc[l] += x[l] * y[l] * z[l];
            }
        }
        total += (ui * acc.iter().sum::<f32>()) as f64;
    }
    total as f32
}

/// Sum over eight lanes, so the compiler vectorises it without reassociating.
#[inline(always)]
fn sum_of(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for ch in chunks {
        for l in 0..8 {
            acc[l] += ch[l];
        }
    }
    acc.iter().chain(rest).sum()
}

/// Maximum over eight lanes (inputs are never NaN).
#[inline(always)]
fn max_of(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for ch in chunks {
        for l in 0..8 {
            acc[l] = if ch[l] > acc[l] { ch[l] } else { acc[l] };
        }
    }
    acc.iter().chain(rest).fold(f32::NEG_INFINITY, |m, &r| if r > m { r } else { m })
}

/// `a · b + c`, fused (one rounding) when `fma`.
#[inline(always)]
fn madd(a: f32, b: f32, c: f32, fma: bool) -> f32 {
    if fma {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `e^x` for `x ≤ 0` (Cephes `expf`: Cody–Waite reduction and a degree-6
/// polynomial, relative error < 3e-7), 0 below −87 where f32 would go
/// subnormal. Branch-free, so loops over it vectorise.
#[inline(always)]
fn exp_nonpos(x: f32, fma: bool) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = if x < -87.0 { -87.0 } else { x };
    let shifted = xc * std::f32::consts::LOG2_E + MAGIC;
    let n = shifted - MAGIC;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut poly = 1.987_569_1e-4;
    for coef in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
        poly = madd(poly, r, coef, fma);
    }
    let er = madd(poly, r * r, r, fma) + 1.0;
    // n ∈ [−126, 0]: 2^n is a normal float built from its exponent bits.
    let ni = shifted.to_bits().wrapping_sub(MAGIC.to_bits()) as i32;
    let two_n = f32::from_bits(((ni + 127) as u32) << 23);
    if x < -87.0 {
        0.0
    } else {
        er * two_n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::color::{histogram_of_pixels, srgb_to_lab};
    use proptest::prelude::*;

    fn params(epsilon: f32, iterations: usize) -> Sinkhorn {
        Sinkhorn { epsilon, iterations }
    }

    /// Sparse pairs of a dense histogram.
    fn sparse(h: &[f32]) -> Vec<(u16, f32)> {
        h.iter().enumerate().filter(|(_, &m)| m > 0.0).map(|(i, &m)| (i as u16, m)).collect()
    }

    /// The histogram of an image made of `colours` in the given shares.
    fn hist_of(colours: &[([u8; 3], usize)]) -> Vec<(u16, f32)> {
        sparse(&histogram_of_pixels(colours.iter().flat_map(|&(c, n)| std::iter::repeat_n(c, n))))
    }

    fn solid(rgb: [u8; 3]) -> Vec<(u16, f32)> {
        hist_of(&[(rgb, 1)])
    }

    /// The solved problem, for the plan and the stats.
    fn solved(a: &[(u16, f32)], b: &[(u16, f32)], p: &Sinkhorn) -> Problem {
        let mut pr = Problem::new(a, b, p).expect("mass on both sides");
        solve(&mut pr);
        pr
    }

    fn entropy(x: &[(u16, f32)]) -> f64 {
        let t: f64 = x.iter().map(|&(_, m)| m as f64).sum();
        x.iter().map(|&(_, m)| m as f64 / t).filter(|&m| m > 0.0).map(|m| -m * m.ln()).sum()
    }

    fn gc(i: u16, j: u16) -> f32 {
        ground_cost()[i as usize * HIST_DIM + j as usize]
    }

    /// Exact optimal transport cost for tiny supports: the optimum is at a
    /// vertex of the transportation polytope, i.e. a spanning tree of the
    /// complete bipartite graph carrying the unique flow it allows. Tries
    /// every set of na + nb − 1 edges.
    fn exact_emd(a: &[(u16, f32)], b: &[(u16, f32)]) -> f64 {
        let (na, nb) = (a.len(), b.len());
        assert!(na * nb <= 20);
        let ta: f64 = a.iter().map(|x| x.1 as f64).sum();
        let tb: f64 = b.iter().map(|x| x.1 as f64).sum();
        let mut best = f64::INFINITY;
        for mask in 0u32..(1 << (na * nb)) {
            if mask.count_ones() as usize != na + nb - 1 {
                continue;
            }
            let mut edges: Vec<(usize, usize)> =
                (0..na * nb).filter(|e| mask >> e & 1 == 1).map(|e| (e / nb, e % nb)).collect();
            let mut supply: Vec<f64> = a.iter().map(|x| x.1 as f64 / ta).collect();
            let mut demand: Vec<f64> = b.iter().map(|x| x.1 as f64 / tb).collect();
            let mut cost = 0.0;
            let mut ok = true;
            // Peel leaves: a node with one remaining edge sends all it has left along it.
            while !edges.is_empty() {
                let deg_r = |i: usize, e: &[(usize, usize)]| e.iter().filter(|x| x.0 == i).count();
                let deg_c = |j: usize, e: &[(usize, usize)]| e.iter().filter(|x| x.1 == j).count();
                let leaf = edges.iter().position(|&(i, j)| deg_r(i, &edges) == 1 || deg_c(j, &edges) == 1);
                let Some(pos) = leaf else {
                    ok = false; // a cycle: not a tree
                    break;
                };
                let (i, j) = edges.swap_remove(pos);
                let flow = if deg_r(i, &edges) == 0 { supply[i] } else { demand[j] };
                if flow < -1e-12 {
                    ok = false;
                    break;
                }
                supply[i] -= flow;
                demand[j] -= flow;
                cost += flow * gc(a[i].0, b[j].0) as f64;
            }
            if ok && supply.iter().chain(&demand).all(|r| r.abs() < 1e-9) {
                best = best.min(cost);
            }
        }
        best
    }

    #[test]
    fn ground_cost_is_scaled_squared_lab_distance() {
        let c = ground_cost();
        assert_eq!(c.len(), HIST_DIM * HIST_DIM);
        let centres = bin_centers_lab();
        let d2 = |i: usize, j: usize| (0..3).map(|k| (centres[i][k] - centres[j][k]).powi(2)).sum::<f64>();
        // The extremes of the grid are bins 0 and 1151.
        let max = d2(0, HIST_DIM - 1);
        assert!((c[HIST_DIM - 1] - 1.0).abs() < 1e-6);
        assert!(c.iter().all(|&x| (0.0..=1.0).contains(&x)));
        for &(i, j) in &[(0, 1), (5, 700), (1151, 3), (144, 12), (600, 600), (1151, 0)] {
            assert!((c[i * HIST_DIM + j] as f64 - d2(i, j) / max).abs() < 1e-6, "{i} {j}");
        }
        // The solver computes its entries rather than gathering them: the
        // very same values.
        let (a, b) = (solid([200, 30, 40]), hist_of(&[([10, 200, 30], 1), ([5, 5, 5], 1), ([255, 255, 255], 1)]));
        let mut p = Problem::new(&a, &b, &Sinkhorn::default()).unwrap();
        build_cost(&mut p);
        let gathered: Vec<f32> = a.iter().flat_map(|&(i, _)| b.iter().map(move |&(j, _)| gc(i, j))).collect();
        assert_eq!(p.cost_matrix(), gathered);
        for i in (0..HIST_DIM).step_by(7) {
            assert_eq!(c[i * HIST_DIM + i], 0.0);
            for j in (0..HIST_DIM).step_by(13) {
                assert_eq!(c[i * HIST_DIM + j], c[j * HIST_DIM + i]);
                assert!((0.0..=1.0).contains(&c[i * HIST_DIM + j]));
            }
        }
    }

    #[test]
    fn fast_exp_matches_std() {
        let mut x = 0.0f32;
        while x > -100.0 {
            let got = exp_nonpos(x, false) as f64;
            let want = (x as f64).exp();
            if x >= -87.0 {
                assert!((got - want).abs() <= 3e-7 * want, "exp({x}) = {got}, want {want}");
            } else {
                assert_eq!(got, 0.0);
            }
            x -= 0.0137;
        }
        assert_eq!(exp_nonpos(0.0, false), 1.0);
        assert_eq!(exp_nonpos(f32::NEG_INFINITY, false), 0.0);
    }

    #[test]
    fn identical_distributions_cost_little() {
        let p = Sinkhorn::default();
        let a = hist_of(&[([200, 30, 40], 5), ([20, 160, 60], 3), ([30, 40, 200], 2)]);
        let same = sinkhorn_distance(&a, &a, &p);
        // Converged, the entropic plan pays at most ε·H(a) more than the
        // optimum (0 here): ⟨π_ε, C⟩ − ε H(π_ε) ≤ ⟨π*, C⟩ − ε H(π*) and
        // H(π_ε) ≤ 2 H(a), H(π*) = H(a).
        let bound = p.epsilon as f64 * entropy(&a);
        assert!(same > 0.0 && (same as f64) < bound, "d(a, a) = {same}, bound {bound}");
        // It is well below the cost to an image of other colours. (Not
        // necessarily below a slight shift of one colour: at ε = 0.05 the
        // blur, about 0.008 here, is as large as such a cost.)
        let b = hist_of(&[([250, 200, 40], 1), ([90, 90, 90], 1), ([10, 10, 30], 4)]);
        let other = sinkhorn_distance(&a, &b, &p);
        assert!(same < 0.1 * other, "d(a, a) = {same}, d(a, b) = {other}");
        // An independent coupling (what a broken solver would give) costs much more.
        let independent: f64 =
            a.iter().flat_map(|&(i, x)| a.iter().map(move |&(j, y)| (x * y) as f64 * gc(i, j) as f64)).sum();
        assert!((same as f64) < 0.1 * independent, "d(a, a) = {same}, independent {independent}");
    }

    #[test]
    fn symmetric() {
        let p = Sinkhorn::default();
        let pairs = [
            (solid([255, 0, 0]), solid([0, 0, 255])),
            (
                hist_of(&[([200, 30, 40], 5), ([20, 160, 60], 3), ([30, 40, 200], 2)]),
                hist_of(&[([250, 200, 40], 1), ([90, 90, 90], 1), ([10, 10, 30], 4)]),
            ),
            (hist_of(&[([12, 200, 100], 2), ([255, 255, 255], 1)]), solid([128, 64, 0])),
        ];
        for (a, b) in &pairs {
            let (ab, ba) = (sinkhorn_distance(a, b, &p), sinkhorn_distance(b, a, &p));
            assert!((ab - ba).abs() <= 1e-3 * ab.max(ba), "{ab} vs {ba}");
        }
    }

    #[test]
    fn dirac_cost_is_ground_cost() {
        for &(i, j) in &[(0u16, 1151u16), (17, 900), (500, 501), (1000, 0), (77, 77)] {
            for p in [Sinkhorn::default(), params(0.001, 5), params(1.0, 1)] {
                // One point each side: the only plan moves all mass from i to j,
                // whatever ε, so there is no blur at all.
                let d = sinkhorn_distance(&[(i, 0.3)], &[(j, 2.0)], &p);
                let want = gc(i, j);
                assert!((d - want).abs() <= 1e-6 * want.max(1e-3), "{i}->{j} {p:?}: {d} vs {want}");
            }
        }
    }

    #[test]
    fn monotonic_in_colour_distance() {
        let p = Sinkhorn::default();
        let (red, orange, blue) = ([255, 0, 0], [255, 140, 0], [0, 0, 255]);
        // Check the colours really are ordered that way in Lab.
        let lab_d2 = |x: [u8; 3], y: [u8; 3]| {
            let (x, y) = (srgb_to_lab(x), srgb_to_lab(y));
            (0..3).map(|k| (x[k] - y[k]).powi(2)).sum::<f64>()
        };
        assert!(lab_d2(red, orange) < lab_d2(red, blue));
        let (r, o, b) = (solid(red), solid(orange), solid(blue));
        let (ro, rb) = (sinkhorn_distance(&r, &o, &p), sinkhorn_distance(&r, &b, &p));
        assert!(ro < rb, "red-orange {ro}, red-blue {rb}");
        // Transport with squared cost is at least the squared distance
        // between the means (Jensen), and a solid colour's histogram has the
        // colour as its mean: so each cost is bounded below by its colour gap.
        let max = {
            let c = bin_centers_lab();
            (0..3).map(|k| (c[0][k] - c[HIST_DIM - 1][k]).powi(2)).sum::<f64>()
        };
        assert!(ro as f64 >= lab_d2(red, orange) / max - 1e-4, "{ro}");
        assert!(rb as f64 >= lab_d2(red, blue) / max - 1e-4, "{rb}");
    }

    #[test]
    fn plan_conserves_mass() {
        let a = hist_of(&[([200, 30, 40], 5), ([20, 160, 60], 3), ([30, 40, 200], 2)]);
        let b = hist_of(&[([250, 200, 40], 1), ([90, 90, 90], 1), ([10, 10, 30], 4)]);
        for p in [params(0.05, 300), params(0.01, 2000)] {
            let pr = solved(&a, &b, &p);
            let pi = pr.plan();
            let (na, nb) = (pr.na, pr.nb);
            for i in 0..na {
                let row: f32 = pi[i * nb..][..nb].iter().sum();
                assert!((row - pr.a[i]).abs() < 1e-4, "{p:?} row {i}: {row} vs {}", pr.a[i]);
            }
            for j in 0..nb {
                let col: f32 = (0..na).map(|i| pi[i * nb + j]).sum();
                assert!((col - pr.b[j]).abs() < 1e-5, "{p:?} column {j}: {col} vs {}", pr.b[j]);
            }
            // The reported cost is that of this plan.
            let cost: f64 = (0..na * nb).map(|e| pi[e] as f64 * pr.c[e] as f64).sum();
            assert!((cost - pr.cost as f64).abs() < 1e-5);
        }
    }

    #[test]
    fn close_to_exact_emd_for_small_epsilon() {
        // Simple deterministic generator: a few supports of 2–4 bins.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let p = params(0.005, 500);
        for case in 0..40 {
            let mut side = |n: usize| -> Vec<(u16, f32)> {
                (0..n).map(|_| ((next() % HIST_DIM as u64) as u16, 0.05 + (next() % 1000) as f32 / 1000.0)).collect()
            };
            let (na, nb) = (2 + case % 3, 2 + (case / 3) % 3);
            let (a, b) = (side(na), side(nb));
            let exact = exact_emd(&a, &b);
            let d = sinkhorn_distance(&a, &b, &p) as f64;
            // Above the optimum by at most ε·min(H(a), H(b)) (as in
            // identical_distributions_cost_little, with H(π*) ≥ max H), and
            // not below it beyond what unconverged marginals allow.
            let blur = p.epsilon as f64 * entropy(&a).min(entropy(&b));
            assert!(d <= exact + blur + 1e-4 && d >= exact - 2e-3, "case {case}: sinkhorn {d}, exact {exact}");
        }
        // The 2×2 case by hand: a = (0.7, 0.3), b = (0.4, 0.6) between two
        // far bins: 0.3 must cross from the first to the second.
        let (x, y) = (0u16, 1151u16);
        let a = [(x, 0.7), (y, 0.3)];
        let b = [(x, 0.4), (y, 0.6)];
        assert!((exact_emd(&a, &b) - 0.3).abs() < 1e-6);
        assert!((sinkhorn_distance(&a, &b, &p) - 0.3).abs() < 1e-3);
    }

    /// Textbook log-domain Sinkhorn in f64, the same iterations from g = 0:
    /// `f = ε ln a − ε LSE_j((g_j − C_ij)/ε)`, `g = ε ln b − ε LSE_i((f_i − C_ij)/ε)`.
    fn reference(a: &[(u16, f32)], b: &[(u16, f32)], p: &Sinkhorn) -> f64 {
        let norm = |x: &[(u16, f32)]| {
            let t: f64 = x.iter().map(|e| e.1 as f64).sum();
            x.iter().map(|e| (e.0, e.1 as f64 / t)).collect::<Vec<_>>()
        };
        let (a, b) = (norm(a), norm(b));
        let eps = p.epsilon as f64;
        let c = |i: usize, j: usize| gc(a[i].0, b[j].0) as f64;
        let lse = |z: &mut dyn Iterator<Item = f64>| {
            let z: Vec<f64> = z.collect();
            let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            m + z.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
        };
        let (mut f, mut g) = (vec![0.0; a.len()], vec![0.0; b.len()]);
        for _ in 0..p.iterations {
            for i in 0..a.len() {
                f[i] = eps * a[i].1.ln() - eps * lse(&mut (0..b.len()).map(|j| (g[j] - c(i, j)) / eps));
            }
            for j in 0..b.len() {
                g[j] = eps * b[j].1.ln() - eps * lse(&mut (0..a.len()).map(|i| (f[i] - c(i, j)) / eps));
            }
        }
        let plan_entry = |i: usize, j: usize| ((f[i] + g[j] - c(i, j)) / eps).exp();
        (0..a.len()).flat_map(|i| (0..b.len()).map(move |j| (i, j))).map(|(i, j)| plan_entry(i, j) * c(i, j)).sum()
    }

    #[test]
    fn matches_a_log_domain_f64_reference() {
        let hists = [
            hist_of(&[([200, 30, 40], 5), ([20, 160, 60], 3), ([30, 40, 200], 2)]),
            hist_of(&[([250, 200, 40], 1), ([90, 90, 90], 1), ([10, 10, 30], 4)]),
            hist_of(&[([12, 200, 100], 2), ([255, 255, 255], 1), ([128, 64, 0], 1), ([70, 0, 140], 3)]),
            solid([0, 0, 255]),
        ];
        let (mut log_u, mut log_v_absorbing) = (0, 0);
        for (x, a) in hists.iter().enumerate() {
            for b in &hists[x + 1..] {
                for p in [
                    Sinkhorn::default(),
                    params(0.01, 100),
                    params(0.002, 200),
                    params(0.5, 7),
                    params(0.05, 1),
                    params(0.0005, 30),
                    params(0.001, 60),
                    params(0.002, 15),
                ] {
                    let want = reference(a, b, &p);
                    let pr = solved(a, b, &p);
                    log_u += pr.stats.log_u_steps;
                    log_v_absorbing += pr.stats.log_v_after_plain_u;
                    let got = pr.cost as f64;
                    // Observed: within 5e-7 relative, f32 against f64.
                    assert!((got - want).abs() <= 1e-5 * want + 1e-7, "{p:?}: {got} vs reference {want}");
                }
            }
        }
        // Some of these went through both log-domain fallbacks, including
        // v-steps after plain u-steps (where u must be absorbed into f), and
        // stopped short of convergence, where a slip would show.
        assert!(log_u > 0 && log_v_absorbing > 0, "{log_u} {log_v_absorbing}");
    }

    #[test]
    fn small_epsilon_uses_log_steps_and_stays_accurate() {
        let a = hist_of(&[([200, 30, 40], 5), ([20, 160, 60], 3), ([30, 40, 200], 2)]);
        let b = hist_of(&[([250, 200, 40], 1), ([90, 90, 90], 1), ([10, 10, 30], 4)]);
        let pr = solved(&a, &b, &params(0.001, 300));
        assert!(pr.stats.log_u_steps + pr.stats.log_v_steps > 0, "expected the log-domain fallback to run");
        assert!(pr.cost.is_finite() && pr.cost > 0.0);
        // Less blur than at ε = 0.05, so no more cost than there (both are
        // above the exact optimum, by at most ε·H).
        let d05 = sinkhorn_distance(&a, &b, &params(0.05, 300));
        assert!(pr.cost <= d05 + 1e-4, "{} vs {d05}", pr.cost);
        // A cluster against bins of which some are far from all of it: in the
        // plain domain their columns of K underflow to 0 (0/0, then NaN).
        let a: Vec<(u16, f32)> = (0..12).map(|i| (i, 1.0)).collect();
        let b = [(5, 1.0), (600, 1.0), (1100, 1.0)];
        for p in [params(0.001, 1), params(0.001, 50), params(0.0002, 100)] {
            let (got, want) = (sinkhorn_distance(&a, &b, &p) as f64, reference(&a, &b, &p));
            assert!((got - want).abs() <= 1e-5 * want, "{p:?}: {got} vs reference {want}");
        }
        // At the default ε no fallback is needed for ordinary histograms.
        let pr = solved(&a, &b, &Sinkhorn::default());
        assert_eq!(pr.stats.log_u_steps + pr.stats.log_v_steps, 0);
    }

    #[test]
    fn empty_sides_are_infinitely_far() {
        let p = Sinkhorn::default();
        let a = [(3u16, 1.0f32)];
        assert_eq!(sinkhorn_distance(&[], &a, &p), f32::INFINITY);
        assert_eq!(sinkhorn_distance(&a, &[(5, 0.0)], &p), f32::INFINITY);
        assert_eq!(sinkhorn_distance(&[(5, -1.0), (6, f32::NAN)], &a, &p), f32::INFINITY);
        // Unusable masses next to usable ones are ignored.
        let d = sinkhorn_distance(&[(5, -1.0), (6, f32::NAN), (3, 2.0), (9, f32::INFINITY)], &a, &p);
        assert_eq!(d, 0.0);
    }

    #[test]
    fn unnormalised_and_split_inputs_give_the_same_cost() {
        let p = Sinkhorn::default();
        let a = hist_of(&[([200, 30, 40], 5), ([20, 160, 60], 3)]);
        let b = hist_of(&[([250, 200, 40], 1), ([10, 10, 30], 4)]);
        let d = sinkhorn_distance(&a, &b, &p);
        let a3: Vec<_> = a.iter().map(|&(i, m)| (i, 3.0 * m)).collect();
        assert!((sinkhorn_distance(&a3, &b, &p) - d).abs() <= 1e-5 * d);
        // Splitting a bin's mass over two entries for the same bin.
        let split: Vec<_> = a.iter().flat_map(|&(i, m)| [(i, 0.25 * m), (i, 0.75 * m)]).collect();
        let ds = sinkhorn_distance(&split, &b, &p);
        assert!((ds - d).abs() <= 1e-3 * d, "{ds} vs {d}");
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn bin_out_of_range_panics() {
        sinkhorn_distance(&[(1152, 1.0)], &[(0, 1.0)], &Sinkhorn::default());
    }

    #[test]
    fn unvalidated_params_are_clamped() {
        let a = hist_of(&[([200, 30, 40], 5), ([20, 160, 60], 3)]);
        let b = solid([9, 9, 9]);
        for p in [params(0.0, 0), params(f32::NAN, 3), params(-1.0, 3), params(f32::INFINITY, 3), params(1e-30, 3)] {
            let d = sinkhorn_distance(&a, &b, &p);
            assert!(d.is_finite() && (0.0..=1.0001).contains(&d), "{p:?}: {d}");
        }
    }

    #[test]
    fn simd_and_portable_agree() {
        let hists = [
            hist_of(&[([200, 30, 40], 5), ([20, 160, 60], 3), ([30, 40, 200], 2), ([1, 2, 3], 1)]),
            hist_of(&[([250, 200, 40], 1), ([90, 90, 90], 1), ([10, 10, 30], 4)]),
            // 130+ bins: exercises the 64-column blocks.
            hist_of(
                &(0..40u8)
                    .map(|i| ([i * 6, 255 - i * 6, (i as u32 * 37 % 255) as u8], 1 + i as usize % 3))
                    .collect::<Vec<_>>(),
            ),
        ];
        for a in &hists {
            for b in &hists {
                for p in [Sinkhorn::default(), params(0.001, 200), params(0.7, 13)] {
                    let mut y = Problem::new(a, b, &p).unwrap();
                    sinkhorn::run(Cpu::PORTABLE, Solve(&mut y));
                    for cpu in Cpu::available() {
                        let mut x = Problem::new(a, b, &p).unwrap();
                        sinkhorn::run(cpu, Solve(&mut x));
                        // FMA rounds differently; the results agree to rounding.
                        assert!(
                            (x.cost - y.cost).abs() <= 1e-4 * y.cost + 1e-7,
                            "{cpu:?} {p:?}: {} vs {}",
                            x.cost,
                            y.cost
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn validate_rejects_bad_parameters() {
        assert!(Sinkhorn::default().validate().is_ok());
        assert_eq!(Sinkhorn::default(), params(0.05, 50));
        assert!(params(MIN_EPSILON, 1).validate().is_ok());
        assert!(params(1e6, MAX_ITERATIONS).validate().is_ok());
        for bad in [
            params(0.0, 50),
            params(-0.1, 50),
            params(f32::NAN, 50),
            params(f32::INFINITY, 50),
            params(1e-6, 50),
            params(0.05, 0),
            params(0.05, MAX_ITERATIONS + 1),
        ] {
            match bad.validate() {
                Err(Error::InvalidArgument { name, what }) => {
                    assert!(name == "epsilon" || name == "iterations", "{name}");
                    assert!(!what.contains('\n') && what.contains("sinkhorn"), "{what}");
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    fn sparse_hist() -> impl Strategy<Value = Vec<(u16, f32)>> {
        let mass = prop_oneof![
            8 => 0.0f32..1.0,
            1 => Just(0.0f32),
            1 => 1e-30f32..1e-20,
            1 => 1e20f32..1e30,
        ];
        // Bins in a small cluster, such a cluster with outliers (a column
        // far from every row drives the kernel to underflow at small ε), in
        // a real histogram's range, or anywhere.
        let base = 0u16..1152;
        let spread = prop_oneof![Just(12u16), Just(150), Just(1152)];
        let outliers = prop_oneof![Just(0u16), Just(10)];
        (base, spread, outliers, proptest::collection::vec((0u16..1152, 0u16..100, mass), 1..300)).prop_map(
            |(b, spread, outliers, v)| {
                v.into_iter()
                    .map(|(off, coin, m)| ((b + if coin < outliers { off } else { off % spread }) % 1152, m))
                    .collect()
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn never_nan(a in sparse_hist(), b in sparse_hist(), log_eps in -3f32..0.0, iterations in 1usize..100) {
            // ε in [0.001, 1], log-uniform so that small values, where the
            // plain domain breaks down, are well represented.
            let p = params(10f32.powf(log_eps), iterations);
            let d = sinkhorn_distance(&a, &b, &p);
            let has_mass = |x: &[(u16, f32)]| x.iter().any(|&(_, m)| m > 0.0);
            if has_mass(&a) && has_mass(&b) {
                prop_assert!(d.is_finite() && (0.0..=1.0001).contains(&d), "{:?}: {}", p, d);
            } else {
                prop_assert_eq!(d, f32::INFINITY);
            }
        }
    }
}
