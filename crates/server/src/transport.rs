//! Transports: graphql-transport-ws on `/graphql` (a WebSocket upgrade of `GET /graphql`; other requests go to
//! [`crate::http`]) and on `/graphql/ws` (WebSocket only, for proxies that route by path),
//! implemented here to the letter of the protocol: ordering, close codes and limits.
//!
//! Limits enforced here (see README, "Running subsignal safely"): request header bytes (431), HTTP body and
//! WebSocket frame/message size (413 / close 1009), WebSocket connections per client address (429, before the
//! upgrade), `Origin` allow-list (403), messages per second per connection (close 1008), operations per connection
//! (an `error` for that id), the connection_init timeout (4408), and the identity's expiry: when a connection's JWT
//! expires, the connection closes with 4403 (the reference client and subsignal's store reconnect with fresh
//! credentials and resume with `afterSeq`), and every subscribe re-verifies the credentials first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{FromRequestParts, Request, State, WebSocketUpgrade};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use subsignal_protocol::change::error_code;
use subsignal_protocol::transport_ws::{ClientMessage, CloseCode, ServerMessage, SUBPROTOCOL};
use tokio::time::Instant;

use crate::auth::{Credentials, Identity};
use crate::fanout::Operation;
use crate::session::{self, Protocol, Session, Step};
use crate::AppState;

/// Middleware on every route: a request whose headers (names and values) exceed `max-header-bytes` gets 431 before
/// any handler runs (hyper's own cap is its read buffer, about 400 KB).
pub(crate) async fn limit_headers(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let bytes: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if bytes > app.config.max_header_bytes {
        let message = format!(
            "Request header fields too large: {bytes} bytes of headers; the limit is {}.",
            app.config.max_header_bytes
        );
        refused("header_bytes");
        return (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, message).into_response();
    }
    next.run(request).await
}

/// Counts a refusal by `limit` in [`crate::telemetry::LIMIT_REFUSALS`].
fn refused(limit: &'static str) {
    metrics::counter!(crate::telemetry::LIMIT_REFUSALS, "limit" => limit).increment(1);
}

/// Open WebSocket connections per client address.
#[derive(Debug, Default)]
pub(crate) struct ConnectionCounts {
    by_addr: Mutex<HashMap<IpAddr, usize>>,
    /// Woken whenever a connection ends.
    closed: tokio::sync::Notify,
}

/// One open connection of an address; dropping it gives the slot back.
pub(crate) struct ConnectionSlot {
    counts: Arc<ConnectionCounts>,
    addr: IpAddr,
}

impl ConnectionCounts {
    /// Waits until every WebSocket connection has ended (sent its close frame and lingered), at most `limit`.
    pub(crate) async fn drained(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            loop {
                let closed = self.closed.notified();
                tokio::pin!(closed);
                closed.as_mut().enable();
                if self.by_addr.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
                    return;
                }
                closed.await;
            }
        })
        .await;
    }

    fn take(self: &Arc<Self>, addr: IpAddr, max: usize) -> Option<ConnectionSlot> {
        let mut counts = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(addr).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot { counts: self.clone(), addr })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.addr) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.addr);
            }
        }
        drop(counts);
        self.counts.closed.notify_waiters();
    }
}

/// `GET /graphql`: a WebSocket upgrade, else GraphQL over HTTP (a query, or GraphiQL for people; see [`crate::http`]).
pub(crate) async fn graphql_get(state: State<AppState>, request: Request) -> Response {
    let wants_ws = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !wants_ws {
        return crate::http::get(state, request).await;
    }
    transport_ws(state, request, Subprotocol::Required(SUBPROTOCOL)).await
}

/// `GET /graphql/ws`: graphql-transport-ws on a WebSocket-only path, which names the protocol, so a client may also
/// offer no subprotocol at all. That is for proxies that route WebSocket and HTTP by path and cannot negotiate a
/// subprotocol, such as `trunk serve` (0.21 answers none, and browsers then fail a handshake that offered one).
pub(crate) async fn graphql_ws(state: State<AppState>, request: Request) -> Response {
    transport_ws(state, request, Subprotocol::ByPath(SUBPROTOCOL)).await
}

async fn transport_ws(State(app): State<AppState>, request: Request, subprotocol: Subprotocol) -> Response {
    let (slot, upgrade, parts) = match admit(&app, request).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    accept(app, slot, upgrade, &parts, subprotocol, |app, client, socket| {
        let (sink, stream) = socket.split();
        session::serve(app.clone(), client, Connection::new(app), sink, stream)
    })
}

/// The checks every WebSocket endpoint makes before upgrading: the `Origin` allow-list (403) and the per-address
/// connection cap (429). Gives the connection's slot (dropping it frees the slot), the upgrade, and the request's
/// parts (headers and URI, for endpoints that read credentials from them).
pub(crate) async fn admit(
    app: &AppState,
    request: Request,
) -> Result<(ConnectionSlot, WebSocketUpgrade, axum::http::request::Parts), Response> {
    if !app.config.allowed_origins.is_empty() {
        let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !app.config.allowed_origins.iter().any(|o| o == origin) {
            return Err((StatusCode::FORBIDDEN, "Origin not allowed").into_response());
        }
    }
    let addr = crate::edge::client_addr(&app.config, request.extensions(), request.headers());
    let max = app.config.max_connections_per_addr;
    let Some(slot) = app.connections.take(addr, max) else {
        let message = format!("Too many WebSocket connections from {addr} (the limit is {max}).");
        refused("connections_per_addr");
        return Err((StatusCode::TOO_MANY_REQUESTS, message).into_response());
    };
    let (mut parts, _) = request.into_parts();
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, app).await.map_err(IntoResponse::into_response)?;
    Ok((slot, upgrade, parts))
}

/// The subprotocol offers a WebSocket endpoint accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Subprotocol {
    /// The client must offer this subprotocol.
    Required(&'static str),
    /// The client offers this subprotocol or none: the endpoint's path names the protocol.
    ByPath(&'static str),
}

/// Upgrades an admitted connection with the message-size limits, and hands the socket to `serve` when the client's
/// offer (in `parts`) is acceptable; otherwise closes it with 4406. The connection keeps its slot until it ends.
pub(crate) fn accept<F, Fut>(
    app: AppState,
    slot: ConnectionSlot,
    upgrade: WebSocketUpgrade,
    parts: &axum::http::request::Parts,
    subprotocol: Subprotocol,
    serve: F,
) -> Response
where
    F: FnOnce(AppState, IpAddr, WebSocket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let limit = app.config.max_message_bytes;
    let offered_none = !parts.headers.contains_key(header::SEC_WEBSOCKET_PROTOCOL);
    let (Subprotocol::Required(name) | Subprotocol::ByPath(name)) = subprotocol;
    // tungstenite allocates its whole read buffer (128 KiB by default) for every socket up front; GraphQL messages
    // are small, and a larger one grows the buffer for as long as it needs it. The write side already grows on demand.
    let upgrade =
        upgrade.protocols([name]).max_message_size(limit).max_frame_size(limit).read_buffer_size(READ_BUFFER_BYTES);
    let acceptable =
        upgrade.selected_protocol().is_some() || (offered_none && matches!(subprotocol, Subprotocol::ByPath(_)));
    // The connection's future is made here rather than in an `async` block that would keep `app` and the socket
    // beside it for the connection's whole life (see `session::serve`).
    upgrade.on_upgrade(move |socket| {
        if acceptable {
            // The slot is held until the connection ends.
            let addr = slot.addr;
            Either::Left(serve(app, addr, socket).map(move |()| drop(slot)))
        } else {
            let reason = format!("Subprotocol not acceptable; use {name}");
            Either::Right(async move { close(socket, CloseCode::SubprotocolNotAcceptable, &reason).await })
        }
    })
}

/// Each WebSocket's initial read buffer.
const READ_BUFFER_BYTES: usize = 512;

/// A close frame; the reason is cut to the 123 bytes a close frame can carry.
pub(crate) fn close_frame(code: CloseCode, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame { code: code.code(), reason: reason[..end].into() }))
}

pub(crate) async fn close(mut socket: WebSocket, code: CloseCode, reason: &str) {
    let _ = socket.send(close_frame(code, reason)).await;
}

/// The policy-violation close code (RFC 6455): graphql-transport-ws has no code for rate limits.
pub(crate) const POLICY_VIOLATION: CloseCode = CloseCode::Other(1008);

/// How long a closing connection keeps the socket open so that the client can read the close frame.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// A token bucket holding one second's worth of messages.
pub(crate) struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub(crate) fn new(per_sec: u32) -> Self {
        Bucket { rate: f64::from(per_sec), tokens: f64::from(per_sec), last: Instant::now() }
    }

    pub(crate) fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Whether a read error means the peer sent a frame or message over the size limit.
fn too_big(error: &axum::Error) -> bool {
    let text = error.to_string();
    text.contains("Space limit exceeded") || text.contains("too long") || text.contains("too big")
}

/// One WebSocket read, after the limits every endpoint shares: message size, and messages per second.
pub(crate) enum Incoming {
    /// The client closed (with this code, if its close frame had one), or the read failed: stop, without a close
    /// frame of ours.
    Gone(Option<u16>),
    /// Over the size limit; the reason to close with.
    TooBig(String),
    /// Over the message rate; the reason to close with.
    TooFast(String),
    Text(axum::extract::ws::Utf8Bytes),
    Binary,
    /// Ping and pong, which the WebSocket library answers.
    Ignored,
}

/// Applies the shared limits to one read (every message, a close included, takes a token from `bucket`).
pub(crate) fn incoming(app: &AppState, bucket: &mut Bucket, read: Option<Result<Message, axum::Error>>) -> Incoming {
    match read {
        None => Incoming::Gone(None),
        Some(Err(e)) if too_big(&e) => {
            tracing::debug!(error = %e, "websocket message too big");
            refused("message_bytes");
            Incoming::TooBig(format!("Message too big: the limit is {} bytes", app.config.max_message_bytes))
        }
        Some(Err(e)) => {
            tracing::debug!(error = %e, "websocket read failed");
            Incoming::Gone(None)
        }
        Some(Ok(_)) if !bucket.take() => {
            refused("messages_per_sec");
            Incoming::TooFast(format!(
                "Rate limit exceeded: more than {} messages per second",
                app.config.max_messages_per_sec
            ))
        }
        Some(Ok(Message::Text(text))) => Incoming::Text(text),
        Some(Ok(Message::Binary(_))) => Incoming::Binary,
        Some(Ok(Message::Close(frame))) => Incoming::Gone(Some(frame.map_or(1005, |f| f.code))),
        Some(Ok(_)) => Incoming::Ignored,
    }
}

/// graphql-transport-ws, as the session engine's [`Protocol`].
pub(crate) struct Connection {
    app: AppState,
    init_seen: bool,
    acked: bool,
    identity: Option<Identity>,
    /// The credentials the `connection_init` payload carried, verified again at every subscribe.
    credentials: Credentials,
}

impl Connection {
    pub(crate) fn new(app: AppState) -> Self {
        Connection { app, init_seen: false, acked: false, identity: None, credentials: Credentials::None }
    }
}

impl Protocol for Connection {
    const NAME: &'static str = "graphql-transport-ws";
    type Message = ServerMessage;

    async fn on_text(&mut self, session: &mut Session<Self>, text: &str) -> Step<ServerMessage> {
        let message: ClientMessage = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => return Step::close(CloseCode::BadRequest, format!("Invalid message received: {e}")),
        };
        match message {
            ClientMessage::ConnectionInit { payload } => {
                if self.init_seen {
                    return Step::close(CloseCode::TooManyInitialisationRequests, "Too many initialisation requests");
                }
                self.init_seen = true;
                self.credentials = Credentials::from_params(&payload.unwrap_or_default());
                match self.app.auth.verify(&self.credentials).await {
                    Ok(identity) => {
                        self.identity = identity;
                        self.acked = true;
                        // The change log's epoch: a client resuming from a cursor of another log resnapshots.
                        let epoch = serde_json::json!({ "epoch": self.app.storage.epoch() });
                        Step::send(ServerMessage::ConnectionAck { payload: Some(epoch) })
                    }
                    Err(e) => Step::close(CloseCode::Forbidden, format!("Forbidden: {e}")),
                }
            }
            ClientMessage::Ping { .. } => Step::send(ServerMessage::Pong { payload: None }),
            ClientMessage::Pong { .. } => Step::none(),
            ClientMessage::Subscribe { id, payload } => {
                if !self.acked {
                    return Step::close(CloseCode::Unauthorized, "Unauthorized");
                }
                if session.running(&id) {
                    return Step::close(
                        CloseCode::SubscriberAlreadyExists,
                        format!("Subscriber for {id} already exists"),
                    );
                }
                // Credentials are checked again at every subscribe: an expired token starts nothing.
                if let Err(e) = self.app.auth.verify(&self.credentials).await {
                    let error = serde_json::json!({
                        "message": format!("Unauthenticated: {e}"),
                        "extensions": {"code": error_code::UNAUTHENTICATED}
                    });
                    return Step::send(ServerMessage::Error { id, payload: vec![error] });
                }
                let max = self.app.config.max_subscriptions;
                if session.count() >= max {
                    let error = serde_json::json!({
                        "message": format!("Too many operations on this connection (the limit is {max})."),
                        "extensions": {"code": error_code::LIMIT_EXCEEDED}
                    });
                    return Step::send(ServerMessage::Error { id, payload: vec![error] });
                }
                // A subscription without `afterSeq` starts here, at the moment the message arrived.
                let subscribed_at = self.app.storage.feed().head();
                let op = Operation {
                    query: payload.query,
                    variables: payload.variables.unwrap_or_default(),
                    operation_name: payload.operation_name,
                    identity: self.identity.clone(),
                    subscribed_at,
                };
                session.start(id, op);
                Step::none()
            }
            ClientMessage::Complete { id } => {
                session.stop(&id);
                Step::none()
            }
        }
    }

    fn on_too_big(&mut self, reason: String) -> Step<ServerMessage> {
        Step::close(CloseCode::MessageTooBig, reason)
    }

    fn on_binary(&mut self) -> Step<ServerMessage> {
        Step::close(CloseCode::BadRequest, "Binary messages are not accepted")
    }

    fn on_init_timeout(&mut self) -> Step<ServerMessage> {
        if self.init_seen {
            Step::none()
        } else {
            Step::close(CloseCode::ConnectionInitTimeout, "Connection initialisation timeout")
        }
    }

    fn expires_at(&self) -> Option<i64> {
        self.identity.as_ref().and_then(Identity::expires_at)
    }

    fn result(id: &str, payload: &str, _max_bytes: usize) -> Result<String, ServerMessage> {
        Ok(format!(r#"{{"id":{},"type":"next","payload":{payload}}}"#, serde_json::Value::from(id)))
    }

    fn error(id: &str, errors: &[async_graphql::ServerError]) -> ServerMessage {
        let payload = errors.iter().map(|e| serde_json::to_value(e).unwrap_or_default()).collect();
        ServerMessage::Error { id: id.to_owned(), payload }
    }

    fn complete(id: &str) -> ServerMessage {
        ServerMessage::Complete { id: id.to_owned() }
    }
}

/// Ends a connection: sends the close frame if there is one, lingers so that the client can read it, and completes
/// the closing handshake.
pub(crate) async fn finish<S, R>(mut sink: S, mut stream: R, close_with: Option<(CloseCode, String)>)
where
    S: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    if let Some((code, reason)) = close_with {
        if sink.send(close_frame(code, &reason)).await.is_ok() {
            // Keep the socket open briefly, reading (and dropping) what still arrives, so that the client reads
            // the close frame before the TCP connection goes: closing with unread input would reset it, and a
            // reset can destroy the close frame in flight.
            let _ = tokio::time::timeout(CLOSE_LINGER, async {
                while let Some(Ok(message)) = stream.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    }
    // Completes the closing handshake: answers a client's close frame (or flushes ours) before the socket goes.
    let _ = tokio::time::timeout(CLOSE_LINGER, sink.close()).await;
}

/// What a panic carried, as text.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}
