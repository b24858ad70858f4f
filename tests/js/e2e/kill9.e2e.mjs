// kill -9 of the server under write load from two npm-package stores in Debian's headless Chromium (issue 16's first
// fault, with the browser shell; tests/faults.rs has it with the store core driven natively, on both backends).
// Two users each fire their orders at once; once some are acknowledged the server is killed with SIGKILL and started
// again on the same address and data directory. Then: every order a page saw acknowledged is on the server, each
// order landed exactly once however often it was retried, each page's rows equal a fresh listOrders, and no event
// (by its seq) was applied twice. Seeded by SUBSIGNAL_FAULT_SEED (printed on failure). Run by `cargo xtask test`
// (SUBSIGNAL_BIN, SUBSIGNAL_NPM_PACKAGE, CHROMIUM).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, launchChromium, need, Subsignal } from "./subsignal.mjs";

const SEED = Number(process.env.SUBSIGNAL_FAULT_SEED ?? Date.now() % 100_000);
/** A small deterministic generator (mulberry32), so that a failing seed replays the same kill point. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = random(SEED);
const ORDERS = 40;
/** How many acknowledgements (of both pages) before the kill: 5 to 45. */
const KILL_AFTER = 5 + Math.floor(rand() * 40);
const ORDER = "id owner customerName status version";

let server, browser, site;

before(async () => {
  site = mkdtempSync(join(tmpdir(), "subsignal-kill9-"));
  cpSync(need("SUBSIGNAL_NPM_PACKAGE"), join(site, "node_modules/@subsignal/store"), { recursive: true });
  writeFileSync(join(site, "index.html"), `<!doctype html><meta charset="utf-8"><title>kill -9</title>
<script type="importmap">{"imports": {"@subsignal/store": "/node_modules/@subsignal/store/subsignal_store.js"}}</script>
<script type="module">
import init, { Store } from "@subsignal/store";
await init();
const user = new URLSearchParams(location.search).get("user");
const token = async () => (await (await fetch("/dev/token?user=" + user)).json()).token;
const store = new Store({ httpUrl: location.origin + "/graphql", wsUrl: location.origin.replace(/^http/, "ws") + "/graphql",
  token, connection: { pingIntervalMs: 1000, pongTimeoutMs: 1000, backoffBaseMs: 50, backoffCapMs: 500 } });
store.watch({ name: "orders", subscriptionField: "onOrderChanged", entityField: "order", snapshotField: "listOrders",
  subscription: "subscription($afterSeq: Int) { onOrderChanged(afterSeq: $afterSeq) { seq prevSeq op key version expired order { ${ORDER} } } }",
  snapshotQuery: "query($limit: Int, $nextToken: String) { listOrders(limit: $limit, nextToken: $nextToken) { items { ${ORDER} } nextToken seq } }" });
window.applied = [];
store.onRow((collection, change, origin) => { if (origin.kind === "event" && origin.seq !== null) window.applied.push(origin.seq); });
store.connect();
window.store = store;
</script>`);
  server = new Subsignal({ web: site, stepDelayMs: 0, listen: `127.0.0.1:${await freePort()}` });
  await server.start();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (site) rmSync(site, { recursive: true, force: true });
});

test(`kill -9 under write load from two stores in Chromium loses nothing acknowledged (seed ${SEED})`, { timeout: 300_000 }, async (t) => {
  t.diagnostic(`SUBSIGNAL_FAULT_SEED=${SEED}: the kill comes after ${KILL_AFTER} acknowledgements`);
  const users = ["alice", "bob"];
  const pages = [];
  for (const user of users) {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${server.http}/index.html?user=${user}`);
    await page.waitForFunction(() => window.store?.isLive("orders"), null, { timeout: 30_000 });
    pages.push({ user, page, errors });
  }
  // Every order at once: each store queues them and sends them one by one, across the kill.
  for (const { user, page } of pages) {
    await page.evaluate(([user, n]) => {
      window.acked = [];
      window.refused = [];
      for (let i = 0; i < n; i++) {
        window.store.mutate({
          query: "mutation($input: CreateOrderInput!, $clientMutationId: ID) { createOrder(input: $input, clientMutationId: $clientMutationId) { id } }",
          variables: { input: { customerName: `${user} ${i}`, email: "k@example.com", items: [{ sku: "tea", quantity: 1, unitPriceCents: 450 }] } },
          resultField: "createOrder",
        }).then((o) => window.acked.push(o.id), (e) => window.refused.push(String(e.message ?? e)));
      }
    }, [user, ORDERS]);
  }
  const acked = async () => (await Promise.all(pages.map(({ page }) => page.evaluate(() => window.acked.length)))).reduce((a, b) => a + b, 0);
  const deadline = Date.now() + 60_000;
  while ((await acked()) < KILL_AFTER) {
    assert.ok(Date.now() < deadline, "the orders were not acknowledged before the kill");
    await new Promise((r) => setTimeout(r, 20));
  }
  const child = server.child;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
  server.child = null;
  const killedAt = await acked();
  await server.start();

  for (const { user, page } of pages) {
    await page.waitForFunction((n) => window.acked.length + window.refused.length === n, ORDERS, { timeout: 120_000, polling: 100 });
    const { acked: ids, refused } = await page.evaluate(() => ({ acked: window.acked, refused: window.refused }));
    assert.deepEqual(refused, [], `${user}: nothing refused`);
    const truth = await server.listOrders(user, ORDER);
    const names = truth.map((o) => o.customerName).sort();
    assert.deepEqual(names, Array.from({ length: ORDERS }, (_, i) => `${user} ${i}`).sort(), `${user}: each order landed exactly once`);
    const onServer = new Set(truth.map((o) => o.id));
    assert.ok(ids.every((id) => onServer.has(id)), `${user}: every acknowledged order is on the server`);
  }
  // The worker ships every order; each page ends equal to the server, having applied each event once.
  for (const { user, page, errors } of pages) {
    const key = (rows) => rows.map((o) => `${o.id}:${o.status}:${o.version}`).sort().join();
    let truth = "";
    let seen = "";
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      const rows = await server.listOrders(user, ORDER);
      truth = key(rows);
      seen = key(await page.evaluate(() => window.store.rows("orders")));
      if (rows.every((o) => o.status === "SHIPPED") && seen === truth) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(seen, truth, `${user}: the store equals the server`);
    const applied = await page.evaluate(() => window.applied);
    assert.equal(new Set(applied).size, applied.length, `${user}: no seq applied twice`);
    assert.deepEqual(errors, []);
  }
  t.diagnostic(`killed after ${killedAt} acknowledgements`);
});
