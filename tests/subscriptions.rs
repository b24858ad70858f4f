use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use subsignal_server::clock::Clock;
use subsignal_server::config::Settings;
use subsignal_tests::{database_for, Backend, TestServer, Ws};

async fn worker_steps_reach_the_subscriber_in_order_with_a_prev_seq_chain(backend: Backend) {
    let t = TestServer::start(backend).await;
    let mut ws = Ws::connect(&t.ws(), &t.token("alice")).await;
    ws.subscribe_changes("1", Some(0)).await;
    t.client("alice").create_order("Ada", None).await;
    let mut statuses = Vec::new();
    let mut prev = 0;
    while statuses.last().map(String::as_str) != Some("SHIPPED") {
        let change = ws.next_change().await;
        assert_eq!(change["prevSeq"], prev, "the chain links every event to the previous one: {change}");
        prev = change["seq"].as_i64().unwrap();
        if change["op"] != "WATERMARK" {
            statuses.push(change["order"]["status"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(statuses, ["SUBMITTED", "PAID", "PREPARING", "SHIPPED"]);
}

async fn user_b_never_receives_user_a_orders_but_admin_sees_both(backend: Backend) {
    let t = TestServer::start(backend).await;
    let mut bob = Ws::connect(&t.ws(), &t.token("bob")).await;
    let mut admin = Ws::connect(&t.ws(), &t.token("admin")).await;
    bob.subscribe_changes("b", Some(0)).await;
    admin.subscribe_changes("a", Some(0)).await;
    t.client("alice").create_order("Ada", None).await;
    t.client("bob").create_order("Bob", None).await;

    let mut owners_seen_by_bob = Vec::new();
    let mut prev = 0;
    // Bob sees his own order's four steps; Alice's appear to him only as watermarks.
    while owners_seen_by_bob.len() < 4 {
        let change = bob.next_change().await;
        assert_eq!(change["prevSeq"], prev);
        prev = change["seq"].as_i64().unwrap();
        if change["op"] == "WATERMARK" {
            assert!(change["order"].is_null() && change["key"].is_null());
        } else {
            owners_seen_by_bob.push(change["order"]["owner"].as_str().unwrap().to_owned());
        }
    }
    assert!(owners_seen_by_bob.iter().all(|o| o == "bob"), "{owners_seen_by_bob:?}");
    // Nothing else of Alice's trickles in later.
    while let Some(subsignal_tests::Frame::Json(msg)) = bob.next_frame_within(Duration::from_millis(600)).await {
        assert_ne!(msg["payload"]["data"]["onOrderChanged"]["order"]["owner"], "alice", "{msg}");
    }

    let mut admin_owners = BTreeMap::new();
    while admin_owners.values().sum::<usize>() < 8 {
        let change = admin.next_real_change().await;
        *admin_owners.entry(change["order"]["owner"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(admin_owners, BTreeMap::from([("alice".to_owned(), 4), ("bob".to_owned(), 4)]));
}

async fn ttl_expiry_hides_the_order_and_reaches_the_subscriber_as_an_expired_remove(backend: Backend) {
    // The server's clock jumps over the order's ten minutes instead of the test sleeping through it.
    let t = TestServer::start_on_clock(database_for(backend).await, Clock::adjustable(), |s| Settings {
        step_delay_ms: Some(60_000),
        ..s
    })
    .await;
    let alice = t.client("alice");
    let mut ws = Ws::connect(&t.ws(), &t.token("alice")).await;
    ws.subscribe_changes("1", Some(0)).await;
    let created = alice
        .data(
            "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id expiresAt } }",
            json!({"input": {"customerName": "Brief", "email": "a@b.co", "items": [{"sku": "tea", "quantity": 1, "unitPriceCents": 1}], "expiresAt": t.clock.now_secs() + 600}}),
        )
        .await;
    let id = created["createOrder"]["id"].clone();
    assert_eq!(ws.next_real_change().await["op"], "INSERT");
    let get = "query($id: ID!) { getOrder(id: $id) { id } }";
    assert_eq!(alice.data(get, json!({"id": id})).await["getOrder"]["id"], id);
    t.clock.advance(Duration::from_secs(601));
    // Hidden at once, before the reaper has removed it.
    assert!(alice.data(get, json!({"id": id})).await["getOrder"].is_null());
    let removed = ws.next_real_change().await;
    assert_eq!(removed["op"], "REMOVE");
    assert_eq!(removed["expired"], true);
    assert_eq!(removed["key"], id);
}

async fn after_seq_replay_with_concurrent_writes_yields_each_seq_exactly_once(backend: Backend) {
    let t = TestServer::start(backend).await;
    let alice = t.client("alice");
    for i in 0..10 {
        alice.create_order(&format!("before {i}"), None).await;
    }
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let c = t.client("alice");
            tokio::spawn(async move {
                for i in 0..15 {
                    c.create_order(&format!("w{w}-{i}"), None).await;
                }
            })
        })
        .collect();
    let mut ws = Ws::connect(&t.ws(), &t.token("admin")).await;
    ws.subscribe_changes("r", Some(5)).await;
    for w in writers {
        w.await.unwrap();
    }
    // 70 orders, each INSERT plus three worker steps: 280 records in all.
    let mut seqs = Vec::new();
    let mut prev = 5;
    while seqs.last().copied().unwrap_or(0) < 280 {
        let change = ws.next_change().await;
        assert_eq!(change["prevSeq"], prev);
        prev = change["seq"].as_i64().unwrap();
        seqs.push(prev);
    }
    assert_eq!(seqs, (6..=280).collect::<Vec<i64>>(), "every seq after the cursor once, in order");
}

async fn a_cursor_older_than_retention_gets_cursor_expired(backend: Backend) {
    let t = TestServer::start_with(backend, |s| Settings { retention_secs: Some(1), step_delay_ms: Some(60_000), ..s })
        .await;
    t.client("alice").create_order("Old", None).await;
    // The pruner runs every second; give it time to drop the record.
    let mut expired = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut ws = Ws::connect(&t.ws(), &t.token("alice")).await;
        ws.subscribe_changes("1", Some(0)).await;
        let msg = ws.next_json().await;
        if msg["type"] == "error" {
            assert_eq!(msg["payload"][0]["extensions"]["code"], "CURSOR_EXPIRED", "{msg}");
            expired = true;
            break;
        }
    }
    assert!(expired, "the cursor should have expired");
    // A snapshot still works and reports where to resume.
    let list = t.client("alice").data("{ listOrders { items { id } seq } }", json!({})).await;
    assert_eq!(list["listOrders"]["items"].as_array().unwrap().len(), 1);
    let seq = list["listOrders"]["seq"].as_i64().unwrap();
    let mut ws = Ws::connect(&t.ws(), &t.token("alice")).await;
    ws.subscribe_changes("2", Some(seq)).await;
    // Resuming from the snapshot is quiet: the first event is the next write's, chained to the snapshot's seq.
    let next = t.client("alice").create_order("After the snapshot", None).await;
    let change = ws.next_change().await;
    assert_eq!(
        (change["op"].clone(), change["key"].clone(), change["prevSeq"].clone()),
        (json!("INSERT"), next["id"].clone(), json!(seq))
    );
}

async fn a_cursor_ahead_of_the_log_is_refused(backend: Backend) {
    let t = TestServer::start(backend).await;
    let mut ws = Ws::connect(&t.ws(), &t.token("alice")).await;
    ws.subscribe_changes("1", Some(999)).await;
    let msg = ws.next_json().await;
    assert_eq!(msg["type"], "error");
    assert_eq!(msg["payload"][0]["extensions"]["code"], "CURSOR_EXPIRED");
}

async fn an_event_echoes_the_client_mutation_id_of_its_write(backend: Backend) {
    let t = TestServer::start_with(backend, |s| Settings { step_delay_ms: Some(60_000), ..s }).await;
    let mut ws = Ws::connect(&t.ws(), &t.token("alice")).await;
    ws.subscribe_changes("1", Some(0)).await;
    t.client("alice").create_order("Echo", Some("m-echo")).await;
    let change = ws.next_real_change().await;
    assert_eq!(change["op"], "INSERT");
    assert_eq!(change["clientMutationId"], "m-echo", "the writer can match the event to its mutation: {change}");
    t.client("alice").create_order("Silent", None).await;
    assert!(ws.next_real_change().await["clientMutationId"].is_null());
}

subsignal_tests::on_both_backends!(
    an_event_echoes_the_client_mutation_id_of_its_write,
    worker_steps_reach_the_subscriber_in_order_with_a_prev_seq_chain,
    user_b_never_receives_user_a_orders_but_admin_sees_both,
    ttl_expiry_hides_the_order_and_reaches_the_subscriber_as_an_expired_remove,
    after_seq_replay_with_concurrent_writes_yields_each_seq_exactly_once,
    a_cursor_older_than_retention_gets_cursor_expired,
    a_cursor_ahead_of_the_log_is_refused,
);
