//! The graphql-transport-ws protocol (subprotocol `graphql-transport-ws`), as spoken by the `graphql-ws` npm library.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire;

/// The WebSocket subprotocol name.
pub const SUBPROTOCOL: &str = "graphql-transport-ws";

/// The GraphQL request carried by a `subscribe` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribePayload {
    /// The GraphQL document.
    pub query: String,
    /// The operation to run when the document holds several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_name: Option<String>,
    /// Variables, a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Value>,
    /// Protocol extensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// A message the client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The first message; its payload carries auth (browsers cannot set WebSocket headers).
    ConnectionInit {
        /// Connection parameters, e.g. `{"Authorization": "Bearer …"}`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
    },
    /// A ping; the server answers `pong`.
    Ping {
        /// Optional payload.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
    },
    /// A pong, solicited or as an unprompted heartbeat.
    Pong {
        /// Optional payload.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
    },
    /// Starts an operation under a client-chosen id.
    Subscribe {
        /// Unique among the connection's active operations.
        id: String,
        /// The GraphQL request.
        payload: SubscribePayload,
    },
    /// Stops an operation.
    Complete {
        /// The operation's id.
        id: String,
    },
}

/// A message the server sends (read in one pass, see [`crate::wire`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", try_from = "wire::Message")]
pub enum ServerMessage {
    /// Accepts `connection_init`; nothing else is valid before it.
    ConnectionAck {
        /// Optional payload.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
    },
    /// A ping; the client answers `pong`.
    Ping {
        /// Optional payload.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
    },
    /// A pong.
    Pong {
        /// Optional payload.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
    },
    /// One execution result of an operation.
    Next {
        /// The operation's id.
        id: String,
        /// A GraphQL execution result: `{data?, errors?, extensions?}`.
        payload: Value,
    },
    /// Ends an operation with errors; no `complete` follows.
    Error {
        /// The operation's id.
        id: String,
        /// GraphQL errors.
        payload: Vec<Value>,
    },
    /// Ends an operation normally.
    Complete {
        /// The operation's id.
        id: String,
    },
}

impl TryFrom<wire::Message> for ServerMessage {
    type Error = String;

    fn try_from(mut wire: wire::Message) -> Result<Self, String> {
        Ok(match wire.kind.as_str() {
            "connection_ack" => ServerMessage::ConnectionAck { payload: wire.payload },
            "ping" => ServerMessage::Ping { payload: wire.payload },
            "pong" => ServerMessage::Pong { payload: wire.payload },
            "next" => ServerMessage::Next { id: wire.id()?, payload: wire.payload()? },
            "error" => match wire.payload.take() {
                Some(Value::Array(errors)) => ServerMessage::Error { id: wire.id()?, payload: errors },
                _ => return Err("an `error` message whose payload is not a list of errors".into()),
            },
            "complete" => ServerMessage::Complete { id: wire.id()? },
            _ => return Err(wire.unknown()),
        })
    }
}

/// WebSocket close codes of graphql-transport-ws, plus the standard ones subsignal uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: normal closure.
    Normal,
    /// 1001: the peer is going away (server shutdown, page unload).
    GoingAway,
    /// 1009: a frame or message was too big.
    MessageTooBig,
    /// 4400: malformed or unknown message.
    BadRequest,
    /// 4401: subscribe before `connection_ack`.
    Unauthorized,
    /// 4403: authentication refused.
    Forbidden,
    /// 4406: subprotocol not acceptable.
    SubprotocolNotAcceptable,
    /// 4408: no `connection_init` within the timeout.
    ConnectionInitTimeout,
    /// 4409: an operation id that is already active.
    SubscriberAlreadyExists,
    /// 4429: a second `connection_init`.
    TooManyInitialisationRequests,
    /// 4500: internal server error.
    InternalServerError,
    /// 4499: closed by the client (retryable).
    Terminated,
    /// 4004: the server sent something the client cannot read.
    BadResponse,
    /// 4005: internal client error.
    InternalClientError,
    /// 4504: no `connection_ack` in time.
    ConnectionAckTimeout,
    /// Any other code.
    Other(u16),
}

impl CloseCode {
    /// Every named code, for exhaustive tests.
    pub const NAMED: [CloseCode; 15] = [
        Self::Normal,
        Self::GoingAway,
        Self::MessageTooBig,
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::SubprotocolNotAcceptable,
        Self::ConnectionInitTimeout,
        Self::SubscriberAlreadyExists,
        Self::TooManyInitialisationRequests,
        Self::InternalServerError,
        Self::Terminated,
        Self::BadResponse,
        Self::InternalClientError,
        Self::ConnectionAckTimeout,
    ];

    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::GoingAway => 1001,
            Self::MessageTooBig => 1009,
            Self::BadRequest => 4400,
            Self::Unauthorized => 4401,
            Self::Forbidden => 4403,
            Self::SubprotocolNotAcceptable => 4406,
            Self::ConnectionInitTimeout => 4408,
            Self::SubscriberAlreadyExists => 4409,
            Self::TooManyInitialisationRequests => 4429,
            Self::InternalServerError => 4500,
            Self::Terminated => 4499,
            Self::BadResponse => 4004,
            Self::InternalClientError => 4005,
            Self::ConnectionAckTimeout => 4504,
            Self::Other(code) => code,
        }
    }

    /// Whether a client should give up rather than reconnect. These are the codes the reference client treats as
    /// fatal: retrying would only repeat the same mistake. (4403, a refused token, is not fatal: the store retries
    /// with a fresh token.)
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            Self::BadRequest
                | Self::Unauthorized
                | Self::SubprotocolNotAcceptable
                | Self::SubscriberAlreadyExists
                | Self::TooManyInitialisationRequests
                | Self::InternalServerError
        )
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        Self::NAMED.into_iter().find(|c| c.code() == code).unwrap_or(Self::Other(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip_client(msg: ClientMessage, wire: Value) {
        assert_eq!(serde_json::to_value(&msg).unwrap(), wire);
        assert_eq!(serde_json::from_value::<ClientMessage>(wire).unwrap(), msg);
    }

    fn round_trip_server(msg: ServerMessage, wire: Value) {
        assert_eq!(serde_json::to_value(&msg).unwrap(), wire);
        assert_eq!(serde_json::from_value::<ServerMessage>(wire).unwrap(), msg);
    }

    #[test]
    fn client_messages_match_the_wire() {
        round_trip_client(
            ClientMessage::ConnectionInit { payload: Some(json!({"Authorization": "Bearer t"})) },
            json!({"type": "connection_init", "payload": {"Authorization": "Bearer t"}}),
        );
        round_trip_client(ClientMessage::ConnectionInit { payload: None }, json!({"type": "connection_init"}));
        round_trip_client(ClientMessage::Ping { payload: None }, json!({"type": "ping"}));
        round_trip_client(
            ClientMessage::Pong { payload: Some(json!({"x": 1})) },
            json!({"type": "pong", "payload": {"x": 1}}),
        );
        round_trip_client(
            ClientMessage::Subscribe {
                id: "1".into(),
                payload: SubscribePayload {
                    query: "subscription { a }".into(),
                    operation_name: Some("A".into()),
                    variables: Some(json!({"afterSeq": 3})),
                    extensions: None,
                },
            },
            json!({"type": "subscribe", "id": "1", "payload": {"query": "subscription { a }", "operationName": "A", "variables": {"afterSeq": 3}}}),
        );
        round_trip_client(ClientMessage::Complete { id: "1".into() }, json!({"type": "complete", "id": "1"}));
    }

    #[test]
    fn server_messages_match_the_wire() {
        round_trip_server(ServerMessage::ConnectionAck { payload: None }, json!({"type": "connection_ack"}));
        round_trip_server(ServerMessage::Ping { payload: None }, json!({"type": "ping"}));
        round_trip_server(ServerMessage::Pong { payload: None }, json!({"type": "pong"}));
        round_trip_server(
            ServerMessage::Next { id: "7".into(), payload: json!({"data": {"a": 1}}) },
            json!({"type": "next", "id": "7", "payload": {"data": {"a": 1}}}),
        );
        round_trip_server(
            ServerMessage::Error { id: "7".into(), payload: vec![json!({"message": "no"})] },
            json!({"type": "error", "id": "7", "payload": [{"message": "no"}]}),
        );
        round_trip_server(ServerMessage::Complete { id: "7".into() }, json!({"type": "complete", "id": "7"}));
    }

    #[test]
    fn malformed_server_messages_are_refused_with_the_reason() {
        for (wire, reason) in [
            (json!({"type": "next", "payload": {}}), "a `next` message without an id"),
            (json!({"type": "next", "id": "1"}), "a `next` message without a payload"),
            (json!({"type": "error", "id": "1", "payload": {"message": "x"}}), "not a list of errors"),
            (json!({"type": "complete"}), "a `complete` message without an id"),
            (json!({"type": "subscribe", "id": "1"}), "unknown message type `subscribe`"),
            (json!({"id": "1"}), "missing field `type`"),
        ] {
            let error = serde_json::from_value::<ServerMessage>(wire.clone()).unwrap_err().to_string();
            assert!(error.contains(reason), "{wire}: {error}");
        }
        // Fields a type does not use are ignored, as the derived form did.
        let ack = json!({"type": "connection_ack", "id": "ignored", "extra": 1});
        assert_eq!(
            serde_json::from_value::<ServerMessage>(ack).unwrap(),
            ServerMessage::ConnectionAck { payload: None }
        );
    }

    #[test]
    fn unknown_or_malformed_messages_are_rejected() {
        assert!(serde_json::from_value::<ClientMessage>(json!({"type": "start", "id": "1"})).is_err());
        assert!(serde_json::from_value::<ClientMessage>(json!({"type": "subscribe"})).is_err());
        assert!(serde_json::from_str::<ServerMessage>("{not json").is_err());
    }

    #[test]
    fn close_codes_round_trip_and_classify() {
        for code in CloseCode::NAMED {
            assert_eq!(CloseCode::from(code.code()), code);
        }
        assert_eq!(CloseCode::from(4999), CloseCode::Other(4999));
        let fatal: Vec<u16> = CloseCode::NAMED.into_iter().filter(|c| c.is_fatal()).map(CloseCode::code).collect();
        assert_eq!(fatal, vec![4400, 4401, 4406, 4409, 4429, 4500]);
        assert!(!CloseCode::Terminated.is_fatal());
        assert!(!CloseCode::Forbidden.is_fatal());
    }
}
