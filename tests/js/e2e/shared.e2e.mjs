// Shared mode's leader-tab fallback (issue 18, `shared: "tab"`: what `shared: true` does where the browser has no
// `SharedWorker`, as Chrome on Android; `shared-worker.e2e.mjs` tests the worker) with the npm package in Debian's
// headless Chromium: several pages of one browser context are tabs of one origin, so they share Web Locks and
// BroadcastChannel. The page is served from disk
// through Playwright's routing on the server's own origin (it loads while the server is stopped). Checks: three tabs
// hold one WebSocket between them (the server's `subsignal_websocket_connections` gauge), one tab hosts and the
// others follow, every tab live with the server's rows; a mutation from a follower resolves in that tab and shows in
// all, and a conflict comes back to the follower whole and resolves from there; an offline mutation from tab A shows
// optimistically in tab B (every tab lists it in `pendingMutations()`), is written exactly once after the server
// restarts (counted at the server) and shows in B; closing the host tab hands the store to another tab, with a
// mutation queued at the old host completed exactly once and the connection count back at one; a mutation the old
// host sent (the server wrote it) whose answer it never saw is sent again by the new host and written once. Run by
// `cargo xtask test` (SUBSIGNAL_BIN, SUBSIGNAL_NPM_PACKAGE, CHROMIUM).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { answerIn, CREATE, liveAndEqual, ORDER, settledOrders, showPending, startOrdersPage, until } from "./subsignal.mjs";

let site;
before(async () => {
  site = await startOrdersPage({ name: "shared", storeOptions: `persistKey: params.get("key"), shared: "tab"`,
    chromiumArgs: ["--disable-features=LocalNetworkAccessChecks"] });
});
after(() => site?.stop());

const metric = (name) => site.metric(name);
const token = () => site.token();
const written = (name) => site.written(name);
/** The orders once the worker has moved every one along. */
const settledTruth = () => settledOrders(site.server, ORDER);
/** A browser context (the tabs of one origin) whose pages under /shared/ come from disk, server or not. */
const context = () => site.contextFromDisk("shared");
/** Opens the page in `ctx` as alice with the store's persistKey `key`. */
const open = (ctx, token, key) => site.open(ctx, `${site.server.http}/shared/index.html?token=${encodeURIComponent(token)}&key=${key}`);

/** The pages' shared roles, once exactly one of them hosts; gives the host and the followers. */
async function roles(pages) {
  let found;
  await until(async () => {
    const seen = await Promise.all(pages.map((p) => p.evaluate(() => window.store.sharedRole)));
    found = seen;
    return seen.filter((r) => r === "host").length === 1 && seen.every((r) => r === "host" || r === "follower");
  }, "exactly one host among the tabs");
  return { host: pages[found.indexOf("host")], followers: pages.filter((_, i) => found[i] === "follower") };
}


test("three tabs share one WebSocket: one hosts, every tab is live, a follower's mutation shows in all and its conflict comes back whole", { timeout: 180_000 }, async () => {
  const ctx = await context();
  const alice = await token();
  const pages = [];
  for (let i = 0; i < 3; i++) pages.push(await open(ctx, alice, "three"));
  const { host, followers } = await roles(pages);
  assert.equal(followers.length, 2);
  let truth = await settledTruth();
  for (const page of pages) await liveAndEqual(page, truth);
  await until(async () => (await metric("subsignal_websocket_connections")) === 1, "one WebSocket at the server");

  // A follower's mutation goes through the host and resolves in the follower; every tab shows the new order.
  const [a] = followers;
  await a.evaluate((q) => window.create(q, "from a follower"), CREATE);
  const result = await answerIn(a, "from a follower");
  assert.equal(result.ok?.customerName, "from a follower", JSON.stringify(result));
  truth = await settledTruth();
  assert.equal(await written("from a follower"), 1);
  for (const page of pages) await liveAndEqual(page, truth);
  assert.equal(await metric("subsignal_websocket_connections"), 1, "still one WebSocket");
  // The host's status follows its answer by one message: the queue is empty again, the connection live.
  await a.waitForFunction(() => window.store.getSnapshot().pendingMutations === 0, null, { timeout: 30_000 });
  assert.deepEqual(await a.evaluate(() => window.store.getSnapshot()), { connection: { state: "live" }, pendingMutations: 0 });

  // A conflict comes back through the host whole: two edits from the same version, the second rejected with base,
  // mine and theirs, and resolved from the follower.
  const conflict = await a.evaluate(async ([fields, id]) => {
    const { isConflict } = await import("./node_modules/@subsignal/store/subsignal_store.js");
    const update = `mutation($input: UpdateOrderInput!, $expectedVersion: Int) { updateOrder(input: $input, expectedVersion: $expectedVersion) { ${fields} } }`;
    const base = window.store.row("orders", id);
    const edit = (customerName) => window.store.mutate({ query: update, resultField: "updateOrder", collection: "orders",
      variables: { input: { id, customerName }, expectedVersion: base.version }, base });
    const first = (await edit("theirs, from a follower")).customerName;
    const e = await edit("mine, from a follower").then(() => null, (e) => e);
    const kept = (await e.keepMine()).customerName;
    return { first, isConflict: isConflict(e), base: e.base.customerName, mine: e.mine, theirs: e.theirs.customerName,
      diff: e.diff.find((d) => d.field === "customerName")?.change, kept };
  }, [ORDER, result.ok.id]);
  assert.deepEqual(conflict, { first: "theirs, from a follower", isConflict: true, base: "from a follower",
    mine: { customerName: "mine, from a follower" }, theirs: "theirs, from a follower", diff: "conflict", kept: "mine, from a follower" });
  assert.equal(await host.evaluate(() => window.store.sharedRole), "host");
  for (const page of pages) assert.deepEqual(page.errors, []);
  await ctx.close();
  await until(async () => (await metric("subsignal_websocket_connections")) === 0, "the tabs' WebSocket to close");
});

test("an offline mutation from tab A shows at once in tab B, is written once after the server returns, and shows in B", { timeout: 180_000 }, async () => {
  const ctx = await context();
  const alice = await token();
  const pages = [await open(ctx, alice, "offline"), await open(ctx, alice, "offline")];
  const { host, followers: [follower] } = await roles(pages);
  const truth = await settledTruth();
  for (const page of pages) await liveAndEqual(page, truth);

  await site.server.stop();
  await host.waitForFunction(() => window.store.getSnapshot().connection.state !== "live");
  // Tab A (following) mutates while offline: tab B (hosting) shows the optimistic row, and so does A.
  const name = "offline from A";
  await follower.evaluate(([q, n]) => window.create(q, n), [CREATE, name]);
  await showPending(pages, name);

  await site.server.start();
  assert.ok((await answerIn(follower, name)).ok, "the mutation resolved in tab A");
  const after = await settledTruth();
  assert.equal(await written(name), 1, "written exactly once");
  for (const page of pages) await liveAndEqual(page, after);
  assert.ok(await host.evaluate((n) => window.store.row("orders", "tmp-" + n) == null, name), "the placeholder is gone");
  for (const page of pages) assert.deepEqual(page.errors, []);
  await ctx.close();
  await until(async () => (await metric("subsignal_websocket_connections")) === 0, "the tabs' WebSocket to close");
});

test("closing the host tab hands the store to another: the queued mutation completes once and every tab stays live", { timeout: 180_000 }, async () => {
  const ctx = await context();
  const alice = await token();
  const pages = [];
  for (let i = 0; i < 3; i++) pages.push(await open(ctx, alice, "takeover"));
  const { host, followers } = await roles(pages);
  const truth = await settledTruth();
  for (const page of pages) await liveAndEqual(page, truth);

  // With the server away, a follower's mutation waits in the host's queue (persisted there); then the host closes.
  await site.server.stop();
  const name = "queued at the old host";
  const [a, b] = followers;
  await a.evaluate(([q, n]) => window.create(q, n), [CREATE, name]);
  await host.waitForFunction(() => window.store.pendingMutations().length === 1, null, { timeout: 30_000 });
  await host.close();

  // Another tab takes over, from the persisted queue; the rows stay shown meanwhile.
  const { host: next } = await roles(followers);
  for (const page of followers) {
    await page.waitForFunction((n) => window.store.row("orders", "tmp-" + n)?.customerName === n, name, { timeout: 30_000 });
  }
  await site.server.start();
  assert.ok((await answerIn(a, name)).ok, "the mutation resolved in the tab that made it");
  const after = await settledTruth();
  assert.equal(await written(name), 1, "written exactly once");
  for (const page of followers) await liveAndEqual(page, after);
  await until(async () => (await metric("subsignal_websocket_connections")) === 1, "one WebSocket, the new host's");
  for (const page of [next, b]) {
    await page.waitForFunction(() => window.store.getSnapshot().pendingMutations === 0, null, { timeout: 30_000 });
  }
  for (const page of followers) assert.deepEqual(page.errors, []);
  await ctx.close();
});

test("a mutation in flight when the host tab closes is written once: the new host sends it again and the server recognises it", { timeout: 180_000 }, async () => {
  const ctx = await context();
  const alice = await token();
  const pages = [];
  for (let i = 0; i < 2; i++) pages.push(await open(ctx, alice, "inflight"));
  const { host, followers: [follower] } = await roles(pages);
  const truth = await settledTruth();
  for (const page of pages) await liveAndEqual(page, truth);

  // The host's createOrder reaches the server, which writes it; its answer never comes back to the host.
  let reached;
  const sent = new Promise((resolve) => { reached = resolve; });
  await host.route("**/graphql", async (route) => {
    if (!route.request().postData()?.includes("createOrder")) return route.continue();
    await route.fetch();
    reached();
  });
  const name = "in flight at the old host";
  await follower.evaluate(([q, n]) => window.create(q, n), [CREATE, name]);
  await sent;
  await host.close();

  // The follower takes over, restores the queue, sends the mutation again: the server answers with the first write.
  await roles([follower]);
  assert.ok((await answerIn(follower, name)).ok, "the mutation resolved in the tab that made it");
  const after = await settledTruth();
  assert.equal(await written(name), 1, "written exactly once");
  await liveAndEqual(follower, after);
  assert.deepEqual(follower.errors, []);
  await ctx.close();
});
