//! Unit and property tests, with shared fixtures: a scripted server speaks through these helpers.

mod appsync;
mod collection;
mod conflict;
mod connection;
mod history;
mod mirror;
mod model;
mod mutation;
mod persist;
mod sources;
mod sources_model;
mod views;

use std::collections::VecDeque;

use proptest::prelude::*;
use serde_json::{json, Value};
use subsignal_protocol::transport_ws::{ClientMessage, ServerMessage};

use crate::{
    CollectionConfig, ConnectionStatus, HttpRequest, HttpResponse, Input, Output, RowChange, Store, StoreConfig,
};

pub(crate) const SUB_DOC: &str = "subscription($afterSeq: Int) { onOrderChanged(afterSeq: $afterSeq) { seq prevSeq op \
                                  key version expired order { id owner version value } } }";
pub(crate) const LIST_DOC: &str = "query($limit: Int, $nextToken: String) { listOrders(limit: $limit, nextToken: \
                                   $nextToken) { items { id owner version value } nextToken seq } }";

/// The orders collection as the tests configure it (two rows per snapshot page).
pub(crate) fn orders() -> CollectionConfig {
    CollectionConfig::new("orders")
        .subscription(SUB_DOC, "onOrderChanged", "order")
        .snapshot(LIST_DOC, "listOrders")
        .page_size(2)
}

/// A store config with a bearer token and the given collections.
pub(crate) fn config(collections: Vec<CollectionConfig>) -> StoreConfig {
    let mut cfg = StoreConfig::new(7);
    cfg.auth = Some(json!({"Authorization": "Bearer t"}));
    cfg.collections = collections;
    cfg
}

pub(crate) fn text(msg: &ServerMessage) -> String {
    serde_json::to_string(msg).expect("serializable")
}

pub(crate) fn frame(socket: u64, msg: &ServerMessage) -> Input {
    Input::Frame { socket, text: text(msg) }
}

pub(crate) fn sends(out: &[Output]) -> Vec<ClientMessage> {
    out.iter().filter_map(|o| if let Output::Send { message, .. } = o { Some(message.clone()) } else { None }).collect()
}

pub(crate) fn https(out: &[Output]) -> Vec<HttpRequest> {
    out.iter().filter_map(|o| if let Output::Http(r) = o { Some(r.clone()) } else { None }).collect()
}

pub(crate) fn row_changes(out: &[Output]) -> Vec<RowChange> {
    out.iter().filter_map(|o| if let Output::Row { change, .. } = o { Some(change.clone()) } else { None }).collect()
}

pub(crate) fn last_status(out: &[Output]) -> Option<ConnectionStatus> {
    out.iter().rev().find_map(|o| if let Output::Status(s) = o { Some(s.connection.clone()) } else { None })
}

pub(crate) fn opened_socket(out: &[Output]) -> Option<u64> {
    out.iter().find_map(|o| if let Output::OpenSocket { socket, .. } = o { Some(*socket) } else { None })
}

/// The `(id, afterSeq)` of every `subscribe` among the outputs.
pub(crate) fn subscribes(out: &[Output]) -> Vec<(String, Option<i64>)> {
    sends(out)
        .into_iter()
        .filter_map(|m| match m {
            ClientMessage::Subscribe { id, payload } => {
                let after = payload.variables.as_ref().and_then(|v| v.get("afterSeq")).and_then(Value::as_i64);
                Some((id, after))
            }
            _ => None,
        })
        .collect()
}

/// The subscription ids in the order sent, and the documents they carry.
pub(crate) fn subscribed(out: &[Output]) -> Vec<(String, String)> {
    sends(out)
        .into_iter()
        .filter_map(|m| match m {
            subsignal_protocol::transport_ws::ClientMessage::Subscribe { id, payload } => Some((id, payload.query)),
            _ => None,
        })
        .collect()
}

/// Drives `Connect` → open → ack and returns the socket and every output from the `Connect` on (a snapshot starts
/// while the socket opens).
pub(crate) fn go_live(store: &mut Store, now: u64) -> (u64, Vec<Output>) {
    go_live_acked(store, now, None)
}

/// [`go_live`], with this `connection_ack` payload.
pub(crate) fn go_live_acked(store: &mut Store, now: u64, payload: Option<Value>) -> (u64, Vec<Output>) {
    let mut out = store.handle(now, Input::Connect);
    let socket = opened_socket(&out).expect("an OpenSocket");
    out.extend(store.handle(now, Input::SocketOpened { socket }));
    out.extend(store.handle(now, frame(socket, &ServerMessage::ConnectionAck { payload })));
    assert_eq!(store.status().connection, ConnectionStatus::Live);
    (socket, out)
}

/// Opens `socket` and acknowledges it.
pub(crate) fn finish_handshake(store: &mut Store, socket: u64, now: u64) -> (u64, Vec<Output>) {
    store.handle(now, Input::SocketOpened { socket });
    let out = store.handle(now, frame(socket, &ServerMessage::ConnectionAck { payload: None }));
    assert_eq!(store.status().connection, ConnectionStatus::Live);
    (socket, out)
}

pub(crate) fn order(key: &str, version: i64, value: i64) -> Value {
    json!({"id": key, "owner": "A", "version": version, "value": value})
}

/// A `next` payload for the orders subscription.
pub(crate) fn change(
    seq: i64,
    prev: i64,
    op: &str,
    key: Option<&str>,
    version: Option<i64>,
    order: Option<Value>,
) -> Value {
    json!({"data": {"onOrderChanged": {
        "seq": seq, "prevSeq": prev, "op": op, "key": key, "version": version, "expired": false, "order": order
    }}})
}

pub(crate) fn next(socket: u64, id: &str, payload: Value) -> Input {
    frame(socket, &ServerMessage::Next { id: id.to_owned(), payload })
}

pub(crate) fn page(items: Vec<Value>, next_token: Option<&str>, seq: i64) -> HttpResponse {
    HttpResponse::Ok { body: json!({"data": {"listOrders": {"items": items, "nextToken": next_token, "seq": seq}}}) }
}

/// A live store whose orders collection holds `items` at `seq` and is subscribed: returns the store, socket and
/// subscription id.
pub(crate) fn live_orders(items: Vec<Value>, seq: i64) -> (Store, u64, String) {
    let mut store = Store::new(config(vec![orders().page_size(1000)]));
    let (socket, out) = go_live(&mut store, 0);
    let req = https(&out).pop().expect("a snapshot request");
    let out = store.handle(0, Input::Http { request_id: req.request_id, response: page(items, None, seq) });
    let subs = subscribes(&out);
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].1, Some(seq));
    (store, socket, subs[0].0.clone())
}

/// What passes between a model server and the store: the socket the store has open, the frames on their way to it,
/// and its HTTP requests not yet answered (oldest first).
#[derive(Debug, Default)]
pub(crate) struct Channel {
    pub(crate) socket: Option<u64>,
    /// The `connection_ack` has reached the store.
    pub(crate) ack_delivered: bool,
    pub(crate) frames: VecDeque<ServerMessage>,
    pub(crate) http: VecDeque<HttpRequest>,
}

impl Channel {
    /// The store opened a socket (or closed its socket: `None`): nothing is on its way any more.
    pub(crate) fn reset(&mut self, socket: Option<u64>) {
        self.socket = socket;
        self.ack_delivered = false;
        self.frames.clear();
    }

    /// Answers graphql-transport-ws's own messages (init, ping, pong) as a server does; gives back any other.
    pub(crate) fn answer(&mut self, message: ClientMessage) -> Option<ClientMessage> {
        match message {
            ClientMessage::ConnectionInit { .. } => {
                self.frames.push_back(ServerMessage::ConnectionAck { payload: None })
            }
            ClientMessage::Ping { .. } => self.frames.push_back(ServerMessage::Pong { payload: None }),
            ClientMessage::Pong { .. } => {}
            other => return Some(other),
        }
        None
    }
}

/// What the network and the clock do to a store and its model server, between the model's own operations.
#[derive(Debug, Clone)]
pub(crate) enum Net {
    /// Deliver up to n frames in order.
    Deliver(u8),
    /// Deliver the first frame (if a `next`) and keep it queued, so it arrives twice.
    Duplicate,
    /// Swap the first two frames (if both are `next`).
    Reorder,
    /// Lose the first frame (if a `next`).
    Drop,
    /// The server closes the socket with this (retryable) code.
    Disconnect(u16),
    /// Let time pass up to the store's next wake-up.
    AdvanceTime,
    /// Answer the oldest HTTP request.
    AnswerHttp,
    /// Fail the oldest HTTP request with a network error before the server sees it.
    FailHttp,
    /// Answer the oldest HTTP request at the server, and lose the answer on its way back.
    LoseResponse,
}

/// The network's operations, as weighted as the models' own (24 in all), closing sockets with `close_codes`.
pub(crate) fn net(close_codes: Vec<u16>) -> impl Strategy<Value = Net> {
    prop_oneof![
        10 => (1u8..5).prop_map(Net::Deliver),
        2 => Just(Net::Duplicate),
        2 => Just(Net::Reorder),
        2 => Just(Net::Drop),
        1 => prop::sample::select(close_codes).prop_map(Net::Disconnect),
        2 => Just(Net::AdvanceTime),
        3 => Just(Net::AnswerHttp),
        1 => Just(Net::FailHttp),
        1 => Just(Net::LoseResponse),
    ]
}

/// A model server a proptest drives a store against, over a [`Channel`] the test controls.
pub(crate) trait ModelServer {
    fn channel(&mut self) -> &mut Channel;
    /// The store opened a socket (or closed its socket: `None`): a fresh channel.
    fn reset_socket(&mut self, socket: Option<u64>);
    /// A message the store sent on the open socket.
    fn on_client(&mut self, message: ClientMessage);
    /// The server's answer to a request.
    fn respond(&mut self, request: &HttpRequest) -> HttpResponse;
    /// What must hold after every input.
    fn check(&mut self, store: &Store);
}

/// Drives a store against a [`ModelServer`], carrying out what the store asks as a shell would.
pub(crate) struct Driver<M> {
    pub(crate) store: Store,
    pub(crate) model: M,
    pub(crate) now: u64,
    /// Mutations submitted so far (they number the values the tests write).
    pub(crate) mutations: u32,
}

impl<M: ModelServer> Driver<M> {
    /// A driver whose store has been told to connect.
    pub(crate) fn connected(store: Store, model: M) -> Self {
        let mut driver = Self { store, model, now: 0, mutations: 0 };
        driver.run(Input::Connect);
        driver
    }

    /// Feeds an input and everything the shell would feed back at once (socket opens), executing outputs.
    pub(crate) fn run(&mut self, input: Input) {
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            let out = self.store.handle(self.now, input);
            if let Some(wake) = self.store.next_wake_ms() {
                assert!(wake > self.now, "a wake-up at {wake} is not in the future of {}", self.now);
            }
            self.model.check(&self.store);
            for output in out {
                match output {
                    Output::OpenSocket { socket, .. } => {
                        self.model.reset_socket(Some(socket));
                        inputs.push_back(Input::SocketOpened { socket });
                    }
                    Output::CloseSocket { socket, .. } if self.model.channel().socket == Some(socket) => {
                        self.model.reset_socket(None)
                    }
                    Output::Send { socket, message } if self.model.channel().socket == Some(socket) => {
                        self.model.on_client(message)
                    }
                    Output::Send { socket, .. } => panic!("sent on socket {socket}, which is not open"),
                    Output::Http(request) => self.model.channel().http.push_back(request),
                    _ => {}
                }
            }
        }
    }

    /// Delivers the oldest frame on its way; false when there is none (or no socket).
    pub(crate) fn deliver_first(&mut self) -> bool {
        let channel = self.model.channel();
        let (Some(socket), Some(frame)) = (channel.socket, channel.frames.pop_front()) else { return false };
        if matches!(frame, ServerMessage::ConnectionAck { .. }) {
            channel.ack_delivered = true;
        }
        self.run(Input::Frame { socket, text: text(&frame) });
        true
    }

    /// Answers the oldest HTTP request; `fail` loses it before the server sees it, `lose` after.
    pub(crate) fn answer_http(&mut self, fail: bool, lose: bool) -> bool {
        let Some(request) = self.model.channel().http.pop_front() else { return false };
        let response = if fail {
            HttpResponse::NetworkError { message: "reset".into() }
        } else {
            let response = self.model.respond(&request);
            if lose {
                HttpResponse::NetworkError { message: "lost".into() }
            } else {
                response
            }
        };
        self.run(Input::Http { request_id: request.request_id, response });
        true
    }

    /// Carries out what the network does; with `lossy` false, frames are neither duplicated, reordered nor lost (for
    /// a source that has no seq to tell).
    pub(crate) fn net(&mut self, op: &Net, lossy: bool) {
        let next_at =
            |model: &mut M, i: usize| matches!(model.channel().frames.get(i), Some(ServerMessage::Next { .. }));
        match op {
            Net::Deliver(n) => {
                for _ in 0..*n {
                    self.deliver_first();
                }
            }
            Net::Duplicate if lossy => {
                let socket = self.model.channel().socket;
                if let (Some(socket), true) = (socket, next_at(&mut self.model, 0)) {
                    let frame = text(&self.model.channel().frames[0]);
                    self.run(Input::Frame { socket, text: frame });
                }
            }
            Net::Reorder if lossy => {
                if next_at(&mut self.model, 0) && next_at(&mut self.model, 1) {
                    self.model.channel().frames.swap(0, 1);
                }
            }
            Net::Drop if lossy => {
                if next_at(&mut self.model, 0) {
                    self.model.channel().frames.pop_front();
                }
            }
            Net::Duplicate | Net::Reorder | Net::Drop => {}
            Net::Disconnect(code) => self.disconnect(*code),
            Net::AdvanceTime => self.advance(),
            Net::AnswerHttp => drop(self.answer_http(false, false)),
            Net::FailHttp => drop(self.answer_http(true, false)),
            Net::LoseResponse => drop(self.answer_http(false, true)),
        }
    }

    /// The server closes the store's socket (if it has one) with `code`.
    pub(crate) fn disconnect(&mut self, code: u16) {
        if let Some(socket) = self.model.channel().socket {
            self.model.reset_socket(None);
            self.run(Input::SocketClosed { socket, code, reason: "server".into() });
        }
    }

    /// Lets time pass until the store's next wake-up.
    pub(crate) fn advance(&mut self) {
        if let Some(wake) = self.store.next_wake_ms() {
            self.now = self.now.max(wake);
            self.run(Input::Tick);
        }
    }
}
