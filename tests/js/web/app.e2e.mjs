// End to end: the order-form web app (built by Trunk into SUBSIGNAL_WEB_DIST) served by a real `subsignal serve`,
// driven by playwright-core in Debian's Chromium (CHROMIUM). Run by `cargo xtask test`; every missing input fails
// loudly. A screenshot of the final state is written to tests/artifacts/.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Subsignal, launchChromium } from "../e2e/subsignal.mjs";

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
  await alice.page.waitForTimeout(1000);
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
  await page.waitForTimeout(2500); // the worker ships the order meanwhile
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

test("cancelling while allowed: the row shows Cancelled, for its owner and the admin", async () => {
  // A server whose worker waits a minute per step: the order stays SUBMITTED, so the cancel cannot race it.
  const slow = new Subsignal({ web: need("SUBSIGNAL_WEB_DIST"), stepDelayMs: 60_000 });
  await slow.start();
  try {
    const open = async (user) => {
      const page = await browser.newPage();
      page.on("pageerror", (e) => consoleErrors.push(`${user}: ${e.message}`));
      page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(`${user}: ${m.text()}`); });
      await page.goto(`${slow.http}/?as=${user}`);
      await page.getByTestId("connection").filter({ hasText: "Live" }).waitFor();
      return page;
    };
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
