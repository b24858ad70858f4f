//! The client connection state machine: open, handshake, keep-alive, close and reconnect, for either wire protocol.
//!
//! It knows nothing about collections: it turns socket events and frames into [`ConnEvent`]s for the store, and
//! emits socket outputs itself. Every socket gets a fresh number, so events from a socket the machine has already
//! abandoned are recognised and ignored. Its one deadline at a time (opening, `connection_ack`, keep-alive, the
//! backoff) is the [`Timer::Connection`] entry of the store's timer table.
//!
//! What differs between the protocols is a [`Wire`]: graphql-transport-ws ([`transport_ws`]) keeps a quiet socket
//! alive with `ping`s; the AWS AppSync real-time protocol ([`appsync`]) has no pings: the server sends `ka` frames, and
//! a socket on which no frame at all arrives for the `connectionTimeoutMs` of its `connection_ack` is declared dead and
//! replaced. The store speaks in one vocabulary (subscribe, stop) and the wire spells it (`subscribe`/`complete` or
//! `start`/`stop`).

mod appsync;
mod payload;
mod transport_ws;

#[cfg(test)]
pub(crate) use payload::read_change;
pub(crate) use payload::{ChangeEvent, ChangeShape, Payload, ENVELOPE_FIELDS};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use subsignal_protocol::transport_ws::CloseCode;

use crate::rng::{backoff_delay, Rng};
use crate::store::Output;
use crate::timers::{Timer, Timers};

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
            Self::AppSync => subsignal_protocol::appsync::SUBPROTOCOL,
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
    /// `connection_ack` arrived: subscribe now. With the epoch of the server's change log, when it says one.
    Up { epoch: Option<i64> },
    /// A live connection was lost: every subscription on it is gone.
    Down,
    /// The server refused the credentials (close 4403): the shell should refresh them.
    AuthRejected,
    /// A `next` for an operation id.
    Next { id: String, payload: Payload },
    /// An `error` for an operation id.
    Error { id: String, errors: Vec<Value> },
    /// A `complete` for an operation id.
    Complete { id: String },
    /// AppSync's `start_ack`: the subscription is registered, so a snapshot taken from now on misses nothing.
    Started { id: String },
}

/// A frame as the machine understands it, whichever protocol carried it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Frame {
    /// `connection_ack`; AppSync's says how long the socket may stay silent before it counts as dead, subsignal's
    /// the epoch of the server's change log.
    Ack { server_keepalive_ms: Option<u64>, epoch: Option<i64> },
    /// The server pings: answer with a pong.
    Ping,
    /// Proof of liveness only (`pong`, `ka`).
    Alive,
    /// An operation's result.
    Next { id: String, payload: Payload },
    /// An operation failed.
    Error { id: String, errors: Vec<Value> },
    /// An operation ended.
    Complete { id: String },
    /// AppSync's `start_ack`.
    Started { id: String },
    /// The server refused the connection itself; `auth` when it refused the credentials.
    Fatal { code: CloseCode, reason: &'static str, auth: bool },
}

/// What the wire protocols need to authenticate: the auth object, and AppSync's `host`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Credentials {
    pub(crate) auth: Option<Value>,
    pub(crate) host: Option<String>,
}

/// One wire protocol: how the machine's messages are spelled and how the server's frames are read.
pub(crate) trait Wire: std::fmt::Debug {
    fn protocol(&self) -> Protocol;
    /// What the shell appends to the WebSocket URL after `?`.
    fn url_query(&self, credentials: &Credentials) -> Option<String>;
    /// The first message on an opened socket.
    fn init(&self, socket: u64, credentials: &Credentials) -> Output;
    /// Reads a frame; `None` when it is unreadable.
    fn read(&self, text: &str) -> Option<Frame>;
    /// The type of the messages that carry an operation's result (`next`, AppSync's `data`).
    fn result_type(&self) -> &'static str;
    /// Starts an operation.
    fn subscribe(
        &self,
        socket: u64,
        id: String,
        query: &str,
        variables: Option<Value>,
        credentials: &Credentials,
    ) -> Output;
    /// Stops an operation.
    fn stop(&self, socket: u64, id: String) -> Output;
    /// A keep-alive ping, if the protocol has client pings.
    fn ping(&self, socket: u64) -> Option<Output>;
    /// The answer to a server ping, if the protocol has them.
    fn pong(&self, socket: u64) -> Option<Output>;
    /// Whether the server confirms each subscription (AppSync's `start_ack`); without it a subscription counts as
    /// running once sent.
    fn acknowledges_subscriptions(&self) -> bool;
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Disconnected,
    Opening {
        socket: u64,
    },
    Handshaking {
        socket: u64,
    },
    /// `ping_sent`: a ping is out and the deadline is its pong's.
    Live {
        socket: u64,
        ping_sent: bool,
    },
    Backoff,
    Offline,
    Failed {
        reason: String,
    },
}

/// The connection state machine.
#[derive(Debug)]
pub(crate) struct Connection {
    cfg: ConnectionConfig,
    wire: Box<dyn Wire>,
    state: State,
    /// Whether the user wants a connection (between `Connect` and `Disconnect`).
    wanted: bool,
    /// The shell's online hint.
    online: bool,
    /// Consecutive failed attempts.
    failures: u32,
    next_socket: u64,
    credentials: Credentials,
    /// AppSync: the `connectionTimeoutMs` of the last `connection_ack`; the socket is dead after this long silent.
    server_keepalive_ms: Option<u64>,
}

/// What a machine method needs from the store besides the machine: the time, the timer table, the PRNG, and where
/// outputs and events go.
pub(crate) struct Io<'a> {
    pub(crate) now: u64,
    pub(crate) timers: &'a mut Timers,
    pub(crate) rng: &'a mut Rng,
    pub(crate) out: &'a mut Vec<Output>,
    pub(crate) ev: &'a mut Vec<ConnEvent>,
}

impl Connection {
    pub(crate) fn new(cfg: ConnectionConfig, auth: Option<Value>, protocol: Protocol, host: Option<String>) -> Self {
        let wire: Box<dyn Wire> = match protocol {
            Protocol::TransportWs => Box::new(transport_ws::TransportWs),
            Protocol::AppSync => Box::new(appsync::AppSync),
        };
        Self {
            cfg,
            wire,
            state: State::Disconnected,
            wanted: false,
            online: true,
            failures: 0,
            next_socket: 1,
            credentials: Credentials { auth, host },
            server_keepalive_ms: None,
        }
    }

    pub(crate) fn protocol(&self) -> Protocol {
        self.wire.protocol()
    }

    /// Whether the server confirms subscriptions (see [`Wire::acknowledges_subscriptions`]).
    pub(crate) fn acknowledges_subscriptions(&self) -> bool {
        self.wire.acknowledges_subscriptions()
    }

    /// How many sockets this machine has asked for.
    #[cfg(test)]
    pub(crate) fn sockets_opened(&self) -> u64 {
        self.next_socket - 1
    }

    pub(crate) fn auth(&self) -> Option<&Value> {
        self.credentials.auth.as_ref()
    }

    pub(crate) fn set_auth(&mut self, auth: Option<Value>) {
        self.credentials.auth = auth;
    }

    pub(crate) fn is_live(&self) -> bool {
        matches!(self.state, State::Live { .. })
    }

    /// Whether a socket is opening, handshaking or live (not disconnected or waiting out a backoff).
    pub(crate) fn is_attempting(&self) -> bool {
        matches!(self.state, State::Opening { .. } | State::Handshaking { .. } | State::Live { .. })
    }

    pub(crate) fn status(&self, timers: &Timers) -> ConnectionStatus {
        match &self.state {
            State::Disconnected => ConnectionStatus::Disconnected,
            State::Opening { .. } | State::Handshaking { .. } => {
                ConnectionStatus::Connecting { attempt: self.failures }
            }
            State::Live { .. } => ConnectionStatus::Live,
            State::Backoff => ConnectionStatus::Reconnecting {
                attempt: self.failures,
                retry_at_ms: timers.get(Timer::Connection).unwrap_or_default(),
            },
            State::Offline => ConnectionStatus::Offline,
            State::Failed { reason } => ConnectionStatus::Failed { reason: reason.clone() },
        }
    }

    fn socket(&self) -> Option<u64> {
        match self.state {
            State::Opening { socket } | State::Handshaking { socket } | State::Live { socket, .. } => Some(socket),
            _ => None,
        }
    }

    /// Moves to `state`, with the connection deadline at `deadline` (or none).
    fn enter(&mut self, state: State, deadline: Option<u64>, timers: &mut Timers) {
        self.state = state;
        match deadline {
            Some(at) => timers.set(Timer::Connection, at),
            None => timers.clear(Timer::Connection),
        }
    }

    /// A live socket heard from the server: the keep-alive deadline starts over.
    fn heard(&mut self, socket: u64, now: u64, timers: &mut Timers) {
        let idle = self.server_keepalive_ms.unwrap_or(self.cfg.ping_interval_ms);
        self.enter(State::Live { socket, ping_sent: false }, Some(now.saturating_add(idle)), timers);
    }

    /// The user wants a connection: open one now unless offline (a failed or waiting connection starts over).
    pub(crate) fn connect(&mut self, io: &mut Io) {
        self.wanted = true;
        match self.state {
            State::Opening { .. } | State::Handshaking { .. } | State::Live { .. } => {}
            _ if !self.online => self.enter(State::Offline, None, io.timers),
            _ => {
                self.failures = 0;
                self.open(io);
            }
        }
    }

    /// The user wants no connection: close the socket if there is one.
    pub(crate) fn disconnect(&mut self, io: &mut Io) {
        self.wanted = false;
        self.drop_socket(CloseCode::Normal.code(), "disconnect", io);
        self.enter(State::Disconnected, None, io.timers);
    }

    /// Replaces the live or opening socket with a new one at once (after new credentials).
    pub(crate) fn reconnect_now(&mut self, io: &mut Io) {
        if self.socket().is_some() {
            self.drop_socket(CloseCode::Terminated.code(), "new credentials", io);
            self.failures = 0;
            self.open(io);
        }
    }

    /// The browser went offline: drop the socket and wait for [`Connection::online`].
    pub(crate) fn offline(&mut self, io: &mut Io) {
        self.online = false;
        if self.wanted && !matches!(self.state, State::Failed { .. }) {
            self.drop_socket(CloseCode::Terminated.code(), "offline", io);
            self.enter(State::Offline, None, io.timers);
        }
    }

    /// The browser is back online: reconnect at once if a connection is wanted and not already running.
    pub(crate) fn online(&mut self, io: &mut Io) {
        self.online = true;
        if self.wanted && matches!(self.state, State::Offline | State::Backoff) {
            self.failures = 0;
            self.open(io);
        }
    }

    fn open(&mut self, io: &mut Io) {
        let socket = self.next_socket;
        self.next_socket += 1;
        io.out.push(Output::OpenSocket {
            socket,
            subprotocol: self.wire.protocol().subprotocol().to_owned(),
            query: self.wire.url_query(&self.credentials),
        });
        self.enter(State::Opening { socket }, Some(io.now.saturating_add(self.cfg.connect_timeout_ms)), io.timers);
    }

    /// Closes the current socket (if any) from our side, without choosing the next state.
    fn drop_socket(&mut self, code: u16, reason: &str, io: &mut Io) {
        if let Some(socket) = self.socket() {
            io.out.push(Output::CloseSocket { socket, code, reason: reason.to_owned() });
            if self.is_live() {
                io.ev.push(ConnEvent::Down);
            }
        }
    }

    /// Closes the current socket from our side and schedules a retry.
    fn fail(&mut self, code: CloseCode, reason: &str, io: &mut Io) {
        self.drop_socket(code.code(), reason, io);
        self.schedule_retry(io);
    }

    fn schedule_retry(&mut self, io: &mut Io) {
        self.failures = self.failures.saturating_add(1);
        let delay = backoff_delay(io.rng, self.cfg.backoff_base_ms, self.cfg.backoff_cap_ms, self.failures);
        self.enter(State::Backoff, Some(io.now.saturating_add(delay)), io.timers);
    }

    pub(crate) fn on_opened(&mut self, socket: u64, io: &mut Io) {
        if self.state == (State::Opening { socket }) {
            io.out.push(self.wire.init(socket, &self.credentials));
            let deadline = io.now.saturating_add(self.cfg.ack_timeout_ms);
            self.enter(State::Handshaking { socket }, Some(deadline), io.timers);
        }
    }

    pub(crate) fn on_closed(&mut self, socket: u64, code: u16, reason: &str, io: &mut Io) {
        if self.socket() != Some(socket) {
            return;
        }
        if self.is_live() {
            io.ev.push(ConnEvent::Down);
        }
        let close = CloseCode::from(code);
        if close == CloseCode::Forbidden {
            io.ev.push(ConnEvent::AuthRejected);
        }
        if close.is_fatal() {
            let reason = if reason.is_empty() { format!("closed with {code}") } else { format!("{code}: {reason}") };
            self.enter(State::Failed { reason }, None, io.timers);
        } else if !self.online {
            self.enter(State::Offline, None, io.timers);
        } else {
            self.schedule_retry(io);
        }
    }

    /// A frame arrived on `socket`. `shape_of` says which operations' results are change events (see [`payload`]).
    pub(crate) fn on_frame<'s>(
        &mut self,
        socket: u64,
        text: &str,
        shape_of: &dyn Fn(&str) -> Option<ChangeShape<'s>>,
        io: &mut Io,
    ) {
        let acked = match self.state {
            State::Handshaking { socket: current } if current == socket => false,
            State::Live { socket: current, .. } if current == socket => true,
            _ => return,
        };
        let read = payload::read_change(text, self.wire.result_type(), shape_of)
            .map(|(id, event)| Frame::Next { id, payload: Payload::Change(event) });
        let Some(frame) = read.or_else(|| self.wire.read(text)) else {
            return self.fail(CloseCode::BadResponse, "unreadable frame", io);
        };
        // Any frame proves the socket alive.
        if acked {
            self.heard(socket, io.now, io.timers);
        }
        match frame {
            Frame::Ack { server_keepalive_ms, epoch } if !acked => {
                self.failures = 0;
                self.server_keepalive_ms = server_keepalive_ms;
                self.heard(socket, io.now, io.timers);
                io.ev.push(ConnEvent::Up { epoch });
            }
            Frame::Fatal { code, reason, auth } => {
                if auth {
                    io.ev.push(ConnEvent::AuthRejected);
                }
                self.fail(code, reason, io);
            }
            Frame::Ping => io.out.extend(self.wire.pong(socket)),
            // Before the ack nothing else is valid; after it a second ack or a pong only proves liveness.
            Frame::Ack { .. } | Frame::Alive => {}
            _ if !acked => {}
            Frame::Next { id, payload } => io.ev.push(ConnEvent::Next { id, payload }),
            Frame::Error { id, errors } => io.ev.push(ConnEvent::Error { id, errors }),
            Frame::Complete { id } => io.ev.push(ConnEvent::Complete { id }),
            Frame::Started { id } => io.ev.push(ConnEvent::Started { id }),
        }
    }

    /// The connection's deadline passed.
    pub(crate) fn fire(&mut self, io: &mut Io) {
        match self.state {
            State::Opening { .. } => self.fail(CloseCode::Terminated, "connect timeout", io),
            State::Handshaking { .. } => self.fail(CloseCode::ConnectionAckTimeout, "connection_ack timeout", io),
            State::Live { .. } if self.server_keepalive_ms.is_some() => {
                self.fail(CloseCode::Terminated, "ka timeout", io)
            }
            State::Live { ping_sent: true, .. } => self.fail(CloseCode::Terminated, "keep-alive timeout", io),
            State::Live { socket, ping_sent: false } => {
                io.out.extend(self.wire.ping(socket));
                let deadline = io.now.saturating_add(self.cfg.pong_timeout_ms);
                self.enter(State::Live { socket, ping_sent: true }, Some(deadline), io.timers);
            }
            State::Backoff => self.open(io),
            State::Disconnected | State::Offline | State::Failed { .. } => {}
        }
    }

    /// Starts an operation if the connection is live; returns whether it was sent.
    pub(crate) fn subscribe(&self, id: String, query: &str, variables: Option<Value>, out: &mut Vec<Output>) -> bool {
        let State::Live { socket, .. } = self.state else { return false };
        out.push(self.wire.subscribe(socket, id, query, variables, &self.credentials));
        true
    }

    /// Stops an operation if the connection is live.
    pub(crate) fn stop(&self, id: String, out: &mut Vec<Output>) {
        if let State::Live { socket, .. } = self.state {
            out.push(self.wire.stop(socket, id));
        }
    }
}
