//! The plain-fact verdict cache: Python's "learned only" answers for runs whose
//! rules' prefilters read, besides the run's own argument needles (needles.rs), only
//! plain facts (`_Accepting.split()` of kexecwatch/core/scan/scanner.py).
//!
//! Such a verdict (set with `kw_set_verdict_needles`' plain flag) names what its plain
//! parts read (`argtest.Reads`: the parent's name and executable, the working
//! directory, the ids, whether a record states the capability sets, the parent's
//! command line). For a relevant run of it whose own needles are absent, Python's
//! decision depends on those facts alone (`_Accepting.plain_holds`, remembered by
//! `Facts.key`). The scan builds a key of the verdict key and exactly those facts, as
//! bytes (every part length-prefixed: no two inputs share a key, no hash is trusted):
//!
//! - the parent: the table's entry of the run's ppid at its time (`_entry_at`, what
//!   `_parent_known` reads through `table_entry_at`), or none: its comm and exe as
//!   stored with their raw flags, and with the parent's command line its argv segment
//!   as stored (raw bodies or decoded items);
//! - the working directory: the text after `type=CWD msg=audit(<id>):` of the run's
//!   last CWD line (`_run_cwd` parses that line; its id is the run's), or none;
//! - the ids: the SYSCALL record's text from `auid=` to `comm=` (`extra`);
//! - the capabilities: whether a line of the run is a `BPRM_FCAPS` or `CAPSET`
//!   record (`_run_capabilities`).
//!
//! A relevant run of a needle verdict (plain or not) one of whose needles may be in its
//! command line is keyed the same way by its full key (`full_key_of`): every fact above
//! and its EXECVE bodies, which with the verdict key are all `Facts` holds, so all
//! that Python's decision on it reads. A command that recurs with its needle (a health
//! check's `python3 -c "import ..."`) is then decided once per parent and directory.
//!
//! A guard key (`guard_key_of`) keys, by the facts its tests' guards read, Python's
//! answer on which guards hold (`_Accepting.alive`: `AliveCache`), asked when only
//! guarded tests of a needle verdict may hold on a run's command line (verdicts.rs
//! `Hit::Guarded`).
//!
//! A key found here was answered "learned only" by Python for identical inputs: the
//! run is taken. A key not found stops the scan (`Stop::Plain`); Python handles that
//! run with its own code and, when it only learned from it, says so
//! (`kw_plain_learned`): the key pending from that stop is kept. The library never
//! decides a rule; it only repeats Python's answer.
//!
//! Bounded: at most [`MAX_PLAIN`] keys and [`MAX_PLAIN_BYTES`] key bytes, then the
//! cache is cleared (never evicted by guess); a key longer than [`MAX_PLAIN_KEY`] is
//! not asked about at all (its run is handed back as before). Cleared with the
//! verdicts (rules, prefilters or needles changed) and when the learned inodes change.

use std::collections::HashMap;

use crate::entry::Entry;
use crate::lines::{find, starts};

/// `Reads[0]`: the parent's name or executable.
pub const READS_PARENT: u8 = 1;
/// `Reads[1]`: the working directory.
pub const READS_CWD: u8 = 2;
/// `Reads[2]`: the ids (`extra`).
pub const READS_IDS: u8 = 4;
/// `Reads[3]`: whether a record states the capability sets.
pub const READS_CAPS: u8 = 8;
/// `Reads[4]`: the parent's command line.
pub const READS_PARENT_LINE: u8 = 16;
/// Every reads bit.
pub const READS_ALL: u8 = 31;

/// The most keys kept; full: cleared.
pub const MAX_PLAIN: usize = 16_384;
/// The most key bytes kept; full: cleared.
pub const MAX_PLAIN_BYTES: usize = 8 << 20;
/// A longer key is not cached (nor asked about): its run goes to Python each time.
pub const MAX_PLAIN_KEY: usize = 64 << 10;

/// The record types stating capability sets (`CAPABILITY_RECORDS` of
/// kexecwatch/core/process/capabilities.py), as `_run_capabilities` looks for them.
const CAPABILITY_HEADS: [&[u8]; 2] = [b"\ntype=BPRM_FCAPS ", b"\ntype=CAPSET "];
const CWD_HEAD: &[u8] = b"\ntype=CWD ";

/// What a plain key is made of, for one run (offsets into the scanned buffer).
pub struct RunFacts<'a> {
    /// The verdict key's parts: raw call, success, comm and exe.
    pub verdict_key: [&'a [u8]; 4],
    /// The parent's entry at the run's time, if the table has one.
    pub parent: Option<&'a Entry>,
    /// The run's text from its SYSCALL line's start to the end of its PROCTITLE line.
    pub run: &'a [u8],
    /// Where its EXECVE lines end in `run` (a line start).
    pub args_end: usize,
    /// Its id as its records' headers write it (`sec.mmm:serial`).
    pub id: &'a [u8],
    /// The SYSCALL record's text from `auid=` to `comm=` (`extra`).
    pub ids: &'a [u8],
}

fn part(out: &mut Vec<u8>, bytes: &[u8]) {
    // Runs are shorter than 1 GiB (scan.rs MAX_UNIT), table segments than 4 GiB.
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn tagged_part(out: &mut Vec<u8>, value: Option<(&[u8], u8)>) {
    match value {
        None => out.push(0),
        Some((bytes, tag)) => {
            out.push(tag);
            part(out, bytes);
        }
    }
}

/// The last CWD line of `run` after its EXECVE lines (`_run_cwd`'s search), as the text
/// after its header; the whole line when the header is not the run's own.
fn cwd_text<'a>(run: &'a [u8], args_end: usize, id: &[u8]) -> Option<&'a [u8]> {
    let from = args_end.saturating_sub(1);
    let mut at = None;
    let mut rest = from;
    while rest < run.len() {
        match find(&run[rest..], CWD_HEAD) {
            Some(k) => {
                at = Some(rest + k + 1);
                rest += k + 1;
            }
            None => break,
        }
    }
    let start = at?;
    let end = run[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(run.len(), |k| start + k);
    let line = &run[start..end];
    let header_len = b"type=CWD msg=audit(".len() + id.len() + 2;
    if starts(line, b"type=CWD msg=audit(")
        && line.len() >= header_len
        && &line[b"type=CWD msg=audit(".len()..header_len - 2] == id
        && &line[header_len - 2..header_len] == b"):"
    {
        Some(&line[header_len..])
    } else {
        Some(line)
    }
}

/// Whether a line of `run` (its first line excepted: the SYSCALL record) is a record
/// stating the capability sets.
fn capabilities(run: &[u8]) -> bool {
    CAPABILITY_HEADS
        .iter()
        .any(|head| find(run, head).is_some())
}

/// Write into `out` the plain key of a run whose verdict's plain parts read `reads`.
pub fn key_of(out: &mut Vec<u8>, reads: u8, facts: &RunFacts<'_>) {
    key_with(out, reads, reads, facts);
}

/// The mark of a full key (its byte where a plain key has its reads): never a plain
/// key's, whose reads are at most [`READS_ALL`].
pub const FULL_KEY: u8 = 0x80 | READS_ALL;

/// Write into `out` the full key of a run: every fact a plain key may hold (as
/// [`key_of`] with [`READS_ALL`], marked [`FULL_KEY`]), then its EXECVE bodies
/// (`bodies`, spans of `buf`: each line's text after its header, cut at the ENRICHED
/// separator and stripped of spaces, as `execve_bodies` gives them), each
/// length-prefixed after their count. With the verdict key, these are every input of
/// `Facts` (its own name, executable and command line, its parent, ids, working
/// directory and capability sets): Python's decision on a relevant run whose needles
/// may be present is a function of them, so its "learned only" answer may be kept by
/// this key as by a plain one.
pub fn full_key_of(out: &mut Vec<u8>, facts: &RunFacts<'_>, buf: &[u8], bodies: &[(usize, usize)]) {
    key_with(out, FULL_KEY, READS_ALL, facts);
    out.extend_from_slice(&(bodies.len() as u64).to_le_bytes());
    for &(start, end) in bodies {
        part(out, &buf[start..end]);
    }
}

fn key_with(out: &mut Vec<u8>, mark: u8, reads: u8, facts: &RunFacts<'_>) {
    out.clear();
    for piece in facts.verdict_key.iter() {
        part(out, piece);
    }
    out.push(mark);
    if reads & (READS_PARENT | READS_PARENT_LINE) != 0 {
        match facts.parent {
            None => out.push(0),
            Some(entry) => {
                out.push(1);
                tagged_part(out, entry.comm().map(|(c, raw)| (c, 1 + u8::from(raw))));
                tagged_part(out, entry.exe().map(|(e, raw)| (e, 1 + u8::from(raw))));
                if reads & READS_PARENT_LINE != 0 {
                    let argv = entry.args_are_argv();
                    tagged_part(out, entry.args_segment().map(|a| (a, 1 + u8::from(argv))));
                }
            }
        }
    }
    if reads & READS_CWD != 0 {
        tagged_part(
            out,
            cwd_text(facts.run, facts.args_end, facts.id).map(|c| (c, 1)),
        );
    }
    if reads & READS_IDS != 0 {
        part(out, facts.ids);
    }
    if reads & READS_CAPS != 0 {
        out.push(u8::from(capabilities(facts.run)));
    }
}

/// The mark of a guard key: `GUARD_KEY | reads` (never a plain or a full key's).
pub const GUARD_KEY: u8 = 0x40;

/// Write into `out` the guard key of a run: the verdict key and the facts `reads`
/// (what its tests' guards read), as [`key_of`], marked [`GUARD_KEY`].
pub fn guard_key_of(out: &mut Vec<u8>, reads: u8, facts: &RunFacts<'_>) {
    key_with(out, GUARD_KEY | reads, reads, facts);
}

/// Python's answers by key, for the keys it was asked about: bounded at [`MAX_PLAIN`]
/// keys and [`MAX_PLAIN_BYTES`] key bytes, then cleared (never evicted by guess); a key
/// longer than [`MAX_PLAIN_KEY`] is not kept.
pub struct Answers<V> {
    known: HashMap<Vec<u8>, V>,
    bytes: usize,
    /// The key of the last stop asking Python, until Python answers or the store is cleared.
    pending: Option<Vec<u8>>,
}

impl<V> Default for Answers<V> {
    fn default() -> Self {
        Answers {
            known: HashMap::new(),
            bytes: 0,
            pending: None,
        }
    }
}

impl<V: Copy> Answers<V> {
    /// Python's answer for `key`, if it gave one.
    pub fn get(&self, key: &[u8]) -> Option<V> {
        self.known.get(key).copied()
    }

    /// `key` stopped a scan: Python is to answer for it.
    pub fn ask(&mut self, key: &[u8]) {
        let pending = self.pending.get_or_insert_with(Vec::new);
        pending.clear();
        pending.extend_from_slice(key);
    }

    /// The key Python is to answer for, if any.
    pub fn pending(&self) -> Option<&[u8]> {
        self.pending.as_deref()
    }

    /// Python's answer for the pending key. `false` when no key is pending (answered
    /// already, or the store was cleared since the stop) or the key is too long to keep.
    pub fn answer(&mut self, value: V) -> bool {
        let key = match self.pending.take() {
            Some(key) => key,
            None => return false,
        };
        if key.len() > MAX_PLAIN_KEY {
            return false;
        }
        if !self.known.contains_key(&key) {
            if self.known.len() >= MAX_PLAIN || self.bytes + key.len() > MAX_PLAIN_BYTES {
                self.known.clear();
                self.bytes = 0;
            }
            self.bytes += key.len();
        }
        self.known.insert(key, value);
        true
    }

    /// Forget every answer, and the pending key.
    pub fn clear(&mut self) {
        self.known.clear();
        self.bytes = 0;
        self.pending = None;
    }

    /// How many answers are kept.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// Whether no answer is kept.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// How many key bytes are kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Python's answers on which tests' guards hold (`_Accepting.alive`), by guard key:
/// the bits of the tests alive.
pub type AliveCache = Answers<u64>;

/// Python's "learned only" answers, by plain key.
pub type PlainCache = Answers<()>;

impl Answers<()> {
    /// Whether Python answered "learned only" for `key`.
    pub fn learned(&self, key: &[u8]) -> bool {
        self.known.contains_key(key)
    }

    /// Python only learned from the run of the pending key: keep it. `false` when no
    /// key is pending (answered already, or the cache was cleared since the stop).
    pub fn answer_learned(&mut self) -> bool {
        self.answer(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::ArgsIn;

    fn learn(cache: &mut PlainCache, key: &[u8]) {
        cache.ask(key);
        assert!(cache.answer_learned());
    }

    #[test]
    fn only_an_asked_key_is_kept_once() {
        let mut c = PlainCache::default();
        assert!(!c.answer_learned(), "nothing pending");
        c.ask(b"a");
        c.ask(b"b"); // the last stop's key
        assert_eq!(c.pending(), Some(&b"b"[..]));
        assert!(c.answer_learned());
        assert!(!c.answer_learned(), "answered once");
        assert!(c.learned(b"b"));
        assert!(!c.learned(b"a"));
        learn(&mut c, b"b");
        assert_eq!((c.len(), c.bytes()), (1, 1));
    }

    #[test]
    fn clearing_forgets_answers_and_the_pending_key() {
        let mut c = PlainCache::default();
        learn(&mut c, b"k");
        c.ask(b"j");
        c.clear();
        assert!(c.is_empty());
        assert!(!c.learned(b"k"));
        assert!(!c.answer_learned(), "the stop's key went with the clear");
        assert!(!c.learned(b"j"));
    }

    #[test]
    fn the_cache_is_bounded_in_keys_and_bytes() {
        let mut c = PlainCache::default();
        for n in 0..MAX_PLAIN {
            learn(&mut c, format!("k{}", n).as_bytes());
        }
        assert_eq!(c.len(), MAX_PLAIN);
        learn(&mut c, b"k0"); // known: nothing changes
        assert_eq!(c.len(), MAX_PLAIN);
        learn(&mut c, b"new");
        assert_eq!(c.len(), 1, "full: cleared, never a guess");
        assert!(c.learned(b"new") && !c.learned(b"k1"));

        let mut c = PlainCache::default();
        let big = vec![b'x'; MAX_PLAIN_KEY - 16];
        let mut n = 0usize;
        while c.bytes() + big.len() + 8 <= MAX_PLAIN_BYTES {
            let mut key = big.clone();
            key.extend_from_slice(&n.to_le_bytes());
            learn(&mut c, &key);
            n += 1;
        }
        let before = c.len();
        assert!(before > 1 && c.bytes() <= MAX_PLAIN_BYTES);
        let mut key = big.clone();
        key.extend_from_slice(b"last one");
        c.ask(&key);
        assert!(c.answer_learned());
        assert_eq!(c.len(), 1);
        assert!(c.bytes() <= MAX_PLAIN_BYTES);
    }

    #[test]
    fn a_key_too_long_is_never_kept() {
        let mut c = PlainCache::default();
        let long = vec![b'y'; MAX_PLAIN_KEY + 1];
        c.ask(&long);
        assert!(!c.answer_learned());
        assert!(!c.learned(&long));
        assert!(c.is_empty());
    }

    fn parent(comm: &[u8], raw: bool, args: &[u8]) -> Entry {
        Entry::new(
            7,
            Some(1),
            5,
            Some((comm, raw)),
            Some((b"\"/bin/bash\"", true)),
            ArgsIn::Raw(args),
            Some(b"1.000:1"),
            Some(b"auid=0"),
        )
    }

    const RUN: &[u8] = b"type=SYSCALL msg=audit(9.001:5): a comm=\"ls\"\n\
type=EXECVE msg=audit(9.001:5): argc=1 a0=\"ls\"\n\
type=CWD msg=audit(9.001:5): cwd=\"/a\"\n\
type=CWD msg=audit(9.001:5): cwd=\"/root\"\n\
type=PROCTITLE msg=audit(9.001:5): proctitle=6C73\n";

    fn facts<'a>(run: &'a [u8], parent: Option<&'a Entry>, ids: &'a [u8]) -> RunFacts<'a> {
        let args_end = find(run, b"type=CWD").unwrap_or(run.len());
        RunFacts {
            verdict_key: [b"k", b"yes", b"\"ls\"", b"\"/bin/ls\""],
            parent,
            run,
            args_end,
            id: b"9.001:5",
            ids,
        }
    }

    fn key(reads: u8, f: &RunFacts<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        key_of(&mut out, reads, f);
        out
    }

    #[test]
    fn keys_hold_exactly_the_facts_read() {
        let p = parent(b"\"bash\"", true, b"argc=1 a0=\"bash\"");
        let q = parent(b"\"bash\"", true, b"argc=2 a0=\"bash\" a1=\"-c\"");
        let r = parent(b"\"bash\"", false, b"argc=1 a0=\"bash\"");
        let (with_p, with_q, with_r) = (
            facts(RUN, Some(&p), b"auid=0"),
            facts(RUN, Some(&q), b"auid=0"),
            facts(RUN, Some(&r), b"auid=0"),
        );
        let none = facts(RUN, None, b"auid=0");
        // The parent's name and executable alone: its command line is not in the key.
        assert_eq!(key(READS_PARENT, &with_p), key(READS_PARENT, &with_q));
        assert_ne!(key(READS_PARENT, &with_p), key(READS_PARENT, &with_r));
        assert_ne!(key(READS_PARENT, &with_p), key(READS_PARENT, &none));
        // With its command line: it is.
        let line = READS_PARENT | READS_PARENT_LINE;
        assert_ne!(key(line, &with_p), key(line, &with_q));
        assert_ne!(
            key(line, &with_p),
            key(READS_PARENT, &with_p),
            "the reads are keyed"
        );
        // What is not read is not keyed: the ids here.
        let other_ids = facts(RUN, Some(&p), b"auid=1");
        assert_eq!(key(line, &with_p), key(line, &other_ids));
        assert_ne!(key(READS_IDS, &with_p), key(READS_IDS, &other_ids));
        // Another verdict key: another key.
        let mut other = facts(RUN, Some(&p), b"auid=0");
        other.verdict_key[3] = b"\"/bin/lx\"";
        assert_ne!(key(READS_PARENT, &with_p), key(READS_PARENT, &other));
    }

    #[test]
    fn the_cwd_is_the_last_cwd_record_without_its_id() {
        assert_eq!(
            cwd_text(RUN, facts(RUN, None, b"").args_end, b"9.001:5"),
            Some(&b" cwd=\"/root\""[..])
        );
        let later = b"type=SYSCALL msg=audit(9.002:6): a comm=\"ls\"\n\
type=EXECVE msg=audit(9.002:6): argc=1 a0=\"ls\"\n\
type=CWD msg=audit(9.002:6): cwd=\"/root\"\n\
type=PROCTITLE msg=audit(9.002:6): proctitle=6C73\n";
        let mut f = facts(later, None, b"");
        f.id = b"9.002:6";
        assert_eq!(key(READS_CWD, &facts(RUN, None, b"")), key(READS_CWD, &f));
        let moved = b"type=SYSCALL msg=audit(9.002:6): a comm=\"ls\"\n\
type=CWD msg=audit(9.002:6): cwd=\"/tmp\"\n\
type=PROCTITLE msg=audit(9.002:6): proctitle=6C73\n";
        let mut g = facts(moved, None, b"");
        g.id = b"9.002:6";
        assert_ne!(key(READS_CWD, &f), key(READS_CWD, &g));
        let no_cwd = b"type=SYSCALL msg=audit(9.002:6): a\ntype=PROCTITLE msg=audit(9.002:6): p\n";
        let mut h = facts(no_cwd, None, b"");
        h.id = b"9.002:6";
        assert_eq!(cwd_text(no_cwd, h.args_end, h.id), None);
        assert_ne!(key(READS_CWD, &h), key(READS_CWD, &g));
    }

    #[test]
    fn capabilities_are_a_record_stating_them() {
        assert!(!capabilities(RUN));
        let fcaps = b"type=SYSCALL msg=audit(9.001:5): a\n\
type=BPRM_FCAPS msg=audit(9.001:5): fver=2\ntype=PROCTITLE msg=audit(9.001:5): p\n";
        assert!(capabilities(fcaps));
        let f = facts(fcaps, None, b"");
        assert_ne!(key(READS_CAPS, &f), key(READS_CAPS, &facts(RUN, None, b"")));
        assert!(!capabilities(
            b"type=SYSCALL msg=audit(9.001:5): a type=BPRM_FCAPS x\n"
        ));
    }
}
