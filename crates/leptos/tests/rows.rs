//! Browser tests of the Leptos adapter in headless Chromium against a real server behind the test harness: a change
//! to one order re-runs only the views of that order's row, and the key list changes only on insertion.
//! Run with `cargo xtask test-browser`.
#![cfg(target_arch = "wasm32")]

#[path = "../../browser/tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use leptos::prelude::*;
use serde_json::json;
use subsignal_browser::Mutation;
use subsignal_leptos::{use_live_collection, use_mutation, use_status, ConnectionStatus};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

async fn settle() {
    gloo_timers::future::TimeoutFuture::new(150).await;
}

#[wasm_bindgen_test]
async fn one_row_changes_one_signal() {
    let store = live_store("bob").await;
    // Two shipped orders: after this, the worker leaves them alone.
    let a = store.mutate(create_order("row-a")).await.expect("a")["id"].as_str().unwrap().to_owned();
    let b = store.mutate(create_order("row-b")).await.expect("b")["id"].as_str().unwrap().to_owned();
    let s = store.clone();
    let (wa, wb) = (a.clone(), b.clone());
    wait_for("both orders to ship", Duration::from_secs(20), move || {
        status_of(&s, &wa).as_deref() == Some("SHIPPED") && status_of(&s, &wb).as_deref() == Some("SHIPPED")
    })
    .await;

    let owner = Owner::new();
    owner.set();
    // Effects need an executor; mounting nothing starts it.
    leptos::mount::mount_to_body(|| ());
    let live = use_live_collection::<Order>(&store, orders());
    let status = use_status(&store);
    let mutate = use_mutation(&store);
    let (runs_a, runs_b, runs_keys) = (counter(), counter(), counter());
    let row_a = live.row(&a).expect("row a");
    let row_b = live.row(&b).expect("row b");
    let (ra, rb, rk) = (runs_a.clone(), runs_b.clone(), runs_keys.clone());
    Effect::new(move |_| {
        row_a.track();
        ra.fetch_add(1, Ordering::SeqCst);
    });
    let rb_sig = row_b;
    Effect::new(move |_| {
        rb_sig.track();
        rb.fetch_add(1, Ordering::SeqCst);
    });
    Effect::new(move |_| {
        live.keys().track();
        rk.fetch_add(1, Ordering::SeqCst);
    });
    settle().await;
    assert_eq!(status.connection.get_untracked(), ConnectionStatus::Live);
    let start = (runs_a.load(Ordering::SeqCst), runs_b.load(Ordering::SeqCst), runs_keys.load(Ordering::SeqCst));
    assert_eq!(start, (1, 1, 1), "each effect ran once");

    // Update B: only B's signal changes.
    let version = live.get_untracked(&b).unwrap().version;
    let update = format!(
        "mutation($id: ID!, $v: Int!, $clientMutationId: ID) {{ updateOrder(input: {{ id: $id, \
         customerName: \"Renamed\" }}, expectedVersion: $v, clientMutationId: $clientMutationId) {{ {ORDER_FIELDS} }} }}"
    );
    mutate.dispatch(Mutation::new(update, json!({ "id": b, "v": version }), "updateOrder"));
    let lb = live;
    let kb = b.clone();
    wait_for("B to be renamed", Duration::from_secs(20), move || {
        lb.get_untracked(&kb).is_some_and(|o| o.customer_name == "Renamed")
    })
    .await;
    settle().await;
    assert!(mutate.value().get_untracked().is_some_and(|r| r.is_ok()), "the action holds the result");
    assert_eq!(runs_a.load(Ordering::SeqCst), 1, "A's views did not re-run");
    assert!(runs_b.load(Ordering::SeqCst) >= 2, "B's views re-ran");
    assert_eq!(runs_keys.load(Ordering::SeqCst), 1, "an update leaves the key list alone");
    assert_eq!(row_b.get_untracked().customer_name, "Renamed");

    // A new order: the key list changes (once per insertion), A's row still does not.
    let c = store.mutate(create_order("row-c")).await.expect("c")["id"].as_str().unwrap().to_owned();
    let lc = live;
    wait_for("C to ship", Duration::from_secs(20), move || lc.get_untracked(&c).is_some_and(|o| o.status == "SHIPPED"))
        .await;
    settle().await;
    assert_eq!(runs_a.load(Ordering::SeqCst), 1, "A's views did not re-run");
    assert!(runs_keys.load(Ordering::SeqCst) >= 2, "the insertion changed the key list");
    assert_eq!(status.pending.get_untracked(), 0);
    owner.cleanup();
}
