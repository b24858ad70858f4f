//! The GraphQL entry point: parse, document limits (nesting, aliases, directives, introspection), validation and
//! execution against the real schema. An input is a query, or a JSON request `{query, variables}`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use subsignal_server::fuzzing;

struct Harness {
    runtime: tokio::runtime::Runtime,
    app: subsignal_server::AppState,
    _dir: tempfile::TempDir,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let harness = HARNESS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let app = runtime.block_on(fuzzing::state(dir.path()));
        Harness { runtime, app, _dir: dir }
    });
    if let Ok(text) = std::str::from_utf8(data) {
        harness.runtime.block_on(fuzzing::graphql(&harness.app.schema, text));
    }
});
