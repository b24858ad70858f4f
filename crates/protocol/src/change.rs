//! subsignal's change envelope: what every change event carries besides the entity itself.
//!
//! On the wire an event is a GraphQL object such as `OrderChange { seq prevSeq op key version expired order }`; the
//! entity sits under a schema-specific field (`order`), which the store reads by name.

use serde::{Deserialize, Serialize};

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeOp {
    /// A new item.
    Insert,
    /// An existing item changed.
    Modify,
    /// An item was deleted (by a write, or by TTL expiry when `expired` is true).
    Remove,
    /// No change visible to this subscription: only the cursor moves to `seq`.
    Watermark,
}

/// The envelope of a change event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEnvelope {
    /// Global, gap-free sequence number, assigned at commit.
    pub seq: i64,
    /// The seq of the previous event delivered on the same subscription, or the cursor it started from.
    pub prev_seq: i64,
    /// What happened.
    pub op: ChangeOp,
    /// The entity's key (absent for watermarks).
    #[serde(default)]
    pub key: Option<String>,
    /// The entity's version after the change (for removals, the version removed).
    #[serde(default)]
    pub version: Option<i64>,
    /// True when a removal was a TTL expiry.
    #[serde(default)]
    pub expired: bool,
    /// The client mutation id of the write behind the change, when the subscription selects it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_mutation_id: Option<String>,
    /// When the change committed, milliseconds since the epoch, when the subscription selects it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_at_ms: Option<i64>,
}

/// One failed rule, reported in a `VALIDATION` error's `extensions.fields`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The input path, e.g. `email` or `items[2].quantity`.
    pub field: String,
    /// A stable code, e.g. `INVALID_EMAIL`.
    #[serde(default)]
    pub code: String,
    /// A sentence for people.
    #[serde(default)]
    pub message: String,
}

impl FieldError {
    /// A failed rule.
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), code: code.to_owned(), message: message.into() }
    }
}

/// Error codes that subsignal puts in GraphQL errors' `extensions.code`.
pub mod error_code {
    /// Input failed validation; `extensions.fields` lists `{field, code, message}`.
    pub const VALIDATION: &str = "VALIDATION";
    /// `expectedVersion` is stale; `extensions.current` holds the server's item.
    pub const CONFLICT: &str = "CONFLICT";
    /// The `afterSeq` cursor is older than retention: take a new snapshot.
    pub const CURSOR_EXPIRED: &str = "CURSOR_EXPIRED";
    /// No or bad credentials.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// Credentials fine, action not allowed.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// No such item (or not visible to the caller).
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// Something failed on the server; details are in its log under the request id.
    pub const INTERNAL: &str = "INTERNAL";
    /// The server cannot serve this now because of its database's state (the disk is full, the database is
    /// read-only, restarting or out of reach): retry later, unchanged. A mutation retried with the same
    /// `clientMutationId` is applied once.
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    /// A limit of the connection was reached (operations per connection).
    pub const LIMIT_EXCEEDED: &str = "LIMIT_EXCEEDED";
    /// The HTTP request is not a GraphQL request (no `query`, bad JSON, wrong media type, a mutation over GET).
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_matches_the_wire() {
        let wire = json!({"seq": 12, "prevSeq": 9, "op": "REMOVE", "key": "o1", "version": 3, "expired": true, "order": {"id": "o1"}});
        let env: ChangeEnvelope = serde_json::from_value(wire).unwrap();
        assert_eq!(
            env,
            ChangeEnvelope {
                seq: 12,
                prev_seq: 9,
                op: ChangeOp::Remove,
                key: Some("o1".into()),
                version: Some(3),
                expired: true,
                client_mutation_id: None,
                committed_at_ms: None,
            }
        );
        let back = serde_json::to_value(&env).unwrap();
        assert_eq!(back, json!({"seq": 12, "prevSeq": 9, "op": "REMOVE", "key": "o1", "version": 3, "expired": true}));
    }

    #[test]
    fn watermark_needs_no_key() {
        let env: ChangeEnvelope = serde_json::from_value(
            json!({"seq": 40, "prevSeq": 12, "op": "WATERMARK", "key": null, "version": null, "expired": false}),
        )
        .unwrap();
        assert_eq!(env.op, ChangeOp::Watermark);
        assert_eq!(env.key, None);
    }
}
