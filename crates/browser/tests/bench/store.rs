//! Store apply rate in headless Chromium: how many subscription events per second the store applies (frame text in,
//! row change out, changed row read back as a listener would) for 1000-event bursts — inserts into an empty list, then
//! updates into the 1000-row list. Printed, never asserted. Run with `cargo xtask bench-store`.
#![cfg(target_arch = "wasm32")]

use serde_json::{json, Value};
use subsignal_browser::CollectionConfig;
use subsignal_store::{HttpResponse, Input, Output, Store, StoreConfig};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const EVENTS: i64 = 1000;

fn order(i: i64, version: i64, status: &str) -> Value {
    json!({
        "id": format!("o{i:05}"), "owner": "alice", "customerName": format!("Customer {i}"), "email": "a@example.com",
        "items": [{ "sku": "TEA", "quantity": 2, "unitPriceCents": 450 }], "totalCents": 900, "status": status,
        "version": version, "createdAt": "2026-11-25T12:00:00Z", "updatedAt": "2026-11-25T12:00:00Z", "expiresAt": null
    })
}

fn frame(seq: i64, op: &str, row: Value) -> String {
    let change = json!({ "seq": seq, "prevSeq": seq - 1, "op": op, "key": row["id"], "version": row["version"],
        "expired": false, "order": row });
    json!({ "type": "next", "id": "s1", "payload": { "data": { "onOrderChanged": change } } }).to_string()
}

/// A store with a live, empty `orders` collection at seq 0 on socket 1.
fn live_store() -> Store {
    let cfg = CollectionConfig::new("orders")
        .subscription("subscription($afterSeq: Int) { … }", "onOrderChanged", "order")
        .snapshot("query { … }", "listOrders");
    let mut config = StoreConfig::new(7);
    config.collections.push(cfg);
    let mut store = Store::new(config);
    store.handle(0, Input::Connect);
    store.handle(0, Input::SocketOpened { socket: 1 });
    let out = store.handle(0, Input::Frame { socket: 1, text: r#"{"type":"connection_ack"}"#.into() });
    let request_id = out
        .iter()
        .find_map(|o| match o {
            Output::Http(r) => Some(r.request_id),
            _ => None,
        })
        .expect("a snapshot request");
    let body = json!({ "data": { "listOrders": { "items": [], "nextToken": null, "seq": 0 } } });
    store.handle(0, Input::Http { request_id, response: HttpResponse::Ok { body } });
    assert!(store.collection("orders").unwrap().is_live(), "the bench store is live");
    store
}

/// Applies the frames and reads back each changed row; returns events per second.
fn apply(store: &mut Store, frames: Vec<String>) -> f64 {
    let perf = web_sys::window().unwrap().performance().unwrap();
    let n = frames.len();
    let start = perf.now();
    let mut read = 0usize;
    for text in frames {
        for output in store.handle(1, Input::Frame { socket: 1, text }) {
            if let Output::Row { change, .. } = output {
                read += store.collection("orders").and_then(|c| c.row(change.key())).is_some() as usize;
            }
        }
    }
    let ms = perf.now() - start;
    assert_eq!(read, n, "every event changed one row");
    n as f64 / (ms / 1000.0)
}

#[wasm_bindgen_test]
fn store_apply_rate() {
    let mut store = live_store();
    let inserts = (1..=EVENTS).map(|i| frame(i, "INSERT", order(i, 1, "SUBMITTED"))).collect();
    let insert_rate = apply(&mut store, inserts);
    let updates = (1..=EVENTS).map(|i| frame(EVENTS + i, "MODIFY", order(i, 2, "PAID"))).collect();
    let update_rate = apply(&mut store, updates);
    assert_eq!(store.collection("orders").unwrap().keys().len(), EVENTS as usize);
    console_log!(
        "store bench (Chromium, wasm, debug={}): {EVENTS} inserts into an empty list: {insert_rate:.0} events/s; \
         {EVENTS} updates into a {EVENTS}-row list: {update_rate:.0} events/s",
        cfg!(debug_assertions)
    );
}
