// A stand-in for @subsignal/store's `Store` in plain JavaScript, with the contract the hooks rely on: snapshots
// (a view's rows, a collection's rows, one row, the status) are frozen and stay the same object until they change;
// `state()` builds a new object on every call; listeners are told once per microtask. It counts the views it opened
// and freed, so that tests can see leaks.

/** Subscribers of one thing and its snapshot as last handed out, like the store's `Notifier`. */
class Notifier {
  #snapshot = undefined;
  #subscribers = new Set();
  #scheduled = false;

  changed() {
    this.#snapshot = undefined;
    if (this.#subscribers.size === 0 || this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      for (const f of [...this.#subscribers]) f();
    });
  }

  snapshot(make) {
    if (this.#snapshot === undefined) this.#snapshot = Object.freeze(make());
    return this.#snapshot;
  }

  subscribe(listener) {
    const entry = (...args) => listener(...args);
    this.#subscribers.add(entry);
    return () => this.#subscribers.delete(entry);
  }

  get subscribers() {
    return this.#subscribers.size;
  }
}

const matches = (row, where) => Object.entries(where ?? {}).every(([field, value]) => row[field] === value);

class FakeView {
  #store;
  #spec;
  #notifier = new Notifier();
  #frozen = null;
  /** What the view showed when its subscribers were last told, to tell only when that changes. */
  #shown = "[]";
  freed = false;

  constructor(store, spec) {
    this.#store = store;
    this.#spec = spec;
    this.#shown = JSON.stringify(this.#current());
  }

  #current() {
    return [...this.#store.rowsByKey.values()].filter((row) => matches(row, this.#spec.where));
  }

  /** A row changed in the collection. */
  touched() {
    const shown = JSON.stringify(this.#current());
    if (this.#frozen || shown === this.#shown) return;
    this.#shown = shown;
    this.#notifier.changed();
  }

  getSnapshot() {
    this.#alive();
    return this.#frozen ?? this.#notifier.snapshot(() => this.#current());
  }

  subscribe(listener) {
    this.#alive();
    return this.#notifier.subscribe(listener);
  }

  state() {
    this.#alive();
    const current = this.#current();
    const held = this.#frozen !== null;
    const pending = held && JSON.stringify(current) !== JSON.stringify(this.#frozen);
    return { loaded: true, stale: false, len: (this.#frozen ?? current).length, total: current.length, held, hasPendingUpdates: pending };
  }

  hold() {
    this.#alive();
    this.#frozen ??= this.getSnapshot();
  }

  release() {
    this.#alive();
    if (!this.#frozen) return;
    this.#frozen = null;
    this.#shown = JSON.stringify(this.#current());
    this.#notifier.changed();
  }

  get subscribers() {
    return this.#notifier.subscribers;
  }

  free() {
    this.#alive();
    this.freed = true;
    this.#store.views.delete(this);
  }

  #alive() {
    if (this.freed) throw new Error("null pointer passed to rust (a freed view was used)");
  }
}

class FakeCollection {
  #store;
  #all = new Notifier();
  #rows = new Map();

  constructor(store) {
    this.#store = store;
  }

  changed(key) {
    this.#all.changed();
    this.#rows.get(key)?.changed();
  }

  #row(key) {
    let notifier = this.#rows.get(key);
    if (!notifier) this.#rows.set(key, (notifier = new Notifier()));
    return notifier;
  }

  getSnapshot() {
    return this.#all.snapshot(() => [...this.#store.rowsByKey.values()]);
  }

  subscribe(listener) {
    return this.#all.subscribe(listener);
  }

  getRow(key) {
    const row = this.#store.rowsByKey.get(key);
    return row === undefined ? null : this.#row(key).snapshot(() => ({ ...row }));
  }

  subscribeRow(key, listener) {
    return this.#row(key).subscribe(listener);
  }

  state() {
    return { loaded: true, stale: false, lastSeq: this.#store.seq, hasPendingUpdates: false };
  }
}

/** One watched collection, `orders`, keyed by `id`. */
export class FakeStore {
  rowsByKey = new Map();
  seq = 0;
  views = new Set();
  viewsOpened = 0;
  collectionsOpened = 0;
  /** What the next `mutate` does: resolve with a row, or reject with an error. */
  nextMutation = { resolve: { id: "new" } };
  mutations = [];
  #collections = [];
  #status = new Notifier();
  #pending = 0;

  put(row) {
    this.rowsByKey.set(row.id, row);
    this.#changed(row.id);
  }

  remove(key) {
    this.rowsByKey.delete(key);
    this.#changed(key);
  }

  #changed(key) {
    this.seq += 1;
    for (const c of this.#collections) c.changed(key);
    for (const v of this.views) v.touched();
  }

  collection(name) {
    if (name !== "orders") throw new Error(`no collection named "${name}" is watched: watch it first`);
    this.collectionsOpened += 1;
    const collection = new FakeCollection(this);
    this.#collections.push(collection);
    return collection;
  }

  view(name, spec = {}) {
    if (name !== "orders") throw new Error(`unknown collection ${name}`);
    const view = new FakeView(this, spec);
    this.views.add(view);
    this.viewsOpened += 1;
    return view;
  }

  /** Like the store's: a new object on every call, `null` before any change (the snapshot has not caught up). */
  history(name) {
    if (name !== "orders") throw Object.assign(new Error(`collection \`${name}\` keeps no history`), { name: "HistoryError", kind: "disabled" });
    return this.seq === 0 ? null : { first: 1, last: this.seq, events: this.seq, checkpoints: 1 };
  }

  getSnapshot() {
    return this.#status.snapshot(() => ({ connection: { state: "live" }, pendingMutations: this.#pending }));
  }

  subscribe(listener) {
    return this.#status.subscribe(listener);
  }

  mutate(mutation, options) {
    this.mutations.push({ mutation, options });
    const { resolve, reject } = this.nextMutation;
    this.#pending += 1;
    this.#status.changed();
    return new Promise((ok, fail) => {
      setTimeout(() => {
        this.#pending -= 1;
        this.#status.changed();
        if (reject) fail(reject);
        else ok(resolve);
      }, 5);
    });
  }
}
