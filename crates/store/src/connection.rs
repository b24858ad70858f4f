//! The client connection state machine: open, `connection_init`, ack, keep-alive, close and reconnect.
//!
//! It knows nothing about collections: it turns socket events and frames into [`ConnEvent`]s for the store, and
//! emits socket outputs itself. Every socket gets a fresh number, so events from a socket the machine has already
//! abandoned are recognised and ignored.
//!
//! It speaks one of two [`Protocol`]s. graphql-transport-ws (the default) keeps a quiet socket alive with `ping`s.
//! The AWS AppSync real-time protocol has no pings: the server sends `ka` frames, and a socket on which no frame at all
//! arrives for the `connectionTimeoutMs` of its `connection_ack` is declared dead and replaced. The store always speaks
//! in graphql-transport-ws terms (`subscribe`, `complete`); in AppSync mode this machine translates them to `start`
//! (its `data` a JSON string of `{query, variables}`, `extensions.authorization` the auth object plus `host`) and
//! `stop`, and reports `start_ack`/`data`/`error`/`complete` as the same events.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use subsignal_protocol::appsync;
use subsignal_protocol::transport_ws::{ClientMessage, CloseCode, ServerMessage};

use crate::rng::{backoff_delay, Rng};
use crate::store::Output;

/// Timeouts and backoff of the connection, all in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConnectionConfig {
    /// How long a socket may take to open before the attempt counts as failed.
    pub connect_timeout_ms: u64,
    /// How long to wait for `connection_ack` after `connection_init`; then close with 4504 and retry.
    pub ack_timeout_ms: u64,
    /// After this long without any frame from the server, send a `ping`.
    pub ping_interval_ms: u64,
    /// After a `ping`, if no frame at all arrives within this time, close with 4499 and reconnect.
    pub pong_timeout_ms: u64,
    /// The backoff base: the n-th consecutive failure waits a uniform random time in `[0, min(cap, base·2^(n-1))]`.
    pub backoff_base_ms: u64,
    /// The backoff cap.
    pub backoff_cap_ms: u64,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 10_000,
            ack_timeout_ms: 10_000,
            ping_interval_ms: 10_000,
            pong_timeout_ms: 5_000,
            backoff_base_ms: 500,
            backoff_cap_ms: 30_000,
        }
    }
}

/// The WebSocket protocol the store speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// graphql-transport-ws (subprotocol `graphql-transport-ws`): `afterSeq` replay, `ping`/`pong` keep-alive.
    #[default]
    #[serde(rename = "graphql-transport-ws", alias = "transportWs")]
    TransportWs,
    /// The AWS AppSync real-time protocol (subprotocol `graphql-ws`): `ka` liveness, `start`/`stop`, no replay, so
    /// every collection takes a fresh snapshot after each (re)connect.
    #[serde(rename = "appsync", alias = "appSync")]
    AppSync,
}

impl Protocol {
    /// The WebSocket subprotocol to request.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Self::TransportWs => "graphql-transport-ws",
            Self::AppSync => appsync::SUBPROTOCOL,
        }
    }
}

/// What the connection is doing, as shown to users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum ConnectionStatus {
    /// Not started, or stopped by [`Input::Disconnect`](crate::Input::Disconnect).
    Disconnected,
    /// A socket is opening or waiting for `connection_ack`; `attempt` counts the failures before it.
    Connecting {
        /// Consecutive failed attempts before this one (0 for a first try).
        attempt: u32,
    },
    /// Acknowledged: subscriptions run.
    Live,
    /// Waiting to retry after a retryable failure.
    Reconnecting {
        /// Consecutive failures so far (1 after the first).
        attempt: u32,
        /// When the next attempt starts, on the shell's clock.
        #[serde(rename = "retryAtMs")]
        retry_at_ms: u64,
    },
    /// The shell reported that the browser is offline; reconnects as soon as it is back online.
    Offline,
    /// A fatal close code: no retry until [`Input::Connect`](crate::Input::Connect).
    Failed {
        /// The close code and reason.
        reason: String,
    },
}

/// What the connection tells the store.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConnEvent {
    /// `connection_ack` arrived: subscribe now.
    Up,
    /// A live connection was lost: every subscription on it is gone.
    Down,
    /// The server refused the credentials (close 4403): the shell should refresh them.
    AuthRejected,
    /// A `next` for an operation id.
    Next { id: String, payload: Value },
    /// An `error` for an operation id.
    Error { id: String, errors: Vec<Value> },
    /// A `complete` for an operation id.
    Complete { id: String },
    /// AppSync's `start_ack`: the subscription is registered, so a snapshot taken from now on misses nothing.
    Started { id: String },
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Disconnected,
    Opening { socket: u64, deadline: u64 },
    Handshaking { socket: u64, deadline: u64 },
    Live { socket: u64, last_rx: u64, ping_sent: Option<u64> },
    Backoff { retry_at: u64 },
    Offline,
    Failed { reason: String },
}

/// The connection state machine.
#[derive(Debug)]
pub(crate) struct Connection {
    cfg: ConnectionConfig,
    state: State,
    /// Whether the user wants a connection (between `Connect` and `Disconnect`).
    wanted: bool,
    /// The shell's online hint.
    online: bool,
    /// Consecutive failed attempts.
    failures: u32,
    next_socket: u64,
    auth: Option<Value>,
    protocol: Protocol,
    /// AppSync: the `host` entry of the authorization header object.
    host: Option<String>,
    /// AppSync: the `connectionTimeoutMs` of the last `connection_ack`.
    ka_timeout_ms: u64,
}

impl Connection {
    pub(crate) fn new(cfg: ConnectionConfig, auth: Option<Value>, protocol: Protocol, host: Option<String>) -> Self {
        Self {
            cfg,
            state: State::Disconnected,
            wanted: false,
            online: true,
            failures: 0,
            next_socket: 1,
            auth,
            protocol,
            host,
            ka_timeout_ms: appsync::DEFAULT_CONNECTION_TIMEOUT_MS,
        }
    }

    pub(crate) fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// AppSync's authorization header object: the auth object's entries plus `host`.
    fn header_object(&self) -> Value {
        let mut map = match &self.auth {
            Some(Value::Object(map)) => map.clone(),
            _ => serde_json::Map::new(),
        };
        if let Some(host) = &self.host {
            map.insert("host".to_owned(), json!(host));
        }
        Value::Object(map)
    }

    /// What the shell appends to the WebSocket URL: AppSync's `header=<base64 JSON>&payload=e30=` (base64
    /// percent-encoded), nothing for graphql-transport-ws.
    fn url_query(&self) -> Option<String> {
        if self.protocol != Protocol::AppSync {
            return None;
        }
        let header = base64::engine::general_purpose::STANDARD.encode(self.header_object().to_string());
        let header = header.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
        Some(format!("header={header}&payload=e30%3D"))
    }

    /// How many sockets this machine has asked for.
    #[cfg(test)]
    pub(crate) fn sockets_opened(&self) -> u64 {
        self.next_socket - 1
    }

    pub(crate) fn auth(&self) -> Option<&Value> {
        self.auth.as_ref()
    }

    pub(crate) fn set_auth(&mut self, auth: Option<Value>) {
        self.auth = auth;
    }

    pub(crate) fn is_live(&self) -> bool {
        matches!(self.state, State::Live { .. })
    }

    pub(crate) fn status(&self) -> ConnectionStatus {
        match &self.state {
            State::Disconnected => ConnectionStatus::Disconnected,
            State::Opening { .. } | State::Handshaking { .. } => {
                ConnectionStatus::Connecting { attempt: self.failures }
            }
            State::Live { .. } => ConnectionStatus::Live,
            State::Backoff { retry_at } => {
                ConnectionStatus::Reconnecting { attempt: self.failures, retry_at_ms: *retry_at }
            }
            State::Offline => ConnectionStatus::Offline,
            State::Failed { reason } => ConnectionStatus::Failed { reason: reason.clone() },
        }
    }

    fn socket(&self) -> Option<u64> {
        match self.state {
            State::Opening { socket, .. } | State::Handshaking { socket, .. } | State::Live { socket, .. } => {
                Some(socket)
            }
            _ => None,
        }
    }

    /// The earliest time at which [`Connection::tick`] has something to do.
    pub(crate) fn next_wake(&self) -> Option<u64> {
        match self.state {
            State::Opening { deadline, .. } | State::Handshaking { deadline, .. } => Some(deadline),
            State::Live { last_rx, .. } if self.protocol == Protocol::AppSync => {
                Some(last_rx.saturating_add(self.ka_timeout_ms))
            }
            State::Live { last_rx, ping_sent: None, .. } => Some(last_rx.saturating_add(self.cfg.ping_interval_ms)),
            State::Live { ping_sent: Some(sent), .. } => Some(sent.saturating_add(self.cfg.pong_timeout_ms)),
            State::Backoff { retry_at } => Some(retry_at),
            _ => None,
        }
    }

    /// The user wants a connection: open one now unless offline (a failed or waiting connection starts over).
    pub(crate) fn connect(&mut self, now: u64, out: &mut Vec<Output>) {
        self.wanted = true;
        match self.state {
            State::Opening { .. } | State::Handshaking { .. } | State::Live { .. } => {}
            _ if !self.online => self.state = State::Offline,
            _ => {
                self.failures = 0;
                self.open(now, out);
            }
        }
    }

    /// The user wants no connection: close the socket if there is one.
    pub(crate) fn disconnect(&mut self, out: &mut Vec<Output>, ev: &mut Vec<ConnEvent>) {
        self.wanted = false;
        self.drop_socket(CloseCode::Normal.code(), "disconnect", out, ev);
        self.state = State::Disconnected;
    }

    /// Replaces the live or opening socket with a new one at once (after new credentials).
    pub(crate) fn reconnect_now(&mut self, now: u64, out: &mut Vec<Output>, ev: &mut Vec<ConnEvent>) {
        if self.socket().is_some() {
            self.drop_socket(CloseCode::Terminated.code(), "new credentials", out, ev);
            self.failures = 0;
            self.open(now, out);
        }
    }

    /// The browser went offline: drop the socket and wait for [`Connection::online`].
    pub(crate) fn offline(&mut self, out: &mut Vec<Output>, ev: &mut Vec<ConnEvent>) {
        self.online = false;
        if self.wanted && !matches!(self.state, State::Failed { .. }) {
            self.drop_socket(CloseCode::Terminated.code(), "offline", out, ev);
            self.state = State::Offline;
        }
    }

    /// The browser is back online: reconnect at once if a connection is wanted and not already running.
    pub(crate) fn online(&mut self, now: u64, out: &mut Vec<Output>) {
        self.online = true;
        if self.wanted && matches!(self.state, State::Offline | State::Backoff { .. }) {
            self.failures = 0;
            self.open(now, out);
        }
    }

    fn open(&mut self, now: u64, out: &mut Vec<Output>) {
        let socket = self.next_socket;
        self.next_socket += 1;
        out.push(Output::OpenSocket {
            socket,
            subprotocol: self.protocol.subprotocol().to_owned(),
            query: self.url_query(),
        });
        self.state = State::Opening { socket, deadline: now.saturating_add(self.cfg.connect_timeout_ms) };
    }

    /// Closes the current socket (if any) from our side, without choosing the next state.
    fn drop_socket(&mut self, code: u16, reason: &str, out: &mut Vec<Output>, ev: &mut Vec<ConnEvent>) {
        if let Some(socket) = self.socket() {
            out.push(Output::CloseSocket { socket, code, reason: reason.to_owned() });
            if self.is_live() {
                ev.push(ConnEvent::Down);
            }
        }
    }

    /// Closes the current socket from our side and schedules a retry.
    fn fail(
        &mut self,
        now: u64,
        code: CloseCode,
        reason: &str,
        rng: &mut Rng,
        out: &mut Vec<Output>,
        ev: &mut Vec<ConnEvent>,
    ) {
        self.drop_socket(code.code(), reason, out, ev);
        self.schedule_retry(now, rng);
    }

    fn schedule_retry(&mut self, now: u64, rng: &mut Rng) {
        self.failures = self.failures.saturating_add(1);
        let delay = backoff_delay(rng, self.cfg.backoff_base_ms, self.cfg.backoff_cap_ms, self.failures);
        self.state = State::Backoff { retry_at: now.saturating_add(delay) };
    }

    pub(crate) fn on_opened(&mut self, socket: u64, now: u64, out: &mut Vec<Output>) {
        if let State::Opening { socket: current, .. } = self.state {
            if current == socket && self.protocol == Protocol::AppSync {
                out.push(Output::SendAppSync {
                    socket,
                    message: appsync::ClientMessage::ConnectionInit { payload: None },
                });
                self.state = State::Handshaking { socket, deadline: now.saturating_add(self.cfg.ack_timeout_ms) };
            } else if current == socket {
                out.push(Output::Send {
                    socket,
                    message: ClientMessage::ConnectionInit { payload: self.auth.clone() },
                });
                self.state = State::Handshaking { socket, deadline: now.saturating_add(self.cfg.ack_timeout_ms) };
            }
        }
    }

    pub(crate) fn on_closed(
        &mut self,
        socket: u64,
        code: u16,
        reason: &str,
        now: u64,
        rng: &mut Rng,
        ev: &mut Vec<ConnEvent>,
    ) {
        if self.socket() != Some(socket) {
            return;
        }
        if self.is_live() {
            ev.push(ConnEvent::Down);
        }
        let close = CloseCode::from(code);
        if close == CloseCode::Forbidden {
            ev.push(ConnEvent::AuthRejected);
        }
        if close.is_fatal() {
            let reason = if reason.is_empty() { format!("closed with {code}") } else { format!("{code}: {reason}") };
            self.state = State::Failed { reason };
        } else if !self.online {
            self.state = State::Offline;
        } else {
            self.schedule_retry(now, rng);
        }
    }

    pub(crate) fn on_frame(
        &mut self,
        socket: u64,
        text: &str,
        now: u64,
        rng: &mut Rng,
        out: &mut Vec<Output>,
        ev: &mut Vec<ConnEvent>,
    ) {
        let acked = match self.state {
            State::Handshaking { socket: current, .. } if current == socket => false,
            State::Live { socket: current, .. } if current == socket => true,
            _ => return,
        };
        if self.protocol == Protocol::AppSync {
            return self.on_appsync_frame(socket, acked, text, now, rng, out, ev);
        }
        let message: ServerMessage = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(_) => return self.fail(now, CloseCode::BadResponse, "unreadable frame", rng, out, ev),
        };
        if let State::Live { last_rx, ping_sent, .. } = &mut self.state {
            *last_rx = now;
            *ping_sent = None;
        }
        match message {
            ServerMessage::ConnectionAck { .. } if !acked => {
                self.failures = 0;
                self.state = State::Live { socket, last_rx: now, ping_sent: None };
                ev.push(ConnEvent::Up);
            }
            ServerMessage::Ping { .. } => {
                out.push(Output::Send { socket, message: ClientMessage::Pong { payload: None } })
            }
            // Before the ack nothing else is valid; after it a second ack or a pong only proves liveness.
            ServerMessage::ConnectionAck { .. } | ServerMessage::Pong { .. } => {}
            _ if !acked => {}
            ServerMessage::Next { id, payload } => ev.push(ConnEvent::Next { id, payload }),
            ServerMessage::Error { id, payload } => ev.push(ConnEvent::Error { id, errors: payload }),
            ServerMessage::Complete { id } => ev.push(ConnEvent::Complete { id }),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_appsync_frame(
        &mut self,
        socket: u64,
        acked: bool,
        text: &str,
        now: u64,
        rng: &mut Rng,
        out: &mut Vec<Output>,
        ev: &mut Vec<ConnEvent>,
    ) {
        use appsync::ServerMessage as M;
        let message: M = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(_) => return self.fail(now, CloseCode::BadResponse, "unreadable frame", rng, out, ev),
        };
        // Any frame, `ka` or not, proves the socket alive.
        if let State::Live { last_rx, .. } = &mut self.state {
            *last_rx = now;
        }
        match message {
            M::ConnectionAck { payload } if !acked => {
                self.failures = 0;
                self.ka_timeout_ms = payload.connection_timeout_ms.max(1);
                self.state = State::Live { socket, last_rx: now, ping_sent: None };
                ev.push(ConnEvent::Up);
            }
            M::ConnectionError { payload } => {
                if payload.errors.iter().any(|e| e.error_type == appsync::error_type::UNAUTHORIZED) {
                    ev.push(ConnEvent::AuthRejected);
                }
                self.fail(now, CloseCode::Terminated, "connection_error", rng, out, ev);
            }
            M::ConnectionAck { .. } | M::Ka => {}
            _ if !acked => {}
            M::StartAck { id } => ev.push(ConnEvent::Started { id }),
            M::Data { id, payload } => ev.push(ConnEvent::Next { id, payload }),
            M::Error { id: Some(id), payload } => {
                let errors = payload.errors.iter().map(appsync_error).collect();
                ev.push(ConnEvent::Error { id, errors });
            }
            M::Error { id: None, .. } => self.fail(now, CloseCode::BadResponse, "connection error", rng, out, ev),
            M::Complete { id } => ev.push(ConnEvent::Complete { id }),
        }
    }

    /// Fires whatever deadlines have passed, including one that firing a deadline sets for now (a zero backoff).
    pub(crate) fn tick(&mut self, now: u64, rng: &mut Rng, out: &mut Vec<Output>, ev: &mut Vec<ConnEvent>) {
        for _ in 0..4 {
            match self.next_wake() {
                Some(at) if at <= now => self.fire(now, rng, out, ev),
                _ => break,
            }
        }
    }

    fn fire(&mut self, now: u64, rng: &mut Rng, out: &mut Vec<Output>, ev: &mut Vec<ConnEvent>) {
        match self.state {
            State::Opening { deadline, .. } if now >= deadline => {
                self.fail(now, CloseCode::Terminated, "connect timeout", rng, out, ev);
            }
            State::Handshaking { deadline, .. } if now >= deadline => {
                self.fail(now, CloseCode::ConnectionAckTimeout, "connection_ack timeout", rng, out, ev);
            }
            State::Live { last_rx, .. }
                if self.protocol == Protocol::AppSync && now >= last_rx.saturating_add(self.ka_timeout_ms) =>
            {
                self.fail(now, CloseCode::Terminated, "ka timeout", rng, out, ev);
            }
            // AppSync has no pings.
            State::Live { .. } if self.protocol == Protocol::AppSync => {}
            State::Live { ping_sent: Some(sent), .. } if now >= sent.saturating_add(self.cfg.pong_timeout_ms) => {
                self.fail(now, CloseCode::Terminated, "keep-alive timeout", rng, out, ev);
            }
            State::Live { socket, last_rx, ping_sent: None }
                if now >= last_rx.saturating_add(self.cfg.ping_interval_ms) =>
            {
                out.push(Output::Send { socket, message: ClientMessage::Ping { payload: None } });
                self.state = State::Live { socket, last_rx, ping_sent: Some(now) };
            }
            State::Backoff { retry_at } if now >= retry_at => self.open(now, out),
            _ => {}
        }
    }

    /// Sends a message if the connection is live; returns whether it was sent. In AppSync mode `subscribe` goes out
    /// as `start` and `complete` as `stop`.
    pub(crate) fn send(&self, message: ClientMessage, out: &mut Vec<Output>) -> bool {
        let State::Live { socket, .. } = self.state else { return false };
        if self.protocol == Protocol::TransportWs {
            out.push(Output::Send { socket, message });
            return true;
        }
        let message = match message {
            ClientMessage::Subscribe { id, payload } => {
                let data =
                    json!({ "query": payload.query, "variables": payload.variables.unwrap_or_else(|| json!({})) });
                appsync::ClientMessage::Start {
                    id,
                    payload: appsync::StartPayload {
                        data: data.to_string(),
                        extensions: Some(appsync::StartExtensions { authorization: self.header_object() }),
                    },
                }
            }
            ClientMessage::Complete { id } => appsync::ClientMessage::Stop { id },
            _ => return false,
        };
        out.push(Output::SendAppSync { socket, message });
        true
    }
}

/// An AppSync error as a GraphQL error, its `errorType` as `extensions.code` (`UnauthorizedException` as
/// `UNAUTHENTICATED`, so the store asks for fresh credentials).
fn appsync_error(error: &appsync::AppSyncError) -> Value {
    let code = if error.error_type == appsync::error_type::UNAUTHORIZED {
        subsignal_protocol::change::error_code::UNAUTHENTICATED
    } else {
        error.error_type.as_str()
    };
    json!({ "message": error.message, "extensions": { "code": code, "errorType": error.error_type } })
}
