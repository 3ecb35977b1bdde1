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
    log: AheadLog,
}

/// What happened to the serials ahead since [`Quiet::ahead_mark`], noted as it
/// happens: a scan's delta for Python is then as long as what changed, not as the
/// serials held (up to [`MAX_AHEAD`] after a gap, read again at every call).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct AheadLog {
    /// Whether a mark was made (until then nothing is noted).
    on: bool,
    /// The insertion order at the mark: rows of a lower order were held then.
    mark: u64,
    /// Serials held at the mark that went since.
    gone: Vec<i64>,
    /// Serials inserted since the mark, with their order, in that order.
    added: Vec<(i64, u64)>,
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
            log: AheadLog::default(),
        };
        for &[serial, sec, ms, seen] in ahead {
            quiet.insert_ahead(serial, sec, ms, seen);
        }
        quiet
    }

    fn insert_ahead(&mut self, serial: i64, sec: i64, ms: i64, seen: i64) {
        use std::collections::btree_map::Entry as Slot;
        let order = self.next_order;
        self.next_order += 1;
        match self.ahead.entry(serial) {
            // A dict keeps a re-assigned key where it was. (A scan never re-assigns
            // one: it takes no serial held ahead; Python's ops come before the mark.)
            Slot::Occupied(mut held) => {
                let held = held.get_mut();
                held.sec = sec;
                held.ms = ms;
                held.seen = seen;
            }
            Slot::Vacant(vacant) => {
                vacant.insert(Ahead {
                    sec,
                    ms,
                    seen,
                    order,
                });
                if self.log.on {
                    self.log.added.push((serial, order));
                }
            }
        }
    }

    /// Forget `serial` ahead; whether it was held.
    fn remove_ahead(&mut self, serial: i64) -> bool {
        match self.ahead.remove(&serial) {
            Some(gone) => {
                if self.log.on && gone.order < self.log.mark {
                    self.log.gone.push(serial);
                }
                true
            }
            None => false,
        }
    }

    /// An upper bound of `expected` after [`Quiet::take`] of `serial`: a take moves
    /// `expected` only to `serial + 1` or just past a serial held ahead.
    pub fn expected_bound(&self, serial: i64) -> i64 {
        let top = self.ahead.keys().next_back().copied().unwrap_or(i64::MIN);
        self.expected.max(serial).max(top).saturating_add(1)
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
                    self.remove_ahead(op[1]);
                }
                2 => {
                    let serials: Vec<i64> = self.ahead.keys().copied().collect();
                    for serial in serials {
                        self.remove_ahead(serial);
                    }
                }
                _ => return None,
            }
        }
        Some(())
    }

    /// Mark the serials ahead now, for [`Quiet::ahead_delta`] after a scan.
    pub fn ahead_mark(&mut self) {
        self.log.on = true;
        self.log.mark = self.next_order;
        self.log.gone.clear();
        self.log.added.clear();
    }

    /// What changed in the serials ahead since [`Quiet::ahead_mark`]: the serials gone
    /// (held at the mark, in the order they went) and the rows `(serial, sec, ms,
    /// seen_elapsed)` added and still held, in insertion order. Applied to Python's
    /// dict (delete the gone, then insert the added), it gives the dict a scan of the
    /// same events leaves: a scan only removes serials and appends new ones. As long
    /// as the change, not as the serials held (noted as they changed).
    pub fn ahead_delta(&self, gone: &mut Vec<i64>, added: &mut Vec<i64>) {
        gone.clear();
        added.clear();
        gone.extend_from_slice(&self.log.gone);
        for &(serial, order) in &self.log.added {
            if let Some(a) = self.ahead.get(&serial) {
                // Inserted again later (gone in between): that insertion's row counts.
                if a.order == order {
                    added.extend_from_slice(&[serial, a.sec, a.ms, a.seen]);
                }
            }
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
        if id.serial < self.expected
            || id.serial <= self.done_ceiling
            || id.serial == i64::MAX
            || self.ahead.contains_key(&id.serial)
        {
            return None;
        }
        admitted_at(id, self.present, self.elapsed, window)
    }

    /// [`Quiet::admits`] of `b` in the state [`Quiet::take`] of `a` (admitted, at
    /// `elapsed_a`) would leave, without taking `a`: `Some` only when `b` is surely
    /// admitted, i.e. its serial is past every serial the take can leave expected or
    /// held ahead ([`Quiet::expected_bound`]). `None`: not admitted, or not sure (then
    /// take `a` in a copy and ask). Spares the copy of the serials ahead for nearly
    /// every interleaved pair.
    pub fn admits_after(
        &self,
        a: &EventId,
        elapsed_a: i64,
        b: &EventId,
        window: i64,
    ) -> Option<i64> {
        if b.serial < self.expected_bound(a.serial)
            || b.serial <= self.done_ceiling
            || b.serial == i64::MAX
        {
            return None;
        }
        admitted_at(b, self.present.max(a.time_ms), elapsed_a, window)
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
        while self.remove_ahead(self.expected) {
            self.expected += 1;
        }
    }
}

/// The changes to the serials ahead that Python has not read yet, merged scan after
/// scan (`kw_scan` with `SCAN_AHEAD_HOLD`) until it asks for them (`kw_ahead_pull`):
/// applied to its dict as of the last pull (delete `gone`, then append the live
/// `added` rows in order), they give the dict the scans since leave. A serial added
/// and gone again in between never crosses, so after a gap, where nearly every event
/// taken waits ahead for a while, Python's dict changes only when Python reads it.
/// Kept outside [`Quiet`], merged only once a scan is over: a failed scan leaves the
/// changes of the scans before it.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    /// Serials held at the last pull that went since (each once).
    gone: Vec<i64>,
    /// `(serial, sec, ms, seen)` added since the last pull, in insertion order; a row
    /// is live while `live` maps its serial to its index.
    added: Vec<[i64; 4]>,
    live: crate::fasthash::IntMap<i64, usize>,
}

impl Pending {
    /// Whether there is nothing to tell Python.
    pub fn is_empty(&self) -> bool {
        self.gone.is_empty() && self.live.is_empty()
    }

    /// Add one scan's delta ([`Quiet::ahead_delta`]: the serials gone, then the rows
    /// added in insertion order).
    pub fn merge(&mut self, gone: &[i64], added: &[i64]) {
        for serial in gone {
            // Added since the last pull: Python never saw it, so it need not go.
            if self.live.remove(serial).is_none() {
                self.gone.push(*serial);
            }
        }
        for row in added.chunks_exact(4) {
            self.live.insert(row[0], self.added.len());
            self.added.push([row[0], row[1], row[2], row[3]]);
        }
        // Rows of serials gone again: dropped once they are most of the rows.
        let dead = self.added.len() - self.live.len();
        if dead > 4 * MAX_AHEAD && dead > self.live.len() {
            let live = &self.live;
            let mut index = 0;
            self.added.retain(|row| {
                let keep = live.get(&row[0]) == Some(&index);
                index += 1;
                keep
            });
            self.live.clear();
            for (i, row) in self.added.iter().enumerate() {
                self.live.insert(row[0], i);
            }
        }
    }

    /// Hand the changes over (`gone` serials; live `added` rows flat) and forget them.
    pub fn take(&mut self, gone: &mut Vec<i64>, added: &mut Vec<i64>) {
        gone.clear();
        added.clear();
        gone.append(&mut self.gone);
        for (i, row) in self.added.iter().enumerate() {
            if self.live.get(&row[0]) == Some(&i) {
                added.extend_from_slice(row);
            }
        }
        self.added.clear();
        self.live.clear();
    }

    /// Forget the changes (Python sent every serial ahead again).
    pub fn clear(&mut self) {
        self.gone.clear();
        self.added.clear();
        self.live.clear();
    }
}

/// The time part of [`Quiet::admits`]: an event dated within one window of `present`
/// (and before year 10000) is plain; the elapsed time the clock would then show.
fn admitted_at(id: &EventId, present: i64, elapsed: i64, window: i64) -> Option<i64> {
    if id.time_ms >= MAX_TIME_MS || id.time_ms < 0 {
        return None;
    }
    let (time, now, window) = (
        i128::from(id.time_ms),
        i128::from(present),
        i128::from(window),
    );
    if time < now - window || time > now + window {
        return None;
    }
    if id.time_ms > present {
        elapsed.checked_add(id.time_ms - present)
    } else {
        Some(elapsed)
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
    fn expected_bound_holds_every_take() {
        let far_ahead: Vec<[i64; 4]> = (101..1_300).map(|s| [s, 10, 0, 0]).collect();
        let states = [
            Quiet::new(10_000, 0, 100, 10_000, 99, &[]),
            Quiet::new(
                10_000,
                0,
                100,
                10_000,
                99,
                &[[105, 10, 0, 0], [103, 10, 0, 0]],
            ),
            Quiet::new(10_000, 0, 100, 10_000, 99, &[[5_000, 10, 0, 0]]),
            Quiet::new(10_000, 0, 100, 10_000, 99, &far_ahead),
            // Seen long ago: the take declares the gap and jumps to the first ahead.
            Quiet::new(10_000, 90_000, 100, 10_000, 99, &[[4_000, 10, 0, 0]]),
        ];
        for state in states.iter() {
            for &serial in [100, 101, 102, 104, 106, 2_000, 9_000].iter() {
                let event = id(10_001, serial);
                let elapsed = match state.admits(&event, 5000) {
                    Some(elapsed) => elapsed,
                    None => continue,
                };
                let bound = state.expected_bound(serial);
                let mut q = state.clone();
                q.take(&event, elapsed, 5000, &mut Vec::new());
                assert!(
                    q.expected <= bound,
                    "serial {}: {} > {}",
                    serial,
                    q.expected,
                    bound
                );
            }
        }
        // The run of 1,199 serials ahead: taking 100 moves `expected` past 1,100.
        assert!(states[3].expected_bound(100) > 100 + 1_000);
        assert_eq!(quiet().expected_bound(100), 101);
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
        q.ahead_mark();
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
        q.ahead_delta(&mut gone, &mut added);
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

    /// A little xorshift, for the state walks below (no crates).
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// Serials in a walk of scans over gap-heavy logs: mostly the next one, bursts
    /// of lost ones, late ones filling a gap, times that jump a window on.
    fn walk(seed: u64, mut each_scan: impl FnMut(&mut Quiet, &[(EventId, i64)])) {
        let mut next = rng(seed);
        let mut q = Quiet::new(10_000, 0, 100, 10_000, 99, &[]);
        let (mut serial, mut time) = (100i64, 10_000i64);
        let mut skipped: Vec<i64> = Vec::new();
        for _ in 0..300 {
            q.ahead_mark();
            let mut taken = Vec::new();
            for _ in 0..(next() % 40) {
                let roll = next() % 100;
                let s = if roll < 8 {
                    let burst = (next() % 60) as i64;
                    skipped.extend(serial..serial + burst);
                    serial += burst;
                    serial
                } else if roll < 14 && !skipped.is_empty() {
                    skipped.swap_remove((next() as usize) % skipped.len())
                } else {
                    serial
                };
                if s == serial {
                    serial += 1;
                }
                time += if next() % 50 == 0 {
                    4_000
                } else {
                    (next() % 40) as i64
                };
                let event = id(time, s);
                if let Some(elapsed) = q.admits(&event, 5000) {
                    q.take(&event, elapsed, 5000, &mut Vec::new());
                    taken.push((event, elapsed));
                }
            }
            each_scan(&mut q, &taken);
        }
    }

    #[test]
    fn the_noted_delta_turns_the_marked_rows_into_the_rows_now() {
        for seed in 1..40u64 {
            let mut rows_at_mark: Vec<i64> = Vec::new();
            let mut changed = 0;
            walk(seed, |q, _| {
                // Python's dict, as the delta is applied to it: delete, then append.
                let (mut gone, mut added) = (Vec::new(), Vec::new());
                q.ahead_delta(&mut gone, &mut added);
                let mut dict: Vec<[i64; 4]> = rows_at_mark
                    .chunks(4)
                    .map(|r| [r[0], r[1], r[2], r[3]])
                    .filter(|r| !gone.contains(&r[0]))
                    .collect();
                assert_eq!(
                    rows_at_mark.len() / 4 - dict.len(),
                    gone.len(),
                    "only held serials go"
                );
                dict.extend(added.chunks(4).map(|r| [r[0], r[1], r[2], r[3]]));
                let mut now = Vec::new();
                q.ahead_rows(&mut now);
                assert_eq!(dict.concat(), now, "seed {}", seed);
                changed += gone.len() + added.len();
                rows_at_mark = now;
            });
            assert!(changed > 0, "seed {}: the walk changed nothing ahead", seed);
        }
    }

    #[test]
    fn pending_changes_merged_over_scans_give_the_rows_at_the_pull() {
        let mut saved = 0;
        for seed in 1..40u64 {
            let mut next = rng(seed ^ 0x5bd1);
            let mut pulled: Vec<i64> = Vec::new();
            let mut pending = Pending::default();
            let (mut crossed, mut taken) = (0usize, 0usize);
            walk(seed, |q, _| {
                let (mut gone, mut added) = (Vec::new(), Vec::new());
                q.ahead_delta(&mut gone, &mut added);
                taken += gone.len() + added.len() / 4;
                pending.merge(&gone, &added);
                if next() % 6 == 0 {
                    // Python reads its dict: the pulled changes make it the rows now.
                    pending.take(&mut gone, &mut added);
                    crossed += gone.len() + added.len() / 4;
                    let mut dict: Vec<i64> = pulled
                        .chunks(4)
                        .filter(|r| !gone.contains(&r[0]))
                        .flatten()
                        .copied()
                        .collect();
                    assert_eq!(pulled.len() - dict.len(), 4 * gone.len(), "seed {}", seed);
                    dict.extend_from_slice(&added);
                    let mut now = Vec::new();
                    q.ahead_rows(&mut now);
                    assert_eq!(dict, now, "seed {}", seed);
                    assert!(pending.is_empty());
                    pulled = now;
                }
            });
            assert!(
                crossed <= taken,
                "seed {}: {} of {} crossed",
                seed,
                crossed,
                taken
            );
            saved += taken - crossed;
        }
        assert!(saved > 0, "no change was spared a crossing");
    }

    #[test]
    fn pending_rows_of_serials_gone_again_are_dropped() {
        let mut pending = Pending::default();
        for round in 0..20i64 {
            let rows: Vec<i64> = (0..1_000)
                .flat_map(|k| [round * 1_000 + k, 1, 2, 3])
                .collect();
            let gone: Vec<i64> = (0..1_000).map(|k| (round - 1) * 1_000 + k).collect();
            pending.merge(if round == 0 { &[] } else { &gone }, &rows);
            assert!(
                pending.added.len() <= 6 * MAX_AHEAD + 2_000,
                "{}",
                pending.added.len()
            );
        }
        let (mut gone, mut added) = (Vec::new(), Vec::new());
        pending.take(&mut gone, &mut added);
        assert!(gone.is_empty());
        assert_eq!(added.len(), 4_000);
        assert_eq!(added[0], 19_000);
    }

    #[test]
    fn admits_after_is_sure_or_silent() {
        let mut sure = 0;
        for seed in 1..40u64 {
            let mut next = rng(seed ^ 0x9e37);
            walk(seed, |q, _| {
                for _ in 0..20 {
                    let base = q.expected + (next() % 8) as i64 - 2;
                    let a = id(q.present + (next() % 30) as i64 - 10, base);
                    let b = id(
                        a.time_ms + (next() % 30) as i64 - 10,
                        base + 1 + (next() % 3) as i64 - 1,
                    );
                    let elapsed_a = match q.admits(&a, 5000) {
                        Some(e) => e,
                        None => continue,
                    };
                    let mut trial = q.clone();
                    trial.take(&a, elapsed_a, 5000, &mut Vec::new());
                    let truth = trial.admits(&b, 5000);
                    if let Some(e) = q.admits_after(&a, elapsed_a, &b, 5000) {
                        assert_eq!(truth, Some(e), "seed {}: {:?} then {:?}", seed, a, b);
                        sure += 1;
                    }
                }
            });
        }
        // The common pair (B the serial after A) needs no copy.
        assert!(sure > 1_000, "only {} pairs answered without a copy", sure);
        let q = Quiet::new(10_000, 0, 100, 10_000, 99, &[[103, 10, 0, 0]]);
        assert_eq!(
            q.admits_after(&id(10_010, 104), 10, &id(10_020, 105), 5000),
            Some(20)
        );
        assert_eq!(
            q.admits_after(&id(10_010, 100), 10, &id(10_020, 101), 5000),
            None
        );
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
