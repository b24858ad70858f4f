//! What both fuzz targets share: a server state on a temporary SQLite database and a runtime to drive it, made once
//! per fuzzing process.

use std::sync::OnceLock;

use subsignal_server::fuzzing;

/// The server state the targets drive.
pub struct Harness {
    /// Runs the server's async code.
    pub runtime: tokio::runtime::Runtime,
    /// The state, as `subsignal serve` would have it (see `subsignal_server::fuzzing::state`).
    pub app: subsignal_server::AppState,
    _dir: tempfile::TempDir,
}

/// The process's harness, made on first use.
pub fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let app = runtime.block_on(fuzzing::state(dir.path()));
        Harness { runtime, app, _dir: dir }
    })
}
