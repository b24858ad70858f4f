//! The order service: `examples/orders/schema.graphql` plus its rules as hooks on the `Order` model, the worked
//! example of the extension point ([`crate::hooks`]). The schema gives the API; the hooks check names, emails and
//! line items with the web app's own rules (`subsignal-orders`), compute the total and the status, guard status
//! transitions, add `cancelOrder`; [`order_processor`](crate::workers::order_processor) is its stream worker, which
//! moves new orders along through [`advance`].

use std::sync::Arc;

use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, TypeRef};
use serde_json::{json, Value};
use subsignal_models::{InputMode, Model, ModelSchema, Operation};
use subsignal_orders::{check_email, check_expiry, check_items, check_name, total_cents, OrderItem, OrderStatus};
use subsignal_protocol::FieldError;

use crate::auth::Identity;
use crate::clock::Clock;
use crate::generated::{caller, json_to_value, writable};
use crate::hooks::{Hooks, ModelHooks, Row};
use crate::schema::{identity, state, storage_error};
use crate::storage::{DomainError, IdempotencyKey, Item, Storage, StorageError, Stored, Write, WriteOutcome};

/// The model orders are stored as.
pub const MODEL: &str = "Order";

/// The order schema's SDL, built into the binary.
pub const SCHEMA: &str = include_str!("../../../examples/orders/schema.graphql");

/// The order schema, checked.
pub fn schema() -> ModelSchema {
    subsignal_models::parse("examples/orders/schema.graphql", SCHEMA).expect("the built-in order schema is valid")
}

/// The order service's hooks; an order's expiry must be after `clock`'s now.
pub fn hooks(clock: &Clock) -> Hooks {
    Hooks::default().with(MODEL, OrderHooks { clock: clock.clone() })
}

struct OrderHooks {
    clock: Clock,
}

fn invalid(field: &str, code: &'static str, message: &str) -> DomainError {
    DomainError::Validation(vec![FieldError::new(field, code, message)])
}

/// An order's status as stored.
fn status_of(row: &Row) -> Result<OrderStatus, StorageError> {
    Ok(serde_json::from_value(row.get("status").cloned().unwrap_or_default())?)
}

/// The line items of an input or a row, when they have the right shape (the generated checks report it otherwise).
fn items_of(row: &Row) -> Option<Vec<OrderItem>> {
    serde_json::from_value(row.get("items")?.clone()).ok()
}

fn trim(row: &mut Row, field: &str) {
    if let Some(Value::String(s)) = row.get_mut(field) {
        *s = s.trim().to_owned();
    }
}

/// Moves `row` to `next`, if an order in its status may become `next`.
fn transition(row: &mut Row, next: OrderStatus) -> Result<(), StorageError> {
    let status = status_of(row)?;
    if !status.can_become(next) {
        return Err(invalid(
            "status",
            "INVALID_TRANSITION",
            &format!("An order that is {} cannot become {}.", status.as_str(), next.as_str()),
        )
        .into());
    }
    row.insert("status".into(), json!(next.as_str()));
    Ok(())
}

impl ModelHooks for OrderHooks {
    fn computed_fields(&self, mode: InputMode) -> &'static [&'static str] {
        match mode {
            // Operators may set the status of an existing order (the transition is checked).
            InputMode::Create => &["totalCents", "status"],
            InputMode::Update => &["totalCents"],
        }
    }

    fn check_input(&self, mode: InputMode, input: &Row) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let creating = mode == InputMode::Create;
        match input.get("customerName") {
            Some(Value::String(name)) => check_name(name, &mut errors),
            None if creating => check_name("", &mut errors),
            _ => {}
        }
        match input.get("email") {
            Some(Value::String(email)) => check_email(email, &mut errors),
            None if creating => check_email("", &mut errors),
            _ => {}
        }
        if let Some(items) = items_of(input) {
            check_items(&items, &mut errors);
        }
        check_expiry(input.get("expiresAt").and_then(Value::as_i64), self.clock.now_secs(), &mut errors);
        errors
    }

    fn before_create(&self, _who: &Identity, row: &mut Row) -> Result<(), StorageError> {
        trim(row, "customerName");
        trim(row, "email");
        let total = total_cents(&items_of(row).unwrap_or_default());
        row.insert("totalCents".into(), json!(total));
        row.insert("status".into(), json!(OrderStatus::Submitted.as_str()));
        Ok(())
    }

    fn before_update(&self, who: &Identity, current: &Row, changes: &Row, row: &mut Row) -> Result<(), StorageError> {
        trim(row, "customerName");
        trim(row, "email");
        if changes.contains_key("items") {
            if status_of(current)? != OrderStatus::Submitted {
                return Err(invalid("items", "LOCKED", "Items can only change while the order is SUBMITTED.").into());
            }
            row.insert("totalCents".into(), json!(total_cents(&items_of(row).unwrap_or_default())));
        }
        if let Some(status) = changes.get("status") {
            if !who.is_operator() {
                return Err(DomainError::Forbidden(
                    "Only operators change an order's status; use cancelOrder to cancel.".into(),
                )
                .into());
            }
            let next: OrderStatus = serde_json::from_value(status.clone())?;
            row.insert("status".into(), current.get("status").cloned().unwrap_or_default());
            transition(row, next)?;
        }
        Ok(())
    }

    fn mutations(&self, model: &Arc<Model>) -> Vec<Field> {
        vec![cancel_order(model.clone())]
    }
}

/// Bumps a row's version and `updatedAt` (to `now`) in place.
fn bump(item: &mut Item, now: String) -> Result<(), StorageError> {
    item.version += 1;
    let Value::Object(row) = &mut item.image else {
        return Err(StorageError::Domain(DomainError::NotFound));
    };
    row.insert("version".into(), json!(item.version));
    row.insert("updatedAt".into(), json!(now));
    Ok(())
}

/// The live order `id` at `expected_version`, moved to `next` at `now`.
fn moved(current: Option<Stored>, expected_version: i64, next: OrderStatus, now: String) -> Result<Item, StorageError> {
    let item = Stored::live(current).ok_or(DomainError::NotFound)?;
    if item.version != expected_version {
        return Err(DomainError::Conflict(Box::new(item.image)).into());
    }
    transitioned(item, next, now)
}

/// `item` moved to `next` at `now`.
fn transitioned(mut item: Item, next: OrderStatus, now: String) -> Result<Item, StorageError> {
    let Value::Object(row) = &mut item.image else { return Err(DomainError::NotFound.into()) };
    transition(row, next)?;
    bump(&mut item, now)?;
    Ok(item)
}

/// `cancelOrder(id, expectedVersion, clientMutationId)`: an owner (or an operator) cancels an order that has not
/// shipped.
fn cancel_order(model: Arc<Model>) -> Field {
    Field::new("cancelOrder", TypeRef::named(MODEL), move |ctx| {
        let model = model.clone();
        FieldFuture::new(async move {
            let identity = identity(&ctx)?;
            let who = caller(identity);
            let id = ctx.args.try_get("id")?.string()?.to_owned();
            let expected_version = ctx.args.try_get("expectedVersion")?.i64()?;
            let client_mutation_id = ctx.args.get("clientMutationId").filter(|v| !v.is_null());
            let idempotency = client_mutation_id
                .map(|v| v.string().map(|id| IdempotencyKey { scope: identity.owner(), id: id.to_owned() }))
                .transpose()?;
            let storage = &state(&ctx).storage;
            let now = storage.clock().now_rfc3339();
            let outcome = storage
                .write(MODEL, idempotency, &id, move |current| {
                    // As every update: CONFLICT with the current order (none if it is gone or not the caller's).
                    let item = writable(&model, &who, Operation::Update, current, Some(expected_version))?;
                    Ok(Write::Update(transitioned(item, OrderStatus::Cancelled, now)?))
                })
                .await
                .map_err(storage_error)?;
            Ok(Some(FieldValue::value(json_to_value(outcome.image().clone()))))
        })
    })
    .description("Cancels an order that has not shipped; fails with CONFLICT if it is no longer at `expectedVersion`.")
    .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID)))
    .argument(InputValue::new("expectedVersion", TypeRef::named_nn(TypeRef::INT)))
    .argument(InputValue::new("clientMutationId", TypeRef::named(TypeRef::ID)))
}

/// The worker's step: moves the order from the status it had at `expected_version` to the next one. Idempotent by
/// the change record's `seq`: a replay returns the earlier result; a moved-on order is left alone (`Ok(None)`).
pub async fn advance(
    storage: &Storage,
    worker: &str,
    seq: i64,
    id: &str,
    expected_version: i64,
) -> Result<Option<WriteOutcome>, StorageError> {
    let key = IdempotencyKey { scope: format!("worker:{worker}"), id: format!("seq-{seq}") };
    let now = storage.clock().now_rfc3339();
    let outcome = storage
        .write(MODEL, Some(key), id, move |current| {
            let Some(Stored { item, expired: false }) = &current else { return Err(DomainError::NotFound.into()) };
            let Value::Object(row) = &item.image else { return Err(DomainError::NotFound.into()) };
            let next = status_of(row)?.worker_next().ok_or(DomainError::NotFound)?;
            Ok(Write::Update(moved(current, expected_version, next, now)?))
        })
        .await;
    match outcome {
        Ok(outcome) => Ok(Some(outcome)),
        Err(StorageError::Domain(DomainError::NotFound | DomainError::Conflict(_))) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the worker has a step to take for an order image.
pub fn worker_moves(image: &Value) -> Result<bool, StorageError> {
    let Value::Object(row) = image else { return Ok(false) };
    Ok(status_of(row)?.worker_next().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_schema_is_valid_and_declares_orders() {
        let schema = schema();
        let order = schema.model(MODEL).expect("an Order model");
        assert_eq!(order.ttl_field.as_deref(), Some("expiresAt"));
        assert_eq!(order.names().list, "listOrders");
    }
}
