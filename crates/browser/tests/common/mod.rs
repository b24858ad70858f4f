//! Shared helpers of the browser tests: the harness URL, GraphQL documents for orders, HTTP calls, waiting.

#![allow(dead_code, unreachable_pub)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gloo_timers::future::TimeoutFuture;
use serde_json::{json, Value};
use subsignal_browser::{BrowserStore, CollectionConfig, ListenerGuard, Mutation, Optimistic, StoreOptions};

/// The harness's URL, fixed when the tests were compiled by `cargo xtask test-browser`.
pub fn base() -> &'static str {
    match option_env!("SUBSIGNAL_TEST_URL") {
        Some(url) if !url.is_empty() => url,
        _ => panic!(
            "SUBSIGNAL_TEST_URL was not set when these tests were compiled: run them with `cargo xtask test-browser`, \
             which starts the server harness"
        ),
    }
}

/// An order as the tests read it back from a row.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: String,
    pub customer_name: String,
    pub status: String,
    pub version: i64,
}

pub const ORDER_FIELDS: &str =
    "id owner customerName email items { sku quantity unitPriceCents } totalCents status version createdAt updatedAt expiresAt";

pub fn subscription() -> String {
    format!(
        "subscription($afterSeq: Int) {{ onOrderChanged(afterSeq: $afterSeq) {{ seq prevSeq op key version expired \
         order {{ {ORDER_FIELDS} }} }} }}"
    )
}

pub fn snapshot() -> String {
    format!(
        "query($limit: Int, $nextToken: String) {{ listOrders(limit: $limit, nextToken: $nextToken) \
         {{ items {{ {ORDER_FIELDS} }} nextToken seq }} }}"
    )
}

pub fn create_document() -> String {
    format!(
        "mutation($input: CreateOrderInput!, $clientMutationId: ID) \
         {{ createOrder(input: $input, clientMutationId: $clientMutationId) {{ {ORDER_FIELDS} }} }}"
    )
}

pub fn orders() -> CollectionConfig {
    CollectionConfig::new("orders")
        .subscription(subscription(), "onOrderChanged", "order")
        .snapshot(snapshot(), "listOrders")
}

pub fn order_input(name: &str) -> Value {
    json!({ "customerName": name, "email": "alice@example.com", "items": [{ "sku": "TEA", "quantity": 2, "unitPriceCents": 450 }] })
}

/// A `createOrder` mutation with an optimistic row under a temporary key.
pub fn create_order(name: &str) -> Mutation {
    let temp = format!("tmp-{name}");
    let mut row = order_input(name);
    row["id"] = json!(temp);
    row["status"] = json!("SUBMITTED");
    Mutation::new(create_document(), json!({ "input": order_input(name) }), "createOrder")
        .optimistic("orders", Optimistic::Upsert { row })
}

pub async fn token(user: &str) -> String {
    let res =
        gloo_net::http::Request::get(&format!("{}/dev/token?user={user}", base())).send().await.expect("dev token");
    let body: Value = res.json().await.expect("token json");
    body["token"].as_str().expect("token").to_owned()
}

/// POSTs a GraphQL request through the harness; `Err` if the server is unreachable.
pub async fn gql(token: &str, query: &str, variables: Value) -> Result<Value, String> {
    let res = gloo_net::http::Request::post(&format!("{}/graphql", base()))
        .header("authorization", &format!("Bearer {token}"))
        .json(&json!({ "query": query, "variables": variables }))
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if res.status() != 200 {
        return Err(format!("HTTP {}", res.status()));
    }
    res.json().await.map_err(|e| e.to_string())
}

pub async fn harness(command: &str) {
    let res = gloo_net::http::Request::post(&format!("{}/__harness/{command}", base())).send().await.expect("harness");
    assert_eq!(res.status(), 200, "harness {command} failed: {:?}", res.text().await);
}

/// Polls `check` every 20 ms until it is true, or panics with `what` after `timeout`.
pub async fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = js_sys::Date::now();
    while !check() {
        if js_sys::Date::now() - start > timeout.as_millis() as f64 {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        TimeoutFuture::new(20).await;
    }
}

pub async fn live_store(user: &str) -> BrowserStore {
    live_store_with(&token(user).await).await
}

/// [`live_store`] with this very token: a dev token asked for again may be another (it carries its issue time in
/// seconds), for a test that compares what the store sends with what the page sent.
pub async fn live_store_with(token: &str) -> BrowserStore {
    let options =
        StoreOptions::new(format!("{}/graphql", base()), format!("{}/graphql", base().replacen("http", "ws", 1)))
            .token(token)
            .collection(orders());
    connected(options, "the orders collection to go live").await
}

/// A store for `options`, connected, once its `orders` collection is live (`what` names the wait).
pub async fn connected(options: StoreOptions, what: &str) -> BrowserStore {
    let store = BrowserStore::new(options);
    store.connect();
    let s = store.clone();
    wait_for(what, Duration::from_secs(20), move || s.with_collection("orders", |c| c.is_some_and(|c| c.is_live())))
        .await;
    store
}

/// (key, status) pairs, in the order the store showed them.
pub type Statuses = Rc<RefCell<Vec<(String, String)>>>;

/// Every (key, status) the store's `orders` rows show, in order, while the guard lives.
pub fn record_statuses(store: &BrowserStore) -> (ListenerGuard, Statuses) {
    let seen = Statuses::default();
    let (s, log) = (store.clone(), seen.clone());
    let guard = store.on_row(move |_, change, _| {
        let status = status_of(&s, change.key());
        log.borrow_mut().push((change.key().to_owned(), status.unwrap_or_default()));
    });
    (guard, seen)
}

/// Waits for order `id` to be SHIPPED, then asserts that `seen` holds every worker step after SUBMITTED, in order.
pub async fn assert_followed_to_shipped(
    store: &BrowserStore,
    seen: &RefCell<Vec<(String, String)>>,
    id: &str,
    what: &str,
) {
    let s = store.clone();
    wait_for("the worker to ship the order", Duration::from_secs(20), || {
        status_of(&s, id).as_deref() == Some("SHIPPED")
    })
    .await;
    let steps: Vec<String> = seen.borrow().iter().filter(|(k, _)| k == id).map(|(_, s)| s.clone()).collect();
    let mut distinct = steps.clone();
    distinct.dedup();
    let tail: Vec<&str> = distinct.iter().map(String::as_str).skip_while(|s| *s == "SUBMITTED").collect();
    assert_eq!(tail, ["PAID", "PREPARING", "SHIPPED"], "{what} (saw {steps:?})");
    assert_eq!(store.status().pending_mutations, 0);
}

pub fn status_of(store: &BrowserStore, key: &str) -> Option<String> {
    store.row("orders", key).and_then(|r| r["status"].as_str().map(str::to_owned))
}

/// What a store went through during a test: its connection states, and the keys it saw inserted.
pub struct Recorder {
    pub statuses: std::rc::Rc<std::cell::RefCell<Vec<subsignal_browser::ConnectionStatus>>>,
    pub inserted: std::rc::Rc<std::cell::RefCell<std::collections::BTreeSet<String>>>,
    _guards: (subsignal_browser::ListenerGuard, subsignal_browser::ListenerGuard),
}

/// Starts recording `store`'s connection states and insertions.
pub fn record(store: &BrowserStore) -> Recorder {
    let statuses = std::rc::Rc::<std::cell::RefCell<Vec<_>>>::default();
    let log = statuses.clone();
    let status = store.on_status(move |s| log.borrow_mut().push(s.connection.clone()));
    let inserted = std::rc::Rc::<std::cell::RefCell<std::collections::BTreeSet<String>>>::default();
    let ins = inserted.clone();
    let rows = store.on_row(move |_, change, _| {
        if let subsignal_browser::RowChange::Inserted { key } = change {
            ins.borrow_mut().insert(key.clone());
        }
    });
    Recorder { statuses, inserted, _guards: (status, rows) }
}

/// Stops the server and waits until `store` notices.
pub async fn stop_server(store: &BrowserStore) {
    harness("stop").await;
    let s = store.clone();
    wait_for("the store to notice the server is gone", Duration::from_secs(20), move || {
        s.status().connection != subsignal_browser::ConnectionStatus::Live
    })
    .await;
}

/// Creates `n` orders named `{prefix}-{i}` behind the store's back; returns their ids.
pub async fn create_orders(token: &str, prefix: &str, n: usize) -> Vec<String> {
    let create = create_document();
    let mut created = Vec::new();
    for i in 0..n {
        let body =
            gql(token, &create, json!({ "input": order_input(&format!("{prefix}-{i}")) })).await.expect("create");
        created.push(body["data"]["createOrder"]["id"].as_str().expect("created id").to_owned());
    }
    created
}

/// Waits until every order in `created` has shipped in `store`, then checks that the store holds the server's list
/// row for row and that each created order arrived as an insertion.
pub async fn assert_caught_up(store: &BrowserStore, token: &str, created: &[String], recorder: &Recorder) {
    let s = store.clone();
    let ids = created.to_vec();
    wait_for("every order to arrive and ship", Duration::from_secs(30), move || {
        ids.iter().all(|id| status_of(&s, id).as_deref() == Some("SHIPPED"))
    })
    .await;
    let list = gql(token, &snapshot(), json!({ "limit": 1000 })).await.expect("listOrders");
    let server: Vec<Value> = list["data"]["listOrders"]["items"].as_array().expect("items").clone();
    let s = store.clone();
    let n = server.len();
    wait_for("the store to hold what the server holds", Duration::from_secs(20), move || s.keys("orders").len() == n)
        .await;
    for row in &server {
        let id = row["id"].as_str().unwrap();
        assert_eq!(store.row("orders", id).as_ref(), Some(row), "row {id} equals the server's");
    }
    for id in created {
        assert!(recorder.inserted.borrow().contains(id), "{id} arrived as an insertion");
    }
}

/// A mutation queued by a store that never connected outlives it: the next store of the same persist key (as after
/// a reload) holds it again, sends it, shows the server's row, and the server wrote it once. `prefix` names the key
/// and the order.
pub async fn assert_queue_outlives_its_store(prefix: &str) {
    let token = token("alice").await;
    let key = format!("subsignal-{prefix}-queue-{}", js_sys::Date::now());
    let name = format!("{prefix}-persisted-{}", js_sys::Date::now());
    let options = || {
        StoreOptions::new(format!("{}/graphql", base()), format!("{}/graphql", base().replacen("http", "ws", 1)))
            .token(token.clone())
            .collection(orders())
            .persist_key(key.clone())
    };
    {
        // Never connected: the mutation can only be queued (once the persisted image has been read back).
        let first = BrowserStore::new(options());
        let _pending = first.mutate(create_order(&name));
        let f = first.clone();
        wait_for("the mutation to be queued", Duration::from_secs(10), move || f.status().pending_mutations == 1).await;
    }
    let second = BrowserStore::new(options());
    let s = second.clone();
    wait_for("the queue restored", Duration::from_secs(10), move || s.status().pending_mutations == 1).await;
    second.connect();
    let s = second.clone();
    let wanted = name.clone();
    wait_for("the restored mutation to be sent and its order to arrive", Duration::from_secs(30), move || {
        // The server's row, not the restored optimistic one (whose key is `tmp-…`).
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
