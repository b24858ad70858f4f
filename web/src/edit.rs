//! Editing an order's customer name and email, and the "Changed elsewhere" dialog when someone else changed the
//! order meanwhile.
//!
//! The form keeps the row it opened with as the edit's `base`, so the store can tell who changed what even though
//! the live row moves on while the user types. A refusal for a stale version is a three-way merge: when the other
//! change touched other fields only (the worker moving the status along, say), the edit is sent again on top of it
//! at once, with nothing to ask; when both changed the same field differently, the dialog shows their version and
//! this one side by side and lets the user keep theirs, keep mine, or choose per field. It is modal: the page behind
//! it is inert until it is answered, and Escape keeps theirs (nothing is written).

use leptos::prelude::*;
use serde_json::{Map, Value};
use subsignal_leptos::{use_mutation, use_store, Choice, Conflict, FieldChange, Mutation, MutationError, Mutator};

use crate::api::{update_order, ORDERS};
use crate::app::Session;

/// The fields the dialog shows, with their labels.
const SHOWN: [(&str, &str); 3] = [("customerName", "Name"), ("email", "Email"), ("status", "Status")];

/// What the edit of one order shows, besides its row.
#[derive(Clone, Copy)]
struct EditState {
    open: RwSignal<bool>,
    conflict: RwSignal<Option<Conflict>>,
    problem: RwSignal<Option<String>>,
    saving: RwSignal<bool>,
}

/// Sends `mutation` and handles its answer: closes the form when it is written, resends at once when a conflict
/// needs no person (no field changed on both sides), shows the dialog when it does.
fn send(mutator: Mutator<Value>, state: EditState, mutation: Mutation) {
    state.saving.set(true);
    let answer = mutator.mutate(mutation);
    leptos::task::spawn_local(async move {
        let result = answer.await;
        state.saving.try_set(false);
        match result {
            Ok(_) => {
                state.open.try_set(false);
                state.conflict.try_set(None);
            }
            Err(MutationError::Conflict(conflict)) if !conflict.has_conflicts() => match conflict.keep_mine() {
                Ok(Some(resend)) => send(mutator, state, resend),
                Ok(None) => {
                    state.open.try_set(false);
                }
                Err(why) => {
                    state.problem.try_set(Some(format!("Not saved: {why}.")));
                }
            },
            // The dialog opens as a modal (`OrderEdit`): the browser moves the focus into it.
            Err(MutationError::Conflict(conflict)) => {
                state.conflict.try_set(Some(*conflict));
            }
            Err(MutationError::Validation { fields }) => {
                let why = fields.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join(" ");
                state.problem.try_set(Some(format!("Not saved: {why}")));
            }
            Err(other) => {
                state.problem.try_set(Some(format!("Not saved: {other}")));
            }
        }
    });
}

/// A field's value as the dialog shows it.
fn shown(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "—".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The "Edit" button of an order, its form, and the conflict dialog.
#[component]
pub(crate) fn OrderEdit(id: String) -> impl IntoView {
    let store = use_store();
    let optimistic = expect_context::<Session>().optimistic;
    let mutator = use_mutation(&store);
    let state = EditState {
        open: RwSignal::new(false),
        conflict: RwSignal::new(None),
        problem: RwSignal::new(None),
        saving: RwSignal::new(false),
    };
    let (name, email) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    // The row as the form opened on it: the edit's base.
    let base = StoredValue::new(Value::Null);
    let key = StoredValue::new(id.clone());
    let store = StoredValue::new_local(store);
    let open = move |_| {
        let Some(row) = store.with_value(|s| s.row(ORDERS, &key.get_value())) else { return };
        name.set(row["customerName"].as_str().unwrap_or_default().to_owned());
        email.set(row["email"].as_str().unwrap_or_default().to_owned());
        base.set_value(row);
        state.problem.set(None);
        state.conflict.set(None);
        state.open.set(true);
    };
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let base = base.get_value();
        let mut fields = Map::new();
        for (field, value) in [("customerName", name.get_untracked()), ("email", email.get_untracked())] {
            if base[field].as_str() != Some(value.trim()) {
                fields.insert(field.to_owned(), Value::String(value.trim().to_owned()));
            }
        }
        if fields.is_empty() {
            return state.open.set(false);
        }
        state.problem.set(None);
        send(mutator, state, update_order(base, fields, optimistic.get_untracked()));
    };
    let choices = RwSignal::new(Vec::<(String, Choice)>::new());
    let resolve = move |resend: Result<Option<Mutation>, subsignal_leptos::ResolveError>| {
        state.conflict.set(None);
        choices.set(Vec::new());
        match resend {
            Ok(Some(mutation)) => send(mutator, state, mutation),
            // Nothing of mine is left: the row already shows theirs.
            Ok(None) => state.open.set(false),
            Err(why) => state.problem.set(Some(format!("Not saved: {why}."))),
        }
    };
    let keep_mine = move |_| {
        if let Some(conflict) = state.conflict.get_untracked() {
            resolve(conflict.keep_mine());
        }
    };
    // Writes nothing: the row already shows theirs. Escape does the same.
    let take_theirs = move || {
        choices.set(Vec::new());
        state.conflict.set(None);
        state.open.set(false);
    };
    let merge = move |_| {
        if let Some(conflict) = state.conflict.get_untracked() {
            resolve(conflict.merge(&choices.get_untracked()));
        }
    };
    // A modal dialog: the rest of the page is inert behind it, the focus moves into it, Escape dismisses it.
    let dialog = NodeRef::<leptos::html::Dialog>::new();
    Effect::new(move || {
        if let Some(dialog) = dialog.get() {
            if !dialog.open() {
                let _ = dialog.show_modal();
            }
        }
    });
    let title_id = format!("conflict-title-{id}");
    let name_id = format!("edit-name-{id}");
    let email_id = format!("edit-email-{id}");
    view! {
        <Show when=move || !state.open.get()>
            <button type="button" class="secondary" on:click=open>"Edit"</button>
        </Show>
        <Show when=move || state.open.get() && state.conflict.with(Option::is_none)>
            <form class="edit" on:submit=save>
                <label for=name_id.clone()>"Name"</label>
                <input id=name_id.clone() bind:value=name autocomplete="off"/>
                <label for=email_id.clone()>"Email"</label>
                <input id=email_id.clone() type="email" bind:value=email autocomplete="off"/>
                <div class="actions">
                    <button type="submit" class="secondary" disabled=move || state.saving.get()>
                        {move || if state.saving.get() { "Saving…" } else { "Save" }}
                    </button>
                    <button type="button" class="secondary" on:click=move |_| state.open.set(false)>"Close"</button>
                </div>
            </form>
        </Show>
        {move || state.conflict.get().map(|conflict| {
            let title_id = title_id.clone();
            // Per-field choices only matter when more than one field conflicts.
            let many = conflict.conflicting_fields().len() > 1;
            let rows = SHOWN.iter().filter_map(|(field, label)| {
                let d = conflict.diff.iter().find(|d| d.field == *field)?.clone();
                if d.change == FieldChange::Unchanged {
                    return None;
                }
                let conflicting = d.change == FieldChange::Conflict;
                let differs = d.mine != d.theirs;
                let group = format!("choice-{}-{field}", conflict.key.clone().unwrap_or_default());
                let choose = move |choice: Choice| {
                    let field = field.to_string();
                    move |_| choices.update(|c| c.push((field.clone(), choice.clone())))
                };
                Some(view! {
                    <tr class:differs=differs class:conflict=conflicting data-field=*field>
                        <th scope="row">{*label}</th>
                        <td class="theirs">{shown(d.theirs.as_ref())}</td>
                        <td class="mine">{shown(d.mine.as_ref())}</td>
                        <td class="pick">
                            {(many && conflicting).then(|| view! {
                                <label class="toggle">
                                    <input type="radio" name=group.clone() on:change=choose(Choice::Theirs)/>
                                    " theirs"
                                </label>
                                <label class="toggle">
                                    <input type="radio" name=group.clone() checked on:change=choose(Choice::Mine)/>
                                    " mine"
                                </label>
                            })}
                        </td>
                    </tr>
                })
            }).collect_view();
            view! {
                <dialog
                    node_ref=dialog
                    class="conflict-dialog"
                    aria-labelledby=title_id.clone()
                    aria-describedby=format!("{title_id}-why")
                    on:cancel=move |ev: leptos::ev::Event| {
                        ev.prevent_default();
                        take_theirs();
                    }
                >
                    <h3 id=title_id.clone()>"Changed elsewhere"</h3>
                    <p id=format!("{title_id}-why")>{if conflict.theirs.is_some() {
                        "Someone changed this order while you were editing it. Highlighted fields were changed on both sides."
                    } else {
                        "This order was deleted while you were editing it."
                    }}</p>
                    <table>
                        <thead><tr><th scope="col">"Field"</th><th scope="col">"Theirs (now)"</th><th scope="col">"Yours"</th><th scope="col"><span class="visually-hidden">"Keep"</span></th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                    <div class="actions">
                        <button type="button" class="secondary" on:click=keep_mine disabled=conflict.theirs.is_none()>"Keep mine"</button>
                        <button type="button" class="secondary" on:click=move |_| take_theirs()>"Take theirs"</button>
                        {many.then(|| view! { <button type="button" class="secondary" on:click=merge>"Save my choices"</button> })}
                    </div>
                </dialog>
            }
        })}
        <p class="edit-error" role="alert">{move || state.problem.get()}</p>
    }
}
