//! The store inside a `SharedWorker` (headless Chromium, against a real server behind the test harness): where the
//! shared mode's host runs when the browser has `SharedWorker`. A worker's global scope has no `window` and no
//! `localStorage`: the shell's WebSocket, fetch, timers, `crypto`, `navigator.onLine`, the `online`/`offline` events
//! and IndexedDB must work from `self`. Checks: a store connects, goes live and follows its mutation's order to the
//! end; a mutation queued while never connected is persisted to IndexedDB alone (no `localStorage` copy) and sent
//! once by the next store opened with the same key. Run with `cargo xtask test-browser`.
#![cfg(target_arch = "wasm32")]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use subsignal_browser::{BrowserStore, StoreOptions};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_shared_worker);

#[wasm_bindgen_test]
fn this_runs_in_a_shared_worker() {
    assert!(web_sys::window().is_none(), "no window here");
    let constructor = js_sys::Reflect::get(&js_sys::global(), &"constructor".into()).expect("a constructor");
    let name = js_sys::Reflect::get(&constructor, &"name".into()).expect("a name").as_string();
    assert_eq!(name.as_deref(), Some("SharedWorkerGlobalScope"), "the global scope is a SharedWorker's");
}

#[wasm_bindgen_test]
async fn a_store_in_a_shared_worker_goes_live_and_mutates() {
    let store = live_store("alice").await;
    let (_guard, seen) = record_statuses(&store);
    let pending = store.mutate(create_order("in-worker"));
    assert_eq!(status_of(&store, "tmp-in-worker").as_deref(), Some("SUBMITTED"), "the optimistic row shows at once");
    let order = pending.await.expect("createOrder succeeds");
    let id = order["id"].as_str().expect("id").to_owned();
    assert_followed_to_shipped(&store, &seen, &id, "every step is seen in the worker, in order").await;
}

#[wasm_bindgen_test]
async fn the_offline_queue_lives_in_indexeddb_in_a_worker() {
    let token = token("alice").await;
    let key = format!("subsignal-worker-queue-{}", js_sys::Date::now());
    let name = format!("worker-persisted-{}", js_sys::Date::now());
    let options = || {
        StoreOptions::new(format!("{}/graphql", base()), format!("{}/graphql", base().replacen("http", "ws", 1)))
            .token(token.clone())
            .collection(orders())
            .persist_key(key.clone())
    };
    {
        // Never connected: the mutation can only be queued; dropping the store writes it to IndexedDB.
        let first = BrowserStore::new(options());
        let _pending = first.mutate(create_order(&name));
        let f = first.clone();
        wait_for("the mutation to be queued", Duration::from_secs(10), move || f.status().pending_mutations == 1).await;
    }
    let second = BrowserStore::new(options());
    let s = second.clone();
    wait_for("the queue restored from IndexedDB", Duration::from_secs(10), move || s.status().pending_mutations == 1)
        .await;
    second.connect();
    let s = second.clone();
    let wanted = name.clone();
    wait_for("the restored mutation to be sent and its order to arrive", Duration::from_secs(30), move || {
        s.rows("orders")
            .iter()
            .any(|r| r["customerName"] == wanted.as_str() && !r["id"].as_str().is_some_and(|id| id.starts_with("tmp-")))
    })
    .await;
    let list = gql(&token, &snapshot(), json!({ "limit": 1000 })).await.expect("listOrders");
    let items = list["data"]["listOrders"]["items"].as_array().expect("items").clone();
    assert_eq!(items.iter().filter(|o| o["customerName"] == name.as_str()).count(), 1, "sent once");
    let s = second.clone();
    wait_for("the queue to empty", Duration::from_secs(10), move || s.status().pending_mutations == 0).await;
}
