//! The names Amplify's GraphQL transformer generates for a model, and the naming rules behind them.

/// The generated names of one model's operations and types, e.g. for `Note`: `getNote`, `listNotes`,
/// `CreateNoteInput`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelNames {
    /// The query that reads one row by id: `getNote`.
    pub get: String,
    /// The query that lists rows: `listNotes`.
    pub list: String,
    /// The mutation that creates a row: `createNote`.
    pub create: String,
    /// The mutation that updates a row: `updateNote`.
    pub update: String,
    /// The mutation that deletes a row: `deleteNote`.
    pub delete: String,
    /// The subscription to created rows: `onCreateNote`.
    pub on_create: String,
    /// The subscription to updated rows: `onUpdateNote`.
    pub on_update: String,
    /// The subscription to deleted rows: `onDeleteNote`.
    pub on_delete: String,
    /// The subscription to every change, replayed from a cursor: `onNoteChanged`.
    pub on_changed: String,
    /// The query that pages through changes after a cursor: `noteChangesSince`.
    pub changes_since: String,
    /// The field of the change envelope that holds the row: `note` (`orderItem` for `OrderItem`).
    pub entity_field: String,
    /// The list query's result type: `NoteConnection`.
    pub connection: String,
    /// The create mutation's input: `CreateNoteInput`.
    pub create_input: String,
    /// The update mutation's input: `UpdateNoteInput`.
    pub update_input: String,
    /// The delete mutation's input: `DeleteNoteInput`.
    pub delete_input: String,
    /// The change envelope type: `NoteChange`.
    pub change: String,
    /// The result type of the changes-since query: `NoteChangePage`.
    pub change_page: String,
    /// The list query's filter input: `ModelNoteFilterInput`.
    pub filter_input: String,
}

impl ModelNames {
    /// The names for the model type called `type_name`.
    pub fn new(type_name: &str) -> Self {
        let upper = upper_first(type_name);
        let entity = lower_camel(type_name);
        ModelNames {
            get: format!("get{upper}"),
            list: format!("list{}", pluralize(&upper)),
            create: format!("create{upper}"),
            update: format!("update{upper}"),
            delete: format!("delete{upper}"),
            on_create: format!("onCreate{upper}"),
            on_update: format!("onUpdate{upper}"),
            on_delete: format!("onDelete{upper}"),
            on_changed: format!("on{upper}Changed"),
            changes_since: format!("{entity}ChangesSince"),
            entity_field: entity,
            connection: format!("{type_name}Connection"),
            create_input: format!("Create{type_name}Input"),
            update_input: format!("Update{type_name}Input"),
            delete_input: format!("Delete{type_name}Input"),
            change: format!("{type_name}Change"),
            change_page: format!("{type_name}ChangePage"),
            filter_input: format!("Model{type_name}FilterInput"),
        }
    }

    /// The generated root fields (queries, mutations and subscriptions), for collision checks.
    pub fn root_fields(&self) -> [&str; 10] {
        [
            &self.get,
            &self.list,
            &self.create,
            &self.update,
            &self.delete,
            &self.on_create,
            &self.on_update,
            &self.on_delete,
            &self.on_changed,
            &self.changes_since,
        ]
    }

    /// The generated type names, for collision checks.
    pub fn types(&self) -> [&str; 7] {
        [
            &self.connection,
            &self.create_input,
            &self.update_input,
            &self.delete_input,
            &self.change,
            &self.change_page,
            &self.filter_input,
        ]
    }
}

/// The name of the input type generated for a non-model object type: `Tag` → `TagInput`.
pub fn object_input_name(type_name: &str) -> String {
    format!("{type_name}Input")
}

/// The English plural of `word` by the regular rules: a consonant and `y` become `ies` (`Category` →
/// `Categories`), words ending in `s`, `x`, `z`, `ch` or `sh` take `es` (`Box` → `Boxes`, `Status` →
/// `Statuses`), and every other word takes `s`. Irregular plurals (`Person` → `People`) are not handled.
pub fn pluralize(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    if let Some(stem) = word.strip_suffix(['y', 'Y']) {
        let before = stem.chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphabetic() && !"aeiouAEIOU".contains(c)) {
            return format!("{stem}ies");
        }
    }
    if ["s", "x", "z", "ch", "sh"].iter().any(|end| lower.ends_with(end)) {
        return format!("{word}es");
    }
    format!("{word}s")
}

/// `name` with its first letter upper-cased: `note` → `Note`.
pub fn upper_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The lowerCamelCase form of a type name: `Note` → `note`, `OrderItem` → `orderItem`, and a leading acronym is
/// lowered whole: `URLLink` → `urlLink`, `ID` → `id`.
pub fn lower_camel(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let run = chars.iter().take_while(|c| c.is_uppercase()).count();
    // In `URLLink` the last capital of the run starts the next word, unless the run is the whole name.
    let lower_count = if run > 1 && run < chars.len() && chars[run].is_lowercase() { run - 1 } else { run.max(1) };
    chars
        .iter()
        .enumerate()
        .flat_map(|(i, c)| if i < lower_count { c.to_lowercase().collect::<Vec<_>>() } else { vec![*c] })
        .collect()
}
