// Through the `flaky` network profile (random stalls and resets), plus connections dropped on purpose every few
// seconds, the npm store with 200 mutations in flight ends equal to the server, with nothing applied twice
// (issue 5's test and RELIABILITY case 10 at a smaller scale). The page and all its traffic go through
// `subsignal netsim`. Run by `cargo xtask test` (SUBSIGNAL_BIN, SUBSIGNAL_NPM_PACKAGE, CHROMIUM).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Subsignal, startNetsim, launchChromium } from "./subsignal.mjs";

const need = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this test through \`cargo xtask test\``);
  return value;
};
// `cargo xtask test` runs this twice: 200 mutations through `flaky` (issue 5), and 1000 through the `chaos` profile of
// chaos-profiles.toml (RELIABILITY case 10).
const MUTATIONS = Number(process.env.FLAKY_MUTATIONS ?? 200);
const PROFILE = process.env.FLAKY_PROFILE ?? "flaky";
const PROFILES_FILE = process.env.FLAKY_PROFILES_FILE;
const ORDER = "id owner status version";

let server, netsim, browser, site;

before(async () => {
  site = mkdtempSync(join(tmpdir(), "subsignal-flaky-"));
  cpSync(need("SUBSIGNAL_NPM_PACKAGE"), join(site, "node_modules/@subsignal/store"), { recursive: true });
  writeFileSync(join(site, "index.html"), `<!doctype html><meta charset="utf-8"><title>flaky</title>
<script type="importmap">{"imports": {"@subsignal/store": "/node_modules/@subsignal/store/subsignal_store.js"}}</script>
<script type="module">
import init, { Store } from "@subsignal/store";
await init();
const { token } = await (await fetch("/dev/token?user=alice")).json();
const store = new Store({ httpUrl: location.origin + "/graphql", wsUrl: location.origin.replace(/^http/, "ws") + "/graphql",
  token, connection: { pingIntervalMs: 2000, pongTimeoutMs: 2000, backoffBaseMs: 100, backoffCapMs: 2000 } });
store.watch({ name: "orders", subscriptionField: "onOrderChanged", entityField: "order", snapshotField: "listOrders",
  subscription: "subscription($afterSeq: Int) { onOrderChanged(afterSeq: $afterSeq) { seq prevSeq op key version expired order { ${ORDER} } } }",
  snapshotQuery: "query($limit: Int, $nextToken: String) { listOrders(limit: $limit, nextToken: $nextToken) { items { ${ORDER} } nextToken seq } }" });
window.states = [];
store.onStatus((s) => window.states.push(s.connection.state));
store.connect();
window.store = store;
</script>`);
  server = new Subsignal({ web: site, stepDelayMs: 0 });
  await server.start();
  netsim = await startNetsim({ upstream: server.addr, profile: PROFILE, seed: 7, profilesFile: PROFILES_FILE });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await netsim?.stop();
  await server?.stop();
  if (site) rmSync(site, { recursive: true, force: true });
});

test(`through the ${PROFILE} profile, ${MUTATIONS} mutations in flight end with the store equal to the server`, { timeout: 600_000 }, async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  for (let attempt = 1; ; attempt++) {
    try {
      await page.goto(`http://${netsim.addr}/index.html`, { timeout: 30_000 });
      await page.waitForFunction(() => window.store?.status().connection.state === "live", null, { timeout: 30_000 });
      break;
    } catch (e) {
      if (attempt === 5) throw e; // the flaky network may reset the page load itself
    }
  }
  // Fire every mutation at once; the store queues them and sends them in order, across disconnects.
  await page.evaluate((n) => {
    window.results = { ok: 0, failed: [] };
    for (let i = 0; i < n; i++) {
      window.store.mutate({
        query: "mutation($input: CreateOrderInput!, $clientMutationId: ID) { createOrder(input: $input, clientMutationId: $clientMutationId) { id owner status version } }",
        variables: { input: { customerName: `flaky ${i}`, email: "flaky@example.com", items: [{ sku: "tea", quantity: 1, unitPriceCents: 450 }] } },
        resultField: "createOrder",
      }).then(() => window.results.ok++, (e) => window.results.failed.push(String(e)));
    }
  }, MUTATIONS);
  // Meanwhile, drop every connection every few seconds on top of the profile's own faults.
  let resets = 0;
  const dropper = setInterval(() => { resets++; fetch(`${netsim.control}/reset`, { method: "POST" }).catch(() => {}); }, 4000);
  try {
    await page.waitForFunction((n) => window.results.ok + window.results.failed.length === n, MUTATIONS, { timeout: 480_000, polling: 500 });
  } finally {
    clearInterval(dropper);
  }
  const results = await page.evaluate(() => window.results);
  assert.deepEqual(results.failed, []);
  assert.equal(results.ok, MUTATIONS);

  // Let the worker finish, then wait for the store to settle on the server's truth.
  const expected = (rows) => rows.map((o) => `${o.id}:${o.status}:${o.version}`).sort();
  let truth = [];
  let seen = [];
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    truth = expected(await server.listOrders("alice", ORDER));
    seen = expected(await page.evaluate(() => window.store.rows("orders")));
    if (truth.length === MUTATIONS && truth.every((t) => t.includes(":SHIPPED:")) && JSON.stringify(seen) === JSON.stringify(truth)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(truth.length, MUTATIONS, "each mutation wrote exactly one order, however often it was retried");
  assert.deepEqual(seen, truth, "the store equals the server");
  const stats = await page.evaluate(() => window.store.stats("orders"));
  const states = await page.evaluate(() => window.states);
  console.log(`# ${PROFILE}: ${MUTATIONS} mutations, ${resets} forced resets, reconnects ${states.filter((s) => s === "reconnecting").length}, stats ${JSON.stringify(stats)}`);
  assert.ok(states.includes("reconnecting"), "the connection did drop and come back");
  assert.ok(stats.subscriptions > 1, "the store resubscribed after drops (gap resync / replay after afterSeq)");
  assert.deepEqual(errors, []);
});
