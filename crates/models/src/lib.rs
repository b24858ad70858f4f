//! The SDL model language of subsignal. A user describes their data the way AWS Amplify (Gen 1) and AppSync do —
//! `@model` types, `@auth` rules, `@ttl` expiry fields, enums, embedded object types and `@aws_subscribe`
//! subscriptions — and [`parse`] turns the file into checked definitions, reporting every problem as
//! `file:line:column: message`. The definitions carry what the server needs to generate its GraphQL schema and
//! enforce it: Amplify's generated names ([`ModelNames`]), who may do what ([`AuthRules`]), input validation with
//! field errors ([`validate_input`]) and list filters ([`Filter`]).
//!
//! The crate is sans-IO: no async, no server code, nothing but definitions and pure functions over JSON values.
//!
//! ```
//! use serde_json::json;
//! use subsignal_models::{parse, validate_input, InputMode};
//!
//! let schema = parse("notes.graphql", "type Note @model { id: ID! title: String! email: AWSEmail }")?;
//! let note = &schema.models[0];
//! assert_eq!(note.names().list, "listNotes");
//!
//! let input = json!({"title": "Hello", "email": "bob"});
//! let errors = validate_input(&schema, note, input.as_object().unwrap(), InputMode::Create).unwrap_err();
//! assert_eq!((errors[0].field.as_str(), errors[0].code.as_str()), ("email", "INVALID_EMAIL"));
//!
//! let bad = parse("bad.graphql", "type Note @model { title: Strin }").unwrap_err();
//! assert_eq!(bad.errors[0].to_string(), "bad.graphql:1:6: model `Note` needs an `id: ID!` field");
//! # Ok::<(), subsignal_models::SchemaErrors>(())
//! ```
#![deny(missing_docs)]

mod auth;
mod filter;
mod names;
mod parse;
mod scalars;
mod schema;
mod validate;

pub use auth::{AuthRule, AuthRules, AuthStrategy, Caller, Operation};
pub use filter::{filter_input_fields, Filter, FilterField, FilterInput, FilterOp};
pub use names::{lower_camel, object_input_name, pluralize, upper_first, ModelNames};
pub use parse::{parse, SchemaError, SchemaErrors};
pub use scalars::{check_scalar, AwsScalar};
pub use schema::{
    BaseType, DeclaredSubscription, EnumDef, Field, FieldType, Model, ModelSchema, ObjectDef, CREATED_AT_FIELD,
    MANAGED_FIELDS, OWNER_FIELD, UPDATED_AT_FIELD, VERSION_FIELD,
};
pub use validate::{validate_input, InputMode};

#[cfg(test)]
mod tests;
