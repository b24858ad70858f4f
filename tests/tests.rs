//! End-to-end tests through the real router, real sockets and real processes, each on SQLite (`…::sqlite::…`) and
//! PostgreSQL (`…::postgres::…`). Run with `cargo xtask test`, which provides the PostgreSQL; plain
//! `cargo test -p subsignal-tests` runs the SQLite half unless `SUBSIGNAL_TEST_POSTGRES_URL` is set.

// Queries and mutations over HTTP: create, read, page, edit, cancel, validation, conflicts, idempotent replay.
mod http_api;
// GraphQL over HTTP as its spec says: Accept negotiation, status codes, GET queries, 405, GraphiQL for browsers.
mod graphql_http;
// graphql-transport-ws ordering and close codes with hand-written frames.
mod ws_protocol;
// The AppSync real-time protocol on /graphql/realtime: every message type and error, API key and JWT, isolation.
mod appsync;
// Security cases: RS256/JWKS (a file, and a URL whose keys rotate) beside HS256 and API keys, refused and expiring
// tokens, owner isolation under attack, document limits, frame/rate/connection/header limits, server memory under
// floods.
mod security;
// The fuzz corpus (fuzz/corpus) replayed through the fuzz targets' entry points.
mod fuzz_corpus;
// The API generated from an SDL file: every generated operation, AppSync scalars, @auth rules, replay across models,
// TTL, @aws_subscribe filters.
mod models;
// Subscriptions: owner isolation, worker steps in order, TTL expiry, afterSeq replay, retention.
mod subscriptions;
// Stream workers: retries, dead letters, parallel keys.
mod workers;
// The server as a process: settings, kill -9 durability.
mod process;
// Several instances on one PostgreSQL: fan-out, resume after kill -9, concurrent writers, leases, reapers.
mod instances;
// Operations: stop signals and draining, health and readiness, metrics, JSON logs, CORS, trusted proxies, migrate and
// check-config.
mod operations;
// The network simulator in front of the real server: HTTP and WebSocket through it, offline and resume.
mod netsim;
// Faults under load, seeded (SUBSIGNAL_FAULT_SEED): kill -9 of the server, SIGTERM of one of two instances,
// PostgreSQL restarted, the worker killed mid-batch, a full disk, a read-only database; store clients write
// throughout and end equal to the server, every seq applied once.
mod faults;
