// The browser half of `cargo xtask bench`: store apply (benchmark 4) in headless Chromium and sizes (benchmark 5).
//
//   node crates/bench/browser/run.mjs [--quick] [--out FILE] [--only NAME[,NAME]] [--profile FILE]
//
// Bundles the peers with esbuild into target/bench/browser/, serves store-bench.html (with the npm package under
// /pkg/ and the bundles under /build/) from a small local HTTP server that also answers the store's snapshot query,
// drives Debian's Chromium with playwright-core, prints one line per (implementation, rows, phase) as it goes and a
// table at the end, and writes the JSON report to --out (default target/bench/browser.json).
//
// --only: just the named implementations (as the table names them, e.g. "subsignal (npm)").
// --profile: records a CPU profile of the store-apply runs (Chromium's sampling profiler, 100 µs), writes it to FILE
// (open it in Chrome's DevTools, Performance panel) and prints the 30 functions with the most self time. For Rust
// names on the wasm functions, build `cargo xtask npm --names` and set SUBSIGNAL_NPM_PACKAGE=target/npm/store-names.
// --against DIR: another build of the npm package (a folder as `cargo xtask npm` writes it), measured in the same page
// and run as "subsignal (npm, --against)" beside the package under test: for deciding between two builds (a compiler
// setting, a change to the hot path) where separate invocations differ by more than the change. Not for the report.
// --quick: 1000 rows, 200 updates, 2 s per phase (the CI smoke test). Environment: SUBSIGNAL_NPM_PACKAGE (the package
// folder, default target/npm/store), SUBSIGNAL_LEPTOS_PACKAGE (the Leptos entry `cargo xtask bench` builds from
// crates/bench/leptos, default target/bench/leptos; needed unless --only leaves "subsignal (Leptos)" out), CHROMIUM
// (default /usr/bin/chromium).
import { accessSync, constants as fsConstants, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import os from "node:os";
import { basename, dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { BUILD_DIR, REPO, bundlePeers, leptosDir, measureSizes, packageDir, packageFiles, sizeTable } from "./sizes.mjs";

const here = dirname(fileURLToPath(import.meta.url));

const FULL = { sizes: [1000, 10_000, 100_000], maxUpdates: 10_000, budgetMs: 10_000, repeats: 5, warmupRows: 5_000, warmupMs: 2_000 };
const QUICK = { sizes: [1000], maxUpdates: 200, budgetMs: 2_000, warmupRows: 1_000, warmupMs: 500 };

function usage(message) {
  if (message) console.error(`run.mjs: ${message}`);
  console.error("usage: node crates/bench/browser/run.mjs [--quick] [--out FILE] [--only NAME[,NAME]] [--profile FILE] [--against DIR]");
  process.exit(2);
}

function parseArgs(argv) {
  const args = { quick: false, out: join(REPO, "target/bench/browser.json"), only: null, profile: null, against: null };
  const value = (i, what) => argv[i + 1] ?? usage(`${argv[i]} needs ${what}`);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--quick") args.quick = true;
    else if (arg === "--out") args.out = resolve(value(i++, "a file"));
    else if (arg.startsWith("--out=")) args.out = resolve(arg.slice("--out=".length));
    else if (arg === "--only") args.only = value(i++, "implementation names").split(",");
    else if (arg === "--profile") args.profile = resolve(value(i++, "a file"));
    else if (arg === "--against") args.against = resolve(value(i++, "a package folder"));
    else if (arg === "--help" || arg === "-h") usage();
    else usage(`unknown argument ${arg}`);
  }
  return args;
}

const say = (line) => process.stdout.write(`${line}\n`);

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
};

/** The static server: the page, the package, the bundles, and the store's snapshot query (an empty list at seq 0). */
function serve(pkgDir, againstDir) {
  const roots = { "/pkg/": pkgDir, "/build/": BUILD_DIR, "/leptos/": leptosDir() };
  if (againstDir) roots["/pkg-against/"] = againstDir;
  const pages = { "/": "store-bench.html", "/store-bench.html": "store-bench.html", "/store-bench.mjs": "store-bench.mjs" };
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    const headers = {
      // Cross-origin isolation gives performance.now() its fine resolution.
      "cross-origin-opener-policy": "same-origin",
      "cross-origin-embedder-policy": "require-corp",
      "cache-control": "no-store",
    };
    const send = (status, body, type = "text/plain; charset=utf-8") => {
      res.writeHead(status, { ...headers, "content-type": type });
      res.end(body);
    };
    if (req.method === "POST" && url.pathname === "/graphql") {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        let request;
        try {
          request = JSON.parse(body);
        } catch {
          return send(400, JSON.stringify({ errors: [{ message: "bad JSON" }] }), MIME[".json"]);
        }
        if (typeof request.query === "string" && request.query.includes("listNotes")) {
          const page = { items: [], nextToken: null, seq: 0 };
          return send(200, JSON.stringify({ data: { listNotes: page } }), MIME[".json"]);
        }
        send(200, JSON.stringify({ errors: [{ message: `the bench server answers only listNotes` }] }), MIME[".json"]);
      });
      return;
    }
    if (req.method !== "GET") return send(405, "method not allowed");
    if (url.pathname === "/favicon.ico") return send(204, "");
    let file = null;
    if (pages[url.pathname]) file = join(here, pages[url.pathname]);
    for (const [prefix, dir] of Object.entries(roots)) {
      if (!url.pathname.startsWith(prefix)) continue;
      // Below the root, folders included (the package's `snippets/`), and never above it.
      const inside = resolve(dir, decodeURIComponent(url.pathname.slice(prefix.length)));
      if (inside.startsWith(resolve(dir) + sep)) file = inside;
    }
    if (!file || !existsSync(file)) return send(404, "not found");
    send(200, readFileSync(file), MIME[extname(file)] ?? "application/octet-stream");
  });
  return new Promise((resolveServer, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolveServer(server));
  });
}

function chromiumPath() {
  const path = process.env.CHROMIUM || "/usr/bin/chromium";
  try {
    accessSync(path, fsConstants.X_OK);
  } catch {
    throw new Error(`Chromium not found at ${path}: install Debian's chromium or set CHROMIUM (no browser is downloaded)`);
  }
  return path;
}

async function loadPlaywright() {
  try {
    return await import("playwright-core");
  } catch {
    throw new Error(`playwright-core is not installed: run \`npm ci\` in ${here}`);
  }
}

function progressLine(row) {
  const sampled = row.sampled ? `  sampled: ${row.events} of ${row.planned} events in budget` : "";
  return (
    `store  ${row.impl.padEnd(24)} ${String(row.rows).padStart(6)} rows  ${row.phase.padEnd(6)} ` +
    `${String(row.events).padStart(6)} events  ${row.us_per_event.toFixed(2).padStart(10)} µs/event` +
    `  (${row.ms.toFixed(0)} ms; ${row.runs === 1 ? "one run" : `median of ${row.runs} runs`})${sampled}`
  );
}

const AGAINST = "subsignal (npm, --against)";
const IMPL_ORDER = ["subsignal (npm)", AGAINST, "subsignal (Leptos)", "subsignal view (npm)", "Apollo InMemoryCache", "TanStack DB collection", "TanStack DB live query"];

/** The store rows as a table: one line per implementation and size, insert and update side by side. */
function storeTable(store) {
  const lines = [];
  const cell = (row) => {
    if (!row) return "—".padStart(24);
    const mark = row.sampled ? ` (${row.events} ev)*` : "";
    return `${row.us_per_event.toFixed(2)}${mark}`.padStart(24);
  };
  const ratio = (row, base) => (row && base ? `${(row.us_per_event / base.us_per_event).toFixed(1)}×` : "").padStart(10);
  lines.push(
    `${"store apply, µs per event".padEnd(26)}${"rows".padStart(8)}${"insert".padStart(24)}${"update".padStart(24)}` +
      `${"ins ÷ subsignal".padStart(17)}${"upd ÷ subsignal".padStart(17)}`,
  );
  const sizes = [...new Set(store.map((r) => r.rows))];
  for (const rows of sizes) {
    const find = (impl, phase) => store.find((r) => r.impl === impl && r.rows === rows && r.phase === phase);
    for (const impl of IMPL_ORDER) {
      const ins = find(impl, "insert");
      const upd = find(impl, "update");
      if (!ins && !upd) continue;
      const peer = impl !== IMPL_ORDER[0];
      lines.push(
        `${impl.padEnd(26)}${String(rows).padStart(8)}${cell(ins)}${cell(upd)}` +
          `${(peer ? ratio(ins, find(IMPL_ORDER[0], "insert")) : "").padStart(17)}` +
          `${(peer ? ratio(upd, find(IMPL_ORDER[0], "update")) : "").padStart(17)}`,
      );
    }
  }
  if (store.some((r) => r.sampled)) {
    lines.push("* sampled: the phase ran out of its time budget after that many events; the figure is their average");
  }
  return lines.join("\n");
}

/** Starts Chromium's sampling CPU profiler on the page. */
async function startProfile(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
  await cdp.send("Profiler.start");
  return cdp;
}

/** Stops the profiler, writes the profile, and prints the functions with the most self time. */
async function stopProfile(cdp, file) {
  const { profile } = await cdp.send("Profiler.stop");
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(profile));
  const hits = new Map();
  const node = new Map(profile.nodes.map((n) => [n.id, n]));
  const deltas = profile.timeDeltas;
  let total = 0;
  profile.samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = node.get(id).callFrame;
    const name = `${functionName || "(anonymous)"} ${basename(url || "")}${url ? `:${lineNumber + 1}` : ""}`;
    const us = deltas[i + 1] ?? 0;
    total += us;
    hits.set(name, (hits.get(name) ?? 0) + us);
  });
  say(`\nprofile written to ${file}; self time, top 30 of ${(total / 1000).toFixed(0)} ms:`);
  for (const [name, us] of [...hits].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    say(`${(us / 1000).toFixed(1).padStart(9)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${name}`);
  }
}

async function main() {
  const started = Date.now();
  const args = parseArgs(process.argv.slice(2));
  const mode = args.quick ? QUICK : FULL;
  const pkgDir = packageDir();
  packageFiles(pkgDir);
  const leptosEntry = join(leptosDir(), "subsignal_bench_leptos.js");
  if ((!args.only || args.only.includes("subsignal (Leptos)")) && !existsSync(leptosEntry)) {
    throw new Error(`${leptosEntry} is missing: \`cargo xtask bench\` builds it (or point SUBSIGNAL_LEPTOS_PACKAGE at it)`);
  }
  const executablePath = chromiumPath();
  const { chromium } = await loadPlaywright();

  say(`bench browser: ${args.quick ? "quick" : "full"} mode, package ${pkgDir}`);
  const bundles = await bundlePeers(BUILD_DIR);
  const size = measureSizes({ bundles, pkgDir });
  say(sizeTable(size));
  if (args.against) {
    const [against] = measureSizes({ bundles, pkgDir: args.against, distDir: null });
    say(sizeTable([{ ...against, name: `--against ${args.against}` }]));
  }

  const server = await serve(pkgDir, args.against);
  const origin = `http://127.0.0.1:${server.address().port}`;
  let browser;
  try {
    browser = await chromium.launch({
      executablePath,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        // window.gc() between phases, so that one phase's garbage is not collected on the next one's time.
        "--js-flags=--expose-gc",
      ],
    });
    const page = await browser.newPage();
    const problems = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console error: ${m.text()}`);
    });
    await page.exposeFunction("benchProgress", (row) => say(row.warmup ? `warm-up  ${row.impl}` : progressLine(row)));
    await page.goto(`${origin}/store-bench.html${args.against ? "?against" : ""}`);
    await page.waitForFunction(() => window.benchReady === true, null, { timeout: 30_000 }).catch(() => {
      throw new Error(`the bench page did not start: ${problems.join("; ") || "no error reported"}`);
    });
    const info = await page.evaluate(() => window.benchInfo());
    if (!info.crossOriginIsolated) say("warning: the page is not cross-origin isolated; performance.now() is coarse");
    const known = info.impls ?? [];
    const unknown = (args.only ?? []).filter((name) => !known.includes(name));
    if (unknown.length) usage(`--only: no implementation named ${unknown.join(", ")} (there are: ${known.join(", ")})`);
    const profiler = args.profile ? await startProfile(page) : null;
    // --against's build runs whatever --only says.
    const only = args.only && args.against ? [...args.only, AGAINST] : args.only;
    const store = await page.evaluate((options) => window.runStoreBench(options), { ...mode, impls: only ?? undefined });
    if (profiler) await stopProfile(profiler, args.profile);
    if (problems.length) throw new Error(problems.join("\n"));

    const cpus = os.cpus();
    const report = {
      machine: `${cpus[0]?.model?.trim() ?? "unknown CPU"}, ${cpus.length} cores, Chromium ${browser.version()}`,
      date: new Date().toISOString(),
      store,
      size,
    };
    mkdirSync(dirname(args.out), { recursive: true });
    writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);
    say("");
    say(report.machine);
    say(storeTable(store));
    say("");
    say(sizeTable(size));
    say(`\nwrote ${args.out} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await browser?.close();
    server.close();
  }
}

main().catch((e) => {
  console.error(`bench browser failed: ${e.message}`);
  process.exit(1);
});
