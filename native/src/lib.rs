//! kexecwatch-native: the native bulk path of kexecwatch (issue 11).
//!
//! Python keeps the meaning; this library is a conservative filter. A session holds
//! one detector's process table (table.rs, the rules of
//! `kexecwatch/core/process/table.py`) and verdict cache (verdicts.rs, with Python's
//! answers per plain facts: plain.rs), and the done store (done.rs: the events its scans took, for the
//! assembler's done set). A scan (scan.rs)
//! takes, from a stretch of the audit log where the Python assembler is quiet, only
//! the events whose effect it reproduces exactly (table updates, counters, done-set
//! entries, lost-event reports), and hands everything else back to Python.
//!
//! The C ABI is in ffi.rs, the only module with `unsafe`. The contract between this
//! crate and its Python side is the "native" section of the project README and
//! `kexecwatch/native/binding.py`. Standard library only; builds with rustc 1.63.

#![deny(unsafe_code)]

pub mod done;
pub mod entry;
pub mod fasthash;
pub mod ffi;
pub mod gaps;
pub mod lines;
pub mod needles;
pub mod parent;
pub mod plain;
pub mod render;
pub mod scan;
pub mod session;
pub mod state;
pub mod syscall;
pub mod table;
pub mod verdicts;

#[cfg(test)]
mod scan_tests;
