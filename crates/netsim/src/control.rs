//! The control API: read and switch the profile, reset every open connection. CORS is open to any origin, since a
//! page served on another port (the web app's profile switcher) calls it; the proxied traffic is left untouched.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_http::cors::CorsLayer;

use crate::profile::Profile;
use crate::proxy::Shared;
use crate::Stats;

/// A profile as the control API shows it: its fields plus the round trip and a one-line summary of the figures.
#[derive(Debug, Serialize)]
struct ProfileView<'a> {
    #[serde(flatten)]
    profile: &'a Profile,
    rtt_ms: f64,
    figures: String,
}

fn view(profile: &Profile) -> ProfileView<'_> {
    ProfileView { profile, rtt_ms: profile.rtt_ms(), figures: profile.figures() }
}

/// The control API's router.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/profile", get(current).post(select_by_body))
        .route("/profile/{name}", put(select_by_path))
        .route("/profiles", get(list))
        .route("/reset", post(reset))
        .route("/stats", get(stats))
        .layer(CorsLayer::permissive())
        .with_state(shared)
}

async fn index() -> Json<serde_json::Value> {
    Json(json!({
        "GET /profile": "the current profile",
        "GET /profiles": "every profile",
        "PUT /profile/{name}": "switch to a profile (open connections too)",
        "POST /profile": "switch to the profile {\"name\": …}",
        "POST /reset": "reset every open connection now",
        "GET /stats": "connections and bytes so far",
    }))
}

async fn current(State(shared): State<Arc<Shared>>) -> Response {
    let profile = shared.current.borrow().clone();
    Json(view(&profile)).into_response()
}

async fn list(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.profiles.all().iter().map(view).collect::<Vec<_>>()).into_response()
}

/// The body of `POST /profile`.
#[derive(Debug, Deserialize)]
struct Select {
    name: String,
}

async fn select_by_body(State(shared): State<Arc<Shared>>, Json(body): Json<Select>) -> Response {
    select(&shared, &body.name)
}

async fn select_by_path(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    select(&shared, &name)
}

fn select(shared: &Shared, name: &str) -> Response {
    match shared.select(name) {
        Ok(profile) => {
            tracing::info!("network profile: {} ({})", profile.name, profile.figures());
            Json(view(&profile)).into_response()
        }
        Err(err) => (StatusCode::NOT_FOUND, Json(json!({"error": err.to_string()}))).into_response(),
    }
}

async fn reset(State(shared): State<Arc<Shared>>) -> Response {
    let open = shared.reset_all();
    tracing::info!("reset {open} open connection(s)");
    Json(json!({"reset": open})).into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Stats> {
    Json(shared.stats())
}
