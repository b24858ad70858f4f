//! RELIABILITY.md's security cases (4–8) and the hardening around them: RS256 (PEM, JWKS) beside HS256 and API keys,
//! refused tokens, expiry mid-connection, owner isolation under attack, document limits, frame, message, rate,
//! connection and header limits, and server memory under floods (a real process, RSS read from /proc).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use subsignal_server::clock::Clock;
use subsignal_server::config::Settings;
use subsignal_tests::{database_for, eventually, Backend, Frame, Gql, ServerProcess, TestServer, Ws};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// An RS256 token signed with a test-only key from `tests/fixtures`.
fn rs256(key_file: &str, kid: Option<&str>, claims: Value) -> String {
    let key = EncodingKey::from_rsa_pem(&std::fs::read(fixture(key_file)).unwrap()).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn hs256(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

fn claims(sub: &str, ttl: i64) -> Value {
    json!({"sub": sub, "exp": now() + ttl, "iat": now(), "iss": "subsignal", "aud": "subsignal"})
}

fn b64(text: &str) -> String {
    use std::fmt::Write;
    // base64url without padding, by hand (the tests crate has no base64 dependency).
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            let _ = write!(out, "{}", ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn with_rs256_keys(s: Settings) -> Settings {
    Settings { jwt_public_key: Some(fixture("rs256.pub.pem")), jwks: Some(fixture("jwks.json")), ..s }
}

const SECRET: &str = "test-secret-shared-by-instances";

async fn init(t: &TestServer, payload: Value) -> Ws {
    let mut ws = Ws::open(&t.ws()).await;
    ws.send(json!({"type": "connection_init", "payload": payload})).await;
    ws
}

async fn rs256_pem_and_jwks_work_beside_hs256_and_api_keys(backend: Backend) {
    let t = TestServer::start_with(backend, with_rs256_keys).await;
    let by_kid = rs256("rs256-other.key.pem", Some("test-key-2"), claims("carol", 600));
    let by_pem = rs256("rs256.key.pem", None, claims("dave", 600));
    // Over HTTP, each mode writes under its own identity.
    for (header, value, owner) in [
        ("authorization", format!("Bearer {by_kid}"), "carol"),
        ("authorization", format!("Bearer {by_pem}"), "dave"),
        ("authorization", format!("Bearer {}", t.token("alice")), "alice"),
        ("x-api-key", "test-api-key-123".to_owned(), "apikey:backend"),
    ] {
        let gql = Gql { url: format!("{}/graphql", t.http()), auth: Some((header, value)) };
        assert_eq!(gql.create_order("Multi", None).await["owner"], owner);
    }
    // Over WebSocket, an RS256 token chosen by kid subscribes and sees its own order.
    let mut ws = init(&t, json!({"Authorization": format!("Bearer {by_kid}")})).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.subscribe_changes("mine", Some(0)).await;
    let change = ws.next_real_change().await;
    assert_eq!(change["order"]["owner"], "carol");
}

async fn forged_unsigned_expired_and_misdirected_tokens_are_refused(backend: Backend) {
    let t = TestServer::start_with(backend, with_rs256_keys).await;
    let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&claims("alice", 600).to_string()));
    let mut wrong_aud = claims("alice", 600);
    wrong_aud["aud"] = json!("elsewhere");
    let mut wrong_iss = claims("alice", 600);
    wrong_iss["iss"] = json!("elsewhere");
    let refused = [
        ("alg none", none),
        ("HS256, another secret", hs256("not-the-server-secret", claims("alice", 600))),
        ("HS256, expired", hs256(SECRET, claims("alice", -5))),
        ("HS256, wrong audience", hs256(SECRET, wrong_aud.clone())),
        ("HS256, wrong issuer", hs256(SECRET, wrong_iss)),
        ("RS256, unknown key", rs256("rs256-other.key.pem", None, claims("alice", 600))),
        ("RS256, key under another kid", rs256("rs256-other.key.pem", Some("test-key-1"), claims("alice", 600))),
        ("RS256, unknown kid", rs256("rs256.key.pem", Some("test-key-9"), claims("alice", 600))),
        ("RS256, expired", rs256("rs256.key.pem", Some("test-key-1"), claims("alice", -5))),
        ("RS256, wrong audience", rs256("rs256.key.pem", Some("test-key-1"), wrong_aud)),
        ("garbage", "forged.token.here".to_owned()),
    ];
    for (what, token) in refused {
        let mut ws = init(&t, json!({"Authorization": format!("Bearer {token}")})).await;
        assert_eq!(ws.next_frame().await, Frame::Closed(4403), "{what}");
        let gql =
            Gql { url: format!("{}/graphql", t.http()), auth: Some(("authorization", format!("Bearer {token}"))) };
        let body = gql.run("{ listOrders { items { id } } }", json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{what}: {body}");
    }
    let mut ws = init(&t, json!({"x-api-key": "not-a-key-at-all"})).await;
    assert_eq!(ws.next_frame().await, Frame::Closed(4403));
}

async fn a_token_expiring_mid_connection_ends_it_with_4403(backend: Backend) {
    // The server's clock jumps over the token's minute instead of the test sleeping through it.
    let t = TestServer::start_on_clock(database_for(backend).await, Clock::adjustable(), |s| s).await;
    let short = t.server.auth.issue("alice", vec![], 60).unwrap();
    let mut ws = Ws::connect(&t.ws(), &short).await;
    ws.subscribe_changes("live", Some(0)).await;
    t.client("alice").create_order("Before expiry", None).await;
    assert_eq!(ws.next_real_change().await["order"]["owner"], "alice");
    t.clock.advance(Duration::from_secs(61));
    assert_eq!(ws.closed().await, 4403);
}

async fn user_b_gets_none_of_a_records_however_it_asks(backend: Backend) {
    let t = TestServer::start(backend).await;
    let alice = t.client("alice");
    let bob = t.client("bob");
    let order = alice.create_order("Alice's", None).await;
    let id = order["id"].clone();

    // B subscribes from the start of the log: with no owner argument, only watermarks pass his filter.
    let mut ws = Ws::connect(&t.ws(), &t.token("bob")).await;
    ws.subscribe_changes("all", Some(0)).await;
    // With A's owner value as an argument, or smuggled in variables: the schema has no such argument.
    ws.send(json!({"type": "subscribe", "id": "arg", "payload": {"query": "subscription { onOrderChanged(afterSeq: 0, owner: \"alice\") { seq order { id } } }"}})).await;
    ws.send(json!({"type": "subscribe", "id": "var", "payload": {"query": subsignal_tests::ON_ORDER_CHANGED, "variables": {"after": 0, "owner": "alice", "sub": "alice"}}})).await;
    alice.create_order("Alice's second", None).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut arg_error = false;
    while let Some(frame) = ws.next_frame_within(deadline.saturating_duration_since(Instant::now())).await {
        let Frame::Json(msg) = frame else { panic!("socket closed: {frame:?}") };
        if msg["id"] == "arg" {
            assert_eq!(msg["type"], "error", "{msg}");
            arg_error = true;
        }
        let change = &msg["payload"]["data"]["onOrderChanged"];
        assert!(change.is_null() || change["op"] == "WATERMARK", "bob received {msg}");
    }
    assert!(arg_error, "an owner argument must be refused");

    // B with a token forged for A (signed with another secret): refused at init.
    let forged = hs256("bob-guessed-this-secret", claims("alice", 600));
    let mut ws = init(&t, json!({"Authorization": format!("Bearer {forged}")})).await;
    assert_eq!(ws.next_frame().await, Frame::Closed(4403));

    // Queries and mutations: nothing of A's is visible or writable to B.
    let got = bob.data("query($id: ID!) { getOrder(id: $id) { id } }", json!({"id": id})).await;
    assert_eq!(got["getOrder"], Value::Null);
    let list = bob.data("{ listOrders { items { id owner } } }", json!({})).await;
    assert_eq!(list["listOrders"]["items"], json!([]));
    let log = bob.data("{ orderChangesSince(afterSeq: 0) { changes { seq } } }", json!({})).await;
    assert_eq!(log["orderChangesSince"]["changes"], json!([]));
    let edit = bob
        .run(
            "mutation($id: ID!) { updateOrder(input: {id: $id, customerName: \"Mallory\"}, expectedVersion: 1) { id } }",
            json!({"id": id}),
        )
        .await;
    assert!(edit["errors"].is_array(), "{edit}");
    let cancel =
        bob.run("mutation($id: ID!) { cancelOrder(id: $id, expectedVersion: 1) { id } }", json!({"id": id})).await;
    assert!(cancel["errors"].is_array(), "{cancel}");
    let mine = alice.data("query($id: ID!) { getOrder(id: $id) { customerName } }", json!({"id": id})).await;
    assert_eq!(mine["getOrder"]["customerName"], "Alice's");
    // An owner in the input is not an input field: creating "for A" is refused, not honoured.
    let smuggled = bob
        .run(
            "mutation($input: CreateOrderInput!) { createOrder(input: $input) { owner } }",
            json!({"input": {"owner": "alice", "customerName": "X", "email": "x@example.com", "items": [{"sku": "tea", "quantity": 1, "unitPriceCents": 1}]}}),
        )
        .await;
    assert!(smuggled["errors"].is_array(), "{smuggled}");
}

/// A selection nested `depth` deep, `count` aliases, `count` directives.
fn deep(depth: usize) -> String {
    format!("{{ {}__typename{} }}", "listOrders { items { ".repeat(depth / 2), " } }".repeat(depth / 2))
}

fn aliases(count: usize) -> String {
    format!("{{ {} }}", (0..count).map(|i| format!("a{i}: __typename")).collect::<Vec<_>>().join(" "))
}

fn directives(count: usize) -> String {
    format!("{{ __typename {} }}", "@skip(if: false) ".repeat(count))
}

async fn hostile_documents_are_rejected_at_validation_in_bounded_time(backend: Backend) {
    let t = TestServer::start_with(backend, |s| Settings { introspection: Some(false), ..s }).await;
    let alice = t.client("alice");
    let cases = [
        ("depth 50", deep(50)),
        ("10k aliases", aliases(10_000)),
        ("10k directives", directives(10_000)),
        ("introspection", "{ __schema { types { name } } }".to_owned()),
        ("nesting 10k", format!("{}{}", "{ a ".repeat(10_000), "}".repeat(10_000))),
    ];
    for (what, query) in &cases {
        let started = Instant::now();
        let body = alice.run(query, json!({})).await;
        let took = started.elapsed();
        println!("{what}: {} bytes, rejected in {took:?}: {}", query.len(), body["errors"][0]["message"]);
        assert!(body["errors"].is_array() && body["data"].is_null(), "{what}: {body}");
        assert!(took < Duration::from_secs(2), "{what} took {took:?}");
    }
    // Just under the limits passes.
    assert!(alice.run(&aliases(64), json!({})).await["errors"].is_null());
    // The same over WebSocket: an `error` for that id, and the connection stays usable.
    let mut ws = Ws::connect(&t.ws(), &t.token("alice")).await;
    for (i, (what, query)) in cases.iter().enumerate() {
        ws.send(json!({"type": "subscribe", "id": format!("q{i}"), "payload": {"query": query}})).await;
        let msg = ws.next_json().await;
        assert_eq!(
            (msg["type"].as_str(), msg["id"].as_str()),
            (Some("error"), Some(format!("q{i}").as_str())),
            "{what}: {msg}"
        );
    }
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next_json().await["type"], "pong");
}

async fn a_2_mib_frame_closes_1009_and_a_2_mib_post_gets_413(backend: Backend) {
    let t = TestServer::start(backend).await;
    let mut ws = Ws::connect(&t.ws(), &t.token("alice")).await;
    let big = format!(r#"{{"type":"ping","payload":{{"junk":"{}"}}}}"#, "x".repeat(2 * 1024 * 1024));
    ws.send_text_lenient(&big).await;
    assert_eq!(ws.closed().await, 1009);
    let resp = reqwest::Client::new()
        .post(format!("{}/graphql", t.http()))
        .header("content-type", "application/json")
        .body(format!(r#"{{"query":"{{ __typename }}","variables":{{"junk":"{}"}}}}"#, "x".repeat(2 * 1024 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
}

async fn subscribes_past_the_cap_get_an_error_for_that_id(backend: Backend) {
    let t = TestServer::start_with(backend, |s| Settings { max_subscriptions: Some(3), ..s }).await;
    let mut ws = Ws::connect(&t.ws(), &t.token("alice")).await;
    for i in 0..4 {
        ws.subscribe_changes(&format!("s{i}"), None).await;
    }
    let msg = ws.next_json().await;
    assert_eq!((msg["type"].as_str(), msg["id"].as_str()), (Some("error"), Some("s3")), "{msg}");
    assert_eq!(msg["payload"][0]["extensions"]["code"], "LIMIT_EXCEEDED");
}

async fn a_message_flood_closes_1008(backend: Backend) {
    let t = TestServer::start_with(backend, |s| Settings { max_messages_per_sec: Some(20), ..s }).await;
    let mut ws = Ws::connect(&t.ws(), &t.token("alice")).await;
    for _ in 0..100 {
        ws.send_text_lenient(r#"{"type":"ping"}"#).await;
    }
    assert_eq!(ws.closed().await, 1008);
    // A client within the rate is never bothered.
    let mut ws = Ws::connect(&t.ws(), &t.token("alice")).await;
    for _ in 0..10 {
        ws.send(json!({"type": "ping"})).await;
        assert_eq!(ws.next_json().await["type"], "pong");
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
}

async fn connections_past_the_per_address_cap_get_429(backend: Backend) {
    let t = TestServer::start_with(backend, |s| Settings { max_connections_per_addr: Some(2), ..s }).await;
    let first = Ws::open(&t.ws()).await;
    let _second = Ws::open(&t.ws()).await;
    match Ws::open_with(&t.ws(), Some("graphql-transport-ws"), None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 429),
        other => panic!("expected HTTP 429, got {:?}", other.map(|_| "an open socket")),
    }
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Ws::open_with(&t.ws(), Some("graphql-transport-ws"), None).await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the slot was not given back: {e}"),
        }
    }
}

async fn oversized_headers_get_431_before_any_upgrade(backend: Backend) {
    let t = TestServer::start(backend).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/healthz", t.http()))
        .header("x-padding", "p".repeat(32 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 431);
    let mut request = t.ws().into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    request.headers_mut().insert("x-padding", "p".repeat(32 * 1024).parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 431),
        other => panic!("expected HTTP 431, got {:?}", other.map(|_| "an open socket")),
    }
}

subsignal_tests::on_both_backends!(
    rs256_pem_and_jwks_work_beside_hs256_and_api_keys,
    forged_unsigned_expired_and_misdirected_tokens_are_refused,
    a_token_expiring_mid_connection_ends_it_with_4403,
    user_b_gets_none_of_a_records_however_it_asks,
    hostile_documents_are_rejected_at_validation_in_bounded_time,
    a_2_mib_frame_closes_1009_and_a_2_mib_post_gets_413,
    subscribes_past_the_cap_get_an_error_for_that_id,
    a_message_flood_closes_1008,
    connections_past_the_per_address_cap_get_429,
    oversized_headers_get_431_before_any_upgrade,
);

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Case 8: subscribe floods on many connections and 2 MiB frames leave the server process's memory bounded.
#[tokio::test]
async fn floods_and_oversized_frames_leave_server_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    // The rate limit is lifted so that the floods reach the subscription cap (100 per connection, the default).
    let server = ServerProcess::start(dir.path(), &["--max-messages-per-sec", "1000000"]).await;
    let pid = server.child.id().expect("pid");
    let token = server.dev_token("alice").await;
    let url = format!("ws://{}/graphql", server.addr);
    // Warm up: one connection, a subscription, a query.
    let mut warm = Ws::connect(&url, &token).await;
    warm.subscribe_changes("w", None).await;
    drop(warm);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(pid);

    let connections = 20;
    let cap = 100; // max-subscriptions, the default
    let flood = 1_000;
    // Phase 1: every connection opens as many subscriptions as it may.
    let mut sockets = Vec::new();
    for c in 0..connections {
        let (url, token) = (url.clone(), token.clone());
        sockets.push(tokio::spawn(async move {
            let mut ws = Ws::connect(&url, &token).await;
            for i in 0..cap {
                ws.subscribe_changes(&format!("c{c}-{i}"), None).await;
            }
            ws.send(json!({"type": "ping"})).await;
            while ws.next_json().await["type"] != "pong" {}
            ws
        }));
    }
    let mut open = Vec::new();
    for task in sockets {
        open.push(task.await.unwrap());
    }
    let subscribed = rss_kib(pid);
    // Phase 2: each floods subscribe messages past the cap, twice; each is answered by an error and keeps nothing,
    // so the second flood finds the allocator warm and grows nothing.
    let mut floods = Vec::new();
    for round in 0..2 {
        let mut sockets = Vec::new();
        for (c, mut ws) in open.into_iter().enumerate() {
            sockets.push(tokio::spawn(async move {
                for i in 0..flood {
                    ws.subscribe_changes(&format!("flood-{round}-{c}-{i}"), None).await;
                    // Read as we go, so neither side's socket buffer fills.
                    if i % 100 == 99 {
                        let mut errors = 0;
                        while errors < 100 {
                            if ws.next_json().await["type"] == "error" {
                                errors += 1;
                            }
                        }
                    }
                }
                ws
            }));
        }
        open = Vec::new();
        for task in sockets {
            open.push(task.await.unwrap());
        }
        floods.push(rss_kib(pid));
    }
    let flooded = floods[1];
    // Phase 3: a 2 MiB frame on each connection.
    let mut closes = Vec::new();
    for mut ws in open {
        closes.push(tokio::spawn(async move {
            ws.send_text_lenient(&format!(r#"{{"type":"ping","payload":"{}"}}"#, "x".repeat(2 * 1024 * 1024))).await;
            ws.closed().await
        }));
    }
    let mut codes = Vec::new();
    for task in closes {
        codes.push(task.await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(pid);
    println!(
        "server RSS (KiB): before {before}; {connections} connections x {cap} live subscriptions {subscribed} \
         (+{}); then {flood} more subscribes each, all refused, {} (+{}); {flood} more again {} ({:+}); then a 2 MiB \
         frame on each, all closed 1009, {after} ({:+})",
        subscribed - before,
        floods[0],
        floods[0] - subscribed,
        floods[1],
        floods[1] as i64 - floods[0] as i64,
        after as i64 - flooded as i64
    );
    assert!(codes.iter().all(|c| *c == 1009), "close codes: {codes:?}");
    assert!(subscribed < before + 64 * 1024, "{connections} x {cap} subscriptions took {before} -> {subscribed} KiB");
    assert!(floods[0] < before + 64 * 1024, "the refused flood grew RSS {before} -> {} KiB", floods[0]);
    assert!(floods[1] < floods[0] + 8 * 1024, "a second flood grew RSS again: {floods:?} KiB");
    assert!(after < flooded + 16 * 1024, "2 MiB frames grew RSS {flooded} -> {after} KiB");
    server.kill9().await;
}

/// A JWKS endpoint as an identity provider runs it: the key set it publishes (from the fixture's keys, by kid), the
/// `Cache-Control: max-age` it sends, and how often it was fetched.
#[derive(Clone)]
struct IdentityProvider {
    published: std::sync::Arc<std::sync::Mutex<(Vec<&'static str>, u64)>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl IdentityProvider {
    async fn start() -> (IdentityProvider, String) {
        let idp = IdentityProvider { published: Default::default(), fetches: Default::default() };
        let state = idp.clone();
        let jwks = move || {
            let state = state.clone();
            async move {
                state.fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let all: Value = serde_json::from_str(&std::fs::read_to_string(fixture("jwks.json")).unwrap()).unwrap();
                let (kids, max_age) = state.published.lock().unwrap().clone();
                let keys: Vec<&Value> = all["keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|k| kids.contains(&k["kid"].as_str().unwrap()))
                    .collect();
                ([("cache-control", format!("public, max-age={max_age}"))], axum::Json(json!({"keys": keys})))
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
        let router = axum::Router::new().route("/.well-known/jwks.json", axum::routing::get(jwks));
        tokio::spawn(async move { axum::serve(listener, router).await });
        (idp, url)
    }

    fn publish(&self, kids: &[&'static str], max_age: u64) {
        *self.published.lock().unwrap() = (kids.to_vec(), max_age);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Whether a token lets its holder list orders over HTTP.
async fn accepted(t: &TestServer, token: &str) -> bool {
    let gql = Gql { url: format!("{}/graphql", t.http()), auth: Some(("authorization", format!("Bearer {token}"))) };
    gql.run("{ listOrders { items { id } } }", json!({})).await.get("errors").is_none()
}

/// `jwks-url`: keys come from the identity provider's endpoint, by kid. When the provider rotates its signing key,
/// tokens of the old key keep working while it stays published, a token of the new key makes the server fetch the
/// set again (at most once per `jwks-min-refresh-ms`, however many unknown kids arrive), and once the provider
/// withdraws the old key, the cache's max-age passing makes its tokens fail. A token signed by a key the provider
/// never published is refused throughout.
#[tokio::test]
async fn jwks_url_follows_a_key_rotation() {
    let (idp, url) = IdentityProvider::start().await;
    idp.publish(&["test-key-1"], 3600);
    let t = TestServer::start_with(Backend::Sqlite, |s| Settings {
        jwks_url: Some(url),
        jwks_min_refresh_ms: Some(1000),
        ..s
    })
    .await;
    assert_eq!(idp.fetches(), 1, "fetched once at start");
    let old = rs256("rs256.key.pem", Some("test-key-1"), claims("olga", 3600));
    let new = rs256("rs256-other.key.pem", Some("test-key-2"), claims("nina", 3600));
    let forged = rs256("rs256-other.key.pem", Some("test-key-1"), claims("mallory", 3600));
    assert!(accepted(&t, &old).await);
    assert!(!accepted(&t, &forged).await, "signed by a key other than the one its kid names");
    assert_eq!(idp.fetches(), 1, "a known kid fetches nothing");

    // Before the rotation, tokens of the unknown kid are refused, and however many arrive, they fetch the set at
    // most once per jwks-min-refresh-ms.
    for _ in 0..10 {
        assert!(!accepted(&t, &new).await);
    }
    assert!(idp.fetches() <= 3, "{} fetches for 10 tokens of an unknown kid", idp.fetches());

    idp.publish(&["test-key-2", "test-key-1"], 1);
    eventually("the new key's token accepted after the rotation", || async { accepted(&t, &new).await.then_some(()) })
        .await;
    assert!(accepted(&t, &old).await, "the old key is still published: its tokens keep working");
    let mut ws = Ws::open(&t.ws()).await;
    ws.send(json!({"type": "connection_init", "payload": {"Authorization": new}})).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack", "over WebSocket too");

    idp.publish(&["test-key-2"], 3600);
    eventually("the withdrawn key's token refused once the max-age passed", || async {
        (!accepted(&t, &old).await).then_some(())
    })
    .await;
    assert!(accepted(&t, &new).await);
    assert!(!accepted(&t, &forged).await);
}
