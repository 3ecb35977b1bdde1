//! The needle test: can any rule's argument needle be in an exec's command line?
//!
//! Python's argument tests (kexecwatch/core/scan/argtest.py) hold only when one of a
//! rule's *needles* (literal text) is in `process.command_line`, the decoded arguments
//! joined by spaces: case-sensitive needles in the line as it is, case-insensitive ones
//! (already lower-cased by Python's `str.lower`) in `line.lower()`. Python gives the
//! session every needle once (`NeedleSet::parse`); a verdict then names the group of
//! needles that can make its prefilters accept (`Groups`), and for an exec of that
//! verdict the scan asks [`NeedleSet::may_match`]: `false` means no needle of the group
//! can be in the command line, so no argument test can hold and the exec stays native;
//! `true` ("maybe") hands it back to Python, which decides as always.
//!
//! Conservative by construction (never `false` where Python could find a needle):
//! * the command line is rebuilt only from EXECVE bodies in the kernel's plain layout
//!   ([`command_line`]): `argc=N a0=V0 .. a<N-1>=V<N-1>` in order, each value quoted
//!   printable ASCII or upper-case hex; anything else is "maybe";
//! * text is compared as bytes: a needle `str` in a line decoded with UTF-8 and
//!   `surrogateescape` is also a byte substring of the line's bytes (both encode code
//!   point by code point), so a byte search finds at least what Python finds;
//! * case-insensitive needles are compared ASCII-folded. On a line that is all ASCII,
//!   `str.lower` is ASCII folding. On another line it still is for the ASCII characters:
//!   `str.lower` maps every other character onto characters that are not ASCII (never
//!   onto none), except two: U+0130 (`İ` -> `i` + U+0307) and U+212A (the Kelvin sign ->
//!   `k`); and in UTF-8 (as with `surrogateescape`) every byte of a character beyond
//!   ASCII is beyond ASCII. So an ASCII needle is in `line.lower()` exactly where its
//!   folded bytes are in the line's ASCII-folded bytes, unless the line holds one of
//!   those two characters: then it is "maybe" for a group holding a case-insensitive
//!   needle, as always for a group holding a case-insensitive needle beyond ASCII (not
//!   in the automaton). `tests/test_native_needles.py` checks Python's `str.lower` maps
//!   no other character onto ASCII;
//! * an empty needle is in every line.
//!
//! The search is one Aho-Corasick automaton per case mode, made dense over the byte
//! classes the needles use, so each line byte costs one table look-up.

use std::collections::HashMap;
use std::collections::VecDeque;

/// The most needles a session takes, and their most bytes in all: past that, Python
/// keeps the test (the binding refuses, the scanner hands every such exec back).
pub const MAX_NEEDLES: usize = 1 << 16;
pub const MAX_NEEDLE_BYTES: usize = 1 << 20;
/// The most needle groups kept (as many as verdicts); full: cleared with the verdicts.
pub const MAX_GROUPS: usize = 4096;
/// `MAX_ARGS` of kexecwatch/core/audit/fields.py: a larger `argc` is not plain.
pub const MAX_ARGS: u64 = (6 << 20) / 9;

const NONE: u32 = u32::MAX;

/// A multi-pattern automaton (Aho-Corasick), dense over byte classes.
struct Automaton {
    /// Byte -> class; class 0: a byte no needle holds.
    classes: [u8; 256],
    width: usize,
    /// `delta[state * width + class]`: the next state (complete: no failure walk).
    delta: Vec<u32>,
    /// Per state: the nearest state on its failure chain (itself included) where a
    /// needle ends, or `NONE`.
    out: Vec<u32>,
    /// Per state where needles end: the next such state down its failure chain.
    out_next: Vec<u32>,
    /// Per state: the needle ids ending exactly there (`ends[first[s]..first[s + 1]]`).
    first: Vec<u32>,
    ends: Vec<u32>,
}

impl Automaton {
    /// The automaton of `needles` (id, bytes); `fold`: ASCII upper-case letters read
    /// as their lower-case (the needles are lower-cased here too).
    fn new(needles: &[(u32, Vec<u8>)], fold: bool) -> Automaton {
        let key = |b: u8| if fold { b.to_ascii_lowercase() } else { b };
        let mut classes = [0u8; 256];
        let mut used = [false; 256];
        for (_, text) in needles {
            for &b in text {
                used[usize::from(key(b))] = true;
            }
        }
        let mut width = 1usize;
        for b in 0..256usize {
            if used[b] {
                classes[b] = width as u8;
                width += 1;
            }
        }
        if fold {
            for b in b'A'..=b'Z' {
                classes[usize::from(b)] = classes[usize::from(b.to_ascii_lowercase())];
            }
        }
        // The trie: delta rows with 0 for "no edge" (no edge leads back to the root).
        let mut delta = vec![0u32; width];
        let mut ending: Vec<Vec<u32>> = vec![Vec::new()];
        for (id, text) in needles {
            let mut state = 0usize;
            for &b in text {
                let class = usize::from(classes[usize::from(key(b))]);
                let next = delta[state * width + class];
                state = if next == 0 {
                    let new = ending.len();
                    delta[state * width + class] = new as u32;
                    delta.extend(std::iter::repeat(0).take(width));
                    ending.push(Vec::new());
                    new
                } else {
                    next as usize
                };
            }
            ending[state].push(*id);
        }
        let states = ending.len();
        let mut fail = vec![0u32; states];
        let mut out = vec![NONE; states];
        let mut out_next = vec![NONE; states];
        if !ending[0].is_empty() {
            out[0] = 0;
        }
        // Breadth first: a state's failure state is shallower, so its row is complete.
        let mut queue = VecDeque::new();
        queue.extend(
            delta[..width]
                .iter()
                .filter(|&&n| n != 0)
                .map(|&n| n as usize),
        );
        while let Some(state) = queue.pop_front() {
            let f = fail[state] as usize;
            out[state] = if ending[state].is_empty() {
                out[f]
            } else {
                out_next[state] = out[f];
                state as u32
            };
            for class in 0..width {
                let next = delta[state * width + class];
                if next == 0 {
                    delta[state * width + class] = delta[f * width + class];
                } else {
                    fail[next as usize] = delta[f * width + class];
                    queue.push_back(next as usize);
                }
            }
        }
        let mut first = Vec::with_capacity(states + 1);
        let mut ends = Vec::new();
        for ids in &ending {
            first.push(ends.len() as u32);
            ends.extend_from_slice(ids);
        }
        first.push(ends.len() as u32);
        Automaton {
            classes,
            width,
            delta,
            out,
            out_next,
            first,
            ends,
        }
    }

    /// Set in `bits` the bit of every needle id that occurs in `text`.
    fn collect(&self, text: &[u8], bits: &mut [u64]) {
        if self.ends.is_empty() {
            return;
        }
        let mut state = 0usize;
        for &b in text {
            state =
                self.delta[state * self.width + usize::from(self.classes[usize::from(b)])] as usize;
            let mut at = self.out[state];
            while at != NONE {
                let s = at as usize;
                for &id in &self.ends[self.first[s] as usize..self.first[s + 1] as usize] {
                    let id = id as usize;
                    bits[id / 64] |= 1 << (id % 64);
                }
                at = self.out_next[s];
            }
        }
    }

    /// Whether a needle of `group` occurs in `text`.
    fn finds(&self, text: &[u8], group: &Group) -> bool {
        if self.ends.is_empty() {
            return false;
        }
        let mut state = 0usize;
        for &b in text {
            state =
                self.delta[state * self.width + usize::from(self.classes[usize::from(b)])] as usize;
            let mut at = self.out[state];
            while at != NONE {
                let s = at as usize;
                let ids = &self.ends[self.first[s] as usize..self.first[s + 1] as usize];
                if ids.iter().any(|&id| group.has(id)) {
                    return true;
                }
                at = self.out_next[s];
            }
        }
        false
    }
}

/// Which needles can make one verdict's prefilters accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    bits: Vec<u64>,
    any_empty: bool,
    any_folded: bool,
    /// A case-insensitive needle with a byte beyond ASCII (not in the automaton).
    any_folded_wide: bool,
    /// A run without EXECVE lines has the empty command line (Python's `_NO_ARGS`:
    /// its syscall takes no arguments from the table); otherwise it is not known.
    pub empty_if_none: bool,
}

impl Group {
    fn has(&self, id: u32) -> bool {
        let id = id as usize;
        self.bits
            .get(id / 64)
            .map_or(false, |word| word & (1 << (id % 64)) != 0)
    }
}

/// Every needle of the session's rules (ids in Python's order) and their automata.
pub struct NeedleSet {
    nocase: Vec<bool>,
    /// Case-insensitive and not all ASCII (left out of the folded automaton).
    wide: Vec<bool>,
    empty: Vec<bool>,
    exact: Automaton,
    folded: Automaton,
}

impl Default for NeedleSet {
    fn default() -> NeedleSet {
        NeedleSet::new(&[])
    }
}

impl NeedleSet {
    /// The set of `needles` (text, case-insensitive), ids by position.
    pub fn new(needles: &[(Vec<u8>, bool)]) -> NeedleSet {
        let mut exact = Vec::new();
        let mut folded = Vec::new();
        for (id, (text, nocase)) in needles.iter().enumerate() {
            if text.is_empty() {
                continue;
            }
            if !*nocase {
                exact.push((id as u32, text.clone()));
            } else if text.is_ascii() {
                folded.push((id as u32, text.clone()));
            }
            // A case-insensitive needle with other bytes can only be in a lowered line
            // that is not all ASCII: such lines are "maybe" anyway.
        }
        NeedleSet {
            nocase: needles.iter().map(|n| n.1).collect(),
            wide: needles.iter().map(|n| n.1 && !n.0.is_ascii()).collect(),
            empty: needles.iter().map(|n| n.0.is_empty()).collect(),
            exact: Automaton::new(&exact, false),
            folded: Automaton::new(&folded, true),
        }
    }

    /// Read the wire form: per needle a flag byte (1: case-insensitive, 0: not), its
    /// length as a little-endian u32, its bytes.
    pub fn parse(blob: &[u8]) -> Result<NeedleSet, &'static str> {
        let mut needles = Vec::new();
        let mut total = 0usize;
        let mut rest = blob;
        while !rest.is_empty() {
            if rest.len() < 5 || rest[0] > 1 {
                return Err("malformed needle list");
            }
            let mut len = [0u8; 4];
            len.copy_from_slice(&rest[1..5]);
            let len = u32::from_le_bytes(len) as usize;
            if rest.len() - 5 < len {
                return Err("malformed needle list");
            }
            total += len;
            if needles.len() >= MAX_NEEDLES || total > MAX_NEEDLE_BYTES {
                return Err("too many needles");
            }
            needles.push((rest[5..5 + len].to_vec(), rest[0] == 1));
            rest = &rest[5 + len..];
        }
        Ok(NeedleSet::new(&needles))
    }

    /// How many needles the set holds.
    pub fn len(&self) -> usize {
        self.nocase.len()
    }

    /// Whether the set holds no needle.
    pub fn is_empty(&self) -> bool {
        self.nocase.is_empty()
    }

    /// The group of the needles `ids`; an id beyond the set is refused.
    pub fn group(&self, ids: &[u32], empty_if_none: bool) -> Result<Group, &'static str> {
        let mut group = Group {
            bits: vec![0; (self.len() + 63) / 64],
            any_empty: false,
            any_folded: false,
            any_folded_wide: false,
            empty_if_none,
        };
        for &id in ids {
            let at = id as usize;
            if at >= self.len() {
                return Err("needle id beyond the needle list");
            }
            group.bits[at / 64] |= 1 << (at % 64);
            group.any_empty |= self.empty[at];
            group.any_folded |= self.nocase[at];
            group.any_folded_wide |= self.wide[at];
        }
        Ok(group)
    }

    /// Whether a needle of `group` may be in the command line `line` (module docs).
    pub fn may_match(&self, group: &Group, line: &[u8]) -> bool {
        if group.any_empty || self.exact.finds(line, group) {
            return true;
        }
        if !group.any_folded {
            return false;
        }
        if !line.is_ascii() && (group.any_folded_wide || lowers_onto_ascii(line)) {
            return true;
        }
        self.folded.finds(line, group)
    }
}

/// The needles found in one command line ([`NeedleSet::present`]): one pass over it
/// answers [`NeedleSet::holds_in`] for any number of groups.
#[derive(Default)]
pub struct Present {
    bits: Vec<u64>,
    not_ascii: bool,
    lowers: bool,
}

impl NeedleSet {
    /// Note in `out` every needle of the set that occurs in `line` (as
    /// [`NeedleSet::may_match`] looks for them).
    pub fn present(&self, line: &[u8], out: &mut Present) {
        out.bits.clear();
        out.bits.resize((self.len() + 63) / 64, 0);
        self.exact.collect(line, &mut out.bits);
        self.folded.collect(line, &mut out.bits);
        out.not_ascii = !line.is_ascii();
        out.lowers = out.not_ascii && lowers_onto_ascii(line);
    }

    /// [`NeedleSet::may_match`] of `group` on the line `present` was made of.
    pub fn holds_in(&self, group: &Group, present: &Present) -> bool {
        group.any_empty
            || group
                .bits
                .iter()
                .zip(present.bits.iter())
                .any(|(g, p)| g & p != 0)
            || (group.any_folded && present.not_ascii && (group.any_folded_wide || present.lowers))
    }
}

/// Whether `line` holds a character whose `str.lower` holds an ASCII one: U+0130 or
/// U+212A (UTF-8), the only two beyond ASCII (module docs).
fn lowers_onto_ascii(line: &[u8]) -> bool {
    line.windows(2).any(|w| w == [0xc4, 0xb0]) || line.windows(3).any(|w| w == [0xe2, 0x84, 0xaa])
}

/// The needle groups verdicts name (index + 1; 0: none), each kept once.
#[derive(Default)]
pub struct Groups {
    groups: Vec<Group>,
    known: HashMap<(Vec<u32>, bool), u32>,
}

impl Groups {
    /// The number of the group of `ids` (sorted, without repeats), kept if new; `None`
    /// when [`MAX_GROUPS`] are kept (the caller clears them with the verdicts).
    pub fn intern(
        &mut self,
        set: &NeedleSet,
        ids: &[u32],
        empty_if_none: bool,
    ) -> Result<Option<u32>, &'static str> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let ids = (ids, empty_if_none);
        if let Some(&number) = self.known.get(&ids) {
            return Ok(Some(number));
        }
        let group = set.group(&ids.0, empty_if_none)?;
        if self.groups.len() >= MAX_GROUPS {
            return Ok(None);
        }
        self.groups.push(group);
        let number = self.groups.len() as u32;
        self.known.insert(ids, number);
        Ok(Some(number))
    }

    /// The group numbered `number` (not 0).
    pub fn get(&self, number: u32) -> Option<&Group> {
        self.groups.get((number as usize).checked_sub(1)?)
    }

    /// Forget every group.
    pub fn clear(&mut self) {
        self.groups.clear();
        self.known.clear();
    }
}

/// The command line of an exec from its EXECVE bodies (`bodies`: ranges of `buf`), as
/// `command_line_of(argv_of_execve_bodies(...))` builds it, into `line`; `false` (and
/// `line` unusable) when the bodies are not in the plain layout (module docs).
pub fn command_line(buf: &[u8], bodies: &[(usize, usize)], line: &mut Vec<u8>) -> bool {
    line.clear();
    let mut argc: Option<u64> = None;
    let mut next = 0u64;
    for &(start, end) in bodies {
        let body = &buf[start..end];
        if body.is_empty() {
            return false;
        }
        for field in body.split(|&b| b == b' ') {
            let eq = match field.iter().position(|&b| b == b'=') {
                Some(eq) => eq,
                None => return false,
            };
            let (name, value) = (&field[..eq], &field[eq + 1..]);
            match argc {
                None => {
                    if name != b"argc" {
                        return false;
                    }
                    argc = Some(match plain_number(value) {
                        Some(n) if n <= MAX_ARGS => n,
                        _ => return false,
                    });
                }
                Some(count) => {
                    if next >= count
                        || name.first() != Some(&b'a')
                        || plain_number(&name[1..]) != Some(next)
                    {
                        return false;
                    }
                    if next > 0 {
                        line.push(b' ');
                    }
                    if !push_value(value, line) {
                        return false;
                    }
                    next += 1;
                }
            }
        }
    }
    argc == Some(next)
}

/// A decimal number without sign or leading zeros (`0` itself allowed).
fn plain_number(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 9 || (text[0] == b'0' && text.len() > 1) {
        return None;
    }
    let mut n = 0u64;
    for &b in text {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n)
}

/// Append a plain argument value, decoded as `decode_untrusted` does: `"text"` of
/// printable ASCII without quotes, or upper-case hex of even length.
fn push_value(value: &[u8], line: &mut Vec<u8>) -> bool {
    if value.first() == Some(&b'"') {
        if value.len() < 2 || value[value.len() - 1] != b'"' {
            return false;
        }
        let inner = &value[1..value.len() - 1];
        if !inner
            .iter()
            .all(|&b| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\'')
        {
            return false;
        }
        line.extend_from_slice(inner);
        return true;
    }
    if value.is_empty() || value.len() % 2 != 0 {
        return false;
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    for pair in value.chunks(2) {
        match (digit(pair[0]), digit(pair[1])) {
            (Some(high), Some(low)) => line.push(high << 4 | low),
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(needles: &[(&str, bool)]) -> NeedleSet {
        let owned: Vec<(Vec<u8>, bool)> = needles
            .iter()
            .map(|(t, c)| (t.as_bytes().to_vec(), *c))
            .collect();
        NeedleSet::new(&owned)
    }

    fn all(set: &NeedleSet) -> Group {
        set.group(&(0..set.len() as u32).collect::<Vec<_>>(), false)
            .unwrap()
    }

    /// The plain definition: some needle of the group is a substring.
    fn naive(needles: &[(&str, bool)], ids: &[u32], line: &str) -> bool {
        ids.iter().any(|&id| {
            let (text, nocase) = needles[id as usize];
            if nocase {
                line.to_lowercase().contains(&text.to_lowercase())
            } else {
                line.contains(text)
            }
        })
    }

    #[test]
    fn one_pass_answers_every_group_as_may_match() {
        let needles = [
            ("-l", false),
            ("ls", true),
            ("", false),
            ("\u{e9}t\u{e9}", true),
            ("k", true),
            ("Zz", false),
            ("a-l", true),
        ];
        let s = set(&needles);
        let lines = [
            "ls -l",
            "LS -L",
            "",
            "x",
            "\u{c9}T\u{c9} zz",
            "\u{212a}",
            "\u{130}ls",
            "a-lZz k",
        ];
        let mut present = Present::default();
        for line in lines.iter() {
            s.present(line.as_bytes(), &mut present);
            for mask in 0u32..(1 << needles.len()) {
                let ids: Vec<u32> = (0..needles.len() as u32)
                    .filter(|i| mask & (1 << i) != 0)
                    .collect();
                for empty in [false, true] {
                    let group = s.group(&ids, empty).unwrap();
                    assert_eq!(
                        s.holds_in(&group, &present),
                        s.may_match(&group, line.as_bytes()),
                        "{:?} {:?}",
                        line,
                        ids
                    );
                }
            }
        }
    }

    #[test]
    fn finds_what_a_substring_search_finds() {
        let needles = [
            ("history", false),
            ("-c", false),
            ("he", false),
            ("she", false),
            ("hers", false),
            ("/dev/tcp/", true),
            ("base64", true),
            ("his", false),
        ];
        let s = set(&needles);
        let lines = [
            "bash -c ls",
            "ushers",
            "cat /DEV/TCP/1.2.3.4",
            "echo BASE64 -d",
            "h i s t o r y",
            "histor",
            "",
            "this",
            "abc",
        ];
        for ids in [
            vec![0u32, 1, 2, 3, 4, 5, 6, 7],
            vec![0],
            vec![3, 5],
            vec![7],
            vec![],
        ] {
            let group = s.group(&ids, false).unwrap();
            for line in lines {
                assert_eq!(
                    s.may_match(&group, line.as_bytes()),
                    naive(&needles, &ids, line),
                    "{:?} in {:?}",
                    ids,
                    line
                );
            }
        }
    }

    #[test]
    fn folded_needles_on_lines_beyond_ascii_are_maybe() {
        let s = set(&[("k", true), ("x", false)]);
        let folded = s.group(&[0], false).unwrap();
        let exact = s.group(&[1], false).unwrap();
        // "\u{212a}" (Kelvin sign) lower-cases to "k" in Python.
        assert!(s.may_match(&folded, "\u{212a}".as_bytes()));
        assert!(!s.may_match(&exact, "\u{212a}".as_bytes()));
        assert!(!s.may_match(&folded, b"abc"));
        assert!(s.may_match(&folded, b"ABK"));
        // U+0130 lower-cases to "i" and U+0307.
        let s = set(&[("ix", true), ("\u{e9}t\u{e9}", true), ("x", false)]);
        let ascii = s.group(&[0], false).unwrap();
        assert!(s.may_match(&ascii, "\u{130}x".as_bytes()));
        assert!(s.may_match(&ascii, "a\u{130}".as_bytes()));
        // Other characters beyond ASCII: the ASCII ones are folded as Python folds them.
        assert!(!s.may_match(&ascii, "r\u{e9}sum\u{e9} I X".as_bytes()));
        assert!(s.may_match(&ascii, "r\u{e9}sum\u{e9} IX".as_bytes()));
        assert!(s.may_match(&ascii, "\u{c9}IX".as_bytes()));
        assert!(!s.may_match(&ascii, "I\u{e9}X".as_bytes()));
        assert!(
            !s.may_match(&ascii, b"I\xffX"),
            "an undecodable byte between"
        );
        assert!(s.may_match(&ascii, b"\xffiX\xfe"));
        // A case-insensitive needle beyond ASCII: any line beyond ASCII is maybe.
        let wide = s.group(&[1], false).unwrap();
        assert!(s.may_match(&wide, "caf\u{e9}".as_bytes()));
        assert!(!s.may_match(&wide, b"cafe"));
    }

    #[test]
    fn an_empty_needle_is_everywhere() {
        let s = set(&[("", false), ("zz", false)]);
        assert!(s.may_match(&s.group(&[0], false).unwrap(), b""));
        assert!(!s.may_match(&s.group(&[1], false).unwrap(), b"z"));
        assert!(s.may_match(&all(&s), b"q"));
    }

    #[test]
    fn the_wire_form() {
        let mut blob = vec![1u8, 2, 0, 0, 0];
        blob.extend_from_slice(b"AB");
        blob.extend_from_slice(&[0, 0, 0, 0, 0]);
        let s = NeedleSet::parse(&blob).unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.may_match(&s.group(&[0], false).unwrap(), b"xab"));
        assert!(s.may_match(&s.group(&[1], false).unwrap(), b""));
        assert!(NeedleSet::parse(&[2, 0, 0, 0, 0]).is_err());
        assert!(NeedleSet::parse(&[0, 5, 0, 0, 0, b'a']).is_err());
        assert!(NeedleSet::parse(&[0, 0, 0]).is_err());
        assert!(s.group(&[2], false).is_err());
    }

    #[test]
    fn groups_are_kept_once_and_bounded() {
        let s = set(&[("a", false), ("b", false)]);
        let mut groups = Groups::default();
        let one = groups.intern(&s, &[1, 0, 1], false).unwrap().unwrap();
        assert_eq!(groups.intern(&s, &[0, 1], false).unwrap(), Some(one));
        let two = groups.intern(&s, &[0, 1], true).unwrap().unwrap();
        assert_ne!(one, two);
        assert_eq!(groups.get(one), Some(&s.group(&[0, 1], false).unwrap()));
        assert!(groups.get(two).unwrap().empty_if_none);
        assert!(groups.get(0).is_none());
        assert!(groups.intern(&s, &[7], false).is_err());
        let big = set(&vec![("x", false); MAX_GROUPS + 1]);
        let mut groups = Groups::default();
        for id in 0..MAX_GROUPS as u32 {
            assert!(groups.intern(&big, &[id], false).unwrap().is_some());
        }
        assert_eq!(
            groups.intern(&big, &[MAX_GROUPS as u32], false).unwrap(),
            None
        );
        groups.clear();
        assert!(groups.get(1).is_none());
    }

    fn line_of(bodies: &[&str]) -> Option<String> {
        let mut buf = Vec::new();
        let mut ranges = Vec::new();
        for body in bodies {
            let start = buf.len();
            buf.extend_from_slice(body.as_bytes());
            ranges.push((start, buf.len()));
            buf.push(b'\n');
        }
        let mut line = Vec::new();
        if command_line(&buf, &ranges, &mut line) {
            Some(String::from_utf8(line).unwrap())
        } else {
            None
        }
    }

    #[test]
    fn the_command_line_of_plain_bodies() {
        assert_eq!(
            line_of(&["argc=3 a0=\"ls\" a1=\"-l\" a2=2F746D7020782E74787420"]).as_deref(),
            Some("ls -l /tmp x.txt ")
        );
        assert_eq!(
            line_of(&["argc=2 a0=\"a\"", "a1=\"\""]).as_deref(),
            Some("a ")
        );
        assert_eq!(line_of(&["argc=0"]).as_deref(), Some(""));
        for odd in [
            &["argc=2 a0=\"a\""][..],
            &["argc=1 a0=\"a\" a1=\"b\""],
            &["argc=1 a1=\"a\""],
            &["argc=1 a00=\"a\""],
            &["argc=01 a0=\"a\""],
            &["a0=\"a\" argc=1"],
            &["argc=1 a0=6a"],
            &["argc=1 a0=ABC"],
            &["argc=1 a0="],
            &["argc=1 a0=\"a b\""],
            &["argc=1 a0=\"a"],
            &["argc=1 a0_len=4 a0[0]=\"ab\""],
            &["argc=1  a0=\"a\""],
            &["argc=1 a0=\"a\"", ""],
            &["argc=1 a0=(null)"],
            &["argc=9999999999"],
            &[],
        ] {
            assert_eq!(line_of(odd), None, "{:?}", odd);
        }
    }
}
