//! The change stream: the committed-seq notifier with a bounded window of recent records, and per-subscription
//! readers that filter by identity, chain `prevSeq`, and send watermarks.
//!
//! The change log is the truth; the notifier only wakes readers, who then read the log after their own cursor (from
//! the in-memory window when it covers the cursor, else from the database). A lost wake-up delays, never loses, and a
//! slow reader never blocks the others.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::storage::{ChangeRecord, Storage, StorageError};

/// How many records one read returns at most.
pub const READ_BATCH: u32 = 256;

/// The committed-seq notifier plus a bounded window of the most recent records.
#[derive(Debug)]
pub struct ChangeFeed {
    window: RwLock<VecDeque<ChangeRecord>>,
    capacity: usize,
    head: watch::Sender<i64>,
    pruned_through: AtomicI64,
}

/// Why a read of the change log failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The cursor points before retention: the records after it are gone.
    #[error("cursor {after} is older than the retained change log (pruned through seq {pruned_through}); take a new snapshot")]
    CursorExpired {
        /// The cursor asked for.
        after: i64,
        /// The highest pruned seq.
        pruned_through: i64,
    },
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ChangeFeed {
    /// A feed keeping up to `capacity` recent records in memory.
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(ChangeFeed {
            window: RwLock::new(VecDeque::with_capacity(capacity.min(4096))),
            capacity: capacity.max(1),
            head: watch::Sender::new(0),
            pruned_through: AtomicI64::new(0),
        })
    }

    pub(crate) fn start_at(&self, head: i64) {
        self.advance_head(head);
    }

    /// Moves the head up to `seq` (never down) and wakes readers: every record through `seq` has committed. The
    /// write path calls it through [`ChangeFeed::publish`]; on PostgreSQL, the commit follower calls it for commits
    /// made through other instances, whose records this feed's window never holds.
    pub(crate) fn advance_head(&self, seq: i64) {
        self.head.send_if_modified(|head| {
            let moved = seq > *head;
            if moved {
                *head = seq;
            }
            moved
        });
    }

    /// Adds a just-committed record to the window and wakes readers. The window only ever holds a contiguous run of
    /// seqs: a record that does not extend it starts a new run (or, if older than the run's end, is left out).
    pub(crate) fn publish(&self, record: ChangeRecord) {
        let seq = record.seq;
        {
            let mut window = self.window.write().unwrap_or_else(|e| e.into_inner());
            match window.back().map(|last| last.seq) {
                Some(last) if seq <= last => {}
                Some(last) if seq != last + 1 => {
                    window.clear();
                    window.push_back(record);
                }
                _ => window.push_back(record),
            }
            while window.len() > self.capacity {
                window.pop_front();
            }
        }
        self.advance_head(seq);
    }

    pub(crate) fn pruned_through(&self, seq: i64) {
        self.pruned_through.fetch_max(seq, Ordering::SeqCst);
        let mut window = self.window.write().unwrap_or_else(|e| e.into_inner());
        while window.front().is_some_and(|r| r.seq <= seq) {
            window.pop_front();
        }
    }

    /// The last committed seq.
    pub fn head(&self) -> i64 {
        *self.head.borrow()
    }

    /// A receiver that changes whenever a record commits.
    pub fn watch(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }

    /// The records after `after`, when the window holds `after + 1`: a non-empty run starting right after the
    /// cursor (contiguous, so a correct prefix of the log). `None` when the window does not hold `after + 1` — in
    /// particular for records committed through another instance, which only the database has.
    fn window_after(&self, after: i64, limit: usize) -> Option<Vec<ChangeRecord>> {
        let window = self.window.read().unwrap_or_else(|e| e.into_inner());
        let first = window.front()?.seq;
        let last = window.back()?.seq;
        if first > after + 1 || last <= after {
            return None;
        }
        let start = (after + 1 - first) as usize;
        Some(window.iter().skip(start).take(limit).cloned().collect())
    }
}

/// Reads committed records with seq > `after`, from the window when it covers `after`, else from the database.
///
/// A read the window serves costs no database round trip: retention known to this instance is checked in memory,
/// and a cursor the window holds the next record of cannot have been pruned from the database's view of it. A read
/// from the database checks what it got: when the cursor's next record is missing, retention (perhaps by another
/// instance) is asked for then.
pub async fn read_after(storage: &Storage, after: i64, limit: u32) -> Result<Vec<ChangeRecord>, ReadError> {
    let feed = storage.feed();
    let pruned_through = feed.pruned_through.load(Ordering::SeqCst);
    if after < pruned_through {
        return Err(ReadError::CursorExpired { after, pruned_through });
    }
    if after >= feed.head() {
        return Ok(Vec::new());
    }
    if let Some(records) = feed.window_after(after, limit as usize) {
        return Ok(records);
    }
    let records = storage.changes_after(after, limit).await?;
    // Every seq through the head has committed and the log has no gaps, so the first record must be `after + 1`.
    // Anything else means retention pruned the cursor's records between the check above and this read, or (never,
    // if seq order is commit order) a hole: refuse rather than skip a record silently.
    let found = records.first().map(|r| r.seq);
    if found != Some(after + 1) {
        let pruned_through = storage.pruned_through().await?;
        if after < pruned_through {
            return Err(ReadError::CursorExpired { after, pruned_through });
        }
        return Err(StorageError::Gap { missing: after + 1, found, pruned_through }.into());
    }
    Ok(records)
}

/// What a subscription delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// A visible change; `prev_seq` is the previous delivery's seq (or the starting cursor).
    Change {
        /// The record.
        record: ChangeRecord,
        /// The chain link.
        prev_seq: i64,
    },
    /// Invisible changes passed: the cursor moves to `seq`.
    Watermark {
        /// The new cursor.
        seq: i64,
        /// The chain link.
        prev_seq: i64,
    },
}

impl Delivery {
    /// The seq this delivery moves the cursor to.
    pub fn seq(&self) -> i64 {
        match self {
            Delivery::Change { record, .. } => record.seq,
            Delivery::Watermark { seq, .. } => *seq,
        }
    }
}

struct Reader<F> {
    storage: Storage,
    head: watch::Receiver<i64>,
    visible: F,
    scanned: i64,
    delivered: i64,
    pending: VecDeque<Delivery>,
    lagging_since: Option<Instant>,
    watermark_every: Duration,
    failed: bool,
}

/// The live stream of one subscription: replays retained records after `after`, then follows new commits, with no
/// gap and no duplicate at the seam (there is no seam: both come from the same cursor). `visible` filters by the
/// subscriber's identity. When only invisible records passed for `watermark_every`, a watermark is delivered.
pub fn deliveries<F>(
    storage: Storage,
    after: i64,
    visible: F,
    watermark_every: Duration,
) -> impl Stream<Item = Result<Delivery, ReadError>> + Send + 'static
where
    F: Fn(&ChangeRecord) -> bool + Send + Sync + 'static,
{
    let head = storage.feed().watch();
    let reader = Reader {
        storage,
        head,
        visible,
        scanned: after,
        delivered: after,
        pending: VecDeque::new(),
        lagging_since: None,
        watermark_every,
        failed: false,
    };
    futures_util::stream::unfold(reader, |mut r| async move {
        if r.failed {
            return None;
        }
        let item = r.next().await;
        match &item {
            Ok(Delivery::Change { record, .. }) => {
                let lag = r.storage.feed().head() - record.seq;
                metrics::histogram!(crate::telemetry::SUBSCRIPTION_LAG).record(lag as f64);
            }
            Ok(Delivery::Watermark { .. }) => {}
            Err(_) => r.failed = true,
        }
        Some((item, r))
    })
}

impl<F: Fn(&ChangeRecord) -> bool> Reader<F> {
    async fn next(&mut self) -> Result<Delivery, ReadError> {
        loop {
            if let Some(d) = self.pending.pop_front() {
                return Ok(d);
            }
            let head = *self.head.borrow_and_update();
            if self.scanned < head {
                for record in read_after(&self.storage, self.scanned, READ_BATCH).await? {
                    self.scanned = record.seq;
                    if (self.visible)(&record) {
                        let prev_seq = std::mem::replace(&mut self.delivered, record.seq);
                        self.pending.push_back(Delivery::Change { record, prev_seq });
                        self.lagging_since = None;
                    } else if self.lagging_since.is_none() {
                        self.lagging_since = Some(Instant::now());
                    }
                }
                continue;
            }
            match self.lagging_since {
                Some(since) if self.delivered < self.scanned => {
                    let due = since + self.watermark_every;
                    if Instant::now() >= due {
                        self.lagging_since = None;
                        let prev_seq = std::mem::replace(&mut self.delivered, self.scanned);
                        return Ok(Delivery::Watermark { seq: self.scanned, prev_seq });
                    }
                    tokio::select! {
                        changed = self.head.changed() => if changed.is_err() { return Err(closed()) },
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
                _ => {
                    if self.head.changed().await.is_err() {
                        return Err(closed());
                    }
                }
            }
        }
    }
}

fn closed() -> ReadError {
    ReadError::Storage(StorageError::Db(sqlx::Error::PoolClosed))
}
