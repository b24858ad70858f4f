//! What the user waits for, made visible: the connection badge and the event log with the time from a mutation to
//! the event that confirmed it.

use std::collections::{HashMap, VecDeque};

use leptos::prelude::*;
use serde_json::Value;
use subsignal_leptos::{BrowserStore, ConnectionStatus, RowChange, RowOrigin, StatusSignals};

use crate::api::{str_field, ORDERS};
use crate::app::Session;
use crate::travel::{Scrubber, Travel};

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    n: u64,
    at: String,
    /// The event's own seq; `None` for rows a snapshot brought, rows restored from the persisted copy, and this
    /// tab's own optimistic changes.
    seq: Option<i64>,
    /// `event`, `snapshot`, `restored` or `local`.
    origin: &'static str,
    op: &'static str,
    order: String,
    status: String,
    /// Milliseconds from the user's mutation (or from the order's previous event, for worker steps) to this event.
    latency_ms: Option<f64>,
    cause: &'static str,
}

/// One submission, measured: how long until the UI showed the order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    n: usize,
    ms: f64,
    optimistic: bool,
}

/// A submission waiting for its order's first event.
#[derive(Debug, Clone, Copy)]
struct Submit {
    id: u64,
    at: f64,
    optimistic: bool,
}

#[derive(Default)]
struct Timing {
    /// Submissions waiting for their order's first event, oldest first.
    submits: VecDeque<Submit>,
    next_submit: u64,
    /// Optimistic submissions waiting for their placeholder row, oldest first.
    placeholders: VecDeque<f64>,
    /// When each order last changed, to time the worker's steps.
    last_event: HashMap<String, f64>,
    /// Orders whose creation this tab confirmed, with the submit time and mode, when the result came before the event.
    confirmed: HashMap<String, (f64, bool)>,
    count: u64,
}

/// The event log's state: the last 50 events, newest first.
#[derive(Clone, Copy)]
pub(crate) struct Events {
    log: RwSignal<Vec<Event>>,
    /// Submit → UI-confirmed per submission: the placeholder in optimistic mode, the server's event otherwise.
    samples: RwSignal<Vec<Sample>>,
    timing: StoredValue<Timing>,
}

impl Events {
    pub(crate) fn new() -> Self {
        Events {
            log: RwSignal::new(Vec::new()),
            samples: RwSignal::new(Vec::new()),
            timing: StoredValue::new(Timing::default()),
        }
    }

    /// Notes a submission, to time the event that confirms it; gives its id for [`Events::confirmed`] or
    /// [`Events::refused`].
    pub(crate) fn submitted(&self, optimistic: bool) -> u64 {
        let now = now_ms();
        let mut id = 0;
        self.timing.update_value(|t| {
            t.next_submit += 1;
            id = t.next_submit;
            t.submits.push_back(Submit { id, at: now, optimistic });
            if optimistic {
                t.placeholders.push_back(now);
            }
        });
        id
    }

    /// Forgets a submission the server refused: no event will confirm it, and the next order must not be timed from
    /// it.
    pub(crate) fn refused(&self, submit: u64) {
        self.timing.update_value(|t| t.submits.retain(|s| s.id != submit));
    }

    fn sample(&self, ms: f64, optimistic: bool) {
        self.samples.try_update(|s| {
            let n = s.len() + 1;
            s.push(Sample { n, ms, optimistic });
            if s.len() > 60 {
                s.remove(0);
            }
        });
    }

    /// Notes the server's result of a create (it may arrive before or after the order's event).
    pub(crate) fn confirmed(&self, submit: u64, order: &Value) {
        let id = str_field(order, "id").to_owned();
        self.timing.update_value(|t| {
            if !t.last_event.contains_key(&id) {
                if let Some(i) = t.submits.iter().position(|s| s.id == submit) {
                    let s = t.submits.remove(i).expect("a position in range");
                    t.confirmed.insert(id, (s.at, s.optimistic));
                }
            }
        });
    }

    /// Logs every change of the orders collection.
    pub(crate) fn follow(&self, store: &BrowserStore) {
        let this = *self;
        let reader = store.clone();
        store
            .on_row(move |collection, change, origin| {
                if collection != ORDERS {
                    return;
                }
                let key = change.key().to_owned();
                if key.starts_with("pending-") {
                    if matches!(change, RowChange::Inserted { .. }) {
                        let at = this.timing.try_update_value(|t| t.placeholders.pop_front()).flatten();
                        if let Some(at) = at {
                            this.sample(now_ms() - at, true);
                        }
                    }
                    return;
                }
                let row = reader.row(ORDERS, &key);
                let (seq, origin) = match *origin {
                    RowOrigin::Event { seq } => (seq, "event"),
                    RowOrigin::Fetch => (None, "snapshot"),
                    RowOrigin::Local => (None, "local"),
                    RowOrigin::Restore => (None, "restored"),
                };
                let now = now_ms();
                let (op, status) = match change {
                    RowChange::Inserted { .. } => ("INSERT", row.as_ref().map(|r| str_field(r, "status").to_owned())),
                    RowChange::Updated { .. } => ("MODIFY", row.as_ref().map(|r| str_field(r, "status").to_owned())),
                    RowChange::Removed { expired: true, .. } => ("EXPIRED", None),
                    RowChange::Removed { .. } => ("REMOVE", None),
                };
                let fresh = row.as_ref().and_then(|r| r.get("version")).and_then(Value::as_i64) == Some(1);
                let (latency_ms, cause, server_driven) = this
                    .timing
                    .try_update_value(|t| {
                        t.count += 1;
                        let previous = t.last_event.insert(key.clone(), now);
                        if let Some((at, optimistic)) = t.confirmed.remove(&key) {
                            return (Some(now - at), "since submit", !optimistic);
                        }
                        match (op, previous) {
                            // A new order (version 1): the event of one of our submissions. Rows a snapshot
                            // brings in are older, and must not take a submission's place.
                            ("INSERT", None) if fresh => match t.submits.pop_front() {
                                Some(s) => (Some(now - s.at), "since submit", !s.optimistic),
                                None => (None, "", false),
                            },
                            (_, Some(prev)) => (Some(now - prev), "since previous", false),
                            _ => (None, "", false),
                        }
                    })
                    .unwrap_or((None, "", false));
                if let (true, Some(ms)) = (server_driven, latency_ms) {
                    this.sample(ms, false);
                }
                let n = this.timing.try_with_value(|t| t.count).unwrap_or_default();
                let event = Event {
                    n,
                    at: js_sys::Date::new_0().to_locale_time_string("en-GB").as_string().unwrap_or_default(),
                    seq,
                    origin,
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
    let viewing = expect_context::<Travel>().viewing;
    view! {
        <section class="card log" aria-labelledby="log-title">
            <h2 id="log-title">"Events"</h2>
            <Scrubber/>
            <Show when=move || log.with(|l| !l.is_empty()) fallback=|| view! { <p class="empty">"No events yet."</p> }>
                <table>
                    <thead><tr><th>"seq"</th><th>"op"</th><th>"order"</th><th>"status"</th><th>"waited"</th><th>"at"</th></tr></thead>
                    <tbody>
                        <For each=move || log.get() key=|e| e.n let(e)>
                            <tr data-op=e.op data-origin=e.origin data-cause=e.cause
                                class:viewed=move || e.seq.is_some() && viewing.get() == e.seq
                                data-ms=e.latency_ms.map(|ms| format!("{ms:.1}"))>
                                <td>{e.seq.map_or_else(|| e.origin.to_owned(), |s| s.to_string())}</td>
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

/// Submit → UI-confirmed per submission, drawn as bars: blue for server-driven (the server's event), green for
/// optimistic (the placeholder).
#[component]
pub(crate) fn LatencyChart() -> impl IntoView {
    let session = expect_context::<Session>();
    let samples = session.events.samples;
    const W: f64 = 600.0;
    const H: f64 = 160.0;
    let scale = move || samples.with(|s| s.iter().map(|x| x.ms).fold(50.0_f64, f64::max) * 1.1);
    view! {
        <section class="card chart" aria-labelledby="chart-title">
            <h2 id="chart-title">"Submit → on screen"</h2>
            <Show when=move || samples.with(|s| !s.is_empty())
                fallback=|| view! { <p class="empty">"Place orders in both modes to compare what you wait for."</p> }>
                <svg viewBox=format!("0 0 {W} {}", H + 20.0) role="img" data-testid="chart"
                    aria-label="Milliseconds from submit to the order on screen, per order">
                    <line x1="0" y1=H x2=W y2=H class="axis"/>
                    <text x="2" y="12" class="label">{move || format!("{:.0} ms", scale())}</text>
                    <For each=move || samples.get() key=|s| s.n let(s)>
                        {move || {
                            let count = samples.with(Vec::len).max(1) as f64;
                            let first = samples.with(|v| v.first().map_or(1, |f| f.n));
                            let width = (W / count.max(10.0)).min(40.0);
                            let x = (s.n - first) as f64 * width;
                            let height = (s.ms / scale() * H).max(1.0);
                            view! {
                                <rect x=x + 1.0 y=H - height width=width - 2.0 height=height
                                    class=if s.optimistic { "bar optimistic" } else { "bar server" }
                                    data-ms=format!("{:.1}", s.ms) data-mode=if s.optimistic { "optimistic" } else { "server" }>
                                    <title>{format!("{:.0} ms ({})", s.ms, if s.optimistic { "optimistic" } else { "server-driven" })}</title>
                                </rect>
                            }
                        }}
                    </For>
                    <text x="2" y=H + 16.0 class="label legend-server">"■ server-driven"</text>
                    <text x="120" y=H + 16.0 class="label legend-optimistic">"■ optimistic"</text>
                </svg>
            </Show>
        </section>
    }
}
