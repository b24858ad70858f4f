// Persisted collections (issue 17) with the npm package in Debian's headless Chromium: the page is served from disk
// through Playwright's routing on the server's own origin, so that it loads (and its IndexedDB is the same) while
// the server is stopped. Checks: a reload with the server stopped shows the last rows at once, marked stale and
// restored; after changes made meanwhile, the store fetches only the changes (counted at the server's /metrics:
// events delivered, no list items) and ends equal to the server; a cursor past retention takes a new snapshot, and so
// does a cursor of another change log (the server's database made again, its log already past the cursor); a
// corrupted image and a failing IndexedDB (a quota error from an injected `put`) fall back to the network with a
// warning; a pending offline mutation survives a reload together with its optimistic row. Run by `cargo xtask test`
// (SUBSIGNAL_BIN, SUBSIGNAL_NPM_PACKAGE, CHROMIUM).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { CREATE, liveAndEqual, ORDER, settledOrders, startOrdersPage, until } from "./subsignal.mjs";

let site, server;
before(async () => {
  site = await startOrdersPage({ name: "persist", storeOptions: `persistKey: params.get("key") ?? "e2e"`,
    chromiumArgs: ["--disable-features=LocalNetworkAccessChecks"], extra: `window.origins = [];
store.onRow((collection, change, origin) => window.origins.push(origin.kind));
/** What the store's database holds: the orders record and every queue record, as text. */
window.persisted = () => new Promise((resolve, reject) => {
  const req = indexedDB.open("subsignal:e2e");
  req.onerror = () => reject(req.error);
  req.onsuccess = () => {
    const db = req.result;
    const tx = db.transaction(["collections", "queues"]);
    const orders = tx.objectStore("collections").get("orders");
    const queues = tx.objectStore("queues").getAll();
    tx.oncomplete = () => { db.close(); resolve({ orders: orders.result ?? null, queues: queues.result }); };
    tx.onerror = () => reject(tx.error);
  };
});
/** Overwrites the orders record with text that is not an image. */
window.corrupt = () => new Promise((resolve, reject) => {
  const req = indexedDB.open("subsignal:e2e");
  req.onsuccess = () => {
    const db = req.result;
    const tx = db.transaction("collections", "readwrite");
    tx.objectStore("collections").put("{ this is not an image", "orders");
    tx.oncomplete = () => { db.close(); resolve(); };
    tx.onerror = () => reject(tx.error);
  };
  req.onerror = () => reject(req.error);
});
` });
  server = site.server;
});
after(() => site?.stop());

/** A browser context (its own IndexedDB) whose pages under /persist/ come from the site folder, server or not. */
async function context({ failingPut = false } = {}) {
  const ctx = await site.contextFromDisk("persist");
  if (failingPut) {
    // IndexedDB out of quota: every put throws, as Chromium's QuotaExceededError does.
    await ctx.addInitScript(() => {
      IDBObjectStore.prototype.put = function () { throw new DOMException("the origin is out of quota", "QuotaExceededError"); };
    });
  }
  return { ctx, origin: server.http };
}

/** Opens the page in `ctx` as alice, recording warnings and page errors. */
const open = (ctx, origin, token) => site.open(ctx, `${origin}/persist/index.html?token=${encodeURIComponent(token)}`);
const token = () => site.token();
const metric = (name) => site.metric(name);

const key = (rows) => rows.map((o) => `${o.id}:${o.status}:${o.version}`).sort().join();

/** Creates orders as alice and waits until the worker has shipped every order: the truth stops moving. */
async function createShipped(names) {
  for (const name of names) {
    const res = await server.gql("alice", CREATE, { input: { customerName: name, email: "p@example.com", items: [{ sku: "tea", quantity: 1, unitPriceCents: 450 }] } });
    assert.ok(res.data?.createOrder, JSON.stringify(res));
  }
  return settledOrders(server, ORDER);
}

/** Waits until the database holds the orders at the store's lastSeq, and gives that seq. */
async function persistedInStep(page) {
  await until(() => page.evaluate(async () => {
    const { orders } = await window.persisted();
    return orders !== null && JSON.parse(orders).lastSeq === window.store.collectionState("orders").lastSeq;
  }), "the image to be written");
  return page.evaluate(async () => JSON.parse((await window.persisted()).orders).lastSeq);
}

test("a reload shows the last rows at once, stale, with the server stopped; afterwards only the changes are fetched", { timeout: 180_000 }, async () => {
  const { ctx, origin } = await context();
  const first = await createShipped(["persist 1", "persist 2", "persist 3"]);
  const alice = await token();
  let page = await open(ctx, origin, alice);
  await liveAndEqual(page, first);
  await persistedInStep(page);

  // The server stops; the reload shows the rows from IndexedDB, marked stale and restored.
  await server.stop();
  await page.reload();
  await page.waitForFunction(() => window.ready === true && window.store.collectionState("orders")?.restored === true);
  const offline = await page.evaluate(() => ({ rows: window.store.rows("orders"), state: window.store.collectionState("orders"), origins: window.origins }));
  assert.equal(key(offline.rows), key(first), "the last rows show");
  assert.ok(offline.state.stale && offline.state.loaded, JSON.stringify(offline.state));
  assert.ok(offline.origins.every((o) => o === "restore"), `only restored rows so far: ${offline.origins}`);
  await page.close();

  // Meanwhile, changes: new orders, each moved along by the worker.
  await server.start();
  const truth = await createShipped(["persist 4", "persist 5"]);
  const [events, items] = [await metric("subsignal_events_delivered_total"), await metric("subsignal_list_items_served_total")];
  page = await open(ctx, origin, alice);
  await liveAndEqual(page, truth);
  const stats = await page.evaluate(() => window.store.stats("orders"));
  assert.equal(stats.snapshots, 0, "no snapshot: resumed after the persisted lastSeq");
  assert.equal(await metric("subsignal_list_items_served_total") - items, 0, "the server listed nothing");
  const delivered = await metric("subsignal_events_delivered_total") - events;
  assert.ok(delivered >= 2, `the changes came as events (${delivered})`);
  assert.equal(key(await server.listOrders("alice", ORDER)), key(await page.evaluate(() => window.store.rows("orders"))));
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

/** A page of a new context, live with the server's orders, then closed once its image is written at lastSeq: the
 * context, its origin, alice's token and that persisted cursor. */
async function persistedThenClosed() {
  const { ctx, origin } = await context();
  const alice = await token();
  const page = await open(ctx, origin, alice);
  await liveAndEqual(page, await server.listOrders("alice", ORDER));
  const cursor = await persistedInStep(page);
  await page.close();
  return { ctx, origin, alice, cursor };
}

test("a persisted cursor past retention takes a new snapshot", { timeout: 180_000 }, async () => {
  const { ctx, origin, alice, cursor } = await persistedThenClosed();

  // One-second retention: once a write after the cursor is pruned, the cursor is past retention.
  await server.stop();
  server.args = [...server.args, "--retention-secs", "1"];
  await server.start();
  const truth = await createShipped(["past retention"]);
  await until(async () => (await metric("subsignal_change_log_pruned_seq")) > cursor, "retention to prune past the cursor");
  const items = await metric("subsignal_list_items_served_total");
  const page = await open(ctx, origin, alice);
  await liveAndEqual(page, truth);
  const stats = await page.evaluate(() => window.store.stats("orders"));
  assert.equal(stats.snapshots, 1, "CURSOR_EXPIRED took a snapshot");
  assert.equal(await metric("subsignal_list_items_served_total") - items, truth.length, "the snapshot listed every order");
  assert.deepEqual(page.errors, []);
  await ctx.close();
  await server.stop();
  server.args = server.args.slice(0, -2);
  await server.start();
});

test("a persisted cursor of another change log takes a new snapshot: the server's database made again shows as it is", { timeout: 180_000 }, async () => {
  await createShipped(["before the reset"]);
  const { ctx, origin, alice, cursor } = await persistedThenClosed();

  // The database is made again at the same address, and its change log grows past the old cursor: only the epoch in
  // the server's connection_ack tells the cursor is another log's.
  await server.stop();
  rmSync(join(server.dataDir, "subsignal.db"));
  await server.start();
  const head = async () => (await server.gql("alice", "query { listOrders(limit: 1) { seq } }")).data.listOrders.seq;
  let truth = [];
  for (let i = 0; (await head()) <= cursor; i++) truth = await createShipped([`after the reset ${i}`]);
  const page = await open(ctx, origin, alice);
  await liveAndEqual(page, truth);
  assert.equal((await page.evaluate(() => window.store.stats("orders"))).snapshots, 1, "a snapshot of the new log");
  assert.ok(!(await page.evaluate(() => window.store.rows("orders"))).some((o) => o.customerName === "before the reset"));
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test("a corrupted image, or a database that is not the store's, is skipped with a warning and the rows load from the network", { timeout: 120_000 }, async () => {
  const { ctx, origin } = await context();
  const alice = await token();
  const page = await open(ctx, origin, alice);
  const truth = await server.listOrders("alice", ORDER);
  await liveAndEqual(page, truth);
  await persistedInStep(page);
  await page.evaluate(() => window.corrupt());
  await page.reload();
  await page.waitForFunction(() => window.ready === true);
  await liveAndEqual(page, truth);
  assert.ok(page.warnings.some((w) => w.includes("ignoring a corrupted persisted collection")), page.warnings.join("\n"));
  assert.equal((await page.evaluate(() => window.store.stats("orders"))).snapshots, 1);

  // A database that is not the store's (its version, without the object stores): a warning, then the network.
  await page.evaluate(() => new Promise((resolve, reject) => {
    const req = indexedDB.open("subsignal:broken", 1);
    req.onsuccess = () => { req.result.close(); resolve(); };
    req.onerror = () => reject(req.error);
  }));
  await page.goto(`${origin}/persist/index.html?key=broken&token=${encodeURIComponent(alice)}`);
  await page.waitForFunction(() => window.ready === true);
  await liveAndEqual(page, truth);
  assert.ok(page.warnings.some((w) => w.includes("cannot use IndexedDB")), page.warnings.join("\n"));
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test("a pending offline mutation survives a reload with its optimistic row, even when IndexedDB is out of quota", { timeout: 180_000 }, async () => {
  for (const failingPut of [false, true]) {
    const { ctx, origin } = await context({ failingPut });
    const alice = await token();
    let page = await open(ctx, origin, alice);
    await liveAndEqual(page, await server.listOrders("alice", ORDER));
    const name = `offline ${failingPut ? "quota" : "idb"}`;
    await server.stop();
    await page.evaluate(([query, name]) => {
      window.store.mutate({ query, resultField: "createOrder", collection: "orders",
        variables: { input: { customerName: name, email: "o@example.com", items: [{ sku: "tea", quantity: 1, unitPriceCents: 450 }] } },
        optimistic: { kind: "upsert", row: { id: "tmp-offline", owner: "alice", customerName: name, status: "SUBMITTED", version: 0 } } });
    }, [CREATE, name]);
    if (failingPut) {
      // The write fails: a warning, and the queue stays in this tab's localStorage copy.
      await page.waitForFunction(() => Object.keys(localStorage).some((k) => k.startsWith("e2e:queue:") && localStorage.getItem(k).includes("tmp-offline")));
      assert.ok(page.warnings.some((w) => w.includes("QuotaExceededError")), page.warnings.join("\n"));
    } else {
      await until(() => page.evaluate(async () => (await window.persisted()).queues.some((q) => q.includes("tmp-offline"))), "the queue to be written");
      // Once IndexedDB holds it, the synchronous localStorage copy is gone.
      await until(() => page.evaluate(() => !Object.keys(localStorage).some((k) => k.startsWith("e2e:queue:"))), "the localStorage copy to go");
    }
    await page.reload();
    await page.waitForFunction(() => window.ready === true && window.store.pendingMutations().length === 1);
    const shown = await page.evaluate(() => ({ row: window.store.row("orders", "tmp-offline"), state: window.store.collectionState("orders") }));
    assert.equal(shown.row?.customerName, name, "the optimistic row shows with its mutation");
    assert.ok(shown.state.hasPendingUpdates, JSON.stringify(shown.state));
    if (!failingPut) assert.ok(shown.state.restored, "and on the restored rows");
    await server.start();
    await page.waitForFunction(() => window.store.pendingMutations().length === 0, null, { timeout: 60_000 });
    const truth = await createShipped([]);
    assert.equal(truth.filter((o) => o.customerName === name).length, 1, "created exactly once");
    await liveAndEqual(page, truth);
    assert.ok(await page.evaluate(() => window.store.row("orders", "tmp-offline") == null), "the placeholder is gone");
    assert.deepEqual(page.errors, []);
    await ctx.close();
  }
});

test("two tabs persist side by side: neither loses the other's pending mutation, and a reload takes both over", { timeout: 180_000 }, async () => {
  const { ctx, origin } = await context();
  const alice = await token();
  const [a, b] = [await open(ctx, origin, alice), await open(ctx, origin, alice)];
  const truth = await server.listOrders("alice", ORDER);
  await liveAndEqual(a, truth);
  await liveAndEqual(b, truth);
  await server.stop();
  // Each tab queues a mutation while the server is away; both write the same database.
  for (const [page, name] of [[a, "tab a"], [b, "tab b"]]) {
    await page.evaluate(([query, name]) => {
      window.store.mutate({ query, resultField: "createOrder", collection: "orders",
        variables: { input: { customerName: name, email: "t@example.com", items: [{ sku: "tea", quantity: 1, unitPriceCents: 450 }] } },
        optimistic: { kind: "upsert", row: { id: "tmp-" + name.replace(" ", "-"), owner: "alice", customerName: name, status: "SUBMITTED", version: 0 } } });
    }, [CREATE, name]);
  }
  await until(() => a.evaluate(async () => {
    const { queues } = await window.persisted();
    return queues.some((q) => q.includes("tmp-tab-a")) && queues.some((q) => q.includes("tmp-tab-b"));
  }), "both tabs' queues to be written");
  // Tab b closes; a reload of tab a takes b's queue over, and shows both optimistic rows.
  await b.close();
  await a.reload();
  await a.waitForFunction(() => window.ready === true && window.store.pendingMutations().length === 2);
  assert.ok(await a.evaluate(() => window.store.row("orders", "tmp-tab-a") && window.store.row("orders", "tmp-tab-b")));
  await server.start();
  await a.waitForFunction(() => window.store.pendingMutations().length === 0, null, { timeout: 60_000 });
  const after = await createShipped([]);
  for (const name of ["tab a", "tab b"]) {
    assert.equal(after.filter((o) => o.customerName === name).length, 1, `${name} created exactly once`);
  }
  await liveAndEqual(a, after);
  // The database holds one queue (tab a's, now empty: deleted) and the orders at tab a's lastSeq.
  await persistedInStep(a);
  assert.deepEqual((await a.evaluate(() => window.persisted())).queues, []);
  assert.deepEqual(a.errors, []);
  await ctx.close();
});
