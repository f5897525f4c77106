//! Index configuration: the shape of the quantizers, fixed at `create`, and
//! the default search breadth. Validation lives here and nowhere else.

use crate::error::{Error, Result};
use serde::Serialize;

/// Distance metric. Only squared L2 exists: Hellinger-transformed histograms
/// make L2 the right distance, and the ADC decomposition relies on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Metric {
    /// Squared Euclidean distance, the only one (see above).
    L2,
}

/// Shape of an IVF-PQ index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Config {
    /// Vector dimension.
    pub dim: usize,
    /// Number of inverted lists (coarse centroids).
    pub nlist: usize,
    /// Number of sub-quantizers; must divide `dim`.
    pub m: usize,
    /// Bits per sub-quantizer code, 1..=16.
    pub nbits: usize,
    /// Lists probed per query when the caller does not say.
    pub nprobe: usize,
    /// The distance; only L2 (the Hellinger transform makes it right for histograms).
    pub metric: Metric,
    /// Keep each vector's values beside its code (sparse, 16 bits each with
    /// a per-vector scale, within 1/32767 of the vector's largest; FORMAT.md
    /// "Refine store"), for re-ranking and exact search (`create --refine`;
    /// always on for images).
    pub refine: bool,
    /// Train (and retrain) automatically as the collection grows; until
    /// trained, search is exact over the refine store. Needs `refine`.
    pub auto_train: bool,
    /// 4-bit fast-scan (`create --fast-scan`; needs nbits 4): segments store
    /// each list's codes in blocks of 32 vectors (`crate::quantizer::blocks`)
    /// and search filters them with in-register 8-bit table look-ups before
    /// computing exact ADC distances (`crate::read::fastscan`).
    pub fast_scan: bool,
}

/// The three presets of the design note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Preset {
    /// m 8, nbits 8, nlist 100, nprobe 10: 8-byte codes.
    Memory,
    /// m 16, nbits 8, nlist 200, nprobe 20.
    Accuracy,
    /// m 4, nbits 6, nlist 50, nprobe 5.
    Speed,
}

impl std::str::FromStr for Preset {
    type Err = Error;

    /// `memory`, `accuracy` or `speed`, as the command line spells them.
    fn from_str(s: &str) -> Result<Preset> {
        match s {
            "memory" => Ok(Preset::Memory),
            "accuracy" => Ok(Preset::Accuracy),
            "speed" => Ok(Preset::Speed),
            _ => Err(Error::Config(format!("unknown preset {s:?}: expected memory, accuracy or speed"))),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::preset(Preset::Memory)
    }
}

impl Config {
    /// The dimension of Chromatica's colour histograms (8 × 12 × 12 Lab bins).
    pub const DEFAULT_DIM: usize = 1152;

    /// The configuration of a preset, at [`Config::DEFAULT_DIM`]; adjust fields from there.
    pub fn preset(p: Preset) -> Config {
        let (m, nbits, nlist, nprobe) = match p {
            Preset::Memory => (8, 8, 100, 10),
            Preset::Accuracy => (16, 8, 200, 20),
            Preset::Speed => (4, 6, 50, 5),
        };
        Config {
            dim: Self::DEFAULT_DIM,
            nlist,
            m,
            nbits,
            nprobe,
            metric: Metric::L2,
            refine: false,
            auto_train: false,
            fast_scan: false,
        }
    }

    /// Checks every rule; the message names the rule that failed.
    pub fn validate(&self) -> Result<()> {
        let bad = |s: String| Err(Error::Config(s));
        if self.dim == 0 || self.dim > 65_536 {
            return bad(format!("dim must be between 1 and 65536, got {}", self.dim));
        }
        if self.m == 0 || !self.dim.is_multiple_of(self.m) {
            return bad(format!("m ({}) must divide dim ({})", self.m, self.dim));
        }
        if !(1..=16).contains(&self.nbits) {
            return bad(format!("nbits must be between 1 and 16, got {}", self.nbits));
        }
        if self.nlist == 0 || self.nlist > 1 << 20 {
            return bad(format!("nlist must be between 1 and 1048576, got {}", self.nlist));
        }
        if self.auto_train && !self.refine {
            return bad("auto_train needs the refine store (re-training re-encodes from it)".into());
        }
        if self.fast_scan && self.nbits != 4 {
            return bad(format!("fast_scan needs nbits 4, got {}", self.nbits));
        }
        self.check_nprobe(self.nprobe)
    }

    /// nprobe must lie in 1..=nlist; shared by `validate` and per-call overrides.
    pub fn check_nprobe(&self, nprobe: usize) -> Result<()> {
        if nprobe == 0 || nprobe > self.nlist {
            return Err(Error::Config(format!("nprobe must be between 1 and nlist ({}), got {nprobe}", self.nlist)));
        }
        Ok(())
    }

    /// Dimensions per sub-quantizer.
    pub fn dsub(&self) -> usize {
        self.dim / self.m
    }

    /// Centroids per sub-quantizer.
    pub fn ksub(&self) -> usize {
        1 << self.nbits
    }

    /// Bytes of one PQ code: m × nbits bits, packed, rounded up to a byte.
    pub fn code_size(&self) -> usize {
        (self.m * self.nbits).div_ceil(8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(c: Config) -> String {
        c.validate().unwrap_err().to_string()
    }

    #[test]
    fn presets_are_valid_and_match_the_design_note() {
        for p in [Preset::Memory, Preset::Accuracy, Preset::Speed] {
            Config::preset(p).validate().unwrap();
        }
        assert_eq!(Config::default().code_size(), 8);
        assert_eq!(Config::preset(Preset::Speed).code_size(), 3);
        assert_eq!(Config::preset(Preset::Accuracy).nlist, 200);
    }

    #[test]
    fn every_rule_has_its_message() {
        let c = Config::default();
        assert!(err(Config { m: 7, ..c }).contains("m (7) must divide dim (1152)"));
        assert!(err(Config { m: 0, ..c }).contains("must divide"));
        assert!(err(Config { nbits: 0, ..c }).contains("nbits must be between 1 and 16"));
        assert!(err(Config { nbits: 17, ..c }).contains("nbits must be between 1 and 16"));
        assert!(err(Config { nlist: 0, ..c }).contains("nlist must be"));
        assert!(err(Config { nprobe: 0, ..c }).contains("nprobe must be between 1 and nlist (100)"));
        assert!(err(Config { nprobe: 101, ..c }).contains("got 101"));
        assert!(err(Config { dim: 0, ..c }).contains("dim must be"));
        assert!(err(Config { fast_scan: true, ..c }).contains("fast_scan needs nbits 4, got 8"));
        Config { fast_scan: true, nbits: 4, ..c }.validate().unwrap();
    }

    #[test]
    fn every_nbits_is_accepted_and_packs() {
        for nbits in 1..=16 {
            let c = Config { nbits, m: 8, dim: 16, nlist: 1, nprobe: 1, ..Config::default() };
            c.validate().unwrap();
            // 8 sub-codes of nbits bits are exactly nbits bytes.
            assert_eq!(c.code_size(), nbits);
        }
    }
}
