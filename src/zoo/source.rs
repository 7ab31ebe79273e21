//! Where a model is fetched from: the catalog URL, or `MEDXFER_ZOO_MIRROR` / `[zoo] mirror`
//! (`BASE/<id>/<file>`); and the switches read from the environment (offline, mirror).

use super::catalog::Entry;
use crate::config::Config;
use crate::home::Home;
use anyhow::{Result, bail};
use reqwest::Url;
use std::time::Duration;

/// How pulls behave: resolved once from the config and the environment.
#[derive(Debug, Clone)]
pub struct PullOptions {
    pub mirror: Option<Url>,
    /// `MEDXFER_OFFLINE=1`: never open a connection.
    pub offline: bool,
    pub fetch: super::download::FetchOptions,
    /// Downloads at once for several ids.
    pub concurrency: usize,
    /// Convert each checkpoint after its download (`zoo pull --no-convert` turns it off).
    pub convert: bool,
}

impl PullOptions {
    pub fn from_env(config: &Config) -> Result<PullOptions> {
        let env_mirror = std::env::var("MEDXFER_ZOO_MIRROR").ok().filter(|m| !m.trim().is_empty());
        let mirror = match env_mirror.as_deref().or(Some(config.zoo.mirror.as_str()).filter(|m| !m.is_empty())) {
            Some(m) => Some(parse_mirror(m)?),
            None => None,
        };
        let https_only = mirror.as_ref().is_none_or(|m| m.scheme() != "http");
        let offline = std::env::var("MEDXFER_OFFLINE").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"));
        Ok(PullOptions {
            mirror,
            offline,
            fetch: super::download::FetchOptions {
                stall: Duration::from_secs(config.zoo.stall_timeout_s.max(1)),
                retries: config.zoo.retries,
                backoff: Duration::from_millis(500),
                https_only,
            },
            concurrency: config.zoo.concurrent_downloads.max(1),
            convert: true,
        })
    }

    /// The HTTP client: https only, unless an http mirror was configured explicitly.
    pub fn client(&self) -> Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .https_only(self.fetch.https_only)
            .connect_timeout(self.fetch.stall)
            .user_agent(concat!("medxfer/", env!("CARGO_PKG_VERSION")))
            .build()?)
    }

    /// The URL to fetch `entry` from, or why it cannot be fetched automatically.
    pub fn source(&self, entry: &Entry) -> Result<Url> {
        if let Some(base) = &self.mirror {
            let url = format!("{}/{}/{}", base.as_str().trim_end_matches('/'), entry.id, entry.file);
            return Ok(Url::parse(&url)?);
        }
        if entry.manual {
            bail!("{}", manual_message(entry));
        }
        let Some(first) = entry.urls.first() else { bail!("zoo model {:?} has no URL", entry.id) };
        let mut url = Url::parse(first)?;
        let is_dropbox_share = url.host_str().is_some_and(|h| h.ends_with("dropbox.com"));
        if is_dropbox_share && !url.query_pairs().any(|(k, _)| k == "dl") {
            url.query_pairs_mut().append_pair("dl", "1");
        }
        Ok(url)
    }
}

/// The ways around a download that cannot happen from here, appended to every download error: a mirror
/// (the environment variable or the config key) or a file fetched elsewhere and imported.
pub fn elsewhere_advice(home: &Home, entry: &Entry) -> String {
    let from = entry.urls.first().map(String::as_str).unwrap_or("the file");
    format!(
        "to get it another way, set MEDXFER_ZOO_MIRROR=BASE or `mirror = \"BASE\"` under [zoo] in {} (a server with BASE/{}/{}), or download {from} on a connected machine and run `medxfer zoo import {} FILE`",
        home.config_file.display(),
        entry.id,
        entry.file,
        entry.id
    )
}

/// "ID needs a person: 1. ... 2. ..." on one line.
pub fn manual_message(entry: &Entry) -> String {
    let steps: Vec<String> = entry.steps.iter().enumerate().map(|(i, s)| format!("{}. {s}", i + 1)).collect();
    format!("{} cannot be downloaded automatically; {}", entry.id, steps.join(" "))
}

fn parse_mirror(text: &str) -> Result<Url> {
    match Url::parse(text.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(u),
        Ok(_) => bail!("zoo mirror {text:?} must be an http:// or https:// URL"),
        Err(e) => bail!("zoo mirror {text:?} is not a URL ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(mirror: Option<&str>) -> PullOptions {
        let mut o = PullOptions::from_env(&Config::default()).unwrap();
        o.mirror = mirror.map(|m| parse_mirror(m).unwrap());
        o
    }

    #[test]
    fn sources_follow_mirror_manual_and_dropbox_rules() {
        let c = super::super::Catalog::embedded().unwrap();
        let mirror = opts(Some("http://10.0.0.1:8080/zoo/"));
        let url = mirror.source(c.get("chestxray14").unwrap()).unwrap();
        assert_eq!(url.as_str(), "http://10.0.0.1:8080/zoo/chestxray14/chestxray14.pth.tar");
        assert!(mirror.source(c.get("simclr-v1").unwrap()).is_ok(), "a mirror serves manual entries too");
        let direct = opts(None);
        let err = direct.source(c.get("inat2021").unwrap()).unwrap_err().to_string();
        assert!(err.contains("cannot be downloaded automatically; 1. Open https://cornell.box.com"), "{err}");
        let url = direct.source(c.get("infomin").unwrap()).unwrap();
        assert!(url.as_str().ends_with("InfoMin_800.pth?dl=1"), "{url}");
        let url = direct.source(c.get("chexpert").unwrap()).unwrap();
        assert_eq!(url.as_str(), "https://zenodo.org/record/5205234/files/chexpert.pth.tar?download=1");
        assert!(parse_mirror("ftp://h/x").is_err());
    }
}
