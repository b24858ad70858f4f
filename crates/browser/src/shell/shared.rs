//! Shared mode ([`StoreOptions::shared`](crate::StoreOptions)): one host tab per store name and origin runs the
//! connection, the collections and the offline queue; the other tabs follow it.
//!
//! The tab holding the Web Lock `subsignal:shared:<persistKey or wsUrl>` hosts: its [`BrowserStore`] is an ordinary
//! one, and it posts what readers see on the `BroadcastChannel` of the same name: every row change (the row as it
//! shows now, optimistic effects included), collection states, statuses and settled mutations. A following tab's
//! core never connects: it shows the host's rows ([`Store::mirror_rows`], so its views, row listeners and JavaScript
//! snapshots work as on a host), and posts its watches, mutations, discards, `connect` and credentials to the host;
//! a mutation's answer comes back to the caller's future as `settled`. When the host tab closes, the browser gives
//! the lock to a waiting tab: it ends the mirror, restores the persisted image and queue (IndexedDB, as at a
//! reload), feeds the mutations it had sent and not seen settled (the queue skips ids it already holds, and the
//! server's idempotency by `clientMutationId` keeps a resend from writing twice), connects, and says `host`; the
//! followers then attach again and re-send their unsettled mutations.
//!
//! Where the browser has `SharedWorker`, a `SharedWorker` hosts instead, with the same messages: its store hosts from
//! the start, every tab attaches over a `MessagePort` (its first message, `open {open: options}`, makes the worker's
//! store if it has none yet) and follows; host messages go to every port. One protocol, two transports (`Link`). The
//! worker runs the script the options name ([`StoreOptions::shared_worker_url`]; the npm package's, for `shared:
//! true`), or else this crate's `shared_worker.js` with the app's own glue and wasm (`platform::app_worker`), so
//! that a Rust app gets its worker by [`StoreOptions::shared`] alone; [`StoreOptions::shared_in_tab`] keeps the host
//! in a tab.
//!
//! Messages are JSON text, one flat object `{"t": kind, …}`:
//! - follower → host: `open {open}` (to a worker), `hello {tab, collections}`, `watch {tab, collections: [config]}`, `mutate {m}`,
//!   `discard {id}`, `connect`, `auth {a}`;
//! - host → followers: `host`, `sync {to, status, q, sync: [{name, state, rows: [[key, row]…]}]}`,
//!   `rows {c, k, r, o}` (no `r` when the row went away), `state {c, s}`, `status {status, q}` (`q`: the host's
//!   queue, which a follower's `pending_mutations` lists), `settled {id, ok | err}`, and from a worker that cannot
//!   host `failed {err}`; origins, statuses and errors as flat structs (`Wire*`).

use super::{Inner, Rc};
use crate::options::StoreOptions;
use crate::platform::{
    app_worker, attach_shared_worker, has_shared_worker, in_shared_worker, request_lock, timer, warn, Channel, Lock,
    Port, Timer,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use subsignal_store::{
    CollectionConfig, CollectionState, Conflict, ConnectionStatus, FieldError, Input, Mutation, MutationError, Output,
    PendingMutation, RowOrigin, Status, Store,
};

/// Every message, one flat struct (`t` says which fields it carries): one `Serialize` and one `Deserialize` for the
/// text serializer the package already has, no `Value` trees, and the core's internally tagged enums (row origin,
/// connection status, mutation error) carried as flat structs too: deserializing those through serde's buffering
/// would add some 30 KB (gzip) to the wasm.
#[derive(Default, Serialize, Deserialize)]
struct Message {
    t: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tab: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    /// `hello`: the collections the tab watches; `watch`: the one it starts watching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    collections: Option<Vec<CollectionConfig>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<Mutation>,
    /// A mutation's id (`discard`, `settled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    /// `auth`: the new credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<Value>,
    /// `rows`, `state`: the collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<String>,
    /// `rows`: the row's key, the row as it shows (absent: gone), and what changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    o: Option<WireOrigin>,
    /// `state`: the collection's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<CollectionState>,
    /// `status`, `sync`: the host's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<WireStatus>,
    /// `status`, `sync`: the host's queue, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    q: Option<Vec<PendingMutation>>,
    /// `settled`: the entity written, or why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ok: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    err: Option<WireError>,
    /// `sync`: the collections asked for, with their states and rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sync: Option<Vec<Synced>>,
    /// `open` (a tab to its `SharedWorker`): the options the worker makes its store from, if it has none yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    open: Option<Box<StoreOptions>>,
}

/// One collection in a `sync`.
#[derive(Serialize, Deserialize)]
struct Synced {
    name: String,
    state: CollectionState,
    rows: Vec<(String, Value)>,
}

/// A [`RowOrigin`]: 0 event (with its seq), 1 fetch, 2 local, 3 restore.
#[derive(Serialize, Deserialize)]
struct WireOrigin(u8, Option<i64>);

impl From<&RowOrigin> for WireOrigin {
    fn from(origin: &RowOrigin) -> Self {
        match origin {
            RowOrigin::Event { seq } => Self(0, *seq),
            RowOrigin::Fetch => Self(1, None),
            RowOrigin::Local => Self(2, None),
            RowOrigin::Restore => Self(3, None),
        }
    }
}

impl From<WireOrigin> for RowOrigin {
    fn from(WireOrigin(kind, seq): WireOrigin) -> Self {
        match kind {
            0 => Self::Event { seq },
            2 => Self::Local,
            3 => Self::Restore,
            _ => Self::Fetch,
        }
    }
}

/// A [`Status`]: its connection state (0 disconnected, 1 connecting, 2 live, 3 reconnecting, 4 offline, 5 failed)
/// with the attempt, retry time and reason where the state has them, and the pending mutations.
#[derive(Serialize, Deserialize)]
struct WireStatus(u8, u32, u64, Option<String>, usize);

impl From<&Status> for WireStatus {
    fn from(status: &Status) -> Self {
        let pending = status.pending_mutations;
        match &status.connection {
            ConnectionStatus::Disconnected => Self(0, 0, 0, None, pending),
            ConnectionStatus::Connecting { attempt } => Self(1, *attempt, 0, None, pending),
            ConnectionStatus::Live => Self(2, 0, 0, None, pending),
            ConnectionStatus::Reconnecting { attempt, retry_at_ms } => Self(3, *attempt, *retry_at_ms, None, pending),
            ConnectionStatus::Offline => Self(4, 0, 0, None, pending),
            ConnectionStatus::Failed { reason } => Self(5, 0, 0, Some(reason.clone()), pending),
        }
    }
}

impl From<WireStatus> for Status {
    fn from(WireStatus(state, attempt, retry_at_ms, reason, pending_mutations): WireStatus) -> Self {
        let connection = match state {
            1 => ConnectionStatus::Connecting { attempt },
            2 => ConnectionStatus::Live,
            3 => ConnectionStatus::Reconnecting { attempt, retry_at_ms },
            4 => ConnectionStatus::Offline,
            5 => ConnectionStatus::Failed { reason: reason.unwrap_or_default() },
            _ => ConnectionStatus::Disconnected,
        };
        Self { connection, pending_mutations }
    }
}

/// A [`MutationError`], flat: `fields` (validation), `conflict`, `unauthorized` (its message), `discarded`, or
/// `code`/`message` for the others.
#[derive(Default, Serialize, Deserialize)]
struct WireError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fields: Option<Vec<FieldError>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conflict: Option<Box<Conflict>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unauthorized: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    discarded: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(default)]
    message: String,
}

impl From<&MutationError> for WireError {
    fn from(error: &MutationError) -> Self {
        match error {
            MutationError::Validation { fields } => Self { fields: Some(fields.clone()), ..Self::default() },
            MutationError::Conflict(conflict) => Self { conflict: Some(conflict.clone()), ..Self::default() },
            MutationError::Unauthorized { message } => Self { unauthorized: Some(message.clone()), ..Self::default() },
            MutationError::Discarded => Self { discarded: true, ..Self::default() },
            MutationError::Other { code, message } => {
                Self { code: code.clone(), message: message.clone(), ..Self::default() }
            }
        }
    }
}

impl From<WireError> for MutationError {
    fn from(error: WireError) -> Self {
        if let Some(fields) = error.fields {
            Self::Validation { fields }
        } else if let Some(conflict) = error.conflict {
            Self::Conflict(conflict)
        } else if let Some(message) = error.unauthorized {
            Self::Unauthorized { message }
        } else if error.discarded {
            Self::Discarded
        } else {
            Self::Other { code: error.code, message: error.message }
        }
    }
}

impl Message {
    fn new(t: &str) -> Self {
        Self { t: t.to_owned(), ..Self::default() }
    }
}

/// How a shared store reaches the others: one protocol (the messages above), two transports.
enum Link {
    /// Leader-tab mode: the `BroadcastChannel` every tab hears, and the Web Lock whose holder hosts.
    Tabs { channel: Channel, _lock: Lock },
    /// A tab attached to the store's `SharedWorker`: its port. The worker hosts; this tab always follows.
    Worker(Port),
    /// The `SharedWorker` hosting: one port per tab that attached (see `attach`).
    Ports(RefCell<Vec<Port>>),
}

/// A shared store's link to the other tabs (or a tab's to its worker, or the worker's to its tabs).
pub(super) struct Shared {
    link: Link,
    /// This tab holds the lock (or this is the worker): it hosts.
    hosting: Cell<bool>,
    /// `connect()` was called here: a tab that takes over connects.
    connect_asked: Cell<bool>,
    /// The collections this tab watches, named to a host when attaching.
    watched: RefCell<Vec<CollectionConfig>>,
    /// Mutations this tab sent to a host, not settled yet: sent again to the next host.
    sent: RefCell<Vec<Mutation>>,
    /// Following: the host's queue as its last status said (every tab's unsettled mutations).
    queue: RefCell<Vec<PendingMutation>>,
    /// A tab attached to a `SharedWorker`, until the worker first answers: the deadline by which it must
    /// ([`WORKER_ANSWER_MS`]).
    answer_deadline: RefCell<Option<Timer>>,
}

/// How long a tab waits for its `SharedWorker`'s first answer before it elects a host tab instead. A worker whose
/// script does not load says so with an `error` event, and one that cannot load the app answers `failed`; this is for
/// the worker that says nothing (a tab that attached while the worker was failing may hear no `error`). The worker's
/// script and wasm are usually the page's own, from the HTTP cache, so a working worker answers long before.
const WORKER_ANSWER_MS: u32 = 15_000;

impl Shared {
    fn new(inner: &Inner, link: Link, hosting: bool) -> Rc<Self> {
        Rc::new(Self {
            link,
            hosting: Cell::new(hosting),
            connect_asked: Cell::new(false),
            watched: RefCell::new(inner.options.collections.clone()),
            sent: RefCell::new(Vec::new()),
            queue: RefCell::new(Vec::new()),
            answer_deadline: RefCell::new(None),
        })
    }

    /// Posts to the other side: every tab on the channel, the worker, or every tab attached to the worker.
    fn post(&self, message: &Message) {
        let text = serde_json::to_string(message).expect("messages serialize");
        match &self.link {
            Link::Tabs { channel, .. } => channel.post(&text),
            Link::Worker(port) => port.post(&text),
            Link::Ports(ports) => ports.borrow().iter().for_each(|port| port.post(&text)),
        }
    }
}

/// Starts shared mode. In a `SharedWorker`, the store hosts for the tabs that attach (see `attach`). In a tab with
/// a `sharedWorkerUrl` and a browser that has `SharedWorker`, the tab attaches to the worker (sending it the options
/// to make its store from, if it is the first) and follows it. Otherwise leader-tab mode: joins the channel and asks
/// for the lock; `None` (after a warning) where the browser has no `BroadcastChannel` or no Web Locks: the store then
/// runs on its own.
pub(super) fn start(inner: &Rc<Inner>) -> Option<Rc<Shared>> {
    if in_shared_worker() {
        return Some(Shared::new(inner, Link::Ports(RefCell::default()), true));
    }
    let name = inner.options.shared_name();
    if let Some((url, worker_name)) = worker(&inner.options, &name) {
        let weak = Rc::downgrade(inner);
        let failed = weak.clone();
        let on_message = move |text: String| {
            if let Some(inner) = weak.upgrade() {
                on_message(&inner, &text);
            }
        };
        let on_error = move |why: String| {
            if let Some(inner) = failed.upgrade() {
                worker_failed(&inner, &why);
            }
        };
        let attached = attach_shared_worker(&url, &worker_name, on_message, on_error);
        match attached {
            Ok(port) => {
                let shared = Shared::new(inner, Link::Worker(port), false);
                let options = Box::new(inner.options.clone());
                shared.post(&Message { open: Some(options), ..Message::new("open") });
                hello(&shared, &inner.tab);
                let weak = Rc::downgrade(inner);
                let deadline = timer(WORKER_ANSWER_MS, move || {
                    if let Some(inner) = weak.upgrade() {
                        worker_failed(&inner, &format!("no answer within {} s", WORKER_ANSWER_MS / 1000));
                    }
                });
                *shared.answer_deadline.borrow_mut() = Some(deadline);
                return Some(shared);
            }
            Err(e) => warn(&format!("shared: no SharedWorker ({e}); the tabs elect one of them to host instead")),
        }
    }
    start_tabs(inner, &name)
}

/// The script and the name of the `SharedWorker` that hosts the shared store `name`, if one does: the script the
/// options name, else (unless they keep the host in a tab) this app's own where the browser has `SharedWorker`; `None`
/// after a warning where the app's cannot be found.
fn worker(options: &StoreOptions, name: &str) -> Option<(String, String)> {
    if let Some(url) = &options.shared_worker_url {
        return Some((url.clone(), name.to_owned()));
    }
    if options.shared_in_tab || !has_shared_worker() {
        return None;
    }
    app_worker(name)
        .map_err(|why| {
            warn(&format!("shared: no SharedWorker for this app ({why}); the tabs elect one of them to host"))
        })
        .ok()
}

/// Leader-tab mode: joins the channel `name` and asks for the lock of that name.
fn start_tabs(inner: &Rc<Inner>, name: &str) -> Option<Rc<Shared>> {
    let name = name.to_owned();
    let weak = Rc::downgrade(inner);
    let channel = Channel::open(&name, move |text| {
        if let Some(inner) = weak.upgrade() {
            on_message(&inner, &text);
        }
    });
    let weak = Rc::downgrade(inner);
    let lock = channel.as_ref().and_then(|_| {
        request_lock(&name, move || {
            if let Some(inner) = weak.upgrade() {
                promote(&inner);
            }
        })
    });
    let (Some(channel), Some(lock)) = (channel, lock) else {
        warn("shared: this browser has no BroadcastChannel or no Web Locks; the store runs on its own in this tab");
        return None;
    };
    let shared = Shared::new(inner, Link::Tabs { channel, _lock: lock }, false);
    hello(&shared, &inner.tab);
    Some(shared)
}

/// The store's `SharedWorker` failed (its script did not load, or threw): this tab goes over to leader-tab mode, with
/// what it watches, the mutations it sent and not seen settled, and its `connect()`, or runs on its own.
fn worker_failed(inner: &Rc<Inner>, why: &str) {
    let Some(old) = inner.shared.borrow().clone().filter(|s| matches!(s.link, Link::Worker(_))) else { return };
    web_sys_error(&format!("subsignal: shared: the SharedWorker failed ({why}); the tabs elect one of them to host"));
    let name = inner.options.shared_name();
    let Some(shared) = start_tabs(inner, &name) else {
        // On its own: as a store that is not shared.
        *inner.shared.borrow_mut() = None;
        Inner::load(inner);
        for mutation in old.sent.take() {
            Inner::feed(inner, Input::Mutate(mutation));
        }
        if old.connect_asked.get() {
            Inner::feed(inner, Input::Connect);
        }
        return;
    };
    *shared.watched.borrow_mut() = old.watched.take();
    *shared.sent.borrow_mut() = old.sent.take();
    *inner.shared.borrow_mut() = Some(shared.clone());
    // `start_tabs` said hello with the options' collections; again with every watched one, and what is unsettled.
    hello(&shared, &inner.tab);
    for mutation in shared.sent.borrow().iter() {
        shared.post(&Message { m: Some(mutation.clone()), ..Message::new("mutate") });
    }
    if old.connect_asked.get() {
        connect(inner);
    }
}

/// Logs an error on the console (natively: nothing).
fn web_sys_error(text: &str) {
    #[cfg(target_arch = "wasm32")]
    web_sys::console::error_1(&text.into());
    #[cfg(not(target_arch = "wasm32"))]
    let _ = text;
}

/// Whether this tab follows the store's `SharedWorker` (`false` in leader-tab mode, and in the worker).
pub(super) fn via_worker(inner: &Inner) -> bool {
    inner.shared.borrow().as_ref().is_some_and(|s| matches!(s.link, Link::Worker(_)))
}

#[cfg(target_arch = "wasm32")]
thread_local! {
    /// The store this `SharedWorker` hosts, once the first tab's options made it.
    static WORKER_STORE: RefCell<Option<super::BrowserStore>> = const { RefCell::new(None) };
}

/// In the store's `SharedWorker`: a tab's port (from the worker's `connect` event). The tab's first message, `open`,
/// carries its store options: the first one makes the worker's store (which hosts, see [`start`]); the port then
/// joins the store's ports, and the tab's messages go to the host as a follower tab's do over the channel.
#[cfg(target_arch = "wasm32")]
pub(crate) fn attach(port: web_sys::MessagePort) {
    // The port until its `open` moves it into the store's list (a port not yet opened keeps itself alive).
    let slot: Rc<RefCell<Option<Port>>> = Rc::default();
    let waiting = slot.clone();
    let opened = Port::open(port, move |text| worker_hears(&waiting, &text));
    *slot.borrow_mut() = Some(opened);
}

#[cfg(target_arch = "wasm32")]
fn worker_hears(waiting: &Rc<RefCell<Option<Port>>>, text: &str) {
    let store = WORKER_STORE.with(|s| s.borrow().clone());
    let message = match crate::platform::from_json::<Message>(text) {
        Ok(message) if message.t == "open" => message,
        _ => {
            match store {
                Some(store) => on_message(&store.inner, text),
                None => warn("shared worker: a tab's message before its `open`; ignored"),
            }
            return;
        }
    };
    let store = match (store, message.open) {
        (Some(store), _) => store,
        (None, Some(options)) => {
            let store = super::BrowserStore::new(*options);
            WORKER_STORE.with(|s| *s.borrow_mut() = Some(store.clone()));
            store
        }
        (None, None) => return warn("shared worker: an `open` without options; ignored"),
    };
    let shared = store.inner.shared.borrow().clone();
    match (shared, waiting.borrow_mut().take()) {
        (Some(shared), Some(port)) => match &shared.link {
            Link::Ports(ports) => ports.borrow_mut().push(port),
            _ => warn("shared worker: the store does not host here; the tab is not served"),
        },
        (None, _) => warn("shared worker: the options are not shared ones; the tab is not served"),
        (_, None) => {}
    }
}

/// The shared link when this tab follows another (not when it hosts, nor when the store is not shared).
pub(super) fn following(inner: &Inner) -> Option<Rc<Shared>> {
    inner.shared.borrow().clone().filter(|s| !s.hosting.get())
}

/// Whether this tab hosts (`None`: not shared).
pub(super) fn is_host(inner: &Inner) -> Option<bool> {
    inner.shared.borrow().as_ref().map(|s| s.hosting.get())
}

/// The unsettled mutations: a follower's are the host's queue, as its last status said.
pub(super) fn pending_mutations(inner: &Inner) -> Vec<PendingMutation> {
    match following(inner) {
        Some(shared) => shared.queue.borrow().clone(),
        None => inner.store.borrow().pending_mutations(),
    }
}

/// The shared link when this tab hosts.
fn hosting(inner: &Inner) -> Option<Rc<Shared>> {
    inner.shared.borrow().clone().filter(|s| s.hosting.get())
}

/// `connect()`: a follower asks the host (and remembers it, to connect if it takes over). True when the caller
/// must not connect its own core.
pub(super) fn connect(inner: &Inner) -> bool {
    let Some(shared) = inner.shared.borrow().clone() else { return false };
    shared.connect_asked.set(true);
    if shared.hosting.get() {
        return false;
    }
    shared.post(&Message::new("connect"));
    true
}

/// `watch(config)`: remembered for the next host, and asked of the current one when following.
pub(super) fn watch(inner: &Inner, config: &CollectionConfig) {
    let Some(shared) = inner.shared.borrow().clone() else { return };
    shared.watched.borrow_mut().push(config.clone());
    if !shared.hosting.get() {
        let collections = Some(vec![config.clone()]);
        shared.post(&Message { tab: Some(inner.tab.clone()), collections, ..Message::new("watch") });
    }
}

/// A follower's mutation: sent to the host (and kept until it settles, for the next host).
pub(super) fn mutate(shared: &Shared, mutation: Mutation) {
    shared.post(&Message { m: Some(mutation.clone()), ..Message::new("mutate") });
    shared.sent.borrow_mut().push(mutation);
}

/// A follower's discard: asked of the host, whose answer settles the mutation.
pub(super) fn discard(shared: &Shared, id: &str) {
    shared.post(&Message { id: Some(id.to_owned()), ..Message::new("discard") });
}

/// A follower's new credentials, for the host's connection.
pub(super) fn set_auth(inner: &Inner, auth: &Option<Value>) {
    if let Some(shared) = following(inner) {
        shared.post(&Message { a: auth.clone(), ..Message::new("auth") });
    }
}

fn hello(shared: &Shared, tab: &str) {
    let collections = Some(shared.watched.borrow().clone());
    shared.post(&Message { tab: Some(tab.to_owned()), collections, ..Message::new("hello") });
}

/// The host tells the followers what readers of its store see (called for each output before it is carried out).
pub(super) fn announce(inner: &Inner, output: &Output) {
    let Some(shared) = hosting(inner) else { return };
    let message = match output {
        Output::Row { collection, change, origin } => Message {
            r: inner.store.borrow().collection(collection).and_then(|c| c.row(change.key())),
            c: Some(collection.clone()),
            k: Some(change.key().to_owned()),
            o: Some(origin.into()),
            ..Message::new("rows")
        },
        Output::Collection { collection, state } => {
            Message { c: Some(collection.clone()), s: Some(*state), ..Message::new("state") }
        }
        Output::Status(status) => Message {
            status: Some(status.into()),
            q: Some(inner.store.borrow().pending_mutations()),
            ..Message::new("status")
        },
        Output::MutationSettled { id, result } => {
            let (ok, err) = match result {
                Ok(value) => (Some(value.clone()), None),
                Err(e) => (None, Some(e.into())),
            };
            Message { id: Some(id.clone()), ok, err, ..Message::new("settled") }
        }
        _ => return,
    };
    shared.post(&message);
}

/// The browser gave this tab the lock: it hosts from now on.
fn promote(inner: &Rc<Inner>) {
    let Some(shared) = inner.shared.borrow().clone() else { return };
    shared.hosting.set(true);
    if inner.options.persist_key.is_some() {
        // The mirror ends once the persisted image is back (see `restored`), so the image replaces mirrored rows.
        Inner::load(inner);
    } else {
        end_mirror(inner);
    }
    // This tab's mutations the old host had not settled: queued behind the restored ones (an id already queued is
    // skipped).
    for mutation in std::mem::take(&mut *shared.sent.borrow_mut()) {
        Inner::feed(inner, Input::Mutate(mutation));
    }
    if shared.connect_asked.get() {
        let offline = crate::platform::is_offline();
        Inner::feed(inner, Input::Connect);
        if offline {
            Inner::feed(inner, Input::Offline);
        }
    }
    shared.post(&Message::new("host"));
}

/// After a promoted host restored its persisted image: its own states and status count from now on.
pub(super) fn restored(inner: &Rc<Inner>) {
    if hosting(inner).is_some() {
        end_mirror(inner);
    }
}

fn end_mirror(inner: &Rc<Inner>) {
    let outputs = inner.store.borrow_mut().end_mirror();
    for output in outputs {
        Inner::carry_out(inner, output);
    }
}

/// Whether a mutation with this id is queued already (a resend to a new host).
pub(super) fn is_queued(inner: &Inner, input: &Input) -> bool {
    let Input::Mutate(Mutation { client_mutation_id: Some(id), .. }) = input else { return false };
    inner.shared.borrow().is_some() && inner.store.borrow().pending_mutations().iter().any(|m| m.id == *id)
}

fn on_message(inner: &Rc<Inner>, text: &str) {
    let Some(shared) = inner.shared.borrow().clone() else { return };
    // The worker answered: it is there.
    shared.answer_deadline.take();
    let message = match crate::platform::from_json::<Message>(text) {
        Ok(message) => message,
        Err(e) => return warn(&format!("shared: ignoring a message from another tab that does not parse ({e})")),
    };
    if shared.hosting.get() {
        host_hears(inner, &shared, message);
    } else {
        follower_hears(inner, &shared, message);
    }
}

fn host_hears(inner: &Rc<Inner>, shared: &Shared, message: Message) {
    match message.t.as_str() {
        "hello" | "watch" => {
            let mut names = Vec::new();
            for config in message.collections.unwrap_or_default() {
                names.push(config.name.clone());
                if inner.store.borrow().collection(&config.name).is_none() {
                    shared.watched.borrow_mut().push(config.clone());
                    Inner::feed(inner, Input::Watch(config));
                }
            }
            sync(inner, shared, message.tab, &names);
        }
        "mutate" => {
            if let Some(mutation) = message.m {
                Inner::feed(inner, Input::Mutate(mutation));
            }
        }
        "discard" => {
            if let Some(id) = message.id {
                // Refused when already sent: the server's answer settles it then.
                let outputs = inner.store.borrow_mut().discard(&id).unwrap_or_default();
                for output in outputs {
                    Inner::carry_out(inner, output);
                }
            }
        }
        "connect" => {
            shared.connect_asked.set(true);
            Inner::feed(inner, Input::Connect);
        }
        "auth" => Inner::feed(inner, Input::SetAuth(message.a)),
        // A follower's own kinds (another tab hosted a moment ago): nothing to do.
        _ => {}
    }
}

/// Tells the tab `to` what the host shows: the status, and the state and rows of the collections named.
fn sync(inner: &Inner, shared: &Shared, to: Option<String>, names: &[String]) {
    let store = inner.store.borrow();
    let synced = names
        .iter()
        .filter_map(|name| {
            let c = store.collection(name)?;
            let rows = c.keys().into_iter().filter_map(|k| c.row(&k).map(|row| (k, row))).collect();
            Some(Synced { name: name.clone(), state: c.state(), rows })
        })
        .collect();
    let message = Message {
        to,
        status: Some((&store.status()).into()),
        q: Some(store.pending_mutations()),
        sync: Some(synced),
        ..Message::new("sync")
    };
    drop(store);
    shared.post(&message);
}

/// The host's status and the queue it counts (`status`, `sync`): the queue first, so that the status's listeners
/// read the queue it counts.
fn follow_status(
    store: &mut Store,
    shared: &Shared,
    status: WireStatus,
    queue: Option<Vec<PendingMutation>>,
) -> Vec<Output> {
    *shared.queue.borrow_mut() = queue.unwrap_or_default();
    store.mirror_status(status.into())
}

fn follower_hears(inner: &Rc<Inner>, shared: &Shared, message: Message) {
    let outputs = match message.t.as_str() {
        "host" => {
            // A new host: attach to it, and send it what the old one did not settle.
            hello(shared, &inner.tab);
            for mutation in shared.sent.borrow().iter() {
                shared.post(&Message { m: Some(mutation.clone()), ..Message::new("mutate") });
            }
            return;
        }
        "sync" if message.to.as_deref() == Some(inner.tab.as_str()) => {
            // A host serves this tab: the socket the page may have opened early is not needed.
            crate::platform::close_preconnected();
            let mut outputs = Vec::new();
            let mut store = inner.store.borrow_mut();
            for synced in message.sync.unwrap_or_default() {
                // Rows shown here that the host no longer has are gone.
                let mut changes: Vec<(String, Option<Value>)> = store
                    .collection(&synced.name)
                    .map(|view| view.keys())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|k| !synced.rows.iter().any(|(key, _)| key == k))
                    .map(|k| (k, None))
                    .collect();
                changes.extend(synced.rows.into_iter().map(|(k, row)| (k, Some(row))));
                outputs.extend(store.mirror_rows(&synced.name, changes, RowOrigin::Fetch));
                outputs.extend(store.mirror_state(&synced.name, synced.state));
            }
            if let Some(status) = message.status {
                outputs.extend(follow_status(&mut store, shared, status, message.q));
            }
            outputs
        }
        "rows" => {
            let (Some(collection), Some(key)) = (message.c, message.k) else { return };
            let origin = message.o.map_or(RowOrigin::Fetch, RowOrigin::from);
            inner.store.borrow_mut().mirror_rows(&collection, vec![(key, message.r)], origin)
        }
        "state" => {
            let (Some(collection), Some(state)) = (message.c, message.s) else { return };
            inner.store.borrow_mut().mirror_state(&collection, state)
        }
        "status" => {
            let Some(status) = message.status else { return };
            follow_status(&mut inner.store.borrow_mut(), shared, status, message.q)
        }
        "settled" => {
            let Some(id) = message.id else { return };
            let result = match message.err {
                Some(e) => Err(e.into()),
                None => Ok(message.ok.unwrap_or(Value::Null)),
            };
            shared.sent.borrow_mut().retain(|m| m.client_mutation_id.as_deref() != Some(id.as_str()));
            // Only this tab's callers wait for it; a follower keeps no queue to write.
            let waiters = inner.waiters.borrow_mut().remove(&id).unwrap_or_default();
            for tx in waiters {
                tx.send(result.clone());
            }
            return;
        }
        // The worker cannot host (`shared_worker.js`: the app's code did not load).
        "failed" if matches!(shared.link, Link::Worker(_)) => {
            let why = message.err.map_or_else(String::new, |e| e.message);
            return worker_failed(inner, &why);
        }
        _ => return,
    };
    for output in outputs {
        Inner::carry_out(inner, output);
    }
}
