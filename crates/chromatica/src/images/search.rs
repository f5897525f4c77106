//! Searching an image index by colours, by an example image or by a
//! histogram, with each result resolved to its file and palette.

use super::ImageIndex;
use crate::color::{
    dominant_colors, hellinger, image_histogram_with, parse_color_query, query_histogram, ColorQuery, DominantColor,
    ImageLimits, DEFAULT_SHARPEN, HIST_DIM,
};
use crate::{Error, Rerank, Result, SearchParams};
use std::path::PathBuf;

/// Results per search unless told otherwise.
pub const DEFAULT_K: usize = 10;

/// Colours shown per image unless told otherwise.
pub const PALETTE_SIZE: usize = 5;

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
        Ok(PreparedQuery { vector, colors: palette })
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
    /// How candidates are re-ranked; `None`: the index's default (exact L2
    /// on the refine store).
    pub rerank: Option<Rerank>,
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
            colors: PALETTE_SIZE,
            limits: ImageLimits::default(),
        }
    }
}

impl SearchOptions {
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
    /// Squared Hellinger distance after exact re-ranking (or its PQ
    /// estimate, or the EMD, by the re-rank used).
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
        let snap = self.index.snapshot();
        let config = snap.manifest.config;
        let params = SearchParams {
            k: options.k,
            nprobe: options.nprobe,
            rerank: options.rerank,
            candidates: options.candidates,
        };
        let plan = snap.plan(&params)?;
        let found = snap.search_planned(&query.vector, &plan)?;
        let mut hits = Vec::new();
        for nb in found.into_iter().next().unwrap_or_default() {
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
        })
    }
}
