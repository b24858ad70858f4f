//! Storage: the item table (the rows of every model), the change log, idempotency records, checkpoints, leases and dead letters, in SQLite
//! (WAL, the embedded default) or PostgreSQL (several server instances on one database).
//!
//! Storage knows no entity type: an [`Item`] is a model name, a key, a JSON image and the columns queries filter on
//! (owner, version, TTL). The typed layers (generated models, the order hooks) build and read those images.
//!
//! [`Storage::write`] is the one write path: every write (API, stream worker, TTL reaper) stores the row and appends a
//! change-log record with the next gap-free `seq` in the same transaction, then publishes the record to the
//! [`ChangeFeed`]. The seq comes from the `seq` counter row, incremented (`UPDATE … RETURNING`) inside the writing
//! transaction, so seq order is commit order:
//! - SQLite allows one writer at a time; writers of this process queue on an in-process lock.
//! - PostgreSQL: the counter's row lock is held from the increment until commit, so the next writer gets its seq only
//!   after the previous one committed (and became visible); a rollback gives its seq back. The increment is the last
//!   lock a write takes (after the idempotency lock and the item row's `FOR UPDATE`), so writers never deadlock.
//!   Each commit sends `NOTIFY subsignal_changes, '<seq>'`; [`Storage::follow_commits`] turns those (and a poll
//!   every second) into head moves of this instance's feed, so every instance learns of every commit.
//!
//! Both backends run the same SQL text (`$N` parameters, which SQLite accepts too); the few differences are spelled
//! out where they occur. The [`on_pool!`] macro runs one block of code against whichever pool is open.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use subsignal_protocol::ChangeOp;
use tokio::sync::{watch, Mutex, MutexGuard};

use serde_json::Value;
use subsignal_protocol::FieldError;

use crate::clock::Clock;
use crate::stream::ChangeFeed;

/// One change-log record: the DynamoDB Streams record analogue.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// Global, gap-free, in commit order.
    pub seq: i64,
    /// The model of the item (`Order`, `Note`): a subscription for one model reads only its records.
    pub model: Arc<str>,
    /// INSERT, MODIFY or REMOVE.
    pub op: ChangeOp,
    /// The item's id.
    pub key: String,
    /// The item's owner, for filtering.
    pub owner: String,
    /// The version after the write (for REMOVE, the version removed).
    pub version: i64,
    /// True when a REMOVE was a TTL expiry.
    pub expired: bool,
    /// The new image (for REMOVE, the last image).
    pub image: Arc<Value>,
    /// Commit time, milliseconds since the epoch.
    pub committed_at_ms: i64,
    /// The client mutation id of the write, if it had one.
    pub client_mutation_id: Option<String>,
}

/// One stored item of any model: its JSON image and the columns that reads, owner filters and the TTL reaper use.
/// The typed layer keeps the columns equal to the image's own fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Who owns it, from the writer's verified identity.
    pub owner: String,
    /// Starts at 1, +1 on every write.
    pub version: i64,
    /// Seconds since the epoch after which the item is hidden and then reaped (the model's `@ttl` field).
    pub expires_at: Option<i64>,
    /// The whole item as JSON.
    pub image: Value,
}

/// What a write decides to do with the current row.
#[derive(Debug)]
pub enum Write {
    /// Store a new row.
    Insert(Item),
    /// Replace the row (the version must already be bumped).
    Update(Item),
    /// Delete the row.
    Delete {
        /// The last image.
        item: Item,
        /// Whether this is a TTL expiry.
        expired: bool,
    },
}

/// Why a write was refused by its rules.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Input failed validation.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// `expectedVersion` is stale; carries the current item's image, or `null` when the item is gone.
    #[error("version conflict: the item changed since it was read")]
    Conflict(Box<Value>),
    /// No such item visible to the caller.
    #[error("item not found")]
    NotFound,
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
}

/// A failure of a storage operation.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The write's rules refused it; nothing was written.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored JSON document could not be read.
    #[error("corrupt stored document: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// A stored change-log record holds something no writer writes.
    #[error("corrupt change-log record {seq}: {reason}")]
    BadRecord {
        /// The record's seq.
        seq: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// The change log lacks a committed seq that retention did not prune: the seq invariant is broken.
    #[error("change log gap: no record {missing} (next found: {found:?}, pruned through {pruned_through})")]
    Gap {
        /// The seq that should be there.
        missing: i64,
        /// The first seq found after it.
        found: Option<i64>,
        /// The highest pruned seq.
        pruned_through: i64,
    },
}

impl StorageError {
    /// What is wrong with the database, when this failure comes from its state rather than from the request: its disk
    /// is full, it is read-only, its storage fails, it is restarting or does not answer. The same request may succeed
    /// later, unchanged; a client is told `UNAVAILABLE` with this reason, and a stream worker does not dead-letter
    /// the record it was on.
    pub fn unavailable(&self) -> Option<&'static str> {
        const FULL: &str = "the database's disk is full";
        const READ_ONLY: &str = "the database is read-only";
        const STORAGE: &str = "the database's storage fails to read or write";
        const UNREACHABLE: &str = "the database is restarting or does not answer";
        const RESOURCES: &str = "the database is out of resources";
        use sqlx::error::DatabaseError;
        let StorageError::Db(error) = self else { return None };
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => Some(UNREACHABLE),
            sqlx::Error::Database(db) => {
                if let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                    // The extended result code; its low byte is the primary one (https://sqlite.org/rescode.html).
                    let code = sqlite.code()?.parse::<i32>().ok()?;
                    return match code & 0xff {
                        13 => Some(FULL),         // SQLITE_FULL
                        8 => Some(READ_ONLY),     // SQLITE_READONLY
                        10 | 14 => Some(STORAGE), // SQLITE_IOERR, SQLITE_CANTOPEN
                        _ => None,
                    };
                }
                // PostgreSQL's SQLSTATE (https://www.postgresql.org/docs/current/errcodes-appendix.html).
                let state = db.code()?;
                match (state.get(..2)?, &*state) {
                    (_, "53100") => Some(FULL),
                    (_, "25006") => Some(READ_ONLY),
                    (_, "58030") => Some(STORAGE),
                    ("08", _) | (_, "57P01" | "57P02" | "57P03") => Some(UNREACHABLE),
                    ("53", _) => Some(RESOURCES),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// The row a write found.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The stored item.
    pub item: Item,
    /// Whether its TTL has passed (it is hidden from reads and waits for the reaper).
    pub expired: bool,
}

impl Stored {
    /// The item if it has not expired: what API writes see.
    pub fn live(current: Option<Stored>) -> Option<Item> {
        current.filter(|s| !s.expired).map(|s| s.item)
    }
}

/// The result of a successful write.
#[derive(Debug, Clone)]
pub enum WriteOutcome {
    /// Written now, as `record`.
    Committed(ChangeRecord),
    /// The client mutation id was seen before: the original result's image, nothing written.
    Replayed(Value),
}

impl WriteOutcome {
    /// The resulting item's image.
    pub fn image(&self) -> &Value {
        match self {
            WriteOutcome::Committed(record) => &record.image,
            WriteOutcome::Replayed(image) => image,
        }
    }
}

/// A client mutation id, scoped by the caller so one caller cannot see another's results.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// The caller's identity (owner, API key name or worker name).
    pub scope: String,
    /// The client mutation id.
    pub id: String,
}

/// A page of items and the seq it is consistent with.
#[derive(Debug, Clone)]
pub struct Page {
    /// The items' images, by id.
    pub items: Vec<Value>,
    /// The last id when more follow.
    pub last_id_if_more: Option<String>,
    /// The change-log seq this page reflects.
    pub seq: i64,
}

/// A record a stream consumer gave up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The consumer's name.
    pub consumer: String,
    /// The record's seq.
    pub seq: i64,
    /// The record's key.
    pub key: String,
    /// The last error.
    pub error: String,
    /// How many attempts were made.
    pub attempts: i64,
}

/// Which database to open.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// SQLite: `subsignal.db` in this folder (created if missing).
    Sqlite(PathBuf),
    /// PostgreSQL: a `postgres://` connection URL. Several server instances may share it.
    Postgres(String),
}

impl Database {
    /// Parses a `database` setting: a `postgres://` (or `postgresql://`) URL.
    pub fn parse_url(url: &str) -> Result<Database, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err("must be a postgres:// URL (leave it unset for SQLite in the data dir)".into());
        }
        PgConnectOptions::from_str(url).map_err(|e| format!("not a usable PostgreSQL URL: {e}"))?;
        Ok(Database::Postgres(url.to_owned()))
    }

    /// A description for logs, without the password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(dir) => format!("SQLite in {}", dir.join("subsignal.db").display()),
            Database::Postgres(url) => match PgConnectOptions::from_str(url) {
                Ok(o) => format!(
                    "PostgreSQL at {}:{}/{}",
                    o.get_host(),
                    o.get_port(),
                    o.get_database().unwrap_or(o.get_username())
                ),
                Err(_) => "PostgreSQL".into(),
            },
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a URL's password.
        f.write_str(&self.describe())
    }
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool is open. The body is written once and compiled for each backend,
/// so the SQL and the logic cannot drift apart.
macro_rules! on_pool {
    ($backend:expr, |$pool:ident| $body:expr) => {
        match $backend {
            Backend::Sqlite($pool) => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$tx` a transaction on a connection of `$pool` taken for it, and commits when `$body` gives a
/// value (a `return` from `$body` leaves without committing; `?` rolls back). A connection whose transaction failed
/// with a database error is closed, not given back to the pool: on some errors (`SQLITE_FULL` among them) SQLite
/// rolls the transaction back by itself, sqlx's own rollback then fails and leaves it counting a transaction that is
/// not there, and that connection's next transaction, begun as a savepoint, would outlive its own rollback and keep
/// the write lock, so that every later write failed with "database is locked" even after the disk had room again.
macro_rules! in_transaction {
    ($pool:expr, |$tx:ident| $body:expr) => {{
        let mut conn = $pool.acquire().await?;
        let outcome: Result<_, StorageError> = async {
            let mut $tx = sqlx::Connection::begin(&mut *conn).await?;
            let value = $body;
            $tx.commit().await?;
            Ok(value)
        }
        .await;
        if let Err(StorageError::Db(_)) = &outcome {
            conn.close_on_drop();
        }
        outcome?
    }};
}

/// The channel each commit is announced on (PostgreSQL), with its seq as payload, when the tables live in the
/// `public` schema; in another schema (a `search_path` in the URL's `options`) the channel is
/// `subsignal_changes_<schema>`, so deployments sharing a database do not wake each other.
pub const CHANGES_CHANNEL: &str = "subsignal_changes";

fn changes_channel(schema: &str) -> String {
    if schema == "public" {
        return CHANGES_CHANNEL.to_owned();
    }
    let mut channel = format!("{CHANGES_CHANNEL}_{schema}");
    // Channel names are identifiers: at most 63 bytes.
    while channel.len() > 63 {
        channel.pop();
    }
    channel
}

/// How often an instance reads the head seq from the database even without notifications (PostgreSQL).
pub const HEAD_POLL: Duration = Duration::from_secs(1);

/// The database, with the one write path.
#[derive(Debug, Clone)]
pub struct Storage {
    backend: Backend,
    /// SQLite allows one writer at a time; every write in this process takes this lock first, so writers queue
    /// here instead of failing with SQLITE_BUSY. Unused on PostgreSQL, where the counter row lock orders writers.
    write_lock: Arc<Mutex<()>>,
    feed: Arc<ChangeFeed>,
    /// This instance's name as a lease holder.
    instance: Arc<str>,
    /// The NOTIFY channel of commits (PostgreSQL).
    channel: Arc<str>,
    /// Bumped whenever an instance releases its leases (this one, or another through [`LEASES_RELEASED`]), so
    /// that waiting instances try to take them at once rather than at their next look.
    releases: Arc<watch::Sender<u64>>,
    /// The time of day for commit times, TTL, leases and retention.
    clock: Clock,
    /// The change log's epoch: drawn when the database was made (migration 0005), so that a cursor kept from
    /// another database at the same address is told apart (see [`Storage::epoch`]).
    epoch: i64,
    /// SQLite: the thread [`Storage::write`] runs on (see [`WriterThread`]). None on PostgreSQL.
    writer: Option<Arc<WriterThread>>,
}

/// SQLite's writes run on a thread of their own. A write is half a dozen hops to sqlx's SQLite worker and back; on
/// the server's runtime each hop queued behind every connection task a fan-out had just woken, so a burst of
/// mutations under a thousand subscribers crawled at a tenth of the rate a quiet server commits at (measured with
/// `cargo xtask bench`, see docs/BENCHMARKS.md). There is one writer at a time anyway.
#[derive(Debug)]
struct WriterThread {
    runtime: tokio::runtime::Handle,
    /// Dropped with the last [`Storage`] clone: the thread's runtime then ends.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl WriterThread {
    fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new().name("subsignal-writer".into()).spawn(move || {
            let _ = runtime.block_on(stopped);
        })?;
        Ok(WriterThread { runtime: handle, _stop: stop })
    }
}

/// The payload of the notification on the commit channel that says an instance released its leases.
pub const LEASES_RELEASED: &str = "leases-released";

/// How long a readiness check waits for the database.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The wire name of a change op, as the change log stores it.
pub(crate) fn op_name(op: ChangeOp) -> &'static str {
    match op {
        ChangeOp::Insert => "INSERT",
        ChangeOp::Modify => "MODIFY",
        ChangeOp::Remove => "REMOVE",
        ChangeOp::Watermark => "WATERMARK",
    }
}

/// A change-log row as stored, read by column name and checked by [`RecordRow::parse`].
#[derive(Debug, sqlx::FromRow)]
struct RecordRow {
    seq: i64,
    model: String,
    op: String,
    key: String,
    owner: String,
    version: i64,
    expired: i64,
    image: String,
    committed_at_ms: i64,
    client_mutation_id: Option<String>,
}

impl RecordRow {
    /// The record, or [`StorageError::BadRecord`] for anything a writer never stores: an unknown op (a watermark
    /// included), an `expired` flag other than 0 or 1 or on anything but a REMOVE, an image that is not a JSON object.
    fn parse(self) -> Result<ChangeRecord, StorageError> {
        let bad = |reason: String| StorageError::BadRecord { seq: self.seq, reason };
        let op = match self.op.as_str() {
            "INSERT" => ChangeOp::Insert,
            "MODIFY" => ChangeOp::Modify,
            "REMOVE" => ChangeOp::Remove,
            other => return Err(bad(format!("unknown op {other:?}"))),
        };
        let expired = match (self.expired, op) {
            (0, _) => false,
            (1, ChangeOp::Remove) => true,
            (flag, op) => return Err(bad(format!("expired = {flag} on a {} record", op_name(op)))),
        };
        let image: Value = serde_json::from_str(&self.image)?;
        if !image.is_object() {
            return Err(bad("the image is not a JSON object".into()));
        }
        Ok(ChangeRecord {
            seq: self.seq,
            model: self.model.into(),
            op,
            key: self.key,
            owner: self.owner,
            version: self.version,
            expired,
            image: Arc::new(image),
            committed_at_ms: self.committed_at_ms,
            client_mutation_id: self.client_mutation_id,
        })
    }
}

impl Storage {
    /// Opens `database` (creating the SQLite file if needed) and runs its migrations. Commit times, TTL, leases and
    /// retention read `clock`.
    pub async fn open(database: &Database, feed: Arc<ChangeFeed>, clock: Clock) -> Result<Self, StorageError> {
        let (backend, channel) = match database {
            Database::Sqlite(data_dir) => {
                let options = SqliteConnectOptions::from_str("sqlite:")?
                    .filename(data_dir.join("subsignal.db"))
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // With WAL, NORMAL keeps every committed transaction across a crash of the process (kill -9);
                    // only an OS crash or power loss may lose the last few.
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10));
                let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
                SQLITE_MIGRATIONS.run(&pool).await?;
                (Backend::Sqlite(pool), String::new())
            }
            Database::Postgres(url) => {
                let options = PgConnectOptions::from_str(url)?.application_name("subsignal");
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                // sqlx holds an advisory lock while migrating: instances starting together migrate once.
                POSTGRES_MIGRATIONS.run(&pool).await?;
                let schema: String = sqlx::query_scalar("SELECT current_schema()").fetch_one(&pool).await?;
                (Backend::Postgres(pool), changes_channel(&schema))
            }
        };
        let instance = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()).into();
        let epoch = on_pool!(&backend, |pool| {
            sqlx::query_scalar("SELECT value FROM counters WHERE name = 'epoch'").fetch_one(pool).await?
        });
        let writer = match backend {
            Backend::Sqlite(_) => Some(Arc::new(WriterThread::start().map_err(sqlx::Error::Io)?)),
            Backend::Postgres(_) => None,
        };
        let storage = Storage {
            backend,
            write_lock: Arc::new(Mutex::new(())),
            feed,
            instance,
            channel: channel.into(),
            releases: Arc::new(watch::Sender::new(0)),
            clock,
            epoch,
            writer,
        };
        let head = storage.head_seq().await?;
        storage.feed.start_at(head);
        let pruned_through = storage.pruned_through().await?;
        storage.feed.pruned_through(pruned_through);
        Ok(storage)
    }

    /// The change feed this storage publishes to.
    pub fn feed(&self) -> &Arc<ChangeFeed> {
        &self.feed
    }

    /// The clock this storage reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Whether this is the PostgreSQL backend.
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// This instance's name as a lease holder.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// On SQLite, the in-process writer lock; on PostgreSQL, nothing (the database orders writers).
    async fn single_writer(&self) -> Option<MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite(_) => Some(self.write_lock.lock().await),
            Backend::Postgres(_) => None,
        }
    }

    /// The one write path. Loads the current row of `model`'s item `key`, lets `decide` choose the write (API
    /// writes treat an expired row as absent: see [`Stored::live`]), and commits the row with its change-log record
    /// and idempotency result in one transaction. Nothing is written when `decide` fails.
    ///
    /// On SQLite the write runs on the [`WriterThread`], and completes even if the caller stops waiting for it.
    pub async fn write<F>(
        &self,
        model: &str,
        idempotency: Option<IdempotencyKey>,
        key: &str,
        decide: F,
    ) -> Result<WriteOutcome, StorageError>
    where
        F: FnOnce(Option<Stored>) -> Result<Write, StorageError> + Send + 'static,
    {
        let Some(writer) = &self.writer else { return self.write_here(model, idempotency, key, decide).await };
        let (this, model, key) = (self.clone(), model.to_owned(), key.to_owned());
        // In the caller's span, so that what the write logs names its request.
        let write = async move { this.write_here(&model, idempotency, &key, decide).await };
        match writer.runtime.spawn(tracing::Instrument::in_current_span(write)).await {
            Ok(outcome) => outcome,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: the writer's runtime is gone, which only the end of the process brings about.
            Err(_) => Err(StorageError::Db(sqlx::Error::PoolClosed)),
        }
    }

    async fn write_here<F>(
        &self,
        model: &str,
        idempotency: Option<IdempotencyKey>,
        key: &str,
        decide: F,
    ) -> Result<WriteOutcome, StorageError>
    where
        F: FnOnce(Option<Stored>) -> Result<Write, StorageError>,
    {
        let _writer = self.single_writer().await;
        let pg = self.is_postgres();
        let outcome = on_pool!(&self.backend, |pool| in_transaction!(pool, |tx| {
            if let Some(idem) = &idempotency {
                if pg {
                    // Two instances replaying one client mutation id at once queue here; the second then finds
                    // the first's result below instead of failing on the primary key.
                    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                        .bind(format!("{}\u{1f}{}", idem.scope, idem.id))
                        .execute(&mut *tx)
                        .await?;
                }
                let previous: Option<String> = sqlx::query_scalar(
                    "SELECT result FROM mutation_results WHERE owner = $1 AND client_mutation_id = $2",
                )
                .bind(&idem.scope)
                .bind(&idem.id)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(result) = previous {
                    return Ok(WriteOutcome::Replayed(serde_json::from_str(&result)?));
                }
            }
            let now = self.clock.now_ms();
            // PostgreSQL: lock the row, so a concurrent writer of the same key (another instance's reaper, say)
            // waits and then sees what this one wrote. SQLite has one writer anyway and no FOR UPDATE.
            let select = if pg {
                "SELECT owner, version, expires_at, body FROM items WHERE model = $1 AND id = $2 FOR UPDATE"
            } else {
                "SELECT owner, version, expires_at, body FROM items WHERE model = $1 AND id = $2"
            };
            let current: Option<(String, i64, Option<i64>, String)> =
                sqlx::query_as(select).bind(model).bind(key).fetch_optional(&mut *tx).await?;
            let current = match current {
                Some((owner, version, expires_at, body)) => Some(Stored {
                    item: Item { owner, version, expires_at, image: serde_json::from_str(&body)? },
                    expired: expires_at.is_some_and(|at| at * 1000 <= now),
                }),
                None => None,
            };
            let write = decide(current)?;
            let (op, item, expired) = match write {
                Write::Insert(item) => {
                    // A row may still exist if it expired but was not reaped yet: replace it.
                    sqlx::query("DELETE FROM items WHERE model = $1 AND id = $2")
                        .bind(model)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO items (model, id, owner, version, expires_at, body) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(model)
                    .bind(key)
                    .bind(&item.owner)
                    .bind(item.version)
                    .bind(item.expires_at)
                    .bind(serde_json::to_string(&item.image)?)
                    .execute(&mut *tx)
                    .await?;
                    (ChangeOp::Insert, item, false)
                }
                Write::Update(item) => {
                    sqlx::query(
                        "UPDATE items SET owner = $1, version = $2, expires_at = $3, body = $4 \
                         WHERE model = $5 AND id = $6",
                    )
                    .bind(&item.owner)
                    .bind(item.version)
                    .bind(item.expires_at)
                    .bind(serde_json::to_string(&item.image)?)
                    .bind(model)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
                    (ChangeOp::Modify, item, false)
                }
                Write::Delete { item, expired } => {
                    sqlx::query("DELETE FROM items WHERE model = $1 AND id = $2")
                        .bind(model)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                    (ChangeOp::Remove, item, expired)
                }
            };
            // The seq, as the last lock of the transaction (see the module docs).
            let seq: i64 =
                sqlx::query_scalar("UPDATE counters SET value = value + 1 WHERE name = 'seq' RETURNING value")
                    .fetch_one(&mut *tx)
                    .await?;
            let image = serde_json::to_string(&item.image)?;
            sqlx::query(
                "INSERT INTO change_log (seq, model, op, key, owner, version, expired, image, committed_at_ms, \
                 client_mutation_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(seq)
            .bind(model)
            .bind(op_name(op))
            .bind(key)
            .bind(&item.owner)
            .bind(item.version)
            .bind(expired as i64)
            .bind(&image)
            .bind(now)
            .bind(idempotency.as_ref().map(|i| &i.id))
            .execute(&mut *tx)
            .await?;
            if let Some(idem) = &idempotency {
                sqlx::query(
                    "INSERT INTO mutation_results (owner, client_mutation_id, result, created_at_ms) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&idem.scope)
                .bind(&idem.id)
                .bind(&image)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            if pg {
                // Delivered to every listening instance when (and only if) this transaction commits.
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(&*self.channel)
                    .bind(seq.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            WriteOutcome::Committed(ChangeRecord {
                seq,
                model: model.into(),
                op,
                key: key.to_owned(),
                owner: item.owner,
                version: item.version,
                expired,
                image: Arc::new(item.image),
                committed_at_ms: now,
                client_mutation_id: idempotency.map(|i| i.id),
            })
        }));
        // SQLite: still under the write lock, so the feed sees records in seq order. PostgreSQL: writers of this
        // instance may publish out of order; the feed keeps only a contiguous window and its head never moves back.
        if let WriteOutcome::Committed(record) = &outcome {
            self.feed.publish(record.clone());
        }
        Ok(outcome)
    }

    /// Reads one live (unexpired) item's image.
    pub async fn get(&self, model: &str, id: &str) -> Result<Option<Value>, StorageError> {
        let body: Option<String> = on_pool!(&self.backend, |pool| {
            sqlx::query_scalar(
                "SELECT body FROM items WHERE model = $1 AND id = $2 \
                 AND (expires_at IS NULL OR expires_at * 1000 > $3)",
            )
            .bind(model)
            .bind(id)
            .bind(self.clock.now_ms())
            .fetch_optional(pool)
            .await?
        });
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    /// Reads a page of `model`'s live items by id, optionally of one owner, with the seq it is consistent with.
    pub async fn list(
        &self,
        model: &str,
        owner: Option<&str>,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Page, StorageError> {
        let pg = self.is_postgres();
        let (seq, rows): (i64, Vec<(String, String)>) = on_pool!(&self.backend, |pool| {
            // One read transaction that sees one snapshot, so `seq` and the rows agree: SQLite's WAL gives that to
            // any read transaction; PostgreSQL needs REPEATABLE READ (READ COMMITTED takes a snapshot per statement).
            let mut tx = pool.begin().await?;
            if pg {
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
            }
            let seq: i64 =
                sqlx::query_scalar("SELECT value FROM counters WHERE name = 'seq'").fetch_one(&mut *tx).await?;
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT id, body FROM items WHERE model = $1 AND ($2 IS NULL OR owner = $2) \
                 AND ($3 IS NULL OR id > $3) AND (expires_at IS NULL OR expires_at * 1000 > $4) ORDER BY id LIMIT $5",
            )
            .bind(model)
            .bind(owner)
            .bind(after_id)
            .bind(self.clock.now_ms())
            .bind(i64::from(limit) + 1)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            (seq, rows)
        });
        let more = rows.len() > limit as usize;
        let last_id_if_more =
            if more { rows.get((limit as usize).saturating_sub(1)).map(|(id, _)| id.clone()) } else { None };
        let items = rows
            .iter()
            .take(limit as usize)
            .map(|(_, body)| serde_json::from_str::<Value>(body))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, last_id_if_more, seq })
    }

    /// Change-log records with seq > `after`, in seq order, at most `limit`.
    pub async fn changes_after(&self, after: i64, limit: u32) -> Result<Vec<ChangeRecord>, StorageError> {
        let rows: Vec<RecordRow> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(
                "SELECT seq, model, op, key, owner, version, expired, image, committed_at_ms, client_mutation_id \
                 FROM change_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(RecordRow::parse).collect()
    }

    /// The last allocated (and, since seq order is commit order, the last committed) seq.
    pub async fn head_seq(&self) -> Result<i64, StorageError> {
        Ok(on_pool!(&self.backend, |pool| {
            sqlx::query_scalar("SELECT value FROM counters WHERE name = 'seq'").fetch_one(pool).await?
        }))
    }

    /// Reads the head seq from the database and moves this instance's feed up to it (records committed through
    /// other instances). Returns the head.
    pub async fn sync_head(&self) -> Result<i64, StorageError> {
        let head = self.head_seq().await?;
        self.feed.advance_head(head);
        Ok(self.feed.head())
    }

    /// The change log's epoch: a random number drawn once, when the database was made, the same for every instance
    /// on it. Clients get it in `connection_ack`: a cursor kept with another epoch belongs to another log.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// The highest seq removed by retention (0 when nothing was pruned).
    pub async fn pruned_through(&self) -> Result<i64, StorageError> {
        Ok(on_pool!(&self.backend, |pool| {
            sqlx::query_scalar("SELECT value FROM counters WHERE name = 'pruned_through'").fetch_one(pool).await?
        }))
    }

    /// Deletes change-log records committed before `cutoff_ms`; returns how many.
    pub async fn prune(&self, cutoff_ms: i64) -> Result<u64, StorageError> {
        let _writer = self.single_writer().await;
        let pruned = on_pool!(&self.backend, |pool| in_transaction!(pool, |tx| {
            let max: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM change_log WHERE committed_at_ms < $1")
                .bind(cutoff_ms)
                .fetch_one(&mut *tx)
                .await?;
            let Some(max) = max else { return Ok((0, 0)) };
            let deleted = sqlx::query("DELETE FROM change_log WHERE seq <= $1").bind(max).execute(&mut *tx).await?;
            sqlx::query(
                "UPDATE counters SET value = CASE WHEN value > $1 THEN value ELSE $1 END WHERE name = 'pruned_through'",
            )
            .bind(max)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM mutation_results WHERE created_at_ms < $1")
                .bind(cutoff_ms)
                .execute(&mut *tx)
                .await?;
            (max, deleted.rows_affected())
        }));
        self.feed.pruned_through(pruned.0);
        Ok(pruned.1)
    }

    /// The model and id of rows whose TTL has passed, oldest first, of every model.
    pub async fn expired_items(&self, limit: u32) -> Result<Vec<(String, String)>, StorageError> {
        Ok(on_pool!(&self.backend, |pool| {
            sqlx::query_as(
                "SELECT model, id FROM items WHERE expires_at IS NOT NULL AND expires_at * 1000 <= $1 \
                 ORDER BY expires_at LIMIT $2",
            )
            .bind(self.clock.now_ms())
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }))
    }

    /// Deletes an expired row through the write path, as a REMOVE marked `expired`. Returns false if it was gone or
    /// is no longer expired (a writer replaced it meanwhile). Safe with several instances reaping at once: the write
    /// path locks the row, so the second reaper finds it gone.
    pub async fn reap(&self, model: &str, id: &str) -> Result<bool, StorageError> {
        let outcome = self
            .write(model, None, id, |current| match current {
                Some(Stored { item, expired: true }) => Ok(Write::Delete { item, expired: true }),
                _ => Err(DomainError::NotFound.into()),
            })
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(StorageError::Domain(DomainError::NotFound)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A consumer's checkpoint: the last seq it finished (0 when new).
    pub async fn checkpoint(&self, consumer: &str) -> Result<i64, StorageError> {
        let seq: Option<i64> = on_pool!(&self.backend, |pool| {
            sqlx::query_scalar("SELECT seq FROM stream_checkpoints WHERE consumer = $1")
                .bind(consumer)
                .fetch_optional(pool)
                .await?
        });
        Ok(seq.unwrap_or(0))
    }

    /// Moves a consumer's checkpoint forward to `seq` (never back).
    pub async fn set_checkpoint(&self, consumer: &str, seq: i64) -> Result<(), StorageError> {
        let _writer = self.single_writer().await;
        on_pool!(&self.backend, |pool| {
            sqlx::query(
                "INSERT INTO stream_checkpoints (consumer, seq, updated_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (consumer) DO UPDATE SET updated_at_ms = excluded.updated_at_ms, \
                 seq = CASE WHEN excluded.seq > stream_checkpoints.seq THEN excluded.seq ELSE stream_checkpoints.seq END",
            )
            .bind(consumer)
            .bind(seq)
            .bind(self.clock.now_ms())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Takes or renews the lease named `name` for this instance until `ttl` from now. Returns whether this instance
    /// holds it: false while another instance holds an unexpired lease. One statement, so two instances cannot
    /// both take an expired lease.
    pub async fn acquire_lease(&self, name: &str, ttl: Duration) -> Result<bool, StorageError> {
        let _writer = self.single_writer().await;
        let now = self.clock.now_ms();
        let result = on_pool!(&self.backend, |pool| {
            sqlx::query(
                "INSERT INTO stream_leases (consumer, holder, expires_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (consumer) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms \
                 WHERE stream_leases.holder = excluded.holder OR stream_leases.expires_at_ms <= $4",
            )
            .bind(name)
            .bind(&*self.instance)
            .bind(now + ttl.as_millis() as i64)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(result == 1)
    }

    /// Gives up the lease named `name` if this instance holds it, so another instance may take it at once.
    pub async fn release_lease(&self, name: &str) -> Result<(), StorageError> {
        self.release(Some(name)).await
    }

    /// Gives up every lease this instance holds (at shutdown), and tells the other instances, which take them at
    /// once instead of waiting for them to lapse.
    pub async fn release_leases(&self) -> Result<(), StorageError> {
        self.release(None).await
    }

    /// Releases the lease `name`, or every lease (`None`), this instance holds.
    async fn release(&self, name: Option<&str>) -> Result<(), StorageError> {
        let _writer = self.single_writer().await;
        on_pool!(&self.backend, |pool| in_transaction!(pool, |tx| {
            sqlx::query(
                "UPDATE stream_leases SET expires_at_ms = 0 WHERE holder = $1 AND ($2 IS NULL OR consumer = $2)",
            )
            .bind(&*self.instance)
            .bind(name)
            .execute(&mut *tx)
            .await?;
            if let Backend::Postgres(_) = &self.backend {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(&*self.channel)
                    .bind(LEASES_RELEASED)
                    .execute(&mut *tx)
                    .await?;
            }
        }));
        self.releases.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Changes whenever leases are released (by this instance or, on PostgreSQL, another): a lease this instance
    /// waits for may be free now.
    pub fn lease_releases(&self) -> watch::Receiver<u64> {
        self.releases.subscribe()
    }

    /// Whether the database answers and every migration this build knows has been applied: `Err` says what is
    /// wrong. Waits at most [`READY_TIMEOUT`].
    pub async fn check_ready(&self) -> Result<(), String> {
        let migrator = match self.backend {
            Backend::Sqlite(_) => &SQLITE_MIGRATIONS,
            Backend::Postgres(_) => &POSTGRES_MIGRATIONS,
        };
        let applied = async {
            let applied: Vec<i64> = on_pool!(&self.backend, |pool| {
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success").fetch_all(pool).await?
            });
            Ok::<_, sqlx::Error>(applied)
        };
        let applied = match tokio::time::timeout(READY_TIMEOUT, applied).await {
            Err(_) => return Err(format!("the database did not answer within {} ms", READY_TIMEOUT.as_millis())),
            Ok(Err(e)) => return Err(format!("the database does not answer: {e}")),
            Ok(Ok(applied)) => applied,
        };
        let missing: Vec<String> = migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
            .map(|m| format!("{} ({})", m.version, m.description))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("migrations not applied: {} (run `subsignal migrate`)", missing.join(", ")))
        }
    }

    /// Closes the database's connections, waiting for those in use to be returned (at shutdown, after the writers
    /// stopped).
    pub async fn close(&self) {
        on_pool!(&self.backend, |pool| pool.close().await)
    }

    /// Records a record a consumer gave up on.
    pub async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), StorageError> {
        let _writer = self.single_writer().await;
        on_pool!(&self.backend, |pool| {
            sqlx::query(
                "INSERT INTO dead_letters (consumer, seq, key, error, attempts, failed_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&letter.consumer)
            .bind(letter.seq)
            .bind(&letter.key)
            .bind(&letter.error)
            .bind(letter.attempts)
            .bind(self.clock.now_ms())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The dead letters of a consumer, by seq.
    pub async fn dead_letters(&self, consumer: &str) -> Result<Vec<DeadLetter>, StorageError> {
        let rows: Vec<(String, i64, String, String, i64)> = on_pool!(&self.backend, |pool| {
            sqlx::query_as(
                "SELECT consumer, seq, key, error, attempts FROM dead_letters WHERE consumer = $1 ORDER BY seq, id",
            )
            .bind(consumer)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(consumer, seq, key, error, attempts)| DeadLetter { consumer, seq, key, error, attempts })
            .collect())
    }

    /// Keeps this instance's feed up with commits made through other instances, until `shutdown` turns true
    /// (PostgreSQL; returns at once on SQLite, where this process is the only writer). Notifications on
    /// [`CHANGES_CHANNEL`] are only the wake-up; the database is the truth: each wake-up, each (re)connect of the
    /// listener and each [`HEAD_POLL`] reads the head seq from the counter, so a lost notification only delays.
    pub async fn follow_commits(self, mut shutdown: watch::Receiver<bool>) {
        let Backend::Postgres(pool) = &self.backend else { return };
        let listen = async {
            loop {
                let mut listener = match PgListener::connect_with(pool).await {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for commits of other instances; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if let Err(e) = listener.listen(&self.channel).await {
                    tracing::warn!(error = %e, "LISTEN failed; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                // Listening now: a release announced before (while this instance started, or while the listener
                // was down) reached no one here, but is in the database, so whoever waits for a lease looks again.
                self.releases.send_modify(|n| *n += 1);
                loop {
                    // Listening now: whatever committed before is in the database.
                    if let Err(e) = self.sync_head().await {
                        tracing::warn!(error = %e, "cannot read the head seq");
                    }
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(note)) => {
                                // A wake-up only: take the head from the database, once for all queued notes.
                                let mut released = note.payload() == LEASES_RELEASED;
                                while let Some(note) = listener.next_buffered() {
                                    released |= note.payload() == LEASES_RELEASED;
                                }
                                if released {
                                    self.releases.send_modify(|n| *n += 1);
                                }
                                if let Err(e) = self.sync_head().await {
                                    tracing::warn!(error = %e, "cannot read the head seq");
                                }
                            }
                            // The connection dropped (notifications may be lost); it reconnects on the next call.
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(error = %e, "commit listener failed; retrying in 1 s");
                                tokio::time::sleep(Duration::from_secs(1)).await;
                                break;
                            }
                        }
                    }
                }
            }
        };
        let poll = async {
            loop {
                tokio::time::sleep(HEAD_POLL).await;
                if let Err(e) = self.sync_head().await {
                    tracing::warn!(error = %e, "cannot read the head seq");
                }
            }
        };
        tokio::select! {
            _ = listen => {}
            _ = poll => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(op: &str, expired: i64, image: &str) -> RecordRow {
        RecordRow {
            seq: 7,
            model: "Note".into(),
            op: op.into(),
            key: "n1".into(),
            owner: "alice".into(),
            version: 2,
            expired,
            image: image.into(),
            committed_at_ms: 1,
            client_mutation_id: None,
        }
    }

    /// SQLite's writes run on their own thread: a caller that stops waiting (a dropped request, a closed
    /// connection) neither cancels the write halfway nor loses it.
    #[tokio::test]
    async fn a_write_completes_when_its_caller_stops_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::Sqlite(dir.path().into());
        let storage = Storage::open(&database, ChangeFeed::new(8), Clock::system()).await.unwrap();
        let mut head = storage.feed().watch();
        let item = Item { owner: "alice".into(), version: 1, expires_at: None, image: serde_json::json!({"id": "n1"}) };
        {
            // Polled once (the write is handed to its thread, and is then under way there), then dropped.
            let mut write = std::pin::pin!(storage.write("Note", None, "n1", move |_| Ok(Write::Insert(item))));
            let polled =
                std::future::poll_fn(|cx| std::task::Poll::Ready(std::future::Future::poll(write.as_mut(), cx))).await;
            assert!(polled.is_pending(), "a write takes a round trip to SQLite, at least");
        }
        let committed = tokio::time::timeout(Duration::from_secs(10), head.wait_for(|&seq| seq == 1)).await;
        assert!(committed.is_ok_and(|seen| seen.is_ok()), "the dropped write never committed");
        assert_eq!(storage.get("Note", "n1").await.unwrap(), Some(serde_json::json!({"id": "n1"})));
    }

    #[test]
    fn stored_records_parse_into_checked_types() {
        let record = row("REMOVE", 1, r#"{"id":"n1"}"#).parse().unwrap();
        assert_eq!((&*record.model, record.op, record.expired), ("Note", ChangeOp::Remove, true));
        assert_eq!(record.image["id"], "n1");
    }

    #[test]
    fn anything_a_writer_never_stores_fails_loudly() {
        for (op, expired, image, reason) in [
            ("DELETE", 0, "{}", "unknown op \"DELETE\""),
            ("WATERMARK", 0, "{}", "unknown op \"WATERMARK\""),
            ("MODIFY", 1, "{}", "expired = 1 on a MODIFY record"),
            ("REMOVE", 2, "{}", "expired = 2 on a REMOVE record"),
            ("INSERT", 0, "[1]", "the image is not a JSON object"),
        ] {
            match row(op, expired, image).parse() {
                Err(StorageError::BadRecord { seq: 7, reason: got }) => assert_eq!(got, reason),
                other => panic!("{op}/{expired}/{image}: expected BadRecord, got {other:?}"),
            }
        }
        assert!(matches!(row("INSERT", 0, "{").parse(), Err(StorageError::Corrupt(_))));
    }
}
