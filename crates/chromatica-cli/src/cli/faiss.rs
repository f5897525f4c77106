//! `import-faiss`: a faiss IndexIVFPQ file becomes a new index, its
//! quantizers, codes and ids taken as they are.

use chromatica::faiss_import::{self, DirectMap, SizeEncoding};
use chromatica::Result;
use std::path::Path;
use std::time::Instant;

pub fn import(file: &Path, dir: &Path) -> Result<()> {
    let t = Instant::now();
    let (_, r) = faiss_import::import(file, dir)?;
    let c = r.config;
    println!(
        "imported {} into {} in {:.2}s: {} vectors, dim {}, nlist {}, m {}, nbits {} ({} bytes per code), nprobe {} \
         (list sizes {}, direct map {})",
        file.display(),
        dir.display(),
        t.elapsed().as_secs_f64(),
        r.vectors,
        c.dim,
        c.nlist,
        c.m,
        c.nbits,
        c.code_size(),
        c.nprobe,
        match r.sizes {
            SizeEncoding::Full => "full",
            SizeEncoding::Sparse => "sparse",
        },
        match r.direct_map {
            DirectMap::None => "none",
            DirectMap::Array => "array, not needed",
            DirectMap::Hashtable => "hashtable, not needed",
        }
    );
    Ok(())
}
