//! Proptest state machines for the entity-events and live-query sources: a model server holds the truth and talks
//! to the store through an adversarial channel, like `model.rs` does for the subsignal source.
//!
//! The entity-events server publishes Amplify's `onCreateTodo`/`onUpdateTodo`/`onDeleteTodo` (a delete carries the
//! bumped `_version` and `_deleted: true`), answers `listTodos` pages against its current state (so writes land
//! between pages) or, in the delta variant, `syncTodos(lastSync)` with the rows changed since then, soft-deleted ones
//! included (the base query, `lastSync: null`, returns the deleted rows' tombstones too, as Amplify's versioned tables
//! do). Its channel duplicates, reorders and loses events. The live-query server pushes the whole list after
//! every write; its channel keeps order (one TCP stream) but the socket may drop at any time. Both take optimistic
//! mutations, deduplicated by `clientMutationId`, and may fail or lose HTTP responses.
//!
//! What the store promises for these sources is convergence, not a gapless stream: at every step no row may go back
//! to an older version, and after the channel heals and one more reconnect the store must show exactly the truth,
//! with every overlay gone and the queue empty.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use serde_json::{json, Value};
use subsignal_protocol::transport_ws::{ClientMessage, ServerMessage};

use super::{config, net, Channel, Driver, ModelServer, Net};
use crate::{
    CollectionConfig, ConnectionStatus, HttpRequest, HttpResponse, Input, Mutation, Optimistic, Store, StoreConfig,
};

const PAGE: usize = 2;
const ON_CREATE: &str = "subscription onCreate";
const ON_UPDATE: &str = "subscription onUpdate";
const ON_DELETE: &str = "subscription onDelete";
const LIVE: &str = "subscription live";
const LIST: &str = "query list";
const SYNC: &str = "query sync";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Entity,
    EntityDelta,
    Live,
}

#[derive(Debug, Clone, Copy)]
enum MutKind {
    Create,
    Update,
    Delete,
}

#[derive(Debug, Clone)]
enum Op {
    Create,
    Update(u8),
    Delete(u8),
    Net(Net),
    Mutate(MutKind, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Create),
        4 => any::<u8>().prop_map(Op::Update),
        2 => any::<u8>().prop_map(Op::Delete),
        24 => net(vec![1001u16, 1006, 4499]).prop_map(Op::Net),
        3 => (prop::sample::select(vec![MutKind::Create, MutKind::Update, MutKind::Delete]), any::<u8>())
            .prop_map(|(kind, i)| Op::Mutate(kind, i)),
    ]
}

#[derive(Debug, Clone, Copy)]
struct Item {
    version: i64,
    value: i64,
}

fn entity(key: &str, item: &Item) -> Value {
    json!({"id": key, "_version": item.version, "value": item.value, "_deleted": false})
}

fn removed(key: &str, version: i64) -> Value {
    json!({"id": key, "_version": version, "_deleted": true})
}

/// What a subscription of the model server publishes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Feed {
    Created,
    Updated,
    Deleted,
    Live,
}

#[derive(Debug)]
struct Model {
    kind: Kind,
    items: BTreeMap<String, Item>,
    /// Every key's last change: the model clock, and the row (or its removal version).
    changes: BTreeMap<String, (i64, Result<Item, i64>)>,
    clock: i64,
    next_key: u32,
    channel: Channel,
    subs: Vec<(String, Feed)>,
    done: HashMap<String, HttpResponse>,
    /// The highest confirmed version each key has shown in the store: it must never go down.
    seen: HashMap<String, i64>,
}

impl Model {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            items: BTreeMap::new(),
            changes: BTreeMap::new(),
            clock: 0,
            next_key: 0,
            channel: Channel::default(),
            subs: Vec::new(),
            done: HashMap::new(),
            seen: HashMap::new(),
        }
    }

    fn publish(&mut self, feed: Feed, payload: &Value) {
        let field = match feed {
            Feed::Created => "onCreateTodo",
            Feed::Updated => "onUpdateTodo",
            Feed::Deleted => "onDeleteTodo",
            Feed::Live => "todos",
        };
        for (id, _) in self.subs.iter().filter(|(_, f)| *f == feed) {
            self.channel
                .frames
                .push_back(ServerMessage::Next { id: id.clone(), payload: json!({"data": {field: payload}}) });
        }
    }

    fn publish_live(&mut self) {
        let result = Value::Array(self.truth());
        self.publish(Feed::Live, &result);
    }

    fn pick(&self, i: u8) -> Option<String> {
        let keys: Vec<&String> = self.items.keys().collect();
        (!keys.is_empty()).then(|| keys[i as usize % keys.len()].clone())
    }

    /// Commits a write and publishes it; returns the entity written.
    fn write(&mut self, op: MutKind, key: Option<String>) -> Option<Value> {
        self.clock += 1;
        let value = self.clock;
        let (key, image, feed) = match (op, key) {
            (MutKind::Create, _) => {
                self.next_key += 1;
                let key = format!("k{:03}", self.next_key);
                let item = Item { version: 1, value };
                self.items.insert(key.clone(), item);
                self.changes.insert(key.clone(), (self.clock, Ok(item)));
                (key.clone(), entity(&key, &item), Feed::Created)
            }
            (MutKind::Update, Some(key)) => {
                let item = self.items.get_mut(&key)?;
                item.version += 1;
                item.value = value;
                let item = *item;
                self.changes.insert(key.clone(), (self.clock, Ok(item)));
                (key.clone(), entity(&key, &item), Feed::Updated)
            }
            (MutKind::Delete, Some(key)) => {
                let item = self.items.remove(&key)?;
                self.changes.insert(key.clone(), (self.clock, Err(item.version + 1)));
                (key.clone(), removed(&key, item.version + 1), Feed::Deleted)
            }
            (_, None) => return None,
        };
        let _ = key;
        if self.kind == Kind::Live {
            self.publish_live();
        } else {
            self.publish(feed, &image);
        }
        Some(image)
    }

    /// A page of `listTodos`, or of `syncTodos` (the rows changed since `lastSync`, removals included).
    fn page(&self, vars: &Value, sync: bool) -> HttpResponse {
        let after = vars["nextToken"].as_str().unwrap_or("");
        let rows: Vec<(&String, Value)> = if sync {
            // Amplify's sync query reads the versioned table, whose deleted rows stay as `_deleted` tombstones:
            // the base query (`lastSync: null`) returns them too.
            let since = vars["lastSync"].as_i64().unwrap_or(i64::MIN);
            self.changes
                .iter()
                .filter(|(k, (clock, _))| *clock > since && k.as_str() > after)
                .map(|(k, (_, row))| (k, row.map_or_else(|v| removed(k, v), |item| entity(k, &item))))
                .collect()
        } else {
            self.items.iter().filter(|(k, _)| k.as_str() > after).map(|(k, i)| (k, entity(k, i))).collect()
        };
        let items: Vec<Value> = rows.iter().take(PAGE).map(|(_, v)| v.clone()).collect();
        let next_token = (rows.len() > PAGE).then(|| rows[PAGE - 1].0.clone());
        let field = if sync { "syncTodos" } else { "listTodos" };
        let started_at = sync.then_some(self.clock);
        HttpResponse::Ok {
            body: json!({"data": {field: {"items": items, "nextToken": next_token, "startedAt": started_at}}}),
        }
    }

    fn truth(&self) -> Vec<Value> {
        self.items.iter().map(|(k, i)| entity(k, i)).collect()
    }
}

fn collection(kind: Kind) -> CollectionConfig {
    match kind {
        Kind::Live => CollectionConfig::live_query("todos", LIVE, "todos"),
        Kind::Entity | Kind::EntityDelta => {
            let config = CollectionConfig::entity_events("todos")
                .on_upsert(ON_CREATE, "onCreateTodo")
                .on_upsert(ON_UPDATE, "onUpdateTodo")
                .on_remove(ON_DELETE, "onDeleteTodo")
                .list(LIST, "listTodos")
                .page_size(PAGE as u32);
            if kind == Kind::EntityDelta {
                config.delta_sync(SYNC, "syncTodos")
            } else {
                config
            }
        }
    }
}

type Harness = Driver<Model>;

impl ModelServer for Model {
    fn reset_socket(&mut self, socket: Option<u64>) {
        self.channel.reset(socket);
        self.subs.clear();
    }

    fn on_client(&mut self, message: ClientMessage) {
        let Some(message) = self.channel.answer(message) else { return };
        match message {
            ClientMessage::Subscribe { id, payload } => {
                assert!(self.channel.ack_delivered, "subscribe before the ack");
                assert!(self.subs.iter().all(|(s, _)| *s != id), "duplicate active id {id}");
                let feed = match payload.query.as_str() {
                    ON_CREATE => Feed::Created,
                    ON_UPDATE => Feed::Updated,
                    ON_DELETE => Feed::Deleted,
                    LIVE => Feed::Live,
                    other => panic!("unknown subscription {other}"),
                };
                self.subs.push((id.clone(), feed));
                if feed == Feed::Live {
                    // Hasura answers a live query with its current result at once.
                    let result = Value::Array(self.truth());
                    self.channel
                        .frames
                        .push_back(ServerMessage::Next { id, payload: json!({"data": {"todos": result}}) });
                }
            }
            ClientMessage::Complete { id } => self.subs.retain(|(s, _)| *s != id),
            // Answered by the channel.
            ClientMessage::ConnectionInit { .. } | ClientMessage::Ping { .. } | ClientMessage::Pong { .. } => {}
        }
    }

    fn channel(&mut self) -> &mut Channel {
        &mut self.channel
    }

    fn respond(&mut self, request: &HttpRequest) -> HttpResponse {
        let query = request.body["query"].as_str().unwrap_or_default();
        let vars = &request.body["variables"];
        match query {
            LIST => self.page(vars, false),
            SYNC => self.page(vars, true),
            _ => {
                let id = vars["clientMutationId"].as_str().expect("every mutation carries an id").to_owned();
                if let Some(done) = self.done.get(&id) {
                    return done.clone();
                }
                let kind = match vars["op"].as_str() {
                    Some("create") => MutKind::Create,
                    Some("delete") => MutKind::Delete,
                    _ => MutKind::Update,
                };
                let key = vars["id"].as_str().map(str::to_owned);
                let response = match self.write(kind, key) {
                    Some(image) => HttpResponse::Ok { body: json!({"data": {"m": image}}) },
                    None => HttpResponse::Ok {
                        body: json!({"data": null, "errors": [{"message": "gone", "extensions": {"code": "NOT_FOUND"}}]}),
                    },
                };
                self.done.insert(id, response.clone());
                response
            }
        }
    }

    /// No row ever goes back a version.
    fn check(&mut self, store: &Store) {
        let view = store.collection("todos").expect("watched");
        for key in view.keys() {
            let Some(version) = view.confirmed(&key).and_then(|r| r["_version"].as_i64()) else { continue };
            let seen = self.seen.entry(key.clone()).or_insert(version);
            assert!(version >= *seen, "row {key} went back from version {seen} to {version}");
            *seen = version;
        }
    }
}

impl Driver<Model> {
    fn new(seed: u64, kind: Kind) -> Self {
        Driver::connected(Store::new(StoreConfig { seed, ..config(vec![collection(kind)]) }), Model::new(kind))
    }

    fn mutate(&mut self, kind: MutKind, i: u8) {
        self.mutations += 1;
        let value = 1_000_000 + i64::from(self.mutations);
        let view = self.store.collection("todos").expect("watched");
        let keys: Vec<String> = view.keys().into_iter().filter(|k| !k.starts_with("tmp-")).collect();
        let target = (!keys.is_empty()).then(|| keys[i as usize % keys.len()].clone());
        let mutation = match (kind, target) {
            (MutKind::Create, _) | (_, None) => {
                let row = json!({"id": format!("tmp-{}", self.mutations), "_version": 0, "value": value});
                Mutation::new("mutation create", json!({"op": "create"}), "m")
                    .optimistic("todos", Optimistic::Upsert { row })
            }
            (kind, Some(key)) => {
                let delete = matches!(kind, MutKind::Delete);
                let variables = json!({"op": if delete { "delete" } else { "update" }, "id": key});
                let optimistic = if delete {
                    Optimistic::Remove { key }
                } else {
                    Optimistic::Patch { key, fields: json!({"value": value}) }
                };
                Mutation::new("mutation change", variables, "m").optimistic("todos", optimistic)
            }
        };
        self.run(Input::Mutate(mutation));
    }

    fn apply(&mut self, op: &Op) {
        let ordered = self.model.kind == Kind::Live;
        match op {
            Op::Create => drop(self.model.write(MutKind::Create, None)),
            Op::Update(i) => drop(self.model.write(MutKind::Update, self.model.pick(*i))),
            Op::Delete(i) => drop(self.model.write(MutKind::Delete, self.model.pick(*i))),
            // A live query has no seq: frames it cannot tell were lost are not lost.
            Op::Net(op) => self.net(op, !ordered),
            Op::Mutate(kind, i) => self.mutate(*kind, *i),
        }
    }

    /// Delivers and answers everything, letting timers fire, until the store is live with nothing pending.
    fn quiesce(&mut self) {
        for _ in 0..500 {
            while self.deliver_first() || self.answer_http(false, false) {}
            let live = self.store.status().connection == ConnectionStatus::Live
                && self.store.collection("todos").is_some_and(|c| c.is_live());
            if live && self.store.status().pending_mutations == 0 {
                return;
            }
            let before = self.now;
            self.advance();
            assert!(
                self.now > before || !self.model.channel.frames.is_empty() || !self.model.channel.http.is_empty(),
                "stuck"
            );
        }
        panic!("the channel did not settle: {:?}", self.store);
    }

    /// Heals the channel; then one more reconnect, after which these sources promise to equal the server.
    fn settle(&mut self) {
        self.quiesce();
        self.disconnect(1001);
        self.quiesce();
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(vec![Kind::Entity, Kind::EntityDelta, Kind::Live])
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300),
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    })]

    #[test]
    fn entity_events_and_live_queries_converge_after_a_reconnect_and_never_go_back(
        seed in any::<u64>(),
        kind in kind(),
        ops in prop::collection::vec(op(), 0..150),
    ) {
        let mut h = Harness::new(seed, kind);
        for op in &ops {
            h.apply(op);
        }
        h.settle();
        let view = h.store.collection("todos").expect("watched");
        prop_assert_eq!(view.rows(), h.model.truth());
        prop_assert_eq!(view.overlays(), 0);
        prop_assert_eq!(h.store.status().pending_mutations, 0);
    }
}

/// The generator must reach the interesting paths of each source: buffered events, re-lists, delta syncs.
#[test]
fn the_source_models_exercise_relists_and_buffered_events() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = (any::<u64>(), prop::collection::vec(op(), 75..150));
    for kind in [Kind::Entity, Kind::EntityDelta, Kind::Live] {
        let mut total = crate::CollectionStats::default();
        for _ in 0..60 {
            let (seed, ops) = strategy.new_tree(&mut runner).expect("a case").current();
            let mut h = Harness::new(seed, kind);
            for op in &ops {
                h.apply(op);
            }
            h.settle();
            let stats = h.store.collection("todos").expect("watched").stats();
            total.events += stats.events;
            total.applied += stats.applied;
            total.resyncs += stats.resyncs;
            total.snapshots += stats.snapshots;
        }
        eprintln!("{kind:?}: coverage over 60 runs: {total:?}");
        assert!(total.events > 500 && total.resyncs > 60 && total.snapshots > 120, "{kind:?}: {total:?}");
    }
}
