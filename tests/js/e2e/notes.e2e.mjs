// A schema with no Rust, end to end: the notes example (examples/notes: its schema.graphql, index.html and app.js)
// served by `subsignal serve --schema`, with the npm package from `cargo xtask npm`, in Debian's headless Chromium
// driven by playwright-core, live across two users. Run by `cargo xtask test-browser`, which sets SUBSIGNAL_BIN,
// SUBSIGNAL_NPM_PACKAGE and CHROMIUM; a missing one fails the test.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Subsignal, launchChromium } from "./subsignal.mjs";

const example = fileURLToPath(new URL("../../../examples/notes", import.meta.url));
const need = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this test through \`cargo xtask test-browser\``);
  return value;
};

let server;
let browser;
let site;
const problems = [];

before(async () => {
  site = mkdtempSync(join(tmpdir(), "subsignal-notes-"));
  cpSync(example, site, { recursive: true });
  cpSync(need("SUBSIGNAL_NPM_PACKAGE"), join(site, "node_modules/@subsignal/store"), { recursive: true });
  server = new Subsignal({ web: site, args: ["--schema", join(example, "schema.graphql")] });
  await server.start();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (site) rmSync(site, { recursive: true, force: true });
});

async function openPage(user) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // The refused rename below is a 200 with errors, not a console error; anything else is a problem.
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  await page.goto(`${server.http}/index.html?user=${user}`);
  await page.locator("#connection", { hasText: "live" }).waitFor({ timeout: 20_000 });
  return page;
}

const note = (page, title) => page.locator("#notes li", { has: page.locator(".title", { hasText: title }) });

test("a note added by one user appears live for another; its owner's rename reaches both", async () => {
  const alice = await openPage("alice");
  const bob = await openPage("bob");
  await alice.fill("#create input[name=title]", "Groceries");
  await alice.selectOption("#create select[name=color]", "BLUE");
  await alice.click("#create button");
  for (const page of [alice, bob]) {
    const row = note(page, "Groceries");
    await row.locator(".owner", { hasText: "by alice · v1" }).waitFor({ timeout: 20_000 });
    assert.equal(await row.getAttribute("data-color"), "BLUE");
  }
  alice.once("dialog", (dialog) => dialog.accept("Groceries and bread"));
  await note(alice, "Groceries").locator("button").click();
  await note(bob, "Groceries and bread").locator(".owner", { hasText: "v2" }).waitFor({ timeout: 20_000 });
  await alice.close();
  await bob.close();
});

test("renaming another user's note is refused by the server and rolled back", async () => {
  const alice = await openPage("alice");
  const bob = await openPage("bob");
  await alice.fill("#create input[name=title]", "Alice only");
  await alice.click("#create button");
  await note(bob, "Alice only").locator(".owner", { hasText: "v1" }).waitFor({ timeout: 20_000 });
  bob.once("dialog", (dialog) => dialog.accept("Bob was here"));
  await note(bob, "Alice only").locator("button").click();
  await bob.locator("#errors", { hasText: "NOT_FOUND" }).waitFor({ timeout: 20_000 });
  // The optimistic title is gone again, and alice never saw it.
  await note(bob, "Alice only").waitFor({ timeout: 20_000 });
  assert.equal(await note(bob, "Bob was here").count(), 0);
  assert.equal(await note(alice, "Bob was here").count(), 0);
  await alice.close();
  await bob.close();
});

test("no page errors", () => {
  assert.deepEqual(problems, []);
});
