//! Browser test of the Leptos adapter's time travel in headless Chromium against a real server behind the test
//! harness: the range signal follows the history, and `at_as` gives the typed rows as they were after each event.
//! Run with `cargo xtask test-browser`.
#![cfg(target_arch = "wasm32")]

#[path = "../../browser/tests/common/mod.rs"]
mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use leptos::prelude::*;
use serde_json::json;
use subsignal_browser::{Mutation, RowOrigin, StoreOptions};
use subsignal_leptos::{use_time_travel, HistoryConfig, HistoryError, HistoryOp};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The (id, status) of every order after each seq.
type Seen = Rc<RefCell<BTreeMap<i64, Vec<(String, String)>>>>;

#[wasm_bindgen_test]
async fn time_travel_follows_the_history_and_reads_typed_rows_at_each_seq() {
    let options =
        StoreOptions::new(format!("{}/graphql", base()), format!("{}/graphql", base().replacen("http", "ws", 1)))
            .token(token("bob").await)
            .collection(orders().history(HistoryConfig { max_events: 200, checkpoint_every: 2 }));
    let store = connected(options, "the orders collection to go live").await;
    // The live rows after each event, to compare the history with.
    let seen: Seen = Rc::default();
    let (s, log) = (store.clone(), seen.clone());
    let _guard = store.on_row(move |_, _, origin| {
        if let RowOrigin::Event { seq: Some(seq) } = origin {
            let rows = s.rows_as::<Order>("orders").expect("orders");
            log.borrow_mut().insert(*seq, rows.into_iter().map(|o| (o.id, o.status)).collect());
        }
    });

    let owner = Owner::new();
    owner.set();
    leptos::mount::mount_to_body(|| ());
    let travel = use_time_travel(&store, "orders");
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    Effect::new(move |_| {
        travel.range().track();
        r.fetch_add(1, Ordering::SeqCst);
    });
    gloo_timers::future::TimeoutFuture::new(50).await;
    let before = runs.load(Ordering::SeqCst);

    // No optimistic row: the history holds confirmed rows only, and so do the live rows here.
    let created = store
        .mutate(Mutation::new(create_document(), json!({ "input": order_input("travel") }), "createOrder"))
        .await
        .expect("created");
    let id = created["id"].as_str().expect("id").to_owned();
    let s = store.clone();
    wait_for("the worker to ship the order", Duration::from_secs(20), || {
        status_of(&s, &id).as_deref() == Some("SHIPPED")
    })
    .await;
    gloo_timers::future::TimeoutFuture::new(50).await;

    let range = travel.range().get_untracked().expect("a history");
    assert_eq!(Some(range), store.history("orders").ok());
    assert_eq!(Some(range.last), store.with_collection("orders", |c| c.and_then(|c| c.last_seq())));
    assert!(runs.load(Ordering::SeqCst) > before, "the range signal followed the events");
    let seen = seen.borrow();
    assert!(seen.len() >= 4, "the order's four events: {seen:?}");
    for (seq, rows) in seen.iter() {
        let past = travel.at_as::<Order>(*seq).expect("a seq held");
        let got: Vec<(String, String)> = past.rows.iter().map(|r| (r.row.id.clone(), r.row.status.clone())).collect();
        assert_eq!(&got, rows, "the rows after seq {seq}");
    }
    let (last_seq, _) = seen.iter().next_back().expect("an event");
    let shipped = travel.at_as::<Order>(*last_seq).expect("the last event");
    let row = shipped.rows.iter().find(|r| r.key == id).expect("the order");
    assert_eq!((row.seq, row.op, row.row.status.as_str()), (*last_seq, HistoryOp::Update, "SHIPPED"));
    assert_eq!(shipped.changes.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), vec![id.as_str()]);
    assert!(matches!(travel.at(range.last + 1), Err(HistoryError::OutOfRange { .. })));
    drop(owner);
}
