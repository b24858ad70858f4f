use serde_json::{json, Map, Value};
use subsignal_protocol::FieldError;

use super::notes;
use crate::{parse, validate_input, InputMode, ModelSchema};

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn check(
    schema: &ModelSchema,
    model: &str,
    input: Value,
    mode: InputMode,
) -> Result<Map<String, Value>, Vec<FieldError>> {
    validate_input(schema, schema.model(model).unwrap(), &map(input), mode)
}

/// The `(field, code)` pairs of a failed validation.
fn codes(result: Result<Map<String, Value>, Vec<FieldError>>) -> Vec<(String, String)> {
    match result {
        Ok(input) => panic!("expected errors, the input passed: {input:?}"),
        Err(errors) => errors.into_iter().map(|e| (e.field, e.code)).collect(),
    }
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(f, c)| ((*f).to_owned(), (*c).to_owned())).collect()
}

/// A schema with every kind of field, for type checks.
fn kitchen() -> ModelSchema {
    let text = "enum Size { S M L }
type Geo { lat: Float! lng: Float! }
type Address { street: String! geo: Geo lines: [String!]! }
type Item @model {
  id: ID!
  count: Int
  price: Float
  done: Boolean
  scores: [Int]
  sizes: [Size!]
  address: Address
  at: AWSDateTime
  site: AWSURL
  phone: AWSPhone
  ip: AWSIPAddress
  data: AWSJSON
  day: AWSDate
  time: AWSTime
  expiresAt: AWSTimestamp @ttl
}";
    parse("kitchen.graphql", text).unwrap()
}

#[test]
fn a_valid_create_input_is_returned_unchanged() {
    let schema = notes();
    let input = json!({"title": "Hi", "priority": "LOW", "email": "a@example.com", "tags": [{"label": "x", "color": null}], "expiresAt": 1_900_000_000});
    assert_eq!(check(&schema, "Note", input.clone(), InputMode::Create), Ok(map(input)));
}

#[test]
fn create_requires_non_null_fields_but_not_id() {
    let schema = notes();
    assert_eq!(
        codes(check(&schema, "Note", json!({}), InputMode::Create)),
        pairs(&[("title", "REQUIRED"), ("priority", "REQUIRED")])
    );
    let errors = check(&schema, "Note", json!({"title": null, "priority": "HIGH"}), InputMode::Create).unwrap_err();
    assert_eq!(errors, [FieldError::new("title", "REQUIRED", "`title` is required.")]);
    for id in [json!("n1"), json!(42), Value::Null] {
        assert!(check(&schema, "Note", json!({"id": id, "title": "t", "priority": "LOW"}), InputMode::Create).is_ok());
    }
}

#[test]
fn update_requires_only_the_id() {
    let schema = notes();
    assert!(check(&schema, "Note", json!({"id": "n1"}), InputMode::Update).is_ok());
    assert!(check(&schema, "Note", json!({"id": "n1", "body": null, "tags": null}), InputMode::Update).is_ok());
    assert_eq!(codes(check(&schema, "Note", json!({"title": "t"}), InputMode::Update)), pairs(&[("id", "REQUIRED")]));
    assert_eq!(codes(check(&schema, "Note", json!({"id": null}), InputMode::Update)), pairs(&[("id", "REQUIRED")]));
    let errors = check(&schema, "Note", json!({"id": "n1", "title": null}), InputMode::Update).unwrap_err();
    assert_eq!(errors, [FieldError::new("title", "REQUIRED", "`title` is required and cannot be removed.")]);
}

#[test]
fn unknown_and_managed_fields() {
    let schema = notes();
    let input = json!({"title": "t", "priority": "LOW", "colour": "red", "owner": "mallory", "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "x", "version": 9});
    let mut errors = check(&schema, "Note", input, InputMode::Create).unwrap_err();
    errors.sort_by(|a, b| a.field.cmp(&b.field));
    assert_eq!(
        errors,
        [
            FieldError::new("colour", "UNKNOWN_FIELD", "`colour` is not a field of CreateNoteInput."),
            FieldError::new("createdAt", "READ_ONLY", "`createdAt` is set by the server; leave it out."),
            FieldError::new("owner", "READ_ONLY", "`owner` is set by the server; leave it out."),
            FieldError::new("updatedAt", "READ_ONLY", "`updatedAt` is set by the server; leave it out."),
            FieldError::new("version", "READ_ONLY", "`version` is set by the server; leave it out."),
        ]
    );
    let errors = check(&schema, "Note", json!({"id": "n1", "colour": "red"}), InputMode::Update).unwrap_err();
    assert_eq!(errors[0].message, "`colour` is not a field of UpdateNoteInput.");
}

#[test]
fn scalars_get_their_own_codes_and_messages() {
    let schema = notes();
    let errors = check(
        &schema,
        "Note",
        json!({"title": "t", "priority": "LOW", "email": "bob", "expiresAt": 1.5}),
        InputMode::Create,
    )
    .unwrap_err();
    assert_eq!(
        errors,
        [
            FieldError::new("email", "INVALID_EMAIL", "\"bob\" is not an email address like name@example.com."),
            FieldError::new(
                "expiresAt",
                "INVALID_TIMESTAMP",
                "1.5 is not a whole number of seconds since 1970-01-01T00:00Z."
            ),
        ]
    );
    let schema = kitchen();
    let input = json!({"at": "2024-01-01T00:00:00", "site": "example.com", "phone": "555", "ip": "1.2.3.4/40", "data": "{a:1}", "day": "2024-13-01", "time": "25:00"});
    assert_eq!(
        codes(check(&schema, "Item", input, InputMode::Create)),
        pairs(&[
            ("at", "INVALID_DATETIME"),
            ("site", "INVALID_URL"),
            ("phone", "INVALID_PHONE"),
            ("ip", "INVALID_IP_ADDRESS"),
            ("data", "INVALID_JSON"),
            ("day", "INVALID_DATE"),
            ("time", "INVALID_TIME"),
        ])
    );
}

#[test]
fn enums_must_be_declared_values() {
    let schema = notes();
    let errors = check(&schema, "Note", json!({"title": "t", "priority": "MEDIUM"}), InputMode::Create).unwrap_err();
    assert_eq!(errors, [FieldError::new("priority", "INVALID_ENUM", "\"MEDIUM\" is not one of LOW, HIGH.")]);
    assert_eq!(
        codes(check(&schema, "Note", json!({"id": "n", "priority": 1}), InputMode::Update)),
        pairs(&[("priority", "INVALID_ENUM")])
    );
    let schema = kitchen();
    assert_eq!(
        codes(check(&schema, "Item", json!({"sizes": ["S", "XL"]}), InputMode::Create)),
        pairs(&[("sizes[1]", "INVALID_ENUM")])
    );
}

#[test]
fn built_in_scalar_types() {
    let schema = kitchen();
    assert!(check(
        &schema,
        "Item",
        json!({"count": -2_147_483_648_i64, "price": 3, "done": false, "scores": [1, null, 3]}),
        InputMode::Create
    )
    .is_ok());
    let input = json!({"count": 2_147_483_648_i64, "price": "3", "done": "yes", "scores": [1.5], "id": true});
    let errors = check(&schema, "Item", input, InputMode::Create).unwrap_err();
    assert_eq!(
        errors,
        [
            FieldError::new("id", "INVALID_TYPE", "`id` must be an id (a string)."),
            FieldError::new("count", "INVALID_TYPE", "`count` must be a whole number from -2147483648 to 2147483647."),
            FieldError::new("price", "INVALID_TYPE", "`price` must be a number."),
            FieldError::new("done", "INVALID_TYPE", "`done` must be true or false."),
            FieldError::new(
                "scores[0]",
                "INVALID_TYPE",
                "`scores[0]` must be a whole number from -2147483648 to 2147483647."
            ),
        ]
    );
    assert_eq!(
        codes(check(&schema, "Item", json!({"count": 1.0}), InputMode::Create)),
        pairs(&[("count", "INVALID_TYPE")])
    );
}

#[test]
fn lists_are_checked_item_by_item() {
    let schema = notes();
    let input = json!({"title": "t", "priority": "LOW", "tags": [{"label": "a"}, null, {"label": 3}]});
    let errors = check(&schema, "Note", input, InputMode::Create).unwrap_err();
    assert_eq!(
        errors,
        [
            FieldError::new("tags[1]", "REQUIRED", "`tags[1]` cannot be null."),
            FieldError::new("tags[2].label", "INVALID_TYPE", "`tags[2].label` must be a string."),
        ]
    );
    let errors = check(&schema, "Note", json!({"id": "n", "tags": {"label": "a"}}), InputMode::Update).unwrap_err();
    assert_eq!(errors, [FieldError::new("tags", "INVALID_TYPE", "`tags` must be a list.")]);
}

#[test]
fn embedded_objects_are_checked_recursively_and_whole() {
    let schema = notes();
    let input = json!({"id": "n", "tags": [{"label": "a", "color": "red"}, {"color": "blue", "shade": 2}, "plain"]});
    let errors = check(&schema, "Note", input, InputMode::Update).unwrap_err();
    assert_eq!(
        errors,
        [
            FieldError::new("tags[1].label", "REQUIRED", "`tags[1].label` is required."),
            FieldError::new("tags[1].shade", "UNKNOWN_FIELD", "`shade` is not a field of TagInput."),
            FieldError::new("tags[2]", "INVALID_TYPE", "`tags[2]` must be an object (TagInput)."),
        ]
    );
    let schema = kitchen();
    let input = json!({"address": {"street": "Main St", "geo": {"lat": "north", "lng": null}, "lines": ["a", null]}});
    assert_eq!(
        codes(check(&schema, "Item", input, InputMode::Create)),
        pairs(&[
            ("address.geo.lat", "INVALID_TYPE"),
            ("address.geo.lng", "REQUIRED"),
            ("address.lines[1]", "REQUIRED")
        ])
    );
    let input = json!({"address": {"street": "Main St", "geo": {"lat": 1, "lng": 2.5}, "lines": []}});
    assert!(check(&schema, "Item", input, InputMode::Create).is_ok());
}
