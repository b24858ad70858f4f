use base64::Engine;
use serde_json::json;
use sqlx::Connection;
use subsignal_tests::{
    database_for, eventually, fresh_postgres_schema, get, leases, postgres_available, Backend, ServerProcess,
    TestServer, Ws, ON_ORDER_CHANGED,
};

/// An AppSync real-time socket with one subscription started (`start_ack` seen).
async fn appsync_subscription(server: &ServerProcess, token: &str) -> Ws {
    let header = json!({"host": server.addr.to_string(), "Authorization": token}).to_string();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header);
    let url = format!("ws://{}/graphql/realtime", server.addr);
    let mut ws = Ws::open_with(&url, Some(&format!("graphql-ws, header-{header}")), None).await.expect("upgrade");
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    let data = json!({"query": ON_ORDER_CHANGED, "variables": {}}).to_string();
    let auth = json!({"host": server.addr.to_string(), "Authorization": token});
    ws.send(json!({"id": "s", "type": "start", "payload": {"data": data, "extensions": {"authorization": auth}}}))
        .await;
    loop {
        let message = ws.next_json().await;
        if message["type"] == "start_ack" {
            return ws;
        }
        assert_eq!(message["type"], "ka", "{message}");
    }
}

/// SIGTERM (and SIGINT) stop the server as an orchestrator expects: both WebSocket protocols close with 1001, the
/// process exits 0, and the leases it held are released in the database.
async fn a_stop_signal_closes_websockets_with_1001_releases_the_leases_and_exits_0(backend: Backend) {
    for signal in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let database = database_for(backend).await;
        let args: Vec<&str> = database.iter().flat_map(|url| ["--database", url.as_str()]).collect();
        let mut server = ServerProcess::start(dir.path(), &args).await;
        let held = eventually("the worker, reaper and pruner leases", || async {
            let leases = leases(&database, dir.path()).await;
            (leases.len() == 3 && leases.iter().all(|(_, _, held)| *held)).then_some(leases)
        })
        .await;
        let pid = server.pid().to_string();
        assert!(held.iter().all(|(_, holder, _)| holder.starts_with(&format!("{pid}-"))), "{held:?}");
        let token = server.dev_token("alice").await;
        let mut graphql_ws = Ws::connect(&format!("ws://{}/graphql", server.addr), &token).await;
        graphql_ws.subscribe_changes("1", Some(0)).await;
        let mut appsync = appsync_subscription(&server, &token).await;

        server.signal(signal);
        assert_eq!(graphql_ws.closed().await, 1001, "SIG{signal}: graphql-transport-ws is told the server goes away");
        assert_eq!(appsync.closed().await, 1001, "SIG{signal}: AppSync real-time is told the server goes away");
        let status = server.exited().await;
        assert!(status.success(), "SIG{signal}: a graceful shutdown exits 0, got {status}");
        let after = leases(&database, dir.path()).await;
        assert!(after.iter().all(|(_, _, held)| !held), "SIG{signal}: every lease is released: {after:?}");
        server.log_line("the shutdown's lease release", |l| l.contains("released this instance's leases")).await;
    }
}

/// With two instances on PostgreSQL and a lease far longer than the test, SIGTERM of the holder passes every lease to
/// the other instance at once (it is told of the release), not when the lease lapses.
#[tokio::test]
async fn sigterm_passes_the_leases_to_another_instance_at_once() {
    if !postgres_available() {
        return;
    }
    let url = fresh_postgres_schema().await;
    let args = ["--database", url.as_str(), "--worker-lease-ms", "3600000"];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = ServerProcess::start(dir_a.path(), &args).await;
    let database = Some(url.clone());
    eventually("A holding the three leases", || async {
        let leases = leases(&database, dir_a.path()).await;
        let mine = format!("{}-", a.pid());
        (leases.len() == 3 && leases.iter().all(|(_, holder, held)| *held && holder.starts_with(&mine))).then_some(())
    })
    .await;
    let b = ServerProcess::start(dir_b.path(), &args).await;
    a.signal("TERM");
    assert!(a.exited().await.success());
    let moved = eventually("B taking over the three leases", || async {
        let leases = leases(&database, dir_b.path()).await;
        let theirs = format!("{}-", b.pid());
        leases.iter().all(|(_, holder, held)| *held && holder.starts_with(&theirs)).then_some(leases)
    })
    .await;
    assert_eq!(moved.len(), 3);
}

/// A mutation under way when SIGTERM comes finishes and is answered, over HTTP and over WebSocket, before the
/// WebSocket closes with 1001; a mutation sent after SIGTERM finds no server. On PostgreSQL, where the test can hold
/// the seq counter's row lock to keep both mutations waiting inside the write path, and see them wait there.
#[tokio::test]
async fn mutations_under_way_at_sigterm_finish_and_are_answered() {
    if !postgres_available() {
        return;
    }
    let url = fresh_postgres_schema().await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path(), &["--database", &url]).await;
    let alice = server.client("alice").await;
    let token = server.dev_token("alice").await;
    let mut ws = Ws::connect(&format!("ws://{}/graphql", server.addr), &token).await;

    // Hold the row every write increments last: both mutations wait inside their transactions.
    let mut blocker = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut tx = blocker.begin().await.unwrap();
    sqlx::query("SELECT value FROM counters WHERE name = 'seq' FOR UPDATE").execute(&mut *tx).await.unwrap();
    let http = tokio::spawn(async move { alice.create_order("Over HTTP", Some("http-1")).await });
    let create =
        "mutation($i: CreateOrderInput!) { createOrder(input: $i, clientMutationId: \"ws-1\") { id customerName } }";
    ws.send(json!({"type": "subscribe", "id": "m", "payload": {"query": create,
        "variables": {"i": subsignal_tests::sample_input("Over WebSocket")}}}))
        .await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let watcher = &pool;
    eventually("both mutations waiting for the seq counter", move || async move {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'subsignal' \
             AND wait_event_type = 'Lock' AND query LIKE 'UPDATE counters%'",
        )
        .fetch_one(watcher)
        .await
        .unwrap();
        (waiting == 2).then_some(())
    })
    .await;

    server.signal("TERM");
    server.log_line("the shutdown starting", |l| l.contains("shutting down")).await;
    tx.commit().await.unwrap();
    let order = http.await.unwrap();
    assert_eq!(order["customerName"], "Over HTTP");
    let next = ws.next_json().await;
    assert_eq!(next["payload"]["data"]["createOrder"]["customerName"], "Over WebSocket", "{next}");
    assert_eq!(ws.next_json().await, json!({"type": "complete", "id": "m"}));
    assert_eq!(ws.closed().await, 1001);
    assert!(server.exited().await.success());
    let names: Vec<String> = sqlx::query_scalar("SELECT body::json->>'customerName' FROM items ORDER BY 1")
        .fetch_all(watcher)
        .await
        .unwrap();
    assert_eq!(names, ["Over HTTP", "Over WebSocket"]);
}

/// `/readyz` is 200 while the database answers and has every migration; 503 with the reason when a migration is
/// missing. `/healthz` says the process is up either way.
#[tokio::test]
async fn readyz_is_503_with_the_reason_when_a_migration_is_missing() {
    let t = TestServer::start(Backend::Sqlite).await;
    assert_eq!(get(&format!("{}/readyz", t.http())).await, (200, "ready".into()));
    let db = format!("sqlite:{}", t.dir.path().join("subsignal.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&db).await.unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 4").execute(&mut conn).await.unwrap();
    let (status, body) = get(&format!("{}/readyz", t.http())).await;
    assert_eq!(status, 503);
    assert!(body.contains("migrations not applied: 4 (items)") && body.contains("subsignal migrate"), "{body}");
    assert_eq!(get(&format!("{}/healthz", t.http())).await, (200, "ok".into()));
}

/// With PostgreSQL out of reach (through the network simulator, switched offline) `/readyz` is 503 and says the
/// database does not answer; back online, it is 200 again. `/healthz` stays 200.
#[tokio::test]
async fn readyz_is_503_while_postgres_is_out_of_reach_and_200_again_after() {
    if !postgres_available() {
        return;
    }
    let url = fresh_postgres_schema().await;
    let (authority, rest) = url.split_once('@').unwrap().1.split_once('/').unwrap();
    let netsim = subsignal_netsim::start(subsignal_netsim::NetsimConfig {
        upstream: authority.to_owned(),
        control: None,
        ..subsignal_netsim::NetsimConfig::default()
    })
    .await
    .expect("netsim starts");
    let through = format!("{}@{}/{rest}", url.split_once('@').unwrap().0, netsim.addr);
    let t = TestServer::start_on(Some(through), |s| s).await;
    let (readyz, healthz) = (format!("{}/readyz", t.http()), format!("{}/healthz", t.http()));
    assert_eq!(get(&readyz).await, (200, "ready".into()));

    netsim.select_profile("offline").unwrap();
    let reason = eventually("/readyz saying 503", || async {
        let (status, body) = get(&readyz).await;
        (status == 503).then_some(body)
    })
    .await;
    assert!(reason.starts_with("not ready: the database does not answer"), "{reason}");
    assert_eq!(get(&healthz).await, (200, "ok".into()));

    netsim.select_profile("none").unwrap();
    eventually("/readyz saying 200 again", || async { (get(&readyz).await.0 == 200).then_some(()) }).await;
}

/// Runs the `subsignal` binary with `args` (and no settings file), giving its exit status, stdout and stderr.
fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(subsignal_tests::server_binary())
        .args(args)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// `subsignal check-config` prints the effective settings without secrets and exits 0, or names what is wrong and
/// exits 1 (a bad value, a bad schema), without touching a database.
#[test]
fn check_config_prints_the_effective_settings_without_secrets_and_exits_0_or_1() {
    let secret = [("SUBSIGNAL_JWT_SECRET", "a-secret-nobody-may-read"), ("SUBSIGNAL_STEP_DELAY_MS", "7")];
    let (ok, out, err) = run(&["check-config", "--api-keys", "ci:key-nobody-may-read"], &secret);
    assert!(ok, "{out}{err}");
    for line in ["step-delay-ms = 7\n", "listen = \"127.0.0.1:4000\"\n", "# jwt-secret: set (hidden)\n"] {
        assert!(out.contains(line), "{line:?} in {out}");
    }
    assert!(out.contains("# OK: every setting is valid"), "{out}");
    assert!(!out.contains("nobody-may-read") && !err.contains("nobody-may-read"), "{out}{err}");

    let (ok, _, err) = run(&["check-config", "--worker-parallelism", "0"], &[]);
    assert!(!ok);
    assert!(err.contains("invalid setting `worker-parallelism`: must be between 1 and 256 (got 0)"), "{err}");

    let schema = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(schema.path(), "type Note @model {\n  title: String!\n}\n").unwrap();
    let (ok, _, err) = run(&["check-config", "--schema", schema.path().to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(err.contains(":1:6: model `Note` needs an `id: ID!` field"), "{err}");
}

/// `subsignal migrate` applies the migrations to a new database and exits 0; a server started on it is ready.
async fn migrate_applies_the_migrations_and_exits(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let database = database_for(backend).await;
    let mut args = vec!["migrate", "--data-dir", dir.path().to_str().unwrap()];
    args.extend(database.iter().flat_map(|url| ["--database", url.as_str()]));
    let (ok, out, err) = run(&args, &[]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("every migration is applied"), "{out}");
    let versions: Vec<i64> = match &database {
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY 1").fetch_all(&mut conn).await.unwrap()
        }
        None => {
            let url = format!("sqlite:{}", dir.path().join("subsignal.db").display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY 1").fetch_all(&mut conn).await.unwrap()
        }
    };
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    let server_args: Vec<&str> = database.iter().flat_map(|url| ["--database", url.as_str()]).collect();
    let server = ServerProcess::start(dir.path(), &server_args).await;
    assert_eq!(get(&format!("http://{}/readyz", server.addr)).await, (200, "ready".into()));
}

subsignal_tests::on_both_backends!(
    a_stop_signal_closes_websockets_with_1001_releases_the_leases_and_exits_0,
    migrate_applies_the_migrations_and_exits,
);

/// A CORS preflight as a browser on `origin` sends it before a POST with a token.
async fn preflight(t: &TestServer, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", t.http()))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .unwrap()
}

/// A Vite dev server on another port may call the API with a token: its origin is listed in `allowed-origins`, so the
/// preflight allows it and the POST's answer names it; another origin gets no CORS headers (the browser refuses).
/// With no list, any origin may.
#[tokio::test]
async fn cors_follows_allowed_origins() {
    let vite = "http://localhost:5173";
    let t = TestServer::start_with(Backend::Sqlite, |s| subsignal_server::config::Settings {
        allowed_origins: Some(vec![vite.into()]),
        ..s
    })
    .await;
    let allowed = preflight(&t, vite).await;
    assert!(allowed.status().is_success());
    let headers = allowed.headers();
    assert_eq!(headers["access-control-allow-origin"], vite);
    let allow_headers = headers["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allow_headers.contains("authorization") && allow_headers.contains("content-type"), "{allow_headers}");
    assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("POST"));

    let post = reqwest::Client::new()
        .post(format!("{}/graphql", t.http()))
        .header("origin", vite)
        .header("authorization", format!("Bearer {}", t.token("alice")))
        .json(&json!({"query": "{ listOrders { items { id } } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.headers()["access-control-allow-origin"], vite);
    let body: serde_json::Value = post.json().await.unwrap();
    assert_eq!(body["data"]["listOrders"]["items"], json!([]), "{body}");

    let refused = preflight(&t, "https://evil.example").await;
    assert!(refused.headers().get("access-control-allow-origin").is_none(), "{:?}", refused.headers());

    let open = TestServer::start(Backend::Sqlite).await;
    assert_eq!(preflight(&open, "https://anywhere.example").await.headers()["access-control-allow-origin"], "*");
}

/// Opens a graphql-transport-ws socket with extra request headers; gives the handshake's HTTP status.
async fn upgrade_status(t: &TestServer, headers: &[(&'static str, &str)]) -> (u16, Option<Ws>) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = t.ws().into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, response)) => (response.status().as_u16(), Some(Ws::from_socket(socket))),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => (response.status().as_u16(), None),
        Err(e) => panic!("upgrade failed: {e}"),
    }
}

/// The per-address WebSocket limit counts the client named by `X-Forwarded-For` or `Forwarded` when the peer is a
/// trusted proxy, and the peer itself otherwise: an untrusted peer cannot pick its address by sending the header.
#[tokio::test]
async fn forwarding_headers_name_the_client_only_from_trusted_proxies() {
    let limit_one = |proxies: Vec<String>| {
        move |s| subsignal_server::config::Settings {
            max_connections_per_addr: Some(1),
            trusted_proxies: Some(proxies),
            ..s
        }
    };
    let behind_proxy = TestServer::start_with(Backend::Sqlite, limit_one(vec!["127.0.0.0/8".into()])).await;
    let (status, _first) = upgrade_status(&behind_proxy, &[("x-forwarded-for", "203.0.113.1")]).await;
    assert_eq!(status, 101);
    let (status, _other) = upgrade_status(&behind_proxy, &[("forwarded", "for=203.0.113.2;proto=https")]).await;
    assert_eq!(status, 101, "another client behind the same proxy has its own count");
    let (status, _) = upgrade_status(&behind_proxy, &[("x-forwarded-for", "203.0.113.1")]).await;
    assert_eq!(status, 429, "the first client's second socket is over its limit");

    let direct = TestServer::start_with(Backend::Sqlite, limit_one(vec!["10.0.0.0/8".into()])).await;
    let (status, _first) = upgrade_status(&direct, &[("x-forwarded-for", "203.0.113.1")]).await;
    assert_eq!(status, 101);
    let (status, _) = upgrade_status(&direct, &[("x-forwarded-for", "203.0.113.2")]).await;
    assert_eq!(status, 429, "from an untrusted peer the header is ignored: both sockets are the peer's");
}

/// The log line of `lines` that `matches`, as JSON.
fn json_line(
    lines: &[serde_json::Value],
    what: &str,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    lines.iter().find(|l| matches(l)).cloned().unwrap_or_else(|| panic!("no {what} line in {lines:#?}"))
}

/// `--log-format json` writes one JSON object per line: one per HTTP request (status, latency, and in its span the
/// method, path and client), one per WebSocket connection as it ends (protocol, client, close code, who closed,
/// duration, operations), and an internal error's line carries the reference its client was given, in the span of
/// the request that failed.
#[tokio::test]
async fn json_logs_have_a_line_per_request_and_per_websocket_and_errors_carry_their_reference() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(&["migrate", "--data-dir", dir.path().to_str().unwrap()], &[]);
    assert!(ok, "{out}{err}");
    // A change-log record no writer writes: reading it fails inside the server.
    let db = format!("sqlite:{}", dir.path().join("subsignal.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&db).await.unwrap();
    sqlx::query(
        "INSERT INTO change_log (seq, model, op, key, owner, version, image, committed_at_ms) \
         VALUES (1, 'Order', 'BOGUS', 'k', 'alice', 1, '{}', $1)",
    )
    .bind(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("UPDATE counters SET value = 1 WHERE name = 'seq'").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();

    let server = ServerProcess::start(dir.path(), &["--log-format", "json"]).await;
    assert_eq!(get(&format!("http://{}/readyz", server.addr)).await.0, 200);
    let token = server.dev_token("alice").await;
    let mut ws = Ws::connect(&format!("ws://{}/graphql", server.addr), &token).await;
    ws.subscribe_changes("1", None).await;
    ws.close(1000).await;
    let admin = server.client("admin").await;
    let failed = admin.run("{ orderChangesSince(afterSeq: 0) { changes { seq } } }", json!({})).await;
    let message = failed["errors"][0]["message"].as_str().unwrap().to_owned();
    assert_eq!(failed["errors"][0]["extensions"]["code"], "INTERNAL", "{failed}");
    let reference = message.split("reference ").nth(1).unwrap().trim_end_matches('.').to_owned();
    server.log_line("the error's reference", |l| l.contains(&reference)).await;
    server.log_line("the websocket's line", |l| l.contains("websocket connection closed")).await;

    let lines: Vec<serde_json::Value> = server
        .log()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let readyz = json_line(&lines, "/readyz request", |l| l["message"] == "request" && l["span"]["path"] == "/readyz");
    assert_eq!((readyz["status"].as_u64(), readyz["level"].as_str()), (Some(200), Some("INFO")), "{readyz}");
    assert!(readyz["latency_ms"].is_u64() && readyz["timestamp"].is_string(), "{readyz}");
    assert_eq!((&readyz["span"]["method"], &readyz["span"]["client"]), (&json!("GET"), &json!("127.0.0.1")));

    let socket = json_line(&lines, "websocket", |l| l["message"] == "websocket connection closed");
    assert_eq!(socket["span"]["protocol"], "graphql-transport-ws", "{socket}");
    assert_eq!(
        (&socket["close_code"], &socket["closed_by"], &socket["operations"]),
        (&json!(1000), &json!("client"), &json!(1))
    );
    assert!(socket["duration_ms"].is_u64(), "{socket}");

    let error = json_line(&lines, "error", |l| l["reference"] == json!(reference));
    assert_eq!(error["level"], "ERROR", "{error}");
    assert!(error["error"].as_str().unwrap().contains("BOGUS"), "the details stay in the log: {error}");
    let request =
        json_line(&lines, "failed request", |l| l["message"] == "request" && l["span"]["id"] == error["span"]["id"]);
    assert_eq!(
        (&request["span"]["path"], &request["span"]["method"]),
        (&json!("/graphql"), &json!("POST")),
        "{request}"
    );
}

/// The value of the sample `series` (`name` or `name{labels}`, as rendered) in a Prometheus text exposition.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn scrape(addr: &str) -> String {
    let (status, body) = get(&format!("http://{addr}/metrics")).await;
    assert_eq!(status, 200);
    body
}

/// `/metrics`, on its own address, counts what traffic did: connections and subscriptions by protocol, events
/// delivered and their lag, list items served, mutation latency, conflicts, validation failures, worker batches, TTL
/// expiries, the change log's size, and rate-limit refusals.
#[tokio::test]
async fn metrics_count_what_traffic_did() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--metrics-listen", "127.0.0.1:0", "--max-messages-per-sec", "5", "--reap-interval-ms", "100"];
    let server = ServerProcess::start(dir.path(), &args).await;
    let line = server.log_line("the metrics address", |l| l.contains("metrics: http://")).await;
    let metrics = line.split("metrics: http://").nth(1).unwrap().trim_end_matches("/metrics").to_owned();
    assert_ne!(metrics, server.addr.to_string(), "metrics are served on their own address");
    assert_eq!(get(&format!("http://{}/metrics", server.addr)).await.0, 404, "and not beside the API");

    let token = server.dev_token("alice").await;
    let mut subscriber = Ws::connect(&format!("ws://{}/graphql", server.addr), &token).await;
    subscriber.subscribe_changes("1", Some(0)).await;
    let _appsync = appsync_subscription(&server, &token).await;
    let alice = server.client("alice").await;
    let order = alice.create_order("Counted", None).await;
    assert_eq!(subscriber.next_real_change().await["op"], "INSERT");
    let listed = alice.data("{ listOrders { items { id } nextToken seq } }", json!({})).await;
    assert_eq!(listed["listOrders"]["items"].as_array().map(Vec::len), Some(1), "{listed}");
    let stale = alice
        .run(
            "mutation($id: ID!) { updateOrder(input: {id: $id, customerName: \"Late\"}, expectedVersion: 99) { id } }",
            json!({"id": order["id"]}),
        )
        .await;
    assert_eq!(stale["errors"][0]["extensions"]["code"], "CONFLICT", "{stale}");
    let mut bad = subsignal_tests::sample_input("Bad");
    bad["email"] = json!("not an email");
    let invalid =
        alice.run("mutation($i: CreateOrderInput!) { createOrder(input: $i) { id } }", json!({"i": bad})).await;
    assert_eq!(invalid["errors"][0]["extensions"]["code"], "VALIDATION", "{invalid}");
    assert!(alice.run("{ noSuchField }", json!({})).await["errors"].is_array());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut brief = subsignal_tests::sample_input("Brief");
    brief["expiresAt"] = json!(now + 1);
    alice.data("mutation($i: CreateOrderInput!) { createOrder(input: $i) { id } }", json!({"i": brief})).await;
    let mut flooder = Ws::connect(&format!("ws://{}/graphql", server.addr), &token).await;
    for _ in 0..20 {
        flooder.send_text_lenient(r#"{"type":"ping"}"#).await;
    }
    assert_eq!(flooder.closed().await, 1008);

    let text = eventually("the TTL expiry, the worker's batches and the flooder's close in /metrics", || async {
        let text = scrape(&metrics).await;
        let done = sample(&text, "subsignal_ttl_expiries_total") == Some(1.0)
            && sample(&text, "subsignal_worker_batches_total{consumer=\"order-processor\"}").is_some()
            && sample(&text, "subsignal_websocket_connections{protocol=\"graphql-transport-ws\"}") == Some(1.0);
        done.then_some(text)
    })
    .await;
    for (series, expected) in [
        ("subsignal_websocket_connections{protocol=\"appsync\"}", 1.0),
        ("subsignal_subscriptions{protocol=\"graphql-transport-ws\"}", 1.0),
        ("subsignal_subscriptions{protocol=\"appsync\"}", 1.0),
        ("subsignal_write_conflicts_total", 1.0),
        ("subsignal_validation_failures_total{kind=\"input\"}", 1.0),
        ("subsignal_validation_failures_total{kind=\"document\"}", 1.0),
        ("subsignal_limit_refusals_total{limit=\"messages_per_sec\"}", 1.0),
        ("subsignal_change_log_pruned_seq", 0.0),
        ("subsignal_list_items_served_total{model=\"Order\"}", 1.0),
    ] {
        assert_eq!(sample(&text, series), Some(expected), "{series} in\n{text}");
    }
    let at_least = |series: &str, min: f64| {
        let value = sample(&text, series).unwrap_or_else(|| panic!("{series} in\n{text}"));
        assert!(value >= min, "{series} = {value}, expected at least {min}");
        value
    };
    at_least("subsignal_events_delivered_total{protocol=\"graphql-transport-ws\"}", 1.0);
    at_least("subsignal_events_delivered_total{protocol=\"appsync\"}", 1.0);
    at_least("subsignal_subscription_lag_seqs_count", 2.0);
    at_least("subsignal_subscription_lag_seqs_bucket{le=\"+Inf\"}", 2.0);
    // Two creates, the stale update and the invalid create ran as mutations.
    at_least("subsignal_mutation_duration_seconds_count", 4.0);
    at_least("subsignal_mutation_duration_seconds_bucket{le=\"10\"}", 4.0);
    let head = at_least("subsignal_change_log_head_seq", 3.0);
    assert_eq!(sample(&text, "subsignal_change_log_records"), Some(head));
}

/// Worker retries and dead letters are counted by consumer.
#[tokio::test]
async fn metrics_count_worker_retries_and_dead_letters() {
    let t = TestServer::start_with(Backend::Sqlite, |s| subsignal_server::config::Settings {
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        step_delay_ms: Some(60_000),
        ..s
    })
    .await;
    t.client("alice").create_order("Poison", None).await;
    let handler: subsignal_server::workers::Handler =
        std::sync::Arc::new(|_| Box::pin(async { Err("cannot handle this one".to_owned().into()) }));
    let consumer = subsignal_server::workers::ConsumerConfig {
        name: "metrics-test-consumer".into(),
        batch_size: 10,
        parallelism: 1,
        max_attempts: 3,
        backoff: std::time::Duration::from_millis(1),
        lease: std::time::Duration::from_secs(10),
    };
    subsignal_server::workers::consume_batch(&t.server.storage, &consumer, &handler).await.unwrap();
    let text = scrape(&t.server.metrics_addr.unwrap().to_string()).await;
    let series = |name: &str| sample(&text, &format!("{name}{{consumer=\"metrics-test-consumer\"}}"));
    assert_eq!(series("subsignal_worker_retries_total"), Some(2.0), "{text}");
    assert_eq!(series("subsignal_worker_dead_letters_total"), Some(1.0), "{text}");
    assert_eq!(series("subsignal_worker_batches_total"), Some(1.0), "{text}");
}
