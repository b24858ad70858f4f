//! The `subsignal` command. Run with `cargo run -p subsignal-server -- serve --help` (the server),
//! `-- migrate --help` and `-- check-config --help` (for deploy pipelines) or `-- netsim --help` (the network
//! simulator and its profiles).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use subsignal_server::config::{LogFormat, Settings};

/// subsignal: GraphQL subscriptions as front-end state.
#[derive(Parser, Debug)]
#[command(name = "subsignal", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the GraphQL server (HTTP and WebSocket on one port), its stream workers and the TTL reaper.
    Serve(Sources),
    /// Apply the database migrations and exit (`serve` applies them too; this lets a deploy do it first, once).
    Migrate(Sources),
    /// Check every setting and the schema, print the effective settings (secrets hidden) and exit: 0 when the
    /// server would start with them, 1 with the reason when not. Does not connect to the database.
    CheckConfig(Sources),
    /// Run the network simulator: a TCP proxy in front of the server that adds latency, caps bandwidth, stalls and
    /// resets connections as a profile says, with an HTTP control API to switch profiles while connections are open.
    #[command(after_help = netsim_help())]
    Netsim {
        /// Address clients connect to (point the browser or client here instead of the server).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4100")]
        listen: SocketAddr,
        /// The server the proxy forwards to (`host:port`).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4000")]
        upstream: String,
        /// Address of the control API (`GET /profile`, `PUT /profile/{name}`, `POST /reset`…), or `off`.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4101", value_parser = parse_control)]
        control: Control,
        /// The profile to start with (see the list below).
        #[arg(long, value_name = "NAME", default_value = "none")]
        profile: String,
        /// A TOML file of more profiles, one `[profiles.NAME]` table each (fields as in `GET /profile`).
        #[arg(long, value_name = "FILE")]
        profiles_file: Option<PathBuf>,
        /// Seed of the jitter and fault schedules, to replay the same faults [default: from the clock].
        #[arg(long)]
        seed: Option<u64>,
    },
}

/// Where settings come from: flags, `SUBSIGNAL_*` variables, then the settings file.
#[derive(clap::Args, Debug)]
struct Sources {
    /// Settings file [default: ./subsignal.toml when it exists].
    #[arg(long, env = "SUBSIGNAL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Box<Settings>,
}

impl Sources {
    /// The settings, layered: flags and variables over the file.
    fn load(self) -> anyhow::Result<Settings> {
        let file = match self.config {
            Some(path) => Settings::from_file(&path)?,
            None if std::path::Path::new("subsignal.toml").is_file() => Settings::from_file("subsignal.toml".as_ref())?,
            None => Settings::default(),
        };
        Ok(self.settings.over(file))
    }
}

/// The control API's address, or none.
#[derive(Debug, Clone, Copy)]
struct Control(Option<SocketAddr>);

fn parse_control(value: &str) -> Result<Control, String> {
    if value == "off" {
        return Ok(Control(None));
    }
    value
        .parse()
        .map(|addr| Control(Some(addr)))
        .map_err(|e| format!("{e}: give an address like 127.0.0.1:4101, or off"))
}

/// The profile table under `subsignal netsim --help`, generated from the built-in profiles.
fn netsim_help() -> String {
    let mut text = subsignal_netsim::ProfileSet::builtin().help_text();
    text.push_str(
        "\nExample: subsignal serve & subsignal netsim --profile slow-4g, then open http://127.0.0.1:4100/ and \
         switch with: curl -X PUT http://127.0.0.1:4101/profile/flaky",
    );
    text
}

/// Writes log lines to standard output as `format` says, filtered by `RUST_LOG` [default: info, quieter sqlx].
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into());
    // Colours only on a terminal, and never with NO_COLOR set (no-color.org): a log file or journald gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout()) && std::env::var_os("NO_COLOR").is_none();
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi);
    match format {
        LogFormat::Text => logs.init(),
        // Each line one object: `timestamp`, `level`, `target`, the event's fields (`message`, `reference`…) at
        // the top, and the innermost span's fields (`request`: id, method, path, client; `websocket`: protocol,
        // client) under `span`.
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(sources) => serve(sources.load()?).await,
        Command::Migrate(sources) => {
            let config = sources.load()?.resolve()?;
            init_logs(config.log_format);
            let done = subsignal_server::migrate(&config).await.context("cannot migrate the database")?;
            tracing::info!("{done}");
            Ok(())
        }
        Command::CheckConfig(sources) => check_config(sources.load()?),
        Command::Netsim { listen, upstream, control, profile, profiles_file, seed } => {
            init_logs(LogFormat::Text);
            netsim(subsignal_netsim::NetsimConfig {
                listen,
                upstream,
                control: control.0,
                profile,
                profiles: match profiles_file {
                    Some(path) => subsignal_netsim::ProfileSet::with_file(&path)?,
                    None => subsignal_netsim::ProfileSet::builtin(),
                },
                seed,
            })
            .await
        }
    }
}

async fn netsim(config: subsignal_netsim::NetsimConfig) -> anyhow::Result<()> {
    let upstream = config.upstream.clone();
    let netsim = subsignal_netsim::start(config).await?;
    let profile = netsim.profile();
    tracing::info!("netsim is listening on {} and forwards to {upstream}", netsim.addr);
    tracing::info!("profile: {} ({})", profile.name, profile.figures());
    match netsim.control_addr {
        Some(addr) => tracing::info!(
            "control API: http://{addr}/profile (PUT /profile/NAME to switch, POST /reset to drop connections); \
             profiles: {}",
            netsim.profiles().names().join(", ")
        ),
        None => tracing::info!("control API: off"),
    }
    let signal = StopSignals::listen()?.next().await;
    tracing::info!("{signal}: shutting down");
    netsim.shutdown().await;
    Ok(())
}

/// Prints the effective settings, then whether they are usable (the exit status says it too).
fn check_config(settings: Settings) -> anyhow::Result<()> {
    println!("{}", settings.effective()?);
    let config = settings.resolve()?;
    println!("# OK: every setting is valid; database: {}", config.database.describe());
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    // Before anything starts: from here on a stop signal is a graceful shutdown, not the default kill.
    let mut signals = StopSignals::listen()?;
    let config = settings.resolve()?;
    init_logs(config.log_format);
    let data_dir = config.data_dir.clone();
    let database = config.database.describe();
    let web_dir = config.web_dir.clone();
    let dev = config.dev_tokens.then(|| config.demo_users.join(", "));
    let server = subsignal_server::start(config).await.context("cannot start the server")?;
    let url = format!("http://{}", server.addr);
    tracing::info!("subsignal is listening on {url}");
    tracing::info!("GraphiQL: {url}/graphql   WebSocket: ws://{}/graphql   SDL: {url}/schema.graphql", server.addr);
    tracing::info!("data dir: {}", data_dir.canonicalize().unwrap_or(data_dir).display());
    tracing::info!("database: {database}");
    if subsignal_server::web_app_built(&web_dir) {
        tracing::info!("web app: {url}/ (from {})", web_dir.display());
    } else {
        tracing::info!(
            "web app: not built ({} has no index.html); run `cargo xtask demo` to build it",
            web_dir.display()
        );
    }
    if let Some(addr) = server.metrics_addr {
        tracing::info!("metrics: http://{addr}/metrics");
    }
    if let Some(users) = dev {
        tracing::info!("dev tokens ON for demo users {users}: {url}/dev/token?user=NAME");
    }
    let signal = signals.next().await;
    tracing::info!("{signal}");
    tokio::select! {
        () = server.shutdown() => {}
        signal = signals.next() => anyhow::bail!("{signal} again: stopped at once, without waiting for the work under way"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM (what systemd, Docker and Kubernetes send) and SIGINT (Ctrl-C), listened for from now on.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> anyhow::Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        Ok(StopSignals { term, int })
    }

    /// Waits for the next one, and says which came.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
