//! The `subsignal` command line as a user meets it. Being an integration test of this crate, it also makes
//! `cargo test --workspace` build the `subsignal` binary with the workspace's test features, the one binary that
//! `cargo xtask test` runs everywhere after (see `SUBSIGNAL_BIN`).

use std::process::Command;

fn subsignal(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_subsignal")).args(args).output().expect("run subsignal")
}

#[test]
fn help_names_the_subcommands_and_the_schema_setting() {
    let top = String::from_utf8(subsignal(&["--help"]).stdout).unwrap();
    assert!(top.contains("serve") && top.contains("netsim"), "{top}");
    let serve = String::from_utf8(subsignal(&["serve", "--help"]).stdout).unwrap();
    assert!(serve.contains("--schema") && serve.contains("SUBSIGNAL_SCHEMA"), "{serve}");
}

#[test]
fn a_missing_schema_file_is_named_at_start() {
    let out = subsignal(&["serve", "--listen", "127.0.0.1:0", "--schema", "/nonexistent/app.graphql"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/app.graphql") && stderr.contains("cannot read"), "{stderr}");
}

#[test]
fn the_schema_setting_is_read_from_the_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_subsignal"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SUBSIGNAL_SCHEMA", "/nonexistent/from-env.graphql")
        .output()
        .expect("run subsignal");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/from-env.graphql"));
}
