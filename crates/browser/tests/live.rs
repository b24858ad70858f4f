//! Browser tests of `BrowserStore` in headless Chromium against a real `subsignal serve` behind the test harness:
//! snapshot and subscription, the worker's steps, typed errors, and reconnect with catch-up after a server restart.
//! Run with `cargo xtask test-browser` (it starts the harness and passes its URL at compile time).
#![cfg(target_arch = "wasm32")]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use subsignal_browser::{ConnectionStatus, MutationError};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// A mutation shows optimistically, settles with the server's order, and the worker's steps arrive as row updates.
#[wasm_bindgen_test]
async fn subscribes_and_follows_the_worker() {
    let store = live_store("alice").await;
    let (_guard, seen) = record_statuses(&store);

    let pending = store.mutate(create_order("worker"));
    assert_eq!(status_of(&store, "tmp-worker").as_deref(), Some("SUBMITTED"), "the optimistic row shows at once");
    assert_eq!(store.status().pending_mutations, 1);
    let order = pending.await.expect("createOrder succeeds");
    let id = order["id"].as_str().expect("id").to_owned();
    assert!(status_of(&store, "tmp-worker").is_none(), "the temporary row is replaced by the server's");
    assert_followed_to_shipped(&store, &seen, &id, "every step is seen, in order").await;
}

/// Typed errors: a validation failure names the field; a stale `expectedVersion` is a conflict with the current order.
#[wasm_bindgen_test]
async fn mutation_errors_are_typed() {
    let store = live_store("alice").await;
    let mut bad = create_order("invalid");
    bad.variables["input"]["email"] = json!("not-an-email");
    match store.mutate(bad).await {
        Err(MutationError::Validation { fields }) => {
            assert!(fields.iter().any(|f| f.field == "email"), "email is named: {fields:?}")
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert!(status_of(&store, "tmp-invalid").is_none(), "the optimistic row is rolled back");

    let order = store.mutate(create_order("conflict")).await.expect("created");
    let id = order["id"].as_str().unwrap().to_owned();
    let update = format!(
        "mutation($input: UpdateOrderInput!, $v: Int!, $clientMutationId: ID) {{ updateOrder(input: $input, \
         expectedVersion: $v, clientMutationId: $clientMutationId) {{ {ORDER_FIELDS} }} }}"
    );
    let input = json!({ "id": id, "customerName": "Changed" });
    let stale = subsignal_browser::Mutation::new(update, json!({ "input": input, "v": 0 }), "updateOrder")
        .version_variable("v");
    let conflict = match store.mutate(stale).await {
        Err(MutationError::Conflict(conflict)) => conflict,
        other => panic!("expected a conflict, got {other:?}"),
    };
    let theirs = conflict.theirs.clone().expect("the current order");
    assert_eq!(theirs["id"], json!(id));
    assert_eq!(conflict.mine, json!({ "customerName": "Changed" }));
    // Keep mine: the same change on top of the server's row goes through (again, if the worker moved the order on
    // meanwhile: that conflict touches only its status, so keeping mine loses nothing).
    let mut resend = conflict.keep_mine().expect("a resend").expect("something to send");
    assert_eq!(resend.variables["v"], theirs["version"]);
    let written = loop {
        match store.mutate(resend).await {
            Ok(written) => break written,
            Err(MutationError::Conflict(again)) if !again.has_conflicts() => {
                resend = again.keep_mine().expect("a resend").expect("something to send");
            }
            other => panic!("expected mine to be kept, got {other:?}"),
        }
    };
    assert_eq!(written["customerName"], json!("Changed"));
}

/// The server stops (sockets drop) and starts again; meanwhile orders are created behind the store's back and one
/// mutation waits in the offline queue. The store reconnects, resumes from its last seq without a new snapshot, and
/// ends up row for row equal to the server.
#[wasm_bindgen_test]
async fn reconnects_after_restart_and_catches_up() {
    let store = live_store("alice").await;
    let token = token("alice").await;
    let recorder = record(&store);
    let before = store.with_collection("orders", |c| c.unwrap().stats());

    stop_server(&store).await;
    // Queued while the server is down: it must survive and go through after the restart.
    let queued = store.mutate(create_order("offline"));
    assert_eq!(store.status().pending_mutations, 1);

    harness("start").await;
    let mut created = create_orders(&token, "behind", 3).await;
    let offline_id = queued.await.expect("the queued mutation goes through")["id"].as_str().unwrap().to_owned();
    created.push(offline_id);

    // Row for row equal to the server's list.
    assert_caught_up(&store, &token, &created, &recorder).await;
    let after = store.with_collection("orders", |c| c.unwrap().stats());
    assert_eq!(after.snapshots, before.snapshots, "caught up by replay from lastSeq, not by a new snapshot");
    assert!(after.subscriptions > before.subscriptions, "resubscribed after the restart");
    let seen = recorder.statuses.borrow();
    assert!(
        seen.iter().any(|s| matches!(s, ConnectionStatus::Reconnecting { .. })),
        "went through reconnecting: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&ConnectionStatus::Live), "ends live");
}

/// The offline queue is persisted under the persist key (IndexedDB, with a synchronous `localStorage` copy until
/// the IndexedDB write commits): a store that goes away with a mutation still queued hands it to the next store
/// opened with the same key (as after a page reload), which sends it.
#[wasm_bindgen_test]
async fn the_offline_queue_survives_a_reload() {
    assert_queue_outlives_its_store("page").await;
}

/// A WebSocket the page opened before the store existed (`globalThis.subsignalPreconnect`) is the one the store
/// uses when it goes to the same address, whether it is still opening or already open; one to another address is
/// closed and the store opens its own.
#[wasm_bindgen_test]
async fn the_store_takes_the_pages_preconnected_socket() {
    let ws_url = format!("{}/graphql", base().replacen("http", "ws", 1));
    let key = wasm_bindgen::JsValue::from_str("subsignalPreconnect");
    for open_first in [false, true] {
        let early = web_sys::WebSocket::new_with_str(&ws_url, "graphql-transport-ws").expect("a WebSocket");
        js_sys::Reflect::set(&js_sys::global(), &key, &early).unwrap();
        if open_first {
            let probe = early.clone();
            wait_for("the early socket to open", Duration::from_secs(10), move || {
                probe.ready_state() == web_sys::WebSocket::OPEN
            })
            .await;
        }
        let store = live_store("alice").await;
        assert!(js_sys::Reflect::get(&js_sys::global(), &key).unwrap().is_undefined(), "taken once");
        assert!(early.onmessage().is_some(), "the store reads the early socket (open first: {open_first})");
        assert_eq!(early.ready_state(), web_sys::WebSocket::OPEN);
        drop(store);
    }

    // The page may also have said `connection_init` (and heard the ack) before the store took the socket: the store
    // does not say it again, and hears the ack the page kept. With other credentials the socket is closed and the
    // store connects on its own.
    let token = token("alice").await;
    for (credentials, taken) in [(format!("Bearer {token}"), true), ("Bearer someone-else".to_owned(), false)] {
        let early = web_sys::WebSocket::new_with_str(&ws_url, "graphql-transport-ws").expect("a WebSocket");
        let received = js_sys::Array::new();
        js_sys::Reflect::set(&early, &"subsignalReceived".into(), &received).unwrap();
        let keep = received.clone();
        let on_message =
            wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                keep.push(&e.data());
            });
        early.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let probe = early.clone();
        wait_for("the early socket to open", Duration::from_secs(10), move || {
            probe.ready_state() == web_sys::WebSocket::OPEN
        })
        .await;
        let init = json!({ "type": "connection_init", "payload": { "Authorization": credentials } }).to_string();
        js_sys::Reflect::set(&early, &"subsignalInit".into(), &init.clone().into()).unwrap();
        early.send_with_str(&init).unwrap();
        if taken {
            let heard = received.clone();
            wait_for("the page to hear the ack", Duration::from_secs(10), move || heard.length() == 1).await;
        }
        js_sys::Reflect::set(&js_sys::global(), &key, &early).unwrap();
        let store = live_store_with(&token).await;
        // Taken, the page's socket is the store's live connection (a second connection_init would have closed it
        // with 4429); refused, it was closed.
        assert_eq!(early.ready_state() == web_sys::WebSocket::OPEN, taken, "taken: {taken}");
        drop(store);
        drop(on_message);
    }

    let elsewhere = web_sys::WebSocket::new(&format!("{ws_url}?elsewhere")).expect("a WebSocket");
    js_sys::Reflect::set(&js_sys::global(), &key, &elsewhere).unwrap();
    let _store = live_store("alice").await;
    assert!(elsewhere.onmessage().is_none(), "a socket to another address is not used");
    let probe = elsewhere.clone();
    wait_for("the unused socket to close", Duration::from_secs(10), move || {
        probe.ready_state() == web_sys::WebSocket::CLOSED
    })
    .await;
}

/// A snapshot the page asked for before the store existed (`globalThis.subsignalPrefetch`) answers the store's first
/// snapshot request when it is exactly that request: address, headers and body. Otherwise the store sends its own
/// and leaves the page's where it was; and when the page's request failed, the store sends its own too.
#[wasm_bindgen_test]
async fn the_store_takes_the_pages_prefetched_snapshot_only_when_it_is_its_own_request() {
    let key = wasm_bindgen::JsValue::from_str("subsignalPrefetch");
    let token = token("alice").await;
    let url = format!("{}/graphql", base());
    let auth = json!({ "Authorization": format!("Bearer {token}") });
    let body = json!({ "query": snapshot(), "variables": { "nextToken": null } });
    // The server's answer with one more row, which the server does not have: the rows tell whose answer was used.
    let mut answer = gql(&token, &snapshot(), json!({ "nextToken": null })).await.expect("listOrders");
    let made_up = json!({ "id": "prefetched-only", "owner": "alice", "customerName": "Made up", "email": "a@example.com",
        "items": [], "totalCents": 0, "status": "SUBMITTED", "version": 1, "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z", "expiresAt": null });
    answer["data"]["listOrders"]["items"].as_array_mut().expect("items").push(made_up);
    let other_body = json!({ "query": snapshot(), "variables": { "nextToken": null, "limit": 5 } });
    let other_auth = json!({ "Authorization": "Bearer someone-else" });
    // Header names are the same in any case; `content-type` is the page's to send.
    let same_auth = json!({ "authorization": format!("Bearer {token}"), "Content-Type": "application/json" });
    let cases = [
        ("the same request", &url, &auth, &body, true, true),
        ("the same request, its headers written otherwise", &url, &same_auth, &body, true, true),
        ("another address", &format!("{url}?elsewhere"), &auth, &body, true, false),
        ("other variables", &url, &auth, &other_body, true, false),
        ("other credentials", &url, &other_auth, &body, true, false),
        ("the same request, which failed", &url, &auth, &body, false, false),
    ];
    for (case, url, headers, body, answered, taken) in cases {
        let response: wasm_bindgen::JsValue = if answered {
            web_sys::Response::new_with_opt_str(Some(&answer.to_string())).expect("a Response").into()
        } else {
            // As index.html keeps a failed fetch: its error as the promise's value.
            js_sys::Error::new("Failed to fetch").into()
        };
        let entry = js_sys::Object::new();
        for (name, value) in [
            ("url", wasm_bindgen::JsValue::from_str(url)),
            ("headers", js_sys::JSON::parse(&headers.to_string()).unwrap()),
            ("body", wasm_bindgen::JsValue::from_str(&body.to_string())),
            ("response", js_sys::Promise::resolve(&response).into()),
        ] {
            js_sys::Reflect::set(&entry, &name.into(), &value).unwrap();
        }
        js_sys::Reflect::set(&js_sys::global(), &key, &js_sys::Array::of1(&entry)).unwrap();
        let store = live_store_with(&token).await;
        let left = js_sys::Reflect::get(&js_sys::global(), &key).unwrap();
        let used = store.keys("orders").iter().any(|k| k == "prefetched-only");
        if taken {
            assert!(used, "{case}: the store's rows are the page's answer");
            assert!(left.is_undefined(), "{case}: the page's request is taken");
        } else {
            assert!(!used, "{case}: the store used an answer that was not to its request");
        }
        if !answered {
            assert!(left.is_undefined(), "{case}: the page's request was taken, then found failed");
        } else if !taken {
            assert_eq!(js_sys::Array::from(&left).length(), 1, "{case}: the page's request is left where it was");
        }
        js_sys::Reflect::delete_property(js_sys::global().unchecked_ref::<js_sys::Object>(), &key).unwrap();
        drop(store);
    }
}
