//! The browser side: the `@subsignal/store` npm package, the browser tests and the store bench's Leptos entry.
//!
//! - `cargo xtask npm` builds `subsignal-browser --features js` for wasm32 (profile `wasm-release`), shrinks it with
//!   `wasm-opt -Oz`, runs `wasm-bindgen --target web`, and writes the package to `target/npm/store/`
//!   (`--names`: a copy keeping the Rust function names, in `target/npm/store-names/`, for profiles); then it
//!   compiles `@subsignal/react` (`crates/browser/react`, TypeScript) into `target/npm/react/`, and `npm pack`s both
//!   into `target/npm/subsignal-{store,react}-<version>.tgz`, the version being the workspace's.
//! - `cargo xtask test-browser` runs [`browser_tests`]: the wasm-bindgen tests of `subsignal-browser` and
//!   `subsignal-leptos` in headless Chromium against a real server behind `tests/js/e2e/harness.mjs`, then the npm
//!   package end to end (the plain-JS example driven by playwright-core), `tsc --noEmit` on a TypeScript usage file,
//!   `@subsignal/react`'s Node test and the React example (`examples/react-vite`) built by Vite and driven in Chromium.
//! - [`bench_leptos`] builds the store bench's Leptos entry (`crates/bench/leptos`) for `cargo xtask bench`.
//!
//! Every test fails loudly when something it needs is missing; nothing is skipped.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::{cargo, output, root, run, run_counting, target_dir, Tally};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// wasm features rustc emits by default for wasm32 today; binaryen 108 needs them spelled out.
const WASM_OPT_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-reference-types",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-multivalue",
    "--enable-mutable-globals",
];

fn need(path: &str, what: &str) -> Result<()> {
    ensure!(Path::new(path).exists(), "{path} is missing: {what} (run `cargo xtask tools` or apt-get install it)");
    Ok(())
}

/// Builds the npm package `@subsignal/store` into `target/npm/store/` and prints the gzip size of wasm + js.
pub(crate) fn npm() -> Result<PathBuf> {
    npm_with(false)
}

/// [`npm`], or with `names` the same package keeping its wasm functions' Rust names, into `target/npm/store-names/`
/// (`cargo xtask npm --names`): for profiles (`crates/bench/browser/run.mjs --profile`), never for sizes.
pub(crate) fn npm_with(names: bool) -> Result<PathBuf> {
    crate::check_wasm_bindgen_cli()?;
    ensure!(
        output(Command::new("wasm-opt").arg("--version")).is_some(),
        "wasm-opt (Debian's binaryen) is not installed"
    );

    let built = if names { target_dir().join("names") } else { target_dir() };
    build_wasm("subsignal-browser", &["js"], |build| {
        if names {
            // Its own target directory, so that the shipped build's artifacts stay as they are.
            build.env("CARGO_PROFILE_WASM_RELEASE_STRIP", "false").env("CARGO_TARGET_DIR", &built);
        }
    })?;
    let raw = built.join("wasm32-unknown-unknown/wasm-release/subsignal_browser.wasm");
    let work = target_dir().join("npm/build");
    let out = target_dir().join(if names { "npm/store-names" } else { "npm/store" });
    std::fs::create_dir_all(&work)?;
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    // wasm-opt runs before wasm-bindgen: Debian's binaryen 108 cannot parse the `table.fill` that wasm-bindgen
    // 0.2.130 emits for its externref table, while it reads rustc's output fine (custom sections survive).
    let opt = work.join("subsignal_browser.opt.wasm");
    run(Command::new("wasm-opt")
        .arg("-Oz")
        .args(WASM_OPT_FEATURES)
        .args(if names { &["--debuginfo"][..] } else { &["--strip-debug", "--strip-producers"][..] })
        .arg(&raw)
        .arg("-o")
        .arg(&opt))?;
    run(Command::new("wasm-bindgen")
        .args(["--target", "web", "--out-name", "subsignal_store", "--out-dir"])
        .arg(&out)
        .arg(&opt))?;
    let declarations = out.join("subsignal_store.d.ts");
    std::fs::write(&declarations, generic_declarations(&std::fs::read_to_string(&declarations)?)?)?;
    let version = VERSION;
    let package = format!(
        r#"{{
  "name": "@subsignal/store",
  "version": "{version}",
  "description": "A browser state store in which GraphQL subscription events drive reactive state directly (wasm).",
  "license": "MIT OR Apache-2.0",
  "type": "module",
  "main": "./subsignal_store.js",
  "module": "./subsignal_store.js",
  "types": "./subsignal_store.d.ts",
  "exports": {{
    ".": {{ "types": "./subsignal_store.d.ts", "default": "./subsignal_store.js" }},
    "./subsignal_store_bg.wasm": "./subsignal_store_bg.wasm",
    "./subsignal_store_worker.js": "./subsignal_store_worker.js"
  }},
  "files": ["subsignal_store.js", "subsignal_store.d.ts", "subsignal_store_bg.wasm", "subsignal_store_bg.wasm.d.ts", "subsignal_store_worker.js", "snippets/", "README.md"],
  "sideEffects": false
}}
"#
    );
    std::fs::write(out.join("package.json"), package)?;
    std::fs::write(out.join("subsignal_store_worker.js"), WORKER_ENTRY)?;
    std::fs::copy(root().join("crates/browser/npm/README.md"), out.join("README.md"))?;
    let wasm = gzip_size(&out.join("subsignal_store_bg.wasm"))?;
    let js = gzip_size(&out.join("subsignal_store.js"))?;
    let raw_wasm = std::fs::metadata(out.join("subsignal_store_bg.wasm"))?.len();
    println!(
        "@subsignal/store written to {}\n  wasm {:.1} KB ({:.1} KB gzip), js {:.1} KB gzip: {:.1} KB gzip in all",
        out.display(),
        raw_wasm as f64 / 1000.0,
        wasm as f64 / 1000.0,
        js as f64 / 1000.0,
        (wasm + js) as f64 / 1000.0
    );
    if !names {
        let react = react_package(&out)?;
        for package in [&out, &react] {
            let tarball = pack(package)?;
            println!("  {}", tarball.display());
        }
    }
    Ok(out)
}

/// The package's `SharedWorker` entry (`shared: true`): inits the wasm and hands every tab's port to the store it
/// hosts. Ports that connect while the wasm loads wait for it, in order.
const WORKER_ENTRY: &str = r#"// @subsignal/store's SharedWorker: hosts one store for every tab of the origin that opens it with `shared`.
import init, { attachSharedWorkerPort } from "./subsignal_store.js";

const ready = init();
self.addEventListener("connect", (event) => {
  for (const port of event.ports) ready.then(() => attachSharedWorkerPort(port));
});
"#;

/// The npm version of both packages: the workspace's.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where `cargo xtask npm` writes `@subsignal/react`: beside the store's package.
pub(crate) fn react_dir() -> PathBuf {
    target_dir().join("npm/react")
}

/// Builds `@subsignal/react` into `target/npm/react/`: `crates/browser/react` compiled by its pinned TypeScript
/// against the declarations of the store package in `store`, with a package.json naming React 19 and the store of
/// the same version as peers.
fn react_package(store: &Path) -> Result<PathBuf> {
    let source = root().join("crates/browser/react");
    let tsc = source.join("node_modules/typescript/bin/tsc");
    ensure!(
        tsc.exists(),
        "crates/browser/react/node_modules lacks typescript: run `npm ci` in crates/browser/react (cargo xtask tools \
         does)"
    );
    let out = react_dir();
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    // The source's tsconfig maps `@subsignal/store` to `target/npm/store`; this one, to the package just built,
    // wherever the target directory is.
    let tsconfig = target_dir().join("npm/tsconfig.react.json");
    let config = serde_json::json!({
        "extends": source.join("tsconfig.json"),
        "compilerOptions": { "outDir": out, "paths": { "@subsignal/store": [store] } },
    });
    std::fs::write(&tsconfig, serde_json::to_string_pretty(&config)?)?;
    run(Command::new("node").arg(&tsc).arg("-p").arg(&tsconfig).current_dir(&source))?;
    let manifest = serde_json::json!({
        "name": "@subsignal/react",
        "version": VERSION,
        "description": "React hooks for @subsignal/store: live collections, views, rows, status and mutations on \
                        useSyncExternalStore.",
        "license": "MIT OR Apache-2.0",
        "type": "module",
        "main": "./index.js",
        "module": "./index.js",
        "types": "./index.d.ts",
        "exports": { ".": { "types": "./index.d.ts", "default": "./index.js" } },
        "files": ["index.js", "index.d.ts", "README.md"],
        "sideEffects": false,
        "peerDependencies": { "@subsignal/store": VERSION, "react": "^19.0.0" },
    });
    std::fs::write(out.join("package.json"), serde_json::to_string_pretty(&manifest)? + "\n")?;
    std::fs::copy(source.join("README.md"), out.join("README.md"))?;
    println!(
        "@subsignal/react written to {}\n  js {:.1} KB gzip",
        out.display(),
        gzip_size(&out.join("index.js"))? as f64 / 1000.0
    );
    Ok(out)
}

/// The tarball `npm pack` made of `@subsignal/<name>`, in `target/npm/`.
fn tarball(name: &str) -> PathBuf {
    target_dir().join(format!("npm/subsignal-{name}-{VERSION}.tgz"))
}

/// `npm pack` of a package folder into `target/npm/`; gives the tarball's path.
fn pack(package: &Path) -> Result<PathBuf> {
    let dest = target_dir().join("npm");
    let out = Command::new("npm")
        .args(["pack", "--loglevel=error", "--pack-destination"])
        .arg(&dest)
        .arg(package)
        .output()
        .context("cannot run npm pack (npm is needed to build the packages)")?;
    ensure!(out.status.success(), "npm pack {} failed:\n{}", package.display(), String::from_utf8_lossy(&out.stderr));
    let name = String::from_utf8_lossy(&out.stdout).trim().lines().last().unwrap_or_default().to_owned();
    let tarball = dest.join(&name);
    ensure!(tarball.exists(), "npm pack {} wrote no {}", package.display(), tarball.display());
    Ok(tarball)
}

/// wasm-bindgen cannot declare type parameters on methods or classes: these lines of its declarations gain them, so
/// that `store.view<Order>(…)`, `store.row<Order>(…)`, `store.rows<Order>(…)`, `store.at<Order>(…)` and `store.mutate(typedMutation)` are
/// typed. Each line must be found exactly as written, or the build fails (a wasm-bindgen upgrade changed them).
fn generic_declarations(text: &str) -> Result<String> {
    const GENERIC: &[(&str, &str)] = &[
        (
            "mutate(mutation: Mutation, options?: MutateOptions): Promise<unknown>;",
            "mutate<TResult = unknown, TVariables = Record<string, unknown>>(mutation: Mutation<TResult, TVariables>, \
             options?: MutateOptions): Promise<TResult>;",
        ),
        (
            "row(collection: string, key: string): unknown;",
            "row<T = unknown>(collection: string, key: string): T | null;",
        ),
        ("rows(collection: string): unknown[];", "rows<T = unknown>(collection: string): T[];"),
        (
            "at(collection: string, seq: number): HistoryAt;",
            "at<T = unknown>(collection: string, seq: number): HistoryAt<T>;",
        ),
        (
            "view(collection: string, spec: ViewSpec): View;",
            "view<T = unknown>(collection: string, spec?: ViewSpec): View<T>;",
        ),
        ("export class View {", "export class View<T = unknown> {"),
        ("export class Collection {", "export class Collection<T = unknown> {"),
        ("collection(name: string): Collection;", "collection<T = unknown>(name: string): Collection<T>;"),
        ("getRow(key: string): unknown;", "getRow(key: string): T | null;"),
    ];
    // On Collection and View alike.
    const BOTH: (&str, &str) = ("getSnapshot(): readonly unknown[];", "getSnapshot(): readonly T[];");
    let mut text = text.to_owned();
    for (from, to) in GENERIC {
        ensure!(text.matches(from).count() == 1, "the generated declarations lack `{from}` (or have it twice)");
        text = text.replace(from, to);
    }
    ensure!(text.matches(BOTH.0).count() == 2, "the generated declarations lack `{}` on Collection and View", BOTH.0);
    Ok(text.replace(BOTH.0, BOTH.1))
}

/// `cargo build` of a wasm32 crate (profile `wasm-release`) with these features; `adjust` may set more.
fn build_wasm(package: &str, features: &[&str], adjust: impl FnOnce(&mut Command)) -> Result<()> {
    let mut build = cargo();
    build.args(["build", "-p", package, "--target", "wasm32-unknown-unknown", "--profile", "wasm-release"]);
    if !features.is_empty() {
        build.arg("--features").arg(features.join(","));
    }
    adjust(&mut build);
    run(&mut build)
}

/// The wasm32 crates the test build compiles (and clippy lints) in one cargo invocation, with the npm package's
/// feature: every wasm32 crate of the workspace.
const WASM_CRATES: &[&str] = &[
    "-p",
    "subsignal-browser",
    "-p",
    "subsignal-leptos",
    "-p",
    "subsignal-web",
    "-p",
    "subsignal-bench-leptos",
    "--features",
    "subsignal-browser/js",
];

/// Builds benchmark 4's Leptos entry (`crates/bench/leptos`) into `target/bench/leptos/` for the store-bench page:
/// with `wasm-release` for the full bench; for the quick one, a debug build of the same crates and features as the
/// wasm32 test build, which then compiles only the workspace's crates (a `wasm-release` build of leptos and its
/// dependencies took 75 s of a fresh machine's test run). Its figures then are a debug build's: the quick bench
/// only shows that the entry runs.
pub(crate) fn bench_leptos(quick: bool) -> Result<PathBuf> {
    crate::check_wasm_bindgen_cli()?;
    let profile = if quick {
        run(cargo().args(["build", "--target", "wasm32-unknown-unknown"]).args(WASM_CRATES))?;
        "debug"
    } else {
        build_wasm("subsignal-bench-leptos", &[], |_| {})?;
        "wasm-release"
    };
    let raw = target_dir().join(format!("wasm32-unknown-unknown/{profile}/subsignal_bench_leptos.wasm"));
    let out = target_dir().join("bench/leptos");
    run(Command::new("wasm-bindgen")
        .args(["--target", "web", "--out-name", "subsignal_bench_leptos", "--out-dir"])
        .arg(&out)
        .arg(&raw))?;
    Ok(out)
}

fn gzip_size(path: &Path) -> Result<u64> {
    let out = Command::new("gzip").args(["-9", "-c"]).arg(path).output().context("cannot run gzip")?;
    ensure!(out.status.success(), "gzip {} failed", path.display());
    Ok(out.stdout.len() as u64)
}

/// Every browser test: wasm-bindgen tests in Chromium against a real server, the npm package end to end in
/// Chromium (playwright-core), and `tsc --noEmit` against the generated declarations.
pub(crate) fn browser_tests() -> Result<()> {
    let mut tally = Tally::default();
    let bin = crate::server_binary()?;
    let package = npm()?;
    wasm_tests(&bin, &mut tally)?;
    npm_tests(&bin, &package, &mut tally)?;
    ensure!(tally.passed > 0, "no browser test ran");
    ensure!(tally.failed == 0, "{} browser test(s) failed", tally.failed);
    println!("\nbrowser tests: {} passed, {} failed", tally.passed, tally.failed);
    Ok(())
}

/// `cargo xtask test-react`: the packages, then `@subsignal/react`'s Node test and the React example end to end.
pub(crate) fn react_only_tests() -> Result<()> {
    let mut tally = Tally::default();
    let bin = crate::server_binary()?;
    npm()?;
    react_tests(&mut tally)?;
    react_example(&bin, &mut tally)?;
    ensure!(tally.passed > 0, "no React test ran");
    ensure!(tally.failed == 0, "{} React test(s) failed", tally.failed);
    println!("\nReact tests: {} passed, {} failed", tally.passed, tally.failed);
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `tests/js/e2e/harness.mjs`: the server plus a CORS proxy with stop/start endpoints, on a fixed port.
struct Harness {
    child: Child,
    stdin: Option<ChildStdin>,
    url: String,
}

impl Harness {
    fn start(bin: &Path) -> Result<Self> {
        let port = free_port()?;
        let mut child = Command::new("node")
            .args(["e2e/harness.mjs", "--port", &port.to_string()])
            .current_dir(root().join("tests/js"))
            .env("SUBSIGNAL_BIN", bin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start node (Node 20 is needed for the browser-test harness)")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("[harness] {line}");
                if line.contains("harness listening on") {
                    let _ = tx.send(());
                }
            }
        });
        let mut harness = Harness { child, stdin, url: format!("http://127.0.0.1:{port}") };
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            harness.stop();
            bail!("the browser-test harness did not start within 30 s (see its output above)");
        }
        Ok(harness)
    }

    fn stop(&mut self) {
        // Closing stdin asks the harness to stop its server and exit.
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Environment for wasm-bindgen-test-runner: Debian's chromedriver, the flags in `webdriver.json`, a long timeout.
fn wasm_test_command(harness_url: &str) -> Result<Command> {
    need(CHROMIUM, "Debian's chromium")?;
    need(CHROMEDRIVER, "Debian's chromium-driver")?;
    let webdriver = root().join("webdriver.json");
    ensure!(webdriver.exists(), "{} is missing", webdriver.display());
    let mut cmd = cargo();
    cmd.env("CHROMEDRIVER", CHROMEDRIVER)
        .env("WASM_BINDGEN_TEST_WEBDRIVER_JSON", &webdriver)
        .env("WASM_BINDGEN_TEST_TIMEOUT", "180")
        .env("SUBSIGNAL_TEST_URL", harness_url);
    Ok(cmd)
}

/// The wasm-bindgen tests of `subsignal-browser` and `subsignal-leptos` in headless Chromium, in a build that clippy
/// lints.
pub(crate) fn wasm_tests(bin: &Path, tally: &mut Tally) -> Result<()> {
    let harness = Harness::start(bin)?;
    // Linted (see `lint.rs`): the web app, the bench's Leptos entry and the npm package's `js` feature are built here
    // too, so that clippy sees every wasm32 crate in this one build.
    let result = run_counting(
        crate::lint::linted(
            wasm_test_command(&harness.url)?
                .args(["test", "--target", "wasm32-unknown-unknown"])
                .args(WASM_CRATES)
                .arg("--tests"),
        )?,
        tally,
    );
    drop(harness);
    result
}

/// The npm package end to end (the plain-JS order example, the notes example on a schema with no Rust, and the
/// entity-events and live-query sources against subsignal and a Node graphql-ws server, in Chromium via
/// playwright-core) and `tsc --noEmit`; then `@subsignal/react`'s Node test and the React example.
pub(crate) fn npm_tests(bin: &Path, package: &Path, tally: &mut Tally) -> Result<()> {
    need(CHROMIUM, "Debian's chromium")?;
    let js = root().join("tests/js");
    ensure!(
        js.join("node_modules/playwright-core").exists() && js.join("node_modules/typescript").exists(),
        "tests/js/node_modules lacks playwright-core or typescript: run `npm ci` in tests/js (cargo xtask tools does)"
    );
    // The usage file's tsconfig maps `@subsignal/store` to `target/npm/store`; a config beside the package points it
    // at the package just built, wherever the target directory is.
    let tsconfig = package.with_file_name("tsconfig.usage.json");
    let config = serde_json::json!({
        "extends": js.join("e2e/tsconfig.json"),
        "compilerOptions": { "paths": { "@subsignal/store": [package] } },
    });
    std::fs::write(&tsconfig, serde_json::to_string_pretty(&config)?)?;
    run(Command::new("node")
        .args(["node_modules/typescript/bin/tsc", "--noEmit", "-p"])
        .arg(&tsconfig)
        .current_dir(&js))?;
    println!("tsc --noEmit: the TypeScript usage file type-checks against the generated declarations");
    tally.passed += 1;
    run_counting(
        Command::new("node")
            // One file at a time: each drives Chromium against a server of its own.
            .args([
                "--test",
                "--test-concurrency=1",
                "--test-reporter=tap",
                "e2e/npm.e2e.mjs",
                "e2e/notes.e2e.mjs",
                "e2e/sources.e2e.mjs",
                "e2e/kill9.e2e.mjs",
                "e2e/persist.e2e.mjs",
                "e2e/shared.e2e.mjs",
                "e2e/shared-worker.e2e.mjs",
            ])
            .current_dir(&js)
            .env("SUBSIGNAL_BIN", bin)
            .env("SUBSIGNAL_NPM_PACKAGE", package)
            .env("SUBSIGNAL_EXAMPLE", root().join("examples/plain-js"))
            .env("CHROMIUM", CHROMIUM),
        tally,
    )?;
    react_tests(tally)?;
    react_example(bin, tally)
}

/// `@subsignal/react`'s own test (Node, React's development build in happy-dom) against the package just built.
fn react_tests(tally: &mut Tally) -> Result<()> {
    let source = root().join("crates/browser/react");
    ensure!(
        source.join("node_modules/react-dom").exists() && source.join("node_modules/happy-dom").exists(),
        "crates/browser/react/node_modules lacks react-dom or happy-dom: run `npm ci` there (cargo xtask tools does)"
    );
    run_counting(
        Command::new("node")
            .args(["--test", "--test-reporter=tap", "test/hooks.test.mjs"])
            .current_dir(&source)
            .env("SUBSIGNAL_REACT_PACKAGE", react_dir()),
        tally,
    )
}

/// The React example, `examples/react-vite`: both tarballs installed as a user would (`npm install <tgz>`, not saved,
/// so that its lock file keeps only registry packages), its typed documents checked against graphql-codegen's output,
/// `tsc`, a production and a development `vite build` into `target/react-vite/site/` (the development one, with
/// React's warnings and StrictMode's double effects, under `dev/`), then `tests/js/e2e/react.e2e.mjs` drives both in
/// Chromium against `subsignal serve`, and the example as Vite's dev server serves it (the test starts one).
fn react_example(bin: &Path, tally: &mut Tally) -> Result<()> {
    let example = root().join("examples/react-vite");
    for package in ["vite", "typescript", "@graphql-codegen/cli", "react-dom"] {
        ensure!(
            example.join("node_modules").join(package).exists(),
            "examples/react-vite/node_modules lacks {package}: run `npm ci` there (cargo xtask tools does)"
        );
    }
    let tarballs = [tarball("store"), tarball("react")];
    for tarball in &tarballs {
        ensure!(tarball.exists(), "{} is missing: `cargo xtask npm` writes it", tarball.display());
    }
    run(Command::new("npm")
        .args(["install", "--no-save", "--offline", "--no-audit", "--no-fund", "--loglevel=error"])
        .args(&tarballs)
        .current_dir(&example))?;
    let node = |script: &str| {
        let mut cmd = Command::new("node");
        cmd.arg(example.join("node_modules").join(script)).current_dir(&example);
        cmd
    };
    run(node("@graphql-codegen/cli/esm/bin.js").arg("--check")).context(
        "examples/react-vite/src/gql/ is not what graphql-codegen makes of src/ and schema.graphql: run `npm run \
         codegen` there",
    )?;
    run(node("typescript/bin/tsc").args(["--noEmit", "-p", "."]))?;
    let site = target_dir().join("react-vite/site");
    run(node("vite/bin/vite.js").args(["build", "--logLevel", "warn", "--emptyOutDir", "--outDir"]).arg(&site))?;
    run(node("vite/bin/vite.js")
        .args(["build", "--mode", "development", "--logLevel", "warn", "--emptyOutDir", "--outDir"])
        .arg(site.join("dev"))
        .env("NODE_ENV", "development"))?;
    println!("examples/react-vite: codegen up to date, tsc --noEmit, vite build (production and development) passed");
    tally.passed += 1;
    run_counting(
        Command::new("node")
            .args(["--test", "--test-reporter=tap", "e2e/react.e2e.mjs"])
            .current_dir(root().join("tests/js"))
            .env("SUBSIGNAL_BIN", bin)
            .env("SUBSIGNAL_REACT_SITE", &site)
            .env("SUBSIGNAL_REACT_EXAMPLE", &example)
            .env("CHROMIUM", CHROMIUM),
        tally,
    )
}
