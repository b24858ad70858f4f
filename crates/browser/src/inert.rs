//! The shell's side outside a browser (every target but wasm32): nothing happens. Sockets do not open, requests are
//! never answered, timers never fire and nothing is stored, so a store made natively — while a server renders a
//! Leptos page, or in a native test — keeps its collections empty and not loaded, and does no IO. Its API is the
//! browser's, so code that uses the store builds for both.

use subsignal_store::{HttpRequest, HttpResponse};

/// A socket that never opens.
pub(crate) struct Socket;

impl Socket {
    /// Refuses: there is no WebSocket here.
    pub(crate) fn open(
        _url: &str,
        _subprotocol: Option<&str>,
        _on_open: impl FnMut() + 'static,
        _on_message: impl FnMut(String) + 'static,
        _on_close: impl FnMut(u16, String) + 'static,
    ) -> Result<Self, String> {
        Err("no WebSocket outside the browser".to_owned())
    }

    pub(crate) fn send(&self, _text: &str) {}

    pub(crate) fn close(self, _code: u16, _reason: &str) {}
}

/// A timer that never fires.
pub(crate) struct Timer;

pub(crate) fn timer(_delay_ms: u32, _f: impl FnOnce() + 'static) -> Timer {
    Timer
}

/// The wall clock in milliseconds.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Random enough for a store that sends nothing: the clock's nanoseconds, mixed.
pub(crate) fn random_u64() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
}

/// Warnings of an inert store are of no use to anyone: dropped.
pub(crate) fn warn(_message: &str) {}

/// An inert store has no event loop: the future is dropped unpolled.
pub(crate) fn spawn(_future: impl std::future::Future<Output = ()> + 'static) {}

/// Reads JSON text this crate wrote (`web.rs`'s reads it through `JSON.parse` in the npm package).
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// Never answers.
pub(crate) fn post(_url: String, _request: HttpRequest, _timeout_ms: u32, _done: impl FnOnce(HttpResponse) + 'static) {}

pub(crate) fn stored(_key: &str) -> Option<String> {
    None
}

pub(crate) fn store(_key: &str, _value: Option<&str>) -> bool {
    true
}

pub(crate) fn stored_keys(_prefix: &str) -> Vec<String> {
    Vec::new()
}

pub(crate) fn is_offline() -> bool {
    false
}

/// No connectivity events.
pub(crate) struct Connectivity;

pub(crate) fn watch_connectivity(_f: impl Fn(bool) + 'static) -> Connectivity {
    Connectivity
}

/// No database outside the browser.
#[derive(Clone)]
pub(crate) struct Db;

/// What a database held (nothing, here).
#[derive(Default)]
pub(crate) struct Stored {
    pub(crate) collections: Vec<String>,
    pub(crate) queues: Vec<(String, String)>,
}

/// What one flush writes.
pub(crate) struct Write {
    pub(crate) collections: Vec<(String, String)>,
    pub(crate) queue_key: String,
    pub(crate) queue: Option<String>,
    pub(crate) drop_queues: Vec<String>,
}

/// Hears the opened database and what it held, or why IndexedDB cannot be used.
pub(crate) type Opened = Box<dyn FnOnce(Result<(Db, Stored), String>)>;

/// Says at once that there is no IndexedDB here.
pub(crate) fn idb_open(_name: &str, _version: u32, done: Opened) {
    done(Err("no IndexedDB outside the browser".to_owned()));
}

/// Never called without a database.
pub(crate) fn idb_write(_db: &Db, data: Write, done: Box<dyn FnOnce(Result<(), String>)>) {
    drop((data.collections, data.queue_key, data.queue, data.drop_queues));
    done(Ok(()));
}

/// Stands in for a `BroadcastChannel`: there is none natively.
pub(crate) struct Channel;

impl Channel {
    /// Always `None`: a native store is never shared.
    pub(crate) fn open(_name: &str, _on_message: impl FnMut(String) + 'static) -> Option<Self> {
        None
    }

    /// Posts nothing.
    pub(crate) fn post(&self, _text: &str) {}
}

/// Stands in for a Web Lock.
pub(crate) struct Lock;

/// Always `None`: there are no Web Locks natively.
pub(crate) fn request_lock(_name: &str, _granted: impl FnOnce() + 'static) -> Option<Lock> {
    None
}

/// Stands in for a `MessagePort`: there is none natively.
pub(crate) struct Port;

impl Port {
    /// Posts nothing.
    pub(crate) fn post(&self, _text: &str) {}
}

/// Never: there is no `SharedWorker` natively.
pub(crate) fn has_shared_worker() -> bool {
    false
}

/// Never: a native store is never in a worker.
pub(crate) fn in_shared_worker() -> bool {
    false
}

/// Always `Err`: there is no `SharedWorker` natively.
pub(crate) fn attach_shared_worker(
    _url: &str,
    _name: &str,
    _on_message: impl FnMut(String) + 'static,
    _on_error: impl FnOnce(String) + 'static,
) -> Result<Port, String> {
    Err("there is no SharedWorker natively".to_owned())
}

/// Always `Err`: there is no app to run in a worker natively.
pub(crate) fn app_worker(_name: &str) -> Result<(String, String), String> {
    Err("there is no SharedWorker natively".to_owned())
}

/// There is no preconnected socket natively.
pub(crate) fn close_preconnected() {}
