//! The network-simulator panel: when the app runs behind `subsignal netsim` (as `cargo xtask demo` runs it), pick a
//! profile — it applies to the open connection too — or drop every connection, and see the figures in force.
//!
//! `netsim.json` next to the app says where the control API is: Trunk copies `web/netsim.json` (`{"control": null}`)
//! into every build, and `cargo xtask demo` overwrites it with `{"control": "http://…"}`; with no control API the
//! panel says the app talks to the server directly.

use leptos::prelude::*;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Location {
    control: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Profile {
    name: String,
    #[serde(default)]
    figures: String,
    #[serde(default)]
    rtt_ms: f64,
}

async fn get<T: for<'de> Deserialize<'de>>(url: &str) -> Result<T, String> {
    let response = gloo_net::http::Request::get(url).send().await.map_err(|e| e.to_string())?;
    if !response.ok() {
        return Err(format!("HTTP {}", response.status()));
    }
    response.json().await.map_err(|e| e.to_string())
}

async fn profiles(control: &str) -> Result<(Vec<Profile>, Profile), String> {
    let list: Vec<Profile> = get(&format!("{control}/profiles")).await?;
    let current: Profile = get(&format!("{control}/profile")).await?;
    Ok((list, current))
}

/// The profile switcher.
#[component]
pub(crate) fn NetsimPanel() -> impl IntoView {
    let control = LocalResource::new(|| async { get::<Location>("/netsim.json").await.ok().and_then(|l| l.control) });
    let current = RwSignal::new(None::<Profile>);
    let list = RwSignal::new(Vec::<Profile>::new());
    let problem = RwSignal::new(None::<String>);
    let refresh = move |control: String| {
        leptos::task::spawn_local(async move {
            match profiles(&control).await {
                Ok((all, now)) => {
                    list.set(all);
                    current.set(Some(now));
                    problem.set(None);
                }
                Err(e) => problem.set(Some(format!("The simulator's control API did not answer: {e}"))),
            }
        });
    };
    Effect::new(move |_| {
        if let Some(Some(control)) = control.get() {
            refresh(control);
        }
    });
    let switch = move |name: String| {
        let Some(Some(control)) = control.get_untracked() else { return };
        leptos::task::spawn_local(async move {
            let sent = gloo_net::http::Request::put(&format!("{control}/profile/{name}")).send().await;
            if let Err(e) = sent {
                problem.set(Some(format!("Could not switch the profile: {e}")));
            }
            refresh(control);
        });
    };
    let reset = move |_| {
        let Some(Some(control)) = control.get_untracked() else { return };
        leptos::task::spawn_local(async move {
            let _ = gloo_net::http::Request::post(&format!("{control}/reset")).send().await;
        });
    };
    view! {
        <section class="card netsim" aria-labelledby="netsim-title">
            <h2 id="netsim-title">"Network"</h2>
            {move || match control.get() {
                None => view! { <p class="loading">"…"</p> }.into_any(),
                Some(None) => view! {
                    <p class="empty" data-testid="netsim-off">
                        "Direct connection (no simulator). Run " <code>"cargo xtask demo --profile slow-4g"</code>
                        " to feel 3G, 4G, 5G or a flaky network."
                    </p>
                }.into_any(),
                Some(Some(_)) => view! {
                    <label for="profile">"Simulated network"</label>
                    <select id="profile" data-testid="profile"
                        prop:value=move || current.get().map(|p| p.name).unwrap_or_default()
                        on:change=move |ev| switch(event_target_value(&ev))>
                        {move || list.get().into_iter().map(|p| view! {
                            <option value=p.name.clone()>{p.name.clone()}</option>
                        }).collect_view()}
                    </select>
                    <p class="figures">{move || current.get().map(|p| format!("{} · round trip {:.0} ms", p.figures, p.rtt_ms))}</p>
                    <button type="button" class="secondary" on:click=reset>"Drop all connections"</button>
                }.into_any(),
            }}
            <p class="field-error" role="alert">{move || problem.get()}</p>
        </section>
    }
}
