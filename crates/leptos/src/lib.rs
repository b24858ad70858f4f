//! The Leptos front door of subsignal.
#![deny(missing_docs)]
#![cfg(target_arch = "wasm32")]
