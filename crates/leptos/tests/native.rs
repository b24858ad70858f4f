//! Outside the browser (a Leptos app rendered on a server, or this native test) the adapter builds and its store is
//! inert: it connects to nothing, and every signal shows the state a page renders before data arrives.
#![cfg(not(target_arch = "wasm32"))]

use leptos::prelude::*;
use serde_json::Value;
use subsignal_leptos::{
    provide_store, use_live_collection, use_status, use_store, use_view, BrowserStore, CollectionConfig,
    ConnectionStatus, StoreOptions, ViewSpec,
};

#[test]
fn natively_the_store_is_inert_and_the_signals_show_the_loading_state() {
    let owner = Owner::new();
    owner.set();
    provide_store(BrowserStore::new(StoreOptions::new("http://server/graphql", "ws://server/graphql").token("t")));
    let store = use_store();
    let orders = use_live_collection::<Value>(
        &store,
        CollectionConfig::new("orders")
            .subscription(
                "subscription { onOrderChanged { seq prevSeq op key version order { id } } }",
                "onOrderChanged",
                "order",
            )
            .snapshot("query { listOrders { items { id } nextToken seq } }", "listOrders"),
    );
    let open = use_view::<Value>(&store, "orders", ViewSpec::new().limit(10)).expect("the collection is watched");
    let status = use_status(&store);
    store.connect();
    assert!(!orders.loaded().get_untracked() && orders.state().get_untracked().stale);
    assert!(orders.keys().get_untracked().is_empty() && open.keys().get_untracked().is_empty());
    assert!(!open.loaded().get_untracked());
    // The socket could not open; the retry's timer never fires here, so nothing more happens.
    assert!(matches!(store.status().connection, ConnectionStatus::Reconnecting { .. }), "{:?}", store.status());
    assert!(!matches!(status.connection.get_untracked(), ConnectionStatus::Live));
    owner.cleanup();
}
