//! Persisted collections: what the store announces for persisting, the image it gives, and a restore that shows the
//! rows at once and resumes from the image's cursor.

use serde_json::json;
use subsignal_protocol::transport_ws::ServerMessage;

use super::{
    change, config, frame, go_live, go_live_acked, https, live_orders, next, order, orders, page, row_changes,
    subscribes,
};
use crate::{
    fingerprint, CollectionImage, Input, Mutation, Optimistic, Output, RowChange, RowOrigin, Store, StoreConfig,
    StoreImage,
};

fn persists(out: &[Output]) -> usize {
    out.iter().filter(|o| matches!(o, Output::Persist)).count()
}

/// A persisted orders collection live at `seq` with `items`.
fn persisted_store(items: Vec<serde_json::Value>, seq: i64) -> (Store, u64, String) {
    let mut store = Store::new(config(vec![orders().page_size(1000).persist()]));
    let (socket, out) = go_live(&mut store, 0);
    let req = https(&out).pop().expect("a snapshot request");
    let out = store.handle(0, Input::Http { request_id: req.request_id, response: page(items, None, seq) });
    assert_eq!(persists(&out), 1, "the snapshot is announced for persisting");
    let sub = subscribes(&out).pop().expect("a subscription").0;
    (store, socket, sub)
}

fn image(rows: Vec<serde_json::Value>, last_seq: i64) -> CollectionImage {
    CollectionImage {
        name: "orders".into(),
        fingerprint: fingerprint(&orders().persist()),
        rows,
        last_seq: Some(last_seq),
        cursor: None,
        tombstones: Vec::new(),
    }
}

#[test]
fn changes_are_announced_once_until_the_image_is_taken_and_the_image_holds_rows_seq_and_queue() {
    let (mut store, socket, sub) = persisted_store(vec![order("a", 1, 1)], 4);
    let out = store.handle(1, next(socket, &sub, change(5, 4, "INSERT", Some("b"), Some(1), Some(order("b", 1, 2)))));
    assert_eq!(persists(&out), 0, "already announced: the shell batches");
    let update = Mutation::new("mutation", json!({}), "updateOrder")
        .optimistic("orders", Optimistic::Patch { key: "a".into(), fields: json!({"value": 9}) });
    store.handle(1, Input::Mutate(update));

    let taken = store.take_image();
    let expected = CollectionImage {
        fingerprint: fingerprint(&orders().page_size(1000).persist()),
        ..image(vec![order("a", 1, 1), order("b", 1, 2)], 5)
    };
    assert_eq!(taken.collections, vec![expected], "confirmed rows only");
    assert_eq!(taken.queue, store.pending_mutations());
    assert_eq!(taken.queue.len(), 1);
    assert!(store.take_image().collections.is_empty(), "nothing changed since");

    // A watermark moves lastSeq alone: announced again.
    let out = store.handle(2, next(socket, &sub, change(9, 5, "WATERMARK", None, None, None)));
    assert_eq!(persists(&out), 1);
    assert_eq!(store.take_image().collections[0].last_seq, Some(9));
}

#[test]
fn a_collection_that_does_not_persist_is_never_announced_nor_imaged() {
    let (mut store, socket, sub) = live_orders(vec![order("a", 1, 1)], 4);
    let out = store.handle(1, next(socket, &sub, change(5, 4, "INSERT", Some("b"), Some(1), Some(order("b", 1, 2)))));
    assert_eq!(persists(&out), 0);
    assert!(store.take_image().collections.is_empty());
}

#[test]
fn a_restore_shows_the_rows_at_once_marked_stale_then_resumes_after_the_persisted_seq_without_a_snapshot() {
    let mut store = Store::new(config(vec![orders().persist()]));
    let out = store
        .handle(0, Input::Restore(StoreImage { collections: vec![image(vec![order("a", 3, 1)], 7)], queue: vec![] }));
    assert_eq!(row_changes(&out), vec![RowChange::Inserted { key: "a".into() }]);
    assert!(out.iter().any(|o| matches!(o, Output::Row { origin: RowOrigin::Restore, .. })));
    let state = store.collection("orders").unwrap().state();
    assert!(state.loaded && state.stale && state.restored, "{state:?}");
    assert_eq!(state.last_seq, Some(7));
    assert_eq!(persists(&out), 0, "a restore is not a change to write back");

    let (socket, out) = go_live(&mut store, 1);
    assert!(https(&out).is_empty(), "no snapshot: {out:?}");
    let (sub, after) = subscribes(&out).pop().expect("a subscription");
    assert_eq!(after, Some(7), "resumes after the persisted seq");
    let state = store.collection("orders").unwrap().state();
    assert!(!state.stale && !state.restored, "{state:?}");
    let out = store.handle(2, next(socket, &sub, change(8, 7, "MODIFY", Some("a"), Some(4), Some(order("a", 4, 2)))));
    assert_eq!(row_changes(&out), vec![RowChange::Updated { key: "a".into() }]);
    assert_eq!(store.collection("orders").unwrap().stats().snapshots, 0);
}

#[test]
fn a_persisted_cursor_past_retention_takes_a_snapshot_as_usual() {
    let mut store = Store::new(config(vec![orders().persist()]));
    let restored = vec![order("a", 3, 1), order("gone", 1, 1)];
    store.handle(0, Input::Restore(StoreImage { collections: vec![image(restored, 7)], queue: vec![] }));
    let (socket, out) = go_live(&mut store, 1);
    let (sub, _) = subscribes(&out).pop().expect("a subscription");
    let expired = ServerMessage::Error {
        id: sub,
        payload: vec![json!({"message": "cursor expired", "extensions": {"code": "CURSOR_EXPIRED"}})],
    };
    let out = store.handle(2, frame(socket, &expired));
    let snapshot = https(&out).pop().expect("a snapshot after CURSOR_EXPIRED");
    let out = store
        .handle(3, Input::Http { request_id: snapshot.request_id, response: page(vec![order("a", 5, 2)], None, 40) });
    assert_eq!(
        row_changes(&out),
        vec![RowChange::Updated { key: "a".into() }, RowChange::Removed { key: "gone".into(), expired: false }]
    );
    assert_eq!(subscribes(&out).pop().map(|s| s.1), Some(Some(40)));
    assert_eq!(persists(&out), 1);
}

#[test]
fn a_cursor_of_another_change_log_takes_a_snapshot_and_the_epoch_is_persisted() {
    // Live against the server of epoch 1: the image keeps the epoch beside lastSeq.
    let mut store = Store::new(config(vec![orders().page_size(1000).persist()]));
    let (_, out) = go_live_acked(&mut store, 0, Some(json!({"epoch": 1})));
    let req = https(&out).pop().expect("a snapshot request");
    store.handle(0, Input::Http { request_id: req.request_id, response: page(vec![order("a", 3, 1)], None, 7) });
    let taken = store.take_image();
    assert_eq!(taken.collections[0].cursor, Some(json!({"epoch": 1})));
    assert_eq!(taken.collections[0].last_seq, Some(7));

    // The same log again: resume after the persisted seq, no snapshot.
    let mut same = Store::new(config(vec![orders().page_size(1000).persist()]));
    same.handle(0, Input::Restore(taken.clone()));
    let (socket, out) = go_live_acked(&mut same, 1, Some(json!({"epoch": 1})));
    assert!(https(&out).is_empty(), "no snapshot: {out:?}");
    assert_eq!(subscribes(&out).pop().map(|s| s.1), Some(Some(7)));

    // The server comes back with its database made again while the page is open: the reconnect takes a snapshot.
    same.handle(2, Input::SocketClosed { socket, code: 1006, reason: String::new() });
    let at = same.next_wake_ms().expect("a reconnect");
    let socket = super::opened_socket(&same.handle(at, Input::Tick)).expect("a new socket");
    same.handle(at, Input::SocketOpened { socket });
    let out = same.handle(at, frame(socket, &ServerMessage::ConnectionAck { payload: Some(json!({"epoch": 3})) }));
    assert!(subscribes(&out).is_empty(), "no subscription from seq 7 on another log: {out:?}");
    assert_eq!(https(&out).len(), 1, "a snapshot of the other log");

    // Another log at the same address (its database made again, already past seq 7): seq 7 means nothing there, so
    // a snapshot replaces the rows, and the subscription starts at its seq.
    let mut other = Store::new(config(vec![orders().page_size(1000).persist()]));
    other.handle(0, Input::Restore(taken.clone()));
    let (_, out) = go_live_acked(&mut other, 1, Some(json!({"epoch": 2})));
    assert!(subscribes(&out).is_empty(), "no subscription from seq 7: {out:?}");
    let snapshot = https(&out).pop().expect("a snapshot of the other log");
    let out = other
        .handle(2, Input::Http { request_id: snapshot.request_id, response: page(vec![order("b", 1, 5)], None, 9) });
    assert_eq!(
        row_changes(&out),
        vec![RowChange::Removed { key: "a".into(), expired: false }, RowChange::Inserted { key: "b".into() }]
    );
    assert_eq!(subscribes(&out).pop().map(|s| s.1), Some(Some(9)));
    assert_eq!(other.take_image().collections[0].cursor, Some(json!({"epoch": 2})));

    // The same when the server's ack came first and the image was read after it (a browser reads IndexedDB while the
    // socket opens).
    let mut late = Store::new(StoreConfig { awaits_restore: true, ..config(vec![orders().page_size(1000).persist()]) });
    go_live_acked(&mut late, 1, Some(json!({"epoch": 2})));
    let out = late.handle(2, Input::Restore(taken.clone()));
    assert!(subscribes(&out).is_empty(), "no subscription from seq 7: {out:?}");
    assert_eq!(https(&out).len(), 1, "a snapshot of the other log");

    // An image from before epochs, against a server that says one: the cursor cannot be vouched for.
    let mut old = Store::new(config(vec![orders().page_size(1000).persist()]));
    let mut unknown = taken;
    unknown.collections[0].cursor = None;
    old.handle(0, Input::Restore(unknown));
    let (_, out) = go_live_acked(&mut old, 1, Some(json!({"epoch": 1})));
    assert_eq!(https(&out).len(), 1, "a snapshot: {out:?}");
}

#[test]
fn awaiting_the_image_the_connection_opens_but_nothing_is_fetched_until_it_is_restored() {
    let mut store = Store::new(StoreConfig { awaits_restore: true, ..config(vec![orders().persist()]) });
    let (_, out) = go_live(&mut store, 0);
    assert!(https(&out).is_empty() && subscribes(&out).is_empty(), "nothing before the image: {out:?}");
    let out = store
        .handle(1, Input::Restore(StoreImage { collections: vec![image(vec![order("a", 3, 1)], 7)], queue: vec![] }));
    assert_eq!(row_changes(&out), vec![RowChange::Inserted { key: "a".into() }]);
    assert!(https(&out).is_empty(), "no snapshot: {out:?}");
    assert_eq!(subscribes(&out).pop().map(|s| s.1), Some(Some(7)), "resumes after the persisted seq at once");

    // With nothing persisted, the restore lets the snapshot go.
    let mut store = Store::new(StoreConfig { awaits_restore: true, ..config(vec![orders().persist()]) });
    go_live(&mut store, 0);
    let out = store.handle(1, Input::Restore(StoreImage::default()));
    assert_eq!(https(&out).len(), 1, "the snapshot once restored");
}

#[test]
fn an_image_of_another_configuration_is_discarded_with_a_warning() {
    let mut store = Store::new(config(vec![orders().persist()]));
    let mut old = image(vec![order("a", 1, 1)], 3);
    old.fingerprint = fingerprint(&orders().page_size(7).persist());
    let out = store.handle(0, Input::Restore(StoreImage { collections: vec![old], queue: vec![] }));
    assert!(row_changes(&out).is_empty());
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Warning(w) if w.contains("discarding the persisted copy of orders"))));
    assert!(!store.collection("orders").unwrap().state().loaded);
    let (_, out) = go_live(&mut store, 1);
    assert_eq!(https(&out).len(), 1, "a snapshot, as without an image");
}

#[test]
fn an_image_waits_for_its_collection_and_queued_effects_show_on_top_of_its_rows() {
    let mut store = Store::new(StoreConfig::new(3));
    let patch = Mutation::new("mutation", json!({}), "updateOrder")
        .optimistic("orders", Optimistic::Patch { key: "a".into(), fields: json!({"value": 9}) })
        .with_id("m1");
    let queue = vec![crate::PendingMutation { id: "m1".into(), mutation: patch }];
    let out =
        store.handle(0, Input::Restore(StoreImage { collections: vec![image(vec![order("a", 1, 1)], 2)], queue }));
    assert!(row_changes(&out).is_empty(), "not watched yet");
    store.handle(0, Input::Watch(orders().persist()));
    let view = store.collection("orders").unwrap();
    assert_eq!(view.row("a").unwrap()["value"], json!(9), "the pending mutation shows on the restored row");
    assert_eq!(view.confirmed("a").unwrap()["value"], json!(1));
    assert!(view.state().has_pending_updates && view.state().restored);
}
