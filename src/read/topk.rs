//! Bounded max-heap keeping the k smallest (distance, id) pairs, each with a
//! payload (where the vector is stored). Ties on distance are broken by id,
//! so results do not depend on scan order.

/// (distance, id, payload).
pub type Entry = (f32, u64, u64);

#[derive(Debug)]
pub struct TopK {
    k: usize,
    heap: Vec<Entry>,
    /// The heap's largest distance once full, +∞ before: the scan loop
    /// compares against this on every code, so it is kept, not derived.
    worst: f32,
}

#[inline]
fn greater(a: Entry, b: Entry) -> bool {
    a.0 > b.0 || (a.0 == b.0 && a.1 > b.1)
}

impl TopK {
    pub fn new(k: usize) -> TopK {
        TopK { k, heap: Vec::with_capacity(k), worst: f32::INFINITY }
    }

    /// Distances above this cannot enter.
    #[inline]
    pub fn threshold(&self) -> f32 {
        self.worst
    }

    #[inline]
    pub fn push(&mut self, dist: f32, id: u64, payload: u64) {
        self.insert(dist, id, payload);
        if self.k > 0 && self.heap.len() == self.k {
            self.worst = self.heap[0].0;
        }
    }

    #[inline]
    fn insert(&mut self, dist: f32, id: u64, payload: u64) {
        let item = (dist, id, payload);
        if self.heap.len() < self.k {
            self.heap.push(item);
            let mut i = self.heap.len() - 1;
            while i > 0 {
                let p = (i - 1) / 2;
                if !greater(self.heap[i], self.heap[p]) {
                    break;
                }
                self.heap.swap(i, p);
                i = p;
            }
        } else if self.k > 0 && greater(self.heap[0], item) {
            self.heap[0] = item;
            let n = self.heap.len();
            let mut i = 0;
            loop {
                let (l, r) = (2 * i + 1, 2 * i + 2);
                let mut big = i;
                if l < n && greater(self.heap[l], self.heap[big]) {
                    big = l;
                }
                if r < n && greater(self.heap[r], self.heap[big]) {
                    big = r;
                }
                if big == i {
                    break;
                }
                self.heap.swap(i, big);
                i = big;
            }
        }
    }

    /// The kept entries, nearest first.
    pub fn into_sorted(mut self) -> Vec<Entry> {
        self.heap.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        self.heap
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
