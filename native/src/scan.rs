//! The scan: from a line start, take the events whose effect on a quiet detector is
//! known exactly (the contract's "What native may take"), and stop at the first
//! thing that is not, handing its position back to Python.
//!
//! Taken: whole syscall runs as `SYSCALL_HEAD` + `run_end` read them (with an `EOE`
//! of the same id right after, absorbed), two interleaved whole runs as
//! `split_pair` reads them (A's bare `EOE` after A's end passed over, B's `EOE` right
//! after absorbed), single-record events of the types Python names, a `LOGIN`
//! record with the whole run of its own syscall right after it (two events) or
//! alone (named by Python; reported in `leads`, as the assembler remembers it), blank
//! and `#` lines. Each event must be plain progress of the clock (gaps.rs), have a
//! cached verdict that needs nothing of Python, and (live) a known parent.

use crate::entry::{ArgsIn, Entry};
use crate::gaps::{EventId, Quiet};
use crate::lines::{find, find_byte, line_end, starts};
use crate::needles::command_line;
use crate::parent;
use crate::plain::{self as plain_facts, RunFacts, MAX_PLAIN_KEY};
use crate::render::{self, RunParts};
use crate::session::{ScanOut, Session, Stop, DONE_KEPT};
use crate::syscall::{self, Span, SyscallHead};
use crate::table::Table;
use crate::verdicts::{
    Hit, Plain, Verdicts, EVALUATED, INODE_ALWAYS, INODE_IF_RELEVANT, LEARN_EXEC, LEARN_FORK,
    LEARN_MASK, LEARN_OTHER, NEEDLE_IF_RELEVANT, NEED_ALWAYS, NEED_IF_RELEVANT,
};

/// `MIDDLE_TYPES` of fastpath.py.
const MIDDLE: [&[u8]; 6] = [
    b"PATH",
    b"CWD",
    b"BPRM_FCAPS",
    b"SOCKADDR",
    b"FD_PAIR",
    b"OBJ_PID",
];
/// The longest unit (run, pair or record) taken: an entry's segments are measured in
/// u32, and nothing sane comes near (lines reach the detector at most 1 MiB long).
const MAX_UNIT: usize = 1 << 30;
/// `PAIR_MAX_LINES` of fastpath.py.
const PAIR_MAX_LINES: usize = 48;
const MSG: &[u8] = b" msg=audit(";

/// How a step ended: the offset of the next line, or a stop at the current one.
type Step = Result<usize, Stop>;

/// A record line's type: the text between `type=` and the first space, and the
/// offset (in the line) of that space; `None` when the line is not `type=X ...`.
fn record_type(line: &[u8], within: usize) -> Option<(&[u8], usize)> {
    if !starts(line, b"type=") {
        return None;
    }
    let window = &line[..line.len().min(within)];
    let space = window.iter().position(|&b| b == b' ')?;
    Some((line.get(5..space)?, space))
}

/// Whether `line` goes on at `at` with ` msg=audit(<id>):`.
fn tagged(line: &[u8], at: usize, id: &[u8]) -> bool {
    let rest = &line[at..];
    starts(rest, MSG)
        && starts(&rest[MSG.len()..], id)
        && starts(&rest[MSG.len() + id.len()..], b"):")
}

fn number(text: &[u8]) -> i128 {
    // At most 20 digits and a sign (the parser's bounds): always fits.
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let value = digits
        .iter()
        .fold(0i128, |n, &d| n * 10 + i128::from(d - b'0'));
    if negative {
        -value
    } else {
        value
    }
}

fn span(buf: &[u8], s: Span) -> &[u8] {
    &buf[s.0..s.1]
}

fn shift(head: SyscallHead, by: usize) -> SyscallHead {
    let m = |s: Span| (s.0 + by, s.1 + by);
    SyscallHead {
        id: m(head.id),
        sec: m(head.sec),
        ms: m(head.ms),
        serial: m(head.serial),
        call: m(head.call),
        success: m(head.success),
        exit: m(head.exit),
        ppid: m(head.ppid),
        pid: m(head.pid),
        comm: m(head.comm),
        exe: m(head.exe),
        creds: m(head.creds),
    }
}

/// The id of `sec.mmm:serial` digits, when it fits what is taken (serial in i64,
/// time in i64; anything larger is no plain time anyway).
fn event_id(buf: &[u8], sec: Span, ms: Span, serial: Span) -> Option<EventId> {
    let sec = i64::try_from(number(span(buf, sec))).ok()?;
    let ms = i64::try_from(number(span(buf, ms))).ok()?;
    let serial = i64::try_from(number(span(buf, serial))).ok()?;
    let time_ms = sec.checked_mul(1000)?.checked_add(ms)?;
    Some(EventId {
        sec,
        ms,
        serial,
        time_ms,
    })
}

/// A syscall event about to be taken (offsets into the scanned buffer).
struct Event {
    head: SyscallHead,
    id: EventId,
    code: u8,
    /// The verdict's needle group (0: none).
    group: u32,
    /// The tests behind the verdict's gate (0: none; verdicts.rs `set_tests`).
    tests: u32,
    /// What the verdict's plain parts read, if it has some (plain.rs).
    plain: Plain,
    relevant: bool,
}

/// A whole run found by `Scanner::whole`, not taken yet.
struct Whole {
    head: SyscallHead,
    /// Just past its EXECVE lines.
    args_end: usize,
    /// Just past its PROCTITLE line.
    end: usize,
    /// Just past an `EOE` of its id right after (absorbed), else `end`.
    next: usize,
    /// Its lines, the absorbed `EOE` included.
    lines: u64,
}

/// The facts of the whole run at `pos` that plain, full and guard keys are made of
/// (plain.rs), the parent's entry taken from `table` at the run's time.
fn run_facts<'a>(
    buf: &'a [u8],
    table: &'a Table,
    pos: usize,
    whole: &Whole,
    event: &Event,
) -> RunFacts<'a> {
    let head = &event.head;
    RunFacts {
        verdict_key: [
            span(buf, head.call),
            span(buf, head.success),
            span(buf, head.comm),
            span(buf, head.exe),
        ],
        parent: table.entry_at(number(span(buf, head.ppid)), i128::from(event.id.time_ms)),
        run: &buf[pos..whole.end],
        args_end: whole.args_end - pos,
        id: span(buf, head.id),
        ids: span(buf, head.creds),
    }
}

/// The record type that may open a syscall's own event as a single record
/// (`LEADS_SYSCALL_EVENT` of msgtypes.py).
const LEAD: &[u8] = b"LOGIN";
/// `_RESET_BACKSTEP` of assembler.py: a serial this far behind the expected one
/// starts a new sequence.
const RESET_BACKSTEP: i64 = 1_000;

/// The part of a session a scan works with.
struct Scanner<'a> {
    buf: &'a [u8],
    session: &'a mut Session,
    quiet: Quiet,
    out: ScanOut,
    /// The id (sec, ms, serial) of the last event this scan took, or (at the start)
    /// the scans before took and the done store still holds: done for sure. None
    /// after a lone LOGIN (its EOE ends the lead: not a late EOE).
    last: Option<(i64, i64, i64)>,
    /// Stop once the latest time taken reaches this (`Stop::Due`).
    due_ms: i64,
}

/// `due_ms` of a scan that never stops for a sequence's deadline.
pub const NEVER_DUE: i64 = i64::MAX;

/// Scan `buf` from `start` (a line start) for a detector in the quiet state `quiet`;
/// the result is left in `session.scan`, and the state after it is returned.
pub fn scan(session: &mut Session, buf: &[u8], start: usize, quiet: Quiet) -> Quiet {
    scan_until(session, buf, start, quiet, NEVER_DUE)
}

/// [`scan`], stopping with `Stop::Due` right after the first unit whose events bring
/// the latest time taken to `due_ms` or beyond: there a sequence rule's deadline may
/// have passed, and the Python path matches due sequences after that very event. (A
/// pair whose first event would reach it is handed back: Python matches between the
/// two events' own work.)
pub fn scan_until(
    session: &mut Session,
    buf: &[u8],
    start: usize,
    quiet: Quiet,
    due_ms: i64,
) -> Quiet {
    let mut out = std::mem::take(&mut session.scan);
    out.key.clear();
    out.done.clear();
    out.leads.clear();
    out.lost.clear();
    out.ahead.clear();
    out.ppid = 0;
    out.time_ms = 0;
    out.lines = 0;
    out.records = 0;
    out.events = 0;
    out.process_events = 0;
    out.last_time_ms = 0;
    session.render.out.clear();
    // The last event the scans before took, while the done set still holds it (the
    // store is the assembler's done set for them): its late EOE is as harmless here.
    let last = session.last_taken.filter(|&(sec, ms, serial)| {
        session.done.keeping && session.done.contains(sec, ms, serial)
    });
    let mut scanner = Scanner {
        buf,
        session,
        quiet,
        out,
        last,
        due_ms,
    };
    let mut pos = start.min(buf.len());
    let stop = loop {
        if pos >= buf.len() {
            break Stop::End;
        }
        let events = scanner.out.events;
        match scanner.step(pos) {
            Ok(next) => pos = next,
            Err(stop) => break stop,
        }
        if scanner.out.done.len() >= 8 * DONE_KEPT {
            scanner.out.done.drain(..4 * DONE_KEPT);
        }
        if scanner.out.leads.len() >= 6 * DONE_KEPT {
            scanner.out.leads.drain(..3 * DONE_KEPT);
        }
        if scanner.out.events > events && scanner.out.last_time_ms >= due_ms {
            break Stop::Due;
        }
    };
    let Scanner {
        session,
        quiet,
        mut out,
        last,
        ..
    } = scanner;
    session.last_taken = last;
    if out.done.len() > 4 * DONE_KEPT {
        let excess = out.done.len() - 4 * DONE_KEPT;
        out.done.drain(..excess);
    }
    // A lead matters only while its event is done: the last DONE_KEPT events at most.
    if out.leads.len() > 3 * DONE_KEPT {
        let excess = out.leads.len() - 3 * DONE_KEPT;
        out.leads.drain(..excess);
    }
    out.end = pos;
    out.stop = stop as i32;
    out.state = [
        quiet.present,
        quiet.elapsed,
        quiet.expected,
        quiet.last_time_ms,
        quiet.done_ceiling,
    ];
    if session.ahead_rows_wanted {
        quiet.ahead_rows(&mut out.ahead);
    }
    session.scan = out;
    quiet
}

impl<'a> Scanner<'a> {
    fn step(&mut self, pos: usize) -> Step {
        let buf = self.buf;
        let (nl, bad) = line_end(buf, pos);
        let nl = nl.ok_or(Stop::Handback)?;
        let line = &buf[pos..nl];
        if line.is_empty()
            || line[0] == b'#'
            || line
                .iter()
                .all(|&b| matches!(b, b' ' | b'\t' | b'\r' | 0x0b | 0x0c))
        {
            self.out.lines += 1;
            return Ok(nl + 1);
        }
        if bad {
            return Err(Stop::Handback);
        }
        if starts(line, b"type=SYSCALL ") {
            self.run(pos, nl)
        } else if self.late_eoe(line) {
            // The EOE of a done event (push() drops it): a line and a record. After a
            // run at the end of a block, the next block starts with it.
            self.out.lines += 1;
            self.out.records += 1;
            Ok(nl + 1)
        } else {
            self.single(pos, nl)
        }
    }

    /// A whole run from the SYSCALL line at `pos` (ending at `nl`), or a pair.
    fn run(&mut self, pos: usize, nl: usize) -> Step {
        let head = match syscall::parse(&self.buf[pos..nl]) {
            Some(head) => shift(head, pos),
            None => return Err(Stop::Handback),
        };
        match self.whole(nl, head)? {
            Some(whole) => self.take_run(pos, &whole, 0),
            None => self.pair(pos, head),
        }
    }

    /// The whole run whose SYSCALL line (`head`) ends at `nl`, as `run_end` reads it,
    /// with its EXECVE bodies noted in `session.bodies`; `None` when the lines are not
    /// one (they may be a pair), a stop when they are not sure to be either.
    fn whole(&mut self, nl: usize, head: SyscallHead) -> Result<Option<Whole>, Stop> {
        let buf = self.buf;
        let id = span(buf, head.id);
        let id_len = head.id.1 - head.id.0;
        let mut line = nl + 1;
        let mut lines = 1u64;
        // An exec that gains privileges: the kernel writes BPRM_FCAPS before EXECVE.
        while let Some((end, false)) = leading_fcaps(buf, line, id) {
            lines += 1;
            line = end + 1;
        }
        // The EXECVE bodies are noted as their lines are found (each line read once).
        self.session.bodies.clear();
        // At most one EOE of the event taken just before may come among the lines, once
        // this one has begun: push() drops the late EOE of a done event (a line counted).
        let mut late = false;
        loop {
            let (end, bad) = line_end(buf, line);
            let end = end.ok_or(Stop::Handback)?;
            let text = &buf[line..end];
            match record_type(text, 16) {
                Some((b"EXECVE", space)) if tagged(text, space, id) => {}
                Some((b"EOE", _)) if !late && !bad && self.late_eoe(text) => {
                    late = true;
                    lines += 1;
                    line = end + 1;
                    continue;
                }
                _ => break,
            }
            if bad {
                return Err(Stop::Handback);
            }
            self.session.bodies.push(body(buf, line, end, id_len));
            lines += 1;
            line = end + 1;
        }
        let args_end = line;
        let end = loop {
            let (end, bad) = line_end(buf, line);
            let end = end.ok_or(Stop::Handback)?;
            let text = &buf[line..end];
            let kind = match record_type(text, 16) {
                Some((kind, space)) if tagged(text, space, id) => kind,
                _ if !late && !bad && self.late_eoe(text) => {
                    late = true;
                    lines += 1;
                    line = end + 1;
                    continue;
                }
                _ => return Ok(None),
            };
            if kind != b"PROCTITLE" && !MIDDLE.contains(&kind) {
                return Ok(None);
            }
            if bad {
                return Err(Stop::Handback);
            }
            lines += 1;
            line = end + 1;
            if kind == b"PROCTITLE" {
                break line;
            }
        };
        let next = eoe_after(buf, end, id);
        if next != end {
            lines += 1;
        }
        Ok(Some(Whole {
            head,
            args_end,
            end,
            next,
            lines,
        }))
    }

    /// Whether `text` is a bare `EOE` record (`type=EOE msg=audit(ID):` and at most a
    /// space) of the last event this scan took.
    fn late_eoe(&self, text: &[u8]) -> bool {
        let last = match self.last {
            Some(last) => last,
            None => return false,
        };
        let space = b"type=EOE".len();
        if !starts(text, b"type=EOE ") {
            return false;
        }
        let (sec, ms, serial) = match single_header(text, space) {
            Some(header) => header,
            None => return false,
        };
        let rest = &text[serial.1..];
        if !(rest == b"):" || rest == b"): ") {
            return false;
        }
        match event_id(text, sec, ms, serial) {
            Some(id) => (id.sec, id.ms, id.serial) == last,
            None => false,
        }
    }

    /// Take the whole run `whole`, whose unit starts at `pos` (its SYSCALL line, or
    /// the `lead` lines before it that open the same event: a LOGIN record).
    fn take_run(&mut self, pos: usize, whole: &Whole, lead: u64) -> Step {
        let buf = self.buf;
        if whole.end - pos > MAX_UNIT {
            return Err(Stop::Handback);
        }
        let event = self.judge(whole.head)?;
        let needed = self.needs_python(&event, &buf[whole.args_end..whole.end]);
        let found = self.needle_hit(&event);
        let mut hit = found != Hit::No;
        if (needed && (lead != 0 || !self.session.render.on))
            || (hit && (needed || lead != 0))
            || self.faulty(&buf[pos..whole.end])
        {
            return Err(Stop::Handback);
        }
        self.check_live(&event)?;
        let elapsed = self
            .quiet
            .admits(&event.id, self.session.settings.window_ms)
            .ok_or(Stop::Handback)?;
        if let Hit::Guarded { mask, reads } = found {
            hit = self.guards_hold(pos, whole, &event, mask, reads)?;
        }
        if hit {
            self.full_known(pos, whole, &event)?;
        } else {
            self.plain_known(pos, whole, &event, lead)?;
        }
        // Needed in full: taken only when its --events line is written here.
        if needed {
            let lines = match run_lines(buf, whole.head.creds.0, whole.end) {
                Some(lines) => lines,
                None => return Err(Stop::Handback),
            };
            if !self.render(&event, &lines[1..], lines[0].1, None)? {
                return Err(Stop::Handback);
            }
        }
        self.take(&event, elapsed);
        self.learn(&event);
        // The lead record is an event of its own for the counts, with the same id: the
        // clock, the serial and the done set see the id once (as push() does).
        self.out.events += lead;
        self.out.lines += whole.lines + lead;
        self.out.records += whole.lines + lead;
        Ok(whole.next)
    }

    /// A relevant run of a plain verdict (plain.rs), its needles absent: taken only
    /// when Python answered "learned only" for its plain key; else a stop for Python's
    /// answer (`Stop::Plain`, the key pending), or a hand-back when the key is too long
    /// to keep or the run has a lead record (Python decides it as before).
    fn plain_known(
        &mut self,
        pos: usize,
        whole: &Whole,
        event: &Event,
        lead: u64,
    ) -> Result<(), Stop> {
        let reads = match event.plain {
            Some(reads) if event.relevant => reads,
            _ => return Ok(()),
        };
        if lead != 0 {
            return Err(Stop::Handback);
        }
        let buf = self.buf;
        let session = &mut *self.session;
        let facts = run_facts(buf, &session.table, pos, whole, event);
        plain_facts::key_of(&mut session.plain_key, reads, &facts);
        self.known_or_ask()
    }

    /// A relevant run of a needle verdict whose needles may be in its command line
    /// (`needle_hit`): taken only when Python answered "learned only" for its full key
    /// (plain.rs `full_key_of`: every fact its rules may read, its EXECVE bodies among
    /// them), as a repeated command (a build's compiler line, a service's health check)
    /// holds the same needle each time; else a stop for Python's answer, as
    /// `plain_known`.
    fn full_known(&mut self, pos: usize, whole: &Whole, event: &Event) -> Result<(), Stop> {
        let buf = self.buf;
        let session = &mut *self.session;
        let facts = run_facts(buf, &session.table, pos, whole, event);
        plain_facts::full_key_of(&mut session.plain_key, &facts, buf, &session.bodies);
        self.known_or_ask()
    }

    /// Whether a guard of the tests `mask` (which may hold on the run's command line,
    /// and only where their guards do) holds for the run's facts `reads`: Python's
    /// answer for its guard key (plain.rs `guard_key_of`: `_Accepting.alive`), or a
    /// stop asking for it (`Stop::Plain`, the guard key pending), or a hand-back when
    /// the key is too long to keep.
    fn guards_hold(
        &mut self,
        pos: usize,
        whole: &Whole,
        event: &Event,
        mask: u64,
        reads: u8,
    ) -> Result<bool, Stop> {
        let buf = self.buf;
        let session = &mut *self.session;
        let facts = run_facts(buf, &session.table, pos, whole, event);
        plain_facts::guard_key_of(&mut session.plain_key, reads, &facts);
        if let Some(alive) = session.verdicts.alive.get(&session.plain_key) {
            return Ok(alive & mask != 0);
        }
        if session.plain_key.len() > MAX_PLAIN_KEY {
            return Err(Stop::Handback);
        }
        session.verdicts.alive.ask(&session.plain_key);
        self.out.key.clear();
        self.out.key.extend_from_slice(&session.plain_key);
        Err(Stop::Plain)
    }

    /// Whether Python answered "learned only" for `session.plain_key`: `Ok` (taken);
    /// else a stop asking for it, or a hand-back when it is too long to keep.
    fn known_or_ask(&mut self) -> Result<(), Stop> {
        let session = &mut *self.session;
        if session.verdicts.plain.learned(&session.plain_key) {
            return Ok(());
        }
        if session.plain_key.len() > MAX_PLAIN_KEY {
            return Err(Stop::Handback);
        }
        session.verdicts.plain.ask(&session.plain_key);
        self.out.key.clear();
        self.out.key.extend_from_slice(&session.plain_key);
        Err(Stop::Plain)
    }

    /// Write the `--events` line of a run (render.rs): `records` are its lines after
    /// its SYSCALL line (which ends at `syscall_end`); `false` when it is not one native
    /// writes (then it is handed back), a stop when Python has not yet answered for its
    /// render key. Only for a relevant exec (successful, or failed by a pid the table
    /// does not know) with no entry leader, whose parent the table does not know or
    /// knows with an argv parent.rs can write (a pair's B, whose `not_parent` is A's
    /// pid, only with an unknown parent other than A), and no learned inode in its records (a rule's inode test: Python
    /// decides).
    fn render(
        &mut self,
        event: &Event,
        records: &[(usize, usize)],
        syscall_end: usize,
        not_parent: Option<i128>,
    ) -> Result<bool, Stop> {
        let buf = self.buf;
        let head = &event.head;
        let session = &mut *self.session;
        // A failed exec too (Python answers only for exec syscalls), while the table
        // does not know its pid: its entity id then names the event itself.
        let success = span(buf, head.success) == b"yes";
        if !session.render.on
            || (success && event.code & LEARN_MASK != LEARN_EXEC)
            || event.code & EVALUATED == 0
            || !event.relevant
        {
            return Ok(false);
        }
        let pid = number(span(buf, head.pid));
        let ppid = number(span(buf, head.ppid));
        let time = i128::from(event.id.time_ms);
        let known_parent = session.table.entry_at(ppid, time).is_some();
        // A pair's B (`not_parent` set) only with an unknown parent: Python learns A
        // first, which may change what the table says of B's parent and ancestors.
        if (!success && session.table.entry_at(pid, time).is_some())
            || ppid <= 1
            || not_parent == Some(ppid)
            || (known_parent && (not_parent.is_some() || session.settings.live))
            || records
                .iter()
                .any(|&(s, e)| session.verdicts.inode_may_match(&buf[s..e]))
        {
            return Ok(false);
        }
        let parent_part = if known_parent {
            let own_extra = &buf[head.creds.0..head.creds.1];
            let render = &session.render;
            match parent::parent_part(
                &session.table,
                &render.cache,
                ppid,
                time,
                own_extra,
                &render.host_key,
            ) {
                Ok(part) => Some(part),
                Err(parent::Outcome::HandBack) => return Ok(false),
                Err(parent::Outcome::Ask(key)) => {
                    self.out.key.clear();
                    self.out.key.extend_from_slice(&key);
                    return Err(Stop::Render);
                }
            }
        } else {
            None
        };
        let mut key = std::mem::take(&mut session.key);
        key.clear();
        for part in [head.call, head.success, head.comm, head.exe] {
            key.extend_from_slice(span(buf, part));
            key.push(0);
        }
        key.extend_from_slice(&buf[head.creds.0..syscall_end]);
        let render = &mut session.render;
        let pieces = match render.cache.get(&key) {
            None => {
                self.out.key.clear();
                self.out.key.extend_from_slice(&key);
                session.key = key;
                return Err(Stop::Render);
            }
            Some(None) => {
                session.key = key;
                return Ok(false);
            }
            Some(Some(pieces)) => pieces,
        };
        // " msg=audit(" + id + "):" after each record's type.
        let header = MSG.len() + (head.id.1 - head.id.0) + 2;
        let mut bodies: Vec<(&[u8], &[u8])> = Vec::with_capacity(records.len());
        for &(s, e) in records {
            let text = &buf[s..e];
            match record_type(text, 16) {
                Some((kind, space)) if space + header <= text.len() => {
                    bodies.push((kind, record_body(&text[space + header..])));
                }
                _ => {
                    session.key = key;
                    return Ok(false);
                }
            }
        }
        let parts = RunParts {
            time_ms: event.id.time_ms,
            sec: event.id.sec,
            ms: event.id.ms,
            serial: event.id.serial,
            success,
            pid,
            ppid,
            exit: number(span(buf, head.exit)),
            records: &bodies,
            parent: parent_part.as_ref(),
        };
        let done = render::render(
            &mut render.out,
            &render.host,
            &render.host_key,
            pieces,
            &parts,
        );
        session.key = key;
        Ok(done)
    }

    /// A LOGIN record (pam_loginuid's write to /proc/self/loginuid) followed by the
    /// whole run of the write syscall behind it, under the same id: two events as
    /// `Assembler.push` makes them (the LOGIN, complete at once, then the syscall's
    /// own records: `LEADS_SYSCALL_EVENT`). Taken only when the syscall's second look
    /// at the serial changes nothing (see below), the run has no EXECVE and teaches
    /// the table nothing but an "other" entry (which the full parse's `skim` learns
    /// the same way), outside live mode; `None` when the lines after the LOGIN are
    /// not its run.
    fn login(&mut self, pos: usize, nl: usize, id: &EventId, id_text: Span) -> Option<Step> {
        let buf = self.buf;
        let at = nl + 1;
        if !starts(&buf[at..], b"type=SYSCALL ") {
            return None;
        }
        let (syscall_nl, bad) = line_end(buf, at);
        let syscall_nl = syscall_nl?;
        let head = shift(syscall::parse(&buf[at..syscall_nl])?, at);
        if bad || span(buf, head.id) != span(buf, id_text) {
            return None;
        }
        let whole = match self.whole(syscall_nl, head) {
            Ok(Some(whole)) => whole,
            Ok(None) => return None,
            Err(stop) => return Some(Err(stop)),
        };
        let settings = &self.session.settings;
        if settings.live || settings.max_inflight < 1 {
            return Some(Err(Stop::Handback));
        }
        // The syscall's SYSCALL record shows the serial to the gap tracker a second
        // time: a no-op, unless taking it moved `expected` so far past it that the
        // tracker would take it for a new boot (`_RESET_BACKSTEP`).
        let window = settings.window_ms;
        // The trial clones the serials ahead (hundreds after a gap): made only when
        // the take could move `expected` that far at all.
        let far = id.serial.saturating_add(RESET_BACKSTEP);
        let elapsed = match self.quiet.admits(id, window) {
            Some(elapsed) if self.quiet.expected_bound(id.serial) > far => Some(elapsed),
            _ => None,
        };
        if let Some(elapsed) = elapsed {
            let mut trial = self.quiet.clone();
            trial.take(id, elapsed, window, &mut Vec::new());
            if id.serial < trial.expected && id.serial + RESET_BACKSTEP < trial.expected {
                return Some(Err(Stop::Handback));
            }
        }
        if !self.session.bodies.is_empty() {
            return Some(Err(Stop::Handback));
        }
        let code = match self.judge(head) {
            Ok(event) => event.code,
            Err(stop) => return Some(Err(stop)),
        };
        if !matches!(code & LEARN_MASK, 0 | LEARN_OTHER) {
            return Some(Err(Stop::Handback));
        }
        Some(self.take_run(pos, &whole, 1))
    }

    /// Read the event's id and verdict; a stop when it cannot be taken.
    fn judge(&mut self, head: SyscallHead) -> Result<Event, Stop> {
        let buf = self.buf;
        let id = event_id(buf, head.sec, head.ms, head.serial).ok_or(Stop::Handback)?;
        self.quiet
            .admits(&id, self.session.settings.window_ms)
            .ok_or(Stop::Handback)?;
        let key = &mut self.session.key;
        key.clear();
        for (n, part) in [head.call, head.success, head.comm, head.exe]
            .iter()
            .enumerate()
        {
            if n > 0 {
                key.push(0);
            }
            key.extend_from_slice(span(buf, *part));
        }
        let (code, group, plain, tests) = match self.session.verdicts.get_with_group(key) {
            Some(found) => found,
            None => {
                self.out.key.clear();
                self.out.key.extend_from_slice(key);
                return Err(Stop::Verdict);
            }
        };
        let settings = &self.session.settings;
        let relevant = code & EVALUATED != 0
            && !settings.since_ms.map_or(false, |since| id.time_ms < since)
            && !settings.until_ms.map_or(false, |until| id.time_ms >= until);
        Ok(Event {
            head,
            id,
            code,
            group,
            tests,
            plain,
            relevant,
        })
    }

    /// Whether the verdict's needle test hands the run back: a needle of its group
    /// may be in the command line of the EXECVE bodies in `session.bodies` (and, when
    /// Python gave the tests behind its gate, each clause of one of them: verdicts.rs
    /// `needle_hit`), or that command line is not plain, or there are none and the
    /// group does not read that as the empty command line (needles.rs).
    fn needle_hit(&mut self, event: &Event) -> Hit {
        if !(event.relevant && event.code & NEEDLE_IF_RELEVANT != 0) {
            return Hit::No;
        }
        let session = &mut *self.session;
        let mut line = std::mem::take(&mut session.line);
        let present = &mut session.present;
        let verdicts = &session.verdicts;
        let hit = if session.bodies.is_empty() {
            verdicts.needle_hit(event.group, event.tests, None, present)
        } else if !command_line(self.buf, &session.bodies, &mut line) {
            Hit::Yes
        } else {
            verdicts.needle_hit(event.group, event.tests, Some(&line), present)
        };
        session.line = line;
        hit
    }

    /// Whether a prefilter needs the event in full: by its verdict, or by an inode
    /// in `after` (the run's text after its EXECVE lines).
    fn needs_python(&self, event: &Event, after: &[u8]) -> bool {
        inode_or_need(&self.session.verdicts, event, |v| v.inode_may_match(after))
    }

    /// Whether the test hook `fault_on` may fire in `text`.
    fn faulty(&self, text: &[u8]) -> bool {
        match &self.session.settings.fault_on {
            None => false,
            // A newline in it could reach the line before: never sure.
            Some(fault) => {
                fault.is_empty() || fault.contains(&b'\n') || find(text, fault).is_some()
            }
        }
    }

    /// Live mode: an exec's parent must be known or known unreadable.
    fn check_live(&mut self, event: &Event) -> Result<(), Stop> {
        if !self.session.settings.live {
            return Ok(());
        }
        let ppid = number(span(self.buf, event.head.ppid));
        let table = &self.session.table;
        if ppid > 0 && !table.contains(ppid) && !table.is_unreadable(ppid) {
            self.out.ppid = i64::try_from(ppid).unwrap_or(i64::MAX);
            self.out.time_ms = event.id.time_ms;
            return Err(Stop::Live);
        }
        Ok(())
    }

    /// The assembler's part of taking an event: clock, gaps, done, counters.
    fn take(&mut self, event: &Event, elapsed: i64) {
        let window = self.session.settings.window_ms;
        self.quiet
            .take(&event.id, elapsed, window, &mut self.out.lost);
        self.out
            .done
            .extend_from_slice(&[event.id.sec, event.id.ms, event.id.serial, elapsed]);
        self.out.events += 1;
        self.last = Some((event.id.sec, event.id.ms, event.id.serial));
        self.out.last_time_ms = self.out.last_time_ms.max(event.id.time_ms);
        if event.relevant {
            self.out.process_events += 1;
        }
    }

    /// The table's part (ProcessTable.learn_exec / learn), argv from `session.bodies`.
    fn learn(&mut self, event: &Event) {
        let buf = self.buf;
        let head = &event.head;
        let pid = number(span(buf, head.pid));
        let ppid = number(span(buf, head.ppid));
        let time = i128::from(event.id.time_ms);
        let comm = (span(buf, head.comm), true);
        let exe = (span(buf, head.exe), true);
        let creds = Some(span(buf, head.creds));
        let session = &mut *self.session;
        let entry = match event.code & LEARN_MASK {
            LEARN_EXEC => Entry::new(
                pid,
                Some(ppid),
                time,
                Some(comm),
                Some(exe),
                if session.bodies.is_empty() {
                    ArgsIn::Unknown
                } else {
                    ArgsIn::Bodies(buf, &session.bodies)
                },
                Some(span(buf, head.id)),
                creds,
            ),
            LEARN_FORK => {
                let child = number(span(buf, head.exit));
                if child <= 0 {
                    return;
                }
                Entry::forked(
                    child,
                    pid,
                    time,
                    comm,
                    exe,
                    session.table.latest(pid),
                    creds,
                )
            }
            LEARN_OTHER if !session.table.contains(pid) => Entry::new(
                pid,
                Some(ppid),
                time,
                Some(comm),
                Some(exe),
                ArgsIn::Unknown,
                None,
                creds,
            ),
            _ => return,
        };
        session.table.store(entry);
    }

    /// Two interleaved whole runs from A's SYSCALL line at `pos` (`split_pair`).
    fn pair(&mut self, pos: usize, head_a: SyscallHead) -> Step {
        if self.session.settings.max_inflight < 2 || self.session.settings.fault_on.is_some() {
            return Err(Stop::Handback);
        }
        let mut lines_a = std::mem::take(&mut self.session.pair_a);
        let mut lines_b = std::mem::take(&mut self.session.pair_b);
        lines_a.clear();
        lines_b.clear();
        let result = self.pair_with(pos, head_a, &mut lines_a, &mut lines_b);
        self.session.pair_a = lines_a;
        self.session.pair_b = lines_b;
        result
    }

    fn pair_with(
        &mut self,
        pos: usize,
        head_a: SyscallHead,
        lines_a: &mut Vec<(usize, usize)>,
        lines_b: &mut Vec<(usize, usize)>,
    ) -> Step {
        let buf = self.buf;
        let tag_a = span(buf, head_a.id);
        let mut head_b: Option<SyscallHead> = None;
        let mut a_open = true;
        let mut a_eoe = false;
        let mut skipped = 0u64;
        let mut line = pos;
        let mut end = None;
        for _ in 0..PAIR_MAX_LINES {
            let (nl, bad) = line_end(buf, line);
            let nl = nl.ok_or(Stop::Handback)?;
            if bad {
                return Err(Stop::Handback);
            }
            let text = &buf[line..nl];
            let (kind, space) = record_type(text, 32).ok_or(Stop::Handback)?;
            if a_open && tagged(text, space, tag_a) {
                lines_a.push((line, nl));
                a_open = kind != b"PROCTITLE";
            } else if !a_eoe && kind == b"EOE" && bare_eoe(text, space, tag_a) {
                // A's EOE once A is closed (`split_pair`): absorbed, it counts a line.
                a_eoe = true;
                skipped += 1;
            } else if head_b.map_or(false, |b| tagged(text, space, span(buf, b.id))) {
                lines_b.push((line, nl));
                if kind == b"PROCTITLE" {
                    if a_open {
                        return Err(Stop::Handback);
                    }
                    end = Some(nl + 1);
                    break;
                }
            } else if head_b.is_none() && kind == b"SYSCALL" {
                let head = syscall::parse(text).ok_or(Stop::Handback)?;
                head_b = Some(shift(head, line));
                lines_b.push((line, nl));
            } else {
                return Err(Stop::Handback);
            }
            line = nl + 1;
        }
        let end = end.ok_or(Stop::Handback)?;
        let head_b = head_b.ok_or(Stop::Handback)?;
        if end - pos > MAX_UNIT {
            return Err(Stop::Handback);
        }
        let execve_a = whole_run(buf, lines_a, tag_a).ok_or(Stop::Handback)?;
        let execve_b = whole_run(buf, lines_b, span(buf, head_b.id)).ok_or(Stop::Handback)?;
        let a = self.judge(head_a)?;
        let b = self.judge(head_b)?;
        if a.id.time_ms >= self.due_ms {
            // Python matches due sequences after A, before B's work: its way.
            return Err(Stop::Handback);
        }
        if a.id.sec == b.id.sec && a.id.ms == b.id.ms && a.id.serial == b.id.serial {
            return Err(Stop::Handback);
        }
        let verdicts = &self.session.verdicts;
        let need_a = inode_or_need(verdicts, &a, |v| inode_in(v, buf, lines_a, execve_a));
        let need_b = inode_or_need(verdicts, &b, |v| inode_in(v, buf, lines_b, execve_b));
        // A pair's needle test is not made: a verdict that asks for one hands it back.
        let needle = |e: &Event| e.relevant && e.code & NEEDLE_IF_RELEVANT != 0;
        if ((need_a || need_b) && !self.session.render.on) || needle(&a) || needle(&b) {
            return Err(Stop::Handback);
        }
        self.check_live(&a)?;
        if self.check_live(&b).is_err() {
            // B's parent may be A's pid, learned only once A is taken: Python's way.
            self.out.ppid = 0;
            self.out.time_ms = 0;
            return Err(Stop::Handback);
        }
        let window = self.session.settings.window_ms;
        let elapsed_a = self.quiet.admits(&a.id, window).ok_or(Stop::Handback)?;
        let elapsed_b = match self.quiet.admits_after(&a.id, elapsed_a, &b.id, window) {
            Some(elapsed) => elapsed,
            None => {
                // Not sure without taking A: in a copy (the serials ahead copied).
                let mut trial = self.quiet.clone();
                trial.take(&a.id, elapsed_a, window, &mut Vec::new());
                trial.admits(&b.id, window).ok_or(Stop::Handback)?
            }
        };
        // Needed in full: taken only when both --events lines are written here (B's
        // parent may be A, which the table knows once A is taken: handed back then).
        let mark = self.session.render.out.len();
        let a_pid = number(span(buf, a.head.pid));
        for (event, needed, lines, not_parent) in [
            (&a, need_a, &*lines_a, None),
            (&b, need_b, &*lines_b, Some(a_pid)),
        ] {
            let written = if needed {
                self.render(event, &lines[1..], lines[0].1, not_parent)
            } else {
                Ok(true)
            };
            if written != Ok(true) {
                self.session.render.out.truncate(mark);
                return Err(written.err().unwrap_or(Stop::Handback));
            }
        }
        for (event, elapsed, lines, execve) in [
            (&a, elapsed_a, &*lines_a, execve_a),
            (&b, elapsed_b, &*lines_b, execve_b),
        ] {
            self.take(event, elapsed);
            self.session.bodies.clear();
            let id_len = event.head.id.1 - event.head.id.0;
            for &(s, e) in &lines[execve.0..execve.1] {
                let (bs, be) = body(buf, s, e, id_len);
                self.session.bodies.push((bs, be));
            }
            self.learn(event);
        }
        // B's EOE right after: absorbed, as after a single run.
        let next = eoe_after(buf, end, span(buf, head_b.id));
        let lines = (lines_a.len() + lines_b.len()) as u64 + skipped + u64::from(next != end);
        self.out.lines += lines;
        self.out.records += lines;
        Ok(next)
    }

    /// A single-record event of a type Python named.
    fn single(&mut self, pos: usize, nl: usize) -> Step {
        let buf = self.buf;
        let line = &buf[pos..nl];
        let (kind, space) = record_type(line, line.len()).ok_or(Stop::Handback)?;
        let named = self.session.settings.single_types.contains(kind);
        if kind.is_empty()
            || !kind
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'[' | b']'))
            || !(named || kind == LEAD)
        {
            return Err(Stop::Handback);
        }
        if line.len() > MAX_UNIT {
            return Err(Stop::Handback);
        }
        let header = single_header(line, space).ok_or(Stop::Handback)?;
        let (sec, ms, serial) = (
            (pos + header.0 .0, pos + header.0 .1),
            (pos + header.1 .0, pos + header.1 .1),
            (pos + header.2 .0, pos + header.2 .1),
        );
        let id = event_id(buf, sec, ms, serial).ok_or(Stop::Handback)?;
        if kind == LEAD {
            if let Some(step) = self.login(pos, nl, &id, (sec.0, serial.1)) {
                return step;
            }
        }
        // Taken alone (when Python names the type), a LOGIN is reported in `leads`:
        // the assembler waits for its syscall's records under its id (`_leads`).
        if !named || self.faulty(line) {
            return Err(Stop::Handback);
        }
        let elapsed = self
            .quiet
            .admits(&id, self.session.settings.window_ms)
            .ok_or(Stop::Handback)?;
        let event = Event {
            head: syscall::SyscallHead {
                id: (0, 0),
                sec,
                ms,
                serial,
                call: (0, 0),
                success: (0, 0),
                exit: (0, 0),
                ppid: (0, 0),
                pid: (0, 0),
                comm: (0, 0),
                exe: (0, 0),
                creds: (0, 0),
            },
            id,
            code: 0,
            group: 0,
            tests: 0,
            plain: None,
            relevant: false,
        };
        self.take(&event, elapsed);
        if kind == LEAD {
            self.out
                .leads
                .extend_from_slice(&[id.sec, id.ms, id.serial]);
            // Its EOE ends the lead in the assembler (push() deletes it): never passed
            // over as the late EOE of a done event.
            self.last = None;
        }
        self.out.lines += 1;
        self.out.records += 1;
        Ok(nl + 1)
    }
}

/// Where the line after an event that ends at `end` (a line start) begins once an
/// `EOE` of the event's id there is absorbed (the event is done): past that line, or
/// `end` when it is not one. Its line is read only when it is one, so the next event's
/// line is read once.
fn eoe_after(buf: &[u8], end: usize, id: &[u8]) -> usize {
    if starts(&buf[end..], b"type=EOE ") {
        if let (Some(eoe_end), false) = line_end(buf, end) {
            let text = &buf[end..eoe_end];
            if let Some((_, space)) = record_type(text, 16) {
                if tagged(text, space, id) {
                    return eoe_end + 1;
                }
            }
        }
    }
    end
}

/// Whether a line of type `EOE` (`space` after the type) reads `type=EOE msg=audit(`
/// + `id` + `):` and at most a space (`_plain_eoe` of fastpath.py).
fn bare_eoe(text: &[u8], space: usize, id: &[u8]) -> bool {
    let rest = text.len() - space;
    let tag = MSG.len() + id.len() + 2;
    tagged(text, space, id) && (rest == tag || (rest == tag + 1 && text[text.len() - 1] == b' '))
}

/// `msg=audit(SEC.MMM:SERIAL)` after the type, as parse_record reads it (3-digit ms
/// only): the spans of sec, ms and serial, relative to the line.
fn single_header(line: &[u8], space: usize) -> Option<(Span, Span, Span)> {
    let rest = line.get(space..)?;
    if !starts(rest, MSG) {
        return None;
    }
    let mut at = space + MSG.len();
    let digits = |at: usize, min: usize, max: usize| -> Option<Span> {
        let len = line[at..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(line.len() - at);
        if len < min || len > max {
            None
        } else {
            Some((at, at + len))
        }
    };
    let sec = digits(at, 1, 20)?;
    at = sec.1;
    if line.get(at) != Some(&b'.') {
        return None;
    }
    let ms = digits(at + 1, 3, 3)?;
    at = ms.1;
    if line.get(at) != Some(&b':') {
        return None;
    }
    let serial = digits(at + 1, 1, 20)?;
    if line.get(serial.1) != Some(&b')') {
        return None;
    }
    Some((sec, ms, serial))
}

/// Whether the verdict, or an inode (`inode` tells), makes the event Python's.
fn inode_or_need(verdicts: &Verdicts, event: &Event, inode: impl Fn(&Verdicts) -> bool) -> bool {
    let code = event.code;
    if code & NEED_ALWAYS != 0 || (event.relevant && code & NEED_IF_RELEVANT != 0) {
        return true;
    }
    (code & INODE_ALWAYS != 0 || (event.relevant && code & INODE_IF_RELEVANT != 0))
        && inode(verdicts)
}

/// Whether a pair event's lines after its EXECVE lines hold an inode that may matter.
fn inode_in(
    verdicts: &Verdicts,
    buf: &[u8],
    lines: &[(usize, usize)],
    execve: (usize, usize),
) -> bool {
    lines[execve.1..]
        .iter()
        .any(|&(s, e)| verdicts.inode_may_match(&buf[s..=e]))
}

/// An EXECVE line's body as parse_record gives it: after the header (`type=EXECVE
/// msg=audit(` + the id + `):`, which the caller has checked), cut at the ENRICHED
/// separator, stripped of spaces.
fn body(buf: &[u8], start: usize, end: usize, id_len: usize) -> (usize, usize) {
    let line = &buf[start..end];
    let mut s = (b"type=EXECVE msg=audit(".len() + id_len + 2).min(line.len());
    let mut e = find_byte(&line[s..], 0x1d).map_or(line.len(), |k| s + k);
    while s < e && line[s] == b' ' {
        s += 1;
    }
    while e > s && line[e - 1] == b' ' {
        e -= 1;
    }
    (start + s, start + e)
}

/// The lines of a whole run from its SYSCALL line (at or before `from`) up to `end`
/// (a line start), as ranges without their newlines; `None` if a line is unended.
fn run_lines(buf: &[u8], from: usize, end: usize) -> Option<Vec<(usize, usize)>> {
    let start = buf[..from]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |k| k + 1);
    let mut lines = Vec::with_capacity(8);
    let mut line = start;
    while line < end {
        let nl = line + find_byte(&buf[line..end], b'\n')?;
        lines.push((line, nl));
        line = nl + 1;
    }
    if lines.is_empty() {
        None
    } else {
        Some(lines)
    }
}

/// A record's body after its header, as `process_event_of_run` cuts it: up to the
/// ENRICHED separator, stripped of spaces.
fn record_body(rest: &[u8]) -> &[u8] {
    let mut e = find_byte(rest, 0x1d).unwrap_or(rest.len());
    let mut s = 0;
    while s < e && rest[s] == b' ' {
        s += 1;
    }
    while e > s && rest[e - 1] == b' ' {
        e -= 1;
    }
    &rest[s..e]
}

/// `run_end` on one event's lines of a pair: SYSCALL, BPRM_FCAPS*, EXECVE*, middle
/// records, its PROCTITLE last. Returns where its EXECVE lines are in `lines`
/// (first, past the last).
fn whole_run(buf: &[u8], lines: &[(usize, usize)], id: &[u8]) -> Option<(usize, usize)> {
    let (last, middle) = lines.split_last()?;
    let kind_of = |&(s, e): &(usize, usize)| -> Option<&[u8]> {
        let text = &buf[s..e];
        let (kind, space) = record_type(text, 16)?;
        if tagged(text, space, id) {
            Some(kind)
        } else {
            None
        }
    };
    if kind_of(last)? != b"PROCTITLE" || middle.is_empty() {
        return None;
    }
    let fcaps = middle[1..]
        .iter()
        .take_while(|l| kind_of(l) == Some(&b"BPRM_FCAPS"[..]))
        .count();
    let execve = middle[1 + fcaps..]
        .iter()
        .take_while(|l| kind_of(l) == Some(&b"EXECVE"[..]))
        .count();
    for l in &middle[1 + fcaps + execve..] {
        if !MIDDLE.contains(&kind_of(l)?) {
            return None;
        }
    }
    Some((1 + fcaps, 1 + fcaps + execve))
}

/// The end of a `BPRM_FCAPS` line of the event `id` at `line` (and whether it holds a
/// byte the scan never takes), when there is one.
fn leading_fcaps(buf: &[u8], line: usize, id: &[u8]) -> Option<(usize, bool)> {
    if !starts(&buf[line..], b"type=BPRM_FCAPS ") {
        return None;
    }
    let (end, bad) = line_end(buf, line);
    let end = end?;
    let text = &buf[line..end];
    if tagged(text, b"type=BPRM_FCAPS".len(), id) {
        Some((end, bad))
    } else {
        None
    }
}
