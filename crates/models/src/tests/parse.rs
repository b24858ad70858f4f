use super::{error, errors, notes};
use crate::{parse, AuthRule, AuthStrategy, BaseType, DeclaredSubscription, EnumDef, Field, FieldType, Operation};

/// A valid model to put first, on line 1, so cases on later lines have a model.
const NOTE: &str = "type Note @model { id: ID! }\n";

fn field(name: &str, ty: FieldType) -> Field {
    Field { name: name.to_owned(), ty, description: None }
}

fn named(base: BaseType, non_null: bool) -> FieldType {
    FieldType::named(base, non_null)
}

#[test]
fn the_example_schema_parses_into_its_definitions() {
    let schema = notes();
    assert_eq!(
        schema.enums,
        vec![EnumDef { name: "Priority".into(), description: None, values: vec!["LOW".into(), "HIGH".into()] }]
    );
    let tag = schema.object("Tag").unwrap();
    assert_eq!(
        tag.fields,
        vec![field("label", named(BaseType::String, true)), field("color", named(BaseType::String, false))]
    );
    assert_eq!(tag.input_name(), "TagInput");

    let note = schema.model("Note").unwrap();
    let tags = FieldType { base: BaseType::Object("Tag".into()), non_null: false, list: Some(true) };
    assert_eq!(
        note.fields,
        vec![
            field("id", named(BaseType::Id, true)),
            field("title", named(BaseType::String, true)),
            field("body", named(BaseType::String, false)),
            field("email", named(BaseType::Aws(crate::AwsScalar::Email), false)),
            field("priority", named(BaseType::Enum("Priority".into()), true)),
            field("tags", tags),
            field("expiresAt", named(BaseType::Aws(crate::AwsScalar::Timestamp), false)),
        ]
    );
    assert_eq!(note.ttl_field.as_deref(), Some("expiresAt"));
    assert_eq!(
        note.auth.rules,
        vec![
            AuthRule::new(AuthStrategy::Owner),
            AuthRule::new(AuthStrategy::Groups(vec!["admin".into()])),
            AuthRule { strategy: AuthStrategy::Public, operations: vec![Operation::Read] },
        ]
    );
    assert_eq!(
        schema.subscriptions,
        vec![DeclaredSubscription {
            name: "onNoteShared".into(),
            args: vec![("owner".into(), named(BaseType::String, false))],
            model: "Note".into(),
            mutations: vec!["createNote".into(), "updateNote".into()],
        }]
    );
    assert!(schema.model("Tag").is_none() && schema.enum_def("Priority").is_some());
}

#[test]
fn descriptions_are_kept() {
    let schema = parse("s.graphql", "\"\"\"A note.\"\"\"\ntype Note @model {\n  \"The key.\"\n  id: ID!\n}").unwrap();
    let note = &schema.models[0];
    assert_eq!(note.description.as_deref(), Some("A note."));
    assert_eq!(note.fields[0].description.as_deref(), Some("The key."));
}

#[test]
fn a_model_without_auth_gets_the_owner_rule() {
    let schema = parse("s.graphql", NOTE).unwrap();
    assert_eq!(schema.models[0].auth.rules, vec![AuthRule::new(AuthStrategy::Owner)]);
}

#[test]
fn managed_fields_with_their_own_types_are_accepted_and_left_out_of_the_fields() {
    let text = "type Note @model {\n  id: ID!\n  owner: String\n  createdAt: AWSDateTime!\n  updatedAt: AWSDateTime\n  version: Int!\n  title: String\n}";
    let schema = parse("s.graphql", text).unwrap();
    let names: Vec<&str> = schema.models[0].fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["id", "title"]);
    let managed: Vec<String> = crate::Model::managed_fields().iter().map(|f| format!("{}: {}", f.name, f.ty)).collect();
    assert_eq!(managed, ["owner: String", "createdAt: AWSDateTime!", "updatedAt: AWSDateTime!", "version: Int!"]);
}

#[test]
fn appsync_auth_directives_and_deprecated_are_ignored() {
    let text = r#"type Note @model @aws_api_key @aws_iam @aws_cognito_user_pools(cognito_groups: ["a"]) @aws_oidc @aws_lambda {
  id: ID!
  old: String @deprecated(reason: "gone") @aws_iam
}
enum E @aws_api_key { A @deprecated }"#;
    assert_eq!(errors(text), Vec::<String>::new());
}

#[test]
fn errors_display_as_file_line_column_message_one_per_line() {
    let err = parse("app.graphql", "type Note @model { id: ID! a: Foo b: Bar }").unwrap_err();
    assert_eq!(
        err.to_string(),
        "app.graphql:1:31: unknown type `Foo`; use ID, String, Int, Float, Boolean or an AWS scalar, or an enum or object type declared in this file\n\
         app.graphql:1:38: unknown type `Bar`; use ID, String, Int, Float, Boolean or an AWS scalar, or an enum or object type declared in this file"
    );
    assert_eq!(err.errors[0].to_string(), err.to_string().lines().next().unwrap());
}

#[test]
fn every_problem_is_reported_in_source_order() {
    let text = "type Query { a: Int }\ntype Note @model {\n  title: Strin\n  when: Int @ttl\n}\nunion U = Note";
    assert_eq!(
        errors(text),
        [
            "1:6: custom queries and mutations need Rust hooks; declare models and subscriptions only",
            "2:6: model `Note` needs an `id: ID!` field",
            "3:10: unknown type `Strin`; use ID, String, Int, Float, Boolean or an AWS scalar, or an enum or object type declared in this file",
            "4:13: `@ttl` needs a nullable `AWSTimestamp` field, found `Int`",
            "6:7: unions are not supported; declare `U` as an object type",
        ]
    );
}

#[test]
fn syntax_errors_have_a_position() {
    assert_eq!(
        error("type Note @model {\n  id: ID!\n  title String\n}"),
        "3:9: syntax error: expected arguments definition"
    );
    assert_eq!(error("type {"), "1:6: syntax error: expected name");
}

// Directives.

#[test]
fn unknown_directives() {
    let expected = "unknown directive `@searchable`; use `@model`, `@auth`, `@ttl` or `@aws_subscribe`";
    assert_eq!(error("type Note @model @searchable { id: ID! }"), format!("1:18: {expected}"));
    assert_eq!(error("type Note @model {\n  id: ID! @searchable\n}"), format!("2:11: {expected}"));
    assert_eq!(error(&format!("{NOTE}enum E @searchable {{ A }}")), format!("2:8: {expected}"));
}

#[test]
fn misplaced_directives() {
    assert_eq!(
        error("type Note @model {\n  id: ID! @model\n}"),
        "2:11: `@model` belongs on an object type, not a field"
    );
    assert_eq!(error("type Note @model @ttl { id: ID! }"), "1:18: `@ttl` belongs on a field of a `@model` type");
    assert_eq!(
        error(&format!("{NOTE}type Tag @auth(rules: [{{allow: owner}}]) {{ a: Int }}")),
        "2:10: `@auth` belongs on a `@model` type"
    );
    assert_eq!(
        error("type Note @model {\n  id: ID! @auth(rules: [{allow: owner}])\n}"),
        "2:11: `@auth` belongs on a `@model` type; rules for single fields are not supported"
    );
    assert_eq!(
        error("type Note @model(queries: null) { id: ID! }"),
        "1:18: `@model` takes no arguments; remove `queries`"
    );
}

// `id` and the managed fields.

#[test]
fn a_model_needs_an_id() {
    assert_eq!(error("type Note @model {\n  title: String\n}"), "1:6: model `Note` needs an `id: ID!` field");
    assert_eq!(error("type Note @model {\n  id: String!\n}"), "2:7: `id` must be `ID!`, found `String!`");
    assert_eq!(error("type Note @model {\n  id: ID\n}"), "2:7: `id` must be `ID!`, found `ID`");
}

#[test]
fn managed_fields_with_the_wrong_type() {
    let text =
        "type Note @model {\n  id: ID!\n  owner: Int\n  createdAt: String!\n  updatedAt: AWSDate\n  version: [Int]\n}";
    assert_eq!(
        errors(text),
        [
            "3:10: `owner` is managed by the server and must be `String` or `String!`, found `Int`",
            "4:14: `createdAt` is managed by the server and must be `AWSDateTime` or `AWSDateTime!`, found `String!`",
            "5:14: `updatedAt` is managed by the server and must be `AWSDateTime` or `AWSDateTime!`, found `AWSDate`",
            "6:12: `version` is managed by the server and must be `Int` or `Int!`, found `[Int]`",
        ]
    );
}

// `@ttl`.

#[test]
fn ttl_needs_a_nullable_timestamp() {
    assert_eq!(
        error("type Note @model {\n  id: ID!\n  expiresAt: AWSTimestamp! @ttl\n}"),
        "3:28: `@ttl` needs a nullable `AWSTimestamp` field, found `AWSTimestamp!`"
    );
    assert_eq!(
        error("type Note @model {\n  id: ID!\n  expiresAt: AWSDateTime @ttl\n}"),
        "3:26: `@ttl` needs a nullable `AWSTimestamp` field, found `AWSDateTime`"
    );
}

#[test]
fn ttl_at_most_once_and_only_in_models() {
    assert_eq!(
        error("type Note @model {\n  id: ID!\n  a: AWSTimestamp @ttl\n  b: AWSTimestamp @ttl\n}"),
        "4:19: model `Note` has more than one `@ttl` field; keep one"
    );
    assert_eq!(
        error(&format!("{NOTE}type Tag {{\n  until: AWSTimestamp @ttl\n}}")),
        "3:23: `@ttl` only works on fields of a `@model` type"
    );
    assert_eq!(
        error("type Note @model {\n  id: ID!\n  a: AWSTimestamp @ttl(days: 1)\n}"),
        "3:24: `@ttl` takes no arguments; remove `days`"
    );
}

// Field types.

#[test]
fn unknown_field_types() {
    let unknown =
        "use ID, String, Int, Float, Boolean or an AWS scalar, or an enum or object type declared in this file";
    assert_eq!(
        error("type Note @model {\n  id: ID!\n  at: DateTime\n}"),
        format!("3:7: unknown type `DateTime`; {unknown}")
    );
    assert_eq!(
        error("type Note @model {\n  id: ID!\n  at: [Long!]!\n}"),
        format!("3:7: unknown type `Long`; {unknown}")
    );
    assert_eq!(
        error("type Note @model {\n  id: ID!\n  grid: [[Int]]\n}"),
        "3:9: lists of lists are not supported; wrap the inner list in an object type"
    );
}

#[test]
fn every_aws_scalar_enum_and_object_type_is_a_field_type() {
    let text = r#"enum E { A }
type O { e: E, o: [O] }
type Note @model {
  id: ID!
  a: AWSEmail b: AWSURL c: AWSPhone d: AWSDate e: AWSTime f: AWSDateTime g: AWSTimestamp h: AWSJSON i: AWSIPAddress
  j: Int k: Float l: Boolean m: [E!]! n: O
}"#;
    let schema = parse("s.graphql", text).unwrap();
    let types: Vec<String> = schema.models[0].fields.iter().map(|f| f.ty.to_string()).collect();
    assert_eq!(
        types,
        [
            "ID!",
            "AWSEmail",
            "AWSURL",
            "AWSPhone",
            "AWSDate",
            "AWSTime",
            "AWSDateTime",
            "AWSTimestamp",
            "AWSJSON",
            "AWSIPAddress",
            "Int",
            "Float",
            "Boolean",
            "[E!]!",
            "O"
        ]
    );
}

#[test]
fn relations_between_models_are_refused() {
    let text = "type User @model { id: ID! }\ntype OrderItem @model { id: ID! }\ntype Note @model {\n  id: ID!\n  author: User!\n  items: [OrderItem]\n}";
    assert_eq!(
        errors(text),
        [
            "5:11: relations between models are not supported; store the other model's id (e.g. `userId: ID`)",
            "6:10: relations between models are not supported; store the other model's id (e.g. `orderItemId: ID`)",
        ]
    );
    assert_eq!(
        error("type Note @model { id: ID! }\ntype Tag { note: Note }"),
        "2:18: relations between models are not supported; store the other model's id (e.g. `noteId: ID`)"
    );
}

#[test]
fn the_subscription_root_is_not_a_field_type() {
    let text = format!("{NOTE}type Subscription {{\n  s: Note @aws_subscribe(mutations: [\"createNote\"])\n}}\ntype Tag {{ s: Subscription }}");
    assert_eq!(error(&text), "5:15: `Subscription` is the subscription root type; a field cannot hold it");
}

#[test]
fn object_types_need_fields() {
    assert_eq!(error(&format!("{NOTE}type Empty")), "2:6: type `Empty` needs at least one field");
}

#[test]
fn field_arguments_outside_subscriptions() {
    assert_eq!(
        error("type Note @model {\n  id: ID!\n  title(lang: String): String\n}"),
        "3:9: field arguments are only allowed on subscription fields; remove them from `Note.title`"
    );
}

// `@auth`.

#[test]
fn auth_rule_allow_values() {
    assert_eq!(
        error("type Note @model @auth(rules: [{allow: everyone}]) { id: ID! }"),
        "1:40: unknown `allow: everyone`; use `owner`, `groups`, `public` or `private`"
    );
    assert_eq!(
        error("type Note @model @auth(rules: [{provider: apiKey}]) { id: ID! }"),
        "1:32: this rule needs `allow`: `owner`, `groups`, `public` or `private`"
    );
    let schema = parse(
        "s.graphql",
        "type Note @model @auth(rules: [{allow: private, provider: userPools}, {allow: \"public\"}]) { id: ID! }",
    )
    .unwrap();
    assert_eq!(
        schema.models[0].auth.rules,
        [AuthRule::new(AuthStrategy::Private), AuthRule::new(AuthStrategy::Public)]
    );
}

#[test]
fn auth_groups_rules_need_groups() {
    assert_eq!(
        error("type Note @model @auth(rules: [\n  {allow: groups}\n]) { id: ID! }"),
        "2:3: `allow: groups` needs a non-empty `groups: [...]` list, e.g. `groups: [\"admin\"]`"
    );
    assert_eq!(
        error("type Note @model @auth(rules: [{allow: groups, groups: []}]) { id: ID! }"),
        "1:56: `groups` must be a non-empty list of group names, e.g. `[\"admin\"]`"
    );
    assert_eq!(
        error("type Note @model @auth(rules: [{allow: groups, groups: [\"a\", 7]}]) { id: ID! }"),
        "1:62: a group name must be a string, e.g. \"admin\""
    );
    assert_eq!(
        error("type Note @model @auth(rules: [{allow: owner, groups: [\"a\"]}]) { id: ID! }"),
        "1:47: `groups` only goes with `allow: groups`"
    );
}

#[test]
fn auth_providers() {
    assert_eq!(
        error("type Note @model @auth(rules: [{allow: public, provider: iam}]) { id: ID! }"),
        "1:58: public rules need `provider: apiKey`; `iam` is not supported"
    );
    assert_eq!(
        error("type Note @model @auth(rules: [{allow: owner, provider: apiKey}]) { id: ID! }"),
        "1:57: this rule is for signed-in users (`provider: userPools` or `oidc`); `apiKey` is not supported"
    );
    assert_eq!(
        errors("type Note @model @auth(rules: [{allow: owner, provider: oidc}, {allow: public}]) { id: ID! }"),
        Vec::<String>::new()
    );
}

#[test]
fn auth_operations() {
    assert_eq!(
        error("type Note @model @auth(rules: [{allow: owner, operations: [read, list]}]) { id: ID! }"),
        "1:66: unknown operation `list`; use `create`, `read`, `update` or `delete`"
    );
    assert_eq!(
        error("type Note @model @auth(rules: [{allow: owner, operations: 3}]) { id: ID! }"),
        "1:59: `operations` must be a list such as `[create, read]`"
    );
    let text = "type Note @model @auth(rules: [{allow: owner, operations: [create, read, read]}]) { id: ID! }";
    let schema = parse("s.graphql", text).unwrap();
    assert_eq!(schema.models[0].auth.rules[0].operations, [Operation::Create, Operation::Read]);
    let schema =
        parse("s.graphql", "type Note @model @auth(rules: [{allow: public, operations: read}]) { id: ID! }").unwrap();
    assert_eq!(schema.models[0].auth.rules[0].operations, [Operation::Read], "one value counts as a list of one");
}

#[test]
fn auth_unknown_rule_keys() {
    assert_eq!(
        error("type Note @model @auth(rules: [{allow: owner, ownerField: \"author\"}]) { id: ID! }"),
        "1:47: unknown rule key `ownerField`; a rule takes `allow`, `groups`, `provider` and `operations`"
    );
}

#[test]
fn auth_rule_lists() {
    assert_eq!(
        error("type Note @model @auth(rules: owner) { id: ID! }"),
        "1:31: `rules` must be a list of rules, e.g. `[{allow: owner}]`"
    );
    assert_eq!(
        error("type Note @model @auth(rules: []) { id: ID! }"),
        "1:31: `rules` is empty, so nobody could use this model; add a rule such as `{allow: owner}`"
    );
    assert_eq!(
        error("type Note @model @auth { id: ID! }"),
        "1:18: `@auth` needs `rules`, e.g. `@auth(rules: [{allow: owner}])`"
    );
    assert_eq!(
        error("type Note @model @auth(rules: [owner]) { id: ID! }"),
        "1:32: each rule is an object such as `{allow: owner}`"
    );
    assert_eq!(
        error("type Note @model @auth(rules: [{allow: owner}]) @auth(rules: [{allow: private}]) { id: ID! }"),
        "1:49: `@auth` is given twice; put all rules in one list"
    );
    assert_eq!(
        error("type Note @model @auth(rules: [{allow: owner}], mode: strict) { id: ID! }"),
        "1:49: `@auth` takes only `rules`; remove `mode`"
    );
}

#[test]
fn auth_positions_survive_comments_strings_and_line_breaks() {
    let text = r#"type Note @model @auth(rules: [
  # "a comment" with {braces} [and] brackets
  {allow: groups, groups: ["x]}", """block \""" y"""]},
  {allow: groups, groups: ["a"], operations: [read,
    nope]}
]) { id: ID! }"#;
    assert_eq!(error(text), "5:5: unknown operation `nope`; use `create`, `read`, `update` or `delete`");
}

// `@aws_subscribe`.

#[test]
fn aws_subscribe_only_in_type_subscription() {
    assert_eq!(
        error("type Note @model {\n  id: ID! @aws_subscribe(mutations: [\"createNote\"])\n}"),
        "2:11: `@aws_subscribe` only works on fields of `type Subscription`"
    );
    assert_eq!(
        error(&format!("{NOTE}type Subscription {{\n  onNote: Note\n}}")),
        "3:3: subscription `onNote` needs `@aws_subscribe(mutations: [...])` naming the mutations it follows"
    );
}

#[test]
fn aws_subscribe_mutations_must_exist_and_return_the_model() {
    let text = r#"type Note @model { id: ID! }
type User @model { id: ID! }
type Subscription {
  onNote: Note @aws_subscribe(mutations: ["createNote", "createUser", "publishNote"])
}"#;
    assert_eq!(
        errors(text),
        [
            "4:57: `createUser` returns `User`, but `onNote` returns `Note`",
            "4:71: `publishNote` is not a mutation of this schema; each model `T` has `createT`, `updateT` and `deleteT`",
        ]
    );
    assert_eq!(
        error(&format!("{NOTE}type Subscription {{\n  onNote: Note @aws_subscribe(mutations: [])\n}}")),
        "3:16: `@aws_subscribe` needs a non-empty `mutations` list, e.g. `mutations: [\"createNote\"]`"
    );
}

#[test]
fn subscriptions_must_return_a_model() {
    let text = format!(
        r#"{NOTE}type Tag {{ a: Int }}
type Subscription {{
  onTag: Tag @aws_subscribe(mutations: ["createNote"])
  onNotes: [Note] @aws_subscribe(mutations: ["createNote"])
}}"#
    );
    assert_eq!(
        errors(&text),
        [
            "4:10: subscription `onTag` must return a model type, found `Tag`",
            "5:12: subscription `onNotes` must return a model type, found `[Note]`",
        ]
    );
}

#[test]
fn subscription_arguments_name_scalar_fields_of_the_model() {
    let text = r#"type Tag { a: Int }
type Note @model {
  id: ID!
  title: String
  tags: [Tag]
}
type Subscription {
  onNote(title: String, owner: String, version: Int, nope: String, tags: String, id: String): Note @aws_subscribe(mutations: ["createNote"])
}"#;
    assert_eq!(
        errors(text),
        [
            "8:54: argument `nope` of `onNote` is not a field of `Note`; AppSync filters a subscription by comparing each argument with the result's field of the same name",
            "8:68: argument `tags` of `onNote` names `Note.tags`, which is a list or object; only scalar and enum fields can filter a subscription",
            "8:86: argument `id` of `onNote` has type `String` but `Note.id` is `ID`",
        ]
    );
}

// Names.

#[test]
fn generated_type_names_are_reserved() {
    for (name, origin) in [
        ("NoteConnection", "the type generated for `Note`"),
        ("CreateNoteInput", "the type generated for `Note`"),
        ("UpdateNoteInput", "the type generated for `Note`"),
        ("DeleteNoteInput", "the type generated for `Note`"),
        ("NoteChange", "the type generated for `Note`"),
        ("NoteChangePage", "the type generated for `Note`"),
        ("ModelNoteFilterInput", "the type generated for `Note`"),
        ("TagInput", "the type generated for `Tag`"),
        ("ModelPriorityInput", "the type generated for `Priority`"),
        ("ChangeOp", "the generated change operation enum"),
        ("ModelStringInput", "a generated filter input"),
    ] {
        let text = format!("{NOTE}type Tag {{ a: Int }}\nenum Priority {{ A }}\ntype {name} {{ a: Int }}");
        assert_eq!(error(&text), format!("4:6: type `{name}` collides with {origin}; rename it"), "{name}");
    }
    assert_eq!(
        error(&format!("{NOTE}enum Subscription {{ A }}")),
        "2:6: type `Subscription` collides with a root type; rename it"
    );
    assert_eq!(
        error(&format!("{NOTE}type AWSThing {{ a: Int }}")),
        "2:6: type names starting with `AWS` are reserved by AppSync; rename `AWSThing`"
    );
}

#[test]
fn generated_names_of_two_declarations_can_collide() {
    assert_eq!(
        error("type Note @model { id: ID! }\ntype CreateNote { a: Int }"),
        "2:6: the type generated for `CreateNote`, `CreateNoteInput`, collides with the type generated for `Note`; rename `CreateNote`"
    );
}

#[test]
fn declared_subscriptions_cannot_take_generated_field_names() {
    for name in [
        "getNote",
        "listNotes",
        "createNote",
        "updateNote",
        "deleteNote",
        "onCreateNote",
        "onUpdateNote",
        "onDeleteNote",
        "onNoteChanged",
        "noteChangesSince",
    ] {
        let text =
            format!("{NOTE}type Subscription {{\n  {name}: Note @aws_subscribe(mutations: [\"createNote\"])\n}}");
        assert_eq!(
            error(&text),
            format!("3:3: subscription `{name}` collides with the field generated for model `Note`; rename it")
        );
    }
}

#[test]
fn root_types_query_and_mutation() {
    let message = "custom queries and mutations need Rust hooks; declare models and subscriptions only";
    assert_eq!(error(&format!("{NOTE}type Query {{ a: Int }}")), format!("2:6: {message}"));
    assert_eq!(error(&format!("{NOTE}type Mutation {{ a: Int }}")), format!("2:6: {message}"));
    assert_eq!(
        error("type Subscription @model { id: ID! }\ntype Note @model { id: ID! }"),
        "1:6: `Subscription` is the subscription root type; give the model another name"
    );
}

#[test]
fn duplicates() {
    assert_eq!(error(&format!("{NOTE}enum Note {{ A }}")), "2:6: type `Note` is declared twice (first at 1:6)");
    assert_eq!(error("type Note @model {\n  id: ID!\n  id: ID!\n}"), "3:3: field `id` is declared twice in `Note`");
    assert_eq!(error(&format!("{NOTE}enum E {{ A B A }}")), "2:14: value `A` is declared twice in `E`");
    let text = format!("{NOTE}type Subscription {{\n  s: Note @aws_subscribe(mutations: [\"createNote\"])\n  s: Note @aws_subscribe(mutations: [\"createNote\"])\n}}");
    assert_eq!(error(&text), "4:3: field `s` is declared twice in `Subscription`");
}

#[test]
fn two_models_with_the_same_generated_fields() {
    assert_eq!(
        error("type Note @model { id: ID! }\ntype note @model { id: ID! }"),
        "2:6: the field `getNote` generated for `note` is also generated for `Note`; rename one of them"
    );
}

// Unsupported declarations.

#[test]
fn unsupported_declarations() {
    for (decl, message) in [
        ("interface Named { name: String }", "2:11: interfaces are not supported; declare `Named` as an object type"),
        ("union U = Note", "2:7: unions are not supported; declare `U` as an object type"),
        ("input NoteIn { a: Int }", "2:7: input types are not supported; each model and object type gets its input types generated"),
        ("scalar Money", "2:8: custom scalars are not supported; use ID, String, Int, Float, Boolean or an AWS scalar such as AWSDateTime"),
        ("scalar AWSDateTime", "2:8: `AWSDateTime` is built in; remove this declaration"),
        ("extend type Note { extra: Int }", "2:13: schema extensions are not supported; declare `Note` once, with all its fields"),
        ("schema { query: Query }", "2:1: `schema { … }` is not supported; the root types are always Query, Mutation and Subscription"),
        ("directive @searchable on OBJECT", "2:1: directive definitions are not supported (`@searchable`); use `@model`, `@auth`, `@ttl` or `@aws_subscribe`"),
        ("type Tag implements Named { a: Int }", "2:21: interfaces are not supported; remove `implements`"),
    ] {
        assert_eq!(error(&format!("{NOTE}{decl}")), message, "{decl}");
    }
}

#[test]
fn references_to_unsupported_declarations_are_not_reported_twice() {
    assert_eq!(
        error(&format!("{NOTE}interface Named {{ a: Int }}\ntype Tag {{ n: Named }}")),
        "2:11: interfaces are not supported; declare `Named` as an object type"
    );
}

#[test]
fn a_schema_needs_a_model() {
    assert_eq!(
        error("enum E { A }\ntype Tag { a: Int }"),
        "1:1: the schema declares no `@model` type; add one, e.g. `type Note @model { id: ID! }`"
    );
}
