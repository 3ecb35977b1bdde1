//! The process table, with exactly the rules of `kexecwatch/core/process/table.py`
//! (`ProcessTable`), which states them once; this is their native equal:
//!
//! - **Order**: entries are kept least recently used first. Storing an entry for a
//!   pid moves that pid to the end, and so does naming a pid as the parent (`ppid`)
//!   of a stored entry: a shell still spawning commands stays.
//! - **History**: a pid's new entry keeps its previous two as history (`_store`),
//!   so a slightly late child still finds the parent it had; older ones are cut.
//! - **Bounds**: past `max_entries` entries, or past `max_args_bytes` of argv
//!   (`_size()`, history included) while more than one entry is held, the least
//!   recently used entries go, whole chains at a time.
//! - **Lateness** (`_entry_at`): an event at `at_ms` walks back over entries dated
//!   later than it, unless dated more than `max_lateness_ms` later (a clock that
//!   stepped back); no lateness means any later entry is walked over.
//! - **Unreadable**: pids `/proc` could not give are remembered first in, first out,
//!   at most 4096.
//!
//! Safe Rust: a `HashMap` from pid to a slot (hashed by fasthash.rs), the slots in a
//! `Vec`, freed slots reused. The LRU list's links live apart from the slots, in a
//! `Vec` of 16-byte pairs: moving a pid to the end touches its two neighbours too, and
//! in a full table (65,536 slots of a cache line each, their entries elsewhere on the
//! heap) those would be three cold lines; the links of every slot fit in 1 MiB, which
//! stays in the cache while the log streams through.

use std::collections::VecDeque;

use crate::entry::Entry;
use crate::fasthash::{IntMap, IntSet};

/// How many unreadable pids are remembered (proctable.py's `remember_live`).
pub const UNREADABLE_LIMIT: usize = 4096;
/// `max_lateness_ms` of `None`: beyond any time.
pub const NO_LATENESS: i128 = 1 << 63;

const NIL: usize = usize::MAX;

/// pid → slot index. Pids are 128-bit (a fork child's is the exit value), but nearly
/// all fit 64 bits: those live in a map of 16-byte buckets, half the size of an i128
/// key's, which keeps more of a large table in cache.
#[derive(Default)]
struct PidMap {
    narrow: IntMap<u64, usize>,
    wide: IntMap<i128, usize>,
}

impl PidMap {
    fn len(&self) -> usize {
        self.narrow.len() + self.wide.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, pid: i128) -> Option<usize> {
        match u64::try_from(pid) {
            Ok(key) => self.narrow.get(&key).copied(),
            Err(_) => self.wide.get(&pid).copied(),
        }
    }

    /// The slot of `pid`, or `fresh` newly given to it: `(slot, whether new)`.
    fn get_or_insert(&mut self, pid: i128, fresh: usize) -> (usize, bool) {
        use std::collections::hash_map::Entry as Slot;
        fn pick<K>(entry: Slot<'_, K, usize>, fresh: usize) -> (usize, bool) {
            match entry {
                Slot::Occupied(known) => (*known.get(), false),
                Slot::Vacant(vacant) => (*vacant.insert(fresh), true),
            }
        }
        match u64::try_from(pid) {
            Ok(key) => pick(self.narrow.entry(key), fresh),
            Err(_) => pick(self.wide.entry(pid), fresh),
        }
    }

    fn remove(&mut self, pid: i128) {
        match u64::try_from(pid) {
            Ok(key) => self.narrow.remove(&key),
            Err(_) => self.wide.remove(&pid),
        };
    }
}

/// A pid's entries; one cache line.
#[repr(align(64))]
struct Slot {
    pid: i128,
    current: Entry,
    previous: Option<Entry>,
    before: Option<Entry>,
}

/// A slot's place in the LRU list (slot indexes, [`NIL`] at either end).
#[derive(Clone, Copy)]
struct Link {
    older: usize,
    newer: usize,
}

const UNLINKED: Link = Link {
    older: NIL,
    newer: NIL,
};

impl Slot {
    fn chain_size(&self) -> u64 {
        self.current.args_size()
            + self.previous.as_ref().map_or(0, |e| e.args_size())
            + self.before.as_ref().map_or(0, |e| e.args_size())
    }
}

/// The bounded pid → latest-exec table (see the module documentation).
pub struct Table {
    map: PidMap,
    slots: Vec<Slot>,
    links: Vec<Link>,
    free: Vec<usize>,
    oldest: usize,
    newest: usize,
    args_bytes: u64,
    max_entries: u64,
    max_args_bytes: u64,
    lateness: i128,
    unreadable: IntSet<i128>,
    unreadable_order: VecDeque<i128>,
}

impl Table {
    /// An empty table with proctable.py's limits (`lateness`: [`NO_LATENESS`] for none).
    pub fn new(max_entries: u64, max_args_bytes: u64, lateness: i128) -> Table {
        Table {
            map: PidMap::default(),
            slots: Vec::new(),
            links: Vec::new(),
            free: Vec::new(),
            oldest: NIL,
            newest: NIL,
            args_bytes: 0,
            max_entries,
            max_args_bytes,
            lateness,
            unreadable: IntSet::default(),
            unreadable_order: VecDeque::new(),
        }
    }

    /// How many pids have an entry.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no pid has an entry.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The argv bytes held, history included.
    pub fn args_bytes(&self) -> u64 {
        self.args_bytes
    }

    /// Whether `pid` has an entry (no time walk).
    pub fn contains(&self, pid: i128) -> bool {
        self.map.get(pid).is_some()
    }

    /// The latest entry of `pid` (`entries.get(pid)`).
    pub fn latest(&self, pid: i128) -> Option<&Entry> {
        self.map.get(pid).map(|i| &self.slots[i].current)
    }

    /// `_entry_at`: the latest entry of `pid` from before `at_ms` (the lateness walk).
    pub fn entry_at(&self, pid: i128, at_ms: i128) -> Option<&Entry> {
        let slot = &self.slots[self.map.get(pid)?];
        let limit = at_ms.saturating_add(self.lateness);
        let chain = [
            Some(&slot.current),
            slot.previous.as_ref(),
            slot.before.as_ref(),
        ];
        for entry in chain.iter() {
            let entry = (*entry)?;
            let since = entry.since_ms();
            if !(at_ms < since && since <= limit) {
                return Some(entry);
            }
        }
        None
    }

    /// `_store`: the new latest entry of its pid (history, LRU order, eviction).
    pub fn store(&mut self, entry: Entry) {
        if let Some(parent) = entry.ppid() {
            if let Some(i) = self.map.get(parent) {
                self.touch(i);
            }
        }
        let pid = entry.pid();
        let mut added = i128::from(entry.args_size());
        let free = self.free.last().copied().unwrap_or(self.slots.len());
        let (i, fresh) = self.map.get_or_insert(pid, free);
        if fresh {
            let slot = Slot {
                pid,
                current: entry,
                previous: None,
                before: None,
            };
            if i == self.slots.len() {
                self.slots.push(slot);
                self.links.push(UNLINKED);
            } else {
                self.free.pop();
                self.slots[i] = slot;
            }
            self.link_newest(i);
        } else {
            let slot = &mut self.slots[i];
            if let Some(cut) = slot.before.take() {
                added -= i128::from(cut.args_size());
            }
            slot.before = slot.previous.take();
            let old = std::mem::replace(&mut slot.current, entry);
            slot.previous = Some(old);
            self.touch(i);
        }
        let total = i128::from(self.args_bytes) + added;
        self.args_bytes = u64::try_from(total.max(0)).unwrap_or(u64::MAX);
        while self.map.len() as u64 > self.max_entries
            || (self.args_bytes > self.max_args_bytes && self.map.len() > 1)
        {
            self.evict_oldest();
        }
    }

    /// The `limit` most recently used entries, least recent first.
    pub fn rows(&self, limit: usize) -> Vec<&Entry> {
        let mut rows = Vec::with_capacity(limit.min(self.map.len()));
        let mut i = self.newest;
        while i != NIL && rows.len() < limit {
            rows.push(&self.slots[i].current);
            i = self.links[i].older;
        }
        rows.reverse();
        rows
    }

    /// Remember that `/proc` could not give `pid` (first in, first out).
    pub fn mark_unreadable(&mut self, pid: i128) {
        if self.unreadable.insert(pid) {
            self.unreadable_order.push_back(pid);
            if self.unreadable_order.len() > UNREADABLE_LIMIT {
                if let Some(gone) = self.unreadable_order.pop_front() {
                    self.unreadable.remove(&gone);
                }
            }
        }
    }

    /// Whether `pid` is remembered as unreadable.
    pub fn is_unreadable(&self, pid: i128) -> bool {
        self.unreadable.contains(&pid)
    }

    fn unlink(&mut self, i: usize) {
        let Link { older, newer } = self.links[i];
        if older == NIL {
            self.oldest = newer;
        } else {
            self.links[older].newer = newer;
        }
        if newer == NIL {
            self.newest = older;
        } else {
            self.links[newer].older = older;
        }
    }

    fn link_newest(&mut self, i: usize) {
        self.links[i] = Link {
            older: self.newest,
            newer: NIL,
        };
        if self.newest == NIL {
            self.oldest = i;
        } else {
            let newest = self.newest;
            self.links[newest].newer = i;
        }
        self.newest = i;
    }

    fn touch(&mut self, i: usize) {
        if self.newest != i {
            self.unlink(i);
            self.link_newest(i);
        }
    }

    fn evict_oldest(&mut self) {
        let i = self.oldest;
        if i == NIL {
            return;
        }
        self.unlink(i);
        let size = self.slots[i].chain_size();
        self.args_bytes = self.args_bytes.saturating_sub(size);
        let slot = &mut self.slots[i];
        self.map.remove(slot.pid);
        slot.current = Entry::empty();
        slot.previous = None;
        slot.before = None;
        self.free.push(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::ArgsIn;

    fn exec(pid: i128, ppid: i128, since: i128, args: &[u8]) -> Entry {
        Entry::new(
            pid,
            Some(ppid),
            since,
            Some((b"c", false)),
            None,
            if args.is_empty() {
                ArgsIn::Unknown
            } else {
                ArgsIn::Raw(args)
            },
            None,
            None,
        )
    }

    fn pids(table: &Table) -> Vec<i128> {
        table.rows(usize::MAX).iter().map(|e| e.pid()).collect()
    }

    #[test]
    fn storing_moves_the_pid_and_its_parent_to_the_end() {
        let mut table = Table::new(100, 1 << 20, NO_LATENESS);
        for pid in 1..=4 {
            table.store(exec(pid, 0, 0, b""));
        }
        table.store(exec(9, 2, 0, b""));
        assert_eq!(pids(&table), vec![1, 3, 4, 2, 9]);
        table.store(exec(3, 0, 1, b""));
        assert_eq!(pids(&table), vec![1, 4, 2, 9, 3]);
        assert_eq!(
            table.rows(2).iter().map(|e| e.pid()).collect::<Vec<_>>(),
            vec![9, 3]
        );
    }

    #[test]
    fn history_keeps_two_previous_entries_and_counts_their_bytes() {
        let mut table = Table::new(100, 1 << 20, NO_LATENESS);
        table.store(exec(5, 1, 100, b"aaaa"));
        table.store(exec(5, 1, 200, b"bb"));
        table.store(exec(5, 1, 300, b"c"));
        assert_eq!(table.args_bytes(), 7);
        table.store(exec(5, 1, 400, b"dddddd"));
        // The first (4 bytes) is cut: 2 + 1 + 6.
        assert_eq!(table.args_bytes(), 9);
        assert_eq!(table.len(), 1);
        assert_eq!(table.entry_at(5, 250).map(|e| e.since_ms()), Some(200));
        assert_eq!(table.entry_at(5, 150).map(|e| e.since_ms()), None);
        assert_eq!(table.entry_at(5, 400).map(|e| e.since_ms()), Some(400));
        assert_eq!(table.latest(5).map(|e| e.since_ms()), Some(400));
    }

    #[test]
    fn lateness_bounds_the_walk_back() {
        let mut table = Table::new(100, 1 << 20, 1000);
        table.store(exec(5, 1, 100, b""));
        table.store(exec(5, 1, 5000, b""));
        // 4900 later than the event: more than the lateness, a clock step: used.
        assert_eq!(table.entry_at(5, 100).map(|e| e.since_ms()), Some(5000));
        assert_eq!(table.entry_at(5, 4500).map(|e| e.since_ms()), Some(100));
        let unbounded = {
            let mut t = Table::new(100, 1 << 20, NO_LATENESS);
            t.store(exec(5, 1, 100, b""));
            t.store(exec(5, 1, 5000, b""));
            t
        };
        assert_eq!(unbounded.entry_at(5, 100).map(|e| e.since_ms()), Some(100));
        assert!(table.entry_at(6, 0).is_none());
    }

    #[test]
    fn max_entries_evicts_the_least_recently_used() {
        let mut table = Table::new(3, 1 << 20, NO_LATENESS);
        for pid in 1..=3 {
            table.store(exec(pid, 0, 0, b"xx"));
        }
        table.store(exec(4, 1, 0, b"yyy"));
        assert_eq!(pids(&table), vec![3, 1, 4]);
        assert!(!table.contains(2));
        assert_eq!(table.args_bytes(), 7);
        // Freed slots are reused: the table does not grow past the limit.
        for pid in 10..1000 {
            table.store(exec(pid, 0, 0, b""));
        }
        assert!(table.slots.len() <= 4);
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn max_args_bytes_evicts_whole_chains_but_keeps_one_entry() {
        let mut table = Table::new(100, 10, NO_LATENESS);
        table.store(exec(1, 0, 0, b"aaaa"));
        table.store(exec(1, 0, 1, b"aaaa"));
        table.store(exec(2, 0, 0, b"bbb"));
        assert_eq!(pids(&table), vec![2]);
        assert_eq!(table.args_bytes(), 3);
        table.store(exec(3, 0, 0, b"cccccccccccccccc"));
        assert_eq!(pids(&table), vec![3]);
        assert_eq!(table.args_bytes(), 16);
    }

    #[test]
    fn pids_beyond_64_bits_and_below_zero_are_kept_alike() {
        let mut table = Table::new(3, 1 << 20, NO_LATENESS);
        for pid in [1i128 << 100, -5, 7] {
            table.store(exec(pid, 0, 0, b"a"));
        }
        assert!(table.contains(1 << 100) && table.contains(-5) && table.contains(7));
        table.store(exec(1 << 100, 7, 1, b""));
        assert_eq!(pids(&table), vec![-5, 7, 1 << 100]);
        table.store(exec(8, 0, 0, b""));
        assert!(!table.contains(-5));
        assert_eq!(table.len(), 3);
        table.store(exec(9, 0, 0, b""));
        table.store(exec(10, 0, 0, b""));
        assert!(!table.contains(1 << 100));
        assert_eq!(table.args_bytes(), 0);
    }

    #[test]
    fn zero_max_entries_keeps_nothing() {
        let mut table = Table::new(0, 10, NO_LATENESS);
        table.store(exec(1, 0, 0, b"a"));
        assert!(table.is_empty());
        assert_eq!(table.args_bytes(), 0);
    }

    /// The rules of the module documentation, written the plainest way: a list in LRU
    /// order, each pid with its chain of (since, args size), newest first.
    struct Model {
        rows: Vec<(i128, Vec<(i128, u64)>)>,
        max_entries: usize,
        max_args_bytes: u64,
    }

    impl Model {
        fn bytes(&self) -> u64 {
            self.rows
                .iter()
                .flat_map(|(_, chain)| chain.iter().map(|(_, size)| *size))
                .sum()
        }

        fn take(&mut self, pid: i128) -> Option<(i128, Vec<(i128, u64)>)> {
            let at = self.rows.iter().position(|(p, _)| *p == pid)?;
            Some(self.rows.remove(at))
        }

        fn store(&mut self, pid: i128, ppid: i128, since: i128, size: u64) {
            if let Some(parent) = self.take(ppid) {
                self.rows.push(parent);
            }
            let mut chain = self.take(pid).map_or(Vec::new(), |(_, chain)| chain);
            chain.insert(0, (since, size));
            chain.truncate(3);
            self.rows.push((pid, chain));
            while self.rows.len() > self.max_entries
                || (self.bytes() > self.max_args_bytes && self.rows.len() > 1)
            {
                self.rows.remove(0);
            }
        }
    }

    #[test]
    fn churn_keeps_the_order_history_and_bounds_of_the_plain_model() {
        // A small table under heavy churn (reused pids, parents named, evictions by
        // count and by bytes), against the model after every store.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |bound: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % bound
        };
        for (max_entries, max_args_bytes) in [(8u64, 1u64 << 20), (40, 60), (1, 5), (16, 16)] {
            let mut table = Table::new(max_entries, max_args_bytes, NO_LATENESS);
            let mut model = Model {
                rows: Vec::new(),
                max_entries: max_entries as usize,
                max_args_bytes,
            };
            for step in 0..3000i128 {
                let pid = i128::from(next(60) as u8);
                let ppid = i128::from(next(60) as u8);
                let args = vec![b'a'; next(6) as usize];
                table.store(exec(pid, ppid, step, &args));
                model.store(pid, ppid, step, args.len() as u64);
                let order: Vec<i128> = model.rows.iter().map(|(p, _)| *p).collect();
                assert_eq!(pids(&table), order, "step {}", step);
                assert_eq!(table.args_bytes(), model.bytes(), "step {}", step);
                for (pid, chain) in &model.rows {
                    for (since, _) in chain {
                        let found = table.entry_at(*pid, *since).map(|e| e.since_ms());
                        assert_eq!(found, Some(*since), "pid {} at {}", pid, since);
                    }
                }
            }
            assert!(table.slots.len() as u64 <= max_entries + 1);
        }
    }

    #[test]
    fn unreadable_is_a_fifo_of_4096() {
        let mut table = Table::new(10, 10, NO_LATENESS);
        for pid in 0..=4096 {
            table.mark_unreadable(pid);
        }
        table.mark_unreadable(5); // already there: does not move
        assert!(!table.is_unreadable(0));
        assert!(table.is_unreadable(1));
        table.mark_unreadable(5000);
        assert!(!table.is_unreadable(1));
        assert!(table.is_unreadable(5));
        assert!(table.is_unreadable(5000));
    }
}
