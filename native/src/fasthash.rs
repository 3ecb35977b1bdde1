//! A fast hasher for integer keys: the process table's pids, the inode set, the done
//! store's event ids.
//!
//! std's default SipHash-1-3 costs more than the rest of a table lookup for a u64 key.
//! This one mixes each 8-byte word into the state with one folded multiply (the full
//! 128-bit product of state and a constant, its halves xored), seeded once per table
//! from std's `RandomState`, so the bucket of a key is not known in advance from the
//! log alone. Keys of arbitrary bytes (the verdict cache's comm and exe, chosen by
//! whoever names a program) keep SipHash: its keys are attacker text.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// An odd 64-bit constant with well-spread bits (the golden ratio's).
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// The hasher: the state after the words written so far.
#[derive(Clone, Copy, Debug)]
pub struct IntHasher {
    state: u64,
}

impl Hasher for IntHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(word);
            self.write_u64(u64::from_le_bytes(b));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut b = [0u8; 8];
            b[..tail.len()].copy_from_slice(tail);
            // The length keeps "a" and "a\0" apart.
            self.write_u64(u64::from_le_bytes(b) ^ ((tail.len() as u64) << 59));
        }
    }

    #[inline(always)]
    fn write_u64(&mut self, word: u64) {
        self.state = fold(self.state ^ word, MULTIPLIER);
    }

    #[inline(always)]
    fn write_i64(&mut self, value: i64) {
        self.write_u64(value as u64);
    }

    #[inline(always)]
    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }

    #[inline(always)]
    fn write_i128(&mut self, value: i128) {
        self.write_u64(value as u64);
        self.write_u64((value >> 64) as u64);
    }

    #[inline(always)]
    fn finish(&self) -> u64 {
        self.state
    }
}

/// Builds [`IntHasher`]s from a seed drawn once, when the map is made.
#[derive(Clone, Copy, Debug)]
pub struct IntHash {
    seed: u64,
}

impl IntHash {
    /// A builder with a fixed seed (tests).
    pub fn with_seed(seed: u64) -> IntHash {
        IntHash { seed }
    }
}

impl Default for IntHash {
    fn default() -> IntHash {
        let mut random = RandomState::new().build_hasher();
        random.write_u64(MULTIPLIER);
        IntHash {
            seed: random.finish(),
        }
    }
}

impl BuildHasher for IntHash {
    type Hasher = IntHasher;

    #[inline(always)]
    fn build_hasher(&self) -> IntHasher {
        IntHasher { state: self.seed }
    }
}

/// A map from integers with [`IntHash`].
pub type IntMap<K, V> = std::collections::HashMap<K, V, IntHash>;
/// A set of integers with [`IntHash`].
pub type IntSet<K> = std::collections::HashSet<K, IntHash>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn hash_of(build: &IntHash, f: impl Fn(&mut IntHasher)) -> u64 {
        let mut h = build.build_hasher();
        f(&mut h);
        h.finish()
    }

    #[test]
    fn sequential_and_high_bit_keys_spread_over_buckets() {
        let build = IntHash::with_seed(0);
        for keys in [
            (0..4096u64).collect::<Vec<_>>(),
            (0..4096u64).map(|k| k << 32).collect(),
            (0..4096u64).map(|k| k << 52).collect(),
        ] {
            // The low 12 bits pick the bucket of a 4096-bucket table; the top 7 are
            // hashbrown's tag. Both must take many values.
            let low: HashSet<u64> = keys
                .iter()
                .map(|&k| hash_of(&build, |h| h.write_u64(k)) & 0xfff)
                .collect();
            let top: HashSet<u64> = keys
                .iter()
                .map(|&k| hash_of(&build, |h| h.write_u64(k)) >> 57)
                .collect();
            assert!(low.len() > 2400, "{}", low.len());
            assert_eq!(top.len(), 128);
        }
    }

    #[test]
    fn seeds_differ_and_bytes_keep_their_length() {
        assert_ne!(IntHash::default().seed, IntHash::default().seed);
        let build = IntHash::with_seed(7);
        let a = hash_of(&build, |h| h.write(b"a"));
        let a0 = hash_of(&build, |h| h.write(b"a\0"));
        let empty = hash_of(&build, |h| h.write(b""));
        assert!(a != a0 && a != empty && a0 != empty);
        let wide = hash_of(&build, |h| h.write_i128(1 << 100));
        assert_ne!(wide, hash_of(&build, |h| h.write_i128(1)));
    }

    #[test]
    fn maps_work_with_it() {
        let mut map: IntMap<i128, usize> = IntMap::default();
        for k in -500i128..500 {
            map.insert(k << 70, k as usize);
        }
        assert_eq!(map.len(), 1000);
        assert_eq!(map.get(&(-3i128 << 70)), Some(&(-3i128 as usize)));
        let mut set: IntSet<u64> = IntSet::default();
        set.extend([1, 2, 3]);
        assert!(set.contains(&2) && !set.contains(&4));
        // Tuples of event ids (sec, ms, serial), as the done store keeps them.
        let mut ids: IntSet<(i64, i64, i64)> = IntSet::default();
        for serial in 0..10_000 {
            ids.insert((1_700_000_000 + serial / 1000, serial % 1000, serial));
        }
        assert_eq!(ids.len(), 10_000);
        assert!(ids.contains(&(1_700_000_009, 999, 9_999)));
        assert!(!ids.contains(&(1_700_000_009, 999, 9_998)));
    }
}
