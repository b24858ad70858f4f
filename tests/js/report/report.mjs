// The latency report: for each network profile, drive orders through the web app in headless Chromium, in
// server-driven and optimistic modes, behind `subsignal netsim`, and write a markdown table and an SVG chart.
// Run by `cargo xtask report` (which builds the release server and the app); inputs come from the environment and
// a missing one fails loudly. Figures are measurements of one run on this machine, never assertions.
import { execSync } from "node:child_process";
import { writeFileSync, mkdirSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { request as httpRequest, Agent } from "node:http";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { Subsignal, startNetsim, launchChromium } from "../e2e/subsignal.mjs";

const need = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the report through \`cargo xtask report\``);
  return value;
};
const out = need("REPORT_OUT");
const perMode = Number(process.env.REPORT_ORDERS ?? 5);
const profiles = (process.env.REPORT_PROFILES ?? "none,5g,lte,fast-4g,slow-4g,slow-3g,flaky").split(",");

const quantile = (xs, q) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const fmt = (x) => (Number.isFinite(x) ? `${Math.round(x)}` : "–");

const server = new Subsignal({ web: need("SUBSIGNAL_WEB_DIST"), stepDelayMs: 0 });
await server.start();
need("SUBSIGNAL_BIN");
const netsim = await startNetsim({ upstream: server.addr });
const browser = await launchChromium();
const rows = [];
const stack = {};
const CREATE = "mutation($input: CreateOrderInput!, $m: ID) { createOrder(input: $input, clientMutationId: $m) { id } }";
const INPUT = { customerName: "Report", email: "report@example.com", items: [{ sku: "tea", quantity: 1, unitPriceCents: 450 }] };

/**
 * Our stack without a browser: `count` createOrder POSTs through the simulator, each timed to its INSERT event on a
 * graphql-transport-ws subscription through the simulator too (graphql-ws client in Node, as bob).
 */
async function stackAlone(count) {
  const { token } = await (await fetch(`${server.http}/dev/token?user=bob`)).json();
  // Profiles with resets drop the socket: reconnect and subscribe again (an order whose event falls in the gap is
  // not timed).
  const client = createClient({ url: `ws://${netsim.addr}/graphql`, webSocketImpl: WebSocket, retryAttempts: 1_000,
    retryWait: () => new Promise((r) => setTimeout(r, 100)), connectionParams: { Authorization: `Bearer ${token}` } });
  const waiting = new Map();
  const stop = client.subscribe({ query: "subscription { onOrderChanged { op clientMutationId } }" }, {
    next: ({ data }) => {
      const c = data.onOrderChanged;
      if (c.op === "INSERT") waiting.get(c.clientMutationId)?.(performance.now());
    },
    error: (e) => console.error("stack-alone subscription ended:", e?.code ?? e), complete: () => {},
  });
  // One kept-alive connection, as a browser keeps one: each new connection through the simulator pays a handshake.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const [host, port] = netsim.addr.split(":");
  const post = (body) => new Promise((resolve, reject) => {
    const req = httpRequest({ host, port, path: "/graphql", method: "POST", agent, headers: {
      "content-type": "application/json", authorization: `Bearer ${token}`, "content-length": Buffer.byteLength(body) } },
    (res) => { res.resume(); res.on("end", resolve); });
    req.on("error", reject);
    req.end(body);
  });
  /** Places one order; resolves with the ms from the POST to its event, or null after 10 s. */
  const placeOne = async (m) => {
    const event = new Promise((r) => waiting.set(m, r));
    const t0 = performance.now();
    const body = JSON.stringify({ query: CREATE, variables: { input: INPUT, m } });
    // A reset POST is sent again with the same clientMutationId: the server writes it once.
    for (let attempt = 1; ; attempt++) {
      try {
        await post(body);
        break;
      } catch (e) {
        if (attempt === 5) throw e;
      }
    }
    const at = await Promise.race([event, new Promise((r) => setTimeout(() => r(null), 10_000))]);
    return at === null ? null : at - t0;
  };
  // Until one order's event arrives, the subscription may not be live yet: those orders are not timed.
  for (let w = 0; (await placeOne(`warm-${Date.now()}-${w}`)) === null; w++) {
    if (w === 5) throw new Error("the stack-alone subscription delivered no event");
  }
  const times = [];
  for (let i = 0; i < count; i++) {
    const ms = await placeOne(`stack-${Date.now()}-${i}`);
    if (ms !== null) times.push(ms);
  }
  stop();
  await client.dispose();
  agent.destroy();
  return times;
}

const loads = [];
const kb = (bytes) => (bytes / 1000).toFixed(1);

/** The app is live: its connection says so and the order list has loaded from the network. */
async function ready(page) {
  await page.getByTestId("connection").filter({ hasText: "Live" }).waitFor();
  await page.locator(".orders .loading").waitFor({ state: "detached" });
  await page.locator(".orders[data-stale=true]").waitFor({ state: "detached" });
}

/** Bytes through the simulator so far, both ways (HTTP, WebSocket, headers included). */
async function bytesSoFar() {
  const stats = await (await fetch(`${netsim.control}/stats`)).json();
  return stats.bytes_up + stats.bytes_down;
}

/**
 * Times a load that `navigate` starts: until the first order row shows (from the network, or from what the store
 * persisted) and until the app is live; and the bytes that went through the simulator meanwhile.
 */
async function measureLoad(page, navigate) {
  const before = await bytesSoFar();
  const start = Date.now();
  let firstRowsMs = null;
  const firstRows = page.locator("li.order").first().waitFor({ state: "attached" })
    .then(() => { firstRowsMs = Date.now() - start; }, () => {});
  await navigate();
  await ready(page);
  const readyMs = Date.now() - start;
  // The list may be empty (a first visit): then there are no first rows to time.
  if ((await page.locator("li.order").count()) > 0) await firstRows;
  return { readyMs, firstRowsMs, bytes: (await bytesSoFar()) - before };
}

try {
  for (const name of profiles) {
    const res = await fetch(`${netsim.control}/profile/${name}`, { method: "PUT" });
    if (!res.ok) throw new Error(`cannot select profile ${name}: HTTP ${res.status}`);
    const profile = await (await fetch(`${netsim.control}/profile`)).json();
    console.log(`profile ${name}: ${profile.figures}`);
    stack[name] = await stackAlone(perMode * 2);
    console.log(`  stack alone (Node): mutation → event p50 ${fmt(quantile(stack[name], 0.5))} ms`);
    // A new context: an empty cache and empty storage, as on a first visit.
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(120_000);
    const cold = await measureLoad(page, () => page.goto(`http://${netsim.addr}/?as=alice`));
    console.log(`  first load (cold): ${cold.readyMs} ms, ${kb(cold.bytes)} KB`);
    for (const optimistic of [false, true]) {
      const toggle = page.getByLabel(/mode/);
      if (optimistic) await toggle.check(); else await toggle.uncheck();
      let timeouts = 0;
      for (let i = 0; i < perMode; i++) {
        const bars = await page.locator("rect.bar").count();
        const shipped = await page.locator("li.order[data-status=SHIPPED]").count();
        await page.getByLabel("Name").fill(`${name} ${optimistic ? "opt" : "srv"} ${i}`);
        await page.getByLabel("Email").fill("report@example.com");
        await page.getByRole("button", { name: "Place order" }).click();
        try {
          await page.locator("rect.bar").nth(bars).waitFor({ state: "attached", timeout: 60_000 });
          // The worker's steps, through the same network.
          await page.locator("li.order[data-status=SHIPPED]").nth(shipped).waitFor({ state: "attached", timeout: 60_000 });
          await page.getByRole("button", { name: "Place order" }).and(page.locator(":enabled")).waitFor({ timeout: 60_000 });
        } catch {
          timeouts++;
        }
      }
      const mode = optimistic ? "optimistic" : "server";
      const onScreen = (await page.locator(`rect.bar[data-mode=${mode}]`).evaluateAll((els) => els.map((e) => Number(e.dataset.ms))));
      const confirm = await page.locator("tr[data-cause='since submit']").evaluateAll((els) => els.map((e) => Number(e.dataset.ms)));
      const steps = await page.locator("tr[data-cause='since previous']").evaluateAll((els) => els.map((e) => Number(e.dataset.ms)));
      rows.push({ profile: name, rtt: profile.rtt_ms, figures: profile.figures, mode, onScreen, confirm, steps, timeouts });
      console.log(`  ${mode}: on screen p50 ${fmt(quantile(onScreen, 0.5))} ms, confirmed p50 ${fmt(quantile(confirm, 0.5))} ms, steps p50 ${fmt(quantile(steps, 0.5))} ms, timeouts ${timeouts}`);
      // The log and chart accumulate; later reads of this page would mix modes, so keep per-mode slices.
      await page.reload();
      await ready(page);
    }
    // A reload with the orders placed above: the browser's cache and the store's persisted rows are warm.
    const warm = await measureLoad(page, () => page.reload());
    console.log(`  reload (warm): first rows ${warm.firstRowsMs} ms, live ${warm.readyMs} ms, ${kb(warm.bytes)} KB`);
    loads.push({ profile: name, rtt: profile.rtt_ms, cold, warm });
    await context.close();
  }
} finally {
  await browser.close();
  await netsim.stop();
  await server.stop();
}

// The markdown report.
const sh = (cmd) => { try { return execSync(cmd, { encoding: "utf8" }).trim(); } catch { return "?"; } };
const machine = [
  `- CPU: ${cpus()[0]?.model ?? "?"} × ${cpus().length}; memory ${(totalmem() / 2 ** 30).toFixed(0)} GiB; ${sh("uname -sr")}`,
  `- Browser: ${sh(`${need("CHROMIUM")} --version`)} (headless); server: release build of subsignal, SQLite, worker step delay 0`,
  `- Network: \`subsignal netsim\` on loopback (seed 42), ${perMode} orders per mode and profile, run ${new Date().toISOString()}`,
];
let md = `# Latency report: what the user waits for\n\nGenerated by \`cargo xtask report\`. One run on one machine: read the ratios and orders of magnitude, not the last millisecond.\n\n${machine.join("\n")}\n\n`;
md += "| profile | round trip (ms) | mode | orders | submit → on screen p50 / p95 (ms) | submit → server event p50 / p95 (ms) | worker step p50 / p95 (ms) | overhead above round trip, p50 (ms) | stack alone: mutation → event p50 (ms), its overhead |\n";
md += "|---|---|---|---|---|---|---|---|---|\n";
for (const r of rows) {
  const server = r.mode === "server";
  const overhead = server ? quantile(r.onScreen, 0.5) - r.rtt : NaN;
  const alone = quantile(stack[r.profile], 0.5);
  md += `| ${r.profile} | ${fmt(r.rtt)} | ${server ? "server-driven" : "optimistic"} | ${r.onScreen.length}${r.timeouts ? ` (${r.timeouts} timed out)` : ""} | ${fmt(quantile(r.onScreen, 0.5))} / ${fmt(quantile(r.onScreen, 0.95))} | ${fmt(quantile(r.confirm, 0.5))} / ${fmt(quantile(r.confirm, 0.95))} | ${fmt(quantile(r.steps, 0.5))} / ${fmt(quantile(r.steps, 0.95))} | ${fmt(overhead)} | ${server ? `${fmt(alone)}, ${fmt(alone - r.rtt)}` : "–"} |\n`;
}
md += `\nLoading the app, per profile: a first visit (a new browser context: empty cache, nothing persisted), then a reload
of the same page after the orders above (cached files, persisted rows).\n\n`;
md += "| profile | round trip (ms) | first load, cold: live (ms) | its bytes (KB) | reload, warm: first rows (ms) | reload, warm: live (ms) | its bytes (KB) |\n";
md += "|---|---|---|---|---|---|---|\n";
for (const l of loads) {
  md += `| ${l.profile} | ${fmt(l.rtt)} | ${fmt(l.cold.readyMs)} | ${kb(l.cold.bytes)} | ${fmt(l.warm.firstRowsMs)} | ${fmt(l.warm.readyMs)} | ${kb(l.warm.bytes)} |\n`;
}
md += `
How to read it:
- *submit → on screen*: from the click to the order showing in the list. Server-driven mode waits for the server's
  INSERT event; optimistic mode shows a placeholder at once and replaces it when the event arrives.
- *submit → server event*: from the click to the authoritative event, in either mode (the placeholder does not change it).
- *worker step*: time between consecutive status events of one order (the worker runs with no delay here), i.e. the
  server's pipeline plus one downlink trip.
- *overhead above round trip*: server-driven p50 minus the profile's simulated round trip: what our stack adds (HTTP,
  GraphQL, SQLite commit, change feed, WebSocket push, the store, Leptos rendering) beyond the network itself, plus
  the bandwidth time of the request and the event on slow profiles, plus the browser's own scheduling (below).
- *stack alone*: the same createOrder → INSERT event through the same simulator, from a Node graphql-ws client with
  no browser (${perMode * 2} per profile), and that minus the round trip. Where the two overheads differ, the gap is
  mostly Chromium's: after a click it renders the next frame before it runs other tasks. Measured when this column
  was added (profile none): the app's POST was answered 4–6 ms after the submit (Resource Timing), but the main
  thread ran no other task until the next animation frame, 10–13 ms after the submit, and only then handled the
  response and the event. On profiles whose round trip is longer than a frame, that frame passes during the wait.
- *first load, cold: live*: from navigating to the app until its connection is live and its orders have loaded from
  the network. *reload, warm*: the same page reloaded; *first rows* is when the first order shows (from the store's
  persisted copy when the collection persists, else from the network), *live* as above. *bytes*: everything through
  the simulator during the load, both ways (HTTP and WebSocket, headers included).
- Profiles and their sources: \`subsignal netsim --help\`. \`offline\` is left out: nothing arrives to measure.

![p50 submit → on screen and loading the app, per profile](latency-report.svg)
`;
mkdirSync(out, { recursive: true });
writeFileSync(join(out, "latency-report.md"), md);

// The SVG chart, log scale: per profile, p50 submit → on screen (server-driven, optimistic), then the loads (first
// load, reload's first rows, reload live).
const bars = [
  ["server-driven", "#2c5cc5", (name) => quantile(rows.find((x) => x.profile === name && x.mode === "server")?.onScreen ?? [], 0.5)],
  ["optimistic", "#1f7a4d", (name) => quantile(rows.find((x) => x.profile === name && x.mode === "optimistic")?.onScreen ?? [], 0.5)],
  ["first load", "#8a5a00", (name) => loads.find((l) => l.profile === name)?.cold.readyMs ?? NaN],
  ["reload: first rows", "#b04a9c", (name) => loads.find((l) => l.profile === name)?.warm.firstRowsMs ?? NaN],
  ["reload: live", "#6b6b6b", (name) => loads.find((l) => l.profile === name)?.warm.readyMs ?? NaN],
];
const W = 900, H = 320, left = 50, bottom = 40;
const names = [...new Set(rows.map((r) => r.profile))];
const maxV = Math.max(10, ...names.flatMap((name) => bars.map(([, , value]) => value(name))).filter(Number.isFinite));
const y = (v) => H - bottom - (Math.log10(Math.max(1, v)) / Math.log10(maxV * 1.5)) * (H - bottom - 20);
const group = (W - left - 10) / names.length;
let svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">\n`;
svg += `<text x="${left}" y="14">ms, log scale: p50 submit → on screen (${bars.slice(0, 2).map(([label]) => label).join(", ")}), and loading the app (${bars.slice(2).map(([label]) => label).join(", ")})</text>\n`;
bars.forEach(([label, colour], k) => {
  svg += `<rect x="${left + k * 150}" y="20" width="10" height="10" fill="${colour}"/><text x="${left + k * 150 + 14}" y="29">${label}</text>\n`;
});
for (const t of [1, 10, 100, 1000, 10000].filter((t) => t <= maxV * 1.5)) {
  svg += `<line x1="${left}" x2="${W - 10}" y1="${y(t)}" y2="${y(t)}" stroke="#ddd"/><text x="4" y="${y(t) + 4}">${t}</text>\n`;
}
names.forEach((name, i) => {
  const width = (group - 12) / bars.length;
  bars.forEach(([label, colour, value], j) => {
    const v = value(name);
    if (!Number.isFinite(v)) return;
    const x = left + i * group + 6 + j * width;
    svg += `<rect x="${x}" y="${y(v)}" width="${width - 2}" height="${H - bottom - y(v)}" fill="${colour}"><title>${name} ${label}: ${Math.round(v)} ms</title></rect>\n`;
  });
  svg += `<text x="${left + i * group + group / 2}" y="${H - bottom + 16}" text-anchor="middle">${name}</text>\n`;
});
svg += "</svg>\n";
writeFileSync(join(out, "latency-report.svg"), svg);
console.log(`report written to ${join(out, "latency-report.md")}`);
