//! Live collections: snapshots, event application, gaps, cursor expiry, row changes and order.

use serde::Deserialize;
use serde_json::json;
use subsignal_protocol::transport_ws::{ClientMessage, ServerMessage};

use super::*;
use crate::{Input, RowChange, Store};

fn ins(key: &str) -> RowChange {
    RowChange::Inserted { key: key.into() }
}
fn upd(key: &str) -> RowChange {
    RowChange::Updated { key: key.into() }
}
fn rem(key: &str, expired: bool) -> RowChange {
    RowChange::Removed { key: key.into(), expired }
}

#[test]
fn multi_page_snapshot_uses_the_first_pages_seq_and_version_order() {
    let mut store = Store::new(config(vec![orders()]));
    let (socket, out) = go_live(&mut store, 0);
    let first = https(&out).pop().unwrap();
    assert_eq!(first.body["variables"], json!({"limit": 2, "nextToken": null}));
    assert_eq!(first.headers, vec![("Authorization".to_owned(), "Bearer t".to_owned())]);
    assert!(first.prefetchable, "the first page is consistent with its seq: a page's earlier answer will do");
    let out = store.handle(
        1,
        Input::Http {
            request_id: first.request_id,
            response: page(vec![order("a", 1, 1), order("b", 1, 1)], Some("b"), 10),
        },
    );
    assert!(row_changes(&out).is_empty(), "nothing is shown before the snapshot is complete");
    let second = https(&out).pop().unwrap();
    assert_eq!(second.body["variables"], json!({"limit": 2, "nextToken": "b"}));
    assert!(!second.prefetchable, "a later page continues this fetch: only its own answer will do");
    // Between the pages, c was created (seq 11) and modified (seq 12); the page shows version 2.
    let out = store
        .handle(2, Input::Http { request_id: second.request_id, response: page(vec![order("c", 2, 7)], None, 12) });
    assert_eq!(row_changes(&out), vec![ins("a"), ins("b"), ins("c")]);
    let subs = subscribes(&out);
    assert_eq!(subs[0].1, Some(10));
    let id = subs[0].0.clone();
    // The replay after seq 10 re-delivers c's insert and modify: both are older or equal, nothing changes.
    let out = store.handle(3, next(socket, &id, change(11, 10, "INSERT", Some("c"), Some(1), Some(order("c", 1, 5)))));
    assert!(row_changes(&out).is_empty());
    let out = store.handle(3, next(socket, &id, change(12, 11, "MODIFY", Some("c"), Some(2), Some(order("c", 2, 7)))));
    assert!(row_changes(&out).is_empty());
    let view = store.collection("orders").unwrap();
    assert_eq!(view.row("c"), Some(order("c", 2, 7)));
    assert_eq!(view.last_seq(), Some(12));
    assert_eq!(view.keys(), vec!["a", "b", "c"]);
    assert!(view.is_live());
}

#[test]
fn events_touch_only_their_row_and_duplicates_are_dropped() {
    let (mut store, socket, id) = live_orders(vec![order("a", 1, 1), order("b", 1, 1)], 5);
    let out = store.handle(1, next(socket, &id, change(7, 5, "MODIFY", Some("b"), Some(2), Some(order("b", 2, 9)))));
    assert_eq!(row_changes(&out), vec![upd("b")]);
    // The same event again, and an older one: dropped.
    let out = store.handle(1, next(socket, &id, change(7, 5, "MODIFY", Some("b"), Some(2), Some(order("b", 2, 9)))));
    assert!(out.is_empty());
    let out = store.handle(1, next(socket, &id, change(6, 5, "MODIFY", Some("a"), Some(2), Some(order("a", 2, 9)))));
    assert!(out.is_empty());
    // A watermark moves only the cursor.
    let out = store.handle(1, next(socket, &id, change(20, 7, "WATERMARK", None, None, None)));
    assert!(out.is_empty());
    let out = store.handle(1, next(socket, &id, change(21, 20, "INSERT", Some("c"), Some(1), Some(order("c", 1, 1)))));
    assert_eq!(row_changes(&out), vec![ins("c")]);
    let out = store.handle(1, next(socket, &id, change(22, 21, "REMOVE", Some("a"), Some(1), Some(order("a", 1, 1)))));
    assert_eq!(row_changes(&out), vec![rem("a", false)]);
    let mut expiry = change(23, 22, "REMOVE", Some("b"), Some(2), Some(order("b", 2, 9)));
    expiry["data"]["onOrderChanged"]["expired"] = json!(true);
    assert_eq!(row_changes(&store.handle(1, next(socket, &id, expiry))), vec![rem("b", true)]);
    let c = store.inner("orders");
    assert_eq!(c.applied_log, vec![7, 20, 21, 22, 23]);
    assert_eq!(c.stats.duplicates, 2);
    assert_eq!(store.collection("orders").unwrap().keys(), vec!["c"]);
}

#[test]
fn versions_never_go_backwards() {
    let (mut store, socket, id) = live_orders(vec![order("a", 5, 1)], 5);
    let out = store.handle(1, next(socket, &id, change(6, 5, "MODIFY", Some("a"), Some(4), Some(order("a", 4, 0)))));
    assert!(row_changes(&out).is_empty());
    let out = store.handle(1, next(socket, &id, change(7, 6, "REMOVE", Some("a"), Some(3), Some(order("a", 3, 0)))));
    assert!(row_changes(&out).is_empty(), "an older removal does not remove");
    let out = store.handle(1, next(socket, &id, change(8, 7, "REMOVE", Some("a"), Some(5), Some(order("a", 5, 1)))));
    assert_eq!(row_changes(&out), vec![rem("a", false)]);
    assert_eq!(store.collection("orders").unwrap().last_seq(), Some(8));
}

#[test]
fn a_gap_resubscribes_from_last_seq_and_drains_the_buffer() {
    let (mut store, socket, id) = live_orders(vec![], 10);
    store.handle(1, next(socket, &id, change(12, 10, "INSERT", Some("a"), Some(1), Some(order("a", 1, 1)))));
    // 15 (after 14) arrives, but 14 was lost.
    let out = store.handle(2, next(socket, &id, change(15, 14, "INSERT", Some("c"), Some(1), Some(order("c", 1, 1)))));
    assert!(row_changes(&out).is_empty());
    let sent = sends(&out);
    assert_eq!(sent[0], ClientMessage::Complete { id: id.clone() });
    let subs = subscribes(&out);
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].1, Some(12));
    let new_id = subs[0].0.clone();
    // Late events on the completed id are ignored.
    assert!(store
        .handle(3, next(socket, &id, change(18, 15, "INSERT", Some("d"), Some(1), Some(order("d", 1, 1)))))
        .is_empty());
    assert!(store.handle(3, frame(socket, &ServerMessage::Complete { id: id.clone() })).is_empty());
    // The replay fills the gap; the buffered 15 chains on and is applied from the buffer.
    let out =
        store.handle(4, next(socket, &new_id, change(14, 12, "INSERT", Some("b"), Some(1), Some(order("b", 1, 1)))));
    assert_eq!(row_changes(&out), vec![ins("b"), ins("c")]);
    // The replay's own copy of 15 is now a duplicate.
    let out =
        store.handle(5, next(socket, &new_id, change(15, 14, "INSERT", Some("c"), Some(1), Some(order("c", 1, 1)))));
    assert!(out.is_empty());
    let c = store.inner("orders");
    assert_eq!(c.applied_log, vec![12, 14, 15]);
    assert_eq!(c.stats.gaps, 1);
    assert_eq!(store.collection("orders").unwrap().keys(), vec!["a", "b", "c"]);
}

#[test]
fn cursor_expired_takes_a_new_snapshot_and_emits_only_the_diff() {
    let (mut store, socket, id) = live_orders(vec![order("a", 1, 1), order("b", 1, 1), order("c", 1, 1)], 10);
    let error = ServerMessage::Error {
        id: id.clone(),
        payload: vec![json!({"message": "cursor expired", "extensions": {"code": "CURSOR_EXPIRED"}})],
    };
    let out = store.handle(1, frame(socket, &error));
    let req = https(&out).pop().expect("a snapshot request");
    assert!(subscribes(&out).is_empty());
    // Old rows stay visible while the snapshot loads.
    assert_eq!(store.collection("orders").unwrap().keys().len(), 3);
    let out = store.handle(
        2,
        Input::Http {
            request_id: req.request_id,
            response: page(vec![order("a", 1, 1), order("b", 3, 2), order("d", 1, 1)], None, 50),
        },
    );
    assert_eq!(row_changes(&out), vec![upd("b"), rem("c", false), ins("d")]);
    assert_eq!(subscribes(&out)[0].1, Some(50));
    assert_eq!(store.collection("orders").unwrap().stats().snapshots, 2);
}

#[test]
fn other_subscription_errors_and_server_completes_retry_after_backoff() {
    let (mut store, socket, id) = live_orders(vec![], 10);
    let out = store.handle(1, frame(socket, &ServerMessage::Error { id, payload: vec![json!({"message": "boom"})] }));
    assert!(matches!(out[0], Output::Warning(_)));
    let resubscribed = |store: &mut Store, out: Vec<Output>| {
        let mut subs = subscribes(&out);
        if subs.is_empty() {
            let at = store.next_wake_ms().unwrap();
            assert!(at <= 2_000);
            subs = subscribes(&store.handle(at, Input::Tick));
        }
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].1, Some(10));
        subs[0].0.clone()
    };
    let id = resubscribed(&mut store, out);
    let out = store.handle(2, frame(socket, &ServerMessage::Complete { id }));
    resubscribed(&mut store, out);
}

#[test]
fn snapshot_failures_retry_with_backoff() {
    let mut store = Store::new(config(vec![orders()]));
    let (_, out) = go_live(&mut store, 0);
    let req = https(&out).pop().unwrap();
    let out = store.handle(
        1,
        Input::Http { request_id: req.request_id, response: HttpResponse::NetworkError { message: "x".into() } },
    );
    assert!(https(&out).is_empty());
    let at = store.next_wake_ms().unwrap();
    assert!(at <= 501);
    assert_eq!(https(&store.handle(at, Input::Tick)).len(), 1);
}

#[test]
fn typed_views_and_descending_order() {
    #[derive(Debug, Deserialize, PartialEq)]
    struct Order {
        id: String,
        version: i64,
        value: i64,
    }
    let mut store = Store::new(config(vec![orders().descending()]));
    let (_, out) = go_live(&mut store, 0);
    let req = https(&out).pop().unwrap();
    store.handle(
        0,
        Input::Http { request_id: req.request_id, response: page(vec![order("a", 1, 10), order("b", 2, 20)], None, 3) },
    );
    let view = store.collection("orders").unwrap();
    assert_eq!(view.keys(), vec!["b", "a"]);
    let typed: Vec<Order> = view.rows_as().unwrap();
    assert_eq!(typed[0], Order { id: "b".into(), version: 2, value: 20 });
    assert_eq!(view.get::<Order>("a").unwrap().unwrap().value, 10);
    assert!(view.get::<Order>("zz").is_none());
}

#[test]
fn watch_and_unwatch_at_runtime() {
    let mut store = Store::new(config(vec![]));
    let (socket, _) = go_live(&mut store, 0);
    let out = store.handle(1, Input::Watch(orders()));
    let req = https(&out).pop().expect("the snapshot starts at once when live");
    let out = store.handle(2, Input::Http { request_id: req.request_id, response: page(vec![], None, 0) });
    let id = subscribes(&out)[0].0.clone();
    let out = store.handle(3, Input::Unwatch("orders".into()));
    assert_eq!(sends(&out), vec![ClientMessage::Complete { id: id.clone() }]);
    assert!(store.collection("orders").is_none());
    assert!(store.handle(4, next(socket, &id, change(1, 0, "WATERMARK", None, None, None))).is_empty());
}

#[test]
fn an_unreadable_event_is_a_warning_and_changes_nothing() {
    let (mut store, socket, id) = live_orders(vec![order("a", 1, 1)], 10);
    let warnings = |out: &[Output]| -> Vec<String> {
        out.iter().filter_map(|o| if let Output::Warning(w) = o { Some(w.clone()) } else { None }).collect()
    };
    // A seq that is not a number, a change without the subscription's field, and a null change.
    let bad_seq = json!({"data": {"onOrderChanged": {"seq": "11", "prevSeq": 10, "op": "MODIFY", "key": "a"}}});
    let out = store.handle(1, next(socket, &id, bad_seq));
    assert!(warnings(&out)[0].contains("orders: unreadable change envelope: invalid type"), "{out:?}");
    let out = store.handle(1, next(socket, &id, json!({"data": {"onSomethingElse": null}})));
    assert!(warnings(&out)[0].starts_with("orders: a `next` without data.onOrderChanged"), "{out:?}");
    let out = store.handle(1, next(socket, &id, json!({"data": null, "errors": [{"message": "boom"}]})));
    assert!(warnings(&out)[0].starts_with("orders: a `next` without data.onOrderChanged"), "{out:?}");
    assert_eq!(store.status().connection, ConnectionStatus::Live);
    // The next good event still applies.
    let out = store.handle(1, next(socket, &id, change(11, 10, "MODIFY", Some("a"), Some(2), Some(order("a", 2, 5)))));
    assert_eq!(row_changes(&out), vec![upd("a")]);
    assert_eq!(store.collection("orders").unwrap().row("a"), Some(order("a", 2, 5)));
}

/// The `(collection, loaded, stale)` of every collection state among the outputs.
fn states(out: &[Output]) -> Vec<(String, bool, bool)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Collection { collection, state } => Some((collection.clone(), state.loaded, state.stale)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_collection_tells_when_it_is_loaded_and_when_it_goes_stale_but_not_for_every_seq() {
    let mut store = Store::new(config(vec![orders()]));
    let out = store.handle(0, Input::Connect);
    assert_eq!(states(&out), [("orders".to_owned(), false, true)], "told once when watched");
    let socket = opened_socket(&out).expect("a socket");
    let request = https(&out).pop().expect("a snapshot request");
    finish_handshake(&mut store, socket, 0);
    // An empty snapshot changes no row, yet the collection is loaded.
    let out = store.handle(0, Input::Http { request_id: request.request_id, response: page(vec![], None, 3) });
    assert_eq!(states(&out), [("orders".to_owned(), true, false)]);
    let id = subscribes(&out)[0].0.clone();
    let out = store.handle(0, next(socket, &id, change(4, 3, "INSERT", Some("a"), Some(1), Some(order("a", 1, 1)))));
    assert!(states(&out).is_empty(), "a new seq alone is not a state change");
    let origins: Vec<_> =
        out.iter().filter_map(|o| if let Output::Row { origin, .. } = o { Some(*origin) } else { None }).collect();
    assert_eq!(origins, [crate::RowOrigin::Event { seq: Some(4) }], "each row change names its event's seq");
    let out = store.handle(1, Input::SocketClosed { socket, code: 1006, reason: String::new() });
    assert_eq!(states(&out), [("orders".to_owned(), true, true)], "stale while disconnected, still loaded");
}

#[test]
fn lag_is_how_old_the_newest_event_was_when_it_arrived_when_the_subscription_selects_its_commit_time() {
    let (mut store, socket, id) = live_orders(vec![], 5);
    assert_eq!(store.collection("orders").unwrap().state().lag_ms, None);
    let mut event = change(6, 5, "INSERT", Some("a"), Some(1), Some(order("a", 1, 1)));
    event["data"]["onOrderChanged"]["committedAtMs"] = json!(9_960);
    store.handle(10_000, next(socket, &id, event));
    assert_eq!(store.collection("orders").unwrap().state().lag_ms, Some(40));
    // An event without it leaves the last measure.
    store.handle(10_500, next(socket, &id, change(7, 6, "MODIFY", Some("a"), Some(2), Some(order("a", 2, 2)))));
    assert_eq!(store.collection("orders").unwrap().state().lag_ms, Some(40));
}
