//! List filters: Amplify's `ModelTFilterInput`, parsed from JSON and matched against rows.
//!
//! A filter is an object whose keys are field names (each holding operators such as `{eq: "x"}`) and the
//! combinators `and`, `or` and `not`; all its keys must hold. Comparisons follow DynamoDB, whose filters Amplify
//! generates: an absent or `null` attribute fails every test except `ne`, `notContains` and
//! `attributeExists: false`.

use std::cmp::Ordering;

use serde_json::{Map, Value};
use subsignal_protocol::FieldError;

use crate::scalars::AwsScalar;
use crate::schema::{BaseType, FieldType, Model};

/// A filter operator, as named in Amplify's filter inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterOp {
    /// `eq`: equal.
    Eq,
    /// `ne`: not equal (true when the attribute is absent).
    Ne,
    /// `le`: less than or equal.
    Le,
    /// `lt`: less than.
    Lt,
    /// `ge`: greater than or equal.
    Ge,
    /// `gt`: greater than.
    Gt,
    /// `contains`: a substring of a string, or an element of a list.
    Contains,
    /// `notContains`: the negation of `contains`.
    NotContains,
    /// `between: [low, high]`: both bounds included.
    Between,
    /// `beginsWith`: a string prefix.
    BeginsWith,
    /// `attributeExists: true|false`: whether the field holds a non-null value.
    AttributeExists,
}

impl FilterOp {
    /// Every operator.
    pub const ALL: [FilterOp; 11] = [
        FilterOp::Eq,
        FilterOp::Ne,
        FilterOp::Le,
        FilterOp::Lt,
        FilterOp::Ge,
        FilterOp::Gt,
        FilterOp::Contains,
        FilterOp::NotContains,
        FilterOp::Between,
        FilterOp::BeginsWith,
        FilterOp::AttributeExists,
    ];

    /// The operator's field name in the filter input, e.g. `beginsWith`.
    pub fn name(self) -> &'static str {
        match self {
            FilterOp::Eq => "eq",
            FilterOp::Ne => "ne",
            FilterOp::Le => "le",
            FilterOp::Lt => "lt",
            FilterOp::Ge => "ge",
            FilterOp::Gt => "gt",
            FilterOp::Contains => "contains",
            FilterOp::NotContains => "notContains",
            FilterOp::Between => "between",
            FilterOp::BeginsWith => "beginsWith",
            FilterOp::AttributeExists => "attributeExists",
        }
    }

    fn from_name(name: &str) -> Option<FilterOp> {
        FilterOp::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// The filter input type of a field, as Amplify names and shapes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterInput {
    /// `ModelStringInput`: `String` and the string-carried AWS scalars.
    String,
    /// `ModelIDInput`: `ID`.
    Id,
    /// `ModelIntInput`: `Int` and `AWSTimestamp`.
    Int,
    /// `ModelFloatInput`: `Float`.
    Float,
    /// `ModelBooleanInput`: `Boolean`.
    Boolean,
    /// `Model<Enum>Input`, e.g. `ModelPriorityInput`: an enum field.
    Enum(String),
    /// `Model<Enum>ListInput`, e.g. `ModelPriorityListInput`: a list-of-enum field.
    EnumList(String),
}

impl FilterInput {
    /// The filter input for a field of type `ty`; `None` for embedded-object fields, which cannot be filtered.
    /// A list of scalars uses the scalar's input, whose `contains` then tests the list's elements.
    pub fn for_type(ty: &FieldType) -> Option<FilterInput> {
        Some(match &ty.base {
            BaseType::Id => FilterInput::Id,
            BaseType::String => FilterInput::String,
            BaseType::Int | BaseType::Aws(AwsScalar::Timestamp) => FilterInput::Int,
            BaseType::Aws(_) => FilterInput::String,
            BaseType::Float => FilterInput::Float,
            BaseType::Boolean => FilterInput::Boolean,
            BaseType::Enum(name) if ty.is_list() => FilterInput::EnumList(name.clone()),
            BaseType::Enum(name) => FilterInput::Enum(name.clone()),
            BaseType::Object(_) => return None,
        })
    }

    /// The GraphQL input type's name, e.g. `ModelStringInput` or `ModelPriorityListInput`.
    pub fn type_name(&self) -> String {
        match self {
            FilterInput::String => "ModelStringInput".to_owned(),
            FilterInput::Id => "ModelIDInput".to_owned(),
            FilterInput::Int => "ModelIntInput".to_owned(),
            FilterInput::Float => "ModelFloatInput".to_owned(),
            FilterInput::Boolean => "ModelBooleanInput".to_owned(),
            FilterInput::Enum(name) => format!("Model{name}Input"),
            FilterInput::EnumList(name) => format!("Model{name}ListInput"),
        }
    }

    /// The operators the input type has, in Amplify's order.
    pub fn operators(&self) -> &'static [FilterOp] {
        use FilterOp::*;
        match self {
            FilterInput::String | FilterInput::Id => {
                &[Ne, Eq, Le, Lt, Ge, Gt, Contains, NotContains, Between, BeginsWith, AttributeExists]
            }
            FilterInput::Int | FilterInput::Float => &[Ne, Eq, Le, Lt, Ge, Gt, Between, AttributeExists],
            FilterInput::Boolean => &[Ne, Eq, AttributeExists],
            FilterInput::Enum(_) => &[Eq, Ne],
            FilterInput::EnumList(_) => &[Eq, Ne, Contains, NotContains],
        }
    }

    /// The GraphQL type of an operator's value in this input, e.g. `String`, `[Int]` for `between`, `Boolean`
    /// for `attributeExists`, `[Priority]` for `eq` on an enum list.
    pub fn operand_type(&self, op: FilterOp) -> String {
        let item = match self {
            FilterInput::String => "String",
            FilterInput::Id => "ID",
            FilterInput::Int => "Int",
            FilterInput::Float => "Float",
            FilterInput::Boolean => "Boolean",
            FilterInput::Enum(name) | FilterInput::EnumList(name) => name,
        };
        match op {
            FilterOp::AttributeExists => "Boolean".to_owned(),
            FilterOp::Between => format!("[{item}]"),
            _ if self.takes_list(op) => format!("[{item}]"),
            _ => item.to_owned(),
        }
    }

    /// Whether `value` fits this input's scalar (one item, not a list).
    fn accepts_item(&self, value: &Value) -> bool {
        match self {
            FilterInput::String | FilterInput::Enum(_) | FilterInput::EnumList(_) => value.is_string(),
            FilterInput::Id => value.is_string() || value.is_i64(),
            FilterInput::Int => value.is_i64(),
            FilterInput::Float => value.is_number(),
            FilterInput::Boolean => value.is_boolean(),
        }
    }

    /// Whether `op` takes a whole list to compare with, as `eq` and `ne` do on an enum list.
    fn takes_list(&self, op: FilterOp) -> bool {
        matches!(self, FilterInput::EnumList(_)) && matches!(op, FilterOp::Eq | FilterOp::Ne)
    }

    /// Whether `value` fits `op`'s operand type.
    fn accepts(&self, op: FilterOp, value: &Value) -> bool {
        match (op, value) {
            (FilterOp::AttributeExists, value) => value.is_boolean(),
            (FilterOp::Between, Value::Array(bounds)) => {
                bounds.len() == 2 && bounds.iter().all(|b| self.accepts_item(b))
            }
            (_, Value::Array(items)) if self.takes_list(op) => items.iter().all(|item| self.accepts_item(item)),
            (FilterOp::Between, _) => false,
            _ if self.takes_list(op) => false,
            (_, value) => self.accepts_item(value),
        }
    }
}

/// A filterable field of a model and its filter input: one field of `ModelTFilterInput`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterField {
    /// The field name.
    pub name: String,
    /// The field's filter input type.
    pub input: FilterInput,
}

/// The fields of `model`'s filter input (`ModelTFilterInput`): every user field except embedded objects, then the
/// managed fields. The input also has `and: [ModelTFilterInput]`, `or: [ModelTFilterInput]` and
/// `not: ModelTFilterInput`.
pub fn filter_input_fields(model: &Model) -> Vec<FilterField> {
    model
        .all_fields()
        .into_iter()
        .filter_map(|field| Some(FilterField { input: FilterInput::for_type(&field.ty)?, name: field.name }))
        .collect()
}

/// A parsed filter over one model's rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    root: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Test { field: String, op: FilterOp, operand: Value },
}

impl Filter {
    /// Parses a `ModelTFilterInput` value for `model`. Unknown fields and operators, operands of the wrong type
    /// and `between` without exactly two bounds are errors whose path starts with `filter` (`filter.title`,
    /// `filter.or[1].priority.eq`). An explicit `null` anywhere counts as absent. Enum operands are not checked
    /// against the enum's values here (GraphQL does that); an unknown value simply matches nothing.
    pub fn parse(model: &Model, value: &Value) -> Result<Filter, FieldError> {
        let fields = filter_input_fields(model);
        let filter_input = model.names().filter_input;
        Ok(Filter { root: parse_node(&fields, &filter_input, value, "filter")? })
    }

    /// Whether `row` passes the filter. Missing keys and `null`s are absent attributes.
    pub fn matches(&self, row: &Map<String, Value>) -> bool {
        self.root.matches(row)
    }
}

/// Parses one filter object: an implicit `and` of its keys.
fn parse_node(fields: &[FilterField], type_name: &str, value: &Value, path: &str) -> Result<Node, FieldError> {
    let Value::Object(map) = value else {
        return Err(FieldError::new(path, "INVALID_TYPE", format!("`{path}` must be an object ({type_name}).")));
    };
    let mut parts = Vec::new();
    for (key, value) in map.iter().filter(|(_, value)| !value.is_null()) {
        let path = format!("{path}.{key}");
        match key.as_str() {
            "and" => parts.push(Node::And(parse_list(fields, type_name, value, &path)?)),
            "or" => parts.push(Node::Or(parse_list(fields, type_name, value, &path)?)),
            "not" => parts.push(Node::Not(Box::new(parse_node(fields, type_name, value, &path)?))),
            name => {
                let Some(field) = fields.iter().find(|f| f.name == name) else {
                    let message = format!("`{name}` is not a field of {type_name}.");
                    return Err(FieldError::new(path, "UNKNOWN_FIELD", message));
                };
                parse_tests(field, value, &path, &mut parts)?;
            }
        }
    }
    Ok(Node::And(parts))
}

/// Parses the list of an `and` or `or`; a single object counts as a list of one, as in GraphQL.
fn parse_list(fields: &[FilterField], type_name: &str, value: &Value, path: &str) -> Result<Vec<Node>, FieldError> {
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter(|(_, item)| !item.is_null())
            .map(|(i, item)| parse_node(fields, type_name, item, &format!("{path}[{i}]")))
            .collect(),
        single => Ok(vec![parse_node(fields, type_name, single, path)?]),
    }
}

/// Parses a field's operators (`{eq: "x", beginsWith: "a"}`) into tests that must all hold.
fn parse_tests(field: &FilterField, value: &Value, path: &str, tests: &mut Vec<Node>) -> Result<(), FieldError> {
    let type_name = field.input.type_name();
    let Value::Object(operators) = value else {
        return Err(FieldError::new(path, "INVALID_TYPE", format!("`{path}` must be an object ({type_name}).")));
    };
    for (key, operand) in operators.iter().filter(|(_, operand)| !operand.is_null()) {
        let op_path = format!("{path}.{key}");
        let Some(op) = FilterOp::from_name(key).filter(|op| field.input.operators().contains(op)) else {
            let known: Vec<&str> = field.input.operators().iter().map(|op| op.name()).collect();
            let message = format!("`{key}` is not an operator of {type_name}; use {}.", known.join(", "));
            return Err(FieldError::new(op_path, "UNKNOWN_FIELD", message));
        };
        if !field.input.accepts(op, operand) {
            let expected = field.input.operand_type(op);
            let message = if op == FilterOp::Between {
                format!(
                    "`{op_path}` must be two bounds, [low, high], of type {}.",
                    field.input.operand_type(FilterOp::Eq)
                )
            } else {
                format!("`{op_path}` must be of type {expected}.")
            };
            return Err(FieldError::new(op_path, "INVALID_TYPE", message));
        }
        tests.push(Node::Test { field: field.name.clone(), op, operand: normalize(&field.input, operand) });
    }
    Ok(())
}

/// Rewrites integer ids as the strings rows store them as.
fn normalize(input: &FilterInput, operand: &Value) -> Value {
    match (input, operand) {
        (FilterInput::Id, Value::Number(n)) => Value::String(n.to_string()),
        (FilterInput::Id, Value::Array(items)) => Value::Array(items.iter().map(|i| normalize(input, i)).collect()),
        _ => operand.clone(),
    }
}

impl Node {
    fn matches(&self, row: &Map<String, Value>) -> bool {
        match self {
            Node::And(nodes) => nodes.iter().all(|n| n.matches(row)),
            Node::Or(nodes) => nodes.iter().any(|n| n.matches(row)),
            Node::Not(node) => !node.matches(row),
            Node::Test { field, op, operand } => test(row.get(field).filter(|v| !v.is_null()), *op, operand),
        }
    }
}

/// Applies one operator to a row's attribute (`None` when absent).
fn test(value: Option<&Value>, op: FilterOp, operand: &Value) -> bool {
    match op {
        FilterOp::AttributeExists => value.is_some() == operand.as_bool().unwrap_or(true),
        FilterOp::Ne => !value.is_some_and(|v| equal(v, operand)),
        FilterOp::NotContains => !value.is_some_and(|v| contains(v, operand)),
        _ => value.is_some_and(|v| test_present(v, op, operand)),
    }
}

/// Applies an operator that fails on absent attributes.
fn test_present(value: &Value, op: FilterOp, operand: &Value) -> bool {
    let ordered = |wanted: fn(Ordering) -> bool| compare(value, operand).is_some_and(wanted);
    match op {
        FilterOp::Eq => equal(value, operand),
        FilterOp::Lt => ordered(Ordering::is_lt),
        FilterOp::Le => ordered(Ordering::is_le),
        FilterOp::Gt => ordered(Ordering::is_gt),
        FilterOp::Ge => ordered(Ordering::is_ge),
        FilterOp::Contains => contains(value, operand),
        FilterOp::BeginsWith => match (value, operand) {
            (Value::String(s), Value::String(prefix)) => s.starts_with(prefix.as_str()),
            _ => false,
        },
        FilterOp::Between => match operand.as_array().map(Vec::as_slice) {
            Some([low, high]) => {
                compare(value, low).is_some_and(Ordering::is_ge) && compare(value, high).is_some_and(Ordering::is_le)
            }
            _ => false,
        },
        FilterOp::Ne | FilterOp::NotContains | FilterOp::AttributeExists => test(Some(value), op, operand),
    }
}

/// Equality with numbers compared by value (`1` equals `1.0`).
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => compare(a, b) == Some(Ordering::Equal),
        _ => a == b,
    }
}

/// The order of two numbers or two strings (by UTF-8 bytes, as DynamoDB orders them); `None` for other pairs.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
        },
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        _ => None,
    }
}

/// Whether a string contains a substring, or a list an element.
fn contains(value: &Value, operand: &Value) -> bool {
    match (value, operand) {
        (Value::String(s), Value::String(part)) => s.contains(part.as_str()),
        (Value::Array(items), operand) => items.iter().any(|item| equal(item, operand)),
        _ => false,
    }
}
