//! A tiny deterministic PRNG (SplitMix64) and the backoff formula that uses it.
//!
//! The core must not touch a global RNG or a clock, so the shell seeds this generator once (for example from
//! `crypto.getRandomValues`) and every random choice after that is reproducible from the seed.

/// SplitMix64: small, fast and good enough for jitter and mutation ids.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// Creates a generator from a seed; every seed, including zero, is fine.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform-enough value in `0..=max` (the modulo bias is irrelevant for jitter).
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(bound) => self.next_u64() % bound,
            None => self.next_u64(),
        }
    }
}

/// The upper bound of the full-jitter delay after `failures` consecutive failures (1-based):
/// `min(cap, base * 2^(failures - 1))`.
pub(crate) fn backoff_ceiling(base_ms: u64, cap_ms: u64, failures: u32) -> u64 {
    let shift = failures.saturating_sub(1).min(63);
    base_ms.saturating_mul(1u64 << shift).min(cap_ms)
}

/// A full-jitter delay: uniform in `[0, backoff_ceiling(base, cap, failures)]`.
pub(crate) fn backoff_delay(rng: &mut Rng, base_ms: u64, cap_ms: u64, failures: u32) -> u64 {
    rng.up_to(backoff_ceiling(base_ms, cap_ms, failures))
}

/// Formats 128 random bits as a version-4 UUID (the form servers expect of a `clientMutationId`).
pub fn uuid_v4(a: u64, b: u64) -> String {
    let a = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let b = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFFF,
        b >> 48,
        b & 0xFFFF_FFFF_FFFF
    )
}
