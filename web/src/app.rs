//! The shell of the app: sign-in, the store's lifetime, and the page layout.

use leptos::prelude::*;
use subsignal_leptos::{provide_store, use_live_collection, use_status, BrowserStore, StoreOptions};
use wasm_bindgen::JsCast;

use crate::api::{orders_collection, Order};
use crate::form::OrderForm;
use crate::netsim::NetsimPanel;
use crate::orders::OrderList;
use crate::status::{ConnectionBadge, EventLog, Events, LatencyChart};
use crate::travel::Travel;

/// The demo users the dev server issues tokens for.
const USERS: [(&str, &str); 3] = [("alice", "Alice"), ("bob", "Bob"), ("admin", "Admin (sees everyone)")];

/// Who is signed in (their store is in context: `use_store()`).
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) user: String,
    /// Show mutations at once (optimistic) or only when the server's events arrive (server-driven).
    pub(crate) optimistic: RwSignal<bool>,
    pub(crate) events: Events,
}

fn location() -> web_sys::Location {
    window().location()
}

/// The signed-in user comes from the address (`?as=alice`), so a reload keeps the session and shows the same state,
/// rebuilt from the server.
fn user_from_address() -> Option<String> {
    param("as")
}

/// The value of `name` in the address's query.
fn param(name: &str) -> Option<String> {
    let search = location().search().ok()?;
    search
        .trim_start_matches('?')
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
}

/// The answer to the token request `index.html` started while the app downloaded, once; `None` when there is none
/// (a page without that script, or a second sign-in).
async fn early_token_response() -> Option<Result<gloo_net::http::Response, String>> {
    let window = window();
    let promise =
        js_sys::Reflect::get(&window, &"subsignalDevToken".into()).ok()?.dyn_into::<js_sys::Promise>().ok()?;
    js_sys::Reflect::delete_property(&window, &"subsignalDevToken".into()).ok();
    let answer = wasm_bindgen_futures::JsFuture::from(promise).await;
    Some(match answer.and_then(|r| r.dyn_into::<web_sys::Response>()) {
        Ok(response) => Ok(response.into()),
        Err(e) => Err(format!("cannot reach the server: {}", e.as_string().unwrap_or_else(|| format!("{e:?}")))),
    })
}

async fn dev_token(user: &str) -> Result<String, String> {
    let response = match early_token_response().await {
        Some(response) => response?,
        None => gloo_net::http::Request::get(&format!("/dev/token?user={user}"))
            .send()
            .await
            .map_err(|e| format!("cannot reach the server: {e}"))?,
    };
    let body: serde_json::Value = response.json().await.map_err(|e| format!("unexpected answer: {e}"))?;
    if !response.ok() {
        return Err(body["error"].as_str().unwrap_or("sign-in refused").to_owned());
    }
    body["token"].as_str().map(str::to_owned).ok_or_else(|| "the server sent no token".to_owned())
}

/// Where this browser keeps the last token `user` was given.
fn token_key(user: &str) -> String {
    format!("subsignal-token-{user}")
}

/// Signs `user` in: a fresh dev token, remembered for the next load. When the server is out of reach, the token of the
/// last visit stands in, so that a reload shows the orders persisted then (marked stale) instead of an error; the
/// store connects once the server is back, and asks for a fresh token if that one has expired (`Main`).
async fn sign_in(user: &str) -> Result<String, String> {
    let storage = window().local_storage().ok().flatten();
    match dev_token(user).await {
        Ok(token) => {
            if let Some(storage) = &storage {
                let _ = storage.set_item(&token_key(user), &token);
            }
            Ok(token)
        }
        Err(why) if why.starts_with("cannot reach") => {
            storage.and_then(|s| s.get_item(&token_key(user)).ok().flatten()).ok_or(why)
        }
        Err(why) => Err(why),
    }
}

fn endpoints() -> (String, String) {
    let loc = location();
    let origin = loc.origin().unwrap_or_default();
    let host = loc.host().unwrap_or_default();
    let ws_scheme = if loc.protocol().unwrap_or_default() == "https:" { "wss" } else { "ws" };
    // The WebSocket has its own path, which names the protocol, so that `trunk serve` can proxy it apart from HTTP;
    // the app offers no subprotocol, which Trunk's proxy could not answer (see Trunk.toml and `without_subprotocol`).
    (format!("{origin}/graphql"), format!("{ws_scheme}://{host}/graphql/ws"))
}

/// The app.
#[component]
pub(crate) fn App() -> impl IntoView {
    match user_from_address() {
        None => view! { <SignIn/> }.into_any(),
        Some(user) => {
            // The store is made at once: it reads the orders persisted at the last visit while the sign-in's token
            // request is on its way, and connects once the token is here (`Main`).
            let (http, ws) = endpoints();
            let options =
                StoreOptions::new(http, ws).without_subprotocol().persist_key(format!("subsignal-queue-{user}"));
            // One WebSocket for all of this user's tabs: one tab hosts the store and the others follow. With
            // `&shared=worker` in the address a SharedWorker (running this build) hosts it instead; not by default,
            // because its socket opens only once the worker has started, after the page's code, where the tab's own
            // socket opens beside the download (measured on Slow 4G: live after 8.8 s instead of 4.6 s; README "Load
            // faster").
            let store = BrowserStore::new(if param("shared").as_deref() == Some("worker") {
                options.shared()
            } else {
                options.shared_in_tab()
            });
            let session = Session { user, optimistic: RwSignal::new(false), events: Events::new() };
            view! { <Main session store/> }.into_any()
        }
    }
}

#[component]
fn SignIn() -> impl IntoView {
    view! {
        <main class="signin">
            <h1>"subsignal orders"</h1>
            <p>"The page holds no state engine of its own: what you see is the live GraphQL subscription."</p>
            <h2>"Sign in as"</h2>
            <ul class="users">
                {USERS
                    .iter()
                    .map(|(user, label)| view! { <li><a class="button" href=format!("/?as={user}")>{*label}</a></li> })
                    .collect_view()}
            </ul>
        </main>
    }
}

#[component]
fn Main(session: Session, store: BrowserStore) -> impl IntoView {
    provide_store(store.clone());
    let orders = use_live_collection::<Order>(&store, orders_collection());
    let status = use_status(&store);
    session.events.follow(&store);
    // A token the server refuses (one remembered from an earlier visit that has expired): sign in again, once for
    // however many refusals come while signing in.
    let user = session.user.clone();
    store
        .renew_token_with(move || {
            let user = user.clone();
            async move { sign_in(&user).await.ok() }
        })
        .forget();
    // Signed in: the store connects with the token. Refused: the page says why (the persisted orders stay shown).
    let refused = RwSignal::new(None::<String>);
    let (user, connecting) = (session.user.clone(), store.clone());
    leptos::task::spawn_local(async move {
        match sign_in(&user).await {
            Ok(token) => {
                connecting.set_token(&token);
                connecting.connect();
            }
            Err(why) => refused.set(Some(why)),
        }
    });
    provide_context(session.clone());
    provide_context(Travel::new(&store));
    let optimistic = session.optimistic;
    let admin = session.user == "admin";
    view! {
        {move || refused.get().map(|why| view! {
            <div class="card error" role="alert">
                <p>{format!("Could not sign in: {why}")}</p>
                <a href="/">"Back to sign-in"</a>
            </div>
        })}
        <header>
            <h1>"subsignal orders"</h1>
            <span class="who">{format!("Signed in as {}", session.user)}</span>
            <ConnectionBadge status/>
            <label class="toggle"
                title="On: your changes show at once, before the server confirms them. Off: they show when the server's event arrives.">
                <input
                    type="checkbox"
                    prop:checked=move || optimistic.get()
                    on:change=move |ev| optimistic.set(event_target_checked(&ev))
                />
                " Optimistic mode"
            </label>
            <a class="signout" href="/">"Sign out"</a>
        </header>
        <main class="layout">
            {(!admin).then(|| view! { <OrderForm/> })}
            <OrderList orders title=if admin { "Everyone's orders" } else { "My orders" }/>
            <NetsimPanel/>
            <LatencyChart/>
            <EventLog/>
        </main>
    }
}
