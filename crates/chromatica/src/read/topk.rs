//! Keeps the k smallest (distance, id) pairs, each with a payload (where the
//! vector is stored). Ties on distance are broken by id, so results do not
//! depend on scan order.
//!
//! A scan offers many candidates early on and few later. Appending to a
//! buffer of 2k and cutting it back to the best k when full (a linear-time
//! selection) costs a few cycles per candidate; a binary heap costs a sift of
//! log k compare-and-swaps on every one, which profiles showed as the single
//! largest cost of a k = 100 search.

use std::cmp::Ordering;

/// A buffer this short is cut by sorting it (insertion sort, for which
/// the standard library's selection is slower at this size: measured on
/// the k = 10 stage-1 scan); a longer one by a selection.
const SORT_TO_CUT: usize = 20;

/// (distance, id, payload).
pub type Entry = (f32, u64, u64);

#[derive(Debug)]
pub struct TopK {
    k: usize,
    buf: Vec<Entry>,
    /// The k-th smallest distance seen so far, +∞ before k were seen: the
    /// scan loop compares against this on every code, so it is kept, not
    /// derived.
    worst: f32,
}

#[inline]
fn order(a: &Entry, b: &Entry) -> Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

impl TopK {
    pub fn new(k: usize) -> TopK {
        TopK {
            k,
            buf: Vec::with_capacity(k.max(8).saturating_mul(2)),
            worst: if k == 0 { f32::NEG_INFINITY } else { f32::INFINITY },
        }
    }

    /// Distances above this cannot enter.
    #[inline]
    pub fn threshold(&self) -> f32 {
        self.worst
    }

    #[inline]
    pub fn push(&mut self, dist: f32, id: u64, payload: u64) {
        if self.k == 0 || dist > self.worst {
            return;
        }
        self.buf.push((dist, id, payload));
        if self.buf.len() == self.buf.capacity() {
            self.cut();
        }
    }

    /// Keeps the best k and tightens the threshold to the k-th distance.
    /// Called only with a full buffer, which holds at least 2k > k entries.
    fn cut(&mut self) {
        if self.buf.len() <= SORT_TO_CUT {
            self.buf.sort_unstable_by(order);
        } else {
            self.buf.select_nth_unstable_by(self.k - 1, order);
        }
        self.worst = self.buf[self.k - 1].0;
        self.buf.truncate(self.k);
    }

    /// The kept entries, nearest first.
    pub fn into_sorted(mut self) -> Vec<Entry> {
        self.buf.sort_unstable_by(order);
        self.buf.truncate(self.k);
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn keeps_the_k_smallest(v in proptest::collection::vec(0u8..50, 0..200), k in 0usize..20) {
            let mut t = TopK::new(k);
            for (i, &d) in v.iter().enumerate() {
                t.push(d as f32, i as u64, 7 * i as u64);
            }
            let mut want: Vec<Entry> = v.iter().enumerate().map(|(i, &d)| (d as f32, i as u64, 7 * i as u64)).collect();
            want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            want.truncate(k);
            prop_assert_eq!(t.into_sorted(), want);
        }
    }
}
