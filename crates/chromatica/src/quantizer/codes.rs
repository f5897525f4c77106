//! PQ code packing: `m` sub-codes of `nbits` bits each, as one little-endian
//! bit stream (sub-code j occupies bits j·nbits .. (j+1)·nbits, least
//! significant bit first), padded to whole bytes. This is faiss's layout, so
//! faiss codes can be imported unchanged. nbits = 8 is one byte per sub-code.

/// Packs `idx` (each < 2^nbits) into `out` (ceil(len·nbits / 8) bytes).
pub fn pack(idx: &[u32], nbits: usize, out: &mut [u8]) {
    if nbits == 8 {
        for (o, &i) in out.iter_mut().zip(idx) {
            *o = i as u8;
        }
        return;
    }
    out.fill(0);
    let mut bit = 0usize;
    for &v in idx {
        let mut v = v as u64;
        let mut left = nbits;
        while left > 0 {
            let (byte, off) = (bit / 8, bit % 8);
            let take = (8 - off).min(left);
            out[byte] |= ((v & ((1 << take) - 1)) << off) as u8;
            v >>= take;
            bit += take;
            left -= take;
        }
    }
}

/// Unpacks `out.len()` sub-codes of `nbits` bits from `code`.
#[inline]
pub fn unpack(code: &[u8], nbits: usize, out: &mut [u32]) {
    if nbits == 8 {
        for (o, &c) in out.iter_mut().zip(code) {
            *o = c as u32;
        }
        return;
    }
    let mask = (1u64 << nbits) - 1;
    let mut bit = 0usize;
    for o in out.iter_mut() {
        // Gather up to 3 bytes (nbits ≤ 16 spans at most 3) into a word.
        let byte = bit / 8;
        let mut w = 0u64;
        for (k, b) in code[byte..code.len().min(byte + 3)].iter().enumerate() {
            w |= (*b as u64) << (8 * k);
        }
        *o = ((w >> (bit % 8)) & mask) as u32;
        bit += nbits;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn pack_unpack_round_trip(nbits in 1usize..=16, m in 1usize..20, seed in any::<u64>()) {
            let idx: Vec<u32> = (0..m as u64)
                .map(|j| (seed.wrapping_mul(6364136223846793005).wrapping_add(j * 1442695040888963407) >> 20) as u32
                    & ((1u32 << nbits) - 1))
                .collect();
            let mut code = vec![0u8; (m * nbits).div_ceil(8)];
            pack(&idx, nbits, &mut code);
            let mut back = vec![0u32; m];
            unpack(&code, nbits, &mut back);
            prop_assert_eq!(back, idx);
        }
    }

    #[test]
    fn layout_is_lsb_first_like_faiss() {
        let mut code = [0u8; 2];
        pack(&[0b101, 0b011, 0b110, 0b1], 3, &mut code[..2]);
        // bits: 101 | 011 | 110 | 001 read from the least significant end.
        assert_eq!(code, [0b1001_1101, 0b0000_0011]);
        let mut c16 = [0u8; 4];
        pack(&[0x1234, 0xabcd], 16, &mut c16);
        assert_eq!(c16, [0x34, 0x12, 0xcd, 0xab]);
    }
}
