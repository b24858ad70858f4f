//! End-to-end tests; run with `cargo xtask test` (or `cargo test -p subsignal-tests`).
