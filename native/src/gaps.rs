//! The assembler's state for node `None` while it is quiet, and how a taken event
//! moves it: `_Clock` (no pending jump) and `_GapTracker.observe`/`declare`/`_advance`
//! of kexecwatch/core/audit/assembler.py, for events that are plain progress.
//!
//! "Plain" (`Assembler._plain`): dated before year 10000 and within one window of the
//! present. Only serials at or past the expected one are taken here (a serial behind
//! it is a reset or a late arrival, which the reference path reads), never one
//! already ahead, never one at or below the done set's highest (it may be done).

use std::collections::BTreeMap;

/// `MAX_TIME_MS` of record.py: the first time that is no date (year 10000).
pub const MAX_TIME_MS: i64 = 253_402_300_800_000;
/// `_MAX_AHEAD` of assembler.py.
pub const MAX_AHEAD: usize = 1_024;

/// One serial seen ahead of the expected one: its event's id and when it was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ahead {
    pub sec: i64,
    pub ms: i64,
    pub seen: i64,
    /// Insertion order (the order of Python's dict, kept for its checkpoints).
    order: u64,
}

/// One event's id, read from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventId {
    pub sec: i64,
    pub ms: i64,
    pub serial: i64,
    pub time_ms: i64,
}

/// `QuietState` of the binding: node `None`'s clock and gap tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quiet {
    pub present: i64,
    pub elapsed: i64,
    pub expected: i64,
    pub last_time_ms: i64,
    pub done_ceiling: i64,
    ahead: BTreeMap<i64, Ahead>,
    next_order: u64,
}

/// A gap declared lost: `(first_serial, last_serial, next_sec, next_ms, next_serial)`.
pub type Lost = [i64; 5];

impl Quiet {
    /// The state as Python gives it; `ahead` as `(serial, sec, ms, seen_elapsed)`
    /// in its dict's order.
    pub fn new(
        present: i64,
        elapsed: i64,
        expected: i64,
        last_time_ms: i64,
        done_ceiling: i64,
        ahead: &[[i64; 4]],
    ) -> Quiet {
        let mut quiet = Quiet {
            present,
            elapsed,
            expected,
            last_time_ms,
            done_ceiling,
            ahead: BTreeMap::new(),
            next_order: 0,
        };
        for &[serial, sec, ms, seen] in ahead {
            quiet.insert_ahead(serial, sec, ms, seen);
        }
        quiet
    }

    fn insert_ahead(&mut self, serial: i64, sec: i64, ms: i64, seen: i64) {
        let order = self.next_order;
        self.next_order += 1;
        // A dict keeps a re-assigned key where it was.
        let slot = self.ahead.entry(serial).or_insert(Ahead {
            sec,
            ms,
            seen,
            order,
        });
        slot.sec = sec;
        slot.ms = ms;
        slot.seen = seen;
    }

    /// How many serials are held ahead.
    pub fn ahead_len(&self) -> usize {
        self.ahead.len()
    }

    /// The same serials ahead (kept from the last scan) with Python's clock, tracker
    /// and ceiling: a scan's state without the rows crossing again.
    pub fn with_scalars(
        mut self,
        present: i64,
        elapsed: i64,
        expected: i64,
        last_time_ms: i64,
        done_ceiling: i64,
    ) -> Quiet {
        self.present = present;
        self.elapsed = elapsed;
        self.expected = expected;
        self.last_time_ms = last_time_ms;
        self.done_ceiling = done_ceiling;
        self
    }

    /// Apply what Python changed in the serials ahead since the last scan: flat
    /// `(op, serial, sec, ms, seen)`, op 0 a dict assignment (in place if present,
    /// else last), 1 a deletion, 2 clearing them all. `None` for an unknown op.
    pub fn apply_ops(&mut self, ops: &[i64]) -> Option<()> {
        for op in ops.chunks_exact(5) {
            match op[0] {
                0 => self.insert_ahead(op[1], op[2], op[3], op[4]),
                1 => {
                    self.ahead.remove(&op[1]);
                }
                2 => self.ahead.clear(),
                _ => return None,
            }
        }
        Some(())
    }

    /// A mark of the serials ahead now, for [`Quiet::ahead_delta`] after a scan.
    pub fn ahead_mark(&self, keys: &mut Vec<i64>) -> u64 {
        keys.clear();
        keys.extend(self.ahead.keys().copied());
        self.next_order
    }

    /// What changed in the serials ahead since [`Quiet::ahead_mark`] gave `keys` and
    /// `order`: the serials gone (in any order) and the rows `(serial, sec, ms,
    /// seen_elapsed)` added, in insertion order. Applied to Python's dict (delete the
    /// gone, then insert the added), it gives the dict a scan of the same events
    /// leaves: a scan only removes serials and appends new ones.
    pub fn ahead_delta(&self, keys: &[i64], order: u64, gone: &mut Vec<i64>, added: &mut Vec<i64>) {
        gone.clear();
        added.clear();
        gone.extend(keys.iter().copied().filter(|k| !self.ahead.contains_key(k)));
        let mut rows: Vec<(u64, i64, &Ahead)> = self
            .ahead
            .iter()
            .filter(|(_, a)| a.order >= order)
            .map(|(&s, a)| (a.order, s, a))
            .collect();
        rows.sort_unstable_by_key(|row| row.0);
        for (_, serial, a) in rows {
            added.extend_from_slice(&[serial, a.sec, a.ms, a.seen]);
        }
    }

    /// The serials ahead as `(serial, sec, ms, seen_elapsed)`, in dict order.
    pub fn ahead_rows(&self, out: &mut Vec<i64>) {
        let mut rows: Vec<(u64, i64, &Ahead)> =
            self.ahead.iter().map(|(&s, a)| (a.order, s, a)).collect();
        rows.sort_unstable_by_key(|row| row.0);
        for (_, serial, a) in rows {
            out.extend_from_slice(&[serial, a.sec, a.ms, a.seen]);
        }
    }

    /// Whether an event with this id may be taken, and (if so) the elapsed time
    /// the clock would then show. `window` is the assembler's window.
    pub fn admits(&self, id: &EventId, window: i64) -> Option<i64> {
        if id.time_ms >= MAX_TIME_MS || id.time_ms < 0 {
            return None;
        }
        let (time, present, window) = (
            i128::from(id.time_ms),
            i128::from(self.present),
            i128::from(window),
        );
        if time < present - window || time > present + window {
            return None;
        }
        if id.serial < self.expected
            || id.serial <= self.done_ceiling
            || id.serial == i64::MAX
            || self.ahead.contains_key(&id.serial)
        {
            return None;
        }
        if id.time_ms > self.present {
            self.elapsed.checked_add(id.time_ms - self.present)
        } else {
            Some(self.elapsed)
        }
    }

    /// Take an event that [`Quiet::admits`] allowed: the clock ticks, the gap tracker
    /// observes its serial, and gaps that can no longer fill are appended to `lost`.
    pub fn take(&mut self, id: &EventId, elapsed: i64, window: i64, lost: &mut Vec<Lost>) {
        if id.time_ms > self.present {
            self.present = id.time_ms;
        }
        self.elapsed = elapsed;
        // _GapTracker.observe, serial >= expected.
        self.last_time_ms = self.last_time_ms.max(self.present);
        if id.serial == self.expected {
            self.expected += 1;
            self.advance();
        } else {
            self.insert_ahead(id.serial, id.sec, id.ms, elapsed);
        }
        self.declare(window, lost);
    }

    fn declare(&mut self, window: i64, lost: &mut Vec<Lost>) {
        let threshold = i128::from(self.elapsed) - i128::from(window);
        loop {
            let (first, ahead) = match self.ahead.iter().next() {
                Some((&first, &ahead)) => (first, ahead),
                None => return,
            };
            if self.ahead.len() <= MAX_AHEAD && i128::from(ahead.seen) >= threshold {
                return;
            }
            lost.push([self.expected, first - 1, ahead.sec, ahead.ms, first]);
            self.expected = first;
            self.advance();
        }
    }

    fn advance(&mut self) {
        while self.ahead.remove(&self.expected).is_some() {
            self.expected += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(time_ms: i64, serial: i64) -> EventId {
        EventId {
            sec: time_ms / 1000,
            ms: time_ms % 1000,
            serial,
            time_ms,
        }
    }

    fn quiet() -> Quiet {
        Quiet::new(10_000, 0, 100, 10_000, 99, &[])
    }

    fn take(q: &mut Quiet, time_ms: i64, serial: i64, lost: &mut Vec<Lost>) {
        let elapsed = q.admits(&id(time_ms, serial), 5000).expect("admitted");
        q.take(&id(time_ms, serial), elapsed, 5000, lost);
    }

    #[test]
    fn the_delta_is_what_went_and_what_came_in_order() {
        let mut q = Quiet::new(
            10_000,
            0,
            100,
            10_000,
            99,
            &[[105, 10, 0, 0], [103, 10, 0, 0]],
        );
        let mut keys = Vec::new();
        let order = q.ahead_mark(&mut keys);
        let mut lost = Vec::new();
        take(&mut q, 10_001, 110, &mut lost); // added
        take(&mut q, 10_002, 108, &mut lost); // added, before 110 in serial order
        take(&mut q, 10_003, 100, &mut lost); // fills nothing ahead
        take(&mut q, 10_004, 101, &mut lost);
        take(&mut q, 10_005, 102, &mut lost); // 103 goes
        take(&mut q, 10_006, 104, &mut lost); // 105 goes
        take(&mut q, 10_007, 107, &mut lost); // added
        take(&mut q, 10_008, 106, &mut lost); // 107 and 108 go again at once
        let (mut gone, mut added) = (Vec::new(), Vec::new());
        q.ahead_delta(&keys, order, &mut gone, &mut added);
        gone.sort_unstable();
        assert_eq!(gone, vec![103, 105]);
        assert_eq!(added, vec![110, 10, 1, 1]);
        let mut kept = q.clone().with_scalars(1, 2, 3, 4, 5);
        assert_eq!((kept.present, kept.expected, kept.ahead_len()), (1, 3, 1));
        // Python's changes: 130 set, 110 set again in place, 130 deleted and set again.
        let ops = [
            0, 130, 9, 0, 7, 0, 110, 9, 1, 8, 1, 130, 0, 0, 0, 0, 130, 9, 2, 9,
        ];
        kept.apply_ops(&ops).expect("known ops");
        let mut rows = Vec::new();
        kept.ahead_rows(&mut rows);
        assert_eq!(rows, vec![110, 9, 1, 8, 130, 9, 2, 9]);
        assert!(kept.apply_ops(&[3, 0, 0, 0, 0]).is_none());
        kept.apply_ops(&[2, 0, 0, 0, 0]).expect("known op");
        assert_eq!(kept.ahead_len(), 0);
    }

    #[test]
    fn plain_progress_ticks_and_counts() {
        let mut q = quiet();
        let mut lost = Vec::new();
        take(&mut q, 10_500, 100, &mut lost);
        assert_eq!(
            (q.present, q.elapsed, q.expected, q.last_time_ms),
            (10_500, 500, 101, 10_500)
        );
        take(&mut q, 10_200, 101, &mut lost);
        assert_eq!((q.present, q.elapsed, q.expected), (10_500, 500, 102));
        assert!(lost.is_empty());
    }

    #[test]
    fn refuses_what_is_not_plain() {
        let q = quiet();
        assert!(q.admits(&id(15_001, 100), 5000).is_none()); // a window ahead
        assert!(q.admits(&id(4_999, 100), 5000).is_none()); // a window behind
        assert!(q.admits(&id(15_000, 100), 5000).is_some());
        assert!(q.admits(&id(10_000, 99), 5000).is_none()); // behind expected
        let ceiling = Quiet::new(10_000, 0, 100, 0, 150, &[]);
        assert!(ceiling.admits(&id(10_000, 150), 5000).is_none()); // may be done
        assert!(ceiling.admits(&id(10_000, 151), 5000).is_some());
        let ahead = Quiet::new(10_000, 0, 100, 0, -1, &[[105, 10, 0, 0]]);
        assert!(ahead.admits(&id(10_000, 105), 5000).is_none());
        let future = Quiet::new(MAX_TIME_MS - 1, 0, 1, 0, -1, &[]);
        assert!(future.admits(&id(MAX_TIME_MS, 1), 5000).is_none());
        let full = Quiet::new(10_000, i64::MAX, 1, 0, -1, &[]);
        assert!(full.admits(&id(10_001, 1), 5000).is_none()); // elapsed would overflow
    }

    #[test]
    fn gaps_wait_a_window_then_are_lost() {
        let mut q = quiet();
        let mut lost = Vec::new();
        take(&mut q, 10_000, 101, &mut lost); // 100 missing
        take(&mut q, 12_000, 103, &mut lost); // 102 missing
        assert!(lost.is_empty());
        assert_eq!(q.expected, 100);
        let mut rows = Vec::new();
        q.ahead_rows(&mut rows);
        assert_eq!(rows, vec![101, 10, 0, 0, 103, 12, 0, 2000]);
        take(&mut q, 15_001, 104, &mut lost); // 101 seen more than a window ago
        assert_eq!(lost, vec![[100, 100, 10, 0, 101]]);
        assert_eq!((q.expected, q.ahead_len()), (102, 2));
        take(&mut q, 17_001, 106, &mut lost);
        assert_eq!(lost[1], [102, 102, 12, 0, 103]);
        assert_eq!((q.expected, q.ahead_len()), (105, 1));
    }

    #[test]
    fn more_than_max_ahead_declares_at_once() {
        let mut q = quiet();
        let mut lost = Vec::new();
        for k in 0..=MAX_AHEAD as i64 {
            take(&mut q, 10_000, 102 + 2 * k, &mut lost);
        }
        assert_eq!(lost, vec![[100, 101, 10, 0, 102]]);
        assert_eq!(q.ahead_len(), MAX_AHEAD);
        assert_eq!(q.expected, 103);
    }
}
