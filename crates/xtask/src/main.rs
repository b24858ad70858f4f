//! Project automation. Run with `cargo xtask <command>`:
//!
//! - `cargo xtask demo` builds everything and runs the demo server with a seeded database.
//! - `cargo xtask test` installs what the tests need on a fresh machine (Rust target, Debian packages, pinned CLIs,
//!   pinned npm packages) and runs every test: format, lints, native tests, JavaScript interop tests.
//! - `cargo xtask soak --minutes N` runs the fault tests again and again with fresh seeds (by hand, not in CI).
//!
//! Every step prints its number, what it does and how long it took; a failing step stops the run with its name.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

mod lint;
mod postgres;
mod wasm;

/// The Trunk version that builds with this machine's Rust (0.22 needs a newer rustc).
const TRUNK_VERSION: &str = "0.21.14";
/// Debian packages building the web app needs (wasm-opt).
const BUILD_PACKAGES: &[&str] = &["binaryen"];
/// Debian packages the browser tests need.
const TEST_PACKAGES: &[&str] = &["chromium", "chromium-driver"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("demo") => demo(&args[1..]),
        Some("tools") => Steps::new(1).run("install tools", install_tools).map(|_| ()),
        Some("postgres") => postgres::ensure_postgres().map(|env| {
            for (name, value) in env {
                println!("export {name}='{value}'");
            }
        }),
        Some("soak") => soak(&args[1..]),
        Some("npm") => match &args[1..] {
            [] => wasm::npm().map(drop),
            [flag] if flag == "--names" => wasm::npm_with(true).map(drop),
            other => Err(anyhow::anyhow!("unknown npm option(s) {other:?}; try `cargo xtask npm [--names]`")),
        },
        Some("test-browser") => wasm::browser_tests(),
        Some("test-react") => wasm::react_only_tests(),
        Some("bench") => bench(&args[1..]),
        Some("report") => report(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 demo [--port N] [--profile NAME] [--debug]\n                        build the web app and run it with the server behind the network simulator\n                        (--debug: a debug build of the server, quicker to build)\n  \
                 test                   install what the tests need, then run every test\n  \
                 tools                  only install the tools\n  \
                 postgres               start the tests' PostgreSQL and print its variables (for `cargo test` by hand)\n  \
                 soak --minutes N       the fault tests (tests/faults.rs) again and again for N minutes, each run with\n                        a fresh SUBSIGNAL_FAULT_SEED; by hand, not in CI\n  \
                 npm [--names]          build the npm packages @subsignal/store and @subsignal/react into target/npm/\n                        (folders and npm pack tarballs; --names: the store keeping Rust function names,\n                        into target/npm/store-names, for profiles)\n  \
                 test-browser           only the browser tests (wasm-bindgen in Chromium, npm package, tsc)\n  \
                 test-react             only @subsignal/react's tests and the React example (Vite, Chromium)\n  \
                 report [--orders N] [--profiles a,b]\n                        the latency report: orders through the app behind each network profile → docs/\n  \
                 bench [--quick]        side-by-side benchmarks (fan-out, latency, memory vs Node graphql-ws and a raw\n                        echo; store apply vs Apollo and TanStack DB; size) → docs/BENCHMARKS.md\n                        (--quick: the smoke run CI does, small counts, → target/bench/quick/)"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("\nxtask failed: {e:#}");
        std::process::exit(1);
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("repo root").to_owned()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Numbered, timed steps.
struct Steps {
    total: usize,
    done: usize,
    started: Instant,
    /// Each finished step's name and seconds.
    times: Vec<(String, f64)>,
}

impl Steps {
    fn new(total: usize) -> Self {
        Steps { total, done: 0, started: Instant::now(), times: Vec::new() }
    }

    fn run<T>(&mut self, what: &str, step: impl FnOnce() -> Result<T>) -> Result<T> {
        self.done += 1;
        println!("\n==> [{}/{}] {what}", self.done, self.total);
        let start = Instant::now();
        let out = step().with_context(|| format!("step {}/{} ({what}) failed", self.done, self.total))?;
        self.times.push((what.to_owned(), start.elapsed().as_secs_f64()));
        println!(
            "==> [{}/{}] {what}: done in {:.1} s ({:.0} s so far)",
            self.done,
            self.total,
            start.elapsed().as_secs_f64(),
            self.started.elapsed().as_secs_f64()
        );
        Ok(out)
    }
}

fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let start = Instant::now();
    let status = cmd.status().with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} exited with {status}");
    }
    took(cmd, start);
    Ok(())
}

/// Says how long a command took when it was long enough to matter, so a slow step's log shows where its time went.
fn took(cmd: &Command, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    if secs >= 5.0 {
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
        println!("--> {secs:.1} s: {} {}", cmd.get_program().to_string_lossy(), args.join(" "));
    }
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a test command, echoing its output, and counts what its runner reports as passed and failed.
fn run_counting(cmd: &mut Command, tally: &mut Tally) -> Result<()> {
    run_counting_as(cmd, tally, None)
}

/// [`run_counting`], each echoed line prefixed with `[label] ` when given.
fn run_counting_as(cmd: &mut Command, tally: &mut Tally, label: Option<&str>) -> Result<()> {
    let shown = format!("{cmd:?}");
    let start = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).spawn().with_context(|| format!("cannot start {shown}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        match label {
            Some(label) => println!("[{label}] {line}"),
            None => println!("{line}"),
        }
        tally.read(&line);
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("{shown} exited with {status}");
    }
    took(cmd, start);
    Ok(())
}

/// RELIABILITY case 10: `mutations` mutations from the npm package in Chromium through the netsim `profile`.
fn bad_network(bin: &Path, package: &Path, profile: &str, mutations: &str) -> Command {
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-reporter=tap", "e2e/flaky.e2e.mjs"])
        .current_dir(root().join("tests/js"))
        .env("SUBSIGNAL_BIN", bin)
        .env("SUBSIGNAL_NPM_PACKAGE", package)
        .env("CHROMIUM", "/usr/bin/chromium")
        .env("FLAKY_PROFILE", profile)
        .env("FLAKY_MUTATIONS", mutations)
        .env("FLAKY_PROFILES_FILE", root().join("tests/js/e2e/chaos-profiles.toml"));
    cmd
}

/// Test commands run one after another on a thread of their own, beside a step that keeps the CPU busy; each output
/// line is echoed with a `[label]` prefix as it comes.
struct Beside(std::thread::JoinHandle<(Result<()>, Tally)>);

impl Beside {
    fn spawn(label: &'static str, commands: Vec<Command>) -> Self {
        Beside(std::thread::spawn(move || {
            let mut tally = Tally::default();
            let mut result = Ok(());
            for mut cmd in commands {
                result = run_counting_as(&mut cmd, &mut tally, Some(label));
                if result.is_err() {
                    break;
                }
            }
            (result, tally)
        }))
    }

    /// Waits for the commands and adds their counts to `tally`.
    fn join(self, tally: &mut Tally) -> Result<()> {
        let (result, counted) = self.0.join().map_err(|_| anyhow::anyhow!("the tests run beside panicked"))?;
        tally.passed += counted.passed;
        tally.failed += counted.failed;
        result
    }
}

#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
}

impl Tally {
    fn read(&mut self, line: &str) {
        let number_before = |word: &str| -> Option<u64> {
            let idx = line.find(word)?;
            line[..idx].split_whitespace().last()?.parse().ok()
        };
        // cargo test: "test result: ok. 26 passed; 0 failed; ..."
        if line.starts_with("test result:") {
            self.passed += number_before(" passed").unwrap_or(0);
            self.failed += number_before(" failed").unwrap_or(0);
        }
        // node --test: "# pass 3" / "# fail 0"
        if let Some(n) = line.strip_prefix("# pass ").and_then(|n| n.trim().parse::<u64>().ok()) {
            self.passed += n;
        }
        if let Some(n) = line.strip_prefix("# fail ").and_then(|n| n.trim().parse::<u64>().ok()) {
            self.failed += n;
        }
    }
}

/// The wasm-bindgen version pinned in the workspace manifest (`wasm-bindgen = "=X.Y.Z"`).
fn pinned_wasm_bindgen() -> Result<String> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml"))?;
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("wasm-bindgen = \"=").and_then(|r| r.strip_suffix('"')))
        .map(str::to_owned)
        .context("Cargo.toml must pin wasm-bindgen exactly (wasm-bindgen = \"=X.Y.Z\")")
}

/// Fails unless the installed wasm-bindgen CLI is the version the workspace pins.
fn check_wasm_bindgen_cli() -> Result<()> {
    let pinned = pinned_wasm_bindgen()?;
    let cli = output(Command::new("wasm-bindgen").arg("--version")).context("the wasm-bindgen CLI is not installed")?;
    ensure!(cli.contains(&pinned), "wasm-bindgen CLI is {}, the workspace pins {pinned}", cli.trim());
    Ok(())
}

/// `cargo install --locked NAME@VERSION` for each `(crate, binary, version)` whose `binary --version` does not
/// report VERSION, all at once: each build has serial stretches (big crates, linking) that the others fill.
fn cargo_install(tools: &[(&str, &str, &str)]) -> Result<()> {
    let mut building = Vec::new();
    for &(name, binary, version) in tools {
        if output(Command::new(binary).arg("--version")).is_some_and(|v| v.contains(version)) {
            println!("{name} {version}: already installed");
            continue;
        }
        println!("installing {name} {version} (a few minutes on a fresh machine)…");
        let child = cargo_install_command(name, version).arg("--locked").spawn()?;
        building.push((name, version, child));
    }
    for (name, version, mut child) in building {
        if child.wait()?.success() {
            continue;
        }
        // The registry can lack a version named in the crate's own lock file (seen for wasm-bindgen-cli's
        // webpki-roots); the same crate version then resolves its dependencies afresh.
        println!("warning: `cargo install --locked {name}@{version}` failed; retrying without --locked");
        run(&mut cargo_install_command(name, version))?;
    }
    Ok(())
}

/// `cargo install NAME --version VERSION`, built for a quick build rather than peak speed, since a fresh machine
/// builds these before any test runs. Trunk only orchestrates (cargo, wasm-bindgen, a file server): unoptimized, with
/// no TLS stack and no update check, since subsignal runs it offline with the tools installed here (5.3 min to build
/// on this kind of machine). wasm-bindgen transforms every test's wasm, so it keeps light optimization.
fn cargo_install_command(name: &str, version: &str) -> Command {
    let mut cmd = cargo();
    cmd.args(["install", name, "--version", version])
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", if name == "trunk" { "0" } else { "1" })
        .env("CARGO_PROFILE_RELEASE_LTO", "false")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "256")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false");
    if name == "trunk" {
        cmd.arg("--no-default-features");
    }
    cmd
}

/// Installs the Debian packages of `packages` that are missing (`apt-get update` first, once, only if needed).
pub(crate) fn apt_install(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]))
                .is_some_and(|s| s.contains("ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("installing Debian packages: {}", missing.join(" "));
    let root_user = output(Command::new("id").arg("-u")).is_some_and(|u| u.trim() == "0");
    let apt = |args: &[&str]| {
        let mut cmd = if root_user { Command::new("apt-get") } else { Command::new("sudo") };
        if !root_user {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    run(&mut apt(&["update", "-qq"]))?;
    run(apt(&["install", "-y", "-qq", "--no-install-recommends"]).args(&missing))
}

/// The wasm32 target and the rustfmt and clippy components.
fn install_rust_parts() -> Result<()> {
    let targets = output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !targets.contains("wasm32-unknown-unknown") {
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    for component in ["rustfmt", "clippy"] {
        if output(Command::new("rustup").args(["component", "list", "--installed"]))
            .is_some_and(|c| !c.contains(component))
        {
            run(Command::new("rustup").args(["component", "add", component]))?;
        }
    }
    Ok(())
}

/// The CLIs built from crates.io: wasm-bindgen-cli at the pinned version, and Trunk.
fn install_clis() -> Result<()> {
    let wasm_bindgen = pinned_wasm_bindgen()?;
    cargo_install(&[("wasm-bindgen-cli", "wasm-bindgen", &wasm_bindgen), ("trunk", "trunk", TRUNK_VERSION)])
}

/// What building the app needs: the wasm32 target, rustfmt/clippy, wasm-opt, wasm-bindgen-cli at the pinned
/// version, and Trunk.
fn install_build_tools() -> Result<()> {
    install_rust_parts()?;
    apt_install(BUILD_PACKAGES)?;
    install_clis()
}

/// Everything: the build tools, Chromium and its driver, PostgreSQL, the pinned npm packages of the tests and the
/// benchmarks, and the workspace's crates. Downloads (Debian packages, npm, crates) run beside the CLIs' compilation,
/// which is CPU-bound.
fn install_tools() -> Result<()> {
    install_rust_parts()?;
    if output(Command::new("node").arg("--version")).is_none() {
        bail!("Node.js is not installed; the JavaScript tests and benchmarks need Node 20 and npm");
    }
    let downloads = std::thread::spawn(|| -> Result<()> {
        apt_install(&[BUILD_PACKAGES, TEST_PACKAGES, postgres::PACKAGES].concat())?;
        // The test peers (AWS's AppSync simulator in its own folder: it needs graphql 14), what builds and tests
        // @subsignal/react, the React example, and the benchmarks' peers (each folder pins its packages in its own
        // lock file). All at once: each waits on the network as much as on the CPU (46 s instead of 67 s here).
        let installs = [
            "tests/js",
            "tests/js/appsync-simulator",
            "crates/browser/react",
            "examples/react-vite",
            "crates/bench/node-peer",
            "crates/bench/browser",
        ]
        .map(|dir| {
            let mut npm = Command::new("npm");
            npm.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(root().join(dir));
            (dir, npm.spawn().with_context(|| format!("cannot start npm ci in {dir}")))
        });
        // Every one is waited for, so that a failure leaves none running.
        let failures: Vec<String> = installs
            .into_iter()
            .filter_map(|(dir, child)| match child.and_then(|mut c| Ok(c.wait()?)) {
                Ok(status) if status.success() => None,
                Ok(status) => Some(format!("npm ci in {dir} exited with {status}")),
                Err(e) => Some(format!("{e:#}")),
            })
            .collect();
        ensure!(failures.is_empty(), "{}", failures.join("; "));
        // Every crate the builds to come need, for the host and wasm32, so that they start compiling at once.
        run(cargo().args(["fetch", "--locked"]))
    });
    let clis = install_clis();
    let downloads = downloads.join().map_err(|_| anyhow::anyhow!("installing the packages panicked"))?;
    clis.and(downloads)
}

fn test() -> Result<()> {
    let mut steps = Steps::new(8);
    let mut tally = Tally::default();
    steps.run("install tools (Rust target, Debian packages, pinned CLIs, npm packages)", install_tools)?;
    let postgres_env = steps
        .run("start PostgreSQL for the tests (Debian package, private clusters on loopback)", || {
            postgres::ensure_postgres()
        })?;
    steps.run("check formatting, and that clippy lints the builds to come", || {
        run(cargo().args(["fmt", "--all", "--check"]))?;
        lint::canary()
    })?;
    // The server binary every later step runs is the one this step's build makes (the server crate's own
    // integration test needs it): one build of the server and its dependencies, not a second one with other features.
    let bin = target_dir().join("debug/subsignal");
    let native = steps.run(
        "native build, linted (clippy, warnings are errors), and tests (unit, proptest, end-to-end on SQLite and \
         PostgreSQL)",
        || {
            run_counting(
                lint::linted(cargo().args(["test", "--workspace", "--", "--color", "never"]))?
                    .env("SUBSIGNAL_BIN", &bin)
                    .envs(postgres_env.iter().map(|(name, value)| (name, value)))
                    .env("SUBSIGNAL_REQUIRE_POSTGRES", "1"),
                &mut tally,
            )
        },
    );
    if let Err(e) = postgres::stop_postgres() {
        println!("warning: cannot stop the PostgreSQL test cluster: {e:#}");
    }
    native?;
    let package = steps.run("the npm package @subsignal/store (wasm32, profile wasm-release)", wasm::npm)?;
    // What only waits on sockets and timers runs beside the wasm32 build, which keeps both cores busy: the Node
    // interop tests, and the mutations through a bad network (three minutes of simulated latency and resets).
    let mut interop = Command::new("node");
    interop.args(["--test", "--test-reporter=tap"]).current_dir(root().join("tests/js")).env("SUBSIGNAL_BIN", &bin);
    let beside = Beside::spawn(
        "beside",
        vec![interop, bad_network(&bin, &package, "flaky", "200"), bad_network(&bin, &package, "chaos", "1000")],
    );
    steps.run(
        "wasm32 build, linted, and browser tests (wasm-bindgen in Chromium, the npm package end to end, tsc); beside \
         them, the JavaScript interop tests (graphql-ws reference client, Node) and mutations through a bad network: \
         200 via `flaky`, 1000 via `chaos` (RELIABILITY case 10)",
        || {
            let browser = wasm::wasm_tests(&bin, &mut tally).and_then(|()| wasm::npm_tests(&bin, &package, &mut tally));
            // Always waited for, so that a failure in either half leaves no test process behind.
            let beside = beside.join(&mut tally);
            browser.and(beside)
        },
    )?;
    steps.run(
        "the web app: trunk build --release, end to end in Chromium, through `trunk serve`, and the demo; the latency \
         report, quick (one profile, one order per mode; asserts nothing)",
        || {
            build_web_app()?;
            // One file at a time: each drives Chromium, and the last two build (Trunk's dev build, the demo's checks).
            for file in ["web/app.e2e.mjs", "web/trunk-serve.e2e.mjs", "web/demo.e2e.mjs"] {
                run_counting(
                    Command::new("node")
                        .args(["--test", "--test-reporter=tap", file])
                        .current_dir(root().join("tests/js"))
                        .env("SUBSIGNAL_BIN", &bin)
                        .env("SUBSIGNAL_WEB_DIST", root().join("dist"))
                        .env("CHROMIUM", "/usr/bin/chromium"),
                    &mut tally,
                )?;
            }
            // The report's own code (the load timeline of issue 17 included) runs on every test run, written aside.
            run(&mut report_command(&bin, &target_dir().join("report-quick"), "1", Some("none")))
        },
    )?;
    steps.run(
        "benchmarks, quick (a smoke run beside Node graphql-ws, a raw echo, Apollo, TanStack DB; asserts nothing)",
        || {
            // The native test step built it (its integration test needs it), with the workspace's features: a
            // `cargo build -p subsignal-bench` would build its dependencies again with the bench's features alone.
            let load_generator = target_dir().join("debug/subsignal-bench");
            ensure!(load_generator.exists(), "{} is missing: the native test step builds it", load_generator.display());
            bench_run(true, &bin, &load_generator)
        },
    )?;
    if tally.passed == 0 {
        bail!("no test ran");
    }
    if tally.failed > 0 {
        bail!("{} test(s) failed", tally.failed);
    }
    println!("\nxtask test: {} passed, {} failed", tally.passed, tally.failed);
    record_steps(&steps, &tally)
}

/// `cargo xtask soak --minutes N`: the fault tests (`tests/faults.rs`) again and again for N minutes, each run with a
/// fresh `SUBSIGNAL_FAULT_SEED`, one line per run (its seed, how it went, how long it took); a failing run's output is
/// printed whole, and the command fails at the end naming every failing seed. By hand only: `cargo xtask test` runs
/// each fault test once, with a seed of its own.
fn soak(args: &[String]) -> Result<()> {
    let minutes: u64 = match args {
        [flag, n] if flag == "--minutes" => n.parse().context("--minutes takes a whole number of minutes")?,
        _ => bail!("usage: cargo xtask soak --minutes N"),
    };
    let postgres_env = postgres::ensure_postgres()?;
    // Built once: each run then starts at once.
    run(cargo().args(["build", "-p", "subsignal-server", "--bin", "subsignal"]))?;
    run(cargo().args(["test", "-p", "subsignal-tests", "--test", "tests", "--no-run"]))?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(minutes * 60);
    let (mut runs, mut failed) = (0u64, Vec::new());
    while Instant::now() < deadline {
        runs += 1;
        let seed = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), runs);
        let run_started = Instant::now();
        let out = cargo()
            .args(["test", "-q", "-p", "subsignal-tests", "--test", "tests", "faults::", "--", "--color", "never"])
            .env("SUBSIGNAL_FAULT_SEED", seed.to_string())
            .env("SUBSIGNAL_BIN", target_dir().join("debug/subsignal"))
            .env("SUBSIGNAL_REQUIRE_POSTGRES", "1")
            .envs(postgres_env.iter().map(|(name, value)| (name, value)))
            .output()
            .context("cannot run cargo test")?;
        let how = if out.status.success() { "passed" } else { "FAILED" };
        println!(
            "[{:>5.0} s] run {runs}: SUBSIGNAL_FAULT_SEED={seed} {how} in {:.1} s",
            started.elapsed().as_secs_f64(),
            run_started.elapsed().as_secs_f64()
        );
        if !out.status.success() {
            println!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            failed.push(seed);
        }
    }
    if let Err(e) = postgres::stop_postgres() {
        println!("warning: cannot stop the PostgreSQL test clusters: {e:#}");
    }
    println!("\nsoak: {runs} runs of the fault tests in {minutes} min, {} failed", failed.len());
    if !failed.is_empty() {
        bail!("failing seeds (rerun one with SUBSIGNAL_FAULT_SEED=<seed>): {failed:?}");
    }
    Ok(())
}

/// Keeps the test run's step times in `target/bench/test-steps.json` for `cargo xtask bench`'s report.
fn record_steps(steps: &Steps, tally: &Tally) -> Result<()> {
    let date = output(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])).unwrap_or_default();
    let record = serde_json::json!({
        "date": date.trim(),
        "total_secs": steps.started.elapsed().as_secs_f64(),
        "passed": tally.passed,
        "failed": tally.failed,
        "steps": steps.times.iter().map(|(name, secs)| serde_json::json!({ "name": name, "secs": secs })).collect::<Vec<_>>(),
    });
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("test-steps.json"), serde_json::to_string_pretty(&record)?)?;
    Ok(())
}

/// `cargo xtask bench [--quick]`: the release server and load generator, the npm package and the web app, then the
/// browser half (store apply, size) and the server half (fan-out, latency, memory), each side by side with its
/// peers in the same run; the full run writes `docs/BENCHMARKS.md`, `--quick` writes `target/bench/quick/BENCHMARKS.md`.
fn bench(args: &[String]) -> Result<()> {
    let quick = match args {
        [] => false,
        [flag] if flag == "--quick" => true,
        other => bail!("unknown bench option(s) {other:?}; try `cargo xtask bench` or `cargo xtask bench --quick`"),
    };
    let profile = if quick { "debug" } else { "release" };
    let mut steps = Steps::new(3);
    steps.run("install tools", install_tools)?;
    steps.run(&format!("build the server and the load generator ({profile}), the npm package, the web app"), || {
        let mut build = cargo();
        build.args(["build", "-p", "subsignal-server", "-p", "subsignal-bench"]);
        if !quick {
            build.arg("--release");
        }
        run(&mut build)?;
        wasm::npm()?;
        build_web_app()
    })?;
    let dir = target_dir().join(profile);
    steps.run("measure, side by side", || bench_run(quick, &dir.join("subsignal"), &dir.join("subsignal-bench")))
}

/// Runs the browser half (store apply and size in Chromium) and then the server half, which writes the report.
fn bench_run(quick: bool, server: &Path, load_generator: &Path) -> Result<()> {
    // The full run's results stay in target/bench/ (`subsignal-bench report` can rewrite the report from them);
    // a quick run keeps its own in target/bench/quick/.
    let bench = target_dir().join("bench");
    let out = if quick { bench.join("quick") } else { bench.clone() };
    std::fs::create_dir_all(&out)?;
    let browser = out.join("browser.json");
    let leptos = wasm::bench_leptos(quick)?;
    let mut store = Command::new("node");
    store.arg(root().join("crates/bench/browser/run.mjs")).arg("--out").arg(&browser);
    if quick {
        store.arg("--quick");
    }
    run(store
        .env("SUBSIGNAL_NPM_PACKAGE", target_dir().join("npm/store"))
        .env("SUBSIGNAL_LEPTOS_PACKAGE", leptos)
        .env("CHROMIUM", "/usr/bin/chromium"))?;
    let report = if quick { out.join("BENCHMARKS.md") } else { root().join("docs/BENCHMARKS.md") };
    let mut servers = Command::new(load_generator);
    servers
        .arg("run")
        .arg("--subsignal")
        .arg(server)
        .arg("--schema")
        .arg(root().join("examples/notes/schema.graphql"))
        .arg("--node-peer")
        .arg(root().join("crates/bench/node-peer"))
        .arg("--browser")
        .arg(&browser)
        .arg("--test-steps")
        .arg(bench.join("test-steps.json"))
        .arg("--json")
        .arg(out.join("servers.json"))
        .arg("--out")
        .arg(&report);
    if quick {
        servers.arg("--quick");
    }
    run(&mut servers)?;
    println!("\n{}", std::fs::read_to_string(&report)?);
    Ok(())
}

/// `trunk build --release` of the web app into `dist/`, offline, with the installed wasm-bindgen and wasm-opt.
fn build_web_app() -> Result<()> {
    let mut trunk = Command::new("trunk");
    // Trunk reads NO_COLOR as its `--no-color` flag and refuses anything but true/false, while the convention
    // (no-color.org) is any non-empty value: NO_COLOR=1 would fail the build.
    if let Some(value) = std::env::var_os("NO_COLOR") {
        trunk.env("NO_COLOR", if value.is_empty() { "false" } else { "true" });
    }
    run(trunk.args(["build", "--release", "--offline"]).current_dir(root()))?;
    let wasm = std::fs::read_dir(root().join("dist"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "wasm"))
        .context("trunk produced no .wasm in dist/")?;
    println!("web app built: {} ({} KB)", wasm.display(), std::fs::metadata(&wasm)?.len() / 1024);
    inline_snippets(&root().join("dist"))?;
    precompress(&root().join("dist"))
}

/// Maps each of the built app's wasm-bindgen snippets (`snippets/**.js`, which the glue imports) to a `data:` module in
/// an import map at the top of `index.html`, so that the page asks for none of them. Their names are the crate's, not
/// their content's, so the server cannot let a browser cache them for good: every load would revalidate them, a
/// round trip after the glue's on a reload, whose glue and wasm come from the cache (measured on Slow 4G: first rows
/// 1.4 s instead of 0.7 s). A worker has no import map and fetches its snippets itself (the store's SharedWorker).
fn inline_snippets(dist: &Path) -> Result<()> {
    let snippets = dist.join("snippets");
    let mut found = if snippets.exists() { files_below(&snippets)? } else { Vec::new() };
    found.retain(|path| path.extension().is_some_and(|x| x == "js"));
    if found.is_empty() {
        return Ok(());
    }
    let mut imports = serde_json::Map::new();
    for path in &found {
        let relative = path.strip_prefix(dist)?.to_string_lossy().replace('\\', "/");
        // Percent-encoded as `encodeURIComponent` would: the module's text as it is, in a URL.
        let text: String = std::fs::read(path)?
            .iter()
            .map(|&b| match b {
                b'A'..=b'Z'
                | b'a'..=b'z'
                | b'0'..=b'9'
                | b'-'
                | b'_'
                | b'.'
                | b'!'
                | b'~'
                | b'*'
                | b'\''
                | b'('
                | b')' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        imports.insert(format!("/{relative}"), format!("data:text/javascript,{text}").into());
    }
    let map = serde_json::json!({ "imports": imports });
    let index = dist.join("index.html");
    let html = std::fs::read_to_string(&index)?;
    let head = html.find("<head>").context("index.html has no <head>")? + "<head>".len();
    let html = format!("{}\n    <script type=\"importmap\">{map}</script>{}", &html[..head], &html[head..]);
    std::fs::write(&index, html)?;
    println!("inlined {} wasm-bindgen snippet(s) into index.html's import map", found.len());
    Ok(())
}

/// Writes `name.br` (brotli, quality 11) and `name.gz` (gzip -9) beside each file of a built web app that Trunk named
/// after its content (the wasm, its glue, CSS), which the server sends as they are to a browser that accepts them (it
/// would otherwise gzip on the fly, at a lower level and with no brotli): the app's wasm is 20% smaller in brotli than
/// in gzip. Other files (`index.html`, `netsim.json`, which the demo rewrites) are gzipped on the fly, never stale. Node's zlib does the compressing; without Node the
/// app is still served, gzipped on the fly, and this says so.
fn precompress(dist: &Path) -> Result<()> {
    const SCRIPT: &str = r#"
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, gzipSync, constants } from "node:zlib";
const dir = process.argv[1];
for (const name of readdirSync(dir)) {
  // Only files named after their content: a copy of any other could go stale under it (the demo rewrites netsim.json).
  if (!/-[0-9a-f]{12,16}(_bg)?\.(wasm|js|css)$/.test(name)) continue;
  const bytes = readFileSync(join(dir, name));
  const br = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length } });
  writeFileSync(join(dir, `${name}.br`), br);
  writeFileSync(join(dir, `${name}.gz`), gzipSync(bytes, { level: 9 }));
  console.log(`  ${name}: ${bytes.length} bytes, brotli ${br.length}`);
}
"#;
    if output(Command::new("node").arg("--version")).is_none() {
        println!("warning: Node.js is missing, so the web app is not precompressed: the server gzips it on the fly");
        return Ok(());
    }
    println!("precompressing the web app (brotli 11, gzip -9):");
    run(Command::new("node").args(["--input-type=module", "-e", SCRIPT]).arg(dist))
}

/// `cargo xtask report`: drives orders through the web app in headless Chromium behind each network profile, in
/// both modes, and writes `docs/latency-report.md` and `.svg` (tests/js/report/report.mjs does the driving).
fn report(args: &[String]) -> Result<()> {
    let (mut orders, mut profiles) = ("5".to_owned(), None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--orders" => orders = it.next().context("--orders needs a number")?.clone(),
            "--profiles" => profiles = Some(it.next().context("--profiles needs a comma-separated list")?.clone()),
            other => bail!("unknown report option {other}; try --orders N or --profiles none,lte,slow-3g"),
        }
    }
    let mut steps = Steps::new(4);
    steps.run("install tools", install_tools)?;
    steps.run("build the web app (trunk build --release)", build_web_app)?;
    steps.run("build the server (release)", || run(cargo().args(["build", "--release", "-p", "subsignal-server"])))?;
    steps.run("drive orders through every profile (headless Chromium behind subsignal netsim)", || {
        let bin = target_dir().join("release/subsignal");
        run(&mut report_command(&bin, &root().join("docs"), &orders, profiles.as_deref()))
    })
}

/// `tests/js/report/report.mjs` with the server `bin` and the built app in `dist/`: `orders` per mode behind each of
/// `profiles` (all of them by default), the report written into `out`.
fn report_command(bin: &Path, out: &Path, orders: &str, profiles: Option<&str>) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg("report/report.mjs")
        .current_dir(root().join("tests/js"))
        .env("SUBSIGNAL_BIN", bin)
        .env("SUBSIGNAL_WEB_DIST", root().join("dist"))
        .env("CHROMIUM", "/usr/bin/chromium")
        .env("REPORT_OUT", out)
        .env("REPORT_ORDERS", orders);
    if let Some(profiles) = profiles {
        cmd.env("REPORT_PROFILES", profiles);
    }
    cmd
}

/// Replaces `to` with a copy of `from`, folders included (a built app has `snippets/`, which its SharedWorker fetches).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("cannot clear {}", to.display()))?;
    }
    std::fs::create_dir_all(to)?;
    for path in files_below(from)? {
        let copy = to.join(path.strip_prefix(from)?);
        std::fs::create_dir_all(copy.parent().expect("below `to`"))?;
        std::fs::copy(&path, &copy).with_context(|| format!("cannot copy {}", path.display()))?;
    }
    Ok(())
}

/// The files below `dir`, at any depth.
fn files_below(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).with_context(|| format!("cannot read {}", folder.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// Builds the debug server binary (`cargo build -p subsignal-server --bin subsignal`) and gives its path.
pub(crate) fn server_binary() -> Result<PathBuf> {
    run(cargo().args(["build", "-p", "subsignal-server", "--bin", "subsignal"]))?;
    Ok(target_dir().join("debug/subsignal"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

fn demo(args: &[String]) -> Result<()> {
    let mut port: u16 = 4000;
    let mut profile = "none".to_owned();
    let mut debug = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--port" => port = it.next().and_then(|p| p.parse().ok()).context("--port needs a number, e.g. 4000")?,
            "--profile" => profile = it.next().context("--profile needs a name; `subsignal netsim --help` lists them")?.clone(),
            "--debug" => debug = true,
            other => bail!("unknown demo option {other}; try --port N, --profile NAME (slow-3g, slow-4g, fast-4g, lte, 5g, flaky, none) or --debug"),
        }
    }
    let (app, server, control) =
        (format!("127.0.0.1:{port}"), format!("127.0.0.1:{}", port + 1), format!("127.0.0.1:{}", port + 2));
    let (build, build_args, bin) = if debug {
        ("debug", &["build", "-p", "subsignal-server"][..], target_dir().join("debug/subsignal"))
    } else {
        ("release", &["build", "--release", "-p", "subsignal-server"][..], target_dir().join("release/subsignal"))
    };
    // A server binary already built (the test run's, for the demo's own end-to-end test) may stand in for the build.
    let prebuilt = std::env::var_os("SUBSIGNAL_BIN").map(PathBuf::from).filter(|_| debug);
    let bin = prebuilt.clone().unwrap_or(bin);
    let mut steps = Steps::new(4);
    steps.run("install build tools (wasm32 target, wasm-bindgen-cli, Trunk, wasm-opt)", install_build_tools)?;
    steps.run("build the web app (trunk build --release)", build_web_app)?;
    steps.run(&format!("build the server ({build})"), || match &prebuilt {
        Some(path) => {
            println!("using the prebuilt server in SUBSIGNAL_BIN: {}", path.display());
            Ok(())
        }
        None => run(cargo().args(build_args)),
    })?;
    // The demo serves a copy of dist/ whose netsim.json names the simulator's control API (see web/src/netsim.rs);
    // dist/ itself keeps the build's "none".
    let web = target_dir().join("demo-web");
    copy_dir(&root().join("dist"), &web)?;
    std::fs::write(web.join("netsim.json"), format!("{{\"control\": \"http://{control}\"}}\n"))?;
    let data = target_dir().join("demo-data");
    steps.run(&format!("run the server on {server} behind the network simulator on {app} (profile {profile})"), || {
        let mut server_child = Command::new(&bin)
            .args(["serve", "--listen", &server, "--dev-tokens", "--seed-demo", "--data-dir"])
            .arg(&data)
            .arg("--web")
            .arg(&web)
            .current_dir(root())
            .spawn()
            .context("cannot start subsignal serve")?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(&server).is_err() {
            if std::time::Instant::now() > deadline || server_child.try_wait()?.is_some() {
                let _ = server_child.kill();
                bail!("the server did not start listening on {server}");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let netsim = Command::new(&bin)
            .args(["netsim", "--listen", &app, "--upstream", &server, "--control", &control, "--profile", &profile])
            .spawn()
            .context("cannot start subsignal netsim")?;
        std::thread::sleep(std::time::Duration::from_millis(500));
        println!(
            "\nsubsignal demo: open http://{app}/ and sign in as alice, bob or admin (who sees every order).\n\
             The app talks to the server only through the network simulator (profile {profile}); switch profiles in\n\
             the app's Network panel, or: curl -X PUT http://{control}/profile/slow-3g\n\
             GraphiQL is at http://{app}/graphql; a token for it: curl 'http://{app}/dev/token?user=alice'\n\
             and the header {{\"Authorization\": \"Bearer <token>\"}} in GraphiQL's Headers tab.\n\
             Data lives in {}. Stop with Ctrl-C.\n",
            data.display()
        );
        // Ctrl-C reaches both children (same process group); whichever ends first ends the demo.
        let mut children = [("subsignal serve", server_child), ("subsignal netsim", netsim)];
        loop {
            for i in 0..children.len() {
                let Some(status) = children[i].1.try_wait()? else { continue };
                for (_, other) in &mut children {
                    let _ = other.kill();
                    let _ = other.wait();
                }
                if !status.success() {
                    bail!("{} exited with {status}", children[i].0);
                }
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    })
}
