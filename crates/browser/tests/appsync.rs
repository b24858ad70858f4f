//! Browser tests of `BrowserStore` in AppSync mode (`protocol: "appsync"`) in headless Chromium against subsignal's
//! AppSync endpoint (`/graphql/realtime`) behind the test harness: `start`-based subscription with a JWT in the
//! header object, the worker's steps, and after a server restart a catch-up by a fresh snapshot (AppSync never
//! replays). Run with `cargo xtask test-browser`.
#![cfg(target_arch = "wasm32")]

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

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
    let store = BrowserStore::new(options);
    store.connect();
    let s = store.clone();
    wait_for("the orders collection to go live over AppSync", Duration::from_secs(20), move || {
        s.with_collection("orders", |c| c.is_some_and(|c| c.is_live()))
    })
    .await;
    store
}

#[wasm_bindgen_test]
async fn appsync_mode_subscribes_and_follows_the_worker() {
    let store = appsync_store("alice").await;
    let seen: Rc<RefCell<Vec<(String, String)>>> = Rc::default();
    let (s, log) = (store.clone(), seen.clone());
    let _guard = store.on_row(move |_, change| {
        let status = s.row("orders", change.key()).and_then(|r| r["status"].as_str().map(str::to_owned));
        log.borrow_mut().push((change.key().to_owned(), status.unwrap_or_default()));
    });
    let order = store.mutate(create_order("appsync-worker")).await.expect("createOrder over HTTP with the same auth");
    let id = order["id"].as_str().expect("id").to_owned();
    let s = store.clone();
    wait_for("the worker to ship the order", Duration::from_secs(20), || {
        status_of(&s, &id).as_deref() == Some("SHIPPED")
    })
    .await;
    let steps: Vec<String> = seen.borrow().iter().filter(|(k, _)| *k == id).map(|(_, s)| s.clone()).collect();
    let mut distinct = steps.clone();
    distinct.dedup();
    let tail: Vec<&str> = distinct.iter().map(String::as_str).skip_while(|s| *s == "SUBMITTED").collect();
    assert_eq!(tail, ["PAID", "PREPARING", "SHIPPED"], "every step arrives as AppSync data (saw {steps:?})");
    assert_eq!(store.status().pending_mutations, 0);
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
