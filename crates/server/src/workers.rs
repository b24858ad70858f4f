//! Stream workers (the Lambda analogue) and the background jobs: a consumer framework over the change log with a
//! checkpoint per consumer, batches, bounded retries with backoff and a dead-letter table; the order-processing
//! worker; the TTL reaper; and change-log retention.
//!
//! Delivery is at least once: a checkpoint moves only after its whole batch was handled, so a crash replays the
//! batch, and handlers are idempotent by the record's seq. A record that fails is retried, then dead-lettered; a
//! database that cannot serve (full, read-only, restarting: [`HandlerError::Unavailable`]) is no fault of the record,
//! so the batch stops there and runs again from the checkpoint. Records of different keys run in parallel (up to
//! `parallelism`); records of one key run in order.
//!
//! With several server instances on one PostgreSQL database, each consumer (and the reaper and the pruner) runs only
//! on the instance holding its lease (`stream_leases`): the holder renews it while it works, and when an instance
//! dies its lease expires and another instance takes over from the checkpoint in the database; when one stops, it
//! releases its leases (`RunningServer::shutdown`) and a waiting instance takes them at once. A holder that stalls
//! past its lease may overlap with the next holder for one batch; that is the at-least-once case handlers already
//! tolerate.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::storage::{ChangeRecord, DeadLetter, Storage, StorageError};
use crate::stream::{read_after, ReadError};
use crate::{orders, telemetry};
use subsignal_protocol::ChangeOp;

/// A boxed future, for handlers.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Handles one record; see [`HandlerError`] for what a failure leads to.
pub type Handler = Arc<dyn Fn(ChangeRecord) -> BoxFuture<Result<(), HandlerError>> + Send + Sync>;

/// Why a handler failed on a record.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The record cannot be handled: it is retried with backoff, then dead-lettered.
    #[error("{0}")]
    Record(String),
    /// The database cannot serve now ([`StorageError::unavailable`]): not the record's fault, so it is not
    /// dead-lettered; the batch stops and runs again from the checkpoint once the database answers.
    #[error(transparent)]
    Unavailable(StorageError),
}

impl From<String> for HandlerError {
    fn from(reason: String) -> Self {
        HandlerError::Record(reason)
    }
}

impl From<StorageError> for HandlerError {
    fn from(error: StorageError) -> Self {
        match error.unavailable() {
            Some(_) => HandlerError::Unavailable(error),
            None => HandlerError::Record(error.to_string()),
        }
    }
}

/// How a consumer runs.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Unique name; its checkpoint is stored under it.
    pub name: String,
    /// Records read per batch.
    pub batch_size: u32,
    /// Keys handled at once (Lambda's parallelization factor).
    pub parallelism: usize,
    /// Attempts per record before it is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt.
    pub backoff: Duration,
    /// How long the consumer's lease lasts without renewal: how soon another instance takes over a dead one's work.
    pub lease: Duration,
}

/// Runs a consumer until `shutdown` turns true, consuming batches only while this instance holds its lease. A batch
/// under way when `shutdown` turns finishes first (the server bounds that wait by `shutdown-grace-ms`, then releases
/// every lease this instance holds).
pub async fn run_consumer(
    storage: Storage,
    config: ConsumerConfig,
    handler: Handler,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut head = storage.feed().watch();
    let mut released = storage.lease_releases();
    loop {
        if *shutdown.borrow() {
            return;
        }
        match storage.acquire_lease(&config.name, config.lease).await {
            Ok(true) => {}
            Ok(false) => {
                // Another instance holds it; look again before it could expire, or as soon as one is released.
                tokio::select! {
                    _ = tokio::time::sleep(config.lease / 2) => {}
                    _ = shutdown.changed() => {}
                    _ = released.changed() => {}
                }
                continue;
            }
            Err(e) => {
                tracing::error!(consumer = %config.name, error = %e, "cannot take the lease; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        let outcome = tokio::select! {
            outcome = consume_batch(&storage, &config, &handler) => outcome,
            () = keep_lease(&storage, &config.name, config.lease) => {
                // Dropping the batch aborts its tasks; the new holder redoes it from the checkpoint.
                tracing::warn!(consumer = %config.name, "lost the lease mid-batch; another instance takes over");
                continue;
            }
        };
        match outcome {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                tracing::error!(consumer = %config.name, error = %e, "stream consumer failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        tokio::select! {
            _ = head.changed() => {}
            _ = shutdown.changed() => {}
            // Renew the lease while idle.
            _ = tokio::time::sleep(config.lease / 2) => {}
        }
    }
}

/// Renews the lease every third of its length; returns when another instance has taken it.
async fn keep_lease(storage: &Storage, name: &str, lease: Duration) {
    loop {
        tokio::time::sleep(lease / 3).await;
        match storage.acquire_lease(name, lease).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => tracing::warn!(consumer = name, error = %e, "cannot renew the lease"),
        }
    }
}

/// Handles one batch after the checkpoint. Returns whether there was anything to do.
pub async fn consume_batch(
    storage: &Storage,
    config: &ConsumerConfig,
    handler: &Handler,
) -> Result<bool, StorageError> {
    let checkpoint = storage.checkpoint(&config.name).await?;
    let records = match read_after(storage, checkpoint, config.batch_size).await {
        Ok(records) => records,
        Err(ReadError::CursorExpired { pruned_through, .. }) => {
            tracing::warn!(consumer = %config.name, checkpoint, pruned_through,
                "records before retention were never consumed; skipping ahead");
            storage.set_checkpoint(&config.name, pruned_through).await?;
            return Ok(true);
        }
        Err(ReadError::Storage(e)) => return Err(e),
    };
    let Some(last) = records.last().map(|r| r.seq) else { return Ok(false) };
    let mut by_key: Vec<(String, Vec<ChangeRecord>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for record in records {
        let i = *index.entry(record.key.clone()).or_insert_with(|| {
            by_key.push((record.key.clone(), Vec::new()));
            by_key.len() - 1
        });
        by_key[i].1.push(record);
    }
    let permits = Arc::new(Semaphore::new(config.parallelism.max(1)));
    let mut tasks = JoinSet::new();
    for (_, group) in by_key {
        let permit = permits.clone().acquire_owned().await.expect("semaphore is never closed");
        let (storage, config, handler) = (storage.clone(), config.clone(), handler.clone());
        tasks.spawn(async move {
            let _permit = permit;
            for record in group {
                handle_with_retries(&storage, &config, &handler, record).await?;
            }
            Ok::<_, StorageError>(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.map_err(|e| StorageError::Db(sqlx::Error::Protocol(e.to_string())))??;
    }
    storage.set_checkpoint(&config.name, last).await?;
    metrics::counter!(telemetry::WORKER_BATCHES, "consumer" => config.name.clone()).increment(1);
    Ok(true)
}

async fn handle_with_retries(
    storage: &Storage,
    config: &ConsumerConfig,
    handler: &Handler,
    record: ChangeRecord,
) -> Result<(), StorageError> {
    let mut delay = config.backoff;
    let mut attempt = 1;
    loop {
        match handler(record.clone()).await {
            Ok(()) => return Ok(()),
            Err(HandlerError::Unavailable(error)) => return Err(error),
            Err(HandlerError::Record(error)) if attempt >= config.max_attempts => {
                tracing::error!(consumer = %config.name, seq = record.seq, key = %record.key, %error, attempt,
                    "giving up on record; dead-lettered");
                metrics::counter!(telemetry::DEAD_LETTERS, "consumer" => config.name.clone()).increment(1);
                return storage
                    .dead_letter(&DeadLetter {
                        consumer: config.name.clone(),
                        seq: record.seq,
                        key: record.key.clone(),
                        error,
                        attempts: i64::from(attempt),
                    })
                    .await;
            }
            Err(HandlerError::Record(error)) => {
                tracing::warn!(consumer = %config.name, seq = record.seq, %error, attempt, "record failed; retrying");
                metrics::counter!(telemetry::WORKER_RETRIES, "consumer" => config.name.clone()).increment(1);
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
                attempt += 1;
            }
        }
    }
}

/// The name of the order-processing consumer.
pub const ORDER_PROCESSOR: &str = "order-processor";

/// The order-processing worker: after `step_delay`, moves each new or advanced order one step
/// (SUBMITTED → PAID → PREPARING → SHIPPED). Its writes go through the write path and fire subscriptions.
pub fn order_processor(storage: Storage, step_delay: Duration) -> Handler {
    Arc::new(move |record: ChangeRecord| {
        let storage = storage.clone();
        Box::pin(async move {
            if &*record.model != orders::MODEL || !matches!(record.op, ChangeOp::Insert | ChangeOp::Modify) {
                return Ok(());
            }
            if !orders::worker_moves(&record.image)? {
                return Ok(());
            }
            if !step_delay.is_zero() {
                tokio::time::sleep(step_delay).await;
            }
            orders::advance(&storage, ORDER_PROCESSOR, record.seq, &record.key, record.version).await?;
            Ok(())
        })
    })
}

/// The lease of the TTL reaper.
pub const REAPER: &str = "ttl-reaper";
/// The lease of the change-log pruner.
pub const PRUNER: &str = "pruner";

/// Whether this instance holds (or just took) the lease `name`; errors count as no.
async fn holds(storage: &Storage, name: &str, lease: Duration) -> bool {
    match storage.acquire_lease(name, lease).await {
        Ok(held) => held,
        Err(e) => {
            tracing::error!(lease = name, error = %e, "cannot take the lease");
            false
        }
    }
}

/// Deletes expired rows through the write path every `every`, so subscribers see REMOVE events marked `expired`.
/// Only the holder of the [`REAPER`] lease reaps; even two reapers at once would be safe, since the write path locks
/// the row and re-checks that it is still expired.
pub async fn run_reaper(storage: Storage, every: Duration, lease: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut released = storage.lease_releases();
    loop {
        if !holds(&storage, REAPER, lease.max(every * 3)).await {
            tokio::select! {
                _ = tokio::time::sleep(every) => continue,
                _ = released.changed() => continue,
                _ = shutdown.changed() => return,
            }
        }
        match storage.expired_items(500).await {
            Ok(items) => {
                for (model, id) in items {
                    match storage.reap(&model, &id).await {
                        Ok(true) => metrics::counter!(telemetry::TTL_EXPIRIES).increment(1),
                        Ok(false) => {}
                        Err(e) => tracing::error!(%model, %id, error = %e, "TTL reaper failed"),
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "TTL reaper failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Prunes change-log records older than `retention`, checking every `every`, while holding the [`PRUNER`] lease.
pub async fn run_pruner(storage: Storage, retention: Duration, every: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut released = storage.lease_releases();
    loop {
        if !holds(&storage, PRUNER, every * 3).await {
            tokio::select! {
                _ = tokio::time::sleep(every) => continue,
                _ = released.changed() => continue,
                _ = shutdown.changed() => return,
            }
        }
        let cutoff = storage.clock().now_ms() - retention.as_millis() as i64;
        match storage.prune(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "pruned change log past retention"),
            Err(e) => tracing::error!(error = %e, "pruning failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}
