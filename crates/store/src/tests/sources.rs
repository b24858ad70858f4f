//! The entity-events and live-query sources, scripted: what the store subscribes to, lists and applies, over
//! graphql-transport-ws and AppSync alike.

use serde_json::{json, Value};
use subsignal_protocol::appsync::{self, AckPayload};
use subsignal_protocol::transport_ws::ServerMessage;

use super::{config, go_live, https, next, row_changes, subscribed};
use crate::{
    CollectionConfig, EntityAction, Guarantee, HttpResponse, Input, Mutation, Optimistic, Output, Protocol, RowChange,
    Store,
};

const ON_CREATE: &str = "subscription { onCreateTodo { id title _version _deleted } }";
const ON_UPDATE: &str = "subscription { onUpdateTodo { id title _version _deleted } }";
const ON_DELETE: &str = "subscription { onDeleteTodo { id title _version _deleted } }";
const LIST: &str = "query($limit: Int, $nextToken: String) { listTodos(limit: $limit, nextToken: $nextToken) { items \
                    { id title _version _deleted } nextToken } }";
const SYNC: &str = "query($lastSync: AWSTimestamp, $limit: Int, $nextToken: String) { syncTodos(lastSync: $lastSync, \
                    limit: $limit, nextToken: $nextToken) { items { id title _version _deleted } nextToken startedAt } }";

/// Amplify's three model subscriptions and `listTodos`, two rows a page.
fn todos() -> CollectionConfig {
    CollectionConfig::entity_events("todos")
        .on_upsert(ON_CREATE, "onCreateTodo")
        .on_upsert(ON_UPDATE, "onUpdateTodo")
        .on_remove(ON_DELETE, "onDeleteTodo")
        .list(LIST, "listTodos")
        .page_size(2)
}

fn todo(id: &str, title: &str, version: i64) -> Value {
    json!({"id": id, "title": title, "_version": version, "_deleted": null})
}

fn event(field: &str, entity: Value) -> Value {
    json!({"data": {field: entity}})
}

fn list_page(field: &str, items: Vec<Value>, next_token: Option<&str>, started_at: Option<i64>) -> HttpResponse {
    HttpResponse::Ok {
        body: json!({"data": {field: {"items": items, "nextToken": next_token, "startedAt": started_at}}}),
    }
}

fn titles(store: &Store, name: &str) -> Vec<(String, String)> {
    let view = store.collection(name).expect("watched");
    view.rows()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r["title"].as_str().unwrap().to_owned()))
        .collect()
}

fn pairs(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter().map(|(k, t)| ((*k).to_owned(), (*t).to_owned())).collect()
}

/// A live store whose todos collection listed `items` in one page: returns the store, socket and subscription ids
/// (create, update, delete).
fn live_todos(items: Vec<Value>) -> (Store, u64, Vec<String>) {
    let mut store = Store::new(config(vec![todos().page_size(100)]));
    let (socket, out) = go_live(&mut store, 0);
    let subs = subscribed(&out);
    assert_eq!(subs.iter().map(|(_, q)| q.as_str()).collect::<Vec<_>>(), [ON_CREATE, ON_UPDATE, ON_DELETE]);
    let list = https(&out).pop().expect("a list request once subscribed");
    store.handle(0, Input::Http { request_id: list.request_id, response: list_page("listTodos", items, None, None) });
    assert!(store.collection("todos").unwrap().is_live());
    (store, socket, subs.into_iter().map(|(id, _)| id).collect())
}

#[test]
fn entity_events_subscribe_then_list_page_by_page_applying_events_that_arrive_meanwhile() {
    let mut store = Store::new(config(vec![todos()]));
    let (socket, out) = go_live(&mut store, 0);
    let subs: Vec<String> = subscribed(&out).into_iter().map(|(id, _)| id).collect();
    assert_eq!(subs.len(), 3);
    let list = https(&out).pop().expect("a list request");
    assert_eq!(list.body["query"], LIST);
    assert_eq!(list.body["variables"], json!({"limit": 2, "nextToken": null}));
    assert!(!list.prefetchable, "a list without a seq must postdate its subscriptions");
    // During the list: an update newer than what the list will say, a create, and a delete of a listed row.
    store.handle(0, next(socket, &subs[1], event("onUpdateTodo", todo("a", "a2", 2))));
    store.handle(0, next(socket, &subs[0], event("onCreateTodo", todo("d", "d1", 1))));
    store.handle(0, next(socket, &subs[2], event("onDeleteTodo", json!({"id": "c", "_version": 2, "_deleted": true}))));
    assert!(!store.collection("todos").unwrap().is_live());
    let page1 = list_page("listTodos", vec![todo("a", "a1", 1), todo("b", "b1", 1)], Some("t1"), None);
    let out = store.handle(0, Input::Http { request_id: list.request_id, response: page1 });
    let second = https(&out).pop().expect("the second page");
    assert_eq!(second.body["variables"], json!({"limit": 2, "nextToken": "t1"}));
    let out = store.handle(
        0,
        Input::Http {
            request_id: second.request_id,
            response: list_page("listTodos", vec![todo("c", "c1", 1)], None, None),
        },
    );
    assert_eq!(titles(&store, "todos"), pairs(&[("a", "a2"), ("b", "b1"), ("d", "d1")]));
    let inserted: Vec<String> = row_changes(&out)
        .iter()
        .filter(|c| matches!(c, RowChange::Inserted { .. }))
        .map(|c| c.key().to_owned())
        .collect();
    assert_eq!(inserted, ["a", "b", "d"]);
    let view = store.collection("todos").unwrap();
    assert!(view.is_live());
    assert_eq!(view.guarantee(), Guarantee::Converges);
    assert_eq!(view.last_seq(), None);
    assert_eq!((view.stats().events, view.stats().snapshots), (3, 1));
}

#[test]
fn entity_events_apply_by_version_and_soft_deletes_remove() {
    let (mut store, socket, subs) = live_todos(vec![todo("a", "a1", 1), todo("b", "b1", 1)]);
    let out = store.handle(0, next(socket, &subs[1], event("onUpdateTodo", todo("a", "a3", 3))));
    assert_eq!(row_changes(&out), [RowChange::Updated { key: "a".into() }]);
    // A late, older image changes nothing.
    let out = store.handle(0, next(socket, &subs[1], event("onUpdateTodo", todo("a", "a2", 2))));
    assert!(row_changes(&out).is_empty(), "{out:?}");
    // Amplify's conflict detection soft-deletes: an update with `_deleted: true` is a removal.
    let deleted = json!({"id": "b", "title": "b1", "_version": 2, "_deleted": true});
    let out = store.handle(0, next(socket, &subs[1], event("onUpdateTodo", deleted)));
    assert_eq!(row_changes(&out), [RowChange::Removed { key: "b".into(), expired: false }]);
    // An update that was overtaken by the delete does not bring the row back.
    store.handle(0, next(socket, &subs[1], event("onUpdateTodo", todo("b", "b-late", 1))));
    let out = store.handle(0, next(socket, &subs[2], event("onDeleteTodo", todo("a", "a3", 4))));
    assert_eq!(row_changes(&out), [RowChange::Removed { key: "a".into(), expired: false }]);
    assert!(titles(&store, "todos").is_empty());
    // An event without its field, or without a key, is a warning, not a crash.
    let out = store.handle(0, next(socket, &subs[0], json!({"data": {"other": {}}})));
    assert!(out.iter().any(|o| matches!(o, Output::Warning(w) if w.contains("data.onCreateTodo"))), "{out:?}");
    let out = store.handle(0, next(socket, &subs[0], event("onCreateTodo", json!({"title": "x"}))));
    assert!(out.iter().any(|o| matches!(o, Output::Warning(w) if w.contains("key field"))), "{out:?}");
}

#[test]
fn entity_events_relist_after_every_reconnect_and_drop_rows_gone_meanwhile() {
    let (mut store, socket, _) = live_todos(vec![todo("a", "a1", 1), todo("b", "b1", 1)]);
    store.handle(0, Input::SocketClosed { socket, code: 1006, reason: String::new() });
    assert!(!store.collection("todos").unwrap().is_live());
    let retry = store.next_wake_ms().expect("a reconnect");
    let out = store.handle(retry, Input::Tick);
    let socket = super::opened_socket(&out).expect("a new socket");
    let (_, out) = super::finish_handshake(&mut store, socket, retry);
    assert_eq!(subscribed(&out).len(), 3);
    let list = https(&out).pop().expect("a re-list");
    let out = store.handle(
        retry,
        Input::Http {
            request_id: list.request_id,
            response: list_page("listTodos", vec![todo("b", "b2", 2), todo("c", "c1", 1)], None, None),
        },
    );
    assert_eq!(titles(&store, "todos"), pairs(&[("b", "b2"), ("c", "c1")]));
    assert_eq!(
        row_changes(&out),
        [
            RowChange::Removed { key: "a".into(), expired: false },
            RowChange::Updated { key: "b".into() },
            RowChange::Inserted { key: "c".into() }
        ]
    );
    let stats = store.collection("todos").unwrap().stats();
    assert_eq!((stats.resyncs, stats.snapshots, stats.subscriptions), (1, 2, 6));
}

#[test]
fn a_failed_subscription_retries_and_relists_while_the_others_keep_running() {
    let (mut store, socket, subs) = live_todos(vec![todo("a", "a1", 1)]);
    let error = ServerMessage::Error { id: subs[2].clone(), payload: vec![json!({"message": "boom"})] };
    let out = store.handle(0, super::frame(socket, &error));
    assert!(out.iter().any(|o| matches!(o, Output::Warning(_))));
    assert!(!store.collection("todos").unwrap().is_live());
    let at = store.next_wake_ms().expect("a retry");
    let out = store.handle(at, Input::Tick);
    assert_eq!(subscribed(&out).iter().map(|(_, q)| q.as_str()).collect::<Vec<_>>(), [ON_DELETE]);
    let list = https(&out).pop().expect("a re-list once every subscription runs again");
    store.handle(at, Input::Http { request_id: list.request_id, response: list_page("listTodos", vec![], None, None) });
    assert!(titles(&store, "todos").is_empty());
    assert!(store.collection("todos").unwrap().is_live());
}

#[test]
fn amplify_delta_sync_lists_once_then_asks_only_for_changes_since_started_at() {
    let config = config(vec![todos().delta_sync(SYNC, "syncTodos").page_size(100)]);
    let mut store = Store::new(config);
    let (socket, out) = go_live(&mut store, 0);
    let base = https(&out).pop().expect("a base sync");
    assert_eq!(base.body["query"], SYNC);
    assert_eq!(base.body["variables"], json!({"limit": 100, "nextToken": null, "lastSync": null}));
    let items = vec![todo("a", "a1", 1), todo("b", "b1", 1), json!({"id": "z", "_version": 3, "_deleted": true})];
    store.handle(
        0,
        Input::Http { request_id: base.request_id, response: list_page("syncTodos", items, None, Some(1000)) },
    );
    assert_eq!(titles(&store, "todos"), pairs(&[("a", "a1"), ("b", "b1")]));
    // Reconnect: only what changed since 1000 comes back; rows it does not mention stay.
    store.handle(0, Input::SocketClosed { socket, code: 1006, reason: String::new() });
    let at = store.next_wake_ms().unwrap();
    let socket = super::opened_socket(&store.handle(at, Input::Tick)).unwrap();
    let (_, out) = super::finish_handshake(&mut store, socket, at);
    let delta = https(&out).pop().expect("a delta sync");
    assert_eq!(delta.body["variables"]["lastSync"], 1000);
    let changes = vec![todo("a", "a2", 2), json!({"id": "b", "title": "b1", "_version": 2, "_deleted": true})];
    store.handle(
        at,
        Input::Http { request_id: delta.request_id, response: list_page("syncTodos", changes, None, Some(2000)) },
    );
    assert_eq!(titles(&store, "todos"), pairs(&[("a", "a2")]));
    // The server refuses a delta (lastSync past its retention): the retry asks for everything.
    store.handle(at, Input::SocketClosed { socket, code: 1006, reason: String::new() });
    let at = store.next_wake_ms().unwrap();
    let socket = super::opened_socket(&store.handle(at, Input::Tick)).unwrap();
    let (_, out) = super::finish_handshake(&mut store, socket, at);
    let refused = https(&out).pop().unwrap();
    assert_eq!(refused.body["variables"]["lastSync"], 2000);
    let errors = HttpResponse::Ok { body: json!({"data": null, "errors": [{"message": "delta too old"}]}) };
    store.handle(at, Input::Http { request_id: refused.request_id, response: errors });
    let at = store.next_wake_ms().unwrap();
    let retry = https(&store.handle(at, Input::Tick)).pop().expect("a retry");
    assert_eq!(retry.body["variables"]["lastSync"], Value::Null);
}

#[test]
fn over_appsync_entity_events_list_only_once_every_subscription_is_acknowledged() {
    let mut cfg = config(vec![todos().page_size(100)]);
    cfg.protocol = Protocol::AppSync;
    cfg.host = Some("api.example.com".into());
    let mut store = Store::new(cfg);
    let frame =
        |socket, msg: &appsync::ServerMessage| Input::Frame { socket, text: serde_json::to_string(msg).unwrap() };
    let out = store.handle(0, Input::Connect);
    let socket = super::opened_socket(&out).unwrap();
    store.handle(0, Input::SocketOpened { socket });
    let ack = appsync::ServerMessage::ConnectionAck { payload: AckPayload { connection_timeout_ms: 300_000 } };
    let out = store.handle(0, frame(socket, &ack));
    let ids: Vec<String> = out
        .iter()
        .filter_map(|o| match o {
            Output::SendAppSync { message: appsync::ClientMessage::Start { id, .. }, .. } => Some(id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(https(&out).is_empty());
    store.handle(0, frame(socket, &appsync::ServerMessage::StartAck { id: ids[0].clone() }));
    let out = store.handle(0, frame(socket, &appsync::ServerMessage::StartAck { id: ids[1].clone() }));
    assert!(https(&out).is_empty(), "not before the third start_ack");
    let out = store.handle(0, frame(socket, &appsync::ServerMessage::StartAck { id: ids[2].clone() }));
    let list = https(&out).pop().expect("the list");
    let data = appsync::ServerMessage::Data { id: ids[0].clone(), payload: event("onCreateTodo", todo("n", "n1", 1)) };
    store.handle(0, frame(socket, &data));
    store.handle(
        0,
        Input::Http {
            request_id: list.request_id,
            response: list_page("listTodos", vec![todo("a", "a1", 1)], None, None),
        },
    );
    assert_eq!(titles(&store, "todos"), pairs(&[("a", "a1"), ("n", "n1")]));
}

#[test]
fn optimistic_rows_retire_by_version_on_entity_events() {
    let (mut store, socket, subs) = live_todos(vec![todo("a", "a1", 1)]);
    let patch = Optimistic::Patch { key: "a".into(), fields: json!({"title": "mine"}) };
    let mutation = Mutation::new("mutation u", json!({"id": "a"}), "updateTodo").optimistic("todos", patch);
    let out = store.handle(0, Input::Mutate(mutation));
    assert_eq!(titles(&store, "todos"), pairs(&[("a", "mine")]));
    let request = https(&out).pop().expect("the mutation");
    let result = HttpResponse::Ok { body: json!({"data": {"updateTodo": todo("a", "mine", 2)}}) };
    store.handle(0, Input::Http { request_id: request.request_id, response: result });
    assert_eq!(store.collection("todos").unwrap().overlays(), 1, "shown until the event for version 2");
    store.handle(0, next(socket, &subs[1], event("onUpdateTodo", todo("a", "mine", 2))));
    assert_eq!(store.collection("todos").unwrap().overlays(), 0);
    assert_eq!(titles(&store, "todos"), pairs(&[("a", "mine")]));
}

#[test]
fn a_live_query_publishes_only_the_rows_that_changed_between_results() {
    let doc = "subscription { todos(order_by: {id: asc}) { id title version } }";
    let mut store = Store::new(config(vec![CollectionConfig::live_query("top", doc, "todos")]));
    let (socket, out) = go_live(&mut store, 0);
    let subs = subscribed(&out);
    assert_eq!(subs.len(), 1);
    assert!(https(&out).is_empty(), "a live query needs no list");
    let id = subs[0].0.clone();
    let row = |id: &str, t: &str, v: i64| json!({"id": id, "title": t, "version": v});
    let out = store.handle(0, next(socket, &id, json!({"data": {"todos": [row("a", "a", 1), row("b", "b", 1)]}})));
    assert_eq!(row_changes(&out).len(), 2);
    assert!(store.collection("top").unwrap().is_live());
    let out = store.handle(
        0,
        next(socket, &id, json!({"data": {"todos": [row("a", "a", 1), row("b", "b2", 2), row("c", "c", 1)]}})),
    );
    assert_eq!(row_changes(&out), [RowChange::Updated { key: "b".into() }, RowChange::Inserted { key: "c".into() }]);
    let out = store
        .handle(0, next(socket, &id, json!({"data": {"todos": {"items": [row("b", "b2", 2), row("c", "c", 1)]}}})));
    assert_eq!(row_changes(&out), [RowChange::Removed { key: "a".into(), expired: false }]);
    let out = store.handle(0, next(socket, &id, json!({"data": {"todos": [row("b", "b2", 2), row("c", "c", 1)]}})));
    assert!(row_changes(&out).is_empty());
    let out = store.handle(0, next(socket, &id, json!({"data": {"todos": 5}})));
    assert!(out.iter().any(|o| matches!(o, Output::Warning(w) if w.contains("not a list"))));
    // After a reconnect the rows stay, not live, until the first new result.
    store.handle(0, Input::SocketClosed { socket, code: 1006, reason: String::new() });
    let view = store.collection("top").unwrap();
    assert!(!view.is_live() && view.keys() == ["b", "c"]);
}

#[test]
fn each_source_states_its_guarantee_per_protocol() {
    let orders = super::orders();
    assert_eq!(orders.guarantee(Protocol::TransportWs), Guarantee::Gapless);
    assert_eq!(orders.guarantee(Protocol::AppSync), Guarantee::Converges);
    assert_eq!(todos().guarantee(Protocol::TransportWs), Guarantee::Converges);
    let filtered = todos().on_event(ON_CREATE, "onCreateTodo", EntityAction::Upsert, Some(json!({"owner": "alice"})));
    let Ok(wire) = serde_json::to_value(&filtered) else { panic!() };
    assert_eq!(wire["subscriptions"][3]["variables"], json!({"owner": "alice"}));
}

#[test]
fn a_restored_entity_collection_shows_its_copy_then_asks_the_delta_query_for_changes_since_its_cursor() {
    let collection = todos().delta_sync(SYNC, "syncTodos").page_size(100).persist();
    let mut store = Store::new(config(vec![collection.clone()]));
    let (_, out) = go_live(&mut store, 0);
    let base = https(&out).pop().expect("a base sync");
    let items = vec![todo("a", "a1", 1), todo("b", "b1", 1)];
    store.handle(
        0,
        Input::Http { request_id: base.request_id, response: list_page("syncTodos", items, None, Some(1000)) },
    );
    let image = store.take_image();
    assert_eq!(image.collections[0].cursor, Some(json!(1000)), "the delta cursor is persisted");

    let mut reloaded = Store::new(config(vec![collection]));
    reloaded.handle(0, Input::Restore(image));
    assert_eq!(titles(&reloaded, "todos"), pairs(&[("a", "a1"), ("b", "b1")]), "the copy shows at once");
    let (_, out) = go_live(&mut reloaded, 1);
    let delta = https(&out).pop().expect("a delta sync");
    assert_eq!(delta.body["variables"]["lastSync"], 1000, "only what changed since the persisted cursor");
    let changes = vec![todo("a", "a2", 2)];
    reloaded.handle(
        1,
        Input::Http { request_id: delta.request_id, response: list_page("syncTodos", changes, None, Some(2000)) },
    );
    assert_eq!(titles(&reloaded, "todos"), pairs(&[("a", "a2"), ("b", "b1")]));
    assert!(!reloaded.collection("todos").unwrap().state().restored);
}
