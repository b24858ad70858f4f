//! Collection sync: one strategy per [`Source`](crate::Source), each keeping a collection's [`Table`] equal to the
//! server's rows in its own way.
//!
//! A strategy does no IO of its own. The store asks it what to start ([`SyncStrategy::poll`]: a subscription, a page
//! of a list) whenever the connection is live and the collection is not waiting out a retry, and feeds it what came
//! back: events of its subscriptions, pages, failures, and the connection going up and down. The strategies:
//! - [`subsignal`]: the change envelope, gapless by `seq`/`prevSeq` with replay from `afterSeq` (or, over AppSync,
//!   which never replays, a snapshot after every reconnect);
//! - [`entity`]: entity events (onCreate/onUpdate/onDelete) and an AppSync-paged list (or Amplify's delta query),
//!   re-listed after every reconnect with the events that arrive meanwhile buffered and applied by version;
//! - [`live`]: a live query, each result diffed against the rows.

pub(crate) mod entity;
pub(crate) mod live;
pub(crate) mod subsignal;

use serde_json::{Map, Value};

use crate::collection::{RowChange, Table};
use crate::connection::{ChangeEvent, ChangeShape};

/// Event buffers larger than this are discarded (a replay or a new list brings those events anyway).
pub(crate) const MAX_BUFFER: usize = 4096;

/// What a strategy asks the store to start.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Start the subscription in `slot`.
    Subscribe { slot: usize, query: String, variables: Option<Value> },
    /// Request this GraphQL body (the first page of a snapshot or list); answer with [`SyncStrategy::page`].
    /// `prefetchable`: an answer fetched before the store asked will do (see [`crate::HttpRequest::prefetchable`]).
    Fetch { body: Value, prefetchable: bool },
}

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fed {
    Applied,
    Ignored,
    /// Stop this subscription and start it again (a gap: the replay from `lastSeq` fills it).
    Resubscribe,
}

/// What became of a page.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Paged {
    /// Request this body next (the following page).
    More { body: Value },
    /// The fetch is complete and applied.
    Done,
}

/// One subscription of a collection: its id on the wire while it runs, and whether the server confirmed it
/// (AppSync's `start_ack`; at once over protocols without acknowledgements).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Slot {
    pub(crate) id: Option<String>,
    pub(crate) running: bool,
}

impl Slot {
    pub(crate) fn clear(&mut self) {
        *self = Slot::default();
    }
}

/// One source's way of keeping a collection in step. See the module docs for who calls what.
pub(crate) trait SyncStrategy: std::fmt::Debug {
    /// The collection's subscriptions.
    fn slots(&self) -> &[Slot];
    fn slots_mut(&mut self) -> &mut [Slot];
    /// The next thing to start, if any; `may_fetch` is false while a mutation of this collection may have committed
    /// without its result being known, when a fetched list could not tell whether it reflects it.
    fn poll(&mut self, may_fetch: bool) -> Option<Action>;
    /// The connection is up (acknowledged), with no subscription running; `epoch` is the server's change log's, when
    /// it says one (subsignal's server).
    fn on_up(&mut self, table: &mut Table, epoch: Option<i64>);
    /// The connection went down: every subscription on it is gone.
    fn on_down(&mut self);
    /// An event of the subscription in `slot`.
    fn next(
        &mut self,
        slot: usize,
        payload: Value,
        table: &mut Table,
        changes: &mut Vec<RowChange>,
    ) -> Result<Fed, String>;
    /// Where a change event sits in the results of the subscription in `slot`, when its results are subsignal's
    /// change events: the connection reads those straight into a [`ChangeEvent`] for [`SyncStrategy::next_change`].
    fn change_shape(&self, _slot: usize) -> Option<ChangeShape<'_>> {
        None
    }
    /// A change event of the subscription in `slot`, read by the shape [`SyncStrategy::change_shape`] gave.
    fn next_change(
        &mut self,
        _slot: usize,
        _event: ChangeEvent,
        _table: &mut Table,
        _changes: &mut Vec<RowChange>,
    ) -> Result<Fed, String> {
        Err("a change event for a subscription whose source reads no change events".to_owned())
    }
    /// The subscription in `slot` failed (its slot is already cleared); `expired` when the server said its cursor is
    /// past retention. Returns whether to retry after a backoff (else the strategy starts over at once).
    fn failed(&mut self, slot: usize, expired: bool, table: &mut Table) -> bool;
    /// The subscription in `slot` ended (its slot is already cleared); the store retries after a backoff.
    fn completed(&mut self, slot: usize, table: &mut Table);
    /// The fetch from [`Action::Fetch`] or [`Paged::More`] went out as `request_id`.
    fn fetch_started(&mut self, request_id: u64, table: &mut Table);
    /// The request id of the page being fetched, if any.
    fn fetching(&self) -> Option<u64>;
    /// A page arrived (the response's `data`).
    fn page(&mut self, data: &Value, table: &mut Table, changes: &mut Vec<RowChange>) -> Result<Paged, String>;
    /// The fetch failed; `graphql` when the server answered with errors (rather than the network failing).
    fn fetch_failed(&mut self, graphql: bool);
    /// Whether the rows are current: fetched, and every subscription running.
    fn is_live(&self) -> bool;
    /// Whether the collection still waits for its first rows (or fresh ones after a reset): a queued mutation with
    /// an optimistic effect is not sent before they arrive.
    fn awaiting_rows(&self) -> bool;
    /// The seq the rows are consistent with (subsignal source).
    fn last_seq(&self) -> Option<i64> {
        None
    }
    /// The source's own cursor, persisted beside the rows (entity events: the delta query's last `startedAt`).
    fn cursor(&self) -> Option<Value> {
        None
    }
    /// The rows were just restored from a persisted image taken at `last_seq` with `cursor`: resume from there
    /// once connected, rather than from nothing. Called only before anything was fetched.
    fn restore(&mut self, _last_seq: Option<i64>, _cursor: Option<Value>) {}
}

/// `{query, variables}` with `limit` (if set) and `nextToken`, on top of the caller's variables.
pub(crate) fn page_request(
    document: &str,
    base: Option<&Value>,
    limit: Option<u32>,
    next_token: Option<String>,
) -> (Value, Map<String, Value>) {
    let mut variables = base.and_then(Value::as_object).cloned().unwrap_or_default();
    if let Some(limit) = limit {
        variables.insert("limit".to_owned(), Value::from(limit));
    }
    variables.insert("nextToken".to_owned(), next_token.map_or(Value::Null, Value::String));
    (Value::String(document.to_owned()), variables)
}

/// The GraphQL request body `{query, variables}`.
pub(crate) fn body(query: Value, variables: Map<String, Value>) -> Value {
    let mut body = Map::new();
    body.insert("query".to_owned(), query);
    body.insert("variables".to_owned(), Value::Object(variables));
    Value::Object(body)
}

/// The `{items, nextToken}` connection under `data.<field>`.
pub(crate) fn read_connection(data: &Value, field: &str, name: &str) -> Result<(Vec<Value>, Option<String>), String> {
    let conn =
        data.get(field).filter(|c| !c.is_null()).ok_or_else(|| format!("{name}: a page without data.{field}"))?;
    let items = conn.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
    let next_token = conn.get("nextToken").and_then(Value::as_str).map(str::to_owned);
    Ok((items, next_token))
}

/// Takes `data.<field>` out of a subscription payload, or says what the payload lacked.
pub(crate) fn take_field(payload: &mut Value, field: &str, name: &str) -> Result<Value, String> {
    match payload.get_mut("data").and_then(|d| d.get_mut(field)).map(Value::take) {
        Some(value) if !value.is_null() => Ok(value),
        _ => Err(format!("{name}: a `next` without data.{field}: {payload}")),
    }
}
