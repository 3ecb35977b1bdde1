//! Finding line ends fast: eight bytes at a time (SWAR over `u64` words), in safe Rust.
//!
//! One pass finds the newline that ends a line and says whether the line holds a
//! carriage return or a NUL on the way (the scanner hands such lines back: a NUL is
//! corruption the reference path reports, a `\r` is stripped by `parse_record`).

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;
const NEWLINES: u64 = ONES * b'\n' as u64;
const RETURNS: u64 = ONES * b'\r' as u64;

/// High bit set in each byte of `x` that is zero. Bits above the lowest zero byte
/// may be set wrongly (a borrow), so only the lowest set bit is to be trusted.
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The offset of the first `\n` at or after `from`, and whether a `\r` or NUL
/// comes before it; `None` when the buffer has no newline from there.
#[inline]
pub fn line_end(buf: &[u8], from: usize) -> (Option<usize>, bool) {
    let mut bad = false;
    let mut i = from;
    let mut chunks = buf.get(from..).unwrap_or(&[]).chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        loop {
            let hits = zero_bytes(word ^ NEWLINES) | zero_bytes(word ^ RETURNS) | zero_bytes(word);
            if hits == 0 {
                break;
            }
            let at = (hits.trailing_zeros() / 8) as usize;
            if chunk[at] == b'\n' {
                return (Some(i + at), bad);
            }
            bad = true;
            // Mask the bytes up to this one (set them to a harmless value) and look on.
            let keep = if at == 7 { 0 } else { u64::MAX << (8 * (at + 1)) };
            word = (word & keep) | (ONES * u64::from(b'x') & !keep);
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

/// The first offset of `needle` in `hay`, if any (short needles, short haystacks).
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut at = 0;
    while at + needle.len() <= hay.len() {
        let k = hay[at..hay.len() - rest.len()].iter().position(|&b| b == first)?;
        let start = at + k;
        if &hay[start + 1..start + needle.len()] == rest {
            return Some(start);
        }
        at = start + 1;
    }
    None
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
        let pieces: [&[u8]; 6] = [b"abc", b"\n", b"\r", b"\0", b"\x80\xff", b"0123456789abcdef"];
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
    fn find_finds_the_first() {
        assert_eq!(find(b"a inode=1 inode=2", b"inode="), Some(2));
        assert_eq!(find(b"inod", b"inode="), None);
        assert_eq!(find(b"iinode=", b"inode="), Some(1));
        assert_eq!(find(b"abc", b""), None);
    }
}
