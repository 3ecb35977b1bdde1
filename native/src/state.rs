//! The process table's snapshot rows as JSON text, for the daemon's checkpoint.
//!
//! `NativeProcessTable.to_state` (kexecwatch/core/process/nativetable.py) makes a row
//! of each entry, `[pid, ppid, comm, exe, argv, since_ms, exec_id, source, extra]`
//! (`state_row_of` in table.py: bytes as latin-1 text, an exec id as `str(EventId)`
//! spells it), and the checkpoint writes the rows with
//! `json.dumps(..., separators=(",", ":"), ensure_ascii=True)`. Every few seconds,
//! 4,096 rows of it: this module writes those same bytes in one pass.
//!
//! A conservative filter again: a row is written here only when each of its values has
//! one certain text; an entry whose raw argv is off the kernel's layout
//! ([`render::argv_of_bodies`]), whose exec id is not spelled canonically, or whose
//! source is not ASCII goes to Python as its wire entry.

use crate::entry::Entry;
use crate::render::{argv_of_joined, decode_untrusted};

/// A segment of [`state_rows`]' output holding JSON rows joined by `,`.
pub const SEGMENT_JSON: u8 = 0;
/// A segment holding one entry's wire form (Python makes its row).
pub const SEGMENT_ENTRY: u8 = 1;

/// The snapshot rows of `rows`, in order, as segments: a tag byte
/// ([`SEGMENT_JSON`] or [`SEGMENT_ENTRY`]), a u32 little-endian length, the payload.
/// Consecutive rows written here share one JSON segment.
pub fn state_rows(rows: &[&Entry], out: &mut Vec<u8>) {
    let mut open: Option<usize> = None; // where the open JSON segment's length goes
    for entry in rows {
        let mark = out.len();
        if let Some(at) = open {
            out.push(b',');
            if json_row(entry, out) {
                continue;
            }
            out.truncate(mark);
            close(out, at);
            open = None;
        } else {
            out.push(SEGMENT_JSON);
            out.extend_from_slice(&[0; 4]);
            if json_row(entry, out) {
                open = Some(mark + 1);
                continue;
            }
            out.truncate(mark);
        }
        out.push(SEGMENT_ENTRY);
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        entry.encode(out);
        close(out, len_at);
    }
    if let Some(at) = open {
        close(out, at);
    }
}

/// Write the length of the segment whose length field is at `at`.
fn close(out: &mut [u8], at: usize) {
    // A table holds at most max_entries rows of lines of a scanned buffer; one
    // segment cannot reach 4 GiB.
    let len = u32::try_from(out.len() - at - 4).unwrap_or(u32::MAX);
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// `entry`'s row as JSON; false (with `out` partly written) when Python must make it.
fn json_row(entry: &Entry, out: &mut Vec<u8>) -> bool {
    out.push(b'[');
    int(out, entry.pid());
    out.push(b',');
    match entry.ppid() {
        Some(ppid) => int(out, ppid),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b',');
    text_value(out, entry.comm());
    out.push(b',');
    text_value(out, entry.exe());
    out.push(b',');
    match entry.args_segment() {
        None => out.extend_from_slice(b"null"),
        Some(stored) if entry.args_are_argv() => {
            if !argv_items(out, stored) {
                return false;
            }
        }
        Some(raw) => match argv_of_joined(raw) {
            Some(argv) => {
                out.push(b'[');
                for (i, arg) in argv.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    latin1(out, arg);
                }
                out.push(b']');
            }
            None => return false,
        },
    }
    out.push(b',');
    int(out, entry.since_ms());
    out.push(b',');
    match entry.exec_id() {
        None => out.extend_from_slice(b"null"),
        Some(id) if canonical_id(id) => {
            out.push(b'"');
            out.extend_from_slice(id);
            out.push(b'"');
        }
        Some(_) => return false,
    }
    out.push(b',');
    let source = entry.source();
    if !source.is_ascii() {
        return false; // UTF-8 text in Python, not latin-1
    }
    latin1(out, source);
    out.push(b',');
    match entry.extra() {
        Some(extra) => latin1(out, extra),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b']');
    true
}

fn int(out: &mut Vec<u8>, value: i128) {
    out.extend_from_slice(value.to_string().as_bytes());
}

/// A comm or exe: a raw one is decoded as `decode_untrusted` decodes it.
fn text_value(out: &mut Vec<u8>, value: Option<(&[u8], bool)>) {
    match value {
        None => out.extend_from_slice(b"null"),
        Some((raw, true)) => match decode_untrusted(raw) {
            Some(decoded) => latin1(out, &decoded),
            None => out.extend_from_slice(b"null"),
        },
        Some((text, false)) => latin1(out, text),
    }
}

/// Decoded argv items, (u32 little-endian length, bytes) each, as a JSON list; false
/// when they do not fill `stored` exactly.
fn argv_items(out: &mut Vec<u8>, stored: &[u8]) -> bool {
    out.push(b'[');
    let mut at = 0;
    let mut first = true;
    while at < stored.len() {
        let head = match stored.get(at..at + 4) {
            Some(head) => head,
            None => return false,
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let item = match stored.get(at + 4..at + 4 + len) {
            Some(item) => item,
            None => return false,
        };
        if !first {
            out.push(b',');
        }
        first = false;
        latin1(out, item);
        at += 4 + len;
    }
    out.push(b']');
    true
}

/// `bytes.decode("latin-1")` written by `json.dumps(..., ensure_ascii=True)`.
pub fn latin1(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut copied = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x20..=0x7e => continue,
            _ => b"",
        };
        out.extend_from_slice(&bytes[copied..i]);
        copied = i + 1;
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(DIGITS[usize::from(b >> 4)]);
            out.push(DIGITS[usize::from(b & 15)]);
        } else {
            out.extend_from_slice(short);
        }
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

/// Whether `id` is an audit id as `str(EventId)` spells it: `(0|[1-9][0-9]*)` `.`
/// three digits `:` `(0|[1-9][0-9]*)` (`_CANONICAL_ID` of table.py).
pub fn canonical_id(id: &[u8]) -> bool {
    fn number(part: &[u8]) -> bool {
        !part.is_empty()
            && part.iter().all(u8::is_ascii_digit)
            && (part.len() == 1 || part[0] != b'0')
    }
    let dot = match id.iter().position(|&b| b == b'.') {
        Some(dot) => dot,
        None => return false,
    };
    let rest = &id[dot + 1..];
    rest.len() > 4
        && rest[..3].iter().all(u8::is_ascii_digit)
        && rest[3] == b':'
        && number(&id[..dot])
        && number(&rest[4..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::ArgsIn;

    fn entry(args: ArgsIn<'_>, exec_id: Option<&[u8]>) -> Entry {
        Entry::new(
            42,
            Some(1),
            1_700_000_000_123,
            Some((b"\"ls\"", true)),
            Some((b"/bin/ls", false)),
            args,
            exec_id,
            Some(b"auid=0 \xe9"),
        )
    }

    fn segments(out: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut found = Vec::new();
        let mut at = 0;
        while at < out.len() {
            let len = u32::from_le_bytes([out[at + 1], out[at + 2], out[at + 3], out[at + 4]]);
            let end = at + 5 + len as usize;
            found.push((out[at], out[at + 5..end].to_vec()));
            at = end;
        }
        found
    }

    #[test]
    fn rows_as_python_writes_them() {
        let e = entry(
            ArgsIn::Raw(b"argc=2 a0=\"ls\" a1=2D6C"),
            Some(b"1700000000.123:7"),
        );
        let mut out = Vec::new();
        state_rows(&[&e, &e], &mut out);
        let row = "[42,1,\"ls\",\"/bin/ls\",[\"ls\",\"-l\"],1700000000123,\
                   \"1700000000.123:7\",\"event\",\"auid=0 \\u00e9\"]";
        assert_eq!(
            segments(&out),
            vec![(SEGMENT_JSON, format!("{},{}", row, row).into_bytes())]
        );
    }

    #[test]
    fn unsure_rows_go_to_python_between_json_runs() {
        let good = entry(ArgsIn::Unknown, None);
        let odd_id = entry(ArgsIn::Unknown, Some(b"01.123:7"));
        let odd_args = entry(ArgsIn::Raw(b"argc=2 a0=\"ls\""), None);
        let mut out = Vec::new();
        state_rows(&[&odd_id, &good, &odd_args, &good], &mut out);
        let kinds: Vec<u8> = segments(&out).iter().map(|s| s.0).collect();
        assert_eq!(
            kinds,
            vec![SEGMENT_ENTRY, SEGMENT_JSON, SEGMENT_ENTRY, SEGMENT_JSON]
        );
        let mut wire = Vec::new();
        odd_id.encode(&mut wire);
        assert_eq!(segments(&out)[0].1, wire);
    }

    #[test]
    fn escapes_as_json_dumps_with_ensure_ascii() {
        let mut out = Vec::new();
        latin1(&mut out, b"a\"b\\c\n\r\t\x08\x0c\x01\x7f\xff ~");
        assert_eq!(
            out,
            b"\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u007f\\u00ff ~\"".to_vec()
        );
    }

    #[test]
    fn canonical_ids() {
        for good in [&b"0.000:0"[..], b"1700000000.123:7", b"5.999:10"] {
            assert!(canonical_id(good), "{:?}", good);
        }
        for bad in [
            &b"01.123:7"[..],
            b"1.12:7",
            b"1.1234:7",
            b"1.123:07",
            b"1.123:",
            b".123:7",
            b"1.123-7",
            b"1",
        ] {
            assert!(!canonical_id(bad), "{:?}", bad);
        }
    }
}
