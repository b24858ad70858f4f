//! The `subsignal` command. Run with `cargo run -p subsignal-server -- serve --help`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use subsignal_server::config::Settings;

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
    Serve {
        /// Settings file [default: ./subsignal.toml when it exists].
        #[arg(long, env = "SUBSIGNAL_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        settings: Settings,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve { config, settings } => serve(config, settings).await,
    }
}

async fn serve(config_file: Option<PathBuf>, settings: Settings) -> anyhow::Result<()> {
    let file = match config_file {
        Some(path) => Settings::from_file(&path)?,
        None if std::path::Path::new("subsignal.toml").is_file() => Settings::from_file("subsignal.toml".as_ref())?,
        None => Settings::default(),
    };
    let config = settings.over(file).resolve()?;
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
    if let Some(users) = dev {
        tracing::info!("dev tokens ON for demo users {users}: {url}/dev/token?user=NAME");
    }
    tokio::signal::ctrl_c().await.context("cannot listen for Ctrl-C")?;
    tracing::info!("shutting down");
    server.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
