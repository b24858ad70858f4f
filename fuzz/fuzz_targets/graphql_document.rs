//! The GraphQL entry point: parse, document limits (nesting, aliases, directives, introspection), validation and
//! execution against the real schema. An input is a query, or a JSON request `{query, variables}`.
//! The body is `subsignal_server::fuzzing::Harness::graphql_document`, which the stable tests run over the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;
use subsignal_server::fuzzing::Harness;

fuzz_target!(|data: &[u8]| {
    Harness::get().graphql_document(data);
});
