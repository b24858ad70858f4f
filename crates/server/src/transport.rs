//! Transports: GraphQL over HTTP (`POST /graphql`), GraphiQL (`GET /graphql`), and graphql-transport-ws on the same
//! path (a WebSocket upgrade of `GET /graphql`), implemented here to the letter of the protocol: ordering, close
//! codes and limits.

use std::collections::HashMap;

use async_graphql::http::GraphiQLSource;
use async_graphql::Variables;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{FromRequestParts, Request, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use futures_util::{SinkExt, StreamExt};
use subsignal_protocol::transport_ws::{ClientMessage, CloseCode, ServerMessage, SubscribePayload, SUBPROTOCOL};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::auth::Identity;
use crate::AppState;

/// `POST /graphql`.
pub(crate) async fn graphql_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    request: async_graphql_axum::GraphQLRequest,
) -> Response {
    let mut request = request.into_inner();
    match app.auth.from_headers(&headers) {
        Ok(Some(identity)) => request = request.data(identity),
        Ok(None) => {}
        Err(e) => {
            let body =
                serde_json::json!({"errors": [{"message": e.to_string(), "extensions": {"code": "UNAUTHENTICATED"}}]});
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
    }
    async_graphql_axum::GraphQLResponse::from(app.schema.execute(request).await).into_response()
}

/// `GET /graphql`: a WebSocket upgrade, or GraphiQL for people.
pub(crate) async fn graphql_get(State(app): State<AppState>, request: Request) -> Response {
    let wants_ws = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !wants_ws {
        return Html(GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql").finish())
            .into_response();
    }
    if !app.config.allowed_origins.is_empty() {
        let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !app.config.allowed_origins.iter().any(|o| o == origin) {
            return (StatusCode::FORBIDDEN, "Origin not allowed").into_response();
        }
    }
    let (mut parts, _) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &app).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let limit = app.config.max_message_bytes;
    let upgrade = upgrade.protocols([SUBPROTOCOL]).max_message_size(limit).max_frame_size(limit);
    let negotiated = upgrade.selected_protocol().is_some();
    upgrade.on_upgrade(move |socket| async move {
        if negotiated {
            Connection::new(app).run(socket).await;
        } else {
            close(socket, CloseCode::SubprotocolNotAcceptable, "Subprotocol not acceptable; use graphql-transport-ws")
                .await;
        }
    })
}

/// A close frame; the reason is cut to the 123 bytes a close frame can carry.
fn close_frame(code: CloseCode, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame { code: code.code(), reason: reason[..end].into() }))
}

async fn close(mut socket: WebSocket, code: CloseCode, reason: &str) {
    let _ = socket.send(close_frame(code, reason)).await;
}

enum Outgoing {
    Frame(ServerMessage),
    Finished { id: String, generation: u64 },
}

struct Connection {
    app: AppState,
    init_seen: bool,
    acked: bool,
    identity: Option<Identity>,
    operations: HashMap<String, (u64, AbortHandle)>,
    generation: u64,
}

enum Step {
    Continue,
    Send(ServerMessage),
    Close(CloseCode, String),
}

impl Connection {
    fn new(app: AppState) -> Self {
        Connection { app, init_seen: false, acked: false, identity: None, operations: HashMap::new(), generation: 0 }
    }

    async fn run(mut self, socket: WebSocket) {
        let (mut sink, mut stream) = socket.split();
        let (out_tx, mut out_rx) = mpsc::channel::<Outgoing>(256);
        let init_deadline = tokio::time::sleep(self.app.config.ws_init_timeout);
        tokio::pin!(init_deadline);
        let mut shutdown = self.app.shutdown.clone();
        let close_with = loop {
            let step = tokio::select! {
                _ = &mut init_deadline, if !self.init_seen => {
                    Step::Close(CloseCode::ConnectionInitTimeout, "Connection initialisation timeout".into())
                }
                _ = shutdown.changed() => Step::Close(CloseCode::GoingAway, "Server is shutting down".into()),
                incoming = stream.next() => match incoming {
                    None => break None,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "websocket read failed");
                        let text = e.to_string();
                        if text.contains("too long") || text.contains("Space limit") || text.contains("size") {
                            Step::Close(CloseCode::MessageTooBig, "Message too big".into())
                        } else {
                            break None;
                        }
                    }
                    Some(Ok(Message::Text(text))) => self.handle(text.as_str(), &out_tx).await,
                    Some(Ok(Message::Binary(_))) => Step::Close(CloseCode::BadRequest, "Binary messages are not accepted".into()),
                    Some(Ok(Message::Close(_))) => break None,
                    Some(Ok(_)) => Step::Continue,
                },
                Some(out) = out_rx.recv() => match out {
                    Outgoing::Frame(message) => Step::Send(message),
                    Outgoing::Finished { id, generation } => {
                        if self.operations.get(&id).is_some_and(|(g, _)| *g == generation) {
                            self.operations.remove(&id);
                        }
                        Step::Continue
                    }
                },
            };
            match step {
                Step::Continue => {}
                Step::Send(message) => {
                    let text = serde_json::to_string(&message).unwrap_or_default();
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break None;
                    }
                }
                Step::Close(code, reason) => break Some((code, reason)),
            }
        };
        for (_, (_, handle)) in self.operations.drain() {
            handle.abort();
        }
        if let Some((code, reason)) = close_with {
            let _ = sink.send(close_frame(code, &reason)).await;
        }
    }

    async fn handle(&mut self, text: &str, out: &mpsc::Sender<Outgoing>) -> Step {
        let message: ClientMessage = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => return Step::Close(CloseCode::BadRequest, format!("Invalid message received: {e}")),
        };
        match message {
            ClientMessage::ConnectionInit { payload } => {
                if self.init_seen {
                    return Step::Close(
                        CloseCode::TooManyInitialisationRequests,
                        "Too many initialisation requests".into(),
                    );
                }
                self.init_seen = true;
                match self.app.auth.from_params(&payload.unwrap_or_default()) {
                    Ok(identity) => {
                        self.identity = identity;
                        self.acked = true;
                        Step::Send(ServerMessage::ConnectionAck { payload: None })
                    }
                    Err(e) => Step::Close(CloseCode::Forbidden, format!("Forbidden: {e}")),
                }
            }
            ClientMessage::Ping { .. } => Step::Send(ServerMessage::Pong { payload: None }),
            ClientMessage::Pong { .. } => Step::Continue,
            ClientMessage::Subscribe { id, payload } => {
                if !self.acked {
                    return Step::Close(CloseCode::Unauthorized, "Unauthorized".into());
                }
                if self.operations.contains_key(&id) {
                    return Step::Close(
                        CloseCode::SubscriberAlreadyExists,
                        format!("Subscriber for {id} already exists"),
                    );
                }
                if self.operations.len() >= self.app.config.max_subscriptions {
                    let error = serde_json::json!({
                        "message": format!("Too many operations on this connection (the limit is {}).", self.app.config.max_subscriptions),
                        "extensions": {"code": "LIMIT_EXCEEDED"}
                    });
                    return Step::Send(ServerMessage::Error { id, payload: vec![error] });
                }
                self.generation += 1;
                let handle = tokio::spawn(run_operation(
                    self.app.clone(),
                    self.identity.clone(),
                    id.clone(),
                    self.generation,
                    payload,
                    out.clone(),
                ))
                .abort_handle();
                self.operations.insert(id, (self.generation, handle));
                Step::Continue
            }
            ClientMessage::Complete { id } => {
                if let Some((_, handle)) = self.operations.remove(&id) {
                    handle.abort();
                }
                Step::Continue
            }
        }
    }
}

async fn run_operation(
    app: AppState,
    identity: Option<Identity>,
    id: String,
    generation: u64,
    payload: SubscribePayload,
    out: mpsc::Sender<Outgoing>,
) {
    let mut request = async_graphql::Request::new(payload.query)
        .variables(Variables::from_json(payload.variables.unwrap_or_default()));
    if let Some(name) = payload.operation_name {
        request = request.operation_name(name);
    }
    if let Some(identity) = identity {
        request = request.data(identity);
    }
    let mut responses = app.schema.execute_stream(request);
    let mut ended_by_error = false;
    while let Some(response) = responses.next().await {
        let message = if response.data == async_graphql::Value::Null && !response.errors.is_empty() {
            // An error-only result ends the operation with `error`, and no `complete` follows.
            ended_by_error = true;
            let errors = response.errors.iter().map(|e| serde_json::to_value(e).unwrap_or_default()).collect();
            ServerMessage::Error { id: id.clone(), payload: errors }
        } else {
            ServerMessage::Next { id: id.clone(), payload: serde_json::to_value(&response).unwrap_or_default() }
        };
        // A full queue waits here: the subscription reads at its own cursor, so waiting loses nothing.
        if out.send(Outgoing::Frame(message)).await.is_err() {
            return;
        }
        if ended_by_error {
            break;
        }
    }
    if !ended_by_error {
        let _ = out.send(Outgoing::Frame(ServerMessage::Complete { id: id.clone() })).await;
    }
    let _ = out.send(Outgoing::Finished { id, generation }).await;
}

/// Query of `GET /dev/token`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TokenQuery {
    user: String,
}

/// `GET /dev/token?user=NAME`: a JWT for a demo user (dev mode only).
pub(crate) async fn dev_token(
    State(app): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<TokenQuery>,
) -> Response {
    match app.auth.issue_dev_token(&query.user) {
        Ok(token) => Json(serde_json::json!({
            "user": query.user,
            "admin": query.user == app.config.admin_group,
            "token": token,
        }))
        .into_response(),
        Err(e) => {
            let status = if app.config.dev_tokens { StatusCode::BAD_REQUEST } else { StatusCode::NOT_FOUND };
            (status, Json(serde_json::json!({"error": e.to_string()}))).into_response()
        }
    }
}

/// `GET /dev/users`: the demo users (dev mode only).
pub(crate) async fn dev_users(State(app): State<AppState>) -> Response {
    if !app.config.dev_tokens {
        return (StatusCode::NOT_FOUND, Json(serde_json::json!({"error": "dev tokens are off"}))).into_response();
    }
    Json(serde_json::json!({"users": app.config.demo_users, "adminGroup": app.config.admin_group})).into_response()
}
