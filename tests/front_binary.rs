//! The front binary `medxfer` never loads libtorch: its ELF needs no libtorch, and
//! a copy of it alone (no medxfer-torch beside it) runs the commands that need no tensor, while a torch
//! command says in one sentence that it needs libtorch and how to get it.

use std::path::Path;
use std::process::{Command, Output};

/// The NEEDED libraries and RPATH/RUNPATH entries of an ELF file, as readelf lists them.
fn dynamic_section(binary: &str) -> Vec<String> {
    let out = Command::new("readelf").args(["-d", binary]).output().expect("readelf (binutils) runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)") || l.contains("(RPATH)") || l.contains("(RUNPATH)"))
        .map(str::to_string)
        .collect()
}

#[test]
fn only_the_sibling_links_libtorch() {
    let front = dynamic_section(env!("CARGO_BIN_EXE_medxfer"));
    assert!(front.iter().any(|l| l.contains("libc.so")), "readelf listed the front's libraries: {front:?}");
    for entry in front.iter().filter(|l| l.contains("(NEEDED)")) {
        assert!(!entry.contains("torch") && !entry.contains("libc10"), "the front links libtorch: {entry}");
    }
    let sibling = dynamic_section(env!("CARGO_BIN_EXE_medxfer-torch"));
    assert!(sibling.iter().any(|l| l.contains("[libtorch_cpu.so]")), "{sibling:?}");
    assert!(sibling.iter().any(|l| l.contains("RPATH") || l.contains("RUNPATH")), "{sibling:?}");
}

fn run(exe: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(exe).args(args).env_clear().env("MEDXFER_HOME", home).current_dir("/").output().unwrap()
}

#[test]
fn a_copy_without_its_sibling_lists_runs_and_zoo_and_names_libtorch_for_train() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let exe = dir.path().join("medxfer");
    std::fs::copy(env!("CARGO_BIN_EXE_medxfer"), &exe).unwrap();
    for args in [&["--version"][..], &["runs", "ls", "--json"], &["zoo", "list", "--json"]] {
        let out = run(&exe, &home, args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!out.stdout.is_empty(), "{args:?} printed nothing");
    }
    let zoo: serde_json::Value = serde_json::from_slice(&run(&exe, &home, &["zoo", "list", "--json"]).stdout).unwrap();
    assert!(zoo.to_string().contains("moco-v2"), "{zoo}");

    let out = run(&exe, &home, &["train", "--run", "/nonexistent"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    assert!(err.contains("`medxfer train` needs libtorch"), "{err}");
    assert!(err.contains(&dir.path().join("medxfer-torch").display().to_string()), "{err}");
    assert!(err.contains("make build"), "{err}");

    let out = run(&exe, &home, &["doctor", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["libtorch_version"].is_null(), "{report}");
    assert!(report["cuda_note"].as_str().unwrap().contains("medxfer-torch"), "{report}");
    assert!(report["problems"][0]["what"].as_str().unwrap().contains("libtorch 2.11 expected, found none"), "{report}");
}
