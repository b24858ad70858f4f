//! subsignal's change stream: a snapshot consistent with a `seq`, then change envelopes chained by `prevSeq`.
//!
//! Over graphql-transport-ws (`replay`) an event whose `prevSeq` is not `lastSeq` is a gap: it waits in a buffer while
//! the subscription starts again from `afterSeq: lastSeq`, whose replay fills the gap; duplicates (`seq ≤ lastSeq`) are
//! dropped, so every change applies exactly once, in order. `CURSOR_EXPIRED` (the cursor is past retention) takes a new
//! snapshot. With replay the snapshot does not wait for the socket: it is fetched while the socket opens, and the
//! subscription from its `seq` starts once the connection is live.
//!
//! AppSync never replays, so there (`replay` false) nothing chains: after every (re)connect and every lost
//! subscription the collection subscribes and, once `start_ack` says the subscription runs, takes a fresh snapshot;
//! events arriving meanwhile are buffered and applied on top of it when newer than its `seq`, and afterwards every
//! event newer than `lastSeq` applies at once, each row guarded by its version.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};
use subsignal_protocol::{ChangeEnvelope, ChangeOp};

use super::{body, page_request, read_connection, take_field, Action, Fed, Paged, Slot, SyncStrategy, MAX_BUFFER};
use crate::collection::{RowChange, Table, Version};
use crate::connection::{ChangeEvent as Event, ChangeShape, ENVELOPE_FIELDS};
use crate::source::SubsignalSource;

/// A snapshot being fetched page by page.
#[derive(Debug, Clone, PartialEq)]
struct Fetch {
    request_id: u64,
    first_seq: Option<i64>,
    /// The seq of the newest page: the rows are exact once the events up to it are applied.
    last_page_seq: i64,
    items: Vec<Value>,
}

#[derive(Debug)]
pub(crate) struct SubsignalSync {
    name: String,
    src: SubsignalSource,
    page_size: Option<u32>,
    replay: bool,
    slots: [Slot; 1],
    last_seq: Option<i64>,
    buffer: BTreeMap<i64, Event>,
    fetch: Option<Fetch>,
    /// True until a snapshot completes, and again after `CURSOR_EXPIRED` (or, without replay, any reset).
    needs_snapshot: bool,
    /// The epoch of the change log `last_seq` belongs to, as the server said it (or the persisted image kept it).
    epoch: Option<i64>,
    /// `last_seq` was restored from a persisted image and not yet held against the server's epoch.
    epoch_unchecked: bool,
    /// The epoch the server said in its latest `connection_ack`.
    server_epoch: Option<i64>,
}

impl SubsignalSync {
    pub(crate) fn new(name: &str, src: SubsignalSource, page_size: Option<u32>, replay: bool) -> Self {
        Self {
            name: name.to_owned(),
            src,
            page_size,
            replay,
            slots: Default::default(),
            last_seq: None,
            buffer: BTreeMap::new(),
            fetch: None,
            needs_snapshot: true,
            epoch: None,
            epoch_unchecked: false,
            server_epoch: None,
        }
    }

    fn request(&self, next_token: Option<String>) -> Value {
        let (query, variables) = page_request(&self.src.snapshot_query, None, self.page_size, next_token);
        body(query, variables)
    }

    /// Holds `last_seq` against the server's epoch, once both are known. A cursor of another change log (the server's
    /// database made again at the same address, say) means nothing there and its rows are not the server's: a
    /// snapshot is due. A cursor of unknown epoch (an image from before epochs) counts as another's; a seq from a
    /// snapshot fetched while the socket opened, as this server's. True when it made a snapshot due.
    fn hold_against_the_servers_epoch(&mut self) -> bool {
        let Some(server) = self.server_epoch else { return false };
        let other =
            self.last_seq.is_some() && self.epoch != Some(server) && (self.epoch.is_some() || self.epoch_unchecked);
        self.epoch = Some(server);
        self.epoch_unchecked = false;
        let due = other && !self.needs_snapshot;
        if other {
            self.needs_snapshot = true;
            self.buffer.clear();
        }
        due
    }

    /// Without replay: a fresh snapshot is due (after a reconnect or a lost subscription).
    fn resync(&mut self, table: &mut Table) {
        if !self.needs_snapshot {
            table.stats.resyncs += 1;
        }
        self.needs_snapshot = true;
        self.fetch = None;
        self.buffer.clear();
    }

    /// Reads the change event out of a `next` payload (`{data: {<field>: change}}`), taking the entity out of it
    /// rather than copying it.
    fn parse_event(&self, mut payload: Value) -> Result<Event, String> {
        let mut change = take_field(&mut payload, &self.src.subscription_field, &self.name)?;
        let env = ChangeEnvelope::deserialize(&change)
            .map_err(|e| format!("{}: unreadable change envelope: {e}", self.name))?;
        let entity = change.get_mut(&self.src.entity_field).map(Value::take).filter(|e| !e.is_null());
        Ok(Event { env, entity })
    }

    /// Feeds one event in replay mode.
    fn feed(&mut self, event: Event, table: &mut Table, changes: &mut Vec<RowChange>) -> Fed {
        let Some(last) = self.last_seq else { return Fed::Ignored };
        if event.env.seq <= last {
            table.stats.duplicates += 1;
            return Fed::Ignored;
        }
        if event.env.prev_seq != last {
            table.stats.gaps += 1;
            if self.buffer.len() >= MAX_BUFFER {
                self.buffer.clear();
            }
            self.buffer.insert(event.env.seq, event);
            return Fed::Resubscribe;
        }
        self.apply(event, table, changes);
        self.drain(table, changes);
        Fed::Applied
    }

    /// Feeds one event without replay: while a snapshot is due the event waits in the buffer; afterwards anything
    /// after `lastSeq` applies at once.
    fn feed_unchained(&mut self, event: Event, table: &mut Table, changes: &mut Vec<RowChange>) -> Fed {
        if self.needs_snapshot || self.last_seq.is_none() {
            if self.buffer.len() >= MAX_BUFFER {
                // Too much arrived during one snapshot: take another one.
                self.buffer.clear();
                self.fetch = None;
            }
            self.buffer.insert(event.env.seq, event);
            return Fed::Ignored;
        }
        if self.last_seq.is_some_and(|last| event.env.seq <= last) {
            table.stats.duplicates += 1;
            return Fed::Ignored;
        }
        self.apply(event, table, changes);
        Fed::Applied
    }

    /// Applies buffered events that now chain on, dropping those that became duplicates.
    fn drain(&mut self, table: &mut Table, changes: &mut Vec<RowChange>) {
        while let Some(last) = self.last_seq {
            let stale: Vec<i64> = self.buffer.range(..=last).map(|(seq, _)| *seq).collect();
            for seq in stale {
                self.buffer.remove(&seq);
                table.stats.duplicates += 1;
            }
            let next = self.buffer.iter().find(|(_, e)| e.env.prev_seq == last).map(|(seq, _)| *seq);
            match next.and_then(|seq| self.buffer.remove(&seq)) {
                Some(event) => self.apply(event, table, changes),
                None => break,
            }
        }
    }

    fn apply(&mut self, event: Event, table: &mut Table, changes: &mut Vec<RowChange>) {
        let Event { env, entity } = event;
        table.seq_marks.push((changes.len(), env.seq));
        if env.committed_at_ms.is_some() {
            table.committed_at_ms = env.committed_at_ms;
        }
        let key = env.key.clone().or_else(|| entity.as_ref().and_then(|e| table.key_of(e)));
        let version = env.version.map(Version::Number).or_else(|| entity.as_ref().and_then(|e| table.version_of(e)));
        match (env.op, &key) {
            (ChangeOp::Insert | ChangeOp::Modify, Some(key)) => {
                if let Some(entity) = entity {
                    if let Some(id) = env.client_mutation_id.as_deref() {
                        table.settle_overlay_by_event(id, key, &entity, version.clone(), changes);
                    }
                    table.upsert_confirmed(key, entity, version, changes);
                }
            }
            (ChangeOp::Remove, Some(key)) => table.remove_confirmed(key, version, env.expired, changes),
            _ => {}
        }
        table.record_history(env.seq, key.as_deref());
        self.last_seq = Some(env.seq);
        table.stats.applied += 1;
        #[cfg(test)]
        table.applied_log.push(env.seq);
    }
}

impl SyncStrategy for SubsignalSync {
    fn slots(&self) -> &[Slot] {
        &self.slots
    }

    fn slots_mut(&mut self) -> &mut [Slot] {
        &mut self.slots
    }

    fn poll(&mut self, may_fetch: bool) -> Option<Action> {
        let subscribe = |variables| Action::Subscribe { slot: 0, query: self.src.subscription.clone(), variables };
        if !self.replay {
            // Subscribe first and snapshot once `start_ack` says the subscription runs: events that arrive meanwhile
            // are buffered and applied on top of the snapshot, so nothing between the two is lost.
            if self.slots[0].id.is_none() {
                return Some(subscribe(None));
            }
            let due = self.needs_snapshot && self.slots[0].running && self.fetch.is_none() && may_fetch;
            return due.then(|| Action::Fetch { body: self.request(None), prefetchable: false });
        }
        if self.needs_snapshot {
            // With replay the snapshot's `seq` is where the subscription starts: an answer the page fetched earlier
            // is as consistent as a fresh one, only older, and the replay brings it up to date.
            let due = self.fetch.is_none() && may_fetch;
            return due.then(|| Action::Fetch { body: self.request(None), prefetchable: true });
        }
        self.slots[0].id.is_none().then(|| subscribe(Some(json!({ "afterSeq": self.last_seq }))))
    }

    fn on_up(&mut self, table: &mut Table, epoch: Option<i64>) {
        if !self.replay {
            // No replay: whatever happened while away is only in a fresh snapshot.
            self.resync(table);
        }
        if epoch.is_some() {
            self.server_epoch = epoch;
            if self.hold_against_the_servers_epoch() {
                table.stats.resyncs += 1;
            }
        }
    }

    fn on_down(&mut self) {
        self.slots[0].clear();
        self.buffer.clear();
    }

    fn next(
        &mut self,
        slot: usize,
        payload: Value,
        table: &mut Table,
        changes: &mut Vec<RowChange>,
    ) -> Result<Fed, String> {
        let event = self.parse_event(payload)?;
        self.next_change(slot, event, table, changes)
    }

    /// The subscription's results, unless the entity's field is named like one of the envelope's (then the general
    /// reader and [`SubsignalSync::parse_event`] take them, which read that field for both).
    fn change_shape(&self, _: usize) -> Option<ChangeShape<'_>> {
        let entity = self.src.entity_field.as_str();
        (!ENVELOPE_FIELDS.contains(&entity)).then_some(ChangeShape { field: &self.src.subscription_field, entity })
    }

    fn next_change(
        &mut self,
        _: usize,
        event: Event,
        table: &mut Table,
        changes: &mut Vec<RowChange>,
    ) -> Result<Fed, String> {
        table.stats.events += 1;
        Ok(if self.replay { self.feed(event, table, changes) } else { self.feed_unchained(event, table, changes) })
    }

    fn failed(&mut self, _: usize, expired: bool, table: &mut Table) -> bool {
        if !self.replay {
            self.resync(table);
        }
        if expired {
            if !self.needs_snapshot {
                table.stats.resyncs += 1;
            }
            self.needs_snapshot = true;
            self.buffer.clear();
        }
        !expired
    }

    fn completed(&mut self, _: usize, table: &mut Table) {
        if !self.replay {
            self.resync(table);
        }
    }

    fn fetch_started(&mut self, request_id: u64, table: &mut Table) {
        match &mut self.fetch {
            Some(fetch) => fetch.request_id = request_id,
            None => {
                table.begin_fetch();
                self.fetch = Some(Fetch { request_id, first_seq: None, last_page_seq: i64::MIN, items: Vec::new() });
            }
        }
    }

    fn fetching(&self) -> Option<u64> {
        self.fetch.as_ref().map(|f| f.request_id)
    }

    fn page(&mut self, data: &Value, table: &mut Table, changes: &mut Vec<RowChange>) -> Result<Paged, String> {
        let (items, next_token) = read_connection(data, &self.src.snapshot_field, &self.name)?;
        let seq = data
            .get(&self.src.snapshot_field)
            .and_then(|c| c.get("seq"))
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("{}: a snapshot page without seq", self.name))?;
        let Some(fetch) = self.fetch.as_mut() else { return Ok(Paged::Done) };
        let first_seq = *fetch.first_seq.get_or_insert(seq);
        fetch.last_page_seq = fetch.last_page_seq.max(seq);
        let last_page_seq = fetch.last_page_seq;
        fetch.items.extend(items);
        if next_token.is_some() {
            return Ok(Paged::More { body: self.request(next_token) });
        }
        let items = std::mem::take(&mut fetch.items);
        self.fetch = None;
        let buffered = std::mem::take(&mut self.buffer);
        self.last_seq = Some(first_seq);
        self.needs_snapshot = false;
        table.batch(
            |table| {
                table.replace_rows(items);
                table.restart_history(first_seq, last_page_seq);
                if !self.replay {
                    // Events that arrived during the snapshot, applied on top of it when newer.
                    let mut ignored = Vec::new();
                    for event in buffered.into_values() {
                        if self.last_seq.is_some_and(|last| event.env.seq <= last) {
                            table.stats.duplicates += 1;
                        } else {
                            self.apply(event, table, &mut ignored);
                        }
                    }
                }
            },
            changes,
        );
        Ok(Paged::Done)
    }

    fn fetch_failed(&mut self, _: bool) {
        self.fetch = None;
    }

    fn is_live(&self) -> bool {
        !self.needs_snapshot && self.slots[0].id.is_some()
    }

    fn awaiting_rows(&self) -> bool {
        self.needs_snapshot
    }

    fn last_seq(&self) -> Option<i64> {
        self.last_seq
    }

    /// The epoch of the change log the rows and `lastSeq` come from, persisted beside them.
    fn cursor(&self) -> Option<Value> {
        self.epoch.map(|epoch| serde_json::json!({ "epoch": epoch }))
    }

    fn restore(&mut self, last_seq: Option<i64>, cursor: Option<Value>) {
        let Some(seq) = last_seq else { return };
        self.last_seq = Some(seq);
        self.epoch = cursor.as_ref().and_then(|c| c.get("epoch")).and_then(Value::as_i64);
        self.epoch_unchecked = true;
        // With replay the subscription resumes at `afterSeq: seq` (`CURSOR_EXPIRED` takes a snapshot as usual);
        // without, a snapshot is due after connecting anyway and the rows only show meanwhile.
        self.needs_snapshot = !self.replay;
        // The connection may have been acknowledged while the image was read.
        self.hold_against_the_servers_epoch();
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};
    use subsignal_protocol::transport_ws::ServerMessage;

    use super::*;
    use crate::connection::read_change;

    /// A JSON object with its members in the given order, its keys written with a `\u` escape where asked.
    fn object(members: &[(String, String)], escape: bool) -> String {
        let member = |(key, value): &(String, String)| {
            let key = if escape {
                format!("\"\\u{:04x}{}\"", u32::from(key.as_bytes()[0]), &key[1..])
            } else {
                json!(key).to_string()
            };
            format!("{key}:{value}")
        };
        format!("{{{}}}", members.iter().map(member).collect::<Vec<_>>().join(","))
    }

    /// A JSON value for an entity field: strings with escapes and non-ASCII, numbers, nesting.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
            "[a-z\"\\\\é€\n ]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(2, 12, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// An optional member: absent, `null`, or the value.
    fn member(
        name: &'static str,
        value: impl Strategy<Value = Value>,
    ) -> impl Strategy<Value = Option<(String, String)>> {
        prop_oneof![Just(None), Just(Some(Value::Null)), value.prop_map(Some)]
            .prop_map(move |v| v.map(|v| (name.to_owned(), v.to_string())))
    }

    proptest! {
        /// Whatever the members' order, escapes and extra members, the one-pass reader reads a change event exactly
        /// as the general reader and `parse_event` do, and takes every message whose type and id come first.
        #[test]
        fn the_one_pass_reader_agrees_with_the_general_one(
            seq in any::<i64>(),
            prev_seq in any::<i64>(),
            op in prop::sample::select(vec!["INSERT", "MODIFY", "REMOVE", "WATERMARK"]),
            optional in (
                member("key", "[a-z0-9-]{1,8}".prop_map(Value::from)),
                member("version", any::<i64>().prop_map(Value::from)),
                member("expired", any::<bool>().prop_map(Value::from)).prop_filter("expired is not null", |m| m.as_ref().is_none_or(|(_, v)| v != "null")),
                member("clientMutationId", "[a-z0-9]{1,8}".prop_map(Value::from)),
                member("committedAtMs", any::<i64>().prop_map(Value::from)),
                member("note", prop::collection::btree_map("[a-zA-Z]{1,6}", any_json(), 0..6).prop_map(|m| Value::Object(m.into_iter().collect()))),
            ),
            extra in prop::collection::vec(("x[a-z]{0,5}", any_json()), 0..3),
            order in any::<prop::sample::Index>(),
            message_order in prop::sample::select(vec![[0, 1, 2], [1, 0, 2], [2, 0, 1], [0, 2, 1]]),
            escape in any::<bool>(),
            (data_extra, result_extra) in (any::<bool>(), any::<bool>()),
        ) {
            let (key, version, expired, cmi, committed, note) = optional;
            let mut members = vec![
                ("seq".to_owned(), seq.to_string()),
                ("prevSeq".to_owned(), prev_seq.to_string()),
                ("op".to_owned(), json!(op).to_string()),
            ];
            members.extend([key, version, expired, cmi, committed, note].into_iter().flatten());
            members.extend(extra.into_iter().map(|(k, v)| (k, v.to_string())));
            let rotate = order.index(members.len());
            members.rotate_left(rotate);
            let change = object(&members, escape);
            let mut data = vec![("onNoteChanged".to_owned(), change)];
            if data_extra {
                data.insert(0, ("other".to_owned(), "{\"seq\":1}".to_owned()));
            }
            let mut result = vec![("data".to_owned(), object(&data, false))];
            if result_extra {
                result.push(("errors".to_owned(), "[]".to_owned()));
            }
            let message = [
                ("type".to_owned(), "\"next\"".to_owned()),
                ("id".to_owned(), "\"7\"".to_owned()),
                ("payload".to_owned(), object(&result, false)),
            ];
            let text = object(&message_order.map(|i| message[i].clone()), escape);

            let src = SubsignalSource { subscription_field: "onNoteChanged".into(), entity_field: "note".into(), ..Default::default() };
            let sync = SubsignalSync::new("notes", src, None, true);
            let ServerMessage::Next { id, payload } = serde_json::from_str(&text).unwrap() else { panic!("{text}") };
            let general = sync.parse_event(payload).unwrap();
            let shape = sync.change_shape(0);
            let one_pass = read_change(&text, "next", &|id| (id == "7").then_some(shape).flatten());
            if message_order[2] == 2 {
                prop_assert_eq!(one_pass, Some((id, general)), "{}", text);
            } else {
                prop_assert_eq!(one_pass, None, "{}", text);
            }
        }
    }

    #[test]
    fn an_entity_named_like_an_envelope_field_is_left_to_the_general_reader() {
        let src =
            SubsignalSource { subscription_field: "onX".into(), entity_field: "key".into(), ..Default::default() };
        assert_eq!(SubsignalSync::new("x", src, None, true).change_shape(0), None);
        let src =
            SubsignalSource { subscription_field: "onX".into(), entity_field: "order".into(), ..Default::default() };
        assert_eq!(
            SubsignalSync::new("x", src, None, true).change_shape(0),
            Some(ChangeShape { field: "onX", entity: "order" })
        );
    }
}
