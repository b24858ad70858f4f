//! An operation's result, read in one pass into the shape its subscription expects.
//!
//! A `next` (graphql-transport-ws) or `data` (AppSync) message of a subscription that reads subsignal's change
//! envelope is read straight into a [`ChangeEvent`]: the envelope's fields into their types and only the entity into
//! JSON. Reading the whole message into a JSON tree first (a map per level, a string per key) and the envelope out of
//! that tree afterwards was most of the cost of an event in Chromium's profile. Anything else — another message type,
//! another source's subscription, a payload ahead of its id, a change event not shaped as expected — is left to the
//! wire's general reader, and its strategy reads the JSON as before, with the same warnings. Where both readers
//! accept a message they agree (the proptest in `sync/subsignal.rs`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use subsignal_protocol::{ChangeEnvelope, ChangeOp};

/// An operation's result as the connection read it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Payload {
    /// A change event of a subscription that reads subsignal's change envelope.
    Change(ChangeEvent),
    /// Any other result, as JSON (`{data?, errors?, extensions?}`).
    Json(Value),
}

/// Where a subscription's change event sits in its result: the change under `data.<field>`, the entity under
/// `<entity>` of the change (a name that is none of the envelope's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChangeShape<'a> {
    pub(crate) field: &'a str,
    pub(crate) entity: &'a str,
}

/// The envelope's fields on the wire (`ChangeEnvelope`, camelCase).
pub(crate) const ENVELOPE_FIELDS: [&str; 8] =
    ["seq", "prevSeq", "op", "key", "version", "expired", "clientMutationId", "committedAtMs"];

/// A change event: its envelope, and its entity (`None` when absent or `null`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChangeEvent {
    pub(crate) env: ChangeEnvelope,
    pub(crate) entity: Option<Value>,
}

/// Reads `text` as a result message (type `result_type`) whose subscription `shape_of` gives a [`ChangeShape`]:
/// its id and its change event. `None` for anything else (the caller reads that with the wire's general reader).
pub(crate) fn read_change<'s>(
    text: &str,
    result_type: &str,
    shape_of: &dyn Fn(&str) -> Option<ChangeShape<'s>>,
) -> Option<(String, ChangeEvent)> {
    let mut reader = serde_json::Deserializer::from_str(text);
    let read = (&mut reader).deserialize_map(MessageVisitor { result_type, shape_of }).ok()?;
    reader.end().ok()?;
    Some(read)
}

/// A map key, borrowed from the text unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Not the message this module reads: the general reader takes it.
fn other<E: de::Error>() -> E {
    E::custom("not a change event")
}

/// The message: `type`, `id`, and the `payload` read by the shape of the id's subscription.
struct MessageVisitor<'v, 's> {
    result_type: &'v str,
    shape_of: &'v dyn Fn(&str) -> Option<ChangeShape<'s>>,
}

impl<'de> Visitor<'de> for MessageVisitor<'_, '_> {
    type Value = (String, ChangeEvent);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a server message")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut typed = false;
        let mut id: Option<String> = None;
        let mut event = None;
        while let Some(Key(key)) = map.next_key()? {
            match &*key {
                "type" => {
                    let Key(kind) = map.next_value()?;
                    if kind != self.result_type {
                        return Err(other());
                    }
                    typed = true;
                }
                "id" => id = Some(map.next_value()?),
                "payload" => {
                    // Servers send the type and id first; a payload ahead of them goes to the general reader.
                    let shape = id.as_deref().filter(|_| typed).and_then(self.shape_of).ok_or_else(other)?;
                    event = Some(map.next_value_seed(result_seed(shape))?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        id.zip(event).ok_or_else(other)
    }
}

/// The member `name` of an object, read by `seed`; the other members are skipped (a result's `errors` and
/// `extensions`, the other fields of `data`).
#[derive(Clone, Copy)]
struct Member<'a, S> {
    name: &'a str,
    seed: S,
}

/// A result's change event: `{data: {<field>: change}}`.
fn result_seed(shape: ChangeShape<'_>) -> Member<'_, Member<'_, ChangeSeed<'_>>> {
    Member { name: "data", seed: Member { name: shape.field, seed: ChangeSeed(shape.entity) } }
}

impl<'de, S: DeserializeSeed<'de> + Copy> DeserializeSeed<'de> for Member<'_, S> {
    type Value = S::Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, S: DeserializeSeed<'de> + Copy> Visitor<'de> for Member<'_, S> {
    type Value = S::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object with `{}`", self.name)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<S::Value, A::Error> {
        let mut value = None;
        while let Some(Key(key)) = map.next_key()? {
            if key == self.name {
                value = Some(map.next_value_seed(self.seed)?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        value.ok_or_else(other)
    }
}

/// The change: the envelope's fields as `ChangeEnvelope` reads them, the entity under its name, the rest skipped.
#[derive(Clone, Copy)]
struct ChangeSeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for ChangeSeed<'_> {
    type Value = ChangeEvent;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<ChangeEvent, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ChangeSeed<'_> {
    type Value = ChangeEvent;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a change event")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChangeEvent, A::Error> {
        let (mut seq, mut prev_seq, mut op) = (None, None, None::<ChangeOp>);
        let mut env = ChangeEnvelope {
            seq: 0,
            prev_seq: 0,
            op: ChangeOp::Watermark,
            key: None,
            version: None,
            expired: false,
            client_mutation_id: None,
            committed_at_ms: None,
        };
        let mut entity = None;
        while let Some(Key(key)) = map.next_key()? {
            match &*key {
                "seq" => seq = Some(map.next_value()?),
                "prevSeq" => prev_seq = Some(map.next_value()?),
                "op" => op = Some(map.next_value()?),
                "key" => env.key = map.next_value()?,
                "version" => env.version = map.next_value()?,
                "expired" => env.expired = map.next_value()?,
                "clientMutationId" => env.client_mutation_id = map.next_value()?,
                "committedAtMs" => env.committed_at_ms = map.next_value()?,
                name if name == self.0 => entity = map.next_value::<Option<Value>>()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        env.seq = seq.ok_or_else(|| de::Error::missing_field("seq"))?;
        env.prev_seq = prev_seq.ok_or_else(|| de::Error::missing_field("prevSeq"))?;
        env.op = op.ok_or_else(|| de::Error::missing_field("op"))?;
        Ok(ChangeEvent { env, entity })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: ChangeShape<'static> = ChangeShape { field: "onNoteChanged", entity: "note" };

    fn read(text: &str) -> Option<(String, ChangeEvent)> {
        read_change(text, "next", &|id| (id == "1").then_some(SHAPE))
    }

    #[test]
    fn reads_a_change_event_in_either_key_order() {
        let want = ChangeEvent {
            env: ChangeEnvelope {
                seq: 7,
                prev_seq: 6,
                op: ChangeOp::Modify,
                key: Some("n1".into()),
                version: Some(2),
                expired: false,
                client_mutation_id: Some("m1".into()),
                committed_at_ms: None,
            },
            entity: Some(serde_json::json!({"id": "n1", "title": "a \"quoted\" title", "version": 2})),
        };
        let change = r#"{"seq":7,"prevSeq":6,"op":"MODIFY","key":"n1","version":2,"expired":false,
            "note":{"id":"n1","title":"a \"quoted\" title","version":2},"clientMutationId":"m1","extra":[1,{"a":null}]}"#;
        for text in [
            format!(r#"{{"type":"next","id":"1","payload":{{"data":{{"onNoteChanged":{change}}}}}}}"#),
            format!(
                r#"{{"id":"1","type":"next","payload":{{"errors":[],"data":{{"other":1,"onNoteChanged":{change}}}}}}}"#
            ),
            format!(
                r#" {{ "i\u0064" : "1" , "type" : "next" , "payload" : {{ "data" : {{ "onNoteChanged" : {change} }} }} }} "#
            ),
        ] {
            assert_eq!(read(&text), Some(("1".to_owned(), want.clone())), "{text}");
        }
    }

    #[test]
    fn envelope_fields_name_every_field_of_the_envelope() {
        let env = ChangeEnvelope {
            seq: 1,
            prev_seq: 0,
            op: ChangeOp::Insert,
            key: Some("k".into()),
            version: Some(1),
            expired: false,
            client_mutation_id: Some("m".into()),
            committed_at_ms: Some(1),
        };
        let serde_json::Value::Object(fields) = serde_json::to_value(env).unwrap() else { panic!() };
        let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
        let mut want = ENVELOPE_FIELDS.to_vec();
        names.sort_unstable();
        want.sort_unstable();
        assert_eq!(names, want);
    }

    #[test]
    fn leaves_everything_else_to_the_general_reader() {
        for text in [
            // Other types, another subscription, a payload ahead of its type or id.
            r#"{"type":"complete","id":"1"}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"next","id":"2","payload":{"data":{"onNoteChanged":{"seq":1,"prevSeq":0,"op":"INSERT"}}}}"#,
            r#"{"payload":{"data":{"onNoteChanged":{"seq":1,"prevSeq":0,"op":"INSERT"}}},"type":"next","id":"1"}"#,
            r#"{"type":"next","payload":{"data":{"onNoteChanged":{"seq":1,"prevSeq":0,"op":"INSERT"}}},"id":"1"}"#,
            // Results that are not a change event as expected, or not JSON.
            r#"{"type":"next","id":"1","payload":{"data":null,"errors":[{"message":"no"}]}}"#,
            r#"{"type":"next","id":"1","payload":{"data":{"onNoteChanged":null}}}"#,
            r#"{"type":"next","id":"1","payload":{"data":{"onNoteChanged":{"prevSeq":0,"op":"INSERT"}}}}"#,
            r#"{"type":"next","id":"1","payload":{"data":{"onNoteChanged":{"seq":1,"prevSeq":0,"op":"NOPE"}}}}"#,
            r#"{"type":"next","id":"1","payload":{"data":{"onNoteChanged":{"seq":1,"prevSeq":0,"op":"INSERT","expired":null}}}}"#,
            r#"{"type":"next","id":"1","payload":null}"#,
            r#"{"type":"next","id":null,"payload":{"data":{"onNoteChanged":{"seq":1,"prevSeq":0,"op":"INSERT"}}}}"#,
            r#"{"type":"next","id":"1","payload":{"data":{"onNoteChanged":{"seq":1,"prevSeq":0,"op":"INSERT"}}}} trailing"#,
            r#"{"type":"next","id":"1""#,
        ] {
            assert_eq!(read(text), None, "{text}");
        }
    }
}
