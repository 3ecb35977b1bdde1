//! The done store: the events a session's scans took, kept here between calls instead
//! of crossing into Python's done set one key at a time (issue 11).
//!
//! `Assembler` (kexecwatch/core/audit/assembler.py) keeps the meaning: its done order holds
//! a *block* marker for each scan's rows, and it alone decides when rows leave (its
//! pruning and size limit, applied to the front of this store, which is the
//! concatenation of its blocks in order). This store only answers membership, drops
//! rows from its front when told, lists rows for checkpoints, and finds the highest
//! serial the assembler's done ceiling must cover.

use std::collections::{HashSet, VecDeque};

use crate::fasthash::IntSet;

/// One taken event: `(sec, ms, serial, elapsed)` (elapsed: the node's clock when
/// it was taken).
pub type DoneRow = [i64; 4];

/// The rows, oldest first, and their keys for membership.
#[derive(Debug, Default)]
pub struct DoneStore {
    /// Whether scans keep their rows here (`kw_done_keep`); off: nothing is kept.
    pub keeping: bool,
    rows: VecDeque<DoneRow>,
    keys: IntSet<(i64, i64, i64)>,
}

impl DoneStore {
    /// How many rows are held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Keep `rows` (flat `(sec, ms, serial, elapsed)`) in order; a key already held
    /// is not kept twice (as `Assembler._remember`). Returns how many were kept.
    pub fn extend(&mut self, rows: &[i64]) -> usize {
        let mut kept = 0;
        for row in rows.chunks_exact(4) {
            if self.keys.insert((row[0], row[1], row[2])) {
                self.rows.push_back([row[0], row[1], row[2], row[3]]);
                kept += 1;
            }
        }
        kept
    }

    /// Whether the event `sec.ms:serial` is held.
    pub fn contains(&self, sec: i64, ms: i64, serial: i64) -> bool {
        self.keys.contains(&(sec, ms, serial))
    }

    /// Drop rows from the front: at most `limit`; the first `forced` whatever their
    /// time, then while a row's elapsed is below `stale_before`. Returns how many went.
    pub fn drop_front(&mut self, limit: usize, forced: usize, stale_before: i64) -> usize {
        let mut dropped = 0;
        while dropped < limit {
            let row = match self.rows.front() {
                Some(row) => *row,
                None => break,
            };
            if dropped >= forced && row[3] >= stale_before {
                break;
            }
            self.rows.pop_front();
            self.keys.remove(&(row[0], row[1], row[2]));
            dropped += 1;
        }
        dropped
    }

    /// The elapsed time of the front row (`i64::MAX` when empty).
    pub fn front_elapsed(&self) -> i64 {
        self.rows.front().map_or(i64::MAX, |row| row[3])
    }

    /// Rows `offset..offset + count` (clamped), flat, into `out`.
    pub fn rows(&self, offset: usize, count: usize, out: &mut Vec<i64>) {
        out.clear();
        for row in self.rows.iter().skip(offset).take(count) {
            out.extend_from_slice(row);
        }
    }

    /// The highest serial held that is at least `floor` and not in `excluded`
    /// (`-1` when none): what `Assembler.quiet_state` searches its done set for.
    pub fn max_serial(&self, floor: i64, excluded: &HashSet<i64>) -> i64 {
        self.rows
            .iter()
            .map(|row| row[2])
            .filter(|serial| *serial >= floor && !excluded.contains(serial))
            .max()
            .unwrap_or(-1)
    }

    /// Forget every row.
    pub fn clear(&mut self) {
        self.rows.clear();
        self.keys.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_order_and_duplicates_are_kept_once() {
        let mut store = DoneStore::default();
        assert_eq!(store.extend(&[1, 0, 10, 0, 1, 0, 11, 5, 1, 0, 10, 9]), 2);
        assert_eq!(store.len(), 2);
        assert!(store.contains(1, 0, 10) && store.contains(1, 0, 11));
        assert!(!store.contains(1, 1, 10));
        let mut out = Vec::new();
        store.rows(0, 9, &mut out);
        assert_eq!(out, vec![1, 0, 10, 0, 1, 0, 11, 5]);
        store.rows(1, 1, &mut out);
        assert_eq!(out, vec![1, 0, 11, 5]);
    }

    #[test]
    fn drop_front_forces_then_prunes_the_stale_within_its_limit() {
        let mut store = DoneStore::default();
        store.extend(&[1, 0, 1, 0, 1, 0, 2, 5, 1, 0, 3, 1, 1, 0, 4, 20]);
        // Row 2 is fresh: pruning stops there, even though row 3 is stale.
        assert_eq!(store.drop_front(4, 0, 5), 1);
        assert!(!store.contains(1, 0, 1));
        assert_eq!(store.front_elapsed(), 5);
        // One forced, then the stale one behind it; the limit stops before row 4.
        assert_eq!(store.drop_front(2, 1, 5), 2);
        assert_eq!(store.len(), 1);
        assert_eq!(store.drop_front(9, 0, 21), 1);
        assert!(store.is_empty());
        assert_eq!(store.front_elapsed(), i64::MAX);
        assert_eq!(store.drop_front(9, 9, 0), 0);
    }

    #[test]
    fn max_serial_skips_the_excluded_and_the_low() {
        let mut store = DoneStore::default();
        store.extend(&[1, 0, 7, 0, 1, 0, 9, 0, 1, 0, 3, 0]);
        let excluded: HashSet<i64> = [9].iter().copied().collect();
        assert_eq!(store.max_serial(0, &excluded), 7);
        assert_eq!(store.max_serial(8, &excluded), -1);
        assert_eq!(store.max_serial(0, &HashSet::new()), 9);
        store.clear();
        assert_eq!(store.max_serial(0, &HashSet::new()), -1);
    }
}
