use std::time::Duration;

use subsignal_netsim::NetsimConfig;
use subsignal_server::config::Settings;
use subsignal_tests::{Backend, Frame, Gql, TestServer, Ws};
use tokio::time::Instant;

/// The real server behind the proxy: a mutation over HTTP and its subscription event over WebSocket both cross it,
/// late by the profile; going offline drops the socket, and a new one resumes from `afterSeq` with an unbroken chain.
#[tokio::test]
async fn a_subscription_through_the_proxy_is_late_by_the_profile_and_resumes_after_offline() {
    let t = TestServer::start_with(Backend::Sqlite, |s| Settings { step_delay_ms: Some(300), ..s }).await;
    let netsim = subsignal_netsim::start(NetsimConfig {
        upstream: t.server.addr.to_string(),
        profile: "lte".into(),
        seed: Some(5),
        ..NetsimConfig::default()
    })
    .await
    .expect("netsim starts");
    let ws_url = format!("ws://{}/graphql", netsim.addr);
    let token = t.token("alice");
    let http = Gql {
        url: format!("http://{}/graphql", netsim.addr),
        auth: Some(("authorization", format!("Bearer {token}"))),
    };

    let mut ws = Ws::connect(&ws_url, &token).await;
    ws.subscribe_changes("1", Some(0)).await;
    let started = Instant::now();
    let order = http.create_order("Ada", Some("through-the-proxy")).await;
    let inserted = ws.next_real_change().await;
    let took = started.elapsed();
    assert_eq!((inserted["op"].as_str(), &inserted["order"]["id"]), (Some("INSERT"), &order["id"]));
    // A new HTTP connection (handshake 70 ms), the request up (35 ms), then the event down (35 ms).
    eprintln!("mutation to its event through lte (RTT 70 ms): {took:?}");
    assert!(took >= Duration::from_millis(140), "{took:?}");

    netsim.select_profile("offline").unwrap();
    assert_eq!(ws.closed().await, 1006, "offline drops the socket without a close frame");
    netsim.select_profile("none").unwrap();

    let mut ws = Ws::connect(&ws_url, &token).await;
    let mut prev = inserted["seq"].as_i64().unwrap();
    ws.subscribe_changes("2", Some(prev)).await;
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some("SHIPPED") {
        let change = ws.next_change().await;
        assert_eq!(change["prevSeq"], prev, "the chain continues across the outage: {change}");
        prev = change["seq"].as_i64().unwrap();
        if change["op"] != "WATERMARK" {
            statuses.push(change["order"]["status"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(statuses, ["PAID", "PREPARING", "SHIPPED"]);
    assert!(!matches!(ws.next_frame_within(Duration::from_millis(100)).await, Some(Frame::Closed(_))));
    netsim.shutdown().await;
}
