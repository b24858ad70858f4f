//! Several server instances on one PostgreSQL database: fan-out across instances, resuming on another instance after
//! one dies, concurrent writers on both, shared workers (leases) and the TTL reaper. These need PostgreSQL; see
//! `subsignal_tests::postgres_available`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use subsignal_server::clock::Clock;
use subsignal_server::config::Settings;
use subsignal_server::storage::{Item, Write};
use subsignal_tests::{
    database_for, fresh_postgres_schema, postgres_available, Backend, ServerProcess, TestServer, Ws,
};

/// Two in-process instances on one fresh schema.
async fn two_instances(tweak: fn(Settings) -> Settings) -> (TestServer, TestServer) {
    let a = TestServer::start_with(Backend::Postgres, tweak).await;
    let b = TestServer::start_on(a.database.clone(), tweak).await;
    (a, b)
}

/// Reads `onOrderChanged` events until one has seq `through`, checking the prevSeq chain from `prev`; returns the
/// seqs delivered (watermarks included).
async fn seqs_through(ws: &mut Ws, mut prev: i64, through: i64) -> Vec<i64> {
    let mut seqs = Vec::new();
    while prev < through {
        let change = ws.next_change().await;
        assert_eq!(change["prevSeq"], prev, "the chain links every event to the previous one: {change}");
        prev = change["seq"].as_i64().unwrap();
        seqs.push(prev);
    }
    seqs
}

#[tokio::test]
async fn a_subscriber_on_instance_a_receives_a_mutation_made_through_instance_b() {
    if !postgres_available() {
        return;
    }
    let (a, b) = two_instances(|s| s).await;
    let mut ws = Ws::connect(&a.ws(), &a.token("alice")).await;
    ws.subscribe_changes("1", Some(0)).await;
    let order = b.client("alice").create_order("Made on B", None).await;
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some("SHIPPED") {
        let change = ws.next_real_change().await;
        assert_eq!(change["key"], order["id"]);
        statuses.push(change["order"]["status"].as_str().unwrap().to_owned());
    }
    // The worker steps ran once, on whichever instance held the worker's lease.
    assert_eq!(statuses, ["SUBMITTED", "PAID", "PREPARING", "SHIPPED"]);
    // A snapshot taken through B resumes on A, though A may not have heard of B's last commit yet.
    let list = b.client("alice").data("{ listOrders { seq } }", json!({})).await;
    let seq = list["listOrders"]["seq"].as_i64().unwrap();
    let mut again = Ws::connect(&a.ws(), &a.token("alice")).await;
    again.subscribe_changes("2", Some(seq)).await;
    // Resuming at the head is quiet: the first event is the next write's, chained to the snapshot's seq.
    let next = b.client("alice").create_order("After the snapshot", None).await;
    let change = again.next_change().await;
    assert_eq!(
        (change["op"].clone(), change["key"].clone(), change["prevSeq"].clone()),
        (json!("INSERT"), next["id"].clone(), json!(seq))
    );
}

#[tokio::test]
async fn killing_an_instance_mid_stream_loses_nothing_when_the_client_resumes_on_another() {
    if !postgres_available() {
        return;
    }
    const ORDERS: i64 = 30;
    let database = fresh_postgres_schema().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let args = [
        "--database",
        &database,
        "--jwt-secret",
        "a-secret-both-instances-share",
        "--worker-lease-ms",
        "1000",
        "--step-delay-ms",
        "20",
    ];
    let a = ServerProcess::start(dir_a.path(), &args).await;
    let b = ServerProcess::start(dir_b.path(), &args).await;
    let token = a.dev_token("admin").await;
    let mut ws = Ws::connect(&format!("ws://{}/graphql", a.addr), &token).await;
    ws.subscribe_changes("s", Some(0)).await;
    let writer = b.client("alice").await;
    let writes = tokio::spawn(async move {
        for i in 0..ORDERS {
            writer.create_order(&format!("order {i}"), None).await;
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    });
    // Read part of the stream on A, then kill A while B goes on writing.
    let mut seqs = seqs_through(&mut ws, 0, 25).await;
    a.kill9().await;
    let last = *seqs.last().unwrap();
    let mut ws = Ws::connect(&format!("ws://{}/graphql", b.addr), &token).await;
    ws.subscribe_changes("s", Some(last)).await;
    writes.await.unwrap();
    // Each order is one INSERT and three worker steps; A's worker lease, if A held it, passes to B.
    seqs.extend(seqs_through(&mut ws, last, ORDERS * 4).await);
    assert_eq!(seqs, (1..=ORDERS * 4).collect::<Vec<_>>(), "every seq once, in order, across the kill");
    assert!(
        ws.next_frame_within(Duration::from_millis(500)).await.is_none(),
        "no record beyond the four per order: the worker steps ran once each"
    );
}

#[tokio::test]
async fn concurrent_writers_on_two_instances_leave_no_gap_or_reorder_for_subscribers() {
    if !postgres_available() {
        return;
    }
    const WRITERS_PER_INSTANCE: usize = 4;
    const ORDERS_PER_WRITER: usize = 40;
    let (a, b) = two_instances(|s| s).await;
    let mut on_a = Ws::connect(&a.ws(), &a.token("admin")).await;
    let mut on_b = Ws::connect(&b.ws(), &b.token("admin")).await;
    on_a.subscribe_changes("a", Some(0)).await;
    on_b.subscribe_changes("b", Some(0)).await;
    let started = Instant::now();
    let mut writers = Vec::new();
    for (name, server) in [("a", &a), ("b", &b)] {
        for w in 0..WRITERS_PER_INSTANCE {
            let client = server.client("alice");
            writers.push(tokio::spawn(async move {
                for i in 0..ORDERS_PER_WRITER {
                    client.create_order(&format!("{name}{w}-{i}"), None).await;
                }
            }));
        }
    }
    // Subscribers read while the writers write: the live edge is where a reordered commit would show.
    let total = (2 * WRITERS_PER_INSTANCE * ORDERS_PER_WRITER * 4) as i64;
    let (seen_a, seen_b) = tokio::join!(seqs_through(&mut on_a, 0, total), seqs_through(&mut on_b, 0, total));
    for w in writers {
        w.await.unwrap();
    }
    let expected: Vec<i64> = (1..=total).collect();
    assert_eq!(seen_a, expected, "the subscriber on A saw every seq once, in order");
    assert_eq!(seen_b, expected, "the subscriber on B saw every seq once, in order");
    println!(
        "{} writers on 2 instances: {total} change records (inserts and worker steps) in {:.1} s",
        2 * WRITERS_PER_INSTANCE,
        started.elapsed().as_secs_f64()
    );
    // The log itself, read through either instance, is gap-free.
    let mut logged: Vec<i64> = Vec::new();
    while logged.len() < expected.len() {
        let after = logged.last().copied().unwrap_or(0);
        let page = b
            .client("admin")
            .data(
                "query($a: Int!) { orderChangesSince(afterSeq: $a, limit: 1000) { changes { seq } } }",
                json!({"a": after}),
            )
            .await;
        let changes = page["orderChangesSince"]["changes"].as_array().unwrap().clone();
        assert!(!changes.is_empty(), "the log ends early after {after}");
        logged.extend(changes.iter().map(|c| c["seq"].as_i64().unwrap()));
    }
    assert_eq!(logged, expected);
}

#[tokio::test]
async fn a_lease_has_one_holder_and_passes_on_when_released_or_lapsed() {
    if !postgres_available() {
        return;
    }
    // Both instances read one clock, which jumps over the lease instead of the test sleeping through it.
    let clock = Clock::adjustable();
    let a = TestServer::start_on_clock(database_for(Backend::Postgres).await, clock.clone(), |s| s).await;
    let b = TestServer::start_on_clock(a.database.clone(), clock.clone(), |s| s).await;
    let (sa, sb) = (&a.server.storage, &b.server.storage);
    let ttl = Duration::from_secs(60);
    assert!(sa.acquire_lease("test-consumer", ttl).await.unwrap());
    assert!(!sb.acquire_lease("test-consumer", ttl).await.unwrap(), "held by A");
    assert!(sa.acquire_lease("test-consumer", ttl).await.unwrap(), "A renews");
    clock.advance(ttl);
    assert!(sb.acquire_lease("test-consumer", ttl).await.unwrap(), "A's lease lapsed; B takes over");
    assert!(!sa.acquire_lease("test-consumer", ttl).await.unwrap(), "now held by B");
    sb.release_lease("test-consumer").await.unwrap();
    assert!(sa.acquire_lease("test-consumer", ttl).await.unwrap(), "released: A takes it at once");
}

#[tokio::test]
async fn two_reapers_remove_an_expired_order_exactly_once() {
    if !postgres_available() {
        return;
    }
    // Background reapers almost never run here; the test reaps by hand, from both instances at once.
    let (a, b) =
        two_instances(|s| Settings { reap_interval_ms: Some(3_600_000), step_delay_ms: Some(60_000), ..s }).await;
    // The orders are written already expired, straight to storage (the API refuses an `expiresAt` in the past), so
    // nothing waits for a clock.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = format!("brief-{i}");
        let image = json!({"id": id, "customerName": format!("Brief {i}"), "email": "a@b.co", "expiresAt": now - 1});
        let item = Item { owner: "alice".into(), version: 1, expires_at: Some(now - 1), image };
        a.server.storage.write("Order", None, &id, |_| Ok(Write::Insert(item))).await.unwrap();
        ids.push(id);
    }
    let get = "query($id: ID!) { getOrder(id: $id) { id } }";
    assert!(
        a.client("admin").data(get, json!({"id": ids[4]})).await["getOrder"].is_null(),
        "an expired order is hidden"
    );
    for id in &ids {
        let (ra, rb) = tokio::join!(a.server.storage.reap("Order", id), b.server.storage.reap("Order", id));
        assert!(ra.unwrap() ^ rb.unwrap(), "exactly one reaper removed {id}");
    }
    let log =
        b.client("admin").data("{ orderChangesSince(afterSeq: 0) { changes { op key expired } } }", json!({})).await;
    let removes: Vec<&Value> =
        log["orderChangesSince"]["changes"].as_array().unwrap().iter().filter(|c| c["op"] == "REMOVE").collect();
    assert_eq!(removes.len(), ids.len());
    assert!(removes.iter().all(|c| c["expired"] == true));
}

/// Regression: `changesSince` said `hasMore: false` whenever it returned fewer records than `limit`, but a read the
/// in-memory window serves stops at the window's end, and records committed through another instance follow it.
#[tokio::test]
async fn changes_since_has_more_when_the_window_ends_before_records_of_another_instance() {
    if !postgres_available() {
        return;
    }
    // The worker would add its own records at times of its choosing: keep it asleep.
    let (a, b) = two_instances(|s| Settings { step_delay_ms: Some(60_000), ..s }).await;
    a.client("alice").create_order("First on A", None).await;
    a.client("alice").create_order("Second on A", None).await;
    b.client("alice").create_order("Then on B", None).await;
    let page = |after: i64| {
        let client = a.client("admin");
        async move {
            let query =
                "query($a: Int!) { orderChangesSince(afterSeq: $a, limit: 100) { changes { seq } lastSeq hasMore } }";
            client.data(query, json!({"a": after})).await["orderChangesSince"].clone()
        }
    };
    // A's window holds seqs 1 and 2 only; seq 3 is in the database.
    let first = page(0).await;
    assert_eq!(first["lastSeq"], 2, "{first}");
    assert_eq!(first["hasMore"], true, "seq 3 follows the window's end: {first}");
    let second = page(2).await;
    assert_eq!(second["changes"], json!([{"seq": 3}]));
    assert_eq!(second["hasMore"], false);
}
