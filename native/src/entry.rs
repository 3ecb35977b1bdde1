//! One process-table entry, and its wire form (how entries cross the C ABI).
//!
//! An entry keeps its variable fields in one buffer, one segment after the other:
//! `comm`, `exe`, `args`, `exec_id`, `extra`, `source`. The wire form is a fixed
//! header followed by those same segments, so encoding is one copy and decoding one
//! validation pass. `kexecwatch/native/binding.py` reads and writes it; the layout:
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 16 | `pid`, i128 little-endian |
//! | 16 | 16 | `ppid` (meaningful with [`HAS_PPID`]) |
//! | 32 | 16 | `since_ms` |
//! | 48 | 4  | flags, u32 (the `HAS_*`/`*_RAW`/`ARGS_ARGV` bits below) |
//! | 52 | 24 | six u32 segment lengths: comm, exe, args, exec_id, extra, source |
//! | 76 | …  | the segments, in that order |
//!
//! `args` is either raw `EXECVE` bodies joined by `\n` (a `bytes` value in Python), or,
//! with [`ARGS_ARGV`], a decoded argv written as (u32 length, bytes) items.
//! A segment whose `HAS_*` bit is clear must be empty.

pub const HAS_PPID: u32 = 1;
pub const HAS_COMM: u32 = 2;
pub const COMM_RAW: u32 = 4;
pub const HAS_EXE: u32 = 8;
pub const EXE_RAW: u32 = 16;
pub const HAS_ARGS: u32 = 32;
pub const ARGS_ARGV: u32 = 64;
pub const HAS_EXEC_ID: u32 = 128;
pub const HAS_EXTRA: u32 = 256;
const ALL_FLAGS: u32 = 511;

/// Bytes of the fixed wire header.
pub const HEADER: usize = 76;

const COMM: usize = 0;
const EXE: usize = 1;
const ARGS: usize = 2;
const EXEC_ID: usize = 3;
const EXTRA: usize = 4;
const SOURCE: usize = 5;

/// Why a wire entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    Short,
    Flags,
    Lengths,
    Argv,
}

/// How an entry's argv is given to [`Entry::new`].
pub enum ArgsIn<'a> {
    /// Unknown (`None` in Python).
    Unknown,
    /// Raw `EXECVE` bodies: `buf[start..end]` for each range, joined by `\n`.
    Bodies(&'a [u8], &'a [(usize, usize)]),
    /// Raw bodies already joined.
    Raw(&'a [u8]),
    /// The argv of another entry, as it is stored there.
    Like(&'a Entry),
}

/// A process-table entry (the `RawEntry` tuple of the Python binding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub pid: i128,
    pub ppid: Option<i128>,
    pub since_ms: i128,
    flags: u32,
    lens: [u32; 6],
    data: Vec<u8>,
    /// `_size(args)` of proctable.py: bytes of raw argv, or the sum of the items'
    /// lengths plus 8 per item for a decoded argv.
    size: u64,
}

fn seg_len(len: usize) -> u32 {
    // Segments come from lines of a scanned buffer or from a checked wire entry;
    // neither can reach 4 GiB (the ABI refuses longer buffers).
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl Entry {
    /// An entry learned from an event (`source` "event") or injected by Python.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pid: i128,
        ppid: Option<i128>,
        since_ms: i128,
        comm: Option<(&[u8], bool)>,
        exe: Option<(&[u8], bool)>,
        args: ArgsIn<'_>,
        exec_id: Option<&[u8]>,
        extra: Option<&[u8]>,
    ) -> Entry {
        let mut flags = 0;
        if ppid.is_some() {
            flags |= HAS_PPID;
        }
        let mut data = Vec::new();
        let mut lens = [0u32; 6];
        if let Some((value, raw)) = comm {
            flags |= HAS_COMM | if raw { COMM_RAW } else { 0 };
            data.extend_from_slice(value);
            lens[COMM] = seg_len(value.len());
        }
        if let Some((value, raw)) = exe {
            flags |= HAS_EXE | if raw { EXE_RAW } else { 0 };
            data.extend_from_slice(value);
            lens[EXE] = seg_len(value.len());
        }
        let before = data.len();
        match args {
            ArgsIn::Unknown | ArgsIn::Like(_) => {}
            ArgsIn::Raw(raw) => {
                flags |= HAS_ARGS;
                data.extend_from_slice(raw);
            }
            ArgsIn::Bodies(buf, ranges) => {
                flags |= HAS_ARGS;
                for (n, &(start, end)) in ranges.iter().enumerate() {
                    if n > 0 {
                        data.push(b'\n');
                    }
                    data.extend_from_slice(&buf[start..end]);
                }
            }
        }
        let mut size = (data.len() - before) as u64;
        if let ArgsIn::Like(other) = args {
            if let Some(stored) = other.args_segment() {
                flags |= HAS_ARGS | (other.flags & ARGS_ARGV);
                data.extend_from_slice(stored);
                size = other.size;
            }
        }
        lens[ARGS] = seg_len(data.len() - before);
        if let Some(value) = exec_id {
            flags |= HAS_EXEC_ID;
            data.extend_from_slice(value);
            lens[EXEC_ID] = seg_len(value.len());
        }
        if let Some(value) = extra {
            flags |= HAS_EXTRA;
            data.extend_from_slice(value);
            lens[EXTRA] = seg_len(value.len());
        }
        data.extend_from_slice(b"event");
        lens[SOURCE] = 5;
        Entry {
            pid,
            ppid,
            since_ms,
            flags,
            lens,
            data,
            size,
        }
    }

    /// The entry with no data (a freed slot's placeholder; allocates nothing).
    pub fn empty() -> Entry {
        Entry {
            pid: 0,
            ppid: None,
            since_ms: 0,
            flags: 0,
            lens: [0; 6],
            data: Vec::new(),
            size: 0,
        }
    }

    fn segment(&self, index: usize) -> &[u8] {
        let start: usize = self.lens[..index].iter().map(|&n| n as usize).sum();
        &self.data[start..start + self.lens[index] as usize]
    }

    /// `_size(args)`: what this entry's argv counts against `max_args_bytes`.
    pub fn args_size(&self) -> u64 {
        self.size
    }

    /// The argv segment as stored (raw bodies, or encoded items), if known.
    pub fn args_segment(&self) -> Option<&[u8]> {
        if self.flags & HAS_ARGS != 0 {
            Some(self.segment(ARGS))
        } else {
            None
        }
    }

    /// Whether the argv is decoded items rather than raw bodies.
    pub fn args_are_argv(&self) -> bool {
        self.flags & ARGS_ARGV != 0
    }

    /// The `exec_id` text, if known.
    pub fn exec_id(&self) -> Option<&[u8]> {
        if self.flags & HAS_EXEC_ID != 0 {
            Some(self.segment(EXEC_ID))
        } else {
            None
        }
    }

    /// The `source` text (`event` or `procfs`).
    pub fn source(&self) -> &[u8] {
        self.segment(SOURCE)
    }

    /// A fork child's entry: `ProcessTable.learn`'s copy of the forking pid's argv
    /// and exec id (from `known`, its latest entry, if any) under the child's pid.
    #[allow(clippy::too_many_arguments)]
    pub fn forked(
        child: i128,
        pid: i128,
        since_ms: i128,
        comm: (&[u8], bool),
        exe: (&[u8], bool),
        known: Option<&Entry>,
        extra: Option<&[u8]>,
    ) -> Entry {
        let args = known.map_or(ArgsIn::Unknown, ArgsIn::Like);
        let exec_id = known.and_then(Entry::exec_id);
        Entry::new(child, Some(pid), since_ms, Some(comm), Some(exe), args, exec_id, extra)
    }

    /// Append the wire form of this entry to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(HEADER + self.data.len());
        out.extend_from_slice(&self.pid.to_le_bytes());
        out.extend_from_slice(&self.ppid.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&self.since_ms.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        for len in &self.lens {
            out.extend_from_slice(&len.to_le_bytes());
        }
        out.extend_from_slice(&self.data);
    }

    /// Read one wire entry that fills `wire` exactly; every length is checked.
    pub fn decode(wire: &[u8]) -> Result<Entry, WireError> {
        if wire.len() < HEADER {
            return Err(WireError::Short);
        }
        let i128_at = |at: usize| i128::from_le_bytes(wire[at..at + 16].try_into().unwrap());
        let u32_at = |at: usize| u32::from_le_bytes(wire[at..at + 4].try_into().unwrap());
        let flags = u32_at(48);
        if flags & !ALL_FLAGS != 0
            || (flags & HAS_COMM == 0 && flags & COMM_RAW != 0)
            || (flags & HAS_EXE == 0 && flags & EXE_RAW != 0)
            || (flags & HAS_ARGS == 0 && flags & ARGS_ARGV != 0)
        {
            return Err(WireError::Flags);
        }
        let mut lens = [0u32; 6];
        let mut total: u64 = 0;
        for (n, len) in lens.iter_mut().enumerate() {
            *len = u32_at(52 + 4 * n);
            total += u64::from(*len);
        }
        if total != (wire.len() - HEADER) as u64 {
            return Err(WireError::Lengths);
        }
        let present = [HAS_COMM, HAS_EXE, HAS_ARGS, HAS_EXEC_ID, HAS_EXTRA];
        for (n, bit) in present.iter().enumerate() {
            if flags & bit == 0 && lens[n] != 0 {
                return Err(WireError::Lengths);
            }
        }
        let data = wire[HEADER..].to_vec();
        let mut entry = Entry {
            pid: i128_at(0),
            ppid: if flags & HAS_PPID != 0 {
                Some(i128_at(16))
            } else {
                None
            },
            since_ms: i128_at(32),
            flags,
            lens,
            data,
            size: 0,
        };
        entry.size = if flags & ARGS_ARGV != 0 {
            argv_size(entry.segment(ARGS)).ok_or(WireError::Argv)?
        } else {
            u64::from(lens[ARGS])
        };
        Ok(entry)
    }
}

/// `_size()` of an encoded argv (u32 length, bytes)*; `None` if it does not parse.
fn argv_size(mut items: &[u8]) -> Option<u64> {
    let mut size: u64 = 0;
    while !items.is_empty() {
        if items.len() < 4 {
            return None;
        }
        let len = u32::from_le_bytes(items[..4].try_into().unwrap()) as usize;
        if items.len() - 4 < len {
            return None;
        }
        size += len as u64 + 8;
        items = &items[4 + len..];
    }
    Some(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv_wire(items: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for item in items {
            out.extend_from_slice(&(item.len() as u32).to_le_bytes());
            out.extend_from_slice(item);
        }
        out
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let entry = Entry::new(
            -7,
            Some(1 << 80),
            253_402_300_800_000_000,
            Some((b"\"sh\"", true)),
            None,
            ArgsIn::Raw(b"argc=1 a0=\"sh\""),
            Some(b"1.002:3"),
            Some(b"auid=0 uid=0"),
        );
        let mut wire = Vec::new();
        entry.encode(&mut wire);
        assert_eq!(wire.len(), HEADER + entry.data.len());
        assert_eq!(Entry::decode(&wire), Ok(entry));
    }

    #[test]
    fn decoded_argv_counts_eight_bytes_per_item() {
        let args = argv_wire(&[b"ls", b"-l", b""]);
        let mut wire = Vec::new();
        Entry::new(1, None, 0, None, None, ArgsIn::Raw(&args), None, None).encode(&mut wire);
        wire[48] |= ARGS_ARGV as u8;
        let entry = Entry::decode(&wire).unwrap();
        assert_eq!(entry.args_size(), 2 + 2 + 0 + 3 * 8);
        assert!(entry.args_are_argv());
    }

    #[test]
    fn bodies_are_joined_by_newlines() {
        let buf = b"xx a0=1 yy a1=2 zz";
        let entry = Entry::new(
            1,
            None,
            0,
            None,
            None,
            ArgsIn::Bodies(buf, &[(3, 7), (11, 15)]),
            None,
            None,
        );
        assert_eq!(entry.args_segment(), Some(&b"a0=1\na1=2"[..]));
        assert_eq!(entry.args_size(), 9);
    }

    #[test]
    fn hostile_wire_is_refused() {
        let mut wire = Vec::new();
        Entry::new(1, None, 0, Some((b"a", false)), None, ArgsIn::Unknown, None, None)
            .encode(&mut wire);
        assert_eq!(Entry::decode(&wire[..HEADER - 1]), Err(WireError::Short));
        let mut longer = wire.clone();
        longer.push(0);
        assert_eq!(Entry::decode(&longer), Err(WireError::Lengths));
        let mut flags = wire.clone();
        flags[49] = 0xff;
        assert_eq!(Entry::decode(&flags), Err(WireError::Flags));
        let mut huge = wire.clone();
        huge[52..56].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Entry::decode(&huge), Err(WireError::Lengths));
        let mut absent = wire.clone();
        absent[48] &= !(HAS_COMM as u8);
        assert_eq!(Entry::decode(&absent), Err(WireError::Lengths));
        let args = [5u8, 0, 0, 0, b'a'];
        let mut bad_argv = Vec::new();
        Entry::new(1, None, 0, None, None, ArgsIn::Raw(&args), None, None).encode(&mut bad_argv);
        bad_argv[48] |= ARGS_ARGV as u8;
        assert_eq!(Entry::decode(&bad_argv), Err(WireError::Argv));
    }

    #[test]
    fn fork_copies_the_known_argv_and_exec_id() {
        let parent = Entry::new(
            5,
            Some(1),
            10,
            Some((b"sh", false)),
            None,
            ArgsIn::Raw(b"argc=1 a0=sh"),
            Some(b"1.000:9"),
            None,
        );
        let child = Entry::forked(6, 5, 20, (b"sh", true), (b"/bin/sh", true), Some(&parent), None);
        assert_eq!(child.args_segment(), parent.args_segment());
        assert_eq!(child.exec_id(), Some(&b"1.000:9"[..]));
        assert_eq!(child.args_size(), parent.args_size());
        assert_eq!(child.source(), b"event");
        assert_eq!(child.ppid, Some(5));
    }
}
