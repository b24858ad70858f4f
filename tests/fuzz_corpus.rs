//! The fuzz corpus (`fuzz/corpus/<target>/`) replayed as ordinary stable tests, through the same entry points as the
//! cargo-fuzz targets: no panic, no internal error, each input handled in bounded time.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use subsignal_server::fuzzing;

/// Generous: the slowest seed takes tens of milliseconds in a debug build.
const BOUND: Duration = Duration::from_secs(5);

fn corpus(target: &str) -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the {target} corpus is empty");
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("corpus file");
            (path.file_name().unwrap().to_string_lossy().into_owned(), String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_message_corpus_replays_without_panic_or_internal_error() {
    let dir = tempfile::tempdir().unwrap();
    let app = fuzzing::state(dir.path()).await;
    for (name, input) in corpus("ws_message") {
        let _ = fuzzing::decode(&input);
        let started = Instant::now();
        let sent = tokio::time::timeout(BOUND, fuzzing::ws_session(&app, &input, Duration::from_millis(50)))
            .await
            .unwrap_or_else(|_| panic!("{name}: not handled within {BOUND:?}"));
        let took = started.elapsed();
        assert!(!sent.iter().any(|s| s.contains("\"INTERNAL\"") || s.contains("close 4500")), "{name}: {sent:?}");
        let last = sent.last().map(|s| s.chars().take(120).collect::<String>());
        println!("{name}: {} bytes in {took:?}, server sent {} frames, last {last:?}", input.len(), sent.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_document_corpus_replays_without_panic_or_internal_error() {
    let dir = tempfile::tempdir().unwrap();
    let app = fuzzing::state(dir.path()).await;
    for (name, input) in corpus("graphql_document") {
        let started = Instant::now();
        let response = tokio::time::timeout(BOUND, fuzzing::graphql(&app.schema, &input))
            .await
            .unwrap_or_else(|_| panic!("{name}: not handled within {BOUND:?}"));
        let took = started.elapsed();
        let body = serde_json::to_string(&response).unwrap();
        assert!(!body.contains("\"INTERNAL\""), "{name}: {body}");
        println!("{name}: {} bytes in {took:?}: {}", input.len(), &body[..body.len().min(160)]);
    }
}

/// The fuzz targets' own bodies (each target is one call to [`fuzzing::Harness`]) over both corpora, as libFuzzer
/// would call them: the targets are thereby compiled and run on stable, although CI cannot run cargo-fuzz.
#[test]
fn the_fuzz_targets_bodies_run_their_corpus() {
    let harness = fuzzing::Harness::get();
    for (name, input) in corpus("ws_message") {
        let sent = harness.ws_message(input.as_bytes());
        assert!(!sent.iter().any(|s| s.contains("\"INTERNAL\"") || s.contains("close 4500")), "{name}: {sent:?}");
    }
    for (name, input) in corpus("graphql_document") {
        let response = harness.graphql_document(input.as_bytes()).expect("the corpus is UTF-8");
        let body = serde_json::to_string(&response).unwrap();
        assert!(!body.contains("\"INTERNAL\""), "{name}: {body}");
    }
    std::fs::remove_dir_all(harness.dir()).ok();
}
