//! The store's one timer table: every deadline the core waits for (the connection's, each collection's retry, the
//! mutation queue's retry) is an entry here, so [`Store::next_wake_ms`](crate::Store::next_wake_ms) is the earliest
//! entry and a tick fires exactly the entries that are due.

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Timer {
    /// The connection machine's deadline: opening, `connection_ack`, keep-alive, `ka`, or the reconnect backoff.
    Connection,
    /// A collection waits after a failure before it subscribes or lists again (by the collection's id).
    Collection(u64),
    /// The head of the mutation queue waits after a retryable failure.
    Queue,
}

/// Deadlines by [`Timer`], on the shell's millisecond clock. A handful of entries at most, so a vector.
#[derive(Debug, Clone, Default)]
pub(crate) struct Timers {
    entries: Vec<(Timer, u64)>,
}

impl Timers {
    /// Sets (or moves) a deadline.
    pub(crate) fn set(&mut self, timer: Timer, at: u64) {
        match self.entries.iter_mut().find(|(t, _)| *t == timer) {
            Some(entry) => entry.1 = at,
            None => self.entries.push((timer, at)),
        }
    }

    /// Removes a deadline, if set.
    pub(crate) fn clear(&mut self, timer: Timer) {
        self.entries.retain(|(t, _)| *t != timer);
    }

    /// Whether `timer` is set and not yet due at `now`.
    pub(crate) fn pending(&self, timer: Timer, now: u64) -> bool {
        self.get(timer).is_some_and(|at| now < at)
    }

    /// The deadline of `timer`, if set.
    pub(crate) fn get(&self, timer: Timer) -> Option<u64> {
        self.entries.iter().find(|(t, _)| *t == timer).map(|(_, at)| *at)
    }

    /// The earliest deadline of all, or of those `keep` selects.
    pub(crate) fn next(&self, keep: impl Fn(Timer) -> bool) -> Option<u64> {
        self.entries.iter().filter(|(t, _)| keep(*t)).map(|(_, at)| *at).min()
    }

    /// Removes and returns the timers due at `now` (in no particular order: each fires on its own).
    pub(crate) fn take_due(&mut self, now: u64) -> Vec<Timer> {
        let due = self.entries.iter().filter(|(_, at)| *at <= now).map(|(t, _)| *t).collect();
        self.entries.retain(|(_, at)| *at > now);
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_timers_leave_the_table() {
        let mut timers = Timers::default();
        timers.set(Timer::Queue, 30);
        timers.set(Timer::Collection(1), 10);
        timers.set(Timer::Connection, 50);
        timers.set(Timer::Collection(1), 20);
        assert_eq!(timers.next(|_| true), Some(20));
        assert_eq!(timers.next(|t| t == Timer::Connection), Some(50));
        assert!(timers.pending(Timer::Queue, 29) && !timers.pending(Timer::Queue, 30));
        let mut due = timers.take_due(30);
        due.sort();
        assert_eq!(due, vec![Timer::Collection(1), Timer::Queue]);
        assert_eq!(timers.get(Timer::Connection), Some(50));
        timers.clear(Timer::Connection);
        assert_eq!(timers.next(|_| true), None);
    }
}
