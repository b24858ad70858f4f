//! GraphQL over HTTP as the spec (graphql.github.io/graphql-over-http) says: content negotiation by `Accept`, 400
//! without `data` for a request that fails before it runs (under `application/graphql-response+json`), 400 for a
//! body without `query`, 406, 415, queries over GET and 405 for a mutation over GET, GraphiQL for a browser.

use reqwest::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use subsignal_tests::{on_both_backends, Backend, TestServer};

const SPEC: &str = "application/graphql-response+json";

async fn post(t: &TestServer, accept: Option<&str>, body: Value) -> (StatusCode, String, Value) {
    let mut request = Client::new()
        .post(format!("{}/graphql", t.http()))
        .header("authorization", format!("Bearer {}", t.token("alice")))
        .json(&body);
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let media = response.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
    (status, media, response.json().await.unwrap_or(Value::Null))
}

async fn negotiates_the_response_media_type(backend: Backend) {
    let t = TestServer::start(backend).await;
    let query = json!({"query": "{ listOrders { seq } }"});
    let (status, media, body) = post(&t, Some("application/json"), query.clone()).await;
    assert_eq!((status, media.starts_with("application/json")), (StatusCode::OK, true), "{media}");
    assert_eq!(body["data"]["listOrders"]["seq"], 0);
    let (status, media, _) = post(&t, Some(&format!("{SPEC}, application/json;q=0.9")), query.clone()).await;
    assert_eq!((status, media.starts_with(SPEC)), (StatusCode::OK, true), "{media}");
    let (_, media, _) = post(&t, None, query.clone()).await;
    assert!(media.starts_with("application/json"), "no Accept is application/json: {media}");
    let refused = Client::new()
        .post(format!("{}/graphql", t.http()))
        .header(ACCEPT, "text/plain")
        .json(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_ACCEPTABLE);
}

async fn request_errors_are_400_without_data_under_the_spec_media_type(backend: Backend) {
    let t = TestServer::start(backend).await;
    for document in ["{ listOrders { seq ", "{ noSuchField }"] {
        let (status, _, body) = post(&t, Some(SPEC), json!({"query": document})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{document}: {body}");
        assert!(body.get("data").is_none() && body["errors"].is_array(), "{document}: {body}");
        let (status, _, body) = post(&t, Some("application/json"), json!({"query": document})).await;
        assert_eq!(status, StatusCode::OK, "legacy clients get 200: {body}");
    }
    // A field error is not a request error: 200 with data.
    let (status, _, body) = post(&t, Some(SPEC), json!({"query": "{ listOrders(limit: 0) { seq } }"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("data").is_some() && body["errors"][0]["extensions"]["code"] == "VALIDATION", "{body}");
    for accept in [SPEC, "application/json"] {
        let (status, _, body) = post(&t, Some(accept), json!({"variables": {}})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "a missing query is 400 for {accept}: {body}");
    }
    let wrong_type = Client::new()
        .post(format!("{}/graphql", t.http()))
        .header(CONTENT_TYPE, "text/plain")
        .body("{ listOrders { seq } }")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

async fn get_runs_queries_refuses_mutations_and_serves_graphiql_to_browsers(backend: Backend) {
    let t = TestServer::start(backend).await;
    let get = |params: &[(&str, &str)], accept: &str| {
        Client::new()
            .get(format!("{}/graphql", t.http()))
            .query(params)
            .header(ACCEPT, accept)
            .header("authorization", format!("Bearer {}", t.token("alice")))
            .send()
    };
    let ran = get(&[("query", "query($l: Int) { listOrders(limit: $l) { seq } }"), ("variables", "{\"l\": 5}")], SPEC)
        .await
        .unwrap();
    assert_eq!(ran.status(), StatusCode::OK);
    assert_eq!(ran.json::<Value>().await.unwrap()["data"]["listOrders"]["seq"], 0);
    let mutation = "mutation { cancelOrder(id: \"x\", expectedVersion: 1) { id } }";
    let refused = get(&[("query", mutation)], SPEC).await.unwrap();
    assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(refused.headers()[ALLOW].to_str().unwrap().contains("POST"));
    let nothing_written = t.client("alice").data("{ listOrders { seq } }", json!({})).await;
    assert_eq!(nothing_written["listOrders"]["seq"], 0);
    let page = get(&[], "text/html,application/xhtml+xml,*/*;q=0.8").await.unwrap().text().await.unwrap();
    assert!(page.to_lowercase().contains("graphiql"));
    assert_eq!(get(&[], "application/json").await.unwrap().status(), StatusCode::BAD_REQUEST, "no query, no page");
}

on_both_backends!(
    negotiates_the_response_media_type,
    request_errors_are_400_without_data_under_the_spec_media_type,
    get_runs_queries_refuses_mutations_and_serves_graphiql_to_browsers,
);
