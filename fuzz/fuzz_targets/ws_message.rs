//! The graphql-transport-ws decoder and the server's connection machine: each input line is one text message on
//! one connection (auth with `{"type":"connection_init","payload":{"x-api-key":"fuzz-api-key-0001"}}`).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use subsignal_server::fuzzing;

fuzz_target!(|data: &[u8]| {
    let harness = subsignal_fuzz::harness();
    let text = String::from_utf8_lossy(data);
    let _ = fuzzing::decode(&text);
    harness.runtime.block_on(fuzzing::ws_session(&harness.app, &text, Duration::from_millis(2)));
});
