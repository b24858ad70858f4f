use base64::Engine;
use serde_json::{json, Value};
use subsignal_server::config::Settings;
use subsignal_tests::{Backend, Frame, TestServer, Ws, ON_ORDER_CHANGED};

const API_KEY: &str = "test-api-key-123";

fn realtime(t: &TestServer) -> String {
    format!("ws://{}/graphql/realtime", t.server.addr)
}

fn host(t: &TestServer) -> String {
    t.server.addr.to_string()
}

/// Opens with the header object as `?header=<base64>&payload=e30=`.
async fn open_query(t: &TestServer, header: &Value) -> Ws {
    let encoded = base64::engine::general_purpose::STANDARD.encode(header.to_string());
    let encoded = encoded.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    Ws::open_with(&format!("{}?header={encoded}&payload=e30=", realtime(t)), Some("graphql-ws"), None)
        .await
        .expect("upgrade")
}

/// Opens with the header object as a `header-<base64url>` subprotocol entry, as Amplify does.
async fn open_protocol(t: &TestServer, header: &Value) -> Ws {
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.to_string());
    Ws::open_with(&realtime(t), Some(&format!("graphql-ws, header-{encoded}")), None).await.expect("upgrade")
}

/// Sends `connection_init` and expects `connection_ack` with `connectionTimeoutMs`.
async fn init(ws: &mut Ws) {
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(ws.next_json().await, json!({"type": "connection_ack", "payload": {"connectionTimeoutMs": 300000}}));
}

fn api_key(t: &TestServer) -> Value {
    json!({"host": host(t), "x-api-key": API_KEY})
}

fn jwt(t: &TestServer, user: &str) -> Value {
    json!({"host": host(t), "Authorization": t.token(user)})
}

async fn start(ws: &mut Ws, id: &str, auth: &Value) {
    let data = json!({"query": ON_ORDER_CHANGED, "variables": {}}).to_string();
    ws.send(json!({"id": id, "type": "start", "payload": {"data": data, "extensions": {"authorization": auth}}})).await;
}

/// The next message that is not `ka`.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let message = ws.next_json().await;
        if message["type"] != "ka" {
            return message;
        }
    }
}

/// The next non-watermark change of a `data` message for `id`.
async fn next_change(ws: &mut Ws, id: &str) -> Value {
    loop {
        let message = next(ws).await;
        assert_eq!(message["type"], "data", "expected data, got {message}");
        assert_eq!(message["id"], id);
        let change = message["payload"]["data"]["onOrderChanged"].clone();
        if change["op"] != "WATERMARK" {
            return change;
        }
    }
}

/// Expects an `error` for `id` with `error_type`.
async fn expect_error(ws: &mut Ws, id: Option<&str>, error_type: &str) {
    let message = next(ws).await;
    assert_eq!(message["type"], "error", "expected an error, got {message}");
    assert_eq!(message.get("id").and_then(Value::as_str), id, "{message}");
    assert_eq!(message["payload"]["errors"][0]["errorType"], error_type, "{message}");
    assert!(message["payload"]["errors"][0]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

async fn api_key_subscription_sees_the_worker_steps_and_stop_completes(backend: Backend) {
    let t = TestServer::start(backend).await;
    let mut ws = open_query(&t, &api_key(&t)).await;
    init(&mut ws).await;
    assert_eq!(ws.next_json().await, json!({"type": "ka"}));
    start(&mut ws, "sub-1", &api_key(&t)).await;
    assert_eq!(next(&mut ws).await, json!({"type": "start_ack", "id": "sub-1"}));
    let order = t.client("alice").create_order("Ada", None).await;
    let mut statuses = vec![];
    while statuses.last().map(String::as_str) != Some("SHIPPED") {
        let change = next_change(&mut ws, "sub-1").await;
        assert_eq!(change["order"]["id"], order["id"]);
        statuses.push(change["order"]["status"].as_str().expect("status").to_owned());
    }
    assert_eq!(statuses, ["SUBMITTED", "PAID", "PREPARING", "SHIPPED"]);
    ws.send(json!({"type": "stop", "id": "sub-1"})).await;
    loop {
        let message = next(&mut ws).await;
        if message["type"] == "complete" {
            assert_eq!(message["id"], "sub-1");
            break;
        }
        assert_eq!(message["type"], "data", "only data may precede complete: {message}");
    }
}

async fn jwt_subscriptions_see_only_their_owners_orders(backend: Backend) {
    let t = TestServer::start(backend).await;
    // Alice's token as AWS clients send it (no "Bearer "), Bob's with the prefix; both as header- subprotocols.
    let mut alice = open_protocol(&t, &jwt(&t, "alice")).await;
    init(&mut alice).await;
    start(&mut alice, "a", &jwt(&t, "alice")).await;
    assert_eq!(next(&mut alice).await["type"], "start_ack");
    let bob_header = json!({"host": host(&t), "Authorization": format!("Bearer {}", t.token("bob"))});
    let mut bob = open_query(&t, &bob_header).await;
    init(&mut bob).await;
    start(&mut bob, "b", &bob_header).await;
    assert_eq!(next(&mut bob).await["type"], "start_ack");

    let bobs = t.client("bob").create_order("Bob's", None).await;
    let alices = t.client("alice").create_order("Alice's", None).await;
    let first = next_change(&mut alice, "a").await;
    assert_eq!(first["order"]["id"], alices["id"], "alice's first event is her own order, not bob's");
    assert_eq!(first["order"]["owner"], "alice");
    let first = next_change(&mut bob, "b").await;
    assert_eq!(first["order"]["id"], bobs["id"]);
    assert_eq!(first["order"]["owner"], "bob");
}

async fn ka_interval_is_configurable(backend: Backend) {
    let t = TestServer::start_with(backend, |s| Settings { appsync_ka_interval_ms: Some(100), ..s }).await;
    let mut ws = open_query(&t, &api_key(&t)).await;
    init(&mut ws).await;
    for _ in 0..3 {
        assert_eq!(ws.next_json().await, json!({"type": "ka"}));
    }
}

async fn bad_credentials_at_connect_get_connection_error_then_close(backend: Backend) {
    let t = TestServer::start(backend).await;
    let forged = json!({"host": host(&t), "Authorization": "forged.token.here"});
    let wrong_key = json!({"host": host(&t), "x-api-key": "not-a-key-at-all"});
    let no_credentials = json!({"host": host(&t)});
    for header in [forged, wrong_key, no_credentials] {
        for mut ws in [open_query(&t, &header).await, open_protocol(&t, &header).await] {
            ws.send(json!({"type": "connection_init"})).await;
            let message = ws.next_json().await;
            assert_eq!(message["type"], "connection_error", "{message}");
            assert_eq!(message["payload"]["errors"][0]["errorType"], "UnauthorizedException");
            assert_eq!(ws.closed().await, 4401);
        }
    }
    // No header object at all, and a header that is not base64.
    let mut ws = Ws::open_with(&realtime(&t), Some("graphql-ws"), None).await.expect("upgrade");
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(ws.next_json().await["type"], "connection_error");
    assert_eq!(ws.closed().await, 4401);
    let mut ws = Ws::open_with(&format!("{}?header=%%%&payload=e30=", realtime(&t)), Some("graphql-ws"), None)
        .await
        .expect("upgrade");
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(ws.next_json().await["type"], "connection_error");
    assert_eq!(ws.closed().await, 4401);
}

async fn each_start_error_is_an_error_for_its_id(backend: Backend) {
    let t = TestServer::start_with(backend, |s| Settings { max_subscriptions: Some(2), ..s }).await;
    let mut ws = open_query(&t, &jwt(&t, "alice")).await;
    init(&mut ws).await;

    // Bad authorization on the start: forged, refused key, missing.
    start(&mut ws, "forged", &json!({"host": host(&t), "Authorization": "forged.token.here"})).await;
    expect_error(&mut ws, Some("forged"), "UnauthorizedException").await;
    start(&mut ws, "wrong-key", &json!({"host": host(&t), "x-api-key": "nope-nope-nope"})).await;
    expect_error(&mut ws, Some("wrong-key"), "UnauthorizedException").await;
    let data = json!({"query": ON_ORDER_CHANGED}).to_string();
    ws.send(json!({"id": "no-auth", "type": "start", "payload": {"data": data}})).await;
    expect_error(&mut ws, Some("no-auth"), "UnauthorizedException").await;

    // A data string that is not the request, a query that does not parse, a field that does not exist.
    let auth = jwt(&t, "alice");
    for (id, data) in [
        ("not-json", "{query".to_owned()),
        ("not-a-string", json!({"variables": {}}).to_string()),
        ("syntax", json!({"query": "subscription {"}).to_string()),
        ("no-field", json!({"query": "subscription { onNothing { id } }"}).to_string()),
    ] {
        ws.send(json!({"id": id, "type": "start", "payload": {"data": data, "extensions": {"authorization": auth}}}))
            .await;
        let mut message = next(&mut ws).await;
        if message["type"] == "start_ack" {
            // Schema validation runs in the subscription: its error follows the ack.
            assert_eq!(id, "no-field");
            message = next(&mut ws).await;
        }
        assert_eq!(message["type"], "error", "{id}: {message}");
        assert_eq!(message["id"], id);
        assert_eq!(message["payload"]["errors"][0]["errorType"], "ValidationError", "{message}");
    }
    // `data` given as an object instead of a string.
    ws.send(json!({"id": "object", "type": "start", "payload": {"data": {"query": ON_ORDER_CHANGED}}})).await;
    expect_error(&mut ws, Some("object"), "ValidationError").await;

    // Duplicate id, then the connection's subscription limit.
    start(&mut ws, "one", &auth).await;
    assert_eq!(next(&mut ws).await, json!({"type": "start_ack", "id": "one"}));
    start(&mut ws, "one", &auth).await;
    expect_error(&mut ws, Some("one"), "DuplicatedOperationError").await;
    start(&mut ws, "two", &auth).await;
    assert_eq!(next(&mut ws).await["type"], "start_ack");
    start(&mut ws, "three", &auth).await;
    expect_error(&mut ws, Some("three"), "MaxSubscriptionsReachedError").await;

    // Unknown message types and garbage do not close the connection.
    ws.send(json!({"type": "subscribe", "id": "x"})).await;
    expect_error(&mut ws, Some("x"), "UnknownOperationError").await;
    ws.send_text("{not json").await;
    expect_error(&mut ws, None, "UnknownOperationError").await;
    ws.send(json!({"type": "stop", "id": "one"})).await;
    assert_eq!(next(&mut ws).await, json!({"type": "complete", "id": "one"}));
    start(&mut ws, "four", &auth).await;
    assert_eq!(next(&mut ws).await, json!({"type": "start_ack", "id": "four"}));
}

async fn oversized_message_gets_limit_exceeded_then_1009(backend: Backend) {
    let t = TestServer::start_with(backend, |s| Settings { max_message_bytes: Some(4096), ..s }).await;
    let mut ws = open_query(&t, &api_key(&t)).await;
    init(&mut ws).await;
    let data = json!({"query": ON_ORDER_CHANGED, "variables": {"pad": "x".repeat(8192)}}).to_string();
    let start =
        json!({"id": "big", "type": "start", "payload": {"data": data, "extensions": {"authorization": api_key(&t)}}});
    ws.send_text_lenient(&start.to_string()).await;
    expect_error(&mut ws, None, "LimitExceededError").await;
    assert_eq!(ws.closed().await, 1009);
}

async fn wrong_subprotocol_and_foreign_origin_are_refused(backend: Backend) {
    let t =
        TestServer::start_with(backend, |s| Settings { allowed_origins: Some(vec!["http://app.local".into()]), ..s })
            .await;
    // Without graphql-ws the server selects no protocol and closes 4406.
    let mut ws = Ws::open_with(&realtime(&t), None, Some("http://app.local")).await.unwrap();
    assert_eq!(ws.next_frame().await, Frame::Closed(4406));
    let refused = Ws::open_with(&realtime(&t), Some("graphql-ws"), Some("http://evil.example")).await;
    assert!(matches!(refused, Err(tokio_tungstenite::tungstenite::Error::Http(resp)) if resp.status() == 403));
}

subsignal_tests::on_both_backends!(
    api_key_subscription_sees_the_worker_steps_and_stop_completes,
    jwt_subscriptions_see_only_their_owners_orders,
    ka_interval_is_configurable,
    bad_credentials_at_connect_get_connection_error_then_close,
    each_start_error_is_an_error_for_its_id,
    oversized_message_gets_limit_exceeded_then_1009,
    wrong_subprotocol_and_foreign_origin_are_refused,
);
