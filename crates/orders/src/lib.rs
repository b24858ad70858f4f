//! The order domain shared by the subsignal server and its web app: statuses and their transitions, line items, and
//! the validation rules. The server enforces these rules; the web app shows the same rules as hints while a person
//! types, so both always agree. No IO; builds for native and `wasm32`.
#![deny(missing_docs)]

use serde::{Deserialize, Serialize};

/// Longest accepted customer name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Most line items on one order.
pub const MAX_ITEMS: usize = 50;
/// Largest quantity of one line item.
pub const MAX_QUANTITY: i32 = 1000;
/// Largest unit price, in cents.
pub const MAX_UNIT_PRICE_CENTS: i32 = 10_000_000;

/// An order's status. The stream worker moves new orders SUBMITTED → PAID → PREPARING → SHIPPED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Placed by the customer.
    Submitted,
    /// Payment taken.
    Paid,
    /// Being packed.
    Preparing,
    /// Handed to the carrier.
    Shipped,
    /// Received by the customer.
    Delivered,
    /// Cancelled before shipping.
    Cancelled,
}

impl OrderStatus {
    /// Whether moving from `self` to `next` is allowed.
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Submitted, Paid)
                | (Paid, Preparing)
                | (Preparing, Shipped)
                | (Shipped, Delivered)
                | (Submitted | Paid | Preparing, Cancelled)
        )
    }

    /// The step the order-processing worker takes next, if any.
    pub fn worker_next(self) -> Option<OrderStatus> {
        match self {
            OrderStatus::Submitted => Some(OrderStatus::Paid),
            OrderStatus::Paid => Some(OrderStatus::Preparing),
            OrderStatus::Preparing => Some(OrderStatus::Shipped),
            _ => None,
        }
    }

    /// Every status, in the order an order moves through them (CANCELLED last).
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::Submitted,
        OrderStatus::Paid,
        OrderStatus::Preparing,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    /// Whether the owner may still cancel.
    pub fn can_cancel(self) -> bool {
        self.can_become(OrderStatus::Cancelled)
    }

    /// The GraphQL / JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Submitted => "SUBMITTED",
            OrderStatus::Paid => "PAID",
            OrderStatus::Preparing => "PREPARING",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Delivered => "DELIVERED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    /// Stock-keeping unit.
    pub sku: String,
    /// How many, at least 1.
    pub quantity: i32,
    /// Price of one unit, in cents.
    pub unit_price_cents: i32,
}

pub use subsignal_protocol::FieldError;

/// Checks a customer name.
pub fn check_name(name: &str, errors: &mut Vec<FieldError>) {
    let chars = name.trim().chars().count();
    if chars == 0 {
        errors.push(FieldError::new("customerName", "REQUIRED", "Enter the customer's name."));
    } else if chars > MAX_NAME_CHARS {
        errors.push(FieldError::new(
            "customerName",
            "TOO_LONG",
            format!("The name is {chars} characters long; the limit is {MAX_NAME_CHARS}."),
        ));
    }
}

/// Whether `email` looks like an address: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty()
        && email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && !domain.contains('@')
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty())
}

/// Checks an email address.
pub fn check_email(email: &str, errors: &mut Vec<FieldError>) {
    if email.trim().is_empty() {
        errors.push(FieldError::new("email", "REQUIRED", "Enter an email address."));
    } else if !is_valid_email(email) {
        errors.push(FieldError::new("email", "INVALID_EMAIL", format!("\"{email}\" is not an email address.")));
    }
}

/// Checks line items.
pub fn check_items(items: &[OrderItem], errors: &mut Vec<FieldError>) {
    if items.is_empty() {
        errors.push(FieldError::new("items", "REQUIRED", "Add at least one item."));
    }
    if items.len() > MAX_ITEMS {
        errors.push(FieldError::new("items", "TOO_MANY", format!("At most {MAX_ITEMS} items per order.")));
    }
    for (i, item) in items.iter().enumerate() {
        if item.sku.trim().is_empty() || item.sku.len() > 64 {
            errors.push(FieldError::new(format!("items[{i}].sku"), "INVALID_SKU", "Choose a product."));
        }
        if item.quantity <= 0 {
            errors.push(FieldError::new(format!("items[{i}].quantity"), "TOO_SMALL", "Quantity must be at least 1."));
        } else if item.quantity > MAX_QUANTITY {
            errors.push(FieldError::new(
                format!("items[{i}].quantity"),
                "TOO_LARGE",
                format!("Quantity must be at most {MAX_QUANTITY}."),
            ));
        }
        if !(0..=MAX_UNIT_PRICE_CENTS).contains(&item.unit_price_cents) {
            errors.push(FieldError::new(
                format!("items[{i}].unitPriceCents"),
                "OUT_OF_RANGE",
                format!("Unit price must be between 0 and {MAX_UNIT_PRICE_CENTS} cents."),
            ));
        }
    }
}

/// Checks a TTL: it must lie in the future.
pub fn check_expiry(expires_at: Option<i64>, now_secs: i64, errors: &mut Vec<FieldError>) {
    if let Some(at) = expires_at {
        if at <= now_secs {
            errors.push(FieldError::new("expiresAt", "IN_THE_PAST", "The expiry time must be in the future."));
        }
    }
}

/// Sum of quantity × unit price.
pub fn total_cents(items: &[OrderItem]) -> i64 {
    items.iter().map(|i| i64::from(i.quantity) * i64::from(i.unit_price_cents)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(q: i32, p: i32) -> OrderItem {
        OrderItem { sku: "tea".into(), quantity: q, unit_price_cents: p }
    }

    #[test]
    fn emails() {
        assert!(is_valid_email("a@b.co"));
        assert!(!is_valid_email("a@b"));
        assert!(!is_valid_email("a b@c.de"));
        assert!(!is_valid_email("@c.de"));
        assert!(!is_valid_email("a@@c.de"));
        assert!(!is_valid_email("a@c..de"));
    }

    #[test]
    fn items_are_checked_with_paths() {
        let mut errors = vec![];
        check_items(&[item(1, 100), item(0, 100), item(2, -1)], &mut errors);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["items[1].quantity", "items[2].unitPriceCents"]);
        errors.clear();
        check_items(&[], &mut errors);
        assert_eq!(errors[0].code, "REQUIRED");
    }

    #[test]
    fn transitions() {
        use OrderStatus::*;
        assert!(Submitted.can_become(Paid));
        assert!(Paid.can_become(Cancelled));
        assert!(!Shipped.can_become(Cancelled));
        assert!(!Delivered.can_become(Submitted));
        assert!(!Submitted.can_become(Shipped));
        assert_eq!(Preparing.worker_next(), Some(Shipped));
        assert_eq!(Shipped.worker_next(), None);
    }

    #[test]
    fn totals() {
        assert_eq!(total_cents(&[item(3, 250), item(1, 1)]), 751);
    }
}
