//! Live views: their JSON form and its errors, scripted changes, and a proptest against a naive filter + sort +
//! window model, through the whole store (a live-query collection whose every result changes rows at random).

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{config, go_live, next, subscribed};
use crate::{
    apply_ops, CollectionConfig, CompareOp, Direction, Filter, HttpResponse, Input, Mutation, Optimistic, Output,
    Store, ViewError, ViewOp, ViewSpec,
};

const DOC: &str = "subscription { todos { id status n } }";

/// A live store with the live-query collection `todos` subscribed: the store, socket and subscription id.
fn live() -> (Store, u64, String) {
    let mut store = Store::new(config(vec![CollectionConfig::live_query("todos", DOC, "todos")]));
    let (socket, out) = go_live(&mut store, 0);
    let id = subscribed(&out)[0].0.clone();
    (store, socket, id)
}

fn row(id: &str, status: &str, n: i64) -> Value {
    json!({"id": id, "status": status, "n": n})
}

/// Feeds a whole result and returns its view outputs as `(view, ops)`.
fn result(store: &mut Store, socket: u64, id: &str, rows: Vec<Value>) -> Vec<(u64, Vec<ViewOp>)> {
    let out = store.handle(0, next(socket, id, json!({"data": {"todos": rows}})));
    view_ops(&out)
}

fn view_ops(out: &[Output]) -> Vec<(u64, Vec<ViewOp>)> {
    out.iter()
        .filter_map(|o| if let Output::View { view, ops, .. } = o { Some((*view, ops.clone())) } else { None })
        .collect()
}

#[test]
fn a_spec_reads_from_json_with_its_shorthands_and_every_mistake_is_named() {
    let spec: ViewSpec = serde_json::from_value(json!({
        "where": {"status": {"in": ["OPEN", "PAID"]}, "total": {"gte": 10, "lt": 100}, "or": [{"owner": "a"}, {"not": {"owner": null}}]},
        "orderBy": ["createdAt desc", {"field": "id"}],
        "limit": 20,
        "offset": 5,
    }))
    .expect("a valid spec");
    assert_eq!(spec.limit, Some(20));
    assert_eq!(spec.offset, 5);
    assert_eq!(spec.order_by[0].field, "createdAt");
    assert_eq!(spec.order_by[0].direction, Direction::Desc);
    assert_eq!(spec.order_by[1].direction, Direction::Asc);
    let filter = spec.filter.clone().expect("a filter");
    let open = json!({"status": "OPEN", "total": 10, "owner": "b"});
    assert!(filter.matches(&open));
    assert!(!filter.matches(&json!({"status": "OPEN", "total": 100, "owner": "b"})));
    assert!(!filter.matches(&json!({"status": "OPEN", "total": 10})), "a missing owner is null");
    assert!(!filter.matches(&json!({"status": "DONE", "total": 10, "owner": "a"})));
    // The JSON form round-trips.
    let again: ViewSpec = serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
    assert!(again.filter.unwrap().matches(&open));

    let error = |spec: Value| serde_json::from_value::<ViewSpec>(spec).unwrap_err().to_string();
    assert!(error(json!({"where": {"n": {"between": [1, 2]}}})).contains("where.n: unknown comparison \"between\""));
    assert!(error(json!({"where": {"n": [1, 2]}})).contains("write {\"in\": [...]}"));
    assert!(error(json!({"where": {"or": {"n": 1}}})).contains("where.or: a list of filters"));
    assert!(error(json!({"where": {"and": [{"n": {"in": 3}}]}})).contains("where.and[0].n.in: a list of values"));
    assert!(error(json!({"orderBy": ["n sideways"]})).contains("asc or desc"));
    assert!(error(json!({"orderBy": [{"field": "n", "dir": "desc"}]})).contains("unknown key \"dir\""));
    assert!(error(json!({"sort": "n"})).contains("unknown field `sort`"));
}

#[test]
fn filters_compare_numbers_with_numbers_strings_with_strings_and_nested_fields_by_path() {
    let row = json!({"n": 2, "s": "b", "customer": {"name": "Ada"}});
    let holds = |f: Filter| f.matches(&row);
    assert!(holds(Filter::eq("n", 2.0)));
    assert!(holds(Filter::compare("n", CompareOp::Gt, 1)));
    assert!(!holds(Filter::compare("n", CompareOp::Gt, "1")), "a number is not compared with a string");
    assert!(holds(Filter::compare("s", CompareOp::Lt, "c")));
    assert!(holds(Filter::eq("customer.name", "Ada")));
    assert!(holds(Filter::eq("missing", Value::Null)));
    assert!(holds(Filter::one_of("s", ["a", "b"]).and(Filter::compare("n", CompareOp::Lte, 2))));
    assert!(holds(Filter::eq("n", 5).or(Filter::eq("s", "b"))));
}

#[test]
fn a_window_publishes_only_the_positions_that_moved() {
    let (mut store, socket, id) = live();
    let spec = ViewSpec::new().filter(Filter::eq("status", "OPEN")).order_by("n", Direction::Desc).limit(2);
    let view = store.open_view("todos", spec).expect("the collection is watched");
    let ops = result(&mut store, socket, &id, vec![row("a", "OPEN", 1), row("b", "OPEN", 5), row("c", "DONE", 9)]);
    let mut shown = Vec::new();
    for (_, ops) in &ops {
        apply_ops(&mut shown, ops);
    }
    assert_eq!(shown, ["b", "a"]);
    assert_eq!(store.view(view).unwrap().keys(), ["b", "a"]);
    // A row outside the filter changes: nothing to publish.
    let ops = result(&mut store, socket, &id, vec![row("a", "OPEN", 1), row("b", "OPEN", 5), row("c", "DONE", 8)]);
    assert!(ops.is_empty(), "{ops:?}");
    // A row changes in place.
    let ops = result(&mut store, socket, &id, vec![row("a", "OPEN", 2), row("b", "OPEN", 5), row("c", "DONE", 8)]);
    assert_eq!(ops, [(view, vec![ViewOp::Update { index: 1, key: "a".into() }])]);
    // A row enters at the top of a full window: the last drops out.
    let ops = result(
        &mut store,
        socket,
        &id,
        vec![row("a", "OPEN", 2), row("b", "OPEN", 5), row("c", "DONE", 8), row("d", "OPEN", 7)],
    );
    assert_eq!(
        ops,
        [(view, vec![ViewOp::Insert { index: 0, key: "d".into() }, ViewOp::Remove { index: 2 }])],
        "one insertion, one removal"
    );
    let read = store.view(view).unwrap();
    assert_eq!(read.keys(), ["d", "b"]);
    assert_eq!(read.rows()[0]["n"], 7);
    assert_eq!((read.state().len, read.state().total), (2, 3));
    assert!(store.close_view(view));
    assert!(store.view(view).is_none());
    assert_eq!(store.open_view("nope", ViewSpec::new()), Err(ViewError::UnknownCollection("nope".into())));
    assert_eq!(store.open_view("todos", ViewSpec::new().limit(0)), Err(ViewError::ZeroLimit));
}

#[test]
fn a_held_view_stays_put_and_its_release_shows_the_net_change_at_once() {
    let (mut store, socket, id) = live();
    result(&mut store, socket, &id, vec![row("a", "OPEN", 1), row("b", "OPEN", 2), row("c", "OPEN", 3)]);
    let view = store.open_view("todos", ViewSpec::new().order_by("n", Direction::Asc)).unwrap();
    let mut shown = store.view(view).unwrap().keys();
    store.hold_view(view).unwrap();
    let ops = result(&mut store, socket, &id, vec![row("b", "OPEN", 9), row("c", "OPEN", 3), row("d", "OPEN", 0)]);
    assert!(ops.is_empty(), "a held view publishes nothing");
    let read = store.view(view).unwrap();
    assert_eq!(read.keys(), ["a", "b", "c"], "the order stays put");
    assert_eq!(read.row("b").unwrap()["n"], 2, "and so do the rows");
    assert!(read.state().held && read.state().has_pending_updates);
    let Some(Output::View { ops, state, .. }) = store.release_view(view).unwrap() else { panic!("a change") };
    apply_ops(&mut shown, &ops);
    assert_eq!(shown, ["d", "c", "b"]);
    assert!(!state.held && !state.has_pending_updates);
    assert_eq!(store.view(view).unwrap().keys(), shown);
    assert_eq!(store.release_view(view), Ok(None), "nothing more to show");
    assert_eq!(store.hold_view(99), Err(ViewError::UnknownView(99)));
}

#[test]
fn optimistic_rows_take_part_and_leave_with_their_rollback() {
    let (mut store, socket, id) = live();
    result(&mut store, socket, &id, vec![row("a", "OPEN", 1)]);
    let view = store.open_view("todos", ViewSpec::new().order_by("n", Direction::Asc)).unwrap();
    let mut shown = store.view(view).unwrap().keys();
    let mutation = Mutation::new("mutation { add { id status n } }", json!({}), "add")
        .optimistic("todos", Optimistic::Upsert { row: row("tmp", "OPEN", 0) });
    let out = store.handle(0, Input::Mutate(mutation));
    for (_, ops) in view_ops(&out) {
        apply_ops(&mut shown, &ops);
    }
    assert_eq!(shown, ["tmp", "a"], "the optimistic row shows in its place");
    let request = super::https(&out).pop().expect("the mutation is sent");
    let refusal = json!({"data": null, "errors": [{"message": "no", "extensions": {"code": "VALIDATION"}}]});
    let out =
        store.handle(0, Input::Http { request_id: request.request_id, response: HttpResponse::Ok { body: refusal } });
    for (_, ops) in view_ops(&out) {
        apply_ops(&mut shown, &ops);
    }
    assert_eq!(shown, ["a"], "and leaves with its rollback");
}

/// A naive model of a view: filter, sort, cut.
fn model(rows: &[Value], spec: &ViewSpec) -> Vec<String> {
    let mut matching: Vec<&Value> = rows.iter().filter(|r| spec.filter.as_ref().is_none_or(|f| f.matches(r))).collect();
    matching.sort_by(|a, b| {
        for o in &spec.order_by {
            let order = a[&o.field].as_i64().cmp(&b[&o.field].as_i64());
            let order = if o.direction == Direction::Desc { order.reverse() } else { order };
            if order.is_ne() {
                return order;
            }
        }
        a["id"].as_str().cmp(&b["id"].as_str())
    });
    matching
        .into_iter()
        .skip(spec.offset)
        .take(spec.limit.unwrap_or(usize::MAX))
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn spec_strategy() -> impl Strategy<Value = ViewSpec> {
    let filter = prop_oneof![
        Just(None),
        Just(Some(Filter::eq("status", "OPEN"))),
        Just(Some(Filter::compare("n", CompareOp::Gte, 3))),
        Just(Some(Filter::one_of("status", ["OPEN", "PAID"]).or(Filter::compare("n", CompareOp::Lt, 2)))),
    ];
    let order = prop_oneof![
        Just(vec![]),
        Just(vec![("n", Direction::Asc)]),
        Just(vec![("n", Direction::Desc)]),
        Just(vec![("m", Direction::Asc), ("n", Direction::Desc)]),
    ];
    (filter, order, prop::option::of(1usize..5), 0usize..4).prop_map(|(filter, order, limit, offset)| {
        let mut spec = ViewSpec { filter, limit, offset, ..ViewSpec::default() };
        for (field, direction) in order {
            spec = spec.order_by(field, direction);
        }
        spec
    })
}

#[derive(Debug, Clone)]
enum Step {
    /// A new result: each of 12 ids present or not, with its status and numbers.
    Result(Vec<Option<(u8, i64, i64)>>),
    Hold,
    Release,
}

fn step_strategy() -> impl Strategy<Value = Step> {
    let one = prop::option::weighted(0.7, (0u8..3, 0i64..6, 0i64..3));
    prop_oneof![
        6 => prop::collection::vec(one, 12).prop_map(Step::Result),
        1 => Just(Step::Hold),
        1 => Just(Step::Release),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Whatever the results, what a shell shows by applying the published ops equals the model's window, except
    /// while held, when it equals what showed at the hold.
    #[test]
    fn published_ops_keep_a_shell_equal_to_a_naive_filter_sort_and_window(
        spec in spec_strategy(),
        steps in prop::collection::vec(step_strategy(), 1..25),
    ) {
        let (mut store, socket, id) = live();
        let view = store.open_view("todos", spec.clone()).unwrap();
        let mut shown: Vec<String> = Vec::new();
        let mut rows: Vec<Value> = Vec::new();
        let mut held: Option<Vec<String>> = None;
        for step in steps {
            match step {
                Step::Result(present) => {
                    rows = present
                        .iter()
                        .enumerate()
                        .filter_map(|(i, r)| r.map(|(s, n, m)| {
                            let status = ["OPEN", "PAID", "DONE"][usize::from(s)];
                            json!({"id": format!("k{i:02}"), "status": status, "n": n, "m": m})
                        }))
                        .collect();
                    let out = store.handle(0, next(socket, &id, json!({"data": {"todos": rows.clone()}})));
                    for (v, ops) in view_ops(&out) {
                        prop_assert_eq!(v, view);
                        prop_assert!(held.is_none(), "a held view published {:?}", ops);
                        apply_ops(&mut shown, &ops);
                    }
                }
                Step::Hold => {
                    store.hold_view(view).unwrap();
                    held.get_or_insert_with(|| shown.clone());
                }
                Step::Release => {
                    if let Some(Output::View { ops, .. }) = store.release_view(view).unwrap() {
                        apply_ops(&mut shown, &ops);
                    }
                    held = None;
                }
            }
            let read = store.view(view).unwrap();
            match &held {
                Some(frozen) => {
                    prop_assert_eq!(&shown, frozen);
                    prop_assert_eq!(&read.keys(), frozen);
                }
                None => {
                    prop_assert_eq!(&shown, &model(&rows, &spec));
                    prop_assert_eq!(&read.keys(), &shown);
                    prop_assert_eq!(read.state().len, shown.len());
                }
            }
        }
    }
}
