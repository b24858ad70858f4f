//! The Leptos adapter on the entity-events source, in headless Chromium against a real server behind the test
//! harness: a live list on subsignal's generated `onCreateOrder`/`onUpdateOrder`/`onDeleteOrder` and `listOrders`
//! (the shape of an Amplify API) follows creates, the worker's status steps and deletes from another client, keeps
//! following after the server restarts, and equals a fresh `listOrders` with no row ever going back a version.
//! Run with `cargo xtask test-browser`.
#![cfg(target_arch = "wasm32")]

#[path = "../../browser/tests/common/mod.rs"]
mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use common::*;
use leptos::prelude::*;
use serde_json::{json, Value};
use subsignal_browser::{BrowserStore, StoreOptions};
use subsignal_leptos::{use_live_collection, CollectionConfig, Guarantee};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn token_of(user: &str) -> String {
    common::token(user).await
}

fn amplify_orders() -> CollectionConfig {
    let on = |field: &str| format!("subscription {{ {field} {{ {ORDER_FIELDS} }} }}");
    CollectionConfig::entity_events("orders")
        .on_upsert(on("onCreateOrder"), "onCreateOrder")
        .on_upsert(on("onUpdateOrder"), "onUpdateOrder")
        .on_remove(on("onDeleteOrder"), "onDeleteOrder")
        .list(
            format!(
                "query($limit: Int, $nextToken: String) {{ listOrders(limit: $limit, nextToken: $nextToken) \
                 {{ items {{ {ORDER_FIELDS} }} nextToken }} }}"
            ),
            "listOrders",
        )
        .page_size(5)
}

/// The server's orders for this token, as (id, status, version), sorted by id.
async fn server_orders(token: &str) -> Vec<(String, String, i64)> {
    let mut rows = Vec::new();
    let mut next: Value = Value::Null;
    loop {
        let query =
            "query($t: String) { listOrders(limit: 50, nextToken: $t) { items { id status version } nextToken } }";
        let page = gql(token, query, json!({ "t": next })).await.expect("listOrders")["data"]["listOrders"].clone();
        for item in page["items"].as_array().expect("items") {
            rows.push((
                item["id"].as_str().unwrap().to_owned(),
                item["status"].as_str().unwrap().to_owned(),
                item["version"].as_i64().unwrap(),
            ));
        }
        next = page["nextToken"].clone();
        if next.is_null() {
            break;
        }
    }
    rows.sort();
    rows
}

fn shown(store: &BrowserStore) -> Vec<(String, String, i64)> {
    store.with_collection("orders", |c| {
        let c = c.expect("watched");
        let mut rows: Vec<_> = c
            .keys()
            .iter()
            .filter_map(|k| c.get::<Order>(k).and_then(Result::ok))
            .map(|o| (o.id, o.status, o.version))
            .collect();
        rows.sort();
        rows
    })
}

async fn converges(store: &BrowserStore, token: &str, what: &str) {
    let start = js_sys::Date::now();
    loop {
        let want = server_orders(token).await;
        if shown(store) == want {
            return;
        }
        assert!(
            js_sys::Date::now() - start < 30_000.0,
            "{what}: the store shows {:?}, the server {want:?}",
            shown(store)
        );
        gloo_timers::future::TimeoutFuture::new(100).await;
    }
}

#[wasm_bindgen_test]
async fn an_amplify_shaped_list_follows_entity_events_and_converges_after_a_restart() {
    let token = token_of("alice").await;
    let options =
        StoreOptions::new(format!("{}/graphql", base()), format!("{}/graphql", base().replacen("http", "ws", 1)))
            .token(token.clone());
    let store = BrowserStore::new(options);
    store.connect();

    let owner = Owner::new();
    owner.set();
    leptos::mount::mount_to_body(|| ());
    let live = use_live_collection::<Order>(&store, amplify_orders());
    let s = store.clone();
    wait_for("the list to go live", Duration::from_secs(20), move || {
        s.with_collection("orders", |c| c.is_some_and(|c| c.is_live()))
    })
    .await;
    assert_eq!(store.with_collection("orders", |c| c.map(|c| c.guarantee())), Some(Guarantee::Converges));

    // Another client creates an order; the worker moves it to SHIPPED. Its row signal follows, never going back.
    let created =
        gql(&token, &create_document(), json!({ "input": order_input("entity-events") })).await.expect("create");
    let id = created["data"]["createOrder"]["id"].as_str().expect("id").to_owned();
    let key = id.clone();
    wait_for("the new order's row", Duration::from_secs(20), move || live.row(&key).is_some()).await;
    let row = live.row(&id).expect("row");
    let versions: Rc<RefCell<Vec<i64>>> = Rc::default();
    let seen = versions.clone();
    Effect::new(move |_| seen.borrow_mut().push(row.get().version));
    let key = id.clone();
    wait_for("the order to ship", Duration::from_secs(20), move || {
        live.get_untracked(&key).is_some_and(|o| o.status == "SHIPPED")
    })
    .await;
    converges(&store, &token, "after the worker's steps").await;

    // The server stops and starts again; meanwhile nothing is live. Writes after the restart show, and the list
    // equals the server's.
    harness("stop").await;
    harness("start").await;
    let second =
        gql(&token, &create_document(), json!({ "input": order_input("after-restart") })).await.expect("create");
    let second = second["data"]["createOrder"]["id"].as_str().expect("id").to_owned();
    let delete = "mutation($id: ID!) { deleteOrder(input: {id: $id}) { id } }";
    // Owners may not delete orders; the admin group may, and the owner's subscription sees it.
    gql(&token_of("admin").await, delete, json!({ "id": id })).await.expect("delete");
    let (gone, key) = (id.clone(), second.clone());
    wait_for("the delete and the new order", Duration::from_secs(30), move || {
        live.row(&gone).is_none() && live.get_untracked(&key).is_some_and(|o| o.status == "SHIPPED")
    })
    .await;
    converges(&store, &token, "after the restart").await;
    let versions = versions.borrow().clone();
    assert!(versions.windows(2).all(|w| w[0] <= w[1]), "the row went back a version: {versions:?}");
    let stats = store.with_collection("orders", |c| c.expect("watched").stats());
    assert!(stats.resyncs >= 1 && stats.events >= 4, "{stats:?}");
    owner.cleanup();
}
