#![cfg_attr(not(any(test, feature = "testing")), allow(dead_code))]
//! The exact Earth Mover's Distance between two discrete distributions, by
//! the transportation simplex.
//!
//! # The problem
//!
//! Supplies `a_i ≥ 0` (i < m) and demands `b_j ≥ 0` (j < n), both summing to
//! 1, and costs `c_ij` (here the ΔE76 distance in CIE Lab). The EMD is the
//! value of the linear programme
//!
//! ```text
//! min Σ_ij c_ij x_ij   s.t.   Σ_j x_ij = a_i,   Σ_i x_ij = b_j,   x ≥ 0
//! ```
//!
//! whose dual is `max Σ a_i u_i + Σ b_j v_j` s.t. `u_i + v_j ≤ c_ij`.
//!
//! # The method
//!
//! A basis is a spanning tree of the complete bipartite graph rows × columns:
//! `m + n − 1` cells, some possibly carrying zero flow. Given a basis the
//! potentials follow from `u_i + v_j = c_ij` on its cells (with `u_0 = 0`),
//! walking the tree; a cell outside it with reduced cost
//! `r_ij = c_ij − u_i − v_j < 0` can lower the cost: adding it closes one
//! cycle with the tree, flow `θ` (the smallest flow on the cycle's
//! alternate cells) moves around the cycle, and the cell that reaches zero
//! leaves. When no reduced cost is negative the dual is feasible, primal and
//! dual objectives are equal, and the flow is optimal (complementary
//! slackness). This is the network simplex on a bipartite graph.
//!
//! - Start: columns in order, each takes its demand from the cheapest rows
//!   that still have supply. Every allocation exhausts its row or its
//!   column, so the allocated cells form a forest (the earliest cell of any
//!   cycle would have exhausted a node that a later cell of the cycle still
//!   uses); zero-flow cells join its trees into a spanning tree.
//! - Entering cell: block search (the best reduced cost in the next block of
//!   cells, cycling through all of them; a whole round without a negative one
//!   ends the solve), which costs little per pivot on larger problems.
//! - Degenerate pivots (`θ = 0`) can in principle cycle. After a generous
//!   number of pivots the solver switches to Bland's rule (the first
//!   eligible cell enters, ties leave by smallest cell index), which cannot
//!   cycle, so every solve ends.
//!
//! A query of at most 16 colours against a histogram's ~65–200 non-zero
//! bins is solved in microseconds; two histograms of ~150 bins each in
//! about a millisecond.

use super::histogram::{bin_centers_lab, HIST_DIM};
use crate::error::{Error, Result};

/// The largest fuzz a query may have, in ΔE: beyond it every colour of the
/// Lab gamut is within reach of every other and the distance says nothing.
pub const MAX_FUZZ: f64 = 100.0;

/// Masses and leftovers below this (relative to a total of 1) count as zero:
/// far below f32 resolution, where the histograms come from.
const MASS_EPS: f64 = 1e-14;

/// Reusable buffers of the transportation simplex; one per thread.
#[derive(Default, Debug)]
pub struct Transport {
    supply: Vec<f64>,
    demand: Vec<f64>,
    /// Supply not yet allocated, while building the start.
    left: Vec<f64>,
    /// Basis cells: row, column, flow.
    cell_row: Vec<u32>,
    cell_col: Vec<u32>,
    flow: Vec<f64>,
    /// Potentials: rows `u`, then columns `v`, as one array of nodes.
    pot: Vec<f64>,
    /// Tree walk: parent node, the cell to it, depth; nodes 0..m are rows,
    /// m..m+n columns.
    parent: Vec<u32>,
    parent_cell: Vec<u32>,
    depth: Vec<u32>,
    /// Adjacency of the tree: the basis cells at each node.
    adj: Vec<Vec<u32>>,
    stack: Vec<u32>,
    /// Cycle of a pivot: cell, whether it gains flow, whether it lies on
    /// the entering row's side of the tree.
    cycle: Vec<(u32, bool, bool)>,
    uf: Vec<u32>,
}

/// Checks one side's masses and returns their total.
fn total(masses: &[f64], side: &str) -> Result<f64> {
    if masses.is_empty() {
        return Err(Error::InvalidInput(format!("EMD: the {side} distribution is empty")));
    }
    if let Some(x) = masses.iter().find(|x| !x.is_finite() || **x < 0.0) {
        return Err(Error::InvalidInput(format!("EMD: the {side} distribution has mass {x}, not finite and ≥ 0")));
    }
    let t: f64 = masses.iter().sum();
    if !(t > 0.0 && t.is_finite()) {
        return Err(Error::InvalidInput(format!("EMD: the {side} distribution has total mass {t}")));
    }
    Ok(t)
}

impl Transport {
    /// The exact EMD between `supply` (m masses) and `demand` (n masses),
    /// each normalised to sum 1, with `cost` the m × n ground distances in
    /// row-major order. Errors (one line) when a side is empty, a mass is
    /// negative or not finite, a side sums to zero, or `cost` has the wrong
    /// length or a cost that is not finite.
    pub fn emd(&mut self, supply: &[f64], demand: &[f64], cost: &[f64]) -> Result<f64> {
        let (ta, tb) = (total(supply, "first")?, total(demand, "second")?);
        if cost.len() != supply.len() * demand.len() {
            return Err(Error::InvalidInput(format!(
                "EMD: {} costs given for {} × {} masses",
                cost.len(),
                supply.len(),
                demand.len()
            )));
        }
        if cost.iter().any(|c| !c.is_finite()) {
            return Err(Error::InvalidInput("EMD: a ground distance is not finite".into()));
        }
        self.supply.clear();
        self.supply.extend(supply.iter().map(|x| x / ta));
        self.demand.clear();
        self.demand.extend(demand.iter().map(|x| x / tb));
        Ok(self.solve(cost))
    }

    /// The solve proper on the normalised `self.supply` and `self.demand`.
    fn solve(&mut self, cost: &[f64]) -> f64 {
        let (m, n) = (self.supply.len(), self.demand.len());
        self.solve_switching(cost, 50 * (m + n) + 1000)
    }

    /// [`Transport::solve`], switching to Bland's rule after `bland_after` pivots.
    fn solve_switching(&mut self, cost: &[f64], bland_after: usize) -> f64 {
        let (m, n) = (self.supply.len(), self.demand.len());
        self.start(cost);
        self.tree(cost);
        let cmax = cost.iter().fold(0.0f64, |a, &c| a.max(c.abs()));
        let tol = 1e-11 * cmax.max(1.0);
        let cells = m * n;
        let block = if cells <= 4096 { cells } else { ((cells as f64).sqrt() as usize * 2).max(64) };
        let mut cursor = (0, 0);
        let mut pivots = 0usize;
        loop {
            let bland = pivots >= bland_after;
            let Some((enter, r)) = self.entering(cost, tol, block, &mut cursor, bland) else { break };
            self.pivot(enter, r, bland);
            pivots += 1;
        }
        (0..self.flow.len())
            .map(|k| self.flow[k] * cost[self.cell_row[k] as usize * n + self.cell_col[k] as usize])
            .sum()
    }

    /// The starting basis: column-wise cheapest allocation, then zero cells
    /// joining the forest into a spanning tree.
    fn start(&mut self, cost: &[f64]) {
        let (m, n) = (self.supply.len(), self.demand.len());
        self.cell_row.clear();
        self.cell_col.clear();
        self.flow.clear();
        self.uf.clear();
        self.uf.extend(0..(m + n) as u32);
        self.left.clear();
        self.left.extend_from_slice(&self.supply);
        for j in 0..n {
            let mut need = self.demand[j];
            while need > MASS_EPS {
                let left = &self.left;
                let best =
                    (0..m).filter(|&i| left[i] > 0.0).min_by(|&x, &y| cost[x * n + j].total_cmp(&cost[y * n + j]));
                let Some(i) = best else { break };
                let x = need.min(self.left[i]);
                need -= x;
                self.left[i] -= x;
                if self.left[i] <= MASS_EPS {
                    self.left[i] = 0.0;
                }
                self.add_cell(i, j, x);
                union(&mut self.uf, i, m + j);
            }
        }
        // Join the trees: every column, then every row, to row 0's tree.
        for j in 0..n {
            if find(&mut self.uf, m + j) != find(&mut self.uf, 0) {
                self.add_cell(0, j, 0.0);
                union(&mut self.uf, 0, m + j);
            }
        }
        for i in 1..m {
            if find(&mut self.uf, i) != find(&mut self.uf, m) {
                self.add_cell(i, 0, 0.0);
                union(&mut self.uf, i, m);
            }
        }
        debug_assert_eq!(self.flow.len(), m + n - 1);
    }

    fn add_cell(&mut self, i: usize, j: usize, x: f64) {
        self.cell_row.push(i as u32);
        self.cell_col.push(j as u32);
        self.flow.push(x);
    }

    /// The basis's adjacency, and potentials, parents and depths from a
    /// walk of the tree from row 0.
    fn tree(&mut self, cost: &[f64]) {
        let (m, n) = (self.supply.len(), self.demand.len());
        let nodes = m + n;
        self.adj.truncate(nodes);
        self.adj.iter_mut().for_each(Vec::clear);
        self.adj.resize_with(nodes, Vec::new);
        for k in 0..self.flow.len() {
            self.adj[self.cell_row[k] as usize].push(k as u32);
            self.adj[m + self.cell_col[k] as usize].push(k as u32);
        }
        self.pot.clear();
        self.pot.resize(nodes, 0.0);
        self.parent.clear();
        self.parent.resize(nodes, u32::MAX);
        self.parent_cell.clear();
        self.parent_cell.resize(nodes, u32::MAX);
        self.depth.clear();
        self.depth.resize(nodes, 0);
        self.stack.clear();
        self.stack.push(0);
        while let Some(v) = self.stack.pop() {
            let v = v as usize;
            for e in 0..self.adj[v].len() {
                let k = self.adj[v][e] as usize;
                if k as u32 == self.parent_cell[v] {
                    continue;
                }
                let (i, j) = (self.cell_row[k] as usize, self.cell_col[k] as usize);
                let w = if v < m { m + j } else { i };
                // u_i + v_j = c_ij on basic cells.
                self.pot[w] = cost[i * n + j] - self.pot[v];
                self.parent[w] = v as u32;
                self.parent_cell[w] = k as u32;
                self.depth[w] = self.depth[v] + 1;
                self.stack.push(w as u32);
            }
        }
    }

    /// The entering cell and its reduced cost, by block search (or Bland's
    /// rule); `None` at the optimum. `cursor` is the (row, column) where
    /// the next block starts.
    fn entering(
        &self,
        cost: &[f64],
        tol: f64,
        block: usize,
        cursor: &mut (usize, usize),
        bland: bool,
    ) -> Option<(usize, f64)> {
        let (m, n) = (self.supply.len(), self.demand.len());
        let cells = m * n;
        let (u, v) = self.pot.split_at(m);
        if bland {
            *cursor = (0, 0);
        }
        let mut best = (-tol, usize::MAX);
        let (mut i, mut j) = *cursor;
        let mut seen = 0;
        while seen < cells {
            let end = if bland { cells } else { (seen + block).min(cells) };
            while seen < end {
                let take = (n - j).min(end - seen);
                let (ui, row, vs) = (u[i], &cost[i * n + j..i * n + j + take], &v[j..j + take]);
                for (t, (&c, &vj)) in row.iter().zip(vs).enumerate() {
                    let r = c - ui - vj;
                    if r < best.0 {
                        best = (r, i * n + j + t);
                        if bland {
                            return Some((best.1, r));
                        }
                    }
                }
                seen += take;
                j += take;
                if j == n {
                    j = 0;
                    i = if i + 1 == m { 0 } else { i + 1 };
                }
            }
            if best.1 != usize::MAX {
                *cursor = (i, j);
                return Some((best.1, best.0));
            }
        }
        None
    }

    /// Brings cell `enter` (reduced cost `r`) into the basis around its
    /// cycle with the tree, and re-hangs the subtree that the leaving cell
    /// cut off, shifting its potentials by `r`.
    fn pivot(&mut self, enter: usize, r: f64, bland: bool) {
        let m = self.supply.len();
        let n = self.demand.len();
        let (p, q) = (enter / n, enter % n);
        // Walk from both ends to their common ancestor; the first tree edge
        // above either end loses flow, then signs alternate. The flag says
        // whether the edge lies on p's side.
        self.cycle.clear();
        let (mut a, mut b) = (p, m + q);
        let (mut sa, mut sb) = (false, false);
        while a != b {
            if self.depth[a] >= self.depth[b] {
                self.cycle.push((self.parent_cell[a], sa, true));
                sa = !sa;
                a = self.parent[a] as usize;
            } else {
                self.cycle.push((self.parent_cell[b], sb, false));
                sb = !sb;
                b = self.parent[b] as usize;
            }
        }
        let cell_index = |s: &Self, k: u32| s.cell_row[k as usize] as usize * n + s.cell_col[k as usize] as usize;
        let (mut leave, mut p_side, mut theta) = (u32::MAX, true, f64::INFINITY);
        for &(k, gains, side) in &self.cycle {
            if gains {
                continue;
            }
            let f = self.flow[k as usize];
            if f < theta || (bland && f == theta && cell_index(self, k) < cell_index(self, leave)) {
                (theta, leave, p_side) = (f, k, side);
            }
        }
        for &(k, gains, _) in &self.cycle {
            let f = &mut self.flow[k as usize];
            if gains {
                *f += theta;
            } else {
                *f -= theta;
            }
        }
        // Swap the cells in the adjacency: the leaving slot becomes the
        // entering cell.
        let l = leave as usize;
        for v in [self.cell_row[l] as usize, m + self.cell_col[l] as usize] {
            let at = self.adj[v].iter().position(|&k| k == leave).expect("a basis cell is in its nodes' lists");
            self.adj[v].swap_remove(at);
        }
        self.cell_row[l] = p as u32;
        self.cell_col[l] = q as u32;
        self.flow[l] = theta;
        self.adj[p].push(leave);
        self.adj[m + q].push(leave);
        // The cut-off subtree holds the entering end on the leaving cell's
        // side; it now hangs from the other end through the entering cell.
        let (s, t) = if p_side { (p, m + q) } else { (m + q, p) };
        // Rows of the subtree gain `r` if it holds p (then columns lose
        // it), so that u_p + v_q = c_pq and tree cells stay tight.
        let row_shift = if p_side { r } else { -r };
        self.parent[s] = t as u32;
        self.parent_cell[s] = leave;
        self.depth[s] = self.depth[t] + 1;
        self.stack.clear();
        self.stack.push(s as u32);
        while let Some(v) = self.stack.pop() {
            let v = v as usize;
            self.pot[v] += if v < m { row_shift } else { -row_shift };
            for e in 0..self.adj[v].len() {
                let k = self.adj[v][e];
                if k == self.parent_cell[v] {
                    continue;
                }
                let (i, j) = (self.cell_row[k as usize] as usize, self.cell_col[k as usize] as usize);
                let w = if v < m { m + j } else { i };
                self.parent[w] = v as u32;
                self.parent_cell[w] = k;
                self.depth[w] = self.depth[v] + 1;
                self.stack.push(w as u32);
            }
        }
    }
}

fn find(uf: &mut [u32], mut x: usize) -> usize {
    while uf[x] as usize != x {
        uf[x] = uf[uf[x] as usize];
        x = uf[x] as usize;
    }
    x
}

fn union(uf: &mut [u32], a: usize, b: usize) {
    let (ra, rb) = (find(uf, a), find(uf, b));
    uf[ra] = rb as u32;
}

/// ΔE76: the Euclidean distance between two CIE Lab colours.
pub fn delta_e(x: [f64; 3], y: [f64; 3]) -> f64 {
    ((x[0] - y[0]).powi(2) + (x[1] - y[1]).powi(2) + (x[2] - y[2]).powi(2)).sqrt()
}

/// The exact EMD with ΔE76 ground distance between two weighted sets of Lab
/// colours (each normalised to sum 1), e.g. a colour query and the non-zero
/// bins of a histogram at [`super::bin_centers_lab`]. Errors as
/// `Transport::emd` (empty sides, negative or non-finite masses, zero totals).
pub fn emd_lab(a: &[([f64; 3], f64)], b: &[([f64; 3], f64)]) -> Result<f64> {
    let cost: Vec<f64> = a.iter().flat_map(|&(x, _)| b.iter().map(move |&(y, _)| delta_e(x, y))).collect();
    let wa: Vec<f64> = a.iter().map(|p| p.1).collect();
    let wb: Vec<f64> = b.iter().map(|p| p.1).collect();
    Transport::default().emd(&wa, &wb, &cost)
}

/// A lower bound of the EMD with Euclidean ground distance between two
/// distributions of equal mass: the distance between their means
/// (`‖Σ x_ij (p_i − q_j)‖ ≤ Σ x_ij ‖p_i − q_j‖` for any plan x).
pub fn centroid_bound(a: &[([f64; 3], f64)], b: &[([f64; 3], f64)]) -> f64 {
    let mean = |s: &[([f64; 3], f64)]| {
        let t: f64 = s.iter().map(|p| p.1).sum();
        let mut c = [0.0; 3];
        for &(x, w) in s {
            for d in 0..3 {
                c[d] += x[d] * w / t;
            }
        }
        c
    };
    delta_e(mean(a), mean(b))
}

/// A query's side of many EMDs against stored histograms: the query's masses
/// (colour points or histogram bins) with their ground distance to every bin
/// centre, computed once, so each histogram costs only its solve.
///
/// The ground distance is ΔE76, or with a fuzz `f` (how far a colour may
/// stray for free) `max(0, ΔE76 − f)`.
#[derive(Debug)]
pub struct EmdQuery {
    weights: Vec<f64>,
    mean: [f64; 3],
    /// `m × HIST_DIM`: ground distance from query mass i to bin centre j.
    costs: Vec<f64>,
    /// Per bin, the ground distance to the nearest query mass.
    nearest: Vec<f64>,
    /// ΔE a colour may stray at no cost (0: plain ΔE76).
    fuzz: f64,
    /// A histogram query's masses by bin (dense, [`HIST_DIM`]): with the
    /// metric ground distance the EMD depends only on the difference of the
    /// two histograms, so shared mass is cancelled before solving.
    hist: Option<Vec<f64>>,
    /// Dual bounds: a constant and a per-bin table each (see
    /// [`EmdQuery::add_dual_bound`]).
    duals: Vec<(f64, Vec<f64>)>,
    solver: Transport,
    cost: Vec<f64>,
    masses: Vec<f64>,
    bins: Vec<usize>,
    diff: Vec<f64>,
    pos: Vec<(usize, f64)>,
    neg: Vec<(usize, f64)>,
    col_min: Vec<f64>,
}

impl EmdQuery {
    /// A query of weighted Lab points (a colour query: at most 16); the
    /// weights are normalised. Errors (one line) as [`Transport::emd`].
    pub fn from_points(points: &[([f64; 3], f64)]) -> Result<EmdQuery> {
        let w: Vec<f64> = points.iter().map(|p| p.1).collect();
        let t = total(&w, "query")?;
        let keep: Vec<([f64; 3], f64)> = points.iter().filter(|p| p.1 > 0.0).map(|&(x, m)| (x, m / t)).collect();
        if keep.iter().any(|(x, _)| x.iter().any(|c| !c.is_finite())) {
            return Err(Error::InvalidInput("EMD: a query colour is not finite".into()));
        }
        let centres = centres();
        let costs: Vec<f64> = keep.iter().flat_map(|&(x, _)| centres.iter().map(move |&c| delta_e(x, c))).collect();
        let mut nearest = vec![f64::INFINITY; HIST_DIM];
        for row in costs.chunks_exact(HIST_DIM) {
            for (n, &c) in nearest.iter_mut().zip(row) {
                *n = n.min(c);
            }
        }
        let mut mean = [0.0; 3];
        for &(x, m) in &keep {
            for d in 0..3 {
                mean[d] += m * x[d];
            }
        }
        Ok(EmdQuery {
            weights: keep.iter().map(|p| p.1).collect(),
            mean,
            costs,
            nearest,
            fuzz: 0.0,
            hist: None,
            duals: Vec::new(),
            solver: Transport::default(),
            cost: Vec::new(),
            masses: Vec::new(),
            bins: Vec::new(),
            diff: Vec::new(),
            pos: Vec::new(),
            neg: Vec::new(),
            col_min: Vec::new(),
        })
    }

    /// A query histogram, given as a stored (Hellinger) vector of
    /// [`HIST_DIM`] values: its masses are the squares.
    pub fn from_hellinger(v: &[f32]) -> Result<EmdQuery> {
        if v.len() != HIST_DIM {
            return Err(Error::InvalidInput(format!("EMD: a histogram has {HIST_DIM} bins, got {}", v.len())));
        }
        let points: Vec<([f64; 3], f64)> =
            v.iter().zip(centres()).filter(|(x, _)| **x != 0.0).map(|(&x, &c)| (c, f64::from(x).powi(2))).collect();
        let mut q = EmdQuery::from_points(&points)?;
        let mut hist: Vec<f64> = v.iter().map(|&x| f64::from(x).powi(2)).collect();
        let t: f64 = hist.iter().sum();
        hist.iter_mut().for_each(|x| *x /= t);
        q.hist = Some(hist);
        Ok(q)
    }

    /// The same query with a fuzz: the ground distance becomes
    /// `max(0, ΔE76 − fuzz)`, so a colour within `fuzz` ΔE of a query colour
    /// matches it fully. Errors (one line) unless `0 ≤ fuzz ≤` [`MAX_FUZZ`].
    pub fn with_fuzz(mut self, fuzz: f64) -> Result<EmdQuery> {
        if !(fuzz.is_finite() && (0.0..=MAX_FUZZ).contains(&fuzz)) {
            return Err(Error::invalid_argument(
                "fuzz",
                format!("fuzz must be between 0 and {MAX_FUZZ} ΔE, got {fuzz}"),
            ));
        }
        if fuzz == 0.0 {
            return Ok(self);
        }
        let extra = fuzz - self.fuzz;
        self.costs.iter_mut().for_each(|c| *c = (*c - extra).max(0.0));
        self.nearest.iter_mut().for_each(|c| *c = (*c - extra).max(0.0));
        self.fuzz = fuzz;
        self.duals.clear();
        // Not a metric any more: shared mass may no longer be cancelled.
        self.hist = None;
        Ok(self)
    }

    /// The fuzz in ΔE (see [`EmdQuery::with_fuzz`]).
    pub fn fuzz(&self) -> f64 {
        self.fuzz
    }

    /// The exact EMD to a stored histogram (as [`EmdQuery::distance`]) if
    /// it can be at most `limit`; `None` when a lower bound already passes
    /// `limit` (the histogram cannot be nearer than what is held), which
    /// skips most solves of a top-k search.
    pub fn distance_within(
        &mut self,
        hellinger: impl Iterator<Item = (usize, f32)> + Clone,
        limit: f64,
    ) -> Option<f64> {
        if self.hist.is_some() {
            return self.reduced_within(hellinger, limit);
        }
        let bound = self.lower_bound(hellinger.clone());
        if bound > limit {
            return None;
        }
        if self.weights.len() == 1 {
            // One query colour: all mass travels to it, so the nearest-mass
            // bound is the EMD itself (the centroid bound never exceeds it).
            return Some(self.single_colour_distance(hellinger));
        }
        if self.query_side_bound(hellinger.clone()) > limit {
            return None;
        }
        Some(self.distance(hellinger))
    }

    /// The EMD to a one-colour query: each unit of the histogram times its
    /// ground distance to the colour.
    fn single_colour_distance(&self, hellinger: impl Iterator<Item = (usize, f32)>) -> f64 {
        let (mut t, mut d) = (0.0, 0.0);
        for (j, v) in hellinger {
            if v != 0.0 && j < HIST_DIM {
                let m = f64::from(v) * f64::from(v);
                t += m;
                d += m * self.costs[j];
            }
        }
        if t > 0.0 {
            d / t
        } else {
            f64::INFINITY
        }
    }

    /// Histogram against histogram: the EMD of the positive part of their
    /// difference against its negative part, times its mass (equal to the
    /// EMD of the two for a metric ground distance: an optimal plan leaves
    /// shared mass in place). Bounded first by both nearest-mass bounds of
    /// the reduced problem.
    fn reduced_within(&mut self, hellinger: impl Iterator<Item = (usize, f32)>, limit: f64) -> Option<f64> {
        let t = self.load_masses(hellinger);
        let hist = self.hist.as_ref().expect("a histogram query");
        if !(t > 0.0 && t.is_finite()) {
            return if limit == f64::INFINITY { Some(f64::INFINITY) } else { None };
        }
        self.diff.clear();
        self.diff.extend_from_slice(hist);
        for (&j, &m) in self.bins.iter().zip(&self.masses) {
            self.diff[j] -= m / t;
        }
        self.pos.clear();
        self.neg.clear();
        for (j, &d) in self.diff.iter().enumerate() {
            if d > MASS_EPS {
                self.pos.push((j, d));
            } else if d < -MASS_EPS {
                self.neg.push((j, -d));
            }
        }
        let sp: f64 = self.pos.iter().map(|p| p.1).sum();
        let sn: f64 = self.neg.iter().map(|p| p.1).sum();
        if self.pos.is_empty() || self.neg.is_empty() || sp + sn < 1e-9 {
            return Some(0.0);
        }
        let scale = (sp + sn) / 2.0;
        let c = centres();
        let (m, n) = (self.pos.len(), self.neg.len());
        self.cost.clear();
        self.col_min.clear();
        self.col_min.resize(n, f64::INFINITY);
        let mut row_bound = 0.0;
        for &(i, wi) in &self.pos {
            let mut rmin = f64::INFINITY;
            for (k, &(j, _)) in self.neg.iter().enumerate() {
                let d = delta_e(c[i], c[j]);
                self.cost.push(d);
                rmin = rmin.min(d);
                self.col_min[k] = self.col_min[k].min(d);
            }
            row_bound += wi / sp * rmin;
        }
        let col_bound: f64 = self.neg.iter().zip(&self.col_min).map(|(p, c)| p.1 / sn * c).sum();
        if scale * row_bound.max(col_bound) > limit {
            return None;
        }
        let s = &mut self.solver;
        s.supply.clear();
        s.supply.extend(self.pos.iter().map(|p| p.1 / sp));
        s.demand.clear();
        s.demand.extend(self.neg.iter().map(|p| p.1 / sn));
        debug_assert_eq!(self.cost.len(), m * n);
        Some(scale * s.solve(&self.cost))
    }

    /// The query's Lab mean.
    pub fn mean(&self) -> [f64; 3] {
        self.mean
    }

    /// Masses of the query (normalised), one per point kept.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Whether the query has no mass (never: construction rejects it).
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// A lower bound of [`EmdQuery::distance`] in O(non-zeros): the largest
    /// of the centroid bound ([`centroid_bound`]), the cost of sending
    /// every unit of the histogram to its nearest query mass (the problem
    /// without the query's marginal), and the dual bounds added by
    /// [`EmdQuery::add_dual_bound`].
    pub fn lower_bound(&self, hellinger: impl Iterator<Item = (usize, f32)> + Clone) -> f64 {
        let hellinger_again = hellinger.clone();
        let centres = centres();
        let (mut t, mut near, mut mean) = (0.0, 0.0, [0.0; 3]);
        for (j, v) in hellinger {
            let m = f64::from(v) * f64::from(v);
            t += m;
            near += m * self.nearest[j];
            for d in 0..3 {
                mean[d] += m * centres[j][d];
            }
        }
        if t <= 0.0 {
            return 0.0;
        }
        let mean = mean.map(|x| x / t);
        // Every unit moved costs at least its ΔE less the fuzz.
        let mut bound = (near / t).max(delta_e(mean, self.mean) - self.fuzz);
        for (constant, table) in &self.duals {
            let mut s = 0.0;
            for (j, v) in hellinger_again.clone() {
                s += f64::from(v) * f64::from(v) * table[j];
            }
            bound = bound.max(constant + s / t);
        }
        bound
    }

    /// Adds a bound from the optimal dual of the problem against this
    /// stored histogram (a point query only; else nothing): for any
    /// potentials `u` of the query's masses, weak duality gives
    /// `EMD(h) ≥ Σ_i w_i u_i + Σ_j h_j min_i (c_ij − u_i)` for every
    /// histogram h, a linear function of h computed from one table of the
    /// 1152 bins. The optimal `u` of a near histogram makes it tight for
    /// the histograms like it, which a top-k search meets by the thousand.
    /// Returns the EMD to this histogram.
    pub fn add_dual_bound(&mut self, hellinger: impl Iterator<Item = (usize, f32)>) -> f64 {
        let d = self.distance(hellinger);
        if self.hist.is_some() || !d.is_finite() || self.weights.len() < 2 {
            return d;
        }
        let m = self.weights.len();
        let u: Vec<f64> = self.solver.pot[..m].to_vec();
        let constant: f64 = self.weights.iter().zip(&u).map(|(w, u)| w * u).sum();
        let mut table = vec![f64::INFINITY; HIST_DIM];
        for (i, row) in self.costs.chunks_exact(HIST_DIM).enumerate() {
            for (g, &c) in table.iter_mut().zip(row) {
                *g = g.min(c - u[i]);
            }
        }
        // Rounding: the bound is kept just below its exact value.
        self.duals.push((constant - 1e-9 * d.max(1.0), table));
        d
    }

    /// A second lower bound, costlier (query masses × non-zeros): the cost
    /// of sending every query mass to the histogram's nearest non-zero bin
    /// (the problem without the histogram's marginal).
    pub fn query_side_bound(&self, hellinger: impl Iterator<Item = (usize, f32)>) -> f64 {
        let mut near = [f64::INFINITY; 64];
        let m = self.weights.len();
        if m > near.len() {
            return 0.0;
        }
        for (j, v) in hellinger {
            if v != 0.0 && j < HIST_DIM {
                for (i, n) in near[..m].iter_mut().enumerate() {
                    *n = n.min(self.costs[i * HIST_DIM + j]);
                }
            }
        }
        let b: f64 = self.weights.iter().zip(&near).map(|(w, n)| w * n).sum();
        if b.is_finite() {
            b
        } else {
            0.0
        }
    }

    /// Keeps a stored histogram's non-zero bins and their masses (the
    /// squares of its Hellinger values) in `bins` and `masses`; returns the
    /// total mass.
    fn load_masses(&mut self, hellinger: impl Iterator<Item = (usize, f32)>) -> f64 {
        self.masses.clear();
        self.bins.clear();
        for (j, v) in hellinger {
            if v != 0.0 && j < HIST_DIM {
                self.bins.push(j);
                self.masses.push(f64::from(v) * f64::from(v));
            }
        }
        self.masses.iter().sum()
    }

    /// The exact EMD from the query to a stored histogram, given by its
    /// non-zero Hellinger values `(bin, value)` (masses are the squares). A
    /// histogram without mass is at distance infinity.
    pub fn distance(&mut self, hellinger: impl Iterator<Item = (usize, f32)>) -> f64 {
        self.cost.clear();
        let t = self.load_masses(hellinger);
        if !(t > 0.0 && t.is_finite()) {
            return f64::INFINITY;
        }
        for row in self.costs.chunks_exact(HIST_DIM) {
            self.cost.extend(self.bins.iter().map(|&j| row[j]));
        }
        let s = &mut self.solver;
        s.supply.clear();
        s.supply.extend_from_slice(&self.weights);
        s.demand.clear();
        s.demand.extend(self.masses.iter().map(|m| m / t));
        s.solve(&self.cost)
    }
}

/// The bin centres, computed once.
fn centres() -> &'static [[f64; 3]] {
    static C: std::sync::OnceLock<Vec<[f64; 3]>> = std::sync::OnceLock::new();
    C.get_or_init(bin_centers_lab)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The optimum by brute force: the LP's optimum is at a vertex, and every
    /// vertex is a basic solution of some spanning tree; for 2 × n (or m × 2)
    /// problems the plan is fixed by the first row's flows, so enumerate the
    /// vertices of `{x_0j ∈ [0, b_j], Σ_j x_0j = a_0}` (all but one x_0j at a
    /// bound) and take the cheapest.
    fn brute_2xn(a: [f64; 2], b: &[f64], c: &[f64]) -> f64 {
        let n = b.len();
        let mut best = f64::INFINITY;
        for free in 0..n {
            for mask in 0..(1u32 << n) {
                if mask & (1 << free) != 0 {
                    continue;
                }
                let mut x0: Vec<f64> = (0..n).map(|j| if mask & (1 << j) != 0 { b[j] } else { 0.0 }).collect();
                let rest = a[0] - x0.iter().sum::<f64>();
                if rest < -1e-12 || rest > b[free] + 1e-12 {
                    continue;
                }
                x0[free] = rest.clamp(0.0, b[free]);
                let v: f64 = (0..n).map(|j| x0[j] * c[j] + (b[j] - x0[j]) * c[n + j]).sum();
                best = best.min(v);
            }
        }
        best
    }

    fn normalised(v: Vec<f64>) -> Vec<f64> {
        let t: f64 = v.iter().sum();
        v.into_iter().map(|x| x / t).collect()
    }

    fn masses(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(prop_oneof![Just(0.0), 0.01f64..1.0], len)
            .prop_filter("some mass", |v| v.iter().sum::<f64>() > 0.0)
            .prop_map(normalised)
    }

    fn colours(len: usize) -> impl Strategy<Value = Vec<[f64; 3]>> {
        prop::collection::vec([0.0f64..100.0, -80.0f64..90.0, -100.0f64..90.0], len)
    }

    fn points(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<([f64; 3], f64)>> {
        masses(len).prop_flat_map(|w| {
            let k = w.len();
            colours(k).prop_map(move |c| c.into_iter().zip(w.clone()).collect::<Vec<_>>())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn matches_brute_force_on_2_by_n(a0 in 0.0f64..=1.0, b in masses(1..=6),
                                          c in prop::collection::vec(0.0f64..50.0, 12)) {
            let n = b.len();
            let c: Vec<f64> = c[..2 * n].to_vec();
            let a = [a0, 1.0 - a0];
            let got = Transport::default().emd(&a, &b, &c);
            let want = brute_2xn(a, &b, &c);
            let got = got.unwrap();
            prop_assert!((got - want).abs() < 1e-9 * want.max(1.0), "got {} want {}", got, want);
            // The transposed problem has the same value.
            let ct: Vec<f64> = (0..n).flat_map(|j| [c[j], c[n + j]]).collect();
            let gt = Transport::default().emd(&b, &a, &ct).unwrap();
            prop_assert!((gt - want).abs() < 1e-9 * want.max(1.0));
        }

        #[test]
        fn is_a_metric_on_lab_points(x in points(1..=8), y in points(1..=8), z in points(1..=8)) {
            let xy = emd_lab(&x, &y).unwrap();
            let yx = emd_lab(&y, &x).unwrap();
            let yz = emd_lab(&y, &z).unwrap();
            let xz = emd_lab(&x, &z).unwrap();
            prop_assert!((xy - yx).abs() < 1e-9 * xy.max(1.0), "symmetry {} {}", xy, yx);
            prop_assert!(xz <= xy + yz + 1e-9, "triangle {} > {} + {}", xz, xy, yz);
            prop_assert!(emd_lab(&x, &x).unwrap().abs() < 1e-9);
            prop_assert!(xy + 1e-9 >= centroid_bound(&x, &y), "centroid bound {} > {}", centroid_bound(&x, &y), xy);
        }

        #[test]
        fn never_more_than_a_feasible_plan(x in points(1..=16), y in points(1..=40)) {
            // The product plan x_ij = a_i b_j is feasible, so the optimum is
            // at most its cost; and every unit travels at least to the
            // nearest point of the other side.
            let got = emd_lab(&x, &y).unwrap();
            let product: f64 = x.iter().flat_map(|&(p, wa)| y.iter().map(move |&(q, wb)| wa * wb * delta_e(p, q))).sum();
            let nearest: f64 = y.iter().map(|&(q, w)| w * x.iter().filter(|p| p.1 > 0.0).map(|&(p, _)| delta_e(p, q)).fold(f64::INFINITY, f64::min)).sum();
            prop_assert!(got <= product + 1e-9);
            prop_assert!(got + 1e-9 >= nearest, "{} < {}", got, nearest);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]

        #[test]
        fn blands_rule_reaches_the_same_optimum(x in points(1..=12), y in points(1..=30)) {
            // The anti-cycling fallback from the first pivot on.
            let cost: Vec<f64> = x.iter().flat_map(|&(p, _)| y.iter().map(move |&(q, _)| delta_e(p, q))).collect();
            let want = emd_lab(&x, &y).unwrap();
            let mut t = Transport {
                supply: x.iter().map(|p| p.1).collect(),
                demand: y.iter().map(|p| p.1).collect(),
                ..Transport::default()
            };
            let got = t.solve_switching(&cost, 0);
            prop_assert!((got - want).abs() < 1e-9 * want.max(1.0), "{} {}", got, want);
        }
    }

    /// A random stored (Hellinger) histogram: `len` random bins of the grid.
    fn grid_hist(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<f32>> {
        prop::collection::vec((0usize..HIST_DIM, 0.01f32..1.0), len).prop_map(|bins| {
            let mut v = vec![0f32; HIST_DIM];
            for (j, m) in bins {
                v[j] += m;
            }
            let t: f32 = v.iter().sum();
            v.iter().map(|m| (m / t).sqrt()).collect()
        })
    }

    fn nz(v: &[f32]) -> impl Iterator<Item = (usize, f32)> + Clone + '_ {
        v.iter().enumerate().filter(|(_, x)| **x != 0.0).map(|(j, &x)| (j, x))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(150))]

        #[test]
        fn cancelling_shared_mass_keeps_the_emd(a in grid_hist(1..=60), b in grid_hist(1..=60), share in 0.0f32..1.0) {
            // Histogram queries solve the difference of the two histograms
            // (metric ground distance); the full problem must agree. Mixing
            // b into a makes much mass shared.
            let mixed: Vec<f32> = a.iter().zip(&b).map(|(x, y)| ((1.0 - share) * x * x + share * y * y).sqrt()).collect();
            for q in [&a, &mixed] {
                let mut e = EmdQuery::from_hellinger(q).unwrap();
                let full = e.distance(nz(&b));
                let reduced = e.distance_within(nz(&b), f64::INFINITY).unwrap();
                prop_assert!((full - reduced).abs() < 1e-6 * full.max(1.0), "full {} reduced {}", full, reduced);
            }
            let mut same = EmdQuery::from_hellinger(&a).unwrap();
            prop_assert!(same.distance_within(nz(&a), f64::INFINITY).unwrap() < 1e-6);
        }

        #[test]
        fn bounded_distance_skips_only_what_is_farther(x in points(1..=16), h in grid_hist(1..=60),
                                                       q in grid_hist(1..=60), frac in 0.0f64..1.5) {
            for mut e in [EmdQuery::from_points(&x).unwrap(), EmdQuery::from_hellinger(&q).unwrap()] {
                // A dual bound from another histogram, and from h itself
                // (then tight).
                e.add_dual_bound(nz(&q));
                let d = e.distance(nz(&h));
                let limit = d * frac;
                match e.distance_within(nz(&h), limit) {
                    Some(got) => prop_assert!((got - d).abs() < 1e-6 * d.max(1.0), "{} vs {}", got, d),
                    None => prop_assert!(d > limit - 1e-9, "skipped {} within {}", d, limit),
                }
                prop_assert!(e.lower_bound(nz(&h)) <= d + 1e-9);
                prop_assert!(e.query_side_bound(nz(&h)) <= d + 1e-9);
            }
        }

        #[test]
        fn the_dual_of_a_histograms_own_problem_bounds_it_tightly(x in points(2..=16), h in grid_hist(1..=60)) {
            let mut e = EmdQuery::from_points(&x).unwrap();
            let d = e.add_dual_bound(nz(&h));
            prop_assert!((e.distance(nz(&h)) - d).abs() < 1e-12 * d.max(1.0));
            let b = e.lower_bound(nz(&h));
            prop_assert!(b <= d + 1e-9, "bound {} above {}", b, d);
            if e.len() >= 2 {
                prop_assert!(b >= d - 1e-6 * d.max(1.0), "the dual of h's own problem is tight: {} vs {}", b, d);
            }
        }

        #[test]
        fn fuzz_is_the_emd_of_clipped_distances(x in points(1..=8), h in grid_hist(1..=40), fuzz in 0.0f64..40.0) {
            let mut e = EmdQuery::from_points(&x).unwrap().with_fuzz(fuzz).unwrap();
            let got = e.distance(nz(&h));
            // The same LP solved from scratch on max(0, ΔE − fuzz) costs.
            let b: Vec<([f64; 3], f64)> = nz(&h).map(|(j, v)| (centres()[j], f64::from(v) * f64::from(v))).collect();
            let cost: Vec<f64> = x.iter().flat_map(|&(p, _)| b.iter().map(move |&(q, _)| (delta_e(p, q) - fuzz).max(0.0))).collect();
            let wa: Vec<f64> = x.iter().map(|p| p.1).collect();
            let wb: Vec<f64> = b.iter().map(|p| p.1).collect();
            let want = Transport::default().emd(&wa, &wb, &cost).unwrap();
            prop_assert!((got - want).abs() < 1e-6 * want.max(1.0), "{} vs {}", got, want);
            prop_assert!(e.lower_bound(nz(&h)) <= got + 1e-9, "bound {} > {}", e.lower_bound(nz(&h)), got);
            prop_assert!(e.query_side_bound(nz(&h)) <= got + 1e-9);
            prop_assert!(got <= EmdQuery::from_points(&x).unwrap().distance(nz(&h)) + 1e-9, "fuzz never costs more");
            match e.distance_within(nz(&h), got * 0.5) {
                Some(d) => prop_assert!((d - got).abs() < 1e-6 * got.max(1.0)),
                None => prop_assert!(got > 0.0),
            }
        }
    }

    #[test]
    fn bad_fuzz_is_one_line_error() {
        for f in [-0.1, f64::NAN, f64::INFINITY, 100.5] {
            let e = EmdQuery::from_points(&[([50.0, 0.0, 0.0], 1.0)]).unwrap().with_fuzz(f).unwrap_err().to_string();
            assert!(e.contains("fuzz must be between 0 and 100") && !e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn one_point_each_is_the_distance() {
        let d = emd_lab(&[([50.0, 0.0, 0.0], 1.0)], &[([50.0, 3.0, 4.0], 2.0)]).unwrap();
        assert!((d - 5.0).abs() < 1e-12);
    }

    #[test]
    fn degenerate_equal_splits_terminate() {
        // Many equal masses and equal costs: every pivot is degenerate.
        let a = vec![1.0; 30];
        let b = vec![1.0; 30];
        let cost: Vec<f64> = (0..900).map(|k| ((k / 30) as f64 - (k % 30) as f64).abs().min(3.0)).collect();
        let d = Transport::default().emd(&a, &b, &cost).unwrap();
        assert!(d.abs() < 1e-12, "{d}");
    }

    #[test]
    fn bad_input_is_one_line_error() {
        let mut t = Transport::default();
        for (a, b, c, what) in [
            (vec![], vec![1.0], vec![], "empty"),
            (vec![1.0], vec![-1.0], vec![0.0], "mass -1"),
            (vec![0.0], vec![1.0], vec![0.0], "total mass 0"),
            (vec![1.0], vec![f64::NAN], vec![0.0], "mass NaN"),
            (vec![1.0], vec![1.0], vec![0.0, 1.0], "2 costs"),
            (vec![1.0], vec![1.0], vec![f64::INFINITY], "not finite"),
        ] {
            let e = t.emd(&a, &b, &c).unwrap_err().to_string();
            assert!(e.contains(what) && !e.contains('\n'), "{e}");
        }
    }
}
