//! The order service: the rules of creating, editing, cancelling and advancing orders, on top of the one write path.
//! Both the GraphQL API and the stream worker call it.

use async_graphql::ID;
use serde::Deserialize;

use crate::auth::Identity;
use crate::model::{
    check_email, check_expiry, check_items, check_name, total_cents, AwsDateTime, AwsEmail, CreateOrderInput,
    FieldError, Order, OrderStatus, UpdateOrderInput,
};
use crate::storage::{DomainError, IdempotencyKey, Item, Storage, StorageError, Stored, Write, WriteOutcome};

/// The model name orders are stored under.
pub const MODEL: &str = "Order";

/// The order an image holds.
pub fn from_image(image: &serde_json::Value) -> Result<Order, StorageError> {
    Ok(Order::deserialize(image)?)
}

/// The stored form of an order.
fn item(order: &Order) -> Result<Item, StorageError> {
    Ok(Item {
        owner: order.owner.clone(),
        version: order.version,
        expires_at: order.expires_at,
        image: serde_json::to_value(order)?,
    })
}

/// The current order, if any row is live.
fn live(current: Option<Stored>) -> Result<Option<Order>, StorageError> {
    Stored::live(current).map(|item| from_image(&item.image)).transpose()
}

fn now_rfc3339() -> AwsDateTime {
    let now = time::OffsetDateTime::now_utc();
    AwsDateTime(now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn idempotency(scope: &str, client_mutation_id: Option<&str>) -> Option<IdempotencyKey> {
    client_mutation_id.map(|id| IdempotencyKey { scope: scope.to_owned(), id: id.to_owned() })
}

fn invalid(field: &str, code: &'static str, message: &str) -> DomainError {
    DomainError::Validation(vec![FieldError::new(field, code, message)])
}

/// The current, visible order or NOT_FOUND (another owner's order is reported as not found, so ids leak nothing).
fn visible(identity: &Identity, current: Option<Stored>) -> Result<Order, StorageError> {
    Ok(live(current)?.filter(|o| identity.can_see(&o.owner)).ok_or(DomainError::NotFound)?)
}

fn check_version(order: &Order, expected: i64) -> Result<(), StorageError> {
    if order.version == expected {
        Ok(())
    } else {
        Err(DomainError::Conflict(Box::new(serde_json::to_value(order)?)).into())
    }
}

fn transition(order: &mut Order, next: OrderStatus) -> Result<(), StorageError> {
    if !order.status.can_become(next) {
        return Err(invalid(
            "status",
            "INVALID_TRANSITION",
            &format!("An order that is {} cannot become {}.", order.status.as_str(), next.as_str()),
        )
        .into());
    }
    order.status = next;
    Ok(())
}

fn bump(order: &mut Order) {
    order.version += 1;
    order.updated_at = now_rfc3339();
}

/// Creates an order owned by `identity`.
pub async fn create(
    storage: &Storage,
    identity: &Identity,
    input: CreateOrderInput,
    client_mutation_id: Option<&str>,
) -> Result<WriteOutcome, StorageError> {
    let mut errors = Vec::new();
    check_name(&input.customer_name, &mut errors);
    check_email(&input.email, &mut errors);
    check_items(&input.items, &mut errors);
    check_expiry(input.expires_at, now_secs(), &mut errors);
    if !errors.is_empty() {
        return Err(DomainError::Validation(errors).into());
    }
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_rfc3339();
    let order = Order {
        id: ID(id.clone()),
        owner: identity.owner(),
        customer_name: input.customer_name.trim().to_owned(),
        email: AwsEmail(input.email.trim().to_owned()),
        total_cents: total_cents(&input.items),
        items: input.items,
        status: OrderStatus::Submitted,
        version: 1,
        created_at: now.clone(),
        updated_at: now,
        expires_at: input.expires_at,
    };
    let item = item(&order)?;
    storage
        .write(MODEL, idempotency(&identity.owner(), client_mutation_id), &id, move |_| Ok(Write::Insert(item)))
        .await
}

/// Edits an order at `expected_version`.
pub async fn update(
    storage: &Storage,
    identity: &Identity,
    id: &str,
    expected_version: i64,
    input: UpdateOrderInput,
    client_mutation_id: Option<&str>,
) -> Result<WriteOutcome, StorageError> {
    let identity_for_write = identity.clone();
    storage
        .write(MODEL, idempotency(&identity.owner(), client_mutation_id), id, move |current| {
            let identity = identity_for_write;
            let mut order = visible(&identity, current)?;
            check_version(&order, expected_version)?;
            let mut errors = Vec::new();
            if let Some(name) = input.customer_name {
                check_name(&name, &mut errors);
                order.customer_name = name.trim().to_owned();
            }
            if let Some(email) = input.email {
                check_email(&email, &mut errors);
                order.email = AwsEmail(email.trim().to_owned());
            }
            if let Some(items) = input.items {
                if order.status != OrderStatus::Submitted {
                    errors.push(FieldError::new(
                        "items",
                        "LOCKED",
                        "Items can only change while the order is SUBMITTED.",
                    ));
                }
                check_items(&items, &mut errors);
                order.total_cents = total_cents(&items);
                order.items = items;
            }
            if input.expires_at.is_some() {
                check_expiry(input.expires_at, now_secs(), &mut errors);
                order.expires_at = input.expires_at;
            }
            if !errors.is_empty() {
                return Err(DomainError::Validation(errors).into());
            }
            if let Some(status) = input.status {
                if !identity.is_operator() {
                    return Err(DomainError::Forbidden(
                        "Only operators change an order's status; use cancelOrder to cancel.".into(),
                    )
                    .into());
                }
                transition(&mut order, status)?;
            }
            bump(&mut order);
            Ok(Write::Update(item(&order)?))
        })
        .await
}

/// Cancels an order at `expected_version`.
pub async fn cancel(
    storage: &Storage,
    identity: &Identity,
    id: &str,
    expected_version: i64,
    client_mutation_id: Option<&str>,
) -> Result<WriteOutcome, StorageError> {
    let identity_for_write = identity.clone();
    storage
        .write(MODEL, idempotency(&identity.owner(), client_mutation_id), id, move |current| {
            let mut order = visible(&identity_for_write, current)?;
            check_version(&order, expected_version)?;
            transition(&mut order, OrderStatus::Cancelled)?;
            bump(&mut order);
            Ok(Write::Update(item(&order)?))
        })
        .await
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
    let outcome = storage
        .write(MODEL, Some(key), id, move |current| {
            let mut order = live(current)?.ok_or(DomainError::NotFound)?;
            check_version(&order, expected_version)?;
            let next = order.status.worker_next().ok_or(DomainError::NotFound)?;
            transition(&mut order, next)?;
            bump(&mut order);
            Ok(Write::Update(item(&order)?))
        })
        .await;
    match outcome {
        Ok(outcome) => Ok(Some(outcome)),
        Err(StorageError::Domain(DomainError::NotFound | DomainError::Conflict(_))) => Ok(None),
        Err(e) => Err(e),
    }
}
