//! [`BrowserStore`]: drives the core with browser events and carries out its outputs with browser APIs (`web.rs`;
//! natively `inert.rs`, where nothing happens).
//!
//! The WebSocket is `web_sys::WebSocket` rather than gloo-net's: the core needs the exact moment a socket opens
//! (`SocketOpened` starts `connection_init`) and the close code and reason, which gloo-net's stream folds into an
//! error after the fact. HTTP uses gloo-net with an `AbortController` for the timeout.
//!
//! Re-entrancy: inputs go through an inbox drained by whoever finds the store idle, so a listener that mutates or
//! reads while the store publishes never meets a borrowed store; the core is only borrowed inside `Store::handle`.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};

mod shared;

use crate::oneshot;
use crate::options::{bearer, StoreOptions};
use crate::platform::{self, now_ms, random_u64, warn, Connectivity, Socket, Timer};
use serde::de::DeserializeOwned;
use serde_json::Value;
use subsignal_store::{
    CollectionConfig, CollectionImage, CollectionState, CollectionView, DiscardError, HistoryAt, HistoryError,
    HistoryRange, HttpRequest, Input, Mutation, MutationError, Output, PendingMutation, RowChange, RowOrigin, Status,
    Store, StoreConfig, StoreImage, ViewError, ViewOp, ViewRead, ViewSpec, ViewState, IMAGE_FORMAT,
};

/// How long row changes of persisted collections wait before they are written (queue changes are written at once).
const FLUSH_DELAY_MS: u64 = 500;
/// How long the store waits for IndexedDB to hand over the persisted image before it goes to the network without.
const LOAD_TIMEOUT_MS: u32 = 3_000;

type RowFn = Rc<dyn Fn(&str, &RowChange, &RowOrigin)>;
type StatusFn = Rc<dyn Fn(&Status)>;
type AuthFn = Rc<dyn Fn()>;
type WarningFn = Rc<dyn Fn(&str)>;
type ViewFn = Rc<dyn Fn(u64, &[ViewOp], &ViewState)>;
type CollectionFn = Rc<dyn Fn(&str, &CollectionState)>;
type Settled = oneshot::Sender<Result<Value, MutationError>>;

#[derive(Clone)]
enum Listener {
    Row(RowFn),
    Status(StatusFn),
    AuthRequired(AuthFn),
    Warning(WarningFn),
    View(ViewFn),
    Collection(CollectionFn),
}

struct Inner {
    store: RefCell<Store>,
    options: StoreOptions,
    inbox: RefCell<VecDeque<Input>>,
    busy: Cell<bool>,
    sockets: RefCell<HashMap<u64, Socket>>,
    /// The one timer, and the store time it fires at.
    timer: RefCell<Option<(u64, Timer)>>,
    listeners: RefCell<Vec<(u64, Listener)>>,
    next_listener: Cell<u64>,
    /// Futures waiting for a mutation to settle, by `clientMutationId`.
    waiters: RefCell<HashMap<String, Vec<Settled>>>,
    connectivity: RefCell<Option<Connectivity>>,
    /// With a `persistKey`: the IndexedDB database, once open.
    db: RefCell<Option<platform::Db>>,
    /// The persisted image is being read: mutations wait (in `held`) until it has been restored, so that they queue
    /// behind the restored ones.
    loading: Cell<bool>,
    held: RefCell<Vec<Input>>,
    /// Gives up waiting for the image.
    load_timer: RefCell<Option<Timer>>,
    /// The next write of the image, and when it happens.
    flush: RefCell<Option<(u64, Timer)>>,
    /// This tab's queue record in the database.
    tab: String,
    /// Other tabs' queue records adopted at load: deleted by this tab's next write.
    adopted: RefCell<Vec<String>>,
    /// Other tabs' `localStorage` queue copies adopted at load (and an older version's queue): removed once this
    /// tab's own copy holds them.
    adopted_local: RefCell<Vec<String>>,
    /// Counts queue changes, so that a write tells whether the queue it wrote is still the current one.
    queue_version: Cell<u64>,
    /// A failed write has been reported (once per store, not once per flush).
    write_warned: Cell<bool>,
    /// Shared mode: the link to the other tabs (see `shared`).
    shared: RefCell<Option<Rc<shared::Shared>>>,
}

/// The browser store: a cheap, cloneable handle (all clones drive the same store) on one thread.
///
/// Create it with [`BrowserStore::new`], add collections with [`BrowserStore::watch`], then
/// [`BrowserStore::connect`]. Rows are read with [`BrowserStore::rows`] and friends; changes arrive through
/// [`BrowserStore::on_row`] and [`BrowserStore::on_status`]. When the last handle is dropped, sockets close and
/// browser listeners are removed.
#[derive(Clone)]
pub struct BrowserStore {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for BrowserStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserStore").field("status", &self.status()).finish_non_exhaustive()
    }
}

/// Keeps a listener registered; dropping it unregisters the listener.
#[must_use = "the listener is removed when the guard is dropped"]
pub struct ListenerGuard {
    inner: Weak<Inner>,
    id: u64,
}

impl std::fmt::Debug for ListenerGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerGuard").field("id", &self.id).finish()
    }
}

impl ListenerGuard {
    /// Keeps the listener for as long as the store lives.
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.listeners.borrow_mut().retain(|(id, _)| *id != self.id);
        }
    }
}

/// The result of [`BrowserStore::mutate`]: the entity the server wrote, or why it refused.
#[must_use = "futures do nothing unless awaited; the mutation itself is queued either way"]
pub struct MutationFuture {
    id: String,
    rx: oneshot::Receiver<Result<Value, MutationError>>,
}

impl MutationFuture {
    /// The mutation's `clientMutationId`.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl std::fmt::Debug for MutationFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutationFuture").field("id", &self.id).finish()
    }
}

impl MutationFuture {
    /// This mutation's answer with the entity deserialized as `T` (a `DECODE` error when it does not fit).
    pub async fn typed<T: DeserializeOwned>(self) -> Result<T, MutationError> {
        let value = self.await?;
        serde_json::from_value(value).map_err(|e| MutationError::Other {
            code: Some("DECODE".to_owned()),
            message: format!("the mutation succeeded but its result does not fit the expected type: {e}"),
        })
    }
}

impl Future for MutationFuture {
    type Output = Result<Value, MutationError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|settled| {
            settled.unwrap_or_else(|| {
                Err(MutationError::Other {
                    code: None,
                    message: "the store was dropped before the mutation settled; it stays queued if persisted"
                        .to_owned(),
                })
            })
        })
    }
}

/// A version-4 UUID for a `clientMutationId`.
fn uuid_v4() -> String {
    subsignal_store::uuid_v4(random_u64(), random_u64())
}

impl BrowserStore {
    /// A store for these options, disconnected until [`BrowserStore::connect`]. The seed comes from
    /// `crypto.getRandomValues`; the page's `online`/`offline` events are fed to the store.
    ///
    /// With a `persistKey`, the persisted image (persisted collections and the offline queue) is read from the
    /// IndexedDB database `subsignal:<persistKey>` first: the socket may open meanwhile, but collections start and
    /// mutations queue only once it has been restored, a few milliseconds, and at most 3 s.
    pub fn new(options: StoreOptions) -> Self {
        if let Some(problem) = options.problem() {
            warn(&problem);
        }
        let mut config = StoreConfig::new(random_u64());
        config.connection = options.connection.clone();
        config.auth = options.auth_payload();
        config.collections = options.collections.clone();
        config.protocol = options.protocol;
        config.host = options.http_host();
        // The socket opens while IndexedDB is read; collections start once the image is back.
        config.awaits_restore = options.persist_key.is_some();
        let inner = Rc::new(Inner {
            store: RefCell::new(Store::new(config)),
            options,
            inbox: RefCell::new(VecDeque::new()),
            busy: Cell::new(false),
            sockets: RefCell::new(HashMap::new()),
            timer: RefCell::new(None),
            listeners: RefCell::new(Vec::new()),
            next_listener: Cell::new(1),
            waiters: RefCell::new(HashMap::new()),
            connectivity: RefCell::new(None),
            db: RefCell::new(None),
            loading: Cell::new(false),
            held: RefCell::new(Vec::new()),
            load_timer: RefCell::new(None),
            flush: RefCell::new(None),
            tab: uuid_v4(),
            adopted: RefCell::new(Vec::new()),
            adopted_local: RefCell::new(Vec::new()),
            queue_version: Cell::new(0),
            write_warned: Cell::new(false),
            shared: RefCell::new(None),
        });
        let weak = Rc::downgrade(&inner);
        let watch = platform::watch_connectivity(move |online| {
            if let Some(inner) = weak.upgrade() {
                Inner::feed(&inner, if online { Input::Online } else { Input::Offline });
            }
        });
        *inner.connectivity.borrow_mut() = Some(watch);
        for config in &inner.options.collections {
            inner.check_persist(config);
        }
        // Shared: the persisted image is read by the host (a `SharedWorker` at once, a tab once it holds the lock).
        let shared = if inner.options.shared { shared::start(&inner) } else { None };
        let is_shared = shared.is_some();
        *inner.shared.borrow_mut() = shared;
        if !is_shared || shared::is_host(&inner) == Some(true) {
            Inner::load(&inner);
        }
        Self { inner }
    }

    /// Starts connecting (and restarts after a fatal close), after the persisted image is restored.
    pub fn connect(&self) {
        if shared::connect(&self.inner) {
            return;
        }
        let offline = platform::is_offline();
        Inner::feed(&self.inner, Input::Connect);
        if offline {
            Inner::feed(&self.inner, Input::Offline);
        }
    }

    /// In shared mode ([`StoreOptions::shared`]): `Some(true)` while this tab hosts the store (holds the connection
    /// for every tab), `Some(false)` while it follows the tab that does; `None` for a store that is not shared (or runs
    /// on its own because the browser lacks Web Locks or `BroadcastChannel`).
    pub fn is_host(&self) -> Option<bool> {
        shared::is_host(&self.inner)
    }

    /// In shared mode: whether this tab follows the store's `SharedWorker` (see
    /// [`StoreOptions::shared_worker_url`]) rather than a host tab.
    pub fn follows_worker(&self) -> bool {
        shared::via_worker(&self.inner)
    }

    /// Closes the connection and stays disconnected.
    pub fn disconnect(&self) {
        Inner::feed(&self.inner, Input::Disconnect);
    }

    /// Keeps a collection live (snapshot, then subscription events).
    pub fn watch(&self, config: CollectionConfig) {
        self.inner.check_persist(&config);
        shared::watch(&self.inner, &config);
        Inner::feed(&self.inner, Input::Watch(config));
    }

    /// Stops keeping a collection live and forgets its rows.
    pub fn unwatch(&self, name: &str) {
        Inner::feed(&self.inner, Input::Unwatch(name.to_owned()));
    }

    /// Replaces the credentials (a `connection_init` payload such as `{"Authorization": "Bearer …"}`).
    pub fn set_auth(&self, auth: Option<Value>) {
        shared::set_auth(&self.inner, &auth);
        Inner::feed(&self.inner, Input::SetAuth(auth));
    }

    /// Replaces the credentials with a bearer token.
    pub fn set_token(&self, token: &str) {
        self.set_auth(Some(bearer(token)));
    }

    /// Queues a mutation (its optimistic overlay shows at once) and returns a future of its result. The mutation is
    /// queued whether or not the future is awaited; without a `clientMutationId` one is generated.
    pub fn mutate(&self, mut mutation: Mutation) -> MutationFuture {
        let id = mutation.client_mutation_id.get_or_insert_with(uuid_v4).clone();
        let (tx, rx) = oneshot::channel();
        self.inner.waiters.borrow_mut().entry(id.clone()).or_default().push(tx);
        match shared::following(&self.inner) {
            Some(shared) => shared::mutate(&shared, mutation),
            None => Inner::feed(&self.inner, Input::Mutate(mutation)),
        }
        MutationFuture { id, rx }
    }

    /// Drops a queued mutation the server has not seen: its optimistic effect rolls back and its future resolves to
    /// [`MutationError::Discarded`]. Fails when it is not queued, or already sent (then the server's answer settles
    /// it).
    pub fn discard(&self, id: &str) -> Result<(), DiscardError> {
        if let Some(shared) = shared::following(&self.inner) {
            // The host decides; its answer settles the mutation.
            shared::discard(&shared, id);
            return Ok(());
        }
        // Like an input: whoever is draining the inbox must not be holding the store (a listener may call this).
        let outputs = self.inner.store.borrow_mut().discard(id)?;
        for output in outputs {
            Inner::carry_out(&self.inner, output);
        }
        Ok(())
    }

    /// Like [`BrowserStore::mutate`], with the result deserialized.
    pub async fn mutate_as<T: DeserializeOwned>(&self, mutation: Mutation) -> Result<T, MutationError> {
        self.mutate(mutation).typed().await
    }

    /// The current status (connection state and number of unsettled mutations).
    pub fn status(&self) -> Status {
        self.inner.store.borrow().status()
    }

    /// Reads a collection through the core's view (`None` if it is not watched).
    pub fn with_collection<R>(&self, name: &str, read: impl FnOnce(Option<CollectionView<'_>>) -> R) -> R {
        read(self.inner.store.borrow().collection(name))
    }

    /// The visible keys of a collection, in order.
    pub fn keys(&self, name: &str) -> Vec<String> {
        self.with_collection(name, |c| c.map(|c| c.keys()).unwrap_or_default())
    }

    /// The visible rows of a collection, in order.
    pub fn rows(&self, name: &str) -> Vec<Value> {
        self.with_collection(name, |c| c.map(|c| c.rows()).unwrap_or_default())
    }

    /// The visible rows of a collection, deserialized, in order.
    pub fn rows_as<T: DeserializeOwned>(&self, name: &str) -> Result<Vec<T>, serde_json::Error> {
        self.with_collection(name, |c| c.map(|c| c.rows_as()).unwrap_or(Ok(Vec::new())))
    }

    /// One visible row.
    pub fn row(&self, name: &str, key: &str) -> Option<Value> {
        self.with_collection(name, |c| c.and_then(|c| c.row(key)))
    }

    /// One visible row, deserialized (`None` if absent or if it does not fit `T`).
    pub fn row_as<T: DeserializeOwned>(&self, name: &str, key: &str) -> Option<T> {
        self.row(name, key).and_then(|v| serde_json::from_value(v).ok())
    }

    /// The seqs a collection's history holds (see [`CollectionConfig::history`]).
    pub fn history(&self, name: &str) -> Result<HistoryRange, HistoryError> {
        self.with_collection(name, |c| c.ok_or_else(|| HistoryError::UnknownCollection(name.to_owned()))?.history())
    }

    /// A collection's confirmed rows just after `seq`, each with the event that last changed it, read from its
    /// history without touching the live rows (see [`CollectionView::at`]).
    pub fn at(&self, name: &str, seq: i64) -> Result<HistoryAt, HistoryError> {
        self.with_collection(name, |c| c.ok_or_else(|| HistoryError::UnknownCollection(name.to_owned()))?.at(seq))
    }

    /// The unsettled mutations, in order; in a tab following a shared store, the host's queue (every tab's), as
    /// the host's last status said.
    pub fn pending_mutations(&self) -> Vec<PendingMutation> {
        shared::pending_mutations(&self.inner)
    }

    /// Calls `listener(collection, change)` for every row change readers can see.
    pub fn on_row(&self, listener: impl Fn(&str, &RowChange, &RowOrigin) + 'static) -> ListenerGuard {
        self.listen(Listener::Row(Rc::new(listener)))
    }

    /// Calls `listener(status)` whenever the status changes.
    pub fn on_status(&self, listener: impl Fn(&Status) + 'static) -> ListenerGuard {
        self.listen(Listener::Status(Rc::new(listener)))
    }

    /// Calls `listener()` when the server refuses the credentials; answer with [`BrowserStore::set_auth`].
    pub fn on_auth_required(&self, listener: impl Fn() + 'static) -> ListenerGuard {
        self.listen(Listener::AuthRequired(Rc::new(listener)))
    }

    /// Renews the token with `ask` whenever the server refuses the credentials, one request at a time: while the
    /// store waits for the new token it retries with the refused one, and a refusal of that retry is answered by the
    /// request already out (asking again would call the identity provider once per retry). Once `ask` answers, or
    /// gives `None` (the store keeps its credentials), the next refusal asks again.
    pub fn renew_token_with<F: Future<Output = Option<String>> + 'static>(
        &self,
        ask: impl Fn() -> F + 'static,
    ) -> ListenerGuard {
        let asking = Rc::new(Cell::new(false));
        // Weak: the listener belongs to the store, and must not keep it alive.
        let store = Rc::downgrade(&self.inner);
        self.on_auth_required(move || {
            if asking.replace(true) {
                return;
            }
            let (store, asking, answer) = (store.clone(), asking.clone(), ask());
            platform::spawn(async move {
                if let (Some(token), Some(inner)) = (answer.await, store.upgrade()) {
                    BrowserStore { inner }.set_token(&token);
                }
                asking.set(false);
            });
        })
    }

    /// Calls `listener(message)` for the core's warnings (without one, they go to `console.warn`).
    pub fn on_warning(&self, listener: impl Fn(&str) + 'static) -> ListenerGuard {
        self.listen(Listener::Warning(Rc::new(listener)))
    }

    /// Opens a live view over the watched collection `collection`: a filtered, sorted window kept up to date per row
    /// change (see [`ViewSpec`]). Its changes reach [`BrowserStore::on_view`]; close it with
    /// [`BrowserStore::close_view`].
    pub fn open_view(&self, collection: &str, spec: ViewSpec) -> Result<u64, ViewError> {
        self.inner.store.borrow_mut().open_view(collection, spec)
    }

    /// Closes a view.
    pub fn close_view(&self, id: u64) {
        self.inner.store.borrow_mut().close_view(id);
    }

    /// Reads a view (`None` once closed).
    pub fn with_view<R>(&self, id: u64, read: impl FnOnce(Option<ViewRead<'_>>) -> R) -> R {
        read(self.inner.store.borrow().view(id))
    }

    /// Holds what a view shows until [`BrowserStore::release_view`]; changes keep applying underneath.
    pub fn hold_view(&self, id: u64) -> Result<(), ViewError> {
        self.inner.store.borrow_mut().hold_view(id)
    }

    /// Releases a held view: its listeners hear the net change at once.
    pub fn release_view(&self, id: u64) -> Result<(), ViewError> {
        let output = self.inner.store.borrow_mut().release_view(id)?;
        if let Some(output) = output {
            Inner::carry_out(&self.inner, output);
        }
        Ok(())
    }

    /// Calls `listener(view, ops, state)` whenever a view's window changes (once per view per batch of events).
    pub fn on_view(&self, listener: impl Fn(u64, &[ViewOp], &ViewState) + 'static) -> ListenerGuard {
        self.listen(Listener::View(Rc::new(listener)))
    }

    /// Calls `listener(collection, state)` when a collection's loaded, stale or pending updates change, and once when
    /// it is watched.
    pub fn on_collection_state(&self, listener: impl Fn(&str, &CollectionState) + 'static) -> ListenerGuard {
        self.listen(Listener::Collection(Rc::new(listener)))
    }

    fn listen(&self, listener: Listener) -> ListenerGuard {
        let id = self.inner.next_listener.get();
        self.inner.next_listener.set(id + 1);
        self.inner.listeners.borrow_mut().push((id, listener));
        ListenerGuard { inner: Rc::downgrade(&self.inner), id }
    }
}

impl Inner {
    /// Queues an input and, unless a caller up the stack is already draining, handles everything queued.
    fn feed(this: &Rc<Self>, input: Input) {
        if this.loading.get() && matches!(input, Input::Mutate(_)) {
            return this.held.borrow_mut().push(input);
        }
        this.inbox.borrow_mut().push_back(input);
        Self::drain(this);
    }

    /// Handles everything in the inbox, unless a caller up the stack is already doing so.
    fn drain(this: &Rc<Self>) {
        if this.busy.replace(true) {
            return;
        }
        loop {
            let Some(input) = this.inbox.borrow_mut().pop_front() else { break };
            if shared::is_queued(this, &input) {
                // A shared store's mutation sent again to a new host that already queued it.
                continue;
            }
            let outputs = this.store.borrow_mut().handle(now_ms(), input);
            for output in outputs {
                Self::carry_out(this, output);
            }
        }
        this.busy.set(false);
        Self::arm_timer(this);
    }

    fn arm_timer(this: &Rc<Self>) {
        let next = this.store.borrow().next_wake_ms();
        let mut timer = this.timer.borrow_mut();
        match next {
            None => *timer = None,
            // A timer due no later is armed: it re-arms for `at` when it fires. (Every frame received moves the
            // liveness deadline later; re-arming on each would cost a closure and two timer calls per event.)
            Some(at) if timer.as_ref().is_some_and(|(armed, _)| *armed <= at) => {}
            Some(at) => {
                let delay = at.saturating_sub(now_ms()).min(i32::MAX as u64) as u32;
                let weak = Rc::downgrade(this);
                let timeout = platform::timer(delay, move || {
                    if let Some(inner) = weak.upgrade() {
                        inner.timer.borrow_mut().take();
                        Self::feed(&inner, Input::Tick);
                    }
                });
                // Replacing the old timer cancels it.
                *timer = Some((at, timeout));
            }
        }
    }

    fn listeners(&self) -> Vec<Listener> {
        self.listeners.borrow().iter().map(|(_, l)| l.clone()).collect()
    }

    fn carry_out(this: &Rc<Self>, output: Output) {
        shared::announce(this, &output);
        match output {
            Output::OpenSocket { socket, subprotocol, query } => Self::open_socket(this, socket, &subprotocol, query),
            Output::CloseSocket { socket, code, reason } => {
                let removed = this.sockets.borrow_mut().remove(&socket);
                if let Some(s) = removed {
                    s.close(code, &reason);
                }
            }
            Output::Send { socket, message } => {
                let text = serde_json::to_string(&message).expect("client messages serialize");
                this.send(socket, &text);
            }
            Output::SendAppSync { socket, message } => {
                let text = serde_json::to_string(&message).expect("client messages serialize");
                this.send(socket, &text);
            }
            Output::Http(request) => Self::http(this, request),
            Output::Row { collection, change, origin } => {
                for l in this.listeners() {
                    if let Listener::Row(f) = l {
                        f(&collection, &change, &origin);
                    }
                }
            }
            Output::MutationQueued { .. } => Self::write_ahead(this),
            Output::Persist => Self::schedule_flush(this, FLUSH_DELAY_MS),
            Output::MutationSettled { id, result } => {
                Self::write_ahead(this);
                let waiters = this.waiters.borrow_mut().remove(&id).unwrap_or_default();
                for tx in waiters {
                    tx.send(result.clone());
                }
            }
            Output::Status(status) => {
                for l in this.listeners() {
                    if let Listener::Status(f) = l {
                        f(&status);
                    }
                }
            }
            Output::AuthRequired => {
                let mut heard = false;
                for l in this.listeners() {
                    if let Listener::AuthRequired(f) = l {
                        heard = true;
                        f();
                    }
                }
                if !heard {
                    warn("the server refused the credentials; call set_auth with fresh ones");
                }
            }
            Output::Collection { collection, state } => {
                for l in this.listeners() {
                    if let Listener::Collection(f) = l {
                        f(&collection, &state);
                    }
                }
            }
            Output::View { view, ops, state } => {
                for l in this.listeners() {
                    if let Listener::View(f) = l {
                        f(view, &ops, &state);
                    }
                }
            }
            Output::Warning(message) => {
                let mut heard = false;
                for l in this.listeners() {
                    if let Listener::Warning(f) = l {
                        heard = true;
                        f(&message);
                    }
                }
                if !heard {
                    warn(&message);
                }
            }
        }
    }

    fn send(&self, socket: u64, text: &str) {
        if let Some(s) = self.sockets.borrow().get(&socket) {
            s.send(text);
        }
    }

    fn open_socket(this: &Rc<Self>, socket: u64, subprotocol: &str, query: Option<String>) {
        let base = this.options.socket_url();
        let url = match query {
            Some(q) if base.contains('?') => format!("{base}&{q}"),
            Some(q) => format!("{base}?{q}"),
            None => base.to_owned(),
        };
        let offered = this.options.offers_subprotocol().then_some(subprotocol);
        let (open, message, close) = (Rc::downgrade(this), Rc::downgrade(this), Rc::downgrade(this));
        let opened = Socket::open(
            &url,
            offered,
            move || {
                if let Some(inner) = open.upgrade() {
                    Self::feed(&inner, Input::SocketOpened { socket });
                }
            },
            move |text| {
                if let Some(inner) = message.upgrade() {
                    Self::feed(&inner, Input::Frame { socket, text });
                }
            },
            move |code, reason| {
                let Some(inner) = close.upgrade() else { return };
                inner.sockets.borrow_mut().remove(&socket);
                Self::feed(&inner, Input::SocketClosed { socket, code, reason });
            },
        );
        match opened {
            Ok(ws) => {
                this.sockets.borrow_mut().insert(socket, ws);
            }
            Err(e) => {
                let reason = format!("cannot open {}: {e}", this.options.socket_url());
                Self::feed(this, Input::SocketClosed { socket, code: 1006, reason });
            }
        }
    }

    fn http(this: &Rc<Self>, request: HttpRequest) {
        let weak = Rc::downgrade(this);
        let request_id = request.request_id;
        platform::post(this.options.http_url.clone(), request, this.options.http_timeout_ms, move |response| {
            if let Some(inner) = weak.upgrade() {
                Self::feed(&inner, Input::Http { request_id, response });
            }
        });
    }

    /// Warns when a collection asks to persist in a store that keeps nothing.
    fn check_persist(&self, config: &CollectionConfig) {
        if config.persist && self.options.persist_key.is_none() {
            warn(&format!("collection {} has persist, but the store has no persistKey: nothing is kept", config.name));
        }
    }

    /// With a `persistKey`: starts reading the persisted image; mutations wait until it is restored.
    fn load(this: &Rc<Self>) {
        let Some(key) = &this.options.persist_key else { return };
        this.loading.set(true);
        let weak = Rc::downgrade(this);
        let late = weak.clone();
        // A database that does not answer (an upgrade blocked by another tab) must not keep the store offline.
        let timer = platform::timer(LOAD_TIMEOUT_MS, move || {
            if let Some(inner) = late.upgrade().filter(|inner| inner.loading.get()) {
                warn("IndexedDB did not answer within 3 s: going to the network without the persisted copy");
                Self::restore(&inner, StoreImage::default());
            }
        });
        *this.load_timer.borrow_mut() = Some(timer);
        platform::idb_open(
            &format!("subsignal:{key}"),
            IMAGE_FORMAT,
            Box::new(move |opened| {
                if let Some(inner) = weak.upgrade() {
                    Self::loaded(&inner, opened);
                }
            }),
        );
    }

    /// The database answered (or cannot be used): restore what it held. Each tab's queue is read from its
    /// `localStorage` copy when there is one (written synchronously at every change, so never older), else from its
    /// IndexedDB record; an older version's queue (`localStorage` under the key itself) is taken over too. Corrupted
    /// records are skipped with a warning.
    fn loaded(this: &Rc<Self>, opened: Result<(platform::Db, platform::Stored), String>) {
        let Some(key) = this.options.persist_key.clone() else { return };
        let mut image = StoreImage::default();
        // Each tab's queue text, the newest copy winning.
        let mut queues: Vec<(String, String)> = Vec::new();
        let mut keep = |tab: String, text: String| match queues.iter_mut().find(|(t, _)| *t == tab) {
            Some(entry) => entry.1 = text,
            None => queues.push((tab, text)),
        };
        match opened {
            Ok((db, stored)) => {
                for text in stored.collections {
                    match CollectionImage::from_json(&text) {
                        Ok(collection) => image.collections.push(collection),
                        Err(e) => {
                            warn(&format!("ignoring a corrupted persisted collection ({e}); it loads from the network"))
                        }
                    }
                }
                for (tab, text) in stored.queues {
                    this.adopted.borrow_mut().push(tab.clone());
                    keep(tab, text);
                }
                *this.db.borrow_mut() = Some(db);
            }
            Err(e) => warn(&format!(
                "cannot use IndexedDB ({e}): persisted collections load from the network, and the offline queue is \
                 kept in localStorage"
            )),
        }
        let prefix = format!("{key}:queue:");
        for local in platform::stored_keys(&prefix) {
            if let Some(text) = platform::stored(&local) {
                keep(local[prefix.len()..].to_owned(), text);
            }
            this.adopted_local.borrow_mut().push(local);
        }
        if let Some(text) = platform::stored(&key) {
            keep(String::new(), text);
            this.adopted_local.borrow_mut().push(key.clone());
        }
        for (tab, text) in queues {
            match platform::from_json::<Vec<PendingMutation>>(&text) {
                Ok(items) => image.queue.extend(items),
                Err(e) => warn(&format!("ignoring a corrupted persisted queue ({tab:?}): {e}")),
            }
        }
        Self::restore(this, image);
    }

    /// This tab's `localStorage` copy of the queue.
    fn local_queue_key(&self) -> Option<String> {
        self.options.persist_key.as_ref().map(|key| format!("{key}:queue:{}", self.tab))
    }

    /// The queue changed: its copy in `localStorage` is written at once (synchronously, so that a page closed right
    /// after a mutation keeps it), and it goes to IndexedDB with the rows as soon as possible, after which the copy
    /// is removed.
    fn write_ahead(this: &Rc<Self>) {
        let Some(local) = this.local_queue_key() else { return };
        this.queue_version.set(this.queue_version.get() + 1);
        let pending = this.store.borrow().pending_mutations();
        let text = serde_json::to_string(&pending).expect("mutations serialize");
        if platform::store(&local, Some(&text)) {
            // This tab's copy now holds every adopted mutation.
            for adopted in this.adopted_local.borrow_mut().drain(..) {
                platform::store(&adopted, None);
            }
        } else if this.db.borrow().is_none() && !this.write_warned.replace(true) {
            warn("cannot write the offline queue to localStorage (full or disabled) nor to IndexedDB");
        }
        Self::schedule_flush(this, 0);
    }

    /// Feeds the image back, then the mutations that waited for it.
    fn restore(this: &Rc<Self>, image: StoreImage) {
        this.load_timer.borrow_mut().take();
        this.loading.set(false);
        let held = std::mem::take(&mut *this.held.borrow_mut());
        let mut inbox = this.inbox.borrow_mut();
        inbox.push_back(Input::Restore(image));
        inbox.extend(held);
        drop(inbox);
        Self::drain(this);
        shared::restored(this);
    }

    /// Writes the image within `delay_ms` (sooner if already due sooner).
    fn schedule_flush(this: &Rc<Self>, delay_ms: u64) {
        if this.options.persist_key.is_none() {
            return;
        }
        let at = now_ms() + delay_ms;
        let mut flush = this.flush.borrow_mut();
        if flush.as_ref().is_some_and(|(armed, _)| *armed <= at) {
            return;
        }
        let weak = Rc::downgrade(this);
        let timer = platform::timer(delay_ms as u32, move || {
            if let Some(inner) = weak.upgrade() {
                inner.flush.borrow_mut().take();
                Self::write(&inner);
            }
        });
        *flush = Some((at, timer));
    }

    /// Writes what changed (persisted collections) and the queue in one IndexedDB transaction, so that rows and
    /// queue are never written apart. If it fails (quota, a broken database) or IndexedDB is unavailable, the queue
    /// stays in its `localStorage` copy, so no mutation is lost; a write that commits the current queue removes it.
    fn write(this: &Rc<Self>) {
        if this.loading.get() {
            // Writing now would replace the persisted image before it was read back.
            return Self::schedule_flush(this, FLUSH_DELAY_MS);
        }
        let Some((db, data)) = this.flush_data() else { return };
        let version = this.queue_version.get();
        let weak = Rc::downgrade(this);
        platform::idb_write(
            &db,
            data,
            Box::new(move |written| {
                let Some(inner) = weak.upgrade() else { return };
                match written {
                    Ok(()) => {
                        if inner.queue_version.get() == version {
                            if let Some(local) = inner.local_queue_key() {
                                platform::store(&local, None);
                            }
                        }
                        for adopted in inner.adopted_local.borrow_mut().drain(..) {
                            platform::store(&adopted, None);
                        }
                    }
                    Err(e) => {
                        if !inner.write_warned.replace(true) {
                            warn(&format!(
                                "cannot write the persisted copy to IndexedDB ({e}): the next load goes to the network, \
                                 and the offline queue is kept in localStorage"
                            ));
                        }
                    }
                }
            }),
        );
    }
}

impl Inner {
    /// What a flush writes now, and where: `None` without a database.
    fn flush_data(&self) -> Option<(platform::Db, platform::Write)> {
        let db = self.db.borrow().clone()?;
        let image = self.store.borrow_mut().take_image();
        let queue =
            (!image.queue.is_empty()).then(|| serde_json::to_string(&image.queue).expect("mutations serialize"));
        let collections = image.collections.iter().map(|c| (c.name.clone(), c.to_json())).collect();
        let drop_queues = std::mem::take(&mut *self.adopted.borrow_mut());
        Some((db, platform::Write { collections, queue_key: self.tab.clone(), queue, drop_queues }))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A flush still due is written now (the write outlives the store): where there is no `localStorage` copy of
        // the queue (a store in a worker), a mutation queued just before the store went away is not lost.
        if self.flush.get_mut().take().is_some() && !self.loading.get() {
            if let Some((db, data)) = self.flush_data() {
                platform::idb_write(&db, data, Box::new(|_| {}));
            }
        }
        for (_, socket) in self.sockets.get_mut().drain() {
            socket.close(1000, "store dropped");
        }
    }
}

/// In the store's `SharedWorker`, whose module script calls this for every `connect` event's port (the npm package's
/// `subsignal_store_worker.js`, or for a Rust app `shell/shared_worker.js`, which finds it in the app's own glue: every
/// wasm32 build that links this crate exports it): the tab on `port` attaches. Its first message carries its
/// options; the first tab's make the worker's store.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(js_name = attachSharedWorkerPort)]
pub fn attach_shared_worker_port(port: web_sys::MessagePort) {
    shared::attach(port);
}
