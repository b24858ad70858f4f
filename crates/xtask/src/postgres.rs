//! A private PostgreSQL for the tests: Debian's `postgresql` package (installed when missing), clusters of our own in
//! a temporary folder, listening only on 127.0.0.1 at a free port, each with one fresh database per run. Two
//! clusters: the one every PostgreSQL test shares, and one that the PostgreSQL-restart test stops and starts.
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

/// A test cluster: `shared` by every PostgreSQL test, or `restartable`, which one test stops and starts (so that
/// it never pulls the database from under the others). Each is one per checkout, in the temporary folder (a path
/// the `postgres` user can reach).
#[derive(Debug, Clone, Copy)]
enum Cluster {
    Shared,
    Restartable,
}

impl Cluster {
    const ALL: [Cluster; 2] = [Cluster::Shared, Cluster::Restartable];

    fn dir(self) -> PathBuf {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        crate::root().hash(&mut hasher);
        let kind = match self {
            Cluster::Shared => "",
            Cluster::Restartable => "-restartable",
        };
        std::env::temp_dir().join(format!("subsignal-test-postgres{kind}-{:016x}", hasher.finish()))
    }

    fn data(self) -> PathBuf {
        self.dir().join("data")
    }

    /// `pg_ctl` for this cluster, as its owner, without the mode: `start` needs nothing more, since the cluster's
    /// settings (its port among them) are in its own configuration.
    fn pg_ctl(self, bin: &Path) -> Command {
        let mut pg_ctl = as_owner(&bin.join("pg_ctl"));
        pg_ctl.arg("-D").arg(self.data()).arg("-l").arg(self.dir().join("server.log")).args(["-w", "-t", "60"]);
        pg_ctl
    }
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

/// The file of settings each start writes and `postgresql.conf` includes.
const SETTINGS_FILE: &str = "subsignal-test.conf";

/// Makes sure `cluster` runs and holds a fresh, empty test database; returns its URL.
fn ensure_cluster(bin: &Path, cluster: Cluster) -> Result<String> {
    let (dir, data) = (cluster.dir(), cluster.data());
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
    let port = match running_port(bin, &data) {
        Some(port) => {
            println!("PostgreSQL test cluster already running on 127.0.0.1:{port}");
            port
        }
        None => {
            let port = free_port()?;
            // Loopback only; the socket file in our own folder. No fsync: the tests never crash the machine. The
            // restartable cluster is stopped "immediately" (as in a crash) under load, so a commit it acknowledged must
            // be in its WAL by then: it keeps synchronous_commit on, as production must.
            let synchronous_commit = match cluster {
                Cluster::Shared => "off",
                Cluster::Restartable => "on",
            };
            let settings = format!(
                "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nfsync = off\n\
                 synchronous_commit = {synchronous_commit}\nfull_page_writes = off\nmax_connections = 300\n",
                dir.display()
            );
            write_as_owner(&data.join(SETTINGS_FILE), &settings)?;
            let conf = data.join("postgresql.conf");
            let text = std::fs::read_to_string(&conf).with_context(|| format!("cannot read {}", conf.display()))?;
            let include = format!("include_if_exists = '{SETTINGS_FILE}'\n");
            if !text.contains(&include) {
                write_as_owner(&conf, &format!("{text}\n{include}"))?;
            }
            run(cluster.pg_ctl(bin).arg("start").stdout(std::process::Stdio::null()))
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

/// Writes a file of the cluster's, owned by the cluster's owner.
fn write_as_owner(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    if is_root() {
        run(Command::new("chown").args(["postgres:postgres"]).arg(path))?;
    }
    Ok(())
}

/// Makes sure both test clusters run, each with a fresh, empty test database; returns the environment the tests
/// read them from: `SUBSIGNAL_TEST_POSTGRES_URL` (the shared cluster's database) and
/// `SUBSIGNAL_TEST_POSTGRES_RESTARTABLE` (JSON: the restartable cluster's database and its `pg_ctl` command).
pub(crate) fn ensure_postgres() -> Result<Vec<(&'static str, String)>> {
    let bin = match bin_dir() {
        Some(bin) => bin,
        None => {
            install_package()?;
            bin_dir().context("the postgresql package installed no /usr/lib/postgresql/<major>/bin/initdb")?
        }
    };
    let shared = ensure_cluster(&bin, Cluster::Shared)?;
    let restartable = ensure_cluster(&bin, Cluster::Restartable)?;
    let pg_ctl = Cluster::Restartable.pg_ctl(&bin);
    let argv: Vec<String> = std::iter::once(pg_ctl.get_program())
        .chain(pg_ctl.get_args())
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let restartable = serde_json::json!({"url": restartable, "pg_ctl": argv}).to_string();
    Ok(vec![("SUBSIGNAL_TEST_POSTGRES_URL", shared), ("SUBSIGNAL_TEST_POSTGRES_RESTARTABLE", restartable)])
}

/// Stops the test clusters that run (their files stay, so the next run starts quickly).
pub(crate) fn stop_postgres() -> Result<()> {
    let Some(bin) = bin_dir() else { return Ok(()) };
    for cluster in Cluster::ALL {
        if running_port(&bin, &cluster.data()).is_none() {
            continue;
        }
        let status = cluster.pg_ctl(&bin).args(["-m", "fast", "stop"]).stdout(std::process::Stdio::null()).status()?;
        if !status.success() {
            bail!("pg_ctl stop failed for {}", cluster.data().display());
        }
    }
    Ok(())
}
