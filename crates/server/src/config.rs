//! Settings: command-line flags, `SUBSIGNAL_*` environment variables and `subsignal.toml`, in that order of
//! precedence, over built-in defaults. A bad setting is refused at start with a message naming it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::storage::Database;

/// Every setting, each optional so that the sources can be layered. The same names serve as flags
/// (`--step-delay-ms`), environment variables (`SUBSIGNAL_STEP_DELAY_MS`) and TOML keys (`step-delay-ms`).
#[derive(clap::Args, Serialize, Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Address to listen on [default: 127.0.0.1:4000].
    #[arg(long, env = "SUBSIGNAL_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Folder for the database and the generated JWT secret [default: ./data].
    #[arg(long, env = "SUBSIGNAL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://user:password@host:port/db) to run on instead of SQLite; several instances may
    /// share one database [default: SQLite in the data dir].
    #[arg(long, env = "SUBSIGNAL_DATABASE", value_name = "URL", hide_env_values = true)]
    pub database: Option<String>,
    /// Delay before each step of the order-processing worker, in ms [default: 1500].
    #[arg(long, env = "SUBSIGNAL_STEP_DELAY_MS", value_name = "MS")]
    pub step_delay_ms: Option<u64>,
    /// Orders the worker handles at once (Lambda's parallelization factor) [default: 4].
    #[arg(long, env = "SUBSIGNAL_WORKER_PARALLELISM", value_name = "N")]
    pub worker_parallelism: Option<usize>,
    /// Change records per worker batch [default: 100].
    #[arg(long, env = "SUBSIGNAL_WORKER_BATCH_SIZE", value_name = "N")]
    pub worker_batch_size: Option<u32>,
    /// Attempts per record before it is dead-lettered [default: 5].
    #[arg(long, env = "SUBSIGNAL_WORKER_MAX_ATTEMPTS", value_name = "N")]
    pub worker_max_attempts: Option<u32>,
    /// First retry delay of a failed record, in ms; doubles per attempt [default: 200].
    #[arg(long, env = "SUBSIGNAL_WORKER_BACKOFF_MS", value_name = "MS")]
    pub worker_backoff_ms: Option<u64>,
    /// How long a worker's lease lasts unrenewed, in ms: how soon another instance takes over the work of a dead
    /// one [default: 10000].
    #[arg(long, env = "SUBSIGNAL_WORKER_LEASE_MS", value_name = "MS")]
    pub worker_lease_ms: Option<u64>,
    /// How long the change log keeps records, in seconds [default: 86400].
    #[arg(long, env = "SUBSIGNAL_RETENTION_SECS", value_name = "SECS")]
    pub retention_secs: Option<u64>,
    /// How often expired orders are reaped, in ms [default: 1000].
    #[arg(long, env = "SUBSIGNAL_REAP_INTERVAL_MS", value_name = "MS")]
    pub reap_interval_ms: Option<u64>,
    /// How long a subscription may lag behind changes it cannot see before it gets a watermark, in ms
    /// [default: 1000].
    #[arg(long, env = "SUBSIGNAL_WATERMARK_INTERVAL_MS", value_name = "MS")]
    pub watermark_interval_ms: Option<u64>,
    /// HS256 secret for user JWTs, at least 16 bytes [default: generated once and kept in the data dir].
    #[arg(long, env = "SUBSIGNAL_JWT_SECRET", value_name = "SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// RSA public key (PEM) that verifies RS256 user JWTs, beside HS256 [default: none, RS256 refused].
    #[arg(long, env = "SUBSIGNAL_JWT_PUBLIC_KEY", value_name = "FILE")]
    pub jwt_public_key: Option<PathBuf>,
    /// JWKS file whose RSA keys verify RS256 user JWTs, chosen by the token's `kid` [default: none].
    #[arg(long, env = "SUBSIGNAL_JWKS", value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// Required JWT issuer [default: subsignal].
    #[arg(long, env = "SUBSIGNAL_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required JWT audience [default: subsignal].
    #[arg(long, env = "SUBSIGNAL_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Members of this JWT group see every order [default: admin].
    #[arg(long, env = "SUBSIGNAL_ADMIN_GROUP")]
    pub admin_group: Option<String>,
    /// API keys for server-to-server calls, as NAME:KEY, comma-separated.
    #[arg(long = "api-keys", env = "SUBSIGNAL_API_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub api_keys: Option<Vec<String>>,
    /// Serve /dev/token, which issues tokens for the demo users. For local development only [default: false].
    #[arg(long, env = "SUBSIGNAL_DEV_TOKENS", num_args = 0..=1, default_missing_value = "true")]
    pub dev_tokens: Option<bool>,
    /// Demo users /dev/token knows, comma-separated; the one named like the admin group is an admin
    /// [default: alice,bob,admin].
    #[arg(long, env = "SUBSIGNAL_DEMO_USERS", value_delimiter = ',')]
    pub demo_users: Option<Vec<String>>,
    /// Seed a few demo orders when the database is empty [default: false].
    #[arg(long, env = "SUBSIGNAL_SEED_DEMO", num_args = 0..=1, default_missing_value = "true")]
    pub seed_demo: Option<bool>,
    /// Time a WebSocket client has to send connection_init, in ms [default: 3000].
    #[arg(long, env = "SUBSIGNAL_WS_INIT_TIMEOUT_MS", value_name = "MS")]
    pub ws_init_timeout_ms: Option<u64>,
    /// Largest WebSocket message or frame accepted, in bytes [default: 245760, AppSync's 240 KB].
    #[arg(long, env = "SUBSIGNAL_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Operations one WebSocket connection may run at once [default: 100].
    #[arg(long, env = "SUBSIGNAL_MAX_SUBSCRIPTIONS", value_name = "N")]
    pub max_subscriptions: Option<usize>,
    /// How often the AppSync real-time endpoint (/graphql/realtime) sends `ka`, in ms [default: 60000].
    #[arg(long, env = "SUBSIGNAL_APPSYNC_KA_INTERVAL_MS", value_name = "MS")]
    pub appsync_ka_interval_ms: Option<u64>,
    /// `connectionTimeoutMs` in the AppSync `connection_ack`: AWS clients reconnect after this long without `ka`;
    /// must exceed the ka interval [default: 300000].
    #[arg(long, env = "SUBSIGNAL_APPSYNC_CONNECTION_TIMEOUT_MS", value_name = "MS")]
    pub appsync_connection_timeout_ms: Option<u64>,
    /// Origins allowed to open WebSockets, comma-separated; empty allows any [default: empty].
    #[arg(long, env = "SUBSIGNAL_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,
    /// Maximum GraphQL query depth [default: 16].
    #[arg(long, env = "SUBSIGNAL_MAX_DEPTH", value_name = "N")]
    pub max_depth: Option<usize>,
    /// Maximum GraphQL query complexity [default: 2000].
    #[arg(long, env = "SUBSIGNAL_MAX_COMPLEXITY", value_name = "N")]
    pub max_complexity: Option<usize>,
    /// Maximum aliases in one GraphQL document (alias batching amplifies one request into many) [default: 64].
    #[arg(long, env = "SUBSIGNAL_MAX_ALIASES", value_name = "N")]
    pub max_aliases: Option<usize>,
    /// Maximum directives in one GraphQL document [default: 32].
    #[arg(long, env = "SUBSIGNAL_MAX_DIRECTIVES", value_name = "N")]
    pub max_directives: Option<usize>,
    /// Messages per second one WebSocket connection may send (a token bucket holding one second's worth); past it
    /// the connection is closed with 1008 [default: 100].
    #[arg(long, env = "SUBSIGNAL_MAX_MESSAGES_PER_SEC", value_name = "N")]
    pub max_messages_per_sec: Option<u32>,
    /// WebSocket connections one client address may hold open at once; more are refused with HTTP 429
    /// [default: 64].
    #[arg(long, env = "SUBSIGNAL_MAX_CONNECTIONS_PER_ADDR", value_name = "N")]
    pub max_connections_per_addr: Option<usize>,
    /// Maximum total size of a request's headers, in bytes; larger requests get HTTP 431 [default: 16384].
    #[arg(long, env = "SUBSIGNAL_MAX_HEADER_BYTES", value_name = "BYTES")]
    pub max_header_bytes: Option<usize>,
    /// Allow schema introspection (GraphiQL needs it) [default: true].
    #[arg(long, env = "SUBSIGNAL_INTROSPECTION", num_args = 0..=1, default_missing_value = "true")]
    pub introspection: Option<bool>,
    /// Folder of the built web app to serve at / [default: dist].
    #[arg(long = "web", env = "SUBSIGNAL_WEB", value_name = "DIR")]
    pub web_dir: Option<PathBuf>,
    /// SDL file of models and subscriptions (`type Note @model { ... }`) to serve instead of the built-in order
    /// service: queries, mutations and subscriptions are generated for every `@model` type [default: the orders].
    #[arg(long, env = "SUBSIGNAL_SCHEMA", value_name = "FILE")]
    pub schema: Option<PathBuf>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Data folder.
    pub data_dir: PathBuf,
    /// The database: SQLite in the data folder, or PostgreSQL.
    pub database: Database,
    /// Worker step delay.
    pub step_delay: Duration,
    /// Worker parallelism.
    pub worker_parallelism: usize,
    /// Worker batch size.
    pub worker_batch_size: u32,
    /// Worker attempts per record.
    pub worker_max_attempts: u32,
    /// Worker first retry delay.
    pub worker_backoff: Duration,
    /// Worker lease length.
    pub worker_lease: Duration,
    /// Change-log retention.
    pub retention: Duration,
    /// Reaper period.
    pub reap_interval: Duration,
    /// Watermark delay.
    pub watermark_interval: Duration,
    /// JWT secret; `None` means generate/keep one in the data dir.
    pub jwt_secret: Option<String>,
    /// RS256 PEM public key file.
    pub jwt_public_key: Option<PathBuf>,
    /// RS256 JWKS file.
    pub jwks: Option<PathBuf>,
    /// JWT issuer.
    pub jwt_issuer: String,
    /// JWT audience.
    pub jwt_audience: String,
    /// Admin group.
    pub admin_group: String,
    /// API keys as (name, key).
    pub api_keys: Vec<(String, String)>,
    /// Dev token endpoint on.
    pub dev_tokens: bool,
    /// Demo users.
    pub demo_users: Vec<String>,
    /// Seed demo orders into an empty database.
    pub seed_demo: bool,
    /// connection_init timeout.
    pub ws_init_timeout: Duration,
    /// WebSocket message limit.
    pub max_message_bytes: usize,
    /// Operations per connection.
    pub max_subscriptions: usize,
    /// AppSync real-time `ka` interval.
    pub appsync_ka_interval: Duration,
    /// AppSync real-time `connectionTimeoutMs`.
    pub appsync_connection_timeout: Duration,
    /// WebSocket Origin allow-list (empty: any).
    pub allowed_origins: Vec<String>,
    /// Query depth limit.
    pub max_depth: usize,
    /// Query complexity limit.
    pub max_complexity: usize,
    /// Aliases per document.
    pub max_aliases: usize,
    /// Directives per document.
    pub max_directives: usize,
    /// WebSocket messages per second per connection.
    pub max_messages_per_sec: u32,
    /// Open WebSocket connections per client address.
    pub max_connections_per_addr: usize,
    /// Total request header bytes.
    pub max_header_bytes: usize,
    /// Introspection on.
    pub introspection: bool,
    /// Built web app folder.
    pub web_dir: PathBuf,
    /// The models of `--schema`, parsed and checked; `None` serves the order service.
    pub models: Option<std::sync::Arc<subsignal_models::ModelSchema>>,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value is out of range or malformed.
    #[error("invalid setting `{setting}`: {reason}")]
    Invalid {
        /// The setting's name as written in subsignal.toml.
        setting: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// The `schema` file could not be read, or declares something wrong: every problem as `file:line:column: …`.
    #[error("the schema cannot be served:\n{0}")]
    Schema(String),
    /// The config file could not be read or parsed.
    #[error("cannot use config file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { setting, reason: reason.into() }
}

fn range<T: PartialOrd + std::fmt::Display + Copy>(
    setting: &'static str,
    value: T,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    if value < min || value > max {
        Err(invalid(setting, format!("must be between {min} and {max} (got {value})")))
    } else {
        Ok(value)
    }
}

impl Settings {
    /// Reads a TOML settings file.
    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::File { path: path.to_owned(), reason: e.to_string() })?;
        toml::from_str(&text).map_err(|e| ConfigError::File { path: path.to_owned(), reason: e.to_string() })
    }

    /// `self` where set, else `lower`.
    pub fn over(self, lower: Settings) -> Settings {
        let mut merged = serde_json::to_value(lower).unwrap_or_default();
        if let (Some(base), serde_json::Value::Object(top)) =
            (merged.as_object_mut(), serde_json::to_value(self).unwrap_or_default())
        {
            for (k, v) in top {
                if !v.is_null() {
                    base.insert(k, v);
                }
            }
        }
        serde_json::from_value(merged).unwrap_or_default()
    }

    /// Applies defaults and checks every value.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let ms = Duration::from_millis;
        let appsync_ka = range("appsync-ka-interval-ms", self.appsync_ka_interval_ms.unwrap_or(60_000), 10, 3_600_000)?;
        let appsync_timeout = range(
            "appsync-connection-timeout-ms",
            self.appsync_connection_timeout_ms.unwrap_or(subsignal_protocol::appsync::DEFAULT_CONNECTION_TIMEOUT_MS),
            appsync_ka + 1,
            86_400_000,
        )?;
        let api_keys = self
            .api_keys
            .unwrap_or_default()
            .into_iter()
            .filter(|entry| !entry.trim().is_empty())
            .map(|entry| match entry.split_once(':') {
                Some((name, key)) if !name.is_empty() && key.len() >= 8 => Ok((name.to_owned(), key.to_owned())),
                _ => Err(invalid("api-keys", "each entry is NAME:KEY with a key of at least 8 characters")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(secret) = &self.jwt_secret {
            if secret.len() < 16 {
                return Err(invalid("jwt-secret", "must be at least 16 bytes long"));
            }
        }
        let demo_users = self.demo_users.unwrap_or_else(|| vec!["alice".into(), "bob".into(), "admin".into()]);
        if demo_users.iter().any(|u| u.trim().is_empty() || u.len() > 64) {
            return Err(invalid("demo-users", "names must be 1 to 64 characters"));
        }
        let max_message_bytes =
            range("max-message-bytes", self.max_message_bytes.unwrap_or(240 * 1024), 1024, 16 * 1024 * 1024)?;
        // Read the RS256 keys now, so that a bad file stops the server at start, named.
        crate::auth::Rs256Keys::load(self.jwt_public_key.as_deref(), None)
            .map_err(|reason| invalid("jwt-public-key", reason))?;
        crate::auth::Rs256Keys::load(None, self.jwks.as_deref()).map_err(|reason| invalid("jwks", reason))?;
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from("data"));
        let database = match self.database.as_deref().map(str::trim).filter(|url| !url.is_empty()) {
            None => Database::Sqlite(data_dir.clone()),
            Some(url) => Database::parse_url(url).map_err(|reason| invalid("database", reason))?,
        };
        Ok(Config {
            listen: self.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 4000))),
            data_dir,
            database,
            step_delay: ms(range("step-delay-ms", self.step_delay_ms.unwrap_or(1500), 0, 600_000)?),
            worker_parallelism: range("worker-parallelism", self.worker_parallelism.unwrap_or(4), 1, 256)?,
            worker_batch_size: range("worker-batch-size", self.worker_batch_size.unwrap_or(100), 1, 10_000)?,
            worker_max_attempts: range("worker-max-attempts", self.worker_max_attempts.unwrap_or(5), 1, 100)?,
            worker_backoff: ms(range("worker-backoff-ms", self.worker_backoff_ms.unwrap_or(200), 0, 600_000)?),
            worker_lease: ms(range("worker-lease-ms", self.worker_lease_ms.unwrap_or(10_000), 100, 3_600_000)?),
            retention: Duration::from_secs(range(
                "retention-secs",
                self.retention_secs.unwrap_or(86_400),
                1,
                365 * 86_400,
            )?),
            reap_interval: ms(range("reap-interval-ms", self.reap_interval_ms.unwrap_or(1000), 10, 3_600_000)?),
            watermark_interval: ms(range(
                "watermark-interval-ms",
                self.watermark_interval_ms.unwrap_or(1000),
                1,
                3_600_000,
            )?),
            jwt_secret: self.jwt_secret,
            jwt_public_key: self.jwt_public_key,
            jwks: self.jwks,
            jwt_issuer: self.jwt_issuer.unwrap_or_else(|| "subsignal".into()),
            jwt_audience: self.jwt_audience.unwrap_or_else(|| "subsignal".into()),
            admin_group: self.admin_group.unwrap_or_else(|| "admin".into()),
            api_keys,
            dev_tokens: self.dev_tokens.unwrap_or(false),
            demo_users,
            seed_demo: self.seed_demo.unwrap_or(false),
            ws_init_timeout: ms(range("ws-init-timeout-ms", self.ws_init_timeout_ms.unwrap_or(3000), 100, 600_000)?),
            max_message_bytes,
            max_subscriptions: range("max-subscriptions", self.max_subscriptions.unwrap_or(100), 1, 10_000)?,
            appsync_ka_interval: ms(appsync_ka),
            appsync_connection_timeout: ms(appsync_timeout),
            allowed_origins: self.allowed_origins.unwrap_or_default().into_iter().filter(|o| !o.is_empty()).collect(),
            max_depth: range("max-depth", self.max_depth.unwrap_or(16), 2, 256)?,
            max_complexity: range("max-complexity", self.max_complexity.unwrap_or(2000), 10, 1_000_000)?,
            max_aliases: range("max-aliases", self.max_aliases.unwrap_or(64), 0, 100_000)?,
            max_directives: range("max-directives", self.max_directives.unwrap_or(32), 0, 100_000)?,
            max_messages_per_sec: range(
                "max-messages-per-sec",
                self.max_messages_per_sec.unwrap_or(100),
                1,
                1_000_000,
            )?,
            max_connections_per_addr: range(
                "max-connections-per-addr",
                self.max_connections_per_addr.unwrap_or(64),
                1,
                1_000_000,
            )?,
            max_header_bytes: range("max-header-bytes", self.max_header_bytes.unwrap_or(16 * 1024), 1024, 1024 * 1024)?,
            introspection: self.introspection.unwrap_or(true),
            web_dir: self.web_dir.unwrap_or_else(|| PathBuf::from("dist")),
            models: self.schema.as_deref().map(load_models).transpose()?,
        })
    }
}

/// Reads and checks an SDL file of models.
fn load_models(path: &Path) -> Result<std::sync::Arc<subsignal_models::ModelSchema>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Schema(format!("{}: cannot read it: {e}", path.display())))?;
    subsignal_models::parse(&path.display().to_string(), &text)
        .map(std::sync::Arc::new)
        .map_err(|errors| ConfigError::Schema(errors.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_defaults_fill_the_rest() {
        let file: Settings = toml::from_str("step-delay-ms = 10\nworker-parallelism = 8\n").unwrap();
        let flags = Settings { step_delay_ms: Some(0), ..Settings::default() };
        let config = flags.over(file).resolve().unwrap();
        assert_eq!(config.step_delay, Duration::ZERO);
        assert_eq!(config.worker_parallelism, 8);
        assert_eq!(config.listen.port(), 4000);
    }

    #[test]
    fn bad_settings_name_themselves() {
        let err = Settings { worker_parallelism: Some(0), ..Settings::default() }.resolve().unwrap_err();
        assert_eq!(err.to_string(), "invalid setting `worker-parallelism`: must be between 1 and 256 (got 0)");
        let err = toml::from_str::<Settings>("step-dleay-ms = 1").unwrap_err();
        assert!(err.to_string().contains("step-dleay-ms"), "{err}");
        let err = Settings { api_keys: Some(vec!["nokey".into()]), ..Settings::default() }.resolve().unwrap_err();
        assert!(err.to_string().contains("api-keys"));
        let err = Settings { database: Some("mysql://x".into()), ..Settings::default() }.resolve().unwrap_err();
        assert!(err.to_string().starts_with("invalid setting `database`"), "{err}");
    }

    #[test]
    fn the_schema_setting_comes_from_subsignal_toml_and_is_parsed_at_start() {
        let dir = std::env::temp_dir().join(format!("subsignal-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let schema = dir.join("app.graphql");
        std::fs::write(&schema, "type Note @model {\n  id: ID!\n  title: String!\n}\n").unwrap();
        let toml = dir.join("subsignal.toml");
        std::fs::write(&toml, format!("schema = {:?}\n", schema.display().to_string())).unwrap();
        let config = Settings::from_file(&toml).unwrap().resolve().unwrap();
        assert_eq!(config.models.expect("models").models[0].name, "Note");
        std::fs::write(&schema, "type Note @model {\n  title: String!\n}\n").unwrap();
        let err = Settings::from_file(&toml).unwrap().resolve().unwrap_err().to_string();
        assert!(err.contains("app.graphql:1:6: model `Note` needs an `id: ID!` field"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_database_defaults_to_sqlite_in_the_data_dir_and_takes_a_postgres_url() {
        let config = Settings { data_dir: Some("d".into()), ..Settings::default() }.resolve().unwrap();
        assert_eq!(config.database, Database::Sqlite("d".into()));
        let url = "postgres://me:hunter2@db.example:5433/subsignal";
        let config = Settings { database: Some(url.into()), ..Settings::default() }.resolve().unwrap();
        assert_eq!(config.database, Database::Postgres(url.into()));
        let shown = format!("{config:?}");
        let err =
            Settings { jwks: Some("/nonexistent/jwks.json".into()), ..Settings::default() }.resolve().unwrap_err();
        assert!(err.to_string().starts_with("invalid setting `jwks`"), "{err}");
        assert!(shown.contains("db.example:5433/subsignal") && !shown.contains("hunter2"), "{shown}");
    }
}
