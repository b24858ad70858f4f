use crate::{lower_camel, pluralize, ModelNames};

#[test]
fn a_model_gets_amplifys_names() {
    let names = ModelNames::new("Note");
    let all = [
        &names.get,
        &names.list,
        &names.create,
        &names.update,
        &names.delete,
        &names.on_create,
        &names.on_update,
        &names.on_delete,
        &names.on_changed,
        &names.changes_since,
        &names.entity_field,
        &names.connection,
        &names.create_input,
        &names.update_input,
        &names.delete_input,
        &names.change,
        &names.change_page,
        &names.filter_input,
    ];
    assert_eq!(
        all,
        [
            "getNote",
            "listNotes",
            "createNote",
            "updateNote",
            "deleteNote",
            "onCreateNote",
            "onUpdateNote",
            "onDeleteNote",
            "onNoteChanged",
            "noteChangesSince",
            "note",
            "NoteConnection",
            "CreateNoteInput",
            "UpdateNoteInput",
            "DeleteNoteInput",
            "NoteChange",
            "NoteChangePage",
            "ModelNoteFilterInput",
        ]
    );
}

#[test]
fn two_word_models() {
    let names = ModelNames::new("OrderItem");
    assert_eq!(
        [&names.list, &names.entity_field, &names.changes_since, &names.on_changed],
        ["listOrderItems", "orderItem", "orderItemChangesSince", "onOrderItemChanged"]
    );
}

#[test]
fn list_names_use_regular_english_plurals() {
    for (model, list) in [
        ("Category", "listCategories"),
        ("Box", "listBoxes"),
        ("Status", "listStatuses"),
        ("Quiz", "listQuizes"),
        ("Match", "listMatches"),
        ("Wish", "listWishes"),
        ("Day", "listDays"),
        ("Key", "listKeys"),
        ("Note", "listNotes"),
    ] {
        assert_eq!(ModelNames::new(model).list, list);
    }
    assert_eq!(pluralize("city"), "cities");
}

#[test]
fn lower_camel_case_lowers_a_leading_acronym_whole() {
    assert_eq!(lower_camel("Note"), "note");
    assert_eq!(lower_camel("OrderItem"), "orderItem");
    assert_eq!(lower_camel("URLLink"), "urlLink");
    assert_eq!(lower_camel("ID"), "id");
    assert_eq!(lower_camel("note"), "note");
    assert_eq!(lower_camel(""), "");
}

#[test]
fn a_lower_case_type_name_still_gets_camel_case_fields() {
    let names = ModelNames::new("note");
    assert_eq!([&names.get, &names.list, &names.connection], ["getNote", "listNotes", "noteConnection"]);
}
