//! Persisted collections: the image a shell keeps across reloads (IndexedDB in the browser), and how a store is
//! restored from it.
//!
//! A [`CollectionImage`] holds a persisted collection's confirmed rows (each row carries its version fields), the
//! `lastSeq` they are consistent with, and its source's cursor (Amplify's delta `startedAt`); a [`StoreImage`] adds
//! the offline queue. The store marks what changed and announces it with [`Output::Persist`](crate::Output::Persist);
//! the shell, when it chooses (batched, off the hot path), takes [`Store::take_image`](crate::Store::take_image) and
//! writes it in one transaction, so that rows and queue are never written apart. On the next load it feeds the image
//! back with [`Input::Restore`](crate::Input::Restore) before the network answers (with
//! [`StoreConfig::awaits_restore`](crate::StoreConfig::awaits_restore) the socket opens meanwhile, but nothing is
//! fetched before the image is back): the rows show at once, marked
//! stale, and the source resumes from the image (subsignal's: `afterSeq: lastSeq`, or a new snapshot when the
//! cursor is past retention; the others: their usual list after connecting).
//!
//! The rows persisted are the confirmed ones only: optimistic effects are not written, they come back from the queue
//! written beside them. An image whose [`CollectionImage::fingerprint`] differs from the collection's (its
//! configuration, the image format or the store's version changed) is discarded with a warning.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::mutation::PendingMutation;
use crate::source::{CollectionConfig, EntityAction, Source};

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

impl CollectionImage {
    /// The image as JSON text (as its serde form), built through [`Value`]: the browser shell writes it without a
    /// serializer of its own in the wasm.
    pub fn to_json(&self) -> String {
        let tombstones: Vec<Value> = self
            .tombstones
            .iter()
            .map(|(key, version)| Value::Array(vec![key.as_str().into(), version.clone()]))
            .collect();
        let mut map = Map::new();
        map.insert("name".to_owned(), self.name.as_str().into());
        map.insert("fingerprint".to_owned(), self.fingerprint.as_str().into());
        map.insert("rows".to_owned(), Value::Array(self.rows.clone()));
        map.insert("lastSeq".to_owned(), self.last_seq.into());
        map.insert("cursor".to_owned(), self.cursor.clone().unwrap_or(Value::Null));
        map.insert("tombstones".to_owned(), Value::Array(tombstones));
        Value::Object(map).to_string()
    }

    /// Reads [`CollectionImage::to_json`]'s text (or the serde form), or says what is wrong with it.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let text_of = |field: &str| value.get(field).and_then(Value::as_str).map(str::to_owned);
        let missing = |field: &str| format!("a collection image without `{field}`");
        let rows = value.get("rows").and_then(Value::as_array).ok_or_else(|| missing("rows"))?.clone();
        let tombstones = match value.get("tombstones") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|pair| match pair.as_array().map(Vec::as_slice) {
                    Some([Value::String(key), version]) => Ok((key.clone(), version.clone())),
                    _ => Err(format!("a collection image with a malformed tombstone: {pair}")),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(format!("a collection image whose `tombstones` is not a list: {other}")),
        };
        Ok(Self {
            name: text_of("name").ok_or_else(|| missing("name"))?,
            fingerprint: text_of("fingerprint").ok_or_else(|| missing("fingerprint"))?,
            rows,
            last_seq: value.get("lastSeq").and_then(Value::as_i64),
            cursor: value.get("cursor").filter(|c| !c.is_null()).cloned(),
            tombstones,
        })
    }
}

/// Names a collection's configuration, the image format and the store's version: an image taken under another
/// fingerprint is discarded (its rows may not fit the documents any more).
pub fn fingerprint(config: &CollectionConfig) -> String {
    // FNV-1a over every field of the configuration: small, stable across builds, no dependency, no serializer.
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut feed = |text: &str| {
        for byte in text.bytes().chain([0xff]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    let json = |value: &Option<Value>| value.as_ref().map(Value::to_string).unwrap_or_default();
    feed(&config.name);
    feed(&config.key_field);
    config.version_fields.iter().for_each(|f| feed(f));
    feed(&config.deleted_field);
    feed(if config.descending { "descending" } else { "ascending" });
    feed(&config.page_size.map(|p| p.to_string()).unwrap_or_default());
    match &config.source {
        Source::Subsignal(s) => {
            for text in [&s.subscription, &s.subscription_field, &s.entity_field, &s.snapshot_query, &s.snapshot_field]
            {
                feed(text);
            }
        }
        Source::EntityEvents(s) => {
            for sub in &s.subscriptions {
                feed(&sub.document);
                feed(&sub.field);
                feed(if sub.action == EntityAction::Upsert { "upsert" } else { "remove" });
                feed(&json(&sub.variables));
            }
            for list in std::iter::once(&s.list).chain(&s.delta) {
                feed(&list.document);
                feed(&list.field);
                feed(&json(&list.variables));
            }
        }
        Source::LiveQuery(s) => {
            feed(&s.subscription);
            feed(&s.field);
            feed(&json(&s.variables));
        }
    }
    format!("{IMAGE_FORMAT}/{}/{hash:016x}", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_image_reads_back_from_its_json_and_from_its_serde_form() {
        let image = CollectionImage {
            name: "orders".into(),
            fingerprint: fingerprint(&CollectionConfig::new("orders")),
            rows: vec![json!({"id": "a", "version": 2})],
            last_seq: Some(7),
            cursor: Some(json!(1_700_000_000)),
            tombstones: vec![("b".into(), json!(3)), ("c".into(), Value::Null)],
        };
        assert_eq!(CollectionImage::from_json(&image.to_json()), Ok(image.clone()));
        assert_eq!(CollectionImage::from_json(&serde_json::to_string(&image).unwrap()), Ok(image.clone()));
        assert!(CollectionImage::from_json("{ nope").is_err());
        assert_eq!(CollectionImage::from_json("{}"), Err("a collection image without `rows`".to_owned()));
    }

    #[test]
    fn the_fingerprint_changes_with_any_setting() {
        let base = CollectionConfig::new("orders").subscription("s", "f", "e").snapshot("q", "l");
        let print = fingerprint(&base);
        assert_eq!(print, fingerprint(&base.clone()));
        assert!(print.starts_with(&format!("{IMAGE_FORMAT}/{}/", env!("CARGO_PKG_VERSION"))));
        for other in [
            base.clone().snapshot("q2", "l"),
            base.clone().page_size(3),
            base.clone().descending(),
            base.clone().fields("key", "version"),
            CollectionConfig::entity_events("orders").list("q", "l"),
        ] {
            assert_ne!(fingerprint(&other), print, "{other:?}");
        }
        // Persisting or not is not part of it.
        assert_eq!(fingerprint(&base.clone().persist()), print);
    }
}
