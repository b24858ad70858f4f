//! Clippy inside the test builds, instead of beside them.
//!
//! `cargo clippy` is `cargo check` with `clippy-driver` as the compiler of the workspace's own crates
//! (`RUSTC_WORKSPACE_WRAPPER`, lint arguments in `CLIPPY_ARGS`). A check builds metadata only, which no later build
//! reuses: on a fresh machine the native and wasm32 clippy passes took 13.5 minutes (2026-11-30), nearly all of it
//! type-checking dependencies that the test builds then compiled again. So `cargo xtask test` sets the same two
//! variables on the test builds themselves: the workspace's crates are compiled by `clippy-driver` (which lints, then
//! compiles as rustc does), dependencies by plain rustc, once. The lints are those of
//! `cargo clippy --all-targets -- -D warnings`, on every target the tests build: native libraries, binaries, tests
//! and examples; on wasm32, the browser crates (the npm package's `js` feature included), the Leptos crate, the web
//! app and the bench's Leptos entry, with the store, protocol and orders crates they use.
//!
//! Only the test builds go through it: clippy-driver leaves MIR unoptimized, so the release builds (the npm package,
//! the web app, the benchmarked server) stay with rustc. `CLIPPY_ARGS` is how cargo-clippy talks to clippy-driver, not
//! a documented interface, so [`canary`] first proves that a lint breaks a build set up this way, and the run stops
//! if it does not.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{ensure, Context, Result};

use crate::{cargo, output, target_dir};

/// `-D warnings`, as cargo-clippy passes what follows its `--` to clippy-driver.
const CLIPPY_ARGS: &str = "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__";

fn driver() -> Result<PathBuf> {
    let sysroot = output(Command::new("rustc").args(["--print", "sysroot"])).context("cannot run rustc")?;
    let driver = PathBuf::from(sysroot.trim()).join("bin/clippy-driver");
    ensure!(driver.exists(), "{} is missing: `rustup component add clippy`", driver.display());
    Ok(driver)
}

/// Makes `cmd` (a cargo build or test) compile the workspace's crates with clippy's lints, warnings as errors.
pub(crate) fn linted(cmd: &mut Command) -> Result<&mut Command> {
    Ok(cmd.env("RUSTC_WORKSPACE_WRAPPER", driver()?).env("CLIPPY_ARGS", CLIPPY_ARGS))
}

/// Builds a one-function crate with a clippy warning (`len_zero`) set up as [`linted`] does, and fails unless the
/// build fails on that lint: the proof that the linted test builds really lint.
pub(crate) fn canary() -> Result<()> {
    let dir = target_dir().join("lint-canary");
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"lint-canary\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n",
    )?;
    std::fs::write(
        dir.join("src/lib.rs"),
        "//! A crate that clippy must refuse.\n\n/// Whether `v` is empty.\npub fn empty(v: &[u8]) -> bool {\n    v.len() == 0\n}\n",
    )?;
    let out = linted(cargo().args(["build", "--quiet", "--manifest-path"]).arg(dir.join("Cargo.toml")))?
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .context("cannot run cargo")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && stderr.contains("clippy::len_zero") && stderr.contains("-D warnings"),
        "a build with clippy-driver as the workspace compiler did not fail on a clippy warning, so the test builds \
         would not be linted (has cargo-clippy changed how it passes CLIPPY_ARGS?); cargo said:\n{stderr}"
    );
    println!("clippy lints the test builds (a build with a clippy warning failed on it, as it must)");
    Ok(())
}
