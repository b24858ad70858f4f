//! subsignal-netsim: a TCP proxy that makes a network slow, jittery, capped, stalling or broken, for demos and tests.
//!
//! It sits in front of the server and is transparent to HTTP and WebSocket: it moves bytes and knows nothing of what
//! they mean. A [`Profile`] gives each direction a one-way latency, jitter, a bandwidth cap (token bucket) and write
//! slicing, and the link stalls (bytes held for a while) and resets (TCP RST) on a schedule each connection draws
//! from a seeded generator. The built-in profiles follow Chrome DevTools and WebPageTest (see [`builtin`]); more come
//! from a TOML file. A small HTTP control API switches the profile at run time, open connections included.
//!
//! The fault model ([`model`]) does no IO; the proxy around it is a thin tokio shell. Run it with
//! `cargo run -p subsignal-server -- netsim --help`, or embed it:
//!
//! ```no_run
//! # async fn demo() -> Result<(), subsignal_netsim::NetsimError> {
//! let netsim = subsignal_netsim::start(subsignal_netsim::NetsimConfig {
//!     upstream: "127.0.0.1:4000".into(),
//!     profile: "slow-4g".into(),
//!     ..Default::default()
//! })
//! .await?;
//! println!("proxy on {}, control API on {:?}", netsim.addr, netsim.control_addr);
//! netsim.select_profile("flaky")?;
//! netsim.reset_all();
//! netsim.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod control;
pub mod model;
mod profile;
mod proxy;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use profile::{builtin, Connectivity, Direction, Faults, MsRange, Profile, ProfileSet, Stall, Way};

use proxy::{Counters, Shared};

/// What can go wrong starting or steering the proxy.
#[derive(Debug, thiserror::Error)]
pub enum NetsimError {
    /// No profile has this name.
    #[error("unknown network profile `{name}`; the profiles are: {known}")]
    UnknownProfile {
        /// The name asked for.
        name: String,
        /// The names there are, comma-separated.
        known: String,
    },
    /// A profile's figures make no sense.
    #[error("invalid network profile `{name}`: {reason}")]
    InvalidProfile {
        /// The profile.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The profiles file cannot be read.
    #[error("cannot read the profiles file {path}: {source}")]
    ReadProfiles {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The profiles file is not valid TOML of profiles.
    #[error("invalid profiles file {path}: {message}")]
    ParseProfiles {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// An address cannot be listened on.
    #[error("cannot listen on {addr} for the {what}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The proxy or the control API.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// How to start the proxy.
#[derive(Debug, Clone)]
pub struct NetsimConfig {
    /// Where clients connect [default: 127.0.0.1, a free port].
    pub listen: SocketAddr,
    /// Where the proxy connects for each client (`host:port`).
    pub upstream: String,
    /// Where the control API listens; `None` runs without it [default: 127.0.0.1, a free port].
    pub control: Option<SocketAddr>,
    /// The profile to start with [default: `none`].
    pub profile: String,
    /// The profiles to choose from [default: the built-in ones].
    pub profiles: ProfileSet,
    /// Seed of the jitter and fault schedules; the same seed and the same traffic give the same faults
    /// [default: from the clock].
    pub seed: Option<u64>,
}

impl Default for NetsimConfig {
    fn default() -> Self {
        NetsimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            upstream: "127.0.0.1:4000".into(),
            control: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            profile: "none".into(),
            profiles: ProfileSet::builtin(),
            seed: None,
        }
    }
}

/// Counters of a running proxy.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// The current profile's name.
    pub profile: String,
    /// Connections open now.
    pub open_connections: usize,
    /// Connections accepted so far.
    pub accepted: u64,
    /// Connections reset so far (faults, `offline`, `reset_all`).
    pub resets: u64,
    /// Bytes read from clients.
    pub bytes_up: u64,
    /// Bytes read from the upstream.
    pub bytes_down: u64,
}

impl Shared {
    fn select(&self, name: &str) -> Result<Arc<Profile>, NetsimError> {
        let profile = Arc::new(self.profiles.find(name)?.clone());
        self.current.send_replace(profile.clone());
        Ok(profile)
    }

    fn reset_all(&self) -> usize {
        let open = self.counters.open.load(Ordering::Relaxed);
        self.resets.send_modify(|generation| *generation += 1);
        open
    }

    fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            profile: self.current.borrow().name.clone(),
            open_connections: c.open.load(Ordering::Relaxed),
            accepted: c.accepted.load(Ordering::Relaxed),
            resets: c.resets.load(Ordering::Relaxed),
            bytes_up: c.bytes_up.load(Ordering::Relaxed),
            bytes_down: c.bytes_down.load(Ordering::Relaxed),
        }
    }
}

/// A running proxy (and control API). Dropping it leaves it running; call [`RunningNetsim::shutdown`] to stop it.
#[derive(Debug)]
pub struct RunningNetsim {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Where the control API listens, if it runs.
    pub control_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Binds the proxy (and the control API) and starts serving.
pub async fn start(config: NetsimConfig) -> Result<RunningNetsim, NetsimError> {
    let first = config.profiles.find(&config.profile)?.clone();
    let listener = TcpListener::bind(config.listen).await.map_err(|source| NetsimError::Listen {
        addr: config.listen,
        what: "proxy",
        source,
    })?;
    let addr =
        listener.local_addr().map_err(|source| NetsimError::Listen { addr: config.listen, what: "proxy", source })?;
    let control = match config.control {
        Some(at) => {
            let listener = TcpListener::bind(at).await.map_err(|source| NetsimError::Listen {
                addr: at,
                what: "control API",
                source,
            })?;
            let bound = listener.local_addr().map_err(|source| NetsimError::Listen {
                addr: at,
                what: "control API",
                source,
            })?;
            Some((listener, bound))
        }
        None => None,
    };
    let seed = config
        .seed
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0x5EED));
    let shared = Arc::new(Shared {
        upstream: watch::Sender::new(config.upstream),
        profiles: config.profiles,
        current: watch::Sender::new(Arc::new(first)),
        resets: watch::Sender::new(0),
        counters: Counters::default(),
        seed,
    });
    let (shutdown, stop) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(proxy::accept_loop(listener, shared.clone(), stop.clone()))];
    let control_addr = control.as_ref().map(|(_, bound)| *bound);
    if let Some((listener, _)) = control {
        let app = control::router(shared.clone());
        let mut stop = stop;
        tasks.push(tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(err) = serve.await {
                tracing::warn!("the netsim control API stopped: {err}");
            }
        }));
    }
    Ok(RunningNetsim { addr, control_addr, shared, shutdown, tasks })
}

impl RunningNetsim {
    /// The current profile.
    pub fn profile(&self) -> Arc<Profile> {
        self.shared.current.borrow().clone()
    }

    /// Switches to the profile called `name`; open connections follow from their next chunk.
    pub fn select_profile(&self, name: &str) -> Result<Arc<Profile>, NetsimError> {
        self.shared.select(name)
    }

    /// Switches to any profile, named in the set or not (tests use this for one-off figures).
    pub fn set_profile(&self, profile: Profile) -> Result<(), NetsimError> {
        profile.validate()?;
        self.shared.current.send_replace(Arc::new(profile));
        Ok(())
    }

    /// Sends connections opened from now on to `upstream` (`host:port`), as a load balancer does when it takes a
    /// server out of rotation; open connections stay where they are.
    pub fn set_upstream(&self, upstream: &str) {
        self.shared.upstream.send_replace(upstream.to_owned());
    }

    /// Resets every open connection now; returns how many were open.
    pub fn reset_all(&self) -> usize {
        self.shared.reset_all()
    }

    /// Connections and bytes so far.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The profiles it can switch between.
    pub fn profiles(&self) -> &ProfileSet {
        &self.shared.profiles
    }

    /// Stops accepting, resets open connections and waits for all of it.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
