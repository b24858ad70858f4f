//! Checking mutation inputs against a model, with the field errors a form can show next to each field.

use serde_json::{Map, Value};
use subsignal_protocol::FieldError;

use crate::scalars::check_scalar;
use crate::schema::{BaseType, Field, FieldType, Model, ModelSchema, ObjectDef, MANAGED_FIELDS};

/// Which mutation an input belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    /// `createT`: every non-null field but `id` is required; the server generates `id` when it is absent.
    Create,
    /// `updateT`: `id` is required and every other field is optional, but a non-null field cannot be set to
    /// `null`.
    Update,
}

/// Checks a create or update input for `model`, returning it unchanged when it is valid and every problem
/// otherwise. Field paths look like `email` or `tags[1].label`; codes are `REQUIRED`, `INVALID_TYPE`,
/// `INVALID_ENUM`, `UNKNOWN_FIELD`, `READ_ONLY` (a managed field such as `createdAt`) and the scalars' own
/// (`INVALID_EMAIL`, …).
///
/// Values are checked as JSON without GraphQL's input coercion: a list field needs a JSON array, an `Int` an
/// integer within 32 bits, an `AWSTimestamp` an integer within 64 bits.
pub fn validate_input(
    schema: &ModelSchema,
    model: &Model,
    input: &Map<String, Value>,
    mode: InputMode,
) -> Result<Map<String, Value>, Vec<FieldError>> {
    let mut errors = Vec::new();
    for field in &model.fields {
        check_model_field(schema, field, input.get(&field.name), mode, &mut errors);
    }
    let input_type = match mode {
        InputMode::Create => model.names().create_input,
        InputMode::Update => model.names().update_input,
    };
    for key in input.keys().filter(|key| model.field(key).is_none()) {
        errors.push(if MANAGED_FIELDS.contains(&key.as_str()) {
            FieldError::new(key.clone(), "READ_ONLY", format!("`{key}` is set by the server; leave it out."))
        } else {
            unknown_field(key, &input_type)
        });
    }
    if errors.is_empty() {
        Ok(input.clone())
    } else {
        Err(errors)
    }
}

/// Checks one top-level field of a model's input.
fn check_model_field(
    schema: &ModelSchema,
    field: &Field,
    value: Option<&Value>,
    mode: InputMode,
    errors: &mut Vec<FieldError>,
) {
    let is_id = field.name == "id";
    let required = match mode {
        InputMode::Create => field.ty.non_null && !is_id,
        InputMode::Update => is_id,
    };
    match value {
        None if required => errors.push(required_error(&field.name)),
        None => {}
        Some(Value::Null) if required => errors.push(required_error(&field.name)),
        Some(Value::Null) if field.ty.non_null && !is_id => errors.push(FieldError::new(
            field.name.clone(),
            "REQUIRED",
            format!("`{}` is required and cannot be removed.", field.name),
        )),
        Some(Value::Null) => {}
        Some(value) => check_value(schema, &field.name, &field.ty, value, errors),
    }
}

/// Checks a non-null value (a list or a single value) against a field type.
fn check_value(schema: &ModelSchema, path: &str, ty: &FieldType, value: &Value, errors: &mut Vec<FieldError>) {
    let Some(item_non_null) = ty.list else {
        check_single(schema, path, &ty.base, value, errors);
        return;
    };
    let Value::Array(items) = value else {
        errors.push(invalid_type(path, "a list"));
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        match item {
            Value::Null if item_non_null => {
                errors.push(FieldError::new(item_path.clone(), "REQUIRED", format!("`{item_path}` cannot be null.")))
            }
            Value::Null => {}
            item => check_single(schema, &item_path, &ty.base, item, errors),
        }
    }
}

/// Checks a non-null value that is not a list against a named type.
fn check_single(schema: &ModelSchema, path: &str, base: &BaseType, value: &Value, errors: &mut Vec<FieldError>) {
    let error = match base {
        BaseType::Id => (!value.is_string() && !value.is_i64()).then(|| invalid_type(path, "an id (a string)")),
        BaseType::String => (!value.is_string()).then(|| invalid_type(path, "a string")),
        BaseType::Int => (!is_i32(value)).then(|| invalid_type(path, "a whole number from -2147483648 to 2147483647")),
        BaseType::Float => (!value.is_number()).then(|| invalid_type(path, "a number")),
        BaseType::Boolean => (!value.is_boolean()).then(|| invalid_type(path, "true or false")),
        BaseType::Aws(scalar) => check_scalar(*scalar, value)
            .err()
            .map(|code| FieldError::new(path, code, format!("{} is not {}.", show(value), scalar.expected()))),
        BaseType::Enum(name) => check_enum(schema, path, name, value),
        BaseType::Object(name) => match (schema.object(name), value) {
            (Some(object), Value::Object(map)) => {
                check_object(schema, path, object, map, errors);
                None
            }
            _ => Some(invalid_type(path, &format!("an object ({})", crate::names::object_input_name(name)))),
        },
    };
    errors.extend(error);
}

/// Checks that `value` is one of the enum's values.
fn check_enum(schema: &ModelSchema, path: &str, name: &str, value: &Value) -> Option<FieldError> {
    let values = schema.enum_def(name).map(|e| e.values.as_slice()).unwrap_or_default();
    let known = value.as_str().is_some_and(|v| values.iter().any(|allowed| allowed == v));
    (!known)
        .then(|| FieldError::new(path, "INVALID_ENUM", format!("{} is not one of {}.", show(value), values.join(", "))))
}

/// Checks an embedded object against its non-model type, as a whole: its non-null fields are required.
fn check_object(
    schema: &ModelSchema,
    path: &str,
    object: &ObjectDef,
    map: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) {
    for field in &object.fields {
        let field_path = format!("{path}.{}", field.name);
        match map.get(&field.name) {
            None | Some(Value::Null) if field.ty.non_null => errors.push(required_error(&field_path)),
            None | Some(Value::Null) => {}
            Some(value) => check_value(schema, &field_path, &field.ty, value, errors),
        }
    }
    let input_type = object.input_name();
    for key in map.keys().filter(|key| object.field(key).is_none()) {
        errors.push(unknown_field(&format!("{path}.{key}"), &input_type));
    }
}

/// Whether `value` is an integer that fits GraphQL's 32-bit `Int`.
fn is_i32(value: &Value) -> bool {
    value.as_i64().is_some_and(|n| i32::try_from(n).is_ok())
}

fn required_error(path: &str) -> FieldError {
    FieldError::new(path, "REQUIRED", format!("`{path}` is required."))
}

fn invalid_type(path: &str, expected: &str) -> FieldError {
    FieldError::new(path, "INVALID_TYPE", format!("`{path}` must be {expected}."))
}

fn unknown_field(path: &str, input_type: &str) -> FieldError {
    let name = path.rsplit('.').next().unwrap_or(path);
    FieldError::new(path, "UNKNOWN_FIELD", format!("`{name}` is not a field of {input_type}."))
}

/// A short rendering of a JSON value for messages.
fn show(value: &Value) -> String {
    const MAX_CHARS: usize = 60;
    let text = value.to_string();
    if text.chars().count() <= MAX_CHARS {
        text
    } else {
        let cut: String = text.chars().take(MAX_CHARS).collect();
        format!("{cut}…")
    }
}
