// The React example end to end: examples/react-vite, built by Vite from the npm tarballs of @subsignal/store and
// @subsignal/react, served by a real `subsignal serve` and driven in Debian's headless Chromium by playwright-core.
// Most tests open the development build (under /dev/: React's warnings on, StrictMode's double renders and effects),
// one the production build, one the app as Vite's dev server (`vite`, `npm run dev`) serves it. Run by `cargo xtask test-browser`, which builds the site and sets SUBSIGNAL_BIN,
// SUBSIGNAL_REACT_SITE, SUBSIGNAL_REACT_EXAMPLE and CHROMIUM; a missing one fails the test.
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { launchChromium, need, Subsignal } from "./subsignal.mjs";

const OPEN = ["SUBMITTED", "PAID", "PREPARING"];
const run = Date.now().toString(36);

let server;
let browser;
/** Console errors and warnings, and uncaught errors, of every page. */
let problems = [];

before(async () => {
  // The worker waits a minute before each step, so every order stays SUBMITTED unless a test cancels it; the
  // server stops without waiting for it.
  server = new Subsignal({ web: need("SUBSIGNAL_REACT_SITE"), stepDelayMs: 60_000, args: ["--shutdown-grace-ms", "0"] });
  await server.start();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

afterEach(() => {
  const seen = problems;
  problems = [];
  assert.deepEqual(seen, [], "no console error or warning (React's warnings included) and no uncaught error");
});

/** Opens the app at `url` (by default the development build) as `user` and waits until its store is live; with
 * `context`, as a tab of that browser context, and with `query` added to the address. */
async function openApp(user = "alice", url = `${server.http}/dev/`, { context = browser, query = "" } = {}) {
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
  });
  await page.goto(`${url}index.html?user=${user}${query}`);
  await page.locator("#connection", { hasText: "live" }).waitFor({ timeout: 20_000 });
  await page.locator("#all").waitFor({ state: "attached", timeout: 10_000 });
  return page;
}

async function gql(user, query, variables) {
  const body = await server.gql(user, query, variables);
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data;
}

/** Creates an order as `user` from outside the page; gives its id and version. */
async function createElsewhere(user, customerName) {
  const data = await gql(user, "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id version } }", {
    input: { customerName, email: "else@example.com", items: [{ sku: "TEA", quantity: 1, unitPriceCents: 100 }] },
  });
  return data.createOrder;
}

/** The keys a list shows, in order. */
const keysOf = (page, list) => page.locator(`${list} li`).evaluateAll((lis) => lis.map((li) => li.dataset.key));

test("the example's schema.graphql, which its typed documents come from, is the server's /schema.graphql", async () => {
  const committed = readFileSync(join(need("SUBSIGNAL_REACT_EXAMPLE"), "schema.graphql"), "utf8");
  const served = await (await fetch(`${server.http}/schema.graphql`)).text();
  assert.ok(committed === served, "examples/react-vite/schema.graphql is stale: fetch it again from /schema.graphql " +
    "(`curl http://127.0.0.1:4000/schema.graphql > schema.graphql`), then `npm run codegen`");
});

test("an order created elsewhere shows in the live list, and the open-orders view filters and sorts", async () => {
  const page = await openApp("alice");
  const first = await createElsewhere("alice", `First ${run}`);
  const second = await createElsewhere("alice", `Second ${run}`);
  const third = await createElsewhere("alice", `Third ${run}`);
  for (const { id } of [first, second, third]) {
    await page.locator(`#all li[data-key="${id}"]`).waitFor({ timeout: 10_000 });
  }
  await page.locator(`#open li[data-key="${third.id}"]`).waitFor({ timeout: 10_000 });
  assert.match(await page.locator("#lag").textContent(), /arrived -?\d+ ms after it committed/, "the collection's lag shows");
  const shown = await keysOf(page, "#open");
  const mine = shown.filter((k) => [first.id, second.id, third.id].includes(k));
  // Newest first; orders created in the same instant (createdAt alike) go by key, as a view breaks every tie.
  const createdAt = await page.locator("#open li").evaluateAll((lis) => Object.fromEntries(lis.map((li) => [li.dataset.key, li.dataset.created])));
  const newestFirst = [first.id, second.id, third.id]
    .sort((a, b) => (createdAt[a] === createdAt[b] ? (a < b ? -1 : 1) : createdAt[a] < createdAt[b] ? 1 : -1));
  assert.deepEqual(mine, newestFirst, "newest first");
  assert.ok(createdAt[third.id] >= createdAt[first.id], "the third order is no older than the first");

  // Cancelled elsewhere: it leaves the view of open orders, and the live list shows its new status.
  await gql("alice", "mutation($id: ID!, $v: Int!) { cancelOrder(id: $id, expectedVersion: $v) { id } }", {
    id: second.id,
    v: second.version,
  });
  await page.locator(`#all li[data-key="${second.id}"][data-status=CANCELLED]`).waitFor({ timeout: 10_000 });
  await page.locator(`#open li[data-key="${second.id}"]`).waitFor({ state: "detached", timeout: 10_000 });
  const open = await page.locator("#open li").evaluateAll((lis) => lis.map((li) => [li.dataset.status, li.dataset.created]));
  assert.ok(open.length >= 2);
  for (const [status] of open) assert.ok(OPEN.includes(status), `only open orders (${status})`);
  const created = open.map(([, c]) => c);
  assert.deepEqual(created, [...created].sort().reverse(), "sorted by createdAt, newest first");
  const all = await page.locator("#all li").evaluateAll((lis) => lis.filter((li) => ["SUBMITTED", "PAID", "PREPARING"]
    .includes(li.dataset.status)).length);
  assert.equal(open.length, all, "the view holds every open order of the live list");
  await page.close();
});

// Two tabs of one browser context with `?shared=<mode>`: their shared roles, sorted, and then an order created
// elsewhere shows in both (the hooks are live in every tab).
const sharedModes = [
  // The leader-tab mode (`shared: "tab"`, and where the browser has no SharedWorker).
  ["with shared: \"tab\", two tabs share one store and the hooks show it live in both", "tab", ["follower", "host"]],
  ["with shared: true and Vite's worker URL, both tabs follow the store's SharedWorker", "true", ["worker", "worker"]],
];
for (const [title, mode, expectedRoles] of sharedModes) {
  test(title, async () => {
    const context = await browser.newContext();
    const tabs = [];
    for (let i = 0; i < 2; i++) tabs.push(await openApp("alice", undefined, { context, query: `&shared=${mode}` }));
    const roles = await Promise.all(tabs.map((tab) => tab.evaluate(() => window.subsignal.store.sharedRole)));
    assert.deepEqual(roles.sort(), expectedRoles);
    const order = await createElsewhere("alice", `Shared ${mode} ${run}`);
    for (const tab of tabs) await tab.locator(`#all li[data-key="${order.id}"]`).waitFor({ timeout: 10_000 });
    await context.close();
  });
}

test("a held view stays put while orders arrive, and shows them when released", async () => {
  const page = await openApp("bob");
  const before = await createElsewhere("bob", `Before hold ${run}`);
  await page.locator(`#held li[data-key="${before.id}"]`).waitFor({ timeout: 10_000 });
  await page.click("#hold");
  await page.locator("#hold", { hasText: "Release" }).waitFor();
  const held = await keysOf(page, "#held");

  const during = await createElsewhere("bob", `During hold ${run}`);
  await page.locator(`#all li[data-key="${during.id}"]`).waitFor({ timeout: 10_000 });
  await page.locator("#waiting", { hasText: "changes waiting" }).waitFor({ timeout: 10_000 });
  assert.deepEqual(await keysOf(page, "#held"), held, "the held view shows what it showed");

  await page.click("#hold");
  await page.locator(`#held li[data-key="${during.id}"]`).waitFor({ timeout: 10_000 });
  assert.equal((await keysOf(page, "#held"))[0], during.id, "released: the new order on top");
  assert.equal(await page.locator("#waiting").textContent(), "");
  await page.close();
});

test("an optimistic create the server refuses is rolled back, with the validation error shown", async () => {
  const page = await openApp("alice");
  // Every name the live list showed for an optimistic row, however briefly.
  await page.evaluate(() => {
    window.optimisticNames = [];
    new MutationObserver(() => {
      for (const li of document.querySelectorAll("#all li[data-optimistic]")) {
        window.optimisticNames.push(li.querySelector(".name")?.textContent);
      }
    }).observe(document.querySelector("#all"), { childList: true, subtree: true, attributes: true });
  });
  const name = `Bad email ${run}`;
  await page.fill("input[name=customerName]", name);
  await page.fill("input[name=email]", "not-an-email");
  await page.click("#create button");
  await page.locator("#errors", { hasText: "email" }).waitFor({ timeout: 10_000 });
  assert.match(await page.locator("#errors").textContent(), /^Invalid: email: /);
  assert.ok((await page.evaluate(() => window.optimisticNames)).includes(name), "the optimistic row showed");
  assert.equal(await page.locator("#all li", { hasText: name }).count(), 0, "and was rolled back");
  await page.locator("#pending", { hasText: "0" }).waitFor();

  // A good one replaces its optimistic row with the server's order.
  const good = `Good ${run}`;
  await page.fill("input[name=customerName]", good);
  await page.fill("input[name=email]", "ada@example.com");
  await page.click("#create button");
  const row = page.locator("#all li:not([data-optimistic])", { hasText: good });
  await row.waitFor({ timeout: 10_000 });
  await page.locator("#pending", { hasText: "0" }).waitFor();
  assert.equal(await page.locator("#all li", { hasText: good }).count(), 1, "replaced, not duplicated");
  assert.equal(await page.locator("#errors").textContent(), "");
  await page.close();
});

test("a view is freed when its component unmounts (StrictMode's double effects included)", async () => {
  const page = await openApp("alice");
  // Count the views opened and freed from here on, through the store's own classes.
  await page.evaluate(() => {
    const store = window.subsignal.store;
    const probe = store.view("orders", {});
    const View = Object.getPrototypeOf(probe);
    probe.free();
    const Store = Object.getPrototypeOf(store);
    const counts = (window.viewCounts = { opened: 0, freed: 0 });
    const { view } = Store;
    const { free } = View;
    Store.view = function (...args) {
      counts.opened += 1;
      return view.apply(this, args);
    };
    View.free = function () {
      counts.freed += 1;
      return free.call(this);
    };
  });
  const counts = () => page.evaluate(() => ({ ...window.viewCounts }));
  await page.uncheck("#show-held");
  await page.locator("#held").waitFor({ state: "detached" });
  await page.waitForFunction(() => window.viewCounts.freed === 1);
  await page.check("#show-held");
  await page.locator("#held").waitFor({ state: "attached" });
  // Views opened by renders that never committed are freed (within a second): then one is open while mounted.
  await page.waitForFunction(() => window.viewCounts.opened - (window.viewCounts.freed - 1) === 1);
  const mounted = await counts();
  assert.ok(mounted.opened >= 1);
  assert.equal(mounted.opened - (mounted.freed - 1), 1, "one view open while mounted");
  await page.uncheck("#show-held");
  await page.waitForFunction(() => window.viewCounts.freed === window.viewCounts.opened + 1);
  await page.close();
});

test("the production build goes live and lists the orders", async () => {
  const page = await openApp("alice", `${server.http}/`);
  await page.locator("#all li").first().waitFor({ timeout: 10_000 });
  const order = await createElsewhere("alice", `Production ${run}`);
  await page.locator(`#open li[data-key="${order.id}"]`).waitFor({ timeout: 10_000 });
  await page.close();
});

test("Vite's dev server serves the app and the store's wasm with the example's own config, and it goes live", async () => {
  const example = need("SUBSIGNAL_REACT_EXAMPLE");
  const vite = await import(pathToFileURL(join(example, "node_modules/vite/dist/node/index.js")).href);
  // Vite's own warnings and errors (a proxy error, say) fail the test too.
  const logger = vite.createLogger("warn");
  const customLogger = {
    ...logger,
    warn: (msg, options) => { problems.push(`vite warning: ${msg}`); logger.warn(msg, options); },
    warnOnce: (msg, options) => { problems.push(`vite warning: ${msg}`); logger.warnOnce(msg, options); },
    error: (msg, options) => { problems.push(`vite error: ${msg}`); logger.error(msg, options); },
  };
  // vite.config.ts proxies /graphql and /dev/token to SUBSIGNAL_URL, as `SUBSIGNAL_URL=… npm run dev` would; `force`
  // (`vite --force`) pre-bundles the freshly installed tarballs again rather than trusting node_modules/.vite.
  process.env.SUBSIGNAL_URL = server.http;
  const dev = await vite.createServer({
    root: example,
    customLogger,
    optimizeDeps: { force: true },
    server: { host: "127.0.0.1", port: 0, strictPort: true },
  });
  try {
    await dev.listen();
    const url = dev.resolvedUrls.local[0];
    const page = await openApp("alice", url);
    const order = await createElsewhere("alice", `Vite dev ${run}`);
    await page.locator(`#open li[data-key="${order.id}"]`).waitFor({ timeout: 10_000 });
    const wasm = await page.evaluate(() => performance.getEntriesByType("resource")
      .filter((e) => new URL(e.name).pathname.endsWith(".wasm")).map((e) => [new URL(e.name).origin, e.responseStatus]));
    assert.deepEqual(wasm, [[new URL(url).origin, 200]], "the store's wasm came from Vite's dev server");
    await page.close();
  } finally {
    await dev.close();
    delete process.env.SUBSIGNAL_URL;
  }
});
