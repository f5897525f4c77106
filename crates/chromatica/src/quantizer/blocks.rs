//! The 4-bit fast-scan code layout: the one place that converts between
//! plain codes (one code after another, `crate::quantizer::codes`) and the
//! blocks a fast-scan segment stores. The segment writer and reader, the
//! merge path and the search kernels (`crate::read::fastscan`) all go
//! through it.
//!
//! A list of `count` vectors is stored as `ceil(count / 32)` blocks of 32
//! vectors, the last one padded with zero codes. A plain 4-bit code of
//! `code_size` bytes holds `S = 2·code_size` nibbles ("slots"; slot j is
//! sub-code j, and for odd m the last slot is the zero padding nibble). A
//! block is `S` runs of 16 bytes, run j holding slot j of all 32 vectors:
//!
//! ```text
//! byte 16·j + 2·(v mod 8) + ⌊v/8⌋ mod 2,  low nibble for v < 16, high for v ≥ 16
//! ```
//!
//! So one 32-byte load covers two sub-quantizers (2p, 2p+1) of 32 vectors:
//! each 128-bit lane is one sub-quantizer, which is what `vpshufb` (a table
//! look-up per lane) needs. The order of vectors inside a run is chosen so
//! that, after the kernel's 16-bit accumulation of even and odd bytes, the
//! sums come out in vector order 0..32 (see `crate::read::fastscan`).

/// Vectors per block.
pub const BLOCK: usize = 32;

/// Code slots a list of `count` vectors occupies: `count` rounded up to a
/// whole number of blocks.
#[inline]
pub fn slots(count: usize) -> usize {
    count.div_ceil(BLOCK) * BLOCK
}

/// Bytes a list of `count` vectors occupies.
#[inline]
pub fn list_bytes(count: usize, code_size: usize) -> usize {
    slots(count) * code_size
}

/// Where slot `j` of vector `v` (< 32) sits in its block: byte offset, and
/// the shift (0 or 4) of its nibble.
#[inline]
pub fn locate(v: usize, j: usize) -> (usize, u32) {
    (16 * j + 2 * (v % 8) + (v / 8) % 2, if v < 16 { 0 } else { 4 })
}

/// Sub-code `j` of vector `v` (< 32) of one block.
#[inline]
pub fn sub_code(block: &[u8], v: usize, j: usize) -> usize {
    let (at, shift) = locate(v, j);
    ((block[at] >> shift) & 15) as usize
}

/// Appends the plain codes `plain` (whole codes of `code_size` bytes) as
/// blocks, the last one padded with zeros.
pub fn to_blocks(plain: &[u8], code_size: usize, out: &mut Vec<u8>) {
    if code_size == 0 {
        return;
    }
    for chunk in plain.chunks(BLOCK * code_size) {
        let base = out.len();
        out.resize(base + BLOCK * code_size, 0);
        let block = &mut out[base..];
        for (v, code) in chunk.chunks_exact(code_size).enumerate() {
            for (i, &byte) in code.iter().enumerate() {
                for (j, nibble) in [(2 * i, byte & 15), (2 * i + 1, byte >> 4)] {
                    let (at, shift) = locate(v, j);
                    block[at] |= nibble << shift;
                }
            }
        }
    }
}

/// The plain codes of the first `count` vectors of `blocks` (`count` ≤ the
/// slots `blocks` holds).
pub fn from_blocks(blocks: &[u8], count: usize, code_size: usize) -> Vec<u8> {
    let mut out = vec![0u8; count * code_size];
    if code_size == 0 {
        return out;
    }
    for (p, code) in out.chunks_exact_mut(code_size).enumerate() {
        let block = &blocks[(p / BLOCK) * BLOCK * code_size..][..BLOCK * code_size];
        for (i, byte) in code.iter_mut().enumerate() {
            *byte = (sub_code(block, p % BLOCK, 2 * i) | sub_code(block, p % BLOCK, 2 * i + 1) << 4) as u8;
        }
    }
    out
}

/// The offset (within `blocks`) of the first byte whose padding nibbles —
/// the slots of vectors `count..` of the last block — are not zero.
pub fn padding_error(blocks: &[u8], count: usize, code_size: usize) -> Option<usize> {
    let used = count % BLOCK;
    if used == 0 || code_size == 0 {
        return None;
    }
    let last = (count / BLOCK) * BLOCK * code_size;
    let block = &blocks[last..last + BLOCK * code_size];
    for j in 0..2 * code_size {
        for v in used..BLOCK {
            let (at, shift) = locate(v, j);
            if (block[at] >> shift) & 15 != 0 {
                return Some(last + at);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(count: usize, code_size: usize, seed: u64) -> Vec<u8> {
        let mut s = seed;
        (0..count * code_size)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (s >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn round_trips_with_zero_padding() {
        for code_size in [1, 2, 3, 8, 16, 32] {
            for count in [0, 1, 5, 31, 32, 33, 64, 100] {
                let p = plain(count, code_size, (count * 131 + code_size) as u64);
                let mut b = vec![0xaa];
                to_blocks(&p, code_size, &mut b);
                let b = &b[1..];
                assert_eq!(b.len(), list_bytes(count, code_size));
                assert_eq!(from_blocks(b, count, code_size), p);
                assert_eq!(padding_error(b, count, code_size), None);
                // Every slot of every vector is where `locate` says.
                for v in 0..count {
                    for j in 0..2 * code_size {
                        let want = (p[v * code_size + j / 2] >> (4 * (j % 2))) & 15;
                        assert_eq!(sub_code(&b[(v / BLOCK) * BLOCK * code_size..], v % BLOCK, j), want as usize);
                    }
                }
            }
        }
    }

    #[test]
    fn locate_is_a_bijection_onto_the_block() {
        for code_size in [1, 4] {
            let mut seen = vec![0u8; BLOCK * code_size];
            for v in 0..BLOCK {
                for j in 0..2 * code_size {
                    let (at, shift) = locate(v, j);
                    assert_eq!(seen[at] & (15 << shift), 0, "v {v} j {j} overlaps");
                    seen[at] |= 15 << shift;
                }
            }
            assert!(seen.iter().all(|&b| b == 0xff));
        }
        // One 32-byte load holds slots 2p and 2p+1, one per 128-bit lane.
        assert_eq!(locate(0, 2).0, 32);
        assert_eq!(locate(0, 3).0, 48);
        assert_eq!((locate(8, 0), locate(16, 0), locate(31, 1)), ((1, 0), (0, 4), (31, 4)));
    }

    #[test]
    fn non_zero_padding_is_found() {
        let p = plain(40, 3, 9);
        let mut b = Vec::new();
        to_blocks(&p, 3, &mut b);
        for v in 8..BLOCK {
            for j in 0..6 {
                let mut c = b.clone();
                let (at, shift) = locate(v, j);
                c[BLOCK * 3 + at] |= 1 << shift;
                assert_eq!(padding_error(&c, 40, 3), Some(BLOCK * 3 + at));
            }
        }
        // A vector in use is not padding.
        let mut c = b.clone();
        c[BLOCK * 3 + locate(7, 5).0] ^= 0x01;
        assert_eq!(padding_error(&c, 40, 3), None);
    }
}
