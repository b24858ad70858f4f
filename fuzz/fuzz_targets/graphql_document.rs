//! The GraphQL entry point: parse, document limits (nesting, aliases, directives, introspection), validation and
//! execution against the real schema. An input is a query, or a JSON request `{query, variables}`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use subsignal_server::fuzzing;

fuzz_target!(|data: &[u8]| {
    let harness = subsignal_fuzz::harness();
    if let Ok(text) = std::str::from_utf8(data) {
        harness.runtime.block_on(fuzzing::graphql(&harness.app.schema, text));
    }
});
