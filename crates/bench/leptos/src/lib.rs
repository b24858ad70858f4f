//! Benchmark 4's Leptos entry (`cargo xtask bench`): the store-bench page drives this module as it drives the npm
//! package and the peers, but here every event goes through [`subsignal_leptos::use_live_collection`], so its cost
//! includes decoding the row into a typed struct and setting that row's signal, with one effect per row subscribed to
//! it (as a rendered row would be).
//!
//! Built by `cargo xtask bench` with wasm-bindgen into `target/bench/leptos/`; `crates/bench/browser/run.mjs` serves
//! it under `/leptos/`.
#![cfg(target_arch = "wasm32")]

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use subsignal_leptos::{use_live_collection, BrowserStore, CollectionConfig, LiveCollection, StoreOptions};
use wasm_bindgen::prelude::*;

/// The bench's row type: the fields of the page's `Note`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Note {
    id: String,
    title: String,
    body: String,
    color: String,
    updated_at: String,
    version: i64,
}

/// One store with one live collection of notes, its row signals, and an effect per row.
#[wasm_bindgen]
pub struct LeptosBench {
    store: BrowserStore,
    notes: LiveCollection<Note>,
    owner: Owner,
    /// Rows that already have their effect.
    watched: RefCell<HashSet<String>>,
    /// How many times a row effect ran.
    effect_runs: Rc<Cell<u64>>,
}

#[wasm_bindgen]
impl LeptosBench {
    /// A store against `http_url`/`ws_url` keeping `collection` (a `CollectionConfig` object) live.
    #[wasm_bindgen(constructor)]
    pub fn new(http_url: String, ws_url: String, collection: JsValue) -> Result<LeptosBench, JsError> {
        let config: CollectionConfig = serde_wasm_bindgen::from_value(collection)
            .map_err(|e| JsError::new(&format!("invalid CollectionConfig: {e}")))?;
        // Effects run on the executor; a second call (a second instance) finds it started.
        let _ = any_spawner::Executor::init_wasm_bindgen();
        let store = BrowserStore::new(StoreOptions::new(http_url, ws_url));
        let owner = Owner::new();
        let notes = owner.with(|| use_live_collection::<Note>(&store, config));
        store.connect();
        Ok(LeptosBench { store, notes, owner, watched: RefCell::default(), effect_runs: Rc::default() })
    }

    /// Whether the collection's snapshot arrived and its subscription runs.
    #[wasm_bindgen(js_name = isLive)]
    pub fn is_live(&self, collection: &str) -> bool {
        self.store.with_collection(collection, |c| c.is_some_and(|c| c.is_live()))
    }

    /// Gives every row that has none yet an effect reading its signal, as a rendered row would; returns how many
    /// effects it made (each runs once soon after). Called by the page before the update phase, untimed.
    #[wasm_bindgen(js_name = watchRows)]
    pub fn watch_rows(&self) -> u32 {
        let mut made = 0;
        let mut watched = self.watched.borrow_mut();
        self.owner.with(|| {
            for key in self.notes.keys().get_untracked() {
                if watched.contains(&key) {
                    continue;
                }
                if let Some(row) = self.notes.row(&key) {
                    let runs = Rc::clone(&self.effect_runs);
                    Effect::new(move |_| {
                        row.with(|note| std::hint::black_box(note.version));
                        runs.set(runs.get() + 1);
                    });
                    made += 1;
                }
                watched.insert(key);
            }
        });
        made
    }

    /// The version the row's signal holds, or `undefined`.
    pub fn version(&self, key: &str) -> Option<f64> {
        self.notes.row(key).map(|row| row.with_untracked(|note| note.version as f64))
    }

    /// The row as its signal holds it, or `undefined`.
    pub fn row(&self, key: &str) -> JsValue {
        let note = self.notes.get_untracked(key);
        note.and_then(|n| serde_wasm_bindgen::to_value(&n).ok()).unwrap_or(JsValue::UNDEFINED)
    }

    /// The number of keys in the key-list signal.
    pub fn size(&self) -> usize {
        self.notes.keys().with_untracked(Vec::len)
    }

    /// How many times a row effect ran.
    #[wasm_bindgen(js_name = effectRuns)]
    pub fn effect_runs(&self) -> f64 {
        self.effect_runs.get() as f64
    }

    /// The collection's counters (`applied`, `gaps`, `duplicates`, …).
    pub fn stats(&self, collection: &str) -> JsValue {
        let stats = self.store.with_collection(collection, |c| c.map(|c| c.stats()));
        serde_wasm_bindgen::to_value(&stats).unwrap_or(JsValue::UNDEFINED)
    }

    /// Disconnects and drops the signals and effects.
    pub fn dispose(self) {
        self.store.disconnect();
        self.owner.cleanup();
    }
}
