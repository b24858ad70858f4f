use serde_json::{json, Map, Value};
use subsignal_protocol::FieldError;

use super::notes;
use crate::{filter_input_fields, parse, Filter, FilterInput, FilterOp, Model, ModelSchema};

pub(super) fn items() -> ModelSchema {
    let text = "enum Size { S M L }
type Geo { lat: Float }
type Item @model {
  id: ID!
  name: String
  count: Int
  price: Float
  done: Boolean
  size: Size
  sizes: [Size]
  labels: [String]
  geo: Geo
  at: AWSDateTime
  expiresAt: AWSTimestamp
}";
    parse("items.graphql", text).unwrap()
}

fn row(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn filter(model: &Model, value: Value) -> Filter {
    Filter::parse(model, &value).unwrap_or_else(|e| panic!("{value} should parse: {e:?}"))
}

/// The rows of `rows` (by `id`) that `filter` keeps.
fn kept(model: &Model, filter_json: Value, rows: &[Value]) -> Vec<String> {
    let filter = filter(model, filter_json);
    rows.iter()
        .map(|r| row(r.clone()))
        .filter(|r| filter.matches(r))
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn sample() -> Vec<Value> {
    vec![
        json!({"id": "a", "name": "apple", "count": 1, "price": 1.5, "done": true, "size": "S", "sizes": ["S", "M"], "labels": ["red", "fruit"], "owner": "alice", "version": 1}),
        json!({"id": "b", "name": "banana", "count": 5, "price": 0.25, "done": false, "size": "M", "sizes": ["M"], "labels": ["yellow"], "owner": "bob", "version": 3}),
        json!({"id": "c", "name": "cherry", "count": 10, "price": 3, "done": null, "sizes": [], "owner": "alice", "version": 2}),
        json!({"id": "d", "count": -4}),
    ]
}

#[test]
fn the_filter_input_describes_amplifys_types() {
    let schema = notes();
    let fields: Vec<(String, String)> =
        filter_input_fields(schema.model("Note").unwrap()).into_iter().map(|f| (f.name, f.input.type_name())).collect();
    let expected = [
        ("id", "ModelIDInput"),
        ("title", "ModelStringInput"),
        ("body", "ModelStringInput"),
        ("email", "ModelStringInput"),
        ("priority", "ModelPriorityInput"),
        ("expiresAt", "ModelIntInput"),
        ("owner", "ModelStringInput"),
        ("createdAt", "ModelStringInput"),
        ("updatedAt", "ModelStringInput"),
        ("version", "ModelIntInput"),
    ];
    assert_eq!(
        fields,
        expected.map(|(f, t)| (f.to_owned(), t.to_owned())),
        "tags (an embedded object) is not filterable"
    );
    let schema = items();
    let inputs: Vec<String> =
        filter_input_fields(schema.model("Item").unwrap()).iter().map(|f| f.input.type_name()).collect();
    assert_eq!(
        &inputs[3..8],
        ["ModelFloatInput", "ModelBooleanInput", "ModelSizeInput", "ModelSizeListInput", "ModelStringInput"]
    );
}

#[test]
fn operators_and_operand_types() {
    let ops = |input: FilterInput| input.operators().iter().map(|op| op.name()).collect::<Vec<_>>().join(" ");
    assert_eq!(ops(FilterInput::String), "ne eq le lt ge gt contains notContains between beginsWith attributeExists");
    assert_eq!(ops(FilterInput::Id), ops(FilterInput::String));
    assert_eq!(ops(FilterInput::Int), "ne eq le lt ge gt between attributeExists");
    assert_eq!(ops(FilterInput::Float), ops(FilterInput::Int));
    assert_eq!(ops(FilterInput::Boolean), "ne eq attributeExists");
    assert_eq!(ops(FilterInput::Enum("Size".into())), "eq ne");
    assert_eq!(ops(FilterInput::EnumList("Size".into())), "eq ne contains notContains");
    assert_eq!(FilterInput::Int.operand_type(FilterOp::Between), "[Int]");
    assert_eq!(FilterInput::Id.operand_type(FilterOp::AttributeExists), "Boolean");
    assert_eq!(FilterInput::Id.operand_type(FilterOp::BeginsWith), "ID");
    assert_eq!(FilterInput::EnumList("Size".into()).operand_type(FilterOp::Eq), "[Size]");
    assert_eq!(FilterInput::EnumList("Size".into()).operand_type(FilterOp::Contains), "Size");
}

#[test]
fn parse_errors_name_the_path() {
    let schema = items();
    let item = schema.model("Item").unwrap();
    let err = |value: Value| Filter::parse(item, &value).unwrap_err();
    assert_eq!(
        err(json!({"nope": {"eq": 1}})),
        FieldError::new("filter.nope", "UNKNOWN_FIELD", "`nope` is not a field of ModelItemFilterInput.")
    );
    assert_eq!(err(json!({"geo": {"eq": 1}})).code, "UNKNOWN_FIELD");
    assert_eq!(
        err(json!({"name": {"like": "a%"}})),
        FieldError::new(
            "filter.name.like",
            "UNKNOWN_FIELD",
            "`like` is not an operator of ModelStringInput; use ne, eq, le, lt, ge, gt, contains, notContains, between, beginsWith, attributeExists."
        )
    );
    assert_eq!(err(json!({"count": {"beginsWith": "1"}})).field, "filter.count.beginsWith");
    assert_eq!(
        err(json!({"count": {"eq": "1"}})),
        FieldError::new("filter.count.eq", "INVALID_TYPE", "`filter.count.eq` must be of type Int.")
    );
    assert_eq!(
        err(json!({"price": {"between": [1]}})),
        FieldError::new(
            "filter.price.between",
            "INVALID_TYPE",
            "`filter.price.between` must be two bounds, [low, high], of type Float."
        )
    );
    assert_eq!(err(json!({"or": [{"name": {"eq": "x"}}, {"name": {"eq": 5}}]})).field, "filter.or[1].name.eq");
    assert_eq!(err(json!({"not": {"and": [{"done": {"eq": "yes"}}]}})).field, "filter.not.and[0].done.eq");
    assert_eq!(err(json!({"sizes": {"eq": "S"}})).field, "filter.sizes.eq");
    assert_eq!(err(json!({"name": {"attributeExists": "yes"}})).code, "INVALID_TYPE");
    assert_eq!(
        err(json!({"name": "apple"})),
        FieldError::new("filter.name", "INVALID_TYPE", "`filter.name` must be an object (ModelStringInput).")
    );
    assert_eq!(
        err(json!([1])),
        FieldError::new("filter", "INVALID_TYPE", "`filter` must be an object (ModelItemFilterInput).")
    );
}

#[test]
fn comparisons_on_strings_and_numbers() {
    let schema = items();
    let item = schema.model("Item").unwrap();
    let rows = sample();
    assert_eq!(kept(item, json!({"name": {"eq": "banana"}}), &rows), ["b"]);
    assert_eq!(
        kept(item, json!({"name": {"ne": "banana"}}), &rows),
        ["a", "c", "d"],
        "ne keeps rows without the field"
    );
    assert_eq!(kept(item, json!({"name": {"gt": "b"}}), &rows), ["b", "c"]);
    assert_eq!(kept(item, json!({"name": {"le": "banana"}}), &rows), ["a", "b"]);
    assert_eq!(kept(item, json!({"count": {"lt": 5}}), &rows), ["a", "d"]);
    assert_eq!(kept(item, json!({"count": {"ge": 5}}), &rows), ["b", "c"]);
    assert_eq!(kept(item, json!({"price": {"eq": 3}}), &rows), ["c"], "3 equals 3.0");
    assert_eq!(kept(item, json!({"price": {"between": [0.5, 3]}}), &rows), ["a", "c"]);
    assert_eq!(kept(item, json!({"name": {"between": ["b", "c"]}}), &rows), ["b"]);
    assert_eq!(kept(item, json!({"count": {"gt": 0, "lt": 10}}), &rows), ["a", "b"], "operators on one field all hold");
    assert_eq!(kept(item, json!({"done": {"eq": false}}), &rows), ["b"]);
    assert_eq!(kept(item, json!({"done": {"ne": true}}), &rows), ["b", "c", "d"]);
}

#[test]
fn strings_lists_and_existence() {
    let schema = items();
    let item = schema.model("Item").unwrap();
    let rows = sample();
    assert_eq!(kept(item, json!({"name": {"contains": "an"}}), &rows), ["b"]);
    assert_eq!(kept(item, json!({"name": {"notContains": "an"}}), &rows), ["a", "c", "d"]);
    assert_eq!(kept(item, json!({"name": {"beginsWith": "ch"}}), &rows), ["c"]);
    assert_eq!(kept(item, json!({"labels": {"contains": "red"}}), &rows), ["a"]);
    assert_eq!(kept(item, json!({"labels": {"notContains": "red"}}), &rows), ["b", "c", "d"]);
    assert_eq!(kept(item, json!({"sizes": {"contains": "M"}}), &rows), ["a", "b"]);
    assert_eq!(kept(item, json!({"sizes": {"eq": ["M"]}}), &rows), ["b"]);
    assert_eq!(kept(item, json!({"size": {"eq": "S"}}), &rows), ["a"]);
    assert_eq!(kept(item, json!({"done": {"attributeExists": true}}), &rows), ["a", "b"], "null is absent");
    assert_eq!(kept(item, json!({"done": {"attributeExists": false}}), &rows), ["c", "d"]);
}

#[test]
fn and_or_not_and_managed_fields() {
    let schema = items();
    let item = schema.model("Item").unwrap();
    let rows = sample();
    assert_eq!(kept(item, json!({"owner": {"eq": "alice"}, "version": {"ge": 2}}), &rows), ["c"]);
    assert_eq!(kept(item, json!({"or": [{"owner": {"eq": "bob"}}, {"count": {"lt": 0}}]}), &rows), ["b", "d"]);
    assert_eq!(kept(item, json!({"not": {"owner": {"eq": "alice"}}}), &rows), ["b", "d"]);
    assert_eq!(kept(item, json!({"and": [{"owner": {"eq": "alice"}}, {"name": {"beginsWith": "a"}}]}), &rows), ["a"]);
    assert_eq!(
        kept(item, json!({"and": {"owner": {"eq": "bob"}}}), &rows),
        ["b"],
        "one object counts as a list of one"
    );
    assert_eq!(kept(item, json!({"and": []}), &rows), ["a", "b", "c", "d"]);
    assert_eq!(kept(item, json!({"or": []}), &rows), Vec::<String>::new());
    assert_eq!(kept(item, json!({}), &rows), ["a", "b", "c", "d"]);
    assert_eq!(
        kept(item, json!({"name": null, "or": null, "count": {"eq": null, "gt": 4}}), &rows),
        ["b", "c"],
        "nulls are absent"
    );
}

#[test]
fn integer_ids_match_string_ids() {
    let schema = items();
    let item = schema.model("Item").unwrap();
    let rows = vec![json!({"id": "7"}), json!({"id": "8"})];
    assert_eq!(kept(item, json!({"id": {"eq": 7}}), &rows), ["7"]);
    assert_eq!(kept(item, json!({"id": {"between": [7, "7z"]}}), &rows), ["7"]);
}
