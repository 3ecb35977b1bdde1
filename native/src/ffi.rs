//! The C ABI, read by `kexecwatch/native/binding.py` with ctypes. The only module
//! with `unsafe`: each function checks its handle and every pointer + length before
//! making a slice of it, and runs its body under `catch_unwind`, so no panic ever
//! crosses into Python (it becomes [`ERR_PANIC`], its message kept for
//! [`kw_last_error`]).
//!
//! Results live in buffers the session owns; they stay valid until the next call
//! on the same session, and Python copies them at once. A session is used by one
//! thread at a time (the binding holds a lock).

#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::HashSet;
use std::mem::{align_of, size_of};
use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use crate::entry::Entry;
use crate::gaps::Quiet;
use crate::needles::NeedleSet;
use crate::plain::READS_ALL;
use crate::scan::scan_until;
use crate::session::{Session, Settings};
use crate::verdicts::ALL_BITS;

/// The ABI this library speaks; the binding refuses any other.
pub const ABI_VERSION: u32 = 10;

pub const OK: c_int = 0;
/// A null or closed handle, or a null output pointer.
pub const ERR_HANDLE: c_int = -1;
/// An argument out of its range (a length, a code, a malformed entry).
pub const ERR_ARGUMENT: c_int = -2;
/// A panic inside the library, caught.
pub const ERR_PANIC: c_int = -3;

const MAGIC: u64 = 0x6b77_6e61_7469_7665;

/// What a handle points to.
pub struct Handle {
    magic: u64,
    session: Session,
}

pub const CONFIG_LATENESS: u32 = 1;
pub const CONFIG_SINCE: u32 = 2;
pub const CONFIG_UNTIL: u32 = 4;
pub const CONFIG_LIVE: u32 = 8;
pub const CONFIG_FAULT: u32 = 16;

/// The settings of a new session (`size` is `sizeof(KwConfig)`, a guard against
/// a binding built for another layout).
#[repr(C)]
pub struct KwConfig {
    pub size: u32,
    pub flags: u32,
    pub window_ms: i64,
    pub max_entries: u64,
    pub max_args_bytes: u64,
    pub max_lateness_ms: i64,
    pub since_ms: i64,
    pub until_ms: i64,
    pub max_inflight: i64,
}

/// `QuietState` without its `ahead` rows.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KwState {
    pub present: i64,
    pub elapsed: i64,
    pub expected: i64,
    pub last_time_ms: i64,
    pub done_ceiling: i64,
}

/// `ScanResult`: counters, and pointers into the session's buffers.
#[repr(C)]
pub struct KwScanOut {
    pub end: u64,
    pub stop: i32,
    pub reserved: i32,
    pub ppid: i64,
    pub time_ms: i64,
    pub lines: u64,
    pub records: u64,
    pub events: u64,
    pub process_events: u64,
    pub last_time_ms: i64,
    pub state: KwState,
    pub key: *const u8,
    pub key_len: usize,
    /// (sec, ms, serial, elapsed) rows.
    pub done: *const i64,
    pub done_rows: usize,
    /// (first, last, next_sec, next_ms, next_serial) rows.
    pub lost: *const i64,
    pub lost_rows: usize,
    /// (serial, sec, ms, seen_elapsed) rows.
    pub ahead: *const i64,
    pub ahead_rows: usize,
    /// How many of the `done` rows (the last ones) the done store kept.
    pub done_kept: u64,
    /// The serials that left the rows ahead during the scan (any order).
    pub ahead_gone: *const i64,
    pub ahead_gone_len: usize,
    /// (serial, sec, ms, seen_elapsed) rows that joined them, in insertion order.
    pub ahead_added: *const i64,
    pub ahead_added_rows: usize,
    /// (sec, ms, serial) per lone `LOGIN` record taken, in order.
    pub leads: *const i64,
    pub leads_rows: usize,
}

/// `kw_scan` flag: use the serials ahead kept from the last scan, changed by the
/// `ahead_rows` ops of five i64 at `ahead` (Python's changes since), not rows.
pub const SCAN_AHEAD_KEPT: u32 = 1;
/// `kw_scan` flag: the session holds the scan's changes to the serials ahead, merged
/// with those of the scans before, until `kw_ahead_pull` (the delta comes back empty).
/// Python's ops (`SCAN_AHEAD_KEPT`) may only follow a pull: they change a dict that
/// has every change before them.
pub const SCAN_AHEAD_HOLD: u32 = 2;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

static HOOK: Once = Once::new();

fn set_error(message: String) {
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
}

/// Run `body` with panics caught: their message is kept, not printed.
fn guard<F: FnOnce() -> Result<(), c_int>>(body: F) -> c_int {
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let what = if let Some(text) = payload.downcast_ref::<&str>() {
                (*text).to_string()
            } else if let Some(text) = payload.downcast_ref::<String>() {
                text.clone()
            } else {
                "panic".to_string()
            };
            let place = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            set_error(format!("kexecwatch-native panicked: {}{}", what, place));
        }));
    });
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => OK,
        Ok(Err(code)) => code,
        Err(_) => ERR_PANIC,
    }
}

fn argument(message: &str) -> c_int {
    set_error(message.to_string());
    ERR_ARGUMENT
}

unsafe fn session<'a>(handle: *mut Handle) -> Result<&'a mut Session, c_int> {
    if handle.is_null() || (handle as usize) % align_of::<Handle>() != 0 {
        set_error("no session (null handle)".to_string());
        return Err(ERR_HANDLE);
    }
    let handle = &mut *handle;
    if handle.magic != MAGIC {
        set_error("not a live session handle".to_string());
        return Err(ERR_HANDLE);
    }
    Ok(&mut handle.session)
}

unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], c_int> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() || len > isize::MAX as usize {
        return Err(argument("null pointer or impossible length"));
    }
    Ok(std::slice::from_raw_parts(ptr, len))
}

unsafe fn words<'a, T>(ptr: *const T, count: usize) -> Result<&'a [T], c_int> {
    if count == 0 {
        return Ok(&[]);
    }
    let fits = count
        .checked_mul(size_of::<T>())
        .map_or(false, |n| n <= isize::MAX as usize);
    if ptr.is_null() || !fits || (ptr as usize) % align_of::<T>() != 0 {
        return Err(argument("null, misaligned or too long array"));
    }
    Ok(std::slice::from_raw_parts(ptr, count))
}

unsafe fn put<T>(out: *mut T, value: T) -> Result<(), c_int> {
    if out.is_null() || (out as usize) % align_of::<T>() != 0 {
        set_error("null or misaligned output pointer".to_string());
        return Err(ERR_HANDLE);
    }
    out.write(value);
    Ok(())
}

fn wide(lo: u64, hi: i64) -> i128 {
    (i128::from(hi) << 64) | i128::from(lo)
}

/// The ABI version ([`ABI_VERSION`]).
#[no_mangle]
pub extern "C" fn kw_abi_version() -> u32 {
    ABI_VERSION
}

/// The crate version, a NUL-terminated static string.
#[no_mangle]
pub extern "C" fn kw_crate_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// Copy this thread's last error message into `buf` (at most `cap` bytes); returns
/// its full length.
///
/// # Safety
/// `buf` must be valid for `cap` bytes of writing (or `cap` 0).
#[no_mangle]
pub unsafe extern "C" fn kw_last_error(buf: *mut u8, cap: usize) -> usize {
    let result = catch_unwind(|| {
        LAST_ERROR.with(|last| {
            let last = last.borrow();
            let n = last.len().min(cap);
            if n > 0 && !buf.is_null() {
                std::ptr::copy_nonoverlapping(last.as_ptr(), buf, n);
            }
            last.len()
        })
    });
    result.unwrap_or(0)
}

/// A new session; `*out` receives its handle. `single_types`: type names joined by
/// `\n`; `fault_on`: read only with [`CONFIG_FAULT`].
///
/// # Safety
/// Pointers must be valid for their lengths; `out` valid for one write.
#[no_mangle]
pub unsafe extern "C" fn kw_session_new(
    config: *const KwConfig,
    single_types: *const u8,
    single_len: usize,
    fault_on: *const u8,
    fault_len: usize,
    out: *mut *mut Handle,
) -> c_int {
    guard(|| {
        if config.is_null() || (config as usize) % align_of::<KwConfig>() != 0 {
            return Err(argument("no configuration"));
        }
        let config = &*config;
        if config.size as usize != size_of::<KwConfig>() {
            return Err(argument("configuration of another layout"));
        }
        if config.window_ms < 0 {
            return Err(argument("window_ms must be >= 0"));
        }
        let flag = |bit: u32| config.flags & bit != 0;
        let types = bytes(single_types, single_len)?;
        let fault = bytes(fault_on, fault_len)?;
        let settings = Settings {
            window_ms: config.window_ms,
            max_entries: config.max_entries,
            max_args_bytes: config.max_args_bytes,
            max_lateness_ms: if flag(CONFIG_LATENESS) {
                Some(config.max_lateness_ms)
            } else {
                None
            },
            since_ms: if flag(CONFIG_SINCE) {
                Some(config.since_ms)
            } else {
                None
            },
            until_ms: if flag(CONFIG_UNTIL) {
                Some(config.until_ms)
            } else {
                None
            },
            live: flag(CONFIG_LIVE),
            max_inflight: config.max_inflight,
            single_types: types
                .split(|&b| b == b'\n')
                .filter(|t| !t.is_empty())
                .map(<[u8]>::to_vec)
                .collect::<HashSet<_>>(),
            fault_on: if flag(CONFIG_FAULT) {
                Some(fault.to_vec())
            } else {
                None
            },
        };
        let handle = Box::new(Handle {
            magic: MAGIC,
            session: Session::new(settings),
        });
        let raw = Box::into_raw(handle);
        if let Err(code) = put(out, raw) {
            drop(Box::from_raw(raw));
            return Err(code);
        }
        Ok(())
    })
}

/// End a session and free everything it holds.
///
/// # Safety
/// `handle` must come from [`kw_session_new`] and not be used again.
#[no_mangle]
pub unsafe extern "C" fn kw_session_free(handle: *mut Handle) -> c_int {
    guard(|| {
        session(handle)?;
        (*handle).magic = 0;
        drop(Box::from_raw(handle));
        Ok(())
    })
}

/// How many pids have an entry.
///
/// # Safety
/// A live handle; `out` valid for one write.
#[no_mangle]
pub unsafe extern "C" fn kw_table_len(handle: *mut Handle, out: *mut u64) -> c_int {
    guard(|| put(out, session(handle)?.table.len() as u64))
}

/// The argv bytes the table holds.
///
/// # Safety
/// A live handle; `out` valid for one write.
#[no_mangle]
pub unsafe extern "C" fn kw_table_args_bytes(handle: *mut Handle, out: *mut u64) -> c_int {
    guard(|| put(out, session(handle)?.table.args_bytes()))
}

/// Whether `pid` (an i128 in two halves) has an entry.
///
/// # Safety
/// A live handle; `out` valid for one write.
#[no_mangle]
pub unsafe extern "C" fn kw_table_contains(
    handle: *mut Handle,
    pid_lo: u64,
    pid_hi: i64,
    out: *mut u8,
) -> c_int {
    guard(|| {
        let found = session(handle)?.table.contains(wide(pid_lo, pid_hi));
        put(out, u8::from(found))
    })
}

/// Encode `entry` (or nothing) into the session's buffer and point the outputs at it.
unsafe fn give_entry(
    encoded: &mut Vec<u8>,
    entry: Option<&Entry>,
    out_ptr: *mut *const u8,
    out_len: *mut usize,
) -> Result<(), c_int> {
    encoded.clear();
    if let Some(entry) = entry {
        entry.encode(encoded);
    }
    put(out_ptr, encoded.as_ptr())?;
    put(out_len, encoded.len())
}

/// `_entry_at(pid, at_ms)`, encoded (entry.rs) into the session's buffer; length 0
/// when there is none.
///
/// # Safety
/// A live handle; `out_ptr`, `out_len` valid for one write.
#[no_mangle]
pub unsafe extern "C" fn kw_table_entry_at(
    handle: *mut Handle,
    pid_lo: u64,
    pid_hi: i64,
    at_lo: u64,
    at_hi: i64,
    out_ptr: *mut *const u8,
    out_len: *mut usize,
) -> c_int {
    guard(|| {
        let session = session(handle)?;
        let entry = session
            .table
            .entry_at(wide(pid_lo, pid_hi), wide(at_lo, at_hi));
        give_entry(&mut session.out_entries, entry, out_ptr, out_len)
    })
}

/// The latest entry of `pid`, encoded; length 0 when there is none.
///
/// # Safety
/// A live handle; `out_ptr`, `out_len` valid for one write.
#[no_mangle]
pub unsafe extern "C" fn kw_table_latest(
    handle: *mut Handle,
    pid_lo: u64,
    pid_hi: i64,
    out_ptr: *mut *const u8,
    out_len: *mut usize,
) -> c_int {
    guard(|| {
        let session = session(handle)?;
        let entry = session.table.latest(wide(pid_lo, pid_hi));
        give_entry(&mut session.out_entries, entry, out_ptr, out_len)
    })
}

/// Store one encoded entry (`_store`).
///
/// # Safety
/// A live handle; `data` valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn kw_table_store(handle: *mut Handle, data: *const u8, len: usize) -> c_int {
    guard(|| {
        let session = session(handle)?;
        let entry = Entry::decode(bytes(data, len)?)
            .map_err(|why| argument(&format!("malformed table entry: {:?}", why)))?;
        session.table.store(entry);
        Ok(())
    })
}

/// The `limit` most recently used entries, least recent first, encoded one after
/// the other.
///
/// # Safety
/// A live handle; the outputs valid for one write each.
#[no_mangle]
pub unsafe extern "C" fn kw_table_rows(
    handle: *mut Handle,
    limit: u64,
    out_ptr: *mut *const u8,
    out_len: *mut usize,
    out_count: *mut u64,
) -> c_int {
    guard(|| {
        let session = session(handle)?;
        let encoded = &mut session.out_entries;
        encoded.clear();
        let rows = session
            .table
            .rows(usize::try_from(limit).unwrap_or(usize::MAX));
        for entry in &rows {
            entry.encode(encoded);
        }
        put(out_count, rows.len() as u64)?;
        put(out_ptr, encoded.as_ptr())?;
        put(out_len, encoded.len())
    })
}

/// The snapshot rows of the `limit` most recently used entries, least recent first,
/// as `state::state_rows` segments (JSON rows, or an entry Python makes the row of).
///
/// # Safety
/// A live handle; the outputs valid for one write each.
#[no_mangle]
pub unsafe extern "C" fn kw_table_state(
    handle: *mut Handle,
    limit: u64,
    out_ptr: *mut *const u8,
    out_len: *mut usize,
) -> c_int {
    guard(|| {
        let session = session(handle)?;
        let encoded = &mut session.out_entries;
        encoded.clear();
        let rows = session
            .table
            .rows(usize::try_from(limit).unwrap_or(usize::MAX));
        crate::state::state_rows(&rows, encoded);
        put(out_ptr, encoded.as_ptr())?;
        put(out_len, encoded.len())
    })
}

/// Remember that `/proc` could not give `pid`.
///
/// # Safety
/// A live handle.
#[no_mangle]
pub unsafe extern "C" fn kw_table_mark_unreadable(
    handle: *mut Handle,
    pid_lo: u64,
    pid_hi: i64,
) -> c_int {
    guard(|| {
        session(handle)?.table.mark_unreadable(wide(pid_lo, pid_hi));
        Ok(())
    })
}

/// Whether `pid` is remembered as unreadable.
///
/// # Safety
/// A live handle; `out` valid for one write.
#[no_mangle]
pub unsafe extern "C" fn kw_table_is_unreadable(
    handle: *mut Handle,
    pid_lo: u64,
    pid_hi: i64,
    out: *mut u8,
) -> c_int {
    guard(|| {
        let unreadable = session(handle)?.table.is_unreadable(wide(pid_lo, pid_hi));
        put(out, u8::from(unreadable))
    })
}

/// Cache the verdict `code` for `key`.
///
/// # Safety
/// A live handle; `key` valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn kw_set_verdict(
    handle: *mut Handle,
    key: *const u8,
    len: usize,
    code: u32,
) -> c_int {
    guard(|| {
        let session = session(handle)?;
        let key = bytes(key, len)?;
        if code > u32::from(ALL_BITS) {
            return Err(argument("verdict code out of range"));
        }
        session.verdicts.set(key, code as u8);
        Ok(())
    })
}

/// `kw_set_verdict_needles` flag: a run without EXECVE lines has the empty command line.
pub const NEEDLES_EMPTY_IF_NONE: u32 = 1;
/// `kw_set_verdict_needles` flag: the verdict is plain (plain.rs); bits 8 to 12 say
/// what its plain parts read (`plain::READS_*` shifted by 8).
pub const NEEDLES_PLAIN: u32 = 2;

/// Cache the verdict `code` for `key` with the needle group of the `count` needle ids
/// at `ids` (numbers from `kw_set_needles`); `flags`: [`NEEDLES_EMPTY_IF_NONE`] (a run
/// without EXECVE lines has the empty command line, needles.rs), [`NEEDLES_PLAIN`] with
/// the plain reads in bits 8 to 12 (a relevant run whose needles are absent is then
/// taken only when Python answered for its plain facts: plain.rs).
///
/// # Safety
/// A live handle; `key` valid for `len` bytes, `ids` for `count` u32 values.
#[no_mangle]
pub unsafe extern "C" fn kw_set_verdict_needles(
    handle: *mut Handle,
    key: *const u8,
    len: usize,
    code: u32,
    ids: *const u32,
    count: usize,
    flags: u32,
) -> c_int {
    guard(|| {
        let session = session(handle)?;
        let key = bytes(key, len)?;
        let ids = words(ids, count)?;
        let reads = flags >> 8;
        let known = NEEDLES_EMPTY_IF_NONE | NEEDLES_PLAIN | (u32::from(READS_ALL) << 8);
        if code > u32::from(ALL_BITS)
            || flags & !known != 0
            || (flags & NEEDLES_PLAIN == 0 && reads != 0)
        {
            return Err(argument("verdict code or flags out of range"));
        }
        let plain = if flags & NEEDLES_PLAIN != 0 {
            Some(reads as u8)
        } else {
            None
        };
        session
            .verdicts
            .set_with_needles(
                key,
                code as u8,
                ids,
                flags & NEEDLES_EMPTY_IF_NONE != 0,
                plain,
            )
            .map_err(argument)
    })
}

/// Give the needle verdict cached for `key` the tests behind its gate: `count` words
/// at `tests`, `[tests, (clauses, (ids, id...)...)...]` with the needle ids of
/// `kw_set_needles` (verdicts.rs `set_tests`). A relevant run of it is then Python's for
/// its needles only when each clause of some test has a needle in its command line.
///
/// # Safety
/// A live handle; `key` valid for `len` bytes, `words` for `count` u32 values.
#[no_mangle]
pub unsafe extern "C" fn kw_set_verdict_tests(
    handle: *mut Handle,
    key: *const u8,
    len: usize,
    tests: *const u32,
    count: usize,
) -> c_int {
    guard(|| {
        let session = session(handle)?;
        let key = bytes(key, len)?;
        let tests = words(tests, count)?;
        session.verdicts.set_tests(key, tests).map_err(argument)
    })
}

/// Give the tests of the needle verdict cached for `key` (`kw_set_verdict_tests`)
/// their guards: bit `i` of `guarded` says test `i` has one, `reads` what the guards
/// read (`plain::READS_*`; verdicts.rs `set_guards`).
///
/// # Safety
/// A live handle; `key` valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn kw_set_verdict_guards(
    handle: *mut Handle,
    key: *const u8,
    len: usize,
    reads: u32,
    guarded: u64,
) -> c_int {
    guard(|| {
        let session = session(handle)?;
        let key = bytes(key, len)?;
        if reads > u32::from(READS_ALL) {
            return Err(argument("guard reads out of range"));
        }
        session
            .verdicts
            .set_guards(key, reads as u8, guarded)
            .map_err(argument)
    })
}

/// Python's answer for the guard key of the last `Stop::Plain` (plain.rs
/// `guard_key_of`): the tests whose guards hold (bit `i`: test `i`). `*out` is 1 when
/// the answer was kept, 0 when no guard key was pending.
///
/// # Safety
/// A live handle; `out` valid for one write.
#[no_mangle]
pub unsafe extern "C" fn kw_alive_answer(handle: *mut Handle, alive: u64, out: *mut u8) -> c_int {
    guard(|| {
        let kept = session(handle)?.verdicts.alive.answer(alive);
        put(out, u8::from(kept))
    })
}

/// Python's answer for the plain key of the last `Stop::Plain` (plain.rs): it only
/// learned from that run, so runs with the same key are taken from now on. `*out` is 1
/// when the answer was kept, 0 when no key was pending (answered already, or the
/// verdicts or inodes changed since the stop, or the key is too long to keep).
///
/// # Safety
/// A live handle; `out` valid for one write.
#[no_mangle]
pub unsafe extern "C" fn kw_plain_learned(handle: *mut Handle, out: *mut u8) -> c_int {
    guard(|| {
        let kept = session(handle)?.verdicts.plain.answer_learned();
        put(out, u8::from(kept))
    })
}

/// How many plain answers the session keeps, and their key bytes.
///
/// # Safety
/// A live handle; `count` and `bytes` valid for one write each.
#[no_mangle]
pub unsafe extern "C" fn kw_plain_len(
    handle: *mut Handle,
    count: *mut u64,
    bytes: *mut u64,
) -> c_int {
    guard(|| {
        let plain = &session(handle)?.verdicts.plain;
        put(count, plain.len() as u64)?;
        put(bytes, plain.bytes() as u64)
    })
}

/// Replace the rules' needles (and forget every verdict): `len` bytes at `blob`, per
/// needle a flag byte (1: case-insensitive), its length as a little-endian u32 and its
/// bytes; needle ids are positions in this list.
///
/// # Safety
/// A live handle; `blob` valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn kw_set_needles(handle: *mut Handle, blob: *const u8, len: usize) -> c_int {
    guard(|| {
        let session = session(handle)?;
        let needles = NeedleSet::parse(bytes(blob, len)?).map_err(argument)?;
        session.verdicts.set_needles(needles);
        Ok(())
    })
}

/// Forget every cached verdict.
///
/// # Safety
/// A live handle.
#[no_mangle]
pub unsafe extern "C" fn kw_clear_verdicts(handle: *mut Handle) -> c_int {
    guard(|| {
        session(handle)?.verdicts.clear();
        Ok(())
    })
}

/// Replace the inodes the prefilters know (absolute values).
///
/// # Safety
/// A live handle; `inodes` valid for `count` u64 values.
#[no_mangle]
pub unsafe extern "C" fn kw_set_inodes(
    handle: *mut Handle,
    inodes: *const u64,
    count: usize,
) -> c_int {
    guard(|| {
        let session = session(handle)?;
        let inodes = words(inodes, count)?;
        session.verdicts.set_inodes(inodes);
        Ok(())
    })
}

/// Scan `buf[start..]` from the quiet state (`state`, and `ahead_rows` rows of
/// (serial, sec, ms, seen_elapsed) at `ahead`); the result goes to `*out`, whose
/// pointers stay valid until the next call on this session. The scan stops (`Due`)
/// after the first unit whose events bring the latest time taken to `due_ms`
/// (`i64::MAX`: never; see `scan::scan_until`).
///
/// # Safety
/// A live handle; `buf` valid for `len` bytes, `ahead` for `4 * ahead_rows` i64,
/// `state` for one read and `out` for one write.
#[no_mangle]
pub unsafe extern "C" fn kw_scan(
    handle: *mut Handle,
    buf: *const u8,
    len: usize,
    start: u64,
    state: *const KwState,
    ahead: *const i64,
    ahead_rows: usize,
    flags: u32,
    due_ms: i64,
    out: *mut KwScanOut,
) -> c_int {
    guard(|| {
        let session = session(handle)?;
        let buf = bytes(buf, len)?;
        let start = usize::try_from(start).unwrap_or(usize::MAX);
        if start > buf.len() {
            return Err(argument("scan start beyond the buffer"));
        }
        let state = *words(state, 1)?
            .first()
            .ok_or_else(|| argument("no scan state"))?;
        let quiet = if flags & SCAN_AHEAD_KEPT != 0 {
            // `ahead` holds Python's changes since: (op, serial, sec, ms, seen) each.
            let count = ahead_rows
                .checked_mul(5)
                .ok_or_else(|| argument("too many ahead ops"))?;
            let ops = words(ahead, count)?;
            if (!ops.is_empty() || flags & SCAN_AHEAD_HOLD == 0) && !session.pending.is_empty() {
                // Python's dict lacks what the session holds: a delta against it
                // would be wrong.
                return Err(argument(
                    "serials ahead changed or read over changes not pulled",
                ));
            }
            let mut kept = session
                .kept
                .take()
                .ok_or_else(|| argument("no serials ahead kept: no scan before"))?;
            kept.apply_ops(ops)
                .ok_or_else(|| argument("unknown op on the serials ahead"))?;
            kept.with_scalars(
                state.present,
                state.elapsed,
                state.expected,
                state.last_time_ms,
                state.done_ceiling,
            )
        } else {
            // Every serial ahead again: Python's dict is the truth now.
            session.pending.clear();
            let count = ahead_rows
                .checked_mul(4)
                .ok_or_else(|| argument("too many ahead rows"))?;
            let rows: Vec<[i64; 4]> = words(ahead, count)?
                .chunks_exact(4)
                .map(|r| [r[0], r[1], r[2], r[3]])
                .collect();
            Quiet::new(
                state.present,
                state.elapsed,
                state.expected,
                state.last_time_ms,
                state.done_ceiling,
                &rows,
            )
        };
        session.kept = None; // until this scan is over: a failed one keeps nothing
        let mut quiet = quiet;
        quiet.ahead_mark();
        // Python reads the whole rows only when it sent them (not kept).
        session.ahead_rows_wanted = flags & SCAN_AHEAD_KEPT == 0;
        let after = scan_until(session, buf, start, quiet, due_ms);
        after.ahead_delta(&mut session.ahead_gone, &mut session.ahead_added);
        if flags & SCAN_AHEAD_HOLD != 0 {
            session
                .pending
                .merge(&session.ahead_gone, &session.ahead_added);
            session.ahead_gone.clear();
            session.ahead_added.clear();
        }
        session.kept = Some(after);
        // Kept only once the scan is over: a failed scan leaves the store as it was.
        let done_kept = if session.done.keeping {
            session.done.extend(&session.scan.done) as u64
        } else {
            0
        };
        let result = &session.scan;
        put(
            out,
            KwScanOut {
                end: result.end as u64,
                stop: result.stop,
                reserved: 0,
                ppid: result.ppid,
                time_ms: result.time_ms,
                lines: result.lines,
                records: result.records,
                events: result.events,
                process_events: result.process_events,
                last_time_ms: result.last_time_ms,
                state: KwState {
                    present: result.state[0],
                    elapsed: result.state[1],
                    expected: result.state[2],
                    last_time_ms: result.state[3],
                    done_ceiling: result.state[4],
                },
                key: result.key.as_ptr(),
                key_len: result.key.len(),
                done: result.done.as_ptr(),
                done_rows: result.done.len() / 4,
                lost: result.lost.as_ptr() as *const i64,
                lost_rows: result.lost.len(),
                ahead: result.ahead.as_ptr(),
                ahead_rows: result.ahead.len() / 4,
                done_kept,
                ahead_gone: session.ahead_gone.as_ptr(),
                ahead_gone_len: session.ahead_gone.len(),
                ahead_added: session.ahead_added.as_ptr(),
                ahead_added_rows: session.ahead_added.len() / 4,
                leads: result.leads.as_ptr(),
                leads_rows: result.leads.len() / 3,
            },
        )
    })
}

/// The changes to the serials ahead the scans held (`SCAN_AHEAD_HOLD`) since the
/// last pull, now forgotten by the session: `*gone` serials (`*gone_len`), then
/// `*added` rows `(serial, sec, ms, seen_elapsed)` (`*added_rows`) in insertion
/// order; valid until the next call on this session.
///
/// # Safety
/// A live handle; the four out pointers valid for one write each.
#[no_mangle]
pub unsafe extern "C" fn kw_ahead_pull(
    handle: *mut Handle,
    gone: *mut *const i64,
    gone_len: *mut usize,
    added: *mut *const i64,
    added_rows: *mut usize,
) -> c_int {
    guard(|| {
        let session = session(handle)?;
        session
            .pending
            .take(&mut session.ahead_gone, &mut session.ahead_added);
        put(gone, session.ahead_gone.as_ptr())?;
        put(gone_len, session.ahead_gone.len())?;
        put(added, session.ahead_added.as_ptr())?;
        put(added_rows, session.ahead_added.len() / 4)
    })
}

/// Whether scans keep the rows of the events they take in the done store (`on`
/// non-zero); turning it off empties the store.
///
/// # Safety
/// A live handle.
#[no_mangle]
pub unsafe extern "C" fn kw_done_keep(handle: *mut Handle, on: c_int) -> c_int {
    guard(|| {
        let store = &mut session(handle)?.done;
        store.keeping = on != 0;
        if !store.keeping {
            store.clear();
        }
        Ok(())
    })
}

/// How many rows the done store holds.
///
/// # Safety
/// A live handle; `out` valid for one write.
#[no_mangle]
pub unsafe extern "C" fn kw_done_len(handle: *mut Handle, out: *mut u64) -> c_int {
    guard(|| put(out, session(handle)?.done.len() as u64))
}

/// Whether the done store holds the event `sec.ms:serial`.
///
/// # Safety
/// A live handle; `out` valid for one write.
#[no_mangle]
pub unsafe extern "C" fn kw_done_contains(
    handle: *mut Handle,
    sec: i64,
    ms: i64,
    serial: i64,
    out: *mut u8,
) -> c_int {
    guard(|| {
        let held = session(handle)?.done.contains(sec, ms, serial);
        put(out, u8::from(held))
    })
}

/// Drop rows from the front of the done store (`DoneStore::drop_front`); `*out` is
/// how many went, `*front` the elapsed time of the row now in front (`i64::MAX`: none).
///
/// # Safety
/// A live handle; `out` valid for one write.
#[no_mangle]
pub unsafe extern "C" fn kw_done_drop(
    handle: *mut Handle,
    limit: u64,
    forced: u64,
    stale_before: i64,
    out: *mut u64,
    front: *mut i64,
) -> c_int {
    guard(|| {
        let store = &mut session(handle)?.done;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let forced = usize::try_from(forced).unwrap_or(usize::MAX);
        put(out, store.drop_front(limit, forced, stale_before) as u64)?;
        put(front, store.front_elapsed())
    })
}

/// Rows `offset..offset + count` of the done store, `(sec, ms, serial, elapsed)` flat;
/// the pointer stays valid until the next call on this session.
///
/// # Safety
/// A live handle; the outputs valid for one write each.
#[no_mangle]
pub unsafe extern "C" fn kw_done_rows(
    handle: *mut Handle,
    offset: u64,
    count: u64,
    out_ptr: *mut *const i64,
    out_rows: *mut usize,
) -> c_int {
    guard(|| {
        let session = session(handle)?;
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        session.done.rows(offset, count, &mut session.done_out);
        put(out_ptr, session.done_out.as_ptr())?;
        put(out_rows, session.done_out.len() / 4)
    })
}

/// The highest serial in the done store at or above `floor` and not among the
/// `count` serials at `excluded` (`-1` when none).
///
/// # Safety
/// A live handle; `excluded` valid for `count` i64; `out` for one write.
#[no_mangle]
pub unsafe extern "C" fn kw_done_max_serial(
    handle: *mut Handle,
    floor: i64,
    excluded: *const i64,
    count: usize,
    out: *mut i64,
) -> c_int {
    guard(|| {
        let session = session(handle)?;
        let excluded: HashSet<i64> = words(excluded, count)?.iter().copied().collect();
        put(out, session.done.max_serial(floor, &excluded))
    })
}

/// `--events` lines (render.rs): `host` is the `"host":{...}` member, `host_key` the
/// host part of entity ids; both as Python writes them.
///
/// # Safety
/// A live handle; pointers valid for their lengths.
#[no_mangle]
pub unsafe extern "C" fn kw_render_config(
    handle: *mut Handle,
    host: *const u8,
    host_len: usize,
    host_key: *const u8,
    host_key_len: usize,
) -> c_int {
    guard(|| {
        let session = session(handle)?;
        let host = bytes(host, host_len)?.to_vec();
        let host_key = bytes(host_key, host_key_len)?.to_vec();
        let render = &mut session.render;
        render.host = host;
        render.host_key = host_key;
        render.cache.clear();
        Ok(())
    })
}

/// Whether the scans may render runs (non-zero) or not.
///
/// # Safety
/// A live handle.
#[no_mangle]
pub unsafe extern "C" fn kw_render_on(handle: *mut Handle, on: c_int) -> c_int {
    guard(|| {
        session(handle)?.render.on = on != 0;
        Ok(())
    })
}

/// Python's answer for a render key (`ScanResult.key` of a render stop): with `ok`,
/// the pieces at `pieces`, each a u32 length (little-endian) and its bytes, exactly
/// `render::PIECES` of them; without, "hand such runs back".
///
/// # Safety
/// A live handle; pointers valid for their lengths.
#[no_mangle]
pub unsafe extern "C" fn kw_render_set(
    handle: *mut Handle,
    key: *const u8,
    key_len: usize,
    pieces: *const u8,
    pieces_len: usize,
    ok: c_int,
) -> c_int {
    guard(|| {
        let session = session(handle)?;
        let key = bytes(key, key_len)?;
        let answer = if ok != 0 {
            let mut rest = bytes(pieces, pieces_len)?;
            let mut found = Vec::with_capacity(crate::render::PIECES);
            while !rest.is_empty() {
                if rest.len() < 4 {
                    return Err(argument("render pieces: a cut length"));
                }
                let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                if rest.len() - 4 < n {
                    return Err(argument("render pieces: a piece beyond the buffer"));
                }
                found.push(rest[4..4 + n].to_vec());
                rest = &rest[4 + n..];
            }
            if found.len() != crate::parent::pieces_for(key) {
                return Err(argument("render pieces: not the expected number"));
            }
            Some(found)
        } else {
            None
        };
        session.render.cache.set(key, answer);
        Ok(())
    })
}

/// Forget every render answer (the rules changed).
///
/// # Safety
/// A live handle.
#[no_mangle]
pub unsafe extern "C" fn kw_render_clear(handle: *mut Handle) -> c_int {
    guard(|| {
        session(handle)?.render.cache.clear();
        Ok(())
    })
}

/// The lines the last scan rendered (valid until the next call on this session).
///
/// # Safety
/// A live handle; the outputs valid for one write each.
#[no_mangle]
pub unsafe extern "C" fn kw_render_lines(
    handle: *mut Handle,
    out_ptr: *mut *const u8,
    out_len: *mut usize,
) -> c_int {
    guard(|| {
        let session = session(handle)?;
        put(out_ptr, session.render.out.as_ptr())?;
        put(out_len, session.render.out.len())
    })
}

/// A panic inside the guard, for tests of the guard: returns [`ERR_PANIC`].
#[no_mangle]
pub extern "C" fn kw_selftest_panic() -> c_int {
    guard(|| panic!("self-test panic"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        let mut buf = vec![0u8; 256];
        let n = unsafe { kw_last_error(buf.as_mut_ptr(), buf.len()) };
        buf.truncate(n.min(256));
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn a_panic_becomes_an_error_code_with_its_message() {
        assert_eq!(kw_selftest_panic(), ERR_PANIC);
        assert!(last_error().contains("self-test panic"), "{}", last_error());
        // And the library goes on working.
        assert_eq!(kw_abi_version(), ABI_VERSION);
    }

    fn config() -> KwConfig {
        KwConfig {
            size: size_of::<KwConfig>() as u32,
            flags: 0,
            window_ms: 5000,
            max_entries: 10,
            max_args_bytes: 100,
            max_lateness_ms: 0,
            since_ms: 0,
            until_ms: 0,
            max_inflight: 4096,
        }
    }

    #[test]
    fn arguments_are_checked() {
        unsafe {
            let mut handle: *mut Handle = std::ptr::null_mut();
            let mut bad = config();
            bad.size = 3;
            let none = std::ptr::null();
            assert_eq!(
                kw_session_new(&bad, none, 0, none, 0, &mut handle),
                ERR_ARGUMENT
            );
            assert_eq!(
                kw_session_new(&config(), none, 5, none, 0, &mut handle),
                ERR_ARGUMENT
            );
            assert_eq!(
                kw_session_new(&config(), none, 0, none, 0, std::ptr::null_mut()),
                ERR_HANDLE
            );
            assert_eq!(kw_session_new(&config(), none, 0, none, 0, &mut handle), OK);
            let mut n = 7u64;
            assert_eq!(kw_table_len(handle, &mut n), OK);
            assert_eq!(n, 0);
            assert_eq!(kw_table_len(std::ptr::null_mut(), &mut n), ERR_HANDLE);
            assert_eq!(kw_table_store(handle, b"short".as_ptr(), 5), ERR_ARGUMENT);
            assert!(last_error().contains("malformed"));
            assert_eq!(kw_set_verdict(handle, b"k".as_ptr(), 1, 256), ERR_ARGUMENT);
            assert_eq!(kw_set_verdict(handle, b"k".as_ptr(), 1, 128), OK);
            // Needles: a malformed list, an id beyond it, bad flags are refused.
            assert_eq!(
                kw_set_needles(handle, [0u8, 9, 0, 0, 0].as_ptr(), 5),
                ERR_ARGUMENT
            );
            assert!(last_error().contains("malformed"));
            let blob = [1u8, 1, 0, 0, 0, b'x'];
            assert_eq!(kw_set_needles(handle, blob.as_ptr(), blob.len()), OK);
            let ids = [0u32, 1];
            let set = |ids: &[u32], code, flags| {
                kw_set_verdict_needles(
                    handle,
                    b"k".as_ptr(),
                    1,
                    code,
                    ids.as_ptr(),
                    ids.len(),
                    flags,
                )
            };
            assert_eq!(set(&ids[..1], 0x80, 1), OK);
            assert_eq!(set(&ids, 0x80, 0), ERR_ARGUMENT);
            assert!(last_error().contains("beyond"));
            assert_eq!(set(&ids[..1], 0x80, 4), ERR_ARGUMENT);
            assert_eq!(
                set(&ids[..1], 0x80, 1 << 8),
                ERR_ARGUMENT,
                "reads without plain"
            );
            assert_eq!(
                set(&ids[..1], 0x80, 2 | (32 << 8)),
                ERR_ARGUMENT,
                "unknown reads"
            );
            assert_eq!(set(&ids[..1], 0x80, 3 | (31 << 8)), OK);
            assert_eq!(set(&ids[..1], 0x80, 2), OK);
            assert_eq!(set(&ids[..1], 0x100, 0), ERR_ARGUMENT);
            let mut kept = 9u8;
            assert_eq!(kw_plain_learned(handle, &mut kept), OK);
            assert_eq!(kept, 0, "no plain key pending");
            let (mut count, mut bytes) = (9u64, 9u64);
            assert_eq!(kw_plain_len(handle, &mut count, &mut bytes), OK);
            assert_eq!((count, bytes), (0, 0));
            assert_eq!(kw_plain_learned(handle, std::ptr::null_mut()), ERR_HANDLE);
            let misaligned32 = (b"0123456789abcdef".as_ptr() as usize | 1) as *const u32;
            assert_eq!(
                kw_set_verdict_needles(handle, b"k".as_ptr(), 1, 0, misaligned32, 1, 0),
                ERR_ARGUMENT
            );
            let misaligned = (b"0123456789abcdef".as_ptr() as usize | 1) as *const u64;
            assert_eq!(kw_set_inodes(handle, misaligned, 1), ERR_ARGUMENT);
            let state = KwState {
                present: 0,
                elapsed: 0,
                expected: 0,
                last_time_ms: 0,
                done_ceiling: -1,
            };
            let mut out = std::mem::MaybeUninit::<KwScanOut>::uninit();
            assert_eq!(
                kw_scan(
                    handle,
                    b"x\n".as_ptr(),
                    2,
                    3,
                    &state,
                    std::ptr::null(),
                    0,
                    0,
                    i64::MAX,
                    out.as_mut_ptr()
                ),
                ERR_ARGUMENT
            );
            assert_eq!(
                kw_scan(
                    handle,
                    b"x\n".as_ptr(),
                    2,
                    0,
                    &state,
                    std::ptr::null(),
                    1,
                    0,
                    i64::MAX,
                    out.as_mut_ptr()
                ),
                ERR_ARGUMENT
            );
            assert_eq!(
                kw_scan(
                    handle,
                    b"#\n".as_ptr(),
                    2,
                    0,
                    &state,
                    std::ptr::null(),
                    0,
                    0,
                    i64::MAX,
                    out.as_mut_ptr()
                ),
                OK
            );
            let out = out.assume_init();
            assert_eq!((out.end, out.stop, out.lines), (2, 0, 1));
            assert_eq!(kw_session_free(handle), OK);
        }
    }
}
