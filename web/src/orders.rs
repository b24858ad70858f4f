//! The live order list. Each row reads its own signal, so an event about one order re-renders only that row, and
//! the list itself changes only when an order appears or disappears.

use leptos::prelude::*;
use subsignal_leptos::{use_mutation, use_store, LiveCollection, MutationError};
use subsignal_orders::OrderStatus;

use crate::api::{cancel_order, money, product_name, Order};
use crate::app::Session;
use crate::edit::OrderEdit;
use crate::travel::{travelling, PastOrders, TravelBanner};

/// The steps the worker takes, for the progress bar.
const STEPS: [OrderStatus; 4] =
    [OrderStatus::Submitted, OrderStatus::Paid, OrderStatus::Preparing, OrderStatus::Shipped];

/// The list of orders.
#[component]
pub(crate) fn OrderList(orders: LiveCollection<Order>, title: &'static str) -> impl IntoView {
    // The first snapshot has arrived (an empty one too: it changes no row, but the collection says so).
    let loaded = orders.loaded();
    let state = orders.state();
    // Stale: what shows may be behind the server (disconnected, or fetching again); tests and the report wait on it.
    let stale = Memo::new(move |_| state.with(|s| s.stale));
    // While the event panel's scrubber views a past seq, the list shows the orders as they were then.
    let travelling = travelling();
    let restored = move || state.with(|s| s.restored);
    view! {
        <section class="card orders" aria-labelledby="orders-title" data-stale=move || stale.get().to_string()>
            <h2 id="orders-title">{title}</h2>
            <Show when=restored>
                <p class="stale-hint" role="status" data-testid="orders-stale">
                    "Showing your orders as of your last visit; reconnecting…"
                </p>
            </Show>
            <TravelBanner/>
            <Show when=move || !travelling.get() fallback=|| view! { <PastOrders/> }>
            <Show when=move || loaded.get() fallback=|| view! { <p class="loading" role="status">"Loading orders…"</p> }>
                <Show when=move || !orders.is_empty()
                    fallback=|| view! { <p class="empty">"No orders yet. Place one and watch it move."</p> }>
                    <ul class="order-list" data-testid="orders">
                        <For each=move || orders.keys().get() key=|k| k.clone() let(key)>
                            {orders.row(&key).map(|row| view! { <OrderRow row/> })}
                        </For>
                    </ul>
                </Show>
            </Show>
            </Show>
        </section>
    }
}

#[component]
fn OrderRow(row: Signal<Order>) -> impl IntoView {
    let optimistic = expect_context::<Session>().optimistic;
    let cancel_order_action = use_mutation(&use_store());
    let problem = RwSignal::new(None::<String>);
    let cancelling = cancel_order_action.pending();
    let step = move || {
        let status = row.with(|o| o.status);
        STEPS.iter().position(|s| *s == status).map_or(STEPS.len(), |i| i + 1)
    };
    let cancel = move |_| {
        let order = row.get_untracked();
        problem.set(None);
        cancel_order_action.dispatch(cancel_order(&order.id, order.version, optimistic.get_untracked()));
    };
    // The server's answer: nothing to say when it cancelled (the row shows it), else why not.
    Effect::new(move |_| {
        let Some(Err(error)) = cancel_order_action.value().get() else { return };
        problem.set(Some(match error {
            MutationError::Conflict(conflict) => match &conflict.theirs {
                Some(current) => {
                    let status = current["status"].as_str().unwrap_or("changed").to_owned();
                    let version = current["version"].as_i64().unwrap_or_default();
                    format!(
                        "Not cancelled: the order changed elsewhere while you looked at it (it is now {status}, \
                         version {version}). The list shows its current state; try again if it still applies."
                    )
                }
                None => "Not cancelled: the order was deleted elsewhere.".to_owned(),
            },
            MutationError::Validation { fields } => {
                let why = fields.first().map(|f| f.message.clone()).unwrap_or_default();
                format!("Not cancelled: {why}")
            }
            other => format!("Not cancelled: {other}"),
        }));
    });
    view! {
        <li class="order" data-status=move || row.with(|o| o.status.as_str()) data-id=move || row.with(|o| o.id.clone())
            data-version=move || row.with(|o| o.version)
            class:pending=move || row.with(Order::is_pending)>
            <div class="order-head">
                <strong>{move || row.with(|o| o.customer_name.clone())}</strong>
                <span class="total">{move || row.with(|o| money(o.total_cents))}</span>
                <span class="badge status">{move || {
                    let o = row.get();
                    if o.is_pending() { "SAVING…".to_owned() } else { o.status.as_str().to_owned() }
                }}</span>
            </div>
            <p class="items">{move || row.with(|o| o.items.iter()
                .map(|i| format!("{} × {}", i.quantity, product_name(&i.sku)))
                .collect::<Vec<_>>().join(", "))}
                <span class="owner">{move || row.with(|o| format!(" · {} · #{}", o.owner, &o.id[o.id.len().saturating_sub(6)..]))}</span>
            </p>
            <Show when=move || row.with(|o| o.status != OrderStatus::Cancelled)
                fallback=|| view! { <p class="cancelled">"Cancelled"</p> }>
                <ol class="progress" aria-label="Order progress">
                    {STEPS.iter().enumerate().map(|(i, s)| view! {
                        <li class:done=move || i < step() aria-current=move || (i + 1 == step()).then_some("step")>
                            {s.as_str()}
                        </li>
                    }).collect_view()}
                </ol>
            </Show>
            <Show when=move || row.with(|o| o.status.can_cancel() && !o.is_pending())>
                <OrderEdit id=row.with_untracked(|o| o.id.clone())/>
            </Show>
            <Show when=move || row.with(|o| o.status.can_cancel() && !o.is_pending())>
                <button type="button" class="secondary" on:click=cancel disabled=move || cancelling.get()>
                    {move || if cancelling.get() { "Cancelling…" } else { "Cancel order" }}
                </button>
            </Show>
            <p class="field-error" role="alert">{move || problem.get()}</p>
        </li>
    }
}
