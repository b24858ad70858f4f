//! The order-form web app: place an order and watch it move through its statuses, driven only by subscription
//! events. All server data lives in the subsignal store (`subsignal-leptos`); the app keeps only UI state (form
//! fields, toggles). Build with `trunk build --release` (or `cargo xtask demo`, which also serves it).
#![deny(missing_docs)]
// `#[component]` turns `pub(crate) fn` into a `pub` props struct, which the lint cannot see through.
#![allow(unreachable_pub)]

#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod edit;
#[cfg(target_arch = "wasm32")]
mod form;
#[cfg(target_arch = "wasm32")]
mod netsim;
#[cfg(target_arch = "wasm32")]
mod orders;
#[cfg(target_arch = "wasm32")]
mod status;
#[cfg(target_arch = "wasm32")]
mod travel;

fn main() {
    // In the app's SharedWorker (web/worker.js) there is no page to mount: the worker only hosts the store.
    #[cfg(target_arch = "wasm32")]
    if web_sys::window().is_some() {
        leptos::mount::mount_to_body(app::App);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("subsignal-web runs in a browser: build it with `trunk build --release` or run `cargo xtask demo`.");
}

/// In the app's SharedWorker (web/worker.js): a tab attaches on `port` and is served by the worker's store.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn host_shared_worker_port(port: web_sys::MessagePort) {
    subsignal_leptos::BrowserStore::attach_shared_worker_port(port);
}
