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
//! Messages are JSON text, `{"t": kind, …}`:
//! - follower → host: `hello {tab, collections}`, `watch {tab, config}`, `mutate {m}`, `discard {id}`, `connect`,
//!   `auth {a}`;
//! - host → followers: `host`, `sync {to, status, collections: [{name, state, rows: [[key, row]…]}]}`,
//!   `rows {c, k, r, o}` (`r` null when the row went away), `state {c, s}`, `status {s}`, `settled {id, r}`.

use super::{Inner, Rc};
use crate::platform::{request_lock, warn, Channel, Lock};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use subsignal_store::{CollectionConfig, CollectionState, Input, Mutation, MutationError, Output, RowOrigin, Status};

/// A shared store's link to the other tabs.
pub(super) struct Shared {
    channel: Channel,
    _lock: Lock,
    /// This tab holds the lock: it hosts.
    hosting: Cell<bool>,
    /// `connect()` was called here: a tab that takes over connects.
    connect_asked: Cell<bool>,
    /// The collections this tab watches, named to a host when attaching.
    watched: RefCell<Vec<CollectionConfig>>,
    /// Mutations this tab sent to a host, not settled yet: sent again to the next host.
    sent: RefCell<Vec<Mutation>>,
}

/// Starts shared mode: joins the channel and asks for the lock. `None` (after a warning) where the browser has no
/// `BroadcastChannel` or no Web Locks: the store then runs on its own.
pub(super) fn start(inner: &Rc<Inner>) -> Option<Rc<Shared>> {
    let name = inner.options.shared_name();
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
    let shared = Rc::new(Shared {
        channel,
        _lock: lock,
        hosting: Cell::new(false),
        connect_asked: Cell::new(false),
        watched: RefCell::new(inner.options.collections.clone()),
        sent: RefCell::new(Vec::new()),
    });
    hello(&shared, &inner.tab);
    Some(shared)
}

impl Shared {
    fn post(&self, message: &Value) {
        self.channel.post(&message.to_string());
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
    shared.post(&json!({"t": "connect"}));
    true
}

/// `watch(config)`: remembered for the next host, and asked of the current one when following.
pub(super) fn watch(inner: &Inner, config: &CollectionConfig) {
    let Some(shared) = inner.shared.borrow().clone() else { return };
    shared.watched.borrow_mut().push(config.clone());
    if !shared.hosting.get() {
        shared.post(&json!({"t": "watch", "tab": inner.tab, "config": config}));
    }
}

/// A follower's mutation: sent to the host (and kept until it settles, for the next host).
pub(super) fn mutate(shared: &Shared, mutation: Mutation) {
    shared.post(&json!({"t": "mutate", "m": mutation}));
    shared.sent.borrow_mut().push(mutation);
}

/// A follower's discard: asked of the host, whose answer settles the mutation.
pub(super) fn discard(shared: &Shared, id: &str) {
    shared.post(&json!({"t": "discard", "id": id}));
}

/// A follower's new credentials, for the host's connection.
pub(super) fn set_auth(inner: &Inner, auth: &Option<Value>) {
    if let Some(shared) = following(inner) {
        shared.post(&json!({"t": "auth", "a": auth}));
    }
}

fn hello(shared: &Shared, tab: &str) {
    shared.post(&json!({"t": "hello", "tab": tab, "collections": *shared.watched.borrow()}));
}

/// The host tells the followers what readers of its store see (called for each output before it is carried out).
pub(super) fn announce(inner: &Inner, output: &Output) {
    let Some(shared) = hosting(inner) else { return };
    let message = match output {
        Output::Row { collection, change, origin } => {
            let row = inner.store.borrow().collection(collection).and_then(|c| c.row(change.key()));
            json!({"t": "rows", "c": collection, "k": change.key(), "r": row, "o": origin})
        }
        Output::Collection { collection, state } => json!({"t": "state", "c": collection, "s": state}),
        Output::Status(status) => json!({"t": "status", "s": status}),
        Output::MutationSettled { id, result } => json!({"t": "settled", "id": id, "r": result}),
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
    shared.post(&json!({"t": "host"}));
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
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return warn(&format!("shared: ignoring a message that is not JSON: {text:.80}"));
    };
    let kind = message["t"].as_str().unwrap_or_default().to_owned();
    if shared.hosting.get() {
        host_hears(inner, &shared, &kind, message);
    } else {
        follower_hears(inner, &shared, &kind, message);
    }
}

fn host_hears(inner: &Rc<Inner>, shared: &Shared, kind: &str, mut message: Value) {
    match kind {
        "hello" | "watch" => {
            let configs: Vec<Value> = match kind {
                "hello" => serde_json::from_value(message["collections"].take()).unwrap_or_default(),
                _ => vec![message["config"].take()],
            };
            let mut names = Vec::new();
            for config in configs {
                match serde_json::from_value::<CollectionConfig>(config) {
                    Ok(config) => {
                        names.push(config.name.clone());
                        if inner.store.borrow().collection(&config.name).is_none() {
                            shared.watched.borrow_mut().push(config.clone());
                            Inner::feed(inner, Input::Watch(config));
                        }
                    }
                    Err(e) => warn(&format!("shared: a tab asked to watch a collection that does not parse: {e}")),
                }
            }
            sync(inner, shared, &message["tab"], &names);
        }
        "mutate" => match serde_json::from_value::<Mutation>(message["m"].take()) {
            Ok(mutation) => Inner::feed(inner, Input::Mutate(mutation)),
            Err(e) => warn(&format!("shared: a tab sent a mutation that does not parse: {e}")),
        },
        "discard" => {
            if let Some(id) = message["id"].as_str() {
                // Refused when already sent: the server's answer settles it then.
                let outputs = inner.store.borrow_mut().discard(id).unwrap_or_default();
                for output in outputs {
                    Inner::carry_out(inner, output);
                }
            }
        }
        "connect" => {
            shared.connect_asked.set(true);
            Inner::feed(inner, Input::Connect);
        }
        "auth" => Inner::feed(inner, Input::SetAuth(serde_json::from_value(message["a"].take()).unwrap_or(None))),
        // A follower's own kinds (another tab hosted a moment ago): nothing to do.
        _ => {}
    }
}

/// Tells the tab `to` what the host shows: the status, and the state and rows of the collections named.
fn sync(inner: &Inner, shared: &Shared, to: &Value, names: &[String]) {
    let store = inner.store.borrow();
    let collections: Vec<Value> = names
        .iter()
        .filter_map(|name| {
            let c = store.collection(name)?;
            let rows: Vec<Value> = c.keys().into_iter().filter_map(|k| Some(json!([k, c.row_ref(&k)?]))).collect();
            Some(json!({"name": name, "state": c.state(), "rows": rows}))
        })
        .collect();
    let message = json!({"t": "sync", "to": to, "status": store.status(), "collections": collections});
    drop(store);
    shared.post(&message);
}

fn follower_hears(inner: &Rc<Inner>, shared: &Shared, kind: &str, mut message: Value) {
    let outputs = match kind {
        "host" => {
            // A new host: attach to it, and send it what the old one did not settle.
            hello(shared, &inner.tab);
            for mutation in shared.sent.borrow().iter() {
                shared.post(&json!({"t": "mutate", "m": mutation}));
            }
            return;
        }
        "sync" if message["to"].as_str() == Some(&inner.tab) => {
            let mut outputs = Vec::new();
            if let Ok(collections) = serde_json::from_value::<Vec<Value>>(message["collections"].take()) {
                for mut c in collections {
                    let Some(name) = c["name"].as_str().map(str::to_owned) else { continue };
                    let rows: Vec<(String, Value)> = serde_json::from_value(c["rows"].take()).unwrap_or_default();
                    let mut store = inner.store.borrow_mut();
                    // Rows shown here that the host no longer has are gone.
                    let mut changes: Vec<(String, Option<Value>)> = store
                        .collection(&name)
                        .map(|view| view.keys())
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|k| !rows.iter().any(|(key, _)| key == k))
                        .map(|k| (k, None))
                        .collect();
                    changes.extend(rows.into_iter().map(|(k, row)| (k, Some(row))));
                    outputs.extend(store.mirror_rows(&name, changes, RowOrigin::Fetch));
                    if let Ok(state) = serde_json::from_value::<CollectionState>(c["state"].take()) {
                        outputs.extend(store.mirror_state(&name, state));
                    }
                }
            }
            if let Ok(status) = serde_json::from_value::<Status>(message["status"].take()) {
                outputs.extend(inner.store.borrow_mut().mirror_status(status));
            }
            outputs
        }
        "rows" => {
            let (Some(collection), Some(key)) =
                (message["c"].as_str().map(str::to_owned), message["k"].as_str().map(str::to_owned))
            else {
                return;
            };
            let origin = serde_json::from_value(message["o"].take()).unwrap_or(RowOrigin::Fetch);
            let row = Some(message["r"].take()).filter(|r| !r.is_null());
            inner.store.borrow_mut().mirror_rows(&collection, vec![(key, row)], origin)
        }
        "state" => {
            let Some(collection) = message["c"].as_str().map(str::to_owned) else { return };
            let Ok(state) = serde_json::from_value::<CollectionState>(message["s"].take()) else { return };
            inner.store.borrow_mut().mirror_state(&collection, state)
        }
        "status" => {
            let Ok(status) = serde_json::from_value::<Status>(message["s"].take()) else { return };
            inner.store.borrow_mut().mirror_status(status)
        }
        "settled" => {
            let Some(id) = message["id"].as_str().map(str::to_owned) else { return };
            let result: Result<Value, MutationError> =
                serde_json::from_value(message["r"].take()).unwrap_or_else(|e| {
                    Err(MutationError::Other { code: None, message: format!("the host's answer does not parse: {e}") })
                });
            shared.sent.borrow_mut().retain(|m| m.client_mutation_id.as_deref() != Some(id.as_str()));
            // Only this tab's callers wait for it; a follower keeps no queue to write.
            let waiters = inner.waiters.borrow_mut().remove(&id).unwrap_or_default();
            for tx in waiters {
                tx.send(result.clone());
            }
            return;
        }
        _ => return,
    };
    for output in outputs {
        Inner::carry_out(inner, output);
    }
}
