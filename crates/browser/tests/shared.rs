//! Shared mode from Rust (`StoreOptions::shared`, what the Leptos adapter uses) in headless Chromium against a real
//! server behind the test harness. Two `BrowserStore`s in one page meet as two tabs would: the Web Lock is the
//! page's, and `BroadcastChannel` objects of one name hear each other within a page too. Checks, with a host tab
//! (`shared_in_tab`): the first store hosts, the second follows and shows the host's rows, live; a follower's
//! mutation resolves through the host and a conflict comes back whole (what `keep_mine` needs); dropping the host
//! hands the store to the follower, which connects on its own and keeps working. A worker that answers `failed`, or
//! nothing, leaves its tab to host. (`shared()` alone, where a `SharedWorker` runs the app's own build, is tested
//! with the web app in `tests/js/web/app.e2e.mjs`: this runner wraps every worker script in a new blob of its own, so
//! that two stores here would never meet in one worker.) Run with `cargo xtask test-browser`.
#![cfg(target_arch = "wasm32")]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use subsignal_browser::{BrowserStore, ConnectionStatus, Mutation, MutationError, StoreOptions};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Options for alice with the orders collection; `key` names the lock and channel, or the worker (one per test).
async fn options(key: &str) -> StoreOptions {
    StoreOptions::new(format!("{}/graphql", base()), format!("{}/graphql", base().replacen("http", "ws", 1)))
        .token(token("alice").await)
        .collection(orders())
        .persist_key(key)
}

/// Shared options with a host tab (where the browser has `SharedWorker`, too).
async fn shared_options(key: &str) -> StoreOptions {
    options(key).await.shared_in_tab()
}

/// A shared store, connected, once it has the role `host` and its orders are live.
async fn shared_store(options: StoreOptions, host: bool) -> BrowserStore {
    let store = BrowserStore::new(options);
    store.connect();
    let s = store.clone();
    let what = if host { "the first store to host, live" } else { "the second store to follow, live" };
    wait_for(what, Duration::from_secs(20), move || {
        s.is_host() == Some(host) && s.with_collection("orders", |c| c.is_some_and(|c| c.is_live()))
    })
    .await;
    store
}

fn update(id: &str, name: &str, version: i64) -> Mutation {
    let document = format!(
        "mutation($input: UpdateOrderInput!, $v: Int!, $clientMutationId: ID) {{ updateOrder(input: $input, \
         expectedVersion: $v, clientMutationId: $clientMutationId) {{ {ORDER_FIELDS} }} }}"
    );
    Mutation::new(document, json!({ "input": { "id": id, "customerName": name }, "v": version }), "updateOrder")
        .version_variable("v")
}

#[wasm_bindgen_test]
async fn a_follower_shows_the_hosts_rows_and_mutates_through_it() {
    let options = shared_options("shared-rust-follow").await;
    let host = shared_store(options.clone(), true).await;
    let follower = shared_store(options, false).await;
    assert_eq!(follower.keys("orders"), host.keys("orders"), "the follower shows the host's rows");
    assert_eq!(follower.status().connection, ConnectionStatus::Live, "and its status");

    // The follower's mutation goes through the host; its answer comes back to the follower's future.
    let order = follower.mutate(create_order("shared follower")).await.expect("created through the host");
    let id = order["id"].as_str().expect("id").to_owned();
    let (h, f, key) = (host.clone(), follower.clone(), id.clone());
    wait_for("the order in both stores", Duration::from_secs(20), move || {
        h.row("orders", &key).is_some() && f.row("orders", &key) == h.row("orders", &key)
    })
    .await;
    // The host's status (one message after the answer) counts the queue, empty again.
    let f = follower.clone();
    wait_for("the follower's status to count no pending mutation", Duration::from_secs(20), move || {
        f.status().pending_mutations == 0
    })
    .await;

    // A stale edit from the follower comes back as a whole conflict, which the follower can resolve.
    let conflict = match follower.mutate(update(&id, "Changed in a follower", 0)).await {
        Err(MutationError::Conflict(conflict)) => conflict,
        other => panic!("expected a conflict, got {other:?}"),
    };
    assert_eq!(conflict.theirs.as_ref().map(|t| t["id"].clone()), Some(json!(id)));
    assert_eq!(conflict.mine, json!({ "customerName": "Changed in a follower" }));
    let mut resend = conflict.keep_mine().expect("a resend").expect("something to send");
    let written = loop {
        match follower.mutate(resend).await {
            Ok(written) => break written,
            Err(MutationError::Conflict(again)) if !again.has_conflicts() => {
                resend = again.keep_mine().expect("a resend").expect("something to send");
            }
            other => panic!("expected mine to be kept, got {other:?}"),
        }
    };
    assert_eq!(written["customerName"], json!("Changed in a follower"));
}

#[wasm_bindgen_test]
async fn dropping_the_host_hands_the_store_to_the_follower() {
    let options = shared_options("shared-rust-takeover").await;
    let host = shared_store(options.clone(), true).await;
    let follower = shared_store(options, false).await;
    let shown = follower.keys("orders");
    drop(host);

    let f = follower.clone();
    wait_for("the follower to host, live on its own connection", Duration::from_secs(20), move || {
        f.is_host() == Some(true)
            && f.status().connection == ConnectionStatus::Live
            && f.with_collection("orders", |c| c.is_some_and(|c| c.is_live()))
    })
    .await;
    for key in &shown {
        assert!(follower.row("orders", key).is_some(), "row {key} is still shown after the takeover");
    }
    let order = follower.mutate(create_order("after the takeover")).await.expect("created by the new host");
    assert!(follower.row("orders", order["id"].as_str().expect("id")).is_some());
}

/// The URL of a worker script made of `script`.
fn worker_script(script: &str) -> String {
    let blob = web_sys::Blob::new_with_str_sequence(&js_sys::Array::of1(&script.into())).expect("a blob");
    web_sys::Url::create_object_url_with_blob(&blob).expect("its URL")
}

/// A store of `key` given the worker `script`, once it has given the worker up and hosts, live.
async fn hosts_instead_of(key: &str, script: &str) {
    let store = BrowserStore::new(options(key).await.shared_worker(worker_script(script)));
    store.connect();
    let s = store.clone();
    wait_for("the tab to host instead of its worker, live", Duration::from_secs(40), move || {
        !s.follows_worker()
            && s.is_host() == Some(true)
            && s.with_collection("orders", |c| c.is_some_and(|c| c.is_live()))
    })
    .await;
}

#[wasm_bindgen_test]
async fn a_worker_that_cannot_host_hands_over_to_a_host_tab() {
    // As `shared_worker.js` answers every tab when the app's code did not load.
    let script = r#"self.onconnect = (e) => e.ports[0].postMessage(JSON.stringify({ t: "failed", err: { message: "no app" } }));"#;
    hosts_instead_of("shared-rust-failed-worker", script).await;
}

#[wasm_bindgen_test]
async fn a_worker_that_never_answers_is_given_up() {
    // Loads, throws nothing, answers nothing: after its deadline (15 s) the tab hosts.
    hosts_instead_of("shared-rust-silent-worker", "self.onconnect = () => {};").await;
}
