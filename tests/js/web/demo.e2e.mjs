// End to end: `cargo xtask demo`, as a person runs it (with --debug, whose server build the test run already made).
// It must print the URL and the demo users, and the URL must give the app, live, through the network simulator,
// with the Network panel able to switch profiles. Ctrl-C stops the server and the simulator.
//
// Run by `cargo xtask test` after the web app is built; needs CHROMIUM. Picks three free ports in a row.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { launchChromium } from "../e2e/subsignal.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");

let demo;
let output = "";
let url;
let browser;

const listenable = (port) => new Promise((resolve) => {
  const probe = createServer().once("error", () => resolve(false));
  probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
});

/** A port P with P, P+1 and P+2 free: the demo's app, server and control API. */
async function freeTriple() {
  for (let port = 41000 + Math.floor(Math.random() * 2000) * 3; port < 65000; port += 3) {
    if ((await listenable(port)) && (await listenable(port + 1)) && (await listenable(port + 2))) return port;
  }
  throw new Error("no three free ports in a row");
}

const accepting = (port) => new Promise((resolve) => {
  const socket = createConnection({ port, host: "127.0.0.1" });
  socket.once("connect", () => { socket.destroy(); resolve(true); });
  socket.once("error", () => resolve(false));
});

before(async () => {
  const port = await freeTriple();
  // Its own process group, so that the test can send Ctrl-C to the whole demo as a terminal would.
  demo = spawn("cargo", ["xtask", "demo", "--debug", "--port", String(port)], {
    cwd: root, detached: true, stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" }, // the common convention, which Trunk alone refuses (xtask translates it)
  });
  url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo printed no URL within 10 minutes:\n${output}`)), 600_000);
    demo.once("exit", (code) => { clearTimeout(timer); reject(new Error(`the demo exited with ${code}:\n${output}`)); });
    for (const stream of [demo.stdout, demo.stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        output += `${line}\n`;
        const m = line.match(/subsignal demo: open (http:\/\/\S+\/)/);
        if (m) { clearTimeout(timer); resolve(m[1]); }
      });
    }
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  if (demo && demo.exitCode === null && demo.signalCode === null) {
    try { process.kill(-demo.pid, "SIGKILL"); } catch { /* already gone */ }
  }
});

test("the demo prints its URL and users, and serves the live app through the simulator", async () => {
  assert.match(output, /sign in as alice, bob or admin/);
  const page = await browser.newPage();
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${url}?as=alice`);
  await page.getByTestId("connection").filter({ hasText: "Live" }).waitFor({ timeout: 30_000 });
  // The seeded database gives alice orders to look at.
  await page.locator("li.order").first().waitFor();
  // The demo serves a copy of dist/, folders included: a SharedWorker (`?shared=worker`) fetches the glue's snippets,
  // which a page takes from index.html's import map.
  const snippets = readdirSync(join(root, "dist/snippets"), { recursive: true }).filter((f) => f.endsWith(".js"));
  assert.ok(snippets.length > 0, "the build has wasm-bindgen snippets");
  for (const file of snippets) {
    // Compared by content: the server answers an unknown path with the app's index.html, for its routes.
    const served = await (await fetch(`${url}snippets/${file}`)).text();
    assert.equal(served, readFileSync(join(root, "dist/snippets", file), "utf8"), `snippets/${file}`);
  }

  // The Network panel talks to the simulator: switching the profile shows its figures.
  const figures = page.locator(".netsim .figures");
  await figures.filter({ hasText: "round trip 0 ms" }).waitFor();
  await page.getByLabel("Simulated network").selectOption("slow-4g");
  await figures.filter({ hasText: /round trip [1-9]\d* ms/ }).waitFor();
  const control = output.match(/curl -X PUT (http:\/\/[^/\s]+)\/profile/)[1];
  assert.equal((await (await fetch(`${control}/profile`)).json()).name, "slow-4g");
  await page.getByLabel("Simulated network").selectOption("none");
  await figures.filter({ hasText: "round trip 0 ms" }).waitFor();
  await page.getByTestId("connection").filter({ hasText: "Live" }).waitFor();
  assert.deepEqual(errors, []);
  await page.close();
});

test("Ctrl-C stops the demo: server and simulator", async () => {
  const port = Number(new URL(url).port);
  const exited = new Promise((resolve) => demo.once("exit", (code, signal) => resolve({ code, signal })));
  process.kill(-demo.pid, "SIGINT");
  await exited;
  // cargo exits first; its children finish their own shutdown within moments.
  for (const p of [port, port + 1, port + 2]) {
    const deadline = Date.now() + 10_000;
    while ((await accepting(p)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await accepting(p), false, `port ${p} still accepts 10 s after Ctrl-C`);
  }
});
