// The npm package end to end: the plain-JS example (examples/plain-js) served by a real `subsignal serve`, with the
// package from `cargo xtask npm` under node_modules/@subsignal/store, in Debian's headless Chromium driven by
// playwright-core. Run by `cargo xtask test-browser`, which sets SUBSIGNAL_BIN, SUBSIGNAL_NPM_PACKAGE,
// SUBSIGNAL_EXAMPLE and CHROMIUM; a missing one fails the test.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { need, startExampleSite } from "./subsignal.mjs";

let site;
let server;
let openPage;

before(async () => {
  site = await startExampleSite({ example: need("SUBSIGNAL_EXAMPLE"), stepDelayMs: 1000 });
  ({ server, openPage } = site);
});

after(async () => {
  await site?.stop();
});

test("the plain-JS example connects, creates an order and follows the worker to SHIPPED", async () => {
  const page = await openPage();
  await page.fill("input[name=customerName]", "Playwright");
  await page.click("#create button");
  const row = page.locator("#orders li", { hasText: "Playwright" });
  await row.waitFor({ timeout: 10_000 });
  await page.locator("#orders li[data-status=SHIPPED]", { hasText: "Playwright" }).waitFor({ timeout: 20_000 });
  assert.equal(await row.count(), 1, "the optimistic row was replaced, not duplicated");
  const key = await row.getAttribute("data-key");
  assert.ok(key && !key.startsWith("tmp-"), `the row carries the server's id (${key})`);
  assert.equal(await page.locator("#pending").textContent(), "0");
  await page.close();
});

test("an order created elsewhere appears live; a bad email shows the validation error", async () => {
  const page = await openPage();
  const created = await server.gql("alice", "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }", {
    input: { customerName: "From elsewhere", email: "else@example.com", items: [{ sku: "TEA", quantity: 1, unitPriceCents: 100 }] },
  });
  const id = created.data.createOrder.id;
  await page.locator(`#orders li[data-key="${id}"]`).waitFor({ timeout: 10_000 });

  await page.fill("input[name=customerName]", "Bad email");
  await page.fill("input[name=email]", "not-an-email");
  await page.click("#create button");
  await page.locator("#errors", { hasText: "email" }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator("#orders li", { hasText: "Bad email" }).count(), 0, "the optimistic row was rolled back");
  await page.close();
});

test("cancelling shows at once and the server confirms it", async () => {
  const page = await openPage("bob");
  await page.fill("input[name=customerName]", "To cancel");
  await page.click("#create button");
  // The worker takes a second a step, so the order is still far from SHIPPED.
  const row = page.locator("#orders li:not([data-optimistic])", { hasText: "To cancel" });
  await row.waitFor({ timeout: 10_000 });
  await row.locator("button").click();
  assert.equal(await row.getAttribute("data-status"), "CANCELLED", "the optimistic patch shows at once");
  await page.locator("#pending", { hasText: "0" }).waitFor({ timeout: 10_000 });
  assert.equal(await row.getAttribute("data-status"), "CANCELLED", "the server confirmed the cancellation");
  assert.equal(await page.locator("#errors").textContent(), "");
  await page.close();
});

test("offerSubprotocol: false goes live on /graphql/ws, and is refused with AppSync", async () => {
  const page = await openPage();
  const { token } = await (await fetch(`${server.http}/dev/token?user=alice`)).json();
  const result = await page.evaluate(async ({ token }) => {
    const { Store } = await import("@subsignal/store");
    const wsUrl = location.origin.replace(/^http/, "ws") + "/graphql/ws";
    const opened = [];
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(url, protocols) { super(url, protocols); opened.push({ url, protocols: protocols ?? null }); }
    };
    const store = new Store({ httpUrl: location.origin + "/graphql", wsUrl, token, offerSubprotocol: false });
    const live = new Promise((resolve) => store.onStatus((s) => { if (s.connection.state === "live") resolve(); }));
    store.connect();
    await live;
    store.disconnect();
    window.WebSocket = Native;
    let refused = null;
    try {
      new Store({ httpUrl: location.origin + "/graphql", wsUrl, protocol: "appsync", offerSubprotocol: false });
    } catch (e) {
      refused = String(e.message ?? e);
    }
    return { opened, refused };
  }, { token });
  assert.deepEqual(result.opened.map((o) => o.protocols), [null], "the socket offered no subprotocol");
  assert.match(result.opened[0].url, /\/graphql\/ws$/);
  assert.match(result.refused ?? "", /offerSubprotocol: false needs protocol "graphql-transport-ws"/);
  await page.close();
});

test("a listener lives until unsubscribed, even when its unsubscribe function is thrown away and collected", async () => {
  const page = await openPage();
  const { token } = await (await fetch(`${server.http}/dev/token?user=alice`)).json();
  const result = await page.evaluate(async ({ token }) => {
    const { Store } = await import("@subsignal/store");
    const wsUrl = location.origin.replace(/^http/, "ws") + "/graphql";
    const store = new Store({ httpUrl: location.origin + "/graphql", wsUrl, token });
    let kept = 0;
    let stopped = 0;
    // The way the README and the examples use it: the returned function is dropped on the floor.
    let collected = false;
    const registry = new FinalizationRegistry(() => { collected = true; });
    registry.register(store.onStatus(() => { kept++; }), "unsubscribe");
    store.onStatus(() => { stopped++; })();
    // Collect until that function is gone (its finalizers run in the same clean-up as ours), then one more turn.
    for (let turn = 0; !collected; turn++) {
      if (turn === 200) throw new Error("the unsubscribe function was never collected");
      gc();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    await new Promise((resolve) => setTimeout(resolve, 0));
    let resolveLive;
    const live = new Promise((resolve) => (resolveLive = resolve));
    const stopLive = store.onStatus((s) => { if (s.connection.state === "live") resolveLive(); });
    store.connect();
    await live;
    stopLive();
    store.disconnect();
    return { kept, stopped };
  }, { token });
  assert.ok(result.kept > 0, "the listener whose unsubscribe function was collected still hears status changes");
  assert.equal(result.stopped, 0, "the unsubscribed listener hears nothing");
  await page.close();
});

test("a live view: a filtered, sorted window with a stable snapshot, one notification per batch, held and released", async () => {
  const page = await openPage("alice");
  const names = ["view-1", "view-2", "view-3", "view-4"];
  await page.evaluate((names) => {
    const { store } = window.subsignal;
    const view = store.view("orders", { where: { customerName: { in: [...names, "view-5"] } }, orderBy: ["customerName desc"], limit: 3 });
    window.viewTest = { view, notified: 0 };
    view.subscribe(() => window.viewTest.notified++);
  }, names);
  const create = (name) => server.gql("alice", "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }", {
    input: { customerName: name, email: "view@example.com", items: [{ sku: "TEA", quantity: 1, unitPriceCents: 100 }] },
  });
  for (const name of names) await create(name);
  const shown = () => page.evaluate(() => window.viewTest.view.getSnapshot().map((r) => r.customerName));
  await page.waitForFunction(() => window.viewTest.view.getSnapshot().map((r) => r.customerName).join() === "view-4,view-3,view-2");
  const stable = await page.evaluate(() => {
    const { view } = window.viewTest;
    const a = view.getSnapshot();
    return { same: a === view.getSnapshot(), frozen: Object.isFrozen(a), state: view.state() };
  });
  assert.ok(stable.same, "getSnapshot returns the same array until something changes");
  assert.ok(stable.frozen, "and the array is frozen");
  const { lastSeq, lagMs, ...state } = stable.state;
  assert.deepEqual(state, { loaded: true, stale: false, len: 3, total: 4, held: false, hasPendingUpdates: false });
  assert.ok(lastSeq > 0 && typeof lagMs === "number", `the collection's lastSeq ${lastSeq} and lagMs ${lagMs}`);

  // Two optimistic rows in one task: two changes, one notification.
  const batched = await page.evaluate(async () => {
    const { store } = window.subsignal;
    const { view } = window.viewTest;
    const before = window.viewTest.notified;
    const first = view.getSnapshot();
    const add = (name) => store.mutate({
      query: "mutation { nope }", resultField: "nope", collection: "orders",
      optimistic: { kind: "upsert", row: { id: `tmp-${name}`, customerName: name, status: "SUBMITTED" } },
    }).catch(() => {});
    const settled = [add("view-5"), add("view-5")];
    const during = view.getSnapshot();
    await Promise.resolve();
    await new Promise((resolve) => setTimeout(resolve, 0));
    const heard = window.viewTest.notified - before;
    await Promise.all(settled);
    return { heard, changed: first !== during, top: during[0].customerName };
  });
  assert.equal(batched.heard, 1, "one notification for both rows");
  assert.ok(batched.changed, "a new snapshot once something changed");
  assert.equal(batched.top, "view-5");
  await page.waitForFunction(() => window.viewTest.view.getSnapshot().map((r) => r.customerName).join() === "view-4,view-3,view-2");

  // Held: a new order applies underneath, the view stays put; released, it shows at once.
  await page.evaluate(() => window.viewTest.view.hold());
  await create("view-5");
  await page.waitForFunction(() => window.subsignal.store.rows("orders").some((r) => r.customerName === "view-5" && !r.id.startsWith("tmp-")));
  assert.deepEqual(await shown(), ["view-4", "view-3", "view-2"], "a held view stays put");
  assert.equal(await page.evaluate(() => window.viewTest.view.state().hasPendingUpdates), true);
  await page.evaluate(() => window.viewTest.view.release());
  assert.deepEqual(await shown(), ["view-5", "view-4", "view-3"], "released, it shows the new order");
  const refused = await page.evaluate(() => {
    try { window.subsignal.store.view("orders", { where: { total: { between: [1, 2] } } }); } catch (e) { return e.message; }
  });
  assert.match(refused, /where\.total: unknown comparison "between"/);
  await page.close();
});

test("a stale expectedVersion rejects with CONFLICT carrying base, mine, theirs and the diff; takeTheirs, keepMine and merge resolve it", async () => {
  const page = await openPage();
  const result = await page.evaluate(async () => {
    const { isConflict } = await import("@subsignal/store");
    const { store } = window.subsignal;
    const ORDER = "id owner customerName email items { sku quantity unitPriceCents } totalCents status version createdAt updatedAt expiresAt";
    const create = `mutation($input: CreateOrderInput!, $clientMutationId: ID) { createOrder(input: $input, clientMutationId: $clientMutationId) { ${ORDER} } }`;
    const update = `mutation($input: UpdateOrderInput!, $expectedVersion: Int, $clientMutationId: ID) { updateOrder(input: $input, expectedVersion: $expectedVersion, clientMutationId: $clientMutationId) { ${ORDER} } }`;
    const base = await store.mutate({
      query: create,
      variables: { input: { customerName: "conflict-js", email: "c@example.com", items: [{ sku: "TEA", quantity: 1, unitPriceCents: 100 }] } },
      resultField: "createOrder",
    });
    const edit = (from, fields) => store.mutate({
      query: update,
      variables: { input: { id: from.id, ...fields }, expectedVersion: from.version },
      resultField: "updateOrder",
      collection: "orders",
      optimistic: { kind: "patch", key: from.id, fields },
      base: from,
    });
    // Resolves a chain of conflicts the way an app merges automatically: while only the worker moved the order on
    // (its status), keep mine.
    const settle = async (promise) => {
      let outcome = await promise.then((row) => row, (e) => e);
      while (isConflict(outcome) && !outcome.diff.some((d) => d.change === "conflict")) {
        outcome = await outcome.keepMine().then((row) => row, (e) => e);
      }
      return outcome;
    };
    const theirs = await settle(edit(base, { customerName: "theirs" }));
    // The same field from the row as it was: a conflict a person resolves.
    const conflict = await edit(base, { customerName: "mine" }).then(() => null, (e) => e);
    const seen = {
      isConflict: isConflict(conflict),
      name: conflict.name,
      code: conflict.code,
      kind: conflict.kind,
      key: conflict.key === base.id,
      base: conflict.base.customerName,
      mine: conflict.mine,
      theirs: conflict.theirs.customerName,
      theirsVersion: conflict.theirsVersion === conflict.theirs.version,
      diff: Object.fromEntries(conflict.diff.filter((d) => ["customerName", "email", "id"].includes(d.field)).map((d) => [d.field, d.change])),
      mineField: conflict.diff.find((d) => d.field === "customerName"),
      showing: store.row("orders", base.id).customerName,
      wasTheirs: theirs.customerName,
    };
    const takeTheirs = (await conflict.takeTheirs()).customerName;
    const kept = await settle(conflict.keepMine());
    const stale = await edit(base, { customerName: "mine again", email: "mine@example.com" }).then(() => null, (e) => e);
    const merged = await settle(stale.merge({ customerName: { value: "merged" }, email: "theirs" }));
    const refused = await stale.merge({ customerName: "sideways" }).then(() => null, (e) => e.message);
    return { seen, takeTheirs, kept: kept.customerName, merged: [merged.customerName, merged.email], refused, row: store.row("orders", base.id).customerName };
  });
  assert.deepEqual(result.seen, {
    isConflict: true,
    name: "MutationError",
    code: "CONFLICT",
    kind: "conflict",
    key: true,
    base: "conflict-js",
    mine: { customerName: "mine" },
    theirs: "theirs",
    theirsVersion: true,
    diff: { customerName: "conflict", email: "unchanged", id: "unchanged" },
    mineField: { field: "customerName", change: "conflict", base: "conflict-js", mine: "mine", theirs: "theirs" },
    showing: "theirs",
    wasTheirs: "theirs",
  });
  assert.equal(result.takeTheirs, "theirs");
  assert.equal(result.kept, "mine");
  assert.deepEqual(result.merged, ["merged", "c@example.com"], "the name as typed, the email left as theirs");
  assert.match(result.refused, /invalid merge choices/);
  assert.equal(result.row, "merged");
  await page.close();
});

test("a token function is asked at connect and again when the server refuses; queued mutations can be discarded or aborted; typed documents are sent as text", async () => {
  const page = await openPage();
  // A queued mutation is first sent once its collection has its rows: until then even the first could be discarded.
  await page.waitForFunction(() => window.subsignal.store.isLive("orders"), null, { timeout: 30_000 });
  const result = await page.evaluate(async () => {
    const { Store, isMutationError } = await import("@subsignal/store");
    const tokens = [];
    // First a token the server refuses (4403), then a good one: the store asks again by itself. The good one is
    // given only once the store has retried with the refused token and been refused again (a slow identity
    // provider): that refusal must not ask a second time.
    let refusals = 0;
    let refusedAgain;
    const again = new Promise((resolve) => (refusedAgain = resolve));
    const token = async () => {
      const good = (await (await fetch("/dev/token?user=alice")).json()).token;
      tokens.push(tokens.length === 0 ? "bad" : "good");
      if (tokens.length === 1) return "not-a-jwt";
      await again;
      return good;
    };
    const other = new Store({ httpUrl: location.origin + "/graphql", wsUrl: location.origin.replace(/^http/, "ws") + "/graphql", token });
    other.onAuthRequired(() => { if (++refusals === 2) refusedAgain(); });
    const live = new Promise((resolve) => other.onStatus((s) => { if (s.connection.state === "live") resolve(); }));
    other.connect();
    await live;
    other.disconnect();

    const { store } = window.subsignal;
    const ORDER = "id customerName status version";
    const text = `mutation($input: CreateOrderInput!, $clientMutationId: ID) { createOrder(input: $input, clientMutationId: $clientMutationId) { ${ORDER} } }`;
    // The one sent is a typed document as graphql-codegen's client preset makes it (a String subclass).
    class TypedDocumentString extends String {}
    const create = (name, options) => store.mutate({
      query: name === "queue-sent" ? new TypedDocumentString(text) : text,
      variables: { input: { customerName: name, email: "q@example.com", items: [{ sku: "TEA", quantity: 1, unitPriceCents: 100 }] } },
      resultField: "createOrder",
      collection: "orders",
      optimistic: { kind: "upsert", row: { id: `tmp-${name}`, customerName: name, status: "SUBMITTED" } },
    }, options);
    const outcome = (promise) => promise.then(() => "resolved", (e) => (isMutationError(e) ? e.kind : e.name));
    // The first is sent at once; the others wait behind it in the queue.
    const sent = create("queue-sent");
    const discarded = create("queue-discarded");
    const discardedId = store.pendingMutations().at(-1).id;
    const controller = new AbortController();
    const aborted = create("queue-aborted", { signal: controller.signal });
    const before = new AbortController();
    before.abort();
    const neverQueued = create("queue-never", { signal: before.signal });
    const showing = store.rows("orders").filter((r) => r.id.startsWith("tmp-queue-")).map((r) => r.customerName).sort();
    const refusedSent = store.discard(store.pendingMutations()[0].id);
    const discardedNow = store.discard(discardedId);
    controller.abort();
    const outcomes = await Promise.all([sent, discarded, aborted, neverQueued].map(outcome));
    const names = store.rows("orders").map((r) => r.customerName).filter((n) => n.startsWith("queue-"));
    return { tokens, refusals, showing, refusedSent, discardedNow, outcomes, names, pending: store.pendingMutations().length };
  });
  assert.deepEqual(result.tokens, ["bad", "good"], "asked at connect, and once again for both refusals");
  assert.equal(result.refusals, 2, "the retry with the refused token was refused too");
  assert.deepEqual(result.showing, ["queue-aborted", "queue-discarded", "queue-sent"], "queued rows show at once");
  assert.equal(result.refusedSent, false, "a mutation already sent is not discarded");
  assert.equal(result.discardedNow, true);
  assert.deepEqual(result.outcomes, ["resolved", "discarded", "AbortError", "AbortError"]);
  assert.deepEqual(result.names, ["queue-sent"], "the discarded and aborted rows rolled back");
  // The example's subscription selects committedAtMs: the collection knows how old its newest event was.
  const lag = await page.evaluate(() => window.subsignal.store.collectionState("orders").lagMs);
  assert.ok(typeof lag === "number" && lag > -1000 && lag < 60_000, `lagMs ${lag}`);
  assert.equal(result.pending, 0);
  await page.close();
});

test("collection, row and status snapshots stay the same until they change, and tell their subscribers once per batch", async () => {
  const page = await openPage();
  const result = await page.evaluate(async () => {
    const { store } = window.subsignal;
    const orders = store.collection("orders");
    const add = (id) => store.mutate({
      query: "mutation { nope }", resultField: "nope", collection: "orders",
      optimistic: { kind: "upsert", row: { id, customerName: id, status: "SUBMITTED" } },
    }).catch(() => {});
    // A live connection does not mean the persisted queue (the example's `persistKey`) has been read back, and until
    // it has, mutations wait: one mutation shown and settled first, before anything is counted.
    const warm = add("tmp-row-warm");
    while (!orders.getRow("tmp-row-warm")) await new Promise((resolve) => setTimeout(resolve, 10));
    await warm;
    await new Promise((resolve) => setTimeout(resolve, 0)); // its rollback told
    const heard = { all: 0, row: 0, other: 0, status: 0 };
    orders.subscribe(() => heard.all++);
    store.subscribe(() => heard.status++);
    const rows = orders.getSnapshot();
    const status = store.getSnapshot();
    const stable = rows === orders.getSnapshot() && status === store.getSnapshot() && Object.isFrozen(rows);
    // Two optimistic rows in one task: one notification of the collection; the row's own subscriber hears its row.
    orders.subscribeRow("tmp-row-a", () => heard.row++);
    orders.subscribeRow("tmp-row-elsewhere", () => heard.other++);
    const before = orders.getRow("tmp-row-a");
    const settled = [add("tmp-row-a"), add("tmp-row-b")];
    await new Promise((resolve) => setTimeout(resolve, 0));
    const after = orders.getRow("tmp-row-a");
    const snapshot = { heard: { ...heard }, changed: rows !== orders.getSnapshot(), row: after, same: after === orders.getRow("tmp-row-a"), before };
    await Promise.all(settled);
    return { stable, ...snapshot, unknown: (() => { try { store.collection("nope"); } catch (e) { return e.message; } })() };
  });
  assert.ok(result.stable, "the same frozen snapshots until something changes");
  assert.equal(result.heard.all, 1, "one notification for two rows");
  assert.equal(result.heard.row, 1, "the row's subscriber heard its row");
  assert.equal(result.heard.other, 0, "another row's subscriber heard nothing");
  assert.ok(result.heard.status >= 1, "two mutations pending: the status changed");
  assert.ok(result.changed);
  assert.equal(result.before, null);
  assert.equal(result.row.customerName, "tmp-row-a");
  assert.ok(result.same, "getRow returns the same object until the row changes");
  assert.match(result.unknown, /no collection named "nope" is watched/);
  await page.close();
});

test("time travel: history and at give the rows as of each seq, frozen, and refuse a seq outside the history", async () => {
  const page = await openPage();
  await page.evaluate(async () => {
    const { Store } = await import("@subsignal/store");
    const ORDER = "id customerName status version";
    const { token } = await (await fetch("/dev/token?user=alice")).json();
    const store = new Store({ httpUrl: location.origin + "/graphql", wsUrl: location.origin.replace(/^http/, "ws") + "/graphql", token });
    store.watch({
      name: "past",
      subscription: `subscription($afterSeq: Int) { onOrderChanged(afterSeq: $afterSeq) { seq prevSeq op key version expired order { ${ORDER} } } }`,
      subscriptionField: "onOrderChanged",
      entityField: "order",
      snapshotQuery: `query($limit: Int, $nextToken: String) { listOrders(limit: $limit, nextToken: $nextToken) { items { ${ORDER} } nextToken seq } }`,
      snapshotField: "listOrders",
      history: { maxEvents: 100, checkpointEvery: 3 },
    });
    // What the live rows were after each event, to compare the history with.
    const seen = {};
    store.onRow((collection, change, origin) => {
      if (collection === "past" && origin.kind === "event") seen[origin.seq] = store.rows("past").map((r) => `${r.customerName}:${r.status}`);
    });
    store.connect();
    window.travelTest = { store, seen };
  });
  await page.waitForFunction(() => window.travelTest.store.history("past") !== null);
  await server.gql("alice", "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }", {
    input: { customerName: "Time traveller", email: "tt@example.com", items: [{ sku: "TEA", quantity: 1, unitPriceCents: 100 }] },
  });
  await page.waitForFunction(() => window.travelTest.store.rows("past").some((r) => r.customerName === "Time traveller" && r.status === "SHIPPED"), null, { timeout: 20_000 });
  const result = await page.evaluate(() => {
    const { store, seen } = window.travelTest;
    const range = store.history("past");
    const mismatches = [];
    for (const [seq, rows] of Object.entries(seen)) {
      const at = store.at("past", Number(seq));
      const got = at.rows.map((r) => `${r.row.customerName}:${r.row.status}`);
      if (JSON.stringify(got) !== JSON.stringify(rows)) mismatches.push({ seq, got, rows });
    }
    const last = store.at("past", range.last);
    const mine = last.rows.find((r) => r.row.customerName === "Time traveller");
    const error = (f) => { try { f(); return null; } catch (e) { return { name: e.name, kind: e.kind, first: e.first, last: e.last, message: e.message }; } };
    return {
      range,
      seqs: Object.keys(seen).length,
      mismatches,
      frozen: Object.isFrozen(last) && Object.isFrozen(last.rows) && Object.isFrozen(mine) && Object.isFrozen(mine.row),
      mine: { op: mine.op, changedAt: mine.seq, changes: store.at("past", mine.seq).changes },
      future: error(() => store.at("past", range.last + 1)),
      old: error(() => store.at("past", range.first - 1)),
      disabled: error(() => window.subsignal.store.history("orders")),
      unknown: error(() => store.at("nope", 1)),
      fraction: error(() => store.at("past", 1.5)),
      live: store.rows("past").length,
    };
  });
  assert.ok(result.seqs >= 4, `four events of the order at least: ${result.seqs}`);
  assert.deepEqual(result.mismatches, [], "at(seq) equals the rows as they were after each event");
  assert.ok(result.frozen, "at() gives frozen rows");
  assert.equal(result.mine.op, "update");
  assert.equal(result.mine.changes.length, 1);
  assert.equal(result.mine.changes[0].op, "update");
  for (const e of [result.future, result.old]) {
    assert.equal(e.name, "HistoryError");
    assert.equal(e.kind, "outOfRange");
    assert.deepEqual([e.first, e.last], [result.range.first, result.range.last]);
    assert.match(e.message, new RegExp(`holds seqs ${result.range.first} to ${result.range.last}`));
  }
  assert.equal(result.disabled.kind, "disabled", "the example's collection keeps no history");
  assert.equal(result.unknown.kind, "unknownCollection");
  assert.match(result.fraction.message, /a seq is an integer/);
  assert.ok(result.live > 0, "the live rows are still there");
  await page.evaluate(() => window.travelTest.store.free());
  await page.close();
});

test("in Node (as under vitest), init takes the wasm bytes and the store works without a browser", async () => {
  const dir = need("SUBSIGNAL_NPM_PACKAGE");
  const { default: init, Store } = await import(pathToFileURL(join(dir, "subsignal_store.js")).href);
  await init({ module_or_path: readFileSync(join(dir, "subsignal_store_bg.wasm")) });
  // An optional option given as undefined reads as absent.
  const store = new Store({ httpUrl: "http://127.0.0.1:1/graphql", wsUrl: "ws://127.0.0.1:1/graphql", shared: undefined });
  store.watch({ name: "todos", source: "liveQuery", subscription: "subscription { todos { id } }", subscriptionField: "todos" });
  const view = store.view("todos", { orderBy: ["id"] });
  assert.deepEqual(view.getSnapshot(), []);
  assert.equal(view.getSnapshot(), view.getSnapshot());
  assert.deepEqual(store.collectionState("todos"), { loaded: false, stale: true, lastSeq: null, hasPendingUpdates: false, lagMs: null, restored: false });
  view.free();
  store.free();
});

test("no page errors", () => {
  assert.deepEqual(site.problems, []);
});
