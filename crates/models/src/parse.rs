//! SDL text to checked definitions. Every problem is collected with the position of the node at fault, so one run
//! reports them all.

mod spans;

use std::collections::HashMap;
use std::fmt;

use async_graphql_parser::types::{
    BaseType as AstBaseType, ConstDirective, EnumType, FieldDefinition, InputValueDefinition, ObjectType,
    ServiceDocument, Type, TypeDefinition, TypeKind, TypeSystemDefinition,
};
use async_graphql_parser::{parse_schema, Pos, Positioned};
use serde_json::Value;

use crate::auth::{AuthRule, AuthRules, AuthStrategy, Operation};
use crate::names::{lower_camel, object_input_name, ModelNames};
use crate::scalars::AwsScalar;
use crate::schema::{
    BaseType, DeclaredSubscription, EnumDef, Field, FieldType, Model, ModelSchema, ObjectDef, CREATED_AT_FIELD,
    OWNER_FIELD, UPDATED_AT_FIELD, VERSION_FIELD,
};
use spans::Span;

/// One problem in a schema file, at the position of the node at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct SchemaError {
    /// The file name given to [`parse`].
    pub file: String,
    /// One-based line.
    pub line: usize,
    /// One-based column, in characters.
    pub column: usize,
    /// What is wrong and, where it helps, what to write instead.
    pub message: String,
}

/// Every problem found in a schema file, ordered by position; displayed one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Lines(.errors))]
pub struct SchemaErrors {
    /// The problems, at least one.
    pub errors: Vec<SchemaError>,
}

/// Displays errors one per line.
struct Lines<'a>(&'a [SchemaError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

const CUSTOM_ROOT: &str = "custom queries and mutations need Rust hooks; declare models and subscriptions only";
const KNOWN_DIRECTIVES: &str = "`@model`, `@auth`, `@ttl` or `@aws_subscribe`";
const RULE_KEYS: [&str; 4] = ["allow", "groups", "provider", "operations"];
const SCALARS: &str = "ID, String, Int, Float, Boolean or an AWS scalar";

/// Parses and checks an SDL file of models, enums, embedded object types and subscriptions. `file` names the file
/// in error messages.
///
/// A model without `@auth` gets `[{allow: owner}]`. Every model also has the managed fields `owner`,
/// `createdAt`, `updatedAt` and `version`, which may be declared (with their own types) but are never inputs.
pub fn parse(file: &str, text: &str) -> Result<ModelSchema, SchemaErrors> {
    let document = parse_schema(text).map_err(|error| SchemaErrors { errors: vec![syntax_error(file, &error)] })?;
    let mut checker = Checker { file, text, errors: Vec::new(), kinds: HashMap::new() };
    let schema = checker.check(&document);
    if checker.errors.is_empty() {
        Ok(schema)
    } else {
        let mut errors = checker.errors;
        errors.sort_by_key(|e| (e.line, e.column));
        Err(SchemaErrors { errors })
    }
}

/// Turns the parser's multi-line syntax error into one `file:line:column: message` error.
fn syntax_error(file: &str, error: &async_graphql_parser::Error) -> SchemaError {
    let pos = error.positions().next().unwrap_or(Pos { line: 1, column: 1 });
    let text = error.to_string();
    // The parser draws the offending line and ends with "= expected …"; keep only that last part.
    let message = text
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("= "))
        .next_back()
        .map_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "), str::to_owned);
    SchemaError {
        file: file.to_owned(),
        line: pos.line,
        column: pos.column,
        message: format!("syntax error: {}", message.replace('_', " ")),
    }
}

/// What a type name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Model,
    Object,
    Enum,
    /// The user's `type Subscription`.
    SubscriptionRoot,
    /// A declaration already reported as unsupported; references to it are not reported again.
    Unsupported,
}

/// How the checker treats a directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Directive {
    Model,
    Auth,
    Ttl,
    Subscribe,
    /// AppSync's auth-mode directives and `@deprecated`: accepted and ignored.
    Ignored,
    Unknown,
}

impl Directive {
    fn of(name: &str) -> Directive {
        match name {
            "model" => Directive::Model,
            "auth" => Directive::Auth,
            "ttl" => Directive::Ttl,
            "aws_subscribe" => Directive::Subscribe,
            "aws_api_key" | "aws_iam" | "aws_cognito_user_pools" | "aws_oidc" | "aws_lambda" | "deprecated" => {
                Directive::Ignored
            }
            _ => Directive::Unknown,
        }
    }
}

/// Where a type-level directive appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Model,
    Object,
    Enum,
    Subscription,
}

/// An object type declaration.
#[derive(Clone, Copy)]
struct ObjectDecl<'d> {
    def: &'d TypeDefinition,
    object: &'d ObjectType,
}

impl ObjectDecl<'_> {
    fn name(&self) -> &str {
        &self.def.name.node
    }
}

/// The supported declarations of a document, sorted by role.
#[derive(Default)]
struct Decls<'d> {
    models: Vec<ObjectDecl<'d>>,
    objects: Vec<ObjectDecl<'d>>,
    enums: Vec<(&'d TypeDefinition, &'d EnumType)>,
    subscription: Option<ObjectDecl<'d>>,
}

struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<SchemaError>,
    kinds: HashMap<String, Kind>,
}

impl Checker<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(SchemaError {
            file: self.file.to_owned(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        });
    }

    fn check(&mut self, document: &ServiceDocument) -> ModelSchema {
        let decls = self.declarations(document);
        let enums: Vec<EnumDef> = decls.enums.iter().map(|(def, e)| self.enum_def(def, e)).collect();
        let objects: Vec<ObjectDef> = decls.objects.iter().map(|decl| self.object(*decl)).collect();
        let models: Vec<Model> = decls.models.iter().map(|decl| self.model(*decl)).collect();
        let subscriptions = match decls.subscription {
            Some(decl) => self.subscriptions(decl, &models),
            None => Vec::new(),
        };
        self.check_generated_names(&decls, &models);
        if decls.models.is_empty() {
            self.error(
                Pos { line: 1, column: 1 },
                "the schema declares no `@model` type; add one, e.g. `type Note @model { id: ID! }`",
            );
        }
        ModelSchema { models, enums, objects, subscriptions }
    }

    // Pass 1: declarations, their kinds, and what is not supported.

    fn declarations<'d>(&mut self, document: &'d ServiceDocument) -> Decls<'d> {
        let mut decls = Decls::default();
        let mut seen: HashMap<&str, Pos> = HashMap::new();
        for definition in &document.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => self.error(
                    schema.pos,
                    "`schema { … }` is not supported; the root types are always Query, Mutation and Subscription",
                ),
                TypeSystemDefinition::Directive(directive) => self.error(
                    directive.pos,
                    format!(
                        "directive definitions are not supported (`@{}`); use {KNOWN_DIRECTIVES}",
                        directive.node.name.node
                    ),
                ),
                TypeSystemDefinition::Type(def) => {
                    let name = def.node.name.node.as_str();
                    if def.node.extend {
                        let message =
                            format!("schema extensions are not supported; declare `{name}` once, with all its fields");
                        self.error(def.node.name.pos, message);
                    } else if let Some(first) = seen.get(name) {
                        let message = format!("type `{name}` is declared twice (first at {first})");
                        self.error(def.node.name.pos, message);
                    } else {
                        seen.insert(name, def.node.name.pos);
                        self.declare(&def.node, &mut decls);
                    }
                }
            }
        }
        decls
    }

    fn declare<'d>(&mut self, def: &'d TypeDefinition, decls: &mut Decls<'d>) {
        let name = def.name.node.as_str();
        let pos = def.name.pos;
        let kind = match &def.kind {
            TypeKind::Scalar if BaseType::scalar(name).is_some() => {
                self.error(pos, format!("`{name}` is built in; remove this declaration"));
                Kind::Unsupported
            }
            TypeKind::Scalar => {
                self.error(pos, format!("custom scalars are not supported; use {SCALARS} such as AWSDateTime"));
                Kind::Unsupported
            }
            TypeKind::Interface(_) => {
                self.error(pos, format!("interfaces are not supported; declare `{name}` as an object type"));
                Kind::Unsupported
            }
            TypeKind::Union(_) => {
                self.error(pos, format!("unions are not supported; declare `{name}` as an object type"));
                Kind::Unsupported
            }
            TypeKind::InputObject(_) => {
                self.error(
                    pos,
                    "input types are not supported; each model and object type gets its input types generated",
                );
                Kind::Unsupported
            }
            TypeKind::Enum(e) => {
                decls.enums.push((def, e));
                Kind::Enum
            }
            TypeKind::Object(object) => self.declare_object(ObjectDecl { def, object }, decls),
        };
        self.kinds.insert(name.to_owned(), kind);
    }

    fn declare_object<'d>(&mut self, decl: ObjectDecl<'d>, decls: &mut Decls<'d>) -> Kind {
        if let Some(interface) = decl.object.implements.first() {
            self.error(interface.pos, "interfaces are not supported; remove `implements`");
        }
        let is_model = decl.def.directives.iter().any(|d| d.node.name.node == "model");
        match decl.name() {
            "Query" | "Mutation" => {
                self.error(decl.def.name.pos, CUSTOM_ROOT);
                Kind::Unsupported
            }
            "Subscription" if is_model => {
                self.error(
                    decl.def.name.pos,
                    "`Subscription` is the subscription root type; give the model another name",
                );
                Kind::Unsupported
            }
            "Subscription" => {
                decls.subscription = Some(decl);
                Kind::SubscriptionRoot
            }
            _ if is_model => {
                decls.models.push(decl);
                Kind::Model
            }
            _ => {
                decls.objects.push(decl);
                Kind::Object
            }
        }
    }

    // Pass 2: the definitions.

    fn enum_def(&mut self, def: &TypeDefinition, e: &EnumType) -> EnumDef {
        self.type_directives(def, Role::Enum);
        let mut values: Vec<String> = Vec::new();
        for value in &e.values {
            let name = value.node.value.node.to_string();
            if values.contains(&name) {
                self.error(value.node.value.pos, format!("value `{name}` is declared twice in `{}`", def.name.node));
            } else {
                values.push(name);
            }
            self.ignore_only(&value.node.directives);
        }
        EnumDef { name: def.name.node.to_string(), description: description(def), values }
    }

    fn object(&mut self, decl: ObjectDecl<'_>) -> ObjectDef {
        self.type_directives(decl.def, Role::Object);
        if decl.object.fields.is_empty() {
            self.error(decl.def.name.pos, format!("type `{}` needs at least one field", decl.name()));
        }
        let fields = self.fields(decl, false).fields;
        ObjectDef { name: decl.name().to_owned(), description: description(decl.def), fields }
    }

    fn model(&mut self, decl: ObjectDecl<'_>) -> Model {
        let auth = self.type_directives(decl.def, Role::Model).unwrap_or_default();
        let checked = self.fields(decl, true);
        if !checked.has_id {
            self.error(decl.def.name.pos, format!("model `{}` needs an `id: ID!` field", decl.name()));
        }
        Model {
            name: decl.name().to_owned(),
            description: description(decl.def),
            fields: checked.fields,
            auth,
            ttl_field: checked.ttl_field,
        }
    }

    /// Checks the directives on a type declaration and returns the `@auth` rules, if any.
    fn type_directives(&mut self, def: &TypeDefinition, role: Role) -> Option<AuthRules> {
        let mut auth: Option<AuthRules> = None;
        for directive in &def.directives {
            let name = directive.node.name.node.as_str();
            match (Directive::of(name), role) {
                (Directive::Model, Role::Model) => self.no_arguments(directive),
                (Directive::Model, _) => self.error(directive.pos, "`@model` belongs on an object type"),
                (Directive::Auth, Role::Model) if auth.is_some() => {
                    self.error(directive.pos, "`@auth` is given twice; put all rules in one list")
                }
                (Directive::Auth, Role::Model) => auth = Some(self.auth(directive)),
                (Directive::Auth, _) => self.error(directive.pos, "`@auth` belongs on a `@model` type"),
                (Directive::Ttl, _) => self.error(directive.pos, "`@ttl` belongs on a field of a `@model` type"),
                (Directive::Subscribe, _) => {
                    self.error(directive.pos, "`@aws_subscribe` belongs on a field of `type Subscription`")
                }
                (Directive::Ignored, _) => {}
                (Directive::Unknown, _) => self.unknown_directive(directive),
            }
        }
        auth
    }

    /// Reports every directive that is not one of the ignored AppSync ones.
    fn ignore_only(&mut self, directives: &[Positioned<ConstDirective>]) {
        for directive in directives {
            match Directive::of(&directive.node.name.node) {
                Directive::Ignored => {}
                Directive::Unknown => self.unknown_directive(directive),
                _ => self.error(directive.pos, format!("`@{}` does not belong here", directive.node.name.node)),
            }
        }
    }

    fn unknown_directive(&mut self, directive: &Positioned<ConstDirective>) {
        let message = format!("unknown directive `@{}`; use {KNOWN_DIRECTIVES}", directive.node.name.node);
        self.error(directive.pos, message);
    }

    fn no_arguments(&mut self, directive: &Positioned<ConstDirective>) {
        for (name, _) in &directive.node.arguments {
            let message = format!("`@{}` takes no arguments; remove `{}`", directive.node.name.node, name.node);
            self.error(name.pos, message);
        }
    }

    // Fields of models and embedded object types.

    fn fields(&mut self, decl: ObjectDecl<'_>, in_model: bool) -> CheckedFields {
        let mut checked = CheckedFields::default();
        let mut seen: Vec<&str> = Vec::new();
        for field in &decl.object.fields {
            let fd = &field.node;
            let name = fd.name.node.as_str();
            if seen.contains(&name) {
                self.error(fd.name.pos, format!("field `{name}` is declared twice in `{}`", decl.name()));
                continue;
            }
            seen.push(name);
            if let Some(argument) = fd.arguments.first() {
                let message = format!(
                    "field arguments are only allowed on subscription fields; remove them from `{}.{name}`",
                    decl.name()
                );
                self.error(argument.pos, message);
            }
            let ty = self.field_type(&fd.ty);
            self.field_directives(decl.name(), fd, ty.as_ref(), in_model, &mut checked.ttl_field);
            if in_model && !self.is_user_field(fd, ty.as_ref(), &mut checked.has_id) {
                continue;
            }
            if let Some(ty) = ty {
                let description = fd.description.as_ref().map(|d| d.node.clone());
                checked.fields.push(Field { name: name.to_owned(), ty, description });
            }
        }
        checked
    }

    /// Checks a model field's special names: `id` and the managed fields. Returns whether the field is a user
    /// field (managed fields are listed separately).
    fn is_user_field(&mut self, fd: &FieldDefinition, ty: Option<&FieldType>, has_id: &mut bool) -> bool {
        let name = fd.name.node.as_str();
        let managed = match name {
            OWNER_FIELD => Some(BaseType::String),
            CREATED_AT_FIELD | UPDATED_AT_FIELD => Some(BaseType::Aws(AwsScalar::DateTime)),
            VERSION_FIELD => Some(BaseType::Int),
            "id" => {
                *has_id = true;
                if ty.is_some_and(|ty| *ty != FieldType::named(BaseType::Id, true)) {
                    self.error(fd.ty.pos, format!("`id` must be `ID!`, found `{}`", fd.ty.node));
                }
                None
            }
            _ => None,
        };
        let Some(base) = managed else { return true };
        if ty.is_some_and(|ty| ty.base != base || ty.is_list()) {
            let message =
                format!("`{name}` is managed by the server and must be `{base}` or `{base}!`, found `{}`", fd.ty.node);
            self.error(fd.ty.pos, message);
        }
        false
    }

    fn field_directives(
        &mut self,
        owner: &str,
        fd: &FieldDefinition,
        ty: Option<&FieldType>,
        in_model: bool,
        ttl_field: &mut Option<String>,
    ) {
        for directive in &fd.directives {
            let pos = directive.pos;
            match Directive::of(&directive.node.name.node) {
                Directive::Ttl => {
                    self.no_arguments(directive);
                    let wanted = FieldType::named(BaseType::Aws(AwsScalar::Timestamp), false);
                    if !in_model {
                        self.error(pos, "`@ttl` only works on fields of a `@model` type");
                    } else if ttl_field.is_some() {
                        self.error(pos, format!("model `{owner}` has more than one `@ttl` field; keep one"));
                    } else if let Some(ty) = ty.filter(|ty| **ty != wanted) {
                        let message = format!("`@ttl` needs a nullable `AWSTimestamp` field, found `{ty}`");
                        self.error(pos, message);
                    } else {
                        *ttl_field = Some(fd.name.node.to_string());
                    }
                }
                Directive::Model => self.error(pos, "`@model` belongs on an object type, not a field"),
                Directive::Auth => {
                    self.error(pos, "`@auth` belongs on a `@model` type; rules for single fields are not supported")
                }
                Directive::Subscribe => self.error(pos, "`@aws_subscribe` only works on fields of `type Subscription`"),
                Directive::Ignored => {}
                Directive::Unknown => self.unknown_directive(directive),
            }
        }
    }

    /// Resolves a field type, reporting unknown types, models (relations) and nested lists.
    fn field_type(&mut self, ty: &Positioned<Type>) -> Option<FieldType> {
        let non_null = !ty.node.nullable;
        match &ty.node.base {
            AstBaseType::Named(name) => Some(FieldType::named(self.named_type(name, ty.pos)?, non_null)),
            AstBaseType::List(item) => match &item.base {
                AstBaseType::Named(name) => {
                    let base = self.named_type(name, ty.pos)?;
                    Some(FieldType { base, non_null, list: Some(!item.nullable) })
                }
                AstBaseType::List(_) => {
                    self.error(ty.pos, "lists of lists are not supported; wrap the inner list in an object type");
                    None
                }
            },
        }
    }

    fn named_type(&mut self, name: &str, pos: Pos) -> Option<BaseType> {
        if let Some(scalar) = BaseType::scalar(name) {
            return Some(scalar);
        }
        match self.kinds.get(name) {
            Some(Kind::Enum) => Some(BaseType::Enum(name.to_owned())),
            Some(Kind::Object) => Some(BaseType::Object(name.to_owned())),
            Some(Kind::Model) => {
                let message = format!(
                    "relations between models are not supported; store the other model's id (e.g. `{}Id: ID`)",
                    lower_camel(name)
                );
                self.error(pos, message);
                None
            }
            Some(Kind::SubscriptionRoot) => {
                self.error(pos, "`Subscription` is the subscription root type; a field cannot hold it");
                None
            }
            Some(Kind::Unsupported) => None,
            None => {
                let message =
                    format!("unknown type `{name}`; use {SCALARS}, or an enum or object type declared in this file");
                self.error(pos, message);
                None
            }
        }
    }

    // `@auth` rules.

    fn auth(&mut self, directive: &Positioned<ConstDirective>) -> AuthRules {
        let mut rules_value = None;
        for (name, value) in &directive.node.arguments {
            if name.node == "rules" {
                rules_value = Some(value);
            } else {
                self.error(name.pos, format!("`@auth` takes only `rules`; remove `{}`", name.node));
            }
        }
        let Some(value) = rules_value else {
            self.error(directive.pos, "`@auth` needs `rules`, e.g. `@auth(rules: [{allow: owner}])`");
            return AuthRules::default();
        };
        let span = spans::scan(self.text, value.pos);
        let json = serde_json::to_value(&value.node).unwrap_or(Value::Null);
        let (items, spans): (Vec<Value>, Vec<&Span>) = match json {
            Value::Array(items) => {
                let spans = (0..items.len()).map(|i| span.item(i)).collect();
                (items, spans)
            }
            // GraphQL reads a single value given for a list as a list of one.
            single @ Value::Object(_) => (vec![single], vec![&span]),
            _ => {
                self.error(value.pos, "`rules` must be a list of rules, e.g. `[{allow: owner}]`");
                return AuthRules::default();
            }
        };
        if items.is_empty() {
            self.error(
                value.pos,
                "`rules` is empty, so nobody could use this model; add a rule such as `{allow: owner}`",
            );
        }
        let rules = items.iter().zip(spans).filter_map(|(item, span)| self.auth_rule(item, span)).collect();
        AuthRules { rules }
    }

    fn auth_rule(&mut self, item: &Value, span: &Span) -> Option<AuthRule> {
        let Value::Object(rule) = item else {
            self.error(span.pos, "each rule is an object such as `{allow: owner}`");
            return None;
        };
        for key in rule.keys().filter(|key| !RULE_KEYS.contains(&key.as_str())) {
            let message =
                format!("unknown rule key `{key}`; a rule takes `allow`, `groups`, `provider` and `operations`");
            self.error(span.key_pos(key), message);
        }
        let strategy = self.rule_strategy(rule, span)?;
        if !matches!(strategy, AuthStrategy::Groups(_)) && rule.contains_key("groups") {
            self.error(span.key_pos("groups"), "`groups` only goes with `allow: groups`");
        }
        self.rule_provider(rule, span, &strategy);
        let operations = self.rule_operations(rule, span)?;
        Some(AuthRule { strategy, operations })
    }

    fn rule_strategy(&mut self, rule: &serde_json::Map<String, Value>, span: &Span) -> Option<AuthStrategy> {
        let allow = match rule.get("allow") {
            Some(Value::String(allow)) => allow.as_str(),
            Some(_) => {
                self.error(span.value("allow").pos, "`allow` must be `owner`, `groups`, `public` or `private`");
                return None;
            }
            None => {
                self.error(span.pos, "this rule needs `allow`: `owner`, `groups`, `public` or `private`");
                return None;
            }
        };
        match allow {
            "owner" => Some(AuthStrategy::Owner),
            "public" => Some(AuthStrategy::Public),
            "private" => Some(AuthStrategy::Private),
            "groups" => self.rule_groups(rule, span).map(AuthStrategy::Groups),
            other => {
                let message = format!("unknown `allow: {other}`; use `owner`, `groups`, `public` or `private`");
                self.error(span.value("allow").pos, message);
                None
            }
        }
    }

    fn rule_groups(&mut self, rule: &serde_json::Map<String, Value>, span: &Span) -> Option<Vec<String>> {
        let groups_span = span.value("groups");
        let items = match rule.get("groups") {
            Some(Value::Array(items)) if !items.is_empty() => items,
            Some(Value::String(group)) => return Some(vec![group.clone()]),
            Some(_) => {
                self.error(groups_span.pos, "`groups` must be a non-empty list of group names, e.g. `[\"admin\"]`");
                return None;
            }
            None => {
                self.error(
                    span.pos,
                    "`allow: groups` needs a non-empty `groups: [...]` list, e.g. `groups: [\"admin\"]`",
                );
                return None;
            }
        };
        let mut groups = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(group) => groups.push(group.to_owned()),
                None => self.error(groups_span.item(i).pos, "a group name must be a string, e.g. \"admin\""),
            }
        }
        (groups.len() == items.len()).then_some(groups)
    }

    fn rule_provider(&mut self, rule: &serde_json::Map<String, Value>, span: &Span, strategy: &AuthStrategy) {
        let Some(provider) = rule.get("provider") else { return };
        let pos = span.value("provider").pos;
        let provider = provider.as_str().unwrap_or_default();
        match (strategy, provider) {
            (AuthStrategy::Public, "apiKey") => {}
            (AuthStrategy::Public, _) => {
                self.error(pos, format!("public rules need `provider: apiKey`; `{provider}` is not supported"))
            }
            (_, "userPools" | "oidc") => {}
            (_, _) => self.error(
                pos,
                format!(
                    "this rule is for signed-in users (`provider: userPools` or `oidc`); `{provider}` is not supported"
                ),
            ),
        }
    }

    fn rule_operations(&mut self, rule: &serde_json::Map<String, Value>, span: &Span) -> Option<Vec<Operation>> {
        let operations_span = span.value("operations");
        let items = match rule.get("operations") {
            None => return Some(Operation::ALL.to_vec()),
            Some(Value::Array(items)) => items.clone(),
            Some(single @ Value::String(_)) => vec![single.clone()],
            Some(_) => {
                self.error(operations_span.pos, "`operations` must be a list such as `[create, read]`");
                return None;
            }
        };
        let mut operations = Vec::new();
        let mut valid = true;
        for (i, item) in items.iter().enumerate() {
            // A single operation given without a list has no items, so its span falls back to the value itself.
            let pos = operations_span.item(i).pos;
            match item.as_str().and_then(|op| op.parse::<Operation>().ok()) {
                Some(op) if !operations.contains(&op) => operations.push(op),
                Some(_) => {}
                None => {
                    let shown = item.as_str().map_or_else(|| item.to_string(), str::to_owned);
                    self.error(pos, format!("unknown operation `{shown}`; use `create`, `read`, `update` or `delete`"));
                    valid = false;
                }
            }
        }
        valid.then_some(operations)
    }

    // The user's `type Subscription`.

    fn subscriptions(&mut self, decl: ObjectDecl<'_>, models: &[Model]) -> Vec<DeclaredSubscription> {
        self.type_directives(decl.def, Role::Subscription);
        let mutations: HashMap<String, &str> = models
            .iter()
            .flat_map(|model| {
                let names = model.names();
                [names.create, names.update, names.delete].map(|mutation| (mutation, model.name.as_str()))
            })
            .collect();
        let mut seen: Vec<&str> = Vec::new();
        let mut subscriptions = Vec::new();
        for field in &decl.object.fields {
            let name = field.node.name.node.as_str();
            if seen.contains(&name) {
                self.error(field.node.name.pos, format!("field `{name}` is declared twice in `Subscription`"));
                continue;
            }
            seen.push(name);
            subscriptions.extend(self.subscription(&field.node, models, &mutations));
        }
        subscriptions
    }

    fn subscription(
        &mut self,
        fd: &FieldDefinition,
        models: &[Model],
        mutations: &HashMap<String, &str>,
    ) -> Option<DeclaredSubscription> {
        let name = fd.name.node.as_str();
        let mut subscribe = None;
        for directive in &fd.directives {
            match Directive::of(&directive.node.name.node) {
                Directive::Subscribe if subscribe.is_some() => {
                    self.error(directive.pos, "`@aws_subscribe` is given twice; list all mutations in one")
                }
                Directive::Subscribe => subscribe = Some(directive),
                Directive::Ignored => {}
                Directive::Unknown => self.unknown_directive(directive),
                Directive::Ttl => self.error(directive.pos, "`@ttl` only works on fields of a `@model` type"),
                Directive::Model | Directive::Auth => self.error(
                    directive.pos,
                    format!("`@{}` does not belong on a subscription field", directive.node.name.node),
                ),
            }
        }
        let model = self.subscription_model(fd, models);
        let Some(subscribe) = subscribe else {
            let message = format!(
                "subscription `{name}` needs `@aws_subscribe(mutations: [...])` naming the mutations it follows"
            );
            self.error(fd.name.pos, message);
            return None;
        };
        let followed = self.subscribed_mutations(name, subscribe, model.map(|m| m.name.as_str()), mutations);
        let model = model?;
        let args = fd.arguments.iter().filter_map(|arg| self.subscription_arg(name, &arg.node, model)).collect();
        Some(DeclaredSubscription { name: name.to_owned(), args, model: model.name.clone(), mutations: followed })
    }

    /// The model a subscription field returns.
    fn subscription_model<'m>(&mut self, fd: &FieldDefinition, models: &'m [Model]) -> Option<&'m Model> {
        let found = match &fd.ty.node.base {
            AstBaseType::Named(type_name) => models.iter().find(|m| m.name == type_name.as_str()),
            AstBaseType::List(_) => None,
        };
        if found.is_none() {
            let message = format!("subscription `{}` must return a model type, found `{}`", fd.name.node, fd.ty.node);
            self.error(fd.ty.pos, message);
        }
        found
    }

    /// The mutations named by `@aws_subscribe(mutations: [...])`, each checked to exist and return `model`.
    fn subscribed_mutations(
        &mut self,
        field: &str,
        directive: &Positioned<ConstDirective>,
        model: Option<&str>,
        mutations: &HashMap<String, &str>,
    ) -> Vec<String> {
        let mut list = None;
        for (name, value) in &directive.node.arguments {
            if name.node == "mutations" {
                list = Some(value);
            } else {
                self.error(name.pos, format!("`@aws_subscribe` takes only `mutations`; remove `{}`", name.node));
            }
        }
        let listed = list.map(|value| (value.pos, serde_json::to_value(&value.node).unwrap_or(Value::Null)));
        let Some((list_pos, Value::Array(items))) = listed.filter(|(_, v)| v.as_array().is_some_and(|a| !a.is_empty()))
        else {
            let example = model.map_or_else(|| "createNote".to_owned(), |m| ModelNames::new(m).create);
            let message =
                format!("`@aws_subscribe` needs a non-empty `mutations` list, e.g. `mutations: [\"{example}\"]`");
            self.error(directive.pos, message);
            return Vec::new();
        };
        let span = spans::scan(self.text, list_pos);
        let mut followed = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let pos = span.item(i).pos;
            let mutation = item.as_str().unwrap_or_default();
            match mutations.get(mutation) {
                None => {
                    let message = format!(
                        "`{mutation}` is not a mutation of this schema; each model `T` has `createT`, `updateT` and \
                         `deleteT`"
                    );
                    self.error(pos, message);
                }
                Some(returns) if model.is_some_and(|m| m != *returns) => {
                    let message = format!(
                        "`{mutation}` returns `{returns}`, but `{field}` returns `{}`",
                        model.unwrap_or_default()
                    );
                    self.error(pos, message);
                }
                Some(_) => followed.push(mutation.to_owned()),
            }
        }
        followed
    }

    /// Checks a subscription argument: it must name a scalar or enum field of the model, with the same type.
    fn subscription_arg(
        &mut self,
        field: &str,
        arg: &InputValueDefinition,
        model: &Model,
    ) -> Option<(String, FieldType)> {
        let name = arg.name.node.as_str();
        let target = model.all_fields().into_iter().find(|f| f.name == name);
        let Some(target) = target else {
            let message = format!(
                "argument `{name}` of `{field}` is not a field of `{}`; AppSync filters a subscription by comparing \
                 each argument with the result's field of the same name",
                model.name
            );
            self.error(arg.name.pos, message);
            return None;
        };
        if target.ty.is_list() || !target.ty.base.is_leaf() {
            let message = format!(
                "argument `{name}` of `{field}` names `{}.{name}`, which is a list or object; only scalar and enum \
                 fields can filter a subscription",
                model.name
            );
            self.error(arg.name.pos, message);
            return None;
        }
        let base = match &arg.ty.node.base {
            AstBaseType::Named(type_name) => Some(type_name.as_str()),
            AstBaseType::List(_) => None,
        };
        if base != Some(target.ty.base.name()) {
            let message = format!(
                "argument `{name}` of `{field}` has type `{}` but `{}.{name}` is `{}`",
                arg.ty.node, model.name, target.ty.base
            );
            self.error(arg.ty.pos, message);
            return None;
        }
        Some((name.to_owned(), FieldType::named(target.ty.base, !arg.ty.node.nullable)))
    }

    // Names that collide with generated ones.

    fn check_generated_names(&mut self, decls: &Decls<'_>, models: &[Model]) {
        let mut generated: HashMap<String, String> = HashMap::new();
        for name in ["Query", "Mutation", "Subscription"] {
            generated.insert(name.to_owned(), "a root type".to_owned());
        }
        generated.insert("ChangeOp".to_owned(), "the generated change operation enum".to_owned());
        for name in ["ModelStringInput", "ModelIDInput", "ModelIntInput", "ModelFloatInput", "ModelBooleanInput"] {
            generated.insert(name.to_owned(), "a generated filter input".to_owned());
        }
        let mut owners: Vec<(&str, Pos, Vec<String>)> = Vec::new();
        for decl in &decls.models {
            let names = ModelNames::new(decl.name());
            owners.push((decl.name(), decl.def.name.pos, names.types().map(str::to_owned).to_vec()));
        }
        for decl in &decls.objects {
            owners.push((decl.name(), decl.def.name.pos, vec![object_input_name(decl.name())]));
        }
        for (def, _) in &decls.enums {
            let name = def.name.node.as_str();
            owners.push((name, def.name.pos, vec![format!("Model{name}Input"), format!("Model{name}ListInput")]));
        }
        for (owner, pos, names) in &owners {
            for name in names {
                let origin = format!("the type generated for `{owner}`");
                if let Some(other) = generated.insert(name.clone(), origin.clone()) {
                    self.error(*pos, format!("{origin}, `{name}`, collides with {other}; rename `{owner}`"));
                }
            }
        }
        for (owner, pos, _) in &owners {
            self.check_declared_name(owner, *pos, &generated);
        }
        self.check_root_fields(decls, models);
    }

    fn check_declared_name(&mut self, name: &str, pos: Pos, generated: &HashMap<String, String>) {
        if let Some(origin) = generated.get(name) {
            self.error(pos, format!("type `{name}` collides with {origin}; rename it"));
        } else if name.starts_with("AWS") {
            self.error(pos, format!("type names starting with `AWS` are reserved by AppSync; rename `{name}`"));
        }
    }

    /// Checks the generated root fields of different models, and the declared subscriptions, for collisions.
    fn check_root_fields(&mut self, decls: &Decls<'_>, models: &[Model]) {
        let mut fields: HashMap<String, String> = HashMap::new();
        for (decl, model) in decls.models.iter().zip(models) {
            // One report per model is enough: when one generated field collides, usually all of them do.
            let mut reported = false;
            for field in model.names().root_fields() {
                match fields.insert(field.to_owned(), model.name.clone()) {
                    Some(other) if !reported => {
                        let message = format!(
                            "the field `{field}` generated for `{}` is also generated for `{other}`; rename one of \
                             them",
                            model.name
                        );
                        self.error(decl.def.name.pos, message);
                        reported = true;
                    }
                    _ => {}
                }
            }
        }
        let Some(subscription) = decls.subscription else { return };
        for field in &subscription.object.fields {
            let name = field.node.name.node.as_str();
            if let Some(model) = fields.get(name) {
                let message =
                    format!("subscription `{name}` collides with the field generated for model `{model}`; rename it");
                self.error(field.node.name.pos, message);
            }
        }
    }
}

/// What checking a type's fields found.
#[derive(Default)]
struct CheckedFields {
    fields: Vec<Field>,
    ttl_field: Option<String>,
    has_id: bool,
}

fn description(def: &TypeDefinition) -> Option<String> {
    def.description.as_ref().map(|d| d.node.clone())
}
