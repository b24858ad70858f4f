//! The checked definitions that [`parse`](crate::parse) produces: models, enums, embedded object types and declared
//! subscriptions.

use std::fmt;

use crate::auth::AuthRules;
use crate::names::{self, ModelNames};
use crate::scalars::AwsScalar;

/// The name of the managed field holding the id of the user who created a row.
pub const OWNER_FIELD: &str = "owner";
/// The name of the managed field holding when a row was created.
pub const CREATED_AT_FIELD: &str = "createdAt";
/// The name of the managed field holding when a row was last written.
pub const UPDATED_AT_FIELD: &str = "updatedAt";
/// The name of the managed field holding a row's version, which starts at 1 and grows by one per write.
pub const VERSION_FIELD: &str = "version";
/// The names of the fields every model has and only the server writes, in the order they are listed.
pub const MANAGED_FIELDS: [&str; 4] = [OWNER_FIELD, CREATED_AT_FIELD, UPDATED_AT_FIELD, VERSION_FIELD];

/// A checked schema: everything an SDL file declares, with every reference resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSchema {
    /// The `@model` types, in declaration order.
    pub models: Vec<Model>,
    /// The enums, in declaration order.
    pub enums: Vec<EnumDef>,
    /// The object types without `@model`, stored as embedded JSON, in declaration order.
    pub objects: Vec<ObjectDef>,
    /// The fields of the user's `type Subscription`, in declaration order.
    pub subscriptions: Vec<DeclaredSubscription>,
}

impl ModelSchema {
    /// The model called `name`.
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The enum called `name`.
    pub fn enum_def(&self, name: &str) -> Option<&EnumDef> {
        self.enums.iter().find(|e| e.name == name)
    }

    /// The non-model object type called `name`.
    pub fn object(&self, name: &str) -> Option<&ObjectDef> {
        self.objects.iter().find(|o| o.name == name)
    }
}

/// A `@model` type: a table of rows the server stores, lists, changes and streams.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The type name, e.g. `Note`.
    pub name: String,
    /// The type's description, if the SDL gives one.
    pub description: Option<String>,
    /// The fields the user declared, in declaration order, including `id` but without the managed fields.
    pub fields: Vec<Field>,
    /// Who may do what; `[{allow: owner}]` when the type has no `@auth`.
    pub auth: AuthRules,
    /// The `@ttl` field: a nullable `AWSTimestamp` after which the server removes the row.
    pub ttl_field: Option<String>,
}

impl Model {
    /// The names Amplify generates for this model: operations, inputs and payload types.
    pub fn names(&self) -> ModelNames {
        ModelNames::new(&self.name)
    }

    /// The user field called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The fields every model has and only the server writes: `owner: String`, `createdAt: AWSDateTime!`,
    /// `updatedAt: AWSDateTime!` and `version: Int!`.
    pub fn managed_fields() -> Vec<Field> {
        vec![
            Field::managed(
                OWNER_FIELD,
                FieldType::named(BaseType::String, false),
                "The id of the user who created it.",
            ),
            Field::managed(
                CREATED_AT_FIELD,
                FieldType::named(BaseType::Aws(AwsScalar::DateTime), true),
                "When it was created.",
            ),
            Field::managed(
                UPDATED_AT_FIELD,
                FieldType::named(BaseType::Aws(AwsScalar::DateTime), true),
                "When it was last written.",
            ),
            Field::managed(VERSION_FIELD, FieldType::named(BaseType::Int, true), "1 when created, one more per write."),
        ]
    }

    /// The user fields followed by the managed fields: every field a row of this model has.
    pub fn all_fields(&self) -> Vec<Field> {
        let mut all = self.fields.clone();
        all.extend(Self::managed_fields());
        all
    }
}

/// A field of a model or of a non-model object type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field name, e.g. `title`.
    pub name: String,
    /// The field type, e.g. `String!`.
    pub ty: FieldType,
    /// The field's description, if the SDL gives one.
    pub description: Option<String>,
}

impl Field {
    fn managed(name: &str, ty: FieldType, description: &str) -> Self {
        Field { name: name.to_owned(), ty, description: Some(description.to_owned()) }
    }
}

/// The type of a field: a base type, optionally in a list, with its nullability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldType {
    /// The named type, or the item type of a list.
    pub base: BaseType,
    /// Whether the field itself (the list, for a list field) is non-null.
    pub non_null: bool,
    /// `Some(item_non_null)` for a list field, `None` otherwise.
    pub list: Option<bool>,
}

impl FieldType {
    /// A type that is not a list.
    pub fn named(base: BaseType, non_null: bool) -> Self {
        FieldType { base, non_null, list: None }
    }

    /// Whether values of this type are lists.
    pub fn is_list(&self) -> bool {
        self.list.is_some()
    }
}

impl fmt::Display for FieldType {
    /// Writes the type in SDL notation, e.g. `[Tag!]` or `String!`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bang = |non_null: bool| if non_null { "!" } else { "" };
        match self.list {
            Some(item_non_null) => write!(f, "[{}{}]{}", self.base, bang(item_non_null), bang(self.non_null)),
            None => write!(f, "{}{}", self.base, bang(self.non_null)),
        }
    }
}

/// A named type a field can have.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BaseType {
    /// `ID`: a string key (JSON input may also give an integer).
    Id,
    /// `String`.
    String,
    /// `Int`: a 32-bit signed integer.
    Int,
    /// `Float`: a finite double.
    Float,
    /// `Boolean`.
    Boolean,
    /// One of AppSync's `AWS…` scalars.
    Aws(AwsScalar),
    /// A declared enum, by name.
    Enum(String),
    /// A declared non-model object type, by name; its values are embedded JSON objects.
    Object(String),
}

impl BaseType {
    /// The built-in scalar called `name` (`ID`, `String`, `Int`, `Float`, `Boolean` or an `AWS…` scalar).
    pub fn scalar(name: &str) -> Option<BaseType> {
        Some(match name {
            "ID" => BaseType::Id,
            "String" => BaseType::String,
            "Int" => BaseType::Int,
            "Float" => BaseType::Float,
            "Boolean" => BaseType::Boolean,
            _ => BaseType::Aws(AwsScalar::from_name(name)?),
        })
    }

    /// The type's name as the SDL spells it.
    pub fn name(&self) -> &str {
        match self {
            BaseType::Id => "ID",
            BaseType::String => "String",
            BaseType::Int => "Int",
            BaseType::Float => "Float",
            BaseType::Boolean => "Boolean",
            BaseType::Aws(scalar) => scalar.name(),
            BaseType::Enum(name) | BaseType::Object(name) => name,
        }
    }

    /// Whether values are leaves (scalars and enums) rather than embedded objects.
    pub fn is_leaf(&self) -> bool {
        !matches!(self, BaseType::Object(_))
    }
}

impl fmt::Display for BaseType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A declared enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumDef {
    /// The enum name, e.g. `Priority`.
    pub name: String,
    /// The enum's description, if the SDL gives one.
    pub description: Option<String>,
    /// The values, in declaration order.
    pub values: Vec<String>,
}

/// An object type without `@model`: its values are stored as JSON inside a model's row, and clients write them
/// through a generated input type (`Tag` → `TagInput`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectDef {
    /// The type name, e.g. `Tag`.
    pub name: String,
    /// The type's description, if the SDL gives one.
    pub description: Option<String>,
    /// The fields, in declaration order.
    pub fields: Vec<Field>,
}

impl ObjectDef {
    /// The name of the generated input type, e.g. `TagInput`.
    pub fn input_name(&self) -> String {
        names::object_input_name(&self.name)
    }

    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A field of the user's `type Subscription`: a stream of one model's rows as the named mutations write them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredSubscription {
    /// The field name, e.g. `onNoteShared`.
    pub name: String,
    /// The arguments; each filters events by the result's field of the same name (AppSync argument filtering).
    pub args: Vec<(String, FieldType)>,
    /// The model the subscription returns.
    pub model: String,
    /// The generated mutations whose results it delivers, e.g. `createNote`.
    pub mutations: Vec<String>,
}
