//! `medxfer runs export --mlflow URL`: pushes run folders to an MLflow tracking server through its REST API
//! (`/api/2.0/mlflow/...`): one experiment per dataset, one MLflow run per medxfer run (found again by its
//! `medxfer.run_id` tag, so re-exporting updates the same run), params from spec.toml, metrics with steps
//! from metrics.jsonl and result.json, tags for init, dataset, trial and anno %. Metric timestamps come from
//! the run's own records, so a metric exported twice is the same row and MLflow keeps it once.

use super::record::{MetricLine, State};
use super::store::RunEntry;
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// The tag that ties an MLflow run to its medxfer run.
pub const RUN_ID_TAG: &str = "medxfer.run_id";
/// MLflow's limits per log-batch call.
const BATCH_METRICS: usize = 1000;
const BATCH_PARAMS: usize = 100;

pub struct Client {
    base: String,
    http: reqwest::blocking::Client,
    token: Option<String>,
}

/// What one export did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exported {
    pub run_id: String,
    pub experiment_id: String,
    pub mlflow_run_id: String,
    /// False when the MLflow run existed already and was updated.
    pub created: bool,
    pub metrics: usize,
    /// Params whose value in spec.toml differs from the one MLflow holds (MLflow params never change).
    pub kept_params: Vec<String>,
}

impl Client {
    /// A client of the server at `url` (http or https); `MLFLOW_TRACKING_TOKEN` is sent as a bearer token.
    pub fn new(url: &str) -> Result<Client> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--mlflow {url:?} is not an http:// or https:// URL");
        }
        if std::env::var("MEDXFER_OFFLINE").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false")) {
            bail!("offline (MEDXFER_OFFLINE=1): not contacting the MLflow server at {url}");
        }
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build()?;
        let token = std::env::var("MLFLOW_TRACKING_TOKEN").ok().filter(|t| !t.is_empty());
        Ok(Client { base: url.trim_end_matches('/').to_string(), http, token })
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Option<Value>> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(serde_json::to_vec(b)?);
        }
        let resp = req.send().with_context(|| format!("cannot reach the MLflow server at {url}"))?;
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status == reqwest::StatusCode::NOT_FOUND && parsed["error_code"] == "RESOURCE_DOES_NOT_EXIST" {
            return Ok(None);
        }
        if !status.is_success() {
            let message = parsed["message"].as_str().map_or_else(|| text.trim().to_string(), str::to_string);
            bail!("the MLflow server answered {status} to {url}: {message}");
        }
        Ok(Some(parsed))
    }

    fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.call(reqwest::Method::POST, path, Some(&body))?.ok_or_else(|| anyhow!("MLflow has no {path}"))
    }

    /// The id of experiment `name`, created when missing.
    pub fn experiment(&self, name: &str) -> Result<String> {
        let path = format!("experiments/get-by-name?experiment_name={}", query_escape(name));
        if let Some(found) = self.call(reqwest::Method::GET, &path, None)? {
            return text(&found["experiment"]["experiment_id"]);
        }
        text(&self.post("experiments/create", json!({ "name": name }))?["experiment_id"])
    }

    /// The MLflow run tagged with `run_id` in `experiment_id`, with its params.
    fn find_run(&self, experiment_id: &str, run_id: &str) -> Result<Option<(String, BTreeMap<String, String>)>> {
        let filter = format!("tags.`{RUN_ID_TAG}` = '{run_id}'");
        let found = self.post(
            "runs/search",
            json!({ "experiment_ids": [experiment_id], "filter": filter, "max_results": 1, "run_view_type": "ALL" }),
        )?;
        let Some(run) = found["runs"].as_array().and_then(|r| r.first()) else { return Ok(None) };
        let params = run["data"]["params"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p["key"].as_str()?.to_string(), p["value"].as_str()?.to_string())))
            .collect();
        Ok(Some((text(&run["info"]["run_id"])?, params)))
    }

    /// Creates or updates the MLflow run of one medxfer run.
    pub fn export(&self, run: &RunEntry) -> Result<Exported> {
        let experiment_id = self.experiment(&run.spec.dataset)?;
        let start_ms = start_time_ms(&run.id);
        let tags = tags(run);
        let (mlflow_run_id, existing, created) = match self.find_run(&experiment_id, &run.id)? {
            Some((id, params)) => (id, params, false),
            None => {
                let created = self.post(
                    "runs/create",
                    json!({ "experiment_id": experiment_id, "run_name": run.id, "start_time": start_ms, "tags": tags }),
                )?;
                (text(&created["run"]["info"]["run_id"])?, BTreeMap::new(), true)
            }
        };
        let params = params(run)?;
        let kept_params: Vec<String> = params
            .iter()
            .filter(|(k, v)| existing.get(*k).is_some_and(|old| old != *v))
            .map(|(k, _)| k.clone())
            .collect();
        let new_params: Vec<Value> = params
            .iter()
            .filter(|(k, _)| !existing.contains_key(*k))
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect();
        for chunk in new_params.chunks(BATCH_PARAMS) {
            self.post("runs/log-batch", json!({ "run_id": mlflow_run_id, "params": chunk }))?;
        }
        let metrics = metrics(run, start_ms);
        for chunk in metrics.chunks(BATCH_METRICS) {
            self.post("runs/log-batch", json!({ "run_id": mlflow_run_id, "metrics": chunk }))?;
        }
        self.post("runs/log-batch", json!({ "run_id": mlflow_run_id, "tags": tags }))?;
        let (status, ended) = match run.state() {
            Some(State::Finished) => ("FINISHED", true),
            Some(State::Failed) => ("FAILED", true),
            Some(State::Stopped) => ("KILLED", true),
            _ => ("RUNNING", false),
        };
        let mut update = json!({ "run_id": mlflow_run_id, "status": status });
        if ended {
            update["end_time"] = json!(start_ms + last_elapsed_ms(run));
        }
        self.post("runs/update", update)?;
        Ok(Exported {
            run_id: run.id.clone(),
            experiment_id,
            mlflow_run_id,
            created,
            metrics: metrics.len(),
            kept_params,
        })
    }
}

fn text(v: &Value) -> Result<String> {
    v.as_str().map(str::to_string).ok_or_else(|| anyhow!("the MLflow server's answer lacks an id: {v}"))
}

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// MLflow metric keys allow letters, digits, `_ - . / ` and spaces; anything else becomes `_`.
pub fn metric_key(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "_-./ ".contains(c) { c } else { '_' }).collect()
}

fn tags(run: &RunEntry) -> Vec<Value> {
    let s = &run.spec;
    [
        (RUN_ID_TAG, run.id.clone()),
        ("mlflow.runName", run.id.clone()),
        ("init", s.init.clone()),
        ("dataset", s.dataset.clone()),
        ("trial", s.trial.to_string()),
        ("anno_percent", s.data.anno_percent.to_string()),
        ("state", run.state_name().to_string()),
    ]
    .into_iter()
    .chain(s.sweep.as_ref().map(|w| ("sweep", w.clone())))
    .map(|(k, v)| json!({ "key": k, "value": v }))
    .collect()
}

/// spec.toml flattened to dotted keys (`hyper.lr`, `data.anno_percent`, ...), values as TOML writes them.
pub fn params(run: &RunEntry) -> Result<BTreeMap<String, String>> {
    let value = toml::Value::try_from(&run.spec).context("cannot turn spec.toml into params")?;
    let mut out = BTreeMap::new();
    flatten("", &value, &mut out);
    Ok(out)
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        toml::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// When the run started, in ms since the epoch: its id's timestamp (`YYYYMMDD-HHMMSS-...`, UTC).
fn start_time_ms(id: &str) -> i64 {
    let digits = |r: std::ops::Range<usize>| id.get(r).and_then(|s| s.parse::<i64>().ok());
    let parts = (digits(0..4), digits(4..6), digits(6..8), digits(9..11), digits(11..13), digits(13..15));
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) = parts else { return 0 };
    // Days from civil (Howard Hinnant's algorithm).
    let (y, mo) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + h * 3600 + mi * 60 + s) * 1000
}

fn metric_lines(run: &RunEntry) -> Vec<MetricLine> {
    let text = std::fs::read_to_string(run.dir.join(super::record::METRICS_FILE)).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn last_elapsed_ms(run: &RunEntry) -> i64 {
    metric_lines(run).last().map_or(0, |m| (m.elapsed_s * 1000.0) as i64)
}

/// Metrics with steps: step lines at the global step (`train_loss_step`, `lr_step`), epoch lines at the
/// epoch (`train_loss`, `val_loss`, `lr`, `images_per_s`, `val_<metric>`), the result at the last epoch
/// (`test_<metric>`, `test_<metric>_<class>`, `test_<extra>`).
pub fn metrics(run: &RunEntry, start_ms: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut push = |key: String, value: f64, step: u64, elapsed_s: f64| {
        if value.is_finite() {
            let timestamp = start_ms + (elapsed_s * 1000.0) as i64;
            out.push(json!({ "key": metric_key(&key), "value": value, "timestamp": timestamp, "step": step }));
        }
    };
    let lines = metric_lines(run);
    for m in &lines {
        if m.kind == "epoch" {
            let e = u64::from(m.epoch);
            if let Some(v) = m.train_loss {
                push("train_loss".into(), v, e, m.elapsed_s);
            }
            if let Some(v) = m.val_loss {
                push("val_loss".into(), v, e, m.elapsed_s);
            }
            push("lr".into(), m.lr, e, m.elapsed_s);
            push("images_per_s".into(), m.images_per_s, e, m.elapsed_s);
            for (k, v) in &m.val {
                push(format!("val_{k}"), *v, e, m.elapsed_s);
            }
        } else {
            if let Some(v) = m.train_loss {
                push("train_loss_step".into(), v, m.step, m.elapsed_s);
            }
            push("lr_step".into(), m.lr, m.step, m.elapsed_s);
        }
    }
    if let Some(r) = &run.result {
        let (step, elapsed) = (u64::from(r.epochs_run), lines.last().map_or(0.0, |m| m.elapsed_s));
        push(format!("test_{}", r.metric), r.mean, step, elapsed);
        for (class, v) in &r.per_class {
            push(format!("test_{}_{class}", r.metric), *v, step, elapsed);
        }
        for (k, v) in &r.extra {
            push(format!("test_{k}"), *v, step, elapsed);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_times() {
        assert_eq!(metric_key("test_auc_Mass, left"), "test_auc_Mass_ left");
        assert_eq!(query_escape("demo cls/1"), "demo%20cls%2F1");
        assert_eq!(start_time_ms("20261126-081200-demo-cls-imagenet-t1"), 1_795_680_720_000);
        assert_eq!(start_time_ms("not-a-time"), 0);
    }
}
