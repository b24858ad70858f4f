//! GraphQL over HTTP on `/graphql`, as the GraphQL-over-HTTP spec says: `POST` with an `application/json` body runs
//! any operation; `GET` with `query`, `variables`, `operationName` parameters runs queries (a mutation gets 405); a
//! browser asking for HTML without a query gets GraphiQL. The response's media type follows `Accept`:
//! `application/graphql-response+json` when the client accepts it by name (then a request that fails before it
//! runs — unparseable, invalid, refused by the document limits — is a 400 without `data`), else `application/json`
//! (always 200 for a well-formed request, as legacy clients expect). A request accepting neither gets 406; a body
//! without `query` or with bad JSON, 400.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::OperationType;
use async_graphql::{Request as GqlRequest, Response as GqlResponse, Variables};
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{json, Value};
use subsignal_protocol::change::error_code;

use crate::AppState;

/// The media type of the GraphQL-over-HTTP spec.
pub(crate) const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// What a response is encoded as, by the request's `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    /// `application/graphql-response+json`, named by the client: request errors are 4xx.
    GraphqlResponse,
    /// `application/json`: every well-formed request gets 200.
    Json,
}

impl Media {
    /// The media type `accept` asks for: the spec's own only when named (a bare `*/*` keeps legacy clients on
    /// `application/json`), `None` when it accepts neither.
    fn negotiate(accept: Option<&str>) -> Option<Media> {
        let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else { return Some(Media::Json) };
        let ranges: Vec<&str> = accept
            .split(',')
            .filter(|range| !range.contains("q=0") || range.contains("q=0."))
            .map(|range| range.split(';').next().unwrap_or_default().trim())
            .collect();
        if ranges.iter().any(|r| r.eq_ignore_ascii_case(GRAPHQL_RESPONSE)) {
            Some(Media::GraphqlResponse)
        } else if ranges.iter().any(|r| matches!(r.to_ascii_lowercase().as_str(), JSON | "application/*" | "*/*")) {
            Some(Media::Json)
        } else {
            None
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Media::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Media::Json => "application/json; charset=utf-8",
        })
    }
}

fn accept(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
}

/// A response that is a request error: `errors` only, with `status` under `application/graphql-response+json` and
/// 200 under `application/json` (but 4xx for what is not a GraphQL request at all, `always`).
fn request_error(media: Media, status: StatusCode, always: bool, message: &str, code: &str) -> Response {
    let body = json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    let status = if always || media == Media::GraphqlResponse { status } else { StatusCode::OK };
    (status, [(header::CONTENT_TYPE, media.content_type())], body.to_string()).into_response()
}

fn not_acceptable() -> Response {
    let message = format!("This endpoint answers {GRAPHQL_RESPONSE} or {JSON}; the request's Accept allows neither.");
    (StatusCode::NOT_ACCEPTABLE, message).into_response()
}

/// Set once a request's operation starts to run: a request without it failed before (parse, validation, limits).
#[derive(Debug, Clone, Default)]
struct Executed(Arc<AtomicBool>);

/// The schema extension that sets a request's [`Executed`], so that a 400 is told from a field error exactly.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MarksExecution;

impl async_graphql::extensions::ExtensionFactory for MarksExecution {
    fn create(&self) -> Arc<dyn async_graphql::extensions::Extension> {
        Arc::new(MarksExecution)
    }
}

#[async_trait::async_trait]
impl async_graphql::extensions::Extension for MarksExecution {
    async fn execute(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: async_graphql::extensions::NextExecute<'_>,
    ) -> GqlResponse {
        if let Some(executed) = ctx.data_opt::<Executed>() {
            executed.0.store(true, Ordering::Relaxed);
        }
        next.run(ctx, operation_name).await
    }
}

/// Runs `request` for the caller its headers name, and encodes the result as `media` asks.
async fn execute(app: &AppState, headers: &HeaderMap, media: Media, mut request: GqlRequest) -> Response {
    match app.auth.from_headers(headers).await {
        Ok(Some(identity)) => request = request.data(identity),
        Ok(None) => {}
        Err(e) => {
            return request_error(media, StatusCode::UNAUTHORIZED, true, &e.to_string(), error_code::UNAUTHENTICATED)
        }
    }
    let executed = Executed::default();
    let response = app.schema.execute(request.data(executed.clone())).await;
    let (status, body) = if media == Media::GraphqlResponse && !executed.0.load(Ordering::Relaxed) {
        (StatusCode::BAD_REQUEST, json!({"errors": response.errors}))
    } else {
        (StatusCode::OK, serde_json::to_value(&response).unwrap_or_default())
    };
    (status, [(header::CONTENT_TYPE, media.content_type())], body.to_string()).into_response()
}

/// The parts of a GraphQL request, as a POST body or GET parameters give them.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Params {
    query: Option<String>,
    #[serde(default)]
    variables: Option<Value>,
    #[serde(default)]
    operation_name: Option<String>,
}

impl Params {
    /// The request, or why it is not one (a 400).
    fn into_request(self) -> Result<GqlRequest, &'static str> {
        let Some(query) = self.query.filter(|q| !q.trim().is_empty()) else {
            return Err("The request has no `query`.");
        };
        let variables = match self.variables {
            None | Some(Value::Null) => Variables::default(),
            Some(v @ Value::Object(_)) => Variables::from_json(v),
            Some(_) => return Err("`variables` must be an object."),
        };
        let mut request = GqlRequest::new(query).variables(variables);
        if let Some(name) = self.operation_name {
            request = request.operation_name(name);
        }
        Ok(request)
    }
}

/// `POST /graphql`: any operation, from an `application/json` body.
pub(crate) async fn post(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(media) = Media::negotiate(accept(&headers)) else { return not_acceptable() };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case(JSON) {
        let message = "Send the request as application/json: {\"query\": ..., \"variables\": {...}}.";
        return request_error(media, StatusCode::UNSUPPORTED_MEDIA_TYPE, true, message, error_code::BAD_REQUEST);
    }
    let params: Params = match serde_json::from_slice(&body) {
        Ok(params) => params,
        Err(e) => {
            let message = format!("The body is not a GraphQL request in JSON: {e}");
            return request_error(media, StatusCode::BAD_REQUEST, true, &message, error_code::BAD_REQUEST);
        }
    };
    match params.into_request() {
        Ok(request) => execute(&app, &headers, media, request).await,
        Err(why) => request_error(media, StatusCode::BAD_REQUEST, true, why, error_code::BAD_REQUEST),
    }
}

/// The type of the operation `request` would run, if its document parses and names one.
pub(crate) fn operation_type(query: &str, operation_name: Option<&str>) -> Option<OperationType> {
    operation_type_in(&async_graphql::parser::parse_query(query).ok()?, operation_name)
}

/// The type of the operation a parsed document runs for `operation_name`, if it names one.
pub(crate) fn operation_type_in(
    document: &async_graphql::parser::types::ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<OperationType> {
    let operation = match operation_name {
        Some(name) => document.operations.iter().find(|(n, _)| n.is_some_and(|n| n.as_str() == name))?.1,
        None => document.operations.iter().next()?.1,
    };
    Some(operation.node.ty)
}

/// `GET /graphql` without a WebSocket upgrade: a query from the URL's parameters, or GraphiQL for a browser.
pub(crate) async fn get(State(app): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    let Query(mut raw) = match Query::<HashMap<String, String>>::try_from_uri(request.uri()) {
        Ok(query) => query,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let wants_html = accept(&headers).is_some_and(|a| a.contains("text/html"));
    if wants_html && !raw.contains_key("query") {
        return Html(GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql").finish())
            .into_response();
    }
    let Some(media) = Media::negotiate(accept(&headers)) else { return not_acceptable() };
    let variables = match raw.remove("variables").map(|v| serde_json::from_str::<Value>(&v)) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            let message = format!("`variables` is not JSON: {e}");
            return request_error(media, StatusCode::BAD_REQUEST, true, &message, error_code::BAD_REQUEST);
        }
    };
    let params = Params { query: raw.remove("query"), variables, operation_name: raw.remove("operationName") };
    if let Some(query) = &params.query {
        if let Some(ty @ (OperationType::Mutation | OperationType::Subscription)) =
            operation_type(query, params.operation_name.as_deref())
        {
            let message = format!("A {ty} cannot run over GET; POST it.");
            let mut refused =
                request_error(media, StatusCode::METHOD_NOT_ALLOWED, true, &message, error_code::BAD_REQUEST);
            refused.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            return refused;
        }
    }
    match params.into_request() {
        Ok(request) => execute(&app, &headers, media, request).await,
        Err(why) => request_error(media, StatusCode::BAD_REQUEST, true, why, error_code::BAD_REQUEST),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_chooses_the_spec_media_type_only_when_named() {
        assert_eq!(Media::negotiate(None), Some(Media::Json));
        assert_eq!(Media::negotiate(Some("*/*")), Some(Media::Json));
        assert_eq!(Media::negotiate(Some("application/json")), Some(Media::Json));
        assert_eq!(
            Media::negotiate(Some("application/graphql-response+json, application/json;q=0.9")),
            Some(Media::GraphqlResponse)
        );
        assert_eq!(Media::negotiate(Some("text/plain")), None);
        assert_eq!(Media::negotiate(Some("application/json;q=0, text/plain")), None);
    }

    #[test]
    fn the_operation_type_comes_from_the_named_operation() {
        let doc = "query A { a } mutation B { b }";
        assert_eq!(operation_type(doc, Some("B")), Some(OperationType::Mutation));
        assert_eq!(operation_type(doc, Some("A")), Some(OperationType::Query));
        assert_eq!(operation_type("{ a }", None), Some(OperationType::Query));
        assert_eq!(operation_type("{ a", None), None);
    }
}
