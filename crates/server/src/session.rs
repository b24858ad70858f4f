//! One WebSocket session engine for both wire protocols: the operation table, the select loop over reads, operation
//! output, timers and shutdown, the shared read limits, running each operation's GraphQL stream, task cleanup and the
//! closing handshake. A wire protocol is a small adapter, a [`Protocol`]: how client text becomes steps, what its
//! timers and errors look like, and how a result is framed — graphql-transport-ws in `transport.rs`, AWS AppSync's
//! real-time protocol in `appsync.rs`.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::parser::types::OperationType;
use axum::extract::ws::Message;
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use subsignal_protocol::transport_ws::CloseCode;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::Instrument;

use crate::fanout::{MemberSink, Membership, Offered, Operation, SharedEvent};
use crate::transport::{finish, incoming, panic_text, Bucket, Incoming, POLICY_VIOLATION};
use crate::{telemetry, AppState};

/// What handling one input leads to: messages to send, then perhaps a close.
pub(crate) struct Step<M> {
    pub(crate) send: Vec<M>,
    pub(crate) close: Option<(CloseCode, String)>,
}

impl<M> Step<M> {
    /// Nothing to do.
    pub(crate) fn none() -> Self {
        Step { send: Vec::new(), close: None }
    }

    /// One message to send.
    pub(crate) fn send(message: M) -> Self {
        Step { send: vec![message], close: None }
    }

    /// Close the connection.
    pub(crate) fn close(code: CloseCode, reason: impl Into<String>) -> Self {
        Step { send: Vec::new(), close: Some((code, reason.into())) }
    }
}

/// A wire protocol, as the engine drives it.
pub(crate) trait Protocol: Send + 'static {
    /// The protocol's name in logs and metrics.
    const NAME: &'static str;

    /// The protocol's server message.
    type Message: serde::Serialize + Send + Sync + 'static;

    /// Handles one text message; may start and stop operations in `session`. Asynchronous only to verify
    /// credentials, which may fetch keys from a JWKS URL.
    fn on_text(
        &mut self,
        session: &mut Session<Self>,
        text: &str,
    ) -> impl std::future::Future<Output = Step<Self::Message>> + Send
    where
        Self: Sized;

    /// A message over the size limit (`reason` says so).
    fn on_too_big(&mut self, reason: String) -> Step<Self::Message>;

    /// A binary message.
    fn on_binary(&mut self) -> Step<Self::Message>;

    /// The connection's first `ws-init-timeout` has passed.
    fn on_init_timeout(&mut self) -> Step<Self::Message>;

    /// The earliest expiry (seconds since the epoch) of the tokens in use; the connection closes with 4403 then.
    fn expires_at(&self) -> Option<i64>;

    /// How often to send [`Protocol::keepalive`], if the protocol has one.
    fn keepalive_every(&self) -> Option<Duration> {
        None
    }

    /// The keep-alive message, when one is due now.
    fn keepalive(&self) -> Option<Self::Message> {
        None
    }

    /// The text of the message carrying one result of operation `id` (`payload`: the GraphQL response, serialized
    /// once, whether one operation or a shared execution made it), or (`Err`) the message that ends the operation
    /// instead.
    fn result(id: &str, payload: &str, max_bytes: usize) -> Result<String, Self::Message>;

    /// The message ending operation `id` with `errors`.
    fn error(id: &str, errors: &[async_graphql::ServerError]) -> Self::Message;

    /// The message saying operation `id` completed.
    fn complete(id: &str) -> Self::Message;
}

/// What an operation sends to its connection: a message, that it ended, an event of the shared execution it is a
/// member of, or that it fell behind that execution and goes on privately.
///
/// Every variant fits in 16 bytes: a connection's queue allocates its first block of 32 slots as it opens, so the
/// size of this enum is memory per idle connection.
pub(crate) enum Outgoing<M> {
    /// Boxed: most of what a connection's queue carries is results, which are small.
    Frame(Box<M>),
    /// A result, framed as text.
    Text(Box<str>),
    /// The operation's task ended.
    Finished(Arc<OpKey>),
    Shared {
        op: Arc<OpKey>,
        event: Arc<SharedEvent>,
    },
    Resume {
        op: Arc<OpKey>,
        after: i64,
    },
}

/// Which run of an operation something comes from: its id, and the generation that run started with (an id reused
/// after a stop is a new run, whose output must not be confused with the old one's).
pub(crate) struct OpKey {
    id: String,
    generation: u64,
}

/// The operations of one connection: each runs as a task of its own, or as a member of a shared execution
/// ([`crate::fanout`]); either way its output comes back through the connection's queue.
pub(crate) struct Session<P: Protocol> {
    app: AppState,
    operations: HashMap<String, Running>,
    generation: u64,
    /// Operations the client started.
    started: u64,
    out: mpsc::Sender<Outgoing<P::Message>>,
}

/// One running operation and how it runs. Dropping it stops it.
struct Running {
    generation: u64,
    run: Run,
    /// Set for a subscription (counted while it runs); a query or mutation ends by itself, and a shutdown lets it
    /// finish, where it stops a subscription.
    subscription: Option<Subscribed>,
}

/// A running subscription in the [`telemetry::SUBSCRIPTIONS`] gauge; dropping it takes it out.
struct Subscribed(metrics::Gauge);

impl Subscribed {
    fn new<P: Protocol>() -> Self {
        let gauge = metrics::gauge!(telemetry::SUBSCRIPTIONS, "protocol" => P::NAME);
        gauge.increment(1.0);
        Subscribed(gauge)
    }
}

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// The counter of events delivered over protocol `P`.
fn delivered<P: Protocol>() -> metrics::Counter {
    metrics::counter!(telemetry::EVENTS_DELIVERED, "protocol" => P::NAME)
}

enum Run {
    Task(AbortHandle),
    /// A member of a shared execution, with what it asked (boxed: needed only to resume it privately). The
    /// membership leaves its group as it drops.
    Shared {
        _membership: Membership,
        op: Box<Operation>,
    },
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Run::Task(handle) = self {
            handle.abort();
        }
    }
}

/// A member of a shared execution, as its connection's queue.
struct Member<M> {
    out: mpsc::Sender<Outgoing<M>>,
    op: Arc<OpKey>,
}

impl<M: Send + 'static> MemberSink for Member<M> {
    fn offer(&self, event: &Arc<SharedEvent>) -> Offered {
        match self.out.try_send(Outgoing::Shared { op: self.op.clone(), event: event.clone() }) {
            Ok(()) => Offered::Sent,
            Err(mpsc::error::TrySendError::Full(_)) => Offered::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => Offered::Gone,
        }
    }

    fn resume(&self, after: i64) {
        let (out, op) = (self.out.clone(), self.op.clone());
        tokio::spawn(async move { out.send(Outgoing::Resume { op, after }).await });
    }
}

impl<P: Protocol> Session<P> {
    /// Whether operation `id` runs.
    pub(crate) fn running(&self, id: &str) -> bool {
        self.operations.contains_key(id)
    }

    /// How many operations run.
    pub(crate) fn count(&self) -> usize {
        self.operations.len()
    }

    /// Runs `op` as operation `id`: as a member of the shared execution of its equals when it may share, else as
    /// a task of its own.
    pub(crate) fn start(&mut self, id: String, op: Operation) {
        self.started += 1;
        self.generation += 1;
        let generation = self.generation;
        let key = Arc::new(OpKey { id: id.clone(), generation });
        let member = Member { out: self.out.clone(), op: key.clone() };
        let (run, subscription) = match self.app.fanout.join(&self.app, &op, Box::new(member)) {
            Some(membership) => {
                (Run::Shared { _membership: membership, op: Box::new(op) }, Some(Subscribed::new::<P>()))
            }
            None => {
                let ty = crate::http::operation_type(&op.query, op.operation_name.as_deref());
                let subscription = (ty == Some(OperationType::Subscription)).then(Subscribed::new::<P>);
                (Run::Task(self.spawn(key, op.request(), subscription.is_some())), subscription)
            }
        };
        self.operations.insert(id, Running { generation, run, subscription });
    }

    /// Stops every subscription (at shutdown); queries and mutations go on. Returns whether any still runs.
    fn stop_subscriptions(&mut self) -> bool {
        self.operations.retain(|_, running| running.subscription.is_none());
        !self.operations.is_empty()
    }

    /// Whether `op` is the operation's current run.
    fn current(&self, op: &OpKey) -> bool {
        self.operations.get(&op.id).is_some_and(|running| running.generation == op.generation)
    }

    /// Operation `id` fell behind its shared execution: it goes on as a task of its own after `after`, the seq of
    /// the last event it was given.
    fn resume(&mut self, op: &OpKey, after: i64) {
        if !self.current(op) {
            return;
        }
        let id = op.id.as_str();
        let Some(running) = self.operations.remove(id) else { return };
        let Run::Shared { op, .. } = &running.run else { return };
        let op = Operation { subscribed_at: after, ..(**op).clone() };
        self.generation += 1;
        let generation = self.generation;
        let key = Arc::new(OpKey { id: id.to_owned(), generation });
        let run = Run::Task(self.spawn(key, op.request(), true));
        self.operations.insert(id.to_owned(), Running { generation, run, subscription: Some(Subscribed::new::<P>()) });
    }

    /// What an operation sent: the text of a shared event, and the step it leads to.
    fn output(&mut self, output: Outgoing<P::Message>) -> (Option<String>, Step<P::Message>) {
        match output {
            Outgoing::Frame(message) => (None, Step::send(*message)),
            Outgoing::Text(text) => (Some(text.into_string()), Step::none()),
            Outgoing::Finished(op) => {
                if self.current(&op) {
                    self.operations.remove(&op.id);
                }
                (None, Step::none())
            }
            Outgoing::Shared { op, event } => self.shared(&op, &event),
            Outgoing::Resume { op, after } => {
                self.resume(&op, after);
                (None, Step::none())
            }
        }
    }

    /// One event of the shared execution operation `id` is a member of: the text to send (the payload, serialized
    /// once for every member, framed for this operation), or the messages ending the operation.
    fn shared(&mut self, op: &OpKey, event: &SharedEvent) -> (Option<String>, Step<P::Message>) {
        if !self.current(op) {
            return (None, Step::none());
        }
        let id = op.id.as_str();
        let last = match event {
            SharedEvent::Next { payload, .. } => match P::result(id, payload, self.app.config.max_message_bytes) {
                Ok(text) => {
                    delivered::<P>().increment(1);
                    return (Some(text), Step::none());
                }
                Err(last) => last,
            },
            SharedEvent::Error(errors) => P::error(id, errors),
            SharedEvent::Complete => P::complete(id),
        };
        self.operations.remove(id);
        (None, Step::send(last))
    }

    /// Runs `request` as operation `id` in a task of its own. Its results go out in order; a panic ends it with an
    /// error naming only a reference (the log has the rest).
    fn spawn(&self, key: Arc<OpKey>, request: async_graphql::Request, subscription: bool) -> AbortHandle {
        let delivered = subscription.then(delivered::<P>);
        let (app, out) = (self.app.clone(), self.out.clone());
        let span = tracing::info_span!("operation", id = %key.id);
        let task = async move {
            let op = key.id.as_str();
            let ran = std::panic::AssertUnwindSafe(run::<P>(&app, op, request, &out, delivered)).catch_unwind().await;
            if let Err(panic) = ran {
                let error = crate::schema::internal(format!("operation {op} panicked: {}", panic_text(&*panic)));
                let error = error.into_server_error(async_graphql::Pos::default());
                let _ = out.send(Outgoing::Frame(Box::new(P::error(op, &[error])))).await;
            }
            let _ = out.send(Outgoing::Finished(key)).await;
        };
        tokio::spawn(task.instrument(span)).abort_handle()
    }

    /// Stops operation `id`; false if it was not running.
    pub(crate) fn stop(&mut self, id: &str) -> bool {
        self.operations.remove(id).is_some()
    }
}

/// One operation's GraphQL stream, framed by the protocol: results, then `complete`; an error-only result ends it
/// with `error` and no `complete`. A full queue waits: a subscription reads at its own cursor, so waiting loses
/// nothing.
async fn run<P: Protocol>(
    app: &AppState,
    id: &str,
    request: async_graphql::Request,
    out: &mpsc::Sender<Outgoing<P::Message>>,
    delivered: Option<metrics::Counter>,
) {
    let mut responses = app.schema.execute_stream(request);
    while let Some(response) = responses.next().await {
        if only_errors(&response) {
            let _ = out.send(Outgoing::Frame(Box::new(P::error(id, &response.errors)))).await;
            return;
        }
        let payload = serde_json::to_string(&response).unwrap_or_default();
        match P::result(id, &payload, app.config.max_message_bytes) {
            Ok(text) => {
                if out.send(Outgoing::Text(text.into_boxed_str())).await.is_err() {
                    return;
                }
                if let Some(delivered) = &delivered {
                    delivered.increment(1);
                }
            }
            Err(last) => {
                let _ = out.send(Outgoing::Frame(Box::new(last))).await;
                return;
            }
        }
    }
    let _ = out.send(Outgoing::Frame(Box::new(P::complete(id)))).await;
}

/// Whether a response failed as a whole (no data, only errors): it ends its operation with `error`.
pub(crate) fn only_errors(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null && !response.errors.is_empty()
}

/// Messages one write may carry at most, beyond the one that woke the connection.
const BATCH: usize = 64;

/// Queues a step's messages on `sink` (a shared event's `text` first) without flushing.
async fn feed<S: Sink<Message> + Unpin, M: serde::Serialize>(
    sink: &mut S,
    text: Option<String>,
    step: &Step<M>,
) -> Result<(), S::Error> {
    let texts = text.into_iter().chain(step.send.iter().map(|m| serde_json::to_string(m).unwrap_or_default()));
    for text in texts {
        sink.feed(Message::Text(text.into())).await?;
    }
    Ok(())
}

/// The close at shutdown: 1001, going away.
fn going_away<M>() -> Step<M> {
    Step::close(CloseCode::GoingAway, "Server is shutting down")
}

/// How a connection ended.
struct Ended {
    /// The close code: the server's, the client's, or 1006 when the socket went without a close frame.
    code: u16,
    /// Who closed: `server`, `client`, or `network` (no close frame).
    by: &'static str,
    /// Operations the client started.
    operations: u64,
}

/// Speaks `protocol` with `client` over any message sink and stream (a WebSocket's halves; the fuzz harness passes
/// in-memory ones) until either side closes, a limit or a token's expiry closes it, or the server shuts down; then
/// stops every operation and closes. Logs one line for the connection as it ends (protocol, client, close code,
/// duration, operations); what its operations log carries the connection's `websocket` span.
///
/// The task of a connection lives as long as the connection, so its size is memory per idle subscriber. Neither this
/// nor [`converse`] is an `async fn`: an `async fn` keeps its arguments in its state beside the locals they move
/// into (the inner future here), for the whole life of the connection; an `async` block that uses what it captures
/// in place keeps them once.
pub(crate) fn serve<P, S, R>(
    app: AppState,
    client: IpAddr,
    protocol: P,
    sink: S,
    stream: R,
) -> impl Future<Output = ()> + Send + use<P, S, R>
where
    P: Protocol,
    S: Sink<Message> + Unpin + Send + 'static,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin + Send + 'static,
{
    let opened = std::time::Instant::now();
    let span = tracing::info_span!("websocket", protocol = P::NAME, %client);
    let conversation = converse(app, protocol, sink, stream).instrument(span.clone());
    async move {
        let connections = metrics::gauge!(telemetry::CONNECTIONS, "protocol" => P::NAME);
        connections.increment(1.0);
        let ended = conversation.await;
        connections.decrement(1.0);
        tracing::info!(
            parent: &span,
            close_code = ended.code,
            closed_by = ended.by,
            duration_ms = opened.elapsed().as_millis() as u64,
            operations = ended.operations,
            "websocket connection closed"
        );
    }
}

fn converse<P, S, R>(
    app: AppState,
    mut protocol: P,
    mut sink: S,
    mut stream: R,
) -> impl Future<Output = Ended> + Send + use<P, S, R>
where
    P: Protocol,
    S: Sink<Message> + Unpin + Send + 'static,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin + Send + 'static,
{
    let (out, mut outgoing) = mpsc::channel::<Outgoing<P::Message>>(256);
    // The session's copy of the state is the only one the conversation keeps.
    let mut session = Session::<P> { app, operations: HashMap::new(), generation: 0, started: 0, out };
    async move {
        // The client's close code, when the client closed.
        let mut client_closed = None;
        let mut bucket = Bucket::new(session.app.config.max_messages_per_sec);
        let init_deadline = tokio::time::sleep(session.app.config.ws_init_timeout);
        tokio::pin!(init_deadline);
        let mut init_passed = false;
        let keepalive_every = protocol.keepalive_every();
        let period = keepalive_every.unwrap_or(Duration::from_secs(3600));
        let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        // Fires when the server's clock passes the earliest expiry of the tokens in use (armed once there is one).
        let mut expiry: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(std::future::pending());
        let mut armed_for = None;
        // One future for the whole session: a fresh `changed()` per loop turn would register with (and leave) the
        // server-wide shutdown channel's waiter list at every event of every connection.
        let mut shutdown = session.app.shutdown.clone();
        let shutdown = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        tokio::pin!(shutdown);
        // Once the server shuts down: the session reads no more, its subscriptions stop, and its queries and mutations
        // under way finish (until `shutdown-grace-ms` has passed), then it closes with 1001.
        let mut draining = false;
        let drain_deadline = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(drain_deadline);
        let close_with = 'session: loop {
            // A shared execution's event, already framed as text: it goes out before the step's messages.
            let mut text = None;
            let step = tokio::select! {
                _ = &mut init_deadline, if !init_passed => {
                    init_passed = true;
                    protocol.on_init_timeout()
                }
                _ = &mut expiry, if armed_for.is_some() => {
                    Step::close(CloseCode::Forbidden, "Forbidden: a token expired; reconnect with a fresh one")
                }
                _ = keepalive.tick(), if keepalive_every.is_some() => protocol.keepalive().map_or_else(Step::none, Step::send),
                // Polled no more once it fired.
                _ = &mut shutdown, if !draining => {
                    draining = true;
                    drain_deadline.as_mut().reset(tokio::time::Instant::now() + session.app.config.shutdown_grace);
                    if session.stop_subscriptions() { Step::none() } else { going_away() }
                }
                _ = &mut drain_deadline, if draining => going_away(),
                read = stream.next(), if !draining => match incoming(&session.app, &mut bucket, read) {
                    Incoming::Gone(code) => {
                        client_closed = code;
                        break None;
                    }
                    Incoming::TooBig(reason) => protocol.on_too_big(reason),
                    Incoming::TooFast(reason) => Step::close(POLICY_VIOLATION, reason),
                    // Boxed: verifying credentials may fetch keys (a JWKS URL), a future of several KiB that would
                    // otherwise widen every connection's task for its whole life, where it runs for a moment per message.
                    Incoming::Text(text) => Box::pin(protocol.on_text(&mut session, text.as_str())).await,
                    Incoming::Binary => protocol.on_binary(),
                    Incoming::Ignored => Step::none(),
                },
                Some(output) = outgoing.recv() => {
                    let (framed, step) = session.output(output);
                    text = framed;
                    step
                }
            };
            let expires_at = protocol.expires_at();
            if expires_at != armed_for {
                if let Some(exp) = expires_at {
                    expiry = Box::pin(session.app.storage.clock().sleep_until_ms(exp.saturating_mul(1000)));
                }
                armed_for = expires_at;
            }
            if feed(&mut sink, text, &step).await.is_err() {
                break 'session None;
            }
            if let Some(close) = step.close {
                break Some(close);
            }
            // What the operations queued meanwhile goes out in the same write: a burst of events costs one flush.
            for _ in 0..BATCH {
                let Ok(output) = outgoing.try_recv() else { break };
                let (text, step) = session.output(output);
                if feed(&mut sink, text, &step).await.is_err() {
                    break 'session None;
                }
                if let Some(close) = step.close {
                    break 'session Some(close);
                }
            }
            if sink.flush().await.is_err() {
                break 'session None;
            }
            if draining && session.operations.is_empty() {
                break going_away::<P::Message>().close;
            }
        };
        session.operations.clear();
        let ended = match (&close_with, client_closed) {
            (Some((code, _)), _) => Ended { code: code.code(), by: "server", operations: session.started },
            (None, Some(code)) => Ended { code, by: "client", operations: session.started },
            (None, None) => Ended { code: 1006, by: "network", operations: session.started },
        };
        // Boxed: the closing handshake's state would otherwise widen every connection's task for its whole life.
        Box::pin(finish(sink, stream, close_with)).await;
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::Outgoing;

    #[test]
    fn a_queue_slot_is_small() {
        assert!(size_of::<Outgoing<()>>() <= 24, "{} bytes", size_of::<Outgoing<()>>());
    }
}
