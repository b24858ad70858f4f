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

use axum::extract::ws::Message;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::Response;
use base64::Engine;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::Value;
use subsignal_protocol::appsync::{
    error_type, AckPayload, AppSyncError, ClientMessage, ErrorPayload, ServerMessage, StartPayload, SUBPROTOCOL,
};
use subsignal_protocol::transport_ws::CloseCode;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::auth::Identity;
use crate::transport::{self, Bucket, Incoming, Outgoing, Subprotocol, POLICY_VIOLATION};
use crate::AppState;

/// `GET /graphql/realtime`: the AppSync real-time WebSocket.
pub(crate) async fn realtime(State(app): State<AppState>, request: Request) -> Response {
    let (slot, upgrade, parts) = match transport::admit(&app, request).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let credentials = handshake_identity(&app, &parts);
    // Only `graphql-ws` is ever selected: the `header-…` entry is credentials, not a protocol.
    transport::accept(app, slot, upgrade, &parts, Subprotocol::Required(SUBPROTOCOL), |app, socket| async move {
        let (sink, stream) = socket.split();
        Realtime::new(app, credentials).run(sink, stream).await;
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
fn verify_header(app: &AppState, header: &Value) -> Result<Identity, String> {
    if !header.is_object() {
        return Err("the authorization header object must be a JSON object".into());
    }
    match app.auth.from_params(header) {
        Ok(Some(identity)) => Ok(identity),
        Ok(None) => Err("no credentials: the header object needs x-api-key or Authorization".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The connection's identity from the handshake: the header object, else plain HTTP headers.
fn handshake_identity(app: &AppState, parts: &Parts) -> Result<Identity, String> {
    match header_object(parts) {
        Some(header) => verify_header(app, &header?),
        None => match app.auth.from_headers(&parts.headers) {
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

/// What handling one input leads to: messages to send, then perhaps a close.
struct Step {
    send: Vec<ServerMessage>,
    close: Option<(CloseCode, String)>,
}

impl Step {
    fn none() -> Self {
        Step { send: vec![], close: None }
    }

    fn send(message: ServerMessage) -> Self {
        Step { send: vec![message], close: None }
    }

    fn close(code: CloseCode, reason: impl Into<String>) -> Self {
        Step { send: vec![], close: Some((code, reason.into())) }
    }

    fn refuse(reason: &str) -> Self {
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

struct Realtime {
    app: AppState,
    identity: Result<Identity, String>,
    acked: bool,
    operations: HashMap<String, (u64, AbortHandle)>,
    generation: u64,
    bucket: Bucket,
    /// The earliest expiry of the tokens in use (the connection's and its subscriptions').
    expires_at: Option<i64>,
}

impl Realtime {
    fn new(app: AppState, identity: Result<Identity, String>) -> Self {
        let bucket = Bucket::new(app.config.max_messages_per_sec);
        let expires_at = identity.as_ref().ok().and_then(Identity::expires_at);
        Realtime { app, identity, acked: false, operations: HashMap::new(), generation: 0, bucket, expires_at }
    }

    async fn run<S, R>(mut self, mut sink: S, mut stream: R)
    where
        S: Sink<Message> + Unpin,
        R: Stream<Item = Result<Message, axum::Error>> + Unpin,
    {
        let (out_tx, mut out_rx) = mpsc::channel::<Outgoing<ServerMessage>>(256);
        // A client whose credentials were refused hears so at its first message, or at the init timeout.
        let refuse_deadline = tokio::time::sleep(self.app.config.ws_init_timeout);
        tokio::pin!(refuse_deadline);
        let ka_every = self.app.config.appsync_ka_interval;
        let mut ka = tokio::time::interval_at(tokio::time::Instant::now() + ka_every, ka_every);
        let expiry = tokio::time::sleep_until(transport::deadline_of(self.expires_at.unwrap_or(i64::MAX)));
        tokio::pin!(expiry);
        let mut armed_for = self.expires_at;
        let mut shutdown = self.app.shutdown.clone();
        let close_with = loop {
            let step = tokio::select! {
                _ = &mut refuse_deadline, if self.identity.is_err() => {
                    Step::refuse(self.identity.as_ref().err().map_or("", String::as_str))
                }
                _ = &mut expiry, if armed_for.is_some() => {
                    Step::close(CloseCode::Forbidden, "Forbidden: a token expired; reconnect with a fresh one")
                }
                _ = ka.tick(), if self.acked => Step::send(ServerMessage::Ka),
                _ = shutdown.changed() => Step::close(CloseCode::GoingAway, "Server is shutting down"),
                read = stream.next() => match transport::incoming(&self.app, &mut self.bucket, read) {
                    Incoming::Gone => break None,
                    Incoming::TooBig(reason) => Step {
                        send: vec![error(None, error_type::LIMIT_EXCEEDED, reason.clone())],
                        close: Some((CloseCode::MessageTooBig, reason)),
                    },
                    Incoming::TooFast(reason) => Step::close(POLICY_VIOLATION, reason),
                    Incoming::Text(text) => self.handle(text.as_str(), &out_tx),
                    Incoming::Binary => {
                        Step::send(error(None, error_type::UNKNOWN_OPERATION, "Binary messages are not accepted"))
                    }
                    Incoming::Ignored => Step::none(),
                },
                Some(out) = out_rx.recv() => match out {
                    Outgoing::Frame(message) => Step::send(message),
                    Outgoing::Finished { id, generation } => {
                        if self.operations.get(&id).is_some_and(|(g, _)| *g == generation) {
                            self.operations.remove(&id);
                        }
                        Step::none()
                    }
                },
            };
            if self.expires_at != armed_for {
                if let Some(exp) = self.expires_at {
                    expiry.as_mut().reset(transport::deadline_of(exp));
                }
                armed_for = self.expires_at;
            }
            let mut failed = false;
            for message in step.send {
                let text = serde_json::to_string(&message).unwrap_or_default();
                if sink.send(Message::Text(text.into())).await.is_err() {
                    failed = true;
                    break;
                }
            }
            if failed {
                break None;
            }
            if let Some(close) = step.close {
                break Some(close);
            }
        };
        for (_, (_, handle)) in self.operations.drain() {
            handle.abort();
        }
        transport::finish(sink, stream, close_with).await;
    }

    fn handle(&mut self, text: &str, out: &mpsc::Sender<Outgoing<ServerMessage>>) -> Step {
        if let Err(reason) = &self.identity {
            return Step::refuse(reason);
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
            ClientMessage::Start { id, payload } => self.start(id, payload, out),
            ClientMessage::Stop { id } => {
                if let Some((_, handle)) = self.operations.remove(&id) {
                    handle.abort();
                }
                Step::send(ServerMessage::Complete { id })
            }
        }
    }

    fn start(&mut self, id: String, payload: StartPayload, out: &mpsc::Sender<Outgoing<ServerMessage>>) -> Step {
        if self.operations.contains_key(&id) {
            return Step::send(error(Some(&id), error_type::DUPLICATE_ID, format!("Subscription {id} already exists")));
        }
        let max = self.app.config.max_subscriptions;
        if self.operations.len() >= max {
            let message = format!("Too many subscriptions on this connection (the limit is {max}).");
            return Step::send(error(Some(&id), error_type::MAX_SUBSCRIPTIONS, message));
        }
        let Some(authorization) = payload.extensions.as_ref().map(|e| &e.authorization) else {
            let message = "Unauthorized: start.payload.extensions.authorization is missing";
            return Step::send(error(Some(&id), error_type::UNAUTHORIZED, message));
        };
        let identity = match verify_header(&self.app, authorization) {
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
        self.generation += 1;
        // The subscription starts here: every change committed after `start_ack` reaches it.
        let subscribed_at = self.app.storage.feed().head();
        let handle = tokio::spawn(run_subscription(
            self.app.clone(),
            identity,
            id.clone(),
            self.generation,
            (data, subscribed_at),
            out.clone(),
        ))
        .abort_handle();
        self.operations.insert(id.clone(), (self.generation, handle));
        // Sent before anything the task sends: this step's messages go out before the next output is read.
        Step::send(ServerMessage::StartAck { id })
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
                "UNAUTHENTICATED" | "FORBIDDEN" => error_type::UNAUTHORIZED,
                "INTERNAL" => error_type::INTERNAL,
                "LIMIT_EXCEEDED" => error_type::LIMIT_EXCEEDED,
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

async fn run_subscription(
    app: AppState,
    identity: Identity,
    id: String,
    generation: u64,
    (data, subscribed_at): (StartData, i64),
    out: mpsc::Sender<Outgoing<ServerMessage>>,
) {
    use futures_util::FutureExt;
    let stream = stream_subscription(app, identity, id.clone(), data, subscribed_at, out.clone());
    if let Err(panic) = std::panic::AssertUnwindSafe(stream).catch_unwind().await {
        let error = crate::schema::internal(format!("subscription {id} panicked: {}", transport::panic_text(&*panic)));
        let error = error.into_server_error(async_graphql::Pos::default());
        let message = error_message(&id, appsync_errors(&[error]));
        let _ = out.send(Outgoing::Frame(message)).await;
    }
    let _ = out.send(Outgoing::Finished { id, generation }).await;
}

async fn stream_subscription(
    app: AppState,
    identity: Identity,
    id: String,
    data: StartData,
    subscribed_at: i64,
    out: mpsc::Sender<Outgoing<ServerMessage>>,
) {
    let limit = app.config.max_message_bytes;
    let request =
        transport::graphql_request(data.query, data.variables, data.operation_name, Some(identity), subscribed_at);
    let mut responses = app.schema.execute_stream(request);
    while let Some(response) = responses.next().await {
        if response.data == async_graphql::Value::Null && !response.errors.is_empty() {
            let _ = out.send(Outgoing::Frame(error_message(&id, appsync_errors(&response.errors)))).await;
            return;
        }
        let message =
            ServerMessage::Data { id: id.clone(), payload: serde_json::to_value(&response).unwrap_or_default() };
        let size = serde_json::to_string(&message).map_or(0, |text| text.len());
        if size > limit {
            // AppSync's payload limit: the event is not delivered, and the subscription ends.
            let text = format!("The event is {size} bytes; the payload limit is {limit} bytes.");
            let _ = out.send(Outgoing::Frame(error(Some(&id), error_type::LIMIT_EXCEEDED, text))).await;
            return;
        }
        if out.send(Outgoing::Frame(message)).await.is_err() {
            return;
        }
    }
    let _ = out.send(Outgoing::Frame(ServerMessage::Complete { id })).await;
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
