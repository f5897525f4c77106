//! The read path: a [`Snapshot`] is one committed state of the index (its
//! manifest, quantizers and mapped segments), immutable and shared by
//! reference count, so searches never wait for writers.

pub mod search;
pub mod topk;

use crate::error::{Error, Result};
use crate::format::manifest::Manifest;
use crate::format::quantizer_file::QuantizerData;
use crate::format::segment_file::SegmentView;
use crate::format::{quantizer_name, segment_name};
use crate::quantizer::Quantizers;
use crate::storage::Storage;
use std::sync::Arc;

pub use search::{Neighbor, SearchParams};

#[derive(Debug)]
pub struct Snapshot {
    pub manifest: Manifest,
    pub quantizers: Option<Arc<Quantizers>>,
    pub segments: Vec<Arc<SegmentView>>,
}

impl Snapshot {
    /// Opens what `manifest` names. Files already open in `previous` are
    /// shared rather than opened again. Cost: O(nlist) per segment, never
    /// O(vectors).
    pub fn load(storage: &dyn Storage, manifest: Manifest, previous: Option<&Snapshot>) -> Result<Snapshot> {
        let c = manifest.config;
        let quantizers = match (manifest.quantizer_file, previous) {
            (None, _) => None,
            (Some(q), Some(p)) if p.manifest.quantizer_file == Some(q) => p.quantizers.clone(),
            (Some(q), _) => {
                let name = quantizer_name(q);
                let bytes = storage.map(&name)?;
                let data = QuantizerData::decode(&bytes, &storage.describe(&name), (c.dim, c.nlist, c.m, c.nbits))?;
                Some(Arc::new(Quantizers::from_data(&c, data)))
            }
        };
        let mut segments = Vec::with_capacity(manifest.segments.len());
        for s in &manifest.segments {
            let name = storage.describe(&segment_name(s.file));
            let reused = previous.and_then(|p| p.segments.iter().find(|v| v.name() == name).cloned());
            let view = match reused {
                Some(v) => v,
                None => {
                    let q = manifest.quantizer_file.ok_or_else(|| {
                        Error::corrupt(&name, 0, "manifest lists segments but no quantizers")
                    })?;
                    let bytes = storage.map(&segment_name(s.file))?;
                    Arc::new(SegmentView::open(bytes, name.clone(), (c.nlist, c.code_size(), q))?)
                }
            };
            if view.vectors() != s.vectors || view.file_bytes() as u64 != s.bytes {
                return Err(Error::corrupt(
                    &name,
                    0,
                    format!(
                        "segment holds {} vectors in {} bytes, the manifest says {} in {}",
                        view.vectors(),
                        view.file_bytes(),
                        s.vectors,
                        s.bytes
                    ),
                ));
            }
            segments.push(view);
        }
        Ok(Snapshot { manifest, quantizers, segments })
    }

    /// Live vectors.
    pub fn vectors(&self) -> u64 {
        self.manifest.total_vectors()
    }
}
