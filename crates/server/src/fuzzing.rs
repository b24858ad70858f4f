//! Entry points for the fuzz targets in `fuzz/` and for the stable test that replays their corpus
//! (`tests/fuzz_corpus.rs`). Each target's whole body is a [`Harness`] method, so that it is compiled, linted and run
//! over the corpus on stable by `cargo xtask test`; the targets themselves are one line each. They drive the same
//! code as the server: the graphql-transport-ws connection machine over in-memory message streams, and the schema's
//! parse + limits + validation (+ execution, which stops at the first resolver without credentials). Not part of the
//! supported API.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::ws::Message;
use futures_util::StreamExt;
use subsignal_protocol::transport_ws::ClientMessage;
use tokio::sync::watch;

use crate::auth::{Auth, AuthConfig};
use crate::config::Settings;
use crate::schema::{Limits, SchemaState};
use crate::storage::Storage;
use crate::stream::ChangeFeed;
use crate::AppState;

/// The API key fuzz inputs may use in `connection_init` (`{"x-api-key": …}`) to reach the resolvers.
pub const API_KEY: &str = "fuzz-api-key-0001";

/// A server's state on a SQLite database in `dir`, with the default limits (introspection off, so that the limit
/// paths run too) and [`API_KEY`].
pub async fn state(dir: &Path) -> AppState {
    let config = Settings {
        data_dir: Some(dir.to_owned()),
        jwt_secret: Some("fuzz-secret-fuzz-secret".into()),
        api_keys: Some(vec![format!("fuzz:{API_KEY}")]),
        introspection: Some(false),
        ws_init_timeout_ms: Some(100),
        ..Settings::default()
    }
    .resolve()
    .expect("fuzz settings");
    let storage =
        Storage::open(&config.database, ChangeFeed::new(64), config.clock.clone()).await.expect("fuzz database");
    let auth = Auth::new(AuthConfig {
        jwt_secret: config.jwt_secret.clone().unwrap_or_default(),
        rs256: Default::default(),
        issuer: config.jwt_issuer.clone(),
        audience: config.jwt_audience.clone(),
        admin_group: config.admin_group.clone(),
        api_keys: config.api_keys.iter().map(|(name, key)| (key.clone(), name.clone())).collect(),
        dev_tokens: false,
        demo_users: vec![],
        jwks_url: None,
        dev_token_ttl_secs: 60,
        clock: config.clock.clone(),
    });
    let models = Arc::new(crate::orders::schema());
    let schema = crate::generated::build(
        models.clone(),
        &crate::orders::hooks(storage.clock()),
        SchemaState { storage: storage.clone(), watermark_every: Duration::from_millis(50) },
        Limits::from(&config),
    )
    .expect("the order schema builds");
    // The sender is leaked so that the receiver never reports a shutdown.
    let (shutdown_tx, shutdown) = watch::channel(false);
    std::mem::forget(shutdown_tx);
    AppState::new(crate::App {
        schema,
        auth: Arc::new(auth),
        config: Arc::new(config),
        storage,
        shutdown,
        connections: Arc::default(),
        fanout: crate::fanout::Fanout::new(crate::generated::shareable_subscriptions(&models)),
    })
}

/// The protocol decoder alone.
pub fn decode(text: &str) -> Option<ClientMessage> {
    serde_json::from_str(text).ok()
}

/// One connection: each line of `input` is a text message; the connection runs until the input ends and `linger`
/// passes (so that started operations answer). Returns what the server sent, as text (close frames as `close CODE`).
pub async fn ws_session(app: &AppState, input: &str, linger: Duration) -> Vec<String> {
    let messages: Vec<Result<Message, axum::Error>> =
        input.split('\n').take(64).map(|line| Ok(Message::Text(line.to_owned().into()))).collect();
    let tail = futures_util::stream::once(async move {
        tokio::time::sleep(linger).await;
        Ok(Message::Close(None))
    });
    let stream = futures_util::stream::iter(messages).chain(tail);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sink = futures_util::sink::unfold(tx, |tx, message: Message| async move {
        let text = match message {
            Message::Text(text) => text.to_string(),
            Message::Close(frame) => format!("close {}", frame.map_or(1005, |f| f.code)),
            other => format!("{other:?}"),
        };
        let _ = tx.send(text);
        Ok::<_, std::convert::Infallible>(tx)
    });
    crate::session::serve(
        app.clone(),
        std::net::IpAddr::from([127, 0, 0, 1]),
        crate::transport::Connection::new(app.clone()),
        Box::pin(sink),
        Box::pin(stream),
    )
    .await;
    let mut sent = Vec::new();
    while let Ok(text) = rx.try_recv() {
        sent.push(text);
    }
    sent
}

/// The GraphQL entry point: parse, document limits, validation and execution, without credentials (resolvers stop
/// at `UNAUTHENTICATED` before touching storage). `input` is a query, or a JSON request `{query, variables}`.
pub async fn graphql(schema: &async_graphql::dynamic::Schema, input: &str) -> async_graphql::Response {
    let request = match serde_json::from_str::<async_graphql::Request>(input) {
        Ok(request) => request,
        Err(_) => async_graphql::Request::new(input),
    };
    schema.execute(request).await
}

/// What both fuzz targets drive: a server state on a SQLite database in a directory of its own under the system's
/// temporary directory, and a runtime, made once per process.
pub struct Harness {
    runtime: tokio::runtime::Runtime,
    app: AppState,
    dir: PathBuf,
}

impl Harness {
    /// The process's harness, made on first use.
    pub fn get() -> &'static Harness {
        static HARNESS: OnceLock<Harness> = OnceLock::new();
        HARNESS.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("subsignal-fuzz-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("a temporary directory for the fuzz database");
            let runtime = tokio::runtime::Runtime::new().expect("a runtime");
            let app = runtime.block_on(state(&dir));
            Harness { runtime, app, dir }
        })
    }

    /// Where the database lives. A fuzzing process, which ends by being killed, leaves it; a test removes it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `ws_message` target: `data` as text, each line one message on one connection, after [`decode`] alone.
    pub fn ws_message(&self, data: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(data);
        let _ = decode(&text);
        self.runtime.block_on(ws_session(&self.app, &text, Duration::from_millis(2)))
    }

    /// The `graphql_document` target: `data`, if it is UTF-8, through [`graphql`].
    pub fn graphql_document(&self, data: &[u8]) -> Option<async_graphql::Response> {
        let text = std::str::from_utf8(data).ok()?;
        Some(self.runtime.block_on(graphql(&self.app.schema, text)))
    }
}
