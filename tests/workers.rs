use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use subsignal_server::config::Settings;
use subsignal_server::storage::ChangeRecord;
use subsignal_server::workers::{consume_batch, ConsumerConfig, Handler};
use subsignal_tests::{Backend, TestServer};

fn config(name: &str) -> ConsumerConfig {
    ConsumerConfig {
        name: name.into(),
        batch_size: 100,
        parallelism: 4,
        max_attempts: 3,
        backoff: Duration::from_millis(5),
        lease: Duration::from_secs(10),
    }
}

async fn a_poisoned_record_is_retried_then_dead_lettered_while_others_flow(backend: Backend) {
    let t = TestServer::start_with(backend, |s| Settings { step_delay_ms: Some(60_000), ..s }).await;
    let alice = t.client("alice");
    let poisoned = alice.create_order("Poison", None).await["id"].as_str().unwrap().to_owned();
    for i in 0..5 {
        alice.create_order(&format!("Fine {i}"), None).await;
    }
    let attempts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let seen = attempts.clone();
    let bad = poisoned.clone();
    let handler: Handler = Arc::new(move |record: ChangeRecord| {
        let seen = seen.clone();
        let bad = bad.clone();
        Box::pin(async move {
            *seen.lock().unwrap().entry(record.key.clone()).or_default() += 1;
            if record.key == bad {
                Err("cannot handle this one".to_owned().into())
            } else {
                Ok(())
            }
        })
    });
    let storage = &t.server.storage;
    assert!(consume_batch(storage, &config("test-consumer"), &handler).await.unwrap());
    let attempts = attempts.lock().unwrap().clone();
    assert_eq!(attempts[&poisoned], 3, "bounded retries");
    assert_eq!(attempts.len(), 6);
    assert!(attempts.iter().filter(|(k, _)| **k != poisoned).all(|(_, n)| *n == 1));
    let letters = storage.dead_letters("test-consumer").await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].key, poisoned);
    assert_eq!(letters[0].attempts, 3);
    assert_eq!(letters[0].error, "cannot handle this one");
    assert_eq!(storage.checkpoint("test-consumer").await.unwrap(), 6);
    // Nothing new: the next batch is empty and nothing is reprocessed.
    assert!(!consume_batch(storage, &config("test-consumer"), &handler).await.unwrap());
}

async fn keys_run_in_parallel_and_each_key_in_order(backend: Backend) {
    let t = TestServer::start_with(backend, |s| Settings { step_delay_ms: Some(60_000), ..s }).await;
    let alice = t.client("alice");
    let mut ids = Vec::new();
    for i in 0..4 {
        let order = alice.create_order(&format!("P{i}"), None).await;
        let id = order["id"].as_str().unwrap().to_owned();
        // A second record for the same key.
        alice
            .data(
                "mutation($id: ID!) { updateOrder(input: {id: $id, customerName: \"Edited\"}, expectedVersion: 1) { version } }",
                serde_json::json!({"id": id}),
            )
            .await;
        ids.push(id);
    }
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let order_seen: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let (r, p, o) = (running.clone(), peak.clone(), order_seen.clone());
    let handler: Handler = Arc::new(move |record: ChangeRecord| {
        let (r, p, o) = (r.clone(), p.clone(), o.clone());
        Box::pin(async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            o.lock().unwrap().push((record.key.clone(), record.version));
            r.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        })
    });
    consume_batch(&t.server.storage, &config("parallel"), &handler).await.unwrap();
    assert!(peak.load(Ordering::SeqCst) > 1, "different keys ran at the same time");
    let seen = order_seen.lock().unwrap();
    for id in &ids {
        let versions: Vec<i64> = seen.iter().filter(|(k, _)| k == id).map(|(_, v)| *v).collect();
        assert_eq!(versions, [1, 2], "one key's records in order");
    }
}

subsignal_tests::on_both_backends!(
    a_poisoned_record_is_retried_then_dead_lettered_while_others_flow,
    keys_run_in_parallel_and_each_key_in_order,
);
