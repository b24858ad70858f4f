//! The order form: client-side hints that mirror the server's rules, the server's field errors next to the right
//! field, and one order per submission however often the button is clicked.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::wasm_bindgen::JsCast;
use subsignal_leptos::{use_mutation, use_store, MutationError};
use subsignal_orders::{check_email, check_items, check_name, total_cents, FieldError, OrderItem};

use crate::api::{create_order, money, PRODUCTS};
use crate::app::Session;

#[derive(Clone, Copy)]
struct Line {
    id: usize,
    sku: RwSignal<String>,
    quantity: RwSignal<i32>,
}

impl Line {
    fn new(id: usize) -> Self {
        Line { id, sku: RwSignal::new(PRODUCTS[0].sku.to_owned()), quantity: RwSignal::new(1) }
    }

    fn item(&self) -> OrderItem {
        let sku = self.sku.get();
        let unit_price_cents = PRODUCTS.iter().find(|p| p.sku == sku).map_or(0, |p| p.price_cents);
        OrderItem { sku, quantity: self.quantity.get(), unit_price_cents }
    }
}

/// The first message per field: the client's hints and the server's field errors alike.
fn errors_by_field(errors: impl IntoIterator<Item = (String, String)>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (field, message) in errors {
        map.entry(field).or_insert(message);
    }
    map
}

/// Moves the focus to the first field with an error, in the form's order, so that a keyboard or screen-reader user
/// lands on what to fix.
fn focus_first_invalid(errors: &HashMap<String, String>) {
    let quantity = |i: usize| format!("items[{i}].quantity");
    let selector = if errors.contains_key("customerName") {
        Some("#name".to_owned())
    } else if errors.contains_key("email") {
        Some("#email".to_owned())
    } else if let Some(i) = (0..100).find(|i| errors.contains_key(&quantity(*i))) {
        Some(format!("#qty-{i}"))
    } else {
        errors.contains_key("items").then(|| "#product-0".to_owned())
    };
    let element = selector.and_then(|s| document().query_selector(&s).ok().flatten());
    if let Some(element) = element.and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()) {
        let _ = element.focus();
    }
}

/// Shows `found` as the form's errors and puts the focus on the first.
fn show_errors(errors: RwSignal<HashMap<String, String>>, found: HashMap<String, String>) {
    focus_first_invalid(&found);
    errors.set(found);
}

/// The order form.
#[component]
pub(crate) fn OrderForm() -> impl IntoView {
    let session = expect_context::<Session>();
    let create = use_mutation(&use_store());
    let name = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let next_line = StoredValue::new(1usize);
    let lines = RwSignal::new(vec![Line::new(0)]);
    let errors = RwSignal::new(HashMap::<String, String>::new());
    let notice = RwSignal::new(None::<String>);
    let submitting = RwSignal::new(false);
    let temp_ids = StoredValue::new(0u64);

    let items = move || lines.get().iter().map(Line::item).collect::<Vec<_>>();
    let total = move || total_cents(&items());
    let error_for = move |field: &'static str| move || errors.with(|e| e.get(field).cloned());

    let add_line = move |_| {
        let id = next_line.get_value();
        next_line.set_value(id + 1);
        lines.update(|l| l.push(Line::new(id)));
    };

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        // A second click while the first is on its way does nothing: one submission, one mutation, one id.
        if submitting.get_untracked() {
            return;
        }
        let (name_v, email_v, items_v) = (name.get_untracked(), email.get_untracked(), items());
        let mut hints = Vec::new();
        check_name(&name_v, &mut hints);
        check_email(&email_v, &mut hints);
        check_items(&items_v, &mut hints);
        if !hints.is_empty() {
            show_errors(errors, errors_by_field(hints.into_iter().map(|e: FieldError| (e.field, e.message))));
            return;
        }
        errors.set(HashMap::new());
        notice.set(None);
        submitting.set(true);
        let optimistic = session.optimistic.get_untracked().then(|| {
            let n = temp_ids.get_value() + 1;
            temp_ids.set_value(n);
            format!("pending-{n}")
        });
        let mutation = create_order(&session.user, &name_v, &email_v, &items_v, optimistic.clone());
        // Noted first: an optimistic placeholder is published while `mutate` runs.
        let submit = session.events.submitted(optimistic.is_some());
        // Each submission is answered on its own (optimistic ones overlap).
        let pending = create.mutate(mutation);
        if optimistic.is_some() {
            // Optimistic: the row is already in the list; the form is free for the next order at once.
            submitting.set(false);
            name.set(String::new());
        }
        let events = session.events;
        leptos::task::spawn_local(async move {
            let result = pending.await;
            submitting.set(false);
            // Every error is the server's final answer (network trouble keeps the mutation queued instead).
            if result.is_err() {
                events.refused(submit);
            }
            match result {
                Ok(order) => {
                    events.confirmed(submit, &order);
                    name.set(String::new());
                    notice.set(Some("Order placed.".to_owned()));
                }
                Err(MutationError::Validation { fields }) => {
                    show_errors(errors, errors_by_field(fields.into_iter().map(|e| (e.field, e.message))));
                    if optimistic.is_some() {
                        name.set(name_v);
                    }
                    notice.set(Some("The server refused the order; see the marked fields.".to_owned()));
                }
                Err(other) => notice.set(Some(format!("The order was not placed: {other}"))),
            }
        });
    };

    view! {
        <section class="card form" aria-labelledby="form-title">
            <h2 id="form-title">"New order"</h2>
            <form on:submit=submit novalidate>
                <label for="name">"Name"</label>
                <input id="name" name="name" autocomplete="name" bind:value=name
                    aria-invalid=move || error_for("customerName")().is_some().to_string()
                    aria-describedby=move || error_for("customerName")().map(|_| "name-error")/>
                <FieldHint message=Signal::derive(error_for("customerName")) id="name-error"/>

                <label for="email">"Email"</label>
                <input id="email" name="email" type="email" autocomplete="email" bind:value=email
                    aria-invalid=move || error_for("email")().is_some().to_string()
                    aria-describedby=move || error_for("email")().map(|_| "email-error")/>
                <FieldHint message=Signal::derive(error_for("email")) id="email-error"/>

                <fieldset>
                    <legend>"Items"</legend>
                    <For each=move || lines.get().into_iter().enumerate() key=|(_, l)| l.id let((index, line))>
                        <div class="line">
                            <select aria-label="Product" id=format!("product-{index}")
                                aria-describedby=move || errors.with(|e| e.contains_key("items")).then_some("items-error")
                                on:change=move |ev| line.sku.set(event_target_value(&ev))
                                prop:value=move || line.sku.get()>
                                {PRODUCTS.iter().map(|p| view! {
                                    <option value=p.sku>{format!("{} ({})", p.name, money(i64::from(p.price_cents)))}</option>
                                }).collect_view()}
                            </select>
                            <input type="number" min="1" max="1000" aria-label="Quantity" class="qty"
                                id=format!("qty-{index}")
                                aria-invalid=move || errors.with(|e| e.contains_key(&format!("items[{index}].quantity"))).to_string()
                                aria-describedby=move || errors.with(|e| e.contains_key(&format!("items[{index}].quantity")))
                                    .then(|| format!("qty-error-{index}"))
                                prop:value=move || line.quantity.get().to_string()
                                on:input=move |ev| line.quantity.set(event_target_value(&ev).parse().unwrap_or(0))/>
                            <button type="button" class="remove" aria-label="Remove item"
                                disabled=move || lines.with(|l| l.len() == 1)
                                on:click=move |_| lines.update(|l| l.retain(|x| x.id != line.id))>"×"</button>
                            <FieldHint
                                message=Signal::derive(move || errors.with(|e| e.get(&format!("items[{index}].quantity")).cloned()))
                                id=format!("qty-error-{index}")/>
                        </div>
                    </For>
                    <FieldHint message=Signal::derive(error_for("items")) id="items-error"/>
                    <button type="button" class="secondary" on:click=add_line>"Add item"</button>
                </fieldset>

                <p class="total">"Total: " <strong data-testid="total">{move || money(total())}</strong></p>
                <button type="submit" class="primary" disabled=move || submitting.get()>
                    {move || if submitting.get() { "Placing…" } else { "Place order" }}
                </button>
                <p class="notice" role="status">{move || notice.get()}</p>
            </form>
        </section>
    }
}

#[component]
fn FieldHint(message: Signal<Option<String>>, #[prop(into)] id: String) -> impl IntoView {
    view! {
        <Show when=move || message.with(Option::is_some)>
            <p class="field-error" id=id.clone() role="alert">{move || message.get()}</p>
        </Show>
    }
}
