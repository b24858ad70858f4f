//! Browser tests of `BrowserStore` in AppSync mode (`protocol: "appsync"`) in headless Chromium against subsignal's
//! AppSync endpoint (`/graphql/realtime`) behind the test harness: `start`-based subscription with a JWT in the
//! header object, the worker's steps, and after a server restart a catch-up by a fresh snapshot (AppSync never
//! replays). Run with `cargo xtask test-browser`.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use serde_json::json;
use subsignal_browser::{BrowserStore, ConnectionStatus, StoreOptions};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// A store in AppSync mode, the JWT as AppSync's `Authorization` entry (no `Bearer `), live on `orders`.
async fn appsync_store(user: &str) -> BrowserStore {
    let token = token(user).await;
    let ws = base().replacen("http", "ws", 1);
    let options = StoreOptions::new(format!("{}/graphql", base()), format!("{ws}/graphql"))
        .appsync(format!("{ws}/graphql/realtime"))
        .auth(json!({ "Authorization": token }))
        .collection(orders());
    connected(options, "the orders collection to go live over AppSync").await
}

#[wasm_bindgen_test]
async fn appsync_mode_subscribes_and_follows_the_worker() {
    let store = appsync_store("alice").await;
    let (_guard, seen) = record_statuses(&store);
    let order = store.mutate(create_order("appsync-worker")).await.expect("createOrder over HTTP with the same auth");
    let id = order["id"].as_str().expect("id").to_owned();
    assert_followed_to_shipped(&store, &seen, &id, "every step arrives as AppSync data").await;
}

/// The server stops and starts again; orders are created while the store is away. AppSync cannot replay, so the
/// store resubscribes, takes a fresh snapshot, and ends up row for row equal to the server.
#[wasm_bindgen_test]
async fn appsync_mode_catches_up_by_resnapshot_after_restart() {
    let store = appsync_store("alice").await;
    let token = token("alice").await;
    let recorder = record(&store);
    let before = store.with_collection("orders", |c| c.unwrap().stats());

    stop_server(&store).await;
    harness("start").await;
    let created = create_orders(&token, "appsync-behind", 3).await;
    assert_caught_up(&store, &token, &created, &recorder).await;
    let after = store.with_collection("orders", |c| c.unwrap().stats());
    assert!(after.snapshots > before.snapshots, "caught up by a fresh snapshot: {before:?} → {after:?}");
    assert!(after.subscriptions > before.subscriptions, "resubscribed after the restart");
    assert_eq!(after.gaps, 0, "no prevSeq gap logic in AppSync mode");
    let seen = recorder.statuses.borrow();
    assert!(seen.iter().any(|s| matches!(s, ConnectionStatus::Reconnecting { .. })), "reconnected: {seen:?}");
    assert_eq!(seen.last(), Some(&ConnectionStatus::Live), "ends live");
}
