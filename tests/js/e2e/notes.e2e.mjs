// A schema with no Rust, end to end: the notes example (examples/notes: its schema.graphql, index.html and app.js)
// served by `subsignal serve --schema`, with the npm package from `cargo xtask npm`, in Debian's headless Chromium
// driven by playwright-core, live across two users. Run by `cargo xtask test-browser`, which sets SUBSIGNAL_BIN,
// SUBSIGNAL_NPM_PACKAGE and CHROMIUM; a missing one fails the test.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startExampleSite } from "./subsignal.mjs";

const example = fileURLToPath(new URL("../../../examples/notes", import.meta.url));
let site;
let openPage;

before(async () => {
  site = await startExampleSite({ example, args: ["--schema", `${example}/schema.graphql`] });
  ({ openPage } = site);
});

after(async () => {
  await site?.stop();
});

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
  assert.deepEqual(site.problems, []);
});
