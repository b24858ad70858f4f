//! The tokio shell around the model: accept, connect upstream, and move bytes in both directions on schedule.
//!
//! Each connection runs in one task: per direction a reader (read, ask the [`Shaper`] when each piece may go, queue
//! it) and a writer (wait for the release time and for the link to flow, write), joined by a bounded queue so the
//! latency delays bytes without lowering the throughput; beside them a supervisor walks the [`FaultPlan`] and
//! publishes the link state. The current profile is a `watch`, read at each chunk, so a switch reaches open
//! connections.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::model::{FaultPlan, LinkState, Shaper};
use crate::profile::{Profile, ProfileSet, Way};

/// Counters of a running proxy.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) open: AtomicUsize,
    pub(crate) accepted: AtomicU64,
    pub(crate) resets: AtomicU64,
    pub(crate) bytes_up: AtomicU64,
    pub(crate) bytes_down: AtomicU64,
}

/// What the proxy, its connections and the control API share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Where new connections go (`host:port`); a switch moves only connections opened after it.
    pub(crate) upstream: watch::Sender<String>,
    pub(crate) profiles: ProfileSet,
    pub(crate) current: watch::Sender<Arc<Profile>>,
    /// Bumped to reset every open connection.
    pub(crate) resets: watch::Sender<u64>,
    pub(crate) counters: Counters,
    pub(crate) seed: u64,
}

/// Accepts until `shutdown` turns true, then resets what is open and waits for it.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    let stop = shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    let id = shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(id, %peer, "connection");
                    connections.spawn(connection(client, id, shared.clone(), stop.clone()));
                }
                Err(err) => {
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopped(&mut shutdown) => break,
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

struct OpenGuard<'a>(&'a AtomicUsize);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Drops a socket with a TCP RST rather than a FIN.
fn abort(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

enum Outcome {
    Closed,
    Reset,
}

async fn connection(client: TcpStream, id: u64, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    shared.counters.open.fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard(&shared.counters.open);
    let start = Instant::now();
    let seed = shared.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut profile = shared.current.subscribe();
    let mut resets = shared.resets.subscribe();
    let mut plan = FaultPlan::new(seed);
    let first = profile.borrow_and_update().clone();
    plan.update(Duration::ZERO, &first);
    if plan.state(Duration::ZERO) == LinkState::Reset {
        shared.counters.resets.fetch_add(1, Ordering::Relaxed);
        return abort(client);
    }

    // The handshake costs a round trip: the client's first bytes wait in its socket meanwhile.
    let handshake = Duration::from_secs_f64(first.rtt_ms() / 1000.0);
    let to = shared.upstream.borrow().clone();
    let upstream = tokio::select! {
        connected = async {
            tokio::time::sleep(handshake).await;
            TcpStream::connect(&to).await
        } => connected,
        _ = resets.changed() => return abort(client),
        _ = stopped(&mut shutdown) => return abort(client),
    };
    let mut upstream = match upstream {
        Ok(upstream) => upstream,
        Err(err) => {
            tracing::warn!("cannot connect to the upstream {to}: {err}");
            return abort(client);
        }
    };
    let mut client = client;
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);

    let outcome = {
        let (mut client_read, mut client_write) = client.split();
        let (mut upstream_read, mut upstream_write) = upstream.split();
        let (state_tx, state_rx) = watch::channel(LinkState::Flowing);
        let (up_tx, up_rx) = mpsc::channel(64);
        let (down_tx, down_rx) = mpsc::channel(64);
        let counters = &shared.counters;
        let (profile_up, profile_down) = (profile.clone(), profile.clone());
        let pumps = async {
            tokio::try_join!(
                read_side(&mut client_read, up_tx, Way::Up, profile_up, start, seed ^ 1, &counters.bytes_up),
                write_side(&mut upstream_write, up_rx, state_rx.clone()),
                read_side(&mut upstream_read, down_tx, Way::Down, profile_down, start, seed ^ 2, &counters.bytes_down),
                write_side(&mut client_write, down_rx, state_rx),
            )
        };
        tokio::select! {
            done = pumps => if done.is_ok() { Outcome::Closed } else { Outcome::Reset },
            _ = supervise(plan, &mut profile, state_tx, start) => Outcome::Reset,
            _ = resets.changed() => Outcome::Reset,
            _ = stopped(&mut shutdown) => Outcome::Reset,
        }
    };
    if let Outcome::Reset = outcome {
        tracing::debug!(id, "reset");
        shared.counters.resets.fetch_add(1, Ordering::Relaxed);
        abort(client);
        abort(upstream);
    }
}

/// A chunk on its way: bytes, or the end of the stream, and when it may be written.
enum Chunk {
    Data(Instant, Vec<u8>),
    Eof(Instant),
}

const READ_BUFFER: usize = 16 * 1024;

/// Reads one direction and queues its bytes with their release times. `Err` means the connection must be reset.
async fn read_side<R: AsyncRead + Unpin>(
    from: &mut R,
    queue: mpsc::Sender<Chunk>,
    way: Way,
    profile: watch::Receiver<Arc<Profile>>,
    start: Instant,
    seed: u64,
    counter: &AtomicU64,
) -> Result<(), ()> {
    let mut shaper = Shaper::new(seed);
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        let n = from.read(&mut buf).await.map_err(|_| ())?;
        let now = start.elapsed();
        let current = profile.borrow().clone();
        let dir = current.direction(way);
        if n == 0 {
            let at = shaper.schedule_eof(now, dir);
            return queue.send(Chunk::Eof(start + at)).await.map_err(|_| ());
        }
        counter.fetch_add(n as u64, Ordering::Relaxed);
        let mut offset = 0;
        for piece in shaper.schedule(now, n, dir) {
            let bytes = buf[offset..offset + piece.len].to_vec();
            offset += piece.len;
            queue.send(Chunk::Data(start + piece.release_at, bytes)).await.map_err(|_| ())?;
        }
    }
}

/// Writes one direction's queue, each chunk at its time and only while the link flows.
async fn write_side<W: AsyncWrite + Unpin>(
    to: &mut W,
    mut queue: mpsc::Receiver<Chunk>,
    mut link: watch::Receiver<LinkState>,
) -> Result<(), ()> {
    while let Some(chunk) = queue.recv().await {
        let at = match &chunk {
            Chunk::Data(at, _) | Chunk::Eof(at) => *at,
        };
        tokio::time::sleep_until(at).await;
        link.wait_for(|state| *state == LinkState::Flowing).await.map_err(|_| ())?;
        match chunk {
            Chunk::Data(_, bytes) => to.write_all(&bytes).await.map_err(|_| ())?,
            Chunk::Eof(_) => {
                let _ = to.shutdown().await;
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Walks the fault plan, following profile switches, until it says reset.
async fn supervise(
    mut plan: FaultPlan,
    profile: &mut watch::Receiver<Arc<Profile>>,
    state: watch::Sender<LinkState>,
    start: Instant,
) {
    loop {
        let now = start.elapsed();
        let current = profile.borrow_and_update().clone();
        plan.update(now, &current);
        let link = plan.state(now);
        state.send_if_modified(|old| std::mem::replace(old, link) != link);
        if link == LinkState::Reset {
            return;
        }
        let wake = plan.next_change(now);
        tokio::select! {
            _ = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(start + at).await,
                    None => std::future::pending().await,
                }
            } => {}
            changed = profile.changed() => if changed.is_err() {
                return;
            },
        }
    }
}
