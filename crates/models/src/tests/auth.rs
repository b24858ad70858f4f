use crate::{AuthRule, AuthRules, AuthStrategy, Caller, Operation};

use Operation::{Create, Delete, Read, Update};

fn rules(rules: Vec<AuthRule>) -> AuthRules {
    AuthRules { rules }
}

fn only(strategy: AuthStrategy, operations: &[Operation]) -> AuthRule {
    AuthRule { strategy, operations: operations.to_vec() }
}

fn nobody() -> Caller {
    Caller::default()
}

#[test]
fn the_default_owner_rule() {
    let auth = AuthRules::default();
    let alice = Caller::user("alice", &[]);
    assert!(auth.allows(&alice, Create, None));
    for op in [Read, Update, Delete] {
        assert!(auth.allows(&alice, op, Some("alice")), "{op}");
        assert!(!auth.allows(&alice, op, Some("bob")), "{op}");
        assert!(!auth.allows(&alice, op, None), "{op}: a row without an owner belongs to nobody");
    }
    assert!(!auth.allows(&Caller::api_key(), Read, Some("alice")));
    assert!(!auth.allows(&nobody(), Create, None));
    assert!(!auth.sees_all(&alice, Read));
    assert!(auth.has_owner_rule());
}

#[test]
fn owner_rule_with_some_operations() {
    let auth = rules(vec![only(AuthStrategy::Owner, &[Create, Read])]);
    let alice = Caller::user("alice", &[]);
    assert!(auth.allows(&alice, Create, None));
    assert!(auth.allows(&alice, Read, Some("alice")));
    assert!(!auth.allows(&alice, Update, Some("alice")));
    assert!(!auth.allows(&alice, Delete, Some("alice")));
}

#[test]
fn groups_rule_grants_every_row_to_members_of_any_listed_group() {
    let auth = rules(vec![AuthRule::new(AuthStrategy::Groups(vec!["admin".into(), "ops".into()]))]);
    let ops = Caller::user("carol", &["staff", "ops"]);
    for op in Operation::ALL {
        assert!(auth.allows(&ops, op, Some("someone else")), "{op}");
        assert!(auth.allows(&ops, op, None), "{op}");
    }
    assert!(auth.sees_all(&ops, Read));
    let staff = Caller::user("dave", &["staff"]);
    assert!(!auth.allows(&staff, Read, Some("dave")), "the groups rule says nothing about owners");
    assert!(!auth.has_owner_rule());
}

#[test]
fn public_api_key_rule() {
    let auth = rules(vec![only(AuthStrategy::Public, &[Read])]);
    assert!(auth.allows(&Caller::api_key(), Read, Some("alice")));
    assert!(!auth.allows(&Caller::api_key(), Create, None));
    assert!(!auth.allows(&Caller::user("alice", &[]), Read, Some("alice")), "a user token is not an API key");
    assert!(auth.sees_all(&Caller::api_key(), Read));
}

#[test]
fn private_rule_grants_every_row_to_any_signed_in_user() {
    let auth = rules(vec![only(AuthStrategy::Private, &[Read])]);
    let bob = Caller::user("bob", &[]);
    assert!(auth.allows(&bob, Read, Some("alice")));
    assert!(!auth.allows(&bob, Update, Some("bob")));
    assert!(!auth.allows(&Caller::api_key(), Read, None));
    assert!(auth.sees_all(&bob, Read));
}

#[test]
fn rules_add_up() {
    // The example schema's rules: owners do everything to their notes, admins to all, API keys read.
    let auth = rules(vec![
        AuthRule::new(AuthStrategy::Owner),
        AuthRule::new(AuthStrategy::Groups(vec!["admin".into()])),
        only(AuthStrategy::Public, &[Read]),
    ]);
    let alice = Caller::user("alice", &[]);
    let admin = Caller::user("root", &["admin"]);
    let key = Caller::api_key();
    assert!(auth.allows(&alice, Update, Some("alice")) && !auth.allows(&alice, Update, Some("bob")));
    assert!(auth.allows(&admin, Delete, Some("bob")) && auth.allows(&admin, Create, None));
    assert!(auth.allows(&key, Read, Some("bob")) && !auth.allows(&key, Update, Some("bob")));
    assert!(!auth.sees_all(&alice, Read), "alice's list needs an owner filter");
    assert!(auth.sees_all(&admin, Read) && auth.sees_all(&key, Read));
    assert!(!auth.sees_all(&key, Delete));
}

#[test]
fn a_caller_with_both_a_user_and_an_api_key_gets_both() {
    let auth = rules(vec![only(AuthStrategy::Owner, &[Update]), only(AuthStrategy::Public, &[Read])]);
    let both = Caller { api_key: true, ..Caller::user("alice", &[]) };
    assert!(auth.allows(&both, Read, Some("bob")));
    assert!(auth.allows(&both, Update, Some("alice")));
    assert!(!auth.allows(&both, Update, Some("bob")));
}

#[test]
fn operations_have_their_sdl_names() {
    let names: Vec<String> = Operation::ALL.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["create", "read", "update", "delete"]);
    assert_eq!("update".parse::<Operation>(), Ok(Update));
    assert!("list".parse::<Operation>().is_err());
}
