//! Unit tests, one module per area, sharing the example schema below.

// The SDL checker: the example schema, and every bad-schema case with its exact position and message.
mod parse;
// Amplify's generated names and the plural rules.
mod names;
// `@auth` rule combinations.
mod auth;
// The AppSync scalars, with the valid and invalid examples from AWS's descriptions.
mod scalars;
// Create and update inputs, including embedded objects and lists.
mod validate;
// Filter parsing, matching and the filter input description.
mod filter;
// Properties: filter algebra, and no panics on arbitrary input.
mod props;

use crate::ModelSchema;

/// The example schema of the crate's brief: an enum, an embedded object type, a model with three rules and a TTL
/// field, and a declared subscription.
pub(crate) const NOTES: &str = r#"enum Priority { LOW HIGH }
type Tag { label: String! color: String }
type Note @model @auth(rules: [{allow: owner}, {allow: groups, groups: ["admin"]}, {allow: public, provider: apiKey, operations: [read]}]) {
  id: ID!
  title: String!
  body: String
  email: AWSEmail
  priority: Priority!
  tags: [Tag!]
  expiresAt: AWSTimestamp @ttl
}
type Subscription {
  onNoteShared(owner: String): Note @aws_subscribe(mutations: ["createNote", "updateNote"])
}
"#;

/// The example schema, parsed.
pub(crate) fn notes() -> ModelSchema {
    match crate::parse("notes.graphql", NOTES) {
        Ok(schema) => schema,
        Err(errors) => panic!("the example schema should parse:\n{errors}"),
    }
}

/// Parses `text` and returns its errors as `line:column: message`, or nothing when it parses.
pub(crate) fn errors(text: &str) -> Vec<String> {
    match crate::parse("s.graphql", text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.errors.iter().map(|e| format!("{}:{}: {}", e.line, e.column, e.message)).collect(),
    }
}

/// The single error `text` has.
pub(crate) fn error(text: &str) -> String {
    let mut all = errors(text);
    assert_eq!(all.len(), 1, "expected exactly one error, got {all:#?}");
    all.remove(0)
}
