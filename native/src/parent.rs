//! `process.parent` of an `--events` line whose parent the process table knows.
//!
//! render.rs writes the line of a plain exec; this module adds what the table knows of
//! its parent: `process.parent` (name, executable, argv, entity id, credentials) and
//! `auditd.parent_exec_id`/`parent_source`, the same bytes as `ProcessEvent.to_document`
//! gives for `Parent` as `NativeProcessTable` builds it. Such a line is written only
//! when the process has no entry leader (`kexecwatch/core/process/leaders.py`): the walk
//! up the known ancestors is made here with the rules of `entry_leader`, and wherever
//! it would find a leader the run is handed back (Python writes the leader).
//!
//! Python keeps the meaning of what depends on a text alone, answered once per text
//! through the render cache under keys that no render key starts with (a render key
//! starts with the `arch=` of its SYSCALL record):
//! - [`EXTRA_KEY`] + a credentials text (`extra`): three pieces, the parent's
//!   credential members that sort between `executable` and `name`, those after `pid`
//!   (as `parent_identity_of` gives them), and its login session (`leaders._session`):
//!   empty for none, else `=` and the value. No answer ("hand back"): such runs go to
//!   Python.
//! - [`SERVICE_KEY`] + the decoded name and executable of an ancestor (each `-` when
//!   unknown, else `+`, a u32-LE length and the bytes): no pieces when it is not an
//!   entry service (`leaders._service`), no answer when it is.
//!
//! Anything outside what is stated here (EXECVE bodies outside render.rs's layout, an
//! exec id not `digits.digits:digits`, a source other than `event`/`procfs`) is handed back.

use crate::entry::Entry;
use crate::render::{argv_of_joined, decode_untrusted, entity_id, json_str, Members, RenderCache};
use crate::table::Table;

/// Where the answers for a credentials text are cached.
pub const EXTRA_KEY: &[u8] = b"\0extra\0";
/// Where the answers for an ancestor's name and executable are cached.
pub const SERVICE_KEY: &[u8] = b"\0service\0";
/// The pieces of an answer for a credentials text.
pub const EXTRA_PIECES: usize = 3;
const E_BEFORE_NAME: usize = 0;
const E_AFTER_PID: usize = 1;
const E_SESSION: usize = 2;
/// `leaders.MAX_DEPTH`: the most ancestors walked.
const MAX_DEPTH: usize = 32;
/// More digits than any exec id part the table can hold sensibly: handed back.
const MAX_ID_DIGITS: usize = 30;

/// How many pieces Python's answer for `key` has (`None`: any number is refused).
pub fn pieces_for(key: &[u8]) -> usize {
    if key.starts_with(EXTRA_KEY) {
        EXTRA_PIECES
    } else if key.starts_with(SERVICE_KEY) {
        0
    } else {
        crate::render::PIECES
    }
}

/// What the line says of a known parent.
pub struct ParentPart {
    /// The `process.parent` object.
    pub object: Vec<u8>,
    /// `auditd.parent_exec_id`, as `str(EventId)` writes it.
    pub exec_id: Option<Vec<u8>>,
    /// `auditd.parent_source`.
    pub source: Vec<u8>,
}

/// Why [`parent_part`] wrote nothing.
pub enum Outcome {
    /// Not one native writes (an entry leader, an odd entry): Python's way.
    HandBack,
    /// Python has not answered for this key yet.
    Ask(Vec<u8>),
}

enum Answer<'a> {
    Pieces(&'a [Vec<u8>]),
    HandBack,
    Ask(Vec<u8>),
}

fn answer<'a>(cache: &'a RenderCache, key: Vec<u8>) -> Answer<'a> {
    match cache.get(&key) {
        None => Answer::Ask(key),
        Some(None) => Answer::HandBack,
        Some(Some(pieces)) => Answer::Pieces(pieces),
    }
}

/// The answer for a credentials text (`None`: no text, no pieces).
fn extra_answer<'a>(
    cache: &'a RenderCache,
    extra: Option<&[u8]>,
) -> Result<Option<&'a [Vec<u8>]>, Outcome> {
    let extra = match extra {
        Some(extra) => extra,
        None => return Ok(None),
    };
    let mut key = Vec::with_capacity(EXTRA_KEY.len() + extra.len());
    key.extend_from_slice(EXTRA_KEY);
    key.extend_from_slice(extra);
    match answer(cache, key) {
        Answer::Pieces(pieces) if pieces.len() == EXTRA_PIECES => Ok(Some(pieces)),
        Answer::Pieces(_) | Answer::HandBack => Err(Outcome::HandBack),
        Answer::Ask(key) => Err(Outcome::Ask(key)),
    }
}

/// The login session of a credentials text, as its answer's piece says.
fn session_of<'a>(
    cache: &'a RenderCache,
    extra: Option<&[u8]>,
) -> Result<Option<&'a [u8]>, Outcome> {
    Ok(extra_answer(cache, extra)?.and_then(|pieces| {
        let piece = &pieces[E_SESSION];
        piece.strip_prefix(b"=")
    }))
}

/// An entry's name or executable as `Parent` holds it (decoded when stored raw).
fn decoded(value: Option<(&[u8], bool)>) -> Option<Vec<u8>> {
    match value {
        None => None,
        Some((raw, true)) => decode_untrusted(raw).map(|v| v.into_owned()),
        Some((plain, false)) => Some(plain.to_vec()),
    }
}

fn push_value(key: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => key.push(b'-'),
        Some(value) => {
            key.push(b'+');
            key.extend_from_slice(&(value.len() as u32).to_le_bytes());
            key.extend_from_slice(value);
        }
    }
}

/// Whether an ancestor is an entry service (`leaders._service`), by Python's answer.
fn is_service(cache: &RenderCache, entry: &Entry) -> Result<bool, Outcome> {
    let name = decoded(entry.comm());
    let exe = decoded(entry.exe());
    let mut key = SERVICE_KEY.to_vec();
    push_value(&mut key, name.as_deref());
    push_value(&mut key, exe.as_deref());
    match answer(cache, key) {
        Answer::Pieces(_) => Ok(false),
        Answer::HandBack => Ok(true),
        Answer::Ask(key) => Err(Outcome::Ask(key)),
    }
}

/// `ProcessTable.ancestry(pid, at_ms, depth)`: the known entries from `pid` up.
fn ancestry(table: &Table, pid: i128, at_ms: i128, depth: usize) -> Vec<&Entry> {
    let mut chain: Vec<&Entry> = Vec::new();
    let mut current = Some(pid);
    while let Some(pid) = current {
        if pid <= 0 || chain.len() >= depth || chain.iter().any(|e| e.pid() == pid) {
            break;
        }
        match table.entry_at(pid, at_ms) {
            Some(entry) => {
                chain.push(entry);
                current = entry.ppid();
            }
            None => break,
        }
    }
    chain
}

/// Whether `leaders.entry_leader(ppid, own_extra, chain)` finds an entry leader.
fn has_leader(
    cache: &RenderCache,
    ppid: i128,
    own_extra: &[u8],
    chain: &[&Entry],
) -> Result<bool, Outcome> {
    let mut current_ppid = ppid;
    let mut current_ses = session_of(cache, Some(own_extra))?;
    for n in 0..=chain.len() {
        if current_ppid == 0 || current_ppid == 1 {
            return Ok(true);
        }
        let parent = match chain.get(n) {
            Some(parent) if parent.pid() == current_ppid => *parent,
            _ => return Ok(false), // an unknown parent: no guess
        };
        if is_service(cache, parent)? {
            return Ok(true);
        }
        let parent_ses = session_of(cache, parent.extra())?;
        if current_ses.is_some() {
            if parent.extra().is_none() {
                return Ok(false);
            }
            if parent_ses != current_ses {
                return Ok(true);
            }
        }
        match parent.ppid() {
            Some(next) => current_ppid = next,
            None => return Ok(false),
        }
        current_ses = parent_ses;
    }
    Ok(false)
}

/// `str(EventId.from_str(text))` for `digits.digits:digits`; `None` for anything else.
fn exec_id_text(text: &[u8]) -> Option<Vec<u8>> {
    fn number(part: &[u8]) -> Option<u128> {
        if part.is_empty() || part.len() > MAX_ID_DIGITS || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    }
    let colon = text.iter().position(|&b| b == b':')?;
    let stamp = &text[..colon];
    let dot = stamp.iter().position(|&b| b == b'.')?;
    let sec = number(&stamp[..dot])?;
    let ms = number(&stamp[dot + 1..])?;
    let serial = number(&text[colon + 1..])?;
    Some(format!("{}.{:03}:{}", sec, ms, serial).into_bytes())
}

/// The argv `Parent.args` holds for an entry: decoded items, or EXECVE bodies in the
/// layout of `argv_of_bodies` (any other: handed back); `Ok(None)` when unknown.
fn parent_argv(entry: &Entry) -> Result<Option<Vec<Vec<u8>>>, Outcome> {
    let stored = match entry.args_segment() {
        Some(stored) => stored,
        None => return Ok(None),
    };
    if entry.args_are_argv() {
        let mut items = Vec::new();
        let mut rest = stored;
        while !rest.is_empty() {
            if rest.len() < 4 {
                return Err(Outcome::HandBack);
            }
            let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            if rest.len() - 4 < n {
                return Err(Outcome::HandBack);
            }
            items.push(rest[4..4 + n].to_vec());
            rest = &rest[4 + n..];
        }
        return Ok(Some(items));
    }
    match argv_of_joined(stored) {
        Some(argv) => Ok(Some(argv)),
        None => Err(Outcome::HandBack),
    }
}

/// What the line of an exec by `ppid`'s child at `at_ms` says of its parent, when the
/// table knows that parent and the process has no entry leader; `own_extra` is the
/// exec's credentials text, `host_key` the host part of entity ids.
pub fn parent_part(
    table: &Table,
    cache: &RenderCache,
    ppid: i128,
    at_ms: i128,
    own_extra: &[u8],
    host_key: &[u8],
) -> Result<ParentPart, Outcome> {
    let chain = ancestry(table, ppid, at_ms, MAX_DEPTH);
    let parent = match chain.first() {
        Some(parent) => *parent,
        None => return Err(Outcome::HandBack),
    };
    if has_leader(cache, ppid, own_extra, &chain)? {
        return Err(Outcome::HandBack);
    }
    let source = entry_source(parent)?;
    let exec_id = match parent.exec_id() {
        Some(text) => Some(exec_id_text(text).ok_or(Outcome::HandBack)?),
        None => None,
    };
    let identity = extra_answer(cache, parent.extra())?;
    let argv = parent_argv(parent)?;
    let mut object = Vec::with_capacity(256);
    let mut m = Members::open(&mut object);
    if let Some(argv) = &argv {
        m.argv(argv);
    }
    let pid = parent.pid().to_string();
    // `Parent.instance()`: the exec id, else `<source>:<since_ms>` (a source that
    // names no instance, "unknown", was handed back above).
    let instance = match &exec_id {
        Some(id) => id.clone(),
        None => {
            let mut text = source.to_vec();
            text.extend_from_slice(format!(":{}", parent.since_ms()).as_bytes());
            text
        }
    };
    let entity = entity_id(host_key, pid.as_bytes(), &instance);
    json_str(m.key("entity_id"), entity.as_bytes());
    if let Some(exe) = decoded(parent.exe()) {
        json_str(m.key("executable"), &exe);
    }
    if let Some(pieces) = identity {
        m.piece(&pieces[E_BEFORE_NAME]);
    }
    if let Some(name) = decoded(parent.comm()) {
        json_str(m.key("name"), &name);
    }
    m.key("pid").extend_from_slice(ppid.to_string().as_bytes());
    if let Some(pieces) = identity {
        m.piece(&pieces[E_AFTER_PID]);
    }
    m.close();
    Ok(ParentPart {
        object,
        exec_id,
        source: source.to_vec(),
    })
}

/// The entry's source when it is one `Parent.instance` names (`event`, `procfs`).
fn entry_source(entry: &Entry) -> Result<&[u8], Outcome> {
    match entry.source() {
        source @ (b"event" | b"procfs") => Ok(source),
        _ => Err(Outcome::HandBack),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_ids_as_python_writes_them() {
        assert_eq!(
            exec_id_text(b"1700000000.005:12"),
            Some(b"1700000000.005:12".to_vec())
        );
        assert_eq!(exec_id_text(b"0017.5:0012"), Some(b"17.005:12".to_vec()));
        assert_eq!(exec_id_text(b"17.1234:1"), Some(b"17.1234:1".to_vec()));
        for odd in [
            &b"17:1"[..],
            b"17.5",
            b"+1.5:1",
            b"1.5:1_0",
            b" 1.5:1",
            b"1..5:1",
            b"1.5:",
        ] {
            assert_eq!(exec_id_text(odd), None, "{:?}", odd);
        }
    }

    #[test]
    fn answer_sizes_by_key() {
        assert_eq!(pieces_for(b"\0extra\0auid=1"), EXTRA_PIECES);
        assert_eq!(pieces_for(b"\0service\0--"), 0);
        assert_eq!(
            pieces_for(b"arch=c000003e syscall=59\0yes"),
            crate::render::PIECES
        );
    }
}
