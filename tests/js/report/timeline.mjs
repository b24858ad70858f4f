// The critical path of a cold first load: for each profile, a first visit (new browser context) of the web app
// behind `subsignal netsim`, with a timeline of what happened when, from the page's own clocks (Navigation and
// Resource Timing, the WebSocket's events, fetch calls, when the app mounted and when it was live). A diagnostic
// for README "Load faster", never a test: it asserts nothing.
//
//   cd tests/js && SUBSIGNAL_BIN=.../release/subsignal SUBSIGNAL_WEB_DIST=.../dist CHROMIUM=/usr/bin/chromium \
//     node report/timeline.mjs slow-4g slow-3g
//
// Optional: TIMELINE_RUNS (loads per profile, default 1), TIMELINE_PORTS=server,netsim,control (default: free ports).
import { Subsignal, startNetsim, launchChromium, need } from "../e2e/subsignal.mjs";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const profiles = process.argv.slice(2).length ? process.argv.slice(2) : ["slow-4g"];
const runs = Number(process.env.TIMELINE_RUNS ?? 1);
const ports = process.env.TIMELINE_PORTS?.split(",");

const server = new Subsignal({ web: need("SUBSIGNAL_WEB_DIST"), listen: ports ? `127.0.0.1:${ports[0]}` : undefined });
await server.start();
const netsim = ports ? await netsimOn(ports[1], ports[2]) : await startNetsim({ upstream: server.addr });
const browser = await launchChromium();

/** `subsignal netsim` on given ports (startNetsim takes free ones). */
function netsimOn(listen, control) {
  const child = spawn(need("SUBSIGNAL_BIN"), ["netsim", "--listen", `127.0.0.1:${listen}`, "--upstream", server.addr,
    "--control", `127.0.0.1:${control}`, "--seed", "42"], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (/control API/.test(line)) {
        resolve({ addr: `127.0.0.1:${listen}`, control: `http://127.0.0.1:${control}`,
          stop: () => new Promise((r) => { child.once("exit", r); child.kill("SIGTERM"); }) });
      }
    });
  });
}

// Installed before the page's own scripts: records WebSocket and fetch events and DOM milestones on the page clock.
const INSTRUMENT = () => {
  const t = () => Math.round(performance.now());
  const log = (window.__timeline = []);
  const Ws = window.WebSocket;
  window.WebSocket = class extends Ws {
    constructor(...args) {
      super(...args);
      const id = (window.__wsCount = (window.__wsCount ?? 0) + 1);
      log.push([t(), `ws#${id} new ${args[0]}`]);
      this.addEventListener("open", () => log.push([t(), `ws#${id} open`]));
      this.addEventListener("message", (e) => log.push([t(), `ws#${id} ← ${String(e.data).slice(0, 60)}`]));
      this.addEventListener("close", (e) => log.push([t(), `ws#${id} close ${e.code} ${e.reason}`]));
      const send = this.send.bind(this);
      this.send = (data) => { log.push([t(), `ws#${id} → ${String(data).slice(0, 60)}`]); return send(data); };
    }
  };
  const fetch0 = window.fetch;
  window.fetch = async (input, init) => {
    const url = typeof input === "string" ? input : input.url;
    const body = init?.body ? ` ${String(init.body).slice(0, 50)}` : "";
    log.push([t(), `fetch → ${url}${body}`]);
    try {
      const res = await fetch0(input, init);
      log.push([t(), `fetch ← ${url} ${res.status}`]);
      return res;
    } catch (e) {
      log.push([t(), `fetch ✗ ${url} ${e}`]);
      throw e;
    }
  };
  new MutationObserver((_, observer) => {
    if (document.body?.querySelector("header")) {
      log.push([t(), "app mounted (header in the DOM)"]);
      observer.disconnect();
    }
  }).observe(document, { childList: true, subtree: true });
  let live = false, loaded = false;
  new MutationObserver(() => {
    if (!live && document.querySelector("[data-testid=connection]")?.textContent.includes("Live")) {
      live = true;
      log.push([t(), "badge says Live"]);
    }
    if (!loaded && document.querySelector(".orders") && !document.querySelector(".orders .loading")
      && !document.querySelector(".orders[data-stale=true]")) {
      loaded = true;
      log.push([t(), "orders loaded (not loading, not stale)"]);
    }
  }).observe(document, { childList: true, subtree: true, characterData: true, attributes: true });
  addEventListener("TrunkApplicationStarted", () => log.push([t(), "TrunkApplicationStarted (wasm instantiated, main ran)"]));
};

try {
  for (const name of profiles) {
    const res = await fetch(`${netsim.control}/profile/${name}`, { method: "PUT" });
    if (!res.ok) throw new Error(`cannot select profile ${name}: HTTP ${res.status}`);
    for (let run = 0; run < runs; run++) {
      const context = await browser.newContext();
      await context.addInitScript(INSTRUMENT);
      const page = await context.newPage();
      page.setDefaultTimeout(120_000);
      const stats0 = await (await fetch(`${netsim.control}/stats`)).json();
      const start = Date.now();
      await page.goto(`http://${netsim.addr}/?as=alice`);
      await page.getByTestId("connection").filter({ hasText: "Live" }).waitFor();
      await page.locator(".orders .loading").waitFor({ state: "detached" });
      await page.locator(".orders[data-stale=true]").waitFor({ state: "detached" });
      const readyMs = Date.now() - start;
      const stats1 = await (await fetch(`${netsim.control}/stats`)).json();
      const { timeOrigin, events, resources } = await page.evaluate(() => {
        const r = (x) => Math.round(x);
        const entries = [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")];
        return {
          timeOrigin: performance.timeOrigin,
          events: window.__timeline,
          resources: entries.map((e) => ({
            name: e.name.replace(location.origin, ""), start: r(e.startTime), connect: e.connectEnd > e.connectStart
              ? `${r(e.connectStart)}–${r(e.connectEnd)}` : "reused", request: r(e.requestStart),
            firstByte: r(e.responseStart), end: r(e.responseEnd), bytes: e.transferSize, protocol: e.nextHopProtocol,
          })),
        };
      });
      console.log(`\n== ${name} run ${run + 1}: live after ${readyMs} ms (driver clock), ` +
        `${((stats1.bytes_up + stats1.bytes_down - stats0.bytes_up - stats0.bytes_down) / 1000).toFixed(1)} KB, ` +
        `${stats1.accepted - stats0.accepted} connections`);
      console.log(`page clock 0 = driver clock ${Math.round(timeOrigin - start)} ms; driver saw live at page clock ${Math.round(start + readyMs - timeOrigin)} ms`);
      console.log("resources (ms on the page clock; connect = TCP handshake when a new connection was opened):");
      for (const e of resources) {
        console.log(`  ${e.name.padEnd(52)} start ${String(e.start).padStart(5)} connect ${e.connect.padEnd(11)} request ${String(e.request).padStart(5)} first byte ${String(e.firstByte).padStart(5)} end ${String(e.end).padStart(5)} ${e.bytes} B`);
      }
      console.log("events:");
      for (const [at, what] of events) console.log(`  ${String(at).padStart(5)} ${what}`);
      await context.close();
    }
  }
} finally {
  await browser.close();
  await netsim.stop();
  await server.stop();
}
