// Starts and stops `subsignal serve` processes for the browser tests, keeping one data directory across restarts.
// The binary comes from SUBSIGNAL_BIN (set by `cargo xtask`); there is no fallback, so a missing binary fails loudly.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { createInterface } from "node:readline";

/** The data folders of every server these tests made: removed when the test process exits. */
const dataDirs = new Set();
process.once("exit", () => {
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

export class Subsignal {
  /** @param {{ web?: string, stepDelayMs?: number, listen?: string, args?: string[] }} options */
  constructor(options = {}) {
    const bin = process.env.SUBSIGNAL_BIN;
    if (!bin) throw new Error("SUBSIGNAL_BIN is not set: run the browser tests through `cargo xtask`");
    this.bin = bin;
    this.dataDir = mkdtempSync(join(tmpdir(), "subsignal-browser-"));
    dataDirs.add(this.dataDir);
    this.web = options.web ?? join(this.dataDir, "no-web");
    mkdirSync(this.web, { recursive: true });
    this.stepDelayMs = options.stepDelayMs ?? 0;
    this.listen = options.listen ?? "127.0.0.1:0";
    this.args = options.args ?? [];
    this.child = null;
    this.addr = null;
  }

  /** Starts the server (same data directory every time) and resolves with its `host:port`. */
  async start() {
    if (this.child) throw new Error("subsignal is already running");
    const child = spawn(this.bin, ["serve", "--listen", this.listen, "--data-dir", this.dataDir, "--dev-tokens",
      "--step-delay-ms", String(this.stepDelayMs), "--web", this.web, ...this.args], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, NO_COLOR: "1", RUST_LOG: process.env.RUST_LOG ?? "warn,subsignal=info" },
    });
    this.child = child;
    this.addr = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("subsignal did not start listening within 20 s")), 20_000);
      child.once("exit", (code) => reject(new Error(`subsignal exited with ${code} before listening`)));
      createInterface({ input: child.stdout }).on("line", (line) => {
        const m = line.match(/listening on http:\/\/(\S+)/);
        if (m) { clearTimeout(timer); resolve(m[1]); }
      });
    });
    return this.addr;
  }

  /** Stops the server and waits until it has exited. */
  async stop() {
    const child = this.child;
    if (!child) return;
    this.child = null;
    this.addr = null;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
  }

  get http() { return `http://${this.addr}`; }

  /** A GraphQL request to this server as `user` (a demo user's dev token), resolving with the response's body. */
  async gql(user, query, variables) {
    const { token } = await (await fetch(`${this.http}/dev/token?user=${user}`)).json();
    const res = await fetch(`${this.http}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    return res.json();
  }

  /** Every order `user` may see, as `listOrders` pages them, with these fields. */
  async listOrders(user, fields) {
    const all = [];
    let nextToken = null;
    do {
      const query = `query($t: String) { listOrders(limit: 1000, nextToken: $t) { items { ${fields} } nextToken } }`;
      const { data } = await this.gql(user, query, { t: nextToken });
      all.push(...data.listOrders.items);
      nextToken = data.listOrders.nextToken;
    } while (nextToken);
    return all;
  }
}

/**
 * Starts `subsignal netsim` in front of `upstream` on free ports; resolves with `{ child, addr, control, stop() }`.
 * @param {{ upstream: string, profile?: string, seed?: number, profilesFile?: string }} options
 */
export function startNetsim({ upstream, profile = "none", seed = 42, profilesFile }) {
  const bin = process.env.SUBSIGNAL_BIN;
  if (!bin) throw new Error("SUBSIGNAL_BIN is not set: run this through `cargo xtask`");
  const child = spawn(bin, ["netsim", "--listen", "127.0.0.1:0", "--upstream", upstream, "--control", "127.0.0.1:0",
    "--profile", profile, "--seed", String(seed), ...(profilesFile ? ["--profiles-file", profilesFile] : [])], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, NO_COLOR: "1" } });
  return new Promise((resolve, reject) => {
    const found = {};
    const timer = setTimeout(() => reject(new Error("netsim did not start within 20 s")), 20_000);
    child.once("exit", (code) => reject(new Error(`netsim exited with ${code}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const listen = line.match(/netsim is listening on (\S+)/);
      const control = line.match(/control API: (http:\/\/[^/\s]+)/);
      if (listen) found.addr = listen[1];
      if (control) found.control = control[1];
      if (found.addr && found.control) {
        clearTimeout(timer);
        resolve({
          child, ...found,
          async stop() {
            if (child.exitCode !== null) return;
            const exited = new Promise((r) => child.once("exit", r));
            child.kill("SIGTERM");
            await exited;
          },
        });
      }
    });
  });
}

/**
 * Debian's Chromium, headless, through playwright-core (never a downloaded browser). The path comes from CHROMIUM.
 * The flags keep it from reaching the internet at start, and let it run as root; a test may add its own.
 */
export async function launchChromium(extraArgs = []) {
  const executablePath = process.env.CHROMIUM;
  if (!executablePath) throw new Error("CHROMIUM is not set: run this through `cargo xtask`");
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath,
    // --expose-gc: tests that check what survives garbage collection call gc().
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
      "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
      "--js-flags=--expose-gc", ...extraArgs],
  });
}

/** An environment variable the test needs; a missing one fails loudly. */
/** A free TCP port on loopback, so that a restarted server listens where the first one did. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
    probe.on("error", reject);
  });
}

export function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this test through \`cargo xtask test-browser\``);
  return value;
}

/**
 * An example app (a folder with index.html and app.js) with the npm package from SUBSIGNAL_NPM_PACKAGE under its
 * node_modules/@subsignal/store, served by a `subsignal serve` of its own, and a Chromium to open it in. Pages
 * opened with `openPage` record their page and console errors in `problems`.
 * @param {{ example: string, stepDelayMs?: number, args?: string[] }} options
 */
export async function startExampleSite({ example, stepDelayMs, args }) {
  const site = mkdtempSync(join(tmpdir(), "subsignal-site-"));
  cpSync(example, site, { recursive: true });
  cpSync(need("SUBSIGNAL_NPM_PACKAGE"), join(site, "node_modules/@subsignal/store"), { recursive: true });
  const server = new Subsignal({ web: site, stepDelayMs, args });
  await server.start();
  const browser = await launchChromium();
  const problems = [];
  return {
    server,
    problems,
    /** Opens the example as `user` and waits until its store is live. */
    async openPage(user = "alice") {
      const page = await browser.newPage();
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      page.on("console", (m) => { if (m.type() === "error") problems.push(`console error: ${m.text()}`); });
      await page.goto(`${server.http}/index.html?user=${user}`);
      await page.locator("#connection", { hasText: "live" }).waitFor({ timeout: 20_000 });
      return page;
    },
    async stop() {
      await browser.close();
      await server.stop();
      rmSync(site, { recursive: true, force: true });
    },
  };
}

/** One sample of `name` in the Prometheus text a server serves at `port` (its `--metrics-listen`), summed over its
 * labels; 0 when absent. */
export async function metricAt(port, name) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text.split("\n").filter((l) => l.startsWith(name + "{") || l.startsWith(name + " "))
    .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
}

/** Polls `check` (an async function) until it is true; fails after 30 s, naming `what`. */
export async function until(check, what) {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until every page shows the optimistic row of the order `name` made with `window.create`, one mutation
 * pending. */
export async function showPending(pages, name) {
  for (const page of pages) {
    await page.waitForFunction((n) => window.store.row("orders", "tmp-" + n)?.customerName === n, name, { timeout: 30_000 });
    await page.waitForFunction(() => window.store.getSnapshot().pendingMutations === 1, null, { timeout: 30_000 });
    // Every tab lists the queued mutation, a following tab the host's queue.
    const queued = await page.evaluate(() => window.store.pendingMutations());
    assert.equal(queued.length, 1, JSON.stringify(queued));
    assert.equal(queued[0].mutation.variables.input.customerName, name, JSON.stringify(queued));
  }
}

/** Waits until `page`'s `window.create` of the order `name` has its answer, and gives it (`{ ok }` or `{ error }`). */
export async function answerIn(page, name) {
  await page.waitForFunction((n) => window.results[n] !== undefined, name, { timeout: 60_000 });
  return page.evaluate((n) => window.results[n], name);
}

/** Orders as one comparable string: id, status and version of each. */
const ordersKey = (rows) => rows.map((o) => `${o.id}:${o.status}:${o.version}`).sort().join();

/** Waits until `server`'s worker has moved every one of alice's orders along (the truth stops moving) and gives
 * them, with `fields`. */
export async function settledOrders(server, fields) {
  for (;;) {
    const rows = await server.listOrders("alice", fields);
    if (rows.every((o) => o.status === "SHIPPED")) return rows;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the page's store (`window.store`) is live and shows exactly `truth`'s orders. */
export async function liveAndEqual(page, truth) {
  await page.waitForFunction((want) => window.store.isLive("orders")
    && window.store.rows("orders").map((o) => `${o.id}:${o.status}:${o.version}`).sort().join() === want,
  ordersKey(truth), { timeout: 30_000 });
}

/** The order fields the npm-package pages below read and write. */
export const ORDER = "id owner customerName status version";
/** createOrder with a clientMutationId, answering the fields above. */
export const CREATE = `mutation($input: CreateOrderInput!, $clientMutationId: ID) { createOrder(input: $input, clientMutationId: $clientMutationId) { ${ORDER} } }`;

/**
 * A test page of the npm package (SUBSIGNAL_NPM_PACKAGE, copied under node_modules/@subsignal/store) in a new folder,
 * served by a `subsignal serve` of its own with metrics, and a Chromium. The page's module script makes
 * `window.store` as `params.get("token")`, with fast reconnects and the options `storeOptions` (JavaScript source
 * where `params` is the address's query), watches the persisted orders collection, runs `extra` (JavaScript source),
 * connects, and sets `window.ready`. `window.create(query, name)` creates an order named `name` with an optimistic
 * row `tmp-<name>`; its answer lands in `window.results[name]`.
 * @param {{ name: string, storeOptions: string, extra?: string, chromiumArgs?: string[] }} page
 */
export async function startOrdersPage({ name, storeOptions, extra = "", chromiumArgs = [] }) {
  const site = mkdtempSync(join(tmpdir(), `subsignal-${name}-`));
  cpSync(need("SUBSIGNAL_NPM_PACKAGE"), join(site, "node_modules/@subsignal/store"), { recursive: true });
  writeFileSync(join(site, "index.html"), `<!doctype html><meta charset="utf-8"><title>${name}</title>
<script type="module">
import init, { Store } from "./node_modules/@subsignal/store/subsignal_store.js";
await init();
const params = new URLSearchParams(location.search);
const store = new Store({ httpUrl: location.origin + "/graphql", wsUrl: location.origin.replace(/^http/, "ws") + "/graphql",
  token: params.get("token"), connection: { pingIntervalMs: 1000, pongTimeoutMs: 1000, backoffBaseMs: 50, backoffCapMs: 300 },
  ${storeOptions} });
store.watch({ name: "orders", persist: true, subscriptionField: "onOrderChanged", entityField: "order", snapshotField: "listOrders",
  subscription: "subscription($afterSeq: Int) { onOrderChanged(afterSeq: $afterSeq) { seq prevSeq op key version expired clientMutationId order { ${ORDER} } } }",
  snapshotQuery: "query($limit: Int, $nextToken: String) { listOrders(limit: $limit, nextToken: $nextToken) { items { ${ORDER} } nextToken seq } }" });
window.store = store;
window.results = {};
window.create = (query, name) => {
  store.mutate({ query, resultField: "createOrder", collection: "orders",
    variables: { input: { customerName: name, email: "s@example.com", items: [{ sku: "tea", quantity: 1, unitPriceCents: 450 }] } },
    optimistic: { kind: "upsert", row: { id: "tmp-" + name, owner: "alice", customerName: name, status: "SUBMITTED", version: 0 } } })
    .then((row) => { window.results[name] = { ok: row }; }, (e) => { window.results[name] = { error: String(e?.message ?? e) }; });
};
${extra}
store.connect();
window.ready = true;
</script>`);
  const metricsPort = await freePort();
  const server = new Subsignal({ web: site, stepDelayMs: 0, listen: `127.0.0.1:${await freePort()}`,
    args: ["--metrics-listen", `127.0.0.1:${metricsPort}`] });
  await server.start();
  const browser = await launchChromium(chromiumArgs);
  return {
    site,
    server,
    browser,
    /** One sample of the server's /metrics, summed over its labels. */
    metric: (metric) => metricAt(metricsPort, metric),
    /** A dev token of `user`. */
    async token(user = "alice") {
      return (await (await fetch(`${server.http}/dev/token?user=${user}`)).json()).token;
    },
    /** How many of alice's orders named `order` the server holds. */
    async written(order) {
      return (await server.listOrders("alice", ORDER)).filter((o) => o.customerName === order).length;
    },
    /** Opens `url` in `ctx` once the page is ready, recording its page errors and console warnings. */
    async open(ctx, url) {
      const page = await ctx.newPage();
      page.errors = [];
      page.warnings = [];
      page.on("pageerror", (e) => page.errors.push(e.message));
      page.on("console", (m) => { if (m.type() === "warning") page.warnings.push(m.text()); });
      await page.goto(url);
      await page.waitForFunction(() => window.ready === true);
      return page;
    },
    /** A new browser context (the tabs of one origin) whose pages under /`prefix`/ come from the site folder, on the
     * server's own origin, whether the server runs or not. (Such a page has no address space of its own: pass
     * chromiumArgs ["--disable-features=LocalNetworkAccessChecks"], or Chromium blocks its WebSocket to loopback.) */
    async contextFromDisk(prefix) {
      const ctx = await browser.newContext();
      const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
      await ctx.route((url) => url.pathname.startsWith(`/${prefix}/`), (route) => {
        const path = join(site, new URL(route.request().url()).pathname.slice(prefix.length + 2));
        route.fulfill({ status: 200, contentType: types[extname(path)] ?? "application/octet-stream", body: readFileSync(path) });
      });
      return ctx;
    },
    async stop() {
      await browser.close();
      await server.stop();
      rmSync(site, { recursive: true, force: true });
    },
  };
}
