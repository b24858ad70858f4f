//! A private PostgreSQL for the tests: Debian's `postgresql` package (installed when missing), a cluster of our own
//! in a temporary folder, listening only on 127.0.0.1 at a free port, with one fresh database per run.
//!
//! Idempotent: a second run reuses the package and the cluster (starting it if it is stopped) and recreates the
//! database. Root cannot run PostgreSQL, so as root the cluster belongs to the `postgres` OS user the package
//! creates; anyone else runs it as themselves.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{output, run};

/// The database the tests get; each test then works in a schema of its own inside it.
const DATABASE: &str = "subsignal_test";

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|u| u.trim() == "0")
}

/// The newest installed server's bin folder (`/usr/lib/postgresql/<major>/bin`).
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let major = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// The Debian packages the test cluster needs.
pub(crate) const PACKAGES: &[&str] = &["postgresql"];

fn install_package() -> Result<()> {
    crate::apt_install(PACKAGES)
}

/// A command run as the cluster's owner: `postgres` when we are root, else ourselves.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Where the cluster lives: one per checkout, in the temporary folder (a path the `postgres` user can reach).
fn cluster_dir() -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    crate::root().hash(&mut hasher);
    std::env::temp_dir().join(format!("subsignal-test-postgres-{:016x}", hasher.finish()))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The port of a running cluster, from its `postmaster.pid` (fourth line).
fn running_port(bin: &Path, data: &Path) -> Option<u16> {
    let status = as_owner(&bin.join("pg_ctl")).arg("status").arg("-D").arg(data).output().ok()?;
    if !status.status.success() {
        return None;
    }
    std::fs::read_to_string(data.join("postmaster.pid")).ok()?.lines().nth(3)?.trim().parse().ok()
}

/// Makes sure the test cluster runs and holds a fresh, empty test database; returns its URL.
pub(crate) fn ensure_postgres() -> Result<String> {
    let bin = match bin_dir() {
        Some(bin) => bin,
        None => {
            install_package()?;
            bin_dir().context("the postgresql package installed no /usr/lib/postgresql/<major>/bin/initdb")?
        }
    };
    let dir = cluster_dir();
    let data = dir.join("data");
    if !data.join("PG_VERSION").is_file() {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)?;
        if is_root() {
            run(Command::new("chown").args(["postgres:postgres"]).arg(&dir))?;
        }
        println!("creating a PostgreSQL test cluster in {}", data.display());
        run(as_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
            .stdout(std::process::Stdio::null()))?;
    }
    let port = match running_port(&bin, &data) {
        Some(port) => {
            println!("PostgreSQL test cluster already running on 127.0.0.1:{port}");
            port
        }
        None => {
            let port = free_port()?;
            // Loopback only; the socket file in our own folder. The tests need no crash safety from this cluster.
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={} -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
                dir.display()
            );
            run(as_owner(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("server.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"])
                .stdout(std::process::Stdio::null()))
            .with_context(|| format!("PostgreSQL did not start; see {}", dir.join("server.log").display()))?;
            println!("PostgreSQL test cluster started on 127.0.0.1:{port}");
            port
        }
    };
    let psql = |sql: &str| {
        let mut cmd = Command::new(bin.join("psql"));
        cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-d", "postgres", "-q"]).args([
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ]);
        cmd
    };
    run(&mut psql(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")))?;
    run(&mut psql(&format!("CREATE DATABASE {DATABASE}")))?;
    Ok(format!("postgres://postgres@127.0.0.1:{port}/{DATABASE}"))
}

/// Stops the test cluster if it runs (its files stay, so the next run starts quickly).
pub(crate) fn stop_postgres() -> Result<()> {
    let Some(bin) = bin_dir() else { return Ok(()) };
    let data = cluster_dir().join("data");
    if running_port(&bin, &data).is_none() {
        return Ok(());
    }
    let status = as_owner(&bin.join("pg_ctl"))
        .arg("-D")
        .arg(&data)
        .args(["-m", "fast", "-w", "stop"])
        .stdout(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        bail!("pg_ctl stop failed for {}", data.display());
    }
    Ok(())
}
