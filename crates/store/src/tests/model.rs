//! A proptest state machine: a model server holds the truth and talks to the store through an adversarial channel.
//!
//! The model keeps a global change log for three owners (the store subscribes as owner 0, so it sees non-contiguous
//! seqs chained by `prevSeq`, plus optional watermarks), answers snapshot pages against its current state (so writes
//! land between pages), prunes retention on demand (forcing `CURSOR_EXPIRED` and a new snapshot), and queues its
//! frames to the store. Random operations write, deliver, duplicate, reorder and drop `next` frames, disconnect,
//! let time pass, answer or fail HTTP requests (or lose a response after the server acted on it), and submit
//! optimistic mutations, which the server deduplicates by `clientMutationId`. Afterwards the channel heals and
//! settles; the store must then show exactly the truth for owner 0 with every overlay gone and the queue empty, and no
//! seq may ever have been applied twice.

use std::collections::{BTreeMap, VecDeque};

use proptest::prelude::*;
use serde_json::{json, Value};
use subsignal_protocol::transport_ws::{ClientMessage, ServerMessage};

use super::*;
use crate::{HttpRequest, HttpResponse, Input, Mutation, Optimistic, Store};

pub(super) const OWNER: u8 = 0;
const PAGE: usize = 2;

#[derive(Debug, Clone)]
pub(super) enum Action {
    Insert,
    Modify(u8),
    Remove(u8),
    Expire(u8),
}

#[derive(Debug, Clone)]
pub(super) enum Op {
    /// A write by `owner`; `watermark` makes the server tell other owners' subscriptions about it.
    Write { owner: u8, action: Action, watermark: bool },
    /// What the network and the clock do.
    Net(Net),
    /// Prune the change log, keeping only the last n records.
    Prune(u8),
    /// The user submits a mutation through the store (with an optimistic overlay).
    Mutate(MutKind, u8),
    /// The shell writes the store's image (rows, `lastSeq`, queue) to its persistent storage.
    Flush,
    /// The page reloads: a new store restores the last image written and connects; with `true` its queue is the
    /// current one (the browser shell's synchronous `localStorage` copy), else the one written with the rows.
    Reload(bool),
}

#[derive(Debug, Clone, Copy)]
pub(super) enum MutKind {
    Create,
    Update,
    Delete,
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    let action = prop_oneof![
        3 => Just(Action::Insert),
        3 => any::<u8>().prop_map(Action::Modify),
        1 => any::<u8>().prop_map(Action::Remove),
        1 => any::<u8>().prop_map(Action::Expire),
    ];
    prop_oneof![
        14 => (prop::sample::select(vec![0u8, 0, 1, 2]), action, any::<bool>()).prop_map(|(owner, action, watermark)| Op::Write { owner, action, watermark }),
        24 => net(vec![1001u16, 1006, 4499, 4408]).prop_map(Op::Net),
        1 => (0u8..3).prop_map(Op::Prune),
        4 => (prop::sample::select(vec![MutKind::Create, MutKind::Update, MutKind::Update, MutKind::Delete]), any::<u8>())
            .prop_map(|(kind, i)| Op::Mutate(kind, i)),
        2 => Just(Op::Flush),
        1 => any::<bool>().prop_map(Op::Reload),
    ]
}

/// A resolved write.
#[derive(Debug, Clone)]
enum Change {
    Insert { owner: u8, value: i64 },
    Modify { key: String, value: i64 },
    Remove { key: String, expired: bool },
}

#[derive(Debug, Clone)]
struct Item {
    owner: u8,
    version: i64,
    value: i64,
}

#[derive(Debug, Clone)]
struct Record {
    seq: i64,
    owner: u8,
    op: &'static str,
    key: String,
    version: i64,
    expired: bool,
    entity: Value,
}

#[derive(Debug)]
struct ServerSub {
    id: String,
    /// The seq of the last event sent on this subscription (its `prevSeq` chain).
    last: i64,
}

/// The model server and the channel to the store.
#[derive(Debug, Default)]
pub(super) struct Model {
    items: BTreeMap<String, Item>,
    /// Retained records, oldest first.
    log: VecDeque<Record>,
    /// Records with seq ≤ floor are pruned: `afterSeq < floor` is expired.
    floor: i64,
    next_key: u32,
    channel: Channel,
    subs: Vec<ServerSub>,
    /// Whether a replay ends with a watermark at the head.
    replay_watermark: bool,
    /// Answers by `clientMutationId`, so a replay writes nothing and returns the first answer.
    done: std::collections::HashMap<String, HttpResponse>,
    /// Every change to owner 0's rows: its seq, key and image after (`None`: removed), oldest first.
    pub(super) owner_log: Vec<(i64, String, Option<Value>)>,
    pub(super) head: i64,
}

fn entity(key: &str, item: &Item) -> Value {
    let owner = ["A", "B", "C"][item.owner as usize];
    json!({"id": key, "owner": owner, "version": item.version, "value": item.value})
}

fn event(
    seq: i64,
    prev: i64,
    op: &str,
    key: Option<&str>,
    version: Option<i64>,
    expired: bool,
    entity: Option<&Value>,
) -> Value {
    json!({"data": {"onOrderChanged": {
        "seq": seq, "prevSeq": prev, "op": op, "key": key, "version": version, "expired": expired, "order": entity
    }}})
}

impl Model {
    fn push_record(&mut self, sub: &mut ServerSub, rec: &Record) {
        let payload =
            event(rec.seq, sub.last, rec.op, Some(&rec.key), Some(rec.version), rec.expired, Some(&rec.entity));
        self.channel.frames.push_back(ServerMessage::Next { id: sub.id.clone(), payload });
        sub.last = rec.seq;
    }

    fn push_watermark(&mut self, sub: &mut ServerSub, seq: i64) {
        let payload = event(seq, sub.last, "WATERMARK", None, None, false, None);
        self.channel.frames.push_back(ServerMessage::Next { id: sub.id.clone(), payload });
        sub.last = seq;
    }

    fn write(&mut self, owner: u8, action: &Action, watermark: bool) {
        let keys: Vec<String> = self.items.keys().cloned().collect();
        let pick = |i: u8| (!keys.is_empty()).then(|| keys[i as usize % keys.len()].clone());
        let value = self.head + 1;
        let change = match action {
            Action::Insert => Change::Insert { owner, value },
            Action::Modify(i) => match pick(*i) {
                Some(key) => Change::Modify { key, value },
                None => return,
            },
            Action::Remove(i) | Action::Expire(i) => match pick(*i) {
                Some(key) => Change::Remove { key, expired: matches!(action, Action::Expire(_)) },
                None => return,
            },
        };
        self.commit(change, watermark);
    }

    /// The one write path: changes the item, appends the log record and fans it out. Returns the new (or last) image.
    fn commit(&mut self, change: Change, watermark: bool) -> Value {
        let seq = self.head + 1;
        let (key, item, op, expired) = match change {
            Change::Insert { owner, value } => {
                self.next_key += 1;
                let key = format!("k{:03}", self.next_key);
                let item = Item { owner, version: 1, value };
                self.items.insert(key.clone(), item.clone());
                (key, item, "INSERT", false)
            }
            Change::Modify { key, value } => {
                let item = self.items.get_mut(&key).expect("an existing key");
                item.version += 1;
                item.value = value;
                let item = item.clone();
                (key, item, "MODIFY", false)
            }
            Change::Remove { key, expired } => {
                let item = self.items.remove(&key).expect("an existing key");
                (key, item, "REMOVE", expired)
            }
        };
        self.head = seq;
        let image = entity(&key, &item);
        let rec = Record { seq, owner: item.owner, op, key, version: item.version, expired, entity: image.clone() };
        self.log.push_back(rec.clone());
        if rec.owner == OWNER {
            self.owner_log.push((seq, rec.key.clone(), (op != "REMOVE").then(|| image.clone())));
        }
        let mut subs = std::mem::take(&mut self.subs);
        for sub in &mut subs {
            if rec.owner == OWNER {
                self.push_record(sub, &rec);
            } else if watermark {
                self.push_watermark(sub, seq);
            }
        }
        self.subs = subs;
        image
    }

    fn prune(&mut self, keep: u8) {
        self.floor = self.floor.max(self.head - i64::from(keep));
        while self.log.front().is_some_and(|r| r.seq <= self.floor) {
            self.log.pop_front();
        }
    }

    /// A snapshot page, consistent with the current head.
    fn page(&self, request: &HttpRequest) -> HttpResponse {
        let vars = &request.body["variables"];
        let after = vars["nextToken"].as_str().unwrap_or("");
        let limit = vars["limit"].as_u64().map_or(PAGE, |l| l as usize);
        let mine: Vec<(&String, &Item)> =
            self.items.iter().filter(|(k, i)| i.owner == OWNER && k.as_str() > after).collect();
        let items: Vec<Value> = mine.iter().take(limit).map(|(k, i)| entity(k, i)).collect();
        let next_token = (mine.len() > limit).then(|| mine[limit - 1].0.clone());
        page(items, next_token.as_deref(), self.head)
    }

    fn truth(&self) -> Vec<Value> {
        self.items.iter().filter(|(_, i)| i.owner == OWNER).map(|(k, i)| entity(k, i)).collect()
    }
}

/// The model harness, and what its shell has written to persistent storage (as IndexedDB would hold it: one record
/// per collection, and the queue).
struct Harness {
    driver: Driver<Model>,
    seed: u64,
    saved: crate::StoreImage,
    /// Reloads that found a saved collection to restore.
    reloads_restored: u32,
}

impl std::ops::Deref for Harness {
    type Target = Driver<Model>;
    fn deref(&self) -> &Driver<Model> {
        &self.driver
    }
}

impl std::ops::DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut Driver<Model> {
        &mut self.driver
    }
}

impl Harness {
    fn new(seed: u64, replay_watermark: bool) -> Self {
        Self {
            driver: Driver::new(seed, replay_watermark),
            seed,
            saved: crate::StoreImage::default(),
            reloads_restored: 0,
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Flush => self.flush(),
            Op::Reload(current_queue) => self.reload(*current_queue),
            op => self.driver.apply(op),
        }
    }

    /// Writes what the store says changed, and checks that the record then equals the store's confirmed state: a
    /// change the store failed to mark would leave the record behind.
    fn flush(&mut self) {
        let image = self.driver.store.take_image();
        for c in image.collections {
            self.saved.collections.retain(|s| s.name != c.name);
            self.saved.collections.push(c);
        }
        self.saved.queue = image.queue;
        let store = &self.driver.store;
        let view = store.collection("orders").expect("watched");
        if let Some(record) = self.saved.collections.iter().find(|c| c.name == "orders") {
            assert_eq!(record.rows, store.inner("orders").confirmed_rows(), "the record lags the rows");
            assert_eq!(record.last_seq, view.last_seq(), "the record lags lastSeq");
        } else {
            assert!(!view.state().loaded, "a loaded collection was never announced for persisting");
        }
    }

    /// A reload: the old store is gone (its socket with it); a new one shows the saved rows at once, marked stale
    /// and restored, and connects.
    fn reload(&mut self, current_queue: bool) {
        if current_queue {
            self.saved.queue = self.driver.store.pending_mutations();
        }
        self.driver.model.reset_socket(None);
        self.driver.model.channel.http.clear();
        self.seed = self.seed.wrapping_add(1);
        let mut store = Store::new(StoreConfig { seed: self.seed, ..config(vec![orders().persist()]) });
        store.handle(self.driver.now, Input::Restore(self.saved.clone()));
        let view = store.collection("orders").expect("watched");
        if let Some(record) = self.saved.collections.iter().find(|c| c.name == "orders") {
            assert_eq!(store.inner("orders").confirmed_rows(), record.rows, "the restored rows show at once");
            let state = view.state();
            assert!(state.loaded && state.stale && state.restored, "{state:?}");
            assert_eq!(view.last_seq(), record.last_seq);
            self.reloads_restored += 1;
        }
        assert_eq!(store.status().pending_mutations, self.saved.queue.len());
        let now = self.driver.now;
        let mutations = self.driver.mutations;
        let model = std::mem::take(&mut self.driver.model);
        self.driver = Driver::connected(store, model);
        self.driver.now = now;
        self.driver.mutations = mutations;
    }
}

impl ModelServer for Model {
    fn reset_socket(&mut self, socket: Option<u64>) {
        self.channel.reset(socket);
        self.subs.clear();
    }

    /// The server's side of a client message.
    fn on_client(&mut self, message: ClientMessage) {
        let Some(message) = self.channel.answer(message) else { return };
        match message {
            ClientMessage::Subscribe { id, payload } => {
                assert!(self.channel.ack_delivered, "subscribe before the ack");
                assert!(self.subs.iter().all(|s| s.id != id), "duplicate active id {id}");
                let after = payload.variables.as_ref().and_then(|v| v.get("afterSeq")).and_then(Value::as_i64);
                let after = after.expect("the store always subscribes with a cursor");
                if after < self.floor {
                    self.channel.frames.push_back(ServerMessage::Error {
                        id,
                        payload: vec![json!({"message": "cursor expired", "extensions": {"code": "CURSOR_EXPIRED"}})],
                    });
                    return;
                }
                let mut sub = ServerSub { id, last: after };
                let replay: Vec<Record> =
                    self.log.iter().filter(|r| r.seq > after && r.owner == OWNER).cloned().collect();
                for rec in &replay {
                    self.push_record(&mut sub, rec);
                }
                if self.replay_watermark && self.head > sub.last {
                    self.push_watermark(&mut sub, self.head);
                }
                self.subs.push(sub);
            }
            ClientMessage::Complete { id } => self.subs.retain(|s| s.id != id),
            // Answered by the channel.
            ClientMessage::ConnectionInit { .. } | ClientMessage::Ping { .. } | ClientMessage::Pong { .. } => {}
        }
    }

    fn channel(&mut self) -> &mut Channel {
        &mut self.channel
    }

    /// Answers an HTTP request: a mutation (deduplicated by `clientMutationId`) or a snapshot page.
    fn respond(&mut self, request: &HttpRequest) -> HttpResponse {
        if !request.body["query"].as_str().is_some_and(|q| q.starts_with("mutation")) {
            return self.page(request);
        }
        let vars = &request.body["variables"];
        let id = vars["clientMutationId"].as_str().expect("every mutation carries an id").to_owned();
        if let Some(done) = self.done.get(&id) {
            return done.clone();
        }
        let value = vars["value"].as_i64().unwrap_or(0);
        let error = |code: &str, ext: Value| {
            let mut ext = ext;
            ext["code"] = json!(code);
            HttpResponse::Ok { body: json!({"data": null, "errors": [{"message": code, "extensions": ext}]}) }
        };
        let response = match vars["op"].as_str() {
            Some("create") => {
                let image = self.commit(Change::Insert { owner: OWNER, value }, false);
                HttpResponse::Ok { body: json!({"data": {"m": image}}) }
            }
            Some(op) => {
                let key = vars["id"].as_str().unwrap_or_default().to_owned();
                match self.items.get(&key) {
                    Some(item) if item.owner != OWNER => error("NOT_FOUND", json!({})),
                    None => error("NOT_FOUND", json!({})),
                    Some(item) if Some(item.version) != vars["expectedVersion"].as_i64() => {
                        error("CONFLICT", json!({"current": entity(&key, item)}))
                    }
                    Some(_) => {
                        let change = if op == "delete" {
                            Change::Remove { key, expired: false }
                        } else {
                            Change::Modify { key, value }
                        };
                        HttpResponse::Ok { body: json!({"data": {"m": self.commit(change, false)}}) }
                    }
                }
            }
            None => panic!("unknown mutation {vars}"),
        };
        self.done.insert(id, response.clone());
        response
    }

    fn check(&mut self, store: &Store) {
        let log = &store.inner("orders").applied_log;
        assert!(log.windows(2).all(|w| w[0] < w[1]), "a seq was applied twice or out of order: {log:?}");
    }
}

impl Driver<Model> {
    fn new(seed: u64, replay_watermark: bool) -> Self {
        Self::with_orders(seed, replay_watermark, orders().persist())
    }

    /// A driver whose store watches this orders collection.
    pub(super) fn with_orders(seed: u64, replay_watermark: bool, orders: crate::CollectionConfig) -> Self {
        let store = Store::new(StoreConfig { seed, ..config(vec![orders]) });
        Driver::connected(store, Model { replay_watermark, ..Model::default() })
    }

    /// Submits a mutation the way a UI would: against the row it currently shows.
    fn mutate(&mut self, kind: MutKind, i: u8) {
        self.mutations += 1;
        let value = 1_000_000 + i64::from(self.mutations);
        let view = self.store.collection("orders").expect("watched");
        let keys: Vec<String> = view.keys().into_iter().filter(|k| !k.starts_with("tmp-")).collect();
        let target = (!keys.is_empty()).then(|| keys[i as usize % keys.len()].clone());
        let mutation = match (kind, target) {
            (MutKind::Create, _) | (_, None) => {
                let row = json!({"id": format!("tmp-{}", self.mutations), "owner": "A", "version": 0, "value": value});
                Mutation::new("mutation create", json!({"op": "create", "value": value}), "m")
                    .optimistic("orders", Optimistic::Upsert { row })
            }
            (kind, Some(key)) => {
                let version = view.row(&key).and_then(|r| r["version"].as_i64());
                let variables = json!({
                    "op": if matches!(kind, MutKind::Delete) { "delete" } else { "update" },
                    "id": key, "expectedVersion": version, "value": value
                });
                let optimistic = match kind {
                    MutKind::Delete => Optimistic::Remove { key },
                    _ => Optimistic::Patch { key, fields: json!({"value": value}) },
                };
                Mutation::new("mutation change", variables, "m").optimistic("orders", optimistic)
            }
        };
        self.run(Input::Mutate(mutation));
    }

    pub(super) fn apply(&mut self, op: &Op) {
        match op {
            Op::Write { owner, action, watermark } => self.model.write(*owner, action, *watermark),
            Op::Net(op) => self.net(op, true),
            Op::Mutate(kind, i) => self.mutate(*kind, *i),
            Op::Prune(keep) => self.model.prune(*keep),
            Op::Flush | Op::Reload(_) => unreachable!("the harness handles these"),
        }
    }

    /// Heals the channel and runs until nothing is left to do. While the store lags behind the head, the world moves
    /// on: another owner writes and the server sends watermarks, which expose a lost last event as a gap.
    pub(super) fn settle(&mut self) {
        for _ in 0..500 {
            while self.deliver_first() || self.answer_http(false, false) {}
            let synced = self.store.status().connection == crate::ConnectionStatus::Live
                && self.store.collection("orders").is_some_and(|c| c.is_live());
            if !synced {
                let before = self.now;
                self.advance();
                assert!(
                    self.now > before || !self.model.channel.frames.is_empty() || !self.model.channel.http.is_empty(),
                    "stuck"
                );
                continue;
            }
            let caught_up = self.store.collection("orders").and_then(|c| c.last_seq()) == Some(self.model.head);
            if caught_up && self.store.status().pending_mutations == 0 {
                return;
            }
            if !caught_up {
                self.model.write(OWNER + 1, &Action::Insert, true);
            } else {
                // Mutations wait for a retry timer.
                self.advance();
            }
            self.model.write(OWNER + 1, &Action::Insert, true);
        }
        panic!("the channel did not settle: {:?}", self.store);
    }
}

proptest! {
    // PROPTEST_CASES raises the case count for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400),
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_store_converges_on_the_truth_and_applies_nothing_twice(
        seed in any::<u64>(),
        replay_watermark in any::<bool>(),
        ops in prop::collection::vec(op(), 0..150),
    ) {
        let mut h = Harness::new(seed, replay_watermark);
        for op in &ops {
            h.apply(op);
        }
        h.settle();
        h.flush();
        let view = h.store.collection("orders").expect("watched");
        prop_assert_eq!(view.rows(), h.model.truth());
        prop_assert_eq!(view.last_seq(), Some(h.model.head));
        prop_assert_eq!(view.overlays(), 0);
        prop_assert_eq!(h.store.status().pending_mutations, 0);
    }
}

/// The generator must actually reach the interesting paths: gaps, duplicates, reconnects and re-snapshots.
#[test]
fn the_model_exercises_every_recovery_path() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = (any::<u64>(), any::<bool>(), prop::collection::vec(op(), 75..150));
    let mut total = crate::CollectionStats::default();
    let mut reconnects = 0;
    let (mut restores, mut resumed) = (0, 0);
    for _ in 0..200 {
        let (seed, replay_watermark, mut ops) = strategy.new_tree(&mut runner).expect("a case").current();
        // Reloads start over with fresh counters; they are counted on their own below.
        let reloading = ops.clone();
        ops.retain(|op| !matches!(op, Op::Reload(_)));
        let mut r = Harness::new(seed, replay_watermark);
        for op in &reloading {
            r.apply(op);
        }
        r.settle();
        restores += u64::from(r.reloads_restored);
        // Restored and caught up by replay alone, with no snapshot since the last reload.
        resumed +=
            u64::from(r.reloads_restored > 0 && r.store.collection("orders").is_some_and(|c| c.stats().snapshots == 0));
        let mut h = Harness::new(seed, replay_watermark);
        for op in &ops {
            h.apply(op);
        }
        h.settle();
        let stats = h.store.collection("orders").expect("watched").stats();
        total.applied += stats.applied;
        total.duplicates += stats.duplicates;
        total.gaps += stats.gaps;
        total.subscriptions += stats.subscriptions;
        total.snapshots += stats.snapshots.saturating_sub(1);
        reconnects += h.store.conn_socket_count();
    }
    eprintln!(
        "coverage over 200 runs: {total:?}, sockets opened: {reconnects}, reloads restoring rows: {restores}, \
         runs resumed by replay: {resumed}"
    );
    assert!(total.gaps > 50 && total.duplicates > 50 && total.snapshots > 20 && reconnects > 400, "{total:?}");
    assert!(restores > 50 && resumed > 10, "restores {restores}, resumed {resumed}");
}
