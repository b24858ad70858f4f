//! The AWS AppSync real-time protocol on the wire: the authorization header object in the URL and in every `start`,
//! `ka` liveness from the server (no pings), `start_ack`, `data`, `error`, `complete`, `stop`.

use base64::Engine;
use serde_json::{json, Value};
use subsignal_protocol::appsync::{self, ClientMessage, ServerMessage};
use subsignal_protocol::transport_ws::CloseCode;

use super::{Credentials, Frame, Payload, Protocol, Wire};
use crate::store::Output;

/// AppSync's real-time protocol (subprotocol `graphql-ws`).
#[derive(Debug)]
pub(crate) struct AppSync;

/// AppSync's authorization header object: the auth object's entries plus `host`.
fn header_object(credentials: &Credentials) -> Value {
    let mut map = match &credentials.auth {
        Some(Value::Object(map)) => map.clone(),
        _ => serde_json::Map::new(),
    };
    if let Some(host) = &credentials.host {
        map.insert("host".to_owned(), json!(host));
    }
    Value::Object(map)
}

/// An AppSync error as a GraphQL error, its `errorType` as `extensions.code` (`UnauthorizedException` as
/// `UNAUTHENTICATED`, so the store asks for fresh credentials).
fn graphql_error(error: &appsync::AppSyncError) -> Value {
    let code = if error.error_type == appsync::error_type::UNAUTHORIZED {
        subsignal_protocol::change::error_code::UNAUTHENTICATED
    } else {
        error.error_type.as_str()
    };
    json!({ "message": error.message, "extensions": { "code": code, "errorType": error.error_type } })
}

impl Wire for AppSync {
    fn protocol(&self) -> Protocol {
        Protocol::AppSync
    }

    /// `header=<base64 JSON>&payload=e30=` (base64 percent-encoded).
    fn url_query(&self, credentials: &Credentials) -> Option<String> {
        let header = base64::engine::general_purpose::STANDARD.encode(header_object(credentials).to_string());
        let header = header.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
        Some(format!("header={header}&payload=e30%3D"))
    }

    fn init(&self, socket: u64, _: &Credentials) -> Output {
        Output::SendAppSync { socket, message: ClientMessage::ConnectionInit { payload: None } }
    }

    fn read(&self, text: &str) -> Option<Frame> {
        Some(match serde_json::from_str(text).ok()? {
            ServerMessage::ConnectionAck { payload } => {
                Frame::Ack { server_keepalive_ms: Some(payload.connection_timeout_ms.max(1)), epoch: None }
            }
            ServerMessage::ConnectionError { payload } => Frame::Fatal {
                code: CloseCode::Terminated,
                reason: "connection_error",
                auth: payload.errors.iter().any(|e| e.error_type == appsync::error_type::UNAUTHORIZED),
            },
            ServerMessage::Ka => Frame::Alive,
            ServerMessage::StartAck { id } => Frame::Started { id },
            ServerMessage::Data { id, payload } => Frame::Next { id, payload: Payload::Json(payload) },
            ServerMessage::Error { id: Some(id), payload } => {
                Frame::Error { id, errors: payload.errors.iter().map(graphql_error).collect() }
            }
            ServerMessage::Error { id: None, .. } => {
                Frame::Fatal { code: CloseCode::BadResponse, reason: "connection error", auth: false }
            }
            ServerMessage::Complete { id } => Frame::Complete { id },
        })
    }

    fn result_type(&self) -> &'static str {
        "data"
    }

    /// `start`, its `data` a JSON string of `{query, variables}` and `extensions.authorization` the header object.
    fn subscribe(
        &self,
        socket: u64,
        id: String,
        query: &str,
        variables: Option<Value>,
        credentials: &Credentials,
    ) -> Output {
        let data = json!({ "query": query, "variables": variables.unwrap_or_else(|| json!({})) });
        let payload = appsync::StartPayload {
            data: data.to_string(),
            extensions: Some(appsync::StartExtensions { authorization: header_object(credentials) }),
        };
        Output::SendAppSync { socket, message: ClientMessage::Start { id, payload } }
    }

    fn stop(&self, socket: u64, id: String) -> Output {
        Output::SendAppSync { socket, message: ClientMessage::Stop { id } }
    }

    fn ping(&self, _: u64) -> Option<Output> {
        None
    }

    fn pong(&self, _: u64) -> Option<Output> {
        None
    }

    fn acknowledges_subscriptions(&self) -> bool {
        true
    }
}
