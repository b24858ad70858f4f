//! A native shell around the store core, for tests that need several store clients and no browser.
//!
//! [`StoreClient`] drives `subsignal-store`'s sans-IO [`Store`] — the very core the npm package runs in a browser —
//! with tokio instead of `web_sys`: tokio-tungstenite for the WebSocket, reqwest for HTTP, one timer at
//! [`Store::next_wake_ms`]. The shell only carries out what the core asks for; reconnecting with backoff, resuming by
//! `afterSeq`, the mutation queue and its retries, and dropping duplicate events are all the core's, so a test
//! through this shell tests what a browser would run. Each client lives on a thread of its own (the core is not
//! `Send`), and answers [`StoreClient::state`] with what it holds.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use subsignal_store::{
    CollectionConfig, CollectionStats, ConnectionConfig, HttpRequest, HttpResponse, Input, Mutation, MutationError,
    Output, Store, StoreConfig,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use crate::WAIT;

/// The one collection a client keeps live: the caller's orders, through `onOrderChanged(afterSeq)`.
pub const ORDERS: &str = "orders";

/// The order fields a client keeps.
const FIELDS: &str = "id owner customerName status version";

/// The mutation a client queues to place an order; `customerName` names the mutation that made it.
pub const CREATE_ORDER: &str = "mutation($input: CreateOrderInput!, $clientMutationId: ID) { \
    createOrder(input: $input, clientMutationId: $clientMutationId) { id owner customerName status version } }";

/// The orders collection of a store client.
pub fn orders_collection() -> CollectionConfig {
    CollectionConfig::new(ORDERS)
        .subscription(
            format!(
                "subscription($afterSeq: Int) {{ onOrderChanged(afterSeq: $afterSeq) {{ seq prevSeq op key version \
                 expired order {{ {FIELDS} }} }} }}"
            ),
            "onOrderChanged",
            "order",
        )
        .snapshot(
            format!(
                "query($limit: Int, $nextToken: String) {{ listOrders(limit: $limit, nextToken: $nextToken) {{ \
                 items {{ {FIELDS} }} nextToken seq }} }}"
            ),
            "listOrders",
        )
        .page_size(100)
}

/// A mutation placing an order named `name`, with `name` as its client mutation id too.
pub fn create_order(name: &str) -> Mutation {
    Mutation::new(CREATE_ORDER, json!({"input": crate::sample_input(name)}), "createOrder").with_id(name)
}

/// What a store client holds and has seen, read by [`StoreClient::state`].
#[derive(Debug, Clone, Default)]
pub struct ClientState {
    /// The collection's visible rows, in key order.
    pub rows: Vec<Value>,
    /// Whether the collection is live (snapshot taken, subscription running).
    pub live: bool,
    /// The collection's `lastSeq`.
    pub last_seq: Option<i64>,
    /// The collection's counters (events, applied, duplicates, gaps, subscriptions, snapshots, resyncs).
    pub stats: CollectionStats,
    /// Mutations not yet settled.
    pub pending: usize,
    /// Mutations the server acknowledged: their ids and the entities it returned.
    pub acknowledged: Vec<(String, Value)>,
    /// Mutations the server refused, with why.
    pub refused: Vec<(String, MutationError)>,
    /// Every seq that `lastSeq` moved through by applying a change event, in order. With every change visible to the
    /// client (as in the fault tests), applying each seq once means: this list is `snapshot seq + 1 ..= lastSeq`
    /// with no repeat, and as long as `stats.applied`.
    pub applied_seqs: Vec<i64>,
    /// The `lastSeq` each snapshot left, in order.
    pub snapshot_seqs: Vec<i64>,
    /// Sockets the client opened (the first connection included).
    pub sockets: u64,
}

impl ClientState {
    /// Checks that every seq after the first snapshot was applied exactly once, in order, and that nothing else moved
    /// `lastSeq` (no second snapshot: the client resumed by `afterSeq` each time). `who` names the client in
    /// failures.
    pub fn assert_each_seq_applied_once(&self, who: &str) {
        let [snapshot] = self.snapshot_seqs[..] else {
            panic!(
                "{who}: expected one snapshot and resumes by afterSeq after it, got snapshots at {:?}",
                self.snapshot_seqs
            )
        };
        let last = self.last_seq.unwrap_or_else(|| panic!("{who}: the collection never went live"));
        let expected: Vec<i64> = (snapshot + 1..=last).collect();
        assert_eq!(self.applied_seqs, expected, "{who}: each seq after the snapshot applied once, in order");
        assert_eq!(self.stats.applied, expected.len() as u64, "{who}: as many applications as seqs");
        assert_eq!(self.stats.resyncs, 0, "{who}: no resync was needed");
    }
}

enum Command {
    Mutate(Box<Mutation>),
    Read(oneshot::Sender<ClientState>),
}

/// A store client on a thread of its own, connected to one server address (through a proxy, possibly).
pub struct StoreClient {
    commands: mpsc::UnboundedSender<Command>,
    changed: watch::Receiver<u64>,
    name: String,
}

impl StoreClient {
    /// Starts a client named `name` that keeps [`ORDERS`] live at `http` (`http://host:port`) with `token`, its
    /// randomness from `seed`. It connects at once and reconnects whenever its connection drops.
    pub fn start(name: &str, http: &str, token: &str, seed: u64) -> StoreClient {
        let mut config = StoreConfig::new(seed);
        config.auth = Some(json!({"Authorization": format!("Bearer {token}")}));
        config.collections = vec![orders_collection()];
        // Quick to notice a dead server and quick to come back: the faults last seconds here, not minutes.
        config.connection = ConnectionConfig {
            connect_timeout_ms: 2_000,
            ack_timeout_ms: 2_000,
            ping_interval_ms: 1_000,
            pong_timeout_ms: 2_000,
            backoff_base_ms: 50,
            backoff_cap_ms: 500,
        };
        let urls = Urls { http: format!("{http}/graphql"), ws: format!("{}/graphql", http.replacen("http", "ws", 1)) };
        let (commands, inbox) = mpsc::unbounded_channel();
        let (bump, changed) = watch::channel(0);
        let thread_name = format!("store-{name}");
        std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                runtime.block_on(Shell::new(Store::new(config), urls, bump).run(inbox));
            })
            .expect("a thread for the store client");
        StoreClient { commands, changed, name: name.to_owned() }
    }

    /// The client's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Queues a mutation, as a user's action would.
    pub fn mutate(&self, mutation: Mutation) {
        self.commands.send(Command::Mutate(Box::new(mutation))).expect("the store client runs");
    }

    /// What the client holds now.
    pub async fn state(&self) -> ClientState {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Read(reply)).expect("the store client runs");
        answer.await.expect("the store client answers")
    }

    /// Waits until `done` holds for the client's state (checked after every input the client handles), and returns
    /// that state; fails the test, naming `what` and showing the last state, after [`WAIT`].
    pub async fn until(&self, what: &str, done: impl Fn(&ClientState) -> bool) -> ClientState {
        let mut changed = self.changed.clone();
        let deadline = Instant::now() + WAIT;
        loop {
            let state = self.state().await;
            if done(&state) {
                return state;
            }
            changed.borrow_and_update();
            if tokio::time::timeout_at(deadline, changed.changed()).await.is_err() {
                let state = self.state().await;
                if done(&state) {
                    return state;
                }
                panic!("store client {}: gave up waiting for {what}; it holds {state:#?}", self.name);
            }
        }
    }
}

struct Urls {
    http: String,
    ws: String,
}

/// The IO around one [`Store`].
struct Shell {
    store: Store,
    urls: Urls,
    started: Instant,
    http: reqwest::Client,
    /// Inputs from socket and HTTP tasks.
    events: (mpsc::UnboundedSender<Input>, mpsc::UnboundedReceiver<Input>),
    /// Each open socket's outbox and the task that runs it.
    sockets: HashMap<u64, (mpsc::UnboundedSender<Message>, AbortHandle)>,
    seen: ClientState,
    bump: watch::Sender<u64>,
}

impl Shell {
    fn new(store: Store, urls: Urls, bump: watch::Sender<u64>) -> Shell {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("HTTP client");
        Shell {
            store,
            urls,
            started: Instant::now(),
            http,
            events: mpsc::unbounded_channel(),
            sockets: HashMap::new(),
            seen: ClientState::default(),
            bump,
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        self.handle(Input::Connect);
        loop {
            let wake = self.store.next_wake_ms().map(|ms| self.started + Duration::from_millis(ms));
            let input = tokio::select! {
                Some(input) = self.events.1.recv() => input,
                command = commands.recv() => match command {
                    // The test dropped its handle: stop, closing the sockets.
                    None => return,
                    Some(Command::Mutate(mutation)) => Input::Mutate(*mutation),
                    Some(Command::Read(reply)) => {
                        let _ = reply.send(self.state());
                        continue;
                    }
                },
                () = sleep_until(wake) => Input::Tick,
            };
            self.handle(input);
        }
    }

    /// Feeds one input to the store, carries out its outputs and notes what changed.
    fn handle(&mut self, input: Input) {
        let before = self.store.collection(ORDERS).map(|c| (c.stats(), c.last_seq()));
        let now = self.started.elapsed().as_millis() as u64;
        for output in self.store.handle(now, input) {
            self.carry_out(output);
        }
        let after = self.store.collection(ORDERS).map(|c| (c.stats(), c.last_seq()));
        if let (Some((stats, last)), Some((new_stats, Some(new_last)))) = (before, after) {
            if new_stats.applied > stats.applied {
                self.seen.applied_seqs.extend(last.unwrap_or(new_last) + 1..=new_last);
            }
            if new_stats.snapshots > stats.snapshots {
                self.seen.snapshot_seqs.push(new_last);
            }
        }
        self.bump.send_modify(|n| *n += 1);
    }

    fn state(&self) -> ClientState {
        let collection = self.store.collection(ORDERS).expect("the orders collection");
        ClientState {
            rows: collection.rows(),
            live: collection.is_live(),
            last_seq: collection.last_seq(),
            stats: collection.stats(),
            pending: self.store.status().pending_mutations,
            ..self.seen.clone()
        }
    }

    fn carry_out(&mut self, output: Output) {
        match output {
            Output::OpenSocket { socket, subprotocol, query } => self.open(socket, &subprotocol, query),
            Output::CloseSocket { socket, code, reason } => {
                if let Some((outbox, task)) = self.sockets.remove(&socket) {
                    let frame = CloseFrame { code: code.into(), reason: reason.into() };
                    if outbox.send(Message::Close(Some(frame))).is_err() {
                        task.abort();
                    }
                }
            }
            Output::Send { socket, message } => self.send(socket, serde_json::to_string(&message)),
            Output::SendAppSync { socket, message } => self.send(socket, serde_json::to_string(&message)),
            Output::Http(request) => self.post(request),
            Output::MutationSettled { id, result } => match result {
                Ok(entity) => self.seen.acknowledged.push((id, entity)),
                Err(error) => self.seen.refused.push((id, error)),
            },
            Output::Row { .. }
            | Output::MutationQueued { .. }
            | Output::Status(_)
            | Output::AuthRequired
            | Output::Warning(_)
            | Output::Collection { .. }
            | Output::View { .. }
            | Output::Persist => {}
        }
    }

    fn send(&self, socket: u64, text: serde_json::Result<String>) {
        if let Some((outbox, _)) = self.sockets.get(&socket) {
            let _ = outbox.send(Message::Text(text.expect("a serializable message").into()));
        }
    }

    /// Opens a WebSocket; its task reports the opening, every text frame and the close as inputs.
    fn open(&mut self, socket: u64, subprotocol: &str, query: Option<String>) {
        self.seen.sockets += 1;
        let url = match query {
            Some(query) => format!("{}?{query}", self.urls.ws),
            None => self.urls.ws.clone(),
        };
        let mut request = url.into_client_request().expect("a WebSocket URL");
        request.headers_mut().insert("sec-websocket-protocol", subprotocol.parse().expect("a subprotocol"));
        let (outbox, mut outgoing) = mpsc::unbounded_channel::<Message>();
        let events = self.events.0.clone();
        let task = tokio::spawn(async move {
            let closed = |code: u16, reason: String| Input::SocketClosed { socket, code, reason };
            let ws = match tokio_tungstenite::connect_async(request).await {
                Ok((ws, _)) => ws,
                Err(e) => return drop(events.send(closed(1006, e.to_string()))),
            };
            let _ = events.send(Input::SocketOpened { socket });
            let (mut sink, mut stream) = ws.split();
            loop {
                tokio::select! {
                    message = outgoing.recv() => match message {
                        Some(message) => {
                            let closing = matches!(message, Message::Close(_));
                            if sink.send(message).await.is_err() || closing {
                                return;
                            }
                        }
                        None => return,
                    },
                    read = stream.next() => match read {
                        Some(Ok(Message::Text(text))) => {
                            let _ = events.send(Input::Frame { socket, text: text.as_str().to_owned() });
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let (code, reason) =
                                frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                            return drop(events.send(closed(code, reason)));
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return drop(events.send(closed(1006, e.to_string()))),
                        None => return drop(events.send(closed(1006, "the connection ended".into()))),
                    },
                }
            }
        });
        self.sockets.insert(socket, (outbox, task.abort_handle()));
    }

    /// Performs an HTTP request; its answer comes back as an input.
    fn post(&self, request: HttpRequest) {
        let HttpRequest { request_id, headers, body, .. } = request;
        let mut post = self.http.post(&self.urls.http).json(&body);
        for (name, value) in headers {
            post = post.header(name, value);
        }
        let events = self.events.0.clone();
        tokio::spawn(async move {
            let response = match post.send().await {
                Err(e) => HttpResponse::NetworkError { message: e.to_string() },
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.json::<Value>().await {
                        Ok(body) if (200..300).contains(&status) => HttpResponse::Ok { body },
                        Ok(body) => HttpResponse::Status { status, body: Some(body) },
                        Err(_) if (200..300).contains(&status) => {
                            HttpResponse::NetworkError { message: "the body ended early or is not JSON".into() }
                        }
                        Err(_) => HttpResponse::Status { status, body: None },
                    }
                }
            };
            let _ = events.send(Input::Http { request_id, response });
        });
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
