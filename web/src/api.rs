//! What the app asks of the server: the GraphQL documents, the order row type, and the mutations with their
//! optimistic effects. Everything goes through the store.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use subsignal_leptos::{CollectionConfig, HistoryConfig, Mutation, Optimistic};
use subsignal_orders::{OrderItem, OrderStatus};

/// The collection name.
pub(crate) const ORDERS: &str = "orders";

const FIELDS: &str = "id owner customerName email items { sku quantity unitPriceCents } totalCents status version \
                      createdAt updatedAt expiresAt";

/// A product of the demo shop.
pub(crate) struct Product {
    pub(crate) sku: &'static str,
    pub(crate) name: &'static str,
    pub(crate) price_cents: i32,
}

/// The small product list of the demo shop.
pub(crate) const PRODUCTS: [Product; 5] = [
    Product { sku: "tea", name: "Green tea", price_cents: 450 },
    Product { sku: "coffee", name: "Coffee beans", price_cents: 1290 },
    Product { sku: "mug", name: "Enamel mug", price_cents: 990 },
    Product { sku: "cake", name: "Lemon cake", price_cents: 520 },
    Product { sku: "kettle", name: "Kettle", price_cents: 3900 },
];

/// The product name for a SKU.
pub(crate) fn product_name(sku: &str) -> &str {
    PRODUCTS.iter().find(|p| p.sku == sku).map_or(sku, |p| p.name)
}

/// An order row as the store holds it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Order {
    pub(crate) id: String,
    pub(crate) owner: String,
    pub(crate) customer_name: String,
    pub(crate) email: String,
    pub(crate) items: Vec<OrderItem>,
    pub(crate) total_cents: i64,
    pub(crate) status: OrderStatus,
    pub(crate) version: i64,
}

impl Order {
    /// Whether this row is an optimistic placeholder the server has not confirmed yet.
    pub(crate) fn is_pending(&self) -> bool {
        self.version == 0
    }
}

/// The live orders collection: a snapshot from `listOrders`, kept current by `onOrderChanged`. Newest first (ids are
/// time-ordered). It keeps a history of its last 500 changes for the event panel's time travel. Persisted: a reload
/// shows the orders of the last visit at once, then fetches only what changed. On a first visit `index.html` sends
/// the same snapshot request while the app downloads, for the store to take: keep its query text equal to this one
/// (tests/js/web/app.e2e.mjs fails when the store sends a snapshot of its own).
pub(crate) fn orders_collection() -> CollectionConfig {
    CollectionConfig::new(ORDERS)
        .snapshot(
            format!(
                "query Orders($limit: Int, $nextToken: String) {{ listOrders(limit: $limit, nextToken: $nextToken) \
                 {{ items {{ {FIELDS} }} nextToken seq }} }}"
            ),
            "listOrders",
        )
        .subscription(
            format!(
                "subscription Changes($afterSeq: Int) {{ onOrderChanged(afterSeq: $afterSeq) \
                 {{ seq prevSeq op key version expired clientMutationId order {{ {FIELDS} }} }} }}"
            ),
            "onOrderChanged",
            "order",
        )
        .descending()
        .history(HistoryConfig { max_events: 500, checkpoint_every: 50 })
        .persist()
}

/// Places an order; with `optimistic`, a placeholder row shows at once.
pub(crate) fn create_order(
    owner: &str,
    name: &str,
    email: &str,
    items: &[OrderItem],
    optimistic: Option<String>,
) -> Mutation {
    let input = json!({"customerName": name, "email": email, "items": items});
    let mutation = Mutation::new(
        format!(
            "mutation Create($input: CreateOrderInput!, $clientMutationId: ID) \
             {{ createOrder(input: $input, clientMutationId: $clientMutationId) {{ {FIELDS} }} }}"
        ),
        json!({"input": input}),
        "createOrder",
    );
    match optimistic {
        None => mutation,
        Some(temp_id) => {
            let total: i64 = subsignal_orders::total_cents(items);
            let row = json!({
                "id": temp_id, "owner": owner, "customerName": name, "email": email, "items": items,
                "totalCents": total, "status": "SUBMITTED", "version": 0,
            });
            mutation.optimistic(ORDERS, Optimistic::Upsert { row })
        }
    }
}

/// Changes `fields` (customer name, email) of the order `base`, the row as the edit form opened on it: sent with its
/// version as `expectedVersion`, and as the edit's base, so a conflict tells who changed what.
pub(crate) fn update_order(base: Value, fields: Map<String, Value>, optimistic: bool) -> Mutation {
    let id = str_field(&base, "id").to_owned();
    let mut input = fields.clone();
    input.insert("id".to_owned(), Value::String(id.clone()));
    let mutation = Mutation::new(
        format!(
            "mutation Update($input: UpdateOrderInput!, $expectedVersion: Int, $clientMutationId: ID) \
             {{ updateOrder(input: $input, expectedVersion: $expectedVersion, clientMutationId: $clientMutationId) \
             {{ {FIELDS} }} }}"
        ),
        json!({"input": input, "expectedVersion": base["version"]}),
        "updateOrder",
    )
    .base(base);
    if optimistic {
        mutation.optimistic(ORDERS, Optimistic::Patch { key: id, fields: Value::Object(fields) })
    } else {
        mutation
    }
}

/// Cancels an order at the version the user saw.
pub(crate) fn cancel_order(id: &str, version: i64, optimistic: bool) -> Mutation {
    let mutation = Mutation::new(
        format!(
            "mutation Cancel($id: ID!, $version: Int!, $clientMutationId: ID) \
             {{ cancelOrder(id: $id, expectedVersion: $version, clientMutationId: $clientMutationId) {{ {FIELDS} }} }}"
        ),
        json!({"id": id, "version": version}),
        "cancelOrder",
    )
    .version_variable("version");
    if optimistic {
        mutation.optimistic(ORDERS, Optimistic::Patch { key: id.to_owned(), fields: json!({"status": "CANCELLED"}) })
    } else {
        mutation
    }
}

/// Formats cents as a price.
pub(crate) fn money(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// Reads a field of a JSON value as a string.
pub(crate) fn str_field<'a>(value: &'a Value, field: &str) -> &'a str {
    value.get(field).and_then(Value::as_str).unwrap_or("")
}
