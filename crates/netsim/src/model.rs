//! The fault model, sans IO: when each chunk of bytes may be written, and what state a connection's link is in.
//!
//! Time is a [`Duration`] since an epoch the shell picks (the connection's start); randomness comes from a seeded
//! [`Rng`]. Nothing here reads a clock or touches a socket, so every schedule is reproducible from its seed.

use std::time::Duration;

use crate::profile::{Connectivity, Direction, Faults, MsRange, Profile};

/// A small, seeded pseudo-random generator (SplitMix64): the same seed gives the same schedule.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A duration drawn uniformly from `range`.
    pub fn draw(&mut self, range: MsRange) -> Duration {
        let span = range.max - range.min;
        let ms = if span == 0 { range.min } else { range.min + self.next_u64() % (span + 1) };
        Duration::from_millis(ms)
    }
}

fn ms(v: f64) -> Duration {
    Duration::from_secs_f64(v.max(0.0) / 1000.0)
}

/// A token bucket on a virtual clock: it may go into debt, and a write waits until the debt is paid.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    at: Duration,
}

impl TokenBucket {
    /// A full bucket of `capacity` bytes refilled at `rate` bytes per second.
    pub fn new(rate: f64, capacity: f64, now: Duration) -> TokenBucket {
        TokenBucket { rate, capacity, tokens: capacity, at: now }
    }

    fn refill(&mut self, now: Duration) {
        if now > self.at {
            self.tokens = (self.tokens + (now - self.at).as_secs_f64() * self.rate).min(self.capacity);
            self.at = now;
        }
    }

    /// Changes the rate and depth from `now` on; tokens earned so far at the old rate are kept, up to the new depth.
    pub fn set(&mut self, rate: f64, capacity: f64, now: Duration) {
        self.refill(now);
        self.rate = rate;
        self.capacity = capacity;
        self.tokens = self.tokens.min(capacity);
    }

    /// Spends `len` bytes at `now` and returns when they have all gone out at the bucket's rate.
    pub fn take(&mut self, now: Duration, len: usize) -> Duration {
        self.refill(now);
        self.tokens -= len as f64;
        let now = now.max(self.at);
        if self.tokens >= 0.0 {
            now
        } else {
            now + Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// A part of a read and the moment it may be written on the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// How many bytes.
    pub len: usize,
    /// When to write them.
    pub release_at: Duration,
}

/// The schedule of one direction of one connection: bandwidth, latency, jitter and slicing.
///
/// Release times never decrease, so bytes are never reordered, and every piece is released at least its direction's
/// latency after it was read. Latency is pipelined: it delays bytes without lowering the throughput.
#[derive(Debug, Clone)]
pub struct Shaper {
    rng: Rng,
    bucket: Option<TokenBucket>,
    last_release: Duration,
}

impl Shaper {
    /// A shaper drawing its jitter from `seed`.
    pub fn new(seed: u64) -> Shaper {
        Shaper { rng: Rng::new(seed), bucket: None, last_release: Duration::ZERO }
    }

    /// Schedules `len` bytes read at `now` under the figures of `dir` (the current profile's, which may have
    /// changed since the last read).
    pub fn schedule(&mut self, now: Duration, len: usize, dir: &Direction) -> Vec<Piece> {
        let bucket_depth = match (dir.bytes_per_sec(), dir.bucket_bytes()) {
            (Some(rate), Some(depth)) => {
                match &mut self.bucket {
                    Some(b) => b.set(rate, depth, now),
                    None => self.bucket = Some(TokenBucket::new(rate, depth, now)),
                }
                Some(depth)
            }
            _ => {
                self.bucket = None;
                None
            }
        };
        // Pieces no bigger than a slice or the bucket's depth, so a large read is paced rather than sent in bursts.
        let mut max_piece = dir.slice_bytes.unwrap_or(usize::MAX);
        if let Some(depth) = bucket_depth {
            max_piece = max_piece.min(depth.max(1.0) as usize);
        }
        let mut pieces = Vec::with_capacity(len.div_ceil(max_piece.max(1)));
        let mut left = len;
        let mut first = true;
        while left > 0 {
            let piece = left.min(max_piece.max(1));
            left -= piece;
            let sent = match &mut self.bucket {
                Some(bucket) => bucket.take(now, piece),
                None => now,
            };
            let jitter = if dir.jitter_ms > 0.0 { ms(dir.jitter_ms * self.rng.unit()) } else { Duration::ZERO };
            let mut release = sent + ms(dir.latency_ms) + jitter;
            if dir.slice_bytes.is_some() && !first {
                release = release.max(self.last_release + ms(dir.slice_delay_ms));
            }
            release = release.max(self.last_release);
            self.last_release = release;
            pieces.push(Piece { len: piece, release_at: release });
            first = false;
        }
        pieces
    }

    /// When an end of stream read at `now` may be passed on: after the latency, and after every byte before it.
    pub fn schedule_eof(&mut self, now: Duration, dir: &Direction) -> Duration {
        self.last_release = self.last_release.max(now + ms(dir.latency_ms));
        self.last_release
    }
}

/// The state of a connection's link at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Bytes flow.
    Flowing,
    /// No byte moves either way until `until` (`None`: until the profile changes); bytes are held, not lost.
    Stalled {
        /// When the stall ends, if it is scheduled to.
        until: Option<Duration>,
    },
    /// The connection must be dropped with a reset.
    Reset,
}

#[derive(Debug, Clone, Copy)]
struct PlannedStall {
    start: Duration,
    end: Duration,
    then_reset: bool,
}

/// The fault schedule of one connection: when it stalls and when it is reset, drawn from the profile's faults.
///
/// The schedule is drawn when the connection opens and again whenever the profile changes to one with different
/// faults or connectivity (from that moment on); a change that keeps them keeps the schedule.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    rng: Rng,
    drawn_from: Option<(Faults, Connectivity)>,
    reset_at: Option<Duration>,
    stall: Option<PlannedStall>,
    reset: bool,
}

impl FaultPlan {
    /// A plan drawing from `seed`; call [`FaultPlan::update`] with the profile before asking for the state.
    pub fn new(seed: u64) -> FaultPlan {
        FaultPlan { rng: Rng::new(seed), drawn_from: None, reset_at: None, stall: None, reset: false }
    }

    /// Takes the current profile into account at `now`.
    pub fn update(&mut self, now: Duration, profile: &Profile) {
        let key = (profile.faults.clone(), profile.connectivity);
        if self.drawn_from.as_ref() == Some(&key) {
            return;
        }
        self.reset_at = profile.faults.reset_after_ms.map(|r| now + self.rng.draw(r));
        self.stall = None;
        if let Some(stall) = &profile.faults.stall {
            self.stall = Some(self.plan_stall(now, stall));
        }
        self.drawn_from = Some(key);
    }

    fn plan_stall(&mut self, from: Duration, stall: &crate::profile::Stall) -> PlannedStall {
        let start = from + self.rng.draw(stall.every_ms);
        let end = start + self.rng.draw(stall.for_ms);
        let then_reset = stall.then_reset > 0.0 && self.rng.unit() < stall.then_reset;
        PlannedStall { start, end, then_reset }
    }

    /// The state at `now` (which must not go backwards between calls).
    pub fn state(&mut self, now: Duration) -> LinkState {
        let Some((faults, connectivity)) = self.drawn_from.clone() else {
            return LinkState::Flowing;
        };
        match connectivity {
            Connectivity::Refuse => self.reset = true,
            Connectivity::Blackhole if !self.reset => return LinkState::Stalled { until: None },
            _ => {}
        }
        if self.reset || self.reset_at.is_some_and(|at| at <= now) {
            self.reset = true;
            return LinkState::Reset;
        }
        while let Some(stall) = self.stall {
            if now < stall.start {
                break;
            }
            if now < stall.end {
                return LinkState::Stalled { until: Some(stall.end) };
            }
            if stall.then_reset {
                self.reset = true;
                return LinkState::Reset;
            }
            let spec = faults.stall.as_ref().expect("a planned stall comes from the profile's stall");
            self.stall = Some(self.plan_stall(stall.end, spec));
        }
        LinkState::Flowing
    }

    /// When the state may change next, as seen at `now` after [`FaultPlan::state`]; `None` if only a profile change
    /// can change it.
    pub fn next_change(&self, now: Duration) -> Option<Duration> {
        if self.reset {
            return None;
        }
        if matches!(&self.drawn_from, Some((_, Connectivity::Blackhole))) {
            return None;
        }
        let stall = self.stall.map(|s| if now < s.start { s.start } else { s.end });
        [self.reset_at, stall].into_iter().flatten().min()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::profile::Stall;

    fn capped(kbps: u64, latency_ms: f64) -> Direction {
        Direction { latency_ms, rate_kbps: Some(kbps), ..Direction::default() }
    }

    #[test]
    fn no_cap_and_no_latency_releases_at_once_in_one_piece() {
        let mut s = Shaper::new(1);
        let pieces = s.schedule(Duration::from_millis(5), 16_384, &Direction::default());
        assert_eq!(pieces, [Piece { len: 16_384, release_at: Duration::from_millis(5) }]);
    }

    #[test]
    fn latency_delays_every_piece_without_lowering_the_rate() {
        let mut s = Shaper::new(1);
        let dir = Direction { latency_ms: 100.0, ..Direction::default() };
        for t in 0..10u64 {
            let p = s.schedule(Duration::from_millis(t), 1000, &dir);
            assert_eq!(p[0].release_at, Duration::from_millis(100 + t));
        }
    }

    #[test]
    fn a_cap_paces_a_large_read_at_the_rate() {
        // 256 kbit/s = 32 000 bytes/s; 64 KiB read at once.
        let mut s = Shaper::new(1);
        let pieces = s.schedule(Duration::ZERO, 65_536, &capped(256, 0.0));
        assert_eq!(pieces.iter().map(|p| p.len).sum::<usize>(), 65_536);
        assert!(pieces.iter().all(|p| p.len <= 1500), "pieces no bigger than the bucket");
        let last = pieces.last().unwrap().release_at.as_secs_f64();
        let expected = (65_536.0 - 1500.0) / 32_000.0;
        assert!((last - expected).abs() < 0.001, "{last} vs {expected}");
    }

    #[test]
    fn a_profile_switch_changes_the_rate_from_the_next_read() {
        let mut s = Shaper::new(1);
        let slow = s.schedule(Duration::ZERO, 40_000, &capped(80, 0.0)); // 10 000 bytes/s
        assert!(slow.last().unwrap().release_at >= Duration::from_millis(3_800));
        let fast = s.schedule(Duration::from_secs(4), 40_000, &capped(80_000, 0.0)); // 10 MB/s
        let took = fast.last().unwrap().release_at - Duration::from_secs(4);
        assert!(took < Duration::from_millis(10), "{took:?}");
    }

    #[test]
    fn slicing_cuts_reads_and_spaces_the_slices() {
        let mut s = Shaper::new(1);
        let dir = Direction { slice_bytes: Some(10), slice_delay_ms: 5.0, ..Direction::default() };
        let pieces = s.schedule(Duration::ZERO, 35, &dir);
        assert_eq!(pieces.iter().map(|p| p.len).collect::<Vec<_>>(), [10, 10, 10, 5]);
        let at: Vec<u64> = pieces.iter().map(|p| p.release_at.as_millis() as u64).collect();
        assert_eq!(at, [0, 5, 10, 15]);
    }

    #[test]
    fn end_of_stream_follows_the_last_byte() {
        let mut s = Shaper::new(1);
        let dir = capped(80, 50.0);
        let last = s.schedule(Duration::ZERO, 20_000, &dir).last().unwrap().release_at;
        assert!(s.schedule_eof(Duration::from_millis(1), &dir) >= last);
    }

    fn profile_with(faults: Faults) -> Profile {
        Profile { faults, ..Profile::pass_through("t") }
    }

    #[test]
    fn a_fixed_stall_holds_then_resumes_and_repeats() {
        let mut plan = FaultPlan::new(7);
        let stall = Stall { every_ms: MsRange::fixed(1000), for_ms: MsRange::fixed(300), then_reset: 0.0 };
        plan.update(Duration::ZERO, &profile_with(Faults { stall: Some(stall), reset_after_ms: None }));
        let at = |plan: &mut FaultPlan, ms: u64| plan.state(Duration::from_millis(ms));
        assert_eq!(at(&mut plan, 999), LinkState::Flowing);
        assert_eq!(plan.next_change(Duration::from_millis(999)), Some(Duration::from_millis(1000)));
        assert_eq!(at(&mut plan, 1000), LinkState::Stalled { until: Some(Duration::from_millis(1300)) });
        assert_eq!(at(&mut plan, 1300), LinkState::Flowing);
        assert_eq!(plan.next_change(Duration::from_millis(1300)), Some(Duration::from_millis(2300)));
        assert_eq!(at(&mut plan, 2400), LinkState::Stalled { until: Some(Duration::from_millis(2600)) });
    }

    #[test]
    fn a_stall_that_ends_in_a_reset_resets() {
        let mut plan = FaultPlan::new(7);
        let stall = Stall { every_ms: MsRange::fixed(100), for_ms: MsRange::fixed(50), then_reset: 1.0 };
        plan.update(Duration::ZERO, &profile_with(Faults { stall: Some(stall), reset_after_ms: None }));
        assert!(matches!(plan.state(Duration::from_millis(120)), LinkState::Stalled { .. }));
        assert_eq!(plan.state(Duration::from_millis(150)), LinkState::Reset);
        assert_eq!(plan.state(Duration::from_millis(10_000)), LinkState::Reset, "a reset is final");
        assert_eq!(plan.next_change(Duration::from_millis(10_000)), None);
    }

    #[test]
    fn reset_after_is_counted_from_the_profile_change() {
        let mut plan = FaultPlan::new(7);
        plan.update(Duration::ZERO, &Profile::pass_through("none"));
        assert_eq!(plan.state(Duration::from_secs(5)), LinkState::Flowing);
        let faults = Faults { reset_after_ms: Some(MsRange::fixed(200)), stall: None };
        plan.update(Duration::from_secs(5), &profile_with(faults.clone()));
        assert_eq!(plan.state(Duration::from_millis(5199)), LinkState::Flowing);
        // Switching to another profile with the same faults keeps the schedule.
        plan.update(Duration::from_millis(5199), &Profile { name: "u".into(), ..profile_with(faults) });
        assert_eq!(plan.state(Duration::from_millis(5200)), LinkState::Reset);
    }

    #[test]
    fn refuse_resets_and_blackhole_stalls_until_the_profile_changes() {
        let mut plan = FaultPlan::new(1);
        plan.update(Duration::ZERO, &Profile { connectivity: Connectivity::Blackhole, ..Profile::pass_through("b") });
        assert_eq!(plan.state(Duration::from_secs(1)), LinkState::Stalled { until: None });
        assert_eq!(plan.next_change(Duration::from_secs(1)), None);
        plan.update(Duration::from_secs(2), &Profile::pass_through("none"));
        assert_eq!(plan.state(Duration::from_secs(2)), LinkState::Flowing);
        plan.update(
            Duration::from_secs(3),
            &Profile { connectivity: Connectivity::Refuse, ..Profile::pass_through("o") },
        );
        assert_eq!(plan.state(Duration::from_secs(3)), LinkState::Reset);
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let flaky = crate::profile::builtin().into_iter().find(|p| p.name == "flaky").unwrap();
        let trace = |seed| {
            let mut plan = FaultPlan::new(seed);
            plan.update(Duration::ZERO, &flaky);
            (0..600).map(|i| plan.state(Duration::from_millis(i * 100))).collect::<Vec<_>>()
        };
        assert_eq!(trace(42), trace(42));
        assert_ne!(trace(42), trace(43));
        let t = trace(42);
        assert!(t.iter().any(|s| matches!(s, LinkState::Stalled { .. })), "flaky stalls within a minute");
        assert_eq!(*t.last().unwrap(), LinkState::Reset, "flaky resets within a minute");
    }

    fn direction() -> impl Strategy<Value = Direction> {
        (0.0..300.0f64, 0.0..100.0f64, proptest::option::of(8u64..100_000), proptest::option::of(1usize..5000))
            .prop_map(|(latency_ms, jitter_ms, rate_kbps, slice_bytes)| Direction {
                latency_ms,
                jitter_ms,
                rate_kbps,
                slice_bytes,
                slice_delay_ms: 1.0,
                burst_bytes: None,
            })
    }

    proptest! {
        /// Whatever the reads, gaps and profile switches: every byte is scheduled once, never before its latency,
        /// never before a byte read earlier.
        #[test]
        fn schedules_keep_order_and_latency(
            seed in any::<u64>(),
            reads in proptest::collection::vec((0u64..50, 1usize..20_000, direction()), 1..40),
        ) {
            let mut s = Shaper::new(seed);
            let mut now = Duration::ZERO;
            let mut last = Duration::ZERO;
            for (gap_ms, len, dir) in reads {
                now += Duration::from_millis(gap_ms);
                let pieces = s.schedule(now, len, &dir);
                prop_assert_eq!(pieces.iter().map(|p| p.len).sum::<usize>(), len);
                for p in pieces {
                    prop_assert!(p.len > 0);
                    prop_assert!(p.release_at >= last, "reordered");
                    prop_assert!(p.release_at + Duration::from_micros(1) >= now + ms(dir.latency_ms), "early");
                    last = p.release_at;
                }
            }
        }

        /// Under a cap, n bytes read at once take at least (n - bucket depth) / rate.
        #[test]
        fn a_cap_is_never_exceeded(seed in any::<u64>(), kbps in 8u64..50_000, len in 1usize..200_000) {
            let dir = Direction { rate_kbps: Some(kbps), ..Direction::default() };
            let mut s = Shaper::new(seed);
            let last = s.schedule(Duration::ZERO, len, &dir).last().unwrap().release_at.as_secs_f64();
            let floor = (len as f64 - dir.bucket_bytes().unwrap()) / dir.bytes_per_sec().unwrap();
            prop_assert!(last + 1e-6 >= floor, "{} < {}", last, floor);
        }

        /// Stalls last within their range and the gaps between them too.
        #[test]
        fn stalls_follow_their_ranges(seed in any::<u64>(), every in 1u64..500, spread in 0u64..500, for_ms in 1u64..300) {
            let stall = Stall { every_ms: MsRange::between(every, every + spread), for_ms: MsRange::fixed(for_ms), then_reset: 0.0 };
            let mut plan = FaultPlan::new(seed);
            plan.update(Duration::ZERO, &profile_with(Faults { stall: Some(stall), reset_after_ms: None }));
            let mut stalled_since = None;
            let mut flowing_since = Some(0u64);
            for t in 0..5_000u64 {
                match plan.state(Duration::from_millis(t)) {
                    LinkState::Stalled { .. } => if let Some(since) = flowing_since.take() {
                        prop_assert!(t - since >= every && t - since <= every + spread);
                        stalled_since = Some(t);
                    },
                    LinkState::Flowing => if let Some(since) = stalled_since.take() {
                        prop_assert_eq!(t - since, for_ms);
                        flowing_since = Some(t);
                    },
                    LinkState::Reset => prop_assert!(false, "no reset configured"),
                }
            }
        }
    }
}
