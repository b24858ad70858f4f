//! What every generated schema shares (see [`crate::generated`]): the resolvers' state, the helpers of paging, the
//! delta query and a subscription's starting cursor, and the mapping of storage errors to GraphQL errors (the
//! document limits are in `limits.rs`). Transport-free: the HTTP and WebSocket layers put the
//! caller's [`Identity`] into each request's data.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, Error, ErrorExtensions, Result, Value};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use subsignal_protocol::change::error_code;

use crate::auth::Identity;
use crate::storage::{ChangeRecord, DomainError, Storage, StorageError};
use crate::stream::{read_after, ReadError};

/// What resolvers need, shared by all requests.
#[derive(Debug, Clone)]
pub struct SchemaState {
    /// The database and its change feed.
    pub storage: Storage,
    /// How long a subscription lags behind invisible changes before it gets a watermark.
    pub watermark_every: Duration,
}

/// The change-log head when a subscribe message arrived: where a subscription without `afterSeq` starts.
#[derive(Debug, Clone, Copy)]
pub struct SubscribedAt(pub i64);

/// Schema limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum query depth.
    pub max_depth: usize,
    /// Maximum query complexity.
    pub max_complexity: usize,
    /// Maximum aliases in one document.
    pub max_aliases: usize,
    /// Maximum directives in one document.
    pub max_directives: usize,
    /// Whether introspection is allowed.
    pub introspection: bool,
}

impl From<&crate::config::Config> for Limits {
    fn from(config: &crate::config::Config) -> Self {
        Limits {
            max_depth: config.max_depth,
            max_complexity: config.max_complexity,
            max_aliases: config.max_aliases,
            max_directives: config.max_directives,
            introspection: config.introspection,
        }
    }
}

pub(crate) fn state<'a>(ctx: &Context<'a>) -> &'a SchemaState {
    ctx.data_unchecked::<Arc<SchemaState>>()
}

pub(crate) fn coded(code: &str, message: impl Into<String>) -> Error {
    let code = code.to_owned();
    Error::new(message).extend_with(|_, e| e.set("code", code))
}

pub(crate) fn identity<'a>(ctx: &Context<'a>) -> Result<&'a Identity> {
    ctx.data_opt::<Identity>().ok_or_else(|| {
        coded(
            error_code::UNAUTHENTICATED,
            "Sign in first: send a JWT in the Authorization header (or connection_init payload), or an x-api-key.",
        )
    })
}

/// Logs an internal failure under a fresh reference and returns an error that names only the reference.
pub fn internal(err: impl std::fmt::Display) -> Error {
    let reference = uuid::Uuid::new_v4();
    tracing::error!(%reference, error = %err, "request failed");
    coded(error_code::INTERNAL, format!("Internal error; the server log has the details under reference {reference}."))
}

/// Logs a failure that comes from the database's state (see [`StorageError::unavailable`]) under a fresh reference,
/// and returns an `UNAVAILABLE` error that says what is wrong and that the request may be retried.
fn unavailable(reason: &str, err: impl std::fmt::Display) -> Error {
    let reference = uuid::Uuid::new_v4();
    tracing::warn!(%reference, error = %err, "request failed: {reason}");
    coded(
        error_code::UNAVAILABLE,
        format!(
            "The server cannot serve this now: {reason}. Retry later; a mutation retried with the same \
             clientMutationId is applied once. (Reference {reference}.)"
        ),
    )
}

pub(crate) fn storage_error(err: StorageError) -> Error {
    match err {
        StorageError::Domain(DomainError::Validation(fields)) => {
            let first = fields.first().map(|f| f.field.clone()).unwrap_or_default();
            let list = Value::from_json(serde_json::to_value(&fields).unwrap_or_default()).unwrap_or_default();
            let message = fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join(" ");
            Error::new(format!("Invalid input. {message}")).extend_with(|_, e| {
                e.set("code", error_code::VALIDATION);
                e.set("field", first);
                e.set("fields", list);
            })
        }
        StorageError::Domain(DomainError::Conflict(current)) => {
            let current = Value::from_json(*current).unwrap_or_default();
            Error::new("The item changed since you read it; here is the current version.").extend_with(|_, e| {
                e.set("code", error_code::CONFLICT);
                e.set("current", current);
            })
        }
        StorageError::Domain(DomainError::NotFound) => coded(error_code::NOT_FOUND, "No such item."),
        StorageError::Domain(DomainError::Forbidden(why)) => coded(error_code::FORBIDDEN, why),
        other => match other.unavailable() {
            Some(reason) => unavailable(reason, other),
            None => internal(other),
        },
    }
}

pub(crate) fn read_error(err: ReadError) -> Error {
    match err {
        ReadError::CursorExpired { .. } => coded(error_code::CURSOR_EXPIRED, err.to_string()),
        ReadError::Storage(e) => storage_error(e),
    }
}

/// `limit` (default 100, 1 to 1000) and the id a `nextToken` stands for.
pub(crate) fn page_args(limit: Option<i32>, next_token: Option<&str>) -> Result<(u32, Option<String>)> {
    let limit = match limit {
        None => 100,
        Some(l @ 1..=1000) => l as u32,
        Some(_) => return Err(coded(error_code::VALIDATION, "limit must be between 1 and 1000.")),
    };
    let after = match next_token {
        None => None,
        Some(token) => Some(
            URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| coded(error_code::VALIDATION, "nextToken is not one this server issued."))?,
        ),
    };
    Ok((limit, after))
}

/// The `nextToken` that continues a list after the item `id`.
pub(crate) fn next_token_for(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

/// A page of the change log as one caller sees it: the visible records with their `prevSeq`, the cursor to go on
/// from (it covers invisible records too), and whether more records follow.
pub(crate) struct VisibleChanges {
    pub(crate) changes: Vec<(ChangeRecord, i64)>,
    pub(crate) last_seq: i64,
    pub(crate) has_more: bool,
}

/// Reads the change log after `after_seq` (at most `limit`, default 100, records scanned) and keeps what `visible`
/// lets through, chained by `prevSeq` from `after_seq`: the delta-sync query of every model.
pub(crate) async fn changes_page(
    state: &SchemaState,
    after_seq: i64,
    limit: Option<i32>,
    visible: impl Fn(&ChangeRecord) -> bool,
) -> Result<VisibleChanges> {
    let limit = limit.unwrap_or(100).clamp(1, 1000) as u32;
    // Include commits made through other instances that this one has not been told of yet.
    let head = state.storage.sync_head().await.map_err(storage_error)?;
    let records = read_after(&state.storage, after_seq, limit).await.map_err(read_error)?;
    let last_seq = records.last().map_or(after_seq, |r| r.seq);
    // Not `records.len() == limit`: a read the in-memory window serves may stop at the window's end while later
    // records (committed through another instance) exist.
    let has_more = last_seq < head;
    let mut prev = after_seq;
    let changes = records
        .into_iter()
        .filter(|r| visible(r))
        .map(|r| {
            let link = std::mem::replace(&mut prev, r.seq);
            (r, link)
        })
        .collect();
    Ok(VisibleChanges { changes, last_seq, has_more })
}

/// Where a subscription starts: `after_seq`, or without it the moment its subscribe message arrived (the transport
/// says when), not whenever its resolver happens to run, so a write acknowledged after `start_ack` is never missed.
/// Fails with CURSOR_EXPIRED for a cursor ahead of the log or older than retention, as an `error` message rather
/// than as the first event.
pub(crate) async fn start_cursor(ctx: &Context<'_>, state: &SchemaState, after_seq: Option<i64>) -> Result<i64> {
    // The database's head, not only what this instance has heard of: a cursor from a snapshot taken through another
    // instance is not "ahead".
    let head = state.storage.sync_head().await.map_err(storage_error)?;
    let after = after_seq.or_else(|| ctx.data_opt::<SubscribedAt>().map(|s| s.0.min(head))).unwrap_or(head);
    if after > head {
        return Err(coded(
            error_code::CURSOR_EXPIRED,
            format!("cursor {after} is ahead of this server's change log (at {head}); take a new snapshot"),
        ));
    }
    read_after(&state.storage, after, 1).await.map_err(read_error)?;
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_name_only_a_reference() {
        let error = internal("error returned from database: SELECT owner FROM orders: disk I/O error");
        assert!(error.message.contains("reference"), "{}", error.message);
        assert!(!error.message.contains("SELECT") && !error.message.contains("database"), "{}", error.message);
    }
}
