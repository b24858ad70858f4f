use serde_json::json;
use subsignal_tests::{sample_input, Backend, TestServer, ORDER_FIELDS};

async fn create_read_page_edit_and_cancel(backend: Backend) {
    let t = TestServer::start(backend).await;
    let alice = t.client("alice");
    let order = alice.create_order("Ada", None).await;
    assert_eq!(order["owner"], "alice");
    assert_eq!(order["status"], "SUBMITTED");
    assert_eq!(order["version"], 1);
    assert_eq!(order["totalCents"], 900);
    let id = order["id"].as_str().unwrap().to_owned();

    let got =
        alice.data(&format!("query($id: ID!) {{ getOrder(id: $id) {{ {ORDER_FIELDS} }} }}"), json!({"id": id})).await;
    assert_eq!(got["getOrder"]["customerName"], "Ada");

    for i in 0..4 {
        alice.create_order(&format!("More {i}"), None).await;
    }
    let mut seen = Vec::new();
    let mut token = serde_json::Value::Null;
    loop {
        let page = alice
            .data(
                "query($t: String) { listOrders(limit: 2, nextToken: $t) { items { id } nextToken seq } }",
                json!({"t": token}),
            )
            .await;
        let list = &page["listOrders"];
        assert!(list["seq"].as_i64().unwrap() >= 5);
        seen.extend(list["items"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()));
        token = list["nextToken"].clone();
        if token.is_null() {
            break;
        }
    }
    assert!(seen.len() >= 5, "paging returned every order: {seen:?}");
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "no order twice across pages");

    // The worker may have advanced the order already; read its current version first.
    let current = alice.data("query($id: ID!) { getOrder(id: $id) { version status } }", json!({"id": id})).await;
    let version = current["getOrder"]["version"].as_i64().unwrap();
    let edited = alice
        .run(
            "mutation($id: ID!, $v: Int!) { updateOrder(input: {id: $id, customerName: \"Ada L.\"}, expectedVersion: $v) { customerName version } }",
            json!({"id": id, "v": version}),
        )
        .await;
    if edited.get("errors").is_none() {
        assert_eq!(edited["data"]["updateOrder"]["customerName"], "Ada L.");
        assert_eq!(edited["data"]["updateOrder"]["version"], version + 1);
    } else {
        assert_eq!(edited["errors"][0]["extensions"]["code"], "CONFLICT", "{edited}");
    }
}

async fn validation_errors_name_each_field(backend: Backend) {
    let t = TestServer::start(backend).await;
    let alice = t.client("alice");
    let body = alice
        .run(
            "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }",
            json!({"input": {"customerName": "x".repeat(101), "email": "not-an-email", "items": [{"sku": "tea", "quantity": 0, "unitPriceCents": 100}]}}),
        )
        .await;
    let ext = &body["errors"][0]["extensions"];
    assert_eq!(ext["code"], "VALIDATION", "{body}");
    let fields: Vec<&str> = ext["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["customerName", "email", "items[0].quantity"]);
    assert_eq!(ext["fields"][1]["code"], "INVALID_EMAIL");
    assert!(ext["fields"][1]["message"].as_str().unwrap().contains("not-an-email"));

    let empty = alice
        .run(
            "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }",
            json!({"input": {"customerName": "Ada", "email": "a@b.co", "items": []}}),
        )
        .await;
    assert_eq!(empty["errors"][0]["extensions"]["fields"][0]["field"], "items");

    // Nothing was written.
    let list = alice.data("{ listOrders { items { id } seq } }", json!({})).await;
    assert_eq!(list["listOrders"]["items"].as_array().unwrap().len(), 0);
    assert_eq!(list["listOrders"]["seq"], 0);
}

async fn stale_version_is_a_conflict_carrying_the_current_order(backend: Backend) {
    let t =
        TestServer::start_with(backend, |s| subsignal_server::config::Settings { step_delay_ms: Some(60_000), ..s })
            .await;
    let alice = t.client("alice");
    let order = alice.create_order("Ada", None).await;
    let id = order["id"].as_str().unwrap();
    let update = "mutation($id: ID!, $v: Int!, $n: String) { updateOrder(input: {id: $id, customerName: $n}, expectedVersion: $v) { version } }";
    alice.data(update, json!({"id": id, "v": 1, "n": "First"})).await;
    let body = alice.run(update, json!({"id": id, "v": 1, "n": "Second"})).await;
    let ext = &body["errors"][0]["extensions"];
    assert_eq!(ext["code"], "CONFLICT", "{body}");
    assert_eq!(ext["current"]["version"], 2);
    assert_eq!(ext["current"]["customerName"], "First");

    // Every update path carries the current row: cancelOrder, and deleteOrder (admins).
    let cancel = "mutation($id: ID!, $v: Int!) { cancelOrder(id: $id, expectedVersion: $v) { version } }";
    let body = alice.run(cancel, json!({"id": id, "v": 1})).await;
    let ext = &body["errors"][0]["extensions"];
    assert_eq!((ext["code"].clone(), ext["current"]["version"].clone()), (json!("CONFLICT"), json!(2)), "{body}");
    let admin = t.client("admin");
    let delete = "mutation($id: ID!, $v: Int) { deleteOrder(input: {id: $id}, expectedVersion: $v) { version } }";
    let body = admin.run(delete, json!({"id": id, "v": 1})).await;
    let ext = &body["errors"][0]["extensions"];
    assert_eq!((ext["code"].clone(), ext["current"]["customerName"].clone()), (json!("CONFLICT"), json!("First")));
    admin.data(delete, json!({"id": id, "v": 2})).await;

    // Deleted since the caller read it: CONFLICT with no current row, on every path; NOT_FOUND without a version.
    for (who, document, variables) in [
        (&alice, update, json!({"id": id, "v": 2, "n": "Late"})),
        (&alice, cancel, json!({"id": id, "v": 2})),
        (&admin, delete, json!({"id": id, "v": 2})),
    ] {
        let body = who.run(document, variables).await;
        let ext = &body["errors"][0]["extensions"];
        assert_eq!(ext["code"], "CONFLICT", "{body}");
        assert!(ext.get("current").is_some_and(serde_json::Value::is_null), "theirs is null: {body}");
    }
    let unversioned = "mutation($id: ID!) { updateOrder(input: {id: $id, customerName: \"Late\"}) { version } }";
    let body = alice.run(unversioned, json!({"id": id})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND", "{body}");

    // Another owner's order answers as a deleted one, so ids leak nothing.
    let other = t.client("bob").create_order("Bob", None).await;
    let body = alice.run(cancel, json!({"id": other["id"], "v": 1})).await;
    assert_eq!(body["errors"][0]["extensions"], json!({"code": "CONFLICT", "current": null}), "{body}");
}

async fn replayed_client_mutation_id_returns_the_original_and_writes_once(backend: Backend) {
    let t =
        TestServer::start_with(backend, |s| subsignal_server::config::Settings { step_delay_ms: Some(60_000), ..s })
            .await;
    let alice = t.client("alice");
    let first = alice.create_order("Ada", Some("m-1")).await;
    let second = alice.create_order("Ada again", Some("m-1")).await;
    assert_eq!(first, second);
    let changes = alice.data("{ orderChangesSince(afterSeq: 0) { changes { seq key } lastSeq } }", json!({})).await;
    assert_eq!(changes["orderChangesSince"]["changes"].as_array().unwrap().len(), 1);
    let list = alice.data("{ listOrders { items { id } } }", json!({})).await;
    assert_eq!(list["listOrders"]["items"].as_array().unwrap().len(), 1);
    // The same id from another user is another mutation.
    let bob = t.client("bob").create_order("Bob", Some("m-1")).await;
    assert_ne!(bob["id"], first["id"]);
}

async fn owners_are_isolated_over_http(backend: Backend) {
    let t = TestServer::start(backend).await;
    let a = t.client("alice").create_order("Ada", None).await;
    let bob = t.client("bob");
    let got = bob.data("query($id: ID!) { getOrder(id: $id) { id } }", json!({"id": a["id"]})).await;
    assert!(got["getOrder"].is_null());
    let list = bob.data("{ listOrders { items { id } } }", json!({})).await;
    assert_eq!(list["listOrders"]["items"].as_array().unwrap().len(), 0);
    // With a version, another owner's order answers as a deleted one: CONFLICT, no current row.
    let cancel =
        bob.run("mutation($id: ID!) { cancelOrder(id: $id, expectedVersion: 1) { id } }", json!({"id": a["id"]})).await;
    assert_eq!(cancel["errors"][0]["extensions"]["code"], "CONFLICT");
    assert!(cancel["errors"][0]["extensions"]["current"].is_null());
    let admin = t.client("admin").data("{ listOrders { items { owner } } }", json!({})).await;
    assert_eq!(admin["listOrders"]["items"][0]["owner"], "alice");
    // The owner in input is not even accepted: identity decides.
    let forged = bob
        .run(
            "mutation($input: CreateOrderInput!) { createOrder(input: $input) { owner } }",
            json!({"input": {"owner": "alice", "customerName": "x", "email": "a@b.co", "items": []}}),
        )
        .await;
    assert!(forged["errors"].is_array());
}

async fn anonymous_and_forged_callers_are_refused(backend: Backend) {
    let t = TestServer::start(backend).await;
    let anon = subsignal_tests::Gql { url: format!("{}/graphql", t.http()), auth: None };
    let body = anon.run("{ listOrders { items { id } } }", json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let forged =
        subsignal_tests::Gql { url: anon.url.clone(), auth: Some(("authorization", "Bearer abc.def.ghi".into())) };
    let body = forged.run("{ listOrders { items { id } } }", json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let key = subsignal_tests::Gql { url: anon.url.clone(), auth: Some(("x-api-key", "test-api-key-123".into())) };
    let created = key
        .data(
            "mutation($input: CreateOrderInput!) { createOrder(input: $input) { owner } }",
            json!({"input": sample_input("Svc")}),
        )
        .await;
    assert_eq!(created["createOrder"]["owner"], "apikey:backend");
}

async fn schema_graphiql_and_health_are_served(backend: Backend) {
    let t = TestServer::start(backend).await;
    let sdl = reqwest::get(format!("{}/schema.graphql", t.http())).await.unwrap().text().await.unwrap();
    for needle in [
        "onOrderChanged(afterSeq: Int): OrderChange!",
        "scalar AWSEmail",
        "enum OrderStatus",
        "orderChangesSince",
        "type Query",
        "type Mutation",
        "type Subscription",
    ] {
        assert!(sdl.contains(needle), "SDL lacks {needle}:\n{sdl}");
    }
    let browser = reqwest::Client::new().get(format!("{}/graphql", t.http())).header("accept", "text/html,*/*;q=0.8");
    let page = browser.send().await.unwrap().text().await.unwrap();
    assert!(page.to_lowercase().contains("graphiql"));
    let root = reqwest::get(format!("{}/", t.http())).await.unwrap();
    assert_eq!(root.status(), 404);
    assert!(root.text().await.unwrap().contains("not built"));
}

/// The order rules hold at the API: a SHIPPED order cannot be cancelled, even with its current version, and the
/// refusal names the field and writes nothing.
async fn a_shipped_order_cannot_be_cancelled(backend: Backend) {
    let t = TestServer::start(backend).await;
    let alice = t.client("alice");
    let id = alice.create_order("Ada", None).await["id"].clone();
    let read = || alice.data("query($id: ID!) { getOrder(id: $id) { status version } }", json!({"id": id}));
    let shipped = loop {
        let order = read().await["getOrder"].clone();
        if order["status"] == "SHIPPED" {
            break order;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let refused = alice
        .run(
            "mutation($id: ID!, $v: Int!) { cancelOrder(id: $id, expectedVersion: $v) { status } }",
            json!({"id": id, "v": shipped["version"]}),
        )
        .await;
    let error = &refused["errors"][0]["extensions"];
    assert_eq!(error["code"], "VALIDATION", "{refused}");
    assert_eq!(error["fields"][0]["field"], "status");
    assert_eq!(error["fields"][0]["code"], "INVALID_TRANSITION");
    assert_eq!(read().await["getOrder"], shipped, "nothing was written");
}

subsignal_tests::on_both_backends!(
    create_read_page_edit_and_cancel,
    a_shipped_order_cannot_be_cancelled,
    validation_errors_name_each_field,
    stale_version_is_a_conflict_carrying_the_current_order,
    replayed_client_mutation_id_returns_the_original_and_writes_once,
    owners_are_isolated_over_http,
    anonymous_and_forged_callers_are_refused,
    schema_graphiql_and_health_are_served,
);

/// The web app's files: a precompressed copy served as it is to a browser that takes it, any other file gzipped on
/// the way out, hashed assets cached for a year, `index.html` revalidated (and answered 304 when unchanged); the
/// GraphQL answers are gzipped too.
#[tokio::test]
async fn the_web_app_is_served_compressed_and_cacheable() {
    let web = tempfile::tempdir().unwrap();
    let index = format!("<!doctype html><title>app</title>{}", "<p>padding</p>".repeat(20));
    std::fs::write(web.path().join("index.html"), &index).unwrap();
    let wasm = vec![7u8; 4096];
    std::fs::write(web.path().join("app-0123456789abcdef_bg.wasm"), &wasm).unwrap();
    std::fs::write(web.path().join("app-0123456789abcdef_bg.wasm.br"), b"brotli bytes").unwrap();
    let dir = web.path().to_owned();
    let t = TestServer::start_with(Backend::Sqlite, |s| subsignal_server::config::Settings { web_dir: Some(dir), ..s })
        .await;
    let client = reqwest::Client::new();
    let get = |path: &str, encodings: &str| {
        client.get(format!("{}{path}", t.http())).header("accept-encoding", encodings).send()
    };

    let wasm_br = get("/app-0123456789abcdef_bg.wasm", "gzip, deflate, br").await.unwrap();
    assert_eq!(wasm_br.headers()["content-encoding"], "br");
    assert_eq!(wasm_br.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(wasm_br.bytes().await.unwrap().as_ref(), b"brotli bytes", "the precompressed copy, as it is");

    let wasm_gz = get("/app-0123456789abcdef_bg.wasm", "gzip").await.unwrap();
    assert_eq!(wasm_gz.headers()["content-encoding"], "gzip", "no .gz copy: gzipped on the way out");
    assert!(wasm_gz.bytes().await.unwrap().len() < wasm.len() / 10);

    let plain = get("/app-0123456789abcdef_bg.wasm", "identity").await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.bytes().await.unwrap().as_ref(), &wasm[..]);

    let page = get("/", "identity").await.unwrap();
    assert_eq!(page.headers()["cache-control"], "no-cache");
    let modified = page.headers()["last-modified"].clone();
    assert_eq!(page.text().await.unwrap(), index);
    let again =
        client.get(format!("{}/index.html", t.http())).header("if-modified-since", modified).send().await.unwrap();
    assert_eq!(again.status(), 304, "an unchanged index.html is not sent again");
    let deep = get("/orders/123", "identity").await.unwrap();
    assert_eq!(deep.text().await.unwrap(), index, "an unknown path is the app");

    let list = client
        .post(format!("{}/graphql", t.http()))
        .header("accept-encoding", "gzip")
        .bearer_auth(t.token("alice"))
        .json(&json!({"query": "{ listOrders { items { id customerName email status } seq } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    assert_eq!(list.headers()["content-encoding"], "gzip");
}
