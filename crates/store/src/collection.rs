//! Live collections: keyed entities kept in step with a change stream by `seq`/`prevSeq`, plus optimistic overlays.
//!
//! A collection holds the *confirmed* rows (what the server's change log says) and, on top of them, overlays of
//! pending mutations. Readers see the overlays applied; every change to what a reader sees is reported as a
//! [`RowChange`] for exactly the rows it touched.
//!
//! In AppSync mode ([`Protocol::AppSync`](crate::Protocol)) nothing is replayed, so there is no gap repair: events are
//! applied by `seq` and row `version` ([`Collection::feed_unchained`]), and a fresh snapshot follows every reconnect.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use subsignal_protocol::{ChangeEnvelope, ChangeOp};

/// Gap buffers larger than this are discarded: the resubscription replays those events anyway.
const MAX_BUFFER: usize = 4096;

/// How many removed keys are remembered (oldest forgotten first), so that a late mutation result cannot resurrect a
/// removed row.
const MAX_TOMBSTONES: usize = 4096;

/// How to sync one collection: its GraphQL documents and the names of the fields the store reads.
///
/// The subscription document must take `$afterSeq: Int` and select the change envelope (`seq prevSeq op key version
/// expired`) plus the entity under `entity_field`. The snapshot query must take `$limit: Int` and `$nextToken: String`
/// and return `{ items nextToken seq }` under `snapshot_field`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionConfig {
    /// The collection's name, used in every output and accessor.
    pub name: String,
    /// The subscription document.
    pub subscription: String,
    /// The subscription's root field, e.g. `onOrderChanged`.
    pub subscription_field: String,
    /// The field of the change that holds the entity, e.g. `order`.
    pub entity_field: String,
    /// The snapshot (list) query document.
    pub snapshot_query: String,
    /// The snapshot query's root field, e.g. `listOrders`.
    pub snapshot_field: String,
    /// The `limit` passed to each snapshot page; `None` leaves it to the server.
    #[serde(default)]
    pub page_size: Option<u32>,
    /// The entity's key field (default `id`).
    #[serde(default = "default_key_field")]
    pub key_field: String,
    /// The entity's version field (default `version`).
    #[serde(default = "default_version_field")]
    pub version_field: String,
    /// Rows are listed in key order; this reverses it (handy for time-ordered keys such as UUIDv7, newest first).
    #[serde(default)]
    pub descending: bool,
}

fn default_key_field() -> String {
    "id".to_owned()
}

fn default_version_field() -> String {
    "version".to_owned()
}

impl CollectionConfig {
    /// A collection with the given name, `id`/`version` fields and no documents yet: set them with
    /// [`CollectionConfig::subscription`] and [`CollectionConfig::snapshot`].
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            subscription: String::new(),
            subscription_field: String::new(),
            entity_field: String::new(),
            snapshot_query: String::new(),
            snapshot_field: String::new(),
            page_size: None,
            key_field: default_key_field(),
            version_field: default_version_field(),
            descending: false,
        }
    }

    /// Sets the subscription document, its root field and the change's entity field.
    pub fn subscription(
        mut self,
        document: impl Into<String>,
        field: impl Into<String>,
        entity_field: impl Into<String>,
    ) -> Self {
        self.subscription = document.into();
        self.subscription_field = field.into();
        self.entity_field = entity_field.into();
        self
    }

    /// Sets the snapshot query document and its root field.
    pub fn snapshot(mut self, query: impl Into<String>, field: impl Into<String>) -> Self {
        self.snapshot_query = query.into();
        self.snapshot_field = field.into();
        self
    }

    /// Sets the snapshot page size.
    pub fn page_size(mut self, limit: u32) -> Self {
        self.page_size = Some(limit);
        self
    }

    /// Sets the key and version field names.
    pub fn fields(mut self, key_field: impl Into<String>, version_field: impl Into<String>) -> Self {
        self.key_field = key_field.into();
        self.version_field = version_field.into();
        self
    }

    /// Lists rows in descending key order.
    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }
}

/// A change to what readers of one collection see, for one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum RowChange {
    /// A row appeared: the key list changed.
    Inserted {
        /// The row's key.
        key: String,
    },
    /// A row's content changed; the key list did not.
    Updated {
        /// The row's key.
        key: String,
    },
    /// A row disappeared: the key list changed.
    Removed {
        /// The row's key.
        key: String,
        /// True when the server removed it by TTL expiry.
        expired: bool,
    },
}

impl RowChange {
    /// The key of the row that changed.
    pub fn key(&self) -> &str {
        match self {
            Self::Inserted { key } | Self::Updated { key } | Self::Removed { key, .. } => key,
        }
    }
}

/// Counters of what a collection has done, for diagnostics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionStats {
    /// Events applied (watermarks included).
    pub applied: u64,
    /// Events dropped because their seq was not after `lastSeq`.
    pub duplicates: u64,
    /// Events whose `prevSeq` did not match `lastSeq`.
    pub gaps: u64,
    /// Subscriptions started (the first one included).
    pub subscriptions: u64,
    /// Snapshots completed.
    pub snapshots: u64,
}

/// A change event as read from a `next` payload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    pub(crate) env: ChangeEnvelope,
    pub(crate) entity: Option<Value>,
}

/// What became of an event fed to a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Feed {
    Applied,
    Duplicate,
    Gap,
}

#[derive(Debug, Clone, PartialEq)]
struct Row {
    value: Value,
    version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
enum OverlayKind {
    Upsert(Value),
    Patch(Map<String, Value>),
    Remove,
}

#[derive(Debug, Clone, PartialEq)]
struct Overlay {
    mutation_id: String,
    key: String,
    kind: OverlayKind,
    /// The version the server reported for the mutation; `None` while the result is outstanding.
    confirmed_version: Option<i64>,
    /// The snapshot epoch in which the result arrived.
    confirmed_epoch: u64,
}

/// A snapshot being fetched page by page.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SnapshotFetch {
    pub(crate) request_id: u64,
    pub(crate) first_seq: Option<i64>,
    pub(crate) items: Vec<Value>,
}

/// One page of a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Page {
    pub(crate) items: Vec<Value>,
    pub(crate) next_token: Option<String>,
    pub(crate) seq: i64,
}

/// One live collection.
#[derive(Debug)]
pub(crate) struct Collection {
    pub(crate) cfg: CollectionConfig,
    rows: BTreeMap<String, Row>,
    pub(crate) last_seq: Option<i64>,
    buffer: BTreeMap<i64, Event>,
    /// The active subscription's id.
    pub(crate) sub_id: Option<String>,
    /// AppSync: `start_ack` arrived for `sub_id`.
    pub(crate) sub_acked: bool,
    pub(crate) snapshot: Option<SnapshotFetch>,
    /// True until a snapshot completes, and again after `CURSOR_EXPIRED`.
    pub(crate) needs_snapshot: bool,
    /// Do nothing before this time (after a failure).
    pub(crate) retry_at: Option<u64>,
    pub(crate) failures: u32,
    overlays: Vec<Overlay>,
    /// Removal versions of recently removed keys (keys are never reused), oldest first in `tombstone_order`.
    tombstones: HashMap<String, i64>,
    tombstone_order: VecDeque<String>,
    /// Counts snapshot fetches started, to tell which mutation results a snapshot must already reflect.
    epoch: u64,
    pub(crate) stats: CollectionStats,
    /// Every seq ever applied, in order (tests check that none is applied twice).
    #[cfg(test)]
    pub(crate) applied_log: Vec<i64>,
}

fn diff(key: &str, before: Option<&Value>, after: Option<&Value>, expired: bool, changes: &mut Vec<RowChange>) {
    let key = key.to_owned();
    match (before, after) {
        (None, Some(_)) => changes.push(RowChange::Inserted { key }),
        (Some(_), None) => changes.push(RowChange::Removed { key, expired }),
        (Some(a), Some(b)) if a != b => changes.push(RowChange::Updated { key }),
        _ => {}
    }
}

impl Collection {
    pub(crate) fn new(cfg: CollectionConfig) -> Self {
        Self {
            cfg,
            rows: BTreeMap::new(),
            last_seq: None,
            buffer: BTreeMap::new(),
            sub_id: None,
            sub_acked: false,
            snapshot: None,
            needs_snapshot: true,
            retry_at: None,
            failures: 0,
            overlays: Vec::new(),
            tombstones: HashMap::new(),
            tombstone_order: VecDeque::new(),
            epoch: 0,
            stats: CollectionStats::default(),
            #[cfg(test)]
            applied_log: Vec::new(),
        }
    }

    fn key_of(&self, entity: &Value) -> Option<String> {
        match entity.get(&self.cfg.key_field)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn version_of(&self, entity: &Value) -> Option<i64> {
        entity.get(&self.cfg.version_field).and_then(Value::as_i64)
    }

    /// Reads the change event out of a `next` payload (`{data: {<field>: change}}`), taking the entity out of it
    /// rather than copying it.
    pub(crate) fn parse_event(&self, mut payload: Value) -> Result<Event, String> {
        let field = &self.cfg.subscription_field;
        let Some(change) = payload.get_mut("data").and_then(|d| d.get_mut(field)).filter(|c| !c.is_null()) else {
            return Err(format!("{}: a `next` without data.{field}: {payload}", self.cfg.name));
        };
        let env = ChangeEnvelope::deserialize(&*change)
            .map_err(|e| format!("{}: unreadable change envelope: {e}", self.cfg.name))?;
        let entity = change.get_mut(&self.cfg.entity_field).map(Value::take).filter(|e| !e.is_null());
        Ok(Event { env, entity })
    }

    /// Reads one snapshot page out of a GraphQL response's `data`.
    pub(crate) fn parse_page(&self, data: &Value) -> Result<Page, String> {
        let conn = data
            .get(&self.cfg.snapshot_field)
            .filter(|c| !c.is_null())
            .ok_or_else(|| format!("{}: a snapshot page without data.{}", self.cfg.name, self.cfg.snapshot_field))?;
        let items = conn.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
        let next_token = conn.get("nextToken").and_then(Value::as_str).map(str::to_owned);
        let seq = conn
            .get("seq")
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("{}: a snapshot page without seq", self.cfg.name))?;
        Ok(Page { items, next_token, seq })
    }

    /// Feeds one event from the active subscription.
    pub(crate) fn feed(&mut self, event: Event, changes: &mut Vec<RowChange>) -> Feed {
        let Some(last) = self.last_seq else { return Feed::Duplicate };
        if event.env.seq <= last {
            self.stats.duplicates += 1;
            return Feed::Duplicate;
        }
        if event.env.prev_seq != last {
            self.stats.gaps += 1;
            if self.buffer.len() >= MAX_BUFFER {
                self.buffer.clear();
            }
            self.buffer.insert(event.env.seq, event);
            return Feed::Gap;
        }
        self.apply(event, changes);
        self.drain(changes);
        Feed::Applied
    }

    /// Feeds one event in AppSync mode, where nothing is ever replayed and so `prevSeq` gaps cannot be filled: while a
    /// snapshot is due the event waits in the buffer; afterwards anything after `lastSeq` applies at once, each row
    /// guarded by its version (a stale image never overwrites a newer one).
    pub(crate) fn feed_unchained(&mut self, event: Event, changes: &mut Vec<RowChange>) -> Feed {
        if self.needs_snapshot || self.last_seq.is_none() {
            if self.buffer.len() >= MAX_BUFFER {
                // Too much arrived during one snapshot: take another one.
                self.buffer.clear();
                self.snapshot = None;
            }
            self.buffer.insert(event.env.seq, event);
            return Feed::Duplicate;
        }
        if self.last_seq.is_some_and(|last| event.env.seq <= last) {
            self.stats.duplicates += 1;
            return Feed::Duplicate;
        }
        self.apply(event, changes);
        Feed::Applied
    }

    /// AppSync mode: a fresh snapshot is due (after a reconnect or a lost subscription).
    pub(crate) fn resync(&mut self) {
        self.needs_snapshot = true;
        self.snapshot = None;
        self.sub_acked = false;
        self.buffer.clear();
    }

    /// The events buffered while a snapshot was fetched, in seq order.
    pub(crate) fn take_buffer(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.buffer).into_values().collect()
    }

    /// Applies events that arrived during a snapshot and are newer than it.
    pub(crate) fn apply_after_snapshot(&mut self, events: Vec<Event>, changes: &mut Vec<RowChange>) {
        for event in events {
            if self.last_seq.is_some_and(|last| event.env.seq <= last) {
                self.stats.duplicates += 1;
            } else {
                self.apply(event, changes);
            }
        }
    }

    /// Applies buffered events that now chain on, dropping those that became duplicates.
    fn drain(&mut self, changes: &mut Vec<RowChange>) {
        while let Some(last) = self.last_seq {
            let stale: Vec<i64> = self.buffer.range(..=last).map(|(seq, _)| *seq).collect();
            for seq in stale {
                self.buffer.remove(&seq);
                self.stats.duplicates += 1;
            }
            let next = self.buffer.iter().find(|(_, e)| e.env.prev_seq == last).map(|(seq, _)| *seq);
            match next.and_then(|seq| self.buffer.remove(&seq)) {
                Some(event) => self.apply(event, changes),
                None => break,
            }
        }
    }

    /// Drops the gap buffer (its events will be replayed).
    pub(crate) fn clear_buffer(&mut self) {
        self.buffer.clear();
    }

    fn apply(&mut self, event: Event, changes: &mut Vec<RowChange>) {
        let Event { env, entity } = event;
        let key = env.key.clone().or_else(|| entity.as_ref().and_then(|e| self.key_of(e)));
        let version = env.version.or_else(|| entity.as_ref().and_then(|e| self.version_of(e)));
        match (env.op, key) {
            (ChangeOp::Insert | ChangeOp::Modify, Some(key)) => {
                if let Some(entity) = entity {
                    if let Some(id) = env.client_mutation_id.as_deref() {
                        self.settle_overlay_by_event(id, &key, &entity, version, changes);
                    }
                    self.upsert_confirmed(&key, entity, version, changes);
                }
            }
            (ChangeOp::Remove, Some(key)) => self.remove_confirmed(&key, version, env.expired, changes),
            _ => {}
        }
        self.last_seq = Some(env.seq);
        self.stats.applied += 1;
        #[cfg(test)]
        self.applied_log.push(env.seq);
    }

    /// The event of our own mutation `id` arrived (the server echoes its `clientMutationId`): its overlay now
    /// belongs to the event's key at the event's version, so it ends with this event instead of waiting for the
    /// mutation's answer. For an optimistic create this retires the placeholder row at once, so the placeholder and
    /// the server's row never show side by side.
    fn settle_overlay_by_event(
        &mut self,
        id: &str,
        key: &str,
        entity: &Value,
        version: Option<i64>,
        changes: &mut Vec<RowChange>,
    ) {
        let Some(version) = version else { return };
        let Some(index) = self.overlays.iter().position(|o| o.mutation_id == id && o.confirmed_version.is_none())
        else {
            return;
        };
        let old_key = self.overlays[index].key.clone();
        let before = self.visible(&old_key).map(Cow::into_owned);
        let before_new = self.visible(key).map(Cow::into_owned);
        let overlay = &mut self.overlays[index];
        overlay.key = key.to_owned();
        if overlay.kind != OverlayKind::Remove {
            overlay.kind = OverlayKind::Upsert(entity.clone());
        }
        overlay.confirmed_version = Some(version);
        overlay.confirmed_epoch = self.epoch;
        if old_key != key {
            // The overlay has moved: what showed under the old (temporary) key is gone, and shows under the new one.
            diff(&old_key, before.as_ref(), self.visible(&old_key).as_deref(), false, changes);
            diff(key, before_new.as_ref(), self.visible(key).as_deref(), false, changes);
        }
    }

    fn upsert_confirmed(&mut self, key: &str, value: Value, version: Option<i64>, changes: &mut Vec<RowChange>) {
        let stale =
            matches!((self.rows.get(key).and_then(|r| r.version), version), (Some(stored), Some(v)) if v <= stored);
        if !self.overlays.iter().any(|o| o.key == key) {
            // The common case, no optimistic effect on this key: what shows is the row itself, so the change is
            // told by the row replaced, without copying either.
            if stale {
                return;
            }
            let row = Row { value, version };
            match self.rows.get_mut(key) {
                Some(old) => {
                    let changed = old.value != row.value;
                    *old = row;
                    if changed {
                        changes.push(RowChange::Updated { key: key.to_owned() });
                    }
                }
                None => {
                    self.rows.insert(key.to_owned(), row);
                    changes.push(RowChange::Inserted { key: key.to_owned() });
                }
            }
            return;
        }
        let before = self.visible(key).map(Cow::into_owned);
        if !stale {
            self.rows.insert(key.to_owned(), Row { value, version });
        }
        self.resolve_overlays(key);
        diff(key, before.as_ref(), self.visible(key).as_deref(), false, changes);
    }

    fn remove_confirmed(&mut self, key: &str, version: Option<i64>, expired: bool, changes: &mut Vec<RowChange>) {
        let before = self.visible(key).map(Cow::into_owned);
        let removable = match (self.rows.get(key), version) {
            (Some(row), Some(v)) => row.version.is_none_or(|stored| v >= stored),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if removable {
            self.rows.remove(key);
        }
        self.tombstone(key, version.unwrap_or(i64::MAX));
        self.resolve_overlays(key);
        diff(key, before.as_ref(), self.visible(key).as_deref(), expired, changes);
    }

    fn tombstone(&mut self, key: &str, version: i64) {
        match self.tombstones.get_mut(key) {
            Some(v) => *v = (*v).max(version),
            None => {
                if self.tombstone_order.len() >= MAX_TOMBSTONES {
                    if let Some(old) = self.tombstone_order.pop_front() {
                        self.tombstones.remove(&old);
                    }
                }
                self.tombstones.insert(key.to_owned(), version);
                self.tombstone_order.push_back(key.to_owned());
            }
        }
    }

    /// Starts a snapshot fetch.
    pub(crate) fn begin_snapshot(&mut self, request_id: u64) {
        self.epoch += 1;
        self.snapshot = Some(SnapshotFetch { request_id, first_seq: None, items: Vec::new() });
    }

    /// Drops the overlays on `key` that the confirmed state has made redundant.
    fn resolve_overlays(&mut self, key: &str) {
        let row_version = self.rows.get(key).map(|r| r.version.unwrap_or(i64::MAX));
        let tombstone = self.tombstones.get(key).copied();
        self.overlays.retain(|o| {
            let Some(confirmed) = o.confirmed_version.filter(|_| o.key == key) else { return true };
            let redundant = match (&o.kind, row_version) {
                (OverlayKind::Remove, None) => true,
                (OverlayKind::Remove, Some(v)) => v > confirmed,
                (_, Some(v)) => v >= confirmed,
                (_, None) => tombstone.is_some_and(|t| t >= confirmed),
            };
            !redundant
        });
    }

    /// Replaces the confirmed rows with a complete snapshot consistent with `seq`.
    pub(crate) fn replace(&mut self, items: Vec<Value>, seq: i64, changes: &mut Vec<RowChange>) {
        let before: BTreeMap<String, Value> =
            self.visible_keys().into_iter().filter_map(|k| self.visible(&k).map(|v| (k, v.into_owned()))).collect();
        let mut rows = BTreeMap::new();
        for value in items {
            let Some(key) = self.key_of(&value) else { continue };
            let version = self.version_of(&value);
            let newer = match rows.get(&key) {
                Some(Row { version: Some(old), .. }) => version.is_some_and(|v| v > *old),
                _ => true,
            };
            if newer {
                rows.insert(key, Row { value, version });
            }
        }
        // Rows that existed before and are gone from the snapshot were removed meanwhile, and so were the rows of
        // mutations confirmed before this fetch started that the snapshot lacks: remember that, so no overlay
        // resurrects them.
        let mut gone: Vec<String> = self.rows.keys().filter(|k| !rows.contains_key(*k)).cloned().collect();
        gone.extend(
            self.overlays
                .iter()
                .filter(|o| {
                    o.confirmed_version.is_some() && o.confirmed_epoch < self.epoch && !rows.contains_key(&o.key)
                })
                .map(|o| o.key.clone()),
        );
        for key in gone {
            self.tombstone(&key, i64::MAX);
        }
        self.rows = rows;
        self.last_seq = Some(seq);
        self.buffer.clear();
        self.needs_snapshot = false;
        self.snapshot = None;
        self.stats.snapshots += 1;
        let overlay_keys: BTreeSet<String> = self.overlays.iter().map(|o| o.key.clone()).collect();
        for key in &overlay_keys {
            self.resolve_overlays(key);
        }
        let mut keys: BTreeSet<String> = before.keys().cloned().collect();
        keys.extend(self.visible_keys());
        for key in keys {
            diff(&key, before.get(&key), self.visible(&key).as_deref(), false, changes);
        }
    }

    /// What readers see for `key`: the confirmed row with this key's overlays applied in mutation order. Borrowed
    /// unless a patch overlay had to merge fields into a copy.
    pub(crate) fn visible(&self, key: &str) -> Option<Cow<'_, Value>> {
        let confirmed = self.rows.get(key).map(|r| Cow::Borrowed(&r.value));
        self.overlays.iter().filter(|o| o.key == key).fold(confirmed, |value, overlay| match &overlay.kind {
            OverlayKind::Upsert(row) => Some(Cow::Borrowed(row)),
            OverlayKind::Patch(fields) => value.map(|value| match value.into_owned() {
                Value::Object(mut map) => {
                    map.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                    Cow::Owned(Value::Object(map))
                }
                other => Cow::Owned(other),
            }),
            OverlayKind::Remove => None,
        })
    }

    /// The confirmed row for `key`, without overlays.
    pub(crate) fn confirmed(&self, key: &str) -> Option<&Value> {
        self.rows.get(key).map(|r| &r.value)
    }

    /// The visible keys in the collection's order.
    pub(crate) fn visible_keys(&self) -> Vec<String> {
        let mut keys: BTreeSet<&str> = self.rows.keys().map(String::as_str).collect();
        keys.extend(self.overlays.iter().map(|o| o.key.as_str()));
        let mut keys: Vec<String> = keys.into_iter().filter(|k| self.visible(k).is_some()).map(str::to_owned).collect();
        if self.cfg.descending {
            keys.reverse();
        }
        keys
    }

    /// Shows a pending mutation's optimistic effect.
    pub(crate) fn add_overlay(
        &mut self,
        mutation_id: &str,
        optimistic: &crate::mutation::Optimistic,
        changes: &mut Vec<RowChange>,
    ) -> Result<(), String> {
        use crate::mutation::Optimistic;
        let (key, kind) = match optimistic {
            Optimistic::Upsert { row } => {
                let key = self.key_of(row).ok_or_else(|| format!("optimistic row without `{}`", self.cfg.key_field))?;
                (key, OverlayKind::Upsert(row.clone()))
            }
            Optimistic::Patch { key, fields } => {
                let fields = fields.as_object().cloned().ok_or("an optimistic patch must be an object")?;
                (key.clone(), OverlayKind::Patch(fields))
            }
            Optimistic::Remove { key } => (key.clone(), OverlayKind::Remove),
        };
        let before = self.visible(&key).map(Cow::into_owned);
        self.overlays.push(Overlay {
            mutation_id: mutation_id.to_owned(),
            key: key.clone(),
            kind,
            confirmed_version: None,
            confirmed_epoch: 0,
        });
        diff(&key, before.as_ref(), self.visible(&key).as_deref(), false, changes);
        Ok(())
    }

    /// The mutation succeeded with `result` (the entity the server returned): show the server's image until the
    /// change event for it arrives, or drop the overlay at once if that event has already arrived.
    pub(crate) fn confirm_overlay(&mut self, mutation_id: &str, result: &Value, changes: &mut Vec<RowChange>) {
        let Some(index) = self.overlays.iter().position(|o| o.mutation_id == mutation_id) else { return };
        let old_key = self.overlays[index].key.clone();
        let new_key = if result.is_object() { self.key_of(result) } else { None };
        let version = if result.is_object() { self.version_of(result) } else { None };
        let mut keys = vec![old_key.clone()];
        if let Some(k) = new_key.as_ref().filter(|k| **k != old_key) {
            keys.push(k.clone());
        }
        let before: Vec<Option<Value>> = keys.iter().map(|k| self.visible(k).map(Cow::into_owned)).collect();
        match (version, new_key) {
            (Some(version), Some(new_key)) => {
                let overlay = &mut self.overlays[index];
                if overlay.kind != OverlayKind::Remove {
                    overlay.kind = OverlayKind::Upsert(result.clone());
                    overlay.key = new_key;
                }
                overlay.confirmed_version = Some(version);
                overlay.confirmed_epoch = self.epoch;
            }
            // Without a key and version the overlay's end cannot be recognised: drop it now.
            _ => {
                self.overlays.remove(index);
            }
        }
        for key in &keys {
            self.resolve_overlays(key);
        }
        for (key, before) in keys.iter().zip(before) {
            diff(key, before.as_ref(), self.visible(key).as_deref(), false, changes);
        }
    }

    /// The mutation failed: remove its overlay.
    pub(crate) fn rollback_overlay(&mut self, mutation_id: &str, changes: &mut Vec<RowChange>) {
        let Some(index) = self.overlays.iter().position(|o| o.mutation_id == mutation_id) else { return };
        let key = self.overlays[index].key.clone();
        let before = self.visible(&key).map(Cow::into_owned);
        self.overlays.remove(index);
        diff(&key, before.as_ref(), self.visible(&key).as_deref(), false, changes);
    }

    /// The number of overlays shown.
    pub(crate) fn overlay_count(&self) -> usize {
        self.overlays.len()
    }
}
