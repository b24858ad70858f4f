//! The Leptos front door of subsignal: live collections whose rows are their own signals, signals for the connection
//! status and the number of pending mutations, a mutate action, and time travel over a collection's history
//! ([`use_time_travel`]).
//!
//! It knows no JavaScript of its own: all browser IO is [`subsignal_browser::BrowserStore`]'s. An event that touches
//! one row sets that row's signal only, so only the views reading that row re-render; the key list signal changes
//! only when a row is inserted or removed.
//!
//! ```text
//! use leptos::prelude::*;
//! use serde::Deserialize;
//! use subsignal_leptos::{use_live_collection, use_status, BrowserStore, CollectionConfig};
//!
//! #[derive(Clone, PartialEq, Deserialize)]
//! struct Order { id: String, status: String }
//!
//! #[component]
//! fn Orders(store: BrowserStore, config: CollectionConfig) -> impl IntoView {
//!     let orders = use_live_collection::<Order>(&store, config);
//!     let status = use_status(&store);
//!     view! {
//!         <p>{move || format!("{:?}, {} pending", status.connection.get(), status.pending.get())}</p>
//!         <ul>
//!             <For each=move || orders.keys().get() key=|k| k.clone() let(key)>
//!                 {orders.row(&key).map(|row| view! { <li>{move || row.get().status}</li> })}
//!             </For>
//!         </ul>
//!     }
//! }
//! ```
//!
//! It builds for every target. Outside the browser (a Leptos app rendered on a server) the store is inert: nothing
//! connects, collections stay empty and not loaded, so a page renders its loading state and the browser takes over.
#![deny(missing_docs)]

use std::collections::HashMap;

use leptos::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::Value;
use subsignal_browser::ViewOp;
pub use subsignal_browser::{
    BrowserStore, ChangeAt, Choice, CollectionConfig, CollectionState, CompareOp, Conflict, ConnectionStatus,
    Direction, EntityAction, FieldChange, FieldDiff, Filter, Guarantee, HistoryAt, HistoryConfig, HistoryError,
    HistoryOp, HistoryRange, Mutation, MutationError, Optimistic, OrderBy, ResolveError, RowChange, RowOrigin, Source,
    Status, StoreOptions, ViewError, ViewSpec, ViewState,
};

/// One live collection: a signal of its keys, and one signal per row.
///
/// `Copy`, so it moves into view closures freely; it lives as long as the reactive owner it was created under.
pub struct LiveCollection<T: Send + Sync + 'static> {
    keys: RwSignal<Vec<String>>,
    rows: StoredValue<HashMap<String, ArcRwSignal<T>>>,
    state: RwSignal<CollectionState>,
}

impl<T: Send + Sync + 'static> Clone for LiveCollection<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for LiveCollection<T> {}

impl<T: Send + Sync + 'static> std::fmt::Debug for LiveCollection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCollection").field("keys", &self.keys).finish_non_exhaustive()
    }
}

impl<T: Clone + Send + Sync + 'static> LiveCollection<T> {
    /// The visible keys in order; changes only when a row is inserted or removed.
    pub fn keys(&self) -> Signal<Vec<String>> {
        self.keys.into()
    }

    /// The signal of one row (`None` if there is no such row, or it did not deserialize as `T`). The signal changes
    /// only when this row does.
    pub fn row(&self, key: &str) -> Option<Signal<T>> {
        self.rows.with_value(|rows| rows.get(key).map(|s| s.read_only().into()))
    }

    /// Whether the first snapshot, list or result has arrived: for `<Show>` (a "loading" fallback) and `<Suspense>`
    /// (through a resource that waits on it). An empty collection is loaded too.
    pub fn loaded(&self) -> Signal<bool> {
        let state = self.state;
        Memo::new(move |_| state.with(|s| s.loaded)).into()
    }

    /// Loaded, stale (disconnected or fetching again), `lastSeq` as of the last state change, pending updates.
    pub fn state(&self) -> Signal<CollectionState> {
        self.state.into()
    }

    /// The current value of one row, without tracking.
    pub fn get_untracked(&self, key: &str) -> Option<T> {
        self.rows.with_value(|rows| rows.get(key).map(|s| s.get_untracked()))
    }

    /// The number of visible rows (tracks the key list).
    pub fn len(&self) -> usize {
        self.keys.with(Vec::len)
    }

    /// Whether there are no visible rows (tracks the key list).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn decode<T: DeserializeOwned>(collection: &str, key: &str, value: &Value) -> Option<T> {
    match T::deserialize(value) {
        Ok(row) => Some(row),
        Err(e) => {
            leptos::logging::warn!("subsignal: row {key} of {collection} does not fit the view's type: {e}");
            None
        }
    }
}

/// Keeps `config` live in `store` (watching it unless it already is) and returns its per-row signals.
///
/// Must be called under a reactive owner (in a component); the row listener is removed when the owner is cleaned
/// up. The collection itself stays watched, so other views of it keep working.
pub fn use_live_collection<T>(store: &BrowserStore, config: CollectionConfig) -> LiveCollection<T>
where
    T: DeserializeOwned + Clone + PartialEq + Send + Sync + 'static,
{
    let name = config.name.clone();
    let descending = config.descending;
    if store.with_collection(&name, |c| c.is_none()) {
        store.watch(config);
    }
    let mut rows = HashMap::new();
    let keys = store.with_collection(&name, |view| {
        let Some(view) = view else { return Vec::new() };
        let keys = view.keys();
        for key in &keys {
            if let Some(row) = view.row_ref(key).and_then(|v| decode::<T>(&name, key, &v)) {
                rows.insert(key.clone(), ArcRwSignal::new(row));
            }
        }
        keys
    });
    let state = store.with_collection(&name, |c| c.map(|c| c.state()));
    let live = LiveCollection {
        keys: RwSignal::new(keys),
        rows: StoredValue::new(rows),
        state: RwSignal::new(state.unwrap_or(CollectionState::NOT_LOADED)),
    };
    let watched = name.clone();
    let state_guard = store.on_collection_state(move |collection, state| {
        if collection == watched {
            live.state.try_set(*state);
        }
    });
    StoredValue::new_local(state_guard);
    // Where a key sits in the collection's order (key order, or reversed).
    let position = move |keys: &[String], key: &str| {
        keys.binary_search_by(|k| if descending { key.cmp(k) } else { k.as_str().cmp(key) })
    };
    let reader = store.clone();
    let guard = store.on_row(move |collection, change, _| {
        if collection != name {
            return;
        }
        let key = change.key();
        let value = match change {
            RowChange::Removed { .. } => None,
            _ => reader.with_collection(&name, |c| c?.row_ref(key).and_then(|v| decode::<T>(&name, key, &v))),
        };
        // Take the row's signal out first: no lock on the map is held while a signal is set.
        let Some(existing) = live.rows.try_with_value(|rows| rows.get(key).cloned()) else {
            // The owner is gone.
            return;
        };
        match (value, existing) {
            (Some(row), Some(signal)) => {
                if signal.with_untracked(|old| *old != row) {
                    signal.set(row);
                }
            }
            (Some(row), None) => live.rows.update_value(|rows| {
                rows.insert(key.to_owned(), ArcRwSignal::new(row));
            }),
            (None, Some(_)) => live.rows.update_value(|rows| {
                rows.remove(key);
            }),
            (None, None) => {}
        }
        // Only insertions and removals touch the key list, each at its place (a binary search and a move, no copy
        // of the list); an update costs the same whatever the list's size.
        match change {
            RowChange::Inserted { .. } => live.keys.maybe_update(|keys| match position(keys, key) {
                Err(at) => {
                    keys.insert(at, key.to_owned());
                    true
                }
                Ok(_) => false,
            }),
            RowChange::Removed { .. } => live.keys.maybe_update(|keys| match position(keys, key) {
                Ok(at) => {
                    keys.remove(at);
                    true
                }
                Err(_) => false,
            }),
            RowChange::Updated { .. } => {}
        }
    });
    // Dropped, and so unregistered, when the owner is cleaned up.
    StoredValue::new_local(guard);
    live
}

/// A live view ([`use_view`]): the keys it shows and a signal per row shown, like a [`LiveCollection`], plus its
/// state, and hold/release.
pub struct LiveView<T: Send + Sync + 'static> {
    rows: LiveCollection<T>,
    state: RwSignal<ViewState>,
    store: StoredValue<BrowserStore, LocalStorage>,
    id: u64,
}

impl<T: Send + Sync + 'static> Clone for LiveView<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for LiveView<T> {}

impl<T: Send + Sync + 'static> std::fmt::Debug for LiveView<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveView").field("id", &self.id).finish_non_exhaustive()
    }
}

impl<T: Clone + Send + Sync + 'static> LiveView<T> {
    /// The keys shown, in the view's order; changes only when the window does.
    pub fn keys(&self) -> Signal<Vec<String>> {
        self.rows.keys()
    }

    /// The signal of one row shown (`None` outside the window); it changes only when this row does.
    pub fn row(&self, key: &str) -> Option<Signal<T>> {
        self.rows.row(key)
    }

    /// Loaded, stale, rows shown, rows matching, held, pending updates.
    pub fn state(&self) -> Signal<ViewState> {
        self.state.into()
    }

    /// Whether the collection's first snapshot, list or result has arrived.
    pub fn loaded(&self) -> Signal<bool> {
        let state = self.state;
        Memo::new(move |_| state.with(|s| s.loaded)).into()
    }

    /// Keeps what the view shows while the user reads or edits; events keep applying underneath.
    pub fn hold(&self) {
        let id = self.id;
        self.store.with_value(|store| store.hold_view(id)).ok();
        self.state.update(|s| s.held = true);
    }

    /// Shows the net change since [`LiveView::hold`] at once.
    pub fn release(&self) {
        let id = self.id;
        self.store.with_value(|store| store.release_view(id)).ok();
        self.state.update(|s| {
            s.held = false;
            s.has_pending_updates = false;
        });
    }
}

/// Closes its view when the owner that opened it is cleaned up.
struct ViewCloser {
    store: BrowserStore,
    id: u64,
}

impl Drop for ViewCloser {
    fn drop(&mut self) {
        self.store.close_view(self.id);
    }
}

/// A live view over the watched collection `collection`: the rows matching `spec.filter`, sorted by
/// `spec.order_by`, from `spec.offset`, at most `spec.limit`, kept up to date per row change (O(log n) in the
/// collection's size). Each row shown is its own signal; the key list changes only when the window does.
///
/// Must be called under a reactive owner; the view closes when the owner is cleaned up. Fails if the collection is
/// not watched (watch it first, e.g. with [`use_live_collection`]) or the spec has `limit: 0`.
pub fn use_view<T>(store: &BrowserStore, collection: &str, spec: ViewSpec) -> Result<LiveView<T>, ViewError>
where
    T: DeserializeOwned + Clone + PartialEq + Send + Sync + 'static,
{
    let id = store.open_view(collection, spec)?;
    let name = collection.to_owned();
    let decode_row = {
        let reader = store.clone();
        move |key: &str| reader.with_view(id, |v| v?.row(key).and_then(|row| decode::<T>(&name, key, &row)))
    };
    let (keys, state) = store.with_view(id, |v| v.map(|v| (v.keys(), v.state())).unwrap_or_default());
    let rows = keys.iter().filter_map(|k| Some((k.clone(), ArcRwSignal::new(decode_row(k)?)))).collect();
    let collection_state = store.with_collection(collection, |c| c.map(|c| c.state()));
    let rows = LiveCollection {
        keys: RwSignal::new(keys),
        rows: StoredValue::new(rows),
        state: RwSignal::new(collection_state.unwrap_or(CollectionState::NOT_LOADED)),
    };
    let state = RwSignal::new(state);
    let guard = store.on_view(move |view, ops, new_state| {
        if view != id {
            return;
        }
        let Some(mut keys) = rows.keys.try_get_untracked() else { return };
        let mut changed = Vec::new();
        let mut moved = false;
        for op in ops {
            match op {
                ViewOp::Remove { index } => {
                    keys.remove(*index);
                    moved = true;
                }
                ViewOp::Insert { index, key } => {
                    keys.insert(*index, key.clone());
                    changed.push(key.clone());
                    moved = true;
                }
                ViewOp::Update { key, .. } => changed.push(key.clone()),
            }
        }
        let shown: std::collections::HashSet<&String> = keys.iter().collect();
        rows.rows.update_value(|signals| signals.retain(|k, _| shown.contains(k)));
        for key in changed.iter().filter(|k| shown.contains(k)) {
            let Some(row) = decode_row(key) else { continue };
            match rows.rows.with_value(|signals| signals.get(key).cloned()) {
                Some(signal) if signal.with_untracked(|old| *old != row) => signal.set(row),
                Some(_) => {}
                None => rows.rows.update_value(|signals| {
                    signals.insert(key.clone(), ArcRwSignal::new(row));
                }),
            }
        }
        if moved {
            rows.keys.set(keys);
        }
        state.set(*new_state);
    });
    StoredValue::new_local(guard);
    let watched = collection.to_owned();
    let state_guard = store.on_collection_state(move |c, collection_state| {
        if c == watched {
            state.try_update(|s| {
                s.loaded = collection_state.loaded;
                s.stale = collection_state.stale;
                s.last_seq = collection_state.last_seq;
                s.lag_ms = collection_state.lag_ms;
            });
        }
    });
    StoredValue::new_local(state_guard);
    StoredValue::new_local(ViewCloser { store: store.clone(), id });
    Ok(LiveView { rows, state, store: StoredValue::new_local(store.clone()), id })
}

/// Time travel over a collection's history ([`use_time_travel`]): the range of seqs it holds as a signal, and its
/// rows at any of them. `Copy`.
#[derive(Debug, Clone, Copy)]
pub struct TimeTravel {
    range: RwSignal<Option<HistoryRange>>,
    store: StoredValue<BrowserStore, LocalStorage>,
    name: StoredValue<String>,
}

/// One row as it was at a seq, deserialized, with the event that last changed it.
#[derive(Debug, Clone, PartialEq)]
pub struct PastRow<T> {
    /// The row's key.
    pub key: String,
    /// The row (confirmed, without optimistic effects).
    pub row: T,
    /// The seq of the event that last changed it (or the seq its snapshot is exact at).
    pub seq: i64,
    /// What that event did, or [`HistoryOp::Snapshot`].
    pub op: HistoryOp,
}

/// A collection's rows just after a seq, deserialized ([`TimeTravel::at_as`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PastRows<T> {
    /// The seq asked for.
    pub seq: i64,
    /// The rows that deserialized as `T`, in the collection's order.
    pub rows: Vec<PastRow<T>>,
    /// The rows the event at `seq` changed (removals included).
    pub changes: Vec<ChangeAt>,
}

impl TimeTravel {
    /// The seqs held (`None` while none is, e.g. before the snapshot has caught up); follows the collection's row
    /// changes and state.
    pub fn range(&self) -> Signal<Option<HistoryRange>> {
        self.range.into()
    }

    /// The collection's confirmed rows just after `seq`, read from its history without touching the live rows.
    pub fn at(&self, seq: i64) -> Result<HistoryAt, HistoryError> {
        let name = self.name.get_value();
        self.store.with_value(|store| store.at(&name, seq))
    }

    /// [`TimeTravel::at`] with each row deserialized as `T` (a row that does not fit is left out, with a warning).
    pub fn at_as<T: DeserializeOwned>(&self, seq: i64) -> Result<PastRows<T>, HistoryError> {
        let at = self.at(seq)?;
        let name = self.name.get_value();
        let rows = at
            .rows
            .into_iter()
            .filter_map(|r| {
                let row = decode::<T>(&name, &r.key, &r.row)?;
                Some(PastRow { key: r.key, row, seq: r.seq, op: r.op })
            })
            .collect();
        Ok(PastRows { seq: at.seq, rows, changes: at.changes })
    }
}

/// Time travel over the watched collection `collection`, which keeps a history ([`CollectionConfig::history`]):
/// its range as a signal and its rows at any seq held. Must be called under a reactive owner (its listeners end with
/// it).
pub fn use_time_travel(store: &BrowserStore, collection: &str) -> TimeTravel {
    let range = RwSignal::new(store.history(collection).ok());
    let travel = TimeTravel {
        range,
        store: StoredValue::new_local(store.clone()),
        name: StoredValue::new(collection.to_owned()),
    };
    let refresh = {
        let (store, name) = (store.clone(), collection.to_owned());
        move |changed: &str| {
            if changed == name {
                let now = store.history(&name).ok();
                if range.try_with_untracked(|r| *r != now) == Some(true) {
                    range.try_set(now);
                }
            }
        }
    };
    let on_state = refresh.clone();
    StoredValue::new_local(store.on_row(move |collection, _, _| refresh(collection)));
    StoredValue::new_local(store.on_collection_state(move |collection, _| on_state(collection)));
    travel
}

/// The store in context, for [`use_store`]: `Copy` and `Send`, the store itself stays on the thread that made it.
#[derive(Debug, Clone, Copy)]
struct StoreContext(StoredValue<BrowserStore, LocalStorage>);

/// Makes `store` the one [`use_store`] gives to this component's descendants.
pub fn provide_store(store: BrowserStore) {
    provide_context(StoreContext(StoredValue::new_local(store)));
}

/// The store an ancestor gave with [`provide_store`]. Panics, naming the fix, when none did.
pub fn use_store() -> BrowserStore {
    use_context::<StoreContext>()
        .expect("use_store: no store in context; call provide_store(store) in an ancestor component")
        .0
        .get_value()
}

/// Signals of the store's status.
#[derive(Debug, Clone, Copy)]
pub struct StatusSignals {
    /// The connection's state.
    pub connection: Memo<ConnectionStatus>,
    /// Mutations not yet settled (queued or in flight).
    pub pending: Memo<usize>,
    /// The whole status.
    pub status: Signal<Status>,
}

/// The store's status as signals; `connection` and `pending` change only when their part does.
pub fn use_status(store: &BrowserStore) -> StatusSignals {
    let status = RwSignal::new(store.status());
    let guard = store.on_status(move |s| {
        status.try_set(s.clone());
    });
    StoredValue::new_local(guard);
    StatusSignals {
        connection: Memo::new(move |_| status.with(|s| s.connection.clone())),
        pending: Memo::new(move |_| status.with(|s| s.pending_mutations)),
        status: status.into(),
    }
}

/// Mutations for a component ([`use_mutation`]): each call queues one (its optimistic effect shows at once) and is
/// answered on its own — calls may overlap, as in optimistic mode, and none loses its result — while `pending` and
/// `value` (the last result) are signals for the view. `Copy`, so it moves into handlers freely.
///
/// A stale `expectedVersion` answers [`MutationError::Conflict`]: resolve it by dispatching
/// [`Conflict::keep_mine`]'s or [`Conflict::merge`]'s resend through the same `Mutator`, or by doing nothing
/// ([`Conflict::take_theirs`]: the row already shows the server's version).
pub struct Mutator<R: Send + Sync + 'static> {
    store: StoredValue<BrowserStore, LocalStorage>,
    /// Calls not yet answered.
    in_flight: RwSignal<usize>,
    value: RwSignal<Option<Result<R, MutationError>>>,
}

impl<R: Send + Sync + 'static> Clone for Mutator<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R: Send + Sync + 'static> Copy for Mutator<R> {}

impl<R: Send + Sync + 'static> std::fmt::Debug for Mutator<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mutator").field("in_flight", &self.in_flight).finish_non_exhaustive()
    }
}

impl<R: DeserializeOwned + Clone + Send + Sync + 'static> Mutator<R> {
    /// Queues `mutation` and resolves with this call's own answer: the entity the server wrote (as `R`), or a typed
    /// [`MutationError`]. It is queued whether or not the future is awaited.
    pub fn mutate(&self, mutation: Mutation) -> impl std::future::Future<Output = Result<R, MutationError>> {
        let (in_flight, value) = (self.in_flight, self.value);
        in_flight.update(|n| *n += 1);
        let store = self.store.get_value();
        let answer = store.mutate(mutation).typed::<R>();
        async move {
            let result = answer.await;
            in_flight.try_update(|n| *n -= 1);
            value.try_set(Some(result.clone()));
            result
        }
    }

    /// Queues `mutation` without waiting: its answer shows in [`Mutator::value`].
    pub fn dispatch(&self, mutation: Mutation) {
        leptos::task::spawn_local({
            let answer = self.mutate(mutation);
            async move {
                let _ = answer.await;
            }
        });
    }

    /// Whether a call is waiting for its answer.
    pub fn pending(&self) -> Signal<bool> {
        let in_flight = self.in_flight;
        Memo::new(move |_| in_flight.get() > 0).into()
    }

    /// The last answer to arrive, of any call.
    pub fn value(&self) -> Signal<Option<Result<R, MutationError>>> {
        self.value.into()
    }
}

/// Mutations through `store`, answered as [`Value`]s; see [`Mutator`].
pub fn use_mutation(store: &BrowserStore) -> Mutator<Value> {
    use_mutation_as(store)
}

/// Like [`use_mutation`], with each answer deserialized as `R`.
pub fn use_mutation_as<R>(store: &BrowserStore) -> Mutator<R>
where
    R: DeserializeOwned + Clone + Send + Sync + 'static,
{
    Mutator { store: StoredValue::new_local(store.clone()), in_flight: RwSignal::new(0), value: RwSignal::new(None) }
}
