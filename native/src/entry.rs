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
///
/// Held as one boxed buffer: `_size(args)` (u64), then exactly the wire form. So an
/// entry is one allocation of its own size, moving it moves a pointer, and encoding
/// it is one copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    raw: Box<[u8]>,
}

/// Where the wire form starts in [`Entry::raw`].
const WIRE: usize = 8;

fn seg_len(len: usize) -> u32 {
    // Segments come from lines of a scanned buffer or from a checked wire entry;
    // neither can reach 4 GiB (the ABI refuses longer buffers).
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl Entry {
    /// An entry learned from an event (`source` "event").
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
        let (args_len, size, args_flags) = match &args {
            ArgsIn::Unknown => (0, 0, 0),
            ArgsIn::Raw(raw) => (raw.len(), raw.len() as u64, HAS_ARGS),
            ArgsIn::Bodies(_, ranges) => {
                let len = ranges
                    .iter()
                    .map(|(s, e)| e - s + 1)
                    .sum::<usize>()
                    .saturating_sub(1);
                (len, len as u64, HAS_ARGS)
            }
            ArgsIn::Like(other) => match other.args_segment() {
                Some(stored) => (
                    stored.len(),
                    other.args_size(),
                    HAS_ARGS | (other.flags() & ARGS_ARGV),
                ),
                None => (0, 0, 0),
            },
        };
        let mut flags = args_flags;
        if ppid.is_some() {
            flags |= HAS_PPID;
        }
        if let Some((_, raw)) = comm {
            flags |= HAS_COMM | if raw { COMM_RAW } else { 0 };
        }
        if let Some((_, raw)) = exe {
            flags |= HAS_EXE | if raw { EXE_RAW } else { 0 };
        }
        if exec_id.is_some() {
            flags |= HAS_EXEC_ID;
        }
        if extra.is_some() {
            flags |= HAS_EXTRA;
        }
        let value = |v: Option<(&[u8], bool)>| v.map_or(0, |(v, _)| v.len());
        let lens = [
            value(comm),
            value(exe),
            args_len,
            exec_id.map_or(0, <[u8]>::len),
            extra.map_or(0, <[u8]>::len),
            5,
        ];
        let mut raw = Vec::with_capacity(WIRE + HEADER + lens.iter().sum::<usize>());
        raw.extend_from_slice(&size.to_le_bytes());
        raw.extend_from_slice(&pid.to_le_bytes());
        raw.extend_from_slice(&ppid.unwrap_or(0).to_le_bytes());
        raw.extend_from_slice(&since_ms.to_le_bytes());
        raw.extend_from_slice(&flags.to_le_bytes());
        for len in &lens {
            raw.extend_from_slice(&seg_len(*len).to_le_bytes());
        }
        if let Some((v, _)) = comm {
            raw.extend_from_slice(v);
        }
        if let Some((v, _)) = exe {
            raw.extend_from_slice(v);
        }
        match args {
            ArgsIn::Unknown => {}
            ArgsIn::Raw(bytes) => raw.extend_from_slice(bytes),
            ArgsIn::Bodies(buf, ranges) => {
                for (n, &(start, end)) in ranges.iter().enumerate() {
                    if n > 0 {
                        raw.push(b'\n');
                    }
                    raw.extend_from_slice(&buf[start..end]);
                }
            }
            ArgsIn::Like(other) => {
                if let Some(stored) = other.args_segment() {
                    raw.extend_from_slice(stored);
                }
            }
        }
        raw.extend_from_slice(exec_id.unwrap_or(b""));
        raw.extend_from_slice(extra.unwrap_or(b""));
        raw.extend_from_slice(b"event");
        Entry {
            raw: raw.into_boxed_slice(),
        }
    }

    /// The entry with no data (a freed slot's placeholder; allocates nothing).
    pub fn empty() -> Entry {
        Entry {
            raw: Vec::new().into_boxed_slice(),
        }
    }

    fn i128_at(&self, at: usize) -> i128 {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&self.raw[WIRE + at..WIRE + at + 16]);
        i128::from_le_bytes(bytes)
    }

    fn u32_at(&self, at: usize) -> u32 {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(&self.raw[WIRE + at..WIRE + at + 4]);
        u32::from_le_bytes(bytes)
    }

    /// The pid.
    pub fn pid(&self) -> i128 {
        self.i128_at(0)
    }

    /// The parent pid, if known.
    pub fn ppid(&self) -> Option<i128> {
        if self.flags() & HAS_PPID != 0 {
            Some(self.i128_at(16))
        } else {
            None
        }
    }

    /// When the entry was learned (ms).
    pub fn since_ms(&self) -> i128 {
        self.i128_at(32)
    }

    fn flags(&self) -> u32 {
        self.u32_at(48)
    }

    fn segment(&self, index: usize) -> &[u8] {
        let start: usize = (0..index).map(|n| self.u32_at(52 + 4 * n) as usize).sum();
        let at = WIRE + HEADER + start;
        &self.raw[at..at + self.u32_at(52 + 4 * index) as usize]
    }

    /// `_size(args)`: what this entry's argv counts against `max_args_bytes`.
    pub fn args_size(&self) -> u64 {
        if self.raw.is_empty() {
            return 0;
        }
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&self.raw[..WIRE]);
        u64::from_le_bytes(bytes)
    }

    /// `comm` as stored, and whether it is raw (as written in the SYSCALL record).
    pub fn comm(&self) -> Option<(&[u8], bool)> {
        let flags = self.flags();
        if flags & HAS_COMM != 0 {
            Some((self.segment(COMM), flags & COMM_RAW != 0))
        } else {
            None
        }
    }

    /// `exe` as stored, and whether it is raw.
    pub fn exe(&self) -> Option<(&[u8], bool)> {
        let flags = self.flags();
        if flags & HAS_EXE != 0 {
            Some((self.segment(EXE), flags & EXE_RAW != 0))
        } else {
            None
        }
    }

    /// The argv segment as stored (raw bodies, or encoded items), if known.
    pub fn args_segment(&self) -> Option<&[u8]> {
        if self.flags() & HAS_ARGS != 0 {
            Some(self.segment(ARGS))
        } else {
            None
        }
    }

    /// Whether the argv is decoded items rather than raw bodies.
    pub fn args_are_argv(&self) -> bool {
        self.flags() & ARGS_ARGV != 0
    }

    /// The `exec_id` text, if known.
    pub fn exec_id(&self) -> Option<&[u8]> {
        if self.flags() & HAS_EXEC_ID != 0 {
            Some(self.segment(EXEC_ID))
        } else {
            None
        }
    }

    /// The `source` text (`event` or `procfs`).
    pub fn source(&self) -> &[u8] {
        self.segment(SOURCE)
    }

    /// The `extra` blob, if any.
    pub fn extra(&self) -> Option<&[u8]> {
        if self.flags() & HAS_EXTRA != 0 {
            Some(self.segment(EXTRA))
        } else {
            None
        }
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
        Entry::new(
            child,
            Some(pid),
            since_ms,
            Some(comm),
            Some(exe),
            args,
            exec_id,
            extra,
        )
    }

    /// Append the wire form of this entry to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.raw[WIRE..]);
    }

    /// Read one wire entry that fills `wire` exactly; every length is checked.
    pub fn decode(wire: &[u8]) -> Result<Entry, WireError> {
        if wire.len() < HEADER {
            return Err(WireError::Short);
        }
        let u32_at = |at: usize| {
            let mut bytes = [0u8; 4];
            bytes.copy_from_slice(&wire[at..at + 4]);
            u32::from_le_bytes(bytes)
        };
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
        let args_start = HEADER + lens[COMM] as usize + lens[EXE] as usize;
        let args = &wire[args_start..args_start + lens[ARGS] as usize];
        let size = if flags & ARGS_ARGV != 0 {
            argv_size(args).ok_or(WireError::Argv)?
        } else {
            u64::from(lens[ARGS])
        };
        let mut raw = Vec::with_capacity(WIRE + wire.len());
        raw.extend_from_slice(&size.to_le_bytes());
        raw.extend_from_slice(wire);
        Ok(Entry {
            raw: raw.into_boxed_slice(),
        })
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
        assert_eq!(wire.len(), HEADER + 4 + 14 + 7 + 12 + 5);
        let back = Entry::decode(&wire).unwrap();
        assert_eq!(back, entry);
        assert_eq!(back.pid(), -7);
        assert_eq!(back.ppid(), Some(1 << 80));
        assert_eq!(back.since_ms(), 253_402_300_800_000_000);
        assert_eq!(back.extra(), Some(&b"auid=0 uid=0"[..]));
        assert_eq!(back.source(), b"event");
    }

    #[test]
    fn decoded_argv_counts_eight_bytes_per_item() {
        let args = argv_wire(&[b"ls", b"-l", b""]);
        let mut wire = Vec::new();
        Entry::new(1, None, 0, None, None, ArgsIn::Raw(&args), None, None).encode(&mut wire);
        wire[48] |= ARGS_ARGV as u8;
        let entry = Entry::decode(&wire).unwrap();
        assert_eq!(entry.args_size(), 4 + 3 * 8); // "ls" + "-l" + "", 8 per item
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
        Entry::new(
            1,
            None,
            0,
            Some((b"a", false)),
            None,
            ArgsIn::Unknown,
            None,
            None,
        )
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
        let child = Entry::forked(
            6,
            5,
            20,
            (b"sh", true),
            (b"/bin/sh", true),
            Some(&parent),
            None,
        );
        assert_eq!(child.args_segment(), parent.args_segment());
        assert_eq!(child.exec_id(), Some(&b"1.000:9"[..]));
        assert_eq!(child.args_size(), parent.args_size());
        assert_eq!(child.source(), b"event");
        assert_eq!(child.ppid(), Some(5));
        assert_eq!(child.pid(), 6);
    }
}
