//! End-to-end tests through the real router, real sockets and real processes. Run with `cargo xtask test` (or
//! `cargo test -p subsignal-tests`).

// Queries and mutations over HTTP: create, read, page, edit, cancel, validation, conflicts, idempotent replay.
mod http_api;
// graphql-transport-ws ordering and close codes with hand-written frames.
mod ws_protocol;
// Subscriptions: owner isolation, worker steps in order, TTL expiry, afterSeq replay, retention.
mod subscriptions;
// Stream workers: retries, dead letters, parallel keys.
mod workers;
// The server as a process: settings, kill -9 durability.
mod process;
