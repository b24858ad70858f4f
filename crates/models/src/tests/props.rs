use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::filter::items;
use super::{notes, NOTES};
use crate::{parse, validate_input, Filter, InputMode};

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        "[a-zA-Z0-9@:./ +-]{0,12}".prop_map(Value::String),
        prop::sample::select(vec!["LOW", "HIGH", "a@example.com", "2024-01-01", "12:30", "1.2.3.4", "https://x.io/"])
            .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec!["id", "title", "body", "label", "color", "tags", "priority", "email", "x"]),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

/// An input-like object over the example model's field names.
fn any_input() -> impl Strategy<Value = Map<String, Value>> {
    let keys = vec!["id", "title", "body", "email", "priority", "tags", "expiresAt", "owner", "nope"];
    prop::collection::btree_map(prop::sample::select(keys), any_json(), 0..8)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// A single-field test over the `Item` model, valid by construction.
fn any_test() -> impl Strategy<Value = Value> {
    let name = prop::sample::select(vec!["apple", "banana", "b", "", "cherry"]);
    prop_oneof![
        (
            prop::sample::select(vec!["eq", "ne", "lt", "le", "gt", "ge", "contains", "notContains", "beginsWith"]),
            name.clone()
        )
            .prop_map(|(op, v)| json!({"name": {op: v}})),
        (prop::sample::select(vec!["eq", "ne", "lt", "le", "gt", "ge"]), -3i64..12)
            .prop_map(|(op, v)| json!({"count": {op: v}})),
        (-3i64..12, -3i64..12).prop_map(|(a, b)| json!({"count": {"between": [a, b]}})),
        (prop::sample::select(vec!["contains", "notContains"]), name).prop_map(|(op, v)| json!({"labels": {op: v}})),
        any::<bool>().prop_map(|b| json!({"done": {"attributeExists": b}})),
        any::<bool>().prop_map(|b| json!({"done": {"eq": b}})),
    ]
}

fn any_filter() -> impl Strategy<Value = Value> {
    any_test().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| json!({"and": v})),
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| json!({"or": v})),
            inner.prop_map(|f| json!({"not": f})),
        ]
    })
}

fn any_row() -> impl Strategy<Value = Map<String, Value>> {
    let name = prop_oneof![
        Just(Value::Null),
        prop::sample::select(vec!["apple", "banana", "bb", "cherry"]).prop_map(|s| json!(s))
    ];
    let count = prop_oneof![Just(Value::Null), (-3i64..12).prop_map(|n| json!(n))];
    let done = prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool)];
    let labels = prop::collection::vec(prop::sample::select(vec!["apple", "b", "cherry"]), 0..3);
    (name, count, done, labels).prop_map(|(name, count, done, labels)| {
        let row = json!({"id": "r", "name": name, "count": count, "done": done, "labels": labels});
        row.as_object().cloned().unwrap_or_default()
    })
}

proptest! {
    #[test]
    fn not_inverts_a_filter(f in any_filter(), row in any_row()) {
        let schema = items();
        let item = schema.model("Item").unwrap();
        let plain = Filter::parse(item, &f).unwrap();
        let negated = Filter::parse(item, &json!({"not": f})).unwrap();
        prop_assert_eq!(negated.matches(&row), !plain.matches(&row));
    }

    #[test]
    fn de_morgan_holds(a in any_filter(), b in any_filter(), row in any_row()) {
        let schema = items();
        let item = schema.model("Item").unwrap();
        let left = Filter::parse(item, &json!({"not": {"and": [a.clone(), b.clone()]}})).unwrap();
        let right = Filter::parse(item, &json!({"or": [{"not": a}, {"not": b}]})).unwrap();
        prop_assert_eq!(left.matches(&row), right.matches(&row));
    }

    #[test]
    fn ne_is_the_opposite_of_eq(v in -3i64..12, row in any_row()) {
        let schema = items();
        let item = schema.model("Item").unwrap();
        let eq = Filter::parse(item, &json!({"count": {"eq": v}})).unwrap();
        let ne = Filter::parse(item, &json!({"count": {"ne": v}})).unwrap();
        prop_assert_eq!(eq.matches(&row), !ne.matches(&row));
    }

    #[test]
    fn filter_parsing_never_panics(value in any_json()) {
        let schema = items();
        let _ = Filter::parse(schema.model("Item").unwrap(), &value);
    }

    #[test]
    fn validation_never_panics(input in any_input()) {
        let schema = notes();
        let note = schema.model("Note").unwrap();
        for mode in [InputMode::Create, InputMode::Update] {
            if let Ok(output) = validate_input(&schema, note, &input, mode) {
                prop_assert_eq!(&output, &input);
            }
        }
    }

    #[test]
    fn parsing_never_panics_on_a_damaged_schema(cut in 0..NOTES.len(), len in 0usize..6, insert in "[{}\\[\\]@:!\"# a-z]{0,3}") {
        let mut text: String = NOTES.to_owned();
        let start = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + len).min(text.len());
        let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text.replace_range(start..end, &insert);
        if let Err(errors) = parse("damaged.graphql", &text) {
            prop_assert!(!errors.errors.is_empty());
            for e in &errors.errors {
                prop_assert!(e.line >= 1 && e.column >= 1);
            }
        }
    }
}
