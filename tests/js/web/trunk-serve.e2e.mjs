// End to end: the development loop of the README ("For development"). The server runs on its default address,
// 127.0.0.1:4000, and `trunk serve` runs in the repository root with the committed Trunk.toml. Through Trunk's port
// alone, the app must load, `/dev/` and `POST /graphql` must reach the server, and the app's WebSocket on
// `/graphql/ws` must carry the subscription: the order a user places follows the worker to SHIPPED.
//
// Run by `cargo xtask test` after the web app's other end-to-end test; every missing input fails loudly. Needs
// SUBSIGNAL_BIN, CHROMIUM, and `trunk` on PATH; 127.0.0.1:4000 must be free, because that is where Trunk.toml proxies.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Subsignal, launchChromium } from "../e2e/subsignal.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const BACKEND = "127.0.0.1:4000"; // Trunk.toml's proxy backends

let server;
let trunk;
let base;
let browser;
let dist;

/** A port nobody listens on right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer().once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** `trunk serve` in the repository root; resolves once it serves, rejects at once if it fails or panics. */
function startTrunk(port, dist) {
  // Its own dist folder: the release build in dist/ stays as `cargo xtask` built it.
  const child = spawn("trunk", ["serve", "--offline", "--address", "127.0.0.1", "--port", String(port), "--dist", dist], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "true" }, // Trunk takes NO_COLOR as its --no-color flag: true or false
  });
  const ready = new Promise((resolve, reject) => {
    // The first dev build of a fresh checkout compiles the app; later ones reuse cargo's cache.
    const timer = setTimeout(() => reject(new Error("trunk serve did not start serving within 10 minutes")), 600_000);
    const fail = (why) => { clearTimeout(timer); reject(new Error(why)); };
    child.once("error", (e) => fail(`cannot run trunk (${e.message}); \`cargo xtask test\` installs it`));
    child.once("exit", (code) => fail(`trunk serve exited with ${code} before serving`));
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        process.stderr.write(`trunk: ${line}\n`); // Trunk's own progress
        if (/panicked/.test(line)) fail(`trunk serve panicked: ${line}`);
        if (/server listening at/.test(line)) { clearTimeout(timer); resolve(); }
      });
    }
  });
  return { child, ready };
}

async function stopTrunk(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGINT");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

before(async () => {
  server = new Subsignal({ listen: BACKEND });
  await server.start().catch((e) => {
    throw new Error(`${e.message}. Trunk.toml proxies to ${BACKEND}, so this test needs that address free: stop what ` +
      "listens there (a `subsignal serve` started by hand?) and run the tests again");
  });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  dist = mkdtempSync(join(tmpdir(), "subsignal-trunk-dist-"));
  const started = startTrunk(port, dist);
  trunk = started.child;
  await started.ready;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  if (trunk) await stopTrunk(trunk);
  await server?.stop();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

const json = async (res) => {
  assert.equal(res.status, 200, `${res.url}: HTTP ${res.status}`);
  return res.json();
};

test("Trunk serves the app and its netsim.json, and proxies /dev/ and POST /graphql to the server", async () => {
  const page = await (await fetch(`${base}/`)).text();
  assert.match(page, /subsignal-web-[0-9a-f]+\.js/, "the page Trunk serves loads the app");
  assert.deepEqual(await json(await fetch(`${base}/netsim.json`)), { control: null });

  assert.deepEqual(await json(await fetch(`${base}/dev/users`)), await json(await fetch(`${server.http}/dev/users`)));
  const { token } = await json(await fetch(`${base}/dev/token?user=alice`));
  const post = (body, headers = {}) => fetch(`${base}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const created = await json(await post({
    query: "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id status owner } }",
    variables: { input: { customerName: "Via Trunk", email: "trunk@example.com",
      items: [{ sku: "tea", quantity: 1, unitPriceCents: 450 }] } },
  }, { authorization: `Bearer ${token}` }));
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  assert.equal(created.data.createOrder.owner, "alice");

  // The server's refusals come back unchanged: a forged token is its 401 with its error code.
  const refused = await post({ query: "{ __typename }" }, { authorization: "Bearer not-a-token" });
  assert.equal(refused.status, 401);
  assert.equal((await refused.json()).errors[0].extensions.code, "UNAUTHENTICATED");
});

test("the app served by trunk serve goes live over the proxied WebSocket and follows an order to SHIPPED", async () => {
  const consoleErrors = [];
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("console", (msg) => { if (msg.type() === "error") consoleErrors.push(msg.text()); });
  page.on("pageerror", (e) => consoleErrors.push(e.message));
  const sockets = [];
  page.on("websocket", (ws) => sockets.push(ws.url()));

  await page.goto(`${base}/?as=alice`);
  await page.getByTestId("connection").filter({ hasText: "Live" }).waitFor({ timeout: 30_000 });
  assert.ok(sockets.includes(`ws://127.0.0.1:${new URL(base).port}/graphql/ws`), `sockets: ${sockets.join(", ")}`);

  // The order placed over HTTP in the other test is in the snapshot; a new one advances by subscription events only.
  const order = (name) => page.locator("li.order", { hasText: name });
  await order("Via Trunk").waitFor();
  await page.getByLabel("Name").fill("Dev Loop");
  await page.getByLabel("Email").fill("dev@example.com");
  await page.getByRole("button", { name: "Place order" }).click();
  await order("Dev Loop").and(page.locator("[data-status=SHIPPED]")).waitFor({ timeout: 20_000 });
  await page.getByTestId("netsim-off").waitFor();
  assert.deepEqual(consoleErrors, []);
  await context.close();
});
