// The hooks of @subsignal/react under React 19's development build (react-dom in happy-dom, StrictMode), against a
// stand-in store with the real one's snapshot contract (fake-store.mjs): every getSnapshot is stable (React reports
// an unstable one with console.error), re-renders keep views and snapshots, views are freed on unmount and on a new
// spec, a held view stays put, and useMutation reports errors without throwing.
//
// Run with `node --test` in crates/browser/react after `cargo xtask npm` (which builds target/npm/react);
// SUBSIGNAL_REACT_PACKAGE names another build. `cargo xtask test` runs it.
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Window } from "happy-dom";
import { FakeStore } from "./fake-store.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const built = process.env.SUBSIGNAL_REACT_PACKAGE ?? join(here, "../../../../target/npm/react");
if (!existsSync(join(built, "index.js")) || !existsSync(join(built, "package.json"))) {
  throw new Error(`${built} holds no built @subsignal/react: run \`cargo xtask npm\` (or set SUBSIGNAL_REACT_PACKAGE)`);
}
// Installed where a user's bundler would find it, so that its `import "react"` resolves to this folder's React.
const installed = join(here, "../node_modules/@subsignal/react");
rmSync(installed, { recursive: true, force: true });
mkdirSync(installed, { recursive: true });
cpSync(built, installed, { recursive: true });

// react-dom decides at import whether it has a DOM.
const window = new Window();
globalThis.window = window;
globalThis.document = window.document;
globalThis.navigator ??= window.navigator;
globalThis.IS_REACT_ACT_ENVIRONMENT = true;
const React = await import("react");
const { createRoot } = await import("react-dom/client");
const { StoreProvider, useCollection, useCollectionState, useHistory, useLiveView, useMutation, useRow, useStatus, useStore, useView } =
  await import("@subsignal/react");
const { act, createElement: h, StrictMode } = React;

/** What React and the hooks printed with console.error or console.warn during a test. */
let printed = [];
const original = { error: console.error, warn: console.warn };

before(() => {
  console.error = (...args) => printed.push(args.map(String).join(" "));
  console.warn = (...args) => printed.push(args.map(String).join(" "));
});

afterEach(() => {
  const seen = printed;
  printed = [];
  assert.deepEqual(seen, [], "React printed no warning or error");
});

after(() => {
  Object.assign(console, original);
  window.close();
});

function order(id, status, n = 0) {
  return { id, status, n };
}

/** Renders `element` under StrictMode and a StoreProvider; returns a rerender and an unmount. */
async function mount(store, element) {
  const root = createRoot(document.createElement("div"));
  const wrap = (e) => h(StrictMode, null, h(StoreProvider, { store }, e));
  await act(async () => root.render(wrap(element)));
  return {
    rerender: (e) => act(async () => root.render(wrap(e))),
    unmount: () => act(async () => root.unmount()),
  };
}

const settle = () => act(async () => {});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("every hook's snapshot is stable: re-renders and unrelated changes keep the same objects", async () => {
  const store = new FakeStore();
  store.put(order("a", "OPEN"));
  store.put(order("b", "DONE"));
  const seen = [];
  function Probe({ tick }) {
    const open = useView("orders", { where: { status: "OPEN" } }); // A new spec object on every render.
    const live = useLiveView("orders", { where: { status: "OPEN" } });
    const a = useRow("orders", "a");
    const all = useCollection("orders");
    const state = useCollectionState("orders");
    const status = useStatus();
    seen.push({ tick, open, live, a, all, state, status });
    return h("p", null, open.map((o) => o.id).join(","));
  }
  const app = await mount(store, h(Probe, { tick: 0 }));
  const first = seen.at(-1);
  assert.deepEqual(first.open, [order("a", "OPEN")]);
  assert.deepEqual(first.a, order("a", "OPEN"));
  assert.equal(first.all.length, 2);
  assert.equal(first.status.connection.state, "live");
  const opened = store.viewsOpened;

  await app.rerender(h(Probe, { tick: 1 }));
  const second = seen.at(-1);
  assert.equal(second.tick, 1);
  for (const name of ["open", "live", "a", "all", "state", "status"]) {
    assert.equal(second[name], first[name], `${name} is the same object after a re-render`);
  }
  assert.equal(store.viewsOpened, opened, "an equal spec keeps its views");

  // A change to row b: the view (OPEN only) and row a keep their objects; the collection's rows change.
  await act(async () => store.put(order("b", "DONE", 1)));
  const third = seen.at(-1);
  assert.equal(third.open, first.open, "the view's rows are the same array");
  assert.equal(third.live.rows, first.live.rows);
  assert.equal(third.a, first.a, "row a is the same object");
  assert.notEqual(third.all, first.all, "the collection's rows changed");
  assert.equal(third.all[1].n, 1);

  await act(async () => store.put(order("a", "OPEN", 2)));
  const fourth = seen.at(-1);
  assert.notEqual(fourth.a, first.a, "row a changed");
  assert.equal(fourth.a.n, 2);
  assert.equal(fourth.open[0].n, 2);
  await app.unmount();
});

test("useHistory: null until the history holds a seq, then the same range until it moves", async () => {
  const store = new FakeStore();
  const seen = [];
  function Probe({ tick }) {
    seen.push({ tick, range: useHistory("orders") });
    return h("p", null, String(tick));
  }
  const app = await mount(store, h(Probe, { tick: 0 }));
  assert.equal(seen.at(-1).range, null);
  await act(async () => store.put(order("a", "OPEN")));
  const first = seen.at(-1).range;
  assert.deepEqual(first, { first: 1, last: 1, events: 1, checkpoints: 1 });
  await app.rerender(h(Probe, { tick: 1 }));
  assert.equal(seen.at(-1).range, first, "the same object after a re-render");
  await act(async () => store.put(order("a", "DONE")));
  assert.equal(seen.at(-1).range.last, 2, "it follows the collection's changes");
  await app.unmount();
});

test("views are freed on unmount and on a new spec, under StrictMode's double effects", async () => {
  const store = new FakeStore();
  store.put(order("a", "OPEN"));
  store.put(order("b", "DONE"));
  function List({ status }) {
    const rows = useView("orders", { where: { status } });
    return h("p", null, rows.map((o) => o.id).join(","));
  }
  const app = await mount(store, h(List, { status: "OPEN" }));
  // Views opened by renders that never committed (none expected, but allowed) are freed after a second.
  await sleep(1100);
  await settle();
  assert.equal(store.views.size, 1, "one view is open while mounted");
  const [view] = store.views;
  assert.equal(view.subscribers, 1, "StrictMode's unsubscribe and subscribe again leave one subscriber");

  await app.rerender(h(List, { status: "DONE" }));
  await settle();
  assert.equal(store.views.size, 1, "the new spec's view replaced the old one");
  assert.ok(view.freed, "the old spec's view was freed");

  await app.unmount();
  await settle();
  assert.equal(store.views.size, 0, "no view is left open after unmount");
});

test("a held view stays put until released, and says that changes are waiting", async () => {
  const store = new FakeStore();
  store.put(order("a", "OPEN"));
  const seen = [];
  function Held({ hold }) {
    const view = useLiveView("orders", { where: { status: "OPEN" } }, { hold });
    seen.push(view);
    return null;
  }
  const app = await mount(store, h(Held, { hold: true }));
  assert.equal(seen.at(-1).state.held, true);
  const before = seen.at(-1).rows;
  await act(async () => store.put(order("c", "OPEN")));
  assert.equal(seen.at(-1).rows, before, "the held view shows what it showed");
  assert.equal(seen.at(-1).state.hasPendingUpdates, true, "and says that changes wait");

  await app.rerender(h(Held, { hold: false }));
  await settle();
  const released = seen.at(-1);
  assert.deepEqual(released.rows.map((o) => o.id), ["a", "c"], "release shows the net change");
  assert.equal(released.state.held, false);
  assert.equal(released.state.hasPendingUpdates, false);
  await app.unmount();
});

test("useMutation: pending, then data or error; mutate never throws, mutateAsync rejects", async () => {
  const store = new FakeStore();
  let hook;
  function Create() {
    hook = useMutation({ query: "mutation { createOrder { id } }", resultField: "createOrder", collection: "orders" });
    return null;
  }
  const app = await mount(store, h(Create));
  assert.equal(hook.pending, false);
  const { mutate, mutateAsync } = hook;

  store.nextMutation = { resolve: { id: "o1" } };
  let done;
  await act(async () => {
    done = mutateAsync({ variables: { input: { name: "Ada" } } });
  });
  assert.equal(hook.pending, true, "pending shows while the mutation runs");
  assert.equal(store.getSnapshot().pendingMutations, 1);
  await act(async () => {
    assert.deepEqual(await done, { id: "o1" });
  });
  assert.equal(hook.pending, false);
  assert.deepEqual(hook.data, { id: "o1" });
  assert.equal(hook.error, null);
  const sent = store.mutations[0].mutation;
  assert.equal(sent.query, "mutation { createOrder { id } }", "the hook's mutation...");
  assert.deepEqual(sent.variables, { input: { name: "Ada" } }, "...with the call's fields on top");

  const refused = Object.assign(new Error("email: not an email"), { name: "MutationError", kind: "validation" });
  store.nextMutation = { reject: refused };
  await act(async () => {
    mutate({ variables: {} });
    await sleep(20);
  });
  assert.equal(hook.error, refused, "mutate's failure is in error");
  assert.equal(hook.pending, false);
  await act(async () => {
    await assert.rejects(mutateAsync(), (e) => e === refused);
  });
  await act(async () => hook.reset());
  assert.equal(hook.error, null);
  assert.equal(hook.mutate, mutate, "mutate stays the same function");
  await app.unmount();
});

test("useStore outside a StoreProvider says what to do", async () => {
  let message = "";
  function Lonely() {
    try {
      useStore();
    } catch (e) {
      message = e.message;
    }
    return null;
  }
  const root = createRoot(document.createElement("div"));
  await act(async () => root.render(h(Lonely)));
  assert.match(message, /wrap the app in <StoreProvider/);
  await act(async () => root.unmount());
});
