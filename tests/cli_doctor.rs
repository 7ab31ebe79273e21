//! The real binary: `doctor` from `/` with a clean environment, and error conventions.

use std::process::Command;

fn medxfer(home: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_medxfer"));
    c.env_clear().env("MEDXFER_HOME", home).current_dir("/");
    c
}

#[test]
fn doctor_json_reports_libtorch_2_11_from_root_with_a_clean_environment() {
    let home = tempfile::tempdir().unwrap();
    let out = medxfer(home.path()).args(["doctor", "--json"]).output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let version = report["libtorch_version"].as_str().unwrap();
    assert!(version.starts_with("2.11.0"), "{version}");
    assert_eq!(report["home"]["root"].as_str().unwrap(), home.path().to_str().unwrap());
    assert!(report["cpu_threads"].as_i64().unwrap() >= 1);
    assert!(report["cuda_available"].is_boolean());
    assert!(home.path().join("config.toml").is_file(), "config written on first run");
}

#[test]
fn a_broken_config_is_one_sentence_naming_file_and_line() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.toml"), "[scheduler]\ncpu_slots = \"many\"\n").unwrap();
    let out = medxfer(home.path()).arg("doctor").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.toml:2:"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let home = tempfile::tempdir().unwrap();
    let out = medxfer(home.path()).arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
