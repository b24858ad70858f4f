//! `subsignal-bench`: the server half of `cargo xtask bench`. One load generator ([`load`]) drives three servers
//! the same way — subsignal (release, SQLite, the notes schema), a Node graphql-ws + graphql-js peer with an
//! in-memory pub/sub (`node-peer/`), and a raw tokio-tungstenite broadcast ([`echo`], the physical floor) — and
//! measures fan-out (events delivered per second), mutation → subscriber latency and resident memory per idle
//! subscribed connection. [`report`] then writes `BENCHMARKS.md` with those tables, the browser half's
//! (`browser/`: store apply and size, run by xtask) and the last `cargo xtask test`'s step times.
//!
//! Nothing here asserts a figure: benchmarks print and record; tests assert behaviour.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

mod echo;
mod load;
mod report;
mod servers;

use load::{percentile, Crowd};
use servers::{Kind, Programs, Server};

#[derive(Parser)]
#[command(about = "subsignal's server benchmarks, side by side with a Node graphql-ws peer and a raw echo")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server benchmarks and write the report.
    Run {
        /// A smoke run: a few hundred sockets, a few mutations (what CI runs; prints, asserts nothing).
        #[arg(long)]
        quick: bool,
        /// The `subsignal` binary to measure.
        #[arg(long)]
        subsignal: PathBuf,
        /// The SDL schema subsignal serves (notes).
        #[arg(long)]
        schema: PathBuf,
        /// The Node peer's folder (with its node_modules installed).
        #[arg(long)]
        node_peer: PathBuf,
        /// The browser half's results (JSON), to include when present.
        #[arg(long)]
        browser: Option<PathBuf>,
        /// The last `cargo xtask test`'s step times (JSON), to include when present.
        #[arg(long)]
        test_steps: Option<PathBuf>,
        /// Where the server results go (JSON).
        #[arg(long)]
        json: PathBuf,
        /// Where the report goes (Markdown; the charts are written beside it).
        #[arg(long)]
        out: PathBuf,
        /// Only these servers (for working on one; the report then lacks the others' columns).
        #[arg(long, value_delimiter = ',', default_value = "subsignal,node,echo")]
        servers: Vec<String>,
    },
    /// Rewrite the report from a run's saved server results, with the browser results and test step times given
    /// now (say, after a `cargo xtask test` recorded its steps).
    Report {
        /// The server results a `run` saved (JSON).
        #[arg(long)]
        json: PathBuf,
        #[arg(long)]
        browser: Option<PathBuf>,
        #[arg(long)]
        test_steps: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// The raw WebSocket broadcast server (the latency floor).
    Echo {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
}

/// How big a run is.
struct Plan {
    /// Subscriber counts, each measured on a fresh server: memory, then bursts.
    crowds: Vec<usize>,
    /// Mutations per burst at each crowd size.
    burst: fn(usize) -> u64,
    /// Bursts per crowd; the median counts.
    repeats: usize,
    /// The crowd size the latency run uses, its mutations and their rate.
    latency: (usize, u64, f64),
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan { crowds: vec![200], burst: |_| 10, repeats: 1, latency: (200, 20, 20.0) }
        } else {
            Plan {
                crowds: vec![1000, 10_000],
                burst: |n| if n >= 10_000 { 20 } else { 100 },
                repeats: 5,
                latency: (1000, 60, 5.0),
            }
        }
    }
}

/// A run's server figures, as saved beside the report.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Results {
    /// When the run measured (RFC 3339).
    date: String,
    quick: bool,
    servers: Vec<Measured>,
}

/// One server's figures.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Measured {
    server: String,
    /// Per crowd size: events delivered per second (median of the bursts), and RSS per idle subscribed connection.
    crowds: Vec<CrowdFigures>,
    latency: Option<Latency>,
    /// What went wrong without stopping the run (a burst whose events did not all arrive, say).
    problems: Vec<String>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct CrowdFigures {
    subscribers: usize,
    /// The median of the bursts that completed.
    events_per_sec: Option<f64>,
    bursts: Vec<f64>,
    rss_before_kib: u64,
    rss_after_kib: u64,
    kib_per_connection: f64,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Latency {
    subscribers: usize,
    mutations: u64,
    per_sec: f64,
    samples: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Echo { listen } => echo::serve(&listen).await,
        Cmd::Report { json, browser, test_steps, out } => {
            let text = std::fs::read_to_string(&json).with_context(|| format!("cannot read {}", json.display()))?;
            let results: Results = serde_json::from_str(&text)
                .with_context(|| format!("{} is not the server results of `subsignal-bench run`", json.display()))?;
            report::write(&results, browser.as_deref(), test_steps.as_deref(), &out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Cmd::Run { quick, subsignal, schema, node_peer, browser, test_steps, json, out, servers } => {
            servers::require(&subsignal, "build it with `cargo build --release -p subsignal-server`")?;
            servers::require(&schema, "the notes schema ships in examples/notes/")?;
            let programs = Programs { subsignal, schema, node_peer };
            let plan = Plan::new(quick);
            let date = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?;
            let mut results = Results { date, quick, servers: Vec::new() };
            for kind in servers.iter().map(|name| Kind::from_name(name)).collect::<Result<Vec<_>>>()? {
                println!("==> {}", kind.name());
                let measured = measure(kind, &programs, &plan).await;
                results.servers.push(measured.with_context(|| format!("measuring {}", kind.name()))?);
            }
            if let Some(dir) = json.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&json, serde_json::to_string_pretty(&results)?)?;
            report::write(&results, browser.as_deref(), test_steps.as_deref(), &out)?;
            println!("wrote {} and {}", json.display(), out.display());
            Ok(())
        }
    }
}

/// Every figure of one server, each crowd on a fresh process.
async fn measure(kind: Kind, programs: &Programs, plan: &Plan) -> Result<Measured> {
    let mut measured =
        Measured { server: kind.name().to_owned(), crowds: Vec::new(), latency: None, problems: Vec::new() };
    for &size in &plan.crowds {
        let server = Server::start(kind, programs).await?;
        let rss_before_kib = server.rss_kib()?;
        let mut crowd = Crowd::gather(&server.target, size).await?;
        // Let allocations of the connecting burst settle before reading the idle footprint.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_after_kib = server.rss_kib()?;
        let kib_per_connection = (rss_after_kib.saturating_sub(rss_before_kib)) as f64 / size as f64;
        println!("  {size} subscribers: RSS {rss_before_kib} → {rss_after_kib} KiB, {kib_per_connection:.1} KiB each");
        let mut bursts = Vec::new();
        let mutations = (plan.burst)(size);
        for _ in 0..plan.repeats {
            match crowd.burst(mutations).await {
                Ok(rate) => {
                    println!("  {size} subscribers, {mutations} mutations back to back: {rate:.0} events/s");
                    bursts.push(rate);
                }
                Err(e) => {
                    let problem = format!("{size} subscribers, a burst of {mutations} mutations: {e:#}");
                    println!("  {problem}");
                    measured.problems.push(problem);
                }
            }
        }
        let mut sorted = bursts.clone();
        sorted.sort_by(f64::total_cmp);
        measured.crowds.push(CrowdFigures {
            subscribers: size,
            events_per_sec: sorted.get(sorted.len() / 2).copied(),
            bursts,
            rss_before_kib,
            rss_after_kib,
            kib_per_connection,
        });
        let (latency_size, mutations, per_sec) = plan.latency;
        if size == latency_size && measured.problems.is_empty() {
            let samples = crowd.paced(mutations, per_sec).await?;
            let ms = |us: u32| us as f64 / 1000.0;
            let latency = Latency {
                subscribers: size,
                mutations,
                per_sec,
                samples: samples.len(),
                p50_ms: ms(percentile(&samples, 50.0)),
                p99_ms: ms(percentile(&samples, 99.0)),
                max_ms: ms(*samples.last().unwrap_or(&0)),
            };
            println!(
                "  latency, {size} subscribers, {mutations} mutations at {per_sec}/s: p50 {:.1} ms, p99 {:.1} ms",
                latency.p50_ms, latency.p99_ms
            );
            measured.latency = Some(latency);
        }
        drop(crowd);
        drop(server);
    }
    Ok(measured)
}
