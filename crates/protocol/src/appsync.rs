//! The AWS AppSync real-time protocol (subprotocol `graphql-ws`, reused from the legacy subscriptions-transport-ws).
//!
//! Note the two quirks: `start.payload.data` is a JSON *string* of `{query, variables}`, and every `start` carries its
//! own authorization header object.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire;

/// The WebSocket subprotocol name AppSync uses.
pub const SUBPROTOCOL: &str = "graphql-ws";

/// Default `connectionTimeoutMs` sent in `connection_ack` (AppSync's value).
pub const DEFAULT_CONNECTION_TIMEOUT_MS: u64 = 300_000;

/// The `start` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartPayload {
    /// The GraphQL request `{query, variables}` as a JSON string.
    pub data: String,
    /// Carries `authorization`, the header object for this subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<StartExtensions>,
}

/// Extensions of a `start` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartExtensions {
    /// The header object: `{"host", "x-api-key"}` or `{"host", "Authorization"}`.
    pub authorization: Value,
}

/// A message the client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Optional first message.
    ConnectionInit {
        /// Ignored by AppSync; present for symmetry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
    },
    /// Starts a subscription.
    Start {
        /// The subscription's id (a UUID in AWS clients).
        id: String,
        /// The request and its authorization.
        payload: StartPayload,
    },
    /// Stops a subscription; the server answers `complete`.
    Stop {
        /// The subscription's id.
        id: String,
    },
}

/// One AppSync error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSyncError {
    /// AppSync's error type name, e.g. `UnauthorizedException`.
    pub error_type: String,
    /// A human-readable message.
    pub message: String,
    /// An optional numeric code (AppSync sends one with some errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u16>,
}

/// The payload of an `error` or `connection_error` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorPayload {
    /// The errors.
    pub errors: Vec<AppSyncError>,
}

/// The payload of `connection_ack`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AckPayload {
    /// A client that sees no `ka` for this long closes and reconnects. Some AppSync-compatible servers spell it
    /// `connectionTimeout`.
    #[serde(alias = "connectionTimeout")]
    pub connection_timeout_ms: u64,
}

/// A message the server sends (read in one pass, see [`crate::wire`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", try_from = "wire::Message")]
pub enum ServerMessage {
    /// Accepts the connection.
    ConnectionAck {
        /// Carries `connectionTimeoutMs`.
        payload: AckPayload,
    },
    /// The connection was refused; the socket closes after it.
    ConnectionError {
        /// Why.
        payload: ErrorPayload,
    },
    /// Keep-alive.
    Ka,
    /// The subscription is registered.
    StartAck {
        /// The subscription's id.
        id: String,
    },
    /// An event: `{"data": {"onX": {...}}}`.
    Data {
        /// The subscription's id.
        id: String,
        /// The execution result.
        payload: Value,
    },
    /// A subscription (with `id`) or the connection (without) failed.
    Error {
        /// The subscription's id, if the error is about one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Why.
        payload: ErrorPayload,
    },
    /// Answers `stop`.
    Complete {
        /// The subscription's id.
        id: String,
    },
}

impl TryFrom<wire::Message> for ServerMessage {
    type Error = String;

    fn try_from(mut wire: wire::Message) -> Result<Self, String> {
        Ok(match wire.kind.as_str() {
            "connection_ack" => ServerMessage::ConnectionAck { payload: wire.payload_as()? },
            "connection_error" => ServerMessage::ConnectionError { payload: wire.payload_as()? },
            "ka" => ServerMessage::Ka,
            "start_ack" => ServerMessage::StartAck { id: wire.id()? },
            "data" => ServerMessage::Data { id: wire.id()?, payload: wire.payload()? },
            "error" => ServerMessage::Error { id: wire.id.take(), payload: wire.payload_as()? },
            "complete" => ServerMessage::Complete { id: wire.id()? },
            _ => return Err(wire.unknown()),
        })
    }
}

/// AppSync's `errorType` names that subsignal emits.
pub mod error_type {
    /// Authentication failed or is missing.
    pub const UNAUTHORIZED: &str = "UnauthorizedException";
    /// The GraphQL request is invalid.
    pub const VALIDATION: &str = "ValidationError";
    /// A message could not be read.
    pub const UNKNOWN_OPERATION: &str = "UnknownOperationError";
    /// A payload exceeds the size limit.
    pub const LIMIT_EXCEEDED: &str = "LimitExceededError";
    /// Too many subscriptions on this connection.
    pub const MAX_SUBSCRIPTIONS: &str = "MaxSubscriptionsReachedError";
    /// An id already in use.
    pub const DUPLICATE_ID: &str = "DuplicatedOperationError";
    /// Anything else.
    pub const INTERNAL: &str = "InternalFailureException";
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip<T>(msg: T, wire: Value)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
    {
        assert_eq!(serde_json::to_value(&msg).unwrap(), wire);
        assert_eq!(serde_json::from_value::<T>(wire).unwrap(), msg);
    }

    #[test]
    fn client_messages_match_the_wire() {
        round_trip(ClientMessage::ConnectionInit { payload: None }, json!({"type": "connection_init"}));
        round_trip(
            ClientMessage::Start {
                id: "a1".into(),
                payload: StartPayload {
                    data: r#"{"query":"subscription { onX { id } }","variables":{}}"#.into(),
                    extensions: Some(StartExtensions {
                        authorization: json!({"host": "example.com", "x-api-key": "da2-k"}),
                    }),
                },
            },
            json!({"id": "a1", "type": "start", "payload": {
                "data": "{\"query\":\"subscription { onX { id } }\",\"variables\":{}}",
                "extensions": {"authorization": {"host": "example.com", "x-api-key": "da2-k"}}}}),
        );
        round_trip(ClientMessage::Stop { id: "a1".into() }, json!({"type": "stop", "id": "a1"}));
    }

    #[test]
    fn server_messages_match_the_wire() {
        round_trip(
            ServerMessage::ConnectionAck { payload: AckPayload { connection_timeout_ms: 300_000 } },
            json!({"type": "connection_ack", "payload": {"connectionTimeoutMs": 300000}}),
        );
        assert_eq!(
            serde_json::from_value::<ServerMessage>(
                json!({"type": "connection_ack", "payload": {"connectionTimeout": 5}})
            )
            .unwrap(),
            ServerMessage::ConnectionAck { payload: AckPayload { connection_timeout_ms: 5 } }
        );
        round_trip(ServerMessage::Ka, json!({"type": "ka"}));
        round_trip(ServerMessage::StartAck { id: "a1".into() }, json!({"type": "start_ack", "id": "a1"}));
        round_trip(
            ServerMessage::Data { id: "a1".into(), payload: json!({"data": {"onX": {"id": "1"}}}) },
            json!({"type": "data", "id": "a1", "payload": {"data": {"onX": {"id": "1"}}}}),
        );
        round_trip(
            ServerMessage::Error {
                id: Some("a1".into()),
                payload: ErrorPayload {
                    errors: vec![AppSyncError {
                        error_type: error_type::UNAUTHORIZED.into(),
                        message: "no".into(),
                        error_code: None,
                    }],
                },
            },
            json!({"type": "error", "id": "a1", "payload": {"errors": [{"errorType": "UnauthorizedException", "message": "no"}]}}),
        );
        round_trip(
            ServerMessage::ConnectionError {
                payload: ErrorPayload {
                    errors: vec![AppSyncError {
                        error_type: error_type::UNAUTHORIZED.into(),
                        message: "no".into(),
                        error_code: Some(401),
                    }],
                },
            },
            json!({"type": "connection_error", "payload": {"errors": [{"errorType": "UnauthorizedException", "message": "no", "errorCode": 401}]}}),
        );
        round_trip(ServerMessage::Complete { id: "a1".into() }, json!({"type": "complete", "id": "a1"}));
    }

    #[test]
    fn malformed_server_messages_say_what_is_wrong() {
        let read = |wire: Value| serde_json::from_value::<ServerMessage>(wire).unwrap_err().to_string();
        assert!(read(json!({"type": "data", "payload": {}})).contains("a `data` message without an id"));
        assert!(read(json!({"type": "start_ack"})).contains("a `start_ack` message without an id"));
        assert!(read(json!({"type": "connection_ack", "payload": {}})).contains("connectionTimeoutMs"));
        assert!(read(json!({"type": "hello"})).contains("unknown message type `hello`"));
        assert!(read(json!({"id": "a1"})).contains("missing field `type`"));
    }
}
