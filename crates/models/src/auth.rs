//! `@auth` rules and what they allow, with Amplify's semantics.
//!
//! Rules add up: a caller may do an operation when any rule grants it. A model without `@auth` behaves as
//! `@auth(rules: [{allow: owner}])`: signed-in users create rows and read, update and delete their own.

use std::fmt;
use std::str::FromStr;

/// One of the four operations a rule can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Creating a row.
    Create,
    /// Reading rows: get, list, subscriptions and the change feed.
    Read,
    /// Updating a row.
    Update,
    /// Deleting a row.
    Delete,
}

impl Operation {
    /// All four operations, the default of every rule.
    pub const ALL: [Operation; 4] = [Operation::Create, Operation::Read, Operation::Update, Operation::Delete];

    /// The name used in `@auth(rules: [{operations: [...]}])`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Read => "read",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Operation {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Operation::ALL.into_iter().find(|op| op.as_str() == s).ok_or(())
    }
}

/// Who is calling, as the server's authentication established it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The signed-in user's id (the JWT subject), or `None` for a caller without a user token.
    pub owner: Option<String>,
    /// The groups the signed-in user belongs to.
    pub groups: Vec<String>,
    /// Whether the caller presented a valid API key.
    pub api_key: bool,
}

impl Caller {
    /// A signed-in user in `groups`.
    pub fn user(id: impl Into<String>, groups: &[&str]) -> Self {
        Caller { owner: Some(id.into()), groups: groups.iter().map(|g| (*g).to_owned()).collect(), api_key: false }
    }

    /// A caller with an API key and no user.
    pub fn api_key() -> Self {
        Caller { owner: None, groups: Vec::new(), api_key: true }
    }
}

/// Whom a rule admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStrategy {
    /// `{allow: owner}`: signed-in users, on the rows they own.
    Owner,
    /// `{allow: groups, groups: [...]}`: members of any listed group, on every row.
    Groups(Vec<String>),
    /// `{allow: public, provider: apiKey}`: callers with an API key, on every row.
    Public,
    /// `{allow: private}`: any signed-in user, on every row.
    Private,
}

/// One `@auth` rule: a strategy and the operations it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRule {
    /// Whom the rule admits.
    pub strategy: AuthStrategy,
    /// What they may do; all four operations when the rule does not say.
    pub operations: Vec<Operation>,
}

impl AuthRule {
    /// A rule granting every operation.
    pub fn new(strategy: AuthStrategy) -> Self {
        AuthRule { strategy, operations: Operation::ALL.to_vec() }
    }

    /// Whether the rule lets `who` do `op` on every row, regardless of its owner.
    fn grants_all_rows(&self, who: &Caller, op: Operation) -> bool {
        self.operations.contains(&op)
            && match &self.strategy {
                AuthStrategy::Owner => false,
                AuthStrategy::Groups(groups) => who.groups.iter().any(|g| groups.contains(g)),
                AuthStrategy::Public => who.api_key,
                AuthStrategy::Private => who.owner.is_some(),
            }
    }

    /// Whether the rule lets `who` do `op` on a row owned by `row_owner` (for create: the row `who` will own).
    fn grants(&self, who: &Caller, op: Operation, row_owner: Option<&str>) -> bool {
        if self.grants_all_rows(who, op) {
            return true;
        }
        let owner_rule = self.strategy == AuthStrategy::Owner && self.operations.contains(&op);
        match (&who.owner, op) {
            (Some(_), Operation::Create) => owner_rule,
            (Some(me), _) => owner_rule && row_owner == Some(me.as_str()),
            (None, _) => false,
        }
    }
}

/// The `@auth` rules of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRules {
    /// The rules, in declaration order.
    pub rules: Vec<AuthRule>,
}

impl Default for AuthRules {
    /// The rules of a model without `@auth`: `[{allow: owner}]`.
    fn default() -> Self {
        AuthRules { rules: vec![AuthRule::new(AuthStrategy::Owner)] }
    }
}

impl AuthRules {
    /// Whether `who` may do `op` on a row owned by `row_owner`. For [`Operation::Create`] pass `None`: an owner
    /// rule lets any signed-in user create, and the server sets the new row's owner to them.
    pub fn allows(&self, who: &Caller, op: Operation, row_owner: Option<&str>) -> bool {
        self.rules.iter().any(|rule| rule.grants(who, op, row_owner))
    }

    /// Whether a rule other than an owner rule lets `who` do `op` on every row. When it does not, reads must be
    /// limited to the rows `who` owns (and `who` may read nothing if no owner rule grants reads either).
    pub fn sees_all(&self, who: &Caller, op: Operation) -> bool {
        self.rules.iter().any(|rule| rule.grants_all_rows(who, op))
    }

    /// Whether any rule is an owner rule, so that a row's `owner` decides who may touch it.
    pub fn has_owner_rule(&self) -> bool {
        self.rules.iter().any(|rule| rule.strategy == AuthStrategy::Owner)
    }
}
