//! Shared subscription executions (what Hasura calls multiplexing): subscriptions that ask the same document with
//! the same variables, as callers who see the same rows, share one GraphQL execution and one serialized payload per
//! event; each connection only splices its operation id into the frame.
//!
//! Only the subscriptions that start "from now" and deliver rows share (Amplify's `onCreateT`/`onUpdateT`/
//! `onDeleteT` and the schema's `@aws_subscribe` ones): their output depends on nothing but the document, the
//! variables, the caller and the change log. The gapless `onTChanged(afterSeq)` keeps a private reader, since its
//! chain (`prevSeq`) starts at each subscriber's own cursor.
//!
//! The promises stay those of a private subscription:
//! - a member gets exactly the events committed after its subscribe message arrived: a group's execution may have
//!   started earlier, so each member skips events at or before its own start (`skip_through`);
//! - a slow member never loses an event and never holds the others back: when its connection's queue is full, it
//!   leaves the group and its connection resumes it privately after the last event it was given
//!   ([`crate::session::Outgoing::Resume`]);
//! - the last member leaving stops the execution.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use async_graphql::parser::types::{OperationType, Selection};
use futures_util::{FutureExt, StreamExt};
use tokio::task::AbortHandle;

use crate::auth::Identity;
use crate::AppState;

/// One event of a shared execution, serialized once for every member.
#[derive(Debug)]
pub(crate) enum SharedEvent {
    /// A result: the serialized GraphQL response, and the change-log seq it reflects.
    Next { seq: i64, payload: Box<str> },
    /// The execution failed; it ends.
    Error(Vec<async_graphql::ServerError>),
    /// The execution ended.
    Complete,
}

/// What offering an event to a member led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offered {
    Sent,
    /// The member's connection queue is full.
    Full,
    /// The member's connection is gone.
    Gone,
}

/// Where a member's events go: its connection's queue, tagged with its operation.
pub(crate) trait MemberSink: Send + Sync {
    /// Queues `event` without waiting.
    fn offer(&self, event: &Arc<SharedEvent>) -> Offered;
    /// Tells the connection (waiting for room) to go on privately after `after`: the member fell behind.
    fn resume(&self, after: i64);
}

/// A subscribe request as the connection got it, with the caller's verified identity.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub(crate) query: String,
    pub(crate) variables: serde_json::Value,
    pub(crate) operation_name: Option<String>,
    pub(crate) identity: Option<Identity>,
    /// The change-log head when the message arrived: where a subscription without `afterSeq` starts.
    pub(crate) subscribed_at: i64,
}

/// Carried by a shared execution's request: the seq of the record behind the latest result.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeqProbe(Arc<AtomicI64>);

impl SeqProbe {
    /// Notes that the next result comes from the record `seq`.
    pub(crate) fn set(&self, seq: i64) {
        self.0.store(seq, Ordering::Release);
    }

    fn get(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }
}

impl Operation {
    /// The GraphQL request: the caller's verified identity (never one from the request) and the start cursor.
    pub(crate) fn request(&self) -> async_graphql::Request {
        let mut request = async_graphql::Request::new(self.query.clone())
            .variables(async_graphql::Variables::from_json(self.variables.clone()))
            .data(crate::schema::SubscribedAt(self.subscribed_at));
        if let Some(name) = &self.operation_name {
            request = request.operation_name(name.clone());
        }
        if let Some(identity) = &self.identity {
            request = request.data(identity.clone());
        }
        request
    }
}

/// Who is asking, as far as what they may see goes (a token's expiry is the connection's business).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Viewer {
    Anonymous,
    User { sub: String, admin: bool, groups: Vec<String> },
    ApiKey(String),
}

impl Viewer {
    fn of(identity: &Option<Identity>) -> Viewer {
        match identity {
            None => Viewer::Anonymous,
            Some(Identity::User { sub, admin, groups, .. }) => {
                let mut groups = groups.clone();
                groups.sort();
                Viewer::User { sub: sub.clone(), admin: *admin, groups }
            }
            Some(Identity::ApiKey { name }) => Viewer::ApiKey(name.clone()),
        }
    }
}

/// What makes two subscriptions the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    query: String,
    operation_name: Option<String>,
    /// The variables as JSON text (serde_json sorts object keys, so equal variables give equal text).
    variables: String,
    viewer: Viewer,
}

/// Every shared execution of one server.
#[derive(Default)]
pub(crate) struct Fanout {
    /// The subscription fields whose executions may be shared.
    fields: HashSet<String>,
    groups: Mutex<HashMap<Key, Weak<Group>>>,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout").field("fields", &self.fields).finish_non_exhaustive()
    }
}

/// The members and the execution of one shared subscription.
pub(crate) struct Group {
    key: Key,
    state: Mutex<Members>,
    execution: OnceLock<AbortHandle>,
    fanout: Weak<Fanout>,
}

struct Members {
    next_id: u64,
    members: HashMap<u64, Member>,
    /// Ended (its execution finished or its last member left): new subscribers start a new group.
    closed: bool,
}

struct Member {
    sink: Box<dyn MemberSink>,
    /// Events at or before this seq were committed before the member subscribed.
    skip_through: i64,
    /// The seq of the last event the member was given (or `skip_through`): where a resume starts.
    delivered: i64,
}

/// A member's place in a group; dropping it leaves the group.
pub(crate) struct Membership {
    group: Arc<Group>,
    id: u64,
}

impl Fanout {
    /// A fan-out sharing executions of the subscription fields named in `fields`.
    pub(crate) fn new(fields: HashSet<String>) -> Arc<Fanout> {
        Arc::new(Fanout { fields, ..Fanout::default() })
    }

    /// Joins `op` to the group of its equals, starting the group's execution if it has none; `None` when `op` is
    /// not a subscription that may share.
    pub(crate) fn join(
        self: &Arc<Self>,
        app: &AppState,
        op: &Operation,
        sink: Box<dyn MemberSink>,
    ) -> Option<Membership> {
        let key = Key {
            query: op.query.clone(),
            operation_name: op.operation_name.clone(),
            variables: op.variables.to_string(),
            viewer: Viewer::of(&op.identity),
        };
        // A document is parsed (outside the lock every subscribe takes) only when no group of it runs yet.
        let mut parsed = false;
        let (mut groups, existing) = loop {
            let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
            let existing = groups.get(&key).and_then(Weak::upgrade);
            if existing.is_some() || parsed {
                break (groups, existing);
            }
            drop(groups);
            if !self.may_share(op) {
                return None;
            }
            parsed = true;
        };
        let member = Member { sink, skip_through: op.subscribed_at, delivered: op.subscribed_at };
        if let Some(group) = existing {
            let mut state = group.state.lock().unwrap_or_else(|e| e.into_inner());
            if !state.closed {
                let id = state.add(member);
                drop(state);
                return Some(Membership { group, id });
            }
        }
        let group = Arc::new(Group {
            key: key.clone(),
            state: Mutex::new(Members { next_id: 0, members: HashMap::new(), closed: false }),
            execution: OnceLock::new(),
            fanout: Arc::downgrade(self),
        });
        let id = group.state.lock().unwrap_or_else(|e| e.into_inner()).add(member);
        groups.insert(key, Arc::downgrade(&group));
        drop(groups);
        let probe = SeqProbe::default();
        let request = op.request().data(probe.clone());
        let execution = tokio::spawn(execute(app.clone(), group.clone(), request, probe));
        let _ = group.execution.set(execution.abort_handle());
        Some(Membership { group, id })
    }

    /// Whether `op` is one subscription operation whose root fields are all shareable.
    fn may_share(&self, op: &Operation) -> bool {
        let Ok(document) = async_graphql::parser::parse_query(&op.query) else { return false };
        let operation = match &op.operation_name {
            Some(name) => document.operations.iter().find(|(n, _)| n.is_some_and(|n| n.as_str() == name)),
            None => document.operations.iter().next().filter(|_| document.operations.iter().count() == 1),
        };
        let Some((_, operation)) = operation else { return false };
        let operation = &operation.node;
        operation.ty == OperationType::Subscription
            && operation.directives.is_empty()
            && operation.selection_set.node.items.iter().all(|item| match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    name == "__typename" || self.fields.contains(name)
                }
                _ => false,
            })
    }

    /// Forgets `group` if it is still the one registered under its key.
    fn forget(&self, group: &Group) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if groups.get(&group.key).is_some_and(|g| std::ptr::eq(g.as_ptr(), group)) {
            groups.remove(&group.key);
        }
    }
}

impl Members {
    fn add(&mut self, member: Member) -> u64 {
        self.next_id += 1;
        self.members.insert(self.next_id, member);
        self.next_id
    }
}

impl Group {
    /// Gives `event` to every member that should have it. A member whose queue is full leaves and resumes
    /// privately; one whose connection is gone leaves. The final event (error or complete) closes the group.
    fn publish(&self, event: SharedEvent) {
        let seq = match &event {
            SharedEvent::Next { seq, .. } => Some(*seq),
            _ => None,
        };
        let event = Arc::new(event);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut left = Vec::new();
        for (&id, member) in state.members.iter_mut() {
            if seq.is_some_and(|seq| seq <= member.skip_through) {
                continue;
            }
            match member.sink.offer(&event) {
                Offered::Sent => member.delivered = seq.unwrap_or(member.delivered),
                Offered::Full => left.push((id, Some(member.delivered))),
                Offered::Gone => left.push((id, None)),
            }
        }
        for (id, resume_after) in left {
            if let (Some(member), Some(after)) = (state.members.remove(&id), resume_after) {
                member.sink.resume(after);
            }
        }
        let ended = seq.is_none() || state.members.is_empty();
        if ended {
            state.closed = true;
            state.members.clear();
        }
        drop(state);
        if ended {
            self.end();
        }
    }

    /// Stops the execution and forgets the group.
    fn end(&self) {
        if let Some(execution) = self.execution.get() {
            execution.abort();
        }
        if let Some(fanout) = self.fanout.upgrade() {
            fanout.forget(self);
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut state = self.group.state.lock().unwrap_or_else(|e| e.into_inner());
        state.members.remove(&self.id);
        let last = state.members.is_empty() && !state.closed;
        if last {
            state.closed = true;
        }
        drop(state);
        if last {
            self.group.end();
        }
    }
}

/// Runs a group's execution, serializing each result once; a panic ends it with an error naming only a reference.
async fn execute(app: AppState, group: Arc<Group>, request: async_graphql::Request, probe: SeqProbe) {
    let run = async {
        let mut responses = app.schema.execute_stream(request);
        while let Some(response) = responses.next().await {
            if crate::session::only_errors(&response) {
                group.publish(SharedEvent::Error(response.errors));
                return;
            }
            let payload = serde_json::to_string(&response).unwrap_or_default().into_boxed_str();
            group.publish(SharedEvent::Next { seq: probe.get(), payload });
        }
        group.publish(SharedEvent::Complete);
    };
    if let Err(panic) = std::panic::AssertUnwindSafe(run).catch_unwind().await {
        let text = crate::transport::panic_text(&*panic);
        let error = crate::schema::internal(format!("a shared subscription panicked: {text}"));
        group.publish(SharedEvent::Error(vec![error.into_server_error(async_graphql::Pos::default())]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        seen: Mutex<Vec<i64>>,
        resumed: Mutex<Option<i64>>,
        answer: Mutex<Option<Offered>>,
    }

    impl MemberSink for Arc<Recorder> {
        fn offer(&self, event: &Arc<SharedEvent>) -> Offered {
            let answer = self.answer.lock().unwrap().unwrap_or(Offered::Sent);
            if answer == Offered::Sent {
                if let SharedEvent::Next { seq, .. } = &**event {
                    self.seen.lock().unwrap().push(*seq);
                }
            }
            answer
        }
        fn resume(&self, after: i64) {
            *self.resumed.lock().unwrap() = Some(after);
        }
    }

    fn group(fanout: &Arc<Fanout>) -> Arc<Group> {
        Arc::new(Group {
            key: Key {
                query: String::new(),
                operation_name: None,
                variables: String::new(),
                viewer: Viewer::Anonymous,
            },
            state: Mutex::new(Members { next_id: 0, members: HashMap::new(), closed: false }),
            execution: OnceLock::new(),
            fanout: Arc::downgrade(fanout),
        })
    }

    fn member(group: &Arc<Group>, skip_through: i64) -> (Arc<Recorder>, Membership) {
        let recorder = Arc::new(Recorder::default());
        let sink = Box::new(recorder.clone());
        let id = group.state.lock().unwrap().add(Member { sink, skip_through, delivered: skip_through });
        (recorder, Membership { group: group.clone(), id })
    }

    fn next(seq: i64) -> SharedEvent {
        SharedEvent::Next { seq, payload: format!("{{\"seq\":{seq}}}").into() }
    }

    #[test]
    fn a_member_gets_only_what_was_committed_after_it_subscribed() {
        let fanout = Fanout::new(HashSet::new());
        let group = group(&fanout);
        let (early, _a) = member(&group, 0);
        let (late, _b) = member(&group, 2);
        for seq in 1..=4 {
            group.publish(next(seq));
        }
        assert_eq!(*early.seen.lock().unwrap(), vec![1, 2, 3, 4]);
        assert_eq!(*late.seen.lock().unwrap(), vec![3, 4]);
    }

    #[test]
    fn a_full_member_leaves_and_resumes_after_its_last_event_while_the_others_go_on() {
        let fanout = Fanout::new(HashSet::new());
        let group = group(&fanout);
        let (slow, _a) = member(&group, 0);
        let (fast, _b) = member(&group, 0);
        group.publish(next(1));
        *slow.answer.lock().unwrap() = Some(Offered::Full);
        group.publish(next(2));
        group.publish(next(3));
        assert_eq!(*slow.resumed.lock().unwrap(), Some(1), "resumes privately after the last event it was given");
        assert_eq!(*slow.seen.lock().unwrap(), vec![1]);
        assert_eq!(*fast.seen.lock().unwrap(), vec![1, 2, 3]);
        assert_eq!(group.state.lock().unwrap().members.len(), 1);
    }

    #[test]
    fn a_member_that_skipped_everything_resumes_from_its_own_start() {
        let fanout = Fanout::new(HashSet::new());
        let group = group(&fanout);
        let (slow, _a) = member(&group, 5);
        let (_other, _b) = member(&group, 0);
        *slow.answer.lock().unwrap() = Some(Offered::Full);
        group.publish(next(3));
        assert_eq!(*slow.resumed.lock().unwrap(), None, "an event it skips is not offered");
        group.publish(next(6));
        assert_eq!(*slow.resumed.lock().unwrap(), Some(5));
    }

    #[test]
    fn the_last_member_leaving_closes_the_group_and_a_final_event_ends_it_for_all() {
        let fanout = Fanout::new(HashSet::new());
        let g = group(&fanout);
        let (_r, a) = member(&g, 0);
        drop(a);
        assert!(g.state.lock().unwrap().closed);

        let g = group(&fanout);
        let (r1, _a) = member(&g, 0);
        let (r2, _b) = member(&g, 0);
        g.publish(next(1));
        g.publish(SharedEvent::Complete);
        let state = g.state.lock().unwrap();
        assert!(state.closed && state.members.is_empty());
        assert_eq!((r1.seen.lock().unwrap().len(), r2.seen.lock().unwrap().len()), (1, 1));
    }

    #[test]
    fn only_single_subscriptions_on_shareable_fields_share() {
        let fanout = Fanout::new(["onCreateNote".to_owned()].into());
        let op = |query: &str, name: Option<&str>| Operation {
            query: query.into(),
            variables: serde_json::Value::Null,
            operation_name: name.map(str::to_owned),
            identity: None,
            subscribed_at: 0,
        };
        assert!(fanout.may_share(&op("subscription { onCreateNote { id __typename } }", None)));
        assert!(fanout.may_share(&op("subscription S { __typename onCreateNote { id } }", Some("S"))));
        assert!(!fanout.may_share(&op("subscription { onNoteChanged(afterSeq: 1) { seq } }", None)));
        assert!(!fanout.may_share(&op("query { onCreateNote { id } }", None)));
        assert!(!fanout
            .may_share(&op("subscription A { onCreateNote { id } } subscription B { onCreateNote { id } }", None)));
        assert!(
            !fanout.may_share(&op("subscription { ...F } fragment F on Subscription { onCreateNote { id } }", None))
        );
        assert!(!fanout.may_share(&op("subscription {", None)));
    }
}
