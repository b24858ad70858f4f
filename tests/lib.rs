//! Shared helpers for the end-to-end tests in `tests.rs`: an in-process server on a free port (on SQLite or
//! PostgreSQL), a server process for crash tests, a GraphQL-over-HTTP client, a raw graphql-transport-ws client, and
//! [`store_shell`], the store core driven natively for tests that need several store clients.
//!
//! The suite runs against both backends: [`on_both_backends!`] turns each `async fn test(backend: Backend)` into
//! `sqlite::test` and `postgres::test`. The PostgreSQL half needs `SUBSIGNAL_TEST_POSTGRES_URL` (a database the tests
//! may create schemas in; `cargo xtask test` starts one). Without it the PostgreSQL tests fail when
//! `SUBSIGNAL_REQUIRE_POSTGRES=1` or `CI` is set, and otherwise pass without running, after one line on stderr
//! saying so. The PostgreSQL-restart test needs a cluster of its own too, [`RESTARTABLE_POSTGRES_VAR`].

pub mod store_shell;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use subsignal_server::clock::Clock;
use subsignal_server::config::{Config, Settings};
use subsignal_server::RunningServer;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// How long a test waits for any one expected thing before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// Settings every test server starts from: a free port, no worker delay, dev tokens, quick watermarks.
pub fn test_settings(data_dir: &Path) -> Settings {
    Settings {
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        data_dir: Some(data_dir.to_owned()),
        step_delay_ms: Some(0),
        dev_tokens: Some(true),
        reap_interval_ms: Some(100),
        watermark_interval_ms: Some(200),
        worker_backoff_ms: Some(10),
        api_keys: Some(vec!["backend:test-api-key-123".into()]),
        web_dir: Some(data_dir.join("no-web")),
        ..Settings::default()
    }
}

/// Which database a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in the server's temporary data folder.
    Sqlite,
    /// A fresh schema in the database at `SUBSIGNAL_TEST_POSTGRES_URL`.
    Postgres,
}

/// The environment variable with the PostgreSQL URL for the tests.
pub const POSTGRES_URL_VAR: &str = "SUBSIGNAL_TEST_POSTGRES_URL";

/// Whether the PostgreSQL tests can run. Panics when they must (`SUBSIGNAL_REQUIRE_POSTGRES=1` or `CI` set) but
/// [`POSTGRES_URL_VAR`] is missing; otherwise, when it is missing, says once that the PostgreSQL half did not run.
pub fn postgres_available() -> bool {
    postgres_var(POSTGRES_URL_VAR).is_some()
}

/// The value of `var`, which `cargo xtask test` sets for the PostgreSQL tests. Panics when it is missing but the
/// PostgreSQL tests must run (`SUBSIGNAL_REQUIRE_POSTGRES=1` or `CI` set); otherwise says once that they did not run.
fn postgres_var(var: &str) -> Option<String> {
    if let Some(value) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
        return Some(value);
    }
    let required = std::env::var("SUBSIGNAL_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
        || std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    assert!(
        !required,
        "{var} is not set, but the PostgreSQL tests must run here (CI or SUBSIGNAL_REQUIRE_POSTGRES=1); \
         run them with `cargo xtask test`, which starts PostgreSQL (or `cargo xtask postgres` for its variables)"
    );
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        use std::io::Write;
        // Straight to the process's stderr: the test harness captures `eprintln!`.
        let _ = writeln!(
            std::io::stderr(),
            "NOTE: the PostgreSQL half of the suite did NOT run ({var} is unset; \
             `cargo xtask test` provides it). Only SQLite was tested."
        );
    });
    None
}

/// A URL of a fresh, empty schema in the test database: its connections see only that schema, so tests run in
/// parallel without seeing each other's tables.
pub async fn fresh_postgres_schema() -> String {
    fresh_schema_in(&std::env::var(POSTGRES_URL_VAR).expect("the PostgreSQL test URL")).await
}

/// The variable naming a second PostgreSQL cluster, one that tests may stop and start: JSON
/// `{"url": "postgres://…", "pg_ctl": ["…/pg_ctl", "-D", "…", …]}` (`cargo xtask test` sets it).
pub const RESTARTABLE_POSTGRES_VAR: &str = "SUBSIGNAL_TEST_POSTGRES_RESTARTABLE";

/// A PostgreSQL cluster of the tests' own that a test may stop and start, unlike the one every other test shares.
#[derive(Debug, Clone)]
pub struct RestartablePostgres {
    /// A database in it that tests may create schemas in.
    pub url: String,
    /// `pg_ctl` for this cluster, run as its owner, without the mode (`stop`, `start`).
    pg_ctl: Vec<String>,
}

impl RestartablePostgres {
    /// The cluster, when the PostgreSQL tests run ([`RESTARTABLE_POSTGRES_VAR`]; see [`postgres_available`]).
    pub fn from_env() -> Option<RestartablePostgres> {
        let text = postgres_var(RESTARTABLE_POSTGRES_VAR)?;
        let value: Value = serde_json::from_str(&text).expect("RESTARTABLE_POSTGRES_VAR is JSON");
        let url = value["url"].as_str().expect("its url").to_owned();
        let pg_ctl = value["pg_ctl"].as_array().expect("its pg_ctl").iter().map(|a| a.as_str().unwrap().to_owned());
        Some(RestartablePostgres { url, pg_ctl: pg_ctl.collect() })
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(&self.pg_ctl[0]);
        command.args(&self.pg_ctl[1..]).args(args).stdout(Stdio::null());
        command
    }

    async fn run_pg_ctl(&self, args: &[&str]) {
        let status = tokio::process::Command::from(self.pg_ctl(args)).status().await.expect("pg_ctl runs");
        assert!(status.success(), "pg_ctl {args:?} failed");
    }

    /// Stops the cluster, waiting until it is down: `fast` disconnects every client first, as an operator's restart
    /// does; `immediate` stops without a shutdown checkpoint, as a crash would. The cluster starts again at
    /// [`StoppedPostgres::start`], or when the guard is dropped.
    pub async fn stop(&self, mode: &str) -> StoppedPostgres<'_> {
        self.run_pg_ctl(&["stop", "-m", mode]).await;
        StoppedPostgres(Some(self))
    }
}

/// A [`RestartablePostgres`] that is down.
#[derive(Debug)]
pub struct StoppedPostgres<'a>(Option<&'a RestartablePostgres>);

impl StoppedPostgres<'_> {
    /// Starts the cluster again and waits until it accepts connections.
    pub async fn start(mut self) {
        if let Some(cluster) = self.0.take() {
            cluster.run_pg_ctl(&["start"]).await;
        }
    }
}

impl Drop for StoppedPostgres<'_> {
    fn drop(&mut self) {
        // A test that failed while the cluster was down leaves it running for the next.
        if let Some(cluster) = self.0.take() {
            let _ = cluster.pg_ctl(&["start"]).status();
        }
    }
}

/// A URL of a fresh, empty schema in the database at `base`.
pub async fn fresh_schema_in(base: &str) -> String {
    use sqlx::Connection;
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(base).await.expect("connect to the test PostgreSQL");
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut conn).await.expect("create a test schema");
    let _ = conn.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// The database setting for `backend`: none (SQLite in the data dir) or a fresh PostgreSQL schema.
pub async fn database_for(backend: Backend) -> Option<String> {
    match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(fresh_postgres_schema().await),
    }
}

/// Generates, for each named `async fn name(backend: Backend)` of the calling module, the tests `sqlite::name` and
/// `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if $crate::postgres_available() {
                        super::$name($crate::Backend::Postgres).await
                    }
                }
            )+
        }
    };
}

/// A server running in this process, with its own temporary data folder.
pub struct TestServer {
    /// The running server.
    pub server: RunningServer,
    /// Keeps the data folder alive.
    pub dir: tempfile::TempDir,
    /// The database setting it runs on (`None`: SQLite in `dir`).
    pub database: Option<String>,
    /// The server's time of day (the wall clock unless started with [`TestServer::start_on_clock`]).
    pub clock: Clock,
}

impl TestServer {
    /// Starts on `backend` with [`test_settings`].
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |s| s).await
    }

    /// Starts on `backend` with [`test_settings`] changed by `tweak`.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(Settings) -> Settings) -> TestServer {
        let database = database_for(backend).await;
        Self::start_on(database, tweak).await
    }

    /// Starts on the given database setting (another instance of the same database, for example).
    pub async fn start_on(database: Option<String>, tweak: impl FnOnce(Settings) -> Settings) -> TestServer {
        Self::start_on_clock(database, Clock::system(), tweak).await
    }

    /// Starts on the given database setting with `clock` as the server's time of day: with
    /// [`Clock::adjustable`], a test jumps over a TTL, a token's lifetime or a lease ([`Clock::advance`]) instead of
    /// sleeping through it. Instances that share a database share the clock too.
    pub async fn start_on_clock(
        database: Option<String>,
        clock: Clock,
        tweak: impl FnOnce(Settings) -> Settings,
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = Settings {
            database: database.clone(),
            // Instances of one database must share the secret that signs user tokens.
            jwt_secret: Some("test-secret-shared-by-instances".into()),
            worker_lease_ms: Some(1000),
            ..test_settings(dir.path())
        };
        let config = Config { clock: clock.clone(), ..tweak(settings).resolve().expect("valid test settings") };
        let server = subsignal_server::start(config).await.expect("server starts");
        TestServer { server, dir, database, clock }
    }

    /// The HTTP base URL.
    pub fn http(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// The WebSocket URL.
    pub fn ws(&self) -> String {
        format!("ws://{}/graphql", self.server.addr)
    }

    /// A token for `user` (in the admin group when `user` is "admin").
    pub fn token(&self, user: &str) -> String {
        let groups = if user == "admin" { vec!["admin".to_owned()] } else { vec![] };
        self.server.auth.issue(user, groups, 3600).expect("token")
    }

    /// A GraphQL client for `user`.
    pub fn client(&self, user: &str) -> Gql {
        Gql {
            url: format!("{}/graphql", self.http()),
            auth: Some(("authorization", format!("Bearer {}", self.token(user)))),
        }
    }
}

/// GraphQL over HTTP.
#[derive(Debug, Clone)]
pub struct Gql {
    /// `http://…/graphql`.
    pub url: String,
    /// A header carrying credentials.
    pub auth: Option<(&'static str, String)>,
}

impl Gql {
    /// Runs an operation and returns the whole response body.
    pub async fn run(&self, query: &str, variables: Value) -> Value {
        let client = reqwest::Client::new();
        let mut req = client.post(&self.url).json(&json!({"query": query, "variables": variables}));
        if let Some((name, value)) = &self.auth {
            req = req.header(*name, value);
        }
        let resp = req.send().await.expect("HTTP request");
        resp.json().await.expect("JSON body")
    }

    /// Runs an operation that must succeed and returns `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let body = self.run(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Creates an order and returns it.
    pub async fn create_order(&self, name: &str, mutation_id: Option<&str>) -> Value {
        let data = self
            .data(
                &format!("mutation($input: CreateOrderInput!, $m: ID) {{ createOrder(input: $input, clientMutationId: $m) {{ {ORDER_FIELDS} }} }}"),
                json!({"input": sample_input(name), "m": mutation_id}),
            )
            .await;
        data["createOrder"].clone()
    }
}

/// The fields tests read of an order.
pub const ORDER_FIELDS: &str =
    "id owner customerName email items { sku quantity unitPriceCents } totalCents status version createdAt updatedAt expiresAt";

/// The subscription tests use.
pub const ON_ORDER_CHANGED: &str =
    "subscription($after: Int) { onOrderChanged(afterSeq: $after) { seq prevSeq op key version expired clientMutationId order { id owner status version } } }";

/// A valid order input.
pub fn sample_input(name: &str) -> Value {
    json!({"customerName": name, "email": "someone@example.com", "items": [{"sku": "tea", "quantity": 2, "unitPriceCents": 450}]})
}

/// A client WebSocket.
pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A raw graphql-transport-ws client.
pub struct Ws {
    socket: Socket,
}

/// What a socket read gave.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// A JSON text message.
    Json(Value),
    /// A close frame with its code.
    Closed(u16),
}

impl Ws {
    /// Wraps a socket opened by hand.
    pub fn from_socket(socket: Socket) -> Ws {
        Ws { socket }
    }

    /// Opens a socket offering `graphql-transport-ws`.
    pub async fn open(url: &str) -> Ws {
        Self::open_with(url, Some("graphql-transport-ws"), None).await.expect("WebSocket upgrade")
    }

    /// Opens a socket with an optional subprotocol and Origin.
    pub async fn open_with(
        url: &str,
        protocol: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request()?;
        if let Some(p) = protocol {
            request.headers_mut().insert("sec-websocket-protocol", p.parse().expect("header"));
        }
        if let Some(o) = origin {
            request.headers_mut().insert("origin", o.parse().expect("header"));
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Ws { socket })
    }

    /// Opens, initialises with `token` and waits for the ack.
    pub async fn connect(url: &str, token: &str) -> Ws {
        let mut ws = Self::open(url).await;
        ws.send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}})).await;
        assert_eq!(ws.next_json().await["type"], "connection_ack");
        ws
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, message: Value) {
        self.socket.send(Message::Text(message.to_string().into())).await.expect("send");
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        self.socket.send(Message::Text(text.into())).await.expect("send");
    }

    /// Sends raw text, ignoring a failure (the server may close mid-send when the text breaks a limit).
    pub async fn send_text_lenient(&mut self, text: &str) {
        let _ = self.socket.send(Message::Text(text.into())).await;
    }

    /// Subscribes `id` to `onOrderChanged(afterSeq)`.
    pub async fn subscribe_changes(&mut self, id: &str, after: Option<i64>) {
        self.send(json!({"type": "subscribe", "id": id, "payload": {"query": ON_ORDER_CHANGED, "variables": {"after": after}}}))
            .await;
    }

    /// The next frame, skipping pings; fails the test after [`WAIT`].
    pub async fn next_frame(&mut self) -> Frame {
        self.next_frame_within(WAIT).await.expect("a frame within the wait")
    }

    /// The next frame within `wait`, or `None`.
    pub async fn next_frame_within(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.socket.next()).await.ok()?;
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return Some(Frame::Json(serde_json::from_str(t.as_str()).expect("JSON frame")))
                }
                Some(Ok(Message::Close(frame))) => {
                    return Some(Frame::Closed(frame.map(|f: CloseFrame| u16::from(f.code)).unwrap_or(1005)))
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(Frame::Closed(1006)),
            }
        }
    }

    /// The next JSON message.
    pub async fn next_json(&mut self) -> Value {
        match self.next_frame().await {
            Frame::Json(v) => v,
            Frame::Closed(code) => panic!("socket closed with {code} while a message was expected"),
        }
    }

    /// The next `onOrderChanged` payload of a `next` message (watermarks included).
    pub async fn next_change(&mut self) -> Value {
        let msg = self.next_json().await;
        assert_eq!(msg["type"], "next", "expected a next message, got {msg}");
        msg["payload"]["data"]["onOrderChanged"].clone()
    }

    /// The next non-watermark change.
    pub async fn next_real_change(&mut self) -> Value {
        loop {
            let change = self.next_change().await;
            if change["op"] != "WATERMARK" {
                return change;
            }
        }
    }

    /// Closes the socket from the client's side with `code`, and waits for the server's answer.
    pub async fn close(&mut self, code: u16) {
        let frame = CloseFrame { code: code.into(), reason: "".into() };
        self.socket.close(Some(frame)).await.expect("close");
        while let Some(Ok(_)) = self.socket.next().await {}
    }

    /// Waits for the close code.
    pub async fn closed(&mut self) -> u16 {
        loop {
            match self.next_frame().await {
                Frame::Closed(code) => return code,
                Frame::Json(_) => continue,
            }
        }
    }
}

/// The `subsignal` binary: `SUBSIGNAL_BIN` when set (`cargo xtask test` sets it to the one its test build made),
/// else built now.
pub fn server_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SUBSIGNAL_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_owned();
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "subsignal-server", "--bin", "subsignal"])
        .current_dir(&root)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the subsignal binary failed");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    target.join("debug").join("subsignal")
}

/// `GET url`: the status and the body.
pub async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("GET");
    (response.status().as_u16(), response.text().await.expect("a body"))
}

/// The rows `sql` reads from the database of a server: `database`, or SQLite in `dir`.
pub async fn db_rows<T>(database: &Option<String>, dir: &Path, sql: &str) -> Vec<T>
where
    T: Send + Unpin,
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
{
    use sqlx::Connection;
    match database {
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
            sqlx::query_as(sql).fetch_all(&mut conn).await.expect("a query the database answers")
        }
        None => {
            let url = format!("sqlite:{}", dir.join("subsignal.db").display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open");
            sqlx::query_as(sql).fetch_all(&mut conn).await.expect("a query the database answers")
        }
    }
}

/// The leases in the database of a server (`database`, or SQLite in `dir`): (name, holder, held now by the wall
/// clock).
pub async fn leases(database: &Option<String>, dir: &Path) -> Vec<(String, String, bool)> {
    let sql = "SELECT consumer, holder, expires_at_ms FROM stream_leases ORDER BY consumer";
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis() as i64;
    let rows: Vec<(String, String, i64)> = db_rows(database, dir, sql).await;
    rows.into_iter().map(|(name, holder, expires)| (name, holder, expires > now)).collect()
}

/// Calls `probe` every 50 ms until it gives `Some`, and returns that; fails the test, naming `what`, after [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `subsignal serve` child process.
pub struct ServerProcess {
    /// The child.
    pub child: tokio::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every line it has logged so far (its standard output).
    log: tokio::sync::watch::Receiver<Vec<String>>,
}

impl ServerProcess {
    /// Starts `subsignal serve` on a free port with `args` and waits until it listens.
    pub async fn start(data_dir: &Path, args: &[&str]) -> ServerProcess {
        Self::start_on("127.0.0.1:0", data_dir, args).await
    }

    /// Starts on a given address.
    pub async fn start_on(listen: &str, data_dir: &Path, args: &[&str]) -> ServerProcess {
        let mut child = tokio::process::Command::new(server_binary())
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .args(if args.contains(&"--step-delay-ms") { &[][..] } else { &["--step-delay-ms", "0"][..] })
            .args(["--dev-tokens", "--web"])
            .arg(data_dir.join("no-web"))
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn subsignal");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (log_tx, log) = tokio::sync::watch::channel(Vec::new());
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                log_tx.send_modify(|log| log.push(line));
            }
        });
        let mut server = ServerProcess { child, addr: SocketAddr::from(([0, 0, 0, 0], 0)), log };
        let line = server.log_line("the line saying where it listens", |l| l.contains("listening on http://")).await;
        let rest = line.split("listening on http://").nth(1).expect("address");
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || ".:[]".contains(c))).unwrap_or(rest.len());
        server.addr = rest[..end].parse().expect("address in log");
        server
    }

    /// The first line of the server's log that `matches`; fails the test after [`WAIT`].
    pub async fn log_line(&self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let mut log = self.log.clone();
        let waited = tokio::time::timeout(WAIT, log.wait_for(|lines| lines.iter().any(|l| matches(l)))).await;
        let lines = self.log.borrow();
        match waited {
            Ok(_) => lines.iter().find(|l| matches(l)).cloned().expect("a matching line"),
            Err(_) => panic!("no log line for {what} in:\n{}", lines.join("\n")),
        }
    }

    /// Every line the server has logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends a signal (`TERM`, `INT`…) to the server.
    pub fn signal(&self, name: &str) {
        let sent = std::process::Command::new("kill").arg(format!("-{name}")).arg(self.pid().to_string()).status();
        assert!(sent.expect("kill runs").success(), "kill -{name}");
    }

    /// Waits for the server to exit; fails the test after [`WAIT`].
    pub async fn exited(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(WAIT, self.child.wait()).await.expect("exits in time").expect("wait")
    }

    /// A token from the dev endpoint.
    pub async fn dev_token(&self, user: &str) -> String {
        let body: Value = reqwest::get(format!("http://{}/dev/token?user={user}", self.addr))
            .await
            .expect("dev token")
            .json()
            .await
            .expect("JSON");
        body["token"].as_str().expect("token").to_owned()
    }

    /// A GraphQL client for `user`.
    pub async fn client(&self, user: &str) -> Gql {
        Gql {
            url: format!("http://{}/graphql", self.addr),
            auth: Some(("authorization", format!("Bearer {}", self.dev_token(user).await))),
        }
    }

    /// `kill -9`.
    pub async fn kill9(mut self) {
        self.child.kill().await.expect("SIGKILL");
    }
}
