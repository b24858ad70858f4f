//! Wire types for subsignal, with no IO: the graphql-transport-ws messages and close codes, the AWS AppSync
//! real-time messages, and subsignal's change envelope (`seq`, `prevSeq`, operation, key, version, expiry flag).
//!
//! Both the server and the browser store depend on this crate; it knows neither of them and builds for native and
//! `wasm32` targets alike.
#![deny(missing_docs)]

pub mod appsync;
pub mod change;
pub mod transport_ws;
mod wire;

pub use change::{ChangeEnvelope, ChangeOp, FieldError};
pub use transport_ws::{ClientMessage, CloseCode, ServerMessage, SubscribePayload};
