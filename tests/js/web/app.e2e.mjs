// End to end: the order-form web app (built by Trunk into SUBSIGNAL_WEB_DIST) served by a real `subsignal serve`,
// driven by playwright-core in Debian's Chromium (CHROMIUM). Run by `cargo xtask test`; every missing input fails
// loudly. A screenshot of the final state is written to tests/artifacts/.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, launchChromium, metricAt, Subsignal, until } from "../e2e/subsignal.mjs";

const need = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the web app tests through \`cargo xtask test\``);
  return value;
};
const artifacts = join(dirname(fileURLToPath(import.meta.url)), "../../artifacts");

let server;
let browser;
const consoleErrors = [];
let restarting = false;

before(async () => {
  server = new Subsignal({ web: need("SUBSIGNAL_WEB_DIST"), stepDelayMs: 400 });
  await server.start();
  server.listen = server.addr; // restarts come back on the same address
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A signed-in page of `user` in its own browser context, collecting console errors. */
async function signIn(user, viewport) {
  const context = await browser.newContext(viewport ? { viewport } : {});
  const page = await context.newPage();
  page.on("console", (msg) => {
    // While the server is deliberately down, the browser reports the refused WebSocket and fetches.
    if (msg.type() === "error" && !restarting && !/ERR_CONNECTION_REFUSED|WebSocket connection/.test(msg.text())) {
      consoleErrors.push(`${user}: ${msg.text()}`);
    }
  });
  page.on("pageerror", (e) => consoleErrors.push(`${user}: ${e.message}`));
  await page.goto(`${server.http}/?as=${user}`);
  await page.getByTestId("connection").filter({ hasText: "Live" }).waitFor();
  await page.locator(".orders .loading").waitFor({ state: "detached" });
  return { context, page };
}

/** A page of `user` on `server` in a browser context of its own, live, collecting console errors. */
async function openLive(server, user) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (e) => consoleErrors.push(`${user}: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(`${user}: ${m.text()}`); });
  await page.goto(`${server.http}/?as=${user}`);
  await page.getByTestId("connection").filter({ hasText: "Live" }).waitFor();
  return page;
}

async function placeOrder(page, name, email) {
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Place order" }).click();
}

const order = (page, name) => page.locator("li.order", { hasText: name });

test("two users, an admin, field errors, reload, restart and catch-up", async () => {
  const alice = await signIn("alice");
  const bob = await signIn("bob");

  // A bad email: the shared rule, hinted before anything is sent; nothing is placed.
  await placeOrder(alice.page, "Ada Lovelace", "ada-at-example");
  await alice.page.locator("#email-error").waitFor();
  assert.match(await alice.page.locator("#email-error").innerText(), /not an email address/);
  // The field names its error, and the focus moved to it.
  assert.equal(await alice.page.locator("#email").getAttribute("aria-describedby"), "email-error");
  assert.equal(await alice.page.evaluate(() => document.activeElement?.id), "email");

  // The server's errors are authoritative. A client whose hints let a bad email through (an older build, say) is
  // played by rewriting the email on its way out: the real server refuses, and the app puts its error by the field.
  const sent = [];
  await alice.page.route("**/graphql", async (route) => {
    const body = route.request().postDataJSON();
    if (!body?.query?.includes("createOrder")) return route.continue();
    sent.push(body.variables.clientMutationId);
    body.variables.input.email = "refused-by-server";
    await route.continue({ postData: JSON.stringify(body) });
  });
  await placeOrder(alice.page, "Ada Lovelace", "ada@example.com");
  await alice.page.locator("#email-error").waitFor();
  assert.match(await alice.page.locator("#email-error").innerText(), /not an email address/);
  await alice.page.getByText("The server refused the order").waitFor();
  await alice.page.unroute("**/graphql");
  assert.equal(sent.length, 1);
  assert.equal(await alice.page.locator("li.order").count(), 0);
  // The refused submission must not be the start of the next order's wait (checked below).
  await alice.page.waitForTimeout(1500);

  // The live total follows the lines.
  await alice.page.getByRole("button", { name: "Add item" }).click();
  await alice.page.getByLabel("Product").nth(1).selectOption("coffee");
  await alice.page.getByLabel("Quantity").nth(1).fill("2");
  assert.equal(await alice.page.getByTestId("total").innerText(), "$30.30"); // 4.50 + 2 × 12.90
  await alice.page.getByRole("button", { name: "Add item" }).click();
  await alice.page.getByRole("button", { name: "Remove item" }).nth(2).click();
  assert.equal(await alice.page.getByLabel("Product").count(), 2);
  assert.equal(await alice.page.getByTestId("total").innerText(), "$30.30");

  // Fixed: the order appears and the worker's events move it to SHIPPED, with no reload.
  const submittedAt = Date.now();
  await placeOrder(alice.page, "Ada Lovelace", "ada@example.com");
  const ada = order(alice.page, "Ada Lovelace");
  await ada.and(alice.page.locator("[data-status=SHIPPED]")).waitFor({ timeout: 20_000 });
  assert.equal(await alice.page.locator("#email-error").count(), 0);
  assert.equal(await ada.locator("ol.progress li.done").count(), 4, "every step of the progress bar is done");
  assert.equal(await ada.locator("ol.progress li[aria-current=step]").innerText(), "SHIPPED");

  // The event log: one row per event, newest first, with its seq, the order, and the time from the submit.
  const shortId = (await ada.getAttribute("data-id")).slice(-6);
  const rows = alice.page.locator(".log tbody tr", { hasText: shortId });
  assert.deepEqual(await rows.locator("td:nth-child(4)").allInnerTexts(), ["SHIPPED", "PREPARING", "PAID", "SUBMITTED"]);
  assert.deepEqual(await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.op)), ["MODIFY", "MODIFY", "MODIFY", "INSERT"]);
  const seqs = (await rows.locator("td:nth-child(1)").allInnerTexts()).map(Number);
  assert.ok(seqs.every((s, i) => i === 0 || s < seqs[i - 1]), `each event shows its own seq, descending: ${seqs}`);
  assert.deepEqual(await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.origin)), ["event", "event", "event", "event"]);
  const insert = rows.last();
  assert.equal(await insert.getAttribute("data-cause"), "since submit");
  const waited = Number(await insert.getAttribute("data-ms"));
  assert.ok(waited > 0 && waited <= Date.now() - submittedAt, `waited ${waited} ms, timed from this submit`);

  // Bob starts empty; he never sees Alice's order. He places his own with the keyboard alone.
  await bob.page.locator(".orders .empty").waitFor();
  await bob.page.locator(".log .empty").waitFor();
  await bob.page.getByLabel("Name").focus();
  await bob.page.keyboard.type("Grace Hopper");
  await bob.page.keyboard.press("Tab");
  await bob.page.keyboard.type("grace@example.com");
  await bob.page.keyboard.press("Enter");
  await order(bob.page, "Grace Hopper").waitFor();
  assert.equal(await order(bob.page, "Ada Lovelace").count(), 0);

  // The admin sees both, live.
  const admin = await signIn("admin");
  await order(admin.page, "Ada Lovelace").waitFor();
  await order(admin.page, "Grace Hopper").waitFor();

  // A double click places one order.
  await alice.page.getByLabel("Name").fill("Double Click");
  await alice.page.getByLabel("Email").fill("dc@example.com");
  await alice.page.getByRole("button", { name: "Place order" }).dblclick();
  await order(alice.page, "Double Click").waitFor();
  // Once nothing is queued, every mutation the clicks made has its answer: the server holds what they wrote.
  await alice.page.getByTestId("connection").filter({ hasText: /^Live$/ }).waitFor();
  const placed = await server.listOrders("alice", "customerName");
  assert.equal(placed.filter((o) => o.customerName === "Double Click").length, 1, "one order written");
  assert.equal(await order(alice.page, "Double Click").count(), 1);
  assert.equal(await order(admin.page, "Double Click").count(), 1);

  // A reload shows the same state: the orders come back from the copy kept in IndexedDB, and the store catches up
  // from its persisted lastSeq by events alone, with no snapshot.
  const before = await alice.page.locator("li.order").count();
  await alice.page.reload();
  await alice.page.getByTestId("connection").filter({ hasText: "Live" }).waitFor();
  await order(alice.page, "Double Click").waitFor();
  assert.equal(await alice.page.locator("li.order").count(), before);
  await alice.page.getByTestId("orders-stale").waitFor({ state: "detached" });
  assert.equal(await alice.page.locator(".log tbody tr[data-origin=snapshot]").count(), 0, "no snapshot after the reload");

  // The server restarts mid-flight: the app shows it, reconnects and catches up without a reload.
  await placeOrder(alice.page, "Mid Flight", "mid@example.com");
  await order(alice.page, "Mid Flight").waitFor();
  restarting = true;
  await server.stop();
  await alice.page.getByTestId("connection").filter({ hasText: /Reconnecting|Connecting/ }).waitFor();
  await server.start();
  await alice.page.getByTestId("connection").filter({ hasText: "Live" }).waitFor({ timeout: 40_000 });
  restarting = false;
  await order(alice.page, "Mid Flight").and(alice.page.locator("[data-status=SHIPPED]")).waitFor({ timeout: 20_000 });
  await order(admin.page, "Mid Flight").and(admin.page.locator("[data-status=SHIPPED]")).waitFor({ timeout: 40_000 });
  assert.equal(await order(bob.page, "Mid Flight").count(), 0);

  // The sign-in's token request failing (the API out of reach while the page itself loads) does not stop the app:
  // the token of the last visit stands in, and the orders show from the last visit's copy, then live.
  restarting = true; // the browser reports the refused request
  await alice.page.route("**/dev/token**", (route) => route.abort());
  await alice.page.reload();
  await order(alice.page, "Mid Flight").waitFor();
  await alice.page.getByTestId("connection").filter({ hasText: "Live" }).waitFor();
  await alice.page.unroute("**/dev/token**");
  restarting = false;

  mkdirSync(artifacts, { recursive: true });
  await alice.page.screenshot({ path: join(artifacts, "webapp-alice.png"), fullPage: true });
  await admin.page.screenshot({ path: join(artifacts, "webapp-admin.png"), fullPage: true });
  assert.deepEqual(consoleErrors, []);
});

test("optimistic mode shows the order at once and a conflict is explained", async () => {
  const { page } = await signIn("alice", { width: 390, height: 844 });
  await page.getByLabel(/mode/).check();
  await page.getByLabel("Name").fill("Optimist");
  await page.getByLabel("Email").fill("opt@example.com");
  await page.getByRole("button", { name: "Place order" }).click();
  // The placeholder shows before the server answers, then becomes the real order.
  await order(page, "Optimist").first().waitFor({ timeout: 2_000 });
  // The server echoes the create's clientMutationId in its event, so the placeholder gives way to the server's row
  // the moment the event arrives: the two never show side by side.
  for (let i = 0; i < 30; i++) {
    assert.ok(await order(page, "Optimist").count() <= 1, "placeholder and server row side by side");
    await page.waitForTimeout(20);
  }
  await order(page, "Optimist").and(page.locator("[data-status=SHIPPED]")).waitFor({ timeout: 20_000 });
  assert.equal(await order(page, "Optimist").count(), 1);

  // Offline, an optimistic cancel shows at once and waits in the queue while the worker moves the order on; back
  // online, the replayed cancel meets a newer version: the app rolls the row back to the server's state and explains
  // the conflict instead of swallowing it.
  await page.getByLabel(/mode/).uncheck();
  await page.getByLabel("Name").fill("Racer");
  await page.getByLabel("Email").fill("race@example.com");
  await page.getByRole("button", { name: "Place order" }).click();
  const racer = order(page, "Racer");
  await racer.and(page.locator("[data-status=SUBMITTED]")).waitFor();
  await page.getByLabel(/mode/).check();
  restarting = true; // the browser reports the refused requests while offline
  await page.context().setOffline(true);
  await racer.getByRole("button", { name: "Cancel order" }).click();
  await racer.and(page.locator("[data-status=CANCELLED]")).waitFor({ timeout: 2_000 });
  await page.getByTestId("connection").filter({ hasText: "1 queued" }).waitFor();
  // The worker ships the order meanwhile.
  const shipped = async () => (await server.listOrders("alice", "customerName status")).some((o) => o.customerName === "Racer" && o.status === "SHIPPED");
  await until(shipped, "the worker to ship the order at the server");
  await page.context().setOffline(false);
  await racer.getByText(/changed elsewhere/).waitFor({ timeout: 40_000 });
  restarting = false;
  await racer.and(page.locator("[data-status=SHIPPED]")).waitFor();
  await page.getByTestId("connection").filter({ hasText: /^Live$/ }).waitFor();

  // The chart compares both modes; without a simulator the network panel says so.
  assert.ok(await page.locator("rect.bar[data-mode=optimistic]").count() >= 1);
  assert.ok(await page.locator("rect.bar[data-mode=server]").count() >= 1);
  await page.getByTestId("netsim-off").waitFor();
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, "webapp-phone.png"), fullPage: true });
  assert.deepEqual(consoleErrors, []);
});

test("two users edit the same order: a change to other fields merges by itself, the same field asks in a modal dialog, Keep mine wins for both, Escape keeps theirs", async () => {
  // A server whose worker waits a minute per step: the order stays editable throughout.
  const slow = new Subsignal({ web: need("SUBSIGNAL_WEB_DIST"), stepDelayMs: 60_000 });
  await slow.start();
  try {
    const open = (user) => openLive(slow, user);
    const alice = await open("alice");
    const admin = await open("admin");
    await placeOrder(alice, "Shared Order", "shared@example.com");
    await order(alice, "Shared Order").and(alice.locator("[data-status=SUBMITTED]")).waitFor();
    // A fresh server: this is the only order.
    const row = (page) => page.locator("li.order");
    await row(admin).waitFor();
    const edit = async (page, fields) => {
      const form = row(page).locator("form.edit");
      for (const [label, value] of Object.entries(fields)) await form.getByLabel(label, { exact: true }).fill(value);
      await form.getByRole("button", { name: "Save" }).click();
    };
    const openEdit = (page) => row(page).getByRole("button", { name: "Edit" }).click();

    // Both open the form at version 1. Alice changes the email; the admin then changes the name from the stale form:
    // the server says CONFLICT, but no field changed on both sides, so the app merges and resends by itself.
    await openEdit(alice);
    await openEdit(admin);
    await edit(alice, { Email: "alice@example.com" });
    await row(alice).locator("form.edit").waitFor({ state: "detached" });
    await row(admin).and(admin.locator("[data-version='2']")).waitFor();
    await edit(admin, { Name: "Admin Rename" });
    for (const page of [alice, admin]) {
      await row(page).and(page.locator("[data-version='3']")).filter({ hasText: "Admin Rename" }).waitFor();
    }
    assert.equal(await row(admin).getByRole("dialog").count(), 0, "no dialog for an automatic merge");

    // Now both change the name. Alice saves first; the admin's save meets her name: the dialog shows both versions.
    await openEdit(alice);
    await openEdit(admin);
    await edit(alice, { Name: "Alice Name" });
    await row(admin).and(admin.locator("[data-version='4']")).waitFor();
    await edit(admin, { Name: "Admin Name" });
    const dialog = row(admin).getByRole("dialog", { name: "Changed elsewhere" });
    await dialog.waitFor();
    const name = dialog.locator("tr[data-field=customerName]");
    assert.equal(await name.locator("td.theirs").innerText(), "Alice Name");
    assert.equal(await name.locator("td.mine").innerText(), "Admin Name");
    assert.equal(await name.getAttribute("class"), "differs conflict");
    assert.equal(await dialog.locator("tr[data-field=email]").count(), 0, "unchanged fields are not listed");
    // A modal dialog holds the focus; the row meanwhile shows the server's version.
    assert.equal(await dialog.evaluate((d) => d.matches(":modal") && d.contains(document.activeElement)), true);
    await row(admin).locator(".order-head", { hasText: "Alice Name" }).waitFor();
    await dialog.getByRole("button", { name: "Keep mine" }).click();
    await dialog.waitFor({ state: "detached" });
    for (const page of [alice, admin]) {
      await row(page).and(page.locator("[data-version='5']")).filter({ hasText: "Admin Name" }).waitFor();
    }
    const shown = async (page) => [
      await row(page).getAttribute("data-version"),
      await row(page).locator(".order-head strong").innerText(),
    ];
    assert.deepEqual(await shown(alice), await shown(admin), "both end with the same row");

    // Once more, and the admin presses Escape: the dialog closes, nothing is written, theirs stays.
    await openEdit(alice);
    await openEdit(admin);
    await edit(alice, { Name: "Alice Again" });
    await row(admin).and(admin.locator("[data-version='6']")).waitFor();
    await edit(admin, { Name: "Admin Again" });
    await dialog.waitFor();
    await admin.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    await row(admin).locator("form.edit").waitFor({ state: "detached" });
    const written = (await slow.listOrders("admin", "customerName version")).map((o) => `${o.customerName} v${o.version}`);
    assert.deepEqual(written, ["Alice Again v6"], "Escape wrote nothing");
    for (const page of [alice, admin]) assert.deepEqual(await shown(page), ["6", "Alice Again"]);
    await alice.context().close();
    await admin.context().close();
  } finally {
    await slow.stop();
  }
  assert.deepEqual(consoleErrors, []);
});

test("cancelling while allowed: the row shows Cancelled, for its owner and the admin", async () => {
  // A server whose worker waits a minute per step: the order stays SUBMITTED, so the cancel cannot race it.
  const slow = new Subsignal({ web: need("SUBSIGNAL_WEB_DIST"), stepDelayMs: 60_000 });
  await slow.start();
  try {
    const open = (user) => openLive(slow, user);
    const alice = await open("alice");
    const admin = await open("admin");
    await placeOrder(alice, "Changed Mind", "cm@example.com");
    const mine = order(alice, "Changed Mind");
    await mine.and(alice.locator("[data-status=SUBMITTED]")).waitFor();
    await mine.getByRole("button", { name: "Cancel order" }).click();
    await mine.and(alice.locator("[data-status=CANCELLED]")).waitFor();
    await mine.locator("p.cancelled").waitFor();
    assert.equal(await mine.getByRole("button", { name: "Cancel order" }).count(), 0, "no cancel button on a cancelled order");
    assert.equal(await mine.locator("ol.progress").count(), 0);
    assert.equal(await mine.locator(".field-error").innerText(), "");
    await order(admin, "Changed Mind").and(admin.locator("[data-status=CANCELLED]")).waitFor();
    await alice.close();
    await admin.close();
  } finally {
    await slow.stop();
  }
  assert.deepEqual(consoleErrors, []);
});

test("the first load asks for the wasm first and starts the token, the WebSocket and the snapshot beside its download; a reload does not prefetch", async () => {
  const context = await browser.newContext();
  // Whether the page's own script offered the store a prefetched request (index.html sets `subsignalPrefetch`).
  await context.addInitScript(() => {
    let value;
    Object.defineProperty(window, "subsignalPrefetch", {
      configurable: true,
      get: () => value,
      set: (v) => { window.pagePrefetched = true; value = v; },
    });
  });
  const page = await context.newPage();
  const warnings = [];
  page.on("console", (m) => { if (m.type() === "warning") warnings.push(m.text()); });
  const sockets = [];
  page.on("websocket", (ws) => sockets.push(ws.url()));
  const events = [];
  const snapshots = [];
  page.on("request", (r) => {
    events.push(`start ${new URL(r.url()).pathname}`);
    if (r.method() === "POST" && /listOrders/.test(r.postData() ?? "")) snapshots.push(r.postData());
  });
  page.on("requestfinished", (r) => events.push(`end ${new URL(r.url()).pathname}`));
  const responses = new Map();
  page.on("response", async (r) => responses.set(new URL(r.url()).pathname, await r.allHeaders()));
  await page.goto(`${server.http}/?as=alice`);
  await page.getByTestId("connection").filter({ hasText: "Live" }).waitFor();
  await page.locator(".orders .loading").waitFor({ state: "detached" });
  assert.deepEqual(sockets, [`${server.http.replace("http", "ws")}/graphql/ws`], "one WebSocket: the page's, taken by the store");
  const wasm = [...responses.keys()].find((p) => p.endsWith(".wasm"));
  const glue = [...responses.keys()].find((p) => /^\/subsignal-web-.*\.js$/.test(p));
  assert.ok(wasm && glue, "the wasm and its glue were fetched");
  // The first request after the page's gets the page's connection: the wasm's, the long download.
  const starts = events.filter((e) => e.startsWith("start ") && e !== "start /");
  assert.equal(starts[0], `start ${wasm}`, `the wasm is asked for first: ${starts}`);
  assert.ok(events.indexOf("start /dev/token") < events.indexOf(`end ${wasm}`), `the token was asked while the wasm downloaded: ${events}`);
  assert.ok(!events.includes("start /favicon.ico"), "no icon is asked for");
  // The glue's wasm-bindgen snippets come from index.html's import map (`cargo xtask` builds it): no request of
  // theirs, which a reload would otherwise revalidate after the cached glue.
  assert.deepEqual(events.filter((e) => e.includes("/snippets/")), [], "the snippets are inline");
  // The orders' snapshot: the page's request, which the store took instead of sending its own.
  assert.equal(await page.evaluate(() => window.pagePrefetched), true, "a first visit prefetches the snapshot");
  assert.equal(snapshots.length, 1, `one snapshot request, the page's: ${snapshots}`);
  assert.equal(await page.evaluate(() => window.subsignalPrefetch), undefined, "the store took the page's snapshot");
  assert.deepEqual(warnings.filter((w) => /prefetch/.test(w)), [], "the page's request is the store's");
  assert.equal(responses.get(wasm)["content-encoding"], "br", "the wasm arrives in brotli");
  assert.match(responses.get(wasm)["cache-control"], /immutable/);
  assert.equal(responses.get("/")["cache-control"], "no-cache");
  assert.equal(await page.locator("link[rel=stylesheet]").count(), 0, "the CSS is inline");
  // A reload: the app signed in before (its token is remembered) and the orders are persisted, so the page
  // prefetches nothing.
  events.length = 0;
  await page.reload();
  await page.getByTestId("connection").filter({ hasText: "Live" }).waitFor();
  assert.equal(await page.evaluate(() => window.pagePrefetched), undefined, "a reload does not prefetch");
  assert.deepEqual(events.filter((e) => e.includes("/snippets/")), [], "a reload asks for no snippet either");
  await context.close();
});

test("two tabs of one user share one WebSocket: an order placed in the following tab shows in both", async () => {
  const context = await browser.newContext();
  const open = new Set();
  const pages = [];
  for (let i = 0; i < 2; i++) {
    const page = await context.newPage();
    page.on("websocket", (ws) => { open.add(ws); ws.on("close", () => open.delete(ws)); });
    page.on("pageerror", (e) => consoleErrors.push(`two tabs: ${e.message}`));
    await page.goto(`${server.http}/?as=bob`);
    await page.getByTestId("connection").filter({ hasText: "Live" }).waitFor();
    await page.locator(".orders .loading").waitFor({ state: "detached" });
    pages.push(page);
  }
  // The second tab's early socket (index.html opens one) closes once it follows the first tab's store.
  const deadline = Date.now() + 20_000;
  while (open.size !== 1) {
    assert.ok(Date.now() < deadline, `one WebSocket open between the two tabs, not ${open.size}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await placeOrder(pages[1], "Two Tabs", "tabs@example.com");
  for (const page of pages) await order(page, "Two Tabs").waitFor();
  assert.equal(open.size, 1, "still one WebSocket");
  await context.close();
});

test("with shared=worker, StoreOptions::shared() alone runs the store in a SharedWorker of the app's own build: the tabs hold no WebSocket, and both are live", async () => {
  const metricsPort = await freePort();
  const own = new Subsignal({ web: need("SUBSIGNAL_WEB_DIST"), stepDelayMs: 200, args: ["--metrics-listen", `127.0.0.1:${metricsPort}`] });
  await own.start();
  const connections = () => metricAt(metricsPort, "subsignal_websocket_connections");
  const context = await browser.newContext();
  try {
    const open = new Set();
    const pages = [];
    for (let i = 0; i < 2; i++) {
      const page = await context.newPage();
      page.on("websocket", (ws) => { open.add(ws); ws.on("close", () => open.delete(ws)); });
      page.on("pageerror", (e) => consoleErrors.push(`worker tabs: ${e.message}`));
      await page.goto(`${own.http}/?as=alice&shared=worker`);
      await page.getByTestId("connection").filter({ hasText: "Live" }).waitFor();
      await page.locator(".orders .loading").waitFor({ state: "detached" });
      pages.push(page);
    }
    // Each page's early socket closes once the worker serves it; the worker's socket is the server's only one.
    const deadline = Date.now() + 20_000;
    while (open.size !== 0 || (await connections()) !== 1) {
      assert.ok(Date.now() < deadline, `the tabs hold ${open.size} WebSockets, the server has ${await connections()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await placeOrder(pages[1], "Worker Tabs", "worker@example.com");
    for (const page of pages) await order(page, "Worker Tabs").and(page.locator("[data-status=SHIPPED]")).waitFor({ timeout: 20_000 });
    // The tab that started the worker closes: the other stays live on the same worker and socket.
    await pages[0].close();
    await placeOrder(pages[1], "After Close", "worker@example.com");
    await order(pages[1], "After Close").waitFor();
    assert.equal(await connections(), 1, "still one WebSocket");
  } finally {
    await context.close();
    await own.stop();
  }
});

test("time travel: the scrubber shows the orders as of an earlier seq, then live again", async () => {
  // A server of its own, so that the event log holds exactly this test's events.
  const fresh = new Subsignal({ web: need("SUBSIGNAL_WEB_DIST"), stepDelayMs: 300 });
  await fresh.start();
  try {
    const page = await browser.newPage();
    page.on("pageerror", (e) => consoleErrors.push(`travel: ${e.message}`));
    page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(`travel: ${m.text()}`); });
    await page.goto(`${fresh.http}/?as=alice`);
    await page.getByTestId("connection").filter({ hasText: "Live" }).waitFor();
    await page.locator(".orders .loading").waitFor({ state: "detached" });
    for (const name of ["First Past", "Second Past"]) {
      await placeOrder(page, name, "past@example.com");
      await order(page, name).and(page.locator("[data-status=SHIPPED]")).waitFor({ timeout: 20_000 });
    }
    // What the event log says happened: each event's seq, order and status after it, oldest first.
    const names = {};
    for (const name of ["First Past", "Second Past"]) names[(await order(page, name).getAttribute("data-id")).slice(-6)] = name;
    const events = (await page.locator(".log tbody tr[data-origin=event]").evaluateAll((trs) =>
      trs.map((tr) => [Number(tr.cells[0].innerText), tr.cells[2].innerText, tr.cells[3].innerText]))).reverse();
    assert.equal(events.length, 8, `four events per order: ${JSON.stringify(events)}`);
    const statusAt = (seq) => {
      const at = {};
      for (const [s, id, status] of events) if (s <= seq) at[names[id]] = status;
      return at;
    };
    const seqOf = (name, status) => events.find(([, id, s]) => names[id] === name && s === status)[0];

    const scrubber = page.getByLabel("Time travel");
    assert.equal(await scrubber.getAttribute("type"), "range");
    const expectAt = async (seq, changed) => {
      await scrubber.fill(String(seq));
      await page.getByTestId("time-travel").filter({ hasText: `Viewing seq ${seq}` }).waitFor();
      await page.locator(`[data-testid=orders][data-seq="${seq}"]`).waitFor();
      assert.equal(await scrubber.getAttribute("aria-valuetext"), `seq ${seq}`);
      const shown = Object.fromEntries(await page.locator("li.order.past").evaluateAll((lis) =>
        lis.map((li) => [li.querySelector("strong").innerText, li.dataset.status])));
      assert.deepEqual(shown, statusAt(seq), `the orders as of seq ${seq}`);
      const highlighted = await page.locator("li.order.changed strong").allInnerTexts();
      assert.deepEqual(highlighted, [changed], `the row the event at seq ${seq} changed`);
      assert.equal(await page.locator("li.order.past button").count(), 0, "the past is read-only: no cancel button");
      assert.equal(await page.locator(".log tr.viewed td:nth-child(1)").innerText(), String(seq));
    };

    // Dragged back to the first order's payment: the second order does not exist yet.
    await expectAt(seqOf("First Past", "PAID"), "First Past");
    // To the second order's creation: the first is shipped, the second just submitted.
    await expectAt(seqOf("Second Past", "SUBMITTED"), "Second Past");
    // Escape returns to live: the live rows were never touched.
    await page.keyboard.press("Escape");
    await page.getByTestId("time-travel").waitFor({ state: "detached" });
    assert.equal(await page.locator("li.order.past").count(), 0);
    for (const name of ["First Past", "Second Past"]) {
      assert.equal(await order(page, name).getAttribute("data-status"), "SHIPPED");
    }
    // So does the button, and releasing the pointer.
    await expectAt(seqOf("Second Past", "PREPARING"), "Second Past");
    await page.getByRole("button", { name: "Back to live" }).click();
    await page.getByTestId("time-travel").waitFor({ state: "detached" });
    await expectAt(seqOf("First Past", "SHIPPED"), "First Past");
    await scrubber.dispatchEvent("pointerup");
    await page.getByTestId("time-travel").waitFor({ state: "detached" });
    assert.equal(await order(page, "Second Past").getAttribute("data-status"), "SHIPPED");
    assert.equal(await scrubber.getAttribute("aria-valuetext"), `live, seq ${events.at(-1)[0]}`);
    mkdirSync(artifacts, { recursive: true });
    await expectAt(seqOf("First Past", "PREPARING"), "First Past");
    await page.screenshot({ path: join(artifacts, "webapp-time-travel.png"), fullPage: true });
    await page.close();
  } finally {
    await fresh.stop();
  }
  assert.deepEqual(consoleErrors, []);
});
