use serde_json::json;
use subsignal_server::config::Settings;
use subsignal_tests::{Backend, Frame, TestServer, Ws};

async fn subscribe_before_ack_closes_4401_and_sends_no_data(backend: Backend) {
    let t = TestServer::start(backend).await;
    let mut ws = Ws::open(&t.ws()).await;
    ws.subscribe_changes("1", None).await;
    assert_eq!(ws.next_frame().await, Frame::Closed(4401));
}

async fn missing_init_closes_4408_and_second_init_4429(backend: Backend) {
    let t = TestServer::start_with(backend, |s| Settings { ws_init_timeout_ms: Some(300), ..s }).await;
    let mut idle = Ws::open(&t.ws()).await;
    assert_eq!(idle.next_frame().await, Frame::Closed(4408));

    let mut ws = Ws::connect(&t.ws(), &t.token("alice")).await;
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(ws.closed().await, 4429);
}

async fn duplicate_id_closes_4409_and_garbage_closes_4400(backend: Backend) {
    let t = TestServer::start(backend).await;
    let mut ws = Ws::connect(&t.ws(), &t.token("alice")).await;
    ws.subscribe_changes("same", None).await;
    ws.subscribe_changes("same", None).await;
    assert_eq!(ws.closed().await, 4409);

    let mut ws = Ws::connect(&t.ws(), &t.token("alice")).await;
    ws.send_text("{not json").await;
    assert_eq!(ws.closed().await, 4400);

    let mut ws = Ws::connect(&t.ws(), &t.token("alice")).await;
    ws.send(json!({"type": "start", "id": "1"})).await;
    assert_eq!(ws.closed().await, 4400);
}

async fn bad_token_at_init_closes_4403(backend: Backend) {
    let t = TestServer::start(backend).await;
    let mut ws = Ws::open(&t.ws()).await;
    ws.send(json!({"type": "connection_init", "payload": {"Authorization": "Bearer forged.token.here"}})).await;
    assert_eq!(ws.next_frame().await, Frame::Closed(4403));
}

async fn wrong_subprotocol_closes_4406(backend: Backend) {
    let t = TestServer::start(backend).await;
    let mut ws = Ws::open_with(&t.ws(), None, None).await.unwrap();
    assert_eq!(ws.next_frame().await, Frame::Closed(4406));
}

/// `/graphql/ws` names the protocol by its path: a client may offer `graphql-transport-ws` or nothing (as through
/// `trunk serve`, which cannot negotiate subprotocols); any other offer is refused.
async fn ws_path_speaks_transport_ws_with_or_without_an_offer(backend: Backend) {
    let t = TestServer::start(backend).await;
    let url = format!("{}/ws", t.ws());
    let token = t.token("alice");
    let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    for offer in [None, Some("graphql-transport-ws")] {
        let mut ws = Ws::open_with(&url, offer, None).await.unwrap();
        ws.send(init.clone()).await;
        assert_eq!(ws.next_json().await["type"], "connection_ack", "offer {offer:?}");
        ws.subscribe_changes("s", None).await;
        let order = t.client("alice").create_order("By path", None).await;
        // The worker may still be moving the previous order on: wait for this one's INSERT.
        while ws.next_real_change().await["key"] != order["id"] {}
    }
    // Another offer selects no subprotocol: a strict client fails the handshake (the server would close 4406).
    let refused = Ws::open_with(&url, Some("graphql-ws"), None).await;
    assert!(
        matches!(refused, Err(tokio_tungstenite::tungstenite::Error::Protocol(ref e)) if e.to_string().contains("SubProtocol")),
        "{:?}",
        refused.map(|_| "an open socket")
    );
}

async fn ping_is_answered_and_complete_stops_an_operation(backend: Backend) {
    let t = TestServer::start(backend).await;
    let alice = t.client("alice");
    let mut ws = Ws::connect(&t.ws(), &t.token("alice")).await;
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next_json().await["type"], "pong");
    ws.subscribe_changes("s", None).await;
    ws.send(json!({"type": "complete", "id": "s"})).await;
    // The id is free again: reusing it is not a 4409. From seq 0, so that the INSERT cannot fall before the
    // subscription is registered (a live-only subscription starts wherever the log stands when the server reads it).
    ws.subscribe_changes("s", Some(0)).await;
    alice.create_order("Ada", None).await;
    let change = ws.next_real_change().await;
    assert_eq!(change["op"], "INSERT", "{change}");
}

async fn anonymous_subscription_gets_an_error_message_not_data(backend: Backend) {
    let t = TestServer::start(backend).await;
    let mut ws = Ws::open(&t.ws()).await;
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.subscribe_changes("1", None).await;
    let msg = ws.next_json().await;
    assert_eq!(msg["type"], "error");
    assert_eq!(msg["id"], "1");
    assert_eq!(msg["payload"][0]["extensions"]["code"], "UNAUTHENTICATED");
}

async fn foreign_origin_is_refused_before_upgrade(backend: Backend) {
    let t =
        TestServer::start_with(backend, |s| Settings { allowed_origins: Some(vec!["http://app.local".into()]), ..s })
            .await;
    let refused = Ws::open_with(&t.ws(), Some("graphql-transport-ws"), Some("http://evil.example")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected HTTP 403, got {:?}", other.map(|_| "an open socket")),
    }
    assert!(Ws::open_with(&t.ws(), Some("graphql-transport-ws"), Some("http://app.local")).await.is_ok());
}

/// The ack names the change log's epoch, drawn when the database is made: the same on every connection and every
/// instance of one database, another for another database. A client holding a cursor of another epoch resnapshots.
async fn the_ack_names_the_change_logs_epoch(backend: Backend) {
    async fn epoch(t: &TestServer) -> i64 {
        let mut ws = Ws::open(&t.ws()).await;
        ws.send(
            json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", t.token("alice"))}}),
        )
        .await;
        let ack = ws.next_json().await;
        assert_eq!(ack["type"], "connection_ack");
        ack["payload"]["epoch"].as_i64().unwrap_or_else(|| panic!("an epoch in {ack}"))
    }
    let a = TestServer::start(backend).await;
    let first = epoch(&a).await;
    assert!(first > 0);
    assert_eq!(epoch(&a).await, first, "every connection hears the same");
    let other = TestServer::start(backend).await;
    assert_ne!(epoch(&other).await, first, "another database, another epoch");
    if let Some(database) = a.database.clone() {
        let b = TestServer::start_on(Some(database), |s| s).await;
        assert_eq!(epoch(&b).await, first, "another instance of the same database says the same");
    }
}

subsignal_tests::on_both_backends!(
    subscribe_before_ack_closes_4401_and_sends_no_data,
    missing_init_closes_4408_and_second_init_4429,
    duplicate_id_closes_4409_and_garbage_closes_4400,
    bad_token_at_init_closes_4403,
    wrong_subprotocol_closes_4406,
    ws_path_speaks_transport_ws_with_or_without_an_offer,
    ping_is_answered_and_complete_stops_an_operation,
    anonymous_subscription_gets_an_error_message_not_data,
    foreign_origin_is_refused_before_upgrade,
    the_ack_names_the_change_logs_epoch,
);
