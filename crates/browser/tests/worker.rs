//! The store inside a `SharedWorker` (headless Chromium, against a real server behind the test harness): where the
//! shared mode's host runs when the browser has `SharedWorker`. A worker's global scope has no `window` and no
//! `localStorage`: the shell's WebSocket, fetch, timers, `crypto`, `navigator.onLine`, the `online`/`offline` events
//! and IndexedDB must work from `self`. Checks: a store connects, goes live and follows its mutation's order to the
//! end; a mutation queued while never connected is persisted to IndexedDB alone (no `localStorage` copy) and sent
//! once by the next store opened with the same key. Run with `cargo xtask test-browser`.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
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
    // A worker has no `localStorage`: the queue is in IndexedDB alone.
    assert_queue_outlives_its_store("worker").await;
}
