//! `use_view` in headless Chromium against a real server behind the test harness: a filtered, sorted window of the
//! orders collection whose key list follows creates, whose rows are signals following the worker's status steps, and
//! which stays put while held; `loaded` and `stale` of a collection and a view, with the store from context. Run with
//! `cargo xtask test-browser`.
#![cfg(target_arch = "wasm32")]

#[path = "../../browser/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::*;
use leptos::prelude::*;
use serde_json::json;
use subsignal_browser::{BrowserStore, StoreOptions};
use subsignal_leptos::{
    provide_store, use_live_collection, use_mutation_as, use_store, use_view, CompareOp, Direction, Filter, ViewError,
    ViewSpec,
};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn a_view_shows_the_last_orders_by_name_its_rows_follow_the_worker_and_it_stays_put_while_held() {
    let store = live_store("alice").await;
    let token = token("alice").await;
    let owner = Owner::new();
    owner.set();
    // This test's orders except cancelled ones, by name, last first, two of them. The names are this run's, so that
    // a rerun against the same server sees only its own.
    let run = js_sys::Date::now() as u64;
    let names: [String; 4] = std::array::from_fn(|i| format!("leptos-view-{run}-{}", i + 1));
    // The window, last name first: of the first three orders, then with the fourth.
    let shown = [names[2].clone(), names[1].clone()];
    let newer = [names[3].clone(), names[2].clone()];
    let spec = ViewSpec::new()
        .filter(Filter::one_of("customerName", names.clone()).and(Filter::compare(
            "status",
            CompareOp::Ne,
            "CANCELLED",
        )))
        .order_by("customerName", Direction::Desc)
        .limit(2);
    let view = use_view::<Order>(&store, "orders", spec).expect("the orders collection is watched");
    assert!(matches!(use_view::<Order>(&store, "nope", ViewSpec::new()), Err(ViewError::UnknownCollection(_))));
    let names_shown = move || {
        view.keys()
            .get_untracked()
            .iter()
            .filter_map(|k| view.row(k))
            .map(|r| r.get_untracked().customer_name)
            .collect::<Vec<_>>()
    };

    for name in &names[..3] {
        gql(&token, &create_document(), json!({ "input": order_input(name) })).await.expect("create");
    }
    let expected = shown.clone();
    wait_for("the two last orders", Duration::from_secs(20), move || names_shown() == expected).await;
    // The rows are signals: the worker's steps reach them in place.
    let top = view.keys().get_untracked()[0].clone();
    let row = view.row(&top).expect("a row signal");
    wait_for("the top order to ship", Duration::from_secs(20), move || row.get_untracked().status == "SHIPPED").await;
    assert_eq!(view.state().get_untracked().total, 3);

    // Held: a new order and the worker's steps apply underneath; the window stays as it was.
    view.hold();
    gql(&token, &create_document(), json!({ "input": order_input(&names[3]) })).await.expect("create");
    let (s, fourth) = (store.clone(), names[3].clone());
    wait_for("the new order in the collection", Duration::from_secs(20), move || {
        s.rows_as::<Order>("orders").unwrap_or_default().iter().any(|o| o.customer_name == fourth)
    })
    .await;
    assert_eq!(names_shown(), shown);
    view.release();
    let top = newer[0].clone();
    wait_for("the released window", Duration::from_secs(5), move || names_shown()[0] == top).await;
    assert_eq!(names_shown(), newer);
    assert!(!view.state().get_untracked().held);
    owner.cleanup();
}

#[wasm_bindgen_test]
async fn loaded_turns_true_when_the_first_snapshot_arrives_even_an_empty_one() {
    // Loaded is the collection's own word, not inferred from rows: an empty snapshot changes no row, yet loads.
    let token = token("bob").await;
    let options =
        StoreOptions::new(format!("{}/graphql", base()), format!("{}/graphql", base().replacen("http", "ws", 1)))
            .token(token);
    let store = BrowserStore::new(options);
    let owner = Owner::new();
    owner.set();
    provide_store(store.clone());
    let orders = use_live_collection::<Order>(&use_store(), orders());
    let loaded = orders.loaded();
    assert!(!loaded.get_untracked(), "nothing has arrived before connecting");
    assert!(orders.state().get_untracked().stale);
    store.connect();
    wait_for("the first snapshot", Duration::from_secs(20), move || loaded.get_untracked()).await;
    // The snapshot is fetched while the socket opens: it may land before the connection is acknowledged, and the
    // collection is in step with the server (not stale) once its subscription is live too.
    let state = orders.state();
    wait_for("the collection in step", Duration::from_secs(20), move || !state.get_untracked().stale).await;
    let view = use_view::<Order>(&use_store(), "orders", ViewSpec::new()).expect("watched");
    assert!(view.loaded().get_untracked() && !view.state().get_untracked().stale);
    owner.cleanup();
}

#[wasm_bindgen_test]
async fn overlapping_mutations_each_get_their_own_answer() {
    let store = live_store("alice").await;
    let owner = Owner::new();
    owner.set();
    let create = use_mutation_as::<Order>(&store);
    // A refused order and a good one, both in flight at once (as optimistic mode allows).
    let mut refused = create_order("overlap-refused");
    refused.variables["input"]["email"] = serde_json::json!("not-an-email");
    let first = create.mutate(refused);
    let second = create.mutate(create_order("overlap-placed"));
    assert!(create.pending().get_untracked());
    assert!(
        matches!(first.await, Err(subsignal_leptos::MutationError::Validation { .. })),
        "the first keeps its error"
    );
    let placed = second.await.expect("the second is placed");
    assert_eq!(placed.customer_name, "overlap-placed");
    assert!(!create.pending().get_untracked());
    assert!(create.value().get_untracked().is_some_and(|r| r.is_ok()), "value holds the last answer");
    owner.cleanup();
}
