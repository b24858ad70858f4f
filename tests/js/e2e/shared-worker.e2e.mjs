// Shared mode's primary host (issue 18, `shared: "worker"`; `shared: true` picks it where `SharedWorker` exists) with
// the npm package in Debian's headless Chromium: the store runs in a `SharedWorker` (the package's
// `subsignal_store_worker.js`), the pages of one browser context attach to it over a `MessagePort`. The site (the page
// and the package) is served by the server itself, so that the worker's script loads as the page's does. Checks:
// three tabs hold one WebSocket between them (the server's `subsignal_websocket_connections` gauge), every tab
// follows the worker and is live with the server's rows; a tab's mutation resolves in that tab and shows in all; an
// offline mutation from tab A shows optimistically in tab B, is written exactly once after the server restarts
// (counted at the server) and shows in B; the worker outlives any one tab: the tab that started it and the tab that
// queued a mutation close, and the mutation is still written once and shows in the tab left, on the same WebSocket; a
// worker whose script does not load sends the tabs over to the leader tab, still on one WebSocket.
// Run by `cargo xtask test` (SUBSIGNAL_BIN, SUBSIGNAL_NPM_PACKAGE, CHROMIUM).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { answerIn, CREATE, liveAndEqual, ORDER, settledOrders, showPending, startOrdersPage, until } from "./subsignal.mjs";

let site;
before(async () => {
  site = await startOrdersPage({ name: "shared-worker",
    storeOptions: `persistKey: params.get("key"), shared: params.get("mode") === "auto" ? true : "worker",
  sharedWorkerUrl: params.get("workerUrl") ?? undefined` });
});
after(() => site?.stop());

const metric = (name) => site.metric(name);
const token = () => site.token();
const written = (name) => site.written(name);
/** The orders once the worker has moved every one along. */
const settledTruth = () => settledOrders(site.server, ORDER);

/** Opens the page in `ctx` as alice with the store's persistKey `key` (`mode` "auto": `shared: true`, else
 * `shared: "worker"`), served by the server itself. */
function open(ctx, token, key, mode, workerUrl) {
  const worker = workerUrl ? `&workerUrl=${encodeURIComponent(workerUrl)}` : "";
  return site.open(ctx, `${site.server.http}/index.html?token=${encodeURIComponent(token)}&key=${key}&mode=${mode ?? "worker"}${worker}`);
}

/** `count` tabs of a new context, each following the store's SharedWorker. */
async function tabs(count, storeKey, mode) {
  const ctx = await site.browser.newContext();
  const alice = await token();
  const pages = [];
  for (let i = 0; i < count; i++) pages.push(await open(ctx, alice, storeKey, mode));
  for (const page of pages) assert.equal(await page.evaluate(() => window.store.sharedRole), "worker");
  return { ctx, pages };
}

test("worker: with shared: true, three tabs share one WebSocket, every tab is live, a tab's mutation resolves there and shows in all", { timeout: 180_000 }, async () => {
  const { ctx, pages } = await tabs(3, "three", "auto");
  let truth = await settledTruth();
  for (const page of pages) await liveAndEqual(page, truth);
  await until(async () => (await metric("subsignal_websocket_connections")) === 1, "one WebSocket at the server");

  const [, a] = pages;
  await a.evaluate((q) => window.create(q, "from a tab"), CREATE);
  const result = await answerIn(a, "from a tab");
  assert.equal(result.ok?.customerName, "from a tab", JSON.stringify(result));
  truth = await settledTruth();
  assert.equal(await written("from a tab"), 1);
  for (const page of pages) await liveAndEqual(page, truth);
  assert.equal(await metric("subsignal_websocket_connections"), 1, "still one WebSocket");
  for (const page of pages) {
    await page.waitForFunction(() => window.store.getSnapshot().pendingMutations === 0, null, { timeout: 30_000 });
    assert.deepEqual(await page.evaluate(() => window.store.getSnapshot()), { connection: { state: "live" }, pendingMutations: 0 });
  }
  for (const page of pages) assert.deepEqual(page.errors, []);
  await ctx.close();
  await until(async () => (await metric("subsignal_websocket_connections")) === 0, "the worker's WebSocket to close");
});

test("worker: an offline mutation from tab A shows at once in tab B, is written once after the server returns, and shows in B", { timeout: 180_000 }, async () => {
  const { ctx, pages: [a, b] } = await tabs(2, "offline");
  const truth = await settledTruth();
  for (const page of [a, b]) await liveAndEqual(page, truth);

  await site.server.stop();
  await b.waitForFunction(() => window.store.getSnapshot().connection.state !== "live");
  const name = "offline from A";
  await a.evaluate(([q, n]) => window.create(q, n), [CREATE, name]);
  await showPending([a, b], name);

  await site.server.start();
  assert.ok((await answerIn(a, name)).ok, "the mutation resolved in tab A");
  const after = await settledTruth();
  assert.equal(await written(name), 1, "written exactly once");
  for (const page of [a, b]) await liveAndEqual(page, after);
  assert.ok(await b.evaluate((n) => window.store.row("orders", "tmp-" + n) == null, name), "the placeholder is gone");
  for (const page of [a, b]) assert.deepEqual(page.errors, []);
  await ctx.close();
  await until(async () => (await metric("subsignal_websocket_connections")) === 0, "the worker's WebSocket to close");
});

test("worker: the worker outlives any one tab: the first tab and the tab that queued a mutation close, and it is written once", { timeout: 180_000 }, async () => {
  const { ctx, pages: [first, a, c] } = await tabs(3, "outlives");
  const truth = await settledTruth();
  for (const page of [first, a, c]) await liveAndEqual(page, truth);
  await until(async () => (await metric("subsignal_websocket_connections")) === 1, "one WebSocket at the server");

  // The tab that started the worker closes: the others stay live on the same connection.
  await first.close();
  await c.evaluate((q) => window.create(q, "after the first tab closed"), CREATE);
  assert.ok((await answerIn(c, "after the first tab closed")).ok);

  // With the server away, tab A queues a mutation and closes; the worker keeps it and sends it once the server is back.
  await site.server.stop();
  await c.waitForFunction(() => window.store.getSnapshot().connection.state !== "live");
  const name = "queued by a closed tab";
  await a.evaluate(([q, n]) => window.create(q, n), [CREATE, name]);
  await c.waitForFunction((n) => window.store.row("orders", "tmp-" + n)?.customerName === n, name, { timeout: 30_000 });
  await a.close();
  await site.server.start();
  await c.waitForFunction((n) => window.store.rows("orders").some((o) => o.customerName === n && !o.id.startsWith("tmp-")),
    name, { timeout: 60_000 });
  const after = await settledTruth();
  assert.equal(await written(name), 1, "written exactly once");
  await liveAndEqual(c, after);
  await c.waitForFunction(() => window.store.getSnapshot().pendingMutations === 0, null, { timeout: 30_000 });
  await until(async () => (await metric("subsignal_websocket_connections")) === 1, "one WebSocket, the worker's");
  assert.deepEqual(c.errors, []);
  await ctx.close();
});

test("worker: a worker script that does not load sends the tabs over to the leader tab, still one WebSocket and live", { timeout: 180_000 }, async () => {
  const ctx = await site.browser.newContext();
  const alice = await token();
  // Both tabs attach at once, while the worker's script is failing to load: a tab that hears no `error` then (this
  // failed once in CI under load, 2026-12-01) gives the worker up when it has not answered within 15 s.
  const pages = await Promise.all([1, 2].map(() => open(ctx, alice, "broken", "worker", "/no-such-worker.js")));
  const rolesNow = async () => (await Promise.all(pages.map((p) => p.evaluate(() => window.store.sharedRole)))).sort().join();
  await until(async () => (await rolesNow()) === "follower,host", "one host tab and one follower after the worker failed");
  const truth = await settledTruth();
  for (const page of pages) await liveAndEqual(page, truth);
  await until(async () => (await metric("subsignal_websocket_connections")) === 1, "one WebSocket at the server");
  const [a] = pages;
  await a.evaluate((q) => window.create(q, "after the worker failed"), CREATE);
  assert.ok((await answerIn(a, "after the worker failed")).ok);
  assert.equal(await written("after the worker failed"), 1);
  for (const page of pages) assert.deepEqual(page.errors, []);
  await ctx.close();
  await until(async () => (await metric("subsignal_websocket_connections")) === 0, "the host tab's WebSocket to close");
});
