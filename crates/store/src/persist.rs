//! Persisted collections: the image a shell keeps across reloads (IndexedDB in the browser), and how a store is
//! restored from it.
//!
//! A [`CollectionImage`] holds a persisted collection's confirmed rows (each row carries its version fields), the
//! `lastSeq` they are consistent with, and its source's cursor (Amplify's delta `startedAt`); a [`StoreImage`] adds
//! the offline queue. The store marks what changed and announces it with [`Output::Persist`](crate::Output::Persist);
//! the shell, when it chooses (batched, off the hot path), takes [`Store::take_image`](crate::Store::take_image) and
//! writes it in one transaction, so that rows and queue are never written apart. On the next load it feeds the image
//! back with [`Input::Restore`](crate::Input::Restore) before the network answers: the rows show at once, marked
//! stale, and the source resumes from the image (subsignal's: `afterSeq: lastSeq`, or a new snapshot when the
//! cursor is past retention; the others: their usual list after connecting).
//!
//! The rows persisted are the confirmed ones only: optimistic effects are not written, they come back from the queue
//! written beside them. An image whose [`CollectionImage::fingerprint`] differs from the collection's (its
//! configuration, the image format or the store's version changed) is discarded with a warning.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::mutation::PendingMutation;
use crate::source::CollectionConfig;

/// The version of the image's layout; a change discards every persisted image.
pub const IMAGE_FORMAT: u32 = 1;

/// What a persisted collection keeps across reloads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionImage {
    /// The collection's name.
    pub name: String,
    /// [`fingerprint`] of the configuration the image was taken under.
    pub fingerprint: String,
    /// The confirmed rows, in key order.
    pub rows: Vec<Value>,
    /// The seq the rows are consistent with (subsignal source).
    #[serde(default)]
    pub last_seq: Option<i64>,
    /// The source's own cursor (entity events with a delta query: the last `startedAt`).
    #[serde(default)]
    pub cursor: Option<Value>,
    /// Keys removed recently, with the removal's version (`null`: after every version), oldest first: a queued
    /// mutation answered after the reload must not bring such a row back.
    #[serde(default)]
    pub tombstones: Vec<(String, Value)>,
}

/// Everything a store persists: its persisted collections and its offline queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreImage {
    /// Images of persisted collections (from [`Store::take_image`](crate::Store::take_image): only those that
    /// changed since the last one).
    #[serde(default)]
    pub collections: Vec<CollectionImage>,
    /// The unsettled mutations, in order.
    #[serde(default)]
    pub queue: Vec<PendingMutation>,
}

/// Names a collection's configuration, the image format and the store's version: an image taken under another
/// fingerprint is discarded (its rows may not fit the documents any more).
pub fn fingerprint(config: &CollectionConfig) -> String {
    // FNV-1a over the configuration's JSON: small, stable across builds, no dependency.
    let text = serde_json::to_string(config).unwrap_or_default();
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{IMAGE_FORMAT}/{}/{hash:016x}", env!("CARGO_PKG_VERSION"))
}
