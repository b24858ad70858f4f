//! Time travel: the history's rows at every seq it holds equal a model's, under the adversarial channel of
//! `model.rs` (duplicates, gaps, reconnects, expired cursors and new snapshots, paged snapshots the server moves
//! under, optimistic mutations); outside its range it answers a typed error.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Value};
use subsignal_protocol::transport_ws::ServerMessage;

use super::model::{op, Model, Op};
use super::*;
use crate::{ChangeAt, CollectionConfig, HistoryConfig, HistoryError, HistoryOp, Input};

fn orders_with_history(max_events: u32, checkpoint_every: u32) -> CollectionConfig {
    orders().history(HistoryConfig { max_events, checkpoint_every })
}

/// Owner 0's rows just after `seq`, each with the seq that last changed it.
fn truth_at(model: &Model, seq: i64) -> BTreeMap<String, (i64, Value)> {
    let mut rows = BTreeMap::new();
    for (at, key, row) in model.owner_log.iter().take_while(|(at, _, _)| *at <= seq) {
        match row {
            Some(row) => rows.insert(key.clone(), (*at, row.clone())),
            None => rows.remove(key),
        };
    }
    rows
}

/// Checks the whole history against the model: every seq held, and the first seq on either side of it.
fn check_history(driver: &Driver<Model>, cfg: HistoryConfig) -> Result<(), TestCaseError> {
    let view = driver.store.collection("orders").expect("watched");
    let range = match view.history() {
        Ok(range) => range,
        Err(HistoryError::Empty(_)) => return Ok(()),
        Err(other) => return Err(TestCaseError::fail(format!("{other}"))),
    };
    prop_assert_eq!(Some(range.last), view.last_seq());
    prop_assert!(range.events <= cfg.max_events as usize, "{range:?}");
    let every = cfg.checkpoint_every.min(cfg.max_events);
    prop_assert!(range.checkpoints <= (cfg.max_events / every) as usize + 2, "{range:?}");
    for seq in range.first..=range.last {
        let at = view.at(seq).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let truth = truth_at(&driver.model, seq);
        let keys: Vec<&String> = truth.keys().collect();
        let got: Vec<&String> = at.rows.iter().map(|r| &r.key).collect();
        prop_assert_eq!(got, keys, "keys at seq {}", seq);
        for row in &at.rows {
            let (changed, value) = &truth[&row.key];
            prop_assert_eq!(&*row.row, value, "row {} at seq {}", row.key, seq);
            match row.op {
                // A snapshot row is named by the seq its snapshot is exact at, which is not before its change.
                HistoryOp::Snapshot => prop_assert!(row.seq >= *changed && row.seq <= seq),
                _ => prop_assert_eq!(row.seq, *changed, "the event that changed {} at seq {}", row.key, seq),
            }
        }
        let changed_here: Vec<&String> =
            driver.model.owner_log.iter().filter(|(at, _, _)| *at == seq).map(|(_, key, _)| key).collect();
        // The event at `seq` is named whole, also where a checkpoint sits at `seq`; where the history starts, a
        // snapshot's seq names nothing.
        let mut named: Vec<&String> = at.changes.iter().map(|c| &c.key).collect();
        named.sort();
        if seq > range.first {
            let mut all = changed_here.clone();
            all.sort();
            all.dedup();
            prop_assert_eq!(named, all, "changes at {}", seq);
        } else {
            prop_assert!(named.iter().all(|k| changed_here.contains(k)), "changes at {seq}: {named:?}");
        }
    }
    for seq in [range.first - 1, range.last + 1] {
        let is_out = matches!(view.at(seq), Err(HistoryError::OutOfRange { first, last, .. })
            if first == range.first && last == range.last);
        prop_assert!(is_out, "seq {} outside {:?}", seq, range);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200),
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_history_at_every_seq_held_equals_the_model(
        seed in any::<u64>(),
        replay_watermark in any::<bool>(),
        max_events in 1u32..12,
        checkpoint_every in 1u32..6,
        ops in prop::collection::vec(op(), 0..120),
    ) {
        let cfg = HistoryConfig { max_events, checkpoint_every };
        let mut h = Driver::with_orders(seed, replay_watermark, orders().history(cfg));
        // Flushes and reloads belong to the persistence harness: the history is not persisted.
        for op in ops.iter().filter(|op| !matches!(op, Op::Flush | Op::Reload(_))) {
            h.apply(op);
            check_history(&h, cfg)?;
        }
        h.settle();
        check_history(&h, cfg)?;
        let range = h.store.collection("orders").expect("watched").history();
        prop_assert!(range.is_ok(), "a settled store holds a history: {:?}", range);
    }
}

#[test]
fn history_is_off_by_default_and_says_why_it_cannot_answer() {
    let (store, _, _) = live_orders(vec![order("a", 1, 1)], 5);
    let view = store.collection("orders").expect("watched");
    assert_eq!(view.at(5), Err(HistoryError::Disabled("orders".into())));
    assert!(view.at(5).unwrap_err().to_string().contains("set `history`"));

    let todos = CollectionConfig::entity_events("todos")
        .on_upsert("subscription { onCreateTodo { id } }", "onCreateTodo")
        .list("query { listTodos { items { id } nextToken } }", "listTodos")
        .history(HistoryConfig::new(10));
    let store = Store::new(config(vec![todos]));
    assert_eq!(store.collection("todos").unwrap().history(), Err(HistoryError::NoSeqs("todos".into())));

    let store = Store::new(config(vec![orders_with_history(10, 4)]));
    let err = store.collection("orders").unwrap().at(0).unwrap_err();
    assert!(matches!(err, HistoryError::Empty(_)), "{err}");
}

#[test]
fn at_answers_each_seq_with_the_event_that_changed_each_row_and_leaves_the_live_rows_alone() {
    let mut store = Store::new(config(vec![orders_with_history(100, 2)]));
    let (socket, out) = go_live(&mut store, 0);
    let req = https(&out).pop().expect("a snapshot request");
    let out =
        store.handle(0, Input::Http { request_id: req.request_id, response: page(vec![order("a", 1, 1)], None, 10) });
    let id = subscribes(&out)[0].0.clone();
    store.handle(0, next(socket, &id, change(11, 10, "INSERT", Some("b"), Some(1), Some(order("b", 1, 2)))));
    store.handle(0, next(socket, &id, change(12, 11, "MODIFY", Some("a"), Some(2), Some(order("a", 2, 3)))));
    // A duplicate and a watermark change nothing but the end.
    store.handle(0, next(socket, &id, change(12, 11, "MODIFY", Some("a"), Some(2), Some(order("a", 2, 3)))));
    store.handle(0, next(socket, &id, change(14, 12, "WATERMARK", None, None, None)));
    store.handle(0, next(socket, &id, change(15, 14, "REMOVE", Some("b"), Some(1), None)));
    let view = store.collection("orders").unwrap();
    let range = view.history().unwrap();
    assert_eq!((range.first, range.last, range.events), (10, 15, 3));

    let at = |seq| {
        let at = view.at(seq).unwrap();
        let rows: Vec<(String, Value, i64, HistoryOp)> =
            at.rows.iter().map(|r| (r.key.clone(), (*r.row).clone(), r.seq, r.op)).collect();
        let changes: Vec<(String, HistoryOp)> = at.changes.iter().map(|c| (c.key.clone(), c.op)).collect();
        (rows, changes)
    };
    assert_eq!(at(10), (vec![("a".into(), order("a", 1, 1), 10, HistoryOp::Snapshot)], vec![]));
    assert_eq!(
        at(11),
        (
            vec![
                ("a".into(), order("a", 1, 1), 10, HistoryOp::Snapshot),
                ("b".into(), order("b", 1, 2), 11, HistoryOp::Insert)
            ],
            vec![("b".into(), HistoryOp::Insert)]
        )
    );
    let twelve = at(12);
    assert_eq!(twelve.0[0], ("a".into(), order("a", 2, 3), 12, HistoryOp::Update));
    assert_eq!(twelve.1, vec![("a".into(), HistoryOp::Update)]);
    assert_eq!(at(13).0, twelve.0, "a seq no event of the collection has shows the state before it");
    assert_eq!(at(13).1, vec![]);
    assert_eq!(
        at(15),
        (vec![("a".into(), order("a", 2, 3), 12, HistoryOp::Update)], vec![("b".into(), HistoryOp::Remove)])
    );
    assert_eq!(view.at(9), Err(HistoryError::OutOfRange { collection: "orders".into(), seq: 9, first: 10, last: 15 }));
    assert!(view.at(16).unwrap_err().to_string().contains("holds seqs 10 to 15"));
    assert_eq!(view.rows(), vec![order("a", 2, 3)], "the live rows are untouched");
}

#[test]
fn the_history_keeps_at_most_max_events_and_moves_its_base_by_checkpoints() {
    let (mut store, socket, id) = {
        let mut store = Store::new(config(vec![orders_with_history(6, 3)]));
        let (socket, out) = go_live(&mut store, 0);
        let req = https(&out).pop().unwrap();
        let out = store.handle(0, Input::Http { request_id: req.request_id, response: page(vec![], None, 0) });
        let id = subscribes(&out)[0].0.clone();
        (store, socket, id)
    };
    for seq in 1..=20 {
        store.handle(
            0,
            next(socket, &id, change(seq, seq - 1, "MODIFY", Some("a"), Some(seq), Some(order("a", seq, seq)))),
        );
        let range = store.collection("orders").unwrap().history().unwrap();
        assert!(range.events <= 6 && range.events >= (seq as usize).min(3), "{range:?}");
        assert!(range.checkpoints <= 3, "{range:?}");
    }
    let view = store.collection("orders").unwrap();
    let range = view.history().unwrap();
    assert_eq!(range.last, 20);
    for seq in range.first..=20 {
        let at = view.at(seq).unwrap();
        assert_eq!(*at.rows[0].row, order("a", seq.max(1), seq.max(1)));
        // Checkpoints sit at every third seq, the base on one of them: each seq still names its event.
        assert_eq!(at.changes, vec![ChangeAt { key: "a".into(), op: HistoryOp::Update }], "seq {seq}");
    }
}

#[test]
fn a_new_snapshot_starts_the_history_over_and_a_paged_one_counts_from_its_last_page() {
    let mut store = Store::new(config(vec![orders_with_history(100, 4).page_size(1)]));
    let (socket, out) = go_live(&mut store, 0);
    // Two pages, the second read after the server moved on to seq 12: the rows are exact only from 12 on.
    let req = https(&out).pop().unwrap();
    let out = store
        .handle(0, Input::Http { request_id: req.request_id, response: page(vec![order("a", 1, 1)], Some("a"), 10) });
    let req = https(&out).pop().unwrap();
    let out =
        store.handle(0, Input::Http { request_id: req.request_id, response: page(vec![order("b", 2, 2)], None, 12) });
    assert!(matches!(store.collection("orders").unwrap().history(), Err(HistoryError::Empty(_))));
    let id = subscribes(&out)[0].0.clone();
    store.handle(0, next(socket, &id, change(11, 10, "MODIFY", Some("b"), Some(2), Some(order("b", 2, 2)))));
    assert!(matches!(store.collection("orders").unwrap().history(), Err(HistoryError::Empty(_))));
    store.handle(0, next(socket, &id, change(12, 11, "MODIFY", Some("a"), Some(2), Some(order("a", 2, 5)))));
    let view = store.collection("orders").unwrap();
    assert_eq!(view.history().map(|r| (r.first, r.last)), Ok((12, 12)));
    assert!(matches!(view.at(11), Err(HistoryError::OutOfRange { first: 12, .. })));
    let rows = view.at(12).unwrap().rows;
    assert_eq!((rows[0].seq, rows[0].op), (12, HistoryOp::Update));
    assert_eq!((rows[1].seq, rows[1].op), (12, HistoryOp::Snapshot));

    // The cursor expires: a new snapshot at 30, and nothing before it is claimed.
    store.handle(0, frame(socket, &ServerMessage::Complete { id: id.clone() }));
    let out = store.handle(10_000, Input::Tick);
    let (sub, _) = subscribes(&out).pop().expect("a resubscribe");
    let out = store.handle(
        10_000,
        frame(
            socket,
            &ServerMessage::Error {
                id: sub,
                payload: vec![json!({"message": "x", "extensions": {"code": "CURSOR_EXPIRED"}})],
            },
        ),
    );
    let req = https(&out).pop().expect("a new snapshot");
    store.handle(10_000, Input::Http { request_id: req.request_id, response: page(vec![order("a", 9, 9)], None, 30) });
    let view = store.collection("orders").unwrap();
    assert_eq!(view.history().map(|r| (r.first, r.last, r.events)), Ok((30, 30, 0)));
    assert!(matches!(view.at(12), Err(HistoryError::OutOfRange { first: 30, last: 30, .. })));
}

#[test]
fn history_config_reads_from_json_and_rejects_zero() {
    let base = json!({
        "name": "orders", "subscription": "s", "subscriptionField": "f", "entityField": "order",
        "snapshotQuery": "q", "snapshotField": "listOrders"
    });
    let with = |history: Value| {
        let mut v = base.clone();
        v["history"] = history;
        serde_json::from_value::<CollectionConfig>(v)
    };
    assert_eq!(with(json!({"maxEvents": 50})).unwrap().history, Some(HistoryConfig::new(50)));
    assert_eq!(
        with(json!({"maxEvents": 50, "checkpointEvery": 5})).unwrap().history,
        Some(HistoryConfig { max_events: 50, checkpoint_every: 5 })
    );
    assert!(with(json!({"maxEvents": 0})).unwrap_err().to_string().contains("must be at least 1"));
    assert_eq!(serde_json::from_value::<CollectionConfig>(base).unwrap().history, None);
}
