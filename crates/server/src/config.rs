//! Settings: command-line flags, `SUBSIGNAL_*` environment variables and `subsignal.toml`, in that order of
//! precedence, over built-in defaults. A bad setting is refused at start with a message naming it.
//!
//! Each setting is declared once, in the [`settings!`] table below: its name gives the flag (`--step-delay-ms`),
//! the environment variable (`SUBSIGNAL_STEP_DELAY_MS`) and the file key (`step-delay-ms`); its declaration gives
//! its type, its default (shown by `--help` and used by [`Settings::resolve`]), its range and its help text.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::storage::Database;

/// Declares the settings: the layered [`Settings`] (every field optional), the [`Values`] they resolve to (defaults
/// applied, ranges checked) and the [`SETTINGS`] table that describes them.
///
/// Each entry is its doc lines (the help text), any extra `#[arg(...)]` for clap, then
/// `name: Type, KIND "text"` and an optional `, MIN..=MAX`. KIND is `default` (the text is the default, parsed as a
/// flag's value would be), `unset` (no default; the text says what happens then) or `secret` (like `unset`, and the
/// value is never shown: not in `--help`'s env values, not by `check-config`).
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $(#[arg($($arg:tt)+)])*
        $name:ident: $ty:ty, $kind:ident $text:literal $(, $min:literal..=$max:literal)?;
    )+) => {
        /// Every setting, each optional so that the sources can be layered. The same names serve as flags
        /// (`--step-delay-ms`), environment variables (`SUBSIGNAL_STEP_DELAY_MS`) and TOML keys (`step-delay-ms`).
        #[derive(clap::Args, Serialize, Deserialize, Default, Debug, Clone)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub struct Settings {
            $(
                $(#[doc = $doc])+
                #[arg(
                    long,
                    env = env_var(stringify!($name)),
                    help = help_text(&[$($doc),+], $text),
                    hide_env_values = settings!(@secret $kind),
                )]
                $(#[arg($($arg)+)])*
                pub $name: Option<$ty>,
            )+
        }

        /// Every setting with its default applied and its range checked.
        #[derive(Serialize, Clone)]
        #[serde(rename_all = "kebab-case")]
        pub struct Values {
            $(
                $(#[doc = $doc])+
                pub $name: settings!(@type $kind $ty),
            )+
        }

        impl Settings {
            /// Applies the defaults and checks each value's range.
            pub fn values(&self) -> Result<Values, ConfigError> {
                Ok(Values {
                    $(
                        $name: {
                            let value = settings!(@value $kind self.$name.clone(), $text);
                            $(in_range(stringify!($name), &value, $min, $max)?;)?
                            value
                        },
                    )+
                })
            }
        }

        /// What each setting is, in declaration order.
        pub const SETTINGS: &[SettingInfo] = &[
            $(SettingInfo {
                field: stringify!($name),
                docs: &[$($doc),+],
                default: $text,
                secret: settings!(@secret $kind),
            },)+
        ];
    };
    (@secret secret) => { true };
    (@secret $kind:ident) => { false };
    (@type default $ty:ty) => { $ty };
    (@type unset $ty:ty) => { Option<$ty> };
    (@type secret $ty:ty) => { Option<$ty> };
    (@value default $value:expr, $text:literal) => { $value.unwrap_or_else(|| FromDefault::from_default($text)) };
    (@value unset $value:expr, $text:literal) => { $value };
    (@value secret $value:expr, $text:literal) => { $value };
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not a log format: use text or json")),
        }
    }
}

/// One setting, as declared.
#[derive(Debug, Clone, Copy)]
pub struct SettingInfo {
    /// The field's name (`step_delay_ms`).
    pub field: &'static str,
    /// Its help text, line by line.
    pub docs: &'static [&'static str],
    /// Its default, or what happens when it is unset.
    pub default: &'static str,
    /// Whether its value is never shown.
    pub secret: bool,
}

impl SettingInfo {
    /// The name in `subsignal.toml` and in error messages (`step-delay-ms`); the flag is `--` and this.
    pub fn key(&self) -> String {
        self.field.replace('_', "-")
    }

    /// The environment variable (`SUBSIGNAL_STEP_DELAY_MS`).
    pub fn env(&self) -> String {
        env_var(self.field)
    }
}

fn env_var(field: &str) -> String {
    format!("SUBSIGNAL_{}", field.to_ascii_uppercase())
}

/// A setting's help: its doc lines and its default.
fn help_text(docs: &[&str], default: &str) -> String {
    let text = docs.iter().map(|line| line.trim()).collect::<Vec<_>>().join(" ");
    format!("{text} [default: {default}]")
}

/// A default, from its text in the declaration.
trait FromDefault {
    fn from_default(text: &str) -> Self;
}

macro_rules! from_str_defaults {
    ($($ty:ty),+) => {$(
        impl FromDefault for $ty {
            fn from_default(text: &str) -> Self {
                // Every default is parsed by a unit test, so this cannot fail at run time.
                text.parse().unwrap_or_else(|e| panic!("the default {text:?} does not parse: {e}"))
            }
        }
    )+};
}

from_str_defaults!(u32, u64, usize, bool, String, PathBuf, SocketAddr, LogFormat);

impl FromDefault for Vec<String> {
    fn from_default(text: &str) -> Self {
        text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
    }
}

fn in_range<T: PartialOrd + Display>(field: &str, value: &T, min: T, max: T) -> Result<(), ConfigError> {
    if *value < min || *value > max {
        Err(invalid(field, format!("must be between {min} and {max} (got {value})")))
    } else {
        Ok(())
    }
}

settings! {
    /// Address to listen on.
    #[arg(value_name = "ADDR")]
    listen: SocketAddr, default "127.0.0.1:4000";
    /// Folder for the database and the generated JWT secret.
    #[arg(value_name = "DIR")]
    data_dir: PathBuf, default "data";
    /// PostgreSQL URL (postgres://user:password@host:port/db) to run on instead of SQLite; several instances may
    /// share one database.
    #[arg(value_name = "URL")]
    database: String, secret "SQLite in the data dir";
    /// Delay before each step of the order-processing worker, in ms.
    #[arg(value_name = "MS")]
    step_delay_ms: u64, default "1500", 0..=600_000;
    /// Orders the worker handles at once (Lambda's parallelization factor).
    #[arg(value_name = "N")]
    worker_parallelism: usize, default "4", 1..=256;
    /// Change records per worker batch.
    #[arg(value_name = "N")]
    worker_batch_size: u32, default "100", 1..=10_000;
    /// Attempts per record before it is dead-lettered.
    #[arg(value_name = "N")]
    worker_max_attempts: u32, default "5", 1..=100;
    /// First retry delay of a failed record, in ms; doubles per attempt.
    #[arg(value_name = "MS")]
    worker_backoff_ms: u64, default "200", 0..=600_000;
    /// How long a worker's lease lasts unrenewed, in ms: how soon another instance takes over the work of a dead
    /// one.
    #[arg(value_name = "MS")]
    worker_lease_ms: u64, default "10000", 100..=3_600_000;
    /// How long the change log keeps records, in seconds.
    #[arg(value_name = "SECS")]
    retention_secs: u64, default "86400", 1..=31_536_000;
    /// How often expired orders are reaped, in ms.
    #[arg(value_name = "MS")]
    reap_interval_ms: u64, default "1000", 10..=3_600_000;
    /// How long a subscription may lag behind changes it cannot see before it gets a watermark, in ms.
    #[arg(value_name = "MS")]
    watermark_interval_ms: u64, default "1000", 1..=3_600_000;
    /// HS256 secret for user JWTs, at least 16 bytes.
    #[arg(value_name = "SECRET")]
    jwt_secret: String, secret "generated once and kept in the data dir";
    /// RSA public key (PEM) that verifies RS256 user JWTs, beside HS256.
    #[arg(value_name = "FILE")]
    jwt_public_key: PathBuf, unset "none, RS256 refused";
    /// JWKS file whose RSA keys verify RS256 user JWTs, chosen by the token's `kid`.
    #[arg(value_name = "FILE")]
    jwks: PathBuf, unset "none";
    /// JWKS URL of an identity provider (Cognito, Auth0, Keycloak…) whose RSA keys verify RS256 user JWTs, chosen by
    /// the token's `kid`; fetched at start, again when a token names an unknown `kid`, and when the response's
    /// `Cache-Control: max-age` has passed. http:// or https:// (the system's CA certificates).
    #[arg(value_name = "URL")]
    jwks_url: String, unset "none";
    /// The least time between two fetches of the JWKS URL, in ms: tokens with unknown `kid`s cause at most one
    /// fetch per this long.
    #[arg(value_name = "MS")]
    jwks_min_refresh_ms: u64, default "10000", 0..=3_600_000;
    /// Required JWT issuer.
    jwt_issuer: String, default "subsignal";
    /// Required JWT audience.
    jwt_audience: String, default "subsignal";
    /// Members of this JWT group see every order.
    admin_group: String, default "admin";
    /// API keys for server-to-server calls, as NAME:KEY, comma-separated.
    #[arg(value_delimiter = ',')]
    api_keys: Vec<String>, secret "none";
    /// Serve /dev/token, which issues tokens for the demo users. For local development only.
    #[arg(num_args = 0..=1, default_missing_value = "true")]
    dev_tokens: bool, default "false";
    /// Demo users /dev/token knows, comma-separated; the one named like the admin group is an admin.
    #[arg(value_delimiter = ',')]
    demo_users: Vec<String>, default "alice,bob,admin";
    /// Seed a few demo orders when the database is empty.
    #[arg(num_args = 0..=1, default_missing_value = "true")]
    seed_demo: bool, default "false";
    /// Time a WebSocket client has to send connection_init, in ms.
    #[arg(value_name = "MS")]
    ws_init_timeout_ms: u64, default "3000", 100..=600_000;
    /// Largest WebSocket message or frame accepted, and largest HTTP body, in bytes (the default is AppSync's
    /// 240 KB).
    #[arg(value_name = "BYTES")]
    max_message_bytes: usize, default "245760", 1024..=16_777_216;
    /// Operations one WebSocket connection may run at once.
    #[arg(value_name = "N")]
    max_subscriptions: usize, default "100", 1..=10_000;
    /// How often the AppSync real-time endpoint (/graphql/realtime) sends `ka`, in ms.
    #[arg(value_name = "MS")]
    appsync_ka_interval_ms: u64, default "60000", 10..=3_600_000;
    /// `connectionTimeoutMs` in the AppSync `connection_ack`: AWS clients reconnect after this long without `ka`;
    /// must exceed the ka interval.
    #[arg(value_name = "MS")]
    appsync_connection_timeout_ms: u64, default "300000", 11..=86_400_000;
    /// Origins (`https://app.example.com`) allowed to open WebSockets and to call the HTTP API from a browser
    /// (CORS), comma-separated.
    #[arg(value_delimiter = ',')]
    allowed_origins: Vec<String>, unset "any origin";
    /// Addresses or CIDR ranges of the reverse proxies in front of the server, comma-separated: a request from one
    /// of them is from the client its `Forwarded` or `X-Forwarded-For` header names (for the per-address limits and
    /// the logs); from anyone else, those headers are ignored.
    #[arg(value_delimiter = ',', value_name = "ADDRS")]
    trusted_proxies: Vec<String>, unset "none";
    /// Maximum GraphQL query depth.
    #[arg(value_name = "N")]
    max_depth: usize, default "16", 2..=256;
    /// Maximum GraphQL query complexity.
    #[arg(value_name = "N")]
    max_complexity: usize, default "2000", 10..=1_000_000;
    /// Maximum aliases in one GraphQL document (alias batching amplifies one request into many).
    #[arg(value_name = "N")]
    max_aliases: usize, default "64", 0..=100_000;
    /// Maximum directives in one GraphQL document.
    #[arg(value_name = "N")]
    max_directives: usize, default "32", 0..=100_000;
    /// Messages per second one WebSocket connection may send (a token bucket holding one second's worth); past it
    /// the connection is closed with 1008.
    #[arg(value_name = "N")]
    max_messages_per_sec: u32, default "100", 1..=1_000_000;
    /// WebSocket connections one client address may hold open at once; more are refused with HTTP 429.
    #[arg(value_name = "N")]
    max_connections_per_addr: usize, default "64", 1..=1_000_000;
    /// Maximum total size of a request's headers, in bytes; larger requests get HTTP 431.
    #[arg(value_name = "BYTES")]
    max_header_bytes: usize, default "16384", 1024..=1_048_576;
    /// Allow schema introspection (GraphiQL needs it).
    #[arg(num_args = 0..=1, default_missing_value = "true")]
    introspection: bool, default "true";
    /// Folder of the built web app to serve at / (the flag is --web, the variable SUBSIGNAL_WEB).
    #[arg(long = "web", env = "SUBSIGNAL_WEB", value_name = "DIR")]
    web_dir: PathBuf, default "dist";
    /// Address of the Prometheus `/metrics` endpoint (a port of its own, so that it need not be exposed with the
    /// API).
    #[arg(value_name = "ADDR")]
    metrics_listen: SocketAddr, unset "off";
    /// Log lines as `text` (for people) or `json` (one object per line, for log collectors).
    #[arg(value_name = "FORMAT")]
    log_format: LogFormat, default "text";
    /// How long a shutdown (SIGTERM or SIGINT) lets the requests, mutations and worker batches under way finish,
    /// in ms; subscriptions stop at once and WebSockets close with 1001.
    #[arg(value_name = "MS")]
    shutdown_grace_ms: u64, default "10000", 0..=600_000;
    /// SDL file of models and subscriptions (`type Note @model { ... }`) to serve instead of the built-in order
    /// service: queries, mutations and subscriptions are generated for every `@model` type.
    #[arg(value_name = "FILE")]
    schema: PathBuf, unset "the order service";
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
    /// RS256 JWKS URL.
    pub jwks_url: Option<String>,
    /// The least time between two fetches of the JWKS URL.
    pub jwks_min_refresh: Duration,
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
    /// WebSocket and CORS Origin allow-list (empty: any).
    pub allowed_origins: Vec<String>,
    /// The reverse proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
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
    /// How long a shutdown waits for work under way.
    pub shutdown_grace: Duration,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// Where `/metrics` is served, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// The models of `--schema`, parsed and checked; `None` serves the order service.
    pub models: Option<std::sync::Arc<subsignal_models::ModelSchema>>,
    /// The time of day: the wall clock, which no setting changes (a test may put an adjustable one here).
    pub clock: crate::clock::Clock,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value is out of range or malformed.
    #[error("invalid setting `{setting}`: {reason}")]
    Invalid {
        /// The setting's name as written in subsignal.toml.
        setting: String,
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

fn invalid(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { setting: setting.replace('_', "-"), reason: reason.into() }
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

    /// The effective settings as `subsignal.toml` text (defaults applied, ranges checked): every setting in
    /// declaration order, unset ones and secrets as comments (a secret's value is never shown).
    pub fn effective(&self) -> Result<String, ConfigError> {
        let values = serde_json::to_value(self.values()?).unwrap_or_default();
        let mut text =
            String::from("# The effective settings: flags over SUBSIGNAL_* variables over the file over defaults.\n");
        for info in SETTINGS {
            let key = info.key();
            let value = &values[key.as_str()];
            let line = match (value, info.secret) {
                (serde_json::Value::Null, _) => format!("# {key}: unset ({})", info.default),
                (_, true) => format!("# {key}: set (hidden)"),
                (value, false) => match toml::Value::try_from(value) {
                    Ok(value) => format!("{key} = {value}"),
                    Err(e) => format!("# {key}: {e}"),
                },
            };
            text.push_str(&line);
            text.push('\n');
        }
        Ok(text)
    }

    /// Applies defaults and checks every value, and what depends on several of them.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let v = self.values()?;
        let ms = Duration::from_millis;
        in_range(
            "appsync-connection-timeout-ms",
            &v.appsync_connection_timeout_ms,
            v.appsync_ka_interval_ms + 1,
            86_400_000,
        )?;
        let api_keys = v
            .api_keys
            .unwrap_or_default()
            .into_iter()
            .filter(|entry| !entry.trim().is_empty())
            .map(|entry| match entry.split_once(':') {
                Some((name, key)) if !name.is_empty() && key.len() >= 8 => Ok((name.to_owned(), key.to_owned())),
                _ => Err(invalid("api-keys", "each entry is NAME:KEY with a key of at least 8 characters")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if v.jwt_secret.as_ref().is_some_and(|secret| secret.len() < 16) {
            return Err(invalid("jwt-secret", "must be at least 16 bytes long"));
        }
        if v.demo_users.iter().any(|u| u.trim().is_empty() || u.len() > 64) {
            return Err(invalid("demo-users", "names must be 1 to 64 characters"));
        }
        // Read the RS256 keys now, so that a bad file stops the server at start, named.
        crate::auth::Rs256Keys::load(v.jwt_public_key.as_deref(), None)
            .map_err(|reason| invalid("jwt-public-key", reason))?;
        crate::auth::Rs256Keys::load(None, v.jwks.as_deref()).map_err(|reason| invalid("jwks", reason))?;
        if let Some(bad) = v.allowed_origins.iter().flatten().find(|origin| {
            !origin.is_empty()
                && (axum::http::HeaderValue::from_str(origin).is_err()
                    || !origin.contains("://")
                    || origin.ends_with('/'))
        }) {
            return Err(invalid(
                "allowed-origins",
                format!("{bad:?} is not an origin: write scheme://host[:port], as browsers send it"),
            ));
        }
        let database = match v.database.as_deref().map(str::trim).filter(|url| !url.is_empty()) {
            None => Database::Sqlite(v.data_dir.clone()),
            Some(url) => Database::parse_url(url).map_err(|reason| invalid("database", reason))?,
        };
        Ok(Config {
            listen: v.listen,
            data_dir: v.data_dir,
            database,
            step_delay: ms(v.step_delay_ms),
            worker_parallelism: v.worker_parallelism,
            worker_batch_size: v.worker_batch_size,
            worker_max_attempts: v.worker_max_attempts,
            worker_backoff: ms(v.worker_backoff_ms),
            worker_lease: ms(v.worker_lease_ms),
            retention: Duration::from_secs(v.retention_secs),
            reap_interval: ms(v.reap_interval_ms),
            watermark_interval: ms(v.watermark_interval_ms),
            jwt_secret: v.jwt_secret,
            jwt_public_key: v.jwt_public_key,
            jwks: v.jwks,
            jwks_url: v
                .jwks_url
                .filter(|url| !url.trim().is_empty())
                .map(|url| match reqwest::Url::parse(url.trim()) {
                    Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(url.trim().to_owned()),
                    _ => Err(invalid("jwks-url", format!("{url:?} is not an http:// or https:// URL"))),
                })
                .transpose()?,
            jwks_min_refresh: ms(v.jwks_min_refresh_ms),
            jwt_issuer: v.jwt_issuer,
            jwt_audience: v.jwt_audience,
            admin_group: v.admin_group,
            api_keys,
            dev_tokens: v.dev_tokens,
            demo_users: v.demo_users,
            seed_demo: v.seed_demo,
            ws_init_timeout: ms(v.ws_init_timeout_ms),
            max_message_bytes: v.max_message_bytes,
            max_subscriptions: v.max_subscriptions,
            appsync_ka_interval: ms(v.appsync_ka_interval_ms),
            appsync_connection_timeout: ms(v.appsync_connection_timeout_ms),
            allowed_origins: v.allowed_origins.unwrap_or_default().into_iter().filter(|o| !o.is_empty()).collect(),
            trusted_proxies: v
                .trusted_proxies
                .unwrap_or_default()
                .iter()
                .map(|entry| entry.trim())
                .filter(|entry| !entry.is_empty())
                .map(|entry| {
                    entry
                        .parse::<ipnet::IpNet>()
                        .or_else(|_| entry.parse::<std::net::IpAddr>().map(Into::into))
                        .map_err(|_| {
                            invalid("trusted-proxies", format!("{entry:?} is not an IP address or a CIDR range"))
                        })
                })
                .collect::<Result<_, _>>()?,
            max_depth: v.max_depth,
            max_complexity: v.max_complexity,
            max_aliases: v.max_aliases,
            max_directives: v.max_directives,
            max_messages_per_sec: v.max_messages_per_sec,
            max_connections_per_addr: v.max_connections_per_addr,
            max_header_bytes: v.max_header_bytes,
            introspection: v.introspection,
            web_dir: v.web_dir,
            shutdown_grace: ms(v.shutdown_grace_ms),
            log_format: v.log_format,
            metrics_listen: v.metrics_listen,
            models: v.schema.as_deref().map(load_models).transpose()?,
            clock: crate::clock::Clock::system(),
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
    fn every_setting_is_a_flag_a_variable_and_a_key_with_its_default_in_the_help() {
        // Every default parses (a bad one would panic here) and passes its own range.
        let values = Settings::default().values().unwrap();
        assert_eq!(values.worker_parallelism, 4);
        assert_eq!(values.demo_users, ["alice", "bob", "admin"]);
        assert_eq!(
            values.appsync_connection_timeout_ms,
            subsignal_protocol::appsync::DEFAULT_CONNECTION_TIMEOUT_MS,
            "the AppSync default follows the protocol crate's"
        );
        let command = <Settings as clap::Args>::augment_args(clap::Command::new("serve"));
        let keys = serde_json::to_value(Settings::default()).unwrap().as_object().unwrap().clone();
        for info in SETTINGS {
            let arg = command.get_arguments().find(|a| a.get_id() == info.field).expect(info.field);
            let help = arg.get_help().expect("help").to_string();
            assert!(help.ends_with(&format!("[default: {}]", info.default)), "{help}");
            if info.field != "web_dir" {
                assert_eq!(arg.get_long(), Some(info.key().as_str()));
                assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(info.env().as_str()));
            }
            assert_eq!(arg.is_hide_env_values_set(), info.secret, "{}", info.field);
            assert!(keys.contains_key(&info.key()), "{} is the file key", info.key());
        }
        assert_eq!(keys.len(), SETTINGS.len());
    }

    #[test]
    fn the_effective_settings_are_toml_without_secrets() {
        let settings = Settings {
            jwt_secret: Some("hunter2-hunter2-hunter2".into()),
            api_keys: Some(vec!["backend:sup3rsecret".into()]),
            step_delay_ms: Some(5),
            demo_users: Some(vec!["ann".into()]),
            ..Settings::default()
        };
        let text = settings.effective().unwrap();
        assert!(!text.contains("hunter2") && !text.contains("sup3rsecret"), "{text}");
        assert!(text.contains("# jwt-secret: set (hidden)\n# jwt-public-key: unset (none, RS256 refused)\n"), "{text}");
        let parsed: Settings = toml::from_str(&text).unwrap();
        assert_eq!(parsed.step_delay_ms, Some(5));
        assert_eq!(parsed.listen, Some("127.0.0.1:4000".parse().unwrap()));
        assert_eq!(parsed.demo_users, Some(vec!["ann".to_owned()]));
    }

    #[test]
    fn bad_settings_name_themselves() {
        let err = Settings { worker_parallelism: Some(0), ..Settings::default() }.resolve().unwrap_err();
        assert_eq!(err.to_string(), "invalid setting `worker-parallelism`: must be between 1 and 256 (got 0)");
        let err = toml::from_str::<Settings>("step-dleay-ms = 1").unwrap_err();
        assert!(err.to_string().contains("step-dleay-ms"), "{err}");
        let err = Settings { api_keys: Some(vec!["nokey".into()]), ..Settings::default() }.resolve().unwrap_err();
        assert!(err.to_string().contains("api-keys"));
        let err = Settings { trusted_proxies: Some(vec!["10.0.0.0/8".into(), "proxy".into()]), ..Settings::default() }
            .resolve()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid setting `trusted-proxies`: \"proxy\" is not an IP address or a CIDR range"
        );
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
