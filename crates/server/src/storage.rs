//! Storage: the order table, the change log, idempotency records, checkpoints and dead letters, in SQLite (WAL).
//!
//! [`Storage::write`] is the one write path: every write (API, stream worker, TTL reaper) stores the row and appends a
//! change-log record with the next gap-free `seq` in the same transaction, under one writer at a time, then publishes
//! the record to the [`ChangeFeed`] before the next writer may start. That is why seq order is commit order.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use subsignal_protocol::ChangeOp;
use tokio::sync::Mutex;

use crate::model::{FieldError, Order};
use crate::stream::ChangeFeed;

/// One change-log record: the DynamoDB Streams record analogue.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// Global, gap-free, in commit order.
    pub seq: i64,
    /// INSERT, MODIFY or REMOVE.
    pub op: ChangeOp,
    /// The order id.
    pub key: String,
    /// The order's owner, for filtering.
    pub owner: String,
    /// The version after the write (for REMOVE, the version removed).
    pub version: i64,
    /// True when a REMOVE was a TTL expiry.
    pub expired: bool,
    /// The new image (for REMOVE, the last image).
    pub image: Arc<Order>,
    /// Commit time, milliseconds since the epoch.
    pub committed_at_ms: i64,
}

/// What a write decides to do with the current row.
#[derive(Debug)]
pub enum Write {
    /// Store a new row.
    Insert(Order),
    /// Replace the row (the version must already be bumped).
    Update(Order),
    /// Delete the row.
    Delete {
        /// The last image.
        order: Order,
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
    /// `expectedVersion` is stale; carries the current item.
    #[error("version conflict: the order is at version {}", .0.version)]
    Conflict(Box<Order>),
    /// No such item visible to the caller.
    #[error("order not found")]
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
}

/// The row a write found.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The stored item.
    pub order: Order,
    /// Whether its TTL has passed (it is hidden from reads and waits for the reaper).
    pub expired: bool,
}

impl Stored {
    /// The item if it has not expired: what API writes see.
    pub fn live(current: Option<Stored>) -> Option<Order> {
        current.filter(|s| !s.expired).map(|s| s.order)
    }
}

/// The result of a successful write.
#[derive(Debug, Clone)]
pub enum WriteOutcome {
    /// Written now, as `record`.
    Committed(ChangeRecord),
    /// The client mutation id was seen before: the original result, nothing written.
    Replayed(Order),
}

impl WriteOutcome {
    /// The resulting order.
    pub fn order(&self) -> &Order {
        match self {
            WriteOutcome::Committed(record) => &record.image,
            WriteOutcome::Replayed(order) => order,
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

/// A page of orders and the seq it is consistent with.
#[derive(Debug, Clone)]
pub struct Page {
    /// The orders, by id.
    pub items: Vec<Order>,
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

/// The database, with the one write path.
#[derive(Debug, Clone)]
pub struct Storage {
    pool: SqlitePool,
    /// SQLite allows one writer at a time; every write in this process takes this lock first, so writers queue
    /// here instead of failing with SQLITE_BUSY.
    write_lock: Arc<Mutex<()>>,
    feed: Arc<ChangeFeed>,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn op_name(op: ChangeOp) -> &'static str {
    match op {
        ChangeOp::Insert => "INSERT",
        ChangeOp::Modify => "MODIFY",
        ChangeOp::Remove => "REMOVE",
        ChangeOp::Watermark => "WATERMARK",
    }
}

fn parse_op(name: &str) -> ChangeOp {
    match name {
        "INSERT" => ChangeOp::Insert,
        "MODIFY" => ChangeOp::Modify,
        _ => ChangeOp::Remove,
    }
}

fn record_from_row(row: &SqliteRow) -> Result<ChangeRecord, StorageError> {
    Ok(ChangeRecord {
        seq: row.try_get("seq")?,
        op: parse_op(row.try_get::<&str, _>("op")?),
        key: row.try_get("key")?,
        owner: row.try_get("owner")?,
        version: row.try_get("version")?,
        expired: row.try_get::<i64, _>("expired")? != 0,
        image: Arc::new(serde_json::from_str(row.try_get::<&str, _>("image")?)?),
        committed_at_ms: row.try_get("committed_at_ms")?,
    })
}

impl Storage {
    /// Opens (creating if needed) `subsignal.db` in `data_dir` and runs migrations.
    pub async fn open(data_dir: &Path, feed: Arc<ChangeFeed>) -> Result<Self, StorageError> {
        let path = data_dir.join("subsignal.db");
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL keeps every committed transaction across a crash of the process (kill -9); only an
            // OS crash or power loss may lose the last few.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let storage = Storage { pool, write_lock: Arc::new(Mutex::new(())), feed };
        let head = storage.head_seq().await?;
        storage.feed.start_at(head);
        Ok(storage)
    }

    /// The change feed this storage publishes to.
    pub fn feed(&self) -> &Arc<ChangeFeed> {
        &self.feed
    }

    /// The one write path. Loads the current row of `key`, lets `decide` choose the write (API writes treat an
    /// expired row as absent: see [`Stored::live`]), and commits the row with its change-log record and idempotency result in one transaction.
    pub async fn write<F>(
        &self,
        idempotency: Option<IdempotencyKey>,
        key: &str,
        decide: F,
    ) -> Result<WriteOutcome, StorageError>
    where
        F: FnOnce(Option<Stored>) -> Result<Write, DomainError>,
    {
        let _writer = self.write_lock.lock().await;
        let mut tx = self.pool.begin().await?;
        if let Some(idem) = &idempotency {
            let previous: Option<String> =
                sqlx::query_scalar("SELECT result FROM mutation_results WHERE owner = ? AND client_mutation_id = ?")
                    .bind(&idem.scope)
                    .bind(&idem.id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(result) = previous {
                return Ok(WriteOutcome::Replayed(serde_json::from_str(&result)?));
            }
        }
        let now = now_ms();
        let current: Option<(String, Option<i64>)> = sqlx::query_as("SELECT body, expires_at FROM orders WHERE id = ?")
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        let current = match current {
            Some((body, expires_at)) => Some(Stored {
                order: serde_json::from_str(&body)?,
                expired: expires_at.is_some_and(|at| at * 1000 <= now),
            }),
            None => None,
        };
        let write = decide(current)?;
        let (op, order, expired) = match write {
            Write::Insert(order) => {
                // A row may still exist if it expired but was not reaped yet: replace it.
                sqlx::query("DELETE FROM orders WHERE id = ?").bind(key).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO orders (id, owner, version, expires_at, body) VALUES (?, ?, ?, ?, ?)")
                    .bind(key)
                    .bind(&order.owner)
                    .bind(order.version)
                    .bind(order.expires_at)
                    .bind(serde_json::to_string(&order)?)
                    .execute(&mut *tx)
                    .await?;
                (ChangeOp::Insert, order, false)
            }
            Write::Update(order) => {
                sqlx::query("UPDATE orders SET version = ?, expires_at = ?, body = ? WHERE id = ?")
                    .bind(order.version)
                    .bind(order.expires_at)
                    .bind(serde_json::to_string(&order)?)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
                (ChangeOp::Modify, order, false)
            }
            Write::Delete { order, expired } => {
                sqlx::query("DELETE FROM orders WHERE id = ?").bind(key).execute(&mut *tx).await?;
                (ChangeOp::Remove, order, expired)
            }
        };
        let seq: i64 = sqlx::query_scalar("UPDATE counters SET value = value + 1 WHERE name = 'seq' RETURNING value")
            .fetch_one(&mut *tx)
            .await?;
        let image = serde_json::to_string(&order)?;
        sqlx::query(
            "INSERT INTO change_log (seq, op, key, owner, version, expired, image, committed_at_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(seq)
        .bind(op_name(op))
        .bind(key)
        .bind(&order.owner)
        .bind(order.version)
        .bind(expired as i64)
        .bind(&image)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(idem) = &idempotency {
            sqlx::query(
                "INSERT INTO mutation_results (owner, client_mutation_id, result, created_at_ms) VALUES (?, ?, ?, ?)",
            )
            .bind(&idem.scope)
            .bind(&idem.id)
            .bind(&image)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let record = ChangeRecord {
            seq,
            op,
            key: key.to_owned(),
            owner: order.owner.clone(),
            version: order.version,
            expired,
            image: Arc::new(order),
            committed_at_ms: now,
        };
        // Still under the write lock: the feed sees records in seq order.
        self.feed.publish(record.clone());
        Ok(WriteOutcome::Committed(record))
    }

    /// Reads one live (unexpired) order.
    pub async fn get(&self, id: &str) -> Result<Option<Order>, StorageError> {
        let body: Option<String> = sqlx::query_scalar(
            "SELECT body FROM orders WHERE id = ? AND (expires_at IS NULL OR expires_at * 1000 > ?)",
        )
        .bind(id)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    /// Reads a page of live orders by id, optionally of one owner, with the seq it is consistent with.
    pub async fn list(&self, owner: Option<&str>, after_id: Option<&str>, limit: u32) -> Result<Page, StorageError> {
        // One read transaction: in WAL mode it sees one snapshot, so `seq` and the rows agree.
        let mut tx = self.pool.begin().await?;
        let seq: i64 = sqlx::query_scalar("SELECT value FROM counters WHERE name = 'seq'").fetch_one(&mut *tx).await?;
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM orders WHERE (?1 IS NULL OR owner = ?1) AND (?2 IS NULL OR id > ?2) \
             AND (expires_at IS NULL OR expires_at * 1000 > ?3) ORDER BY id LIMIT ?4",
        )
        .bind(owner)
        .bind(after_id)
        .bind(now_ms())
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut items = rows.iter().map(|b| serde_json::from_str::<Order>(b)).collect::<Result<Vec<_>, _>>()?;
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let last_id_if_more = if more { items.last().map(|o| o.id.to_string()) } else { None };
        Ok(Page { items, last_id_if_more, seq })
    }

    /// Change-log records with seq > `after`, in seq order, at most `limit`.
    pub async fn changes_after(&self, after: i64, limit: u32) -> Result<Vec<ChangeRecord>, StorageError> {
        let rows = sqlx::query("SELECT * FROM change_log WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// The last allocated seq.
    pub async fn head_seq(&self) -> Result<i64, StorageError> {
        Ok(sqlx::query_scalar("SELECT value FROM counters WHERE name = 'seq'").fetch_one(&self.pool).await?)
    }

    /// The highest seq removed by retention (0 when nothing was pruned).
    pub async fn pruned_through(&self) -> Result<i64, StorageError> {
        Ok(sqlx::query_scalar("SELECT value FROM counters WHERE name = 'pruned_through'").fetch_one(&self.pool).await?)
    }

    /// Deletes change-log records committed before `cutoff_ms`; returns how many.
    pub async fn prune(&self, cutoff_ms: i64) -> Result<u64, StorageError> {
        let _writer = self.write_lock.lock().await;
        let mut tx = self.pool.begin().await?;
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM change_log WHERE committed_at_ms < ?")
            .bind(cutoff_ms)
            .fetch_one(&mut *tx)
            .await?;
        let Some(max) = max else { return Ok(0) };
        let deleted = sqlx::query("DELETE FROM change_log WHERE seq <= ?").bind(max).execute(&mut *tx).await?;
        sqlx::query("UPDATE counters SET value = MAX(value, ?) WHERE name = 'pruned_through'")
            .bind(max)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM mutation_results WHERE created_at_ms < ?").bind(cutoff_ms).execute(&mut *tx).await?;
        tx.commit().await?;
        self.feed.pruned_through(max);
        Ok(deleted.rows_affected())
    }

    /// Ids of rows whose TTL has passed, oldest first.
    pub async fn expired_ids(&self, limit: u32) -> Result<Vec<String>, StorageError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM orders WHERE expires_at IS NOT NULL AND expires_at * 1000 <= ? ORDER BY expires_at LIMIT ?",
        )
        .bind(now_ms())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes an expired row through the write path, as a REMOVE marked `expired`. Returns false if it was gone or
    /// is no longer expired (a writer replaced it meanwhile).
    pub async fn reap(&self, id: &str) -> Result<bool, StorageError> {
        let outcome = self
            .write(None, id, |current| match current {
                Some(Stored { order, expired: true }) => Ok(Write::Delete { order, expired: true }),
                _ => Err(DomainError::NotFound),
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
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM stream_checkpoints WHERE consumer = ?")
            .bind(consumer)
            .fetch_optional(&self.pool)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    /// Moves a consumer's checkpoint forward to `seq`.
    pub async fn set_checkpoint(&self, consumer: &str, seq: i64) -> Result<(), StorageError> {
        let _writer = self.write_lock.lock().await;
        sqlx::query(
            "INSERT INTO stream_checkpoints (consumer, seq, updated_at_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT (consumer) DO UPDATE SET seq = MAX(seq, ?2), updated_at_ms = ?3",
        )
        .bind(consumer)
        .bind(seq)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a record a consumer gave up on.
    pub async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), StorageError> {
        let _writer = self.write_lock.lock().await;
        sqlx::query(
            "INSERT INTO dead_letters (consumer, seq, key, error, attempts, failed_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&letter.consumer)
        .bind(letter.seq)
        .bind(&letter.key)
        .bind(&letter.error)
        .bind(letter.attempts)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The dead letters of a consumer, by seq.
    pub async fn dead_letters(&self, consumer: &str) -> Result<Vec<DeadLetter>, StorageError> {
        let rows =
            sqlx::query("SELECT consumer, seq, key, error, attempts FROM dead_letters WHERE consumer = ? ORDER BY seq")
                .bind(consumer)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(DeadLetter {
                    consumer: r.try_get("consumer")?,
                    seq: r.try_get("seq")?,
                    key: r.try_get("key")?,
                    error: r.try_get("error")?,
                    attempts: r.try_get("attempts")?,
                })
            })
            .collect()
    }
}
