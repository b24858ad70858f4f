//! The graphql-transport-ws decoder and the server's connection machine: each input line is one text message on
//! one connection (auth with `{"type":"connection_init","payload":{"x-api-key":"fuzz-api-key-0001"}}`).
//! The body is `subsignal_server::fuzzing::Harness::ws_message`, which the stable tests run over the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;
use subsignal_server::fuzzing::Harness;

fuzz_target!(|data: &[u8]| {
    Harness::get().ws_message(data);
});
