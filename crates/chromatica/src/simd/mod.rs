//! Every SIMD kernel of the engine, and the one decision of which to run.
//!
//! A kernel family is one file: `float.rs` (dot product, squared L2, sparse
//! rows times a matrix, the nearest-centroid argmin, stage 1's per-list
//! table and threshold mask), `adc.rs` (the stage-1
//! sums of byte-wide 8-sub-code codes, by gathers), `fastscan.rs` (the
//! 4-bit fast-scan block sums), `sinkhorn.rs` (the two matrix–vector products
//! of a Sinkhorn iteration). Each has a portable twin in plain Rust, which
//! is the reference: a test checks that every kernel this CPU can run agrees with it (beside the
//! kernels, or for fast-scan in `crate::read::fastscan`, which builds the
//! quantized tables). The dense matrix products (`crate::distance::matmul_abt`)
//! are `matrixmultiply`'s, which chooses its own kernels.
//!
//! Which kernels run is decided once per process, by [`Cpu::get`]: AVX2 and
//! FMA on an x86-64 CPU that has both, else the portable ones. Setting the
//! environment variable `CHROMATICA_NO_SIMD` (to anything) before the first
//! search or training forces the portable kernels everywhere, to rule a SIMD
//! kernel in or out when results differ between machines, or to measure what
//! SIMD buys. Results are equal either way, except for float rounding (FMA
//! rounds once where the portable code rounds twice).

pub mod adc;
pub mod fastscan;
pub mod float;
pub mod sinkhorn;

use std::sync::OnceLock;

/// Which instruction sets the kernels may use. Holding a `Cpu` that says
/// AVX2 and FMA is proof that the CPU has them: only [`Cpu::get`] and
/// [`Cpu::available`] make one, after asking the CPU. `Copy`, so that a
/// caller reads it once and hands it to every kernel call of a loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu {
    avx2_fma: bool,
}

impl Cpu {
    /// The portable kernels, which every CPU runs.
    pub const PORTABLE: Cpu = Cpu { avx2_fma: false };

    /// The kernels to use: the best this CPU runs, or the portable ones if
    /// `CHROMATICA_NO_SIMD` is set. Detected on the first call and cached;
    /// later calls are one load.
    #[inline]
    pub fn get() -> Cpu {
        static CPU: OnceLock<Cpu> = OnceLock::new();
        *CPU.get_or_init(|| choose(std::env::var_os("CHROMATICA_NO_SIMD").is_some()))
    }

    /// Every kernel set this CPU can run, portable first, whatever
    /// `CHROMATICA_NO_SIMD` says: for the tests that compare them.
    #[cfg(test)]
    pub fn available() -> Vec<Cpu> {
        let mut v = vec![Cpu::PORTABLE];
        if best() != Cpu::PORTABLE {
            v.push(best());
        }
        v
    }
}

/// The kernels to run: portable if asked, else the best the hardware has.
fn choose(no_simd: bool) -> Cpu {
    if no_simd {
        Cpu::PORTABLE
    } else {
        best()
    }
}

/// The best kernel set the hardware supports.
fn best() -> Cpu {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        return Cpu { avx2_fma: true };
    }
    Cpu::PORTABLE
}

/// Hints the CPU to load every cache line of `bytes` (a no-op where there
/// is no prefetch instruction). Never faults, changes nothing.
#[inline]
pub fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: `prefetcht0` only hints the cache; it never faults and has
        // no effect on program state. The address is inside `bytes`, and
        // SSE, which provides the instruction, is part of x86_64.
        unsafe { std::arch::x86_64::_mm_prefetch(line.as_ptr().cast::<i8>(), std::arch::x86_64::_MM_HINT_T0) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_simd_forces_the_portable_kernels_and_detection_is_cached() {
        assert_eq!(choose(true), Cpu::PORTABLE);
        let all = Cpu::available();
        assert_eq!(all[0], Cpu::PORTABLE);
        assert_eq!(choose(false), *all.last().unwrap());
        let env = std::env::var_os("CHROMATICA_NO_SIMD").is_some();
        assert_eq!(Cpu::get(), choose(env));
        assert_eq!(Cpu::get(), Cpu::get());
        #[cfg(target_arch = "x86_64")]
        assert_eq!(choose(false).avx2_fma, is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
    }
}
