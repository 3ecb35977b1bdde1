//! Finding line ends fast: eight bytes at a time (SWAR over `u64` words), in safe Rust.
//!
//! One pass finds the newline that ends a line and says whether the line holds a
//! carriage return or a NUL on the way (the scanner hands such lines back: a NUL is
//! corruption the reference path reports, a `\r` is stripped by `parse_record`).

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;
/// Bytes below this are the candidates: `\0` to `\r` (`\n` among them).
const BELOW: u64 = ONES * 0x0e;

/// High bit set in each byte of `x` below 0x0e. Bits above the lowest such byte may be
/// set wrongly (a borrow), so only the lowest set bit is to be trusted.
#[inline(always)]
fn low_bytes(x: u64) -> u64 {
    x.wrapping_sub(BELOW) & !x & HIGHS
}

/// The bytes a block test looks at in one go.
const BLOCK: usize = 32;

/// `bytes` (at least [`BLOCK`] long) as a fixed-size block, which the compiler
/// checks once and whose byte loops it turns into vector compares (SSE2 on x86-64:
/// sixteen bytes an instruction, no `unsafe`, no intrinsics).
#[inline(always)]
fn block_of(bytes: &[u8]) -> &[u8; BLOCK] {
    match bytes[..BLOCK].try_into() {
        Ok(block) => block,
        Err(_) => unreachable!("a slice of BLOCK bytes"),
    }
}

/// Whether any byte of the block is below 0x0e (`\0` to `\r`).
#[inline(always)]
fn any_low(block: &[u8; BLOCK]) -> bool {
    let mut any = 0u8;
    for &b in block.iter() {
        any |= u8::from(b < 0x0e);
    }
    any != 0
}

/// Whether any byte of the block is `byte`.
#[inline(always)]
fn any_eq(block: &[u8; BLOCK], byte: u8) -> bool {
    let mut any = 0u8;
    for &b in block.iter() {
        any |= u8::from(b == byte);
    }
    any != 0
}

/// Whether some offset `j` of the blocks has `first` at `a[j]` and `last` at `b[j]`.
#[inline(always)]
fn any_pair(a: &[u8; BLOCK], b: &[u8; BLOCK], first: u8, last: u8) -> bool {
    let mut any = 0u8;
    for j in 0..BLOCK {
        any |= u8::from(a[j] == first) & u8::from(b[j] == last);
    }
    any != 0
}

#[inline(always)]
fn word(chunk: &[u8]) -> u64 {
    u64::from_le_bytes([
        chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
    ])
}

/// The offset of the first `\n` at or after `from`, and whether a `\r` or NUL
/// comes before it; `None` when the buffer has no newline from there.
#[inline]
pub fn line_end(buf: &[u8], from: usize) -> (Option<usize>, bool) {
    let mut bad = false;
    let mut i = from;
    let mut rest = buf.get(from..).unwrap_or(&[]);
    // Most bytes are plain text: skip 32 at a time while no byte below 0x0e shows.
    for block in rest.chunks_exact(BLOCK) {
        if any_low(block_of(block)) {
            break;
        }
        i += BLOCK;
    }
    rest = &rest[i - from..];
    let mut chunks = rest.chunks_exact(8);
    for chunk in &mut chunks {
        let mut hits = low_bytes(word(chunk));
        while hits != 0 {
            let at = (hits.trailing_zeros() / 8) as usize;
            match chunk[at] {
                b'\n' => return (Some(i + at), bad),
                b'\r' | 0 => bad = true,
                _ => {}
            }
            // Look on above this byte: recompute without it (a borrow it caused
            // may have flagged the next ones wrongly).
            let above = 8 * (at + 1);
            hits = if above == 64 {
                0
            } else {
                low_bytes((word(chunk) >> above) | (u64::MAX << (64 - above))) << above
            };
        }
        i += 8;
    }
    for (k, &byte) in chunks.remainder().iter().enumerate() {
        match byte {
            b'\n' => return (Some(i + k), bad),
            b'\r' | 0 => bad = true,
            _ => {}
        }
    }
    (None, bad)
}

/// Whether `hay` starts with `prefix`, compared eight bytes at a time in place (the
/// prefixes here are short: a call to `memcmp` would cost more than the comparison).
/// A prefix of at most eight bytes is one masked word compare (a constant prefix
/// folds into an immediate); a longer one ends with a word that overlaps the last
/// whole one instead of a byte loop.
#[inline(always)]
pub fn starts(hay: &[u8], prefix: &[u8]) -> bool {
    let n = prefix.len();
    if hay.len() < n {
        return false;
    }
    if n == 0 {
        return true;
    }
    if n <= 8 {
        if hay.len() >= 8 {
            return (word(hay) ^ padded(prefix)) & (u64::MAX >> (64 - 8 * n)) == 0;
        }
        return hay[..n] == *prefix;
    }
    let mut i = 0;
    while i + 8 <= n {
        if word(&hay[i..i + 8]) != word(&prefix[i..i + 8]) {
            return false;
        }
        i += 8;
    }
    i == n || word(&hay[n - 8..n]) == word(&prefix[n - 8..n])
}

/// The first (up to) eight bytes of `bytes` as a little-endian word, zeros after.
#[inline(always)]
fn padded(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(b)
}

/// The first offset of `byte` in `hay`, eight bytes at a time.
#[inline]
pub fn find_byte(hay: &[u8], byte: u8) -> Option<usize> {
    // Blocks without it are passed over by vector compares (an EXECVE line's
    // arguments, searched for the ENRICHED separator, are mostly such blocks).
    let mut i = 0;
    while i + BLOCK <= hay.len() && !any_eq(block_of(&hay[i..]), byte) {
        i += BLOCK;
    }
    let pattern = ONES * u64::from(byte);
    let mut chunks = hay[i..].chunks_exact(8);
    for chunk in &mut chunks {
        let x = word(chunk) ^ pattern;
        let zeros = x.wrapping_sub(ONES) & !x & HIGHS;
        if zeros != 0 {
            return Some(i + (zeros.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == byte)
        .map(|k| i + k)
}

/// The first offset of `needle` in `hay`, if any; `None` for an empty needle.
///
/// [`BLOCK`] candidate offsets at a time: a candidate needs the needle's first byte at
/// it and its last byte `len - 1` further on (vector compares of two blocks); only a
/// block with such a pair is looked at offset by offset, and only those offsets are
/// compared whole. `inode=` in a PATH or PROCTITLE record's text has almost no such
/// false candidates, where a search for its first byte alone stops at every `i` of
/// the text.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let n = needle.len();
    if n == 0 || hay.len() < n {
        return None;
    }
    let (first, last) = (needle[0], needle[n - 1]);
    let is_at = |k: usize| hay[k] == first && hay[k + n - 1] == last && starts(&hay[k..], needle);
    let mut at = 0;
    while at + n - 1 + BLOCK <= hay.len() {
        if any_pair(
            block_of(&hay[at..]),
            block_of(&hay[at + n - 1..]),
            first,
            last,
        ) {
            if let Some(k) = (at..at + BLOCK).find(|&k| is_at(k)) {
                return Some(k);
            }
        }
        at += BLOCK;
    }
    let end = hay.len() - n; // the last offset
    if at > end {
        return None;
    }
    if end + 1 >= BLOCK {
        // The offsets left, in one last block that ends with the last offset (it
        // overlaps offsets already found empty, which changes nothing).
        let from = end + 1 - BLOCK;
        if !any_pair(
            block_of(&hay[from..]),
            block_of(&hay[from + n - 1..]),
            first,
            last,
        ) {
            return None;
        }
    }
    (at..=end).find(|&k| is_at(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow(buf: &[u8], from: usize) -> (Option<usize>, bool) {
        let mut bad = false;
        for (i, &b) in buf.iter().enumerate().skip(from) {
            if b == b'\n' {
                return (Some(i), bad);
            }
            bad |= b == b'\r' || b == 0;
        }
        (None, bad)
    }

    #[test]
    fn agrees_with_a_byte_loop_everywhere() {
        let pieces: [&[u8]; 8] = [
            b"abc",
            b"\n",
            b"\r",
            b"\0",
            b"\x80\xff",
            b"0123456789abcdef",
            b"\t\x0b\x0c\x01",
            b"\x0e\x0d\x0a",
        ];
        let mut seed: u32 = 7;
        for _ in 0..3000 {
            let mut buf = Vec::new();
            for _ in 0..(seed % 12) {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                buf.extend_from_slice(pieces[(seed >> 16) as usize % pieces.len()]);
            }
            for from in 0..=buf.len() {
                assert_eq!(line_end(&buf, from), slow(&buf, from), "{:?} {}", buf, from);
            }
        }
        assert_eq!(line_end(b"abc", 10), (None, false));
    }

    #[test]
    fn starts_and_find_byte_agree_with_std() {
        let hay = b"type=EXECVE msg=audit(1700000000.123:42): argc=1\x1d a0=x";
        for n in 0..hay.len() + 2 {
            let prefix = &hay[..n.min(hay.len())];
            assert!(starts(hay, prefix));
            let mut other = prefix.to_vec();
            if let Some(last) = other.last_mut() {
                *last ^= 1;
                assert!(!starts(hay, &other));
            }
        }
        assert!(!starts(b"ab", b"abc"));
        // Past a few blocks: the byte at every offset, or nowhere.
        for len in [31usize, 32, 33, 64, 95, 130] {
            for at in 0..=len {
                let mut long: Vec<u8> = (0..len).map(|k| b'a' + (k % 20) as u8).collect();
                if at < len {
                    long[at] = 0x1d;
                }
                for from in [0, 1, 7, 31, 33] {
                    let from = from.min(len);
                    assert_eq!(
                        find_byte(&long[from..], 0x1d),
                        long[from..].iter().position(|&b| b == 0x1d)
                    );
                }
            }
        }
        for byte in 0..=255u8 {
            for from in 0..hay.len() {
                assert_eq!(
                    find_byte(&hay[from..], byte),
                    hay[from..].iter().position(|&b| b == byte)
                );
            }
        }
    }

    #[test]
    fn starts_agrees_with_std_for_every_length_and_every_differing_byte() {
        let hay: Vec<u8> = (0..40u8)
            .map(|b| b.wrapping_mul(37).wrapping_add(5))
            .collect();
        for end in 0..=hay.len() {
            let hay = &hay[..end];
            for n in 0..=end + 1 {
                let prefix: Vec<u8> = hay.iter().copied().chain([7u8]).take(n).collect();
                assert_eq!(
                    starts(hay, &prefix),
                    hay.starts_with(&prefix),
                    "{} {}",
                    end,
                    n
                );
                for at in 0..prefix.len() {
                    let mut other = prefix.clone();
                    other[at] ^= 0x80;
                    assert_eq!(
                        starts(hay, &other),
                        hay.starts_with(&other),
                        "{} {} {}",
                        end,
                        n,
                        at
                    );
                }
            }
        }
    }

    #[test]
    fn find_agrees_with_a_window_search_on_long_texts() {
        // Texts past a few blocks, with needles and near misses (first byte only,
        // last byte only, both but a middle byte wrong) at every distance.
        let slow = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
        let pieces: [&[u8]; 7] = [
            b"inode=",
            b"i",
            b"=",
            b"inodx=",
            b"ixxxx=",
            b"name=\"/x\" ",
            b"0123456789abcdef",
        ];
        let mut seed: u32 = 5;
        for _ in 0..3000 {
            let mut hay = Vec::new();
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            for _ in 0..(seed >> 16) % 30 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let piece = pieces[(seed >> 16) as usize % pieces.len()];
                if piece == b"inode=" && (seed >> 8) % 4 != 0 {
                    continue; // keep most texts without a match
                }
                hay.extend_from_slice(piece);
            }
            for from in 0..hay.len().min(40) {
                for needle in [&b"inode="[..], b"i=", b"ix", b"0123456789abcdef0"] {
                    assert_eq!(find(&hay[from..], needle), slow(&hay[from..], needle));
                }
            }
        }
    }

    #[test]
    fn find_finds_the_first() {
        assert_eq!(find(b"a inode=1 inode=2", b"inode="), Some(2));
        assert_eq!(find(b"inod", b"inode="), None);
        assert_eq!(find(b"iinode=", b"inode="), Some(1));
        assert_eq!(find(b"abc", b""), None);
        assert_eq!(find(b"", b"a"), None);
        assert_eq!(find(b"a", b"a"), Some(0));
    }

    #[test]
    fn find_agrees_with_a_window_search_everywhere() {
        let slow = |hay: &[u8], needle: &[u8]| {
            if needle.is_empty() {
                return None;
            }
            hay.windows(needle.len()).position(|w| w == needle)
        };
        let needles: [&[u8]; 6] = [b"inode=", b"i", b"ii", b"\x80=", b"\0\0", b"inode=inode="];
        let alphabet = b"ino de=\0\x80\xff\n";
        let mut seed: u32 = 11;
        for _ in 0..4000 {
            let mut hay = Vec::new();
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            for _ in 0..(seed >> 16) % 40 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                hay.push(alphabet[(seed >> 16) as usize % alphabet.len()]);
            }
            for needle in needles.iter() {
                for from in 0..=hay.len() {
                    assert_eq!(find(&hay[from..], needle), slow(&hay[from..], needle));
                }
            }
        }
        // A match at the very end, past the last whole word of candidates.
        let mut long = vec![b'x'; 37];
        long.extend_from_slice(b"inode=");
        assert_eq!(find(&long, b"inode="), Some(37));
    }
}
