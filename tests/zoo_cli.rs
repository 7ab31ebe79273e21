//! The real `medxfer zoo` binary against a loopback mirror: resume after SIGKILL, two concurrent pulls
//! of one id, offline mode, manual entries with import, list/path/rm, and `random`.

mod zoo_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use zoo_server::Server;

fn medxfer(home: &Path, mirror: Option<&str>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_medxfer"));
    c.env_clear().env("MEDXFER_HOME", home).current_dir("/");
    if let Some(m) = mirror {
        c.env("MEDXFER_ZOO_MIRROR", m);
    }
    c
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn cached(home: &Path, id: &str, file: &str) -> PathBuf {
    home.join("cache/zoo").join(id).join(file)
}

/// The state `zoo list` shows, read in-process (each binary start loads libtorch, which is slow here).
fn list_state(home: &Path, id: &str) -> serde_json::Value {
    let catalog = medxfer::zoo::Catalog::embedded().unwrap();
    let home = medxfer::home::Home::under(home).unwrap();
    serde_json::to_value(medxfer::zoo::state_of(&home, catalog.get(id).unwrap())).unwrap()
}

fn binary_list(home: &Path) -> Vec<serde_json::Value> {
    let out = medxfer(home, None).args(["zoo", "list", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A random ResNet50 written by real torch.save in the layout of `recipe` ("torchvision" or "moco").
fn torch_checkpoint(path: &Path, recipe: &str) {
    let py = std::env::var("MEDXFER_TEST_PYTHON").expect("MEDXFER_TEST_PYTHON is unset: source scripts/torch-env");
    let script = r#"
import sys, torch, torchvision
torch.manual_seed(0)
sd = torchvision.models.resnet50(weights=None).state_dict()
if sys.argv[2] == "moco":
    sd = {"state_dict": {"module.encoder_q." + k: v for k, v in sd.items()}, "epoch": 200, "arch": "resnet50"}
torch.save(sd, sys.argv[1])
"#;
    let out = Command::new(py).args(["-c", script]).arg(path).arg(recipe).output().unwrap();
    assert!(out.status.success(), "torch.save failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_pulled_checkpoint_is_converted_with_its_recipe() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let source = home.path().join("moco.pth.tar");
    torch_checkpoint(&source, "moco");
    server.put("/moco-v2/moco_v2_800ep_pretrain.pth.tar", std::fs::read(&source).unwrap());
    let out = medxfer(home.path(), Some(&server.base)).args(["zoo", "pull", "moco-v2"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(list_state(home.path(), "moco-v2")["state"], "converted");
    let converted = std::fs::read(cached(home.path(), "moco-v2", "resnet50.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&converted).unwrap();
    assert!(tensors.names().iter().all(|n| !n.starts_with("module.") && !n.starts_with("fc.")));
    assert_eq!(tensors.tensor("layer4.2.bn3.running_var").unwrap().shape(), &[2048]);
    let provenance = std::fs::read_to_string(cached(home.path(), "moco-v2", "resnet50.provenance.json")).unwrap();
    let provenance: serde_json::Value = serde_json::from_str(&provenance).unwrap();
    assert_eq!(provenance["recipe"], "moco", "{provenance}");
}

#[test]
fn a_killed_pull_resumes_where_the_part_file_ends() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let data = zoo_server::bytes(8 << 20, 11);
    server.put("/chestxray14/chestxray14.pth.tar", data.clone());
    server.throttle(16 * 1024, Duration::from_millis(5));
    let part = cached(home.path(), "chestxray14", "chestxray14.pth.tar.part");
    let mut child = medxfer(home.path(), Some(&server.base)).args(["zoo", "pull", "chestxray14"]).spawn().unwrap();
    wait_until(".part to grow", || std::fs::metadata(&part).is_ok_and(|m| m.len() >= 256 * 1024));
    child.kill().unwrap();
    child.wait().unwrap();
    let state = list_state(home.path(), "chestxray14");
    assert_eq!(state["state"], "downloading", "{state}");
    assert_eq!(state["active"], false, "{state}");
    let resume_at = std::fs::metadata(&part).unwrap().len();
    assert!(resume_at < data.len() as u64);
    *server.state.throttle.lock().unwrap() = None;
    let out = medxfer(home.path(), Some(&server.base)).args(["zoo", "pull", "chestxray14"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let served = server.served();
    let last = served.last().unwrap();
    assert_eq!(last.range.as_deref(), Some(format!("bytes={resume_at}-").as_str()));
    assert_eq!(last.body_bytes, data.len() as u64 - resume_at, "only the missing bytes were sent");
    assert_eq!(std::fs::read(cached(home.path(), "chestxray14", "chestxray14.pth.tar")).unwrap(), data);
    assert!(!part.exists());
    // Random bytes are no checkpoint: the download stays installed and the state names the conversion failure.
    let state = list_state(home.path(), "chestxray14");
    assert_eq!(state["state"], "failed", "{state}");
    assert!(state["reason"].as_str().unwrap().contains("installed, but its conversion failed"), "{state}");
    assert!(stderr(&out).contains("chestxray14: conversion failed"), "{}", stderr(&out));
    let lock = std::fs::read_to_string(home.path().join("zoo.lock")).unwrap();
    assert!(lock.contains("[models.chestxray14]"), "{lock}");
}

#[test]
fn two_concurrent_pulls_of_one_id_download_it_once() {
    use std::sync::atomic::Ordering;
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let data = zoo_server::bytes(2 << 20, 12);
    server.put("/moco-v1/moco_v1_200ep_pretrain.pth.tar", data.clone());
    server.state.paused.store(true, Ordering::SeqCst);
    let part = cached(home.path(), "moco-v1", "moco_v1_200ep_pretrain.pth.tar.part");
    let pull = |log: &Path| {
        let log = std::fs::File::create(log).unwrap();
        medxfer(home.path(), Some(&server.base)).args(["zoo", "pull", "moco-v1"]).stderr(log).spawn().unwrap()
    };
    let (first_log, second_log) = (home.path().join("first.err"), home.path().join("second.err"));
    let first = pull(&first_log);
    wait_until("the first pull to start writing", || std::fs::metadata(&part).is_ok_and(|m| m.len() > 0));
    let second = pull(&second_log);
    wait_until("the second pull to wait for the lock", || {
        std::fs::read_to_string(&second_log).is_ok_and(|t| t.contains("moco-v1: waiting for another medxfer"))
    });
    server.state.paused.store(false, Ordering::SeqCst);
    for mut p in [first, second] {
        assert!(p.wait().unwrap().success());
    }
    assert!(std::fs::read_to_string(&second_log).unwrap().contains("moco-v1: already in the cache"));
    assert_eq!(server.served().len(), 1, "{:?}", server.served());
    assert_eq!(server.body_bytes(), data.len() as u64);
    assert_eq!(std::fs::read(cached(home.path(), "moco-v1", "moco_v1_200ep_pretrain.pth.tar")).unwrap(), data);
}

#[test]
fn offline_opens_no_connection_and_says_what_is_missing() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    server.put("/byol/pretrain_res50x1.pkl", vec![7; 1000]);
    let out = medxfer(home.path(), Some(&server.base))
        .env("MEDXFER_OFFLINE", "1")
        .args(["zoo", "pull", "byol", "swav"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("offline (MEDXFER_OFFLINE=1): byol is missing"), "{err}");
    assert!(err.contains("swav is missing"), "{err}");
    assert!(err.contains("set MEDXFER_ZOO_MIRROR=BASE or `mirror = \"BASE\"` under [zoo] in"), "{err}");
    assert!(err.contains("run `medxfer zoo import byol FILE`"), "{err}");
    assert_eq!(server.connections(), 0);
}

/// Writes `<home>/config.toml` with these `[zoo]` settings.
fn zoo_config(home: &Path, settings: &str) {
    std::fs::write(home.join("config.toml"), format!("[zoo]\n{settings}\n")).unwrap();
}

#[test]
fn an_unreachable_mirror_fails_with_the_ways_around_and_list_shows_the_failure() {
    let home = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mirror = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    zoo_config(home.path(), &format!("mirror = \"{mirror}\"\nretries = 0"));
    let out = medxfer(home.path(), None).args(["zoo", "pull", "moco-v1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("cannot download moco-v1 from {mirror}/moco-v1/")), "{err}");
    assert!(err.contains("set MEDXFER_ZOO_MIRROR=BASE"), "{err}");
    let config = home.path().join("config.toml");
    assert!(err.contains(&format!("`mirror = \"BASE\"` under [zoo] in {}", config.display())), "{err}");
    assert!(err.contains("run `medxfer zoo import moco-v1 FILE`"), "{err}");
    let rows = binary_list(home.path());
    let row = rows.iter().find(|r| r["id"] == "moco-v1").unwrap();
    assert_eq!(row["state"], "failed", "a failed pull must not look interrupted: {row}");
    let reason = row["reason"].as_str().unwrap();
    assert!(reason.contains("cannot reach 127.0.0.1"), "{reason}");
    assert!(reason.contains("next: `medxfer zoo pull moco-v1` to retry"), "{reason}");
}

#[test]
fn several_ids_download_with_at_most_the_configured_connections() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let models = [
        ("moco-v1", "moco_v1_200ep_pretrain.pth.tar"),
        ("moco-v2", "moco_v2_800ep_pretrain.pth.tar"),
        ("insdis", "InsDis.pth"),
    ];
    for (i, (id, file)) in models.iter().enumerate() {
        server.put(&format!("/{id}/{file}"), zoo_server::bytes(600_000, 40 + i as u64));
    }
    zoo_config(home.path(), "concurrent_downloads = 2");
    server.state.paused.store(true, Ordering::SeqCst);
    let ids = models.iter().map(|m| m.0);
    let mut child =
        medxfer(home.path(), Some(&server.base)).args(["zoo", "pull", "--no-convert"]).args(ids).spawn().unwrap();
    wait_until("two downloads in flight", || server.state.in_flight.load(Ordering::SeqCst) == 2);
    // The two open downloads wrote their first chunk: the third, if unbounded, would have connected by now.
    wait_until("first chunks written", || {
        let grown = |(id, file): &(&str, &str)| {
            std::fs::metadata(cached(home.path(), id, &format!("{file}.part"))).is_ok_and(|m| m.len() > 0)
        };
        models.iter().filter(|m| grown(m)).count() == 2
    });
    assert_eq!(server.connections(), 2);
    server.state.paused.store(false, Ordering::SeqCst);
    assert!(child.wait().unwrap().success());
    assert_eq!(server.state.max_in_flight.load(Ordering::SeqCst), 2);
    assert_eq!(server.served().len(), 3, "{:?}", server.served());
    for (id, _) in models {
        // Pinned on first use and, with --no-convert, not converted (random bytes would record a conversion failure).
        assert_eq!(list_state(home.path(), id)["state"], "downloaded", "{id}");
    }
}

#[test]
fn manual_entries_say_the_steps_and_import_takes_the_file() {
    let home = tempfile::tempdir().unwrap();
    let out = medxfer(home.path(), None).args(["zoo", "pull", "inat2021"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("inat2021 cannot be downloaded automatically; 1. Open https://cornell.box.com"), "{err}");
    assert!(err.contains("medxfer zoo import inat2021 FILE"), "{err}");

    let hand = home.path().join("downloaded-by-hand.pth.tar");
    torch_checkpoint(&hand, "torchvision");
    let out = medxfer(home.path(), None).args(["zoo", "import", "inat2021"]).arg(&hand).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(list_state(home.path(), "inat2021")["state"], "converted");
    let out = medxfer(home.path(), None).args(["zoo", "path", "inat2021"]).output().unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed.trim(), cached(home.path(), "inat2021", "inat2021_supervised_large.pth.tar").to_str().unwrap());
    let out = medxfer(home.path(), None).args(["zoo", "verify", "inat2021"]).output().unwrap();
    assert!(out.status.success() && stderr(&out).contains("inat2021: verified"), "{}", stderr(&out));
    assert_eq!(list_state(home.path(), "inat2021")["state"], "converted");

    std::fs::write(cached(home.path(), "inat2021", "inat2021_supervised_large.pth.tar"), b"tampered").unwrap();
    let out = medxfer(home.path(), None).args(["zoo", "verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("(pinned in zoo.lock)"), "{}", stderr(&out));
    let state = list_state(home.path(), "inat2021");
    assert_eq!(state["state"], "failed", "{state}");

    let out = medxfer(home.path(), None).args(["zoo", "rm", "inat2021"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(list_state(home.path(), "inat2021")["state"], "missing");
}

#[test]
fn show_and_list_describe_the_catalog() {
    let home = tempfile::tempdir().unwrap();
    let rows = binary_list(home.path());
    assert_eq!(rows.len(), 22);
    assert_eq!(rows[0]["id"], "imagenet");
    assert_eq!(rows[0]["state"], "missing");
    assert_eq!(rows[21]["state"], "builtin");
    let out = medxfer(home.path(), None).args(["zoo", "show", "imagenet", "--json"]).output().unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["urls"][0], "https://download.pytorch.org/models/resnet50-19c8e357.pth");
    assert_eq!(shown["recipe"], "torchvision");
    let out = medxfer(home.path(), None).args(["zoo", "show", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown zoo id \"nope\""), "{}", stderr(&out));
    let out = medxfer(home.path(), None).args(["zoo", "pull", "random"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("stdout is no JSON document ({e}): {}", stderr(out)))
}

/// `--json` on pull, verify, import and rm: one document per command with each model's outcome, its state in
/// `zoo list`'s words, and the installed file with its sha256; failures are ok=false with the reason, and
/// messages and exit statuses stay as without it.
#[test]
fn pull_verify_import_and_rm_print_one_json_report() {
    use sha2::{Digest, Sha256};
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let data = zoo_server::bytes(300_000, 21);
    let digest = hex::encode(Sha256::digest(&data));
    server.put("/moco-v1/moco_v1_200ep_pretrain.pth.tar", data.clone());
    let file = cached(home.path(), "moco-v1", "moco_v1_200ep_pretrain.pth.tar");
    let zoo = |args: &[&str]| medxfer(home.path(), Some(&server.base)).arg("zoo").args(args).output().unwrap();

    let out = zoo(&["pull", "moco-v1", "--no-convert", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["verb"], "pull");
    let pulled = &report["models"][0];
    assert_eq!(
        (&pulled["id"], &pulled["ok"], &pulled["state"]),
        (&"moco-v1".into(), &true.into(), &"downloaded".into())
    );
    assert_eq!(pulled["sha256"], digest.as_str(), "{report}");
    assert_eq!(pulled["file"], file.to_str().unwrap(), "{report}");
    assert_eq!(pulled["message"], format!("sha256 {digest} (pinned in zoo.lock)").as_str(), "{report}");
    let err = stderr(&out);
    assert!(err.contains(&format!("moco-v1: sha256 {digest}")), "messages stay on stderr: {err}");
    assert!(!err.contains("MB/s") && !err.contains('\u{1b}'), "no progress bar drawn off a terminal: {err}");

    let out = zoo(&["pull", "moco-v1", "inat2021", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    let [present, manual] = report["models"].as_array().unwrap().as_slice() else { panic!("{report}") };
    assert_eq!((&present["ok"], &present["message"]), (&true.into(), &"already in the cache".into()), "{report}");
    assert_eq!(present["sha256"], digest.as_str(), "{report}");
    assert_eq!((&manual["id"], &manual["ok"], &manual["state"]), (&"inat2021".into(), &false.into(), &"failed".into()));
    assert_eq!(manual["state"], list_state(home.path(), "inat2021")["state"], "the state `zoo list` shows");
    // the mirror has no inat2021: the reason names the URL and the server's answer
    let error = manual["error"].as_str().unwrap();
    assert!(error.contains("cannot download inat2021 from") && error.contains("404 Not Found"), "{report}");
    assert!(manual.get("sha256").is_none() && manual.get("file").is_none(), "{report}");

    let verified = json(&zoo(&["verify", "moco-v1", "--json"]));
    assert_eq!(verified["models"][0]["message"], "verified", "{verified}");
    assert_eq!(verified["models"][0]["state"], "verified", "{verified}");
    std::fs::write(&file, b"tampered").unwrap();
    let out = zoo(&["verify", "moco-v1", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let failed = &json(&out)["models"][0];
    assert_eq!((&failed["ok"], &failed["state"]), (&false.into(), &"failed".into()), "{failed}");
    assert!(failed["error"].as_str().unwrap().contains("(pinned in zoo.lock)"), "{failed}");
    assert!(failed["reason"].is_string() && failed.get("file").is_none(), "the file was moved aside: {failed}");

    let wrong = home.path().join("wrong.pth.tar");
    std::fs::write(&wrong, b"not the pinned bytes").unwrap();
    let out = zoo(&["import", "moco-v1", wrong.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let refused = &json(&out)["models"][0];
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(stderr(&out).contains(refused["error"].as_str().unwrap()), "the same reason on stderr: {refused}");
    let right = home.path().join("right.pth.tar");
    std::fs::write(&right, &data).unwrap();
    let imported = json(&zoo(&["import", "moco-v1", right.to_str().unwrap(), "--json"]));
    let imported = &imported["models"][0];
    // installed and verified against the pin; random bytes do not convert, which the state says as `zoo list` does
    assert_eq!((&imported["ok"], &imported["state"]), (&true.into(), &"failed".into()), "{imported}");
    assert!(imported["message"].as_str().unwrap().ends_with("(verified)"), "{imported}");
    assert!(imported["reason"].as_str().unwrap().starts_with("installed, but its conversion failed"), "{imported}");
    assert_eq!(imported["sha256"], digest.as_str(), "{imported}");

    let removed = json(&zoo(&["rm", "moco-v1", "--json"]));
    let expected = serde_json::json!({"verb": "rm", "models": [
        {"id": "moco-v1", "ok": true, "state": "missing", "message": "removed from the cache"}
    ]});
    assert_eq!(removed, expected);
}
