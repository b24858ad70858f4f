use std::time::Duration;

use serde_json::json;
use subsignal_tests::{database_for, server_binary, Backend, ServerProcess};

async fn an_acknowledged_mutation_survives_kill_9(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let database = database_for(backend).await;
    // A restarted instance takes over the dead one's worker lease after it expires.
    let mut db_args = vec!["--worker-lease-ms", "1000"];
    db_args.extend(database.iter().flat_map(|url| ["--database", url.as_str()]));
    let first = [&["--step-delay-ms", "60000"][..], &db_args].concat();
    let server = ServerProcess::start(dir.path(), &first).await;
    let alice = server.client("alice").await;
    let order = alice.create_order("Durable", Some("d-1")).await;
    server.kill9().await;

    let server = ServerProcess::start(dir.path(), &db_args).await;
    let alice = server.client("alice").await;
    let got = alice.data("query($id: ID!) { getOrder(id: $id) { id customerName } }", json!({"id": order["id"]})).await;
    assert_eq!(got["getOrder"]["customerName"], "Durable");
    let log = alice.data("{ orderChangesSince(afterSeq: 0) { changes { seq op key } } }", json!({})).await;
    assert_eq!(log["orderChangesSince"]["changes"][0]["key"], order["id"]);
    // The idempotency record survived too.
    let again = alice.create_order("Durable", Some("d-1")).await;
    assert_eq!(again["id"], order["id"]);
    // And the worker, restarted, picks the order up from its checkpoint.
    let mut status = String::new();
    for _ in 0..100 {
        let got = alice.data("query($id: ID!) { getOrder(id: $id) { status } }", json!({"id": order["id"]})).await;
        status = got["getOrder"]["status"].as_str().unwrap().to_owned();
        if status == "SHIPPED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "SHIPPED");
}

/// Runs `subsignal serve` with `args` (the data folder in `SUBSIGNAL_DATA_DIR`), expects it to refuse to start, and
/// gives what it wrote to stderr.
fn refused_start(data_dir: &std::path::Path, args: &[&std::ffi::OsStr]) -> String {
    let out = std::process::Command::new(server_binary())
        .arg("serve")
        .args(args)
        .env("SUBSIGNAL_DATA_DIR", data_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_settings_are_refused_at_start_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let arg = std::ffi::OsStr::new;
    let stderr =
        refused_start(dir.path(), &[arg("--listen"), arg("127.0.0.1:0"), arg("--worker-parallelism"), arg("0")]);
    assert!(stderr.contains("worker-parallelism"), "{stderr}");

    std::fs::write(dir.path().join("bad.toml"), "step-dleay-ms = 5\n").unwrap();
    let stderr = refused_start(dir.path(), &[arg("--config"), dir.path().join("bad.toml").as_os_str()]);
    assert!(stderr.contains("step-dleay-ms"));

    let stderr = refused_start(
        dir.path(),
        &[arg("--listen"), arg("127.0.0.1:0"), arg("--database"), arg("mysql://localhost/x")],
    );
    assert!(stderr.contains("`database`") && stderr.contains("postgres://"), "{stderr}");

    let stderr = refused_start(dir.path(), &[arg("--listen"), arg("not-an-address")]);
    assert!(stderr.contains("--listen"));
}

#[test]
fn a_bad_schema_is_refused_at_start_with_every_problem_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("app.graphql");
    std::fs::write(
        &schema,
        "type Note @model @searchable {\n  title: String!\n}\n\ntype Tag @model {\n  id: ID!\n  at: Int @ttl\n}\n",
    )
    .unwrap();
    let stderr = refused_start(dir.path(), &[std::ffi::OsStr::new("--schema"), schema.as_os_str()]);
    let file = schema.display().to_string();
    for (line_column, what) in [("1:6", "id: ID!"), ("1:18", "searchable"), ("7:11", "AWSTimestamp")] {
        let expected = format!("{file}:{line_column}: ");
        let line = stderr.lines().find(|l| l.contains(&expected)).unwrap_or_else(|| panic!("{expected} in {stderr}"));
        assert!(line.contains(what), "{line}");
    }
}

#[test]
fn environment_variables_configure_the_server() {
    let out = std::process::Command::new(server_binary()).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["--listen", "--data-dir", "--step-delay-ms", "SUBSIGNAL_STEP_DELAY_MS", "--retention-secs"] {
        assert!(help.contains(needle), "help lacks {needle}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(server_binary())
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .env("SUBSIGNAL_RETENTION_SECS", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("retention-secs"));
}

subsignal_tests::on_both_backends!(an_acknowledged_mutation_survives_kill_9);
