//! Searching an image index by colours, by an example image or by a
//! histogram, with each result resolved to its file and palette.

use super::ImageIndex;
use crate::color::transport::EmdQuery;
use crate::color::{
    dominant_colors, hellinger, image_histogram_with, parse_color_query, query_histogram, srgb_to_lab, ColorQuery,
    DominantColor, Excluded, ImageLimits, DEFAULT_SHARPEN, HIST_DIM, MAX_FUZZ,
};
use crate::read::emd_search::EmdSearch;
use crate::{Error, Neighbor, Rerank, Result, SearchParams};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Results per search unless told otherwise.
pub const DEFAULT_K: usize = 10;

/// Colours shown per image unless told otherwise.
pub const PALETTE_SIZE: usize = 5;

/// Whether an image query (example image or histogram) scans every stored
/// histogram by lower bounds after its candidates, as colour queries do.
/// Measured at 100k by `chromatica-bench color` (README): the 200 PQ
/// candidates hold 99.5% of an image query's EMD-nearest images, and their
/// exact EMDs set a limit so tight that the scan solves only a few more and
/// costs about as much as it saves, while making the top k exact.
pub(super) const IMAGE_QUERY_SCAN: bool = true;

/// What a search looks for.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub enum Query {
    /// Colours with their shares (see [`parse_color_query`]); each colour
    /// is sharpened ([`DEFAULT_SHARPEN`]) so that images holding it rank
    /// first.
    Colors(ColorQuery),
    /// An example image file: images with similar colours.
    Image(PathBuf),
    /// A colour histogram of [`HIST_DIM`] non-negative bins, as
    /// [`histogram`](super::histogram) gives (any scale; it is normalised).
    Histogram(Vec<f32>),
}

impl Query {
    /// A colour query such as `"ff7f50,e1ad01"` or
    /// `"ea6a81:0.3,f6d727:0.7"` (see [`parse_color_query`]).
    pub fn colors(spec: &str) -> Result<Query> {
        Ok(Query::Colors(parse_color_query(spec)?))
    }

    /// The vector searched for and the colours shown for the query: the
    /// colours asked for with their shares, or the dominant colours of the
    /// image or histogram. `limits` applies to an example image.
    pub fn prepare(&self, limits: &ImageLimits, colors: usize) -> Result<PreparedQuery> {
        let (mut vector, palette) = match self {
            Query::Colors(q) => {
                let mut palette: Vec<DominantColor> = Vec::new();
                for &(rgb, share) in &q.colors {
                    match palette.iter_mut().find(|c| c.rgb == rgb) {
                        Some(c) => c.share += f64::from(share),
                        None if share > 0.0 => palette.push(DominantColor { rgb, share: f64::from(share) }),
                        None => {}
                    }
                }
                (query_histogram(q, DEFAULT_SHARPEN), palette)
            }
            Query::Image(path) => {
                let h = image_histogram_with(path, limits)?;
                let palette = dominant_colors(&h, colors);
                (h, palette)
            }
            Query::Histogram(h) => {
                let h = normalised(h)?;
                let palette = dominant_colors(&h, colors);
                (h, palette)
            }
        };
        hellinger(&mut vector);
        let color_query = match self {
            Query::Colors(q) => Some(q.clone()),
            _ => None,
        };
        Ok(PreparedQuery { vector, colors: palette, color_query })
    }
}

/// A histogram given as a query, checked and scaled to sum to 1.
fn normalised(h: &[f32]) -> Result<Vec<f32>> {
    if h.len() != HIST_DIM {
        return Err(Error::InvalidInput(format!("a histogram query has {HIST_DIM} bins, this one {}", h.len())));
    }
    if let Some(i) = h.iter().position(|v| !v.is_finite() || *v < 0.0) {
        return Err(Error::InvalidInput(format!("histogram query bin {i} is {}: bins must be finite and >= 0", h[i])));
    }
    let sum: f64 = h.iter().map(|&v| f64::from(v)).sum();
    if sum <= 0.0 {
        return Err(Error::InvalidInput("histogram query is all zeros".into()));
    }
    Ok(h.iter().map(|&v| (f64::from(v) / sum) as f32).collect())
}

/// A query turned into what is searched for.
#[derive(Clone, Debug)]
pub struct PreparedQuery {
    /// The Hellinger-transformed histogram.
    pub vector: Vec<f32>,
    /// Colours to show for the query.
    pub colors: Vec<DominantColor>,
    /// The colours asked for, for a colour query (what the exact EMD is
    /// measured from); `None` for an example image or a histogram, whose
    /// EMD is measured from its histogram.
    pub color_query: Option<ColorQuery>,
}

/// How a search runs. Build it from [`Default`] and the setters:
/// `SearchOptions::default().k(20).nprobe(16)`.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct SearchOptions {
    /// Results wanted (at least 1; fewer come back if the index holds
    /// fewer). Default [`DEFAULT_K`].
    pub k: usize,
    /// Inverted lists to probe; `None`: the index's default.
    pub nprobe: Option<usize>,
    /// Candidates the PQ scan hands to the re-ranking; `None`:
    /// [`DEFAULT_CANDIDATES`](crate::DEFAULT_CANDIDATES).
    pub candidates: Option<usize>,
    /// How candidates are re-ranked; `None`: the exact Earth Mover's
    /// Distance ([`Rerank::ExactEmd`]) on an index with the refine store
    /// (colour queries then also scan every stored histogram by lower
    /// bounds, so their top k is the exact EMD top k), else none.
    pub rerank: Option<Rerank>,
    /// How far (ΔE76) a colour may stray at no cost: the EMD's ground
    /// distance becomes `max(0, ΔE − fuzz)`. Default 0; at most
    /// [`MAX_FUZZ`]. Only with the exact EMD re-rank.
    pub fuzz: f32,
    /// Stage 1 only: the PQ scan's order, no re-ranking (fastest, least
    /// faithful). Not with [`rerank`](Self::rerank), `fuzz` or `exclude`.
    pub fast: bool,
    /// Colours the results must not hold much of (see [`Excluded`]).
    /// Only with the exact EMD re-rank.
    pub exclude: Vec<Excluded>,
    /// How long the exact EMD scan may run (`None`, the default: until it
    /// has proved the exact top k). What bounds a query's cost: a palette
    /// far from every image can need a bound check of every histogram and
    /// tens of thousands of solves on a 100k index (about 20 µs each), so a
    /// server sets this. The PQ candidates are always solved; after the
    /// limit the scan stops once it holds k, and the hits are the best solved so far (the
    /// scan solves in increasing lower bound), flagged by
    /// [`SearchResults::timed_out`]. `Duration::ZERO`: the candidates only.
    pub time_limit: Option<Duration>,
    /// Dominant colours per result. Default [`PALETTE_SIZE`].
    pub colors: usize,
    /// What an example image may cost to decode.
    pub limits: ImageLimits,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            k: DEFAULT_K,
            nprobe: None,
            candidates: None,
            rerank: None,
            fuzz: 0.0,
            fast: false,
            exclude: Vec::new(),
            time_limit: None,
            colors: PALETTE_SIZE,
            limits: ImageLimits::default(),
        }
    }
}

impl SearchOptions {
    /// The re-rank these options ask of an index with `config`: none in
    /// fast mode, the exact EMD by default with a refine store.
    pub(super) fn resolved_rerank(&self, config: &crate::Config) -> Option<Rerank> {
        match (self.fast, self.rerank) {
            (true, _) => Some(Rerank::Off),
            (false, None) if config.refine => Some(Rerank::ExactEmd),
            (false, r) => r,
        }
    }

    /// Sets [`k`](Self::k).
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    /// Sets [`nprobe`](Self::nprobe).
    pub fn nprobe(mut self, nprobe: usize) -> Self {
        self.nprobe = Some(nprobe);
        self
    }

    /// Sets [`candidates`](Self::candidates).
    pub fn candidates(mut self, candidates: usize) -> Self {
        self.candidates = Some(candidates);
        self
    }

    /// Sets [`rerank`](Self::rerank).
    pub fn rerank(mut self, rerank: Rerank) -> Self {
        self.rerank = Some(rerank);
        self
    }

    /// Sets [`fuzz`](Self::fuzz).
    pub fn fuzz(mut self, fuzz: f32) -> Self {
        self.fuzz = fuzz;
        self
    }

    /// Sets [`fast`](Self::fast).
    pub fn fast(mut self, fast: bool) -> Self {
        self.fast = fast;
        self
    }

    /// Sets [`exclude`](Self::exclude).
    pub fn exclude(mut self, exclude: Vec<Excluded>) -> Self {
        self.exclude = exclude;
        self
    }

    /// Sets [`time_limit`](Self::time_limit).
    pub fn time_limit(mut self, time_limit: Duration) -> Self {
        self.time_limit = Some(time_limit);
        self
    }

    /// Checks the options that do not depend on the index; one-line errors.
    pub(super) fn check(&self) -> Result<()> {
        if !(self.fuzz.is_finite() && (0.0..=MAX_FUZZ as f32).contains(&self.fuzz)) {
            return Err(Error::invalid_argument(
                "fuzz",
                format!("fuzz must be between 0 and {MAX_FUZZ} ΔE, got {}", self.fuzz),
            ));
        }
        for x in &self.exclude {
            x.validate()?;
        }
        if self.exclude.len() > crate::color::MAX_QUERY_COLORS {
            return Err(Error::invalid_argument(
                "exclude",
                format!("at most {} excluded colours", crate::color::MAX_QUERY_COLORS),
            ));
        }
        if self.fast && self.rerank.is_some() {
            return Err(Error::invalid_argument("fast", "fast mode skips re-ranking: do not also set a re-rank"));
        }
        let emd = !self.fast && matches!(self.rerank, None | Some(Rerank::ExactEmd));
        if !emd && (self.fuzz != 0.0 || !self.exclude.is_empty()) {
            return Err(Error::invalid_argument(
                "fuzz",
                "fuzz and excluded colours need the exact EMD re-rank (not fast mode nor another re-rank)",
            ));
        }
        Ok(())
    }

    /// Sets [`colors`](Self::colors).
    pub fn colors(mut self, colors: usize) -> Self {
        self.colors = colors;
        self
    }

    /// Sets [`limits`](Self::limits).
    pub fn limits(mut self, limits: ImageLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// One result.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct Hit {
    /// The vector's id.
    pub id: u64,
    /// The file it was made from; `None` for a vector added without a
    /// record (by [`Index::add`](crate::Index::add)).
    pub path: Option<PathBuf>,
    /// The exact EMD (ΔE76) from the query under the default re-rank; the
    /// squared Hellinger distance after exact L2 re-ranking (or its PQ
    /// estimate, or the Sinkhorn EMD, by the re-rank used).
    pub distance: f32,
    /// The image's dominant colours with their shares, largest first.
    pub colors: Vec<DominantColor>,
}

/// What a search found, and how it searched.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct SearchResults {
    /// Colours of the query (see [`Query::prepare`]).
    pub query_colors: Vec<DominantColor>,
    /// Nearest first.
    pub hits: Vec<Hit>,
    /// The re-ranking used.
    pub rerank: Rerank,
    /// Lists probed (the index default unless set).
    pub nprobe: usize,
    /// Candidates re-ranked.
    pub candidates: usize,
    /// The index is not trained yet: search was exact over every image.
    pub exact: bool,
    /// Exact transport problems solved (`None` unless the re-rank was
    /// [`Rerank::ExactEmd`]).
    pub solves: Option<usize>,
    /// [`SearchOptions::time_limit`] stopped the exact EMD scan before it
    /// had proved its top k: the hits are the best of those solved.
    pub timed_out: bool,
}

/// The exact-EMD search of an image query, as `search_prepared` runs it
/// (and `explain` traces it: `trace`, an id to follow).
pub(super) fn exact_emd(
    snap: &crate::Snapshot,
    query: &PreparedQuery,
    options: &SearchOptions,
    candidates: usize,
    start: Instant,
    trace: Option<u64>,
) -> Result<(Vec<Neighbor>, crate::read::emd_search::EmdStats)> {
    let mut emd = emd_query(query, options)?;
    let s = EmdSearch {
        k: options.k,
        nprobe: options.nprobe,
        candidates,
        scan: query.color_query.is_some() || IMAGE_QUERY_SCAN,
        exclude: &options.exclude,
        deadline: options.time_limit.and_then(|t| start.checked_add(t)),
        trace,
    };
    snap.emd_search(&query.vector, &mut emd, &s)
}

/// What the exact EMD is measured from: the colours asked for, or the
/// example's histogram; with the options' fuzz.
pub(super) fn emd_query(query: &PreparedQuery, options: &SearchOptions) -> Result<EmdQuery> {
    match &query.color_query {
        Some(q) => {
            let points: Vec<([f64; 3], f64)> =
                q.colors.iter().map(|&(rgb, w)| (srgb_to_lab(rgb), f64::from(w))).collect();
            EmdQuery::from_points(&points)
        }
        None => EmdQuery::from_hellinger(&query.vector),
    }?
    .with_fuzz(f64::from(options.fuzz))
}

impl ImageIndex {
    /// Searches for `query`: [`Query::prepare`], then
    /// [`search_prepared`](Self::search_prepared).
    pub fn search(&self, query: &Query, options: &SearchOptions) -> Result<SearchResults> {
        self.search_prepared(&query.prepare(&options.limits, options.colors)?, options)
    }

    /// Searches for a prepared query (in parallel on the current rayon
    /// pool) and resolves each result's file and dominant colours, all from
    /// one snapshot of the index.
    pub fn search_prepared(&self, query: &PreparedQuery, options: &SearchOptions) -> Result<SearchResults> {
        options.check()?;
        let start = Instant::now();
        let snap = self.index.snapshot();
        let config = snap.manifest.config;
        let rerank = options.resolved_rerank(&config);
        if !config.refine && (options.fuzz != 0.0 || !options.exclude.is_empty()) {
            return Err(Error::invalid_argument(
                "fuzz",
                "fuzz and excluded colours need the refine store (an index made by `index` or `create --refine`)",
            ));
        }
        let params = SearchParams { k: options.k, nprobe: options.nprobe, rerank, candidates: options.candidates };
        let plan = snap.plan(&params)?;
        let mut solves = None;
        let mut timed_out = false;
        let found: Vec<Neighbor> = if plan.rerank == Rerank::ExactEmd {
            let (found, stats) = exact_emd(&snap, query, options, plan.candidates, start, None)?;
            solves = Some(stats.solves);
            timed_out = stats.timed_out;
            found
        } else {
            snap.search_planned(&query.vector, &plan)?.into_iter().next().unwrap_or_default()
        };
        let mut hits = Vec::new();
        for nb in found {
            let path = snap.record(nb.location)?.map(|r| r.path);
            let colors = if config.refine {
                let mut h = snap.vector(nb.location)?;
                // The stored vector is Hellinger-transformed: squares give
                // back the histogram.
                h.iter_mut().for_each(|v| *v *= *v);
                dominant_colors(&h, options.colors)
            } else {
                Vec::new()
            };
            hits.push(Hit { id: nb.id, path, distance: nb.distance, colors });
        }
        Ok(SearchResults {
            query_colors: query.colors.clone(),
            hits,
            rerank: plan.rerank,
            nprobe: plan.nprobe,
            candidates: plan.candidates,
            exact: snap.quantizers.is_none(),
            solves,
            timed_out,
        })
    }
}
