//! The subsignal server: a local AppSync-like GraphQL service. Orders live in a table with TTL; every write goes
//! through one write path that appends to an ordered change log (the DynamoDB Streams analogue); stream workers (the
//! Lambda analogue) consume it and write back; subscriptions read it at their own cursor and filter by identity.
//!
//! [`start`] runs everything; [`app`] builds the router alone, for tests that drive it directly.
#![deny(missing_docs)]

mod appsync;
pub mod auth;
pub mod clock;
pub mod config;
mod dev;
mod edge;
mod fanout;
#[doc(hidden)]
pub mod fuzzing;
pub mod generated;
pub mod hooks;
mod http;
pub mod jwks;
mod limits;
pub mod orders;
pub mod schema;
mod session;
pub mod storage;
pub mod stream;
mod telemetry;
mod transport;
mod web;
pub mod workers;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{Auth, AuthConfig};
use crate::config::Config;
use crate::schema::{Limits, SchemaState};
use crate::storage::{Storage, StorageError};
use crate::stream::ChangeFeed;

/// Records the change feed keeps in memory for subscribers that are nearly caught up.
pub const FEED_WINDOW: usize = 4096;

/// Everything a request handler needs, shared: a clone is one pointer (every WebSocket connection keeps a few for
/// its whole life, so their size is memory per idle subscriber).
#[derive(Clone)]
pub struct AppState(Arc<App>);

impl AppState {
    /// Shares `app`.
    pub fn new(app: App) -> Self {
        AppState(Arc::new(app))
    }
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct App {
    /// The GraphQL schema: the order service's, or the one generated from `--schema`.
    pub schema: async_graphql::dynamic::Schema,
    /// Credential checks.
    pub auth: Arc<Auth>,
    /// Settings.
    pub config: Arc<Config>,
    /// The database.
    pub storage: Storage,
    /// Turns true when the server shuts down; WebSocket connections close with 1001.
    pub shutdown: watch::Receiver<bool>,
    /// Open WebSocket connections per client address.
    pub(crate) connections: Arc<transport::ConnectionCounts>,
    /// The shared executions of subscriptions that ask the same thing.
    pub(crate) fanout: Arc<fanout::Fanout>,
}

/// Builds the router: `/graphql` (HTTP, WebSocket, GraphiQL), `/graphql/ws` (the same WebSocket on its own path),
/// `/graphql/realtime` (AppSync's real-time protocol), `/schema.graphql`, `/dev/*`, `/healthz` (the process is up),
/// `/readyz` (it can serve: see [`readyz`]), and the web app at `/`.
pub fn app(state: AppState) -> Router {
    let web = &state.config.web_dir;
    let body_limit = tower_http::limit::RequestBodyLimitLayer::new(state.config.max_message_bytes);
    let router = Router::new()
        .route("/graphql", get(transport::graphql_get).merge(web::compressed(post(http::post))).layer(body_limit))
        .route("/graphql/ws", get(transport::graphql_ws))
        .route("/graphql/realtime", get(appsync::realtime))
        .route(
            "/schema.graphql",
            get(|axum::extract::State(s): axum::extract::State<AppState>| async move { s.schema.sdl() }),
        )
        .route("/dev/token", get(dev::dev_token))
        .route("/dev/users", get(dev::dev_users))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz));
    let router = if web.join("index.html").is_file() {
        web::serve(router, web)
    } else {
        let message = format!(
            "The web app is not built (no {}/index.html). Build it with `cargo xtask demo` (or `trunk build --release`), \
             or point --web at a built app. GraphiQL is at /graphql.",
            web.display()
        );
        router.fallback(move || async move { (axum::http::StatusCode::NOT_FOUND, message) })
    };
    let config = state.config.clone();
    let request_log = tower_http::trace::TraceLayer::new_for_http()
        .make_span_with(move |request: &axum::extract::Request| edge::request_span(&config, request))
        .on_request(())
        .on_response(edge::log_response)
        .on_failure(());
    router
        .layer(edge::cors(&state.config))
        .layer(axum::middleware::from_fn_with_state(state.clone(), transport::limit_headers))
        .layer(request_log)
        .with_state(state)
}

/// `GET /readyz`: 200 `ready` when the database answers and has every migration this build knows, else 503 with the
/// reason (also while the server shuts down), so that a load balancer sends requests only where they can succeed.
pub async fn readyz(axum::extract::State(app): axum::extract::State<AppState>) -> (axum::http::StatusCode, String) {
    let status = if *app.shutdown.borrow() { Err("shutting down".to_owned()) } else { app.storage.check_ready().await };
    match status {
        Ok(()) => (axum::http::StatusCode::OK, "ready".into()),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}"))
        }
    }
}

/// Binds `addr` (giving the address bound). Every accepted connection has TCP_NODELAY, so a small frame (one
/// subscription event) leaves at once instead of waiting for Nagle's algorithm.
async fn bind(addr: SocketAddr) -> Result<(NoDelayListener, SocketAddr), StartError> {
    fn no_delay(tcp: &mut TcpStream) {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
    }
    let bind_error = |source| StartError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener.tap_io(no_delay), bound))
}

type NoDelayListener = axum::serve::TapIo<TcpListener, fn(&mut TcpStream)>;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data folder or its secret file failed.
    #[error("data dir {path}: {source}")]
    DataDir {
        /// The path.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The models of `--schema` could not be turned into a GraphQL schema.
    #[error("the generated schema is invalid: {0}")]
    Schema(String),
    /// The RS256 key files could not be used.
    #[error("RS256 keys: {reason}")]
    Keys {
        /// What is wrong with which file.
        reason: String,
    },
    /// The database failed to open or migrate.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The database opened, but is not ready to serve.
    #[error("the database is not ready: {0}")]
    NotReady(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The IO error.
        source: std::io::Error,
    },
}

/// A running server.
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// Where `/metrics` is served (`metrics-listen`), if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    /// The database, for tests and tools in the same process.
    pub storage: Storage,
    /// The auth verifier (tests sign tokens with it).
    pub auth: Arc<Auth>,
    shutdown: watch::Sender<bool>,
    grace: Duration,
    connections: Arc<transport::ConnectionCounts>,
    tasks: Vec<JoinHandle<()>>,
}

/// How long a shutdown waits for the database's connections to come back before it lets them go.
const CLOSE_DATABASE: Duration = Duration::from_secs(2);

impl RunningServer {
    /// Stops the server as SIGTERM does, and returns when it has stopped:
    /// 1. it accepts no more connections, and `/readyz` says 503 on those it has;
    /// 2. subscriptions stop, while HTTP requests, WebSocket queries and mutations and the batch a worker is on
    ///    finish, until `shutdown-grace-ms` has passed (then they are dropped: nothing they did not commit is
    ///    written, and what was committed stays);
    /// 3. every WebSocket closes with 1001 once its operations are done (each lingers briefly for the client to
    ///    read the close frame);
    /// 4. every lease this instance holds is released, so another instance takes over its workers at once;
    /// 5. the database's connections close.
    pub async fn shutdown(self) {
        let deadline = tokio::time::Instant::now() + self.grace;
        tracing::info!(grace_ms = self.grace.as_millis() as u64, "shutting down: letting work under way finish");
        let _ = self.shutdown.send(true);
        for mut task in self.tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        self.connections.drained(left + 2 * transport::CLOSE_LINGER).await;
        match self.storage.release_leases().await {
            Ok(()) => tracing::info!("released this instance's leases"),
            Err(e) => tracing::warn!(error = %e, "cannot release the leases; they lapse after worker-lease-ms"),
        }
        if tokio::time::timeout(CLOSE_DATABASE, self.storage.close()).await.is_err() {
            tracing::warn!("database connections still in use; closing without them");
        }
    }
}

fn jwt_secret(config: &Config) -> Result<String, StartError> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.clone());
    }
    let path = config.data_dir.join("jwt-secret");
    let io = |source| StartError::DataDir { path: path.display().to_string(), source };
    match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= 16 => Ok(secret.trim().to_owned()),
        _ => {
            use rand::Rng;
            let bytes: [u8; 32] = rand::thread_rng().gen();
            let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            std::fs::write(&path, &secret).map_err(io)?;
            Ok(secret)
        }
    }
}

/// Opens the database, starts the workers, the reaper and the pruner, binds the listener and serves.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|source| StartError::DataDir { path: config.data_dir.display().to_string(), source })?;
    let feed = ChangeFeed::new(FEED_WINDOW);
    let storage = Storage::open(&config.database, feed, config.clock.clone()).await?;
    let rs256 = auth::Rs256Keys::load(config.jwt_public_key.as_deref(), config.jwks.as_deref())
        .map_err(|reason| StartError::Keys { reason })?;
    let auth = Arc::new(Auth::new(AuthConfig {
        jwt_secret: jwt_secret(&config)?,
        rs256,
        issuer: config.jwt_issuer.clone(),
        audience: config.jwt_audience.clone(),
        admin_group: config.admin_group.clone(),
        api_keys: config.api_keys.iter().map(|(name, key)| (key.clone(), name.clone())).collect::<HashMap<_, _>>(),
        dev_tokens: config.dev_tokens,
        demo_users: config.demo_users.clone(),
        dev_token_ttl_secs: 12 * 3600,
        jwks_url: match &config.jwks_url {
            Some(url) => Some(Arc::new(jwks::JwksUrl::start(url, config.jwks_min_refresh).await)),
            None => None,
        },
        clock: config.clock.clone(),
    }));
    let schema_state = SchemaState { storage: storage.clone(), watermark_every: config.watermark_interval };
    let (models, hooks) = match &config.models {
        Some(models) => (models.clone(), hooks::Hooks::default()),
        None => (Arc::new(orders::schema()), orders::hooks(storage.clock())),
    };
    let schema = generated::build(models.clone(), &hooks, schema_state, Limits::from(&config))
        .map_err(|e| StartError::Schema(e.to_string()))?;
    let serves_orders = config.models.is_none();
    if serves_orders && config.seed_demo {
        seed_demo(&schema, &storage, &config).await?;
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let config = Arc::new(config);
    let (listener, addr) = bind(config.listen).await?;
    let connections = Arc::<transport::ConnectionCounts>::default();
    let state = AppState::new(App {
        schema,
        auth: auth.clone(),
        config: config.clone(),
        storage: storage.clone(),
        shutdown: shutdown_rx.clone(),
        connections: connections.clone(),
        fanout: fanout::Fanout::new(generated::shareable_subscriptions(&models)),
    });
    let router = app(state);
    let mut graceful = shutdown_rx.clone();
    let metrics_addr = match config.metrics_listen {
        Some(addr) => {
            let (bound, task) = telemetry::serve(addr, storage.clone(), shutdown_rx.clone())
                .await
                .map_err(|source| StartError::Bind { addr, source })?;
            Some((bound, task))
        }
        None => None,
    };
    let (metrics_addr, metrics_task) = metrics_addr.unzip();
    let mut tasks = vec![tokio::spawn(async move {
        let serve = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = graceful.wait_for(|stop| *stop).await;
            });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "server failed");
        }
    })];
    let consumer = workers::ConsumerConfig {
        name: workers::ORDER_PROCESSOR.into(),
        batch_size: config.worker_batch_size,
        parallelism: config.worker_parallelism,
        max_attempts: config.worker_max_attempts,
        backoff: config.worker_backoff,
        lease: config.worker_lease,
    };
    if serves_orders {
        let handler = workers::order_processor(storage.clone(), config.step_delay);
        tasks.push(tokio::spawn(workers::run_consumer(storage.clone(), consumer, handler, shutdown_rx.clone())));
    }
    tasks.push(tokio::spawn(storage.clone().follow_commits(shutdown_rx.clone())));
    tasks.push(tokio::spawn(workers::run_reaper(
        storage.clone(),
        config.reap_interval,
        config.worker_lease,
        shutdown_rx.clone(),
    )));
    let prune_every = (config.retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(600));
    tasks.push(tokio::spawn(workers::run_pruner(storage.clone(), config.retention, prune_every, shutdown_rx)));
    tasks.extend(metrics_task);
    Ok(RunningServer {
        addr,
        metrics_addr,
        storage,
        auth,
        shutdown: shutdown_tx,
        grace: config.shutdown_grace,
        connections,
        tasks,
    })
}

/// Applies the database's migrations (creating the SQLite file if needed), checks them, and says what it did.
pub async fn migrate(config: &Config) -> Result<String, StartError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|source| StartError::DataDir { path: config.data_dir.display().to_string(), source })?;
    let storage = Storage::open(&config.database, ChangeFeed::new(1), config.clock.clone()).await?;
    let checked = storage.check_ready().await;
    storage.close().await;
    checked.map_err(StartError::NotReady)?;
    Ok(format!("{}: every migration is applied", config.database.describe()))
}

/// Places one sample order for each demo user (but the admin) through the API, on an empty database.
async fn seed_demo(
    schema: &async_graphql::dynamic::Schema,
    storage: &Storage,
    config: &Config,
) -> Result<(), StartError> {
    if storage.head_seq().await? > 0 {
        return Ok(());
    }
    let users = config.demo_users.iter().filter(|u| **u != config.admin_group);
    let samples =
        [("Ada Lovelace", "ada@example.com", "tea", 2, 450), ("Grace Hopper", "grace@example.com", "coffee", 1, 380)];
    for (user, (name, email, sku, quantity, price)) in users.zip(samples) {
        let identity =
            auth::Identity::User { sub: user.clone(), admin: false, groups: Vec::new(), expires_at: i64::MAX };
        let variables = serde_json::json!({"input": {"customerName": name, "email": email,
            "items": [{"sku": sku, "quantity": quantity, "unitPriceCents": price}]}});
        let request = async_graphql::Request::new(
            "mutation($input: CreateOrderInput!) { createOrder(input: $input, clientMutationId: \"seed\") { id } }",
        )
        .variables(async_graphql::Variables::from_json(variables))
        .data(identity);
        let response = schema.execute(request).await;
        if let Some(error) = response.errors.first() {
            return Err(StartError::Schema(format!("seeding the demo orders failed: {}", error.message)));
        }
    }
    Ok(())
}

/// Whether `dir` holds a built web app.
pub fn web_app_built(dir: &Path) -> bool {
    dir.join("index.html").is_file()
}

#[cfg(test)]
mod tests {
    use axum::serve::Listener;

    #[tokio::test]
    async fn accepted_connections_have_tcp_nodelay() {
        let (mut listener, addr) = super::bind(([127, 0, 0, 1], 0).into()).await.unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await;
        assert!(accepted.nodelay().unwrap());
    }
}
