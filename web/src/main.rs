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
    // Nothing here knows of the store's SharedWorker (`&shared=worker`), which runs this build too: there, with no
    // page, mounting throws, and the worker hosts the store all the same (`StoreOptions::shared_worker_url`).
    #[cfg(target_arch = "wasm32")]
    leptos::mount::mount_to_body(app::App);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("subsignal-web runs in a browser: build it with `trunk build --release` or run `cargo xtask demo`.");
}
