//! The API generated from a user's SDL models (`subsignal serve --schema app.graphql`): for every `@model` type `T`,
//! Amplify's `getT`, `listTs`, `createT`, `updateT`, `deleteT`, `onCreateT`, `onUpdateT`, `onDeleteT`, subsignal's
//! gapless `onTChanged(afterSeq)` and `tChangesSince`, and the subscriptions the schema declares with
//! `@aws_subscribe`, as an async-graphql dynamic schema.
//!
//! Everything here is generic: rows are JSON images in [`Storage`]'s item table, every write goes through
//! [`Storage::write`], and every subscription reads the one change feed at its own cursor, keeping only its model's
//! records (watermarks move its cursor past other models' changes, so `afterSeq` resume stays gapless). What a
//! model allows comes from its `@auth` rules; what an input may hold, from its fields (`subsignal-models`) and its
//! hooks ([`crate::hooks`]), which also complete its writes and may add mutations.

use std::sync::Arc;

use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext, Scalar, Schema,
    SchemaError, Subscription, SubscriptionField, SubscriptionFieldFuture, TypeRef,
};
use async_graphql::{Error, Name, Result, Value};
use futures_util::StreamExt;
use serde_json::{Map, Value as Json};
use subsignal_models::{
    filter_input_fields, validate_input, AwsScalar, BaseType, Caller, Field as ModelField, FieldType, Filter,
    FilterInput, InputMode, Model, ModelSchema, Operation, CREATED_AT_FIELD, OWNER_FIELD, UPDATED_AT_FIELD,
    VERSION_FIELD,
};
use subsignal_protocol::change::error_code;
use subsignal_protocol::ChangeOp;

use crate::auth::Identity;
use crate::fanout::SeqProbe;
use crate::hooks::{merge_errors, Hooks, ModelHooks, Row};
use crate::limits::DocumentLimits;
use crate::schema::{
    changes_page, coded, identity, next_token_for, page_args, read_error, start_cursor, state, storage_error, Limits,
    SchemaState,
};
use crate::storage::{op_name, ChangeRecord, DomainError, IdempotencyKey, Item, StorageError, Stored, Write};
use crate::stream::{deliveries, Delivery};

/// One model as the generated API serves it: its definition, its hooks, and the definitions its create and update
/// inputs are checked against (without the fields the hooks compute).
struct Served {
    model: Model,
    hooks: Option<Arc<dyn ModelHooks>>,
    creatable: Model,
    updatable: Model,
}

impl std::ops::Deref for Served {
    type Target = Model;

    fn deref(&self) -> &Model {
        &self.model
    }
}

impl Served {
    fn new(model: &Model, hooks: &Hooks) -> Arc<Served> {
        let hooks = hooks.of(&model.name);
        let writable = |mode| {
            let computed = hooks.as_ref().map_or(&[][..], |h| h.computed_fields(mode));
            let mut writable = model.clone();
            writable.fields.retain(|f| !computed.contains(&f.name.as_str()));
            writable
        };
        let (creatable, updatable) = (writable(InputMode::Create), writable(InputMode::Update));
        Arc::new(Served { model: model.clone(), hooks, creatable, updatable })
    }

    /// The checked input: the generated checks and the hook's, every wrong field once.
    fn check(&self, models: &ModelSchema, input: &Row, mode: InputMode) -> Result<Row> {
        let writable = match mode {
            InputMode::Create => &self.creatable,
            InputMode::Update => &self.updatable,
        };
        let generated = validate_input(models, writable, input, mode);
        let hook = self.hooks.as_ref().map(|h| h.check_input(mode, input)).unwrap_or_default();
        match (generated, hook.is_empty()) {
            (Ok(row), true) => Ok(row),
            (Ok(_), false) => Err(validation(hook)),
            (Err(errors), _) => Err(validation(merge_errors(hook, errors))),
        }
    }
}

/// Builds the GraphQL schema of `models`, with the `hooks` of some of them.
pub fn build(
    models: Arc<ModelSchema>,
    hooks: &Hooks,
    state: SchemaState,
    limits: Limits,
) -> Result<Schema, SchemaError> {
    let mut query = Object::new("Query");
    let mut mutation = Object::new("Mutation");
    let mut subscription = Subscription::new("Subscription");
    let mut builder = Schema::build("Query", Some("Mutation"), Some("Subscription"));
    for scalar in AwsScalar::ALL {
        builder = builder.register(aws_scalar(scalar));
    }
    builder = builder.register(change_op_enum());
    for def in &models.enums {
        builder =
            builder.register(def.values.iter().fold(Enum::new(&def.name), |e, value| e.item(EnumItem::new(value))));
    }
    let mut filter_inputs: Vec<FilterInput> = Vec::new();
    for field in models.models.iter().flat_map(filter_input_fields) {
        if !filter_inputs.contains(&field.input) {
            builder = builder.register(filter_input_type(&field.input));
            filter_inputs.push(field.input);
        }
    }
    for object in &models.objects {
        builder = builder
            .register(object_type(&object.name, object.description.as_deref(), &object.fields))
            .register(input_type(&object.input_name(), &object.fields, FieldsAre::AsDeclared));
    }
    for model in &models.models {
        let model = Served::new(model, hooks);
        let names = model.names();
        let all_fields = all_fields(&model);
        builder = builder
            .register(object_type(&model.name, model.description.as_deref(), &all_fields))
            .register(connection_type(&model))
            .register(change_type(&model))
            .register(change_page_type(&model))
            .register(model_filter_type(&model))
            .register(input_type(&names.create_input, &model.creatable.fields, FieldsAre::IdOptional))
            .register(input_type(&names.update_input, &model.updatable.fields, FieldsAre::AllOptionalButId))
            .register(InputObject::new(&names.delete_input).field(InputValue::new("id", TypeRef::named_nn("ID"))));
        query = query.field(get_field(&model)).field(list_field(&model)).field(changes_since_field(&model));
        mutation = mutation
            .field(create_field(&models, &model))
            .field(update_field(&models, &model))
            .field(delete_field(&model));
        if let Some(hooks) = &model.hooks {
            for field in hooks.mutations(&Arc::new(model.model.clone())) {
                mutation = mutation.field(field);
            }
        }
        subscription = subscription
            .field(on_changed_field(&model))
            .field(on_op_field(&model, &names.on_create, &[ChangeOp::Insert], &[]))
            .field(on_op_field(&model, &names.on_update, &[ChangeOp::Modify], &[]))
            .field(on_op_field(&model, &names.on_delete, &[ChangeOp::Remove], &[]));
    }
    for declared in &models.subscriptions {
        let Some(model) = models.model(&declared.model) else { continue };
        let ops: Vec<ChangeOp> = declared
            .mutations
            .iter()
            .filter_map(|m| {
                let names = model.names();
                [(names.create, ChangeOp::Insert), (names.update, ChangeOp::Modify), (names.delete, ChangeOp::Remove)]
                    .into_iter()
                    .find(|(name, _)| name == m)
                    .map(|(_, op)| op)
            })
            .collect();
        subscription =
            subscription.field(on_op_field(&Served::new(model, hooks), &declared.name, &ops, &declared.args));
    }
    builder = builder
        .register(query)
        .register(mutation)
        .register(subscription)
        .data(Arc::new(state))
        .extension(crate::telemetry::OperationMetrics)
        .extension(DocumentLimits::from(limits))
        .extension(crate::http::MarksExecution)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// An AppSync scalar. Its rules are checked with the rest of the input (so a bad value is a field-level VALIDATION
/// error naming the field, as AppSync reports it), so here it only needs the right JSON kind.
fn aws_scalar(scalar: AwsScalar) -> Scalar {
    let integer = scalar == AwsScalar::Timestamp;
    Scalar::new(scalar.name()).validator(move |value| match value {
        Value::Number(n) => integer && n.is_i64(),
        Value::String(_) => !integer,
        _ => false,
    })
}

fn change_op_enum() -> Enum {
    ["INSERT", "MODIFY", "REMOVE", "WATERMARK"]
        .into_iter()
        .fold(Enum::new("ChangeOp"), |e, op| e.item(EnumItem::new(op)))
}

/// The user's fields, then the managed ones the user did not declare themselves.
fn all_fields(model: &Model) -> Vec<ModelField> {
    model.all_fields().into_iter().fold(Vec::new(), |mut fields, field| {
        if !fields.iter().any(|f: &ModelField| f.name == field.name) {
            fields.push(field);
        }
        fields
    })
}

/// The GraphQL type of a field; `input` names an object's input type instead of the object.
fn type_ref(ty: &FieldType, input: bool, nullable: bool) -> TypeRef {
    let base = match &ty.base {
        BaseType::Object(name) if input => subsignal_models::object_input_name(name),
        base => base.name().to_owned(),
    };
    let named = TypeRef::Named(base.into());
    let inner = match ty.list {
        Some(true) => TypeRef::List(Box::new(TypeRef::NonNull(Box::new(named)))),
        Some(false) => TypeRef::List(Box::new(named)),
        None => named,
    };
    if ty.non_null && !nullable {
        TypeRef::NonNull(Box::new(inner))
    } else {
        inner
    }
}

/// A field read from the parent's JSON object by name.
fn json_field(name: &str, ty: TypeRef) -> Field {
    let key = name.to_owned();
    Field::new(name, ty, move |ctx| {
        let value = match ctx.parent_value.as_value() {
            Some(Value::Object(map)) => map.get(key.as_str()).filter(|v| !matches!(v, Value::Null)).cloned(),
            _ => None,
        };
        FieldFuture::from_value(value)
    })
}

fn object_type(name: &str, description: Option<&str>, fields: &[ModelField]) -> Object {
    let mut object = Object::new(name);
    if let Some(description) = description {
        object = object.description(description);
    }
    for field in fields {
        let mut f = json_field(&field.name, type_ref(&field.ty, false, false));
        if let Some(description) = &field.description {
            f = f.description(description);
        }
        object = object.field(f);
    }
    object
}

#[derive(Clone, Copy, PartialEq)]
enum FieldsAre {
    AsDeclared,
    IdOptional,
    AllOptionalButId,
}

/// An input type of `fields`. Inputs are checked by [`validate_input`], which reports every problem at once as
/// field-level VALIDATION errors; the GraphQL types only carry the shapes.
fn input_type(name: &str, fields: &[ModelField], are: FieldsAre) -> InputObject {
    fields.iter().fold(InputObject::new(name), |input, field| {
        let nullable = match are {
            FieldsAre::AsDeclared => false,
            FieldsAre::IdOptional => field.name == "id",
            FieldsAre::AllOptionalButId => field.name != "id",
        };
        input.field(InputValue::new(&field.name, type_ref(&field.ty, true, nullable)))
    })
}

fn connection_type(model: &Model) -> Object {
    let names = model.names();
    Object::new(&names.connection)
        .description(format!("A page of {}s, with the change-log seq it is consistent with.", model.name))
        .field(json_field("items", TypeRef::named_nn_list_nn(&model.name)))
        .field(
            json_field("nextToken", TypeRef::named(TypeRef::STRING))
                .description("Pass back as `nextToken` for the next page; null on the last page."),
        )
        .field(
            json_field("seq", TypeRef::named_nn(TypeRef::INT))
                .description("The change-log seq this page reflects: subscribe with `afterSeq` = this to follow it."),
        )
}

fn change_type(model: &Model) -> Object {
    let names = model.names();
    Object::new(&names.change)
        .description(format!("One change of a {} (or, for WATERMARK, only the cursor moving).", model.name))
        .field(json_field("seq", TypeRef::named_nn(TypeRef::INT)))
        .field(json_field("prevSeq", TypeRef::named_nn(TypeRef::INT)))
        .field(json_field("op", TypeRef::named_nn("ChangeOp")))
        .field(json_field("key", TypeRef::named(TypeRef::ID)))
        .field(json_field("version", TypeRef::named(TypeRef::INT)))
        .field(json_field("expired", TypeRef::named_nn(TypeRef::BOOLEAN)))
        .field(json_field(&names.entity_field, TypeRef::named(&model.name)))
        .field(json_field("clientMutationId", TypeRef::named(TypeRef::ID)))
        .field(
            json_field("committedAtMs", TypeRef::named(TypeRef::FLOAT))
                .description("When the change committed, milliseconds since the epoch (absent on a WATERMARK)."),
        )
}

fn change_page_type(model: &Model) -> Object {
    Object::new(model.names().change_page)
        .field(json_field("changes", TypeRef::named_nn_list_nn(model.names().change)))
        .field(json_field("lastSeq", TypeRef::named_nn(TypeRef::INT)))
        .field(json_field("hasMore", TypeRef::named_nn(TypeRef::BOOLEAN)))
}

/// The type an operand type of `subsignal-models` names: `Int`, or `[Int]` for a list.
fn operand_type_ref(name: &str) -> TypeRef {
    match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(item) => TypeRef::named_list(item.to_owned()),
        None => TypeRef::named(name.to_owned()),
    }
}

/// Amplify's `ModelStringInput`, `ModelIntInput`…: the operators a field of one type can be filtered with.
fn filter_input_type(input: &FilterInput) -> InputObject {
    input.operators().iter().fold(InputObject::new(input.type_name()), |object, op| {
        object.field(InputValue::new(op.name(), operand_type_ref(&input.operand_type(*op))))
    })
}

/// Amplify's `ModelTFilterInput`: a condition per filterable field, combined with `and`, `or` and `not`.
fn model_filter_type(model: &Model) -> InputObject {
    let name = model.names().filter_input;
    filter_input_fields(model)
        .into_iter()
        .fold(InputObject::new(&name), |object, field| {
            object.field(InputValue::new(field.name, TypeRef::named(field.input.type_name())))
        })
        .field(InputValue::new("and", TypeRef::named_list(&name)))
        .field(InputValue::new("or", TypeRef::named_list(&name)))
        .field(InputValue::new("not", TypeRef::named(&name)))
}

/// The `filter` argument, if given.
fn filter_arg(ctx: &ResolverContext<'_>, model: &Model) -> Result<Option<Filter>> {
    let Some(value) = ctx.args.get("filter").filter(|v| !v.is_null()) else { return Ok(None) };
    let json = value.as_value().clone().into_json()?;
    Filter::parse(model, &json).map(Some).map_err(|e| validation(vec![e]))
}

/// Whether an image passes an optional filter.
fn passes(filter: Option<&Filter>, image: &Json) -> bool {
    match (filter, image) {
        (None, _) => true,
        (Some(filter), Json::Object(row)) => filter.matches(row),
        (Some(_), _) => false,
    }
}

/// The group `@auth` rules grant to members of the server's `admin-group`, whatever its name in the tokens.
pub const ADMIN_GROUP: &str = "admin";

/// The caller as `@auth` rules see it.
pub fn caller(identity: &Identity) -> Caller {
    match identity {
        Identity::User { sub, groups, admin, .. } => {
            let mut groups = groups.clone();
            if *admin && !groups.iter().any(|g| g == ADMIN_GROUP) {
                groups.push(ADMIN_GROUP.to_owned());
            }
            Caller { owner: Some(sub.clone()), groups, api_key: false }
        }
        Identity::ApiKey { .. } => Caller::api_key(),
    }
}

fn forbidden(model: &Model, op: Operation) -> Error {
    coded(error_code::FORBIDDEN, format!("Not allowed to {op} {} items.", model.name))
}

/// A JSON value as a GraphQL value.
pub(crate) fn json_to_value(json: Json) -> Value {
    Value::from_json(json).unwrap_or(Value::Null)
}

fn input_map(ctx: &ResolverContext<'_>, name: &str) -> Result<Map<String, Json>> {
    match ctx.args.try_get(name)?.as_value().clone().into_json()? {
        Json::Object(map) => Ok(map),
        _ => Err(coded(error_code::VALIDATION, format!("{name} must be an object."))),
    }
}

fn optional_i64(ctx: &ResolverContext<'_>, name: &str) -> Result<Option<i64>> {
    ctx.args.get(name).filter(|v| !v.is_null()).map(|v| v.i64()).transpose()
}

fn optional_string(ctx: &ResolverContext<'_>, name: &str) -> Result<Option<String>> {
    Ok(ctx.args.get(name).filter(|v| !v.is_null()).map(|v| v.string()).transpose()?.map(str::to_owned))
}

fn get_field(model: &Arc<Served>) -> Field {
    let m = model.clone();
    Field::new(model.names().get, TypeRef::named(&model.name), move |ctx| {
        let model = m.clone();
        FieldFuture::new(async move {
            let who = caller(identity(&ctx)?);
            let id = ctx.args.try_get("id")?.string()?;
            let image = state(&ctx).storage.get(&model.name, id).await.map_err(storage_error)?;
            Ok(image
                .filter(|image| model.auth.allows(&who, Operation::Read, owner_of(image)))
                .map(json_to_value)
                .map(FieldValue::value))
        })
    })
    .description(format!("One {}, if it exists, has not expired, and is visible to the caller.", model.name))
    .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
}

fn owner_of(image: &Json) -> Option<&str> {
    image.get(OWNER_FIELD).and_then(Json::as_str)
}

/// The owner a read is limited to: `None` when a rule lets the caller read every row; refused when no rule lets
/// them read at all.
fn read_scope(model: &Model, who: &Caller) -> Result<Option<String>> {
    if model.auth.sees_all(who, Operation::Read) {
        Ok(None)
    } else if who.owner.is_some() && model.auth.allows(who, Operation::Read, who.owner.as_deref()) {
        Ok(who.owner.clone())
    } else {
        Err(forbidden(model, Operation::Read))
    }
}

fn list_field(model: &Arc<Served>) -> Field {
    let m = model.clone();
    let names = model.names();
    Field::new(&names.list, TypeRef::named_nn(&names.connection), move |ctx| {
        let model = m.clone();
        FieldFuture::new(async move {
            let who = caller(identity(&ctx)?);
            let owner = read_scope(&model, &who)?;
            let filter = filter_arg(&ctx, &model)?;
            let limit = optional_i64(&ctx, "limit")?.map(|l| l.clamp(i32::MIN.into(), i32::MAX.into()) as i32);
            let (limit, after) = page_args(limit, optional_string(&ctx, "nextToken")?.as_deref())?;
            let page = state(&ctx)
                .storage
                .list(&model.name, owner.as_deref(), after.as_deref(), limit)
                .await
                .map_err(storage_error)?;
            // As Amplify's (a DynamoDB scan's): `limit` rows are read, then filtered, so a page may hold fewer.
            let items: Vec<Value> =
                page.items.into_iter().filter(|item| passes(filter.as_ref(), item)).map(json_to_value).collect();
            metrics::counter!(crate::telemetry::LIST_ITEMS, "model" => model.name.clone())
                .increment(items.len() as u64);
            let mut connection = async_graphql::indexmap::IndexMap::new();
            connection.insert(Name::new("items"), Value::List(items));
            connection.insert(
                Name::new("nextToken"),
                page.last_id_if_more.map_or(Value::Null, |id| Value::String(next_token_for(&id))),
            );
            connection.insert(Name::new("seq"), Value::from(page.seq));
            Ok(Some(FieldValue::value(Value::Object(connection))))
        })
    })
    .description(format!(
        "The {}s the caller may see, by id, in pages of `limit` (default 100, at most 1000), with the seq the page \
         is consistent with.",
        model.name
    ))
    .argument(InputValue::new("filter", TypeRef::named(&names.filter_input)))
    .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)))
    .argument(InputValue::new("nextToken", TypeRef::named(TypeRef::STRING)))
}

/// The change event of `record` for a subscriber whose previous event was `prev_seq`.
fn change_value(model: &Model, record: &ChangeRecord, prev_seq: i64) -> Value {
    let mut change = async_graphql::indexmap::IndexMap::new();
    change.insert(Name::new("seq"), Value::from(record.seq));
    change.insert(Name::new("prevSeq"), Value::from(prev_seq));
    change.insert(Name::new("op"), Value::Enum(Name::new(op_name(record.op))));
    change.insert(Name::new("key"), Value::String(record.key.clone()));
    change.insert(Name::new("version"), Value::from(record.version));
    change.insert(Name::new("expired"), Value::Boolean(record.expired));
    change.insert(Name::new(model.names().entity_field), json_to_value((*record.image).clone()));
    change.insert(Name::new("clientMutationId"), record.client_mutation_id.clone().map_or(Value::Null, Value::String));
    // A Float in the schema (milliseconds overflow GraphQL's 32-bit Int), written without a fraction.
    change.insert(Name::new("committedAtMs"), Value::from(record.committed_at_ms));
    Value::Object(change)
}

fn watermark_value(seq: i64, prev_seq: i64) -> Value {
    let mut change = async_graphql::indexmap::IndexMap::new();
    change.insert(Name::new("seq"), Value::from(seq));
    change.insert(Name::new("prevSeq"), Value::from(prev_seq));
    change.insert(Name::new("op"), Value::Enum(Name::new("WATERMARK")));
    change.insert(Name::new("expired"), Value::Boolean(false));
    Value::Object(change)
}

/// Whether `who` may see `record` as a change of `model`.
fn visible(model: &Model, who: &Caller, record: &ChangeRecord) -> bool {
    *record.model == *model.name && model.auth.allows(who, Operation::Read, Some(&record.owner))
}

fn changes_since_field(model: &Arc<Served>) -> Field {
    let m = model.clone();
    let names = model.names();
    Field::new(names.changes_since, TypeRef::named_nn(&names.change_page), move |ctx| {
        let model = m.clone();
        FieldFuture::new(async move {
            let who = caller(identity(&ctx)?);
            read_scope(&model, &who)?;
            let after_seq = ctx.args.try_get("afterSeq")?.i64()?;
            let limit = optional_i64(&ctx, "limit")?.map(|l| l.clamp(1, 1000) as i32);
            let page = changes_page(state(&ctx), after_seq, limit, |r| visible(&model, &who, r)).await?;
            let changes = page.changes.iter().map(|(record, prev)| change_value(&model, record, *prev)).collect();
            let mut result = async_graphql::indexmap::IndexMap::new();
            result.insert(Name::new("changes"), Value::List(changes));
            result.insert(Name::new("lastSeq"), Value::from(page.last_seq));
            result.insert(Name::new("hasMore"), Value::Boolean(page.has_more));
            Ok(Some(FieldValue::value(Value::Object(result))))
        })
    })
    .description(format!(
        "The caller's view of the change log of {}s after `afterSeq` (the delta-sync query), at most `limit` \
         (default 100) records scanned.",
        model.name
    ))
    .argument(InputValue::new("afterSeq", TypeRef::named_nn(TypeRef::INT)))
    .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)))
}

/// The stored form of an image: its owner, version and `@ttl` columns.
fn item(model: &Model, image: Map<String, Json>) -> Item {
    let expires_at = model.ttl_field.as_ref().and_then(|f| image.get(f)).and_then(Json::as_i64);
    Item {
        owner: image.get(OWNER_FIELD).and_then(Json::as_str).unwrap_or_default().to_owned(),
        version: image.get(VERSION_FIELD).and_then(Json::as_i64).unwrap_or(1),
        expires_at,
        image: Json::Object(image),
    }
}

fn idempotency(ctx: &ResolverContext<'_>, identity: &Identity) -> Result<Option<IdempotencyKey>> {
    Ok(optional_string(ctx, "clientMutationId")?.map(|id| IdempotencyKey { scope: identity.owner(), id }))
}

fn validation(fields: Vec<subsignal_protocol::FieldError>) -> Error {
    storage_error(StorageError::Domain(DomainError::Validation(fields)))
}

fn create_field(models: &Arc<ModelSchema>, model: &Arc<Served>) -> Field {
    let (s, m) = (models.clone(), model.clone());
    let names = model.names();
    Field::new(names.create, TypeRef::named(&model.name), move |ctx| {
        let (models, model) = (s.clone(), m.clone());
        FieldFuture::new(async move {
            let identity = identity(&ctx)?;
            let who = caller(identity);
            if !model.auth.allows(&who, Operation::Create, None) {
                return Err(forbidden(&model, Operation::Create));
            }
            let input = input_map(&ctx, "input")?;
            let mut image = model.check(&models, &input, InputMode::Create)?;
            let id = match image.get("id").and_then(Json::as_str) {
                Some(id) => id.to_owned(),
                None => uuid::Uuid::now_v7().to_string(),
            };
            let now = state(&ctx).storage.clock().now_rfc3339();
            image.insert("id".into(), Json::String(id.clone()));
            image.insert(OWNER_FIELD.into(), Json::String(identity.owner()));
            image.insert(VERSION_FIELD.into(), Json::from(1));
            image.insert(CREATED_AT_FIELD.into(), Json::String(now.clone()));
            image.insert(UPDATED_AT_FIELD.into(), Json::String(now));
            if let Some(hooks) = &model.hooks {
                hooks.before_create(identity, &mut image).map_err(storage_error)?;
            }
            let new = item(&model, image);
            let outcome = state(&ctx)
                .storage
                .write(&model.name, idempotency(&ctx, identity)?, &id, move |current| {
                    if Stored::live(current).is_some() {
                        return Err(DomainError::Validation(vec![subsignal_protocol::FieldError::new(
                            "id",
                            "EXISTS",
                            "An item with this id exists.",
                        )])
                        .into());
                    }
                    Ok(Write::Insert(new))
                })
                .await
                .map_err(storage_error)?;
            Ok(Some(FieldValue::value(json_to_value(outcome.image().clone()))))
        })
    })
    .description(format!("Creates a {} owned by the caller.", model.name))
    .argument(InputValue::new("input", TypeRef::named_nn(&names.create_input)))
    .argument(InputValue::new("clientMutationId", TypeRef::named(TypeRef::ID)))
}

/// The live row `id` if `who` may do `op` on it and, with `expected_version`, it is at that version; else why not:
/// - CONFLICT carrying the current row when the row is at another version;
/// - CONFLICT carrying no row (`current: null`) when, with `expected_version`, there is no row the caller can see:
///   it was deleted or expired since the caller read it (another owner's row looks the same, so ids leak nothing);
/// - NOT_FOUND without `expected_version`, or for a row the caller reads but may not change.
pub(crate) fn writable(
    model: &Model,
    who: &Caller,
    op: Operation,
    current: Option<Stored>,
    expected_version: Option<i64>,
) -> Result<Item, StorageError> {
    match Stored::live(current) {
        Some(item) if model.auth.allows(who, op, Some(&item.owner)) => match expected_version {
            Some(expected) if expected != item.version => Err(DomainError::Conflict(Box::new(item.image)).into()),
            _ => Ok(item),
        },
        Some(item) if model.auth.allows(who, Operation::Read, Some(&item.owner)) => Err(DomainError::NotFound.into()),
        _ if expected_version.is_some() => Err(DomainError::Conflict(Box::new(Json::Null)).into()),
        _ => Err(DomainError::NotFound.into()),
    }
}

fn update_field(models: &Arc<ModelSchema>, model: &Arc<Served>) -> Field {
    let (s, m) = (models.clone(), model.clone());
    let names = model.names();
    Field::new(names.update, TypeRef::named(&model.name), move |ctx| {
        let (models, model) = (s.clone(), m.clone());
        FieldFuture::new(async move {
            let identity = identity(&ctx)?;
            let who = caller(identity);
            let input = input_map(&ctx, "input")?;
            let mut changes = model.check(&models, &input, InputMode::Update)?;
            let id = match changes.remove("id") {
                Some(Json::String(id)) => id,
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let writer = identity.clone();
            let expected_version = optional_i64(&ctx, "expectedVersion")?;
            let write_model = model.clone();
            let now = state(&ctx).storage.clock().now_rfc3339();
            let outcome = state(&ctx)
                .storage
                .write(&model.name, idempotency(&ctx, identity)?, &id, move |current| {
                    let model = write_model;
                    let current = writable(&model, &who, Operation::Update, current, expected_version)?;
                    let Json::Object(before) = current.image else {
                        return Err(DomainError::NotFound.into());
                    };
                    let mut image = before.clone();
                    image.extend(changes.clone());
                    image.insert(VERSION_FIELD.into(), Json::from(current.version + 1));
                    image.insert(UPDATED_AT_FIELD.into(), Json::String(now));
                    if let Some(hooks) = &model.hooks {
                        hooks.before_update(&writer, &before, &changes, &mut image)?;
                    }
                    Ok(Write::Update(item(&model, image)))
                })
                .await
                .map_err(storage_error)?;
            Ok(Some(FieldValue::value(json_to_value(outcome.image().clone()))))
        })
    })
    .description(format!(
        "Changes the fields `input` gives of a {}; with `expectedVersion`, fails with CONFLICT (carrying the current \
         item) if it is no longer at that version.",
        model.name
    ))
    .argument(InputValue::new("input", TypeRef::named_nn(&names.update_input)))
    .argument(InputValue::new("expectedVersion", TypeRef::named(TypeRef::INT)))
    .argument(InputValue::new("clientMutationId", TypeRef::named(TypeRef::ID)))
}

fn delete_field(model: &Arc<Served>) -> Field {
    let m = model.clone();
    let names = model.names();
    Field::new(names.delete, TypeRef::named(&model.name), move |ctx| {
        let model = m.clone();
        FieldFuture::new(async move {
            let identity = identity(&ctx)?;
            let who = caller(identity);
            let id = input_map(&ctx, "input")?.get("id").and_then(Json::as_str).unwrap_or_default().to_owned();
            let expected_version = optional_i64(&ctx, "expectedVersion")?;
            let write_model = model.clone();
            let outcome = state(&ctx)
                .storage
                .write(&model.name, idempotency(&ctx, identity)?, &id, move |current| {
                    let item = writable(&write_model, &who, Operation::Delete, current, expected_version)?;
                    Ok(Write::Delete { item, expired: false })
                })
                .await
                .map_err(storage_error)?;
            Ok(Some(FieldValue::value(json_to_value(outcome.image().clone()))))
        })
    })
    .description(format!("Deletes a {}; returns its last image.", model.name))
    .argument(InputValue::new("input", TypeRef::named_nn(&names.delete_input)))
    .argument(InputValue::new("expectedVersion", TypeRef::named(TypeRef::INT)))
    .argument(InputValue::new("clientMutationId", TypeRef::named(TypeRef::ID)))
}

fn on_changed_field(model: &Arc<Served>) -> SubscriptionField {
    let m = model.clone();
    let names = model.names();
    SubscriptionField::new(names.on_changed, TypeRef::named_nn(&names.change), move |ctx| {
        let model = m.clone();
        SubscriptionFieldFuture::new(async move {
            let who = caller(identity(&ctx)?);
            read_scope(&model, &who)?;
            let state = state(&ctx);
            let after = start_cursor(&ctx, state, optional_i64(&ctx, "afterSeq")?).await?;
            let filter_model = model.clone();
            let stream = deliveries(
                state.storage.clone(),
                after,
                move |record: &ChangeRecord| visible(&filter_model, &who, record),
                state.watermark_every,
            );
            Ok(stream.map(move |delivery| {
                let value = match delivery.map_err(read_error)? {
                    Delivery::Change { record, prev_seq } => change_value(&model, &record, prev_seq),
                    Delivery::Watermark { seq, prev_seq } => watermark_value(seq, prev_seq),
                };
                Ok(FieldValue::value(value))
            }))
        })
    })
    .description(format!(
        "Changes to the {}s the caller may see. With `afterSeq`, retained changes after it are replayed first, then \
         live ones follow, with no gap and no duplicate; without it, only changes from now on. A cursor older than \
         retention fails with CURSOR_EXPIRED: take a new snapshot with `{}`.",
        model.name, names.list
    ))
    .argument(InputValue::new("afterSeq", TypeRef::named(TypeRef::INT)))
}

/// The subscription fields whose executions subscribers may share ([`crate::fanout`]): every field [`build`] makes
/// with `on_op_field` — Amplify's `onCreateT`/`onUpdateT`/`onDeleteT` and the declared `@aws_subscribe` ones.
pub(crate) fn shareable_subscriptions(models: &ModelSchema) -> std::collections::HashSet<String> {
    let amplify = models.models.iter().flat_map(|m| {
        let names = m.names();
        [names.on_create, names.on_update, names.on_delete]
    });
    amplify.chain(models.subscriptions.iter().map(|s| s.name.clone())).collect()
}

/// Amplify's `onCreateT`/`onUpdateT`/`onDeleteT` and the declared `@aws_subscribe` subscriptions: the rows the
/// caller may see as `ops` write them, from the moment the subscribe message arrived. Each argument given must
/// equal the row's field of the same name (AppSync's argument filtering).
fn on_op_field(model: &Arc<Served>, name: &str, ops: &[ChangeOp], args: &[(String, FieldType)]) -> SubscriptionField {
    let m = model.clone();
    let ops = ops.to_vec();
    let arg_names: Vec<String> = args.iter().map(|(name, _)| name.clone()).collect();
    let mut field = SubscriptionField::new(name, TypeRef::named(&model.name), move |ctx| {
        let (model, ops, arg_names) = (m.clone(), ops.clone(), arg_names.clone());
        SubscriptionFieldFuture::new(async move {
            let who = caller(identity(&ctx)?);
            read_scope(&model, &who)?;
            let wanted = argument_filter(&ctx, &arg_names)?;
            let filter = filter_arg(&ctx, &model)?;
            let state = state(&ctx);
            let after = start_cursor(&ctx, state, None).await?;
            // In a shared execution, each result tells the group which record it comes from.
            let probe = ctx.data_opt::<SeqProbe>().cloned();
            let filter_model = model.clone();
            let stream = deliveries(
                state.storage.clone(),
                after,
                move |record: &ChangeRecord| {
                    ops.contains(&record.op)
                        && visible(&filter_model, &who, record)
                        && wanted.iter().all(|(field, value)| record.image.get(field) == Some(value))
                        && passes(filter.as_ref(), &record.image)
                },
                state.watermark_every,
            );
            Ok(stream.filter_map(move |delivery| {
                let probe = probe.clone();
                async move {
                    match delivery {
                        Ok(Delivery::Change { record, .. }) => {
                            if let Some(probe) = probe {
                                probe.set(record.seq);
                            }
                            Some(Ok(FieldValue::value(json_to_value((*record.image).clone()))))
                        }
                        Ok(Delivery::Watermark { .. }) => None,
                        Err(e) => Some(Err(read_error(e))),
                    }
                }
            }))
        })
    });
    for (arg, ty) in args {
        field = field.argument(InputValue::new(arg, type_ref(ty, true, true)));
    }
    field.argument(InputValue::new("filter", TypeRef::named(model.names().filter_input)))
}

/// The arguments given to a subscription (null ones are not given), as JSON values to compare rows' fields with.
fn argument_filter(ctx: &ResolverContext<'_>, names: &[String]) -> Result<Vec<(String, Json)>> {
    let mut wanted = Vec::new();
    for name in names {
        if let Some(value) = ctx.args.get(name).filter(|v| !v.is_null()) {
            wanted.push((name.clone(), value.as_value().clone().into_json()?));
        }
    }
    Ok(wanted)
}
