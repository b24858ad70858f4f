//! Time travel over the orders' history: the event panel's scrubber picks a seq, and while it is dragged (or held
//! with the keyboard) the order list shows the orders as they were just after that seq, the rows that event changed
//! highlighted; releasing it, the "Back to live" button or Escape return to the live list. The history is the
//! store's (the orders collection keeps one, see `api.rs`); the app keeps only which seq is viewed.

use leptos::prelude::*;
use subsignal_leptos::{use_time_travel, BrowserStore, HistoryOp, PastRows, TimeTravel};

use crate::api::{money, Order, ORDERS};

/// What the scrubber and the order list share.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Travel {
    travel: TimeTravel,
    /// The seq viewed; `None`: live.
    pub(crate) viewing: RwSignal<Option<i64>>,
}

impl Travel {
    /// Follows the orders' history; Escape anywhere returns to live.
    pub(crate) fn new(store: &BrowserStore) -> Self {
        let viewing = RwSignal::new(None);
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.key() == "Escape" && viewing.get_untracked().is_some() {
                viewing.set(None);
            }
        });
        on_cleanup(move || handle.remove());
        Travel { travel: use_time_travel(store, ORDERS), viewing }
    }

    /// The orders at the seq viewed (tracks it, and the history's range).
    fn past(&self) -> Memo<Option<Result<PastRows<Order>, String>>> {
        let (travel, viewing) = (self.travel, self.viewing);
        Memo::new(move |_| {
            travel.range().track();
            viewing.get().map(|seq| travel.at_as::<Order>(seq).map_err(|e| e.to_string()))
        })
    }
}

/// The scrubber over the seqs the history holds.
#[component]
pub(crate) fn Scrubber() -> impl IntoView {
    let Travel { travel, viewing } = expect_context::<Travel>();
    let range = travel.range();
    let value = move || viewing.get().or_else(|| range.with(|r| r.map(|r| r.last))).unwrap_or_default();
    let pick = move |ev: leptos::ev::Event| {
        if let Ok(seq) = event_target_value(&ev).parse::<i64>() {
            viewing.set(Some(seq));
        }
    };
    let release = move |_| viewing.set(None);
    view! {
        <div class="scrubber">
            <label for="scrubber">"Time travel"</label>
            <Show when=move || range.with(Option::is_some)
                fallback=|| view! { <p class="empty">"The history starts once the orders are loaded."</p> }>
                <input type="range" id="scrubber" step="1" aria-describedby="scrubber-help"
                    min=move || range.with(|r| r.map(|r| r.first))
                    max=move || range.with(|r| r.map(|r| r.last))
                    prop:value=move || value().to_string()
                    aria-valuetext=move || match viewing.get() {
                        Some(seq) => format!("seq {seq}"),
                        None => format!("live, seq {}", value()),
                    }
                    on:input=pick on:pointerup=release on:pointercancel=release/>
                <p id="scrubber-help" class="scrub-range">{move || {
                    let (first, last) = range.with(|r| r.map(|r| (r.first, r.last)).unwrap_or_default());
                    format!("Drag to see the orders as they were, seq {first} to {last}; release or press Escape for live.")
                }}</p>
            </Show>
        </div>
    }
}

/// "Viewing seq N — back to live", while a seq is viewed.
#[component]
pub(crate) fn TravelBanner() -> impl IntoView {
    let viewing = expect_context::<Travel>().viewing;
    view! {
        {move || viewing.get().map(|seq| view! {
            <p class="travel" role="status" data-testid="time-travel">
                {format!("Viewing seq {seq} — ")}
                <button type="button" class="link" on:click=move |_| viewing.set(None)>"Back to live"</button>
            </p>
        })}
    }
}

/// Whether a seq is viewed (the order list shows [`PastOrders`] instead of the live rows).
pub(crate) fn travelling() -> Signal<bool> {
    let viewing = expect_context::<Travel>().viewing;
    Signal::derive(move || viewing.with(Option::is_some))
}

/// The orders as they were at the seq viewed, read-only; the rows its event changed highlighted.
#[component]
pub(crate) fn PastOrders() -> impl IntoView {
    let travel = expect_context::<Travel>();
    let past = travel.past();
    move || match past.get() {
        None => ().into_any(),
        Some(Err(why)) => view! { <p class="field-error" role="alert">{why}</p> }.into_any(),
        Some(Ok(at)) if at.rows.is_empty() && at.changes.is_empty() => {
            view! { <p class="empty">{format!("No orders at seq {}.", at.seq)}</p> }.into_any()
        }
        Some(Ok(at)) => {
            let seq = at.seq;
            let removed: Vec<String> =
                at.changes.iter().filter(|c| c.op == HistoryOp::Remove).map(|c| c.key.clone()).collect();
            view! {
                <ul class="order-list past" data-testid="orders" data-seq=seq>
                    {at.rows.into_iter().map(|r| {
                        let changed = r.seq == seq && r.op != HistoryOp::Snapshot;
                        let why = match r.op {
                            HistoryOp::Snapshot => format!("as loaded, seq {}", r.seq),
                            HistoryOp::Insert => format!("placed at seq {}", r.seq),
                            _ => format!("changed at seq {}", r.seq),
                        };
                        let order = r.row;
                        view! {
                            <li class="order past" class:changed=changed data-status=order.status.as_str()
                                data-id=r.key data-changed-seq=r.seq aria-current=changed.then_some("true")>
                                <div class="order-head">
                                    <strong>{order.customer_name}</strong>
                                    <span class="total">{money(order.total_cents)}</span>
                                    <span class="badge status">{order.status.as_str()}</span>
                                </div>
                                <p class="items">{why}</p>
                            </li>
                        }
                    }).collect_view()}
                </ul>
                {(!removed.is_empty()).then(|| view! {
                    <p class="removed">{format!("Removed at seq {seq}: {}", removed.join(", "))}</p>
                })}
            }
            .into_any()
        }
    }
}
