//! Download progress as events (bytes, total, rate, ETA) sent over a channel: the CLI draws them with
//! indicatif, the TUI folds them into its state. Sending never blocks and a closed channel is ignored.

use serde::Serialize;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Another process holds this model's lock; this one waits for it.
    Waiting {
        id: String,
    },
    Started {
        id: String,
        total: Option<u64>,
        resumed_from: u64,
    },
    Progress {
        id: String,
        bytes: u64,
        total: Option<u64>,
        rate_bps: f64,
        eta_s: Option<f64>,
    },
    Retrying {
        id: String,
        attempt: u32,
        reason: String,
        wait_s: f64,
    },
    Finished {
        id: String,
        message: String,
    },
    Failed {
        id: String,
        reason: String,
    },
}

/// The sender side for one model, with rate measurement and throttling (at most ~10 events a second).
#[derive(Debug, Clone)]
pub struct Progress {
    id: String,
    tx: Option<UnboundedSender<Event>>,
    since: Instant,
    since_bytes: u64,
    last_sent: Option<Instant>,
}

const EVERY: Duration = Duration::from_millis(100);

impl Progress {
    pub fn new(id: &str, tx: Option<UnboundedSender<Event>>) -> Progress {
        Progress { id: id.to_string(), tx, since: Instant::now(), since_bytes: 0, last_sent: None }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn send(&self, event: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(event);
        }
    }

    /// A new transfer begins at `resumed_from`: the rate counts from here.
    pub fn started(&mut self, total: Option<u64>, resumed_from: u64) {
        self.since = Instant::now();
        self.since_bytes = resumed_from;
        self.last_sent = None;
        self.send(Event::Started { id: self.id.clone(), total, resumed_from });
    }

    pub fn bytes(&mut self, bytes: u64, total: Option<u64>) {
        let now = Instant::now();
        let done = total == Some(bytes);
        if !done && self.last_sent.is_some_and(|t| now.duration_since(t) < EVERY) {
            return;
        }
        self.last_sent = Some(now);
        let secs = now.duration_since(self.since).as_secs_f64().max(1e-3);
        let rate_bps = bytes.saturating_sub(self.since_bytes) as f64 / secs;
        let eta_s = total.filter(|_| rate_bps > 0.0).map(|t| t.saturating_sub(bytes) as f64 / rate_bps);
        self.send(Event::Progress { id: self.id.clone(), bytes, total, rate_bps, eta_s });
    }
}
