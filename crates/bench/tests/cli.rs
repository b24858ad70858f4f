//! `subsignal-bench` end to end on the raw echo server alone (no subsignal, no Node): a quick run measures it, saves
//! its figures and writes the report; `report` rewrites that report from the saved figures. (Also what makes
//! `cargo test` build the binary that `cargo xtask test`'s quick bench then runs.)

use std::path::Path;
use std::process::Command;

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_subsignal-bench"))
}

#[test]
fn a_quick_run_on_the_echo_server_measures_it_and_report_rewrites_the_same_tables() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (json, out) = (dir.path().join("servers.json"), dir.path().join("BENCHMARKS.md"));
    let run = bench()
        .args(["run", "--quick", "--servers", "echo", "--subsignal", env!("CARGO_BIN_EXE_subsignal-bench")])
        .arg("--schema")
        .arg(repo.join("examples/notes/schema.graphql"))
        .arg("--node-peer")
        .arg(repo.join("crates/bench/node-peer"))
        .arg("--json")
        .arg(&json)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let echo = &saved["servers"][0];
    assert_eq!(echo["server"], "raw WebSocket echo", "{saved:#}");
    assert_eq!(echo["problems"], serde_json::json!([]), "{saved:#}");
    let crowd = &echo["crowds"][0];
    assert_eq!(crowd["subscribers"], 200);
    assert!(crowd["events_per_sec"].as_f64().is_some_and(|rate| rate > 0.0), "every burst arrived: {crowd:#}");
    assert!(echo["latency"]["samples"].as_u64().is_some_and(|n| n > 0), "{echo:#}");
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.contains("raw WebSocket echo"), "{written}");

    std::fs::remove_file(&out).unwrap();
    let report = bench().arg("report").arg("--json").arg(&json).arg("--out").arg(&out).output().unwrap();
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), written, "the same figures give the same report");

    let refused =
        bench().arg("report").arg("--json").arg(&out).arg("--out").arg(dir.path().join("x.md")).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not the server results"));
}
