//! How both protocols' server messages are read: in one pass into [`Message`], then matched on its type.
//!
//! The derived `Deserialize` of an internally tagged enum buffers the whole message, payload included, into serde's
//! private `Content` tree and reads it twice: a third of a store's cost per event (profiled in Chromium), and about
//! 30 KB of the npm package's wasm for the `Content` code instantiated per payload type.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// A message as it arrives: its type, and the fields any type may carry.
#[derive(Deserialize)]
pub(crate) struct Message {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) payload: Option<Value>,
}

impl Message {
    /// The id, which a message of this type must carry.
    pub(crate) fn id(&mut self) -> Result<String, String> {
        self.id.take().ok_or_else(|| format!("a `{}` message without an id", self.kind))
    }

    /// The payload, which a message of this type must carry.
    pub(crate) fn payload(&mut self) -> Result<Value, String> {
        self.payload.take().ok_or_else(|| format!("a `{}` message without a payload", self.kind))
    }

    /// The payload read as `T`.
    pub(crate) fn payload_as<T: DeserializeOwned>(&mut self) -> Result<T, String> {
        let payload = self.payload()?;
        serde_json::from_value(payload).map_err(|e| format!("a `{}` message's payload: {e}", self.kind))
    }

    /// The error for a type this protocol does not have.
    pub(crate) fn unknown(&self) -> String {
        format!("unknown message type `{}`", self.kind)
    }
}
