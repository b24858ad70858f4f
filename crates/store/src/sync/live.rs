//! A live query (Hasura style): one subscription pushes the whole current result each time. Each result replaces the
//! rows, and only the rows that differ from what showed are published, so per-row signals fire for changed rows
//! alone. After a reconnect the rows stay, marked not live, until the first new result.

use serde_json::Value;

use super::{take_field, Action, Fed, Paged, Slot, SyncStrategy};
use crate::collection::{RowChange, Table};
use crate::source::LiveQuerySource;

#[derive(Debug)]
pub(crate) struct LiveSync {
    name: String,
    src: LiveQuerySource,
    slots: [Slot; 1],
    /// A result arrived on the running subscription.
    current: bool,
}

impl LiveSync {
    pub(crate) fn new(name: &str, src: LiveQuerySource) -> Self {
        Self { name: name.to_owned(), src, slots: Default::default(), current: false }
    }

    fn stale(&mut self, table: &mut Table) {
        if self.current {
            table.stats.resyncs += 1;
        }
        self.current = false;
    }
}

impl SyncStrategy for LiveSync {
    fn slots(&self) -> &[Slot] {
        &self.slots
    }

    fn slots_mut(&mut self) -> &mut [Slot] {
        &mut self.slots
    }

    fn poll(&mut self, _: bool) -> Option<Action> {
        let idle = self.slots[0].id.is_none();
        idle.then(|| Action::Subscribe {
            slot: 0,
            query: self.src.subscription.clone(),
            variables: self.src.variables.clone(),
        })
    }

    fn on_up(&mut self, table: &mut Table, _: Option<i64>) {
        self.stale(table);
    }

    fn on_down(&mut self) {
        self.slots[0].clear();
    }

    fn next(
        &mut self,
        _: usize,
        mut payload: Value,
        table: &mut Table,
        changes: &mut Vec<RowChange>,
    ) -> Result<Fed, String> {
        let result = take_field(&mut payload, &self.src.field, &self.name)?;
        let items = match result {
            Value::Array(items) => items,
            Value::Object(mut map) => match map.remove("items") {
                Some(Value::Array(items)) => items,
                _ => return Err(format!("{}: data.{} holds no `items` list", self.name, self.src.field)),
            },
            other => return Err(format!("{}: data.{} is not a list: {other}", self.name, self.src.field)),
        };
        table.stats.events += 1;
        table.begin_fetch();
        table.replace(items, changes);
        table.stats.applied += 1;
        self.current = true;
        Ok(Fed::Applied)
    }

    fn failed(&mut self, _: usize, _: bool, table: &mut Table) -> bool {
        self.stale(table);
        true
    }

    fn completed(&mut self, _: usize, table: &mut Table) {
        self.stale(table);
    }

    fn fetch_started(&mut self, _: u64, _: &mut Table) {}

    fn fetching(&self) -> Option<u64> {
        None
    }

    fn page(&mut self, _: &Value, _: &mut Table, _: &mut Vec<RowChange>) -> Result<Paged, String> {
        Ok(Paged::Done)
    }

    fn fetch_failed(&mut self, _: bool) {}

    fn is_live(&self) -> bool {
        self.current && self.slots[0].id.is_some()
    }

    fn awaiting_rows(&self) -> bool {
        !self.current
    }
}
