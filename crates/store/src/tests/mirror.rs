//! A follower's core (shared mode): rows, states and status set from another store's, views following them, and the
//! take-over that keeps the mirrored rows until the follower's own snapshot replaces them.

use serde_json::json;

use super::{change, go_live, https, next, order, orders, page, row_changes, subscribes};
use crate::{
    CollectionState, ConnectionStatus, HistoryConfig, Input, Output, RowChange, RowOrigin, Status, Store, StoreConfig,
    ViewSpec,
};

fn follower() -> Store {
    let mut cfg = StoreConfig::new(3);
    cfg.collections = vec![orders()];
    Store::new(cfg)
}

const LIVE: CollectionState = CollectionState {
    loaded: true,
    stale: false,
    last_seq: Some(4),
    has_pending_updates: false,
    lag_ms: None,
    restored: false,
};

#[test]
fn mirrored_rows_show_with_their_changes_and_views() {
    let mut store = follower();
    let view = store.open_view("orders", ViewSpec::default()).expect("a view");
    let out = store.mirror_rows(
        "orders",
        vec![("a".into(), Some(order("a", 1, 1))), ("b".into(), Some(order("b", 1, 2)))],
        RowOrigin::Fetch,
    );
    assert_eq!(
        row_changes(&out),
        vec![RowChange::Inserted { key: "a".into() }, RowChange::Inserted { key: "b".into() }]
    );
    assert!(out.iter().any(|o| matches!(o, Output::View { view: v, .. } if *v == view)));
    let out = store.mirror_rows("orders", vec![("a".into(), None)], RowOrigin::Event { seq: Some(5) });
    assert_eq!(row_changes(&out), vec![RowChange::Removed { key: "a".into(), expired: false }]);
    assert!(out.iter().any(|o| matches!(o, Output::Row { origin: RowOrigin::Event { seq: Some(5) }, .. })));
    assert_eq!(store.collection("orders").expect("watched").rows(), vec![order("b", 1, 2)]);
    assert_eq!(store.view(view).expect("open").keys(), vec!["b".to_owned()]);
    // The same row again changes nothing; a collection not watched is ignored.
    assert!(row_changes(&store.mirror_rows("orders", vec![("b".into(), Some(order("b", 1, 2)))], RowOrigin::Fetch))
        .is_empty());
    assert!(store.mirror_rows("other", vec![("x".into(), Some(json!({"id": "x"})))], RowOrigin::Fetch).is_empty());
}

#[test]
fn mirrored_state_and_status_are_reported_and_read() {
    let mut store = follower();
    let out = store.mirror_state("orders", LIVE);
    assert!(out.contains(&Output::Collection { collection: "orders".into(), state: LIVE }));
    assert_eq!(store.collection("orders").expect("watched").state(), LIVE);
    let status = Status { connection: ConnectionStatus::Live, pending_mutations: 2 };
    let out = store.mirror_status(status.clone());
    assert!(out.contains(&Output::Status(status.clone())));
    assert_eq!(store.status(), status);
}

#[test]
fn a_follower_that_takes_over_keeps_the_rows_until_its_snapshot_replaces_them() {
    let mut store = follower();
    store.mirror_rows("orders", vec![("a".into(), Some(order("a", 1, 1)))], RowOrigin::Fetch);
    store.mirror_state("orders", LIVE);
    store.mirror_status(Status { connection: ConnectionStatus::Live, pending_mutations: 0 });
    let out = store.end_mirror();
    let state = store.collection("orders").expect("watched").state();
    assert!(state.loaded && state.stale && state.restored, "{state:?}");
    assert!(out.iter().any(|o| matches!(o, Output::Status(s) if s.connection == ConnectionStatus::Disconnected)));
    // Its own connection and snapshot from now on.
    let (_, out) = go_live(&mut store, 0);
    let request = https(&out).pop().expect("a snapshot request");
    let out = store
        .handle(0, Input::Http { request_id: request.request_id, response: page(vec![order("b", 1, 2)], None, 9) });
    assert_eq!(
        row_changes(&out),
        vec![RowChange::Removed { key: "a".into(), expired: false }, RowChange::Inserted { key: "b".into() }]
    );
    assert_eq!(store.collection("orders").expect("watched").last_seq(), Some(9));
    assert!(store.collection("orders").expect("watched").state().loaded);
}

#[test]
fn a_followers_history_starts_at_the_reported_state_and_records_mirrored_events() {
    let mut cfg = StoreConfig::new(3);
    cfg.collections = vec![orders().history(HistoryConfig { max_events: 10, checkpoint_every: 4 })];
    let mut store = Store::new(cfg);
    store.mirror_rows("orders", vec![("a".into(), Some(order("a", 1, 1)))], RowOrigin::Fetch);
    store.mirror_state("orders", LIVE);
    store.mirror_rows("orders", vec![("a".into(), Some(order("a", 2, 7)))], RowOrigin::Event { seq: Some(5) });
    store.mirror_rows("orders", vec![("b".into(), Some(order("b", 1, 2)))], RowOrigin::Event { seq: Some(6) });
    let view = store.collection("orders").expect("watched");
    let range = view.history().expect("a history");
    assert_eq!((range.first, range.last), (4, 6));
    assert_eq!(view.state().last_seq, Some(6), "lastSeq follows the events mirrored");
    let rows = |seq| view.at(seq).expect("held").rows.iter().map(|r| (*r.row).clone()).collect::<Vec<_>>();
    assert_eq!(rows(4), vec![order("a", 1, 1)]);
    assert_eq!(rows(5), vec![order("a", 2, 7)]);
    assert_eq!(rows(6), vec![order("a", 2, 7), order("b", 1, 2)]);

    // The other store took a new snapshot: the history starts over at the state reported after it.
    store.mirror_rows("orders", vec![("b".into(), None)], RowOrigin::Fetch);
    store.mirror_state("orders", CollectionState { last_seq: Some(20), ..LIVE });
    let range = store.collection("orders").expect("watched").history().expect("a history");
    assert_eq!((range.first, range.last), (20, 20));
}

#[test]
fn a_mirrored_row_missing_from_the_take_overs_first_list_comes_back_with_a_later_event() {
    // The old host showed row a (its write was answered to nobody); the first list the new host reads is older.
    let mut store = follower();
    store.mirror_rows("orders", vec![("a".into(), Some(order("a", 2, 1)))], RowOrigin::Event { seq: Some(4) });
    store.end_mirror();
    let (socket, out) = go_live(&mut store, 0);
    let request = https(&out).pop().expect("a snapshot request");
    let out = store.handle(0, Input::Http { request_id: request.request_id, response: page(vec![], None, 3) });
    assert_eq!(row_changes(&out), vec![RowChange::Removed { key: "a".into(), expired: false }]);
    let (sub, _) = subscribes(&out).pop().expect("a subscription after the list");
    let out = store.handle(0, next(socket, &sub, change(4, 3, "INSERT", Some("a"), Some(2), Some(order("a", 2, 1)))));
    assert_eq!(row_changes(&out), vec![RowChange::Inserted { key: "a".into() }], "no tombstone keeps it away");
    assert_eq!(store.collection("orders").expect("watched").rows(), vec![order("a", 2, 1)]);
}
