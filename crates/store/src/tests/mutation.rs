//! Mutations: ids, the queue, overlays, typed errors and persistence.

use serde_json::{json, Value};

use super::*;
use crate::{
    FieldError, HttpResponse, Input, Mutation, MutationError, Optimistic, Output, PendingMutation, RowChange, Store,
};

const UPDATE: &str = "mutation($id: ID!, $expectedVersion: Int!, $input: OrderInput!, $clientMutationId: ID) { \
                      updateOrder(id: $id, expectedVersion: $expectedVersion, input: $input, clientMutationId: \
                      $clientMutationId) { id owner version value } }";

fn update(key: &str, expected: i64, value: i64) -> Mutation {
    Mutation::new(UPDATE, json!({"id": key, "expectedVersion": expected, "input": {"value": value}}), "updateOrder")
        .optimistic("orders", Optimistic::Patch { key: key.into(), fields: json!({"value": value}) })
}

fn ok(field: &str, entity: Value) -> HttpResponse {
    HttpResponse::Ok { body: json!({"data": {field: entity}}) }
}

fn graphql_error(code: &str, extensions: Value) -> HttpResponse {
    let mut ext = extensions;
    ext["code"] = json!(code);
    HttpResponse::Ok { body: json!({"data": null, "errors": [{"message": "refused", "extensions": ext}]}) }
}

fn queued_id(out: &[Output]) -> String {
    out.iter().find_map(|o| if let Output::MutationQueued { id } = o { Some(id.clone()) } else { None }).unwrap()
}

fn settled(out: &[Output]) -> Vec<(String, Result<Value, MutationError>)> {
    out.iter()
        .filter_map(|o| {
            if let Output::MutationSettled { id, result } = o {
                Some((id.clone(), result.clone()))
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn queued_offline_then_replayed_in_order_one_at_a_time() {
    let mut store = Store::new(config(vec![]));
    let a = queued_id(&store.handle(0, Input::Mutate(Mutation::new(UPDATE, json!({"id": "a"}), "updateOrder"))));
    let b = queued_id(
        &store.handle(0, Input::Mutate(Mutation::new(UPDATE, json!({"id": "b"}), "updateOrder").with_id("mine"))),
    );
    assert_eq!(b, "mine");
    assert_ne!(a, b);
    assert_eq!(a.len(), 36, "a UUID: {a}");
    assert_eq!(store.status().pending_mutations, 2);
    let (_, out) = go_live(&mut store, 1);
    let reqs = https(&out);
    assert_eq!(reqs.len(), 1, "one at a time");
    assert!(!reqs[0].prefetchable, "a mutation is never answered by an earlier request");
    assert_eq!(reqs[0].body["variables"], json!({"id": "a", "clientMutationId": a}));
    assert_eq!(reqs[0].body["query"], json!(UPDATE));
    let out =
        store.handle(2, Input::Http { request_id: reqs[0].request_id, response: ok("updateOrder", order("a", 2, 0)) });
    assert_eq!(settled(&out), vec![(a, Ok(order("a", 2, 0)))]);
    let reqs = https(&out);
    assert_eq!(reqs[0].body["variables"]["clientMutationId"], json!("mine"));
    let out =
        store.handle(3, Input::Http { request_id: reqs[0].request_id, response: ok("updateOrder", order("b", 2, 0)) });
    assert_eq!(settled(&out).len(), 1);
    assert!(https(&out).is_empty());
    assert_eq!(
        out.last(),
        Some(&Output::Status(crate::Status { connection: crate::ConnectionStatus::Live, pending_mutations: 0 }))
    );
}

#[test]
fn overlay_shows_until_the_authoritative_event_arrives() {
    let (mut store, socket, sub) = live_orders(vec![order("a", 1, 1), order("b", 1, 1)], 10);
    let out = store.handle(1, Input::Mutate(update("a", 1, 42)));
    let id = queued_id(&out);
    assert_eq!(row_changes(&out), vec![RowChange::Updated { key: "a".into() }]);
    let view = store.collection("orders").unwrap();
    assert_eq!(view.row("a").unwrap()["value"], json!(42));
    assert_eq!(view.confirmed("a").unwrap()["value"], json!(1));
    let req = https(&out).pop().unwrap();
    // The server's image replaces the guess (version 2 now shows), still as an overlay.
    let out =
        store.handle(2, Input::Http { request_id: req.request_id, response: ok("updateOrder", order("a", 2, 42)) });
    assert_eq!(row_changes(&out), vec![RowChange::Updated { key: "a".into() }]);
    assert_eq!(store.collection("orders").unwrap().overlays(), 1);
    // The event with that version makes the overlay redundant; readers see no change.
    let out =
        store.handle(3, next(socket, &sub, change(11, 10, "MODIFY", Some("a"), Some(2), Some(order("a", 2, 42)))));
    assert!(row_changes(&out).is_empty());
    assert_eq!(store.collection("orders").unwrap().overlays(), 0);
    assert_eq!(store.collection("orders").unwrap().row("a"), Some(order("a", 2, 42)));
    let _ = id;
}

#[test]
fn overlay_ends_at_the_result_when_the_event_came_first() {
    let (mut store, socket, sub) = live_orders(vec![order("a", 1, 1)], 10);
    let out = store.handle(1, Input::Mutate(update("a", 1, 42)));
    let req = https(&out).pop().unwrap();
    let out =
        store.handle(2, next(socket, &sub, change(11, 10, "MODIFY", Some("a"), Some(2), Some(order("a", 2, 42)))));
    // Confirmed moved underneath; the overlay (value 42) still shows the same value, the version is from the
    // confirmed row plus the patch.
    assert_eq!(row_changes(&out), vec![RowChange::Updated { key: "a".into() }]);
    store.handle(3, Input::Http { request_id: req.request_id, response: ok("updateOrder", order("a", 2, 42)) });
    assert_eq!(store.collection("orders").unwrap().overlays(), 0);
}

#[test]
fn errors_roll_back_and_surface_typed() {
    let (mut store, _, _) = live_orders(vec![order("a", 3, 1)], 10);
    let cases: Vec<(HttpResponse, MutationError)> = vec![
        (
            graphql_error("VALIDATION", json!({"fields": [{"field": "email", "code": "FORMAT", "message": "bad"}]})),
            MutationError::Validation {
                fields: vec![FieldError { field: "email".into(), code: "FORMAT".into(), message: "bad".into() }],
            },
        ),
        (
            graphql_error("CONFLICT", json!({"current": order("a", 3, 1)})),
            MutationError::Conflict(Box::new(crate::conflict::Conflict::from_server(order("a", 3, 1)))),
        ),
        (graphql_error("UNAUTHENTICATED", json!({})), MutationError::Unauthorized { message: "refused".into() }),
        (graphql_error("FORBIDDEN", json!({})), MutationError::Unauthorized { message: "refused".into() }),
        (
            graphql_error("NOT_FOUND", json!({})),
            MutationError::Other { code: Some("NOT_FOUND".into()), message: "refused".into() },
        ),
        (
            HttpResponse::Status { status: 401, body: None },
            MutationError::Unauthorized { message: "HTTP 401/403".into() },
        ),
        (
            HttpResponse::Status { status: 400, body: None },
            MutationError::Other { code: None, message: "HTTP 400".into() },
        ),
    ];
    for (i, (response, expected)) in cases.into_iter().enumerate() {
        let now = 10 + i as u64;
        let out = store.handle(now, Input::Mutate(update("a", 1, 99)));
        assert_eq!(store.collection("orders").unwrap().row("a").unwrap()["value"], json!(99));
        let req = https(&out).pop().unwrap();
        let out = store.handle(now, Input::Http { request_id: req.request_id, response });
        match (&settled(&out)[0].1, &expected) {
            // The conflict is completed by the store (tests/conflict.rs): here only the server's row matters.
            (Err(MutationError::Conflict(got)), MutationError::Conflict(sent)) => assert_eq!(got.theirs, sent.theirs),
            (got, _) => assert_eq!(got, &Err(expected)),
        }
        assert_eq!(row_changes(&out), vec![RowChange::Updated { key: "a".into() }], "rolled back");
        assert_eq!(store.collection("orders").unwrap().row("a"), Some(order("a", 3, 1)));
        assert_eq!(store.status().pending_mutations, 0);
    }
}

#[test]
fn network_failures_and_an_unavailable_server_keep_it_queued_and_retry() {
    let (mut store, socket, _) = live_orders(vec![order("a", 1, 1)], 10);
    let out = store.handle(1, Input::Mutate(update("a", 1, 5)));
    let req = https(&out).pop().unwrap();
    let out = store.handle(
        2,
        Input::Http { request_id: req.request_id, response: HttpResponse::NetworkError { message: "reset".into() } },
    );
    assert!(settled(&out).is_empty());
    assert_eq!(store.status().pending_mutations, 1);
    assert_eq!(store.collection("orders").unwrap().row("a").unwrap()["value"], json!(5), "the overlay stays");
    let at = store.next_wake_ms().unwrap();
    assert!(at <= 502);
    let req = https(&store.handle(at, Input::Tick)).pop().expect("retried");
    let out = store.handle(
        at,
        Input::Http { request_id: req.request_id, response: HttpResponse::Status { status: 503, body: None } },
    );
    assert!(settled(&out).is_empty());
    // So does a server whose database cannot serve now (full, read-only, restarting).
    let at = store.next_wake_ms().unwrap();
    let req = https(&store.handle(at, Input::Tick)).pop().expect("retried");
    let out =
        store.handle(at, Input::Http { request_id: req.request_id, response: graphql_error("UNAVAILABLE", json!({})) });
    assert!(settled(&out).is_empty());
    assert_eq!(store.status().pending_mutations, 1);
    // A reconnect replays at once; the resent request carries the same clientMutationId.
    store.handle(at + 1, Input::SocketClosed { socket, code: 1006, reason: String::new() });
    let crate::ConnectionStatus::Reconnecting { retry_at_ms, .. } = store.status().connection else { panic!() };
    let socket = opened_socket(&store.handle(retry_at_ms, Input::Tick)).unwrap();
    let (_, out) = finish_handshake(&mut store, socket, retry_at_ms);
    let again = https(&out).pop().expect("replayed on reconnect");
    assert_eq!(again.body, req.body);
    // The stale request's answer is ignored.
    assert!(settled(&store.handle(
        retry_at_ms,
        Input::Http { request_id: req.request_id, response: ok("updateOrder", order("a", 2, 5)) }
    ))
    .is_empty());
}

#[test]
fn the_queue_survives_a_reload() {
    let mut store = Store::new(config(vec![orders()]));
    store.handle(0, Input::Mutate(update("a", 1, 5)));
    store.handle(
        0,
        Input::Mutate(
            Mutation::new(UPDATE, json!({"id": "b"}), "updateOrder")
                .optimistic("orders", Optimistic::Remove { key: "b".into() }),
        ),
    );
    let saved = serde_json::to_string(&store.pending_mutations()).unwrap();

    let mut reloaded = Store::new(StoreConfig { seed: 99, ..config(vec![orders()]) });
    let restored: Vec<PendingMutation> = serde_json::from_str(&saved).unwrap();
    assert_eq!(restored, store.pending_mutations());
    let out = reloaded.handle(0, Input::RestoreQueue(restored.clone()));
    assert_eq!(out.iter().filter(|o| matches!(o, Output::MutationQueued { .. })).count(), 2);
    // Restoring twice does not duplicate.
    reloaded.handle(0, Input::RestoreQueue(restored.clone()));
    assert_eq!(reloaded.pending_mutations(), restored);
    // A restored mutation may have been sent (and committed) before the reload: it goes first, and the snapshot
    // waits until every restored mutation of the collection has its answer, so the list reflects them all.
    let (_, out) = go_live(&mut reloaded, 1);
    let first = match &https(&out)[..] {
        [first] => first.clone(),
        other => panic!("the restored head goes first, alone: {other:?}"),
    };
    assert_eq!(first.body["variables"]["clientMutationId"], json!(restored[0].id));
    assert_eq!(reloaded.discard(&restored[1].id), Err(crate::DiscardError::AlreadySent), "it may have been sent");
    let out =
        reloaded.handle(2, Input::Http { request_id: first.request_id, response: ok("updateOrder", order("a", 2, 5)) });
    let second = match &https(&out)[..] {
        [second] => second.clone(),
        other => panic!("then the second, still before the snapshot: {other:?}"),
    };
    assert_eq!(second.body["variables"]["clientMutationId"], json!(restored[1].id));
    let out = reloaded.handle(
        3,
        Input::Http { request_id: second.request_id, response: ok("updateOrder", json!({"id": "b", "version": 2})) },
    );
    let snapshot = https(&out).pop().expect("the snapshot once both answered");
    let out = reloaded
        .handle(4, Input::Http { request_id: snapshot.request_id, response: page(vec![order("a", 2, 5)], None, 6) });
    assert!(row_changes(&out).is_empty(), "a already showed its answer: {out:?}");
    let view = reloaded.collection("orders").unwrap();
    assert_eq!(view.keys(), vec!["a"], "b stays removed");
    assert_eq!(view.row("a").unwrap()["value"], json!(5));
    assert_eq!(view.overlays(), 0);
}

#[test]
fn an_optimistic_create_moves_to_the_servers_key() {
    let (mut store, socket, sub) = live_orders(vec![], 10);
    let create = Mutation::new("mutation { createOrder }", json!({}), "createOrder")
        .optimistic("orders", Optimistic::Upsert { row: json!({"id": "tmp-1", "value": 3}) });
    let out = store.handle(1, Input::Mutate(create));
    assert_eq!(row_changes(&out), vec![RowChange::Inserted { key: "tmp-1".into() }]);
    let req = https(&out).pop().unwrap();
    let out =
        store.handle(2, Input::Http { request_id: req.request_id, response: ok("createOrder", order("k1", 1, 3)) });
    assert_eq!(
        row_changes(&out),
        vec![RowChange::Removed { key: "tmp-1".into(), expired: false }, RowChange::Inserted { key: "k1".into() }]
    );
    let out =
        store.handle(3, next(socket, &sub, change(11, 10, "INSERT", Some("k1"), Some(1), Some(order("k1", 1, 3)))));
    assert!(row_changes(&out).is_empty());
    assert_eq!(store.collection("orders").unwrap().overlays(), 0);
    assert_eq!(store.collection("orders").unwrap().keys(), vec!["k1"]);
}

#[test]
fn a_removal_event_ends_an_overlay_whose_result_comes_later() {
    let (mut store, socket, sub) = live_orders(vec![order("a", 1, 1)], 10);
    let out = store.handle(1, Input::Mutate(update("a", 1, 7)));
    let req = https(&out).pop().unwrap();
    // Our update (v2) and then someone's delete (v2) arrive before our HTTP result.
    store.handle(2, next(socket, &sub, change(11, 10, "MODIFY", Some("a"), Some(2), Some(order("a", 2, 7)))));
    let out = store.handle(2, next(socket, &sub, change(12, 11, "REMOVE", Some("a"), Some(2), Some(order("a", 2, 7)))));
    assert_eq!(row_changes(&out), vec![RowChange::Removed { key: "a".into(), expired: false }]);
    let out =
        store.handle(3, Input::Http { request_id: req.request_id, response: ok("updateOrder", order("a", 2, 7)) });
    assert!(row_changes(&out).is_empty(), "the late result does not resurrect the row");
    assert!(store.collection("orders").unwrap().keys().is_empty());
    assert_eq!(store.collection("orders").unwrap().overlays(), 0);
}

#[test]
fn an_event_echoing_our_mutation_id_retires_the_placeholder_before_the_answer() {
    let (mut store, socket, sub) = live_orders(vec![], 10);
    let create = Mutation::new("mutation { createOrder }", json!({}), "createOrder")
        .optimistic("orders", Optimistic::Upsert { row: json!({"id": "tmp-1", "value": 3}) });
    let out = store.handle(1, Input::Mutate(create));
    let id = queued_id(&out);
    let req = https(&out).pop().unwrap();
    // The server's event comes first and names our clientMutationId: the placeholder gives way to the server's row
    // at once, so the two never show side by side.
    let mut event = change(11, 10, "INSERT", Some("k1"), Some(1), Some(order("k1", 1, 3)));
    event["data"]["onOrderChanged"]["clientMutationId"] = json!(id);
    let out = store.handle(2, next(socket, &sub, event));
    assert_eq!(
        row_changes(&out),
        vec![RowChange::Removed { key: "tmp-1".into(), expired: false }, RowChange::Inserted { key: "k1".into() }]
    );
    assert_eq!(store.collection("orders").unwrap().keys(), vec!["k1"]);
    assert_eq!(store.collection("orders").unwrap().overlays(), 0);
    // The answer changes nothing visible, and settles the mutation.
    let out =
        store.handle(3, Input::Http { request_id: req.request_id, response: ok("createOrder", order("k1", 1, 3)) });
    assert!(row_changes(&out).is_empty());
    assert_eq!(settled(&out).len(), 1);
    assert_eq!(store.collection("orders").unwrap().keys(), vec!["k1"]);
}

#[test]
fn optimistic_effects_read_from_json_and_bad_ones_say_why() {
    for optimistic in [
        Optimistic::Upsert { row: json!({"id": "a", "value": 1}) },
        Optimistic::Patch { key: "a".into(), fields: json!({"value": 2}) },
        Optimistic::Remove { key: "a".into() },
    ] {
        let wire = serde_json::to_value(&optimistic).unwrap();
        assert_eq!(serde_json::from_value::<Optimistic>(wire).unwrap(), optimistic);
    }
    let read = |wire: Value| serde_json::from_value::<Optimistic>(wire).unwrap_err().to_string();
    assert!(read(json!({"kind": "patch", "key": "a"})).contains("an optimistic `patch` without `fields`"));
    assert!(read(json!({"kind": "remove"})).contains("an optimistic `remove` without `key`"));
    assert!(read(json!({"kind": "merge", "key": "a"})).contains("unknown optimistic kind `merge`"));
    assert!(read(json!({"key": "a"})).contains("missing field `kind`"));
}

#[test]
fn a_queued_mutation_is_discarded_with_its_overlay_but_a_sent_one_is_not() {
    let (mut store, _socket, _sub) = live_orders(vec![order("a", 1, 10), order("b", 1, 20)], 5);
    let before = store.collection("orders").unwrap().state();
    assert!(before.loaded && !before.stale && !before.has_pending_updates);
    assert_eq!(before.last_seq, Some(5));
    // The first is sent at once; the second waits behind it.
    let first_out = store.handle(1, Input::Mutate(update("a", 1, 11)));
    let first = queued_id(&first_out);
    let second = queued_id(&store.handle(1, Input::Mutate(update("b", 1, 21))));
    assert_eq!(store.collection("orders").unwrap().row("b").unwrap()["value"], 21);
    assert!(store.collection("orders").unwrap().state().has_pending_updates);

    assert_eq!(store.discard(&first), Err(crate::DiscardError::AlreadySent), "the server may have it");
    let out = store.discard(&second).expect("still queued");
    assert_eq!(settled(&out), [(second.clone(), Err(MutationError::Discarded))]);
    assert_eq!(row_changes(&out), [RowChange::Updated { key: "b".into() }], "its overlay rolls back");
    assert_eq!(store.collection("orders").unwrap().row("b").unwrap()["value"], 20);
    assert_eq!(store.discard(&second), Err(crate::DiscardError::NotQueued));
    assert_eq!(store.pending_mutations().len(), 1);

    // The sent one settles as usual, and nothing else goes out for the discarded one.
    let request = https(&first_out).pop().expect("the first was sent");
    let out =
        store.handle(2, Input::Http { request_id: request.request_id, response: ok("updateOrder", order("a", 2, 11)) });
    assert_eq!(settled(&out).len(), 1);
    assert!(https(&out).is_empty(), "the discarded mutation is never sent");
    assert_eq!(store.status().pending_mutations, 0);
}
