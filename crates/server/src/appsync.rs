//! The AWS AppSync real-time protocol on `/graphql/realtime` (subprotocol `graphql-ws`), beside graphql-transport-ws
//! on `/graphql`, so that AWS's own clients (Amplify, `aws-appsync-subscription-link`) subscribe to subsignal
//! unchanged: they derive the real-time URL of a non-AWS host by appending `/realtime` to the GraphQL endpoint.
//!
//! The handshake carries a header object — `{"host", "x-api-key"}` or `{"host", "Authorization": <JWT>}` — as
//! `?header=<base64 JSON>&payload=e30=`, as a `Sec-WebSocket-Protocol` entry `header-<base64url JSON>`, or as plain
//! HTTP headers. Missing or refused credentials get `connection_error` (`UnauthorizedException`), then close 4401.
//! After `connection_init` the server answers `connection_ack` with `connectionTimeoutMs` and sends `ka` every
//! `appsync-ka-interval-ms`. Each `start` carries its request as a JSON *string* and its own authorization header
//! object, verified by the same rules; the subscription runs as the identity of that object, never as one taken from
//! the request. Problems with one subscription are `error` messages for its id, with AppSync's `errorType` names.
//!
//! The limits are those of `/graphql` (see `transport`): message size (an `error` with `LimitExceededError`, then
//! close 1009), subscriptions per connection, the `Origin` allow-list, connections per address, messages per second
//! (close 1008); an outgoing event larger than the message limit ends its subscription with `LimitExceededError`, as
//! AppSync's 240 KB payload limit does. When a token of the connection or of a subscription expires, the connection
//! closes with 4403.

use std::collections::HashMap;

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::Response;
use base64::Engine;
use futures_util::StreamExt;
use serde_json::Value;
use subsignal_protocol::appsync::{
    error_type, AckPayload, AppSyncError, ClientMessage, ErrorPayload, ServerMessage, StartPayload, SUBPROTOCOL,
};
use subsignal_protocol::change::error_code;
use subsignal_protocol::transport_ws::CloseCode;

use crate::auth::Identity;
use crate::fanout::Operation;
use crate::session::{self, Protocol, Session, Step};
use crate::transport::{self, Subprotocol};
use crate::AppState;

/// `GET /graphql/realtime`: the AppSync real-time WebSocket.
pub(crate) async fn realtime(State(app): State<AppState>, request: Request) -> Response {
    let (slot, upgrade, parts) = match transport::admit(&app, request).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let credentials = handshake_identity(&app, &parts).await;
    // Only `graphql-ws` is ever selected: the `header-…` entry is credentials, not a protocol.
    transport::accept(app, slot, upgrade, &parts, Subprotocol::Required(SUBPROTOCOL), |app, client, socket| {
        let (sink, stream) = socket.split();
        session::serve(app.clone(), client, Realtime::new(app, credentials), sink, stream)
    })
}

/// Decodes base64 in any of the alphabets AWS clients use (standard or URL-safe, padded or not); a `+` that a query
/// string turned into a space is put back.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = text.trim().replace(' ', "+");
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|engine| engine.decode(&text).ok())
}

/// The handshake's header object, if the client sent one: `?header=` or a `header-` subprotocol entry.
fn header_object(parts: &Parts) -> Option<Result<Value, String>> {
    let from_query = axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .ok()
        .and_then(|query| query.0.get("header").cloned());
    let from_protocol = || {
        parts
            .headers
            .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|p| p.trim().strip_prefix("header-").map(str::to_owned))
    };
    let encoded = from_query.or_else(from_protocol)?;
    Some(
        decode_base64(&encoded).ok_or_else(|| "the header object is not base64".to_owned()).and_then(|bytes| {
            serde_json::from_slice(&bytes).map_err(|e| format!("the header object is not JSON: {e}"))
        }),
    )
}

/// Checks a header object: `x-api-key` or `Authorization` (a JWT, with or without `Bearer `).
async fn verify_header(app: &AppState, header: &Value) -> Result<Identity, String> {
    if !header.is_object() {
        return Err("the authorization header object must be a JSON object".into());
    }
    match app.auth.from_params(header).await {
        Ok(Some(identity)) => Ok(identity),
        Ok(None) => Err("no credentials: the header object needs x-api-key or Authorization".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The connection's identity from the handshake: the header object, else plain HTTP headers.
async fn handshake_identity(app: &AppState, parts: &Parts) -> Result<Identity, String> {
    match header_object(parts) {
        Some(header) => verify_header(app, &header?).await,
        None => match app.auth.from_headers(&parts.headers).await {
            Ok(Some(identity)) => Ok(identity),
            Ok(None) => Err("no credentials: pass the header object as ?header= or a header- subprotocol".into()),
            Err(e) => Err(e.to_string()),
        },
    }
}

fn errors(error_type: &str, message: impl Into<String>) -> ErrorPayload {
    ErrorPayload {
        errors: vec![AppSyncError { error_type: error_type.into(), message: message.into(), error_code: None }],
    }
}

fn error(id: Option<&str>, error_type: &str, message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error { id: id.map(str::to_owned), payload: errors(error_type, message) }
}

/// Refused credentials: `connection_error` (`UnauthorizedException`), then close 4401.
fn refuse(reason: &str) -> Step<ServerMessage> {
    Step {
        send: vec![ServerMessage::ConnectionError {
            payload: ErrorPayload {
                errors: vec![AppSyncError {
                    error_type: error_type::UNAUTHORIZED.into(),
                    message: format!("Unauthorized: {reason}"),
                    error_code: Some(401),
                }],
            },
        }],
        close: Some((CloseCode::Unauthorized, "Unauthorized".into())),
    }
}

/// The request inside `start.payload.data`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartData {
    query: String,
    #[serde(default)]
    variables: Option<Value>,
    #[serde(default)]
    operation_name: Option<String>,
}

/// AppSync's real-time protocol, as the session engine's [`Protocol`].
struct Realtime {
    app: AppState,
    identity: Result<Identity, String>,
    acked: bool,
    /// The earliest expiry of the tokens in use (the connection's and its subscriptions').
    expires_at: Option<i64>,
}

impl Realtime {
    fn new(app: AppState, identity: Result<Identity, String>) -> Self {
        let expires_at = identity.as_ref().ok().and_then(Identity::expires_at);
        Realtime { app, identity, acked: false, expires_at }
    }

    async fn handle(&mut self, session: &mut Session<Self>, text: &str) -> Step<ServerMessage> {
        if let Err(reason) = &self.identity {
            return refuse(reason);
        }
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return Step::send(error(None, error_type::UNKNOWN_OPERATION, format!("Invalid message: {e}"))),
        };
        let id = value.get("id").and_then(Value::as_str).map(str::to_owned);
        let kind = value.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
        if !matches!(kind.as_str(), "connection_init" | "start" | "stop") {
            let message = format!("Unknown message type {kind:?}: expected connection_init, start or stop");
            return Step::send(error(id.as_deref(), error_type::UNKNOWN_OPERATION, message));
        }
        let message: ClientMessage = match serde_json::from_value(value) {
            Ok(m) => m,
            Err(e) => {
                let message = format!("Invalid {kind} message: {e}");
                return Step::send(error(id.as_deref(), error_type::VALIDATION, message));
            }
        };
        match message {
            ClientMessage::ConnectionInit { .. } => {
                self.acked = true;
                let timeout = self.app.config.appsync_connection_timeout.as_millis();
                let ack = ServerMessage::ConnectionAck {
                    payload: AckPayload { connection_timeout_ms: u64::try_from(timeout).unwrap_or(u64::MAX) },
                };
                // AppSync sends a first `ka` right after the ack.
                Step { send: vec![ack, ServerMessage::Ka], close: None }
            }
            ClientMessage::Start { id, payload } => self.start(session, id, payload).await,
            ClientMessage::Stop { id } => {
                session.stop(&id);
                Step::send(ServerMessage::Complete { id })
            }
        }
    }

    async fn start(&mut self, session: &mut Session<Self>, id: String, payload: StartPayload) -> Step<ServerMessage> {
        if session.running(&id) {
            return Step::send(error(Some(&id), error_type::DUPLICATE_ID, format!("Subscription {id} already exists")));
        }
        let max = self.app.config.max_subscriptions;
        if session.count() >= max {
            let message = format!("Too many subscriptions on this connection (the limit is {max}).");
            return Step::send(error(Some(&id), error_type::MAX_SUBSCRIPTIONS, message));
        }
        let Some(authorization) = payload.extensions.as_ref().map(|e| &e.authorization) else {
            let message = "Unauthorized: start.payload.extensions.authorization is missing";
            return Step::send(error(Some(&id), error_type::UNAUTHORIZED, message));
        };
        let identity = match verify_header(&self.app, authorization).await {
            Ok(identity) => identity,
            Err(e) => return Step::send(error(Some(&id), error_type::UNAUTHORIZED, format!("Unauthorized: {e}"))),
        };
        let data: StartData = match serde_json::from_str(&payload.data) {
            Ok(data) => data,
            Err(e) => {
                let message = format!("start.payload.data must be a JSON string of {{query, variables}}: {e}");
                return Step::send(error(Some(&id), error_type::VALIDATION, message));
            }
        };
        if let Err(e) = async_graphql::parser::parse_query(&data.query) {
            return Step::send(error(Some(&id), error_type::VALIDATION, e.to_string()));
        }
        if let Some(exp) = identity.expires_at() {
            self.expires_at = Some(self.expires_at.map_or(exp, |current| current.min(exp)));
        }
        // The subscription starts here: every change committed after `start_ack` reaches it.
        let subscribed_at = self.app.storage.feed().head();
        let op = Operation {
            query: data.query,
            variables: data.variables.unwrap_or_default(),
            operation_name: data.operation_name,
            identity: Some(identity),
            subscribed_at,
        };
        session.start(id.clone(), op);
        // Sent before anything the task sends: this step's messages go out before the next output is read.
        Step::send(ServerMessage::StartAck { id })
    }
}

impl Protocol for Realtime {
    const NAME: &'static str = "appsync";
    type Message = ServerMessage;

    async fn on_text(&mut self, session: &mut Session<Self>, text: &str) -> Step<ServerMessage> {
        self.handle(session, text).await
    }

    fn on_too_big(&mut self, reason: String) -> Step<ServerMessage> {
        Step {
            send: vec![error(None, error_type::LIMIT_EXCEEDED, reason.clone())],
            close: Some((CloseCode::MessageTooBig, reason)),
        }
    }

    fn on_binary(&mut self) -> Step<ServerMessage> {
        Step::send(error(None, error_type::UNKNOWN_OPERATION, "Binary messages are not accepted"))
    }

    /// A client whose credentials were refused hears so at its first message, or now.
    fn on_init_timeout(&mut self) -> Step<ServerMessage> {
        match &self.identity {
            Err(reason) => refuse(reason),
            Ok(_) => Step::none(),
        }
    }

    fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }

    fn keepalive_every(&self) -> Option<std::time::Duration> {
        Some(self.app.config.appsync_ka_interval)
    }

    fn keepalive(&self) -> Option<ServerMessage> {
        self.acked.then_some(ServerMessage::Ka)
    }

    /// A `data` message; an event larger than the message limit is not delivered and ends the subscription, as
    /// AppSync's payload limit does.
    fn result(id: &str, payload: &str, max_bytes: usize) -> Result<String, ServerMessage> {
        let text = format!(r#"{{"id":{},"type":"data","payload":{payload}}}"#, serde_json::Value::from(id));
        if text.len() > max_bytes {
            let message = format!("The event is {} bytes; the payload limit is {max_bytes} bytes.", text.len());
            return Err(error(Some(id), error_type::LIMIT_EXCEEDED, message));
        }
        Ok(text)
    }

    fn error(id: &str, errors: &[async_graphql::ServerError]) -> ServerMessage {
        error_message(id, appsync_errors(errors))
    }

    fn complete(id: &str) -> ServerMessage {
        ServerMessage::Complete { id: id.to_owned() }
    }
}

/// A GraphQL error of the schema as AppSync's: its `errorType` from the schema's code, which the message keeps.
fn appsync_errors(errors: &[async_graphql::ServerError]) -> Vec<AppSyncError> {
    errors
        .iter()
        .map(|e| {
            let value = serde_json::to_value(e).unwrap_or_default();
            let code = value.pointer("/extensions/code").and_then(Value::as_str).unwrap_or_default();
            let error_type = match code {
                error_code::UNAUTHENTICATED | error_code::FORBIDDEN => error_type::UNAUTHORIZED,
                error_code::INTERNAL => error_type::INTERNAL,
                error_code::LIMIT_EXCEEDED => error_type::LIMIT_EXCEEDED,
                _ => error_type::VALIDATION,
            };
            let message = if code.is_empty() { e.message.clone() } else { format!("{} ({code})", e.message) };
            AppSyncError { error_type: error_type.into(), message, error_code: None }
        })
        .collect()
}

/// An `error` for `id`.
fn error_message(id: &str, errors: Vec<AppSyncError>) -> ServerMessage {
    ServerMessage::Error { id: Some(id.to_owned()), payload: ErrorPayload { errors } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_in_every_alphabet_aws_clients_use() {
        let json = br#"{"x-api-key":"k>?~"}"#;
        for engine in [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
        ] {
            assert_eq!(decode_base64(&engine.encode(json)).as_deref(), Some(&json[..]));
        }
        let spaced = base64::engine::general_purpose::STANDARD.encode(json).replace('+', " ");
        assert_eq!(decode_base64(&spaced).as_deref(), Some(&json[..]));
        assert_eq!(decode_base64("%%%"), None);
    }
}
