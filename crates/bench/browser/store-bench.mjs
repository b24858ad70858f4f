// Benchmark 4 (store apply), in one Chromium page: the same subscription events — the text frames subsignal's server
// sends for a `Note` model (`onNoteChanged`) — are fed to
//   - subsignal's store through its npm package's public JS API, over a fake WebSocket that speaks
//     graphql-transport-ws like subsignal's server (the snapshot comes from run.mjs's POST /graphql);
//   - the same through a live view (`store.view`: where + orderBy + limit 50, like TanStack DB's live query) with a
//     subscriber;
//   - Apollo Client's InMemoryCache: a watched `notes` list query, cache.writeFragment + cache.modify per event;
//   - TanStack DB: a collection fed through its sync API (begin/write/commit per event), plain and with a live query
//     (where + orderBy + limit 50) subscribed.
// First N inserts, then M updates spread over the rows. The cost of a phase is the time from the first frame pushed
// to the moment the implementation's reader sees the last event, divided by the events applied. After every phase the
// page checks (untimed) that the implementation holds exactly the rows and versions the events imply, and throws if
// not: a benchmark of a broken apply is worthless.
//
// run.mjs loads this page and calls `window.runStoreBench(options)`; progress goes out through
// `window.benchProgress(row)` when the runner exposes it.
import { ApolloClient, ApolloLink, InMemoryCache, gql } from "bench-apollo";
import { createCollection, createLiveQueryCollection, eq } from "bench-tanstack";

const COLORS = ["YELLOW", "BLUE", "GREEN"];
const EPOCH_MS = Date.UTC(2026, 0, 1);
/** Updates visit row `(j * STRIDE) % rows`: coprime with every row count used, so they spread over the rows. */
const STRIDE = 7919;
const LOREM = "Remember to water the plants, call the plumber about the kitchen sink and book the train tickets";
/** The live view: yellow notes, most recently updated first, 50 of them. */
const VIEW_LIMIT = 50;

// ---------------------------------------------------------------------------------------------------------------
// The fake server: a WebSocket class speaking graphql-transport-ws the way subsignal's server does.

const fake = {
  /** Active subscriptions by operation id: `{ socket, payload }`. */
  subscriptions: new Map(),
  /** Operation ids the client completed (a store completes a subscription when it sees a seq gap). */
  completed: [],
  problems: [],
  opened: 0,
};

class FakeWebSocket extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  constructor(url, protocols) {
    super();
    this.url = String(url);
    const offered = protocols === undefined ? [] : [].concat(protocols);
    this.protocol = offered.includes("graphql-transport-ws") ? "graphql-transport-ws" : "";
    this.readyState = FakeWebSocket.CONNECTING;
    this.binaryType = "blob";
    this.bufferedAmount = 0;
    this.extensions = "";
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    fake.opened += 1;
    setTimeout(() => {
      if (this.readyState !== FakeWebSocket.CONNECTING) return;
      this.readyState = FakeWebSocket.OPEN;
      this.#emit(new Event("open"));
    });
  }

  #emit(event) {
    this[`on${event.type}`]?.(event);
    this.dispatchEvent(event);
  }

  /** A server message, delivered in a later task like a real socket's. */
  #reply(message) {
    setTimeout(() => {
      if (this.readyState === FakeWebSocket.OPEN) this.#emit(new MessageEvent("message", { data: JSON.stringify(message) }));
    });
  }

  /** The hot path: one server frame, delivered now. */
  deliver(text) {
    this.onmessage({ data: text });
  }

  send(text) {
    if (this.readyState !== FakeWebSocket.OPEN) throw new DOMException("the socket is not open", "InvalidStateError");
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      fake.problems.push(`unreadable client frame: ${text}`);
      return;
    }
    switch (message.type) {
      case "connection_init":
        this.#reply({ type: "connection_ack" });
        break;
      case "ping":
        this.#reply({ type: "pong" });
        break;
      case "pong":
        break;
      case "subscribe":
        fake.subscriptions.set(message.id, { socket: this, payload: message.payload });
        break;
      case "complete":
        fake.completed.push(message.id);
        fake.subscriptions.delete(message.id);
        break;
      default:
        fake.problems.push(`unexpected client message: ${text}`);
    }
  }

  close(code = 1000, reason = "") {
    if (this.readyState >= FakeWebSocket.CLOSING) return;
    this.readyState = FakeWebSocket.CLOSED;
    for (const [id, sub] of fake.subscriptions) if (sub.socket === this) fake.subscriptions.delete(id);
    setTimeout(() => this.#emit(new CloseEvent("close", { code, reason, wasClean: true })));
  }
}

window.WebSocket = FakeWebSocket;

// ---------------------------------------------------------------------------------------------------------------
// The workload.

const keyOf = (i) => `note-${String(i).padStart(6, "0")}`;

function note(i, version, seq) {
  return {
    __typename: "Note",
    id: keyOf(i),
    title: `Note ${i} (v${version})`,
    body: `${LOREM} (${i}/${version})`,
    color: COLORS[i % COLORS.length],
    updatedAt: new Date(EPOCH_MS + seq * 1000).toISOString(),
    version,
  };
}

/** `rows` inserts (seq 1..rows), then `updates` updates; `frames(subId)` are the server's `next` frames. */
function workload(rows, updates) {
  const events = [];
  const version = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    version[i] = 1;
    events.push({ seq: i + 1, op: "INSERT", index: i, note: note(i, 1, i + 1) });
  }
  for (let j = 0; j < updates; j++) {
    const i = (j * STRIDE) % rows;
    version[i] += 1;
    const seq = rows + j + 1;
    events.push({ seq, op: "MODIFY", index: i, note: note(i, version[i], seq) });
  }
  const byId = new Map();
  return {
    rows,
    updates,
    events,
    frames(subId) {
      if (!byId.has(subId)) {
        byId.clear(); // one set of strings at a time
        byId.set(
          subId,
          events.map((e) =>
            JSON.stringify({
              type: "next",
              id: subId,
              payload: {
                data: {
                  onNoteChanged: {
                    seq: e.seq,
                    prevSeq: e.seq - 1,
                    op: e.op,
                    key: e.note.id,
                    version: e.note.version,
                    expired: false,
                    note: e.note,
                    clientMutationId: null,
                  },
                },
              },
            }),
          ),
        );
      }
      return byId.get(subId);
    },
  };
}

/** The rows the first `count` events imply: key → note. */
function expectedRows(work, count) {
  const rows = new Map();
  for (let k = 0; k < count; k++) rows.set(work.events[k].note.id, work.events[k].note);
  return rows;
}

/** The live view the rows imply: ids of the yellow notes, newest `updatedAt` first, at most VIEW_LIMIT. */
function expectedView(rows) {
  return [...rows.values()]
    .filter((n) => n.color === "YELLOW")
    .sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : 0))
    .slice(0, VIEW_LIMIT)
    .map((n) => n.id);
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers.

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const channel = new MessageChannel();
const macrotasks = [];
channel.port1.onmessage = () => macrotasks.shift()?.();
/** Yields one macrotask (no 4 ms clamp), so that timers the implementation scheduled can run. */
const yieldTask = () => new Promise((resolve) => { macrotasks.push(resolve); channel.port2.postMessage(0); });

async function waitUntil(what, condition, timeoutMs = 20_000) {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Lets the browser settle between phases: garbage collection when exposed, a pause, a frame. */
async function settle() {
  globalThis.gc?.();
  await sleep(100);
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  await sleep(50);
}

function fail(impl, message) {
  throw new Error(`${impl}: ${message}`);
}

// ---------------------------------------------------------------------------------------------------------------
// The implementations. Each `create()` returns
//   push(text)         the hot path: one server frame (the same text for everyone)
//   reflected(event)   whether a reader sees the event now (cheap)
//   reader()           { size, get(key) } for the untimed checks
//   preload(work, from, to)  applies events [from, to) untimed (inserts skipped by a time budget)
//   view()             the ids of the live view, if there is one
//   check()            extra consistency checks
//   dispose()

const NOTE_FIELDS = "id title body color updatedAt version";
const notesCollection = {
  name: "notes",
  subscription: `subscription($afterSeq: Int) { onNoteChanged(afterSeq: $afterSeq) { seq prevSeq op key version expired clientMutationId note { ${NOTE_FIELDS} } } }`,
  subscriptionField: "onNoteChanged",
  entityField: "note",
  snapshotQuery: `query($limit: Int, $nextToken: String) { listNotes(limit: $limit, nextToken: $nextToken) { items { ${NOTE_FIELDS} } nextToken seq } }`,
  snapshotField: "listNotes",
};

/** Delivers frames [from, to) of `work` on subscription `subId` of the fake `socket`, untimed. */
function deliverAll(socket, subId) {
  return async (work, from, to) => {
    const frames = work.frames(subId);
    for (let k = from; k < to; k++) socket.deliver(frames[k]);
  };
}

/** Fails unless a subsignal collection's counters say exactly `applied` events, with no gap and no duplicate. */
function checkStats(name, stats, applied) {
  if (stats.applied !== applied || stats.gaps !== 0 || stats.duplicates !== 0) {
    fail(name, `stats ${JSON.stringify(stats)} after ${applied} events`);
  }
}

/**
 * subsignal's store through an npm package's public API: the package under test (`/pkg/`), or another build of it
 * that `run.mjs --against DIR` serves under `/pkg-against/`, measured in the same page and run.
 */
function subsignalNpm(name, root, load) {
  let ready = null;
  return {
    name,
    async create() {
      ready ??= load().then(async (module) => {
        await module.default({ module_or_path: `${root}/subsignal_store_bg.wasm` });
        return module.Store;
      });
      const Store = await ready;
      return openStore(name, Store);
    },
  };
}

/** A store of the package's `Store` class on the fake server's notes, live, with the hooks the phases use. */
async function openStore(name, Store) {
  const before = new Set(fake.subscriptions.keys());
  const warnings = [];
  const store = new Store({ httpUrl: `${location.origin}/graphql`, wsUrl: `ws://${location.host}/graphql` });
  // Keep the returned unsubscribe functions: the package drops a listener once its unsubscribe function is
  // garbage collected (wasm-bindgen's closure finalizer drops the Rust guard), so a discarded one goes silent.
  const stopWarnings = store.onWarning((message) => warnings.push(message));
  let rowChanges = 0;
  const stopRows = store.onRow((collection, change) => {
    if (collection === "notes" && change.kind !== "removed") rowChanges += 1;
  });
  store.watch(notesCollection);
  store.connect();
  const mine = () => [...fake.subscriptions].find(([id]) => !before.has(id));
  await waitUntil("the store's snapshot and subscription", () => mine() && store.isLive("notes"));
  const [subId, { socket, payload }] = mine();
  if (!payload.query.includes("onNoteChanged") || payload.variables?.afterSeq !== 0) {
    fail(name, `unexpected subscription ${JSON.stringify(payload)}`);
  }
  const completedBefore = fake.completed.length;
  return {
    store,
    subId,
    push: (text) => socket.deliver(text),
    reflected: (event) => store.row("notes", event.note.id)?.version === event.note.version,
    reader: () => ({ size: store.keys("notes").length, get: (key) => store.row("notes", key) }),
    preload: deliverAll(socket, subId),
    check(applied) {
      checkStats(name, store.stats("notes"), applied);
      if (rowChanges !== applied) fail(name, `${rowChanges} row changes heard for ${applied} events`);
      if (fake.completed.length !== completedBefore) fail(name, "the store completed its subscription (a gap?)");
      if (warnings.length) fail(name, `warnings: ${warnings.join("; ")}`);
    },
    dispose() {
      stopRows();
      stopWarnings();
      store.disconnect();
      store.free();
    },
  };
}

const subsignal = subsignalNpm("subsignal (npm)", "/pkg", () => import("@subsignal/store"));
/** With `?against`: the other build `run.mjs --against DIR` serves, beside the package under test. */
const against = new URLSearchParams(location.search).has("against")
  ? [subsignalNpm("subsignal (npm, --against)", "/pkg-against", () => import("/pkg-against/subsignal_store.js"))]
  : [];

// subsignal through Leptos: crates/bench/leptos, a wasm module whose collection is subsignal-leptos's
// `use_live_collection` (every event decodes its row into a typed struct and sets that row's signal), with one effect
// per row reading its signal, as a rendered row would. Loaded on first use, so the page works without it.
let leptosReady = null;

const leptos = {
  name: "subsignal (Leptos)",
  async create() {
    leptosReady ??= import("/leptos/subsignal_bench_leptos.js").then(async (module) => {
      await module.default({ module_or_path: "/leptos/subsignal_bench_leptos_bg.wasm" });
      return module;
    });
    const { LeptosBench } = await leptosReady;
    const before = new Set(fake.subscriptions.keys());
    const bench = new LeptosBench(`${location.origin}/graphql`, `ws://${location.host}/graphql`, notesCollection);
    const mine = () => [...fake.subscriptions].find(([id]) => !before.has(id));
    await waitUntil("the Leptos store's snapshot and subscription", () => mine() && bench.isLive("notes"));
    const [subId, { socket }] = mine();
    const completedBefore = fake.completed.length;
    // Effect runs the current phase must see before its last event counts as reflected: each row effect runs
    // once after it is made, then once per update of its row (updates of one row between runs coalesce, but a
    // phase's updates touch distinct rows).
    let expectedRuns = 0;
    let baseRuns = 0;
    let watching = false;
    return {
      subId,
      push: (text) => socket.deliver(text),
      phaseEvents(events) {
        const updates = events.filter((e) => e.op === "MODIFY");
        if (!watching && updates.length === events.length) {
          // The update phase starts: every row gets its effect now, untimed (their first runs happen before t0).
          watching = true;
          baseRuns = bench.effectRuns() + bench.watchRows();
        }
        expectedRuns = baseRuns + new Set(updates.map((e) => e.note.id)).size;
      },
      reflected: (event) => bench.version(event.note.id) === event.note.version && bench.effectRuns() >= expectedRuns,
      reader: () => ({ size: bench.size(), get: (key) => bench.row(key) }),
      preload: deliverAll(socket, subId),
      check(applied) {
        checkStats(leptos.name, bench.stats("notes"), applied);
        if (fake.completed.length !== completedBefore) fail(leptos.name, "the store completed its subscription (a gap?)");
      },
      dispose() {
        bench.dispose();
      },
    };
  },
};

const NOTES_QUERY = gql`query Notes { notes { ${NOTE_FIELDS} } }`;
const NOTE_FRAGMENT = gql`fragment NoteFields on Note { ${NOTE_FIELDS} }`;

const apollo = {
  name: "Apollo InMemoryCache",
  async create() {
    const cache = new InMemoryCache();
    const client = new ApolloClient({ cache, link: ApolloLink.empty() });
    cache.writeQuery({ query: NOTES_QUERY, data: { notes: [] } });
    let latest = null;
    const errors = [];
    const subscription = client.watchQuery({ query: NOTES_QUERY, fetchPolicy: "cache-only" }).subscribe({
      next: (result) => {
        if (result.data?.notes) latest = result.data.notes;
      },
      error: (e) => errors.push(String(e)),
    });
    await waitUntil("the watched notes query", () => Array.isArray(latest));
    return {
      // What an Apollo app does with a subscription event: append a new row's reference to the list, or write the
      // updated entity (normalization updates every query that shows it).
      push(text) {
        const change = JSON.parse(text).payload.data.onNoteChanged;
        if (change.op === "INSERT") {
          cache.batch({
            update(c) {
              const ref = c.writeFragment({ fragment: NOTE_FRAGMENT, data: change.note });
              c.modify({ id: "ROOT_QUERY", fields: { notes: (existing = []) => [...existing, ref] } });
            },
          });
        } else if (change.op === "MODIFY") {
          cache.writeFragment({ fragment: NOTE_FRAGMENT, data: change.note });
        }
      },
      reflected(event) {
        const row = latest?.[event.index];
        return row?.id === event.note.id && row.version === event.note.version;
      },
      reader() {
        const rows = new Map(latest.map((row) => [row.id, row]));
        if (rows.size !== latest.length) fail(apollo.name, "duplicate rows in the watched list");
        return { size: latest.length, get: (key) => rows.get(key) };
      },
      async preload(work, from, to) {
        // One bulk write of the whole list, as an app's initial query result would be.
        const notes = work.events.slice(0, to).map((e) => e.note);
        cache.writeQuery({ query: NOTES_QUERY, data: { notes } });
      },
      check() {
        if (errors.length) fail(apollo.name, errors.join("; "));
      },
      dispose() {
        subscription.unsubscribe();
        client.stop();
      },
    };
  },
};

let tanstackIds = 0;

function tanstack(live) {
  const name = live ? "TanStack DB live query" : "TanStack DB collection";
  return {
    name,
    async create() {
      const id = `notes-${++tanstackIds}`;
      let sync = null;
      const notes = createCollection({
        id,
        getKey: (n) => n.id,
        startSync: true,
        sync: {
          sync: (params) => {
            sync = params;
            params.markReady();
          },
          rowUpdateMode: "full",
        },
      });
      const subscriptions = [];
      let view = null;
      if (live) {
        view = createLiveQueryCollection({
          id: `${id}-view`,
          startSync: true,
          query: (q) =>
            q
              .from({ note: notes })
              .where(({ note }) => eq(note.color, "YELLOW"))
              .orderBy(({ note }) => note.updatedAt, "desc")
              .limit(VIEW_LIMIT),
        });
        subscriptions.push(view.subscribeChanges(() => {}));
        await view.toArrayWhenReady();
      } else {
        subscriptions.push(notes.subscribeChanges(() => {}));
      }
      await notes.stateWhenReady();
      if (!sync) fail(name, "the sync function did not run");
      // The last yellow event pushed: the view must show it.
      let lastYellow = null;
      return {
        push(text) {
          const change = JSON.parse(text).payload.data.onNoteChanged;
          sync.begin();
          sync.write({ type: change.op === "INSERT" ? "insert" : "update", value: change.note });
          sync.commit();
        },
        reflected(event) {
          if (notes.get(event.note.id)?.version !== event.note.version) return false;
          return !live || lastYellow === null || view.get(lastYellow.id)?.version === lastYellow.version;
        },
        /** Remembers, untimed, which event the view must show at the end of a phase. */
        phaseEvents(events) {
          lastYellow = null;
          for (let k = events.length - 1; k >= 0; k--) {
            if (events[k].note.color === "YELLOW") {
              lastYellow = events[k].note;
              break;
            }
          }
        },
        reader: () => ({ size: notes.size, get: (key) => notes.get(key) }),
        async preload(work, from, to) {
          sync.begin();
          for (let k = from; k < to; k++) sync.write({ type: "insert", value: work.events[k].note });
          sync.commit();
        },
        view: live ? () => view.toArray.map((n) => n.id) : null,
        check() {},
        dispose() {
          for (const s of subscriptions) s.unsubscribe();
          view?.cleanup();
          notes.cleanup();
        },
      };
    },
  };
}

// subsignal's store with a live view over the notes, the same as TanStack DB's live query (yellow notes, newest
// `updatedAt` first, VIEW_LIMIT of them), with a subscriber as a framework would have: what a view costs per event,
// at every collection size (its index makes it O(log n)).
const subsignalView = {
  name: "subsignal view (npm)",
  async create() {
    const base = await subsignal.create();
    const view = base.store.view("notes", { where: { color: "YELLOW" }, orderBy: ["updatedAt desc"], limit: VIEW_LIMIT });
    let notified = 0;
    const stop = view.subscribe(() => { notified += 1; });
    return {
      ...base,
      view: () => view.getSnapshot().map((n) => n.id),
      check(applied) {
        base.check(applied);
        if (applied > 0 && notified === 0) fail(subsignalView.name, "the view's subscriber heard nothing");
      },
      dispose() {
        stop();
        view.free();
        base.dispose();
      },
    };
  },
};

const IMPLS = [subsignal, ...against, leptos, subsignalView, apollo, tanstack(false), tanstack(true)];

// ---------------------------------------------------------------------------------------------------------------
// Phases and checks.

/** Pushes frames [from, to) until done or out of budget; returns the events applied and the time until reflected. */
async function runPhase(impl, instance, work, frames, from, to, budgetMs) {
  instance.phaseEvents?.(work.events.slice(from, to));
  await settle();
  const t0 = performance.now();
  let k = from;
  while (k < to) {
    instance.push(frames[k]);
    k += 1;
    if (performance.now() - t0 > budgetMs) break;
  }
  const last = work.events[k - 1];
  if (k < to) instance.phaseEvents?.(work.events.slice(from, k));
  const deadline = t0 + budgetMs + 60_000;
  while (!instance.reflected(last)) {
    if (performance.now() > deadline) fail(impl.name, `event seq ${last.seq} never became visible`);
    await yieldTask();
  }
  const ms = performance.now() - t0;
  return { applied: k - from, ms };
}

/** Checks, untimed, that the implementation shows exactly the rows the first `count` events imply. */
function verify(impl, instance, work, count) {
  const rows = expectedRows(work, count);
  const reader = instance.reader();
  if (reader.size !== rows.size) fail(impl.name, `holds ${reader.size} rows, expected ${rows.size} after ${count} events`);
  // Every row up to 2000 rows; beyond, a spread sample plus every row the last 500 events touched.
  const keys = new Set();
  const step = Math.max(1, Math.floor(rows.size / 2000));
  let i = 0;
  for (const key of rows.keys()) if (i++ % step === 0) keys.add(key);
  for (let k = Math.max(0, count - 500); k < count; k++) keys.add(work.events[k].note.id);
  for (const key of keys) {
    const want = rows.get(key);
    const got = reader.get(key);
    if (!got) fail(impl.name, `row ${key} is missing`);
    for (const field of ["id", "title", "body", "color", "updatedAt", "version"]) {
      if (got[field] !== want[field]) {
        fail(impl.name, `row ${key}: ${field} is ${JSON.stringify(got[field])}, expected ${JSON.stringify(want[field])}`);
      }
    }
  }
  if (instance.view) {
    const got = instance.view();
    const want = expectedView(rows);
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      fail(impl.name, `live view shows ${got.slice(0, 5).join(",")}… (${got.length}), expected ${want.slice(0, 5).join(",")}… (${want.length})`);
    }
  }
  instance.check(count);
}

const round = (x) => Math.round(x * 100) / 100;

/** One run of `work` on a new instance of `impl`: its insert row and its update row. */
async function runSize(impl, work, budgetMs) {
  const rows = work.rows;
  // A phase's row of the report: `planned` events, of which `run.applied` fit in the budget, in `run.ms`.
  const row = (phase, run, planned) => ({
    impl: impl.name,
    rows,
    phase,
    events: run.applied,
    us_per_event: round((run.ms * 1000) / run.applied),
    sampled: run.applied < planned,
    ms: round(run.ms),
    planned,
  });
  await settle();
  const instance = await impl.create();
  try {
    const frames = work.frames(instance.subId ?? "s1");
    // Inserts.
    const ins = await runPhase(impl, instance, work, frames, 0, rows, budgetMs);
    verify(impl, instance, work, ins.applied);
    const insert = row("insert", ins, rows);
    if (ins.applied < rows) {
      await instance.preload(work, ins.applied, rows);
      await waitUntil(`${impl.name} to show the preloaded rows`, () => instance.reflected(work.events[rows - 1]), 120_000);
      verify(impl, instance, work, rows);
    }
    // Updates.
    const upd = await runPhase(impl, instance, work, frames, rows, rows + work.updates, budgetMs);
    verify(impl, instance, work, rows + upd.applied);
    const update = row("update", upd, work.updates);
    return { insert, update };
  } finally {
    instance.dispose();
  }
}

/**
 * Runs every implementation at every size. `options`: `{ sizes: [1000, …], maxUpdates, budgetMs, repeats,
 * warmupRows, warmupMs, impls?: [names] }`; each size gets `min(rows, maxUpdates)` updates, and each (implementation, size, phase)
 * at most `budgetMs` of events, after an untimed warm-up (`warmupRows` inserts and as many updates, at most
 * `warmupMs` per phase); each run is repeated up to `repeats` times within `budgetMs`, and the median reported.
 * Returns the `store` rows of the report.
 */
async function runStoreBench({ sizes, maxUpdates, budgetMs, repeats = 1, warmupRows = 1000, warmupMs = 1000, impls }) {
  const report = (row) => window.benchProgress?.(row);
  const chosen = impls ? IMPLS.filter((i) => impls.includes(i.name)) : IMPLS;
  const results = [];
  // Warm-up, untimed: every implementation runs a small workload first, so that no figure includes compiling its
  // code (JavaScript JIT tiers, WebAssembly's baseline-to-optimized tier-up).
  const warm = workload(warmupRows, warmupRows);
  for (const impl of chosen) {
    const instance = await impl.create();
    try {
      const frames = warm.frames(instance.subId ?? "s1");
      const ins = await runPhase(impl, instance, warm, frames, 0, warm.rows, warmupMs);
      if (ins.applied < warm.rows) {
        await instance.preload(warm, ins.applied, warm.rows);
        await waitUntil(`${impl.name} to show the preloaded rows`, () => instance.reflected(warm.events[warm.rows - 1]));
      }
      await runPhase(impl, instance, warm, frames, warm.rows, warm.events.length, warmupMs);
    } finally {
      instance.dispose();
    }
    report({ impl: impl.name, warmup: true });
  }
  for (const rows of sizes) {
    const work = workload(rows, Math.min(rows, maxUpdates));
    for (const impl of chosen) {
      // A run of a few milliseconds is at the mercy of one garbage collection: each run is repeated, on a new
      // instance, up to `repeats` times while the repeats so far took less than `budgetMs`, and the median run of
      // each phase is reported (a peer that needs its whole budget once runs once).
      const runs = { insert: [], update: [] };
      const began = performance.now();
      while (runs.insert.length < repeats && (runs.insert.length === 0 || performance.now() - began < budgetMs)) {
        const { insert, update } = await runSize(impl, work, budgetMs);
        runs.insert.push(insert);
        runs.update.push(update);
      }
      for (const phase of ["insert", "update"]) {
        const sorted = runs[phase].sort((a, b) => a.us_per_event - b.us_per_event);
        const median = { ...sorted[Math.floor((sorted.length - 1) / 2)], runs: sorted.length };
        results.push(median);
        report(median);
      }
    }
  }
  if (fake.problems.length) throw new Error(`fake server: ${fake.problems.join("; ")}`);
  return results;
}

window.runStoreBench = runStoreBench;
window.benchInfo = () => ({ crossOriginIsolated, userAgent: navigator.userAgent, impls: IMPLS.map((i) => i.name) });
document.getElementById("status").textContent = "ready";
window.benchReady = true;
