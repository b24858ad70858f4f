//! The dev endpoints, on only with `dev-tokens` (local development and demos): `/dev/token` issues a JWT for a demo
//! user, `/dev/users` lists them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::AppState;

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
