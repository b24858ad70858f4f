// Benchmark 5 (size): gzip (zlib level 9) of what a browser downloads.
//   - subsignal's npm package (subsignal_store.js + subsignal_store_bg.wasm) as `cargo xtask npm` builds it;
//   - Apollo Client core + InMemoryCache + GraphQLWsLink + graphql-ws's createClient (entries/apollo.mjs);
//   - TanStack DB: createCollection + the live query engine (entries/tanstack.mjs);
//   both peers bundled by esbuild (ESM, browser, minified, production build);
//   - the web app's first load: every file of dist/ (trunk's output: index.html, js, wasm, css, netsim.json), not the
//     .br and .gz copies beside them.
// Each file is compressed on its own, as a server would send it; a group's size is the sum over its files.
//
// `node sizes.mjs` builds the bundles into target/bench/browser/ and prints the table; run.mjs imports
// `bundlePeers` and `measureSizes` and puts the result under `size` in its JSON.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { constants, gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, "../../..");
export const BUILD_DIR = join(REPO, "target/bench/browser");
export const DIST_DIR = join(REPO, "dist");

/** The package folder: SUBSIGNAL_NPM_PACKAGE, or what `cargo xtask npm` writes. */
export function packageDir() {
  return resolve(process.env.SUBSIGNAL_NPM_PACKAGE || join(REPO, "target/npm/store"));
}

/** Benchmark 4's Leptos entry: SUBSIGNAL_LEPTOS_PACKAGE, or what `cargo xtask bench` builds. */
export function leptosDir() {
  return resolve(process.env.SUBSIGNAL_LEPTOS_PACKAGE || join(REPO, "target/bench/leptos"));
}

/** The package's browser files, or an error that says how to build them. */
export function packageFiles(dir = packageDir()) {
  const files = ["subsignal_store.js", "subsignal_store_bg.wasm"].map((f) => join(dir, f));
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length) {
    throw new Error(
      `the subsignal npm package is not built: missing ${missing.join(", ")}. Run \`cargo xtask npm\` ` +
        "(or point SUBSIGNAL_NPM_PACKAGE at a built package folder).",
    );
  }
  return files;
}

/** The peers' bundles: `{ apollo, tanstack }` paths under `outDir`. */
export async function bundlePeers(outDir = BUILD_DIR) {
  let esbuild;
  try {
    esbuild = await import("esbuild");
  } catch {
    throw new Error(`esbuild is not installed: run \`npm ci\` in ${here}`);
  }
  mkdirSync(outDir, { recursive: true });
  const out = {};
  for (const name of ["apollo", "tanstack"]) {
    const outfile = join(outDir, `${name}.js`);
    await esbuild.build({
      entryPoints: [join(here, "entries", `${name}.mjs`)],
      outfile,
      bundle: true,
      minify: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      conditions: ["production"],
      define: { "process.env.NODE_ENV": '"production"', "globalThis.__DEV__": "false" },
      legalComments: "none",
      logLevel: "warning",
    });
    out[name] = outfile;
  }
  return out;
}

function gzipSize(bytes) {
  return gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION }).length;
}

function group(name, files, base) {
  const rows = files.map((file) => {
    const bytes = readFileSync(file);
    return { file: base ? file.slice(base.length + 1) : basename(file), gzip_bytes: gzipSize(bytes), raw_bytes: bytes.length };
  });
  return {
    name,
    gzip_bytes: rows.reduce((sum, r) => sum + r.gzip_bytes, 0),
    raw_bytes: rows.reduce((sum, r) => sum + r.raw_bytes, 0),
    files: rows,
  };
}

function walk(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const path = join(dir, entry);
      return statSync(path).isDirectory() ? walk(path) : [path];
    });
}

/** The `size` rows of the report. `bundles` comes from `bundlePeers`. */
export function measureSizes({ bundles, pkgDir = packageDir(), distDir = DIST_DIR }) {
  const sizes = [
    group("subsignal npm package", packageFiles(pkgDir)),
    group("Apollo Client + graphql-ws", [bundles.apollo]),
    group("TanStack DB", [bundles.tanstack]),
  ];
  if (existsSync(distDir) && statSync(distDir).isDirectory()) {
    // Without the precompressed copies the build writes beside each file (a browser gets one of the three).
    const files = walk(distDir).filter((f) => !/\.(br|gz)$/.test(f));
    sizes.push(group("web app first load", files, distDir));
  }
  return sizes;
}

const kb = (bytes) => `${(bytes / 1000).toFixed(1)} KB`; // decimal, as the report (docs/BENCHMARKS.md)

/** A readable table of the `size` rows. */
export function sizeTable(sizes) {
  const lines = [];
  const pad = (s, n) => String(s).padEnd(n);
  const num = (s, n) => String(s).padStart(n);
  lines.push(`${pad("size (gzip -9)", 44)}${num("gzip", 12)}${num("raw", 12)}`);
  for (const s of sizes) {
    lines.push(`${pad(s.name, 44)}${num(kb(s.gzip_bytes), 12)}${num(kb(s.raw_bytes), 12)}`);
    if (s.files.length > 1) {
      for (const f of s.files) lines.push(`${pad(`  ${f.file}`, 44)}${num(kb(f.gzip_bytes), 12)}${num(kb(f.raw_bytes), 12)}`);
    }
  }
  return lines.join("\n");
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const bundles = await bundlePeers();
    const sizes = measureSizes({ bundles });
    console.log(sizeTable(sizes));
    if (!existsSync(DIST_DIR)) console.log(`(no ${DIST_DIR}: build the web app to weigh its first load)`);
  } catch (e) {
    console.error(`sizes: ${e.message}`);
    process.exit(1);
  }
}
