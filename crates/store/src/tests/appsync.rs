//! The AppSync real-time protocol: handshake, `ka` liveness, `start`/`stop`, and a fresh snapshot after every
//! (re)connect in place of `afterSeq` replay.

use base64::Engine;
use serde_json::{json, Value};
use subsignal_protocol::appsync::{self, AckPayload, AppSyncError, ErrorPayload, ServerMessage};

use super::{change, https, opened_socket, order, page, row_changes};
use crate::connection::Protocol;
use crate::{ConnectionStatus, Input, Output, Store, StoreConfig};

const HOST: &str = "api.example.com";

fn appsync_config() -> StoreConfig {
    let mut cfg = super::config(vec![super::orders().page_size(1000)]);
    cfg.protocol = Protocol::AppSync;
    cfg.host = Some(HOST.to_owned());
    cfg
}

fn frame(socket: u64, msg: &ServerMessage) -> Input {
    Input::Frame { socket, text: serde_json::to_string(msg).expect("serializable") }
}

fn ack(socket: u64, timeout: u64) -> Input {
    frame(socket, &ServerMessage::ConnectionAck { payload: AckPayload { connection_timeout_ms: timeout } })
}

fn sent(out: &[Output]) -> Vec<appsync::ClientMessage> {
    out.iter()
        .filter_map(|o| if let Output::SendAppSync { message, .. } = o { Some(message.clone()) } else { None })
        .collect()
}

/// `(id, data as JSON, authorization)` of every `start`.
fn starts(out: &[Output]) -> Vec<(String, Value, Value)> {
    sent(out)
        .into_iter()
        .filter_map(|m| match m {
            appsync::ClientMessage::Start { id, payload } => Some((
                id,
                serde_json::from_str(&payload.data).expect("data is a JSON string"),
                payload.extensions.expect("extensions").authorization,
            )),
            _ => None,
        })
        .collect()
}

fn data(socket: u64, id: &str, payload: Value) -> Input {
    frame(socket, &ServerMessage::Data { id: id.to_owned(), payload })
}

/// Connect → open → `connection_init` → ack (timeout 1000 ms); returns the store's socket and post-ack outputs.
fn go_live(store: &mut Store, now: u64) -> (u64, Vec<Output>) {
    let out = store.handle(now, Input::Connect);
    let socket = opened_socket(&out).expect("an OpenSocket");
    connect_socket(store, socket, now)
}

fn connect_socket(store: &mut Store, socket: u64, now: u64) -> (u64, Vec<Output>) {
    let out = store.handle(now, Input::SocketOpened { socket });
    assert_eq!(sent(&out), vec![appsync::ClientMessage::ConnectionInit { payload: None }]);
    assert!(!out.iter().any(|o| matches!(o, Output::Send { .. })), "no graphql-transport-ws frames");
    let out = store.handle(now, ack(socket, 1000));
    assert_eq!(store.status().connection, ConnectionStatus::Live);
    (socket, out)
}

/// A live AppSync store whose orders collection holds `items` at `seq`: returns the store, socket and `start` id.
fn live(items: Vec<Value>, seq: i64) -> (Store, u64, String) {
    let mut store = Store::new(appsync_config());
    let (socket, out) = go_live(&mut store, 0);
    assert!(https(&out).is_empty(), "no snapshot before start_ack");
    let started = starts(&out);
    assert_eq!(started.len(), 1);
    let id = started[0].0.clone();
    let out = store.handle(0, frame(socket, &ServerMessage::StartAck { id: id.clone() }));
    let req = https(&out).pop().expect("a snapshot after start_ack");
    assert!(
        !req.prefetchable,
        "without replay the snapshot must postdate start_ack: an earlier answer would miss events"
    );
    store.handle(0, Input::Http { request_id: req.request_id, response: page(items, None, seq) });
    assert!(store.collection("orders").expect("orders").is_live());
    (store, socket, id)
}

#[test]
fn the_socket_asks_for_graphql_ws_with_the_header_object_in_the_query() {
    let mut store = Store::new(appsync_config());
    let out = store.handle(0, Input::Connect);
    let Some(Output::OpenSocket { socket: 1, subprotocol, query: Some(query) }) = out.first() else {
        panic!("an OpenSocket with a query: {out:?}")
    };
    assert_eq!(subprotocol, "graphql-ws");
    let header = query.strip_prefix("header=").and_then(|q| q.strip_suffix("&payload=e30%3D")).expect("shape");
    let header = header.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=");
    let bytes = base64::engine::general_purpose::STANDARD.decode(header).expect("base64");
    let header: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(header, json!({"host": HOST, "Authorization": "Bearer t"}));
}

#[test]
fn the_default_protocol_adds_no_query() {
    let mut store = Store::new(super::config(vec![]));
    let out = store.handle(0, Input::Connect);
    assert_eq!(out[0], Output::OpenSocket { socket: 1, subprotocol: "graphql-transport-ws".to_owned(), query: None });
}

#[test]
fn protocol_reads_from_json() {
    let cfg: StoreConfig = serde_json::from_value(json!({"seed": 1, "protocol": "appsync", "host": "h"})).unwrap();
    assert_eq!(cfg.protocol, Protocol::AppSync);
    let cfg: StoreConfig = serde_json::from_value(json!({"seed": 1})).unwrap();
    assert_eq!(cfg.protocol, Protocol::TransportWs);
}

#[test]
fn start_carries_the_request_as_a_string_and_its_own_authorization() {
    let mut store = Store::new(appsync_config());
    let (_, out) = go_live(&mut store, 0);
    let started = starts(&out);
    assert_eq!(started.len(), 1);
    let (id, request, authorization) = &started[0];
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(request["query"], json!(super::SUB_DOC));
    assert!(request["variables"].get("afterSeq").is_none(), "AppSync has no afterSeq: {request}");
    assert_eq!(authorization, &json!({"host": HOST, "Authorization": "Bearer t"}));
}

#[test]
fn no_ack_within_the_ack_timeout_retries() {
    let mut store = Store::new(appsync_config());
    let out = store.handle(0, Input::Connect);
    let socket = opened_socket(&out).unwrap();
    store.handle(0, Input::SocketOpened { socket });
    let out = store.handle(10_000, Input::Tick);
    assert!(out.iter().any(|o| matches!(o, Output::CloseSocket { socket: 1, code: 4504, .. })), "{out:?}");
    assert!(matches!(store.status().connection, ConnectionStatus::Reconnecting { attempt: 1, .. }));
}

#[test]
fn ka_and_any_frame_keep_the_socket_alive_without_pings() {
    let (mut store, socket, id) = live(vec![], 5);
    // The ack said 1000 ms: a `ka` at 900 keeps it alive until 1900; data at 1800 until 2800.
    assert_eq!(store.next_wake_ms(), Some(1000));
    store.handle(900, frame(socket, &ServerMessage::Ka));
    assert_eq!(store.next_wake_ms(), Some(1900));
    let out = store.handle(1800, data(socket, &id, change(6, 5, "INSERT", Some("a"), Some(1), Some(order("a", 1, 1)))));
    assert_eq!(row_changes(&out).len(), 1);
    let out = store.handle(2799, Input::Tick);
    assert!(sent(&out).is_empty() && !out.iter().any(|o| matches!(o, Output::Send { .. })), "no pings: {out:?}");
    assert_eq!(store.status().connection, ConnectionStatus::Live);
    let out = store.handle(2800, Input::Tick);
    assert!(out.iter().any(|o| matches!(o, Output::CloseSocket { code: 4499, .. })), "{out:?}");
    assert!(matches!(store.status().connection, ConnectionStatus::Reconnecting { .. }));
}

#[test]
fn data_applies_without_a_prev_seq_chain_and_ignores_the_stale() {
    let (mut store, socket, id) = live(vec![order("a", 1, 1)], 5);
    // prevSeq 7 does not chain on 5 (a filtered stream): AppSync cannot replay, so it applies.
    store.handle(1, data(socket, &id, change(9, 7, "MODIFY", Some("a"), Some(3), Some(order("a", 3, 30)))));
    assert_eq!(store.collection("orders").unwrap().row("a"), Some(order("a", 3, 30)));
    // An older seq is a duplicate.
    store.handle(2, data(socket, &id, change(8, 7, "MODIFY", Some("a"), Some(2), Some(order("a", 2, 20)))));
    assert_eq!(store.collection("orders").unwrap().row("a"), Some(order("a", 3, 30)));
    let stats = store.collection("orders").unwrap().stats();
    assert_eq!((stats.gaps, stats.duplicates), (0, 1));
}

#[test]
fn a_subscription_error_resubscribes_and_resnapshots() {
    let (mut store, socket, id) = live(vec![], 5);
    let error = ServerMessage::Error {
        id: Some(id.clone()),
        payload: ErrorPayload {
            errors: vec![AppSyncError {
                error_type: appsync::error_type::UNAUTHORIZED.into(),
                message: "no".into(),
                error_code: None,
            }],
        },
    };
    let out = store.handle(1, frame(socket, &error));
    assert!(out.contains(&Output::AuthRequired), "{out:?}");
    assert!(!store.collection("orders").unwrap().is_live());
    // The retry waits at most the backoff base (500 ms); a `ka` on the way keeps the socket alive.
    let out = store.handle(900, frame(socket, &ServerMessage::Ka));
    let started = starts(&out);
    assert_eq!(started.len(), 1, "{out:?}");
    assert_ne!(started[0].0, id);
    let out = store.handle(900, frame(socket, &ServerMessage::StartAck { id: started[0].0.clone() }));
    assert_eq!(https(&out).len(), 1, "a fresh snapshot");
}

#[test]
fn unwatch_sends_stop_and_late_data_is_ignored() {
    let (mut store, socket, id) = live(vec![], 5);
    let out = store.handle(1, Input::Unwatch("orders".into()));
    assert_eq!(sent(&out), vec![appsync::ClientMessage::Stop { id: id.clone() }]);
    let out = store.handle(2, frame(socket, &ServerMessage::Complete { id }));
    assert!(row_changes(&out).is_empty());
}

#[test]
fn after_a_reconnect_it_resubscribes_and_takes_a_fresh_snapshot() {
    let (mut store, socket, _) = live(vec![order("a", 1, 1), order("b", 1, 1)], 5);
    store.handle(10, Input::SocketClosed { socket, code: 1006, reason: String::new() });
    // While away: b was removed (seq 6) and c inserted (seq 7); AppSync never replays those.
    let out = store.handle(60_000, Input::Tick);
    let socket = opened_socket(&out).expect("a reconnect");
    let (socket, out) = connect_socket(&mut store, socket, 60_000);
    assert!(https(&out).is_empty());
    let started = starts(&out);
    assert_eq!(started.len(), 1);
    let id = started[0].0.clone();
    let out = store.handle(60_001, frame(socket, &ServerMessage::StartAck { id: id.clone() }));
    let req = https(&out).pop().expect("a fresh snapshot after the reconnect");
    // An event between start_ack and the snapshot's answer: newer than the snapshot, it applies on top.
    store.handle(60_002, data(socket, &id, change(8, 7, "MODIFY", Some("a"), Some(2), Some(order("a", 2, 2)))));
    // An event the snapshot already holds is dropped.
    store.handle(60_002, data(socket, &id, change(7, 6, "INSERT", Some("c"), Some(1), Some(order("c", 1, 1)))));
    let out = store.handle(
        60_003,
        Input::Http { request_id: req.request_id, response: page(vec![order("a", 1, 1), order("c", 1, 1)], None, 7) },
    );
    let view = store.collection("orders").unwrap();
    assert_eq!(view.keys(), vec!["a", "c"]);
    assert_eq!(view.row("a"), Some(order("a", 2, 2)));
    assert_eq!(view.last_seq(), Some(8));
    assert!(view.is_live());
    assert_eq!(view.stats().snapshots, 2);
    assert!(row_changes(&out).contains(&crate::RowChange::Removed { key: "b".into(), expired: false }));
}

#[test]
fn a_connection_error_asks_for_credentials_and_retries() {
    let mut store = Store::new(appsync_config());
    let out = store.handle(0, Input::Connect);
    let socket = opened_socket(&out).unwrap();
    store.handle(0, Input::SocketOpened { socket });
    let error = ServerMessage::ConnectionError {
        payload: ErrorPayload {
            errors: vec![AppSyncError {
                error_type: appsync::error_type::UNAUTHORIZED.into(),
                message: "no".into(),
                error_code: Some(401),
            }],
        },
    };
    let out = store.handle(1, frame(socket, &error));
    assert!(out.contains(&Output::AuthRequired), "{out:?}");
    assert!(matches!(store.status().connection, ConnectionStatus::Reconnecting { .. }));
    // The 4401 close that follows is for a socket the store already abandoned.
    store.handle(2, Input::SocketClosed { socket, code: 4401, reason: "Unauthorized".into() });
    assert!(matches!(store.status().connection, ConnectionStatus::Reconnecting { .. }));
}

#[test]
fn over_appsync_the_history_starts_at_each_snapshot_with_the_events_buffered_during_it() {
    use crate::{HistoryConfig, HistoryOp};
    let mut cfg = appsync_config();
    cfg.collections = vec![super::orders().page_size(1000).history(HistoryConfig::new(50))];
    let mut store = Store::new(cfg);
    let (socket, out) = go_live(&mut store, 0);
    let id = starts(&out)[0].0.clone();
    let out = store.handle(0, frame(socket, &ServerMessage::StartAck { id: id.clone() }));
    let req = https(&out).pop().expect("a snapshot after start_ack");
    // An event arrives while the snapshot is on its way: it waits, and applies on top of the snapshot.
    store.handle(0, data(socket, &id, change(11, 10, "MODIFY", Some("a"), Some(2), Some(order("a", 2, 5)))));
    store.handle(0, Input::Http { request_id: req.request_id, response: page(vec![order("a", 1, 1)], None, 10) });
    store.handle(0, data(socket, &id, change(12, 11, "INSERT", Some("b"), Some(1), Some(order("b", 1, 7)))));
    let view = store.collection("orders").expect("orders");
    assert_eq!(view.history().map(|r| (r.first, r.last, r.events)), Ok((10, 12, 2)));
    let at = |seq| -> Vec<(Value, i64, HistoryOp)> {
        view.at(seq).expect("held").rows.into_iter().map(|r| ((*r.row).clone(), r.seq, r.op)).collect()
    };
    assert_eq!(at(10), vec![(order("a", 1, 1), 10, HistoryOp::Snapshot)]);
    assert_eq!(at(11), vec![(order("a", 2, 5), 11, HistoryOp::Update)]);
    assert_eq!(at(12), vec![(order("a", 2, 5), 11, HistoryOp::Update), (order("b", 1, 7), 12, HistoryOp::Insert)]);

    // A reconnect takes a new snapshot: the history starts over there, claiming nothing about the time away.
    store.handle(1, Input::SocketClosed { socket, code: 1006, reason: "gone".into() });
    let out = store.handle(60_000, Input::Tick);
    let socket = opened_socket(&out).expect("a new socket");
    let (socket, out) = connect_socket(&mut store, socket, 60_000);
    let id = starts(&out)[0].0.clone();
    let out = store.handle(60_000, frame(socket, &ServerMessage::StartAck { id }));
    let req = https(&out).pop().expect("a new snapshot");
    store.handle(60_000, Input::Http { request_id: req.request_id, response: page(vec![order("b", 2, 8)], None, 20) });
    let view = store.collection("orders").expect("orders");
    assert_eq!(view.history().map(|r| (r.first, r.last, r.events)), Ok((20, 20, 0)));
    assert!(matches!(view.at(12), Err(crate::HistoryError::OutOfRange { first: 20, last: 20, .. })));
}
