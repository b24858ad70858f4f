//! Time travel: a bounded history of a collection's confirmed rows, answering "what were the rows just after seq
//! `s`?" without touching the live rows.
//!
//! A history is off unless the collection's [`HistoryConfig`] turns it on, and only the subsignal source has one (it
//! is the only source whose events carry a `seq`). It is its own fold of what the store applied: checkpoints (the
//! rows at a seq) and, after them, one step per event that changed a confirmed row (its key and its image after the
//! event, or its removal). Optimistic overlays are not history; events that changed nothing (duplicates, stale
//! versions, watermarks) only move its end. [`History::at`] starts from the last checkpoint at or before `seq` and
//! replays the steps up to `seq`.
//!
//! **Snapshots.** A snapshot that replaces the rows (the first one, one after `CURSOR_EXPIRED`, one after every
//! reconnect over AppSync) starts the history over at the snapshot's seq: what happened between the old rows and the
//! snapshot is unknown, so a history never spans one. A snapshot fetched in several pages is read while the server
//! moves on (each page reports the seq it was read at), so its rows are only known to be exact once the events up to
//! the last page's seq have been applied: the history starts there, and until then it holds no seq at all.
//!
//! Over AppSync, which never replays, a lost event is not noticed until the next snapshot: there the history holds
//! what the store applied (the source's guarantee is `Converges`); over graphql-transport-ws it is gapless.
//!
//! **Memory.** At most `maxEvents` steps are kept; a checkpoint is taken every `checkpointEvery` steps, and when the
//! steps exceed `maxEvents` the oldest checkpoints and the steps up to the next one kept are dropped, so between
//! `maxEvents − checkpointEvery` and `maxEvents` steps stay (fewer since the last snapshot). Row images are shared
//! (`Arc`) between the steps, the checkpoints and the history's own current rows, so each image is stored once, and
//! keys are shared too; a checkpoint is a vector of one entry per row (two pointers, a seq and an op: 40 bytes on a
//! 64-bit target, 24 in wasm32). With `n` rows the whole costs `n × (maxEvents / checkpointEvery + 2)` entries plus
//! at most `n + maxEvents` row images; e.g. 1000 rows, `maxEvents` 500, `checkpointEvery` 50: 12 000 entries, under
//! half a megabyte besides the images. Each applied event costs one comparison and one copy of its row image, and
//! every `checkpointEvery` events one O(n) copy of the current vector. [`History::at`] costs O(n) to copy the
//! checkpoint plus O(n) per step replayed (at most `checkpointEvery`), and O(n) to build the answer.

use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// How much history a collection keeps, for [`crate::CollectionView::at`].
///
/// At most `max_events` events that changed a row are kept, with a checkpoint of the rows every `checkpoint_every`
/// of them; when the events exceed `max_events`, the oldest checkpoint and the events before the next one go. Row
/// images and keys are shared between the events and checkpoints, so a checkpoint costs one small entry per row
/// (24 bytes in wasm32): `n` rows cost `n × (max_events / checkpoint_every + 2)` entries plus at most
/// `n + max_events` row images. A new snapshot starts the history over at its seq (a paged one, at its last page's).
///
/// In JSON: `history: {"maxEvents": 500, "checkpointEvery": 50}` on the collection (`checkpointEvery` optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryConfig {
    /// The most events (that changed a row) kept; at least 1.
    pub max_events: u32,
    /// A checkpoint of the rows every this many events: lower answers `at` faster (it replays at most this many
    /// events) and costs one more entry per row per checkpoint. At least 1, at most `max_events` (larger is taken as `max_events`); default
    /// [`HistoryConfig::DEFAULT_CHECKPOINT_EVERY`].
    #[serde(default = "HistoryConfig::default_checkpoint_every")]
    pub checkpoint_every: u32,
}

impl HistoryConfig {
    /// The default checkpoint interval.
    pub const DEFAULT_CHECKPOINT_EVERY: u32 = 64;

    /// Keeps up to `max_events` events, with a checkpoint every [`HistoryConfig::DEFAULT_CHECKPOINT_EVERY`].
    pub fn new(max_events: u32) -> Self {
        Self { max_events, checkpoint_every: Self::DEFAULT_CHECKPOINT_EVERY }
    }

    fn default_checkpoint_every() -> u32 {
        Self::DEFAULT_CHECKPOINT_EVERY
    }

    /// Checks the numbers, naming the collection in the error.
    pub(crate) fn check(&self, collection: &str) -> Result<(), String> {
        if self.max_events == 0 || self.checkpoint_every == 0 {
            return Err(format!(
                "collection `{collection}`: history.maxEvents and history.checkpointEvery must be at least 1"
            ));
        }
        Ok(())
    }
}

/// What an event did to a row, or that the row comes from a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HistoryOp {
    /// The row is as a snapshot (taken at the seq given) showed it.
    Snapshot,
    /// The event created the row.
    Insert,
    /// The event changed the row.
    Update,
    /// The event removed the row.
    Remove,
}

/// One row as it was at a seq, with the event that last changed it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowAt {
    /// The row's key.
    pub key: String,
    /// The row (confirmed, without optimistic effects).
    #[serde(serialize_with = "shared")]
    pub row: Arc<Value>,
    /// The seq of the event that last changed it, or for a row from a snapshot the seq the snapshot is exact at
    /// (its last page's).
    pub seq: i64,
    /// What that event did ([`HistoryOp::Insert`], [`HistoryOp::Update`]) or [`HistoryOp::Snapshot`].
    pub op: HistoryOp,
}

/// A row the event at exactly the asked seq changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeAt {
    /// The row's key.
    pub key: String,
    /// What the event did.
    pub op: HistoryOp,
}

/// The rows of a collection just after a seq ([`crate::CollectionView::at`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryAt {
    /// The seq asked for.
    pub seq: i64,
    /// The rows in the collection's order.
    pub rows: Vec<RowAt>,
    /// The rows the event at `seq` changed (removals included); empty when no event of this collection has it.
    pub changes: Vec<ChangeAt>,
}

/// The seqs a history can answer for ([`crate::CollectionView::history`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRange {
    /// The oldest seq held.
    pub first: i64,
    /// The newest seq held: the collection's `lastSeq`.
    pub last: i64,
    /// The events (that changed a row) held.
    pub events: usize,
    /// The checkpoints held (the oldest is the base of the range).
    pub checkpoints: usize,
}

/// Why a history cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// No collection has this name.
    #[error("no collection `{0}` is watched")]
    UnknownCollection(String),
    /// The collection keeps no history (its configuration has no `history`).
    #[error("collection `{0}` keeps no history: set `history` (maxEvents) in its configuration")]
    Disabled(String),
    /// The collection's source has no seqs (entity events, live queries).
    #[error("collection `{0}` has no seqs to travel over: only the subsignal source keeps a history")]
    NoSeqs(String),
    /// Nothing is held yet: the first snapshot (or a new one) has not caught up.
    #[error("collection `{0}` holds no history yet: it starts once a snapshot has caught up")]
    Empty(String),
    /// The seq is older than the oldest held, or newer than the collection's `lastSeq`.
    #[error("seq {seq} is outside the history of `{collection}`, which holds seqs {first} to {last}")]
    OutOfRange {
        /// The collection.
        collection: String,
        /// The seq asked for.
        seq: i64,
        /// The oldest seq held.
        first: i64,
        /// The newest seq held.
        last: i64,
    },
}

fn shared<S: Serializer>(value: &Arc<Value>, serializer: S) -> Result<S::Ok, S::Error> {
    value.as_ref().serialize(serializer)
}

/// A row in the history: its image and what last changed it.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    row: Arc<Value>,
    seq: i64,
    op: HistoryOp,
}

/// Rows sorted by key: a vector rather than a map, whose clone (a checkpoint) is one allocation and whose code is
/// small in the npm package's wasm; an insertion or removal moves O(n) pointers.
#[derive(Debug, Clone, Default)]
struct Rows(Vec<(Arc<str>, Entry)>);

impl Rows {
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(key))
    }

    fn get(&self, key: &str) -> Option<&(Arc<str>, Entry)> {
        self.find(key).ok().map(|i| &self.0[i])
    }

    fn set(&mut self, key: &Arc<str>, entry: Option<Entry>) {
        match (self.find(key), entry) {
            (Ok(i), Some(entry)) => self.0[i].1 = entry,
            (Err(i), Some(entry)) => self.0.insert(i, (key.clone(), entry)),
            (Ok(i), None) => {
                self.0.remove(i);
            }
            (Err(_), None) => {}
        }
    }
}

#[derive(Debug, Clone)]
struct Checkpoint {
    seq: i64,
    rows: Rows,
}

/// One event's change to one row: its image after, or `None` for a removal.
#[derive(Debug, Clone)]
struct Step {
    seq: i64,
    key: Arc<str>,
    row: Option<Arc<Value>>,
    op: HistoryOp,
}

/// A collection's history (see the module docs).
#[derive(Debug)]
pub(crate) struct History {
    max_events: usize,
    checkpoint_every: usize,
    /// Oldest first; empty until the first snapshot.
    checkpoints: Vec<Checkpoint>,
    /// The steps of the first checkpoint's seq (what `at` names as that event's changes) and after it, in seq order.
    steps: Vec<Step>,
    /// The rows at `last`.
    current: Rows,
    /// The newest seq applied.
    last: Option<i64>,
    /// The seq from which the rows are exact (a paged snapshot's last page).
    exact_from: i64,
    /// Steps since the last checkpoint.
    since_checkpoint: usize,
}

impl History {
    pub(crate) fn new(cfg: HistoryConfig) -> Self {
        let max_events = cfg.max_events.max(1) as usize;
        Self {
            max_events,
            checkpoint_every: (cfg.checkpoint_every.max(1) as usize).min(max_events),
            checkpoints: Vec::new(),
            steps: Vec::new(),
            current: Rows::default(),
            last: None,
            exact_from: 0,
            since_checkpoint: 0,
        }
    }

    /// A snapshot replaced the rows: the history starts over at `seq`, exact from `exact_from` on.
    pub(crate) fn restart<'a>(&mut self, seq: i64, exact_from: i64, rows: impl Iterator<Item = (&'a str, &'a Value)>) {
        let exact_from = exact_from.max(seq);
        let entry = |row: &Value| Entry { row: Arc::new(row.clone()), seq: exact_from, op: HistoryOp::Snapshot };
        // The table's rows come in key order (its map is ordered by the same byte order).
        self.current = Rows(rows.map(|(key, row)| (Arc::from(key), entry(row))).collect());
        debug_assert!(self.current.0.is_sorted_by(|a, b| a.0 < b.0), "rows in key order");
        self.checkpoints.clear();
        self.checkpoints.push(Checkpoint { seq, rows: self.current.clone() });
        self.steps.clear();
        self.last = Some(seq);
        self.exact_from = exact_from;
        self.since_checkpoint = 0;
    }

    /// The event `seq` was applied; `change` is the confirmed row it touched (`key`, image after or `None` when
    /// gone). Records a step when the row changed, and moves the end to `seq` in any case.
    pub(crate) fn record(&mut self, seq: i64, change: Option<(&str, Option<&Value>)>) {
        let Some(last) = self.last else { return };
        if seq < last {
            return;
        }
        if let Some((key, after)) = change {
            let before = self.current.get(key).map(|(_, e)| e);
            let op = match (before, after) {
                (None, None) => None,
                (Some(_), None) => Some(HistoryOp::Remove),
                (None, Some(_)) => Some(HistoryOp::Insert),
                (Some(b), Some(a)) => (*b.row != *a).then_some(HistoryOp::Update),
            };
            if let Some(op) = op {
                self.step(seq, key, after, op);
            }
        }
        self.last = Some(seq);
    }

    fn step(&mut self, seq: i64, key: &str, after: Option<&Value>, op: HistoryOp) {
        if self.since_checkpoint >= self.checkpoint_every && self.last.is_some_and(|last| last < seq) {
            let at = self.last.unwrap_or(seq);
            self.checkpoints.push(Checkpoint { seq: at, rows: self.current.clone() });
            self.since_checkpoint = 0;
        }
        let key: Arc<str> = match self.current.get(key) {
            Some((k, _)) => k.clone(),
            None => Arc::from(key),
        };
        let row = after.map(|v| Arc::new(v.clone()));
        self.current.set(&key, row.clone().map(|row| Entry { row, seq, op }));
        self.steps.push(Step { seq, key, row, op });
        self.since_checkpoint += 1;
        // Over the bound: the second checkpoint becomes the base.
        if self.steps_after(self.checkpoints[0].seq) > self.max_events {
            // The oldest checkpoints go until the steps after the first one left fit (there is always a later
            // checkpoint: the steps since the last one are at most `checkpoint_every`, at most `max_events`).
            let mut drop = 0;
            while drop + 1 < self.checkpoints.len() && self.steps_after(self.checkpoints[drop].seq) > self.max_events {
                drop += 1;
            }
            self.checkpoints.drain(..drop);
            // The base's own steps stay: they are what `at(base)` names as the event's changes.
            let base = self.checkpoints[0].seq;
            let gone = self.steps.partition_point(|s| s.seq < base);
            self.steps.drain(..gone);
        }
    }

    /// How many steps come after `seq`.
    fn steps_after(&self, seq: i64) -> usize {
        self.steps.len() - self.steps.partition_point(|s| s.seq <= seq)
    }

    /// The seqs held, if any.
    pub(crate) fn range(&self) -> Option<HistoryRange> {
        let base = self.checkpoints.first()?.seq;
        let first = base.max(self.exact_from);
        let last = self.last.filter(|last| *last >= first)?;
        Some(HistoryRange { first, last, events: self.steps_after(base), checkpoints: self.checkpoints.len() })
    }

    /// The rows just after `seq`, in key order (reversed when `descending`).
    pub(crate) fn at(&self, collection: &str, seq: i64, descending: bool) -> Result<HistoryAt, HistoryError> {
        let range = self.range().ok_or_else(|| HistoryError::Empty(collection.to_owned()))?;
        if seq < range.first || seq > range.last {
            return Err(HistoryError::OutOfRange {
                collection: collection.to_owned(),
                seq,
                first: range.first,
                last: range.last,
            });
        }
        let from = self.checkpoints.partition_point(|c| c.seq <= seq).saturating_sub(1);
        let checkpoint = &self.checkpoints[from];
        let mut rows = checkpoint.rows.clone();
        let start = self.steps.partition_point(|s| s.seq <= checkpoint.seq);
        for step in self.steps[start..].iter().take_while(|s| s.seq <= seq) {
            rows.set(&step.key, step.row.clone().map(|row| Entry { row, seq: step.seq, op: step.op }));
        }
        // The event's own steps, wherever its checkpoint is (one may sit exactly at `seq`).
        let changes = self.steps[self.steps.partition_point(|s| s.seq < seq)..]
            .iter()
            .take_while(|s| s.seq == seq)
            .map(|step| ChangeAt { key: step.key.to_string(), op: step.op })
            .collect();
        let mut rows: Vec<RowAt> = rows
            .0
            .into_iter()
            .map(|(key, e)| RowAt { key: key.to_string(), row: e.row, seq: e.seq, op: e.op })
            .collect();
        if descending {
            rows.reverse();
        }
        Ok(HistoryAt { seq, rows, changes })
    }
}
