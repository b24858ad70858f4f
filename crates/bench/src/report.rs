//! `BENCHMARKS.md` and its SVG charts: a table per benchmark with subsignal, the peer, the ratio, and the floor or
//! target; the machine and the date; the browser half's store-apply and size figures when that JSON is given; the
//! last `cargo xtask test`'s step times when that JSON is given.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::{CrowdFigures, Results};

/// The browser half's results (`browser/run.mjs`).
#[derive(Debug, Deserialize)]
struct Browser {
    machine: String,
    store: Vec<StoreRow>,
    size: Vec<SizeRow>,
}

#[derive(Debug, Deserialize)]
struct StoreRow {
    #[serde(rename = "impl")]
    implementation: String,
    rows: u64,
    phase: String,
    events: u64,
    us_per_event: f64,
    #[serde(default)]
    sampled: bool,
}

#[derive(Debug, Deserialize)]
struct SizeRow {
    name: String,
    gzip_bytes: u64,
    raw_bytes: u64,
}

/// `cargo xtask test`'s record of its steps.
#[derive(Debug, Deserialize)]
struct TestSteps {
    date: String,
    total_secs: f64,
    passed: u64,
    failed: u64,
    steps: Vec<TestStep>,
}

#[derive(Debug, Deserialize)]
struct TestStep {
    name: String,
    secs: f64,
}

const SUBSIGNAL: &str = "subsignal";
const NODE: &str = "Node graphql-ws";
const ECHO: &str = "raw WebSocket echo";

/// Writes the report of `results` (with the browser half's results and the test run's steps, when given and
/// present) to `out`, and its charts beside it.
pub(crate) fn write(results: &Results, browser: Option<&Path>, test_steps: Option<&Path>, out: &Path) -> Result<()> {
    let dir = out.parent().context("the report path has no folder")?;
    std::fs::create_dir_all(dir)?;
    let chart = |name: &str, svg: String| -> Result<String> {
        let file = format!("benchmarks-{name}.svg");
        std::fs::write(dir.join(&file), svg)?;
        Ok(file)
    };
    let mut md = String::new();
    writeln!(md, "# Benchmarks\n")?;
    writeln!(
        md,
        "Measured by `cargo xtask bench{}` on {}, on {}. Every ratio compares figures measured in this same run on \
         this same machine; absolute numbers are context. One load generator (Rust, tokio-tungstenite) drives every \
         server the same way. Regenerate with `cargo xtask bench` (the full run takes a few minutes; `--quick` is the \
         smoke test CI runs, with small counts, and writes to `target/bench/quick/` instead).\n",
        if results.quick { " --quick" } else { "" },
        results.date,
        machine()
    )?;

    let ours = results.servers.iter().find(|m| m.server == SUBSIGNAL);

    // 1. Fan-out.
    writeln!(md, "## 1. Fan-out: events delivered per second\n")?;
    writeln!(
        md,
        "N WebSockets each subscribed to `onCreateNote`; one writer sends `createNote` mutations back to back over \
         its own socket; the clock stops when the last subscriber has the last event. Median of the bursts. \
         subsignal runs its release build on SQLite (every mutation is a committed write); the Node peer keeps notes \
         in memory. Target: ≥ 5× the Node peer.\n"
    )?;
    let bars = crowd_table(&mut md, results, ("subscribers", "raw echo (floor)"), |c| c.events_per_sec, per_sec)?;
    let file = chart("fanout", bar_chart("Events delivered per second (more is better)", "/s", &bars, false))?;
    writeln!(md, "\n![fan-out]({file})\n")?;
    for m in &results.servers {
        for problem in &m.problems {
            writeln!(md, "- {}: {problem}", m.server)?;
        }
    }
    if results.servers.iter().any(|m| !m.problems.is_empty()) {
        writeln!(md, "\nA burst listed above is left out of its median.\n")?;
    }

    // 2. Latency.
    writeln!(md, "## 2. Mutation → subscriber latency\n")?;
    if let Some(l) = ours.and_then(|m| m.latency.as_ref()) {
        writeln!(
            md,
            "{} subscribers; {} mutations paced at {}/s (below saturation); every subscriber's receipt of every \
             mutation is a sample (the send time travels in the note's title). Target: p99 ≤ 0.5× the Node peer and \
             ≤ 2× the raw echo.\n",
            l.subscribers, l.mutations, l.per_sec
        )?;
    }
    writeln!(md, "| server | samples | p50 | p99 | max | p99 ÷ subsignal's |")?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|")?;
    let our_p99 = ours.and_then(|m| m.latency.as_ref()).map(|l| l.p99_ms);
    let mut bars = Vec::new();
    for m in &results.servers {
        if let Some(l) = &m.latency {
            writeln!(
                md,
                "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {} |",
                m.server,
                l.samples,
                l.p50_ms,
                l.p99_ms,
                l.max_ms,
                ratio(Some(l.p99_ms), our_p99)
            )?;
            bars.push((m.server.clone(), vec![("p50", l.p50_ms), ("p99", l.p99_ms)]));
        }
    }
    let file = chart("latency", bar_chart("Mutation → subscriber latency (less is better)", " ms", &bars, false))?;
    writeln!(md, "\n![latency]({file})\n")?;

    // 3. Memory.
    writeln!(md, "## 3. Memory per idle subscribed connection\n")?;
    writeln!(
        md,
        "The server's resident set (`VmRSS`) before the crowd connects and after every socket has subscribed and \
         received one event, divided by the sockets. Target: ≤ ⅓ of the Node peer's.\n"
    )?;
    let kib = |v: f64| format!("{v:.1} KiB");
    let bars = crowd_table(&mut md, results, ("connections", "raw echo"), |c| Some(c.kib_per_connection), kib)?;
    let file = chart("memory", bar_chart("KiB per idle subscribed connection (less is better)", " KiB", &bars, false))?;
    writeln!(md, "\n![memory]({file})\n")?;

    // 4 and 5: the browser half.
    let browser = match browser.filter(|p| p.exists()) {
        Some(path) => Some(
            serde_json::from_str::<Browser>(&std::fs::read_to_string(path)?)
                .with_context(|| format!("{} is not the browser bench's JSON", path.display()))?,
        ),
        None => None,
    };
    match &browser {
        Some(b) => store_and_size(&mut md, b, &chart)?,
        None => writeln!(md, "## 4. Store apply, 5. Size\n\nNot measured in this run (no browser results given).\n")?,
    }

    // 6. The test command.
    writeln!(md, "## 6. `cargo xtask test`\n")?;
    match test_steps.filter(|p| p.exists()) {
        Some(path) => {
            let steps: TestSteps = serde_json::from_str(&std::fs::read_to_string(path)?)?;
            writeln!(
                md,
                "The last run on this machine ({}): {} passed, {} failed, {:.0} s ({:.1} min) in all. A fresh \
                 machine adds the tools' installation to step 1; CI's clean clone also builds everything from \
                 scratch. Target on a fresh machine: ≤ 35 min.\n",
                steps.date,
                steps.passed,
                steps.failed,
                steps.total_secs,
                steps.total_secs / 60.0
            )?;
            writeln!(md, "| step | seconds |\n|---|---:|")?;
            for step in &steps.steps {
                writeln!(md, "| {} | {:.0} |", step.name, step.secs)?;
            }
            writeln!(md)?;
        }
        None => writeln!(md, "No `cargo xtask test` has recorded its steps on this machine yet.\n")?,
    }
    std::fs::write(out, md)?;
    Ok(())
}

/// A chart's block: its label, and a bar per series.
type Group<'a> = (String, Vec<(&'a str, f64)>);

/// One row per crowd size: subsignal's `figure`, the Node peer's, their ratio, and the echo's; gives the chart's
/// groups. `columns` names the first and last columns.
fn crowd_table(
    md: &mut String,
    results: &Results,
    columns: (&str, &str),
    figure: impl Fn(&CrowdFigures) -> Option<f64>,
    show: impl Fn(f64) -> String,
) -> Result<Vec<Group<'static>>> {
    let at = |server: &str, n: usize| {
        let measured = results.servers.iter().find(|m| m.server == server)?;
        measured.crowds.iter().find(|c| c.subscribers == n).and_then(&figure)
    };
    writeln!(md, "| {} | subsignal | Node graphql-ws | subsignal ÷ Node | {} |", columns.0, columns.1)?;
    writeln!(md, "|---:|---:|---:|---:|---:|")?;
    let mut bars = Vec::new();
    let ours = results.servers.iter().find(|m| m.server == SUBSIGNAL);
    for crowd in ours.map(|m| m.crowds.as_slice()).unwrap_or_default() {
        let n = crowd.subscribers;
        let (mine, peer, floor) = (figure(crowd), at(NODE, n), at(ECHO, n));
        writeln!(
            md,
            "| {n} | {} | {} | **{}** | {} |",
            opt(mine, &show),
            opt(peer, &show),
            ratio(mine, peer),
            opt(floor, &show)
        )?;
        let group = [(SUBSIGNAL, mine), (NODE, peer), (ECHO, floor)];
        bars.push((format!("{n} {}", columns.0), group.into_iter().filter_map(|(s, v)| Some((s, v?))).collect()));
    }
    Ok(bars)
}

/// Sections 4 and 5, from the browser half's results.
fn store_and_size(md: &mut String, b: &Browser, chart: &dyn Fn(&str, String) -> Result<String>) -> Result<()> {
    writeln!(md, "## 4. Store apply: per-event cost in Chromium\n")?;
    writeln!(
        md,
        "One headless Chromium page ({}); every store is fed the same subscription events, inserts then updates, \
         into N rows. subsignal goes through its npm package's public API (events arrive as graphql-transport-ws \
         messages on a WebSocket), and through Leptos (`subsignal-leptos`'s per-row signals, one effect per row \
         subscribed, updates counted once every effect has run), and through a live view of the npm package (the same \
         where + orderBy + limit as TanStack DB's live query, with a subscriber: its cost should not grow with N); the \
         ratio column compares the npm package; Apollo through `InMemoryCache` with a watched list query; TanStack DB through a \
         synced collection, plain and with a live query (where + orderBy + limit). Each figure is the median of up to \
         five runs, each on a new store, as many as fit in the time budget (a run of 1000 events lasts a few \
         milliseconds, and one garbage collection would move it by half). A row marked *sampled* hit the time \
         budget: its cost is over the events it applied. Target: ≤ 10 µs per event at every size.\n",
        b.machine
    )?;
    let mut impls: Vec<&str> = Vec::new();
    for row in &b.store {
        if !impls.contains(&row.implementation.as_str()) {
            impls.push(&row.implementation);
        }
    }
    write!(md, "| rows | phase |")?;
    for i in &impls {
        write!(md, " {i} |")?;
    }
    writeln!(md, " best peer ÷ subsignal |")?;
    writeln!(md, "|---:|---|{}---:|", "---:|".repeat(impls.len()))?;
    let mut keys: Vec<(u64, &str)> = Vec::new();
    for row in &b.store {
        if !keys.contains(&(row.rows, row.phase.as_str())) {
            keys.push((row.rows, &row.phase));
        }
    }
    let mut bars = Vec::new();
    for (rows, phase) in keys {
        write!(md, "| {rows} | {phase} |")?;
        let cell = |i: &str| b.store.iter().find(|r| r.rows == rows && r.phase == phase && r.implementation == i);
        let mut group = Vec::new();
        for i in &impls {
            match cell(i) {
                Some(r) => {
                    let note = if r.sampled { format!(" (sampled, {} events)", r.events) } else { String::new() };
                    write!(md, " {:.1} µs{note} |", r.us_per_event)?;
                    group.push((*i, r.us_per_event));
                }
                None => write!(md, " — |")?,
            }
        }
        let ours =
            b.store.iter().find(|r| r.rows == rows && r.phase == phase && r.implementation.starts_with("subsignal"));
        let best_peer = b
            .store
            .iter()
            .filter(|r| r.rows == rows && r.phase == phase && !r.implementation.starts_with("subsignal"))
            .map(|r| r.us_per_event)
            .min_by(f64::total_cmp);
        writeln!(md, " **{}** |", ratio(best_peer, ours.map(|r| r.us_per_event)))?;
        bars.push((format!("{rows} rows, {phase}"), group));
    }
    let file = chart("store", bar_chart("µs per event (less is better; log scale)", " µs", &bars, true))?;
    writeln!(md, "\n![store apply]({file})\n")?;

    writeln!(md, "## 5. Size\n")?;
    writeln!(
        md,
        "gzip -9 of what a browser downloads. The peers are bundled by esbuild (minified, production). Targets: npm \
         store package ≤ 60 KB; the web app's first load ≤ 150 KB.\n"
    )?;
    writeln!(md, "| what | gzip | raw |\n|---|---:|---:|")?;
    let mut bars = Vec::new();
    for s in &b.size {
        writeln!(
            md,
            "| {} | {:.1} KB | {:.1} KB |",
            s.name,
            s.gzip_bytes as f64 / 1000.0,
            s.raw_bytes as f64 / 1000.0
        )?;
        bars.push((s.name.clone(), vec![("gzip", s.gzip_bytes as f64 / 1000.0)]));
    }
    let file = chart("size", bar_chart("gzip KB (less is better)", " KB", &bars, false))?;
    writeln!(md, "\n![size]({file})\n")?;
    Ok(())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split(':').nth(1)))
        .unwrap_or("unknown CPU")
        .trim()
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{model}, {cores} cores, {mem_gib:.0} GiB")
}

fn opt(value: Option<f64>, show: impl Fn(f64) -> String) -> String {
    value.map_or_else(|| "—".to_owned(), show)
}

/// `a ÷ b`, as `1.23×`.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "—".to_owned(),
    }
}

fn per_sec(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}k /s", v / 1000.0)
    } else {
        format!("{v:.0} /s")
    }
}

/// A horizontal bar chart: one block per group, one bar per series in it.
fn bar_chart(title: &str, unit: &str, groups: &[Group<'_>], log: bool) -> String {
    const COLORS: [&str; 5] = ["#2563eb", "#f97316", "#6b7280", "#16a34a", "#a855f7"];
    let (label_w, bar_w, row_h, top) = (260.0, 420.0, 18.0, 36.0);
    let rows: usize = groups.iter().map(|(_, bars)| bars.len() + 1).sum();
    let height = top + rows as f64 * row_h + 10.0;
    let max = groups.iter().flat_map(|(_, b)| b.iter().map(|(_, v)| *v)).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    let scale = |v: f64| {
        if log {
            let (lo, hi) = (0.1f64.ln(), (max * 1.2).ln());
            ((v.max(0.1).ln() - lo) / (hi - lo)).clamp(0.0, 1.0) * bar_w
        } else {
            v / max * bar_w
        }
    };
    let mut series: Vec<&str> = Vec::new();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" font-family=\"sans-serif\" \
         font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"8\" y=\"20\" \
         font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        escape(title),
        w = label_w + bar_w + 120.0
    );
    let mut y = top;
    for (group, bars) in groups {
        svg += &format!("<text x=\"8\" y=\"{:.0}\" font-weight=\"bold\">{}</text>\n", y + 12.0, escape(group));
        y += row_h;
        for (name, value) in bars {
            if !series.contains(name) {
                series.push(name);
            }
            let color = COLORS[series.iter().position(|s| s == name).unwrap_or(0) % COLORS.len()];
            svg += &format!(
                "<text x=\"20\" y=\"{:.0}\">{}</text><rect x=\"{label_w}\" y=\"{:.0}\" width=\"{:.1}\" height=\"{:.0}\" \
                 fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.0}\">{}{}</text>\n",
                y + 12.0,
                escape(name),
                y + 2.0,
                scale(*value).max(1.0),
                row_h - 4.0,
                label_w + scale(*value).max(1.0) + 4.0,
                y + 12.0,
                if *value >= 100.0 { format!("{value:.0}") } else { format!("{value:.1}") },
                escape(unit)
            );
            y += row_h;
        }
    }
    svg + "</svg>\n"
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
