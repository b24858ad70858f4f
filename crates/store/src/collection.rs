//! A collection's rows: the confirmed rows (what the server's events and lists say) and, on top of them, overlays of
//! pending mutations. Readers see the overlays applied; every change to what a reader sees is reported as a
//! [`RowChange`] for exactly the rows it touched.
//!
//! The [`Table`] knows nothing of where rows come from: the sync strategies (`crate::sync`) feed it upserts, removals
//! and whole lists, each row guarded by its [`Version`] so that an older image never replaces a newer one.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::history::History;
use crate::source::{CollectionConfig, Source};

/// How many removed keys are remembered (oldest forgotten first), so that a late mutation result cannot resurrect a
/// removed row.
const MAX_TOMBSTONES: usize = 4096;

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

/// What made a row change: the subscription event (with its `seq`, for subsignal's source), a whole fetch (a
/// snapshot, list or live-query result), or this client's own mutations (optimistic effects, their answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum RowOrigin {
    /// A subscription event.
    Event {
        /// Its seq (subsignal's source); `None` for sources without one.
        seq: Option<i64>,
    },
    /// A snapshot, list or live-query result.
    Fetch,
    /// This client's mutation: its optimistic effect, its answer, its rollback.
    Local,
    /// The persisted copy, shown before the network answers.
    Restore,
}

/// Counters of what a collection has done, for diagnostics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionStats {
    /// Events received from the collection's subscriptions.
    pub events: u64,
    /// Events applied (watermarks included).
    pub applied: u64,
    /// Events dropped because their seq was not after `lastSeq`.
    pub duplicates: u64,
    /// Events whose `prevSeq` did not match `lastSeq`.
    pub gaps: u64,
    /// Subscriptions started (the first one included).
    pub subscriptions: u64,
    /// Snapshots, lists and live-query results taken in whole (the first one included).
    pub snapshots: u64,
    /// Times the rows had to be fetched again because events may have been missed (a reconnect without replay, a
    /// lost subscription, an expired cursor).
    pub resyncs: u64,
}

/// The order of one row's versions, read from the first of the collection's version fields that the row has:
/// numbers compare as numbers, strings (ISO timestamps) as strings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Version {
    Number(i64),
    Text(String),
    /// After every version: a removal whose version is unknown.
    Last,
}

#[derive(Debug, Clone, PartialEq)]
struct Row {
    value: Value,
    version: Option<Version>,
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
    confirmed_version: Option<Version>,
    /// The snapshot epoch in which the result arrived.
    confirmed_epoch: u64,
}

/// The rows of one collection, with the overlays of pending mutations.
#[derive(Debug)]
pub(crate) struct Table {
    key_field: String,
    version_fields: Vec<String>,
    deleted_field: String,
    descending: bool,
    rows: BTreeMap<String, Row>,
    overlays: Vec<Overlay>,
    /// Removal versions of recently removed keys (keys are never reused), oldest first in `tombstone_order`.
    tombstones: HashMap<String, Version>,
    tombstone_order: VecDeque<String>,
    /// Counts whole fetches started, to tell which mutation results a fetched list must already reflect.
    epoch: u64,
    pub(crate) stats: CollectionStats,
    /// While events are applied: `(n, seq)` says the changes from the `n`th on come from the event `seq`.
    pub(crate) seq_marks: Vec<(usize, i64)>,
    /// The commit time of the newest event applied since the store last looked (`committedAtMs`, when selected).
    pub(crate) committed_at_ms: Option<i64>,
    /// The history of the confirmed rows, when the collection keeps one.
    pub(crate) history: Option<History>,
    /// The rows include a follower's mirrored rows (see `Table::mirror`): the next whole list replacing them says
    /// nothing about removals.
    mirrored: bool,
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

impl Table {
    pub(crate) fn new(cfg: &CollectionConfig) -> Self {
        Self {
            key_field: cfg.key_field.clone(),
            version_fields: cfg.version_fields.clone(),
            deleted_field: cfg.deleted_field.clone(),
            descending: cfg.descending,
            rows: BTreeMap::new(),
            overlays: Vec::new(),
            tombstones: HashMap::new(),
            tombstone_order: VecDeque::new(),
            epoch: 0,
            stats: CollectionStats::default(),
            seq_marks: Vec::new(),
            committed_at_ms: None,
            history: match (&cfg.source, cfg.history) {
                (Source::Subsignal(_), Some(history)) => Some(History::new(history)),
                _ => None,
            },
            mirrored: false,
            #[cfg(test)]
            applied_log: Vec::new(),
        }
    }

    /// The field rows are keyed by.
    pub(crate) fn key_field(&self) -> &str {
        &self.key_field
    }

    /// The fields that order a row's versions.
    pub(crate) fn version_fields(&self) -> &[String] {
        &self.version_fields
    }

    /// The entity's key, a string or a number.
    pub(crate) fn key_of(&self, entity: &Value) -> Option<String> {
        match entity.get(&self.key_field)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The entity's version: its first version field that holds a number or a string.
    pub(crate) fn version_of(&self, entity: &Value) -> Option<Version> {
        self.version_fields.iter().find_map(|field| match entity.get(field)? {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).map(Version::Number),
            Value::String(s) => Some(Version::Text(s.clone())),
            _ => None,
        })
    }

    /// Whether the entity is soft-deleted (its deleted field is `true`).
    pub(crate) fn is_deleted(&self, entity: &Value) -> bool {
        entity.get(&self.deleted_field).and_then(Value::as_bool) == Some(true)
    }

    /// Applies one entity event: the entity is the row's state (`remove` false, unless soft-deleted) or its removal.
    /// Returns false when the entity has no key.
    pub(crate) fn apply_entity(&mut self, entity: Value, remove: bool, changes: &mut Vec<RowChange>) -> bool {
        let Some(key) = self.key_of(&entity) else { return false };
        let version = self.version_of(&entity);
        if remove || self.is_deleted(&entity) {
            self.remove_confirmed(&key, version, false, changes);
        } else {
            if let Some(id) = entity.get("clientMutationId").and_then(Value::as_str).map(str::to_owned) {
                self.settle_overlay_by_event(&id, &key, &entity, version.clone(), changes);
            }
            self.upsert_confirmed(&key, entity, version, changes);
        }
        true
    }

    /// The event of our own mutation `id` arrived (the server echoes its `clientMutationId`): its overlay now
    /// belongs to the event's key at the event's version, so it ends with this event instead of waiting for the
    /// mutation's answer. For an optimistic create this retires the placeholder row at once, so the placeholder and
    /// the server's row never show side by side.
    pub(crate) fn settle_overlay_by_event(
        &mut self,
        id: &str,
        key: &str,
        entity: &Value,
        version: Option<Version>,
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

    /// Shows `value` as the confirmed row `key`, unless the stored row is as new or newer.
    pub(crate) fn upsert_confirmed(
        &mut self,
        key: &str,
        value: Value,
        version: Option<Version>,
        changes: &mut Vec<RowChange>,
    ) {
        // Older than the stored row, or than the row's removal: an image that arrives late (reordered, or buffered
        // during a list) never brings back an older state.
        let older = |stored: Option<&Version>| matches!((stored, &version), (Some(stored), Some(v)) if v <= stored);
        if !self.overlays.iter().any(|o| o.key == key) {
            // The common case, no optimistic effect on this key: what shows is the row itself, so the change is
            // told by the row replaced, without copying either. One search of the rows for an update, two for an
            // insert: at 100k rows a search is a dozen and more key comparisons, and the hot path runs one per event.
            match self.rows.get_mut(key) {
                Some(old) => {
                    if older(old.version.as_ref().or_else(|| self.tombstones.get(key))) {
                        return;
                    }
                    let changed = old.value != value;
                    *old = Row { value, version };
                    if changed {
                        changes.push(RowChange::Updated { key: key.to_owned() });
                    }
                }
                None => {
                    if older(self.tombstones.get(key)) {
                        return;
                    }
                    self.rows.insert(key.to_owned(), Row { value, version });
                    changes.push(RowChange::Inserted { key: key.to_owned() });
                }
            }
            return;
        }
        let stale = older(self.rows.get(key).and_then(|r| r.version.as_ref()).or_else(|| self.tombstones.get(key)));
        let before = self.visible(key).map(Cow::into_owned);
        if !stale {
            self.rows.insert(key.to_owned(), Row { value, version });
        }
        self.resolve_overlays(key);
        diff(key, before.as_ref(), self.visible(key).as_deref(), false, changes);
    }

    /// Removes the confirmed row `key`, unless the stored row is newer than the removal.
    pub(crate) fn remove_confirmed(
        &mut self,
        key: &str,
        version: Option<Version>,
        expired: bool,
        changes: &mut Vec<RowChange>,
    ) {
        let before = self.visible(key).map(Cow::into_owned);
        let removable = match (self.rows.get(key), &version) {
            (Some(row), Some(v)) => row.version.as_ref().is_none_or(|stored| v >= stored),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if removable {
            self.rows.remove(key);
        }
        self.tombstone(key, version.unwrap_or(Version::Last));
        self.resolve_overlays(key);
        diff(key, before.as_ref(), self.visible(key).as_deref(), expired, changes);
    }

    fn tombstone(&mut self, key: &str, version: Version) {
        match self.tombstones.get_mut(key) {
            Some(v) => {
                if version > *v {
                    *v = version;
                }
            }
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

    /// A whole fetch (snapshot, list) starts: mutation results from now on may be missing from it.
    pub(crate) fn begin_fetch(&mut self) {
        self.epoch += 1;
    }

    /// Drops the overlays on `key` that the confirmed state has made redundant.
    fn resolve_overlays(&mut self, key: &str) {
        let row_version = self.rows.get(key).map(|r| r.version.clone().unwrap_or(Version::Last));
        let tombstone = self.tombstones.get(key).cloned();
        self.overlays.retain(|o| {
            let Some(confirmed) = o.confirmed_version.as_ref().filter(|_| o.key == key) else { return true };
            let redundant = match (&o.kind, &row_version) {
                (OverlayKind::Remove, None) => true,
                (OverlayKind::Remove, Some(v)) => v > confirmed,
                (_, Some(v)) => v >= confirmed,
                (_, None) => tombstone.as_ref().is_some_and(|t| t >= confirmed),
            };
            !redundant
        });
    }

    /// Runs `f` on the table, then reports the net change of every row, so that a row inserted and removed again
    /// inside (a list, then the events buffered during it) shows nothing.
    pub(crate) fn batch(&mut self, f: impl FnOnce(&mut Table), changes: &mut Vec<RowChange>) {
        let before: BTreeMap<String, Value> =
            self.visible_keys().into_iter().filter_map(|k| self.visible(&k).map(|v| (k, v.into_owned()))).collect();
        f(self);
        let mut keys: BTreeSet<String> = before.keys().cloned().collect();
        keys.extend(self.visible_keys());
        for key in keys {
            diff(&key, before.get(&key), self.visible(&key).as_deref(), false, changes);
        }
    }

    /// Replaces the confirmed rows with a complete list (a snapshot, a list, a live query's result); its
    /// soft-deleted items are removals.
    pub(crate) fn replace(&mut self, items: Vec<Value>, changes: &mut Vec<RowChange>) {
        self.batch(|table| table.replace_rows(items), changes);
    }

    /// [`Table::replace`] without reporting.
    pub(crate) fn replace_rows(&mut self, items: Vec<Value>) {
        self.set_rows(items);
        self.stats.snapshots += 1;
    }

    /// Shows the rows of a persisted image (see `crate::persist`): the confirmed rows before the network answers,
    /// with the removals remembered beside them (so that a queued mutation's late answer cannot resurrect a row).
    pub(crate) fn restore(
        &mut self,
        items: Vec<Value>,
        tombstones: Vec<(String, Value)>,
        changes: &mut Vec<RowChange>,
    ) {
        for (key, version) in tombstones {
            let version = match version {
                Value::Number(n) => n.as_i64().map_or(Version::Last, Version::Number),
                Value::String(s) => Version::Text(s),
                _ => Version::Last,
            };
            self.tombstone(&key, version);
        }
        self.batch(|table| table.set_rows(items), changes);
    }

    /// A follower's row, set as another store reports it (see `Store::mirror_rows`): no version, no history.
    pub(crate) fn mirror(&mut self, key: &str, row: Option<Value>, changes: &mut Vec<RowChange>) {
        let before = self.rows.get(key).map(|r| r.value.clone());
        self.mirrored = true;
        match row {
            Some(value) => {
                self.rows.insert(key.to_owned(), Row { value, version: None });
            }
            None => {
                self.rows.remove(key);
            }
        }
        diff(key, before.as_ref(), self.rows.get(key).map(|r| &r.value), false, changes);
    }

    /// No confirmed row.
    pub(crate) fn rows_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The confirmed rows in key order, for a persisted image.
    pub(crate) fn confirmed_rows(&self) -> Vec<Value> {
        self.rows.values().map(|r| r.value.clone()).collect()
    }

    /// The remembered removals, oldest first, with their versions (`null`: after every version).
    pub(crate) fn tombstone_image(&self) -> Vec<(String, Value)> {
        let version = |v: &Version| match v {
            Version::Number(n) => Value::from(*n),
            Version::Text(s) => Value::String(s.clone()),
            Version::Last => Value::Null,
        };
        self.tombstone_order.iter().filter_map(|k| self.tombstones.get(k).map(|v| (k.clone(), version(v)))).collect()
    }

    fn set_rows(&mut self, items: Vec<Value>) {
        let mut rows = BTreeMap::new();
        let mut deleted = Vec::new();
        for value in items {
            let Some(key) = self.key_of(&value) else { continue };
            let version = self.version_of(&value);
            if self.is_deleted(&value) {
                deleted.push((key, version));
                continue;
            }
            let newer = match rows.get(&key) {
                Some(Row { version: Some(old), .. }) => version.as_ref().is_some_and(|v| v > old),
                _ => true,
            };
            if newer {
                rows.insert(key, Row { value, version });
            }
        }
        // Rows that existed before and are gone from the list were removed meanwhile, and so were the rows of
        // mutations confirmed before this fetch started that the list lacks: remember that, so no overlay
        // resurrects them.
        // Rows a follower mirrored are another store's as it showed them, with no versions: their absence from the
        // list removes them, but says nothing against a later event bringing them back.
        let mut gone: Vec<String> = if std::mem::take(&mut self.mirrored) {
            Vec::new()
        } else {
            self.rows.keys().filter(|k| !rows.contains_key(*k)).cloned().collect()
        };
        gone.extend(
            self.overlays
                .iter()
                .filter(|o| {
                    o.confirmed_version.is_some() && o.confirmed_epoch < self.epoch && !rows.contains_key(&o.key)
                })
                .map(|o| o.key.clone()),
        );
        for key in gone {
            self.tombstone(&key, Version::Last);
        }
        for (key, version) in deleted {
            self.tombstone(&key, version.unwrap_or(Version::Last));
        }
        self.rows = rows;
        let overlay_keys: BTreeSet<String> = self.overlays.iter().map(|o| o.key.clone()).collect();
        for key in &overlay_keys {
            self.resolve_overlays(key);
        }
    }

    /// Applies a delta list (Amplify's delta sync) on top of the rows, without reporting: each item an upsert by
    /// version, or a removal when soft-deleted.
    pub(crate) fn merge_rows(&mut self, items: Vec<Value>) {
        let mut ignored = Vec::new();
        for item in items {
            self.apply_entity(item, false, &mut ignored);
        }
        self.stats.snapshots += 1;
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

    /// Tells the history (if kept) that the event `seq` was applied, touching the confirmed row `key` (if any).
    pub(crate) fn record_history(&mut self, seq: i64, key: Option<&str>) {
        if let Some(history) = self.history.as_mut() {
            history.record(seq, key.map(|key| (key, self.rows.get(key).map(|r| &r.value))));
        }
    }

    /// A snapshot replaced the confirmed rows at `seq`: the history (if kept) starts over there, exact from
    /// `exact_from` on.
    pub(crate) fn restart_history(&mut self, seq: i64, exact_from: i64) {
        if let Some(history) = self.history.as_mut() {
            history.restart(seq, exact_from, self.rows.iter().map(|(k, r)| (k.as_str(), &r.value)));
        }
    }

    /// The history (if kept) holds a range: a snapshot (or a mirrored state) started it.
    pub(crate) fn history_started(&self) -> bool {
        self.history.as_ref().is_some_and(|h| h.range().is_some())
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
        if self.descending {
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
                let key = self.key_of(row).ok_or_else(|| format!("optimistic row without `{}`", self.key_field))?;
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

    /// The mutation was refused for a stale version: its overlay goes, and `theirs` (the server's current row,
    /// from the refusal) shows until the event for it arrives, as a mutation's result does. A row that is gone
    /// (`None`) or that the confirmed rows already reach just loses the overlay.
    pub(crate) fn conflict_overlay(&mut self, mutation_id: &str, theirs: Option<&Value>, changes: &mut Vec<RowChange>) {
        let Some(index) = self.overlays.iter().position(|o| o.mutation_id == mutation_id) else { return };
        let key = self.overlays[index].key.clone();
        let before = self.visible(&key).map(Cow::into_owned);
        self.overlays.remove(index);
        let theirs = theirs.filter(|t| t.is_object() && self.key_of(t).as_deref() == Some(key.as_str()));
        if let Some((theirs, version)) = theirs.and_then(|t| self.version_of(t).map(|v| (t, v))) {
            self.overlays.push(Overlay {
                mutation_id: mutation_id.to_owned(),
                key: key.clone(),
                kind: OverlayKind::Upsert(theirs.clone()),
                confirmed_version: Some(version),
                confirmed_epoch: self.epoch,
            });
            self.resolve_overlays(&key);
        }
        diff(&key, before.as_ref(), self.visible(&key).as_deref(), false, changes);
    }

    /// The number of overlays shown.
    pub(crate) fn overlay_count(&self) -> usize {
        self.overlays.len()
    }
}
