//! Zoo downloads against a real HTTP server on 127.0.0.1: resume, Range ignored, stall, redirect,
//! wrong bytes, trust on first use, the torchvision name prefix, offline.

mod zoo_server;

use medxfer::home::Home;
use medxfer::zoo::verify::Verdict;
use medxfer::zoo::{self, Entry, ModelPaths, ModelState, Outcome, PullOptions};
use sha2::{Digest, Sha256};
use std::time::Duration;
use zoo_server::{Fault, Server};

fn entry(id: &str, file: &str, sha256: Option<String>) -> Entry {
    Entry {
        id: id.into(),
        name: id.into(),
        category: "in-domain".into(),
        dataset: "d".into(),
        objective: "o".into(),
        paper: "p".into(),
        paper_url: "https://arxiv.org/abs/1".into(),
        urls: vec![format!("https://example.org/{file}")],
        file: file.into(),
        // These tests are about the transfer: the random bytes they serve are not converted.
        recipe: "none".into(),
        credit: "c".into(),
        sha256,
        manual: false,
        steps: vec![],
    }
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn options(server: &Server, stall_ms: u64, retries: u32) -> PullOptions {
    let mut opts = PullOptions::from_env(&medxfer::config::Config::default()).unwrap();
    opts.mirror = Some(server.base.parse().unwrap());
    opts.offline = false;
    opts.fetch.https_only = false;
    opts.fetch.stall = Duration::from_millis(stall_ms);
    opts.fetch.retries = retries;
    opts.fetch.backoff = Duration::from_millis(10);
    opts
}

struct Case {
    _dir: tempfile::TempDir,
    home: Home,
}

fn case() -> Case {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::under(dir.path()).unwrap();
    home.ensure().unwrap();
    Case { _dir: dir, home }
}

async fn pull(home: &Home, e: &Entry, opts: &PullOptions) -> anyhow::Result<Outcome> {
    let client = opts.client()?;
    zoo::pull_one(home, e, opts, Some(&client), None).await
}

#[tokio::test]
async fn a_cut_connection_resumes_and_the_server_sends_only_the_missing_bytes() {
    let (server, c) = (Server::start(), case());
    let data = zoo_server::bytes(1_000_000, 1);
    server.put("/m/m.pth", data.clone());
    server.fault(Fault::Cut(300_000));
    let e = entry("m", "m.pth", Some(sha(&data)));
    let outcome = pull(&c.home, &e, &options(&server, 5000, 3)).await.unwrap();
    assert!(matches!(outcome, Outcome::Installed { verdict: Verdict::Verified, .. }), "{outcome:?}");
    let served = server.served();
    assert_eq!(served.len(), 2, "{served:?}");
    assert_eq!(served[1].range.as_deref(), Some("bytes=300000-"));
    assert_eq!(served[1].status, 206);
    assert_eq!(server.body_bytes(), data.len() as u64, "only the missing bytes were sent again");
    let paths = ModelPaths::new(&c.home, &e);
    assert_eq!(std::fs::read(&paths.file).unwrap(), data);
    assert!(!paths.part.exists());
    assert_eq!(zoo::state_of(&c.home, &e), ModelState::Verified);
}

#[tokio::test]
async fn a_server_ignoring_range_makes_the_download_start_over_cleanly() {
    let (server, c) = (Server::start(), case());
    // Larger than the blocks handed to the writer and hasher threads, so the restart reaches them.
    let data = zoo_server::bytes(3_000_000, 2);
    server.put("/m/m.pth", data.clone());
    server.state.ignore_range.store(true, std::sync::atomic::Ordering::SeqCst);
    server.fault(Fault::Cut(2_200_000));
    let e = entry("m", "m.pth", Some(sha(&data)));
    pull(&c.home, &e, &options(&server, 5000, 3)).await.unwrap();
    let served = server.served();
    assert_eq!(served[1].range.as_deref(), Some("bytes=2200000-"));
    assert_eq!(served[1].status, 200);
    assert_eq!(server.body_bytes(), 2_200_000 + data.len() as u64);
    assert_eq!(std::fs::read(ModelPaths::new(&c.home, &e).file).unwrap(), data);
}

#[tokio::test]
async fn a_stall_times_out_with_a_clear_message_and_the_next_pull_resumes() {
    let (server, c) = (Server::start(), case());
    let data = zoo_server::bytes(400_000, 3);
    server.put("/m/m.pth", data.clone());
    server.fault(Fault::Stall(100_000));
    let e = entry("m", "m.pth", Some(sha(&data)));
    let err = format!("{:#}", pull(&c.home, &e, &options(&server, 300, 0)).await.unwrap_err());
    assert!(err.contains("download stalled: no data from 127.0.0.1 for 0.3 s at byte 100000"), "{err}");
    match zoo::state_of(&c.home, &e) {
        ModelState::Failed { reason } => {
            assert!(reason.starts_with("cannot download m from"), "{reason}");
            assert!(reason.contains("download stalled"), "{reason}");
            assert!(
                reason.contains("`medxfer zoo pull m` to retry (it resumes from byte 100000 of 400000)"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    pull(&c.home, &e, &options(&server, 5000, 0)).await.unwrap();
    assert_eq!(server.served()[1].range.as_deref(), Some("bytes=100000-"));
    assert_eq!(std::fs::read(ModelPaths::new(&c.home, &e).file).unwrap(), data);
}

#[tokio::test]
async fn wrong_bytes_are_never_installed_and_the_error_shows_both_digests() {
    let (server, c) = (Server::start(), case());
    let data = zoo_server::bytes(300_000, 4);
    let wrong: Vec<u8> = data.iter().map(|b| !b).collect();
    server.put("/m/m.pth", data.clone());
    server.fault(Fault::Wrong);
    let e = entry("m", "m.pth", Some(sha(&data)));
    let err = format!("{:#}", pull(&c.home, &e, &options(&server, 5000, 0)).await.unwrap_err());
    assert!(err.contains(&format!("expected {} (catalog), got {}", sha(&data), sha(&wrong))), "{err}");
    assert!(err.contains("was not installed"), "{err}");
    let paths = ModelPaths::new(&c.home, &e);
    assert!(!paths.file.exists() && !paths.part.exists());
    assert!(matches!(zoo::state_of(&c.home, &e), ModelState::Failed { reason } if reason.contains("sha256 mismatch")));
    pull(&c.home, &e, &options(&server, 5000, 0)).await.unwrap();
    assert_eq!(std::fs::read(&paths.file).unwrap(), data);
}

#[tokio::test]
async fn redirects_are_followed_and_first_use_pins_then_checks_later_downloads() {
    let (server, c) = (Server::start(), case());
    let data = zoo_server::bytes(200_000, 5);
    server.put("/m/m.pth", data.clone());
    let e = entry("m", "m.pth", None);
    let mut opts = options(&server, 5000, 0);
    opts.mirror = Some(format!("{}/redirect", server.base).parse().unwrap());
    let outcome = pull(&c.home, &e, &opts).await.unwrap();
    assert!(matches!(outcome, Outcome::Installed { verdict: Verdict::FirstUse, .. }), "{outcome:?}");
    assert_eq!(zoo::state_of(&c.home, &e), ModelState::Downloaded);
    let lock = std::fs::read_to_string(c.home.root.join("zoo.lock")).unwrap();
    assert!(lock.contains(&sha(&data)), "{lock}");
    assert!(zoo::remove(&c.home, &e).unwrap());
    assert_eq!(zoo::state_of(&c.home, &e), ModelState::Missing);
    let other = zoo_server::bytes(200_000, 6);
    server.put("/m/m.pth", other.clone());
    let err = format!("{:#}", pull(&c.home, &e, &opts).await.unwrap_err());
    assert!(err.contains(&format!("expected {} (pinned in zoo.lock), got {}", sha(&data), sha(&other))), "{err}");
}

#[tokio::test]
async fn the_torchvision_name_prefix_is_checked() {
    let (server, c) = (Server::start(), case());
    let data = zoo_server::bytes(100_000, 7);
    let digest = sha(&data);
    for (file, ok) in [(format!("resnet50-{}.pth", &digest[..8]), true), ("resnet50-0badc0de.pth".to_string(), false)] {
        server.put(&format!("/tv-{}/{file}", if ok { "good" } else { "bad" }), data.clone());
        let mut e = entry(if ok { "tv-good" } else { "tv-bad" }, &file, None);
        e.urls = vec![format!("https://download.pytorch.org/models/{file}")];
        let result = pull(&c.home, &e, &options(&server, 5000, 0)).await;
        if ok {
            result.unwrap();
            assert_eq!(zoo::state_of(&c.home, &e), ModelState::Verified);
        } else {
            let err = format!("{:#}", result.unwrap_err());
            assert!(err.contains(&format!("expected 0badc0de… (from the file name {file}), got {digest}")), "{err}");
            assert!(!ModelPaths::new(&c.home, &e).file.exists());
        }
    }
}

#[tokio::test]
async fn offline_opens_no_connection_and_names_what_is_missing() {
    let (server, c) = (Server::start(), case());
    server.put("/m/m.pth", vec![1, 2, 3]);
    let mut opts = options(&server, 5000, 0);
    opts.offline = true;
    let e = entry("m", "m.pth", None);
    let results = zoo::pull_many(&c.home, std::slice::from_ref(&e), &opts, None).await;
    let err = format!("{:#}", results[0].1.as_ref().unwrap_err());
    assert!(err.contains("offline (MEDXFER_OFFLINE=1): m is missing"), "{err}");
    assert_names_every_way_around(&c.home, &err);
    assert_eq!(server.connections(), 0);
}

/// The advice every download error ends with: the mirror variable, the config key and `zoo import`.
fn assert_names_every_way_around(home: &Home, err: &str) {
    assert!(err.contains("set MEDXFER_ZOO_MIRROR=BASE"), "{err}");
    let config_key = format!("`mirror = \"BASE\"` under [zoo] in {}", home.config_file.display());
    assert!(err.contains(&config_key), "{err}");
    assert!(err.contains("(a server with BASE/m/m.pth)"), "{err}");
    assert!(
        err.contains("download https://example.org/m.pth on a connected machine and run `medxfer zoo import m FILE`"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_server_fails_naming_the_mirror_variable_the_config_key_and_import() {
    let c = case();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut opts = PullOptions::from_env(&medxfer::config::Config::default()).unwrap();
    (opts.mirror, opts.offline, opts.fetch.https_only, opts.fetch.retries) =
        (Some(base.parse().unwrap()), false, false, 0);
    let e = entry("m", "m.pth", None);
    let err = format!("{:#}", pull(&c.home, &e, &opts).await.unwrap_err());
    assert!(err.starts_with(&format!("cannot download m from {base}/m/m.pth: ")), "{err}");
    assert!(err.contains("cannot reach 127.0.0.1"), "{err}");
    assert_names_every_way_around(&c.home, &err);
    match zoo::state_of(&c.home, &e) {
        ModelState::Failed { reason } => {
            assert!(reason.contains("cannot reach 127.0.0.1"), "{reason}");
            assert!(reason.contains("next: `medxfer zoo pull m` to retry, a mirror (MEDXFER_ZOO_MIRROR"), "{reason}");
            assert!(reason.ends_with("or `medxfer zoo import m FILE`"), "{reason}");
        }
        other => panic!("a failed pull must not look interrupted: {other:?}"),
    }
}

#[tokio::test]
async fn one_corrupted_byte_deep_in_a_large_download_is_refused() {
    let (server, c) = (Server::start(), case());
    let data = zoo_server::bytes(5_000_000, 8);
    server.put("/m/m.pth", data.clone());
    server.fault(Fault::Cut(1_500_000));
    let e = entry("m", "m.pth", Some(sha(&data)));
    *server.state.flip_byte.lock().unwrap() = Some(4_321_987);
    let err = format!("{:#}", pull(&c.home, &e, &options(&server, 5000, 3)).await.unwrap_err());
    let mut corrupted = data.clone();
    corrupted[4_321_987] = !corrupted[4_321_987];
    assert!(err.contains(&format!("expected {} (catalog), got {}", sha(&data), sha(&corrupted))), "{err}");
    let paths = ModelPaths::new(&c.home, &e);
    assert!(!paths.file.exists() && !paths.part.exists());
    assert_eq!(server.served()[1].range.as_deref(), Some("bytes=1500000-"), "the corrupted part was a resume");
    pull(&c.home, &e, &options(&server, 5000, 0)).await.unwrap();
    assert_eq!(std::fs::read(&paths.file).unwrap(), data);
}

#[tokio::test]
async fn pulling_several_keeps_at_most_the_configured_number_in_flight() {
    let (server, c) = (Server::start(), case());
    server.throttle(16 * 1024, Duration::from_millis(2));
    let entries: Vec<Entry> = (0..5)
        .map(|i| {
            let data = zoo_server::bytes(200_000, 20 + i);
            server.put(&format!("/m{i}/m.pth"), data.clone());
            entry(&format!("m{i}"), "m.pth", Some(sha(&data)))
        })
        .collect();
    let mut opts = options(&server, 5000, 0);
    opts.concurrency = 2;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let results = zoo::pull_many(&c.home, &entries, &opts, Some(tx)).await;
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    assert_eq!(results.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["m0", "m1", "m2", "m3", "m4"]);
    assert_eq!(server.state.max_in_flight.load(std::sync::atomic::Ordering::SeqCst), 2);
    let mut finished = 0;
    let mut saw_rate = false;
    while let Ok(event) = rx.try_recv() {
        match event {
            zoo::Event::Finished { .. } => finished += 1,
            zoo::Event::Progress { bytes, total, rate_bps, .. } => {
                assert!(bytes <= total.unwrap());
                saw_rate |= rate_bps > 0.0;
            }
            _ => {}
        }
    }
    assert_eq!(finished, 5);
    assert!(saw_rate);
}

#[tokio::test]
async fn without_a_configured_mirror_plain_http_is_refused() {
    let (server, c) = (Server::start(), case());
    server.put("/m/m.pth", vec![1; 10]);
    let mut opts = options(&server, 5000, 0);
    opts.mirror = None;
    opts.fetch.https_only = true;
    let client = opts.client().unwrap();
    let url = format!("{}/m/m.pth", server.base).parse().unwrap();
    let part = c.home.cache.join("m.part");
    let mut progress = zoo::progress::Progress::new("m", None);
    let result = zoo::download::fetch(&client, &url, &part, &opts.fetch, &mut progress, &mut |_| {}).await;
    let err = format!("{:#}", result.unwrap_err());
    assert!(err.contains("plain http is allowed only for an explicitly configured mirror"), "{err}");
    assert_eq!(server.connections(), 0);
}
