//! The outlier test's window: a sensor's last W values of one measure, kept both in
//! arrival order (to drop the oldest) and sorted (median and MAD without sorting per
//! reading). Memory is fixed at creation; a push moves at most W values.

use std::collections::VecDeque;

#[derive(Debug, Clone)]
pub(super) struct Window {
    capacity: usize,
    order: VecDeque<f64>,
    sorted: Vec<f64>,
}

impl Window {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            // Grown on use: a sensor with few readings costs little.
            order: VecDeque::new(),
            sorted: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.sorted.len()
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Empties the window (its memory is kept for the values to come).
    pub(super) fn clear(&mut self) {
        self.order.clear();
        self.sorted.clear();
    }

    /// Adds `x`, dropping the oldest value when full.
    pub(super) fn push(&mut self, x: f64) {
        if self.capacity == 0 {
            return;
        }
        if self.order.len() == self.capacity
            && let Some(old) = self.order.pop_front()
        {
            let at = self.sorted.partition_point(|v| v.total_cmp(&old).is_lt());
            self.sorted.remove(at);
        }
        self.order.push_back(x);
        let at = self.sorted.partition_point(|v| v.total_cmp(&x).is_lt());
        self.sorted.insert(at, x);
    }

    /// The median; `None` when empty.
    pub(super) fn median(&self) -> Option<f64> {
        let n = self.sorted.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(self.sorted[n / 2]),
            _ => Some((self.sorted[n / 2 - 1] + self.sorted[n / 2]) / 2.0),
        }
    }

    /// The median absolute deviation from `median`: the middle of two sorted runs (the
    /// distances below and above the median), merged without a buffer.
    pub(super) fn mad(&self, median: f64) -> f64 {
        let s = &self.sorted;
        let n = s.len();
        if n == 0 {
            return 0.0;
        }
        let split = s.partition_point(|v| *v < median);
        // Below: distances grow as the index falls; above: as it rises.
        let (mut lo, mut hi) = (split, split);
        let mut next = || {
            let below = (lo > 0).then(|| median - s[lo - 1]);
            let above = (hi < n).then(|| s[hi] - median);
            match (below, above) {
                (Some(b), Some(a)) if b <= a => {
                    lo -= 1;
                    b
                }
                (_, Some(a)) => {
                    hi += 1;
                    a
                }
                (Some(b), None) => {
                    lo -= 1;
                    b
                }
                (None, None) => 0.0,
            }
        };
        let mut k = 0;
        let mut prev = 0.0;
        loop {
            let d = next();
            if k == n / 2 {
                return if n % 2 == 1 { d } else { (prev + d) / 2.0 };
            }
            prev = d;
            k += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(values: &[f64]) -> (f64, f64) {
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            let n = v.len();
            if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            }
        };
        let m = med(&mut values.to_vec());
        let mut dev: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
        (m, med(&mut dev))
    }

    #[test]
    fn the_oldest_value_leaves_a_full_window() {
        let mut w = Window::new(3);
        for x in [5.0, 1.0, 3.0, 10.0] {
            w.push(x);
        }
        assert_eq!(w.len(), 3);
        assert_eq!(w.median(), Some(3.0));
        assert_eq!(w.mad(3.0), 2.0);
    }

    proptest! {
        #[test]
        fn median_and_mad_match_a_sort(
            values in prop::collection::vec(-50i32..50, 1..80),
            cap in 1usize..40,
        ) {
            let values: Vec<f64> = values.into_iter().map(|v| v as f64 / 4.0).collect();
            let mut w = Window::new(cap);
            for (i, x) in values.iter().enumerate() {
                w.push(*x);
                let kept = &values[(i + 1).saturating_sub(cap)..=i];
                let (m, mad) = naive(kept);
                prop_assert_eq!(w.median(), Some(m));
                prop_assert!((w.mad(m) - mad).abs() < 1e-12, "{} vs {}", w.mad(m), mad);
            }
        }
    }
}
