//! Mutations: the request a user submits, the serializable offline queue, and typed errors.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use subsignal_protocol::change::error_code;

use crate::conflict::Conflict;

/// A GraphQL mutation to send through the queue.
///
/// The document must declare `$clientMutationId: ID` and pass it to the mutation field; the store fills the variable
/// in, so a replay after a reload or a lost response is recognised by the server and writes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mutation {
    /// The mutation document.
    pub query: String,
    /// Variables, a JSON object (`clientMutationId` is added).
    #[serde(default)]
    pub variables: Value,
    /// The mutation's root field, whose value is the entity written (e.g. `updateOrder`).
    pub result_field: String,
    /// The collection the optimistic overlay applies to.
    #[serde(default)]
    pub collection: Option<String>,
    /// The optimistic effect to show until the server confirms or refuses.
    #[serde(default)]
    pub optimistic: Option<Optimistic>,
    /// A caller-chosen id; `None` lets the store generate one.
    #[serde(default)]
    pub client_mutation_id: Option<String>,
    /// The row as the user saw it when they started editing: the `base` of a [`Conflict`]. Without it, the store
    /// takes its confirmed row when that row is at the version the mutation sends as `expectedVersion` (a live row
    /// may have moved on while the user edited, so a form should pass the row it opened with). Kept in the
    /// persisted queue.
    ///
    /// [`Conflict`]: crate::Conflict
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Value>,
    /// The variable that carries `expectedVersion` (default `expectedVersion`): a conflict's resend sets it to the
    /// server's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_variable: Option<String>,
    /// The variable whose object carries the changed fields (default `input`): a merge's resend rewrites it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_variable: Option<String>,
}

impl Mutation {
    /// A mutation with the given document, variables and result field, and no overlay.
    pub fn new(query: impl Into<String>, variables: Value, result_field: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            variables,
            result_field: result_field.into(),
            collection: None,
            optimistic: None,
            client_mutation_id: None,
            base: None,
            version_variable: None,
            input_variable: None,
        }
    }

    /// The row the user edited (see [`Mutation::base`]).
    pub fn base(mut self, row: Value) -> Self {
        self.base = Some(row);
        self
    }

    /// Names the variable that carries `expectedVersion` (default `expectedVersion`).
    pub fn version_variable(mut self, name: impl Into<String>) -> Self {
        self.version_variable = Some(name.into());
        self
    }

    /// Names the variable whose object carries the changed fields (default `input`).
    pub fn input_variable(mut self, name: impl Into<String>) -> Self {
        self.input_variable = Some(name.into());
        self
    }

    /// The name of the variable that carries `expectedVersion`.
    pub fn version_variable_name(&self) -> &str {
        self.version_variable.as_deref().unwrap_or("expectedVersion")
    }

    /// The name of the variable whose object carries the changed fields.
    pub fn input_variable_name(&self) -> &str {
        self.input_variable.as_deref().unwrap_or("input")
    }

    /// Shows `optimistic` in `collection` until the mutation settles.
    pub fn optimistic(mut self, collection: impl Into<String>, optimistic: Optimistic) -> Self {
        self.collection = Some(collection.into());
        self.optimistic = Some(optimistic);
        self
    }

    /// Uses a caller-chosen `clientMutationId`.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.client_mutation_id = Some(id.into());
        self
    }
}

/// The optimistic effect of a mutation on one row.
///
/// Read through [`WireOptimistic`] rather than serde's internally tagged representation, which buffers the value and
/// adds ~10 KB of wasm to the npm package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", try_from = "WireOptimistic")]
pub enum Optimistic {
    /// Show this whole row (it must carry its key; for a create use a temporary key, replaced by the server's key when
    /// the result arrives).
    Upsert {
        /// The row.
        row: Value,
    },
    /// Merge these top-level fields into the row with this key (no effect if the row is not there).
    Patch {
        /// The row's key.
        key: String,
        /// A JSON object of fields.
        fields: Value,
    },
    /// Hide the row with this key.
    Remove {
        /// The row's key.
        key: String,
    },
}

/// An [`Optimistic`] as it arrives: its kind and the fields any kind may carry.
#[derive(Deserialize)]
struct WireOptimistic {
    kind: String,
    #[serde(default)]
    row: Option<Value>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    fields: Option<Value>,
}

impl TryFrom<WireOptimistic> for Optimistic {
    type Error = String;

    fn try_from(wire: WireOptimistic) -> Result<Self, String> {
        let WireOptimistic { kind, row, key, fields } = wire;
        let missing = |field: &str| format!("an optimistic `{kind}` without `{field}`");
        Ok(match kind.as_str() {
            "upsert" => Optimistic::Upsert { row: row.ok_or_else(|| missing("row"))? },
            "patch" => Optimistic::Patch {
                key: key.ok_or_else(|| missing("key"))?,
                fields: fields.ok_or_else(|| missing("fields"))?,
            },
            "remove" => Optimistic::Remove { key: key.ok_or_else(|| missing("key"))? },
            other => return Err(format!("unknown optimistic kind `{other}`, expected `upsert`, `patch` or `remove`")),
        })
    }
}

/// One entry of the offline queue; a `Vec` of these is what the shell persists (e.g. in localStorage).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingMutation {
    /// The `clientMutationId`.
    pub id: String,
    /// The mutation.
    pub mutation: Mutation,
}

impl PendingMutation {
    /// The GraphQL request body, with `clientMutationId` set.
    pub(crate) fn body(&self) -> Value {
        let mut variables = match &self.mutation.variables {
            Value::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        variables.insert("clientMutationId".to_owned(), Value::String(self.id.clone()));
        serde_json::json!({ "query": self.mutation.query, "variables": variables })
    }
}

pub use subsignal_protocol::FieldError;

/// Why the server refused a mutation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum MutationError {
    /// The input failed validation.
    #[error("validation failed on {} field(s)", .fields.len())]
    Validation {
        /// What failed, field by field.
        fields: Vec<FieldError>,
    },
    /// `expectedVersion` was stale (or the row is gone): the server's row, the row the user edited, what they
    /// changed and the per-field diff, with the resends that resolve it.
    #[error("conflict: the item changed on the server")]
    Conflict(Box<Conflict>),
    /// Credentials missing, refused or insufficient.
    #[error("unauthorized: {message}")]
    Unauthorized {
        /// The server's message.
        message: String,
    },
    /// Dropped from the queue by [`crate::Store::discard`] before it was sent: the server never saw it.
    #[error("discarded before it was sent")]
    Discarded,
    /// Anything else (`NOT_FOUND`, `INTERNAL`, an unexpected response).
    #[error("{message}")]
    Other {
        /// `extensions.code`, when the server sent one.
        code: Option<String>,
        /// The server's message.
        message: String,
    },
}

impl MutationError {
    /// A short code for the kind: `VALIDATION`, `CONFLICT`, `UNAUTHORIZED`, `DISCARDED`, or the server's
    /// `extensions.code` for the others.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Validation { .. } => Some(error_code::VALIDATION),
            Self::Conflict(_) => Some(error_code::CONFLICT),
            Self::Unauthorized { .. } => Some("UNAUTHORIZED"),
            Self::Discarded => Some("DISCARDED"),
            Self::Other { code, .. } => code.as_deref(),
        }
    }

    /// The conflict, when this is one.
    pub fn conflict(&self) -> Option<&Conflict> {
        match self {
            Self::Conflict(conflict) => Some(conflict),
            _ => None,
        }
    }

    /// Whether a GraphQL `errors` array says the server cannot serve now (`UNAVAILABLE`): the mutation stays queued
    /// and is sent again later, with the same `clientMutationId`.
    pub(crate) fn unavailable(errors: &[Value]) -> bool {
        errors.first().and_then(|e| e.pointer("/extensions/code")).and_then(Value::as_str)
            == Some(error_code::UNAVAILABLE)
    }

    /// Classifies a GraphQL `errors` array by its first error's `extensions.code`.
    pub(crate) fn from_graphql(errors: &[Value]) -> Self {
        let Some(first) = errors.first() else {
            return Self::Other { code: None, message: "empty errors".to_owned() };
        };
        let message = first.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
        let ext = first.get("extensions");
        let code = ext.and_then(|e| e.get("code")).and_then(Value::as_str);
        match code {
            Some(error_code::VALIDATION) => {
                let fields = ext
                    .and_then(|e| e.get("fields"))
                    .and_then(|f| serde_json::from_value(f.clone()).ok())
                    .unwrap_or_default();
                Self::Validation { fields }
            }
            Some(error_code::CONFLICT) => {
                let current = ext.and_then(|e| e.get("current")).cloned().unwrap_or(Value::Null);
                Self::Conflict(Box::new(Conflict::from_server(current)))
            }
            Some(error_code::UNAUTHENTICATED | error_code::FORBIDDEN) => Self::Unauthorized { message },
            other => Self::Other { code: other.map(str::to_owned), message },
        }
    }
}

/// The offline queue: mutations in submission order; only the head is ever in flight.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) items: VecDeque<PendingMutation>,
    /// The HTTP request carrying the head, if one is outstanding.
    pub(crate) in_flight: Option<u64>,
    /// Whether the head has been sent at least once: from then on the server may have committed it.
    pub(crate) head_sent: bool,
    /// Consecutive retryable failures of the head (its retry waits in the store's [`Timer::Queue`]).
    ///
    /// [`Timer::Queue`]: crate::timers::Timer::Queue
    pub(crate) failures: u32,
    /// Restored mutations that may have been sent (and committed) before the reload.
    pub(crate) maybe_sent: Vec<String>,
}

impl Queue {
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.items.iter().any(|m| m.id == id)
    }
}
