//! The order entity, its inputs and AppSync-style scalars. Statuses, line items and the validation rules live in
//! `subsignal-orders`, shared with the web app.

use async_graphql::{InputObject, InputValueError, InputValueResult, Scalar, ScalarType, SimpleObject, Value};
use serde::{Deserialize, Serialize};
pub use subsignal_orders::*;

macro_rules! string_scalar {
    ($ty:ident, $name:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $ty(pub String);

        #[Scalar(name = $name)]
        impl ScalarType for $ty {
            fn parse(value: Value) -> InputValueResult<Self> {
                match value {
                    Value::String(s) => Ok($ty(s)),
                    other => Err(InputValueError::expected_type(other)),
                }
            }

            fn to_value(&self) -> Value {
                Value::String(self.0.clone())
            }
        }
    };
}

string_scalar!(AwsEmail, "AWSEmail", "An email address (AppSync's `AWSEmail`).");
string_scalar!(AwsDateTime, "AWSDateTime", "An RFC 3339 date-time in UTC (AppSync's `AWSDateTime`).");

/// An order: the one entity of the demo table.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Key (a time-ordered UUID).
    pub id: async_graphql::ID,
    /// The caller who created it, from their verified identity.
    pub owner: String,
    /// Customer's name.
    pub customer_name: String,
    /// Customer's email.
    pub email: AwsEmail,
    /// Line items.
    pub items: Vec<OrderItem>,
    /// Sum of quantity × unit price, computed by the server.
    pub total_cents: i64,
    /// Where the order is.
    pub status: OrderStatus,
    /// Starts at 1, +1 on every write; writers pass it back as `expectedVersion`.
    pub version: i64,
    /// When it was created.
    pub created_at: AwsDateTime,
    /// When it last changed.
    pub updated_at: AwsDateTime,
    /// Seconds since the epoch after which the order expires (TTL), like AppSync's `AWSTimestamp`.
    #[graphql(name = "expiresAt")]
    pub expires_at: Option<i64>,
}

/// Input of `createOrder`.
#[derive(InputObject, Debug, Clone)]
pub struct CreateOrderInput {
    /// Customer's name, 1–100 characters.
    pub customer_name: String,
    /// Customer's email.
    pub email: String,
    /// At least one line item.
    pub items: Vec<OrderItem>,
    /// Optional TTL: seconds since the epoch, in the future.
    pub expires_at: Option<i64>,
}

/// Input of `updateOrder`: only the fields given change.
#[derive(InputObject, Debug, Clone, Default)]
pub struct UpdateOrderInput {
    /// New customer name.
    pub customer_name: Option<String>,
    /// New email.
    pub email: Option<String>,
    /// New line items (only while SUBMITTED).
    pub items: Option<Vec<OrderItem>>,
    /// New status (admins and API keys only; must be an allowed transition).
    pub status: Option<OrderStatus>,
    /// New TTL, seconds since the epoch.
    pub expires_at: Option<i64>,
}
