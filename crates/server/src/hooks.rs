//! Hooks: custom logic for a model, in Rust, for what SDL cannot say — AppSync's resolvers and Lambda's stream
//! consumers. A model's hooks check and complete its writes inside the one write path, and may add mutations; a
//! stream worker ([`crate::workers::run_consumer`]) consumes the change log and writes back through the same path.
//! The order service (`crate::orders`) is the worked example.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dynamic::Field;
use serde_json::{Map, Value};
use subsignal_models::{InputMode, Model};
use subsignal_protocol::FieldError;

use crate::auth::Identity;
use crate::storage::StorageError;

/// A JSON object: an input, or a row's image.
pub type Row = Map<String, Value>;

/// Custom logic for one model. Every method has a default that adds nothing.
pub trait ModelHooks: Send + Sync + 'static {
    /// Fields the hooks compute, left out of the generated input of `mode` (a client sending one gets
    /// `UNKNOWN_FIELD`): [`ModelHooks::before_create`] sets them on a create, [`ModelHooks::before_update`] keeps
    /// them right on an update.
    fn computed_fields(&self, mode: InputMode) -> &'static [&'static str] {
        let _ = mode;
        &[]
    }

    /// Field-level checks of an input beyond its types, e.g. lengths and ranges. They run with the generated
    /// checks; where both find a field wrong, the hook's error is the one reported.
    fn check_input(&self, mode: InputMode, input: &Row) -> Vec<FieldError> {
        let _ = (mode, input);
        Vec::new()
    }

    /// Completes a new row before it is written: `row` holds the checked input, the id and the managed fields.
    fn before_create(&self, who: &Identity, row: &mut Row) -> Result<(), StorageError> {
        let _ = (who, row);
        Ok(())
    }

    /// Checks an update before it is written: `current` is the stored row, `changes` the checked input (without the
    /// id), and `row` the row to be written (the current one with the changes, the next version and `updatedAt`),
    /// which the hook may complete.
    fn before_update(&self, who: &Identity, current: &Row, changes: &Row, row: &mut Row) -> Result<(), StorageError> {
        let _ = (who, current, changes, row);
        Ok(())
    }

    /// Mutations of the model's own (`cancelOrder`), added to the generated schema.
    fn mutations(&self, model: &Arc<Model>) -> Vec<Field> {
        let _ = model;
        Vec::new()
    }
}

/// The hooks of each model, by model name.
#[derive(Clone, Default)]
pub struct Hooks(HashMap<String, Arc<dyn ModelHooks>>);

impl Hooks {
    /// Registers `hooks` for the model called `model`.
    pub fn with(mut self, model: &str, hooks: impl ModelHooks) -> Self {
        self.0.insert(model.to_owned(), Arc::new(hooks));
        self
    }

    /// The hooks of `model`, or none.
    pub fn of(&self, model: &str) -> Option<Arc<dyn ModelHooks>> {
        self.0.get(model).cloned()
    }
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// The hook's errors, then the generated checks' errors on other fields: each wrong field once, in the hook's words
/// where it has any.
pub fn merge_errors(hook: Vec<FieldError>, generated: Vec<FieldError>) -> Vec<FieldError> {
    let mut errors = hook;
    for error in generated {
        if !errors.iter().any(|e| e.field == error.field || error.field.starts_with(&format!("{}[", e.field))) {
            errors.push(error);
        }
    }
    errors
}
