//! What Python's prefilters say about a kind of syscall event, cached by its raw key
//! (`call \0 success \0 comm \0 exe`), and the inode search of `inode_search`
//! (kexecwatch/core/scan/fastpath.py).

use std::collections::HashMap;

use crate::fasthash::IntSet;
use crate::lines::find;
use crate::needles::{Groups, NeedleSet, Present};
use crate::plain::{AliveCache, PlainCache, READS_ALL};

/// The most verdicts cached (`_MAX_VERDICTS` of detector.py); full: cleared.
pub const MAX_VERDICTS: usize = 4096;
/// The most key bytes cached (a key holds a comm and an exe of any length): full,
/// cleared too. A cache only: clearing it costs Python a verdict again, nothing else.
pub const MAX_VERDICT_BYTES: usize = 16 << 20;

pub const LEARN_MASK: u8 = 0b11;
pub const LEARN_EXEC: u8 = 1;
pub const LEARN_FORK: u8 = 2;
pub const LEARN_OTHER: u8 = 3;
pub const EVALUATED: u8 = 1 << 2;
pub const NEED_IF_RELEVANT: u8 = 1 << 3;
pub const NEED_ALWAYS: u8 = 1 << 4;
pub const INODE_IF_RELEVANT: u8 = 1 << 5;
pub const INODE_ALWAYS: u8 = 1 << 6;
/// When relevant, hand back only if a needle of the verdict's group may be in the
/// command line (needles.rs); NEED_IF_RELEVANT, when set too, wins.
pub const NEEDLE_IF_RELEVANT: u8 = 1 << 7;
/// Every bit a verdict code may have.
pub const ALL_BITS: u8 = 0xff;

/// A verdict's plain part (plain.rs): none, or what its plain parts read
/// (`plain::READS_*` bits).
pub type Plain = Option<u8>;

/// Which tests behind a verdict's gate have a guard (conjuncts that do not read the
/// process's own command line, `_Accepting.guards`: a test holds only where its guard
/// does), and what the guards read (`plain::READS_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Guards {
    pub reads: u8,
    /// Bit `i`: test `i` has a guard (tests beyond 64: none).
    pub guarded: u64,
}

/// What a needle verdict's needle test says of a run ([`Verdicts::needle_hit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hit {
    /// No test behind its gate can hold: its needles do not matter.
    No,
    /// One may: Python's.
    Yes,
    /// Only the guarded tests `mask` may, if their guards hold (reading `reads`).
    Guarded { mask: u64, reads: u8 },
}

/// The verdict cache, the inodes the prefilters know, and the rules' needles.
#[derive(Default)]
pub struct Verdicts {
    /// Per key: the code, its needle group's number (0: none), its plain part and its
    /// tests' number (0: none; `set_tests`).
    codes: HashMap<Vec<u8>, (u8, u32, Plain, u32)>,
    /// The tests behind needle verdicts' gates (`set_tests`), numbered from 1: per
    /// test, the groups of its clauses (each a needle set one of which must be in the
    /// command line for the test to hold).
    tests: Vec<(Vec<Vec<u32>>, Guards)>,
    tests_known: HashMap<(Vec<Vec<u32>>, Guards), u32>,
    /// Python's answers on which guarded tests' guards hold, per guard key (plain.rs).
    pub alive: AliveCache,
    key_bytes: usize,
    inodes: IntSet<u64>,
    needles: NeedleSet,
    groups: Groups,
    /// Python's "learned only" answers for plain verdicts (plain.rs).
    pub plain: PlainCache,
}

impl Verdicts {
    /// The code cached for `key`.
    pub fn get(&self, key: &[u8]) -> Option<u8> {
        self.codes.get(key).map(|v| v.0)
    }

    /// The code cached for `key`, its needle group's number (0: none), its plain part
    /// and its tests' number (0: none).
    pub fn get_with_group(&self, key: &[u8]) -> Option<(u8, u32, Plain, u32)> {
        self.codes.get(key).copied()
    }

    /// Cache `code` for `key` (clearing the cache first when it is full).
    pub fn set(&mut self, key: &[u8], code: u8) {
        self.set_entry(key, (code, 0, None, 0));
    }

    /// Cache `code` for `key` with the needle group of the needle ids `ids`, and when
    /// `plain` is set, what its plain parts read (plain.rs): a relevant run of it whose
    /// needles are absent is then taken only when Python answered for its plain facts.
    pub fn set_with_needles(
        &mut self,
        key: &[u8],
        code: u8,
        ids: &[u32],
        empty_if_none: bool,
        plain: Plain,
    ) -> Result<(), &'static str> {
        if plain.map_or(false, |reads| reads & !READS_ALL != 0) {
            return Err("plain reads out of range");
        }
        let number = match self.groups.intern(&self.needles, ids, empty_if_none)? {
            Some(number) => number,
            None => {
                // Every group is in use: start again (verdicts name groups).
                self.clear();
                self.groups
                    .intern(&self.needles, ids, empty_if_none)?
                    .ok_or("no room for a needle group")?
            }
        };
        self.set_entry(key, (code, number, plain, 0));
        Ok(())
    }

    /// Give the needle verdict cached for `key` the tests behind its gate, from the
    /// words `[tests, (clauses, (ids, id...)...)...]` (needle ids of `set_needles`): a
    /// test may hold only when each of its clauses has a needle in the command line,
    /// and when none may, no needle of the verdict matters ([`Verdicts::needle_hit`]).
    /// Nothing is kept when there is no such verdict or no room (then its group alone
    /// decides, as before).
    pub fn set_tests(&mut self, key: &[u8], words: &[u32]) -> Result<(), &'static str> {
        let malformed = "malformed needle tests";
        fn take(rest: &mut &[u32]) -> Result<u32, &'static str> {
            let (&first, tail) = rest.split_first().ok_or("malformed needle tests")?;
            *rest = tail;
            Ok(first)
        }
        let mut rest = words;
        let count = take(&mut rest)?;
        let mut tests: Vec<Vec<Vec<u32>>> = Vec::new();
        for _ in 0..count {
            let clauses = take(&mut rest)?;
            let mut test = Vec::new();
            for _ in 0..clauses {
                let ids = take(&mut rest)? as usize;
                if ids > rest.len() {
                    return Err(malformed);
                }
                test.push(rest[..ids].to_vec());
                rest = &rest[ids..];
            }
            tests.push(test);
        }
        if !rest.is_empty() {
            return Err(malformed);
        }
        let (group, empty_if_none) = match self.codes.get(key) {
            Some(&(_, group, _, _)) if group != 0 => match self.groups.get(group) {
                Some(found) => (group, found.empty_if_none),
                None => return Ok(()),
            },
            _ => return Ok(()),
        };
        let mut numbered = Vec::with_capacity(tests.len());
        for test in tests {
            let mut clauses = Vec::with_capacity(test.len());
            for ids in test {
                match self.groups.intern(&self.needles, &ids, empty_if_none)? {
                    Some(number) => clauses.push(number),
                    None => return Ok(()),
                }
            }
            numbered.push(clauses);
        }
        self.attach(key, group, (numbered, Guards::default()));
        Ok(())
    }

    /// Give the tests of the needle verdict cached for `key` (`set_tests`) their
    /// guards: `guarded` (bit `i`: test `i` has one; none beyond the tests), reading
    /// `reads`. A run on which only guarded tests may hold then asks Python which
    /// guards hold for its facts (`Hit::Guarded`), once per guard key.
    pub fn set_guards(&mut self, key: &[u8], reads: u8, guarded: u64) -> Result<(), &'static str> {
        if reads & !READS_ALL != 0 {
            return Err("guard reads out of range");
        }
        let (group, tests) = match self.codes.get(key) {
            Some(&(_, group, _, tests)) if group != 0 && tests != 0 => (group, tests),
            _ => return Ok(()),
        };
        let formula = match self.tests.get(tests as usize - 1) {
            Some((formula, _)) => formula.clone(),
            None => return Ok(()),
        };
        let within = if formula.len() >= 64 {
            u64::MAX
        } else {
            (1u64 << formula.len()) - 1
        };
        let guards = Guards {
            reads,
            guarded: guarded & within,
        };
        self.attach(key, group, (formula, guards));
        Ok(())
    }

    fn attach(&mut self, key: &[u8], group: u32, formula: (Vec<Vec<u32>>, Guards)) {
        let number = match self.tests_known.get(&formula) {
            Some(&number) => number,
            None => {
                if self.tests.len() >= MAX_VERDICTS {
                    return;
                }
                self.tests.push(formula.clone());
                let number = self.tests.len() as u32;
                self.tests_known.insert(formula, number);
                number
            }
        };
        if let Some(entry) = self.codes.get_mut(key) {
            if entry.1 == group {
                entry.3 = number;
            }
        }
    }

    fn set_entry(&mut self, key: &[u8], entry: (u8, u32, Plain, u32)) {
        if let Some(known) = self.codes.get_mut(key) {
            *known = entry;
            return;
        }
        if self.codes.len() >= MAX_VERDICTS || self.key_bytes + key.len() > MAX_VERDICT_BYTES {
            // Only the codes: the groups stay, the next one may name them.
            self.codes.clear();
            self.key_bytes = 0;
        }
        self.key_bytes += key.len();
        self.codes.insert(key.to_vec(), entry);
    }

    /// Forget every verdict (rules or prefilters changed), every needle group and
    /// every plain answer.
    pub fn clear(&mut self) {
        self.codes.clear();
        self.key_bytes = 0;
        self.groups.clear();
        self.tests.clear();
        self.tests_known.clear();
        self.plain.clear();
        self.alive.clear();
    }

    /// Replace the rules' needles (every verdict and group goes too).
    pub fn set_needles(&mut self, needles: NeedleSet) {
        self.clear();
        self.needles = needles;
    }

    /// Whether a needle of group `number` may be in the command line `line`
    /// (`None`: the run has no EXECVE line); an unknown group: always.
    pub fn needle_may_match(&self, number: u32, line: Option<&[u8]>) -> bool {
        match (self.groups.get(number), line) {
            (Some(group), Some(line)) => self.needles.may_match(group, line),
            (Some(group), None) if group.empty_if_none => self.needles.may_match(group, b""),
            _ => true,
        }
    }

    /// Whether a relevant run of a needle verdict (group `number`, tests `tests`) is
    /// Python's for its needles: some test behind its gate may hold on the command line
    /// `line` (`None`: the run has no EXECVE line), every clause of it having a needle
    /// there; without tests, a needle of the group may be there. `present` is scratch.
    pub fn needle_hit(
        &self,
        number: u32,
        tests: u32,
        line: Option<&[u8]>,
        present: &mut Present,
    ) -> Hit {
        if !self.needle_may_match(number, line) {
            return Hit::No;
        }
        let (line, (formula, guards)) =
            match (line, self.tests.get((tests as usize).wrapping_sub(1))) {
                (Some(line), Some(formula)) => (line, formula),
                (None, Some(formula))
                    if self.groups.get(number).map_or(false, |g| g.empty_if_none) =>
                {
                    (&b""[..], formula)
                }
                _ => return Hit::Yes,
            };
        self.needles.present(line, present);
        let mut mask = 0u64;
        for (i, clauses) in formula.iter().enumerate() {
            let may = clauses.iter().all(|&clause| {
                self.groups
                    .get(clause)
                    .map_or(true, |group| self.needles.holds_in(group, present))
            });
            if may {
                if i < 64 && guards.guarded & (1 << i) != 0 {
                    mask |= 1 << i;
                } else {
                    return Hit::Yes;
                }
            }
        }
        if mask == 0 {
            Hit::No
        } else {
            Hit::Guarded {
                mask,
                reads: guards.reads,
            }
        }
    }

    /// How many verdicts are cached.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Whether no verdict is cached.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Replace the inodes (the union of every prefilter's path items, absolute values);
    /// the plain answers go too (Python's answers were made with the inodes before).
    pub fn set_inodes(&mut self, inodes: &[u64]) {
        self.plain.clear();
        self.alive.clear();
        self.inodes.clear();
        self.inodes.extend(inodes.iter().copied());
    }

    /// Whether `inode_search` for these inodes could find something in `text`: an
    /// `inode=` value of plain digits (leading zeros allowed) naming one of them, or
    /// any value with a character that is not a digit. No inodes: never.
    pub fn inode_may_match(&self, text: &[u8]) -> bool {
        if self.inodes.is_empty() {
            return false;
        }
        let mut rest = text;
        while let Some(at) = find(rest, b"inode=") {
            let value_start = at + 6;
            let after = &rest[value_start..];
            let len = after
                .iter()
                .position(|&b| matches!(b, b' ' | b'\n' | 0x1d))
                .unwrap_or(after.len());
            let value = &after[..len];
            if value.iter().any(|b| !b.is_ascii_digit()) {
                return true;
            }
            if !value.is_empty() && self.names_inode(value) {
                return true;
            }
            rest = &after[len..];
        }
        false
    }

    fn names_inode(&self, digits: &[u8]) -> bool {
        let significant = match digits.iter().position(|&b| b != b'0') {
            Some(first) => &digits[first..],
            None => return self.inodes.contains(&0),
        };
        if significant.len() > 20 {
            // Beyond any u64: an inode the binding could not pass may be meant.
            return true;
        }
        let mut value: u128 = 0;
        for &b in significant {
            value = value * 10 + u128::from(b - b'0');
        }
        match u64::try_from(value) {
            Ok(value) => self.inodes.contains(&value),
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_cleared_when_full() {
        let mut v = Verdicts::default();
        for n in 0..MAX_VERDICTS {
            v.set(format!("k{}", n).as_bytes(), 1);
        }
        v.set(b"k0", 5); // known key: no clearing
        assert_eq!(v.len(), MAX_VERDICTS);
        assert_eq!(v.get(b"k0"), Some(5));
        v.set(b"new", 2);
        assert_eq!(v.len(), 1);
        assert_eq!(v.get(b"k1"), None);
        assert_eq!(v.get(b"new"), Some(2));
        v.clear();
        assert!(v.is_empty());
    }

    #[test]
    fn the_cache_holds_at_most_16_mib_of_keys() {
        let mut v = Verdicts::default();
        let big = vec![b'x'; 6 << 20];
        v.set(&big, 1);
        v.set(&big[1..], 1);
        assert_eq!(v.len(), 2);
        v.set(&big[2..], 1);
        assert_eq!(v.len(), 1);
        assert_eq!(v.get(&big[2..]), Some(1));
    }

    #[test]
    fn inode_search_as_the_regex() {
        let mut v = Verdicts::default();
        let text = b"type=PATH msg=audit(1.000:1): item=0 name=\"/x\" inode=00123 dev=08:01\n";
        assert!(!v.inode_may_match(text), "no inodes: never");
        v.set_inodes(&[123, 0]);
        assert!(v.inode_may_match(text));
        assert!(!v.inode_may_match(b"inode=1234 inode=12\n"));
        assert!(v.inode_may_match(b"inode=000\n"));
        assert!(v.inode_may_match(b"inode=12a3 \n"));
        assert!(v.inode_may_match(b"inode=-123\x1d"));
        assert!(!v.inode_may_match(b"inode= inode=\n"));
        assert!(v.inode_may_match(b"xinode=123"));
        assert!(v.inode_may_match(b"inode=99999999999999999999999\n"));
        assert!(!v.inode_may_match(b"inode=18446744073709551615\n"));
        v.set_inodes(&[u64::MAX]);
        assert!(v.inode_may_match(b"inode=18446744073709551615\n"));
        assert!(v.inode_may_match(b"inode=18446744073709551616\n"));
        assert!(!v.inode_may_match(b"inode=0\n"));
    }
}
