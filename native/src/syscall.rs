//! The first line of a syscall event, read as `SYSCALL_HEAD` (kexecwatch/core/scan/fastpath.py)
//! reads it: the kernel's canonical `SYSCALL` layout, no `node=`, no NUL, up to `key=`,
//! then the end of the line or the ENRICHED separator (`\x1d`).
//!
//! Every element of that regular expression is a fixed literal, a bounded run of one
//! character class followed by a literal the class excludes, or an optional group
//! whose first characters decide it; so it never backtracks, and reading it left to
//! right with a cursor accepts exactly the lines it matches.

use crate::lines::starts;

/// A byte range of the line.
pub type Span = (usize, usize);

/// The groups of a `SYSCALL_HEAD` match the scanner needs (offsets into the line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyscallHead {
    /// `sec.mmm:serial` as written.
    pub id: Span,
    pub sec: Span,
    pub ms: Span,
    pub serial: Span,
    /// `arch=… syscall=…`.
    pub call: Span,
    pub success: Span,
    pub exit: Span,
    pub ppid: Span,
    pub pid: Span,
    pub comm: Span,
    pub exe: Span,
    /// From `auid=` up to (not including) ` comm=`: the `extra` of an exec's entry.
    pub creds: Span,
}

struct Cursor<'a> {
    line: &'a [u8],
    at: usize,
}

const DIGIT: u8 = 1;
const HEX: u8 = 2;
const TOKEN: u8 = 4;

/// Each byte's classes (one table lookup per byte instead of comparisons).
static CLASSES: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        let mut class = 0;
        if byte.is_ascii_digit() {
            class |= DIGIT | HEX;
        }
        if byte >= b'a' && byte <= b'f' {
            class |= HEX;
        }
        // `_TOKEN` of fastpath.py: `[^ "\x1d\n\x00]`.
        if !matches!(byte, b' ' | b'"' | 0x1d | b'\n' | 0) {
            class |= TOKEN;
        }
        table[b] = class;
        b += 1;
    }
    table
}

impl<'a> Cursor<'a> {
    #[inline(always)]
    fn literal(&mut self, text: &[u8]) -> Option<()> {
        if starts(&self.line[self.at..], text) {
            self.at += text.len();
            Some(())
        } else {
            None
        }
    }

    fn peek(&self, text: &[u8]) -> bool {
        starts(&self.line[self.at..], text)
    }

    /// A maximal run of `class`, `min..=max` long.
    #[inline(always)]
    fn run(&mut self, class: u8, min: usize, max: usize) -> Option<Span> {
        let start = self.at;
        let len = self.line[start..]
            .iter()
            .position(|&b| CLASSES[b as usize] & class == 0)
            .unwrap_or(self.line.len() - start);
        if len < min || len > max {
            return None;
        }
        self.at += len;
        Some((start, self.at))
    }

    #[inline(always)]
    fn digits(&mut self, min: usize, max: usize) -> Option<Span> {
        self.run(DIGIT, min, max)
    }

    /// `NAME=[0-9]+ ` for each name.
    #[inline(always)]
    fn numbers(&mut self, names: &[&str]) -> Option<()> {
        for name in names {
            self.literal(name.as_bytes())?;
            self.literal(b"=")?;
            self.digits(1, usize::MAX)?;
            self.literal(b" ")?;
        }
        Some(())
    }

    /// `_VALUE`: `"[^"\n\x1d\x00]*"` or `[^ "\x1d\n\x00]+`.
    fn value(&mut self) -> Option<Span> {
        let start = self.at;
        if self.peek(b"\"") {
            let rest = &self.line[start + 1..];
            let len = rest
                .iter()
                .position(|&b| matches!(b, b'"' | b'\n' | 0x1d | 0))?;
            if rest[len] != b'"' {
                return None;
            }
            self.at = start + len + 2;
            Some((start, self.at))
        } else {
            self.run(TOKEN, 1, usize::MAX)
        }
    }
}

/// Read `line` (no newline) as `SYSCALL_HEAD` does; `None` when it would not match.
pub fn parse(line: &[u8]) -> Option<SyscallHead> {
    let mut c = Cursor { line, at: 0 };
    c.literal(b"type=SYSCALL msg=audit(")?;
    let sec = c.digits(1, 20)?;
    c.literal(b".")?;
    let ms = c.digits(3, 3)?;
    c.literal(b":")?;
    let serial = c.digits(1, 20)?;
    let id = (sec.0, serial.1);
    c.literal(b"): ")?;
    let call_start = c.at;
    c.literal(b"arch=")?;
    c.run(HEX, 1, 8)?;
    c.literal(b" syscall=")?;
    c.digits(1, 6)?;
    let call = (call_start, c.at);
    c.literal(b" ")?;
    if c.peek(b"per=") {
        c.literal(b"per=")?;
        c.run(HEX, 1, usize::MAX)?;
        c.literal(b" ")?;
    }
    c.literal(b"success=")?;
    let success = if c.peek(b"yes") {
        (c.at, c.at + 3)
    } else if c.peek(b"no") {
        (c.at, c.at + 2)
    } else {
        return None;
    };
    c.at = success.1;
    c.literal(b" exit=")?;
    let exit_start = c.at;
    if c.peek(b"-") {
        c.at += 1;
    }
    c.digits(1, 20)?;
    let exit = (exit_start, c.at);
    c.literal(b" ")?;
    for name in [b"a0=", b"a1=", b"a2=", b"a3="] {
        c.literal(name)?;
        c.run(HEX, 1, usize::MAX)?;
        c.literal(b" ")?;
    }
    c.numbers(&["items"])?;
    c.literal(b"ppid=")?;
    let ppid = c.digits(1, 10)?;
    c.literal(b" pid=")?;
    let pid = c.digits(1, 10)?;
    c.literal(b" ")?;
    let creds_start = c.at;
    c.numbers(&[
        "auid", "uid", "gid", "euid", "suid", "fsuid", "egid", "sgid", "fsgid",
    ])?;
    c.literal(b"tty=")?;
    c.run(TOKEN, 1, usize::MAX)?;
    c.literal(b" ")?;
    c.numbers(&["ses"])?;
    let creds = (creds_start, c.at - 1);
    c.literal(b"comm=")?;
    let comm = c.value()?;
    c.literal(b" exe=")?;
    let exe = c.value()?;
    c.literal(b" ")?;
    if c.peek(b"subj=") {
        c.literal(b"subj=")?;
        c.run(TOKEN, 1, usize::MAX)?;
        c.literal(b" ")?;
    }
    c.literal(b"key=")?;
    c.value()?;
    if c.at != line.len() && line[c.at] != 0x1d {
        return None;
    }
    Some(SyscallHead {
        id,
        sec,
        ms,
        serial,
        call,
        success,
        exit,
        ppid,
        pid,
        comm,
        exe,
        creds,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const LINE: &[u8] = b"type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e syscall=59 \
success=yes exit=0 a0=55d5 a1=55d6 a2=55d7 a3=0 items=2 ppid=100 pid=101 auid=1000 uid=1000 \
gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 \
comm=\"ls\" exe=\"/usr/bin/ls\" subj=unconfined key=(null)";

    fn text(line: &[u8], span: Span) -> &[u8] {
        &line[span.0..span.1]
    }

    #[test]
    fn reads_the_groups() {
        let head = parse(LINE).unwrap();
        assert_eq!(text(LINE, head.id), b"1700000000.123:42");
        assert_eq!(text(LINE, head.sec), b"1700000000");
        assert_eq!(text(LINE, head.ms), b"123");
        assert_eq!(text(LINE, head.serial), b"42");
        assert_eq!(text(LINE, head.call), b"arch=c000003e syscall=59");
        assert_eq!(text(LINE, head.success), b"yes");
        assert_eq!(text(LINE, head.exit), b"0");
        assert_eq!(text(LINE, head.ppid), b"100");
        assert_eq!(text(LINE, head.pid), b"101");
        assert_eq!(text(LINE, head.comm), b"\"ls\"");
        assert_eq!(text(LINE, head.exe), b"\"/usr/bin/ls\"");
        assert!(text(LINE, head.creds).starts_with(b"auid=1000 uid="));
        assert!(text(LINE, head.creds).ends_with(b"tty=pts0 ses=3"));
    }

    fn with(from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = crate::lines::find(LINE, from).unwrap();
        let mut out = LINE[..at].to_vec();
        out.extend_from_slice(to);
        out.extend_from_slice(&LINE[at + from.len()..]);
        out
    }

    #[test]
    fn accepts_the_optional_and_enriched_forms() {
        assert!(parse(&with(b"subj=unconfined ", b"")).is_some());
        assert!(parse(&with(b"success=", b"per=400000 success=")).is_some());
        assert!(parse(&with(b"exit=0", b"exit=-2")).is_some());
        assert!(parse(&with(b"comm=\"ls\"", b"comm=6C73")).is_some());
        assert!(parse(&with(b"key=(null)", b"key=\"k\"")).is_some());
        let mut enriched = LINE.to_vec();
        enriched.extend_from_slice(b"\x1dARCH=x86_64 SYSCALL=execve\r");
        assert!(parse(&enriched).is_some());
        assert!(parse(&with(b"tty=pts0", b"tty=(none)")).is_some());
    }

    #[test]
    fn refuses_what_the_regex_refuses() {
        let refused: [(&[u8], &[u8]); 16] = [
            (b"type=SYSCALL", b"node=a type=SYSCALL"),
            (b".123:", b".12:"),
            (b".123:", b".1234:"),
            (b"1700000000.", b"123456789012345678901."),
            (b"arch=c000003e", b"arch=C000003E"),
            (b"arch=c000003e", b"arch=c000003e0"),
            (b"syscall=59", b"syscall=1234567"),
            (b"success=yes", b"success=maybe"),
            (b"ppid=100", b"ppid=12345678901"),
            (b"comm=\"ls\"", b"comm=\"l\"s\""),
            (b"comm=\"ls\"", b"comm=\"ls"),
            (b"exe=\"/usr/bin/ls\"", b"exe="),
            (b"subj=unconfined", b"subj=\"x\""),
            (b"key=(null)", b"key=(null) extra=1"),
            (b"uid=1000", b"uid=-1"),
            (b"items=2 ", b"items=2  "),
        ];
        for (from, to) in refused.iter() {
            assert!(
                parse(&with(from, to)).is_none(),
                "{:?}",
                String::from_utf8_lossy(to)
            );
        }
        let mut nul = LINE.to_vec();
        nul.insert(nul.len() - 2, 0);
        assert!(parse(&nul).is_none());
        // The key's token takes a carriage return, as the regex does (the scanner
        // hands lines with one back before they get here).
        let mut trailing_return = LINE.to_vec();
        trailing_return.push(b'\r');
        assert!(parse(&trailing_return).is_some());
    }
}
