//! The browser's side of the shell (wasm32): WebSockets (`web_sys::WebSocket`), `fetch` with a timeout (gloo-net and
//! an `AbortController`), timers, the clock, `crypto.getRandomValues`, `localStorage`, IndexedDB (a small promise
//! wrapper over `web_sys`'s `Idb*` types), the `online`/`offline` events, and for shared mode a `BroadcastChannel` and
//! Web Locks (`navigator.locks`, through `Reflect`). [`crate::shell`] drives the core with
//! these; natively `inert.rs` stands in for them. Everything but `localStorage` works in a worker's global scope too
//! (`js_sys::global()`, never `window()`): a store can run inside a `SharedWorker`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use gloo_timers::callback::Timeout;
use serde_json::Value;
use subsignal_store::{HttpRequest, HttpResponse};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CloseEvent, MessageEvent, WebSocket};

/// One open WebSocket and the handlers that must live as long as it.
pub(crate) struct Socket {
    ws: WebSocket,
    /// A preconnected socket's `connection_init`, sent by the page, and the frames the page received before the
    /// store took it: the store's own `connection_init`, when it is the same, is not sent again (a second one would
    /// be refused) and these frames are handed on instead.
    said: RefCell<Option<(Value, Vec<String>)>>,
    deliver: Rc<RefCell<dyn FnMut(String)>>,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

/// Closes a socket the store cannot use; 4499 (closed by the client) is retried, so the store opens its own.
const NOT_USABLE: u16 = 4499;

impl Socket {
    /// Opens `url`, offering `subprotocol` if given; the handlers hear it open, its text frames, and its close.
    pub(crate) fn open(
        url: &str,
        subprotocol: Option<&str>,
        on_open: impl FnMut() + 'static,
        on_message: impl FnMut(String) + 'static,
        mut on_close: impl FnMut(u16, String) + 'static,
    ) -> Result<Self, String> {
        let preconnected = preconnected(url);
        let said = preconnected.as_ref().and_then(page_said);
        let adopted = preconnected.is_some();
        let ws = match preconnected {
            Some(ws) => ws,
            None => match subprotocol {
                Some(subprotocol) => WebSocket::new_with_str(url, subprotocol),
                None => WebSocket::new(url),
            }
            .map_err(|e| format!("{e:?}"))?,
        };
        let mut on_open = on_open;
        let wanted = subprotocol.map(str::to_owned);
        let checked = ws.clone();
        // A preconnected socket must speak the subprotocol this store offers; one that does not is closed, and the
        // store opens its own after the close.
        let on_open = Closure::<dyn FnMut()>::new(move || match &wanted {
            Some(wanted) if adopted && checked.protocol() != *wanted => {
                let _ = checked.close_with_code_and_reason(NOT_USABLE, "preconnected without the subprotocol");
            }
            _ => on_open(),
        });
        let deliver: Rc<RefCell<dyn FnMut(String)>> = Rc::new(RefCell::new(on_message));
        let handler = deliver.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(text) = e.data().as_string() {
                (handler.borrow_mut())(text);
            }
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| on_close(e.code(), e.reason()));
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        if ws.ready_state() == WebSocket::OPEN {
            // Opened before the store asked: said after this returns, once the shell keeps the socket.
            let open: js_sys::Function = on_open.as_ref().unchecked_ref::<js_sys::Function>().clone();
            wasm_bindgen_futures::spawn_local(async move {
                let _ = open.call0(&JsValue::NULL);
            });
        }
        Ok(Self {
            ws,
            said: RefCell::new(said),
            deliver,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    }

    pub(crate) fn send(&self, text: &str) {
        if let Some((init, received)) = self.said.borrow_mut().take() {
            if serde_json::from_str::<Value>(text).ok().as_ref() == Some(&init) {
                // The page said it already: what the server answered so far goes on to the store, in order, once
                // this send has returned (and before any later frame, which is a task of its own).
                let deliver = self.deliver.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    for frame in received {
                        (deliver.borrow_mut())(frame);
                    }
                });
                return;
            }
            // The page began with other credentials; the server would refuse a second `connection_init`.
            let _ = self.ws.close_with_code_and_reason(NOT_USABLE, "preconnected with other credentials");
            return;
        }
        // A failed send means the socket is closing: its close event follows.
        let _ = self.ws.send_with_str(text);
    }

    /// Detaches the handlers (the core already forgot this socket) and closes it.
    pub(crate) fn close(self, code: u16, reason: &str) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        // Browsers only accept 1000 and 3000–4999 from scripts.
        if self.ws.close_with_code_and_reason(code, reason).is_err() {
            let _ = self.ws.close();
        }
    }
}

/// The name of the global a page may set, before its code loads, to a WebSocket it opened early
/// (`globalThis.subsignalPreconnect = new WebSocket(url, subprotocol)`): the socket's handshakes then run while the
/// app downloads instead of after it.
const PRECONNECT: &str = "subsignalPreconnect";

/// The page's preconnected socket, taken once, when it goes to `url` and is opening or open; any other is closed.
fn preconnected(url: &str) -> Option<WebSocket> {
    let global = js_sys::global();
    let key = JsValue::from_str(PRECONNECT);
    let ws = js_sys::Reflect::get(&global, &key).ok()?.dyn_into::<WebSocket>().ok()?;
    js_sys::Reflect::delete_property(global.unchecked_ref::<js_sys::Object>(), &key).ok();
    if ws.url() == url && matches!(ws.ready_state(), WebSocket::CONNECTING | WebSocket::OPEN) {
        return Some(ws);
    }
    web_sys::console::warn_1(
        &format!("subsignal: the preconnected WebSocket to {} is not used: the store connects to {url}", ws.url())
            .into(),
    );
    let _ = ws.close();
    None
}

/// What the page already said on its preconnected socket: its `connection_init` (`ws.subsignalInit`, the text it
/// sent) and the frames it received since (`ws.subsignalReceived`, texts in order).
fn page_said(ws: &WebSocket) -> Option<(Value, Vec<String>)> {
    let init = js_sys::Reflect::get(ws, &"subsignalInit".into()).ok()?.as_string()?;
    let init = serde_json::from_str(&init).ok()?;
    let received = js_sys::Reflect::get(ws, &"subsignalReceived".into()).ok();
    let received = received.and_then(|r| r.dyn_into::<js_sys::Array>().ok());
    let frames = received.map(|r| r.iter().filter_map(|f| f.as_string()).collect()).unwrap_or_default();
    Some((init, frames))
}

/// Closes the page's preconnected socket, if nobody took it: a shared store's following tab, which another tab's
/// connection serves.
pub(crate) fn close_preconnected() {
    let global = js_sys::global();
    let key = JsValue::from_str(PRECONNECT);
    let Some(ws) = js_sys::Reflect::get(&global, &key).ok().and_then(|ws| ws.dyn_into::<WebSocket>().ok()) else {
        return;
    };
    js_sys::Reflect::delete_property(global.unchecked_ref::<js_sys::Object>(), &key).ok();
    let _ = ws.close_with_code_and_reason(1000, "another tab holds the shared connection");
}

/// A timer; dropping it cancels it.
pub(crate) struct Timer {
    _timeout: Timeout,
}

/// Calls `f` after `delay_ms`.
pub(crate) fn timer(delay_ms: u32, f: impl FnOnce() + 'static) -> Timer {
    Timer { _timeout: Timeout::new(delay_ms, f) }
}

/// Milliseconds on the shell's clock (wall time, so `retryAtMs` in a status can be shown as a countdown).
pub(crate) fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// The object `name` of the global scope: a page's `window` or a worker's `self` (the store also runs in a
/// `SharedWorker`, where there is no `window`); `None` when it is missing or `null`.
fn global(name: &str) -> Option<JsValue> {
    js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str(name)).ok().filter(JsValue::is_object)
}

/// 64 random bits from `crypto.getRandomValues` (falling back to `Math.random` where there is no `crypto`).
pub(crate) fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    let filled = global("crypto")
        .map(JsCast::unchecked_into::<web_sys::Crypto>)
        .is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
    if !filled {
        return (js_sys::Math::random() * (u64::MAX as f64)) as u64 ^ (now_ms() << 20);
    }
    u64::from_le_bytes(bytes)
}

/// Reads JSON text this crate wrote (shared mode's messages, the persisted queue). In the npm package (feature `js`),
/// through the engine's `JSON.parse` and serde-wasm-bindgen: the package reads options, collections and mutations
/// through serde-wasm-bindgen anyway, and serde_json's instantiations of the same types took 50 KB of its wasm
/// (17.7 KB gzip). A Rust app has serde_json alone.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    #[cfg(feature = "js")]
    {
        let value = js_sys::JSON::parse(text).map_err(|_| "not JSON".to_owned())?;
        serde_wasm_bindgen::from_value(value).map_err(|e| e.to_string())
    }
    #[cfg(not(feature = "js"))]
    {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}

/// Runs `future` on the page's (or worker's) event loop.
pub(crate) fn spawn(future: impl std::future::Future<Output = ()> + 'static) {
    wasm_bindgen_futures::spawn_local(future);
}

pub(crate) fn warn(message: &str) {
    web_sys::console::warn_1(&format!("subsignal: {message}").into());
}

/// `POST`s a GraphQL request in the background; `done` hears the response (or why there was none).
pub(crate) fn post(url: String, request: HttpRequest, timeout_ms: u32, done: impl FnOnce(HttpResponse) + 'static) {
    wasm_bindgen_futures::spawn_local(async move { done(fetch(&url, request, timeout_ms).await) });
}

/// `POST`s a GraphQL request, giving up after `timeout_ms`; a request the page already sent (`subsignalPrefetch`) is
/// answered by the page's response instead.
async fn fetch(url: &str, request: HttpRequest, timeout_ms: u32) -> HttpResponse {
    if request.prefetchable {
        if let Some(response) = prefetched(url, &request) {
            // The page's answer, or `undefined` once the store's timeout has passed.
            let timeout = js_sys::Promise::new(&mut |resolve, _| {
                Timeout::new(timeout_ms, move || drop(resolve.call0(&JsValue::UNDEFINED))).forget();
            });
            let first = js_sys::Promise::race(&js_sys::Array::of2(&response, &timeout));
            let settled = wasm_bindgen_futures::JsFuture::from(first).await;
            match settled.ok().and_then(|r| r.dyn_into::<web_sys::Response>().ok()) {
                Some(response) => return read(response.into()).await,
                // The page's request failed, or hangs: the store asks on its own.
                None => warn("the page's prefetched request failed: the store sends its own"),
            }
        }
    }
    let controller = web_sys::AbortController::new().ok();
    let signal = controller.as_ref().map(|c| c.signal());
    let timed_out = Rc::new(Cell::new(false));
    let _timer = controller.clone().map(|c| {
        let timed_out = timed_out.clone();
        Timeout::new(timeout_ms, move || {
            timed_out.set(true);
            c.abort();
        })
    });
    let mut builder = gloo_net::http::Request::post(url).header("content-type", "application/json");
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let sent = match builder.abort_signal(signal.as_ref()).body(request.body.to_string()) {
        Ok(req) => req.send().await,
        Err(e) => return HttpResponse::NetworkError { message: e.to_string() },
    };
    let response = match sent {
        Ok(response) => response,
        Err(_) if timed_out.get() => {
            return HttpResponse::NetworkError { message: format!("no response within {timeout_ms} ms") }
        }
        Err(e) => return HttpResponse::NetworkError { message: e.to_string() },
    };
    read(response).await
}

/// The store's reading of an answer: its JSON body, and whether the status says success.
async fn read(response: gloo_net::http::Response) -> HttpResponse {
    let status = response.status();
    let text = match response.text().await {
        Ok(text) => text,
        Err(e) => return HttpResponse::NetworkError { message: format!("reading the response failed: {e}") },
    };
    let body = serde_json::from_str::<Value>(&text).ok();
    match body {
        Some(body) if (200..300).contains(&status) => HttpResponse::Ok { body },
        body => HttpResponse::Status { status, body },
    }
}

/// The name of the global a page may set, before its code loads, to requests it sent early (while the app
/// downloaded): an array of `{ url, headers, body, response }`, the address, the headers (an object, `content-type`
/// aside), the body text it `POST`ed, and the promise `fetch` gave. See README "Load faster".
const PREFETCH: &str = "subsignalPrefetch";

/// The response promise of the page's prefetched request that is exactly `request` to `url` (address, headers and
/// JSON body), taken from the page's list so that nothing else takes it; `None` when there is none. A list with no
/// such request is left as it is, with a warning: the page's guess of the store's request was wrong.
fn prefetched(url: &str, request: &HttpRequest) -> Option<js_sys::Promise> {
    let global = js_sys::global();
    let key = JsValue::from_str(PREFETCH);
    let list = js_sys::Reflect::get(&global, &key).ok()?.dyn_into::<js_sys::Array>().ok()?;
    let field = |entry: &JsValue, name: &str| js_sys::Reflect::get(entry, &name.into()).ok();
    let base = global_location();
    let absolute = |u: &str| web_sys::Url::new_with_base(u, &base).map(|u| u.href()).unwrap_or_else(|_| u.to_owned());
    let mine = absolute(url);
    let matches = |entry: &JsValue| {
        let same_url = field(entry, "url").and_then(|u| u.as_string()).is_some_and(|u| absolute(&u) == mine);
        let same_body = field(entry, "body")
            .and_then(|b| b.as_string())
            .and_then(|b| serde_json::from_str::<Value>(&b).ok())
            .is_some_and(|b| b == request.body);
        let headers: Vec<(String, String)> = field(entry, "headers")
            .filter(JsValue::is_object)
            .map(|h| js_sys::Object::entries(h.unchecked_ref()))
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|pair| {
                        let pair = js_sys::Array::from(&pair);
                        Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
                    })
                    .filter(|(name, _)| !name.eq_ignore_ascii_case("content-type"))
                    .collect()
            })
            .unwrap_or_default();
        // The same set, whatever the names' case: each side names a header once.
        let same_headers = headers.len() == request.headers.len()
            && request
                .headers
                .iter()
                .all(|(name, value)| headers.iter().any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value));
        same_url && same_body && same_headers
    };
    let Some(index) = list.iter().position(|entry| matches(&entry)) else {
        if list.length() > 0 {
            warn(&format!(
                "the page's prefetched requests ({}) are not this store's request to {mine}: it sends its own",
                list.length()
            ));
        }
        return None;
    };
    let entry = list.get(index as u32);
    let rest: js_sys::Array = list.iter().enumerate().filter(|(i, _)| *i != index).map(|(_, e)| e).collect();
    if rest.length() == 0 {
        js_sys::Reflect::delete_property(global.unchecked_ref::<js_sys::Object>(), &key).ok();
    } else {
        js_sys::Reflect::set(&global, &key, &rest).ok();
    }
    field(&entry, "response")?.dyn_into::<js_sys::Promise>().ok()
}

/// The address of the page (or worker) the store runs in, which relative addresses are resolved against.
fn global_location() -> String {
    global("location")
        .and_then(|l| js_sys::Reflect::get(&l, &"href".into()).ok())
        .and_then(|h| h.as_string())
        .unwrap_or_default()
}

/// `localStorage`: a page's only; a worker has none (its queue then lives in IndexedDB alone).
fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

/// The text kept under `key` in `localStorage`.
pub(crate) fn stored(key: &str) -> Option<String> {
    local_storage().and_then(|s| s.get_item(key).ok().flatten())
}

/// Keeps `value` under `key` in `localStorage` (`None` removes it); false when storage is full or disabled.
pub(crate) fn store(key: &str, value: Option<&str>) -> bool {
    let Some(storage) = local_storage() else { return false };
    match value {
        Some(value) => storage.set_item(key, value),
        None => storage.remove_item(key),
    }
    .is_ok()
}

/// The `localStorage` keys that start with `prefix`.
pub(crate) fn stored_keys(prefix: &str) -> Vec<String> {
    let Some(storage) = local_storage() else { return Vec::new() };
    let count = storage.length().unwrap_or(0);
    (0..count).filter_map(|i| storage.key(i).ok().flatten()).filter(|k| k.starts_with(prefix)).collect()
}

/// Whether the browser says it is offline (`navigator.onLine`, a page's or a worker's).
pub(crate) fn is_offline() -> bool {
    let on_line = global("navigator").and_then(|n| js_sys::Reflect::get(&n, &"onLine".into()).ok());
    on_line.and_then(|o| o.as_bool()) == Some(false)
}

/// A listener of one page event, and the event's name.
type PageListener = (&'static str, Closure<dyn FnMut()>);

/// The page's `online`/`offline` listeners; dropping it removes them.
pub(crate) struct Connectivity(Vec<PageListener>);

/// The global scope as an event target: the page's `window`, or a worker's `self` (both hear `online`/`offline`).
fn global_scope() -> web_sys::EventTarget {
    js_sys::global().unchecked_into()
}

/// Calls `f(true)` on every `online` event and `f(false)` on every `offline` event.
pub(crate) fn watch_connectivity(f: impl Fn(bool) + 'static) -> Connectivity {
    let f = Rc::new(f);
    let mut handlers = Vec::new();
    let scope = global_scope();
    for (event, online) in [("online", true), ("offline", false)] {
        let f = f.clone();
        let handler = Closure::<dyn FnMut()>::new(move || f(online));
        if scope.add_event_listener_with_callback(event, handler.as_ref().unchecked_ref()).is_ok() {
            handlers.push((event, handler));
        }
    }
    Connectivity(handlers)
}

impl Drop for Connectivity {
    fn drop(&mut self) {
        let scope = global_scope();
        for (event, handler) in self.0.drain(..) {
            let _ = scope.remove_event_listener_with_callback(event, handler.as_ref().unchecked_ref());
        }
    }
}

/// An open IndexedDB database holding a store's persisted image: the object store `collections` (one JSON text per
/// persisted collection, keyed by its name) and `queues` (one JSON text per tab's offline queue, keyed by the tab).
#[derive(Clone)]
pub(crate) struct Db(web_sys::IdbDatabase);

/// What a database held when it was opened: the collections' texts and each tab's queue text (with its key).
#[derive(Default)]
pub(crate) struct Stored {
    pub(crate) collections: Vec<String>,
    pub(crate) queues: Vec<(String, String)>,
}

const COLLECTIONS: &str = "collections";
const QUEUES: &str = "queues";

/// A JavaScript error or `DOMException` as `name: message`.
fn describe(e: &wasm_bindgen::JsValue) -> String {
    if let Some(text) = e.as_string() {
        return text;
    }
    let field = |name: &str| js_sys::Reflect::get(e, &name.into()).ok().and_then(|v| v.as_string());
    match (field("name"), field("message")) {
        (Some(name), Some(message)) => format!("{name}: {message}"),
        (name, message) => name.or(message).unwrap_or_else(|| "unknown error".to_owned()),
    }
}

/// Waits for a request's `success` (its result) or `error`.
async fn request(req: &web_sys::IdbRequest) -> Result<wasm_bindgen::JsValue, String> {
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        req.set_onsuccess(Some(&resolve));
        req.set_onerror(Some(&reject));
    });
    let settled = wasm_bindgen_futures::JsFuture::from(promise).await;
    req.set_onsuccess(None);
    req.set_onerror(None);
    match settled {
        Ok(_) => req.result().map_err(|e| describe(&e)),
        Err(_) => Err(req.error().ok().flatten().map_or_else(|| "the request failed".to_owned(), |e| describe(&e))),
    }
}

/// Waits for a transaction to commit (or says why it aborted).
async fn committed(tx: &web_sys::IdbTransaction) -> Result<(), String> {
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        tx.set_oncomplete(Some(&resolve));
        tx.set_onerror(Some(&reject));
        tx.set_onabort(Some(&reject));
    });
    let settled = wasm_bindgen_futures::JsFuture::from(promise).await;
    settled.map(drop).map_err(|_| tx.error().map_or_else(|| "the transaction aborted".to_owned(), |e| describe(&e)))
}

fn strings(value: &wasm_bindgen::JsValue) -> Vec<String> {
    // A value that is not text (written by something else) reads as "", which fails to parse: a corrupted record.
    js_sys::Array::from(value).iter().map(|v| v.as_string().unwrap_or_default()).collect()
}

async fn open(name: &str, version: u32) -> Result<(Db, Stored), String> {
    let factory = global("indexedDB")
        .map(JsCast::unchecked_into::<web_sys::IdbFactory>)
        .ok_or("IndexedDB is not available here (a private window, or storage disabled)")?;
    let req = factory.open_with_u32(name, version).map_err(|e| describe(&e))?;
    let upgrading = req.clone();
    // A first open, or an image format change (the version): start over with empty object stores.
    let upgrade = Closure::once_into_js(move || {
        if let Ok(db) = upgrading.result().map(web_sys::IdbDatabase::from) {
            for store in [COLLECTIONS, QUEUES] {
                let _ = db.delete_object_store(store);
                let _ = db.create_object_store(store);
            }
        }
    });
    req.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
    let blocked = Closure::once_into_js(|| warn("the persisted copy waits for another tab to close its older version"));
    req.set_onblocked(Some(blocked.unchecked_ref()));
    let db = web_sys::IdbDatabase::from(request(&req).await?);
    // A newer version in another tab asks to upgrade: let it (this tab keeps working without persisting).
    let closing = db.clone();
    let on_version_change = Closure::<dyn FnMut()>::new(move || closing.close());
    db.set_onversionchange(Some(on_version_change.as_ref().unchecked_ref()));
    on_version_change.forget();
    let names = js_sys::Array::of2(&COLLECTIONS.into(), &QUEUES.into());
    let tx = db
        .transaction_with_str_sequence_and_mode(&names, web_sys::IdbTransactionMode::Readonly)
        .map_err(|e| describe(&e))?;
    let store = |name| tx.object_store(name).map_err(|e| describe(&e));
    let collections = request(&store(COLLECTIONS)?.get_all().map_err(|e| describe(&e))?).await?;
    let queues = store(QUEUES)?;
    let keys = request(&queues.get_all_keys().map_err(|e| describe(&e))?).await?;
    let texts = request(&queues.get_all().map_err(|e| describe(&e))?).await?;
    let stored = Stored {
        collections: strings(&collections),
        queues: strings(&keys).into_iter().zip(strings(&texts)).collect(),
    };
    Ok((Db(db), stored))
}

/// Hears the opened database and what it held, or why IndexedDB cannot be used.
pub(crate) type Opened = Box<dyn FnOnce(Result<(Db, Stored), String>)>;

/// Opens (creating or upgrading) the database `name` at `version` and reads what it holds; `done` hears it, or why
/// IndexedDB cannot be used.
pub(crate) fn idb_open(name: &str, version: u32, done: Opened) {
    let name = name.to_owned();
    wasm_bindgen_futures::spawn_local(async move { done(open(&name, version).await) });
}

/// What one flush writes: collection texts by name, this tab's queue (`None` deletes it), queues of other tabs to
/// delete (adopted by this one).
pub(crate) struct Write {
    pub(crate) collections: Vec<(String, String)>,
    pub(crate) queue_key: String,
    pub(crate) queue: Option<String>,
    pub(crate) drop_queues: Vec<String>,
}

async fn write(db: &Db, write: Write) -> Result<(), String> {
    let names = js_sys::Array::of2(&COLLECTIONS.into(), &QUEUES.into());
    let tx =
        db.0.transaction_with_str_sequence_and_mode(&names, web_sys::IdbTransactionMode::Readwrite)
            .map_err(|e| describe(&e))?;
    let put_all = || -> Result<(), wasm_bindgen::JsValue> {
        let collections = tx.object_store(COLLECTIONS)?;
        for (name, text) in &write.collections {
            collections.put_with_key(&text.into(), &name.into())?;
        }
        let queues = tx.object_store(QUEUES)?;
        match &write.queue {
            Some(text) => queues.put_with_key(&text.into(), &write.queue_key.as_str().into())?,
            None => queues.delete(&write.queue_key.as_str().into())?,
        };
        for key in &write.drop_queues {
            queues.delete(&key.into())?;
        }
        Ok(())
    };
    if let Err(e) = put_all() {
        // Nothing of this flush is written: the transaction is all or nothing.
        let _ = tx.abort();
        return Err(describe(&e));
    }
    committed(&tx).await
}

/// Writes one flush in a single transaction (all of it or none); `done` hears whether it committed.
pub(crate) fn idb_write(db: &Db, data: Write, done: Box<dyn FnOnce(Result<(), String>)>) {
    let db = db.clone();
    wasm_bindgen_futures::spawn_local(async move { done(write(&db, data).await) });
}

/// A `BroadcastChannel` (tabs of one origin hear each other's messages, never their own) and its message handler.
pub(crate) struct Channel {
    channel: web_sys::BroadcastChannel,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl Channel {
    /// Joins the channel `name`; `on_message` hears every text message another tab posts on it. `None` where the
    /// browser has no `BroadcastChannel`.
    pub(crate) fn open(name: &str, mut on_message: impl FnMut(String) + 'static) -> Option<Self> {
        let channel = web_sys::BroadcastChannel::new(name).ok()?;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(text) = e.data().as_string() {
                on_message(text);
            }
        });
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Some(Self { channel, _on_message: on_message })
    }

    /// Posts `text` to every other tab on the channel.
    pub(crate) fn post(&self, text: &str) {
        // Fails only once closed.
        let _ = self.channel.post_message(&JsValue::from_str(text));
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}

/// A Web Lock held, or asked for, by this page: released when dropped (and by the browser when the page goes away).
pub(crate) struct Lock {
    release: Rc<std::cell::RefCell<Option<js_sys::Function>>>,
    dropped: Rc<Cell<bool>>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.dropped.set(true);
        if let Some(release) = self.release.borrow_mut().take() {
            let _ = release.call0(&JsValue::NULL);
        }
    }
}

/// Asks for the exclusive Web Lock `name` (`navigator.locks.request`, called through `Reflect`: web-sys marks the
/// API unstable); `granted` runs once this page holds it, which it then keeps until the [`Lock`] is dropped or the
/// page closes. `None` where the browser has no Web Locks.
pub(crate) fn request_lock(name: &str, granted: impl FnOnce() + 'static) -> Option<Lock> {
    let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let locks = js_sys::Reflect::get(&navigator, &"locks".into()).ok().filter(|l| l.is_object())?;
    let request: js_sys::Function = js_sys::Reflect::get(&locks, &"request".into()).ok()?.dyn_into().ok()?;
    let release: Rc<std::cell::RefCell<Option<js_sys::Function>>> = Rc::default();
    let dropped = Rc::new(Cell::new(false));
    let (keep, gone) = (release.clone(), dropped.clone());
    let callback = Closure::once_into_js(move |_lock: JsValue| -> JsValue {
        // The lock is held until this promise resolves.
        let held = js_sys::Promise::new(&mut |resolve, _| {
            *keep.borrow_mut() = Some(resolve);
        });
        if gone.get() {
            if let Some(release) = keep.borrow_mut().take() {
                let _ = release.call0(&JsValue::NULL);
            }
        } else {
            granted();
        }
        held.into()
    });
    request.call2(&locks, &JsValue::from_str(name), &callback).ok()?;
    Some(Lock { release, dropped })
}

/// One end of a `MessagePort` (a tab's link to the store's `SharedWorker`, or the worker's link to one tab) and its
/// message handler.
pub(crate) struct Port {
    port: web_sys::MessagePort,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    /// A tab's: the worker and its `error` handler (the script did not load or did not run).
    worker: Option<(web_sys::SharedWorker, EventHandler)>,
}

/// A handler of one DOM event.
type EventHandler = Closure<dyn FnMut(web_sys::Event)>;

impl Port {
    /// Listens on `port`: `on_message` hears every text message the other end posts.
    pub(crate) fn open(port: web_sys::MessagePort, mut on_message: impl FnMut(String) + 'static) -> Self {
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(text) = e.data().as_string() {
                on_message(text);
            }
        });
        // Setting `onmessage` starts the port.
        port.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Self { port, _on_message: on_message, worker: None }
    }

    /// Posts `text` to the other end (lost without error once the other end is gone: a closed tab).
    pub(crate) fn post(&self, text: &str) {
        let _ = self.port.post_message(&JsValue::from_str(text));
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        if let Some((worker, _)) = &self.worker {
            worker.set_onerror(None);
        }
        self.port.set_onmessage(None);
        self.port.close();
    }
}

/// Whether the browser has `SharedWorker` (Chrome on Android has not).
pub(crate) fn has_shared_worker() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &"SharedWorker".into()).is_ok_and(|c| c.is_function())
}

/// Whether this code runs in a `SharedWorker` (where the store hosts for the tabs that attach).
pub(crate) fn in_shared_worker() -> bool {
    js_sys::global().dyn_ref::<web_sys::SharedWorkerGlobalScope>().is_some()
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// `import.meta` where it is read: in the wasm-bindgen glue itself (the import is generated into it), so its `url`
    /// is the glue's. ES module output only, which is what Trunk, wasm-pack's `web` target and bundlers load.
    type ImportMeta;
    #[wasm_bindgen(thread_local_v2, js_namespace = import, js_name = meta)]
    static IMPORT_META: ImportMeta;
    #[wasm_bindgen(method, getter)]
    fn url(this: &ImportMeta) -> String;
}

#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/shell/shared_worker.js")]
extern "C" {
    /// The name of the `SharedWorker` that hosts the shared store `name` with the app whose glue is at `glue` and
    /// wasm at `wasm`. The glue imports `shared_worker.js` (for this function), and in a worker so named that module
    /// makes the worker host.
    #[wasm_bindgen(js_name = workerName)]
    fn worker_name(glue: &str, wasm: &str, name: &str) -> String;
}

/// The `SharedWorker` that hosts this app's store `name` when its options name no script: its script and its name.
/// The script is the app's own wasm-bindgen glue (the file the page loaded, from the HTTP cache), and the name says
/// the glue, the wasm and `name` (`shell/shared_worker.js`), so that the worker runs the same build as the page. The
/// glue is the module that imported this wasm; the wasm is the file wasm-bindgen names after it (`app.js`,
/// `app_bg.wasm`: Trunk, wasm-pack, the npm package), or else the one `.wasm` the page fetched (a bundler renames
/// it), as Resource Timing lists them. `Err` says why there is none: the tabs then elect one of them to host, or the
/// app names its own script ([`StoreOptions::shared_worker`](crate::StoreOptions::shared_worker)).
pub(crate) fn app_worker(name: &str) -> Result<(String, String), String> {
    let glue = IMPORT_META.with(ImportMeta::url);
    let performance = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).ok();
    let entries = performance
        .and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
        .map(|p| p.get_entries_by_type("resource"))
        .unwrap_or_default();
    let fetched: Vec<String> = entries
        .iter()
        .filter_map(|e| e.dyn_into::<web_sys::PerformanceEntry>().ok())
        .map(|entry| entry.name())
        .filter(|name| name.split(['?', '#']).next().is_some_and(|path| path.ends_with(".wasm")))
        .collect();
    let beside = glue.strip_suffix(".js").map(|stem| format!("{stem}_bg.wasm"));
    let wasm = match (beside, fetched.as_slice()) {
        (Some(beside), _) if fetched.contains(&beside) => beside,
        (_, [only]) => only.clone(),
        (_, []) => return Err(format!("the page fetched no .wasm beside {glue}")),
        (_, _) => return Err(format!("the page fetched {} .wasm files, none named after {glue}", fetched.len())),
    };
    let name = worker_name(&glue, &wasm, name);
    Ok((glue, name))
}

/// Starts (or attaches to) the `SharedWorker` running the module script `url` under `name`, and listens on its port
/// (`on_message` hears its text messages; `on_error` hears once why the worker failed: its script did not load or
/// threw). `Err` where the browser has no `SharedWorker` (Chrome on Android) or refuses the URL.
pub(crate) fn attach_shared_worker(
    url: &str,
    name: &str,
    on_message: impl FnMut(String) + 'static,
    on_error: impl FnOnce(String) + 'static,
) -> Result<Port, String> {
    if !has_shared_worker() {
        return Err("this browser has no SharedWorker".to_owned());
    }
    let options = web_sys::WorkerOptions::new();
    options.set_type(web_sys::WorkerType::Module);
    options.set_name(name);
    let worker = web_sys::SharedWorker::new_with_worker_options(url, &options).map_err(|e| describe(&e))?;
    let mut on_error = Some(on_error);
    let url = url.to_owned();
    let failed = EventHandler::new(move |e: web_sys::Event| {
        let message = js_sys::Reflect::get(&e, &"message".into()).ok().and_then(|m| m.as_string());
        if let Some(on_error) = on_error.take() {
            on_error(message.unwrap_or_else(|| format!("the worker script {url} did not load or did not run")));
        }
    });
    worker.set_onerror(Some(failed.as_ref().unchecked_ref()));
    let mut port = Port::open(worker.port(), on_message);
    port.worker = Some((worker, failed));
    Ok(port)
}
