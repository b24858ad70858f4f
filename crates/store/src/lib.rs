//! The sans-IO core of the subsignal browser store: GraphQL subscription events drive reactive state directly.
//!
//! A [`Store`] keeps live collections (a snapshot plus change events, in step with the server by `seq`/`prevSeq`),
//! shows optimistic overlays of pending mutations, queues mutations while offline, and runs the graphql-transport-ws
//! connection with keep-alive and capped, fully jittered reconnects. It does no IO and reads no clock: the shell feeds
//! [`Input`]s with the current time and carries out the [`Output`]s.
//!
//! Driving it is one loop:
//!
//! 1. call [`Store::handle`] with the time and an input (a frame, a socket event, an HTTP result, a user command,
//!    or [`Input::Tick`]);
//! 2. carry out every [`Output`] in order (open/close/send on sockets, perform HTTP requests, publish row changes);
//! 3. arm one timer for [`Store::next_wake_ms`] and feed [`Input::Tick`] when it fires.
//!
//! With [`StoreConfig::protocol`] set to [`Protocol::AppSync`] the same collections and mutations run against an AWS
//! AppSync(-compatible) endpoint: the real-time protocol for subscriptions (`ka` liveness, `start`/`stop`, the
//! authorization header object in the URL and in every `start`), HTTP GraphQL with the same auth headers for snapshots
//! and mutations. AppSync has no `afterSeq` and never replays missed events, so the `prevSeq` gap repair cannot work
//! there: after every (re)connect, and after a subscription ends or fails, each collection resubscribes and, once
//! `start_ack` says the subscription runs, takes a fresh snapshot (the delta-sync way); events arriving during the
//! snapshot are buffered and applied on top of it when newer than its `seq`, and afterwards every event newer than
//! `lastSeq` applies at once, each row guarded by its `version`. What AppSync itself never delivers (TTL expiries,
//! writes that bypass the API) shows up only at the next snapshot.
//!
//! Rows are read through [`Store::collection`]; a [`RowChange`] names the one row that changed, so per-row signals
//! update only the row they hold, and the key list changes only on insertion and removal. A live view
//! ([`Store::open_view`]: `where`, `orderBy`, `limit`, `offset`) is a filtered, sorted window over a collection, kept
//! in an order-statistic index so that a row change costs O(log n) and publishes only the positions that moved
//! ([`Output::View`]); it can be held while the user reads and released to show the net change at once.
//!
//! A mutation refused for a stale `expectedVersion` settles with a [`Conflict`]: the row the user edited, the fields
//! they changed, the server's row and a per-field three-way diff, with the resends that keep mine, take theirs or
//! merge field by field.
//! A collection on the subsignal source can keep a bounded history ([`CollectionConfig::history`], off by default):
//! [`CollectionView::at`] answers its confirmed rows just after any seq held, each with the event that last changed
//! it, without touching the live rows (see [`HistoryConfig`] for the cost).
//! A collection may persist ([`CollectionConfig::persist`]): the store announces changes with [`Output::Persist`],
//! the shell writes [`Store::take_image`] (rows, `lastSeq`, source cursor and the offline queue, in one transaction)
//! when convenient, and on the next load [`Input::Restore`] shows the rows at once, marked stale, before the network
//! answers; the source then resumes from the image (see the `persist` module).
#![deny(missing_docs)]

mod collection;
mod conflict;
mod connection;
mod history;
mod mutation;
mod persist;
mod rng;
mod source;
mod store;
mod sync;
mod timers;
mod view;

#[cfg(test)]
mod tests;

pub use collection::{CollectionStats, RowChange, RowOrigin};
pub use conflict::{three_way, Choice, Conflict, FieldChange, FieldDiff, ResolveError};
pub use connection::{ConnectionConfig, ConnectionStatus, Protocol};
pub use history::{ChangeAt, HistoryAt, HistoryConfig, HistoryError, HistoryOp, HistoryRange, RowAt};
pub use mutation::{FieldError, Mutation, MutationError, Optimistic, PendingMutation};
pub use persist::{fingerprint, CollectionImage, StoreImage, IMAGE_FORMAT};
pub use rng::uuid_v4;
pub use source::{
    CollectionConfig, EntityAction, EntityEventsSource, EntitySubscription, Guarantee, ListQuery, LiveQuerySource,
    Source, SubsignalSource, WireCollection,
};
pub use store::{
    CollectionState, CollectionView, DiscardError, HttpRequest, HttpResponse, Input, Output, Status, Store,
    StoreConfig, ViewRead,
};
pub use view::{apply_ops, CompareOp, Direction, Filter, OrderBy, ViewError, ViewOp, ViewSpec, ViewState};
