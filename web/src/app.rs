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
    let search = location().search().ok()?;
    search.trim_start_matches('?').split('&').find_map(|pair| pair.strip_prefix("as=")).map(str::to_owned)
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
            let session = LocalResource::new(move || {
                let user = user.clone();
                async move {
                    let token = dev_token(&user).await?;
                    let (http, ws) = endpoints();
                    let store = BrowserStore::new(
                        StoreOptions::new(http, ws)
                            .without_subprotocol()
                            .token(token)
                            .persist_key(format!("subsignal-queue-{user}"))
                            // One WebSocket for all of this user's tabs: one tab hosts the store, the others follow.
                            .shared(),
                    );
                    let session = Session { user, optimistic: RwSignal::new(false), events: Events::new() };
                    Ok::<_, String>((session, store))
                }
            });
            view! {
                <Suspense fallback=|| view! { <p class="loading" role="status">"Signing in…"</p> }>
                    {move || {
                        session.get().map(|result| match result {
                            Ok((session, store)) => view! { <Main session store/> }.into_any(),
                            Err(why) => view! {
                                <div class="card error" role="alert">
                                    <p>{format!("Could not sign in: {why}")}</p>
                                    <a href="/">"Back to sign-in"</a>
                                </div>
                            }.into_any(),
                        })
                    }}
                </Suspense>
            }
            .into_any()
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
    store.connect();
    provide_context(session.clone());
    provide_context(Travel::new(&store));
    let optimistic = session.optimistic;
    let admin = session.user == "admin";
    view! {
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
