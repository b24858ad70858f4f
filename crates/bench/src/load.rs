//! The load generator: subscribed WebSockets speaking graphql-transport-ws, and one writer sending `createNote`
//! mutations over its own socket. It drives every server the same way, so client cost is identical for all of them.
//!
//! Each mutation's title says what it is: `p<k>` for probe `k` (sent until every subscriber has seen one, since
//! graphql-transport-ws has no subscribe acknowledgement), `t<µs>` for a timed one (the send time since the run's
//! base instant, which the subscriber that receives it subtracts from its own clock).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::stream::{SplitSink, StreamExt};
use futures_util::SinkExt;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The subscription every subscriber runs.
const SUBSCRIPTION: &str = "subscription { onCreateNote { id title body color owner updatedAt } }";
/// The mutation the writer sends.
const MUTATION: &str = "mutation($input: CreateNoteInput!) { createNote(input: $input) { id } }";
/// Sockets opened at once while a crowd connects.
const CONNECTING_AT_ONCE: usize = 128;

/// Where and how to connect: the graphql-transport-ws URL and the `connection_init` payload.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) init: serde_json::Value,
}

/// What the subscribers saw, shared by their tasks.
#[derive(Debug)]
struct Seen {
    base: Instant,
    /// `next` messages of timed mutations received, all subscribers together.
    timed: AtomicU64,
    /// When `timed` reached `timed_target`.
    reached: Mutex<Option<Instant>>,
    timed_target: AtomicU64,
    /// Receipts of the current probe.
    probe: AtomicU64,
    probe_hits: AtomicU64,
    /// Latencies in µs, recorded only while a latency run is on.
    latencies: Mutex<Option<Vec<u32>>>,
    /// Subscribers whose socket the server closed.
    closed: AtomicU64,
}

impl Seen {
    fn micros(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }

    fn next_message(&self, text: &str) {
        let Some(title) = title_of(text) else { return };
        if let Some(probe) = title.strip_prefix('p') {
            if probe.parse::<u64>().ok() == Some(self.probe.load(Ordering::Acquire)) {
                self.probe_hits.fetch_add(1, Ordering::AcqRel);
            }
            return;
        }
        let Some(sent) = title.strip_prefix('t').and_then(|t| t.parse::<u64>().ok()) else { return };
        let now = self.micros();
        if let Some(latencies) = self.latencies.lock().unwrap().as_mut() {
            latencies.push(now.saturating_sub(sent).min(u32::MAX as u64) as u32);
        }
        let count = self.timed.fetch_add(1, Ordering::AcqRel) + 1;
        if count == self.timed_target.load(Ordering::Acquire) {
            *self.reached.lock().unwrap() = Some(Instant::now());
        }
    }
}

/// The `title` of a `next` message's note, without parsing the rest.
fn title_of(text: &str) -> Option<&str> {
    if !text.contains("\"next\"") {
        return None;
    }
    let start = text.find("\"title\":\"")? + "\"title\":\"".len();
    let len = text[start..].find('"')?;
    Some(&text[start..start + len])
}

/// Opens a socket, offers graphql-transport-ws, and waits for `connection_ack`.
async fn connect(target: &Target) -> Result<Socket> {
    let mut request = target.url.as_str().into_client_request()?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .with_context(|| format!("cannot open a WebSocket to {} (is `ulimit -n` high enough?)", target.url))?;
    let init = json!({ "type": "connection_init", "payload": target.init }).to_string();
    socket.send(Message::text(init)).await?;
    let acked = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(message) = socket.next().await {
            if let Message::Text(text) = message? {
                if text.contains("\"connection_ack\"") {
                    return Ok(());
                }
                bail!("expected connection_ack, got {text}");
            }
        }
        bail!("the server closed the socket before connection_ack")
    })
    .await;
    acked.context("no connection_ack within 20 s")??;
    Ok(socket)
}

/// A crowd of subscribed sockets and the writer.
pub(crate) struct Crowd {
    seen: Arc<Seen>,
    size: u64,
    readers: Vec<JoinHandle<()>>,
    writer: SplitSink<Socket, Message>,
    writer_errors: Arc<Mutex<Vec<String>>>,
    sent: u64,
}

impl Drop for Crowd {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
    }
}

impl Crowd {
    /// Opens `size` sockets, each subscribed once, plus the writer; returns when every subscriber has received a
    /// probe, so every subscription is live. Prints progress while connecting.
    pub(crate) async fn gather(target: &Target, size: usize) -> Result<Crowd> {
        let seen = Arc::new(Seen {
            base: Instant::now(),
            timed: AtomicU64::new(0),
            reached: Mutex::new(None),
            timed_target: AtomicU64::new(u64::MAX),
            probe: AtomicU64::new(0),
            probe_hits: AtomicU64::new(0),
            latencies: Mutex::new(None),
            closed: AtomicU64::new(0),
        });
        let opened = AtomicU64::new(0);
        let sockets: Vec<Result<Socket>> = futures_util::stream::iter(0..size)
            .map(|_| async {
                let mut socket = connect(target).await?;
                let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIPTION } });
                socket.send(Message::text(subscribe.to_string())).await?;
                let n = opened.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(2000) {
                    println!("    {n}/{size} sockets subscribed");
                }
                Ok(socket)
            })
            .buffer_unordered(CONNECTING_AT_ONCE)
            .collect()
            .await;
        let mut readers = Vec::with_capacity(size);
        for socket in sockets {
            let (_, mut stream) = socket?.split();
            let seen = seen.clone();
            readers.push(tokio::spawn(async move {
                while let Some(Ok(message)) = stream.next().await {
                    if let Message::Text(text) = message {
                        seen.next_message(text.as_str());
                    }
                }
                seen.closed.fetch_add(1, Ordering::AcqRel);
            }));
        }
        let (writer, mut responses) = connect(target).await?.split();
        let writer_errors = Arc::new(Mutex::new(Vec::new()));
        let errors = writer_errors.clone();
        readers.push(tokio::spawn(async move {
            while let Some(Ok(message)) = responses.next().await {
                if let Message::Text(text) = message {
                    if text.contains("\"errors\"") || text.contains("\"type\":\"error\"") {
                        errors.lock().unwrap().push(text.to_string());
                    }
                }
            }
        }));
        let mut crowd = Crowd { seen, size: size as u64, readers, writer, writer_errors, sent: 0 };
        crowd.probe_until_live().await?;
        Ok(crowd)
    }

    /// Sends probes until one reaches every subscriber.
    async fn probe_until_live(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        for k in 1.. {
            self.seen.probe.store(k, Ordering::Release);
            self.seen.probe_hits.store(0, Ordering::Release);
            self.send(&format!("p{k}")).await?;
            let probe_deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < probe_deadline {
                if self.seen.probe_hits.load(Ordering::Acquire) >= self.size {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            self.check_writer()?;
            if Instant::now() > deadline {
                bail!(
                    "after 60 s only {} of {} subscribers received a probe",
                    self.seen.probe_hits.load(Ordering::Acquire),
                    self.size
                );
            }
        }
        unreachable!()
    }

    fn check_writer(&self) -> Result<()> {
        if let Some(error) = self.writer_errors.lock().unwrap().first() {
            bail!("a mutation failed: {error}");
        }
        Ok(())
    }

    /// The next mutation's message, creating a note titled `title`.
    fn mutation(&mut self, title: &str) -> Message {
        self.sent += 1;
        let message = json!({
            "id": format!("m{}", self.sent),
            "type": "subscribe",
            "payload": { "query": MUTATION, "variables": { "input": { "title": title, "color": "YELLOW" } } },
        });
        Message::text(message.to_string())
    }

    async fn send(&mut self, title: &str) -> Result<()> {
        let message = self.mutation(title);
        self.writer.send(message).await.context("the writer's socket failed")
    }

    /// Expects `events` more timed receipts from now on.
    fn expect(&self, events: u64) {
        let before = self.seen.timed.load(Ordering::Acquire);
        *self.seen.reached.lock().unwrap() = None;
        self.seen.timed_target.store(before + events, Ordering::Release);
    }

    /// Waits until the expected receipts arrived, failing when none arrived for `stall`; gives when the last one
    /// did.
    async fn arrived(&self, stall: Duration) -> Result<Instant> {
        let mut last = (self.seen.timed.load(Ordering::Acquire), Instant::now());
        loop {
            if let Some(at) = *self.seen.reached.lock().unwrap() {
                return Ok(at);
            }
            self.check_writer()?;
            let now = self.seen.timed.load(Ordering::Acquire);
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() > stall {
                bail!(
                    "only {now} of {} events arrived; none for {} s; the server closed {} subscribers' sockets",
                    self.seen.timed_target.load(Ordering::Acquire),
                    stall.as_secs(),
                    self.seen.closed.load(Ordering::Acquire)
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Sends `mutations` back to back; gives events delivered per second (every subscriber receiving each one).
    pub(crate) async fn burst(&mut self, mutations: u64) -> Result<f64> {
        let events = mutations * self.size;
        self.expect(events);
        let start = Instant::now();
        for _ in 0..mutations {
            let message = self.mutation(&format!("t{}", self.seen.micros()));
            self.writer.feed(message).await?;
        }
        self.writer.flush().await?;
        let done = self.arrived(Duration::from_secs(10)).await?;
        Ok(events as f64 / done.duration_since(start).as_secs_f64())
    }

    /// Sends `mutations` paced at `per_sec`; gives every subscriber's latency (µs) for each, sorted.
    pub(crate) async fn paced(&mut self, mutations: u64, per_sec: f64) -> Result<Vec<u32>> {
        self.expect(mutations * self.size);
        *self.seen.latencies.lock().unwrap() = Some(Vec::with_capacity((mutations * self.size) as usize));
        let start = tokio::time::Instant::now();
        for i in 0..mutations {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / per_sec)).await;
            let title = format!("t{}", self.seen.micros());
            self.send(&title).await?;
        }
        self.arrived(Duration::from_secs(10)).await?;
        let mut latencies = self.seen.latencies.lock().unwrap().take().unwrap_or_default();
        latencies.sort_unstable();
        Ok(latencies)
    }
}

/// The `p`-th percentile (0–100) of sorted samples.
pub(crate) fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
