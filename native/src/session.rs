//! A session: one detector's native state (its process table, verdict cache and
//! inodes), its settings, and the buffers results are returned in.

use std::collections::HashSet;

use crate::done::DoneStore;
use crate::gaps::{Lost, Pending, Quiet};
use crate::needles::Present;
use crate::render::Render;
use crate::table::{Table, NO_LATENESS};
use crate::verdicts::Verdicts;

/// The settings of `NativeLib.new_session`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub window_ms: i64,
    pub max_entries: u64,
    pub max_args_bytes: u64,
    pub max_lateness_ms: Option<i64>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub live: bool,
    /// `Assembler.max_inflight`: interleaved pairs need room for two.
    pub max_inflight: i64,
    pub single_types: HashSet<Vec<u8>>,
    pub fault_on: Option<Vec<u8>>,
}

/// Why a scan stopped (`ScanResult.stop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    End = 0,
    Handback = 1,
    Verdict = 2,
    Live = 3,
    /// The last unit taken brought the scan's latest event time to `due_ms`: a
    /// sequence rule's deadline may have passed (Python matches it, then scans on).
    Due = 4,
    /// A run to render whose render key Python has not answered (render.rs).
    Render = 5,
    /// A relevant run of a plain verdict whose plain key Python has not answered
    /// (plain.rs): Python handles the run, then says whether it only learned from it
    /// (`kw_plain_learned`).
    Plain = 6,
}

/// A scan's result; the vectors are reused from call to call.
#[derive(Debug, Default)]
pub struct ScanOut {
    pub end: usize,
    pub stop: i32,
    pub key: Vec<u8>,
    pub ppid: i64,
    pub time_ms: i64,
    pub lines: u64,
    pub records: u64,
    pub events: u64,
    pub process_events: u64,
    pub last_time_ms: i64,
    /// `(sec, ms, serial, elapsed)` per taken event (the last [`DONE_KEPT`] of them).
    pub done: Vec<i64>,
    pub lost: Vec<Lost>,
    /// The state after the scan: present, elapsed, expected, last_time_ms, done_ceiling.
    pub state: [i64; 5],
    /// `(serial, sec, ms, seen_elapsed)` per serial held ahead, in dict order.
    pub ahead: Vec<i64>,
    /// `(sec, ms, serial)` per lone `LOGIN` record taken (the last [`DONE_KEPT`]):
    /// the assembler remembers them as leads, as `Assembler.push` does.
    pub leads: Vec<i64>,
}

/// How many taken events a scan reports for the done set: the assembler keeps no
/// more (`_DONE_LIMIT`), so earlier ones would be forgotten anyway.
pub const DONE_KEPT: usize = 65_536;

/// One detector's native state.
pub struct Session {
    pub settings: Settings,
    pub table: Table,
    pub verdicts: Verdicts,
    /// Encoded entries returned by the table calls.
    pub out_entries: Vec<u8>,
    pub scan: ScanOut,
    /// Scratch: the EXECVE body ranges of the event being taken.
    pub bodies: Vec<(usize, usize)>,
    /// Scratch for interleaved pairs: each event's lines.
    pub pair_a: Vec<(usize, usize)>,
    pub pair_b: Vec<(usize, usize)>,
    pub key: Vec<u8>,
    /// Scratch: the plain key of the run being judged (plain.rs).
    pub plain_key: Vec<u8>,
    /// Scratch: the command line of the run being judged (needles.rs).
    pub line: Vec<u8>,
    /// Scratch: the needles in that command line (needles.rs `Present`).
    pub present: Present,
    /// The rows of the events taken, kept between calls (`kw_done_keep`).
    pub done: DoneStore,
    /// Rows returned by `kw_done_rows`.
    pub done_out: Vec<i64>,
    /// The state after the last scan: its serials ahead serve the next scan when
    /// Python says they are still its own (`SCAN_AHEAD_KEPT`).
    pub kept: Option<Quiet>,
    /// Whether a scan lists every serial ahead in `scan.ahead` (the caller sent
    /// them all; when they were kept, the delta below is all it reads).
    pub ahead_rows_wanted: bool,
    /// What the last scan changed in the serials ahead (`Quiet::ahead_delta`).
    pub ahead_gone: Vec<i64>,
    pub ahead_added: Vec<i64>,
    /// The scans' changes to the serials ahead that Python has not pulled yet
    /// (`SCAN_AHEAD_HOLD`, `kw_ahead_pull`).
    pub pending: Pending,
    /// The id of the last event the last scan took (None after a lone LOGIN): a bare
    /// EOE of it that starts the next block is passed over while it is still done.
    pub last_taken: Option<(i64, i64, i64)>,
    /// `--events` lines written natively (render.rs).
    pub render: Render,
}

impl Session {
    /// A session with an empty table.
    pub fn new(settings: Settings) -> Session {
        let lateness = settings.max_lateness_ms.map_or(NO_LATENESS, i128::from);
        Session {
            table: Table::new(settings.max_entries, settings.max_args_bytes, lateness),
            settings,
            verdicts: Verdicts::default(),
            out_entries: Vec::new(),
            scan: ScanOut::default(),
            bodies: Vec::new(),
            pair_a: Vec::new(),
            pair_b: Vec::new(),
            key: Vec::new(),
            plain_key: Vec::new(),
            line: Vec::new(),
            present: Present::default(),
            done: DoneStore::default(),
            done_out: Vec::new(),
            kept: None,
            ahead_rows_wanted: true,
            ahead_gone: Vec::new(),
            ahead_added: Vec::new(),
            pending: Pending::default(),
            last_taken: None,
            render: Render::default(),
        }
    }
}
