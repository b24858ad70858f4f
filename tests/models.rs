//! The API generated from an SDL file (`subsignal serve --schema`), on both backends: every generated operation of
//! a two-model schema (`schemas/two-models.graphql`), AppSync scalar validation, `@auth` owner, group and API-key
//! rules, conflicts, idempotent replay, gapless `afterSeq` replay across models, TTL expiry and `@aws_subscribe`
//! argument filtering.

use std::path::PathBuf;

use serde_json::{json, Value};
use subsignal_server::clock::Clock;
use subsignal_server::config::Settings;
use subsignal_tests::{database_for, on_both_backends, Backend, Frame, Gql, TestServer, Ws};

fn schema_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/two-models.graphql")
}

async fn start(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |s| Settings { schema: Some(schema_file()), ..s }).await
}

const NOTE: &str = "id owner title body priority tags { label color } expiresAt version createdAt updatedAt";

async fn create_note(client: &Gql, input: Value, mutation_id: Option<&str>) -> Value {
    let query = format!(
        "mutation($input: CreateNoteInput!, $m: ID) {{ createNote(input: $input, clientMutationId: $m) {{ {NOTE} }} }}"
    );
    client.data(&query, json!({"input": input, "m": mutation_id})).await["createNote"].clone()
}

fn api_key_client(server: &TestServer) -> Gql {
    Gql { url: format!("{}/graphql", server.http()), auth: Some(("x-api-key", "test-api-key-123".into())) }
}

/// The `extensions` of the first error of a response that must have failed.
fn error_extensions(body: &Value) -> &Value {
    assert!(body["errors"].is_array(), "expected errors: {body}");
    &body["errors"][0]["extensions"]
}

/// A socket subscribed as `id` to `query`.
async fn subscribe(server: &TestServer, user: &str, query: &str, variables: Value) -> Ws {
    let mut ws = Ws::connect(&server.ws(), &server.token(user)).await;
    ws.send(json!({"type": "subscribe", "id": "s", "payload": {"query": query, "variables": variables}})).await;
    ws
}

/// The next event's `field`.
async fn next_event(ws: &mut Ws, field: &str) -> Value {
    let msg = ws.next_json().await;
    assert_eq!(msg["type"], "next", "expected an event, got {msg}");
    msg["payload"]["data"][field].clone()
}

async fn every_generated_operation_works(backend: Backend) {
    let server = start(backend).await;
    let alice = server.client("alice");
    let created = create_note(
        &alice,
        json!({"title": "Milk", "priority": "HIGH", "tags": [{"label": "shop", "color": null}]}),
        None,
    )
    .await;
    let id = created["id"].as_str().expect("a generated id").to_owned();
    assert_eq!(created["owner"], "alice", "the owner comes from the token");
    assert_eq!((created["version"].clone(), created["tags"][0]["label"].clone()), (json!(1), json!("shop")));
    assert_eq!(created["createdAt"], created["updatedAt"]);

    let got = alice.data(&format!("query($id: ID!) {{ getNote(id: $id) {{ {NOTE} }} }}"), json!({"id": id})).await;
    assert_eq!(got["getNote"], created);

    let own_id = create_note(&alice, json!({"id": "note-2", "title": "Bread", "priority": "LOW"}), None).await;
    assert_eq!(own_id["id"], "note-2", "an id given in the input is kept");
    let page = alice.data("{ listNotes(limit: 1) { items { id } nextToken seq } }", json!({})).await;
    assert_eq!(page["listNotes"]["items"].as_array().unwrap().len(), 1);
    assert!(page["listNotes"]["seq"].as_i64().unwrap() >= 2);
    let token = page["listNotes"]["nextToken"].as_str().expect("a second page").to_owned();
    let rest = alice
        .data(
            "query($t: String) { listNotes(limit: 10, nextToken: $t) { items { id } nextToken } }",
            json!({"t": token}),
        )
        .await;
    assert_eq!(rest["listNotes"]["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["listNotes"]["nextToken"], Value::Null);

    let update = format!(
        "mutation($input: UpdateNoteInput!, $v: Int) {{ updateNote(input: $input, expectedVersion: $v) {{ {NOTE} }} }}"
    );
    let updated =
        alice.data(&update, json!({"input": {"id": id, "body": "2 litres"}, "v": 1})).await["updateNote"].clone();
    assert_eq!((updated["body"].clone(), updated["title"].clone()), (json!("2 litres"), json!("Milk")));
    assert_eq!(updated["version"], 2);

    let stale = alice.run(&update, json!({"input": {"id": id, "title": "Oat milk"}, "v": 1})).await;
    let extensions = error_extensions(&stale);
    assert_eq!(extensions["code"], "CONFLICT");
    assert_eq!(extensions["current"]["version"], 2, "the conflict carries the current row: {stale}");

    let delete = "mutation($id: ID!) { deleteNote(input: {id: $id}, expectedVersion: 2) { id version } }";
    assert_eq!(alice.data(delete, json!({"id": id})).await["deleteNote"]["version"], 2);
    let gone = alice.data("query($id: ID!) { getNote(id: $id) { id } }", json!({"id": id})).await;
    assert_eq!(gone["getNote"], Value::Null);

    let changes = alice
        .data(
            "{ noteChangesSince(afterSeq: 0) { changes { op key version note { title } } lastSeq hasMore } }",
            json!({}),
        )
        .await;
    let ops: Vec<&str> =
        changes["noteChangesSince"]["changes"].as_array().unwrap().iter().map(|c| c["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["INSERT", "INSERT", "MODIFY", "REMOVE"]);
    assert_eq!(changes["noteChangesSince"]["hasMore"], false);

    let sdl = reqwest::get(format!("{}/schema.graphql", server.http())).await.unwrap().text().await.unwrap();
    for generated in ["getNote", "listNotes", "onCreateNote", "onNoteChanged", "noteChangesSince", "CreateTicketInput"]
    {
        assert!(sdl.contains(generated), "/schema.graphql has {generated}");
    }
}

async fn appsync_scalars_are_validated_field_by_field(backend: Backend) {
    let server = start(backend).await;
    let alice = server.client("alice");
    let create = "mutation($input: CreateTicketInput!) { createTicket(input: $input) { id email stamp meta } }";
    let bad = alice
        .run(
            create,
            json!({"input": {"subject": "x", "email": "not-an-email", "site": "no scheme", "phone": "call me",
                "due": "2026-13-45", "at": "25:00", "when": "yesterday", "meta": "{not json", "ip": "300.1.1.1"}}),
        )
        .await;
    let extensions = error_extensions(&bad);
    assert_eq!(extensions["code"], "VALIDATION");
    let mut fields: Vec<(String, String)> = extensions["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["field"].as_str().unwrap().to_owned(), f["code"].as_str().unwrap().to_owned()))
        .collect();
    fields.sort();
    let expected = [
        ("at", "INVALID_TIME"),
        ("due", "INVALID_DATE"),
        ("email", "INVALID_EMAIL"),
        ("ip", "INVALID_IP_ADDRESS"),
        ("meta", "INVALID_JSON"),
        ("phone", "INVALID_PHONE"),
        ("site", "INVALID_URL"),
        ("when", "INVALID_DATETIME"),
    ];
    assert_eq!(fields, expected.map(|(f, c)| (f.to_owned(), c.to_owned())), "{bad}");
    let none = alice.data("{ listTickets { items { id } } }", json!({})).await;
    assert_eq!(none["listTickets"]["items"], json!([]), "a refused write stores nothing");

    let good = alice
        .data(
            create,
            json!({"input": {"subject": "ok", "email": "a@example.com", "site": "https://example.com/x",
                "phone": "+1 555 555 0100", "due": "2026-11-30", "at": "12:30:00Z", "when": "2026-11-30T12:30:00Z",
                "stamp": 1_700_000_000, "meta": "{\"a\": [1]}", "ip": "10.0.0.1/8"}}),
        )
        .await;
    assert_eq!(good["createTicket"]["stamp"], 1_700_000_000);
    let missing = alice.run(create, json!({"input": {"subject": "no email", "email": null}})).await;
    assert!(missing["errors"].is_array(), "a non-null field is required: {missing}");
}

async fn auth_rules_decide_who_sees_and_writes_what(backend: Backend) {
    let server = start(backend).await;
    let (alice, bob, admin) = (server.client("alice"), server.client("bob"), server.client("admin"));
    let note = create_note(&alice, json!({"title": "Alice's", "priority": "LOW"}), None).await;
    let get = "query($id: ID!) { getNote(id: $id) { id } }";
    assert_eq!(bob.data(get, json!({"id": note["id"]})).await["getNote"], Value::Null);
    assert_eq!(bob.data("{ listNotes { items { id } } }", json!({})).await["listNotes"]["items"], json!([]));
    let steal = bob
        .run("mutation($id: ID!) { updateNote(input: {id: $id, title: \"Bob's\"}) { id } }", json!({"id": note["id"]}))
        .await;
    assert_eq!(error_extensions(&steal)["code"], "NOT_FOUND", "another owner's row is not found: {steal}");
    // Notes have only the owner rule: not even the admin group reads them.
    assert_eq!(admin.data("{ listNotes { items { id } } }", json!({})).await["listNotes"]["items"], json!([]));

    let ticket = alice
        .data("mutation { createTicket(input: {subject: \"Help\", email: \"a@example.com\"}) { id owner } }", json!({}))
        .await["createTicket"]
        .clone();
    assert_eq!(ticket["owner"], "alice");
    let list = "{ listTickets { items { id } } }";
    assert_eq!(bob.data(list, json!({})).await["listTickets"]["items"], json!([]));
    assert_eq!(admin.data(list, json!({})).await["listTickets"]["items"], json!([{"id": ticket["id"]}]));
    let api = api_key_client(&server);
    assert_eq!(api.data(list, json!({})).await["listTickets"]["items"], json!([{"id": ticket["id"]}]));
    let by_key = api
        .run("mutation { createTicket(input: {subject: \"Key\", email: \"k@example.com\"}) { id } }", json!({}))
        .await;
    assert_eq!(error_extensions(&by_key)["code"], "FORBIDDEN", "the API key may only read: {by_key}");
    let by_admin = admin
        .data(
            "mutation($id: ID!) { updateTicket(input: {id: $id, status: \"DONE\"}) { status version } }",
            json!({"id": ticket["id"]}),
        )
        .await;
    assert_eq!(by_admin["updateTicket"], json!({"status": "DONE", "version": 2}), "the admin group may update");
}

async fn a_replayed_client_mutation_id_writes_once(backend: Backend) {
    let server = start(backend).await;
    let alice = server.client("alice");
    let input = json!({"title": "Once", "priority": "LOW"});
    let first = create_note(&alice, input.clone(), Some("m-1")).await;
    let again = create_note(&alice, input, Some("m-1")).await;
    assert_eq!(first, again, "the replay returns the original result");
    let changes = alice.data("{ noteChangesSince(afterSeq: 0) { changes { seq clientMutationId } } }", json!({})).await;
    assert_eq!(changes["noteChangesSince"]["changes"].as_array().unwrap().len(), 1, "{changes}");
    assert_eq!(changes["noteChangesSince"]["changes"][0]["clientMutationId"], "m-1");
}

/// Reads `field` events until one has seq `through`, checking the prevSeq chain from `prev`; returns the seqs of
/// the changes (not the watermarks).
async fn changes_through(ws: &mut Ws, field: &str, mut prev: i64, through: i64) -> Vec<i64> {
    let mut seqs = Vec::new();
    while prev < through {
        let change = next_event(ws, field).await;
        assert_eq!(change["prevSeq"], prev, "the chain links every event to the previous one: {change}");
        prev = change["seq"].as_i64().unwrap();
        if change["op"] != "WATERMARK" {
            seqs.push(prev);
        }
    }
    seqs
}

async fn after_seq_replay_is_gapless_across_models(backend: Backend) {
    let server = start(backend).await;
    let alice = server.client("alice");
    create_note(&alice, json!({"title": "Before", "priority": "LOW"}), None).await;
    let notes_query = "subscription($a: Int) { onNoteChanged(afterSeq: $a) { seq prevSeq op note { title } } }";
    let tickets_query = "subscription($a: Int) { onTicketChanged(afterSeq: $a) { seq prevSeq op ticket { subject } } }";
    let mut notes = subscribe(&server, "alice", notes_query, json!({"a": 0})).await;
    let mut tickets = subscribe(&server, "alice", tickets_query, json!({"a": 0})).await;
    // Writes to both models at once, while both subscriptions replay and then follow.
    let writers: Vec<_> = (0..10)
        .map(|i| {
            let alice = alice.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    create_note(&alice, json!({"title": format!("Note {i}"), "priority": "HIGH"}), None).await;
                } else {
                    alice
                        .data(
                            "mutation($s: String!) { createTicket(input: {subject: $s, email: \"a@example.com\"}) { id } }",
                            json!({"s": format!("Ticket {i}")}),
                        )
                        .await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let head = alice.data("{ listNotes { seq } }", json!({})).await["listNotes"]["seq"].as_i64().unwrap();
    assert_eq!(head, 11);
    let note_seqs = changes_through(&mut notes, "onNoteChanged", 0, head).await;
    let ticket_seqs = changes_through(&mut tickets, "onTicketChanged", 0, head).await;
    assert_eq!(note_seqs.len(), 6, "the note written before and the five during: {note_seqs:?}");
    assert_eq!(ticket_seqs.len(), 5, "{ticket_seqs:?}");
    let mut all: Vec<i64> = note_seqs.into_iter().chain(ticket_seqs).collect();
    all.sort();
    assert_eq!(all, (1..=11).collect::<Vec<_>>(), "each seq reaches exactly one of the two subscribers, once");
}

async fn ttl_expiry_reaches_subscribers_as_an_expired_remove(backend: Backend) {
    // The server's clock jumps over the note's ten minutes instead of the test sleeping through it.
    let clock = Clock::adjustable();
    let server = TestServer::start_on_clock(database_for(backend).await, clock.clone(), |s| Settings {
        schema: Some(schema_file()),
        ..s
    })
    .await;
    let alice = server.client("alice");
    let query = "subscription { onNoteChanged { op key expired } }";
    let mut ws = subscribe(&server, "alice", query, json!({})).await;
    let expires_at = clock.now_secs() + 600;
    let note = create_note(&alice, json!({"title": "Brief", "priority": "LOW", "expiresAt": expires_at}), None).await;
    clock.advance(std::time::Duration::from_secs(601));
    let mut events = Vec::new();
    while events.last().is_none_or(|e: &Value| e["op"] != "REMOVE") {
        let event = next_event(&mut ws, "onNoteChanged").await;
        if event["op"] != "WATERMARK" {
            events.push(event);
        }
    }
    assert_eq!(
        events,
        [
            json!({"op": "INSERT", "key": note["id"], "expired": false}),
            json!({"op": "REMOVE", "key": note["id"], "expired": true})
        ]
    );
}

async fn declared_and_amplify_subscriptions_filter_as_appsync_does(backend: Backend) {
    let server = start(backend).await;
    let alice = server.client("alice");
    let mut created = subscribe(&server, "alice", "subscription { onCreateNote { title owner } }", json!({})).await;
    let mut done =
        subscribe(&server, "admin", "subscription { onTicketStatus(status: \"DONE\") { subject status } }", json!({}))
            .await;
    create_note(&alice, json!({"title": "Seen", "priority": "LOW"}), None).await;
    assert_eq!(next_event(&mut created, "onCreateNote").await, json!({"title": "Seen", "owner": "alice"}));

    let ticket = alice
        .data("mutation { createTicket(input: {subject: \"T\", email: \"a@example.com\"}) { id } }", json!({}))
        .await["createTicket"]["id"]
        .clone();
    let set_status = "mutation($id: ID!, $s: String) { updateTicket(input: {id: $id, status: $s}) { id } }";
    alice.data(set_status, json!({"id": ticket, "s": "OPEN"})).await;
    alice.data(set_status, json!({"id": ticket, "s": "DONE"})).await;
    // The first event is the update whose status equals the argument: neither the create nor OPEN came before it.
    assert_eq!(next_event(&mut done, "onTicketStatus").await, json!({"subject": "T", "status": "DONE"}));

    let mut updated = subscribe(&server, "alice", "subscription { onUpdateNote { title version } }", json!({})).await;
    let mut deleted = subscribe(&server, "alice", "subscription { onDeleteNote { title version } }", json!({})).await;
    // Each subscription is live once a write after its subscribe message reaches it; a create reaches neither, so
    // the first update and delete events are these.
    let note = create_note(&alice, json!({"title": "Draft", "priority": "LOW"}), None).await;
    alice
        .data("mutation($id: ID!) { updateNote(input: {id: $id, title: \"Final\"}) { id } }", json!({"id": note["id"]}))
        .await;
    alice.data("mutation($id: ID!) { deleteNote(input: {id: $id}) { id } }", json!({"id": note["id"]})).await;
    assert_eq!(next_event(&mut updated, "onUpdateNote").await, json!({"title": "Final", "version": 2}));
    assert_eq!(next_event(&mut deleted, "onDeleteNote").await, json!({"title": "Final", "version": 2}));
}

/// Subscribers asking the same thing as the same caller share one execution (`fanout.rs`), yet each gets exactly
/// its own events: from its own subscribe on, never a row it may not see, and on after another member leaves.
async fn subscribers_who_ask_the_same_share_yet_each_gets_its_own_events(backend: Backend) {
    let server = start(backend).await;
    let (alice, bob) = (server.client("alice"), server.client("bob"));
    const CREATED: &str = "subscription { onCreateNote { title } }";
    let title = |event: Value| event["title"].as_str().unwrap_or_default().to_owned();
    let mut first = subscribe(&server, "alice", CREATED, json!({})).await;
    let mut bobs = subscribe(&server, "bob", CREATED, json!({})).await;
    create_note(&alice, json!({"title": "before", "priority": "LOW"}), None).await;
    assert_eq!(title(next_event(&mut first, "onCreateNote").await), "before");

    // A second subscriber joins the running execution: it is live once a note created after its subscribe reaches
    // it, and the note created before never does.
    let mut second = subscribe(&server, "alice", CREATED, json!({})).await;
    let mut probes = Vec::new();
    let first_seen = loop {
        let probe = format!("probe {}", probes.len());
        create_note(&alice, json!({"title": probe, "priority": "LOW"}), None).await;
        probes.push(probe);
        match second.next_frame_within(std::time::Duration::from_millis(500)).await {
            Some(Frame::Json(event)) => break title(event["payload"]["data"]["onCreateNote"].clone()),
            Some(Frame::Closed(code)) => panic!("the joiner's socket closed with {code}"),
            None => continue,
        }
    };
    assert!(first_seen.starts_with("probe"), "the joiner got a note from before its subscribe: {first_seen}");
    for probe in &probes {
        assert_eq!(&title(next_event(&mut first, "onCreateNote").await), probe, "the first member misses nothing");
    }

    // One member leaving does not end the execution for the other.
    first.send(json!({"type": "complete", "id": "s"})).await;
    create_note(&alice, json!({"title": "after", "priority": "LOW"}), None).await;
    let mut rest = Vec::new();
    while rest.last().map(String::as_str) != Some("after") {
        rest.push(title(next_event(&mut second, "onCreateNote").await));
    }
    let expected: Vec<String> =
        probes.iter().skip_while(|p| **p != first_seen).skip(1).cloned().chain(["after".into()]).collect();
    assert_eq!(rest, expected, "the joiner gets every later note once, in order");

    // Bob's identical document runs as bob: none of alice's notes reached him.
    create_note(&bob, json!({"title": "bob's", "priority": "LOW"}), None).await;
    assert_eq!(title(next_event(&mut bobs, "onCreateNote").await), "bob's");
}

async fn amplify_filters_select_rows_and_events(backend: Backend) {
    let server = start(backend).await;
    let alice = server.client("alice");
    let query = "subscription { onCreateNote(filter: {priority: {eq: HIGH}}) { title } }";
    let mut high = subscribe(&server, "alice", query, json!({})).await;
    for (title, priority) in [("Apples", "LOW"), ("Bananas", "HIGH"), ("Avocados", "HIGH")] {
        create_note(&alice, json!({"title": title, "priority": priority}), None).await;
    }
    let list = "query($f: ModelNoteFilterInput) { listNotes(filter: $f) { items { title } } }";
    let titles = |data: Value| -> Vec<String> {
        data["listNotes"]["items"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap().to_owned()).collect()
    };
    let filter = json!({"title": {"beginsWith": "A"}, "not": {"priority": {"eq": "LOW"}}});
    assert_eq!(titles(alice.data(list, json!({"f": filter})).await), ["Avocados"]);
    let either = json!({"or": [{"title": {"eq": "Apples"}}, {"version": {"gt": 1}}]});
    assert_eq!(titles(alice.data(list, json!({"f": either})).await), ["Apples"]);
    assert_eq!(next_event(&mut high, "onCreateNote").await, json!({"title": "Bananas"}), "LOW was filtered out");
    assert_eq!(next_event(&mut high, "onCreateNote").await, json!({"title": "Avocados"}));
}

async fn the_notes_example_serves_as_shipped(backend: Backend) {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/notes/schema.graphql");
    let server = TestServer::start_with(backend, |s| Settings { schema: Some(example), ..s }).await;
    let (alice, bob) = (server.client("alice"), server.client("bob"));
    let mut shared =
        subscribe(&server, "bob", "subscription { onNoteShared(owner: \"alice\") { title owner } }", json!({})).await;
    let note = alice
        .data(
            "mutation { createNote(input: {title: \"Plan\", color: BLUE, checklist: [{text: \"a\", done: false}]}) { id } }",
            json!({}),
        )
        .await["createNote"]["id"]
        .clone();
    assert_eq!(next_event(&mut shared, "onNoteShared").await, json!({"title": "Plan", "owner": "alice"}));
    // Everyone signed in reads it; only its owner edits it.
    let read =
        bob.data("query($id: ID!) { getNote(id: $id) { title checklist { text done } } }", json!({"id": note})).await;
    assert_eq!(read["getNote"], json!({"title": "Plan", "checklist": [{"text": "a", "done": false}]}));
    let edit = bob
        .run("mutation($id: ID!) { updateNote(input: {id: $id, title: \"Mine\"}) { id } }", json!({"id": note}))
        .await;
    assert_eq!(error_extensions(&edit)["code"], "NOT_FOUND", "{edit}");
}

on_both_backends!(
    subscribers_who_ask_the_same_share_yet_each_gets_its_own_events,
    amplify_filters_select_rows_and_events,
    the_notes_example_serves_as_shipped,
    every_generated_operation_works,
    appsync_scalars_are_validated_field_by_field,
    auth_rules_decide_who_sees_and_writes_what,
    a_replayed_client_mutation_id_writes_once,
    after_seq_replay_is_gapless_across_models,
    ttl_expiry_reaches_subscribers_as_an_expired_remove,
    declared_and_amplify_subscriptions_filter_as_appsync_does,
);
