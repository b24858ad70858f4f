//! Entity events: subscriptions that publish the bare entity (AppSync/Amplify's `onCreateT`, `onUpdateT`,
//! `onDeleteT`; Apollo Server, GraphQL Yoga…), and a paged list query.
//!
//! Nothing here is replayed, so the collection converges rather than chains: after every (re)connect, and after any
//! of its subscriptions fails or ends, it subscribes and, once every subscription runs (AppSync's `start_ack`; at once
//! over graphql-transport-ws, which has no acknowledgement), lists the rows again. Events that arrive during the list
//! are buffered and applied on top of it, and every event applies by version, so a row never goes back to an older
//! image; a soft-deleted entity (`_deleted: true`) is a removal. With Amplify's delta query configured, the list goes
//! through it: the first time with `lastSync: null` (the whole table), afterwards with the `startedAt` of the last
//! sync, so a reconnect fetches only what changed, soft-deleted rows included; if the server refuses the delta (a
//! `lastSync` past its retention), the next attempt lists everything.

use serde_json::Value;

use super::{body, page_request, read_connection, take_field, Action, Fed, Paged, Slot, SyncStrategy, MAX_BUFFER};
use crate::collection::{RowChange, Table};
use crate::source::{EntityAction, EntityEventsSource, ListQuery};

/// A list being fetched page by page.
#[derive(Debug)]
struct Fetch {
    request_id: u64,
    items: Vec<Value>,
    /// Through the delta query with a `lastSync`: the items are changes, not the whole table.
    delta: bool,
    started_at: Option<Value>,
}

#[derive(Debug)]
pub(crate) struct EntitySync {
    name: String,
    src: EntityEventsSource,
    page_size: Option<u32>,
    slots: Vec<Slot>,
    /// A list is due: at the start, and after anything that may have lost events.
    needs_list: bool,
    fetch: Option<Fetch>,
    /// Events that arrived while a list was due, in arrival order: `(entity, removal)`.
    buffer: Vec<(Value, bool)>,
    /// The delta query's `startedAt` of the last completed sync.
    last_sync: Option<Value>,
}

impl EntitySync {
    pub(crate) fn new(name: &str, src: EntityEventsSource, page_size: Option<u32>) -> Self {
        Self {
            name: name.to_owned(),
            slots: vec![Slot::default(); src.subscriptions.len()],
            src,
            page_size,
            needs_list: true,
            fetch: None,
            buffer: Vec::new(),
            last_sync: None,
        }
    }

    /// The query lists go through: the delta query when configured, else the list.
    fn query(&self) -> &ListQuery {
        self.src.delta.as_ref().unwrap_or(&self.src.list)
    }

    fn request(&self, next_token: Option<String>) -> Value {
        let query = self.query();
        let (document, mut variables) =
            page_request(&query.document, query.variables.as_ref(), self.page_size, next_token);
        if self.src.delta.is_some() {
            variables.insert("lastSync".to_owned(), self.last_sync.clone().unwrap_or(Value::Null));
        }
        body(document, variables)
    }

    /// Events may have been missed: list again (subscriptions that still run keep running).
    fn relist(&mut self, table: &mut Table) {
        if !self.needs_list {
            table.stats.resyncs += 1;
        }
        self.needs_list = true;
        self.fetch = None;
        self.buffer.clear();
    }
}

impl SyncStrategy for EntitySync {
    fn slots(&self) -> &[Slot] {
        &self.slots
    }

    fn slots_mut(&mut self) -> &mut [Slot] {
        &mut self.slots
    }

    fn poll(&mut self, may_fetch: bool) -> Option<Action> {
        if let Some(slot) = self.slots.iter().position(|s| s.id.is_none()) {
            let sub = &self.src.subscriptions[slot];
            return Some(Action::Subscribe { slot, query: sub.document.clone(), variables: sub.variables.clone() });
        }
        let due = self.needs_list && self.fetch.is_none() && may_fetch && self.slots.iter().all(|s| s.running);
        due.then(|| Action::Fetch { body: self.request(None), prefetchable: false })
    }

    fn on_up(&mut self, table: &mut Table, _: Option<i64>) {
        self.relist(table);
    }

    fn on_down(&mut self) {
        self.slots.iter_mut().for_each(Slot::clear);
    }

    fn next(
        &mut self,
        slot: usize,
        mut payload: Value,
        table: &mut Table,
        changes: &mut Vec<RowChange>,
    ) -> Result<Fed, String> {
        let Some(sub) = self.src.subscriptions.get(slot) else { return Ok(Fed::Ignored) };
        let entity = take_field(&mut payload, &sub.field, &self.name)?;
        if !entity.is_object() {
            return Err(format!("{}: data.{} is not an object: {entity}", self.name, sub.field));
        }
        let removal = sub.action == EntityAction::Remove;
        table.stats.events += 1;
        if self.needs_list {
            if self.buffer.len() >= MAX_BUFFER {
                // Too much arrived during one list: list again, from scratch.
                self.buffer.clear();
                self.fetch = None;
            }
            self.buffer.push((entity, removal));
            return Ok(Fed::Ignored);
        }
        if !table.apply_entity(entity, removal, changes) {
            return Err(format!("{}: an event of {} without its key field", self.name, sub.field));
        }
        table.stats.applied += 1;
        Ok(Fed::Applied)
    }

    fn failed(&mut self, _: usize, _: bool, table: &mut Table) -> bool {
        self.relist(table);
        true
    }

    fn completed(&mut self, _: usize, table: &mut Table) {
        self.relist(table);
    }

    fn fetch_started(&mut self, request_id: u64, table: &mut Table) {
        match &mut self.fetch {
            Some(fetch) => fetch.request_id = request_id,
            None => {
                table.begin_fetch();
                let delta = self.src.delta.is_some() && self.last_sync.is_some();
                self.fetch = Some(Fetch { request_id, items: Vec::new(), delta, started_at: None });
            }
        }
    }

    fn fetching(&self) -> Option<u64> {
        self.fetch.as_ref().map(|f| f.request_id)
    }

    fn page(&mut self, data: &Value, table: &mut Table, changes: &mut Vec<RowChange>) -> Result<Paged, String> {
        let field = &self.query().field;
        let (items, next_token) = read_connection(data, field, &self.name)?;
        let started_at = data.get(field).and_then(|c| c.get("startedAt")).filter(|v| !v.is_null()).cloned();
        let Some(fetch) = self.fetch.as_mut() else { return Ok(Paged::Done) };
        fetch.items.extend(items);
        // Amplify's delta query reports one `startedAt` for the whole sync, on its first page.
        if fetch.started_at.is_none() {
            fetch.started_at = started_at;
        }
        if next_token.is_some() {
            return Ok(Paged::More { body: self.request(next_token) });
        }
        let Some(fetch) = self.fetch.take() else { return Ok(Paged::Done) };
        let buffered = std::mem::take(&mut self.buffer);
        table.batch(
            |table| {
                if fetch.delta {
                    table.merge_rows(fetch.items);
                } else {
                    table.replace_rows(fetch.items);
                }
                let mut ignored = Vec::new();
                for (entity, removal) in buffered {
                    if table.apply_entity(entity, removal, &mut ignored) {
                        table.stats.applied += 1;
                    }
                }
            },
            changes,
        );
        if self.src.delta.is_some() {
            self.last_sync = fetch.started_at;
        }
        self.needs_list = false;
        Ok(Paged::Done)
    }

    fn fetch_failed(&mut self, graphql: bool) {
        self.fetch = None;
        if graphql {
            // The server refused the delta (or the list): the next attempt asks for everything.
            self.last_sync = None;
        }
    }

    fn is_live(&self) -> bool {
        !self.needs_list && self.slots.iter().all(|s| s.id.is_some())
    }

    fn awaiting_rows(&self) -> bool {
        self.needs_list
    }

    fn cursor(&self) -> Option<Value> {
        self.last_sync.clone()
    }

    fn restore(&mut self, _: Option<i64>, cursor: Option<Value>) {
        // The rows are those of the sync at `cursor`: the delta query, if any, asks only for what changed since.
        if self.src.delta.is_some() {
            self.last_sync = cursor;
        }
    }
}
