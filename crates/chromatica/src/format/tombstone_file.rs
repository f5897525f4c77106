//! Tombstone files: the ids one `delete` call removed, sorted ascending.

use super::{check_crc, crc, read_checked_header, write_checked_header, FileHeader, FileKind};
use crate::error::{Error, Result};
use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Fixed part of a tombstone file (32 bytes); the ids follow at byte 32.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
pub struct TombstoneHeader {
    pub file: FileHeader,
    pub count: U64,
    pub ids_crc: U32,
    pub header_crc: U32,
}

const HEADER: usize = std::mem::size_of::<TombstoneHeader>();

/// Encodes `ids`, which must be sorted ascending without repeats.
pub fn encode(ids: &[u64]) -> Vec<u8> {
    debug_assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let body: Vec<u8> = ids.iter().flat_map(|i| i.to_le_bytes()).collect();
    let h = TombstoneHeader {
        file: FileHeader::new(FileKind::Tombstones),
        count: U64::new(ids.len() as u64),
        ids_crc: U32::new(crc(&body)),
        header_crc: U32::new(0),
    };
    let mut out = Vec::with_capacity(HEADER + body.len());
    write_checked_header(&h, &mut out);
    out.extend_from_slice(&body);
    out
}

/// Decodes and checks a tombstone file: checksums, exact length, ids
/// strictly ascending.
pub fn decode(bytes: &[u8], file: &str) -> Result<Vec<u64>> {
    FileHeader::check(bytes, FileKind::Tombstones, file)?;
    let h: TombstoneHeader = read_checked_header(bytes, file)?;
    let n = h.count.get();
    let want = n.checked_mul(8).and_then(|b| b.checked_add(HEADER as u64));
    if want != Some(bytes.len() as u64) {
        return Err(Error::corrupt(file, 16, format!("{n} ids do not fit a file of {} bytes", bytes.len())));
    }
    check_crc(bytes, HEADER..bytes.len(), h.ids_crc.get(), file, "ids")?;
    let ids: Vec<u64> =
        <[U64]>::ref_from_bytes(&bytes[HEADER..]).expect("length checked").iter().map(|v| v.get()).collect();
    if let Some(i) = ids.windows(2).position(|w| w[0] >= w[1]) {
        return Err(Error::corrupt(file, (HEADER + 8 * (i + 1)) as u64, "ids are not strictly ascending"));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_catches_every_flip_and_cut() {
        let ids = vec![3, 9, 10, u64::MAX - 1];
        let b = encode(&ids);
        assert_eq!(decode(&b, "t").unwrap(), ids);
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x08;
            assert!(decode(&c, "t").is_err(), "flip at byte {i} not caught");
            assert!(decode(&b[..i], "t").is_err());
        }
        assert_eq!(decode(&encode(&[]), "t").unwrap(), Vec::<u64>::new());
    }
}
