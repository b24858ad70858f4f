//! How a collection is configured: its name, key and version fields, and the one [`Source`] its rows come from.
//!
//! | source | for | what the store promises |
//! |---|---|---|
//! | [`Source::Subsignal`] (default) | subsignal's change envelope (`seq prevSeq op key version`) | gapless and exactly-once: gaps are repaired by replay from `afterSeq` |
//! | [`Source::EntityEvents`] | AppSync/Amplify `onCreateT`/`onUpdateT`/`onDeleteT`, any graphql-ws server that publishes the bare entity | converges after every reconnect (a re-list, or Amplify's delta sync); may skip intermediate versions of a row, never goes back to an older one |
//! | [`Source::LiveQuery`] | a subscription that pushes the whole current result each time (Hasura style) | converges with every result; shows only the rows that changed |
//!
//! Over AWS AppSync's real-time protocol nothing is ever replayed, so the subsignal source there converges after each
//! reconnect (a fresh snapshot) instead of replaying.
//!
//! In JSON (JavaScript) a collection is one flat object: `name`, `keyField`, `versionFields`, `pageSize`,
//! `descending`, `persist`, `history` (`{maxEvents, checkpointEvery?}`, see [`HistoryConfig`]), `source` (`"subsignal"`, `"entityEvents"` or `"liveQuery"`; default `"subsignal"`) and the fields of
//! that source (see [`WireCollection`]). It is read through that flat form rather than serde's tagged enums, which
//! would add their buffering code to the npm package's wasm.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::history::HistoryConfig;

/// How to sync one collection: its GraphQL documents and the names of the fields the store reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WireCollection", into = "WireCollection")]
pub struct CollectionConfig {
    /// The collection's name, used in every output and accessor.
    pub name: String,
    /// Where the rows come from.
    pub source: Source,
    /// The `limit` passed to each page of a snapshot or list; `None` leaves it to the server.
    pub page_size: Option<u32>,
    /// The entity's key field (default `id`).
    pub key_field: String,
    /// The fields that order versions of one row, the first present in a row counting (default `version`,
    /// `_version`, `_lastChangedAt`, `updatedAt`): an older version never replaces a newer one.
    pub version_fields: Vec<String>,
    /// The field that marks a soft-deleted row (Amplify's conflict detection): a row with `true` there is a removal
    /// (default `_deleted`).
    pub deleted_field: String,
    /// Rows are listed in key order; this reverses it (handy for time-ordered keys such as UUIDv7, newest first).
    pub descending: bool,
    /// Keep a bounded history of the confirmed rows for time travel ([`crate::CollectionView::at`]); `None` (the
    /// default) keeps none. Only the subsignal source has one (see [`crate::HistoryConfig`]).
    pub history: Option<HistoryConfig>,
    /// Keep a copy of the rows, the `lastSeq` and the source's cursor across reloads (the shell writes it to
    /// IndexedDB; see [`crate::StoreImage`]): the next load shows them at once, marked stale, and resumes from there.
    pub persist: bool,
}

/// Where a collection's rows come from, and so what the store can promise about them (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// subsignal's change stream: gapless by `seq`/`prevSeq`, replay by `afterSeq`.
    Subsignal(SubsignalSource),
    /// Subscriptions that publish the bare entity, each an upsert or a removal, and a list query.
    EntityEvents(EntityEventsSource),
    /// A subscription that pushes the whole current result each time.
    LiveQuery(LiveQuerySource),
}

/// The subsignal source's documents.
///
/// The subscription must take `$afterSeq: Int` and select the change envelope (`seq prevSeq op key version expired`)
/// plus the entity under `entity_field`. The snapshot query must take `$limit: Int` and `$nextToken: String` and
/// return `{ items nextToken seq }` under `snapshot_field`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubsignalSource {
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
}

/// Entity events, as AppSync/Amplify and most GraphQL servers publish them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityEventsSource {
    /// The subscriptions, e.g. `onCreateTodo` and `onUpdateTodo` (upserts) and `onDeleteTodo` (a removal).
    pub subscriptions: Vec<EntitySubscription>,
    /// The list query, AppSync-paged: it takes `$limit: Int` and `$nextToken: String` and returns
    /// `{ items nextToken }` under its field.
    pub list: ListQuery,
    /// Amplify's delta query (`syncTodos(lastSync, limit, nextToken)` returning `{ items nextToken startedAt }`): when
    /// set, the store lists through it (`lastSync: null` the first time) and after a reconnect asks only for what
    /// changed since the last `startedAt`, removing the rows it returns soft-deleted.
    pub delta: Option<ListQuery>,
}

/// One subscription of an [`EntityEventsSource`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntitySubscription {
    /// The subscription document.
    pub document: String,
    /// Its root field, which holds the entity, e.g. `onUpdateTodo`.
    pub field: String,
    /// What an event means.
    pub action: EntityAction,
    /// Its variables: AppSync filter arguments, `filter` for enhanced filters, `owner`…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Value>,
}

/// What an entity event means for its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EntityAction {
    /// The entity is the row's new state (onCreate, onUpdate); a soft-deleted one removes it.
    Upsert,
    /// The entity's row is gone (onDelete).
    Remove,
}

/// A paged list query.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// The query document.
    pub document: String,
    /// Its root field, e.g. `listTodos`.
    pub field: String,
    /// More variables (`filter`, `owner`…), besides `limit`, `nextToken` (and `lastSync`) which the store sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Value>,
}

/// A live query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveQuerySource {
    /// The subscription document.
    pub subscription: String,
    /// Its root field, holding the list of rows (or an object whose `items` is that list).
    pub field: String,
    /// Its variables.
    pub variables: Option<Value>,
}

/// What a collection's source promises (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Guarantee {
    /// Every change applies once, in order, none skipped (subsignal's source over graphql-transport-ws).
    Gapless,
    /// The rows equal the server's after every reconnect and result; intermediate versions may be skipped.
    Converges,
}

pub(crate) fn default_version_fields() -> Vec<String> {
    ["version", "_version", "_lastChangedAt", "updatedAt"].map(str::to_owned).to_vec()
}

impl CollectionConfig {
    /// A collection on the subsignal source with `id`/`version` fields and no documents yet: set them with
    /// [`CollectionConfig::subscription`] and [`CollectionConfig::snapshot`].
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_source(name, Source::Subsignal(SubsignalSource::default()))
    }

    /// A collection on any source.
    pub fn with_source(name: impl Into<String>, source: Source) -> Self {
        Self {
            name: name.into(),
            source,
            page_size: None,
            key_field: "id".to_owned(),
            version_fields: default_version_fields(),
            deleted_field: "_deleted".to_owned(),
            descending: false,
            history: None,
            persist: false,
        }
    }

    /// A collection fed by entity events: add subscriptions with [`CollectionConfig::on_upsert`] and
    /// [`CollectionConfig::on_remove`], and the list with [`CollectionConfig::list`].
    pub fn entity_events(name: impl Into<String>) -> Self {
        Self::with_source(name, Source::EntityEvents(EntityEventsSource::default()))
    }

    /// A collection fed by a live query whose root field `field` holds the rows.
    pub fn live_query(name: impl Into<String>, subscription: impl Into<String>, field: impl Into<String>) -> Self {
        let source = LiveQuerySource { subscription: subscription.into(), field: field.into(), variables: None };
        Self::with_source(name, Source::LiveQuery(source))
    }

    fn subsignal_mut(&mut self) -> &mut SubsignalSource {
        if !matches!(self.source, Source::Subsignal(_)) {
            self.source = Source::Subsignal(SubsignalSource::default());
        }
        match &mut self.source {
            Source::Subsignal(source) => source,
            _ => unreachable!("just set"),
        }
    }

    fn entity_mut(&mut self) -> &mut EntityEventsSource {
        if !matches!(self.source, Source::EntityEvents(_)) {
            self.source = Source::EntityEvents(EntityEventsSource::default());
        }
        match &mut self.source {
            Source::EntityEvents(source) => source,
            _ => unreachable!("just set"),
        }
    }

    /// subsignal source: sets the subscription document, its root field and the change's entity field.
    pub fn subscription(
        mut self,
        document: impl Into<String>,
        field: impl Into<String>,
        entity_field: impl Into<String>,
    ) -> Self {
        let source = self.subsignal_mut();
        source.subscription = document.into();
        source.subscription_field = field.into();
        source.entity_field = entity_field.into();
        self
    }

    /// subsignal source: sets the snapshot query document and its root field.
    pub fn snapshot(mut self, query: impl Into<String>, field: impl Into<String>) -> Self {
        let source = self.subsignal_mut();
        source.snapshot_query = query.into();
        source.snapshot_field = field.into();
        self
    }

    /// Entity events: adds a subscription whose events are upserts (onCreate, onUpdate).
    pub fn on_upsert(self, document: impl Into<String>, field: impl Into<String>) -> Self {
        self.on_event(document, field, EntityAction::Upsert, None)
    }

    /// Entity events: adds a subscription whose events are removals (onDelete).
    pub fn on_remove(self, document: impl Into<String>, field: impl Into<String>) -> Self {
        self.on_event(document, field, EntityAction::Remove, None)
    }

    /// Entity events: adds a subscription with variables (filter arguments, `owner`…).
    pub fn on_event(
        mut self,
        document: impl Into<String>,
        field: impl Into<String>,
        action: EntityAction,
        variables: Option<Value>,
    ) -> Self {
        let subscription = EntitySubscription { document: document.into(), field: field.into(), action, variables };
        self.entity_mut().subscriptions.push(subscription);
        self
    }

    /// Entity events: sets the list query and its root field.
    pub fn list(mut self, document: impl Into<String>, field: impl Into<String>) -> Self {
        self.entity_mut().list = ListQuery { document: document.into(), field: field.into(), variables: None };
        self
    }

    /// Entity events: catches up through Amplify's delta query (see [`EntityEventsSource::delta`]).
    pub fn delta_sync(mut self, document: impl Into<String>, field: impl Into<String>) -> Self {
        self.entity_mut().delta = Some(ListQuery { document: document.into(), field: field.into(), variables: None });
        self
    }

    /// Sets the page size of snapshots and lists.
    pub fn page_size(mut self, limit: u32) -> Self {
        self.page_size = Some(limit);
        self
    }

    /// Sets the key field and the one field that orders versions.
    pub fn fields(mut self, key_field: impl Into<String>, version_field: impl Into<String>) -> Self {
        self.key_field = key_field.into();
        self.version_fields = vec![version_field.into()];
        self
    }

    /// Sets the fields that order versions, the first present in a row counting.
    pub fn version_fields<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.version_fields = fields.into_iter().map(Into::into).collect();
        self
    }

    /// Lists rows in descending key order.
    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }

    /// Keeps a bounded history of the confirmed rows for time travel ([`crate::CollectionView::at`]).
    pub fn history(mut self, history: HistoryConfig) -> Self {
        self.history = Some(history);
        self
    }

    /// Keeps a copy of this collection across reloads (see the `persist` field).
    pub fn persist(mut self) -> Self {
        self.persist = true;
        self
    }

    /// What this collection's source promises over the given protocol.
    pub fn guarantee(&self, protocol: crate::Protocol) -> Guarantee {
        match (&self.source, protocol) {
            (Source::Subsignal(_), crate::Protocol::TransportWs) => Guarantee::Gapless,
            _ => Guarantee::Converges,
        }
    }
}

/// A collection as JSON has it: flat, every source's fields optional, checked when converted.
///
/// `source: "subsignal"` (the default) reads `subscription`, `subscriptionField`, `entityField`, `snapshotQuery` and
/// `snapshotField`; `"entityEvents"` reads `subscriptions` (`[{document, field, action: "upsert"|"remove",
/// variables?}]`), `list` (`{document, field, variables?}`) and `delta` (the same, optional); `"liveQuery"` reads
/// `subscription`, `subscriptionField` and `variables`. `versionField` (one) is accepted for `versionFields`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireCollection {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subscription: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subscription_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entity_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    snapshot_query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    snapshot_field: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    subscriptions: Vec<EntitySubscription>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    list: Option<ListQuery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delta: Option<ListQuery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    variables: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version_fields: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deleted_field: Option<String>,
    #[serde(default)]
    descending: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    history: Option<HistoryConfig>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    persist: bool,
}

impl TryFrom<WireCollection> for CollectionConfig {
    type Error = String;

    fn try_from(wire: WireCollection) -> Result<Self, String> {
        let name = wire.name;
        let need = |value: Option<String>, field: &str, source: &str| {
            value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("collection `{name}`: the {source} source needs `{field}`"))
        };
        let source = match wire.source.as_deref().unwrap_or("subsignal") {
            "subsignal" => Source::Subsignal(SubsignalSource {
                subscription: need(wire.subscription, "subscription", "subsignal")?,
                subscription_field: need(wire.subscription_field, "subscriptionField", "subsignal")?,
                entity_field: need(wire.entity_field, "entityField", "subsignal")?,
                snapshot_query: need(wire.snapshot_query, "snapshotQuery", "subsignal")?,
                snapshot_field: need(wire.snapshot_field, "snapshotField", "subsignal")?,
            }),
            "entityEvents" => {
                if wire.subscriptions.is_empty() {
                    return Err(format!("collection `{name}`: the entityEvents source needs `subscriptions`"));
                }
                let list =
                    wire.list.ok_or_else(|| format!("collection `{name}`: the entityEvents source needs `list`"))?;
                Source::EntityEvents(EntityEventsSource { subscriptions: wire.subscriptions, list, delta: wire.delta })
            }
            "liveQuery" => Source::LiveQuery(LiveQuerySource {
                subscription: need(wire.subscription, "subscription", "liveQuery")?,
                field: need(wire.subscription_field, "subscriptionField", "liveQuery")?,
                variables: wire.variables,
            }),
            other => {
                return Err(format!(
                    "collection `{name}`: unknown source `{other}` (expected subsignal, entityEvents or liveQuery)"
                ))
            }
        };
        let version_fields = match (wire.version_fields, wire.version_field) {
            (Some(fields), _) => fields,
            (None, Some(field)) => vec![field],
            (None, None) => default_version_fields(),
        };
        if let Some(history) = &wire.history {
            history.check(&name)?;
        }
        Ok(CollectionConfig {
            name,
            source,
            page_size: wire.page_size,
            key_field: wire.key_field.unwrap_or_else(|| "id".to_owned()),
            version_fields,
            deleted_field: wire.deleted_field.unwrap_or_else(|| "_deleted".to_owned()),
            descending: wire.descending,
            history: wire.history,
            persist: wire.persist,
        })
    }
}

impl From<CollectionConfig> for WireCollection {
    fn from(config: CollectionConfig) -> Self {
        let mut wire = WireCollection {
            name: config.name,
            page_size: config.page_size,
            key_field: Some(config.key_field),
            version_fields: Some(config.version_fields),
            deleted_field: Some(config.deleted_field),
            descending: config.descending,
            history: config.history,
            persist: config.persist,
            ..WireCollection::default()
        };
        match config.source {
            Source::Subsignal(s) => {
                wire.source = Some("subsignal".to_owned());
                wire.subscription = Some(s.subscription);
                wire.subscription_field = Some(s.subscription_field);
                wire.entity_field = Some(s.entity_field);
                wire.snapshot_query = Some(s.snapshot_query);
                wire.snapshot_field = Some(s.snapshot_field);
            }
            Source::EntityEvents(s) => {
                wire.source = Some("entityEvents".to_owned());
                wire.subscriptions = s.subscriptions;
                wire.list = Some(s.list);
                wire.delta = s.delta;
            }
            Source::LiveQuery(s) => {
                wire.source = Some("liveQuery".to_owned());
                wire.subscription = Some(s.subscription);
                wire.subscription_field = Some(s.field);
                wire.variables = s.variables;
            }
        }
        wire
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_collections_read_each_source_and_name_what_is_missing() {
        let orders: CollectionConfig = serde_json::from_value(json!({
            "name": "orders", "subscription": "s", "subscriptionField": "onOrderChanged", "entityField": "order",
            "snapshotQuery": "q", "snapshotField": "listOrders", "versionField": "version"
        }))
        .unwrap();
        assert_eq!(
            orders,
            CollectionConfig::new("orders")
                .subscription("s", "onOrderChanged", "order")
                .snapshot("q", "listOrders")
                .fields("id", "version")
        );
        let todos: CollectionConfig = serde_json::from_value(json!({
            "name": "todos", "source": "entityEvents",
            "subscriptions": [
                {"document": "c", "field": "onCreateTodo", "action": "upsert"},
                {"document": "d", "field": "onDeleteTodo", "action": "remove", "variables": {"owner": "alice"}}
            ],
            "list": {"document": "l", "field": "listTodos"}, "delta": {"document": "y", "field": "syncTodos"}
        }))
        .unwrap();
        let expected = CollectionConfig::entity_events("todos")
            .on_upsert("c", "onCreateTodo")
            .on_event("d", "onDeleteTodo", EntityAction::Remove, Some(json!({"owner": "alice"})))
            .list("l", "listTodos")
            .delta_sync("y", "syncTodos");
        assert_eq!(todos, expected);
        let back: CollectionConfig = serde_json::from_value(serde_json::to_value(&todos).unwrap()).unwrap();
        assert_eq!(back, todos);
        let live: CollectionConfig = serde_json::from_value(
            json!({"name": "top", "source": "liveQuery", "subscription": "s", "subscriptionField": "todos"}),
        )
        .unwrap();
        assert_eq!(live, CollectionConfig::live_query("top", "s", "todos"));

        let err = |v| serde_json::from_value::<CollectionConfig>(v).unwrap_err().to_string();
        assert!(err(json!({"name": "x", "subscription": "s"}))
            .contains("collection `x`: the subsignal source needs `subscriptionField`"));
        assert!(err(json!({"name": "x", "source": "entityEvents", "list": {"document": "l", "field": "f"}}))
            .contains("needs `subscriptions`"));
        assert!(err(json!({"name": "x", "source": "polling"})).contains("unknown source `polling`"));
    }
}
