//! The GraphQL schema (async-graphql): queries, mutations and the `onOrderChanged` subscription. Transport-free:
//! the HTTP and WebSocket layers put the caller's [`Identity`] into each request's data.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{
    Context, Enum, Error, ErrorExtensions, Object, Result, Schema, ServerError, ServerResult, SimpleObject,
    Subscription, Value, ID,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures_util::{Stream, StreamExt};
use subsignal_protocol::change::error_code;

use crate::auth::Identity;
use crate::model::{CreateOrderInput, Order, UpdateOrderInput};
use crate::orders;
use crate::storage::{ChangeRecord, DomainError, Storage, StorageError};
use crate::stream::{deliveries, read_after, Delivery, ReadError};

/// The schema type of the order service.
pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The schema a server serves: the built-in order service, or the API generated from `--schema` models.
#[derive(Clone)]
pub enum GraphSchema {
    /// The order service (the default).
    Orders(AppSchema),
    /// The API generated from SDL models (see [`crate::generated`]).
    Models(async_graphql::dynamic::Schema),
}

impl GraphSchema {
    /// Runs a query or mutation.
    pub async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        match self {
            GraphSchema::Orders(schema) => schema.execute(request).await,
            GraphSchema::Models(schema) => schema.execute(request).await,
        }
    }

    /// Runs any operation as a stream of responses (one for queries and mutations, one per event for
    /// subscriptions).
    pub fn execute_stream(
        &self,
        request: async_graphql::Request,
    ) -> futures_util::stream::BoxStream<'static, async_graphql::Response> {
        match self {
            GraphSchema::Orders(schema) => schema.execute_stream(request).boxed(),
            GraphSchema::Models(schema) => schema.execute_stream(request).boxed(),
        }
    }

    /// The schema in SDL.
    pub fn sdl(&self) -> String {
        match self {
            GraphSchema::Orders(schema) => schema.sdl(),
            GraphSchema::Models(schema) => schema.sdl(),
        }
    }
}

/// What resolvers need, shared by all requests.
#[derive(Debug, Clone)]
pub struct SchemaState {
    /// The database and its change feed.
    pub storage: Storage,
    /// How long a subscription lags behind invisible changes before it gets a watermark.
    pub watermark_every: Duration,
}

/// The change-log head when a subscribe message arrived: where a subscription without `afterSeq` starts.
#[derive(Debug, Clone, Copy)]
pub struct SubscribedAt(pub i64);

/// Schema limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum query depth.
    pub max_depth: usize,
    /// Maximum query complexity.
    pub max_complexity: usize,
    /// Maximum aliases in one document.
    pub max_aliases: usize,
    /// Maximum directives in one document.
    pub max_directives: usize,
    /// Whether introspection is allowed.
    pub introspection: bool,
}

impl From<&crate::config::Config> for Limits {
    fn from(config: &crate::config::Config) -> Self {
        Limits {
            max_depth: config.max_depth,
            max_complexity: config.max_complexity,
            max_aliases: config.max_aliases,
            max_directives: config.max_directives,
            introspection: config.introspection,
        }
    }
}

/// Brackets (`{`, `(`, `[`) a document may nest before it is even parsed: the parser recurses on them.
pub const MAX_NESTING: usize = 64;

/// Builds the schema.
pub fn build(state: SchemaState, limits: Limits) -> AppSchema {
    let mut builder = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(Arc::new(state))
        .extension(DocumentLimits::from(limits))
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

impl From<Limits> for DocumentLimits {
    fn from(limits: Limits) -> Self {
        DocumentLimits {
            max_fields: limits.max_complexity,
            max_aliases: limits.max_aliases,
            max_directives: limits.max_directives,
            introspection: limits.introspection,
        }
    }
}

/// Document limits checked around parsing, before validation: bracket nesting (before the parser sees the text),
/// then introspection when it is off (async-graphql alone would answer `__schema: null`, not an error), then aliases
/// and directives across the whole document (alias batching and directive overloading amplify one
/// small request into a lot of work; async-graphql's own directive limit is per field, and walks fragment spreads
/// without memo, so it is not used), and the document's size once fragments are spread (validation expands them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DocumentLimits {
    max_fields: usize,
    max_aliases: usize,
    max_directives: usize,
    introspection: bool,
}

impl ExtensionFactory for DocumentLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_trait::async_trait]
impl Extension for DocumentLimits {
    // Before async-graphql's own checks: its recursion-depth check walks every fragment spread without memo, so a
    // document that spreads two fragments per level for 30 levels costs it 2^30 steps (a minute of CPU) unless the
    // fan-out is refused first.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        if nesting(&request.query) > MAX_NESTING {
            return Err(ServerError::new(format!("The document nests brackets deeper than {MAX_NESTING}."), None));
        }
        // Parsed once: async-graphql uses this document rather than parsing again.
        let document = request.parsed_query()?;
        if !self.introspection && introspects(document) {
            return Err(ServerError::new("Introspection is disabled on this server.", None));
        }
        // Fragments spread twice per level double the work at each level: validation would walk 2^N fields.
        if expanded_fields(document) > self.max_fields {
            return Err(ServerError::new(
                format!("The document expands to more than {} fields once its fragments are spread.", self.max_fields),
                None,
            ));
        }
        let (aliases, directives) = count_aliases_and_directives(document);
        if aliases > self.max_aliases {
            return Err(ServerError::new(
                format!("The document has {aliases} aliases; the limit is {}.", self.max_aliases),
                None,
            ));
        }
        if directives > self.max_directives {
            return Err(ServerError::new(
                format!("The document has {directives} directives; the limit is {}.", self.max_directives),
                None,
            ));
        }
        next.run(ctx, request).await
    }
}

/// The deepest bracket nesting of a document's text, outside strings and comments.
pub fn nesting(query: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut in_comment, mut escaped) = (0usize, 0usize, false, false, false);
    for byte in query.bytes() {
        if in_comment {
            in_comment = byte != b'\n' && byte != b'\r';
        } else if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match byte {
                b'"' => in_string = true,
                b'#' => in_comment = true,
                b'{' | b'(' | b'[' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b'}' | b')' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    deepest
}

/// Whether a document asks for `__schema` or `__type` (at any level: fragments count too; `__typename` is fine).
fn introspects(document: &ExecutableDocument) -> bool {
    fn any(set: &SelectionSet) -> bool {
        set.items.iter().any(|selection| match &selection.node {
            Selection::Field(field) => {
                matches!(field.node.name.node.as_str(), "__schema" | "__type") || any(&field.node.selection_set.node)
            }
            Selection::FragmentSpread(_) => false,
            Selection::InlineFragment(inline) => any(&inline.node.selection_set.node),
        })
    }
    document.operations.iter().any(|(_, op)| any(&op.node.selection_set.node))
        || document.fragments.values().any(|f| any(&f.node.selection_set.node))
}

/// How many fields a document selects once every fragment spread is replaced by its fragment (saturating; a
/// fragment cycle counts as `usize::MAX`), computed once per fragment so that the count itself stays cheap.
pub fn expanded_fields(document: &ExecutableDocument) -> usize {
    use std::collections::HashMap;
    fn set_size<'a>(
        document: &'a ExecutableDocument,
        set: &'a SelectionSet,
        memo: &mut HashMap<&'a str, Option<usize>>,
    ) -> usize {
        let mut total = 0usize;
        for selection in &set.items {
            let size = match &selection.node {
                Selection::Field(field) => {
                    1usize.saturating_add(set_size(document, &field.node.selection_set.node, memo))
                }
                Selection::InlineFragment(inline) => set_size(document, &inline.node.selection_set.node, memo),
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    match memo.get(name) {
                        Some(Some(size)) => *size,
                        // Being computed: a cycle.
                        Some(None) => usize::MAX,
                        None => match document.fragments.get(&spread.node.fragment_name.node) {
                            None => 0,
                            Some(fragment) => {
                                memo.insert(name, None);
                                let size = set_size(document, &fragment.node.selection_set.node, memo);
                                memo.insert(name, Some(size));
                                size
                            }
                        },
                    }
                }
            };
            total = total.saturating_add(size);
        }
        total
    }
    let mut memo = HashMap::new();
    document
        .operations
        .iter()
        .map(|(_, op)| set_size(document, &op.node.selection_set.node, &mut memo))
        .fold(0usize, usize::saturating_add)
}

/// Aliases and directives in a parsed document (each fragment definition counted once).
pub fn count_aliases_and_directives(document: &ExecutableDocument) -> (usize, usize) {
    fn walk(set: &SelectionSet, counts: &mut (usize, usize)) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    counts.0 += usize::from(field.node.alias.is_some());
                    counts.1 += field.node.directives.len();
                    walk(&field.node.selection_set.node, counts);
                }
                Selection::FragmentSpread(spread) => counts.1 += spread.node.directives.len(),
                Selection::InlineFragment(inline) => {
                    counts.1 += inline.node.directives.len();
                    walk(&inline.node.selection_set.node, counts);
                }
            }
        }
    }
    let mut counts = (0, 0);
    for (_, operation) in document.operations.iter() {
        counts.1 += operation.node.directives.len();
        counts.1 += operation.node.variable_definitions.iter().map(|v| v.node.directives.len()).sum::<usize>();
        walk(&operation.node.selection_set.node, &mut counts);
    }
    for fragment in document.fragments.values() {
        counts.1 += fragment.node.directives.len();
        walk(&fragment.node.selection_set.node, &mut counts);
    }
    counts
}

pub(crate) fn state<'a>(ctx: &Context<'a>) -> &'a SchemaState {
    ctx.data_unchecked::<Arc<SchemaState>>()
}

pub(crate) fn coded(code: &str, message: impl Into<String>) -> Error {
    let code = code.to_owned();
    Error::new(message).extend_with(|_, e| e.set("code", code))
}

pub(crate) fn identity<'a>(ctx: &Context<'a>) -> Result<&'a Identity> {
    ctx.data_opt::<Identity>().ok_or_else(|| {
        coded(
            error_code::UNAUTHENTICATED,
            "Sign in first: send a JWT in the Authorization header (or connection_init payload), or an x-api-key.",
        )
    })
}

/// Logs an internal failure under a fresh reference and returns an error that names only the reference.
pub fn internal(err: impl std::fmt::Display) -> Error {
    let reference = uuid::Uuid::new_v4();
    tracing::error!(%reference, error = %err, "request failed");
    coded(error_code::INTERNAL, format!("Internal error; the server log has the details under reference {reference}."))
}

pub(crate) fn storage_error(err: StorageError) -> Error {
    match err {
        StorageError::Domain(DomainError::Validation(fields)) => {
            let first = fields.first().map(|f| f.field.clone()).unwrap_or_default();
            let list = Value::from_json(serde_json::to_value(&fields).unwrap_or_default()).unwrap_or_default();
            let message = fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join(" ");
            Error::new(format!("Invalid input. {message}")).extend_with(|_, e| {
                e.set("code", error_code::VALIDATION);
                e.set("field", first);
                e.set("fields", list);
            })
        }
        StorageError::Domain(DomainError::Conflict(current)) => {
            let current = Value::from_json(*current).unwrap_or_default();
            Error::new("The item changed since you read it; here is the current version.").extend_with(|_, e| {
                e.set("code", error_code::CONFLICT);
                e.set("current", current);
            })
        }
        StorageError::Domain(DomainError::NotFound) => coded(error_code::NOT_FOUND, "No such item."),
        StorageError::Domain(DomainError::Forbidden(why)) => coded(error_code::FORBIDDEN, why),
        other => internal(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_name_only_a_reference() {
        let error = internal("error returned from database: SELECT owner FROM orders: disk I/O error");
        assert!(error.message.contains("reference"), "{}", error.message);
        assert!(!error.message.contains("SELECT") && !error.message.contains("database"), "{}", error.message);
    }

    #[test]
    fn fragment_fan_out_is_counted_without_expanding_it() {
        let mut query = "query { ...F0 } ".to_owned();
        for i in 0..70 {
            query +=
                &format!("fragment F{i} on QueryRoot {{ a: __typename ...F{} b: __typename ...F{} }} ", i + 1, i + 1);
        }
        query += "fragment F70 on QueryRoot { __typename }";
        let document = async_graphql::parser::parse_query(&query).unwrap();
        assert_eq!(expanded_fields(&document), usize::MAX);
        let small = async_graphql::parser::parse_query("{ a { b c } ...F } fragment F on Q { d }").unwrap();
        assert_eq!(expanded_fields(&small), 4);
        let cycle = async_graphql::parser::parse_query("{ ...A } fragment A on Q { ...A }").unwrap();
        assert_eq!(expanded_fields(&cycle), usize::MAX);
    }

    #[test]
    fn nesting_skips_strings_and_comments() {
        assert_eq!(nesting("{ a { b(x: [1, [2]]) } }"), 5);
        assert_eq!(
            nesting(
                r#"{ a(s: "{{{{ \" {{") # {{{{
 }"#
            ),
            2
        );
    }
}

pub(crate) fn read_error(err: ReadError) -> Error {
    match err {
        ReadError::CursorExpired { .. } => coded(error_code::CURSOR_EXPIRED, err.to_string()),
        ReadError::Storage(e) => internal(e),
    }
}

/// A page of orders, with the change-log seq it is consistent with.
#[derive(SimpleObject, Debug)]
pub struct OrderConnection {
    /// The orders, by id.
    pub items: Vec<Order>,
    /// Pass back as `nextToken` for the next page; null on the last page.
    pub next_token: Option<String>,
    /// The change-log seq this page reflects: subscribe with `afterSeq` = this to follow it.
    pub seq: i64,
}

/// What a change did.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ChangeOp")]
pub enum ChangeOpGql {
    /// A new order.
    Insert,
    /// An order changed.
    Modify,
    /// An order was deleted (`expired` tells whether by TTL).
    Remove,
    /// Only the cursor moves: changes you cannot see passed.
    Watermark,
}

impl From<subsignal_protocol::ChangeOp> for ChangeOpGql {
    fn from(op: subsignal_protocol::ChangeOp) -> Self {
        use subsignal_protocol::ChangeOp::*;
        match op {
            Insert => ChangeOpGql::Insert,
            Modify => ChangeOpGql::Modify,
            Remove => ChangeOpGql::Remove,
            Watermark => ChangeOpGql::Watermark,
        }
    }
}

/// One change event.
#[derive(SimpleObject, Debug, Clone)]
pub struct OrderChange {
    /// Global, gap-free seq of the change (for a watermark, the cursor).
    pub seq: i64,
    /// The seq of the previous event on this subscription, or its starting cursor: a mismatch reveals a gap.
    pub prev_seq: i64,
    /// What happened.
    pub op: ChangeOpGql,
    /// The order's id (null for watermarks).
    pub key: Option<ID>,
    /// The order's version after the change (null for watermarks).
    pub version: Option<i64>,
    /// True when a REMOVE was a TTL expiry.
    pub expired: bool,
    /// The new image (the last one for REMOVE; null for watermarks).
    pub order: Option<Order>,
    /// The `clientMutationId` of the write behind this change, if it had one: a client that made the write can
    /// retire its optimistic placeholder as soon as the event arrives.
    pub client_mutation_id: Option<ID>,
}

fn change_from_record(record: &ChangeRecord, prev_seq: i64) -> Result<OrderChange> {
    Ok(OrderChange {
        seq: record.seq,
        prev_seq,
        op: record.op.into(),
        key: Some(ID(record.key.clone())),
        version: Some(record.version),
        expired: record.expired,
        order: Some(orders::from_image(&record.image).map_err(storage_error)?),
        client_mutation_id: record.client_mutation_id.clone().map(ID),
    })
}

impl OrderChange {
    fn from_delivery(d: Delivery) -> Result<Self> {
        match d {
            Delivery::Change { record, prev_seq } => change_from_record(&record, prev_seq),
            Delivery::Watermark { seq, prev_seq } => Ok(OrderChange {
                seq,
                prev_seq,
                op: ChangeOpGql::Watermark,
                key: None,
                version: None,
                expired: false,
                order: None,
                client_mutation_id: None,
            }),
        }
    }
}

/// Whether `record` is an order change `identity` may see.
fn visible_order(identity: &Identity, record: &ChangeRecord) -> bool {
    &*record.model == orders::MODEL && identity.can_see(&record.owner)
}

/// A page of the change log as one caller sees it.
#[derive(SimpleObject, Debug)]
pub struct ChangePage {
    /// Visible changes, chained by `prevSeq` from `afterSeq`.
    pub changes: Vec<OrderChange>,
    /// The cursor to pass as `afterSeq` next (it covers invisible changes too).
    pub last_seq: i64,
    /// Whether more changes follow.
    pub has_more: bool,
}

/// Queries.
#[derive(Debug, Default)]
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// One order, if it exists, has not expired, and is visible to the caller.
    async fn get_order(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Order>> {
        let identity = identity(ctx)?;
        let image = state(ctx).storage.get(orders::MODEL, &id).await.map_err(storage_error)?;
        let order = image.map(|image| orders::from_image(&image)).transpose().map_err(storage_error)?;
        Ok(order.filter(|o| identity.can_see(&o.owner)))
    }

    /// The caller's orders (an admin's: everyone's), by id, in pages of `limit` (default 100, at most 1000).
    async fn list_orders(
        &self,
        ctx: &Context<'_>,
        limit: Option<i32>,
        next_token: Option<String>,
    ) -> Result<OrderConnection> {
        let identity = identity(ctx)?;
        let (limit, after) = page_args(limit, next_token.as_deref())?;
        let owner = (!identity.sees_all()).then(|| identity.owner());
        let page = state(ctx)
            .storage
            .list(orders::MODEL, owner.as_deref(), after.as_deref(), limit)
            .await
            .map_err(storage_error)?;
        let items = page.items.iter().map(orders::from_image).collect::<Result<_, _>>().map_err(storage_error)?;
        Ok(OrderConnection { items, next_token: page.last_id_if_more.map(|id| next_token_for(&id)), seq: page.seq })
    }

    /// The caller's view of the change log after `afterSeq` (the delta-sync query), at most `limit` (default 100)
    /// records scanned.
    async fn changes_since(&self, ctx: &Context<'_>, after_seq: i64, limit: Option<i32>) -> Result<ChangePage> {
        let identity = identity(ctx)?;
        let page = changes_page(state(ctx), after_seq, limit, |r| visible_order(identity, r)).await?;
        let changes =
            page.changes.iter().map(|(record, prev)| change_from_record(record, *prev)).collect::<Result<_>>()?;
        Ok(ChangePage { changes, last_seq: page.last_seq, has_more: page.has_more })
    }
}

/// Mutations. Each takes an optional `clientMutationId`: a replay returns the original result and writes nothing.
#[derive(Debug, Default)]
pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Places an order owned by the caller.
    async fn create_order(
        &self,
        ctx: &Context<'_>,
        input: CreateOrderInput,
        client_mutation_id: Option<ID>,
    ) -> Result<Order> {
        let identity = identity(ctx)?;
        let outcome =
            orders::create(&state(ctx).storage, identity, input, client_mutation_id.as_ref().map(|id| id.as_str()))
                .await
                .map_err(storage_error)?;
        orders::from_image(outcome.image()).map_err(storage_error)
    }

    /// Edits an order; fails with CONFLICT (carrying the current order) if it is no longer at `expectedVersion`.
    async fn update_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: i64,
        input: UpdateOrderInput,
        client_mutation_id: Option<ID>,
    ) -> Result<Order> {
        let identity = identity(ctx)?;
        let outcome = orders::update(
            &state(ctx).storage,
            identity,
            &id,
            expected_version,
            input,
            client_mutation_id.as_ref().map(|id| id.as_str()),
        )
        .await
        .map_err(storage_error)?;
        orders::from_image(outcome.image()).map_err(storage_error)
    }

    /// Cancels an order that has not shipped.
    async fn cancel_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: i64,
        client_mutation_id: Option<ID>,
    ) -> Result<Order> {
        let identity = identity(ctx)?;
        let outcome = orders::cancel(
            &state(ctx).storage,
            identity,
            &id,
            expected_version,
            client_mutation_id.as_ref().map(|id| id.as_str()),
        )
        .await
        .map_err(storage_error)?;
        orders::from_image(outcome.image()).map_err(storage_error)
    }
}

/// Subscriptions.
#[derive(Debug, Default)]
pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Changes to the orders the caller may see. With `afterSeq`, retained changes after it are replayed first, then
    /// live ones follow, with no gap and no duplicate; without it, only changes from now on. A cursor older than
    /// retention (or unknown to this server) fails with CURSOR_EXPIRED: take a new snapshot with `listOrders`.
    async fn on_order_changed(
        &self,
        ctx: &Context<'_>,
        after_seq: Option<i64>,
    ) -> Result<impl Stream<Item = Result<OrderChange>> + use<>> {
        let identity = identity(ctx)?.clone();
        let state = state(ctx);
        let after = start_cursor(ctx, state, after_seq).await?;
        let stream = deliveries(
            state.storage.clone(),
            after,
            move |record: &ChangeRecord| visible_order(&identity, record),
            state.watermark_every,
        );
        Ok(stream.map(|item| item.map_err(read_error).and_then(OrderChange::from_delivery)))
    }
}

/// `limit` (default 100, 1 to 1000) and the id a `nextToken` stands for.
pub(crate) fn page_args(limit: Option<i32>, next_token: Option<&str>) -> Result<(u32, Option<String>)> {
    let limit = match limit {
        None => 100,
        Some(l @ 1..=1000) => l as u32,
        Some(_) => return Err(coded(error_code::VALIDATION, "limit must be between 1 and 1000.")),
    };
    let after = match next_token {
        None => None,
        Some(token) => Some(
            URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| coded(error_code::VALIDATION, "nextToken is not one this server issued."))?,
        ),
    };
    Ok((limit, after))
}

/// The `nextToken` that continues a list after the item `id`.
pub(crate) fn next_token_for(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

/// A page of the change log as one caller sees it: the visible records with their `prevSeq`, the cursor to go on
/// from (it covers invisible records too), and whether more records follow.
pub(crate) struct VisibleChanges {
    pub(crate) changes: Vec<(ChangeRecord, i64)>,
    pub(crate) last_seq: i64,
    pub(crate) has_more: bool,
}

/// Reads the change log after `after_seq` (at most `limit`, default 100, records scanned) and keeps what `visible`
/// lets through, chained by `prevSeq` from `after_seq`: the delta-sync query of every model.
pub(crate) async fn changes_page(
    state: &SchemaState,
    after_seq: i64,
    limit: Option<i32>,
    visible: impl Fn(&ChangeRecord) -> bool,
) -> Result<VisibleChanges> {
    let limit = limit.unwrap_or(100).clamp(1, 1000) as u32;
    // Include commits made through other instances that this one has not been told of yet.
    let head = state.storage.sync_head().await.map_err(storage_error)?;
    let records = read_after(&state.storage, after_seq, limit).await.map_err(read_error)?;
    let last_seq = records.last().map_or(after_seq, |r| r.seq);
    // Not `records.len() == limit`: a read the in-memory window serves may stop at the window's end while later
    // records (committed through another instance) exist.
    let has_more = last_seq < head;
    let mut prev = after_seq;
    let changes = records
        .into_iter()
        .filter(|r| visible(r))
        .map(|r| {
            let link = std::mem::replace(&mut prev, r.seq);
            (r, link)
        })
        .collect();
    Ok(VisibleChanges { changes, last_seq, has_more })
}

/// Where a subscription starts: `after_seq`, or without it the moment its subscribe message arrived (the transport
/// says when), not whenever its resolver happens to run, so a write acknowledged after `start_ack` is never missed.
/// Fails with CURSOR_EXPIRED for a cursor ahead of the log or older than retention, as an `error` message rather
/// than as the first event.
pub(crate) async fn start_cursor(ctx: &Context<'_>, state: &SchemaState, after_seq: Option<i64>) -> Result<i64> {
    // The database's head, not only what this instance has heard of: a cursor from a snapshot taken through another
    // instance is not "ahead".
    let head = state.storage.sync_head().await.map_err(storage_error)?;
    let after = after_seq.or_else(|| ctx.data_opt::<SubscribedAt>().map(|s| s.0.min(head))).unwrap_or(head);
    if after > head {
        return Err(coded(
            error_code::CURSOR_EXPIRED,
            format!("cursor {after} is ahead of this server's change log (at {head}); take a new snapshot"),
        ));
    }
    read_after(&state.storage, after, 1).await.map_err(read_error)?;
    Ok(after)
}
