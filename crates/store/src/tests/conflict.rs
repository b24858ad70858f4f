//! Conflicts: what a stale `expectedVersion`'s refusal carries, the three-way diff, and the resends that resolve it
//! (with proptests of the diff's and the merge's laws).

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;
use crate::conflict::Conflict;
use crate::{
    three_way, Choice, FieldChange, HttpResponse, Input, Mutation, MutationError, Optimistic, Output, PendingMutation,
    ResolveError, Store,
};

const UPDATE: &str = "mutation($expectedVersion: Int, $input: UpdateOrderInput!, $clientMutationId: ID) { \
                      updateOrder(input: $input, expectedVersion: $expectedVersion, clientMutationId: \
                      $clientMutationId) { id owner version value name } }";

fn row(key: &str, version: i64, value: i64, name: &str) -> Value {
    json!({"id": key, "owner": "A", "version": version, "value": value, "name": name})
}

/// An edit of row `key` at `expected`, changing `fields`, shown optimistically.
fn edit(key: &str, expected: i64, fields: Value) -> Mutation {
    let mut input = fields.clone();
    input["id"] = json!(key);
    Mutation::new(UPDATE, json!({"expectedVersion": expected, "input": input}), "updateOrder")
        .optimistic("orders", Optimistic::Patch { key: key.into(), fields })
}

fn conflict_response(current: Value) -> HttpResponse {
    HttpResponse::Ok {
        body: json!({"data": {"updateOrder": null}, "errors": [{"message": "changed", "extensions": {"code": "CONFLICT", "current": current}}]}),
    }
}

fn settled_conflict(out: &[Output]) -> Conflict {
    let found = out.iter().find_map(|o| match o {
        Output::MutationSettled { result: Err(MutationError::Conflict(c)), .. } => Some((**c).clone()),
        _ => None,
    });
    found.expect("a conflict settled")
}

fn visible(store: &Store, key: &str) -> Option<Value> {
    store.collection("orders").unwrap().row(key)
}

/// A live store holding `a` at version 1 (value 1, name "Ada") that sends `mutation` and gets it refused with
/// `current`, after the event for `current` (if any) arrived: the store, the conflict and the outputs.
fn refused(mutation: Mutation, current: Option<Value>) -> (Store, Conflict, Vec<Output>) {
    let (mut store, socket, sub) = live_orders(vec![row("a", 1, 1, "Ada")], 10);
    let out = store.handle(1, Input::Mutate(mutation));
    let req = https(&out).pop().expect("sent");
    if let Some(current) = &current {
        let version = current["version"].as_i64();
        store.handle(2, next(socket, &sub, change(11, 10, "MODIFY", Some("a"), version, Some(current.clone()))));
    }
    let out = store.handle(
        3,
        Input::Http { request_id: req.request_id, response: conflict_response(current.unwrap_or(Value::Null)) },
    );
    let conflict = settled_conflict(&out);
    (store, conflict, out)
}

fn change_of(conflict: &Conflict, field: &str) -> FieldChange {
    conflict.diff.iter().find(|d| d.field == field).map(|d| d.change).expect("the field is in the diff")
}

#[test]
fn a_conflict_carries_base_mine_theirs_and_the_diff() {
    let theirs = row("a", 2, 7, "Ada");
    let (store, conflict, _) = refused(edit("a", 1, json!({"value": 42})), Some(theirs.clone()));
    assert_eq!(conflict.key.as_deref(), Some("a"));
    assert_eq!(conflict.base, Some(row("a", 1, 1, "Ada")), "the confirmed row at the expected version");
    assert_eq!(conflict.mine, json!({"value": 42}));
    assert_eq!(conflict.theirs, Some(theirs.clone()));
    assert_eq!(conflict.theirs_version, Some(json!(2)));
    assert_eq!(change_of(&conflict, "value"), FieldChange::Conflict);
    assert_eq!(change_of(&conflict, "version"), FieldChange::Theirs);
    assert_eq!(change_of(&conflict, "name"), FieldChange::Unchanged);
    assert!(conflict.has_conflicts());
    assert_eq!(conflict.conflicting_fields(), vec!["value"]);
    // Mine's overlay is gone; the row shows theirs.
    assert_eq!(visible(&store, "a"), Some(theirs.clone()));
    assert_eq!(store.collection("orders").unwrap().overlays(), 0);
    assert_eq!(conflict.take_theirs(), Some(&theirs));
    assert_eq!(conflict.mine_row(), Some(row("a", 1, 42, "Ada")));
}

#[test]
fn keep_mine_resends_on_top_of_theirs_through_the_queue() {
    let theirs = row("a", 2, 7, "Ada");
    let (mut store, conflict, _) = refused(edit("a", 1, json!({"value": 42})), Some(theirs.clone()));
    let resend = conflict.keep_mine().unwrap().unwrap();
    assert_eq!(resend.variables, json!({"expectedVersion": 2, "input": {"id": "a", "value": 42}}));
    assert_eq!(resend.base, Some(theirs.clone()));
    assert_eq!(resend.client_mutation_id, None, "a new mutation, with its own id");
    assert_eq!(conflict.merge(&[]).unwrap(), Some(resend.clone()));
    let out = store.handle(4, Input::Mutate(resend));
    assert_eq!(visible(&store, "a"), Some(row("a", 2, 42, "Ada")), "optimistic again");
    let req = https(&out).pop().expect("sent");
    assert_eq!(req.body["variables"]["expectedVersion"], json!(2));
    let out = store.handle(5, Input::Http { request_id: req.request_id, response: ok(row("a", 3, 42, "Ada")) });
    assert!(matches!(&out[..], [.., Output::Status(_)]));
    assert_eq!(visible(&store, "a"), Some(row("a", 3, 42, "Ada")));
}

fn ok(entity: Value) -> HttpResponse {
    HttpResponse::Ok { body: json!({"data": {"updateOrder": entity}}) }
}

#[test]
fn a_change_to_other_fields_is_no_conflict() {
    // The server moved `name` (as a worker moves a status); mine changed `value`: a three-way merge keeps both.
    let theirs = row("a", 2, 1, "Ada L.");
    let (_, conflict, _) = refused(edit("a", 1, json!({"value": 42})), Some(theirs));
    assert_eq!(change_of(&conflict, "value"), FieldChange::Mine);
    assert_eq!(change_of(&conflict, "name"), FieldChange::Theirs);
    assert!(!conflict.has_conflicts());
    assert_eq!(conflict.merged(&[]), Some(row("a", 2, 42, "Ada L.")));
}

#[test]
fn theirs_shows_at_once_and_ends_with_its_event() {
    // The refusal arrives before the event of the change that caused it.
    let (mut store, socket, sub) = live_orders(vec![row("a", 1, 1, "Ada")], 10);
    let req = https(&store.handle(1, Input::Mutate(edit("a", 1, json!({"value": 42}))))).pop().unwrap();
    let theirs = row("a", 2, 7, "Ada");
    let out = store.handle(2, Input::Http { request_id: req.request_id, response: conflict_response(theirs.clone()) });
    assert_eq!(row_changes(&out), vec![RowChange::Updated { key: "a".into() }]);
    assert_eq!(visible(&store, "a"), Some(theirs.clone()), "no trace of mine");
    assert_eq!(store.collection("orders").unwrap().confirmed("a"), Some(&row("a", 1, 1, "Ada")));
    let out = store.handle(3, next(socket, &sub, change(11, 10, "MODIFY", Some("a"), Some(2), Some(theirs.clone()))));
    assert!(row_changes(&out).is_empty(), "the event shows what already showed");
    assert_eq!(store.collection("orders").unwrap().overlays(), 0);
}

#[test]
fn a_deleted_row_is_a_conflict_without_theirs() {
    let (store, conflict, _) = refused(edit("a", 1, json!({"value": 42})), None);
    assert_eq!(conflict.theirs, None);
    assert!(conflict.has_conflicts());
    assert_eq!(change_of(&conflict, "value"), FieldChange::Conflict);
    assert_eq!(conflict.keep_mine(), Err(ResolveError::Deleted));
    assert_eq!(conflict.take_theirs(), None);
    assert_eq!(conflict.merge(&[("value".into(), Choice::Theirs)]), Err(ResolveError::Deleted));
    assert_eq!(visible(&store, "a"), Some(row("a", 1, 1, "Ada")), "rolled back; the removal event removes it");
    assert_eq!(store.collection("orders").unwrap().overlays(), 0);
}

#[test]
fn merge_chooses_per_field() {
    let theirs = row("a", 2, 7, "Ada");
    let (_, conflict, _) = refused(edit("a", 1, json!({"value": 42, "name": "Bo"})), Some(theirs));
    let choose = |choices: &[(&str, Choice)]| {
        let choices: Vec<(String, Choice)> = choices.iter().map(|(f, c)| (f.to_string(), c.clone())).collect();
        conflict.merge(&choices).unwrap()
    };
    let theirs_value = choose(&[("value", Choice::Theirs)]).unwrap();
    assert_eq!(theirs_value.variables, json!({"expectedVersion": 2, "input": {"id": "a", "name": "Bo"}}));
    assert_eq!(theirs_value.optimistic, Some(Optimistic::Patch { key: "a".into(), fields: json!({"name": "Bo"}) }));
    let typed = choose(&[("value", Choice::Value(json!(9)))]).unwrap();
    assert_eq!(typed.variables["input"], json!({"id": "a", "value": 9, "name": "Bo"}));
    assert_eq!(choose(&[("value", Choice::Theirs), ("name", Choice::Theirs)]), None, "nothing left to send");
    assert_eq!(choose(&[("value", Choice::Mine)]), conflict.keep_mine().unwrap());
}

#[test]
fn a_mutation_without_an_input_object_can_keep_mine_but_not_merge_values() {
    // A cancel-like mutation: its change (`status`) is only in its optimistic patch, its version in `$v`.
    let cancel = Mutation::new("mutation($id: ID!, $v: Int!) { x }", json!({"id": "a", "v": 1}), "updateOrder")
        .optimistic("orders", Optimistic::Patch { key: "a".into(), fields: json!({"status": "CANCELLED"}) })
        .version_variable("v");
    let (_, conflict, _) = refused(cancel, Some(row("a", 2, 7, "Ada")));
    assert_eq!(conflict.base, Some(row("a", 1, 1, "Ada")));
    assert_eq!(conflict.keep_mine().unwrap().unwrap().variables, json!({"id": "a", "v": 2}));
    let value = [("status".to_owned(), Choice::Value(json!("PAID")))];
    assert_eq!(conflict.merge(&value), Err(ResolveError::FieldsNotInVariables("input".into())));
    let unnamed = Mutation::new("mutation { x }", json!({"id": "a", "version": 1}), "updateOrder")
        .optimistic("orders", Optimistic::Patch { key: "a".into(), fields: json!({"value": 3}) });
    let (_, conflict, _) = refused(unnamed, Some(row("a", 2, 7, "Ada")));
    assert_eq!(conflict.base, None, "the store cannot tell which version was edited");
    assert_eq!(change_of(&conflict, "value"), FieldChange::Conflict, "without a base, any difference is one");
    assert_eq!(conflict.keep_mine(), Err(ResolveError::NoVersionVariable("expectedVersion".into())));
}

#[test]
fn the_base_is_kept_in_the_persisted_queue() {
    let (mut store, _, _) = live_orders(vec![row("a", 1, 1, "Ada")], 10);
    store.handle(1, Input::Mutate(edit("a", 1, json!({"value": 42}))));
    let saved = serde_json::to_string(&store.pending_mutations()).unwrap();
    let restored: Vec<PendingMutation> = serde_json::from_str(&saved).unwrap();
    assert_eq!(restored[0].mutation.base, Some(row("a", 1, 1, "Ada")));

    // A reload finds the row moved on: the restored mutation is refused, and its base is still the row edited.
    let mut reloaded = Store::new(config(vec![orders().page_size(1000)]));
    reloaded.handle(0, Input::RestoreQueue(restored));
    let (_, out) = go_live(&mut reloaded, 1);
    // A restored mutation may have been sent before the reload: it goes first, the list after its answer.
    let req = https(&out).into_iter().find(|r| r.body["query"] == json!(UPDATE)).expect("the replay");
    let theirs = row("a", 2, 7, "Ada");
    let out = reloaded.handle(2, Input::Http { request_id: req.request_id, response: conflict_response(theirs) });
    let conflict = settled_conflict(&out);
    assert_eq!(conflict.base, Some(row("a", 1, 1, "Ada")));
    assert_eq!(change_of(&conflict, "value"), FieldChange::Conflict);
}

#[test]
fn a_base_given_by_the_caller_wins() {
    // The form opened on version 1; the store's row is at 2 when the user saves: the store cannot know version 1.
    let (mut store, socket, sub) = live_orders(vec![row("a", 1, 1, "Ada")], 10);
    let theirs = row("a", 2, 7, "Ada");
    store.handle(1, next(socket, &sub, change(11, 10, "MODIFY", Some("a"), Some(2), Some(theirs.clone()))));
    let out = store.handle(2, Input::Mutate(edit("a", 1, json!({"value": 42})).base(row("a", 1, 1, "Ada"))));
    let req = https(&out).pop().unwrap();
    let out = store.handle(3, Input::Http { request_id: req.request_id, response: conflict_response(theirs) });
    let conflict = settled_conflict(&out);
    assert_eq!(conflict.base, Some(row("a", 1, 1, "Ada")));
    assert_eq!(change_of(&conflict, "value"), FieldChange::Conflict);
}

#[test]
fn the_error_serializes_with_its_parts() {
    let (_, conflict, _) = refused(edit("a", 1, json!({"value": 42})), Some(row("a", 2, 7, "Ada")));
    let error = MutationError::Conflict(Box::new(conflict));
    assert_eq!(error.code(), Some("CONFLICT"));
    let json = serde_json::to_value(&error).unwrap();
    assert_eq!(json["kind"], "conflict");
    assert_eq!(json["mine"], json!({"value": 42}));
    assert_eq!(json["theirs"]["value"], 7);
    assert_eq!(json["base"]["value"], 1);
    let value = json["diff"].as_array().unwrap().iter().find(|d| d["field"] == "value").unwrap().clone();
    assert_eq!(value, json!({"field": "value", "change": "conflict", "base": 1, "mine": 42, "theirs": 7}));
    assert_eq!(serde_json::from_value::<MutationError>(json).unwrap(), error);
}

// Property tests of the three-way diff and the merge, over rows of a few fields with small values (nested values
// included: they compare as a whole).

const FIELDS: [&str; 4] = ["a", "b", "c", "d"];

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![(0..3i64).prop_map(Value::from), Just(json!({"n": [1, 2]})), Just(Value::Null)]
}

fn fields() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::vec(proptest::option::of(value()), FIELDS.len())
        .prop_map(|values| FIELDS.iter().zip(values).filter_map(|(f, v)| v.map(|v| (f.to_string(), v))).collect())
}

fn with(fields: &Map<String, Value>, version: i64) -> Value {
    let mut row = fields.clone();
    row.insert("id".into(), json!("k"));
    row.insert("version".into(), json!(version));
    Value::Object(row)
}

fn choice() -> impl Strategy<Value = Option<Choice>> {
    proptest::option::of(prop_oneof![Just(Choice::Mine), Just(Choice::Theirs), value().prop_map(Choice::Value)])
}

/// A conflict over `base` (when known), `mine` and `theirs` (when not deleted), as the store completes it.
fn conflict(
    base: Option<&Map<String, Value>>,
    mine: &Map<String, Value>,
    theirs: Option<&Map<String, Value>>,
) -> Conflict {
    let mut mutation = edit("k", 1, Value::Object(mine.clone()));
    mutation.base = base.map(|b| with(b, 1));
    Conflict::from_server(theirs.map_or(Value::Null, |t| with(t, 2))).complete(&mutation, "id", &["version".into()])
}

proptest! {
    #[test]
    fn the_diff_says_who_changed_each_field(base in fields(), mine in fields(), theirs in fields()) {
        let (base_row, theirs_row) = (with(&base, 1), with(&theirs, 2));
        let diff = three_way(Some(&base_row), &mine, Some(&theirs_row));
        for d in &diff {
            let b = base_row.get(&d.field);
            let m = mine.get(&d.field).or(b);
            let t = theirs_row.get(&d.field);
            prop_assert_eq!((d.base.as_ref(), d.mine.as_ref(), d.theirs.as_ref()), (b, m, t));
            let expected = match (m != b, t != b) {
                (false, false) => FieldChange::Unchanged,
                (true, false) => FieldChange::Mine,
                (false, true) => FieldChange::Theirs,
                (true, true) if m == t => FieldChange::BothSame,
                (true, true) => FieldChange::Conflict,
            };
            prop_assert_eq!(d.change, expected, "{}", d.field);
        }
    }

    #[test]
    fn merging_all_mine_is_keep_mine(base in proptest::option::of(fields()), mine in fields(), theirs in fields()) {
        let conflict = conflict(base.as_ref(), &mine, Some(&theirs));
        let all_mine: Vec<(String, Choice)> = mine.keys().map(|f| (f.clone(), Choice::Mine)).collect();
        let keep = conflict.keep_mine().unwrap();
        prop_assert_eq!(conflict.merge(&all_mine).unwrap(), keep.clone());
        prop_assert_eq!(conflict.merge(&[]).unwrap(), keep);
        let all_theirs: Vec<(String, Choice)> = mine.keys().map(|f| (f.clone(), Choice::Theirs)).collect();
        prop_assert_eq!(conflict.merge(&all_theirs).unwrap(), None);
        prop_assert_eq!(conflict.merged(&all_theirs), Some(with(&theirs, 2)));
    }

    #[test]
    fn a_merge_never_loses_a_field_without_conflict(
        base in fields(),
        mine in fields(),
        theirs in fields(),
        choices in proptest::collection::vec(choice(), FIELDS.len()),
    ) {
        let conflict = conflict(Some(&base), &mine, Some(&theirs));
        // A person chooses for the conflicting fields only.
        let choices: Vec<(String, Choice)> = FIELDS
            .iter()
            .zip(choices)
            .filter(|(f, _)| conflict.conflicting_fields().contains(f))
            .filter_map(|(f, c)| c.map(|c| (f.to_string(), c)))
            .collect();
        let merged = conflict.merged(&choices).unwrap();
        let resend = conflict.merge(&choices).unwrap();
        for d in &conflict.diff {
            let got = merged.get(&d.field);
            match d.change {
                FieldChange::Unchanged | FieldChange::Theirs | FieldChange::BothSame => {
                    prop_assert_eq!(got, d.theirs.as_ref(), "{}", d.field)
                }
                FieldChange::Mine => prop_assert_eq!(got, d.mine.as_ref(), "{}", d.field),
                FieldChange::Conflict => {}
            }
        }
        // What is sent is exactly what the merged row changes on top of theirs.
        let sent = resend.map(|m| m.variables["input"].clone()).unwrap_or(json!({"id": "k"}));
        let theirs_row = with(&theirs, 2);
        for (field, value) in sent.as_object().unwrap() {
            if field != "id" {
                prop_assert_eq!(merged.get(field), Some(value));
            }
        }
        for (field, value) in merged.as_object().unwrap() {
            if sent.get(field).is_none() {
                prop_assert_eq!(theirs_row.get(field), Some(value), "{}", field);
            }
        }
    }
}
