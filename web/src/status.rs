//! What the user waits for, made visible: the connection badge and the event log with the time from a mutation to
//! the event that confirmed it.

use std::collections::{HashMap, VecDeque};

use leptos::prelude::*;
use serde_json::Value;
use subsignal_leptos::{BrowserStore, ConnectionStatus, RowChange, StatusSignals};

use crate::api::{str_field, ORDERS};
use crate::app::Session;

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    n: u64,
    at: String,
    seq: Option<i64>,
    op: &'static str,
    order: String,
    status: String,
    /// Milliseconds from the user's mutation (or from the order's previous event, for worker steps) to this event.
    latency_ms: Option<f64>,
    cause: &'static str,
}

#[derive(Default)]
struct Timing {
    /// Submissions waiting for their order's first event, oldest first: (submitted at, optimistic).
    submits: VecDeque<(f64, bool)>,
    /// When each order last changed, to time the worker's steps.
    last_event: HashMap<String, f64>,
    /// Orders whose creation this tab confirmed, with the submit time, when the result came before the event.
    confirmed: HashMap<String, f64>,
    count: u64,
}

/// The event log's state: the last 50 events, newest first.
#[derive(Clone, Copy)]
pub(crate) struct Events {
    log: RwSignal<Vec<Event>>,
    timing: StoredValue<Timing>,
}

impl Events {
    pub(crate) fn new() -> Self {
        Events { log: RwSignal::new(Vec::new()), timing: StoredValue::new(Timing::default()) }
    }

    /// Notes a submission, to time the event that confirms it.
    pub(crate) fn submitted(&self, _client_mutation_id: &str, optimistic: bool) {
        self.timing.update_value(|t| t.submits.push_back((now_ms(), optimistic)));
    }

    /// Notes the server's result of a create (it may arrive before or after the order's event).
    pub(crate) fn confirmed(&self, order: &Value) {
        let id = str_field(order, "id").to_owned();
        self.timing.update_value(|t| {
            if !t.last_event.contains_key(&id) {
                if let Some((at, _)) = t.submits.pop_front() {
                    t.confirmed.insert(id, at);
                }
            }
        });
    }

    /// Logs every change of the orders collection.
    pub(crate) fn follow(&self, store: &BrowserStore) {
        let this = *self;
        let reader = store.clone();
        store
            .on_row(move |collection, change| {
                if collection != ORDERS {
                    return;
                }
                let key = change.key().to_owned();
                if key.starts_with("pending-") {
                    return;
                }
                let row = reader.row(ORDERS, &key);
                let seq = reader.with_collection(ORDERS, |c| c.and_then(|c| c.last_seq()));
                let now = now_ms();
                let (op, status) = match change {
                    RowChange::Inserted { .. } => ("INSERT", row.as_ref().map(|r| str_field(r, "status").to_owned())),
                    RowChange::Updated { .. } => ("MODIFY", row.as_ref().map(|r| str_field(r, "status").to_owned())),
                    RowChange::Removed { expired: true, .. } => ("EXPIRED", None),
                    RowChange::Removed { .. } => ("REMOVE", None),
                };
                let (latency_ms, cause) = this
                    .timing
                    .try_update_value(|t| {
                        t.count += 1;
                        let previous = t.last_event.insert(key.clone(), now);
                        if let Some(at) = t.confirmed.remove(&key) {
                            return (Some(now - at), "since submit");
                        }
                        match (op, previous) {
                            ("INSERT", None) => match t.submits.pop_front() {
                                Some((at, _)) => (Some(now - at), "since submit"),
                                None => (None, ""),
                            },
                            (_, Some(prev)) => (Some(now - prev), "since previous"),
                            _ => (None, ""),
                        }
                    })
                    .unwrap_or((None, ""));
                let n = this.timing.try_with_value(|t| t.count).unwrap_or_default();
                let event = Event {
                    n,
                    at: js_sys::Date::new_0().to_locale_time_string("en-GB").as_string().unwrap_or_default(),
                    seq,
                    op,
                    order: key[key.len().saturating_sub(6)..].to_owned(),
                    status: status.unwrap_or_default(),
                    latency_ms,
                    cause,
                };
                this.log.try_update(|log| {
                    log.insert(0, event);
                    log.truncate(50);
                });
            })
            .forget();
    }
}

/// live / reconnecting in Ns / offline — N queued.
#[component]
pub(crate) fn ConnectionBadge(status: StatusSignals) -> impl IntoView {
    let tick = RwSignal::new(now_ms());
    let _ = set_interval_with_handle(move || tick.set(now_ms()), std::time::Duration::from_millis(500));
    let text = move || {
        let pending = status.pending.get();
        let queued = if pending > 0 { format!(" — {pending} queued") } else { String::new() };
        match status.connection.get() {
            ConnectionStatus::Live => ("live", format!("Live{queued}")),
            ConnectionStatus::Connecting { .. } | ConnectionStatus::Disconnected => {
                ("connecting", format!("Connecting…{queued}"))
            }
            ConnectionStatus::Reconnecting { attempt, retry_at_ms } => {
                let secs = ((retry_at_ms as f64 - tick.get()) / 1000.0).max(0.0).ceil();
                ("reconnecting", format!("Reconnecting in {secs}s (attempt {attempt}){queued}"))
            }
            ConnectionStatus::Offline => ("offline", format!("Offline{queued}")),
            ConnectionStatus::Failed { reason } => ("failed", format!("Disconnected: {reason}{queued}")),
        }
    };
    view! {
        <span class=move || format!("badge connection {}", text().0) role="status" aria-live="polite"
            data-testid="connection">{move || text().1}</span>
    }
}

/// The last events, with the time the user waited for each.
#[component]
pub(crate) fn EventLog() -> impl IntoView {
    let session = expect_context::<Session>();
    let log = session.events.log;
    view! {
        <section class="card log" aria-labelledby="log-title">
            <h2 id="log-title">"Events"</h2>
            <Show when=move || log.with(|l| !l.is_empty()) fallback=|| view! { <p class="empty">"No events yet."</p> }>
                <table>
                    <thead><tr><th>"seq"</th><th>"op"</th><th>"order"</th><th>"status"</th><th>"waited"</th><th>"at"</th></tr></thead>
                    <tbody>
                        <For each=move || log.get() key=|e| e.n let(e)>
                            <tr>
                                <td>{e.seq.map(|s| s.to_string()).unwrap_or_default()}</td>
                                <td>{e.op}</td>
                                <td>{e.order}</td>
                                <td>{e.status}</td>
                                <td title=e.cause>{e.latency_ms.map(|ms| format!("{ms:.0} ms")).unwrap_or_default()}</td>
                                <td>{e.at}</td>
                            </tr>
                        </For>
                    </tbody>
                </table>
            </Show>
        </section>
    }
}
