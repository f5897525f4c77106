//! The vector workflow: create, train, add, search. Every input is checked
//! in full before anything is written, so a bad file changes nothing.

use super::progress::bar;
use chromatica::vecio::{self, VectorFile};
use chromatica::{check_dim, check_vectors};
use chromatica::{Config, Error, Index, Preset, Rerank, Result, SearchParams, TrainOptions, TrainStep};
use rand::SeedableRng;
use std::path::Path;
use std::time::Instant;

/// Rows per segment written by `add`, and per batch read by `search`.
const BATCH: usize = 131_072;

pub fn create(dir: &Path, a: &super::CreateArgs) -> Result<()> {
    let base = Config::preset(a.preset.unwrap_or(Preset::Memory));
    let config = Config {
        dim: a.dim.unwrap_or(base.dim),
        nlist: a.nlist.unwrap_or(base.nlist),
        m: a.m.unwrap_or(base.m),
        nbits: a.nbits.unwrap_or(base.nbits),
        nprobe: a.nprobe.unwrap_or(base.nprobe),
        refine: a.refine,
        fast_scan: a.fast_scan,
        ..base
    };
    Index::create(dir, config)?;
    println!(
        "created {}: dim {}, nlist {}, m {}, nbits {} ({} bytes per code), nprobe {}{}{}",
        dir.display(),
        config.dim,
        config.nlist,
        config.m,
        config.nbits,
        config.code_size(),
        config.nprobe,
        if config.refine { ", with the refine store" } else { "" },
        if config.fast_scan { ", fast-scan" } else { "" }
    );
    Ok(())
}

fn open_vectors(path: &Path, config: &Config, what: &str) -> Result<VectorFile> {
    let f = VectorFile::open(path)?;
    if f.is_empty() {
        return Err(Error::bad_file(path, "holds no vectors"));
    }
    check_dim(f.dim(), config.dim, &format!("{} ({what})", path.display()))?;
    Ok(f)
}

pub fn train(dir: &Path, vectors: &Path, sample: Option<usize>, seed: u64, kmeans: super::KMeans) -> Result<()> {
    let kmeans = match kmeans {
        super::KMeans::Native => chromatica::KMeansBackend::Native,
        #[cfg(feature = "faiss")]
        super::KMeans::Faiss => chromatica::KMeansBackend::Faiss,
        #[cfg(not(feature = "faiss"))]
        super::KMeans::Faiss => return Err(Error::invalid_argument(
            "--kmeans",
            "--kmeans faiss: this build lacks the faiss feature (build with `cargo build --release --features faiss`)",
        )),
    };
    let index = Index::open(dir)?;
    if index.is_trained() {
        return Err(Error::AlreadyTrained);
    }
    let c = index.config();
    let file = open_vectors(vectors, &c, "training vectors")?;
    if sample == Some(0) {
        return Err(Error::invalid_argument("--sample", "--sample must be at least 1"));
    }
    let cap = sample.unwrap_or(256 * c.nlist.max(c.ksub()));
    let n = cap.min(file.len());
    let data = if n == file.len() {
        file.read_all()?
    } else {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut rows = rand::seq::index::sample(&mut rng, file.len(), n).into_vec();
        rows.sort_unstable();
        let mut out = Vec::with_capacity(n * c.dim);
        for r in rows {
            file.read_rows(r, 1, &mut out)?;
        }
        out
    };
    check_vectors(&data, c.dim, &vectors.display().to_string())?;
    let opts = TrainOptions { seed, kmeans, ..TrainOptions::default() };
    let pb = bar((opts.coarse_niter + c.m) as u64, "training");
    let t = Instant::now();
    let report = index.train(&data, &opts, &mut |step| match step {
        TrainStep::Coarse { i, .. } => pb.set_position(i as u64),
        TrainStep::Pq { j, .. } => pb.set_position((opts.coarse_niter + j) as u64),
        _ => {}
    });
    pb.finish_and_clear();
    let report = report?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "trained on {} vectors in {:.2}s: coarse MSE {:.6}, reconstruction MSE {:.6}",
        report.train_points,
        t.elapsed().as_secs_f64(),
        report.coarse_mse,
        report.reconstruction_mse
    );
    Ok(())
}

pub fn add(dir: &Path, vectors: &Path, ids: Option<&Path>) -> Result<()> {
    let index = Index::open(dir)?;
    if !index.is_trained() {
        return Err(Error::NotTrained);
    }
    let c = index.config();
    let file = open_vectors(vectors, &c, "vectors")?;
    let ids = match ids {
        Some(p) => {
            let ids = vecio::read_ids(p)?;
            if ids.len() != file.len() {
                return Err(Error::InvalidInput(format!(
                    "{}: {} ids for {} vectors in {}",
                    p.display(),
                    ids.len(),
                    file.len(),
                    vectors.display()
                )));
            }
            Some(ids)
        }
        None => None,
    };
    // The library checks every row and id first, then commits every
    // batch's segment at once: a bad row or id anywhere changes nothing.
    let t = Instant::now();
    let report = index.add_from(&file, ids.as_deref(), BATCH)?;
    if let Some(e) = &report.merge_error {
        eprintln!("warning: the vectors are committed, but the automatic merge after them failed: {e}");
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "added {} vectors (ids {}..{}) in {} segment(s) in {secs:.2}s ({:.0} vectors/s); index holds {}",
        file.len(),
        report.ids.start,
        report.ids.end,
        report.segments.len(),
        file.len() as f64 / secs,
        index.len()
    );
    Ok(())
}

/// `search --vectors`'s options: `--rerank l2|none` (the EMD re-ranks are
/// for colour histograms, which colour and image queries make) and
/// `--candidates`; the library checks them against the index.
pub fn search_params(
    k: usize,
    nprobe: Option<usize>,
    rerank: Option<&str>,
    candidates: Option<usize>,
) -> Result<SearchParams> {
    if k == 0 {
        return Err(Error::invalid_argument("--k", "--k must be at least 1"));
    }
    let mut p = SearchParams::new(k);
    p.nprobe = nprobe;
    p.candidates = candidates;
    p.rerank = match rerank {
        None => None,
        Some(name) => match Rerank::from_name(name) {
            Some(r @ (Rerank::L2 | Rerank::Off)) => Some(r),
            _ => {
                return Err(Error::invalid_argument(
                    "--rerank",
                    format!("with --vectors, --rerank is l2 or none, got {name:?}"),
                ))
            }
        },
    };
    Ok(p)
}

pub fn search(
    dir: &Path,
    vectors: &Path,
    mut params: SearchParams,
    threads: Option<usize>,
    out: &Path,
    distances: Option<&Path>,
) -> Result<()> {
    let ids_format = IdsFormat::of(out)?;
    let index = super::open_read_only(dir)?;
    let c = index.config();
    if let Some(p) = params.nprobe {
        c.check_nprobe(p)?;
    }
    if !index.is_trained() {
        return Err(Error::NotTrained);
    }
    let pool = super::thread_pool(threads)?;
    let file = open_vectors(vectors, &c, "queries")?;
    // No query has more results than the index has live vectors: the
    // output has min(k, live) columns, so no k can make it outgrow that.
    let k = params.k.min(usize::try_from(index.len()).unwrap_or(usize::MAX).max(1));
    params.k = k;
    let pb = bar(file.len() as u64, "searching");
    let t = Instant::now();
    let (mut ids, mut dists) = (Vec::new(), Vec::new());
    let mut buf = Vec::new();
    for start in (0..file.len()).step_by(BATCH) {
        buf.clear();
        let count = BATCH.min(file.len() - start);
        file.read_rows(start, count, &mut buf)?;
        let results = pool.install(|| index.search(&buf, &params))?;
        for row in results {
            for j in 0..k {
                match row.get(j) {
                    Some(nb) => {
                        ids.push(ids_format.check(nb.id, out)?);
                        dists.push(nb.distance);
                    }
                    None => {
                        ids.push(-1);
                        dists.push(f32::INFINITY);
                    }
                }
            }
        }
        pb.inc(count as u64);
    }
    pb.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    match ids_format {
        IdsFormat::Ivecs => {
            let narrow: Vec<i32> = ids.iter().map(|&id| id as i32).collect(); // checked to fit above
            vecio::write_ivecs(out, &narrow, k)?
        }
        IdsFormat::Npy => vecio::write_npy_i64(out, &ids, k)?,
    }
    if let Some(d) = distances {
        vecio::write_fvecs(d, &dists, k)?;
    }
    eprintln!(
        "searched {} queries (k {k}, nprobe {}, {} threads) in {secs:.3}s ({:.0} queries/s)",
        file.len(),
        params.nprobe.unwrap_or(c.nprobe),
        pool.current_num_threads(),
        file.len() as f64 / secs
    );
    Ok(())
}

/// The file `search --out` writes result ids to, chosen by its extension:
/// `.ivecs` (int32, as faiss's tools read it) or `.npy` (int64, every id).
#[derive(Clone, Copy)]
enum IdsFormat {
    Ivecs,
    Npy,
}

impl IdsFormat {
    fn of(out: &Path) -> Result<IdsFormat> {
        match out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("ivecs") => Ok(IdsFormat::Ivecs),
            Some("npy") => Ok(IdsFormat::Npy),
            _ => Err(Error::invalid_argument(
                "--out",
                format!("{}: --out must end in .ivecs (int32 ids) or .npy (int64 ids)", out.display()),
            )),
        }
    }

    /// A result id as stored, or an error (before anything is written) if
    /// the format cannot hold it.
    fn check(self, id: u64, out: &Path) -> Result<i64> {
        let fits = match self {
            IdsFormat::Ivecs => i32::try_from(id).is_ok(),
            IdsFormat::Npy => i64::try_from(id).is_ok(),
        };
        if !fits {
            let hint = match self {
                IdsFormat::Ivecs => "; write --out FILE.npy for int64 ids",
                IdsFormat::Npy => "",
            };
            return Err(Error::bad_file(
                out,
                format!("id {id} does not fit the {} of this file{hint}; nothing was written", self.width()),
            ));
        }
        Ok(id as i64)
    }

    fn width(self) -> &'static str {
        match self {
            IdsFormat::Ivecs => "int32 of an .ivecs",
            IdsFormat::Npy => "int64 of an .npy",
        }
    }
}
