//! The connection state machine: handshake, keep-alive, close codes, backoff, offline, ids.

use std::collections::HashSet;

use serde_json::json;
use subsignal_protocol::transport_ws::{ClientMessage, CloseCode, ServerMessage};

use super::*;
use crate::rng::backoff_ceiling;
use crate::{ConnectionConfig, ConnectionStatus, Input, Output, Store};

#[test]
fn init_carries_auth_and_ack_makes_it_live() {
    let mut store = Store::new(config(vec![]));
    let out = store.handle(0, Input::Connect);
    assert!(matches!(out[0], Output::OpenSocket { socket: 1, .. }));
    assert_eq!(last_status(&out), Some(ConnectionStatus::Connecting { attempt: 0 }));
    let out = store.handle(5, Input::SocketOpened { socket: 1 });
    assert_eq!(
        sends(&out),
        vec![ClientMessage::ConnectionInit { payload: Some(json!({"Authorization": "Bearer t"})) }]
    );
    let out = store.handle(6, frame(1, &ServerMessage::ConnectionAck { payload: None }));
    assert_eq!(last_status(&out), Some(ConnectionStatus::Live));
}

#[test]
fn ack_timeout_closes_with_4504_and_retries() {
    let mut store = Store::new(config(vec![]));
    store.handle(0, Input::Connect);
    store.handle(0, Input::SocketOpened { socket: 1 });
    let ack_timeout = ConnectionConfig::default().ack_timeout_ms;
    assert_eq!(store.next_wake_ms(), Some(ack_timeout));
    assert!(store.handle(ack_timeout - 1, Input::Tick).is_empty());
    let out = store.handle(ack_timeout, Input::Tick);
    assert!(matches!(out[0], Output::CloseSocket { socket: 1, code: 4504, .. }));
    let Some(ConnectionStatus::Reconnecting { attempt: 1, retry_at_ms }) = last_status(&out) else { panic!("{out:?}") };
    assert!(retry_at_ms <= ack_timeout + 500);
    assert!(retry_at_ms > ack_timeout, "seed 7 draws a non-zero delay");
    // The abandoned socket's late ack changes nothing.
    assert!(store.handle(ack_timeout, frame(1, &ServerMessage::ConnectionAck { payload: None })).is_empty());
    let out = store.handle(retry_at_ms, Input::Tick);
    assert_eq!(opened_socket(&out), Some(2));
}

#[test]
fn connect_timeout_retries() {
    let mut store = Store::new(config(vec![]));
    store.handle(0, Input::Connect);
    let out = store.handle(ConnectionConfig::default().connect_timeout_ms, Input::Tick);
    assert!(matches!(out[0], Output::CloseSocket { socket: 1, code: 4499, .. }));
    assert!(matches!(store.status().connection, ConnectionStatus::Reconnecting { attempt: 1, .. }));
}

#[test]
fn server_ping_is_answered_with_pong() {
    let mut store = Store::new(config(vec![]));
    let (socket, _) = go_live(&mut store, 0);
    let out = store.handle(1, frame(socket, &ServerMessage::Ping { payload: None }));
    assert_eq!(sends(&out), vec![ClientMessage::Pong { payload: None }]);
}

#[test]
fn keep_alive_pings_when_idle_and_detects_a_dead_socket() {
    let cfg = ConnectionConfig::default();
    let mut store = Store::new(config(vec![]));
    let (socket, _) = go_live(&mut store, 0);
    assert_eq!(store.next_wake_ms(), Some(cfg.ping_interval_ms));
    let out = store.handle(cfg.ping_interval_ms, Input::Tick);
    assert_eq!(sends(&out), vec![ClientMessage::Ping { payload: None }]);
    // An answer (any frame) keeps it alive and restarts the idle clock.
    store.handle(cfg.ping_interval_ms + 10, frame(socket, &ServerMessage::Pong { payload: None }));
    assert_eq!(store.next_wake_ms(), Some(2 * cfg.ping_interval_ms + 10));
    let t = 2 * cfg.ping_interval_ms + 10;
    assert_eq!(sends(&store.handle(t, Input::Tick)), vec![ClientMessage::Ping { payload: None }]);
    // No answer: closed within pong_timeout, retryable.
    assert_eq!(store.next_wake_ms(), Some(t + cfg.pong_timeout_ms));
    let out = store.handle(t + cfg.pong_timeout_ms, Input::Tick);
    assert!(matches!(out[0], Output::CloseSocket { socket: 1, code: 4499, .. }), "{out:?}");
    assert!(matches!(last_status(&out), Some(ConnectionStatus::Reconnecting { attempt: 1, .. })));
}

#[test]
fn each_close_code_is_fatal_or_retried() {
    let mut codes: Vec<CloseCode> = CloseCode::NAMED.to_vec();
    codes.extend([CloseCode::Other(1006), CloseCode::Other(4999)]);
    for code in codes {
        let mut store = Store::new(config(vec![]));
        let (socket, _) = go_live(&mut store, 0);
        let out = store.handle(100, Input::SocketClosed { socket, code: code.code(), reason: "bye".into() });
        if code.is_fatal() {
            assert_eq!(store.status().connection, ConnectionStatus::Failed { reason: format!("{}: bye", code.code()) });
            assert_eq!(store.next_wake_ms(), None, "{code:?}");
            assert!(store.handle(1_000_000, Input::Tick).is_empty());
            // Connect starts over.
            assert_eq!(opened_socket(&store.handle(1_000_001, Input::Connect)), Some(2));
        } else {
            let Some(ConnectionStatus::Reconnecting { attempt: 1, retry_at_ms }) = last_status(&out) else {
                panic!("{code:?}: {out:?}")
            };
            assert!((100..=600).contains(&retry_at_ms));
            assert_eq!(opened_socket(&store.handle(retry_at_ms, Input::Tick)), Some(2));
        }
        assert_eq!(out.contains(&Output::AuthRequired), code == CloseCode::Forbidden, "{code:?}");
    }
}

#[test]
fn backoff_is_full_jitter_capped_and_never_gives_up() {
    let cfg = ConnectionConfig::default();
    let mut low_halves = 0;
    for seed in 0..20 {
        let mut store = Store::new(StoreConfig { seed, ..config(vec![]) });
        let mut now = 0;
        let mut socket = opened_socket(&store.handle(now, Input::Connect)).unwrap();
        for n in 1..=60u32 {
            store.handle(now, Input::SocketClosed { socket, code: 1006, reason: String::new() });
            let ConnectionStatus::Reconnecting { attempt, retry_at_ms } = store.status().connection else {
                panic!("gave up after {n}")
            };
            assert_eq!(attempt, n);
            let ceiling = backoff_ceiling(cfg.backoff_base_ms, cfg.backoff_cap_ms, n);
            assert_eq!(ceiling, (cfg.backoff_base_ms << (n - 1).min(20)).min(30_000));
            let delay = retry_at_ms - now;
            assert!(delay <= ceiling, "attempt {n}: {delay} > {ceiling}");
            if delay < ceiling / 2 {
                low_halves += 1;
            }
            now = retry_at_ms;
            socket = opened_socket(&store.handle(now, Input::Tick)).expect("retries");
        }
    }
    // Full jitter spreads delays over the whole range, not just near the ceiling.
    assert!((400..=800).contains(&low_halves), "{low_halves} of 1200 delays below half the ceiling");
}

#[test]
fn a_successful_handshake_resets_the_backoff() {
    let mut store = Store::new(config(vec![]));
    let socket = opened_socket(&store.handle(0, Input::Connect)).unwrap();
    store.handle(0, Input::SocketClosed { socket, code: 1006, reason: String::new() });
    store.handle(0, Input::SocketClosed { socket, code: 1006, reason: String::new() });
    let ConnectionStatus::Reconnecting { attempt: 1, retry_at_ms } = store.status().connection else { panic!() };
    let socket = opened_socket(&store.handle(retry_at_ms, Input::Tick)).unwrap();
    finish_handshake(&mut store, socket, retry_at_ms);
    store.handle(retry_at_ms, Input::SocketClosed { socket, code: 1001, reason: String::new() });
    assert!(matches!(store.status().connection, ConnectionStatus::Reconnecting { attempt: 1, .. }));
}

#[test]
fn nothing_but_init_is_sent_before_the_ack_while_the_snapshot_starts_at_once() {
    let mut store = Store::new(config(vec![orders()]));
    let out = store.handle(0, Input::Connect);
    assert!(sends(&out).is_empty());
    let snapshot = https(&out);
    assert_eq!(snapshot.len(), 1, "the snapshot does not wait for the socket");
    let out = store.handle(0, Input::SocketOpened { socket: 1 });
    assert!(matches!(sends(&out)[..], [ClientMessage::ConnectionInit { .. }]));
    assert!(https(&out).is_empty());
    // Frames before the ack are not routed and provoke nothing.
    let out = store.handle(1, next(1, "s1", change(1, 0, "WATERMARK", None, None, None)));
    assert!(out.is_empty());
    // The snapshot arrives before the ack: its rows show, and the subscription waits for the ack.
    let out = store
        .handle(2, Input::Http { request_id: snapshot[0].request_id, response: page(vec![order("a", 1, 1)], None, 7) });
    assert!(sends(&out).is_empty());
    assert_eq!(store.collection("orders").unwrap().keys(), ["a"]);
    let out = store.handle(3, frame(1, &ServerMessage::ConnectionAck { payload: None }));
    assert_eq!(subscribes(&out), [("s1".to_owned(), Some(7))]);
    assert!(https(&out).is_empty());
}

#[test]
fn reconnect_resubscribes_after_the_ack_from_last_seq_with_fresh_ids() {
    let (mut store, socket, id) = live_orders(vec![order("a", 1, 1)], 10);
    store.handle(1, next(socket, &id, change(12, 10, "MODIFY", Some("a"), Some(2), Some(order("a", 2, 2)))));
    let out = store.handle(2, Input::SocketClosed { socket, code: 1001, reason: String::new() });
    let Some(ConnectionStatus::Reconnecting { retry_at_ms, .. }) = last_status(&out) else { panic!() };
    let socket = opened_socket(&store.handle(retry_at_ms, Input::Tick)).unwrap();
    let out = store.handle(retry_at_ms, Input::SocketOpened { socket });
    assert!(subscribes(&out).is_empty());
    let (_, out) = finish_handshake(&mut store, socket, retry_at_ms);
    let subs = subscribes(&out);
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].1, Some(12));
    assert_ne!(subs[0].0, id);
    assert!(https(&out).is_empty(), "no new snapshot when the cursor is known");
}

#[test]
fn ids_are_never_reused() {
    let (mut store, mut socket, mut id) = live_orders(vec![], 0);
    let mut seen = HashSet::from([id.clone()]);
    let mut now = 0;
    for round in 0..30i64 {
        // A gap forces a resubscription on the same socket.
        let out =
            store.handle(now, next(socket, &id, change(round * 10 + 5, round * 10 + 3, "WATERMARK", None, None, None)));
        let subs = subscribes(&out);
        assert_eq!(subs.len(), 1);
        id = subs[0].0.clone();
        assert!(seen.insert(id.clone()), "{id} reused");
        store.handle(
            now,
            next(
                socket,
                &id,
                change(
                    round * 10 + 5,
                    store.collection("orders").unwrap().last_seq().unwrap(),
                    "WATERMARK",
                    None,
                    None,
                    None,
                ),
            ),
        );
        // A reconnect resubscribes too.
        store.handle(now, Input::SocketClosed { socket, code: 1006, reason: String::new() });
        let ConnectionStatus::Reconnecting { retry_at_ms, .. } = store.status().connection else { panic!() };
        now = retry_at_ms;
        socket = opened_socket(&store.handle(now, Input::Tick)).unwrap();
        let (_, out) = finish_handshake(&mut store, socket, now);
        id = subscribes(&out)[0].0.clone();
        assert!(seen.insert(id.clone()), "{id} reused");
    }
    assert_eq!(store.collection("orders").unwrap().stats().subscriptions, 61);
}

#[test]
fn offline_drops_the_socket_and_online_reconnects_at_once() {
    let mut store = Store::new(config(vec![]));
    let (socket, _) = go_live(&mut store, 0);
    let out = store.handle(10, Input::Offline);
    assert!(matches!(out[0], Output::CloseSocket { socket: s, .. } if s == socket));
    assert_eq!(last_status(&out), Some(ConnectionStatus::Offline));
    assert_eq!(store.next_wake_ms(), None);
    assert!(store.handle(100_000, Input::Tick).is_empty());
    let out = store.handle(100_001, Input::Online);
    assert_eq!(opened_socket(&out), Some(socket + 1));
    // Online while waiting to retry skips the wait.
    store.handle(100_002, Input::SocketClosed { socket: socket + 1, code: 1006, reason: String::new() });
    assert!(matches!(store.status().connection, ConnectionStatus::Reconnecting { .. }));
    assert_eq!(opened_socket(&store.handle(100_003, Input::Online)), Some(socket + 2));
}

#[test]
fn disconnect_stays_disconnected() {
    let mut store = Store::new(config(vec![]));
    let (socket, _) = go_live(&mut store, 0);
    let out = store.handle(1, Input::Disconnect);
    assert_eq!(out[0], Output::CloseSocket { socket, code: 1000, reason: "disconnect".into() });
    assert_eq!(store.status().connection, ConnectionStatus::Disconnected);
    assert_eq!(store.next_wake_ms(), None);
    assert!(store.handle(2, Input::SocketClosed { socket, code: 1000, reason: String::new() }).is_empty());
}

#[test]
fn an_unreadable_frame_closes_4004_and_retries() {
    let mut store = Store::new(config(vec![]));
    let (socket, _) = go_live(&mut store, 0);
    let out = store.handle(1, Input::Frame { socket, text: "{nope".into() });
    assert!(matches!(out[0], Output::CloseSocket { code: 4004, .. }));
    assert!(matches!(store.status().connection, ConnectionStatus::Reconnecting { .. }));
}

#[test]
fn set_auth_applies_to_the_next_init_and_http_headers() {
    let mut store = Store::new(config(vec![orders()]));
    store.handle(0, Input::SetAuth(Some(json!({"Authorization": "Bearer fresh"}))));
    let snapshot = store.handle(0, Input::Connect);
    let out = store.handle(0, Input::SocketOpened { socket: 1 });
    assert_eq!(
        sends(&out),
        vec![ClientMessage::ConnectionInit { payload: Some(json!({"Authorization": "Bearer fresh"})) }]
    );
    assert_eq!(https(&snapshot)[0].headers, vec![("Authorization".to_owned(), "Bearer fresh".to_owned())]);
}

#[test]
fn refused_credentials_ask_for_new_ones_and_reconnect_with_them() {
    let (mut store, socket, id) = live_orders(vec![], 3);
    let error = ServerMessage::Error {
        id,
        payload: vec![json!({"message": "token expired", "extensions": {"code": "UNAUTHENTICATED"}})],
    };
    let out = store.handle(1, frame(socket, &error));
    assert!(out.contains(&Output::AuthRequired));
    let out = store.handle(2, Input::SetAuth(Some(json!({"Authorization": "Bearer new"}))));
    assert!(matches!(out[0], Output::CloseSocket { socket: s, code: 4499, .. } if s == socket));
    let fresh = opened_socket(&out).expect("a new socket at once");
    let out = store.handle(2, Input::SocketOpened { socket: fresh });
    assert_eq!(
        sends(&out),
        vec![ClientMessage::ConnectionInit { payload: Some(json!({"Authorization": "Bearer new"})) }]
    );
    let (_, out) = finish_handshake(&mut store, fresh, 3);
    assert_eq!(subscribes(&out)[0].1, Some(3));
    // Without an outstanding request, new credentials wait for the next connection.
    assert!(store.handle(4, Input::SetAuth(None)).is_empty());
}

#[test]
fn inputs_and_outputs_have_a_json_form_for_javascript_shells() {
    let input: Input = serde_json::from_value(
        json!({"type": "http", "value": {"requestId": 3, "response": {"kind": "networkError", "message": "x"}}}),
    )
    .unwrap();
    assert_eq!(
        input,
        Input::Http { request_id: 3, response: crate::HttpResponse::NetworkError { message: "x".into() } }
    );
    let input: Input = serde_json::from_value(json!({"type": "frame", "value": {"socket": 1, "text": "{}"}})).unwrap();
    assert_eq!(input, Input::Frame { socket: 1, text: "{}".into() });
    assert_eq!(serde_json::from_value::<Input>(json!({"type": "tick"})).unwrap(), Input::Tick);
    let mut store = Store::new(config(vec![]));
    let (socket, _) = go_live(&mut store, 0);
    let out = store.handle(1, frame(socket, &ServerMessage::Ping { payload: None }));
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        json!([{"type": "send", "value": {"socket": 1, "message": {"type": "pong"}}}])
    );
    let status = serde_json::to_value(Output::Status(store.status())).unwrap();
    assert_eq!(status, json!({"type": "status", "value": {"connection": {"state": "live"}, "pendingMutations": 0}}));
}
