//! The servers under test, each a child process on a free loopback port: subsignal's release binary on SQLite
//! with the notes schema, the Node graphql-ws peer, and the raw echo (this binary's `echo` command).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::load::Target;

/// One running server.
pub(crate) struct Server {
    child: Child,
    pub(crate) target: Target,
    _data: Option<tempfile::TempDir>,
}

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Subsignal,
    Node,
    Echo,
}

impl Kind {
    /// `subsignal`, `node` or `echo`.
    pub(crate) fn from_name(name: &str) -> Result<Kind> {
        match name {
            "subsignal" => Ok(Kind::Subsignal),
            "node" => Ok(Kind::Node),
            "echo" => Ok(Kind::Echo),
            other => bail!("unknown server {other}: choose from subsignal, node, echo"),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Subsignal => "subsignal",
            Kind::Node => "Node graphql-ws",
            Kind::Echo => "raw WebSocket echo",
        }
    }
}

/// Paths the servers are started from.
#[derive(Debug, Clone)]
pub(crate) struct Programs {
    pub(crate) subsignal: std::path::PathBuf,
    pub(crate) schema: std::path::PathBuf,
    pub(crate) node_peer: std::path::PathBuf,
}

impl Server {
    /// Starts `kind` and waits until it listens.
    pub(crate) async fn start(kind: Kind, programs: &Programs) -> Result<Server> {
        let (mut command, data) = match kind {
            Kind::Subsignal => {
                let data = tempfile::tempdir()?;
                let mut command = Command::new(&programs.subsignal);
                command
                    .args(["serve", "--listen", "127.0.0.1:0", "--dev-tokens", "--step-delay-ms", "0"])
                    .arg("--data-dir")
                    .arg(data.path())
                    .arg("--web")
                    .arg(data.path().join("no-web"))
                    .arg("--schema")
                    .arg(&programs.schema)
                    // One load generator opens every socket from one address, faster than a person would.
                    .args(["--max-connections-per-addr", "1000000", "--max-messages-per-sec", "1000000"])
                    .env("RUST_LOG", "info")
                    .env("NO_COLOR", "1");
                (command, Some(data))
            }
            Kind::Node => {
                let script = programs.node_peer.join("server.mjs");
                if !programs.node_peer.join("node_modules").exists() {
                    bail!("{} has no node_modules: run `npm ci` there", programs.node_peer.display());
                }
                let mut command = Command::new("node");
                command.arg(script).arg("0");
                (command, None)
            }
            Kind::Echo => {
                let mut command = Command::new(std::env::current_exe()?);
                command.args(["echo", "--listen", "127.0.0.1:0"]);
                (command, None)
            }
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", kind.name()))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.trim_start_matches("http://").trim_start_matches("ws://");
                    return Ok(addr.split('/').next().unwrap_or_default().trim().to_owned());
                }
            }
            bail!("{} exited before listening", kind.name())
        })
        .await
        .with_context(|| format!("{} did not listen within 30 s", kind.name()))??;
        // Keep reading what it prints, so a full pipe never stalls it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let init = match kind {
            Kind::Subsignal => {
                let token: serde_json::Value = reqwest::get(format!("http://{addr}/dev/token?user=alice"))
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                json!({ "Authorization": token["token"] })
            }
            _ => json!({}),
        };
        let target = Target { url: format!("ws://{addr}/graphql"), init };
        Ok(Server { child, target, _data: data })
    }

    /// The server process's resident memory, in KiB.
    pub(crate) fn rss_kib(&self) -> Result<u64> {
        let pid = self.child.id().context("the server has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc/PID/status")
    }
}

/// Whether `path` exists, with a message naming what to run when it does not.
pub(crate) fn require(path: &Path, how: &str) -> Result<()> {
    if !path.exists() {
        bail!("{} is missing: {how}", path.display());
    }
    Ok(())
}
