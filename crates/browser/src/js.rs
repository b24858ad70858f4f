//! The JavaScript API of the `@subsignal/store` npm package (feature `js`): a `Store` class whose values cross as
//! plain JSON objects, typed by the TypeScript declarations below.
//!
//! What JavaScript passes in (options, collection configs, mutations: rare, small) is read from the object itself
//! with serde-wasm-bindgen. What goes out (rows, row changes, statuses) crosses as JSON text, `serde_json` on this
//! side and the engine's `JSON.parse` on the other: one call per value instead of one per field, and no second
//! serializer in the wasm.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use serde::de::DeserializeOwned;
use serde::Serialize;
use subsignal_store::{Choice, Conflict, HistoryError, MutationError, ResolveError, ViewSpec};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::platform::has_shared_worker;
use crate::{
    BrowserStore, CollectionConfig, ListenerGuard, Mutation, MutationFuture, RowChange, RowOrigin, StoreOptions,
};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Timeouts and backoff of the WebSocket connection, in milliseconds. */
export interface ConnectionConfig {
  connectTimeoutMs?: number;
  ackTimeoutMs?: number;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
}

/** What every collection has, whatever its source. */
interface CollectionBase {
  /** The collection's name, used by `rows`, `row`, `keys` and in row changes. */
  name: string;
  /** The `limit` of each snapshot or list page (default: the server's). */
  pageSize?: number | null;
  /** The entity's key field (default `id`). */
  keyField?: string;
  /** The fields that order versions of one row, the first present counting (default `version`, `_version`,
   * `_lastChangedAt`, `updatedAt`): an older version never replaces a newer one. */
  versionFields?: string[];
  /** One version field (shorthand for `versionFields: [versionField]`). */
  versionField?: string;
  /** The field that marks a soft-deleted row, a removal (default `_deleted`). */
  deletedField?: string;
  /** List rows in descending key order. */
  descending?: boolean;
  /** Keep the rows, `lastSeq` and the source's cursor in IndexedDB (needs the store's `persistKey`): the next load
   * shows them at once, marked stale (`restored`), before the network answers, and the store then fetches only what
   * changed (the subsignal source resumes after `lastSeq`; a cursor past retention takes a new snapshot). */
  persist?: boolean;
}

/** subsignal's own change stream (the default): gapless and exactly-once, replayed by `afterSeq`. */
export interface SubsignalCollection extends CollectionBase {
  source?: "subsignal";
  /** The subscription document; it takes `$afterSeq: Int` and selects `seq prevSeq op key version expired` and the entity. */
  subscription: string;
  /** The subscription's root field, e.g. `onOrderChanged`. */
  subscriptionField: string;
  /** The field of the change that holds the entity, e.g. `order`. */
  entityField: string;
  /** The snapshot query; it takes `$limit: Int` and `$nextToken: String` and returns `{ items nextToken seq }`. */
  snapshotQuery: string;
  /** The snapshot query's root field, e.g. `listOrders`. */
  snapshotField: string;
  /** Keep a bounded history of the confirmed rows for time travel (`store.at`); off when absent. */
  history?: HistoryConfig | null;
}

/** How much history a collection keeps: at most `maxEvents` events (that changed a row), with a checkpoint of the
 * rows every `checkpointEvery` events (default 64; at most `maxEvents`). Row images are shared between checkpoints;
 * each checkpoint costs one small entry per row. */
export interface HistoryConfig {
  maxEvents: number;
  checkpointEvery?: number;
}

/** What an event did to a row, or `"snapshot"`: the row is as a snapshot showed it. */
export type HistoryOp = "snapshot" | "insert" | "update" | "remove";

/** The seqs a collection's history holds: `first` to `last` (its `lastSeq`), with the events and checkpoints kept. */
export interface HistoryRange {
  first: number;
  last: number;
  events: number;
  checkpoints: number;
}

/** One row as it was at a seq, with the event that last changed it (`seq`, `op`), or the snapshot it comes from. */
export interface RowAt<T = unknown> {
  readonly key: string;
  readonly row: T;
  readonly seq: number;
  readonly op: HistoryOp;
}

/** A collection's confirmed rows just after `seq` (frozen), and the rows the event at `seq` changed. */
export interface HistoryAt<T = unknown> {
  readonly seq: number;
  readonly rows: readonly RowAt<T>[];
  readonly changes: readonly { readonly key: string; readonly op: HistoryOp }[];
}

/** Why `history`/`at` could not answer: an `Error` named `HistoryError`; `outOfRange` names the range held. */
export type HistoryError = Error &
  (
    | { kind: "unknownCollection" | "disabled" | "noSeqs" | "empty" }
    | { kind: "outOfRange"; seq: number; first: number; last: number }
  );

/** One subscription of an entity-events collection, e.g. `onCreateTodo` (an upsert) or `onDeleteTodo` (a removal). */
export interface EntitySubscription {
  document: string;
  /** Its root field, which holds the entity. */
  field: string;
  action: "upsert" | "remove";
  /** Its variables: AppSync filter arguments, `filter` for enhanced filters, `owner`… */
  variables?: Record<string, unknown>;
}

/** A paged list query: it takes `$limit` and `$nextToken` and returns `{ items nextToken }` under `field`. */
export interface ListQuery {
  document: string;
  field: string;
  /** More variables; the store sets `limit`, `nextToken` (and `lastSync`). */
  variables?: Record<string, unknown>;
}

/** Entity events (AppSync/Amplify `onCreateT`/`onUpdateT`/`onDeleteT`, any graphql-ws server publishing the bare
 * entity): re-listed after every reconnect, events applied by version; converges, may skip intermediate versions. */
export interface EntityEventsCollection extends CollectionBase {
  source: "entityEvents";
  subscriptions: EntitySubscription[];
  list: ListQuery;
  /** Amplify's delta query (`syncTodos(lastSync, limit, nextToken) { items nextToken startedAt }`): lists through
   * it, and after a reconnect asks only for what changed since the last `startedAt`. */
  delta?: ListQuery;
}

/** A live query (Hasura style): the subscription pushes the whole result each time; only changed rows publish. */
export interface LiveQueryCollection extends CollectionBase {
  source: "liveQuery";
  subscription: string;
  /** The root field holding the rows (a list, or an object whose `items` is the list). */
  subscriptionField: string;
  variables?: Record<string, unknown>;
}

/** How to keep one collection live: its source, documents, and the fields the store reads. */
export type CollectionConfig = SubsignalCollection | EntityEventsCollection | LiveQueryCollection;

/** What a collection's source promises: `gapless` (every change once, in order) or `converges` (equal to the
 * server after every reconnect and result; intermediate versions may be skipped). */
export type Guarantee = "gapless" | "converges";

/** Where the server is, how to authenticate, and where to keep the offline queue. */
export interface StoreOptions {
  /** The GraphQL HTTP endpoint, e.g. `https://host/graphql`. */
  httpUrl: string;
  /** The graphql-transport-ws endpoint, e.g. `wss://host/graphql`. */
  wsUrl: string;
  /** A bearer token: shorthand for `auth: { Authorization: "Bearer <token>" }`. Or a function giving one (a
   * promise of one), called before each `connect()` and whenever the server refuses the credentials (4401/4403),
   * one call at a time (a refusal while a call is still answering waits for its token): for identity providers
   * whose tokens expire. */
  token?: string | null | (() => string | Promise<string>);
  /** The `connection_init` payload; its string entries are also sent as HTTP headers. */
  auth?: Record<string, string> | null;
  /** Names the IndexedDB database (`subsignal:<persistKey>`) that keeps the offline queue and the collections with
   * `persist: true` across reloads, written together in one transaction; without it nothing is kept. If IndexedDB
   * cannot be used (a private window, quota), the store warns, loads from the network, and keeps the queue in
   * localStorage under this key. */
  persistKey?: string | null;
  /** HTTP timeout (default 15000). */
  httpTimeoutMs?: number;
  connection?: ConnectionConfig;
  /** Collections to keep live from the start. */
  collections?: CollectionConfig[];
  /**
   * `"appsync"` speaks the AWS AppSync real-time protocol (subprotocol `graphql-ws`, `ka` liveness, `start`/`stop`);
   * AppSync never replays, so collections take a fresh snapshot after every reconnect. Default
   * `"graphql-transport-ws"`.
   */
  protocol?: "graphql-transport-ws" | "appsync";
  /** AppSync: the real-time endpoint if it differs from `wsUrl`; `?header=…&payload=e30=` is appended for you. */
  realtimeUrl?: string | null;
  /**
   * Whether the WebSocket offers its subprotocol (default true). `false` is for an endpoint whose path names the
   * protocol (subsignal's `/graphql/ws`) behind a proxy that cannot negotiate subprotocols, such as `trunk serve`
   * 0.21. Not allowed with `protocol: "appsync"`.
   */
  offerSubprotocol?: boolean;
  /**
   * One WebSocket, one set of collections and one offline queue for every tab of the origin that opens a store with
   * the same `persistKey` (or, without one, the same `wsUrl`): the tab holding a Web Lock hosts the store, the others
   * follow it over a `BroadcastChannel` (they show its rows, optimistic ones included, and send their mutations
   * through it); when the host tab closes, another takes over from the persisted copy (`persistKey`) and nothing
   * queued is lost. Where Web Locks or `BroadcastChannel` are missing, the store warns and runs on its own.
   * In a following tab the history (`history`/`at`) starts when it attaches, and `pendingMutations()` lists the
   * host's queue (every tab's mutations) as the host's last status said. Default false.
   *
   * `true` runs the host in a `SharedWorker` (the package's `subsignal_store_worker.js`) where the browser has one:
   * tabs attach over a `MessagePort`, get the rows at once and then row changes, and send their mutations through
   * it; the worker outlives any one tab. Where `SharedWorker` is missing (Chrome on Android), a host tab as above.
   * `"worker"` insists on the worker (the constructor throws without `SharedWorker`); `"tab"` always elects a tab.
   */
  shared?: boolean | "worker" | "tab";
  /**
   * With `shared`: the module script hosting the store in a `SharedWorker`, when it is not the package's own
   * `subsignal_store_worker.js` beside `subsignal_store.js` (a bundler that moves files: give it the bundled worker).
   */
  sharedWorkerUrl?: string;
}

/** The optimistic effect of a mutation on one row, shown until the server answers. */
export type Optimistic =
  | { kind: "upsert"; row: Record<string, unknown> }
  | { kind: "patch"; key: string; fields: Record<string, unknown> }
  | { kind: "remove"; key: string };

/** A document typed with its result and variables: graphql-codegen's `TypedDocumentString` (client preset,
 * `documentMode: "string"`), or a `TypedDocumentNode` that keeps its source (`loc.source.body`). */
export interface TypedDocument<TResult = unknown, TVariables = Record<string, unknown>> {
  __apiType?: (variables: TVariables) => TResult;
  toString(): string;
}

/** A GraphQL mutation; its document declares `$clientMutationId: ID` and passes it on. `TResult` is the entity the
 * result field holds (what `mutate` resolves with). */
export interface Mutation<TResult = unknown, TVariables = Record<string, unknown>> {
  query: string | TypedDocument<{ [field: string]: TResult }, TVariables>;
  variables?: TVariables;
  /** The mutation's root field, whose value is the entity written, e.g. `createOrder`. */
  resultField: string;
  /** The collection the optimistic effect applies to. */
  collection?: string | null;
  optimistic?: Optimistic | null;
  /** Chosen by the caller, or generated. */
  clientMutationId?: string | null;
  /** The row as the user saw it when they started editing: a conflict's `base`. Without it the store takes its
   * confirmed row if that is at the version sent as `expectedVersion` (a form should pass the row it opened with). */
  base?: object | null;
  /** The variable carrying `expectedVersion` (default `"expectedVersion"`): a conflict's resend sets it. */
  versionVariable?: string | null;
  /** The variable whose object carries the changed fields (default `"input"`): a merge's resend rewrites it. */
  inputVariable?: string | null;
}

/** A mutation waiting in the offline queue. */
export interface PendingMutation {
  id: string;
  mutation: Mutation;
}

/** One row change, for exactly the row it names. */
export type RowChange =
  | { kind: "inserted"; key: string }
  | { kind: "updated"; key: string }
  | { kind: "removed"; key: string; expired: boolean };

/** What made a row change: a subscription event (its `seq` with subsignal's source), a whole fetch (snapshot, list,
 * live-query result), or this client's own mutation (its optimistic effect, answer or rollback). */
export type RowOrigin =
  | { kind: "event"; seq: number | null }
  | { kind: "fetch" }
  | { kind: "local" }
  /** The persisted copy, shown at load before the network answers. */
  | { kind: "restore" };

/** What the connection is doing. */
export type ConnectionStatus =
  | { state: "disconnected" }
  | { state: "connecting"; attempt: number }
  | { state: "live" }
  | { state: "reconnecting"; attempt: number; retryAtMs: number }
  | { state: "offline" }
  | { state: "failed"; reason: string };

/** What a status indicator shows. */
export interface Status {
  connection: ConnectionStatus;
  /** Mutations not yet settled (queued or in flight). */
  pendingMutations: number;
}

/** One field's validation failure. */
export interface FieldError {
  field: string;
  code: string;
  message: string;
}

/** How one field stands between the row the user edited (`base`), their change (`mine`) and the server's row
 * (`theirs`): changed by neither, by one side, by both to the same value, or by both differently (a conflict). */
export type FieldChange = "unchanged" | "mine" | "theirs" | "bothSame" | "conflict";

/** One field of a conflict's three-way diff; a value is absent where the row lacks the field. */
export interface FieldDiff {
  field: string;
  change: FieldChange;
  base?: unknown;
  /** The value as the mutation would leave it (`base`'s where it did not touch the field). */
  mine?: unknown;
  theirs?: unknown;
}

/** A person's choice for one field of a merge. */
export type Choice = "mine" | "theirs" | { value: unknown };

/** A stale `expectedVersion` (or a row deleted since it was read), with what a person needs to resolve it. */
export interface Conflict<TRow = Record<string, unknown>> {
  kind: "conflict";
  code: "CONFLICT";
  /** The row's key, when the store could tell it. */
  key: string | null;
  /** The row the user edited, or null when unknown. */
  base: TRow | null;
  /** The fields the mutation changed (null for a removal). */
  mine: Partial<TRow> | null;
  /** The server's current row; null when it was deleted. */
  theirs: TRow | null;
  /** `theirs`' version: the `expectedVersion` a resend carries. */
  theirsVersion: number | string | null;
  /** Every field of the three, in name order. */
  diff: FieldDiff[];
  /** The mutation that was refused. */
  mutation: Mutation;
  /** Sends the same change again on top of `theirs` (`expectedVersion` = theirs' version): a new mutation,
   * optimistic and queued; the promise is its own (a further conflict rejects it again). Resolves with `theirs` when
   * mine changed nothing; rejects when the row was deleted. */
  keepMine(): Promise<unknown>;
  /** Sends nothing: the store already shows `theirs` (mine's optimistic effect is gone). Resolves with it. */
  takeTheirs(): Promise<TRow | null>;
  /** Per field `"mine"` (the default for fields not named), `"theirs"` (not sent) or `{ value }`; sends the result
   * on top of `theirs` like `keepMine`, or nothing (resolving with `theirs`) when every field is `"theirs"`. */
  merge(choices: Record<string, Choice>): Promise<unknown>;
}

/** Why the server refused a mutation. */
export type MutationErrorKind =
  | { kind: "validation"; code: "VALIDATION"; fields: FieldError[] }
  | Conflict
  | { kind: "unauthorized"; code: "UNAUTHORIZED"; message: string }
  | { kind: "discarded"; code: "DISCARDED" }
  | { kind: "other"; code: string | null; message: string };

/** What a rejected `mutate` promise holds: an `Error` named `MutationError` carrying the kind's fields. */
export type MutationError = Error & MutationErrorKind;

/** Counters of what a collection has done. */
export interface CollectionStats {
  /** Events received from the collection's subscriptions. */
  events: number;
  applied: number;
  duplicates: number;
  gaps: number;
  subscriptions: number;
  /** Snapshots, lists and live-query results taken whole. */
  snapshots: number;
  /** Times the rows were fetched again because events may have been missed. */
  resyncs: number;
}

/** Stops a listener. */
export type Unsubscribe = () => void;

/** Options of one `mutate` call. */
export interface MutateOptions {
  /** Aborting rejects the promise with an `AbortError` at once, and drops the mutation from the queue (rolling its
   * optimistic effect back) unless it was already sent: then the server may still commit it, and rows follow. */
  signal?: AbortSignal;
}

/** What a collection's readers may show besides its rows. */
export interface CollectionState {
  /** The first snapshot, list or result has been applied, or rows were restored from the persisted copy. */
  loaded: boolean;
  /** Not in step with the server right now: disconnected, or fetching again. */
  stale: boolean;
  /** The seq the rows are consistent with (subsignal source), else null. */
  lastSeq: number | null;
  /** Optimistic effects of unsettled mutations are showing. */
  hasPendingUpdates: boolean;
  /** How old the newest applied event was when it arrived (this clock minus its `committedAtMs`, when the
   * subscription selects that field; clock skew included), else null. */
  lagMs: number | null;
  /** The rows come from the persisted copy (`persist: true`) and the collection has not been live since: they may be
   * out of date (`stale` is true too). */
  restored: boolean;
}

/** A value a filter compares with. */
export type Scalar = string | number | boolean | null;

/** Comparisons of one field: numbers with numbers, strings with strings; `in` is equality with any of the values. */
export interface Comparison {
  eq?: Scalar;
  ne?: Scalar;
  lt?: Scalar;
  lte?: Scalar;
  gt?: Scalar;
  gte?: Scalar;
  in?: Scalar[];
}

/** Which rows a view shows: every entry must hold. `{ status: "OPEN" }` is equality; a field may be a dotted path
 * (`"customer.name"`); `and`, `or` (lists) and `not` combine filters. A missing field reads as `null`. */
export type Where = { and?: Where[]; or?: Where[]; not?: Where } & { [field: string]: Scalar | Comparison | Where | Where[] | undefined };

/** One sort field: `"createdAt"`, `"createdAt desc"` or `{ field: "createdAt", direction: "desc" }`. */
export type OrderBy = string | { field: string; direction?: "asc" | "desc" };

/** A live view: the rows matching `where`, sorted by `orderBy` (then by key), from `offset`, at most `limit`. */
export interface ViewSpec {
  where?: Where;
  orderBy?: OrderBy[];
  limit?: number;
  offset?: number;
}

/** One step of a view's change, applied in order to the keys it showed. */
export type ViewOp =
  | { op: "remove"; index: number }
  | { op: "insert"; index: number; key: string }
  | { op: "update"; index: number; key: string };

/** A view's size, whether it is held, and its collection's loaded/stale. */
export interface ViewState {
  loaded: boolean;
  stale: boolean;
  /** The collection's `lastSeq` and `lagMs` (see `CollectionState`). */
  lastSeq: number | null;
  lagMs: number | null;
  /** Rows shown. */
  len: number;
  /** Rows matching the filter in the whole collection. */
  total: number;
  held: boolean;
  /** Held, and something changed underneath that `release()` would show. */
  hasPendingUpdates: boolean;
}
"#;

fn to_js<T: Serialize + ?Sized>(value: &T) -> JsValue {
    // The store's own types always serialize (string keys, finite numbers) and their JSON always parses.
    serde_json::to_string(value).ok().and_then(|text| js_sys::JSON::parse(&text).ok()).unwrap_or(JsValue::UNDEFINED)
}

#[wasm_bindgen(inline_js = "export function workerUrl() { \
    return new URL('../../subsignal_store_worker.js', import.meta.url).href; } \
    const CHANGES = ['inserted', 'updated', 'removed']; const ORIGINS = ['event', 'fetch', 'local', 'restore']; \
    const UTF8 = new TextDecoder(); \
    function text(bytes) { if (bytes.length > 64) return UTF8.decode(bytes); let s = ''; \
    for (let i = 0; i < bytes.length; i++) { const c = bytes[i]; if (c > 127) return UTF8.decode(bytes); \
    s += String.fromCharCode(c); } return s; } \
    export function callRow(listener, collection, change, keyBytes, expired, origin, seq) { const key = text(keyBytes); \
    listener(collection, change === 2 ? { kind: 'removed', key, expired } : { kind: CHANGES[change], key }, \
    origin === 0 ? { kind: 'event', seq: seq ?? null } : { kind: ORIGINS[origin] }); }")]
extern "C" {
    /// The package's worker entry, `subsignal_store_worker.js`, beside `subsignal_store.js` (this snippet lives in
    /// `snippets/<crate>/`).
    #[wasm_bindgen(js_name = workerUrl)]
    fn package_worker_url() -> String;
    /// Calls an `onRow` listener with a `RowChange` and a `RowOrigin` as their JSON forms would be (see
    /// [`call_row_listener`]), built in JavaScript: the hot path, one call and one string per row change. The key
    /// crosses as UTF-8 bytes, made a string in JavaScript: `TextDecoder`, which a `&str` argument goes through,
    /// cost a tenth of a row change for a key of a dozen ASCII characters (profiled in Chromium).
    #[wasm_bindgen(catch, js_name = callRow)]
    fn call_row(
        listener: &js_sys::Function,
        collection: &JsValue,
        change: u8,
        key: &[u8],
        expired: bool,
        origin: u8,
        seq: Option<f64>,
    ) -> Result<(), JsValue>;
}

/// Calls `listener(collection, change, origin)`, the change and origin as `to_js` would make them.
fn call_row_listener(listener: &js_sys::Function, collection: &JsValue, change: &RowChange, origin: &RowOrigin) {
    let (kind, expired) = match change {
        RowChange::Inserted { .. } => (0, false),
        RowChange::Updated { .. } => (1, false),
        RowChange::Removed { expired, .. } => (2, *expired),
    };
    let (origin, seq) = match origin {
        RowOrigin::Event { seq } => (0, seq.map(|s| s as f64)),
        RowOrigin::Fetch => (1, None),
        RowOrigin::Local => (2, None),
        RowOrigin::Restore => (3, None),
    };
    if let Err(e) = call_row(listener, collection, kind, change.key().as_bytes(), expired, origin, seq) {
        web_sys::console::error_2(&"subsignal: a listener threw".into(), &e);
    }
}

fn from_js<T: DeserializeOwned>(value: JsValue, what: &str) -> Result<T, JsError> {
    serde_wasm_bindgen::from_value(value).map_err(|e| JsError::new(&format!("invalid {what}: {e}")))
}

/// The listeners a store's JavaScript caller added, kept by the store: a listener lives until its unsubscribe
/// function is called or the store is freed, whether or not the caller keeps that function. (A guard captured by
/// the function itself would be dropped, and the listener silently removed, when the garbage collector takes an
/// unsubscribe function the caller threw away.)
#[derive(Default)]
struct Listeners {
    next: u32,
    guards: HashMap<u32, ListenerGuard>,
}

impl Listeners {
    /// Keeps a guard for the store's lifetime.
    fn keep(&mut self, guard: ListenerGuard) {
        self.next += 1;
        self.guards.insert(self.next, guard);
    }
}

/// Keeps `guard` in `listeners`; gives a JavaScript function that drops it (safe to call more than once).
fn unsubscribe(listeners: &Rc<RefCell<Listeners>>, guard: ListenerGuard) -> JsValue {
    let id = {
        let mut kept = listeners.borrow_mut();
        kept.next += 1;
        let id = kept.next;
        kept.guards.insert(id, guard);
        id
    };
    let listeners = Rc::downgrade(listeners);
    Closure::<dyn FnMut()>::new(move || {
        // Dropped after the borrow ends: dropping a guard may run code that adds or removes listeners.
        let guard = listeners.upgrade().and_then(|l| l.borrow_mut().guards.remove(&id));
        drop(guard);
    })
    .into_js_value()
}

fn report(result: Result<JsValue, JsValue>) {
    if let Err(e) = result {
        web_sys::console::error_2(&"subsignal: a listener threw".into(), &e);
    }
}

/// A `MutationError` as a JavaScript `Error` with the kind's fields and its `code`; a conflict also gets
/// `keepMine()`, `takeTheirs()` and `merge(choices)`, whose resends go through `store`.
fn mutation_error(store: &BrowserStore, e: MutationError) -> JsValue {
    let error = js_sys::Error::new(&e.to_string());
    error.set_name("MutationError");
    if let Ok(fields) = to_js(&e).dyn_into::<js_sys::Object>() {
        js_sys::Object::assign(error.unchecked_ref(), &fields);
    }
    let set = |name: &str, value: &JsValue| {
        js_sys::Reflect::set(&error, &name.into(), value).ok();
    };
    set("code", &e.code().map_or(JsValue::NULL, JsValue::from_str));
    if let MutationError::Conflict(conflict) = e {
        let conflict = Rc::new(*conflict);
        let (s, c) = (store.clone(), conflict.clone());
        let keep_mine = move || resend(&s, &c, c.keep_mine());
        set("keepMine", &Closure::<dyn Fn() -> js_sys::Promise>::new(keep_mine).into_js_value());
        let c = conflict.clone();
        let take_theirs = move || js_sys::Promise::resolve(&to_js(&c.theirs));
        set("takeTheirs", &Closure::<dyn Fn() -> js_sys::Promise>::new(take_theirs).into_js_value());
        let (s, c) = (store.clone(), conflict);
        let merge = move |choices: JsValue| match merge_choices(&choices) {
            Ok(choices) => resend(&s, &c, c.merge(&choices)),
            Err(e) => js_sys::Promise::reject(&e.into()),
        };
        set("merge", &Closure::<dyn Fn(JsValue) -> js_sys::Promise>::new(merge).into_js_value());
    }
    error.into()
}

/// `{field: "mine" | "theirs" | {value}}` as choices, read by hand: a map and enum through serde would add their own
/// deserializer code to the wasm.
fn merge_choices(choices: &JsValue) -> Result<Vec<(String, Choice)>, JsError> {
    let invalid = |why: String| JsError::new(&format!("invalid merge choices: {why}"));
    let object = choices.dyn_ref::<js_sys::Object>().ok_or_else(|| invalid("expected an object".into()))?;
    let mut read = Vec::new();
    for entry in js_sys::Object::entries(object).iter() {
        let entry: js_sys::Array = entry.unchecked_into();
        let field = entry.get(0).as_string().unwrap_or_default();
        let choice = entry.get(1);
        let chosen = match choice.as_string().as_deref() {
            Some("mine") => Choice::Mine,
            Some("theirs") => Choice::Theirs,
            _ => match js_sys::Reflect::get(&choice, &"value".into()).ok().filter(|_| choice.is_object()) {
                Some(value) if !value.is_undefined() => Choice::Value(from_js(value, "merge choices")?),
                _ => return Err(invalid(format!("{field}: expected \"mine\", \"theirs\" or {{ value }}"))),
            },
        };
        read.push((field, chosen));
    }
    Ok(read)
}

/// A conflict's resolution: the resend's promise, `theirs` when there is nothing to send, or why it cannot be sent.
fn resend(
    store: &BrowserStore,
    conflict: &Conflict,
    resend: Result<Option<Mutation>, ResolveError>,
) -> js_sys::Promise {
    match resend {
        Ok(Some(mutation)) => settled(store, store.mutate(mutation)),
        Ok(None) => js_sys::Promise::resolve(&to_js(&conflict.theirs)),
        Err(e) => js_sys::Promise::reject(&JsError::new(&e.to_string()).into()),
    }
}

/// A mutation's promise: the entity written, or a `MutationError`.
fn settled(store: &BrowserStore, future: MutationFuture) -> js_sys::Promise {
    let store = store.clone();
    wasm_bindgen_futures::future_to_promise(async move {
        match future.await {
            Ok(value) => Ok(to_js(&value)),
            Err(e) => Err(mutation_error(&store, e)),
        }
    })
}

/// A `HistoryError` as a JavaScript `Error` with its `kind` (and, out of range, `seq`, `first`, `last`).
fn history_error(e: &HistoryError) -> JsValue {
    let error = js_sys::Error::new(&e.to_string());
    error.set_name("HistoryError");
    let set = |field: &str, value: JsValue| js_sys::Reflect::set(&error, &field.into(), &value).ok();
    let kind = match e {
        HistoryError::UnknownCollection(_) => "unknownCollection",
        HistoryError::Disabled(_) => "disabled",
        HistoryError::NoSeqs(_) => "noSeqs",
        HistoryError::Empty(_) => "empty",
        HistoryError::OutOfRange { seq, first, last, .. } => {
            set("seq", JsValue::from(*seq as f64));
            set("first", JsValue::from(*first as f64));
            set("last", JsValue::from(*last as f64));
            "outOfRange"
        }
    };
    set("kind", kind.into());
    error.into()
}

/// Freezes an object and everything in it.
fn deep_freeze(value: &JsValue) {
    if let Some(object) = value.dyn_ref::<js_sys::Object>() {
        for inner in js_sys::Object::values(object).iter() {
            deep_freeze(&inner);
        }
        js_sys::Object::freeze(object);
    }
}

/// A mutation whose `query` is a typed document object (graphql-codegen's `TypedDocumentString`, or a
/// `TypedDocumentNode` keeping `loc.source.body`) as a copy whose `query` is its text; anything else as it is.
fn document_as_text(mutation: JsValue) -> JsValue {
    let query = js_sys::Reflect::get(&mutation, &"query".into()).unwrap_or(JsValue::UNDEFINED);
    if !query.is_object() {
        return mutation;
    }
    let body = js_sys::Reflect::get(&query, &"loc".into())
        .and_then(|loc| js_sys::Reflect::get(&loc, &"source".into()))
        .and_then(|source| js_sys::Reflect::get(&source, &"body".into()))
        .ok()
        .filter(JsValue::is_string);
    let text = body.unwrap_or_else(|| js_sys::Object::from(query).to_string().into());
    let copy = js_sys::Object::assign(&js_sys::Object::new(), mutation.unchecked_ref());
    js_sys::Reflect::set(&copy, &"query".into(), &text).ok();
    copy.into()
}

/// Calls a token provider and awaits its answer; `None` (with a console error) if it throws or gives no string.
async fn ask_token(provider: &js_sys::Function) -> Option<String> {
    let answer = match provider.call0(&JsValue::NULL) {
        Ok(answer) => answer,
        Err(e) => {
            report(Err(e));
            return None;
        }
    };
    let answer = match answer.dyn_into::<js_sys::Promise>() {
        Ok(promise) => match wasm_bindgen_futures::JsFuture::from(promise).await {
            Ok(value) => value,
            Err(e) => {
                report(Err(e));
                return None;
            }
        },
        Err(value) => value,
    };
    let token = answer.as_string();
    if token.is_none() {
        web_sys::console::error_1(&"subsignal: the token function gave no string".into());
    }
    token
}

/// Whether a value is a rejection of `Store.mutate` (a `MutationError`).
#[wasm_bindgen(js_name = isMutationError, unchecked_return_type = "error is MutationError")]
pub fn is_mutation_error(#[wasm_bindgen(unchecked_param_type = "unknown")] error: &JsValue) -> bool {
    error.dyn_ref::<js_sys::Error>().is_some_and(|e| e.name() == "MutationError")
}

/// Whether a value is a rejection of `Store.mutate` for a conflict (a `MutationError` with `code: "CONFLICT"`).
#[wasm_bindgen(js_name = isConflict, unchecked_return_type = "error is MutationError & Conflict")]
pub fn is_conflict(#[wasm_bindgen(unchecked_param_type = "unknown")] error: &JsValue) -> bool {
    is_mutation_error(error)
        && js_sys::Reflect::get(error, &"code".into()).ok().and_then(|c| c.as_string()).as_deref() == Some("CONFLICT")
}

/// A live store: a GraphQL query snapshot plus subscription events, with optimistic mutations and an offline queue.
#[wasm_bindgen(js_name = Store)]
pub struct JsStore {
    store: BrowserStore,
    listeners: Rc<RefCell<Listeners>>,
    /// `token` given as a function: asked before each connect and when the server refuses the credentials.
    token_provider: Option<js_sys::Function>,
    /// The status as `getSnapshot()` hands it out, and `subscribe`'s listeners.
    status: Rc<Notifier>,
}

#[wasm_bindgen(js_class = Store)]
impl JsStore {
    /// Creates a store (disconnected until `connect()`). Throws if the options are malformed.
    #[wasm_bindgen(constructor)]
    pub fn new(#[wasm_bindgen(unchecked_param_type = "StoreOptions")] options: JsValue) -> Result<JsStore, JsError> {
        let token = js_sys::Reflect::get(&options, &"token".into()).unwrap_or(JsValue::UNDEFINED);
        let token_provider = token.dyn_into::<js_sys::Function>().ok();
        let shared = js_sys::Reflect::get(&options, &"shared".into()).unwrap_or(JsValue::UNDEFINED);
        let mode = shared.as_string();
        // `shared: undefined` (or null), as an optional option is often spelled, reads as no `shared` at all.
        let unset = (shared.is_undefined() || shared.is_null())
            && js_sys::Reflect::has(&options, &"shared".into()).unwrap_or(false);
        let options = if token_provider.is_some() || mode.is_some() || unset {
            // The rest of the options, read as usual (`shared: "worker" | "tab"` as `shared: true`).
            let rest = js_sys::Object::assign(&js_sys::Object::new(), options.unchecked_ref());
            if token_provider.is_some() {
                js_sys::Reflect::delete_property(&rest, &"token".into()).ok();
            }
            if unset {
                js_sys::Reflect::delete_property(&rest, &"shared".into()).ok();
            }
            if mode.is_some() {
                js_sys::Reflect::set(&rest, &"shared".into(), &JsValue::TRUE).ok();
            }
            rest.into()
        } else {
            options
        };
        let mut options: StoreOptions = from_js(options, "StoreOptions")?;
        match mode.as_deref() {
            None if !options.shared || options.shared_worker_url.is_some() => {}
            // `shared: true`: the package's worker where the browser has `SharedWorker`, else a host tab.
            None if has_shared_worker() => options.shared_worker_url = Some(package_worker_url()),
            None => {}
            Some("worker") if !has_shared_worker() => {
                return Err(JsError::new("shared: \"worker\" needs SharedWorker, which this browser lacks"))
            }
            Some("worker") => {
                options.shared_worker_url.get_or_insert_with(package_worker_url);
            }
            Some("tab") => {
                options.shared_worker_url = None;
                options.shared_in_tab = true;
            }
            Some(other) => {
                return Err(JsError::new(&format!(
                    "invalid StoreOptions: shared must be true, false, \"worker\" or \"tab\", not {other:?}"
                )))
            }
        }
        if let Some(problem) = options.problem() {
            return Err(JsError::new(&format!("invalid StoreOptions: {problem}")));
        }
        let js = JsStore {
            store: BrowserStore::new(options),
            listeners: Rc::default(),
            token_provider,
            status: Rc::default(),
        };
        let status = Rc::downgrade(&js.status);
        let guard = js.store.on_status(move |_| Notifier::changed(&status));
        js.listeners.borrow_mut().keep(guard);
        if let Some(provider) = js.token_provider.clone() {
            let guard = js.store.renew_token_with(move || {
                let provider = provider.clone();
                async move { ask_token(&provider).await }
            });
            js.listeners.borrow_mut().keep(guard);
        }
        Ok(js)
    }

    /// Starts connecting; also restarts after a fatal close. With a `persistKey`, the persisted image is restored
    /// first. With `token` a function, asks it for a token first.
    pub fn connect(&self) {
        let Some(provider) = self.token_provider.clone() else { return self.store.connect() };
        let store = self.store.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if let Some(token) = ask_token(&provider).await {
                store.set_token(&token);
            }
            store.connect();
        });
    }

    /// Closes the connection and stays disconnected.
    pub fn disconnect(&self) {
        self.store.disconnect();
    }

    /// Keeps a collection live. Throws if the config is malformed.
    pub fn watch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "CollectionConfig")] config: JsValue,
    ) -> Result<(), JsError> {
        self.store.watch(from_js::<CollectionConfig>(config, "CollectionConfig")?);
        Ok(())
    }

    /// Stops keeping a collection live.
    pub fn unwatch(&self, name: &str) {
        self.store.unwatch(name);
    }

    /// The visible rows of a collection, in order (optimistic effects applied).
    #[wasm_bindgen(unchecked_return_type = "unknown[]")]
    pub fn rows(&self, collection: &str) -> JsValue {
        self.store.with_collection(collection, |c| {
            let rows = c.map(|c| c.keys().iter().filter_map(|k| c.row_ref(k)).collect::<Vec<_>>());
            to_js(&rows.unwrap_or_default())
        })
    }

    /// One visible row, or `null`.
    #[wasm_bindgen(unchecked_return_type = "unknown")]
    pub fn row(&self, collection: &str, key: &str) -> JsValue {
        self.store.with_collection(collection, |c| to_js(&c.and_then(|c| c.row_ref(key))))
    }

    /// The visible keys of a collection, in order.
    pub fn keys(&self, collection: &str) -> Vec<String> {
        self.store.keys(collection)
    }

    /// Loaded, stale, `lastSeq` and pending updates of a collection, or `null` if it is not watched.
    #[wasm_bindgen(js_name = collectionState, unchecked_return_type = "CollectionState | null")]
    pub fn collection_state(&self, collection: &str) -> JsValue {
        to_js(&self.store.with_collection(collection, |c| c.map(|c| c.state())))
    }

    /// Drops a queued mutation the server has not seen (its optimistic effect rolls back, its promise rejects with
    /// kind `discarded`). False when it is not queued, or already sent (the server's answer settles it).
    pub fn discard(&self, id: &str) -> bool {
        self.store.discard(id).is_ok()
    }

    /// Counters of a collection, or `null` if it is not watched.
    #[wasm_bindgen(unchecked_return_type = "CollectionStats | null")]
    pub fn stats(&self, collection: &str) -> JsValue {
        to_js(&self.store.with_collection(collection, |c| c.map(|c| c.stats())))
    }

    /// What a collection's source promises over this store's protocol, or `null` if it is not watched.
    #[wasm_bindgen(unchecked_return_type = "Guarantee | null")]
    pub fn guarantee(&self, collection: &str) -> JsValue {
        to_js(&self.store.with_collection(collection, |c| c.map(|c| c.guarantee())))
    }

    /// Whether a collection has its snapshot and a running subscription.
    #[wasm_bindgen(js_name = isLive)]
    pub fn is_live(&self, collection: &str) -> bool {
        self.store.with_collection(collection, |c| c.is_some_and(|c| c.is_live()))
    }

    /// With `shared`: `"worker"` when this tab follows the store's `SharedWorker`, `"host"` when this tab holds the
    /// connection for every tab, `"follower"` when it shows the host tab's store; `null` for a store that is not
    /// shared (or runs on its own for want of Web Locks).
    #[wasm_bindgen(getter, js_name = sharedRole, unchecked_return_type = "\"worker\" | \"host\" | \"follower\" | null")]
    pub fn shared_role(&self) -> JsValue {
        match self.store.is_host() {
            Some(false) if self.store.follows_worker() => "worker".into(),
            Some(true) => "host".into(),
            Some(false) => "follower".into(),
            None => JsValue::NULL,
        }
    }

    /// The current status.
    #[wasm_bindgen(unchecked_return_type = "Status")]
    pub fn status(&self) -> JsValue {
        to_js(&self.store.status())
    }

    /// The seqs a collection's history holds, or `null` while it holds none yet (before its snapshot has caught
    /// up). Throws a `HistoryError` when the collection is not watched, keeps no history or has no seqs.
    #[wasm_bindgen(unchecked_return_type = "HistoryRange | null")]
    pub fn history(&self, collection: &str) -> Result<JsValue, JsValue> {
        match self.store.history(collection) {
            Ok(range) => Ok(to_js(&range)),
            Err(HistoryError::Empty(_)) => Ok(JsValue::NULL),
            Err(e) => Err(history_error(&e)),
        }
    }

    /// A collection's confirmed rows just after `seq` (no optimistic effects), frozen, each with the event that last
    /// changed it, and the rows the event at `seq` changed; the live rows are untouched. Throws a `HistoryError`
    /// (kind `outOfRange` with the range held) for a seq the history does not hold.
    #[wasm_bindgen(unchecked_return_type = "HistoryAt")]
    pub fn at(&self, collection: &str, seq: f64) -> Result<JsValue, JsValue> {
        if seq.fract() != 0.0 || !seq.is_finite() {
            return Err(JsError::new(&format!("invalid seq {seq}: a seq is an integer")).into());
        }
        let at = self.store.at(collection, seq as i64).map_err(|e| history_error(&e))?;
        let value = to_js(&at);
        deep_freeze(&value);
        Ok(value)
    }

    /// The unsettled mutations, in order.
    #[wasm_bindgen(js_name = pendingMutations, unchecked_return_type = "PendingMutation[]")]
    pub fn pending_mutations(&self) -> JsValue {
        to_js(&self.store.pending_mutations())
    }

    /// Calls `listener(collection, change)` for every visible row change; returns a function that stops it.
    #[wasm_bindgen(js_name = onRow, unchecked_return_type = "Unsubscribe")]
    pub fn on_row(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(collection: string, change: RowChange, origin: RowOrigin) => void")]
        listener: js_sys::Function,
    ) -> JsValue {
        // The hot path (one call per row change): the collection's name is made a JavaScript string once, and the
        // change and its origin cross as one JSON text, so that an event costs one string decode and one parse.
        let names: RefCell<Vec<(String, JsValue)>> = RefCell::default();
        unsubscribe(
            &self.listeners,
            self.store.on_row(move |collection, change, origin| {
                let mut names = names.borrow_mut();
                let name = match names.iter().position(|(n, _)| n == collection) {
                    Some(i) => names[i].1.clone(),
                    None => {
                        let name = JsValue::from_str(collection);
                        names.push((collection.to_owned(), name.clone()));
                        name
                    }
                };
                drop(names);
                call_row_listener(&listener, &name, change, origin);
            }),
        )
    }

    /// Calls `listener(status)` whenever the status changes; returns a function that stops it.
    #[wasm_bindgen(js_name = onStatus, unchecked_return_type = "Unsubscribe")]
    pub fn on_status(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(status: Status) => void")] listener: js_sys::Function,
    ) -> JsValue {
        unsubscribe(
            &self.listeners,
            self.store.on_status(move |status| report(listener.call1(&JsValue::NULL, &to_js(status)))),
        )
    }

    /// Calls `listener()` when the server refuses the credentials (answer with `setToken`/`setAuth`).
    #[wasm_bindgen(js_name = onAuthRequired, unchecked_return_type = "Unsubscribe")]
    pub fn on_auth_required(
        &self,
        #[wasm_bindgen(unchecked_param_type = "() => void")] listener: js_sys::Function,
    ) -> JsValue {
        unsubscribe(&self.listeners, self.store.on_auth_required(move || report(listener.call0(&JsValue::NULL))))
    }

    /// Calls `listener(message)` for warnings (without a listener they go to `console.warn`).
    #[wasm_bindgen(js_name = onWarning, unchecked_return_type = "Unsubscribe")]
    pub fn on_warning(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(message: string) => void")] listener: js_sys::Function,
    ) -> JsValue {
        unsubscribe(
            &self.listeners,
            self.store.on_warning(move |message| report(listener.call1(&JsValue::NULL, &JsValue::from_str(message)))),
        )
    }

    /// Replaces the credentials with a `connection_init` payload such as `{Authorization: "Bearer …"}`.
    #[wasm_bindgen(js_name = setAuth)]
    pub fn set_auth(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Record<string, string> | null")] auth: JsValue,
    ) -> Result<(), JsError> {
        self.store.set_auth(from_js(auth, "auth payload")?);
        Ok(())
    }

    /// Replaces the credentials with a bearer token.
    #[wasm_bindgen(js_name = setToken)]
    pub fn set_token(&self, token: &str) {
        self.store.set_token(token);
    }

    /// The status, the same frozen object until it changes (for `useSyncExternalStore` with `subscribe`).
    #[wasm_bindgen(js_name = getSnapshot, unchecked_return_type = "Status")]
    pub fn get_snapshot(&self) -> JsValue {
        self.status.snapshot(|| to_js(&self.store.status()))
    }

    /// Calls `listener()` after the status changed, once per microtask; returns a function that stops it.
    #[wasm_bindgen(unchecked_return_type = "Unsubscribe")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "() => void")] listener: js_sys::Function,
    ) -> JsValue {
        Notifier::subscribe(&self.status, listener)
    }

    /// A handle on a watched collection in the shape `useSyncExternalStore` wants: `subscribe`/`getSnapshot` for its
    /// rows (in the collection's order) and `subscribeRow`/`getRow` for one row. Throws if it is not watched.
    pub fn collection(&self, name: &str) -> Result<JsCollection, JsError> {
        if self.store.with_collection(name, |c| c.is_none()) {
            return Err(JsError::new(&format!("no collection named {name:?} is watched: watch it first")));
        }
        let all = Rc::new(Notifier::default());
        let rows: Rc<RefCell<HashMap<String, Rc<Notifier>>>> = Rc::default();
        let (weak_all, weak_rows, watched) = (Rc::downgrade(&all), Rc::downgrade(&rows), name.to_owned());
        let guard = self.store.on_row(move |collection, change, _| {
            if collection != watched {
                return;
            }
            Notifier::changed(&weak_all);
            let Some(rows) = weak_rows.upgrade() else { return };
            let row = rows.borrow().get(change.key()).cloned();
            if let Some(row) = row {
                Notifier::changed(&Rc::downgrade(&row));
                // A removed row nobody listens to is forgotten.
                if matches!(change, RowChange::Removed { .. }) && row.subscribers.borrow().is_empty() {
                    rows.borrow_mut().remove(change.key());
                }
            }
        });
        // Its state (loaded, stale) is read with the rows: tell the same subscribers when it changes.
        let (weak_all, watched) = (Rc::downgrade(&all), name.to_owned());
        let state_guard = self.store.on_collection_state(move |collection, _| {
            if collection == watched {
                Notifier::changed(&weak_all);
            }
        });
        Ok(JsCollection { store: self.store.clone(), name: name.to_owned(), all, rows, _guards: [guard, state_guard] })
    }

    /// Opens a live view over a watched collection: the rows matching `where`, sorted by `orderBy`, from `offset`, at
    /// most `limit`, kept up to date per row change. Throws if the spec is malformed or the collection is not
    /// watched.
    pub fn view(
        &self,
        collection: &str,
        #[wasm_bindgen(unchecked_param_type = "ViewSpec")] spec: JsValue,
    ) -> Result<JsView, JsError> {
        let spec: ViewSpec = if spec.is_undefined() { ViewSpec::default() } else { from_js(spec, "ViewSpec")? };
        let id = self.store.open_view(collection, spec).map_err(|e| JsError::new(&e.to_string()))?;
        let notifier = Rc::new(Notifier::default());
        let weak = Rc::downgrade(&notifier);
        let guard = self.store.on_view(move |view, _, _| {
            if view == id {
                Notifier::changed(&weak);
            }
        });
        Ok(JsView { store: self.store.clone(), id, notifier, _guard: guard })
    }

    /// Queues a mutation (its optimistic effect shows at once). Resolves with the entity the server wrote; rejects
    /// with a `MutationError` (see `isMutationError`), or an `AbortError` when `options.signal` aborts. Throws at once
    /// if the mutation is malformed.
    #[wasm_bindgen(unchecked_return_type = "Promise<unknown>")]
    pub fn mutate(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Mutation")] mutation: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "MutateOptions")] options: Option<js_sys::Object>,
    ) -> Result<js_sys::Promise, JsError> {
        let mutation = from_js::<Mutation>(document_as_text(mutation), "Mutation")?;
        let signal = options
            .and_then(|o| js_sys::Reflect::get(&o, &"signal".into()).ok())
            .and_then(|s| s.dyn_into::<web_sys::AbortSignal>().ok());
        if let Some(signal) = signal.as_ref().filter(|s| s.aborted()) {
            return Ok(js_sys::Promise::reject(&signal.reason()));
        }
        let future = self.store.mutate(mutation);
        let id = future.id().to_owned();
        let settled = settled(&self.store, future);
        let Some(signal) = signal else { return Ok(settled) };
        // Whichever comes first: the store's answer, or the abort (which also drops the mutation if still queued).
        let store = self.store.clone();
        let aborted = js_sys::Promise::new(&mut |_, reject| {
            let (store, id, signal2) = (store.clone(), id.clone(), signal.clone());
            let on_abort = Closure::once_into_js(move || {
                store.discard(&id).ok();
                report(reject.call1(&JsValue::NULL, &signal2.reason()));
            });
            let listen = web_sys::AddEventListenerOptions::new();
            listen.set_once(true);
            signal
                .add_event_listener_with_callback_and_add_event_listener_options(
                    "abort",
                    on_abort.unchecked_ref(),
                    &listen,
                )
                .ok();
        });
        Ok(js_sys::Promise::race(&js_sys::Array::of2(&settled, &aborted)))
    }
}

/// The subscribers of one thing a JavaScript caller watches (a view, a collection, a row, the status) and its
/// snapshot as last handed out: the same frozen value until the thing changes, then subscribers are told once per
/// microtask however many changes came (what React's `useSyncExternalStore` wants).
#[derive(Default)]
struct Notifier {
    snapshot: RefCell<Option<JsValue>>,
    subscribers: RefCell<Vec<(u32, js_sys::Function)>>,
    next: Cell<u32>,
    /// A notification is queued for the next microtask.
    scheduled: Cell<bool>,
}

impl Notifier {
    /// The thing changed: drop the snapshot and, once per microtask, tell the subscribers.
    fn changed(this: &Weak<Self>) {
        let Some(notifier) = this.upgrade() else { return };
        notifier.snapshot.borrow_mut().take();
        if notifier.subscribers.borrow().is_empty() || notifier.scheduled.replace(true) {
            return;
        }
        let this = this.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let Some(notifier) = this.upgrade() else { return };
            notifier.scheduled.set(false);
            let subscribers: Vec<js_sys::Function> =
                notifier.subscribers.borrow().iter().map(|(_, f)| f.clone()).collect();
            for f in subscribers {
                report(f.call0(&JsValue::NULL));
            }
        });
    }

    /// The cached snapshot, or a fresh one from `make`, frozen and cached.
    fn snapshot(&self, make: impl FnOnce() -> JsValue) -> JsValue {
        if let Some(value) = self.snapshot.borrow().as_ref() {
            return value.clone();
        }
        let value = make();
        if let Some(object) = value.dyn_ref::<js_sys::Object>() {
            js_sys::Object::freeze(object);
        }
        *self.snapshot.borrow_mut() = Some(value.clone());
        value
    }

    /// Adds a subscriber; gives the function that removes it.
    fn subscribe(this: &Rc<Self>, listener: js_sys::Function) -> JsValue {
        let id = this.next.get() + 1;
        this.next.set(id);
        this.subscribers.borrow_mut().push((id, listener));
        let weak = Rc::downgrade(this);
        Closure::<dyn FnMut()>::new(move || {
            if let Some(notifier) = weak.upgrade() {
                notifier.subscribers.borrow_mut().retain(|(i, _)| *i != id);
            }
        })
        .into_js_value()
    }
}

/// A watched collection (`store.collection(name)`): its rows and each row in the shape React's
/// `useSyncExternalStore` wants, snapshots that stay the same until they change.
#[wasm_bindgen(js_name = Collection)]
pub struct JsCollection {
    store: BrowserStore,
    name: String,
    all: Rc<Notifier>,
    rows: Rc<RefCell<HashMap<String, Rc<Notifier>>>>,
    _guards: [ListenerGuard; 2],
}

impl JsCollection {
    fn row_notifier(&self, key: &str) -> Rc<Notifier> {
        self.rows.borrow_mut().entry(key.to_owned()).or_default().clone()
    }
}

#[wasm_bindgen(js_class = Collection)]
impl JsCollection {
    /// The visible rows in the collection's order: the same frozen array until one of them changes.
    #[wasm_bindgen(js_name = getSnapshot, unchecked_return_type = "readonly unknown[]")]
    pub fn get_snapshot(&self) -> JsValue {
        self.all.snapshot(|| {
            self.store.with_collection(&self.name, |c| {
                let rows = c.map(|c| c.keys().iter().filter_map(|k| c.row_ref(k)).collect::<Vec<_>>());
                to_js(&rows.unwrap_or_default())
            })
        })
    }

    /// Calls `listener()` after rows changed, once per microtask; returns a function that stops it.
    #[wasm_bindgen(unchecked_return_type = "Unsubscribe")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "() => void")] listener: js_sys::Function,
    ) -> JsValue {
        Notifier::subscribe(&self.all, listener)
    }

    /// One visible row, or `null`: the same frozen object until this row changes.
    #[wasm_bindgen(js_name = getRow, unchecked_return_type = "unknown")]
    pub fn get_row(&self, key: &str) -> JsValue {
        self.row_notifier(key)
            .snapshot(|| self.store.with_collection(&self.name, |c| to_js(&c.and_then(|c| c.row_ref(key)))))
    }

    /// Calls `listener()` after row `key` changed (appeared, changed, went away), once per microtask; returns a
    /// function that stops it.
    #[wasm_bindgen(js_name = subscribeRow, unchecked_return_type = "Unsubscribe")]
    pub fn subscribe_row(
        &self,
        key: &str,
        #[wasm_bindgen(unchecked_param_type = "() => void")] listener: js_sys::Function,
    ) -> JsValue {
        Notifier::subscribe(&self.row_notifier(key), listener)
    }

    /// Loaded, stale, `lastSeq` and pending updates (`null` once the collection is no longer watched).
    #[wasm_bindgen(unchecked_return_type = "CollectionState | null")]
    pub fn state(&self) -> JsValue {
        to_js(&self.store.with_collection(&self.name, |c| c.map(|c| c.state())))
    }
}

/// A live view (`store.view(collection, spec)`): a filtered, sorted window over a collection, in the shape React's
/// `useSyncExternalStore` wants: `subscribe(listener)` and `getSnapshot()`, the same array until something changed.
#[wasm_bindgen(js_name = View)]
pub struct JsView {
    store: BrowserStore,
    id: u64,
    notifier: Rc<Notifier>,
    _guard: ListenerGuard,
}

#[wasm_bindgen(js_class = View)]
impl JsView {
    /// The rows shown, in order: the same frozen array on every call until the view changes.
    #[wasm_bindgen(js_name = getSnapshot, unchecked_return_type = "readonly unknown[]")]
    pub fn get_snapshot(&self) -> JsValue {
        self.notifier.snapshot(|| self.store.with_view(self.id, |v| to_js(&v.map(|v| v.rows()).unwrap_or_default())))
    }

    /// The keys shown, in order.
    pub fn keys(&self) -> Vec<String> {
        self.store.with_view(self.id, |v| v.map(|v| v.keys()).unwrap_or_default())
    }

    /// Rows shown, rows matching, held, pending updates.
    #[wasm_bindgen(unchecked_return_type = "ViewState")]
    pub fn state(&self) -> JsValue {
        to_js(&self.store.with_view(self.id, |v| v.map(|v| v.state())))
    }

    /// Calls `listener()` after the view changed, once per microtask however many rows moved; returns a function
    /// that stops it.
    #[wasm_bindgen(unchecked_return_type = "Unsubscribe")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "() => void")] listener: js_sys::Function,
    ) -> JsValue {
        Notifier::subscribe(&self.notifier, listener)
    }

    /// Keeps what the view shows as it is (while the user reads or edits); events keep applying underneath.
    pub fn hold(&self) -> Result<(), JsError> {
        self.store.hold_view(self.id).map_err(|e| JsError::new(&e.to_string()))
    }

    /// Shows the net change since `hold()` at once.
    pub fn release(&self) -> Result<(), JsError> {
        self.store.release_view(self.id).map_err(|e| JsError::new(&e.to_string()))
    }
}

impl Drop for JsView {
    fn drop(&mut self) {
        self.store.close_view(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::*;

    wasm_bindgen_test_configure!(run_in_browser);

    /// `onRow` listeners get what the change and the origin's JSON forms (the TypeScript types) say, every kind.
    #[wasm_bindgen_test]
    fn a_row_listener_hears_the_json_forms() {
        let heard = js_sys::Function::new_with_args(
            "collection, change, origin",
            "globalThis.heard = JSON.stringify([collection, change, origin]);",
        );
        let changes = [
            RowChange::Inserted { key: "a".into() },
            RowChange::Updated { key: "b".into() },
            RowChange::Removed { key: "c".into(), expired: true },
            RowChange::Removed { key: "d".into(), expired: false },
        ];
        let origins = [
            RowOrigin::Event { seq: Some(7) },
            RowOrigin::Event { seq: None },
            RowOrigin::Fetch,
            RowOrigin::Local,
            RowOrigin::Restore,
        ];
        for change in &changes {
            for origin in &origins {
                call_row_listener(&heard, &"orders".into(), change, origin);
                let text = js_sys::Reflect::get(&js_sys::global(), &"heard".into()).unwrap().as_string().unwrap();
                let got: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(got, serde_json::json!(["orders", change, origin]), "{change:?} {origin:?}");
            }
        }
    }
}
