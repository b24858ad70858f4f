//! Conflicts a person can resolve: when a mutation's `expectedVersion` is stale, the server answers `CONFLICT` with
//! its current row (`theirs`); the store adds the row the user edited (`base`) and the fields the mutation changed
//! (`mine`), compares the three field by field, and builds the resend a resolution calls for.
//!
//! Which fields a mutation changes is read from what it already tells the store, in this order: its optimistic
//! patch's `fields`; for an optimistic upsert, the row's fields that differ from `base` (key and version fields
//! left out); for a removal, none (`mine` is `null`); without an optimistic effect, the object in its input
//! variable (`input` unless [`Mutation::input_variable`] names another), key field left out.
//!
//! Nothing here is specific to an entity: fields are the top-level fields of JSON objects, compared as values
//! (nested objects and arrays are equal when they are equal as a whole).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::mutation::{Mutation, Optimistic};

/// How one field stands between `base`, `mine` and `theirs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FieldChange {
    /// Neither side changed it.
    Unchanged,
    /// Only this mutation changed it.
    Mine,
    /// Only the server's row changed it (or, with `base` unknown, the mutation did not touch it).
    Theirs,
    /// Both changed it to the same value.
    BothSame,
    /// Both changed it, to different values: a person has to choose.
    Conflict,
}

/// One field of a three-way comparison; a value is absent when the row lacks the field (or lacks the row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldDiff {
    /// The field's name.
    pub field: String,
    /// Who changed it.
    pub change: FieldChange,
    /// Its value in the row the user edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Value>,
    /// Its value as the mutation would leave it (`base`'s when the mutation did not touch it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mine: Option<Value>,
    /// Its value in the server's current row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theirs: Option<Value>,
}

/// The per-field three-way diff of `mine` (the changed fields) against `base` and `theirs`, one entry per field of
/// any of the three, in name order. With `base` unknown (`None`), a field `mine` changed is a conflict unless
/// `theirs` holds the same value, and every other field counts as `theirs`. With `theirs` absent (the row was
/// deleted), every field `mine` changed is a conflict.
pub fn three_way(base: Option<&Value>, mine: &Map<String, Value>, theirs: Option<&Value>) -> Vec<FieldDiff> {
    let base_fields = base.and_then(Value::as_object);
    let theirs_fields = theirs.and_then(Value::as_object);
    // The field names, in order, without repeats: a JSON map is the ordered set the store already has (no sort and
    // no new collection in the npm package's wasm).
    let mut fields = Map::new();
    for field in [Some(mine), base_fields, theirs_fields].into_iter().flatten().flat_map(|m| m.keys()) {
        fields.insert(field.clone(), Value::Null);
    }
    fields
        .keys()
        .map(|field| {
            let b = base_fields.and_then(|m| m.get(field));
            let t = theirs_fields.and_then(|m| m.get(field));
            let touched = mine.get(field);
            let m = touched.or(b);
            let change = match (base.is_some(), touched) {
                (true, _) => match (m != b, t != b) {
                    (false, false) => FieldChange::Unchanged,
                    (true, false) => FieldChange::Mine,
                    (false, true) => FieldChange::Theirs,
                    (true, true) if m == t => FieldChange::BothSame,
                    (true, true) => FieldChange::Conflict,
                },
                (false, Some(_)) if m == t => FieldChange::BothSame,
                (false, Some(_)) => FieldChange::Conflict,
                (false, None) => FieldChange::Theirs,
            };
            FieldDiff { field: field.clone(), change, base: b.cloned(), mine: m.cloned(), theirs: t.cloned() }
        })
        .collect()
}

/// A person's choice for one field in [`Conflict::merge`]: in JSON `"mine"`, `"theirs"` or `{"value": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Choice {
    /// Keep the value this mutation sent.
    Mine,
    /// Keep the server's value: the field is not sent.
    Theirs,
    /// Send this value instead.
    Value(Value),
}

/// The last choice named for `field`.
fn choice_for<'a>(choices: &'a [(String, Choice)], field: &str) -> Option<&'a Choice> {
    choices.iter().rev().find(|(f, _)| f == field).map(|(_, c)| c)
}

/// Why a conflict's resolution cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The row was deleted on the server: there is no row to change (create it again if it should exist).
    #[error("the row was deleted on the server; there is nothing to resend on")]
    Deleted,
    /// The server's row carries none of the collection's version fields.
    #[error("the server's row has no version field")]
    NoVersion,
    /// The mutation's variables have no variable carrying `expectedVersion` under this name (see
    /// [`Mutation::version_variable`]).
    #[error("the mutation has no `{0}` variable to carry expectedVersion; name it with versionVariable")]
    NoVersionVariable(String),
    /// A merge changes fields, but the mutation's variables have no object under this name to carry them (see
    /// [`Mutation::input_variable`]).
    #[error("the mutation has no `{0}` object variable to carry the merged fields; name it with inputVariable")]
    FieldsNotInVariables(String),
}

/// A mutation refused because its `expectedVersion` was stale, with what a person needs to resolve it: the row they
/// edited, what they changed, the server's row and the per-field diff. Resolve with [`Conflict::keep_mine`],
/// [`Conflict::take_theirs`] or [`Conflict::merge`]; a resend is an ordinary new mutation (give it to `mutate`):
/// optimistic, queued, persisted and idempotent by its own `clientMutationId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    /// The row's key, when the store could tell it.
    pub key: Option<String>,
    /// The confirmed row the user edited (at the version sent as `expectedVersion`); `None` when unknown.
    pub base: Option<Value>,
    /// The fields the mutation changed (an object), or `null` for a removal.
    pub mine: Value,
    /// The server's current row; `None` when it was deleted.
    pub theirs: Option<Value>,
    /// `theirs`' version: the `expectedVersion` a resend carries.
    pub theirs_version: Option<Value>,
    /// The per-field three-way diff.
    pub diff: Vec<FieldDiff>,
    /// The mutation that was refused.
    pub mutation: Mutation,
}

impl Conflict {
    /// A conflict as the server reported it (`extensions.current`), before the store adds what it knows.
    pub(crate) fn from_server(current: Value) -> Self {
        Self {
            key: None,
            base: None,
            mine: Value::Object(Map::new()),
            theirs: (!current.is_null()).then_some(current),
            theirs_version: None,
            diff: Vec::new(),
            mutation: Mutation::new(String::new(), Value::Null, String::new()),
        }
    }

    /// Completes a server's conflict for `mutation`, given the collection's key and version fields.
    pub(crate) fn complete(self, mutation: &Mutation, key_field: &str, version_fields: &[String]) -> Self {
        let (key, mine) = changed_fields(mutation, key_field, version_fields);
        let base = mutation.base.clone();
        let theirs = self.theirs;
        let theirs_version = theirs.as_ref().and_then(|t| version_value(version_fields, t));
        let diff = three_way(base.as_ref(), mine.as_object().unwrap_or(&Map::new()), theirs.as_ref());
        Self { key, base, mine, theirs, theirs_version, diff, mutation: mutation.clone() }
    }

    /// Whether a person has to choose: a field both sides changed differently, the row deleted under a change, or
    /// a removal of a row someone else changed. Without one, [`Conflict::keep_mine`] loses nothing of theirs (an
    /// automatic three-way merge).
    pub fn has_conflicts(&self) -> bool {
        let removal = self.mine.is_null();
        let theirs_changed = self.diff.iter().any(|d| d.change == FieldChange::Theirs);
        self.theirs.is_none()
            || self.diff.iter().any(|d| d.change == FieldChange::Conflict)
            || (removal && theirs_changed)
    }

    /// The fields both sides changed differently.
    pub fn conflicting_fields(&self) -> Vec<&str> {
        self.diff.iter().filter(|d| d.change == FieldChange::Conflict).map(|d| d.field.as_str()).collect()
    }

    /// The fields a resend with these choices sends: each field `mine` changed unless chosen `theirs` (a field not
    /// named keeps mine), replaced by a chosen value, plus chosen values for other fields. A field `mine` carries
    /// at its `base` value (a form sending every field) is not a change and is not sent, so it never undoes theirs.
    pub fn resolved(&self, choices: &[(String, Choice)]) -> Map<String, Value> {
        let untouched = |field: &str| {
            self.diff
                .iter()
                .any(|d| d.field == field && matches!(d.change, FieldChange::Unchanged | FieldChange::Theirs))
        };
        let mut fields = Map::new();
        for (field, value) in self.mine.as_object().into_iter().flatten().filter(|(f, _)| !untouched(f)) {
            match choice_for(choices, field) {
                None | Some(Choice::Mine) => {
                    fields.insert(field.clone(), value.clone());
                }
                Some(Choice::Theirs) => {}
                Some(Choice::Value(v)) => {
                    fields.insert(field.clone(), v.clone());
                }
            }
        }
        for (field, _) in choices {
            if let Some(Choice::Value(v)) = choice_for(choices, field) {
                fields.insert(field.clone(), v.clone());
            }
        }
        fields
    }

    /// The row as it would be after a resend with these choices: `theirs` with the resolved fields on top (`None`
    /// when the row was deleted).
    pub fn merged(&self, choices: &[(String, Choice)]) -> Option<Value> {
        let mut row = self.theirs.clone()?;
        if let Value::Object(map) = &mut row {
            map.extend(self.resolved(choices));
        }
        Some(row)
    }

    /// The row as the user meant it: `base` (or, unknown, `theirs`) with `mine` on top.
    pub fn mine_row(&self) -> Option<Value> {
        let mut row = self.base.clone().or_else(|| self.theirs.clone())?;
        if let (Value::Object(map), Value::Object(mine)) = (&mut row, &self.mine) {
            map.extend(mine.clone());
        }
        Some(row)
    }

    /// Keep mine: the same change again on top of `theirs` (its fields over theirs, `expectedVersion` = theirs'
    /// version, `base` = theirs); `None` when mine changed nothing. Equal to `merge` with no choices.
    pub fn keep_mine(&self) -> Result<Option<Mutation>, ResolveError> {
        if self.mine.is_null() {
            return self.resend(Map::new());
        }
        self.resend(self.resolved(&[]))
    }

    /// Take theirs: nothing is sent. The store already shows `theirs` (the refused mutation's optimistic effect was
    /// replaced by it when the conflict arrived); this is that row, `None` when it was deleted.
    pub fn take_theirs(&self) -> Option<&Value> {
        self.theirs.as_ref()
    }

    /// Merge: per field, `mine`, `theirs` or a value (see [`Conflict::resolved`]; a field named twice takes its last
    /// choice); the resend on top of `theirs`, or `None` when nothing is left to send (everything chosen `theirs`:
    /// the same as [`Conflict::take_theirs`]).
    /// For a removal there are no fields: it is [`Conflict::keep_mine`].
    pub fn merge(&self, choices: &[(String, Choice)]) -> Result<Option<Mutation>, ResolveError> {
        if self.mine.is_null() {
            return self.keep_mine();
        }
        self.resend(self.resolved(choices))
    }

    fn resend(&self, fields: Map<String, Value>) -> Result<Option<Mutation>, ResolveError> {
        let removal = self.mine.is_null();
        let theirs = self.theirs.as_ref().ok_or(ResolveError::Deleted)?;
        if fields.is_empty() && !removal {
            return Ok(None);
        }
        let version = self.theirs_version.clone().ok_or(ResolveError::NoVersion)?;
        let mut mutation = self.mutation.clone();
        mutation.client_mutation_id = None;
        mutation.base = Some(theirs.clone());
        let version_variable = mutation.version_variable_name().to_owned();
        let input_variable = mutation.input_variable_name().to_owned();
        let Some(variables) = mutation.variables.as_object_mut().filter(|v| v.contains_key(&version_variable)) else {
            return Err(ResolveError::NoVersionVariable(version_variable));
        };
        variables.insert(version_variable, version);
        if Some(&fields) != self.mine.as_object() {
            let input = variables
                .get_mut(&input_variable)
                .and_then(Value::as_object_mut)
                .ok_or(ResolveError::FieldsNotInVariables(input_variable))?;
            for field in self.mine.as_object().into_iter().flat_map(|m| m.keys()) {
                if !fields.contains_key(field) {
                    input.remove(field);
                }
            }
            input.extend(fields.clone());
        }
        mutation.optimistic = match mutation.optimistic.take() {
            Some(Optimistic::Patch { key, .. }) => Some(Optimistic::Patch { key, fields: Value::Object(fields) }),
            Some(Optimistic::Upsert { .. }) => {
                let mut row = theirs.clone();
                if let Value::Object(map) = &mut row {
                    map.extend(fields);
                }
                Some(Optimistic::Upsert { row })
            }
            other => other,
        };
        Ok(Some(mutation))
    }
}

/// The row key and the fields `mutation` changes (see the module docs); `null` fields for a removal.
pub(crate) fn changed_fields(
    mutation: &Mutation,
    key_field: &str,
    version_fields: &[String],
) -> (Option<String>, Value) {
    let key_of = |row: &Value| match row.get(key_field) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    match &mutation.optimistic {
        Some(Optimistic::Patch { key, fields }) => (Some(key.clone()), fields.clone()),
        Some(Optimistic::Remove { key }) => (Some(key.clone()), Value::Null),
        Some(Optimistic::Upsert { row }) => {
            let base = mutation.base.as_ref();
            let mut fields = Map::new();
            for (k, v) in row.as_object().into_iter().flatten() {
                if *k != key_field && !version_fields.contains(k) && base.is_none_or(|b| b.get(k.as_str()) != Some(v)) {
                    fields.insert(k.clone(), v.clone());
                }
            }
            (key_of(row), Value::Object(fields))
        }
        None => {
            // Inserted one by one: collecting a JSON map sorts, and the sort's code would join the wasm.
            let input = mutation.variables.get(mutation.input_variable_name()).filter(|i| i.is_object());
            let mut fields = input.and_then(Value::as_object).cloned().unwrap_or_default();
            fields.remove(key_field);
            (input.and_then(key_of), Value::Object(fields))
        }
    }
}

/// The value of `row`'s first version field that holds a number or a string.
pub(crate) fn version_value(version_fields: &[String], row: &Value) -> Option<Value> {
    version_fields.iter().find_map(|f| row.get(f).filter(|v| v.is_number() || v.is_string()).cloned())
}

/// Whether two version values are the same version (a number from JavaScript may arrive as a float).
pub(crate) fn same_version(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}
