//! Execute (the `dataset` stage): the seeded random stream behind task generation and
//! shuffling. SplitMix64 with integer-only draws, so a seed gives the same items on every
//! platform and with every compiler.

/// A SplitMix64 stream: 64 bits of state, one add and a mix per draw.
#[derive(Debug, Clone)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    /// A stream starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A stream derived from `seed` for a named purpose, so that, say, generation and
    /// shuffling under one seed do not draw the same numbers.
    pub fn for_purpose(seed: u64, purpose: &str) -> Self {
        // FNV-1a over the purpose, folded into the seed.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in purpose.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut rng = Self::new(seed ^ hash);
        rng.next_u64();
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` (`0` when `n` is 0), without modulo bias: draws that
    /// fall in the incomplete last block are rejected.
    pub fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }

    /// A uniform integer in `lo..=hi` (`lo` when `hi < lo`).
    pub fn in_range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        match (hi - lo).checked_add(1) {
            Some(span) => lo + self.below(span),
            None => self.next_u64(),
        }
    }

    /// A uniform index into a slice of length `len` (`len` ≥ 1).
    pub fn index(&mut self, len: usize) -> usize {
        // usize → u64 is lossless on every supported target, and the result is < len.
        self.below(len as u64) as usize
    }

    /// `true` with probability `p` (clamped to [0, 1]). The comparison is on integers: `p`
    /// scaled by 2^32 is exact in `f64`, so the outcome is the same on every platform.
    pub fn chance(&mut self, p: f64) -> bool {
        let threshold = (p.clamp(0.0, 1.0) * 4_294_967_296.0) as u64;
        self.below(1 << 32) < threshold
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_values_are_fixed_across_platforms() {
        // SplitMix64's published first outputs for seed 0 (see Vigna's reference
        // implementation); any change here changes every generated dataset.
        let mut rng = SeededRng::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        let mut rng = SeededRng::new(42);
        let draws: Vec<u64> = (0..5).map(|_| rng.in_range(1, 100)).collect();
        assert_eq!(draws, GOLDEN_42);
    }

    /// Cross-checked against an independent Python implementation of the same draws.
    const GOLDEN_42: [u64; 5] = [14, 92, 59, 65, 51];

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = SeededRng::new(7);
        let mut seen = [false; 6];
        for _ in 0..1000 {
            let x = rng.below(6);
            assert!(x < 6);
            seen[x as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.in_range(5, 5), 5);
        let _ = rng.in_range(0, u64::MAX);
    }

    #[test]
    fn purposes_give_different_streams() {
        let a = SeededRng::for_purpose(1, "generate").next_u64();
        let b = SeededRng::for_purpose(1, "shuffle").next_u64();
        assert_ne!(a, b);
    }
}
