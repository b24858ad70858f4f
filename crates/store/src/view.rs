//! Live views: a filtered, sorted window (`where`, `orderBy`, `limit`, `offset`) over one collection's visible rows
//! (optimistic rows included), kept up to date row change by row change.
//!
//! A view keeps the rows that match its filter in an order-statistic B-tree ([`indexset::BTreeSet`]) sorted by its
//! `orderBy` fields, then by key. A row change costs a removal and an insertion in that tree and two rank lookups:
//! O(log n) in the collection's size, never a re-filter or a re-sort of the whole list. The change is published as
//! [`ViewOp`]s on the window's positions — removals, insertions and in-place updates, applied in order to the
//! previous window — so a list on screen touches only the positions that moved.
//!
//! A view can be *held*: changes keep applying to its index, but what it shows (keys and rows) stays as it was until
//! it is released, which publishes the net change at once.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a view shows: the rows matching `where`, sorted by `orderBy` (then by key), from `offset`, at most `limit`.
///
/// In JSON: `{"where": {"status": "OPEN", "total": {"gte": 10}}, "orderBy": [{"field": "createdAt", "direction":
/// "desc"}], "limit": 20}` (see [`Filter`] and [`OrderBy`] for their forms).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ViewSpec {
    /// Which rows take part; all when `None`.
    #[serde(rename = "where", default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// The sort, most significant field first; ties (and an empty sort) go by key, ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_by: Vec<OrderBy>,
    /// At most this many rows; all when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Skip this many matching rows first.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ViewSpec {
    /// Every row, by key.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only rows matching `filter` (replaces an earlier filter; combine with [`Filter::and`]).
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Then sorted by `field` in this direction.
    pub fn order_by(mut self, field: impl Into<String>, direction: Direction) -> Self {
        self.order_by.push(OrderBy { field: field.into(), direction });
        self
    }

    /// At most `limit` rows.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Skipping the first `offset` matching rows.
    pub fn offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }
}

/// A sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// Smallest first (nulls first).
    #[default]
    Asc,
    /// Largest first (nulls last).
    Desc,
}

/// One sort field. In JSON `{"field": "createdAt", "direction": "desc"}` (direction optional, `"asc"` by default), or
/// the string `"createdAt"` / `"createdAt desc"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct OrderBy {
    /// The field, a dotted path for nested fields (`customer.name`).
    pub field: String,
    /// The direction.
    pub direction: Direction,
}

impl TryFrom<Value> for OrderBy {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, String> {
        match value {
            Value::String(s) => {
                let mut words = s.split_whitespace();
                let field = words.next().ok_or("an orderBy entry is an empty string")?.to_owned();
                let direction = match words.next() {
                    None | Some("asc") => Direction::Asc,
                    Some("desc") => Direction::Desc,
                    Some(other) => return Err(format!("orderBy {s:?}: the direction is asc or desc, not {other:?}")),
                };
                if words.next().is_some() {
                    return Err(format!("orderBy {s:?}: write \"field\" or \"field desc\""));
                }
                Ok(Self { field, direction })
            }
            Value::Object(mut map) => {
                let field = match map.remove("field") {
                    Some(Value::String(field)) if !field.is_empty() => field,
                    _ => return Err("an orderBy entry needs a non-empty string \"field\"".into()),
                };
                let direction = match map.remove("direction") {
                    None => Direction::Asc,
                    Some(d) => serde_json::from_value(d)
                        .map_err(|_| format!("orderBy {field:?}: \"direction\" is \"asc\" or \"desc\""))?,
                };
                if let Some(extra) = map.keys().next() {
                    return Err(format!("orderBy {field:?}: unknown key {extra:?} (field, direction)"));
                }
                Ok(Self { field, direction })
            }
            other => Err(format!("an orderBy entry is a string or {{field, direction}}, not {other}")),
        }
    }
}

/// A comparison of a field with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// Equal (numbers by value: `1` equals `1.0`).
    Eq,
    /// Not equal.
    Ne,
    /// Less than (numbers with numbers, strings with strings; anything else is false).
    Lt,
    /// Less than or equal.
    Lte,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
}

const OPS: [(&str, CompareOp); 6] = [
    ("eq", CompareOp::Eq),
    ("ne", CompareOp::Ne),
    ("lt", CompareOp::Lt),
    ("lte", CompareOp::Lte),
    ("gt", CompareOp::Gt),
    ("gte", CompareOp::Gte),
];

/// Which rows a view shows. A missing field reads as `null`; fields are dotted paths for nested objects.
///
/// In JSON, an object whose entries must all hold: `{"status": "OPEN"}` (equality), `{"total": {"gte": 10, "lt":
/// 100}}` (`eq ne lt lte gt gte`), `{"status": {"in": ["OPEN", "PAID"]}}`, and the combinators `{"and": [...]}`,
/// `{"or": [...]}`, `{"not": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub enum Filter {
    /// `field op value`.
    Compare {
        /// The field.
        field: String,
        /// The comparison.
        op: CompareOp,
        /// The value compared with.
        value: Value,
    },
    /// The field equals one of the values.
    In {
        /// The field.
        field: String,
        /// The values.
        values: Vec<Value>,
    },
    /// All hold (true when empty).
    And(Vec<Filter>),
    /// One holds (false when empty).
    Or(Vec<Filter>),
    /// Does not hold.
    Not(Box<Filter>),
}

impl Filter {
    /// `field == value`.
    pub fn eq(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::compare(field, CompareOp::Eq, value)
    }

    /// `field op value`.
    pub fn compare(field: impl Into<String>, op: CompareOp, value: impl Into<Value>) -> Self {
        Self::Compare { field: field.into(), op, value: value.into() }
    }

    /// `field` equals one of `values`.
    pub fn one_of(field: impl Into<String>, values: impl IntoIterator<Item = impl Into<Value>>) -> Self {
        Self::In { field: field.into(), values: values.into_iter().map(Into::into).collect() }
    }

    /// This and `other`.
    pub fn and(self, other: Filter) -> Self {
        match self {
            Self::And(mut all) => {
                all.push(other);
                Self::And(all)
            }
            first => Self::And(vec![first, other]),
        }
    }

    /// This or `other`.
    pub fn or(self, other: Filter) -> Self {
        match self {
            Self::Or(mut any) => {
                any.push(other);
                Self::Or(any)
            }
            first => Self::Or(vec![first, other]),
        }
    }

    /// Whether `row` matches.
    pub fn matches(&self, row: &Value) -> bool {
        match self {
            Self::Compare { field, op, value } => {
                let got = field_of(row, field);
                match op {
                    CompareOp::Eq => json_eq(got, value),
                    CompareOp::Ne => !json_eq(got, value),
                    CompareOp::Lt => comparable(got, value) == Some(Ordering::Less),
                    CompareOp::Lte => matches!(comparable(got, value), Some(Ordering::Less | Ordering::Equal)),
                    CompareOp::Gt => comparable(got, value) == Some(Ordering::Greater),
                    CompareOp::Gte => matches!(comparable(got, value), Some(Ordering::Greater | Ordering::Equal)),
                }
            }
            Self::In { field, values } => {
                let got = field_of(row, field);
                values.iter().any(|v| json_eq(got, v))
            }
            Self::And(all) => all.iter().all(|f| f.matches(row)),
            Self::Or(any) => any.iter().any(|f| f.matches(row)),
            Self::Not(inner) => !inner.matches(row),
        }
    }

    fn parse(value: Value, at: &str) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err(format!("{at}: a filter is an object, not {value}"));
        };
        let mut all = Vec::with_capacity(map.len());
        for (name, value) in map {
            let here = format!("{at}.{name}");
            match name.as_str() {
                "and" | "or" => {
                    let Value::Array(items) = value else { return Err(format!("{here}: a list of filters")) };
                    let parts = items
                        .into_iter()
                        .enumerate()
                        .map(|(i, item)| Self::parse(item, &format!("{here}[{i}]")))
                        .collect::<Result<Vec<_>, _>>()?;
                    all.push(if name == "and" { Self::And(parts) } else { Self::Or(parts) });
                }
                "not" => all.push(Self::Not(Box::new(Self::parse(value, &here)?))),
                _ => match value {
                    Value::Object(ops) => {
                        if ops.is_empty() {
                            return Err(format!("{here}: an empty comparison (eq ne lt lte gt gte in)"));
                        }
                        for (op, operand) in ops {
                            if op == "in" {
                                let Value::Array(values) = operand else {
                                    return Err(format!("{here}.in: a list of values"));
                                };
                                all.push(Self::In { field: name.clone(), values });
                            } else if let Some((_, op)) = OPS.iter().find(|(n, _)| *n == op) {
                                all.push(Self::Compare { field: name.clone(), op: *op, value: operand });
                            } else {
                                return Err(format!("{here}: unknown comparison {op:?} (eq ne lt lte gt gte in)"));
                            }
                        }
                    }
                    Value::Array(_) => {
                        return Err(format!("{here}: for one of several values write {{\"in\": [...]}}"))
                    }
                    value => all.push(Self::Compare { field: name, op: CompareOp::Eq, value }),
                },
            }
        }
        Ok(if all.len() == 1 { all.remove(0) } else { Self::And(all) })
    }
}

impl TryFrom<Value> for Filter {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, String> {
        Self::parse(value, "where")
    }
}

impl From<Filter> for Value {
    fn from(filter: Filter) -> Value {
        let mut map = Map::new();
        match filter {
            Filter::Compare { field, op, value } => {
                let name = OPS.iter().find(|(_, o)| *o == op).map_or("eq", |(n, _)| n);
                map.insert(field, Value::Object(Map::from_iter([(name.to_owned(), value)])));
            }
            Filter::In { field, values } => {
                map.insert(field, Value::Object(Map::from_iter([("in".to_owned(), Value::Array(values))])));
            }
            Filter::And(all) => {
                map.insert("and".into(), Value::Array(all.into_iter().map(Value::from).collect()));
            }
            Filter::Or(any) => {
                map.insert("or".into(), Value::Array(any.into_iter().map(Value::from).collect()));
            }
            Filter::Not(inner) => {
                map.insert("not".into(), Value::from(*inner));
            }
        }
        Value::Object(map)
    }
}

/// The field at a dotted path; `Null` when missing.
fn field_of<'a>(row: &'a Value, path: &str) -> &'a Value {
    path.split('.').try_fold(row, |v, name| v.get(name)).unwrap_or(&Value::Null)
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The order of two values of the same kind (numbers, strings, booleans); `None` across kinds or for others.
fn comparable(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// A field's value as a sort key: null < false < true < numbers < strings < anything else (by its JSON text).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    Null,
    Bool(bool),
    Number(Number),
    Text(String),
    Other(String),
}

/// An `f64` ordered by `total_cmp`.
#[derive(Debug, Clone, Copy)]
struct Number(f64);

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0) == Ordering::Equal
    }
}
impl Eq for Number {}
impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl SortValue {
    fn of(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => Self::Number(Number(n.as_f64().unwrap_or(0.0))),
            Value::String(s) => Self::Text(s.clone()),
            other => Self::Other(other.to_string()),
        }
    }
}

/// One row's place in a view: its sort values (each with its direction), then its key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    sort: Box<[(SortValue, Direction)]>,
    key: String,
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        for ((a, direction), (b, _)) in self.sort.iter().zip(other.sort.iter()) {
            let order = a.cmp(b);
            let order = if *direction == Direction::Desc { order.reverse() } else { order };
            if order != Ordering::Equal {
                return order;
            }
        }
        self.key.cmp(&other.key)
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One step of a view's change, applied in order to the keys it showed before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum ViewOp {
    /// The row at `index` left the window; later rows move up one.
    Remove {
        /// Its position.
        index: usize,
    },
    /// Row `key` entered the window at `index`; rows from there move down one.
    Insert {
        /// Its position.
        index: usize,
        /// Its key.
        key: String,
    },
    /// The row at `index` changed but kept its place.
    Update {
        /// Its position.
        index: usize,
        /// Its key.
        key: String,
    },
}

/// Why a view could not be opened or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// No watched collection has this name.
    #[error("no collection named {0:?} is watched")]
    UnknownCollection(String),
    /// No open view has this id.
    #[error("no view {0} is open")]
    UnknownView(u64),
    /// `limit: 0` would show nothing, ever.
    #[error("a view's limit is at least 1")]
    ZeroLimit,
}

/// What a view's readers need besides its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewState {
    /// The collection's first snapshot, list or result has been applied.
    pub loaded: bool,
    /// The collection is not in step with the server right now (disconnected, or fetching again).
    pub stale: bool,
    /// The seq the collection's rows are consistent with (subsignal source).
    pub last_seq: Option<i64>,
    /// How old the collection's newest event was when it arrived (see [`crate::CollectionState::lag_ms`]).
    pub lag_ms: Option<i64>,
    /// Rows shown.
    pub len: usize,
    /// Rows matching the filter in the whole collection (what `limit` and `offset` cut from).
    pub total: usize,
    /// The view is held ([`crate::Store::hold_view`]).
    pub held: bool,
    /// Held, and something changed underneath that releasing it would show.
    pub has_pending_updates: bool,
}

/// A held view's frozen window: its keys and their rows as they were.
#[derive(Debug, Clone)]
struct Frozen {
    keys: Vec<String>,
    rows: HashMap<String, Value>,
    /// Keys of frozen rows that changed since.
    touched: HashSet<String>,
    /// The window moved underneath since (its ops are not kept: the release computes the net change).
    moved: bool,
}

/// One live view over one collection.
#[derive(Debug)]
pub(crate) struct LiveView {
    pub(crate) collection: String,
    spec: ViewSpec,
    index: indexset::BTreeSet<Entry>,
    /// Each matching row's place, to find it again when the row changes.
    places: HashMap<String, Entry>,
    frozen: Option<Frozen>,
    /// Changes not yet published.
    ops: Vec<ViewOp>,
}

impl LiveView {
    /// An empty view; [`LiveView::add`] the collection's rows.
    pub(crate) fn new(collection: String, spec: ViewSpec) -> Self {
        Self {
            collection,
            spec,
            index: indexset::BTreeSet::new(),
            places: HashMap::new(),
            frozen: None,
            ops: Vec::new(),
        }
    }

    /// Takes in a row while the view is being opened (nothing is published).
    pub(crate) fn add(&mut self, key: &str, row: &Value) {
        if let Some(entry) = self.entry(key, row) {
            self.index.insert(entry.clone());
            self.places.insert(key.to_owned(), entry);
        }
    }

    /// The collection went away: every row leaves.
    pub(crate) fn clear(&mut self) {
        let keys: Vec<String> = self.places.keys().cloned().collect();
        for key in keys {
            self.apply(&key, None);
        }
    }

    fn entry(&self, key: &str, row: &Value) -> Option<Entry> {
        if !self.spec.filter.as_ref().is_none_or(|f| f.matches(row)) {
            return None;
        }
        let sort = self.spec.order_by.iter().map(|o| (SortValue::of(field_of(row, &o.field)), o.direction));
        Some(Entry { sort: sort.collect(), key: key.to_owned() })
    }

    /// The window's bounds in the index: `[start, end)`.
    fn bounds(&self) -> (usize, usize) {
        let len = self.index.len();
        let start = self.spec.offset.min(len);
        let end = self.spec.limit.map_or(len, |limit| start.saturating_add(limit).min(len));
        (start, end)
    }

    fn key_at(&self, rank: usize) -> Option<String> {
        self.index.get_index(rank).map(|e| e.key.clone())
    }

    /// Row `key` now shows as `row` (`None`: gone) in the collection; records the window's change.
    pub(crate) fn apply(&mut self, key: &str, row: Option<&Value>) {
        self.place(key, row);
        if let Some(frozen) = &mut self.frozen {
            // Held: what would have been published only says that something waits.
            frozen.moved |= !self.ops.is_empty();
            self.ops.clear();
            if frozen.rows.contains_key(key) {
                frozen.touched.insert(key.to_owned());
            }
        }
    }

    /// Moves row `key` to its place for `row` in the index and records the window's change in `ops`.
    fn place(&mut self, key: &str, row: Option<&Value>) {
        let new = row.and_then(|row| self.entry(key, row));
        let old = self.places.remove(key);
        let start = self.spec.offset;
        let end = self.spec.limit.map(|limit| start.saturating_add(limit));
        let in_window = |rank: usize| rank >= start && end.is_none_or(|end| rank < end);
        let old_rank = old.map(|old| {
            let rank = self.index.rank(&old);
            self.index.remove(&old);
            rank
        });
        // Where the new entry goes: the rank it takes once inserted (the count of entries before it).
        let new_rank = new.as_ref().map(|new| self.index.rank(new));
        if old_rank.is_some() && old_rank == new_rank {
            // Same place (same neighbours): an update in place, if it shows.
            let rank = new_rank.expect("checked");
            let new = new.expect("checked");
            self.index.insert(new.clone());
            self.places.insert(key.to_owned(), new);
            if in_window(rank) {
                self.ops.push(ViewOp::Update { index: rank - start, key: key.to_owned() });
            }
            return;
        }
        if let Some(rank) = old_rank {
            // The window loses a row: this one, or its first when this one sat before it (the rest move up)...
            let shown_before = self.index.len() + 1 > start;
            if shown_before && end.is_none_or(|end| rank < end) {
                self.ops.push(ViewOp::Remove { index: rank.saturating_sub(start) });
                // ...and the row just past its end, if any, moves in at the end.
                if let Some(end) = end {
                    if let Some(key) = self.key_at(end - 1) {
                        self.ops.push(ViewOp::Insert { index: end - 1 - start, key });
                    }
                }
            }
        }
        if let (Some(new), Some(rank)) = (new, new_rank) {
            self.index.insert(new.clone());
            self.places.insert(key.to_owned(), new);
            if end.is_none_or(|end| rank < end) && self.index.len() > start {
                // The window gains a row: this one, or, when this one went before it, the row just before it...
                let entering =
                    if rank < start { self.key_at(start).expect("the window's first row") } else { key.to_owned() };
                self.ops.push(ViewOp::Insert { index: rank.saturating_sub(start), key: entering });
                // ...and, when it was full, its last row drops out.
                if let Some(end) = end {
                    if self.index.len() > end {
                        self.ops.push(ViewOp::Remove { index: end - start });
                    }
                }
            }
        }
    }

    /// Takes the changes to publish: `None` while held or when nothing changed.
    pub(crate) fn take_ops(&mut self) -> Option<Vec<ViewOp>> {
        if self.frozen.is_some() || self.ops.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut self.ops))
    }

    /// The keys shown, in order.
    pub(crate) fn keys(&self) -> Vec<String> {
        if let Some(frozen) = &self.frozen {
            return frozen.keys.clone();
        }
        let (start, end) = self.bounds();
        self.index.range_idx(start..end).map(|e| e.key.clone()).collect()
    }

    /// A held view's row `key` as it was when held; `None` when not held or not shown.
    pub(crate) fn frozen_row(&self, key: &str) -> Option<&Value> {
        self.frozen.as_ref()?.rows.get(key)
    }

    pub(crate) fn is_held(&self) -> bool {
        self.frozen.is_some()
    }

    /// The view's state; `collection` is its collection's (none when it is not watched).
    pub(crate) fn state(&self, collection: Option<crate::CollectionState>) -> ViewState {
        let len = match &self.frozen {
            Some(frozen) => frozen.keys.len(),
            None => {
                let (start, end) = self.bounds();
                end - start
            }
        };
        ViewState {
            loaded: collection.is_some_and(|c| c.loaded),
            stale: collection.is_none_or(|c| c.stale),
            last_seq: collection.and_then(|c| c.last_seq),
            lag_ms: collection.and_then(|c| c.lag_ms),
            len,
            total: self.index.len(),
            held: self.frozen.is_some(),
            has_pending_updates: self.frozen.as_ref().is_some_and(|f| f.moved || !f.touched.is_empty()),
        }
    }

    /// Holds what the view shows; `row` reads the collection's visible rows.
    pub(crate) fn hold(&mut self, row: impl Fn(&str) -> Option<Value>) {
        if self.frozen.is_some() {
            return;
        }
        let keys = self.keys();
        let rows = keys.iter().filter_map(|k| Some((k.clone(), row(k)?))).collect();
        // Pending changes are published before holding, by the store; anything recorded from now on waits.
        self.ops.clear();
        self.frozen = Some(Frozen { keys, rows, touched: HashSet::new(), moved: false });
    }

    /// Releases a held view: the net change from what it showed to what it shows now.
    pub(crate) fn release(&mut self) -> Vec<ViewOp> {
        let Some(frozen) = self.frozen.take() else { return Vec::new() };
        self.ops.clear();
        let target = self.keys();
        let mut ops = net_change(&frozen.keys, &target);
        // Rows that kept their place but changed underneath.
        let moved: HashSet<String> = ops
            .iter()
            .filter_map(|op| if let ViewOp::Insert { key, .. } = op { Some(key.clone()) } else { None })
            .collect();
        for (index, key) in target.iter().enumerate() {
            if frozen.touched.contains(key) && !moved.contains(key) {
                ops.push(ViewOp::Update { index, key: key.clone() });
            }
        }
        ops
    }
}

/// Ops turning `from` into `to`: removals of rows that left or moved, then insertions where `to` differs.
fn net_change(from: &[String], to: &[String]) -> Vec<ViewOp> {
    let wanted: HashSet<&str> = to.iter().map(String::as_str).collect();
    let mut ops = Vec::new();
    let mut now: Vec<&str> = Vec::with_capacity(from.len());
    // Rows that left, last first so that indexes stay valid.
    for (index, key) in from.iter().enumerate().rev() {
        if wanted.contains(key.as_str()) {
            now.push(key);
        } else {
            ops.push(ViewOp::Remove { index });
        }
    }
    now.reverse();
    // Walk the target: a row out of place is taken out where it is and put where it belongs.
    for (index, key) in to.iter().enumerate() {
        if now.get(index) == Some(&key.as_str()) {
            continue;
        }
        if let Some(at) = now.iter().position(|k| *k == key) {
            ops.push(ViewOp::Remove { index: at });
            now.remove(at);
        }
        ops.push(ViewOp::Insert { index, key: key.clone() });
        now.insert(index, key);
    }
    ops
}

/// Applies `ops` to `keys` (what a shell does with a published change); for tests and for shells in Rust.
pub fn apply_ops(keys: &mut Vec<String>, ops: &[ViewOp]) {
    for op in ops {
        match op {
            ViewOp::Remove { index } => {
                keys.remove(*index);
            }
            ViewOp::Insert { index, key } => keys.insert(*index, key.clone()),
            ViewOp::Update { .. } => {}
        }
    }
}
