//! The server's clock: every decision that depends on the time of day (a TTL passed, a token expired, a lease lapsed,
//! a change-log record fell out of retention) reads it here, never the wall clock directly.
//!
//! In production it is the wall clock. A test builds an [`Clock::adjustable`] one, which runs with the wall clock
//! and can be moved forward by hand ([`Clock::advance`]), so that a test of TTL expiry, token expiry or a lease
//! lapse jumps over the wait instead of sleeping through it. Durations between two moments of this process (retry
//! backoff, keep-alive, rate limits) are not the clock's business: they use tokio's monotonic timers.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// The wall clock, optionally moved forward by a test. Cheap to clone; clones share their adjustment.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Milliseconds added to the wall clock; `None` for the plain wall clock.
    ahead: Option<Arc<watch::Sender<i64>>>,
}

/// The longest a [`Clock::sleep_until_ms`] sleeps at once before it looks at the clock again.
const LONGEST_SLEEP: Duration = Duration::from_secs(24 * 3600);

impl Clock {
    /// The wall clock.
    pub fn system() -> Clock {
        Clock { ahead: None }
    }

    /// The wall clock, which [`Clock::advance`] moves forward (for tests).
    pub fn adjustable() -> Clock {
        Clock { ahead: Some(Arc::new(watch::Sender::new(0))) }
    }

    /// Milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        let wall = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        wall + self.ahead.as_ref().map_or(0, |ahead| *ahead.borrow())
    }

    /// Seconds since the epoch.
    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Now, as AppSync's `AWSDateTime` (RFC 3339, UTC).
    pub fn now_rfc3339(&self) -> String {
        rfc3339_ms(self.now_ms())
    }

    /// Moves an adjustable clock forward by `by`, waking every [`Clock::sleep_until_ms`] that is due now.
    ///
    /// # Panics
    /// On the wall clock, which nothing may move.
    pub fn advance(&self, by: Duration) {
        let ahead = self.ahead.as_ref().expect("only an adjustable clock can be moved forward");
        ahead.send_modify(|ms| *ms += by.as_millis() as i64);
    }

    /// Completes once the clock reads `at_ms` (milliseconds since the epoch) or later: at once if it already does,
    /// at that moment of the wall clock, or earlier when [`Clock::advance`] jumps over it.
    pub fn sleep_until_ms(&self, at_ms: i64) -> impl Future<Output = ()> + Send + 'static {
        let clock = self.clone();
        async move {
            let mut jumps = clock.ahead.as_ref().map(|ahead| ahead.subscribe());
            loop {
                let left = at_ms.saturating_sub(clock.now_ms());
                if left <= 0 {
                    return;
                }
                let nap = tokio::time::sleep(Duration::from_millis(left as u64).min(LONGEST_SLEEP));
                match &mut jumps {
                    Some(jumps) => tokio::select! {
                        _ = nap => {}
                        _ = jumps.changed() => {}
                    },
                    None => nap.await,
                }
            }
        }
    }
}

/// `at_ms` (milliseconds since the epoch) in RFC 3339, UTC, always with three digits of milliseconds, as AppSync's
/// `$util.time.nowISO8601()` writes it: of a fixed width, so that these timestamps sort as text the way they sort in
/// time (a client's view ordered by `createdAt` compares them as strings). The well-known `Rfc3339` format drops
/// trailing zeros, and `…:01.1Z` then sorts after `…:01.12Z`.
fn rfc3339_ms(at_ms: i64) -> String {
    const FORMAT: &[time::format_description::FormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    at.format(FORMAT).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_adjustable_clock_jumps_forward_and_wakes_who_waits() {
        let clock = Clock::adjustable();
        let start = clock.now_ms();
        let wake = tokio::spawn(clock.sleep_until_ms(start + 3_600_000));
        tokio::task::yield_now().await;
        assert!(!wake.is_finished());
        clock.advance(Duration::from_secs(3601));
        tokio::time::timeout(Duration::from_secs(5), wake).await.expect("woken by the jump").unwrap();
        assert!(clock.now_ms() >= start + 3_601_000);
        assert!(clock.clone().now_secs() >= start / 1000 + 3601, "clones share the adjustment");
    }

    #[tokio::test]
    async fn a_moment_past_is_due_at_once() {
        Clock::system().sleep_until_ms(0).await;
        assert!(Clock::system().now_rfc3339().ends_with('Z'));
    }

    #[test]
    fn timestamps_have_a_fixed_width_and_sort_as_text_as_in_time() {
        let at = 1_764_633_600_000; // 2025-12-02T00:00:00Z
        let texts: Vec<String> = [0, 1, 100, 120, 123, 999, 1000].iter().map(|ms| rfc3339_ms(at + ms)).collect();
        assert_eq!(texts[0], "2025-12-02T00:00:00.000Z");
        assert_eq!(texts[3], "2025-12-02T00:00:00.120Z");
        assert!(texts.iter().all(|t| t.len() == texts[0].len()), "{texts:?}");
        assert!(texts.windows(2).all(|w| w[0] < w[1]), "in time order as text: {texts:?}");
        assert!(time::OffsetDateTime::parse(&texts[4], &time::format_description::well_known::Rfc3339).is_ok());
    }
}
