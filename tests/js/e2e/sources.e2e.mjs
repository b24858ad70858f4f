// The store against APIs people already have, through the npm package in Debian's headless Chromium:
// - entity events from subsignal's own generated onCreateNote/onUpdateNote/onDeleteNote (examples/notes), over
//   graphql-transport-ws and over the AppSync real-time protocol (/graphql/realtime);
// - entity events and a live query from a Node graphql-ws + graphql-js server with an in-memory pub/sub (peer.mjs);
// - entity events from AWS's own AppSync simulator (amplify-appsync-simulator, ../appsync-simulator) serving the API
//   Amplify generates for a `@model` type with conflict detection: `_version`, `_deleted`, listTodos and syncTodos.
// Each store reaches the server through `subsignal netsim`, which cuts every connection mid-test; writes continue
// meanwhile. Each test waits until the store's rows equal a fresh list from the server, and checks that no row ever
// showed an older version after a newer one. Run by `cargo xtask test-browser`, which sets SUBSIGNAL_BIN,
// SUBSIGNAL_NPM_PACKAGE and CHROMIUM; a missing one fails the test.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { launchChromium, need, startNetsim, Subsignal } from "./subsignal.mjs";
import { startPeer } from "./peer.mjs";
import { startSimulator } from "../appsync-simulator/simulator.mjs";

const notesSchema = fileURLToPath(new URL("../../../examples/notes/schema.graphql", import.meta.url));
const NOTE = "id owner title version";
let site, server, peer, browser, serverNet, peerNet, simulator, simulatorNet;
const problems = [];

before(async () => {
  site = mkdtempSync(join(tmpdir(), "subsignal-sources-"));
  cpSync(need("SUBSIGNAL_NPM_PACKAGE"), join(site, "node_modules/@subsignal/store"), { recursive: true });
  writeFileSync(join(site, "index.html"), `<!doctype html><meta charset="utf-8"><title>sources</title>
<script type="importmap">{ "imports": { "@subsignal/store": "./node_modules/@subsignal/store/subsignal_store.js" } }</script>
<script type="module">
  import init, { Store } from "@subsignal/store";
  await init();
  // One store per test: its collections, and every version each row has shown, in order.
  window.open_store = (options, collections) => {
    const store = new Store(options);
    const versions = {};
    window.changes = {};
    window.keys = new Set();
    store.onRow((collection, change) => {
      window.changes[collection] = (window.changes[collection] ?? 0) + 1;
      window.keys.add(change.key);
      const row = store.row(collection, change.key);
      if (row) (versions[collection + "/" + change.key] ??= []).push(row.version ?? row._version);
    });
    for (const c of collections) store.watch(c);
    store.connect();
    window.store = store;
    window.versions = versions;
  };
  window.ready = true;
</script>`);
  server = new Subsignal({ web: site, args: ["--schema", notesSchema] });
  await server.start();
  serverNet = await startNetsim({ upstream: server.addr });
  peer = await startPeer();
  peerNet = await startNetsim({ upstream: peer.addr });
  simulator = await startSimulator();
  simulatorNet = await startNetsim({ upstream: simulator.addr });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await serverNet?.stop();
  await peerNet?.stop();
  await peer?.stop();
  await simulatorNet?.stop();
  await simulator?.stop();
  await server?.stop();
  if (site) rmSync(site, { recursive: true, force: true });
});

async function openPage(origin) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console error: ${m.text()}`); });
  await page.goto(`${origin}/index.html`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 20_000 });
  return page;
}

async function token(user) {
  return (await (await fetch(`${server.http}/dev/token?user=${user}`)).json()).token;
}

/** A GraphQL request to subsignal as `user` (not through the netsim: another client's writes). */
async function notes(user, query, variables) {
  const res = await fetch(`${server.http}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${await token(user)}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await res.json();
  assert.ok(!body.errors, JSON.stringify(body.errors));
  return body.data;
}

/** Every note, through listNotes's pages, as [id, title, version]. */
async function listNotes() {
  const rows = [];
  let nextToken = null;
  do {
    const page = (await notes("alice", `query($t: String) { listNotes(limit: 2, nextToken: $t) { items { ${NOTE} } nextToken } }`, { t: nextToken })).listNotes;
    rows.push(...page.items.map((n) => [n.id, n.title, n.version]));
    nextToken = page.nextToken;
  } while (nextToken);
  return rows.sort((a, b) => a[0].localeCompare(b[0]));
}

/** Waits until the page's collection shows exactly `expected()` (re-read on every try). */
async function converges(page, collection, expected) {
  const deadline = Date.now() + 30_000;
  let shown, want;
  while (Date.now() < deadline) {
    shown = await page.evaluate((c) => window.store.rows(c).map((r) => [r.id, r.title, r.version ?? r._version]), collection);
    want = await expected();
    if (JSON.stringify(shown.sort((a, b) => a[0].localeCompare(b[0]))) === JSON.stringify(want)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(shown, want, `${collection} did not converge on the server's rows`);
}

async function neverWentBack(page) {
  const versions = await page.evaluate(() => window.versions);
  for (const [row, seen] of Object.entries(versions)) {
    assert.ok(seen.every((v, i) => i === 0 || v >= seen[i - 1]), `${row} went back in version: ${seen}`);
  }
}

const noteSource = {
  name: "notes",
  source: "entityEvents",
  subscriptions: [
    { document: `subscription { onCreateNote { ${NOTE} } }`, field: "onCreateNote", action: "upsert" },
    { document: `subscription { onUpdateNote { ${NOTE} } }`, field: "onUpdateNote", action: "upsert" },
    { document: `subscription { onDeleteNote { ${NOTE} } }`, field: "onDeleteNote", action: "remove" },
  ],
  list: { document: `query($limit: Int, $nextToken: String) { listNotes(limit: $limit, nextToken: $nextToken) { items { ${NOTE} } nextToken } }`, field: "listNotes" },
  pageSize: 2,
};

const create = (title) => notes("alice", `mutation($t: String!) { createNote(input: {title: $t, color: YELLOW}) { id } }`, { t: title }).then((d) => d.createNote.id);
const rename = (id, title) => notes("alice", `mutation($id: ID!, $t: String!) { updateNote(input: {id: $id, title: $t}) { id } }`, { id, t: title });
const remove = (id) => notes("alice", `mutation($id: ID!) { deleteNote(input: {id: $id}) { id } }`, { id });

for (const protocol of ["graphql-transport-ws", "appsync"]) {
  test(`entity events from subsignal's onCreateNote/onUpdateNote/onDeleteNote over ${protocol} converge across a cut connection`, async () => {
    const base = `http://${serverNet.addr}`;
    const page = await openPage(base);
    const options = {
      httpUrl: `${base}/graphql`,
      wsUrl: `ws://${serverNet.addr}/graphql`,
      token: await token("bob"),
      protocol,
      realtimeUrl: `ws://${serverNet.addr}/graphql/realtime`,
    };
    const first = await create(`${protocol} first`);
    await page.evaluate(([o, c]) => window.open_store(o, [c]), [options, noteSource]);
    assert.equal(await page.evaluate(() => window.store.guarantee("notes")), "converges");
    await converges(page, "notes", listNotes);
    // Live: another client's create, renames and a delete.
    const second = await create(`${protocol} second`);
    await rename(first, `${protocol} first, renamed`);
    await rename(second, `${protocol} second, renamed`);
    await remove(first);
    await converges(page, "notes", listNotes);
    // Keys reach onRow exactly as spelled: non-ASCII, and longer than the short ASCII keys the listener's fast path
    // decodes itself.
    const odd = [`${protocol}-ключ-✓`, `${protocol}-${"k".repeat(70)}`];
    for (const i of odd) await notes("alice", `mutation($i: ID!) { createNote(input: {id: $i, title: "odd", color: YELLOW}) { id } }`, { i });
    await page.waitForFunction((ids) => ids.every((id) => window.keys.has(id)), odd, { timeout: 20_000 });
    // Cut every connection; write while the store reconnects; it re-lists and converges.
    await fetch(`${serverNet.control}/reset`, { method: "POST" });
    await rename(second, `${protocol} second, while cut`);
    const third = await create(`${protocol} third`);
    await converges(page, "notes", listNotes);
    await rename(third, `${protocol} third, renamed`);
    await converges(page, "notes", listNotes);
    const stats = await page.evaluate(() => window.store.stats("notes"));
    assert.ok(stats.resyncs >= 1 && stats.events >= 4, JSON.stringify(stats));
    await neverWentBack(page);
    await page.evaluate(() => window.store.disconnect());
    await page.close();
  });
}

test("entity events and a live query from a Node graphql-ws server converge across a cut connection", async () => {
  const page = await openPage(server.http);
  const TODO = "id title version";
  const todos = {
    name: "todos",
    source: "entityEvents",
    subscriptions: [
      { document: `subscription { onCreateTodo { ${TODO} } }`, field: "onCreateTodo", action: "upsert" },
      { document: `subscription { onUpdateTodo { ${TODO} } }`, field: "onUpdateTodo", action: "upsert" },
      { document: `subscription { onDeleteTodo { ${TODO} } }`, field: "onDeleteTodo", action: "remove" },
    ],
    list: { document: `query($limit: Int, $nextToken: String) { listTodos(limit: $limit, nextToken: $nextToken) { items { ${TODO} } nextToken } }`, field: "listTodos" },
    pageSize: 2,
  };
  const live = { name: "live", source: "liveQuery", subscription: `subscription { todos { ${TODO} } }`, subscriptionField: "todos" };
  const options = { httpUrl: `http://${peerNet.addr}/graphql`, wsUrl: `ws://${peerNet.addr}/graphql` };
  const mutate = (query, variables) => peer.gql(query, variables).then((r) => { assert.ok(!r.errors, JSON.stringify(r.errors)); return r.data; });
  const add = (title) => mutate(`mutation($t: String!) { createTodo(title: $t) { id } }`, { t: title }).then((d) => d.createTodo.id);
  const retitle = (id, title) => mutate(`mutation($id: ID!, $t: String!) { updateTodo(id: $id, title: $t) { id } }`, { id, t: title });
  const drop = (id) => mutate(`mutation($id: ID!) { deleteTodo(id: $id) { id } }`, { id });
  const truth = async () => peer.list().map((t) => [t.id, t.title, t.version]);

  const a = await add("a");
  await page.evaluate(([o, c]) => window.open_store(o, c), [options, [todos, live]]);
  await converges(page, "todos", truth);
  await converges(page, "live", truth);
  const b = await add("b");
  await retitle(a, "a2");
  await drop(b);
  const c = await add("c");
  await converges(page, "todos", truth);
  await converges(page, "live", truth);
  await fetch(`${peerNet.control}/reset`, { method: "POST" });
  await retitle(c, "c while cut");
  await drop(a);
  await add("d");
  await converges(page, "todos", truth);
  await converges(page, "live", truth);
  // A live query pushes the whole list, but only the row that changed is published.
  const before = await page.evaluate(() => ({ ...window.changes }));
  await retitle(c, "c again");
  await converges(page, "live", truth);
  await converges(page, "todos", truth);
  const after = await page.evaluate(() => ({ ...window.changes }));
  assert.equal(after.live - before.live, 1, "one row change for one changed row of the live list");
  assert.equal(after.todos - before.todos, 1);
  await neverWentBack(page);
  await page.evaluate(() => window.store.disconnect());
  await page.close();
});

test("entity events from AWS's AppSync simulator (an Amplify @model API) converge across a cut connection, by list and by delta sync", async () => {
  const page = await openPage(server.http);
  const TODO = "id title done _version _deleted _lastChangedAt";
  const subscriptions = ["Create", "Update", "Delete"].map((op) => ({
    document: `subscription { on${op}Todo { ${TODO} } }`, field: `on${op}Todo`, action: op === "Delete" ? "remove" : "upsert",
  }));
  const list = { document: `query($limit: Int, $nextToken: String) { listTodos(limit: $limit, nextToken: $nextToken) { items { ${TODO} } nextToken } }`, field: "listTodos" };
  const delta = { document: `query($lastSync: AWSTimestamp, $limit: Int, $nextToken: String) { syncTodos(lastSync: $lastSync, limit: $limit, nextToken: $nextToken) { items { ${TODO} } nextToken startedAt } }`, field: "syncTodos" };
  const listed = { name: "listed", source: "entityEvents", subscriptions, list, pageSize: 2 };
  const synced = { name: "synced", source: "entityEvents", subscriptions, list, delta, pageSize: 2 };
  const options = {
    protocol: "appsync",
    httpUrl: `http://${simulatorNet.addr}/graphql`,
    wsUrl: `ws://${simulatorNet.addr}/graphql`,
    realtimeUrl: `ws://${simulatorNet.addr}/graphql`,
    auth: { "x-api-key": simulator.apiKey },
  };
  const mutate = (query, variables) => simulator.gql(query, variables).then((r) => { assert.ok(!r.errors, JSON.stringify(r.errors)); return r.data; });
  const add = (title) => mutate(`mutation($t: String!) { createTodo(input: {title: $t}) { id } }`, { t: title }).then((d) => d.createTodo.id);
  const retitle = (id, title) => mutate(`mutation($id: ID!, $t: String!) { updateTodo(input: {id: $id, title: $t}) { id } }`, { id, t: title });
  const drop = (id) => mutate(`mutation($id: ID!) { deleteTodo(input: {id: $id}) { id } }`, { id });
  const truth = async () => (await simulator.list()).map((t) => [t.id, t.title, t._version]);

  const a = await add("a");
  const b = await add("b");
  await page.evaluate(([o, c]) => window.open_store(o, c), [options, [listed, synced]]);
  for (const name of ["listed", "synced"]) await converges(page, name, truth);
  await retitle(a, "a2");
  await drop(b);
  const c = await add("c");
  await retitle(c, "c2");
  for (const name of ["listed", "synced"]) await converges(page, name, truth);
  // Cut every connection; write meanwhile (a rename, a delete, a create): a re-list and a delta sync catch up.
  const deltasBefore = await simulator.deltas();
  await fetch(`${simulatorNet.control}/reset`, { method: "POST" });
  await retitle(c, "c while cut");
  await drop(a);
  await add("d");
  for (const name of ["listed", "synced"]) await converges(page, name, truth);
  assert.ok((await simulator.deltas()) > deltasBefore, "the synced collection caught up through syncTodos(lastSync)");
  const stats = await page.evaluate(() => [window.store.stats("listed"), window.store.stats("synced")]);
  for (const s of stats) assert.ok(s.resyncs >= 1 && s.events >= 4, JSON.stringify(s));
  await neverWentBack(page);
  await page.evaluate(() => window.store.disconnect());
  await page.close();
});

test("no page errors", () => {
  assert.deepEqual(problems, []);
});
