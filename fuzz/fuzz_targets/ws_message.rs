//! The graphql-transport-ws decoder and the server's connection machine: each input line is one text message on
//! one connection (auth with `{"type":"connection_init","payload":{"x-api-key":"fuzz-api-key-0001"}}`).
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

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
    let text = String::from_utf8_lossy(data);
    let _ = fuzzing::decode(&text);
    harness.runtime.block_on(fuzzing::ws_session(&harness.app, &text, Duration::from_millis(2)));
});
