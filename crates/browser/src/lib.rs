//! The browser IO shell around the subsignal store core, and the only crate that knows JavaScript.
//!
//! [`BrowserStore`] owns a sans-IO [`subsignal_store::Store`] and carries out what it asks for with browser APIs:
//! WebSockets (subprotocol `graphql-transport-ws`), `fetch` with a timeout, one timer at
//! [`Store::next_wake_ms`](subsignal_store::Store::next_wake_ms), the `online`/`offline` events, IndexedDB (with a
//! `localStorage` copy of the queue) for the offline queue and persisted collections, and `crypto.getRandomValues`
//! for the seed. Rust front ends use it directly (the Leptos adapter
//! `subsignal-leptos` is built on it); with the `js` feature the crate also exports the `@subsignal/store` npm
//! package's JavaScript API, with TypeScript types (build it with `cargo xtask npm`).
//!
//! ```text
//! use subsignal_browser::{BrowserStore, CollectionConfig, StoreOptions};
//!
//! let store = BrowserStore::new(
//!     StoreOptions::new("http://localhost:4000/graphql", "ws://localhost:4000/graphql").token("<jwt>"),
//! );
//! store.watch(CollectionConfig::new("orders").subscription("subscription …", "onOrderChanged", "order"));
//! let _guard = store.on_row(|collection, change, _origin| web_sys::console::log_1(&format!("{collection}: {change:?}").into()));
//! store.connect();
//! ```
//!
//! With [`StoreOptions::shared`], the tabs of an origin share one store: where the browser has `SharedWorker`, one
//! hosts the connection, collections and queue (running the app's own build, found at run time, or the script
//! [`StoreOptions::shared_worker`] names; the npm package ships one), the tabs following it over `MessagePort`s;
//! otherwise the tab holding a Web Lock hosts, the others following it over a `BroadcastChannel` (see
//! `shell/shared.rs`).
//!
//! Outside `wasm32` the same API is inert (`inert.rs`): a store made there opens no socket, sends no request and
//! keeps its collections empty and not loaded, so that code using it — a Leptos app rendered on a server, a native
//! test — builds and runs on the host. The npm package's exports exist for `wasm32` only.
#![deny(missing_docs)]

mod oneshot;
mod options;
mod shell;

#[cfg(target_arch = "wasm32")]
#[path = "web.rs"]
mod platform;

#[cfg(not(target_arch = "wasm32"))]
#[path = "inert.rs"]
mod platform;

#[cfg(all(feature = "js", target_arch = "wasm32"))]
mod js;

#[cfg(all(feature = "js", target_arch = "wasm32"))]
pub use js::{is_conflict, is_mutation_error, JsCollection, JsStore, JsView};

pub use options::StoreOptions;
#[cfg(target_arch = "wasm32")]
pub use shell::attach_shared_worker_port;
pub use shell::{BrowserStore, ListenerGuard, MutationFuture};
pub use subsignal_store::{
    three_way, ChangeAt, Choice, CollectionConfig, CollectionState, CollectionStats, CollectionView, CompareOp,
    Conflict, ConnectionConfig, ConnectionStatus, Direction, DiscardError, EntityAction, EntitySubscription,
    FieldChange, FieldDiff, FieldError, Filter, Guarantee, HistoryAt, HistoryConfig, HistoryError, HistoryOp,
    HistoryRange, ListQuery, Mutation, MutationError, Optimistic, OrderBy, PendingMutation, Protocol, ResolveError,
    RowAt, RowChange, RowOrigin, Source, Status, ViewError, ViewOp, ViewRead, ViewSpec, ViewState,
};
