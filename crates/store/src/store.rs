//! The facade the shells drive: one [`Store`] owns the connection, the collections and the mutation queue, takes
//! [`Input`]s and returns [`Output`]s.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use subsignal_protocol::appsync;
use subsignal_protocol::change::error_code;
use subsignal_protocol::transport_ws::ClientMessage;

use crate::collection::{CollectionStats, RowChange, RowOrigin, Table};
use crate::conflict::{changed_fields, same_version, version_value};
use crate::connection::{ConnEvent, Connection, ConnectionConfig, ConnectionStatus, Io, Payload, Protocol};
use crate::history::{History, HistoryAt, HistoryError, HistoryRange};
use crate::mutation::{Mutation, MutationError, PendingMutation, Queue};
use crate::persist::{fingerprint, CollectionImage, StoreImage};
use crate::rng::{backoff_delay, Rng};
use crate::source::default_version_fields;
use crate::source::{CollectionConfig, Guarantee, Source};
use crate::sync::{self, Action, Fed, Paged, SyncStrategy};
use crate::timers::{Timer, Timers};
use crate::view::{LiveView, ViewError, ViewOp, ViewSpec, ViewState};

/// Everything a [`Store`] needs at construction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreConfig {
    /// Seeds the store's PRNG (backoff jitter, generated mutation ids); take it from a real random source.
    pub seed: u64,
    /// Timeouts and backoff.
    #[serde(default)]
    pub connection: ConnectionConfig,
    /// The `connection_init` payload, e.g. `{"Authorization": "Bearer <jwt>"}`; its string entries are also sent as
    /// HTTP headers. In AppSync mode it is the authorization header object (with `host` added from [`StoreConfig::host`]),
    /// sent in the URL and in every `start`.
    #[serde(default)]
    pub auth: Option<Value>,
    /// The collections to keep live.
    #[serde(default)]
    pub collections: Vec<CollectionConfig>,
    /// The WebSocket protocol: graphql-transport-ws (default) or AppSync's (JSON `"appsync"`).
    #[serde(default)]
    pub protocol: Protocol,
    /// AppSync mode: the host of the HTTP GraphQL endpoint, sent as `host` in the authorization header object.
    #[serde(default)]
    pub host: Option<String>,
    /// The shell is reading a persisted image and will feed [`Input::Restore`]: until then the connection may open,
    /// but no collection subscribes or fetches and no mutation is sent, so that the image, not a fresh snapshot,
    /// is what the collections resume from.
    #[serde(default)]
    pub awaits_restore: bool,
}

impl StoreConfig {
    /// A config with default timeouts, no auth and no collections.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            connection: ConnectionConfig::default(),
            auth: None,
            collections: Vec::new(),
            protocol: Protocol::TransportWs,
            host: None,
            awaits_restore: false,
        }
    }
}

/// The outcome of an HTTP request the store asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum HttpResponse {
    /// A 2xx response with a JSON body (a GraphQL response, `{data?, errors?}`).
    Ok {
        /// The parsed body.
        body: Value,
    },
    /// A non-2xx response; `body` is its JSON, if it had any.
    Status {
        /// The HTTP status.
        status: u16,
        /// The parsed body, if it was JSON.
        #[serde(default)]
        body: Option<Value>,
    },
    /// No response: DNS, refused, reset, offline, CORS, timeout…
    NetworkError {
        /// A description for logs.
        message: String,
    },
}

/// Something that happened, fed to [`Store::handle`].
///
/// In JSON (for a JavaScript shell) an input is `{"type": "frame", "value": {"socket": 1, "text": "…"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Input {
    /// Start connecting (also restarts after `Failed`).
    Connect,
    /// Close the socket and stay disconnected.
    Disconnect,
    /// The browser is online again (`online` event): reconnect at once.
    Online,
    /// The browser went offline (`offline` event).
    Offline,
    /// New credentials, used from the next `connection_init` and HTTP request on. After an
    /// [`Output::AuthRequired`], the connection is also replaced at once so subscriptions run under them.
    SetAuth(Option<Value>),
    /// The socket from [`Output::OpenSocket`] opened.
    SocketOpened {
        /// The socket's number.
        socket: u64,
    },
    /// A socket closed (or failed to open: report code 1006).
    SocketClosed {
        /// The socket's number.
        socket: u64,
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// A text frame arrived.
    Frame {
        /// The socket's number.
        socket: u64,
        /// The frame's text.
        text: String,
    },
    /// Time passed (the timer for [`Store::next_wake_ms`] fired); any input also counts as a tick.
    Tick,
    /// An HTTP request from [`Output::Http`] finished.
    Http {
        /// The request's id.
        request_id: u64,
        /// What came back.
        response: HttpResponse,
    },
    /// Start keeping a collection live.
    Watch(CollectionConfig),
    /// Stop keeping a collection live and forget it.
    Unwatch(String),
    /// Queue a mutation; [`Output::MutationQueued`] tells its id.
    Mutate(Mutation),
    /// Put persisted mutations back in the queue (call once at start-up, before new mutations).
    RestoreQueue(Vec<PendingMutation>),
    /// Put a persisted image back (call once at start-up, before connecting and before new mutations): the rows of
    /// each persisted collection show at once, marked stale, and its source resumes from the image; the queue is
    /// restored as with [`Input::RestoreQueue`]. Images of collections not watched yet wait until they are; an image
    /// taken under another configuration or store version is discarded with a warning.
    Restore(StoreImage),
}

/// An HTTP request for the shell to perform: `POST` the JSON `body` to the GraphQL endpoint with these headers (plus
/// `content-type: application/json`), then feed [`Input::Http`] with the same `request_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRequest {
    /// Echo this in [`Input::Http`].
    pub request_id: u64,
    /// Headers derived from the auth payload.
    pub headers: Vec<(String, String)>,
    /// The GraphQL request `{query, variables}`.
    pub body: Value,
    /// An answer to the same request fetched before the store asked (by the page, while the app downloaded) is as
    /// good as a fresh one: the first page of a snapshot consistent with a `seq`, from which the subscription then
    /// replays (subsignal's source over a protocol with replay). False for everything else: mutations, later pages,
    /// and snapshots that must be taken after their subscription started (without replay).
    #[serde(default)]
    pub prefetchable: bool,
}

/// Something for the shell to do or publish, returned by [`Store::handle`].
///
/// In JSON an output is `{"type": "send", "value": {"socket": 1, "message": {…}}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Output {
    /// Open a WebSocket with this subprotocol (and URL query) and report it under this number.
    OpenSocket {
        /// The socket's number, used in every later input and output about it.
        socket: u64,
        /// The subprotocol to request: `graphql-transport-ws`, or `graphql-ws` for AppSync.
        subprotocol: String,
        /// Append this to the WebSocket URL after `?` (AppSync: `header=<base64 JSON>&payload=e30%3D`).
        query: Option<String>,
    },
    /// Close this socket; the store already treats it as gone and ignores anything more from it.
    CloseSocket {
        /// The socket's number.
        socket: u64,
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Send a message on this socket (serialize with `serde_json::to_string`).
    Send {
        /// The socket's number.
        socket: u64,
        /// The message.
        message: ClientMessage,
    },
    /// Send an AppSync message on this socket (AppSync mode only; serialize with `serde_json::to_string`).
    SendAppSync {
        /// The socket's number.
        socket: u64,
        /// The message.
        message: appsync::ClientMessage,
    },
    /// Perform an HTTP request.
    Http(HttpRequest),
    /// A row of a collection changed for readers.
    Row {
        /// The collection's name.
        collection: String,
        /// What changed.
        change: RowChange,
        /// What changed it.
        origin: RowOrigin,
    },
    /// A mutation joined the queue (persist [`Store::pending_mutations`]).
    MutationQueued {
        /// Its `clientMutationId`.
        id: String,
    },
    /// A mutation left the queue (persist [`Store::pending_mutations`]).
    MutationSettled {
        /// Its `clientMutationId`.
        id: String,
        /// The entity the server returned, or why it refused.
        result: Result<Value, MutationError>,
    },
    /// The status changed.
    Status(Status),
    /// The server refused the credentials (close 4403, or a subscription error `UNAUTHENTICATED`/`FORBIDDEN`): feed
    /// [`Input::SetAuth`] with fresh ones.
    AuthRequired,
    /// Something odd that the store worked around, for the console.
    Warning(String),
    /// A collection's loaded, stale or pending-updates changed (not published for `lastSeq` alone, which moves with
    /// every event); also once when it is watched.
    Collection {
        /// The collection's name.
        collection: String,
        /// Its state now.
        state: CollectionState,
    },
    /// A persisted collection changed (rows or `lastSeq`) since the last [`Store::take_image`]: take and write a new
    /// image when convenient (batched, e.g. on a timer). Announced once until the image is taken. Queue changes are
    /// announced by [`Output::MutationQueued`] and [`Output::MutationSettled`]: write them soon.
    Persist,
    /// A live view's window changed ([`Store::open_view`]): apply `ops` in order to the keys it showed.
    View {
        /// The view's id.
        view: u64,
        /// What changed.
        ops: Vec<ViewOp>,
        /// Its state after the change.
        state: ViewState,
    },
}

/// What a status indicator shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The connection's state.
    pub connection: ConnectionStatus,
    /// Mutations not yet settled (queued or in flight).
    pub pending_mutations: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum RequestOwner {
    /// A page of a collection's snapshot or list.
    Fetch(String),
    Mutation(String),
}

/// One live collection: its rows, and the strategy of its source that keeps them in step.
#[derive(Debug)]
struct Collection {
    /// Names the collection's retry timer.
    id: u64,
    cfg: CollectionConfig,
    table: Table,
    sync: Box<dyn SyncStrategy>,
    guarantee: Guarantee,
    /// Consecutive failures (subscriptions, fetches), for the retry backoff.
    failures: u32,
    /// The state last published in an [`Output::Collection`].
    published: Option<CollectionState>,
    /// See [`CollectionState::lag_ms`].
    lag_ms: Option<i64>,
    /// [`fingerprint`] of the configuration, for persisted collections.
    fingerprint: Option<String>,
    /// Rows or `lastSeq` changed since the last image was taken (persisted collections only).
    dirty: bool,
    /// The rows were restored from a persisted image.
    from_image: bool,
    /// ... and the collection has not been live since (see [`CollectionState::restored`]).
    restored: bool,
    /// A follower's collection: its rows and state are another store's (see [`Store::mirror_rows`]).
    mirrored: Option<CollectionState>,
    /// A follower's rows were fetched anew (attached, or the other store took a snapshot): its history starts over at
    /// the next reported state.
    mirror_restart: bool,
}

impl Collection {
    fn new(id: u64, cfg: CollectionConfig, protocol: Protocol) -> Self {
        let name = cfg.name.as_str();
        let sync: Box<dyn SyncStrategy> = match &cfg.source {
            Source::Subsignal(src) => Box::new(sync::subsignal::SubsignalSync::new(
                name,
                src.clone(),
                cfg.page_size,
                protocol == Protocol::TransportWs,
            )),
            Source::EntityEvents(src) => Box::new(sync::entity::EntitySync::new(name, src.clone(), cfg.page_size)),
            Source::LiveQuery(src) => Box::new(sync::live::LiveSync::new(name, src.clone())),
        };
        Self {
            id,
            table: Table::new(&cfg),
            guarantee: cfg.guarantee(protocol),
            fingerprint: cfg.persist.then(|| fingerprint(&cfg)),
            cfg,
            sync,
            failures: 0,
            published: None,
            lag_ms: None,
            dirty: false,
            from_image: false,
            restored: false,
            mirrored: None,
            mirror_restart: false,
        }
    }

    /// This collection's image, if it persists and has rows worth keeping.
    fn image(&self) -> Option<CollectionImage> {
        let fingerprint = self.fingerprint.clone()?;
        (self.table.stats.snapshots > 0 || self.from_image).then(|| CollectionImage {
            name: self.cfg.name.clone(),
            fingerprint,
            rows: self.table.confirmed_rows(),
            last_seq: self.sync.last_seq(),
            cursor: self.sync.cursor(),
            tombstones: self.table.tombstone_image(),
        })
    }
}

/// The sans-IO store: feed it inputs with the current time, do what its outputs say, and call it again at
/// [`Store::next_wake_ms`].
///
/// ```
/// use subsignal_store::{Input, Output, Store, StoreConfig};
///
/// let mut store = Store::new(StoreConfig::new(42));
/// let outputs = store.handle(0, Input::Connect);
/// assert!(matches!(outputs[0], Output::OpenSocket { socket: 1, .. }));
/// ```
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    cfg: ConnectionConfig,
    rng: Rng,
    timers: Timers,
    collections: Vec<Collection>,
    next_collection: u64,
    /// Active subscription id → (collection name, slot).
    subs: HashMap<String, (String, usize)>,
    next_sub: u64,
    next_request: u64,
    requests: HashMap<u64, RequestOwner>,
    queue: Queue,
    now: u64,
    last_status: Status,
    /// An [`Output::AuthRequired`] is outstanding.
    auth_required: bool,
    /// Live views by id.
    views: Vec<(u64, LiveView)>,
    next_view: u64,
    /// Persisted images of collections not watched yet.
    images: Vec<CollectionImage>,
    /// An [`Output::Persist`] is outstanding (until [`Store::take_image`]).
    persist_announced: bool,
    /// Waiting for [`Input::Restore`] (see [`StoreConfig::awaits_restore`]).
    awaiting_restore: bool,
    /// A follower's status: another store's (see [`Store::mirror_status`]).
    mirrored_status: Option<Status>,
}

/// The collection and slot whose running subscription has this id (stopped ids have none: late messages are
/// ignored). A function of the two fields, so that `handle` can ask it while the connection is borrowed.
fn owner(subs: &HashMap<String, (String, usize)>, collections: &[Collection], id: &str) -> Option<(usize, usize)> {
    let (name, slot) = subs.get(id)?;
    let i = collections.iter().position(|c| c.cfg.name == *name)?;
    let running = collections[i].sync.slots().get(*slot)?.id.as_deref() == Some(id);
    running.then_some((i, *slot))
}

impl Store {
    /// A store with the given configuration, disconnected until [`Input::Connect`].
    pub fn new(config: StoreConfig) -> Self {
        let conn = Connection::new(config.connection.clone(), config.auth, config.protocol, config.host);
        let timers = Timers::default();
        let last_status = Status { connection: conn.status(&timers), pending_mutations: 0 };
        let mut store = Self {
            conn,
            cfg: config.connection,
            rng: Rng::new(config.seed),
            timers,
            collections: Vec::new(),
            next_collection: 1,
            subs: HashMap::new(),
            next_sub: 1,
            next_request: 1,
            requests: HashMap::new(),
            queue: Queue::default(),
            now: 0,
            last_status,
            auth_required: false,
            views: Vec::new(),
            next_view: 1,
            images: Vec::new(),
            persist_announced: false,
            awaiting_restore: config.awaits_restore,
            mirrored_status: None,
        };
        for cfg in config.collections {
            store.add_collection(cfg, &mut Vec::new());
        }
        store
    }

    fn add_collection(&mut self, cfg: CollectionConfig, out: &mut Vec<Output>) {
        let id = self.next_collection;
        self.next_collection += 1;
        self.collections.push(Collection::new(id, cfg, self.conn.protocol()));
        let i = self.collections.len() - 1;
        let name = self.collections[i].cfg.name.clone();
        if let Some(at) = self.images.iter().position(|image| image.name == name) {
            let image = self.images.swap_remove(at);
            self.restore_collection(i, image, out);
        }
        // Queued mutations (restored before this collection was watched) show their effects on it.
        let mut changes = Vec::new();
        for item in self.queue.items.iter().filter(|m| m.mutation.collection.as_deref() == Some(name.as_str())) {
            if let Some(optimistic) = &item.mutation.optimistic {
                if let Err(warning) = self.collections[i].table.add_overlay(&item.id, optimistic, &mut changes) {
                    out.push(Output::Warning(warning));
                }
            }
        }
        self.emit_rows(i, changes, RowOrigin::Local, out);
    }

    /// Shows a persisted image's rows in collection `i` and lets its source resume from it, unless the image is of
    /// another configuration or the collection already has rows of its own.
    fn restore_collection(&mut self, i: usize, image: CollectionImage, out: &mut Vec<Output>) {
        let c = &mut self.collections[i];
        let Some(fingerprint) = &c.fingerprint else { return };
        if *fingerprint != image.fingerprint {
            out.push(Output::Warning(format!(
                "discarding the persisted copy of {}: its configuration or the store's version changed",
                c.cfg.name
            )));
            return;
        }
        if c.table.stats.snapshots > 0 || c.from_image || c.sync.fetching().is_some() {
            return;
        }
        let mut changes = Vec::new();
        c.table.restore(image.rows, image.tombstones, &mut changes);
        c.sync.restore(image.last_seq, image.cursor);
        c.from_image = true;
        c.restored = true;
        self.emit_rows(i, changes, RowOrigin::Restore, out);
    }

    /// The image to persist, once [`Output::Persist`] (or a queue change) asks for it: the persisted collections
    /// that changed since the last call, and the whole queue. Write it all in one transaction.
    pub fn take_image(&mut self) -> StoreImage {
        self.persist_announced = false;
        let mut collections = Vec::new();
        for c in &mut self.collections {
            if std::mem::take(&mut c.dirty) {
                collections.extend(c.image());
            }
        }
        StoreImage { collections, queue: self.pending_mutations() }
    }

    /// Handles one input at time `now_ms` (any monotonic millisecond clock) and returns what to do.
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Output> {
        self.now = self.now.max(now_ms);
        let mut out = Vec::new();
        let mut ev = Vec::new();
        let mut io = Io { now: self.now, timers: &mut self.timers, rng: &mut self.rng, out: &mut out, ev: &mut ev };
        match input {
            Input::Connect => self.conn.connect(&mut io),
            Input::Disconnect => self.conn.disconnect(&mut io),
            Input::Online => self.conn.online(&mut io),
            Input::Offline => self.conn.offline(&mut io),
            Input::SetAuth(auth) => {
                self.conn.set_auth(auth);
                if std::mem::take(&mut self.auth_required) {
                    self.conn.reconnect_now(&mut io);
                }
            }
            Input::SocketOpened { socket } => self.conn.on_opened(socket, &mut io),
            Input::SocketClosed { socket, code, reason } => self.conn.on_closed(socket, code, &reason, &mut io),
            Input::Frame { socket, text } => {
                let (subs, collections) = (&self.subs, &self.collections);
                let shape_of = |id: &str| {
                    let (i, slot) = owner(subs, collections, id)?;
                    collections[i].sync.change_shape(slot)
                };
                self.conn.on_frame(socket, &text, &shape_of, &mut io)
            }
            Input::Tick => {}
            Input::Http { request_id, response } => self.on_http(request_id, response, &mut out),
            Input::Watch(cfg) => {
                if self.index(&cfg.name).is_some() {
                    out.push(Output::Warning(format!("collection {} is already watched", cfg.name)));
                } else {
                    self.add_collection(cfg, &mut out);
                }
            }
            Input::Unwatch(name) => {
                if let Some(i) = self.index(&name) {
                    // Its views show nothing until it is watched again.
                    for (_, view) in self.views.iter_mut().filter(|(_, v)| v.collection == name) {
                        view.clear();
                    }
                    let c = self.collections.remove(i);
                    self.timers.clear(Timer::Collection(c.id));
                    for id in c.sync.slots().iter().filter_map(|s| s.id.clone()) {
                        self.subs.remove(&id);
                        self.conn.stop(id, &mut out);
                    }
                }
            }
            Input::Mutate(mutation) => self.mutate(mutation, &mut out),
            Input::RestoreQueue(items) => self.restore_queue(items, &mut out),
            Input::Restore(image) => {
                self.awaiting_restore = false;
                for image in image.collections.into_iter().chain(std::mem::take(&mut self.images)) {
                    match self.index(&image.name) {
                        Some(i) => self.restore_collection(i, image, &mut out),
                        None => self.images.push(image),
                    }
                }
                self.restore_queue(image.queue, &mut out);
            }
        }
        self.process(ev, &mut out);
        self.pump(&mut out);
        self.publish(&mut out);
        out
    }

    fn restore_queue(&mut self, items: Vec<PendingMutation>, out: &mut Vec<Output>) {
        for item in items {
            if !self.queue.contains(&item.id) {
                // A restored mutation may have been sent before the reload (the image may be older than the last
                // answer), and committed: as for a head sent by this store, no list is fetched for its collection
                // until its answer says what became of it.
                self.queue.maybe_sent.push(item.id.clone());
                self.enqueue(item, out);
            }
        }
    }

    /// What changed for readers besides rows, at the end of each input: views, collection states, the status.
    fn publish(&mut self, out: &mut Vec<Output>) {
        self.publish_views(out);
        if !self.persist_announced && self.collections.iter().any(|c| c.dirty) {
            self.persist_announced = true;
            out.push(Output::Persist);
        }
        for c in &mut self.collections {
            if c.restored && c.sync.is_live() {
                c.restored = false;
            }
            let state = CollectionView { inner: c }.state();
            let flags = |s: &CollectionState| (s.loaded, s.stale, s.has_pending_updates, s.restored);
            if c.published.as_ref().map(flags) != Some(flags(&state)) {
                c.published = Some(state);
                out.push(Output::Collection { collection: c.cfg.name.clone(), state });
            }
        }
        let status = self.status();
        if status != self.last_status {
            self.last_status = status.clone();
            out.push(Output::Status(status));
        }
    }

    /// When to feed [`Input::Tick`] next, if anything is scheduled.
    pub fn next_wake_ms(&self) -> Option<u64> {
        // Collection and queue retries wait for a live connection; the connection's own deadline always counts.
        let live = self.conn.is_live();
        let queue_waits = !self.queue.items.is_empty();
        self.timers.next(|timer| match timer {
            Timer::Connection => true,
            Timer::Collection(_) => live,
            Timer::Queue => live && queue_waits,
        })
    }

    /// The current status.
    pub fn status(&self) -> Status {
        if let Some(status) = &self.mirrored_status {
            return status.clone();
        }
        Status { connection: self.conn.status(&self.timers), pending_mutations: self.queue.items.len() }
    }

    /// A read view of one collection.
    pub fn collection(&self, name: &str) -> Option<CollectionView<'_>> {
        self.collections.iter().find(|c| c.cfg.name == name).map(|inner| CollectionView { inner })
    }

    /// The unsettled mutations in order: persist these (serde) and feed them back with [`Input::RestoreQueue`].
    pub fn pending_mutations(&self) -> Vec<PendingMutation> {
        self.queue.items.iter().cloned().collect()
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.collections.iter().position(|c| c.cfg.name == name)
    }

    fn headers(&self) -> Vec<(String, String)> {
        match self.conn.auth() {
            Some(Value::Object(map)) => {
                map.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect()
            }
            _ => Vec::new(),
        }
    }

    fn http(&mut self, owner: RequestOwner, body: Value, prefetchable: bool, out: &mut Vec<Output>) -> u64 {
        let request_id = self.next_request;
        self.next_request += 1;
        self.requests.insert(request_id, owner);
        out.push(Output::Http(HttpRequest { request_id, headers: self.headers(), body, prefetchable }));
        request_id
    }

    fn retry_delay(&mut self, failures: u32) -> u64 {
        backoff_delay(&mut self.rng, self.cfg.backoff_base_ms, self.cfg.backoff_cap_ms, failures)
    }

    /// Reports `changes` of collection `i` (to its views, and as outputs), caused by `origin`; for events, the
    /// table's marks name each change's seq.
    fn emit_rows(&mut self, i: usize, changes: Vec<RowChange>, origin: RowOrigin, out: &mut Vec<Output>) {
        let marks = std::mem::take(&mut self.collections[i].table.seq_marks);
        if !changes.is_empty() && matches!(origin, RowOrigin::Event { .. } | RowOrigin::Fetch) {
            self.mark_dirty(i);
        }
        let c = &self.collections[i];
        for (_, view) in self.views.iter_mut().filter(|(_, v)| v.collection == c.cfg.name) {
            for change in &changes {
                view.apply(change.key(), c.table.visible(change.key()).as_deref());
            }
        }
        out.extend(changes.into_iter().enumerate().map(|(n, change)| {
            let origin = match origin {
                RowOrigin::Event { seq } => {
                    RowOrigin::Event { seq: marks.iter().rev().find(|(at, _)| *at <= n).map(|(_, seq)| *seq).or(seq) }
                }
                other => other,
            };
            Output::Row { collection: c.cfg.name.clone(), change, origin }
        }));
    }

    /// The confirmed rows or `lastSeq` of collection `i` changed: its image is due, if it persists.
    fn mark_dirty(&mut self, i: usize) {
        let c = &mut self.collections[i];
        c.dirty |= c.fingerprint.is_some();
    }

    /// One [`Output::View`] per view whose window changed since the last.
    fn publish_views(&mut self, out: &mut Vec<Output>) {
        for (id, view) in &mut self.views {
            if let Some(ops) = view.take_ops() {
                let collection = self.collections.iter().find(|c| c.cfg.name == view.collection);
                let state = view.state(collection.map(|inner| CollectionView { inner }.state()));
                out.push(Output::View { view: *id, ops, state });
            }
        }
    }

    fn live_view(&mut self, id: u64) -> Result<&mut LiveView, ViewError> {
        self.views.iter_mut().find(|(v, _)| *v == id).map(|(_, view)| view).ok_or(ViewError::UnknownView(id))
    }

    /// Opens a live view over the watched collection `collection` (see [`ViewSpec`]); its changes come as
    /// [`Output::View`] with the returned id, and [`Store::view`] reads it. Costs O(n log n) once, then O(log n)
    /// per row change.
    pub fn open_view(&mut self, collection: &str, spec: ViewSpec) -> Result<u64, ViewError> {
        if spec.limit == Some(0) {
            return Err(ViewError::ZeroLimit);
        }
        let c = self.collection(collection).ok_or_else(|| ViewError::UnknownCollection(collection.to_owned()))?;
        let table = &c.inner.table;
        let mut view = LiveView::new(collection.to_owned(), spec);
        for key in table.visible_keys() {
            if let Some(row) = table.visible(&key) {
                view.add(&key, &row);
            }
        }
        let id = self.next_view;
        self.next_view += 1;
        self.views.push((id, view));
        Ok(id)
    }

    /// Closes a view; false when there was none with this id.
    pub fn close_view(&mut self, id: u64) -> bool {
        let before = self.views.len();
        self.views.retain(|(v, _)| *v != id);
        self.views.len() != before
    }

    /// Reads a view: its keys, rows and state.
    pub fn view(&self, id: u64) -> Option<ViewRead<'_>> {
        let (_, view) = self.views.iter().find(|(v, _)| *v == id)?;
        Some(ViewRead { view, collection: self.collection(&view.collection) })
    }

    /// Holds a view: what it shows stays as it is (changes keep applying underneath) until [`Store::release_view`].
    pub fn hold_view(&mut self, id: u64) -> Result<(), ViewError> {
        let index = self.views.iter().position(|(v, _)| *v == id).ok_or(ViewError::UnknownView(id))?;
        let collection = self.views[index].1.collection.clone();
        let table = self.collections.iter().find(|c| c.cfg.name == collection).map(|c| &c.table);
        self.views[index].1.hold(|key| table.and_then(|t| t.visible(key)).map(Cow::into_owned));
        Ok(())
    }

    /// Releases a held view: returns the [`Output::View`] with the net change since it was held (none if nothing
    /// changed).
    pub fn release_view(&mut self, id: u64) -> Result<Option<Output>, ViewError> {
        let ops = self.live_view(id)?.release();
        let state = self.view(id).map(|v| v.state()).unwrap_or_default();
        Ok((!ops.is_empty()).then_some(Output::View { view: id, ops, state }))
    }

    /// Applies what the connection reported.
    fn process(&mut self, events: Vec<ConnEvent>, out: &mut Vec<Output>) {
        for event in events {
            match event {
                ConnEvent::Up { epoch } => {
                    for c in &mut self.collections {
                        self.timers.clear(Timer::Collection(c.id));
                        c.failures = 0;
                        c.sync.on_up(&mut c.table, epoch);
                    }
                    self.timers.clear(Timer::Queue);
                    self.queue.failures = 0;
                }
                ConnEvent::Down => {
                    self.subs.clear();
                    for c in &mut self.collections {
                        c.sync.on_down();
                    }
                }
                ConnEvent::AuthRejected => {
                    self.auth_required = true;
                    out.push(Output::AuthRequired);
                }
                ConnEvent::Next { id, payload } => self.on_next(&id, payload, out),
                ConnEvent::Error { id, errors } => {
                    let Some((i, slot)) = self.take_sub(&id) else { continue };
                    let code = |e: &Value| e.pointer("/extensions/code").and_then(Value::as_str).map(str::to_owned);
                    let expired = errors.iter().any(|e| code(e).as_deref() == Some(error_code::CURSOR_EXPIRED));
                    let auth = errors.iter().any(|e| {
                        matches!(code(e).as_deref(), Some(error_code::UNAUTHENTICATED | error_code::FORBIDDEN))
                    });
                    if auth && !self.auth_required {
                        self.auth_required = true;
                        out.push(Output::AuthRequired);
                    }
                    let c = &mut self.collections[i];
                    if c.sync.failed(slot, expired, &mut c.table) {
                        out.push(Output::Warning(format!("subscription of {} failed: {errors:?}", c.cfg.name)));
                        self.schedule_collection_retry(i);
                    }
                }
                ConnEvent::Complete { id } => {
                    let Some((i, slot)) = self.take_sub(&id) else { continue };
                    let c = &mut self.collections[i];
                    c.sync.completed(slot, &mut c.table);
                    self.schedule_collection_retry(i);
                }
                ConnEvent::Started { id } => {
                    if let Some((i, slot)) = self.owner_of(&id) {
                        self.collections[i].sync.slots_mut()[slot].running = true;
                    }
                }
            }
        }
    }

    /// The collection and slot whose running subscription has this id (see [`owner`]).
    fn owner_of(&self, id: &str) -> Option<(usize, usize)> {
        owner(&self.subs, &self.collections, id)
    }

    /// [`Store::owner_of`], forgetting the subscription (it failed, ended, or is being stopped).
    fn take_sub(&mut self, id: &str) -> Option<(usize, usize)> {
        let (i, slot) = self.owner_of(id)?;
        self.subs.remove(id);
        self.collections[i].sync.slots_mut()[slot].clear();
        Some((i, slot))
    }

    fn on_next(&mut self, id: &str, payload: Payload, out: &mut Vec<Output>) {
        let Some((i, slot)) = self.owner_of(id) else { return };
        let mut changes = Vec::new();
        let c = &mut self.collections[i];
        let fed = match payload {
            Payload::Change(event) => c.sync.next_change(slot, event, &mut c.table, &mut changes),
            Payload::Json(payload) => c.sync.next(slot, payload, &mut c.table, &mut changes),
        };
        if let Some(at) = c.table.committed_at_ms.take() {
            c.lag_ms = Some(self.now as i64 - at);
        }
        self.emit_rows(i, changes, RowOrigin::Event { seq: None }, out);
        match fed {
            Ok(Fed::Applied) => {
                self.collections[i].failures = 0;
                // A watermark moves lastSeq without changing a row.
                self.mark_dirty(i);
            }
            Ok(Fed::Ignored) => {}
            // Stop and start again from lastSeq: the replay fills the gap, then the buffer drains.
            Ok(Fed::Resubscribe) => {
                self.take_sub(id);
                self.conn.stop(id.to_owned(), out);
            }
            Err(warning) => out.push(Output::Warning(warning)),
        }
    }

    fn schedule_collection_retry(&mut self, i: usize) {
        let failures = self.collections[i].failures.saturating_add(1);
        let delay = self.retry_delay(failures);
        let c = &mut self.collections[i];
        c.failures = failures;
        self.timers.set(Timer::Collection(c.id), self.now.saturating_add(delay));
    }

    /// Fires due timers, then starts whatever subscriptions, fetches and mutations can start.
    fn pump(&mut self, out: &mut Vec<Output>) {
        // Firing a deadline can set another for now (a zero backoff): a few rounds at most.
        for _ in 0..4 {
            let due = self.timers.take_due(self.now);
            if due.is_empty() {
                break;
            }
            for timer in due {
                // Collection and queue retries end by leaving the table; they start below.
                if timer == Timer::Connection {
                    let mut ev = Vec::new();
                    let mut io =
                        Io { now: self.now, timers: &mut self.timers, rng: &mut self.rng, out: &mut *out, ev: &mut ev };
                    self.conn.fire(&mut io);
                    self.process(ev, out);
                }
            }
        }
        // A snapshot need not wait for the socket: collections fetch while it opens (one round trip less before the
        // first rows) and subscribe once it is live.
        if !self.conn.is_attempting() || self.awaiting_restore {
            return;
        }
        for i in 0..self.collections.len() {
            self.pump_collection(i, out);
        }
        if self.conn.is_live() {
            self.pump_queue(out);
        }
    }

    /// Whether the head of the queue is a mutation of collection `name` that was sent and has not settled: it may
    /// have committed, so a list fetched now could not tell whether it reflects it.
    fn head_unsettled(&self, name: &str) -> bool {
        let of = |m: &PendingMutation| m.mutation.collection.as_deref() == Some(name);
        (self.queue.head_sent && self.queue.items.front().is_some_and(of))
            || self.queue.items.iter().any(|m| of(m) && self.queue.maybe_sent.contains(&m.id))
    }

    fn pump_collection(&mut self, i: usize, out: &mut Vec<Output>) {
        if self.timers.pending(Timer::Collection(self.collections[i].id), self.now) {
            return;
        }
        let may_fetch = !self.head_unsettled(&self.collections[i].cfg.name);
        // Each action changes the strategy's state, so the loop ends; the bound only guards against a bug.
        for _ in 0..64 {
            let Some(action) = self.collections[i].sync.poll(may_fetch) else { break };
            match action {
                Action::Subscribe { slot, query, variables } => {
                    if !self.conn.is_live() {
                        break;
                    }
                    let id = match self.conn.protocol() {
                        Protocol::TransportWs => format!("s{}", self.next_sub),
                        // AWS clients use UUIDs; AppSync servers may expect them.
                        Protocol::AppSync => self.new_mutation_id(),
                    };
                    self.next_sub += 1;
                    if !self.conn.subscribe(id.clone(), &query, variables, out) {
                        break;
                    }
                    let running = !self.conn.acknowledges_subscriptions();
                    let c = &mut self.collections[i];
                    c.sync.slots_mut()[slot] = sync::Slot { id: Some(id.clone()), running };
                    c.table.stats.subscriptions += 1;
                    self.subs.insert(id, (c.cfg.name.clone(), slot));
                }
                Action::Fetch { body, prefetchable } => self.fetch(i, body, prefetchable, out),
            }
        }
    }

    fn fetch(&mut self, i: usize, body: Value, prefetchable: bool, out: &mut Vec<Output>) {
        let owner = RequestOwner::Fetch(self.collections[i].cfg.name.clone());
        let request_id = self.http(owner, body, prefetchable, out);
        let c = &mut self.collections[i];
        c.sync.fetch_started(request_id, &mut c.table);
    }

    fn on_http(&mut self, request_id: u64, response: HttpResponse, out: &mut Vec<Output>) {
        match self.requests.remove(&request_id) {
            Some(RequestOwner::Fetch(name)) => self.on_page(&name, request_id, response, out),
            Some(RequestOwner::Mutation(id)) => self.on_mutation_result(&id, request_id, response, out),
            None => {}
        }
    }

    fn on_page(&mut self, name: &str, request_id: u64, response: HttpResponse, out: &mut Vec<Output>) {
        let Some(i) = self.index(name) else { return };
        if self.collections[i].sync.fetching() != Some(request_id) {
            return;
        }
        let mut changes = Vec::new();
        let c = &mut self.collections[i];
        let paged = match &response {
            HttpResponse::Ok { body } => match body.get("data").filter(|d| !d.is_null()) {
                Some(data) => c.sync.page(data, &mut c.table, &mut changes).map_err(|e| (e, true)),
                None => Err((format!("fetch of {name} failed: {}", body.get("errors").unwrap_or(body)), true)),
            },
            HttpResponse::Status { status, .. } => Err((format!("fetch of {name} failed: HTTP {status}"), false)),
            HttpResponse::NetworkError { message } => Err((format!("fetch of {name} failed: {message}"), false)),
        };
        self.emit_rows(i, changes, RowOrigin::Fetch, out);
        match paged {
            Ok(Paged::More { body }) => self.fetch(i, body, false, out),
            Ok(Paged::Done) => {
                self.collections[i].failures = 0;
                self.mark_dirty(i);
            }
            Err((warning, graphql)) => {
                out.push(Output::Warning(warning));
                self.collections[i].sync.fetch_failed(graphql);
                self.schedule_collection_retry(i);
            }
        }
    }

    fn new_mutation_id(&mut self) -> String {
        crate::rng::uuid_v4(self.rng.next_u64(), self.rng.next_u64())
    }

    fn mutate(&mut self, mut mutation: Mutation, out: &mut Vec<Output>) {
        let id = match mutation.client_mutation_id.clone() {
            Some(id) => id,
            None => self.new_mutation_id(),
        };
        if self.queue.contains(&id) {
            return out.push(Output::Warning(format!("mutation {id} is already queued")));
        }
        mutation.client_mutation_id = Some(id.clone());
        if mutation.base.is_none() {
            mutation.base = self.base_of(&mutation);
        }
        self.enqueue(PendingMutation { id, mutation }, out);
    }

    /// The confirmed row `mutation` edits, when it is at the version the mutation sends as `expectedVersion`.
    fn base_of(&self, mutation: &Mutation) -> Option<Value> {
        let table = &self.collections[self.index(mutation.collection.as_deref()?)?].table;
        let expected = mutation.variables.get(mutation.version_variable_name())?;
        let (key, _) = changed_fields(mutation, table.key_field(), table.version_fields());
        let row = table.confirmed(&key?)?;
        let version = version_value(table.version_fields(), row)?;
        same_version(&version, expected).then(|| row.clone())
    }

    fn enqueue(&mut self, item: PendingMutation, out: &mut Vec<Output>) {
        if let (Some(name), Some(optimistic)) = (&item.mutation.collection, &item.mutation.optimistic) {
            match self.index(name) {
                Some(i) => {
                    let mut changes = Vec::new();
                    if let Err(warning) = self.collections[i].table.add_overlay(&item.id, optimistic, &mut changes) {
                        out.push(Output::Warning(warning));
                    }
                    self.emit_rows(i, changes, RowOrigin::Local, out);
                }
                None => out.push(Output::Warning(format!("mutation {}: no collection {name}", item.id))),
            }
        }
        out.push(Output::MutationQueued { id: item.id.clone() });
        self.queue.items.push_back(item);
    }

    fn pump_queue(&mut self, out: &mut Vec<Output>) {
        if self.queue.in_flight.is_some() || self.timers.pending(Timer::Queue, self.now) {
            return;
        }
        self.timers.clear(Timer::Queue);
        let Some(head) = self.queue.items.front() else { return };
        // A first send waits until the collection it shows in has its rows (see `head_unsettled`).
        let syncing = head
            .mutation
            .collection
            .as_deref()
            .and_then(|name| self.index(name))
            .is_some_and(|i| head.mutation.optimistic.is_some() && self.collections[i].sync.awaiting_rows());
        if syncing && !self.queue.head_sent && !self.queue.maybe_sent.contains(&head.id) {
            return;
        }
        self.queue.head_sent = true;
        let (id, body) = (head.id.clone(), head.body());
        let request_id = self.http(RequestOwner::Mutation(id), body, false, out);
        self.queue.in_flight = Some(request_id);
    }
    fn on_mutation_result(&mut self, id: &str, request_id: u64, response: HttpResponse, out: &mut Vec<Output>) {
        if self.queue.in_flight != Some(request_id) || self.queue.items.front().map(|m| m.id.as_str()) != Some(id) {
            return;
        }
        self.queue.in_flight = None;
        let field = self.queue.items.front().map(|m| m.mutation.result_field.clone()).unwrap_or_default();
        let errors_of = |body: &Value| body.get("errors").and_then(Value::as_array).filter(|e| !e.is_empty()).cloned();
        let result: Option<Result<Value, MutationError>> = match response {
            HttpResponse::Ok { body } => match body.pointer(&format!("/data/{field}")).filter(|v| !v.is_null()) {
                Some(value) => Some(Ok(value.clone())),
                None => match errors_of(&body) {
                    // The server cannot serve it now (its database is full, read-only or restarting): like a 503.
                    Some(errors) if MutationError::unavailable(&errors) => None,
                    Some(errors) => Some(Err(MutationError::from_graphql(&errors))),
                    None => Some(Err(MutationError::Other {
                        code: None,
                        message: format!("no data.{field} in the response"),
                    })),
                },
            },
            HttpResponse::Status { status: 401 | 403, body } => Some(Err(MutationError::Unauthorized {
                message: body
                    .as_ref()
                    .and_then(errors_of)
                    .and_then(|e| e[0].get("message").cloned())
                    .map_or_else(|| "HTTP 401/403".to_owned(), |m| m.as_str().unwrap_or_default().to_owned()),
            })),
            HttpResponse::Status { status: 408 | 425 | 429 | 500..=599, .. } | HttpResponse::NetworkError { .. } => {
                None
            }
            HttpResponse::Status { status, body } => Some(Err(match body.as_ref().and_then(errors_of) {
                Some(errors) => MutationError::from_graphql(&errors),
                None => MutationError::Other { code: None, message: format!("HTTP {status}") },
            })),
        };
        let Some(result) = result else {
            // Keep it queued and try again later (or at once on the next reconnect); replay is idempotent.
            self.queue.failures = self.queue.failures.saturating_add(1);
            let delay = self.retry_delay(self.queue.failures);
            self.timers.set(Timer::Queue, self.now.saturating_add(delay));
            return;
        };
        self.queue.failures = 0;
        self.queue.head_sent = false;
        let Some(item) = self.queue.items.pop_front() else { return };
        self.queue.maybe_sent.retain(|id| *id != item.id);
        let collection = item.mutation.collection.as_deref().and_then(|name| self.index(name));
        let result = match result {
            Err(MutationError::Conflict(conflict)) => {
                let (key_field, version_fields) = match collection {
                    Some(i) => {
                        let table = &self.collections[i].table;
                        (table.key_field().to_owned(), table.version_fields().to_vec())
                    }
                    None => ("id".to_owned(), default_version_fields()),
                };
                Err(MutationError::Conflict(Box::new(conflict.complete(&item.mutation, &key_field, &version_fields))))
            }
            other => other,
        };
        if let Some(i) = collection {
            let mut changes = Vec::new();
            let table = &mut self.collections[i].table;
            match &result {
                Ok(value) => table.confirm_overlay(&item.id, value, &mut changes),
                Err(MutationError::Conflict(c)) => table.conflict_overlay(&item.id, c.theirs.as_ref(), &mut changes),
                Err(_) => table.rollback_overlay(&item.id, &mut changes),
            }
            self.emit_rows(i, changes, RowOrigin::Local, out);
        }
        out.push(Output::MutationSettled { id: item.id, result });
    }

    /// A follower (a store that shows another store's rows, e.g. a browser tab following the tab that holds the
    /// connection) sets rows of collection `collection` as the other store reports them: `Some(row)` shows the row
    /// under `key`, `None` removes it. The rows are shown as they are (no version checks); views and row outputs
    /// follow as for any change. A collection that keeps a history records the changes of events (`origin` with a
    /// seq) in it, from the first state reported after a fetch on ([`Store::mirror_state`]). A collection not
    /// watched here is ignored.
    pub fn mirror_rows(
        &mut self,
        collection: &str,
        rows: Vec<(String, Option<Value>)>,
        origin: RowOrigin,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(i) = self.index(collection) else { return out };
        let mut changes = Vec::new();
        let c = &mut self.collections[i];
        for (key, row) in rows {
            c.table.mirror(&key, row, &mut changes);
            if let RowOrigin::Event { seq: Some(seq) } = origin {
                c.table.record_history(seq, Some(&key));
            }
        }
        match origin {
            RowOrigin::Event { seq: Some(seq) } => {
                if let Some(state) = c.mirrored.as_mut() {
                    state.last_seq = Some(state.last_seq.map_or(seq, |last| last.max(seq)));
                }
            }
            RowOrigin::Fetch | RowOrigin::Restore if !changes.is_empty() => c.mirror_restart = true,
            _ => {}
        }
        self.emit_rows(i, changes, origin, &mut out);
        self.publish(&mut out);
        out
    }

    /// A follower shows collection `collection`'s state as the other store reports it (until
    /// [`Store::end_mirror`]).
    pub fn mirror_state(&mut self, collection: &str, state: CollectionState) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(i) = self.index(collection) {
            let c = &mut self.collections[i];
            c.mirrored = Some(state);
            if let (true, Some(seq)) = (c.mirror_restart || !c.table.history_started(), state.last_seq) {
                c.table.restart_history(seq, seq);
                c.mirror_restart = false;
            }
            self.publish(&mut out);
        }
        out
    }

    /// A follower shows the other store's status (until [`Store::end_mirror`]).
    pub fn mirror_status(&mut self, status: Status) -> Vec<Output> {
        self.mirrored_status = Some(status);
        let mut out = Vec::new();
        self.publish(&mut out);
        out
    }

    /// The follower takes over (the store it followed is gone): its own connection, queue and states count from
    /// now on. The rows it mirrored stay shown, as a restored copy would (loaded, stale until live), until a
    /// persisted image or the first snapshot replaces them.
    pub fn end_mirror(&mut self) -> Vec<Output> {
        self.mirrored_status = None;
        for c in &mut self.collections {
            if c.mirrored.take().is_some_and(|state| state.loaded) && !c.table.rows_empty() {
                c.from_image = true;
                c.restored = true;
            }
        }
        let mut out = Vec::new();
        self.publish(&mut out);
        out
    }

    /// Drops a queued mutation the server has not seen: its optimistic effect rolls back and it settles with
    /// [`MutationError::Discarded`] (in the returned outputs). Fails when no mutation with this id is queued, or when
    /// it was already sent (or was restored from a persisted queue, so may have been sent before the reload) — the
    /// server may have committed it, so it settles by the server's answer as usual.
    pub fn discard(&mut self, id: &str) -> Result<Vec<Output>, DiscardError> {
        let index = self.queue.items.iter().position(|m| m.id == id).ok_or(DiscardError::NotQueued)?;
        if (index == 0 && self.queue.head_sent) || self.queue.maybe_sent.iter().any(|m| m == id) {
            return Err(DiscardError::AlreadySent);
        }
        let item = self.queue.items.remove(index).expect("found above");
        self.queue.maybe_sent.retain(|id| *id != item.id);
        let mut out = Vec::new();
        if let Some(i) = item.mutation.collection.as_deref().and_then(|name| self.index(name)) {
            let mut changes = Vec::new();
            self.collections[i].table.rollback_overlay(&item.id, &mut changes);
            self.emit_rows(i, changes, RowOrigin::Local, &mut out);
        }
        out.push(Output::MutationSettled { id: item.id, result: Err(MutationError::Discarded) });
        self.publish(&mut out);
        Ok(out)
    }

    #[cfg(test)]
    pub(crate) fn conn_socket_count(&self) -> u64 {
        self.conn.sockets_opened()
    }

    #[cfg(test)]
    pub(crate) fn inner(&self, name: &str) -> &Table {
        &self.collections[self.index(name).expect("collection")].table
    }
}

/// Why [`Store::discard`] did not discard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DiscardError {
    /// No queued mutation has this id (it settled already, or never was).
    #[error("no queued mutation has this id")]
    NotQueued,
    /// It was sent; the server may have committed it, so only its answer settles it.
    #[error("the mutation was already sent; the server's answer settles it")]
    AlreadySent,
}

/// What a collection's readers may want to show besides its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionState {
    /// The first snapshot, list or live-query result has been applied, or the rows were restored from the persisted
    /// copy: the rows are the server's (perhaps of a while ago, see [`CollectionState::restored`]), not just empty.
    pub loaded: bool,
    /// Not in step with the server right now: disconnected, or fetching again after a reconnect or a gap.
    pub stale: bool,
    /// The seq the confirmed rows are consistent with (subsignal source).
    pub last_seq: Option<i64>,
    /// Optimistic effects of unsettled mutations are showing.
    pub has_pending_updates: bool,
    /// How old the newest applied event was when it arrived: the shell's clock minus its commit time
    /// (`committedAtMs`, when the subscription selects it; the two clocks' skew included). `None` before any.
    pub lag_ms: Option<i64>,
    /// The rows shown come from the persisted copy ([`Input::Restore`]) and the collection has not been live since:
    /// show them as possibly out of date (`stale` is true too).
    pub restored: bool,
}

impl CollectionState {
    /// Before anything arrived (or for a collection not watched): not loaded, stale, nothing else known.
    pub const NOT_LOADED: Self =
        Self { loaded: false, stale: true, last_seq: None, has_pending_updates: false, lag_ms: None, restored: false };
}

/// A live view as it shows now (a held view: as it was when held).
#[derive(Debug, Clone, Copy)]
pub struct ViewRead<'a> {
    view: &'a LiveView,
    collection: Option<CollectionView<'a>>,
}

impl<'a> ViewRead<'a> {
    /// The keys shown, in the view's order.
    pub fn keys(&self) -> Vec<String> {
        self.view.keys()
    }

    /// Row `key` as the view shows it (it may be outside the window).
    pub fn row(&self, key: &str) -> Option<Cow<'a, Value>> {
        if self.view.is_held() {
            return self.view.frozen_row(key).map(Cow::Borrowed);
        }
        self.collection?.row_ref(key)
    }

    /// The rows shown, in order.
    pub fn rows(&self) -> Vec<Value> {
        self.keys().iter().filter_map(|k| self.row(k).map(Cow::into_owned)).collect()
    }

    /// Loaded, stale, length, matching total, held and pending updates.
    pub fn state(&self) -> ViewState {
        self.view.state(self.collection.map(|c| c.state()))
    }
}

/// A read view of one collection, with the optimistic overlays applied.
#[derive(Debug, Clone, Copy)]
pub struct CollectionView<'a> {
    inner: &'a Collection,
}

impl<'a> CollectionView<'a> {
    /// The visible keys, in key order (or reversed, see [`CollectionConfig::descending`]).
    pub fn keys(&self) -> Vec<String> {
        self.inner.table.visible_keys()
    }

    /// The visible row for `key`.
    pub fn row(&self, key: &str) -> Option<Value> {
        self.row_ref(key).map(Cow::into_owned)
    }

    /// The visible row for `key`, borrowed from the collection unless an optimistic patch had to be merged into a
    /// copy: for reading or serializing a row without copying it.
    pub fn row_ref(&self, key: &str) -> Option<Cow<'a, Value>> {
        self.inner.table.visible(key)
    }

    /// The visible row for `key`, deserialized.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<Result<T, serde_json::Error>> {
        self.row(key).map(serde_json::from_value)
    }

    /// All visible rows, in order.
    pub fn rows(&self) -> Vec<Value> {
        self.keys().iter().filter_map(|k| self.row(k)).collect()
    }

    /// All visible rows, deserialized, in order.
    pub fn rows_as<T: DeserializeOwned>(&self) -> Result<Vec<T>, serde_json::Error> {
        self.rows().into_iter().map(serde_json::from_value).collect()
    }

    /// The confirmed row for `key`: the server's state as of [`CollectionView::last_seq`], without overlays.
    pub fn confirmed(&self, key: &str) -> Option<&'a Value> {
        self.inner.table.confirmed(key)
    }

    /// The seq the confirmed rows are consistent with (subsignal source); `None` before the first snapshot and for
    /// the other sources.
    pub fn last_seq(&self) -> Option<i64> {
        self.inner.sync.last_seq()
    }

    /// Whether the rows are current: fetched (snapshot, list, first result) and every subscription running.
    pub fn is_live(&self) -> bool {
        if let Some(state) = self.inner.mirrored {
            return state.loaded && !state.stale;
        }
        self.inner.sync.is_live()
    }

    /// What the collection's source promises over the store's protocol.
    pub fn guarantee(&self) -> Guarantee {
        self.inner.guarantee
    }

    /// The number of optimistic overlays shown.
    pub fn overlays(&self) -> usize {
        self.inner.table.overlay_count()
    }

    /// Counters of events, applied, duplicate and gap events, subscriptions, snapshots and resyncs.
    pub fn stats(&self) -> CollectionStats {
        self.inner.table.stats
    }

    /// The seqs the collection's history holds (see [`CollectionConfig::history`]).
    pub fn history(&self) -> Result<HistoryRange, HistoryError> {
        let history = self.history_kept()?;
        history.range().ok_or_else(|| HistoryError::Empty(self.inner.cfg.name.clone()))
    }

    /// The confirmed rows just after `seq` (no optimistic effects), each with the event that last changed it, and
    /// the rows the event at `seq` changed; read from the history, the live rows untouched. A seq outside
    /// [`CollectionView::history`] is an [`HistoryError::OutOfRange`] naming the range held.
    pub fn at(&self, seq: i64) -> Result<HistoryAt, HistoryError> {
        self.history_kept()?.at(&self.inner.cfg.name, seq, self.inner.cfg.descending)
    }

    fn history_kept(&self) -> Result<&'a History, HistoryError> {
        let name = &self.inner.cfg.name;
        match (&self.inner.table.history, &self.inner.cfg.source) {
            (Some(history), _) => Ok(history),
            (None, Source::Subsignal(_)) => Err(HistoryError::Disabled(name.clone())),
            (None, _) if self.inner.cfg.history.is_none() => Err(HistoryError::Disabled(name.clone())),
            (None, _) => Err(HistoryError::NoSeqs(name.clone())),
        }
    }

    /// Loaded, stale, `lastSeq`, pending updates.
    pub fn state(&self) -> CollectionState {
        if let Some(state) = self.inner.mirrored {
            return state;
        }
        CollectionState {
            loaded: self.inner.table.stats.snapshots > 0 || self.inner.from_image,
            stale: !self.inner.sync.is_live(),
            last_seq: self.last_seq(),
            has_pending_updates: self.overlays() > 0,
            lag_ms: self.inner.lag_ms,
            restored: self.inner.restored,
        }
    }
}
