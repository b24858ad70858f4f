//! What a [`BrowserStore`](crate::BrowserStore) is created with.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use subsignal_store::{CollectionConfig, ConnectionConfig, Protocol};

/// Where the server is, how to authenticate, and where to keep the offline queue.
///
/// In JavaScript this is the `StoreOptions` object (`{httpUrl, wsUrl, token?, auth?, persistKey?, …}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreOptions {
    /// The GraphQL HTTP endpoint (snapshots and mutations are `POST`ed here), e.g. `https://host/graphql`.
    pub http_url: String,
    /// The graphql-transport-ws endpoint, e.g. `wss://host/graphql`.
    pub ws_url: String,
    /// The `connection_init` payload, e.g. `{"Authorization": "Bearer <jwt>"}`; its string entries are also sent as
    /// HTTP headers. In AppSync mode it is the authorization header object (plus `host`): `{"x-api-key": …}` or
    /// `{"Authorization": …}`.
    #[serde(default)]
    pub auth: Option<Value>,
    /// A bearer token: shorthand for `auth = {"Authorization": "Bearer <token>"}` (ignored when `auth` is set).
    #[serde(default)]
    pub token: Option<String>,
    /// Names the store's IndexedDB database (`subsignal:<key>`), which keeps the offline queue and the collections
    /// configured with `persist` across reloads, written together in one transaction; `None` keeps nothing. If
    /// IndexedDB cannot be used, the store warns, loads from the network, and keeps the queue in `localStorage`
    /// under this key (where versions before IndexedDB kept it; such a queue is taken over once).
    #[serde(default)]
    pub persist_key: Option<String>,
    /// How long an HTTP request may take before it counts as a network error (default 15 s).
    #[serde(default = "default_http_timeout_ms")]
    pub http_timeout_ms: u32,
    /// Timeouts and backoff of the WebSocket connection.
    #[serde(default)]
    pub connection: ConnectionConfig,
    /// Collections to keep live from the start (more can be added with `watch`).
    #[serde(default)]
    pub collections: Vec<CollectionConfig>,
    /// The WebSocket protocol: `"graphql-transport-ws"` (default) or `"appsync"` (AWS AppSync's real-time protocol,
    /// subprotocol `graphql-ws`; no replay, so collections take a fresh snapshot after every reconnect).
    #[serde(default)]
    pub protocol: Protocol,
    /// AppSync mode: the real-time endpoint, when it differs from `wsUrl` (e.g.
    /// `wss://<id>.appsync-realtime-api.<region>.amazonaws.com/graphql`, or `wss://host/graphql/realtime`). The store
    /// appends `?header=<base64 JSON>&payload=e30=` itself.
    #[serde(default)]
    pub realtime_url: Option<String>,
    /// Whether the WebSocket offers its subprotocol (`Sec-WebSocket-Protocol: graphql-transport-ws`); default true.
    /// `false` is for an endpoint whose path names the protocol (subsignal's `/graphql/ws`) behind a proxy that
    /// cannot negotiate subprotocols, such as `trunk serve` 0.21: it answers none, and a browser then fails any
    /// handshake that offered one. AppSync always needs its subprotocol, so `false` is an error there.
    #[serde(default = "default_offer_subprotocol")]
    pub offer_subprotocol: bool,
    /// One connection, one set of collections and one offline queue for every tab of the origin that opens a store
    /// with the same `persistKey` (or, without one, the same `wsUrl`): one tab, elected with a Web Lock, hosts the
    /// store; the others follow it over a `BroadcastChannel` (rows, states and statuses come from the host, their
    /// mutations go to it); when the host tab closes, another takes over, from the persisted image and queue. Where
    /// the browser has no Web Locks or `BroadcastChannel`, the store warns and runs on its own. Default false.
    /// Where the browser has `SharedWorker`, a `SharedWorker` hosts instead of a tab (see
    /// [`shared_worker_url`](Self#structfield.shared_worker_url)), unless
    /// [`shared_in_tab`](Self#structfield.shared_in_tab).
    #[serde(default)]
    pub shared: bool,
    /// Shared mode's primary host: the URL of a module script that hosts the store in a `SharedWorker`. Tabs attach
    /// to the worker over a `MessagePort` and follow it as they follow a host tab; the worker holds the connection,
    /// collections and queue for as long as any tab of the origin is open. Where the browser has no `SharedWorker`
    /// (Chrome on Android), or the worker cannot load, the tabs elect a host tab instead. Without it, the worker runs
    /// the npm package's `subsignal_store_worker.js` (JavaScript's `shared: true`), or in a Rust app this crate's own
    /// entry with the app's build (its wasm-bindgen glue and wasm, found at run time: named by wasm-bindgen, as
    /// Trunk and wasm-pack leave them, or the one `.wasm` the page fetched). The app's `main` then runs in the worker
    /// too, where there is no `window`: mounting a Leptos app throws there, which the worker ignores; a `main` that
    /// does more can check `web_sys::window()`.
    #[serde(default)]
    pub shared_worker_url: Option<String>,
    /// Shared mode: a tab hosts even where the browser has `SharedWorker` (JavaScript's `shared: "tab"`). A tab's
    /// own socket opens beside the page's download, where a worker's opens only once the worker has started.
    #[serde(default)]
    pub shared_in_tab: bool,
}

fn default_offer_subprotocol() -> bool {
    true
}

fn default_http_timeout_ms() -> u32 {
    15_000
}

impl StoreOptions {
    /// Options for a server at these endpoints, with no auth, no persistence and default timeouts.
    pub fn new(http_url: impl Into<String>, ws_url: impl Into<String>) -> Self {
        Self {
            http_url: http_url.into(),
            ws_url: ws_url.into(),
            auth: None,
            token: None,
            persist_key: None,
            http_timeout_ms: default_http_timeout_ms(),
            connection: ConnectionConfig::default(),
            collections: Vec::new(),
            protocol: Protocol::TransportWs,
            realtime_url: None,
            offer_subprotocol: default_offer_subprotocol(),
            shared: false,
            shared_worker_url: None,
            shared_in_tab: false,
        }
    }

    /// Shares one connection, its collections and its offline queue between the origin's tabs (see
    /// [`StoreOptions::shared`](Self#structfield.shared)).
    pub fn shared(mut self) -> Self {
        self.shared = true;
        self
    }

    /// Shares the store as [`StoreOptions::shared`] does, with a tab as host even where the browser has
    /// `SharedWorker` (see [`StoreOptions::shared_in_tab`](Self#structfield.shared_in_tab)).
    pub fn shared_in_tab(mut self) -> Self {
        self.shared = true;
        self.shared_in_tab = true;
        self
    }

    /// Shares the store through the `SharedWorker` running the module script `url` (see
    /// [`StoreOptions::shared_worker_url`](Self#structfield.shared_worker_url)); implies [`StoreOptions::shared`].
    pub fn shared_worker(mut self, url: impl Into<String>) -> Self {
        self.shared = true;
        self.shared_worker_url = Some(url.into());
        self
    }

    /// The name of the Web Lock and `BroadcastChannel` (and of the `SharedWorker`) of a shared store.
    pub(crate) fn shared_name(&self) -> String {
        format!("subsignal:shared:{}", self.persist_key.as_deref().unwrap_or(&self.ws_url))
    }

    /// Opens the WebSocket without offering a subprotocol (see [`StoreOptions::offer_subprotocol`]).
    pub fn without_subprotocol(mut self) -> Self {
        self.offer_subprotocol = false;
        self
    }

    /// Whether the WebSocket offers its subprotocol: always in AppSync mode (see [`StoreOptions::problem`]).
    pub(crate) fn offers_subprotocol(&self) -> bool {
        self.offer_subprotocol || self.protocol == Protocol::AppSync
    }

    /// Why these options cannot work, if they cannot. The JavaScript constructor throws it; a Rust
    /// [`BrowserStore`](crate::BrowserStore) warns in the console and offers the subprotocol anyway.
    pub fn problem(&self) -> Option<String> {
        (!self.offer_subprotocol && self.protocol == Protocol::AppSync).then(|| {
            "offerSubprotocol: false needs protocol \"graphql-transport-ws\": AppSync requires its subprotocol"
                .to_owned()
        })
    }

    /// Speaks AWS AppSync's real-time protocol on this endpoint (see [`StoreOptions::realtime_url`]).
    pub fn appsync(mut self, realtime_url: impl Into<String>) -> Self {
        self.protocol = Protocol::AppSync;
        self.realtime_url = Some(realtime_url.into());
        self
    }

    /// Authenticates with a bearer token (`{"Authorization": "Bearer <token>"}`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Authenticates with this `connection_init` payload.
    pub fn auth(mut self, auth: Value) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Keeps the offline queue, and the collections configured with
    /// [`CollectionConfig::persist`](subsignal_store::CollectionConfig::persist), across reloads in the IndexedDB
    /// database named after this key (see [`StoreOptions::persist_key`](Self#structfield.persist_key)).
    pub fn persist_key(mut self, key: impl Into<String>) -> Self {
        self.persist_key = Some(key.into());
        self
    }

    /// Sets the HTTP timeout.
    pub fn http_timeout_ms(mut self, ms: u32) -> Self {
        self.http_timeout_ms = ms;
        self
    }

    /// Sets the connection's timeouts and backoff.
    pub fn connection(mut self, config: ConnectionConfig) -> Self {
        self.connection = config;
        self
    }

    /// Keeps this collection live from the start.
    pub fn collection(mut self, config: CollectionConfig) -> Self {
        self.collections.push(config);
        self
    }

    /// The WebSocket URL to open: `realtimeUrl` in AppSync mode (if set), else `wsUrl`.
    pub(crate) fn socket_url(&self) -> &str {
        match (self.protocol, &self.realtime_url) {
            (Protocol::AppSync, Some(url)) => url,
            _ => &self.ws_url,
        }
    }

    /// The host (and port) of `httpUrl`: AppSync's `host` entry of the authorization header object.
    pub(crate) fn http_host(&self) -> Option<String> {
        let rest = self.http_url.split_once("://").map_or(self.http_url.as_str(), |(_, rest)| rest);
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        (!host.is_empty()).then(|| host.to_owned())
    }

    /// The auth payload to use: `auth`, else one built from `token`.
    pub(crate) fn auth_payload(&self) -> Option<Value> {
        self.auth.clone().or_else(|| self.token.as_ref().map(|t| bearer(t)))
    }
}

/// `{"Authorization": "Bearer <token>"}`.
pub(crate) fn bearer(token: &str) -> Value {
    serde_json::json!({ "Authorization": format!("Bearer {token}") })
}
